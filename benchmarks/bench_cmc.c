/* CMC benchmark: cmcR faithfulness on Fadul 1-1 vs 1-2, raw-scan decisions, accuracy on all
 * 780 Fadul pairs (AUC, score histograms and ROC as PNG), speed (pairs/s on 1 and 2 threads,
 * peak RSS), and --blind: every pair of ../shared/blind/cartridge must run without error.
 * Usage: bench_cmc [--pair A.x3p B.x3p] [--blind] [--quick] [--out DIR] [--exact] [--speed N]
 *                  [--turned] [--dump FILE]
 * --speed N: only the speed runs over the first N Fadul pairs.
 * --exact: full-resolution FFT search instead of the default two-level search.
 * --turned: every Fadul and DFSC scan turned by a random angle (bilinear, bf_synth_turn; made
 * here, never stored): accuracy over the full circle, and CPU time per pair against the unturned
 * set compared as before the full circle (full_circle = 0, +-30°); BF_TURNED_FAST=1 skips the
 * unturned scores of all pairs (only the first 60 are compared, for the cost).
 * --dump FILE: the accuracy run also writes every Fadul pair's counts to FILE (one line a pair:
 * names, score, original counts of both directions, High counts, combined count, theta, then the
 * cost: fallback stage reached and cell registrations), so two builds can be compared pair by
 * pair (diff of the first 10 columns, or the awk in benchmarks/RESULTS.md); with --turned, the
 * turned pairs of both sets the same way. BF_FALLBACK_KEEP=N sets bf_cmc_opts.fallback_keep (0: the
 * one-stage fallback scan).
 * Timings on a shared machine are noisy: re-run quietly for figures that matter. */
#include "bf_breechface.h"
#include "bf_cmc.h"
#include "bf_cv.h"
#include "bf_error.h"
#include "bf_fft.h"
#include "bf_synth.h"
#include "bf_x3p.h"

