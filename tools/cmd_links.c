/* bfm links: the crime linkage graph of a store's hits, listed as linked series and drawn with
 * Graphviz (`dot -Tpng`, run as a child process). */
#include "bf_error.h"
#include "bf_linkage.h"
#include "bf_out.h"
#include "bf_text.h"
#include "bfm_cli.h"

#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Runs `dot -Tpng dotfile -o out`; 0 on success, else a message naming png in bf_error_last(). */
static int run_dot(const char *dotfile, const char *out, const char *png)
{
  char *args[] = {"dot", "-Tpng", (char *)dotfile, "-o", (char *)out, NULL};
  pid_t pid;
  int st = posix_spawnp(&pid, "dot", NULL, NULL, args, environ);
  if (st)
    return bf_error_set(BF_EIO, "cannot run Graphviz `dot` to draw %s (is graphviz installed?)", png);
  if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
    return bf_error_set(BF_EIO, "Graphviz `dot` failed drawing %s", png);
  return 0;
}

/* The DOT text and the picture both go to new temporaries beside png (O_EXCL|O_NOFOLLOW: a
 * planted symlink is never followed); only a picture Graphviz finished replaces png. */
static int draw_png(const bf_linkage *g, const char *png)
{
  bf_out *dot = NULL, *pic = NULL;
  int rc = bf_out_open(&dot, png);
  if (!rc)
    rc = bf_out_open(&pic, png);
  if (!rc) {
    bf_linkage_print_dot(g, bf_out_file(dot));
    if (fflush(bf_out_file(dot)) || ferror(bf_out_file(dot)))
      rc = bf_error_set(BF_EIO, "%s: cannot write the graph (disk full?)", bf_out_tmp(dot));
  }
  if (!rc)
    rc = run_dot(bf_out_tmp(dot), bf_out_tmp(pic), png);
  bf_out_abort(dot);
  if (!rc) {
    rc = bf_out_commit(pic);
    pic = NULL;
  }
  bf_out_abort(pic);
  return rc;
}

int bfm_cmd_links(int argc, char **argv)
{
  const char *store = NULL, *dot = NULL, *png = NULL;
  int confirmed = 0, json = 0, have_min = 0;
  bf_hit_filter flt = BF_HIT_FILTER_INIT;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--min-score") && i + 1 < argc) {
      char *e;
      flt.min_score = strtod(argv[++i], &e);
      if (*e || e == argv[i] || !isfinite(flt.min_score))
        return bfm_usage_error("links", "--min-score needs a number, not '%s'", argv[i]);
      have_min = 1;
    } else if (!strcmp(a, "--confirmed"))
      confirmed = 1;
    else if (!strcmp(a, "--dot") && i + 1 < argc)
      dot = argv[++i];
    else if (!strcmp(a, "--png") && i + 1 < argc)
      png = argv[++i];
    else if (!strcmp(a, "--json"))
      json = 1;
    else if (a[0] == '-')
      return bfm_usage_error("links", "unknown option %s", a);
    else if (!store)
      store = a;
    else
      return bfm_usage_error("links", "one store at a time");
  }
  if (!store)
    return bfm_usage_error("links", "no store given");
  if (confirmed && have_min)
    return bfm_usage_error("links", "give --min-score or --confirmed, not both");
  bf_store *st = NULL;
  bf_linkage *g = NULL;
  int rc = BFM_EXIT_OK;
  /* Every output is checked before anything is read or written: never the store or its files. */
  if (bf_out_protect(store) || (dot && bf_out_check(dot)) || (png && bf_out_check(png)))
    return bfm_fail("links");
  if (bf_store_open(&st, store, BF_STORE_READ, NULL))
    return bfm_fail("links");
  if (bf_linkage_from_store(&g, st, &flt, confirmed)) {
    rc = bfm_fail("links");
    goto done;
  }
  if (json)
    printf("[");
  else
    printf("%d linked series (%s)\n", bf_linkage_ncomponents(g),
           confirmed ? "confirmed hits" : have_min ? "hits above the minimum score, not rejected"
                                                   : "all hits not rejected");
  for (int c = 0; c < bf_linkage_ncomponents(g); c++) {
    int *m = NULL, nm = 0, ne = 0;
    double best = -INFINITY;
    if (bf_linkage_members(g, c, &m, &nm)) {
      rc = bfm_fail("links");
      goto done;
    }
    bf_linkage_series(g, c, &ne, &best);
    if (json) {
      printf("%s\n {\"series\": %d, \"links\": %d, \"best_score\": %.6g, \"firearms\": [", c ? "," : "",
             c + 1, ne, best);
      int k = 0;
      for (int i = 0; i < nm; i++)
        if (bf_linkage_node_at(g, m[i])->type == BF_NODE_FIREARM) {
          printf("%s", k++ ? ", " : "");
          bfm_json_str(stdout, bf_linkage_node_at(g, m[i])->name);
        }
      printf("], \"cases\": [");
      k = 0;
      for (int i = 0; i < nm; i++)
        if (bf_linkage_node_at(g, m[i])->type == BF_NODE_CASE) {
          printf("%s", k++ ? ", " : "");
          bfm_json_str(stdout, bf_linkage_node_at(g, m[i])->name);
        }
      printf("]}");
    } else {
      printf("series %d: %d link%s, best score %.3g\n", c + 1, ne, ne == 1 ? "" : "s", best);
      for (int i = 0; i < nm; i++) {
        const bf_link_node *n = bf_linkage_node_at(g, m[i]);
        printf("  %-8s ", n->type == BF_NODE_FIREARM ? "firearm" : "case");
        bf_text_put(stdout, n->name);
        printf("%s", n->label[0] ? "  " : "");
        bf_text_put(stdout, n->label);
        printf("\n");
      }
    }
    free(m);
  }
  if (json)
    printf("%s]\n", bf_linkage_ncomponents(g) ? "\n" : "");
  if (dot && bf_linkage_write_dot(g, dot)) {
    rc = bfm_fail("links");
    goto done;
  }
  if (png && draw_png(g, png))
    rc = bfm_fail("links");
done:
  bf_linkage_free(g);
  bf_store_close(st);
  return rc;
}
