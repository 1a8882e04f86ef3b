/* The batch library (bf_batch_run), named cases on small synthetic stores: run ids and resuming,
 * the hit rule, each unordered pair compared once with the same hits as both directions, the
 * progress callback, an item with a bad feature reported while the run goes on, and every
 * allocation failure on the batch path leaving the store unchanged (leaks: ASan).
 * Then CLI-level tests of the search commands on a small synthetic store built through the store API:
 * batch is resumable (kill -9 mid-run, rerun: same hits as an uninterrupted run, none twice),
 * `bfm hits` keeps working while batch writes, hits/review/links/match/show answer, and bad
 * input (unknown item or hit, empty store, failing query scan, another schema version) gives a
 * clear message, a non-zero exit and leaves the store unchanged. */
#include "bf_alloc.h"
#include "bf_batch.h"
#include "bf_lr.h"
#include "bf_error.h"
#include "bf_prefilter.h"
#include "bf_search.h"
#include "bf_hash.h"
#include "bf_store.h"
#include "bf_synth.h"
#include "bf_test.h"
#include "batch_kit.h"
#include "store_kit.h"
#include "bf_x3p.h"

#include <hdf5.h>
#include <omp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[4096], store[4200], out[4200], err[4200];

/* Runs bfm with args, stdout/stderr into the files out/err; returns the exit status. */
static int bfm(const char *args) { return bf_t_bfm(args, out, err); }

typedef struct pairset {
  int64_t q[512], c[512];
  double s[512];
  int n, dup;
} pairset;

/* The store's hits as (query, candidate, score); counts duplicate pairs. */
static int read_hits(const char *path, pairset *p)
{
  bf_store *st = NULL;
  bf_hit *h = NULL;
  size_t n = 0;
  memset(p, 0, sizeof *p);
  if (bf_store_open(&st, path, BF_STORE_READ, NULL))
    return -1;
  int rc = bf_store_query_hits(st, NULL, &h, &n);
  for (size_t i = 0; i < n && p->n < 512; i++) {
    for (int j = 0; j < p->n; j++)
      if (p->q[j] == h[i].query && p->c[j] == h[i].candidate)
        p->dup++;
    p->q[p->n] = h[i].query;
    p->c[p->n] = h[i].candidate;
    p->s[p->n++] = h[i].score;
  }
  free(h);
  bf_store_close(st);
  return rc;
}

static int same_pairs(const pairset *a, const pairset *b)
{
  if (a->n != b->n)
    return 0;
  for (int i = 0; i < a->n; i++) {
    int found = 0;
    for (int j = 0; j < b->n && !found; j++)
      found = a->q[i] == b->q[j] && a->c[i] == b->c[j] && a->s[i] == b->s[j];
    if (!found)
      return 0;
  }
  return 1;
}

static int nsearched(const char *path)
{
  bf_store *st = NULL;
  if (bf_store_open(&st, path, BF_STORE_READ, NULL))
    return -1;
  int n = 0;
  for (size_t i = 0; i < bf_store_nitems(st); i++)
    n += bf_store_items(st)[i].searched != 0;
  bf_store_close(st);
  return n;
}



/* ---- library cases ---- */
static char lstore[4300];

/* A copy of the library store, indexed for the prefilter so a batch is a single transaction. */
static int fresh_copy(const char *dst) { return bf_t_copy_store(lstore, dst); }


static int run_lib(const char *path, const bf_batch_options *o, bf_batch_stats *s)
{
  bf_store *st = NULL;
  int ret = bf_store_open(&st, path, BF_STORE_WRITE, "tester");
  if (!ret)
    ret = bf_batch_run(st, o, s);
  bf_store_close(st);
  return ret;
}

static bf_batch_options lib_opts(void)
{
  bf_batch_options o = BF_BATCH_OPTIONS_INIT;
  o.keep = 4;
  o.screen = 3;
  o.min_score = 0; /* every compared pair of different owners is a hit: the sets say more */
  o.threads = 2;
  return o;
}

static hitrow ref_rows[512];
static int nref;

