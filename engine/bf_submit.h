/* Submitting items to a store: the one use case behind `bfm firearm add`, `bfm evidence add`
 * and `bfm ingest` (and any other front end).
 *
 * A submission is one firearm record (a manufacture-time test fire) or one evidence record
 * (a crime-scene item) plus the scans of ONE item (a cartridge case, or a bullet's lands; see
 * bf_scanset.h for how they are numbered). bf_submit, inside the caller's write transaction:
 *   1. checks the record (required fields; no control characters, valid UTF-8; an evidence
 *      case/item not stored yet; a stored serial whose make/model/calibre would change is
 *      refused naming the fields),
 *   2. reads each file ONCE into memory, hashes it (SHA-256), refuses a duplicate (stored, or
 *      twice in the submission), decodes the X3P from those bytes and extracts the feature,
 *   3. builds the search descriptor (bf_prefilter.h) from the features in memory,
 *   4. writes the record (or finds the stored firearm), the item, each scan's original bytes,
 *      its feature and the item's descriptor.
 * Steps 1-3 write nothing: a failure there (bad input, duplicate, unreadable scan, out of
 * memory) leaves the transaction as it was (res->dirty = 0) and the caller may go on with it.
 * A failure in step 4 (disk, HDF5) leaves it partly written (res->dirty = 1): abort it. */
#ifndef BF_SUBMIT_H
#define BF_SUBMIT_H

#include "bf_prefilter.h"
#include "bf_scanset.h"
#include "bf_store.h"

typedef struct bf_submission {
  int type;             /* BF_OWNER_FIREARM or BF_OWNER_EVIDENCE */
  int kind;             /* BF_KIND_*; 0: a bullet when more than one scan, else told by the
                           first scan's shape (bf_scanset_guess_kind) */
  bf_firearm firearm;   /* type firearm: serial required. A stored serial gets the new item */
  bf_evidence evidence; /* type evidence: case_no and item required (kind is set by submit) */
  char calibre[32];     /* the item's (and a new record's) calibre; a firearm already stored
                           lends its own when this is empty */
  bf_scanset scans;     /* numbered (bf_scanset_number / bf_scanset_build) */
} bf_submission;

/* Frees the submission's scan list (the records are plain values). */
void bf_submission_clear(bf_submission *s);
/* Sets a record field by its name ("serial", "export_date" or "export-date", "case", "calibre",
 * ...: the manifest's columns, the command line's --options) for the submission's type.
 * BF_ENOTFOUND: no such field for this type; BF_ELIMIT: value too long (names the field). */
int bf_submission_set(bf_submission *s, const char *name, const char *value);

typedef struct bf_submit_opts {
  const bf_prefilter *pf; /* makes the descriptors; NULL: one is made (and freed) per call */
} bf_submit_opts;
#define BF_SUBMIT_OPTS_INIT {.pf = NULL}

typedef struct bf_submit_result {
  int64_t owner;  /* firearm or evidence id */
  int owner_new;  /* 1 when the record was added, 0 when the firearm was stored already */
  int64_t item;
  int kind, nscans;
  int indexed;    /* 1 when the search descriptor was stored (0: the scan is too poor) */
  int dirty;      /* on failure: 1 when the transaction holds partial writes (abort it) */
} bf_submit_result;

int bf_submit(bf_store *st, const bf_submission *sub, const bf_submit_opts *o,
              bf_submit_result *res);

/* Checks a record's text fields for what a front end must never store: invalid UTF-8 and
 * control characters (a line break in a serial fabricates report lines). Names the field. */
int bf_submit_check_record(const bf_submission *sub);

/* ---- several submissions in one transaction (the command line's `firearm add A B C`) ---- */

typedef struct bf_submit_event {
  int index;            /* which submission (0-based) */
  int rc;               /* 0 stored, else BF_E* */
  const char *message;  /* rc != 0: what was wrong (names the file or field) */
  const bf_submit_result *res; /* rc == 0 */
} bf_submit_event;
typedef void (*bf_submit_event_fn)(void *ctx, const bf_submit_event *ev);

