/* A query: one item — stored, or scans given on the spot — searched against every stored item
 * of its kind and calibre (prefilter, screen, full comparison; bf_search.h). The use case
 * behind `bfm match`, callable by any front end. */
#ifndef BF_QUERY_H
#define BF_QUERY_H

#include "bf_scanset.h"
#include "bf_search.h"
#include "bf_store.h"

typedef struct bf_query_opts {
  int kind;            /* scans: BF_KIND_*, 0 = a bullet when more than one scan, else told by
                          the scan's shape. Ignored for a stored item */
  const char *calibre; /* NULL: the stored item's (any, for scans) */
  int top;             /* candidates the caller shows: every one of them is fully compared */
  int keep;            /* prefilter keeps; 0 = the kind's default */
  int screen;          /* -1 = default, 0 = no screen */
  int threads;         /* 0 = OpenMP default */
  int prefilter_only;
} bf_query_opts;
#define BF_QUERY_OPTS_INIT                                                                    \
  {.kind = 0, .calibre = NULL, .top = 10, .keep = 0, .screen = -1, .threads = 0,              \
   .prefilter_only = 0}

typedef struct bf_query_result {
  int64_t item;        /* the query's item (0 for scans) */
  int kind;
  char calibre[32];    /* the calibre searched ("" = any) */
  bf_cand *cand;       /* ranked candidates, n of them (>= top when the store has them) */
  size_t n;
  bf_search_stats stats;
  double seconds;      /* the search itself */
  size_t stored;       /* stored items of the kind (other than the query) */
  size_t unindexed;    /* of them, items with no search descriptor (not searched) */
} bf_query_result;

/* Searches a stored item. BF_ENOTFOUND when there is no such item or nothing to search. */
int bf_query_item(bf_query_result *out, bf_store *st, int64_t item, const bf_query_opts *o);
/* Searches scans given on the spot (numbered: bf_scanset_build). */
int bf_query_scans(bf_query_result *out, bf_store *st, const bf_scanset *scans,
                   const bf_query_opts *o);
void bf_query_result_clear(bf_query_result *r);

/* Reads and extracts the scans of one item (the land numbers of the set); kind 0 is guessed as
 * in bf_query_opts. Caller frees with bf_search_free_features. Used by compare as well. */
int bf_query_extract(bf_feature ***feat, int *n, int *kind, const bf_scanset *scans);

#endif
