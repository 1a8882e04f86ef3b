/* The firing-pin impression compared on its own: areal cross-correlation function (ACCF), the
 * maximum normalised correlation of two firing-pin features (bf_firingpin.h) over translation
 * after rotation.
 *
 * The rotation is the breech face's when that registration is trusted (the CMC consensus of a
 * comparison with at least cmc_min CMCs, refined by +-refine_window), else a full-circle search:
 * every coarse_step degrees at half resolution, then the best `keep` angles refined at full
 * resolution. Translations within max_shift µm of the aligned pin centres are searched, where
 * the overlap holds at least min_overlap of the smaller feature's valid points (the correlation
 * over a sliver is noise). Masked normalised correlation (Padfield 2012) by FFT; missing points
 * take no part.
 *
 * Ranking: the pin breaks ties and never overrides CMC counts: bf_pin_rank = CMC + weight x
 * ACCF with 0 <= ACCF < 1 and weight < 1, so a pair with more CMCs always ranks higher. The CMC
 * stays the score, the LR and the match (the LR table is fitted on CMC counts). */
#ifndef BF_PIN_H
#define BF_PIN_H

#include "bf_cmc.h"
#include "bf_feature.h"

typedef struct bf_pin_opts {
  double max_shift;     /* µm, about the aligned pin centres */
  double min_overlap;   /* fraction of the smaller feature's valid points */
  double coarse_step;   /* full circle: degrees between coarse rotations */
  int keep;             /* full circle: coarse peaks refined */
  double refine_window; /* +- degrees refined about a coarse peak or the CMC rotation */
  double refine_step;   /* degrees */
  int cmc_min;          /* the CMC rotation is used from this many CMCs on */
  double weight;        /* ranking weight of the ACCF (< 1) */
} bf_pin_opts;

#define BF_PIN_OPTS_INIT \
  {.max_shift = 150.0, .min_overlap = 0.6, .coarse_step = 3.0, .keep = 3, \
   .refine_window = 2.0, .refine_step = 1.0, .cmc_min = 6, .weight = 0.9}

typedef struct bf_pin_result {
  int found;         /* 1: both items have a firing-pin feature and they were compared */
  double accf;       /* max normalised correlation (NaN when not found) */
  double rotation;   /* degrees, reference -> target as bf_cmc_result.theta */
  double dx, dy;     /* translation at the maximum, µm (target relative to reference) */
  int from_cmc;      /* 1: rotation taken from the CMC consensus; 0: full-circle search */
  int nrot;          /* rotations correlated (cost measure) */
} bf_pin_result;

/* Compares two BF_KIND_FIRINGPIN features. theta: the rotation to refine about (degrees,
 * reference -> target), or NaN for the full-circle search. Thread-safe (serial inside). */
int bf_pin_compare(bf_pin_result *out, const bf_feature *ref, const bf_feature *tgt, double theta,
                   const bf_pin_opts *o);
/* The same choosing the rotation by the rule above from the breech face's result cmc (NULL:
 * full circle). ref or tgt NULL: out->found = 0, accf NaN, returns 0 (CMC alone). */
int bf_pin_compare_cmc(bf_pin_result *out, const bf_feature *ref, const bf_feature *tgt,
                       const bf_cmc_result *cmc, const bf_pin_opts *o);
/* The ranking value of a cartridge pair: cmc + weight x accf (clamped to [0, 1)); cmc alone
 * when accf is NaN (the pin was not compared). o NULL: defaults. */
double bf_pin_rank(double cmc, double accf, const bf_pin_opts *o);

#endif
