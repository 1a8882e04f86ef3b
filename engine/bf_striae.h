/* Striation comparison: land vs land (aligned signatures) and bullet vs bullet (SAM phase).
 *
 * Land vs land. Both signatures are brought to a's spacing (linear interpolation when they
 * differ by more than 1 %), the NaN-aware Pearson cross-correlation is computed for every lag
 * with at least min_overlap_um of common valid data (FFT, six correlations), and the best lag
 * aligns them. Over the aligned overlap (Hare, Hofmann & Carriquiry 2017, "Automatic matching of
 * bullet land impressions"; CSAFE bulletxtrctr), with d = a - b at each common valid point:
 *   ccf      Pearson correlation at the best lag
 *   D, sd_D  RMS of d, and the sd of d (µm) - both divided by the pooled signature sd in the score
 *   striae   peaks and valleys of each signature beyond peak_k * its sd; each mark spans the
 *            half-way points to its neighbouring marks; a mark of a and one of b of the same
 *            kind whose spans overlap MATCH, every other mark is a MISMATCH
 *   cms      longest run of consecutive matches along the overlap; non_cms the longest run of
 *            consecutive mismatches; matches, mismatches the counts; sum_peaks the summed mean
 *            height |a|+|b| / 2 of matched marks (µm)
 * The land score (bf_land_score) is a logistic combination
 *   score = 1 / (1 + exp(-(w0 + w_ccf ccf + w_cms cms_per_mm + w_m match_frac + w_d D_rel)))
 * with cms_per_mm = cms / overlap in mm, match_frac = matches / (matches + mismatches),
 * D_rel = D / pooled sd. Weights trained on Hamby land pairs: see BF_LAND_WEIGHTS in striae.c.
 *
 * Bullet vs bullet. Lands are placed by their land number (bf_feature.land, else by order); for
 * each phase p the lands (i, i + p mod n) form a diagonal; the phase score is the mean land
 * score along it over pairs where both lands exist and carry no disqualifying quality flag (SAM,
 * Sequential Average Maximum), each pair weighted by the product of its lands' quality
 * (bf_land_quality): a damaged land (tank rash, missing data) counts less, so one ruined land
 * does not drag the true phase down nor lift a wrong one. The best phase gives the bullet score; margin = best - second
 * best phase. match = bullet_score >= match_threshold and margin >= margin_threshold.
 *
 * Heel/toe. Which end of a bullet was scanned first is not assumed: a bullet scanned base-first
 * has every land profile reversed across the striae and its lands in the opposite order. B is
 * scored both ways (as given, and turned: each signature reversed, position j -> n - 1 - j) and
 * the turned result is kept only when its SAM score is higher by turn_margin, so a bullet scanned
 * like its mate never loses score; `reversed` reports which was kept. */
#ifndef BF_STRIAE_H
#define BF_STRIAE_H

#include "bf_feature.h"

typedef struct bf_land_opts {
  double min_overlap_um;  /* alignment needs this much common data (or 75 % of the shorter) */
  double peak_k;          /* a peak/valley counts as a mark beyond peak_k * signature sd */
  double match_threshold; /* bullet: SAM score at or above which bullets match */
  double margin_threshold;/* bullet: ... and best phase above the next by at least this */
  int skip_flags;         /* lands with any of these BF_Q_* flags are not scored */
  double turn_margin;     /* bullet: B is also scored turned heel for toe (each signature
                           * reversed, lands in the opposite order) and kept turned only when
                           * its SAM score is higher by at least this; negative: never turned */
} bf_land_opts;

#define BF_LAND_OPTS_INIT \
  {.min_overlap_um = 500.0, .peak_k = 0.5, .match_threshold = 0.5, .margin_threshold = 0.1, \
   .skip_flags = BF_Q_MOSTLY_MISSING | BF_Q_TOO_SHORT | BF_Q_NO_MARKS, .turn_margin = 0.1}

