/* Two-stage search (see bf_search.h): streamed prefilter with bounded top-K, then the full
 * comparison of the kept candidates, OpenMP across candidates, one thread feeding data. */
#include "bf_search.h"
#include "bf_alloc.h"
#include "bf_cmc.h"
#include "bf_error.h"
#include "bf_pin.h"
#include "bf_fft.h"
#include "bf_striae.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) { return omp_get_wtime(); }

void bf_search_free_features(bf_feature **f, int n)
{
  bf_store_features_free(f, n);
}

/* ---- the run cache: pair memo (open addressing on the unordered pair) + screen surfaces ---- */
typedef struct memo_ent {
  int64_t a, b; /* a < b; a == 0: empty slot */
  double score, sub[4]; /* as compare(a, b) gave them */
} memo_ent;

typedef struct scr_ent {
  int64_t item; /* 0: empty */
  bf_feature **f;
  int n;
} scr_ent;

typedef struct prep_ent {
  int64_t item;
  void *prep;
  size_t bytes;
  uint64_t used; /* LRU clock */
  int pins;      /* in use by the stage running: not dropped */
} prep_ent;

struct bf_search_cache {
  memo_ent *m;
  size_t mcap, mn;
  scr_ent *s;
  size_t scap, sn, bytes, max_bytes; /* bytes: screen surfaces and preps */
  prep_ent *p;   /* a plain array: a few hundred preps fill any sane bound */
  size_t pn, pcap;
  uint64_t clock;
  void (*prep_free)(void *ctx, void *prep);
  void *prep_ctx;
};

int bf_search_cache_new(bf_search_cache **out, size_t max_bytes)
{
  *out = bf_calloc(1, sizeof **out);
  if (!*out)
    return bf_error_set(BF_ENOMEM, "search: out of memory for the run cache");
  (*out)->max_bytes = max_bytes;
  return 0;
}

void bf_search_cache_free(bf_search_cache *c)
{
  if (!c)
    return;
  for (size_t i = 0; i < c->scap; i++)
    if (c->s[i].item)
      bf_search_free_features(c->s[i].f, c->s[i].n);
  for (size_t i = 0; i < c->pn; i++)
    c->prep_free(c->prep_ctx, c->p[i].prep);
  bf_free(c->p);
  bf_free(c->s);
  bf_free(c->m);
  bf_free(c);
}

static size_t hash2(int64_t a, int64_t b)
{
  uint64_t h = (uint64_t)a * 0x9E3779B97F4A7C15ull ^ ((uint64_t)b + 0x632BE59BD9B4E019ull);
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  return (size_t)(h ^ (h >> 29));
}

static memo_ent *memo_find(const bf_search_cache *c, int64_t a, int64_t b)
{
  if (!c || !c->mcap)
    return NULL;
  int64_t lo = a < b ? a : b, hi = a < b ? b : a;
  for (size_t i = hash2(lo, hi) & (c->mcap - 1);; i = (i + 1) & (c->mcap - 1)) {
    if (!c->m[i].a)
      return NULL;
    if (c->m[i].a == lo && c->m[i].b == hi)
      return &c->m[i];
  }
}

/* Records compare(q, cand); a failed insert only costs a later recomputation. */
static void memo_put(bf_search_cache *c, int64_t q, int64_t cand, double score, const double sub[4],
                     void (*reverse)(double[4]))
{
  if (2 * (c->mn + 1) > c->mcap) {
    size_t ncap = c->mcap ? 2 * c->mcap : 1024;
    memo_ent *n = bf_calloc(ncap, sizeof *n);
    if (!n)
      return;
    for (size_t i = 0; i < c->mcap; i++)
      if (c->m[i].a) {
        size_t j = hash2(c->m[i].a, c->m[i].b) & (ncap - 1);
        while (n[j].a)
          j = (j + 1) & (ncap - 1);
        n[j] = c->m[i];
      }
    bf_free(c->m);
    c->m = n;
    c->mcap = ncap;
  }
  int64_t lo = q < cand ? q : cand, hi = q < cand ? cand : q;
  size_t i = hash2(lo, hi) & (c->mcap - 1);
  while (c->m[i].a && !(c->m[i].a == lo && c->m[i].b == hi))
    i = (i + 1) & (c->mcap - 1);
  if (!c->m[i].a)
    c->mn++;
  memo_ent *e = &c->m[i];
  e->a = lo;
  e->b = hi;
  e->score = score;
  memcpy(e->sub, sub, sizeof e->sub);
  if (q != lo) /* stored as compare(lo, hi) */
    reverse(e->sub);
}

static scr_ent *scr_find(const bf_search_cache *c, int64_t item)
{
  if (!c || !c->scap)
    return NULL;
  for (size_t i = hash2(item, 0) & (c->scap - 1);; i = (i + 1) & (c->scap - 1)) {
    if (!c->s[i].item)
      return NULL;
    if (c->s[i].item == item)
      return &c->s[i];
  }
}

/* Takes f (the cache owns it) or returns 1 when it is full (caller keeps f). */
static int scr_put(bf_search_cache *c, int64_t item, bf_feature **f, int n)
{
  size_t bytes = sizeof(scr_ent);
  for (int i = 0; i < n; i++)
    bytes += sizeof(bf_feature) + sizeof(float) * (size_t)f[i]->nx * f[i]->ny;
  if (c->bytes + bytes > c->max_bytes)
    return 1;
  if (2 * (c->sn + 1) > c->scap) {
    size_t ncap = c->scap ? 2 * c->scap : 256;
    scr_ent *s = bf_calloc(ncap, sizeof *s);
    if (!s)
      return 1;
    for (size_t i = 0; i < c->scap; i++)
      if (c->s[i].item) {
        size_t j = hash2(c->s[i].item, 0) & (ncap - 1);
        while (s[j].item)
          j = (j + 1) & (ncap - 1);
        s[j] = c->s[i];
      }
    bf_free(c->s);
    c->s = s;
    c->scap = ncap;
  }
  size_t i = hash2(item, 0) & (c->scap - 1);
  while (c->s[i].item)
    i = (i + 1) & (c->scap - 1);
  c->s[i] = (scr_ent){item, f, n};
  c->sn++;
  c->bytes += bytes;
  return 0;
}

/* ---- prepared items: LRU within the cache's byte bound ---- */
static prep_ent *prep_find(bf_search_cache *c, int64_t item)
{
  for (size_t i = 0; c && i < c->pn; i++)
    if (c->p[i].item == item)
      return &c->p[i];
  return NULL;
}

/* The cached prep of item, pinned (NULL: not cached). */
static void *prep_take(bf_search_cache *c, int64_t item)
{
  prep_ent *e = prep_find(c, item);
  if (!e)
    return NULL;
  e->pins++;
  e->used = ++c->clock;
  return e->prep;
}

static void prep_unpin(bf_search_cache *c, int64_t item)
{
  prep_ent *e = prep_find(c, item);
  if (e && e->pins > 0)
    e->pins--;
}

/* Takes prep (the cache owns it, pinned `pin` times) or returns 1 when it cannot be kept within
 * the bound even after dropping the least recently used unpinned preps (caller keeps prep). */
static int prep_put(bf_search_cache *c, const bf_search_cmp *cmp, int64_t item, void *prep,
                    size_t bytes, int pin)
{
  if (!c || bytes > c->max_bytes || prep_find(c, item))
    return 1;
  while (c->bytes + bytes > c->max_bytes) {
    size_t lru = c->pn;
    for (size_t i = 0; i < c->pn; i++)
      if (!c->p[i].pins && (lru == c->pn || c->p[i].used < c->p[lru].used))
        lru = i;
    if (lru == c->pn)
      return 1;
    c->prep_free(c->prep_ctx, c->p[lru].prep);
    c->bytes -= c->p[lru].bytes;
    c->p[lru] = c->p[--c->pn];
  }
  if (c->pn == c->pcap) {
    size_t ncap = c->pcap ? 2 * c->pcap : 64;
    prep_ent *n = bf_realloc(c->p, ncap * sizeof *n);
    if (!n)
      return 1;
    c->p = n;
    c->pcap = ncap;
  }
  c->prep_free = cmp->prep_free;
  c->prep_ctx = cmp->ctx;
  c->p[c->pn++] = (prep_ent){item, prep, bytes, ++c->clock, pin};
  c->bytes += bytes;
  return 0;
}

/* ---- bounded min-heap of (prefilter score, item) ---- */
typedef struct heap {
  double *s;
  int64_t *id;
  int n, cap;
} heap;

static void heap_push(heap *h, double s, int64_t id)
{
  if (h->n == h->cap) {
    if (h->cap == 0 || s <= h->s[0])
      return;
    /* replace the root and sift down */
    int i = 0;
    for (;;) {
      int l = 2 * i + 1, r = l + 1, m = i;
      double ms = s;
      if (l < h->n && h->s[l] < ms)
        m = l, ms = h->s[l];
      if (r < h->n && h->s[r] < ms)
        m = r;
      if (m == i)
        break;
      h->s[i] = h->s[m];
      h->id[i] = h->id[m];
      i = m;
    }
    h->s[i] = s;
    h->id[i] = id;
    return;
  }
  int i = h->n++;
  while (i > 0) {
    int p = (i - 1) / 2;
    if (h->s[p] <= s)
      break;
    h->s[i] = h->s[p];
    h->id[i] = h->id[p];
    i = p;
  }
  h->s[i] = s;
  h->id[i] = id;
}

