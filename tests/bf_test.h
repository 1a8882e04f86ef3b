/* A minimal test harness: CHECK counts, the last line says "N passed, N failed". */
#ifndef BF_TEST_H
#define BF_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bf_hash.h"

static int bf_t_pass, bf_t_fail, bf_t_skip;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (cond)                                                                         \
      bf_t_pass++;                                                                    \
    else {                                                                            \
      bf_t_fail++;                                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
    }                                                                                 \
  } while (0)

#define CHECKF(cond, ...)                                                             \
  do {                                                                                \
    if (cond)                                                                         \
      bf_t_pass++;                                                                    \
    else {                                                                            \
      bf_t_fail++;                                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);        \
      fprintf(stderr, __VA_ARGS__);                                                   \
      fprintf(stderr, "\n");                                                          \
    }                                                                                 \
  } while (0)

/* Path of the shared folder (data/, blind/), or NULL when absent. Absent under CI=true is a
 * failure, elsewhere a skip with a message. */
static inline const char *bf_t_shared(const char *sub)
{
  static char buf[4096];
  const char *root = getenv("BF_SHARED");
  if (!root)
    root = BF_SHARED_DIR;
  snprintf(buf, sizeof buf, "%s/%s", root, sub);
  struct stat st;
  if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
    return buf;
  const char *ci = getenv("CI");
  if (ci && !strcmp(ci, "true")) {
    fprintf(stderr, "real data folder %s is missing (CI=true: this is a failure)\n", buf);
    bf_t_fail++;
  } else {
    fprintf(stderr, "real data folder %s is missing: skipping its tests\n", buf);
    bf_t_skip++;
  }
  return NULL;
}

/* A scratch folder for this test binary under the build tree. */
static inline const char *bf_t_tmpdir(const char *name)
{
  static char buf[4096];
  snprintf(buf, sizeof buf, "%s/%s", BF_TEST_TMP, name);
  char cmd[8400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
  if (system(cmd) != 0) {
    fprintf(stderr, "cannot make %s\n", buf);
    exit(1);
  }
  return buf;
}

/* Runs the built bfm with args (a shell fragment, already quoted), no stdin, stdout into the
 * file out and stderr into err; returns its exit status, -1 when it did not exit. */
static inline int bf_t_bfm(const char *args, const char *out, const char *err)
{
  size_t n = strlen(args) + strlen(out) + strlen(err) + strlen(BF_BFM_EXE) + 32;
  char *cmd = malloc(n);
  if (!cmd)
    return -1;
  snprintf(cmd, n, "'%s' %s >'%s' 2>'%s' </dev/null", BF_BFM_EXE, args, out, err);
  int st = system(cmd);
  free(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The whole file as a string ("" when unreadable), in a buffer the next call reuses. */
static inline const char *bf_t_read(const char *path)
{
  static char *buf;
  static size_t cap;
  size_t n = 0;
  FILE *f = fopen(path, "rb");
  if (f) {
    for (;;) {
      if (n + 4096 + 1 > cap) {
        char *b = realloc(buf, cap = 2 * cap + 8192);
        if (!b)
          break;
        buf = b;
      }
      size_t got = fread(buf + n, 1, cap - n - 1, f);
      n += got;
      if (!got)
        break;
    }
    fclose(f);
  }
  if (!buf && !(buf = malloc(cap = 1)))
    return "";
  buf[n] = 0;
  return buf;
}

/* Lower-case hex SHA-256 of a file's bytes ("" when unreadable): proves a file unchanged. */
static inline void bf_t_file_sha(char hex[72], const char *path)
{
  hex[0] = 0;
  FILE *f = fopen(path, "rb");
  if (!f)
    return;
  bf_sha256_ctx c;
  uint8_t b[65536], h[32];
  size_t got;
  bf_sha256_init(&c);
  while ((got = fread(b, 1, sizeof b, f)) > 0)
    bf_sha256_update(&c, b, got);
  fclose(f);
  bf_sha256_final(&c, h);
  bf_hex(hex, h, 32);
}

/* Copies a store: its manifest file and its segment folder STORE.d. 0 on success. */
static inline int bf_t_copy_store(const char *src, const char *dst)
{
  char cmd[4 * 4096 + 64];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.d' && cp '%s' '%s' && cp -r '%s.d' '%s.d'", dst, dst, src,
           dst, src, dst);
  return system(cmd) == 0 ? 0 : -1;
}

/* A deterministic random stream for synthetic test data (xorshift64; one per test program).
 * bf_t_seed sets its state; the default is the state most tests start from. */
static uint64_t bf_t_rng = 88172645463325252ULL;
static inline void bf_t_seed(uint64_t s) { bf_t_rng = s; }
static inline uint64_t bf_t_next(void)
{
  bf_t_rng ^= bf_t_rng << 13;
  bf_t_rng ^= bf_t_rng >> 7;
  bf_t_rng ^= bf_t_rng << 17;
  return bf_t_rng;
}
/* uniform in [0, 1) */
static inline double bf_t_urand(void) { return (bf_t_next() >> 11) * (1.0 / 9007199254740992.0); }
/* standard normal (Box-Muller) */
static inline double bf_t_nrand(void)
{
  double u = bf_t_urand() + 1e-12, v = bf_t_urand();
  return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static inline int bf_t_done(void)
{
  printf("%d passed, %d failed", bf_t_pass, bf_t_fail);
  if (bf_t_skip)
    printf(", %d skipped", bf_t_skip);
  printf("\n");
  return bf_t_fail ? 1 : 0;
}

#endif
