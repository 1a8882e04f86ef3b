/* Search prefilter: a small rotation- and translation-invariant descriptor per stored item,
 * cheap enough to score against every item of a store, so that only the best K candidates go
 * on to the full comparison (CMC cells / aligned land signatures).
 *
 * Cartridge cases (after the lead's measured prototype):
 *   processed breech face -> mean removed, NaN -> 0 -> block-averaged to ~`spacing` µm ->
 *   zero-padded to a power of two >= 512 -> |FFT2| -> sampled (bilinear) on a polar grid of
 *   `nrad` log-spaced radii (wavelengths lambda_min..lambda_max µm) x `nang` angles over 0-180°
 *   (|FFT| of a real image is point-symmetric, so 180° is the whole circle) -> log -> each ring
 *   zero-mean unit-norm -> per ring the real FFT over angle (nang/2+1 complex values).
 *   Translation moves only the phase (dropped by |FFT|); rotation shifts every ring's angle
 *   profile by the same amount, so the score is the best angle shift of the ring-summed circular
 *   cross-correlation, computed via the angular spectra: one pair costs nrad*(nang/2+1) complex
 *   multiply-adds and one nang-point inverse FFT. Score in [-1, 1].
 * Bullets: per land the log power spectrum of the signature sampled at `nrad` log-spaced
 *   wavelengths (blambda_min..blambda_max µm), zero-mean unit-norm; the score is the best cyclic
 *   land alignment (phase) of the mean land-to-land correlation. Score in [-1, 1].
 *
 * A descriptor is a bf_feature of the same kind with ny = 1 and nx = bf_prefilter_len(kind),
 * version = BF_PREFILTER_VERSION, params[0] = number of lands (bullet) or 1, params[1] = the
 * spacing actually used (cartridge) — so the store keeps it like any feature, under the kind
 * name bf_prefilter_kind_name(kind) ("cartridge-pf", "bullet-pf"). */
#ifndef BF_PREFILTER_H
#define BF_PREFILTER_H

#include "bf_feature.h"

#define BF_PREFILTER_VERSION 2
#define BF_PF_MAX_LANDS 8 /* bullets with more lands keep the first 8 */

typedef struct bf_prefilter_opts {
  double spacing;     /* cartridge: working spacing after block-averaging, µm */
  double lambda_min;  /* cartridge: shortest wavelength sampled, µm */
  double lambda_max;  /* cartridge: longest wavelength sampled, µm */
  int nrad;           /* radii (cartridge) / wavelengths (bullet) sampled */
  int nang;           /* cartridge: angles over 0..180°, a power of two */
  double blambda_min; /* bullet: shortest wavelength, µm */
  double blambda_max; /* bullet: longest wavelength, µm */
} bf_prefilter_opts;

/* Wavelengths 100-1500 µm were chosen by measurement (bench_search and a sweep over 60-500,
 * 80-500, 100-800, 100-1000, 100-1500, 100-2000 µm, 16-32 radii, 32-128 angles) on the 40 Fadul
 * scans among 1,500 synthetic cases: Fadul KM-vs-KNM AUC 0.93 -> 0.99, mates within the top 50:
 * 96.8 % -> 100 %. The long waves lie past the 500 µm band-pass cut-off, but the Gaussian
 * filter's roll-off leaves them and they carry the breech face's large-scale shape. */
#define BF_PREFILTER_OPTS_INIT \
  {.spacing = 12.5, .lambda_min = 100.0, .lambda_max = 1500.0, .nrad = 24, .nang = 64, \
   .blambda_min = 20.0, .blambda_max = 250.0}

/* Holds the FFTW plans (made once, on the calling thread); describe and score may then be
 * called from many threads at once. */
typedef struct bf_prefilter bf_prefilter;

int bf_prefilter_new(bf_prefilter **out, const bf_prefilter_opts *o); /* o may be NULL */
void bf_prefilter_free(bf_prefilter *pf);

/* Floats in one descriptor of a kind (BF_KIND_CARTRIDGE / BF_KIND_BULLET); 0 for other kinds. */
size_t bf_prefilter_len(const bf_prefilter *pf, int kind);
/* "cartridge-pf" / "bullet-pf": the store's feature-kind name of the descriptors. */
const char *bf_prefilter_kind_name(int kind);

/* The descriptor of one item from its features: one cartridge feature, or the lands of a
 * bullet in land order. A feature with too little valid surface is BF_EQUALITY. */
int bf_prefilter_describe(const bf_prefilter *pf, bf_feature **out, bf_feature *const *feat, int n);

/* Similarity of two descriptors of the same kind (raw float arrays of bf_prefilter_len floats),
 * in [-1, 1]; *shift (may be NULL) gets the best angle in degrees in [0, 180), interpolated
 * between angle bins (cartridge: b turned by -shift or 180 - shift lines up with a; the CMC's
 * full-circle search starts there) or land phase
 * (bullet). Thread-safe, allocation-free. */
double bf_prefilter_score(const bf_prefilter *pf, int kind, const float *a, const float *b,
                          double *shift);

#endif
