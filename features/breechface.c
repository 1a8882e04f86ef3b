/* Breech-face pipeline: region, robust plane, Gaussian regression band-pass, resampling. */
#include "bf_breechface.h"
#include "bf_linalg.h"
#include "bf_error.h"
#include "bf_fft.h"
#include "bf_select.h"

#include <assert.h>
#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NRAYS 360

/* Percentiles of valid heights from a strided sample (enough for a range test). */
static int valid_quantiles(const bf_surface *s, double *p01, double *p50, double *p99, size_t *nvalid)
{
  size_t n = (size_t)s->nx * s->ny, step = n / 200000 + 1, m = 0;
  float *v = malloc((n / step + 1) * sizeof *v);
  if (!v)
    return bf_error_set(BF_ENOMEM, "out of memory for height percentiles");
  *nvalid = 0;
  for (size_t i = 0; i < n; i++)
    if (!isnan(s->z[i])) {
      ++*nvalid;
      if (i % step == 0)
        v[m++] = s->z[i];
    }
  if (m == 0) {
    free(v);
    *p01 = *p50 = *p99 = NAN;
    return 0;
  }
  /* selection, highest first: each lower statistic is then selected below the last one */
  size_t k01 = (size_t)(0.01 * (m - 1)), k50 = (m - 1) / 2, k99 = (size_t)(0.99 * (m - 1));
  *p99 = bf_select_float(v, m, k99);
  *p50 = k50 < k99 ? bf_select_float(v, k99, k50) : *p99;
  *p01 = k01 < k50 ? bf_select_float(v, k50, k01) : *p50;
  free(v);
  return 0;
}

int bf_breechface_is_processed(const bf_surface *s, const bf_breechface_opts *o)
{
  bf_breechface_opts d = BF_BREECHFACE_OPTS_INIT;
  if (!o)
    o = &d;
  if (o->force_raw)
    return 0;
  double p01 = 0, p50 = 0, p99 = 0;
  size_t nv = 0;
  if (valid_quantiles(s, &p01, &p50, &p99, &nv) || nv == 0)
    return 0;
  double missing = 1.0 - (double)nv / ((double)s->nx * s->ny);
  return missing >= o->min_missing_processed && p99 - p01 < o->max_range_processed &&
         fabs(p50) < 2.0;
}

/* ---- robust plane ---- */

int bf_level_plane_robust(bf_surface *s)
{
  size_t n = (size_t)s->nx * s->ny, step = n / 150000 + 1, m = 0;
  double *px = NULL, *py = NULL, *pz = NULL;
  int rc = 0;
  px = malloc((n / step + 1) * sizeof *px);
  py = malloc((n / step + 1) * sizeof *py);
  pz = malloc((n / step + 1) * sizeof *pz);
  if (!px || !py || !pz) {
    rc = bf_error_set(BF_ENOMEM, "out of memory levelling a %d x %d surface", s->nx, s->ny);
    goto done;
  }
  double cx = 0.5 * (s->nx - 1), cy = 0.5 * (s->ny - 1);
  for (size_t i = 0; i < n; i += step)
    if (!isnan(s->z[i])) {
      px[m] = ((double)(i % s->nx) - cx) * s->dx;
      py[m] = ((double)(i / s->nx) - cy) * s->dy;
      pz[m] = s->z[i];
      m++;
    }
  if (m < 10) {
    rc = bf_error_set(BF_EQUALITY, "too few valid points (%zu) to fit a plane", m);
    goto done;
  }
  /* IRLS for least absolute deviations: weights 1/|r|, floored so exact fits stay finite. */
  double c[3] = {0, 0, 0};
  for (int it = 0; it < 40; it++) {
    double A[3][4] = {{0}}, nc[3]; /* normal equations, the right-hand side in column 3 */
    for (size_t k = 0; k < m; k++) {
      double w = 1.0;
      if (it > 0) {
        double r = fabs(pz[k] - (c[0] + c[1] * px[k] + c[2] * py[k]));
        w = 1.0 / (r > 1e-4 ? r : 1e-4);
      }
      double v[3] = {1, px[k], py[k]};
      for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
          A[i][j] += w * v[i] * v[j];
        A[i][3] += w * v[i] * pz[k];
      }
    }
    if (bf_solve(&A[0][0], 3, 4, nc, 1e-300)) {
      rc = bf_error_set(BF_EQUALITY, "valid points are degenerate: no plane fits");
      goto done;
    }
    double dlt = fabs(nc[0] - c[0]) + fabs(nc[1] - c[1]) * 1e3 + fabs(nc[2] - c[2]) * 1e3;
    memcpy(c, nc, sizeof c);
    if (it > 2 && dlt < 1e-6)
      break;
  }
  for (int y = 0; y < s->ny; y++)
    for (int x = 0; x < s->nx; x++) {
      float *z = &s->z[(size_t)y * s->nx + x];
      if (!isnan(*z))
        *z -= (float)(c[0] + c[1] * (x - cx) * s->dx + c[2] * (y - cy) * s->dy);
    }
