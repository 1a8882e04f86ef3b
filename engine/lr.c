/* Score-based likelihood ratios (see bf_lr.h). */
#include "bf_lr.h"
#include "bf_alloc.h"
#include "bf_error.h"
#include "bf_linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The built-in models. Made by `bench_lr` (its last section) from ../shared/data:
 *  cartridge, re-fitted 2026-11-29 on the full-circle CMC (the +-15 deg windows round the
 *    prefilter's estimate and 180 deg from it, the 9 deg fallback scan): every Fadul pair (780:
 *    63 same-source, 717 different-source) and every DFSC pair of distinct scans (K013sA1_raw,
 *    K013sA2_raw, K013sA1 processed, K227iG3; the raw and processed copies of K013sA1 are one
 *    case, not a pair: 5 pairs, 2 same, 3 different). Same-source cells are CMCs at 63 %
 *    (over-dispersion 0.061), different-source at 4.3 % (binomial; 1.7 % with the +-30 deg CMC
 *    of 2026-11-28: the full circle finds more chance agreement); median 25 cells compared.
 *    Bounds: n_ss = 65, n_ds = 720 pairs -> log10 LR in [-1.82, 2.86].
 *  bullet, fitted 2026-11-28 (unchanged: bench_lr finds the same fit): every Hamby 252 and
 *    Hamby 44 land pair (10 same-land, the rest different-land) with bf_land_score's trained
 *    weights, 6 phases, 20000 simulated bullet pairs per hypothesis and per k, seed 1. Bounds
 *    k = 6: [-0.43, 1.09], k = 1: [-1.04, 1.86].
 * Re-fit when the CMC, the breech-face region or the land score changes (bench_lr prints this
 * table and says whether it still matches). */
static const bf_lr_model BF_LR_CARTRIDGE = {
  .kind = BF_KIND_CARTRIDGE, .method = BF_LR_BETABINOM,
  .p_ss = 0.629515, .rho_ss = 0.0617051, .p_ds = 0.0410617, .rho_ds = 0,
  .ncells = 25, .n_ss = 65, .n_ds = 720,
  .reference = "fadul+dfsc-pair CMC (full circle), fitted 2026-11-29"};
static const bf_lr_model BF_LR_BULLET = {
  .kind = BF_KIND_BULLET, .method = BF_LR_LOGIT,
  .a = {-1.4204, -0.815314, -0.64855, -0.536562, -0.481673, -0.448792},
  .b = {6.61805, 5.68275, 5.41354, 5.2919, 5.21213, 5.15576},
  .n_ss = 10, .n_ds = 72,
  .reference = "hamby252+hamby44 land pairs (SAM simulated), fitted 2026-11-28"};

const bf_lr_model *bf_lr_model_builtin(int kind)
{
  return kind == BF_KIND_CARTRIDGE ? &BF_LR_CARTRIDGE : kind == BF_KIND_BULLET ? &BF_LR_BULLET : NULL;
}

/* ln of the beta-binomial probability of c of n (the binomial coefficient cancels in a ratio
 * but is kept so the value is a probability). rho -> 0 is the binomial. */
static double ln_betabinom(int c, int n, double p, double rho)
{
  double lc = lgamma(n + 1.0) - lgamma(c + 1.0) - lgamma(n - c + 1.0);
  if (rho < 1e-9)
    return lc + c * log(p) + (n - c) * log1p(-p);
  double t = 1.0 / rho - 1.0, a = p * t, b = (1 - p) * t;
  return lc + lgamma(c + a) + lgamma(n - c + b) - lgamma(n + a + b) - lgamma(a) - lgamma(b) +
         lgamma(a + b);
}

static double logit(double s)
{
  if (s < 1e-3)
    s = 1e-3;
  if (s > 1 - 1e-3)
    s = 1 - 1e-3;
  return log(s / (1 - s));
}

static int lands_k(int n)
{
  return n < 1 || n > BF_LR_MAXK ? BF_LR_MAXK : n;
}

