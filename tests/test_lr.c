/* Likelihood ratios: the built-in models' shape and bounds, the fits, Cllr / Cllr_min (PAV),
 * the hit rule, bad input and allocation failure. Synthetic only: runs without ../shared. */
#include "bf_alloc.h"
#include "bf_error.h"
#include "bf_lr.h"
#include "bf_test.h"

#include <math.h>
#include <stdint.h>


/* A beta-binomial draw: p from a Beta of mean m and over-dispersion rho (by two gamma-free
 * uniform order statistics would be long: use a binomial with p jittered in a band instead). */
static int draw(int n, double m, double spread)
{
  double p = m + spread * (bf_t_urand() - 0.5);
  p = p < 0.001 ? 0.001 : p > 0.999 ? 0.999 : p;
  int c = 0;
  for (int i = 0; i < n; i++)
    c += bf_t_urand() < p;
  return c;
}

int main(void)
{
  /* built-in cartridge model: LR rises with the CMC count, bounded by the reference data */
  const bf_lr_model *cm = bf_lr_model_builtin(BF_KIND_CARTRIDGE);
  CHECK(cm && cm->method == BF_LR_BETABINOM && cm->reference && cm->reference[0]);
  bf_lr r, prev;
  double hi = log10(cm->n_ds + 1), lo = -log10(cm->n_ss + 1);
  int mono = 1, any_capped_hi = 0, any_capped_lo = 0;
  for (int c = 0; c <= 40; c++) {
    CHECK(bf_lr_score(&r, BF_KIND_CARTRIDGE, c, 46, NULL) == 0);
    if (c && r.log10_lr < prev.log10_lr - 1e-12)
      mono = 0;
    CHECK(r.log10_lr <= hi + 1e-12 && r.log10_lr >= lo - 1e-12);
    CHECK(fabs(r.lr - pow(10, r.log10_lr)) < 1e-9 * r.lr);
    any_capped_hi |= r.capped && r.log10_lr > 0;
    any_capped_lo |= r.capped && r.log10_lr < 0;
    prev = r;
  }
  CHECK(mono);
  CHECK(any_capped_hi && any_capped_lo); /* Fadul's range (0..~30 CMCs) reaches both bounds */
  CHECK(bf_lr_score(&r, BF_KIND_CARTRIDGE, 0, 46, NULL) == 0 && r.log10_lr < 0 && !r.match);
  CHECK(bf_lr_score(&r, BF_KIND_CARTRIDGE, 20, 46, NULL) == 0 && r.log10_lr > 1 && r.match);
  CHECK(r.reference == cm->reference);
  /* a count above the cells given is taken as its own size, not an error */
  CHECK(bf_lr_score(&r, BF_KIND_CARTRIDGE, 50, 10, NULL) == 0 && r.log10_lr > 0);
  /* the result form */
  bf_cmc_result cr = {0};
  cr.score = 15;
  cr.cmc_original[0] = 15;
  cr.cmc_original[1] = 17;
  cr.ncells[0] = 40;
  cr.ncells[1] = 52;
  bf_lr r2;
  CHECK(bf_lr_cmc(&r, &cr, NULL) == 0 && bf_lr_score(&r2, BF_KIND_CARTRIDGE, 15, 40, NULL) == 0 &&
        r.log10_lr == r2.log10_lr);

  /* built-in bullet model: rises with SAM for every k; the bounds count groups of k land pairs,
   * so a six-land phase is bounded more tightly than a single land pair */
  const bf_lr_model *bm = bf_lr_model_builtin(BF_KIND_BULLET);
  CHECK(bm && bm->method == BF_LR_LOGIT);
  for (int k = 1; k <= BF_LR_MAXK; k++) {
    CHECKF(bm->b[k - 1] > 0, "k %d slope %g", k, bm->b[k - 1]);
    double p = -1e9;
    for (double s = 0; s <= 1.0001; s += 0.05) {
      CHECK(bf_lr_score(&r, BF_KIND_BULLET, fmin(s, 1), k, NULL) == 0);
      CHECK(r.log10_lr >= p - 1e-12);
      p = r.log10_lr;
    }
  }
  CHECK(bf_lr_score(&r, BF_KIND_BULLET, 0.99, 1, NULL) == 0 &&
        bf_lr_score(&r2, BF_KIND_BULLET, 0.99, 6, NULL) == 0 && r.capped && r2.capped &&
        fabs(r.log10_lr - log10(bm->n_ds + 1)) < 1e-12 &&
        fabs(r2.log10_lr - log10(bm->n_ds / 6 + 1)) < 1e-12 && r2.log10_lr < r.log10_lr);
  CHECK(bf_lr_score(&r, BF_KIND_BULLET, 0.9, 9, NULL) == 0 && r.log10_lr == r2.log10_lr);
  CHECK(bf_lr_score(&r, BF_KIND_BULLET, 0.03, 6, NULL) == 0 && r.log10_lr < 0 && !r.match);
  CHECK(bf_lr_score(&r, BF_KIND_BULLET, 0.9, 6, NULL) == 0 && r.log10_lr >= 1 && r.match);
  /* bullet result: k from the phase; no phase = no evidence (LR 1) */
  bf_bullet_result br = {0};
  int pp[6] = {6, 6, 6, 6, 6, 6};
  br.phase = 2;
  br.score = 0.9;
  br.phase_pairs = pp;
  CHECK(bf_lr_bullet(&r, &br, NULL) == 0 && fabs(r.log10_lr - r2.log10_lr) < 1e-12);
  br.phase = -1;
  CHECK(bf_lr_bullet(&r, &br, NULL) == 0 && r.log10_lr == 0 && !r.match && r.reference);

  /* bad input */
  CHECK(bf_lr_score(&r, BF_KIND_CARTRIDGE, NAN, 0, NULL) == BF_EINVAL);
  CHECK(bf_lr_score(&r, BF_KIND_CARTRIDGE, -1, 0, NULL) == BF_EINVAL);
  CHECK(bf_lr_score(&r, BF_KIND_BULLET, 1.5, 0, NULL) == BF_EINVAL);
  CHECK(bf_lr_score(&r, 99, 1, 0, NULL) == BF_EINVAL && strstr(bf_error_last(), "kind"));
  CHECK(bf_lr_score(&r, BF_KIND_BULLET, 0.5, 0, cm) == BF_EINVAL); /* model of another kind */

  /* hit rule */
  bf_lr_rule rule = BF_LR_RULE_INIT;
  CHECK(rule.min_log10_lr == 1.0);
  CHECK(bf_lr_is_hit(1.0, NULL) && !bf_lr_is_hit(0.999, NULL) && !bf_lr_is_hit(NAN, NULL));
  rule.min_log10_lr = 2;
  CHECK(!bf_lr_is_hit(1.5, &rule) && bf_lr_is_hit(2.5, &rule));

  /* CMC fit recovers the generating rates */
  enum { NP = 600 };
  static int c[NP], n[NP], same[NP];
  for (int i = 0; i < NP; i++) {
    same[i] = i < 100;
    n[i] = 30 + (int)(bf_t_urand() * 30);
    c[i] = draw(n[i], same[i] ? 0.45 : 0.03, same[i] ? 0.4 : 0.0);
  }
  bf_lr_model fm;
  CHECK(bf_lr_fit_cmc(&fm, c, n, same, NP, "synthetic") == 0);
  CHECKF(fabs(fm.p_ss - 0.45) < 0.04 && fabs(fm.p_ds - 0.03) < 0.01, "p_ss %g p_ds %g", fm.p_ss,
         fm.p_ds);
  CHECKF(fm.rho_ss > 0.01 && fm.rho_ds < 0.01, "rho_ss %g rho_ds %g (spread only in Hss)",
         fm.rho_ss, fm.rho_ds);
  CHECK(fm.n_ss == 100 && fm.n_ds == 500 && fm.ncells >= 30 && fm.ncells < 60);
  /* evaluation on data of the same model: well calibrated and discriminating */
  static double l10[NP];
  for (int i = 0; i < NP; i++) {
    CHECK(bf_lr_score(&r, BF_KIND_CARTRIDGE, c[i], n[i], &fm) == 0);
    l10[i] = r.log10_lr;
  }
  double cllr = bf_lr_cllr(l10, same, NP), cmin = bf_lr_cllr_min(l10, same, NP);
  CHECKF(cllr < 0.2 && cmin <= cllr + 1e-9 && cmin >= 0, "Cllr %g Cllr_min %g", cllr, cmin);
  /* one class only */
  CHECK(bf_lr_fit_cmc(&fm, c + 100, n + 100, same + 100, 50, "x") == BF_EINVAL);
  n[0] = 0;
  CHECK(bf_lr_fit_cmc(&fm, c, n, same, NP, "x") == BF_EINVAL);
  n[0] = 40;

  /* Cllr of known values: LR 1 everywhere is 1 bit; perfectly separated LRs give Cllr_min 0;
   * confidently wrong LRs are worse than 1 */
  double v1[4] = {0, 0, 0, 0}, v2[4] = {3, 2, -2, -3}, v3[4] = {-3, -2, 2, 3};
  int lab[4] = {1, 1, 0, 0};
  CHECK(fabs(bf_lr_cllr(v1, lab, 4) - 1) < 1e-12);
  CHECK(bf_lr_cllr(v2, lab, 4) < 0.01 && fabs(bf_lr_cllr_min(v2, lab, 4)) < 1e-12);
  CHECK(bf_lr_cllr(v3, lab, 4) > 5 && fabs(bf_lr_cllr_min(v3, lab, 4) - 1) < 1e-12);
  CHECK(isnan(bf_lr_cllr(v1, lab, 2))); /* no Hds value */
  /* PAV: Cllr_min never exceeds Cllr */
  for (int t = 0; t < 20; t++) {
    double v[50];
    int s[50];
    for (int i = 0; i < 50; i++) {
      s[i] = i % 3 == 0;
      v[i] = (s[i] ? 0.8 : -0.5) + 2 * (bf_t_urand() - 0.5) + (t - 10) * 0.2;
    }
    CHECK(bf_lr_cllr_min(v, s, 50) <= bf_lr_cllr(v, s, 50) + 1e-12);
  }

  /* logistic fit: separated data give a finite positive slope; overlap gives a smaller one */
  double sc[8] = {0.9, 0.8, 0.95, 0.7, 0.1, 0.2, 0.05, 0.3};
  int sl[8] = {1, 1, 1, 1, 0, 0, 0, 0};
  double a, b, a2, b2;
  CHECK(bf_lr_fit_logit(&a, &b, sc, sl, 8, 1e-3) == 0 && isfinite(b) && b > 1);
  sc[7] = 0.85;
  sc[3] = 0.2;
  CHECK(bf_lr_fit_logit(&a2, &b2, sc, sl, 8, 1e-3) == 0 && b2 > 0 && b2 < b);
  CHECK(bf_lr_fit_logit(&a, &b, sc, sl, 4, 1e-3) == BF_EINVAL);

  /* bullet fit: deterministic for a seed, monotone, allocation failure reported */
  double ss[5] = {0.7, 0.8, 0.9, 0.95, 0.85}, ds[20];
  for (int i = 0; i < 20; i++)
    ds[i] = 0.02 + 0.02 * i;
  bf_lr_model m1, m2;
  CHECK(bf_lr_fit_bullet(&m1, ss, 5, ds, 20, 6, 2000, 7, "syn") == 0);
  CHECK(bf_lr_fit_bullet(&m2, ss, 5, ds, 20, 6, 2000, 7, "syn") == 0);
  CHECK(!memcmp(m1.a, m2.a, sizeof m1.a) && !memcmp(m1.b, m2.b, sizeof m1.b));
  CHECK(m1.n_ss == 5 && m1.n_ds == 20 && m1.b[0] > 0 && m1.b[5] > 0);
  CHECK(bf_lr_fit_bullet(&m1, ss, 0, ds, 20, 6, 2000, 7, "syn") == BF_EINVAL);
  bf_alloc_fail(1, 1);
  int rc = bf_lr_fit_bullet(&m1, ss, 5, ds, 20, 6, 100, 7, "syn");
  int fired = bf_alloc_fired();
  bf_alloc_fail(0, 0);
  CHECK(rc == BF_ENOMEM && fired);
  return bf_t_done();
}
