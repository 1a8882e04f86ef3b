/* Congruent Matching Cells: cell registration by FFT correlation, cmcR's decision rules. */
#include "bf_cmc.h"
#include "bf_error.h"
#include "bf_fft.h"
#include "bf_prefilter.h"
#include "bf_simd.h"

#include <math.h>
#include <omp.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>
#define HAVE_ROWS4 1 /* the sampler's four-row AVX2 path (GCC's target attribute) */
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct bf_cmc_prep {
  int nx, ny, qflags;
  double sp;
  float *z;                /* copy of the feature heights */
  int cw, ch, ox, oy;      /* cell size and grid origin, points */
  int rx, ry;              /* region size, points */
  int n0, n1, nh;          /* FFT rows, columns, complex columns */
  int ncell;               /* cells_x * cells_y */
  unsigned char *use;      /* cell kept (missing <= max_missing) */
  fftwf_complex **cfft;    /* per kept cell: FFT of its standardised, zero-filled heights */
  const bf_fft_plan *plan;
  const bf_fft_band *band; /* the inverse on the rows of shifts that keep a cell inside */
  int cells_x, cells_y;
  double max_missing;
  /* two-level search (opts.coarse): FFT correlation at half resolution, then the exact
   * zero-filled correlation at full resolution around the coarse peak */
  int coarse;
  int cnx, cny;            /* half-resolution size */
  float *cz;               /* 2x2 NaN-aware means (NaN when fewer than 2 of 4 are valid) */
  int ccw, cch, crx, cry, cn0, cn1, cnh;
  fftwf_complex **ccfft;   /* per kept cell: coarse FFT */
  float **cstd;            /* per kept cell: standardised, zero-filled full-resolution cell */
  const bf_fft_plan *cplan;
  const bf_fft_band *cband;
  /* full circle: the prefilter descriptor whose rotation estimate seeds the search */
  bf_prefilter *pf;
  bf_feature *desc;        /* NULL: the prefilter could not describe the surface */
};

void bf_cmc_prep_free(bf_cmc_prep *p)
{
  if (!p)
    return;
  for (int i = 0; i < p->ncell; i++) {
    if (p->cfft)
      fftwf_free(p->cfft[i]);
    if (p->ccfft)
      fftwf_free(p->ccfft[i]);
    if (p->cstd)
      free(p->cstd[i]);
  }
  free(p->cfft);
  free(p->ccfft);
  free(p->cstd);
  free(p->cz);
  free(p->use);
  free(p->z);
  bf_feature_free(p->desc);
  bf_prefilter_free(p->pf);
  free(p);
}

/* Mean and sd over valid values of a w x h window (stride), count of valid. */
static int win_stats(const float *z, int w, int h, int stride, double *mean, double *sd)
{
  double s = 0, s2 = 0;
  int n = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      float v = z[(size_t)y * stride + x];
      if (!isnan(v)) {
        s += v;
        s2 += (double)v * v;
        n++;
      }
    }
  *mean = n ? s / n : 0;
  double var = n ? s2 / n - *mean * *mean : 0;
  *sd = var > 0 ? sqrt(var) : 0;
  return n;
}

static int check_opts(const bf_cmc_opts *o)
{
  if (o->cells_x < 1 || o->cells_y < 1 || o->cells_x > 64 || o->cells_y > 64 ||
      !(o->region_mult >= 1) || !(o->theta_step > 0) || !(o->theta_max >= o->theta_min) ||
      (o->theta_max - o->theta_min) / o->theta_step > 720 || 360.0 / o->theta_step > 720 ||
      !(o->seed_window >= 0 && o->seed_window <= 90) || !(o->fallback_step >= 0) ||
      (o->fallback_step > 0 && 360.0 / o->fallback_step > 720) || o->fallback_keep < 0 ||
      o->fallback_keep > 720)
    return bf_error_set(BF_EINVAL, "CMC options out of range (cells %d x %d, region x%g, "
                        "theta %g..%g by %g, seed window %g, fallback step %g)", o->cells_x,
                        o->cells_y, o->region_mult, o->theta_min, o->theta_max, o->theta_step,
                        o->seed_window, o->fallback_step);
  return 0;
}

/* Half-resolution copy, coarse cell FFTs and standardised full-resolution cells. */
static int prep_coarse(bf_cmc_prep *p)
{
  float *buf = NULL;
  int rc = 0;
  p->cnx = p->nx / 2;
  p->cny = p->ny / 2;
  p->ccw = p->cw / 2;
  p->cch = p->ch / 2;
  p->crx = (int)lround((double)p->rx / p->cw * p->ccw);
  p->cry = (int)lround((double)p->ry / p->ch * p->cch);
  p->cn1 = bf_fft_fast_size(p->crx);
  p->cn0 = bf_fft_fast_size(p->cry);
  p->cnh = p->cn1 / 2 + 1;
  p->cz = malloc((size_t)p->cnx * p->cny * sizeof *p->cz);
  p->ccfft = calloc(p->ncell, sizeof *p->ccfft);
  p->cstd = calloc(p->ncell, sizeof *p->cstd);
  buf = fftwf_alloc_real((size_t)p->cn0 * p->cn1);
  if (!p->cz || !p->ccfft || !p->cstd || !buf) {
    rc = bf_error_set(BF_ENOMEM, "out of memory for a CMC prep");
    goto done;
  }
  for (int y = 0; y < p->cny; y++)
    for (int x = 0; x < p->cnx; x++) {
      const float *z = p->z + (size_t)2 * y * p->nx + 2 * x;
      float v[4] = {z[0], z[1], z[p->nx], z[p->nx + 1]}, s = 0;
      int m = 0;
      for (int k = 0; k < 4; k++)
        if (!isnan(v[k])) {
          s += v[k];
          m++;
        }
      p->cz[(size_t)y * p->cnx + x] = m >= 2 ? s / m : NAN;
    }
  if (!(p->cplan = bf_fft_plan_get(p->cn0, p->cn1)) ||
      !(p->cband = bf_fft_band_get(p->cn0, p->cn1, 0, p->cry - p->cch + 1))) {
    rc = BF_ENOMEM;
    goto done;
  }
  for (int i = 0; i < p->ncell; i++) {
    int r = i / p->cells_x, c = i % p->cells_x;
    int x0 = p->ox + c * p->cw, y0 = p->oy + r * p->ch;
    const float *fz = p->z + (size_t)y0 * p->nx + x0;
    double mean, sd;
    int nv = win_stats(fz, p->cw, p->ch, p->nx, &mean, &sd);
    if (nv < 10 || 1.0 - (double)nv / (p->cw * p->ch) > p->max_missing || !(sd > 0))
      continue;
    p->cstd[i] = malloc((size_t)p->cw * p->ch * sizeof(float));
    p->ccfft[i] = fftwf_alloc_complex((size_t)p->cn0 * p->cnh);
    if (!p->cstd[i] || !p->ccfft[i]) {
      rc = bf_error_set(BF_ENOMEM, "out of memory for CMC cell transforms");
      goto done;
    }
    for (int y = 0; y < p->ch; y++)
      for (int x = 0; x < p->cw; x++) {
        float v = fz[(size_t)y * p->nx + x];
        p->cstd[i][(size_t)y * p->cw + x] = isnan(v) ? 0.0f : (float)((v - mean) / sd);
      }
    const float *cz = p->cz + (size_t)(y0 / 2) * p->cnx + x0 / 2;
    double cm, cs;
    win_stats(cz, p->ccw, p->cch, p->cnx, &cm, &cs);
    if (!(cs > 0))
      cs = 1;
    memset(buf, 0, (size_t)p->cn0 * p->cn1 * sizeof *buf);
    for (int y = 0; y < p->cch; y++)
      for (int x = 0; x < p->ccw; x++) {
        float v = cz[(size_t)y * p->cnx + x];
        buf[(size_t)y * p->cn1 + x] = isnan(v) ? 0.0f : (float)((v - cm) / cs);
      }
    fftwf_execute_dft_r2c(p->cplan->r2c, buf, p->ccfft[i]);
    p->use[i] = 1;
  }
done:
  fftwf_free(buf);
  return rc;
}

int bf_cmc_prep_new(bf_cmc_prep **out, const bf_feature *f, const bf_cmc_opts *o)
{
  bf_cmc_opts def = BF_CMC_OPTS_INIT;
  bf_cmc_prep *p = NULL;
  float *buf = NULL;
  int rc = 0;
  *out = NULL;
  if (!o)
    o = &def;
  if ((rc = check_opts(o)))
    return rc;
  if (!f || f->kind != BF_KIND_CARTRIDGE || !f->z)
    return bf_error_set(BF_EINVAL, "CMC needs a cartridge feature");
  if (fabs(f->dx - f->dy) > 1e-6 * f->dx || !(f->dx > 0))
    return bf_error_set(BF_EINVAL, "CMC needs square spacing (got %g x %g um)", f->dx, f->dy);
  if (f->nx < 4 * o->cells_x || f->ny < 4 * o->cells_y)
    return bf_error_set(BF_EQUALITY, "feature of %d x %d points is too small for %d x %d cells",
                        f->nx, f->ny, o->cells_x, o->cells_y);
  p = calloc(1, sizeof *p);
  if (!p)
    return bf_error_set(BF_ENOMEM, "out of memory for a CMC prep");
  p->nx = f->nx;
  p->ny = f->ny;
  p->sp = f->dx;
  p->qflags = f->quality_flags;
  p->cells_x = o->cells_x;
  p->cells_y = o->cells_y;
  p->max_missing = o->max_missing;
  p->cw = f->nx / o->cells_x;
  p->ch = f->ny / o->cells_y;
  p->ox = (f->nx - p->cw * o->cells_x) / 2;
  p->oy = (f->ny - p->ch * o->cells_y) / 2;
  p->rx = (int)lround(o->region_mult * p->cw);
  p->ry = (int)lround(o->region_mult * p->ch);
  p->n1 = bf_fft_fast_size(p->rx);
  p->n0 = bf_fft_fast_size(p->ry);
  p->nh = p->n1 / 2 + 1;
  p->ncell = o->cells_x * o->cells_y;
  size_t n = (size_t)f->nx * f->ny;
  p->z = malloc(n * sizeof *p->z);
  p->use = calloc(p->ncell, 1);
  p->cfft = calloc(p->ncell, sizeof *p->cfft);
  buf = fftwf_alloc_real((size_t)p->n0 * p->n1);
  if (!p->z || !p->use || !p->cfft || !buf) {
    rc = bf_error_set(BF_ENOMEM, "out of memory for a CMC prep");
    goto done;
  }
  memcpy(p->z, f->z, n * sizeof *p->z);
  if (o->full_circle) {
    if ((rc = bf_prefilter_new(&p->pf, NULL)))
      goto done;
    const bf_feature *one = f;
    rc = bf_prefilter_describe(p->pf, &p->desc, (bf_feature *const *)&one, 1);
    if (rc == BF_EQUALITY) { /* no seed: the compare searches the whole circle */
      bf_error_clear();
      rc = 0;
    } else if (rc)
      goto done;
  }
  p->coarse = o->coarse;
  if (p->coarse) {
    rc = prep_coarse(p);
    goto done;
  }
  if (!(p->plan = bf_fft_plan_get(p->n0, p->n1)) ||
      !(p->band = bf_fft_band_get(p->n0, p->n1, 0, p->ry - p->ch + 1))) {
    rc = BF_ENOMEM;
    goto done;
  }
  for (int i = 0; i < p->ncell; i++) {
    int r = i / o->cells_x, c = i % o->cells_x;
    const float *cz = p->z + (size_t)(p->oy + r * p->ch) * p->nx + p->ox + c * p->cw;
    double mean, sd;
    int nv = win_stats(cz, p->cw, p->ch, p->nx, &mean, &sd);
    if (nv < 10 || 1.0 - (double)nv / (p->cw * p->ch) > o->max_missing || !(sd > 0))
      continue;
    memset(buf, 0, (size_t)p->n0 * p->n1 * sizeof *buf);
    for (int y = 0; y < p->ch; y++)
      for (int x = 0; x < p->cw; x++) {
        float v = cz[(size_t)y * p->nx + x];
        buf[(size_t)y * p->n1 + x] = isnan(v) ? 0.0f : (float)((v - mean) / sd);
      }
    if (!(p->cfft[i] = fftwf_alloc_complex((size_t)p->n0 * p->nh))) {
      rc = bf_error_set(BF_ENOMEM, "out of memory for CMC cell transforms");
      goto done;
    }
    fftwf_execute_dft_r2c(p->plan->r2c, buf, p->cfft[i]);
    p->use[i] = 1;
  }
done:
  if (!rc) {
    *out = p;
    p = NULL;
  }
  fftwf_free(buf);
  bf_cmc_prep_free(p);
  return rc;
}

