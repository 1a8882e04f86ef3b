/* Bullet land scans -> striation signatures (see bf_bullet.h for the pipeline). */
#include "bf_bullet.h"
#include "bf_error.h"
#include "bf_linalg.h"
#include "bf_select.h"
#include "bf_simd.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BULLET_VERSION 1


void bf_bullet_trace_clear(bf_bullet_trace *t)
{
  if (!t)
    return;
  free(t->crosscut);
  free(t->curve);
  memset(t, 0, sizeof *t);
}

/* isfinite by the exponent bits, and v or 0 when it is not: no compare or branch, so the loops
 * using them vectorise. */
static inline int fin(float v)
{
  uint32_t u;
  memcpy(&u, &v, sizeof u);
  return (u & 0x7f800000u) != 0x7f800000u;
}

static inline float or0(float v)
{
  uint32_t u;
  memcpy(&u, &v, sizeof u);
  u &= -(uint32_t)((u & 0x7f800000u) != 0x7f800000u);
  memcpy(&v, &u, sizeof v);
  return v;
}

/* Orientation (see bf_bullet_orientation) and, when nvalid is given, the count of valid points,
 * in one pass over the rows: the scan is read from memory once. */
BF_SIMD_CLONES
static int orientation_count(const bf_surface *s, double *ratio, size_t *nvalid)
{
  /* Second differences ignore the bullet's curvature slope; striae make them large across. */
  double sx = 0, sy = 0, nxv = 0, nyv = 0;
  int step = s->ny > 400 ? s->ny / 200 : 1; /* a sample of rows is plenty */
  const int nx = s->nx;
  size_t count = 0;
  for (int y = 0; y < s->ny; y++) {
    const float *row = s->z + (size_t)y * nx;
    if (nvalid) {
      int c = 0; /* isfinite by the exponent bits, in 32-bit lanes */
#pragma omp simd reduction(+ : c)
      for (int x = 0; x < nx; x++)
        c += fin(row[x]);
      count += (size_t)c;
    }
    if (y < 1 || y + 1 >= s->ny || (y - 1) % step)
      continue;
    const float *up = row - nx, *dn = row + nx;
#pragma omp simd reduction(+ : sx, sy, nxv, nyv)
    for (int x = 1; x < nx - 1; x++) {
      /* quiet compares (no FP exception on NaN) so the loop vectorises; |d| <= DBL_MAX and
       * d - d == 0 are both isfinite(d) */
      double a = fabs(row[x - 1] - 2.0 * row[x] + row[x + 1]);
      double b = fabs(up[x] - 2.0 * row[x] + dn[x]);
      sx += islessequal(a, DBL_MAX) ? a : 0;
      nxv += a - a == 0;
      sy += islessequal(b, DBL_MAX) ? b : 0;
      nyv += b - b == 0;
    }
  }
  if (nvalid)
    *nvalid = count;
  if (nxv == 0 || nyv == 0 || sx <= 0 || sy <= 0) {
    if (ratio)
      *ratio = 1;
    return s->nx >= s->ny ? BF_STRIAE_Y : BF_STRIAE_X; /* scans are wider across the striae */
  }
  sx /= nxv;
  sy /= nyv;
  if (ratio)
    *ratio = sx > sy ? sx / sy : sy / sx;
  /* large change along Y = the profile runs along Y = striae along X */
  return sy > sx ? BF_STRIAE_X : BF_STRIAE_Y;
}

int bf_bullet_orientation(const bf_surface *s, double *ratio)
{
  return orientation_count(s, ratio, NULL);
}

/* Averages the band [s0, s1) of rows along the striae into a crosscut of np points; acc is
 * scratch for 2 np doubles. Loops run along the rows in memory and have no branches, to vectorise. */
BF_SIMD_CLONES
static void band_profile(float *out, double *acc, const bf_surface *s, int orient, int s0, int s1)
{
  if (orient == BF_STRIAE_Y) { /* profile along X, striae along Y: average rows */
    int np = s->nx;
    double *sum = acc, *cnt = acc + np;
    for (int p = 0; p < np; p++)
      sum[p] = cnt[p] = 0;
    for (int r = s0; r < s1; r++) {
      const float *row = s->z + (size_t)r * s->nx;
#pragma omp simd
      for (int p = 0; p < np; p++) {
        sum[p] += or0(row[p]);
        cnt[p] += fin(row[p]);
      }
    }
    for (int p = 0; p < np; p++)
      out[p] = cnt[p] > 0 && cnt[p] * 4 >= (s1 - s0) ? (float)(sum[p] / cnt[p]) : NAN;
  } else { /* profile along Y, striae along X: average within each row */
    int np = s->ny;
    for (int p = 0; p < np; p++) {
      const float *row = s->z + (size_t)p * s->nx;
      double sum = 0, n = 0;
#pragma omp simd reduction(+ : sum, n)
      for (int c = s0; c < s1; c++) {
        sum += or0(row[c]);
        n += fin(row[c]);
      }
      out[p] = n > 0 && n * 4 >= (s1 - s0) ? (float)(sum / n) : NAN;
    }
  }
}