static int cmp_pre(const void *a, const void *b)
{
  const bf_cand *x = a, *y = b;
  if (x->pre != y->pre)
    return x->pre < y->pre ? 1 : -1;
  return x->item < y->item ? -1 : x->item > y->item;
}

static int cmp_screen(const void *a, const void *b)
{
  const bf_cand *x = a, *y = b;
  int nx = isnan(x->screen), ny = isnan(y->screen);
  if (nx != ny)
    return nx - ny;
  if (!nx && x->screen != y->screen)
    return x->screen < y->screen ? 1 : -1;
  return x->pre_rank - y->pre_rank;
}

static int cmp_full(const void *a, const void *b)
{
  const bf_cand *x = a, *y = b;
  int nx = isnan(x->order), ny = isnan(y->order);
  if (nx != ny)
    return nx - ny; /* not compared / failed go last */
  if (!nx && x->order != y->order)
    return x->order < y->order ? 1 : -1;
  return x->pre_rank - y->pre_rank;
}

/* ---- stage 1 ---- */
static int stage_prefilter(heap *hp, const bf_search_query *q, int nq, const bf_search_source *src,
                           const bf_prefilter *pf, const bf_search_opts *o, int nthreads,
                           bf_search_stats *stats)
{
  int ret = 0, kind = q[0].kind;
  size_t len = bf_prefilter_len(pf, kind), B = o->block ? o->block : 4096;
  if (src->nrows == 0)
    return 0;
  if (B > src->nrows)
    B = src->nrows;
  int64_t *ids[2] = {NULL, NULL};
  float *desc[2] = {NULL, NULL}, *sc = NULL;
  for (int i = 0; i < 2; i++) {
    ids[i] = malloc(B * sizeof(int64_t));
    desc[i] = malloc(B * len * sizeof(float));
  }
  sc = malloc(B * (size_t)nq * sizeof(float));
  if (!ids[0] || !ids[1] || !desc[0] || !desc[1] || !sc) {
    ret = bf_error_set(BF_ENOMEM, "search: out of memory for %zu-row blocks", B);
    goto done;
  }
  size_t nb = (src->nrows + B - 1) / B;
  double t = now_s();
  ret = src->read_desc(src->ctx, 0, B < src->nrows ? B : src->nrows, ids[0], desc[0]);
  double tread = now_s() - t;
  for (size_t b = 0; b < nb && !ret; b++) {
    int cur = b & 1, nxt = cur ^ 1;
    size_t first = b * B, rows = src->nrows - first < B ? src->nrows - first : B;
    size_t nfirst = first + rows, nrows = nb > b + 1 ? (src->nrows - nfirst < B ? src->nrows - nfirst : B) : 0;
    int rret = 0, read_done = !nrows;
    double tr = 0;
    const int64_t *cid = ids[cur];
    const float *cd = desc[cur];
#pragma omp parallel num_threads(nthreads)
    {
      if (omp_get_thread_num() == 0 && nrows) {
        double t0 = now_s();
        rret = src->read_desc(src->ctx, nfirst, nrows, ids[nxt], desc[nxt]);
        tr = now_s() - t0;
#pragma omp atomic write
        read_done = 1;
      }
#pragma omp for schedule(dynamic, 32) nowait
      for (size_t i = 0; i < rows; i++)
        for (int k = 0; k < nq; k++)
          sc[(size_t)k * B + i] = (cid[i] > 0 && cid[i] != q[k].item)
                                    ? (float)bf_prefilter_score(pf, kind, q[k].desc, cd + i * len, NULL)
                                    : -INFINITY;
      /* One query scores a block in a fraction of its read: the scorers would wait for the reader
       * at the region's barrier spinning (OpenMP's active wait), burning a core for nothing on a
       * shared machine. They sleep in 0.2 ms steps instead. */
      for (int done = 0; omp_get_thread_num() != 0;) {
#pragma omp atomic read
        done = read_done;
        if (done)
          break;
        nanosleep(&(struct timespec){0, 200000}, NULL);
      }
    }
    tread += tr;
    for (int k = 0; k < nq; k++)
      for (size_t i = 0; i < rows; i++)
        if (cid[i] > 0 && cid[i] != q[k].item)
          heap_push(&hp[k], sc[(size_t)k * B + i], cid[i]);
    if (stats) {
      stats->rows += rows;
      for (int k = 0; k < nq; k++)
        for (size_t i = 0; i < rows; i++)
          stats->pre_pairs += cid[i] > 0 && cid[i] != q[k].item;
    }
    ret = rret;
  }
  if (stats) {
    stats->t_read += tread;
    stats->t_prefilter += now_s() - t - tread;
  }
done:
  for (int i = 0; i < 2; i++) {
    free(ids[i]);
    free(desc[i]);
  }
  free(sc);
  return ret;
}

/* ---- stages 2 and 3 ---- */
typedef struct loaded {
  bf_feature **f;
  int n;
  int err;      /* load or comparison failed: candidate stays with score NaN */
  char msg[256]; /* ... and why (the failing thread's bf_error_last) */
  int borrowed; /* f belongs to the run cache */
  int memo;     /* the full score came from the pair memo (f is NULL) */
  double score, sub[4];
  int64_t item;
  void *prep;        /* the full stage's prepared candidate: pinned in the cache, or new */
  size_t prep_bytes;
  int prep_new;      /* made here (moved into the cache or freed with the chunk) */
} loaded;

typedef struct stage_ctx {
  const bf_search_source *src;
  const bf_search_cmp *cmp;
  bf_search_cache *cache;
  int64_t qitem;
  int scr;
  size_t cached; /* screen candidates served by the cache */
  size_t stored; /* screen candidates read in their stored screen form */
  const void *qprep; /* the query's prep (full stage with a prep cache), else NULL */
  size_t preps_cached;
  const bf_search_pair *done; /* pairs computed for this step (bf_search_finish), by (a, b) */
  size_t ndone;
} stage_ctx;

static int cmp_pair(const void *x, const void *y)
{
  const bf_search_pair *p = x, *q = y;
  if (p->a != q->a)
    return p->a < q->a ? -1 : 1;
  return (p->b > q->b) - (p->b < q->b);
}

/* A full score known without comparing: computed for this step (done[]) or in the pair memo;
 * score and sub as compare(query, cand). Only for a symmetric comparison of stored items. */
static int pair_known(const stage_ctx *x, int64_t cand, double *score, double sub[4])
{
  if (x->scr || !x->cmp->reverse || x->qitem <= 0 || cand <= 0)
    return 0;
  bf_search_pair key = {.a = x->qitem < cand ? x->qitem : cand,
                        .b = x->qitem < cand ? cand : x->qitem};
  const bf_search_pair *p = x->ndone ? bsearch(&key, x->done, x->ndone, sizeof key, cmp_pair) : NULL;
  const memo_ent *m = p ? NULL : memo_find(x->cache, key.a, key.b);
  if (!p && !m)
    return 0;
  *score = p ? p->score : m->score;
  memcpy(sub, p ? p->sub : m->sub, 4 * sizeof *sub);
  if (x->qitem != key.a) /* both hold compare(a, b) */
    x->cmp->reverse(sub);
  return 1;
}

/* A candidate's stored screen form (bf_search_source.load_screen); BF_ENOTFOUND when the source
 * has none for it (the caller reduces the full features). */
static int load_stored_screen(stage_ctx *x, int64_t item, bf_feature ***f, int *n)
{
  if (!x->src->load_screen || item <= 0)
    return BF_ENOTFOUND;
  int ret = x->src->load_screen(x->src->ctx, item, f, n);
  if (!ret)
    x->stored++;
  else if (ret == BF_ENOTFOUND)
    bf_error_clear();
  return ret;
}

/* The screen's reduced features of an item: from the cache, or loaded, reduced and cached. */
static int load_screen(stage_ctx *x, int64_t item, loaded *l)
{
  scr_ent *e = scr_find(x->cache, item);
  if (e) {
    l->f = e->f;
    l->n = e->n;
    l->borrowed = 1;
    x->cached++;
    return 0;
  }
  bf_feature **full = NULL, **red = NULL;
  int nfull = 0, nred = 0;
  int ret = load_stored_screen(x, item, &red, &nred);
  if (ret == BF_ENOTFOUND) {
    ret = x->src->load(x->src->ctx, item, &full, &nfull);
    if (!ret)
      ret = x->cmp->screen_reduce(x->cmp->ctx, full, nfull, &red, &nred);
    bf_search_free_features(full, nfull);
  }
  if (ret)
    return ret;
  l->f = red;
  l->n = nred;
  l->borrowed = !scr_put(x->cache, item, red, nred);
  return 0;
}

static int load_chunk(stage_ctx *x, bf_cand *c, int n, loaded *l)
{
  for (int i = 0; i < n; i++) {
    memset(&l[i], 0, sizeof l[i]);
    if (pair_known(x, c[i].item, &l[i].score, l[i].sub)) {
      l[i].memo = 1;
      continue;
    }
    l[i].item = c[i].item;
    if (!x->scr && x->qprep && c[i].item > 0 && (l[i].prep = prep_take(x->cache, c[i].item))) {
      x->preps_cached++; /* prepared earlier in the run: nothing to read */
      continue;
    }
    if (x->scr && x->cache && x->cmp->screen_reduce && c[i].item > 0)
      l[i].err = load_screen(x, c[i].item, &l[i]);
    else if (!x->scr || (l[i].err = load_stored_screen(x, c[i].item, &l[i].f, &l[i].n)) == BF_ENOTFOUND)
      l[i].err = x->src->load(x->src->ctx, c[i].item, &l[i].f, &l[i].n);
    if (l[i].err)
      snprintf(l[i].msg, sizeof l[i].msg, "%s", bf_error_last());
    if (l[i].err == BF_ENOMEM)
      return l[i].err;
  }
  return 0;
}

