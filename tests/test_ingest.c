/* Submitting and ingesting, called through the library (engine/bf_submit.h, bf_query.h,
 * features/bf_scanset.h). Every input is synthesised here (features/synth.c), so a fresh clone
 * runs every case without ../shared. Named cases:
 *   scanset_rule          folders, lists, land numbers from names / by position / explicit
 *   missing_land          a 6-land bullet with land 4 left out scores the same on every path:
 *                         compare (scan set -> features), match on the spot, match of the stored
 *                         item, and the stored features a batch reads
 *   submit_records        firearm / evidence records, a stored serial, duplicates, bad records
 *   manifest_hostile      BOM, a serial repeated with other fields, NUL byte, invalid UTF-8,
 *                         control characters, lands column, bad header
 *   ingest_groups         commit_every groups, per-row events, stats
 *   alloc_fail            every allocation on the submit / submit_many / ingest paths made to
 *                         fail in turn: the store file stays byte-identical (ASan: no leaks) */
#include "bf_alloc.h"
#include "bf_error.h"
#include "bf_query.h"
#include "bf_striae.h"
#include "bf_submit.h"
#include "bf_synth.h"
#include "bf_test.h"
#include "bf_x3p.h"

#include <math.h>
#include <unistd.h>

static char dir[4096];

static void path_of(char *buf, size_t n, const char *rel) { snprintf(buf, n, "%s/%s", dir, rel); }

/* Synthetic scans: bullets B1 (6 lands), B2 (same barrel, land 4 left out), B3 (another barrel,
 * lands named without numbers), cartridge cases c1..c3 (c1, c2 one firearm). */
static int make_scans(void)
{
  bf_synth_opts o = BF_SYNTH_OPTS_INIT;
  o.seed = 9;
  bf_synth *g = NULL;
  int rc = bf_synth_new(&g, &o);
  char p[8192], sub[64];
  const char *folders[] = {"B1", "B2", "B3", "c"};
  for (int i = 0; i < 4; i++) {
    path_of(p, sizeof p, folders[i]);
    mkdir(p, 0777);
  }
  for (int b = 1; b <= 3 && !rc; b++)
    for (int l = 1; l <= 6 && !rc; l++) {
      if (b == 2 && l == 4)
        continue;
      bf_surface *s = NULL;
      if (b == 3)
        snprintf(sub, sizeof sub, "B3/%c.x3p", 'a' + l - 1);
      else
        snprintf(sub, sizeof sub, "B%d/land%d.x3p", b, l);
      path_of(p, sizeof p, sub);
      if (!(rc = bf_synth_land(&s, g, b == 3 ? 7 : 1, b, l, NULL)))
        rc = bf_x3p_write(p, s, 'F');
      bf_surface_free(s);
    }
  for (int c = 1; c <= 3 && !rc; c++) {
    bf_surface *s = NULL;
    snprintf(sub, sizeof sub, "c/c%d.x3p", c);
    path_of(p, sizeof p, sub);
    if (!(rc = bf_synth_cartridge(&s, g, c == 3 ? 5 : 0, c, NULL)))
      rc = bf_x3p_write(p, s, 'F');
    bf_surface_free(s);
  }
  bf_synth_free(g);
  path_of(p, sizeof p, "broken.x3p");
  FILE *f = fopen(p, "w");
  if (f) {
    fputs("PK\003\004 this is not a zip archive", f);
    fclose(f);
  }
  if (rc)
    fprintf(stderr, "synth: %s\n", bf_error_last());
  return rc;
}

static int set_of(bf_scanset *s, const char *rel)
{
  char p[8192];
  path_of(p, sizeof p, rel);
  char *spec[1] = {p};
  memset(s, 0, sizeof *s);
  return bf_scanset_build(s, spec, 1, ',', NULL);
}

