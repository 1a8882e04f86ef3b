/* Bullet accuracy and speed on the Hamby sets of ../shared/data, robustness on ../shared/blind.
 *
 *   bench_bullet            Hamby 252 and Hamby 44: same-land vs different-land scores (KEY.csv),
 *                           phase of bullet 1 vs bullet 2, speed (extraction, pair comparison,
 *                           10-land Hamby 252 end to end vs bulletxtrctr's 21.5 s)
 *   bench_bullet --csv F    also writes every pair's features to F (for calibrating the score)
 *   bench_bullet --fit      also re-fits the land-score model (bf_land_features -> logistic,
 *                           equal weight per class, ridge): leave-one-study-out (Hamby 252 <->
 *                           Hamby 44) and within-study leave-one-land-out, then on both sets;
 *                           prints the coefficients as the BF_LAND_WEIGHTS table of striae.c
 *   bench_bullet --blind    every pair of the 5 blind bullets compares without error
 *   bench_bullet --extract N  only the extraction timing of the 24 Hamby lands, median of N passes,
 *                           1 and 2 threads (also for `valgrind --tool=callgrind ... --extract 1`)
 *   bench_bullet --dump F   writes every Hamby and blind land's signature and params to F (full
 *                           precision), to check that a speed change leaves results unchanged
 *   bench_bullet --scores   accuracy only (no timing)
 *   bench_bullet --spacing UM  the Hamby scans resampled (bilinear) to UM µm first: how the
 *                           scores move on an instrument with another spacing
 * Every run also scores bullet 2 turned heel for toe (each scan rotated 180 degrees, lands
 * numbered the other way round), as a base-first scan would give it.
 * Timings are single-threaded unless said; the machine is shared, so re-run quietly. */
#include "bf_bullet.h"
#include "bf_error.h"
#include "bf_lr.h"
#include "bf_striae.h"
#include "bf_x3p.h"

#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define MAXL 32
typedef struct land {
  char path[1024], name[128], group[64];
  int bullet, land;
  bf_surface *s;
  bf_feature *f;
} land;

/* Resampled to spacing sp (both axes) by bilinear interpolation; NaN where a neighbour is. */
static bf_surface *resample_surface(const bf_surface *s, double sp)
{
  int nx = (int)floor((s->nx - 1) * s->dx / sp) + 1, ny = (int)floor((s->ny - 1) * s->dy / sp) + 1;
  bf_surface *o = NULL;
  if (bf_surface_new(&o, nx, ny, sp, sp))
    return NULL;
  for (int y = 0; y < ny; y++)
    for (int x = 0; x < nx; x++) {
      double fx = x * sp / s->dx, fy = y * sp / s->dy;
      int x0 = (int)fx, y0 = (int)fy, x1 = x0 + 1 < s->nx ? x0 + 1 : x0, y1 = y0 + 1 < s->ny ? y0 + 1 : y0;
      double tx = fx - x0, ty = fy - y0;
      const float *z = s->z;
      double v = (1 - ty) * ((1 - tx) * z[(size_t)y0 * s->nx + x0] + tx * z[(size_t)y0 * s->nx + x1]) +
                 ty * ((1 - tx) * z[(size_t)y1 * s->nx + x0] + tx * z[(size_t)y1 * s->nx + x1]);
      o->z[(size_t)y * nx + x] = (float)v;
    }
  return o;
}

/* The scan turned heel for toe. rotate = 1: turned 180 degrees in its plane (both axes
 * reversed: the crosscut search then starts from the other end of the striae too); 0: only the
 * axis across the striae reversed (every profile reversed, the rows along the striae kept). */
static bf_surface *turn_surface(const bf_surface *s, int rotate)
{
  bf_surface *o = NULL;
  if (bf_surface_new(&o, s->nx, s->ny, s->dx, s->dy))
    return NULL;
  int across_y = bf_bullet_orientation(s, NULL) == BF_STRIAE_X; /* profiles run along Y */
  int rx = rotate || !across_y, ry = rotate || across_y;
  for (int y = 0; y < s->ny; y++)
    for (int x = 0; x < s->nx; x++)
      o->z[(size_t)y * s->nx + x] =
          s->z[(size_t)(ry ? s->ny - 1 - y : y) * s->nx + (rx ? s->nx - 1 - x : x)];
  return o;
}

