/* FFTs on the ground floor: one plan cache, one size rule and one planner lock for every layer
 * (features: band-pass, synthetic scans; engine: CMC, striae, prefilter, search).
 *
 * FFTW's planner is not thread-safe; only the execute functions are. So every planner call in
 * bfm (plan, destroy, wisdom import/export) runs between bf_fft_lock() and bf_fft_unlock() —
 * the one lock, declared here as libvips declares its FFT lock — and a plan, once made, is
 * executed from any thread with the new-array execute functions (fftwf_execute_dft_r2c/c2r).
 * Arrays passed to cached plans must come from fftwf_malloc (the plans assume SIMD alignment).
 *
 * Wisdom: measured plans cost seconds (81 % of a one-shot `bfm compare` of two bullets), so a
 * process may import the per-user wisdom file at start and write it back at the end. */
#ifndef BF_FFT_H
#define BF_FFT_H

#include <fftw3.h>
#include <stddef.h>

typedef struct bf_fft_plan {
  int n0, n1;          /* rows, columns (n0 = 1 for 1D) */
  fftwf_plan r2c, c2r; /* real n0 x n1 <-> complex n0 x (n1/2+1), out of place, unnormalised */
} bf_fft_plan;

/* The cached measured plan pair for a 2D real transform of n0 rows x n1 columns (n0 = 1: 1D of
 * n1): for sizes fixed by the options (CMC cells, striae, the screen), planned once per process
 * (FFTW_MEASURE, or taken from wisdom). Thread-safe; NULL with bf_error_last() set when FFTW
 * cannot plan. Never free the result. BF_FFTW_ESTIMATE in the environment makes it estimate. */
const bf_fft_plan *bf_fft_plan_get(int n0, int n1);
/* The same with an estimated plan (FFTW_ESTIMATE: no timing runs), for sizes that follow each
 * scan's extent (band-pass, prefilter, synthetic fields), where measuring every size would cost
 * more than the transforms. Without wisdom an estimated plan is deterministic. */
const bf_fft_plan *bf_fft_plan_estimate(int n0, int n1);

/* The inverse of an n0 x n1 real 2D transform evaluated on the rows lo..lo+cnt-1 only (taken
 * modulo n0: lo may be negative), for a correlation whose peak is sought in those rows (the
 * search's screen: rows -s..s; the CMC: the rows of the shifts that keep a cell inside its
 * region): the backward transform along the columns of all n1/2+1 columns (in place), then the
 * row transforms of only the cnt rows wanted instead of all n0 (1.3-2.0x faster than the full
 * c2r at n = 96-240 for the screen's 41 rows: bench_kernels; the values are the full
 * transform's). Requires 1 <= cnt <= n0. Cached and measured like bf_fft_plan_get; thread-safe;
 * never free the result. */
typedef struct bf_fft_band {
  int n0, n1, lo, cnt;
  fftwf_plan cols; /* in place: n0 x (n1/2+1) complex, backward along each column */
  fftwf_plan rows; /* cnt x (n1/2+1) complex -> cnt x n1 real */
} bf_fft_band;
const bf_fft_band *bf_fft_band_get(int n0, int n1, int lo, int cnt);
/* F (n0 x (n1/2+1), fftwf_malloc'd; overwritten) -> out[(y - lo) * n1 + x] = the unnormalised
 * inverse at row y (lo..lo+cnt-1, row y < 0 being n0 + y) and column x (0..n1-1); rowbuf:
 * cnt x (n1/2+1) complex scratch (unused, may be NULL, when 0 <= lo), out: cnt x n1 floats,
 * both fftwf_malloc'd. */
void bf_fft_band_inverse(const bf_fft_band *b, fftwf_complex *F, fftwf_complex *rowbuf, float *out);

/* out = a conj(b) over n complex values (out may be a): the spectrum of the correlation
 * sum_x a(x + s) b(x). Vectorised, with an AVX2 clone where the CPU has it; neither uses FMA, so
 * each product rounds alike on every machine. The inner loop of the screen and of the CMC. */
void bf_fft_cross(fftwf_complex *out, const fftwf_complex *a, const fftwf_complex *b, size_t n);

/* The one size rule: smallest n' >= n whose factors are only 2, 3, 5 and 7 and that is a
 * multiple of 4 (FFTW's real transforms of odd sizes are much slower: 105 x 105 r2c+c2r took
 * ~1.7x the time of 108 x 108). */
int bf_fft_fast_size(int n);
/* Smallest n' >= n whose factors are only 2, 3, 5 and 7 (the building block of the rule). */
int bf_fft_good_size(int n);

/* The one planner lock (recursive-free: never call a bf_fft_* function while holding it). For
 * code that must call the FFTW planner itself (plans the cache cannot hold, e.g. unaligned). */
void bf_fft_lock(void);
void bf_fft_unlock(void);

/* ---- wisdom ---- */
/* The per-user wisdom file into buf: $BF_FFTW_WISDOM if set (empty or "off" disables wisdom:
 * returns BF_ENOTFOUND), else $XDG_CACHE_HOME/bfm/wisdom-fftwf, else ~/.cache/bfm/wisdom-fftwf. */
int bf_fft_wisdom_path(char *buf, size_t size);
/* Imports wisdom from path (NULL: bf_fft_wisdom_path). A missing file or disabled wisdom is 0;
 * a file that is not ours to trust (not a regular file, a symlink, another owner, too large) or
 * that FFTW rejects (corrupt, another FFTW version or precision) is ignored: the current wisdom
 * is kept and BF_EFORMAT returned with a message naming the file, for a one-line note. */
int bf_fft_wisdom_load(const char *path);
/* Writes the wisdom back to path (NULL: the default) if this process measured a plan it did not
 * have wisdom for: a temporary file made with O_EXCL|O_NOFOLLOW beside it, then renamed over it,
 * so a reader never sees half a file. The folder is created (0700) when missing. 0 when nothing
 * new or wisdom disabled; BF_EIO with a message on failure (the old file stays). */
int bf_fft_wisdom_save(const char *path);

/* Destroys every cached plan (end of program; no plan may be in use). */
void bf_fft_cleanup(void);

#endif
