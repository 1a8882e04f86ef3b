/* Store commands: bfm init, firearm add, evidence add, ingest, verify, export (and the store
 * half of bfm info).
 *
 * Manifest CSV for `bfm ingest STORE manifest.csv` (one row per item):
 *   The first row names the columns (any order, case-insensitive; unknown columns are an error,
 *   missing ones are empty). Fields follow RFC 4180: a field with commas, quotes or line breaks
 *   is quoted, a quote inside is doubled. Lines starting with '#' are comments.
 *   type            firearm | evidence (required)
 *   kind            cartridge | bullet (guessed from the first scan when empty)
 *   scans           the item's scans, separated by ';', relative to the manifest's folder:
 *                   one X3P for a cartridge case; a bullet's land scans in land order (1..N), or
 *                   one folder holding them (sorted by name)
 *   calibre         the firearm's, or the evidence item's
 *   firearm rows:   serial (required), make, manufacturer, model, country, manufactured,
 *                   markings, testfire_date, test_lab, export_date, export_country,
 *                   import_country, transit (countries separated by ';'), consignee.
 *                   A row whose serial is already stored adds a test-fired item to that firearm.
 *   evidence rows:  case, item (both required), agency, date, place, lab, notes.
 *   Dates are ISO 8601 (YYYY-MM-DD).
 * Each row is checked, read, hashed and its features extracted BEFORE anything is written; a
 * row that fails (missing file, unreadable scan, failed extraction, duplicate SHA-256, bad
 * field) is reported as "manifest.csv:LINE: ..." and skipped, the other rows go on. Rows are
 * committed every --commit-every N rows; by default every row while the store is under 256 MB,
 * beyond that every 100 rows or 10 s of pending work (a commit copies the store file, see
 * bf_store.h). "row N: stored ..." is printed only once the row is committed, so a killed
 * ingest never claims an item it did not keep.
 * Exit status: 0 when every row was stored, 1 when any row was not (or the store failed), 2 for
 * a usage error. */
#define _GNU_SOURCE
#include "bf_error.h"
#include "bf_hash.h"
#include "bf_search.h"
#include "bf_store.h"
#include "bf_out.h"
#include "bf_text.h"
#include "bf_x3p.h"
#include "bfm_cli.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXSCANS 64

/* ---- one item ready to be written: everything read and extracted up front ---- */

typedef struct prepared {
  int kind, nscans;
  char *paths[MAXSCANS];
  uint8_t *bytes[MAXSCANS];
  size_t nbytes[MAXSCANS];
  bf_surface *surf[MAXSCANS];
  bf_feature *feat[MAXSCANS];
} prepared;

static void prep_free(prepared *p)
{
  for (int i = 0; i < p->nscans; i++) {
    free(p->paths[i]);
    free(p->bytes[i]);
    bf_surface_free(p->surf[i]);
    bf_feature_free(p->feat[i]);
  }
  memset(p, 0, sizeof *p);
}