static double g_spacing; /* --spacing: resample every scan to this (µm), 0 = as scanned */
static int g_scores;      /* --scores: accuracy only, no timing */

/* Reads the lands of one set (rows of KEY.csv whose path starts with prefix). */
static int load_set(land *L, const char *data, const char *prefix)
{
  char key[1200], line[2048];
  snprintf(key, sizeof key, "%s/KEY.csv", data);
  FILE *fp = fopen(key, "r");
  if (!fp) {
    fprintf(stderr, "cannot open %s\n", key);
    return -1;
  }
  int n = 0;
  while (fgets(line, sizeof line, fp) && n < MAXL) {
    if (strncmp(line, prefix, strlen(prefix)))
      continue;
    char *fld[8] = {0};
    int nf = 0;
    for (char *p = strtok(line, ",\n"); p && nf < 8; p = strtok(NULL, ",\n"))
      fld[nf++] = p;
    if (nf < 5)
      continue;
    land *l = &L[n];
    memset(l, 0, sizeof *l);
    snprintf(l->path, sizeof l->path, "%s/%s", data, fld[0]);
    const char *base = strrchr(fld[0], '/') ? strrchr(fld[0], '/') + 1 : fld[0];
    snprintf(l->name, sizeof l->name, "%s", base);
    snprintf(l->group, sizeof l->group, "%s", fld[4]);
    const char *b = strstr(base, "Barrel"), *u = strstr(base, "Bullet"), *d = strstr(base, "Land");
    int barrel = b ? atoi(b + 6) : 0;
    l->bullet = barrel * 10 + (u ? atoi(u + 6) : 0); /* 11, 12 = barrel 1 bullets 1, 2 */
    l->land = d ? atoi(d + 4) : 0;
    if (bf_x3p_read(&l->s, l->path, NULL)) {
      fprintf(stderr, "%s\n", bf_error_last());
      fclose(fp);
      return -1;
    }
    if (g_spacing > 0) {
      bf_surface *r = resample_surface(l->s, g_spacing);
      bf_surface_free(l->s);
      if (!(l->s = r)) {
        fclose(fp);
        return -1;
      }
    }
    n++;
  }
  fclose(fp);
  return n;
}

static void free_set(land *L, int n)
{
  for (int i = 0; i < n; i++) {
    bf_surface_free(L[i].s);
    bf_feature_free(L[i].f);
  }
}

static int cmp_dbl(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n)
{
  qsort(v, (size_t)n, sizeof *v, cmp_dbl);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median over reps of the time per land to extract all n lands (nth threads over lands) and,
 * when t_pair is given, of the time per pair to compare all n x n pairs (1 thread). */
static void speed(land *L, int n, int nth, int reps, double *t_ext, double *t_pair)
{
  double *t = malloc((size_t)reps * sizeof *t);
  if (!t)
    return;
  omp_set_num_threads(nth);
  for (int k = 0; k < reps; k++) {
    double t0 = now();
#pragma omp parallel for schedule(dynamic)
    for (int i = 0; i < n; i++) {
      bf_feature *f;
      if (!bf_bullet_land_extract(&f, L[i].s, NULL))
        bf_feature_free(f);
    }
    t[k] = (now() - t0) / n;
  }
  *t_ext = median(t, reps);
  omp_set_num_threads(1);
  if (t_pair) {
    for (int k = 0; k < reps; k++) {
      double t0 = now();
      for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
          bf_land_result r;
          bf_land_compare(&r, L[i].f, L[j].f, NULL);
        }
      t[k] = (now() - t0) / ((double)n * n);
    }
    *t_pair = median(t, reps);
  }
  free(t);
}

