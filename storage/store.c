/* The HDF5 store: tables, transactions (copy, change, fsync, rename), lookups, verify.
 * See bf_store.h for the layout and why commits are copy-on-write renames. */
#define _GNU_SOURCE
#include "bf_store.h"
#include "bf_error.h"
#include "bf_hash.h"

#include <hdf5.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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
  FSTR(bf_hit, time), FSTR(bf_hit, examiner), FSTR(bf_hit, when), FSTR(bf_hit, note)};
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
  "comparable items: a cartridge case or a bullet (its lands)"};
static const tbl T_SCANS = {"/scans", sizeof(bf_scan_rec), scan_f, NF(scan_f),
  "dx, dy: micrometres; nbytes: bytes; sha256: hex of the original file",
  "submitted scans; original bytes in /scans_x3p/<id>"};
static const tbl T_FEAT = {"index", sizeof(bf_feat_row), feat_f, NF(feat_f),
  "dx, dy: micrometres; offset, count: elements of data (float32 micrometres)",
  "feature index: one row per scan feature, pointing into data"};
static const tbl T_HITS = {"/hits", sizeof(bf_hit), hit_f, NF(hit_f),
  "status: 0 candidate, 1 confirmed, 2 rejected; times ISO 8601 UTC",
  "comparison results; (run, query, candidate) unique"};
static const tbl T_AUDIT = {"/audit", sizeof(bf_audit_rec), audit_f, NF(audit_f),
  "time: ISO 8601 UTC", "append-only log of every write"};

#define MAXKINDS 16
typedef struct kindcache {
  char name[48];
  bf_feat_row *rows;
  size_t n, cap;
  int loaded, sorted; /* sorted: rows by non-decreasing item id */
} kindcache;

struct bf_store {
  char path[4096], tmp[4200], lockpath[4200];
  int mode, lockfd, intx;
  hid_t f;
  char user[64];
  bf_firearm *fa;
  size_t nfa, cfa;
  bf_evidence *ev;
  size_t nev, cev;
  bf_item *it;
  size_t nit, cit;
  bf_scan_rec *sc;
  size_t nsc, csc;
  bf_hit *hi;
  size_t nhi, chi;
  int64_t *hset; /* open addressing over hi (index+1, 0 empty) */
  size_t hcap;
  int64_t *sset; /* the same over sc, keyed by SHA-256: duplicate checks in O(1) */
  size_t scap_set;
  kindcache kinds[MAXKINDS];
  int nkinds;
  int loaded; /* L_* tables read so far: only items are read at open */
};

enum { L_FA = 1, L_EV = 2, L_SC = 4, L_HI = 8, L_ALL = 15 };

/* HDF5 1.10.8 crashes in its exit-time teardown when a file's close failed (disk full): the
 * half-closed file stays registered. After such a failure we skip that teardown: our handler,
 * registered after HDF5's, runs first and ends the process (the data are safe: nothing was
 * committed, the transaction copy is already removed). */
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
  hid_t a = H5Acreate2(obj, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) {
    H5Awrite(a, ty, val);
    H5Aclose(a);
  }
  H5Sclose(sp);
  H5Tclose(ty);
}

static hid_t chunked_dcpl(hsize_t chunk)
{
  hid_t p = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(p, 1, &chunk);
  H5Pset_shuffle(p);
  H5Pset_deflate(p, 4);
  H5Pset_fletcher32(p);
  return p;
}

static int tbl_create(hid_t loc, const tbl *t)
{
  int rc = 0;
  hsize_t d0 = 0, dmax = H5S_UNLIMITED;
  hsize_t chunk = 65536 / t->rowsize + 1;
  /* the file type is the memory type (padding included, squeezed out by shuffle+deflate): an
   * identical type needs no conversion, and a converting H5Dwrite callocs 1 MB buffers per call */
  hid_t mt = tbl_memtype(t), ft = H5Tcopy(mt);
  hid_t sp = H5Screate_simple(1, &d0, &dmax), p = chunked_dcpl(chunk);
  hid_t ds = H5Dcreate2(loc, t->path, ft, sp, H5P_DEFAULT, p, H5P_DEFAULT);
  if (ds < 0)
    rc = bf_error_set(BF_EIO, "cannot create table %s", t->path);
  else {
    attr_str(ds, "units", t->units);
    attr_str(ds, "description", t->about);
    H5Dclose(ds);
  }
  H5Pclose(p);
  H5Sclose(sp);
  H5Tclose(ft);
  H5Tclose(mt);
  return rc;
}

/* Datasets written in a transaction stay open until it ends, so HDF5's chunk cache absorbs
 * row-by-row appends (closing after each append recompressed a whole chunk per row). One
 * writer per process uses it; bf_store_* releases it before closing the file. */
#define NDCACHE 48
static struct {
  hid_t f;
  char path[128];
  hid_t ds;
} dcache[NDCACHE];
static int ndcache;

static hid_t ds_get(hid_t f, const char *path, int *cached)
{
  for (int i = 0; i < ndcache; i++)
    if (dcache[i].f == f && !strcmp(dcache[i].path, path)) {
      *cached = 1;
      return dcache[i].ds;
    }
  hid_t ds = H5Dopen2(f, path, H5P_DEFAULT);
  *cached = 0;
  if (ds >= 0 && ndcache < NDCACHE && strlen(path) < sizeof dcache[0].path) {
    dcache[ndcache].f = f;
    snprintf(dcache[ndcache].path, sizeof dcache[0].path, "%s", path);
    dcache[ndcache++].ds = ds;
    *cached = 1;
  }
  return ds;
}

/* Closes the cached datasets of file f; returns -1 if a close (a chunk flush) failed. */
static int ds_release(hid_t f)
{
  int bad = 0;
  for (int i = 0; i < ndcache;)
    if (dcache[i].f == f) {
      bad |= H5Dclose(dcache[i].ds) < 0;
      dcache[i] = dcache[--ndcache];
    } else
      i++;
  return bad ? -1 : 0;
}

static int tbl_append(hid_t loc, const tbl *t, const void *rows, size_t n)
{
  int cached = 0;
  int rc = BF_EIO;
  hid_t ds = -1, fs = -1, ms = -1, mt = -1;
  if (!n)
    return 0;
  if ((ds = ds_get(loc, t->path, &cached)) < 0)
    goto done;
  fs = H5Dget_space(ds);
  hsize_t cur;
  H5Sget_simple_extent_dims(fs, &cur, NULL);
  H5Sclose(fs);
  hsize_t nd = cur + n, cnt = n;
  if (H5Dset_extent(ds, &nd) < 0)
    goto done;
  fs = H5Dget_space(ds);
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, &cur, NULL, &cnt, NULL);
  ms = H5Screate_simple(1, &cnt, NULL);
  mt = tbl_memtype(t);
  if (H5Dwrite(ds, mt, ms, fs, H5P_DEFAULT, rows) < 0)
    goto done;
  rc = 0;
done:
  if (mt >= 0)
    H5Tclose(mt);
  if (ms >= 0)
    H5Sclose(ms);
  if (fs >= 0)
    H5Sclose(fs);
  if (ds >= 0 && !cached)
    H5Dclose(ds);
  if (rc)
    bf_error_set(rc, "cannot append %zu row(s) to %s (disk full or store damaged?)", n, t->path);
  return rc;
}

