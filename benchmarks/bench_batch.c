/* Batch throughput on one node: items searched per second by bf_batch_run, single process,
 * "before" (both items of a new pair search each other with a full comparison each, the screen
 * passes 20, every query reads and block-averages its candidates' full features) against "after"
 * (each unordered pair compared once, the screen passes BF_BATCH_SCREEN, screen surfaces cached
 * for the run), on the same synthetic store; checks that both store the same hits (pairs,
 * scores, ranks). In-process figure: the search time of the run (indexing excluded). The
 * per-user FFTW wisdom is loaded and saved as bfm does: run it twice on a new machine, the
 * first run plans.
 *
 *   bench_batch [--stored M] [--firearms F] [--firings K] [--diameter UM] [--threads T]
 *               [--all-new] [--make-store PATH]
 * --make-store: only write the store (e.g. to time `mpirun -np N bfm batch PATH`).
 * The store holds M stored (already searched) cases of M firearms and F x K new cases (K firings
 * of F firearms, each its own evidence item) to search. --all-new: the M are unsearched too (a
 * first run). */
#include "bf_batch.h"
#include "bf_error.h"
#include "bf_fft.h"
#include "bf_store.h"
#include "bf_synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int add_case(bf_store *st, bf_synth *g, int firearm, int firing, int64_t *item)
{
  bf_evidence e;
  int64_t eid = 0, sid = 0;
  bf_surface *s = NULL;
  bf_feature *f = NULL;
  char name[64];
  memset(&e, 0, sizeof e);
  snprintf(e.case_no, sizeof e.case_no, "B-%d-%d", firearm, firing);
  snprintf(e.item, sizeof e.item, "1");
  e.kind = BF_KIND_CARTRIDGE;
  snprintf(name, sizeof name, "F%d-%d", firearm, firing);
  int rc = bf_store_add_evidence(st, &eid, &e);
  if (!rc)
    rc = bf_synth_cartridge(&s, g, firearm, firing, NULL);
  if (!rc)
    rc = bf_store_add_item(st, item, BF_KIND_CARTRIDGE, "9mm", BF_OWNER_EVIDENCE, eid);
  if (!rc)
    rc = bf_store_add_scan(st, &sid, *item, 0, name, strlen(name), name, s);
  if (!rc)
    rc = bf_feature_new(&f, BF_KIND_CARTRIDGE, s->nx, s->ny, s->dx, s->dy);
  if (!rc) {
    memcpy(f->z, s->z, sizeof(float) * s->nx * s->ny);
    f->version = 1;
    rc = bf_store_put_feature(st, "cartridge", *item, sid, f);
  }
  bf_feature_free(f);
  bf_surface_free(s);
  return rc;
}

static int make_store(const char *path, int M, int F, int K, double diam, int all_new)
{
  bf_synth_opts so = BF_SYNTH_OPTS_INIT;
  so.cart_diameter = diam;
  bf_synth *g = NULL;
  bf_store *st = NULL;
  int64_t *old = calloc(M + 1, sizeof *old), item = 0;
  int rc = bf_synth_new(&g, &so);
  if (!rc)
    rc = bf_store_create(path, "bench");
  if (!rc)
    rc = bf_store_open(&st, path, BF_STORE_WRITE, "bench");
  if (!rc)
    rc = bf_store_begin(st);
  for (int m = 0; m < M && !rc; m++)
    rc = add_case(st, g, 1000 + m, 0, &old[m]);
  for (int f = 0; f < F && !rc; f++)
    for (int k = 0; k < K && !rc; k++)
      rc = add_case(st, g, f, k, &item);
  if (!rc && !all_new && M)
    rc = bf_store_set_searched(st, old, M, 1);
  if (!rc)
    rc = bf_store_commit(st);
  bf_store_close(st);
  bf_synth_free(g);
  free(old);
  return rc;
}

typedef struct hrow {
  int64_t q, c;
  double s;
  int r;
} hrow;

static int cmp_h(const void *a, const void *b)
{
  const hrow *x = a, *y = b;
  return x->q != y->q ? (x->q < y->q ? -1 : 1) : (x->c < y->c ? -1 : x->c > y->c);
}

static double cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int run(const char *path, const bf_batch_options *o, bf_batch_stats *s, hrow **h, size_t *nh)
{
  bf_store *st = NULL;
  bf_hit *hits = NULL;
  int rc = bf_store_open(&st, path, BF_STORE_WRITE, "bench");
  if (!rc)
    rc = bf_batch_run(st, o, s);
  if (!rc)
    rc = bf_store_query_hits(st, NULL, &hits, nh);
  bf_store_close(st);
  if (rc)
    return rc;
  *h = malloc((*nh + 1) * sizeof **h);
  for (size_t i = 0; i < *nh; i++)
    (*h)[i] = (hrow){hits[i].query, hits[i].candidate, hits[i].score, hits[i].rank};
  qsort(*h, *nh, sizeof **h, cmp_h);
  free(hits);
  return 0;
}

