/* Guessing what a command-line argument is, for commands that take either kind. */
#include "bf_error.h"
#include "bf_feature.h"
#include "bf_scanset.h"
#include "bf_x3p.h"
#include "bfm_cli.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

int bfm_parse_kind(const char *s)
{
  if (!strcmp(s, "cartridge") || !strcmp(s, "cartridge-case") || !strcmp(s, "case"))
    return BF_KIND_CARTRIDGE;
  if (!strcmp(s, "bullet") || !strcmp(s, "land"))
    return BF_KIND_BULLET;
  return 0;
}

int bfm_guess_kind(const char *path)
{
  struct stat st;
  if (strchr(path, ',')) /* a list of land scans */
    return BF_KIND_BULLET;
  if (stat(path, &st) != 0) {
    bf_error_set(BF_ENOTFOUND, "%s: cannot open: %s", path, strerror(errno));
    return 0;
  }
  if (S_ISDIR(st.st_mode))
    return BF_KIND_BULLET;
  bf_x3p_info in; /* the header only: no point data is inflated to guess */
  if (bf_x3p_probe(path, &in))
    return 0;
  return bf_scanset_shape_kind(in.nx, in.ny, in.dx_um, in.dy_um); /* the one shape rule */
}

/* Shared front half of compare and features: find --kind or guess it from the first operand. */
static int dispatch(int argc, char **argv, int (*cart)(int, char **), int (*bul)(int, char **))
{
  int kind = 0;
  const char *first = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--kind") && i + 1 < argc) {
      kind = bfm_parse_kind(argv[++i]);
      if (!kind)
        return bfm_usage_error(argv[0], "--kind must be cartridge or bullet, not '%s'", argv[i]);
    } else if ((!strcmp(argv[i], "--png") || !strcmp(argv[i], "--show") ||
                !strcmp(argv[i], "--orient")) && i + 1 < argc)
      i++; /* options that take a value: the value is not an operand */
    else if (argv[i][0] != '-' && !first)
      first = argv[i];
  }
  if (!kind) {
    if (!first)
      return bfm_usage_error(argv[0], "no scan given");
    kind = bfm_guess_kind(first);
    if (!kind)
      return bfm_fail(argv[0]); /* the reader's one line: file and problem */
  }
  return kind == BF_KIND_BULLET ? bul(argc, argv) : cart(argc, argv);
}

int bfm_cmd_compare(int argc, char **argv)
{
  return dispatch(argc, argv, bfm_compare_cartridge, bfm_compare_bullet);
}

int bfm_cmd_features(int argc, char **argv)
{
  return dispatch(argc, argv, bfm_features_cartridge, bfm_features_bullet);
}
