/* Congruent Matching Cells: cell registration by FFT correlation, cmcR's decision rules. */
#include "bf_cmc.h"
#include "bf_error.h"
#include "bf_fft.h"

#include <math.h>
#include <omp.h>
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
  int cells_x, cells_y;
};

void bf_cmc_prep_free(bf_cmc_prep *p)
{
  if (!p)
    return;
  if (p->cfft)
    for (int i = 0; i < p->ncell; i++)
      fftwf_free(p->cfft[i]);
  free(p->cfft);
  free(p->use);
  free(p->z);
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
      (o->theta_max - o->theta_min) / o->theta_step > 720)
    return bf_error_set(BF_EINVAL, "CMC options out of range (cells %d x %d, region x%g, "
                        "theta %g..%g by %g)", o->cells_x, o->cells_y, o->region_mult,
                        o->theta_min, o->theta_max, o->theta_step);
  return 0;
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
  p->cw = f->nx / o->cells_x;
  p->ch = f->ny / o->cells_y;
  p->ox = (f->nx - p->cw * o->cells_x) / 2;
  p->oy = (f->ny - p->ch * o->cells_y) / 2;
  p->rx = (int)lround(o->region_mult * p->cw);
  p->ry = (int)lround(o->region_mult * p->ch);
  p->n1 = bf_fft_good_size(p->rx);
  p->n0 = bf_fft_good_size(p->ry);
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
  if (!(p->plan = bf_fft_plan_get(p->n0, p->n1))) {
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
  *out = p;
  p = NULL;
done:
  fftwf_free(buf);
  bf_cmc_prep_free(p);
  return rc;
}

/* One (cell, theta) registration. */
typedef struct reg {
  float corr;
  float sx, sy; /* translation, points */
  unsigned char ok;
} reg;

/* Nearest-neighbour rotation of b about its centre by theta degrees into rot (same size). */
static void rotate_nn(float *rot, const bf_cmc_prep *b, double theta)
{
  double a = theta * M_PI / 180.0, c = cos(a), s = sin(a);
  double cx = 0.5 * (b->nx - 1), cy = 0.5 * (b->ny - 1);
  for (int y = 0; y < b->ny; y++) {
    double v = y - cy;
    /* source = R(-theta) (p - c) + c, stepped along the row; +0.5 and floor = round */
    double fx = c * (0 - cx) + s * v + cx + 0.5, fy = -s * (0 - cx) + c * v + cy + 0.5;
    float *row = rot + (size_t)y * b->nx;
    for (int x = 0; x < b->nx; x++, fx += c, fy -= s) {
      int xs = (int)floor(fx), ys = (int)floor(fy);
      row[x] = ((unsigned)xs < (unsigned)b->nx && (unsigned)ys < (unsigned)b->ny)
                 ? b->z[(size_t)ys * b->nx + xs] : NAN;
    }
  }
}

