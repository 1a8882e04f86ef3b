/* Search prefilter descriptors and their score (see bf_prefilter.h for the method). */
#include "bf_prefilter.h"
#include "bf_error.h"
#include "bf_simd.h"

#include <complex.h>
#include <fftw3.h> /* after complex.h: fftwf_complex is then float complex */
#include "bf_fft.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PF_MAX_ANG 256

struct bf_prefilter {
  bf_prefilter_opts o;
  int nh;               /* angular harmonics kept per ring: nang/2 + 1 */
  fftwf_plan ang_r2c;   /* nang real -> nh complex (unaligned, new-array execute) */
  fftwf_plan ang_c2r;   /* nh complex -> nang real */
};

int bf_prefilter_new(bf_prefilter **out, const bf_prefilter_opts *o)
{
  bf_prefilter_opts def = BF_PREFILTER_OPTS_INIT;
  *out = NULL;
  if (!o)
    o = &def;
  if (o->nrad < 2 || o->nrad > 256 || o->nang < 8 || o->nang > PF_MAX_ANG ||
      (o->nang & (o->nang - 1)) || !(o->spacing > 0) || !(o->lambda_min > 2 * o->spacing) ||
      !(o->lambda_max > o->lambda_min) || !(o->blambda_min > 0) ||
      !(o->blambda_max > o->blambda_min))
    return bf_error_set(BF_EINVAL, "prefilter options out of range (nrad %d, nang %d, "
                        "wavelengths %g-%g um at %g um)", o->nrad, o->nang, o->lambda_min,
                        o->lambda_max, o->spacing);
  bf_prefilter *pf = calloc(1, sizeof *pf);
  if (!pf)
    return bf_error_set(BF_ENOMEM, "out of memory for the prefilter");
  pf->o = *o;
  pf->nh = o->nang / 2 + 1;
  float *r = fftwf_malloc(sizeof(float) * o->nang);
  fftwf_complex *c = fftwf_malloc(sizeof(fftwf_complex) * pf->nh);
  if (r && c) { /* unaligned (stack arrays): a plan the cache cannot hold, made under its lock */
    bf_fft_lock();
    pf->ang_r2c = fftwf_plan_dft_r2c_1d(o->nang, r, c, FFTW_ESTIMATE | FFTW_UNALIGNED);
    pf->ang_c2r = fftwf_plan_dft_c2r_1d(o->nang, c, r, FFTW_ESTIMATE | FFTW_UNALIGNED);
    bf_fft_unlock();
  }
  fftwf_free(r);
  fftwf_free(c);
  if (!pf->ang_r2c || !pf->ang_c2r) {
    bf_prefilter_free(pf);
    return bf_error_set(BF_ENOMEM, "cannot plan the prefilter's angular FFTs");
  }
  *out = pf;
  return 0;
}

void bf_prefilter_free(bf_prefilter *pf)
{
  if (!pf)
    return;
  bf_fft_lock();
  if (pf->ang_r2c)
    fftwf_destroy_plan(pf->ang_r2c);
  if (pf->ang_c2r)
    fftwf_destroy_plan(pf->ang_c2r);
  bf_fft_unlock();
  free(pf);
}

size_t bf_prefilter_len(const bf_prefilter *pf, int kind)
{
  if (kind == BF_KIND_CARTRIDGE)
    return (size_t)pf->o.nrad * pf->nh * 2;
  if (kind == BF_KIND_BULLET)
    return 1 + (size_t)BF_PF_MAX_LANDS * pf->o.nrad;
  return 0;
}

const char *bf_prefilter_kind_name(int kind)
{
  return kind == BF_KIND_CARTRIDGE ? "cartridge-pf" : kind == BF_KIND_BULLET ? "bullet-pf" : NULL;
}

/* Zero-mean unit-norm in place; returns 0 when the vector is constant. */
static int normalise(float *v, int n)
{
  double m = 0, ss = 0;
  for (int i = 0; i < n; i++)
    m += v[i];
  m /= n;
  for (int i = 0; i < n; i++)
    ss += (v[i] - m) * (v[i] - m);
  if (!(ss > 1e-20)) {
    memset(v, 0, sizeof(float) * n);
    return 0;
  }
  double s = 1.0 / sqrt(ss);
  for (int i = 0; i < n; i++)
    v[i] = (float)((v[i] - m) * s);
  return 1;
}

static int next_pow2(int n)
{
  int p = 1;
  while (p < n)
    p <<= 1;
  return p;
}

