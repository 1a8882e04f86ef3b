/* Search: ranked candidates for one or many query items, in two or three stages.
 *
 *  1. prefilter: every candidate's descriptor (bf_prefilter.h) is scored against every query;
 *     descriptors are streamed in blocks of `block` rows: inside one OpenMP region, thread 0
 *     reads block b+1 (the only thread touching the source, so HDF5 sees one thread) while the
 *     others score block b (dynamic schedule: the reader joins the scoring once its read is
 *     done). Per query only the best `keep` survive (a bounded heap), so memory is two blocks +
 *     keep candidates per query, whatever the store size.
 *  2. screen (optional, when the comparison has one and `screen` > 0): a cheap coarse comparison
 *     of each query with all its `keep` candidates (cartridge: the areal cross-correlation
 *     maximum over rotations and shifts of both surfaces block-averaged to BF_SEARCH_SCREEN_UM);
 *     the best `screen` go on to stage 3, the others stay in the result after them (score NaN).
 *  3. full comparison (CMC for cartridge cases, SAM land signatures for bullets) of each query
 *     against its kept candidates: features of `chunk` candidates are loaded by one thread while
 *     the others compare the previous chunk, OpenMP across candidates.
 * The result per query is every kept candidate ranked by full score (ties: prefilter rank).
 *
 * The engine sees candidates through a callback interface (bf_search_source), so it is tested
 * without a store; bf_search_store_source() binds it to a bf_store. */
#ifndef BF_SEARCH_H
#define BF_SEARCH_H

#include "bf_feature.h"
#include "bf_prefilter.h"
#include "bf_store.h"

#include <stddef.h>
#include <stdint.h>

/* Where candidates come from. Callbacks are called from one thread at a time. */
typedef struct bf_search_source {
  void *ctx;
  size_t nrows; /* descriptor rows, in storage order */
  /* Rows [first, first+n): ids[i] = the row's item id (<= 0: not a candidate, skipped) and its
   * descriptor at desc + i * len (len = bf_prefilter_len of the kind searched). */
  int (*read_desc)(void *ctx, size_t first, size_t n, int64_t *ids, float *desc);
  /* The full features of an item (caller frees each and the array). */
  int (*load)(void *ctx, int64_t item, bf_feature ***feat, int *n);
  /* optional (NULL, or BF_ENOTFOUND for an item: the screen reduces the full features): the
   * item's stored screen form (bf_search_screen_surface), so screening reads and inflates no
   * full-resolution feature. Any other error is the candidate's failure, reported. Keep LAST. */
  int (*load_screen)(void *ctx, int64_t item, bf_feature ***feat, int *n);
} bf_search_source;

/* The full comparison (stage 2). prepare/release are optional (NULL): a per-query state made
 * once (e.g. bf_cmc_prep) and passed to every compare of that query. compare must be
 * thread-safe; higher score = more alike; sub[4] = kind-specific details (0 when unused). */
typedef struct bf_search_cmp {
  void *ctx;
  int (*prepare)(void *ctx, void **state, bf_feature *const *q, int nq);
  void (*release)(void *ctx, void *state);
  int (*compare)(void *ctx, void *qstate, bf_feature *const *q, int nq, bf_feature *const *c,
                 int nc, double *score, double sub[4]);
  /* optional cheap comparison for the screen stage (same contract as compare; its per-query
   * state comes from screen_prepare/screen_release, both optional) */
  int (*screen)(void *ctx, void *sstate, bf_feature *const *q, int nq, bf_feature *const *c,
                int nc, double *score, double sub[4]);
  int (*screen_prepare)(void *ctx, void **state, bf_feature *const *q, int nq);
  void (*screen_release)(void *ctx, void *state);
  /* optional: the screen's reduced form of an item's features (e.g. the surface block-averaged
   * to screen resolution), made once per item and kept in a bf_search_cache; screen must then
   * accept reduced features as candidates and give the same score as for the full ones */
  int (*screen_reduce)(void *ctx, bf_feature *const *c, int nc, bf_feature ***out, int *nout);
  /* optional: set when a pair's full score is a property of the unordered pair; turns the sub[]
   * of (a, b) into that of (b, a). The search then compares two stored items a < b (item ids) as
   * compare(a, b) whichever is the query (the query's state is then not passed: NULL), so a
   * pair's score does not depend on which search, process or MPI rank computed it (the CMC is
   * not exactly symmetric), and a bf_search_cache may reuse it for the opposite direction (each
   * unordered pair compared once per run). */
  void (*reverse)(double sub[4]);
  /* optional, used with a bf_search_cache: an item's prepared form for the full comparison (e.g.
   * bf_cmc_prep: its cells and their FFTs), made once per item and run and kept in the cache
   * (LRU, within its byte bound) whether the item was a query or a candidate; compare_prep must
   * give exactly compare's result. prep is called from several threads at once. */
  int (*prep)(void *ctx, bf_feature *const *f, int n, void **out, size_t *bytes);
  void (*prep_free)(void *ctx, void *prep);
  int (*compare_prep)(void *ctx, const void *a, const void *b, double *score, double sub[4]);
  /* optional: the value the full stage ranks by (NULL: the score); a tie-breaker from sub[]
   * (cartridge: the firing pin's ACCF, bf_pin_rank) that never reorders different scores */
  double (*rank)(double score, const double sub[4]);
} bf_search_cmp;