/* Registers every kept cell of a against b rotated by theta. Scratch is per caller. */
static void register_theta(reg *out, const bf_cmc_prep *a, const bf_cmc_prep *b, double theta,
                           const bf_cmc_opts *o, float *rot, float *region, float *buf,
                           fftwf_complex *F, float *cc)
{
  rotate_nn(rot, b, theta);
  int rx = a->rx, ry = a->ry, n0 = a->n0, n1 = a->n1, nh = a->nh;
  double acx = 0.5 * (a->nx - 1), acy = 0.5 * (a->ny - 1);
  double bcx = 0.5 * (b->nx - 1), bcy = 0.5 * (b->ny - 1);
  for (int i = 0; i < a->ncell; i++) {
    reg *g = &out[i];
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
    /* correlation c * r (s) = sum_p c(p) r(p + s): R(k) conj(C(k)) */
    for (size_t k = 0; k < (size_t)n0 * nh; k++) {
      float re = F[k][0] * C[k][0] + F[k][1] * C[k][1];
      float im = F[k][1] * C[k][0] - F[k][0] * C[k][1];
      F[k][0] = re;
      F[k][1] = im;
    }
    fftwf_execute_dft_c2r(a->plan->c2r, F, cc);
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
    double s1 = 0, s2 = 0, s11 = 0, s22 = 0, s12 = 0;
    int m = 0;
    for (int y = 0; y < a->ch; y++)
      for (int x = 0; x < a->cw; x++) {
        float p = cz[(size_t)y * a->nx + x], q = region[(size_t)(y + by) * rx + x + bx];
        if (isnan(p) || isnan(q))
          continue;
        s1 += p;
        s2 += q;
        s11 += (double)p * p;
        s22 += (double)q * q;
        s12 += (double)p * q;
        m++;
      }
    if (m < 10)
      continue;
    double v1 = s11 - s1 * s1 / m, v2 = s22 - s2 * s2 / m;
    if (!(v1 > 0 && v2 > 0))
      continue;
    g->corr = (float)((s12 - s1 * s2 / m) / sqrt(v1 * v2));
    g->sx = (float)(bx - 0.5 * (rx - a->cw));
    g->sy = (float)(by - 0.5 * (ry - a->ch));
    g->ok = 1;
  }
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

int bf_cmc_compare_prep(bf_cmc_result *out, const bf_cmc_prep *a, const bf_cmc_prep *b,
                        const bf_cmc_opts *o)
{
  bf_cmc_opts def = BF_CMC_OPTS_INIT;
  reg *g[2] = {NULL, NULL};
  double *th = NULL;
  dir_result d[2];
  int rc = 0, failed = 0;
  memset(out, 0, sizeof *out);
  memset(d, 0, sizeof d);
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
      b->cells_y != o->cells_y)
    return bf_error_set(BF_EINVAL, "CMC compare: preps were made with other cell options");
  int nt = (int)floor((o->theta_max - o->theta_min) / o->theta_step + 1e-9) + 1;
  int ncell = a->ncell;
  th = malloc(nt * sizeof *th);
  g[0] = calloc((size_t)nt * ncell, sizeof(reg));
  g[1] = calloc((size_t)nt * ncell, sizeof(reg));
  if (!th || !g[0] || !g[1]) {
    rc = bf_error_set(BF_ENOMEM, "out of memory for CMC registrations");
    goto done;
  }
  for (int t = 0; t < nt; t++)
    th[t] = o->theta_min + t * o->theta_step;
  int nthreads = o->threads > 0 ? o->threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic) num_threads(nthreads) if (!omp_in_parallel())
  for (int task = 0; task < 2 * nt; task++) {
    int dir = task / nt, t = task % nt;
    const bf_cmc_prep *r = dir ? b : a, *s = dir ? a : b;
    float *rot = malloc((size_t)s->nx * s->ny * sizeof *rot);
    float *region = malloc((size_t)r->rx * r->ry * sizeof *region);
    float *buf = fftwf_alloc_real((size_t)r->n0 * r->n1);
    float *cc = fftwf_alloc_real((size_t)r->n0 * r->n1);
    fftwf_complex *F = fftwf_alloc_complex((size_t)r->n0 * r->nh);
    if (buf)
      memset(buf, 0, (size_t)r->n0 * r->n1 * sizeof *buf);
    if (rot && region && buf && cc && F)
      register_theta(g[dir] + (size_t)t * ncell, r, s, th[t], o, rot, region, buf, F, cc);
    else {
#pragma omp atomic write
      failed = 1;
    }
    free(rot);
    free(region);
    fftwf_free(buf);
    fftwf_free(cc);
    fftwf_free(F);
  }
  if (failed) {
    rc = bf_error_set(BF_ENOMEM, "out of memory registering CMC cells");
    goto done;
  }
  for (int k = 0; k < 2; k++)
    if ((rc = decide(&d[k], g[k], th, nt, ncell, o, a->sp)))
      goto done;
  /* combine the directions as cmcR's decision_combineDirections (fail, compareThetas) */
  int combined_high = 0;
  if (d[0].high_pass && d[1].high_pass) {
    combined_high = 1;
    for (int k = 0; k < 2; k++)
      if (!(fabs(d[k].theta_mode - d[k].med_theta) <= o->theta_thresh))
        combined_high = 0;
    double t0 = d[0].theta_mode, t1 = d[1].theta_mode;
    if ((t0 > 0) == (t1 > 0) && t0 != 0 && t1 != 0 && fabs(t0 + t1) > o->theta_thresh)
      combined_high = 0;
    else if (fabs(fabs(t0) - fabs(t1)) > o->theta_thresh)
      combined_high = 0;
  }
  int smaller = d[1].n_orig < d[0].n_orig ? 1 : 0;
  out->ncell = 0;
  out->cells = calloc((size_t)2 * ncell, sizeof *out->cells);
  if (!out->cells) {
    rc = bf_error_set(BF_ENOMEM, "out of memory for CMC cells");
    goto done;
  }
  unsigned char *hit = calloc(ncell, 1);
  if (!hit) {
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
      const reg *rg = &g[k][(size_t)bt * ncell + i];
      c->direction = k;
      c->row = i / r->cells_x;
      c->col = i % r->cells_x;
      c->x0 = (r->ox + c->col * r->cw) * r->sp;
      c->y0 = (r->oy + c->row * r->ch) * r->sp;
      c->w = r->cw * r->sp;
      c->h = r->ch * r->sp;
      c->theta = th[bt];
      c->dx = rg->sx * r->sp;
      c->dy = rg->sy * r->sp;
      c->corr = rg->corr;
      c->cmc_original = d[k].orig[i];
      c->cmc_high = combined_high ? cell_high(&d[k], i, th, nt, ncell, o)
                                  : (k == smaller && d[k].orig[i]);
      if (c->cmc_high)
        hit[i] = 1;
    }
  }
  int nh = 0;
  for (int i = 0; i < ncell; i++)
    nh += hit[i];
  free(hit);
  /* cmcR counts a cell position once even when both directions call it */
  out->cmc_combined = combined_high ? nh : d[smaller].n_orig;
  out->score = out->cmc_combined;
  out->match = out->score >= o->match_min_cmc;
  out->theta = d[0].med_theta;
  out->dx = d[0].med_x * a->sp;
  out->dy = d[0].med_y * a->sp;
  out->quality_flags = a->qflags | b->qflags;
done:
  dir_clear(&d[0]);
  dir_clear(&d[1]);
  free(g[0]);
  free(g[1]);
  free(th);
  if (rc)
    bf_cmc_result_clear(out);
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