/* |F| at fractional frequency (kx, ky) in bins, from the r2c half-spectrum mag[ny][nxh]. */
static double mag_at(const float *mag, int N, int nxh, double kx, double ky)
{
  if (kx < 0) { /* |F(-k)| = |F(k)| for a real image */
    kx = -kx;
    ky = -ky;
  }
  int x0 = (int)floor(kx), y0 = (int)floor(ky);
  double fx = kx - x0, fy = ky - y0;
  double v = 0;
  for (int j = 0; j < 2; j++)
    for (int i = 0; i < 2; i++) {
      int x = x0 + i, y = y0 + j;
      double w = (i ? fx : 1 - fx) * (j ? fy : 1 - fy);
      if (w == 0)
        continue;
      if (x >= nxh)
        x = nxh - 1;
      int yy = ((y % N) + N) % N;
      v += w * mag[(size_t)yy * nxh + x];
    }
  return v;
}

static int describe_cartridge(const bf_prefilter *pf, bf_feature *d, const bf_feature *f)
{
  const bf_prefilter_opts *o = &pf->o;
  int ret = 0;
  float *img = NULL, *mag = NULL;
  fftwf_complex *spec = NULL;
  const bf_fft_plan *plan = NULL;
  if (f->kind != BF_KIND_CARTRIDGE || f->nx < 8 || f->ny < 8 || !(f->dx > 0))
    return bf_error_set(BF_EINVAL, "prefilter: not a cartridge feature (%d x %d, kind %d)",
                        f->nx, f->ny, f->kind);
  int fac = (int)lround(o->spacing / f->dx);
  if (fac < 1)
    fac = 1;
  double sp = fac * f->dx;
  int mx = f->nx / fac, my = f->ny / fac;
  int N = next_pow2(mx > my ? mx : my);
  if (N < 512)
    N = 512;
  int nxh = N / 2 + 1;
  if ((long)N * N > BF_MAX_POINTS)
    return bf_error_set(BF_ELIMIT, "prefilter: feature %d x %d too large", f->nx, f->ny);
  img = fftwf_malloc(sizeof(float) * N * N);
  spec = fftwf_malloc(sizeof(fftwf_complex) * N * nxh);
  mag = malloc(sizeof(float) * N * nxh);
  if (!img || !spec || !mag) {
    ret = bf_error_set(BF_ENOMEM, "prefilter: out of memory for a %d^2 FFT", N);
    goto done;
  }
  /* Block average of valid points; the mean of valid heights is removed, missing -> 0. */
  double sum = 0;
  long nv = 0;
  for (size_t i = 0; i < (size_t)f->nx * f->ny; i++)
    if (isfinite(f->z[i])) {
      sum += f->z[i];
      nv++;
    }
  if (nv < 64) {
    ret = bf_error_set(BF_EQUALITY, "prefilter: only %ld valid points in the feature", nv);
    goto done;
  }
  double mean = sum / nv;
  memset(img, 0, sizeof(float) * N * N);
  int ox = (N - mx) / 2, oy = (N - my) / 2;
  for (int y = 0; y < my; y++)
    for (int x = 0; x < mx; x++) {
      double s = 0;
      int c = 0;
      for (int j = 0; j < fac; j++)
        for (int i = 0; i < fac; i++) {
          float v = f->z[(size_t)(y * fac + j) * f->nx + x * fac + i];
          if (isfinite(v)) {
            s += v - mean;
            c++;
          }
        }
      img[(size_t)(y + oy) * N + x + ox] = c ? (float)(s / (fac * fac)) : 0.0f;
    }
  if (!(plan = bf_fft_plan_estimate(N, N))) {
    ret = bf_error_prefix(BF_ENOMEM, "prefilter: ");
    goto done;
  }
  fftwf_execute_dft_r2c(plan->r2c, img, spec);
  for (size_t i = 0; i < (size_t)N * nxh; i++)
    mag[i] = cabsf(spec[i]);

  int nh = pf->nh;
  float ring[PF_MAX_ANG];
  double lr0 = log(o->lambda_min), lr1 = log(o->lambda_max);
  for (int r = 0; r < o->nrad; r++) {
    double lam = exp(lr1 + (lr0 - lr1) * r / (o->nrad - 1)); /* long to short wavelength */
    double k = N * sp / lam;                                    /* radius in frequency bins */
    for (int a = 0; a < o->nang; a++) {
      double th = M_PI * a / o->nang;
      ring[a] = (float)log(mag_at(mag, N, nxh, k * cos(th), k * sin(th)) + 1e-9);
    }
    normalise(ring, o->nang);
    fftwf_complex out[PF_MAX_ANG / 2 + 1];
    fftwf_execute_dft_r2c(pf->ang_r2c, ring, out);
    float *dst = d->z + (size_t)r * nh * 2;
    for (int h = 0; h < nh; h++) {
      dst[2 * h] = crealf(out[h]);
      dst[2 * h + 1] = cimagf(out[h]);
    }
  }
  d->params[1] = sp;
done:
  fftwf_free(img);
  fftwf_free(spec);
  free(mag);
  return ret;
}