static void scanset_rule(void)
{
  bf_scanset s;
  CHECK(set_of(&s, "B2") == 0 && s.n == 5 && s.from_names);
  int want[5] = {1, 2, 3, 5, 6}, ok = s.n == 5;
  for (int i = 0; i < s.n && ok; i++)
    ok = s.v[i].land == want[i] && bf_scanset_land_number(s.v[i].path) == want[i];
  CHECK(ok);
  bf_scanset_clear(&s);
  /* a list in any order ends in land order */
  char l[9000];
  snprintf(l, sizeof l, "%s/B1/land5.x3p, %s/B1/land2.x3p", dir, dir);
  char *spec[1] = {l};
  memset(&s, 0, sizeof s);
  CHECK(bf_scanset_build(&s, spec, 1, ',', NULL) == 0 && s.n == 2 && s.v[0].land == 2 && s.v[1].land == 5 &&
        strstr(s.v[0].path, "land2"));
  bf_scanset_clear(&s);
  /* no numbers in the names: position */
  CHECK(set_of(&s, "B3") == 0 && s.n == 6 && !s.from_names && s.v[5].land == 6 && strstr(s.v[5].path, "f.x3p"));
  /* explicit numbers: re-ordered by them; duplicates refused */
  int lands[6] = {6, 5, 4, 3, 2, 1}, dup[6] = {1, 1, 2, 3, 4, 5};
  CHECK(bf_scanset_number(&s, lands, 6) == 0 && s.v[0].land == 1 && strstr(s.v[0].path, "f.x3p"));
  CHECK(bf_scanset_number(&s, dup, 6) == BF_EINVAL && strstr(bf_error_last(), "twice"));
  CHECK(bf_scanset_number(&s, lands, 5) == BF_EINVAL);
  bf_scanset_clear(&s);
  /* an empty folder, and nothing at all */
  char p[8192];
  path_of(p, sizeof p, "empty");
  mkdir(p, 0777);
  CHECK(set_of(&s, "empty") == BF_ENOTFOUND && strstr(bf_error_last(), "no .x3p"));
  CHECK(bf_scanset_build(&s, NULL, 0, ',', NULL) == BF_EINVAL);
}

static double sam(bf_feature *const *a, int na, bf_feature *const *b, int nb)
{
  bf_bullet_result r = {0};
  bf_land_opts lo = BF_LAND_OPTS_INIT;
  double s = bf_bullet_compare(&r, (const bf_feature *const *)a, na, (const bf_feature *const *)b, nb, &lo)
                 ? NAN
                 : r.score;
  bf_bullet_result_clear(&r);
  return s;
}

static int submit_one(bf_store *st, int type, const char *id, const char *rel, int kind, bf_submit_result *res)
{
  bf_submission sub = {.type = type, .kind = kind};
  if (type == BF_OWNER_FIREARM)
    snprintf(sub.firearm.serial, sizeof sub.firearm.serial, "%s", id);
  else {
    snprintf(sub.evidence.case_no, sizeof sub.evidence.case_no, "%s", id);
    snprintf(sub.evidence.item, sizeof sub.evidence.item, "1");
  }
  int rc = set_of(&sub.scans, rel);
  if (!rc && !(rc = bf_store_begin(st))) {
    rc = bf_submit(st, &sub, NULL, res);
    if (rc)
      bf_store_abort(st);
    else
      rc = bf_store_commit(st);
  }
  bf_submission_clear(&sub);
  return rc;
}