/* The weights as the definition reads, one output at a time: the path taken when memory for the
 * fast one is short (so the weights are computed where used, not kept in an array). */
static void lowpass_direct(float *out, const float *in, int n, int h, double w)
{
  for (int i = 0; i < n; i++) {
    double sw = 0, sz = 0;
    int lo = i - h < 0 ? 0 : i - h, hi = i + h >= n ? n - 1 : i + h;
    for (int j = lo; j <= hi; j++)
      if (isfinite(in[j])) {
        double k = exp(-M_PI * ((j - i) / w) * ((j - i) / w));
        sw += k;
        sz += k * in[j];
      }
    out[i] = (sw > 0.25 * w && isfinite(in[i])) ? (float)(sz / sw) : NAN;
  }
}

BF_SIMD_CLONES
void bf_bullet_gauss_lowpass(float *out, const float *in, int n, double dx, double lambda_um)
{
  /* ISO 16610-21: s(x) = exp(-pi (x / (alpha lambda))^2), alpha = sqrt(ln 2 / pi) */
  const double alpha = 0.4697186393498257;
  double w = alpha * lambda_um / dx; /* in points */
  /* exp(-pi*1.44) ~ 1e-2: 99.9 % of the weight. Taps beyond the profile only ever meet padding,
   * so the half-width is capped at n: a tiny or broken spacing cannot size anything absurd. */
  double hw = ceil(w * 1.2);
  if (!(dx > 0) || !isfinite(w) || n <= 0) {
    for (int i = 0; i < n; i++)
      out[i] = NAN;
    return;
  }
  int h = hw > n ? n : (int)hw;
  if (h < 1) {
    memcpy(out, in, (size_t)n * sizeof *out);
    return;
  }
  /* only points from the first to the last valid one can keep an estimate, and only they count */
  int i0 = 0, i1 = n - 1;
  while (i0 < n && !isfinite(in[i0]))
    i0++;
  while (i1 >= i0 && !isfinite(in[i1]))
    i1--;
  for (int i = 0; i < i0; i++)
    out[i] = NAN;
  for (int i = i1 + 1; i < n; i++)
    out[i] = NAN;
  if (i0 > i1)
    return;
  int m = i1 - i0 + 1, mp = m + 2 * h;
  /* Values and their 0/1 validity, zero-padded by h both sides (beyond the ends = missing), so
   * every output is the same plain sum of 2h+1 terms. Summing one tap distance for all outputs at a
   * time (outputs independent, the pair x[i-d] + x[i+d] sharing one weight) vectorises; the sums are
   * those of the direct form in another order (differences ~1e-16 relative). */
  double *buf = malloc(((size_t)2 * mp + 2 * (size_t)m + h + 1) * sizeof *buf + (size_t)m);
  if (!buf) {
    lowpass_direct(out + i0, in + i0, m, h, w);
    return;
  }
  double *kern = buf, *xv = kern + h + 1, *mv = xv + mp, *sz = mv + mp, *sw = sz + m;
  for (int k = 0; k <= h; k++)
    kern[k] = exp(-M_PI * (k / w) * (k / w));
  unsigned char *part = (unsigned char *)(sw + m);
  for (int i = 0; i < h; i++)
    xv[i] = mv[i] = xv[mp - 1 - i] = mv[mp - 1 - i] = 0;
  for (int i = 0; i < m; i++) {
    float v = in[i0 + i];
    int ok = isfinite(v);
    xv[h + i] = ok ? v : 0;
    mv[h + i] = ok;
  }
  for (int i = 0; i < m; i++)
    sz[i] = kern[0] * xv[h + i];
  for (int d = 1; d <= h; d++) {
    const double kd = kern[d], *xl = xv + h - d, *xr = xv + h + d;
#pragma omp simd
    for (int i = 0; i < m; i++)
      sz[i] += kd * (xl[i] + xr[i]);
  }
  /* The validity sums: where the window is all valid it is the sum of all weights (made in the
   * loop's own order, so the same number); the loop runs only near missing points and the ends. */
  double full = kern[0];
  for (int d = 1; d <= h; d++)
    full += kern[d] * (1.0 + 1.0);
  for (int i = 0, last = -1; i < m; i++) {
    if (!mv[h + i])
      last = i;
    part[i] = i - last <= h;
  }
  for (int i = m - 1, next = m; i >= 0; i--) {
    if (!mv[h + i])
      next = i;
    part[i] |= next - i <= h;
  }
  for (int r0 = 0; r0 < m;) {
    if (!part[r0]) {
      sw[r0++] = full;
      continue;
    }
    int r1 = r0;
    while (r1 < m && part[r1])
      r1++;
    for (int i = r0; i < r1; i++)
      sw[i] = kern[0] * mv[h + i];
    for (int d = 1; d <= h; d++) {
      const double kd = kern[d], *ml = mv + h - d, *mr = mv + h + d;
#pragma omp simd
      for (int i = r0; i < r1; i++)
        sw[i] += kd * (ml[i] + mr[i]);
    }
    r0 = r1;
  }
  /* a point with too little support nearby keeps no estimate */
  for (int i = 0; i < m; i++)
    out[i0 + i] = (sw[i] > 0.25 * w && isfinite(in[i0 + i])) ? (float)(sz[i] / sw[i]) : NAN;
  free(buf);
}

