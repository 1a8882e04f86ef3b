/* bfm review: an examiner's decision on a candidate hit, recorded with the audit log. */
#include "bf_error.h"
#include "bf_review.h"
#include "bf_store.h"
#include "bfm_cli.h"

#include <stdlib.h>
#include <string.h>

int bfm_cmd_review(int argc, char **argv)
{
  const char *store = NULL, *hit = NULL, *examiner = NULL, *note = NULL;
  int status = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--confirm") || !strcmp(a, "--reject")) {
      int s = a[2] == 'c' ? BF_HIT_CONFIRMED : BF_HIT_REJECTED;
      if (status >= 0 && status != s)
        return bfm_usage_error("review", "give one of --confirm and --reject");
      status = s;
    } else if (!strcmp(a, "--examiner") && i + 1 < argc)
      examiner = argv[++i];
    else if (!strcmp(a, "--note") && i + 1 < argc)
      note = argv[++i];
    else if (a[0] == '-')
      return bfm_usage_error("review", "unknown option %s", a);
    else if (!store)
      store = a;
    else if (!hit)
      hit = a;
    else
      return bfm_usage_error("review", "too many arguments");
  }
  if (!store || !hit)
    return bfm_usage_error("review", "usage: bfm review STORE HIT --confirm|--reject --examiner NAME");
  if (status < 0)
    return bfm_usage_error("review", "say --confirm or --reject");
  if (!examiner || !examiner[0])
    return bfm_usage_error("review", "--examiner NAME is required (it goes into the audit log)");
  long long id = bfm_parse_id(hit);
  if (id <= 0)
    return bfm_usage_error("review", "HIT must be a hit id (a positive number), not '%s'", hit);
  bf_store *st = NULL;
  if (bf_store_open(&st, store, BF_STORE_WRITE, examiner))
    return bfm_fail("review");
  int rc = BFM_EXIT_OK;
  if (bf_review_hit(st, id, status, examiner, note))
    rc = bfm_fail("review");
  else
    printf("hit %lld %s by %s\n", id, bf_hit_status_name(status), examiner);
  bf_store_close(st);
  return rc;
}
