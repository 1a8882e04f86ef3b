/* Plan cache, planner lock and wisdom file: the only place bfm calls the FFTW planner besides
 * code that holds bf_fft_lock(). */
#define _GNU_SOURCE
#include "bf_fft.h"
#include "bf_alloc.h"
#include "bf_error.h"
#include "bf_simd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Enough for every size of a long run: band-pass sizes follow the scans but the size rule
 * quantises them (a few dozen per axis); a full cache is an error, never a silent re-plan. */
#define BF_FFT_MAX_PLANS 4096
/* A wisdom file for bfm's few dozen sizes is tens of kB; anything far larger is not ours. */
#define BF_WISDOM_MAX (8 << 20)

typedef struct {
  bf_fft_plan p;
  int measured;
} entry;

static pthread_mutex_t planner = PTHREAD_MUTEX_INITIALIZER;
static entry *cache[BF_FFT_MAX_PLANS];
static int ncache;
static bf_fft_band *bands[BF_FFT_MAX_PLANS];
static int nbands;
static int wisdom_new; /* a plan was measured without wisdom: worth writing back */

void bf_fft_lock(void)
{
  pthread_mutex_lock(&planner);
}

void bf_fft_unlock(void)
{
  pthread_mutex_unlock(&planner);
}

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

static void destroy(fftwf_plan p)
{
  if (p)
    fftwf_destroy_plan(p);
}

/* 2D transforms of at most this many points are planned with FFTW_PATIENT rather than
 * FFTW_MEASURE: the CMC's coarse cells (~100 x 100), transformed ~3,400 times per pair, run
 * ~15 % faster by such plans (FFTW finds odd-radix plans of 5 x 5 x 4 it does not try when
 * measuring); planning costs ~1 s a size once, then comes from wisdom. Above it, PATIENT found
 * nothing faster (128 x 128, 160 x 160) and plans for seconds. 1D transforms (bullet
 * signatures, one size per land) stay measured: patient plans of their many sizes made a first
 * bullet comparison take 30 s. */
#define BF_FFT_PATIENT_MAX (128 * 128)

/* The one planning policy of every cached plan of an n0 x n1 transform (called with the lock
 * held): estimated when measured = 0 or BF_FFTW_ESTIMATE is set; else measured plans (patient
 * ones for 2D up to BF_FFT_PATIENT_MAX) come from wisdom when it has them, and a plan FFTW had
 * to time marks the wisdom as worth saving. make(arg, flags) plans and returns 0, or leaves
 * nothing planned and returns -1. */
static int plan_with(int (*make)(void *arg, unsigned flags), void *arg, int measured, int n0,
                     int n1)
{
  if (!measured || getenv("BF_FFTW_ESTIMATE"))
    return make(arg, FFTW_ESTIMATE);
  unsigned level =
    n0 > 1 && (size_t)n0 * n1 <= BF_FFT_PATIENT_MAX ? FFTW_PATIENT : FFTW_MEASURE;
  if (!make(arg, level | FFTW_WISDOM_ONLY))
    return 0;
  int rc = make(arg, level);
  wisdom_new |= !rc;
  return rc;
}

typedef struct pair_arg {
  bf_fft_plan *q;
  float *r;
  fftwf_complex *c;
} pair_arg;

static int make_pair(void *arg, unsigned flags)
{
  pair_arg *a = arg;
  bf_fft_plan *q = a->q;
  if (q->n0 == 1) {
    q->r2c = fftwf_plan_dft_r2c_1d(q->n1, a->r, a->c, flags);
    q->c2r = fftwf_plan_dft_c2r_1d(q->n1, a->c, a->r, flags);
  } else {
    q->r2c = fftwf_plan_dft_r2c_2d(q->n0, q->n1, a->r, a->c, flags);
    q->c2r = fftwf_plan_dft_c2r_2d(q->n0, q->n1, a->c, a->r, flags);
  }
  if (!q->r2c || !q->c2r) {
    destroy(q->r2c);
    destroy(q->c2r);
    q->r2c = q->c2r = NULL;
    return -1;
  }
  return 0;
}

