/* kill -9 a real `bfm ingest` at random moments (and once exactly at the commit point): after
 * each kill the store opens, passes verify and holds every row the ingest had reported stored;
 * re-running the ingest then completes the store with every row exactly once. */
#include "bf_test.h"

#include "../tests/crash_kit.h"

int main(void)
{
  const char *data = bf_t_shared("data");
  if (!data)
    return bf_t_done();
  char ddata[4096];
  snprintf(ddata, sizeof ddata, "%s", data);
  const char *dir = bf_t_tmpdir("crash");
  char store[4200], manifest[4200], out[4200], tstore[4200], why[1024];
  snprintf(store, sizeof store, "%s/s.h5", dir);
  snprintf(tstore, sizeof tstore, "%s/timing.h5", dir);
  snprintf(manifest, sizeof manifest, "%s/m.csv", dir);
  snprintf(out, sizeof out, "%s/out.txt", dir);
  int quick = getenv("BF_QUICK") != NULL;
  ck_manifest m;
  CHECK(ck_write_manifest(&m, manifest, ddata, quick ? 3 : 6) == 0);
  CHECK(bf_store_create(store, "crashtest") == 0 && bf_store_create(tstore, "crashtest") == 0);

  /* how long an uninterrupted ingest takes: kills are spread over that time */
  double full = 0;
  CHECK(ck_run(tstore, manifest, out, -1, 0, &full) == 0);
  ck_manifest mt = m;
  CHECK(ck_check(&mt, tstore, out, why, sizeof why) == 0);
  int nst = 0;
  for (int r = 0; r < mt.nrows; r++)
    nst += mt.stored[r] != 0;
  CHECKF(nst == m.nrows, "uninterrupted ingest stored %d of %d rows", nst, m.nrows);

  /* dying between the synced copy and the rename: nothing is committed, nothing claimed */
  ck_manifest mc = m;
  CHECK(ck_run(store, manifest, out, -1, 1, NULL) == 0);
  CHECKF(ck_check(&mc, store, out, why, sizeof why) == 0, "%s", why);
  {
    bf_store *st = NULL;
    CHECK(bf_store_open(&st, store, BF_STORE_READ, NULL) == 0 && bf_store_nitems(st) == 0);
    bf_store_close(st);
  }

  unsigned seed = (unsigned)time(NULL);
  if (getenv("BF_CRASH_SEED"))
    seed = (unsigned)atoi(getenv("BF_CRASH_SEED"));
  srand(seed);
  /* each kill on a fresh store (so it lands inside the ingest), then one more ingest on the
   * last killed store, killed again, to cover a kill while resuming */
  int kills = quick ? 3 : 6, nkilled = 0;
  ck_manifest mk = m;
  for (int k = 0; k < kills; k++) {
    snprintf(store, sizeof store, "%s/s%d.h5", dir, k);
    CHECK(bf_store_create(store, "crashtest") == 0);
    mk = m;
    double delay = full * (double)rand() / RAND_MAX;
    int r = ck_run(store, manifest, out, delay, 0, NULL);
    nkilled += r == 1;
    CHECKF(ck_check(&mk, store, out, why, sizeof why) == 0, "seed %u kill %d at %.3f s: %s", seed, k, delay, why);
    if (k == kills - 1) {
      r = ck_run(store, manifest, out, delay * 0.5, 0, NULL);
      CHECKF(ck_check(&mk, store, out, why, sizeof why) == 0, "seed %u resumed kill: %s", seed, why);
    }
  }
  printf("%d of %d kill(s) landed inside the ingest (seed %u, full ingest %.2f s)\n", nkilled, kills, seed, full);
  CHECK(nkilled >= 1);
  m = mk;

  /* finishing the job: every row ends up stored exactly once */
  CHECK(ck_run(store, manifest, out, -1, 0, NULL) == 0);
  CHECKF(ck_check(&m, store, out, why, sizeof why) == 0, "%s", why);
  bf_store *st = NULL;
  CHECK(bf_store_open(&st, store, BF_STORE_READ, NULL) == 0);
  if (st) {
    CHECKF(bf_store_nitems(st) == (size_t)m.nrows, "%zu items for %d rows", bf_store_nitems(st), m.nrows);
    size_t want = 0;
    for (int r = 0; r < m.nrows; r++)
      want += m.nscans[r];
    CHECK(bf_store_nscans(st) == want);
    bf_store_close(st);
  }
  return bf_t_done();
}