double bf_lr_log10_raw(const bf_lr_model *m, double score, int ncells)
{
  if (m->method == BF_LR_LOGIT) {
    int k = lands_k(ncells);
    return (m->a[k - 1] + m->b[k - 1] * logit(score)) / M_LN10;
  }
  int n = ncells > 0 ? ncells : m->ncells;
  int c = (int)lround(score);
  if (c > n)
    n = c; /* a count above the cells given: the count's own size is the least possible */
  return (ln_betabinom(c, n, m->p_ss, m->rho_ss) - ln_betabinom(c, n, m->p_ds, m->rho_ds)) /
         M_LN10;
}

int bf_lr_score(bf_lr *out, int kind, double score, int ncells, const bf_lr_model *m)
{
  memset(out, 0, sizeof *out);
  if (!m)
    m = bf_lr_model_builtin(kind);
  if (!m || m->kind != kind)
    return bf_error_set(BF_EINVAL, "likelihood ratio: no model for kind %d", kind);
  if (!isfinite(score) || score < 0 || (kind == BF_KIND_BULLET && score > 1))
    return bf_error_set(BF_EINVAL, "likelihood ratio: score %g out of range", score);
  double raw = bf_lr_log10_raw(m, score, ncells);
  double g = m->method == BF_LR_LOGIT ? lands_k(ncells) : 1; /* independent groups */
  double hi = log10(m->n_ds / g + 1), lo = -log10(m->n_ss / g + 1), v = raw;
  if (v > hi)
    v = hi;
  if (v < lo)
    v = lo;
  out->log10_raw = raw;
  out->log10_lr = v;
  out->lr = pow(10, v);
  out->capped = v != raw;
  out->reference = m->reference;
  out->match = bf_lr_is_hit(v, NULL);
  return 0;
}

int bf_lr_cmc(bf_lr *out, const bf_cmc_result *r, const bf_lr_model *m)
{
  int d = r->cmc_original[1] < r->cmc_original[0];
  return bf_lr_score(out, BF_KIND_CARTRIDGE, r->score, r->ncells[d], m);
}

int bf_lr_bullet(bf_lr *out, const bf_bullet_result *r, const bf_lr_model *m)
{
  if (r->phase < 0) /* nothing comparable: no evidence either way */
    return bf_lr_score(out, BF_KIND_BULLET, 0.5, 0, &(bf_lr_model){.kind = BF_KIND_BULLET,
                       .method = BF_LR_LOGIT, .reference = (m ? m : &BF_LR_BULLET)->reference});
  return bf_lr_score(out, BF_KIND_BULLET, r->score, r->phase_pairs[r->phase], m);
}

int bf_lr_is_hit(double log10_lr, const bf_lr_rule *rule)
{
  bf_lr_rule def = BF_LR_RULE_INIT;
  if (!rule)
    rule = &def;
  return isfinite(log10_lr) && log10_lr >= rule->min_log10_lr;
}

/* ---- fitting ---- */

/* Method of moments for one hypothesis: p = sum c / sum n (with half a count each side so
 * p is never 0 or 1); over-dispersion from sum n_i (c_i/n_i - p)^2 = p (1-p) sum (1 + (n_i-1) rho)
 * clamped to [0, 0.5] (0 = binomial: too few pairs to see any). */
static void moments(double *p, double *rho, const int *c, const int *n, const int *same, int np,
                    int want)
{
  double sc = 0, sn = 0, k = 0, sn1 = 0;
  for (int i = 0; i < np; i++)
    if (same[i] == want && n[i] > 0) {
      sc += c[i];
      sn += n[i];
      sn1 += n[i] - 1;
      k++;
    }
  *p = (sc + 0.5) / (sn + 1);
  double s = 0;
  for (int i = 0; i < np; i++)
    if (same[i] == want && n[i] > 0) {
      double d = (double)c[i] / n[i] - *p;
      s += n[i] * d * d;
    }
  double r = sn1 > 0 ? (s / (*p * (1 - *p)) - k) / sn1 : 0;
  *rho = r < 0 ? 0 : r > 0.5 ? 0.5 : r;
}