/* Robust (Tukey bisquare IRLS) quadratic fit of z over [a, b]; writes c0 + c1 t + c2 t^2 with
 * t = (i - mid) / half. Returns 0, or -1 when fewer than 10 valid points. */
static int robust_quad(double c[3], const float *z, int a, int b, int iters)
{
  double mid = 0.5 * (a + b), half = 0.5 * (b - a) + 1;
  int len = b - a + 1, nv = 0, rc = -1;
  /* the valid points once, in order, with their abscissae: the iterations run without tests */
  double *tv = malloc((size_t)len * (2 * sizeof *tv + sizeof(float)));
  if (!tv)
    return -1;
  double *zv = tv + len;
  float *res = (float *)(zv + len);
  for (int i = a; i <= b; i++)
    if (isfinite(z[i])) {
      tv[nv] = (i - mid) / half;
      zv[nv++] = z[i];
    }
  if (nv < 10)
    goto done;
  double scale = 0;
  c[0] = c[1] = c[2] = 0;
  for (int it = 0; it <= iters; it++) {
    /* normal equations of w (1, t, t^2): m[p][q] = sum (w v_p) v_q, as 10 distinct sums */
    double s00 = 0, s01 = 0, s02 = 0, s11 = 0, s12 = 0, s21 = 0, s22 = 0, s03 = 0, s13 = 0, s23 = 0;
    for (int k = 0; k < nv; k++) {
      double t = tv[k], w = 1;
      if (it > 0) {
        double r = (zv[k] - (c[0] + c[1] * t + c[2] * t * t)) / (4.685 * scale);
        w = fabs(r) >= 1 ? 0 : (1 - r * r) * (1 - r * r);
      }
      double t2 = t * t, w1 = w * t, w2 = w * t2;
      s00 += w;
      s01 += w1;
      s02 += w2;
      s11 += w1 * t;
      s12 += w1 * t2;
      s21 += w2 * t;
      s22 += w2 * t2;
      s03 += w * zv[k];
      s13 += w1 * zv[k];
      s23 += w2 * zv[k];
    }
    double m[3][4] = {{s00, s01, s02, s03}, {s01, s11, s12, s13}, {s02, s21, s22, s23}};
    if (bf_solve(&m[0][0], 3, 4, c, 1e-12))
      goto done;
    if (it == iters) /* the scale only weights a next iteration */
      break;
    /* robust scale: MAD of the residuals, from a histogram-free selection */
    for (int k = 0; k < nv; k++) {
      double t = tv[k];
      res[k] = (float)fabs(zv[k] - (c[0] + c[1] * t + c[2] * t * t));
    }
    scale = 1.4826 * bf_select_float(res, (size_t)nv, (size_t)(nv / 2));
    if (scale <= 1e-9)
      break;
  }
  rc = 0;
done:
  free(tv);
  return rc;
}

static double quad_at(const double c[3], int i, int a, int b)
{
  double mid = 0.5 * (a + b), half = 0.5 * (b - a) + 1, t = (i - mid) / half;
  return c[0] + c[1] * t + c[2] * t * t;
}

/* Pearson correlation of two arrays over the points valid in both. */
static double pearson(const float *a, const float *b, int n)
{
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  int m = 0;
  for (int i = 0; i < n; i++)
    if (isfinite(a[i]) && isfinite(b[i])) {
      sa += a[i];
      sb += b[i];
      saa += (double)a[i] * a[i];
      sbb += (double)b[i] * b[i];
      sab += (double)a[i] * b[i];
      m++;
    }
  if (m < 10)
    return 0;
  double va = saa - sa * sa / m, vb = sbb - sb * sb / m;
  if (va <= 0 || vb <= 0)
    return 0;
  return (sab - sa * sb / m) / sqrt(va * vb);
}

