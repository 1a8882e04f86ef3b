/* Store figures for the segment store (schema 2):
 *  - commit latency of one review and of a one-item ingest (firearm record + item + scan
 *    original + feature + prefilter descriptor) at growing store sizes, in-process (begin to
 *    commit) and end to end (`bfm review` as a new process);
 *  - ingest throughput (items/s, one commit per item, in-process) at each size;
 *  - compaction throughput (MB/s) and read amplification (segments a reader opens, time to open
 *    and load every table and stream the descriptors) before and after `bf_store_compact`;
 *  - kill -9 at random points of `bfm ingest|batch|review|compact` (--crash CMD --kills K).
 * usage: bench_store [--sizes 1000,10000,100000] [--dir DIR]
 *        bench_store --crash ingest|batch|review|compact [--kills K] [--dir DIR]
 * The machine is shared and noisy: medians are printed. */
#include "bf_error.h"
#include "bf_store.h"

#include "../tests/crash_kit.h"

#include <math.h>
#include <sys/stat.h>

static char dir[4096];
static uint32_t rng = 12345;

static void fill_bytes(uint8_t *b, size_t n)
{
  for (size_t k = 0; k < n; k++) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    b[k] = (uint8_t)rng;
  }
}

static int dcmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double cpu_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double median(double *v, int n)
{
  qsort(v, (size_t)n, sizeof *v, dcmp);
  return n ? v[n / 2] : NAN;
}

/* One synthetic registry entry: what an ingest of one test-fired cartridge case writes. */
static int add_entry(bf_store *st, long i, bf_feature *f, bf_feature *pf)
{
  bf_firearm fa = {0};
  snprintf(fa.serial, sizeof fa.serial, "SN%09ld", i);
  snprintf(fa.make, sizeof fa.make, "Make%ld", i % 37);
  snprintf(fa.calibre, sizeof fa.calibre, "9mm Luger");
  uint8_t bytes[2048];
  fill_bytes(bytes, sizeof bytes);
  for (int k = 0; k < f->nx * f->ny; k++)
    f->z[k] = (float)((i * 7 + k) % 101);
  for (int k = 0; k < pf->nx; k++)
    pf->z[k] = (float)((i * 3 + k) % 17);
  int64_t fid, item, sid;
  int rc;
  if ((rc = bf_store_add_firearm(st, &fid, &fa)) ||
      (rc = bf_store_add_item(st, &item, BF_KIND_CARTRIDGE, fa.calibre, BF_OWNER_FIREARM, fid)) ||
      (rc = bf_store_add_scan(st, &sid, item, 0, bytes, sizeof bytes, "synthetic.x3p", NULL)) ||
      (rc = bf_store_put_feature(st, "cartridge", item, sid, f)) ||
      (rc = bf_store_put_feature(st, "cartridge-pf", item, sid, pf)))
    return rc;
  if (item > 1) { /* one hit per item: something to review */
    bf_hit h = {0};
    h.query = item;
    h.candidate = item - 1;
    h.run = 1;
    h.score = (double)(i % 20);
    h.log10_lr = NAN;
    rc = bf_store_add_hits(st, &h, 1, NULL);
  }
  return rc;
}

/* Grows the store to n items in commits of up to 5,000 entries. */
static int grow_to(const char *path, long n, bf_feature *f, bf_feature *pf)
{
  bf_store *st = NULL;
  int rc = bf_store_open(&st, path, BF_STORE_WRITE, "bench");
  long have = rc ? 0 : (long)bf_store_nitems(st);
  if (!rc && have == 0 && !(rc = bf_store_begin(st))) /* the descriptors are hot data: plain */
    rc = bf_store_add_kind(st, "cartridge-pf", 0) || bf_store_commit(st);
  while (!rc && have < n) {
    long m = n - have < 5000 ? n - have : 5000;
    if ((rc = bf_store_begin(st)))
      break;
    for (long i = 0; i < m && !rc; i++)
      rc = add_entry(st, have + i, f, pf);
    if (rc || (rc = bf_store_commit(st)))
      break;
    have += m;
  }
  if (rc)
    printf("building: %s\n", bf_error_last());
  bf_store_close(st);
  return rc;
}

/* Opening and loading everything, then streaming the descriptors: what a reader pays. */
static double read_all(const char *path, int *segs)
{
  double t0 = ck_now();
  bf_store *st = NULL;
  if (bf_store_open(&st, path, BF_STORE_READ, NULL))
    return NAN;
  bf_store_stats s;
  bf_store_stats_get(st, &s);
  *segs = s.segments;
  bf_store_load(st);
  const bf_feat_row *r;
  size_t n = 0;
  bf_store_feature_index(st, "cartridge-pf", &r, &n);
  bf_feature **blk = calloc(n + 1, sizeof *blk);
  if (blk && n)
    bf_store_read_block(st, "cartridge-pf", 0, n, blk);
  for (size_t i = 0; blk && i < n; i++)
    bf_feature_free(blk[i]);
  free(blk);
  bf_store_close(st);
  return ck_now() - t0;
}