static void missing_land(const char *store)
{
  bf_scanset a, b;
  bf_feature **fa = NULL, **fb = NULL;
  int na = 0, nb = 0, ka = 0, kb = 0;
  CHECK(set_of(&a, "B1") == 0 && set_of(&b, "B2") == 0);
  CHECK(bf_query_extract(&fa, &na, &ka, &a) == 0 && bf_query_extract(&fb, &nb, &kb, &b) == 0);
  CHECK(ka == BF_KIND_BULLET && na == 6 && nb == 5 && fb[3]->land == 5);
  double s_compare = sam(fa, na, fb, nb);
  /* what the old positional numbering did: land 5 taken for land 4 */
  for (int i = 0; i < nb; i++)
    fb[i]->land = i + 1;
  double s_positional = sam(fa, na, fb, nb);
  CHECKF(s_compare > 0.5 && fabs(s_compare - s_positional) > 0.05, "compare %.4f, positional %.4f", s_compare,
         s_positional);

  bf_store *st = NULL;
  bf_submit_result r1, r2;
  CHECK(bf_store_open(&st, store, BF_STORE_WRITE, "t") == 0);
  CHECK(submit_one(st, BF_OWNER_FIREARM, "SYN-1", "B1", 0, &r1) == 0 && r1.nscans == 6 && r1.indexed);
  CHECK(submit_one(st, BF_OWNER_EVIDENCE, "C-1", "B2", BF_KIND_BULLET, &r2) == 0 && r2.nscans == 5);
  /* stored: lands 1,2,3,5,6 — what a batch loads */
  bf_feature **sf = NULL;
  int ns = 0;
  CHECK(bf_store_get_features(st, "bullet", r2.item, &sf, &ns) == 0 && ns == 5 && sf[3]->land == 5);
  bf_feature **sa = NULL;
  int nsa = 0;
  CHECK(bf_store_get_features(st, "bullet", r1.item, &sa, &nsa) == 0 && nsa == 6);
  double s_stored = sam(sa, nsa, sf, ns);
  bf_search_free_features(sf, ns);
  bf_search_free_features(sa, nsa);
  /* match: the scans on the spot, and the stored item */
  bf_query_result q1, q2;
  bf_query_opts qo = BF_QUERY_OPTS_INIT;
  CHECK(bf_query_scans(&q1, st, &b, &qo) == 0 && q1.n == 2 && q1.item == 0);
  CHECK(bf_query_item(&q2, st, r2.item, &qo) == 0 && q2.n == 1 && q2.cand[0].item == r1.item);
  double s_spot = NAN, s_item = q2.n ? q2.cand[0].score : NAN;
  for (size_t i = 0; i < q1.n; i++) /* (the scans on the spot also meet their own stored copy) */
    if (q1.cand[i].item == r1.item)
      s_spot = q1.cand[i].score;
  CHECKF(fabs(s_compare - s_stored) < 1e-9 && fabs(s_compare - s_spot) < 1e-9 && fabs(s_compare - s_item) < 1e-9,
         "compare %.6f stored %.6f match-scans %.6f match-item %.6f", s_compare, s_stored, s_spot, s_item);
  bf_query_result_clear(&q1);
  bf_query_result_clear(&q2);
  bf_store_close(st);
  bf_search_free_features(fa, na);
  bf_search_free_features(fb, nb);
  bf_scanset_clear(&a);
  bf_scanset_clear(&b);
}

static void submit_records(const char *store)
{
  bf_store *st = NULL;
  bf_submit_result r;
  CHECK(bf_store_open(&st, store, BF_STORE_WRITE, "t") == 0);
  size_t n0 = bf_store_nitems(st);
  /* a cartridge guessed from its shape, added to the stored firearm SYN-1 */
  CHECK(submit_one(st, BF_OWNER_FIREARM, "SYN-1", "c/c1.x3p", 0, &r) == 0 && r.kind == BF_KIND_CARTRIDGE &&
        !r.owner_new && bf_store_nitems(st) == n0 + 1);
  /* the same file again: a duplicate, nothing written */
  CHECK(submit_one(st, BF_OWNER_FIREARM, "SYN-2", "c/c1.x3p", 0, &r) == BF_EEXIST && !r.dirty &&
        strstr(bf_error_last(), "duplicate"));
  CHECK(submit_one(st, BF_OWNER_EVIDENCE, "C-1", "c/c2.x3p", 0, &r) == BF_EEXIST && strstr(bf_error_last(), "C-1"));
  CHECK(submit_one(st, BF_OWNER_FIREARM, "BAD\nSERIAL", "c/c2.x3p", 0, &r) == BF_EFORMAT &&
        strstr(bf_error_last(), "serial") && strstr(bf_error_last(), "control character"));
  CHECK(submit_one(st, BF_OWNER_FIREARM, "BAD\xff", "c/c2.x3p", 0, &r) == BF_EFORMAT &&
        strstr(bf_error_last(), "invalid UTF-8"));
  CHECK(submit_one(st, BF_OWNER_FIREARM, "SYN-3", "c/nothere.x3p", 0, &r) == BF_ENOTFOUND &&
        strstr(bf_error_last(), "nothere.x3p"));
  CHECK(submit_one(st, BF_OWNER_FIREARM, "SYN-3", "B1/land1.x3p,c/c2.x3p", BF_KIND_CARTRIDGE, &r) == BF_EINVAL);
  CHECK(bf_store_nitems(st) == n0 + 1 && !bf_store_firearm_by_serial(st, "SYN-2"));
  /* submit_many: one bad item skipped, the other stored, one commit */
  bf_submission subs[2] = {{.type = BF_OWNER_FIREARM}, {.type = BF_OWNER_FIREARM}};
  for (int i = 0; i < 2; i++)
    CHECK(bf_submission_set(&subs[i], "serial", "SYN-4") == 0 && bf_submission_set(&subs[i], "export-date", "2020-01-02") == 0);
  CHECK(bf_submission_set(&subs[0], "case", "x") == BF_ENOTFOUND);
  CHECK(set_of(&subs[0].scans, "c/c2.x3p") == 0 && set_of(&subs[1].scans, "c/c1.x3p") == 0);
  int stored = 0;
  bf_submit_many_opts mo = BF_SUBMIT_MANY_OPTS_INIT;
  CHECK(bf_submit_many(st, subs, 2, &mo, &stored) == BF_EEXIST && stored == 1);
  const bf_firearm *f = bf_store_firearm_by_serial(st, "SYN-4");
  CHECK(f && !strcmp(f->export_date, "2020-01-02") && bf_store_nitems(st) == n0 + 2);
  /* a stored serial with another make is refused, naming the fields */
  snprintf(subs[1].firearm.make, sizeof subs[1].firearm.make, "Glock");
  mo.all_or_nothing = 1;
  CHECK(bf_submit_many(st, &subs[1], 1, &mo, &stored) != 0 && stored == 0);
  bf_submission_clear(&subs[0]);
  bf_submission_clear(&subs[1]);
  bf_store_close(st);
}

