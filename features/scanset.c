/* The scan-set rule (see bf_scanset.h). */
#define _GNU_SOURCE
#include "bf_scanset.h"

#include "bf_alloc.h"
#include "bf_error.h"
#include "bf_feature.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int bf_scanset_land_number(const char *path)
{
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  for (const char *p = base; *p; p++)
    if (!strncasecmp(p, "land", 4)) {
      const char *q = p + 4;
      while (*q == '_' || *q == '-' || *q == ' ')
        q++;
      if (isdigit((unsigned char)*q)) {
        long v = strtol(q, NULL, 10);
        return v > 0 && v <= BF_SCANSET_MAX ? (int)v : 0;
      }
    }
  return 0;
}

static int push(bf_scanset *s, const char *path, size_t len)
{
  if (s->n == BF_SCANSET_MAX)
    return bf_error_set(BF_ELIMIT, "%.*s: more than %d scans in one item", (int)len, path, BF_SCANSET_MAX);
  char *p = bf_malloc(len + 1);
  if (!p)
    return bf_error_set(BF_ENOMEM, "out of memory listing scans");
  memcpy(p, path, len);
  p[len] = 0;
  s->v[s->n++] = (bf_scan_ref){p, 0};
  return 0;
}

static int cmp_folder(const void *a, const void *b)
{
  const char *x = *(char *const *)a, *y = *(char *const *)b;
  int lx = bf_scanset_land_number(x), ly = bf_scanset_land_number(y);
  if (lx != ly)
    return lx < ly ? -1 : 1;
  return strverscmp(x, y);
}

/* A folder's *.x3p, sorted (land number, then natural name order). */
static int add_folder(bf_scanset *s, const char *path)
{
  DIR *d = opendir(path);
  if (!d)
    return bf_error_set(BF_EIO, "%s: cannot list the folder: %s", path, strerror(errno));
  char *names[BF_SCANSET_MAX];
  int n = 0, rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) && !rc) {
    size_t l = strlen(e->d_name);
    if (l < 5 || strcasecmp(e->d_name + l - 4, ".x3p"))
      continue;
    if (n == BF_SCANSET_MAX)
      rc = bf_error_set(BF_ELIMIT, "%s: more than %d scans in one item", path, BF_SCANSET_MAX);
    else if (!(names[n] = bf_strdup(e->d_name)))
      rc = bf_error_set(BF_ENOMEM, "out of memory listing %s", path);
    else
      n++;
  }
  closedir(d);
  if (!rc && !n)
    rc = bf_error_set(BF_ENOTFOUND, "%s: the folder holds no .x3p scans", path);
  if (!rc)
    qsort(names, (size_t)n, sizeof *names, cmp_folder);
  size_t pl = strlen(path);
  while (pl > 1 && path[pl - 1] == '/')
    pl--;
  for (int i = 0; i < n; i++) {
    if (!rc) {
      size_t need = pl + strlen(names[i]) + 2;
      char *full = bf_malloc(need);
      if (!full)
        rc = bf_error_set(BF_ENOMEM, "out of memory listing %s", path);
      else {
        snprintf(full, need, "%.*s/%s", (int)pl, path, names[i]);
        rc = push(s, full, strlen(full));
        bf_free(full);
      }
    }
    bf_free(names[i]);
  }
  return rc;
}

/* One entry: a folder or a file (a file need not exist yet: reading it names the problem). */
static int add_one(bf_scanset *s, const char *path, size_t len, const char *dir)
{
  int rc = 0;
  size_t need = len + (dir ? strlen(dir) + 2 : 1);
  char *full = bf_malloc(need);
  if (!full)
    return bf_error_set(BF_ENOMEM, "out of memory listing scans");
  if (dir && path[0] != '/')
    snprintf(full, need, "%s/%.*s", dir, (int)len, path);
  else
    snprintf(full, need, "%.*s", (int)len, path);
  struct stat sb;
  if (!stat(full, &sb) && S_ISDIR(sb.st_mode))
    rc = add_folder(s, full);
  else
    rc = push(s, full, strlen(full));
  bf_free(full);
  return rc;
}

int bf_scanset_add(bf_scanset *s, const char *spec, char sep, const char *dir)
{
  const char *p = spec;
  int rc = 0;
  for (;;) {
    while (sep && (*p == ' ' || *p == '\t'))
      p++;
    const char *e = sep ? strchr(p, sep) : NULL;
    size_t len = e ? (size_t)(e - p) : strlen(p);
    size_t l = len;
    while (sep && l && (p[l - 1] == ' ' || p[l - 1] == '\t'))
      l--;
    if (l && (rc = add_one(s, p, l, dir)))
      return rc;
    if (!e)
      break;
    p = e + 1;
  }
  return 0;
}

static int cmp_land(const void *a, const void *b)
{
  const bf_scan_ref *x = a, *y = b;
  return (x->land > y->land) - (x->land < y->land);
}

int bf_scanset_number(bf_scanset *s, const int *lands, int n)
{
  int seen[BF_SCANSET_MAX + 1] = {0};
  s->from_names = 0;
  if (lands) {
    if (n != s->n)
      return bf_error_set(BF_EINVAL, "%d land number(s) given for %d scan(s)", n, s->n);
    for (int i = 0; i < n; i++) {
      if (lands[i] < 1 || lands[i] > BF_SCANSET_MAX)
        return bf_error_set(BF_EINVAL, "land number %d is not in 1..%d", lands[i], BF_SCANSET_MAX);
      if (seen[lands[i]]++)
        return bf_error_set(BF_EINVAL, "land number %d is given twice", lands[i]);
      s->v[i].land = lands[i];
    }
  } else {
    int named = s->n > 0;
    for (int i = 0; i < s->n && named; i++) {
      int l = bf_scanset_land_number(s->v[i].path);
      named = l && !seen[l]++;
    }
    for (int i = 0; i < s->n; i++)
      s->v[i].land = named ? bf_scanset_land_number(s->v[i].path) : i + 1;
    s->from_names = named;
  }
  /* insertion sort: stable, and the list is short */
  for (int i = 1; i < s->n; i++)
    for (int j = i; j > 0 && cmp_land(&s->v[j - 1], &s->v[j]) > 0; j--) {
      bf_scan_ref t = s->v[j];
      s->v[j] = s->v[j - 1];
      s->v[j - 1] = t;
    }
  return 0;
}

int bf_scanset_build(bf_scanset *s, char *const *specs, int nspecs, char sep, const char *dir)
{
  int rc = 0;
  for (int i = 0; i < nspecs && !rc; i++)
    rc = bf_scanset_add(s, specs[i], sep, dir);
  if (!rc && !s->n)
    rc = bf_error_set(BF_EINVAL, "no scan given");
  if (!rc)
    rc = bf_scanset_number(s, NULL, 0);
  if (rc)
    bf_scanset_clear(s);
  return rc;
}

void bf_scanset_clear(bf_scanset *s)
{
  for (int i = 0; i < s->n; i++)
    bf_free(s->v[i].path);
  s->n = 0;
  s->from_names = 0;
}

int bf_scanset_shape_kind(int nx, int ny, double dx, double dy)
{
  double w = nx * dx, h = ny * dy;
  return (w > 1.8 * h || h > 1.8 * w) ? BF_KIND_BULLET : BF_KIND_CARTRIDGE;
}

int bf_scanset_guess_kind(const bf_surface *s)
{
  return bf_scanset_shape_kind(s->nx, s->ny, s->dx, s->dy);
}
