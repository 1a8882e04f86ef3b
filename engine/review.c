/* Hit review (see bf_review.h). */
#include "bf_review.h"

#include "bf_error.h"
#include "bf_submit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bf_review_hit(bf_store *st, int64_t hit, int status, const char *examiner, const char *note)
{
  if (status != BF_HIT_CONFIRMED && status != BF_HIT_REJECTED)
    return bf_error_set(BF_EINVAL, "review: status must be confirmed or rejected");
  if (!examiner || !examiner[0])
    return bf_error_set(BF_EINVAL, "review: an examiner name is required");
  /* the same text rule as every record field (bf_submit_check_record) */
  bf_submission probe = {.type = BF_OWNER_EVIDENCE};
  int rc = bf_submission_set(&probe, "agency", examiner);
  if (!rc)
    rc = bf_submission_set(&probe, "notes", note ? note : "");
  if (rc == BF_ELIMIT)
    rc = bf_error_set(BF_ELIMIT, "review: examiner or note is too long");
  snprintf(probe.evidence.case_no, sizeof probe.evidence.case_no, "-");
  snprintf(probe.evidence.item, sizeof probe.evidence.item, "-");
  if (rc || (rc = bf_submit_check_record(&probe)))
    return bf_error_prefix(rc, "review: ");
  if ((rc = bf_store_begin(st)))
    return rc;
  if ((rc = bf_store_set_hit_status(st, hit, status, examiner, note)) || (rc = bf_store_commit(st)))
    bf_store_abort(st);
  return rc;
}

static int64_t pair_lo(const bf_hit *h) { return h->query < h->candidate ? h->query : h->candidate; }
static int64_t pair_hi(const bf_hit *h) { return h->query < h->candidate ? h->candidate : h->query; }
static double score_key(const bf_hit *h) { return isfinite(h->score) ? h->score : -HUGE_VAL; }
static int by_score(const void *a, const void *b)
{
  const bf_hit *x = a, *y = b;
  double sx = score_key(x), sy = score_key(y);
  return sx > sy ? -1 : sx < sy ? 1 : (x->id > y->id) - (x->id < y->id);
}
/* The pair, then the one to keep first. */
static int by_pair(const void *a, const void *b)
{
  const bf_hit *x = a, *y = b;
  int64_t d = pair_lo(x) != pair_lo(y) ? pair_lo(x) - pair_lo(y) : pair_hi(x) - pair_hi(y);
  if (d)
    return d < 0 ? -1 : 1;
  int rx = x->status != BF_HIT_CANDIDATE, ry = y->status != BF_HIT_CANDIDATE;
  if (rx != ry)
    return ry - rx;
  return by_score(a, b);
}

void bf_hits_one_per_pair(bf_hit *h, size_t *n)
{
  if (*n > 1) {
    qsort(h, *n, sizeof *h, by_pair);
    size_t k = 1;
    for (size_t i = 1; i < *n; i++)
      if (pair_lo(&h[i]) != pair_lo(&h[k - 1]) || pair_hi(&h[i]) != pair_hi(&h[k - 1]))
        h[k++] = h[i];
    *n = k;
  }
  qsort(h, *n, sizeof *h, by_score);
}
