/* Synthetic scans with a known truth: cartridge-case breech faces and bullet land (LEA) scans.
 *
 * Statistics follow the real sets in ../shared/data (measured; figures in features/synth.c and
 * printed by benchmarks/bench_synth): processed breech face ~545x545 at 6.25 µm, a ring between
 * the primer edge and an off-centre firing-pin hole (~29 % valid), height sd ~1.5 µm, power per
 * wavelength octave as the Fadul processed set (16-500 µm band-pass look); bullet lands ~1550 x
 * 450 points at 1.5625 µm, bullet radius ~4.2 mm, groove shoulders at both edges, striation
 * spectrum fitted to Hamby mean profiles. Through bfm compare, synthetic mates score like real
 * ones (cartridge 17-27 CMCs, Fadul 23-27; bullets 0.64-0.79 SAM, Hamby 44 0.86) and
 * non-mates like real non-mates (0 CMCs; SAM <= 0.15).
 *
 * Cartridge: a firearm has a breech-face texture (band-limited random field plus parallel tool
 * marks) and a firing-pin position; a firing is that texture under a random rotation and shift,
 * partly transferred (a smooth contact weight, plus texture of the case's own), with the
 * firing-pin hole and the area outside the primer missing, and small dropouts. Raw scans add
 * the primer dome, tilt, the firing-pin crater with its raised rim, the dark annulus of the
 * primer seal and the case head in the corners, at ~100 µm.
 * Bullet: a barrel has one striation signature per land; a bullet land scan is that signature
 * shifted, partly transferred, varying along the striae, sometimes damaged, on a curved land
 * between two grooves.
 *
 * Every item is a pure function of (options, seed, ids): a counter-based generator (splitmix64
 * keyed by the ids), no global state, so any item can be made alone, in any order, on any
 * thread, and is bit-identical every time. */
#ifndef BF_SYNTH_H
#define BF_SYNTH_H

#include "bf_surface.h"

#include <stdint.h>

typedef struct bf_synth_opts {
  uint64_t seed;
  int processed;          /* cartridge: 1 = processed breech face (cropped ring, levelled,
                             band-passed, like the Fadul processed set); 0 = raw scan with primer
                             surround, firing-pin impression, tilt and curvature */
  double cart_spacing;    /* µm */
  double cart_diameter;   /* processed: diameter of the breech-face disk, µm (545 px at 6.25) */
  double cart_field;      /* raw: width of the square field, µm */
  double cart_sd;         /* processed: height sd over valid points, µm */
  double toolmarks;       /* share of the firearm texture variance in parallel tool marks */
  double transfer;        /* cartridge: share (amplitude) of the firearm texture carried over */
  double max_rotation;    /* cartridge: rotation uniform in +-this, degrees. 30 by default: the
                             spread of the Fadul scans; 180 (bfm synth's default) for cases
                             placed in any orientation (the CMC and screen cover the circle) */
  double max_shift;       /* cartridge: shift uniform in +-this along x and y, µm */
  double dropout;         /* fraction of points lost in small clusters */
  double land_spacing;    /* µm */
  int lands;              /* lands per barrel */
  double land_width;      /* land engraved area width between the groove shoulders, µm */
  double land_length;     /* scan length along the striae, µm */
  double bullet_radius;   /* µm */
  double striae_sd;       /* sd of the barrel land signature, µm */
  double land_transfer;   /* bullet: share (amplitude) of the barrel signature carried over */
  double land_shift;      /* bullet: LEA position uniform in +-this across the scan, µm */
  double damage;          /* bullet: probability that a land has a damaged stretch */
  double noise_sd;        /* white measurement noise, µm (bullet scans; cartridge raw) */
  int striae_along_x;     /* bullet: 0 = striae run along Y (X crosses the land), 1 = along X */
} bf_synth_opts;

#define BF_SYNTH_OPTS_INIT \
  {.seed = 1, .processed = 1, .cart_spacing = 6.25, .cart_diameter = 3406.0, \
   .cart_field = 3850.0, .cart_sd = 1.55, .toolmarks = 0.2, .transfer = 0.86, \
   .max_rotation = 30.0, .max_shift = 100.0, .dropout = 0.002, .land_spacing = 1.5625, \
   .lands = 6, .land_width = 2050.0, .land_length = 700.0, .bullet_radius = 4200.0, \
   .striae_sd = 0.85, .land_transfer = 0.93, .land_shift = 60.0, .damage = 0.1, \
   .noise_sd = 0.08, .striae_along_x = 0}

/* What was done to one item (the truth a test can undo). */
typedef struct bf_synth_truth {
  /* cartridge: scan point u (µm from the scan centre, x right, y down the rows) shows the
   * firearm's texture at p = R(rotation) u + (shift_x, shift_y), R the rotation matrix
   * [cos -sin; sin cos]. Undo: u_b = R(-rot_b) (R(rot_a) u_a + shift_a - shift_b).
   * bullet: shift_x = position of the LEA centre from the scan centre across the striae, µm */
  double rotation_deg;
  double shift_x, shift_y;
  int barrel_land;       /* bullet: which land of the barrel (1-based) made this land */
  int damaged;           /* bullet: 1 when a stretch was damaged */
} bf_synth_truth;

/* A generator: the options plus FFTW plans made once (on the calling thread). Immutable after
 * creation: bf_synth_cartridge / bf_synth_land may run concurrently on one generator. */
typedef struct bf_synth bf_synth;

int bf_synth_new(bf_synth **out, const bf_synth_opts *o);
void bf_synth_free(bf_synth *g);
const bf_synth_opts *bf_synth_options(const bf_synth *g);

/* Firing `firing` (>= 0) of firearm `firearm` (>= 0). truth may be NULL. */
int bf_synth_cartridge(bf_surface **out, const bf_synth *g, int firearm, int firing,
                       bf_synth_truth *truth);
/* Land `land` (1..lands, in scan order) of bullet `bullet` fired from barrel `barrel` (ids >= 0).
 * Each bullet starts at a random barrel land: truth->barrel_land says which engraved it. */
int bf_synth_land(bf_surface **out, const bf_synth *g, int barrel, int bullet, int land,
                  bf_synth_truth *truth);

/* One-shot forms for callers that make a single item (build a generator, make, free). */
int bf_synth_cartridge1(bf_surface **out, const bf_synth_opts *o, int firearm, int firing,
                        bf_synth_truth *truth);
int bf_synth_land1(bf_surface **out, const bf_synth_opts *o, int barrel, int bullet, int land,
                   bf_synth_truth *truth);

/* A copy of scan s turned by deg degrees about its centre (x right, y down the rows: the point
 * u from the centre of s lands at R(deg) u, R = [cos -sin; sin cos]), on a grid just large
 * enough to hold the whole turned scan. Heights by bilinear interpolation of the 4 neighbours
 * when all 4 are valid, else the nearest neighbour (NaN outside); the mask (if any) by nearest
 * neighbour. The turned test sets of tests and benchmarks are made with it. */
int bf_synth_turn(bf_surface **out, const bf_surface *s, double deg);

#endif
