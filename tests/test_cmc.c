/* CMC: synthetic rotated/shifted copies, concurrency, prep reuse, real Fadul pair, bad input. */
#include "bf_breechface.h"
#include "bf_cmc.h"
#include "bf_error.h"
#include "bf_fft.h"
#include "bf_synth.h"
#include "bf_x3p.h"
#include "bf_test.h"

#include <math.h>
#include <omp.h>

/* Band-passed noise texture on a big grid (the "firearm"), sampled into ring-shaped features. */
static bf_surface *texture(int n, unsigned seed)
{
  bf_surface *s = NULL;
  if (bf_surface_new(&s, n, n, 6.25, 6.25))
    return NULL;
  for (size_t i = 0; i < (size_t)n * n; i++) {
    seed = seed * 1664525u + 1013904223u;
    s->z[i] = (float)((seed >> 8) / 16777216.0 - 0.5);
  }
  bf_gauss_bandpass(s, 16, 500);
  return s;
}

/* Feature of m x m points: texture seen rotated by theta (deg) and shifted (points), ring mask. */
static bf_feature *view(const bf_surface *t, int m, double theta, double sx, double sy)
{
  bf_feature *f = NULL;
  if (bf_feature_new(&f, BF_KIND_CARTRIDGE, m, m, 6.25, 6.25))
    return NULL;
  double a = theta * M_PI / 180, c = cos(a), s = sin(a), cm = (m - 1) / 2.0, ct = (t->nx - 1) / 2.0;
  for (int y = 0; y < m; y++)
    for (int x = 0; x < m; x++) {
      double u = x - cm, v = y - cm, r = hypot(u, v);
      if (r > 0.48 * m || r < 0.2 * m)
        continue;
      double X = c * u - s * v + ct + sx, Y = s * u + c * v + ct + sy;
      int x0 = (int)floor(X), y0 = (int)floor(Y);
      double tx = X - x0, ty = Y - y0;
      if (x0 < 0 || y0 < 0 || x0 + 1 >= t->nx || y0 + 1 >= t->ny)
        continue;
      const float *z = t->z + (size_t)y0 * t->nx + x0;
      f->z[(size_t)y * m + x] = (float)((1 - ty) * ((1 - tx) * z[0] + tx * z[1]) +
                                        ty * ((1 - tx) * z[t->nx] + tx * z[t->nx + 1]));
    }
  return f;
}

static void test_synthetic(void)
{
  bf_surface *t1 = texture(420, 7), *t2 = texture(420, 99);
  bf_feature *a = view(t1, 300, 0, 0, 0), *b = view(t1, 300, 12, 4, -3), *c = view(t2, 300, 0, 0, 0);
  bf_cmc_result r;
  CHECK(a && b && c);
  CHECK(bf_cmc_compare(&r, a, b, NULL) == 0);
  CHECKF(r.match && r.score >= 20, "same texture: score %g", r.score);
  CHECKF(r.cmc_original[0] >= 20 && r.cmc_original[1] >= 20, "original %d %d", r.cmc_original[0],
         r.cmc_original[1]);
  /* the two directions see opposite rotations */
  CHECKF(fabs(fabs(r.theta) - 12) <= 3, "consensus theta %g", r.theta);
  CHECK(r.high_pass[0] && r.high_pass[1]);
  CHECK(fabs(r.theta_high[0] + r.theta_high[1]) <= 6);
  CHECK(r.ncell > 0 && r.cells != NULL);
  int ncmc = 0;
  for (int i = 0; i < r.ncell; i++)
    ncmc += r.cells[i].cmc_original && r.cells[i].corr >= 0.5;
  CHECK(ncmc == r.cmc_original[0] + r.cmc_original[1]);
  double score_ab = r.score;
  bf_cmc_result_clear(&r);
  CHECK(r.cells == NULL);

  CHECK(bf_cmc_compare(&r, a, c, NULL) == 0);
  CHECKF(!r.match && r.score < 6, "different textures: score %g", r.score);
  bf_cmc_result_clear(&r);

  /* prep reuse gives the same result; concurrent calls give the same result */
  bf_cmc_prep *pa = NULL, *pb = NULL;
  CHECK(bf_cmc_prep_new(&pa, a, NULL) == 0 && bf_cmc_prep_new(&pb, b, NULL) == 0);
  double sc[4] = {0};
  int bad = 0;
#pragma omp parallel for num_threads(2) reduction(+ : bad)
  for (int k = 0; k < 4; k++) {
    bf_cmc_result q;
    if (bf_cmc_compare_prep(&q, pa, pb, NULL))
      bad++;
    else
      sc[k] = q.score;
    bf_cmc_result_clear(&q);
  }
  CHECK(bad == 0);
  for (int k = 0; k < 4; k++)
    CHECKF(sc[k] == score_ab, "concurrent call %d: %g vs %g", k, sc[k], score_ab);
  bf_cmc_prep_free(pa);
  bf_cmc_prep_free(pb);
  bf_cmc_prep_free(NULL);
  bf_cmc_result_clear(NULL);

  bf_feature_free(a);
  bf_feature_free(b);
  bf_feature_free(c);
  bf_surface_free(t1);
  bf_surface_free(t2);
}