static int read_all(const char *path, uint8_t **out, size_t *n)
{
  *out = NULL;
  *n = 0;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not hang (nor the lock) */
  FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
  if (!f) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    return bf_error_set(e == ENOENT ? BF_ENOTFOUND : BF_EIO, "%s: %s", path, strerror(e));
  }
  int rc = 0;
  struct stat sb;
  if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode)) {
    rc = bf_error_set(BF_EINVAL, "%s: not a regular file", path);
    goto done;
  }
  if (sb.st_size > (1L << 31)) {
    rc = bf_error_set(BF_ELIMIT, "%s: %lld bytes is larger than a scan may be", path, (long long)sb.st_size);
    goto done;
  }
  if (!(*out = malloc(sb.st_size ? (size_t)sb.st_size : 1))) {
    rc = bf_error_set(BF_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  if (fread(*out, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
    rc = bf_error_set(BF_EIO, "%s: read failed", path);
    goto done;
  }
  *n = (size_t)sb.st_size;
done:
  fclose(f);
  if (rc) {
    free(*out);
    *out = NULL;
  }
  return rc;
}

/* Commits the open transaction after describing every new item for the search prefilter, so
 * an item is searchable by `bfm match` as soon as it is stored (not only after a batch). */
static int commit_indexed(bf_store *st)
{
  bf_prefilter *pf = NULL;
  int e = bf_prefilter_new(&pf, NULL);
  for (int kind = BF_KIND_CARTRIDGE; kind <= BF_KIND_BULLET && !e; kind++) {
    size_t added = 0, failed = 0;
    e = bf_search_store_index(st, pf, kind, &added, &failed);
  }
  bf_prefilter_free(pf);
  return e ? e : bf_store_commit(st);
}

static int cmp_ver(const void *a, const void *b)
{
  return strverscmp(*(char *const *)a, *(char *const *)b);
}

/* Adds path (a scan, or a folder of land scans) to p's list. */
static int add_path(prepared *p, const char *path)
{
  struct stat sb;
  if (stat(path, &sb))
    return bf_error_set(BF_ENOTFOUND, "%s: no such file or folder", path);
  if (!S_ISDIR(sb.st_mode)) {
    if (p->nscans == MAXSCANS)
      return bf_error_set(BF_ELIMIT, "%s: more than %d scans in one item", path, MAXSCANS);
    if (!(p->paths[p->nscans] = strdup(path)))
      return bf_error_set(BF_ENOMEM, "out of memory");
    p->nscans++;
    return 0;
  }
  DIR *d = opendir(path);
  if (!d)
    return bf_error_set(BF_EIO, "%s: cannot list the folder", path);
  char *names[MAXSCANS + 1];
  int n = 0, rc = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (l < 5 || strcasecmp(e->d_name + l - 4, ".x3p"))
      continue;
    if (n == MAXSCANS) {
      rc = bf_error_set(BF_ELIMIT, "%s: more than %d scans", path, MAXSCANS);
      break;
    }
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  if (!rc && !n)
    rc = bf_error_set(BF_ENOTFOUND, "%s: folder holds no .x3p scans", path);
  qsort(names, n, sizeof *names, cmp_ver);
  for (int i = 0; i < n; i++) {
    if (!rc) {
      char full[8192];
      snprintf(full, sizeof full, "%s/%s", path, names[i]);
      rc = add_path(p, full);
    }
    free(names[i]);
  }
  return rc;
}

/* Reads, hashes and extracts every scan of p. Duplicates (already stored, or twice in this
 * item, or in `others` of the same uncommitted transaction) are BF_EEXIST. */
static int prepare(bf_store *st, prepared *p, int kind)
{
  int rc = 0;
  if (!p->nscans)
    return bf_error_set(BF_EINVAL, "no scan given for the item");
  if (!kind)
    kind = bfm_guess_kind(p->paths[0]);
  if (!kind)
    return BF_EFORMAT; /* bfm_guess_kind left the reader's message (file and problem) */
  if (kind == BF_KIND_CARTRIDGE && p->nscans != 1)
    return bf_error_set(BF_EINVAL, "a cartridge case is one scan, %d given (%s ...)", p->nscans, p->paths[0]);
  p->kind = kind;
  for (int i = 0; i < p->nscans && !rc; i++) {
    const char *path = p->paths[i];
    if ((rc = read_all(path, &p->bytes[i], &p->nbytes[i])))
      break;
    uint8_t h[32];
    char hex[72];
    int64_t prev;
    bf_sha256(h, p->bytes[i], p->nbytes[i]);
    bf_hex(hex, h, 32);
    if (!bf_store_find_sha256(st, hex, &prev)) {
      const bf_scan_rec *o = &bf_store_scans(st)[prev - 1];
      rc = bf_error_set(BF_EEXIST, "%s: duplicate: already stored as scan %lld (%s) of item %lld",
                        path, (long long)prev, o->name, (long long)o->item);
      break;
    }
    for (int j = 0; j < i; j++)
      if (p->nbytes[j] == p->nbytes[i] && !memcmp(p->bytes[j], p->bytes[i], p->nbytes[i]))
        rc = bf_error_set(BF_EEXIST, "%s: duplicate: the same file as %s in this item", path, p->paths[j]);
    if (rc)
      break;
    if ((rc = bf_x3p_read_mem(&p->surf[i], p->bytes[i], p->nbytes[i], path, NULL)))
      break;
    if ((rc = bf_feature_extract(&p->feat[i], p->surf[i], kind, kind == BF_KIND_BULLET ? i + 1 : 0))) {
      bf_error_prefix(rc, "%s: feature extraction failed: ", path);
      break;
    }
  }
  return rc;
}

static const char *base_name(const char *path)
{
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* Writes a prepared item (inside a transaction). */
static int write_item(bf_store *st, const prepared *p, const char *calibre, int owner_type,
                      int64_t owner, int64_t *item)
{
  int rc = bf_store_add_item(st, item, p->kind, calibre, owner_type, owner);
  for (int i = 0; i < p->nscans && !rc; i++) {
    int64_t sid = 0;
    int land = p->kind == BF_KIND_BULLET ? i + 1 : 0;
    if (!(rc = bf_store_add_scan(st, &sid, *item, land, p->bytes[i], p->nbytes[i], base_name(p->paths[i]),
                                 p->surf[i])))
      rc = bf_store_put_feature(st, bf_kind_name(p->kind), *item, sid, p->feat[i]);
  }
  return rc;
}

/* ---- options table for the record fields ---- */

typedef struct opt {
  const char *name; /* --name and the manifest column */
  size_t off, size;
  int rec; /* 1 firearm, 2 evidence, 3 both (calibre) */
} opt;

#define OF(m) offsetof(bf_firearm, m), sizeof(((bf_firearm *)0)->m), 1
#define OE(m) offsetof(bf_evidence, m), sizeof(((bf_evidence *)0)->m), 2
static const opt opts[] = {
  {"serial", OF(serial)}, {"make", OF(make)}, {"manufacturer", OF(manufacturer)},
  {"model", OF(model)}, {"country", OF(country)}, {"manufactured", OF(manufactured)},
  {"markings", OF(markings)}, {"testfire_date", OF(testfire_date)}, {"test_lab", OF(test_lab)},
  {"export_date", OF(export_date)}, {"export_country", OF(export_country)},
  {"import_country", OF(import_country)}, {"transit", OF(transit)}, {"consignee", OF(consignee)},
  {"case", OE(case_no)}, {"agency", OE(agency)}, {"item", OE(item)}, {"date", OE(date)},
  {"place", OE(place)}, {"lab", OE(lab)}, {"notes", OE(notes)},
};
static const int nopts = sizeof opts / sizeof opts[0];

/* "--export-date" or "export_date" -> the field; NULL when unknown. */
static const opt *find_opt(const char *name, int rec)
{
  char n[64];
  snprintf(n, sizeof n, "%s", name);
  for (char *c = n; *c; c++)
    *c = *c == '-' ? '_' : (char)tolower((unsigned char)*c);
  if (!strcmp(n, "export"))
    snprintf(n, sizeof n, "export_date");
  for (int i = 0; i < nopts; i++)
    if (!strcmp(opts[i].name, n) && (opts[i].rec & rec))
      return &opts[i];
  return NULL;
}

static int set_field(void *rec, const opt *o, const char *val, const char *where)
{
  if (strlen(val) >= o->size)
    return bf_error_set(BF_ELIMIT, "%s: %s is longer than %zu characters", where, o->name, o->size - 1);
  memcpy((char *)rec + o->off, val, strlen(val) + 1);
  return 0;
}

static const char *arg_user(int argc, char **argv)
{
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--user"))
      return argv[i + 1];
  return NULL;
}

/* ---- bfm init ---- */

int bfm_cmd_init(int argc, char **argv)
{
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--user") && i + 1 < argc)
      i++;
    else if (argv[i][0] == '-')
      return bfm_usage_error("init", "unknown option %s", argv[i]);
    else if (path)
      return bfm_usage_error("init", "one store at a time");
    else
      path = argv[i];
  }
  if (!path)
    return bfm_usage_error("init", "no store path given");
  if (bf_store_create(path, arg_user(argc, argv)))
    return bfm_fail("init");
  printf("created store %s (schema %d)\n", path, BF_STORE_SCHEMA);
  return BFM_EXIT_OK;
}

/* ---- bfm firearm add / bfm evidence add ---- */

static int record_add(int argc, char **argv, int rec)
{
  const char *cmd = rec == 1 ? "firearm" : "evidence";
  if (argc < 2 || strcmp(argv[1], "add"))
    return bfm_usage_error(cmd, "expected `bfm %s add STORE ...`", cmd);
  bf_firearm fa = {0};
  bf_evidence ev = {0};
  char calibre[32] = "";
  const char *path = NULL, *user = NULL;
  int kind = 0, nops = 0, rc = BFM_EXIT_OK;
  char **ops = calloc((size_t)argc, sizeof *ops);
  bf_store *st = NULL;
  prepared *items = NULL;
  if (!ops)
    return bfm_usage_error(cmd, "out of memory");
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] == '-' && a[1] == '-') {
      if (i + 1 >= argc) {
        rc = bfm_usage_error(cmd, "%s needs a value", a);
        goto done;
      }
      const char *v = argv[++i];
      const opt *o;
      if (!strcmp(a, "--user"))
        user = v;
      else if (!strcmp(a, "--kind")) {
        if (!(kind = bfm_parse_kind(v))) {
          rc = bfm_usage_error(cmd, "--kind must be cartridge or bullet, not '%s'", v);
          goto done;
        }
      } else if (!strcmp(a, "--calibre") || !strcmp(a, "--caliber"))
        snprintf(calibre, sizeof calibre, "%s", v);
      else if ((o = find_opt(a + 2, rec))) {
        if (set_field(rec == 1 ? (void *)&fa : (void *)&ev, o, v, a)) {
          rc = bfm_usage_error(cmd, "%s", bf_error_last());
          goto done;
        }
      } else {
        rc = bfm_usage_error(cmd, "unknown option %s", a);
        goto done;
      }
    } else if (!path)
      path = a;
    else
      ops[nops++] = argv[i];
  }
  if (!path) {
    rc = bfm_usage_error(cmd, "no store given");
    goto done;
  }
  if (rec == 1 && !fa.serial[0]) {
    rc = bfm_usage_error(cmd, "--serial is required");
    goto done;
  }
  if (rec == 2 && (!ev.case_no[0] || !ev.item[0] || !kind)) {
    rc = bfm_usage_error(cmd, "--case, --item and --kind are required");
    goto done;
  }
  if (!nops) {
    rc = bfm_usage_error(cmd, "no scan given");
    goto done;
  }
  if (bf_store_open(&st, path, BF_STORE_WRITE, user)) {
    rc = bfm_fail(cmd);
    goto done;
  }
  /* firearm: each operand is one item (a case scan, a bullet folder or a comma list of lands);
   * evidence: all operands are the one item's scans (a bullet's lands in order) */
  int nitems = rec == 1 ? nops : 1, failed = 0, ok = 0;
  items = calloc((size_t)nitems, sizeof *items);
  if (!items) {
    rc = bfm_usage_error(cmd, "out of memory");
    goto done;
  }
  for (int k = 0; k < nitems; k++) {
    int e = 0;
    if (rec == 1) {
      char *list = strdup(ops[k]), *save = NULL;
      for (char *t = strtok_r(list, ",", &save); t && !e; t = strtok_r(NULL, ",", &save))
        e = add_path(&items[k], t);
      free(list);
    } else
      for (int j = 0; j < nops && !e; j++)
        e = add_path(&items[k], ops[j]);
    int kk = kind;
    if (!e && rec == 1 && !kk && (strchr(ops[k], ',') || items[k].nscans > 1))
      kk = BF_KIND_BULLET;
    if (!e)
      e = prepare(st, &items[k], kk);
    for (int j = 0; !e && j < k; j++) /* the same file twice on one command line */
      for (int a = 0; a < items[j].nscans && !e; a++)
        for (int b = 0; b < items[k].nscans && !e; b++)
          if (items[j].nbytes[a] == items[k].nbytes[b] &&
              !memcmp(items[j].bytes[a], items[k].bytes[b], items[k].nbytes[b]))
            e = bf_error_set(BF_EEXIST, "%s: duplicate of %s on this command line", items[k].paths[b],
                             items[j].paths[a]);
    if (e) {
      fprintf(stderr, "bfm %s add: %s%s\n", cmd, bf_error_last(), rec == 1 ? " (item skipped)" : "");
      prep_free(&items[k]);
      failed++;
    }
  }
  if (failed == nitems) {
    fprintf(stderr, "bfm %s add: nothing stored\n", cmd);
    rc = BFM_EXIT_FAIL;
    goto done;
  }
  int64_t owner = 0, item = 0;
  if (bf_store_begin(st)) {
    rc = bfm_fail(cmd);
    goto done;
  }
  int e = 0;
  if (rec == 1) {
    snprintf(fa.calibre, sizeof fa.calibre, "%s", calibre);
    const bf_firearm *old = bf_store_firearm_by_serial(st, fa.serial);
    if (old) {
      owner = old->id;
      if (!calibre[0])
        snprintf(calibre, sizeof calibre, "%s", old->calibre);
      fprintf(stderr, "bfm firearm add: serial %s is firearm %lld already: adding the scans to it\n",
              fa.serial, (long long)owner);
    } else
      e = bf_store_add_firearm(st, &owner, &fa);
  } else {
    snprintf(ev.calibre, sizeof ev.calibre, "%s", calibre);
    ev.kind = kind;
    if (bf_store_evidence_by_case_item(st, ev.case_no, ev.item))
      e = bf_error_set(BF_EEXIST, "case %s item %s is already stored", ev.case_no, ev.item);
    else
      e = bf_store_add_evidence(st, &owner, &ev);
  }
  for (int k = 0; k < nitems && !e; k++)
    if (items[k].nscans) {
      if (!(e = write_item(st, &items[k], calibre, rec == 1 ? BF_OWNER_FIREARM : BF_OWNER_EVIDENCE, owner,
                           &item))) {
        printf("stored item %lld: %s, %d scan(s) of %s %lld\n", (long long)item, bf_kind_name(items[k].kind),
               items[k].nscans, cmd, (long long)owner);
        ok++;
      }
    }
  if (e || commit_indexed(st)) {
    bf_store_abort(st);
    fprintf(stderr, "bfm %s add: %s: nothing stored\n", cmd, bf_error_last());
    rc = BFM_EXIT_FAIL;
    goto done;
  }
  rc = failed ? BFM_EXIT_FAIL : BFM_EXIT_OK;
