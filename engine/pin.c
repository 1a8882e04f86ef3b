/* Firing-pin ACCF: masked normalised cross-correlation over translation after rotation
 * (bf_pin.h). */
#include "bf_pin.h"
#include "bf_error.h"
#include "bf_fft.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One feature ready to correlate at one resolution. */
typedef struct img {
  int nx, ny;
  double dx;
  float *z; /* NaN = missing */
  size_t nvalid;
} img;

static void img_clear(img *m)
{
  free(m->z);
  memset(m, 0, sizeof *m);
}

static int img_from(img *m, const float *z, int nx, int ny, double dx)
{
  m->nx = nx;
  m->ny = ny;
  m->dx = dx;
  m->nvalid = 0;
  if (!(m->z = malloc((size_t)nx * ny * sizeof *m->z)))
    return bf_error_set(BF_ENOMEM, "out of memory comparing firing pins");
  memcpy(m->z, z, (size_t)nx * ny * sizeof *m->z);
  for (size_t i = 0; i < (size_t)nx * ny; i++)
    m->nvalid += !isnan(z[i]);
  return 0;
}

/* 2 x 2 block means (a block is valid when half its points are). */
static int img_half(img *h, const img *m)
{
  int nx = m->nx / 2, ny = m->ny / 2;
  memset(h, 0, sizeof *h);
  h->nx = nx;
  h->ny = ny;
  h->dx = 2 * m->dx;
  if (!(h->z = malloc((size_t)(nx ? nx : 1) * (ny ? ny : 1) * sizeof *h->z)))
    return bf_error_set(BF_ENOMEM, "out of memory comparing firing pins");
  for (int y = 0; y < ny; y++)
    for (int x = 0; x < nx; x++) {
      double s = 0;
      int c = 0;
      for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
          float v = m->z[(size_t)(2 * y + j) * m->nx + 2 * x + i];
          if (!isnan(v)) {
            s += v;
            c++;
          }
        }
      h->z[(size_t)y * nx + x] = c >= 2 ? (float)(s / c) : NAN;
      h->nvalid += c >= 2;
    }
  return 0;
}

/* Bilinear rotation of m about its centre by theta degrees into rot (same size): rot(p) =
 * m(R(-theta)(p - c) + c), as the CMC rotates its target; NaN where a neighbour is missing. */
static void rotate_bilinear(float *rot, const img *m, double theta)
{
  double a = theta * M_PI / 180.0, c = cos(a), s = sin(a);
  double cx = 0.5 * (m->nx - 1), cy = 0.5 * (m->ny - 1);
  for (int y = 0; y < m->ny; y++)
    for (int x = 0; x < m->nx; x++) {
      double u = x - cx, v = y - cy, fx = c * u + s * v + cx, fy = -s * u + c * v + cy;
      int x0 = (int)floor(fx), y0 = (int)floor(fy);
      float out = NAN;
      if (x0 >= 0 && y0 >= 0 && x0 + 1 < m->nx && y0 + 1 < m->ny) {
        const float *p = m->z + (size_t)y0 * m->nx + x0;
        double tx = fx - x0, ty = fy - y0;
        if (!isnan(p[0]) && !isnan(p[1]) && !isnan(p[m->nx]) && !isnan(p[m->nx + 1]))
          out = (float)((1 - ty) * ((1 - tx) * p[0] + tx * p[1]) +
                        ty * ((1 - tx) * p[m->nx] + tx * p[m->nx + 1]));
      }
      rot[(size_t)y * m->nx + x] = out;
    }
}

/* Scratch and the reference's transforms at one resolution. */
typedef struct corr_ctx {
  const bf_fft_plan *plan;
  int P, Q, nc;        /* padded rows, columns; complex points */
  float *buf;          /* P*Q real */
  fftwf_complex *fa[3]; /* FFT of a, a^2, mask a */
  fftwf_complex *fb[3], *prod;
  float *c[6];         /* N, Sa, Sb, Sab, Saa, Sbb */
} corr_ctx;

