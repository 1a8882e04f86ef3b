/* kill -9 real bfm commands at random moments: ingest (and once exactly at the commit point),
 * batch, review and compact. After each kill the store opens, passes verify and holds every
 * row reported stored; a killed review left the old or the new status; a killed compaction left
 * the store exactly as it was; the next writer removes the segments no manifest lists; re-running
 * the command completes the work exactly once. Inputs come from `bfm synth` (no ../shared). */
#include "bf_test.h"

#include "../tests/crash_kit.h"

static const char *dir;
static unsigned seed;

static void copy_store(const char *from, const char *to)
{
  char cmd[20000];
  CHECK(snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.d' && cp '%s' '%s' && cp -r '%s.d' '%s.d'", to, to, from, to,
                 from, to) < (int)sizeof cmd);
  CHECK(system(cmd) == 0);
}

static double rnd(double full)
{
  return full * (double)rand() / RAND_MAX;
}

/* ingest: killed at random moments on fresh stores, resumed, finished */
static void crash_ingest(ck_manifest *m, const char *manifest, const char *store, int kills)
{
  char tstore[4300], out[4300], why[1024];
  snprintf(tstore, sizeof tstore, "%s/timing.h5", dir);
  snprintf(out, sizeof out, "%s/out.txt", dir);
  CHECK(bf_store_create(store, "crashtest") == 0 && bf_store_create(tstore, "crashtest") == 0);
  double full = 0;
  CHECK(ck_run(tstore, manifest, out, -1, 0, &full) == 0);
  ck_manifest mt = *m;
  CHECK(ck_check(&mt, tstore, out, why, sizeof why) == 0);
  int nst = 0;
  for (int r = 0; r < mt.nrows; r++)
    nst += mt.stored[r] != 0;
  CHECKF(nst == m->nrows, "uninterrupted ingest stored %d of %d rows", nst, m->nrows);

  /* dying between the synced segment + manifest and the rename: nothing committed or claimed */
  ck_manifest mc = *m;
  CHECK(ck_run(store, manifest, out, -1, 1, NULL) == 0);
  CHECKF(ck_check(&mc, store, out, why, sizeof why) == 0, "%s", why);
  {
    bf_store *st = NULL;
    CHECK(bf_store_open(&st, store, BF_STORE_READ, NULL) == 0 && bf_store_nitems(st) == 0);
    bf_store_close(st);
  }
  CHECK(ck_unlisted(store) >= 1);   /* the dead writer's segment is there, unlisted ... */
  CHECK(ck_writer_cleans(store) == 0); /* ... until the next writer removes it */

  int nkilled = 0;
  ck_manifest mk = *m;
  for (int k = 0; k < kills; k++) {
    char s[4300];
    snprintf(s, sizeof s, "%s/s%d.h5", dir, k);
    CHECK(bf_store_create(s, "crashtest") == 0);
    mk = *m;
    double delay = rnd(full);
    nkilled += ck_run(s, manifest, out, delay, 0, NULL) == 1;
    CHECKF(ck_check(&mk, s, out, why, sizeof why) == 0, "seed %u ingest kill %d at %.3f s: %s", seed, k, delay, why);
    if (k == kills - 1) { /* a kill while resuming, then finishing the job */
      ck_run(s, manifest, out, delay * 0.5, 0, NULL);
      CHECKF(ck_check(&mk, s, out, why, sizeof why) == 0, "seed %u resumed kill: %s", seed, why);
      CHECK(ck_run(s, manifest, out, -1, 0, NULL) == 0);
      CHECKF(ck_check(&mk, s, out, why, sizeof why) == 0, "%s", why);
      bf_store *st = NULL;
      CHECK(bf_store_open(&st, s, BF_STORE_READ, NULL) == 0);
      if (st) {
        CHECKF(bf_store_nitems(st) == (size_t)m->nrows, "%zu items for %d rows", bf_store_nitems(st), m->nrows);
        bf_store_close(st);
      }
    }
  }
  printf("ingest: %d of %d kill(s) landed inside (full ingest %.2f s)\n", nkilled, kills, full);
  CHECK(nkilled >= 1);
  copy_store(tstore, store); /* the complete store for what follows */
}