/* Log power spectrum of one land signature at log-spaced wavelengths, normalised, into v. */
static int describe_land(const bf_prefilter *pf, float *v, const bf_feature *f)
{
  const bf_prefilter_opts *o = &pf->o;
  int n = f->nx * f->ny, ret = 0;
  if (n < 16 || !(f->dx > 0))
    return bf_error_set(BF_EQUALITY, "prefilter: land signature of %d points is too short", n);
  int N = next_pow2(n);
  if (N * f->dx < 2 * o->blambda_max)
    N = next_pow2((int)ceil(2 * o->blambda_max / f->dx));
  float *x = fftwf_malloc(sizeof(float) * N);
  fftwf_complex *X = fftwf_malloc(sizeof(fftwf_complex) * (N / 2 + 1));
  const bf_fft_plan *plan = NULL;
  if (!x || !X) {
    ret = bf_error_set(BF_ENOMEM, "prefilter: out of memory");
    goto done;
  }
  double sum = 0;
  int nv = 0;
  for (int i = 0; i < n; i++)
    if (isfinite(f->z[i])) {
      sum += f->z[i];
      nv++;
    }
  if (nv < 16) {
    ret = bf_error_set(BF_EQUALITY, "prefilter: land signature has only %d valid points", nv);
    goto done;
  }
  memset(x, 0, sizeof(float) * N);
  for (int i = 0; i < n; i++)
    x[i] = isfinite(f->z[i]) ? (float)(f->z[i] - sum / nv) : 0.0f;
  if (!(plan = bf_fft_plan_estimate(1, N))) {
    ret = bf_error_prefix(BF_ENOMEM, "prefilter: ");
    goto done;
  }
  fftwf_execute_dft_r2c(plan->r2c, x, X);
  double l0 = log(o->blambda_min), l1 = log(o->blambda_max);
  for (int r = 0; r < o->nrad; r++) {
    double lam = exp(l1 + (l0 - l1) * r / (o->nrad - 1));
    double k = N * f->dx / lam;
    /* average power over the bins of a log band around k (half a step either side) */
    double step = (l1 - l0) / (o->nrad - 1);
    int k0 = (int)floor(k * exp(-step / 2)), k1 = (int)ceil(k * exp(step / 2));
    if (k0 < 1)
      k0 = 1;
    if (k1 > N / 2)
      k1 = N / 2;
    double p = 0;
    int c = 0;
    for (int b = k0; b <= k1; b++, c++)
      p += crealf(X[b]) * crealf(X[b]) + cimagf(X[b]) * cimagf(X[b]);
    v[r] = (float)log(p / (c ? c : 1) + 1e-12);
  }
  normalise(v, o->nrad);
done:
  fftwf_free(x);
  fftwf_free(X);
  return ret;
}

int bf_prefilter_describe(const bf_prefilter *pf, bf_feature **out, bf_feature *const *feat, int n)
{
  *out = NULL;
  if (n < 1 || !feat || !feat[0])
    return bf_error_set(BF_EINVAL, "prefilter: no feature to describe");
  int kind = feat[0]->kind;
  size_t len = bf_prefilter_len(pf, kind);
  if (!len)
    return bf_error_set(BF_EINVAL, "prefilter: unknown feature kind %d", kind);
  bf_feature *d = NULL;
  int ret = bf_feature_new(&d, kind, (int)len, 1, 1.0, 1.0);
  if (ret)
    return ret;
  memset(d->z, 0, sizeof(float) * len);
  d->version = BF_PREFILTER_VERSION;
  d->valid_fraction = 1;
  if (kind == BF_KIND_CARTRIDGE) {
    if (n == 2 && feat[1] && feat[1]->kind == BF_KIND_FIRINGPIN)
      n = 1; /* the second mark is compared in the full stage, never described */
    if (n != 1) {
      ret = bf_error_set(BF_EINVAL, "prefilter: a cartridge case has one feature, not %d", n);
      goto done;
    }
    ret = describe_cartridge(pf, d, feat[0]);
    d->params[0] = 1;
  } else {
    int nl = n < BF_PF_MAX_LANDS ? n : BF_PF_MAX_LANDS, good = 0;
    for (int i = 0; i < nl && !ret; i++) {
      if (!feat[i] || feat[i]->kind != BF_KIND_BULLET) {
        ret = bf_error_set(BF_EINVAL, "prefilter: land %d is not a bullet feature", i + 1);
        break;
      }
      int r = describe_land(pf, d->z + 1 + (size_t)i * pf->o.nrad, feat[i]);
      if (r == BF_EQUALITY) /* an unusable land stays zero: it scores 0 against anything */
        bf_error_clear();
      else if (r)
        ret = r;
      else
        good++;
    }
    if (!ret && !good)
      ret = bf_error_set(BF_EQUALITY, "prefilter: no usable land among %d", n);
    d->z[0] = (float)nl;
    d->params[0] = nl;
  }
done:
  if (ret)
    bf_feature_free(d);
  else
    *out = d;
  return ret;
}