done:
  if (items)
    for (int k = 0; k < (rec == 1 ? nops : 1); k++)
      prep_free(&items[k]);
  free(items);
  bf_store_close(st);
  free(ops);
  return rc;
}

int bfm_cmd_firearm(int argc, char **argv)
{
  return record_add(argc, argv, 1);
}

int bfm_cmd_evidence(int argc, char **argv)
{
  return record_add(argc, argv, 2);
}

/* ---- CSV ---- */

typedef struct csvrow {
  int line, nf;
  char **f;
} csvrow;

/* Splits a whole CSV text into rows of fields (RFC 4180). */
static int csv_parse(const char *text, size_t len, csvrow **rows, int *nrows, const char *name)
{
  int cap = 0, n = 0, line = 1, rc = 0;
  *rows = NULL;
  size_t i = 0;
  char *buf = malloc(len + 1);
  if (!buf)
    return bf_error_set(BF_ENOMEM, "out of memory");
  while (i < len && !rc) {
    csvrow r = {line, 0, NULL};
    int fcap = 0, end = 0;
    if (text[i] == '#') { /* comment line */
      while (i < len && text[i] != '\n')
        i++;
      i++;
      line++;
      continue;
    }
    while (!end && !rc) {
      size_t b = 0;
      if (i < len && text[i] == '"') {
        i++;
        for (;;) {
          if (i >= len) {
            rc = bf_error_set(BF_EFORMAT, "%s:%d: unterminated quoted field", name, r.line);
            break;
          }
          if (text[i] == '"' && i + 1 < len && text[i + 1] == '"') {
            buf[b++] = '"';
            i += 2;
          } else if (text[i] == '"') {
            i++;
            break;
          } else {
            if (text[i] == '\n')
              line++;
            buf[b++] = text[i++];
          }
        }
        if (!rc && i < len && text[i] != ',' && text[i] != '\n' && text[i] != '\r')
          rc = bf_error_set(BF_EFORMAT, "%s:%d: text after a closing quote", name, r.line);
      } else
        while (i < len && text[i] != ',' && text[i] != '\n' && text[i] != '\r')
          buf[b++] = text[i++];
      buf[b] = 0;
      if (r.nf == fcap) {
        fcap = fcap ? 2 * fcap : 16;
        char **nf = realloc(r.f, fcap * sizeof *nf);
        if (!nf) {
          rc = bf_error_set(BF_ENOMEM, "out of memory");
          break;
        }
        r.f = nf;
      }
      r.f[r.nf++] = strdup(buf);
      if (i < len && text[i] == ',')
        i++;
      else {
        if (i < len && text[i] == '\r')
          i++;
        if (i < len && text[i] == '\n')
          i++;
        line++;
        end = 1;
      }
    }
    int blank = r.nf == 1 && !r.f[0][0];
    if (blank || rc) {
      for (int k = 0; k < r.nf; k++)
        free(r.f[k]);
      free(r.f);
      continue;
    }
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      csvrow *nr = realloc(*rows, cap * sizeof *nr);
      if (!nr) {
        rc = bf_error_set(BF_ENOMEM, "out of memory");
        break;
      }
      *rows = nr;
    }
    (*rows)[n++] = r;
  }
  free(buf);
  *nrows = n;
  return rc;
}

