/* Comparison pictures (see bf_draw.h). Moved here from tools/compare_*.c so the CLI and the
 * web server draw the same thing. */
#include "bf_draw.h"
#include "bf_alloc.h"
#include "bf_cv.h"
#include "bf_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAIRS 64

void bf_image_clear(bf_image *im)
{
  if (!im)
    return;
  bf_free(im->px);
  memset(im, 0, sizeof *im);
}

int bf_image_write(const bf_image *im, const char *path)
{
  return bf_cv_write_rgb(path, im->px, im->w, im->h);
}

int bf_image_png(const bf_image *im, uint8_t **png, size_t *len)
{
  return bf_cv_encode_png_rgb(png, len, im->px, im->w, im->h);
}

static int image_new(bf_image *im, int w, int h)
{
  memset(im, 0, sizeof *im);
  if (w <= 0 || h <= 0 || (size_t)w * h > (size_t)1 << 28)
    return bf_error_set(BF_ELIMIT, "a %d x %d picture is out of range", w, h);
  im->px = bf_malloc(sizeof *im->px * (size_t)w * h);
  if (!im->px)
    return bf_error_set(BF_ENOMEM, "out of memory for a %d x %d picture", w, h);
  im->w = w;
  im->h = h;
  for (size_t i = 0; i < (size_t)w * h; i++)
    im->px[i] = 0xffffff;
  return 0;
}

static void put(bf_image *c, int x, int y, uint32_t col)
{
  if (x >= 0 && x < c->w && y >= 0 && y < c->h)
    c->px[(size_t)y * c->w + x] = col;
}

void bf_draw_heights(uint32_t *rgb, int stride, const float *z, int nx, int ny)
{
  double s2 = 0;
  long n = 0;
  for (long i = 0; i < (long)nx * ny; i++)
    if (!isnan(z[i])) {
      s2 += (double)z[i] * z[i];
      n++;
    }
  double lim = n ? 3 * sqrt(s2 / n) : 1;
  if (!(lim > 0))
    lim = 1;
  for (int y = 0; y < ny; y++)
    for (int x = 0; x < nx; x++) {
      float v = z[(size_t)y * nx + x];
      uint32_t c = 0xdddddd;
      if (!isnan(v)) {
        double t = v / lim;
        t = t < -1 ? -1 : t > 1 ? 1 : t;
        int r = t > 0 ? 255 : (int)(255 * (1 + t)), b = t < 0 ? 255 : (int)(255 * (1 - t));
        int g = (int)(255 * (1 - fabs(t)));
        c = (uint32_t)r << 16 | (uint32_t)g << 8 | (uint32_t)b;
      }
      rgb[(size_t)y * stride + x] = c;
    }
}

/* A two-pixel frame. */
static void frame(bf_image *im, double x0, double y0, double rw, double rh, uint32_t col)
{
  int a = (int)lround(x0), b = (int)lround(y0), c = (int)lround(x0 + rw - 1),
      d = (int)lround(y0 + rh - 1);
  for (int t = 0; t < 2; t++) {
    for (int x = a; x <= c; x++) {
      put(im, x, b + t, col);
      put(im, x, d - t, col);
    }
    for (int y = b; y <= d; y++) {
      put(im, a + t, y, col);
      put(im, c - t, y, col);
    }
  }
}

int bf_draw_cmc_pair(bf_image *out, const bf_feature *a, const bf_feature *b,
                     const bf_cmc_result *r)
{
  int gap = 10, w = a->nx + gap + b->nx, h = a->ny > b->ny ? a->ny : b->ny;
  int rc = image_new(out, w, h);
  if (rc)
    return rc;
  float *rot = bf_malloc((size_t)b->nx * b->ny * sizeof *rot);
  if (!rot) {
    bf_image_clear(out);
    return bf_error_set(BF_ENOMEM, "out of memory drawing a %d x %d surface", b->nx, b->ny);
  }
  bf_draw_heights(out->px, w, a->z, a->nx, a->ny);
  double th = r->theta * M_PI / 180, c = cos(th), s = sin(th);
  double bcx = 0.5 * (b->nx - 1), bcy = 0.5 * (b->ny - 1);
  for (int y = 0; y < b->ny; y++)
    for (int x = 0; x < b->nx; x++) {
      double u = x - bcx, v = y - bcy;
      int xs = (int)lround(c * u + s * v + bcx), ys = (int)lround(-s * u + c * v + bcy);
      rot[(size_t)y * b->nx + x] = (xs >= 0 && ys >= 0 && xs < b->nx && ys < b->ny)
                                     ? b->z[(size_t)ys * b->nx + xs] : NAN;
    }
  bf_draw_heights(out->px + a->nx + gap, w, rot, b->nx, b->ny);
  double offx = bcx - 0.5 * (a->nx - 1), offy = bcy - 0.5 * (a->ny - 1);
  for (int i = 0; i < r->ncell; i++) {
    const bf_cmc_cell *cl = &r->cells[i];
    if (cl->direction != 0 || !(cl->cmc_original || cl->cmc_high))
      continue;
    double x0 = cl->x0 / a->dx, y0 = cl->y0 / a->dx, cw = cl->w / a->dx, ch = cl->h / a->dx;
    frame(out, x0, y0, cw, ch, 0x00b000);
    frame(out, a->nx + gap + x0 + offx + cl->dx / a->dx, y0 + offy + cl->dy / a->dx, cw, ch,
          0x00b000);
  }
  bf_free(rot);
  return 0;
}

