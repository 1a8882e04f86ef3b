/* Synthetic scans: determinism, realism of the statistics, mates that match once the known
 * placement is undone, files that read back, and the bfm synth command's key.csv. */
#include "bf_test.h"
#include "bf_error.h"
#include "bf_synth.h"
#include "bf_x3p.h"

#include <math.h>
#include <stdint.h>
#include <sys/wait.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static int same_surface(const bf_surface *a, const bf_surface *b)
{
  if (a->nx != b->nx || a->ny != b->ny || a->dx != b->dx || a->dy != b->dy)
    return 0;
  size_t n = (size_t)a->nx * a->ny;
  for (size_t i = 0; i < n; i++) {
    uint32_t x, y;
    memcpy(&x, &a->z[i], 4);
    memcpy(&y, &b->z[i], 4);
    if (x != y)
      return 0;
  }
  return 1;
}

/* Written as float metres and read back: equal to float rounding (1 part in 10^6). */
static int close_surface(const bf_surface *a, const bf_surface *b)
{
  if (a->nx != b->nx || a->ny != b->ny || fabs(a->dx - b->dx) > 1e-9 * a->dx)
    return 0;
  size_t n = (size_t)a->nx * a->ny;
  for (size_t i = 0; i < n; i++)
    if (isnan(a->z[i]) != isnan(b->z[i]) ||
        (!isnan(a->z[i]) && fabs(a->z[i] - b->z[i]) > 1e-6 * (fabs(a->z[i]) + 1e-3)))
      return 0;
  return 1;
}

static float bilin_valid(const bf_surface *s, double x, double y)
{
  int ix = (int)floor(x), iy = (int)floor(y);
  if (ix < 0 || iy < 0 || ix + 1 >= s->nx || iy + 1 >= s->ny)
    return NAN;
  double fx = x - ix, fy = y - iy;
  const float *p = s->z + (size_t)iy * s->nx + ix;
  return (float)((1 - fy) * ((1 - fx) * p[0] + fx * p[1]) + fy * ((1 - fx) * p[s->nx] + fx * p[s->nx + 1]));
}

/* Pearson correlation of a and b after mapping b onto a with the true placements:
 * firearm point p = R(rot) u + shift for both scans (u from the scan centre, µm). */
static double undo_corr(const bf_surface *a, const bf_synth_truth *ta, const bf_surface *b, const bf_synth_truth *tb)
{
  double ra = ta->rotation_deg * M_PI / 180, rb = tb->rotation_deg * M_PI / 180;
  double ca = (a->nx - 1) / 2.0, cb = (b->nx - 1) / 2.0, dx = a->dx;
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  long n = 0;
  for (int y = 0; y < a->ny; y++)
    for (int x = 0; x < a->nx; x++) {
      float za = a->z[(size_t)y * a->nx + x];
      if (isnan(za))
        continue;
      double u = (x - ca) * dx, v = (y - ca) * dx;
      double px = cos(ra) * u - sin(ra) * v + ta->shift_x, py = sin(ra) * u + cos(ra) * v + ta->shift_y;
      double qx = px - tb->shift_x, qy = py - tb->shift_y;
      double ub = cos(rb) * qx + sin(rb) * qy, vb = -sin(rb) * qx + cos(rb) * qy;
      float zb = bilin_valid(b, ub / dx + cb, vb / dx + cb);
      if (isnan(zb))
        continue;
      sa += za;
      sb += zb;
      saa += (double)za * za;
      sbb += (double)zb * zb;
      sab += (double)za * zb;
      n++;
    }
  if (n < 1000)
    return NAN;
  double va = saa / n - (sa / n) * (sa / n), vb = sbb / n - (sb / n) * (sb / n);
  return (sab / n - (sa / n) * (sb / n)) / sqrt(va * vb);
}

/* A land's striation signature: mean along the striae (Y), minus a 100 µm moving mean. */
static double *signature(const bf_surface *s)
{
  double *m = calloc((size_t)s->nx, sizeof *m), *sig = calloc((size_t)s->nx, sizeof *sig);
  for (int x = 0; x < s->nx; x++) {
    double t = 0;
    int c = 0;
    for (int y = 0; y < s->ny; y++) {
      float z = s->z[(size_t)y * s->nx + x];
      if (!isnan(z)) {
        t += z;
        c++;
      }
    }
    m[x] = c ? t / c : NAN;
  }
  int hw = (int)(50 / s->dx);
  for (int x = 0; x < s->nx; x++) {
    double t = 0;
    int c = 0;
    for (int k = x - hw; k <= x + hw; k++)
      if (k >= 0 && k < s->nx && !isnan(m[k])) {
        t += m[k];
        c++;
      }
    sig[x] = isnan(m[x]) || !c ? NAN : m[x] - t / c;
  }
  free(m);
  return sig;
}