/* Band-passes the middle 60 % of a crosscut in place (for the stability test). */
static void crosscut_bandpass(float *prof, float *tmp, int np, double dx, const bf_bullet_opts *o)
{
  int a = np / 5, b = np - np / 5;
  for (int i = 0; i < np; i++)
    if (i < a || i >= b)
      prof[i] = NAN;
  /* the bullet's form is the same in every band: take it out or it alone makes bands agree */
  double c[3];
  if (robust_quad(c, prof, a, b - 1, 0) == 0)
    for (int i = a; i < b; i++)
      if (isfinite(prof[i]))
        prof[i] -= (float)quad_at(c, i, a, b - 1);
  bf_bullet_gauss_lowpass(tmp, prof, np, dx, o->lambda_c_um);
  for (int i = 0; i < np; i++)
    tmp[i] = prof[i] - tmp[i];
  bf_bullet_gauss_lowpass(prof, tmp, np, dx, o->lambda_s_um);
}

/* Shallow groove shoulders: the crosscut over [a, b] modelled as the land's quadratic plus a
 * step up beyond a left position bl (points before it) and beyond a right one br (points after
 * it); least squares picks the steps, searched side by side (three rounds) with prefix sums, so
 * the land curve is fitted between the shoulders (interpolated, not extrapolated from the middle
 * half, whose errors at the ends are as large as a shallow shoulder). Only sides with search[]
 * set get a step, searched over the points of [a, b] outside the middle [qa, qb] and at least
 * min_w from the end; h[] gets the step heights (0 when not searched), pos[] the positions. */
static int shoulder_steps(const float *z, int a, int b, int qa, int qb, int min_w, const int search[2],
                          int pos[2], double h[2])
{
  int len = b - a + 1, nv = 0, rc = -1;
  h[0] = h[1] = 0;
  pos[0] = a;
  pos[1] = b;
  if (len < 20)
    return -1;
  /* per valid point: index, and prefix sums of 1, t, t^2, z (for the step columns) */
  int *ix = malloc(sizeof *ix * (size_t)len);
  double *ps = malloc(sizeof *ps * 4 * (size_t)(len + 1));
  if (!ix || !ps)
    goto done;
  double mid = 0.5 * (a + b), half = 0.5 * (b - a) + 1;
  double S[5] = {0}, Z[3] = {0}, zz = 0;
  ps[0] = ps[1] = ps[2] = ps[3] = 0;
  for (int i = a; i <= b; i++)
    if (isfinite(z[i])) {
      double t = (i - mid) / half, t2 = t * t, v = z[i];
      ix[nv] = i;
      S[0] += 1, S[1] += t, S[2] += t2, S[3] += t2 * t, S[4] += t2 * t2;
      Z[0] += v, Z[1] += v * t, Z[2] += v * t2, zz += v * v;
      double *q = ps + 4 * (size_t)(nv + 1), *r = q - 4;
      q[0] = r[0] + 1, q[1] = r[1] + t, q[2] = r[2] + t2, q[3] = r[3] + v;
      nv++;
    }
  if (nv < 20)
    goto done;
  /* candidate ranges in valid-point counts: left step = the first ml points, right step = the
   * points from mr on */
  int l_lo = nv, l_hi = 0, r_lo = nv, r_hi = 0;
  for (int m = 0; m < nv; m++) {
    if (ix[m] - a >= min_w && ix[m] < qa) {
      if (m < l_lo)
        l_lo = m;
      l_hi = m;
    }
    if (b - ix[m] >= min_w && ix[m] > qb) {
      if (m < r_lo)
        r_lo = m;
      r_hi = m;
    }
  }
  int ml = 0, mr = nv; /* current steps: none */
  for (int round = 0; round < 3; round++)
    for (int side = 0; side < 2; side++) {
      if (!search[side] || (side ? r_lo > r_hi : l_lo > l_hi))
        continue;
      int lo = side ? r_lo : l_lo, hi = side ? r_hi : l_hi, best_m = side ? mr : ml;
      double best = INFINITY, best_h = 0;
      for (int m = lo; m <= hi; m++) {
        int cl = side ? ml : m, cr = side ? m : mr; /* left step: points [0, cl); right: [cr, nv) */
        const double *L = ps + 4 * (size_t)cl, *R0 = ps + 4 * (size_t)cr, *T = ps + 4 * (size_t)nv;
        double R[4] = {T[0] - R0[0], T[1] - R0[1], T[2] - R0[2], T[3] - R0[3]};
        double M[5][6] = {{S[0], S[1], S[2], L[0], R[0], Z[0]},
                          {S[1], S[2], S[3], L[1], R[1], Z[1]},
                          {S[2], S[3], S[4], L[2], R[2], Z[2]},
                          {L[0], L[1], L[2], L[0], 0, L[3]},
                          {R[0], R[1], R[2], 0, R[0], R[3]}};
        double rhs[5] = {Z[0], Z[1], Z[2], L[3], R[3]}, x[5];
        int k = 5;
        if (cr >= nv) { /* no right step: drop its column */
          k = 4;
          M[0][4] = Z[0], M[1][4] = Z[1], M[2][4] = Z[2], M[3][4] = L[3];
        }
        if (cl <= 0) { /* no left step: drop column 3 */
          for (int r = 0; r < 5; r++)
            for (int c = 3; c < 5; c++)
              M[r][c] = M[r][c + 1];
          for (int c = 0; c < 6; c++)
            M[3][c] = M[4][c];
          rhs[3] = rhs[4];
          k--;
        }
        if (k < 4 || bf_solve(&M[0][0], k, 6, x, 1e-12))
          continue;
        double rss = zz;
        for (int p = 0; p < k; p++)
          rss -= x[p] * rhs[p];
        double step = side ? x[k - 1] : x[3];
        if (rss < best && step > 0) { /* shoulders rise above the land */
          best = rss;
          best_m = m;
          best_h = step;
        }
      }
      if (side) {
        mr = best_m;
        h[1] = best_h;
      } else {
        ml = best_m;
        h[0] = best_h;
      }
    }
  pos[0] = ml > 0 ? ix[ml - 1] : a;  /* last point of the left shoulder */
  pos[1] = mr < nv ? ix[mr] : b;     /* first point of the right shoulder */
  /* a step next to the middle half is the curve's slow misfit leaking outwards, not a
   * shoulder (on lands without grooves the best step sits there): it must lie min_w * 3 outside */
  if (h[0] > 0 && qa - pos[0] < 3 * min_w)
    h[0] = 0;
  if (h[1] > 0 && pos[1] - qb < 3 * min_w)
    h[1] = 0;
  rc = 0;
done:
  free(ix);
  free(ps);
  return rc;
}