size_t bf_cmc_prep_bytes(const bf_cmc_prep *p)
{
  if (!p)
    return 0;
  size_t b = sizeof *p + (size_t)p->nx * p->ny * sizeof(float) + (size_t)p->ncell * (1 + 3 * sizeof(void *));
  if (p->coarse)
    b += (size_t)p->cnx * p->cny * sizeof(float);
  for (int i = 0; i < p->ncell; i++) {
    if (p->cfft && p->cfft[i])
      b += (size_t)p->n0 * p->nh * sizeof(fftwf_complex);
    if (p->ccfft && p->ccfft[i])
      b += (size_t)p->cn0 * p->cnh * sizeof(fftwf_complex);
    if (p->cstd && p->cstd[i])
      b += (size_t)p->cw * p->ch * sizeof(float);
  }
  if (p->desc)
    b += sizeof *p->desc + (size_t)p->desc->nx * p->desc->ny * sizeof(float);
  return b;
}

/* One (cell, theta) registration. */
typedef struct reg {
  float corr;
  float sx, sy; /* translation, points */
  unsigned char ok;
} reg;

/* floor() for coordinates > -2^20 without a libm call (the hot loops round millions of them) */
static inline int ifloor(double v)
{
  return (int)(v + 1048576.0) - 1048576;
}

/* v, or 0 when v is NaN, without a branch (the standardising loops vectorise) */
static inline float nan_to_zero(float v)
{
  uint32_t u;
  memcpy(&u, &v, sizeof u);
  u &= -(uint32_t)((u & 0x7fffffffu) <= 0x7f800000u);
  memcpy(&v, &u, sizeof v);
  return v;
}

/* One row of a nearest-neighbour sampling of z (nx x ny, NaN outside): w points from the source
 * point (fx, fy) (+0.5 already added: floor = round) stepping by (c, -s). */
static inline void sample_row(float *row, int w, double fx, double fy, double c, double s,
                              const float *z, int nx, int ny)
{
  for (int x = 0; x < w; x++, fx += c, fy -= s) {
    int xs = ifloor(fx), ys = ifloor(fy);
    row[x] = ((unsigned)xs < (unsigned)nx && (unsigned)ys < (unsigned)ny)
               ? z[(size_t)ys * nx + xs] : NAN;
  }
}

#ifdef __SSE2__
/* Points xa..xb-1 of two rows (fx, fy: both rows' source points, advanced here), with or
 * without the bounds test (checked is a constant at each call). */
static inline __attribute__((always_inline)) void row2_span(float *r0, float *r1, int xa, int xb,
                                                           __m128d *fx, __m128d *fy, __m128d vc,
                                                           __m128d vs, const float *z, int nx,
                                                           int ny, int checked)
{
  const __m128d big = _mm_set1_pd(1048576.0);
  const __m128i ibig = _mm_set1_epi32(1048576);
  for (int x = xa; x < xb; x++) {
    /* ifloor in both lanes */
    __m128i xi = _mm_sub_epi32(_mm_cvttpd_epi32(_mm_add_pd(*fx, big)), ibig);
    __m128i yi = _mm_sub_epi32(_mm_cvttpd_epi32(_mm_add_pd(*fy, big)), ibig);
    *fx = _mm_add_pd(*fx, vc);
    *fy = _mm_sub_pd(*fy, vs);
    int xs = _mm_cvtsi128_si32(xi), ys = _mm_cvtsi128_si32(yi);
    int xs1 = _mm_cvtsi128_si32(_mm_shuffle_epi32(xi, 1));
    int ys1 = _mm_cvtsi128_si32(_mm_shuffle_epi32(yi, 1));
    if (checked) {
      r0[x] = ((unsigned)xs < (unsigned)nx && (unsigned)ys < (unsigned)ny)
                ? z[(size_t)ys * nx + xs] : NAN;
      r1[x] = ((unsigned)xs1 < (unsigned)nx && (unsigned)ys1 < (unsigned)ny)
                ? z[(size_t)ys1 * nx + xs1] : NAN;
    } else {
      r0[x] = z[(size_t)ys * nx + xs];
      r1[x] = z[(size_t)ys1 * nx + xs1];
    }
  }
}

/* Narrows [*ka, *kb) to the steps k where f0 + k d lies in [lo, hi] (keeps *ka <= *kb). */
static void steps_within(int *ka, int *kb, double f0, double d, double lo, double hi)
{
  if (d == 0) {
    if (!(f0 >= lo && f0 <= hi))
      *kb = *ka;
    return;
  }
  double k0 = (lo - f0) / d, k1 = (hi - f0) / d;
  if (d < 0) {
    double t = k0;
    k0 = k1;
    k1 = t;
  }
  /* k0 <= k <= k1; the bounds are far from int's range when the rows are */
  if (k0 > *ka)
    *ka = k0 >= *kb ? *kb : (int)ceil(k0);
  if (k1 < *kb - 1)
    *kb = k1 < *ka ? *ka : (int)floor(k1) + 1;
}

/* [*ka, *kb): the steps of 0..w-1 at which the points of all nrows rows (row k from (fx[k],
 * fy[k]), stepping by (c, -s)) lie inside an nx x ny grid with a margin of a quarter point.
 * floor(f) stays in [0, n - 1] for f in [0.25, n - 0.25], and the stepped sums differ from
 * f0 + k d by rounding only (~1e-12 here); the rows are straight, so the steps are one interval.
 * The samplers take these points without the bounds test. */
static void inside_span(int *ka, int *kb, int w, const double *fx, const double *fy, int nrows,
                        double c, double s, int nx, int ny)
{
  *ka = 0;
  *kb = w;
  for (int k = 0; k < nrows; k++) {
    steps_within(ka, kb, fx[k], c, 0.25, nx - 0.25);
    steps_within(ka, kb, fy[k], -s, 0.25, ny - 0.25);
  }
}
#endif

/* Two such rows at once, each in one lane of an SSE2 register: the same double additions and
 * truncations per row as sample_row (so the same points), without the one long dependency
 * chain of a row (the rotations were a quarter of the CMC's time); the points inside_span
 * finds in both rows without the bounds test. */
static inline void sample_row2(float *r0, float *r1, int w, double fx0, double fy0, double fx1,
                               double fy1, double c, double s, const float *z, int nx, int ny)
{
#ifdef __SSE2__
  const __m128d vc = _mm_set1_pd(c), vs = _mm_set1_pd(s);
  __m128d fx = _mm_set_pd(fx1, fx0), fy = _mm_set_pd(fy1, fy0);
  const double fxs[2] = {fx0, fx1}, fys[2] = {fy0, fy1};
  int ka, kb;
  inside_span(&ka, &kb, w, fxs, fys, 2, c, s, nx, ny);
  row2_span(r0, r1, 0, ka, &fx, &fy, vc, vs, z, nx, ny, 1);
  row2_span(r0, r1, ka, kb, &fx, &fy, vc, vs, z, nx, ny, 0);
  row2_span(r0, r1, kb, w, &fx, &fy, vc, vs, z, nx, ny, 1);
#else
  sample_row(r0, w, fx0, fy0, c, s, z, nx, ny);
  sample_row(r1, w, fx1, fy1, c, s, z, nx, ny);
#endif
}

#ifdef HAVE_ROWS4
/* Points xa..xb-1 of four rows (out, row stride w; fx, fy: the four rows' source points in the
 * lanes, advanced here), with or without the bounds test (checked is a constant at each call). */
static inline __attribute__((always_inline, target("avx2"))) void
row4_span(float *out, int w, int xa, int xb, __m256d *fx, __m256d *fy, __m256d vc, __m256d vs,
          const float *z, int nx, int ny, int checked)
{
  const __m256d big = _mm256_set1_pd(1048576.0);
  const __m128i ibig = _mm_set1_epi32(1048576), vnx = _mm_set1_epi32(nx);
  for (int x = xa; x < xb; x++) {
    __m128i xi = _mm_sub_epi32(_mm256_cvttpd_epi32(_mm256_add_pd(*fx, big)), ibig);
    __m128i yi = _mm_sub_epi32(_mm256_cvttpd_epi32(_mm256_add_pd(*fy, big)), ibig);
    *fx = _mm256_add_pd(*fx, vc);
    *fy = _mm256_sub_pd(*fy, vs);
    if (checked) {
      int xs[4], ys[4];
      _mm_storeu_si128((__m128i *)xs, xi);
      _mm_storeu_si128((__m128i *)ys, yi);
      for (int k = 0; k < 4; k++)
        out[(size_t)k * w + x] = ((unsigned)xs[k] < (unsigned)nx && (unsigned)ys[k] < (unsigned)ny)
                                   ? z[(size_t)ys[k] * nx + xs[k]] : NAN;
    } else {
      /* inside: ys nx + xs < nx ny fits an int */
      __m128i idx = _mm_add_epi32(_mm_mullo_epi32(yi, vnx), xi);
      out[x] = z[_mm_cvtsi128_si32(idx)];
      out[(size_t)w + x] = z[_mm_extract_epi32(idx, 1)];
      out[(size_t)2 * w + x] = z[_mm_extract_epi32(idx, 2)];
      out[(size_t)3 * w + x] = z[_mm_extract_epi32(idx, 3)];
    }
  }
}