static void ctx_free(corr_ctx *x)
{
  fftwf_free(x->buf);
  for (int i = 0; i < 3; i++) {
    fftwf_free(x->fa[i]);
    fftwf_free(x->fb[i]);
  }
  fftwf_free(x->prod);
  for (int i = 0; i < 6; i++)
    fftwf_free(x->c[i]);
  memset(x, 0, sizeof *x);
}

/* Standardised heights (0 where missing), their squares and the mask of z into the padded
 * buffer, one at a time, transformed into f[0..2]. */
static void forward3(corr_ctx *x, const float *z, int nx, int ny, fftwf_complex **f)
{
  double s = 0, s2 = 0;
  size_t m = 0;
  for (size_t i = 0; i < (size_t)nx * ny; i++)
    if (!isnan(z[i])) {
      s += z[i];
      s2 += (double)z[i] * z[i];
      m++;
    }
  double mu = m ? s / m : 0, sd = m ? sqrt(fmax(s2 / m - mu * mu, 0)) : 1;
  if (!(sd > 0))
    sd = 1;
  for (int k = 0; k < 3; k++) {
    memset(x->buf, 0, (size_t)x->P * x->Q * sizeof *x->buf);
    for (int y = 0; y < ny; y++)
      for (int xx = 0; xx < nx; xx++) {
        float v = z[(size_t)y * nx + xx];
        if (isnan(v))
          continue;
        double t = (v - mu) / sd;
        x->buf[(size_t)y * x->Q + xx] = (float)(k == 0 ? t : k == 1 ? t * t : 1.0);
      }
    fftwf_execute_dft_r2c(x->plan->r2c, x->buf, f[k]);
  }
}

/* c = IFFT(conj(F) G) / (P Q): the circular correlation sum_p f(p) g(p + u). */
static void xcorr(corr_ctx *x, const fftwf_complex *F, const fftwf_complex *G, float *c)
{
  float s = 1.0f / ((float)x->P * x->Q);
  for (int i = 0; i < x->nc; i++) {
    float ar = F[i][0], ai = -F[i][1], br = G[i][0], bi = G[i][1];
    x->prod[i][0] = (ar * br - ai * bi) * s;
    x->prod[i][1] = (ar * bi + ai * br) * s;
  }
  fftwf_execute_dft_c2r(x->plan->c2r, x->prod, c);
}

static int ctx_init(corr_ctx *x, const img *a, const img *b, int ms)
{
  memset(x, 0, sizeof *x);
  /* no wrap-around for shifts within +-ms of the aligned centres (see the header) */
  x->Q = bf_fft_fast_size((a->nx + b->nx) / 2 + ms + 2);
  x->P = bf_fft_fast_size((a->ny + b->ny) / 2 + ms + 2);
  x->nc = x->P * (x->Q / 2 + 1);
  if (!(x->plan = bf_fft_plan_estimate(x->P, x->Q)))
    return BF_ENOMEM;
  int ok = (x->buf = fftwf_malloc((size_t)x->P * x->Q * sizeof(float))) &&
           (x->prod = fftwf_malloc((size_t)x->nc * sizeof(fftwf_complex)));
  for (int i = 0; ok && i < 3; i++)
    ok = (x->fa[i] = fftwf_malloc((size_t)x->nc * sizeof(fftwf_complex))) &&
         (x->fb[i] = fftwf_malloc((size_t)x->nc * sizeof(fftwf_complex)));
  for (int i = 0; ok && i < 6; i++)
    ok = (x->c[i] = fftwf_malloc((size_t)x->P * x->Q * sizeof(float))) != NULL;
  if (!ok) {
    ctx_free(x);
    return bf_error_set(BF_ENOMEM, "out of memory comparing firing pins");
  }
  forward3(x, a->z, a->nx, a->ny, x->fa);
  return 0;
}

/* ACCF of a (in x) and b rotated by theta into rot: the best correlation within ms points of the
 * aligned centres with enough overlap; its shift (points) in *ux, *uy. -2 when no shift counts. */
