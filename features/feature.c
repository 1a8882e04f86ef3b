#include "bf_feature.h"
#include "bf_alloc.h"
#include "bf_error.h"

#include <math.h>
#include <string.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

int bf_feature_new(bf_feature **out, int kind, int nx, int ny, double dx, double dy)
{
  *out = NULL;
  if (nx <= 0 || ny <= 0 || (long)nx * ny > BF_MAX_POINTS)
    return bf_error_set(BF_EINVAL, "feature size %d x %d out of range", nx, ny);
  bf_feature *f = bf_calloc(1, sizeof *f);
  if (!f || !(f->z = bf_malloc((size_t)nx * ny * sizeof *f->z))) {
    bf_free(f);
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

int bf_feature_dup(bf_feature **out, const bf_feature *f)
{
  int ret = bf_feature_new(out, f->kind, f->nx, f->ny, f->dx, f->dy);
  if (ret)
    return ret;
  float *z = (*out)->z;
  **out = *f;
  (*out)->z = z;
  memcpy(z, f->z, (size_t)f->nx * f->ny * sizeof *z);
  return 0;
}

void bf_feature_free(bf_feature *f)
{
  if (!f)
    return;
  bf_free(f->z);
  bf_free(f);
}

/* One row per flag bit: its name for any kind, a cartridge and a bullet. */
static const struct {
  int bit;
  const char *name[3];
} quality_names[] = {
  {BF_Q_MOSTLY_MISSING, {"mostly-missing", "mostly-missing", "mostly-missing"}},
  {BF_Q_NO_REGION, {"no-region", "no-region", "no-grooves"}},
  {BF_Q_TOO_SHORT, {"too-short", "too-short", "too-short"}},
  {BF_Q_SPACING, {"spacing", "spacing", "spacing"}},
  {BF_Q_NO_MARKS, {"no-marks", "no-marks", "no-striae"}},
  {BF_Q_ORIENTATION, {"orientation", "orientation", "orientation"}},
};

const char *bf_quality_names(char *buf, size_t len, int flags, int kind)
{
  int k = kind == BF_KIND_CARTRIDGE ? 1 : kind == BF_KIND_BULLET ? 2 : 0;
  size_t used = 0;
  assert(len > 0);
  buf[0] = 0;
  for (size_t i = 0; i < sizeof quality_names / sizeof quality_names[0]; i++)
    if (flags & quality_names[i].bit) {
      int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", quality_names[i].name[k]);
      if (n < 0 || (size_t)n >= len - used)
        break; /* truncated: the names that fit */
      used += (size_t)n;
    }
  return buf;
}

const char *bf_kind_name(int kind)
{
  return kind == BF_KIND_CARTRIDGE ? "cartridge" : kind == BF_KIND_BULLET ? "bullet"
         : kind == BF_KIND_FIRINGPIN ? "firingpin" : "unknown";
}
