/* The HDF5 store: records, scans, features of several kinds, hits, audit, verify, locking,
 * abort, corruption detection. Features are made by hand (extraction is not this module's). */
#include "bf_error.h"
#include "bf_store.h"
#include "bf_test.h"
#include "store_kit.h"

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *dir;

static bf_feature *mkfeat(int kind, int nx, int ny, int land, float base)
{
  bf_feature *f = NULL;
  if (bf_feature_new(&f, kind, nx, ny, 1.5, 1.5))
    return NULL;
  for (int i = 0; i < nx * ny; i++)
    f->z[i] = base + 0.001f * i;
  f->z[0] = NAN;
  f->land = land;
  f->version = 3;
  f->valid_fraction = 0.9f;
  f->params[2] = base;
  return f;
}

static void fake_bytes(uint8_t *b, size_t n, int seed)
{
  uint32_t x = 2463534242u + (uint32_t)seed; /* xorshift: incompressible like a real X3P zip */
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b[i] = (uint8_t)x;
  }
}


/* A schema 1 store made from a schema 2 one: its segments merged into one file (what a
 * schema 1 store was), the manifest replaced by it, schema_version 1, /hits without log10_lr. */
static int make_v1(const char *src, const char *dst)
{
  char cmd[30000];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s.d' && cp '%s' '%s' && cp -r '%s.d' '%s.d'", dst, dst, src, dst, src, dst);
  if (system(cmd))
    return -1;
  bf_store_compact_opts o = BF_STORE_COMPACT_OPTS_INIT;
  o.all = 1;
  bf_store_compact_result r;
  if (bf_store_compact(dst, &o, &r) || r.segments_after != 2)
    return -1;
  /* the compaction audit went into a second segment: merge once more to get one */
  if (bf_store_compact(dst, &o, &r))
    return -1;
  /* the largest segment is the merged one: it holds every row but the last compaction's audit */
  char seg[9400] = "", dd[4400];
  snprintf(dd, sizeof dd, "%s.d", dst);
  size_t best = 0;
  DIR *d = opendir(dd);
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (!strncmp(e->d_name, "seg-", 4)) {
      char p[9400];
      struct stat sb;
      snprintf(p, sizeof p, "%s/%s", dd, e->d_name);
      if (!stat(p, &sb) && (size_t)sb.st_size > best) {
        best = (size_t)sb.st_size;
        snprintf(seg, sizeof seg, "%s", p);
      }
    }
  if (d)
    closedir(d);
  snprintf(cmd, sizeof cmd, "cp '%s' '%s' && rm -rf '%s.d'", seg, dst, dst);
  if (!seg[0] || system(cmd))
    return -1;
  hid_t f = H5Fopen(dst, H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0)
    return -1;
  int ver = 1;
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, "schema_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT, &ver);
  H5Aclose(a);
  H5Sclose(sp);
  /* /hits as schema 1 wrote it: the same compound without log10_lr */
  hid_t ds = H5Dopen2(f, "/hits", H5P_DEFAULT);
  hid_t ft = H5Dget_type(ds);
  hid_t sp2 = H5Dget_space(ds);
  hssize_t n = H5Sget_simple_extent_npoints(sp2);
  size_t sz = H5Tget_size(ft);
  char *buf = malloc((size_t)(n ? n : 1) * sz);
  H5Dread(ds, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  int idx = H5Tget_member_index(ft, "log10_lr");
  size_t off = H5Tget_member_offset(ft, (unsigned)idx);
  hid_t t1 = H5Tcreate(H5T_COMPOUND, sz);
  int nm = H5Tget_nmembers(ft);
  for (int i = 0; i < nm; i++)
    if (i != idx) {
      char *name = H5Tget_member_name(ft, (unsigned)i);
      hid_t mt = H5Tget_member_type(ft, (unsigned)i);
      H5Tinsert(t1, name, H5Tget_member_offset(ft, (unsigned)i), mt);
      H5Tclose(mt);
      H5free_memory(name);
    }
  (void)off;
  H5Dclose(ds);
  H5Ldelete(f, "/hits", H5P_DEFAULT);
  hsize_t cur = (hsize_t)n, mx = H5S_UNLIMITED, ch = 64;
  hid_t sp3 = H5Screate_simple(1, &cur, &mx), pl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(pl, 1, &ch);
  hid_t nd = H5Dcreate2(f, "/hits", t1, sp3, H5P_DEFAULT, pl, H5P_DEFAULT);
  int ok = nd >= 0 && (!n || H5Dwrite(nd, t1, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
  H5Dclose(nd);
  H5Pclose(pl);
  H5Sclose(sp3);
  H5Sclose(sp2);
  H5Tclose(t1);
  H5Tclose(ft);
  free(buf);
  H5Fclose(f);
  return ok ? 0 : -1;
}

/* Closes *st, merges every segment of the store at path (bf_store_compact, all) and reopens it
 * for writing. 0 or the error. */
static int compact_reopen(bf_store **st, const char *path)
{
  bf_store_close(*st);
  *st = NULL;
  bf_store_compact_opts co = BF_STORE_COMPACT_OPTS_INIT;
  co.all = 1;
  bf_store_compact_result cr;
  int rc = bf_store_compact(path, &co, &cr);
  return rc ? rc : bf_store_open(st, path, BF_STORE_WRITE, "t");
}

static void count_problem(void *ctx, const char *p)
{
  (void)p;
  ++*(int *)ctx;
}


/* Compaction copies deflated feature chunks as stored (no inflate/deflate): what it merges reads
 * back bit for bit, across a second merge of an already merged segment; a damaged chunk in a
 * segment it merges fails the compaction with a checksum error and leaves the store as it was. */
static void compact_chunks(void)
{
  enum { NIT = 4 };
  char path[1100], dmg[1100];
  snprintf(path, sizeof path, "%.1000s/cc.h5", dir);
  snprintf(dmg, sizeof dmg, "%.1000s/cc-damaged.h5", dir);
  bf_feature *f[NIT + 1] = {0};
  bf_store *st = NULL;
  int ok = !bf_store_create(path, "t") && !bf_store_open(&st, path, BF_STORE_WRITE, "t");
  for (int i = 0; ok && i <= NIT; i++) { /* one commit (segment) per item; 70,000 values each */
    f[i] = mkfeat(BF_KIND_CARTRIDGE, 350, 200, 0, (float)i);
    for (int k = 0; f[i] && k < 350 * 200; k += 97)
      f[i]->z[k] = (float)(k % 13) - 0.5f * i; /* something to deflate beyond a ramp */
    bf_firearm fa = {0};
    snprintf(fa.serial, sizeof fa.serial, "CC-%d", i);
    uint8_t b[512];
    fake_bytes(b, sizeof b, 40 + i);
    int64_t fid, item, sid;
    ok = f[i] && !bf_store_begin(st) && !bf_store_add_firearm(st, &fid, &fa) &&
         !bf_store_add_item(st, &item, BF_KIND_CARTRIDGE, "", BF_OWNER_FIREARM, fid) &&
         !bf_store_add_scan(st, &sid, item, 0, b, sizeof b, "cc.x3p", NULL) &&
         !bf_store_put_feature(st, "cartridge", item, sid, f[i]) && !bf_store_commit(st);
    if (ok && i == NIT - 1) { /* the first NIT items merged before the last is added */
      ok = compact_reopen(&st, path) == 0;
    }
  }
  CHECKF(ok, "building: %s", bf_error_last());
  bf_store_close(st);
  CHECK(bf_t_copy_store(path, dmg) == 0);
  bf_store_compact_opts co = BF_STORE_COMPACT_OPTS_INIT;
  co.all = 1;
  bf_store_compact_result cr;
  CHECKF(ok && bf_store_compact(path, &co, &cr) == 0 && cr.segments_after <= 2, "compact: %s", bf_error_last());
  bf_store *r = NULL;
  CHECK(bf_store_open(&r, path, BF_STORE_READ, NULL) == 0);
  for (int i = 0; r && i <= NIT; i++) {
    bf_feature **fv = NULL;
    int nf = 0;
    CHECK(bf_store_get_features(r, "cartridge", i + 1, &fv, &nf) == 0 && nf == 1);
    if (nf == 1 && f[i])
      CHECKF(fv[0]->nx == f[i]->nx && fv[0]->ny == f[i]->ny &&
                 !memcmp(fv[0]->z, f[i]->z, sizeof(float) * f[i]->nx * f[i]->ny),
             "item %d reads back changed after compaction", i + 1);
    bf_store_features_free(fv, nf);
  }
  int np = -1;
  CHECK(r && bf_store_verify(r, NULL, NULL, &np) == 0 && np == 0);
  bf_store_close(r);
  /* damage: the merged segment's first chunk (items 1-...) */
  char m0[72], m1[72];
  CHECK(flip_in_segments(dmg, "/features/cartridge/data") == 64);
  bf_t_file_sha(m0, dmg);
  int rc = bf_store_compact(dmg, &co, &cr);
  bf_t_file_sha(m1, dmg);
  CHECKF(rc == BF_ECHECKSUM && strstr(bf_error_last(), "checksum") && !strcmp(m0, m1),
         "damaged chunk: compact %d: %s", rc, bf_error_last());
  for (int i = 0; i <= NIT; i++)
    bf_feature_free(f[i]);
}

/* A reader's firearm and evidence lookups read single rows when the table is not loaded: the
 * same records as the loaded table, across plain and compacted segments (a segment with no
 * new firearms, evidence added in between), NULL past the last id, and a damaged table chunk
 * is an error that bf_store_error names, never a wrong record. */
static void row_lookups(void)
{
  enum { NSEG = 6, PER = 60 }; /* over 256 firearms: the one-by-one reads turn into a table load midway */
  char path[1100], dmg[1100];
  snprintf(path, sizeof path, "%.1000s/rows.h5", dir);
  snprintf(dmg, sizeof dmg, "%.1000s/rows-damaged.h5", dir);
  bf_store *st = NULL;
  int ok = !bf_store_create(path, "t") && !bf_store_open(&st, path, BF_STORE_WRITE, "t");
  int nfa = 0, nev = 0;
  for (int s = 0; ok && s < NSEG; s++) {
    ok = !bf_store_begin(st);
    for (int i = 0; ok && i < (s == 2 ? 0 : PER + s); i++) { /* segment 2: evidence only */
      bf_firearm fa = {0};
      snprintf(fa.serial, sizeof fa.serial, "ROW-%d", ++nfa);
      snprintf(fa.markings, sizeof fa.markings, "segment %d row %d", s, i);
      ok = !bf_store_add_firearm(st, NULL, &fa);
    }
    for (int i = 0; ok && i < 3; i++) {
      bf_evidence ev = {0};
      snprintf(ev.case_no, sizeof ev.case_no, "EV-%d", ++nev);
      snprintf(ev.item, sizeof ev.item, "%d", i + 1);
      ok = !bf_store_add_evidence(st, NULL, &ev);
    }
    ok = ok && !bf_store_commit(st);
    if (ok && s == 3) { /* the first four segments merged: a compacted segment among plain ones */
      ok = compact_reopen(&st, path) == 0;
    }
  }
  CHECKF(ok, "building: %s", bf_error_last());
  bf_store_close(st);
  bf_store *r = NULL;
  CHECK(bf_store_open(&r, path, BF_STORE_READ, NULL) == 0);
  int bad = 0;
  for (int id = 0; r && id <= nfa + 1; id++) {
    const bf_firearm *f = bf_store_firearm(r, id);
    char want[64];
    snprintf(want, sizeof want, "ROW-%d", id);
    bad += (id >= 1 && id <= nfa) ? !f || f->id != id || strcmp(f->serial, want) : f != NULL;
  }
  for (int id = 1; r && id <= nev; id++) {
    const bf_evidence *e = bf_store_evidence(r, id);
    char want[64];
    snprintf(want, sizeof want, "EV-%d", id);
    bad += !e || strcmp(e->case_no, want);
  }
  CHECKF(r && bad == 0 && bf_store_error(r) == 0, "%d single-row lookups wrong", bad);
  /* keyed lookups (the ingest's duplicate checks) over segments, plain and compacted */
  for (int id = 1; r && id <= nfa; id += 13) {
    char want[64];
    snprintf(want, sizeof want, "ROW-%d", id);
    const bf_firearm *f = bf_store_firearm_by_serial(r, want);
    bad += !f || f->id != id;
  }
  bad += r && bf_store_firearm_by_serial(r, "ROW-0") != NULL;
  bad += r && bf_store_firearm_by_serial(r, "") != NULL;
  const bf_evidence *e5 = r ? bf_store_evidence_by_case_item(r, "EV-5", "2") : NULL;
  bad += !e5 || strcmp(e5->case_no, "EV-5") || strcmp(e5->item, "2");
  bad += r && bf_store_evidence_by_case_item(r, "EV-5", "1") != NULL; /* item 2 of segment 1 */
  CHECKF(bad == 0, "%d keyed lookups wrong", bad);
  const bf_firearm *one = r ? bf_store_firearm(r, 7) : NULL;
  CHECK(r && bf_store_nfirearms(r) == (size_t)nfa); /* the whole table loads beside the rows read */
  const bf_firearm *all = r ? bf_store_firearms(r) : NULL;
  CHECK(one && all && !memcmp(one, &all[6], sizeof *one));
  bf_store_close(r);
  /* damage: the first chunk of a segment's firearms table */
  CHECK(bf_t_copy_store(path, dmg) == 0);
  CHECK(flip_in_segments(dmg, "/firearms") == 64);
  r = NULL;
  CHECK(bf_store_open(&r, dmg, BF_STORE_READ, NULL) == 0);
  int nulls = 0, wrong = 0;
  for (int id = 1; r && id <= nfa; id++) {
    const bf_firearm *f = bf_store_firearm(r, id);
    char want[64];
    snprintf(want, sizeof want, "ROW-%d", id);
    nulls += !f;
    wrong += f && strcmp(f->serial, want);
  }
  CHECKF(r && nulls > 0 && wrong == 0 && bf_store_error(r) == BF_ECHECKSUM && strstr(bf_error_last(), "segment"),
         "damaged firearms chunk: %d NULL, %d wrong, error %d: %s", nulls, wrong, r ? bf_store_error(r) : 0,
         bf_error_last());
  bf_store_close(r);
}

/* A review reads and writes its one hit row (the hit table is not loaded): the same answers as
 * a loaded table: last change wins within a transaction and across commits, a table loaded in
 * the middle of a transaction keeps the change, an abort forgets it, a missing hit is refused. */
static int hit_status(bf_store *st, int64_t id, char *note, size_t nn)
{
  bf_hit *h = NULL;
  size_t n = 0;
  int s = -1;
  if (!bf_store_query_hits(st, NULL, &h, &n))
    for (size_t i = 0; i < n; i++)
      if (h[i].id == id) {
        s = h[i].status;
        snprintf(note, nn, "%s", h[i].note);
      }
  free(h);
  return s;
}

/* Deletes /keys from every segment of a store: a store written before the keys existed. */
static int drop_keys(const char *store)
{
  char d[4400];
  snprintf(d, sizeof d, "%s.d", store);
  DIR *dp = opendir(d);
  struct dirent *e;
  int n = 0;
  while (dp && (e = readdir(dp))) {
    char f[4700];
    snprintf(f, sizeof f, "%s/%s", d, e->d_name);
    hid_t h = strncmp(e->d_name, "seg-", 4) ? -1 : H5Fopen(f, H5F_ACC_RDWR, H5P_DEFAULT);
    if (h >= 0 && H5Lexists(h, "/keys", H5P_DEFAULT) > 0)
      n += H5Ldelete(h, "/keys", H5P_DEFAULT) >= 0;
    if (h >= 0)
      H5Fclose(h);
  }
  if (dp)
    closedir(dp);
  return n;
}

/* A writer adds records without loading a table: ids continue, the duplicate checks (serial,
 * case and item, SHA-256) see committed segments and the open transaction, a table loaded in the
 * middle of the transaction takes its rows; segments without keys fall back to the table. */
static void keyed_ingest(void)
{
  char path[1100];
  snprintf(path, sizeof path, "%.1000s/keyed.h5", dir);
  uint8_t b[4][3000];
  for (int i = 0; i < 4; i++)
    fake_bytes(b[i], sizeof b[i], 40 + i);
  for (int round = 0; round < 3; round++) { /* 1: the same store without keys; 2: key lists
                                                  binary-searched in the file (as large ones are) */
    bf_store *st = NULL;
    char p2[1200];
    snprintf(p2, sizeof p2, "%s%s", path, round == 1 ? "-nokeys.h5" : round == 2 ? "-search.h5" : "");
    if (round == 2)
      setenv("BF_STORE_KEYS_READ", "0", 1);
    CHECK(bf_store_create(p2, "t") == 0);
    for (int s = 0; s < 2; s++) { /* two segments: firearm K-s with item, scan; evidence E/s */
      CHECK(bf_store_open(&st, p2, BF_STORE_WRITE, "t") == 0);
      if (!st)
        return;
      bf_firearm fa = {0};
      bf_evidence ev = {0};
      int64_t fid = 0, eid = 0, it = 0, sid = 0;
      snprintf(fa.serial, sizeof fa.serial, "K-%d", s);
      snprintf(ev.case_no, sizeof ev.case_no, "E");
      snprintf(ev.item, sizeof ev.item, "%d", s);
      CHECK(bf_store_begin(st) == 0);
      CHECK(bf_store_add_firearm(st, &fid, &fa) == 0 && fid == s + 1);
      CHECK(bf_store_add_evidence(st, &eid, &ev) == 0 && eid == s + 1);
      CHECK(bf_store_add_item(st, &it, BF_KIND_CARTRIDGE, "9mm", BF_OWNER_FIREARM, fid) == 0 && it == s + 1);
      CHECK(bf_store_add_scan(st, &sid, it, 0, b[s], sizeof b[s], "k.x3p", NULL) == 0 && sid == s + 1);
      bf_feature *ft = mkfeat(BF_KIND_CARTRIDGE, 20, 10, 0, 10.0f * (float)it);
      CHECK(bf_store_put_feature(st, "cartridge", it, sid, ft) == 0);
      bf_feature_free(ft);
      CHECK(bf_store_commit(st) == 0);
      bf_store_close(st);
      st = NULL;
    }
    if (round == 1)
      CHECK(drop_keys(p2) >= 2);
    CHECK(bf_store_open(&st, p2, BF_STORE_WRITE, "t") == 0);
    if (!st)
      return;
    const bf_firearm *f = bf_store_firearm_by_serial(st, "K-1");
    CHECK(f && f->id == 2);
    CHECK(bf_store_firearm_by_serial(st, "K-2") == NULL && bf_store_error(st) == 0);
    int wrong = 0; /* past 64 lookups the searched lists are read into memory: same answers */
    for (int q = 0; q < 70; q++) {
      const bf_firearm *fq = bf_store_firearm_by_serial(st, q % 2 ? "K-0" : "K-1");
      wrong += !fq || fq->id != (q % 2 ? 1 : 2);
    }
    CHECK(wrong == 0 && bf_store_firearm_by_serial(st, "K-2") == NULL);
    const bf_evidence *e = bf_store_evidence_by_case_item(st, "E", "0");
    CHECK(e && e->id == 1);
    int64_t sid = 0, fid = 0, it = 0;
    CHECK(bf_store_find_sha256(st, "00", NULL) == BF_ENOTFOUND);
    CHECK(bf_store_begin(st) == 0);
    CHECK(bf_store_add_scan(st, NULL, 1, 0, b[1], sizeof b[1], "again.x3p", NULL) == BF_EEXIST);
    CHECK(strstr(bf_error_last(), "scan 2 (k.x3p) of item 2") != NULL);
    bf_firearm fa = {0};
    snprintf(fa.serial, sizeof fa.serial, "K-new");
    CHECK(bf_store_add_firearm(st, &fid, &fa) == 0 && fid == 3);
    f = bf_store_firearm_by_serial(st, "K-new"); /* the transaction's own row */
    CHECK(f && f->id == 3);
    CHECK(bf_store_add_item(st, &it, BF_KIND_CARTRIDGE, "9mm", BF_OWNER_FIREARM, fid) == 0 && it == 3);
    CHECK(bf_store_add_scan(st, &sid, it, 0, b[2], sizeof b[2], "n.x3p", NULL) == 0 && sid == 3);
    CHECK(bf_store_add_scan(st, NULL, it, 0, b[2], sizeof b[2], "n2.x3p", NULL) == BF_EEXIST);
    /* a feature appended without reading the kind's index, then read in the same transaction */
    bf_feature *ft = mkfeat(BF_KIND_CARTRIDGE, 20, 10, 0, 30.0f);
    CHECK(bf_store_put_feature(st, "cartridge", it, sid, ft) == 0);
    bf_feature_free(ft);
    for (int q = 1; q <= 3; q++) {
      bf_feature **fv = NULL;
      int nf = 0;
      CHECK(bf_store_get_features(st, "cartridge", q, &fv, &nf) == 0 && nf == 1 && fv[0]->z[5] == 10.0f * q + 0.005f);
      bf_store_features_free(fv, nf);
    }
    const bf_item *ip = bf_store_item(st, 3);
    CHECK(ip && ip->nscans == 1 && ip->owner == 3);
    bf_hit h = {0}; /* loads items, firearms and evidence in the middle of the transaction */
    h.query = 3, h.candidate = 1, h.run = 1, h.score = 7;
    CHECK(bf_store_add_hits(st, &h, 1, NULL) == 0);
    CHECK(bf_store_add_scan(st, &sid, 2, 0, b[3], sizeof b[3], "m.x3p", NULL) == 0 && sid == 4);
    CHECK(bf_store_commit(st) == 0);
    bf_store_close(st); /* again: a writer appending to a kind over two commits, then reading it */
    st = NULL;
    CHECK(bf_store_open(&st, p2, BF_STORE_WRITE, "t") == 0);
    for (int c = 0; st && c < 2; c++) { /* items 4 and 5 */
      int64_t ni = 0;
      CHECK(bf_store_begin(st) == 0);
      CHECK(bf_store_add_item(st, &ni, BF_KIND_CARTRIDGE, "9mm", BF_OWNER_FIREARM, 1) == 0 && ni == 4 + c);
      ft = mkfeat(BF_KIND_CARTRIDGE, 20, 10, 0, 50.0f + (float)c);
      CHECK(bf_store_put_feature(st, "cartridge", ni, 0, ft) == 0);
      bf_feature_free(ft);
      CHECK(bf_store_commit(st) == 0);
    }
    for (int q = 1; st && q <= 5; q++) {
      bf_feature **fv = NULL;
      int nf = 0;
      float want = q <= 3 ? 10.0f * q + 0.005f : 50.005f + (float)(q - 4);
      int grc = bf_store_get_features(st, "cartridge", q, &fv, &nf);
      CHECKF(grc == 0 && nf == 1 && fv[0]->z[5] == want, "item %d: rc %d n %d: %s", q, grc, nf, bf_error_last());
      bf_store_features_free(fv, nf);
    }
    bf_store_close(st);
    st = NULL;
    CHECK(bf_store_open(&st, p2, BF_STORE_READ, NULL) == 0);
    if (!st)
      return;
    CHECK(bf_store_nfirearms(st) == 3 && bf_store_nitems(st) == 5 && bf_store_nscans(st) == 4);
    const bf_item *items = bf_store_items(st);
    CHECK(items && items[0].nscans == 1 && items[1].nscans == 2 && items[2].nscans == 1);
    CHECK(!strcmp(bf_store_scans(st)[2].name, "n.x3p") && bf_store_scans(st)[2].item == 3);
    const bf_feat_row *fr = NULL;
    size_t nfr = 0;
    CHECK(bf_store_feature_index(st, "cartridge", &fr, &nfr) == 0 && nfr == 5 && fr[2].item == 3 && fr[4].item == 5);
    int np = -1;
    CHECK(bf_store_verify(st, NULL, NULL, &np) == 0 && np == 0);
    bf_store_stats kss;
    CHECK(bf_store_stats_get(st, &kss) == 0 && (round == 1 ? kss.unkeyed_segments >= 2 : kss.unkeyed_segments == 0));
    bf_store_close(st);
  }
  unsetenv("BF_STORE_KEYS_READ");
}

static void one_row_reviews(void)
{
  char path[1100], note[256];
  snprintf(path, sizeof path, "%.1000s/reviews.h5", dir);
  bf_store *st = NULL;
  int ok = !bf_store_create(path, "t") && !bf_store_open(&st, path, BF_STORE_WRITE, "t");
  for (int s = 0; ok && s < 3; s++) { /* three segments of hits */
    ok = !bf_store_begin(st);
    bf_firearm fa = {0};
    int64_t fid = 0, a = 0, b = 0;
    snprintf(fa.serial, sizeof fa.serial, "REV-%d", s);
    ok = ok && !bf_store_add_firearm(st, &fid, &fa) &&
         !bf_store_add_item(st, &a, BF_KIND_CARTRIDGE, "9mm", BF_OWNER_FIREARM, fid) &&
         !bf_store_add_item(st, &b, BF_KIND_CARTRIDGE, "9mm", BF_OWNER_FIREARM, fid);
    bf_hit h[2] = {{0}};
    h[0].query = a, h[0].candidate = b, h[0].run = 1, h[0].score = 5;
    h[1].query = b, h[1].candidate = a, h[1].run = 1, h[1].score = 4;
    ok = ok && !bf_store_add_hits(st, h, 2, NULL) && !bf_store_commit(st);
  }
  bf_store_close(st);
  CHECKF(ok, "building: %s", bf_error_last());
  st = NULL;
  CHECK(bf_store_open(&st, path, BF_STORE_WRITE, "t") == 0);
  if (!st)
    return;
  /* two changes of hit 3 in one transaction, one of hit 6: the last of each wins */
  CHECK(bf_store_begin(st) == 0);
  CHECK(bf_store_set_hit_status(st, 3, BF_HIT_CONFIRMED, "A", "first") == 0);
  CHECK(bf_store_set_hit_status(st, 3, BF_HIT_REJECTED, "A", "second") == 0);
  CHECK(bf_store_set_hit_status(st, 6, BF_HIT_CONFIRMED, "A", "six") == 0);
  CHECK(bf_store_set_hit_status(st, 7, BF_HIT_CONFIRMED, "A", NULL) == BF_ENOTFOUND);
  CHECK(bf_store_set_hit_status(st, 0, BF_HIT_CONFIRMED, "A", NULL) == BF_ENOTFOUND);
  CHECK(bf_store_commit(st) == 0);
  /* the next reviews in the same process read the committed version; rows read one at a time
   * stay right while this writer's commits add segments */
  const bf_firearm *f1 = bf_store_firearm(st, 1);
  CHECK(f1 && !strcmp(f1->serial, "REV-0"));
  for (int k = 0; k < 3; k++) {
    CHECK(bf_store_begin(st) == 0);
    CHECK(bf_store_set_hit_status(st, 6, k == 2 ? BF_HIT_REJECTED : BF_HIT_CONFIRMED, "B", NULL) == 0);
    CHECK(bf_store_commit(st) == 0);
    const bf_firearm *f3 = bf_store_firearm(st, 3);
    const bf_item *i6 = bf_store_item(st, 6);
    CHECK(f3 && !strcmp(f3->serial, "REV-2") && i6 && i6->owner == 3);
    CHECK(bf_store_item(st, 7) == NULL && bf_store_error(st) == 0);
  }
  /* an aborted review is forgotten */
  CHECK(bf_store_begin(st) == 0);
  CHECK(bf_store_set_hit_status(st, 1, BF_HIT_REJECTED, "C", "aborted") == 0);
  bf_store_abort(st);
  /* a review, then a write that loads the hit table, in one transaction */
  CHECK(bf_store_begin(st) == 0);
  CHECK(bf_store_set_hit_status(st, 2, BF_HIT_CONFIRMED, "D", "kept") == 0);
  bf_hit nh = {0};
  nh.query = 1, nh.candidate = 3, nh.run = 2, nh.score = 1;
  CHECK(bf_store_add_hits(st, &nh, 1, NULL) == 0);
  CHECK(bf_store_commit(st) == 0);
  bf_store_close(st);
  st = NULL;
  CHECK(bf_store_open(&st, path, BF_STORE_READ, NULL) == 0);
  if (!st)
    return;
  CHECK(hit_status(st, 3, note, sizeof note) == BF_HIT_REJECTED && !strcmp(note, "second"));
  CHECK(hit_status(st, 6, note, sizeof note) == BF_HIT_REJECTED && !strcmp(note, "six"));
  CHECK(hit_status(st, 1, note, sizeof note) == BF_HIT_CANDIDATE);
  CHECK(hit_status(st, 2, note, sizeof note) == BF_HIT_CONFIRMED && !strcmp(note, "kept"));
  CHECK(hit_status(st, 7, note, sizeof note) == BF_HIT_CANDIDATE);
  int np = -1;
  CHECK(bf_store_verify(st, NULL, NULL, &np) == 0 && np == 0);
  bf_store_close(st);
}

int main(void)
{
  dir = bf_t_tmpdir("store");
  char path[4200];
  snprintf(path, sizeof path, "%s/a.h5", dir);

  CHECK(bf_store_create(path, "tester") == 0);
  CHECK(bf_store_create(path, "tester") == BF_EEXIST);

  bf_store *st = NULL;
  CHECK(bf_store_open(&st, path, BF_STORE_WRITE, "tester") == 0);
  if (!st)
    return bf_t_done();

  /* a second writer (another process) is refused while we hold the lock */
  pid_t pid = fork();
  if (pid == 0) {
    bf_store *s2 = NULL;
    int r = bf_store_open(&s2, path, BF_STORE_WRITE, "other");
    bf_store_close(s2);
    _exit(r == BF_ELOCKED ? 0 : 1);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  CHECKF(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "second writer was not refused with BF_ELOCKED");

  /* writing outside a transaction is refused */
  bf_firearm fa = {0};
  snprintf(fa.serial, sizeof fa.serial, "RG-0001");
  snprintf(fa.make, sizeof fa.make, "Ruger");
  snprintf(fa.model, sizeof fa.model, "SR9");
  snprintf(fa.calibre, sizeof fa.calibre, "9mm Luger");
  snprintf(fa.transit, sizeof fa.transit, "DE;PL");
  CHECK(bf_store_add_firearm(st, NULL, &fa) == BF_EINVAL);

  int64_t fid = 0, eid = 0, it1 = 0, it2 = 0, it3 = 0, s1 = 0, s2 = 0;
  uint8_t bytes[3][5000];
  for (int i = 0; i < 3; i++)
    fake_bytes(bytes[i], sizeof bytes[i], i);

  CHECK(bf_store_begin(st) == 0);
  CHECK(bf_store_add_firearm(st, &fid, &fa) == 0 && fid == 1);
  bf_evidence ev = {0};
  snprintf(ev.case_no, sizeof ev.case_no, "C-2026-17");
  snprintf(ev.item, sizeof ev.item, "4, \"left\"");
  ev.kind = BF_KIND_BULLET;
  snprintf(ev.calibre, sizeof ev.calibre, "9mm Luger");
  CHECK(bf_store_add_evidence(st, &eid, &ev) == 0 && eid == 1);
  CHECK(bf_store_add_item(st, &it1, BF_KIND_CARTRIDGE, fa.calibre, BF_OWNER_FIREARM, fid) == 0);
  CHECK(bf_store_add_item(st, &it2, BF_KIND_BULLET, ev.calibre, BF_OWNER_EVIDENCE, eid) == 0);
  CHECK(bf_store_add_item(st, NULL, BF_KIND_BULLET, "", BF_OWNER_EVIDENCE, 99) == BF_ENOTFOUND);
  CHECK(bf_store_add_scan(st, &s1, it1, 0, bytes[0], sizeof bytes[0], "a.x3p", NULL) == 0);
  CHECK(bf_store_add_scan(st, &s2, it2, 1, bytes[1], sizeof bytes[1], "l1.x3p", NULL) == 0);
  /* a duplicate file is refused, naming the earlier scan */
  CHECK(bf_store_add_scan(st, NULL, it2, 2, bytes[0], sizeof bytes[0], "again.x3p", NULL) == BF_EEXIST);
  CHECK(strstr(bf_error_last(), "a.x3p") != NULL);
  bf_feature *fc = mkfeat(BF_KIND_CARTRIDGE, 40, 30, 0, 1.0f);
  bf_feature *fl1 = mkfeat(BF_KIND_BULLET, 500, 1, 1, 2.0f), *fl2 = mkfeat(BF_KIND_BULLET, 480, 1, 2, 3.0f);
  CHECK(bf_store_put_feature(st, "cartridge", it1, s1, fc) == 0);
  CHECK(bf_store_put_feature(st, "bullet", it2, s2, fl1) == 0);
  CHECK(bf_store_put_feature(st, "bullet", it2, 0, fl2) == 0);
  CHECK(bf_store_put_feature(st, "Bad Kind!", it2, 0, fl2) == BF_EINVAL);
  CHECK(bf_store_commit(st) == 0);

  /* an aborted transaction leaves nothing behind */
  CHECK(bf_store_begin(st) == 0);
  CHECK(bf_store_add_item(st, &it3, BF_KIND_CARTRIDGE, "", BF_OWNER_FIREARM, fid) == 0);
  CHECK(bf_store_add_scan(st, NULL, it3, 0, bytes[2], sizeof bytes[2], "c.x3p", NULL) == 0);
  bf_store_abort(st);
  CHECK(bf_store_nitems(st) == 2);
  CHECK(bf_store_nscans(st) == 2);
  CHECK(bf_store_find_sha256(st, "0000", NULL) == BF_ENOTFOUND);

  /* a new feature kind is added without any schema change (the search prefilter's) */
  CHECK(bf_store_begin(st) == 0);
  bf_feature *pf = mkfeat(BF_KIND_CARTRIDGE, 64, 1, 0, 9.0f);
  CHECK(bf_store_put_feature(st, "prefilter", it1, s1, pf) == 0);
  bf_hit hs[3] = {{0}};
  hs[0].query = it2, hs[0].candidate = it1, hs[0].run = 7, hs[0].score = 0.8, hs[0].rank = 1;
  hs[1].query = it1, hs[1].candidate = it2, hs[1].run = 7, hs[1].score = 0.3, hs[1].rank = 1;
  hs[2] = hs[0]; /* duplicate within the batch */
  size_t added = 0;
  CHECK(bf_store_add_hits(st, hs, 3, &added) == 0 && added == 2);
  CHECK(bf_store_add_hits(st, hs, 2, &added) == 0 && added == 0); /* resumed batch */
  int64_t both[2] = {it1, it2};
  CHECK(bf_store_set_searched(st, both, 2, 7) == 0);
  CHECK(bf_store_set_hit_status(st, 1, BF_HIT_CONFIRMED, "examiner A", "agreed") == 0);
  CHECK(bf_store_set_hit_status(st, 9, BF_HIT_CONFIRMED, NULL, NULL) == BF_ENOTFOUND);
  CHECK(bf_store_commit(st) == 0);
  bf_store_close(st);
  bf_feature_free(pf);

  /* read back as a reader */
  CHECK(bf_store_open(&st, path, BF_STORE_READ, NULL) == 0);
  if (!st)
    return bf_t_done();
  CHECK(bf_store_nitems(st) == 2 && bf_store_nfirearms(st) == 1 && bf_store_nevidence(st) == 1);
  const bf_firearm *rf = bf_store_firearm_by_serial(st, "RG-0001");
  CHECK(rf && !strcmp(rf->model, "SR9") && !strcmp(rf->transit, "DE;PL") && !strcmp(rf->user, "tester"));
  const bf_evidence *re = bf_store_evidence_by_case_item(st, "C-2026-17", "4, \"left\"");
  CHECK(re && re->kind == BF_KIND_BULLET);
  const bf_item *ri = bf_store_item(st, it2);
  CHECK(ri && ri->kind == BF_KIND_BULLET && ri->nscans == 1 && ri->searched == 7);
  int64_t *ids = NULL;
  size_t nids = 0;
  CHECK(bf_store_list_items(st, BF_KIND_CARTRIDGE, "9mm Luger", &ids, &nids) == 0 && nids == 1 &&
        ids[0] == it1);
  free(ids);
  bf_feature **fv = NULL;
  int nf = 0;
  CHECK(bf_store_get_features(st, "bullet", it2, &fv, &nf) == 0 && nf == 2);
  if (nf == 2) {
    CHECK(fv[0]->land == 1 && fv[1]->land == 2 && fv[0]->nx == 500 && fv[1]->nx == 480);
    CHECK(isnan(fv[0]->z[0]) && fv[0]->z[10] == fl1->z[10] && fv[1]->z[479] == fl2->z[479]);
    CHECK(fv[1]->params[2] == 3.0 && fv[1]->version == 3 && fv[1]->dx == 1.5);
  }
  for (int i = 0; i < nf; i++)
    bf_feature_free(fv[i]);
  free(fv);
  CHECK(bf_store_get_features(st, "cartridge", it2, &fv, &nf) == BF_ENOTFOUND);
  CHECK(bf_store_get_features(st, "cartridge", it1, &fv, &nf) == 0 && nf == 1);
  if (nf == 1)
    CHECK(fv[0]->nx == 40 && fv[0]->ny == 30 && fv[0]->z[1199] == fc->z[1199]);
  for (int i = 0; i < nf; i++)
    bf_feature_free(fv[i]);
  free(fv);
  const bf_feat_row *rows;
  size_t nrows;
  CHECK(bf_store_feature_index(st, "prefilter", &rows, &nrows) == 0 && nrows == 1 && rows[0].count == 64);
  CHECK(bf_store_feature_index(st, "nosuch", &rows, &nrows) == 0 && nrows == 0);
  bf_feature *blk[2] = {0};
  CHECK(bf_store_read_block(st, "bullet", 0, 2, blk) == 0 && blk[1] && blk[1]->land == 2);
  bf_feature_free(blk[0]);
  bf_feature_free(blk[1]);

  bf_hit *hv = NULL;
  size_t nh = 0;
  bf_hit_filter hf = BF_HIT_FILTER_INIT;
  CHECK(bf_store_query_hits(st, &hf, &hv, &nh) == 0 && nh == 2 && hv[0].score == 0.8);
  free(hv);
  hf.case_no = "C-2026-17";
  hf.min_score = 0.5;
  CHECK(bf_store_query_hits(st, &hf, &hv, &nh) == 0 && nh == 1 && hv[0].status == BF_HIT_CONFIRMED &&
        !strcmp(hv[0].examiner, "examiner A"));
  free(hv);
  bf_hit_filter hs2 = BF_HIT_FILTER_INIT;
  hs2.serial = "RG-0001";
  hs2.status = BF_HIT_CANDIDATE;
  CHECK(bf_store_query_hits(st, &hs2, &hv, &nh) == 0 && nh == 1 && hv[0].score == 0.3);
  free(hv);

  uint8_t *xb = NULL;
  size_t xn = 0;
  CHECK(bf_store_read_x3p(st, s2, &xb, &xn) == 0 && xn == sizeof bytes[1] && !memcmp(xb, bytes[1], xn));
  free(xb);
  bf_audit_rec *au = NULL;
  size_t nau = 0;
  CHECK(bf_store_read_audit(st, &au, &nau) == 0 && nau >= 12);
  int saw_status = 0;
  for (size_t i = 0; i < nau; i++)
    saw_status |= !strcmp(au[i].action, "hit status") && !strcmp(au[i].user, "tester");
  CHECK(saw_status);
  free(au);
  int np = -1;
  CHECK(bf_store_verify(st, NULL, NULL, &np) == 0 && np == 0);
  bf_store_close(st);

  /* a kind looked up while absent (remembered as such) can still be created and read back */
  CHECK(bf_store_open(&st, path, BF_STORE_WRITE, "tester") == 0);
  if (st) {
    for (int k = 0; k < 2; k++)
      CHECK(bf_store_get_features(st, "late", it1, &fv, &nf) == BF_ENOTFOUND);
    bf_feature *lf = mkfeat(BF_KIND_CARTRIDGE, 12, 7, 0, 2.5f);
    CHECK(bf_store_begin(st) == 0);
    CHECK(bf_store_add_kind(st, "late", 1) == 0);
    CHECK(bf_store_put_feature(st, "late", it1, s1, lf) == 0);
    CHECK(bf_store_commit(st) == 0);
    CHECKF(bf_store_get_features(st, "late", it1, &fv, &nf) == 0 && nf == 1 && fv[0]->nx == 12 &&
               fv[0]->z[5] == lf->z[5],
           "kind created after an absent lookup: %s", bf_error_last());
    for (int i = 0; i < nf; i++)
      bf_feature_free(fv[i]);
    free(fv);
    bf_feature_free(lf);
    bf_store_close(st);
  }

  /* a reader may open while a writer holds the lock */
  bf_store *w = NULL, *r = NULL;
  CHECK(bf_store_open(&w, path, BF_STORE_WRITE, NULL) == 0);
  CHECK(bf_store_open(&r, path, BF_STORE_READ, NULL) == 0);
  if (w && r) {
    CHECK(bf_store_begin(w) == 0);
    CHECK(bf_store_add_item(w, NULL, BF_KIND_CARTRIDGE, "", BF_OWNER_FIREARM, 1) == 0);
    CHECK(bf_store_commit(w) == 0);
    CHECK(bf_store_nitems(r) == 2); /* the reader keeps its snapshot */
  }
  bf_store_close(r);
  bf_store_close(w);

  /* corruption: flip bytes inside the stored X3P data -> verify reports it */
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s/b.h5' && cp -r '%s.d' '%s/b.h5.d'", path, dir, path, dir);
  CHECK(system(cmd) == 0);
  char bpath[4200];
  snprintf(bpath, sizeof bpath, "%s/b.h5", dir);
  CHECK(flip_in_segments(bpath, "/scans_x3p/2") == 64);
  bf_store *b = NULL;
  int rc = bf_store_open(&b, bpath, BF_STORE_READ, NULL);
  if (rc == 0) {
    int n2 = 0;
    CHECKF(bf_store_verify(b, count_problem, &n2, NULL) != 0 && n2 > 0,
           "verify did not notice 64 flipped bytes in the middle of the file");
    bf_store_close(b);
  } else
    CHECK(rc < 0); /* damage in metadata: refused at open, also fine */

  /* a damaged table is an error, never an empty table: load, verify and the getters say so */
  snprintf(cmd, sizeof cmd, "rm -rf '%s/c.h5' '%s/c.h5.d' && cp '%s' '%s/c.h5' && cp -r '%s.d' '%s/c.h5.d'",
           dir, dir, path, dir, path, dir);
  CHECK(system(cmd) == 0);
  snprintf(bpath, sizeof bpath, "%s/c.h5", dir);
  CHECK(flip_in_segments(bpath, "/firearms") == 64);
  if (bf_store_open(&b, bpath, BF_STORE_READ, NULL) == 0) {
    const bf_firearm *gf = NULL;
    CHECK(bf_store_get_firearm(b, 1, &gf) != 0 && gf == NULL && bf_store_get_firearm(b, 1, &gf) != BF_ENOTFOUND);
    CHECK(bf_store_error(b) != 0 && strstr(bf_error_last(), "/firearms") != NULL);
    CHECK(bf_store_load(b) != 0);
    int n3 = 0, np3 = 0;
    CHECK(bf_store_verify(b, count_problem, &n3, &np3) != 0 && np3 >= 1 && n3 == np3);
    bf_store_close(b);
  }
  snprintf(cmd, sizeof cmd, "'%s/c.h5'", dir);
  char out[4300], err[4300];
  snprintf(out, sizeof out, "%s/info.out", dir);
  snprintf(err, sizeof err, "%s/info.err", dir);
  CHECK(bf_t_bfm((snprintf(cmd, sizeof cmd, "info '%s'", bpath), cmd), out, err) == 1);
  CHECKF(strstr(bf_t_read(err), "firearms") != NULL, "bfm info on a damaged table: %s", bf_t_read(err));
  CHECK(bf_t_bfm((snprintf(cmd, sizeof cmd, "verify '%s'", bpath), cmd), out, err) == 1);
  CHECKF(strstr(bf_t_read(out), "0 problem(s)") == NULL, "verify: %s", bf_t_read(out));

  /* a feature value that fails its checksum: the read names the item and the dataset */
  snprintf(cmd, sizeof cmd, "rm -rf '%s/d.h5' '%s/d.h5.d' && cp '%s' '%s/d.h5' && cp -r '%s.d' '%s/d.h5.d'",
           dir, dir, path, dir, path, dir);
  CHECK(system(cmd) == 0);
  snprintf(bpath, sizeof bpath, "%s/d.h5", dir);
  CHECK(flip_in_segments(bpath, "/features/bullet/data") == 64);
  if (bf_store_open(&b, bpath, BF_STORE_READ, NULL) == 0) {
    bf_feature **bv = NULL;
    int nb = 0;
    CHECK(bf_store_get_features(b, "bullet", it2, &bv, &nb) == BF_ECHECKSUM);
    CHECKF(strstr(bf_error_last(), "bullet/data") && strstr(bf_error_last(), "item 2"), "%s", bf_error_last());
    bf_store_close(b);
  }

  /* not a store */
  snprintf(cmd, sizeof cmd, "%s/junk.h5", dir);
  FILE *fp = fopen(cmd, "w");
  if (fp) {
    fputs("not hdf5", fp);
    fclose(fp);
  }
  CHECK(bf_store_open(&b, cmd, BF_STORE_READ, NULL) == BF_EFORMAT);
  CHECK(strstr(bf_error_last(), "junk.h5") != NULL);
  snprintf(cmd, sizeof cmd, "%s/none.h5", dir);
  CHECK(bf_store_open(&b, cmd, BF_STORE_READ, NULL) == BF_ENOTFOUND);

  /* read-only store file: refused for writing, unchanged */
  chmod(path, 0444);
  if (access(path, W_OK) != 0) { /* (root ignores modes) */
    CHECK(bf_store_open(&b, path, BF_STORE_WRITE, NULL) == BF_EIO);
    CHECK(strstr(bf_error_last(), "read-only") != NULL);
  }
  chmod(path, 0644);

  /* updates are appended rows, the last one wins across segments; compaction keeps only it,
   * while a reader holding the old snapshot goes on reading segments the compaction deleted */
  CHECK(bf_store_open(&w, path, BF_STORE_WRITE, "tester") == 0);
  for (int k = 0; w && k < 3; k++) {
    CHECK(bf_store_begin(w) == 0);
    CHECK(bf_store_set_hit_status(w, 2, k == 1 ? BF_HIT_CONFIRMED : BF_HIT_REJECTED, "B", k == 2 ? "final" : "x") == 0);
    CHECK(bf_store_commit(w) == 0);
  }
  bf_store_close(w);
  CHECK(bf_store_open(&r, path, BF_STORE_READ, NULL) == 0);
  bf_store_stats ss;
  if (r) {
    bf_hit *hq = NULL;
    size_t nq = 0;
    bf_hit_filter hq2 = BF_HIT_FILTER_INIT;
    hq2.status = BF_HIT_REJECTED;
    CHECK(bf_store_query_hits(r, &hq2, &hq, &nq) == 0 && nq == 1 && !strcmp(hq[0].note, "final"));
    free(hq);
    CHECK(bf_store_stats_get(r, &ss) == 0 && ss.segments >= 6 && ss.superseded_rows >= 3);
  }
  char stale[4400];
  snprintf(stale, sizeof stale, "%s.d/seg-99999999.h5", path);
  FILE *sf = fopen(stale, "w");
  if (sf)
    fclose(sf);
  bf_store_compact_opts co = BF_STORE_COMPACT_OPTS_INIT;
  co.all = 1;
  bf_store_compact_result cr;
  CHECK(bf_store_compact(path, &co, &cr) == 0 && cr.segments_after == 2 && cr.rows_dropped >= 3);
  CHECK(access(stale, F_OK) != 0); /* a file no manifest lists: removed by the writer */
  if (r) { /* the old snapshot still reads features and originals of deleted segments */
    bf_feature **fv2 = NULL;
    int nf2 = 0;
    CHECK(bf_store_get_features(r, "bullet", it2, &fv2, &nf2) == 0 && nf2 == 2);
    for (int i = 0; i < nf2; i++)
      bf_feature_free(fv2[i]);
    free(fv2);
    int np2 = -1;
    CHECK(bf_store_verify(r, NULL, NULL, &np2) == 0 && np2 == 0);
    bf_store_close(r);
  }
  CHECK(bf_store_open(&r, path, BF_STORE_READ, NULL) == 0);
  if (r) {
    CHECK(bf_store_stats_get(r, &ss) == 0 && ss.segments == 2 && ss.superseded_rows == 0);
    const bf_item *gi = NULL;
    CHECK(bf_store_get_item(r, it2, &gi) == 0 && gi->searched == 7 && gi->nscans == 1);
    CHECK(bf_store_get_item(r, 99, &gi) == BF_ENOTFOUND);
    bf_hit *hq = NULL;
    size_t nq = 0;
    CHECK(bf_store_query_hits(r, NULL, &hq, &nq) == 0 && nq == 2);
    for (size_t i = 0; i < nq; i++)
      if (hq[i].id == 2)
        CHECK(hq[i].status == BF_HIT_REJECTED && !strcmp(hq[i].note, "final"));
    free(hq);
    uint8_t *xb2 = NULL;
    size_t xn2 = 0;
    CHECK(bf_store_read_x3p(r, s2, &xb2, &xn2) == 0 && xn2 == sizeof bytes[1] && !memcmp(xb2, bytes[1], xn2));
    free(xb2);
    int np2 = -1;
    CHECK(bf_store_verify(r, NULL, NULL, &np2) == 0 && np2 == 0);
    bf_store_close(r);
  }

  /* a planted STORE.lock symlink is refused and its target left untouched */
  char lk[4400], target[4400];
  snprintf(lk, sizeof lk, "%s.lock", path);
  snprintf(target, sizeof target, "%s/precious.txt", dir);
  sf = fopen(target, "w");
  if (sf) {
    fputs("precious\n", sf);
    fclose(sf);
  }
  unlink(lk);
  CHECK(symlink(target, lk) == 0);
  CHECK(bf_store_open(&w, path, BF_STORE_WRITE, NULL) == BF_EIO && strstr(bf_error_last(), "symbolic link"));
  CHECK(!strcmp(bf_t_read(target), "precious\n"));
  unlink(lk);

  /* schema 1 (one file): refused with a message naming bfm upgrade; the upgrade is lossless */
  char v1[4200];
  snprintf(v1, sizeof v1, "%s/v1.h5", dir);
  CHECK(make_v1(path, v1) == 0);
  CHECK(bf_store_open(&r, v1, BF_STORE_READ, NULL) == BF_ESCHEMA && strstr(bf_error_last(), "bfm upgrade"));
  CHECK(bf_store_open(&r, v1, BF_STORE_WRITE, NULL) == BF_ESCHEMA);
  CHECK(bf_store_upgrade(v1, "tester") == 0);
  CHECK(bf_store_upgrade(v1, "tester") == BF_EEXIST);
  CHECKF(bf_store_open(&r, v1, BF_STORE_READ, NULL) == 0, "%s", bf_error_last());
  if (r) {
    int np2 = -1;
    CHECK(bf_store_verify(r, NULL, NULL, &np2) == 0 && np2 == 0);
    CHECK(bf_store_nitems(r) == 3 && bf_store_nscans(r) == 2 && bf_store_nfirearms(r) == 1);
    bf_hit *hq = NULL;
    size_t nq = 0;
    CHECK(bf_store_query_hits(r, NULL, &hq, &nq) == 0 && nq == 2 && isnan(hq[0].log10_lr) &&
          hq[0].score == 0.8);
    free(hq);
    uint8_t *xb2 = NULL;
    size_t xn2 = 0;
    CHECK(bf_store_read_x3p(r, s2, &xb2, &xn2) == 0 && xn2 == sizeof bytes[1] && !memcmp(xb2, bytes[1], xn2));
    free(xb2);
    const bf_feat_row *pr;
    size_t npr;
    CHECK(bf_store_feature_index(r, "prefilter", &pr, &npr) == 0 && npr == 1);
    bf_store_close(r);
  }

  bf_feature_free(fc);
  bf_feature_free(fl1);
  bf_feature_free(fl2);
  compact_chunks();
  row_lookups();
  one_row_reviews();
  keyed_ingest();
  return bf_t_done();
}
