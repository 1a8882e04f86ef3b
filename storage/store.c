/* The HDF5 segment store: a manifest naming immutable segment files, transactions that write
 * one new segment each, last-row-wins updates, lookups, verify, compaction and upgrade.
 * See bf_store.h for the layout and why. */
#define _GNU_SOURCE
#include "bf_store.h"
#include "bf_text.h"
#include "bf_error.h"
#include "bf_hash.h"

#include <hdf5.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- table descriptions: one field table per record struct drives create/append/read ---- */

enum { T_I64, T_I32, T_F64, T_F32, T_STR, T_F64A };
typedef struct fld {
  const char *name;
  size_t off;
  int type;
  size_t size; /* strings: bytes; arrays: element count */
} fld;
typedef struct tbl {
  const char *path;
  size_t rowsize;
  const fld *f;
  int nf;
  const char *units, *about;
} tbl;

#define MSZ(T, m) sizeof(((T *)0)->m)
#define FI64(T, m) {#m, offsetof(T, m), T_I64, 0}
#define FI32(T, m) {#m, offsetof(T, m), T_I32, 0}
#define FF64(T, m) {#m, offsetof(T, m), T_F64, 0}
#define FF32(T, m) {#m, offsetof(T, m), T_F32, 0}
#define FSTR(T, m) {#m, offsetof(T, m), T_STR, MSZ(T, m)}
#define FARR(T, m) {#m, offsetof(T, m), T_F64A, MSZ(T, m) / sizeof(double)}

static const fld firearm_f[] = {
  FI64(bf_firearm, id), FSTR(bf_firearm, serial), FSTR(bf_firearm, make),
  FSTR(bf_firearm, manufacturer), FSTR(bf_firearm, model), FSTR(bf_firearm, calibre),
  FSTR(bf_firearm, country), FSTR(bf_firearm, manufactured), FSTR(bf_firearm, markings),
  FSTR(bf_firearm, testfire_date), FSTR(bf_firearm, test_lab), FSTR(bf_firearm, export_date),
  FSTR(bf_firearm, export_country), FSTR(bf_firearm, import_country), FSTR(bf_firearm, transit),
  FSTR(bf_firearm, consignee), FSTR(bf_firearm, created), FSTR(bf_firearm, user)};
static const fld evidence_f[] = {
  FI64(bf_evidence, id), FSTR(bf_evidence, case_no), FSTR(bf_evidence, agency),
  FSTR(bf_evidence, item), FI32(bf_evidence, kind), FSTR(bf_evidence, calibre),
  FSTR(bf_evidence, date), FSTR(bf_evidence, place), FSTR(bf_evidence, lab),
  FSTR(bf_evidence, notes), FSTR(bf_evidence, created), FSTR(bf_evidence, user)};
static const fld item_f[] = {
  FI64(bf_item, id), FI32(bf_item, kind), FI32(bf_item, owner_type), FI64(bf_item, owner),
  FSTR(bf_item, calibre), FI32(bf_item, nscans), FI64(bf_item, searched), FSTR(bf_item, created)};
static const fld scan_f[] = {
  FI64(bf_scan_rec, id), FI64(bf_scan_rec, item), FI32(bf_scan_rec, land), FI32(bf_scan_rec, nx),
  FI32(bf_scan_rec, ny), FF64(bf_scan_rec, dx), FF64(bf_scan_rec, dy), FI64(bf_scan_rec, nbytes),
  FSTR(bf_scan_rec, sha256), FSTR(bf_scan_rec, name), FSTR(bf_scan_rec, instrument),
  FSTR(bf_scan_rec, date), FSTR(bf_scan_rec, created), FSTR(bf_scan_rec, user)};
static const fld feat_f[] = {
  FI64(bf_feat_row, item), FI64(bf_feat_row, scan), FI32(bf_feat_row, land),
  FI32(bf_feat_row, nx), FI32(bf_feat_row, ny), FI32(bf_feat_row, quality_flags),
  FI32(bf_feat_row, version), FI32(bf_feat_row, kind), FF32(bf_feat_row, valid_fraction),
  FF64(bf_feat_row, dx), FF64(bf_feat_row, dy), FARR(bf_feat_row, params),
  FI64(bf_feat_row, offset), FI64(bf_feat_row, count)};
static const fld hit_f[] = {
  FI64(bf_hit, id), FI64(bf_hit, query), FI64(bf_hit, candidate), FI64(bf_hit, run),
  FF64(bf_hit, score), FARR(bf_hit, scores), FI32(bf_hit, rank), FI32(bf_hit, status),
  FSTR(bf_hit, time), FSTR(bf_hit, examiner), FSTR(bf_hit, when), FSTR(bf_hit, note),
  FF64(bf_hit, log10_lr)}; /* last: schema 1 had every field but this one (bfm upgrade) */
static const fld audit_f[] = {
  FI64(bf_audit_rec, seq), FSTR(bf_audit_rec, time), FSTR(bf_audit_rec, user),
  FSTR(bf_audit_rec, action), FSTR(bf_audit_rec, what)};

#define NF(a) ((int)(sizeof a / sizeof a[0]))
static const tbl T_FIREARMS = {"/firearms", sizeof(bf_firearm), firearm_f, NF(firearm_f),
  "dates: ISO 8601 text", "manufacture-time test-fire records and transfer history"};
static const tbl T_EVIDENCE = {"/evidence", sizeof(bf_evidence), evidence_f, NF(evidence_f),
  "dates: ISO 8601 text; kind: 1 cartridge case, 2 bullet", "crime-scene items"};
static const tbl T_ITEMS = {"/items", sizeof(bf_item), item_f, NF(item_f),
  "kind: 1 cartridge case, 2 bullet; owner_type: 1 firearm, 2 evidence; searched: batch run id",
  "comparable items: a cartridge case or a bullet (its lands); a later row with the same id supersedes"};
static const tbl T_SCANS = {"/scans", sizeof(bf_scan_rec), scan_f, NF(scan_f),
  "dx, dy: micrometres; nbytes: bytes; sha256: hex of the original file",
  "submitted scans; original bytes in /scans_x3p/<id>"};
static const tbl T_FEAT = {"index", sizeof(bf_feat_row), feat_f, NF(feat_f),
  "dx, dy: micrometres; offset, count: elements of data (float32 micrometres)",
  "feature index: one row per scan feature, pointing into data"};
static const tbl T_HITS = {"/hits", sizeof(bf_hit), hit_f, NF(hit_f),
  "status: 0 candidate, 1 confirmed, 2 rejected; times ISO 8601 UTC; log10_lr: NaN = not computed",
  "comparison results; (run, query, candidate) unique; a later row with the same id supersedes"};
static const tbl T_HITS_V1 = {"/hits", sizeof(bf_hit), hit_f, NF(hit_f) - 1, "", ""};
static const tbl T_AUDIT = {"/audit", sizeof(bf_audit_rec), audit_f, NF(audit_f),
  "time: ISO 8601 UTC", "append-only log of every write"};
typedef struct keyrow {
  int64_t hash, id;
} keyrow;
static const fld key_f[] = {FI64(keyrow, hash), FI64(keyrow, id)};
static const tbl T_KEYS = {"", sizeof(keyrow), key_f, NF(key_f),
  "hash: 64-bit FNV-1a of the key (firearms: serial; evidence: case_no, 0x1f, item; scans: sha256)",
  "the key of every row of this segment's table, sorted by hash: duplicate checks without reading "
  "the table"};

#define MAXKINDS 16

/* One segment of the snapshot: its manifest entry and its open file. */
typedef struct seg {
  int64_t seq, bytes, naudit;
  char name[64], created[32];
  hid_t f;
} seg;

/* A stretch of a kind's data living in one segment: global offsets [base, base + len). */
typedef struct piece {
  int segi; /* index into st->segs; st->nseg = the transaction's segment */
  int64_t base, len;
} piece;

typedef struct kindcache {
  char name[48];
  bf_feat_row *rows; /* offsets are global: into the kind's data of all segments in order */
  size_t n, cap, n0; /* n0: rows committed */
  piece *pc;
  int npc, cpc;
  int64_t total; /* committed values */
  int compress, sorted;
  int indexed; /* 0: only where the data is (pieces; a writer appending); rows = the transaction's */
  hid_t txds; /* the kind's data in the transaction's segment, or -1 */
  int64_t txlen;
} kindcache;

/* An in-memory table: rows by id (id = index + 1; the id is each row's first field). */
enum { TB_FA, TB_EV, TB_IT, TB_SC, TB_HI, NTB };
typedef struct tab {
  const tbl *t;
  char *rows;
  size_t n, cap, n0; /* n0: rows committed */
  int *seg;          /* segment index of each row's last version */
  uint8_t *dirty;    /* committed rows changed in the transaction */
  size_t *dl, ndl, cdl; /* their indices: a commit never scans the whole table */
  int loaded;
  /* rows fetched one by one while the table is not loaded (tab_row): each segment's layout
   * (rows; new ids lo .. lo + nnew - 1 after its nrows - nnew changed ones) and the rows by id */
  int lz_state; /* 0: layout not read, 1: read, -1: unusable (load the table instead) */
  int64_t *lz_n, *lz_lo, *lz_nnew, lz_max, lz_changed;
  int lz_ns; /* segments the layout covers: a commit since then adds one, so it is read again */
  int lz_reads; /* rows read one by one so far (TAB_LAZY_READS) */
  int64_t *lz_id; /* open addressing: id (0 empty) -> lz_row[slot] */
  char **lz_row;
  size_t lz_cap, lz_cnt;
  /* while the table is not loaded: committed rows the transaction changed (tab_change), and
   * the rows it added (tab_add; ids lz_max + 1 ...) */
  char *tx_chg, *tx_new;
  size_t n_chg, c_chg, n_new, c_new;
  /* keyed tables (row_key): open addressing, id (0 empty) and the key's hash */
  int64_t *ks;
  uint64_t *kh;
  size_t kscap, ksn;
  int *ksbig, nksbig; /* segments whose key lists are searched in the file, not read (KEYS_READ) */
  int ksearches;      /* lookups so far: a bulk ingest reads the long lists after KEYS_SEARCHES */
} tab;

struct bf_store {
  char path[4096], dir[4200], tmp[4200], lockpath[4200];
  int mode, lockfd, intx;
  char user[64];
  seg *segs;
  int nseg, cseg;
  int64_t gen, next_seq;
  hid_t txf; /* the transaction's new segment */
  char txname[64];
  tab tb[NTB];
  bf_audit_rec *aud; /* audit rows of the transaction */
  size_t naud, caud;
  int64_t naudit; /* committed audit rows */
  kindcache kinds[MAXKINDS];
  int nkinds;
  char absent[MAXKINDS][48]; /* kinds looked up and found in no segment of this snapshot */
  int nabsent;
  int load_err; /* first table that failed to load since open (sticky) */
  char load_msg[600];
};

#define FA(st) ((bf_firearm *)(st)->tb[TB_FA].rows)
#define EV(st) ((bf_evidence *)(st)->tb[TB_EV].rows)
#define IT(st) ((bf_item *)(st)->tb[TB_IT].rows)
#define SC(st) ((bf_scan_rec *)(st)->tb[TB_SC].rows)
#define HI(st) ((bf_hit *)(st)->tb[TB_HI].rows)
#define NFA(st) ((st)->tb[TB_FA].n)
#define NEV(st) ((st)->tb[TB_EV].n)
#define NIT(st) ((st)->tb[TB_IT].n)
#define NSC(st) ((st)->tb[TB_SC].n)
#define NHI(st) ((st)->tb[TB_HI].n)

enum { L_FA = 1, L_EV = 2, L_IT = 4, L_SC = 8, L_HI = 16, L_ALL = 31 };

/* HDF5 1.10.8 crashes in its exit-time teardown when a file's close failed (disk full): the
 * half-closed file stays registered. After such a failure we skip that teardown: our handler,
 * registered after HDF5's, runs first and ends the process (the data are safe: nothing was
 * committed, the transaction's segment is already removed). */
static int hdf5_poisoned;
static void skip_hdf5_teardown(void)
{
  if (hdf5_poisoned) {
    fflush(stdout);
    fflush(stderr);
    _exit(1);
  }
}

static void quiet_hdf5(void)
{
  static int done;
  if (!done) {
    H5open();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    atexit(skip_hdf5_teardown);
    /* a reader holds every segment of its snapshot open: allow many files */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    done = 1;
  }
}

static void scopy(char *dst, size_t n, const char *src)
{
  size_t l = src ? strnlen(src, n - 1) : 0;
  if (l)
    memcpy(dst, src, l);
  dst[l] = 0;
}

void bf_store_now(char out[32])
{
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
  if (need <= *cap)
    return 0;
  size_t nc = *cap ? *cap * 2 : 64;
  while (nc < need)
    nc *= 2;
  void *q = realloc(*p, nc * size);
  if (!q)
    return bf_error_set(BF_ENOMEM, "out of memory growing a store table to %zu rows", nc);
  *p = q;
  *cap = nc;
  return 0;
}

static size_t hash2_i64(int64_t v)
{
  uint64_t h = (uint64_t)v * 0x9E3779B97F4A7C15ull;
  return (size_t)(h ^ (h >> 29));
}

/* ---- generic table I/O ---- */

static hid_t tbl_memtype(const tbl *t)
{
  hid_t ct = H5Tcreate(H5T_COMPOUND, t->rowsize);
  for (int i = 0; i < t->nf; i++) {
    const fld *f = &t->f[i];
    hid_t mt = -1;
    if (f->type == T_I64)
      mt = H5Tcopy(H5T_NATIVE_INT64);
    else if (f->type == T_I32)
      mt = H5Tcopy(H5T_NATIVE_INT32);
    else if (f->type == T_F64)
      mt = H5Tcopy(H5T_NATIVE_DOUBLE);
    else if (f->type == T_F32)
      mt = H5Tcopy(H5T_NATIVE_FLOAT);
    else if (f->type == T_STR) {
      mt = H5Tcopy(H5T_C_S1);
      H5Tset_size(mt, f->size);
      H5Tset_strpad(mt, H5T_STR_NULLTERM);
    } else {
      hsize_t d = f->size;
      mt = H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &d);
    }
    H5Tinsert(ct, f->name, f->off, mt);
    H5Tclose(mt);
  }
  return ct;
}

static void attr_str(hid_t obj, const char *name, const char *val)
{
  hid_t ty = H5Tcopy(H5T_C_S1);
  H5Tset_size(ty, strlen(val) + 1);
  hid_t sp = H5Screate(H5S_SCALAR);
  if (H5Aexists(obj, name) > 0)
    H5Adelete(obj, name);
  hid_t a = H5Acreate2(obj, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) {
    H5Awrite(a, ty, val);
    H5Aclose(a);
  }
  H5Sclose(sp);
  H5Tclose(ty);
}

static void attr_i64(hid_t obj, const char *name, int64_t v)
{
  hid_t sp = H5Screate(H5S_SCALAR);
  if (H5Aexists(obj, name) > 0)
    H5Adelete(obj, name);
  hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) {
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
  }
  H5Sclose(sp);
}

static int64_t attr_get_i64(hid_t obj, const char *name, int64_t dflt)
{
  int64_t v = dflt;
  if (H5Aexists(obj, name) > 0) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_INT64, &v) < 0)
      v = dflt;
    if (a >= 0)
      H5Aclose(a);
  }
  return v;
}

static hid_t chunked_dcpl(hsize_t chunk, int compress)
{
  hid_t p = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(p, 1, &chunk);
  if (compress) {
    H5Pset_shuffle(p);
    H5Pset_deflate(p, 4);
  }
  H5Pset_fletcher32(p);
  return p;
}

/* Creates table t at loc holding rows[0..n) (the file type is the memory type: padding
 * included, squeezed out by shuffle+deflate; no conversion on read or write). */
static int tbl_write_new(hid_t loc, const tbl *t, const char *path, const void *rows, size_t n)
{
  int rc = 0;
  hsize_t d0 = n, dmax = H5S_UNLIMITED;
  hsize_t chunk = 65536 / t->rowsize + 1;
  if (n && n < chunk)
    chunk = n; /* a small segment's table is one small chunk */
  hid_t mt = tbl_memtype(t), ft = H5Tcopy(mt);
  hid_t sp = H5Screate_simple(1, &d0, &dmax), p = chunked_dcpl(chunk, 1);
  hid_t ds = H5Dcreate2(loc, path, ft, sp, H5P_DEFAULT, p, H5P_DEFAULT);
  if (ds < 0 || (n && H5Dwrite(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0))
    rc = bf_error_set(BF_EIO, "cannot write table %s (disk full?)", path);
  else {
    attr_str(ds, "units", t->units);
    attr_str(ds, "description", t->about);
  }
  if (ds >= 0 && H5Dclose(ds) < 0 && !rc)
    rc = bf_error_set(BF_EIO, "cannot write table %s (disk full?)", path);
  H5Pclose(p);
  H5Sclose(sp);
  H5Tclose(ft);
  H5Tclose(mt);
  return rc;
}

/* Reads a whole table at loc/path into *rows (malloc'd, *n rows). A missing table is empty
 * when optional, else BF_ESCHEMA. */
static int tbl_read_at(hid_t loc, const tbl *t, const char *path, int optional, void **rows, size_t *n)
{
  int rc = BF_EIO;
  hid_t ds = -1, fs = -1, mt = -1;
  *n = 0;
  *rows = NULL;
  if (H5Lexists(loc, path, H5P_DEFAULT) <= 0) {
    rc = optional ? 0 : bf_error_set(BF_ESCHEMA, "table %s is missing", path);
    goto done;
  }
  if ((ds = H5Dopen2(loc, path, H5P_DEFAULT)) < 0) {
    rc = bf_error_set(BF_ECHECKSUM, "table %s cannot be opened (store damaged)", path);
    goto done;
  }
  fs = H5Dget_space(ds);
  hsize_t cur = 0;
  H5Sget_simple_extent_dims(fs, &cur, NULL);
  if (!(*rows = malloc((cur ? cur : 1) * t->rowsize))) {
    rc = bf_error_set(BF_ENOMEM, "out of memory reading table %s", path);
    goto done;
  }
  mt = tbl_memtype(t);
  if (cur && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, *rows) < 0) {
    rc = bf_error_set(BF_ECHECKSUM, "cannot read table %s (checksum or storage error)", path);
    goto done;
  }
  *n = cur;
  rc = 0;
done:
  if (mt >= 0)
    H5Tclose(mt);
  if (fs >= 0)
    H5Sclose(fs);
  if (ds >= 0)
    H5Dclose(ds);
  if (rc) {
    free(*rows);
    *rows = NULL;
  }
  return rc;
}

/* Appends n floats to a 1-D extendible dataset; *at gets where they start. */
static int ds_append_floats(hid_t ds, const float *v, int64_t n, int64_t *at)
{
  hid_t fs = H5Dget_space(ds), ms = -1;
  hsize_t cur = 0, cnt = (hsize_t)n;
  int rc = BF_EIO;
  H5Sget_simple_extent_dims(fs, &cur, NULL);
  H5Sclose(fs);
  fs = -1;
  *at = (int64_t)cur;
  if (!n)
    return 0;
  hsize_t nd = cur + cnt;
  if (H5Dset_extent(ds, &nd) < 0)
    goto done;
  fs = H5Dget_space(ds);
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, &cur, NULL, &cnt, NULL);
  ms = H5Screate_simple(1, &cnt, NULL);
  if (H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, v) >= 0)
    rc = 0;
done:
  if (ms >= 0)
    H5Sclose(ms);
  if (fs >= 0)
    H5Sclose(fs);
  return rc;
}

static int64_t ds_len(hid_t ds)
{
  hsize_t cur = 0;
  hid_t fs = H5Dget_space(ds);
  H5Sget_simple_extent_dims(fs, &cur, NULL);
  H5Sclose(fs);
  return (int64_t)cur;
}

/* ---- unique keys ----
 * Firearms by serial, evidence by case number and item, scans by SHA-256: an ingest looks each
 * up, so a lookup must neither scan nor load the table (at 1,000,000 firearms that was 1.9 GB of
 * rows read, and scanned twice per item). Every segment holds /keys/<table>: (hash, id) of each
 * row of its table, sorted by hash; a writer reads them into one hash index (16 bytes a row),
 * then checks a hash's rows one by one. Keys never change once stored. A segment written before
 * the keys existed has none: the table is loaded and the index made from its rows. Hits are
 * keyed by (run, query, candidate) with the same index, in memory only (a batch loads them). */

