/* An examiner's decision on a candidate hit: the use case behind `bfm review` (and a web
 * review screen). One transaction: the status, the examiner, the note and the audit line. */
#ifndef BF_REVIEW_H
#define BF_REVIEW_H

#include "bf_store.h"

/* status: BF_HIT_CONFIRMED or BF_HIT_REJECTED. examiner is required; examiner and note must be
 * valid UTF-8 without control characters (a line break would forge audit lines). The store is
 * unchanged on any failure. */
int bf_review_hit(bf_store *st, int64_t hit, int status, const char *examiner, const char *note);

/* The batch may store a hit each way for one pair of items. What an examiner is shown: one hit
 * per unordered pair, a reviewed one before a candidate, then the higher score, then the older
 * (lower id); *n shrinks to the kept ones, in descending score order (a NaN score last, ties by
 * id). The one rule behind `bfm hits` and the web item page. */
void bf_hits_one_per_pair(bf_hit *h, size_t *n);

#endif