static void line(bf_image *c, int x0, int y0, int x1, int y1, uint32_t col)
{
  int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    put(c, x0, y0, col);
    if (x0 == x1 && y0 == y1)
      break;
    int e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

/* Plots n values into the band [py, py + ph) with a shared vertical range [lo, hi]. */
static void plot(bf_image *c, int py, int ph, const float *v, int n, double lo, double hi,
                 uint32_t col)
{
  int px = -1, pyv = 0;
  for (int i = 0; i < n; i++) {
    if (!isfinite(v[i])) {
      px = -1;
      continue;
    }
    int x = n > 1 ? (int)((double)i * (c->w - 1) / (n - 1)) : 0;
    int y = py + ph - 1 - (int)((v[i] - lo) / (hi - lo) * (ph - 1));
    if (px >= 0)
      line(c, px, pyv, x, y, col);
    else
      put(c, x, y, col);
    px = x;
    pyv = y;
  }
}

static void range(const float *v, int n, double *lo, double *hi)
{
  for (int i = 0; i < n; i++)
    if (isfinite(v[i])) {
      if (v[i] < *lo)
        *lo = v[i];
      if (v[i] > *hi)
        *hi = v[i];
    }
}

int bf_draw_bullet_pair(bf_image *out, const bf_bullet_result *r, bf_feature *const *fa_all,
                        bf_feature *const *fb_all)
{
  int pairs[MAX_PAIRS][2], np = 0, rc = 0;
  memset(out, 0, sizeof *out);
  for (int i = 0; i < r->na; i++)
    for (int j = 0; j < r->nb; j++)
      if (bf_bullet_on_phase(r, i, j) && r->lands[i * r->nb + j].scored && np < MAX_PAIRS) {
        pairs[np][0] = i;
        pairs[np][1] = j;
        np++;
      }
  if (!np)
    return bf_error_set(BF_ENOTFOUND, "no scored land pair on the best phase to draw");
  int ph = 140;
  if ((rc = image_new(out, 1200, ph * np)))
    return rc;
  for (int k = 0; k < np && !rc; k++) {
    float *sa = NULL, *sb = NULL;
    int n = 0;
    const bf_feature *fa = fa_all[pairs[k][0]], *fb = fb_all[pairs[k][1]];
    if ((rc = bf_land_aligned(&sa, &sb, &n, fa, fb, &r->lands[pairs[k][0] * r->nb + pairs[k][1]])))
      break;
    double lo = 1e30, hi = -1e30;
    range(sa, n, &lo, &hi);
    range(sb, n, &lo, &hi);
    if (!(hi > lo)) {
      lo = -1;
      hi = 1;
    }
    for (int x = 0; x < out->w; x++)
      put(out, x, k * ph, 0x808080);
    plot(out, k * ph + 4, ph - 8, sa, n, lo, hi, 0x1f4fd0);
    plot(out, k * ph + 4, ph - 8, sb, n, lo, hi, 0xd02f1f);
    free(sa);
    free(sb);
  }
  if (rc)
    bf_image_clear(out);
  return rc;
}

int bf_draw_land_matrix(bf_image *out, const bf_bullet_result *r)
{
  memset(out, 0, sizeof *out);
  if (r->na <= 0 || r->nb <= 0 || !r->lands)
    return bf_error_set(BF_ENOTFOUND, "no land-score matrix to draw");
  int cell = 48, pad = 4, rc = image_new(out, pad * 2 + r->nb * cell, pad * 2 + r->na * cell);
  if (rc)
    return rc;
  for (int i = 0; i < r->na; i++)
    for (int j = 0; j < r->nb; j++) {
      const bf_land_result *l = &r->lands[i * r->nb + j];
      int x0 = pad + j * cell, y0 = pad + i * cell;
      double t = l->score < 0 ? 0 : l->score > 1 ? 1 : l->score;
      /* white to dark green */
      uint32_t col = (uint32_t)(255 - 255 * t) << 16 | (uint32_t)(255 - 155 * t) << 8 |
                     (uint32_t)(255 - 255 * t);
      for (int y = 1; y < cell - 1; y++)
        for (int x = 1; x < cell - 1; x++)
          put(out, x0 + x, y0 + y,
              l->scored ? col : ((x + y) % 8 < 2 ? 0xa0a0a0 : 0xeeeeee));
      frame(out, x0, y0, cell, cell, 0xc0c0c0);
      if (bf_bullet_on_phase(r, i, j))
        frame(out, x0, y0, cell, cell, 0xd02f1f);
    }
  return 0;
}

int bf_draw_land_steps(bf_image *out, const bf_bullet_trace *t, const bf_feature *f)
{
  int rc = image_new(out, 1200, 400);
  if (rc)
    return rc;
  double lo = 1e30, hi = -1e30;
  range(t->crosscut, t->n, &lo, &hi);
  if (!(hi > lo)) {
    lo = -1;
    hi = 1;
  }
  plot(out, 4, 192, t->crosscut, t->n, lo, hi, 0x202020);
  plot(out, 4, 192, t->curve, t->n, lo, hi, 0x1f9f3f);
  for (int k = 0; k < 2; k++) {
    int idx = k ? t->right : t->left;
    int x = t->n > 1 ? (int)((double)idx * (out->w - 1) / (t->n - 1)) : 0;
    line(out, x, 0, x, 199, 0xd02f1f);
  }
  for (int x = 0; x < out->w; x++)
    put(out, x, 200, 0x808080);
  lo = 1e30;
  hi = -1e30;
  range(f->z, f->nx, &lo, &hi);
  if (!(hi > lo)) {
    lo = -1;
    hi = 1;
  }
  plot(out, 204, 192, f->z, f->nx, lo, hi, 0x1f4fd0);
  return 0;
}
