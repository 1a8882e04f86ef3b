/* The overnight batch (see bf_batch.h): index, plan, search groups, commit each group once.
 * The single-process and the MPI runs share every step; only who searches a group and who
 * commits it differ. */
#define _DEFAULT_SOURCE /* usleep under strict C11 */
#include "bf_batch.h"
#include "bf_lr.h"
#include "bf_alloc.h"
#include "bf_cmc.h"
#include "bf_error.h"
#include "bf_search.h"
#include "bf_striae.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef BF_HAVE_MPI
#include <mpi.h>
#include <unistd.h>
#endif

/* one queue entry; calibre copied because store tables move on writes */
typedef struct pend {
  int64_t item;
  int kind;
  char calibre[32];
} pend;

/* A process's state through a run: the prefilter, one run cache per kind (its comparison), the
 * store it reads. */
typedef struct runner {
  bf_store *st;
  const bf_batch_options *o;
  bf_prefilter *pf;
  bf_search_cache *cache[BF_KIND_BULLET + 1];
  int64_t run;
} runner;

static void note(const bf_batch_options *o, int64_t item, const char *fmt, const char *what)
{
  if (!o->note)
    return;
  char msg[1024];
  snprintf(msg, sizeof msg, fmt, what);
  o->note(o->note_ctx, item, msg);
}

/* The calibrated evidence of a full score (bf_lr.h); NaN when the score is. */
static double score_log10_lr(int kind, double score)
{
  bf_lr lr;
  if (isnan(score) || bf_lr_score(&lr, kind, score, 0, NULL))
    return NAN;
  return lr.log10_lr;
}

int bf_batch_is_hit(const bf_store *st, const bf_batch_options *o, int64_t query,
                    int64_t candidate, double score)
{
  const bf_item *qi = bf_store_item(st, query), *ci = bf_store_item(st, candidate);
  if (!qi || !ci || isnan(score))
    return 0;
  /* --min-score: a plain score threshold; by default the calibrated rule (LR >= 10) */
  if (!isnan(o->min_score) ? score < o->min_score
                           : !bf_lr_is_hit(score_log10_lr(qi->kind, score), NULL))
    return 0;
  /* two test-fires of one firearm, or two items of one evidence record, are known to match:
   * not a lead for anyone */
  return !(qi->owner_type == ci->owner_type && qi->owner == ci->owner);
}

/* A search's counts into the run's; a candidate that could not be compared is reported. */
static void add_search_stats(bf_batch_stats *s, const bf_search_stats *ss, const bf_batch_options *o)
{
  s->pre_pairs += ss->pre_pairs, s->screen_pairs += ss->screen_pairs;
  s->full_pairs += ss->full_pairs, s->full_reused += ss->full_reused;
  s->full_failed += ss->full_failed + ss->screen_failed;
  s->preps_made += ss->preps_made, s->preps_cached += ss->preps_cached;
  s->t_read += ss->t_read, s->t_prefilter += ss->t_prefilter;
  s->t_screen += ss->t_screen, s->t_full += ss->t_full;
  if (ss->full_failed || ss->screen_failed)
    note(o, 0, "a candidate comparison failed (left unscored): %s", ss->failure);
}

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