done:
  free(px);
  free(py);
  free(pz);
  return rc;
}

/* ---- Gaussian regression band-pass ---- */

/* ISO 16610-61 Gaussian transfer along one axis: exp(-pi (alpha lambda f)^2). */
static void gauss_tf(float *h, int n, double d, double lambda)
{
  const double alpha = sqrt(log(2.0) / M_PI);
  for (int k = 0; k < n; k++) {
    int kk = k <= n / 2 ? k : k - n;
    double f = kk / (n * d), a = alpha * lambda * f;
    h[k] = lambda > 0 ? (float)exp(-M_PI * a * a) : 1.0f;
  }
}

int bf_gauss_bandpass(bf_surface *s, double lo, double hi)
{
  int rc = 0, nx = s->nx, ny = s->ny;
  double lmax = hi > lo ? hi : lo;
  int padx = (int)ceil(0.6 * lmax / s->dx), pady = (int)ceil(0.6 * lmax / s->dy);
  int NX = bf_fft_fast_size(nx + 2 * padx), NY = bf_fft_fast_size(ny + 2 * pady), NH = NX / 2 + 1;
  size_t nr = (size_t)NX * NY, nc = (size_t)NH * NY;
  float *zw = NULL, *w = NULL, *tmp = NULL, *hx = NULL, *hy = NULL, *low[2] = {NULL, NULL};
  fftwf_complex *Fz = NULL, *Fw = NULL, *F = NULL;
  const bf_fft_plan *plan = NULL;
  if (nr > (size_t)BF_MAX_POINTS)
    return bf_error_set(BF_ELIMIT, "band-pass of %d x %d points is too large", nx, ny);
  zw = fftwf_alloc_real(nr);
  w = fftwf_alloc_real(nr);
  tmp = fftwf_alloc_real(nr);
  Fz = fftwf_alloc_complex(nc);
  Fw = fftwf_alloc_complex(nc);
  F = fftwf_alloc_complex(nc);
  hx = malloc(NX * sizeof *hx);
  hy = malloc(NY * sizeof *hy);
  low[0] = malloc((size_t)nx * ny * sizeof(float));
  low[1] = malloc((size_t)nx * ny * sizeof(float));
  if (!zw || !w || !tmp || !Fz || !Fw || !F || !hx || !hy || !low[0] || !low[1]) {
    rc = bf_error_set(BF_ENOMEM, "out of memory for a %d x %d band-pass", NX, NY);
    goto done;
  }
  memset(zw, 0, nr * sizeof *zw);
  memset(w, 0, nr * sizeof *w);
  for (int y = 0; y < ny; y++)
    for (int x = 0; x < nx; x++) {
      float z = s->z[(size_t)y * nx + x];
      if (!isnan(z)) {
        zw[(size_t)(y + pady) * NX + x + padx] = z;
        w[(size_t)(y + pady) * NX + x + padx] = 1;
      }
    }
  /* Sizes follow the scan: an estimated plan from the one cache (measuring each would cost more). */
  if (!(plan = bf_fft_plan_estimate(NY, NX))) {
    rc = BF_ENOMEM; /* the message says which size */
    goto done;
  }
  fftwf_execute_dft_r2c(plan->r2c, zw, Fz);
  fftwf_execute_dft_r2c(plan->r2c, w, Fw);
  double lam[2] = {lo, hi};
  for (int k = 0; k < 2; k++) {
    if (lam[k] <= 0)
      continue;
    gauss_tf(hx, NX, s->dx, lam[k]);
    gauss_tf(hy, NY, s->dy, lam[k]);
    /* normalised convolution: L = G*(z w) / G*(w), the zero-order regression filter */
    float *num = low[k];
    for (int pass = 0; pass < 2; pass++) {
      fftwf_complex *src = pass == 0 ? Fz : Fw;
      for (int y = 0; y < NY; y++)
        for (int x = 0; x < NH; x++) {
          size_t i = (size_t)y * NH + x;
          float g = hx[x] * hy[y] / (float)nr;
          F[i][0] = src[i][0] * g;
          F[i][1] = src[i][1] * g;
        }
      fftwf_execute_dft_c2r(plan->c2r, F, tmp);
      for (int y = 0; y < ny; y++)
        for (int x = 0; x < nx; x++) {
          float v = tmp[(size_t)(y + pady) * NX + x + padx];
          if (pass == 0)
            num[(size_t)y * nx + x] = v;
          else
            num[(size_t)y * nx + x] = v > 0.05f ? num[(size_t)y * nx + x] / v : NAN;
        }
    }
  }
  for (size_t i = 0; i < (size_t)nx * ny; i++) {
    if (isnan(s->z[i]))
      continue;
    float a = lo > 0 ? low[0][i] : s->z[i];
    float b = hi > 0 ? low[1][i] : 0.0f;
    s->z[i] = a - b;
  }
done:
  fftwf_free(zw);
  fftwf_free(w);
  fftwf_free(tmp);
  fftwf_free(Fz);
  fftwf_free(Fw);
  fftwf_free(F);
  free(hx);
  free(hy);
  free(low[0]);
  free(low[1]);
  return rc;
}

