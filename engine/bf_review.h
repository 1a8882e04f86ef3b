/* An examiner's decision on a candidate hit: the use case behind `bfm review` (and a web
 * review screen). One transaction: the status, the examiner, the note and the audit line. */
#ifndef BF_REVIEW_H
#define BF_REVIEW_H

#include "bf_store.h"

/* status: BF_HIT_CONFIRMED or BF_HIT_REJECTED. examiner is required; examiner and note must be
 * valid UTF-8 without control characters (a line break would forge audit lines). The store is
 * unchanged on any failure. */
int bf_review_hit(bf_store *st, int64_t hit, int status, const char *examiner, const char *note);

#endif