static void free_chunk(const stage_ctx *x, loaded *l, int n)
{
  for (int i = 0; i < n; i++) {
    if (!l[i].borrowed)
      bf_search_free_features(l[i].f, l[i].n);
    if (l[i].prep && l[i].prep_new)
      x->cmp->prep_free(x->cmp->ctx, l[i].prep);
    else if (l[i].prep)
      prep_unpin(x->cache, l[i].item);
    l[i].f = NULL;
    l[i].n = 0;
    l[i].borrowed = 0;
    l[i].prep = NULL;
    l[i].prep_new = 0;
  }
}

/* The full comparison of the query with one candidate. Two stored items are compared in one
 * orientation, the smaller id first, whichever is the query (bf_search_cmp.reverse), from their
 * preps when the run keeps them (the candidate's made here when new). */
static int full_pair(const stage_ctx *x, void *state, const bf_search_query *q, int64_t citem,
                     loaded *l, double *s, double sub[4])
{
  const bf_search_cmp *cmp = x->cmp;
  int flip = cmp->reverse && q->item > 0 && citem > 0 && citem < q->item, e;
  if (x->qprep && citem > 0) {
    if (!l->prep) {
      if ((e = cmp->prep(cmp->ctx, l->f, l->n, &l->prep, &l->prep_bytes)))
        return e;
      l->prep_new = 1;
    }
    e = flip ? cmp->compare_prep(cmp->ctx, l->prep, x->qprep, s, sub)
             : cmp->compare_prep(cmp->ctx, x->qprep, l->prep, s, sub);
  } else
    e = flip ? cmp->compare(cmp->ctx, NULL, l->f, l->n, q->feat, q->nfeat, s, sub)
             : cmp->compare(cmp->ctx, state, q->feat, q->nfeat, l->f, l->n, s, sub);
  if (!e && flip)
    cmp->reverse(sub);
  return e;
}

/* scr = 1: the screen comparison into c[].screen; 0: the full comparison into c[].score */
static int stage_full(bf_cand *c, int n, const bf_search_query *q, const bf_search_source *src,
                      const bf_search_cmp *cmp, const bf_search_opts *o, int nthreads,
                      bf_search_stats *stats, int scr, const bf_search_pair *done,
                      size_t ndone)
{
  int ret = 0, C = o->chunk > 0 ? o->chunk : 16;
  void *state = NULL;
  int (*prepare)(void *, void **, bf_feature *const *, int) = scr ? cmp->screen_prepare : cmp->prepare;
  void (*release)(void *, void *) = scr ? cmp->screen_release : cmp->release;
  int (*compare)(void *, void *, bf_feature *const *, int, bf_feature *const *, int, double *,
                 double *) = scr ? cmp->screen : cmp->compare;
  stage_ctx x = {.src = src, .cmp = cmp, .cache = o->cache, .qitem = q->item, .scr = scr,
                 .done = done, .ndone = ndone};
  loaded *buf[2] = {bf_calloc(C, sizeof(loaded)), bf_calloc(C, sizeof(loaded))};
  size_t failed = 0, reused = 0, made = 0;
  void *qprep = NULL;
  int qprep_owned = 0;
  if (!buf[0] || !buf[1]) {
    ret = bf_error_set(BF_ENOMEM, "search: out of memory");
    goto done;
  }
  double t = now_s();
  /* the query's state and prep only when a candidate is compared here (all may be known) */
  int need = scr;
  for (int i = 0; i < n && !need; i++) {
    double ks, ksub[4];
    need = !pair_known(&x, c[i].item, &ks, ksub);
  }
  if (need && prepare && (ret = prepare(cmp->ctx, &state, q->feat, q->nfeat)))
    goto done;
  if (need && !scr && x.cache && cmp->prep && cmp->compare_prep && cmp->prep_free && q->item > 0) {
    size_t qb = 0;
    if ((qprep = prep_take(x.cache, q->item)))
      x.preps_cached++;
    else if (!cmp->prep(cmp->ctx, q->feat, q->nfeat, &qprep, &qb)) {
      made++;
      qprep_owned = prep_put(x.cache, cmp, q->item, qprep, qb, 1);
    } else { /* compared unprepared: each candidate then reports the query's problem */
      qprep = NULL;
      bf_error_clear();
    }
    x.qprep = qprep;
  }
  int nch = (n + C - 1) / C;
  if (nch && (ret = load_chunk(&x, c, n < C ? n : C, buf[0])))
    goto done;
  for (int ch = 0; ch < nch && !ret; ch++) {
    int cur = ch & 1, nxt = cur ^ 1, first = ch * C, rows = n - first < C ? n - first : C;
    int nfirst = first + rows, nrows = ch + 1 < nch ? (n - nfirst < C ? n - nfirst : C) : 0;
    int rret = 0;
    loaded *L = buf[cur];
#pragma omp parallel num_threads(nthreads) reduction(+ : failed)
    {
      if (omp_get_thread_num() == 0 && nrows)
        rret = load_chunk(&x, c + nfirst, nrows, buf[nxt]);
#pragma omp for schedule(dynamic, 1) nowait
      for (int i = 0; i < rows; i++) {
        bf_cand *ci = &c[first + i];
        if (L[i].memo) {
          ci->score = L[i].score;
          memcpy(ci->sub, L[i].sub, sizeof ci->sub);
          continue;
        }
        if (L[i].err) {
          failed++;
          continue;
        }
        double s = NAN, sub[4] = {0, 0, 0, 0};
        int e = scr ? compare(cmp->ctx, state, q->feat, q->nfeat, L[i].f, L[i].n, &s, sub)
                    : full_pair(&x, state, q, ci->item, &L[i], &s, sub);
        if (e == BF_EQUALITY) /* a poor candidate is not comparable: unscored, not a failure */
          s = NAN;
        else if ((L[i].err = e)) {
          failed++;
          snprintf(L[i].msg, sizeof L[i].msg, "item %lld: %s", (long long)ci->item, bf_error_last());
          s = NAN;
        }
        if (scr)
          ci->screen = s;
        else {
          ci->score = s;
          memcpy(ci->sub, sub, sizeof sub);
        }
      }
    }
    /* one thread records the chunk's new full scores for the opposite direction */
    for (int i = 0; i < rows; i++) {
      const bf_cand *ci = &c[first + i];
      if (L[i].err && stats && !stats->failure[0]) /* a failure is reported, never silent */
        snprintf(stats->failure, sizeof stats->failure, "%s", L[i].msg);
      if (L[i].memo)
        reused++;
      else if (!scr && x.cache && cmp->reverse && q->item > 0 && ci->item > 0 && !L[i].err &&
               !isnan(ci->score))
        memo_put(x.cache, q->item, ci->item, ci->score, ci->sub, cmp->reverse);
      if (L[i].prep_new) { /* kept for the run when it fits */
        made++;
        if (!prep_put(x.cache, cmp, ci->item, L[i].prep, L[i].prep_bytes, 0))
          L[i].prep_new = 0, L[i].prep = NULL;
      }
    }
    free_chunk(&x, L, rows);
    ret = rret;
  }
  if (stats && scr) {
    stats->screen_pairs += n;
    stats->screen_failed += failed;
    stats->screen_cached += x.cached;
    stats->screen_stored += x.stored;
    stats->t_screen += now_s() - t;
  } else if (stats) {
    stats->full_pairs += n - reused;
    stats->full_reused += reused;
    stats->full_failed += failed;
    stats->preps_made += made;
    stats->preps_cached += x.preps_cached;
    stats->t_full += now_s() - t;
  }
done:
  if (state && release)
    release(cmp->ctx, state);
  if (buf[0])
    free_chunk(&x, buf[0], C);
  if (buf[1])
    free_chunk(&x, buf[1], C);
  if (qprep && qprep_owned)
    cmp->prep_free(cmp->ctx, qprep);
  else if (qprep)
    prep_unpin(x.cache, q->item);
  bf_free(buf[0]);
  bf_free(buf[1]);
  return ret;
}

static int search_args(const bf_search_query *q, int nq, const bf_search_source *src,
                       const bf_search_cmp *cmp, const bf_prefilter *pf, const bf_search_opts *o)
{
  if (nq < 1 || !q || !src || !pf || o->keep < 1)
    return bf_error_set(BF_EINVAL, "search: no query or no candidates to keep");
  for (int k = 0; k < nq; k++)
    if (q[k].kind != q[0].kind || !q[k].desc || !bf_prefilter_len(pf, q[k].kind))
      return bf_error_set(BF_EINVAL, "search: query %d has no descriptor or another kind", k);
  if (!o->prefilter_only && (!cmp || !cmp->compare || !src->load))
    return bf_error_set(BF_EINVAL, "search: no full comparison given");
  return 0;
}

static int search_threads(const bf_search_opts *o)
{
  return o->threads > 0 ? o->threads : omp_get_max_threads();
}