static void csv_free(csvrow *rows, int n)
{
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < rows[i].nf; k++)
      free(rows[i].f[k]);
    free(rows[i].f);
  }
  free(rows);
}

/* ---- bfm ingest ---- */

typedef struct pending {
  int row, line;
  int64_t item;
  int kind, nscans;
} pending;

int bfm_cmd_ingest(int argc, char **argv)
{
  const char *store = NULL, *manifest = NULL, *user = NULL;
  int every = 0, quiet = 0, rc = BFM_EXIT_OK;
  double pend_t0 = 0, max_wait = 1e300;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--user") && i + 1 < argc)
      user = argv[++i];
    else if (!strcmp(argv[i], "--commit-every") && i + 1 < argc) {
      every = atoi(argv[++i]);
      if (every < 1)
        return bfm_usage_error("ingest", "--commit-every needs a count >= 1");
    } else if (!strcmp(argv[i], "--quiet"))
      quiet = 1;
    else if (argv[i][0] == '-')
      return bfm_usage_error("ingest", "unknown option %s", argv[i]);
    else if (!store)
      store = argv[i];
    else if (!manifest)
      manifest = argv[i];
    else
      return bfm_usage_error("ingest", "too many arguments");
  }
  if (!store || !manifest)
    return bfm_usage_error("ingest", "usage: bfm ingest STORE manifest.csv");
  uint8_t *text = NULL;
  size_t tlen = 0;
  csvrow *rows = NULL;
  int nrows = 0, col[64], ncol = 0, ctype = -1, ckind = -1, cscans = -1, ccal = -1;
  bf_store *st = NULL;
  pending *pend = NULL;
  int npend = 0, stored = 0, failed = 0, dups = 0, nscans_total = 0;
  /* Relative scan paths are relative to the manifest's folder. dirname() may return a pointer
   * into its argument, so it works on a copy. */
  char mtmp[4096], mdir[4096];
  snprintf(mtmp, sizeof mtmp, "%s", manifest);
  snprintf(mdir, sizeof mdir, "%s", dirname(mtmp));
  if (read_all(manifest, &text, &tlen) || csv_parse((const char *)text, tlen, &rows, &nrows, manifest)) {
    rc = bfm_fail("ingest");
    goto done;
  }
  if (nrows < 1) {
    rc = bfm_usage_error("ingest", "%s: empty manifest (a header row is required)", manifest);
    goto done;
  }
  /* header: map each column to a record field or a special column */
  ncol = rows[0].nf < 64 ? rows[0].nf : 64;
  for (int c = 0; c < ncol; c++) {
    const char *h = rows[0].f[c];
    col[c] = -1;
    if (!strcasecmp(h, "type"))
      ctype = c;
    else if (!strcasecmp(h, "kind"))
      ckind = c;
    else if (!strcasecmp(h, "scans"))
      cscans = c;
    else if (!strcasecmp(h, "calibre") || !strcasecmp(h, "caliber"))
      ccal = c;
    else {
      const opt *o = find_opt(h, 3);
      if (!o) {
        rc = bfm_usage_error("ingest", "%s:%d: unknown column '%s'", manifest, rows[0].line, h);
        goto done;
      }
      col[c] = (int)(o - opts);
    }
  }
  if (ctype < 0 || cscans < 0) {
    rc = bfm_usage_error("ingest", "%s: the header needs at least the columns type and scans", manifest);
    goto done;
  }
  if (bf_store_open(&st, store, BF_STORE_WRITE, user)) {
    rc = bfm_fail("ingest");
    goto done;
  }
  if (!every) { /* automatic grouping: keep the copy cost of commits small against the work */
    struct stat sb;
    int big = !stat(store, &sb) && sb.st_size > (256L << 20);
    every = big ? 100 : 1;
    max_wait = big ? 10.0 : 1e300;
  }
  if (!(pend = calloc((size_t)nrows, sizeof *pend))) {
    rc = bfm_fail("ingest");
    goto done;
  }
  bfm_progress prog;
  bfm_progress_start(&prog, "ingest", nrows - 1);
  for (int r = 1; r < nrows; r++) {
    const csvrow *row = &rows[r];
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", manifest, row->line);
    prepared p = {0};
    bf_firearm fa = {0};
    bf_evidence ev = {0};
    int e = 0, type = 0, kind = 0;
    const char *cal = ccal >= 0 && ccal < row->nf ? row->f[ccal] : "";
    const char *tf = ctype < row->nf ? row->f[ctype] : "";
    if (row->nf > ncol)
      e = bf_error_set(BF_EFORMAT, "%d fields but the header has %d", row->nf, ncol);
    else if (!strcasecmp(tf, "firearm"))
      type = 1;
    else if (!strcasecmp(tf, "evidence"))
      type = 2;
    else
      e = bf_error_set(BF_EFORMAT, "type must be firearm or evidence, not '%s'", tf);
    if (!e && ckind >= 0 && ckind < row->nf && row->f[ckind][0] && !(kind = bfm_parse_kind(row->f[ckind])))
      e = bf_error_set(BF_EFORMAT, "kind must be cartridge or bullet, not '%s'", row->f[ckind]);
    for (int c = 0; c < row->nf && !e; c++)
      if (col[c] >= 0 && row->f[c][0]) {
        const opt *o = &opts[col[c]];
        if (!(o->rec & type))
          e = bf_error_set(BF_EFORMAT, "column %s does not apply to a %s row", o->name, tf);
        else
          e = set_field(type == 1 ? (void *)&fa : (void *)&ev, o, row->f[c], o->name);
      }
    if (!e && strlen(cal) >= sizeof fa.calibre)
      e = bf_error_set(BF_ELIMIT, "calibre is too long");
    if (!e && type == 1 && !fa.serial[0])
      e = bf_error_set(BF_EFORMAT, "a firearm row needs a serial");
    if (!e && type == 2 && (!ev.case_no[0] || !ev.item[0]))
      e = bf_error_set(BF_EFORMAT, "an evidence row needs case and item");
    if (!e && type == 2 && bf_store_evidence_by_case_item(st, ev.case_no, ev.item))
      e = bf_error_set(BF_EEXIST, "duplicate: case %s item %s is already stored", ev.case_no, ev.item);
    if (!e) {
      const char *sl = cscans < row->nf ? row->f[cscans] : "";
      char *list = strdup(sl), *save = NULL;
      for (char *t = strtok_r(list, ";", &save); t && !e; t = strtok_r(NULL, ";", &save)) {
        while (*t == ' ')
          t++;
        char full[8192];
        if (t[0] == '/')
          snprintf(full, sizeof full, "%s", t);
        else
          snprintf(full, sizeof full, "%s/%s", mdir, t);
        e = add_path(&p, full);
      }
      free(list);
      if (!e && !kind && p.nscans > 1)
        kind = BF_KIND_BULLET;
      if (!e)
        e = prepare(st, &p, kind);
    }
    if (!e) {
      /* write; a write failure (disk full...) aborts the open transaction: rows pending in
       * it are lost with it and reported; the store stays as it was at the last commit */
      int64_t owner = 0, item = 0;
      if (!npend) {
        e = bf_store_begin(st);
        pend_t0 = bfm_now();
      }
      if (!e && type == 1) {
        const bf_firearm *old = bf_store_firearm_by_serial(st, fa.serial);
        snprintf(fa.calibre, sizeof fa.calibre, "%s", cal);
        if (old) {
          owner = old->id;
          if (!cal[0])
            cal = old->calibre;
        } else
          e = bf_store_add_firearm(st, &owner, &fa);
      } else if (!e) {
        snprintf(ev.calibre, sizeof ev.calibre, "%s", cal);
        ev.kind = p.kind;
        e = bf_store_add_evidence(st, &owner, &ev);
      }
      if (!e)
        e = write_item(st, &p, cal, type == 1 ? BF_OWNER_FIREARM : BF_OWNER_EVIDENCE, owner, &item);
      if (!e) {
        pend[npend++] = (pending){r, row->line, item, p.kind, p.nscans};
        int due = npend >= every || r == nrows - 1 || bfm_now() - pend_t0 >= max_wait;
        if (due)
          e = commit_indexed(st);
        if (!e) {
          if (due) {
            if (prog.tty && !quiet)
              fprintf(stderr, "\r\033[K"); /* clear the bar before the stdout lines */
            for (int k = 0; k < npend; k++) {
              if (!quiet)
                printf("row %d: stored item %lld (%s, %d scan(s)) line %d\n", pend[k].row,
                       (long long)pend[k].item, bf_kind_name(pend[k].kind), pend[k].nscans, pend[k].line);
              stored++;
              nscans_total += pend[k].nscans;
            }
            fflush(stdout);
            npend = 0;
          }
        } else {
          for (int k = 0; k < npend; k++)
            if (pend[k].row != r)
              fprintf(stderr, "%s:%d: not stored: the commit of its group failed\n", manifest, pend[k].line);
          failed += npend - 1;
          npend = 0;
        }
      } else {
        for (int k = 0; k < npend; k++)
          fprintf(stderr, "%s:%d: not stored: its group was rolled back\n", manifest, pend[k].line);
        failed += npend;
        npend = 0;
        bf_store_abort(st);
      }
    }
    if (e) {
      if (e == BF_EEXIST)
        dups++;
      failed++;
      if (prog.tty)
        fprintf(stderr, "\n");
      fprintf(stderr, "%s: %s\n", where, bf_error_last());
    }
    prep_free(&p);
    bfm_progress_step(&prog, r);
  }
  if (npend) { /* (the last row failed while earlier rows of its group wait) */
    if (commit_indexed(st)) {
      fprintf(stderr, "bfm ingest: %s\n", bf_error_last());
      failed += npend;
    } else
      for (int k = 0; k < npend; k++) {
        if (!quiet)
          printf("row %d: stored item %lld (%s, %d scan(s)) line %d\n", pend[k].row, (long long)pend[k].item,
                 bf_kind_name(pend[k].kind), pend[k].nscans, pend[k].line);
        stored++;
        nscans_total += pend[k].nscans;
      }
  }
  bfm_progress_end(&prog);
  printf("ingest %s: %d row(s): %d stored (%d scans), %d failed (%d duplicate)\n", manifest, nrows - 1,
         stored, nscans_total, failed, dups);
  rc = failed ? BFM_EXIT_FAIL : BFM_EXIT_OK;