static int has_descriptor(bf_store *st, const char *pfkind, int64_t item)
{
  const bf_feat_row *r;
  size_t n;
  if (bf_store_feature_index(st, pfkind, &r, &n) || !n)
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

/* Step 1: descriptors for items that have none, one commit per kind. */
static int index_missing(bf_store *st, const bf_prefilter *pf, bf_batch_stats *s)
{
  for (int kind = BF_KIND_CARTRIDGE; kind <= BF_KIND_BULLET; kind++) {
    size_t added = 0, failed = 0;
    int ret = bf_store_begin(st);
    if (!ret)
      ret = bf_search_store_index(st, pf, kind, &added, &failed);
    if (!ret && added)
      ret = bf_store_commit(st);
    else
      bf_store_abort(st);
    if (ret)
      return ret;
    s->indexed += added;
    s->index_failed += failed;
  }
  return 0;
}

/* Step 2: the run id and the queue. */
static int plan(bf_store *st, const bf_batch_options *o, bf_batch_stats *s, pend **out,
                size_t *nout)
{
  size_t nit = bf_store_nitems(st), n = 0;
  const bf_item *items = bf_store_items(st);
  bf_hit *all = NULL;
  size_t nall = 0;
  int64_t run = 0;
  *out = NULL;
  *nout = 0;
  if (!nit)
    return bf_error_set(BF_ENOTFOUND, "%s: the store holds no items to search", bf_store_path(st));
  int ret = bf_store_query_hits(st, NULL, &all, &nall);
  if (ret)
    return ret;
  for (size_t i = 0; i < nit; i++)
    if (items[i].searched > run)
      run = items[i].searched;
  for (size_t i = 0; i < nall; i++)
    if (all[i].run > run)
      run = all[i].run;
  free(all);
  s->run = run + 1;
  pend *pq = bf_malloc(nit * sizeof *pq);
  if (!pq)
    return bf_error_set(BF_ENOMEM, "batch: out of memory for a %zu-item queue", nit);
  for (size_t i = 0; i < nit; i++) {
    const bf_item *it = &items[i];
    if (it->searched) {
      s->searched_before++;
      continue;
    }
    const char *pk = bf_prefilter_kind_name(it->kind);
    if (!pk || !has_descriptor(st, pk, it->id))
      continue;
    pq[n].item = it->id;
    pq[n].kind = it->kind;
    snprintf(pq[n].calibre, sizeof pq[n].calibre, "%s", it->calibre);
    n++;
  }
  qsort(pq, n, sizeof *pq, cmp_pend);
  if (o->limit >= 0 && (size_t)o->limit < n)
    n = (size_t)o->limit;
  s->pending = n;
  *out = pq;
  *nout = n;
  return 0;
}

/* Groups: runs of at most `group` queue entries of one kind and calibre. */
static size_t group_len(const pend *pq, size_t n, size_t g0, int group)
{
  size_t gn = 1;
  while (g0 + gn < n && gn < (size_t)group && pq[g0 + gn].kind == pq[g0].kind &&
         !strcmp(pq[g0 + gn].calibre, pq[g0].calibre))
    gn++;
  return gn;
}

/* One group's queries through the search steps (bf_search.h): open (load the queries), plan
 * (prefilter, screen), the pairs it needs, finish (full comparisons, ranks), its hits. The
 * single process runs them back to back; the MPI run shares the pairs' computation between
 * ranks in between (batch_mpi.inc). q[0..nq) are the queries still in the search: one whose own
 * data fail is reported and dropped. */
typedef struct group_run {
  int kind;
  size_t nq, cap;
  bf_search_query *q;
  bf_feature ***f, **d;
  int *nf, *nfull;
  bf_cand **res;
  size_t *nres;
  bf_search_source src;
  bf_search_store_ctx *sctx;
  bf_search_cmp cmp;
  bf_search_opts so;
} group_run;

static void group_close(group_run *w)
{
  for (size_t k = 0; k < w->cap; k++) {
    if (w->f && w->nf)
      bf_search_free_features(w->f[k], w->nf[k]);
    if (w->d)
      bf_feature_free(w->d[k]);
    if (w->res)
      free(w->res[k]);
  }
  bf_free(w->q), bf_free(w->f), bf_free(w->d), bf_free(w->nf), bf_free(w->nfull);
  bf_free(w->res), bf_free(w->nres);
  bf_search_store_source_free(w->sctx);
  memset(w, 0, sizeof *w);
}

/* drops query k (its data are at fault), keeping the others in order */
static void group_drop(group_run *w, size_t k)
{
  bf_search_free_features(w->f[k], w->nf[k]);
  bf_feature_free(w->d[k]);
  free(w->res[k]);
  for (size_t j = k; j + 1 < w->nq; j++) {
    w->q[j] = w->q[j + 1], w->f[j] = w->f[j + 1], w->d[j] = w->d[j + 1];
    w->nf[j] = w->nf[j + 1], w->nfull[j] = w->nfull[j + 1];
    w->res[j] = w->res[j + 1], w->nres[j] = w->nres[j + 1];
  }
  w->nq--;
  w->f[w->nq] = NULL, w->nf[w->nq] = 0, w->d[w->nq] = NULL, w->res[w->nq] = NULL;
}

/* The features and descriptor of one query item (the descriptor's first row). */
static int load_query(bf_store *st, int kind, int64_t item, bf_feature ***f, int *nf,
                      bf_feature **d)
{
  bf_feature **dd = NULL;
  int nd = 0;
  int ret = bf_search_load_features(st, kind, item, f, nf);
  if (!ret)
    ret = bf_store_get_features(st, bf_prefilter_kind_name(kind), item, &dd, &nd);
  if (!ret && nd < 1)
    ret = bf_error_set(BF_ENOTFOUND, "item %lld has no prefilter descriptor", (long long)item);
  if (!ret && *nf < 1)
    ret = bf_error_set(BF_ENOTFOUND, "item %lld has no %s feature", (long long)item,
                       bf_kind_name(kind));
  if (!ret) {
    *d = dd[0];
    dd[0] = NULL;
  }
  bf_search_free_features(dd, nd);
  if (ret) {
    bf_search_free_features(*f, *nf);
    *f = NULL;
    *nf = 0;
  }
  return ret;
}

/* Loads the group's queries and binds the store. Errors returned are the run's (memory,
 * store); an item whose own data fail is reported and left out. */
static int group_open(runner *r, const pend *g, size_t gn, group_run *w, bf_batch_stats *s)
{
  const bf_batch_options *o = r->o;
  int ret = 0;
  memset(w, 0, sizeof *w);
  w->kind = g[0].kind;
  w->cap = gn;
  w->q = bf_calloc(gn, sizeof *w->q);
  w->f = bf_calloc(gn, sizeof *w->f);
  w->d = bf_calloc(gn, sizeof *w->d);
  w->nf = bf_calloc(gn, sizeof *w->nf);
  w->nfull = bf_calloc(gn, sizeof *w->nfull);
  w->res = bf_calloc(gn, sizeof *w->res);
  w->nres = bf_calloc(gn, sizeof *w->nres);
  if (!w->q || !w->f || !w->d || !w->nf || !w->nfull || !w->res || !w->nres)
    return bf_error_set(BF_ENOMEM, "batch: out of memory");
  for (size_t k = 0; k < gn; k++) {
    size_t n = w->nq;
    int e = load_query(r->st, w->kind, g[k].item, &w->f[n], &w->nf[n], &w->d[n]);
    if (e == BF_ENOMEM)
      return e;
    if (e) {
      note(o, g[k].item, "%s", bf_error_last());
      s->failed_items++;
      continue;
    }
    w->q[n] = (bf_search_query){g[k].item, w->kind, w->d[n]->z, w->f[n], w->nf[n]};
    w->nq++;
  }
  bf_search_default_cmp(&w->cmp, w->kind);
  if (w->nq)
    ret = bf_search_store_source(&w->src, &w->sctx, r->st, w->kind, g[0].calibre);
  bf_search_opts so = BF_SEARCH_OPTS_INIT;
  so.keep = o->keep > 0 ? o->keep : bf_search_keep(w->kind, w->nq && !ret ? w->src.nrows : 0);
  so.screen = o->screen >= 0 ? o->screen : BF_BATCH_SCREEN;
  so.threads = o->threads;
  so.cache = o->reuse ? r->cache[w->kind] : NULL;
  w->so = so;
  return ret;
}

/* A step over the group's queries, all at once and, when that fails for a reason other than
 * memory (one query's data may be at fault), each alone to find it; a failing query is reported
 * and dropped. */
static int group_step(runner *r, group_run *w, bf_batch_stats *s, int finish,
                      const bf_search_pair *done, size_t ndone)
{
  bf_search_stats ss;
  size_t nq = w->nq;
  int e = 0;
  for (size_t k0 = 0, all = 1; k0 < w->nq && e != BF_ENOMEM;) {
    size_t m = all ? nq : 1;
    e = finish ? bf_search_finish(w->res + k0, w->nres + k0, w->nfull + k0, w->q + k0, (int)m,
                                  &w->src, &w->cmp, &w->so, done, ndone, &ss)
               : bf_search_plan(w->res + k0, w->nres + k0, w->nfull + k0, w->q + k0, (int)m,
                                &w->src, &w->cmp, r->pf, &w->so, &ss);
    if (e && e != BF_ENOMEM && all) { /* again, one by one */
      all = 0;
      continue;
    }
    if (e && e != BF_ENOMEM) {
      note(r->o, w->q[k0].item, "%s", bf_error_last());
      s->failed_items++;
      group_drop(w, k0);
      e = 0;
      continue;
    }
    if (!e)
      add_search_stats(s, &ss, r->o);
    k0 += m;
  }
  return e == BF_ENOMEM ? e : 0;
}

/* The group's hits: ok[] gets the items searched, *nok how many. */
static int group_hits(runner *r, const group_run *w, int64_t *ok, size_t *nok, bf_hit **hits,
                      size_t *nhits)
{
  size_t cap = 0;
  int ret = 0;
  *nok = 0;
  *hits = NULL;
  *nhits = 0;
  for (size_t k = 0; k < w->nq && !ret; k++) {
    ok[(*nok)++] = w->q[k].item;
    for (size_t j = 0; j < w->nres[k]; j++) {
      const bf_cand *c = &w->res[k][j];
      if (!bf_batch_is_hit(r->st, r->o, w->q[k].item, c->item, c->score))
        continue;
      if (*nhits == cap) {
        size_t ncap = cap ? 2 * cap : 64;
        bf_hit *nh = bf_realloc(*hits, ncap * sizeof *nh);
        if (!nh) {
          ret = bf_error_set(BF_ENOMEM, "batch: out of memory for hits");
          break;
        }
        *hits = nh;
        cap = ncap;
      }
      bf_hit *h = &(*hits)[(*nhits)++];
      memset(h, 0, sizeof *h);
      h->query = w->q[k].item;
      h->candidate = c->item;
      h->run = r->run;
      h->score = c->score;
      memcpy(h->scores, c->sub, sizeof h->scores);
      h->rank = c->rank;
      h->status = BF_HIT_CANDIDATE;
      h->log10_lr = score_log10_lr(w->q[k].kind, c->score);
    }
  }
  if (ret) {
    bf_free(*hits);
    *hits = NULL;
    *nhits = 0;
    *nok = 0;
  }
  return ret;
}

/* Searches one group in this process: ok[] gets the items searched (their hits in *hits), *nok
 * how many; items whose own data fail are reported and left out. Errors returned are the run's
 * (memory, store). */
static int search_group(runner *r, const pend *g, size_t gn, int64_t *ok, size_t *nok,
                        bf_hit **hits, size_t *nhits, bf_batch_stats *s)
{
  group_run w;
  *nok = 0;
  *hits = NULL;
  *nhits = 0;
  int ret = group_open(r, g, gn, &w, s);
  if (!ret)
    ret = group_step(r, &w, s, 0, NULL, 0);
  if (!ret)
    ret = group_step(r, &w, s, 1, NULL, 0);
  if (!ret)
    ret = group_hits(r, &w, ok, nok, hits, nhits);
  group_close(&w);
  return ret;
}

/* One transaction: the group's hits and the searched mark of its items. */
static int commit_group(bf_store *st, int64_t run, const int64_t *ids, size_t n,
                        const bf_hit *hits, size_t nh, bf_batch_stats *s)
{
  size_t added = 0;
  if (!n)
    return 0;
  int ret = bf_store_begin(st);
  if (!ret)
    ret = bf_store_add_hits(st, hits, nh, &added);
  if (!ret)
    ret = bf_store_set_searched(st, ids, n, run);
  if (!ret)
    ret = bf_store_commit(st);
  if (ret) {
    bf_store_abort(st);
    return ret;
  }
  s->new_hits += added;
  s->searched += n;
  return 0;
}

static int runner_init(runner *r, bf_store *st, const bf_batch_options *o)
{
  memset(r, 0, sizeof *r);
  r->st = st;
  r->o = o;
  int ret = bf_prefilter_new(&r->pf, NULL);
  for (int k = 0; k <= BF_KIND_BULLET && !ret; k++)
    ret = bf_search_cache_new(&r->cache[k], o->cache_mb << 20);
  return ret;
}

static void runner_free(runner *r)
{
  bf_prefilter_free(r->pf);
  for (int k = 0; k <= BF_KIND_BULLET; k++)
    bf_search_cache_free(r->cache[k]);
}

static int check_opts(const bf_batch_options *o)
{
  if (o->group < 1 || o->threads < 0 || o->keep < 0 || o->wave < 1)
    return bf_error_set(BF_EINVAL, "batch: group and wave must be >= 1, threads and keep >= 0");
  return 0;
}

int bf_batch_run(bf_store *st, const bf_batch_options *o, bf_batch_stats *stats)
{
  bf_batch_options def = BF_BATCH_OPTIONS_INIT;
  bf_batch_stats s0;
  runner r;
  pend *pq = NULL;
  int64_t *ok = NULL;
  size_t npend = 0;
  if (!o)
    o = &def;
  if (!stats)
    stats = &s0;
  memset(stats, 0, sizeof *stats);
  int ret = check_opts(o);
  if (ret)
    return ret;
  int omp_prev = bf_search_threads_begin(o->threads);
  if ((ret = runner_init(&r, st, o)) || (ret = index_missing(st, r.pf, stats)) ||
      (ret = plan(st, o, stats, &pq, &npend)))
    goto done;
  r.run = stats->run;
  if (!(ok = bf_malloc((size_t)o->group * sizeof *ok))) {
    ret = bf_error_set(BF_ENOMEM, "batch: out of memory");
    goto done;
  }
  if (o->progress)
    o->progress(o->progress_ctx, stats);
  double t0 = omp_get_wtime();
  for (size_t g0 = 0; g0 < npend && !ret;) {
    size_t gn = group_len(pq, npend, g0, o->group), nok = 0, nh = 0;
    bf_hit *hits = NULL;
    ret = search_group(&r, pq + g0, gn, ok, &nok, &hits, &nh, stats);
    if (!ret)
      ret = commit_group(st, r.run, ok, nok, hits, nh, stats);
    bf_free(hits);
    g0 += gn;
    if (!ret && o->progress)
      o->progress(o->progress_ctx, stats);
  }
  stats->seconds = omp_get_wtime() - t0;
done:
  bf_free(ok);
  bf_free(pq);
  runner_free(&r);
  bf_search_threads_end(omp_prev);
  return ret;
}

#ifndef BF_HAVE_MPI
int bf_batch_have_mpi(void) { return 0; }

int bf_batch_run_mpi(const char *path, const bf_batch_options *o, bf_batch_stats *stats)
{
  (void)o;
  if (stats)
    memset(stats, 0, sizeof *stats);
  return bf_error_set(BF_EINVAL, "%s: this bfm was built without MPI (install libopenmpi-dev "
                      "and rebuild)", path);
}
#else
#include "batch_mpi.inc"
#endif
