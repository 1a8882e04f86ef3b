/* Strict number parsing for every flag (bfm_cli.h): atoi's "abc" -> 0 is a usage error here. */
#include "bfm_cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

int bfm_parse_long(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out)
{
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (!*s || isspace((unsigned char)*s) || *end || errno || v < lo || v > hi)
    return bfm_usage_error(cmd, "%s needs a whole number from %ld to %ld, not '%s'", flag, lo, hi, s);
  *out = v;
  return 0;
}

int bfm_parse_int(const char *cmd, const char *flag, const char *s, int lo, int hi, int *out)
{
  long v = 0;
  int rc = bfm_parse_long(cmd, flag, s, lo, hi, &v);
  if (!rc)
    *out = (int)v;
  return rc;
}

int bfm_parse_double(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out)
{
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (!*s || isspace((unsigned char)*s) || *end || errno == ERANGE || !isfinite(v) || v < lo || v > hi)
    return bfm_usage_error(cmd, "%s needs a number from %g to %g, not '%s'", flag, lo, hi, s);
  *out = v;
  return 0;
}

long long bfm_parse_id(const char *s)
{
  if (!*s)
    return 0;
  for (const char *p = s; *p; p++)
    if (!isdigit((unsigned char)*p))
      return 0;
  errno = 0;
  long long v = strtoll(s, NULL, 10);
  return errno ? 0 : v;
}