/* One Hamby set: returns the number of failed criteria. */
/* Land pairs seen by run_set, for --fit. */
#define MAXP 512
static double g_x[MAXP][BF_LAND_NFEAT];
static int g_same[MAXP], g_set[MAXP], g_fold[MAXP], g_np;

static int run_set(const char *data, const char *prefix, const char *title, FILE *csv, int phase_only_b1b2)
{
  land L[MAXL];
  int n = load_set(L, data, prefix), fails = 0;
  if (n <= 0)
    return 1;
  printf("== %s: %d lands\n", title, n);
  double t0 = now();
  for (int i = 0; i < n; i++) {
    bf_bullet_opts o = BF_BULLET_OPTS_INIT;
    o.land = L[i].land;
    if (bf_bullet_land_extract(&L[i].f, L[i].s, &o)) {
      fprintf(stderr, "%s: %s\n", L[i].name, bf_error_last());
      free_set(L, n);
      return 1;
    }
  }
  double t_ext = (now() - t0) / n;
  double min_same = 2, max_diff = -1, ss[MAXL * MAXL], ds[MAXL * MAXL], sum_s = 0, sum_d = 0;
  int nss = 0, nds = 0;
  char worst_same[300] = "", worst_diff[300] = "";
  int npair = 0;
  t0 = now();
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      if (L[i].bullet == L[j].bullet)
        continue; /* lands of one bullet: different lands by construction, not a test pair */
      bf_land_result r;
      if (bf_land_compare(&r, L[i].f, L[j].f, NULL)) {
        fprintf(stderr, "%s vs %s: %s\n", L[i].name, L[j].name, bf_error_last());
        fails++;
        continue;
      }
      npair++;
      int same = !strcmp(L[i].group, L[j].group);
      if (g_np < MAXP) {
        bf_land_features(g_x[g_np], &r);
        g_same[g_np] = same;
        g_set[g_np] = !strcmp(title, "hamby44");
        g_fold[g_np] = L[i].bullet * 10 + L[i].land; /* within-study fold: the first land */
        g_np++;
      }
      if (csv)
        fprintf(csv, "%s,%s,%s,%d,%.4f,%.1f,%.3f,%.3f,%.3f,%d,%d,%d,%d,%.3f,%.1f,%.4f\n", title,
                L[i].name, L[j].name, same, r.ccf, r.lag_um, r.D, r.sd_D, r.rough, r.cms, r.non_cms,
                r.matches, r.mismatches, r.sum_peaks, r.overlap_um, r.score);
      if (same) {
        ss[nss++] = r.score;
        sum_s += r.score;
      } else {
        ds[nds++] = r.score;
        sum_d += r.score;
      }
      if (same) {
        printf("  same land  %-36s %-36s score %.3f ccf %.3f cms %d matches %d/%d\n", L[i].name,
               L[j].name, r.score, r.ccf, r.cms, r.matches, r.matches + r.mismatches);
        if (r.score < min_same) {
          min_same = r.score;
          snprintf(worst_same, sizeof worst_same, "%s-%s", L[i].name, L[j].name);
        }
      } else if (r.score > max_diff) {
        max_diff = r.score;
        snprintf(worst_diff, sizeof worst_diff, "%s-%s (ccf %.3f cms %d)", L[i].name, L[j].name,
                 r.ccf, r.cms);
      }
    }
  printf("  pairs %d; lowest same-land score %.3f (%s)\n  highest different-land score %.3f (%s)\n",
         npair, min_same, worst_same, max_diff, worst_diff);
  double auc = 0;
  for (int i = 0; i < nss; i++)
    for (int j = 0; j < nds; j++)
      auc += ss[i] > ds[j] ? 1 : ss[i] == ds[j] ? 0.5 : 0;
  auc = nss && nds ? auc / ((double)nss * nds) : NAN;
  printf("  AUC %.4f; mean same-land score %.3f (%d), mean different-land score %.3f (%d)\n", auc,
         nss ? sum_s / nss : NAN, nss, nds ? sum_d / nds : NAN, nds);
  int sep = min_same > max_diff;
  printf("  CHECK same-land pairs all above different-land pairs: %s (gap %.3f)\n",
         sep ? "PASS" : "FAIL", min_same - max_diff);
  fails += !sep;

  /* bullet 1 vs bullet 2 of barrel 1 */
  const bf_feature *A[MAXL], *B[MAXL];
  int na = 0, nb = 0, expect = -1;
  for (int i = 0; i < n; i++) {
    if (L[i].bullet == 11)
      A[na++] = L[i].f;
    if (L[i].bullet == 12)
      B[nb++] = L[i].f;
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (L[i].bullet == 11 && L[j].bullet == 12 && !strcmp(L[i].group, L[j].group))
        expect = ((L[j].land - L[i].land) % 6 + 6) % 6;
  bf_bullet_result br;
  if (bf_bullet_compare(&br, A, na, B, nb, NULL)) {
    fprintf(stderr, "bullet compare: %s\n", bf_error_last());
    free_set(L, n);
    return fails + 1;
  }
  printf("  bullet 1 vs 2: phase %d (expected %d), SAM score %.3f, margin %.3f, match %s\n", br.phase,
         expect, br.score, br.margin, br.match ? "yes" : "no");
  printf("  phase scores:");
  for (int p = 0; p < br.nphase; p++)
    printf(" %d:%.3f(%d)", p, br.phase_score[p], br.phase_pairs[p]);
  printf("\n");
  int ok_phase = br.phase == expect;
  printf("  CHECK phase right: %s\n", ok_phase ? "PASS" : "FAIL");
  fails += !ok_phase;
  if (!phase_only_b1b2) {
    printf("  CHECK bullet 1 vs 2 scores as a match: %s\n", br.match ? "PASS" : "FAIL");
    fails += !br.match;
  }
  double plain = br.score;
  printf("  CHECK bullet 1 vs 2 as scanned not turned: %s (turned SAM %.3f)\n", br.reversed ? "FAIL" : "PASS",
         br.other_score);
  fails += br.reversed;
  bf_bullet_result_clear(&br);

  /* bullet 2 scanned from its other end, lands numbered the other way round (land k of 6 ->
   * 7 - k): first with every profile reversed (the comparison's heel/toe rule), then the scans
   * turned 180 degrees (the crosscut must then be found from the scan's other end: the heel) */
  for (int rot = 0; rot < 2; rot++) {
    bf_feature *T[MAXL] = {0};
    int nt = 0, terr = 0;
    for (int i = 0; i < n; i++)
      if (L[i].bullet == 12) {
        bf_surface *t = turn_surface(L[i].s, rot);
        bf_bullet_opts o = BF_BULLET_OPTS_INIT;
        o.land = 7 - L[i].land;
        terr |= !t || bf_bullet_land_extract(&T[nt++], t, &o);
        bf_surface_free(t);
      }
    if (!terr && !bf_bullet_compare(&br, A, na, (const bf_feature *const *)T, nt, NULL)) {
      printf("  bullet 1 vs 2 %s: reversed %s, SAM %.3f (as scanned %.3f), unturned %.3f, "
             "gain %+.3f, phase %d, match %s\n", rot ? "turned 180 deg" : "profiles reversed",
             br.reversed ? "yes" : "no", br.score, plain, br.other_score, br.score - br.other_score,
             br.phase, br.match ? "yes" : "no");
      int ok = br.reversed && (rot ? br.match == 1 : br.score > plain - 0.05);
      printf("  CHECK %s bullet 2 detected and %s: %s\n", rot ? "turned" : "reversed",
             rot ? "a match" : "scored like bullet 2", ok ? "PASS" : "FAIL");
      fails += !ok;
      bf_bullet_result_clear(&br);
    } else {
      printf("  turned bullet 2: %s\n", bf_error_last());
      fails++;
    }
    for (int k = 0; k < nt; k++)
      bf_feature_free(T[k]);
  }

  if (g_spacing > 0 || g_scores) { /* scores only */
    free_set(L, n);
    return fails;
  }
  /* speed: extraction per land (after reading), one pair comparison; medians of repeats */
  double t_ext1, t_ext2, t_pair;
  speed(L, n, 1, 15, &t_ext1, &t_pair);
  speed(L, n, 2, 15, &t_ext2, NULL);
  /* bullet compare with and without the heel/toe try, alternated, CPU time (1 thread) */
  {
    enum { R = 15 };
    double tb[2][R];
    bf_land_opts lo = BF_LAND_OPTS_INIT;
    for (int rep = 0; rep < R; rep++)
      for (int turn = 0; turn < 2; turn++) {
        lo.turn_margin = turn ? 0.1 : -1;
        struct timespec c0, c1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        if (!bf_bullet_compare(&br, A, na, B, nb, &lo))
          bf_bullet_result_clear(&br);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        tb[turn][rep] = (c1.tv_sec - c0.tv_sec) + 1e-9 * (c1.tv_nsec - c0.tv_nsec);
      }
    double t0 = median(tb[0], R), t1 = median(tb[1], R);
    printf("  bullet 1 vs 2 compare, CPU, median of %d alternated: as scanned only %.2f ms, also turned "
           "%.2f ms (x%.2f)\n", R, t0 * 1e3, t1 * 1e3, t1 / t0);
  }
  printf("  speed (median of 15): extraction %.2f ms/land = %.0f lands/s (1 thread), %.2f ms/land "
         "(2 threads over lands; first pass %.2f ms); comparison %.1f us/pair = %.0f pairs/s (1 thread)\n",
         t_ext1 * 1e3, 1 / t_ext1, t_ext2 * 1e3, t_ext * 1e3, t_pair * 1e6, 1 / t_pair);
  free_set(L, n);
  return fails;
}

