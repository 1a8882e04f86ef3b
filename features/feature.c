#include "bf_feature.h"
#include "bf_error.h"

#include <math.h>
#include <stdlib.h>

int bf_feature_new(bf_feature **out, int kind, int nx, int ny, double dx, double dy)
{
  *out = NULL;
  if (nx <= 0 || ny <= 0 || (long)nx * ny > BF_MAX_POINTS)
    return bf_error_set(BF_EINVAL, "feature size %d x %d out of range", nx, ny);
  bf_feature *f = calloc(1, sizeof *f);
  if (!f || !(f->z = malloc((size_t)nx * ny * sizeof *f->z))) {
    free(f);
    return bf_error_set(BF_ENOMEM, "out of memory for a %d x %d feature", nx, ny);
  }
  for (size_t i = 0; i < (size_t)nx * ny; i++)
    f->z[i] = NAN;
  f->kind = kind;
  f->nx = nx;
  f->ny = ny;
  f->dx = dx;
  f->dy = dy;
  *out = f;
  return 0;
}

void bf_feature_free(bf_feature *f)
{
  if (!f)
    return;
  free(f->z);
  free(f);
}

const char *bf_kind_name(int kind)
{
  return kind == BF_KIND_CARTRIDGE ? "cartridge" : kind == BF_KIND_BULLET ? "bullet" : "unknown";
}
