/* Cartridge cases: from a breech-face scan to a comparison-ready feature.
 *
 * Pipeline (every length in micrometres):
 *  1. region: the breech face is the primer surface inside the case head, minus the firing-pin
 *     impression. An annotation mask (mask.png, the class off the frame border) restricts the
 *     valid points when present; then circles are fitted on the valid-point mask: the primer edge on the outermost
 *     valid point of each of 360 rays from the valid centroid, the firing-pin impression on the
 *     last gap (3+ missing points: its steep wall) within 0.85 R along each ray, each an algebraic (Kasa) fit with iterative trimming of outliers. The
 *     outside minus edge_margin and the firing pin plus fp_margin are removed, then cropped.
 *     An annotated region (mask) is kept as drawn: the margins are for fitted circles only.
 *  2. level: plane fitted by least absolute deviations (IRLS, the median regression cmcR uses),
 *     so the firing-pin bulge and outliers do not tilt it; then the rotationally symmetric form
 *     about the primer centre (dome, firing-pin rim: ring medians) is removed (radial_smooth).
 *  3. band-pass: Gaussian regression filter (ISO 16610-61 weights, zero-order regression =
 *     NaN-aware normalised convolution) via FFTW: result = L(short) - L(long).
 *  4. resample to `spacing` by NaN-aware bilinear interpolation.
 * A raw scan at least twice as fine as `spacing` (any instrument from 0.5 µm) has its region
 * found at full resolution, then block-averaged by the largest whole factor that keeps it at
 * most `spacing` / 2 before levelling and filtering.
 *
 * Already processed scans (band-passed heights, missing outside a ring) are recognised and only
 * resampled, never cropped twice: a scan is "processed" when at least min_missing_processed of
 * it is missing, the 1st..99th percentile height range is under max_range_processed and the
 * median height is within 2 µm of zero (a raw scan carries the primer's tilt and depth: a range
 * of 100+ µm).
 *
 * bf_feature.params[] of a cartridge feature:
 *  [0] spacing of the source scan, µm      [1] primer (outer) circle radius, µm (0: none/mask)
 *  [2] firing-pin circle radius, µm (0)    [3],[4] circle centre x, y in feature coordinates, µm
 *  [5] 1 when the input was already processed, else 0
 *  [6] standard deviation of the processed heights, µm
 *  [7] fraction of the cropped box that is valid
 */
#ifndef BF_BREECHFACE_H
#define BF_BREECHFACE_H

#include "bf_feature.h"
#include "bf_surface.h"

#define BF_BREECHFACE_VERSION 1
#ifndef BF_ERODE_DEFAULT
#define BF_ERODE_DEFAULT 12.5
#endif

typedef struct bf_breechface_opts {
  double spacing;          /* comparison spacing, µm */
  double lambda_short;     /* band-pass short cut-off, µm */
  double lambda_long;      /* band-pass long cut-off, µm */
  double edge_margin;      /* removed inside the primer edge (roll-off), µm */
  double fp_margin;        /* removed around the firing-pin circle, µm */
  double min_valid;        /* fewer valid points than this fraction of the box: MOSTLY_MISSING */
  double max_spacing_ratio; /* scan spacing beyond ratio x or 1/ratio of `spacing`: error
                               (12.5: 0.5-78 µm at 6.25 µm) */
  double warn_spacing_ratio; /* coarser than this ratio x `spacing`: BF_Q_SPACING flag */
  double min_missing_processed; /* see "processed" above */
  double max_range_processed;   /* µm */
  int force_raw;           /* 1: never treat as processed */
  double processed_erode;  /* processed scans: valid points this close (µm) to a missing point
                              or the frame are dropped (edge roll-off); 0: kept as given */
  double radial_smooth;    /* raw scans: the rotationally symmetric form about the primer centre
                              (ring medians smoothed over +-this, µm) is removed after the plane;
                              0: kept */
} bf_breechface_opts;

#define BF_BREECHFACE_OPTS_INIT \
  {.spacing = 6.25, .lambda_short = 16.0, .lambda_long = 500.0, .edge_margin = 150.0, \
   .fp_margin = 60.0, .min_valid = 0.05, .max_spacing_ratio = 12.5, .warn_spacing_ratio = 2.5, \
   .min_missing_processed = 0.2, .max_range_processed = 40.0, .force_raw = 0, \
   .processed_erode = BF_ERODE_DEFAULT, .radial_smooth = 25.0}

/* Intermediate surfaces kept for `bfm features --show` (any pointer may stay NULL). */
typedef struct bf_breechface_trace {
  bf_surface *input;    /* copy of the scan */
  bf_surface *cropped;  /* region kept, cropped */
  bf_surface *levelled; /* after the robust plane */
  bf_surface *filtered; /* after the band-pass (source spacing) */
  double cx, cy, r_out;   /* primer circle, input points (r_out 0 when not fitted) */
  double fcx, fcy, r_fp;  /* firing-pin circle, input points (r_fp 0 when not fitted) */
  int used_mask;        /* region came from mask.png */
} bf_breechface_trace;

/* The pipeline: a BF_KIND_CARTRIDGE feature at o->spacing with quality flags. A scan that is
 * not usable at all (not a cartridge case, spacing absurd, nothing valid) is an error. */
int bf_breechface_extract(bf_feature **out, const bf_surface *scan, const bf_breechface_opts *o);
/* The same, keeping intermediate surfaces in tr (free with bf_breechface_trace_clear). */
int bf_breechface_extract_trace(bf_feature **out, bf_breechface_trace *tr, const bf_surface *scan,
                                const bf_breechface_opts *o);
void bf_breechface_trace_clear(bf_breechface_trace *tr);

/* 1 when the scan looks already cropped/levelled/filtered (rule above). */
int bf_breechface_is_processed(const bf_surface *s, const bf_breechface_opts *o);

/* Steps, exposed for tests and other pipelines. All work in place on NaN-holed surfaces. */
/* Plane by least absolute deviations over valid points, subtracted. */
int bf_level_plane_robust(bf_surface *s);
/* Gaussian regression (ISO 16610-61) band-pass: keeps wavelengths between lo and hi µm. lo <= 0:
 * high-pass only; hi <= 0: low-pass only. NaN-aware; output NaN where input is. */
int bf_gauss_bandpass(bf_surface *s, double lo, double hi);
/* New surface at spacing `sp` (µm) by NaN-aware bilinear interpolation. */
int bf_resample(bf_surface **out, const bf_surface *s, double sp);
/* The region finder's circles of a raw scan (step 1 above) into tr's circle fields, in input
 * points (r_out, r_fp 0 when not fitted; no surfaces kept). For pipelines that need the
 * firing-pin impression itself. 0, BF_EINVAL or BF_ENOMEM. */
int bf_breechface_circles(bf_breechface_trace *tr, const bf_surface *scan,
                          const bf_breechface_opts *o);

#endif
