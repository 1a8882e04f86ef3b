/* The FFT ground floor: one plan cache (one plan per size, from any thread), the one size rule,
 * the wisdom file (saved atomically, private; a corrupt, foreign or planted file ignored with a
 * note), the band inverse (the rows of small shifts only) and order statistics by selection. */
#include "bf_test.h"
#include "bf_error.h"
#include "bf_fft.h"
#include "bf_select.h"

#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <unistd.h>

static void test_cache(void)
{
  const bf_fft_plan *a = bf_fft_plan_get(1, 96), *b = bf_fft_plan_get(1, 96);
  CHECK(a && a == b && a->n0 == 1 && a->n1 == 96 && a->r2c && a->c2r);
  const bf_fft_plan *e = bf_fft_plan_estimate(1, 96);
  CHECK(e && e != a); /* a measured and an estimated plan are different entries */
  CHECK(!bf_fft_plan_get(0, 8) && !bf_fft_plan_estimate(4, 1));
  /* many threads asking for the same new sizes at once get one plan each */
  const bf_fft_plan *got[8][3];
#pragma omp parallel for num_threads(4)
  for (int t = 0; t < 8; t++) {
    got[t][0] = bf_fft_plan_estimate(36, 48);
    got[t][1] = bf_fft_plan_estimate(1, 60 + 4 * (t % 2));
    got[t][2] = bf_fft_plan_get(12, 16);
  }
  int same = 1;
  for (int t = 0; t < 8; t++)
    same &= got[t][0] == got[0][0] && got[t][1] == got[t % 2][1] && got[t][2] == got[0][2] &&
            got[t][0] && got[t][1] && got[t][2];
  CHECK(same);
  /* the plan transforms: a 2D delta's spectrum is flat, and back gives n0*n1 at the origin */
  const bf_fft_plan *p = got[0][0];
  float *r = fftwf_alloc_real(36 * 48);
  fftwf_complex *c = fftwf_alloc_complex(36 * 25);
  memset(r, 0, sizeof(float) * 36 * 48);
  r[0] = 1;
  fftwf_execute_dft_r2c(p->r2c, r, c);
  int flat = 1;
  for (int i = 0; i < 36 * 25; i++)
    flat &= fabsf(c[i][0] - 1) < 1e-6f && fabsf(c[i][1]) < 1e-6f;
  CHECK(flat);
  fftwf_execute_dft_c2r(p->c2r, c, r);
  CHECK(fabsf(r[0] - 36 * 48) < 1e-3f && fabsf(r[1]) < 1e-3f);
  fftwf_free(r);
  fftwf_free(c);
}

static void test_sizes(void)
{
  int ok = 1;
  for (int n = 1; n < 3000; n++) {
    int s = bf_fft_fast_size(n), m = s;
    while (m % 2 == 0) m /= 2;
    while (m % 3 == 0) m /= 3;
    while (m % 5 == 0) m /= 5;
    while (m % 7 == 0) m /= 7;
    ok &= s >= n && s % 4 == 0 && m == 1 && (n < 5 || bf_fft_fast_size(n - 1) <= s);
  }
  CHECK(ok);
  CHECK(bf_fft_fast_size(102) == 108 && bf_fft_good_size(102) == 105 && bf_fft_fast_size(1) == 4);
}

static void write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