/* Finds one groove shoulder walking from c outwards by dir (+1/-1). Returns the land limit
 * index and sets *found. r is the smoothed residual to the land curve. */
static int find_shoulder(const float *r, int np, int c, int dir, double thr, int run_pts,
                         int gap_pts, int margin_pts, int *found)
{
  int last_valid = c, run = 0, gap = 0;
  *found = 0;
  for (int i = c; i >= 0 && i < np; i += dir) {
    if (!isfinite(r[i])) {
      if (++gap >= gap_pts)
        break;
      continue;
    }
    gap = 0;
    if (r[i] > thr) { /* a groove shoulder rises above the land's curve */
      if (++run >= run_pts) {
        *found = 1;
        int start = i - dir * (run - 1);
        int lim = start - dir * margin_pts;
        if ((lim - c) * dir < 0)
          lim = c;
        return lim;
      }
    } else {
      run = 0;
      last_valid = i;
    }
  }
  /* no shoulder: the land ends at the data's end (less the margin) */
  int lim = last_valid - dir * margin_pts;
  if ((lim - c) * dir < 0)
    lim = c;
  return lim;
}

/* The crosscut search's bands: band k covers band rows from s_first + round(k step_rows) rows
 * from the scan's start (dir +1) or its end (dir -1). */
typedef struct bands {
  const bf_surface *scan;
  int orient, np, ns;
  double dx;
  int band, s_first;
  double step_rows;
  int nb;
  float *bp;     /* nb band-passed profiles */
  double *agree; /* nb */
  float *tmp;
  double *acc;
  const bf_bullet_opts *o;
} bands;

static int band_start(const bands *b, int dir, int k)
{
  int off = b->s_first + (int)lround(k * b->step_rows);
  return dir > 0 ? off : b->ns - b->band - off;
}

/* The first band from one end agreeing (ccf >= crosscut_ccf) with its next two; when none does,
 * the first reaching the highest 0.05 step below crosscut_ccf that some band reaches (agreement
 * moves by a few hundredths with the rows a band happens to cover - another spacing, another
 * start - and the single best band jumped along the land with them). */
static int stable_band(const bands *b, int dir, int max_k, double *agreement, int *stable)
{
  int np = b->np, nb = b->nb, made = 0, chosen = -1, best_k = 0;
  int kmax = max_k < nb ? max_k : nb; /* limited: no fallback, only a stable band within it */
  double best_agree = -2;
  /* bands are made as the search reaches them: the first stable one is usually near the start */
  for (int k = 0; k < kmax && chosen < 0; k++) {
    for (; made < nb && made <= k + 2; made++) {
      int s0 = band_start(b, dir, made);
      band_profile(b->bp + (size_t)made * np, b->acc, b->scan, b->orient, s0, s0 + b->band);
      crosscut_bandpass(b->bp + (size_t)made * np, b->tmp, np, b->dx, b->o);
    }
    const float *bp = b->bp;
    double c1 = k + 1 < nb ? pearson(bp + (size_t)k * np, bp + (size_t)(k + 1) * np, np) : -1;
    double c2 = k + 2 < nb ? pearson(bp + (size_t)(k + 1) * np, bp + (size_t)(k + 2) * np, np) : -1;
    if (nb == 1)
      c1 = c2 = 0;
    else if (nb == 2)
      c2 = c1;
    b->agree[k] = c1 < c2 ? c1 : c2;
    if (b->agree[k] > best_agree) {
      best_agree = b->agree[k];
      best_k = k;
    }
    if (b->agree[k] >= b->o->crosscut_ccf)
      chosen = k;
  }
  *stable = chosen >= 0;
  if (chosen < 0 && kmax < nb) {
    *agreement = -2;
    return 0;
  }
  if (chosen < 0) {
    double bar = b->o->crosscut_ccf - 0.05 * ceil((b->o->crosscut_ccf - best_agree) / 0.05 - 1e-9);
    chosen = best_k;
    for (int k = 0; k < nb; k++)
      if (b->agree[k] >= bar - 1e-9) {
        chosen = k;
        break;
      }
  }
  *agreement = b->agree[chosen];
  return chosen;
}

