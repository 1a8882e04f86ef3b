/* The overnight batch as a library call: every stored item not yet searched is searched against
 * everything stored of its kind and calibre; candidates at or above the threshold become hits.
 *
 *  - Run id: one more than the largest run id the store knows (items' "searched" marks and hits).
 *  - Queue: unsearched items that have a prefilter descriptor, ordered by (kind, calibre, id);
 *    items without a descriptor are described first (bf_search_store_index, its own commit).
 *  - Groups: up to `group` consecutive queue items of one kind and calibre share one streaming
 *    pass over the descriptors; a group's hits and the "searched" mark of its items are committed
 *    in ONE transaction (the store commits by an atomic rename), so a kill at any moment leaves
 *    each item either searched with all its hits or unsearched with none. A rerun continues with
 *    the unsearched items; hits are unique on (run, query, candidate): nothing is duplicated.
 *  - Hits (bf_batch_is_hit, the one place of the rule): a candidate whose calibrated likelihood
 *    ratio (bf_lr.h) reaches the default rule, LR >= 10 (log10 LR >= 1: where "moderate support"
 *    starts on the ENFSI verbal scale, and below both models' upper bounds, so a hit can be
 *    reached), or, when min_score is set, whose full score is at or above it; and whose owner
 *    differs from the query's: two test-fires of one firearm are known to match. Every stored
 *    hit carries its log10 LR.
 *  - Pairs compared: the query q and each candidate c that q's own search keeps (prefilter top
 *    `keep`, then the screen's top `screen`). For a symmetric comparison (cartridge CMC) each
 *    UNORDERED pair is compared at most once per process and run: when c's search keeps q after
 *    q's search compared c, the score is reused (bf_search_cache). The hit set is therefore
 *    exactly the two-directional one: same pairs, scores and ranks (the reused sub-scores give
 *    the reverse direction's counts swapped and the rotation negated). Two stored items are
 *    always compared smaller id first (bf_search_cmp.reverse): the CMC is not exactly symmetric
 *    (~1 in 10 weak pairs of synthetic cases scored differently in the two orientations), so
 *    this is what makes a pair's score independent of which search, process or rank ran it.
 *    Each item's CMC prep is made once per run and process (bf_search_cache, LRU in cache_mb).
 *  - An item whose features cannot be read or compared is reported through `note`, left
 *    unsearched (a later run retries it) and the run goes on.
 *
 * Stage sizes: the prefilter keeps bf_search_keep (200, or 1 in 150 candidates above 30,000),
 * the screen passes BF_BATCH_SCREEN = BF_SEARCH_FULL = 10 to the CMC, the same rule as bfm
 * match (bf_search.h says what it was measured on).
 *
 * MPI (bf_batch_run_mpi, built when CMake finds MPI): the QUEUE is split, not the store. The G
 * groups go to ranks in contiguous blocks (group g to rank floor(g N / G)), so items stored
 * together, often each other's candidates, are planned on one rank; every rank streams the whole
 * descriptor table for its groups and reads its candidates' features straight from the store file
 * (shared filesystem, read-only); ranks send each group's hits to rank 0, the single writer,
 * which commits them as above. Why queries and not store segments: a query's candidates come
 * from one top-K over the whole store, so segments would need a merge round per group and ship
 * features between ranks, while query groups need little communication; descriptor reading
 * (~1 KB per stored item per group) is the cost, and it is small beside the screen and CMC (see
 * benchmarks/RESULTS.md). With reuse, the ranks go in waves of one group each: each plans its
 * group (prefilter, screen), the full comparisons they need are gathered, each unique pair not
 * yet memoised is computed by one rank, and every rank gets every score before it finishes its
 * group: each unordered pair is computed once in the whole job, as in one process (batch_mpi.inc
 * says how pairs are dealt). Without reuse each rank searches its groups alone. The answer
 * equals the single-process run's: each query's candidates and ranking are the same computation
 * whatever rank runs it, and a pair's score does not depend on where or in which direction it
 * was computed (above). MPI_Init/Finalize are called inside when the caller has not initialised
 * MPI. */