/* Hamby 252 end to end as bulletxtrctr's 21.5 s: read the 10 barrel-1 lands, extract, 25 pairs. */
static void end_to_end(const char *data)
{
  land L[MAXL];
  double t0 = now();
  int n = load_set(L, data, "bullet/hamby252/Hamby252_Barrel1");
  if (n <= 0)
    return;
  double t_read = now() - t0;
  /* extract all, compare bullet 1's lands with bullet 2's; median of reps, 1 then nth threads */
  enum { REPS = 15 };
  double t1[REPS], tn[REPS];
  int nth = omp_get_num_procs(), pairs = 0;
  for (int th = 0; th < 2; th++) {
    omp_set_num_threads(th ? nth : 1);
    for (int rep = 0; rep < REPS; rep++) {
      for (int i = 0; i < n; i++) {
        bf_feature_free(L[i].f);
        L[i].f = NULL;
      }
      t0 = now();
#pragma omp parallel for schedule(dynamic)
      for (int i = 0; i < n; i++) {
        bf_bullet_opts o = BF_BULLET_OPTS_INIT;
        o.land = L[i].land;
        bf_bullet_land_extract(&L[i].f, L[i].s, &o);
      }
      if (!th) { /* one thread: the 25 land pairs one by one, as bulletxtrctr's figure */
        pairs = 0;
        for (int i = 0; i < n; i++)
          for (int j = 0; j < n; j++)
            if (L[i].bullet == 11 && L[j].bullet == 12) {
              bf_land_result r;
              bf_land_compare(&r, L[i].f, L[j].f, NULL);
              pairs++;
            }
        t1[rep] = now() - t0;
        continue;
      }
      const bf_feature *A[MAXL], *B[MAXL];
      int na = 0, nb = 0;
      for (int i = 0; i < n; i++) {
        if (L[i].bullet == 11)
          A[na++] = L[i].f;
        if (L[i].bullet == 12)
          B[nb++] = L[i].f;
      }
      bf_bullet_result br;
      if (!bf_bullet_compare(&br, A, na, B, nb, NULL))
        bf_bullet_result_clear(&br);
      tn[rep] = now() - t0;
    }
  }
  omp_set_num_threads(1);
  double w1 = median(t1, REPS), wn = median(tn, REPS);
  printf("== Hamby 252 end to end (%d lands, %d pairs, 1 thread, median of %d): read %.3f s, "
         "extract+compare %.4f s; bulletxtrctr 21.5 s -> %.0fx faster apart from reading, %.0fx "
         "including it\n",
         n, pairs, REPS, t_read, w1, 21.5 / w1, 21.5 / (w1 + t_read));
  printf("   with %d threads (median of %d): extract+compare %.4f s -> %.0fx faster than "
         "bulletxtrctr apart from reading\n",
         nth, REPS, wn, 21.5 / wn);
  free_set(L, n);
}