/* The cartridge screen: spacing (µm) of its block-averaged surfaces, largest shift (µm). */
#define BF_SEARCH_SCREEN_UM 25.0
#define BF_SEARCH_SCREEN_SHIFT_UM 500.0
/* Feature kind of the stored screen surfaces (stored without deflate, like the descriptors). */
#define BF_SEARCH_SCREEN_KIND "cartridge-screen"

/* The screen's form of an item's features (cartridge: the surface block-averaged to
 * BF_SEARCH_SCREEN_UM, a block keeping the mean of its valid points when at least half are
 * valid), stored at submit under BF_SEARCH_SCREEN_KIND. The screen gives the same score for it
 * as for the full features. *out NULL and 0 for a kind without a screen (bullets);
 * BF_EQUALITY when the surface is too small to screen. */
int bf_search_screen_surface(bf_feature **out, int kind, bf_feature *const *f, int n);

typedef struct bf_search_opts {
  int keep;      /* K: candidates the prefilter passes on (to the screen, or the full comparison) */
  size_t block;  /* descriptor rows per streamed block */
  int chunk;     /* candidates whose features are loaded at once in stages 2 and 3 */
  int threads;   /* 0: OpenMP default */
  int prefilter_only; /* 1: skip stages 2 and 3 (rank by prefilter score) */
  int screen;    /* candidates the screen passes to the full comparison; 0: no screen */
  struct bf_search_cache *cache; /* NULL: none. Kept across bf_search_run calls of one run with
                                    the same comparison (see bf_search_cache_new) */
} bf_search_opts;

/* The full stage's size, one rule for bfm match and bfm batch (BF_BATCH_SCREEN): the screen
 * passes its best BF_SEARCH_FULL candidates to the CMC. Measured by `bfm match` itself on the
 * 43 Fadul cartridge rows among 2,000 synthetic registry cases (benchmarks/RESULTS.md, "bfm
 * match at registry scale"): every mate's rank after the screen was <= 6 (median 2; 148 pairs),
 * and with the best 10 compared all 148 were in the final top 10; bench_search's 40 Fadul among
 * 10,000: worst 5 after the screen. 10 keeps a margin over the worst seen and halves the CMC
 * work of the former default (20). `bfm match --screen K` widens it (and --top K above it). */
#define BF_SEARCH_FULL 10
/* The prefilter's keep grows with the store: a hard mate's prefilter rank grows with the
 * number of distractors. Measured with `bfm match` on the 43 Fadul cartridge rows: among 10,000
 * synthetic cases the top 200 held every mate; among 100,000 the worst mate (Fadul 10-1 vs L)
 * was 434th and 497th, and the top 200 lost 2 of 148 (benchmarks/RESULTS.md, third session).
 * Cartridges: the larger of BF_SEARCH_KEEP and 1 in BF_SEARCH_KEEP_PER of the candidates (667 at
 * 100,000: 1.3x the worst rank seen); the screen's cost grows with it. */
#define BF_SEARCH_KEEP 200
#define BF_SEARCH_KEEP_PER 150
/* Bullets have no screen: their prefilter passes this many straight to the SAM comparison. */
#define BF_SEARCH_KEEP_BULLET 50
/* The default keep for n candidates of a kind (the one rule for bfm match and bfm batch). */
int bf_search_keep(int kind, size_t n);
/* A use case's thread limit (batch, match: their `threads` option) over everything it runs,
 * the comparisons' own parallel loops included: a loop nested in a one-thread region is not
 * nested in an active one, so it would otherwise start the OpenMP default (`--threads 1` ran
 * the CMC on every core). threads > 0 sets the calling thread's OpenMP default until
 * bf_search_threads_end(the returned value) restores it; 0 leaves it. */
