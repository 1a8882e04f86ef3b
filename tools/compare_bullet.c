/* bfm compare / bfm features for bullets. Being written (issue: bullet comparison). */
#include "bf_error.h"
#include "bfm_cli.h"

int bfm_compare_bullet(int argc, char **argv)
{
  (void)argc;
  fprintf(stderr, "bfm %s: bullet comparison is not built yet\n", argv[0]);
  return BFM_EXIT_FAIL;
}

int bfm_features_bullet(int argc, char **argv)
{
  (void)argc;
  fprintf(stderr, "bfm %s: bullet features are not built yet\n", argv[0]);
  return BFM_EXIT_FAIL;
}