static double accf_at(corr_ctx *x, const img *a, const img *b, double theta, float *rot, int ms,
                      double min_overlap, int *ux, int *uy)
{
  rotate_bilinear(rot, b, theta);
  forward3(x, rot, b->nx, b->ny, x->fb);
  xcorr(x, x->fa[2], x->fb[2], x->c[0]); /* N */
  xcorr(x, x->fa[0], x->fb[2], x->c[1]); /* Sa */
  xcorr(x, x->fa[2], x->fb[0], x->c[2]); /* Sb */
  xcorr(x, x->fa[0], x->fb[0], x->c[3]); /* Sab */
  xcorr(x, x->fa[1], x->fb[2], x->c[4]); /* Saa */
  xcorr(x, x->fa[2], x->fb[1], x->c[5]); /* Sbb */
  size_t nmin = a->nvalid < b->nvalid ? a->nvalid : b->nvalid;
  double best = -2, need = min_overlap * (double)nmin;
  /* centres aligned at u0 = cb - ca */
  int u0x = (int)lround(0.5 * (b->nx - 1) - 0.5 * (a->nx - 1)),
      u0y = (int)lround(0.5 * (b->ny - 1) - 0.5 * (a->ny - 1));
  for (int dy = -ms; dy <= ms; dy++)
    for (int dx = -ms; dx <= ms; dx++) {
      if (dx * dx + dy * dy > ms * ms)
        continue;
      int u = u0x + dx, v = u0y + dy;
      size_t i = (size_t)((v % x->P + x->P) % x->P) * x->Q + (size_t)((u % x->Q + x->Q) % x->Q);
      double n = x->c[0][i];
      if (n < need || n < 16)
        continue;
      double sa = x->c[1][i], sb = x->c[2][i], num = x->c[3][i] - sa * sb / n,
             da = x->c[4][i] - sa * sa / n, db = x->c[5][i] - sb * sb / n;
      if (!(da > 1e-6 * n && db > 1e-6 * n))
        continue;
      double r = num / sqrt(da * db);
      if (r > best) {
        best = r;
        *ux = dx;
        *uy = dy;
      }
    }
  return best;
}

/* Correlates a with b at each angle of th[0..n) at one resolution; returns the best in *acc. */
static int sweep(double *acc, double *ang, int *ux, int *uy, const img *a, const img *b,
                 const double *th, int n, const bf_pin_opts *o, double *per)
{
  corr_ctx x;
  int ms = (int)ceil(o->max_shift / a->dx), rc;
  float *rot = malloc((size_t)b->nx * b->ny * sizeof *rot);
  if (!rot)
    return bf_error_set(BF_ENOMEM, "out of memory comparing firing pins");
  if ((rc = ctx_init(&x, a, b, ms))) {
    free(rot);
    return rc;
  }
  *acc = -2;
  for (int k = 0; k < n; k++) {
    int px = 0, py = 0;
    double r = accf_at(&x, a, b, th[k], rot, ms, o->min_overlap, &px, &py);
    if (per)
      per[k] = r;
    if (r > *acc) {
      *acc = r;
      *ang = th[k];
      *ux = px;
      *uy = py;
    }
  }
  ctx_free(&x);
  free(rot);
  return 0;
}