/* Stages 1 and 2 (stats added to); out freed on error. */
static int plan_impl(bf_cand **out, size_t *n, int *nfull, const bf_search_query *q, int nq,
                     const bf_search_source *src, const bf_search_cmp *cmp,
                     const bf_prefilter *pf, const bf_search_opts *o, bf_search_stats *stats)
{
  int ret = 0;
  heap *hp = NULL;
  for (int k = 0; k < nq; k++) {
    out[k] = NULL;
    n[k] = 0;
    nfull[k] = 0;
  }
  if ((ret = search_args(q, nq, src, cmp, pf, o)))
    return ret;
  int nthreads = search_threads(o);
  size_t keep = (size_t)o->keep;
  if (keep > src->nrows)
    keep = src->nrows;
  hp = calloc(nq, sizeof *hp);
  if (!hp)
    return bf_error_set(BF_ENOMEM, "search: out of memory");
  for (int k = 0; k < nq && !ret; k++) {
    hp[k].cap = (int)keep;
    hp[k].s = malloc((keep + 1) * sizeof(double));
    hp[k].id = malloc((keep + 1) * sizeof(int64_t));
    if (!hp[k].s || !hp[k].id)
      ret = bf_error_set(BF_ENOMEM, "search: out of memory");
  }
  if (ret || (ret = stage_prefilter(hp, q, nq, src, pf, o, nthreads, stats)))
    goto done;
  for (int k = 0; k < nq && !ret; k++) {
    bf_cand *c = calloc(hp[k].n ? hp[k].n : 1, sizeof *c);
    if (!c) {
      ret = bf_error_set(BF_ENOMEM, "search: out of memory");
      break;
    }
    for (int i = 0; i < hp[k].n; i++) {
      c[i].item = hp[k].id[i];
      c[i].pre = hp[k].s[i];
      c[i].score = NAN;
      c[i].screen = NAN;
      c[i].order = NAN;
    }
    qsort(c, hp[k].n, sizeof *c, cmp_pre);
    for (int i = 0; i < hp[k].n; i++)
      c[i].pre_rank = c[i].rank = i + 1;
    out[k] = c;
    n[k] = hp[k].n;
    if (o->prefilter_only)
      continue;
    int nf = hp[k].n;
    if (cmp->screen && o->screen > 0 && o->screen < nf) {
      if ((ret = stage_full(c, nf, &q[k], src, cmp, o, nthreads, stats, 1, NULL, 0)))
        break;
      qsort(c, nf, sizeof *c, cmp_screen); /* the rest stay after, score NaN */
      for (int i = 0; i < hp[k].n; i++)
        c[i].rank = c[i].screen_rank = i + 1;
      nf = o->screen;
    }
    nfull[k] = nf;
  }
done:
  if (hp)
    for (int k = 0; k < nq; k++) {
      free(hp[k].s);
      free(hp[k].id);
    }
  free(hp);
  if (ret)
    for (int k = 0; k < nq; k++) {
      free(out[k]);
      out[k] = NULL;
      n[k] = 0;
      nfull[k] = 0;
    }
  return ret;
}

/* Stage 3 and the final ranks (stats added to). */
static int finish_impl(bf_cand *const *out, const size_t *n, const int *nfull,
                       const bf_search_query *q, int nq, const bf_search_source *src,
                       const bf_search_cmp *cmp, const bf_search_opts *o,
                       const bf_search_pair *done, size_t ndone, bf_search_stats *stats)
{
  int ret = 0, nthreads = search_threads(o);
  for (int k = 0; k < nq && !ret; k++) {
    bf_cand *c = out[k];
    int nf = nfull[k];
    if (nf > 0) {
      if (!cmp || !cmp->compare || !src || !src->load)
        return bf_error_set(BF_EINVAL, "search: no full comparison given");
      if ((ret = stage_full(c, nf, &q[k], src, cmp, o, nthreads, stats, 0, done, ndone)))
        break;
      for (int i = 0; i < nf; i++)
        c[i].order = cmp->rank && !isnan(c[i].score) ? cmp->rank(c[i].score, c[i].sub) : c[i].score;
      qsort(c, nf, sizeof *c, cmp_full);
    }
    for (size_t i = 0; i < n[k]; i++)
      c[i].rank = (int)i + 1;
  }
  return ret;
}

int bf_search_plan(bf_cand **out, size_t *n, int *nfull, const bf_search_query *q, int nq,
                   const bf_search_source *src, const bf_search_cmp *cmp, const bf_prefilter *pf,
                   const bf_search_opts *o, bf_search_stats *stats)
{
  bf_search_opts def = BF_SEARCH_OPTS_INIT;
  if (stats)
    memset(stats, 0, sizeof *stats);
  return plan_impl(out, n, nfull, q, nq, src, cmp, pf, o ? o : &def, stats);
}

int bf_search_finish(bf_cand *const *out, const size_t *n, const int *nfull,
                     const bf_search_query *q, int nq, const bf_search_source *src,
                     const bf_search_cmp *cmp, const bf_search_opts *o,
                     const bf_search_pair *done, size_t ndone, bf_search_stats *stats)
{
  bf_search_opts def = BF_SEARCH_OPTS_INIT;
  if (stats)
    memset(stats, 0, sizeof *stats);
  return finish_impl(out, n, nfull, q, nq, src, cmp, o ? o : &def, done, ndone, stats);
}

int bf_search_run(bf_cand **out, size_t *n, const bf_search_query *q, int nq,
                  const bf_search_source *src, const bf_search_cmp *cmp, const bf_prefilter *pf,
                  const bf_search_opts *o, bf_search_stats *stats)
{
  bf_search_opts def = BF_SEARCH_OPTS_INIT;
  if (!o)
    o = &def;
  if (stats)
    memset(stats, 0, sizeof *stats);
  for (int k = 0; k < nq; k++) {
    out[k] = NULL;
    n[k] = 0;
  }
  int *nfull = bf_malloc((nq > 0 ? (size_t)nq : 1) * sizeof *nfull);
  if (!nfull)
    return bf_error_set(BF_ENOMEM, "search: out of memory");
  int ret = plan_impl(out, n, nfull, q, nq, src, cmp, pf, o, stats);
  if (!ret && (ret = finish_impl(out, n, nfull, q, nq, src, cmp, o, NULL, 0, stats)))
    for (int k = 0; k < nq; k++) {
      free(out[k]);
      out[k] = NULL;
      n[k] = 0;
    }
  bf_free(nfull);
  return ret;
}

int bf_search_pairs_needed(bf_search_pair **out, size_t *np, const bf_search_query *q, int nq,
                           bf_cand *const *cand, const int *nfull, const bf_search_cmp *cmp,
                           const bf_search_opts *o)
{
  size_t m = 0, cap = 0;
  *out = NULL;
  *np = 0;
  if (!cmp || !cmp->reverse || !o || !o->cache)
    return 0;
  for (int k = 0; k < nq; k++)
    cap += nfull[k] > 0 ? (size_t)nfull[k] : 0;
  if (!cap)
    return 0;
  bf_search_pair *p = bf_malloc(cap * sizeof *p);
  if (!p)
    return bf_error_set(BF_ENOMEM, "search: out of memory for %zu pairs", cap);
  for (int k = 0; k < nq; k++)
    for (int i = 0; i < nfull[k]; i++) {
      int64_t a = q[k].item, b = cand[k][i].item;
      if (a <= 0 || b <= 0 || memo_find(o->cache, a, b))
        continue;
      memset(&p[m], 0, sizeof p[m]);
      p[m].a = a < b ? a : b;
      p[m].b = a < b ? b : a;
      p[m].score = NAN;
      m++;
    }
  qsort(p, m, sizeof *p, cmp_pair);
  size_t u = 0;
  for (size_t i = 0; i < m; i++)
    if (!u || cmp_pair(&p[u - 1], &p[i]))
      p[u++] = p[i];
  if (!u) {
    bf_free(p);
    p = NULL;
  }
  *out = p;
  *np = u;
  return 0;
}

void bf_search_cache_add_pairs(bf_search_cache *c, const bf_search_cmp *cmp,
                               const bf_search_pair *p, size_t n)
{
  if (!c || !cmp || !cmp->reverse)
    return;
  for (size_t i = 0; i < n; i++)
    if (!p[i].err && !isnan(p[i].score) && p[i].a > 0 && p[i].b > 0 && p[i].a != p[i].b)
      memo_put(c, p[i].a, p[i].b, p[i].score, p[i].sub, cmp->reverse);
}

/* One item of a pairs chunk: its prep (taken from the cache or made here) or its features. */
typedef struct pair_item {
  int64_t item;
  bf_feature **f;
  int n;
  void *prep;
  size_t bytes;
  int taken, made, err;
  char msg[256];
} pair_item;

static int pair_item_index(pair_item *it, int *nit, int64_t item)
{
  for (int j = 0; j < *nit; j++)
    if (it[j].item == item)
      return j;
  memset(&it[*nit], 0, sizeof it[*nit]);
  it[*nit].item = item;
  return (*nit)++;
}

