/* The bfm store: one HDF5 file holding firearms (test-fire records), evidence, items, scans
 * (original X3P bytes + SHA-256), features of any kind, hits and an audit log.
 *
 * Concurrency and crash safety (why copy-on-write and not SWMR):
 *   Writers take an exclusive flock() on "STORE.lock" (a second writer gets BF_ELOCKED at
 *   once). A write transaction copies STORE to "STORE.tmp", changes the copy with ordinary
 *   HDF5 calls, flushes and fsyncs it, and commits with one rename(2) over STORE (then fsyncs
 *   the folder). rename is atomic, so a kill -9 at ANY moment leaves either the old or the new
 *   complete file; a stale STORE.tmp is removed by the next writer. Readers open STORE
 *   read-only at any time and keep reading their snapshot (the old inode) while a writer
 *   commits. SWMR was rejected: its writer cannot create objects (new feature kinds, per-scan
 *   X3P datasets), a crashed SWMR writer leaves a file that needs h5clear, and HDF5 promises no
 *   crash consistency for in-place writes. The price: a commit costs a copy of the file, so
 *   bulk ingest groups rows per transaction when asked (bfm ingest --commit-every).
 *
 * Layout (schema_version 1; every table is a chunked, shuffle+deflate+fletcher32, extendible
 * 1-D compound dataset; units are in each dataset's "units" attribute):
 *   /firearms /evidence /items /scans /hits /audit      tables (structs below)
 *   /scans_x3p/<scan id>                                original X3P bytes (uint8)
 *   /features/<kind>/index, /features/<kind>/data       per feature kind ("cartridge",
 *        "bullet", or any other name, created on first use): index rows point into one float
 *        array (micrometres) so a search streams the whole kind in large blocks.
 * HDF5 is not thread-safe here: use a bf_store from one thread at a time. */
#ifndef BF_STORE_H
#define BF_STORE_H

#include "bf_feature.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BF_STORE_SCHEMA 1

enum { BF_STORE_READ = 0, BF_STORE_WRITE = 1 };
enum { BF_OWNER_FIREARM = 1, BF_OWNER_EVIDENCE = 2 };
enum { BF_HIT_CANDIDATE = 0, BF_HIT_CONFIRMED = 1, BF_HIT_REJECTED = 2 };

/* A manufacture-time test-fire record and its transfer history (what a trace request needs).
 * Dates are ISO 8601 text; empty strings when unknown. */
typedef struct bf_firearm {
  int64_t id;
  char serial[64], make[64], manufacturer[64], model[64], calibre[32], country[64];
  char manufactured[32], markings[256], testfire_date[32], test_lab[128];
  char export_date[32], export_country[64], import_country[64];
  char transit[256]; /* transit countries, ';'-separated */
  char consignee[256];
  char created[32], user[64];
} bf_firearm;

/* A crime-scene item record (a cartridge case or a bullet). */
typedef struct bf_evidence {
  int64_t id;
  char case_no[64], agency[128], item[64];
  int32_t kind; /* BF_KIND_* */
  char calibre[32], date[32], place[256], lab[128], notes[512];
  char created[32], user[64];
} bf_evidence;

/* What the search compares: one cartridge case (one scan) or one bullet (lands 1..N). */
typedef struct bf_item {
  int64_t id;
  int32_t kind, owner_type; /* BF_KIND_*, BF_OWNER_* */
  int64_t owner;            /* firearm id or evidence id */
  char calibre[32];
  int32_t nscans;
  int64_t searched; /* id of the last batch run that searched it; 0 = never */
  char created[32];
} bf_item;

typedef struct bf_scan_rec {
  int64_t id, item;
  int32_t land; /* bullet land number (1-based), 0 for a cartridge case */
  int32_t nx, ny;
  double dx, dy; /* micrometres */
  int64_t nbytes; /* size of the original X3P file */
  char sha256[72]; /* lower-case hex of the original file */
  char name[256], instrument[128], date[64];
  char created[32], user[64];
} bf_scan_rec;