/* Four rows at once, one in each lane of an AVX2 register, as sample_row2 does two: the same
 * additions and truncations per row, the points [ka, kb) inside all four rows (inside_span)
 * without the bounds test. */
__attribute__((target("avx2"))) static void sample_rows4(float *out, int w, const double *fx0,
                                                          const double *fy0, double c, double s,
                                                          const float *z, int nx, int ny, int ka,
                                                          int kb)
{
  const __m256d vc = _mm256_set1_pd(c), vs = _mm256_set1_pd(s);
  __m256d fx = _mm256_loadu_pd(fx0), fy = _mm256_loadu_pd(fy0);
  row4_span(out, w, 0, ka, &fx, &fy, vc, vs, z, nx, ny, 1);
  row4_span(out, w, ka, kb, &fx, &fy, vc, vs, z, nx, ny, 0);
  row4_span(out, w, kb, w, &fx, &fy, vc, vs, z, nx, ny, 1);
}
#endif

/* Nearest-neighbour samples of z (nx x ny, NaN outside) on a grid of w x h points (out, row
 * stride w) turned by (c, s) about (cx, cy): point (x, y) is z(R(-theta) (p - c) + c) at
 * p = (x0 + x, y0 + y), four rows at a time where the CPU has AVX2, else two. */
static void sample_grid(float *out, int w, int h, int x0, int y0, double cx, double cy, double c,
                        double s, const float *z, int nx, int ny)
{
  double u0 = x0 - cx;
  int y = 0;
  /* source = R(-theta) (p - c) + c, stepped along the row; +0.5 and floor = round */
#define ROW_FX(yy) (c * u0 + s * ((y0 + (yy)) - cy) + cx + 0.5)
#define ROW_FY(yy) (-s * u0 + c * ((y0 + (yy)) - cy) + cy + 0.5)
#ifdef HAVE_ROWS4
  if ((size_t)nx * ny < ((size_t)1 << 31) && __builtin_cpu_supports("avx2"))
    for (; y + 3 < h; y += 4) {
      double fx[4], fy[4];
      int ka, kb;
      for (int k = 0; k < 4; k++) {
        fx[k] = ROW_FX(y + k);
        fy[k] = ROW_FY(y + k);
      }
      inside_span(&ka, &kb, w, fx, fy, 4, c, s, nx, ny);
      sample_rows4(out + (size_t)y * w, w, fx, fy, c, s, z, nx, ny, ka, kb);
    }
#endif
  for (; y + 1 < h; y += 2)
    sample_row2(out + (size_t)y * w, out + (size_t)(y + 1) * w, w, ROW_FX(y), ROW_FY(y),
                ROW_FX(y + 1), ROW_FY(y + 1), c, s, z, nx, ny);
  for (; y < h; y++)
    sample_row(out + (size_t)y * w, w, ROW_FX(y), ROW_FY(y), c, s, z, nx, ny);
#undef ROW_FX
#undef ROW_FY
}

/* Nearest-neighbour rotation of a plain nx x ny array about its centre by theta degrees into
 * rot (same size): rot(p) = z(R(-theta) (p - c) + c). */
static void rotate_arr(float *rot, const float *z, int nx, int ny, double theta)
{
  double a = theta * M_PI / 180.0;
  sample_grid(rot, nx, ny, 0, 0, 0.5 * (nx - 1), 0.5 * (ny - 1), cos(a), sin(a), z, nx, ny);
}

/* Nearest-neighbour rotation of b about its centre by theta degrees into rot (same size). */
static void rotate_nn(float *rot, const bf_cmc_prep *b, double theta)
{
  rotate_arr(rot, b->z, b->nx, b->ny, theta);
}

/* Four float lanes, and the same four in double: the double sums below run in two sets of four
 * lanes (values 8k..8k+3 and 8k+4..8k+7: two chains of additions in flight, not one), each set
 * one AVX2 vector or two SSE2 ones on the default path (the same additions lane by lane, so the
 * same sums on every machine), the last n % 8 values in scalars, all added in a fixed order. */
typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

/* the four lanes of a v4d added in a fixed order (a macro: a 32-byte vector passed by value
 * has another ABI without AVX, which clang warns of) */
#define HSUM4(v) (((v)[0] + (v)[1]) + ((v)[2] + (v)[3]))

/* *sum, *sum2 and *count gain the sum, the sum of squares (in double) and the count of the
 * numbers of src[0..n). */
BF_SIMD_CLONES
static void row_sums(const float *src, int n, double *sum, double *sum2, int *count)
{
  v4d sa = {0}, sb = {0}, s2a = {0}, s2b = {0};
  v4i c = {0};
  int n8 = n & ~7, tc = 0;
  for (int x = 0; x < n8; x += 8) {
    v4f v, u;
    memcpy(&v, src + x, sizeof v);
    memcpy(&u, src + x + 4, sizeof u);
    v4i okv = v == v, oku = u == u; /* 0 where NaN */
    v4d zv = __builtin_convertvector((v4f)((v4i)v & okv), v4d);
    v4d zu = __builtin_convertvector((v4f)((v4i)u & oku), v4d);
    sa += zv;
    sb += zu;
    s2a += zv * zv;
    s2b += zu * zu;
    c -= okv + oku;
  }
  double ts = 0, ts2 = 0;
  for (int x = n8; x < n; x++)
    if (!isnan(src[x])) {
      ts += src[x];
      ts2 += (double)src[x] * src[x];
      tc++;
    }
  *sum += HSUM4(sa + sb) + ts;
  *sum2 += HSUM4(s2a + s2b) + ts2;
  *count += c[0] + c[1] + c[2] + c[3] + tc;
}

/* dst = (src - m) s, missing = 0, over n values */
BF_SIMD_CLONES
static void standardise(float *dst, const float *src, int n, float m, float s)
{
#pragma omp simd
  for (int x = 0; x < n; x++)
    dst[x] = nan_to_zero((src[x] - m) * s);
}

/* sum of a(x, y) b(x, y) over a w x h window (row strides as, bs), in two sets of eight float
 * lanes (two chains of additions in flight): lane l of set j sums the products at x = 16k + 8j + l
 * of every row, the last w % 16 of each row go to set 0 (8 of them) and to eight scalar sums
 * alike, and all are added in a fixed order at the end. The default path runs eight lanes as two
 * SSE vectors, the AVX2 clone as one: the same additions lane by lane (no FMA), so the same sum
 * on every machine. */
typedef float v8f __attribute__((vector_size(32)));
BF_SIMD_CLONES
static float dot8(const float *a, int as, const float *b, int bs, int w, int h)
{
  v8f acc0 = {0}, acc1 = {0};
  float tail[8] = {0};
  int w16 = w & ~15, w8 = w & ~7;
  for (int y = 0; y < h; y++) {
    const float *ar = a + (size_t)y * as, *br = b + (size_t)y * bs;
    int x = 0;
    for (; x < w16; x += 16) {
      v8f u0, v0, u1, v1;
      memcpy(&u0, ar + x, sizeof u0);
      memcpy(&v0, br + x, sizeof v0);
      memcpy(&u1, ar + x + 8, sizeof u1);
      memcpy(&v1, br + x + 8, sizeof v1);
      acc0 += u0 * v0;
      acc1 += u1 * v1;
    }
    if (x < w8) {
      v8f u, v;
      memcpy(&u, ar + x, sizeof u);
      memcpy(&v, br + x, sizeof v);
      acc0 += u * v;
    }
    for (int x = w8; x < w; x++)
      tail[x - w8] += ar[x] * br[x];
  }
  v8f all = acc0 + acc1;
  float t = 0;
  for (int l = 0; l < 8; l++)
    t += all[l] + tail[l];
  return t;
}

/* Pearson correlation of a w x h cell p (row stride ps) with the window q (stride qs) over the
 * points both have: the CMC score of a cell, never a zero-filled correlation. Returns 0 when
 * fewer than 10 points overlap or either side is flat. */
BF_SIMD_CLONES
static int overlap_corr(float *corr, const float *p, int ps, const float *q, int qs, int w, int h)
{
  /* the sums in four double lanes and the row tails' scalars, as row_sums */
  v4d s1a = {0}, s2a = {0}, s11a = {0}, s22a = {0}, s12a = {0};
  v4d s1b = {0}, s2b = {0}, s11b = {0}, s22b = {0}, s12b = {0};
  v4i c = {0};
  double t1 = 0, t2 = 0, t11 = 0, t22 = 0, t12 = 0;
  int w8 = w & ~7, tc = 0;
  for (int y = 0; y < h; y++) {
    const float *pr = p + (size_t)y * ps, *qr = q + (size_t)y * qs;
    for (int x = 0; x < w8; x += 8) {
#define CORR_LANES(off, s1, s2, s11, s22, s12)                                                  \
  do {                                                                                           \
    v4f u, v;                                                                                    \
    memcpy(&u, pr + x + (off), sizeof u);                                                        \
    memcpy(&v, qr + x + (off), sizeof v);                                                        \
    v4i both = (u == u) & (v == v);                                                              \
    v4d du = __builtin_convertvector((v4f)((v4i)u & both), v4d);                                 \
    v4d dv = __builtin_convertvector((v4f)((v4i)v & both), v4d);                                 \
    s1 += du;                                                                                    \
    s2 += dv;                                                                                    \
    s11 += du * du;                                                                              \
    s22 += dv * dv;                                                                              \
    s12 += du * dv;                                                                              \
    c -= both;                                                                                   \
  } while (0)
      CORR_LANES(0, s1a, s2a, s11a, s22a, s12a);
      CORR_LANES(4, s1b, s2b, s11b, s22b, s12b);
#undef CORR_LANES
    }
    for (int x = w8; x < w; x++) {
      double du = pr[x], dv = qr[x];
      if (isnan(du) || isnan(dv))
        continue;
      t1 += du;
      t2 += dv;
      t11 += du * du;
      t22 += dv * dv;
      t12 += du * dv;
      tc++;
    }
  }
  int m = c[0] + c[1] + c[2] + c[3] + tc;
  double a1 = HSUM4(s1a + s1b) + t1, a2 = HSUM4(s2a + s2b) + t2,
         a11 = HSUM4(s11a + s11b) + t11, a22 = HSUM4(s22a + s22b) + t22,
         a12 = HSUM4(s12a + s12b) + t12;
  if (m < 10)
    return 0;
  double v1 = a11 - a1 * a1 / m, v2 = a22 - a2 * a2 / m;
  if (!(v1 > 0 && v2 > 0))
    return 0;
  *corr = (float)((a12 - a1 * a2 / m) / sqrt(v1 * v2));
  return 1;
}