static int skip_compact;

static void figures_at(const char *path, long n, bf_feature *f, bf_feature *pf)
{
  if (skip_compact)
    goto commits;
  /* compaction first: the build left one segment per 5,000 entries */
  int sb = 0, sa = 0;
  double rb = read_all(path, &sb);
  bf_store_compact_opts o = BF_STORE_COMPACT_OPTS_INIT;
  o.all = 1;
  bf_store_compact_result cr;
  double c0 = cpu_now();
  int crc = bf_store_compact(path, &o, &cr);
  double ccpu = cpu_now() - c0;
  double ra = read_all(path, &sa);
  if (crc)
    printf("  compact failed: %s\n", bf_error_last());
  else
    printf("  compaction: %d -> %d segments, %.1f MB read, %.1f MB written in %.2f s = %.1f MB/s (CPU %.2f s = %.1f MB/s); "
           "reader (open, load all tables, stream descriptors): %d segments %.2f s before, %d segments %.2f s after\n",
           cr.segments_before, cr.segments_after, cr.bytes_read / 1e6, cr.bytes_written / 1e6, cr.seconds,
           cr.bytes_read / 1e6 / cr.seconds, ccpu, cr.bytes_read / 1e6 / ccpu, sb, rb, sa, ra);
commits:;
  bf_store *st = NULL;
  if (bf_store_open(&st, path, BF_STORE_WRITE, "bench")) {
    printf("  open: %s\n", bf_error_last());
    return;
  }
  bf_store_nfirearms(st); /* tables loaded once, as a long-running writer (bfm serve) has them */
  bf_store_nscans(st);
  bf_hit *hv = NULL;
  size_t nh = 0;
  bf_store_query_hits(st, NULL, &hv, &nh);
  free(hv);
  enum { R = 9 };
  double rv[R], ig[R], rvc[R], igc[R];
  int rc = 0;
  for (int k = 0; k < R && !rc; k++) {
    double a = ck_now(), ac = cpu_now();
    if (!(rc = bf_store_begin(st)) &&
        !(rc = bf_store_set_hit_status(st, 1 + (k * 7919) % (int64_t)nh, 1 + k % 2, "bench", "review")))
      rc = bf_store_commit(st);
    double b = ck_now(), bc = cpu_now();
    if (!rc && !(rc = bf_store_begin(st)) && !(rc = add_entry(st, n + k, f, pf)))
      rc = bf_store_commit(st);
    double c = ck_now(), cc = cpu_now();
    rv[k] = b - a;
    ig[k] = c - b;
    rvc[k] = bc - ac;
    igc[k] = cc - bc;
  }
  if (rc)
    printf("  commit failed: %s\n", bf_error_last());
  /* ingest throughput: 40 one-item commits back to back */
  double a = ck_now();
  int m = 40;
  for (int k = 0; k < m && !rc; k++)
    if (!(rc = bf_store_begin(st)) && !(rc = add_entry(st, n + R + k, f, pf)))
      rc = bf_store_commit(st);
  double thr = m / (ck_now() - a);
  bf_store_close(st);
  /* end to end: `bfm firearm add` of one synthetic cartridge case as a new process (opens the
   * store, checks serial and SHA-256, extracts, commits): what a lab submitting one item waits */
  double add[5];
  char syn[4300], cmd[9000];
  snprintf(syn, sizeof syn, "%s/e2e-%ld", dir, n);
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && '%s' synth --out '%s' --kind cartridge --firearms 5 --firings 1 "
           "--questioned 0 --seed %ld >/dev/null", syn, BF_BFM_EXE, syn, 900 + n % 1000);
  int synth_ok = system(cmd) == 0;
  for (int k = 0; k < 5; k++) {
    char serial[64], file[4400];
    snprintf(serial, sizeof serial, "E2E-%ld-%d", n, k);
    snprintf(file, sizeof file, "%s/cartridge/F%04d-1.x3p", syn, k + 1);
    char *argv[] = {(char *)BF_BFM_EXE, (char *)"firearm", (char *)"add", (char *)path, (char *)"--serial", serial,
                    (char *)"--calibre", (char *)"9mm Luger", file, NULL};
    int status = 0;
    add[k] = NAN;
    if (synth_ok)
      ck_spawn(argv, "/dev/null", -1, 0, &status, &add[k]);
    if (status)
      printf("  bfm firearm add exit %d\n", status);
  }
  /* end to end: `bfm review` as a new process (opens the store, reads and writes one hit row) */
  double e2e[5];
  for (int k = 0; k < 5; k++) {
    char id[32];
    snprintf(id, sizeof id, "%d", 2 + k);
    char *argv[] = {(char *)BF_BFM_EXE, (char *)"review", (char *)path, id, (char *)"--confirm",
                    (char *)"--examiner", (char *)"bench", NULL};
    int status = 0;
    ck_spawn(argv, NULL, -1, 0, &status, &e2e[k]);
    if (status)
      printf("  bfm review exit %d\n", status);
  }
  struct stat sbuf;
  bf_store *rs = NULL;
  bf_store_stats ss = {0};
  if (!bf_store_open(&rs, path, BF_STORE_READ, NULL))
    bf_store_stats_get(rs, &ss);
  bf_store_close(rs);
  (void)sbuf;
  printf("  %ld items, %.1f MB on disk: commit of one review %.1f ms (CPU %.1f ms), of a one-item ingest "
         "%.1f ms (CPU %.1f ms) (medians of %d, in-process); ingest %.1f items/s (one commit each); `bfm review` end to end %.3f s, "
         "`bfm firearm add` of one cartridge case end to end %.3f s (medians of 5, new process)\n",
         n, ss.bytes / 1e6, 1e3 * median(rv, R), 1e3 * median(rvc, R), 1e3 * median(ig, R), 1e3 * median(igc, R),
         R, thr, median(e2e, 5), median(add, 5));
  fflush(stdout);
}