/* Where one stored feature is: offset/count in floats into /features/<kind>/data. */
typedef struct bf_feat_row {
  int64_t item, scan;
  int32_t land, nx, ny, quality_flags, version, kind;
  float valid_fraction;
  double dx, dy, params[8];
  int64_t offset, count;
} bf_feat_row;

typedef struct bf_hit {
  int64_t id, query, candidate, run; /* items; run = batch run id. (run, query, candidate) is unique */
  double score, scores[4];
  int32_t rank, status; /* BF_HIT_* */
  char time[32], examiner[64], when[32], note[256];
} bf_hit;

typedef struct bf_audit_rec {
  int64_t seq;
  char time[32], user[64], action[32], what[256];
} bf_audit_rec;

typedef struct bf_store bf_store;

/* Creates an empty store at path (fails with BF_EEXIST if it exists). user for the audit log
 * (NULL: the login name). */
int bf_store_create(const char *path, const char *user);
/* Opens a store. BF_STORE_WRITE takes the writer lock (BF_ELOCKED if another process holds it)
 * and refuses a read-only file or folder (BF_EIO). */
int bf_store_open(bf_store **out, const char *path, int mode, const char *user);
void bf_store_close(bf_store *st); /* aborts an open transaction */
const char *bf_store_path(const bf_store *st);

/* Write transactions: every write call below must sit between begin and commit. abort drops
 * everything since begin; the store file is untouched until commit's rename. */
int bf_store_begin(bf_store *st);
int bf_store_commit(bf_store *st);
void bf_store_abort(bf_store *st);

/* Records. f->id/created/user are filled in; the new id is returned in *id. */
int bf_store_add_firearm(bf_store *st, int64_t *id, const bf_firearm *f);
int bf_store_add_evidence(bf_store *st, int64_t *id, const bf_evidence *e);
int bf_store_add_item(bf_store *st, int64_t *id, int kind, const char *calibre, int owner_type,
                      int64_t owner);
/* Keeps a scan's original bytes; s (may be NULL) gives size/spacing/instrument. A file whose
 * SHA-256 is already stored is BF_EEXIST, the message naming the earlier scan and item. */
int bf_store_add_scan(bf_store *st, int64_t *id, int64_t item, int land, const void *bytes,
                      size_t nbytes, const char *name, const bf_surface *s);
/* Scan id holding this SHA-256 (hex or raw), or BF_ENOTFOUND. */
int bf_store_find_sha256(const bf_store *st, const char *hex, int64_t *scan_id);
/* Creates a feature kind (inside a write transaction) before its first feature; an existing
 * kind is left as it is. compress = 0 stores its data without deflate: for small descriptors
 * that every search reads whole (100,000 search descriptors: 1.4 s plain, 8 s deflated). */
int bf_store_add_kind(bf_store *st, const char *kind, int compress);
/* Stores a feature under a kind name ("cartridge", "bullet" or a new one; a new kind is
 * created compressed). */
int bf_store_put_feature(bf_store *st, const char *kind, int64_t item, int64_t scan,
                         const bf_feature *f);
/* Marks items searched by a batch run (resumable batches). */
int bf_store_set_searched(bf_store *st, const int64_t *items, size_t n, int64_t run);

/* Lookups (in-memory tables, valid until the next write call or close). */
size_t bf_store_nitems(const bf_store *st);
const bf_item *bf_store_items(const bf_store *st); /* by ascending id */
const bf_item *bf_store_item(const bf_store *st, int64_t id);
/* Ids of items of a kind (0 = any) and calibre (NULL/"" = any); caller frees *ids. */
int bf_store_list_items(const bf_store *st, int kind, const char *calibre, int64_t **ids, size_t *n);
const bf_firearm *bf_store_firearm(const bf_store *st, int64_t id);
const bf_firearm *bf_store_firearm_by_serial(const bf_store *st, const char *serial);
const bf_evidence *bf_store_evidence(const bf_store *st, int64_t id);
const bf_evidence *bf_store_evidence_by_case_item(const bf_store *st, const char *case_no,
                                                  const char *item);