#ifndef BF_BATCH_H
#define BF_BATCH_H

#include "bf_search.h"
#include "bf_store.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define BF_BATCH_SCREEN BF_SEARCH_FULL /* one rule with bfm match (bf_search.h) */

typedef struct bf_batch_stats {
  int64_t run;            /* this run's id */
  size_t pending;         /* items queued for this run */
  size_t searched_before; /* items searched by earlier runs */
  size_t searched;        /* items searched and committed so far */
  size_t failed_items;    /* items reported through note and left unsearched */
  size_t indexed, index_failed; /* prefilter descriptors made / items that could not be described */
  size_t pre_pairs, screen_pairs, full_pairs, full_reused;
  size_t full_failed; /* screen or full comparisons whose candidate could not be loaded or
                         compared (reported through note; the run's exit says so) */
  size_t new_hits;        /* hits committed by this run */
  double seconds;         /* wall time of the search (after indexing) */
  size_t preps_made, preps_cached; /* CMC preps made / taken from the run cache */
  /* seconds by search stage, summed over the searches (an MPI run: over every rank, so
   * rank-seconds): descriptor reads, prefilter, screen, full comparison */
  double t_read, t_prefilter, t_screen, t_full;
} bf_batch_stats;

typedef struct bf_batch_options {
  int threads;      /* OpenMP threads per process; 0: OpenMP default */
  int keep;         /* prefilter candidates; 0: bf_search_keep (cartridge 200 or N/150, bullet 50) */
  int screen;       /* screen survivors; -1: BF_BATCH_SCREEN; 0: no screen */
  int group;        /* queries per commit */
  long limit;       /* at most this many items this run; -1: all */
  double min_score; /* NaN: the calibrated rule (LR >= 10); else a plain score threshold */
  int reuse;        /* 1: compare each unordered pair once, keep screen surfaces and CMC preps
                       for the run; 0: as before (both directions computed, every CMC prepares
                       both items; for benchmarks and tests) */
  size_t cache_mb;  /* screen surfaces and CMC preps kept per process (MB; LRU for preps) */
  int wave;         /* MPI with reuse: items each rank plans (whole groups, at least one) before
                       the ranks share out the wave's pairs (see batch_mpi.inc) */
  const char *user; /* for the store's audit (bf_batch_run_mpi opens the store itself) */
  /* after planning (searched = 0) and after every committed group; called on rank 0 only */
  void (*progress)(void *ctx, const bf_batch_stats *s);
  void *progress_ctx;
  /* an item left out (item > 0) or a note on the run (item = 0); any rank, one line */
  void (*note)(void *ctx, int64_t item, const char *msg);
  void *note_ctx;
} bf_batch_options;

#define BF_BATCH_OPTIONS_INIT                                                                  \
  { .threads = 0, .keep = 0, .screen = -1, .group = 32, .limit = -1, .min_score = NAN,        \
    .reuse = 1, .cache_mb = 512, .wave = 8, .user = NULL, .progress = NULL,                    \
    .progress_ctx = NULL, .note = NULL, .note_ctx = NULL }

/* Runs the batch on a store opened for writing. stats may be NULL. On failure the groups
 * committed so far stay committed; the rest is unchanged. */
int bf_batch_run(bf_store *st, const bf_batch_options *o, bf_batch_stats *stats);

/* The hit rule: full score (NaN: not compared) against the threshold of the query's kind, and
 * the owners of query and candidate. */
int bf_batch_is_hit(const bf_store *st, const bf_batch_options *o, int64_t query,
                    int64_t candidate, double score);

/* The same over MPI ranks (call between MPI_Init and MPI_Finalize, every rank with the same
 * arguments); rank 0 opens `path` for writing, the others read it. stats are rank 0's totals.
 * BF_EINVAL when bfm was built without MPI. */
int bf_batch_run_mpi(const char *path, const bf_batch_options *o, bf_batch_stats *stats);
/* 1 when built with MPI. */
int bf_batch_have_mpi(void);

#endif
