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

typedef struct query_buf {
  bf_search_query *q;
  bf_feature ***f, **d;
  int *nf;
  bf_cand **res;
  size_t *nres;
} query_buf;

static void query_buf_free(query_buf *b, size_t n)
{
  for (size_t k = 0; k < n; k++) {
    if (b->f && b->nf)
      bf_search_free_features(b->f[k], b->nf[k]);
    if (b->d)
      bf_feature_free(b->d[k]);
    if (b->res)
      free(b->res[k]);
  }
  bf_free(b->q), bf_free(b->f), bf_free(b->d), bf_free(b->nf), bf_free(b->res), bf_free(b->nres);
  memset(b, 0, sizeof *b);
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

/* Searches one group: ok[] gets the items searched (their hits in *hits), *nok how many; items
 * whose own data fail are reported and left out. Errors returned are the run's (memory, store). */
static int search_group(runner *r, const pend *g, size_t gn, int64_t *ok, size_t *nok,
                        bf_hit **hits, size_t *nhits, bf_batch_stats *s)
{
  const bf_batch_options *o = r->o;
  int kind = g[0].kind, ret = 0;
  query_buf b;
  size_t nq = 0, cap = 0;
  *nok = 0;
  *hits = NULL;
  *nhits = 0;
  memset(&b, 0, sizeof b);
  b.q = bf_calloc(gn, sizeof *b.q);
  b.f = bf_calloc(gn, sizeof *b.f);
  b.d = bf_calloc(gn, sizeof *b.d);
  b.nf = bf_calloc(gn, sizeof *b.nf);
  b.res = bf_calloc(gn, sizeof *b.res);
  b.nres = bf_calloc(gn, sizeof *b.nres);
  if (!b.q || !b.f || !b.d || !b.nf || !b.res || !b.nres) {
    ret = bf_error_set(BF_ENOMEM, "batch: out of memory");
    goto done;
  }
  for (size_t k = 0; k < gn; k++) {
    int e = load_query(r->st, kind, g[k].item, &b.f[nq], &b.nf[nq], &b.d[nq]);
    if (e == BF_ENOMEM) {
      ret = e;
      goto done;
    }
    if (e) {
      note(o, g[k].item, "%s", bf_error_last());
      s->failed_items++;
      continue;
    }
    b.q[nq] = (bf_search_query){g[k].item, kind, b.d[nq]->z, b.f[nq], b.nf[nq]};
    nq++;
  }
  if (!nq)
    goto done;
  bf_search_source src;
  bf_search_store_ctx *sctx = NULL;
  bf_search_cmp cmp;
  bf_search_default_cmp(&cmp, kind);
  bf_search_opts so = BF_SEARCH_OPTS_INIT;
  so.keep = o->keep > 0 ? o->keep : kind == BF_KIND_BULLET ? BF_SEARCH_KEEP_BULLET : so.keep;
  so.screen = o->screen >= 0 ? o->screen : BF_BATCH_SCREEN;
  so.threads = o->threads;
  so.cache = o->reuse ? r->cache[kind] : NULL;
  bf_search_stats ss;
  int *good = bf_calloc(nq, sizeof *good);
  if (!good) {
    ret = bf_error_set(BF_ENOMEM, "batch: out of memory");
    goto done;
  }
  if ((ret = bf_search_store_source(&src, &sctx, r->st, kind, g[0].calibre))) {
    bf_free(good);
    goto done;
  }
  int e = bf_search_run(b.res, b.nres, b.q, (int)nq, &src, &cmp, r->pf, &so, &ss);
  if (!e) {
    for (size_t k = 0; k < nq; k++)
      good[k] = 1;
    add_search_stats(s, &ss, o);
  } else if (e != BF_ENOMEM) /* one query's data may be at fault: each alone, to find it */
    for (size_t k = 0; k < nq && e != BF_ENOMEM; k++) {
      e = bf_search_run(&b.res[k], &b.nres[k], &b.q[k], 1, &src, &cmp, r->pf, &so, &ss);
      if (e && e != BF_ENOMEM) {
        note(o, b.q[k].item, "%s", bf_error_last());
        s->failed_items++;
        continue;
      }
      good[k] = !e;
      add_search_stats(s, &ss, o);
    }
  bf_search_store_source_free(sctx);
  if (e == BF_ENOMEM)
    ret = e;
  for (size_t k = 0; k < nq && !ret; k++) {
    if (!good[k])
      continue;
    ok[(*nok)++] = b.q[k].item;
    for (size_t j = 0; j < b.nres[k]; j++) {
      const bf_cand *c = &b.res[k][j];
      if (!bf_batch_is_hit(r->st, o, b.q[k].item, c->item, c->score))
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
      h->query = b.q[k].item;
      h->candidate = c->item;
      h->run = r->run;
      h->score = c->score;
      memcpy(h->scores, c->sub, sizeof h->scores);
      h->rank = c->rank;
      h->status = BF_HIT_CANDIDATE;
      h->log10_lr = score_log10_lr(b.q[k].kind, c->score);
    }
  }
  bf_free(good);
done:
  query_buf_free(&b, gn);
  if (ret) {
    bf_free(*hits);
    *hits = NULL;
    *nhits = 0;
    *nok = 0;
  }
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
  if (o->group < 1 || o->threads < 0 || o->keep < 0)
    return bf_error_set(BF_EINVAL, "batch: group must be >= 1, threads and keep >= 0");
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