#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static bf_cmc_opts g_opts = BF_CMC_OPTS_INIT; /* --exact sets coarse = 0 */

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* CPU seconds of the whole process: steadier than wall time on a shared, loaded machine. */
static double cpu_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static long peak_rss_kb(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static bf_breechface_opts g_bf = BF_BREECHFACE_OPTS_INIT;

static int load_turned(bf_feature **f, const char *path, double turn)
{
  bf_surface *s = NULL, *t = NULL;
  int rc = bf_x3p_read(&s, path, NULL);
  if (!rc && turn != 0 && !(rc = bf_synth_turn(&t, s, turn))) {
    bf_surface_free(s);
    s = t;
  }
  if (!rc)
    rc = bf_breechface_extract(f, s, &g_bf);
  bf_surface_free(s);
  if (rc)
    fprintf(stderr, "%s: %s\n", path, bf_error_last());
  return rc;
}

static int load(bf_feature **f, const char *path)
{
  return load_turned(f, path, 0);
}

static void print_result(const char *a, const char *b, const bf_cmc_result *r)
{
  printf("%s vs %s: score %g match %d | original %d / %d | high %d / %d (pass %d %d, theta %g %g)"
         " | consensus theta %g dx %.1f dy %.1f um | cells %d / %d | seed %g, %d rotations, "
         "%d cell registrations, fallback %d\n", a, b, r->score, r->match,
         r->cmc_original[0], r->cmc_original[1], r->cmc_high[0], r->cmc_high[1], r->high_pass[0],
         r->high_pass[1], r->theta_high[0], r->theta_high[1], r->theta, r->dx, r->dy,
         r->ncells[0], r->ncells[1], r->theta_seed, r->nthetas, r->cellregs, r->fallback);
}

static int pair(const char *pa, const char *pb, bf_cmc_result *out)
{
  bf_feature *a = NULL, *b = NULL;
  int rc = load(&a, pa);
  if (!rc)
    rc = load(&b, pb);
  if (!rc) {
    /* the first call also plans the FFTs: time the later ones */
    double best = 1e30, bcpu = 1e30;
    for (int k = 0; k < 3 && !rc; k++) {
      if (k)
        bf_cmc_result_clear(out);
      double t0 = now(), c0 = cpu_now();
      rc = bf_cmc_compare(out, a, b, &g_opts);
      if (k && now() - t0 < best)
        best = now() - t0;
      if (k && cpu_now() - c0 < bcpu)
        bcpu = cpu_now() - c0;
    }
    if (rc)
      fprintf(stderr, "compare: %s\n", bf_error_last());
    else
      printf("  (%.3f s wall, %.3f s CPU, best of 2 after planning, %d threads)\n", best, bcpu,
             omp_get_max_threads());
  }
  bf_feature_free(a);
  bf_feature_free(b);
  return rc;
}

/* ---- scan sets ---- */

typedef struct item {
  char path[1024], name[256], source[128];
  bf_feature *f;
  bf_cmc_prep *p;
  int err;
  double turn; /* degrees, --turned */
} item;

static int cmp_name(const void *a, const void *b)
{
  return strcmp(((const item *)a)->name, ((const item *)b)->name);
}

/* All *.x3p of dir; source from KEY.csv (key may be NULL). */
static item *list_dir(const char *dir, const char *key, int *n)
{
  DIR *d = opendir(dir);
  item *v = NULL;
  int m = 0, cap = 0;
  struct dirent *e;
  *n = 0;
  if (!d)
    return NULL;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 5 || strcmp(e->d_name + l - 4, ".x3p"))
      continue;
    if (m == cap) {
      cap = cap ? 2 * cap : 64;
      v = realloc(v, cap * sizeof *v);
    }
    memset(&v[m], 0, sizeof v[m]);
    snprintf(v[m].path, sizeof v[m].path, "%s/%s", dir, e->d_name);
    snprintf(v[m].name, sizeof v[m].name, "%s", e->d_name);
    m++;
  }
  closedir(d);
  qsort(v, m, sizeof *v, cmp_name);
  if (key) {
    FILE *f = fopen(key, "r");
    char line[2048];
    while (f && fgets(line, sizeof line, f)) {
      char *c1 = strchr(line, ','), *c2, *c3, *c4;
      if (!c1 || !(c2 = strchr(c1 + 1, ',')) || !(c3 = strchr(c2 + 1, ',')) || !(c4 = strchr(c3 + 1, ',')))
        continue;
      *c1 = *c4 = 0;
      const char *base = strrchr(line, '/');
      base = base ? base + 1 : line;
      for (int i = 0; i < m; i++)
        if (!strcmp(v[i].name, base) && strstr(line, "cartridge/"))
          snprintf(v[i].source, sizeof v[i].source, "%s", c3 + 1);
    }
    if (f)
      fclose(f);
  }
  *n = m;
  return v;
}

static int prepare(item *v, int n)
{
  int bad = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : bad)
  for (int i = 0; i < n; i++) {
    if (load_turned(&v[i].f, v[i].path, v[i].turn) || bf_cmc_prep_new(&v[i].p, v[i].f, &g_opts)) {
      if (v[i].f)
        fprintf(stderr, "%s: %s\n", v[i].name, bf_error_last());
      v[i].err = 1;
      bad++;
    }
  }
  return bad;
}

static void free_items(item *v, int n)
{
  for (int i = 0; i < n; i++) {
    bf_cmc_prep_free(v[i].p);
    bf_feature_free(v[i].f);
  }
  free(v);
}

/* Compares pairs [0, np) of (ia, ib) with nthreads threads; scores out. Returns errors. */
static double *g_orig_min; /* when set: the combined (High CMC) count per pair */
static FILE *g_dump;        /* --dump: every pair's counts (accuracy run) */
static char (*g_dump_line)[160]; /* per pair, written in pair order after the parallel run */

static int run_pairs(const item *v, const int *ia, const int *ib, int np, double *score,
                     int *flags, int nthreads)
{
  int bad = 0;
  /* one pair per thread: with num_threads(1) the region is inactive and a compare would
   * otherwise parallelise inside */
  bf_cmc_opts o1 = g_opts;
  o1.threads = 1;
#pragma omp parallel for schedule(dynamic) num_threads(nthreads) reduction(+ : bad)
  for (int k = 0; k < np; k++) {
    bf_cmc_result r;
    score[k] = NAN;
    if (v[ia[k]].err || v[ib[k]].err) {
      bad++;
      continue;
    }
    if (bf_cmc_compare_prep(&r, v[ia[k]].p, v[ib[k]].p, &o1)) {
      fprintf(stderr, "%s vs %s: %s\n", v[ia[k]].name, v[ib[k]].name, bf_error_last());
      bad++;
      continue;
    }
    score[k] = r.score;
    if (g_orig_min)
      g_orig_min[k] = r.cmc_combined;
    if (g_dump_line)
      snprintf(g_dump_line[k], sizeof g_dump_line[k], "%g\t%d\t%d\t%d\t%d\t%d\t%.1f\t%d\t%d",
               r.score, r.cmc_original[0], r.cmc_original[1], r.cmc_high[0], r.cmc_high[1],
               r.cmc_combined, r.theta, r.fallback, r.cellregs);
    if (flags)
      flags[k] = r.quality_flags;
    bf_cmc_result_clear(&r);
  }
  return bad;
}