/* Called with the lock held. */
static entry *plan_new(int n0, int n1, int measured)
{
  size_t nr = (size_t)n0 * n1, nc = (size_t)n0 * (n1 / 2 + 1);
  float *r = fftwf_alloc_real(nr);
  fftwf_complex *c = fftwf_alloc_complex(nc);
  entry *e = bf_calloc(1, sizeof *e);
  if (!r || !c || !e)
    goto fail;
  e->p.n0 = n0;
  e->p.n1 = n1;
  e->measured = measured;
  if (plan_with(make_pair, &(pair_arg){&e->p, r, c}, measured, n0, n1))
    goto fail;
  fftwf_free(r);
  fftwf_free(c);
  return e;
fail:
  bf_free(e);
  fftwf_free(r);
  fftwf_free(c);
  return NULL;
}

static const bf_fft_plan *plan_get(int n0, int n1, int measured)
{
  entry *p = NULL;
  int full = 0;
  if (n0 < 1 || n1 < 2 || (size_t)n0 * n1 > ((size_t)1 << 31)) {
    bf_error_set(BF_EINVAL, "FFT size %d x %d out of range", n0, n1);
    return NULL;
  }
  bf_fft_lock();
  for (int i = 0; i < ncache && !p; i++)
    if (cache[i]->p.n0 == n0 && cache[i]->p.n1 == n1 && cache[i]->measured == measured)
      p = cache[i];
  if (!p && ncache < BF_FFT_MAX_PLANS) {
    if ((p = plan_new(n0, n1, measured)))
      cache[ncache++] = p;
  } else if (!p)
    full = 1;
  bf_fft_unlock();
  if (!p)
    bf_error_set(full ? BF_ELIMIT : BF_ENOMEM, "no FFT plan for %d x %d%s", n0, n1,
                 full ? " (plan cache full)" : "");
  return p ? &p->p : NULL;
}

const bf_fft_plan *bf_fft_plan_get(int n0, int n1)
{
  return plan_get(n0, n1, 1);
}

const bf_fft_plan *bf_fft_plan_estimate(int n0, int n1)
{
  return plan_get(n0, n1, 0);
}

/* The band plans (for plan_with; the arrays only for planning). */
static int band_make(void *arg, unsigned flags)
{
  bf_fft_band *b = arg;
  int n0 = b->n0, n1 = b->n1, h = n1 / 2 + 1, r = b->cnt;
  fftwf_complex *c = fftwf_alloc_complex((size_t)n0 * h), *rb = fftwf_alloc_complex((size_t)r * h);
  float *o = fftwf_alloc_real((size_t)r * n1);
  if (c && rb && o) {
    b->cols = fftwf_plan_many_dft(1, &n0, h, c, NULL, h, 1, c, NULL, h, 1, FFTW_BACKWARD, flags);
    b->rows = fftwf_plan_many_dft_c2r(1, &n1, r, rb, NULL, 1, h, o, NULL, 1, n1, flags);
  }
  if (!b->cols || !b->rows) {
    destroy(b->cols);
    destroy(b->rows);
    b->cols = b->rows = NULL;
  }
  fftwf_free(c);
  fftwf_free(rb);
  fftwf_free(o);
  return b->cols ? 0 : -1;
}

