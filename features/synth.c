/* Synthetic breech faces and bullet lands with a known truth (see bf_synth.h).
 *
 * Figures the defaults come from, measured on ../shared/data (processed Fadul 1-1, 1-2, A, 5-1, X;
 * Hamby 44 and Hamby 252 lands):
 *  - processed breech face: 537..561 px square at 6.25 µm, 27-31 % valid: a disk filling the
 *    square minus a firing-pin hole of ~0.79 R whose centre sits ~0.2 R off the disk centre;
 *    height sd 1.29-1.73 µm; radial PSD slope -3.1 for 25-100 µm wavelengths, power peaking at
 *    100-400 µm and falling above 500 µm (the 16-500 µm Gaussian band-pass).
 *  - bullet LEA scans: 1500-1610 px across the striae, 420-500 along, 1.5625 µm; bullet radius
 *    4.1-4.4 mm; groove shoulders ~1.9-2.2 mm apart rising ~25-35 µm over ~50 µm; 2-8 % missing,
 *    mostly on the shoulders; mean profile rms per wavelength octave 12.5-25/25-50/50-100/
 *    100-200 µm ~0.1/0.1-0.26/0.2-0.76/0.28-0.7 µm; single rows differ from the mean by ~0.5 µm,
 *    in detail that stays put along the striae for a few µm (not white noise: the bullet
 *    pipeline reads the striae direction from second differences).
 *  - Fadul raw: primer radius ~1.8 mm, then a ~0.7 mm dark annulus, case head only in corners.
 * Random fields are made in the frequency domain: uniform random coefficients times an amplitude
 * filter, one c2r FFT (plans made in bf_synth_new, executed with the new-array functions). */
#include "bf_synth.h"
#include "bf_error.h"
#include "bf_fft.h"

#include <fftw3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Texture spectrum (fitted to processed Fadul): P(f) ~ (1 + (f L0)^2)^(-BETA/2). */
#define TEX_L0 700.0     /* µm: the knee below which the spectrum flattens */
#define TEX_BETA 3.1     /* 2-D PSD slope above the knee */
#define TEX_LOWPASS 10.0 /* µm: processed set's Gaussian low-pass cut-off */
#define TEX_HIGHPASS 650.0 /* µm: processed set's Gaussian high-pass cut-off */
#define RAW_LOWPASS 6.0  /* µm: optical resolution of a raw scan */
#define RAW_FORM 3000.0  /* µm: raw texture is rolled off beyond this (form is modelled apart) */
#define TM_L0 60.0       /* µm: tool-mark profile knee */
#define TM_BETA 2.0      /* 1-D slope of the tool-mark profile */
#define SIG_L0 150.0     /* µm: striation signature knee (fitted to Hamby mean profiles) */
#define SIG_BETA 2.6     /* 1-D slope: amplitude x1.7 per octave below the knee */
#define SIG_LOWPASS 4.0  /* µm */
#define SIG_HIGHPASS 1000.0 /* µm: longer waves belong to the land form */
#define EVO_L0 20.0      /* µm: along-striae variation profiles: flat spectrum ... */
#define EVO_BETA 0.0
#define EVO_LOWPASS 2.0  /* µm: ... from the pixel scale */
#define EVO_HIGHPASS 25.0 /* µm: ... to fine striae */
#define EVO_STEP 5.0     /* µm along the striae between independent variation profiles */
#define EVO_SHARE 0.6   /* their sd relative to the signature's (Hamby: row minus mean ~0.5 µm) */
#define CART_RAW_NOISE 0.05 /* µm: white noise on a raw cartridge scan */
#define GAUSS_A 0.46971863934982566 /* sqrt(ln 2 / pi): ISO 16610 Gaussian filter constant */

struct bf_synth {
  bf_synth_opts o;
  int nf;              /* cartridge texture grid, nf x nf at cart_spacing */
  int ng;              /* tool-mark profile length */
  int ns;              /* land signature length at land_spacing */
  float *h_tex, *h_raw; /* nf x (nf/2+1) amplitude filters (processed / raw) */
  float *h_tm;         /* ng/2+1 */
  float *h_sig;        /* ns/2+1 */
  float *h_evo;        /* ns/2+1: striae varying along their length */
  fftwf_plan p_tex, p_tm, p_sig; /* borrowed from the plan cache (bf_fft.h) */
};

/* ---------- counter-based random numbers (splitmix64 keyed by the ids) ---------- */

