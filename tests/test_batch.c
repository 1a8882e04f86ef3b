/* CLI-level tests of the search commands on a small synthetic store built through the store API:
 * batch is resumable (kill -9 mid-run, rerun: same hits as an uninterrupted run, none twice),
 * `bfm hits` keeps working while batch writes, hits/review/links/match/show answer, and bad
 * input (unknown item or hit, empty store, failing query scan, another schema version) gives a
 * clear message, a non-zero exit and leaves the store unchanged. */
#include "bf_error.h"
#include "bf_hash.h"
#include "bf_store.h"
#include "bf_synth.h"
#include "bf_test.h"
#include "bf_x3p.h"

#include <hdf5.h>
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

/* NF firearms with 2 test-fired cases each, and one crime-scene case per firearm (its third
 * firing), small processed synthetic breech faces. Writes the evidence scans as X3P too. */
enum { NF = 3 };
static int make_store(const char *path)
{
  bf_synth_opts so = BF_SYNTH_OPTS_INIT;
  so.cart_diameter = 1600; /* small: the CLI plumbing is under test, not accuracy */
  so.max_rotation = 20;
  bf_synth *g = NULL;
  bf_store *st = NULL;
  int rc = bf_synth_new(&g, &so);
  if (!rc)
    rc = bf_store_create(path, "tester");
  if (!rc)
    rc = bf_store_open(&st, path, BF_STORE_WRITE, "tester");
  if (!rc)
    rc = bf_store_begin(st);
  for (int fa = 0; fa < NF && !rc; fa++) {
    bf_firearm f;
    memset(&f, 0, sizeof f);
    snprintf(f.serial, sizeof f.serial, "SN-%d", fa);
    snprintf(f.make, sizeof f.make, "Ruger");
    snprintf(f.model, sizeof f.model, "P95");
    snprintf(f.calibre, sizeof f.calibre, "9mm");
    snprintf(f.export_country, sizeof f.export_country, "Utopia");
    int64_t fid, eid, item;
    rc = bf_store_add_firearm(st, &fid, &f);
    bf_evidence e;
    memset(&e, 0, sizeof e);
    snprintf(e.case_no, sizeof e.case_no, "C-%d", 100 + fa);
    snprintf(e.item, sizeof e.item, "1");
    snprintf(e.agency, sizeof e.agency, "Met");
    e.kind = BF_KIND_CARTRIDGE;
    if (!rc)
      rc = bf_store_add_evidence(st, &eid, &e);
    for (int k = 0; k < 3 && !rc; k++) {
      bf_surface *s = NULL;
      bf_feature *ft = NULL;
      char x3p[4300];
      snprintf(x3p, sizeof x3p, "%s/F%d-%d.x3p", dir, fa, k);
      rc = bf_synth_cartridge(&s, g, fa, k, NULL);
      if (!rc)
        rc = bf_x3p_write(x3p, s, 'F');
      uint8_t *bytes = NULL;
      size_t nb = 0;
      FILE *fp = fopen(x3p, "rb");
      if (!rc && fp) {
        fseek(fp, 0, SEEK_END);
        nb = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        bytes = malloc(nb);
        if (fread(bytes, 1, nb, fp) != nb)
          rc = BF_EIO;
      }
      if (fp)
        fclose(fp);
      if (!rc)
        rc = bf_store_add_item(st, &item, BF_KIND_CARTRIDGE, "9mm",
                               k < 2 ? BF_OWNER_FIREARM : BF_OWNER_EVIDENCE, k < 2 ? fid : eid);
      int64_t sid = 0;
      if (!rc)
        rc = bf_store_add_scan(st, &sid, item, 0, bytes, nb, x3p, s);
      if (!rc)
        rc = bf_feature_new(&ft, BF_KIND_CARTRIDGE, s->nx, s->ny, s->dx, s->dy);
      if (!rc) {
        memcpy(ft->z, s->z, sizeof(float) * s->nx * s->ny);
        ft->version = 1;
        rc = bf_store_put_feature(st, "cartridge", item, sid, ft);
      }
      free(bytes);
      bf_feature_free(ft);
      bf_surface_free(s);
    }
  }
  if (!rc)
    rc = bf_store_commit(st);
  if (rc)
    fprintf(stderr, "make_store: %s\n", bf_error_last());
  bf_store_close(st);
  bf_synth_free(g);
  return rc;
}

static void batch_resumable(void)
{
  char ref[4300], args[20000];
  snprintf(ref, sizeof ref, "%s/ref.bfm", dir);
  snprintf(args, sizeof args, "cp '%s' '%s' && cp -r '%s.d' '%s.d'", store, ref, store, ref); /* a store is a file + its segment folder */
  CHECK(system(args) == 0);
  int quick = getenv("BF_QUICK") != NULL;
  /* kill -9 while it runs (one item per commit), `bfm hits` reading all the while */
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
  snprintf(args, sizeof args, "cp '%s' '%s' && cp -r '%s.d' '%s.d'", empty, other, empty, other);
  CHECK(system(args) == 0);
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
  CHECK(make_store(store) == 0);
  batch_resumable();
  queries();
  bad_stores();
  return bf_t_done();
}
