/* A minimal test harness: CHECK counts, the last line says "N passed, N failed". */
#ifndef BF_TEST_H
#define BF_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static inline int bf_t_done(void)
{
  printf("%d passed, %d failed", bf_t_pass, bf_t_fail);
  if (bf_t_skip)
    printf(", %d skipped", bf_t_skip);
  printf("\n");
  return bf_t_fail ? 1 : 0;
}

#endif