/* batch: killed at random moments on copies of the ingested store, then finished */
static void crash_batch(const char *store, int kills, char *after)
{
  char s[4300], why[1024];
  snprintf(s, sizeof s, "%s/batch.h5", dir);
  ck_manifest none = {0};
  char *argv[] = {(char *)BF_BFM_EXE, (char *)"batch", s, (char *)"--group", (char *)"1",
                  (char *)"--keep", (char *)"3", (char *)"--min-score", (char *)"0", (char *)"--quiet", NULL};
  copy_store(store, s);
  double full = 0;
  int status = 0;
  CHECK(ck_spawn(argv, NULL, -1, 0, &status, &full) == 0 && status == 0);
  int nkilled = 0;
  for (int k = 0; k < kills; k++) {
    copy_store(store, s);
    double delay = rnd(full);
    nkilled += ck_spawn(argv, NULL, delay, 0, NULL, NULL) == 1;
    CHECKF(ck_check(&none, s, NULL, why, sizeof why) == 0, "seed %u batch kill %d at %.3f s: %s", seed, k, delay, why);
    CHECK(ck_writer_cleans(s) == 0);
  }
  CHECK(ck_spawn(argv, NULL, -1, 0, &status, NULL) == 0 && status == 0); /* resumes, completes */
  CHECKF(ck_check(&none, s, NULL, why, sizeof why) == 0, "%s", why);
  bf_store *st = NULL;
  size_t searched = 0, n = 0;
  if (!bf_store_open(&st, s, BF_STORE_READ, NULL)) {
    n = bf_store_nitems(st);
    for (size_t i = 0; i < n; i++)
      searched += bf_store_items(st)[i].searched != 0;
    bf_store_close(st);
  }
  CHECKF(n && searched == n, "%zu of %zu items searched after the resumed batch", searched, n);
  printf("batch: %d of %d kill(s) landed inside (full batch %.2f s)\n", nkilled, kills, full);
  copy_store(s, after);
}

/* review: killed at random moments; the status is the old or the new one, the new one when
 * the command had ended with success */
static void crash_review(const char *store, int kills)
{
  char why[1024], note[256];
  ck_manifest none = {0};
  int nh = 0;
  {
    bf_store *st = NULL;
    bf_hit *hv = NULL;
    size_t n = 0;
    if (!bf_store_open(&st, store, BF_STORE_READ, NULL) && !bf_store_query_hits(st, NULL, &hv, &n))
      nh = (int)n;
    free(hv);
    bf_store_close(st);
  }
  CHECK(nh >= 1);
  if (nh < 1)
    return;
  double full = 0;
  int nkilled = 0;
  for (int k = 0; k <= kills; k++) {
    int64_t id = 1 + k % nh;
    int old = ck_hit_status(store, id, NULL), want = old == BF_HIT_CONFIRMED ? BF_HIT_REJECTED : BF_HIT_CONFIRMED;
    char idb[32], nb[64];
    snprintf(idb, sizeof idb, "%lld", (long long)id);
    snprintf(nb, sizeof nb, "review %d", k);
    char *argv[] = {(char *)BF_BFM_EXE, (char *)"review", (char *)store, idb,
                    (char *)(want == BF_HIT_CONFIRMED ? "--confirm" : "--reject"), (char *)"--examiner",
                    (char *)"crash", (char *)"--note", nb, NULL};
    int status = -1;
    double t = 0;
    int killed = ck_spawn(argv, NULL, k == 0 ? -1 : rnd(full), 0, &status, &t);
    if (k == 0)
      full = t;
    nkilled += killed == 1;
    int now = ck_hit_status(store, id, note);
    CHECKF(now == old || (now == want && !strcmp(note, nb)), "seed %u review kill %d: status %d (old %d, new %d)",
           seed, k, now, old, want);
    if (status == 0)
      CHECKF(now == want && !strcmp(note, nb), "seed %u review %d reported success but status is %d", seed, k, now);
    CHECKF(ck_check(&none, store, NULL, why, sizeof why) == 0, "seed %u review kill %d: %s", seed, k, why);
  }
  CHECK(ck_writer_cleans(store) == 0);
  printf("review: %d of %d kill(s) landed inside (one review %.3f s)\n", nkilled, kills, full);
}

