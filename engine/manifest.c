/* Manifests for ingest (see bf_submit.h and README "Manifest"): RFC 4180 CSV with a header row
 * naming the columns. Fields are kept with their lengths, so a NUL byte inside one is seen
 * (and refuses its row) instead of silently cutting the field short. */
#include "bf_submit.h"
#include "bf_file.h"

#include "bf_alloc.h"
#include "bf_error.h"
#include "bf_feature.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct cfield {
  char *s;
  size_t len;
} cfield;

typedef struct crow {
  int line, nf;
  cfield *f;
} crow;

enum { C_TYPE = -2, C_KIND = -3, C_SCANS = -4, C_LANDS = -5, C_UNSET = -1 };

struct bf_manifest {
  char *name, *dir;
  crow *rows; /* rows[0] is the header */
  int n;
  int ncol;
  int *col; /* per column: C_* or 1 = a record field (by its header name) */
  int ctype, ckind, cscans, clands;
};

static void rows_free(crow *rows, int n)
{
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < rows[i].nf; k++)
      bf_free(rows[i].f[k].s);
    bf_free(rows[i].f);
  }
  bf_free(rows);
}

void bf_manifest_free(bf_manifest *m)
{
  if (!m)
    return;
  rows_free(m->rows, m->n);
  bf_free(m->col);
  bf_free(m->name);
  bf_free(m->dir);
  bf_free(m);
}

static int push_field(crow *r, int *cap, const char *buf, size_t b)
{
  if (r->nf == *cap) {
    int nc = *cap ? 2 * *cap : 16;
    cfield *nf = bf_realloc(r->f, (size_t)nc * sizeof *nf);
    if (!nf)
      return bf_error_set(BF_ENOMEM, "out of memory");
    r->f = nf;
    *cap = nc;
  }
  char *s = bf_malloc(b + 1);
  if (!s)
    return bf_error_set(BF_ENOMEM, "out of memory");
  memcpy(s, buf, b);
  s[b] = 0;
  r->f[r->nf++] = (cfield){s, b};
  return 0;
}

/* One record starting at text[*i] (its first line is *line) into r. */
static int parse_row(const char *text, size_t len, size_t *i, int *line, crow *r, char *buf, const char *name)
{
  int cap = 0, rc = 0;
  r->line = *line;
  for (;;) {
    size_t b = 0;
    if (*i < len && text[*i] == '"') {
      (*i)++;
      for (;;) {
        if (*i >= len)
          return bf_error_set(BF_EFORMAT, "%s:%d: unterminated quoted field", name, r->line);
        if (text[*i] == '"' && *i + 1 < len && text[*i + 1] == '"') {
          buf[b++] = '"';
          *i += 2;
        } else if (text[*i] == '"') {
          (*i)++;
          break;
        } else {
          if (text[*i] == '\n')
            (*line)++;
          buf[b++] = text[(*i)++];
        }
      }
      if (*i < len && text[*i] != ',' && text[*i] != '\n' && text[*i] != '\r')
        return bf_error_set(BF_EFORMAT, "%s:%d: text after a closing quote", name, r->line);
    } else
      while (*i < len && text[*i] != ',' && text[*i] != '\n' && text[*i] != '\r')
        buf[b++] = text[(*i)++];
    if ((rc = push_field(r, &cap, buf, b)))
      return rc;
    if (*i < len && text[*i] == ',') {
      (*i)++;
      continue;
    }
    if (*i < len && text[*i] == '\r')
      (*i)++;
    if (*i < len && text[*i] == '\n')
      (*i)++;
    (*line)++;
    return 0;
  }
}

