/* Plan cache: a small table guarded by one named OpenMP lock, also used by other FFTW planners. */
#include "bf_fft.h"
#include "bf_error.h"

#include <stdlib.h>

/* Plans are measured (once per size, a fraction of a second) unless BF_FFTW_ESTIMATE is set,
 * which sanitizer runs use to keep start-up short. */
static unsigned planner_flags(void)
{
  return getenv("BF_FFTW_ESTIMATE") ? FFTW_ESTIMATE : FFTW_MEASURE;
}

#define BF_FFT_MAX_PLANS 64

static bf_fft_plan *cache[BF_FFT_MAX_PLANS];
static int ncache;

int bf_fft_good_size(int n)
{
  for (;; n++) {
    int m = n;
    while (m % 2 == 0) m /= 2;
    while (m % 3 == 0) m /= 3;
    while (m % 5 == 0) m /= 5;
    while (m % 7 == 0) m /= 7;
    if (m == 1)
      return n;
  }
}

int bf_fft_fast_size(int n)
{
  for (n = bf_fft_good_size(n < 4 ? 4 : n); n % 4; n = bf_fft_good_size(n + 1))
    ;
  return n;
}

const bf_fft_plan *bf_fft_plan_get(int n0, int n1)
{
  bf_fft_plan *p = NULL;
  int full = 0;
  if (n0 < 1 || n1 < 2) {
    bf_error_set(BF_EINVAL, "FFT size %d x %d out of range", n0, n1);
    return NULL;
  }
  /* FFTW's planner is not thread-safe: every plan is made inside this one named lock. */
#pragma omp critical(bf_fftw_plan)
  {
    for (int i = 0; i < ncache; i++)
      if (cache[i]->n0 == n0 && cache[i]->n1 == n1)
        p = cache[i];
    if (!p && ncache < BF_FFT_MAX_PLANS) {
      size_t nr = (size_t)n0 * n1, nc = (size_t)n0 * (n1 / 2 + 1);
      float *r = fftwf_alloc_real(nr);
      fftwf_complex *c = fftwf_alloc_complex(nc);
      bf_fft_plan *q = calloc(1, sizeof *q);
      if (r && c && q) {
        q->n0 = n0;
        q->n1 = n1;
        if (n0 == 1) {
          q->r2c = fftwf_plan_dft_r2c_1d(n1, r, c, planner_flags());
          q->c2r = fftwf_plan_dft_c2r_1d(n1, c, r, planner_flags());
        } else {
          q->r2c = fftwf_plan_dft_r2c_2d(n0, n1, r, c, planner_flags());
          q->c2r = fftwf_plan_dft_c2r_2d(n0, n1, c, r, planner_flags());
        }
        if (q->r2c && q->c2r) {
          cache[ncache++] = q;
          p = q;
        } else {
          if (q->r2c) fftwf_destroy_plan(q->r2c);
          if (q->c2r) fftwf_destroy_plan(q->c2r);
          free(q);
        }
      } else
        free(q);
      fftwf_free(r);
      fftwf_free(c);
    } else if (!p)
      full = 1;
  }
  if (!p)
    bf_error_set(full ? BF_ELIMIT : BF_ENOMEM, "no FFT plan for %d x %d%s", n0, n1,
                 full ? " (plan cache full)" : "");
  return p;
}

void bf_fft_cleanup(void)
{
#pragma omp critical(bf_fftw_plan)
  {
    for (int i = 0; i < ncache; i++) {
      fftwf_destroy_plan(cache[i]->r2c);
      fftwf_destroy_plan(cache[i]->c2r);
      free(cache[i]);
    }
    ncache = 0;
  }
}