/* compact: killed at random moments on copies of a many-segment store; the content never
 * changes, and a finished compaction leaves fewer segments with the same content */
static void crash_compact(const char *store, int kills)
{
  char s[4300], d0[4096], d1[4096], why[1024];
  ck_manifest none = {0};
  snprintf(s, sizeof s, "%s/compact.h5", dir);
  CHECK(ck_digest(store, d0, sizeof d0) == 0);
  char *argv[] = {(char *)BF_BFM_EXE, (char *)"compact", s, (char *)"--all", NULL};
  copy_store(store, s);
  double full = 0;
  int status = 0;
  CHECK(ck_spawn(argv, NULL, -1, 1, &status, &full) == 0 && status != 0); /* dies before its rename */
  CHECK(ck_digest(s, d1, sizeof d1) == 0 && !strcmp(d0, d1));
  CHECK(ck_unlisted(s) >= 1 && ck_writer_cleans(s) == 0);
  CHECK(ck_spawn(argv, NULL, -1, 0, &status, &full) == 0 && status == 0);
  CHECKF(ck_digest(s, d1, sizeof d1) == 0 && !strcmp(d0, d1), "compaction changed the store:\n%s\n%s", d0, d1);
  bf_store *st = NULL;
  bf_store_stats ss = {0};
  if (!bf_store_open(&st, s, BF_STORE_READ, NULL))
    bf_store_stats_get(st, &ss);
  bf_store_close(st);
  CHECKF(ss.segments == 2 && ss.superseded_rows == 0, "%d segments, %lld superseded rows after compaction",
         ss.segments, (long long)ss.superseded_rows);
  int nkilled = 0;
  for (int k = 0; k < kills; k++) {
    copy_store(store, s);
    double delay = rnd(full);
    nkilled += ck_spawn(argv, NULL, delay, 0, NULL, NULL) == 1;
    CHECKF(ck_check(&none, s, NULL, why, sizeof why) == 0, "seed %u compact kill %d at %.3f s: %s", seed, k, delay, why);
    CHECKF(ck_digest(s, d1, sizeof d1) == 0 && !strcmp(d0, d1), "seed %u compact kill %d at %.3f s changed the store",
           seed, k, delay);
    CHECK(ck_writer_cleans(s) == 0);
  }
  printf("compact: %d of %d kill(s) landed inside (full compaction %.2f s)\n", nkilled, kills, full);
}

int main(void)
{
  dir = bf_t_tmpdir("crash");
  int quick = getenv("BF_QUICK") != NULL;
  seed = (unsigned)time(NULL);
  if (getenv("BF_CRASH_SEED"))
    seed = (unsigned)atoi(getenv("BF_CRASH_SEED"));
  srand(seed);
  char syn[4300], manifest[8400], store[4300], batched[4300];
  snprintf(syn, sizeof syn, "%s/synth", dir);
  snprintf(store, sizeof store, "%s/s.h5", dir);
  snprintf(batched, sizeof batched, "%s/batched.h5", dir);
  ck_manifest m;
  CHECK(ck_synth(&m, syn, 2, manifest) == 0);
  if (bf_t_fail)
    return bf_t_done();
  int kills = quick ? 3 : 6;
  crash_ingest(&m, manifest, store, kills);
  crash_batch(store, quick ? 2 : 4, batched); /* a batch run is the slowest: fewer kills */
  crash_review(batched, kills);
  crash_compact(batched, kills);
  printf("seed %u\n", seed);
  return bf_t_done();
}