static int blind(const char *root)
{
  const char *names[5] = {"b01", "b02", "b03", "b04", "b05"};
  bf_feature *F[5][6] = {{0}};
  int fails = 0;
  for (int b = 0; b < 5; b++)
    for (int l = 0; l < 6; l++) {
      char p[1200];
      snprintf(p, sizeof p, "%s/%s/land%d.x3p", root, names[b], l + 1);
      bf_surface *s = NULL;
      bf_bullet_opts o = BF_BULLET_OPTS_INIT;
      o.land = l + 1;
      if (bf_x3p_read(&s, p, NULL) || bf_bullet_land_extract(&F[b][l], s, &o)) {
        fprintf(stderr, "%s: %s\n", p, bf_error_last());
        fails++;
      } else if (F[b][l]->quality_flags)
        printf("  %s land %d: quality flags 0x%x\n", names[b], l + 1, F[b][l]->quality_flags);
      bf_surface_free(s);
    }
  printf("== blind bullets (no key: robustness only)\n");
  for (int a = 0; a < 5; a++)
    for (int b = a + 1; b < 5; b++) {
      bf_bullet_result r;
      if (bf_bullet_compare(&r, (const bf_feature *const *)F[a], 6, (const bf_feature *const *)F[b], 6,
                            NULL)) {
        fprintf(stderr, "%s vs %s: %s\n", names[a], names[b], bf_error_last());
        fails++;
        continue;
      }
      printf("  %s vs %s: phase %d score %.3f margin %.3f\n", names[a], names[b], r.phase, r.score,
             r.margin);
      bf_bullet_result_clear(&r);
    }
  for (int b = 0; b < 5; b++)
    for (int l = 0; l < 6; l++)
      bf_feature_free(F[b][l]);
  printf("  CHECK every blind pair compared without error: %s\n", fails ? "FAIL" : "PASS");
  return fails;
}

