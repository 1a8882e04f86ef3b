/* The bfm store: firearms (test-fire records), evidence, items, scans (original X3P bytes +
 * SHA-256), features of any kind, hits and an audit log, in HDF5 files.
 *
 * Layout (schema_version 2): a store named STORE is
 *   STORE            the manifest: a small HDF5 file (attribute schema_version = 2, generation,
 *                    next_segment) whose table /segments lists the live segment files in order
 *                    (seq, name, bytes, naudit = its audit rows, created), and /seg/<seq> external
 *                    links to each segment's root (h5py: f["seg/00000001/items"]).
 *   STORE.d/seg-<seq 8 digits>.h5   immutable segments. Each holds the same objects a schema 1
 *                    store held, for the rows its transaction wrote:
 *       /firearms /evidence /items /scans /hits /audit   tables (chunked shuffle+deflate+fletcher32
 *                    1-D compound datasets, structs below; units in each "units" attribute)
 *       /scans_x3p/<scan id>                              original X3P bytes (uint8)
 *       /features/<kind>/index, /features/<kind>/data     index rows point (offset/count, local to
 *                    the segment) into one float32 array (micrometres)
 *       /keys/firearms /keys/evidence /keys/scans         (hash, id) of every row of the segment's
 *                    table, sorted by hash (64-bit FNV-1a of the serial; of case_no, 0x1f, item; of
 *                    the SHA-256): the ingest's duplicate checks read these, not the tables.
 *                    Segments written before them have none (those tables are then loaded whole,
 *                    as before; bfm compact --all writes them)
 *   STORE.lock       the writer lock (flock; opened with O_NOFOLLOW, so a symlink is refused)
 *   STORE.tmp        the next manifest while it is written (a stale one is removed)
 * Reading: the tables are the segments' rows in manifest order where a later row with the same
 * id supersedes an earlier one (a hit review or an item marked searched appends the new row;
 * ids are dense 1..N). Audit rows only append. Feature rows only append; bf_feat_row.offset seen
 * through this API is global: into the concatenation of the kind's data over the segments in
 * manifest order.
 *
 * Transactions and crash safety: a writer takes an exclusive flock() on STORE.lock (a second
 * writer gets BF_ELOCKED at once). bf_store_begin creates a new segment; X3P bytes and feature
 * values go into it as they come, table rows at commit. Commit closes and fsyncs the segment,
 * fsyncs STORE.d, writes STORE.tmp listing the old segments plus the new one, fsyncs it and
 * renames it over STORE (the commit point), then fsyncs the folder. A commit therefore costs
 * what it writes plus one manifest row per segment, never a copy of what is stored. kill -9 at
 * any moment leaves the old or the new manifest; a segment no manifest lists (a crashed
 * transaction or compaction) is deleted by the next writer.
 *
 * Readers never wait: a reader reads the manifest and opens every segment it lists (one
 * consistent snapshot) and keeps them open. Compaction (bf_store_compact) writes merged segments,
 * commits a manifest without the merged ones and only then unlinks them: a reader holding them
 * keeps reading its snapshot (POSIX keeps an unlinked open file), and a reader that read the old
 * manifest but finds a segment gone re-reads the manifest.
 *
 * What a command reads: opening reads no table. A record is read one row at a time (the row's
 * chunk in the segment that holds its last version) until something needs a whole table (a
 * search's item list, a hit query); a writer adds and changes rows and appends features without
 * reading any table or feature index, so one `bfm firearm add` or `bfm review` costs what it
 * writes plus the key lists and one chunk per record, whatever the store holds.
 *
 * Hot data: a kind added with bf_store_add_kind(st, kind, 0) is stored without shuffle/deflate
 * (Fletcher-32 stays), so a search that streams it whole (prefilter descriptors "cartridge-pf",
 * "bullet-pf"; screen-resolution surfaces, e.g. "cartridge-screen") never inflates full
 * features; after compaction each such kind is one contiguous dataset per segment.
 * HDF5 is not thread-safe here: use a bf_store from one thread at a time. */
#ifndef BF_STORE_H
#define BF_STORE_H

#include "bf_feature.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BF_STORE_SCHEMA 2
/* bfm info says compaction is due when this many segments are smaller than the small size. */
#define BF_STORE_SMALL_SEGMENT (64ll << 20)
#define BF_STORE_COMPACT_DUE 16

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
  double log10_lr; /* calibrated evidence: log10 likelihood ratio; NAN when not computed (set it:
                      a zeroed bf_hit means LR 1) */
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

/* Lookups (in-memory tables, valid until the next write call or close). A table is read on
 * first use; a record asked for by id (item, firearm, evidence, scan) while its table is not
 * loaded is read alone (one chunk; what a match printing 10 candidates needs), and the by-serial
 * and by-case lookups use the segments' key lists; the whole table is read by the calls that
 * list it (bf_store_items, bf_store_firearms, ...). The pointer-returning lookups return NULL / 0 both for "absent" and when a table
 * could not be read: call bf_store_load (all at once) or bf_store_error (after the fact), or
 * use the int-returning bf_store_get_* below, to tell the two apart. */
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