int bf_search_pairs_compute(bf_search_pair *p, size_t n, const bf_search_source *src,
                            const bf_search_cmp *cmp, const bf_search_opts *o,
                            bf_search_stats *stats)
{
  bf_search_opts def = BF_SEARCH_OPTS_INIT;
  if (!o)
    o = &def;
  if (stats)
    memset(stats, 0, sizeof *stats);
  if (!n)
    return 0;
  if (!src || !src->load || !cmp || !cmp->reverse || !cmp->compare)
    return bf_error_set(BF_EINVAL, "search: pairs need a symmetric comparison and a source");
  bf_search_cache *cache = o->cache;
  int use_prep = cache && cmp->prep && cmp->compare_prep && cmp->prep_free;
  int nthreads = search_threads(o), ret = 0;
  /* chunks of pairs holding at most M distinct items: their preps or features in memory */
  int M = 2 * (o->chunk > 0 ? o->chunk : 16);
  if (M < 2)
    M = 2;
  size_t failed = 0, made = 0, cached = 0;
  pair_item *it = bf_calloc((size_t)M, sizeof *it);
  int *ia = bf_malloc(2 * n * sizeof *ia);
  double t = now_s();
  if (!it || !ia) {
    ret = bf_error_set(BF_ENOMEM, "search: out of memory for %zu pairs", n);
    goto done;
  }
  for (size_t p0 = 0; p0 < n && !ret;) {
    size_t p1 = p0;
    int nit = 0;
    while (p1 < n) {
      int fa = 1, fb = p[p1].b != p[p1].a;
      for (int j = 0; j < nit; j++) {
        fa &= it[j].item != p[p1].a;
        fb &= it[j].item != p[p1].b;
      }
      if (nit + fa + fb > M)
        break;
      ia[2 * p1] = pair_item_index(it, &nit, p[p1].a);
      ia[2 * p1 + 1] = pair_item_index(it, &nit, p[p1].b);
      p1++;
    }
    /* one thread reads (HDF5); preps made in parallel */
    for (int j = 0; j < nit && !ret; j++) {
      if (use_prep && (it[j].prep = prep_take(cache, it[j].item))) {
        it[j].taken = 1;
        cached++;
        continue;
      }
      if ((it[j].err = src->load(src->ctx, it[j].item, &it[j].f, &it[j].n))) {
        snprintf(it[j].msg, sizeof it[j].msg, "item %lld: %s", (long long)it[j].item,
                 bf_error_last());
        if (it[j].err == BF_ENOMEM)
          ret = it[j].err;
      }
    }
    if (use_prep && !ret) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
      for (int j = 0; j < nit; j++) {
        if (it[j].taken || it[j].err)
          continue;
        if ((it[j].err = cmp->prep(cmp->ctx, it[j].f, it[j].n, &it[j].prep, &it[j].bytes)))
          snprintf(it[j].msg, sizeof it[j].msg, "item %lld: %s", (long long)it[j].item,
                   bf_error_last());
        else
          it[j].made = 1;
      }
      for (int j = 0; j < nit; j++)
        if (it[j].err == BF_ENOMEM)
          ret = it[j].err;
    }
    if (!ret) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) reduction(+ : failed)
      for (size_t i = p0; i < p1; i++) {
        const pair_item *A = &it[ia[2 * i]], *B = &it[ia[2 * i + 1]];
        double s = NAN, sub[4] = {0, 0, 0, 0};
        int e = A->err ? A->err : B->err;
        const char *why = A->err ? A->msg : B->err ? B->msg : NULL;
        if (!e)
          e = use_prep ? cmp->compare_prep(cmp->ctx, A->prep, B->prep, &s, sub)
                       : cmp->compare(cmp->ctx, NULL, A->f, A->n, B->f, B->n, &s, sub);
        if (e == BF_EQUALITY) /* a poor item is not comparable: unscored, not a failure */
          e = 0, s = NAN;
        else if (e) {
          failed++;
          s = NAN;
#pragma omp critical(bf_search_pair_failure)
          if (stats && !stats->failure[0])
            snprintf(stats->failure, sizeof stats->failure, "pair (%lld, %lld): %s",
                     (long long)p[i].a, (long long)p[i].b, why ? why : bf_error_last());
        }
        p[i].score = s;
        memcpy(p[i].sub, sub, sizeof sub);
        p[i].err = e;
      }
      bf_search_cache_add_pairs(cache, cmp, p + p0, p1 - p0);
    }
    for (int j = 0; j < nit; j++) { /* new preps kept for the run when they fit */
      if (it[j].made) {
        made++;
        if (!prep_put(cache, cmp, it[j].item, it[j].prep, it[j].bytes, 0))
          it[j].prep = NULL;
      }
      if (it[j].taken)
        prep_unpin(cache, it[j].item);
      else if (it[j].prep)
        cmp->prep_free(cmp->ctx, it[j].prep);
      bf_search_free_features(it[j].f, it[j].n);
      memset(&it[j], 0, sizeof it[j]);
    }
    p0 = p1;
  }
  if (stats) {
    stats->full_pairs += n;
    stats->full_failed += failed;
    stats->preps_made += made;
    stats->preps_cached += cached;
    stats->t_full += now_s() - t;
  }
done:
  bf_free(it);
  bf_free(ia);
  return ret;
}

/* ---- default comparisons ---- */
/* The CMC's count and rotation, then the firing pin when both have one: the sub[] of a pair,
 * from either path (features or preps). */
static int cart_result(bf_cmc_result *r, const bf_feature *qp, const bf_feature *cp, double *score,
                       double sub[4])
{
  bf_pin_result p;
  int ret = bf_pin_compare_cmc(&p, qp, cp, r, NULL);
  if (ret == BF_EINVAL) {
    p.found = 0; /* pins of another spacing or version: the CMC ranks alone */
    bf_error_clear();
    ret = 0;
  }
  if (!ret) {
    *score = r->score;
    sub[0] = r->cmc_original[0];
    sub[1] = r->cmc_original[1];
    sub[2] = r->theta;
    sub[3] = p.found ? p.accf : NAN;
  }
  return ret;
}

static int cmp_cartridge(void *ctx, void *qs, bf_feature *const *q, int nq, bf_feature *const *c,
                         int nc, double *score, double sub[4])
{
  (void)ctx;
  (void)qs;
  if (nq < 1 || nc < 1)
    return bf_error_set(BF_EINVAL, "search: a cartridge case without a feature");
  bf_cmc_opts o = BF_CMC_OPTS_INIT;
  bf_cmc_result r;
  memset(&r, 0, sizeof r);
  int ret = bf_cmc_compare(&r, q[0], c[0], &o);
  /* the second mark, when both items have it (bf_search_load_features puts it after the face) */
  const bf_feature *qp = nq > 1 && q[1]->kind == BF_KIND_FIRINGPIN ? q[1] : NULL,
                   *cp = nc > 1 && c[1]->kind == BF_KIND_FIRINGPIN ? c[1] : NULL;
  if (!ret)
    ret = cart_result(&r, qp, cp, score, sub);
  bf_cmc_result_clear(&r);
  return ret;
}

static double rank_cartridge(double score, const double sub[4])
{
  return bf_pin_rank(score, sub[3], NULL);
}

/* The surface block-averaged to ~BF_SEARCH_SCREEN_UM: a block keeps the mean of its valid
 * points when at least half are valid, else NaN. */
static int coarsen(bf_feature **out, const bf_feature *f)
{
  int k = (int)floor(BF_SEARCH_SCREEN_UM / (f->dx > 0 ? f->dx : 1) + 0.5);
  if (k < 1)
    k = 1;
  int nx = f->nx / k, ny = f->ny / k;
  if (nx < 8 || ny < 8)
    return bf_error_set(BF_EQUALITY, "search: a %dx%d surface is too small to screen", f->nx, f->ny);
  int ret = bf_feature_new(out, f->kind, nx, ny, f->dx * k, f->dy * k);
  if (ret)
    return ret;
  bf_feature *g = *out;
  g->quality_flags = f->quality_flags;
  g->version = f->version;
  g->valid_fraction = f->valid_fraction;
  for (int y = 0; y < ny; y++)
    for (int x = 0; x < nx; x++) {
      double sum = 0;
      int cnt = 0;
      for (int j = 0; j < k; j++) {
        const float *r = f->z + (size_t)(y * k + j) * f->nx + (size_t)x * k;
        for (int i = 0; i < k; i++)
          if (!isnan(r[i])) {
            sum += r[i];
            cnt++;
          }
      }
      g->z[(size_t)y * nx + x] = 2 * cnt >= k * k ? (float)(sum / cnt) : NAN;
    }
  return 0;
}

/* The cartridge screen: the areal cross-correlation maximum (CCFmax, as in NIST's breech-face
 * correlation) of the two surfaces block-averaged to BF_SEARCH_SCREEN_UM, standardised (missing =
 * 0), over rotations of the full circle and translations up to BF_SEARCH_SCREEN_SHIFT_UM. The
 * query's rotated copies (every theta_step of BF_CMC_OPTS_INIT) and their FFTs are made once per
 * query; a pair costs one forward FFT and one inverse FFT per rotation tried (only the rows of
 * the shifts searched are transformed back: bf_fft_band_inverse). Rotations tried:
 * +-SCR_WINDOW around the pair's rotation estimate s and s + 180 (the prefilter's method on the
 * screen's own spectra: the log |FFT| of both sampled on rings, the best angle shift of the
 * ring-summed circular correlation; |FFT| of a real image repeats every 180°), plus every
 * SCR_COARSE degrees of the rest of the circle as a fallback. */
#define SCR_WINDOW 15.0
#define SCR_COARSE 18.0
#define SCR_NRING 12
#define SCR_NANG 64
typedef struct ccf_state {
  int P, S, nrot;
  const bf_fft_plan *plan;
  const bf_fft_band *band; /* the inverse on the shifts' rows only (NULL: 2S + 1 > P) */
  double theta0, dtheta;
  fftwf_complex *A; /* nrot x P x (P/2+1) */
  double *ea;       /* energy of each rotated query */
  double dx;
  float prof[SCR_NRING * SCR_NANG]; /* the query's ring profiles (rotation 0) */
} ccf_state;

