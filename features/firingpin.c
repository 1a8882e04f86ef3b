/* Firing-pin impression: the aperture disc of the region finder, levelled, cleaned, band-passed
 * and resampled (bf_firingpin.h). */
#include "bf_firingpin.h"
#include "bf_breechface.h"
#include "bf_error.h"
#include "bf_linalg.h"
#include "bf_select.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Median absolute value of the valid points of z (n points); NaN when none. */
static double median_abs(const float *z, size_t n, float *tmp)
{
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (!isnan(z[i]))
      tmp[m++] = fabsf(z[i]);
  return m ? bf_select_float(tmp, m, m / 2) : NAN;
}

/* Second-order polynomial in x, y (coordinates scaled to the box) fitted to the valid points
 * and subtracted; refitted twice without points beyond 4 median absolute residuals. */
static int level_poly2(bf_surface *s)
{
  int nx = s->nx, ny = s->ny, rc = 0;
  size_t n = (size_t)nx * ny;
  float *res = malloc(n * sizeof *res), *tmp = malloc(n * sizeof *tmp);
  if (!res || !tmp) {
    rc = bf_error_set(BF_ENOMEM, "out of memory levelling the firing pin");
    goto done;
  }
  double cx = 0.5 * (nx - 1), cy = 0.5 * (ny - 1), sc = 2.0 / (nx > ny ? nx : ny), c[6] = {0};
  double lim = INFINITY;
  for (int it = 0; it < 3; it++) {
    double A[6][7] = {{0}}; /* normal equations, the right-hand side in column 6 */
    size_t m = 0;
    for (int y = 0; y < ny; y++)
      for (int x = 0; x < nx; x++) {
        size_t i = (size_t)y * nx + x;
        if (isnan(s->z[i]) || (it && !(fabsf(res[i]) <= lim)))
          continue;
        double u = (x - cx) * sc, v = (y - cy) * sc, t[6] = {1, u, v, u * u, u * v, v * v};
        for (int p = 0; p < 6; p++) {
          for (int q = 0; q < 6; q++)
            A[p][q] += t[p] * t[q];
          A[p][6] += t[p] * s->z[i];
        }
        m++;
      }
    if (m < 12 || bf_solve(&A[0][0], 6, 7, c, 1e-12)) {
      rc = bf_error_set(BF_ENOTFOUND, "firing pin: too few points to level");
      goto done;
    }
    for (int y = 0; y < ny; y++)
      for (int x = 0; x < nx; x++) {
        size_t i = (size_t)y * nx + x;
        double u = (x - cx) * sc, v = (y - cy) * sc;
        res[i] = isnan(s->z[i]) ? NAN
                                : (float)(s->z[i] - (c[0] + c[1] * u + c[2] * v + c[3] * u * u +
                                                     c[4] * u * v + c[5] * v * v));
      }
    lim = 4.0 * median_abs(res, n, tmp);
  }
  memcpy(s->z, res, n * sizeof *res);
done:
  free(res);
  free(tmp);
  return rc;
}