static void test_wisdom(void)
{
  const char *dir = bf_t_tmpdir("fft");
  char path[4200], bad[4200], link[4200], buf[4200];
  snprintf(path, sizeof path, "%s/cache/bfm/wisdom-fftwf", dir);
  /* the default path: BF_FFTW_WISDOM, off, XDG_CACHE_HOME, HOME */
  setenv("BF_FFTW_WISDOM", "off", 1);
  CHECK(bf_fft_wisdom_path(buf, sizeof buf) == BF_ENOTFOUND);
  CHECK(bf_fft_wisdom_load(NULL) == 0 && bf_fft_wisdom_save(NULL) == 0);
  unsetenv("BF_FFTW_WISDOM");
  setenv("XDG_CACHE_HOME", "/x/c", 1);
  CHECK(bf_fft_wisdom_path(buf, sizeof buf) == 0 && !strcmp(buf, "/x/c/bfm/wisdom-fftwf"));
  setenv("XDG_CACHE_HOME", "relative", 1);
  setenv("HOME", "/h", 1);
  CHECK(bf_fft_wisdom_path(buf, sizeof buf) == 0 && !strcmp(buf, "/h/.cache/bfm/wisdom-fftwf"));
  setenv("BF_FFTW_WISDOM", path, 1);

  /* a newly measured plan makes the wisdom worth saving: folder made, private file, no temp */
  unsetenv("BF_FFTW_ESTIMATE");
  CHECK(bf_fft_plan_get(1, 84) != NULL);
  CHECK(bf_fft_wisdom_save(NULL) == 0);
  struct stat st;
  CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size > 20);
  CHECK(strstr(bf_t_read(path), "fftwf_wisdom") != NULL);
  snprintf(buf, sizeof buf, "ls '%s/cache/bfm' | grep -c tmp >/dev/null", dir);
  CHECK(system(buf) != 0); /* no temporary file left beside it */
  CHECK(bf_fft_wisdom_load(path) == 0);
  /* nothing new since: no write (the file keeps its inode and time) */
  ino_t ino = st.st_ino;
  CHECK(bf_fft_wisdom_save(NULL) == 0 && stat(path, &st) == 0 && st.st_ino == ino);

  /* corrupt, foreign (double precision header) and planted files are ignored with a message */
  snprintf(bad, sizeof bad, "%s/corrupt", dir);
  write_file(bad, "(fftw-3.3.10 fftwf_wisdom #x1 garbage");
  CHECK(bf_fft_wisdom_load(bad) == BF_EFORMAT && strstr(bf_error_last(), "corrupt") &&
        strstr(bf_error_last(), bad));
  write_file(bad, "(fftw-3.3.10 fftw_wisdom #x4be12fff #x7b2df9b2 #xa5975329 #x385b0041\n)\n");
  CHECK(bf_fft_wisdom_load(bad) == BF_EFORMAT);
  write_file(bad, "");
  CHECK(bf_fft_wisdom_load(bad) == BF_EFORMAT);
  snprintf(link, sizeof link, "%s/link", dir);
  CHECK(symlink(path, link) == 0);
  CHECK(bf_fft_wisdom_load(link) == BF_EFORMAT); /* O_NOFOLLOW */
  CHECK(bf_fft_wisdom_load(dir) == BF_EFORMAT);  /* not a regular file */
  snprintf(buf, sizeof buf, "%s/absent", dir);
  CHECK(bf_fft_wisdom_load(buf) == 0); /* first run: no file yet */
  /* the cache still plans after a rejected file */
  CHECK(bf_fft_plan_get(1, 88) != NULL);

  /* bfm notes a corrupt wisdom file in one line and carries on */
  write_file(path, "not wisdom at all");
  char out[4200], err[4200], args[4400];
  snprintf(out, sizeof out, "%s/out", dir);
  snprintf(err, sizeof err, "%s/err", dir);
  snprintf(args, sizeof args, "synth --help");
  CHECK(bf_t_bfm(args, out, err) == 0);
  snprintf(args, sizeof args, "hits '%s/absent.h5'", dir);
  int rc = bf_t_bfm(args, out, err);
  const char *e = bf_t_read(err);
  CHECKF(rc == 1 && strstr(e, "bfm: note: ") && strstr(e, "wisdom-fftwf: not FFTW") &&
         strchr(strstr(e, "note: "), '\n') == strstr(e, "\nbfm hits") , "rc %d: %s", rc, e);
}