done:
  free(pend);
  bf_store_close(st);
  csv_free(rows, nrows);
  free(text);
  return rc;
}

/* ---- bfm verify ---- */

static void print_problem(void *ctx, const char *p)
{
  (void)ctx;
  printf("  PROBLEM %s\n", p);
}

int bfm_cmd_verify(int argc, char **argv)
{
  if (argc != 2 || argv[1][0] == '-')
    return bfm_usage_error("verify", "usage: bfm verify STORE");
  bf_store *st = NULL;
  if (bf_store_open(&st, argv[1], BF_STORE_READ, NULL))
    return bfm_fail("verify");
  int np = 0;
  printf("%s: checking %zu scan(s) (SHA-256), every table and feature dataset (fletcher32)\n", argv[1],
         bf_store_nscans(st));
  int rc = bf_store_verify(st, print_problem, NULL, &np);
  if (rc)
    printf("%s: %d problem(s)\n", argv[1], np);
  else
    printf("%s: OK (%zu items, %zu scans)\n", argv[1], bf_store_nitems(st), bf_store_nscans(st));
  bf_store_close(st);
  return rc ? BFM_EXIT_FAIL : BFM_EXIT_OK;
}

/* ---- bfm export ---- */

int bfm_cmd_export(int argc, char **argv)
{
  const char *path = NULL, *what = NULL, *fmt = "csv", *outp = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--what") && i + 1 < argc)
      what = argv[++i];
    else if (!strcmp(argv[i], "--format") && i + 1 < argc)
      fmt = argv[++i];
    else if (!strcmp(argv[i], "-o") && i + 1 < argc)
      outp = argv[++i];
    else if (argv[i][0] == '-')
      return bfm_usage_error("export", "unknown option %s", argv[i]);
    else if (!path)
      path = argv[i];
    else
      return bfm_usage_error("export", "too many arguments");
  }
  if (!path || !what)
    return bfm_usage_error("export", "usage: bfm export STORE --what firearms|evidence|hits [--format csv|json]");
  if (strcmp(fmt, "csv") && strcmp(fmt, "json"))
    return bfm_usage_error("export", "--format must be csv or json");
  bf_store *st = NULL;
  bf_out *o = NULL; /* -o: checked (never the store), written to a temporary, renamed when whole */
  if (bf_store_open(&st, path, BF_STORE_READ, NULL))
    return bfm_fail("export");
  int rc = BFM_EXIT_OK;
  if (outp && (bf_out_protect(path) || bf_out_open(&o, outp)))
    rc = bfm_fail("export");
  else if (bf_store_export(st, what, !strcmp(fmt, "json"), o ? bf_out_file(o) : stdout))
    rc = bfm_fail("export");
  else if (o) {
    rc = bf_out_commit(o) ? bfm_fail("export") : BFM_EXIT_OK;
    o = NULL;
  }
  bf_out_abort(o);
  bf_store_close(st);
  return rc;
}