/* Correlation of two lands' signatures over the LEA middle, aligned by the true LEA offsets. */
static double land_corr(const bf_surface *a, const bf_synth_truth *ta, const bf_surface *b,
                        const bf_synth_truth *tb, double half)
{
  double *sa = signature(a), *sb = signature(b);
  double s1 = 0, s2 = 0, s11 = 0, s22 = 0, s12 = 0;
  long n = 0;
  for (double xl = -half; xl <= half; xl += a->dx) {
    int ia = (int)lround((xl + ta->shift_x) / a->dx + (a->nx - 1) / 2.0);
    int ib = (int)lround((xl + tb->shift_x) / b->dx + (b->nx - 1) / 2.0);
    if (ia < 0 || ib < 0 || ia >= a->nx || ib >= b->nx || isnan(sa[ia]) || isnan(sb[ib]))
      continue;
    s1 += sa[ia];
    s2 += sb[ib];
    s11 += sa[ia] * sa[ia];
    s22 += sb[ib] * sb[ib];
    s12 += sa[ia] * sb[ib];
    n++;
  }
  free(sa);
  free(sb);
  double v1 = s11 / n - (s1 / n) * (s1 / n), v2 = s22 / n - (s2 / n) * (s2 / n);
  return (s12 / n - (s1 / n) * (s2 / n)) / sqrt(v1 * v2);
}

static void test_determinism(void)
{
  bf_synth_opts o = BF_SYNTH_OPTS_INIT;
  o.seed = 42;
  bf_synth *g1 = NULL, *g2 = NULL;
  CHECK(bf_synth_new(&g1, &o) == 0);
  CHECK(bf_synth_new(&g2, &o) == 0);
  if (!g1 || !g2)
    goto done;
  bf_surface *a = NULL, *b = NULL, *c = NULL, *d = NULL;
  bf_synth_truth ta, tb;
  /* Same ids through two generators, in a different order: bit-identical. */
  CHECK(bf_synth_cartridge(&c, g2, 3, 0, NULL) == 0);
  CHECK(bf_synth_cartridge(&a, g1, 2, 1, &ta) == 0);
  CHECK(bf_synth_cartridge(&b, g2, 2, 1, &tb) == 0);
  CHECK(a && b && same_surface(a, b));
  CHECK(ta.rotation_deg == tb.rotation_deg && ta.shift_x == tb.shift_x && ta.shift_y == tb.shift_y);
  CHECK(c && a && !same_surface(a, c));
  bf_surface_free(b);
  b = NULL;
  /* Another seed: another surface. */
  o.seed = 43;
  CHECK(bf_synth_cartridge1(&d, &o, 2, 1, NULL) == 0);
  CHECK(d && !same_surface(a, d));
  bf_surface_free(a);
  bf_surface_free(c);
  bf_surface_free(d);
  a = c = d = NULL;
  CHECK(bf_synth_land(&a, g1, 1, 2, 3, &ta) == 0);
  CHECK(bf_synth_land(&b, g2, 1, 2, 3, &tb) == 0);
  CHECK(a && b && same_surface(a, b) && ta.barrel_land == tb.barrel_land);
  bf_surface_free(a);
  bf_surface_free(b);

  /* On many threads at once: the same as one by one. */
  enum { N = 6 };
  bf_surface *par[N] = {0};
  int rcs[N];
#pragma omp parallel for
  for (int i = 0; i < N; i++)
    rcs[i] = i % 2 ? bf_synth_land(&par[i], g1, i, 0, 1, NULL) : bf_synth_cartridge(&par[i], g1, i, 1, NULL);
  for (int i = 0; i < N; i++) {
    bf_surface *s = NULL;
    CHECK(rcs[i] == 0);
    CHECK((i % 2 ? bf_synth_land(&s, g2, i, 0, 1, NULL) : bf_synth_cartridge(&s, g2, i, 1, NULL)) == 0);
    CHECK(par[i] && s && same_surface(par[i], s));
    bf_surface_free(s);
    bf_surface_free(par[i]);
  }
done:
  bf_synth_free(g1);
  bf_synth_free(g2);
}