int bf_lr_fit_cmc(bf_lr_model *m, const int *c, const int *n, const int *same, int np,
                  const char *reference)
{
  memset(m, 0, sizeof *m);
  int nss = 0, nds = 0;
  for (int i = 0; i < np; i++) {
    if (n[i] <= 0 || c[i] < 0 || c[i] > n[i])
      return bf_error_set(BF_EINVAL, "CMC fit: pair %d has %d CMCs of %d cells", i, c[i], n[i]);
    same[i] ? nss++ : nds++;
  }
  if (!nss || !nds)
    return bf_error_set(BF_EINVAL, "CMC fit: %d same-source and %d different-source pairs "
                                   "(need both)", nss, nds);
  m->kind = BF_KIND_CARTRIDGE;
  m->method = BF_LR_BETABINOM;
  moments(&m->p_ss, &m->rho_ss, c, n, same, np, 1);
  moments(&m->p_ds, &m->rho_ds, c, n, same, np, 0);
  int *tmp = bf_malloc(sizeof *tmp * (size_t)np);
  if (!tmp)
    return bf_error_set(BF_ENOMEM, "CMC fit: out of memory");
  memcpy(tmp, n, sizeof *tmp * (size_t)np);
  for (int i = 1; i < np; i++) /* median cells compared (insertion sort: a few hundred) */
    for (int j = i; j > 0 && tmp[j - 1] > tmp[j]; j--) {
      int t = tmp[j];
      tmp[j] = tmp[j - 1];
      tmp[j - 1] = t;
    }
  m->ncells = tmp[np / 2];
  bf_free(tmp);
  m->n_ss = nss;
  m->n_ds = nds;
  m->reference = reference;
  return 0;
}

int bf_lr_fit_logit(double *pa, double *pb, const double *s, const int *same, int np, double ridge)
{
  *pa = *pb = 0;
  int nss = 0, nds = 0;
  for (int i = 0; i < np; i++) {
    if (!isfinite(s[i]))
      return bf_error_set(BF_EINVAL, "logit fit: score %d is not finite", i);
    same[i] ? nss++ : nds++;
  }
  if (!nss || !nds)
    return bf_error_set(BF_EINVAL, "logit fit: %d same-source and %d different-source scores "
                                   "(need both)", nss, nds);
  /* weights: each hypothesis totals 1, so the intercept is a log LR, not log posterior odds */
  double wss = 1.0 / nss, wds = 1.0 / nds, a = 0, b = 0;
  for (int it = 0; it < 100; it++) { /* Newton-Raphson on the penalised log likelihood */
    double g0 = 0, g1 = -ridge * b, h00 = 0, h01 = 0, h11 = ridge;
    for (int i = 0; i < np; i++) {
      double x = logit(s[i]), w = same[i] ? wss : wds;
      double pr = 1 / (1 + exp(-(a + b * x))), r = same[i] - pr, v = w * pr * (1 - pr);
      g0 += w * r;
      g1 += w * r * x;
      h00 += v;
      h01 += v * x;
      h11 += v * x * x;
    }
    double det = h00 * h11 - h01 * h01;
    if (!(fabs(det) > 1e-300))
      break;
    double da = (h11 * g0 - h01 * g1) / det, db = (h00 * g1 - h01 * g0) / det;
    a += da;
    b += db;
    if (fabs(da) + fabs(db) < 1e-10)
      break;
  }
  *pa = a;
  *pb = b;
  return 0;
}

