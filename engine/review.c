/* Hit review (see bf_review.h). */
#include "bf_review.h"

#include "bf_error.h"
#include "bf_submit.h"

#include <stdio.h>
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
