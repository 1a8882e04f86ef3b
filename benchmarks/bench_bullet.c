/* Bullet accuracy and speed on the Hamby sets of ../shared/data, robustness on ../shared/blind.
 *
 *   bench_bullet            Hamby 252 and Hamby 44: same-land vs different-land scores (KEY.csv),
 *                           phase of bullet 1 vs bullet 2, speed (extraction, pair comparison,
 *                           10-land Hamby 252 end to end vs bulletxtrctr's 21.5 s)
 *   bench_bullet --csv F    also writes every pair's features to F (for calibrating the score)
 *   bench_bullet --blind    every pair of the 5 blind bullets compares without error
 * Timings are single-threaded unless said; the machine is shared, so re-run quietly. */
#include "bf_bullet.h"
#include "bf_error.h"
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

/* One Hamby set: returns the number of failed criteria. */
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
  double min_same = 2, max_diff = -1;
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
      if (csv)
        fprintf(csv, "%s,%s,%s,%d,%.4f,%.1f,%.3f,%.3f,%.3f,%d,%d,%d,%d,%.3f,%.1f,%.4f\n", title,
                L[i].name, L[j].name, same, r.ccf, r.lag_um, r.D, r.sd_D, r.rough, r.cms, r.non_cms,
                r.matches, r.mismatches, r.sum_peaks, r.overlap_um, r.score);
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
  bf_bullet_result_clear(&br);

  /* speed: extraction per land (after reading), one pair comparison, single thread */
  int reps = 20;
  t0 = now();
  for (int k = 0; k < reps; k++)
    for (int i = 0; i < n; i++) {
      bf_feature *f;
      if (!bf_bullet_land_extract(&f, L[i].s, NULL))
        bf_feature_free(f);
    }
  double t_ext2 = (now() - t0) / (reps * n);
  long np = 0;
  t0 = now();
  for (int k = 0; k < 20; k++)
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        bf_land_result r;
        bf_land_compare(&r, L[i].f, L[j].f, NULL);
        np++;
      }
  double t_pair = (now() - t0) / np;
  printf("  speed: extraction %.2f ms/land (first pass %.2f ms) = %.0f lands/s; "
         "comparison %.1f us/pair = %.0f pairs/s (1 thread)\n",
         t_ext2 * 1e3, t_ext * 1e3, 1 / t_ext2, t_pair * 1e6, 1 / t_pair);
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
  t0 = now();
  for (int i = 0; i < n; i++)
    bf_bullet_land_extract(&L[i].f, L[i].s, NULL);
  int pairs = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (L[i].bullet == 11 && L[j].bullet == 12) {
        bf_land_result r;
        bf_land_compare(&r, L[i].f, L[j].f, NULL);
        pairs++;
      }
  double t_work = now() - t0;
  printf("== Hamby 252 end to end (%d lands, %d pairs, 1 thread): read %.3f s, extract+compare %.4f s;"
         " bulletxtrctr 21.5 s -> %.0fx faster apart from reading, %.0fx including it\n",
         n, pairs, t_read, t_work, 21.5 / t_work, 21.5 / (t_work + t_read));
  /* the same with every core: lands extracted in parallel, pairs through bf_bullet_compare */
  int nth = omp_get_num_procs();
  omp_set_num_threads(nth);
  double best = 1e9;
  for (int rep = 0; rep < 5; rep++) {
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
    double t = now() - t0;
    if (t < best)
      best = t;
  }
  omp_set_num_threads(1);
  printf("   with %d threads (best of 5): extract+compare %.4f s -> %.0fx faster than bulletxtrctr apart from reading\n",
         nth, best, 21.5 / best);
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

int main(int argc, char **argv)
{
  char data[1100], blinddir[1100];
  const char *root = getenv("BF_SHARED") ? getenv("BF_SHARED") : BF_SHARED_DIR;
  snprintf(data, sizeof data, "%s/data", root);
  snprintf(blinddir, sizeof blinddir, "%s/blind/bullet", root);
  FILE *csv = NULL;
  int do_blind = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--blind"))
      do_blind = 1;
    else if (!strcmp(argv[i], "--csv") && i + 1 < argc) {
      if (!(csv = fopen(argv[++i], "w"))) {
        fprintf(stderr, "cannot write %s\n", argv[i]);
        return 1;
      }
      fprintf(csv, "set,a,b,same,ccf,lag_um,D,sd_D,rough,cms,non_cms,matches,mismatches,sum_peaks,overlap_um,score\n");
    } else {
      fprintf(stderr, "usage: bench_bullet [--csv FILE] [--blind]\n");
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
    end_to_end(data);
  }
  if (csv)
    fclose(csv);
  printf("%s\n", fails ? "SOME CHECKS FAILED" : "all checks passed");
  return fails ? 1 : 0;
}