/* Registers every kept cell of a against b rotated by theta. Scratch is per caller. */
static void register_theta(reg *out, const bf_cmc_prep *a, const bf_cmc_prep *b, double theta,
                           const bf_cmc_opts *o, const unsigned char *sel, float *rot,
                           float *region, float *buf, fftwf_complex *F, float *cc)
{
  rotate_nn(rot, b, theta);
  int rx = a->rx, ry = a->ry, n0 = a->n0, n1 = a->n1, nh = a->nh;
  double acx = 0.5 * (a->nx - 1), acy = 0.5 * (a->ny - 1);
  double bcx = 0.5 * (b->nx - 1), bcy = 0.5 * (b->ny - 1);
  for (int i = 0; i < a->ncell; i++) {
    reg *g = &out[i];
    if (sel && !sel[i])
      continue;
    g->ok = 0;
    if (!a->use[i])
      continue;
    int r = i / a->cells_x, c = i % a->cells_x;
    int cx0 = a->ox + c * a->cw, cy0 = a->oy + r * a->ch;
    /* region centred where the cell centre falls, both scans centred on each other */
    double ux = cx0 + 0.5 * (a->cw - 1) - acx, uy = cy0 + 0.5 * (a->ch - 1) - acy;
    int gx0 = (int)lround(bcx + ux - 0.5 * (rx - 1)), gy0 = (int)lround(bcy + uy - 0.5 * (ry - 1));
    int nv = 0;
    for (int y = 0; y < ry; y++)
      for (int x = 0; x < rx; x++) {
        int xx = gx0 + x, yy = gy0 + y;
        float v = (xx >= 0 && yy >= 0 && xx < b->nx && yy < b->ny) ? rot[(size_t)yy * b->nx + xx]
                                                                    : NAN;
        region[(size_t)y * rx + x] = v;
        nv += !isnan(v);
      }
    if (nv < 10 || 1.0 - (double)nv / ((double)rx * ry) > o->max_missing)
      continue;
    double mean, sd;
    win_stats(region, rx, ry, rx, &mean, &sd);
    if (!(sd > 0))
      continue;
    /* only the padding outside the region needs zeros (the rows beyond ry stay zero) */
    float fm = (float)mean, fs = (float)(1.0 / sd);
    for (int y = 0; y < ry; y++) {
      float *brow = buf + (size_t)y * n1;
      const float *rrow = region + (size_t)y * rx;
      for (int x = 0; x < rx; x++) {
        float v = rrow[x];
        brow[x] = isnan(v) ? 0.0f : (v - fm) * fs;
      }
      for (int x = rx; x < n1; x++)
        brow[x] = 0.0f;
    }
    fftwf_execute_dft_r2c(a->plan->r2c, buf, F);
    const fftwf_complex *C = a->cfft[i];
    bf_fft_cross(F, F, C, (size_t)n0 * nh); /* F conj(C): sum_p c(p) r(p + s) */
    bf_fft_band_inverse(a->band, F, NULL, cc);
    /* best shift with the cell wholly inside the region (no circular wrap there) */
    int bx = 0, by = 0;
    float best = -INFINITY;
    for (int sy = 0; sy <= ry - a->ch; sy++)
      for (int sx = 0; sx <= rx - a->cw; sx++) {
        float v = cc[(size_t)sy * n1 + sx];
        if (v > best) {
          best = v;
          bx = sx;
          by = sy;
        }
      }
    /* score: Pearson correlation over the points both surfaces have there */
    const float *cz = a->z + (size_t)cy0 * a->nx + cx0;
    if (!overlap_corr(&g->corr, cz, a->nx, region + (size_t)by * rx + bx, rx, a->cw, a->ch))
      continue;
    g->sx = (float)(bx - 0.5 * (rx - a->cw));
    g->sy = (float)(by - 0.5 * (ry - a->ch));
    g->ok = 1;
  }
}

/* Two-level registration of every kept cell of a against b rotated by theta: FFT correlation
 * at half resolution, then hill-climbing on the full-resolution zero-filled correlation. */
#define HC_W 3 /* full-resolution search half-width around the coarse peak, points */
static void register_theta_coarse(reg *out, const bf_cmc_prep *a, const bf_cmc_prep *b,
                                  double theta, const bf_cmc_opts *o, const unsigned char *sel,
                                  float *crot, float *buf, fftwf_complex *F, float *cc,
                                  float *win, float *wz)
{
  rotate_arr(crot, b->cz, b->cnx, b->cny, theta);
  double ang = theta * M_PI / 180.0, cth = cos(ang), sth = sin(ang);
  int rx = a->rx, ry = a->ry, crx = a->crx, cry = a->cry, n1 = a->cn1, nh = a->cnh, n0 = a->cn0;
  int cw = a->cw, ch = a->ch, ww = cw + 2 * HC_W, wh = ch + 2 * HC_W;
  double acx = 0.5 * (a->nx - 1), acy = 0.5 * (a->ny - 1);
  double bcx = 0.5 * (b->nx - 1), bcy = 0.5 * (b->ny - 1);
  double cacx = 0.5 * (a->cnx - 1), cacy = 0.5 * (a->cny - 1);
  double cbcx = 0.5 * (b->cnx - 1), cbcy = 0.5 * (b->cny - 1);
  for (int i = 0; i < a->ncell; i++) {
    reg *g = &out[i];
    if (sel && !sel[i])
      continue;
    g->ok = 0;
    if (!a->use[i])
      continue;
    int r = i / a->cells_x, c = i % a->cells_x;
    int cx0 = a->ox + c * cw, cy0 = a->oy + r * ch;
    double ux = cx0 + 0.5 * (cw - 1) - acx, uy = cy0 + 0.5 * (ch - 1) - acy;
    int gx0 = (int)lround(bcx + ux - 0.5 * (rx - 1)), gy0 = (int)lround(bcy + uy - 0.5 * (ry - 1));
    /* coarse region */
    int ccx0 = cx0 / 2, ccy0 = cy0 / 2;
    double cux = ccx0 + 0.5 * (a->ccw - 1) - cacx, cuy = ccy0 + 0.5 * (a->cch - 1) - cacy;
    int cgx0 = (int)lround(cbcx + cux - 0.5 * (crx - 1)),
        cgy0 = (int)lround(cbcy + cuy - 0.5 * (cry - 1));
    /* the coarse region's count, sum and sum of squares (in double; outside the turned image
     * it is missing), then the region standardised straight into the FFT buffer (row stride
     * n1; the rows beyond cry and the columns beyond crx stay zero), missing = 0 */
    double sum = 0, sum2 = 0;
    int nv = 0;
    int xa = cgx0 < 0 ? -cgx0 : 0, xb = b->cnx - cgx0 < crx ? b->cnx - cgx0 : crx;
    int ya = cgy0 < 0 ? -cgy0 : 0, yb = b->cny - cgy0 < cry ? b->cny - cgy0 : cry;
    if (xb <= xa)
      ya = yb = 0; /* no column of the region in the image */
    for (int y = ya; y < yb; y++)
      row_sums(crot + (size_t)(cgy0 + y) * b->cnx + cgx0 + xa, xb - xa, &sum, &sum2, &nv);
    if (nv < 10 || 1.0 - (double)nv / ((double)crx * cry) > o->max_missing)
      continue;
    double mean = sum / nv, var = sum2 / nv - mean * mean, sd = var > 0 ? sqrt(var) : 0;
    if (!(sd > 0))
      continue;
    float fm = (float)mean, fs = (float)(1.0 / sd);
    for (int y = 0; y < cry; y++) {
      float *brow = buf + (size_t)y * n1;
      if (y < ya || y >= yb) {
        memset(brow, 0, (size_t)crx * sizeof *brow);
        continue;
      }
      memset(brow, 0, (size_t)xa * sizeof *brow);
      standardise(brow + xa, crot + (size_t)(cgy0 + y) * b->cnx + cgx0 + xa, xb - xa, fm, fs);
      memset(brow + xb, 0, (size_t)(crx - xb) * sizeof *brow);
    }
    fftwf_execute_dft_r2c(a->cplan->r2c, buf, F);
    const fftwf_complex *C = a->ccfft[i];
    bf_fft_cross(F, F, C, (size_t)n0 * nh); /* F conj(C): sum_p c(p) r(p + s) */
    bf_fft_band_inverse(a->cband, F, NULL, cc);
    int bx = 0, by = 0;
    /* the first maximum in scan order: each row's maximum by a vectorised pass, the first row
     * of the largest, then its place in that row */
    float best = -INFINITY;
    int nsx = crx - a->ccw + 1, nsy = cry - a->cch + 1;
    for (int sy = 0; sy < nsy; sy++) {
      const float *row = cc + (size_t)sy * n1;
      float m = -INFINITY;
#pragma omp simd reduction(max : m)
      for (int sx = 0; sx < nsx; sx++)
        m = row[sx] > m ? row[sx] : m;
      if (m > best) {
        best = m;
        by = sy;
      }
    }
    for (int sx = 0; sx < nsx && best > -INFINITY; sx++)
      if (cc[(size_t)by * n1 + sx] == best) {
        bx = sx;
        break;
      }
    /* full-resolution window of the rotated target around the coarse peak */
    int px0 = 2 * (cgx0 + bx) - gx0, py0 = 2 * (cgy0 + by) - gy0; /* predicted shift */
    /* halving rounds: keep the start where the cell lies wholly inside the region */
    px0 = px0 < 0 ? 0 : px0 > rx - cw ? rx - cw : px0;
    py0 = py0 < 0 ? 0 : py0 > ry - ch ? ry - ch : py0;
    sample_grid(win, ww, wh, gx0 + px0 - HC_W, gy0 + py0 - HC_W, bcx, bcy, cth, sth, b->z, b->nx,
                b->ny);
#pragma omp simd
    for (int k = 0; k < ww * wh; k++)
      wz[k] = nan_to_zero(win[k] - fm);
    /* hill-climb the exact zero-filled correlation (cmcR's criterion) within the window and
     * with the cell wholly inside the region */
    const float *cs = a->cstd[i];
    int sx = px0, sy = py0;
    double cur = -INFINITY;
    float memo[(2 * HC_W + 1) * (2 * HC_W + 1)];
    for (int k = 0; k < (2 * HC_W + 1) * (2 * HC_W + 1); k++)
      memo[k] = NAN;
    for (int it = 0; it < 4 * HC_W; it++) {
      int nbx = sx, nby = sy;
      double nb = cur;
      for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
          int tx = sx + dx, ty = sy + dy;
          if ((it > 0 && dx == 0 && dy == 0) || tx < 0 || ty < 0 || tx > rx - cw || ty > ry - ch ||
              abs(tx - px0) > HC_W || abs(ty - py0) > HC_W)
            continue;
          float *mv = &memo[(ty - py0 + HC_W) * (2 * HC_W + 1) + (tx - px0 + HC_W)];
          float acc = *mv;
          if (isnan(acc)) {
            acc = dot8(cs, cw, wz + (size_t)(ty - py0 + HC_W) * ww + (tx - px0 + HC_W), ww, cw, ch);
            *mv = acc;
          }
          if (acc > nb) {
            nb = acc;
            nbx = tx;
            nby = ty;
          }
        }
      if (nbx == sx && nby == sy && it > 0)
        break;
      sx = nbx;
      sy = nby;
      cur = nb;
      if (!isfinite(cur))
        break;
    }
    if (!isfinite(cur))
      continue;
    /* score: Pearson correlation over the points both surfaces have there */
    const float *czr = a->z + (size_t)cy0 * a->nx + cx0;
    const float *w0 = win + (size_t)(sy - py0 + HC_W) * ww + (sx - px0 + HC_W);
    if (!overlap_corr(&g->corr, czr, a->nx, w0, ww, cw, ch))
      continue;
    g->sx = (float)(sx - 0.5 * (rx - cw));
    g->sy = (float)(sy - 0.5 * (ry - ch));
    g->ok = 1;
  }
}

