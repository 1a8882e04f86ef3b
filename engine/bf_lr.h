/* Score-based likelihood ratios: how much more probable a comparison score is if the two items
 * share a source (Hss) than if they do not (Hds).
 *
 * Cartridge cases (CMC). The count c of congruent matching cells out of n cells compared is
 * modelled, in the spirit of Song et al. (2018, "Estimating error rates for firearm evidence
 * identifications in forensic science", Forensic Sci. Int. 284), as binomial in the cells -
 * here beta-binomial, because cells of one pair are not independent (a well marked pair has
 * many CMCs, a poorly marked one few: over-dispersion rho):
 *   P(c | n, H) = C(n, c) B(c + a, n - c + b) / B(a, b),  a = p (1/rho - 1), b = (1 - p)(1/rho - 1)
 *   LR = P(c | n, Hss) / P(c | n, Hds).
 * p and rho of each hypothesis come from reference pairs by the method of moments (bf_lr_fit_cmc).
 *
 * Bullets (SAM score s in [0, 1]). ln LR = a + b * logit(s), a logistic regression fitted with
 * equal total weight for both hypotheses (so its log odds are a log LR, not posterior odds),
 * with a small ridge penalty on b so that perfectly separated reference data still give a
 * finite slope (bf_lr_fit_logit). Bullet-pair reference scores are scarce (one same-source
 * bullet pair per Hamby set), so bf_lr_fit_bullet simulates bullet pairs from reference LAND
 * pair scores: same-source = the better of the true phase (mean of k same-land scores) and the
 * other phases (means of k different-land scores); different-source = the best of nphase
 * phases of k different-land means - how the SAM score is formed (bf_striae.h). The SAM score
 * of k = 1 land pair per phase (a single land against a bullet) spreads far more than a mean of
 * six, so the model has one (a, b) per k.
 *
 * Guard against overconfidence. An LR of 10^k claims that a different-source comparison gives
 * such a score about 10^k times less often than a same-source one; a reference set of n_ds
 * different-source comparisons cannot show rates below about 1/(n_ds + 1), nor n_ss
 * same-source comparisons rates below 1/(n_ss + 1). So
 *   -log10(n_ss + 1) <= log10 LR <= log10(n_ds + 1)
 * (the idea of Vergeer et al. 2016's empirical lower and upper bounds, in its simplest form).
 * For bullets n_ss, n_ds count independent groups of k land pairs (land pairs / k). `capped` says when the bound was applied.
 *
 * The built-in models (bf_lr_model_builtin) are a documented table in lr.c, made by
 * benchmarks/bench_lr, which re-fits them from ../shared/data and prints the same table. */
#ifndef BF_LR_H
#define BF_LR_H

#include "bf_cmc.h"
#include "bf_striae.h"

enum { BF_LR_BETABINOM = 1, BF_LR_LOGIT = 2 };
#define BF_LR_MAXK 6

typedef struct bf_lr_model {
  int kind;              /* BF_KIND_CARTRIDGE or BF_KIND_BULLET */
  int method;            /* BF_LR_BETABINOM (cartridge) or BF_LR_LOGIT (bullet) */
  double p_ss, rho_ss;   /* betabinom: mean CMC fraction and over-dispersion, same source */
  double p_ds, rho_ds;   /* ... different source */
  double a[BF_LR_MAXK], b[BF_LR_MAXK]; /* logit: ln LR = a[k-1] + b[k-1] logit(s), k = land
                                          pairs on the best phase (more than MAXK: MAXK) */
  int ncells;            /* betabinom: typical cells compared (used when a caller has no count) */
  double n_ss, n_ds;     /* reference comparisons behind the bounds (bullets: land pairs; the
                            bounds use land pairs / k, groups of k independent land pairs) */
  const char *reference; /* name of the reference data and the fit date */
} bf_lr_model;