/* ---- plots ---- */

static void px(uint32_t *img, int w, int h, int x, int y, uint32_t c)
{
  if (x >= 0 && y >= 0 && x < w && y < h)
    img[(size_t)y * w + x] = c;
}

static void line(uint32_t *img, int w, int h, double x0, double y0, double x1, double y1, uint32_t c)
{
  int n = (int)(fabs(x1 - x0) + fabs(y1 - y0)) + 1;
  for (int i = 0; i <= n; i++)
    for (int t = -1; t <= 1; t++)
      px(img, w, h, (int)lround(x0 + (x1 - x0) * i / n) + t, (int)lround(y0 + (y1 - y0) * i / n), c);
}

/* Histogram of KM (red) and KNM (blue) scores, one bar pair per integer score, log-ish height. */
static int plot_hist(const char *path, const double *s, const int *km, int n)
{
  int smax = 0;
  for (int i = 0; i < n; i++)
    if (!isnan(s[i]) && s[i] > smax)
      smax = (int)s[i];
  int nb = smax + 1, cnt[2][128] = {{0}}, cmax = 1;
  if (nb > 128)
    nb = 128;
  for (int i = 0; i < n; i++)
    if (!isnan(s[i])) {
      int b = (int)s[i] < nb ? (int)s[i] : nb - 1;
      if (++cnt[km[i]][b] > cmax)
        cmax = cnt[km[i]][b];
    }
  int W = 60 + nb * 12, H = 320;
  uint32_t *img = malloc((size_t)W * H * sizeof *img);
  if (!img)
    return -1;
  for (int i = 0; i < W * H; i++)
    img[i] = 0xffffff;
  line(img, W, H, 40, H - 20, W - 10, H - 20, 0);
  line(img, W, H, 40, 10, 40, H - 20, 0);
  for (int b = 0; b < nb; b++)
    for (int k = 0; k < 2; k++) {
      /* sqrt scale so the 63 matches show beside the 717 non-matches */
      int hgt = (int)((H - 40) * sqrt((double)cnt[k][b] / cmax));
      int x0 = 42 + b * 12 + k * 5;
      for (int y = 0; y < hgt; y++)
        for (int x = 0; x < 5; x++)
          px(img, W, H, x0 + x, H - 21 - y, k ? 0xd02020 : 0x2040d0);
    }
  for (int b = 0; b < nb; b += 5)
    line(img, W, H, 42 + b * 12, H - 20, 42 + b * 12, H - 14, 0);
  int rc = bf_cv_write_rgb(path, img, W, H);
  free(img);
  return rc;
}

/* ROC (true positive vs false positive rate over score thresholds) and its AUC. */
static double roc_auc(const char *path, const double *s, const int *km, int n)
{
  double pos = 0, neg = 0, auc = 0;
  for (int i = 0; i < n; i++)
    if (!isnan(s[i]))
      km[i] ? pos++ : neg++;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (km[i] && !km[j] && !isnan(s[i]) && !isnan(s[j]))
        auc += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
  auc = pos && neg ? auc / (pos * neg) : NAN;
  if (path) {
    int W = 320, H = 320;
    uint32_t *img = malloc((size_t)W * H * sizeof *img);
    if (img) {
      for (int i = 0; i < W * H; i++)
        img[i] = 0xffffff;
      line(img, W, H, 20, H - 20, W - 20, H - 20, 0);
      line(img, W, H, 20, 20, 20, H - 20, 0);
      line(img, W, H, 20, H - 20, W - 20, 20, 0xbbbbbb);
      double px0 = 0, py0 = 0;
      for (int t = 200; t >= -1; t--) {
        double tp = 0, fp = 0;
        for (int i = 0; i < n; i++)
          if (!isnan(s[i]) && s[i] >= t)
            km[i] ? tp++ : fp++;
        double fx = fp / (neg ? neg : 1), fy = tp / (pos ? pos : 1);
        line(img, W, H, 20 + px0 * (W - 40), H - 20 - py0 * (H - 40), 20 + fx * (W - 40),
             H - 20 - fy * (H - 40), 0xd02020);
        px0 = fx;
        py0 = fy;
      }
      if (bf_cv_write_rgb(path, img, W, H))
        fprintf(stderr, "bench_cmc: %s\n", bf_error_last());
      free(img);
    }
  }
  return auc;
}