const bf_fft_band *bf_fft_band_get(int n0, int n1, int lo, int cnt)
{
  bf_fft_band *b = NULL;
  int full = 0;
  if (n0 < 1 || n1 < 2 || cnt < 1 || cnt > n0 || lo <= -n0 || lo >= n0 ||
      (size_t)n0 * n1 > ((size_t)1 << 31)) {
    bf_error_set(BF_EINVAL, "FFT band of rows %d..%d of %d x %d out of range", lo, lo + cnt - 1,
                 n0, n1);
    return NULL;
  }
  bf_fft_lock();
  for (int i = 0; i < nbands && !b; i++)
    if (bands[i]->n0 == n0 && bands[i]->n1 == n1 && bands[i]->lo == lo && bands[i]->cnt == cnt)
      b = bands[i];
  if (!b && nbands < BF_FFT_MAX_PLANS && (b = bf_calloc(1, sizeof *b))) {
    *b = (bf_fft_band){.n0 = n0, .n1 = n1, .lo = lo, .cnt = cnt};
    if (!plan_with(band_make, b, 1, n0, n1))
      bands[nbands++] = b;
    else {
      bf_free(b);
      b = NULL;
    }
  } else if (!b)
    full = nbands >= BF_FFT_MAX_PLANS;
  bf_fft_unlock();
  if (!b)
    bf_error_set(full ? BF_ELIMIT : BF_ENOMEM, "no FFT band plan for rows %d..%d of %d x %d%s",
                 lo, lo + cnt - 1, n0, n1, full ? " (plan cache full)" : "");
  return b;
}

void bf_fft_band_inverse(const bf_fft_band *b, fftwf_complex *F, fftwf_complex *rowbuf, float *out)
{
  int n0 = b->n0, lo = b->lo, cnt = b->cnt;
  size_t h = (size_t)b->n1 / 2 + 1;
  fftwf_execute_dft(b->cols, F, F);
  if (lo == 0) {
    fftwf_execute_dft_c2r(b->rows, F, out); /* the rows wanted are the first: in place */
    return;
  }
  /* rows lo..lo+cnt-1 modulo n0, in order, into rowbuf */
  for (int k = 0; k < cnt;) {
    int y = ((lo + k) % n0 + n0) % n0, run = n0 - y < cnt - k ? n0 - y : cnt - k;
    memcpy(rowbuf + (size_t)k * h, F + (size_t)y * h, (size_t)run * h * sizeof *F);
    k += run;
  }
  fftwf_execute_dft_c2r(b->rows, rowbuf, out);
}

BF_SIMD_CLONES
void bf_fft_cross(fftwf_complex *out, const fftwf_complex *a, const fftwf_complex *b, size_t n)
{
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    float re = a[i][0] * b[i][0] + a[i][1] * b[i][1];
    float im = a[i][1] * b[i][0] - a[i][0] * b[i][1];
    out[i][0] = re;
    out[i][1] = im;
  }
}

void bf_fft_cleanup(void)
{
  bf_fft_lock();
  for (int i = 0; i < ncache; i++) {
    destroy(cache[i]->p.r2c);
    destroy(cache[i]->p.c2r);
    bf_free(cache[i]);
  }
  ncache = 0;
  for (int i = 0; i < nbands; i++) {
    destroy(bands[i]->cols);
    destroy(bands[i]->rows);
    bf_free(bands[i]);
  }
  nbands = 0;
  bf_fft_unlock();
}

/* ---- wisdom ---- */

int bf_fft_wisdom_path(char *buf, size_t size)
{
  const char *env = getenv("BF_FFTW_WISDOM"), *xdg = getenv("XDG_CACHE_HOME"),
             *home = getenv("HOME");
  int n;
  if (env)
    n = (!*env || !strcmp(env, "off")) ? -1 : snprintf(buf, size, "%s", env);
  else if (xdg && *xdg == '/') /* XDG: a relative value is invalid and ignored */
    n = snprintf(buf, size, "%s/bfm/wisdom-fftwf", xdg);
  else if (home && *home)
    n = snprintf(buf, size, "%s/.cache/bfm/wisdom-fftwf", home);
  else
    n = -1;
  if (n < 0)
    return bf_error_set(BF_ENOTFOUND, "FFTW wisdom disabled (no BF_FFTW_WISDOM, cache or home)");
  if ((size_t)n >= size)
    return bf_error_set(BF_ELIMIT, "FFTW wisdom path too long");
  return 0;
}