/* both directions computed vs each unordered pair once: the same hits (pairs, scores, ranks) */
static void lib_pairs_once_same_hits(void)
{
  char a[4300], b[4300];
  snprintf(a, sizeof a, "%s/both.bfm", dir);
  snprintf(b, sizeof b, "%s/once.bfm", dir);
  CHECK(fresh_copy(a) == 0 && fresh_copy(b) == 0);
  bf_batch_options o = lib_opts();
  bf_batch_stats sa, sb;
  o.reuse = 0;
  CHECKF(run_lib(a, &o, &sa) == 0, "%s", bf_error_last());
  o.reuse = 1;
  CHECKF(run_lib(b, &o, &sb) == 0, "%s", bf_error_last());
  hitrow rb[512];
  int da, db, nb;
  nref = hit_rows(a, ref_rows, 512, &da, NULL);
  nb = hit_rows(b, rb, 512, &db, NULL);
  printf("both directions: %zu full CMCs; once: %zu computed + %zu reused; %d hits\n",
         sa.full_pairs, sb.full_pairs, sb.full_reused, nb);
  CHECK(nref > 0 && da == 0 && db == 0);
  CHECKF(same_rows(ref_rows, nref, rb, nb), "%d vs %d hits", nref, nb);
  CHECK(sa.full_reused == 0 && sb.full_reused > 0);
  CHECK(sb.full_pairs + sb.full_reused == sa.full_pairs);
  CHECK(sa.run == 1 && sb.searched == sa.searched && sa.searched == sa.pending);
}

/* the hit rule: never two items of one owner; every stored hit passes bf_batch_is_hit */
static void lib_hit_rule(void)
{
  bf_store *st = NULL;
  bf_batch_options o = lib_opts();
  char b[4300];
  snprintf(b, sizeof b, "%s/once.bfm", dir);
  CHECK(bf_store_open(&st, b, BF_STORE_READ, NULL) == 0);
  int bad = 0;
  for (int i = 0; i < nref; i++)
    bad += !bf_batch_is_hit(st, &o, ref_rows[i].q, ref_rows[i].c, ref_rows[i].s);
  CHECK(bad == 0);
  /* same owner: items 1 and 2 are the two test-fires of firearm SN-0 */
  const bf_item *i1 = bf_store_item(st, 1), *i2 = bf_store_item(st, 2);
  CHECK(i1 && i2 && i1->owner == i2->owner && !bf_batch_is_hit(st, &o, 1, 2, 99));
  o.min_score = NAN; /* the calibrated rule: a hit exactly where bf_lr says LR >= 10 */
  int agree = 1, yes = 0, no = 0;
  for (int cmc = 0; cmc <= 20; cmc++) {
    bf_lr lr;
    CHECK(bf_lr_score(&lr, BF_KIND_CARTRIDGE, cmc, 0, NULL) == 0);
    int hit = bf_batch_is_hit(st, &o, 1, 3, cmc);
    agree &= hit == (lr.log10_lr >= 1.0);
    yes += hit, no += !hit;
  }
  CHECK(agree && yes > 0 && no > 0 && !bf_batch_is_hit(st, &o, 1, 3, 0) && bf_batch_is_hit(st, &o, 1, 3, 20));
  CHECK(!bf_batch_is_hit(st, &o, 1, 3, NAN) && !bf_batch_is_hit(st, &o, 1, 4242, 50));
  bf_store_close(st);
}

typedef struct prog {
  int calls, bad, omp_max; /* omp_max: the most OpenMP threads a region would start, seen here */
  size_t last, pending;
} prog;

static void on_prog(void *ctx, const bf_batch_stats *s)
{
  prog *p = ctx;
  if (p->calls++ && s->searched < p->last)
    p->bad++;
  p->last = s->searched;
  p->pending = s->pending;
  if (omp_get_max_threads() > p->omp_max)
    p->omp_max = omp_get_max_threads();
}

