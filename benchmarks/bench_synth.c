/* bench_synth [N]: synthetic items generated in process per second (cartridge processed, raw,
 * bullet lands; one thread and all threads), then the statistics of synthetic items beside
 * the real ones in ../shared/data (size, missing, height sd, spectrum per octave, striae). */
#include "bf_error.h"
#include "bf_synth.h"
#include "bf_x3p.h"

#include <fftw3.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

enum { CART, RAW, LAND };

static double rate(bf_synth *g, int what, int n, int threads)
{
  int fails = 0;
  double t0 = now();
#pragma omp parallel for num_threads(threads) schedule(dynamic) reduction(+ : fails)
  for (int i = 0; i < n; i++) {
    bf_surface *s = NULL;
    int rc = what == LAND ? bf_synth_land(&s, g, i / 6, i % 3, i % 6 + 1, NULL)
                          : bf_synth_cartridge(&s, g, i, i % 3, NULL);
    fails += rc != 0;
    bf_surface_free(s);
  }
  double t = now() - t0;
  if (fails)
    fprintf(stderr, "%d items failed: %s\n", fails, bf_error_last());
  return n / t;
}

/* Valid fraction, sd, share of power per octave of wavelength from 12.5 µm (9 octaves). */
static void cart_stats(const bf_surface *s, double *valid, double *sd, double band[9])
{
  int nx = s->nx, ny = s->ny;
  size_t n = (size_t)nx * ny, k = 0;
  double sum = 0, ss = 0;
  for (size_t i = 0; i < n; i++)
    if (!isnan(s->z[i])) {
      sum += s->z[i];
      k++;
    }
  double m = sum / k;
  float *in = fftwf_alloc_real(n);
  fftwf_complex *out = fftwf_alloc_complex((size_t)ny * (nx / 2 + 1));
  fftwf_plan p = fftwf_plan_dft_r2c_2d(ny, nx, in, out, FFTW_ESTIMATE);
  for (size_t i = 0; i < n; i++) {
    in[i] = isnan(s->z[i]) ? 0 : (float)(s->z[i] - m);
    ss += (double)in[i] * in[i];
  }
  *valid = (double)k / n;
  *sd = sqrt(ss / k);
  fftwf_execute(p);
  double tot = 0;
  memset(band, 0, 9 * sizeof *band);
  for (int y = 0; y < ny; y++) {
    int fy = y <= ny / 2 ? y : y - ny;
    for (int x = 0; x <= nx / 2; x++) {
      double f = hypot((double)x / (nx * s->dx), (double)fy / (ny * s->dy));
      if (f == 0)
        continue;
      const float *c = out[(size_t)y * (nx / 2 + 1) + x];
      double pw = ((double)c[0] * c[0] + (double)c[1] * c[1]) * ((x == 0 || x == nx / 2) ? 1 : 2);
      int b = (int)floor(log2(1 / f / 12.5));
      b = b < 0 ? 0 : b > 8 ? 8 : b;
      band[b] += pw;
      tot += pw;
    }
  }
  for (int b = 0; b < 9; b++)
    band[b] /= tot;
  fftwf_destroy_plan(p);
  fftwf_free(in);
  fftwf_free(out);
}

static void print_cart(const char *name, const bf_surface *s)
{
  double v, sd, band[9];
  cart_stats(s, &v, &sd, band);
  printf("  %-22s %4dx%-4d valid %.3f sd %.2f um  bands", name, s->nx, s->ny, v, sd);
  for (int b = 0; b < 7; b++)
    printf(" %.3f", band[b]);
  printf("\n");
}

/* Striae along the shorter axis: signature = mean along the striae minus a 100 µm moving mean;
 * prints its sd over the middle 60 % and the sd of single rows minus that mean. */