/* Full circle: views at any angle are found (seeded by the prefilter, or its fallback), the
 * consensus rotation in (-180, 180]; the +-30° search of before misses them. */
static void test_full_circle(void)
{
  bf_surface *t1 = texture(420, 11), *t2 = texture(420, 5);
  static const double ang[] = {0, 137, -100, 178, -65};
  bf_feature *a = view(t1, 300, 0, 0, 0), *c = view(t2, 300, 77, 0, 0);
  CHECK(a && c);
  for (int k = 1; k < 5; k++) {
    bf_feature *b = view(t1, 300, ang[k], 3, -2);
    bf_cmc_result r;
    CHECK(b && bf_cmc_compare(&r, a, b, NULL) == 0);
    CHECKF(r.match && r.score >= 20, "turned %g: score %g", ang[k], r.score);
    double e = fabs(fmod(fabs(r.theta) - fabs(ang[k]) + 540, 360) - 180);
    CHECKF(fabs(fabs(r.theta) - fabs(ang[k])) <= 3 || fabs(fabs(r.theta) - 180) + fabs(fabs(ang[k]) - 180) <= 3,
           "turned %g: theta %g (off %g)", ang[k], r.theta, e);
    CHECKF(r.theta > -180 && r.theta <= 180 && r.theta_seed > -180 && r.theta_seed <= 180,
           "theta %g seed %g", r.theta, r.theta_seed);
    CHECKF(r.nthetas <= 30, "turned %g: %d rotations", ang[k], r.nthetas);
    for (int i = 0; i < r.ncell; i++)
      CHECK(r.cells[i].theta > -180 && r.cells[i].theta <= 180);
    bf_cmc_result_clear(&r);
    /* the old +-30° range misses it */
    bf_cmc_opts o = BF_CMC_OPTS_INIT;
    o.full_circle = 0;
    CHECK(bf_cmc_compare(&r, a, b, &o) == 0);
    CHECKF(r.score < 6 && isnan(r.theta_seed), "+-30: turned %g scores %g", ang[k], r.score);
    bf_cmc_result_clear(&r);
    bf_feature_free(b);
  }
  /* a different texture stays a non-match after the fallback scan */
  bf_cmc_result r;
  CHECK(bf_cmc_compare(&r, a, c, NULL) == 0);
  CHECKF(!r.match && r.fallback >= 1, "different texture: score %g, fallback %d", r.score, r.fallback);
  bf_cmc_result_clear(&r);
  /* the fallback alone finds a turn when the seed is useless: seed windows of 0° */
  bf_feature *b = view(t1, 300, 99, 0, 0);
  bf_cmc_opts o = BF_CMC_OPTS_INIT;
  o.seed_window = 0;
  o.fallback_step = 3;
  CHECK(b && bf_cmc_compare(&r, a, b, &o) == 0);
  CHECKF(r.match || fabs(fabs(r.theta_seed) - 99) <= 1.5 || fabs(fabs(r.theta_seed) - 81) <= 1.5,
         "fallback: score %g, seed %g, fallback %d", r.score, r.theta_seed, r.fallback);
  bf_cmc_result_clear(&r);
  bf_feature_free(b);
  bf_feature_free(a);
  bf_feature_free(c);
  bf_surface_free(t1);
  bf_surface_free(t2);
}

static int same_result(const bf_cmc_result *r1, const bf_cmc_result *r2)
{
  int same = r1->score == r2->score && r1->cmc_combined == r2->cmc_combined &&
             r1->theta == r2->theta && r1->dx == r2->dx && r1->dy == r2->dy &&
             r1->theta_refined == r2->theta_refined && r1->ncell == r2->ncell;
  for (int i = 0; same && i < r1->ncell; i++)
    same = r1->cells[i].corr == r2->cells[i].corr && r1->cells[i].theta == r2->cells[i].theta &&
           r1->cells[i].dx == r2->cells[i].dx && r1->cells[i].dy == r2->cells[i].dy &&
           r1->cells[i].direction == r2->cells[i].direction &&
           r1->cells[i].cmc_original == r2->cells[i].cmc_original;
  return same;
}