/* run ids, --limit and resuming: two partial runs then the rest give the uninterrupted hits */
static void lib_resume_and_progress(void)
{
  char a[4300];
  snprintf(a, sizeof a, "%s/resume.bfm", dir);
  CHECK(fresh_copy(a) == 0);
  bf_batch_options o = lib_opts();
  o.group = 2;
  o.limit = 3;
  o.threads = 1; /* the whole run on one thread (the CMC's own loops too), then the default again */
  prog p = {0, 0, 0, 0, 0};
  o.progress = on_prog;
  o.progress_ctx = &p;
  bf_batch_stats s;
  int omp_default = omp_get_max_threads();
  omp_set_num_threads(3);
  CHECK(run_lib(a, &o, &s) == 0 && s.run == 1 && s.searched == 3 && s.pending == 3);
  CHECK(p.calls == 3 && p.bad == 0 && p.last == 3); /* planning + 2 groups (2 + 1) */
  CHECKF(p.omp_max == 1 && omp_get_max_threads() == 3, "threads %d during, %d after", p.omp_max,
         omp_get_max_threads());
  omp_set_num_threads(omp_default);
  o.threads = 2;
  CHECK(run_lib(a, &o, &s) == 0 && s.run == 2 && s.searched == 3 && s.searched_before == 3);
  o.limit = -1;
  CHECK(run_lib(a, &o, &s) == 0 && s.run == 3 && s.searched == 3 * NF - 6);
  CHECK(run_lib(a, &o, &s) == 0 && s.pending == 0 && s.searched == 0 && s.run == 4);
  hitrow r[512];
  int d, n = hit_rows(a, r, 512, &d, NULL);
  /* run ids differ, (query, candidate, score, rank) do not */
  CHECKF(d == 0 && same_rows(ref_rows, nref, r, n), "%d vs %d hits, %d duplicated", n, nref, d);
  o.group = 0;
  CHECK(run_lib(a, &o, &s) == BF_EINVAL);
}

typedef struct notes {
  int n, cand;
  int64_t item;
} notes;

static void on_note(void *ctx, int64_t item, const char *msg)
{
  notes *nt = ctx;
  if (item > 0) { /* an item left unsearched */
    nt->n++;
    nt->item = item;
  } else /* a candidate that could not be compared in another item's search */
    nt->cand++;
  printf("note: item %lld: %s\n", (long long)item, msg);
}

/* an item whose stored feature has no valid surface (but a descriptor) is reported and left
 * unsearched; every other item is searched */
static void lib_bad_item(void)
{
  char a[4300];
  snprintf(a, sizeof a, "%s/bad.bfm", dir);
  CHECK(fresh_copy(a) == 0);
  int64_t item = add_bad_item(a);
  CHECKF(item > 0, "%s", bf_error_last());
  bf_batch_options o = lib_opts();
  notes nt = {0, 0, 0};
  o.note = on_note;
  o.note_ctx = &nt;
  bf_batch_stats s;
  CHECKF(run_lib(a, &o, &s) == 0, "%s", bf_error_last());
  CHECK(nt.n == 1 && nt.item == item && s.failed_items == 1);
  /* as a candidate of the others it is merely unscored: poor data is no failure of the run (a
   * damaged one is: damaged_candidate) */
  CHECK(nt.cand == 0 && s.full_failed == 0);
  CHECK(s.searched == 3 * NF && nsearched(a) == 3 * NF);
}

/* every allocation failure on the batch path: an error, the store file byte-identical, no
 * leak (ASan); once no failure fires, the hits are the reference's */