static int tbl_write_row(hid_t loc, const tbl *t, size_t index, const void *row)
{
  int rc = BF_EIO, cached = 0;
  hid_t ds = ds_get(loc, t->path, &cached), fs = -1, ms = -1, mt = -1;
  if (ds < 0)
    goto done;
  fs = H5Dget_space(ds);
  hsize_t st = index, cnt = 1;
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &cnt, NULL);
  ms = H5Screate_simple(1, &cnt, NULL);
  mt = tbl_memtype(t);
  if (H5Dwrite(ds, mt, ms, fs, H5P_DEFAULT, row) >= 0)
    rc = 0;
done:
  if (mt >= 0)
    H5Tclose(mt);
  if (ms >= 0)
    H5Sclose(ms);
  if (fs >= 0)
    H5Sclose(fs);
  if (ds >= 0 && !cached)
    H5Dclose(ds);
  if (rc)
    bf_error_set(rc, "cannot rewrite row %zu of %s", index, t->path);
  return rc;
}

/* Reads a whole table into *rows (malloc'd, capacity *cap). */
static int tbl_read(hid_t loc, const tbl *t, void **rows, size_t *n, size_t *cap)
{
  int rc = BF_EIO;
  hid_t ds = H5Dopen2(loc, t->path, H5P_DEFAULT), fs = -1, mt = -1;
  *n = 0;
  if (ds < 0) {
    rc = bf_error_set(BF_ESCHEMA, "table %s is missing", t->path);
    goto done;
  }
  fs = H5Dget_space(ds);
  hsize_t cur;
  H5Sget_simple_extent_dims(fs, &cur, NULL);
  if ((rc = grow(rows, cap, cur ? cur : 1, t->rowsize)))
    goto done;
  mt = tbl_memtype(t);
  if (cur && H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, *rows) < 0) {
    rc = bf_error_set(BF_ECHECKSUM, "cannot read table %s (checksum or storage error)", t->path);
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
  return rc;
}

/* ---- hit uniqueness set ---- */

static size_t hkey(const bf_hit *h, size_t cap)
{
  uint64_t k = (uint64_t)h->run * 0x9E3779B97F4A7C15ull ^ (uint64_t)h->query * 0xC2B2AE3D27D4EB4Full ^
               (uint64_t)h->candidate * 0x165667B19E3779F9ull;
  k ^= k >> 29;
  return (size_t)(k & (cap - 1));
}

static int hset_find(const bf_store *st, const bf_hit *h)
{
  if (!st->hcap)
    return -1;
  for (size_t i = hkey(h, st->hcap);; i = (i + 1) & (st->hcap - 1)) {
    int64_t v = st->hset[i];
    if (!v)
      return -1;
    const bf_hit *o = &st->hi[v - 1];
    if (o->run == h->run && o->query == h->query && o->candidate == h->candidate)
      return (int)(v - 1);
  }
}

static int hset_build(bf_store *st, size_t need)
{
  size_t cap = 1024;
  while (cap < 2 * need)
    cap *= 2;
  if (cap <= st->hcap && st->hset)
    return 0;
  int64_t *s = calloc(cap, sizeof *s);
  if (!s)
    return bf_error_set(BF_ENOMEM, "out of memory for the hit index");
  free(st->hset);
  st->hset = s;
  st->hcap = cap;
  for (size_t j = 0; j < st->nhi; j++) {
    size_t i = hkey(&st->hi[j], cap);
    while (s[i])
      i = (i + 1) & (cap - 1);
    s[i] = (int64_t)j + 1;
  }
  return 0;
}

static void hset_add(bf_store *st, size_t j)
{
  size_t i = hkey(&st->hi[j], st->hcap);
  while (st->hset[i])
    i = (i + 1) & (st->hcap - 1);
  st->hset[i] = (int64_t)j + 1;
}

/* ---- SHA-256 set over the scans ---- */

static size_t skey(const char *hex, size_t cap)
{
  uint64_t k = 1469598103934665603ull;
  for (int i = 0; i < 16 && hex[i]; i++)
    k = (k ^ (unsigned char)hex[i]) * 1099511628211ull;
  return (size_t)(k & (cap - 1));
}

static int sset_build(bf_store *st, size_t need)
{
  size_t cap = 1024;
  while (cap < 2 * need)
    cap *= 2;
  if (cap <= st->scap_set && st->sset)
    return 0;
  int64_t *s = calloc(cap, sizeof *s);
  if (!s)
    return bf_error_set(BF_ENOMEM, "out of memory for the SHA-256 index");
  free(st->sset);
  st->sset = s;
  st->scap_set = cap;
  for (size_t j = 0; j < st->nsc; j++) {
    size_t i = skey(st->sc[j].sha256, cap);
    while (s[i])
      i = (i + 1) & (cap - 1);
    s[i] = (int64_t)j + 1;
  }
  return 0;
}

/* ---- open / load / close ---- */

static void drop_caches(bf_store *st)
{
  for (int k = 0; k < st->nkinds; k++)
    free(st->kinds[k].rows);
  memset(st->kinds, 0, sizeof st->kinds);
  st->nkinds = 0;
  free(st->hset);
  st->hset = NULL;
  st->hcap = 0;
  free(st->sset);
  st->sset = NULL;
  st->scap_set = 0;
}

/* Items are read at open; the bigger tables (firearm and evidence records, scans, hits) on
 * first use, so a search opening a 100,000-item store reads only what it needs. The lookup
 * functions take a const store: loading a table is caching, not a visible change. */
static int ensure(const bf_store *cst, int what)
{
  bf_store *st = (bf_store *)cst;
  int rc = 0;
  if ((what & L_FA) && !(st->loaded & L_FA) &&
      !(rc = tbl_read(st->f, &T_FIREARMS, (void **)&st->fa, &st->nfa, &st->cfa)))
    st->loaded |= L_FA;
  if (!rc && (what & L_EV) && !(st->loaded & L_EV) &&
      !(rc = tbl_read(st->f, &T_EVIDENCE, (void **)&st->ev, &st->nev, &st->cev)))
    st->loaded |= L_EV;
  if (!rc && (what & L_SC) && !(st->loaded & L_SC) &&
      !(rc = tbl_read(st->f, &T_SCANS, (void **)&st->sc, &st->nsc, &st->csc)) &&
      !(rc = sset_build(st, st->nsc)))
    st->loaded |= L_SC;
  if (!rc && (what & L_HI) && !(st->loaded & L_HI) &&
      !(rc = tbl_read(st->f, &T_HITS, (void **)&st->hi, &st->nhi, &st->chi)) &&
      !(rc = hset_build(st, st->nhi)))
    st->loaded |= L_HI;
  if (rc)
    bf_error_prefix(rc, "%s: ", st->path);
  return rc;
}

static int load_tables(bf_store *st)
{
  int rc;
  drop_caches(st);
  st->loaded = 0;
  st->nfa = st->nev = st->nsc = st->nhi = 0;
  if ((rc = tbl_read(st->f, &T_ITEMS, (void **)&st->it, &st->nit, &st->cit)))
    return bf_error_prefix(rc, "%s: ", st->path);
  return 0;
}

