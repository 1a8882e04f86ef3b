/* bfm compare / bfm features for cartridges. Being written (issue: cartridge comparison). */
#include "bf_error.h"
#include "bfm_cli.h"

int bfm_compare_cartridge(int argc, char **argv)
{
  (void)argc;
  fprintf(stderr, "bfm %s: cartridge comparison is not built yet\n", argv[0]);
  return BFM_EXIT_FAIL;
}

int bfm_features_cartridge(int argc, char **argv)
{
  (void)argc;
  fprintf(stderr, "bfm %s: cartridge features are not built yet\n", argv[0]);
  return BFM_EXIT_FAIL;
}