/* log |F| on SCR_NRING log-spaced rings (wavelengths 100-1000 µm) x SCR_NANG angles over 180°,
 * each ring zero-mean unit-norm, from a P x (P/2+1) half spectrum at spacing dx. */
static void ring_profile(float *prof, const fftwf_complex *F, int P, double dx)
{
  int H = P / 2 + 1;
  for (int r = 0; r < SCR_NRING; r++) {
    double lam = 1000.0 * pow(0.1, (double)r / (SCR_NRING - 1)), k = P * dx / lam;
    float *v = prof + r * SCR_NANG;
    double m = 0, ss = 0;
    for (int a = 0; a < SCR_NANG; a++) {
      double th = M_PI * a / SCR_NANG, kx = k * cos(th), ky = k * sin(th);
      if (kx < 0) { /* |F(-k)| = |F(k)| */
        kx = -kx;
        ky = -ky;
      }
      int x0 = (int)floor(kx), y0 = (int)floor(ky);
      double fx = kx - x0, fy = ky - y0, val = 0;
      for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
          int x = x0 + i < H ? x0 + i : H - 1, y = ((y0 + j) % P + P) % P;
          const float *c = F[(size_t)y * H + x];
          val += (i ? fx : 1 - fx) * (j ? fy : 1 - fy) * sqrt((double)c[0] * c[0] + (double)c[1] * c[1]);
        }
      v[a] = (float)log(val + 1e-9);
      m += v[a];
    }
    m /= SCR_NANG;
    for (int a = 0; a < SCR_NANG; a++)
      ss += (v[a] - m) * (v[a] - m);
    double sc = ss > 1e-20 ? 1 / sqrt(ss) : 0;
    for (int a = 0; a < SCR_NANG; a++)
      v[a] = (float)((v[a] - m) * sc);
  }
}

/* The query rotation (degrees, modulo 180) that lines it up with the candidate, from profiles. */
static double ring_rotation(const float *q, const float *c)
{
  double corr[SCR_NANG];
  int best = 0;
  for (int s = 0; s < SCR_NANG; s++) {
    double acc = 0;
    for (int r = 0; r < SCR_NRING; r++)
      for (int a = 0; a < SCR_NANG; a++)
        acc += q[r * SCR_NANG + a] * c[r * SCR_NANG + (a + s) % SCR_NANG];
    corr[s] = acc;
    if (acc > corr[best])
      best = s;
  }
  double l = corr[(best + SCR_NANG - 1) % SCR_NANG], m = corr[best], r = corr[(best + 1) % SCR_NANG];
  double den = l - 2 * m + r, d = den < 0 ? 0.5 * (l - r) / den : 0;
  if (!(fabs(d) <= 0.5))
    d = 0;
  return 180.0 * (best + d) / SCR_NANG;
}

/* zero mean, unit variance over the valid points; missing -> 0. Returns the valid count. */
static size_t standardise(float *z, size_t n)
{
  double s = 0, s2 = 0;
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    if (!isnan(z[i])) {
      s += z[i];
      s2 += (double)z[i] * z[i];
      c++;
    }
  double m = c ? s / c : 0, v = c ? s2 / c - m * m : 0, k = v > 0 ? 1 / sqrt(v) : 0;
  for (size_t i = 0; i < n; i++)
    z[i] = isnan(z[i]) ? 0.0f : (float)((z[i] - m) * k);
  return c;
}

/* g (nx x ny, standardised) centred into the P x P buffer; larger surfaces keep their centre */
static void place(float *buf, int P, int lim, const bf_feature *g)
{
  memset(buf, 0, sizeof(float) * P * P);
  int wx = g->nx < lim ? g->nx : lim, wy = g->ny < lim ? g->ny : lim;
  int sx = (g->nx - wx) / 2, sy = (g->ny - wy) / 2, ox = (P - wx) / 2, oy = (P - wy) / 2;
  for (int y = 0; y < wy; y++)
    memcpy(buf + (size_t)(oy + y) * P + ox, g->z + (size_t)(sy + y) * g->nx + sx, sizeof(float) * wx);
}

static void screen_free_cartridge(void *ctx, void *state)
{
  (void)ctx;
  ccf_state *c = state;
  if (!c)
    return;
  fftwf_free(c->A);
  free(c->ea);
  free(c);
}

static int screen_prep_cartridge(void *ctx, void **state, bf_feature *const *q, int nq)
{
  *state = NULL;
  if (nq < 1)
    return bf_error_set(BF_EINVAL, "search: a cartridge case without a feature");
  bf_feature *g = NULL;
  float *buf = NULL, *rot = NULL;
  int ret = coarsen(&g, q[0]);
  if (ret)
    return ret;
  ccf_state *c = calloc(1, sizeof *c);
  bf_cmc_opts co = BF_CMC_OPTS_INIT;
  if (!c) {
    ret = bf_error_set(BF_ENOMEM, "search: out of memory");
    goto done;
  }
  if (standardise(g->z, (size_t)g->nx * g->ny) < 64) {
    ret = bf_error_set(BF_EQUALITY, "search: too little valid surface to screen");
    goto done;
  }
  c->dx = g->dx;
  c->S = (int)ceil(BF_SEARCH_SCREEN_SHIFT_UM / g->dx);
  c->P = bf_fft_fast_size((g->nx > g->ny ? g->nx : g->ny) + c->S);
  c->dtheta = co.theta_step > 0 ? co.theta_step : 3;
  c->nrot = (int)floor(360.0 / c->dtheta + 1e-9);
  c->dtheta = 360.0 / c->nrot; /* the circle in equal steps */
  c->theta0 = 0;
  int P = c->P, H = P / 2 + 1;
  if (!(c->plan = bf_fft_plan_get(P, P)) ||
      (2 * c->S + 1 <= P && !(c->band = bf_fft_band_get(P, P, -c->S, 2 * c->S + 1)))) {
    ret = BF_ENOMEM;
    goto done;
  }
  c->A = fftwf_malloc(sizeof(fftwf_complex) * (size_t)c->nrot * P * H);
  c->ea = calloc(c->nrot, sizeof(double));
  buf = fftwf_malloc(sizeof(float) * P * P);
  rot = fftwf_malloc(sizeof(float) * P * P);
  if (!c->A || !c->ea || !buf || !rot) {
    ret = bf_error_set(BF_ENOMEM, "search: out of memory");
    goto done;
  }
  place(buf, P, P - c->S, g);
  double cc = (P - 1) / 2.0;
  for (int r = 0; r < c->nrot; r++) {
    double th = (c->theta0 + r * c->dtheta) * M_PI / 180, cs = cos(th), sn = sin(th), e = 0;
    for (int y = 0; y < P; y++)
      for (int x = 0; x < P; x++) { /* nearest neighbour: the query rotated by th */
        double u = x - cc, v = y - cc;
        int sx = (int)floor(cc + cs * u + sn * v + 0.5), sy = (int)floor(cc - sn * u + cs * v + 0.5);
        float val = (sx >= 0 && sx < P && sy >= 0 && sy < P) ? buf[(size_t)sy * P + sx] : 0.0f;
        rot[(size_t)y * P + x] = val;
        e += (double)val * val;
      }
    c->ea[r] = e;
    fftwf_execute_dft_r2c(c->plan->r2c, rot, c->A + (size_t)r * P * H);
  }
  ring_profile(c->prof, c->A, P, c->dx);
done:
  (void)ctx;
  fftwf_free(buf);
  fftwf_free(rot);
  bf_feature_free(g);
  if (ret)
    screen_free_cartridge(NULL, c);
  else
    *state = c;
  return ret;
}