int bf_fft_wisdom_load(const char *path)
{
  char def[4096], *text = NULL;
  int rc = 0, fd = -1;
  struct stat st;
  if (!path) {
    if (bf_fft_wisdom_path(def, sizeof def))
      return 0; /* disabled: plan as without wisdom */
    path = def;
  }
  if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0) {
    if (errno != ENOENT)
      rc = bf_error_set(BF_EFORMAT, "%s: cannot read FFTW wisdom (%s); ignored", path,
                        strerror(errno));
    goto done;
  }
  if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
      st.st_size > BF_WISDOM_MAX) {
    rc = bf_error_set(BF_EFORMAT, "%s: FFTW wisdom is not a regular file of this user under "
                      "%d MB; ignored", path, BF_WISDOM_MAX >> 20);
    goto done;
  }
  if (!(text = bf_malloc((size_t)st.st_size + 1))) {
    rc = bf_error_set(BF_ENOMEM, "%s: out of memory for FFTW wisdom", path);
    goto done;
  }
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t k = read(fd, text + got, (size_t)st.st_size - got);
    if (k <= 0) {
      if (k < 0 && errno == EINTR)
        continue;
      break;
    }
    got += (size_t)k;
  }
  text[got] = 0;
  /* FFTW checks the header (version, precision) and the syntax, and keeps the wisdom it had
   * when it rejects a file. */
  bf_fft_lock();
  int ok = got == (size_t)st.st_size && fftwf_import_wisdom_from_string(text);
  bf_fft_unlock();
  if (!ok)
    rc = bf_error_set(BF_EFORMAT, "%s: not FFTW %s single-precision wisdom (corrupt or from "
                      "another FFTW); ignored", path, fftwf_version);
done:
  if (fd >= 0)
    close(fd);
  bf_free(text);
  return rc;
}

/* mkdir -p of path's folder, the last level private (0700). */
static int make_parent(const char *path)
{
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir)
    return 0;
  *slash = 0;
  for (char *p = dir + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(dir, 0700) && errno != EEXIST)
        return -1;
      *p = '/';
    }
  return mkdir(dir, 0700) && errno != EEXIST ? -1 : 0;
}

int bf_fft_wisdom_save(const char *path)
{
  char def[4096], tmp[4200];
  char *text = NULL;
  int rc = 0, fd = -1;
  if (!path) {
    if (bf_fft_wisdom_path(def, sizeof def))
      return 0;
    path = def;
  }
  bf_fft_lock();
  if (wisdom_new)
    text = fftwf_export_wisdom_to_string();
  bf_fft_unlock();
  if (!text)
    return 0;
  size_t len = strlen(text);
  if (make_parent(path)) {
    rc = bf_error_set(BF_EIO, "%s: cannot create the folder for FFTW wisdom (%s)", path,
                      strerror(errno));
    goto done;
  }
  /* A fresh name, never an existing file or a planted symlink; rename replaces atomically. */
  for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
    snprintf(tmp, sizeof tmp, "%s.%ld.%d.tmp", path, (long)getpid(), attempt);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0) {
    rc = bf_error_set(BF_EIO, "%s: cannot create a temporary wisdom file (%s)", path,
                      strerror(errno));
    goto done;
  }
  size_t put = 0;
  while (put < len) {
    ssize_t k = write(fd, text + put, len - put);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break;
    put += (size_t)k;
  }
  int bad = put < len || fsync(fd);
  bad |= close(fd) != 0;
  fd = -1;
  if (bad) {
    rc = bf_error_set(BF_EIO, "%s: cannot write FFTW wisdom (%s)", tmp, strerror(errno));
    unlink(tmp);
    goto done;
  }
  if (rename(tmp, path)) {
    rc = bf_error_set(BF_EIO, "%s: cannot replace FFTW wisdom (%s)", path, strerror(errno));
    unlink(tmp);
    goto done;
  }
  bf_fft_lock();
  wisdom_new = 0;
  bf_fft_unlock();
done:
  if (fd >= 0)
    close(fd);
  free(text); /* fftwf_export_wisdom_to_string's buffer comes from malloc */
  return rc;
}