/* Speed: the first ns of the np pairs on 1 and 2 threads (parallel over pairs), preps made. */
static void speed_runs(const item *v, const int *ia, const int *ib, int ns, int np, double *sc)
{
  if (ns > np)
    ns = np;
  for (int th = 1; th <= 2; th++) {
    double a = now(), c = cpu_now();
    run_pairs(v, ia, ib, ns, sc, NULL, th);
    double e = now() - a, ec = cpu_now() - c;
    printf("speed: %d threads: %d pairs in %.2f s wall = %.2f pairs/s; %.3f CPU s per pair\n",
           th, ns, e, ns / e, ec / ns);
  }
}

/* --speed N: only the speed runs over the first N Fadul pairs (re-runnable on a quiet machine
 * without the minutes of the accuracy run). */
static int speed_only(const char *data, int ns)
{
  char dir[1200], key[1200];
  snprintf(dir, sizeof dir, "%s/cartridge/fadul", data);
  snprintf(key, sizeof key, "%s/KEY.csv", data);
  int n, k = 0;
  item *v = list_dir(dir, key, &n);
  if (!v || n < 2) {
    fprintf(stderr, "no Fadul scans in %s\n", dir);
    free(v);
    return 1;
  }
  int bad = prepare(v, n), np = n * (n - 1) / 2;
  int *ia = malloc(np * sizeof *ia), *ib = malloc(np * sizeof *ib);
  double *sc = malloc(np * sizeof *sc);
  if (ia && ib && sc) {
    for (int i = 0; i < n; i++)
      for (int j = i + 1; j < n; j++, k++) {
        ia[k] = i;
        ib[k] = j;
      }
    /* a first pass plans the FFTs (those the wisdom lacks) and warms the caches */
    run_pairs(v, ia, ib, ns < np ? ns : np, sc, NULL, 1);
    speed_runs(v, ia, ib, ns, np, sc);
  } else
    bad = 1;
  free(ia);
  free(ib);
  free(sc);
  free_items(v, n);
  return bad != 0;
}