static int open_main(bf_store *st)
{
  quiet_hdf5();
  st->f = H5Fopen(st->path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (st->f < 0) {
    if (access(st->path, F_OK))
      return bf_error_set(BF_ENOTFOUND, "%s: no such store", st->path);
    return bf_error_set(BF_EFORMAT, "%s: not an HDF5 store (or unreadable)", st->path);
  }
  int ver = -1;
  if (H5Aexists(st->f, "schema_version") > 0) {
    hid_t a = H5Aopen(st->f, "schema_version", H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_INT, &ver);
    H5Aclose(a);
  }
  if (ver != BF_STORE_SCHEMA)
    return bf_error_set(ver < 0 ? BF_EFORMAT : BF_ESCHEMA,
                        "%s: %s (this bfm reads schema %d)", st->path,
                        ver < 0 ? "HDF5 file without a bfm schema_version: not a bfm store"
                                : "store of another schema version",
                        BF_STORE_SCHEMA);
  return 0;
}

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

static int take_lock(bf_store *st)
{
  st->lockfd = open(st->lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (st->lockfd < 0)
    return bf_error_set(BF_EIO, "%s: cannot create the writer lock (%s): read-only folder?",
                        st->lockpath, strerror(errno));
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
  int len = snprintf(who, sizeof who, "pid %ld", (long)getpid());
  if (ftruncate(st->lockfd, 0) == 0 && pwrite(st->lockfd, who, len, 0) < 0) {
    /* the pid is only informative */
  }
  return 0;
}

static void set_paths(bf_store *st, const char *path)
{
  scopy(st->path, sizeof st->path, path);
  snprintf(st->tmp, sizeof st->tmp, "%s.tmp", st->path);
  snprintf(st->lockpath, sizeof st->lockpath, "%s.lock", st->path);
}

static int fsync_dir(const char *path)
{
  char buf[4096];
  scopy(buf, sizeof buf, path);
  int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return bf_error_set(BF_EIO, "%s: cannot open its folder to sync", path);
  int r = fsync(fd);
  close(fd);
  return r ? bf_error_set(BF_EIO, "%s: folder sync failed (%s)", path, strerror(errno)) : 0;
}

static int fsync_file(const char *path)
{
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return bf_error_set(BF_EIO, "%s: cannot reopen to sync (%s)", path, strerror(errno));
  int r = fsync(fd);
  close(fd);
  return r ? bf_error_set(BF_EIO, "%s: sync failed (%s): disk full?", path, strerror(errno)) : 0;
}

int bf_store_create(const char *path, const char *user)
{
  int rc = 0;
  hid_t f = -1, fcpl = -1, fapl = -1, g = -1;
  bf_store tmp = {0};
  tmp.lockfd = -1;
  quiet_hdf5();
  set_paths(&tmp, path);
  if (!access(path, F_OK))
    return bf_error_set(BF_EEXIST, "%s: already exists (a store is created once)", path);
  if ((rc = take_lock(&tmp)))
    return rc;
  unlink(tmp.tmp);
  fcpl = H5Pcreate(H5P_FILE_CREATE);
  /* 1.8 object format at least: groups index links in a v2 B-tree + fractal heap, so
   * /scans_x3p with 100,000 members still inserts in O(log n) (the 1.6 symbol table does not) */
  fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  f = H5Fcreate(tmp.tmp, H5F_ACC_EXCL, fcpl, fapl);
  if (f < 0) {
    rc = bf_error_set(BF_EIO, "%s: cannot create the store file (%s)", path, strerror(errno));
    goto done;
  }
  int ver = BF_STORE_SCHEMA;
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, "schema_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT, &ver);
  H5Aclose(a);
  H5Sclose(sp);
  char now[32], u[64];
  bf_store_now(now);
  default_user(u, sizeof u, user);
  attr_str(f, "software", "bfm " BF_VERSION);
  attr_str(f, "created", now);
  attr_str(f, "created_by", u);
  attr_str(f, "description",
           "bfm ballistic fingerprint store: tables firearms, evidence, items, scans, hits, audit; "
           "original X3P files in scans_x3p/<scan id>; features/<kind>/index + data (float32 um)");
  const tbl *ts[] = {&T_FIREARMS, &T_EVIDENCE, &T_ITEMS, &T_SCANS, &T_HITS, &T_AUDIT};
  for (int i = 0; i < 6 && !rc; i++)
    rc = tbl_create(f, ts[i]);
  if (rc)
    goto done;
  if ((g = H5Gcreate2(f, "/scans_x3p", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
      H5Gclose(g) < 0 || (g = H5Gcreate2(f, "/features", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
    rc = bf_error_set(BF_EIO, "%s: cannot create groups", path);
    goto done;
  }
  attr_str(g, "description", "one group per feature kind: index (table) + data (float32, um)");
  H5Gclose(g);
  g = -1;
  bf_audit_rec ar = {0};
  ar.seq = 1;
  scopy(ar.time, sizeof ar.time, now);
  scopy(ar.user, sizeof ar.user, u);
  scopy(ar.action, sizeof ar.action, "init");
  snprintf(ar.what, sizeof ar.what, "created store schema %d", BF_STORE_SCHEMA);
  if ((rc = tbl_append(f, &T_AUDIT, &ar, 1)))
    goto done;
  if (ds_release(f) < 0 || H5Fclose(f) < 0) {
    f = -1;
    rc = bf_error_set(BF_EIO, "%s: cannot write the new store (disk full?)", path);
    goto done;
  }
  f = -1;
  if ((rc = fsync_file(tmp.tmp)))
    goto done;
  if (rename(tmp.tmp, path)) {
    rc = bf_error_set(BF_EIO, "%s: cannot move the new store into place (%s)", path, strerror(errno));
    goto done;
  }
  rc = fsync_dir(path);
done:
  if (g >= 0)
    H5Gclose(g);
  if (f >= 0) {
    ds_release(f);
    H5Fclose(f);
  }
  if (fcpl >= 0)
    H5Pclose(fcpl);
  if (fapl >= 0)
    H5Pclose(fapl);
  if (rc)
    unlink(tmp.tmp);
  if (tmp.lockfd >= 0)
    close(tmp.lockfd);
  return rc;
}

int bf_store_open(bf_store **out, const char *path, int mode, const char *user)
{
  int rc = 0;
  *out = NULL;
  bf_store *st = calloc(1, sizeof *st);
  if (!st)
    return bf_error_set(BF_ENOMEM, "out of memory opening %s", path);
  st->lockfd = -1;
  st->f = -1;
  st->mode = mode;
  set_paths(st, path);
  default_user(st->user, sizeof st->user, user);
  if (mode == BF_STORE_WRITE) {
    if (access(path, F_OK) == 0 && access(path, W_OK)) {
      rc = bf_error_set(BF_EIO, "%s: the store is read-only (no write permission)", path);
      goto done;
    }
    if ((rc = take_lock(st)))
      goto done;
    unlink(st->tmp); /* a transaction a crash interrupted: never committed */
  }
  if ((rc = open_main(st)) || (rc = load_tables(st)))
    goto done;
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
  if (st->intx)
    bf_store_abort(st);
  if (st->f >= 0)
    H5Fclose(st->f);
  drop_caches(st);
  free(st->fa);
  free(st->ev);
  free(st->it);
  free(st->sc);
  free(st->hi);
  if (st->lockfd >= 0)
    close(st->lockfd);
  free(st);
}

/* ---- transactions ---- */

static int copy_file(const char *src, const char *dst)
{
  int rc = 0, in = open(src, O_RDONLY), out = -1;
  if (in < 0)
    return bf_error_set(BF_EIO, "%s: cannot read (%s)", src, strerror(errno));
  out = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (out < 0) {
    rc = bf_error_set(BF_EIO, "%s: cannot create the transaction copy (%s)", dst, strerror(errno));
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

int bf_store_begin(bf_store *st)
{
  int rc;
  if (st->mode != BF_STORE_WRITE)
    return bf_error_set(BF_EINVAL, "%s: opened for reading, cannot write", st->path);
  if (st->intx)
    return bf_error_set(BF_EINVAL, "%s: a transaction is already open", st->path);
  unlink(st->tmp);
  if ((rc = copy_file(st->path, st->tmp)))
    return rc;
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST); /* as at create */
  hid_t wf = H5Fopen(st->tmp, H5F_ACC_RDWR, fapl);
  H5Pclose(fapl);
  if (wf < 0) {
    unlink(st->tmp);
    return bf_error_set(BF_EIO, "%s: cannot open the transaction copy for writing", st->tmp);
  }
  H5Fclose(st->f);
  st->f = wf;
  st->intx = 1;
  return 0;
}

static int reopen_after(bf_store *st)
{
  int rc = open_main(st);
  if (!rc)
    rc = load_tables(st);
  return rc;
}

void bf_store_abort(bf_store *st)
{
  if (!st->intx)
    return;
  if (st->f >= 0 && (ds_release(st->f) < 0) + (H5Fclose(st->f) < 0))
    hdf5_poisoned = 1;
  st->f = -1;
  st->intx = 0;
  unlink(st->tmp);
  char keep[1024];
  scopy(keep, sizeof keep, bf_error_last());
  if (reopen_after(st) == 0)
    bf_error_set(BF_EIO, "%s", keep); /* the caller reports the original failure */
}

int bf_store_commit(bf_store *st)
{
  int rc = 0;
  if (!st->intx)
    return bf_error_set(BF_EINVAL, "%s: commit without a transaction", st->path);
  int bad = ds_release(st->f) < 0;
  herr_t e = H5Fclose(st->f);
  st->f = -1;
  if (bad)
    e = -1;
  if (e < 0) {
    hdf5_poisoned = 1;
    rc = bf_error_set(BF_EIO, "%s: cannot finish writing the store (disk full?)", st->path);
    goto done;
  }
  if ((rc = fsync_file(st->tmp)))
    goto done;
  if (getenv("BF_STORE_CRASH_BEFORE_RENAME"))
    abort(); /* test hook: dies exactly between the copy's sync and the commit point */
  if (rename(st->tmp, st->path)) {
    rc = bf_error_set(BF_EIO, "%s: cannot commit (rename failed: %s)", st->path, strerror(errno));
    goto done;
  }
  st->intx = 0;
  rc = fsync_dir(st->path);
  int r2 = open_main(st);
  if (!rc)
    rc = r2;
done:
  if (st->intx)
    bf_store_abort(st);
  return rc;
}

static int need_tx(bf_store *st)
{
  if (!st->intx)
    return bf_error_set(BF_EINVAL, "%s: write outside a transaction (call bf_store_begin)", st->path);
  return 0;
}

/* ---- audit ---- */

static int audit_count(hid_t f, int64_t *n)
{
  int cached;
  hid_t ds = ds_get(f, T_AUDIT.path, &cached);
  if (ds < 0)
    return bf_error_set(BF_ESCHEMA, "table /audit is missing");
  hid_t sp = H5Dget_space(ds);
  hsize_t cur;
  H5Sget_simple_extent_dims(sp, &cur, NULL);
  H5Sclose(sp);
  if (!cached)
    H5Dclose(ds);
  *n = (int64_t)cur;
  return 0;
}

int bf_store_audit(bf_store *st, const char *action, const char *fmt, ...)
{
  int rc;
  if ((rc = need_tx(st)))
    return rc;
  bf_audit_rec a = {0};
  int64_t n = 0;
  if ((rc = audit_count(st->f, &n)))
    return rc;
  a.seq = n + 1;
  bf_store_now(a.time);
  scopy(a.user, sizeof a.user, st->user);
  scopy(a.action, sizeof a.action, action);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a.what, sizeof a.what, fmt, ap);
  va_end(ap);
  return tbl_append(st->f, &T_AUDIT, &a, 1);
}

int bf_store_read_audit(bf_store *st, bf_audit_rec **out, size_t *n)
{
  size_t cap = 0;
  *out = NULL;
  int rc = tbl_read(st->f, &T_AUDIT, (void **)out, n, &cap);
  if (rc) {
    free(*out);
    *out = NULL;
  }
  return rc;
}

/* ---- records ---- */

int bf_store_add_firearm(bf_store *st, int64_t *id, const bf_firearm *f)
{
  int erc_ = ensure(st, L_FA);
  if (erc_)
    return erc_;
  int rc;
  if ((rc = need_tx(st)) || (rc = grow((void **)&st->fa, &st->cfa, st->nfa + 1, sizeof *st->fa)))
    return rc;
  if (!f->serial[0])
    return bf_error_set(BF_EINVAL, "a firearm needs a serial number");
  bf_firearm r = *f;
  r.id = (int64_t)st->nfa + 1;
  bf_store_now(r.created);
  scopy(r.user, sizeof r.user, st->user);
  if ((rc = tbl_append(st->f, &T_FIREARMS, &r, 1)) ||
      (rc = bf_store_audit(st, "firearm add", "firearm %lld serial %s make %s model %s calibre %s",
                           (long long)r.id, r.serial, r.make, r.model, r.calibre)))
    return rc;
  st->fa[st->nfa++] = r;
  if (id)
    *id = r.id;
  return 0;
}

int bf_store_add_evidence(bf_store *st, int64_t *id, const bf_evidence *e)
{
  int erc_ = ensure(st, L_EV);
  if (erc_)
    return erc_;
  int rc;
  if ((rc = need_tx(st)) || (rc = grow((void **)&st->ev, &st->cev, st->nev + 1, sizeof *st->ev)))
    return rc;
  if (!e->case_no[0] || !e->item[0])
    return bf_error_set(BF_EINVAL, "evidence needs a case number and an item id");
  bf_evidence r = *e;
  r.id = (int64_t)st->nev + 1;
  bf_store_now(r.created);
  scopy(r.user, sizeof r.user, st->user);
  if ((rc = tbl_append(st->f, &T_EVIDENCE, &r, 1)) ||
      (rc = bf_store_audit(st, "evidence add", "evidence %lld case %s item %s kind %s",
                           (long long)r.id, r.case_no, r.item, bf_kind_name(r.kind))))
    return rc;
  st->ev[st->nev++] = r;
  if (id)
    *id = r.id;
  return 0;
}

int bf_store_add_item(bf_store *st, int64_t *id, int kind, const char *calibre, int owner_type,
                      int64_t owner)
{
  int erc_ = ensure(st, L_FA | L_EV);
  if (erc_)
    return erc_;
  int rc;
  if ((rc = need_tx(st)) || (rc = grow((void **)&st->it, &st->cit, st->nit + 1, sizeof *st->it)))
    return rc;
  if (kind != BF_KIND_CARTRIDGE && kind != BF_KIND_BULLET)
    return bf_error_set(BF_EINVAL, "item kind %d is neither cartridge nor bullet", kind);
  if ((owner_type == BF_OWNER_FIREARM && !bf_store_firearm(st, owner)) ||
      (owner_type == BF_OWNER_EVIDENCE && !bf_store_evidence(st, owner)) ||
      (owner_type != BF_OWNER_FIREARM && owner_type != BF_OWNER_EVIDENCE))
    return bf_error_set(BF_ENOTFOUND, "item owner %d/%lld does not exist", owner_type, (long long)owner);
  bf_item r = {0};
  r.id = (int64_t)st->nit + 1;
  r.kind = kind;
  r.owner_type = owner_type;
  r.owner = owner;
  scopy(r.calibre, sizeof r.calibre, calibre);
  bf_store_now(r.created);
  if ((rc = tbl_append(st->f, &T_ITEMS, &r, 1)) ||
      (rc = bf_store_audit(st, "item add", "item %lld %s of %s %lld", (long long)r.id,
                           bf_kind_name(kind), owner_type == BF_OWNER_FIREARM ? "firearm" : "evidence",
                           (long long)owner)))
    return rc;
  st->it[st->nit++] = r;
  if (id)
    *id = r.id;
  return 0;
}

int bf_store_find_sha256(const bf_store *st, const char *hex, int64_t *scan_id)
{
  if (ensure(st, L_SC))
    return BF_EIO;
  if (!st->scap_set)
    return BF_ENOTFOUND;
  for (size_t i = skey(hex, st->scap_set);; i = (i + 1) & (st->scap_set - 1)) {
    int64_t v = st->sset[i];
    if (!v)
      return BF_ENOTFOUND;
    if (!strcmp(st->sc[v - 1].sha256, hex)) {
      if (scan_id)
        *scan_id = st->sc[v - 1].id;
      return 0;
    }
  }
}

static int x3p_name(char *buf, size_t n, int64_t id)
{
  return snprintf(buf, n, "/scans_x3p/%lld", (long long)id);
}

int bf_store_add_scan(bf_store *st, int64_t *id, int64_t item, int land, const void *bytes,
                      size_t nbytes, const char *name, const bf_surface *s)
{
  int erc_ = ensure(st, L_SC);
  if (erc_)
    return erc_;
  int rc;
  hid_t sp = -1, p = -1, ds = -1;
  if ((rc = need_tx(st)) || (rc = grow((void **)&st->sc, &st->csc, st->nsc + 1, sizeof *st->sc)) ||
      (rc = sset_build(st, st->nsc + 1)))
    return rc;
  bf_item *it = (bf_item *)bf_store_item(st, item);
  if (!it)
    return bf_error_set(BF_ENOTFOUND, "%s: item %lld does not exist", name, (long long)item);
  uint8_t h[32];
  bf_scan_rec r = {0};
  bf_sha256(h, bytes, nbytes);
  bf_hex(r.sha256, h, 32);
  int64_t prev;
  if (!bf_store_find_sha256(st, r.sha256, &prev)) {
    const bf_scan_rec *o = &st->sc[prev - 1];
    return bf_error_set(BF_EEXIST, "%s: duplicate: the same file (SHA-256 %.16s...) is already stored as scan %lld (%s) of item %lld",
                        name, r.sha256, (long long)prev, o->name, (long long)o->item);
  }
  r.id = (int64_t)st->nsc + 1;
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
  ds = H5Dcreate2(st->f, dn, H5T_STD_U8LE, sp, H5P_DEFAULT, p, H5P_DEFAULT);
  if (ds < 0 || (nbytes && H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes) < 0)) {
    rc = bf_error_set(BF_EIO, "%s: cannot store the original bytes (disk full?)", name);
    goto done;
  }
  attr_str(ds, "sha256", r.sha256);
  attr_str(ds, "name", r.name);
  if ((rc = tbl_append(st->f, &T_SCANS, &r, 1)) ||
      (rc = bf_store_audit(st, "scan add", "scan %lld item %lld land %d sha256 %s file %s",
                           (long long)r.id, (long long)item, land, r.sha256, r.name)))
    goto done;
  it->nscans++;
  if ((rc = tbl_write_row(st->f, &T_ITEMS, (size_t)(it->id - 1), it))) {
    it->nscans--;
    goto done;
  }
  st->sc[st->nsc] = r;
  {
    size_t i = skey(r.sha256, st->scap_set);
    while (st->sset[i])
      i = (i + 1) & (st->scap_set - 1);
    st->sset[i] = (int64_t)st->nsc + 1;
  }
  st->nsc++;
  if (id)
    *id = r.id;
done:
  if (ds >= 0)
    H5Dclose(ds);
  if (p >= 0)
    H5Pclose(p);
  if (sp >= 0)
    H5Sclose(sp);
  return rc;
}

int bf_store_read_x3p(bf_store *st, int64_t scan_id, uint8_t **bytes, size_t *n)
{
  int erc_ = ensure(st, L_SC);
  if (erc_)
    return erc_;
  int rc = 0;
  *bytes = NULL;
  *n = 0;
  if (scan_id < 1 || (size_t)scan_id > st->nsc)
    return bf_error_set(BF_ENOTFOUND, "%s: no scan %lld", st->path, (long long)scan_id);
  const bf_scan_rec *r = &st->sc[scan_id - 1];
  char dn[64];
  x3p_name(dn, sizeof dn, scan_id);
  hid_t ds = H5Dopen2(st->f, dn, H5P_DEFAULT);
  if (ds < 0)
    return bf_error_set(BF_ENOTFOUND, "%s: scan %lld has no original bytes (%s missing)", st->path,
                        (long long)scan_id, dn);
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
    rc = bf_error_set(BF_ECHECKSUM, "%s: scan %lld (%s): stored bytes fail their checksum",
                      st->path, (long long)scan_id, r->name);
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
    if (!strcmp(st->kinds[i].name, kind))
      return &st->kinds[i];
  char gp[96];
  snprintf(gp, sizeof gp, "/features/%s", kind);
  htri_t ex = H5Lexists(st->f, gp, H5P_DEFAULT);
  if (ex <= 0 && !create)
    return NULL;
  if (st->nkinds == MAXKINDS) {
    *rc = bf_error_set(BF_ELIMIT, "more than %d feature kinds", MAXKINDS);
    return NULL;
  }
  kindcache *kc = &st->kinds[st->nkinds];
  memset(kc, 0, sizeof *kc);
  scopy(kc->name, sizeof kc->name, kind);
  hid_t g = -1;
  if (ex <= 0) {
    hid_t sp = -1, p = -1, ds = -1;
    hsize_t d0 = 0, dmax = H5S_UNLIMITED;
    g = H5Gcreate2(st->f, gp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g >= 0 && !tbl_create(g, &T_FEAT)) {
      sp = H5Screate_simple(1, &d0, &dmax);
      if (create == 2) { /* plain: no shuffle/deflate, the Fletcher-32 checksum stays (HDF5
                            1.10's H5Premove_filter corrupts the pipeline: build it afresh) */
        hsize_t chunk = 65536;
        p = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(p, 1, &chunk);
        H5Pset_fletcher32(p);
      } else
        p = chunked_dcpl(65536);
      ds = H5Dcreate2(g, "data", H5T_IEEE_F32LE, sp, H5P_DEFAULT, p, H5P_DEFAULT);
      if (ds >= 0) {
        attr_str(ds, "units", "micrometres (heights / signature values); NaN = missing");
        attr_str(ds, "description", "features of this kind, concatenated; see index offset/count");
        H5Dclose(ds);
      }
      H5Pclose(p);
      H5Sclose(sp);
    }
    if (g < 0 || ds < 0) {
      if (g >= 0)
        H5Gclose(g);
      *rc = bf_error_set(BF_EIO, "%s: cannot create feature kind %s", st->path, kind);
      return NULL;
    }
    attr_str(g, "kind", kind);
    H5Gclose(g);
    kc->sorted = 1;
  } else {
    if ((g = H5Gopen2(st->f, gp, H5P_DEFAULT)) < 0 ||
        (*rc = tbl_read(g, &T_FEAT, (void **)&kc->rows, &kc->n, &kc->cap))) {
      if (g >= 0)
        H5Gclose(g);
      if (!*rc)
        *rc = bf_error_set(BF_EIO, "%s: cannot open %s", st->path, gp);
      free(kc->rows);
      return NULL;
    }
    H5Gclose(g);
    kc->sorted = 1;
    for (size_t i = 1; i < kc->n; i++)
      if (kc->rows[i].item < kc->rows[i - 1].item)
        kc->sorted = 0;
  }
  kc->loaded = 1;
  st->nkinds++;
  return kc;
}

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
  hid_t ds = -1, fs = -1, ms = -1;
  int cached = 0;
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
  char dp[96], ip[96];
  snprintf(dp, sizeof dp, "/features/%s/data", kind);
  snprintf(ip, sizeof ip, "/features/%s/index", kind);
  tbl ti = T_FEAT;
  ti.path = ip;
  rc = BF_EIO;
  if ((ds = ds_get(st->f, dp, &cached)) < 0)
    goto done;
  fs = H5Dget_space(ds);
  hsize_t cur, cnt = (hsize_t)r.count;
  H5Sget_simple_extent_dims(fs, &cur, NULL);
  H5Sclose(fs);
  r.offset = (int64_t)cur;
  hsize_t nd = cur + cnt;
  if (H5Dset_extent(ds, &nd) < 0)
    goto done;
  fs = H5Dget_space(ds);
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, &cur, NULL, &cnt, NULL);
  ms = H5Screate_simple(1, &cnt, NULL);
  if (H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, f->z) < 0 || tbl_append(st->f, &ti, &r, 1))
    goto done;
  if ((rc = bf_store_audit(st, "feature add", "feature %s item %lld scan %lld land %d %dx%d flags %d",
                           kind, (long long)item, (long long)scan, r.land, r.nx, r.ny, r.quality_flags)))
    goto done;
  if (kc->n && kc->rows[kc->n - 1].item > item)
    kc->sorted = 0;
  kc->rows[kc->n++] = r;
  rc = 0;
done:
  if (ms >= 0)
    H5Sclose(ms);
  if (fs >= 0)
    H5Sclose(fs);
  if (ds >= 0 && !cached)
    H5Dclose(ds);
  if (rc == BF_EIO)
    bf_error_set(rc, "%s: cannot store the %s feature of item %lld (disk full?)", st->path, kind,
                 (long long)item);
  return rc;
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

static int read_floats(hid_t g, int64_t off, int64_t count, float *dst, const char *what)
{
  int rc = BF_ECHECKSUM;
  hid_t ds = H5Dopen2(g, "data", H5P_DEFAULT), fs = -1, ms = -1;
  if (ds < 0)
    goto done;
  fs = H5Dget_space(ds);
  hsize_t cur, st = (hsize_t)off, cnt = (hsize_t)count;
  H5Sget_simple_extent_dims(fs, &cur, NULL);
  if (off < 0 || (hsize_t)off + cnt > cur) {
    rc = bf_error_set(BF_EFORMAT, "%s: feature data range %lld+%lld beyond %llu stored", what,
                      (long long)off, (long long)count, (unsigned long long)cur);
    goto done;
  }
  if (!cnt) {
    rc = 0;
    goto done;
  }
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &cnt, NULL);
  ms = H5Screate_simple(1, &cnt, NULL);
  if (H5Dread(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, dst) >= 0)
    rc = 0;
done:
  if (rc == BF_ECHECKSUM)
    bf_error_set(rc, "%s: feature data unreadable (checksum or storage error)", what);
  if (ms >= 0)
    H5Sclose(ms);
  if (fs >= 0)
    H5Sclose(fs);
  if (ds >= 0)
    H5Dclose(ds);
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
  hid_t g = -1;
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
  char gp[96];
  snprintf(gp, sizeof gp, "/features/%s", kind);
  if (!(buf = malloc((size_t)(hi - lo + 1) * sizeof *buf))) {
    rc = bf_error_set(BF_ENOMEM, "out of memory reading %lld feature values", (long long)(hi - lo));
    goto done;
  }
  if ((g = H5Gopen2(st->f, gp, H5P_DEFAULT)) < 0) {
    rc = bf_error_set(BF_EIO, "%s: cannot open %s", st->path, gp);
    goto done;
  }
  if ((rc = read_floats(g, lo, hi - lo, buf, st->path)))
    goto done;
  for (size_t i = 0; i < n && !rc; i++)
    rc = row_to_feature(&out[i], &r[i], buf + (r[i].offset - lo));
done:
  if (rc)
    for (size_t i = 0; i < n; i++) {
      bf_feature_free(out[i]);
      out[i] = NULL;
    }
  if (g >= 0)
    H5Gclose(g);
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

/* ---- items ---- */

size_t bf_store_nitems(const bf_store *st)
{
  return st->nit;
}
const bf_item *bf_store_items(const bf_store *st)
{
  return st->it;
}
const bf_item *bf_store_item(const bf_store *st, int64_t id)
{
  return id >= 1 && (size_t)id <= st->nit ? &st->it[id - 1] : NULL;
}
const bf_firearm *bf_store_firearm(const bf_store *st, int64_t id)
{
  ensure(st, L_FA); /* on failure the table stays empty */
  return id >= 1 && (size_t)id <= st->nfa ? &st->fa[id - 1] : NULL;
}
const bf_evidence *bf_store_evidence(const bf_store *st, int64_t id)
{
  ensure(st, L_EV); /* on failure the table stays empty */
  return id >= 1 && (size_t)id <= st->nev ? &st->ev[id - 1] : NULL;
}
size_t bf_store_nfirearms(const bf_store *st)
{
  ensure(st, L_FA); /* on failure the table stays empty */
  return st->nfa;
}
const bf_firearm *bf_store_firearms(const bf_store *st)
{
  ensure(st, L_FA); /* on failure the table stays empty */
  return st->fa;
}
size_t bf_store_nevidence(const bf_store *st)
{
  ensure(st, L_EV); /* on failure the table stays empty */
  return st->nev;
}
const bf_evidence *bf_store_evidences(const bf_store *st)
{
  ensure(st, L_EV); /* on failure the table stays empty */
  return st->ev;
}
size_t bf_store_nscans(const bf_store *st)
{
  ensure(st, L_SC); /* on failure the table stays empty */
  return st->nsc;
}
const bf_scan_rec *bf_store_scans(const bf_store *st)
{
  ensure(st, L_SC); /* on failure the table stays empty */
  return st->sc;
}

const bf_firearm *bf_store_firearm_by_serial(const bf_store *st, const char *serial)
{
  ensure(st, L_FA); /* on failure the table stays empty */
  for (size_t i = 0; i < st->nfa; i++)
    if (!strcmp(st->fa[i].serial, serial))
      return &st->fa[i];
  return NULL;
}

const bf_evidence *bf_store_evidence_by_case_item(const bf_store *st, const char *case_no,
                                                  const char *item)
{
  ensure(st, L_EV); /* on failure the table stays empty */
  for (size_t i = 0; i < st->nev; i++)
    if (!strcmp(st->ev[i].case_no, case_no) && !strcmp(st->ev[i].item, item))
      return &st->ev[i];
  return NULL;
}

int bf_store_list_items(const bf_store *st, int kind, const char *calibre, int64_t **ids, size_t *n)
{
  *n = 0;
  *ids = malloc((st->nit ? st->nit : 1) * sizeof **ids);
  if (!*ids)
    return bf_error_set(BF_ENOMEM, "out of memory listing items");
  for (size_t i = 0; i < st->nit; i++)
    if ((!kind || st->it[i].kind == kind) &&
        (!calibre || !*calibre || !strcmp(st->it[i].calibre, calibre)))
      (*ids)[(*n)++] = st->it[i].id;
  return 0;
}

int bf_store_set_searched(bf_store *st, const int64_t *items, size_t n, int64_t run)
{
  int rc;
  if ((rc = need_tx(st)))
    return rc;
  for (size_t i = 0; i < n; i++) {
    bf_item *it = (bf_item *)bf_store_item(st, items[i]);
    if (!it)
      return bf_error_set(BF_ENOTFOUND, "no item %lld", (long long)items[i]);
    int64_t old = it->searched;
    it->searched = run;
    if ((rc = tbl_write_row(st->f, &T_ITEMS, (size_t)(it->id - 1), it))) {
      it->searched = old;
      return rc;
    }
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
  int erc_ = ensure(st, L_HI | L_FA | L_EV);
  if (erc_)
    return erc_;
  int rc;
  bf_hit *fresh = NULL;
  size_t nf = 0, n0 = st->nhi;
  if (added)
    *added = 0;
  if ((rc = need_tx(st)))
    return rc;
  if (!n)
    return 0;
  if ((rc = grow((void **)&st->hi, &st->chi, st->nhi + n, sizeof *st->hi)) ||
      (rc = hset_build(st, st->nhi + n)))
    return rc;
  char now[32];
  bf_store_now(now);
  for (size_t i = 0; i < n; i++) {
    if (!bf_store_item(st, hits[i].query) || !bf_store_item(st, hits[i].candidate)) {
      rc = bf_error_set(BF_ENOTFOUND, "hit %zu: query %lld or candidate %lld is not an item", i,
                        (long long)hits[i].query, (long long)hits[i].candidate);
      goto done;
    }
    if (hset_find(st, &hits[i]) >= 0)
      continue; /* already stored (e.g. a resumed batch): never twice */
    bf_hit h = hits[i];
    h.id = (int64_t)st->nhi + 1;
    if (!h.time[0])
      scopy(h.time, sizeof h.time, now);
    st->hi[st->nhi] = h;
    hset_add(st, st->nhi++);
    nf++;
  }
  fresh = st->hi + n0;
  if (nf && ((rc = tbl_append(st->f, &T_HITS, fresh, nf)) ||
             (rc = bf_store_audit(st, "hits add", "%zu hit(s) of run %lld added (%zu already stored)", nf,
                                  (long long)hits[0].run, n - nf))))
    goto done;
  if (added)
    *added = nf;
done:
  if (rc) { /* forget the in-memory rows; the transaction will be aborted */
    st->nhi = n0;
    free(st->hset);
    st->hset = NULL;
    st->hcap = 0;
    hset_build(st, st->nhi);
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
  int erc_ = ensure(st, L_HI | L_FA | L_EV);
  if (erc_)
    return erc_;
  bf_hit_filter all = BF_HIT_FILTER_INIT;
  if (!f)
    f = &all;
  *n = 0;
  *out = malloc((st->nhi ? st->nhi : 1) * sizeof **out);
  if (!*out)
    return bf_error_set(BF_ENOMEM, "out of memory querying hits");
  for (size_t i = 0; i < st->nhi; i++) {
    const bf_hit *h = &st->hi[i];
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
  int erc_ = ensure(st, L_HI);
  if (erc_)
    return erc_;
  int rc;
  if ((rc = need_tx(st)))
    return rc;
  if (hit_id < 1 || (size_t)hit_id > st->nhi)
    return bf_error_set(BF_ENOTFOUND, "%s: no hit %lld", st->path, (long long)hit_id);
  if (status < BF_HIT_CANDIDATE || status > BF_HIT_REJECTED)
    return bf_error_set(BF_EINVAL, "hit status %d is not candidate/confirmed/rejected", status);
  bf_hit h = st->hi[hit_id - 1];
  int old = h.status;
  h.status = status;
  scopy(h.examiner, sizeof h.examiner, examiner && *examiner ? examiner : st->user);
  bf_store_now(h.when);
  if (note)
    scopy(h.note, sizeof h.note, note);
  if ((rc = tbl_write_row(st->f, &T_HITS, (size_t)(hit_id - 1), &h)) ||
      (rc = bf_store_audit(st, "hit status", "hit %lld %s -> %s by %s%s%s", (long long)hit_id,
                           bf_hit_status_name(old), bf_hit_status_name(status), h.examiner,
                           note ? ": " : "", note ? note : "")))
    return rc;
  st->hi[hit_id - 1] = h;
  return 0;
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

static herr_t kind_iter(hid_t g, const char *name, const H5L_info_t *info, void *op)
{
  (void)g;
  (void)info;
  char **names = op;
  for (int i = 0; i < MAXKINDS; i++)
    if (!names[i]) {
      names[i] = strdup(name);
      break;
    }
  return 0;
}

int bf_store_verify(bf_store *st, bf_store_report_fn report, void *ctx, int *nproblems)
{
  int erc_ = ensure(st, L_ALL);
  if (erc_)
    return erc_;
  vctx v = {report, ctx, 0};
  /* tables were read whole at open (fletcher32 checked); the audit log too */
  bf_audit_rec *a = NULL;
  size_t na = 0;
  if (bf_store_read_audit(st, &a, &na))
    problem(&v, "%s", bf_error_last());
  for (size_t i = 0; i < na; i++)
    if (a[i].seq != (int64_t)i + 1) {
      problem(&v, "audit log: row %zu has sequence %lld (rows missing or reordered)", i + 1,
              (long long)a[i].seq);
      break;
    }
  free(a);
  for (size_t i = 0; i < st->nit; i++) {
    const bf_item *it = &st->it[i];
    if (it->id != (int64_t)i + 1)
      problem(&v, "items: row %zu has id %lld", i + 1, (long long)it->id);
    if ((it->owner_type == BF_OWNER_FIREARM && !bf_store_firearm(st, it->owner)) ||
        (it->owner_type == BF_OWNER_EVIDENCE && !bf_store_evidence(st, it->owner)))
      problem(&v, "item %lld: owner %lld does not exist", (long long)it->id, (long long)it->owner);
  }
  for (size_t i = 0; i < st->nhi; i++)
    if (!bf_store_item(st, st->hi[i].query) || !bf_store_item(st, st->hi[i].candidate))
      problem(&v, "hit %lld: refers to a missing item", (long long)st->hi[i].id);
  for (size_t i = 0; i < st->nsc; i++) {
    uint8_t *b = NULL;
    size_t n;
    if (st->sc[i].id != (int64_t)i + 1)
      problem(&v, "scans: row %zu has id %lld", i + 1, (long long)st->sc[i].id);
    if (!bf_store_item(st, st->sc[i].item))
      problem(&v, "scan %lld: item %lld does not exist", (long long)st->sc[i].id, (long long)st->sc[i].item);
    if (bf_store_read_x3p(st, (int64_t)i + 1, &b, &n))
      problem(&v, "%s", bf_error_last());
    free(b);
  }
  /* every feature kind: index read whole, data read in large blocks, ranges checked */
  char *names[MAXKINDS] = {0};
  hid_t fg = H5Gopen2(st->f, "/features", H5P_DEFAULT);
  if (fg < 0)
    problem(&v, "group /features is missing");
  else {
    H5Literate(fg, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, kind_iter, names);
    H5Gclose(fg);
  }
  for (int k = 0; k < MAXKINDS && names[k]; k++) {
    int rc;
    kindcache *kc = kind_get(st, names[k], 0, &rc);
    if (!kc) {
      problem(&v, "features/%s: %s", names[k], rc ? bf_error_last() : "unreadable");
      continue;
    }
    char gp[96];
    snprintf(gp, sizeof gp, "/features/%s", names[k]);
    hid_t g = H5Gopen2(st->f, gp, H5P_DEFAULT);
    int64_t total = 0;
    for (size_t i = 0; i < kc->n; i++) {
      const bf_feat_row *r = &kc->rows[i];
      if (!bf_store_item(st, r->item))
        problem(&v, "features/%s row %zu: item %lld does not exist", names[k], i, (long long)r->item);
      if (r->count != (int64_t)r->nx * r->ny || r->offset < 0)
        problem(&v, "features/%s row %zu: bad size/offset", names[k], i);
      if (r->offset + r->count > total)
        total = r->offset + r->count;
    }
    const int64_t blk = 1 << 22;
    float *buf = malloc(blk * sizeof *buf);
    for (int64_t off = 0; buf && g >= 0 && off < total; off += blk) {
      int64_t c = total - off < blk ? total - off : blk;
      if (read_floats(g, off, c, buf, gp)) {
        problem(&v, "%s", bf_error_last());
        break;
      }
    }
    free(buf);
    if (g >= 0)
      H5Gclose(g);
  }
  for (int k = 0; k < MAXKINDS; k++)
    free(names[k]);
  if (nproblems)
    *nproblems = v.n;
  return v.n ? bf_error_set(BF_ECHECKSUM, "%s: %d problem(s) found", st->path, v.n) : 0;
}

/* ---- kinds and export ---- */

int bf_store_feature_kinds(bf_store *st, char (*names)[48], int max)
{
  char *v[MAXKINDS] = {0};
  int n = 0;
  hid_t fg = H5Gopen2(st->f, "/features", H5P_DEFAULT);
  if (fg >= 0) {
    H5Literate(fg, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, kind_iter, v);
    H5Gclose(fg);
  }
  for (int k = 0; k < MAXKINDS && v[k]; k++) {
    if (n < max)
      scopy(names[n++], 48, v[k]);
    free(v[k]);
  }
  return n;
}

static void csv_str(FILE *o, const char *s)
{
  if (!strpbrk(s, ",\"\n\r")) {
    fputs(s, o);
    return;
  }
  fputc('"', o);
  for (; *s; s++) {
    if (*s == '"')
      fputc('"', o);
    fputc(*s, o);
  }
  fputc('"', o);
}

static void json_str(FILE *o, const char *s)
{
  fputc('"', o);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(o, "\\%c", c);
    else if (c < 0x20)
      fprintf(o, "\\u%04x", c);
    else
      fputc(c, o);
  }
  fputc('"', o);
}

int bf_store_export(bf_store *st, const char *what, int json, FILE *out)
{
  int erc_ = ensure(st, L_ALL);
  if (erc_)
    return erc_;
  const tbl *t = NULL;
  const void *rows = NULL;
  size_t n = 0;
  bf_audit_rec *au = NULL;
  int rc = 0;
  if (!strcmp(what, "firearms"))
    t = &T_FIREARMS, rows = st->fa, n = st->nfa;
  else if (!strcmp(what, "evidence"))
    t = &T_EVIDENCE, rows = st->ev, n = st->nev;
  else if (!strcmp(what, "items"))
    t = &T_ITEMS, rows = st->it, n = st->nit;
  else if (!strcmp(what, "scans"))
    t = &T_SCANS, rows = st->sc, n = st->nsc;
  else if (!strcmp(what, "hits"))
    t = &T_HITS, rows = st->hi, n = st->nhi;
  else if (!strcmp(what, "audit")) {
    if ((rc = bf_store_read_audit(st, &au, &n)))
      return rc;
    t = &T_AUDIT, rows = au;
  } else
    return bf_error_set(BF_EINVAL, "cannot export '%s': firearms, evidence, items, scans, hits or audit", what);
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
      else if (f->type == T_F64)
        fprintf(out, "%.10g", *(const double *)p);
      else if (f->type == T_F32)
        fprintf(out, "%.7g", *(const float *)p);
      else if (f->type == T_STR)
        (json ? json_str : csv_str)(out, p);
      else {
        fputs(json ? "[" : "", out);
        for (size_t k = 0; k < f->size; k++)
          fprintf(out, "%s%.10g", k ? (json ? ", " : ";") : "", ((const double *)p)[k]);
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

void bf_store_features_free(bf_feature **f, int n)
{
  if (!f)
    return;
  for (int i = 0; i < n; i++)
    bf_feature_free(f[i]);
  free(f);
}
