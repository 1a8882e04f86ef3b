/* bfm batch: the overnight run. Every stored item not yet searched is searched against
 * everything stored of its kind and calibre; candidates scoring at or above the threshold are
 * written to the store's hits.
 *
 * Resumable: queries go in groups; a group's hits and the "searched" mark of its items are
 * committed in ONE transaction (the store commits by an atomic rename), so a kill at any moment
 * leaves each item either searched with all its hits or not searched with none. A rerun picks up
 * the unsearched items; hits are unique on (run, query, candidate) and an item is searched once,
 * so nothing is duplicated. Before searching, items without a prefilter descriptor are indexed
 * (committed on their own). Hits between items of one owner (test-fires of one firearm) are
 * not stored: they are known and lead nowhere. */
#include "bf_cmc.h"
#include "bf_error.h"
#include "bf_search.h"
#include "bf_store.h"
#include "bf_striae.h"
#include "bfm_cli.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct pend {
  int64_t item;
  int kind;
  char calibre[32]; /* copied: store tables move on writes */
} pend;

static int cmp_pend(const void *a, const void *b)
{
  const pend *x = a, *y = b;
  if (x->kind != y->kind)
    return x->kind - y->kind;
  int c = strcmp(x->calibre, y->calibre);
  if (c)
    return c;
  return x->item < y->item ? -1 : x->item > y->item;
}

static int has_rows(bf_store *st, const char *kind, int64_t item)
{
  const bf_feat_row *r;
  size_t n;
  if (bf_store_feature_index(st, kind, &r, &n) || !n)
    return 0;
  size_t lo = 0, hi = n;
  while (lo < hi) { /* rows are appended in item order in practice; fall back to a scan */
    size_t m = (lo + hi) / 2;
    if (r[m].item < item)
      lo = m + 1;
    else
      hi = m;
  }
  if (lo < n && r[lo].item == item)
    return 1;
  for (size_t i = 0; i < n; i++)
    if (r[i].item == item)
      return 1;
  return 0;
}