static void test_cartridge(void)
{
  bf_synth_opts o = BF_SYNTH_OPTS_INIT;
  bf_synth *g = NULL;
  CHECK(bf_synth_new(&g, &o) == 0);
  if (!g)
    return;
  enum { F = 3, M = 2 };
  bf_surface *s[F][M] = {{0}};
  bf_synth_truth t[F][M];
  for (int f = 0; f < F; f++)
    for (int m = 0; m < M; m++) {
      CHECK(bf_synth_cartridge(&s[f][m], g, f, m, &t[f][m]) == 0);
      if (!s[f][m])
        goto done;
      bf_surface_stats st;
      bf_surface_stats_get(&st, s[f][m]);
      /* The Fadul processed set: 537..561 px at 6.25 µm, 27-31 % valid, sd 1.3-1.7 µm. */
      CHECKF(s[f][m]->nx >= 525 && s[f][m]->nx <= 570 && s[f][m]->nx == s[f][m]->ny, "size %d", s[f][m]->nx);
      CHECK(s[f][m]->dx == 6.25);
      CHECKF(st.missing_fraction > 0.6 && st.missing_fraction < 0.8, "missing %.3f", st.missing_fraction);
      CHECKF(st.zsd > 0.9 && st.zsd < 2.3, "sd %.3f", st.zsd);
      CHECKF(fabs(st.zmean) < 0.01, "mean %.4f", st.zmean);
      CHECK(fabs(t[f][m].rotation_deg) <= 180 && fabs(t[f][m].shift_x) <= 100);
    }
  /* Mates correlate once the known rotation and shift are undone; non-mates do not. */
  double km_min = 1, knm_max = -1;
  for (int f = 0; f < F; f++) {
    double r = undo_corr(s[f][0], &t[f][0], s[f][1], &t[f][1]);
    CHECKF(r > 0.3, "firearm %d mates correlate %.3f", f, r);
    if (r < km_min)
      km_min = r;
    for (int h = 0; h < F; h++)
      if (h != f) {
        double q = undo_corr(s[f][0], &t[f][0], s[h][1], &t[h][1]);
        if (fabs(q) > knm_max)
          knm_max = fabs(q);
      }
  }
  printf("cartridge: mates after undoing placement r >= %.3f, non-mates |r| <= %.3f\n", km_min, knm_max);
  CHECK(km_min > knm_max + 0.1);

  /* Raw scans carry the form: primer surround, crater, tilt; heights around 100 µm. */
  o.processed = 0;
  bf_surface *raw = NULL;
  CHECK(bf_synth_cartridge1(&raw, &o, 0, 0, NULL) == 0);
  if (raw) {
    bf_surface_stats st;
    bf_surface_stats_get(&st, raw);
    CHECKF(raw->nx > 590 && raw->nx < 640, "raw size %d", raw->nx);
    CHECKF(st.missing_fraction > 0.05 && st.missing_fraction < 0.5, "raw missing %.3f", st.missing_fraction);
    CHECKF(st.zmax - st.zmin > 40 && st.zmean > 40, "raw range %.1f..%.1f", st.zmin, st.zmax);
    CHECK(!(raw->flags & BF_SURF_PROCESSED));
  }
  bf_surface_free(raw);
done:
  for (int f = 0; f < F; f++)
    for (int m = 0; m < M; m++)
      bf_surface_free(s[f][m]);
  bf_synth_free(g);
}