static void lib_alloc_sweep(void)
{
  char a[4300], sha0[72], sha1[72];
  snprintf(a, sizeof a, "%s/sweep.bfm", dir);
  CHECK(fresh_copy(a) == 0);
  bf_t_file_sha(sha0, a);
  bf_batch_options o = lib_opts();
  o.group = 64; /* the whole run is one transaction */
  o.threads = 1;
  int step = getenv("BF_QUICK") ? 7 : 1, failures = 0, unchanged = 0, done = 0;
  for (long n = 1; n < 100000 && !done; n += step) {
    bf_store *st = NULL;
    int ret = bf_store_open(&st, a, BF_STORE_WRITE, "tester");
    bf_batch_stats s;
    if (!ret) {
      bf_alloc_fail(n, 1);
      ret = bf_batch_run(st, &o, &s);
      int fired = bf_alloc_fired();
      bf_alloc_fail(0, 0);
      if (!fired) {
        CHECKF(ret == 0, "n=%ld: %s", n, bf_error_last());
        done = 1;
      } else {
        failures++;
        CHECKF(ret != 0, "n=%ld: an allocation failed but the run reported success", n);
      }
    }
    bf_store_close(st);
    if (!done) {
      bf_t_file_sha(sha1, a);
      unchanged += !strcmp(sha0, sha1);
      if (strcmp(sha0, sha1)) {
        CHECKF(0, "n=%ld: the store changed after a failed run", n);
        fresh_copy(a);
      }
    }
  }
  printf("allocation sweep: %d failing runs, %d left the store unchanged\n", failures, unchanged);
  CHECK(done && failures * step > 40 && unchanged == failures); /* ~60 allocation points */
  hitrow r[512];
  int d, n = hit_rows(a, r, 512, &d, NULL);
  CHECK(d == 0 && same_rows(ref_rows, nref, r, n));
}

static void batch_resumable(void)
{
  char ref[4300], args[20000];
  snprintf(ref, sizeof ref, "%s/ref.bfm", dir);
  CHECK(bf_t_copy_store(store, ref) == 0);
  int quick = getenv("BF_QUICK") != NULL;
  /* kill -9 while it runs (one item per commit), `bfm hits` reading all the while */
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    char lg[4300];
    snprintf(lg, sizeof lg, "%s/batch1.log", dir);
    freopen(lg, "w", stdout);
    freopen(lg, "a", stderr);
    execl(BF_BFM_EXE, "bfm", "batch", store, "--keep", "3", "--min-score", "0", "--group", "1",
          (char *)NULL);
    _exit(127);
  }
  int reads = 0, read_fail = 0, killed = 0;
  pairset p;
  for (int t = 0; t < 6000; t++) {
    snprintf(args, sizeof args, "hits '%s' --format csv", store);
    int r = bfm(args);
    reads++;
    if (r != 0) {
      read_fail++;
      fprintf(stderr, "bfm hits during batch: exit %d: %s\n", r, bf_t_read(err));
    }
    int ns = nsearched(store);
    if (ns >= 2) { /* at least two groups committed: kill in the middle of the run */
      kill(pid, SIGKILL);
      killed = 1;
      break;
    }
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      pid = 0;
      break;
    }
    usleep(20000);
  }
  if (pid > 0)
    waitpid(pid, NULL, 0);
  CHECKF(read_fail == 0, "%d of %d reads failed", read_fail, reads);
  CHECK(reads > 1);
  CHECKF(killed, "batch finished before it could be killed");
  int ns = nsearched(store);
  CHECK(read_hits(store, &p) == 0 && p.dup == 0);
  printf("killed after %d items searched, %d hits, %d reads during the run\n", ns, p.n, reads);
  CHECK(ns >= 2 && ns < 3 * NF);
  /* every hit belongs to a searched item: nothing half-written */
  /* rerun: continues */
  snprintf(args, sizeof args, "batch '%s' --keep 3 --min-score 0 --group 1", store);
  CHECKF(bfm(args) == 0, "%s", bf_t_read(err));
  CHECK(strstr(bf_t_read(out), "items searched") != NULL);
  CHECK(nsearched(store) == 3 * NF);
  pairset after;
  CHECK(read_hits(store, &after) == 0);
  CHECKF(after.dup == 0, "%d duplicate hits", after.dup);
  CHECK(after.n > p.n);
  /* every item got its 3 candidates (score >= 0 always passes) except its own firearm's
   * other test-fires, which are never stored */
  CHECKF(after.n <= 3 * 3 * NF && after.n >= 3 * NF, "%d hits", after.n);
  {
    bf_store *st = NULL;
    int same_owner = 0;
    if (!bf_store_open(&st, store, BF_STORE_READ, NULL)) {
      for (int i = 0; i < after.n; i++) {
        const bf_item *a = bf_store_item(st, after.q[i]), *b = bf_store_item(st, after.c[i]);
        same_owner += a && b && a->owner_type == b->owner_type && a->owner == b->owner;
      }
      bf_store_close(st);
    }
    CHECK(same_owner == 0);
  }
  if (!quick) {
    /* an uninterrupted run of the same store gives the same hits */
    snprintf(args, sizeof args, "batch '%s' --keep 3 --min-score 0 --group 4 --quiet", ref);
    CHECKF(bfm(args) == 0, "%s", bf_t_read(err));
    pairset r2;
    CHECK(read_hits(ref, &r2) == 0);
    CHECKF(same_pairs(&after, &r2), "resumed run differs from an uninterrupted one (%d vs %d hits)",
           after.n, r2.n);
  }
  /* a third run has nothing to do and adds nothing */
  snprintf(args, sizeof args, "batch '%s' --keep 3 --min-score 0", store);
  CHECK(bfm(args) == 0);
  CHECK(strstr(bf_t_read(err), "0 items to search") != NULL);
  pairset again;
  CHECK(read_hits(store, &again) == 0 && again.n == after.n);
}