enum { S_FIREARM = 1, S_FIREARM_TEX, S_FIREARM_TM, S_FIRING, S_FIRING_TEX, S_FIRING_DROP,
       S_LAND_SIG, S_BULLET, S_BULLET_LAND, S_BULLET_IND, S_BULLET_NOISE, S_BULLET_MISS };

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t mix64(uint64_t z)
{
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static rng rng_key(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b, uint64_t c)
{
  rng r;
  r.s = mix64(mix64(mix64(mix64(seed) ^ stream) ^ a) ^ b) ^ c;
  r.s = mix64(r.s);
  return r;
}

static uint64_t rng_u64(rng *r)
{
  r->s += 0x9e3779b97f4a7c15ULL;
  uint64_t z = r->s;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double unif(rng *r) /* [0, 1) */
{
  return (double)(rng_u64(r) >> 11) * 0x1p-53;
}

static double unif2(rng *r, double a, double b)
{
  return a + (b - a) * unif(r);
}

/* Two uniforms on [-1, 1) from one draw: enough for random spectral coefficients. */
static void unif_pair(rng *r, double *a, double *b)
{
  uint64_t v = rng_u64(r);
  *a = (double)(v >> 32) * 0x1p-31 - 1;
  *b = (double)(v & 0xffffffffu) * 0x1p-31 - 1;
}

/* Irwin-Hall(4) from one draw: unit variance, near-normal; for measurement noise. */
static double normal_fast(rng *r)
{
  uint64_t v = rng_u64(r);
  double s = (double)(v & 0xffff) + (double)((v >> 16) & 0xffff) + (double)((v >> 32) & 0xffff) + (double)(v >> 48);
  return (s / 65536.0 + 4 * 0.5 / 65536.0 - 2) * 1.7320508075688772;
}

/* ---------- sizes and filters ---------- */

static int fast_size(int n) /* smallest m >= n of the form 2^a 3^b 5^c, even */
{
  for (int m = n + (n & 1);; m += 2) {
    int k = m;
    while (k % 2 == 0) k /= 2;
    while (k % 3 == 0) k /= 3;
    while (k % 5 == 0) k /= 5;
    if (k == 1)
      return m;
  }
}

static double gauss_lp(double f, double lc) /* Gaussian low-pass transmission at frequency f */
{
  double a = GAUSS_A * f * lc;
  return exp(-M_PI * a * a);
}

/* Scales a half-spectrum filter so the c2r output has unit variance (DC and Nyquist columns are
 * left out: their coefficients would have to be real). Returns 0 or BF_EINVAL when empty. */
static int unit_variance(float *h, size_t n, double sum2, float **others, int nothers)
{
  if (!(sum2 > 0))
    return bf_error_set(BF_EINVAL, "synth: spectrum filter is empty (spacing too coarse?)");
  double k = 1.0 / sqrt(4.0 * sum2);
  for (size_t i = 0; i < n; i++)
    h[i] = (float)(h[i] * k);
  for (int j = 0; j < nothers; j++)
    for (size_t i = 0; i < n; i++)
      others[j][i] = (float)(others[j][i] * k);
  return 0;
}

/* 1-D profile filter: sqrt of P(f) = (1 + (f l0)^2)^(-beta/2), Gaussian band-pass lo..hi. */
static int filter1(float *h, int n, double dx, double l0, double beta, double lo, double hi)
{
  double s2 = 0;
  for (int k = 0; k <= n / 2; k++) {
    double f = k / (n * dx);
    double a = (k == 0 || k == n / 2) ? 0
               : pow(1 + f * f * l0 * l0, -beta / 4) * gauss_lp(f, lo) * (1 - gauss_lp(f, hi));
    h[k] = (float)a;
    s2 += a * a;
  }
  return unit_variance(h, (size_t)n / 2 + 1, s2, NULL, 0);
}

/* Fills out[n] with a unit-variance band-limited profile. spec holds n/2+1 complex. */
static void field1(const struct bf_synth *g, fftwf_plan p, const float *h, int n, rng *r,
                   fftwf_complex *spec, float *out)
{
  (void)g;
  for (int k = 0; k <= n / 2; k++) {
    double a = h[k] * 1.7320508075688772; /* uniform on +-sqrt(3): unit variance */
    double u1, u2;
    unif_pair(r, &u1, &u2);
    spec[k][0] = (float)(a * u1);
    spec[k][1] = (float)(a * u2);
  }
  fftwf_execute_dft_c2r(p, spec, out);
}

/* Fills out[nf*nf] with a unit-variance 2-D field through filter h. */
static void field2(const struct bf_synth *g, const float *h, rng *r, fftwf_complex *spec, float *out)
{
  int nf = g->nf, nh = nf / 2 + 1;
  for (int ky = 0; ky < nf; ky++)
    for (int kx = 0; kx < nh; kx++) {
      size_t i = (size_t)ky * nh + kx;
      double a = h[i] * 1.7320508075688772;
      double u1, u2;
      unif_pair(r, &u1, &u2);
      spec[i][0] = (float)(a * u1);
      spec[i][1] = (float)(a * u2);
    }
  fftwf_execute_dft_c2r(g->p_tex, spec, out);
}

int bf_synth_new(bf_synth **out, const bf_synth_opts *o)
{
  *out = NULL;
  if (!(o->cart_spacing > 0.1 && o->cart_spacing < 100) || !(o->land_spacing > 0.1 && o->land_spacing < 100))
    return bf_error_set(BF_EINVAL, "synth: spacing %g / %g um out of range 0.1..100", o->cart_spacing,
                        o->land_spacing);
  if (o->lands < 1 || o->lands > 64)
    return bf_error_set(BF_EINVAL, "synth: %d lands per barrel (1..64)", o->lands);
  if (!(o->transfer >= 0 && o->transfer <= 1) || !(o->land_transfer >= 0 && o->land_transfer <= 1) ||
      !(o->toolmarks >= 0 && o->toolmarks <= 1))
    return bf_error_set(BF_EINVAL, "synth: transfer and tool-mark shares must be in 0..1");
  if (!(o->cart_diameter > 0) || !(o->cart_field > 0) || !(o->land_width > 0) || !(o->land_length > 0) ||
      !(o->bullet_radius > o->land_width) || !(o->max_shift >= 0) || !(o->land_shift >= 0) ||
      !(o->dropout >= 0 && o->dropout < 0.5) || !(o->damage >= 0 && o->damage <= 1))
    return bf_error_set(BF_EINVAL, "synth: a size, shift or probability option is out of range");
  double field = o->processed ? o->cart_diameter : o->cart_field;
  double need = (field * 1.05 * 1.4143 + 2 * o->max_shift) / o->cart_spacing + 8;
  double nsig = (o->land_width + 600 + 2 * o->land_shift) / o->land_spacing + 16;
  if (need > 16384 || nsig > (1 << 20))
    return bf_error_set(BF_ELIMIT, "synth: scans of %.0f / %.0f points across are beyond the limit", need, nsig);

  int rc = 0;
  struct bf_synth *g = calloc(1, sizeof *g);
  if (!g)
    return bf_error_set(BF_ENOMEM, "synth: out of memory");
  g->o = *o;
  /* The texture grid covers the scan disk under any rotation and shift. */
  g->nf = fast_size((int)ceil(field * 1.03 / o->cart_spacing + 2 * o->max_shift / o->cart_spacing + 4));
  g->ng = fast_size((int)ceil(g->nf * 1.4143) + 8);
  g->ns = fast_size((int)ceil(nsig));
  int nf = g->nf, nh = nf / 2 + 1;
  size_t nspec = (size_t)nf * nh;
  g->h_tex = fftwf_alloc_real(nspec);
  g->h_raw = fftwf_alloc_real(nspec);
  g->h_tm = fftwf_alloc_real((size_t)g->ng / 2 + 1);
  g->h_sig = fftwf_alloc_real((size_t)g->ns / 2 + 1);
  g->h_evo = fftwf_alloc_real((size_t)g->ns / 2 + 1);
  if (!g->h_tex || !g->h_raw || !g->h_tm || !g->h_sig || !g->h_evo) {
    rc = bf_error_set(BF_ENOMEM, "synth: out of memory for %d x %d spectra", nf, nf);
    goto done;
  }
  double dx = o->cart_spacing, s2 = 0;
  for (int ky = 0; ky < nf; ky++) {
    int fy = ky <= nf / 2 ? ky : ky - nf;
    for (int kx = 0; kx < nh; kx++) {
      double f = hypot(kx / (nf * dx), fy / (nf * dx));
      double p = pow(1 + f * f * TEX_L0 * TEX_L0, -TEX_BETA / 4);
      double hp = (kx == 0 || kx == nf / 2) ? 0 : p * gauss_lp(f, TEX_LOWPASS) * (1 - gauss_lp(f, TEX_HIGHPASS));
      double hr = (kx == 0 || kx == nf / 2) ? 0 : p * gauss_lp(f, RAW_LOWPASS) * (1 - gauss_lp(f, RAW_FORM));
      g->h_tex[(size_t)ky * nh + kx] = (float)hp;
      g->h_raw[(size_t)ky * nh + kx] = (float)hr;
      s2 += hp * hp;
    }
  }
  /* Both filters share the processed scaling: the raw texture band-passed is the processed one. */
  if ((rc = unit_variance(g->h_tex, nspec, s2, &g->h_raw, 1)))
    goto done;
  if ((rc = filter1(g->h_tm, g->ng, dx, TM_L0, TM_BETA, o->processed ? TEX_LOWPASS : RAW_LOWPASS,
                    o->processed ? TEX_HIGHPASS : RAW_FORM)))
    goto done;
  if ((rc = filter1(g->h_sig, g->ns, o->land_spacing, SIG_L0, SIG_BETA, SIG_LOWPASS, SIG_HIGHPASS)))
    goto done;
  if ((rc = filter1(g->h_evo, g->ns, o->land_spacing, EVO_L0, EVO_BETA, EVO_LOWPASS, EVO_HIGHPASS)))
    goto done;
  /* Estimated plans from the one cache, made here on the caller's thread and executed from
   * the generating threads. The sizes keep synth's own 2-3-5 rule: they define every synthetic
   * scan (same seed, same scan), so they must not follow the engine's rule if it changes. */
  const bf_fft_plan *pt = bf_fft_plan_estimate(nf, nf), *pm = pt ? bf_fft_plan_estimate(1, g->ng) : NULL,
                    *ps = pm ? bf_fft_plan_estimate(1, g->ns) : NULL;
  if (!ps)
    rc = bf_error_prefix(BF_ENOMEM, "synth: ");
  else {
    g->p_tex = pt->c2r;
    g->p_tm = pm->c2r;
    g->p_sig = ps->c2r;
  }
done:
  if (rc)
    bf_synth_free(g);
  else
    *out = g;
  return rc;
}

void bf_synth_free(bf_synth *g)
{
  if (!g)
    return;
  fftwf_free(g->h_tex);
  fftwf_free(g->h_raw);
  fftwf_free(g->h_tm);
  fftwf_free(g->h_sig);
  fftwf_free(g->h_evo);
  free(g);
}

const bf_synth_opts *bf_synth_options(const bf_synth *g)
{
  return &g->o;
}

/* ---------- shared helpers ---------- */

/* A smooth periodic function of angle, unit-ish amplitude: ragged edges of holes and disks. */
typedef struct wobble {
  double a[6], k[6], ph[6];
} wobble;

static void wobble_init(wobble *w, rng *r, double kmin, double kmax)
{
  for (int i = 0; i < 6; i++) {
    w->k[i] = floor(unif2(r, kmin, kmax));
    w->ph[i] = unif2(r, 0, 2 * M_PI);
    w->a[i] = unif2(r, 0.3, 1.0) / 3.0;
  }
}

static double wobble_at(const wobble *w, double ang)
{
  double s = 0;
  for (int i = 0; i < 6; i++)
    s += w->a[i] * cos(w->k[i] * ang + w->ph[i]);
  return s;
}

/* Partial contact: 1 + amp * (sum of four long plane waves), clamped to [0.15, 1.6]. */
typedef struct contact {
  double kx[4], ky[4], ph[4], amp;
} contact;

static void contact_init(contact *c, rng *r, double amp)
{
  for (int i = 0; i < 4; i++) {
    double lam = unif2(r, 900, 3200), ang = unif2(r, 0, 2 * M_PI);
    c->kx[i] = 2 * M_PI / lam * cos(ang);
    c->ky[i] = 2 * M_PI / lam * sin(ang);
    c->ph[i] = unif2(r, 0, 2 * M_PI);
  }
  c->amp = amp;
}

static inline float bilinear(const float *a, int n, double x, double y)
{
  int ix = (int)floor(x), iy = (int)floor(y);
  if (ix < 0 || iy < 0 || ix + 1 >= n || iy + 1 >= n)
    return NAN;
  double fx = x - ix, fy = y - iy;
  const float *p = a + (size_t)iy * n + ix;
  return (float)((1 - fy) * ((1 - fx) * p[0] + fx * p[1]) + fy * ((1 - fx) * p[n] + fx * p[n + 1]));
}

/* Clusters of missing points: holes of radius 0.7..2.5 px at random places. Drawn in a w x h
 * frame that is the surface's (transpose 0) or its transpose (1), so a transposed scan loses
 * the same points. */
static void dropouts(bf_surface *s, rng *r, double frac, int transpose)
{
  int w = transpose ? s->ny : s->nx, h = transpose ? s->nx : s->ny;
  double mean_area = M_PI * 2.4;
  long count = (long)(frac * w * (double)h / mean_area + 0.5);
  for (long c = 0; c < count; c++) {
    double cx = unif(r) * w, cy = unif(r) * h, rad = unif2(r, 0.7, 2.5);
    for (int y = (int)(cy - rad); y <= (int)(cy + rad); y++)
      for (int x = (int)(cx - rad); x <= (int)(cx + rad); x++)
        if (x >= 0 && y >= 0 && x < w && y < h && (x - cx) * (x - cx) + (y - cy) * (y - cy) <= rad * rad)
          s->z[transpose ? (size_t)x * s->nx + y : (size_t)y * s->nx + x] = NAN;
  }
}

static void set_meta(bf_surface *s, const char *what, uint64_t seed, int a, int b, int c)
{
  snprintf(s->meta.manufacturer, sizeof s->meta.manufacturer, "bfm");
  snprintf(s->meta.model, sizeof s->meta.model, "synth");
  snprintf(s->meta.serial, sizeof s->meta.serial, "seed %llu", (unsigned long long)seed);
  snprintf(s->meta.version, sizeof s->meta.version, "%s", BF_VERSION);
  snprintf(s->meta.creator, sizeof s->meta.creator, "bfm synth");
  snprintf(s->meta.date, sizeof s->meta.date, "2000-01-01T00:00:00"); /* fixed: files reproducible */
  snprintf(s->meta.feature_type, sizeof s->meta.feature_type, "SUR");
  if (c >= 0)
    snprintf(s->meta.comment, sizeof s->meta.comment, "synthetic %s: barrel %d bullet %d land %d", what, a, b, c);
  else
    snprintf(s->meta.comment, sizeof s->meta.comment, "synthetic %s: firearm %d firing %d", what, a, b);
}

/* ---------- cartridge cases ---------- */

int bf_synth_cartridge(bf_surface **out, const bf_synth *g, int firearm, int firing, bf_synth_truth *truth)
{
  *out = NULL;
  if (firearm < 0 || firing < 0)
    return bf_error_set(BF_EINVAL, "synth: firearm %d firing %d must not be negative", firearm, firing);
  const bf_synth_opts *o = &g->o;
  int rc = 0, nf = g->nf, nh = nf / 2 + 1;
  double dx = o->cart_spacing;
  bf_surface *s = NULL;
  float *tex = fftwf_alloc_real((size_t)nf * nf), *ind = fftwf_alloc_real((size_t)nf * nf);
  float *tm = fftwf_alloc_real((size_t)g->ng);
  fftwf_complex *spec = fftwf_alloc_complex((size_t)nf * nh);
  double *cw = NULL;
  float *dark = NULL;
  if (!tex || !ind || !tm || !spec) {
    rc = bf_error_set(BF_ENOMEM, "synth: out of memory for a %d x %d texture", nf, nf);
    goto done;
  }

  /* The firearm: breech-face texture, tool-mark direction, firing-pin position, amplitude. */
  rng rf = rng_key(o->seed, S_FIREARM, (uint64_t)firearm, 0, 0);
  double tm_ang = unif2(&rf, 0, M_PI);
  double fp_off = unif2(&rf, 0.15, 0.22), fp_ang = unif2(&rf, 0, 2 * M_PI), fp_rad = unif2(&rf, 0.78, 0.83);
  double amp = o->cart_sd * unif2(&rf, 0.82, 1.15);
  rng rt = rng_key(o->seed, S_FIREARM_TEX, (uint64_t)firearm, 0, 0);
  field2(g, o->processed ? g->h_tex : g->h_raw, &rt, spec, tex);
  rng rm = rng_key(o->seed, S_FIREARM_TM, (uint64_t)firearm, 0, 0);
  field1(g, g->p_tm, g->h_tm, g->ng, &rm, spec, tm);
  double ca = cos(tm_ang), sa = sin(tm_ang), wt = sqrt(1 - o->toolmarks), wm = sqrt(o->toolmarks);
  for (int y = 0; y < nf; y++)
    for (int x = 0; x < nf; x++) {
      double t = ((x - nf / 2) * ca + (y - nf / 2) * sa) + g->ng / 2; /* grid units */
      int it = (int)floor(t);
      double ft = t - it;
      double v = (it >= 0 && it + 1 < g->ng) ? (1 - ft) * tm[it] + ft * tm[it + 1] : 0;
      tex[(size_t)y * nf + x] = (float)(wt * tex[(size_t)y * nf + x] + wm * v);
    }

  /* The firing: placement, the case's own texture, contact, edges. */
  rng rg = rng_key(o->seed, S_FIRING, (uint64_t)firearm, (uint64_t)firing, 0);
  double rot = unif2(&rg, -o->max_rotation, o->max_rotation) * M_PI / 180;
  double tx = unif2(&rg, -o->max_shift, o->max_shift), ty = unif2(&rg, -o->max_shift, o->max_shift);
  double field = o->processed ? o->cart_diameter : o->cart_field;
  int n = (int)lround(field * unif2(&rg, 0.985, 1.03) / dx);
  if (n > nf - 4)
    n = nf - 4;
  contact ct;
  contact_init(&ct, &rg, 0.35);
  wobble wo, wh;
  wobble_init(&wo, &rg, 2, 40);
  wobble_init(&wh, &rg, 2, 40);
  double amp_f = amp * unif2(&rg, 0.93, 1.07), q = o->transfer, qi = sqrt(1 - q * q);
  rng ri = rng_key(o->seed, S_FIRING_TEX, (uint64_t)firearm, (uint64_t)firing, 0);
  field2(g, o->processed ? g->h_tex : g->h_raw, &ri, spec, ind);

  if ((rc = bf_surface_new(&s, n, n, dx, dx)))
    goto done;
  /* Disk radius (primer / breech-face crop) and the firing-pin hole: it belongs to the firearm,
   * so it moves with the rotation and shift, plus a little jitter of the pin strike. */
  double R = o->processed ? n * dx / 2 * unif2(&rg, 0.993, 1.0) : 1800.0 * unif2(&rg, 0.97, 1.03);
  double Rref = o->processed ? R : R * 0.95;
  double cr = cos(rot), sr = sin(rot);
  double hfx = fp_off * Rref * cos(fp_ang), hfy = fp_off * Rref * sin(fp_ang); /* firearm frame */
  double ux = cr * (hfx - tx) + sr * (hfy - ty) + unif2(&rg, -0.01, 0.01) * Rref;
  double uy = -sr * (hfx - tx) + cr * (hfy - ty) + unif2(&rg, -0.01, 0.01) * Rref;
  double rh = fp_rad * Rref;
  if (o->processed && rh > R - hypot(ux, uy) - dx)
    rh = R - hypot(ux, uy) - dx;
  /* Raw form: base height, tilt, primer dome, firing-pin crater, primer gap, case head. */
  double z0 = unif2(&rg, 60, 120), sx = unif2(&rg, -0.015, 0.015), sy = unif2(&rg, -0.015, 0.015);
  double sag = unif2(&rg, 2, 6), depth = unif2(&rg, 40, 80), rim = unif2(&rg, 8, 20);
  double rfp = rh * 0.62, gap = unif2(&rg, 600, 800), head = unif2(&rg, -15, 5);
  double turn = unif2(&rg, 20, 40), corner = field / 2 * unif2(&rg, 1.0, 1.1);

  double c0 = (n - 1) / 2.0, gc = nf / 2;
  /* The contact weight's plane waves split into per-column and per-row factors. */
  cw = malloc((size_t)n * 16 * sizeof *cw);
  if (!cw) {
    rc = bf_error_set(BF_ENOMEM, "synth: out of memory");
    goto done;
  }
  for (int i = 0; i < n; i++)
    for (int k = 0; k < 4; k++) {
      double c = (i - c0) * dx;
      cw[(size_t)i * 16 + k] = cos(ct.kx[k] * c + ct.ph[k]);
      cw[(size_t)i * 16 + 4 + k] = sin(ct.kx[k] * c + ct.ph[k]);
      cw[(size_t)i * 16 + 8 + k] = cos(ct.ky[k] * c);
      cw[(size_t)i * 16 + 12 + k] = sin(ct.ky[k] * c);
    }
  /* Raw scans lose points in ragged clusters (dark crater, primer seal, corners): a fine-scale
   * field, the case's own texture minus its 3-px neighbourhood, thresholded at normal quantiles. */
  if (!o->processed) {
    dark = malloc((size_t)n * n * sizeof *dark);
    if (!dark) {
      rc = bf_error_set(BF_ENOMEM, "synth: out of memory");
      goto done;
    }
    double ss = 0;
    int off = (nf - n) / 2;
    for (int y = 0; y < n; y++)
      for (int x = 0; x < n; x++) {
        const float *p = ind + (size_t)(y + off) * nf + x + off;
        int lx = x >= 3 ? -3 : 0, hx = x + 3 < n ? 3 : 0, ly = y >= 3 ? -3 : 0, hy = y + 3 < n ? 3 : 0;
        double d = p[0] - 0.25 * (p[lx] + p[hx] + p[(ptrdiff_t)ly * nf] + p[(ptrdiff_t)hy * nf]);
        dark[(size_t)y * n + x] = (float)d;
        ss += d * d;
      }
    float k = (float)(1 / sqrt(ss / ((double)n * n) + 1e-30));
    for (size_t i = 0; i < (size_t)n * n; i++)
      dark[i] *= k;
  }
  /* Edges wobble by at most 0.008 R (disk) and 0.008 rh (hole): the angle is needed only there. */
  double r_in = R * (1 - 0.008), r_out = R * (1 + 0.008), h_in = rh * (1 - 0.008), h_out = rh * (1 + 0.008);
  for (int y = 0; y < n; y++)
    for (int x = 0; x < n; x++) {
      double u = (x - c0) * dx, v = (y - c0) * dx, r = sqrt(u * u + v * v);
      if (o->processed && r > r_out)
        continue;
      double hx = u - ux, hy = v - uy, rho = sqrt(hx * hx + hy * hy);
      if (o->processed && rho < h_in)
        continue;
      double edge = r < r_in ? r_in : r > r_out ? r_out : R * (1 + 0.004 * wobble_at(&wo, atan2(v, u)));
      double hole = rho > h_out ? h_out : rho < h_in ? h_in : rh * (1 + 0.004 * wobble_at(&wh, atan2(hy, hx)));
      double px = cr * u - sr * v + tx, py = sr * u + cr * v + ty; /* firearm frame, µm */
      float t = bilinear(tex, nf, px / dx + gc, py / dx + gc);
      float iv = ind[(size_t)(y + (nf - n) / 2) * nf + x + (nf - n) / 2];
      const double *wx = cw + (size_t)x * 16, *wy = cw + (size_t)y * 16;
      double cs = 0;
      for (int k = 0; k < 4; k++)
        cs += wx[k] * wy[8 + k] - wx[4 + k] * wy[12 + k];
      double w = 1 + ct.amp * cs / sqrt(2.0), z;
      w = w < 0.15 ? 0.15 : w > 1.6 ? 1.6 : w;
      if (o->processed) {
        if (r > edge || rho < hole || isnan(t))
          continue;
        z = amp_f * (q * w * t + qi * iv);
      } else {
        double dk = dark[(size_t)y * n + x]; /* lost where dk < the normal quantile of the loss */
        z = z0 + sx * u + sy * v;
        if (r <= edge) {
          z += -sag * (r / R) * (r / R);
          /* the firing-pin impression carries the firearm's texture where the pin struck (it
           * moves with the case like the breech face): a firing-pin mark per firearm */
          double pin = isnan(t) ? 0 : q * t;
          if (rho < rfp) {
            if (rho < 0.72 * rfp && dk < 1.88)
              continue; /* the crater bottom: too steep and dark to measure */
            z += -depth * (1 - (rho / rfp) * (rho / rfp)) + amp_f * (pin + 0.3 * iv);
          } else if (rho < hole) {
            z += rim * sin(M_PI * (rho - rfp) / (hole - rfp)) + amp_f * (pin + 0.5 * iv);
            if (rho < rfp * 1.06 && dk < 0.25)
              continue; /* the crater wall */
          } else if (!isnan(t))
            z += amp_f * (q * w * t + qi * iv);
        } else if (r <= edge + gap) {
          if (dk < 2.2)
            continue; /* primer seal and pocket chamfer: a dark annulus (~0.7 mm in Fadul raw) */
          z += -30 * sin(M_PI * (r - edge) / gap);
        } else {
          if (r > corner && dk < -1)
            continue;
          z += head + 0.5 * amp_f * iv + 0.3 * sin(2 * M_PI * r / turn);
        }
        z += CART_RAW_NOISE * (2 * unif(&rg) - 1) * 1.7320508075688772;
      }
      s->z[(size_t)y * n + x] = (float)z;
    }
  if (o->processed) { /* levelled: zero mean over the valid points */
    double sum = 0;
    size_t k = 0;
    for (size_t i = 0; i < (size_t)n * n; i++)
      if (!isnan(s->z[i])) {
        sum += s->z[i];
        k++;
      }
    for (size_t i = 0; k && i < (size_t)n * n; i++)
      s->z[i] -= (float)(sum / k);
    s->flags |= BF_SURF_PROCESSED;
  }
  rng rd = rng_key(o->seed, S_FIRING_DROP, (uint64_t)firearm, (uint64_t)firing, 0);
  dropouts(s, &rd, o->dropout, 0);
  set_meta(s, "cartridge case", o->seed, firearm, firing, -1);
  if (truth) {
    memset(truth, 0, sizeof *truth);
    truth->rotation_deg = rot * 180 / M_PI;
    truth->shift_x = tx;
    truth->shift_y = ty;
  }
  *out = s;
  s = NULL;
done:
  bf_surface_free(s);
  fftwf_free(tex);
  fftwf_free(ind);
  fftwf_free(tm);
  fftwf_free(spec);
  free(cw);
  free(dark);
  return rc;
}

/* ---------- bullet lands ---------- */

static inline double interp1(const float *a, int n, double t)
{
  int i = (int)floor(t);
  if (i < 0) return a[0];
  if (i + 1 >= n) return a[n - 1];
  double f = t - i;
  return (1 - f) * a[i] + f * a[i + 1];
}

int bf_synth_land(bf_surface **out, const bf_synth *g, int barrel, int bullet, int land, bf_synth_truth *truth)
{
  *out = NULL;
  const bf_synth_opts *o = &g->o;
  if (barrel < 0 || bullet < 0 || land < 1 || land > o->lands)
    return bf_error_set(BF_EINVAL, "synth: barrel %d bullet %d land %d out of range (lands 1..%d)", barrel,
                        bullet, land, o->lands);
  int rc = 0, ns = g->ns;
  double dx = o->land_spacing;
  bf_surface *s = NULL;
  float *sig = fftwf_alloc_real((size_t)ns), *i1 = fftwf_alloc_real((size_t)ns), *i2 = fftwf_alloc_real((size_t)ns);
  float *prof = NULL, *evo = NULL;
  double *form = NULL;
  fftwf_complex *spec = fftwf_alloc_complex((size_t)ns / 2 + 1);
  if (!sig || !i1 || !i2 || !spec) {
    rc = bf_error_set(BF_ENOMEM, "synth: out of memory for a land signature");
    goto done;
  }
  /* The bullet starts at a random land of the barrel; lands follow in order. */
  rng rb = rng_key(o->seed, S_BULLET, (uint64_t)barrel, (uint64_t)bullet, 0);
  int phase = (int)(unif(&rb) * o->lands);
  int bland = (land - 1 + phase) % o->lands + 1;
  rng rs = rng_key(o->seed, S_LAND_SIG, (uint64_t)barrel, (uint64_t)bland, 0);
  double sig_sd = o->striae_sd * unif2(&rs, 0.75, 1.25);
  double width = o->land_width * unif2(&rs, 0.97, 1.03); /* the barrel's land width */
  field1(g, g->p_sig, g->h_sig, ns, &rs, spec, sig);

  rng rl = rng_key(o->seed, S_BULLET_LAND, (uint64_t)barrel, (uint64_t)bullet, (uint64_t)land);
  double xc = unif2(&rl, -o->land_shift, o->land_shift);
  double groove = unif2(&rl, 150, 230), shoulder = unif2(&rl, 22, 38), sh_w = unif2(&rl, 25, 50);
  double slope_out = unif2(&rl, 0.05, 0.2);
  double radius = o->bullet_radius * unif2(&rl, 0.97, 1.05), z0 = unif2(&rl, 0, 150);
  double tilt = tan(unif2(&rl, -0.3, 0.3) * M_PI / 180), ky = unif2(&rl, -0.02, 0.02);
  double q = o->land_transfer * unif2(&rl, 0.9, 1.05);
  if (q > 1) q = 1;
  double qi = sqrt(1 - q * q);
  int damaged = unif(&rl) < o->damage;
  double d0 = 0, d1 = 0;
  if (damaged) {
    double len = width * unif2(&rl, 0.15, 0.35);
    d0 = unif2(&rl, -width / 2, width / 2 - len);
    d1 = d0 + len;
  }
  int nacross = (int)lround((width + 2 * groove) / dx), nalong = (int)lround(o->land_length * unif2(&rl, 0.95, 1.1) / dx);
  int end_side = unif(&rl) < 0.5 ? -1 : 1, end_top = unif(&rl) < 0.5;
  double end_len = unif2(&rl, 0, 0.12) * nalong;
  rng rq = rng_key(o->seed, S_BULLET_IND, (uint64_t)barrel, (uint64_t)bullet, (uint64_t)land);
  field1(g, g->p_sig, g->h_sig, ns, &rq, spec, i1);
  field1(g, g->p_sig, g->h_sig, ns, &rq, spec, i2);
  /* The bullet's profile across the land, relative to the LEA centre, at spacing dx. */
  prof = malloc((size_t)ns * sizeof *prof);
  if (!prof) {
    rc = bf_error_set(BF_ENOMEM, "synth: out of memory for a land profile");
    goto done;
  }
  /* Striae change along their length: independent profiles every EVO_STEP, blended smoothly. */
  int nknots = (int)ceil(nalong * dx / EVO_STEP) + 2;
  evo = fftwf_alloc_real((size_t)nknots * ns);
  if (!evo) {
    rc = bf_error_set(BF_ENOMEM, "synth: out of memory for a land profile");
    goto done;
  }
  for (int k = 0; k < nknots; k++)
    field1(g, g->p_sig, g->h_evo, ns, &rq, spec, evo + (size_t)k * ns);
  double evo_sd = EVO_SHARE * sig_sd;
  for (int i = 0; i < ns; i++) {
    double xl = (i - ns / 2) * dx; /* from the LEA centre */
    double a = q, extra = 0;
    if (damaged && xl >= d0 && xl <= d1) {
      a = 0.15 * q;
      extra = 1.2 * (i2[i] + i1[(i + ns / 3) % ns]) / 1.4142; /* scraped: rough, unrelated */
    }
    prof[i] = (float)(sig_sd * (a * sig[i] + qi * 0.8 * i1[i] + extra));
  }

  int nx = o->striae_along_x ? nalong : nacross, ny = o->striae_along_x ? nacross : nalong;
  if ((rc = bf_surface_new(&s, nx, ny, dx, dx)))
    goto done;
  rng rn = rng_key(o->seed, S_BULLET_NOISE, (uint64_t)barrel, (uint64_t)bullet, (uint64_t)land);
  double c_across = (nacross - 1) / 2.0, c_along = (nalong - 1) / 2.0;
  /* Per column: the land's form (arc, shoulders, groove slope) and how it drops out: steep
   * shoulder and groove columns lose points in streaks along the striae (a sine over the rows
   * above a per-column threshold), everywhere a few single points. */
  form = malloc((size_t)nacross * 4 * sizeof *form);
  if (!form) {
    rc = bf_error_set(BF_ENOMEM, "synth: out of memory for a land profile");
    goto done;
  }
  double *thr = form + nacross, *per = form + 2 * (size_t)nacross, *pha = form + 3 * (size_t)nacross;
  rng rmiss = rng_key(o->seed, S_BULLET_MISS, (uint64_t)barrel, (uint64_t)bullet, (uint64_t)land);
  for (int i = 0; i < nacross; i++) {
    double x = (i - c_across) * dx - xc, ax = fabs(x); /* from the LEA centre */
    double e = (ax - width / 2) / sh_w;                  /* the groove shoulder: a steep rise */
    form[i] = z0 + sqrt(radius * radius - x * x) - radius + shoulder * 0.5 * (1 + tanh(2 * e));
    if (ax > width / 2)
      form[i] -= slope_out * (ax - width / 2);
    int lossy = (e > -0.4 && e < 1.6) || ax > width / 2 + groove * 0.75;
    double u = unif(&rmiss);
    thr[i] = lossy && u < 0.6 ? unif2(&rmiss, -0.4, 0.7) : 2; /* 2: never */
    per[i] = 2 * M_PI / unif2(&rmiss, 15, 90);
    pha[i] = unif2(&rmiss, 0, 2 * M_PI);
  }
  for (int j = 0; j < nalong; j++) {
    double along = (j - c_along) * dx, kp = j * dx / EVO_STEP;
    int k0 = (int)kp;
    double wk = 0.5 - 0.5 * cos(M_PI * (kp - k0)); /* smooth blend between knots */
    const float *e0 = evo + (size_t)k0 * ns, *e1 = evo + (size_t)(k0 + 1) * ns;
    int at_end = end_top ? j < end_len : j > nalong - end_len;
    for (int i = 0; i < nacross; i++) {
      double x = (i - c_across) * dx - xc;
      double pidx = (x + tilt * along) / dx + ns / 2; /* striae run slightly off the axis */
      double z = form[i] + ky * along + interp1(prof, ns, pidx);
      z += evo_sd * ((1 - wk) * interp1(e0, ns, pidx) + wk * interp1(e1, ns, pidx));
      z += o->noise_sd * normal_fast(&rn);
      if (thr[i] < 1 && sin(per[i] * j + pha[i]) > thr[i])
        continue;
      double pmiss = 0.002;
      if (at_end && x * end_side > width / 2 - 150)
        pmiss = 0.6; /* the scan's end near a groove: a lost corner */
      if (unif(&rn) < pmiss)
        continue;
      size_t k = o->striae_along_x ? (size_t)i * nx + j : (size_t)j * nx + i;
      s->z[k] = (float)z;
    }
  }
  dropouts(s, &rn, o->dropout, o->striae_along_x);
  set_meta(s, "bullet land", o->seed, barrel, bullet, land);
  if (truth) {
    memset(truth, 0, sizeof *truth);
    truth->shift_x = xc;
    truth->barrel_land = bland;
    truth->damaged = damaged;
  }
  *out = s;
  s = NULL;
done:
  bf_surface_free(s);
  fftwf_free(sig);
  fftwf_free(i1);
  fftwf_free(i2);
  fftwf_free(spec);
  free(prof);
  free(form);
  fftwf_free(evo);
  return rc;
}

int bf_synth_cartridge1(bf_surface **out, const bf_synth_opts *o, int firearm, int firing, bf_synth_truth *truth)
{
  bf_synth *g = NULL;
  *out = NULL;
  int rc = bf_synth_new(&g, o);
  if (!rc)
    rc = bf_synth_cartridge(out, g, firearm, firing, truth);
  bf_synth_free(g);
  return rc;
}

int bf_synth_land1(bf_surface **out, const bf_synth_opts *o, int barrel, int bullet, int land, bf_synth_truth *truth)
{
  bf_synth *g = NULL;
  *out = NULL;
  int rc = bf_synth_new(&g, o);
  if (!rc)
    rc = bf_synth_land(out, g, barrel, bullet, land, truth);
  bf_synth_free(g);
  return rc;
}

int bf_synth_turn(bf_surface **out, const bf_surface *s, double deg)
{
  *out = NULL;
  if (!s || !s->z || s->nx < 1 || s->ny < 1 || !isfinite(deg))
    return bf_error_set(BF_EINVAL, "turn: no scan or angle %g", deg);
  double a = deg * M_PI / 180, c = cos(a), sn = sin(a);
  double w = s->nx * s->dx, h = s->ny * s->dy; /* turned bounding box in µm */
  double bw = fabs(c) * w + fabs(sn) * h, bh = fabs(sn) * w + fabs(c) * h;
  int nx = (int)ceil(bw / s->dx - 1e-9), ny = (int)ceil(bh / s->dy - 1e-9);
  if ((long)nx * ny > BF_MAX_POINTS)
    return bf_error_set(BF_ELIMIT, "turn: turned scan of %d x %d points is too large", nx, ny);
  bf_surface *t = NULL;
  int rc = bf_surface_new(&t, nx, ny, s->dx, s->dy);
  if (rc)
    return rc;
  t->flags = s->flags;
  t->meta = s->meta;
  t->mask_background = s->mask_background;
  if (s->mask && !(t->mask = malloc((size_t)nx * ny * sizeof *t->mask))) {
    bf_surface_free(t);
    return bf_error_set(BF_ENOMEM, "turn: out of memory");
  }
  if (s->nlabels > 0) {
    if (!(t->labels = malloc((size_t)s->nlabels * sizeof *t->labels))) {
      bf_surface_free(t);
      return bf_error_set(BF_ENOMEM, "turn: out of memory");
    }
    memcpy(t->labels, s->labels, (size_t)s->nlabels * sizeof *t->labels);
    t->nlabels = s->nlabels;
  }
  double scx = 0.5 * (s->nx - 1), scy = 0.5 * (s->ny - 1);
  double tcx = 0.5 * (nx - 1), tcy = 0.5 * (ny - 1), ar = s->dy / s->dx;
  for (int y = 0; y < ny; y++)
    for (int x = 0; x < nx; x++) {
      /* source point (in x-spacing units) = R(-deg) (p - tc) + sc */
      double u = x - tcx, v = (y - tcy) * ar;
      double fx = c * u + sn * v + scx, fy = (-sn * u + c * v) / ar + scy;
      int x0 = (int)floor(fx), y0 = (int)floor(fy);
      double ex = fx - x0, ey = fy - y0;
      float val = NAN;
      if (x0 >= 0 && y0 >= 0 && x0 + 1 < s->nx && y0 + 1 < s->ny) {
        const float *p = s->z + (size_t)y0 * s->nx + x0;
        float q[4] = {p[0], p[1], p[s->nx], p[s->nx + 1]};
        if (!isnan(q[0]) && !isnan(q[1]) && !isnan(q[2]) && !isnan(q[3]))
          val = (float)((1 - ey) * ((1 - ex) * q[0] + ex * q[1]) + ey * ((1 - ex) * q[2] + ex * q[3]));
      }
      int xn = (int)floor(fx + 0.5), yn = (int)floor(fy + 0.5);
      int in = xn >= 0 && yn >= 0 && xn < s->nx && yn < s->ny;
      if (isnan(val) && in)
        val = s->z[(size_t)yn * s->nx + xn];
      t->z[(size_t)y * nx + x] = val;
      if (t->mask)
        t->mask[(size_t)y * nx + x] = in ? s->mask[(size_t)yn * s->nx + xn] : s->mask_background;
    }
  *out = t;
  return 0;
}