/* A compare registers each (reference, target, rotation) once and reuses it across its stages,
 * each thread in its own scratch: the fallback's window gives exactly the registrations of a
 * fresh compare at its rotation, and one or two threads give the same cells. Odd sizes (301
 * points) take the tail rows of the two-row sampling. */
static void test_reuse(void)
{
  bf_surface *t1 = texture(420, 31), *t2 = texture(420, 32);
  bf_feature *a = view(t1, 301, 0, 0, 0), *b = view(t1, 301, 105, 1, 0), *c = view(t2, 301, 0, 0, 0);
  CHECK(a && b && c);
  bf_cmc_opts o = BF_CMC_OPTS_INIT;
  bf_cmc_result r1, r2;
  /* a non-match: the fallback scan runs */
  for (int k = 0; k < 2; k++) {
    o.threads = 1;
    CHECK(bf_cmc_compare(&r1, a, k ? b : c, &o) == 0);
    o.threads = 2;
    CHECK(bf_cmc_compare(&r2, a, k ? b : c, &o) == 0);
    CHECKF(same_result(&r1, &r2) && r1.nthetas == r2.nthetas && r1.fallback == r2.fallback,
           "pair %d: 1 and 2 threads differ (%g / %g)", k, r1.score, r2.score);
    CHECKF(k || r1.fallback >= 1, "non-match: fallback %d", r1.fallback);
    bf_cmc_result_clear(&r1);
    bf_cmc_result_clear(&r2);
  }
  /* seeds on a 30° grid and windows of 0°: the 105° turn is missed by the seeds (90° or 120°)
   * and found by the fallback, whose window (one rotation) reuses the scan's registration in one
   * direction; a plain compare at that rotation agrees exactly */
  o = (bf_cmc_opts)BF_CMC_OPTS_INIT;
  o.theta_step = 30;
  o.seed_window = 0;
  o.fallback_step = 3;
  CHECK(bf_cmc_compare(&r1, a, b, &o) == 0);
  CHECKF(r1.fallback == 2 && r1.match, "fallback window: score %g, fallback %d", r1.score,
         r1.fallback);
  int found = 0;
  for (int w = -1; w <= 1 && r1.fallback == 2; w++) { /* the unwrapped rotation */
    bf_cmc_opts p = BF_CMC_OPTS_INIT;
    p.full_circle = 0;
    p.theta_min = p.theta_max = r1.theta + 360 * w;
    CHECK(bf_cmc_compare(&r2, a, b, &p) == 0);
    r2.theta = r2.theta > 180 ? r2.theta - 360 : r2.theta <= -180 ? r2.theta + 360 : r2.theta;
    r2.theta_refined = r2.theta_refined > 180 ? r2.theta_refined - 360
                     : r2.theta_refined <= -180 ? r2.theta_refined + 360 : r2.theta_refined;
    for (int i = 0; i < r2.ncell; i++) {
      double *t = &r2.cells[i].theta;
      *t = *t > 180 ? *t - 360 : *t <= -180 ? *t + 360 : *t;
    }
    found += same_result(&r1, &r2);
    bf_cmc_result_clear(&r2);
  }
  CHECKF(found >= 1, "fallback window differs from a plain compare at %g", r1.theta);
  /* the two-stage fallback scan (half the cells first) finds the rotation the one-stage scan
   * finds, for fewer cell registrations */
  o.fallback_keep = 0;
  CHECK(bf_cmc_compare(&r2, a, b, &o) == 0);
  CHECKF(same_result(&r1, &r2) && r2.fallback == 2 && r1.cellregs < r2.cellregs,
         "one-stage fallback: score %g / %g, %d / %d cell registrations", r1.score, r2.score,
         r1.cellregs, r2.cellregs);
  bf_cmc_result_clear(&r2);
  bf_cmc_result_clear(&r1);
  bf_feature_free(a);
  bf_feature_free(b);
  bf_feature_free(c);
  bf_surface_free(t1);
  bf_surface_free(t2);
}