typedef struct rowlog {
  int stored, failed;
  char text[8192];
} rowlog;

static void on_row(void *ctx, const bf_ingest_event *ev)
{
  rowlog *l = ctx;
  size_t n = strlen(l->text);
  if (ev->status == BF_INGEST_STORED) {
    l->stored++;
    snprintf(l->text + n, sizeof l->text - n, "row %d stored item %lld (%d scans)\n", ev->row, (long long)ev->item,
             ev->nscans);
  } else {
    l->failed++;
    snprintf(l->text + n, sizeof l->text - n, "%s\n", ev->message);
  }
}

static int ingest_text(bf_store *st, const char *text, size_t len, int every, rowlog *log, bf_ingest_stats *s)
{
  bf_manifest *m = NULL;
  int rc = bf_manifest_parse(&m, text, len, "m.csv", dir);
  memset(log, 0, sizeof *log);
  if (rc)
    return rc;
  bf_ingest_opts o = BF_INGEST_OPTS_INIT;
  o.commit_every = every;
  o.event = on_row;
  o.ctx = log;
  rc = bf_ingest_run(st, m, &o, s);
  bf_manifest_free(m);
  return rc;
}

static int logged(const rowlog *l, const char *needle)
{
  if (strstr(l->text, needle))
    return 1;
  fprintf(stderr, "--- log lacks '%s':\n%s", needle, l->text);
  return 0;
}

static void manifest_hostile(const char *store)
{
  bf_store *st = NULL;
  rowlog log;
  bf_ingest_stats s;
  CHECK(bf_store_open(&st, store, BF_STORE_WRITE, "t") == 0);
  size_t n0 = bf_store_nitems(st);
  /* BOM, then: a serial repeated with another make (refused, naming line and fields), a NUL
   * byte, invalid UTF-8, a line break inside an item id, an explicit lands column */
  static const char m[] =
    "\xef\xbb\xbftype,serial,make,model,calibre,case,item,kind,lands,scans\n"
    "firearm,SYN-9,Ruger,SR9,9mm,,,,,c/c3.x3p\n"
    "firearm,SYN-9,Glock,SR9,9mm,,,,,B3/a.x3p\n"
    "firearm,SYN-10,Ru\0ger,,,,,,,B3/b.x3p\n"
    "evidence,,,,,C-5,\xc3\x28,,,B3/c.x3p\n"
    "evidence,,,,,C-6,\"1\nC-7\",,,B3/d.x3p\n"
    "evidence,,,,,C-8,1,bullet,3;1;2,B3/e.x3p;B3/f.x3p;B3/a.x3p\n";
  CHECK(ingest_text(st, m, sizeof m - 1, 1, &log, &s) == BF_EINVAL);
  CHECKF(s.stored == 2 && s.failed == 4 && log.stored == 2, "stored %d failed %d", s.stored, s.failed);
  CHECK(logged(&log, "m.csv:3: serial SYN-9") && logged(&log, "make 'Glock' (stored: 'Ruger')"));
  CHECK(logged(&log, "m.csv:4: column make holds a NUL byte"));
  CHECK(logged(&log, "m.csv:5: item: invalid UTF-8"));
  CHECK(logged(&log, "m.csv:6: item: control character"));
  const bf_firearm *f = bf_store_firearm_by_serial(st, "SYN-9");
  CHECK(f && !strcmp(f->make, "Ruger") && bf_store_nitems(st) == n0 + 2);
  const bf_evidence *e = bf_store_evidence_by_case_item(st, "C-8", "1");
  CHECK(e != NULL);
  if (e) { /* lands 3;1;2 for e, f, a: stored in land order a, e, f */
    const bf_item *it = &bf_store_items(st)[bf_store_nitems(st) - 1];
    bf_feature **fv = NULL;
    int nf = 0;
    CHECK(bf_store_get_features(st, "bullet", it->id, &fv, &nf) == 0 && nf == 3 && fv[0]->land == 1 &&
          fv[2]->land == 3);
    const bf_scan_rec *sc = bf_store_scans(st);
    size_t ns = bf_store_nscans(st);
    CHECK(ns >= 3 && !strcmp(sc[ns - 3].name, "f.x3p") && sc[ns - 3].land == 1 && !strcmp(sc[ns - 1].name, "e.x3p"));
    bf_search_free_features(fv, nf);
  }
  /* whole-file problems: unknown column, no scans column, unterminated quote */
  bf_manifest *mm = NULL;
  CHECK(bf_manifest_parse(&mm, "type,scans,colour\n", 18, "m.csv", dir) == BF_EINVAL &&
        strstr(bf_error_last(), "unknown column 'colour'"));
  CHECK(bf_manifest_parse(&mm, "type,serial\n", 12, "m.csv", dir) == BF_EINVAL);
  CHECK(bf_manifest_parse(&mm, "type,scans\nfirearm,\"x\n", 22, "m.csv", dir) == BF_EFORMAT &&
        strstr(bf_error_last(), "m.csv:2: unterminated"));
  CHECK(bf_manifest_parse(&mm, "", 0, "m.csv", dir) == BF_EINVAL);
  bf_store_close(st);
}

