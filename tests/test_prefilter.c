/* Prefilter descriptors: invariance to rotation/translation on synthetic surfaces, bad input,
 * and the Fadul known-match ranking on real processed scans. */
#include "bf_error.h"
#include "bf_prefilter.h"
#include "bf_test.h"
#include "bf_x3p.h"

#include <math.h>
#include <stdint.h>

/* A deterministic random-texture "breech face": sum of random cosines, masked to a ring. */
static bf_feature *texture(uint32_t seed, double rot_deg, double shx, double shy)
{
  bf_feature *f = NULL;
  if (bf_feature_new(&f, BF_KIND_CARTRIDGE, 400, 400, 6.25, 6.25))
    return NULL;
  double kx[40], ky[40], ph[40], amp[40];
  uint32_t s = seed * 2654435761u + 12345;
  for (int i = 0; i < 40; i++) {
    s = s * 1664525u + 1013904223u;
    double lam = 70 + 400 * (s >> 8) / 16777216.0;
    s = s * 1664525u + 1013904223u;
    double th = 2 * M_PI * (s >> 8) / 16777216.0;
    s = s * 1664525u + 1013904223u;
    ph[i] = 2 * M_PI * (s >> 8) / 16777216.0;
    amp[i] = 0.5 + (i % 3);
    kx[i] = 2 * M_PI / lam * cos(th);
    ky[i] = 2 * M_PI / lam * sin(th);
  }
  double c = cos(rot_deg * M_PI / 180), sn = sin(rot_deg * M_PI / 180);
  for (int y = 0; y < 400; y++)
    for (int x = 0; x < 400; x++) {
      double px = (x - 200) * 6.25, py = (y - 200) * 6.25;
      double r = sqrt(px * px + py * py);
      if (r > 1200 || r < 300)
        continue;
      /* content rotated by rot and shifted (the sampling window stays the same ring) */
      double ux = c * px + sn * py + shx, uy = -sn * px + c * py + shy;
      double z = 0;
      for (int i = 0; i < 40; i++)
        z += amp[i] * cos(kx[i] * ux + ky[i] * uy + ph[i]);
      f->z[y * 400 + x] = (float)z;
    }
  return f;
}

static double pair(const bf_prefilter *pf, bf_feature *a, bf_feature *b, double *shift)
{
  bf_feature *da = NULL, *db = NULL;
  double s = -9;
  if (!bf_prefilter_describe(pf, &da, &a, 1) && !bf_prefilter_describe(pf, &db, &b, 1))
    s = bf_prefilter_score(pf, BF_KIND_CARTRIDGE, da->z, db->z, shift);
  bf_feature_free(da);
  bf_feature_free(db);
  return s;
}

static void synthetic(const bf_prefilter *pf)
{
  bf_feature *a = texture(1, 0, 0, 0), *ar = texture(1, 37, 0, 0), *at = texture(1, 0, 90, -60);
  bf_feature *b = texture(2, 0, 0, 0);
  CHECK(a && ar && at && b);
  if (a && ar && at && b) {
    double sh = 0;
    double self = pair(pf, a, a, &sh);
    CHECKF(fabs(self - 1) < 1e-3 && sh == 0, "self %g shift %g", self, sh);
    double rot = pair(pf, a, ar, &sh), tr = pair(pf, a, at, NULL), other = pair(pf, a, b, NULL);
    double d = fmod(fabs(sh - 37), 180);
    CHECKF(rot > 0.6 && rot > other + 0.3, "rotated %g other %g", rot, other);
    CHECKF(d < 6 || d > 174, "shift %g for 37 degrees", sh);
    CHECKF(tr > 0.4 && tr > other + 0.3, "translated %g other %g", tr, other);
  }
  bf_feature_free(a);
  bf_feature_free(ar);
  bf_feature_free(at);
  bf_feature_free(b);
}

static void bad_input(const bf_prefilter *pf)
{
  bf_feature *f = NULL, *d = NULL;
  CHECK(bf_feature_new(&f, BF_KIND_CARTRIDGE, 100, 100, 6.25, 6.25) == 0);
  /* all NaN: no surface */
  CHECK(bf_prefilter_describe(pf, &d, &f, 1) == BF_EQUALITY && d == NULL);
  CHECK(strstr(bf_error_last(), "valid") != NULL);
  f->kind = 99;
  CHECK(bf_prefilter_describe(pf, &d, &f, 1) == BF_EINVAL && d == NULL);
  bf_feature_free(f);
  bf_prefilter *p2 = NULL;
  bf_prefilter_opts o = BF_PREFILTER_OPTS_INIT;
  o.nang = 60; /* not a power of two */
  CHECK(bf_prefilter_new(&p2, &o) == BF_EINVAL && p2 == NULL);
  bf_prefilter_free(NULL);
}