static void test_lands(void)
{
  bf_synth_opts o = BF_SYNTH_OPTS_INIT;
  o.damage = 0; /* a damaged stretch would blur the mate statistics below */
  bf_synth *g = NULL;
  CHECK(bf_synth_new(&g, &o) == 0);
  if (!g)
    return;
  bf_surface *a[6] = {0}, *b[6] = {0};
  bf_synth_truth ta[6], tb[6];
  int ok = 1;
  for (int l = 0; l < 6; l++) {
    ok &= bf_synth_land(&a[l], g, 0, 0, l + 1, &ta[l]) == 0;
    ok &= bf_synth_land(&b[l], g, 0, 1, l + 1, &tb[l]) == 0;
  }
  CHECK(ok);
  if (!ok)
    goto done;
  for (int l = 0; l < 6; l++) {
    bf_surface_stats st;
    bf_surface_stats_get(&st, a[l]);
    /* Hamby LEA scans: 1500-1610 across the striae, 420-500 along, 2-8 % missing. */
    CHECKF(a[l]->nx >= 1450 && a[l]->nx <= 1650 && a[l]->ny >= 400 && a[l]->ny <= 540, "%d x %d", a[l]->nx,
           a[l]->ny);
    CHECKF(st.missing_fraction > 0.01 && st.missing_fraction < 0.12, "missing %.3f", st.missing_fraction);
    CHECKF(st.zmax - st.zmin > 60 && st.zmax - st.zmin < 300, "range %.1f", st.zmax - st.zmin);
    CHECK(ta[l].barrel_land >= 1 && ta[l].barrel_land <= 6);
  }
  /* Each bullet's lands are the barrel's six, each once. */
  int seen = 0;
  for (int l = 0; l < 6; l++)
    seen |= 1 << ta[l].barrel_land;
  CHECK(seen == 0x7e);
  double km_min = 1, knm_max = -1;
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 6; j++) {
      double r = land_corr(a[i], &ta[i], b[j], &tb[j], o.land_width / 2 - 150);
      if (ta[i].barrel_land == tb[j].barrel_land) {
        CHECKF(r > 0.5, "same land %d: r %.3f", ta[i].barrel_land, r);
        km_min = r < km_min ? r : km_min;
      } else
        knm_max = fabs(r) > knm_max ? fabs(r) : knm_max;
    }
  printf("lands: same barrel land r >= %.3f, different |r| <= %.3f\n", km_min, knm_max);
  CHECK(km_min > knm_max + 0.2);

  /* Striae along X: the transpose. */
  o.striae_along_x = 1;
  bf_surface *tx = NULL;
  CHECK(bf_synth_land1(&tx, &o, 0, 0, 1, NULL) == 0);
  CHECK(tx && tx->nx == a[0]->ny && tx->ny == a[0]->nx);
  if (tx && tx->nx == a[0]->ny) {
    int same = 1;
    for (int y = 0; y < tx->ny && same; y += 7)
      for (int x = 0; x < tx->nx && same; x += 5) {
        float p = tx->z[(size_t)y * tx->nx + x], q = a[0]->z[(size_t)x * a[0]->nx + y];
        same = (isnan(p) && isnan(q)) || p == q;
      }
    CHECK(same);
  }
  bf_surface_free(tx);
done:
  for (int l = 0; l < 6; l++) {
    bf_surface_free(a[l]);
    bf_surface_free(b[l]);
  }
  bf_synth_free(g);
}

static void test_bad_input(void)
{
  bf_synth_opts o = BF_SYNTH_OPTS_INIT;
  bf_synth *g = NULL;
  o.lands = 0;
  CHECK(bf_synth_new(&g, &o) == BF_EINVAL && !g);
  CHECK(strstr(bf_error_last(), "lands") != NULL);
  o = (bf_synth_opts)BF_SYNTH_OPTS_INIT;
  o.cart_spacing = -1;
  CHECK(bf_synth_new(&g, &o) == BF_EINVAL && !g);
  o = (bf_synth_opts)BF_SYNTH_OPTS_INIT;
  o.transfer = 1.5;
  CHECK(bf_synth_new(&g, &o) == BF_EINVAL && !g);
  o = (bf_synth_opts)BF_SYNTH_OPTS_INIT;
  CHECK(bf_synth_new(&g, &o) == 0);
  bf_surface *s = (bf_surface *)&o; /* must be reset to NULL on failure */
  CHECK(bf_synth_land(&s, g, 0, 0, 7, NULL) == BF_EINVAL && !s);
  CHECK(bf_synth_land(&s, g, 0, 0, 0, NULL) == BF_EINVAL && !s);
  CHECK(bf_synth_cartridge(&s, g, -1, 0, NULL) == BF_EINVAL && !s);
  bf_synth_free(g);
  bf_synth_free(NULL);
}

static void test_files(void)
{
  const char *dir = bf_t_tmpdir("synth_files");
  char path[4200];
  bf_synth_opts o = BF_SYNTH_OPTS_INIT;
  bf_surface *a = NULL, *b = NULL;
  CHECK(bf_synth_cartridge1(&a, &o, 0, 0, NULL) == 0);
  snprintf(path, sizeof path, "%s/c.x3p", dir);
  CHECK(a && bf_x3p_write(path, a, 'F') == 0);
  CHECK(bf_x3p_read(&b, path, NULL) == 0);
  CHECK(a && b && close_surface(a, b));
  bf_surface_free(a);
  bf_surface_free(b);
  a = b = NULL;
  CHECK(bf_synth_land1(&a, &o, 0, 0, 1, NULL) == 0);
  snprintf(path, sizeof path, "%s/l.x3p", dir);
  CHECK(a && bf_x3p_write(path, a, 'D') == 0);
  CHECK(bf_x3p_read(&b, path, NULL) == 0);
  CHECK(a && b && same_surface(a, b));
  bf_surface_free(a);
  bf_surface_free(b);
}

static int count_lines(const char *path, const char *needle)
{
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f))
    if (!needle || strstr(line, needle))
      n++;
  fclose(f);
  return n;
}

