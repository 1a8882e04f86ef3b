/* One-shot costs: `bfm compare` end to end in a new process, one thread, first run (no FFTW
 * wisdom) and warm (wisdom in the per-user cache), and a results dump to prove that moving the
 * FFT plans, the size rule and wisdom left the answers unchanged.
 *
 *   bench_oneshot [N]         median of N (default 5) runs of each command, first-run and warm:
 *                             Fadul 1-1 v 1-2 and Hamby 44 bullet 1 v 2 (6 lands each)
 *   bench_oneshot --dump F    every Fadul breech-face feature (size, sums), the 780 Fadul CMC
 *                             results and every Hamby land-pair score, full precision, to F
 * Timings on a shared machine are noisy: quote medians. */
#include "bf_breechface.h"
#include "bf_bullet.h"
#include "bf_cmc.h"
#include "bf_error.h"
#include "bf_striae.h"
#include "bf_x3p.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXF 128

static int list(char names[][1200], const char *dir, const char *prefix)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d)) && n < MAXF) {
    size_t l = strlen(e->d_name);
    if (l > 4 && !strcmp(e->d_name + l - 4, ".x3p") && !strncmp(e->d_name, prefix, strlen(prefix)))
      snprintf(names[n++], 1200, "%.600s/%.590s", dir, e->d_name);
  }
  if (d)
    closedir(d);
  qsort(names, n, 1200, (int (*)(const void *, const void *))strcmp);
  return n;
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* ---- dump ---- */

static void dump_fadul(FILE *fp, const char *data)
{
  static char p[MAXF][1200];
  char dir[1300];
  snprintf(dir, sizeof dir, "%s/cartridge/fadul", data);
  int n = list(p, dir, "Fadul");
  bf_feature *f[MAXF] = {0};
  bf_cmc_prep *pr[MAXF] = {0};
  bf_cmc_opts o = BF_CMC_OPTS_INIT;
  bf_breechface_opts bo = BF_BREECHFACE_OPTS_INIT;
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < n; i++) {
    bf_surface *s = NULL;
    if (bf_x3p_read(&s, p[i], NULL) || bf_breechface_extract(&f[i], s, &bo) ||
        bf_cmc_prep_new(&pr[i], f[i], &o))
      fprintf(stderr, "%s: %s\n", p[i], bf_error_last());
    bf_surface_free(s);
  }
  for (int i = 0; i < n; i++) {
    double sum = 0, sq = 0;
    long nv = 0;
    for (size_t k = 0; f[i] && k < (size_t)f[i]->nx * f[i]->ny; k++)
      if (isfinite(f[i]->z[k])) {
        sum += f[i]->z[k];
        sq += (double)f[i]->z[k] * f[i]->z[k];
        nv++;
      }
    fprintf(fp, "feature %s %d x %d valid %ld sum %.9g sumsq %.9g flags 0x%x\n", strrchr(p[i], '/') + 1,
            f[i] ? f[i]->nx : 0, f[i] ? f[i]->ny : 0, nv, sum, sq, f[i] ? f[i]->quality_flags : 0);
  }
  int np = n * (n - 1) / 2;
  char(*line)[256] = calloc(np, sizeof *line);
  o.threads = 1;
#pragma omp parallel for schedule(dynamic)
  for (int k = 0; k < np; k++) {
    int i = 0, r = k;
    while (r >= n - 1 - i) {
      r -= n - 1 - i;
      i++;
    }
    int j = i + 1 + r;
    bf_cmc_result c;
    if (!pr[i] || !pr[j] || bf_cmc_compare_prep(&c, pr[i], pr[j], &o))
      snprintf(line[k], sizeof line[k], "%d %d ERROR", i, j);
    else {
      snprintf(line[k], sizeof line[k], "%d %d score %g orig %d %d high %d %d comb %d theta %g "
               "%g dx %g dy %g", i, j, c.score, c.cmc_original[0], c.cmc_original[1],
               c.cmc_high[0], c.cmc_high[1], c.cmc_combined, c.theta, c.theta_refined, c.dx, c.dy);
      bf_cmc_result_clear(&c);
    }
  }
  for (int k = 0; k < np; k++)
    fprintf(fp, "cmc %s\n", line[k]);
  free(line);
  for (int i = 0; i < n; i++) {
    bf_cmc_prep_free(pr[i]);
    bf_feature_free(f[i]);
  }
}