/* A candidate whose stored feature fails its checksum: match finishes its ranking but says so
 * on stderr (naming the item and dataset) and exits 1; nothing is silent (issue 14 item 10). */
static void damaged_candidate(void)
{
  char dmg[4300], args[9000];
  snprintf(dmg, sizeof dmg, "%s/damaged.bfm", dir);
  CHECK(bf_t_copy_store(lstore, dmg) == 0);
  CHECK(flip_in_segments(dmg, "/features/cartridge/data") == 64); /* the first chunk: item 1 */
  snprintf(args, sizeof args, "match '%s' %d --top 3", dmg, 3 * NF);
  int rc = bfm(args);
  const char *e = bf_t_read(err);
  CHECKF(rc == 1 && strstr(e, "failed (left unscored)") && strstr(e, "/features/cartridge"),
         "exit %d: %s", rc, e);
  CHECK(strstr(bf_t_read(out), "rank") != NULL); /* the ranking is still printed */
}

static void queries(void)
{
  char args[9000], sha0[72], sha1[72];
  /* hits for a case, for a firearm, formats */
  snprintf(args, sizeof args, "hits '%s' --case C-100", store);
  CHECK(bfm(args) == 0 && strstr(bf_t_read(out), "C-100"));
  snprintf(args, sizeof args, "hits '%s' --firearm SN-1 --format json", store);
  CHECK(bfm(args) == 0 && strstr(bf_t_read(out), "\"serial\": \"SN-1\"") && bf_t_read(out)[0] == '[');
  snprintf(args, sizeof args, "hits '%s' --min-score 1e9 --format csv", store);
  CHECK(bfm(args) == 0 && !strchr(strchr(bf_t_read(out), '\n') + 1, '\n')); /* header only */
  snprintf(args, sizeof args, "hits '%s' --firearm NOPE", store);
  CHECK(bfm(args) == 1 && strstr(bf_t_read(err), "no firearm with serial NOPE"));
  snprintf(args, sizeof args, "hits '%s' --status maybe", store);
  CHECK(bfm(args) == 2);

  /* review: confirm the best hit of case C-100 */
  bf_store *st = NULL;
  bf_hit *h = NULL;
  size_t nh = 0;
  bf_hit_filter f = BF_HIT_FILTER_INIT;
  f.case_no = "C-100";
  int64_t hid = 0;
  if (!bf_store_open(&st, store, BF_STORE_READ, NULL) && !bf_store_query_hits(st, &f, &h, &nh) && nh)
    hid = h[0].id;
  free(h);
  bf_store_close(st);
  CHECK(hid > 0);
  snprintf(args, sizeof args, "review '%s' %lld --confirm --examiner 'J. Doe' --note 'agreed'", store,
           (long long)hid);
  CHECKF(bfm(args) == 0, "%s", bf_t_read(err));
  st = NULL;
  if (!bf_store_open(&st, store, BF_STORE_READ, NULL)) {
    bf_hit_filter c = BF_HIT_FILTER_INIT;
    c.status = BF_HIT_CONFIRMED;
    CHECK(bf_store_query_hits(st, &c, &h, &nh) == 0 && nh == 1 && h[0].id == hid &&
          !strcmp(h[0].examiner, "J. Doe"));
    free(h);
    bf_audit_rec *au = NULL;
    size_t na = 0;
    int seen = 0;
    CHECK(bf_store_read_audit(st, &au, &na) == 0);
    for (size_t i = 0; i < na; i++)
      seen |= !strcmp(au[i].user, "J. Doe");
    CHECK(seen);
    free(au);
    bf_store_close(st);
  }
  /* unknown hit: message, exit 1, store unchanged */
  bf_t_file_sha(sha0, store);
  snprintf(args, sizeof args, "review '%s' 99999 --reject --examiner X", store);
  CHECK(bfm(args) == 1 && strstr(bf_t_read(err), "99999"));
  snprintf(args, sizeof args, "review '%s' 1 --examiner X", store);
  CHECK(bfm(args) == 2);
  bf_t_file_sha(sha1, store);
  CHECK(!strcmp(sha0, sha1) && sha0[0]);

  /* links: the confirmed hit is one series with firearm and case */
  char dot[4300], png[4300];
  snprintf(dot, sizeof dot, "%s/links.dot", dir);
  snprintf(png, sizeof png, "%s/links.png", dir);
  snprintf(args, sizeof args, "links '%s' --confirmed --dot '%s'", store, dot);
  CHECKF(bfm(args) == 0, "%s", bf_t_read(err));
  CHECK(strstr(bf_t_read(out), "1 linked series") && strstr(bf_t_read(out), "C-100"));
  CHECK(strstr(bf_t_read(dot), "graph linkage") != NULL);
  snprintf(args, sizeof args, "links '%s' --json", store);
  CHECK(bfm(args) == 0 && strstr(bf_t_read(out), "\"series\": 1"));
  if (system("command -v dot >/dev/null 2>&1") == 0) {
    snprintf(args, sizeof args, "links '%s' --png '%s'", store, png);
    CHECKF(bfm(args) == 0, "%s", bf_t_read(err));
    struct stat sb;
    CHECK(stat(png, &sb) == 0 && sb.st_size > 100);
  }
  snprintf(args, sizeof args, "links '%s' --confirmed --min-score 3", store);
  CHECK(bfm(args) == 2);

  /* match: by item id, by a scan given on the spot; unknown item; failing scan */
  snprintf(args, sizeof args, "match '%s' 3 --top 3 --keep 4", store);
  CHECKF(bfm(args) == 0, "%s", bf_t_read(err));
  CHECK(strstr(bf_t_read(out), "rank") && strstr(bf_t_read(out), "trace: serial="));
  snprintf(args, sizeof args, "match '%s' '%s/F1-2.x3p' --top 2 --keep 3 --json", store, dir);
  CHECKF(bfm(args) == 0, "%s", bf_t_read(err));
  CHECK(strstr(bf_t_read(out), "\"candidates\"") && strstr(bf_t_read(out), "\"rank\": 2"));
  bf_t_file_sha(sha0, store);
  snprintf(args, sizeof args, "match '%s' 4242", store);
  CHECK(bfm(args) == 1 && strstr(bf_t_read(err), "no item 4242"));
  char bad[4300];
  snprintf(bad, sizeof bad, "%s/broken.x3p", dir);
  FILE *fb = fopen(bad, "w");
  fputs("PK\003\004 this is not a zip", fb);
  fclose(fb);
  snprintf(args, sizeof args, "match '%s' '%s' --kind cartridge", store, bad);
  CHECK(bfm(args) == 1 && strstr(bf_t_read(err), "broken.x3p"));
  bf_t_file_sha(sha1, store);
  CHECK(!strcmp(sha0, sha1));

  /* show: a picture of the confirmed hit; unknown hit */
  snprintf(args, sizeof args, "show '%s' %lld --png '%s/hit.png'", store, (long long)hid, dir);
  CHECKF(bfm(args) == 0, "%s", bf_t_read(err));
  snprintf(png, sizeof png, "%s/hit.png", dir);
  struct stat sb;
  CHECK(stat(png, &sb) == 0 && sb.st_size > 100);
  snprintf(args, sizeof args, "show '%s' 99999 --png '%s/x.png'", store, dir);
  CHECK(bfm(args) == 1 && strstr(bf_t_read(err), "no hit 99999"));
}