int bf_lr_fit_logistic(double *w, const double *x, int nf, const int *same, int n, double ridge)
{
  enum { M = 9 };
  int nss = 0, nds = 0, d = nf + 1;
  if (nf < 1 || nf > M - 1)
    return bf_error_set(BF_EINVAL, "logistic fit: %d features (1 to %d)", nf, M - 1);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < nf; j++)
      if (!isfinite(x[i * nf + j]))
        return bf_error_set(BF_EINVAL, "logistic fit: feature %d of row %d is not finite", j, i);
    same[i] ? nss++ : nds++;
  }
  if (!nss || !nds)
    return bf_error_set(BF_EINVAL, "logistic fit: %d same-source and %d different-source rows "
                                   "(need both)", nss, nds);
  double wss = 1.0 / nss, wds = 1.0 / nds;
  for (int j = 0; j < d; j++)
    w[j] = 0;
  for (int it = 0; it < 200; it++) {
    double g[M] = {0}, H[M][M + 1] = {{0}};
    for (int j = 1; j < d; j++) {
      g[j] = -ridge * w[j];
      H[j][j] = ridge;
    }
    for (int i = 0; i < n; i++) {
      double xi[M] = {1}, t = w[0];
      for (int j = 1; j < d; j++) {
        xi[j] = x[i * nf + j - 1];
        t += w[j] * xi[j];
      }
      double ww = same[i] ? wss : wds, pr = 1 / (1 + exp(-t)), r = same[i] - pr;
      double v = ww * pr * (1 - pr);
      for (int j = 0; j < d; j++) {
        g[j] += ww * r * xi[j];
        for (int k = 0; k < d; k++)
          H[j][k] += v * xi[j] * xi[k];
      }
    }
    for (int j = 0; j < d; j++) /* solve H step = g */
      H[j][d] = g[j];
    double dw[M];
    if (bf_solve(&H[0][0], d, M + 1, dw, 1e-300))
      return bf_error_set(BF_EINVAL, "logistic fit: singular (a feature is constant?)");
    double step = 0;
    for (int j = 0; j < d; j++) {
      w[j] += dw[j];
      step += fabs(dw[j]);
    }
    if (step < 1e-10)
      break;
  }
  return 0;
}

static double urand(unsigned long long *st)
{
  *st ^= *st << 13;
  *st ^= *st >> 7;
  *st ^= *st << 17;
  return (*st >> 11) * (1.0 / 9007199254740992.0);
}

int bf_lr_fit_bullet(bf_lr_model *m, const double *land_ss, int nss, const double *land_ds,
                     int nds, int nphase, int nsim, unsigned long long seed,
                     const char *reference)
{
  memset(m, 0, sizeof *m);
  if (nss < 1 || nds < 1 || nphase < 1 || nphase > 64 || nsim < 1)
    return bf_error_set(BF_EINVAL, "bullet fit: %d same-land and %d different-land scores, %d "
                                   "phases, %d simulations", nss, nds, nphase, nsim);
  double *s = bf_malloc(sizeof *s * (size_t)nsim * 2);
  int *lab = bf_malloc(sizeof *lab * (size_t)nsim * 2);
  int rc = 0;
  if (!s || !lab) {
    rc = bf_error_set(BF_ENOMEM, "bullet fit: out of memory");
    goto done;
  }
  unsigned long long st = seed ? seed : 1;
  for (int kl = 1; kl <= BF_LR_MAXK && !rc; kl++) {
    for (int k = 0; k < 2 * nsim; k++) {
      int same = k < nsim;
      double best = -1;
      for (int p = 0; p < nphase; p++) {
        double sum = 0;
        for (int l = 0; l < kl; l++) {
          int useSS = same && p == 0;
          int i = (int)(urand(&st) * (useSS ? nss : nds));
          sum += useSS ? land_ss[i] : land_ds[i];
        }
        if (sum / kl > best)
          best = sum / kl;
      }
      s[k] = best;
      lab[k] = same;
    }
    /* ridge 1e-3 of the equal-weight likelihood: keeps the slope finite when simulated
     * hypotheses separate perfectly, negligible otherwise */
    rc = bf_lr_fit_logit(&m->a[kl - 1], &m->b[kl - 1], s, lab, 2 * nsim, 1e-3);
  }
  m->kind = BF_KIND_BULLET;
  m->method = BF_LR_LOGIT;
  m->n_ss = nss;
  m->n_ds = nds;
  m->reference = reference;
done:
  bf_free(s);
  bf_free(lab);
  return rc;
}