static int accuracy(const char *data, const char *outdir, int quick)
{
  char dir[1200], key[1200], path[1400];
  snprintf(dir, sizeof dir, "%s/cartridge/fadul", data);
  snprintf(key, sizeof key, "%s/KEY.csv", data);
  int n, bad = 0;
  item *v = list_dir(dir, key, &n);
  if (!v || n < 2) {
    fprintf(stderr, "no Fadul scans in %s\n", dir);
    free(v);
    return 1;
  }
  if (quick && n > 12)
    n = 12;
  double t0 = now();
  bad += prepare(v, n);
  double t1 = now();
  int np = n * (n - 1) / 2, k = 0;
  int *ia = malloc(np * sizeof *ia), *ib = malloc(np * sizeof *ib), *km = malloc(np * sizeof *km);
  double *sc = malloc(np * sizeof *sc);
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++, k++) {
      ia[k] = i;
      ib[k] = j;
      km[k] = v[i].source[0] && !strcmp(v[i].source, v[j].source);
    }
  double *om = malloc(np * sizeof *om);
  g_orig_min = om;
  if (g_dump)
    g_dump_line = calloc(np, sizeof *g_dump_line);
  bad += run_pairs(v, ia, ib, np, sc, NULL, omp_get_max_threads());
  g_orig_min = NULL;
  if (g_dump && g_dump_line) {
    fprintf(g_dump, "a\tb\tkm\tscore\torig0\torig1\thigh0\thigh1\tcombined\ttheta\tfallback\tcellregs\n");
    for (k = 0; k < np; k++)
      fprintf(g_dump, "%s\t%s\t%d\t%s\n", v[ia[k]].name, v[ib[k]].name, km[k],
              g_dump_line[k][0] ? g_dump_line[k] : "error");
  }
  free(g_dump_line);
  g_dump_line = NULL;
  double t2 = now();
  {
    double lo = 1e30, hi = -1e30;
    for (k = 0; k < np; k++)
      if (!isnan(sc[k])) {
        if (km[k])
          lo = fmin(lo, om[k]);
        else
          hi = fmax(hi, om[k]);
      }
    snprintf(path, sizeof path, "%s/cmc_fadul_roc_combined_high.png", outdir);
    printf("accuracy: cmcR combined High CMC count instead: AUC %.6f, lowest KM %g, "
           "highest KNM %g\n", roc_auc(path, om, km, np), lo, hi);
    snprintf(path, sizeof path, "%s/cmc_fadul_hist_combined_high.png", outdir);
    plot_hist(path, om, km, np);
  }
  free(om);
  int nkm = 0;
  double minkm = 1e30, maxknm = -1e30;
  for (k = 0; k < np; k++) {
    if (isnan(sc[k]))
      continue;
    if (km[k]) {
      nkm++;
      minkm = fmin(minkm, sc[k]);
    } else
      maxknm = fmax(maxknm, sc[k]);
  }
  snprintf(path, sizeof path, "%s/cmc_fadul_roc.png", outdir);
  double auc = roc_auc(path, sc, km, np);
  snprintf(path, sizeof path, "%s/cmc_fadul_hist.png", outdir);
  if (plot_hist(path, sc, km, np))
    fprintf(stderr, "bench_cmc: %s\n", bf_error_last());
  int fp = 0, fn = 0;
  for (k = 0; k < np; k++)
    if (!isnan(sc[k])) {
      int m = sc[k] >= ((bf_cmc_opts)BF_CMC_OPTS_INIT).match_min_cmc;
      fp += m && !km[k];
      fn += !m && km[k];
    }
  for (k = 0; k < np; k++)
    if (!isnan(sc[k]) && (km[k] ? sc[k] < ((bf_cmc_opts)BF_CMC_OPTS_INIT).match_min_cmc
                                : sc[k] >= ((bf_cmc_opts)BF_CMC_OPTS_INIT).match_min_cmc))
      printf("accuracy: %s %s vs %s (%s / %s): score %g\n", km[k] ? "missed KM" : "KNM called",
             v[ia[k]].name, v[ib[k]].name, v[ia[k]].source, v[ib[k]].source, sc[k]);
  printf("accuracy: Fadul %d scans, %d pairs (%d KM), errors %d\n", n, np, nkm, bad);
  printf("accuracy: score = original-method CMCs (smaller direction): AUC %.6f, lowest KM score %g, highest KNM score %g, at threshold %d: "
         "%d false positives, %d false negatives\n", auc, minkm, maxknm,
         ((bf_cmc_opts)BF_CMC_OPTS_INIT).match_min_cmc, fp, fn);
  printf("accuracy: features %.1f s, comparisons %.1f s on %d threads (%.2f pairs/s)\n", t1 - t0,
         t2 - t1, omp_get_max_threads(), np / (t2 - t1));
  printf("accuracy: plots %s/cmc_fadul_hist.png (blue KNM, red KM), %s/cmc_fadul_roc.png\n",
         outdir, outdir);
  speed_runs(v, ia, ib, quick ? 10 : 60, np, sc);
  printf("memory: peak RSS %.1f MB\n", peak_rss_kb() / 1024.0);
  free(ia);
  free(ib);
  free(km);
  free(sc);
  free_items(v, n);
  return bad || !(auc == 1.0);
}

/* Accuracy and cost over one set of scans (folders of data), each turned by a random angle
 * (fixed seed), against the same scans unturned compared within +-30° as before. */
