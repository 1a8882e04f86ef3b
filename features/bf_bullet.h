/* Bullet land-engraved-area (LEA) scans -> striation signatures.
 *
 * Pipeline (after Hare, Hofmann & Carriquiry 2017 / CSAFE bulletxtrctr, re-derived in µm):
 *  1. orientation: striae run along the axis of least height change (mean |2nd difference|
 *     along X vs along Y), unless the options say which; a contradicting flag sets BF_Q_ORIENTATION;
 *  2. crosscut: profiles averaged over a band of rows (band_um wide) are taken every step_um from
 *     start_frac of the length; the first band whose band-passed profile agrees (ccf >= crosscut_ccf)
 *     with the next two bands is used (else the first band reaching the highest of crosscut_ccf
 *     - 0.05, - 0.10, ... that some band reaches); bands lie at fixed µm whatever the spacing.
 *     The search runs from both ends of the scan (from the end only as far as the start's band
 *     plus two), and the end whose band agrees better (by more than 0.01; a stable band beats
 *     an unstable one; with none stable the start is kept) is the heel: which end was scanned first is detected, not assumed (on
 *     all 24 Hamby lands the scan's start wins or ties);
 *  3. grooves: a robust quadratic is fitted to the central half of the crosscut; going outwards,
 *     the first sustained departure of the smoothed residual beyond max(k*sigma, shoulder_um) is
 *     the groove shoulder, cut off with margin_um to spare; a long run of missing points ends it too;
 *     a side with no shoulder, or one rising less than 2 shoulder_um within 100 µm (shallow: it
 *     crossed the threshold late), is searched again with a step model: the crosscut between the
 *     land's ends as a quadratic plus a step up beyond each shoulder, fitted by least squares
 *     (the curve interpolated between the shoulders, not extrapolated from the middle); a step
 *     of at least shoulder_um / 3 and shoulder_k / 2 sds of the smoothed middle residual, lying
 *     3 x 40 µm or more outside the middle half, counts;
 *  4. curvature: robust (bisquare) quadratic over the land, then a NaN-aware Gaussian regression
 *     band-pass (ISO 16610-21 weights) with cut-offs lambda_s_um and lambda_c_um; edge_um at
 *     each end is dropped (NaN).
 *
 * The resulting bf_feature (BF_KIND_BULLET, ny = 1, dx = scan spacing across the striae) holds
 * the signature in µm, NaN where missing. params[]: see BF_BP_*. */
#ifndef BF_BULLET_H
#define BF_BULLET_H

#include "bf_feature.h"
#include "bf_surface.h"

enum { BF_STRIAE_AUTO = 0, BF_STRIAE_X = 1, BF_STRIAE_Y = 2 };

/* Indices into bf_feature.params[] of a bullet land. Positions are µm from the start of the
 * crosscut (across the striae) or of the scan (along the striae). */
enum {
  BF_BP_GROOVE_LEFT = 0,  /* left cut (µm) */
  BF_BP_GROOVE_RIGHT = 1, /* right cut (µm) */
  BF_BP_CROSSCUT = 2,     /* crosscut centre along the striae (µm) */
  BF_BP_ORIENT = 3,       /* BF_STRIAE_X or BF_STRIAE_Y as used */
  BF_BP_AGREE = 4,        /* ccf of the chosen crosscut with its neighbours (striae consistency) */
  BF_BP_ROUGH = 5,        /* sd of the signature (µm) */
  BF_BP_LENGTH = 6,       /* full crosscut length (µm) */
  BF_BP_GROOVES = 7       /* grooves found: bit 0 left, bit 1 right */
};

typedef struct bf_bullet_opts {
  int orientation;      /* BF_STRIAE_AUTO / _X / _Y */
  double band_um;       /* width of the band of rows averaged into one crosscut */
  double step_um;       /* distance between candidate crosscuts */
  double start_frac;    /* where along the striae the search starts (away from the heel) */
  double crosscut_ccf;  /* agreement that makes a crosscut stable */
  double shoulder_um;   /* minimum rise (µm) over the land curve that marks a groove shoulder */
  double shoulder_k;    /* ... or k robust sigmas of the central residual, whichever is larger */
  double margin_um;     /* cut this much more inside the detected shoulder */
  double gap_um;        /* a missing run this long ends the land */
  double lambda_s_um;   /* short cut-off of the band-pass (removes noise) */
  double lambda_c_um;   /* long cut-off of the band-pass (removes waviness/curvature) */
  double min_length_um; /* shorter signatures get BF_Q_TOO_SHORT */
  double min_agree;     /* crosscut agreement below this: BF_Q_NO_MARKS (no consistent striae) */
  int land;             /* land number to record (1-based) or 0 */
  double edge_um;       /* signature ends dropped after filtering (the shoulders' feet) */
} bf_bullet_opts;

#define BF_BULLET_OPTS_INIT \
  {.orientation = BF_STRIAE_AUTO, .band_um = 40.0, .step_um = 25.0, .start_frac = 0.15, \
   .crosscut_ccf = 0.9, .shoulder_um = 3.0, .shoulder_k = 6.0, .margin_um = 20.0, \
   .gap_um = 60.0, .lambda_s_um = 5.0, .lambda_c_um = 250.0, .min_length_um = 500.0, \
   .min_agree = 0.5, .land = 0, .edge_um = 20.0}

/* Diagnostics of one extraction, for `bfm features --show` (all arrays malloc'ed, len n). */
typedef struct bf_bullet_trace {
  int n;           /* crosscut length in points */
  double dx;       /* spacing along the crosscut (µm) */
  float *crosscut; /* averaged crosscut (µm) */
  float *curve;    /* robust quadratic fitted over the land (NaN outside it) */
  int left, right; /* land limits (indices, inclusive) */
} bf_bullet_trace;

void bf_bullet_trace_clear(bf_bullet_trace *t);

/* Detects which axis the striae run along: BF_STRIAE_X or BF_STRIAE_Y; *ratio (may be NULL)
 * gets the larger/smaller mean |2nd difference| (1 = undecided). */
int bf_bullet_orientation(const bf_surface *scan, double *ratio);

/* Extracts the land signature. Poor scans give a flagged feature; an empty or tiny scan is
 * BF_EQUALITY. trace may be NULL. */
int bf_bullet_land_extract_trace(bf_feature **out, bf_bullet_trace *trace, const bf_surface *scan,
                                 const bf_bullet_opts *o);
int bf_bullet_land_extract(bf_feature **out, const bf_surface *scan, const bf_bullet_opts *o);

/* NaN-aware Gaussian regression low-pass (ISO 16610-21 weights, cut-off lambda in µm) of n
 * points at spacing dx into out (may not alias in). Points with no valid neighbour stay NaN. */
void bf_bullet_gauss_lowpass(float *out, const float *in, int n, double dx, double lambda_um);

#endif
