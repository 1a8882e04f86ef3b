/* Synthetic scans with a known truth: cartridge-case breech faces and bullet land (LEA) scans.
 *
 * Statistics follow the real sets in ../shared/data (measured, see features/synth.c):
 * processed breech face ~545x545 at 6.25 µm, ring between the primer edge and an off-centre
 * firing-pin hole (~29 % valid), height sd ~1.5 µm, power spectrum f^-3.1 with the 16-500 µm
 * Gaussian band-pass look; bullet lands ~1540 x 450 points at 1.5625 µm, bullet radius ~4.2 mm,
 * groove shoulders at both edges, striation signature sd ~0.4 µm.
 *
 * Cartridge: a firearm has a breech-face texture (band-limited random field plus parallel tool
 * marks) and a firing-pin position; a firing is that texture under a random rotation and shift,
 * partly transferred (a smooth weight, plus texture of the case's own), with the firing-pin hole
 * and the area outside the primer missing, measurement noise and dropouts.
 * Bullet: a barrel has one striation signature per land; a bullet land scan is that signature
 * shifted, partly transferred, noisy, sometimes damaged, on a curved land between two grooves.
 *
 * Every item is a pure function of (options, seed, ids): a counter-based generator keyed by the
 * ids, no global state, so any item can be made alone, in any order, on any thread. */
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
                             spread of the Fadul scans and what the CMC search covers; 180 for
                             cases placed in any orientation */
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

#define BF_SYNTH_OPTS_INIT                                                                  \
  { 1, 1, 6.25, 3406.0, 3850.0, 1.55, 0.2, 0.86, 30.0, 100.0, 0.002, 1.5625, 6, 2050.0, \
    700.0, 4200.0, 0.85, 0.93, 60.0, 0.1, 0.08, 0 }

/* What was done to one item (the truth a test can undo). */
typedef struct bf_synth_truth {
  double rotation_deg;   /* cartridge: scan = firearm texture rotated by this (counter-clockwise) */
  double shift_x, shift_y; /* cartridge: firearm-frame point under the scan centre, µm;
                              bullet: shift_x = LEA centre offset from the scan centre, µm */
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

#endif
