#include "bf_surface.h"
#include "bf_alloc.h"
#include "bf_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int bf_surface_new(bf_surface **out, int nx, int ny, double dx, double dy)
{
  *out = NULL;
  if (nx <= 0 || ny <= 0)
    return bf_error_set(BF_EINVAL, "surface size %d x %d is not positive", nx, ny);
  if ((long)nx * (long)ny > BF_MAX_POINTS)
    return bf_error_set(BF_ELIMIT, "surface size %d x %d exceeds %ld points", nx, ny, BF_MAX_POINTS);
  bf_surface *s = bf_calloc(1, sizeof *s);
  if (!s)
    return bf_error_set(BF_ENOMEM, "out of memory for a surface");
  size_t n = (size_t)nx * (size_t)ny;
  s->z = bf_malloc(n * sizeof *s->z);
  if (!s->z) {
    bf_free(s);
    return bf_error_set(BF_ENOMEM, "out of memory for %zu heights", n);
  }
  for (size_t i = 0; i < n; i++)
    s->z[i] = NAN;
  s->nx = nx;
  s->ny = ny;
  s->dx = dx;
  s->dy = dy;
  *out = s;
  return 0;
}

void bf_surface_free(bf_surface *s)
{
  if (!s)
    return;
  bf_free(s->z);
  bf_free(s->mask);
  bf_free(s->labels);
  bf_free(s);
}

int bf_surface_copy(bf_surface **out, const bf_surface *s)
{
  bf_surface *c = NULL;
  int rc = bf_surface_new(&c, s->nx, s->ny, s->dx, s->dy);
  if (rc)
    return rc;
  size_t n = (size_t)s->nx * s->ny;
  memcpy(c->z, s->z, n * sizeof *c->z);
  c->flags = s->flags;
  c->meta = s->meta;
  c->mask_background = s->mask_background;
  if (s->mask) {
    c->mask = bf_malloc(n * sizeof *c->mask);
    if (!c->mask)
      goto nomem;
    memcpy(c->mask, s->mask, n * sizeof *c->mask);
  }
  if (s->nlabels) {
    c->labels = bf_malloc((size_t)s->nlabels * sizeof *c->labels);
    if (!c->labels)
      goto nomem;
    memcpy(c->labels, s->labels, (size_t)s->nlabels * sizeof *c->labels);
    c->nlabels = s->nlabels;
  }
  *out = c;
  return 0;
nomem:
  bf_surface_free(c);
  *out = NULL;
  return bf_error_set(BF_ENOMEM, "out of memory copying a surface");
}

void bf_surface_stats_get(bf_surface_stats *st, const bf_surface *s)
{
  memset(st, 0, sizeof *st);
  st->n = (size_t)s->nx * s->ny;
  double sum = 0, sum2 = 0, mn = INFINITY, mx = -INFINITY;
  for (size_t i = 0; i < st->n; i++) {
    float v = s->z[i];
    if (isnan(v))
      continue;
    st->nvalid++;
    sum += v;
    sum2 += (double)v * v;
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  st->missing_fraction = st->n ? 1.0 - (double)st->nvalid / st->n : 1.0;
  if (st->nvalid) {
    st->zmin = mn;
    st->zmax = mx;
    st->zmean = sum / st->nvalid;
    double var = sum2 / st->nvalid - st->zmean * st->zmean;
    st->zsd = var > 0 ? sqrt(var) : 0;
  } else {
    st->zmin = st->zmax = st->zmean = st->zsd = NAN;
  }
}
