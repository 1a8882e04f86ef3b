/* Congruent Matching Cells (Song 2013; High CMC, Tong 2015) between two cartridge features,
 * following the CSAFE cmcR package's definitions:
 *  - the reference is split into cells_x x cells_y cells; cells with more than max_missing of
 *    their points missing are dropped;
 *  - for each rotation theta of the target (about its centre, nearest neighbour; the full circle,
 *    seeded by the prefilter, unless full_circle = 0: see bf_cmc_opts) each cell is
 *    correlated (FFT, standardised heights, missing = 0) with the target region region_mult
 *    times its side centred at the same place; the best translation is where the cell lies wholly
 *    inside the region; its score is the Pearson correlation over points both have;
 *  - original method: per cell the rotation of highest correlation; CMC when x, y, theta are
 *    within the thresholds of their medians over cells and corr >= corr_thresh;
 *  - High CMC: per theta, cells within x/y thresholds of that theta's medians with corr >=
 *    corr_thresh; thetas with counts >= max - tau are "high"; they must span <= theta_thresh;
 *  - both directions are run and combined as cmcR's decision_combineDirections (missing theta
 *    decision "fail", thetas compared): when both pass, each direction's modal High-CMC theta is
 *    within theta_thresh of the median theta of its original-method CMCs (no CMCs: fail), and
 *    the two modal thetas are opposite within theta_thresh, the High CMCs of both directions
 *    (distinct cell positions) are counted; otherwise the smaller direction's original count.
 *    (cmcR's source compares both directions with the reference->target median; a sign slip we
 *    do not copy: each direction is compared with its own.)
 * Lengths in micrometres, angles in degrees. x/y thresholds of cmcR are 20 points at 6.25 µm.
 */
#ifndef BF_CMC_H
#define BF_CMC_H

#include "bf_feature.h"

#include <stddef.h>

typedef struct bf_cmc_opts {
  int cells_x, cells_y;      /* grid of the reference (cmcR numCells c(8,8)) */
  double max_missing;        /* cmcR maxMissingProp */
  double region_mult;        /* cmcR regionSizeMultiplier */
  double theta_min, theta_max, theta_step; /* rotations tried, degrees */
  double x_thresh, y_thresh; /* µm (cmcR: 20 points x 6.25 µm) */
  double theta_thresh;       /* degrees */
  double corr_thresh;        /* cmcR corrThresh */
  int tau;                   /* High CMC tau */
  int match_min_cmc;         /* out->match = score >= this (literature: 6 CMCs) */
  int threads;               /* 0: OpenMP default when not already inside a parallel region */
  double refine_step;        /* consensus rotation refined at +-this (deg) around the CMCs'
                                median theta; 0: off. Reported only (theta_refined) */
  int coarse;                /* 1: find each cell's translation by FFT at half resolution, then
                                the exact correlation at full resolution around that peak
                                (hill-climbing); 0: FFT at full resolution (slower) */
  /* Full circle (full_circle = 1, the default): theta_min..theta_max are ignored; the
   * prefilter's rotation estimate s of the pair (bf_prefilter_score, ambiguous modulo 180°)
   * seeds two windows of +-seed_window around -s and 180 - s (rounded to multiples of
   * theta_step), by theta_step, each decided on its own (the one of more CMCs kept; a window's
   * target -> reference direction is registered only when it can still change that choice, and
   * a window scoring >= 2 x match_min_cmc is kept without the other one). When
   * that finds no match (score < match_min_cmc) and fallback_step > 0, the rest of the circle is
   * scanned by fallback_step in the reference -> target direction only (in two stages when
   * fallback_keep > 0); a rotation whose High-CMC candidate count beats the seeded windows' best
   * (and is >= 3) gets its own two-direction window, kept when it scores higher. Without a seed (a surface the prefilter cannot
   * describe) the whole circle is searched by theta_step. 0: theta_min..theta_max (cmcR). */
  int full_circle;
  double seed_window;        /* degrees either side of each seed */
  double fallback_step;      /* degrees; 0: no fallback scan */
  int fallback_keep;         /* > 0: the fallback scan registers half the cells (a checkerboard)
                                at every rotation, then the other half at the fallback_keep
                                rotations of most candidates there, and ranks only these;
                                0: every cell at every rotation */
} bf_cmc_opts;