/* ---- bfm info STORE ---- */

int bfm_store_is(const char *path)
{
  static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  uint8_t b[8];
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not hang this */
  struct stat sb;
  if (fd < 0)
    return 0;
  int ok = !fstat(fd, &sb) && S_ISREG(sb.st_mode) && read(fd, b, 8) == 8 && !memcmp(b, sig, 8);
  close(fd);
  return ok;
}

int bfm_store_info(const char *path, int json)
{
  bf_store *st = NULL;
  if (bf_store_open(&st, path, BF_STORE_READ, NULL)) {
    fprintf(stderr, "bfm info: %s\n", bf_error_last());
    return BFM_EXIT_FAIL;
  }
  size_t nk[3] = {0}, nsearched = 0, hs[3] = {0};
  for (size_t i = 0; i < bf_store_nitems(st); i++) {
    const bf_item *it = &bf_store_items(st)[i];
    nk[it->kind == BF_KIND_BULLET ? 2 : 1]++;
    nsearched += it->searched != 0;
  }
  bf_hit *h = NULL;
  size_t nh = 0;
  bf_store_query_hits(st, NULL, &h, &nh);
  for (size_t i = 0; i < nh; i++)
    hs[h[i].status >= 0 && h[i].status <= 2 ? h[i].status : 0]++;
  free(h);
  bf_audit_rec *au = NULL;
  size_t na = 0;
  bf_store_read_audit(st, &au, &na);
  struct stat sb;
  long long fsz = stat(path, &sb) ? -1 : (long long)sb.st_size;
  char kinds[16][48];
  int nkind = bf_store_feature_kinds(st, kinds, 16);
  if (json) {
    printf("{\"store\": ");
    bfm_json_str(stdout, path);
    printf(", \"schema\": %d, \"bytes\": %lld, \"firearms\": %zu, \"evidence\": %zu, \"items\": %zu, "
           "\"cartridge_items\": %zu, \"bullet_items\": %zu, \"searched_items\": %zu, \"scans\": %zu, "
           "\"hits\": %zu, \"confirmed\": %zu, \"rejected\": %zu, \"audit_rows\": %zu, \"features\": {",
           BF_STORE_SCHEMA, fsz, bf_store_nfirearms(st), bf_store_nevidence(st), bf_store_nitems(st), nk[1],
           nk[2], nsearched, bf_store_nscans(st), nh, hs[1], hs[2], na);
    for (int k = 0; k < nkind; k++) {
      const bf_feat_row *r;
      size_t n;
      bf_store_feature_index(st, kinds[k], &r, &n);
      printf("%s\"%s\": %zu", k ? ", " : "", kinds[k], n);
    }
    printf("}}\n");
  } else {
    printf("%s: bfm store, schema %d, %.1f MB\n", path, BF_STORE_SCHEMA, fsz / 1e6);
    printf("  firearms     %zu\n  evidence     %zu\n", bf_store_nfirearms(st), bf_store_nevidence(st));
    printf("  items        %zu (%zu cartridge cases, %zu bullets; %zu searched)\n", bf_store_nitems(st),
           nk[1], nk[2], nsearched);
    printf("  scans        %zu (original X3P kept, SHA-256 recorded)\n", bf_store_nscans(st));
    for (int k = 0; k < nkind; k++) {
      const bf_feat_row *r;
      size_t n;
      bf_store_feature_index(st, kinds[k], &r, &n);
      long long vals = n ? (long long)(r[n - 1].offset + r[n - 1].count) : 0;
      printf("  features     %-10s %zu (%lld values)\n", kinds[k], n, vals);
    }
    printf("  hits         %zu (%zu confirmed, %zu rejected, %zu candidates)\n", nh, hs[1], hs[2], hs[0]);
    char eu[260];
    printf("  audit log    %zu entries%s%s%s%s\n", na, na ? ", last " : "", na ? au[na - 1].time : "",
           na ? " by " : "", bf_text_esc(eu, sizeof eu, na ? au[na - 1].user : ""));
  }
  free(au);
  bf_store_close(st);
  return BFM_EXIT_OK;
}
