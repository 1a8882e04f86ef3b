/* Queries (see bf_query.h). */
#include "bf_query.h"

#include "bf_alloc.h"
#include "bf_error.h"
#include "bf_firingpin.h"
#include "bf_x3p.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

void bf_query_result_clear(bf_query_result *r)
{
  free(r->cand); /* bf_search_run allocates it */
  memset(r, 0, sizeof *r);
}

int bf_query_extract(bf_feature ***feat, int *n, int *kind, const bf_scanset *scans)
{
  int rc = 0;
  bf_feature **f = NULL;
  *feat = NULL;
  *n = 0;
  if (!scans->n)
    return bf_error_set(BF_EINVAL, "no scan given");
  if (!*kind && scans->n > 1)
    *kind = BF_KIND_BULLET;
  if (*kind == BF_KIND_CARTRIDGE && scans->n != 1)
    return bf_error_set(BF_EINVAL, "a cartridge case is one scan, %d given", scans->n);
  /* one more: a cartridge case's firing pin; freed by bf_search_free_features */
  if (!(f = calloc((size_t)scans->n + 1, sizeof *f)))
    return bf_error_set(BF_ENOMEM, "out of memory");
  for (int i = 0; i < scans->n && !rc; i++) {
    bf_surface *s = NULL;
    const char *path = scans->v[i].path;
    if ((rc = bf_x3p_read(&s, path, NULL))) {
      if (!*kind)
        bf_error_prefix(rc, "cannot read it as a scan (nor is it a stored item id): ");
      break;
    }
    if (!*kind)
      *kind = bf_scanset_guess_kind(s);
    if ((rc = bf_feature_extract(&f[i], s, *kind, *kind == BF_KIND_BULLET ? scans->v[i].land : 0)))
      bf_error_prefix(rc, "%s: feature extraction failed: ", path);
    /* a cartridge case's second mark after its breech face (bf_search_load_features) */
    if (!rc && *kind == BF_KIND_CARTRIDGE &&
        (rc = bf_firingpin_extract(&f[scans->n], s, NULL)) == BF_ENOTFOUND) {
      bf_error_clear();
      rc = 0;
    }
    bf_surface_free(s);
  }
  int nf = scans->n + (f[scans->n] != NULL);
  if (rc)
    bf_search_free_features(f, scans->n + 1);
  else {
    *feat = f;
    *n = nf;
  }
  return rc;
}

/* Items of the kind other than the query, and how many of them have a current descriptor. */
static void count_indexed(bf_store *st, int kind, int64_t qitem, size_t *stored, size_t *unindexed)
{
  const bf_feat_row *rows;
  size_t nr = 0, nitems = 0, nindexed = 0;
  if (!bf_store_feature_index(st, bf_kind_name(kind), &rows, &nr))
    for (size_t i = 0; i < nr; i++)
      nitems += (i == 0 || rows[i].item != rows[i - 1].item) && rows[i].item != qitem;
  if (!bf_store_feature_index(st, bf_prefilter_kind_name(kind), &rows, &nr))
    for (size_t i = 0; i < nr; i++)
      nindexed += (i == 0 || rows[i].item != rows[i - 1].item) && rows[i].item != qitem;
  *stored = nitems;
  *unindexed = nitems > nindexed ? nitems - nindexed : 0;
}