typedef struct bf_submit_many_opts {
  int all_or_nothing;      /* 1: one refused submission stores none; 0: the others are kept */
  bf_submit_event_fn event; /* called per submission once the outcome is known (may be NULL);
                              stored ones only after the commit */
  void *ctx;
} bf_submit_many_opts;
#define BF_SUBMIT_MANY_OPTS_INIT {.all_or_nothing = 0, .event = NULL, .ctx = NULL}

/* Opens a transaction, submits each, commits. Returns 0 when all were stored; BF_EINVAL-family
 * code of the last refusal when some were refused (the others kept unless all_or_nothing); an
 * error with nothing stored when none could be, or the write/commit failed. *stored counts. */
int bf_submit_many(bf_store *st, const bf_submission *subs, int n, const bf_submit_many_opts *o,
                   int *stored);

/* ---- manifests (CSV, documented in README "Manifest") and the ingest driver ---- */

typedef struct bf_manifest bf_manifest;
/* Parses a manifest file: header, RFC 4180 fields, '#' comments, a UTF-8 BOM. A malformed
 * file (unterminated quote, unknown column, no type/scans column) fails as a whole; row-level
 * problems (NUL byte, invalid UTF-8, bad field) are kept per row and reported by ingest. */
int bf_manifest_read(bf_manifest **out, const char *path);
/* The same from text in memory; dir resolves relative scan paths (NULL: as given). */
int bf_manifest_parse(bf_manifest **out, const char *text, size_t len, const char *name,
                      const char *dir);
void bf_manifest_free(bf_manifest *m);
int bf_manifest_nrows(const bf_manifest *m);          /* data rows */
int bf_manifest_line(const bf_manifest *m, int row);  /* line of data row (0-based) */
/* Data row as a submission (the scans listed and numbered; a `lands` column gives the land
 * numbers explicitly). Fails naming the column when the row is malformed. Clear sub after. */
int bf_manifest_row(const bf_manifest *m, int row, bf_submission *sub);

enum { BF_INGEST_STORED = 0, BF_INGEST_FAILED = 1 };
typedef struct bf_ingest_event {
  int row, line;        /* 1-based data row, manifest line */
  int status;           /* BF_INGEST_* */
  int rc;               /* failed: BF_E* (BF_EEXIST for duplicates) */
  const char *message;  /* failed: "manifest.csv:LINE: what was wrong" */
  int64_t item;         /* stored: */
  int kind, nscans;
} bf_ingest_event;
typedef void (*bf_ingest_event_fn)(void *ctx, const bf_ingest_event *ev);
typedef void (*bf_ingest_progress_fn)(void *ctx, int done, int total);

typedef struct bf_ingest_opts {
  int commit_every;   /* rows per transaction; 0: automatic (every row while the store is
                         under 256 MB, else every 100 rows or 10 s of pending work) */
  double max_wait;    /* seconds a group may stay open (automatic: see above); 0 = no limit */
  bf_ingest_event_fn event;       /* per row, stored rows only once committed (may be NULL) */
  bf_ingest_progress_fn progress; /* after each row (may be NULL) */
  void *ctx;
} bf_ingest_opts;
#define BF_INGEST_OPTS_INIT {.commit_every = 0, .max_wait = 0, .event = NULL, .progress = NULL, .ctx = NULL}

typedef struct bf_ingest_stats {
  int rows, stored, failed, duplicates, scans;
} bf_ingest_stats;

/* Submits every row, committing every commit_every rows. A refused row is reported and
 * skipped; a failed write or commit rolls back the open group (its rows reported). Returns 0
 * when every row was stored, BF_EINVAL when some were not, or the error that stopped it. */
int bf_ingest_run(bf_store *st, const bf_manifest *m, const bf_ingest_opts *o,
                  bf_ingest_stats *stats);

#endif
