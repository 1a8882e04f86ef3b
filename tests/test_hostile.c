/* Issue 14 at the command line: every hostile input a one-line refusal or a correct result,
 * and no output option able to destroy data. Each case is built here (no ../shared needed). */
#include "bf_bullet.h"
#include "bf_error.h"
#include "bf_out.h"
#include "bf_store.h"
#include "bf_text.h"
#include "bf_x3p.h"
#include "bf_test.h"

#if defined(__GNUC__) && !defined(__clang__) /* clang has no such warning */
#pragma GCC diagnostic ignored "-Wformat-truncation" /* test paths are short */
#endif

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <unistd.h>

static const char *dir;
static char out_path[4300], err_path[4300];
static int cases;

/* Runs bfm (killed after 60 s, so a hang fails instead of blocking the suite); returns its exit
 * status. stdout and stderr land in out_path and err_path. */
static int bfm(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bfm(const char *fmt, ...)
{
  char args[8192], cmd[16384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "timeout 60 '%s' %s >'%s' 2>'%s' </dev/null", BF_BFM_EXE, args, out_path,
           err_path);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Exit 1 and at most maxl stderr lines (the last naming path and holding words). */
static void refused_n(int rc, const char *path, const char *words, const char *what, int maxl)
{
  const char *e = bf_t_read(err_path);
  int lines = 0;
  for (const char *c = e; *c; c++)
    lines += *c == '\n';
  CHECKF(rc == 1, "%s: exit %d (want 1): %s", what, rc, e);
  CHECKF(lines >= 1 && lines <= maxl, "%s: %d stderr lines: %s", what, lines, e);
  CHECKF(!path || strstr(e, path), "%s: names %s: %s", what, path, e);
  CHECKF(!words || strstr(e, words), "%s: says '%s': %s", what, words, e);
  cases++;
}

static void refused(int rc, const char *path, const char *words, const char *what)
{
  refused_n(rc, path, words, what, 1);
}

/* No byte that drives a terminal: no control but '\n', no C1 CSI, no bidi override. */
static int clean_text(const char *s)
{
  for (const unsigned char *c = (const unsigned char *)s; *c; c++)
    if ((*c < 0x20 && *c != '\n') || *c == 0x7f)
      return 0;
  return !strstr(s, "\xc2\x9b") && !strstr(s, "\xe2\x80\xae");
}

static int count_lines(const char *s)
{
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

static const char *in_dir(char *buf, const char *name)
{
  snprintf(buf, 4300, "%s/%s", dir, name);
  return buf;
}

/* A store whose ids and free text carry newlines, escapes and a C1 CSI: what ingest refuses
 * now, but an older store can hold. One firearm, one evidence item, one confirmed hit. */
static void make_store(const char *path)
{
  bf_store *st = NULL;
  CHECK(bf_store_create(path, "tester") == 0);
  CHECK(bf_store_open(&st, path, BF_STORE_WRITE, "tester") == 0);
  CHECK(bf_store_begin(st) == 0);
  bf_firearm f = {0};
  snprintf(f.serial, sizeof f.serial, "SN1\n  case     FAKE-CASE");
  snprintf(f.make, sizeof f.make, "Acme\x1b[2J");
  snprintf(f.model, sizeof f.model, "M\xc2\x9b" "31m");
  snprintf(f.markings, sizeof f.markings, "ok\r\n                            trace: serial=FORGED");
  snprintf(f.consignee, sizeof f.consignee, "=HYPERLINK(\"http://x.invalid/\",\"open\")");
  bf_evidence e = {0};
  snprintf(e.case_no, sizeof e.case_no, "C1\nseries 9: 99 links, best score 1e+09");
  snprintf(e.item, sizeof e.item, "1");
  snprintf(e.agency, sizeof e.agency, "PD\x1b]0;owned\a");
  e.kind = BF_KIND_CARTRIDGE;
  int64_t fid = 0, eid = 0, it[2] = {0, 0};
  CHECK(bf_store_add_firearm(st, &fid, &f) == 0);
  CHECK(bf_store_add_evidence(st, &eid, &e) == 0);
  CHECK(bf_store_add_item(st, &it[0], BF_KIND_CARTRIDGE, "9mm", BF_OWNER_FIREARM, fid) == 0);
  CHECK(bf_store_add_item(st, &it[1], BF_KIND_CARTRIDGE, "9mm", BF_OWNER_EVIDENCE, eid) == 0);
  bf_hit h = {0};
  h.query = it[1], h.candidate = it[0], h.score = 30, h.run = 1;
  size_t added = 0;
  CHECK(bf_store_add_hits(st, &h, 1, &added) == 0 && added == 1);
  CHECK(bf_store_commit(st) == 0);
  bf_hit *all = NULL;
  size_t n = 0;
  CHECK(bf_store_query_hits(st, NULL, &all, &n) == 0 && n == 1);
  if (n == 1) {
    CHECK(bf_store_begin(st) == 0);
    CHECK(bf_store_set_hit_status(st, all[0].id, BF_HIT_CONFIRMED, "ex\naminer",
                                  "fine\n 99 hit 1e9 confirmed FAKE") == 0);
    CHECK(bf_store_commit(st) == 0);
  }
  free(all);
  bf_store_close(st);
}

static void test_escaping(const char *store)
{
  int rc = bfm("hits '%s'", store);
  const char *o = bf_t_read(out_path);
  CHECKF(rc == 0 && clean_text(o), "hits: exit %d, no raw controls:\n%s", rc, o);
  CHECKF(strstr(o, "SN1\\n  case     FAKE-CASE") != NULL, "hits shows the serial escaped:\n%s", o);
  CHECKF(!strstr(o, "\n  case     FAKE") && !strstr(o, "\n 99 hit"), "hits: no fabricated line:\n%s", o);
  cases++;
  rc = bfm("links '%s'", store);
  o = bf_t_read(out_path);
  CHECKF(rc == 0 && clean_text(o) && count_lines(o) == 4, "links: 4 lines, no raw controls:\n%s", o);
  CHECKF(!strstr(o, "\nseries 9"), "links: no fabricated series:\n%s", o);
  cases++;
  rc = bfm("hits '%s' --format csv", store);
  o = bf_t_read(out_path);
  CHECKF(rc == 0 && clean_text(o) && count_lines(o) == 2, "hits csv: header and one row:\n%s", o);
  cases++;
  rc = bfm("hits '%s' --json", store);
  o = bf_t_read(out_path);
  int raw = 0;
  for (const char *c = o; *c; c++)
    raw += (unsigned char)*c < 0x20 && *c != '\n';
  CHECKF(rc == 0 && !raw && strstr(o, "\\u001b[2J"), "hits json: controls as \\u escapes:\n%s", o);
  cases++;
  const char *what[] = {"firearms", "evidence", "hits"};
  int rows[] = {1, 1, 1};
  for (int i = 0; i < 3; i++) {
    rc = bfm("export '%s' --what %s", store, what[i]);
    o = bf_t_read(out_path);
    CHECKF(rc == 0 && clean_text(o) && count_lines(o) == 1 + rows[i], "export %s csv: one line a row:\n%s",
           what[i], o);
    if (i == 0)
      CHECKF(strstr(o, "\"'=HYPERLINK(") && !strstr(o, ",=HYPERLINK") && !strstr(o, "\"=HYPERLINK"),
             "export firearms csv: a formula-like field is neutralised:\n%s", o);
    rc = bfm("export '%s' --what %s --format json", store, what[i]);
    o = bf_t_read(out_path);
    raw = 0;
    for (const char *c = o; *c; c++)
      raw += (unsigned char)*c < 0x20 && *c != '\n';
    CHECKF(rc == 0 && !raw, "export %s json: no raw controls:\n%s", what[i], o);
    cases++;
  }
  /* the header's free text of a scan: XML 1.0 allows C1 controls (U+009B is a CSI) */
  bf_surface *s = NULL;
  CHECK(bf_surface_new(&s, 32, 32, 1.5625, 1.5625) == 0);
  if (s) {
    for (int i = 0; i < 32 * 32; i++)
      s->z[i] = (float)sin(i * 0.37);
    snprintf(s->meta.creator, sizeof s->meta.creator, "lab\xc2\x9b" "2J\xe2\x80\xae" "evil");
    char p[4300];
    in_dir(p, "c1.x3p");
    CHECK(bf_x3p_write(p, s, 'D') == 0);
    rc = bfm("info '%s'", p);
    o = bf_t_read(out_path);
    CHECKF(rc == 0 && clean_text(o) && !strstr(o, "\xe2\x80\xae") && strstr(o, "\\u{009B}2J"),
           "info escapes the creator:\n%s", o);
    cases++;
    bf_surface_free(s);
  }
}

/* Outputs that would destroy the store, and a symlink planted where a temporary goes. */
static void test_outputs(const char *store)
{
  char before[72], after[72], p[4300], q[4300], victim[4300];
  bf_t_file_sha(before, store);
  int rc = bfm("links '%s' --dot '%s'", store, store);
  refused(rc, store, "refused as an output", "links --dot STORE");
  rc = bfm("export '%s' --what audit -o '%s'", store, store);
  refused(rc, store, "refused as an output", "export -o STORE");
  snprintf(p, sizeof p, "%s/./s.h5", dir); /* another spelling */
  rc = bfm("export '%s' --what hits -o '%s'", store, p);
  refused(rc, p, "refused as an output", "export -o DIR/./STORE");
  in_dir(q, "alias.h5");
  unlink(q);
  CHECK(symlink(store, q) == 0);
  rc = bfm("links '%s' --dot '%s'", store, q);
  refused(rc, q, "refused as an output", "links --dot symlink-to-store");
  in_dir(q, "hard.h5");
  unlink(q);
  CHECK(link(store, q) == 0);
  rc = bfm("export '%s' --what firearms -o '%s'", store, q);
  refused(rc, q, "refused as an output", "export -o hard link of the store");
  snprintf(q, sizeof q, "%s.lock", store);
  rc = bfm("export '%s' --what firearms -o '%s'", store, q);
  refused(rc, q, "refused as an output", "export -o STORE.lock");
  rc = bfm("show '%s' 1 --png '%s'", store, store);
  refused(rc, store, "refused as an output", "show --png STORE");
  rc = bfm("links '%s' --dot '%s'", store, dir);
  refused(rc, dir, "folder", "links --dot FOLDER");
  bf_t_file_sha(after, store);
  CHECKF(!strcmp(before, after) && before[0], "the store is unchanged (%s / %s)", before, after);

  /* a bad --what leaves an existing -o file as it was; a good one replaces it whole */
  in_dir(p, "keep.csv");
  FILE *f = fopen(p, "w");
  if (f) {
    fputs("precious\n", f);
    fclose(f);
  }
  rc = bfm("export '%s' --what bogus -o '%s'", store, p);
  CHECKF(rc != 0 && !strcmp(bf_t_read(p), "precious\n"), "export --what bogus: exit %d, file kept", rc);
  cases++;
  rc = bfm("export '%s' --what firearms -o '%s'", store, p);
  CHECKF(rc == 0 && !strncmp(bf_t_read(p), "id,", 3), "export -o writes: %s", bf_t_read(p));
  cases++;

  /* planted symlinks where the temporaries used to go: their targets stay untouched */
  in_dir(victim, "victim.txt");
  f = fopen(victim, "w");
  if (f) {
    fputs("victim\n", f);
    fclose(f);
  }
  in_dir(p, "out.dot");
  snprintf(q, sizeof q, "%s.tmp", p);
  unlink(q);
  CHECK(symlink(victim, q) == 0);
  rc = bfm("links '%s' --dot '%s'", store, p);
  CHECKF(rc == 0 && !strcmp(bf_t_read(victim), "victim\n") && strstr(bf_t_read(p), "graph linkage"),
         "links --dot beside a planted OUT.dot.tmp: exit %d, victim kept", rc);
  cases++;
  in_dir(p, "out.png");
  snprintf(q, sizeof q, "%s.dot.tmp", p);
  unlink(q);
  CHECK(symlink(victim, q) == 0);
  rc = bfm("links '%s' --png '%s'", store, p);
  CHECKF(!strcmp(bf_t_read(victim), "victim\n"), "links --png beside a planted OUT.png.dot.tmp: victim kept");
  cases++;

  /* a store kept as a folder (segments): nothing inside it may be an output */
  in_dir(p, "segstore");
  CHECK(mkdir(p, 0755) == 0 || errno == EEXIST);
  CHECK(bf_out_protect(p) == 0);
  snprintf(q, sizeof q, "%s/seg-0001.h5", p);
  CHECKF(bf_out_check(q) == BF_EINVAL, "inside a folder store: %s", bf_error_last());
  in_dir(q, "beside.csv");
  CHECKF(bf_out_check(q) == 0, "beside it is fine: %s", bf_error_last());
  cases++;
}

static void test_inputs(void)
{
  char p[4300];
  /* a FIFO named like a scan: every command refuses it at once instead of hanging */
  in_dir(p, "x.x3p");
  unlink(p);
  CHECK(mkfifo(p, 0644) == 0);
  refused(bfm("info '%s'", p), p, "FIFO", "info FIFO");
  refused(bfm("features '%s'", p), p, "FIFO", "features FIFO");
  refused(bfm("compare '%s' '%s'", p, p), p, "FIFO", "compare FIFO");
  refused(bfm("features --kind bullet '%s'", p), p, "FIFO", "features --kind bullet FIFO");

  /* ingest with a FIFO as the scan (kind guessed, cartridge, bullet) or as the manifest: the row
   * fails at once, the store is unchanged */
  char store[4300], man[4300], before[72], after[72];
  in_dir(store, "ingest.h5");
  CHECK(bfm("init '%s'", store) == 0);
  bf_t_file_sha(before, store);
  const char *kinds[] = {"", "cartridge", "bullet"};
  for (int k = 0; k < 3; k++) {
    in_dir(man, "fifo.csv");
    FILE *f = fopen(man, "w");
    if (f) {
      fprintf(f, "type,serial,make,model,calibre,kind,scans\nfirearm,SN%d,A,M,9mm,%s,x.x3p\n", k, kinds[k]);
      fclose(f);
    }
    refused(bfm("ingest '%s' '%s'", store, man), "x.x3p", "regular file", "ingest FIFO scan");
  }
  in_dir(man, "fifo_manifest.csv");
  unlink(man);
  CHECK(mkfifo(man, 0644) == 0);
  refused(bfm("ingest '%s' '%s'", store, man), man, "regular file", "ingest FIFO manifest");
  bf_t_file_sha(after, store);
  CHECKF(!strcmp(before, after), "ingest of FIFOs left the store unchanged");

  /* a land scanned at 1e-13 m a point: refused at the reader, not a crash in the filter */
  bf_surface *s = NULL;
  CHECK(bf_surface_new(&s, 400, 60, 1e-7, 1e-7) == 0);
  if (s) {
    for (int i = 0; i < 400 * 60; i++)
      s->z[i] = (float)sin(i * 0.1);
    in_dir(p, "tiny.x3p");
    CHECK(bf_x3p_write(p, s, 'D') == 0);
    refused(bfm("features '%s'", p), p, "outside", "features tiny spacing");
    refused(bfm("features --kind bullet '%s'", p), p, "outside", "features --kind bullet tiny spacing");
    /* compare lists the land it left out, then says no land was usable: two lines */
    refused_n(bfm("compare --kind bullet '%s' '%s'", p, p), p, "outside", "compare tiny spacing", 2);
    bf_surface_free(s);
  }
  /* and the filter itself survives any spacing handed to it */
  float in[1000], out[1000];
  for (int i = 0; i < 1000; i++)
    in[i] = (float)sin(i * 0.05);
  const double dxs[] = {1e-7, 1.5625e-6, 0, -1, NAN, 1e300};
  int ok = 1;
  for (size_t k = 0; k < sizeof dxs / sizeof dxs[0]; k++) {
    bf_bullet_gauss_lowpass(out, in, 1000, dxs[k], 250.0);
    for (int i = 0; i < 1000; i++)
      ok &= isnan(out[i]) || fabsf(out[i]) <= 1.0001f;
  }
  CHECKF(ok, "gauss lowpass with absurd spacings returns finite-or-missing values");
  cases++;
}

int main(void)
{
  dir = bf_t_tmpdir("hostile");
  snprintf(out_path, sizeof out_path, "%s/out.txt", dir);
  snprintf(err_path, sizeof err_path, "%s/err.txt", dir);
  char store[4300];
  in_dir(store, "s.h5");
  make_store(store);
  test_escaping(store);
  test_outputs(store);
  test_inputs();
  printf("hostile CLI cases: %d\n", cases);
  return bf_t_done();
}
