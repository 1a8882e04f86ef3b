/* bfm show: the two items of a hit side by side, aligned, drawn like the compare pictures.
 * Cartridge cases: query left with its congruent cells, candidate right rotated by the CMC
 * consensus angle, cells where they registered. Bullets: for the best phase, each land pair's
 * aligned signatures as two traces (query dark blue, candidate red), one band per land pair. */
#include "bf_cmc.h"
#include "bf_cv.h"
#include "bf_error.h"
#include "bf_search.h"
#include "bf_store.h"
#include "bf_striae.h"
#include "bfm_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void heights_rgb(uint32_t *rgb, int stride, const float *z, int nx, int ny)
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

static void put(uint32_t *rgb, int w, int h, int x, int y, uint32_t c)
{
  if (x >= 0 && y >= 0 && x < w && y < h)
    rgb[(size_t)y * w + x] = c;
}

static void rect(uint32_t *rgb, int w, int h, double x0, double y0, double rw, double rh, uint32_t c)
{
  int a = (int)lround(x0), b = (int)lround(y0), e = (int)lround(x0 + rw - 1), d = (int)lround(y0 + rh - 1);
  for (int t = 0; t < 2; t++) {
    for (int x = a; x <= e; x++) {
      put(rgb, w, h, x, b + t, c);
      put(rgb, w, h, x, d - t, c);
    }
    for (int y = b; y <= d; y++) {
      put(rgb, w, h, a + t, y, c);
      put(rgb, w, h, e - t, y, c);
    }
  }
}

static int draw_cartridge(const char *path, const bf_feature *a, const bf_feature *b, double *score)
{
  bf_cmc_opts o = BF_CMC_OPTS_INIT;
  bf_cmc_result r;
  memset(&r, 0, sizeof r);
  int rc = bf_cmc_compare(&r, a, b, &o);
  if (rc)
    return rc;
  *score = r.score;
  int gap = 10, w = a->nx + gap + b->nx, h = a->ny > b->ny ? a->ny : b->ny;
  uint32_t *rgb = malloc((size_t)w * h * sizeof *rgb);
  float *rot = malloc((size_t)b->nx * b->ny * sizeof *rot);
  if (!rgb || !rot) {
    rc = bf_error_set(BF_ENOMEM, "out of memory drawing %s", path);
    goto done;
  }
  for (size_t i = 0; i < (size_t)w * h; i++)
    rgb[i] = 0xffffff;
  heights_rgb(rgb, w, a->z, a->nx, a->ny);
  /* candidate rotated by the consensus theta about its centre (nearest neighbour) */
  double th = r.theta * M_PI / 180, c = cos(th), s = sin(th);
  double bcx = 0.5 * (b->nx - 1), bcy = 0.5 * (b->ny - 1);
  for (int y = 0; y < b->ny; y++)
    for (int x = 0; x < b->nx; x++) {
      double u = x - bcx, v = y - bcy;
      int xs = (int)lround(c * u + s * v + bcx), ys = (int)lround(-s * u + c * v + bcy);
      rot[(size_t)y * b->nx + x] =
        (xs >= 0 && ys >= 0 && xs < b->nx && ys < b->ny) ? b->z[(size_t)ys * b->nx + xs] : NAN;
    }
  heights_rgb(rgb + a->nx + gap, w, rot, b->nx, b->ny);
  double offx = bcx - 0.5 * (a->nx - 1), offy = bcy - 0.5 * (a->ny - 1);
  for (int i = 0; i < r.ncell; i++) {
    const bf_cmc_cell *cl = &r.cells[i];
    if (cl->direction != 0 || !(cl->cmc_original || cl->cmc_high))
      continue;
    double x0 = cl->x0 / a->dx, y0 = cl->y0 / a->dx, cw = cl->w / a->dx, ch = cl->h / a->dx;
    rect(rgb, w, h, x0, y0, cw, ch, 0x00b000);
    rect(rgb, w, h, a->nx + gap + x0 + offx + cl->dx / a->dx, y0 + offy + cl->dy / a->dx, cw, ch,
         0x00b000);
  }
  rc = bf_cv_write_rgb(path, rgb, w, h);
done:
  bf_cmc_result_clear(&r);
  free(rgb);
  free(rot);
  return rc;
}

