/* The inner loops every search runs, timed on their own (one thread, in-process):
 *  - the screen's inverse FFT: the full P x P c2r against bf_fft_band_inverse (the 2S+1 rows of
 *    the shifts searched, S = 20 as in the screen), with the largest difference of the two;
 *  - the prefilter's cartridge score (bf_prefilter_score) on random descriptors: every search
 *    scores each stored descriptor once per query.
 *
 *   bench_kernels [--reps N]
 * Prints figures; asserts nothing. */
#include "bf_error.h"
#include "bf_fft.h"
#include "bf_feature.h"
#include "bf_prefilter.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned lcg(unsigned *s)
{
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}

static int band(int reps)
{
  const int S = 20, sizes[] = {96, 120, 144, 168, 192, 216, 240};
  printf("screen inverse FFT, rows +-%d of P x P (us per transform; the spectrum copied in both):\n", S);
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    int P = sizes[k], H = P / 2 + 1, R = 2 * S + 1;
    const bf_fft_plan *p = bf_fft_plan_get(P, P);
    const bf_fft_band *b = bf_fft_band_get(P, P, -S, R);
    float *img = fftwf_alloc_real((size_t)P * P), *full = fftwf_alloc_real((size_t)P * P);
    float *out = fftwf_alloc_real((size_t)R * P);
    fftwf_complex *F = fftwf_alloc_complex((size_t)P * H), *G = fftwf_alloc_complex((size_t)P * H);
    fftwf_complex *rb = fftwf_alloc_complex((size_t)R * H);
    if (!p || !b || !img || !full || !out || !F || !G || !rb) {
      fprintf(stderr, "bench_kernels: %s\n", bf_error_last());
      return 1;
    }
    unsigned s = 1;
    for (int i = 0; i < P * P; i++)
      img[i] = (float)lcg(&s) / 16777216.0f - 0.5f;
    fftwf_execute_dft_r2c(p->r2c, img, F);
    double t0 = omp_get_wtime();
    for (int r = 0; r < reps; r++) {
      memcpy(G, F, sizeof(fftwf_complex) * P * H);
      fftwf_execute_dft_c2r(p->c2r, G, full);
    }
    double t1 = omp_get_wtime();
    for (int r = 0; r < reps; r++) {
      memcpy(G, F, sizeof(fftwf_complex) * P * H);
      bf_fft_band_inverse(b, G, rb, out);
    }
    double t2 = omp_get_wtime(), worst = 0;
    for (int y = -S; y <= S; y++)
      for (int x = 0; x < P; x++) {
        double d = fabs(out[(size_t)(y + S) * P + x] - full[(size_t)((y + P) % P) * P + x]);
        worst = d > worst ? d : worst;
      }
    printf("  P = %3d: full %6.1f us, band %6.1f us (%.2fx); largest difference %.2g\n", P,
           (t1 - t0) / reps * 1e6, (t2 - t1) / reps * 1e6, (t1 - t0) / (t2 - t1), worst);
    fftwf_free(img), fftwf_free(full), fftwf_free(out), fftwf_free(F), fftwf_free(G), fftwf_free(rb);
  }
  return 0;
}

static int prefilter(int reps)
{
  bf_prefilter *pf = NULL;
  if (bf_prefilter_new(&pf, NULL)) {
    fprintf(stderr, "bench_kernels: %s\n", bf_error_last());
    return 1;
  }
  size_t L = bf_prefilter_len(pf, BF_KIND_CARTRIDGE);
  int n = 20000;
  float *d = malloc(sizeof(float) * L * n);
  if (!d)
    return 1;
  unsigned s = 1;
  for (size_t i = 0; i < L * n; i++)
    d[i] = (float)lcg(&s) / 16777216.0f - 0.5f;
  double sum = 0, t0 = omp_get_wtime();
  int np = 0;
  for (int r = 0; r < reps / 100 + 1; r++)
    for (int i = 1; i < n; i++, np++)
      sum += bf_prefilter_score(pf, BF_KIND_CARTRIDGE, d, d + (size_t)i * L, NULL);
  double t = omp_get_wtime() - t0;
  printf("prefilter cartridge score (%zu floats): %.3f us per pair over %d pairs (sum %.6g)\n", L,
         t / np * 1e6, np, sum);
  free(d);
  bf_prefilter_free(pf);
  return 0;
}

int main(int argc, char **argv)
{
  int reps = 2000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc && atoi(argv[i + 1]) > 0)
      reps = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_kernels [--reps N]\n");
      return 2;
    }
  }
  omp_set_num_threads(1);
  bf_fft_wisdom_load(NULL);
  int rc = band(reps) || prefilter(reps);
  bf_fft_cleanup();
  return rc;
}
