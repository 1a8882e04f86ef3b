/* Submitting items (see bf_submit.h). Allocations go through bf_alloc so a test can fail each
 * one in turn and check that the store is left unchanged. */
#define _GNU_SOURCE
#include "bf_submit.h"
#include "bf_file.h"

#include "bf_alloc.h"
#include "bf_error.h"
#include "bf_firingpin.h"
#include "bf_hash.h"
#include "bf_search.h"
#include "bf_x3p.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- record fields by name (one table for manifest columns and command-line options) ---- */

typedef struct field {
  const char *name;
  size_t off, size;
  int type; /* BF_OWNER_FIREARM, BF_OWNER_EVIDENCE, or 3 = the submission's calibre */
  int free_text; /* line breaks and tabs allowed (notes) */
} field;

#define FF(m) offsetof(bf_submission, firearm.m), sizeof(((bf_firearm *)0)->m), BF_OWNER_FIREARM
#define FE(m) offsetof(bf_submission, evidence.m), sizeof(((bf_evidence *)0)->m), BF_OWNER_EVIDENCE
static const field fields[] = {
  {"serial", FF(serial), 0}, {"make", FF(make), 0}, {"manufacturer", FF(manufacturer), 0},
  {"model", FF(model), 0}, {"country", FF(country), 0}, {"manufactured", FF(manufactured), 0},
  {"markings", FF(markings), 0}, {"testfire_date", FF(testfire_date), 0}, {"test_lab", FF(test_lab), 0},
  {"export_date", FF(export_date), 0}, {"export_country", FF(export_country), 0},
  {"import_country", FF(import_country), 0}, {"transit", FF(transit), 0}, {"consignee", FF(consignee), 0},
  {"case", FE(case_no), 0}, {"agency", FE(agency), 0}, {"item", FE(item), 0}, {"date", FE(date), 0},
  {"place", FE(place), 0}, {"lab", FE(lab), 0}, {"notes", FE(notes), 1},
  {"calibre", offsetof(bf_submission, calibre), sizeof(((bf_submission *)0)->calibre), 3, 0},
};
#define NFIELDS ((int)(sizeof fields / sizeof fields[0]))

/* "export-date", "Export_Date", "export", "caliber" -> the field; NULL when unknown. */
static const field *find_field(const char *name)
{
  char n[64];
  snprintf(n, sizeof n, "%s", name);
  for (char *c = n; *c; c++)
    *c = *c == '-' ? '_' : (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
  if (!strcmp(n, "export"))
    snprintf(n, sizeof n, "export_date");
  if (!strcmp(n, "caliber"))
    snprintf(n, sizeof n, "calibre");
  for (int i = 0; i < NFIELDS; i++)
    if (!strcmp(fields[i].name, n))
      return &fields[i];
  return NULL;
}

int bf_submission_set(bf_submission *s, const char *name, const char *value)
{
  const field *f = find_field(name);
  if (!f)
    return bf_error_set(BF_ENOTFOUND, "unknown field '%s'", name);
  if (f->type != 3 && f->type != s->type)
    return bf_error_set(BF_ENOTFOUND, "%s does not apply to a%s record", f->name,
                        s->type == BF_OWNER_FIREARM ? " firearm" : "n evidence");
  size_t len = strlen(value);
  if (len >= f->size)
    return bf_error_set(BF_ELIMIT, "%s is longer than %zu bytes", f->name, f->size - 1);
  memcpy((char *)s + f->off, value, len + 1);
  return 0;
}

void bf_submission_clear(bf_submission *s)
{
  bf_scanset_clear(&s->scans);
}

/* Length of the valid UTF-8 sequence at p (1-4), 0 when invalid (overlongs, surrogates, > U+10FFFF). */
static int utf8_len(const unsigned char *p)
{
  unsigned c = p[0];
  if (c < 0x80)
    return 1;
  int n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (!n || c > 0xf4)
    return 0;
  for (int i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80)
      return 0;
  if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
      (c == 0xf4 && p[1] > 0x8f))
    return 0;
  return n;
}

