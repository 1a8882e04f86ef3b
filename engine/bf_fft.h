/* FFTW plans cached per size: created once under the lock every FFTW planner call in bfm takes
 * (`#pragma omp critical(bf_fftw_plan)`), executed from many threads with the
 * new-array execute functions. Arrays passed to the plans must come from fftwf_malloc. */
#ifndef BF_FFT_H
#define BF_FFT_H

#include <fftw3.h>

typedef struct bf_fft_plan {
  int n0, n1;         /* rows, columns (n0 = 1 for 1D) */
  fftwf_plan r2c, c2r; /* real n0 x n1 <-> complex n0 x (n1/2+1), unnormalised */
} bf_fft_plan;

/* The cached plan pair for a 2D real transform of n0 rows x n1 columns (n0 = 1: 1D of n1).
 * Thread-safe; NULL with bf_error_last() set when FFTW cannot plan. Never free the result. */
const bf_fft_plan *bf_fft_plan_get(int n0, int n1);
/* Smallest n' >= n whose factors are only 2, 3, 5 and 7 (fast FFTW sizes). */
int bf_fft_good_size(int n);
/* Smallest n' >= n that is 2,3,5,7-smooth and a multiple of 4: FFTW's real transforms of odd
 * sizes are much slower (105 x 105 r2c+c2r took ~1.7x the time of 108 x 108). */
int bf_fft_fast_size(int n);
/* Destroys every cached plan (end of program; no plan may be in use). */
void bf_fft_cleanup(void);

#endif