int bf_bullet_land_extract_trace(bf_feature **out, bf_bullet_trace *trace, const bf_surface *scan,
                                 const bf_bullet_opts *o)
{
  bf_bullet_opts def = BF_BULLET_OPTS_INIT;
  if (!o)
    o = &def;
  int rc = 0, flags = 0;
  float *prof = NULL, *next = NULL, *tmp = NULL, *resid = NULL, *best = NULL;
  double *acc = NULL;
  bf_feature *f = NULL;
  *out = NULL;
  if (trace)
    memset(trace, 0, sizeof *trace);
  if (!scan || !scan->z || scan->nx < 16 || scan->ny < 16)
    return bf_error_set(BF_EQUALITY, "bullet land scan is empty or smaller than 16 x 16 points");
  if (o->orientation < BF_STRIAE_AUTO || o->orientation > BF_STRIAE_Y)
    return bf_error_set(BF_EINVAL, "bullet orientation %d is not AUTO, X or Y", o->orientation);

  double ratio = 1;
  size_t npts = (size_t)scan->nx * scan->ny, nscan = 0;
  int detected = orientation_count(scan, &ratio, &nscan);
  int orient = o->orientation ? o->orientation : detected;
  if (o->orientation && o->orientation != detected && ratio > 1.3)
    flags |= BF_Q_ORIENTATION;
  int np = orient == BF_STRIAE_X ? scan->ny : scan->nx;   /* across the striae */
  int ns = orient == BF_STRIAE_X ? scan->nx : scan->ny;   /* along the striae */
  double dx = orient == BF_STRIAE_X ? scan->dy : scan->dx; /* spacing across */
  double ds = orient == BF_STRIAE_X ? scan->dx : scan->dy;

  if (nscan * 2 < npts)
    flags |= BF_Q_MOSTLY_MISSING;
  if (nscan < 100) {
    rc = bf_error_set(BF_EQUALITY, "bullet land scan has only %zu valid points", nscan);
    goto done;
  }

  prof = malloc((size_t)np * sizeof *prof);
  next = malloc((size_t)np * sizeof *next);
  tmp = malloc((size_t)np * sizeof *tmp);
  resid = malloc((size_t)np * sizeof *resid);
  best = malloc((size_t)np * sizeof *best);
  acc = malloc((size_t)2 * np * sizeof *acc);
  if (!prof || !next || !tmp || !resid || !best || !acc) {
    rc = bf_error_set(BF_ENOMEM, "out of memory for a %d-point crosscut", np);
    goto done;
  }

  /* 2. Stable crosscut: the first band agreeing with its next two neighbours, searched from
   * each end of the scan; the end whose band agrees better is taken as the heel. */
  int band = (int)lround(o->band_um / ds);
  if (band < 1)
    band = 1;
  if (band > ns)
    band = ns;
  int s_first = (int)(o->start_frac * ns);
  if (s_first + band > ns)
    s_first = ns - band;
  /* band k starts step_um * k from the first, rounded once (not k rounded steps): the bands lie
   * at the same places along the striae whatever the spacing */
  double step_rows = o->step_um / ds < 1 ? 1 : o->step_um / ds;
  int nb = 1;
  while (s_first + (int)lround(nb * step_rows) + band <= ns)
    nb++;
  double *agree = calloc((size_t)nb, sizeof *agree);
  float *bp = malloc((size_t)nb * np * sizeof *bp);
  if (!agree || !bp) {
    free(agree);
    free(bp);
    rc = bf_error_set(BF_ENOMEM, "out of memory for crosscut search");
    goto done;
  }
  bands b = {scan, orient, np, ns, dx, band, s_first, step_rows, nb, bp, agree, tmp, acc, o};
  double agree_s, agree_e;
  int stable_s, stable_e;
  /* the other end only needs searching as far as the start's band, give or take two bands: a
   * stable band further in is not nearer its end than the start's */
  int k_s = stable_band(&b, +1, nb, &agree_s, &stable_s);
  int k_e = stable_band(&b, -1, stable_s ? k_s + 3 : nb, &agree_e, &stable_e);
  free(agree);
  free(bp);
  /* the heel: the end with a stable band over one without, else the better agreeing one by
   * more than 0.01 (a scan's marks are fullest near the heel; near-ties keep the scan's start).
   * With no stable band at either end nothing tells the heel: the scan's start is kept (the
   * fallback bands' agreements move with the spacing, see stable_band) */
  int from_end = stable_e && (!stable_s || agree_e > agree_s + 0.01);
  int chosen = from_end ? k_e : k_s;
  double agreement = from_end ? agree_e : agree_s;
  /* average the chosen band and the next two: the rows that agreed */
  int s0 = s_first + (int)lround(chosen * step_rows), s1 = s_first + (int)lround((chosen + 2) * step_rows) + band;
  if (s1 > ns)
    s1 = ns;
  if (from_end) { /* the same rows mirrored */
    int t = s0;
    s0 = ns - s1;
    s1 = ns - t;
  }
  band_profile(prof, acc, scan, orient, s0, s1);
  if (agreement < o->min_agree)
    flags |= BF_Q_NO_MARKS;

  /* 3. Grooves: departures from the land's quadratic, walking out from the middle. */
  int v0 = 0, v1 = np - 1;
  while (v0 < np && !isfinite(prof[v0]))
    v0++;
  while (v1 >= 0 && !isfinite(prof[v1]))
    v1--;
  if (v1 - v0 < 20) {
    rc = bf_error_set(BF_EQUALITY, "bullet land crosscut has fewer than 20 valid points");
    goto done;
  }
  int qa = v0 + (v1 - v0) / 4, qb = v1 - (v1 - v0) / 4;
  double c[3];
  if (robust_quad(c, prof, qa, qb, 6)) {
    rc = bf_error_set(BF_EQUALITY, "bullet land crosscut: too few valid points in its middle");
    goto done;
  }
  for (int i = 0; i < np; i++)
    tmp[i] = isfinite(prof[i]) ? (float)(prof[i] - quad_at(c, i, qa, qb)) : NAN;
  bf_bullet_gauss_lowpass(resid, tmp, np, dx, 40.0); /* shoulders are wide, striae are not */
  double sabs = 0;
  int ns_mid = 0;
  for (int i = qa; i <= qb; i++)
    if (isfinite(resid[i])) {
      sabs += fabs(resid[i]);
      ns_mid++;
    }
  double sigma = ns_mid ? 1.2533 * sabs / ns_mid : 0; /* mean |r| -> sd for a normal */
  double thr = o->shoulder_k * sigma;
  if (thr < o->shoulder_um)
    thr = o->shoulder_um;
  int run_pts = (int)lround(15.0 / dx), gap_pts = (int)lround(o->gap_um / dx);
  int margin_pts = (int)lround(o->margin_um / dx);
  if (run_pts < 1)
    run_pts = 1;
  if (gap_pts < 2)
    gap_pts = 2;
  int cmid = (v0 + v1) / 2, fl = 0, fr = 0;
  int left = find_shoulder(resid, np, cmid, -1, thr, run_pts, gap_pts, margin_pts, &fl);
  int right = find_shoulder(resid, np, cmid, +1, thr, run_pts, gap_pts, margin_pts, &fr);
  /* a shoulder found by the first pass that stays below 2 shoulder_um over the next 100 um is
   * shallow: it crossed thr late, well outside its foot; the step model below places it better
   * (and the first pass's cut stays when the model finds no step) */
  int fl0 = fl, fr0 = fr, left0 = left, right0 = right, peak_w = (int)lround(100.0 / dx);
  for (int side = 0; side < 2; side++) {
    int dir = side ? 1 : -1, start = (side ? right : left) + dir * margin_pts, *fnd = side ? &fr : &fl;
    double peak = -INFINITY;
    for (int i = start, k = 0; *fnd && k <= peak_w && i >= 0 && i < np; i += dir, k++)
      if (isfinite(resid[i]) && resid[i] > peak)
        peak = resid[i];
    if (*fnd && peak < 2 * o->shoulder_um) {
      int dummy;
      *fnd = 0;
      *(side ? &right : &left) = find_shoulder(resid, np, cmid, dir, INFINITY, run_pts, gap_pts,
                                               margin_pts, &dummy);
    }
  }
  if (!fl || !fr) {
    /* shallow shoulders (a worn barrel, another calibre): a step model between the land's ends
     * (see shoulder_steps); a side already found bounds the fit at its shoulder. A step counts
     * when it rises above the floor (a third of shoulder_um) and shoulder_k / 2 sds of the
     * 150 um-smoothed residual in the middle, where the striae average out. */
    bf_bullet_gauss_lowpass(next, tmp, np, dx, 150.0);
    double s2 = 0;
    int n2 = 0;
    for (int i = qa; i <= qb; i++)
      if (isfinite(next[i])) {
        s2 += fabs(next[i]);
        n2++;
      }
    double thr2 = 0.5 * o->shoulder_k * (n2 ? 1.2533 * s2 / n2 : 0);
    if (thr2 < o->shoulder_um / 3)
      thr2 = o->shoulder_um / 3;
    /* the data's ends on an unfound side (before a long gap), the shoulder's start on a found one */
    int ea = left - margin_pts, eb = right + margin_pts;
    if (ea < v0)
      ea = v0;
    if (eb > v1)
      eb = v1;
    int search[2] = {!fl, !fr}, pos[2];
    double h[2];
    int min_w = (int)lround(40.0 / dx);
    if (shoulder_steps(prof, ea, eb, qa, qb, min_w < 2 ? 2 : min_w, search, pos, h) == 0) {
      if (!fl && h[0] >= thr2) {
        fl = 1;
        left = pos[0] + margin_pts;
      }
      if (!fr && h[1] >= thr2) {
        fr = 1;
        right = pos[1] - margin_pts;
      }
      if (left > cmid)
        left = cmid;
      if (right < cmid)
        right = cmid;
    }
    if (!fl && fl0) {
      fl = 1;
      left = left0;
    }
    if (!fr && fr0) {
      fr = 1;
      right = right0;
    }
  }
  if (!fl && !fr)
    flags |= BF_Q_NO_REGION;

  /* 4. Curvature: robust quadratic over the land, then Gaussian band-pass in µm. */
  int n = right - left + 1;
  if (n < 20 || robust_quad(c, prof, left, right, 6)) {
    flags |= BF_Q_TOO_SHORT;
    if (n < 2) {
      left = cmid;
      right = cmid + 1 < np ? cmid + 1 : cmid;
      n = right - left + 1;
    }
    for (int i = 0; i < n; i++)
      tmp[i] = NAN;
  } else {
    for (int i = 0; i < n; i++)
      best[i] = isfinite(prof[left + i]) ? (float)(prof[left + i] - quad_at(c, left + i, left, right)) : NAN;
    bf_bullet_gauss_lowpass(next, best, n, dx, o->lambda_c_um);
    for (int i = 0; i < n; i++)
      best[i] = best[i] - next[i];
    bf_bullet_gauss_lowpass(tmp, best, n, dx, o->lambda_s_um);
    /* the filters' ends see the groove shoulder's foot: drop them */
    int trim = (int)lround(o->edge_um / dx);
    for (int i = 0; i < trim && i < n; i++)
      tmp[i] = tmp[n - 1 - i] = NAN;
  }
  if ((rc = bf_feature_new(&f, BF_KIND_BULLET, n, 1, dx, dx)))
    goto done;
  int nvalid = 0;
  double ss = 0, sm = 0;
  for (int i = 0; i < n; i++) {
    f->z[i] = tmp[i];
    if (isfinite(tmp[i])) {
      nvalid++;
      sm += tmp[i];
      ss += (double)tmp[i] * tmp[i];
    }
  }
  f->valid_fraction = (float)nvalid / n;
  if (nvalid * dx < o->min_length_um)
    flags |= BF_Q_TOO_SHORT;
  if (f->valid_fraction < 0.5)
    flags |= BF_Q_MOSTLY_MISSING;
  double rough = nvalid > 1 ? sqrt(fmax(0, (ss - sm * sm / nvalid) / (nvalid - 1))) : 0;
  if (rough < 1e-3) /* below any instrument's noise: nothing was engraved */
    flags |= BF_Q_NO_MARKS;
  f->land = o->land;
  f->quality_flags = flags;
  f->version = BULLET_VERSION;
  f->params[BF_BP_GROOVE_LEFT] = left * dx;
  f->params[BF_BP_GROOVE_RIGHT] = right * dx;
  f->params[BF_BP_CROSSCUT] = 0.5 * (s0 + s1) * ds;
  f->params[BF_BP_ORIENT] = orient;
  f->params[BF_BP_AGREE] = agreement;
  f->params[BF_BP_ROUGH] = rough;
  f->params[BF_BP_LENGTH] = np * dx;
  f->params[BF_BP_GROOVES] = fl | (fr << 1);
  if (trace) {
    trace->n = np;
    trace->dx = dx;
    trace->left = left;
    trace->right = right;
    trace->crosscut = prof;
    prof = NULL;
    trace->curve = malloc((size_t)np * sizeof *trace->curve);
    if (trace->curve)
      for (int i = 0; i < np; i++)
        trace->curve[i] = (i >= left && i <= right) ? (float)quad_at(c, i, left, right) : NAN;
  }
  *out = f;
  f = NULL;
done:
  bf_feature_free(f);
  free(prof);
  free(next);
  free(tmp);
  free(resid);
  free(best);
  free(acc);
  return rc;
}

int bf_bullet_land_extract(bf_feature **out, const bf_surface *scan, const bf_bullet_opts *o)
{
  return bf_bullet_land_extract_trace(out, NULL, scan, o);
}