/* Extraction speed alone, on all 24 Hamby lands. */
static int extract_only(const char *data, int reps)
{
  land L[2 * MAXL];
  int n1 = load_set(L, data, "bullet/hamby252/");
  int n2 = n1 > 0 ? load_set(L + n1, data, "bullet/hamby44/") : -1;
  if (n1 <= 0 || n2 <= 0) {
    if (n1 > 0)
      free_set(L, n1);
    return 1;
  }
  for (int th = 1; th <= (reps > 1 ? 2 : 1); th++) {
    double a, b;
    speed(L, n1, th, reps, &a, NULL);
    speed(L + n1, n2, th, reps, &b, NULL);
    printf("extraction, %d thread%s, median of %d: Hamby 252 %.3f ms/land, Hamby 44 %.3f ms/land\n",
           th, th > 1 ? "s" : "", reps, a * 1e3, b * 1e3);
  }
  free_set(L, n1 + n2);
  return 0;
}

/* Every land's extraction written in full precision: diff two dumps to prove a change harmless. */
static int dump(const char *data, const char *blinddir, const char *out)
{
  FILE *fp = fopen(out, "w");
  if (!fp) {
    fprintf(stderr, "cannot write %s\n", out);
    return 1;
  }
  char paths[64][1200];
  int np = 0, fails = 0;
  char key[1200], line[2048];
  snprintf(key, sizeof key, "%s/KEY.csv", data);
  FILE *k = fopen(key, "r");
  while (k && fgets(line, sizeof line, k) && np < 64)
    if (!strncmp(line, "bullet/", 7)) {
      char *c = strchr(line, ',');
      if (c)
        *c = 0;
      snprintf(paths[np++], sizeof paths[0], "%.1000s/%.190s", data, line);
    }
  if (k)
    fclose(k);
  for (int b = 1; b <= 5; b++)
    for (int l = 1; l <= 6 && np < 64; l++)
      snprintf(paths[np++], sizeof paths[0], "%s/b%02d/land%d.x3p", blinddir, b, l);
  for (int i = 0; i < np; i++) {
    bf_surface *s = NULL;
    bf_feature *f = NULL;
    if (!bf_x3p_read(&s, paths[i], NULL) && g_spacing > 0) {
      bf_surface *r = resample_surface(s, g_spacing);
      bf_surface_free(s);
      s = r;
    }
    if (!s || bf_bullet_land_extract(&f, s, NULL)) {
      fprintf(fp, "%s ERROR %s\n", paths[i], bf_error_last());
      fails++;
    } else {
      fprintf(fp, "%s n %d flags 0x%x valid %.9g params", paths[i], f->nx, f->quality_flags,
              f->valid_fraction);
      for (int p = 0; p <= BF_BP_GROOVES; p++)
        fprintf(fp, " %.9g", f->params[p]);
      fprintf(fp, "\n");
      for (int j = 0; j < f->nx; j++)
        fprintf(fp, "%.9g\n", f->z[j]);
    }
    bf_feature_free(f);
    bf_surface_free(s);
  }
  fclose(fp);
  printf("dumped %d lands to %s (%d errors)\n", np, out, fails);
  return 0;
}