static int turned_set(const char *data, const char *const *dirs, int ndir, int quick, int *worst_km)
{
  char key[1200];
  snprintf(key, sizeof key, "%s/KEY.csv", data);
  item *v = NULL;
  int n = 0, bad = 0;
  for (int d = 0; d < ndir; d++) {
    char dir[1200];
    int m;
    snprintf(dir, sizeof dir, "%s/cartridge/%s", data, dirs[d]);
    item *w = list_dir(dir, key, &m);
    if (!w)
      continue;
    v = realloc(v, (n + m) * sizeof *v);
    memcpy(v + n, w, m * sizeof *v);
    n += m;
    free(w);
  }
  if (quick && n > 12)
    n = 12;
  if (n < 2) {
    fprintf(stderr, "turned: no scans\n");
    free(v);
    return 1;
  }
  unsigned long long st = 20261128;
  for (int i = 0; i < n; i++) { /* the same angles every run */
    st = st * 6364136223846793005ULL + 1442695040888963407ULL;
    v[i].turn = -180 + 360.0 * (double)(st >> 11) / 9007199254740992.0;
  }
  item *u = malloc(n * sizeof *u);
  memcpy(u, v, n * sizeof *u);
  for (int i = 0; i < n; i++)
    u[i].turn = 0;
  bf_cmc_opts keep = g_opts;
  double t0 = now();
  bad += prepare(v, n); /* turned, full circle */
  g_opts.full_circle = 0; /* unturned, as before: +-30° */
  bad += prepare(u, n);
  g_opts = keep;
  printf("turned: %d scans prepared in %.1f s (both sets)\n", n, now() - t0);
  int np = n * (n - 1) / 2, k = 0, nkm = 0;
  int *ia = malloc(np * sizeof *ia), *ib = malloc(np * sizeof *ib), *km = malloc(np * sizeof *km);
  double *sc = malloc(np * sizeof *sc), *su = malloc(np * sizeof *su);
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++, k++) {
      ia[k] = i;
      ib[k] = j;
      km[k] = v[i].source[0] && !strcmp(v[i].source, v[j].source);
      nkm += km[k];
    }
  int nt = omp_get_max_threads(), ns = np < 60 ? np : 60;
  double a = now(), c = cpu_now();
  if (g_dump)
    g_dump_line = calloc(np, sizeof *g_dump_line);
  bad += run_pairs(v, ia, ib, np, sc, NULL, nt);
  double et = now() - a;
  if (g_dump && g_dump_line) /* the turned pairs' counts, as the accuracy run's dump */
    for (k = 0; k < np; k++)
      fprintf(g_dump, "%s\t%s\t%d\t%s\n", v[ia[k]].name, v[ib[k]].name, km[k],
              g_dump_line[k][0] ? g_dump_line[k] : "error");
  free(g_dump_line);
  g_dump_line = NULL;
  /* cost: the first ns pairs on one thread, unturned at +-30° (as before) and turned */
  g_opts.full_circle = 0;
  c = cpu_now();
  bad += run_pairs(u, ia, ib, ns, su, NULL, 1);
  double cu = cpu_now() - c;
  g_opts = keep;
  c = cpu_now();
  run_pairs(v, ia, ib, ns, sc, NULL, 1);
  double ct = cpu_now() - c;
  if (!getenv("BF_TURNED_FAST")) { /* the unturned scores of every pair (the baseline) */
    g_opts.full_circle = 0;
    bad += run_pairs(u, ia, ib, np, su, NULL, nt);
    g_opts = keep;
  } else
    for (k = ns; k < np; k++)
      su[k] = NAN;
  double lo = 1e30, hi = -1e30, lou = 1e30, hiu = -1e30;
  for (k = 0; k < np; k++) {
    if (km[k]) {
      lo = fmin(lo, sc[k]);
      if (!isnan(su[k]))
        lou = fmin(lou, su[k]);
    } else {
      hi = fmax(hi, sc[k]);
      if (!isnan(su[k]))
        hiu = fmax(hiu, su[k]);
    }
    if (km[k] && sc[k] < 6)
      printf("turned: missed KM %s (%.1f°) vs %s (%.1f°): %g (unturned %g)\n", v[ia[k]].name,
             v[ia[k]].turn, v[ib[k]].name, v[ib[k]].turn, sc[k], su[k]);
  }
  double auc = roc_auc(NULL, sc, km, np), aucu = getenv("BF_TURNED_FAST") ? NAN : roc_auc(NULL, su, km, np);
  printf("turned: %s%s: %d scans, %d pairs (%d KM), errors %d\n", dirs[0], ndir > 1 ? "+" : "",
         n, np, nkm, bad);
  printf("turned: full circle, turned: AUC %.6f, lowest KM %g, highest KNM %g\n", auc, lo, hi);
  printf("turned: +-30°, unturned (before): AUC %.6f, lowest KM %g, highest KNM %g\n", aucu, lou,
         hiu);
  printf("turned: CPU s per pair (first %d pairs, 1 thread): turned full circle %.3f, unturned "
         "+-30° %.3f: ratio %.2f; all %d turned pairs %.1f s wall on %d threads\n", ns, ct / ns,
         cu / ns, ct / cu, np, et, nt);
  *worst_km = (int)lo;
  free(ia);
  free(ib);
  free(km);
  free(sc);
  free(su);
  free_items(u, n);
  free_items(v, n);
  return bad || !(auc == 1.0);
}