static void print_land(const char *name, const bf_surface *s)
{
  int along_y = s->nx > s->ny, L = along_y ? s->nx : s->ny, M = along_y ? s->ny : s->nx;
#define Z(i, j) (along_y ? s->z[(size_t)(j) * s->nx + (i)] : s->z[(size_t)(i) * s->nx + (j)])
  double *m = calloc((size_t)L, sizeof *m), *sig = calloc((size_t)L, sizeof *sig);
  size_t nv = 0;
  for (int i = 0; i < L; i++) {
    double t = 0;
    int c = 0;
    for (int j = 0; j < M; j++)
      if (!isnan(Z(i, j))) {
        t += Z(i, j);
        c++;
      }
    nv += c;
    m[i] = c ? t / c : NAN;
  }
  int hw = (int)(50 / s->dx), a = L / 5, b = L - L / 5;
  double ss = 0, rs = 0;
  long sc = 0, rc = 0;
  for (int i = a; i < b; i++) {
    double t = 0;
    int c = 0;
    for (int k = i - hw; k <= i + hw; k++)
      if (k >= 0 && k < L && !isnan(m[k])) {
        t += m[k];
        c++;
      }
    sig[i] = m[i] - t / c;
    if (!isnan(sig[i])) {
      ss += sig[i] * sig[i];
      sc++;
    }
  }
  for (int j = 0; j < M; j += M / 10)
    for (int i = a + hw; i < b - hw; i++) {
      double t = 0;
      int c = 0;
      for (int k = i - hw; k <= i + hw; k++)
        if (!isnan(Z(k, j))) {
          t += Z(k, j);
          c++;
        }
      if (isnan(Z(i, j)) || !c || isnan(sig[i]))
        continue;
      double r = Z(i, j) - t / c - sig[i];
      rs += r * r;
      rc++;
    }
#undef Z
  printf("  %-36s %4d across x %3d along, missing %.3f, signature sd %.3f um, row noise sd %.3f um\n", name,
         L, M, 1 - (double)nv / ((double)L * M), sqrt(ss / sc), sqrt(rs / rc));
  free(m);
  free(sig);
}

int main(int argc, char **argv)
{
  int n = argc > 1 ? atoi(argv[1]) : 40;
  if (n < 1)
    n = 40;
  int nt = omp_get_max_threads();
  bf_synth_opts o = BF_SYNTH_OPTS_INIT, oraw = BF_SYNTH_OPTS_INIT;
  oraw.processed = 0;
  bf_synth *g = NULL, *graw = NULL;
  if (bf_synth_new(&g, &o) || bf_synth_new(&graw, &oraw)) {
    fprintf(stderr, "bench_synth: %s\n", bf_error_last());
    return 1;
  }
  printf("synthetic items generated in process (%d items each; machine load makes these noisy)\n", n);
  printf("  %-34s %10s %10s\n", "", "1 thread", "threads");
  const char *names[3] = {"cartridge processed 6.25 um", "cartridge raw 6.25 um", "bullet land 1.5625 um"};
  for (int w = CART; w <= LAND; w++) {
    bf_synth *gg = w == RAW ? graw : g;
    double r1 = rate(gg, w, n, 1), rn = rate(gg, w, n, nt);
    printf("  %-34s %8.1f/s %8.1f/s (%d)\n", names[w], r1, rn, nt);
  }

  printf("\nprocessed breech faces: power share per wavelength octave 12.5-25, 25-50, ... 800-1600 um\n");
  const char *root = getenv("BF_SHARED") ? getenv("BF_SHARED") : BF_SHARED_DIR;
  const char *fadul[] = {"Fadul 1-1", "Fadul 1-2", "Fadul 5-1", "Fadul A", "Fadul X"};
  char path[4096];
  for (int i = 0; i < 5; i++) {
    bf_surface *s = NULL;
    snprintf(path, sizeof path, "%s/data/cartridge/fadul/%s.x3p", root, fadul[i]);
    if (bf_x3p_read(&s, path, NULL) == 0)
      print_cart(fadul[i], s);
    bf_surface_free(s);
  }
  for (int i = 0; i < 5; i++) {
    bf_surface *s = NULL;
    char name[64];
    snprintf(name, sizeof name, "synth F%d-%d", i / 2 + 1, i % 2 + 1);
    if (bf_synth_cartridge(&s, g, i / 2, i % 2, NULL) == 0)
      print_cart(name, s);
    bf_surface_free(s);
  }
  printf("\nbullet lands\n");
  const char *lands[] = {"hamby44/HS44_Barrel1_Bullet1_Land1", "hamby44/HS44_Barrel1_Bullet2_Land3",
                         "hamby252/Hamby252_Barrel1_Bullet1_Land1", "hamby252/Hamby252_Barrel2_Bullet1_Land1"};
  for (int i = 0; i < 4; i++) {
    bf_surface *s = NULL;
    snprintf(path, sizeof path, "%s/data/bullet/%s.x3p", root, lands[i]);
    if (bf_x3p_read(&s, path, NULL) == 0)
      print_land(strchr(lands[i], '/') + 1, s);
    bf_surface_free(s);
  }
  for (int i = 0; i < 4; i++) {
    bf_surface *s = NULL;
    char name[64];
    snprintf(name, sizeof name, "synth barrel %d bullet %d land %d", i / 2 + 1, i % 2 + 1, i + 1);
    if (bf_synth_land(&s, g, i / 2, i % 2, i + 1, NULL) == 0)
      print_land(name, s);
    bf_surface_free(s);
  }
  bf_synth_free(g);
  bf_synth_free(graw);
  return 0;
}