static int draw_bullet(const char *path, bf_feature **a, int na, bf_feature **b, int nb, double *score)
{
  bf_bullet_result br;
  memset(&br, 0, sizeof br);
  int rc = bf_bullet_compare(&br, (const bf_feature *const *)a, na, (const bf_feature *const *)b,
                             nb, NULL);
  if (rc)
    return rc;
  *score = br.score;
  int W = 1200, band = 120, H = band * (na > 0 ? na : 1);
  uint32_t *rgb = malloc((size_t)W * H * sizeof *rgb);
  if (!rgb) {
    rc = bf_error_set(BF_ENOMEM, "out of memory drawing %s", path);
    goto done;
  }
  for (size_t i = 0; i < (size_t)W * H; i++)
    rgb[i] = 0xffffff;
  for (int i = 0; i < na; i++) {
    /* the land of b that meets land i of a at the best phase */
    int j = -1;
    for (int k = 0; k < nb; k++)
      if (br.pos_b[k] == (br.pos_a[i] + br.phase) % (br.n > 0 ? br.n : 1))
        j = k;
    for (int x = 0; x < W; x++)
      put(rgb, W, H, x, i * band, 0xbbbbbb);
    if (j < 0)
      continue;
    const bf_land_result *lr = &br.lands[i * nb + j];
    float *sa = NULL, *sb = NULL;
    int n = 0;
    if (bf_land_aligned(&sa, &sb, &n, a[i], b[j], lr) || n < 2) {
      free(sa);
      free(sb);
      bf_error_clear();
      continue;
    }
    double m = 0;
    for (int k = 0; k < n; k++) {
      if (!isnan(sa[k]) && fabs(sa[k]) > m)
        m = fabs(sa[k]);
      if (!isnan(sb[k]) && fabs(sb[k]) > m)
        m = fabs(sb[k]);
    }
    if (!(m > 0))
      m = 1;
    int mid = i * band + band / 2;
    for (int t = 0; t < 2; t++) { /* polylines: query dark blue, candidate red on top */
      const float *v = t ? sb : sa;
      uint32_t col = t ? 0xd62728 : 0x1f3a93;
      int px = -1, py = 0;
      for (int k = 0; k < n; k++) {
        if (isnan(v[k])) {
          px = -1;
          continue;
        }
        int x = (int)((double)k * (W - 1) / (n - 1)), y = mid - (int)lround(v[k] / m * (band / 2 - 4));
        if (px >= 0) /* vertical run joins consecutive points */
          for (int yy = py < y ? py : y; yy <= (py < y ? y : py); yy++)
            put(rgb, W, H, x, yy, col);
        put(rgb, W, H, x, y, col);
        px = x;
        py = y;
      }
    }
    free(sa);
    free(sb);
  }
  rc = bf_cv_write_rgb(path, rgb, W, H);
done:
  bf_bullet_result_clear(&br);
  free(rgb);
  return rc;
}

int bfm_cmd_show(int argc, char **argv)
{
  const char *store = NULL, *hit = NULL, *png = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--png") && i + 1 < argc)
      png = argv[++i];
    else if (argv[i][0] == '-')
      return bfm_usage_error("show", "unknown option %s", argv[i]);
    else if (!store)
      store = argv[i];
    else if (!hit)
      hit = argv[i];
    else
      return bfm_usage_error("show", "too many arguments");
  }
  if (!store || !hit || !png)
    return bfm_usage_error("show", "usage: bfm show STORE HIT --png FILE");
  char *end;
  long long id = strtoll(hit, &end, 10);
  if (*end || id <= 0)
    return bfm_usage_error("show", "HIT must be a hit id (a positive number), not '%s'", hit);
  int rc = BFM_EXIT_OK;
  bf_store *st = NULL;
  bf_hit *h = NULL;
  size_t nh = 0;
  bf_feature **fa = NULL, **fb = NULL;
  int na = 0, nb = 0;
  if (bf_store_open(&st, store, BF_STORE_READ, NULL) || bf_store_query_hits(st, NULL, &h, &nh)) {
    rc = bfm_fail("show");
    goto done;
  }
  const bf_hit *the = NULL;
  for (size_t i = 0; i < nh; i++)
    if (h[i].id == id)
      the = &h[i];
  if (!the) {
    bf_error_set(BF_ENOTFOUND, "%s: no hit %lld (see `bfm hits %s`)", store, id, store);
    rc = bfm_fail("show");
    goto done;
  }
  const bf_item *it = bf_store_item(st, the->query);
  if (!it || bf_store_get_features(st, bf_kind_name(it->kind), the->query, &fa, &na) ||
      bf_store_get_features(st, bf_kind_name(it->kind), the->candidate, &fb, &nb)) {
    if (!it)
      bf_error_set(BF_ENOTFOUND, "%s: hit %lld refers to missing item %lld", store, id,
                   (long long)the->query);
    rc = bfm_fail("show");
    goto done;
  }
  double score = NAN;
  int r = it->kind == BF_KIND_BULLET ? draw_bullet(png, fa, na, fb, nb, &score)
                                     : draw_cartridge(png, fa[0], fb[0], &score);
  if (r) {
    rc = bfm_fail("show");
    goto done;
  }
  char wq[256], wc[256];
  bfm_item_what(st, the->query, wq, sizeof wq);
  bfm_item_what(st, the->candidate, wc, sizeof wc);
  printf("hit %lld: [%lld] %s vs [%lld] %s, score %.3g (stored %.3g) -> %s\n", id,
         (long long)the->query, wq, (long long)the->candidate, wc, score, the->score, png);
done:
  bf_search_free_features(fa, na);
  bf_search_free_features(fb, nb);
  free(h);
  bf_store_close(st);
  return rc;
}