/* 0, or the first table/feature index that failed to load since open (sticky; the message,
 * set again by this call, names the store, the segment and the dataset). */
int bf_store_error(const bf_store *st);
/* Loads every table and feature index now; returns the first failure (BF_ECHECKSUM,
 * BF_EFORMAT, ...) naming segment and dataset. A command that must not work on a damaged store
 * calls it after open. */
int bf_store_load(bf_store *st);
/* Record by id: 0 and *out, BF_ENOTFOUND when absent, or the table's load error. */
int bf_store_get_item(const bf_store *st, int64_t id, const bf_item **out);
int bf_store_get_firearm(const bf_store *st, int64_t id, const bf_firearm **out);
int bf_store_get_evidence(const bf_store *st, int64_t id, const bf_evidence **out);
int bf_store_get_scan(const bf_store *st, int64_t id, const bf_scan_rec **out);

/* Features. The index of a kind (rows in storage order; an item's rows are consecutive, bullet
 * lands in land order); *n = 0 and NULL when the kind has none. */
int bf_store_feature_index(bf_store *st, const char *kind, const bf_feat_row **rows, size_t *n);
/* All features of one item of a kind, in order; free with bf_store_features_free. */
int bf_store_get_features(bf_store *st, const char *kind, int64_t item, bf_feature ***out, int *n);
/* Frees an array of n features as bf_store_get_features returns it (NULL: no-op). */
void bf_store_features_free(bf_feature **f, int n);
/* Index rows [first, first+n) of a kind as features, with ONE read per segment of their data:
 * the way to stream the store. out must hold n pointers; caller frees each. A value chunk that
 * fails its checksum is BF_ECHECKSUM, the message naming the item(s), segment and dataset: a
 * search must report it (stderr) and exit non-zero, not skip the candidate silently. */
int bf_store_read_block(bf_store *st, const char *kind, size_t first, size_t n, bf_feature **out);
/* The values of index rows [first, first+n) of a kind whose rows hold len values each (search
 * descriptors), row i at dst + i * len: one read per segment, straight into dst when the rows
 * lie one after the other (no feature made per row). A row of another count is zeroed and
 * ok[i] = 0 (ok may be NULL). Errors as bf_store_read_block. */
int bf_store_read_values(bf_store *st, const char *kind, size_t first, size_t n, size_t len, float *dst,
                         unsigned char *ok);
/* A kind's storage: compressed (0 = plain hot data), rows, values. BF_ENOTFOUND if absent. */
int bf_store_kind_info(bf_store *st, const char *kind, int *compressed, size_t *nrows, int64_t *nvalues);

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

/* What bfm info shows about the storage. */
typedef struct bf_store_stats {
  int schema;
  int64_t generation;      /* commits since creation or upgrade */
  int segments, small_segments;
  int compaction_due;      /* small_segments >= BF_STORE_COMPACT_DUE */
  int64_t bytes;           /* manifest + live segments */
  int64_t superseded_rows; /* table rows a compaction would drop */
  int64_t audit_rows;
  int unkeyed_segments;    /* segments without key lists (written by an older bfm): ingest loads
                              tables whole until `bfm compact --all` rewrites them */
} bf_store_stats;
/* Fills s; returns 0 or the first table load error (the counts are then partial). */
int bf_store_stats_get(bf_store *st, bf_store_stats *s);

/* Compaction: merges every run of consecutive segments smaller than target_bytes (all of them
 * with all = 1) into one segment, keeping the last version of each row, copying originals and
 * features unchanged; takes the writer lock (BF_ELOCKED if held), readers go on. */
typedef struct bf_store_compact_opts {
  int64_t target_bytes;
  int all;
  const char *user; /* audit; NULL = login name */
  void (*progress)(void *ctx, int first, int end, int nseg);
  void *ctx;
} bf_store_compact_opts;
#define BF_STORE_COMPACT_OPTS_INIT {.target_bytes = 1ll << 30, .all = 0, .user = NULL, .progress = NULL, .ctx = NULL}
typedef struct bf_store_compact_result {
  int segments_before, segments_after;
  int64_t bytes_read, bytes_written, rows_dropped;
  double seconds;
} bf_store_compact_result;
int bf_store_compact(const char *path, const bf_store_compact_opts *opts, bf_store_compact_result *res);

/* Converts a schema 1 store (one HDF5 file) in place: the file becomes segment 1 byte for byte
 * except /hits, rewritten with log10_lr = NaN; then the manifest replaces it (rename). A crash
 * leaves the schema 1 store. BF_EEXIST if already current. */
int bf_store_upgrade(const char *path, const char *user);

/* ISO 8601 UTC now, for records. */
void bf_store_now(char out[32]);

#endif