static void bad_stores(void)
{
  char empty[4300], args[20000], sha0[72], sha1[72];
  snprintf(empty, sizeof empty, "%s/empty.bfm", dir);
  CHECK(bf_store_create(empty, "tester") == 0);
  bf_t_file_sha(sha0, empty);
  snprintf(args, sizeof args, "batch '%s'", empty);
  CHECK(bfm(args) == 1 && strstr(bf_t_read(err), "no items"));
  snprintf(args, sizeof args, "match '%s' '%s/F0-2.x3p'", empty, dir);
  CHECK(bfm(args) == 1 && strstr(bf_t_read(err), "no stored cartridge items"));
  snprintf(args, sizeof args, "hits '%s'", empty);
  CHECK(bfm(args) == 0 && strstr(bf_t_read(out), "0 hits"));
  snprintf(args, sizeof args, "links '%s'", empty);
  CHECK(bfm(args) == 0 && strstr(bf_t_read(out), "0 linked series"));
  bf_t_file_sha(sha1, empty);
  CHECK(!strcmp(sha0, sha1));
  /* another schema version */
  char other[4300];
  snprintf(other, sizeof other, "%s/other.bfm", dir);
  CHECK(bf_t_copy_store(empty, other) == 0);
  hid_t f = H5Fopen(other, H5F_ACC_RDWR, H5P_DEFAULT);
  CHECK(f >= 0);
  if (f >= 0) {
    hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
    int v = 99;
    CHECK(a >= 0 && H5Awrite(a, H5T_NATIVE_INT, &v) >= 0);
    H5Aclose(a);
    H5Fclose(f);
  }
  bf_t_file_sha(sha0, other);
  const char *cmds[] = {"batch '%s'", "hits '%s'", "links '%s'", "match '%s' 1", "show '%s' 1 --png /tmp/x.png",
                        "review '%s' 1 --confirm --examiner X"};
  for (int i = 0; i < 6; i++) {
    char c[4400];
    snprintf(c, sizeof c, cmds[i], other);
    int r = bfm(c);
    CHECKF(r == 1 && strstr(bf_t_read(err), "schema"), "%s: exit %d: %s", c, r, bf_t_read(err));
  }
  bf_t_file_sha(sha1, other);
  CHECK(!strcmp(sha0, sha1));
  /* not a store at all */
  snprintf(args, sizeof args, "hits '%s/F0-0.x3p'", dir);
  CHECK(bfm(args) == 1);
  snprintf(args, sizeof args, "batch '%s/nonexistent.bfm'", dir);
  CHECK(bfm(args) == 1);
}

