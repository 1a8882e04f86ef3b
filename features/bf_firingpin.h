/* Cartridge cases, second mark: the firing-pin impression, from a raw scan to a feature.
 *
 * Pipeline (every length in micrometres):
 *  1. region: the firing-pin circle of the breech-face region finder (bf_breechface_circles:
 *     the impression's steep wall, where scanners lose points); the disc of `disc_frac` of its
 *     radius about its centre is kept (the floor, clear of the wall).
 *  2. finer than half `spacing`: block means down to between 1/2 and 1 of it.
 *  3. level: second-order polynomial by least squares, refitted twice without points beyond
 *     4 median absolute residuals (the impression's bowl is the firing pin's shape, the same
 *     for every pin of a model; the firearm's marks are finer).
 *  4. outliers: points beyond `outlier_mad` median absolute deviations are dropped (spikes of
 *     the optical scanner); drop-outs stay missing.
 *  5. band-pass: Gaussian regression filter lambda_short..lambda_long (bf_gauss_bandpass).
 *  6. resample to `spacing`, square box centred on the pin, missing outside the disc.
 * A processed scan (aperture cut out) or one without a firing-pin circle has no impression:
 * BF_ENOTFOUND, nothing else wrong.
 *
 * bf_feature.params[] of a firing-pin feature (kind BF_KIND_FIRINGPIN):
 *  [0] spacing of the source scan, µm   [1] radius of the kept disc, µm
 *  [2] firing-pin circle radius, µm     [3],[4] pin centre - primer centre (x, y), µm (0: none)
 *  [5] standard deviation of the processed heights, µm
 *  [6] fraction of the disc that is valid
 */
#ifndef BF_FIRINGPIN_H
#define BF_FIRINGPIN_H

#include "bf_feature.h"
#include "bf_surface.h"

#define BF_FIRINGPIN_VERSION 1

typedef struct bf_firingpin_opts {
  double spacing;      /* working spacing, µm */
  double disc_frac;    /* kept disc radius / firing-pin circle radius */
  double lambda_short; /* band-pass short cut-off, µm (0: none) */
  double lambda_long;  /* band-pass long cut-off, µm */
  double outlier_mad;  /* points beyond this many MADs after levelling are dropped */
  double min_radius;   /* a firing-pin circle smaller than this (µm) is no impression */
  double min_valid;    /* fewer valid points than this fraction of the disc: BF_ENOTFOUND */
} bf_firingpin_opts;

#define BF_FIRINGPIN_OPTS_INIT \
  {.spacing = 6.25, .disc_frac = 0.8, .lambda_short = 16.0, .lambda_long = 250.0, \
   .outlier_mad = 6.0, .min_radius = 150.0, .min_valid = 0.2}

/* The firing-pin feature of a raw cartridge scan (o NULL: defaults). BF_ENOTFOUND (message set)
 * when the scan shows no usable impression; BF_EINVAL / BF_ENOMEM otherwise. */
int bf_firingpin_extract(bf_feature **out, const bf_surface *scan, const bf_firingpin_opts *o);

#endif
