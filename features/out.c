/* Safe output files (see bf_out.h). */
#include "bf_out.h"
#include "bf_error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROTECTED 8

typedef struct guard {
  char real[PATH_MAX]; /* resolved path of the protected store */
  int is_dir;
  dev_t dev[2];        /* the store and its lock, when they exist */
  ino_t ino[2];
  int have[2];
} guard;

static guard guards[MAX_PROTECTED];
static int nguards;
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;

struct bf_out {
  FILE *f;
  char path[PATH_MAX], tmp[PATH_MAX + 64];
};

int bf_out_protect(const char *path)
{
  guard g;
  memset(&g, 0, sizeof g);
  char lock[PATH_MAX + 8];
  struct stat st;
  if (!realpath(path, g.real))
    return bf_error_set(BF_ENOTFOUND, "%s: cannot resolve the store's path: %s", path, strerror(errno));
  if (stat(path, &st) == 0) {
    g.is_dir = S_ISDIR(st.st_mode);
    g.dev[0] = st.st_dev, g.ino[0] = st.st_ino, g.have[0] = 1;
  }
  snprintf(lock, sizeof lock, "%s.lock", path);
  if (stat(lock, &st) == 0)
    g.dev[1] = st.st_dev, g.ino[1] = st.st_ino, g.have[1] = 1;
  pthread_mutex_lock(&guard_lock);
  int rc = 0;
  if (nguards < MAX_PROTECTED)
    guards[nguards++] = g;
  else
    rc = bf_error_set(BF_ELIMIT, "%s: more than %d stores protected at once", path, MAX_PROTECTED);
  pthread_mutex_unlock(&guard_lock);
  return rc;
}

/* True when resolved path r is the store g, one of its side files or inside it. */
static int hits_guard(const guard *g, const char *r)
{
  size_t n = strlen(g->real);
  if (strncmp(r, g->real, n))
    return 0;
  const char *rest = r + n;
  /* STORE, STORE.lock, STORE.tmp*, and the segment folder STORE.d with all it holds */
  return !*rest || !strcmp(rest, ".lock") || !strncmp(rest, ".tmp", 4) || !strcmp(rest, ".d") ||
         !strncmp(rest, ".d/", 3) || (g->is_dir && *rest == '/');
}

int bf_out_check(const char *path)
{
  if (!path || !*path)
    return bf_error_set(BF_EINVAL, "no output file named");
  struct stat lst, st;
  int exists = lstat(path, &lst) == 0, follows = stat(path, &st) == 0;
  if (follows && S_ISDIR(st.st_mode))
    return bf_error_set(BF_EINVAL, "%s: is a folder, not an output file", path);
  if (exists && !S_ISLNK(lst.st_mode) && !S_ISREG(lst.st_mode))
    return bf_error_set(BF_EINVAL, "%s: is not a regular file (refused as an output)", path);
  /* The resolved folder plus the name; and, when the name is a link, where it leads. */
  char dir[PATH_MAX], rdir[PATH_MAX], full[2 * PATH_MAX + 2], target[PATH_MAX] = "";
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  const char *base = slash ? slash + 1 : path;
  if (slash == dir)
    snprintf(dir, sizeof dir, "/");
  else if (slash)
    *slash = 0;
  else
    snprintf(dir, sizeof dir, ".");
  if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
    return bf_error_set(BF_EINVAL, "%s: names a folder, not an output file", path);
  if (!realpath(dir, rdir))
    return bf_error_set(BF_EIO, "%s: its folder cannot be used: %s", path, strerror(errno));
  snprintf(full, sizeof full, "%s/%s", strcmp(rdir, "/") ? rdir : "", base);
  if (exists && !realpath(path, target))
    target[0] = 0;
  int rc = 0;
  pthread_mutex_lock(&guard_lock);
  for (int i = 0; i < nguards && !rc; i++) {
    const guard *g = &guards[i];
    int same = 0;
    for (int k = 0; k < 2; k++)
      same |= follows && g->have[k] && g->dev[k] == st.st_dev && g->ino[k] == st.st_ino;
    same |= exists && g->have[0] && g->dev[0] == lst.st_dev && g->ino[0] == lst.st_ino;
    if (same || hits_guard(g, full) || (target[0] && hits_guard(g, target)) || hits_guard(g, rdir))
      rc = bf_error_set(BF_EINVAL, "%s: is the store %s or one of its files: refused as an output",
                        path, g->real);
  }
  pthread_mutex_unlock(&guard_lock);
  return rc;
}

int bf_out_open(bf_out **out, const char *path)
{
  *out = NULL;
  int rc = bf_out_check(path);
  if (rc)
    return rc;
  bf_out *o = calloc(1, sizeof *o);
  if (!o)
    return bf_error_set(BF_ENOMEM, "%s: out of memory", path);
  snprintf(o->path, sizeof o->path, "%s", path);
  static unsigned long serial;
  int fd = -1;
  for (int tries = 0; tries < 16 && fd < 0; tries++) {
    unsigned long k = __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED);
    snprintf(o->tmp, sizeof o->tmp, "%s.%ld.%lu.%lx.tmp", path, (long)getpid(), k,
             (unsigned long)time(NULL) ^ (unsigned long)(uintptr_t)o);
    fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST)
      break;
  }
  if (fd < 0) {
    rc = bf_error_set(BF_EIO, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
    free(o);
    return rc;
  }
  o->f = fdopen(fd, "w");
  if (!o->f) {
    close(fd);
    unlink(o->tmp);
    free(o);
    return bf_error_set(BF_ENOMEM, "%s: out of memory", path);
  }
  *out = o;
  return 0;
}

FILE *bf_out_file(bf_out *o) { return o->f; }

const char *bf_out_tmp(const bf_out *o) { return o->tmp; }

int bf_out_commit(bf_out *o)
{
  int rc = 0;
  int bad = fflush(o->f) != 0 || ferror(o->f);
  bad |= fsync(fileno(o->f)) != 0 && errno != EINVAL;
  bad |= fclose(o->f) != 0;
  o->f = NULL;
  if (bad)
    rc = bf_error_set(BF_EIO, "%s: write failed (disk full?): %s", o->path, strerror(errno));
  else if ((rc = bf_out_check(o->path)) == 0 && rename(o->tmp, o->path) != 0)
    rc = bf_error_set(BF_EIO, "%s: cannot move the new file into place: %s", o->path, strerror(errno));
  if (rc)
    unlink(o->tmp);
  free(o);
  return rc;
}

void bf_out_abort(bf_out *o)
{
  if (!o)
    return;
  if (o->f)
    fclose(o->f);
  unlink(o->tmp);
  free(o);
}

int bf_out_write(const char *path, const void *buf, size_t len)
{
  bf_out *o;
  int rc = bf_out_open(&o, path);
  if (rc)
    return rc;
  if (len && fwrite(buf, 1, len, o->f) != len) {
    rc = bf_error_set(BF_EIO, "%s: write failed (disk full?)", path);
    bf_out_abort(o);
    return rc;
  }
  return bf_out_commit(o);
}
