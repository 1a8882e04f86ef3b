/* bfm compact STORE and bfm upgrade STORE: storage maintenance, one library call each. */
#include "bf_error.h"
#include "bf_store.h"
#include "bfm_cli.h"

#include <stdlib.h>
#include <string.h>

int bfm_cmd_compact(int argc, char **argv)
{
  bf_store_compact_opts o = BF_STORE_COMPACT_OPTS_INIT;
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--all"))
      o.all = 1;
    else if (!strcmp(argv[i], "--target-mb") && i + 1 < argc) {
      char *end = NULL;
      double mb = strtod(argv[++i], &end);
      if (!end || *end || !(mb > 0 && mb < 1e9))
        return bfm_usage_error("compact", "--target-mb needs a positive number, not '%s'", argv[i]);
      o.target_bytes = (int64_t)(mb * 1048576.0);
    } else if (!strcmp(argv[i], "--user") && i + 1 < argc)
      o.user = argv[++i];
    else if (argv[i][0] == '-')
      return bfm_usage_error("compact", "unknown option %s", argv[i]);
    else if (!path)
      path = argv[i];
    else
      return bfm_usage_error("compact", "too many arguments");
  }
  if (!path)
    return bfm_usage_error("compact", "usage: bfm compact STORE [--all] [--target-mb MB]");
  bf_store_compact_result r;
  if (bf_store_compact(path, &o, &r))
    return bfm_fail("compact");
  if (r.segments_before == r.segments_after)
    printf("%s: %d segment(s), nothing to merge\n", path, r.segments_before);
  else
    printf("%s: %d segment(s) -> %d; %.1f MB read, %.1f MB written, %lld superseded row(s) dropped in %.2f s\n",
           path, r.segments_before, r.segments_after, r.bytes_read / 1e6, r.bytes_written / 1e6,
           (long long)r.rows_dropped, r.seconds);
  return BFM_EXIT_OK;
}

int bfm_cmd_upgrade(int argc, char **argv)
{
  const char *path = NULL, *user = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--user") && i + 1 < argc)
      user = argv[++i];
    else if (argv[i][0] == '-')
      return bfm_usage_error("upgrade", "unknown option %s", argv[i]);
    else if (!path)
      path = argv[i];
    else
      return bfm_usage_error("upgrade", "too many arguments");
  }
  if (!path)
    return bfm_usage_error("upgrade", "usage: bfm upgrade STORE");
  if (bf_store_upgrade(path, user))
    return bfm_fail("upgrade");
  printf("%s: upgraded to schema %d (segments in %s.d/); run `bfm verify %s` to recheck\n", path,
         BF_STORE_SCHEMA, path, path);
  return BFM_EXIT_OK;
}