/* Scratch of registrations, kept by a thread across the rotations it registers (a fresh
 * allocation per rotation cost page faults and zeroing as much as the rotation itself). */
typedef struct scratch {
  size_t nrot, nreg, nbuf, nF, nwin;
  float *rot, *region, *buf, *cc, *win;
  fftwf_complex *F;
} scratch;

static void scratch_free(scratch *w)
{
  free(w->rot);
  free(w->region);
  fftwf_free(w->buf);
  fftwf_free(w->cc);
  fftwf_free(w->F);
  free(w->win);
  memset(w, 0, sizeof *w);
}

/* Grows *p (plain or FFTW-aligned) to n elements of size sz. 0 or -1. */
static int grow(void **p, size_t *cap, size_t n, size_t sz, int fftw)
{
  if (n <= *cap)
    return 0;
  if (fftw)
    fftwf_free(*p);
  else
    free(*p);
  *p = fftw ? fftwf_malloc(n * sz) : malloc(n * sz);
  *cap = *p ? n : 0;
  return *p ? 0 : -1;
}

/* w large enough to register the cells of r against s. 0 or -1. */
static int scratch_fit(scratch *w, const bf_cmc_prep *r, const bf_cmc_prep *s)
{
  int co = r->coarse;
  int n0 = co ? r->cn0 : r->n0, n1 = co ? r->cn1 : r->n1, nhh = n1 / 2 + 1;
  size_t wsz = (size_t)(r->cw + 2 * HC_W) * (r->ch + 2 * HC_W), nbuf = (size_t)n0 * n1;
  size_t nrot = co ? (size_t)s->cnx * s->cny : (size_t)s->nx * s->ny;
  size_t ncc = w->nbuf; /* buf and cc share one capacity */
  if (grow((void **)&w->rot, &w->nrot, nrot, sizeof(float), 0) ||
      grow((void **)&w->region, &w->nreg, (size_t)r->rx * r->ry, sizeof(float), 0) ||
      grow((void **)&w->cc, &ncc, nbuf, sizeof(float), 1) ||
      grow((void **)&w->buf, &w->nbuf, nbuf, sizeof(float), 1) ||
      grow((void **)&w->F, &w->nF, (size_t)n0 * nhh, sizeof(fftwf_complex), 1) ||
      (co && grow((void **)&w->win, &w->nwin, 2 * wsz, sizeof(float), 0)))
    return -1;
  return 0;
}

/* Registers every cell of r (sel: only the cells it marks; the others' entries are left as
 * they are) against s rotated by theta, in the scratch w (NULL: its own); *ncellreg (may be
 * NULL) counts the cells registered. 0 or BF_ENOMEM. */