/* acc[h] = sum over the rings of conj(A) B at harmonic h (the spectrum of the correlation of b
 * shifted against a), summed ring by ring in float; the real and imaginary sums in separate
 * vectorised arrays, an AVX2 clone where the CPU has it (no FMA: the same roundings). Every
 * search scores each stored descriptor, so this loop is the prefilter's cost. */
BF_SIMD_CLONES
static void ring_sum(fftwf_complex *acc, const float *a, const float *b, int nr, int nh)
{
  float re[PF_MAX_ANG / 2 + 1], im[PF_MAX_ANG / 2 + 1];
  for (int h = 0; h < nh; h++)
    re[h] = im[h] = 0;
  for (int r = 0; r < nr; r++) {
    const float *x = a + (size_t)r * nh * 2, *y = b + (size_t)r * nh * 2;
#pragma omp simd
    for (int h = 0; h < nh; h++) {
      float ar = x[2 * h], ai = x[2 * h + 1], br = y[2 * h], bi = y[2 * h + 1];
      re[h] += ar * br + ai * bi;
      im[h] += ar * bi - ai * br;
    }
  }
  for (int h = 0; h < nh; h++) { /* a complex is laid out as its two parts (C11 6.2.5) */
    float *c = (float *)&acc[h];
    c[0] = re[h];
    c[1] = im[h];
  }
}

static double score_cartridge(const bf_prefilter *pf, const float *a, const float *b, double *shift)
{
  int nh = pf->nh, nang = pf->o.nang, nr = pf->o.nrad;
  fftwf_complex acc[PF_MAX_ANG / 2 + 1];
  float corr[PF_MAX_ANG];
  ring_sum(acc, a, b, nr, nh);
  fftwf_execute_dft_c2r(pf->ang_c2r, acc, corr);
  int best = 0;
  for (int s = 1; s < nang; s++)
    if (corr[s] > corr[best])
      best = s;
  if (shift) { /* parabolic interpolation of the peak between its circular neighbours */
    double l = corr[(best + nang - 1) % nang], c = corr[best], r = corr[(best + 1) % nang];
    double den = l - 2 * c + r, d = den < 0 ? 0.5 * (l - r) / den : 0;
    if (!(fabs(d) <= 0.5))
      d = 0;
    double sh = 180.0 * (best + d) / nang;
    *shift = sh < 0 ? sh + 180 : sh >= 180 ? sh - 180 : sh;
  }
  return corr[best] / ((double)nang * nr);
}

static double score_bullet(const bf_prefilter *pf, const float *a, const float *b, double *shift)
{
  int nr = pf->o.nrad;
  int na = (int)a[0], nb = (int)b[0];
  if (na < 1 || nb < 1 || na > BF_PF_MAX_LANDS || nb > BF_PF_MAX_LANDS)
    return -1;
  int nmax = na > nb ? na : nb, nmin = na < nb ? na : nb;
  double best = -2;
  int bestp = 0;
  for (int p = 0; p < nmax; p++) {
    double s = 0;
    for (int i = 0; i < nmin; i++) {
      const float *x = a + 1 + (size_t)(na >= nb ? (i + p) % na : i) * nr;
      const float *y = b + 1 + (size_t)(na >= nb ? i : (i + p) % nb) * nr;
      double d = 0;
      for (int k = 0; k < nr; k++)
        d += x[k] * y[k];
      s += d;
    }
    s /= nmin;
    if (s > best) {
      best = s;
      bestp = p;
    }
  }
  if (shift)
    *shift = bestp;
  return best;
}

double bf_prefilter_score(const bf_prefilter *pf, int kind, const float *a, const float *b,
                          double *shift)
{
  if (kind == BF_KIND_CARTRIDGE)
    return score_cartridge(pf, a, b, shift);
  if (kind == BF_KIND_BULLET)
    return score_bullet(pf, a, b, shift);
  if (shift)
    *shift = 0;
  return -1;
}
