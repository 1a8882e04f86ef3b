/* The comparison pictures of `bfm compare --png` and `bfm show`, written as files: the drawing
 * is the library's (engine/draw.c, shared with `bfm serve`). */
#include "bf_draw.h"
#include "bf_error.h"
#include "bfm_cli.h"

int bfm_draw_cmc_pair(const char *path, const bf_feature *a, const bf_feature *b,
                      const bf_cmc_result *r)
{
  bf_image im = {0};
  int rc = bf_draw_cmc_pair(&im, a, b, r);
  if (!rc)
    rc = bf_image_write(&im, path);
  bf_image_clear(&im);
  return rc;
}

int bfm_draw_bullet_pair(const char *path, const bf_bullet_result *r, bf_feature *const *fa,
                         bf_feature *const *fb)
{
  bf_image im = {0};
  int rc = bf_draw_bullet_pair(&im, r, fa, fb);
  if (rc)
    bf_error_prefix(rc, "%s: ", path);
  else
    rc = bf_image_write(&im, path);
  bf_image_clear(&im);
  return rc;
}