static int register_one(reg *out, const bf_cmc_prep *r, const bf_cmc_prep *s, double theta,
                        const bf_cmc_opts *o, scratch *w, const unsigned char *sel, int *ncellreg)
{
  scratch own = {0};
  if (!w)
    w = &own;
  int co = r->coarse, rc = 0;
  int n0 = co ? r->cn0 : r->n0, n1 = co ? r->cn1 : r->n1;
  size_t wsz = (size_t)(r->cw + 2 * HC_W) * (r->ch + 2 * HC_W);
  if (!scratch_fit(w, r, s)) {
    /* the padding beyond the region must be zero (the rows beyond it are never written) */
    memset(w->buf, 0, (size_t)n0 * n1 * sizeof *w->buf);
    if (co)
      register_theta_coarse(out, r, s, theta, o, sel, w->rot, w->buf, w->F, w->cc, w->win,
                            w->win + wsz);
    else
      register_theta(out, r, s, theta, o, sel, w->rot, w->region, w->buf, w->F, w->cc);
    for (int i = 0; ncellreg && i < r->ncell; i++)
      *ncellreg += r->use[i] && (!sel || sel[i]);
  } else
    rc = BF_ENOMEM;
  scratch_free(&own);
  return rc;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* R's median (mean of the two middle values). v is reordered. */
static double median(double *v, int n)
{
  if (n <= 0)
    return NAN;
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Decisions for one direction from its nt x ncell registrations. */
typedef struct dir_result {
  int ncand, n_orig, high_pass, n_high;
  double med_theta, med_x, med_y; /* original-method consensus (points, degrees) */
  double theta_mode;              /* median of the thetas of maximal High-CMC count */
  double med_theta_cmc;           /* median theta of the original-method CMCs (NaN: none) */
  int *best_t;                    /* per cell: theta index of highest corr (-1: none) */
  unsigned char *orig;            /* per cell: original CMC */
  unsigned char *cand;            /* nt x ncell: High-CMC candidate at that theta */
  int *count;                     /* per theta: candidate count */
} dir_result;

static void dir_clear(dir_result *d)
{
  free(d->best_t);
  free(d->orig);
  free(d->cand);
  free(d->count);
}

static int decide(dir_result *d, const reg *g, const double *th, int nt, int ncell,
                  const bf_cmc_opts *o, double sp)
{
  memset(d, 0, sizeof *d);
  d->best_t = malloc(ncell * sizeof *d->best_t);
  d->orig = calloc(ncell, 1);
  d->cand = calloc((size_t)nt * ncell, 1);
  d->count = calloc(nt, sizeof *d->count);
  double *vx = malloc((ncell + 1) * sizeof *vx), *vy = malloc((ncell + 1) * sizeof *vy);
  double *vt = malloc((ncell + 1) * sizeof *vt);
  int rc = 0;
  if (!d->best_t || !d->orig || !d->cand || !d->count || !vx || !vy || !vt) {
    rc = bf_error_set(BF_ENOMEM, "out of memory deciding CMCs");
    goto done;
  }
  double xt = o->x_thresh / sp, yt = o->y_thresh / sp;
  /* original method (Song 2013) */
  int m = 0;
  for (int i = 0; i < ncell; i++) {
    int bt = -1;
    for (int t = 0; t < nt; t++) {
      const reg *r = &g[(size_t)t * ncell + i];
      if (r->ok && (bt < 0 || r->corr > g[(size_t)bt * ncell + i].corr))
        bt = t;
    }
    d->best_t[i] = bt;
    if (bt >= 0) {
      vx[m] = g[(size_t)bt * ncell + i].sx;
      vy[m] = g[(size_t)bt * ncell + i].sy;
      vt[m] = th[bt];
      m++;
    }
  }
  d->ncand = m;
  d->med_x = median(vx, m);
  d->med_y = median(vy, m);
  d->med_theta = median(vt, m);
  for (int i = 0; i < ncell; i++) {
    int bt = d->best_t[i];
    if (bt < 0)
      continue;
    const reg *r = &g[(size_t)bt * ncell + i];
    d->orig[i] = fabs(r->sx - d->med_x) <= xt && fabs(r->sy - d->med_y) <= yt &&
                 fabs(th[bt] - d->med_theta) <= o->theta_thresh && r->corr >= o->corr_thresh;
    d->n_orig += d->orig[i];
  }
  /* cmcR compares the High-CMC theta with the median theta of the original-method CMCs
   * (none: the comparison fails) */
  int q0 = 0;
  for (int i = 0; i < ncell; i++)
    if (d->orig[i])
      vt[q0++] = th[d->best_t[i]];
  d->med_theta_cmc = median(vt, q0);
  /* High CMC (Tong 2015): per-theta candidates, then the high-count thetas */
  int maxc = 0;
  for (int t = 0; t < nt; t++) {
    int q = 0;
    for (int i = 0; i < ncell; i++) {
      const reg *r = &g[(size_t)t * ncell + i];
      if (r->ok) {
        vx[q] = r->sx;
        vy[q] = r->sy;
        q++;
      }
    }
    double mx = median(vx, q), my = median(vy, q);
    for (int i = 0; i < ncell; i++) {
      const reg *r = &g[(size_t)t * ncell + i];
      int c = r->ok && fabs(r->sx - mx) <= xt && fabs(r->sy - my) <= yt &&
              r->corr >= o->corr_thresh;
      d->cand[(size_t)t * ncell + i] = (unsigned char)c;
      d->count[t] += c;
    }
    if (d->count[t] > maxc)
      maxc = d->count[t];
  }
  d->theta_mode = NAN;
  if (maxc > 0) {
    double lo = INFINITY, hi = -INFINITY;
    int q = 0;
    for (int t = 0; t < nt; t++) {
      if (d->count[t] > 0 && d->count[t] >= maxc - o->tau) {
        lo = fmin(lo, th[t]);
        hi = fmax(hi, th[t]);
      }
      if (d->count[t] == maxc)
        vt[q++] = th[t];
    }
    d->high_pass = hi - lo <= o->theta_thresh;
    if (d->high_pass) {
      d->theta_mode = median(vt, q);
      for (int i = 0; i < ncell; i++) {
        int hit = 0;
        for (int t = 0; t < nt && !hit; t++)
          hit = d->count[t] >= maxc - o->tau && d->cand[(size_t)t * ncell + i] &&
                fabs(th[t] - d->theta_mode) <= o->theta_thresh;
        d->n_high += hit;
      }
    }
  }
done:
  free(vx);
  free(vy);
  free(vt);
  return rc;
}

void bf_cmc_result_clear(bf_cmc_result *r)
{
  if (!r)
    return;
  free(r->cells);
  memset(r, 0, sizeof *r);
}

static int cell_high(const dir_result *d, int i, const double *th, int nt, int ncell,
                     const bf_cmc_opts *o)
{
  int maxc = 0;
  for (int t = 0; t < nt; t++)
    if (d->count[t] > maxc)
      maxc = d->count[t];
  for (int t = 0; t < nt; t++)
    if (d->count[t] >= maxc - o->tau && d->count[t] > 0 && d->cand[(size_t)t * ncell + i] &&
        fabs(th[t] - d->theta_mode) <= o->theta_thresh)
      return 1;
  return 0;
}

/* The registrations of one compare_prep, by (reference, target, rotation): the stages of a
 * full-circle compare (seeded windows, fallback scan, the fallback's window) overlap in the
 * rotations they register, and a registration is a pure function of those three, so each is
 * computed once. Filled between the parallel stages, read inside them. */
typedef struct regcache {
  int n, cap, ncell;
  const bf_cmc_prep **r, **s;
  double *theta;
  reg *g; /* n x ncell */
} regcache;

static void cache_clear(regcache *c)
{
  free(c->r);
  free(c->s);
  free(c->theta);
  free(c->g);
  memset(c, 0, sizeof *c);
}

static const reg *cache_find(const regcache *c, const bf_cmc_prep *r, const bf_cmc_prep *s,
                             double theta)
{
  if (!c)
    return NULL;
  for (int k = 0; k < c->n; k++)
    if (c->theta[k] == theta && c->r[k] == r && c->s[k] == s)
      return c->g + (size_t)k * c->ncell;
  return NULL;
}

/* Adds a registration (no-op when there, or when c is NULL). 0 or -1. */
static int cache_add(regcache *c, const bf_cmc_prep *r, const bf_cmc_prep *s, double theta,
                     const reg *g)
{
  if (!c || cache_find(c, r, s, theta))
    return 0;
  if (c->n == c->cap) {
    int cap = c->cap ? 2 * c->cap : 64;
    const bf_cmc_prep **nr = realloc(c->r, cap * sizeof *nr);
    if (nr)
      c->r = nr;
    const bf_cmc_prep **ns = realloc(c->s, cap * sizeof *ns);
    if (ns)
      c->s = ns;
    double *nt = realloc(c->theta, cap * sizeof *nt);
    if (nt)
      c->theta = nt;
    reg *ng = realloc(c->g, (size_t)cap * c->ncell * sizeof *ng);
    if (ng)
      c->g = ng;
    if (!nr || !ns || !nt || !ng)
      return -1;
    c->cap = cap;
  }
  c->r[c->n] = r;
  c->s[c->n] = s;
  c->theta[c->n] = theta;
  memcpy(c->g + (size_t)c->n * c->ncell, g, (size_t)c->ncell * sizeof *g);
  c->n++;
  return 0;
}

/* One window of rotations th[0..nt) (reference -> target; the other direction registers at
 * -th), each direction registered and decided on its own: a full-circle compare registers a
 * direction only when its counts can still change the outcome. */
typedef struct win {
  int nt, ncell, have[2];
  double *th[2];
  reg *g[2];
  dir_result d[2];
} win;

static void win_free(win *w)
{
  free(w->th[0]);
  free(w->g[0]);
  free(w->g[1]);
  dir_clear(&w->d[0]);
  dir_clear(&w->d[1]);
  memset(w, 0, sizeof *w);
}

static int win_init(win *w, const double *th0, int nt, int ncell)
{
  memset(w, 0, sizeof *w);
  w->nt = nt;
  w->ncell = ncell;
  w->th[0] = malloc(2 * (size_t)nt * sizeof *w->th[0]);
  w->g[0] = calloc((size_t)nt * ncell, sizeof(reg));
  w->g[1] = calloc((size_t)nt * ncell, sizeof(reg));
  if (!w->th[0] || !w->g[0] || !w->g[1]) {
    win_free(w);
    return bf_error_set(BF_ENOMEM, "out of memory for CMC registrations");
  }
  w->th[1] = w->th[0] + nt;
  for (int t = 0; t < nt; t++) {
    w->th[0][t] = th0[t];
    w->th[1][t] = -th0[t];
  }
  return 0;
}

/* One direction of one window, to be registered. */
typedef struct wjob {
  win *w;
  int dir;
} wjob;

/* Registers (or takes from the cache) every rotation of the jobs' directions, in one parallel
 * loop, then decides each direction. *ncellreg counts the cell registrations computed. */
static int win_register(const wjob *job, int nj, const bf_cmc_prep *a, const bf_cmc_prep *b,
                        const bf_cmc_opts *o, regcache *cache, int *ncellreg)
{
  int ntask = 0, failed = 0, nr = 0, rc = 0;
  for (int j = 0; j < nj; j++)
    ntask += job[j].w->nt;
  int nthreads = o->threads > 0 ? o->threads : omp_get_max_threads();
#pragma omp parallel num_threads(nthreads) if (!omp_in_parallel()) reduction(+ : nr)
  {
    scratch w = {0};
#pragma omp for schedule(dynamic)
    for (int task = 0; task < ntask; task++) {
      int j = 0, t = task;
      while (t >= job[j].w->nt)
        t -= job[j++].w->nt;
      win *wn = job[j].w;
      int dir = job[j].dir, ncell = wn->ncell;
      const bf_cmc_prep *r = dir ? b : a, *s = dir ? a : b;
      const reg *known = cache_find(cache, r, s, wn->th[dir][t]);
      if (known)
        memcpy(wn->g[dir] + (size_t)t * ncell, known, (size_t)ncell * sizeof *known);
      else if (register_one(wn->g[dir] + (size_t)t * ncell, r, s, wn->th[dir][t], o, &w, NULL,
                            &nr)) {
#pragma omp atomic write
        failed = 1;
      }
    }
    scratch_free(&w);
  }
  if (ncellreg)
    *ncellreg += nr;
  for (int j = 0; j < nj && !failed; j++) {
    win *wn = job[j].w;
    int dir = job[j].dir;
    for (int t = 0; t < wn->nt && !failed; t++)
      if (cache_add(cache, dir ? b : a, dir ? a : b, wn->th[dir][t],
                    wn->g[dir] + (size_t)t * wn->ncell))
        failed = 1;
  }
  if (failed)
    return bf_error_set(BF_ENOMEM, "out of memory registering CMC cells");
  for (int j = 0; j < nj; j++) {
    win *wn = job[j].w;
    int dir = job[j].dir;
    if ((rc = decide(&wn->d[dir], wn->g[dir], wn->th[dir], wn->nt, wn->ncell, o, a->sp)))
      return rc;
    wn->have[dir] = 1;
  }
  return 0;
}

/* The largest High-CMC candidate count of one decided direction at one rotation. */
static int dir_maxc(const dir_result *d, int nt)
{
  int m = 0;
  for (int t = 0; t < nt; t++)
    if (d->count[t] > m)
      m = d->count[t];
  return m;
}

/* Whether the seeded window `other` (0: the estimate's, 1: 180° from it), of which only the
 * first direction d0 is decided, cannot change the choice against the complete result f of the
 * other window: its score (the smaller direction's count) is at most d0's count, and its
 * combined count (the tie-break, window 0 kept on equal counts) is its score unless d0 can pass
 * cmcR's combination. */
static int window_settled(const dir_result *d0, int other, const bf_cmc_result *f,
                          const bf_cmc_opts *o)
{
  int u = d0->n_orig, sf = (int)f->score, cf = f->cmc_combined;
  if (u < sf)
    return 1;
  if (u > sf || (d0->high_pass && fabs(d0->theta_mode - d0->med_theta_cmc) <= o->theta_thresh))
    return 0;
  /* at best a tie of scores with combined = score */
  return other ? cf >= sf : cf > sf;
}

/* A window with both directions decided, combined into out (without the refined rotation). */
static int win_result(bf_cmc_result *out, const win *w, const bf_cmc_prep *a,
                      const bf_cmc_prep *b, const bf_cmc_opts *o)
{
  const dir_result *d = w->d;
  int ncell = w->ncell, nt = w->nt, rc = 0;
  memset(out, 0, sizeof *out);
  /* combine the directions as cmcR's decision_combineDirections (fail, compareThetas) */
  int combined_high = 0;
  if (d[0].high_pass && d[1].high_pass) {
    combined_high = 1;
    for (int k = 0; k < 2; k++)
      if (!(fabs(d[k].theta_mode - d[k].med_theta_cmc) <= o->theta_thresh))
        combined_high = 0;
    double t0 = d[0].theta_mode, t1 = d[1].theta_mode;
    if ((t0 > 0) == (t1 > 0) && t0 != 0 && t1 != 0 && fabs(t0 + t1) > o->theta_thresh)
      combined_high = 0;
    else if (fabs(fabs(t0) - fabs(t1)) > o->theta_thresh)
      combined_high = 0;
  }
  int smaller = d[1].n_orig < d[0].n_orig ? 1 : 0;
  unsigned char *hit = calloc(ncell, 1);
  out->ncell = 0;
  out->cells = calloc((size_t)2 * ncell, sizeof *out->cells);
  if (!out->cells || !hit) {
    rc = bf_error_set(BF_ENOMEM, "out of memory for CMC cells");
    goto done;
  }
  for (int k = 0; k < 2; k++) {
    const bf_cmc_prep *r = k ? b : a;
    out->cmc_original[k] = d[k].n_orig;
    out->cmc_high[k] = d[k].high_pass ? d[k].n_high : 0;
    out->high_pass[k] = d[k].high_pass;
    out->ncells[k] = d[k].ncand;
    out->theta_high[k] = d[k].theta_mode;
    for (int i = 0; i < ncell; i++) {
      int bt = d[k].best_t[i];
      if (bt < 0)
        continue;
      bf_cmc_cell *c = &out->cells[out->ncell++];
      const reg *rg = &w->g[k][(size_t)bt * ncell + i];
      c->direction = k;
      c->row = i / r->cells_x;
      c->col = i % r->cells_x;
      c->x0 = (r->ox + c->col * r->cw) * r->sp;
      c->y0 = (r->oy + c->row * r->ch) * r->sp;
      c->w = r->cw * r->sp;
      c->h = r->ch * r->sp;
      c->theta = w->th[k][bt];
      c->dx = rg->sx * r->sp;
      c->dy = rg->sy * r->sp;
      c->corr = rg->corr;
      c->cmc_original = d[k].orig[i];
      c->cmc_high = combined_high ? cell_high(&d[k], i, w->th[k], nt, ncell, o)
                                  : (k == smaller && d[k].orig[i]);
      if (c->cmc_high)
        hit[i] = 1;
    }
  }
  int nh = 0;
  for (int i = 0; i < ncell; i++)
    nh += hit[i];
  /* cmcR counts a cell position once even when both directions call it */
  out->cmc_combined = combined_high ? nh : d[smaller].n_orig;
  out->score = d[smaller].n_orig;
  out->match = out->score >= o->match_min_cmc;
  out->theta = d[0].med_theta;
  out->dx = d[0].med_x * a->sp;
  out->dy = d[0].med_y * a->sp;
  out->theta_refined = out->theta;
  out->quality_flags = a->qflags | b->qflags;
  out->nthetas = nt;
done:
  free(hit);
  if (rc)
    bf_cmc_result_clear(out);
  return rc;
}

/* Refines the consensus rotation of out (the result of window w): the mean correlation of the
 * original-method CMCs at the median CMC theta and refine_step either side; reported, the counts
 * stay cmcR's. Done once, for the window a compare reports. */
static int win_refine(bf_cmc_result *out, const win *w, const bf_cmc_prep *a,
                      const bf_cmc_prep *b, const bf_cmc_opts *o, int *ncellreg)
{
  const dir_result *d = w->d;
  int ncell = w->ncell, nt = w->nt;
  out->theta_refined = out->theta;
  if (!(o->refine_step > 0 && d[0].n_orig > 0 && !isnan(d[0].med_theta_cmc)))
    return 0;
  reg *gr = calloc((size_t)ncell, sizeof *gr);
  scratch sw = {0};
  double bestm = -2;
  int rc = 0;
  if (!gr)
    return bf_error_set(BF_ENOMEM, "out of memory refining the CMC rotation");
  for (int k = -1; k <= 1; k++) {
    double t = d[0].med_theta_cmc + k * o->refine_step, m = 0;
    int q = 0, tk = -1;
    /* a rotation the scan registered already (the median usually is one) is not redone */
    for (int u = 0; u < nt && tk < 0; u++)
      if (w->th[0][u] == t)
        tk = u;
    const reg *gk = tk >= 0 ? w->g[0] + (size_t)tk * ncell : gr;
    if (tk < 0) {
      /* only the CMCs' cells are averaged: only they are registered */
      if (register_one(gr, a, b, t, o, &sw, d[0].orig, ncellreg)) {
        rc = bf_error_set(BF_ENOMEM, "out of memory refining the CMC rotation");
        break;
      }
    }
    for (int i = 0; i < ncell; i++)
      if (d[0].orig[i] && gk[i].ok) {
        m += gk[i].corr;
        q++;
      }
    if (q && m / q > bestm) {
      bestm = m / q;
      out->theta_refined = t;
    }
  }
  scratch_free(&sw);
  free(gr);
  return rc;
}

/* Both directions over the rotations th0[0..nt), decided, combined and refined into out. */
static int compare_thetas(bf_cmc_result *out, const bf_cmc_prep *a, const bf_cmc_prep *b,
                          const double *th0, int nt, const bf_cmc_opts *o)
{
  win w;
  int rc, ncellreg = 0;
  memset(out, 0, sizeof *out);
  if ((rc = win_init(&w, th0, nt, a->ncell)))
    return rc;
  wjob job[2] = {{&w, 0}, {&w, 1}};
  if (!(rc = win_register(job, 2, a, b, o, NULL, &ncellreg)) && !(rc = win_result(out, &w, a, b, o)))
    rc = win_refine(out, &w, a, b, o, &ncellreg);
  out->cellregs = ncellreg;
  win_free(&w);
  if (rc)
    bf_cmc_result_clear(out);
  return rc;
}

/* angle in (-180, 180] */
double bf_cmc_wrap180(double t)
{
  if (!isfinite(t))
    return t;
  t = fmod(t, 360.0);
  if (t > 180)
    t -= 360;
  else if (t <= -180)
    t += 360;
  return t;
}

/* Rotations c - w .. c + w by step, appended to th (n so far); returns the new count. */
static int add_window(double *th, int n, double c, double w, double step)
{
  int k = (int)floor(w / step + 1e-9);
  for (int i = -k; i <= k; i++)
    th[n++] = c + i * step;
  return n;
}

/* High-CMC candidate count of the reference -> target registrations g (ncell) at one
 * rotation: cells within the x/y thresholds of the medians of its registered cells, corr >=
 * corr_thresh. */
static int cand_count(const reg *g, int ncell, const bf_cmc_opts *o, double sp, double *vx,
                      double *vy)
{
  int q = 0, count = 0;
  for (int i = 0; i < ncell; i++)
    if (g[i].ok) {
      vx[q] = g[i].sx;
      vy[q] = g[i].sy;
      q++;
    }
  double mx = median(vx, q), my = median(vy, q), xt = o->x_thresh / sp, yt = o->y_thresh / sp;
  for (int i = 0; i < ncell; i++)
    count += g[i].ok && fabs(g[i].sx - mx) <= xt && fabs(g[i].sy - my) <= yt &&
             g[i].corr >= o->corr_thresh;
  return count;
}

/* The full circle's fallback: the rotations by fallback_step outside the seeded windows,
 * reference -> target only; *best_t gets the one of most High-CMC candidates (*best_c) among
 * those registered with every cell. With fallback_keep > 0 in two stages: every rotation with
 * half the cells (a checkerboard of the grid), then the other half at the fallback_keep
 * rotations of most candidates there (the first on ties); only these are ranked. */
static int fallback_scan(const bf_cmc_prep *a, const bf_cmc_prep *b, double seed,
                         const bf_cmc_opts *o, double *best_t, int *best_c, regcache *cache,
                         int *ncellreg)
{
  int nt = (int)floor(360.0 / o->fallback_step + 1e-9), failed = 0, ncell = a->ncell, nr = 0;
  int two = o->fallback_keep > 0, *cnt = calloc(nt, sizeof *cnt);
  unsigned char *full = calloc(nt, 1), *half = malloc(2 * (size_t)ncell);
  reg *g = calloc((size_t)nt * ncell, sizeof *g);
  double *v = malloc(2 * (size_t)ncell * sizeof *v);
  *best_c = -1;
  if (!cnt || !full || !half || !g || !v) {
    failed = 1;
    goto done;
  }
  for (int i = 0; i < ncell; i++) {
    half[i] = (i / a->cells_x + i % a->cells_x) % 2 == 0;
    half[ncell + i] = !half[i];
  }
  int nthreads = o->threads > 0 ? o->threads : omp_get_max_threads();
#pragma omp parallel num_threads(nthreads) if (!omp_in_parallel()) reduction(+ : nr)
  {
    scratch w = {0};
    double *tv = malloc(2 * (size_t)ncell * sizeof *tv);
#pragma omp for schedule(dynamic)
    for (int t = 0; t < nt; t++) {
      double th = seed + t * o->fallback_step, off = fabs(bf_cmc_wrap180(th - seed));
      reg *gt = g + (size_t)t * ncell;
      const reg *known = cache_find(cache, a, b, th);
      cnt[t] = -1;
      if (off <= o->seed_window || 180 - off <= o->seed_window)
        continue; /* already searched */
      if (known)
        memcpy(gt, known, (size_t)ncell * sizeof *gt);
      if (!tv || (!known && register_one(gt, a, b, th, o, &w, two ? half : NULL, &nr))) {
#pragma omp atomic write
        failed = 1;
        continue;
      }
      full[t] = known || !two;
      cnt[t] = cand_count(gt, ncell, o, a->sp, tv, tv + ncell);
    }
    free(tv);
    scratch_free(&w);
  }
  if (two && !failed) {
    /* the second stage: the rotations of most first-stage candidates (the first on ties) */
    int nkeep = 0; /* full[t] = 2: chosen */
    for (int k = 0; k < o->fallback_keep; k++) {
      int bt = -1;
      for (int t = 0; t < nt; t++)
        if (cnt[t] >= 0 && !full[t] && (bt < 0 || cnt[t] > cnt[bt]))
          bt = t;
      if (bt < 0)
        break;
      full[bt] = 2;
      nkeep++;
    }
#pragma omp parallel num_threads(nthreads) if (!omp_in_parallel() && nkeep > 1) reduction(+ : nr)
    {
      scratch w = {0};
#pragma omp for schedule(dynamic)
      for (int t = 0; t < nt; t++)
        if (full[t] == 2 && register_one(g + (size_t)t * ncell, a, b, seed + t * o->fallback_step,
                                         o, &w, half + ncell, &nr)) {
#pragma omp atomic write
          failed = 1;
        }
      scratch_free(&w);
    }
  }
  for (int t = 0; t < nt && !failed; t++) {
    if (!full[t])
      continue;
    int c = two ? cand_count(g + (size_t)t * ncell, ncell, o, a->sp, v, v + ncell) : cnt[t];
    if (c > *best_c) {
      *best_c = c;
      *best_t = seed + t * o->fallback_step;
    }
    if (cache_add(cache, a, b, seed + t * o->fallback_step, g + (size_t)t * ncell))
      failed = 1;
  }
done:
  *ncellreg += nr;
  free(cnt);
  free(full);
  free(half);
  free(g);
  free(v);
  return failed ? bf_error_set(BF_ENOMEM, "out of memory in the CMC fallback scan") : 0;
}

/* A key of a prep that does not depend on the order of a comparison (FNV-1a of its descriptor):
 * it picks the reference of the one-direction fallback scan, so that compare(a, b) and
 * compare(b, a) scan alike and a pair's score does not depend on which item is the query. */
static uint64_t prep_key(const bf_cmc_prep *p)
{
  uint64_t h = 1469598103934665603ull;
  const unsigned char *b = (const unsigned char *)p->desc->z;
  size_t n = (size_t)p->desc->nx * p->desc->ny * sizeof(float);
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

/* Reported angles in (-180, 180]. */
static void wrap_result(bf_cmc_result *r)
{
  r->theta = bf_cmc_wrap180(r->theta);
  r->theta_refined = bf_cmc_wrap180(r->theta_refined);
  r->theta_high[0] = bf_cmc_wrap180(r->theta_high[0]);
  r->theta_high[1] = bf_cmc_wrap180(r->theta_high[1]);
  for (int i = 0; i < r->ncell; i++)
    r->cells[i].theta = bf_cmc_wrap180(r->cells[i].theta);
}

int bf_cmc_compare_prep(bf_cmc_result *out, const bf_cmc_prep *a, const bf_cmc_prep *b,
                        const bf_cmc_opts *o)
{
  bf_cmc_opts def = BF_CMC_OPTS_INIT;
  double *th = NULL;
  int rc = 0, nt = 0, ncellreg = 0;
  regcache cache = {0};
  win w[3];
  bf_cmc_result res[2];
  memset(out, 0, sizeof *out);
  memset(w, 0, sizeof w);
  memset(res, 0, sizeof res);
  if (!o)
    o = &def;
  if ((rc = check_opts(o)))
    return rc;
  if (!a || !b)
    return bf_error_set(BF_EINVAL, "CMC compare: missing prep");
  if (fabs(a->sp - b->sp) > 1e-3 * a->sp)
    return bf_error_set(BF_EINVAL, "CMC compare: spacings differ (%g and %g um): extract both "
                        "features at the comparison spacing", a->sp, b->sp);
  if (a->cells_x != o->cells_x || a->cells_y != o->cells_y || b->cells_x != o->cells_x ||
      b->cells_y != o->cells_y || a->coarse != o->coarse || b->coarse != o->coarse ||
      (o->full_circle && (!a->pf || !b->pf)))
    return bf_error_set(BF_EINVAL, "CMC compare: preps were made with other cell options");
  int cap = (int)floor(360.0 / o->theta_step + 1e-9) + 2 +
            (int)floor((o->theta_max - o->theta_min) / o->theta_step + 1e-9) +
            4 * ((int)floor(o->seed_window / o->theta_step + 1e-9) + 1);
  if (!(th = malloc(cap * sizeof *th)))
    return bf_error_set(BF_ENOMEM, "out of memory for CMC rotations");
  double seed = NAN;
  if (!o->full_circle) {
    nt = (int)floor((o->theta_max - o->theta_min) / o->theta_step + 1e-9) + 1;
    for (int t = 0; t < nt; t++)
      th[t] = o->theta_min + t * o->theta_step;
    rc = compare_thetas(out, a, b, th, nt, o);
    goto done;
  }
  if (!a->desc || !b->desc) { /* no estimate: the whole circle */
    nt = (int)floor(360.0 / o->theta_step - 1e-9) + 1;
    for (int t = 0; t < nt; t++)
      th[t] = -180 + o->theta_step + t * o->theta_step;
    rc = compare_thetas(out, a, b, th, nt, o);
    goto done;
  }
  /* The seed and the fallback scan are taken in one canonical order of the pair (b -> a at t is
   * a -> b at -t), so compare(a, b) and compare(b, a) search the same rotations and a pair's
   * score does not depend on which item is the query (the batch compares each pair once). */
  cache.ncell = a->ncell;
  int swap = prep_key(a) > prep_key(b);
  const bf_cmc_prep *ca = swap ? b : a, *cb_ = swap ? a : b;
  double shift = 0;
  bf_prefilter_score(ca->pf, BF_KIND_CARTRIDGE, ca->desc->z, cb_->desc->z, &shift);
  /* windows on the theta_step grid through 0 (the estimate's own resolution is ~3°): an
   * unturned pair is registered at the same rotations as the +-30° search */
  double cseed = -shift, centre = o->theta_step * floor(cseed / o->theta_step + 0.5);
  seed = swap ? -cseed : cseed;
  if (swap)
    centre = -centre;
  /* each window decided on its own (a median over both would mix two rotations 180° apart);
   * the one of more CMCs is kept (the first on a tie of CMCs and combined counts). A window's
   * score is the smaller direction's count, so the reference -> target direction of both is
   * registered first (it also gives maxc), the window of the larger count is completed, and
   * the other only when its first count can still reach that score. */
  nt = add_window(th, 0, centre, o->seed_window, o->theta_step);
  if ((rc = win_init(&w[0], th, nt, a->ncell)))
    goto done;
  nt = add_window(th, 0, centre + 180, o->seed_window, o->theta_step);
  if ((rc = win_init(&w[1], th, nt, a->ncell)))
    goto done;
  /* The window whose centre has more High-CMC candidates first: when it scores at least twice
   * the match threshold it is kept without the window 180° from it (a pair does not match
   * twice; the decision and any score >= that are the same either way). */
  int sure = 2 * o->match_min_cmc, kept = 0, first = 0, other = 1, cc[2] = {0, 0};
  wjob job[2] = {{&w[0], 0}, {&w[1], 0}};
  if (sure > 0) {
    reg *gc = calloc(2 * (size_t)a->ncell, sizeof *gc);
    double *v = malloc(2 * (size_t)a->ncell * sizeof *v);
    scratch sw = {0};
    for (int k = 0; k < 2 && !rc; k++) {
      double tc = w[k].th[0][w[k].nt / 2];
      reg *gk = gc + (size_t)k * a->ncell;
      if (!gc || !v || register_one(gk, a, b, tc, o, &sw, NULL, &ncellreg) ||
          cache_add(&cache, a, b, tc, gk))
        rc = bf_error_set(BF_ENOMEM, "out of memory registering CMC cells");
      else
        cc[k] = cand_count(gk, a->ncell, o, a->sp, v, v + a->ncell);
    }
    scratch_free(&sw);
    free(gc);
    free(v);
    if (rc)
      goto done;
    first = cc[1] > cc[0];
    job[0] = (wjob){&w[first], 0};
    if ((rc = win_register(job, 1, a, b, o, &cache, &ncellreg)))
      goto done;
    if (w[first].d[0].n_orig >= sure) {
      job[0] = (wjob){&w[first], 1};
      if ((rc = win_register(job, 1, a, b, o, &cache, &ncellreg)) ||
          (rc = win_result(&res[first], &w[first], a, b, o)))
        goto done;
      if (res[first].score >= sure) {
        *out = res[first];
        memset(&res[first], 0, sizeof res[first]);
        out->nthetas = w[0].nt + w[1].nt;
        kept = first;
        goto refine;
      }
    }
  }
  job[0] = (wjob){&w[!first], 0};
  job[1] = (wjob){&w[first], 0};
  if ((rc = win_register(job, w[first].have[0] ? 1 : 2, a, b, o, &cache, &ncellreg)))
    goto done;
  int maxc = dir_maxc(&w[0].d[0], w[0].nt), m2 = dir_maxc(&w[1].d[0], w[1].nt);
  if (m2 > maxc)
    maxc = m2;
  first = w[1].d[0].n_orig > w[0].d[0].n_orig;
  other = !first;
  kept = first;
  job[0] = (wjob){&w[first], 1};
  if ((!w[first].have[1] && (rc = win_register(job, 1, a, b, o, &cache, &ncellreg))) ||
      (!res[first].cells && (rc = win_result(&res[first], &w[first], a, b, o))))
    goto done;
  if (!window_settled(&w[other].d[0], other, &res[first], o)) {
    job[0] = (wjob){&w[other], 1};
    if ((!w[other].have[1] && (rc = win_register(job, 1, a, b, o, &cache, &ncellreg))) ||
        (!res[other].cells && (rc = win_result(&res[other], &w[other], a, b, o))))
      goto done;
    kept = res[1].score > res[0].score ||
           (res[1].score == res[0].score && res[1].cmc_combined > res[0].cmc_combined);
  }
  *out = res[kept];
  memset(&res[kept], 0, sizeof res[kept]);
  out->nthetas = w[0].nt + w[1].nt;
  nt = out->nthetas;
  if (out->score >= o->match_min_cmc || !(o->fallback_step > 0))
    goto refine;
  double tb = 0;
  int cb = -1;
  if ((rc = fallback_scan(ca, cb_, swap ? -centre : centre, o, &tb, &cb, &cache, &ncellreg)))
    goto done;
  if (swap)
    tb = -tb;
  int nseeded = nt;
  out->fallback = 1;
  out->nthetas = nseeded + (int)floor(360.0 / o->fallback_step + 1e-9);
  if (cb >= 3 && cb > maxc) {
    /* the fallback's window replaces the seeded one only with more CMCs: its second
     * direction is registered only when its first count exceeds the score */
    nt = add_window(th, 0, tb, o->seed_window, o->theta_step);
    if ((rc = win_init(&w[2], th, nt, a->ncell)))
      goto done;
    job[0] = (wjob){&w[2], 0};
    if ((rc = win_register(job, 1, a, b, o, &cache, &ncellreg)))
      goto done;
    if (w[2].d[0].n_orig > out->score) {
      job[0] = (wjob){&w[2], 1};
      bf_cmc_result r2;
      if ((rc = win_register(job, 1, a, b, o, &cache, &ncellreg)) ||
          (rc = win_result(&r2, &w[2], a, b, o)))
        goto done;
      if (r2.score > out->score) {
        r2.nthetas = out->nthetas + nt;
        bf_cmc_result_clear(out);
        *out = r2;
        out->fallback = 2;
        kept = 2;
      } else
        bf_cmc_result_clear(&r2);
    }
    if (kept != 2)
      out->nthetas += nt;
  }
refine:
  rc = win_refine(out, &w[kept], a, b, o, &ncellreg);
  out->cellregs = ncellreg;
done:
  free(th);
  cache_clear(&cache);
  for (int k = 0; k < 3; k++)
    win_free(&w[k]);
  bf_cmc_result_clear(&res[0]);
  bf_cmc_result_clear(&res[1]);
  if (rc)
    bf_cmc_result_clear(out);
  else {
    wrap_result(out);
    out->theta_seed = bf_cmc_wrap180(seed);
  }
  return rc;
}

int bf_cmc_compare(bf_cmc_result *out, const bf_feature *ref, const bf_feature *tgt,
                   const bf_cmc_opts *o)
{
  bf_cmc_prep *a = NULL, *b = NULL;
  int rc;
  memset(out, 0, sizeof *out);
  if ((rc = bf_cmc_prep_new(&a, ref, o)) || (rc = bf_cmc_prep_new(&b, tgt, o)))
    goto done;
  rc = bf_cmc_compare_prep(out, a, b, o);
done:
  bf_cmc_prep_free(a);
  bf_cmc_prep_free(b);
  return rc;
}