/* ---- resampling ---- */

int bf_resample(bf_surface **out, const bf_surface *s, double sp)
{
  *out = NULL;
  if (!(sp > 0))
    return bf_error_set(BF_EINVAL, "resampling spacing %g must be positive", sp);
  if (fabs(s->dx - sp) < 1e-6 * sp && fabs(s->dy - sp) < 1e-6 * sp)
    return bf_surface_copy(out, s);
  int nx = (int)floor((s->nx - 1) * s->dx / sp) + 1, ny = (int)floor((s->ny - 1) * s->dy / sp) + 1;
  int rc = bf_surface_new(out, nx, ny, sp, sp);
  if (rc)
    return rc;
  bf_surface *o = *out;
  o->flags = s->flags;
  o->meta = s->meta;
#pragma omp parallel for schedule(static)
  for (int y = 0; y < ny; y++) {
    double fy = y * sp / s->dy;
    int y0 = (int)fy;
    double ty = fy - y0;
    for (int x = 0; x < nx; x++) {
      double fx = x * sp / s->dx;
      int x0 = (int)fx;
      double tx = fx - x0, sw = 0, sz = 0;
      for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
          int xx = x0 + i, yy = y0 + j;
          double wt = (i ? tx : 1 - tx) * (j ? ty : 1 - ty);
          if (xx >= s->nx || yy >= s->ny || wt <= 0)
            continue;
          float z = s->z[(size_t)yy * s->nx + xx];
          if (!isnan(z)) {
            sw += wt;
            sz += wt * z;
          }
        }
      /* at least half the interpolation weight must come from valid points */
      o->z[(size_t)y * nx + x] = sw >= 0.5 ? (float)(sz / sw) : NAN;
    }
  }
  return 0;
}

/* ---- region: circle fits on the valid mask ---- */

/* Algebraic circle fit (Kasa) with iterative trimming of points off the circle. */
static int fit_circle(const double *px, const double *py, int n, double *cx, double *cy, double *r)
{
  char *use = malloc(n ? n : 1);
  double *res = malloc((n ? n : 1) * sizeof *res);
  int rc = -1;
  if (!use || !res)
    goto done;
  memset(use, 1, n);
  for (int it = 0; it < 5; it++) {
    double A[3][4] = {{0}}, c[3];
    int m = 0;
    for (int k = 0; k < n; k++) {
      if (!use[k])
        continue;
      double v[3] = {px[k], py[k], 1}, t = px[k] * px[k] + py[k] * py[k];
      for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++)
          A[i][j] += v[i] * v[j];
        A[i][3] += v[i] * t;
      }
      m++;
    }
    if (m < 8 || bf_solve(&A[0][0], 3, 4, c, 1e-300))
      goto done;
    *cx = c[0] / 2;
    *cy = c[1] / 2;
    double rr = c[2] + *cx * *cx + *cy * *cy;
    if (!(rr > 0))
      goto done;
    *r = sqrt(rr);
    /* trim at 3 x the median absolute residual (at least one pixel) */
    int q = 0;
    for (int k = 0; k < n; k++)
      if (use[k])
        res[q++] = fabs(hypot(px[k] - *cx, py[k] - *cy) - *r);
    float *tmp = malloc(q * sizeof *tmp);
    if (!tmp)
      goto done;
    for (int k = 0; k < q; k++)
      tmp[k] = (float)res[k];
    assert(q >= 8); /* m >= 8 points were used in the fit */
    double lim = 3.0 * bf_select_float(tmp, q, q / 2);
    free(tmp);
    if (lim < 1.5)
      lim = 1.5;
    for (int k = 0; k < n; k++)
      use[k] = fabs(hypot(px[k] - *cx, py[k] - *cy) - *r) <= lim;
  }
  rc = 0;