static void test_command(void)
{
  const char *dir = bf_t_tmpdir("synth_cmd");
  char cmd[8800], path[4400];
  snprintf(cmd, sizeof cmd, "'%s' synth --out '%s/out' --firearms 2 --firings 3 --kind both --lands 3 --seed 7 >/dev/null",
           BF_BFM_EXE, dir);
  CHECK(system(cmd) == 0);
  snprintf(path, sizeof path, "%s/out/key.csv", dir);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  if (f) {
    char line[4096];
    CHECK(fgets(line, sizeof line, f) && !strcmp(line, "scan,kind,study,source,land_group,role,note\n"));
    int rows = 0, known = 0, quest = 0, readable = 0, lands_ok = 0;
    while (fgets(line, sizeof line, f)) {
      rows++;
      char *fld[8] = {0};
      int nf = 0;
      /* land_group may be empty: split by hand */
      for (char *p = line; nf < 7; nf++) {
        fld[nf] = p;
        char *c = strchr(p, ',');
        if (!c)
          break;
        *c = 0;
        p = c + 1;
      }
      if (nf < 6)
        continue;
      known += !strcmp(fld[5], "known");
      quest += !strcmp(fld[5], "questioned");
      snprintf(path, sizeof path, "%s/out/%s", dir, fld[0]);
      bf_surface *s = NULL;
      if (bf_x3p_read(&s, path, NULL) == 0)
        readable++;
      bf_surface_free(s);
      if (!strcmp(fld[1], "bullet_land"))
        lands_ok += !strncmp(fld[3], "synth-barrel-", 13) && !strncmp(fld[4], "synth-b", 7);
      else
        lands_ok += !strcmp(fld[1], "cartridge") && !strncmp(fld[3], "synth-firearm-", 14) && !fld[4][0] &&
                    strstr(fld[6], "rotation") != NULL;
    }
    fclose(f);
    /* 2 firearms x 3 firings: 6 cases + 18 lands; the last firing of each is questioned. */
    CHECKF(rows == 24, "%d rows", rows);
    CHECKF(known == 16 && quest == 8, "%d known, %d questioned", known, quest);
    CHECK(readable == 24);
    CHECK(lands_ok == 24);
  }
  snprintf(path, sizeof path, "%s/out/manifest.csv", dir);
  CHECK(count_lines(path, NULL) == 1 + 6 + 6);
  CHECK(count_lines(path, "evidence,") == 4);
  CHECK(count_lines(path, "land1.x3p;") == 6);
  /* The written heights equal the library's for the same ids. */
  bf_synth_opts o = BF_SYNTH_OPTS_INIT;
  o.seed = 7;
  o.max_rotation = 180; /* bfm synth's default: any orientation */
  bf_surface *a = NULL, *b = NULL;
  snprintf(path, sizeof path, "%s/out/cartridge/F0002-3.x3p", dir);
  CHECK(bf_synth_cartridge1(&a, &o, 1, 2, NULL) == 0 && bf_x3p_read(&b, path, NULL) == 0);
  CHECK(a && b && close_surface(a, b));
  bf_surface_free(a);
  bf_surface_free(b);
  /* Flags take no value: --raw before another option. */
  snprintf(cmd, sizeof cmd, "'%s' synth --out '%s/raw' --raw --firearms 1 --firings 1 --striae-x --kind both --lands 2 >/dev/null",
           BF_BFM_EXE, dir);
  CHECK(system(cmd) == 0);
  snprintf(path, sizeof path, "%s/raw/cartridge/F0001-1.x3p", dir);
  CHECK(bf_x3p_read(&a, path, NULL) == 0 && a && !(a->flags & BF_SURF_PROCESSED) && a->nx > 590);
  bf_surface_free(a);
  a = NULL;
  snprintf(path, sizeof path, "%s/raw/bullet/B0001-1/land2.x3p", dir);
  CHECK(bf_x3p_read(&a, path, NULL) == 0 && a && a->ny > a->nx); /* striae along X */
  bf_surface_free(a);
  a = NULL;
  /* Usage errors exit 2. */
  snprintf(cmd, sizeof cmd, "'%s' synth --firearms 2 2>/dev/null", BF_BFM_EXE);
  CHECK(WEXITSTATUS(system(cmd)) == 2);
  snprintf(cmd, sizeof cmd, "'%s' synth --out '%s/x' --firings zero 2>/dev/null", BF_BFM_EXE, dir);
  CHECK(WEXITSTATUS(system(cmd)) == 2);
}

int main(void)
{
  test_bad_input();
  test_determinism();
  test_cartridge();
  test_lands();
  test_files();
  test_command();
  return bf_t_done();
}