static int turned(const char *data, int quick)
{
  static const char *const fadul[] = {"fadul"}, *const dfsc[] = {"dfsc-pair", "fadul-raw"};
  int w1 = 0, w2 = 0;
  int r = turned_set(data, fadul, 1, quick, &w1);
  r |= turned_set(data, dfsc, 2, quick, &w2);
  return r || w1 < 6;
}

static int blind(const char *root, int quick)
{
  char dir[1200];
  snprintf(dir, sizeof dir, "%s/cartridge", root);
  int n, bad;
  item *v = list_dir(dir, NULL, &n);
  if (!v || n < 2) {
    fprintf(stderr, "no scans in %s\n", dir);
    free(v);
    return 1;
  }
  if (quick && n > 10)
    n = 10;
  double t0 = now();
  bad = prepare(v, n);
  int nflag = 0;
  for (int i = 0; i < n; i++)
    nflag += !v[i].err && v[i].f->quality_flags;
  double t1 = now();
  int np = n * (n - 1) / 2, k = 0;
  int *ia = malloc(np * sizeof *ia), *ib = malloc(np * sizeof *ib), *fl = calloc(np, sizeof *fl);
  double *sc = malloc(np * sizeof *sc);
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++, k++) {
      ia[k] = i;
      ib[k] = j;
    }
  int pbad = run_pairs(v, ia, ib, np, sc, fl, omp_get_max_threads());
  double t2 = now();
  int nm = 0;
  for (k = 0; k < np; k++)
    nm += !isnan(sc[k]) && sc[k] >= ((bf_cmc_opts)BF_CMC_OPTS_INIT).match_min_cmc;
  printf("blind: %d scans (%d failed feature extraction, %d flagged), %d pairs, %d comparison "
         "errors, %d called matches\n", n, bad, nflag, np, pbad, nm);
  printf("blind: features %.1f s, comparisons %.1f s (%.2f pairs/s on %d threads), peak RSS %.1f MB\n",
         t1 - t0, t2 - t1, np / (t2 - t1), omp_get_max_threads(), peak_rss_kb() / 1024.0);
  free(ia);
  free(ib);
  free(fl);
  free(sc);
  free_items(v, n);
  return bad || pbad;
}

static void faithful(const char *data)
{
  char a[1200], b[1200];
  bf_cmc_result r;
  snprintf(a, sizeof a, "%s/cartridge/fadul/Fadul 1-1.x3p", data);
  snprintf(b, sizeof b, "%s/cartridge/fadul/Fadul 1-2.x3p", data);
  /* first as cmcR takes the processed scans (no edge erosion), then bfm's default pipeline */
  for (int k = 0; k < 2; k++) {
    double keep = g_bf.processed_erode;
    if (k == 0)
      g_bf.processed_erode = 0;
    int rc = pair(a, b, &r);
    g_bf.processed_erode = keep;
    if (rc)
      return;
    printf("faithful: Fadul 1-1 vs 1-2 (processed%s), cmcR comparison defaults: original CMCs %d "
           "and %d (cmcR 19 and 18), consensus theta %g deg (refined %g; cmcR -21)%s\n",
           k ? ", bfm default edge erosion" : ", as given", r.cmc_original[0], r.cmc_original[1],
           r.theta, r.theta_refined,
           abs(r.cmc_original[0] - 19) <= 3 && abs(r.cmc_original[1] - 18) <= 3 &&
               fabs(r.theta + 21) <= 3 ? ": within tolerance" : ": OUT OF TOLERANCE");
    bf_cmc_result_clear(&r);
  }
}