static void sizes_run(const char *list)
{
  char path[4300];
  snprintf(path, sizeof path, "%s/reg.h5", dir);
  char cmd[20000];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.d' '%s.lock'", path, path, path);
  if (system(cmd) || bf_store_create(path, "bench")) {
    printf("create: %s\n", bf_error_last());
    return;
  }
  bf_feature *f = NULL, *pf = NULL;
  bf_feature_new(&f, BF_KIND_CARTRIDGE, 32, 32, 25, 25);
  bf_feature_new(&pf, BF_KIND_CARTRIDGE, 64, 1, 1, 1);
  printf("store entry: firearm record + item + 2 KB original + 32x32 feature (deflated) + 64-value "
         "descriptor (plain) + one hit\n");
  long done = 0;
  for (const char *p = list; *p;) {
    long n = strtol(p, (char **)&p, 10);
    if (*p == ',')
      p++;
    if (n <= done)
      continue;
    double t0 = ck_now();
    if (grow_to(path, n, f, pf))
      break;
    printf("%ld items (built in %.1f s):\n", n, ck_now() - t0);
    figures_at(path, n, f, pf);
    done = n + 9 + 40 + 5; /* figures_at added entries */
  }
  bf_feature_free(f);
  bf_feature_free(pf);
}

/* ---- kill -9 rounds ---- */

static void copy_store(const char *from, const char *to)
{
  char cmd[20000];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.d' && cp '%s' '%s' && cp -r '%s.d' '%s.d'", to, to, from, to, from, to);
  if (system(cmd))
    printf("copy failed\n");
}