/* 0 when s is valid UTF-8 without control characters (C0, DEL, C1; free text may hold line
 * breaks and tabs); else BF_EFORMAT naming what and where. */
static int check_text(const char *s, const char *what, int free_text)
{
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; p[i];) {
    int n = utf8_len(p + i);
    if (!n)
      return bf_error_set(BF_EFORMAT, "%s: invalid UTF-8 (byte 0x%02x at offset %zu)", what, p[i], i);
    unsigned cp = n == 1 ? p[i] : n == 2 ? ((p[i] & 0x1fu) << 6 | (p[i + 1] & 0x3fu)) : 0x100;
    int ctl = cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0);
    if (ctl && !(free_text && (cp == '\n' || cp == '\t' || cp == '\r')))
      return bf_error_set(BF_EFORMAT, "%s: control character U+%04X at offset %zu is not allowed", what, cp, i);
    i += (size_t)n;
  }
  return 0;
}

int bf_submit_check_record(const bf_submission *sub)
{
  int rc = 0;
  for (int i = 0; i < NFIELDS && !rc; i++)
    if (fields[i].type == 3 || fields[i].type == sub->type) {
      const char *v = (const char *)sub + fields[i].off;
      if (memchr(v, 0, fields[i].size) == NULL)
        return bf_error_set(BF_EINVAL, "%s is not terminated", fields[i].name);
      rc = check_text(v, fields[i].name, fields[i].free_text);
    }
  if (rc)
    return rc;
  if (sub->type == BF_OWNER_FIREARM && !sub->firearm.serial[0])
    return bf_error_set(BF_EINVAL, "a firearm needs a serial");
  if (sub->type == BF_OWNER_EVIDENCE && (!sub->evidence.case_no[0] || !sub->evidence.item[0]))
    return bf_error_set(BF_EINVAL, "an evidence item needs case and item");
  if (sub->type != BF_OWNER_FIREARM && sub->type != BF_OWNER_EVIDENCE)
    return bf_error_set(BF_EINVAL, "a submission is a firearm or an evidence record (type %d)", sub->type);
  return 0;
}

/* ---- one item, read and extracted before anything is written ---- */

typedef struct prepared {
  int kind, n;
  uint8_t *bytes[BF_SCANSET_MAX];
  size_t nbytes[BF_SCANSET_MAX];
  bf_surface *surf[BF_SCANSET_MAX];
  bf_feature *feat[BF_SCANSET_MAX];
  bf_feature *desc;
  bf_feature *screen; /* the search screen's form (bf_search_screen_surface), NULL: none */
  bf_feature *pin; /* cartridge: the firing-pin impression, NULL when the scan shows none */
} prepared;

static void prep_clear(prepared *p)
{
  for (int i = 0; i < p->n; i++) {
    bf_free(p->bytes[i]);
    bf_surface_free(p->surf[i]);
    bf_feature_free(p->feat[i]);
  }
  bf_feature_free(p->desc);
  bf_feature_free(p->screen);
  bf_feature_free(p->pin);
  memset(p, 0, sizeof *p);
}