int main(int argc, char **argv)
{
  int M = 40, F = 4, K = 3, threads = 1, all_new = 0;
  double diam = 2400;
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--stored") && i + 1 < argc)
      M = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--firearms") && i + 1 < argc)
      F = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--firings") && i + 1 < argc)
      K = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--diameter") && i + 1 < argc)
      diam = atof(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--all-new"))
      all_new = 1;
    else if (!strcmp(argv[i], "--make-store") && i + 1 < argc)
      only = argv[++i];
    else {
      fprintf(stderr, "usage: bench_batch [--stored M] [--firearms F] [--firings K] "
                      "[--diameter UM] [--threads T] [--all-new] [--make-store PATH]\n");
      return 2;
    }
  }
  if (only) {
    int rc = make_store(only, M, F, K, diam, all_new);
    if (rc)
      fprintf(stderr, "bench_batch: %s\n", bf_error_last());
    return rc ? 1 : 0;
  }
  char dir[] = "/tmp/bench_batch_XXXXXX", a[256], b[256], cmd[1200];
  if (!mkdtemp(dir))
    return 1;
  snprintf(a, sizeof a, "%s/before.bfm", dir);
  snprintf(b, sizeof b, "%s/after.bfm", dir);
  if (make_store(a, M, F, K, diam, all_new)) {
    fprintf(stderr, "bench_batch: %s\n", bf_error_last());
    return 1;
  }
  snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cp -r '%s.d' '%s.d'", a, b, a, b); /* + segments */
  if (system(cmd))
    return 1;
  printf("store: %d stored%s + %d new cartridge cases (%d firearms x %d firings), disk %.0f um; "
         "%d thread(s); in-process search time (indexing excluded)\n", M,
         all_new ? " (unsearched too)" : "", F * K, F, K, diam, threads);
  /* the per-user FFTW wisdom, as bfm uses it: otherwise the first path timed would also plan
   * every transform (with patient plans, seconds); a first run on a machine plans and saves */
  bf_fft_wisdom_load(NULL);
  bf_batch_options o = BF_BATCH_OPTIONS_INIT;
  o.threads = threads;
  bf_batch_stats s[2];
  double cpu[2] = {0, 0}; /* CPU seconds of the whole run (indexing included) */
  hrow *h[2] = {NULL, NULL};
  size_t nh[2] = {0, 0};
  const char *path[2] = {a, b}, *label[2] = {"before", "after"};
  for (int k = 0; k < 2; k++) {
    o.reuse = k;
    o.screen = k ? -1 : 20;
    double c0 = cpu_s();
    if (run(path[k], &o, &s[k], &h[k], &nh[k])) {
      fprintf(stderr, "bench_batch: %s\n", bf_error_last());
      return 1;
    }
    cpu[k] = cpu_s() - c0;
    printf("%-6s: %zu items in %.2f s = %.3f items/s; screen %zu, full CMC %zu computed + %zu "
           "reused; CMC preps %zu made + %zu kept; %zu hits; CPU %.1f s (run incl. indexing)\n",
           label[k], s[k].searched,
           s[k].seconds, s[k].searched / s[k].seconds, s[k].screen_pairs, s[k].full_pairs,
           s[k].full_reused, s[k].preps_made, s[k].preps_cached, nh[k], cpu[k]);
    printf("        stages (wall s): read %.2f, prefilter %.2f, screen %.2f, full %.2f\n",
           s[k].t_read, s[k].t_prefilter, s[k].t_screen, s[k].t_full);
  }
  int same = nh[0] == nh[1];
  for (size_t i = 0; same && i < nh[0]; i++)
    same = h[0][i].q == h[1][i].q && h[0][i].c == h[1][i].c && h[0][i].s == h[1][i].s &&
           h[0][i].r == h[1][i].r;
  printf("speed-up %.2fx (wall), %.2fx (CPU); hit sets (pairs, scores, ranks) %s\n",
         (s[1].searched / s[1].seconds) / (s[0].searched / s[0].seconds), cpu[0] / cpu[1],
         same ? "identical" : "DIFFER");
  bf_fft_wisdom_save(NULL);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd))
    return 1;
  free(h[0]);
  free(h[1]);
  return same ? 0 : 1;
}