int bfm_cmd_batch(int argc, char **argv)
{
  const char *store = NULL, *user = NULL;
  int threads = 0, keep = 0, screen = -1, group = 32, quiet = 0;
  long limit = -1;
  double min_score = NAN;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int hasv = i + 1 < argc;
    if (!strcmp(a, "--threads") && hasv)
      threads = atoi(argv[++i]);
    else if (!strcmp(a, "--keep") && hasv) {
      if ((keep = atoi(argv[++i])) < 1)
        return bfm_usage_error("batch", "--keep needs a count >= 1");
    } else if (!strcmp(a, "--screen") && hasv) {
      if ((screen = atoi(argv[++i])) < 0)
        return bfm_usage_error("batch", "--screen needs a count >= 0 (0: no screen)");
    }
    else if (!strcmp(a, "--group") && hasv)
      group = atoi(argv[++i]);
    else if (!strcmp(a, "--limit") && hasv)
      limit = atol(argv[++i]);
    else if (!strcmp(a, "--user") && hasv)
      user = argv[++i];
    else if (!strcmp(a, "--min-score") && hasv) {
      char *e;
      min_score = strtod(argv[++i], &e);
      if (*e || e == argv[i] || !isfinite(min_score))
        return bfm_usage_error("batch", "--min-score needs a number, not '%s'", argv[i]);
    } else if (!strcmp(a, "--quiet"))
      quiet = 1;
    else if (a[0] == '-')
      return bfm_usage_error("batch", "unknown option %s", a);
    else if (!store)
      store = a;
    else
      return bfm_usage_error("batch", "one store at a time");
  }
  if (!store)
    return bfm_usage_error("batch", "no store given");
  if (group < 1 || threads < 0)
    return bfm_usage_error("batch", "--group and --threads need positive counts");
  bf_search_opts defo = BF_SEARCH_OPTS_INIT;
  int kmax = keep ? keep : (defo.keep > BF_SEARCH_KEEP_BULLET ? defo.keep : BF_SEARCH_KEEP_BULLET);
  bf_cmc_opts co = BF_CMC_OPTS_INIT;
  bf_land_opts lo = BF_LAND_OPTS_INIT;
  double thr[3] = {0, isnan(min_score) ? co.match_min_cmc : min_score,
                   isnan(min_score) ? lo.match_threshold : min_score};

  int rc = BFM_EXIT_OK;
  bf_store *st = NULL;
  bf_prefilter *pf = NULL;
  pend *pq = NULL;
  bf_hit *hits = NULL;
  if (bf_store_open(&st, store, BF_STORE_WRITE, user) || bf_prefilter_new(&pf, NULL)) {
    rc = bfm_fail("batch");
    goto done;
  }
  /* 1. index items that have no prefilter descriptor yet */
  size_t nfail = 0;
  for (int kind = BF_KIND_CARTRIDGE; kind <= BF_KIND_BULLET; kind++) {
    size_t added = 0, failed = 0;
    if (bf_store_begin(st) || bf_search_store_index(st, pf, kind, &added, &failed) ||
        (added ? bf_store_commit(st) : (bf_store_abort(st), 0))) {
      bf_store_abort(st);
      rc = bfm_fail("batch");
      goto done;
    }
    nfail += failed;
    if (added && !quiet)
      fprintf(stderr, "indexed %zu %s items for the prefilter\n", added, bf_kind_name(kind));
  }
  if (nfail)
    fprintf(stderr, "bfm batch: %zu items could not be described for the prefilter (too little "
            "valid surface) and are not searched\n", nfail);
  /* 2. the run id and the items still to search */
  size_t nit = bf_store_nitems(st), npend = 0, nsearched_before = 0;
  const bf_item *items = bf_store_items(st);
  int64_t run = 0;
  for (size_t i = 0; i < nit; i++)
    if (items[i].searched > run)
      run = items[i].searched;
  {
    bf_hit *all = NULL;
    size_t nall = 0;
    if (bf_store_query_hits(st, NULL, &all, &nall)) {
      rc = bfm_fail("batch");
      goto done;
    }
    for (size_t i = 0; i < nall; i++)
      if (all[i].run > run)
        run = all[i].run;
    free(all);
  }
  run++;
  if (!nit) {
    bf_error_set(BF_ENOTFOUND, "%s: the store holds no items to search", store);
    rc = bfm_fail("batch");
    goto done;
  }
  pq = malloc(nit * sizeof *pq);
  hits = malloc((size_t)group * kmax * sizeof *hits);
  if (!pq || !hits) {
    bf_error_set(BF_ENOMEM, "out of memory");
    rc = bfm_fail("batch");
    goto done;
  }
  for (size_t i = 0; i < nit; i++) {
    const bf_item *it = &items[i];
    if (it->searched) {
      nsearched_before++;
      continue;
    }
    const char *pk = bf_prefilter_kind_name(it->kind);
    if (!pk || !has_rows(st, pk, it->id))
      continue;
    pend *p = &pq[npend++];
    p->item = it->id;
    p->kind = it->kind;
    snprintf(p->calibre, sizeof p->calibre, "%s", it->calibre);
  }
  qsort(pq, npend, sizeof *pq, cmp_pend);
  if (limit >= 0 && (size_t)limit < npend)
    npend = (size_t)limit;
  if (!quiet)
    fprintf(stderr, "batch run %lld: %zu items to search (%zu searched before)\n", (long long)run,
            npend, nsearched_before);

  /* 3. groups of queries of one kind and calibre: search, then hits + searched in one commit */
  bfm_progress pg;
  bfm_progress_start(&pg, "batch", (long)npend);
  size_t done_items = 0, pre_pairs = 0, scr_pairs = 0, full_pairs = 0, new_hits = 0, failed_pairs = 0;
  double t0 = bfm_now();
  for (size_t g0 = 0; g0 < npend && rc == BFM_EXIT_OK;) {
    size_t gn = 1;
    while (g0 + gn < npend && gn < (size_t)group && pq[g0 + gn].kind == pq[g0].kind &&
           !strcmp(pq[g0 + gn].calibre, pq[g0].calibre))
      gn++;
    int kind = pq[g0].kind;
    bf_search_query *q = calloc(gn, sizeof *q);
    bf_feature ***qf = calloc(gn, sizeof *qf), **qd = calloc(gn, sizeof *qd);
    int *nqf = calloc(gn, sizeof *nqf), *nqd = calloc(gn, sizeof *nqd);
    bf_cand **res = calloc(gn, sizeof *res);
    size_t *nres = calloc(gn, sizeof *nres);
    int64_t *ids = calloc(gn, sizeof *ids);
    bf_search_store_ctx *sctx = NULL;
    int ok = q && qf && qd && nqf && nqd && res && nres && ids;
    if (!ok)
      bf_error_set(BF_ENOMEM, "out of memory");
    for (size_t k = 0; k < gn && ok; k++) {
      bf_feature **d = NULL;
      ids[k] = pq[g0 + k].item;
      ok = !bf_store_get_features(st, bf_kind_name(kind), ids[k], &qf[k], &nqf[k]) &&
           !bf_store_get_features(st, bf_prefilter_kind_name(kind), ids[k], &d, &nqd[k]);
      if (ok && nqd[k] >= 1) {
        qd[k] = d[0];
        for (int j = 1; j < nqd[k]; j++)
          bf_feature_free(d[j]);
      } else if (d)
        bf_search_free_features(d, nqd[k]);
      free(d);
      q[k] = (bf_search_query){ids[k], kind, qd[k] ? qd[k]->z : NULL, qf[k], nqf[k]};
    }
    bf_search_source src;
    bf_search_cmp cmp;
    bf_search_default_cmp(&cmp, kind);
    bf_search_opts so = BF_SEARCH_OPTS_INIT;
    if (keep)
      so.keep = keep;
    else if (kind == BF_KIND_BULLET)
      so.keep = BF_SEARCH_KEEP_BULLET;
    if (screen >= 0)
      so.screen = screen;
    so.threads = threads;
    bf_search_stats stats;
    ok = ok && !bf_search_store_source(&src, &sctx, st, kind, pq[g0].calibre) &&
         !bf_search_run(res, nres, q, (int)gn, &src, &cmp, pf, &so, &stats);
    size_t nh = 0;
    if (ok) {
      for (size_t k = 0; k < gn; k++)
        for (size_t j = 0; j < nres[k]; j++) {
          const bf_cand *c = &res[k][j];
          if (isnan(c->score) || c->score < thr[kind])
            continue;
          /* two test-fires of one firearm, or two items of one evidence record, are known to
           * match: not a lead for anyone */
          const bf_item *qi = bf_store_item(st, ids[k]), *ci = bf_store_item(st, c->item);
          if (qi && ci && qi->owner_type == ci->owner_type && qi->owner == ci->owner)
            continue;
          bf_hit *h = &hits[nh++];
          memset(h, 0, sizeof *h);
          h->query = ids[k];
          h->candidate = c->item;
          h->run = run;
          h->score = c->score;
          memcpy(h->scores, c->sub, sizeof h->scores);
          h->rank = c->rank;
          h->status = BF_HIT_CANDIDATE;
        }
      size_t added = 0;
      ok = !bf_store_begin(st) && !bf_store_add_hits(st, hits, nh, &added) &&
           !bf_store_set_searched(st, ids, gn, run) && !bf_store_commit(st);
      if (ok) {
        new_hits += added;
        pre_pairs += stats.pre_pairs;
        scr_pairs += stats.screen_pairs;
        full_pairs += stats.full_pairs;
        failed_pairs += stats.full_failed;
        done_items += gn;
      } else
        bf_store_abort(st);
    }
    if (!ok)
      rc = bfm_fail("batch");
    bf_search_store_source_free(sctx);
    for (size_t k = 0; k < gn; k++) {
      if (qf)
        bf_search_free_features(qf[k], nqf[k]);
      if (qd)
        bf_feature_free(qd[k]);
      if (res)
        free(res[k]);
    }
    free(q), free(qf), free(qd), free(nqf), free(nqd), free(res), free(nres), free(ids);
    g0 += gn;
    bfm_progress_step(&pg, (long)done_items);
  }
  bfm_progress_end(&pg);
  double el = bfm_now() - t0;
  printf("batch run %lld: %zu items searched%s, %zu prefilter, %zu screen, %zu full comparisons"
         "%s in %.1f s (%.0f comparisons/s, %.2f full/s); %zu new candidate hits at or above the "
         "threshold\n", (long long)run, done_items, rc ? " before the failure" : "", pre_pairs,
         scr_pairs, full_pairs, failed_pairs ? " (some failed)" : "", el,
         el > 0 ? (pre_pairs + scr_pairs + full_pairs) / el : 0.0, el > 0 ? full_pairs / el : 0.0,
         new_hits);
  if (failed_pairs)
    printf("  %zu full comparisons failed (kept unscored)\n", failed_pairs);
done:
  free(pq);
  free(hits);
  bf_prefilter_free(pf);
  bf_store_close(st);
  return rc;
}