static void crash_run(const char *what, int kills)
{
  char syn[4300], manifest[8400], base[4300], s[4300], out[4300], why[1024], d0[4096], d1[4096];
  snprintf(syn, sizeof syn, "%s/synth", dir);
  snprintf(base, sizeof base, "%s/base.h5", dir);
  snprintf(s, sizeof s, "%s/k.h5", dir);
  snprintf(out, sizeof out, "%s/k.out", dir);
  ck_manifest m;
  char cmd[20000];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s.d' '%s.lock'", syn, base, base, base);
  if (system(cmd) || ck_synth(&m, syn, 2, manifest) || bf_store_create(base, "bench")) {
    printf("setup failed: %s\n", bf_error_last());
    return;
  }
  double full = 0;
  ck_run(base, manifest, out, -1, 0, &full); /* base: every row ingested */
  {
    /* batch: base stays un-batched (each kill batches a fresh copy); the others start batched */
    int b = !strcmp(what, "batch");
    if (b)
      copy_store(base, s);
    char *bargv[] = {(char *)BF_BFM_EXE, (char *)"batch", b ? s : base, (char *)"--group", (char *)"1",
                     (char *)"--keep", (char *)"3", (char *)"--min-score", (char *)"0", (char *)"--quiet", NULL};
    if (b || !strcmp(what, "review") || !strcmp(what, "compact"))
      ck_spawn(bargv, NULL, -1, 0, NULL, b ? &full : NULL);
  }
  ck_digest(base, d0, sizeof d0);
  unsigned seed = (unsigned)time(NULL);
  srand(seed);
  int landed = 0, viol = 0;
  ck_manifest none = {0};
  for (int k = 0; k < kills; k++) {
    ck_manifest mk = m;
    double delay = full * (double)rand() / RAND_MAX;
    int r = 0, bad = 0, status = 0;
    char idb[32] = "1", note[64], got[256];
    if (!strcmp(what, "ingest")) {
      snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.d' '%s.lock'", s, s, s);
      if (system(cmd) || bf_store_create(s, "bench"))
        break;
      r = ck_run(s, manifest, out, delay, 0, NULL);
      bad = ck_check(&mk, s, out, why, sizeof why) != 0;
    } else if (!strcmp(what, "batch") || !strcmp(what, "compact")) {
      copy_store(base, s);
      char *argv_b[] = {(char *)BF_BFM_EXE, (char *)"batch", s, (char *)"--group", (char *)"1",
                        (char *)"--keep", (char *)"3", (char *)"--min-score", (char *)"0", (char *)"--quiet", NULL};
      char *argv_c[] = {(char *)BF_BFM_EXE, (char *)"compact", s, (char *)"--all", NULL};
      if (!strcmp(what, "compact") && k == 0) {
        double t;
        copy_store(base, s);
        ck_spawn(argv_c, NULL, -1, 0, NULL, &t);
        full = t;
        copy_store(base, s);
      }
      r = ck_spawn(!strcmp(what, "batch") ? argv_b : argv_c, NULL, delay, 0, NULL, NULL);
      bad = ck_check(&none, s, NULL, why, sizeof why) != 0;
      if (!bad && !strcmp(what, "compact"))
        bad = ck_digest(s, d1, sizeof d1) || strcmp(d0, d1);
    } else { /* review: each kill on the same store, alternating the decision */
      if (k == 0)
        copy_store(base, s);
      int old = ck_hit_status(s, 1, NULL), want = old == BF_HIT_CONFIRMED ? BF_HIT_REJECTED : BF_HIT_CONFIRMED;
      snprintf(note, sizeof note, "kill %d", k);
      char *argv[] = {(char *)BF_BFM_EXE, (char *)"review", s, idb,
                      (char *)(want == BF_HIT_CONFIRMED ? "--confirm" : "--reject"), (char *)"--examiner",
                      (char *)"bench", (char *)"--note", note, NULL};
      double t = 0;
      r = ck_spawn(argv, NULL, k == 0 ? -1 : delay, 0, &status, &t);
      if (k == 0)
        full = t;
      int now = ck_hit_status(s, 1, got);
      bad = !(now == old || (now == want && !strcmp(got, note))) || (status == 0 && now != want) ||
            ck_check(&none, s, NULL, why, sizeof why) != 0;
    }
    if (!bad && ck_writer_cleans(s) != 0) {
      bad = 1;
      snprintf(why, sizeof why, "the next writer left unlisted segments");
    }
    landed += r == 1;
    viol += bad;
    if (bad)
      printf("  VIOLATION %s kill %d at %.3f s: %s\n", what, k, delay, why);
  }
  printf("kill -9 %s: %d runs, %d killed inside the command, %d violation(s) (seed %u, full run %.2f s)\n",
         what, kills, landed, viol, seed, full);
}

int main(int argc, char **argv)
{
  const char *sizes = "1000,10000,100000", *crash = NULL, *at = NULL;
  int kills = 25;
  snprintf(dir, sizeof dir, "/tmp/bench_store");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
      sizes = argv[++i];
    else if (!strcmp(argv[i], "--crash") && i + 1 < argc)
      crash = argv[++i];
    else if (!strcmp(argv[i], "--at") && i + 1 < argc) /* commit figures on an existing store */
      at = argv[++i];
    else if (!strcmp(argv[i], "--kills") && i + 1 < argc)
      kills = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      snprintf(dir, sizeof dir, "%s", argv[++i]);
    else {
      fprintf(stderr, "usage: bench_store [--sizes N,N,..] | --crash ingest|batch|review|compact [--kills K]; [--dir DIR]\n");
      return 2;
    }
  }
  mkdir(dir, 0755);
  if (at) {
    bf_store *st = NULL;
    long n = 0;
    if (!bf_store_open(&st, at, BF_STORE_READ, NULL))
      n = (long)bf_store_nitems(st);
    bf_store_close(st);
    bf_feature *f = NULL, *pf = NULL;
    bf_feature_new(&f, BF_KIND_CARTRIDGE, 32, 32, 25, 25);
    bf_feature_new(&pf, BF_KIND_CARTRIDGE, 64, 1, 1, 1);
    skip_compact = 1;
    rng = (uint32_t)time(NULL) * 2654435761u + 1; /* originals unlike those already stored */
    figures_at(at, n, f, pf);
    bf_feature_free(f);
    bf_feature_free(pf);
  } else if (crash)
    crash_run(crash, kills);
  else
    sizes_run(sizes);
  return 0;
}