int bf_search_threads_begin(int threads);
void bf_search_threads_end(int prev);
/* Defaults measured with bench_search --screen 200 --full 20 (40 Fadul scans among 10,000
 * synthetic cases): the prefilter's top 200 holds every mate (top 20: 95 %), the screen's top 20
 * keeps every one, and the CMC puts all 126 mate pairs in the top 10. */
#define BF_SEARCH_OPTS_INIT \
  {.keep = BF_SEARCH_KEEP, .block = 1024, .chunk = 16, .threads = 0, .prefilter_only = 0, \
   .screen = BF_SEARCH_FULL, .cache = NULL}

/* A query: its item id (excluded from its own results; 0 for scans given on the spot), kind,
 * prefilter descriptor (bf_prefilter_len floats) and full features. */
typedef struct bf_search_query {
  int64_t item;
  int kind;
  const float *desc;
  bf_feature *const *feat;
  int nfeat;
} bf_search_query;

typedef struct bf_cand {
  int64_t item;
  double pre;     /* prefilter score */
  int pre_rank;   /* 1-based rank in the prefilter */
  double score;   /* full comparison score (NaN when not compared or it failed) */
  double sub[4];
  int rank;       /* 1-based final rank */
  double screen;  /* screen score (NaN when not screened) */
  double order;   /* what the full stage ranks by: bf_search_cmp.rank of score and sub (the
                     score when it has none); NaN when not compared */
  int screen_rank; /* 1-based rank after the screen (the order the full stage took them in);
                      0 when there was no screen stage */
} bf_cand;

typedef struct bf_search_stats {
  size_t rows;        /* descriptor rows streamed (per pass) */
  size_t pre_pairs;   /* prefilter scores computed */
  size_t full_pairs;  /* full comparisons run */
  size_t full_failed; /* full comparisons that returned an error (candidate kept, score NaN) */
  double t_read, t_prefilter, t_full; /* seconds (t_read: time thread 0 spent reading) */
  size_t screen_pairs; /* screen comparisons run */
  double t_screen;
  size_t full_reused;  /* full comparisons taken from the cache's pair memo (not run again) */
  size_t screen_cached; /* screen candidates whose reduced features came from the cache */
  size_t screen_failed; /* screen comparisons whose candidate could not be loaded or compared
                           (a candidate too poor to compare, BF_EQUALITY, is unscored, not failed) */
  size_t screen_stored; /* screen candidates read in their stored screen form (no full feature) */
  char failure[512];    /* the first failed candidate load or comparison (file, item, dataset) */
  size_t preps_made, preps_cached; /* full-stage preps made / taken from the cache */
} bf_search_stats;

/* A run's cache, shared by the bf_search_run calls of one batch run (one comparison function,
 * one thread calling at a time):
 *  - the pair memo: the full score of every unordered pair {a, b} of stored items compared so
 *    far (only when the comparison declares itself symmetric, bf_search_cmp.reverse). When b's
 *    search keeps a, whose search already compared b, the score is reused: each unordered pair is
 *    compared at most once, and the hits are those of searching both directions;
 *  - screen surfaces: each candidate's screen_reduce output, so the screen reads and reduces a
 *    stored item once per run instead of once per query (up to max_bytes; then uncached);
 *  - prepared items (bf_search_cmp.prep, e.g. CMC cells and their FFTs), as query or candidate,
 *    least recently used dropped first when screen surfaces and preps would pass max_bytes; an
 *    item kept prepared is not read from the store again for the full comparison.
 * The memo grows by ~64 bytes per pair compared. */
typedef struct bf_search_cache bf_search_cache;
int bf_search_cache_new(bf_search_cache **out, size_t max_bytes);
void bf_search_cache_free(bf_search_cache *c);

/* Searches nq queries of one kind in one streaming pass. out[q] (malloc'ed, caller frees) gets
 * n[q] <= keep candidates, ranked. stats may be NULL. The same as bf_search_plan followed by
 * bf_search_finish. */
int bf_search_run(bf_cand **out, size_t *n, const bf_search_query *q, int nq,
                  const bf_search_source *src, const bf_search_cmp *cmp, const bf_prefilter *pf,
                  const bf_search_opts *o, bf_search_stats *stats);

/* bf_search_run in steps, so that several processes can share the full comparisons of their
 * queries (the MPI batch): plan each process's queries, list the pairs the full stage needs
 * (bf_search_pairs_needed), compute each unique pair once somewhere (bf_search_pairs_compute),
 * hand the scores to every process (bf_search_cache_add_pairs), and finish.
 *
 * A pair for the full comparison of a symmetric comparison (bf_search_cmp.reverse): two stored
 * items a < b, compared as compare(a, b); score NaN when not comparable or failed (err != 0:
 * failed, a BF_E* code). */