/* The key of a row of table k in buf; 0 when the table has none. */
static int row_key(int k, const char *row, char *buf, size_t n)
{
  if (k == TB_FA)
    snprintf(buf, n, "%s", ((const bf_firearm *)row)->serial);
  else if (k == TB_EV)
    snprintf(buf, n, "%s\x1f%s", ((const bf_evidence *)row)->case_no, ((const bf_evidence *)row)->item);
  else if (k == TB_SC)
    snprintf(buf, n, "%s", ((const bf_scan_rec *)row)->sha256);
  else if (k == TB_HI)
    snprintf(buf, n, "%lld %lld %lld", (long long)((const bf_hit *)row)->run,
             (long long)((const bf_hit *)row)->query, (long long)((const bf_hit *)row)->candidate);
  else
    return 0;
  return 1;
}

/* Tables whose segments hold key lists (/keys/<table>). */
static int keyed(int k) { return k == TB_FA || k == TB_EV || k == TB_SC; }

static uint64_t key_hash(const char *key)
{
  uint64_t h = 1469598103934665603ull;
  for (; *key; key++)
    h = (h ^ (unsigned char)*key) * 1099511628211ull;
  h ^= h >> 29;
  return h | 1; /* never 0 */
}

static uint64_t row_hash(int k, const char *row)
{
  char key[160];
  row_key(k, row, key, sizeof key);
  return key_hash(key);
}

static void ks_slot(tab *tb, uint64_t h, int64_t id)
{
  size_t i = (size_t)(h & (tb->kscap - 1));
  while (tb->ks[i])
    i = (i + 1) & (tb->kscap - 1);
  tb->ks[i] = id;
  tb->kh[i] = h;
  tb->ksn++;
}

/* Adds (hash, id) to table k's index, growing it to stay at most half full. */
static int ks_add(tab *tb, uint64_t h, int64_t id)
{
  if (2 * (tb->ksn + 1) > tb->kscap) {
    size_t cap = tb->kscap ? 2 * tb->kscap : 1024, old = tb->kscap;
    int64_t *v = calloc(cap, sizeof *v), *ov = tb->ks;
    uint64_t *hv = calloc(cap, sizeof *hv), *oh = tb->kh;
    if (!v || !hv) {
      free(v);
      free(hv);
      return bf_error_set(BF_ENOMEM, "out of memory for the %s key index", tb->t->path);
    }
    tb->ks = v;
    tb->kh = hv;
    tb->kscap = cap;
    tb->ksn = 0;
    for (size_t i = 0; i < old; i++)
      if (ov[i])
        ks_slot(tb, oh[i], ov[i]);
    free(ov);
    free(oh);
  }
  ks_slot(tb, h, id);
  return 0;
}

/* Forgets table k's key index (made again on the next lookup). */
static void ks_clear(tab *tb)
{
  free(tb->ks);
  free(tb->kh);
  free(tb->ksbig);
  tb->ks = NULL;
  tb->kh = NULL;
  tb->ksbig = NULL;
  tb->kscap = tb->ksn = 0;
  tb->nksbig = tb->ksearches = 0;
}

/* ---- files: paths, sync, lock ---- */

static void default_user(char *out, size_t n, const char *user)
{
  if (user && *user) {
    scopy(out, n, user);
    return;
  }
  const char *u = getenv("USER");
  if (!u || !*u) {
    struct passwd *pw = getpwuid(getuid());
    u = pw ? pw->pw_name : "unknown";
  }
  scopy(out, n, u);
}

static void set_paths(bf_store *st, const char *path)
{
  scopy(st->path, sizeof st->path, path);
  snprintf(st->dir, sizeof st->dir, "%s.d", st->path);
  snprintf(st->tmp, sizeof st->tmp, "%s.tmp", st->path);
  snprintf(st->lockpath, sizeof st->lockpath, "%s.lock", st->path);
}

static void seg_path(const bf_store *st, char *buf, size_t n, const char *name)
{
  snprintf(buf, n, "%s/%.63s", st->dir, name);
}

static int fsync_dir(const char *path)
{
  char buf[4096];
  scopy(buf, sizeof buf, path);
  int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return bf_error_set(BF_EIO, "%s: cannot open its folder to sync", path);
  int r = fsync(fd);
  close(fd);
  return r ? bf_error_set(BF_EIO, "%s: folder sync failed (%s)", path, strerror(errno)) : 0;
}

static int fsync_file(const char *path, int64_t *bytes)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return bf_error_set(BF_EIO, "%s: cannot reopen to sync (%s)", path, strerror(errno));
  int r = fsync(fd);
  struct stat sb;
  if (bytes)
    *bytes = fstat(fd, &sb) ? 0 : (int64_t)sb.st_size;
  close(fd);
  return r ? bf_error_set(BF_EIO, "%s: sync failed (%s): disk full?", path, strerror(errno)) : 0;
}

/* The writer lock: O_NOFOLLOW so a planted STORE.lock symlink is refused, never followed (and
 * its target never written); only a regular file is accepted. */
static int take_lock(bf_store *st)
{
  st->lockfd = open(st->lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (st->lockfd < 0)
    return bf_error_set(BF_EIO, "%s: cannot open the writer lock (%s)", st->lockpath,
                        errno == ELOOP ? "it is a symbolic link: remove it" : strerror(errno));
  struct stat sb;
  if (fstat(st->lockfd, &sb) || !S_ISREG(sb.st_mode)) {
    close(st->lockfd);
    st->lockfd = -1;
    return bf_error_set(BF_EIO, "%s: the writer lock is not a regular file: remove it", st->lockpath);
  }
  if (flock(st->lockfd, LOCK_EX | LOCK_NB)) {
    char who[64] = "";
    ssize_t r = pread(st->lockfd, who, sizeof who - 1, 0);
    who[r > 0 ? r : 0] = 0;
    close(st->lockfd);
    st->lockfd = -1;
    return bf_error_set(BF_ELOCKED,
                        "%s: another bfm process is writing this store (%s); try again when it "
                        "ends, reading is allowed meanwhile",
                        st->path, *who ? who : "unknown pid");
  }
  char who[64];
  int len = snprintf(who, sizeof who, "pid %-20ld", (long)getpid());
  if (pwrite(st->lockfd, who, len, 0) < 0) {
    /* the pid is only informative */
  }
  return 0;
}

/* ---- the manifest: STORE itself, a small HDF5 file replaced by rename ---- */

typedef struct mrow {
  int64_t seq, bytes, naudit;
  char name[64], created[32];
} mrow;
static const fld mrow_f[] = {FI64(mrow, seq), FSTR(mrow, name), FI64(mrow, bytes),
                             FI64(mrow, naudit), FSTR(mrow, created)};
static const tbl T_SEGS = {"/segments", sizeof(mrow), mrow_f, NF(mrow_f),
  "bytes: segment file size; naudit: audit rows in it",
  "the live segments of this store, in order (later rows of a table supersede earlier ones)"};

/* Schema of an HDF5 file: -1 if it has no bfm schema_version (or does not open). */
static int file_schema(hid_t f)
{
  int ver = -1;
  if (H5Aexists(f, "schema_version") > 0) {
    hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_INT, &ver) < 0)
      ver = -1;
    if (a >= 0)
      H5Aclose(a);
  }
  return ver;
}