static int map_header(bf_manifest *m)
{
  const crow *h = &m->rows[0];
  bf_submission probe;
  m->ctype = m->ckind = m->cscans = m->clands = -1;
  m->ncol = h->nf;
  if (!(m->col = bf_calloc((size_t)h->nf, sizeof *m->col)))
    return bf_error_set(BF_ENOMEM, "out of memory");
  for (int c = 0; c < h->nf; c++) {
    const char *n = h->f[c].s;
    int *slot = !strcasecmp(n, "type") ? &m->ctype : !strcasecmp(n, "kind") ? &m->ckind
              : !strcasecmp(n, "scans") ? &m->cscans : !strcasecmp(n, "lands") ? &m->clands : NULL;
    if (slot) {
      *slot = c;
      m->col[c] = C_UNSET;
      continue;
    }
    memset(&probe.calibre, 0, sizeof probe.calibre);
    int known = 0;
    for (int t = BF_OWNER_FIREARM; t <= BF_OWNER_EVIDENCE && !known; t++) {
      probe.type = t;
      known = bf_submission_set(&probe, n, "") != BF_ENOTFOUND;
    }
    if (!known)
      return bf_error_set(BF_EINVAL, "%s:%d: unknown column '%s'", m->name, h->line, n);
    m->col[c] = 1;
  }
  bf_error_clear();
  if (m->ctype < 0 || m->cscans < 0)
    return bf_error_set(BF_EINVAL, "%s: the header needs at least the columns type and scans", m->name);
  return 0;
}

int bf_manifest_parse(bf_manifest **out, const char *text, size_t len, const char *name, const char *dir)
{
  int rc = 0, cap = 0, line = 1;
  size_t i = 0;
  char *buf = NULL;
  bf_manifest *m = bf_calloc(1, sizeof *m);
  *out = NULL;
  if (!m || !(m->name = bf_strdup(name ? name : "manifest")) || (dir && !(m->dir = bf_strdup(dir))) ||
      !(buf = bf_malloc(len + 1))) {
    rc = bf_error_set(BF_ENOMEM, "out of memory");
    goto done;
  }
  if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) /* a UTF-8 byte order mark (Excel writes one) */
    i = 3;
  while (i < len && !rc) {
    if (text[i] == '#') { /* comment line */
      while (i < len && text[i] != '\n')
        i++;
      i++;
      line++;
      continue;
    }
    crow r = {0};
    rc = parse_row(text, len, &i, &line, &r, buf, m->name);
    int blank = !rc && r.nf == 1 && !r.f[0].len;
    if (!rc && !blank && m->n == cap) {
      cap = cap ? 2 * cap : 64;
      crow *nr = bf_realloc(m->rows, (size_t)cap * sizeof *nr);
      if (!nr)
        rc = bf_error_set(BF_ENOMEM, "out of memory");
      else
        m->rows = nr;
    }
    if (rc || blank) {
      for (int k = 0; k < r.nf; k++)
        bf_free(r.f[k].s);
      bf_free(r.f);
      continue;
    }
    m->rows[m->n++] = r;
  }
  if (!rc && m->n < 1)
    rc = bf_error_set(BF_EINVAL, "%s: empty manifest (a header row is required)", m->name);
  if (!rc)
    rc = map_header(m);
done:
  bf_free(buf);
  if (rc)
    bf_manifest_free(m);
  else
    *out = m;
  return rc;
}

int bf_manifest_read(bf_manifest **out, const char *path)
{
  *out = NULL;
  uint8_t *bytes = NULL;
  size_t n = 0;
  int rc = bf_file_read(path, 256u << 20, &bytes, &n); /* a FIFO or device is refused, not read */
  char *text = (char *)bytes;
  char *dir = NULL;
  if (!rc) { /* relative scan paths are relative to the manifest's folder */
    const char *s = strrchr(path, '/');
    size_t dl = s ? (size_t)(s - path) : 1;
    if (!(dir = bf_malloc(dl + 1)))
      rc = bf_error_set(BF_ENOMEM, "out of memory");
    else {
      memcpy(dir, s ? path : ".", dl);
      dir[dl] = 0;
      if (s && !dl)
        snprintf(dir, 2, "/");
    }
  }
  if (!rc)
    rc = bf_manifest_parse(out, text ? text : "", n, path, dir);
  bf_free(dir);
  bf_free(text);
  return rc;
}