static const char *base_name(const char *path)
{
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

/* A stored serial keeps its record: a submission that names another make, model or calibre
 * for it is refused (naming the fields) rather than filed under the first silently. */
static int check_serial(const bf_firearm *old, const bf_submission *sub)
{
  char diff[512] = "";
  const struct {
    const char *name, *now, *was;
  } f[] = {{"make", sub->firearm.make, old->make},
           {"model", sub->firearm.model, old->model},
           {"calibre", sub->calibre, old->calibre}};
  for (int i = 0; i < 3; i++)
    if (f[i].now[0] && f[i].was[0] && strcmp(f[i].now, f[i].was)) {
      size_t l = strlen(diff);
      snprintf(diff + l, sizeof diff - l, "%s%s '%s' (stored: '%s')", l ? ", " : "", f[i].name, f[i].now, f[i].was);
    }
  if (diff[0])
    return bf_error_set(BF_EINVAL, "serial %s is firearm %lld already, with other fields: %s", old->serial,
                        (long long)old->id, diff);
  return 0;
}

/* Steps 1-3 of bf_submit: checks, reads, hashes, extracts and describes; writes nothing. */
static int prepare(bf_store *st, const bf_submission *sub, const bf_prefilter *pf, prepared *p)
{
  int rc = bf_submit_check_record(sub);
  const bf_scanset *ss = &sub->scans;
  memset(p, 0, sizeof *p);
  if (rc)
    return rc;
  if (!ss->n)
    return bf_error_set(BF_EINVAL, "no scan given for the item");
  if (sub->type == BF_OWNER_EVIDENCE &&
      bf_store_evidence_by_case_item(st, sub->evidence.case_no, sub->evidence.item))
    return bf_error_set(BF_EEXIST, "duplicate: case %s item %s is already stored", sub->evidence.case_no,
                        sub->evidence.item);
  if (sub->type == BF_OWNER_FIREARM) {
    const bf_firearm *old = bf_store_firearm_by_serial(st, sub->firearm.serial);
    if (old && (rc = check_serial(old, sub)))
      return rc;
  }
  p->kind = sub->kind ? sub->kind : ss->n > 1 ? BF_KIND_BULLET : 0;
  if (p->kind == BF_KIND_CARTRIDGE && ss->n != 1)
    return bf_error_set(BF_EINVAL, "a cartridge case is one scan, %d given (%s ...)", ss->n, ss->v[0].path);
  for (int i = 0; i < ss->n && !rc; i++) {
    const char *path = ss->v[i].path;
    p->n = i + 1;
    if ((rc = check_text(base_name(path), "scan file name", 0))) { /* it is shown as the scan's name */
      bf_error_prefix(rc, "%s: ", path);
      break;
    }
    if ((rc = bf_file_read(path, BF_X3P_MAX_MEMBER, &p->bytes[i], &p->nbytes[i])))
      break;
    uint8_t h[32];
    char hex[72];
    int64_t prev;
    bf_sha256(h, p->bytes[i], p->nbytes[i]);
    bf_hex(hex, h, 32);
    if (!bf_store_find_sha256(st, hex, &prev)) {
      const bf_scan_rec *o = NULL; /* one row, not the table */
      if (!(rc = bf_store_get_scan(st, prev, &o)))
        rc = bf_error_set(BF_EEXIST, "%s: duplicate: already stored as scan %lld (%s) of item %lld", path,
                          (long long)prev, o->name, (long long)o->item);
      break;
    }
    for (int j = 0; j < i && !rc; j++)
      if (p->nbytes[j] == p->nbytes[i] && !memcmp(p->bytes[j], p->bytes[i], p->nbytes[i]))
        rc = bf_error_set(BF_EEXIST, "%s: duplicate: the same file as %s in this item", path, ss->v[j].path);
    if (rc || (rc = bf_x3p_read_mem(&p->surf[i], p->bytes[i], p->nbytes[i], path, NULL)))
      break;
    if (!p->kind)
      p->kind = bf_scanset_guess_kind(p->surf[i]);
    int land = p->kind == BF_KIND_BULLET ? ss->v[i].land : 0;
    if ((rc = bf_feature_extract(&p->feat[i], p->surf[i], p->kind, land)))
      bf_error_prefix(rc, "%s: feature extraction failed: ", path);
    /* the second mark: absent (a processed scan, no aperture) is no error, the CMC ranks alone */
    if (!rc && p->kind == BF_KIND_CARTRIDGE &&
        (rc = bf_firingpin_extract(&p->pin, p->surf[i], NULL)) == BF_ENOTFOUND) {
      bf_error_clear();
      rc = 0;
    }
  }
  if (!rc) { /* a scan too poor to describe is stored all the same, only not searchable */
    int e = bf_prefilter_describe(pf, &p->desc, p->feat, p->n);
    if (e == BF_EQUALITY)
      bf_error_clear();
    else
      rc = e;
  }
  if (!rc && p->desc) { /* too small to screen: the search reduces the full feature (and fails) */
    int e = bf_search_screen_surface(&p->screen, p->kind, p->feat, p->n);
    if (e == BF_EQUALITY)
      bf_error_clear();
    else
      rc = e;
  }
  if (rc)
    prep_clear(p);
  return rc;
}

/* Step 4: writes a prepared item inside the open transaction. */
static int write_item(bf_store *st, const bf_submission *sub, const prepared *p, bf_submit_result *res)
{
  int rc = 0;
  const char *cal = sub->calibre;
  res->owner_new = 0;
  if (sub->type == BF_OWNER_FIREARM) {
    const bf_firearm *old = bf_store_firearm_by_serial(st, sub->firearm.serial);
    if (old) {
      res->owner = old->id;
      if (!cal[0])
        cal = old->calibre;
    } else {
      bf_firearm fa = sub->firearm;
      snprintf(fa.calibre, sizeof fa.calibre, "%s", sub->calibre);
      rc = bf_store_add_firearm(st, &res->owner, &fa);
      res->owner_new = 1;
    }
  } else {
    bf_evidence ev = sub->evidence;
    snprintf(ev.calibre, sizeof ev.calibre, "%s", sub->calibre);
    ev.kind = p->kind;
    rc = bf_store_add_evidence(st, &res->owner, &ev);
    res->owner_new = 1;
  }
  char calibre[32];
  snprintf(calibre, sizeof calibre, "%s", cal); /* cal may point into a table the writes move */
  if (!rc)
    rc = bf_store_add_item(st, &res->item, p->kind, calibre,
                           sub->type == BF_OWNER_FIREARM ? BF_OWNER_FIREARM : BF_OWNER_EVIDENCE, res->owner);
  int64_t first = 0;
  for (int i = 0; i < p->n && !rc; i++) {
    int64_t sid = 0;
    int land = p->kind == BF_KIND_BULLET ? sub->scans.v[i].land : 0;
    if (!(rc = bf_store_add_scan(st, &sid, res->item, land, p->bytes[i], p->nbytes[i],
                                 base_name(sub->scans.v[i].path), p->surf[i])))
      rc = bf_store_put_feature(st, bf_kind_name(p->kind), res->item, sid, p->feat[i]);
    if (!i)
      first = sid;
  }
  /* every search reads all descriptors: stored without deflate they read ~6x faster */
  if (!rc && p->desc && !(rc = bf_store_add_kind(st, bf_prefilter_kind_name(p->kind), 0)))
    rc = bf_store_put_feature(st, bf_prefilter_kind_name(p->kind), res->item, first, p->desc);
  /* the screen reads these instead of inflating full features: plain too */
  if (!rc && p->screen && !(rc = bf_store_add_kind(st, BF_SEARCH_SCREEN_KIND, 0)))
    rc = bf_store_put_feature(st, BF_SEARCH_SCREEN_KIND, res->item, first, p->screen);
  if (!rc && p->pin)
    rc = bf_store_put_feature(st, bf_kind_name(BF_KIND_FIRINGPIN), res->item, first, p->pin);
  res->indexed = !rc && p->desc;
  res->kind = p->kind;
  res->nscans = p->n;
  return rc;
}

int bf_submit(bf_store *st, const bf_submission *sub, const bf_submit_opts *o, bf_submit_result *res)
{
  bf_submit_opts def = BF_SUBMIT_OPTS_INIT;
  bf_prefilter *own = NULL;
  prepared p;
  int rc = 0;
  if (!o)
    o = &def;
  memset(res, 0, sizeof *res);
  memset(&p, 0, sizeof p);
  const bf_prefilter *pf = o->pf;
  if (!pf && (rc = bf_prefilter_new(&own, NULL)))
    goto done;
  if (!pf)
    pf = own;
  if ((rc = prepare(st, sub, pf, &p)))
    goto done;
  if ((rc = write_item(st, sub, &p, res)))
    res->dirty = 1;
done:
  prep_clear(&p);
  bf_prefilter_free(own);
  return rc;
}

/* ---- several submissions in one transaction ---- */

int bf_submit_many(bf_store *st, const bf_submission *subs, int n, const bf_submit_many_opts *o,
                   int *stored)
{
  bf_submit_many_opts def = BF_SUBMIT_MANY_OPTS_INIT;
  bf_prefilter *pf = NULL;
  bf_submit_result *res = NULL;
  int *ok = NULL, rc = 0, refused = 0, began = 0, good = 0;
  if (!o)
    o = &def;
  *stored = 0;
  if (n < 1)
    return bf_error_set(BF_EINVAL, "nothing to submit");
  res = bf_calloc((size_t)n, sizeof *res);
  ok = bf_calloc((size_t)n, sizeof *ok);
  if (!res || !ok) {
    rc = bf_error_set(BF_ENOMEM, "out of memory");
    goto done;
  }
  if ((rc = bf_prefilter_new(&pf, NULL)) || (rc = bf_store_begin(st)))
    goto done;
  began = 1;
  bf_submit_opts so = {.pf = pf};
  for (int i = 0; i < n; i++) {
    int e = bf_submit(st, &subs[i], &so, &res[i]);
    if (e && res[i].dirty) { /* a write failed: the transaction is lost with everything in it */
      rc = e;
      goto done;
    }
    if (e) {
      refused = e;
      bf_submit_event ev = {i, e, bf_error_last(), NULL};
      if (o->event)
        o->event(o->ctx, &ev);
      if (o->all_or_nothing) {
        rc = e;
        goto done;
      }
    } else {
      ok[i] = 1;
      good++;
    }
  }
  if (!good) {
    rc = bf_error_set(refused, "nothing stored");
    goto done;
  }
  if ((rc = bf_store_commit(st)))
    goto done;
  began = 0;
  *stored = good;
  for (int i = 0; i < n; i++)
    if (ok[i] && o->event) {
      bf_submit_event ev = {i, 0, NULL, &res[i]};
      o->event(o->ctx, &ev);
    }
  rc = refused;
  if (rc)
    bf_error_set(rc, "%d of %d item(s) not stored", n - good, n);
done:
  if (began)
    bf_store_abort(st);
  bf_prefilter_free(pf);
  bf_free(res);
  bf_free(ok);
  return rc;
}

/* ---- the ingest driver ---- */

typedef struct pending {
  int row, line;
  bf_submit_result res;
} pending;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void report_fail(const bf_ingest_opts *o, bf_ingest_stats *s, int row, int line, int rc, const char *msg)
{
  s->failed++;
  s->duplicates += rc == BF_EEXIST;
  if (o->event) {
    bf_ingest_event ev = {.row = row, .line = line, .status = BF_INGEST_FAILED, .rc = rc, .message = msg};
    o->event(o->ctx, &ev);
  }
}

/* The open group failed to commit (or a write failed): its rows are reported lost. */
static void drop_group(const bf_ingest_opts *o, bf_ingest_stats *s, const char *name, pending *pend, int n,
                       const char *why)
{
  char msg[4400];
  for (int k = 0; k < n; k++) {
    snprintf(msg, sizeof msg, "%s:%d: not stored: %s", name, pend[k].line, why);
    report_fail(o, s, pend[k].row, pend[k].line, BF_EIO, msg);
  }
}

static int commit_group(bf_store *st, const bf_ingest_opts *o, bf_ingest_stats *s, const char *name,
                        pending *pend, int *npend)
{
  int rc = bf_store_commit(st);
  if (rc) {
    char why[1024];
    snprintf(why, sizeof why, "the commit of its group failed (%s)", bf_error_last());
    drop_group(o, s, name, pend, *npend, why);
  } else
    for (int k = 0; k < *npend; k++) {
      s->stored++;
      s->scans += pend[k].res.nscans;
      if (o->event) {
        bf_ingest_event ev = {.row = pend[k].row, .line = pend[k].line, .status = BF_INGEST_STORED,
                              .item = pend[k].res.item, .kind = pend[k].res.kind, .nscans = pend[k].res.nscans};
        o->event(o->ctx, &ev);
      }
    }
  *npend = 0;
  return rc;
}

const char *bf_manifest_name(const bf_manifest *m); /* manifest.c */

int bf_ingest_run(bf_store *st, const bf_manifest *m, const bf_ingest_opts *opts, bf_ingest_stats *stats)
{
  bf_ingest_opts o = opts ? *opts : (bf_ingest_opts)BF_INGEST_OPTS_INIT;
  bf_ingest_stats s = {0};
  bf_prefilter *pf = NULL;
  pending *pend = NULL;
  int npend = 0, rc = 0, nrows = bf_manifest_nrows(m);
  const char *name = bf_manifest_name(m);
  double t0 = 0;
  s.rows = nrows;
  if (o.commit_every < 0)
    return bf_error_set(BF_EINVAL, "commit_every must be >= 0");
  if (!o.commit_every) { /* keep the copy cost of commits small against the work */
    struct stat sb;
    int big = !stat(bf_store_path(st), &sb) && sb.st_size > (256L << 20);
    o.commit_every = big ? 100 : 1;
    if (!o.max_wait)
      o.max_wait = big ? 10.0 : 0;
  }
  if ((rc = bf_prefilter_new(&pf, NULL)))
    goto done;
  if (!(pend = bf_calloc((size_t)nrows + 1, sizeof *pend))) {
    rc = bf_error_set(BF_ENOMEM, "out of memory");
    goto done;
  }
  for (int r = 0; r < nrows; r++) {
    int line = bf_manifest_line(m, r), e;
    bf_submission sub;
    prepared p;
    bf_submit_result res = {0};
    memset(&p, 0, sizeof p);
    if (!(e = bf_manifest_row(m, r, &sub)))
      e = prepare(st, &sub, pf, &p);
    if (!e && !npend) {
      if ((e = bf_store_begin(st))) { /* nothing to roll back: the store refuses writes */
        rc = e;
        prep_clear(&p);
        bf_submission_clear(&sub);
        report_fail(&o, &s, r + 1, line, e, bf_error_last());
        goto done;
      }
      t0 = now_s();
    }
    if (!e && (e = write_item(st, &sub, &p, &res))) {
      /* a write failure (disk full...) loses the open group; the store stays as committed */
      bf_store_abort(st);
      drop_group(&o, &s, name, pend, npend, "its group was rolled back");
      npend = 0;
    }
    if (!e) {
      pend[npend++] = (pending){r + 1, line, res};
      if (npend >= o.commit_every || r == nrows - 1 || (o.max_wait > 0 && now_s() - t0 >= o.max_wait))
        commit_group(st, &o, &s, name, pend, &npend);
    } else {
      char msg[4400];
      snprintf(msg, sizeof msg, "%s:%d: %s", name, line, bf_error_last());
      report_fail(&o, &s, r + 1, line, e, msg);
    }
    prep_clear(&p);
    bf_submission_clear(&sub);
    if (o.progress)
      o.progress(o.ctx, r + 1, nrows);
  }
  if (npend) /* the last rows failed while earlier rows of the group wait */
    commit_group(st, &o, &s, name, pend, &npend);
  if (s.failed)
    rc = bf_error_set(BF_EINVAL, "%s: %d of %d row(s) not stored", name, s.failed, nrows);
done:
  if (npend) {
    bf_store_abort(st);
    drop_group(&o, &s, name, pend, npend, "its group was rolled back");
  }
  if (stats)
    *stats = s;
  bf_free(pend);
  bf_prefilter_free(pf);
  return rc;
}