done:
  free(use);
  free(res);
  return rc;
}

/* Along NRAYS rays from (cx, cy): first and last valid pixel radii (-1 when the ray has none). */
static void ray_extents(const unsigned char *v, int nx, int ny, double cx, double cy, double *rin,
                        double *rout, int *touches_border)
{
  double rmax = hypot(nx, ny);
  *touches_border = 0;
  for (int k = 0; k < NRAYS; k++) {
    double a = 2 * M_PI * k / NRAYS, c = cos(a), s = sin(a);
    rin[k] = rout[k] = -1;
    for (double r = 0; r < rmax; r += 1.0) {
      int x = (int)lround(cx + r * c), y = (int)lround(cy + r * s);
      if (x < 0 || y < 0 || x >= nx || y >= ny) {
        if (rout[k] >= 0 && rout[k] > r - 3)
          (*touches_border)++;
        break;
      }
      if (v[(size_t)y * nx + x]) {
        if (rin[k] < 0)
          rin[k] = r;
        rout[k] = r;
      }
    }
  }
}

/* Builds keep[] (1 = breech face) for a raw scan; fills the circle fields of tr. Returns 0, or
 * 1 when no region could be found (keep = all valid then). */
static int find_region(unsigned char *keep, const bf_surface *s, const bf_breechface_opts *o,
                       bf_breechface_trace *tr)
{
  int nx = s->nx, ny = s->ny, mask_fg = 1;
  size_t n = (size_t)nx * ny, nfg = 0;
  if (s->mask) {
    /* Annotated masks mark the breech face either as the foreground or (white on black, as
     * in CSAFE's DFSC scans) as the "background" colour: take the class that stays off the
     * border of the scanned area, the breech face being an inner ring. The border is the first
     * and last measured point of every row and column, not the frame: a scan turned or padded
     * into a larger frame has unmeasured corners in the mask's background colour, which would
     * outvote the real border and select everything but the ring. */
    size_t nbord = 0, fgbord = 0;
    for (size_t i = 0; i < n; i++)
      nfg += s->mask[i] != s->mask_background;
    for (int pass = 0; pass < 2; pass++) { /* 0: rows, 1: columns */
      int nl = pass ? nx : ny, len = pass ? ny : nx;
      for (int l = 0; l < nl; l++) {
        size_t step = pass ? (size_t)nx : 1, base = pass ? (size_t)l : (size_t)l * nx;
        int a = 0, b = len - 1;
        while (a < len && isnan(s->z[base + a * step]))
          a++;
        while (b > a && isnan(s->z[base + b * step]))
          b--;
        for (int e = 0; e < 2 && a < len; e++) {
          size_t i = base + (e ? b : a) * step;
          nbord++;
          fgbord += s->mask[i] != s->mask_background;
        }
      }
    }
    int want_fg = fgbord <= nbord - fgbord;
    size_t nsel = want_fg ? nfg : n - nfg;
    if (nsel > 0.02 * n && nsel < 0.95 * n)
      tr->used_mask = 1;
    mask_fg = want_fg;
  }
  unsigned char *v = malloc(n);
  double rin[NRAYS], rout[NRAYS], px[NRAYS], py[NRAYS];
  int nb, rc = 1;
  if (!v)
    return -1;
  double mx = 0, my = 0, cnt = 0;
  for (size_t i = 0; i < n; i++) {
    /* the annotated region (when there is one) is fitted like the valid-point mask */
    v[i] = !isnan(s->z[i]) &&
           (!tr->used_mask || (s->mask[i] != s->mask_background) == mask_fg);
    keep[i] = v[i];
    if (v[i]) {
      mx += (double)(i % nx);
      my += (double)(i / nx);
      cnt++;
    }
  }
  if (cnt < 100)
    goto done;
  rc = tr->used_mask ? 0 : 1; /* a mask alone is a region even when no circle fits */
  mx /= cnt;
  my /= cnt;
  double cx = mx, cy = my, R = 0, cfx = 0, cfy = 0, Rf = 0;
  /* two passes: the second casts rays from the fitted centre */
  for (int pass = 0; pass < 2; pass++) {
    ray_extents(v, nx, ny, cx, cy, rin, rout, &nb);
    int m = 0;
    for (int k = 0; k < NRAYS; k++)
      if (rout[k] > 0) {
        double a = 2 * M_PI * k / NRAYS;
        px[m] = cx + rout[k] * cos(a);
        py[m] = cy + rout[k] * sin(a);
        m++;
      }
    if (nb > NRAYS / 2 || fit_circle(px, py, m, &cx, &cy, &R))
      goto done; /* valid points fill the frame: no primer edge to fit */
  }
  if (R < 0.15 * (nx < ny ? nx : ny))
    goto done;
  /* firing pin: innermost valid point along rays, when a hole exists on most rays */
  ray_extents(v, nx, ny, cx, cy, rin, rout, &nb);
  int m = 0;
  /* The impression ends at its wall: the last gap (3+ missing points in a row) along each ray
   * within 0.85 R, beyond the hole; steep walls are where optical scanners lose points. */
  for (int k = 0; k < NRAYS; k++) {
    double a = 2 * M_PI * k / NRAYS, last = -1;
    int run = 0;
    for (double r = 0; r < 0.85 * R; r += 1.0) {
      int x = (int)lround(cx + r * cos(a)), y = (int)lround(cy + r * sin(a));
      if (x < 0 || y < 0 || x >= nx || y >= ny)
        break;
      run = v[(size_t)y * nx + x] ? 0 : run + 1;
      if (run >= 3)
        last = r;
    }
    if (last > 3) {
      px[m] = cx + last * cos(a);
      py[m] = cy + last * sin(a);
      m++;
    }
  }
  if (m > NRAYS / 2 && !fit_circle(px, py, m, &cfx, &cfy, &Rf) && Rf < 0.8 * R) {
    tr->r_fp = Rf;
    tr->fcx = cfx;
    tr->fcy = cfy;
  } else
    Rf = 0;
  tr->cx = cx;
  tr->cy = cy;
  tr->r_out = R;
  /* An annotation mask is the examiner's outline of the breech-face impression: it is kept as
   * drawn. The margins are for fitted circles, whose primer edge carries the roll-off and whose
   * firing-pin circle the wall's lost points only approximate; on an annotated ring 500 µm wide
   * they took 210 µm of it (DFSC K013sA1/A2 raw: 4 CMCs with them, 8 without). The circles stay
   * fitted for the radial form and the firing pin. */
  double ro = tr->used_mask ? 1e30 : R - o->edge_margin / s->dx;
  double rf = tr->used_mask || !(Rf > 0) ? 0 : Rf + o->fp_margin / s->dx;
  for (int y = 0; y < ny; y++)
    for (int x = 0; x < nx; x++) {
      size_t i = (size_t)y * nx + x;
      double d = hypot(x - cx, y - cy);
      double df = rf > 0 ? hypot(x - cfx, y - cfy) : 1e30;
      keep[i] = v[i] && d <= ro && df > rf;
    }
  rc = 0;
done:
  free(v);
  return rc;
}