/* Ridge of the land model: strong enough that 10 same-land pairs cannot drive the weights to
 * the separating extremes (scores then sit at 0/1 and do not transfer), weak enough to keep
 * Hamby's separation. Chosen before looking at the held-out study's result, not tuned on it. */
#define LAND_RIDGE 0.05

static double land_p(const double *w, const double *x)
{
  double t = w[0];
  for (int k = 0; k < BF_LAND_NFEAT; k++)
    t += w[k + 1] * x[k];
  return 1 / (1 + exp(-t));
}

/* Fits on rows where keep(i) and scores the others; prints the held-out separation. */
static void fit_eval(const char *title, int mode, int arg)
{
  static double x[MAXP * BF_LAND_NFEAT];
  static int y[MAXP];
  double w[BF_LAND_NFEAT + 1];
  double minss = 2, maxds = -1, sumss = 0;
  int nss = 0, nds = 0, folds[MAXP], nf = 0;
  /* mode 0: train on set != arg; mode 1: within set arg, leave each fold out; mode 2: all */
  if (mode == 1) {
    for (int i = 0; i < g_np; i++)
      if (g_set[i] == arg) {
        int k = 0;
        while (k < nf && folds[k] != g_fold[i])
          k++;
        if (k == nf)
          folds[nf++] = g_fold[i];
      }
  } else
    nf = 1;
  for (int f = 0; f < nf; f++) {
    int m = 0;
    for (int i = 0; i < g_np; i++) {
      int train = mode == 0 ? g_set[i] != arg : mode == 1 ? g_set[i] == arg && g_fold[i] != folds[f] : 1;
      if (train) {
        memcpy(x + m * BF_LAND_NFEAT, g_x[i], sizeof g_x[i]);
        y[m++] = g_same[i];
      }
    }
    /* expected directions: more correlation, consecutive matches and matched marks mean more
     * alike, more misfit less; a feature fitted the other way (collinearity in few pairs) is
     * dropped and the rest refitted, so the score stays monotone in every feature */
    static const int sign[BF_LAND_NFEAT] = {1, 1, 1, -1};
    int drop[BF_LAND_NFEAT] = {0}, again = 1;
    while (again) {
      again = 0;
      for (int i = 0; i < m; i++)
        for (int k = 0; k < BF_LAND_NFEAT; k++)
          if (drop[k])
            x[i * BF_LAND_NFEAT + k] = 0;
      if (bf_lr_fit_logistic(w, x, BF_LAND_NFEAT, y, m, LAND_RIDGE)) {
        printf("  %s: %s\n", title, bf_error_last());
        return;
      }
      for (int k = 0; k < BF_LAND_NFEAT; k++)
        if (!drop[k] && w[k + 1] * sign[k] < 0) {
          drop[k] = again = 1;
          break;
        }
    }
    if (mode == 2) {
      printf("static const double BF_LAND_WEIGHTS[%d] = {", BF_LAND_NFEAT + 1);
      for (int k = 0; k <= BF_LAND_NFEAT; k++)
        printf("%s%.4f", k ? ", " : "", w[k]);
      printf("};\n");
      return;
    }
    for (int i = 0; i < g_np; i++) {
      int test = mode == 0 ? g_set[i] == arg : g_set[i] == arg && g_fold[i] == folds[f];
      if (!test)
        continue;
      double p = land_p(w, g_x[i]);
      if (g_same[i]) {
        minss = fmin(minss, p);
        sumss += p;
        nss++;
      } else {
        maxds = fmax(maxds, p);
        nds++;
      }
    }
  }
  printf("  %-40s held-out same-land %d: min %.3f mean %.3f; different-land %d: max %.3f -> %s\n",
         title, nss, minss, nss ? sumss / nss : NAN, nds, maxds,
         minss > maxds ? "separated" : "OVERLAP");
}

