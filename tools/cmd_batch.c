/* bfm batch: flags -> bf_batch_options -> bf_batch_run (or bf_batch_run_mpi under mpirun or
 * with --mpi) -> print. The run's rules live in engine/bf_batch.h. */
#include "bf_batch.h"
#include "bf_error.h"
#include "bfm_cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct cli_state {
  bfm_progress bar;
  int quiet, started;
} cli_state;

static void on_progress(void *ctx, const bf_batch_stats *s)
{
  cli_state *c = ctx;
  if (!c->started) {
    c->started = 1;
    if (!c->quiet) {
      if (s->indexed)
        fprintf(stderr, "indexed %zu items for the prefilter\n", s->indexed);
      fprintf(stderr, "batch run %lld: %zu items to search (%zu searched before)\n",
              (long long)s->run, s->pending, s->searched_before);
    }
    if (s->index_failed)
      fprintf(stderr, "bfm batch: %zu items could not be described for the prefilter (too little "
              "valid surface) and are not searched\n", s->index_failed);
    bfm_progress_start(&c->bar, "batch", (long)s->pending);
    return;
  }
  bfm_progress_step(&c->bar, (long)s->searched);
}

static void on_note(void *ctx, int64_t item, const char *msg)
{
  (void)ctx;
  if (item > 0)
    fprintf(stderr, "bfm batch: item %lld left unsearched: %s\n", (long long)item, msg);
  else
    fprintf(stderr, "bfm batch: %s\n", msg);
}

static int under_mpirun(void)
{
  const char *v = getenv("OMPI_COMM_WORLD_SIZE");
  if (!v)
    v = getenv("PMI_SIZE");
  return v && strtol(v, NULL, 10) > 1;
}

static int parse(int argc, char **argv, bf_batch_options *o, const char **store, int *quiet,
                 int *mpi)
{
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int hasv = i + 1 < argc;
    long v;
    if (!strcmp(a, "--threads") && hasv) {
      if (bfm_parse_long("batch", a, argv[++i], 0, 4096, &v))
        return BFM_EXIT_USAGE;
      o->threads = (int)v;
    } else if (!strcmp(a, "--keep") && hasv) {
      if (bfm_parse_long("batch", a, argv[++i], 1, INT_MAX, &v))
        return BFM_EXIT_USAGE;
      o->keep = (int)v;
    } else if (!strcmp(a, "--screen") && hasv) {
      if (bfm_parse_long("batch", a, argv[++i], 0, INT_MAX, &v))
        return BFM_EXIT_USAGE;
      o->screen = (int)v;
    } else if (!strcmp(a, "--group") && hasv) {
      if (bfm_parse_long("batch", a, argv[++i], 1, 1 << 20, &v))
        return BFM_EXIT_USAGE;
      o->group = (int)v;
    } else if (!strcmp(a, "--wave") && hasv) {
      if (bfm_parse_long("batch", a, argv[++i], 1, 1 << 20, &v))
        return BFM_EXIT_USAGE;
      o->wave = (int)v;
    } else if (!strcmp(a, "--limit") && hasv) {
      if (bfm_parse_long("batch", a, argv[++i], 0, LONG_MAX, &v))
        return BFM_EXIT_USAGE;
      o->limit = v;
    } else if (!strcmp(a, "--user") && hasv)
      o->user = argv[++i];
    else if (!strcmp(a, "--min-score") && hasv) {
      if (bfm_parse_double("batch", a, argv[++i], -1e300, 1e300, &o->min_score))
        return BFM_EXIT_USAGE;
    } else if (!strcmp(a, "--cache-mb") && hasv) {
      if (bfm_parse_long("batch", a, argv[++i], 0, 1L << 30, &v))
        return BFM_EXIT_USAGE;
      o->cache_mb = (size_t)v;
    } else if (!strcmp(a, "--no-reuse"))
      o->reuse = 0;
    else if (!strcmp(a, "--mpi"))
      *mpi = 1;
    else if (!strcmp(a, "--quiet"))
      *quiet = 1;
    else if (a[0] == '-')
      return bfm_usage_error("batch", "unknown option %s", a);
    else if (!*store)
      *store = a;
    else
      return bfm_usage_error("batch", "one store at a time");
  }
  if (!*store)
    return bfm_usage_error("batch", "no store given");
  return 0;
}

int bfm_cmd_batch(int argc, char **argv)
{
  bf_batch_options o = BF_BATCH_OPTIONS_INIT;
  bf_batch_stats s;
  cli_state cs = {.quiet = 0, .started = 0};
  const char *path = NULL;
  int mpi = under_mpirun(), rc = parse(argc, argv, &o, &path, &cs.quiet, &mpi);
  if (rc)
    return rc;
  o.progress = on_progress;
  o.progress_ctx = &cs;
  o.note = on_note;
  int ret;
  if (mpi) {
    ret = bf_batch_run_mpi(path, &o, &s);
    if (s.run < 0) /* a worker rank: rank 0 prints */
      return ret ? bfm_fail("batch") : BFM_EXIT_OK;
  } else {
    bf_store *st = NULL;
    ret = bf_store_open(&st, path, BF_STORE_WRITE, o.user);
    if (!ret)
      ret = bf_batch_run(st, &o, &s);
    bf_store_close(st);
  }
  if (cs.started)
    bfm_progress_end(&cs.bar);
  if (ret && !cs.started)
    return bfm_fail("batch");
  printf("batch run %lld: %zu items searched%s, %zu prefilter, %zu screen, %zu full comparisons"
         " (%zu more reused)%s in %.1f s (%.2f items/s); %zu new candidate hits at or above the "
         "threshold\n", (long long)s.run, s.searched, ret ? " before the failure" : "",
         s.pre_pairs, s.screen_pairs, s.full_pairs, s.full_reused,
         s.full_failed ? " (some failed)" : "", s.seconds,
         s.seconds > 0 ? s.searched / s.seconds : 0.0, s.new_hits);
  if (s.t_prefilter + s.t_screen + s.t_full > 0) /* where the time went (MPI: all ranks') */
    printf("  seconds by stage%s: prefilter %.1f (reading descriptors %.1f), screen %.1f, full "
           "comparison %.1f\n", mpi ? " (summed over the ranks)" : "", s.t_prefilter + s.t_read,
           s.t_read, s.t_screen, s.t_full);
  if (s.full_failed)
    printf("  %zu full comparisons failed (kept unscored)\n", s.full_failed);
  if (s.failed_items)
    printf("  %zu items could not be searched (reported above; a rerun retries them)\n",
           s.failed_items);
  if (ret)
    return bfm_fail("batch");
  return s.full_failed ? BFM_EXIT_FAIL : BFM_EXIT_OK; /* finished, but not silently */
}
