/* The one entry point that runs either pipeline with its documented defaults. */
#include "bf_breechface.h"
#include "bf_bullet.h"
#include "bf_error.h"
#include "bf_feature.h"

int bf_feature_extract(bf_feature **out, const bf_surface *scan, int kind, int land)
{
  *out = NULL;
  if (kind == BF_KIND_CARTRIDGE) {
    bf_breechface_opts o = BF_BREECHFACE_OPTS_INIT;
    return bf_breechface_extract(out, scan, &o);
  }
  if (kind == BF_KIND_BULLET) {
    bf_bullet_opts o = BF_BULLET_OPTS_INIT;
    o.land = land;
    int rc = bf_bullet_land_extract(out, scan, &o);
    if (!rc)
      (*out)->land = land;
    return rc;
  }
  return bf_error_set(BF_EINVAL, "unknown feature kind %d", kind);
}