static void fit_land_model(void)
{
  printf("== land-score model: logistic on bf_land_features, ridge %g, %d land pairs\n", LAND_RIDGE,
         g_np);
  fit_eval("train hamby44, test hamby252", 0, 0);
  fit_eval("train hamby252, test hamby44", 0, 1);
  fit_eval("hamby252 leave-one-land-out", 1, 0);
  fit_eval("hamby44 leave-one-land-out", 1, 1);
  printf("fitted on both sets (order: w0, ccf, cms/mm, match fraction, D/rough):\n");
  fit_eval("all", 2, 0);
}

int main(int argc, char **argv)
{
  char data[1100], blinddir[1100];
  const char *root = getenv("BF_SHARED") ? getenv("BF_SHARED") : BF_SHARED_DIR;
  snprintf(data, sizeof data, "%s/data", root);
  snprintf(blinddir, sizeof blinddir, "%s/blind/bullet", root);
  FILE *csv = NULL;
  int do_blind = 0, do_fit = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--blind"))
      do_blind = 1;
    else if (!strcmp(argv[i], "--fit"))
      do_fit = 1;
    else if (!strcmp(argv[i], "--extract") && i + 1 < argc)
      return extract_only(data, atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) : 1);
    else if (!strcmp(argv[i], "--scores"))
      g_scores = 1;
    else if (!strcmp(argv[i], "--spacing") && i + 1 < argc)
      g_spacing = atof(argv[++i]);
    else if (!strcmp(argv[i], "--dump") && i + 1 < argc)
      return dump(data, blinddir, argv[i + 1]);
    else if (!strcmp(argv[i], "--csv") && i + 1 < argc) {
      if (!(csv = fopen(argv[++i], "w"))) {
        fprintf(stderr, "cannot write %s\n", argv[i]);
        return 1;
      }
      fprintf(csv, "set,a,b,same,ccf,lag_um,D,sd_D,rough,cms,non_cms,matches,mismatches,sum_peaks,overlap_um,score\n");
    } else {
      fprintf(stderr, "usage: bench_bullet [--csv FILE] [--fit] [--blind] [--scores] [--spacing UM] [--extract N] [--dump FILE]\n");
      return 2;
    }
  }
  omp_set_num_threads(1);
  int fails = 0;
  if (do_blind)
    fails += blind(blinddir);
  else {
    fails += run_set(data, "bullet/hamby252/", "hamby252", csv, 1);
    fails += run_set(data, "bullet/hamby44/", "hamby44", csv, 0);
    if (do_fit)
      fit_land_model();
    else if (!(g_spacing > 0) && !g_scores)
      end_to_end(data);
  }
  if (csv)
    fclose(csv);
  printf("%s\n", fails ? "SOME CHECKS FAILED" : "all checks passed");
  return fails ? 1 : 0;
}