static void ingest_groups(const char *store)
{
  bf_store *st = NULL;
  rowlog log;
  bf_ingest_stats s;
  char before[72], after[72];
  CHECK(bf_store_open(&st, store, BF_STORE_WRITE, "t") == 0);
  size_t n0 = bf_store_nitems(st);
  /* two rows in one group, a bad row, a duplicate of a row of the same (uncommitted) group */
  static const char m[] = "type,serial,make,scans\n"
                          "firearm,G-1,Ruger,B3/b.x3p\n"
                          "firearm,G-2,,B3/c.x3p\n"
                          "weapon,G-3,,B3/d.x3p\n"
                          "firearm,G-4,,B3/c.x3p\n"
                          "firearm,G-1,Glock,B3/d.x3p\n"
                          "firearm,G-5,,broken.x3p\n";
  CHECK(ingest_text(st, m, sizeof m - 1, 3, &log, &s) == BF_EINVAL);
  CHECKF(s.rows == 6 && s.stored == 2 && s.failed == 4 && s.duplicates == 1 && s.scans == 2,
         "rows %d stored %d failed %d dup %d", s.rows, s.stored, s.failed, s.duplicates);
  CHECK(logged(&log, "m.csv:4: type must be firearm or evidence") && logged(&log, "m.csv:5:") &&
        logged(&log, "duplicate") && logged(&log, "row 1 stored") && logged(&log, "row 2 stored"));
  /* the same serial with another make, in the same uncommitted group; a broken scan file */
  CHECK(logged(&log, "m.csv:6: serial G-1") && logged(&log, "m.csv:7:") && logged(&log, "broken.x3p"));
  CHECK(bf_store_nitems(st) == n0 + 2);
  /* everything again: duplicates only, the store file untouched */
  bf_store_close(st);
  bf_t_file_sha(before, store);
  CHECK(bf_store_open(&st, store, BF_STORE_WRITE, "t") == 0);
  CHECK(ingest_text(st, m, sizeof m - 1, 0, &log, &s) == BF_EINVAL && s.stored == 0 && s.duplicates == 3);
  bf_store_close(st);
  bf_t_file_sha(after, store);
  CHECK(!strcmp(before, after));
  /* a scan file whose name holds a line break is refused before it is read */
  char nl[8192];
  bf_submit_result r;
  path_of(nl, sizeof nl, "B3/a.x3p");
  char nl2[8192];
  path_of(nl2, sizeof nl2, "B3/x\ny.x3p");
  CHECK(link(nl, nl2) == 0);
  CHECK(bf_store_open(&st, store, BF_STORE_WRITE, "t") == 0);
  CHECK(submit_one(st, BF_OWNER_FIREARM, "NL-1", "B3/x\ny.x3p", 0, &r) == BF_EFORMAT &&
        strstr(bf_error_last(), "scan file name"));
  /* a FIFO named like a scan is refused at once (opening it must not block) */
  path_of(nl2, sizeof nl2, "fifo.x3p");
  CHECK(mkfifo(nl2, 0600) == 0);
  CHECK(submit_one(st, BF_OWNER_FIREARM, "FIFO-1", "fifo.x3p", 0, &r) == BF_EIO &&
        strstr(bf_error_last(), "not a regular file"));
  bf_store_close(st);
}