/* ---- evaluation ---- */

double bf_lr_cllr(const double *l10, const int *same, int n)
{
  double s1 = 0, s0 = 0;
  int n1 = 0, n0 = 0;
  for (int i = 0; i < n; i++) {
    double ln = l10[i] * M_LN10; /* log2(1 + e^x) computed stably */
    double x = same[i] ? -ln : ln;
    double v = (x > 0 ? x + log1p(exp(-x)) : log1p(exp(x))) / M_LN2;
    if (same[i]) {
      s1 += v;
      n1++;
    } else {
      s0 += v;
      n0++;
    }
  }
  if (!n1 || !n0)
    return NAN;
  return 0.5 * (s1 / n1 + s0 / n0);
}

typedef struct lv {
  double x;
  int same;
} lv;
static int cmp_lv(const void *a, const void *b)
{
  const lv *p = a, *q = b;
  return p->x < q->x ? -1 : p->x > q->x ? 1 : q->same - p->same; /* ties: Hss first (worst) */
}

double bf_lr_cllr_min(const double *l10, const int *same, int n)
{
  if (n < 1)
    return NAN;
  lv *v = bf_malloc(sizeof *v * (size_t)n);
  double *val = bf_malloc(sizeof *val * (size_t)n), *w = bf_malloc(sizeof *w * (size_t)n);
  int *len = bf_malloc(sizeof *len * (size_t)n);
  double *out = bf_malloc(sizeof *out * (size_t)n);
  int *lab = bf_malloc(sizeof *lab * (size_t)n);
  double res = NAN;
  if (!v || !val || !w || !len || !out || !lab)
    goto done;
  int n1 = 0;
  for (int i = 0; i < n; i++) {
    v[i].x = l10[i];
    v[i].same = same[i] != 0;
    n1 += v[i].same;
  }
  int n0 = n - n1;
  if (!n1 || !n0)
    goto done;
  qsort(v, (size_t)n, sizeof *v, cmp_lv);
  /* PAV: non-decreasing posterior P(Hss | x) as blocks of pooled means */
  int nb = 0;
  for (int i = 0; i < n; i++) {
    val[nb] = v[i].same;
    w[nb] = 1;
    len[nb] = 1;
    nb++;
    while (nb > 1 && val[nb - 2] >= val[nb - 1]) {
      double tw = w[nb - 2] + w[nb - 1];
      val[nb - 2] = (val[nb - 2] * w[nb - 2] + val[nb - 1] * w[nb - 1]) / tw;
      w[nb - 2] = tw;
      len[nb - 2] += len[nb - 1];
      nb--;
    }
  }
  /* posterior -> LR: divide by the data's prior odds n1/n0; clamp 0 and 1 to the data's
   * resolution is NOT done: Cllr_min of perfectly separated data is 0 */
  int k = 0;
  for (int b = 0; b < nb; b++)
    for (int j = 0; j < len[b]; j++, k++) {
      double p = val[b];
      out[k] = p <= 0 ? -INFINITY : p >= 1 ? INFINITY : log10(p / (1 - p) * n0 / n1);
      lab[k] = v[k].same;
    }
  /* infinite values on the right side cost 0; wrong-side infinities cannot occur after PAV */
  double s1 = 0, s0 = 0;
  for (int i = 0; i < n; i++) {
    double ln = out[i] * M_LN10, x = lab[i] ? -ln : ln;
    double c = isinf(x) ? (x < 0 ? 0 : INFINITY)
                        : (x > 0 ? x + log1p(exp(-x)) : log1p(exp(x))) / M_LN2;
    if (lab[i])
      s1 += c;
    else
      s0 += c;
  }
  res = 0.5 * (s1 / n1 + s0 / n0);
done:
  bf_free(v);
  bf_free(val);
  bf_free(w);
  bf_free(len);
  bf_free(out);
  bf_free(lab);
  return res;
}