static int manifest_read(bf_store *st, mrow **rows, size_t *n)
{
  int rc = 0;
  *rows = NULL;
  *n = 0;
  quiet_hdf5();
  struct stat sb;
  if (lstat(st->path, &sb))
    return bf_error_set(BF_ENOTFOUND, "%s: no such store", st->path);
  if (!S_ISREG(sb.st_mode))
    return bf_error_set(BF_EFORMAT, "%s: not a bfm store (not a regular file)", st->path);
  hid_t f = H5Fopen(st->path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return bf_error_set(BF_EFORMAT, "%s: not an HDF5 store (or unreadable)", st->path);
  int ver = file_schema(f);
  if (ver == 1)
    rc = bf_error_set(BF_ESCHEMA, "%s: a schema 1 store (one file): convert it once with `bfm upgrade %s` "
                      "(this bfm reads schema %d)", st->path, st->path, BF_STORE_SCHEMA);
  else if (ver != BF_STORE_SCHEMA)
    rc = bf_error_set(ver < 0 ? BF_EFORMAT : BF_ESCHEMA, "%s: %s (this bfm reads schema %d)", st->path,
                      ver < 0 ? "HDF5 file without a bfm schema_version: not a bfm store"
                              : "store of another schema version",
                      BF_STORE_SCHEMA);
  else if ((rc = tbl_read_at(f, &T_SEGS, T_SEGS.path, 0, (void **)rows, n)))
    bf_error_prefix(rc, "%s: manifest: ", st->path);
  else {
    st->gen = attr_get_i64(f, "generation", 0);
    st->next_seq = attr_get_i64(f, "next_segment", 1);
  }
  H5Fclose(f);
  return rc;
}

/* Writes the manifest listing rows[0..n) to STORE.tmp, syncs it and renames it over STORE (the
 * commit point), then syncs the folder. */
static int manifest_write(bf_store *st, const mrow *rows, size_t n)
{
  int rc = 0;
  hid_t f = -1, fapl = -1, g = -1;
  char now[32];
  bf_store_now(now);
  unlink(st->tmp); /* a stale one, or a planted symlink: removed, never followed */
  fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  f = H5Fcreate(st->tmp, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (f < 0)
    return bf_error_set(BF_EIO, "%s: cannot create the new manifest (%s)", st->tmp, strerror(errno));
  int ver = BF_STORE_SCHEMA;
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, "schema_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT, &ver);
  H5Aclose(a);
  H5Sclose(sp);
  attr_i64(f, "generation", st->gen + 1);
  attr_i64(f, "next_segment", st->next_seq);
  attr_str(f, "software", "bfm " BF_VERSION);
  attr_str(f, "written", now);
  attr_str(f, "description",
           "bfm ballistic fingerprint store, schema 2: this manifest lists the live segment files "
           "(folder <this file>.d/); each segment holds tables firearms, evidence, items, scans, hits, "
           "audit, originals scans_x3p/<scan id> and features/<kind>/index + data (float32 um). "
           "Read the segments in the order listed; a later row with the same id supersedes. "
           "/seg/<seq> are external links to each segment's root.");
  if ((rc = tbl_write_new(f, &T_SEGS, T_SEGS.path, rows, n)))
    goto done;
  if ((g = H5Gcreate2(f, "/seg", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) >= 0) {
    char base[4096], target[4300], ln[32];
    scopy(base, sizeof base, st->path);
    const char *b = basename(base);
    for (size_t i = 0; i < n; i++) {
      snprintf(target, sizeof target, "%s.d/%s", b, rows[i].name);
      snprintf(ln, sizeof ln, "%08lld", (long long)rows[i].seq);
      H5Lcreate_external(target, "/", g, ln, H5P_DEFAULT, H5P_DEFAULT);
    }
    H5Gclose(g);
  }
  herr_t e = H5Fclose(f);
  f = -1;
  if (e < 0) {
    hdf5_poisoned = 1;
    rc = bf_error_set(BF_EIO, "%s: cannot write the new manifest (disk full?)", st->tmp);
    goto done;
  }
  if ((rc = fsync_file(st->tmp, NULL)))
    goto done;
  if (getenv("BF_STORE_CRASH_BEFORE_RENAME"))
    abort(); /* test hook: dies exactly between the synced segment + manifest and the commit point */
  if (rename(st->tmp, st->path)) {
    rc = bf_error_set(BF_EIO, "%s: cannot commit (rename failed: %s)", st->path, strerror(errno));
    goto done;
  }
  st->gen++;
  rc = fsync_dir(st->path);
done:
  if (f >= 0)
    H5Fclose(f);
  if (rc)
    unlink(st->tmp);
  return rc;
}

static int manifest_from_segs(const bf_store *st, mrow **out)
{
  mrow *m = calloc(st->nseg + 1, sizeof *m);
  if (!m)
    return bf_error_set(BF_ENOMEM, "out of memory writing the manifest");
  for (int i = 0; i < st->nseg; i++) {
    m[i].seq = st->segs[i].seq;
    m[i].bytes = st->segs[i].bytes;
    m[i].naudit = st->segs[i].naudit;
    scopy(m[i].name, sizeof m[i].name, st->segs[i].name);
    scopy(m[i].created, sizeof m[i].created, st->segs[i].created);
  }
  *out = m;
  return 0;
}

/* ---- segments ---- */

static int seg_name_ok(const char *s)
{
  if (strncmp(s, "seg-", 4))
    return 0;
  const char *p = s + 4;
  while (*p >= '0' && *p <= '9')
    p++;
  return p > s + 4 && !strcmp(p, ".h5");
}

static void close_segs(bf_store *st)
{
  for (int i = 0; i < st->nseg; i++)
    if (st->segs[i].f >= 0)
      H5Fclose(st->segs[i].f);
  free(st->segs);
  st->segs = NULL;
  st->nseg = st->cseg = 0;
}

static int open_seg_file(const bf_store *st, const char *name, hid_t *f)
{
  char p[4400];
  seg_path(st, p, sizeof p, name);
  *f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (*f >= 0)
    return 0;
  if (access(p, F_OK))
    return BF_ENOTFOUND;
  return bf_error_set(BF_ECHECKSUM, "%s: segment %s does not open (store damaged)", st->path, name);
}

/* Opens the snapshot the manifest names. A compaction may replace the manifest and delete
 * segments between our reading it and opening them: then we read it again (no waiting). Once
 * open, a segment stays readable even if a compaction deletes it (POSIX keeps open files). */
static int open_snapshot(bf_store *st)
{
  int rc = 0;
  int64_t prev_gen = -1;
  char missing_name[64] = "";
  for (int attempt = 0; attempt < 200; attempt++) {
    mrow *m = NULL;
    size_t n = 0;
    close_segs(st);
    st->nabsent = 0; /* another snapshot: a kind absent from the old one may be in it */
    if ((rc = manifest_read(st, &m, &n)))
      return rc;
    if (!(st->segs = calloc(n + 1, sizeof *st->segs))) {
      free(m);
      return bf_error_set(BF_ENOMEM, "out of memory opening %s", st->path);
    }
    st->cseg = (int)n + 1;
    st->naudit = 0;
    int missing = 0;
    for (size_t i = 0; i < n && !rc && !missing; i++) {
      seg *s = &st->segs[st->nseg];
      s->seq = m[i].seq;
      s->bytes = m[i].bytes;
      s->naudit = m[i].naudit;
      scopy(s->name, sizeof s->name, m[i].name);
      scopy(s->created, sizeof s->created, m[i].created);
      if (!seg_name_ok(s->name)) {
        rc = bf_error_set(BF_EFORMAT, "%s: manifest names an odd segment '%s'", st->path, s->name);
        break;
      }
      int r = open_seg_file(st, s->name, &s->f);
      if (r == BF_ENOTFOUND) {
        missing = 1;
        scopy(missing_name, sizeof missing_name, s->name);
      }
      else if (r)
        rc = r;
      else {
        st->naudit += s->naudit;
        st->nseg++;
      }
    }
    free(m);
    if (rc || !missing)
      return rc;
    /* we hold the lock, or the manifest did not change since the last try: not a compaction */
    if (st->mode == BF_STORE_WRITE || st->gen == prev_gen)
      return bf_error_set(BF_ECHECKSUM, "%s: segment %s/%s, listed by the manifest, is missing (store "
                          "damaged, or copied without its folder %s.d)", st->path, st->dir, missing_name,
                          st->path);
    prev_gen = st->gen;
    usleep(1000);
  }
  return bf_error_set(BF_EIO, "%s: the store kept changing while opening it", st->path);
}

/* Removes what a crashed writer left: segment files the manifest does not list, and the
 * manifest's temporary. Only the lock holder calls this. */
static void clean_stale(bf_store *st)
{
  unlink(st->tmp);
  DIR *d = opendir(st->dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      continue;
    int live = 0;
    for (int i = 0; i < st->nseg && !live; i++)
      live = !strcmp(st->segs[i].name, e->d_name);
    if (!live && (seg_name_ok(e->d_name) || strstr(e->d_name, ".tmp"))) {
      char p[4400];
      seg_path(st, p, sizeof p, e->d_name);
      unlink(p);
    }
  }
  closedir(d);
}

/* ---- in-memory tables: loaded across segments, last row wins ---- */

static const tbl *const TBL[NTB] = {&T_FIREARMS, &T_EVIDENCE, &T_ITEMS, &T_SCANS, &T_HITS};

static int tab_grow(tab *tb, size_t need)
{
  size_t cap = tb->cap;
  int rc = grow((void **)&tb->rows, &cap, need, tb->t->rowsize);
  if (rc)
    return rc;
  if (cap != tb->cap) {
    int *s = realloc(tb->seg, cap * sizeof *s);
    uint8_t *d = s ? realloc(tb->dirty, cap) : NULL;
    if (s)
      tb->seg = s;
    if (!d)
      return bf_error_set(BF_ENOMEM, "out of memory growing a store table");
    memset(d + tb->cap, 0, cap - tb->cap);
    tb->dirty = d;
    tb->cap = cap;
  }
  return 0;
}

static void tab_free(tab *tb)
{
  for (size_t i = 0; i < tb->lz_cap; i++)
    free(tb->lz_row[i]);
  free(tb->lz_row);
  free(tb->lz_id);
  free(tb->lz_n);
  free(tb->lz_lo);
  free(tb->lz_nnew);
  free(tb->rows);
  free(tb->seg);
  free(tb->dirty);
  free(tb->dl);
  free(tb->tx_chg);
  free(tb->tx_new);
  ks_clear(tb);
  const tbl *t = tb->t;
  memset(tb, 0, sizeof *tb);
  tb->t = t;
}

/* Merges rows read from segment segi: a row whose id is already present replaces it, the next
 * id is appended; anything else means rows were lost. */
static int tab_merge(tab *tb, const char *rows, size_t n, int segi, const char *where)
{
  size_t rs = tb->t->rowsize;
  for (size_t i = 0; i < n; i++) {
    int64_t id;
    memcpy(&id, rows + i * rs, sizeof id);
    if (id >= 1 && (size_t)id <= tb->n) {
      memcpy(tb->rows + (id - 1) * rs, rows + i * rs, rs);
      tb->seg[id - 1] = segi;
    } else if ((size_t)id == tb->n + 1) {
      int rc = tab_grow(tb, tb->n + 1);
      if (rc)
        return rc;
      memcpy(tb->rows + tb->n * rs, rows + i * rs, rs);
      tb->seg[tb->n++] = segi;
    } else
      return bf_error_set(BF_EFORMAT, "%s: table %s row %zu has id %lld, expected at most %zu "
                          "(rows missing: store damaged)", where, tb->t->path, i + 1, (long long)id,
                          tb->n + 1);
  }
  return 0;
}

static void note_load_error(bf_store *st, int rc)
{
  if (!st->load_err) {
    st->load_err = rc;
    scopy(st->load_msg, sizeof st->load_msg, bf_error_last());
  }
}

static int load_tab(bf_store *st, int k)
{
  tab *tb = &st->tb[k];
  int rc = 0;
  tb->n = 0;
  for (int i = 0; i < st->nseg && !rc; i++) {
    char *rows = NULL;
    size_t n = 0;
    char where[4400];
    snprintf(where, sizeof where, "%s: segment %s", st->path, st->segs[i].name);
    if ((rc = tbl_read_at(st->segs[i].f, tb->t, tb->t->path, 0, (void **)&rows, &n)))
      bf_error_prefix(rc, "%s: ", where);
    else
      rc = tab_merge(tb, rows, n, i, where);
    free(rows);
  }
  if (rc) {
    tb->n = 0;
    note_load_error(st, rc);
    return rc;
  }
  tb->n0 = tb->n;
  if (tb->dirty)
    memset(tb->dirty, 0, tb->cap);
  tb->ndl = 0;
  tb->loaded = 1;
  return 0;
}

/* Tables are read on first use, so a search opening a 100,000-item store reads only what it
 * needs. The lookups take a const store: loading a table is caching, not a visible change. */
static int mark(bf_store *st, int k, size_t idx);
static int tab_push(bf_store *st, int k, const void *r);

/* Rows changed and added while the table was not loaded go into the loaded table. */
static int apply_changes(bf_store *st, int k)
{
  tab *tb = &st->tb[k];
  size_t rs = tb->t->rowsize;
  int rc = 0;
  for (size_t i = 0; i < tb->n_chg && !rc; i++) {
    int64_t id;
    memcpy(&id, tb->tx_chg + i * rs, sizeof id);
    if (id < 1 || (size_t)id > tb->n0)
      rc = bf_error_set(BF_EINVAL, "%s: changed row %lld of %s is not stored", st->path, (long long)id,
                        tb->t->path);
    else {
      memcpy(tb->rows + (size_t)(id - 1) * rs, tb->tx_chg + i * rs, rs);
      rc = mark(st, k, (size_t)(id - 1));
    }
  }
  for (size_t i = 0; i < tb->n_new && !rc; i++) {
    int64_t id;
    memcpy(&id, tb->tx_new + i * rs, sizeof id);
    rc = (size_t)id == tb->n + 1 ? tab_push(st, k, tb->tx_new + i * rs)
                                 : bf_error_set(BF_EINVAL, "%s: added row %lld of %s does not follow row %zu",
                                                st->path, (long long)id, tb->t->path, tb->n);
  }
  tb->n_chg = tb->n_new = 0;
  return rc;
}

static int ensure(const bf_store *cst, int what)
{
  bf_store *st = (bf_store *)cst;
  int rc = 0;
  for (int k = 0; k < NTB && !rc; k++)
    if ((what & (1 << k)) && !st->tb[k].loaded && !(rc = load_tab(st, k)) && (st->tb[k].n_chg || st->tb[k].n_new))
      rc = apply_changes(st, k);
  return rc;
}

/* ---- single rows without loading a table ----
 * A match prints the records of its top candidates: loading the whole firearms table for them
 * inflates every record (1.9 KB each, 190 MB at 100,000). Every segment's table holds the rows
 * its transaction changed (ids it did not create), then the rows it created, ids ascending and
 * contiguous (tx_rows; a compacted segment is in id order, which is the same shape). So the
 * last row of each segment tells which ids it created, and one chunk read finds a row; a later
 * segment's changed rows are read to see whether they supersede it. The row found is checked
 * (its id); anything unexpected, or more than TAB_LAZY_CHANGED changed rows to look through,
 * loads the whole table instead, as before. */
#define TAB_LAZY_CHANGED 4096
/* A caller that reads more rows than this one by one (a search reading every candidate's item)
 * gets the whole table instead: one read of each chunk, not one per row. */
#define TAB_LAZY_READS 256

static int tbl_read_rows(hid_t loc, const tbl *t, hsize_t first, hsize_t n, void *dst)
{
  hid_t ds = H5Dopen2(loc, t->path, H5P_DEFAULT), fs = -1, ms = -1, mt = -1;
  int ok = 0;
  if (ds >= 0) {
    fs = H5Dget_space(ds);
    ms = H5Screate_simple(1, &n, NULL);
    mt = tbl_memtype(t);
    ok = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &first, NULL, &n, NULL) >= 0 &&
         H5Dread(ds, mt, ms, fs, H5P_DEFAULT, dst) >= 0;
    H5Tclose(mt);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(ds);
  }
  return ok ? 0 : bf_error_set(BF_ECHECKSUM, "cannot read table %s rows %llu..%llu (checksum or storage "
                               "error)", t->path, (unsigned long long)first + 1, (unsigned long long)(first + n));
}

/* Reads each segment's row count and last id (one chunk each). 0, 1 = unusable, or an error. */
static int lazy_layout(bf_store *st, tab *tb)
{
  int ns = st->nseg, rc = 0;
  if (!(tb->lz_n = calloc(ns + 1, sizeof(int64_t))) || !(tb->lz_lo = calloc(ns + 1, sizeof(int64_t))) ||
      !(tb->lz_nnew = calloc(ns + 1, sizeof(int64_t))))
    return bf_error_set(BF_ENOMEM, "out of memory reading %s", tb->t->path);
  char *row = malloc(tb->t->rowsize);
  if (!row)
    return bf_error_set(BF_ENOMEM, "out of memory reading %s", tb->t->path);
  int64_t max = 0, changed = 0;
  for (int i = 0; i < ns && !rc; i++) {
    hid_t f = st->segs[i].f, ds;
    if (H5Lexists(f, tb->t->path, H5P_DEFAULT) <= 0 || (ds = H5Dopen2(f, tb->t->path, H5P_DEFAULT)) < 0) {
      rc = 1; /* the full load reports it */
      break;
    }
    int64_t n = ds_len(ds), id = 0;
    H5Dclose(ds);
    if (n > 0 && (rc = tbl_read_rows(f, tb->t, (hsize_t)(n - 1), 1, row))) {
      bf_error_prefix(rc, "%s: segment %s: ", st->path, st->segs[i].name);
      break;
    }
    if (n > 0)
      memcpy(&id, row, sizeof id);
    int64_t nnew = id > max ? id - max : 0;
    if (n < 0 || nnew > n) {
      rc = 1;
      break;
    }
    tb->lz_n[i] = n;
    tb->lz_lo[i] = max + 1;
    tb->lz_nnew[i] = nnew;
    changed += n - nnew;
    max += nnew;
  }
  free(row);
  tb->lz_max = max;
  tb->lz_changed = changed;
  tb->lz_ns = ns;
  return rc ? rc : changed > TAB_LAZY_CHANGED;
}

static char **lazy_slot(tab *tb, int64_t id)
{
  size_t i = hash2_i64(id) & (tb->lz_cap - 1);
  while (tb->lz_id[i] && tb->lz_id[i] != id)
    i = (i + 1) & (tb->lz_cap - 1);
  return &tb->lz_row[i];
}

/* Keeps row (malloc'd, owned now) for id; 0 or BF_ENOMEM (row freed). */
static int lazy_put(tab *tb, int64_t id, char *row)
{
  if (2 * (tb->lz_cnt + 1) > tb->lz_cap) {
    size_t nc = tb->lz_cap ? 2 * tb->lz_cap : 64;
    int64_t *ni = calloc(nc, sizeof *ni);
    char **nr = calloc(nc, sizeof *nr);
    if (!ni || !nr) {
      free(ni);
      free(nr);
      free(row);
      return bf_error_set(BF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < tb->lz_cap; i++)
      if (tb->lz_id[i]) {
        size_t j = hash2_i64(tb->lz_id[i]) & (nc - 1);
        while (ni[j])
          j = (j + 1) & (nc - 1);
        ni[j] = tb->lz_id[i];
        nr[j] = tb->lz_row[i];
      }
    free(tb->lz_id);
    free(tb->lz_row);
    tb->lz_id = ni;
    tb->lz_row = nr;
    tb->lz_cap = nc;
  }
  size_t i = hash2_i64(id) & (tb->lz_cap - 1);
  while (tb->lz_id[i])
    i = (i + 1) & (tb->lz_cap - 1);
  tb->lz_id[i] = id;
  tb->lz_row[i] = row;
  tb->lz_cnt++;
  return 0;
}

/* Row id of table k: from the loaded table, else fetched alone (see above). *out NULL when
 * there is no such row; returns 0 or the read error (noted like a table load error). */
/* Table k either loaded or laid out for one-row reads (lz_state 1); 0 or a read error. */
static int lazy_ready(bf_store *st, int k)
{
  tab *tb = &st->tb[k];
  int rc = 0;
  if (!tb->loaded && tb->lz_state > 0 && tb->lz_ns != st->nseg) { /* segments added since */
    free(tb->lz_n);
    free(tb->lz_lo);
    free(tb->lz_nnew);
    tb->lz_n = tb->lz_lo = tb->lz_nnew = NULL;
    tb->lz_state = 0;
  }
  if (!tb->loaded && tb->lz_state == 0) {
    rc = lazy_layout(st, tb);
    tb->lz_state = rc ? -1 : 1;
    if (rc < 0) {
      note_load_error(st, rc);
      return rc;
    }
  }
  return tb->loaded || tb->lz_state > 0 ? 0 : ensure(st, 1 << k);
}

/* The transaction's changed version of row id of a table that is not loaded, or NULL. */
static char *chg_find(const tab *tb, int64_t id)
{
  size_t rs = tb->t->rowsize;
  for (size_t i = 0; i < tb->n_chg; i++) {
    int64_t cid;
    memcpy(&cid, tb->tx_chg + i * rs, sizeof cid);
    if (cid == id)
      return tb->tx_chg + i * rs;
  }
  return NULL;
}

static int tab_row(const bf_store *cst, int k, int64_t id, const char **out)
{
  bf_store *st = (bf_store *)cst;
  tab *tb = &st->tb[k];
  size_t rs = tb->t->rowsize;
  int rc;
  *out = NULL;
  if ((rc = lazy_ready(st, k)))
    return rc;
  if (tb->loaded) {
    if (id >= 1 && (size_t)id <= tb->n)
      *out = tb->rows + (size_t)(id - 1) * rs;
    return 0;
  }
  if ((*out = chg_find(tb, id))) /* the transaction's own versions first */
    return 0;
  if (id > tb->lz_max && (size_t)(id - tb->lz_max) <= tb->n_new) {
    *out = tb->tx_new + (size_t)(id - tb->lz_max - 1) * rs;
    return 0;
  }
  if (id < 1 || id > tb->lz_max)
    return 0;
  if (tb->lz_cap && *lazy_slot(tb, id)) {
    *out = *lazy_slot(tb, id);
    return 0;
  }
  if (++tb->lz_reads > TAB_LAZY_READS) {
    if ((rc = ensure(st, 1 << k)))
      return rc;
    *out = (size_t)id <= tb->n ? tb->rows + (size_t)(id - 1) * rs : NULL;
    return 0;
  }
  int s = 0;
  while (s < st->nseg && !(id >= tb->lz_lo[s] && id < tb->lz_lo[s] + tb->lz_nnew[s]))
    s++;
  char *row = malloc(rs), *chg = NULL;
  if (!row)
    return bf_error_set(BF_ENOMEM, "out of memory");
  int64_t got = 0;
  if (!(rc = tbl_read_rows(st->segs[s].f, tb->t, (hsize_t)(tb->lz_n[s] - tb->lz_nnew[s] + id - tb->lz_lo[s]),
                           1, row)))
    memcpy(&got, row, sizeof got);
  for (int t = s + 1; t < st->nseg && !rc && got == id; t++) { /* a later version of the row */
    int64_t nc = tb->lz_n[t] - tb->lz_nnew[t];
    if (!nc)
      continue;
    if (!(chg = malloc((size_t)nc * rs))) {
      rc = bf_error_set(BF_ENOMEM, "out of memory");
      break;
    }
    if (!(rc = tbl_read_rows(st->segs[t].f, tb->t, 0, (hsize_t)nc, chg)))
      for (int64_t j = 0; j < nc; j++) {
        int64_t cid;
        memcpy(&cid, chg + j * rs, sizeof cid);
        if (cid == id)
          memcpy(row, chg + j * rs, rs);
      }
    else
      bf_error_prefix(rc, "%s: segment %s: ", st->path, st->segs[t].name);
    free(chg);
    chg = NULL;
  }
  if (rc && got == 0)
    bf_error_prefix(rc, "%s: segment %s: ", st->path, st->segs[s].name);
  if (!rc && got != id) { /* not the layout expected: the whole table, as before */
    free(row);
    tb->lz_state = -1;
    return tab_row(st, k, id, out);
  }
  if (rc) {
    free(row);
    note_load_error(st, rc);
    return rc;
  }
  if ((rc = lazy_put(tb, id, row)))
    return rc;
  *out = *lazy_slot(tb, id);
  return 0;
}

static void keys_path(int k, char *buf, size_t n) { snprintf(buf, n, "/keys%s", TBL[k]->path); }

/* Key lists up to this many rows are read into the hash index; longer ones (compacted
 * segments) are binary-searched in the file, so a new process's first lookup does not read
 * 16 bytes for every row stored. */
#define KEYS_READ 65536
/* A process that looks up more keys than this (a bulk ingest) reads the long lists instead. */
#define KEYS_SEARCHES 64

static int64_t keys_read_max(void)
{
  const char *e = getenv("BF_STORE_KEYS_READ"); /* tests: search small lists in the file too */
  return e && *e ? atoll(e) : KEYS_READ;
}

static int keyrow_cmp(const void *a, const void *b)
{
  const keyrow *x = a, *y = b;
  if (x->hash != y->hash)
    return (uint64_t)x->hash < (uint64_t)y->hash ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

/* The key list of n rows of table k, sorted as stored (malloc'ed; NULL when out of memory). */
static keyrow *keys_of(int k, const char *rows, size_t n)
{
  keyrow *kr = malloc((n + 1) * sizeof *kr);
  if (!kr)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    const char *r = rows + i * TBL[k]->rowsize;
    kr[i].hash = (int64_t)row_hash(k, r);
    memcpy(&kr[i].id, r, sizeof kr[i].id);
  }
  qsort(kr, n, sizeof *kr, keyrow_cmp);
  return kr;
}

/* Writes /keys/<table> of a new segment: the keys of its n rows of table k. */
static int keys_write(hid_t f, int k, const char *rows, size_t n)
{
  keyrow *kr = keys_of(k, rows, n);
  char kp[64];
  int rc = 0;
  if (!kr)
    return bf_error_set(BF_ENOMEM, "out of memory writing keys");
  if (H5Lexists(f, "/keys", H5P_DEFAULT) <= 0) {
    hid_t g = H5Gcreate2(f, "/keys", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
      rc = bf_error_set(BF_EIO, "cannot create /keys (disk full?)");
    else
      H5Gclose(g);
  }
  keys_path(k, kp, sizeof kp);
  if (!rc)
    rc = tbl_write_new(f, &T_KEYS, kp, kr, n);
  free(kr);
  return rc;
}

/* Reads segment i's key list of table k into the hash index. */
static int keys_read_into(bf_store *st, int k, int i)
{
  tab *tb = &st->tb[k];
  char kp[64];
  keys_path(k, kp, sizeof kp);
  keyrow *kr = NULL;
  size_t n = 0;
  int rc = tbl_read_at(st->segs[i].f, &T_KEYS, kp, 0, (void **)&kr, &n);
  if (rc)
    bf_error_prefix(rc, "%s: segment %s: ", st->path, st->segs[i].name);
  for (size_t j = 0; j < n && !rc; j++)
    rc = ks_add(tb, (uint64_t)kr[j].hash | 1, kr[j].id);
  free(kr);
  return rc;
}

/* Table k's key index, made once: from the segments' keys, or from the loaded table. */
static int ks_ensure(bf_store *st, int k)
{
  tab *tb = &st->tb[k];
  int rc = 0, all = 1;
  if (tb->ks)
    return 0;
  char kp[64];
  keys_path(k, kp, sizeof kp);
  all = keyed(k);
  for (int i = 0; i < st->nseg && !tb->loaded && all && !rc; i++) {
    hid_t ds;
    if (H5Lexists(st->segs[i].f, "/keys", H5P_DEFAULT) <= 0 || H5Lexists(st->segs[i].f, kp, H5P_DEFAULT) <= 0) {
      all = 0; /* written before keys existed */
      break;
    }
    if ((ds = H5Dopen2(st->segs[i].f, kp, H5P_DEFAULT)) >= 0) {
      int64_t len = ds_len(ds);
      H5Dclose(ds);
      if (len > keys_read_max()) { /* a large (compacted) segment: searched in place */
        int *v = realloc(tb->ksbig, (size_t)(tb->nksbig + 1) * sizeof *v);
        if (!v)
          rc = bf_error_set(BF_ENOMEM, "out of memory for the %s key index", tb->t->path);
        else
          (tb->ksbig = v)[tb->nksbig++] = i;
        continue;
      }
    }
    rc = keys_read_into(st, k, i);
  }
  if (!rc && !tb->loaded && all)
    for (size_t j = 0; j < tb->n_new && !rc; j++)
      rc = ks_add(tb, row_hash(k, tb->tx_new + j * tb->t->rowsize), tb->lz_max + (int64_t)j + 1);
  if (!rc && (tb->loaded || !all)) {
    ks_clear(tb);
    rc = ensure(st, 1 << k);
    for (size_t j = 0; j < tb->n && !rc; j++)
      rc = ks_add(tb, row_hash(k, tb->rows + j * tb->t->rowsize), (int64_t)j + 1);
  }
  if (!rc && !tb->ks) { /* no keys yet: an empty index */
    tb->ks = calloc(1024, sizeof *tb->ks);
    tb->kh = calloc(1024, sizeof *tb->kh);
    tb->kscap = 1024;
    if (!tb->ks || !tb->kh)
      rc = bf_error_set(BF_ENOMEM, "out of memory for the %s key index", tb->t->path);
  }
  if (rc) {
    ks_clear(tb);
    note_load_error(st, rc);
  }
  return rc;
}

/* A candidate id once (a changed row is listed again by the segment that changed it). */
static void cand_add(int64_t *cand, int *nc, int64_t id)
{
  for (int c = 0; c < *nc; c++)
    if (cand[c] == id)
      return;
  if (*nc < 16)
    cand[(*nc)++] = id;
}

/* Row `at` of an open key list. */
static int key_at(hid_t ds, hid_t fs, hid_t ms, hid_t mt, int64_t at, keyrow *r)
{
  hsize_t one = 1, first = (hsize_t)at;
  return H5Sselect_hyperslab(fs, H5S_SELECT_SET, &first, NULL, &one, NULL) < 0 ||
                 H5Dread(ds, mt, ms, fs, H5P_DEFAULT, r) < 0
             ? BF_ECHECKSUM
             : 0;
}

/* Binary search of segment si's sorted key list for hash h: ~log2(n) one-row reads, each one
 * chunk (the chunk cache of the open dataset keeps the last ones). */
static int keys_search(bf_store *st, int k, int si, uint64_t h, int64_t *cand, int *nc)
{
  char kp[64];
  keys_path(k, kp, sizeof kp);
  hid_t ds = H5Dopen2(st->segs[si].f, kp, H5P_DEFAULT);
  if (ds < 0)
    return bf_error_set(BF_ECHECKSUM, "%s: segment %s: %s cannot be opened", st->path, st->segs[si].name, kp);
  int64_t n = ds_len(ds), lo = 0, hi = n;
  hsize_t one = 1;
  hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, &one, NULL), mt = tbl_memtype(&T_KEYS);
  keyrow r;
  int rc = 0;
  while (lo < hi && !rc) { /* first row with hash >= h (unsigned order, as written) */
    int64_t m = lo + (hi - lo) / 2;
    if (!(rc = key_at(ds, fs, ms, mt, m, &r))) {
      if ((uint64_t)r.hash < h)
        lo = m + 1;
      else
        hi = m;
    }
  }
  for (int64_t at = lo; at < n && !rc; at++) {
    if ((rc = key_at(ds, fs, ms, mt, at, &r)) || (uint64_t)r.hash != h)
      break;
    cand_add(cand, nc, r.id);
  }
  H5Tclose(mt);
  H5Sclose(ms);
  H5Sclose(fs);
  H5Dclose(ds);
  return rc ? bf_error_set(rc, "%s: segment %s: cannot read %s (checksum or storage error)", st->path,
                           st->segs[si].name, kp)
            : 0;
}

/* The lowest id of table k whose row has this key (0: none); 0 or a read error. */
static int ks_find(const bf_store *cst, int k, const char *key, int64_t *out)
{
  bf_store *st = (bf_store *)cst;
  tab *tb = &st->tb[k];
  int64_t cand[16];
  int nc = 0, rc;
  *out = 0;
  if ((rc = ks_ensure(st, k)))
    return rc;
  if (tb->nksbig && ++tb->ksearches > KEYS_SEARCHES) { /* many lookups (an ingest of many rows): */
    for (int b = 0; b < tb->nksbig && !rc; b++)      /* reading the long lists once is cheaper */
      rc = keys_read_into(st, k, tb->ksbig[b]);
    free(tb->ksbig);
    tb->ksbig = NULL;
    tb->nksbig = 0;
    if (rc) {
      note_load_error(st, rc);
      return rc;
    }
  }
  uint64_t h = key_hash(key);
  for (size_t i = h & (tb->kscap - 1); tb->ks[i]; i = (i + 1) & (tb->kscap - 1))
    if (tb->kh[i] == h)
      cand_add(cand, &nc, tb->ks[i]);
  for (int b = 0; b < tb->nksbig && !rc; b++)
    rc = keys_search(st, k, tb->ksbig[b], h, cand, &nc);
  char rk[160];
  for (int c = 0; c < nc && !rc; c++) { /* reading a row may load the table: ids first */
    const char *row = NULL;
    if (!(rc = tab_row(st, k, cand[c], &row)) && row && row_key(k, row, rk, sizeof rk) && !strcmp(rk, key) &&
        (!*out || cand[c] < *out))
      *out = cand[c];
  }
  return rc;
}

/* Changes row `row` (its id first; read with tab_row) of table k in the transaction. A table
 * that is not loaded stays so: the row is kept aside and written as the segment's changed row
 * (last wins), so a review of one hit reads and writes one row whatever the store holds. */
static int tab_change(bf_store *st, int k, const void *row)
{
  tab *tb = &st->tb[k];
  size_t rs = tb->t->rowsize;
  int64_t id;
  memcpy(&id, row, sizeof id);
  if (tb->loaded) {
    memcpy(tb->rows + (size_t)(id - 1) * rs, row, rs);
    return mark(st, k, (size_t)(id - 1));
  }
  if (id > tb->lz_max && (size_t)(id - tb->lz_max) <= tb->n_new) { /* added in this transaction */
    memcpy(tb->tx_new + (size_t)(id - tb->lz_max - 1) * rs, row, rs);
    return 0;
  }
  char *c = chg_find(tb, id);
  if (c) {
    memcpy(c, row, rs);
    return 0;
  }
  int rc = grow((void **)&tb->tx_chg, &tb->c_chg, tb->n_chg + 1, rs);
  if (!rc)
    memcpy(tb->tx_chg + rs * tb->n_chg++, row, rs);
  return rc;
}

/* After a commit of rows changed one by one: the cached copies take the new versions (the
 * segment layout is read again when next needed: it has one more segment now). */
static void lazy_committed(tab *tb)
{
  size_t rs = tb->t->rowsize;
  for (size_t i = 0; i < tb->n_chg && tb->lz_cap; i++) {
    int64_t id;
    memcpy(&id, tb->tx_chg + i * rs, sizeof id);
    char **slot = lazy_slot(tb, id);
    if (*slot)
      memcpy(*slot, tb->tx_chg + i * rs, rs);
  }
  tb->n_chg = 0;
  tb->n_new = 0;
}

static void drop_caches(bf_store *st)
{
  for (int k = 0; k < st->nkinds; k++) {
    free(st->kinds[k].rows);
    free(st->kinds[k].pc);
    if (st->kinds[k].txds >= 0)
      H5Dclose(st->kinds[k].txds);
  }
  memset(st->kinds, 0, sizeof st->kinds);
  st->nkinds = 0;
  st->nabsent = 0;
  for (int k = 0; k < NTB; k++) {
    tab_free(&st->tb[k]);
    st->tb[k].t = TBL[k];
  }
  st->naud = 0;
}

/* ---- feature kinds ---- */

static int kind_ok(const char *k)
{
  size_t n = strlen(k);
  if (!n || n >= 48)
    return 0;
  for (; *k; k++)
    if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_' || *k == '-'))
      return 0;
  return 1;
}

static int has_kind(hid_t f, const char *kind)
{
  char gp[96];
  snprintf(gp, sizeof gp, "/features/%.47s", kind); /* kind_ok: at most 47 characters */
  return H5Lexists(f, "/features", H5P_DEFAULT) > 0 && H5Lexists(f, gp, H5P_DEFAULT) > 0;
}

static int add_piece(kindcache *kc, int segi, int64_t base, int64_t len)
{
  size_t cap = (size_t)kc->cpc;
  int rc = grow((void **)&kc->pc, &cap, (size_t)kc->npc + 1, sizeof *kc->pc);
  if (rc)
    return rc;
  kc->cpc = (int)cap;
  kc->pc[kc->npc].segi = segi;
  kc->pc[kc->npc].base = base;
  kc->pc[kc->npc++].len = len;
  return 0;
}

static int dcpl_deflated(hid_t ds)
{
  hid_t p = H5Dget_create_plist(ds);
  unsigned flags;
  size_t nel = 0;
  char nm[16];
  int r = p >= 0 && H5Pget_filter_by_id2(p, H5Z_FILTER_DEFLATE, &flags, &nel, NULL, sizeof nm, nm, NULL) >= 0;
  if (p >= 0)
    H5Pclose(p);
  return r;
}

/* Reads segment i's index rows of the kind into kc->rows (offsets made global by base). */
static int kind_rows_of(bf_store *st, kindcache *kc, int i, int64_t base, int64_t len)
{
  char ip[96], where[4400];
  snprintf(ip, sizeof ip, "/features/%s/index", kc->name);
  snprintf(where, sizeof where, "%s: segment %s", st->path, st->segs[i].name);
  bf_feat_row *r = NULL;
  size_t n = 0;
  tbl ti = T_FEAT;
  int rc = tbl_read_at(st->segs[i].f, &ti, ip, 0, (void **)&r, &n);
  if (rc)
    bf_error_prefix(rc, "%s: ", where);
  else if (!(rc = grow((void **)&kc->rows, &kc->cap, kc->n + n + 1, sizeof *kc->rows)))
    for (size_t j = 0; j < n && !rc; j++) {
      if (r[j].offset < 0 || r[j].count < 0 || r[j].offset + r[j].count > len)
        rc = bf_error_set(BF_EFORMAT, "%s: %s row %zu points beyond the %lld values stored", where, ip, j + 1,
                          (long long)len);
      r[j].offset += base;
      if (kc->n && kc->rows[kc->n - 1].item > r[j].item)
        kc->sorted = 0;
      kc->rows[kc->n++] = r[j];
    }
  free(r);
  return rc;
}

/* Finds the kind in every committed segment: where its data is (pieces), and with rows = 1 its
 * index rows too. A writer that only appends (an ingest) needs no rows: at 1,000,000 items each
 * kind's index is ~150 MB. */
static int kind_load(bf_store *st, kindcache *kc, int *found, int rows)
{
  int rc = 0;
  *found = 0;
  kc->compress = -1;
  for (int i = 0; i < st->nseg && !rc; i++) {
    hid_t f = st->segs[i].f, ds = -1;
    if (!has_kind(f, kc->name))
      continue;
    *found = 1;
    char dp[96];
    snprintf(dp, sizeof dp, "/features/%s/data", kc->name);
    if ((ds = H5Dopen2(f, dp, H5P_DEFAULT)) < 0) {
      rc = bf_error_set(BF_ECHECKSUM, "%s: segment %s: %s cannot be opened (store damaged)", st->path,
                        st->segs[i].name, dp);
      break;
    }
    int64_t len = ds_len(ds);
    if (kc->compress < 0)
      kc->compress = dcpl_deflated(ds);
    H5Dclose(ds);
    if (rows)
      rc = kind_rows_of(st, kc, i, kc->total, len);
    if (!rc && (rc = add_piece(kc, i, kc->total, len)) == 0)
      kc->total += len;
  }
  if (kc->compress < 0)
    kc->compress = 1;
  kc->n0 = kc->n;
  kc->indexed = rows;
  return rc;
}

/* The committed index rows of a kind a writer has only appended to so far, before the
 * transaction's own rows. */
static int kind_index(bf_store *st, kindcache *kc)
{
  size_t m = kc->n - kc->n0;
  bf_feat_row *tx = malloc((m + 1) * sizeof *tx);
  if (!tx)
    return bf_error_set(BF_ENOMEM, "out of memory reading the %s index", kc->name);
  if (m)
    memcpy(tx, kc->rows + kc->n0, m * sizeof *tx);
  kc->n = 0;
  kc->sorted = 1;
  int rc = 0;
  for (int p = 0; p < kc->npc && !rc; p++)
    if (kc->pc[p].segi < st->nseg) /* committed pieces (the transaction's is last) */
      rc = kind_rows_of(st, kc, kc->pc[p].segi, kc->pc[p].base, kc->pc[p].len);
  kc->n0 = kc->n;
  if (!rc && !(rc = grow((void **)&kc->rows, &kc->cap, kc->n + m + 1, sizeof *kc->rows)))
    for (size_t j = 0; j < m; j++) {
      if (kc->n && kc->rows[kc->n - 1].item > tx[j].item)
        kc->sorted = 0;
      kc->rows[kc->n++] = tx[j];
    }
  free(tx);
  if (rc) { /* as it was: the transaction's rows only */
    kc->n = kc->n0 = 0;
    return rc;
  }
  kc->indexed = 1;
  return 0;
}

static int tx_kind_data(bf_store *st, kindcache *kc);

/* The cache of a kind, loaded on first use; NULL with *rc = 0 when the kind does not exist.
 * create: 0 = never, 1 = a new kind with deflated data, 2 = a new kind with plain data. */
static kindcache *kind_get(bf_store *st, const char *kind, int create, int *rc)
{
  *rc = 0;
  if (!kind_ok(kind)) {
    *rc = bf_error_set(BF_EINVAL, "feature kind '%s': use 1-47 of a-z 0-9 _ -", kind);
    return NULL;
  }
  for (int i = 0; i < st->nkinds; i++)
    if (!strcmp(st->kinds[i].name, kind)) {
      kindcache *kc = &st->kinds[i];
      if (create && kc->txds < 0 && (*rc = tx_kind_data(st, kc)))
        return NULL;
      if (!create && !kc->indexed && (*rc = kind_index(st, kc))) { /* a reader needs the rows */
        note_load_error(st, *rc);
        return NULL;
      }
      return kc;
    }
  /* a kind no segment of this snapshot has stays absent until this writer creates it: asking
   * again (a search asks for an optional kind per candidate) must not search every segment */
  for (int i = 0; i < st->nabsent; i++)
    if (!strcmp(st->absent[i], kind)) {
      if (!create)
        return NULL;
      memmove(st->absent[i], st->absent[i + 1], (size_t)(st->nabsent - i - 1) * sizeof st->absent[0]);
      st->nabsent--;
      break;
    }
  if (st->nkinds == MAXKINDS) {
    *rc = bf_error_set(BF_ELIMIT, "more than %d feature kinds", MAXKINDS);
    return NULL;
  }
  kindcache *kc = &st->kinds[st->nkinds];
  memset(kc, 0, sizeof *kc);
  kc->txds = -1;
  kc->sorted = 1;
  scopy(kc->name, sizeof kc->name, kind);
  int found = 0;
  if ((*rc = kind_load(st, kc, &found, !create))) {
    note_load_error(st, *rc);
    free(kc->rows);
    free(kc->pc);
    memset(kc, 0, sizeof *kc);
    return NULL;
  }
  if (!found && !create) {
    free(kc->rows);
    free(kc->pc);
    memset(kc, 0, sizeof *kc);
    if (st->nabsent < MAXKINDS)
      scopy(st->absent[st->nabsent++], sizeof st->absent[0], kind);
    return NULL;
  }
  if (!found)
    kc->compress = create != 2;
  st->nkinds++;
  if (create && (*rc = tx_kind_data(st, kc)))
    return NULL;
  return kc;
}

/* Names of the kinds in any committed segment (or created in the transaction). */
typedef struct knames {
  char (*v)[48];
  int n, max;
} knames;

static herr_t kind_iter(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
  (void)g;
  (void)info;
  knames *k = op;
  for (int i = 0; i < k->n; i++)
    if (!strcmp(k->v[i], name))
      return 0;
  if (k->n < k->max && strlen(name) < 48)
    scopy(k->v[k->n++], 48, name);
  return 0;
}

static int kind_names(bf_store *st, char (*v)[48], int max)
{
  knames k = {v, 0, max};
  for (int i = 0; i < st->nseg; i++) {
    if (H5Lexists(st->segs[i].f, "/features", H5P_DEFAULT) <= 0)
      continue;
    hid_t fg = H5Gopen2(st->segs[i].f, "/features", H5P_DEFAULT);
    if (fg >= 0) {
      H5Literate(fg, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, kind_iter, &k);
      H5Gclose(fg);
    }
  }
  for (int i = 0; i < st->nkinds; i++)
    kind_iter(-1, st->kinds[i].name, NULL, &k);
  return k.n;
}

static int chunk_sum_ok(const uint8_t *c, size_t n);
static hsize_t ds_chunk(hid_t ds);

/* 1 when ds is plain hot data read raw: float32 as in memory, chunked, Fletcher-32 its only filter. */
static int plain_ds(hid_t ds, hsize_t *C)
{
  hid_t p = H5Dget_create_plist(ds), t = H5Dget_type(ds);
  unsigned flags;
  size_t nel = 0;
  int ok = p >= 0 && t >= 0 && H5Tequal(t, H5T_NATIVE_FLOAT) > 0 && H5Pget_nfilters(p) == 1 &&
           H5Pget_filter2(p, 0, &flags, &nel, NULL, 0, NULL, NULL) == H5Z_FILTER_FLETCHER32 &&
           (*C = ds_chunk(ds)) > 0;
  if (p >= 0)
    H5Pclose(p);
  if (t >= 0)
    H5Tclose(t);
  return ok;
}

/* Values [a, b) of a plain dataset chunked by C: each chunk read as stored (H5Dread_chunk) and
 * its Fletcher-32 checked here. HDF5's own path reads a chunk into its cache, checks it and
 * copies it out: for descriptors every search streams whole, the copy is a tenth of the CPU.
 * A chunk wholly inside the range is read straight into dst: its 4 checksum bytes land on the
 * next chunk's first value, which the next read overwrites; the last chunk and partial ones go
 * through buf. Returns 0, or -1 for the caller's ordinary read (a chunk stored unfiltered). */
static int read_plain(hid_t ds, hsize_t C, int64_t a, int64_t b, float *dst, uint8_t **buf)
{
  size_t raw = (size_t)C * sizeof(float) + 4;
  if (!*buf && !(*buf = malloc(raw)))
    return -1;
  for (hsize_t k = (hsize_t)a / C; (int64_t)(k * C) < b; k++) {
    int64_t c0 = (int64_t)(k * C), c1 = c0 + (int64_t)C;
    int whole = c0 >= a && c1 < b; /* and not the last: the checksum spill stays inside dst */
    uint8_t *to = whole ? (uint8_t *)(dst + (c0 - a)) : *buf;
    hsize_t off = k * C;
    uint32_t mask = 0; /* a chunk stored unfiltered (no checksum): HDF5's path decides */
    if (H5Dread_chunk(ds, H5P_DEFAULT, &off, &mask, to) < 0 || mask)
      return -1;
    if (!chunk_sum_ok(to, raw))
      return BF_ECHECKSUM;
    if (!whole) {
      int64_t s = c0 > a ? c0 : a, e = c1 < b ? c1 : b;
      memcpy(dst + (s - a), (float *)*buf + (s - c0), (size_t)(e - s) * sizeof(float));
    }
  }
  return 0;
}

/* Reads global values [lo, hi) of a kind into dst, piece by piece. */
static int kind_read(bf_store *st, kindcache *kc, int64_t lo, int64_t hi, float *dst)
{
  uint8_t *buf = NULL;
  for (int p = 0; p < kc->npc && lo < hi; p++) {
    const piece *pc = &kc->pc[p];
    int64_t a = lo > pc->base ? lo : pc->base, b = hi < pc->base + pc->len ? hi : pc->base + pc->len;
    if (a >= b)
      continue;
    hid_t f = pc->segi < st->nseg ? st->segs[pc->segi].f : st->txf;
    const char *sname = pc->segi < st->nseg ? st->segs[pc->segi].name : st->txname;
    char dp[96];
    snprintf(dp, sizeof dp, "/features/%s/data", kc->name);
    hid_t ds = H5Dopen2(f, dp, H5P_DEFAULT), fs = -1, ms = -1;
    int ok = 0, direct = -1;
    hsize_t C = 0;
    /* committed plain data: chunk by chunk as stored (the transaction's own may sit in HDF5's cache) */
    if (ds >= 0 && !kc->compress && pc->segi < st->nseg && plain_ds(ds, &C))
      direct = read_plain(ds, C, a - pc->base, b - pc->base, dst + (a - lo), &buf);
    if (direct >= 0) {
      ok = direct == 0;
      H5Dclose(ds);
    } else if (ds >= 0) {
      fs = H5Dget_space(ds);
      hsize_t s0 = (hsize_t)(a - pc->base), cnt = (hsize_t)(b - a);
      H5Sselect_hyperslab(fs, H5S_SELECT_SET, &s0, NULL, &cnt, NULL);
      ms = H5Screate_simple(1, &cnt, NULL);
      ok = H5Dread(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, dst + (a - lo)) >= 0;
      H5Sclose(ms);
      H5Sclose(fs);
      H5Dclose(ds);
    }
    if (!ok) {
      free(buf);
      return bf_error_set(BF_ECHECKSUM, "%s: segment %s: %s values %lld..%lld unreadable "
                          "(checksum or storage error)", st->path, sname, dp,
                          (long long)(a - pc->base), (long long)(b - pc->base));
    }
  }
  free(buf);
  return 0;
}

/* ---- transactions: each one writes a new segment ---- */

static int need_tx(bf_store *st)
{
  if (!st->intx)
    return bf_error_set(BF_EINVAL, "%s: write outside a transaction (call bf_store_begin)", st->path);
  return 0;
}

/* Creates the kind's data dataset in the transaction's segment. */
static int tx_kind_data(bf_store *st, kindcache *kc)
{
  int rc;
  if ((rc = need_tx(st)))
    return rc;
  char gp[96];
  snprintf(gp, sizeof gp, "/features/%s", kc->name);
  hid_t g = H5Gcreate2(st->txf, gp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), sp = -1, p = -1;
  if (g >= 0) {
    hsize_t d0 = 0, dmax = H5S_UNLIMITED;
    sp = H5Screate_simple(1, &d0, &dmax);
    /* plain kinds (hot data every search reads whole) skip shuffle+deflate; Fletcher-32 stays */
    p = chunked_dcpl(kc->compress ? 65536 : 4096, kc->compress); /* a plain chunk is written whole */
    kc->txds = H5Dcreate2(g, "data", H5T_IEEE_F32LE, sp, H5P_DEFAULT, p, H5P_DEFAULT);
    if (kc->txds >= 0) {
      attr_str(kc->txds, "units", "micrometres (heights / signature values); NaN = missing");
      attr_str(kc->txds, "description", "features of this kind, concatenated; see index offset/count");
    }
    attr_str(g, "kind", kc->name);
    H5Pclose(p);
    H5Sclose(sp);
    H5Gclose(g);
  }
  if (g < 0 || kc->txds < 0)
    return bf_error_set(BF_EIO, "%s: cannot create feature kind %s in the new segment", st->path, kc->name);
  kc->txlen = 0;
  return add_piece(kc, st->nseg, kc->total, 0);
}

static hid_t seg_create(bf_store *st, const char *name, int64_t seq)
{
  char p[4400];
  seg_path(st, p, sizeof p, name);
  unlink(p);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  /* 1.8 object format at least: groups index links in a v2 B-tree + fractal heap, so
   * /scans_x3p with 100,000 members (after compaction) inserts in O(log n) */
  H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  hid_t f = H5Fcreate(p, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (f < 0) {
    bf_error_set(BF_EIO, "%s: cannot create a segment (%s)", p, strerror(errno));
    return -1;
  }
  char now[32];
  bf_store_now(now);
  attr_i64(f, "bfm_segment", seq);
  attr_str(f, "created", now);
  attr_str(f, "software", "bfm " BF_VERSION);
  hid_t g = H5Gcreate2(f, "/scans_x3p", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t g2 = H5Gcreate2(f, "/features", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0 || g2 < 0) {
    if (g >= 0)
      H5Gclose(g);
    if (g2 >= 0)
      H5Gclose(g2);
    H5Fclose(f);
    unlink(p);
    bf_error_set(BF_EIO, "%s: cannot create a segment's groups", p);
    return -1;
  }
  H5Gclose(g);
  H5Gclose(g2);
  return f;
}

int bf_store_begin(bf_store *st)
{
  if (st->mode != BF_STORE_WRITE)
    return bf_error_set(BF_EINVAL, "%s: opened for reading, cannot write", st->path);
  if (st->intx)
    return bf_error_set(BF_EINVAL, "%s: a transaction is already open", st->path);
  snprintf(st->txname, sizeof st->txname, "seg-%08lld.h5", (long long)st->next_seq);
  if ((st->txf = seg_create(st, st->txname, st->next_seq)) < 0)
    return BF_EIO;
  for (int k = 0; k < NTB; k++) {
    st->tb[k].n0 = st->tb[k].n;
    for (size_t i = 0; i < st->tb[k].ndl; i++)
      st->tb[k].dirty[st->tb[k].dl[i]] = 0;
    st->tb[k].ndl = 0;
    st->tb[k].n_chg = 0;
    st->tb[k].n_new = 0;
  }
  st->naud = 0;
  st->intx = 1;
  return 0;
}

/* After a failed transaction: what was loaded is read again when next needed. */
static void reload(bf_store *st)
{
  drop_caches(st);
}

void bf_store_abort(bf_store *st)
{
  if (!st->intx)
    return;
  char keep[1024];
  scopy(keep, sizeof keep, bf_error_last());
  for (int k = 0; k < st->nkinds; k++)
    if (st->kinds[k].txds >= 0) {
      if (H5Dclose(st->kinds[k].txds) < 0)
        hdf5_poisoned = 1;
      st->kinds[k].txds = -1;
    }
  if (st->txf >= 0 && H5Fclose(st->txf) < 0)
    hdf5_poisoned = 1;
  st->txf = -1;
  st->intx = 0;
  char p[4400];
  seg_path(st, p, sizeof p, st->txname);
  unlink(p);
  reload(st);
  bf_error_set(BF_EIO, "%s", keep); /* the caller reports the original failure */
}

/* Rows of table k the transaction wrote: changed committed rows (last wins), then new ones. */
static int tx_rows(bf_store *st, int k, char **out, size_t *n)
{
  tab *tb = &st->tb[k];
  size_t rs = tb->t->rowsize, nd = 0, m = 0;
  *out = NULL;
  *n = 0;
  if (!tb->loaded) { /* rows changed and added one by one (tab_change, tab_add) */
    if (!tb->n_chg && !tb->n_new)
      return 0;
    if (!(*out = malloc((tb->n_chg + tb->n_new) * rs)))
      return bf_error_set(BF_ENOMEM, "out of memory committing %s", tb->t->path);
    if (tb->n_chg)
      memcpy(*out, tb->tx_chg, tb->n_chg * rs);
    if (tb->n_new)
      memcpy(*out + tb->n_chg * rs, tb->tx_new, tb->n_new * rs);
    *n = tb->n_chg + tb->n_new;
    return 0;
  }
  nd = tb->ndl;
  if (!(*out = malloc((nd + tb->n - tb->n0 + 1) * rs)))
    return bf_error_set(BF_ENOMEM, "out of memory committing %s", tb->t->path);
  for (size_t i = 0; i < nd; i++)
    memcpy(*out + rs * m++, tb->rows + rs * tb->dl[i], rs);
  if (tb->n > tb->n0)
    memcpy(*out + rs * m, tb->rows + rs * tb->n0, rs * (tb->n - tb->n0));
  *n = m + tb->n - tb->n0;
  return 0;
}

static int tx_write_tables(bf_store *st)
{
  int rc = 0;
  for (int k = 0; k < NTB && !rc; k++) {
    char *rows = NULL;
    size_t n = 0;
    if (!(rc = tx_rows(st, k, &rows, &n)))
      rc = tbl_write_new(st->txf, TBL[k], TBL[k]->path, rows, n);
    if (!rc && keyed(k))
      rc = keys_write(st->txf, k, rows, n);
    free(rows);
  }
  if (!rc)
    rc = tbl_write_new(st->txf, &T_AUDIT, T_AUDIT.path, st->aud, st->naud);
  for (int i = 0; i < st->nkinds && !rc; i++) {
    kindcache *kc = &st->kinds[i];
    if (kc->txds < 0)
      continue;
    size_t n = kc->n - kc->n0;
    bf_feat_row *r = malloc((n + 1) * sizeof *r);
    if (!r)
      return bf_error_set(BF_ENOMEM, "out of memory committing features");
    for (size_t j = 0; j < n; j++) {
      r[j] = kc->rows[kc->n0 + j];
      r[j].offset -= kc->total; /* local to the segment */
    }
    char ip[96];
    snprintf(ip, sizeof ip, "/features/%s/index", kc->name);
    rc = tbl_write_new(st->txf, &T_FEAT, ip, r, n);
    free(r);
    if (H5Dclose(kc->txds) < 0 && !rc)
      rc = bf_error_set(BF_EIO, "%s: cannot write feature data (disk full?)", st->path);
    kc->txds = -1;
  }
  return rc;
}

static int tx_dirty(const bf_store *st)
{
  if (st->naud)
    return 1;
  for (int k = 0; k < NTB; k++)
    if (st->tb[k].loaded && st->tb[k].n != st->tb[k].n0)
      return 1;
  for (int k = 0; k < NTB; k++)
    if ((st->tb[k].loaded && st->tb[k].ndl) || st->tb[k].n_chg || st->tb[k].n_new)
      return 1;
  for (int i = 0; i < st->nkinds; i++)
    if (st->kinds[i].txds >= 0)
      return 1;
  return 0;
}

/* Commit: finish and sync the new segment, then list it in a new manifest (rename = the
 * commit point). Costs what the transaction wrote plus a manifest of one row per segment. */
int bf_store_commit(bf_store *st)
{
  int rc = 0;
  mrow *m = NULL;
  char p[4400];
  if (!st->intx)
    return bf_error_set(BF_EINVAL, "%s: commit without a transaction", st->path);
  seg_path(st, p, sizeof p, st->txname);
  if (!tx_dirty(st)) { /* nothing written: no segment */
    for (int k = 0; k < st->nkinds; k++)
      if (st->kinds[k].txds >= 0) {
        H5Dclose(st->kinds[k].txds);
        st->kinds[k].txds = -1;
      }
    H5Fclose(st->txf);
    st->txf = -1;
    st->intx = 0;
    unlink(p);
    return 0;
  }
  if ((rc = tx_write_tables(st)))
    goto done;
  herr_t e = H5Fclose(st->txf);
  st->txf = -1;
  if (e < 0) {
    hdf5_poisoned = 1;
    rc = bf_error_set(BF_EIO, "%s: cannot finish writing segment %s (disk full?)", st->path, st->txname);
    goto done;
  }
  seg s = {0};
  s.seq = st->next_seq;
  s.naudit = (int64_t)st->naud;
  scopy(s.name, sizeof s.name, st->txname);
  bf_store_now(s.created);
  if ((rc = fsync_file(p, &s.bytes)) || (rc = fsync_dir(p)))
    goto done;
  if (st->nseg + 1 >= st->cseg) {
    size_t cap = (size_t)st->cseg;
    if ((rc = grow((void **)&st->segs, &cap, (size_t)st->nseg + 2, sizeof *st->segs)))
      goto done;
    st->cseg = (int)cap;
  }
  s.f = -1;
  st->segs[st->nseg] = s;
  st->next_seq++;
  st->nseg++;
  int64_t gen0 = st->gen;
  rc = manifest_from_segs(st, &m);
  if (!rc)
    rc = manifest_write(st, m, (size_t)st->nseg);
  if (st->gen == gen0) { /* not renamed: not committed */
    st->nseg--;
    st->next_seq--;
    goto done;
  }
  /* committed (even if the folder sync after the rename failed: then rc says so) */
  st->intx = 0;
  if (open_seg_file(st, s.name, &st->segs[st->nseg - 1].f)) {
    st->segs[st->nseg - 1].f = -1;
    if (!rc)
      rc = bf_error_set(BF_EIO, "%s: committed segment %s does not reopen", st->path, s.name);
  }
  for (int k = 0; k < NTB; k++) {
    tab *tb = &st->tb[k];
    for (size_t i = 0; tb->loaded && i < tb->ndl; i++) {
      tb->seg[tb->dl[i]] = st->nseg - 1;
      tb->dirty[tb->dl[i]] = 0;
    }
    for (size_t i = tb->n0; tb->loaded && i < tb->n; i++)
      tb->seg[i] = st->nseg - 1;
    tb->ndl = 0;
    tb->n0 = tb->n;
    if (tb->n_chg || tb->n_new)
      lazy_committed(tb);
  }
  for (int i = 0; i < st->nkinds; i++) {
    kindcache *kc = &st->kinds[i];
    if (kc->npc && kc->pc[kc->npc - 1].segi == st->nseg - 1)
      kc->total += kc->pc[kc->npc - 1].len;
    if (!kc->indexed) /* the rows are in the segment now; a reader reads them with the rest */
      kc->n = 0;
    kc->n0 = kc->n;
  }
  st->naudit += (int64_t)st->naud;
  st->naud = 0;
done:
  free(m);
  if (st->intx) {
    if (st->txf >= 0) {
      H5Fclose(st->txf);
      st->txf = -1;
    }
    unlink(p);
    char keep[1024];
    scopy(keep, sizeof keep, bf_error_last());
    st->intx = 0;
    reload(st);
    bf_error_set(rc, "%s", keep);
  }
  return rc;
}

/* ---- create / open / close ---- */

static int mkdir_clean(bf_store *st)
{
  if (mkdir(st->dir, 0755) && errno != EEXIST)
    return bf_error_set(BF_EIO, "%s: cannot create the segment folder (%s)", st->dir, strerror(errno));
  struct stat sb;
  if (lstat(st->dir, &sb) || !S_ISDIR(sb.st_mode))
    return bf_error_set(BF_EIO, "%s: not a folder", st->dir);
  clean_stale(st); /* leftovers of a crashed create or upgrade: nothing is listed yet */
  return 0;
}

int bf_store_create(const char *path, const char *user)
{
  int rc = 0;
  bf_store *st = calloc(1, sizeof *st);
  if (!st)
    return bf_error_set(BF_ENOMEM, "out of memory creating %s", path);
  quiet_hdf5();
  st->lockfd = -1;
  st->txf = -1;
  st->mode = BF_STORE_WRITE;
  st->next_seq = 1;
  set_paths(st, path);
  for (int k = 0; k < NTB; k++)
    st->tb[k].t = TBL[k];
  default_user(st->user, sizeof st->user, user);
  struct stat sb;
  if (!lstat(path, &sb)) {
    rc = bf_error_set(BF_EEXIST, "%s: already exists (a store is created once)", path);
    goto done;
  }
  if ((rc = take_lock(st)) || (rc = mkdir_clean(st)))
    goto done;
  for (int k = 0; k < NTB && !rc; k++)
    rc = load_tab(st, k);
  if (rc || (rc = bf_store_begin(st)) ||
      (rc = bf_store_audit(st, "init", "created store schema %d", BF_STORE_SCHEMA)) ||
      (rc = bf_store_commit(st)))
    goto done;
done:
  bf_store_close(st);
  return rc;
}

int bf_store_open(bf_store **out, const char *path, int mode, const char *user)
{
  int rc = 0;
  *out = NULL;
  quiet_hdf5();
  bf_store *st = calloc(1, sizeof *st);
  if (!st)
    return bf_error_set(BF_ENOMEM, "out of memory opening %s", path);
  st->lockfd = -1;
  st->txf = -1;
  st->mode = mode;
  set_paths(st, path);
  for (int k = 0; k < NTB; k++)
    st->tb[k].t = TBL[k];
  default_user(st->user, sizeof st->user, user);
  if (mode == BF_STORE_WRITE) {
    if ((access(path, F_OK) == 0 && access(path, W_OK)) || (access(st->dir, F_OK) == 0 && access(st->dir, W_OK))) {
      rc = bf_error_set(BF_EIO, "%s: the store is read-only (no write permission)", path);
      goto done;
    }
    if (access(path, F_OK)) {
      rc = bf_error_set(BF_ENOTFOUND, "%s: no such store", path);
      goto done;
    }
    if ((rc = take_lock(st)))
      goto done;
  }
  if ((rc = open_snapshot(st)))
    goto done;
  if (mode == BF_STORE_WRITE)
    clean_stale(st); /* a transaction or compaction a crash interrupted: never committed */
  /* no table is read here: each on first use, or one row at a time (tab_row) */
done:
  if (rc)
    bf_store_close(st);
  else
    *out = st;
  return rc;
}

const char *bf_store_path(const bf_store *st)
{
  return st->path;
}

void bf_store_close(bf_store *st)
{
  if (!st)
    return;
  if (st->intx) {
    char keep[1024];
    scopy(keep, sizeof keep, bf_error_last());
    bf_store_abort(st);
    bf_error_set(BF_EIO, "%s", keep);
  }
  drop_caches(st);
  free(st->aud);
  close_segs(st);
  if (st->lockfd >= 0)
    close(st->lockfd);
  free(st);
}

/* ---- audit ---- */

int bf_store_audit(bf_store *st, const char *action, const char *fmt, ...)
{
  int rc;
  if ((rc = need_tx(st)) || (rc = grow((void **)&st->aud, &st->caud, st->naud + 1, sizeof *st->aud)))
    return rc;
  bf_audit_rec a = {0};
  a.seq = st->naudit + (int64_t)st->naud + 1;
  bf_store_now(a.time);
  scopy(a.user, sizeof a.user, st->user);
  scopy(a.action, sizeof a.action, action);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a.what, sizeof a.what, fmt, ap);
  va_end(ap);
  st->aud[st->naud++] = a;
  return 0;
}

int bf_store_read_audit(bf_store *st, bf_audit_rec **out, size_t *n)
{
  int rc = 0;
  tab tb = {0};
  tb.t = &T_AUDIT;
  *out = NULL;
  *n = 0;
  for (int i = 0; i < st->nseg && !rc; i++) {
    char *rows = NULL;
    size_t k = 0;
    char where[4400];
    snprintf(where, sizeof where, "%s: segment %s", st->path, st->segs[i].name);
    if ((rc = tbl_read_at(st->segs[i].f, &T_AUDIT, T_AUDIT.path, 0, (void **)&rows, &k)))
      bf_error_prefix(rc, "%s: ", where);
    else
      rc = tab_merge(&tb, rows, k, i, where);
    free(rows);
  }
  if (!rc && st->naud && !(rc = tab_grow(&tb, tb.n + st->naud))) {
    memcpy(tb.rows + tb.n * sizeof *st->aud, st->aud, st->naud * sizeof *st->aud);
    tb.n += st->naud;
  }
  free(tb.seg);
  free(tb.dirty);
  if (rc) {
    free(tb.rows);
    note_load_error(st, rc);
    return rc;
  }
  *out = (bf_audit_rec *)tb.rows;
  *n = tb.n;
  return 0;
}

/* ---- records ---- */

static int mark(bf_store *st, int k, size_t idx)
{
  tab *tb = &st->tb[k];
  if (idx >= tb->n0 || tb->dirty[idx])
    return 0;
  int rc = grow((void **)&tb->dl, &tb->cdl, tb->ndl + 1, sizeof *tb->dl);
  if (rc)
    return rc;
  tb->dirty[idx] = 1;
  tb->dl[tb->ndl++] = idx;
  return 0;
}

/* Appends row r (its id is n + 1) to table k. */
static int tab_push(bf_store *st, int k, const void *r)
{
  tab *tb = &st->tb[k];
  int rc = tab_grow(tb, tb->n + 1);
  if (rc)
    return rc;
  memcpy(tb->rows + tb->n * tb->t->rowsize, r, tb->t->rowsize);
  tb->seg[tb->n++] = st->nseg;
  if (tb->ks)
    rc = ks_add(tb, row_hash(k, r), (int64_t)tb->n);
  return rc;
}

/* The id the next row added to table k gets, without loading the table. */
static int tab_next_id(bf_store *st, int k, int64_t *id)
{
  tab *tb = &st->tb[k];
  int rc = lazy_ready(st, k);
  if (!rc)
    *id = tb->loaded ? (int64_t)tb->n + 1 : tb->lz_max + (int64_t)tb->n_new + 1;
  return rc;
}

/* Adds row r (its id from tab_next_id) to table k: appended to a loaded table, else kept with
 * the transaction's rows (an ingest reads no table whole). Keys go into the key index. */
static int tab_add(bf_store *st, int k, const void *r)
{
  tab *tb = &st->tb[k];
  if (tb->loaded)
    return tab_push(st, k, r);
  size_t rs = tb->t->rowsize;
  int rc = grow((void **)&tb->tx_new, &tb->c_new, tb->n_new + 1, rs);
  if (!rc)
    memcpy(tb->tx_new + rs * tb->n_new++, r, rs);
  if (!rc && tb->ks)
    rc = ks_add(tb, row_hash(k, r), tb->lz_max + (int64_t)tb->n_new);
  return rc;
}

int bf_store_add_firearm(bf_store *st, int64_t *id, const bf_firearm *f)
{
  int rc;
  bf_firearm r = *f;
  if ((rc = need_tx(st)) || (rc = tab_next_id(st, TB_FA, &r.id)))
    return rc;
  if (!f->serial[0])
    return bf_error_set(BF_EINVAL, "a firearm needs a serial number");
  bf_store_now(r.created);
  scopy(r.user, sizeof r.user, st->user);
  if ((rc = tab_add(st, TB_FA, &r)) ||
      (rc = bf_store_audit(st, "firearm add", "firearm %lld serial %s make %s model %s calibre %s",
                           (long long)r.id, r.serial, r.make, r.model, r.calibre)))
    return rc;
  if (id)
    *id = r.id;
  return 0;
}

int bf_store_add_evidence(bf_store *st, int64_t *id, const bf_evidence *e)
{
  int rc;
  bf_evidence r = *e;
  if ((rc = need_tx(st)) || (rc = tab_next_id(st, TB_EV, &r.id)))
    return rc;
  if (!e->case_no[0] || !e->item[0])
    return bf_error_set(BF_EINVAL, "evidence needs a case number and an item id");
  bf_store_now(r.created);
  scopy(r.user, sizeof r.user, st->user);
  if ((rc = tab_add(st, TB_EV, &r)) ||
      (rc = bf_store_audit(st, "evidence add", "evidence %lld case %s item %s kind %s",
                           (long long)r.id, r.case_no, r.item, bf_kind_name(r.kind))))
    return rc;
  if (id)
    *id = r.id;
  return 0;
}

int bf_store_add_item(bf_store *st, int64_t *id, int kind, const char *calibre, int owner_type,
                      int64_t owner)
{
  int rc;
  bf_item r = {0};
  if ((rc = need_tx(st)) || (rc = tab_next_id(st, TB_IT, &r.id)))
    return rc;
  if (kind != BF_KIND_CARTRIDGE && kind != BF_KIND_BULLET)
    return bf_error_set(BF_EINVAL, "item kind %d is neither cartridge nor bullet", kind);
  if ((owner_type == BF_OWNER_FIREARM && !bf_store_firearm(st, owner)) ||
      (owner_type == BF_OWNER_EVIDENCE && !bf_store_evidence(st, owner)) ||
      (owner_type != BF_OWNER_FIREARM && owner_type != BF_OWNER_EVIDENCE))
    return bf_store_error(st) ? bf_store_error(st)
                              : bf_error_set(BF_ENOTFOUND, "item owner %d/%lld does not exist", owner_type,
                                             (long long)owner);
  r.kind = kind;
  r.owner_type = owner_type;
  r.owner = owner;
  scopy(r.calibre, sizeof r.calibre, calibre);
  bf_store_now(r.created);
  if ((rc = tab_add(st, TB_IT, &r)) ||
      (rc = bf_store_audit(st, "item add", "item %lld %s of %s %lld", (long long)r.id,
                           bf_kind_name(kind), owner_type == BF_OWNER_FIREARM ? "firearm" : "evidence",
                           (long long)owner)))
    return rc;
  if (id)
    *id = r.id;
  return 0;
}

int bf_store_find_sha256(const bf_store *st, const char *hex, int64_t *scan_id)
{
  int64_t id = 0;
  if (ks_find(st, TB_SC, hex, &id))
    return BF_EIO;
  if (id && scan_id)
    *scan_id = id;
  return id ? 0 : BF_ENOTFOUND;
}

static int x3p_name(char *buf, size_t n, int64_t id)
{
  return snprintf(buf, n, "/scans_x3p/%lld", (long long)id);
}

int bf_store_add_scan(bf_store *st, int64_t *id, int64_t item, int land, const void *bytes,
                      size_t nbytes, const char *name, const bf_surface *s)
{
  int rc;
  hid_t sp = -1, p = -1, ds = -1;
  bf_scan_rec r = {0};
  if ((rc = need_tx(st)) || (rc = tab_next_id(st, TB_SC, &r.id)))
    return rc;
  const bf_item *itp = bf_store_item(st, item);
  if (!itp)
    return bf_store_error(st) ? bf_store_error(st)
                              : bf_error_set(BF_ENOTFOUND, "%s: item %lld does not exist", name, (long long)item);
  bf_item it = *itp; /* its scan count changes below */
  uint8_t h[32];
  bf_sha256(h, bytes, nbytes);
  bf_hex(r.sha256, h, 32);
  int64_t prev = 0;
  const char *o = NULL;
  if ((rc = ks_find(st, TB_SC, r.sha256, &prev)) || (prev && (rc = tab_row(st, TB_SC, prev, &o))))
    return rc;
  if (o)
    return bf_error_set(BF_EEXIST, "%s: duplicate: the same file (SHA-256 %.16s...) is already stored as scan %lld (%s) of item %lld",
                        name, r.sha256, (long long)prev, ((const bf_scan_rec *)o)->name,
                        (long long)((const bf_scan_rec *)o)->item);
  r.item = item;
  r.land = land;
  r.nbytes = (int64_t)nbytes;
  scopy(r.name, sizeof r.name, name);
  if (s) {
    r.nx = s->nx;
    r.ny = s->ny;
    r.dx = s->dx;
    r.dy = s->dy;
    char ins[400];
    snprintf(ins, sizeof ins, "%s %s %s", s->meta.manufacturer, s->meta.model, s->meta.serial);
    scopy(r.instrument, sizeof r.instrument, ins);
    scopy(r.date, sizeof r.date, s->meta.date);
  }
  bf_store_now(r.created);
  scopy(r.user, sizeof r.user, st->user);
  char dn[64];
  x3p_name(dn, sizeof dn, r.id);
  hsize_t d = nbytes ? nbytes : 1, chunk = d < (1 << 20) ? d : (1 << 20);
  sp = H5Screate_simple(1, &d, NULL);
  p = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(p, 1, &chunk);
  H5Pset_deflate(p, 1); /* X3P is already a zip: a light pass keeps it cheap */
  H5Pset_fletcher32(p);
  ds = H5Dcreate2(st->txf, dn, H5T_STD_U8LE, sp, H5P_DEFAULT, p, H5P_DEFAULT);
  if (ds < 0 || (nbytes && H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes) < 0)) {
    rc = bf_error_set(BF_EIO, "%s: cannot store the original bytes (disk full?)", name);
    goto done;
  }
  attr_str(ds, "sha256", r.sha256);
  attr_str(ds, "name", r.name);
  it.nscans++;
  if ((rc = tab_add(st, TB_SC, &r)) ||
      (rc = bf_store_audit(st, "scan add", "scan %lld item %lld land %d sha256 %s file %s",
                           (long long)r.id, (long long)item, land, r.sha256, r.name)) ||
      (rc = tab_change(st, TB_IT, &it)))
    goto done;
  if (id)
    *id = r.id;
done:
  if (ds >= 0 && H5Dclose(ds) < 0 && !rc)
    rc = bf_error_set(BF_EIO, "%s: cannot store the original bytes (disk full?)", name);
  if (p >= 0)
    H5Pclose(p);
  if (sp >= 0)
    H5Sclose(sp);
  return rc;
}

int bf_store_read_x3p(bf_store *st, int64_t scan_id, uint8_t **bytes, size_t *n)
{
  int rc = 0;
  *bytes = NULL;
  *n = 0;
  if ((rc = ensure(st, L_SC)))
    return rc;
  if (scan_id < 1 || (size_t)scan_id > NSC(st))
    return bf_error_set(BF_ENOTFOUND, "%s: no scan %lld", st->path, (long long)scan_id);
  const bf_scan_rec *r = &SC(st)[scan_id - 1];
  int segi = st->tb[TB_SC].seg[scan_id - 1];
  hid_t f = segi < st->nseg ? st->segs[segi].f : st->txf;
  const char *sname = segi < st->nseg ? st->segs[segi].name : st->txname;
  char dn[64];
  x3p_name(dn, sizeof dn, scan_id);
  hid_t ds = H5Lexists(f, dn, H5P_DEFAULT) > 0 ? H5Dopen2(f, dn, H5P_DEFAULT) : -1;
  if (ds < 0)
    return bf_error_set(BF_ECHECKSUM, "%s: segment %s: scan %lld has no original bytes (%s missing)",
                        st->path, sname, (long long)scan_id, dn);
  hid_t sp = H5Dget_space(ds);
  hsize_t len;
  H5Sget_simple_extent_dims(sp, &len, NULL);
  H5Sclose(sp);
  if ((int64_t)len != (r->nbytes ? r->nbytes : 1)) {
    rc = bf_error_set(BF_ECHECKSUM, "%s: scan %lld: %llu bytes stored, %lld expected", st->path,
                      (long long)scan_id, (unsigned long long)len, (long long)r->nbytes);
    goto done;
  }
  if (!(*bytes = malloc(len))) {
    rc = bf_error_set(BF_ENOMEM, "out of memory reading scan %lld", (long long)scan_id);
    goto done;
  }
  if (H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, *bytes) < 0) {
    rc = bf_error_set(BF_ECHECKSUM, "%s: segment %s: %s (scan %lld, %s): stored bytes fail their checksum",
                      st->path, sname, dn, (long long)scan_id, r->name);
    goto done;
  }
  uint8_t h[32];
  char hex[72];
  bf_sha256(h, *bytes, (size_t)r->nbytes);
  bf_hex(hex, h, 32);
  if (strcmp(hex, r->sha256)) {
    rc = bf_error_set(BF_ECHECKSUM, "%s: scan %lld (%s): SHA-256 %s differs from the recorded %s",
                      st->path, (long long)scan_id, r->name, hex, r->sha256);
    goto done;
  }
  *n = (size_t)r->nbytes;
done:
  H5Dclose(ds);
  if (rc) {
    free(*bytes);
    *bytes = NULL;
  }
  return rc;
}

/* ---- features ---- */

int bf_store_add_kind(bf_store *st, const char *kind, int compress)
{
  int rc;
  if ((rc = need_tx(st)))
    return rc;
  kindcache *kc = kind_get(st, kind, compress ? 1 : 2, &rc);
  return kc ? 0 : rc;
}

int bf_store_put_feature(bf_store *st, const char *kind, int64_t item, int64_t scan,
                         const bf_feature *f)
{
  int rc;
  if ((rc = need_tx(st)))
    return rc;
  if (!bf_store_item(st, item))
    return bf_error_set(BF_ENOTFOUND, "feature for item %lld: no such item", (long long)item);
  kindcache *kc = kind_get(st, kind, 1, &rc);
  if (!kc)
    return rc;
  if ((rc = grow((void **)&kc->rows, &kc->cap, kc->n + 1, sizeof *kc->rows)))
    return rc;
  bf_feat_row r = {0};
  r.item = item;
  r.scan = scan;
  r.land = f->land;
  r.nx = f->nx;
  r.ny = f->ny;
  r.quality_flags = f->quality_flags;
  r.version = f->version;
  r.kind = f->kind;
  r.valid_fraction = f->valid_fraction;
  r.dx = f->dx;
  r.dy = f->dy;
  memcpy(r.params, f->params, sizeof r.params);
  r.count = (int64_t)f->nx * f->ny;
  int64_t at = 0;
  if (ds_append_floats(kc->txds, f->z, r.count, &at))
    return bf_error_set(BF_EIO, "%s: cannot store the %s feature of item %lld (disk full?)", st->path,
                        kind, (long long)item);
  r.offset = kc->total + at;
  kc->txlen = at + r.count;
  kc->pc[kc->npc - 1].len = kc->txlen;
  if ((rc = bf_store_audit(st, "feature add", "feature %s item %lld scan %lld land %d %dx%d flags %d",
                           kind, (long long)item, (long long)scan, r.land, r.nx, r.ny, r.quality_flags)))
    return rc;
  if (kc->n && kc->rows[kc->n - 1].item > item)
    kc->sorted = 0;
  kc->rows[kc->n++] = r;
  return 0;
}

int bf_store_feature_index(bf_store *st, const char *kind, const bf_feat_row **rows, size_t *n)
{
  int rc;
  *rows = NULL;
  *n = 0;
  kindcache *kc = kind_get(st, kind, 0, &rc);
  if (kc) {
    *rows = kc->rows;
    *n = kc->n;
  }
  return rc;
}

static int row_to_feature(bf_feature **out, const bf_feat_row *r, const float *z)
{
  int rc = bf_feature_new(out, r->kind, r->nx, r->ny, r->dx, r->dy);
  if (rc)
    return rc;
  bf_feature *f = *out;
  memcpy(f->z, z, (size_t)r->count * sizeof *z);
  f->land = r->land;
  f->quality_flags = r->quality_flags;
  f->valid_fraction = r->valid_fraction;
  f->version = r->version;
  memcpy(f->params, r->params, sizeof f->params);
  return 0;
}

int bf_store_read_block(bf_store *st, const char *kind, size_t first, size_t n, bf_feature **out)
{
  int rc;
  float *buf = NULL;
  for (size_t i = 0; i < n; i++)
    out[i] = NULL;
  kindcache *kc = kind_get(st, kind, 0, &rc);
  if (!kc)
    return rc ? rc : bf_error_set(BF_ENOTFOUND, "%s: no features of kind %s", st->path, kind);
  if (first + n > kc->n || !n)
    return bf_error_set(BF_EINVAL, "%s: feature rows %zu+%zu beyond %zu of kind %s", st->path, first,
                        n, kc->n, kind);
  const bf_feat_row *r = kc->rows + first;
  int64_t lo = r[0].offset, hi = r[0].offset + r[0].count;
  for (size_t i = 1; i < n; i++) {
    if (r[i].offset < lo)
      lo = r[i].offset;
    if (r[i].offset + r[i].count > hi)
      hi = r[i].offset + r[i].count;
  }
  if (!(buf = malloc((size_t)(hi - lo + 1) * sizeof *buf))) {
    rc = bf_error_set(BF_ENOMEM, "out of memory reading %lld feature values", (long long)(hi - lo));
    goto done;
  }
  if ((rc = kind_read(st, kc, lo, hi, buf))) {
    if (r[0].item == r[n - 1].item) /* name the item whose feature failed */
      bf_error_prefix(rc, "item %lld: ", (long long)r[0].item);
    else
      bf_error_prefix(rc, "items %lld..%lld: ", (long long)r[0].item, (long long)r[n - 1].item);
    goto done;
  }
  for (size_t i = 0; i < n && !rc; i++)
    rc = row_to_feature(&out[i], &r[i], buf + (r[i].offset - lo));
done:
  if (rc)
    for (size_t i = 0; i < n; i++) {
      bf_feature_free(out[i]);
      out[i] = NULL;
    }
  free(buf);
  return rc;
}

int bf_store_read_values(bf_store *st, const char *kind, size_t first, size_t n, size_t len, float *dst,
                         unsigned char *ok)
{
  int rc;
  float *buf = NULL;
  kindcache *kc = kind_get(st, kind, 0, &rc);
  if (!kc)
    return rc ? rc : bf_error_set(BF_ENOTFOUND, "%s: no features of kind %s", st->path, kind);
  if (first + n > kc->n || !n || !len)
    return bf_error_set(BF_EINVAL, "%s: feature rows %zu+%zu beyond %zu of kind %s", st->path, first,
                        n, kc->n, kind);
  const bf_feat_row *r = kc->rows + first;
  int64_t lo = r[0].offset, hi = r[0].offset + r[0].count;
  int packed = 1; /* rows of len values one after the other: read straight into dst */
  for (size_t i = 0; i < n; i++) {
    if (r[i].offset < lo)
      lo = r[i].offset;
    if (r[i].offset + r[i].count > hi)
      hi = r[i].offset + r[i].count;
    packed &= r[i].count == (int64_t)len && r[i].offset == r[0].offset + (int64_t)(i * len);
  }
  if (!packed && !(buf = malloc((size_t)(hi - lo + 1) * sizeof *buf)))
    return bf_error_set(BF_ENOMEM, "out of memory reading %lld feature values", (long long)(hi - lo));
  if ((rc = kind_read(st, kc, lo, hi, packed ? dst : buf))) {
    if (r[0].item == r[n - 1].item)
      bf_error_prefix(rc, "item %lld: ", (long long)r[0].item);
    else
      bf_error_prefix(rc, "items %lld..%lld: ", (long long)r[0].item, (long long)r[n - 1].item);
  }
  for (size_t i = 0; i < n && !rc; i++) {
    int good = r[i].count == (int64_t)len;
    if (!packed && good)
      memcpy(dst + i * len, buf + (r[i].offset - lo), len * sizeof *dst);
    else if (!good)
      memset(dst + i * len, 0, len * sizeof *dst);
    if (ok)
      ok[i] = (unsigned char)good;
  }
  free(buf);
  return rc;
}

int bf_store_get_features(bf_store *st, const char *kind, int64_t item, bf_feature ***out, int *n)
{
  int rc;
  *out = NULL;
  *n = 0;
  kindcache *kc = kind_get(st, kind, 0, &rc);
  if (!kc)
    return rc ? rc : bf_error_set(BF_ENOTFOUND, "%s: no features of kind %s", st->path, kind);
  size_t lo = 0, hi = kc->n;
  if (kc->sorted) { /* first row with item >= id */
    while (lo < hi) {
      size_t m = (lo + hi) / 2;
      if (kc->rows[m].item < item)
        lo = m + 1;
      else
        hi = m;
    }
    hi = lo;
    while (hi < kc->n && kc->rows[hi].item == item)
      hi++;
  } else {
    while (lo < kc->n && kc->rows[lo].item != item)
      lo++;
    hi = lo;
    while (hi < kc->n && kc->rows[hi].item == item)
      hi++;
  }
  if (hi == lo)
    return bf_error_set(BF_ENOTFOUND, "%s: item %lld has no %s features", st->path, (long long)item, kind);
  bf_feature **v = calloc(hi - lo, sizeof *v);
  if (!v)
    return bf_error_set(BF_ENOMEM, "out of memory");
  if ((rc = bf_store_read_block(st, kind, lo, hi - lo, v))) {
    free(v);
    return rc;
  }
  *out = v;
  *n = (int)(hi - lo);
  return 0;
}

/* ---- lookups ---- */

size_t bf_store_nitems(const bf_store *st)
{
  ensure(st, L_IT);
  return NIT(st);
}
const bf_item *bf_store_items(const bf_store *st)
{
  ensure(st, L_IT);
  return IT(st);
}
const bf_item *bf_store_item(const bf_store *st, int64_t id)
{
  const char *r; /* on failure NULL, and bf_store_error says why */
  return tab_row(st, TB_IT, id, &r) ? NULL : (const bf_item *)r;
}
const bf_firearm *bf_store_firearm(const bf_store *st, int64_t id)
{
  const char *r; /* on failure NULL, and bf_store_error says why */
  return tab_row(st, TB_FA, id, &r) ? NULL : (const bf_firearm *)r;
}
const bf_evidence *bf_store_evidence(const bf_store *st, int64_t id)
{
  const char *r;
  return tab_row(st, TB_EV, id, &r) ? NULL : (const bf_evidence *)r;
}
size_t bf_store_nfirearms(const bf_store *st)
{
  ensure(st, L_FA);
  return NFA(st);
}
const bf_firearm *bf_store_firearms(const bf_store *st)
{
  ensure(st, L_FA);
  return FA(st);
}
size_t bf_store_nevidence(const bf_store *st)
{
  ensure(st, L_EV);
  return NEV(st);
}
const bf_evidence *bf_store_evidences(const bf_store *st)
{
  ensure(st, L_EV);
  return EV(st);
}
size_t bf_store_nscans(const bf_store *st)
{
  ensure(st, L_SC);
  return NSC(st);
}
const bf_scan_rec *bf_store_scans(const bf_store *st)
{
  ensure(st, L_SC);
  return SC(st);
}

const bf_firearm *bf_store_firearm_by_serial(const bf_store *st, const char *serial)
{
  int64_t id = 0;
  if (ks_find(st, TB_FA, serial, &id) || !id)
    return NULL;
  return bf_store_firearm(st, id);
}

const bf_evidence *bf_store_evidence_by_case_item(const bf_store *st, const char *case_no,
                                                  const char *item)
{
  char key[160];
  bf_evidence probe;
  scopy(probe.case_no, sizeof probe.case_no, case_no);
  scopy(probe.item, sizeof probe.item, item);
  row_key(TB_EV, (const char *)&probe, key, sizeof key);
  int64_t id = 0;
  if (ks_find(st, TB_EV, key, &id) || !id)
    return NULL;
  return bf_store_evidence(st, id);
}

int bf_store_error(const bf_store *st)
{
  if (st->load_err)
    bf_error_set(st->load_err, "%s", st->load_msg);
  return st->load_err;
}

int bf_store_load(bf_store *st)
{
  int rc = ensure(st, L_ALL);
  char names[MAXKINDS][48];
  int nk = kind_names(st, names, MAXKINDS);
  for (int k = 0; k < nk && !rc; k++)
    kind_get(st, names[k], 0, &rc);
  return rc ? rc : bf_store_error(st);
}

/* one row read when the table is not loaded (tab_row) */
#define ROW_GETTER(fn, T, K)                                                                      \
  int fn(const bf_store *st, int64_t id, const T **out)                                           \
  {                                                                                                \
    const char *r;                                                                                 \
    *out = NULL;                                                                                   \
    int rc = tab_row(st, K, id, &r);                                                               \
    if (rc)                                                                                        \
      return rc;                                                                                   \
    if (!r)                                                                                        \
      return bf_error_set(BF_ENOTFOUND, "%s: no %s %lld", st->path, TBL[K]->path + 1, (long long)id); \
    *out = (const T *)r;                                                                           \
    return 0;                                                                                      \
  }
ROW_GETTER(bf_store_get_item, bf_item, TB_IT)
ROW_GETTER(bf_store_get_firearm, bf_firearm, TB_FA)
ROW_GETTER(bf_store_get_evidence, bf_evidence, TB_EV)
ROW_GETTER(bf_store_get_scan, bf_scan_rec, TB_SC)

int bf_store_list_items(const bf_store *st, int kind, const char *calibre, int64_t **ids, size_t *n)
{
  int rc;
  *n = 0;
  *ids = NULL;
  if ((rc = ensure(st, L_IT)))
    return rc;
  *ids = malloc((NIT(st) ? NIT(st) : 1) * sizeof **ids);
  if (!*ids)
    return bf_error_set(BF_ENOMEM, "out of memory listing items");
  for (size_t i = 0; i < NIT(st); i++)
    if ((!kind || IT(st)[i].kind == kind) &&
        (!calibre || !*calibre || !strcmp(IT(st)[i].calibre, calibre)))
      (*ids)[(*n)++] = IT(st)[i].id;
  return 0;
}

int bf_store_set_searched(bf_store *st, const int64_t *items, size_t n, int64_t run)
{
  int rc;
  if ((rc = need_tx(st)) || (rc = ensure(st, L_IT)))
    return rc;
  for (size_t i = 0; i < n; i++)
    if (!bf_store_item(st, items[i]))
      return bf_error_set(BF_ENOTFOUND, "no item %lld", (long long)items[i]);
  for (size_t i = 0; i < n; i++) {
    IT(st)[items[i] - 1].searched = run;
    if ((rc = mark(st, TB_IT, (size_t)(items[i] - 1))))
      return rc;
  }
  return bf_store_audit(st, "searched", "%zu item(s) marked searched by run %lld", n, (long long)run);
}

/* ---- hits ---- */

const char *bf_hit_status_name(int status)
{
  return status == BF_HIT_CONFIRMED ? "confirmed" : status == BF_HIT_REJECTED ? "rejected" : "candidate";
}

int bf_store_add_hits(bf_store *st, const bf_hit *hits, size_t n, size_t *added)
{
  int rc;
  size_t nf = 0, n0 = NHI(st);
  if (added)
    *added = 0;
  if ((rc = need_tx(st)) || (rc = ensure(st, L_HI | L_FA | L_EV | L_IT)))
    return rc;
  n0 = NHI(st);
  if (!n)
    return 0;
  if ((rc = tab_grow(&st->tb[TB_HI], NHI(st) + n)) || (rc = ks_ensure(st, TB_HI)))
    return rc;
  char now[32];
  bf_store_now(now);
  for (size_t i = 0; i < n; i++) {
    if (!bf_store_item(st, hits[i].query) || !bf_store_item(st, hits[i].candidate)) {
      rc = bf_error_set(BF_ENOTFOUND, "hit %zu: query %lld or candidate %lld is not an item", i,
                        (long long)hits[i].query, (long long)hits[i].candidate);
      goto done;
    }
    char key[80];
    int64_t old = 0;
    row_key(TB_HI, (const char *)&hits[i], key, sizeof key);
    if ((rc = ks_find(st, TB_HI, key, &old)))
      goto done;
    if (old)
      continue; /* already stored (e.g. a resumed batch): never twice */
    bf_hit h = hits[i];
    h.id = (int64_t)NHI(st) + 1;
    if (!h.time[0])
      scopy(h.time, sizeof h.time, now);
    if ((rc = tab_push(st, TB_HI, &h))) /* and into the key index */
      goto done;
    nf++;
  }
  if (nf && (rc = bf_store_audit(st, "hits add", "%zu hit(s) of run %lld added (%zu already stored)", nf,
                                 (long long)hits[0].run, n - nf)))
    goto done;
  if (added)
    *added = nf;
done:
  if (rc) { /* forget the in-memory rows; the transaction will be aborted */
    st->tb[TB_HI].n = n0;
    ks_clear(&st->tb[TB_HI]);
  }
  return rc;
}

static int item_case(const bf_store *st, int64_t id, const char *case_no)
{
  const bf_item *it = bf_store_item(st, id);
  const bf_evidence *e = it && it->owner_type == BF_OWNER_EVIDENCE ? bf_store_evidence(st, it->owner) : NULL;
  return e && !strcmp(e->case_no, case_no);
}

static int item_serial(const bf_store *st, int64_t id, const char *serial)
{
  const bf_item *it = bf_store_item(st, id);
  const bf_firearm *f = it && it->owner_type == BF_OWNER_FIREARM ? bf_store_firearm(st, it->owner) : NULL;
  return f && !strcmp(f->serial, serial);
}

static int hit_cmp(const void *a, const void *b)
{
  const bf_hit *x = a, *y = b;
  return x->score < y->score ? 1 : x->score > y->score ? -1 : (x->id > y->id) - (x->id < y->id);
}

int bf_store_query_hits(const bf_store *st, const bf_hit_filter *f, bf_hit **out, size_t *n)
{
  int rc;
  *n = 0;
  *out = NULL;
  if ((rc = ensure(st, L_HI | L_FA | L_EV | L_IT)))
    return rc;
  bf_hit_filter all = BF_HIT_FILTER_INIT;
  if (!f)
    f = &all;
  *out = malloc((NHI(st) ? NHI(st) : 1) * sizeof **out);
  if (!*out)
    return bf_error_set(BF_ENOMEM, "out of memory querying hits");
  for (size_t i = 0; i < NHI(st); i++) {
    const bf_hit *h = &HI(st)[i];
    if (h->score < f->min_score || (f->status >= 0 && h->status != f->status) ||
        (f->run && h->run != f->run) || (f->item && h->query != f->item && h->candidate != f->item))
      continue;
    if (f->case_no && *f->case_no && !item_case(st, h->query, f->case_no) &&
        !item_case(st, h->candidate, f->case_no))
      continue;
    if (f->serial && *f->serial && !item_serial(st, h->query, f->serial) &&
        !item_serial(st, h->candidate, f->serial))
      continue;
    (*out)[(*n)++] = *h;
  }
  qsort(*out, *n, sizeof **out, hit_cmp);
  return 0;
}

int bf_store_set_hit_status(bf_store *st, int64_t hit_id, int status, const char *examiner,
                            const char *note)
{
  int rc;
  const char *cur = NULL;
  if ((rc = need_tx(st)) || (rc = tab_row(st, TB_HI, hit_id, &cur))) /* one row, not the table */
    return rc;
  if (!cur)
    return bf_error_set(BF_ENOTFOUND, "%s: no hit %lld", st->path, (long long)hit_id);
  if (status < BF_HIT_CANDIDATE || status > BF_HIT_REJECTED)
    return bf_error_set(BF_EINVAL, "hit status %d is not candidate/confirmed/rejected", status);
  bf_hit h;
  memcpy(&h, cur, sizeof h);
  int old = h.status;
  h.status = status;
  scopy(h.examiner, sizeof h.examiner, examiner && *examiner ? examiner : st->user);
  bf_store_now(h.when);
  if (note)
    scopy(h.note, sizeof h.note, note);
  if ((rc = bf_store_audit(st, "hit status", "hit %lld %s -> %s by %s%s%s", (long long)hit_id,
                           bf_hit_status_name(old), bf_hit_status_name(status), h.examiner,
                           note ? ": " : "", note ? note : "")))
    return rc;
  return tab_change(st, TB_HI, &h);
}

/* ---- verify ---- */

typedef struct vctx {
  bf_store_report_fn fn;
  void *ctx;
  int n;
} vctx;

static void problem(vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(vctx *v, const char *fmt, ...)
{
  char buf[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  v->n++;
  if (v->fn)
    v->fn(v->ctx, buf);
}

/* Reads every value of a kind in every segment (Fletcher-32 checks each chunk). */
static void verify_kind(bf_store *st, vctx *v, const char *name)
{
  int rc;
  kindcache *kc = kind_get(st, name, 0, &rc);
  if (!kc) {
    problem(v, "features/%s: %s", name, rc ? bf_error_last() : "unreadable");
    return;
  }
  for (size_t i = 0; i < kc->n; i++) {
    const bf_feat_row *r = &kc->rows[i];
    if (!bf_store_item(st, r->item))
      problem(v, "features/%s row %zu: item %lld does not exist", name, i, (long long)r->item);
    if (r->count != (int64_t)r->nx * r->ny || r->offset < 0)
      problem(v, "features/%s row %zu: bad size/offset", name, i);
  }
  const int64_t blk = 1 << 22;
  float *buf = malloc(blk * sizeof *buf);
  int64_t total = kc->npc ? kc->pc[kc->npc - 1].base + kc->pc[kc->npc - 1].len : 0;
  for (int64_t off = 0; buf && off < total; off += blk) {
    int64_t c = total - off < blk ? total - off : blk;
    if (kind_read(st, kc, off, off + c, buf)) {
      problem(v, "%s", bf_error_last());
      break;
    }
  }
  if (!buf)
    problem(v, "out of memory checking features/%s", name);
  free(buf);
}

/* Each segment's key lists name exactly its table's rows (a wrong list would let a duplicate in). */
static void verify_keys(bf_store *st, vctx *v)
{
  for (int i = 0; i < st->nseg; i++)
    for (int k = 0; k < NTB; k++) {
      char kp[64];
      keys_path(k, kp, sizeof kp);
      hid_t f = st->segs[i].f;
      if (!keyed(k) || H5Lexists(f, "/keys", H5P_DEFAULT) <= 0 || H5Lexists(f, kp, H5P_DEFAULT) <= 0)
        continue; /* written before keys existed: the table is used instead */
      keyrow *kr = NULL, *want = NULL;
      char *rows = NULL;
      size_t nk = 0, n = 0;
      if (tbl_read_at(f, &T_KEYS, kp, 0, (void **)&kr, &nk) || tbl_read_at(f, TBL[k], TBL[k]->path, 0, (void **)&rows, &n))
        problem(v, "%s: segment %s: %s", st->path, st->segs[i].name, bf_error_last());
      else if (!(want = keys_of(k, rows, n)))
        problem(v, "%s: out of memory checking %s", st->path, kp);
      else if (nk != n || (n && memcmp(want, kr, n * sizeof *kr)))
        problem(v, "%s: segment %s: %s does not match %s (%zu keys, %zu rows)", st->path, st->segs[i].name,
                kp, TBL[k]->path, nk, n);
      free(kr);
      free(want);
      free(rows);
    }
}

int bf_store_verify(bf_store *st, bf_store_report_fn report, void *ctx, int *nproblems)
{
  vctx v = {report, ctx, 0};
  /* a table that does not load is a problem, listed like any other */
  for (int k = 0; k < NTB; k++)
    if (!st->tb[k].loaded && load_tab(st, k))
      problem(&v, "%s", bf_error_last());
  bf_audit_rec *a = NULL;
  size_t na = 0;
  if (bf_store_read_audit(st, &a, &na))
    problem(&v, "%s", bf_error_last());
  else if ((int64_t)na != st->naudit + (int64_t)st->naud)
    problem(&v, "audit log: %zu rows, the manifest counts %lld", na, (long long)st->naudit);
  free(a);
  for (size_t i = 0; i < NIT(st); i++) {
    const bf_item *it = &IT(st)[i];
    if ((it->owner_type == BF_OWNER_FIREARM && !bf_store_firearm(st, it->owner)) ||
        (it->owner_type == BF_OWNER_EVIDENCE && !bf_store_evidence(st, it->owner)))
      problem(&v, "item %lld: owner %lld does not exist", (long long)it->id, (long long)it->owner);
  }
  for (size_t i = 0; i < NHI(st); i++)
    if (!bf_store_item(st, HI(st)[i].query) || !bf_store_item(st, HI(st)[i].candidate))
      problem(&v, "hit %lld: refers to a missing item", (long long)HI(st)[i].id);
  for (size_t i = 0; i < NSC(st); i++) {
    uint8_t *b = NULL;
    size_t n;
    if (!bf_store_item(st, SC(st)[i].item))
      problem(&v, "scan %lld: item %lld does not exist", (long long)SC(st)[i].id, (long long)SC(st)[i].item);
    if (bf_store_read_x3p(st, (int64_t)i + 1, &b, &n))
      problem(&v, "%s", bf_error_last());
    free(b);
  }
  char names[MAXKINDS][48];
  int nk = kind_names(st, names, MAXKINDS);
  for (int k = 0; k < nk; k++)
    verify_kind(st, &v, names[k]);
  verify_keys(st, &v);
  if (nproblems)
    *nproblems = v.n;
  return v.n ? bf_error_set(BF_ECHECKSUM, "%s: %d problem(s) found", st->path, v.n) : 0;
}

/* ---- kinds, stats and export ---- */

int bf_store_feature_kinds(bf_store *st, char (*names)[48], int max)
{
  return kind_names(st, names, max);
}

int bf_store_kind_info(bf_store *st, const char *kind, int *compressed, size_t *nrows, int64_t *nvalues)
{
  int rc;
  kindcache *kc = kind_get(st, kind, 0, &rc);
  if (!kc)
    return rc ? rc : bf_error_set(BF_ENOTFOUND, "%s: no features of kind %s", st->path, kind);
  if (compressed)
    *compressed = kc->compress;
  if (nrows)
    *nrows = kc->n;
  if (nvalues)
    *nvalues = kc->npc ? kc->pc[kc->npc - 1].base + kc->pc[kc->npc - 1].len : 0;
  return 0;
}

int bf_store_stats_get(bf_store *st, bf_store_stats *s)
{
  memset(s, 0, sizeof *s);
  s->schema = BF_STORE_SCHEMA;
  s->generation = st->gen;
  s->segments = st->nseg;
  struct stat sb;
  if (!stat(st->path, &sb))
    s->bytes = (int64_t)sb.st_size;
  for (int i = 0; i < st->nseg; i++) {
    s->bytes += st->segs[i].bytes;
    if (st->segs[i].bytes < BF_STORE_SMALL_SEGMENT)
      s->small_segments++;
    s->unkeyed_segments += H5Lexists(st->segs[i].f, "/keys", H5P_DEFAULT) <= 0;
  }
  s->compaction_due = s->small_segments >= BF_STORE_COMPACT_DUE;
  int rc = ensure(st, L_ALL);
  size_t superseded = 0;
  for (int k = 0; k < NTB && !rc; k++) {
    /* rows in all segments minus live rows: what compaction would drop */
    size_t total = 0;
    for (int i = 0; i < st->nseg; i++) {
      char p[64];
      snprintf(p, sizeof p, "%s", TBL[k]->path);
      hid_t ds = H5Lexists(st->segs[i].f, p, H5P_DEFAULT) > 0 ? H5Dopen2(st->segs[i].f, p, H5P_DEFAULT) : -1;
      if (ds >= 0) {
        total += (size_t)ds_len(ds);
        H5Dclose(ds);
      }
    }
    superseded += total > st->tb[k].n ? total - st->tb[k].n : 0;
  }
  s->superseded_rows = (int64_t)superseded;
  s->audit_rows = st->naudit;
  return rc ? rc : bf_store_error(st);
}

/* One escaping rule for every output (bf_text.h): CSV rows stay one line, JSON stays valid. */
static void csv_str(FILE *o, const char *s) { bf_text_csv(o, s); }

static void json_str(FILE *o, const char *s) { bf_text_json(o, s); }

int bf_store_export(bf_store *st, const char *what, int json, FILE *out)
{
  const tbl *t = NULL;
  const void *rows = NULL;
  size_t n = 0;
  bf_audit_rec *au = NULL;
  int rc = 0, k = -1;
  if (!strcmp(what, "firearms"))
    k = TB_FA;
  else if (!strcmp(what, "evidence"))
    k = TB_EV;
  else if (!strcmp(what, "items"))
    k = TB_IT;
  else if (!strcmp(what, "scans"))
    k = TB_SC;
  else if (!strcmp(what, "hits"))
    k = TB_HI;
  else if (strcmp(what, "audit"))
    return bf_error_set(BF_EINVAL, "cannot export '%s': firearms, evidence, items, scans, hits or audit", what);
  if (k >= 0) {
    if ((rc = ensure(st, 1 << k)))
      return rc;
    t = TBL[k], rows = st->tb[k].rows, n = st->tb[k].n;
  } else {
    if ((rc = bf_store_read_audit(st, &au, &n)))
      return rc;
    t = &T_AUDIT, rows = au;
  }
  if (json)
    fputs("[", out);
  else
    for (int j = 0; j < t->nf; j++)
      fprintf(out, "%s%s", j ? "," : "", t->f[j].name);
  if (!json)
    fputs("\n", out);
  for (size_t i = 0; i < n; i++) {
    const char *row = (const char *)rows + i * t->rowsize;
    if (json)
      fputs(i ? ",\n {" : "\n {", out);
    for (int j = 0; j < t->nf; j++) {
      const fld *f = &t->f[j];
      const char *p = row + f->off;
      if (j)
        fputs(json ? ", " : ",", out);
      if (json)
        fprintf(out, "\"%s\": ", f->name);
      if (f->type == T_I64)
        fprintf(out, "%lld", (long long)*(const int64_t *)p);
      else if (f->type == T_I32)
        fprintf(out, "%d", *(const int32_t *)p);
      else if (f->type == T_F64 && !isfinite(*(const double *)p))
        fputs(json ? "null" : "", out); /* JSON has no NaN: not computed */
      else if (f->type == T_F64)
        fprintf(out, "%.10g", *(const double *)p);
      else if (f->type == T_F32)
        fprintf(out, "%.7g", *(const float *)p);
      else if (f->type == T_STR)
        (json ? json_str : csv_str)(out, p);
      else {
        fputs(json ? "[" : "", out);
        for (size_t q = 0; q < f->size; q++)
          fprintf(out, "%s%.10g", q ? (json ? ", " : ";") : "", ((const double *)p)[q]);
        fputs(json ? "]" : "", out);
      }
    }
    fputs(json ? "}" : "\n", out);
  }
  if (json)
    fputs("]\n", out);
  free(au);
  if (fflush(out) || ferror(out))
    rc = bf_error_set(BF_EIO, "cannot write the %s export", what);
  return rc;
}

/* ---- compaction: merges runs of small segments, dropping superseded rows ---- */

typedef struct orow {
  int64_t id;
  size_t at;
} orow;

static int orow_cmp(const void *a, const void *b)
{
  const orow *x = a, *y = b;
  if (x->id != y->id)
    return x->id < y->id ? -1 : 1;
  return x->at < y->at ? -1 : x->at > y->at;
}

/* Table k of segments [a, b) merged: the last version of each id, in id order. */
/* Merges table t of segments a..b-1 into dst (dedupe: the last row of each id); k >= 0: with
 * the keys of table k. */
static int merge_table(bf_store *st, const tbl *t, int k, int a, int b, hid_t dst, int dedupe, int64_t *rd,
                       int64_t *dropped)
{
  int rc = 0;
  char *all = NULL;
  size_t n = 0, cap = 0, rs = t->rowsize;
  orow *o = NULL;
  for (int i = a; i < b && !rc; i++) {
    char *rows = NULL;
    size_t k = 0;
    if ((rc = tbl_read_at(st->segs[i].f, t, t->path, 0, (void **)&rows, &k))) {
      bf_error_prefix(rc, "%s: segment %s: ", st->path, st->segs[i].name);
      break;
    }
    if (!(rc = grow((void **)&all, &cap, n + k + 1, rs))) {
      memcpy(all + n * rs, rows, k * rs);
      n += k;
    }
    free(rows);
  }
  *rd += (int64_t)(n * rs);
  size_t m = n;
  if (!rc && dedupe && n) {
    if (!(o = malloc(n * sizeof *o)))
      rc = bf_error_set(BF_ENOMEM, "out of memory compacting %s", t->path);
    for (size_t i = 0; o && i < n; i++) {
      memcpy(&o[i].id, all + i * rs, sizeof o[i].id);
      o[i].at = i;
    }
    if (o) {
      qsort(o, n, sizeof *o, orow_cmp);
      char *out = malloc(n * rs);
      if (!out)
        rc = bf_error_set(BF_ENOMEM, "out of memory compacting %s", t->path);
      m = 0;
      for (size_t i = 0; out && i < n; i++)
        if (i + 1 == n || o[i + 1].id != o[i].id)
          memcpy(out + rs * m++, all + rs * o[i].at, rs);
      free(all);
      all = out;
    }
  }
  *dropped += (int64_t)(n - m);
  if (!rc)
    rc = tbl_write_new(dst, t, t->path, all, m);
  if (!rc && keyed(k))
    rc = keys_write(dst, k, all, m);
  free(o);
  free(all);
  return rc;
}

typedef struct x3p_copy {
  hid_t src, dst;
  int rc;
} x3p_copy;

static herr_t copy_one_x3p(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
  (void)g;
  (void)info;
  x3p_copy *c = op;
  char p[128];
  snprintf(p, sizeof p, "/scans_x3p/%s", name);
  if (H5Ocopy(c->src, p, c->dst, p, H5P_DEFAULT, H5P_DEFAULT) < 0) {
    c->rc = bf_error_set(BF_EIO, "cannot copy %s (disk full or damaged?)", p);
    return -1;
  }
  return 0;
}

/* HDF5's Fletcher-32 (H5Z_FILTER_FLETCHER32: big-endian 16-bit words, the odd byte as the high
 * byte of a last word), so a chunk copied without its filters is still checked as a read would. */
/* Fletcher-32 as HDF5 computes it (16-bit big-endian words, sums folded every 360 words), with
 * each 360-word block summed in closed form: after a block of t words w_0..w_t-1,
 * s1 += sum w_i and s2 += t * s1 + sum (t - i) w_i, the same values the word-by-word loop
 * reaches (it never overflows 32 bits inside a block), so the same checksum; SSE2 sums 8 words
 * at a time. */
static uint32_t fletcher32(const uint8_t *d, size_t n)
{
  uint32_t s1 = 0, s2 = 0;
  size_t w = n / 2;
  while (w) {
    size_t t = w > 360 ? 360 : w, i = 0;
    uint64_t a = 0, b = 0; /* sum w_i and sum (t - i) w_i over the block */
    w -= t;
#ifdef __SSE2__
    size_t G = t / 8;
    if (G) { /* lanes j: A = sum_g w_8g+j, B = sum_g (G-1-g) w_8g+j, low and high 4 words */
      __m128i z = _mm_setzero_si128(), Al = z, Ah = z, Bl = z, Bh = z;
      for (size_t g = 0; g < G; g++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(d + 16 * g));
        v = _mm_or_si128(_mm_slli_epi16(v, 8), _mm_srli_epi16(v, 8));
        Bl = _mm_add_epi32(Bl, Al);
        Bh = _mm_add_epi32(Bh, Ah);
        Al = _mm_add_epi32(Al, _mm_unpacklo_epi16(v, z));
        Ah = _mm_add_epi32(Ah, _mm_unpackhi_epi16(v, z));
      }
      uint32_t al[4], ah[4], bl[4], bh[4];
      _mm_storeu_si128((__m128i *)(void *)al, Al);
      _mm_storeu_si128((__m128i *)(void *)ah, Ah);
      _mm_storeu_si128((__m128i *)(void *)bl, Bl);
      _mm_storeu_si128((__m128i *)(void *)bh, Bh);
      for (int j = 0; j < 4; j++) { /* word 8g + j weighs t - j - 8g: sum_g g w = (G-1) A - B */
        a += (uint64_t)al[j] + ah[j];
        b += (t - j) * (uint64_t)al[j] + (t - j - 4) * (uint64_t)ah[j] -
             8 * ((G - 1) * (uint64_t)al[j] - bl[j]) - 8 * ((G - 1) * (uint64_t)ah[j] - bh[j]);
      }
      i = 8 * G;
    }
#endif
    for (; i < t; i++) {
      uint32_t x = (uint32_t)d[2 * i] << 8 | d[2 * i + 1];
      a += x;
      b += (t - i) * (uint64_t)x;
    }
    d += 2 * t;
    s2 = (uint32_t)(s2 + t * (uint64_t)s1 + b);
    s1 = (uint32_t)(s1 + a);
    s1 = (s1 & 0xffff) + (s1 >> 16);
    s2 = (s2 & 0xffff) + (s2 >> 16);
  }
  if (n % 2) {
    s1 += (uint32_t)*d << 8;
    s2 += s1;
    s1 = (s1 & 0xffff) + (s1 >> 16);
    s2 = (s2 & 0xffff) + (s2 >> 16);
  }
  s1 = (s1 & 0xffff) + (s1 >> 16);
  s2 = (s2 & 0xffff) + (s2 >> 16);
  return s2 << 16 | s1;
}

/* 1 when a raw (filtered) chunk ends with the Fletcher-32 of the bytes before it (stored
 * little-endian; HDF5 also accepts the byte-swapped sum old versions wrote). */
static int chunk_sum_ok(const uint8_t *c, size_t n)
{
  if (n < 4)
    return 0;
  uint32_t f = fletcher32(c, n - 4), s = (uint32_t)c[n - 4] | (uint32_t)c[n - 3] << 8 |
                                         (uint32_t)c[n - 2] << 16 | (uint32_t)c[n - 1] << 24;
  uint32_t r = (f & 0xff) << 8 | (f >> 8 & 0xff) | (f >> 16 & 0xff) << 24 | (f >> 24) << 16;
  return s == f || s == r;
}

static hsize_t ds_chunk(hid_t ds)
{
  hid_t p = H5Dget_create_plist(ds);
  hsize_t c = 0;
  if (p >= 0 && H5Pget_layout(p) == H5D_CHUNKED && H5Pget_chunk(p, 1, &c) != 1)
    c = 0;
  if (p >= 0)
    H5Pclose(p);
  return c;
}

/* Appends src's values to dst chunk by chunk as stored (no inflate, no deflate: compaction's cost
 * is then the disk, not zlib), starting at the next chunk boundary of dst; *base = where they
 * start. Both must be chunked by C with the same filters. Each chunk's checksum is verified. */
static int copy_chunks(hid_t src, hid_t dst, hsize_t C, int64_t *base, int64_t *rd, const char *what)
{
  int64_t len = ds_len(src), at = ds_len(dst);
  hsize_t b = ((hsize_t)at + C - 1) / C * C, nd = b + (hsize_t)len;
  size_t cap = 0;
  uint8_t *buf = NULL;
  int rc = 0;
  *base = (int64_t)b;
  if (H5Dset_extent(dst, &nd) < 0)
    return bf_error_set(BF_EIO, "cannot extend %s (disk full?)", what);
  for (hsize_t off = 0; off < (hsize_t)len && !rc; off += C) {
    hsize_t sz = 0, to = b + off;
    uint32_t mask = 0;
    if (H5Dget_chunk_storage_size(src, &off, &sz) < 0 || !sz) {
      rc = bf_error_set(BF_ECHECKSUM, "%s: chunk at %llu missing", what, (unsigned long long)off);
      break;
    }
    if (sz > cap) {
      uint8_t *nb = realloc(buf, sz);
      if (!nb) {
        rc = bf_error_set(BF_ENOMEM, "out of memory compacting %s", what);
        break;
      }
      buf = nb;
      cap = sz;
    }
    if (H5Dread_chunk(src, H5P_DEFAULT, &off, &mask, buf) < 0 || !chunk_sum_ok(buf, sz))
      rc = bf_error_set(BF_ECHECKSUM, "%s unreadable (checksum)", what);
    else if (H5Dwrite_chunk(dst, H5P_DEFAULT, mask, &to, sz, buf) < 0)
      rc = bf_error_set(BF_EIO, "cannot write merged %s (disk full?)", what);
    *rd += (int64_t)sz;
  }
  free(buf);
  return rc;
}

static int merge_kind(bf_store *st, const char *kind, int a, int b, hid_t dst, int64_t *rd, int64_t *wr)
{
  int rc = 0, compress = -1;
  hid_t g = -1, ds = -1;
  bf_feat_row *all = NULL;
  size_t n = 0, cap = 0;
  const int64_t blk = 1 << 22;
  float *buf = malloc(blk * sizeof *buf);
  char ip[96], dp[96], gp[96];
  snprintf(gp, sizeof gp, "/features/%.47s", kind);
  snprintf(ip, sizeof ip, "/features/%.47s/index", kind);
  snprintf(dp, sizeof dp, "/features/%.47s/data", kind);
  if (!buf)
    return bf_error_set(BF_ENOMEM, "out of memory compacting features");
  int64_t sum = 0; /* chunks no larger than the data (a plain chunk is written whole) */
  for (int i = a; i < b; i++)
    if (has_kind(st->segs[i].f, kind)) {
      hid_t sds = H5Dopen2(st->segs[i].f, dp, H5P_DEFAULT);
      sum += sds >= 0 ? ds_len(sds) : 0;
      if (sds >= 0)
        H5Dclose(sds);
    }
  hsize_t chunk = sum < 1024 ? 1024 : sum > 65536 ? 65536 : (hsize_t)sum;
  for (int i = a; i < b && !rc; i++) {
    hid_t f = st->segs[i].f;
    if (!has_kind(f, kind))
      continue;
    hid_t sds = H5Dopen2(f, dp, H5P_DEFAULT);
    if (sds < 0) {
      rc = bf_error_set(BF_ECHECKSUM, "%s: segment %s: %s cannot be opened", st->path, st->segs[i].name, dp);
      break;
    }
    if (compress < 0) {
      compress = dcpl_deflated(sds);
      hsize_t d0 = 0, dmax = H5S_UNLIMITED;
      hid_t sp = H5Screate_simple(1, &d0, &dmax), p = chunked_dcpl(chunk, compress);
      g = H5Gcreate2(dst, gp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      ds = g >= 0 ? H5Dcreate2(g, "data", H5T_IEEE_F32LE, sp, H5P_DEFAULT, p, H5P_DEFAULT) : -1;
      H5Pclose(p);
      H5Sclose(sp);
      if (ds < 0) {
        H5Dclose(sds);
        rc = bf_error_set(BF_EIO, "%s: cannot create %s in the merged segment", st->path, dp);
        break;
      }
      attr_str(g, "kind", kind);
      attr_str(ds, "units", "micrometres (heights / signature values); NaN = missing");
      attr_str(ds, "description", "features of this kind, concatenated; see index offset/count");
    }
    int64_t base = ds_len(ds), len = ds_len(sds);
    if (ds_chunk(sds) == chunk && dcpl_deflated(sds) == compress) { /* as stored */
      char what[4400];
      snprintf(what, sizeof what, "%s: segment %s: %s", st->path, st->segs[i].name, dp);
      rc = copy_chunks(sds, ds, chunk, &base, rd, what);
      *wr += len * 4;
      len = 0;
    }
    for (int64_t off = 0; off < len && !rc; off += blk) {
      int64_t c = len - off < blk ? len - off : blk, at;
      hid_t fs = H5Dget_space(sds);
      hsize_t s0 = (hsize_t)off, cnt = (hsize_t)c;
      H5Sselect_hyperslab(fs, H5S_SELECT_SET, &s0, NULL, &cnt, NULL);
      hid_t ms = H5Screate_simple(1, &cnt, NULL);
      if (H5Dread(sds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, buf) < 0)
        rc = bf_error_set(BF_ECHECKSUM, "%s: segment %s: %s unreadable (checksum)", st->path,
                          st->segs[i].name, dp);
      else if (ds_append_floats(ds, buf, c, &at))
        rc = bf_error_set(BF_EIO, "%s: cannot write merged %s (disk full?)", st->path, dp);
      H5Sclose(ms);
      H5Sclose(fs);
      *rd += c * 4;
      *wr += c * 4;
    }
    H5Dclose(sds);
    bf_feat_row *r = NULL;
    size_t k = 0;
    if (!rc && !(rc = tbl_read_at(f, &T_FEAT, ip, 0, (void **)&r, &k)) &&
        !(rc = grow((void **)&all, &cap, n + k + 1, sizeof *all)))
      for (size_t j = 0; j < k; j++) {
        all[n] = r[j];
        all[n++].offset += base;
      }
    free(r);
  }
  if (!rc && ds >= 0)
    rc = tbl_write_new(dst, &T_FEAT, ip, all, n);
  if (ds >= 0 && H5Dclose(ds) < 0 && !rc)
    rc = bf_error_set(BF_EIO, "%s: cannot write merged %s (disk full?)", st->path, dp);
  if (g >= 0)
    H5Gclose(g);
  free(all);
  free(buf);
  return rc;
}

/* Writes segments [a, b) merged into one new segment; *out describes it. */
static int merge_run(bf_store *st, int a, int b, seg *out, bf_store_compact_result *res)
{
  int rc = 0;
  memset(out, 0, sizeof *out);
  out->f = -1;
  out->seq = st->next_seq++;
  snprintf(out->name, sizeof out->name, "seg-%08lld.h5", (long long)out->seq);
  bf_store_now(out->created);
  hid_t f = seg_create(st, out->name, out->seq);
  if (f < 0)
    return BF_EIO;
  int64_t rd = 0, wr = 0, dropped = 0;
  for (int k = 0; k < NTB && !rc; k++)
    rc = merge_table(st, TBL[k], k, a, b, f, 1, &rd, &dropped);
  int64_t d0 = 0;
  if (!rc)
    rc = merge_table(st, &T_AUDIT, -1, a, b, f, 0, &rd, &d0);
  for (int i = a; i < b; i++)
    out->naudit += st->segs[i].naudit;
  for (int i = a; i < b && !rc; i++) {
    x3p_copy c = {st->segs[i].f, f, 0};
    hid_t g = H5Gopen2(st->segs[i].f, "/scans_x3p", H5P_DEFAULT);
    if (g >= 0) {
      H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, copy_one_x3p, &c);
      H5Gclose(g);
    }
    rc = c.rc;
  }
  char names[MAXKINDS][48];
  knames kn = {names, 0, MAXKINDS};
  for (int i = a; i < b; i++)
    if (H5Lexists(st->segs[i].f, "/features", H5P_DEFAULT) > 0) {
      hid_t fg = H5Gopen2(st->segs[i].f, "/features", H5P_DEFAULT);
      if (fg >= 0) {
        H5Literate(fg, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, kind_iter, &kn);
        H5Gclose(fg);
      }
    }
  for (int k = 0; k < kn.n && !rc; k++)
    rc = merge_kind(st, names[k], a, b, f, &rd, &wr);
  char p[4400];
  seg_path(st, p, sizeof p, out->name);
  if (H5Fclose(f) < 0 && !rc) {
    hdf5_poisoned = 1;
    rc = bf_error_set(BF_EIO, "%s: cannot finish the merged segment (disk full?)", p);
  }
  if (!rc)
    rc = fsync_file(p, &out->bytes);
  if (rc) {
    unlink(p);
    return rc;
  }
  for (int i = a; i < b; i++)
    res->bytes_read += st->segs[i].bytes;
  res->bytes_written += out->bytes;
  res->rows_dropped += dropped;
  return 0;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int bf_store_compact(const char *path, const bf_store_compact_opts *opts, bf_store_compact_result *res)
{
  bf_store_compact_opts dflt = BF_STORE_COMPACT_OPTS_INIT;
  bf_store_compact_result dummy;
  if (!opts)
    opts = &dflt;
  if (!res)
    res = &dummy;
  memset(res, 0, sizeof *res);
  double t0 = now_s();
  bf_store *st = NULL;
  seg *nw = NULL;
  mrow *m = NULL;
  int rc = bf_store_open(&st, path, BF_STORE_WRITE, opts->user), nn = 0;
  if (rc)
    return rc;
  res->segments_before = st->nseg;
  int64_t target = opts->all ? INT64_MAX : opts->target_bytes;
  if (!(nw = calloc((size_t)st->nseg + 1, sizeof *nw))) {
    rc = bf_error_set(BF_ENOMEM, "out of memory compacting %s", path);
    goto done;
  }
  uint8_t *gone = calloc((size_t)st->nseg + 1, 1);
  if (!gone) {
    rc = bf_error_set(BF_ENOMEM, "out of memory compacting %s", path);
    goto done;
  }
  for (int i = 0; i < st->nseg && !rc;) {
    int j = i;
    while (j < st->nseg && st->segs[j].bytes < target)
      j++;
    if (j - i >= 2) {
      if (opts->progress)
        opts->progress(opts->ctx, i, j, st->nseg);
      if (!(rc = merge_run(st, i, j, &nw[nn], res))) {
        nn++;
        memset(gone + i, 1, (size_t)(j - i));
      }
      i = j;
    } else {
      nw[nn] = st->segs[i];
      nw[nn++].f = -1;
      i = j > i ? j : i + 1;
    }
  }
  if (rc || nn == st->nseg) { /* failed (merged files are stale: removed below) or nothing to do */
    free(gone);
    goto done;
  }
  if (getenv("BF_STORE_CRASH_BEFORE_RENAME"))
    abort();
  if (!(m = calloc((size_t)nn + 1, sizeof *m)))
    rc = bf_error_set(BF_ENOMEM, "out of memory compacting %s", path);
  for (int i = 0; m && i < nn; i++) {
    m[i].seq = nw[i].seq;
    m[i].bytes = nw[i].bytes;
    m[i].naudit = nw[i].naudit;
    scopy(m[i].name, sizeof m[i].name, nw[i].name);
    scopy(m[i].created, sizeof m[i].created, nw[i].created);
  }
  int64_t gen0 = st->gen;
  char dp[4400];
  seg_path(st, dp, sizeof dp, "x");
  if (!rc && (rc = fsync_dir(dp)) == 0) /* the merged segments' names are durable first */
    rc = manifest_write(st, m, (size_t)nn);
  if (st->gen != gen0) {
    /* committed: the merged segments are no longer listed. Readers that hold them keep
     * reading (open files survive unlink); a reader opening now reads the new manifest. */
    for (int i = 0; i < st->nseg; i++)
      if (gone[i]) {
        char p[4400];
        seg_path(st, p, sizeof p, st->segs[i].name);
        unlink(p);
      }
    res->segments_after = nn;
    close_segs(st);
    drop_caches(st);
    int r2 = open_snapshot(st);
    if (!r2 && !(r2 = bf_store_begin(st)) &&
        !(r2 = bf_store_audit(st, "compact", "merged %d segment(s) into %d, dropped %lld superseded row(s)",
                              res->segments_before, nn, (long long)res->rows_dropped)))
      r2 = bf_store_commit(st);
    if (!rc)
      rc = r2;
    res->segments_after = st->nseg;
  }
  free(gone);
done:
  if (rc && st) /* merged segments not listed: remove them now (the next writer would too) */
    clean_stale(st);
  bf_store_close(st);
  free(nw);
  free(m);
  res->seconds = now_s() - t0;
  return rc;
}

/* ---- upgrade from schema 1 (one file) ---- */

static int copy_file(const char *src, const char *dst)
{
  int rc = 0, in = open(src, O_RDONLY | O_CLOEXEC), out = -1;
  if (in < 0)
    return bf_error_set(BF_EIO, "%s: cannot read (%s)", src, strerror(errno));
  out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (out < 0) {
    rc = bf_error_set(BF_EIO, "%s: cannot create (%s)", dst, strerror(errno));
    goto done;
  }
  struct stat sb;
  fstat(in, &sb);
  off_t left = sb.st_size;
  while (left > 0) {
    ssize_t w = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
    if (w < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL)) {
      char buf[1 << 16]; /* fallback for file systems without copy_file_range */
      ssize_t r = read(in, buf, sizeof buf);
      w = r > 0 ? write(out, buf, (size_t)r) : r;
      if (r > 0 && w != r)
        w = -1;
    }
    if (w <= 0) {
      rc = bf_error_set(BF_EIO, "%s: copy failed (%s): disk full?", dst, w ? strerror(errno) : "short");
      goto done;
    }
    left -= w;
  }
done:
  if (out >= 0)
    close(out);
  close(in);
  if (rc)
    unlink(dst);
  return rc;
}

/* The schema 1 file becomes segment 1 byte for byte (originals untouched, so their SHA-256
 * cannot change); only its /hits table is rewritten with the new log10_lr column (NaN). */
static int upgrade_segment(bf_store *st, const char *sp, int64_t *naudit)
{
  int rc = 0;
  bf_hit *h = NULL;
  size_t nh = 0;
  hid_t f = H5Fopen(sp, H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0)
    return bf_error_set(BF_EIO, "%s: cannot open the copy for writing", sp);
  if ((rc = tbl_read_at(f, &T_HITS_V1, "/hits", 0, (void **)&h, &nh)))
    goto done;
  for (size_t i = 0; i < nh; i++)
    h[i].log10_lr = NAN;
  if (H5Ldelete(f, "/hits", H5P_DEFAULT) < 0) {
    rc = bf_error_set(BF_EIO, "%s: cannot replace /hits", sp);
    goto done;
  }
  if ((rc = tbl_write_new(f, &T_HITS, "/hits", h, nh)))
    goto done;
  for (int k = 0; k < NTB && !rc; k++) /* the keys every segment has now */
    if (keyed(k)) {
      char *rows = NULL;
      size_t n = 0;
      char kp[64];
      keys_path(k, kp, sizeof kp);
      if (H5Lexists(f, "/keys", H5P_DEFAULT) > 0 && H5Lexists(f, kp, H5P_DEFAULT) > 0)
        H5Ldelete(f, kp, H5P_DEFAULT); /* made again from the rows */
      if (!(rc = tbl_read_at(f, TBL[k], TBL[k]->path, 0, (void **)&rows, &n)))
        rc = keys_write(f, k, rows, n);
      free(rows);
    }
  if (rc)
    goto done;
  hid_t ds = H5Dopen2(f, "/audit", H5P_DEFAULT);
  *naudit = ds >= 0 ? ds_len(ds) : 0;
  if (ds >= 0)
    H5Dclose(ds);
  if (ds < 0)
    rc = bf_error_set(BF_ESCHEMA, "%s: table /audit is missing", st->path);
  H5Adelete(f, "schema_version"); /* a segment, no longer a store */
  attr_i64(f, "bfm_segment", 1);
  attr_str(f, "upgraded_from", "schema 1");
done:
  free(h);
  if (H5Fclose(f) < 0 && !rc) {
    hdf5_poisoned = 1;
    rc = bf_error_set(BF_EIO, "%s: cannot finish the upgraded segment (disk full?)", sp);
  }
  return rc;
}

int bf_store_upgrade(const char *path, const char *user)
{
  int rc = 0, staged = 0;
  quiet_hdf5();
  bf_store *st = calloc(1, sizeof *st);
  if (!st)
    return bf_error_set(BF_ENOMEM, "out of memory upgrading %s", path);
  st->lockfd = -1;
  st->txf = -1;
  st->mode = BF_STORE_WRITE;
  set_paths(st, path);
  for (int k = 0; k < NTB; k++)
    st->tb[k].t = TBL[k];
  default_user(st->user, sizeof st->user, user);
  char sp[4400];
  if (access(path, F_OK)) {
    rc = bf_error_set(BF_ENOTFOUND, "%s: no such store", path);
    goto done;
  }
  if ((rc = take_lock(st)))
    goto done;
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  int ver = f >= 0 ? file_schema(f) : -1;
  if (f >= 0)
    H5Fclose(f);
  if (ver == BF_STORE_SCHEMA) {
    rc = bf_error_set(BF_EEXIST, "%s: already schema %d, nothing to upgrade", path, BF_STORE_SCHEMA);
    goto done;
  }
  if (ver != 1) {
    rc = bf_error_set(BF_EFORMAT, "%s: not a bfm store of schema 1", path);
    goto done;
  }
  if ((rc = mkdir_clean(st)))
    goto done;
  staged = 1;
  st->segs = calloc(2, sizeof *st->segs);
  if (!st->segs) {
    rc = bf_error_set(BF_ENOMEM, "out of memory upgrading %s", path);
    goto done;
  }
  st->cseg = 2;
  seg *s = &st->segs[0];
  s->seq = 1;
  s->f = -1;
  scopy(s->name, sizeof s->name, "seg-00000001.h5");
  bf_store_now(s->created);
  seg_path(st, sp, sizeof sp, s->name);
  if ((rc = copy_file(path, sp)) || (rc = upgrade_segment(st, sp, &s->naudit)) ||
      (rc = fsync_file(sp, &s->bytes)) || (rc = fsync_dir(sp)))
    goto done;
  st->nseg = 1;
  st->next_seq = 2;
  mrow m = {0};
  m.seq = 1;
  m.bytes = s->bytes;
  m.naudit = s->naudit;
  scopy(m.name, sizeof m.name, s->name);
  scopy(m.created, sizeof m.created, s->created);
  rc = manifest_write(st, &m, 1);
  if (st->gen)
    staged = 0; /* renamed: committed */
  if (rc)
    goto done;
  /* now a schema 2 store: reopen our snapshot and audit the upgrade in its own segment */
  close_segs(st);
  if ((rc = open_snapshot(st)) || (rc = ensure(st, L_IT)) || (rc = bf_store_begin(st)) ||
      (rc = bf_store_audit(st, "upgrade", "schema 1 -> %d: %zu item(s) kept in segment 1",
                           BF_STORE_SCHEMA, NIT(st))) ||
      (rc = bf_store_commit(st)))
    goto done;
done:
  if (staged) {
    st->nseg = 0; /* not committed: the copy is stale */
    clean_stale(st);
  }
  bf_store_close(st);
  return rc;
}

void bf_store_features_free(bf_feature **f, int n)
{
  if (!f)
    return;
  for (int i = 0; i < n; i++)
    bf_feature_free(f[i]);
  free(f);
}