/* Runs fn with the n-th bf_* allocation failing (and every one after it), n = 1, 2, ... until
 * a run succeeds without a failure firing. Each failed run must leave the store file as it was. */
typedef int (*sweep_fn)(bf_store *st, void *ctx);

static void sweep(const char *store, const char *what, sweep_fn fn, void *ctx)
{
  char before[72], after[72];
  int n = 1, failures = 0, bad = 0;
  for (; n < 2000; n++) {
    bf_store *st = NULL;
    bf_t_file_sha(before, store);
    if (bf_store_open(&st, store, BF_STORE_WRITE, "t")) {
      bad++;
      break;
    }
    bf_alloc_fail(n, 1);
    int rc = fn(st, ctx);
    int fired = bf_alloc_fired();
    bf_alloc_fail(0, 0);
    bf_store_close(st);
    bf_t_file_sha(after, store);
    if (!fired) {
      CHECKF(rc == 0, "%s: no failure injected, yet rc %d (%s)", what, rc, bf_error_last());
      break;
    }
    failures++;
    if (rc == 0 || strcmp(before, after)) {
      fprintf(stderr, "%s: allocation %d failed: rc %d, store %s\n", what, n, rc,
              strcmp(before, after) ? "CHANGED" : "unchanged");
      bad++;
    }
  }
  CHECKF(bad == 0 && failures > 0, "%s: %d of %d injected failures misbehaved", what, bad, failures);
  printf("alloc_fail %s: %d allocation failures injected, store unchanged after each\n", what, failures);
}

static int sw_submit(bf_store *st, void *ctx)
{
  bf_submit_result r;
  int rc = submit_one(st, BF_OWNER_FIREARM, "AF-1", (const char *)ctx, 0, &r);
  return rc;
}

static int sw_many(bf_store *st, void *ctx)
{
  (void)ctx;
  bf_submission subs[2] = {{.type = BF_OWNER_FIREARM}, {.type = BF_OWNER_FIREARM}};
  snprintf(subs[0].firearm.serial, 64, "AF-2");
  snprintf(subs[1].firearm.serial, 64, "AF-2");
  int stored = 0, rc = set_of(&subs[0].scans, "B3/e.x3p");
  if (!rc)
    rc = set_of(&subs[1].scans, "B3/f.x3p");
  if (!rc)
    rc = bf_submit_many(st, subs, 2, &(bf_submit_many_opts){.all_or_nothing = 1}, &stored);
  bf_submission_clear(&subs[0]);
  bf_submission_clear(&subs[1]);
  return rc;
}

static int sw_ingest(bf_store *st, void *ctx)
{
  (void)ctx;
  static const char m[] = "type,serial,lands,scans\nfirearm,AF-3,2;1,B3/a.x3p;B3/b.x3p\n";
  rowlog log;
  bf_ingest_stats s;
  return ingest_text(st, m, sizeof m - 1, 1, &log, &s);
}

int main(void)
{
  snprintf(dir, sizeof dir, "%s", bf_t_tmpdir("ingest_lib"));
  char store[8192];
  path_of(store, sizeof store, "s.h5");
  if (make_scans() || bf_store_create(store, "t")) {
    fprintf(stderr, "setup failed: %s\n", bf_error_last());
    return 1;
  }
  scanset_rule();
  missing_land(store);
  submit_records(store);
  manifest_hostile(store);
  ingest_groups(store);
  /* fresh store for the sweeps (the scans above are stored in the first one) */
  path_of(store, sizeof store, "af.h5");
  CHECK(bf_store_create(store, "t") == 0);
  sweep(store, "submit", sw_submit, "c/c2.x3p");
  sweep(store, "submit_many", sw_many, NULL);
  sweep(store, "ingest", sw_ingest, NULL);
  return bf_t_done();
}