int main(void)
{
  snprintf(dir, sizeof dir, "%s", bf_t_tmpdir("batch"));
  snprintf(store, sizeof store, "%s/s.bfm", dir);
  snprintf(out, sizeof out, "%s/out.txt", dir);
  snprintf(err, sizeof err, "%s/err.txt", dir);
  CHECK(make_store(store, dir) == 0);
  /* the library cases work on an indexed copy */
  snprintf(lstore, sizeof lstore, "%s/lib.bfm", dir);
  {
    CHECK(bf_t_copy_store(store, lstore) == 0);
    bf_store *st = NULL;
    bf_prefilter *pf = NULL;
    size_t added = 0;
    CHECK(bf_store_open(&st, lstore, BF_STORE_WRITE, "tester") == 0 &&
          bf_prefilter_new(&pf, NULL) == 0 && bf_store_begin(st) == 0 &&
          bf_search_store_index(st, pf, BF_KIND_CARTRIDGE, &added, NULL) == 0 &&
          bf_store_commit(st) == 0 && added == 3 * NF);
    bf_prefilter_free(pf);
    bf_store_close(st);
  }
  lib_pairs_once_same_hits();
  lib_hit_rule();
  lib_resume_and_progress();
  lib_bad_item();
  lib_alloc_sweep();
  batch_resumable();
  queries();
  damaged_candidate();
  bad_stores();
  return bf_t_done();
}