/* The search of a query whose features and descriptor are made. */
static int run(bf_query_result *r, bf_store *st, const bf_prefilter *pf, bf_feature **feat, int nfeat,
               const bf_feature *desc, const bf_query_opts *o)
{
  bf_search_source src;
  bf_search_store_ctx *sctx = NULL;
  int rc = bf_search_store_source(&src, &sctx, st, r->kind, r->calibre);
  if (rc)
    return rc;
  count_indexed(st, r->kind, r->item, &r->stored, &r->unindexed);
  bf_search_opts so = BF_SEARCH_OPTS_INIT;
  int keep = o->keep ? o->keep : bf_search_keep(r->kind, src.nrows);
  so.keep = keep > o->top ? keep : o->top;
  if (o->screen >= 0)
    so.screen = o->screen;
  if (so.screen && so.screen < o->top)
    so.screen = o->top; /* every candidate shown is fully compared */
  so.threads = o->threads;
  so.prefilter_only = o->prefilter_only;
  bf_search_cmp cmp;
  bf_search_default_cmp(&cmp, r->kind);
  bf_search_query q = {r->item, r->kind, desc->z, feat, nfeat};
  double t0 = omp_get_wtime();
  rc = bf_search_run(&r->cand, &r->n, &q, 1, &src, &cmp, pf, &so, &r->stats);
  r->seconds = omp_get_wtime() - t0;
  if (!rc && r->stats.pre_pairs == 0)
    rc = bf_error_set(BF_ENOTFOUND, "%s: no stored %s items%s%s to search against%s", bf_store_path(st),
                      bf_kind_name(r->kind), r->calibre[0] ? " of calibre " : "", r->calibre,
                      r->stored ? " (none indexed yet: run `bfm batch` first)" : "");
  bf_search_store_source_free(sctx);
  return rc;
}

static int check_opts(const bf_query_opts *o)
{
  if (o->top < 1 || o->keep < 0 || o->screen < -1 || o->threads < 0)
    return bf_error_set(BF_EINVAL, "query: top >= 1, keep >= 0, screen >= -1, threads >= 0");
  return 0;
}

int bf_query_item(bf_query_result *out, bf_store *st, int64_t item, const bf_query_opts *opts)
{
  bf_query_opts o = opts ? *opts : (bf_query_opts)BF_QUERY_OPTS_INIT;
  bf_prefilter *pf = NULL;
  bf_feature **feat = NULL, *desc = NULL;
  int nfeat = 0, rc = 0;
  memset(out, 0, sizeof *out);
  const bf_item *it = bf_store_item(st, item);
  if ((rc = check_opts(&o)))
    return rc;
  if (!it)
    return bf_error_set(BF_ENOTFOUND, "%s: no item %lld (see `bfm export %s --what items`)", bf_store_path(st),
                        (long long)item, bf_store_path(st));
  out->item = item;
  out->kind = it->kind;
  snprintf(out->calibre, sizeof out->calibre, "%s", o.calibre ? o.calibre : it->calibre);
  int omp_prev = bf_search_threads_begin(o.threads);
  if (!(rc = bf_prefilter_new(&pf, NULL)) && !(rc = bf_search_store_item(st, pf, item, &feat, &nfeat, &desc)))
    rc = run(out, st, pf, feat, nfeat, desc, &o);
  bf_search_threads_end(omp_prev);
  bf_search_free_features(feat, nfeat);
  bf_feature_free(desc);
  bf_prefilter_free(pf);
  if (rc)
    bf_query_result_clear(out);
  return rc;
}

int bf_query_scans(bf_query_result *out, bf_store *st, const bf_scanset *scans, const bf_query_opts *opts)
{
  bf_query_opts o = opts ? *opts : (bf_query_opts)BF_QUERY_OPTS_INIT;
  bf_prefilter *pf = NULL;
  bf_feature **feat = NULL, *desc = NULL;
  int nfeat = 0, rc = 0, kind = o.kind;
  memset(out, 0, sizeof *out);
  int omp_prev = bf_search_threads_begin(o.threads);
  if ((rc = check_opts(&o)) || (rc = bf_query_extract(&feat, &nfeat, &kind, scans)))
    goto done;
  out->kind = kind;
  snprintf(out->calibre, sizeof out->calibre, "%s", o.calibre ? o.calibre : "");
  if ((rc = bf_prefilter_new(&pf, NULL)))
    goto done;
  if ((rc = bf_prefilter_describe(pf, &desc, feat, nfeat))) {
    bf_error_prefix(rc, "%s: ", scans->v[0].path);
    goto done;
  }
  rc = run(out, st, pf, feat, nfeat, desc, &o);
done:
  bf_search_threads_end(omp_prev);
  bf_search_free_features(feat, nfeat);
  bf_feature_free(desc);
  bf_prefilter_free(pf);
  if (rc)
    bf_query_result_clear(out);
  return rc;
}