static void dump_hamby(FILE *fp, const char *data, const char *set, const char *prefix)
{
  static char p[MAXF][1200];
  char dir[1300];
  snprintf(dir, sizeof dir, "%s/bullet/%s", data, set);
  int n = list(p, dir, prefix);
  bf_feature *f[MAXF] = {0};
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < n; i++) {
    bf_surface *s = NULL;
    if (bf_x3p_read(&s, p[i], NULL) || bf_bullet_land_extract(&f[i], s, NULL))
      fprintf(stderr, "%s: %s\n", p[i], bf_error_last());
    bf_surface_free(s);
  }
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      bf_land_result r;
      if (!f[i] || !f[j] || bf_land_compare(&r, f[i], f[j], NULL))
        fprintf(fp, "land %s %d %d ERROR\n", set, i, j);
      else
        fprintf(fp, "land %s %d %d score %.9g ccf %.9g lag %.9g D %.9g\n", set, i, j, r.score,
                r.ccf, r.lag_um, r.D);
    }
  for (int i = 0; i < n; i++)
    bf_feature_free(f[i]);
}

static int dump(const char *data, const char *out)
{
  FILE *fp = fopen(out, "w");
  if (!fp) {
    fprintf(stderr, "cannot write %s\n", out);
    return 1;
  }
  dump_fadul(fp, data);
  dump_hamby(fp, data, "hamby44", "HS44");
  dump_hamby(fp, data, "hamby252", "Hamby");
  return fclose(fp) != 0;
}

/* ---- timing ---- */

/* One `bfm compare` in a new process, one thread, output discarded; wall and user+sys CPU. */
static int run(char *const *argv, const char *wisdom, double *wall, double *cpu)
{
  fflush(stdout); /* else the child inherits and repeats what is buffered */
  double t0 = now();
  pid_t pid = fork();
  if (pid == 0) {
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("BF_FFTW_WISDOM", wisdom, 1);
    if (!freopen("/dev/null", "w", stdout))
      _exit(127);
    execv(BF_BFM_EXE, argv);
    _exit(127);
  }
  int st;
  struct rusage ru;
  if (pid < 0 || wait4(pid, &st, 0, &ru) < 0)
    return -1;
  *wall = now() - t0;
  *cpu = ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + ru.ru_stime.tv_sec + 1e-6 * ru.ru_stime.tv_usec;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int cmp_d(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void timing(const char *label, char *const *argv, int reps)
{
  char wisdom[256];
  snprintf(wisdom, sizeof wisdom, "/tmp/bench_oneshot.%ld.wisdom", (long)getpid());
  double w[2][64], c[2][64];
  for (int warm = 0; warm < 2; warm++)
    for (int k = 0; k < reps; k++) {
      if (!warm)
        unlink(wisdom); /* first run: no wisdom yet (it is written at the end of the run) */
      if (run(argv, wisdom, &w[warm][k], &c[warm][k])) {
        fprintf(stderr, "%s: bfm failed\n", label);
        return;
      }
    }
  unlink(wisdom);
  for (int warm = 0; warm < 2; warm++) {
    qsort(w[warm], reps, sizeof(double), cmp_d);
    qsort(c[warm], reps, sizeof(double), cmp_d);
    printf("%-36s %-9s wall median %.3f s (min %.3f)  CPU median %.3f s\n", label,
           warm ? "warm" : "first-run", w[warm][reps / 2], w[warm][0], c[warm][reps / 2]);
  }
}

int main(int argc, char **argv)
{
  const char *root = getenv("BF_SHARED");
  char data[1100];
  snprintf(data, sizeof data, "%s/data", root ? root : BF_SHARED_DIR);
  if (argc == 3 && !strcmp(argv[1], "--dump"))
    return dump(data, argv[2]);
  int reps = argc > 1 ? atoi(argv[1]) : 5;
  if (reps < 1 || reps > 64) {
    fprintf(stderr, "usage: bench_oneshot [N 1..64] | --dump FILE\n");
    return 2;
  }
  static char fa[1300], fb[1300], ba[8000], bb[8000];
  snprintf(fa, sizeof fa, "%s/cartridge/fadul/Fadul 1-1.x3p", data);
  snprintf(fb, sizeof fb, "%s/cartridge/fadul/Fadul 1-2.x3p", data);
  for (int l = 1; l <= 6; l++) {
    size_t a = strlen(ba), b = strlen(bb);
    snprintf(ba + a, sizeof ba - a, "%s%s/bullet/hamby44/HS44_Barrel1_Bullet1_Land%d.x3p",
             l > 1 ? "," : "", data, l);
    snprintf(bb + b, sizeof bb - b, "%s%s/bullet/hamby44/HS44_Barrel1_Bullet2_Land%d.x3p",
             l > 1 ? "," : "", data, l);
  }
  char *cart[] = {"bfm", "compare", fa, fb, NULL};
  char *bullet[] = {"bfm", "compare", "--kind", "bullet", ba, bb, NULL};
  timing("Fadul 1-1 v 1-2", cart, reps);
  timing("Hamby 44 bullet 1 v 2 (6 lands)", bullet, reps);
  return 0;
}