static int screen_cartridge(void *ctx, void *qs, bf_feature *const *q, int nq,
                            bf_feature *const *c, int nc, double *score, double sub[4])
{
  (void)ctx;
  (void)q;
  (void)nq;
  const ccf_state *st = qs;
  bf_feature *g = NULL;
  float *buf = NULL;
  fftwf_complex *B = NULL, *F = NULL, *R = NULL;
  if (nc < 1 || !st)
    return bf_error_set(BF_EINVAL, "search: a cartridge case without a feature");
  int ret = coarsen(&g, c[0]);
  if (ret)
    return ret;
  int P = st->P, H = P / 2 + 1, S = st->S;
  buf = fftwf_malloc(sizeof(float) * P * P);
  B = fftwf_malloc(sizeof(fftwf_complex) * P * H);
  F = fftwf_malloc(sizeof(fftwf_complex) * P * H);
  if (st->band)
    R = fftwf_malloc(sizeof(fftwf_complex) * (2 * S + 1) * H);
  if (!buf || !B || !F || (st->band && !R)) {
    ret = bf_error_set(BF_ENOMEM, "search: out of memory");
    goto done;
  }
  if (standardise(g->z, (size_t)g->nx * g->ny) < 64) {
    ret = bf_error_set(BF_EQUALITY, "search: too little valid surface to screen");
    goto done;
  }
  place(buf, P, P - S, g);
  double eb = 0;
  for (size_t i = 0; i < (size_t)P * P; i++)
    eb += (double)buf[i] * buf[i];
  fftwf_execute_dft_r2c(st->plan->r2c, buf, B);
  float prof[SCR_NRING * SCR_NANG];
  ring_profile(prof, B, P, st->dx);
  double seed = ring_rotation(st->prof, prof);
  double best = -2, bth = 0, bx = 0, by = 0;
  int coarse = (int)lround(SCR_COARSE / st->dtheta);
  for (int r = 0; r < st->nrot; r++) {
    double th = st->theta0 + r * st->dtheta, off = fmod(fabs(th - seed), 180.0);
    if (off > 90)
      off = 180 - off;
    if (off > SCR_WINDOW && (coarse < 1 || r % coarse))
      continue;
    bf_fft_cross(F, st->A + (size_t)r * P * H, B, (size_t)P * H);
    /* the correlation at shifts up to S (< P): buf row sy + S (band) or sy mod P (full) */
    if (st->band)
      bf_fft_band_inverse(st->band, F, R, buf);
    else
      fftwf_execute_dft_c2r(st->plan->c2r, F, buf);
    double norm = st->ea[r] * eb > 0 ? 1.0 / ((double)P * P * sqrt(st->ea[r] * eb)) : 0;
    for (int sy = -S; sy <= S; sy++) {
      const float *row = buf + (size_t)(st->band ? sy + S : sy < 0 ? sy + P : sy) * P;
      for (int sx = -S; sx <= S; sx++) {
        double v = row[sx < 0 ? sx + P : sx] * norm;
        if (v > best) {
          best = v;
          bth = th > 180 ? th - 360 : th;
          bx = sx * st->dx;
          by = sy * st->dx;
        }
      }
    }
  }
  *score = best;
  sub[0] = bx;
  sub[1] = by;
  sub[2] = bth;
  sub[3] = c[0]->quality_flags;
done:
  fftwf_free(buf);
  fftwf_free(B);
  fftwf_free(F);
  fftwf_free(R);
  bf_feature_free(g);
  return ret;
}

static int cmp_bullet(void *ctx, void *qs, bf_feature *const *q, int nq, bf_feature *const *c,
                      int nc, double *score, double sub[4])
{
  (void)ctx;
  (void)qs;
  bf_bullet_result r;
  memset(&r, 0, sizeof r);
  int ret = bf_bullet_compare(&r, (const bf_feature *const *)q, nq, (const bf_feature *const *)c,
                              nc, NULL);
  if (!ret) {
    *score = isnan(r.score) ? 0 : r.score;
    sub[0] = r.margin;
    sub[1] = r.phase;
    sub[2] = r.match;
    sub[3] = 0;
  }
  bf_bullet_result_clear(&r);
  return ret;
}

/* compare(b, a) of a cartridge pair from compare(a, b): the CMC score (the smaller direction's
 * count) is symmetric; the per-direction counts swap and the consensus rotation changes sign. */
static void reverse_cartridge(double sub[4])
{
  double t = sub[0];
  sub[0] = sub[1];
  sub[1] = t;
  sub[2] = -sub[2];
}

/* A cartridge case prepared for the full stage: the CMC's cells (bf_cmc_prep) and, when the
 * item has one, a copy of its firing-pin feature. cmp_prep_cartridge gives exactly
 * cmp_cartridge's result. */
typedef struct cart_prep {
  bf_cmc_prep *cmc;
  bf_feature *pin; /* NULL: the item has no pin feature */
} cart_prep;

static void prep_free_cartridge(void *ctx, void *prep)
{
  (void)ctx;
  cart_prep *p = prep;
  if (!p)
    return;
  bf_cmc_prep_free(p->cmc);
  bf_feature_free(p->pin);
  bf_free(p);
}

static int prep_cartridge(void *ctx, bf_feature *const *f, int n, void **out, size_t *bytes)
{
  *out = NULL;
  *bytes = 0;
  if (n < 1)
    return bf_error_set(BF_EINVAL, "search: a cartridge case without a feature");
  cart_prep *p = bf_calloc(1, sizeof *p);
  if (!p)
    return bf_error_set(BF_ENOMEM, "search: out of memory");
  bf_cmc_opts o = BF_CMC_OPTS_INIT;
  int ret = bf_cmc_prep_new(&p->cmc, f[0], &o);
  if (!ret && n > 1 && f[1]->kind == BF_KIND_FIRINGPIN)
    ret = bf_feature_dup(&p->pin, f[1]);
  if (ret) {
    prep_free_cartridge(ctx, p);
    return ret;
  }
  *out = p;
  *bytes = sizeof *p + bf_cmc_prep_bytes(p->cmc) +
           (p->pin ? (size_t)p->pin->nx * p->pin->ny * sizeof(float) : 0);
  return 0;
}

static int cmp_prep_cartridge(void *ctx, const void *a, const void *b, double *score,
                              double sub[4])
{
  (void)ctx;
  const cart_prep *pa = a, *pb = b;
  bf_cmc_opts o = BF_CMC_OPTS_INIT;
  bf_cmc_result r;
  memset(&r, 0, sizeof r);
  int ret = bf_cmc_compare_prep(&r, pa->cmc, pb->cmc, &o);
  if (!ret)
    ret = cart_result(&r, pa->pin, pb->pin, score, sub);
  bf_cmc_result_clear(&r);
  return ret;
}

static int screen_reduce_cartridge(void *ctx, bf_feature *const *c, int nc, bf_feature ***out,
                                   int *nout)
{
  (void)ctx;
  *out = NULL;
  *nout = 0;
  if (nc < 1)
    return bf_error_set(BF_EINVAL, "search: a cartridge case without a feature");
  bf_feature **f = bf_calloc(1, sizeof *f);
  if (!f)
    return bf_error_set(BF_ENOMEM, "search: out of memory");
  int ret = coarsen(&f[0], c[0]);
  if (ret) {
    bf_free(f);
    return ret;
  }
  *out = f;
  *nout = 1;
  return 0;
}

int bf_search_threads_begin(int threads)
{
  int prev = omp_get_max_threads();
  if (threads > 0)
    omp_set_num_threads(threads);
  return prev;
}

void bf_search_threads_end(int prev)
{
  omp_set_num_threads(prev);
}

int bf_search_keep(int kind, size_t n)
{
  if (kind == BF_KIND_BULLET)
    return BF_SEARCH_KEEP_BULLET;
  size_t k = n / BF_SEARCH_KEEP_PER;
  return k > BF_SEARCH_KEEP ? (int)(k < INT_MAX ? k : INT_MAX) : BF_SEARCH_KEEP;
}

int bf_search_screen_surface(bf_feature **out, int kind, bf_feature *const *f, int n)
{
  *out = NULL;
  if (kind != BF_KIND_CARTRIDGE)
    return 0;
  if (n < 1)
    return bf_error_set(BF_EINVAL, "search: a cartridge case without a feature");
  return coarsen(out, f[0]);
}

void bf_search_default_cmp(bf_search_cmp *cmp, int kind)
{
  memset(cmp, 0, sizeof *cmp);
  cmp->compare = kind == BF_KIND_BULLET ? cmp_bullet : cmp_cartridge;
  if (kind != BF_KIND_BULLET) {
    cmp->screen = screen_cartridge;
    cmp->screen_prepare = screen_prep_cartridge;
    cmp->screen_release = screen_free_cartridge;
    cmp->screen_reduce = screen_reduce_cartridge;
    cmp->reverse = reverse_cartridge;
    cmp->prep = prep_cartridge;
    cmp->prep_free = prep_free_cartridge;
    cmp->compare_prep = cmp_prep_cartridge;
    cmp->rank = rank_cartridge;
  }
}

/* ---- binding to a bf_store ---- */
struct bf_search_store_ctx {
  bf_store *st;
  int kind;
  char calibre[32];
  const char *pfkind;
  size_t len;
  unsigned char *ok; /* per row of a block: it held len values */
  size_t nok;
};

static int calibre_ok(const bf_item *it, int kind, const char *calibre)
{
  if (!it || it->kind != kind)
    return 0;
  return !calibre[0] || !it->calibre[0] || !strcmp(it->calibre, calibre);
}

/* The descriptors go straight from the store into the engine's block (no feature per row). */
static int store_read_desc(void *vctx, size_t first, size_t n, int64_t *ids, float *desc)
{
  bf_search_store_ctx *c = vctx;
  if (n > c->nok) {
    unsigned char *t = realloc(c->ok, n);
    if (!t)
      return bf_error_set(BF_ENOMEM, "search: out of memory");
    c->ok = t;
    c->nok = n;
  }
  int ret = bf_store_read_values(c->st, c->pfkind, first, n, c->len, desc, c->ok);
  if (ret)
    return ret;
  const bf_feat_row *rows;
  size_t nr;
  bf_store_feature_index(c->st, c->pfkind, &rows, &nr);
  for (size_t i = 0; i < n; i++) {
    const bf_feat_row *r = &rows[first + i];
    const bf_item *it = bf_store_item(c->st, r->item);
    int ok = c->ok[i] && (size_t)r->nx * r->ny == c->len && r->version == BF_PREFILTER_VERSION &&
             calibre_ok(it, c->kind, c->calibre);
    ids[i] = ok ? r->item : 0;
    if (!ok)
      memset(desc + i * c->len, 0, c->len * sizeof(float));
  }
  return 0;
}