/* Bullets: a land signature against itself shifted, against another random one. */
static void bullets(const bf_prefilter *pf)
{
  bf_feature *l[6] = {0}, *m[6] = {0}, *da = NULL, *db = NULL;
  uint32_t s = 7;
  for (int i = 0; i < 6; i++) {
    bf_feature_new(&l[i], BF_KIND_BULLET, 1200, 1, 1.5625, 1.5625);
    bf_feature_new(&m[i], BF_KIND_BULLET, 1100, 1, 1.5625, 1.5625);
    double pw = 1 + i; /* each land its own spectral slope */
    for (int k = 0; k < 1200; k++) {
      s = s * 1664525u + 1013904223u;
      l[i]->z[k] = (float)(sin(k * 0.05 * pw) + ((s >> 8) / 16777216.0 - 0.5));
    }
  }
  /* m = l rotated by two lands and cut shorter */
  for (int i = 0; i < 6; i++)
    for (int k = 0; k < 1100; k++)
      m[i]->z[k] = l[(i + 2) % 6]->z[k + 50];
  CHECK(bf_prefilter_describe(pf, &da, l, 6) == 0);
  CHECK(bf_prefilter_describe(pf, &db, m, 6) == 0);
  if (da && db) {
    double ph = -1, sc = bf_prefilter_score(pf, BF_KIND_BULLET, da->z, db->z, &ph);
    CHECKF(sc > 0.9 && ph == 2, "bullet score %g phase %g", sc, ph);
  }
  bf_feature_free(da);
  bf_feature_free(db);
  for (int i = 0; i < 6; i++) {
    bf_feature_free(l[i]);
    bf_feature_free(m[i]);
  }
}

/* Fadul: 40 processed scans, 10 slides. Every known mate must rank in the top 39 (all), the
 * median mate rank must be small, and KM must score above KNM for most pairs (AUC). */
static void fadul(const bf_prefilter *pf)
{
  const char *data = bf_t_shared("data");
  if (!data)
    return;
  char path[8192];
  snprintf(path, sizeof path, "%s/KEY.csv", data);
  FILE *key = fopen(path, "r");
  CHECK(key != NULL);
  if (!key)
    return;
  char line[1024], names[40][1024], src[40][1024];
  int n = 0;
  while (fgets(line, sizeof line, key) && n < 40) {
    if (!strstr(line, ",fadul,"))
      continue;
    char *c1 = strchr(line, ',');
    *c1 = 0;
    snprintf(names[n], sizeof names[n], "%s", line);
    char *p = strstr(c1 + 1, ",fadul,") + 7, *e = strchr(p, ',');
    *e = 0;
    snprintf(src[n], sizeof src[n], "%s", p);
    n++;
  }
  fclose(key);
  CHECK(n == 40);
  size_t len = bf_prefilter_len(pf, BF_KIND_CARTRIDGE);
  float *d = calloc((size_t)n * len, sizeof(float));
  int ok = 1;
  for (int i = 0; i < n && ok; i++) {
    bf_surface *s = NULL;
    bf_feature *f = NULL, *o = NULL;
    snprintf(path, sizeof path, "%.4000s/%.1000s", data, names[i]);
    ok = bf_x3p_read(&s, path, NULL) == 0 && bf_feature_new(&f, BF_KIND_CARTRIDGE, s->nx, s->ny, s->dx, s->dy) == 0;
    if (ok) {
      memcpy(f->z, s->z, sizeof(float) * s->nx * s->ny);
      ok = bf_prefilter_describe(pf, &o, &f, 1) == 0;
      if (ok)
        memcpy(d + i * len, o->z, sizeof(float) * len);
    }
    if (!ok)
      fprintf(stderr, "%s: %s\n", names[i], bf_error_last());
    bf_surface_free(s);
    bf_feature_free(f);
    bf_feature_free(o);
  }
  CHECK(ok);
  if (ok) {
    double *sc = malloc(sizeof(double) * n * n);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++)
        sc[i * n + j] = bf_prefilter_score(pf, BF_KIND_CARTRIDGE, d + i * len, d + j * len, NULL);
    int worst = 0, nm = 0, ranks[64 * 40] = {0};
    long conc = 0, tot = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        if (i == j || strcmp(src[i], src[j]))
          continue;
        int r = 1;
        for (int k = 0; k < n; k++)
          if (k != i && sc[i * n + k] > sc[i * n + j])
            r++;
        ranks[nm++] = r;
        if (r > worst)
          worst = r;
        for (int a = 0; a < n; a++)
          for (int b = a + 1; b < n; b++)
            if (strcmp(src[a], src[b])) {
              tot++;
              conc += sc[i * n + j] > sc[a * n + b];
            }
      }
    /* median rank */
    for (int a = 0; a < nm; a++)
      for (int b = a + 1; b < nm; b++)
        if (ranks[b] < ranks[a]) {
          int t = ranks[a];
          ranks[a] = ranks[b];
          ranks[b] = t;
        }
    double auc = (double)conc / tot;
    printf("fadul prefilter: %d mate rankings, median rank %d, worst %d of 39, AUC %.3f\n", nm,
           ranks[nm / 2], worst, auc);
    CHECK(nm == 2 * 63);
    CHECKF(ranks[nm / 2] <= 3, "median mate rank %d", ranks[nm / 2]);
    CHECKF(auc > 0.95, "KM/KNM AUC %.3f", auc);
    /* symmetry of the score */
    CHECK(fabs(sc[1] - sc[n]) < 1e-4);
    free(sc);
  }
  free(d);
}

int main(void)
{
  bf_prefilter *pf = NULL;
  CHECK(bf_prefilter_new(&pf, NULL) == 0);
  if (pf) {
    CHECK(bf_prefilter_len(pf, BF_KIND_CARTRIDGE) == 24 * 33 * 2);
    CHECK(strcmp(bf_prefilter_kind_name(BF_KIND_CARTRIDGE), "cartridge-pf") == 0);
    synthetic(pf);
    bad_input(pf);
    bullets(pf);
    fadul(pf);
  }
  bf_prefilter_free(pf);
  return bf_t_done();
}