typedef struct bf_land_result {
  double score;       /* [0, 1]: evidence the two lands were engraved by the same barrel land */
  double ccf;         /* at the best lag */
  double lag_um;      /* shift of b relative to a (µm): b(x - lag) lines up with a(x) */
  double overlap_um;  /* common valid length at the best lag */
  double D, sd_D;     /* µm */
  double rough;       /* pooled signature sd over the overlap (µm) */
  int cms, non_cms, matches, mismatches;
  double sum_peaks;   /* µm */
  int scored;         /* 0 when a land was flagged/unusable: score is 0 and not evidence */
  int reversed;       /* b's signature was read back to front (bullet B turned heel for toe);
                       * lag_um is then in the reversed signature's coordinates */
} bf_land_result;

/* Compares two land signatures (BF_KIND_BULLET, ny = 1). Thread-safe: callable from many
 * OpenMP threads at once. A flagged or too short land gives scored = 0 and returns 0;
 * a wrong kind or shape is BF_EINVAL. o may be NULL for the defaults. */
int bf_land_compare(bf_land_result *out, const bf_feature *a, const bf_feature *b,
                    const bf_land_opts *o);

/* The land score's features, all free of the scan's height scale and land width so that the
 * score transfers between studies: ccf, cms per mm of overlap, matched fraction of marks,
 * D / rough (misfit relative to the roughness). */
enum { BF_LAND_NFEAT = 4 };
void bf_land_features(double f[BF_LAND_NFEAT], const bf_land_result *r);

/* The trained logistic combination of bf_land_features into [0, 1] (BF_LAND_WEIGHTS in
 * striae.c; re-derived by `bench_bullet --fit`). */
double bf_land_score(const bf_land_result *r);

/* The aligned signatures of a compared pair, for drawing: a and b resampled to a common grid
 * of *n points at a's spacing starting at a's first point (b shifted by the lag), NaN where
 * absent. Arrays are malloc'ed (free them). */
int bf_land_aligned(float **sa, float **sb, int *n, const bf_feature *a, const bf_feature *b,
                    const bf_land_result *r);

/* Quality of a land signature in [0.1, 1] for the SAM weights: (1 - share of missing points
 * inside the valid extent) x (1 - 3 x share of gouge outliers, points beyond 5 robust sd),
 * times min(1, crosscut agreement / 0.9) when the extraction recorded one. Below
 * BF_LAND_DAMAGED the land is reported as damaged. */
#define BF_LAND_DAMAGED 0.7
double bf_land_quality(const bf_feature *f);

typedef struct bf_bullet_result {
  int na, nb;              /* lands of each bullet as given */
  int n;                   /* positions per bullet (largest land number / count) */
  bf_land_result *lands;   /* na * nb, lands[i * nb + j] = a[i] vs b[j] */
  int *pos_a, *pos_b;      /* land position (0-based) of each given land */
  int nphase;              /* n phases */
  double *phase_score;     /* mean land score along each phase's diagonal (NaN if no pair) */
  int *phase_pairs;        /* scored pairs on each phase's diagonal */
  int phase;               /* best phase p: position i of a meets position (i + p) mod n of b */
  double score;            /* SAM bullet score: phase_score[phase] */
  double margin;           /* best minus second best phase score */
  int match;               /* score >= match_threshold && margin >= margin_threshold */
  double *quality_a, *quality_b; /* bf_land_quality of each given land (0 when missing) */
  int damaged_a, damaged_b;      /* lands below BF_LAND_DAMAGED */
  int reversed;            /* B was scanned the other way round (heel/toe): scored turned */
  double other_score;      /* SAM score of B the other way round from the one kept (NaN when
                            * not tried or nothing was comparable) */
} bf_bullet_result;

/* Compares two bullets given as arrays of land features (NULL entries = missing lands).
 * Land pairs are compared in parallel (OpenMP). Free with bf_bullet_result_clear. */
int bf_bullet_compare(bf_bullet_result *out, const bf_feature *const *a, int na,
                      const bf_feature *const *b, int nb, const bf_land_opts *o);
void bf_bullet_result_clear(bf_bullet_result *r);

/* The position B's land j takes in the phase arithmetic (n - 1 - pos_b[j] when B was turned),
 * and whether the pair (A land i, B land j) lies on the best phase. */
int bf_bullet_pos_b(const bf_bullet_result *r, int j);
int bf_bullet_on_phase(const bf_bullet_result *r, int i, int j);

#endif