int bf_search_load_features(bf_store *st, int kind, int64_t item, bf_feature ***feat, int *n)
{
  bf_feature **p = NULL, **all;
  int np = 0, ret = bf_store_get_features(st, bf_kind_name(kind), item, feat, n);
  if (ret || kind != BF_KIND_CARTRIDGE || *n != 1)
    return ret;
  ret = bf_store_get_features(st, bf_kind_name(BF_KIND_FIRINGPIN), item, &p, &np);
  if (ret == BF_ENOTFOUND || (!ret && np < 1)) { /* no pin stored: the breech face alone */
    bf_error_clear();
    bf_search_free_features(p, np);
    return 0;
  }
  if (!ret && !(all = bf_realloc(*feat, 2 * sizeof *all)))
    ret = bf_error_set(BF_ENOMEM, "out of memory loading item %lld", (long long)item);
  if (!ret) {
    *feat = all;
    all[1] = p[0];
    p[0] = NULL;
    *n = 2;
  } else {
    bf_search_free_features(*feat, *n);
    *feat = NULL;
    *n = 0;
  }
  bf_search_free_features(p, np);
  return ret;
}

static int store_load(void *vctx, int64_t item, bf_feature ***feat, int *n)
{
  bf_search_store_ctx *c = vctx;
  return bf_search_load_features(c->st, c->kind, item, feat, n);
}

static int store_load_screen(void *vctx, int64_t item, bf_feature ***feat, int *n)
{
  bf_search_store_ctx *c = vctx;
  if (c->kind != BF_KIND_CARTRIDGE)
    return BF_ENOTFOUND;
  return bf_store_get_features(c->st, BF_SEARCH_SCREEN_KIND, item, feat, n);
}

int bf_search_store_source(bf_search_source *src, bf_search_store_ctx **ctx, bf_store *st,
                           int kind, const char *calibre)
{
  *ctx = NULL;
  memset(src, 0, sizeof *src);
  const char *pfk = bf_prefilter_kind_name(kind);
  if (!pfk)
    return bf_error_set(BF_EINVAL, "search: unknown kind %d", kind);
  bf_search_store_ctx *c = calloc(1, sizeof *c);
  if (!c)
    return bf_error_set(BF_ENOMEM, "search: out of memory");
  bf_prefilter *pf = NULL;
  int ret = bf_prefilter_new(&pf, NULL);
  if (ret) {
    free(c);
    return ret;
  }
  c->len = bf_prefilter_len(pf, kind);
  bf_prefilter_free(pf);
  c->st = st;
  c->kind = kind;
  snprintf(c->calibre, sizeof c->calibre, "%s", calibre ? calibre : "");
  c->pfkind = pfk;
  const bf_feat_row *rows;
  size_t nr = 0;
  if ((ret = bf_store_feature_index(st, pfk, &rows, &nr))) {
    free(c);
    return ret;
  }
  src->ctx = c;
  src->nrows = nr;
  src->read_desc = store_read_desc;
  src->load = store_load;
  src->load_screen = store_load_screen;
  *ctx = c;
  return 0;
}

void bf_search_store_source_free(bf_search_store_ctx *ctx)
{
  if (!ctx)
    return;
  free(ctx->ok);
  free(ctx);
}

static int cmp_id(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The sorted item ids holding a row of feature kind k (version >= 0: rows of that version only). */
static int items_with(bf_store *st, const char *k, int version, int64_t **out, size_t *n)
{
  const bf_feat_row *rows;
  size_t nr = 0, m = 0;
  *out = NULL;
  *n = 0;
  int ret = bf_store_feature_index(st, k, &rows, &nr);
  if (ret == BF_ENOTFOUND) { /* no such kind yet */
    bf_error_clear();
    nr = 0;
  } else if (ret)
    return ret;
  int64_t *v = malloc((nr + 1) * sizeof *v);
  if (!v)
    return bf_error_set(BF_ENOMEM, "search: out of memory");
  for (size_t i = 0; i < nr; i++)
    if (version < 0 || rows[i].version == version)
      v[m++] = rows[i].item;
  qsort(v, m, sizeof *v, cmp_id);
  *out = v;
  *n = m;
  return 0;
}

static int has_item(const int64_t *v, size_t n, int64_t item)
{
  return bsearch(&item, v, n, sizeof *v, cmp_id) != NULL;
}

int bf_search_store_index(bf_store *st, const bf_prefilter *pf, int kind, size_t *added,
                          size_t *failed)
{
  const char *fk = bf_kind_name(kind), *pfk = bf_prefilter_kind_name(kind);
  const bf_feat_row *rows;
  size_t nr = 0, np = 0, ns = 0, nmiss = 0;
  int64_t *miss = NULL, *have = NULL, *scan = NULL, *scr = NULL;
  unsigned char *what = NULL; /* 1: the descriptor is missing, 2: the screen surface */
  int ret = 0;
  *added = 0;
  if (failed)
    *failed = 0;
  if (!pfk)
    return bf_error_set(BF_EINVAL, "search: unknown kind %d", kind);
  /* descriptors of an older version do not count */
  if ((ret = items_with(st, pfk, BF_PREFILTER_VERSION, &have, &np)))
    return ret;
  if (kind == BF_KIND_CARTRIDGE && (ret = items_with(st, BF_SEARCH_SCREEN_KIND, -1, &scr, &ns)))
    goto done;
  if ((ret = bf_store_feature_index(st, fk, &rows, &nr)))
    goto done;
  miss = malloc((nr + 1) * sizeof *miss);
  scan = malloc((nr + 1) * sizeof *scan);
  what = malloc(nr + 1);
  if (!miss || !scan || !what) {
    ret = bf_error_set(BF_ENOMEM, "search: out of memory");
    goto done;
  }
  for (size_t i = 0; i < nr; i++) {
    if (i > 0 && rows[i].item == rows[i - 1].item)
      continue;
    int w = (!has_item(have, np, rows[i].item)) |
            (kind == BF_KIND_CARTRIDGE && !has_item(scr, ns, rows[i].item)) << 1;
    const bf_item *it = w ? bf_store_item(st, rows[i].item) : NULL;
    if (!it || it->kind != kind)
      continue;
    what[nmiss] = (unsigned char)w;
    miss[nmiss] = rows[i].item;
    scan[nmiss++] = rows[i].scan;
  }
  /* every search reads all descriptors (and the screen its candidates' screen surfaces):
   * stored without deflate they read ~6x faster */
  if (nmiss && (ret = bf_store_add_kind(st, pfk, 0)))
    goto done;
  if (nmiss && kind == BF_KIND_CARTRIDGE && (ret = bf_store_add_kind(st, BF_SEARCH_SCREEN_KIND, 0)))
    goto done;
  /* groups: load serially (HDF5), describe in parallel, store serially */
  enum { G = 16 };
  for (size_t g0 = 0; g0 < nmiss && !ret; g0 += G) {
    size_t gn = nmiss - g0 < G ? nmiss - g0 : G;
    bf_feature **f[G] = {0}, *d[G] = {0}, *sc[G] = {0};
    int nf[G] = {0}, rc[G] = {0};
    for (size_t i = 0; i < gn && !ret; i++) {
      rc[i] = bf_store_get_features(st, fk, miss[g0 + i], &f[i], &nf[i]);
      if (rc[i] == BF_ENOMEM)
        ret = rc[i];
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < gn; i++) {
      if (!rc[i] && (what[g0 + i] & 1))
        rc[i] = bf_prefilter_describe(pf, &d[i], f[i], nf[i]);
      if (!rc[i] && (what[g0 + i] & 2) && bf_search_screen_surface(&sc[i], kind, f[i], nf[i]) == BF_ENOMEM)
        rc[i] = BF_ENOMEM; /* too small to screen: no screen surface, the search copes */
    }
    for (size_t i = 0; i < gn && !ret; i++)
      if (rc[i] == BF_ENOMEM)
        ret = bf_error_set(BF_ENOMEM, "search: out of memory describing item %lld",
                           (long long)miss[g0 + i]);
    for (size_t i = 0; i < gn && !ret; i++) {
      if (rc[i]) {
        if (failed)
          (*failed)++;
        continue;
      }
      if (d[i] && (ret = bf_store_put_feature(st, pfk, miss[g0 + i], scan[g0 + i], d[i])))
        break;
      if (sc[i] && (ret = bf_store_put_feature(st, BF_SEARCH_SCREEN_KIND, miss[g0 + i], scan[g0 + i], sc[i])))
        break;
      *added += d[i] || sc[i];
    }
    for (size_t i = 0; i < gn; i++) {
      bf_search_free_features(f[i], nf[i]);
      bf_feature_free(d[i]);
      bf_feature_free(sc[i]);
    }
  }
done:
  free(have);
  free(scr);
  free(miss);
  free(scan);
  free(what);
  return ret;
}

int bf_search_store_item(bf_store *st, const bf_prefilter *pf, int64_t item, bf_feature ***feat,
                         int *nfeat, bf_feature **desc)
{
  *feat = NULL;
  *nfeat = 0;
  *desc = NULL;
  const bf_item *it = bf_store_item(st, item);
  if (!it)
    return bf_error_set(BF_ENOTFOUND, "%s: no item %lld", bf_store_path(st), (long long)item);
  int ret = bf_search_load_features(st, it->kind, item, feat, nfeat);
  if (ret)
    return ret;
  ret = bf_prefilter_describe(pf, desc, *feat, *nfeat);
  if (ret) {
    bf_error_prefix(ret, "item %lld: ", (long long)item);
    bf_search_free_features(*feat, *nfeat);
    *feat = NULL;
    *nfeat = 0;
  }
  return ret;
}