int bf_firingpin_extract(bf_feature **out, const bf_surface *scan, const bf_firingpin_opts *o)
{
  bf_firingpin_opts def = BF_FIRINGPIN_OPTS_INIT;
  bf_breechface_opts bo = BF_BREECHFACE_OPTS_INIT;
  bf_breechface_trace tr;
  bf_surface *box = NULL, *res = NULL;
  bf_feature *f = NULL;
  float *tmp = NULL;
  int rc;
  *out = NULL;
  if (!o)
    o = &def;
  if (!(o->spacing > 0) || !(o->disc_frac > 0 && o->disc_frac <= 1) ||
      !(o->lambda_long > o->lambda_short) || !(o->lambda_short >= 0))
    return bf_error_set(BF_EINVAL, "firing pin: options need spacing > 0, 0 < disc_frac <= 1 "
                                   "and short < long cut-off");
  if (!scan || !scan->z || scan->nx < 16 || scan->ny < 16 || !(scan->dx > 0))
    return bf_error_set(BF_EINVAL, "firing pin: scan is empty or smaller than 16 x 16 points");
  if (bf_breechface_is_processed(scan, &bo))
    return bf_error_set(BF_ENOTFOUND, "firing pin: the scan is already processed (the "
                                      "impression is cut out)");
  if ((rc = bf_breechface_circles(&tr, scan, &bo)))
    return rc;
  double rfp_um = tr.r_fp * scan->dx;
  if (!(tr.r_fp > 0) || rfp_um < o->min_radius)
    return bf_error_set(BF_ENOTFOUND, "firing pin: no firing-pin impression found%s",
                        tr.r_out > 0 ? "" : " (no primer circle either)");
  /* the disc, in a box of the source spacing (block means when much finer than spacing) */
  int k = (int)floor(o->spacing / (2 * scan->dx) + 1e-9);
  if (k < 1)
    k = 1;
  double dk = scan->dx * k, rd = o->disc_frac * tr.r_fp * scan->dx; /* disc radius, µm */
  int half = (int)ceil(rd / dk), side = 2 * half + 1;
  if ((rc = bf_surface_new(&box, side, side, dk, dk)))
    goto done;
  for (int y = 0; y < side; y++)
    for (int x = 0; x < side; x++) {
      double ux = (x - half) * dk, uy = (y - half) * dk; /* µm from the pin centre */
      if (hypot(ux, uy) > rd)
        continue;
      double sx = tr.fcx + ux / scan->dx, sy = tr.fcy + uy / scan->dy;
      double sum = 0;
      int c = 0;
      for (int j = 0; j < k; j++)
        for (int i = 0; i < k; i++) {
          int xi = (int)lround(sx - 0.5 * (k - 1) + i), yi = (int)lround(sy - 0.5 * (k - 1) + j);
          if (xi < 0 || yi < 0 || xi >= scan->nx || yi >= scan->ny)
            continue;
          float v = scan->z[(size_t)yi * scan->nx + xi];
          if (!isnan(v)) {
            sum += v;
            c++;
          }
        }
      if (2 * c >= k * k)
        box->z[(size_t)y * side + x] = (float)(sum / c);
    }
  size_t n = (size_t)side * side, ndisc = 0, nv = 0;
  for (int y = 0; y < side; y++)
    for (int x = 0; x < side; x++)
      ndisc += hypot((x - half) * dk, (y - half) * dk) <= rd;
  for (size_t i = 0; i < n; i++)
    nv += !isnan(box->z[i]);
  if (nv < 100 || (double)nv / ndisc < o->min_valid) {
    rc = bf_error_set(BF_ENOTFOUND, "firing pin: only %.0f %% of the impression was scanned",
                      100.0 * nv / (ndisc ? ndisc : 1));
    goto done;
  }
  if ((rc = level_poly2(box)))
    goto done;

  if (!(tmp = malloc(n * sizeof *tmp))) {
    rc = bf_error_set(BF_ENOMEM, "out of memory cleaning the firing pin");
    goto done;
  }
  double mad = median_abs(box->z, n, tmp);
  for (size_t i = 0; i < n; i++)
    if (!(fabsf(box->z[i]) <= o->outlier_mad * mad * 1.4826))
      box->z[i] = NAN;
  if ((rc = bf_gauss_bandpass(box, o->lambda_short, o->lambda_long)))
    goto done;
  if ((rc = bf_resample(&res, box, o->spacing)))
    goto done;
  bf_surface_stats st;
  bf_surface_stats_get(&st, res);
  n = st.n;
  nv = st.nvalid;
  if (nv < 100) {
    rc = bf_error_set(BF_ENOTFOUND, "firing pin: only %zu valid points left", nv);
    goto done;
  }
  if ((rc = bf_feature_new(&f, BF_KIND_FIRINGPIN, res->nx, res->ny, o->spacing, o->spacing)))
    goto done;
  memcpy(f->z, res->z, n * sizeof *f->z);
  f->valid_fraction = (float)((double)nv / n);
  f->version = BF_FIRINGPIN_VERSION;
  f->params[0] = scan->dx;
  f->params[1] = rd;
  f->params[2] = rfp_um;
  f->params[3] = tr.r_out > 0 ? (tr.fcx - tr.cx) * scan->dx : 0;
  f->params[4] = tr.r_out > 0 ? (tr.fcy - tr.cy) * scan->dy : 0;
  f->params[5] = st.zsd;
  f->params[6] = (double)nv / (M_PI * rd * rd / (o->spacing * o->spacing));
  *out = f;
  f = NULL;
done:
  free(tmp);
  bf_surface_free(box);
  bf_surface_free(res);
  bf_feature_free(f);
  return rc;
}
