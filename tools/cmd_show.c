/* bfm show: the two items of a hit side by side, aligned, drawn like the compare pictures.
 * Cartridge cases: query left with its congruent cells, candidate right rotated by the CMC
 * consensus angle, cells where they registered. Bullets: for the best phase, each land pair's
 * aligned signatures as two traces (query dark blue, candidate red), one band per land pair. */
#include "bf_cmc.h"
#include "bf_error.h"
#include "bf_out.h"
#include "bf_search.h"
#include "bf_store.h"
#include "bf_striae.h"
#include "bfm_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The same pictures as `bfm compare --png`, drawn from the stored features. */
static int draw_cartridge(const char *path, const bf_feature *a, const bf_feature *b, double *score)
{
  bf_cmc_opts o = BF_CMC_OPTS_INIT;
  bf_cmc_result r;
  memset(&r, 0, sizeof r);
  int rc = bf_cmc_compare(&r, a, b, &o);
  if (!rc) {
    *score = r.score;
    rc = bfm_draw_cmc_pair(path, a, b, &r);
  }
  bf_cmc_result_clear(&r);
  return rc;
}

static int draw_bullet(const char *path, bf_feature **a, int na, bf_feature **b, int nb, double *score)
{
  bf_bullet_result br;
  memset(&br, 0, sizeof br);
  int rc = bf_bullet_compare(&br, (const bf_feature *const *)a, na, (const bf_feature *const *)b,
                             nb, NULL);
  if (!rc) {
    *score = br.score;
    rc = bfm_draw_bullet_pair(path, &br, a, b);
  }
  bf_bullet_result_clear(&br);
  return rc;
}

int bfm_cmd_show(int argc, char **argv)
{
  const char *store = NULL, *hit = NULL, *png = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--png") && i + 1 < argc)
      png = argv[++i];
    else if (argv[i][0] == '-')
      return bfm_usage_error("show", "unknown option %s", argv[i]);
    else if (!store)
      store = argv[i];
    else if (!hit)
      hit = argv[i];
    else
      return bfm_usage_error("show", "too many arguments");
  }
  if (!store || !hit || !png)
    return bfm_usage_error("show", "usage: bfm show STORE HIT --png FILE");
  long long id = bfm_parse_id(hit);
  if (id <= 0)
    return bfm_usage_error("show", "HIT must be a hit id (a positive number), not '%s'", hit);
  int rc = BFM_EXIT_OK;
  bf_store *st = NULL;
  bf_hit *h = NULL;
  size_t nh = 0;
  bf_feature **fa = NULL, **fb = NULL;
  int na = 0, nb = 0;
  /* --png is checked before anything is read: never the store or one of its files */
  if (bf_out_protect(store) || bf_out_check(png))
    return bfm_fail("show");
  if (bf_store_open(&st, store, BF_STORE_READ, NULL) || bf_store_query_hits(st, NULL, &h, &nh)) {
    rc = bfm_fail("show");
    goto done;
  }
  const bf_hit *the = NULL;
  for (size_t i = 0; i < nh; i++)
    if (h[i].id == id)
      the = &h[i];
  if (!the) {
    bf_error_set(BF_ENOTFOUND, "%s: no hit %lld (see `bfm hits %s`)", store, id, store);
    rc = bfm_fail("show");
    goto done;
  }
  const bf_item *it = bf_store_item(st, the->query);
  if (!it || bf_store_get_features(st, bf_kind_name(it->kind), the->query, &fa, &na) ||
      bf_store_get_features(st, bf_kind_name(it->kind), the->candidate, &fb, &nb)) {
    if (!it)
      bf_error_set(BF_ENOTFOUND, "%s: hit %lld refers to missing item %lld", store, id,
                   (long long)the->query);
    rc = bfm_fail("show");
    goto done;
  }
  double score = NAN;
  int r = it->kind == BF_KIND_BULLET ? draw_bullet(png, fa, na, fb, nb, &score)
                                     : draw_cartridge(png, fa[0], fb[0], &score);
  if (r) {
    rc = bfm_fail("show");
    goto done;
  }
  char wq[1024], wc[1024];
  bfm_item_what(st, the->query, wq, sizeof wq);
  bfm_item_what(st, the->candidate, wc, sizeof wc);
  printf("hit %lld: [%lld] %s vs [%lld] %s, score %.3g (stored %.3g) -> %s\n", id,
         (long long)the->query, wq, (long long)the->candidate, wc, score, the->score, png);
done:
  bf_search_free_features(fa, na);
  bf_search_free_features(fb, nb);
  free(h);
  bf_store_close(st);
  return rc;
}