/* One query prep reused across candidates gives exactly the plain compare's results. */
static void test_prepared(void)
{
  bf_surface *t1 = texture(420, 21), *t2 = texture(420, 22);
  bf_feature *q = view(t1, 300, 0, 0, 0);
  bf_feature *cand[3] = {view(t1, 300, 150, 2, 1), view(t2, 300, 0, 0, 0), view(t1, 300, -20, 0, 3)};
  bf_cmc_prep *pq = NULL;
  CHECK(q && cand[0] && cand[1] && cand[2] && bf_cmc_prep_new(&pq, q, NULL) == 0);
  for (int k = 0; k < 3 && pq; k++) {
    bf_cmc_prep *pc = NULL;
    bf_cmc_result r1, r2;
    CHECK(bf_cmc_prep_new(&pc, cand[k], NULL) == 0);
    CHECK(bf_cmc_compare_prep(&r1, pq, pc, NULL) == 0 && bf_cmc_compare(&r2, q, cand[k], NULL) == 0);
    CHECKF(r1.score == r2.score && r1.theta == r2.theta && r1.dx == r2.dx && r1.dy == r2.dy &&
               r1.cmc_combined == r2.cmc_combined && r1.ncell == r2.ncell &&
               r1.theta_refined == r2.theta_refined && r1.nthetas == r2.nthetas,
           "candidate %d: %g/%g theta %g/%g", k, r1.score, r2.score, r1.theta, r2.theta);
    int same = r1.ncell == r2.ncell;
    for (int i = 0; same && i < r1.ncell; i++)
      same = r1.cells[i].corr == r2.cells[i].corr && r1.cells[i].theta == r2.cells[i].theta &&
             r1.cells[i].dx == r2.cells[i].dx && r1.cells[i].cmc_original == r2.cells[i].cmc_original;
    CHECKF(same, "candidate %d: cells differ", k);
    bf_cmc_result_clear(&r1);
    bf_cmc_result_clear(&r2);
    bf_cmc_prep_free(pc);
  }
  /* a prep made for the +-30° search cannot seed a full-circle compare */
  bf_cmc_opts o = BF_CMC_OPTS_INIT;
  o.full_circle = 0;
  bf_cmc_prep *p0 = NULL;
  bf_cmc_result r;
  CHECK(bf_cmc_prep_new(&p0, q, &o) == 0);
  CHECK(bf_cmc_compare_prep(&r, p0, pq, NULL) == BF_EINVAL);
  bf_cmc_prep_free(p0);
  bf_cmc_prep_free(pq);
  bf_feature_free(q);
  for (int k = 0; k < 3; k++)
    bf_feature_free(cand[k]);
  bf_surface_free(t1);
  bf_surface_free(t2);
}

static int load(bf_feature **f, const char *dir, const char *name);

/* Real pairs turned by random angles (bilinear, bf_synth_turn; made here, never stored). */
static void test_real_turned(void)
{
  const char *d = bf_t_shared("data");
  if (!d)
    return;
  static const char *pairs[][2] = {{"Fadul 1-1.x3p", "Fadul 1-2.x3p"}, {"Fadul 5-1.x3p", "Fadul 5-2.x3p"},
                                   {"Fadul 1-1.x3p", "Fadul 2-1.x3p"}};
  static const double turn[] = {-161.3, 73.9, 118.4};
  char dir[4200], p[4400];
  snprintf(dir, sizeof dir, "%s/cartridge/fadul", d);
  for (int k = 0; k < 3; k++) {
    bf_feature *a = NULL, *b = NULL;
    bf_surface *s = NULL, *t = NULL;
    snprintf(p, sizeof p, "%s/%s", dir, pairs[k][1]);
    CHECK(load(&a, dir, pairs[k][0]) == 0);
    CHECK(bf_x3p_read(&s, p, NULL) == 0 && bf_synth_turn(&t, s, turn[k]) == 0);
    CHECK(t && bf_breechface_extract(&b, t, NULL) == 0);
    bf_cmc_result r;
    if (a && b && bf_cmc_compare(&r, a, b, NULL) == 0) {
      if (k < 2)
        CHECKF(r.match && r.score >= 10, "%s vs %s turned %g: score %g", pairs[k][0], pairs[k][1],
               turn[k], r.score);
      else
        CHECKF(!r.match, "%s vs %s turned: score %g", pairs[k][0], pairs[k][1], r.score);
      bf_cmc_result_clear(&r);
    } else
      CHECK(0);
    bf_surface_free(s);
    bf_surface_free(t);
    bf_feature_free(a);
    bf_feature_free(b);
  }
}