static void raw_decisions(const char *data)
{
  static const char *pairs[][3] = {
    {"cartridge/fadul-raw/fadul1-1_raw.x3p", "cartridge/fadul-raw/fadul1-2_raw.x3p", "match"},
    {"cartridge/fadul-raw/fadul1-1_raw.x3p", "cartridge/fadul-raw/fadul2-1_raw.x3p", "non-match"},
    {"cartridge/dfsc-pair/K013sA1_raw.x3p", "cartridge/dfsc-pair/K013sA2_raw.x3p", "match"},
    {"cartridge/dfsc-pair/K013sA1.x3p", "cartridge/dfsc-pair/K227iG3.x3p", "non-match"},
  };
  for (int i = 0; i < 4; i++) {
    char a[1200], b[1200];
    bf_cmc_result r;
    snprintf(a, sizeof a, "%s/%s", data, pairs[i][0]);
    snprintf(b, sizeof b, "%s/%s", data, pairs[i][1]);
    if (pair(a, b, &r))
      continue;
    int want = !strcmp(pairs[i][2], "match");
    printf("raw: %s vs %s: score %g -> %s (expected %s)%s\n", strrchr(a, '/') + 1,
           strrchr(b, '/') + 1, r.score, r.match ? "match" : "non-match", pairs[i][2],
           r.match == want ? "" : "  WRONG");
    bf_cmc_result_clear(&r);
  }
}

int main(int argc, char **argv)
{
  int ret = 0;
  if (argc >= 2 && !strcmp(argv[argc - 1], "--exact")) {
    g_opts.coarse = 0;
    argc--;
  }
  if (argc >= 4 && !strcmp(argv[1], "--pair")) {
    bf_cmc_result r;
    if (pair(argv[2], argv[3], &r))
      return 1;
    print_result(argv[2], argv[3], &r);
    bf_cmc_result_clear(&r);
    bf_fft_cleanup();
    return 0;
  }
  if (getenv("BF_FALLBACK_KEEP")) /* A/B of the fallback scan's two stages (0: one stage) */
    g_opts.fallback_keep = atoi(getenv("BF_FALLBACK_KEEP"));
  const char *outdir = ".", *root = getenv("BF_SHARED");
  int quick = getenv("BF_QUICK") != NULL, do_blind = 0, speed_n = 0, do_turned = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--blind"))
      do_blind = 1;
    else if (!strcmp(argv[i], "--turned"))
      do_turned = 1;
    else if (!strcmp(argv[i], "--exact"))
      g_opts.coarse = 0;
    else if (!strcmp(argv[i], "--speed") && i + 1 < argc)
      speed_n = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--dump") && i + 1 < argc) {
      if (!(g_dump = fopen(argv[++i], "w"))) {
        fprintf(stderr, "bench_cmc: cannot write %s\n", argv[i]);
        return 1;
      }
    }
    else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
      outdir = argv[++i];
      mkdir(outdir, 0777); /* the plots go there; an existing folder is fine */
    } else {
      fprintf(stderr, "usage: bench_cmc [--pair A B] [--blind | --turned | --speed N] [--quick] "
                      "[--exact] [--dump FILE] [--out DIR]\n%s%s\n",
              strcmp(argv[i], "--help") ? "bench_cmc: unknown argument " : "",
              strcmp(argv[i], "--help") ? argv[i] : "");
      return strcmp(argv[i], "--help") ? 2 : 0;
    }
  }
  if (!root)
    root = BF_SHARED_DIR;
  char data[1100], bl[1100];
  snprintf(data, sizeof data, "%s/data", root);
  snprintf(bl, sizeof bl, "%s/blind", root);
  /* the per-user FFTW wisdom, as bfm uses it: timings are of a machine that has planned before
   * (a first run plans, and writes the wisdom back) */
  bf_fft_wisdom_load(NULL);
  if (speed_n > 0)
    ret = speed_only(data, speed_n);
  else if (do_blind)
    ret = blind(bl, quick);
  else if (do_turned)
    ret = turned(data, quick);
  else {
    faithful(data);
    raw_decisions(data);
    ret = accuracy(data, outdir, quick);
  }
  if (g_dump && fclose(g_dump)) {
    fprintf(stderr, "bench_cmc: writing the dump failed\n");
    ret = 1;
  }
  bf_fft_wisdom_save(NULL);
  bf_fft_cleanup();
  return ret;
}