static int cmp_f(const void *a, const void *b)
{
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static void test_select(void)
{
  unsigned s = 12345;
  int ok = 1;
  for (int trial = 0; trial < 200; trial++) {
    int n = 1 + trial * 7 % 500;
    float v[512], w[512];
    for (int i = 0; i < n; i++) {
      s = s * 1103515245u + 12345u;
      /* few distinct values on odd trials: duplicates are the hard case */
      v[i] = trial % 2 ? (float)((s >> 16) % 5) : (float)(s >> 8) / 65536.0f;
      w[i] = v[i];
    }
    if (trial % 3 == 0) /* sorted input */
      qsort(v, n, sizeof *v, cmp_f);
    qsort(w, n, sizeof *w, cmp_f);
    size_t k = (size_t)(trial * 31) % n;
    float x = bf_select_float(v, n, k);
    ok &= x == w[k];
    for (int i = 0; i < n; i++)
      ok &= i < (int)k ? v[i] <= x : v[i] >= x;
  }
  CHECK(ok);
  double d[5] = {3, 1, 4, 1, 5};
  CHECK(bf_select_double(d, 5, 2) == 3 && bf_select_double(d, 2, 0) == 1);
}

/* One band inverse (rows lo..lo+cnt-1 of n0 x n1) against the full inverse of the same
 * spectrum (random real image): the same values on those rows. */
static void band_case(int n0, int n1, int lo, int cnt)
{
  int h = n1 / 2 + 1;
  const bf_fft_band *b = bf_fft_band_get(n0, n1, lo, cnt);
  CHECK(b && b == bf_fft_band_get(n0, n1, lo, cnt) && b->n0 == n0 && b->n1 == n1 &&
        b->lo == lo && b->cnt == cnt);
  const bf_fft_plan *p = bf_fft_plan_get(n0, n1);
  float *img = fftwf_alloc_real((size_t)n0 * n1), *full = fftwf_alloc_real((size_t)n0 * n1);
  float *band = fftwf_alloc_real((size_t)cnt * n1);
  fftwf_complex *F = fftwf_alloc_complex((size_t)n0 * h), *G = fftwf_alloc_complex((size_t)n0 * h);
  fftwf_complex *rb = fftwf_alloc_complex((size_t)cnt * h);
  if (!b || !p || !img || !full || !band || !F || !G || !rb)
    goto done;
  unsigned u = 7;
  for (int i = 0; i < n0 * n1; i++) {
    u = u * 1103515245u + 12345u;
    img[i] = (float)(u >> 8) / 16777216.0f - 0.5f;
  }
  fftwf_execute_dft_r2c(p->r2c, img, F);
  memcpy(G, F, sizeof(fftwf_complex) * n0 * h);
  fftwf_execute_dft_c2r(p->c2r, G, full);
  bf_fft_band_inverse(b, F, rb, band);
  double worst = 0;
  for (int y = lo; y < lo + cnt; y++)
    for (int x = 0; x < n1; x++) {
      double d = fabs(band[(size_t)(y - lo) * n1 + x] - full[(size_t)((y + n0) % n0) * n1 + x]);
      worst = d > worst ? d : worst;
    }
  /* both are n0*n1 times the image (the round trip), so compare at that scale */
  CHECK(worst < 1e-4 * n0 * n1);
  int y0 = (lo + n0) % n0;
  CHECK(fabs(band[3] / (n0 * n1) - img[(size_t)y0 * n1 + 3]) < 1e-4);
done:
  fftwf_free(img);
  fftwf_free(full);
  fftwf_free(band);
  fftwf_free(F);
  fftwf_free(G);
  fftwf_free(rb);
}

/* The band inverse gives the full inverse's values on its rows: the screen's rows -s..s of a
 * square transform, and the CMC's first rows of an oblong one; bands outside the transform are
 * refused. */
static void test_band(void)
{
  band_case(60, 60, -7, 15);
  band_case(108, 100, 0, 67);
  band_case(20, 24, 15, 9); /* wraps past the last row */
  CHECK(!bf_fft_band_get(10, 10, -5, 11) && !bf_fft_band_get(10, 10, 0, 0) &&
        !bf_fft_band_get(10, 10, -10, 3) && !bf_fft_band_get(10, 10, 10, 1));
}

/* a conj(b), into another array and in place, product by product as written */
static void test_cross(void)
{
  enum { N = 37 };
  fftwf_complex *a = fftwf_alloc_complex(N), *b = fftwf_alloc_complex(N), *o = fftwf_alloc_complex(N);
  for (int i = 0; i < N; i++) {
    a[i][0] = 0.25f * i - 3, a[i][1] = 1.5f - 0.125f * i;
    b[i][0] = 0.5f + 0.0625f * i, b[i][1] = (float)(i % 5) - 2;
  }
  bf_fft_cross(o, a, b, N);
  int ok = 1;
  for (int i = 0; i < N; i++) {
    float re = a[i][0] * b[i][0] + a[i][1] * b[i][1], im = a[i][1] * b[i][0] - a[i][0] * b[i][1];
    ok &= o[i][0] == re && o[i][1] == im;
  }
  bf_fft_cross(a, a, b, N);
  for (int i = 0; i < N; i++)
    ok &= a[i][0] == o[i][0] && a[i][1] == o[i][1];
  CHECK(ok);
  fftwf_free(a), fftwf_free(b), fftwf_free(o);
}

int main(void)
{
  setenv("BF_FFTW_WISDOM", "off", 1);
  test_sizes();
  test_select();
  test_cache();
  test_band();
  test_cross();
  test_wisdom();
  bf_fft_cleanup();
  return bf_t_done();
}