typedef struct bf_lr {
  double lr, log10_lr;   /* after the bounds */
  double log10_raw;      /* the model's value before the bounds */
  int capped;            /* 1: a bound was applied */
  const char *reference; /* the model's reference name (static string) */
  int match;             /* the default hit rule: log10_lr >= BF_LR_RULE_INIT's bound */
} bf_lr;

/* The built-in model of a kind, or NULL for an unknown kind. */
const bf_lr_model *bf_lr_model_builtin(int kind);

/* LR of a score of `kind`: cartridge score = CMC count with n cells compared (n <= 0: the
 * model's typical count); bullet score = SAM score with n land pairs on its phase (n <= 0:
 * BF_LR_MAXK). m NULL: built-in. A NaN or negative score is BF_EINVAL. out->match applies the
 * default hit rule (bf_lr_is_hit). */
int bf_lr_score(bf_lr *out, int kind, double score, int n, const bf_lr_model *m);
/* The same for a full comparison result (cells compared: the direction giving the score). */
int bf_lr_cmc(bf_lr *out, const bf_cmc_result *r, const bf_lr_model *m);
int bf_lr_bullet(bf_lr *out, const bf_bullet_result *r, const bf_lr_model *m);

/* The hit rule: one place decides what counts as a hit / a calibrated "match".
 * Default min_log10_lr = 1 (LR >= 10): the start of "moderate support" on the ENFSI verbal
 * scale (2015 guideline); below it the evidence is at most weak and not worth an examiner's
 * review in a batch where most pairs are different-source; 1 is also below both built-in
 * models' upper bounds, so a hit stays reachable with the reference data we have. */
typedef struct bf_lr_rule {
  double min_log10_lr;
} bf_lr_rule;
#define BF_LR_RULE_INIT { .min_log10_lr = 1.0 }
/* 1 when log10_lr meets the rule (rule NULL: default), 0 otherwise (NaN: 0). */
int bf_lr_is_hit(double log10_lr, const bf_lr_rule *rule);

/* ---- fitting (used by benchmarks/bench_lr and the tests) ---- */

/* Beta-binomial model of CMC counts c[i] of n[i] cells, same[i] = 1 for same source. Needs at
 * least one pair of each kind (else BF_EINVAL). reference is stored as given (not copied). */
int bf_lr_fit_cmc(bf_lr_model *m, const int *c, const int *n, const int *same, int np,
                  const char *reference);
/* Equal-weight ridge logistic regression ln LR = a + b * logit(s) on scores s[i] in [0, 1]
 * (clamped to [0.001, 0.999]) with labels same[i]. */
int bf_lr_fit_logit(double *a, double *b, const double *s, const int *same, int np, double ridge);
/* The same with nf features (x row-major, n rows of nf, nf <= 8): w[0] the intercept, w[1..nf]
 * the slopes, ridge on the slopes only; Newton-Raphson. BF_EINVAL on one class only. */
int bf_lr_fit_logistic(double *w, const double *x, int nf, const int *same, int n, double ridge);
/* Bullet model from land-pair scores (see above): for each k = 1..BF_LR_MAXK land pairs per
 * phase and nphase phases, nsim simulated bullet pairs per hypothesis, deterministic for a
 * seed; n_ss/n_ds = the land pairs given. */
int bf_lr_fit_bullet(bf_lr_model *m, const double *land_ss, int nss, const double *land_ds,
                     int nds, int nphase, int nsim, unsigned long long seed,
                     const char *reference);

/* log10 LR under a model for given inputs, without bounds (for fits and plots). */
double bf_lr_log10_raw(const bf_lr_model *m, double score, int n);

/* Evaluation: Cllr = mean over both hypotheses of the mean log2(1 + 1/LR) (Hss) and
 * log2(1 + LR) (Hds) (Brümmer & du Preez 2006); Cllr_min the same after the pool-adjacent-
 * violators (PAV) transform of the log LRs, i.e. the discrimination loss alone.
 * Returns NaN when either hypothesis has no value. */
double bf_lr_cllr(const double *log10_lr, const int *same, int n);
double bf_lr_cllr_min(const double *log10_lr, const int *same, int n);

#endif