#define BF_CMC_OPTS_INIT \
  {.cells_x = 8, .cells_y = 8, .max_missing = 0.85, .region_mult = 3.0, .theta_min = -30.0, \
   .theta_max = 30.0, .theta_step = 3.0, .x_thresh = 125.0, .y_thresh = 125.0, \
   .theta_thresh = 6.0, .corr_thresh = 0.5, .tau = 1, .match_min_cmc = 6, .threads = 0, \
   .refine_step = 1.0, .coarse = 1, .full_circle = 1, .seed_window = 15.0, .fallback_step = 9.0, \
   .fallback_keep = 3}

/* One reference cell's best (over rotations) registration, in one direction. */
typedef struct bf_cmc_cell {
  int direction;        /* 0: reference -> target, 1: target -> reference */
  int row, col;         /* cell of the direction's reference grid */
  double x0, y0, w, h;  /* the cell in its reference, µm from the feature's origin */
  double theta, dx, dy; /* best rotation (deg) and translation (µm) */
  double corr;          /* pairwise-complete correlation there */
  int cmc_original;     /* 1: CMC under the original method */
  int cmc_high;         /* 1: counted as High CMC in the combined result */
} bf_cmc_cell;

typedef struct bf_cmc_result {
  double score;             /* original-method CMC count, the smaller of the two directions
                               (Song's rule, the literature's ">= 6 CMCs" decision) */
  int match;                /* score >= opts.match_min_cmc */
  int cmc_original[2];      /* original-method CMC count per direction */
  int cmc_high[2];          /* High CMC count per direction (0 when it failed) */
  int high_pass[2];         /* direction passed the High CMC criterion */
  int cmc_combined;         /* cmcR's combined High CMC count (decision_combineDirections);
                               ranks Fadul slightly worse than score (see bench_cmc) */
  int ncells[2];            /* cells compared per direction */
  double theta, dx, dy;     /* consensus reference -> target: deg in (-180, 180], µm
                               (original-method medians) */
  double theta_refined;     /* consensus rotation refined by refine_step (= theta when off) */
  double theta_high[2];     /* modal High-CMC theta per direction (NaN when failed) */
  int quality_flags;        /* BF_Q_* of either input (a flagged comparison is not trusted) */
  bf_cmc_cell *cells;       /* ncell entries (both directions); free with bf_cmc_result_clear */
  int ncell;
  double theta_seed;        /* full circle: the prefilter's estimate -s in (-180, 180] (the
                               other seed is 180° away); NaN when none or full_circle = 0 */
  int nthetas;              /* rotations searched per direction */
  int cellregs;             /* (cell, rotation) registrations computed, both directions: the
                               cost measure */
  int fallback;             /* 0: seeded windows; 1: fallback scan ran; 2: its window won */
} bf_cmc_result;

/* Per-feature precomputation (cells, their FFTs, the prefilter descriptor that seeds the full
 * circle): make once (e.g. the query), compare with many candidates; results are identical to
 * bf_cmc_compare's. A prep is read-only in compares: one prep may serve many threads at once. */
typedef struct bf_cmc_prep bf_cmc_prep;
int bf_cmc_prep_new(bf_cmc_prep **out, const bf_feature *f, const bf_cmc_opts *o);
void bf_cmc_prep_free(bf_cmc_prep *p);
/* The memory a prep holds (bytes, approximate: its arrays and cell transforms), for caches. */
size_t bf_cmc_prep_bytes(const bf_cmc_prep *p);

/* An angle in degrees brought into (-180, 180], the range every reported rotation uses (the CMC's
 * consensus and cells, the firing pin's); a non-finite angle is returned as it is. */
double bf_cmc_wrap180(double deg);

/* Both directions, combined. Thread-safe; parallel inside when called outside a parallel region. */
int bf_cmc_compare(bf_cmc_result *out, const bf_feature *ref, const bf_feature *tgt,
                   const bf_cmc_opts *o);
/* The same with preps made by bf_cmc_prep_new with the same opts. */
int bf_cmc_compare_prep(bf_cmc_result *out, const bf_cmc_prep *ref, const bf_cmc_prep *tgt,
                        const bf_cmc_opts *o);
void bf_cmc_result_clear(bf_cmc_result *r);

#endif