size_t bf_store_nfirearms(const bf_store *st);
const bf_firearm *bf_store_firearms(const bf_store *st);
size_t bf_store_nevidence(const bf_store *st);
const bf_evidence *bf_store_evidences(const bf_store *st);
size_t bf_store_nscans(const bf_store *st);
const bf_scan_rec *bf_store_scans(const bf_store *st);

/* Features. The index of a kind (rows in storage order; an item's rows are consecutive, bullet
 * lands in land order); *n = 0 and NULL when the kind has none. */
int bf_store_feature_index(bf_store *st, const char *kind, const bf_feat_row **rows, size_t *n);
/* All features of one item of a kind, in order; free with bf_store_features_free. */
int bf_store_get_features(bf_store *st, const char *kind, int64_t item, bf_feature ***out, int *n);
/* Frees an array of n features as bf_store_get_features returns it (NULL: no-op). */
void bf_store_features_free(bf_feature **f, int n);
/* Index rows [first, first+n) of a kind as features, with ONE read of their data: the way to
 * stream the store. out must hold n pointers; caller frees each. */
int bf_store_read_block(bf_store *st, const char *kind, size_t first, size_t n, bf_feature **out);

/* Hits. Rows whose (run, query, candidate) is already stored are skipped (*added counts the
 * new ones, may be NULL). id, time, and for a new row status/when are filled in. */
int bf_store_add_hits(bf_store *st, const bf_hit *hits, size_t n, size_t *added);
typedef struct bf_hit_filter {
  const char *case_no;  /* evidence case of query or candidate; NULL = any */
  const char *serial;   /* firearm serial of query or candidate; NULL = any */
  double min_score;     /* -inf by default */
  int status;           /* BF_HIT_* or -1 = any */
  int64_t run;          /* 0 = any */
  int64_t item;         /* query or candidate item, 0 = any */
} bf_hit_filter;
#define BF_HIT_FILTER_INIT \
  {.case_no = NULL, .serial = NULL, .min_score = -1e300, .status = -1, .run = 0, .item = 0}
/* Matching hits (copies; caller frees *out), by descending score. */
int bf_store_query_hits(const bf_store *st, const bf_hit_filter *f, bf_hit **out, size_t *n);
/* Examiner decision on a hit (audited). */
int bf_store_set_hit_status(bf_store *st, int64_t hit_id, int status, const char *examiner,
                            const char *note);
const char *bf_hit_status_name(int status);

/* Appends a line to the audit log (the add/set calls above audit themselves). */
int bf_store_audit(bf_store *st, const char *action, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
/* Reads the whole audit log; caller frees *out. */
int bf_store_read_audit(bf_store *st, bf_audit_rec **out, size_t *n);

/* Original bytes of a scan; caller frees *bytes. Verifies the SHA-256 (BF_ECHECKSUM). */
int bf_store_read_x3p(bf_store *st, int64_t scan_id, uint8_t **bytes, size_t *n);

/* Rechecks every scan's SHA-256 and reads every dataset in full (fletcher32 checks every chunk)
 * and the cross references. Each problem is passed to report (may be NULL); returns 0 when
 * nothing is wrong, else BF_ECHECKSUM (or the first error) with *nproblems set. */
typedef void (*bf_store_report_fn)(void *ctx, const char *problem);
int bf_store_verify(bf_store *st, bf_store_report_fn report, void *ctx, int *nproblems);

/* Names of the stored feature kinds (up to max, each < 48 chars); returns how many. */
int bf_store_feature_kinds(bf_store *st, char (*names)[48], int max);

/* Writes a table ("firearms", "evidence", "items", "scans", "hits", "audit") as CSV (header row,
 * RFC 4180 quoting; arrays joined with ';') or as a JSON array of objects (json = 1). */
int bf_store_export(bf_store *st, const char *what, int json, FILE *out);

/* ISO 8601 UTC now, for records. */
void bf_store_now(char out[32]);

#endif