static void test_bad(void)
{
  bf_feature *a = NULL, *b = NULL;
  bf_cmc_result r;
  CHECK(bf_feature_new(&a, BF_KIND_CARTRIDGE, 200, 200, 6.25, 6.25) == 0);
  CHECK(bf_feature_new(&b, BF_KIND_CARTRIDGE, 200, 200, 3.125, 3.125) == 0);
  /* spacings differ */
  CHECK(bf_cmc_compare(&r, a, b, NULL) == BF_EINVAL);
  CHECK(strstr(bf_error_last(), "spacing") != NULL);
  bf_feature_free(b);
  /* all missing: compared, nothing to count, no crash */
  CHECK(bf_feature_new(&b, BF_KIND_CARTRIDGE, 200, 200, 6.25, 6.25) == 0);
  CHECK(bf_cmc_compare(&r, a, b, NULL) == 0);
  CHECK(r.score == 0 && !r.match && r.ncells[0] == 0);
  bf_cmc_result_clear(&r);
  bf_feature_free(b);
  /* a bullet signature is not a cartridge feature */
  CHECK(bf_feature_new(&b, BF_KIND_BULLET, 500, 1, 6.25, 6.25) == 0);
  CHECK(bf_cmc_compare(&r, a, b, NULL) == BF_EINVAL);
  bf_feature_free(b);
  /* too small for the grid */
  CHECK(bf_feature_new(&b, BF_KIND_CARTRIDGE, 20, 20, 6.25, 6.25) == 0);
  CHECK(bf_cmc_compare(&r, a, b, NULL) == BF_EQUALITY);
  bf_feature_free(b);
  /* nonsense options */
  bf_cmc_opts o = BF_CMC_OPTS_INIT;
  o.theta_step = 0;
  CHECK(bf_cmc_compare(&r, a, a, &o) == BF_EINVAL);
  bf_feature_free(a);
}

static int load(bf_feature **f, const char *dir, const char *name)
{
  char p[4200];
  bf_surface *s = NULL;
  if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p)
    return BF_ELIMIT;
  int rc = bf_x3p_read(&s, p, NULL);
  if (!rc)
    rc = bf_breechface_extract(f, s, NULL);
  bf_surface_free(s);
  return rc;
}

static void test_real(void)
{
  const char *d = bf_t_shared("data");
  if (!d)
    return;
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/cartridge/fadul", d);
  bf_feature *a = NULL, *b = NULL, *c = NULL;
  CHECK(load(&a, dir, "Fadul 1-1.x3p") == 0);
  CHECK(load(&b, dir, "Fadul 1-2.x3p") == 0);
  CHECK(load(&c, dir, "Fadul 2-1.x3p") == 0);
  bf_cmc_result r;
  if (a && b && bf_cmc_compare(&r, a, b, NULL) == 0) {
    /* cmcR with its defaults: 19 and 18 original-method CMCs, theta -21 deg */
    CHECKF(abs(r.cmc_original[0] - 19) <= 3 && abs(r.cmc_original[1] - 18) <= 3,
           "original CMCs %d %d", r.cmc_original[0], r.cmc_original[1]);
    CHECKF(fabs(r.theta + 21) <= 3, "theta %g", r.theta);
    CHECK(r.match);
    bf_cmc_result_clear(&r);
  } else
    CHECK(0);
  if (a && c && bf_cmc_compare(&r, a, c, NULL) == 0) {
    CHECKF(!r.match, "1-1 vs 2-1 score %g", r.score);
    bf_cmc_result_clear(&r);
  } else
    CHECK(0);
  bf_feature_free(a);
  bf_feature_free(b);
  bf_feature_free(c);
}

static int smooth7(int n)
{
  for (int f = 2; f <= 7; f++)
    while (n % f == 0)
      n /= f;
  return n == 1;
}

/* The correlation FFT sizes: the smallest 7-smooth multiple of 4 not below n. */
static void test_fft_sizes(void)
{
  int bad = 0;
  for (int n = 1; n <= 600; n++) {
    int s = bf_fft_fast_size(n);
    bad += s < n || s % 4 || !smooth7(s);
    for (int m = n; m < s; m++)
      bad += m % 4 == 0 && smooth7(m);
  }
  CHECK(bad == 0);
  CHECK(bf_fft_fast_size(102) == 108); /* Fadul's coarse region (105 is odd: slow r2c) */
  CHECK(bf_fft_fast_size(87) == 96);
  CHECK(bf_fft_good_size(102) == 105);
}

int main(void)
{
  test_fft_sizes();
  test_synthetic();
  test_full_circle();
  test_prepared();
  test_reuse();
  test_bad();
  test_real();
  test_real_turned();
  return bf_t_done();
}