int bf_pin_compare(bf_pin_result *out, const bf_feature *ref, const bf_feature *tgt, double theta,
                   const bf_pin_opts *o)
{
  bf_pin_opts def = BF_PIN_OPTS_INIT;
  img a = {0}, b = {0}, ha = {0}, hb = {0};
  double *th = NULL, *per = NULL;
  int rc = 0;
  memset(out, 0, sizeof *out);
  out->accf = out->rotation = out->dx = out->dy = NAN;
  if (!o)
    o = &def;
  if (!ref || !tgt || ref->kind != BF_KIND_FIRINGPIN || tgt->kind != BF_KIND_FIRINGPIN ||
      !ref->z || !tgt->z || fabs(ref->dx - tgt->dx) > 1e-6 * ref->dx)
    return bf_error_set(BF_EINVAL, "firing pin: two firing-pin features of one spacing needed");
  if (!(o->max_shift >= 0) || !(o->coarse_step > 0) || !(o->refine_step > 0) ||
      !(o->refine_window >= 0) || o->keep < 1 || 360.0 / o->coarse_step > 3600)
    return bf_error_set(BF_EINVAL, "firing pin: bad comparison options");
  if ((rc = img_from(&a, ref->z, ref->nx, ref->ny, ref->dx)) ||
      (rc = img_from(&b, tgt->z, tgt->nx, tgt->ny, tgt->dx)))
    goto done;
  int nw = (int)floor(o->refine_window / o->refine_step + 1e-9), nref = 2 * nw + 1;
  int ncoarse = isnan(theta) ? (int)ceil(360.0 / o->coarse_step - 1e-9) : 0;
  int keep = o->keep < ncoarse ? o->keep : ncoarse;
  size_t nth = (size_t)(ncoarse > 0 ? ncoarse : 0) + (size_t)nref * (keep > 0 ? keep : 1);
  if (!(th = malloc(nth * sizeof *th)) || !(per = malloc(nth * sizeof *per))) {
    rc = bf_error_set(BF_ENOMEM, "out of memory comparing firing pins");
    goto done;
  }
  double centre[64];
  int ncentre = 0;
  if (ncoarse > 0) {
    if ((rc = img_half(&ha, &a)) || (rc = img_half(&hb, &b)))
      goto done;
    for (int k = 0; k < ncoarse; k++)
      th[k] = bf_cmc_wrap180(k * o->coarse_step);
    double acc, ang;
    int ux, uy;
    if ((rc = sweep(&acc, &ang, &ux, &uy, &ha, &hb, th, ncoarse, o, per)))
      goto done;
    out->nrot += ncoarse;
    /* the best `keep` local maxima round the circle */
    for (int q = 0; q < keep && q < 64; q++) {
      int bi = -1;
      for (int k = 0; k < ncoarse; k++) {
        double l = per[(k + ncoarse - 1) % ncoarse], r = per[(k + 1) % ncoarse];
        if (per[k] >= l && per[k] >= r && per[k] > -2 && (bi < 0 || per[k] > per[bi]))
          bi = k;
      }
      if (bi < 0)
        break;
      centre[ncentre++] = th[bi];
      per[bi] = -3; /* taken */
    }
    out->from_cmc = 0;
  } else {
    centre[ncentre++] = theta;
    out->from_cmc = 1;
  }
  int m = 0;
  for (int c = 0; c < ncentre; c++)
    for (int j = -nw; j <= nw; j++)
      th[m++] = bf_cmc_wrap180(centre[c] + j * o->refine_step);
  double acc = -2, ang = 0;
  int ux = 0, uy = 0;
  if (m && (rc = sweep(&acc, &ang, &ux, &uy, &a, &b, th, m, o, NULL)))
    goto done;
  out->nrot += m;
  out->found = 1;
  if (acc > -2) {
    out->accf = acc;
    out->rotation = ang;
    out->dx = ux * a.dx;
    out->dy = uy * a.dx;
  } else
    out->accf = 0; /* never enough overlap: nothing in common */
done:
  img_clear(&a);
  img_clear(&b);
  img_clear(&ha);
  img_clear(&hb);
  free(th);
  free(per);
  return rc;
}

int bf_pin_compare_cmc(bf_pin_result *out, const bf_feature *ref, const bf_feature *tgt,
                       const bf_cmc_result *cmc, const bf_pin_opts *o)
{
  bf_pin_opts def = BF_PIN_OPTS_INIT;
  if (!o)
    o = &def;
  if (!ref || !tgt) {
    memset(out, 0, sizeof *out);
    out->accf = out->rotation = out->dx = out->dy = NAN;
    return 0;
  }
  double theta = NAN;
  if (cmc && cmc->score >= o->cmc_min && isfinite(cmc->theta))
    theta = isfinite(cmc->theta_refined) ? cmc->theta_refined : cmc->theta;
  return bf_pin_compare(out, ref, tgt, theta, o);
}

double bf_pin_rank(double cmc, double accf, const bf_pin_opts *o)
{
  bf_pin_opts def = BF_PIN_OPTS_INIT;
  if (!o)
    o = &def;
  if (!isfinite(accf))
    return cmc;
  double a = accf < 0 ? 0 : accf >= 1 ? 0.999 : accf;
  return cmc + o->weight * a;
}