typedef struct bf_search_pair {
  int64_t a, b;
  double score, sub[4];
  int err;
} bf_search_pair;

/* Stages 1 and 2 (prefilter, screen): out[q] and n[q] as bf_search_run's, in screen order, and
 * nfull[q] = how many of them (the first) go to the full comparison. On error out is freed. */
int bf_search_plan(bf_cand **out, size_t *n, int *nfull, const bf_search_query *q, int nq,
                   const bf_search_source *src, const bf_search_cmp *cmp, const bf_prefilter *pf,
                   const bf_search_opts *o, bf_search_stats *stats);

/* The full-stage pairs of planned queries whose score o->cache does not hold yet, each once,
 * sorted by (a, b) (*out malloc'ed, caller frees; none without a cache or for a comparison that
 * is not symmetric: bf_search_finish then compares them itself). */
int bf_search_pairs_needed(bf_search_pair **out, size_t *np, const bf_search_query *q, int nq,
                           bf_cand *const *cand, const int *nfull, const bf_search_cmp *cmp,
                           const bf_search_opts *o);

/* Computes p[i] (score, sub, err) as compare(a, b), OpenMP across pairs, from the items' preps
 * kept in o->cache when the comparison has them (made here when missing, kept for the run), and
 * records the scores in o->cache's pair memo. The comparison must be symmetric. stats: the
 * pairs (full_pairs, full_failed, preps_made, preps_cached, t_full, failure). */
int bf_search_pairs_compute(bf_search_pair *p, size_t n, const bf_search_source *src,
                            const bf_search_cmp *cmp, const bf_search_opts *o,
                            bf_search_stats *stats);

/* Records pair scores computed elsewhere (another process) in the cache's pair memo; failed or
 * unscored pairs are not recorded (as for pairs compared here). */
void bf_search_cache_add_pairs(bf_search_cache *c, const bf_search_cmp *cmp,
                               const bf_search_pair *p, size_t n);

/* Stage 3 of planned queries: out[q] gets full scores and final ranks. A pair is taken from
 * done[] (sorted by (a, b); may be NULL) or o->cache's memo when there, else compared here.
 * stats: this step's (full_reused counts the pairs taken from done[] or the memo). */
int bf_search_finish(bf_cand *const *out, const size_t *n, const int *nfull,
                     const bf_search_query *q, int nq, const bf_search_source *src,
                     const bf_search_cmp *cmp, const bf_search_opts *o,
                     const bf_search_pair *done, size_t ndone, bf_search_stats *stats);

/* The default full comparison of a kind: bf_cmc_compare (score = CMC count, sub = original-
 * method counts of both directions, theta, the firing pin's ACCF or NaN when either item has no
 * firing-pin feature; ranked by bf_pin_rank) or bf_bullet_compare (score = SAM score, sub =
 * margin, phase). */
void bf_search_default_cmp(bf_search_cmp *cmp, int kind);

/* A source over a store: the descriptor rows of bf_prefilter_kind_name(kind), restricted to
 * items of that kind whose calibre matches (NULL/"" = any; an item with no calibre always
 * matches). Items with features but no descriptor are described on the fly first (see
 * bf_search_store_index). Free with bf_search_store_source_free. */
typedef struct bf_search_store_ctx bf_search_store_ctx;
int bf_search_store_source(bf_search_source *src, bf_search_store_ctx **ctx, bf_store *st,
                           int kind, const char *calibre);
void bf_search_store_source_free(bf_search_store_ctx *ctx);

/* Computes and stores (inside the caller's write transaction) the missing descriptors of
 * items of a kind that have features; *added counts them. Items whose features cannot be
 * described are reported in *failed (may be NULL) and left out of the search. */
int bf_search_store_index(bf_store *st, const bf_prefilter *pf, int kind, size_t *added,
                          size_t *failed);

/* The features and descriptor of one stored item (for a query by id). */
int bf_search_store_item(bf_store *st, const bf_prefilter *pf, int64_t item, bf_feature ***feat,
                         int *nfeat, bf_feature **desc);
/* Same as bf_store_features_free (storage's header), kept for existing callers. */
void bf_search_free_features(bf_feature **f, int n);
/* The stored features of an item of a kind, as the full comparison takes them: a cartridge
 * case's breech face followed by its firing-pin feature when one is stored (none: the breech
 * face alone, no error). Free with bf_search_free_features. */
int bf_search_load_features(bf_store *st, int kind, int64_t item, bf_feature ***feat, int *n);

#endif