/* Copies the bounding box of keep[] out of s, NaN outside keep. */
static int crop_to(bf_surface **out, const bf_surface *s, const unsigned char *keep, int *x0o,
                   int *y0o)
{
  int x0 = s->nx, y0 = s->ny, x1 = -1, y1 = -1;
  for (int y = 0; y < s->ny; y++)
    for (int x = 0; x < s->nx; x++)
      if (keep[(size_t)y * s->nx + x]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
  if (x1 < 0)
    return bf_error_set(BF_EQUALITY, "no breech-face points left after cropping");
  int rc = bf_surface_new(out, x1 - x0 + 1, y1 - y0 + 1, s->dx, s->dy);
  if (rc)
    return rc;
  bf_surface *c = *out;
  c->meta = s->meta;
  c->flags = s->flags & ~BF_SURF_HAS_MASK;
  for (int y = y0; y <= y1; y++)
    for (int x = x0; x <= x1; x++) {
      size_t i = (size_t)y * s->nx + x;
      c->z[(size_t)(y - y0) * c->nx + (x - x0)] = keep[i] ? s->z[i] : NAN;
    }
  *x0o = x0;
  *y0o = y0;
  return 0;
}

/* Removes valid points within d µm (4-neighbour steps) of a missing point or the frame: the
 * roll-off along the edges of an already processed scan. */
static int erode_valid(bf_surface *s, double d)
{
  int k = (int)lround(d / s->dx), nx = s->nx, ny = s->ny;
  unsigned char *m = malloc((size_t)nx * ny);
  if (!m)
    return bf_error_set(BF_ENOMEM, "out of memory eroding the edge");
  for (int it = 0; it < k; it++) {
    for (int y = 0; y < ny; y++)
      for (int x = 0; x < nx; x++) {
        size_t i = (size_t)y * nx + x;
        m[i] = !isnan(s->z[i]) &&
               (x == 0 || y == 0 || x == nx - 1 || y == ny - 1 || isnan(s->z[i - 1]) ||
                isnan(s->z[i + 1]) || isnan(s->z[i - nx]) || isnan(s->z[i + nx]));
      }
    for (size_t i = 0; i < (size_t)nx * ny; i++)
      if (m[i])
        s->z[i] = NAN;
  }
  free(m);
  return 0;
}

/* Removes the rotationally symmetric form about (cx, cy) (points): the median height of each
 * ring one point wide, smoothed over +-smooth_um, subtracted. The primer's dome, the raised rim
 * round the firing-pin impression and concentric bulges are the same on every case of a calibre
 * (no firearm's marks: averaged round a ring, those cancel), yet they correlate cell by cell at
 * any rotation. Returns 0 or BF_ENOMEM. */
static int remove_radial(bf_surface *s, double cx, double cy, double smooth_um)
{
  int nx = s->nx, ny = s->ny, rc = 0;
  double rmax = hypot(nx, ny) + 2;
  int nb = (int)rmax + 1;
  int *cnt = calloc(nb + 1, sizeof *cnt), *pos = calloc(nb + 1, sizeof *pos);
  float *val = malloc((size_t)nx * ny * sizeof *val);
  double *prof = malloc(nb * sizeof *prof), *sm = malloc(nb * sizeof *sm);
  if (!cnt || !pos || !val || !prof || !sm) {
    rc = bf_error_set(BF_ENOMEM, "out of memory removing the radial form");
    goto done;
  }
  for (int y = 0; y < ny; y++)
    for (int x = 0; x < nx; x++)
      if (!isnan(s->z[(size_t)y * nx + x]))
        cnt[(int)hypot(x - cx, y - cy) + 1]++;
  for (int b = 1; b <= nb; b++)
    cnt[b] += cnt[b - 1];
  memcpy(pos, cnt, (nb + 1) * sizeof *pos);
  for (int y = 0; y < ny; y++)
    for (int x = 0; x < nx; x++) {
      float v = s->z[(size_t)y * nx + x];
      if (!isnan(v))
        val[pos[(int)hypot(x - cx, y - cy)]++] = v;
    }
  for (int b = 0; b < nb; b++) {
    int m = cnt[b + 1] - cnt[b];
    if (m < 8) {
      prof[b] = NAN;
      continue;
    }
    prof[b] = bf_select_float(val + cnt[b], (size_t)m, (size_t)(m / 2)); /* the ring's median */
  }
  int h = (int)ceil(smooth_um / s->dx);
  for (int b = 0; b < nb; b++) {
    double a = 0;
    int m = 0;
    for (int j = b - h; j <= b + h; j++)
      if (j >= 0 && j < nb && !isnan(prof[j])) {
        a += prof[j];
        m++;
      }
    sm[b] = m ? a / m : 0;
  }
  for (int y = 0; y < ny; y++)
    for (int x = 0; x < nx; x++) {
      float *z = &s->z[(size_t)y * nx + x];
      if (isnan(*z))
        continue;
      double r = hypot(x - cx, y - cy), t = r - 0.5;
      int b0 = t < 0 ? 0 : (int)t, b1 = b0 + 1 < nb ? b0 + 1 : b0;
      double f = t < 0 ? 0 : t - b0;
      *z -= (float)((1 - f) * sm[b0] + f * sm[b1]);
    }
done:
  free(cnt);
  free(pos);
  free(val);
  free(prof);
  free(sm);
  return rc;
}

/* k x k block means of s (a block is valid when at least half its points are; the mask keeps
 * the colour of the block's centre point): scans much finer than the comparison spacing are
 * brought near it first, so region finding and filtering cost the same for any instrument. */
static int bin_surface(bf_surface **out, const bf_surface *s, int k)
{
  int nx = s->nx / k, ny = s->ny / k;
  int rc = bf_surface_new(out, nx, ny, s->dx * k, s->dy * k);
  if (rc)
    return rc;
  bf_surface *b = *out;
  b->flags = s->flags;
  b->meta = s->meta;
  b->mask_background = s->mask_background;
  if (s->mask && !(b->mask = malloc((size_t)nx * ny * sizeof *b->mask)))
    goto nomem;
  if (s->nlabels > 0) {
    if (!(b->labels = malloc((size_t)s->nlabels * sizeof *b->labels)))
      goto nomem;
    memcpy(b->labels, s->labels, (size_t)s->nlabels * sizeof *b->labels);
    b->nlabels = s->nlabels;
  }
  for (int y = 0; y < ny; y++)
    for (int x = 0; x < nx; x++) {
      double sum = 0;
      int c = 0;
      for (int j = 0; j < k; j++) {
        const float *r = s->z + (size_t)(y * k + j) * s->nx + (size_t)x * k;
        for (int i = 0; i < k; i++)
          if (!isnan(r[i])) {
            sum += r[i];
            c++;
          }
      }
      b->z[(size_t)y * nx + x] = 2 * c >= k * k ? (float)(sum / c) : NAN;
      if (b->mask)
        b->mask[(size_t)y * nx + x] = s->mask[(size_t)(y * k + k / 2) * s->nx + x * k + k / 2];
    }
  return 0;
nomem:
  bf_surface_free(b);
  *out = NULL;
  return bf_error_set(BF_ENOMEM, "out of memory binning a %d x %d scan", s->nx, s->ny);
}

void bf_breechface_trace_clear(bf_breechface_trace *tr)
{
  if (!tr)
    return;
  bf_surface_free(tr->input);
  bf_surface_free(tr->cropped);
  bf_surface_free(tr->levelled);
  bf_surface_free(tr->filtered);
  memset(tr, 0, sizeof *tr);
}

int bf_breechface_extract(bf_feature **out, const bf_surface *scan, const bf_breechface_opts *o)
{
  return bf_breechface_extract_trace(out, NULL, scan, o);
}

int bf_breechface_extract_trace(bf_feature **out, bf_breechface_trace *trace,
                                const bf_surface *scan, const bf_breechface_opts *o)
{
  bf_breechface_opts def = BF_BREECHFACE_OPTS_INIT;
  bf_breechface_trace local;
  bf_breechface_trace *tr = trace ? trace : &local;
  bf_surface *work = NULL, *res = NULL, *binned = NULL;
  unsigned char *keep = NULL;
  bf_feature *f = NULL;
  int rc = 0, qflags = 0, processed = 0, x0 = 0, y0 = 0;
  *out = NULL;
  memset(tr, 0, sizeof *tr);
  if (!o)
    o = &def;
  if (!scan || !scan->z || scan->nx < 16 || scan->ny < 16)
    return bf_error_set(BF_EINVAL, "breech face: scan is empty or smaller than 16 x 16 points");
  if (!(o->spacing > 0) || !(o->lambda_short >= 0) || !(o->lambda_long > o->lambda_short))
    return bf_error_set(BF_EINVAL, "breech face: options need spacing > 0 and 0 <= short < long "
                                   "cut-off (got %g, %g, %g)", o->spacing, o->lambda_short,
                        o->lambda_long);
  double w = scan->nx * scan->dx, h = scan->ny * scan->dy;
  if (w > 1.8 * h || h > 1.8 * w)
    return bf_error_set(BF_EFORMAT, "breech face: a %.0f x %.0f um scan is not a cartridge case "
                                    "(aspect %.1f: a bullet land?)", w, h, w > h ? w / h : h / w);
  double ratio = scan->dx / o->spacing;
  if (ratio < 1.0 / o->max_spacing_ratio || ratio > o->max_spacing_ratio ||
      fabs(scan->dx - scan->dy) > 0.05 * scan->dx)
    return bf_error_set(BF_EFORMAT, "breech face: spacing %g x %g um is unusable for comparison "
                                    "at %g um", scan->dx, scan->dy, o->spacing);
  if (ratio > o->warn_spacing_ratio)
    qflags |= BF_Q_SPACING; /* coarser than the comparison: detail is missing */
  if (trace && (rc = bf_surface_copy(&tr->input, scan)))
    goto done;
  processed = bf_breechface_is_processed(scan, o);
  double r_out = 0, r_fp = 0, ccx = 0, ccy = 0;
  if (processed) {
    /* framed tightly on its valid points: a scan framed larger (turned, or padded by another
     * instrument's software) gets the same CMC cell grid as one framed on its ring */
    keep = malloc((size_t)scan->nx * scan->ny);
    if (!keep) {
      rc = bf_error_set(BF_ENOMEM, "out of memory for a region mask");
      goto done;
    }
    for (size_t i = 0; i < (size_t)scan->nx * scan->ny; i++)
      keep[i] = !isnan(scan->z[i]);
    if ((rc = crop_to(&work, scan, keep, &x0, &y0)))
      goto done;
    if (o->processed_erode > 0 && (rc = erode_valid(work, o->processed_erode)))
      goto done;
  } else {
    keep = malloc((size_t)scan->nx * scan->ny);
    if (!keep) {
      rc = bf_error_set(BF_ENOMEM, "out of memory for a region mask");
      goto done;
    }
    int fr = find_region(keep, scan, o, tr);
    if (fr < 0) {
      rc = bf_error_set(BF_ENOMEM, "out of memory finding the breech face");
      goto done;
    }
    if (fr > 0)
      qflags |= BF_Q_NO_REGION;
    if ((rc = crop_to(&work, scan, keep, &x0, &y0)))
      goto done;
    /* finer than half the comparison spacing: the region (found above at full resolution)
     * is block-averaged to between 1/2 and 1 of it, so levelling and filtering cost the same
     * for any instrument (the band-pass is the anti-aliasing filter of the final resampling) */
    int k = (int)floor(o->spacing / (2 * scan->dx) + 1e-9);
    if (2 * scan->dy > o->spacing || work->nx / (k > 1 ? k : 1) < 16 || work->ny / (k > 1 ? k : 1) < 16)
      k = 1;
    if (k >= 2) {
      if ((rc = bin_surface(&binned, work, k)))
        goto done;
      bf_surface_free(work);
      work = binned;
      binned = NULL;
    }
    double bk = k >= 2 ? k : 1;
    r_out = tr->r_out * scan->dx;
    r_fp = tr->r_fp * scan->dx;
    ccx = (tr->cx - x0) * scan->dx;
    ccy = (tr->cy - y0) * scan->dy;
    if (trace && (rc = bf_surface_copy(&tr->cropped, work)))
      goto done;
    if ((rc = bf_level_plane_robust(work)))
      goto done;
    if (tr->r_out > 0 && o->radial_smooth > 0 &&
        (rc = remove_radial(work, (tr->cx - x0) / bk, (tr->cy - y0) / bk, o->radial_smooth)))
      goto done;
    /* the firing-pin rim is concentric with the firing pin, which may sit off the centre */
    if (tr->r_fp > 0 && o->radial_smooth > 0 &&
        hypot(tr->fcx - tr->cx, tr->fcy - tr->cy) * scan->dx > o->radial_smooth &&
        (rc = remove_radial(work, (tr->fcx - x0) / bk, (tr->fcy - y0) / bk, o->radial_smooth)))
      goto done;
    if (trace && (rc = bf_surface_copy(&tr->levelled, work)))
      goto done;
    if ((rc = bf_gauss_bandpass(work, o->lambda_short, o->lambda_long)))
      goto done;
    if (trace && (rc = bf_surface_copy(&tr->filtered, work)))
      goto done;
  }
  if ((rc = bf_resample(&res, work, o->spacing)))
    goto done;
  bf_surface_stats st;
  bf_surface_stats_get(&st, res);
  size_t n = st.n, nv = st.nvalid;
  if (nv < 100) {
    rc = bf_error_set(BF_EQUALITY, "breech face: only %zu valid points left: nothing to compare",
                      nv);
    goto done;
  }
  double sd = st.zsd;
  if ((double)nv / n < o->min_valid)
    qflags |= BF_Q_MOSTLY_MISSING;
  if (sd < 1e-3)
    qflags |= BF_Q_NO_MARKS;
  if ((rc = bf_feature_new(&f, BF_KIND_CARTRIDGE, res->nx, res->ny, o->spacing, o->spacing)))
    goto done;
  memcpy(f->z, res->z, n * sizeof *f->z);
  f->quality_flags = qflags;
  f->valid_fraction = (float)((double)nv / n);
  f->version = BF_BREECHFACE_VERSION;
  f->params[0] = scan->dx;
  f->params[1] = r_out;
  f->params[2] = r_fp;
  f->params[3] = ccx;
  f->params[4] = ccy;
  f->params[5] = processed;
  f->params[6] = sd;
  f->params[7] = (double)nv / n;
  *out = f;
  f = NULL;
done:
  free(keep);
  bf_surface_free(work);
  bf_surface_free(res);
  bf_surface_free(binned);
  bf_feature_free(f);
  if (!trace)
    bf_breechface_trace_clear(&local);
  else if (rc)
    bf_breechface_trace_clear(tr);
  return rc;
}

/* ---- public wrappers for other pipelines (the firing pin) ---- */

int bf_breechface_circles(bf_breechface_trace *tr, const bf_surface *scan,
                          const bf_breechface_opts *o)
{
  bf_breechface_opts def = BF_BREECHFACE_OPTS_INIT;
  memset(tr, 0, sizeof *tr);
  if (!o)
    o = &def;
  if (!scan || !scan->z || scan->nx < 16 || scan->ny < 16)
    return bf_error_set(BF_EINVAL, "breech face: scan is empty or smaller than 16 x 16 points");
  unsigned char *keep = malloc((size_t)scan->nx * scan->ny);
  if (!keep)
    return bf_error_set(BF_ENOMEM, "out of memory for a region mask");
  int fr = find_region(keep, scan, o, tr);
  free(keep);
  if (fr < 0)
    return bf_error_set(BF_ENOMEM, "out of memory finding the breech face");
  return 0;
}