const char *bf_manifest_name(const bf_manifest *m) { return m->name; }
int bf_manifest_nrows(const bf_manifest *m) { return m->n - 1; }
int bf_manifest_line(const bf_manifest *m, int row) { return m->rows[row + 1].line; }

static const char *cell(const crow *r, int c) { return c >= 0 && c < r->nf ? r->f[c].s : ""; }

/* "1;2;3;5;6" -> lands; the count must match the scans. */
static int parse_lands(const char *s, int *lands, int *n)
{
  *n = 0;
  for (const char *p = s; *p;) {
    while (*p == ' ' || *p == ';')
      p++;
    if (!*p)
      break;
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (end == p || errno || v < 1 || v > BF_SCANSET_MAX || (*end && *end != ';' && *end != ' '))
      return bf_error_set(BF_EFORMAT, "lands must be numbers 1..%d separated by ';', not '%s'", BF_SCANSET_MAX, s);
    if (*n == BF_SCANSET_MAX)
      return bf_error_set(BF_ELIMIT, "more than %d land numbers", BF_SCANSET_MAX);
    lands[(*n)++] = (int)v;
    p = end;
  }
  return 0;
}

int bf_manifest_row(const bf_manifest *m, int row, bf_submission *sub)
{
  const crow *r = &m->rows[row + 1], *h = &m->rows[0];
  int rc = 0, lands[BF_SCANSET_MAX], nl = 0;
  memset(sub, 0, sizeof *sub);
  if (r->nf > m->ncol)
    return bf_error_set(BF_EFORMAT, "%d fields but the header has %d", r->nf, m->ncol);
  for (int c = 0; c < r->nf; c++) {
    if (strlen(r->f[c].s) != r->f[c].len)
      return bf_error_set(BF_EFORMAT, "column %s holds a NUL byte", h->f[c].s);
  }
  const char *tf = cell(r, m->ctype), *kf = cell(r, m->ckind);
  if (!strcasecmp(tf, "firearm"))
    sub->type = BF_OWNER_FIREARM;
  else if (!strcasecmp(tf, "evidence"))
    sub->type = BF_OWNER_EVIDENCE;
  else
    return bf_error_set(BF_EFORMAT, "type must be firearm or evidence, not '%s'", tf);
  if (kf[0] && !(sub->kind = !strcasecmp(kf, "cartridge") || !strcasecmp(kf, "cartridge-case") ||
                                     !strcasecmp(kf, "case") ? BF_KIND_CARTRIDGE
                             : !strcasecmp(kf, "bullet") || !strcasecmp(kf, "land") ? BF_KIND_BULLET : 0))
    return bf_error_set(BF_EFORMAT, "kind must be cartridge or bullet, not '%s'", kf);
  for (int c = 0; c < r->nf && !rc; c++)
    if (m->col[c] == 1 && r->f[c].len && (rc = bf_submission_set(sub, h->f[c].s, r->f[c].s)) == BF_ENOTFOUND)
      rc = bf_error_set(BF_EFORMAT, "column %s does not apply to a %s row", h->f[c].s, tf);
  if (!rc)
    rc = bf_submit_check_record(sub); /* names the field holding invalid UTF-8 or a control character */
  if (!rc && m->clands >= 0 && cell(r, m->clands)[0])
    rc = parse_lands(cell(r, m->clands), lands, &nl);
  if (!rc)
    rc = bf_scanset_add(&sub->scans, cell(r, m->cscans), ';', m->dir);
  if (!rc && !sub->scans.n)
    rc = bf_error_set(BF_EINVAL, "no scan given for the item");
  if (!rc)
    rc = bf_scanset_number(&sub->scans, nl ? lands : NULL, nl ? nl : 0);
  if (rc)
    bf_submission_clear(sub);
  return rc;
}
