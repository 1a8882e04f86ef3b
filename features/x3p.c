/* X3P reader and writer: a zip holding main.xml (ISO 5436-2 header), bindata/data.bin
 * (little-endian heights, X fastest) and md5checksum.hex (MD5 of main.xml). */
#include "bf_x3p.h"
#include "bf_alloc.h"
#include "bf_file.h"
#include "bf_cv.h"
#include "bf_error.h"
#include "bf_hash.h"
#include "bf_select.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the X3P reader assumes a little-endian host"
#endif

#define X3P_NS "http://www.opengps.eu/2008/ISO5436_2"
#define MAX_XML_BYTES (4L << 20)
#define MAX_FILE_BYTES (4L << 30)
#define MAX_ENTRIES 10000 /* an X3P holds a handful of members; more is a directory bomb */
#define BOMB_MIN_BYTES (16L << 20) /* members this small may compress as well as they like */
#define BOMB_RATIO 64

/* ---------- zip helpers ---------- */

static int skip_entry(const char *p)
{
  return !p || !strncmp(p, "__MACOSX", 8) || strstr(p, "/__MACOSX");
}

/* Member names compare with '\' and '/' as the same separator (Windows zippers), exactly or,
 * when icase, ignoring ASCII case (some writers spell "BinData/Data.bin"). */
static int name_eq(const char *a, const char *b, int icase)
{
  for (;; a++, b++) {
    int ca = *a == '\\' ? '/' : (unsigned char)*a, cb = *b == '\\' ? '/' : (unsigned char)*b;
    if (icase) {
      ca = tolower(ca);
      cb = tolower(cb);
    }
    if (ca != cb)
      return 0;
    if (!ca)
      return 1;
  }
}

/* Finds the member named name (exact first, then ignoring case), skipping __MACOSX. */
static zip_int64_t zip_find(zip_t *z, const char *name)
{
  zip_int64_t n = zip_get_num_entries(z, 0);
  for (int icase = 0; icase < 2; icase++)
    for (zip_int64_t i = 0; i < n; i++) {
      const char *p = zip_get_name(z, (zip_uint64_t)i, 0);
      if (!skip_entry(p) && name_eq(p, name, icase))
        return i;
    }
  return -1;
}

/* A link from main.xml made relative to the zip root: "./" and "/" dropped, '\' made '/'. */
static void link_path(char *out, size_t cap, const char *prefix, const char *link)
{
  while (*link == '/' || *link == '\\' || (link[0] == '.' && (link[1] == '/' || link[1] == '\\')))
    link += link[0] == '.' ? 2 : 1;
  snprintf(out, cap, "%s%s", prefix, link);
  for (char *c = out; *c; c++)
    if (*c == '\\')
      *c = '/';
}

/* Reads member idx, refusing more than limit bytes (declared or actual). */
static int zip_slurp(uint8_t **out, size_t *len, zip_t *z, zip_int64_t idx, long limit,
                     const char *file, const char *member)
{
  *out = NULL;
  *len = 0;
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(z, (zip_uint64_t)idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
    return bf_error_set(BF_EFORMAT, "%s: cannot stat zip member %s", file, member);
  if (st.size > (zip_uint64_t)limit)
    return bf_error_set(BF_ELIMIT, "%s: zip member %s declares %llu bytes, more than the %ld allowed",
                        file, member, (unsigned long long)st.size, limit);
  /* Deflate reaches ~1000:1 on constant data, real scans ~4:1 (noise). A big member far beyond
   * that is a bomb sized to the header's claim: refused before a byte is inflated. */
  if (st.size > BOMB_MIN_BYTES && (st.valid & ZIP_STAT_COMP_SIZE) &&
      st.size / BOMB_RATIO > st.comp_size)
    return bf_error_set(BF_ELIMIT, "%s: zip member %s inflates %llu bytes into %llu (over %d:1): "
                        "refused as a zip bomb", file, member, (unsigned long long)st.comp_size,
                        (unsigned long long)st.size, BOMB_RATIO);
  zip_file_t *f = zip_fopen_index(z, (zip_uint64_t)idx, 0);
  if (!f)
    return bf_error_set(BF_EFORMAT, "%s: cannot open zip member %s: %s", file, member,
                        zip_strerror(z));
  uint8_t *buf = bf_malloc(st.size + 1);
  if (!buf) {
    zip_fclose(f);
    return bf_error_set(BF_ENOMEM, "%s: out of memory for %s", file, member);
  }
  size_t got = 0;
  int rc = 0;
  for (;;) {
    /* read one byte past the declared size to catch members that inflate to more */
    zip_int64_t r = zip_fread(f, buf + got, st.size + 1 - got);
    if (r < 0) {
      rc = bf_error_set(BF_EFORMAT, "%s: zip member %s is corrupt or truncated: %s", file, member,
                        zip_file_strerror(f));
      break;
    }
    if (r == 0)
      break;
    got += (size_t)r;
    if (got > st.size) {
      rc = bf_error_set(BF_ELIMIT, "%s: zip member %s inflates to more than its declared size",
                        file, member);
      break;
    }
  }
  zip_fclose(f);
  if (!rc && got != st.size)
    rc = bf_error_set(BF_EFORMAT, "%s: zip member %s is truncated (%zu of %llu bytes)", file,
                      member, got, (unsigned long long)st.size);
  if (rc) {
    bf_free(buf);
    return rc;
  }
  buf[got] = 0;
  *out = buf;
  *len = got;
  return 0;
}

/* ---------- XML helpers: match by local name, in any order, any namespace prefix ---------- */

static xmlNode *child(xmlNode *n, const char *name)
{
  for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name))
      return c;
  return NULL;
}

/* Path like "Record1/Axes/CX/Increment" below n. */
static xmlNode *path(xmlNode *n, const char *p)
{
  char buf[256];
  snprintf(buf, sizeof buf, "%s", p);
  char *save = NULL;
  for (char *tok = strtok_r(buf, "/", &save); tok && n; tok = strtok_r(NULL, "/", &save))
    n = child(n, tok);
  return n;
}

/* Copies the trimmed text of the node at p into out; "" when absent. */
static void text_at(char *out, size_t cap, xmlNode *root, const char *p)
{
  out[0] = 0;
  xmlNode *n = path(root, p);
  if (!n)
    return;
  xmlChar *t = xmlNodeGetContent(n);
  if (!t)
    return;
  const char *s = (const char *)t;
  while (isspace((unsigned char)*s))
    s++;
  snprintf(out, cap, "%s", s);
  for (char *c = out; *c; c++) /* keeps error messages that quote it on one line */
    if (*c == '\n' || *c == '\r' || *c == '\t')
      *c = ' ';
  size_t l = strlen(out);
  while (l && isspace((unsigned char)out[l - 1]))
    out[--l] = 0;
  xmlFree(t);
}

/* Record1's feature type and Record2: where the scan came from. */
static void read_meta(bf_meta *m, xmlNode *root)
{
  text_at(m->feature_type, sizeof m->feature_type, root, "Record1/FeatureType");
  text_at(m->date, sizeof m->date, root, "Record2/Date");
  text_at(m->creator, sizeof m->creator, root, "Record2/Creator");
  text_at(m->calibration_date, sizeof m->calibration_date, root, "Record2/CalibrationDate");
  text_at(m->comment, sizeof m->comment, root, "Record2/Comment");
  text_at(m->manufacturer, sizeof m->manufacturer, root, "Record2/Instrument/Manufacturer");
  text_at(m->model, sizeof m->model, root, "Record2/Instrument/Model");
  text_at(m->serial, sizeof m->serial, root, "Record2/Instrument/Serial");
  text_at(m->version, sizeof m->version, root, "Record2/Instrument/Version");
  text_at(m->probing_type, sizeof m->probing_type, root, "Record2/ProbingSystem/Type");
  text_at(m->probing_id, sizeof m->probing_id, root, "Record2/ProbingSystem/Identification");
}

static int parse_double(double *v, const char *s)
{
  char *end;
  if (!*s)
    return -1;
  errno = 0;
  *v = strtod(s, &end);
  if (errno || *end || !isfinite(*v))
    return -1;
  return 0;
}

static int parse_long(long *v, const char *s)
{
  char *end;
  if (!*s)
    return -1;
  errno = 0;
  *v = strtol(s, &end, 10);
  return (errno || *end) ? -1 : 0;
}

static int hexval(int c)
{
  if (c >= '0' && c <= '9') return c - '0';
  c = tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Compares a checksum text with a digest. Takes md5sum's "HEX", "HEX  main.xml" and
 * "HEX *main.xml", BSD's "MD5 (main.xml) = HEX", either case, a leading BOM or blanks.
 * Returns 0 equal, 1 different, -1 no 32-digit hex value there. */
static int hex_cmp(const char *s, const uint8_t d[16])
{
  if (!strncmp(s, "\xEF\xBB\xBF", 3))
    s += 3;
  while (isspace((unsigned char)*s))
    s++;
  if (!strncmp(s, "MD5 (", 5) || !strncmp(s, "MD5(", 4)) {
    const char *eq = strstr(s, ") = ");
    if (!eq)
      return -1;
    s = eq + 4;
  }
  for (int i = 0; i < 16; i++) {
    int a = hexval((unsigned char)s[2 * i]), b = a < 0 ? -1 : hexval((unsigned char)s[2 * i + 1]);
    if (a < 0 || b < 0)
      return -1;
    if ((uint8_t)(a * 16 + b) != d[i])
      return 1;
  }
  char c = s[32];
  return (c == 0 || isspace((unsigned char)c) || c == '*') ? 0 : -1;
}

static int type_size(char t)
{
  switch (t) {
  case 'D': return 8;
  case 'F': return 4;
  case 'L': return 4;
  case 'I': return 2;
  default: return 0;
  }
}

/* The colours R (x3ptools) writes in a mask legend: "#rrggbb", "#rrggbbaa" (alpha dropped)
 * or one of R's common colour names. Returns 0 and sets *v, or -1 when unknown. */
static int parse_colour(uint32_t *v, const char *s)
{
  static const struct { const char *name; uint32_t rgb; } names[] = {
    {"white", 0xFFFFFF}, {"black", 0x000000}, {"red", 0xFF0000}, {"green", 0x00FF00},
    {"blue", 0x0000FF}, {"yellow", 0xFFFF00}, {"cyan", 0x00FFFF}, {"magenta", 0xFF00FF},
    {"orange", 0xFFA500}, {"purple", 0xA020F0}, {"grey", 0xBEBEBE}, {"gray", 0xBEBEBE},
    {"brown", 0xA52A2A}, {"pink", 0xFFC0CB}, {"darkred", 0x8B0000}, {"darkgreen", 0x006400},
    {"darkblue", 0x00008B}, {"lightblue", 0xADD8E6}, {"lightgreen", 0x90EE90},
    {"darkorange", 0xFF8C00}, {"gold", 0xFFD700}, {"steelblue", 0x4682B4}};
  while (isspace((unsigned char)*s))
    s++;
  if (*s == '#' || isxdigit((unsigned char)*s)) {
    const char *h = *s == '#' ? s + 1 : s;
    size_t n = 0;
    while (isxdigit((unsigned char)h[n]))
      n++;
    if ((n == 6 || n == 8) && (!h[n] || isspace((unsigned char)h[n]))) {
      uint32_t x = 0;
      for (int i = 0; i < 6; i++)
        x = x << 4 | (uint32_t)hexval((unsigned char)h[i]);
      *v = x;
      return 0;
    }
  }
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcasecmp(s, names[i].name)) {
      *v = names[i].rgb;
      return 0;
    }
  return -1;
}

/* Width and height from a PNG's IHDR, so a decompression bomb is refused before decoding. */
static int png_size(long *w, long *h, const uint8_t *p, size_t len)
{
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (len < 24 || memcmp(p, sig, 8) || memcmp(p + 12, "IHDR", 4))
    return -1;
  *w = (long)p[16] << 24 | (long)p[17] << 16 | (long)p[18] << 8 | p[19];
  *h = (long)p[20] << 24 | (long)p[21] << 16 | (long)p[22] << 8 | p[23];
  return 0;
}

/* Reads mask.png (decoded by OpenCV) and its legend from Record3/Mask. */
static int read_mask(bf_surface *s, zip_t *z, const char *prefix, xmlNode *root, const char *name)
{
  char p[600];
  link_path(p, sizeof p, prefix, "bindata/mask.png");
  zip_int64_t idx = zip_find(z, p);
  if (idx < 0)
    return 0;
  uint8_t *png = NULL;
  size_t len = 0;
  uint32_t *rgb = NULL;
  int w = 0, h = 0, rc = zip_slurp(&png, &len, z, idx, 256L << 20, name, "bindata/mask.png");
  if (rc)
    return rc;
  long pw, ph;
  size_t n = (size_t)s->nx * s->ny;
  if (png_size(&pw, &ph, png, len)) {
    bf_free(png);
    return bf_error_set(BF_EFORMAT, "%s: bindata/mask.png is not a PNG image", name);
  }
  /* A mask is nx by ny; allow rescaled ones but not a bomb (pw*ph cannot overflow: < 2^62). */
  if (pw <= 0 || ph <= 0 || (size_t)(pw * ph) > 16 * n + 4096 || pw * ph > BF_MAX_POINTS) {
    bf_free(png);
    return bf_error_set(BF_ELIMIT, "%s: bindata/mask.png is %ld x %ld pixels for a %d x %d scan",
                        name, pw, ph, s->nx, s->ny);
  }
  rc = bf_cv_decode_rgb(&rgb, &w, &h, png, len);
  bf_free(png);
  if (rc)
    return bf_error_prefix(rc, "%s: bindata/mask.png: ", name);
  s->mask = bf_malloc(n * sizeof *s->mask);
  if (!s->mask) {
    bf_free(rgb);
    return bf_error_set(BF_ENOMEM, "%s: out of memory for the mask", name);
  }
  /* The mask is drawn nx wide and ny high; other sizes are scaled (nearest point). */
  for (int y = 0; y < s->ny; y++)
    for (int x = 0; x < s->nx; x++) {
      int mx = (int)((long)x * w / s->nx), my = (int)((long)y * h / s->ny);
      s->mask[(size_t)y * s->nx + x] = rgb[(size_t)my * w + mx];
    }
  bf_free(rgb);
  s->flags |= BF_SURF_HAS_MASK;
  char bg[64];
  text_at(bg, sizeof bg, root, "Record3/Mask/Background");
  if (!bg[0] || parse_colour(&s->mask_background, bg))
    s->mask_background = 0xFFFFFF;
  xmlNode *ann = path(root, "Record3/Mask/Annotations");
  int count = 0;
  for (xmlNode *c = ann ? ann->children : NULL; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE)
      count++;
  if (count) {
    s->labels = bf_calloc((size_t)count, sizeof *s->labels);
    if (!s->labels)
      return bf_error_set(BF_ENOMEM, "%s: out of memory for mask labels", name);
    for (xmlNode *c = ann->children; c; c = c->next) {
      if (c->type != XML_ELEMENT_NODE)
        continue;
      bf_mask_label *l = &s->labels[s->nlabels++];
      xmlChar *col = xmlGetProp(c, (const xmlChar *)"color");
      xmlChar *t = xmlNodeGetContent(c);
      if (!col || parse_colour(&l->rgb, (const char *)col))
        l->rgb = 0;
      snprintf(l->name, sizeof l->name, "%s", t ? (const char *)t : "");
      xmlFree(col);
      xmlFree(t);
    }
  }
  return 0;
}

/* ---------- reader ---------- */

/* libxml2 2.9 wants one initialisation before parsers run on several threads. */
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void) { xmlInitParser(); }

/* True when the bytes hold a document type declaration: such files are refused before
 * parsing, so no entity is ever declared, expanded or fetched. */
static int has_doctype(const uint8_t *x, size_t n)
{
  static const char key[] = "<!DOCTYPE";
  for (size_t i = 0; i + 9 <= n; i++)
    if (x[i] == '<' && !memcmp(x + i, key, 9))
      return 1;
  return 0;
}

/* Spread of the valid heights between the 1st and 99th percentiles of a sample of at most
 * 2^16 of them: a few wild values (sentinels, spikes) cannot sway the unit decision. */
static double robust_range(const double *v, size_t n, size_t nvalid)
{
  size_t step = nvalid > 65536 ? nvalid / 65536 : 1, m = 0, seen = 0;
  double *s = bf_malloc((nvalid / step + 1) * sizeof *s);
  if (!s)
    return NAN;
  for (size_t i = 0; i < n; i++)
    if (!isnan(v[i]) && seen++ % step == 0)
      s[m++] = v[i];
  size_t k01 = (size_t)(0.01 * (m - 1)), k99 = (size_t)(0.99 * (m - 1));
  double hi = m ? bf_select_double(s, m, k99) : NAN; /* selection: no full sort */
  double r = m ? hi - (k01 < k99 ? bf_select_double(s, k99, k01) : hi) : NAN;
  bf_free(s);
  return r;
}

/* libxml2 prints some errors itself (encoding, I/O) whatever the parse flags: every thread that
 * parses sends them here instead, and the first one becomes part of bfm's one-line message. */
static _Thread_local char xml_first_error[200];

static void xml_keep(const char *m)
{
  if (xml_first_error[0] || !m)
    return;
  snprintf(xml_first_error, sizeof xml_first_error, "%s", m);
  for (char *c = xml_first_error; *c; c++)
    if (*c == '\n' || *c == '\r' || *c == '\t')
      *c = c[1] ? ' ' : 0;
}

static void xml_structured(void *ctx, xmlErrorPtr e)
{
  (void)ctx;
  if (e && e->level >= XML_ERR_ERROR)
    xml_keep(e->message);
}

static void xml_generic(void *ctx, const char *fmt, ...)
{
  (void)ctx;
  (void)fmt; /* the pieces of a generic message arrive one printf at a time: keep none of them */
}

static void xml_quiet(void)
{
  xmlSetStructuredErrorFunc(NULL, xml_structured);
  xmlSetGenericErrorFunc(NULL, xml_generic);
  xml_first_error[0] = 0;
}

/* What main.xml says, checked: enough to size, place and read the point data. */
typedef struct hdr {
  xmlDoc *doc;
  xmlNode *root;
  uint8_t *xml;
  size_t xml_len;
  char prefix[512];
  long nx, ny;
  int tsize;
  double inc[3], off_z; /* increments as written (metres, or micrometres when xy_um) */
  int xy_um;
  char feature_type[8];
} hdr;

static void hdr_free(hdr *h)
{
  if (h->doc)
    xmlFreeDoc(h->doc);
  bf_free(h->xml);
  memset(h, 0, sizeof *h);
}

/* Lateral spacings we accept, in micrometres: 1 nm to 1 mm a point. Outside them a scan cannot
 * be a ballistic surface (the adversarial run used 1e-13 m), and sizes computed from them
 * (filter kernels, resampled grids) would be absurd. */
#define MIN_SPACING_UM 1e-3
#define MAX_SPACING_UM 1e3
#define MAX_ANISOTROPY 20.0 /* real scans are square-pixelled; line scanners reach a few x */

/* Finds and parses main.xml, checks the feature type, axes, spacing and sizes. */
static int read_header(hdr *h, zip_t *z, const char *name, bf_x3p_info *info)
{
  int rc = 0;
  char t[1024];
  xmlDoc *doc = NULL;
  /* main.xml may sit in a sub-folder; everything else is relative to it. The shallowest wins. */
  zip_int64_t nent = zip_get_num_entries(z, 0), xml_idx = -1;
  size_t xml_plen = 0;
  for (zip_int64_t i = 0; i < nent; i++) {
    const char *p = zip_get_name(z, (zip_uint64_t)i, 0);
    if (skip_entry(p))
      continue;
    const char *base = p + strlen(p);
    while (base > p && base[-1] != '/' && base[-1] != '\\')
      base--;
    if (!strcasecmp(base, "main.xml") && (xml_idx < 0 || strlen(p) < xml_plen)) {
      xml_idx = i;
      xml_plen = strlen(p);
    }
  }
  if (xml_idx < 0) {
    rc = bf_error_set(BF_EFORMAT, "%s: no main.xml in the archive (not an X3P file)", name);
    goto done;
  }
  {
    const char *p = zip_get_name(z, (zip_uint64_t)xml_idx, 0);
    snprintf(info->main_xml_path, sizeof info->main_xml_path, "%s", p);
    size_t pl = strlen(p) - strlen("main.xml");
    if (pl >= sizeof h->prefix) {
      rc = bf_error_set(BF_ELIMIT, "%s: main.xml path is longer than %zu bytes", name, sizeof h->prefix);
      goto done;
    }
    memcpy(h->prefix, p, pl);
    h->prefix[pl] = 0;
  }
  if ((rc = zip_slurp(&h->xml, &h->xml_len, z, xml_idx, MAX_XML_BYTES, name, "main.xml")))
    goto done;

  if (has_doctype(h->xml, h->xml_len)) {
    rc = bf_error_set(BF_EFORMAT, "%s: main.xml has a DOCTYPE (refused: entities are never expanded or fetched)", name);
    goto done;
  }
  /* No network, no entity substitution, no DTD loading. */
  xml_quiet();
  doc = h->doc = xmlReadMemory((const char *)h->xml, (int)h->xml_len, "main.xml", NULL,
                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (!doc) {
    const xmlError *e = xmlGetLastError();
    xml_keep(e ? e->message : NULL);
    rc = bf_error_set(BF_EFORMAT, "%s: main.xml is not well-formed XML (line %d: %s)", name,
                      e ? e->line : 0, xml_first_error[0] ? xml_first_error : "parse error");
    goto done;
  }
  if (doc->intSubset || doc->extSubset) {
    rc = bf_error_set(BF_EFORMAT, "%s: main.xml has a DOCTYPE (refused: entities are never expanded or fetched)", name);
    goto done;
  }
  /* Elements are matched by local name: namespace prefix present or absent, any order. */
  xmlNode *root = xmlDocGetRootElement(doc);
  if (!root || strcmp((const char *)root->name, "ISO5436_2")) {
    rc = bf_error_set(BF_EFORMAT, "%s: main.xml root element is <%.64s>, not <ISO5436_2>", name,
                      root ? (const char *)root->name : "none");
    goto done;
  }

  /* Only areal surfaces: a profile (PRF) or a point cloud (PCL) has no grid to read as one. */
  text_at(h->feature_type, sizeof h->feature_type, root, "Record1/FeatureType");
  if (h->feature_type[0] && strcasecmp(h->feature_type, "SUR")) {
    rc = bf_error_set(BF_EFORMAT, "%s: FeatureType is '%s', not an areal surface (SUR): %s are not "
                      "supported", name, h->feature_type,
                      !strcasecmp(h->feature_type, "PRF") ? "profiles"
                      : !strcasecmp(h->feature_type, "PCL") ? "point clouds" : "other feature types");
    goto done;
  }

  /* Record1: axes. */
  char dt[16];
  text_at(dt, sizeof dt, root, "Record1/Axes/CZ/DataType");
  if (!dt[0]) {
    rc = bf_error_set(BF_EFORMAT, "%s: main.xml has no Record1/Axes/CZ/DataType", name);
    goto done;
  }
  info->data_type = (char)toupper((unsigned char)dt[0]);
  int tsize = dt[1] ? 0 : type_size(info->data_type);
  if (!tsize) {
    rc = bf_error_set(BF_EFORMAT, "%s: unknown Z data type '%s' (expected D, F, L or I)", name, dt);
    goto done;
  }
  double inc[3] = {0, 0, 1}, off_z = 0;
  const char *axes[2] = {"Record1/Axes/CX", "Record1/Axes/CY"};
  for (int a = 0; a < 2; a++) {
    char p[64];
    snprintf(p, sizeof p, "%s/AxisType", axes[a]);
    text_at(t, sizeof t, root, p);
    if (t[0] && strcmp(t, "I")) {
      rc = bf_error_set(BF_EFORMAT, "%s: axis %s is of type '%.40s'; only incremental (I) X/Y axes are supported",
                        name, axes[a] + 13, t);
      goto done;
    }
    snprintf(p, sizeof p, "%s/Increment", axes[a]);
    text_at(t, sizeof t, root, p);
    if (parse_double(&inc[a], t) || !(inc[a] > 0)) {
      rc = bf_error_set(BF_EFORMAT, "%s: %s/Increment '%.40s' is not a positive number", name,
                        axes[a] + 13, t);
      goto done;
    }
  }
  text_at(t, sizeof t, root, "Record1/Axes/CZ/Increment");
  if (t[0] && (parse_double(&inc[2], t) || inc[2] == 0)) {
    rc = bf_error_set(BF_EFORMAT, "%s: CZ/Increment '%.40s' is not a non-zero number", name, t);
    goto done;
  }
  text_at(t, sizeof t, root, "Record1/Axes/CZ/Offset");
  if (t[0] && parse_double(&off_z, t)) {
    rc = bf_error_set(BF_EFORMAT, "%s: CZ/Offset '%.40s' is not a number", name, t);
    goto done;
  }
  info->z_increment = inc[2];
  info->z_offset = off_z;

  /* Record3: dimensions (capped before anything is allocated) and data link. */
  long dim[3] = {0, 0, 1};
  static const char *const dname[3] = {"SizeX", "SizeY", "SizeZ"};
  for (int k = 0; k < 3; k++) {
    char p[64];
    snprintf(p, sizeof p, "Record3/MatrixDimension/%s", dname[k]);
    text_at(t, sizeof t, root, p);
    if (k == 2 && !t[0])
      continue;
    if (!t[0]) {
      rc = bf_error_set(BF_EFORMAT, "%s: main.xml has no Record3/MatrixDimension/%s", name, dname[k]);
      goto done;
    }
    if (parse_long(&dim[k], t)) {
      rc = bf_error_set(errno == ERANGE ? BF_ELIMIT : BF_EFORMAT, "%s: %s '%.40s' is %s", name,
                        dname[k], t, errno == ERANGE ? "absurdly large" : "not an integer");
      goto done;
    }
  }
  long nx = dim[0], ny = dim[1], nz = dim[2];
  if (nx <= 0 || ny <= 0) {
    rc = bf_error_set(BF_EFORMAT, "%s: matrix size SizeX x SizeY = %ld x %ld is not positive", name, nx, ny);
    goto done;
  }
  if (nx > BF_MAX_POINTS || ny > BF_MAX_POINTS || nx * ny > BF_MAX_POINTS) {
    rc = bf_error_set(BF_ELIMIT, "%s: matrix size %ld x %ld exceeds the limit of %ld points", name,
                      nx, ny, BF_MAX_POINTS);
    goto done;
  }
  if (nz != 1) {
    rc = bf_error_set(BF_EFORMAT, "%s: SizeZ is %ld; only single-layer surfaces are supported", name, nz);
    goto done;
  }

  /* Spacing: both axes in one unit (a mix such as 6.25 and 1.5625e-06 is a broken header,
   * not a scan), within the plausible range, and not wildly anisotropic. */
  h->xy_um = inc[0] > 1e-3 || inc[1] > 1e-3;
  if ((inc[0] > 1e-3) != (inc[1] > 1e-3)) {
    rc = bf_error_set(BF_EFORMAT, "%s: CX/Increment %g and CY/Increment %g are not in the same unit "
                      "(one reads as micrometres, the other as metres)", name, inc[0], inc[1]);
    goto done;
  }
  for (int a = 0; a < 2; a++) {
    double um = h->xy_um ? inc[a] : inc[a] * 1e6;
    if (um < MIN_SPACING_UM || um > MAX_SPACING_UM) {
      rc = bf_error_set(BF_EFORMAT, "%s: %s/Increment %g is a spacing of %g um, outside the %g-%g um "
                        "a scan can have", name, axes[a] + 13, inc[a], um, MIN_SPACING_UM, MAX_SPACING_UM);
      goto done;
    }
  }
  if (inc[0] > MAX_ANISOTROPY * inc[1] || inc[1] > MAX_ANISOTROPY * inc[0]) {
    rc = bf_error_set(BF_EFORMAT, "%s: spacings CX %g and CY %g differ more than %gx (inconsistent axes)",
                      name, inc[0], inc[1], MAX_ANISOTROPY);
    goto done;
  }
  h->root = root;
  h->nx = nx;
  h->ny = ny;
  h->tsize = tsize;
  memcpy(h->inc, inc, sizeof inc);
  h->off_z = off_z;
  info->xy_converted_from_um = h->xy_um;
  info->nx = nx;
  info->ny = ny;
  info->dx_um = h->xy_um ? inc[0] : inc[0] * 1e6;
  info->dy_um = h->xy_um ? inc[1] : inc[1] * 1e6;
  snprintf(info->feature_type, sizeof info->feature_type, "%s", h->feature_type[0] ? h->feature_type : "SUR");
done:
  return rc;
}

int bf_x3p_read_mem(bf_surface **out, const void *buf, size_t len, const char *name,
                    bf_x3p_info *info)
{
  bf_x3p_info dummy;
  if (!info)
    info = &dummy;
  memset(info, 0, sizeof *info);
  info->file_bytes = (long)len;
  *out = NULL;
  pthread_once(&xml_once, xml_init);
  if (len == 0)
    return bf_error_set(BF_EFORMAT, "%s: empty file (not an X3P zip archive)", name);

  int rc = 0;
  zip_t *z = NULL;
  zip_source_t *src = NULL;
  uint8_t *data = NULL, *hexf = NULL, *valid = NULL;
  size_t data_len = 0, hex_len = 0, valid_len = 0;
  double *tmp = NULL;
  hdr h = {0};
  bf_surface *s = NULL;
  char t[1024];

  zip_error_t ze;
  zip_error_init(&ze);
  src = zip_source_buffer_create(buf, len, 0, &ze);
  if (!src) {
    rc = bf_error_set(BF_ENOMEM, "%s: cannot wrap the file for unzip", name);
    goto done;
  }
  z = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
  if (!z) {
    int pk = len >= 4 && !memcmp(buf, "PK\003\004", 4);
    rc = bf_error_set(BF_EFORMAT, "%s: %s (%s)", name,
                      pk ? "damaged or truncated zip archive" : "not a readable zip archive",
                      zip_error_strerror(&ze));
    zip_source_free(src);
    goto done;
  }
  if (zip_get_num_entries(z, 0) > MAX_ENTRIES) {
    rc = bf_error_set(BF_ELIMIT, "%s: zip archive lists %lld members, more than the %d an X3P may have",
                      name, (long long)zip_get_num_entries(z, 0), MAX_ENTRIES);
    goto done;
  }

  if ((rc = read_header(&h, z, name, info)))
    goto done;
  xmlNode *root = h.root;
  long nx = h.nx, ny = h.ny;
  int tsize = h.tsize;
  double *inc = h.inc, off_z = h.off_z;
  const uint8_t *xml = h.xml;
  size_t xml_len = h.xml_len;
  const char *prefix = h.prefix;

  char link[512], p[1100];
  text_at(link, sizeof link, root, "Record3/DataLink/PointDataLink");
  if (!link[0]) {
    rc = bf_error_set(BF_EFORMAT, "%s: main.xml has no Record3/DataLink/PointDataLink", name);
    goto done;
  }
  link_path(p, sizeof p, prefix, link);
  zip_int64_t didx = zip_find(z, p);
  if (didx < 0) {
    rc = bf_error_set(BF_EFORMAT, "%s: point data %s is missing from the archive", name, p);
    goto done;
  }
  size_t expect = (size_t)nx * (size_t)ny * (size_t)tsize;
  {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z, (zip_uint64_t)didx, 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE) &&
        st.size != expect) {
      rc = bf_error_set(BF_EFORMAT, "%s: %s holds %llu bytes but SizeX*SizeY*%d = %ld*%ld*%d = %zu (%s)",
                        name, link, (unsigned long long)st.size, tsize, nx, ny, tsize, expect,
                        st.size < expect ? "too short" : "too long");
      goto done;
    }
  }
  if ((rc = zip_slurp(&data, &data_len, z, didx, (long)expect, name, link)))
    goto done;

  /* Checksums: data.bin against Record3, main.xml against md5checksum.hex. */
  uint8_t d[16];
  text_at(t, sizeof t, root, "Record3/DataLink/MD5ChecksumPointData");
  if (t[0]) {
    bf_md5(d, data, data_len);
    int c = hex_cmp(t, d);
    if (c) {
      rc = bf_error_set(BF_ECHECKSUM, "%s: MD5 checksum of %s %s", name, link,
                        c < 0 ? "in main.xml is not a 32-digit hex value" : "does not match MD5ChecksumPointData (point data corrupted)");
      goto done;
    }
    info->md5_data_ok = 1;
  }
  char ckf[512];
  text_at(ckf, sizeof ckf, root, "Record4/ChecksumFile");
  link_path(p, sizeof p, prefix, ckf[0] ? ckf : "md5checksum.hex");
  zip_int64_t hidx = zip_find(z, p);
  if (hidx >= 0) {
    if ((rc = zip_slurp(&hexf, &hex_len, z, hidx, 4096, name, "md5checksum.hex")))
      goto done;
    bf_md5(d, xml, xml_len);
    int c = hex_cmp((const char *)hexf, d);
    if (c) {
      rc = bf_error_set(BF_ECHECKSUM, "%s: MD5 checksum of main.xml %s", name,
                        c < 0 ? "cannot be checked: md5checksum.hex holds no 32-digit hex value"
                              : "does not match md5checksum.hex (header corrupted)");
      goto done;
    }
    info->md5_main_ok = 1;
  } else if (ckf[0]) {
    rc = bf_error_set(BF_EFORMAT, "%s: checksum file %s named in main.xml is missing", name, ckf);
    goto done;
  }

  /* Heights, through CZ increment and offset (ISO 5436-2 needs them for I and L; F and D
   * files carry 1 and 0, applied when they do not). */
  size_t n = (size_t)nx * ny, nvalid = 0;
  tmp = bf_malloc(n * sizeof *tmp);
  if (!tmp) {
    rc = bf_error_set(BF_ENOMEM, "%s: out of memory for %zu points", name, n);
    goto done;
  }
  int scale = inc[2] != 1 || off_z != 0;
  for (size_t i = 0; i < n; i++) {
    double v;
    const uint8_t *q = data + i * tsize;
    switch (info->data_type) {
    case 'D': { double x; memcpy(&x, q, 8); v = x; break; }
    case 'F': { float x; memcpy(&x, q, 4); v = x; break; }
    case 'L': { int32_t x; memcpy(&x, q, 4); v = x; break; }
    default: { int16_t x; memcpy(&x, q, 2); v = x; break; }
    }
    if (scale)
      v = v * inc[2] + off_z;
    if (!isfinite(v))
      v = NAN;
    else
      nvalid++;
    tmp[i] = v;
  }

  /* valid.bin (ISO 5436-2, as openGPS packs it): one bit a point in data order, bit i%8 of
   * byte i/8 (least significant first), 1 = valid. */
  char vlink[512];
  text_at(vlink, sizeof vlink, root, "Record3/DataLink/ValidPointsLink");
  if (vlink[0]) {
    link_path(p, sizeof p, prefix, vlink);
    zip_int64_t vidx = zip_find(z, p);
    if (vidx < 0) {
      rc = bf_error_set(BF_EFORMAT, "%s: valid-points file %s is missing from the archive", name, vlink);
      goto done;
    }
    if ((rc = zip_slurp(&valid, &valid_len, z, vidx, (long)((n + 7) / 8), name, vlink)))
      goto done;
    if (valid_len * 8 < n) {
      rc = bf_error_set(BF_EFORMAT, "%s: %s holds %zu bytes, fewer than the %zu its %zu points need",
                        name, vlink, valid_len, (n + 7) / 8, n);
      goto done;
    }
    text_at(t, sizeof t, root, "Record3/DataLink/MD5ChecksumValidPoints");
    if (t[0]) {
      bf_md5(d, valid, valid_len);
      int c = hex_cmp(t, d);
      if (c) {
        rc = bf_error_set(BF_ECHECKSUM, "%s: MD5 checksum of %s %s", name, vlink,
                          c < 0 ? "in main.xml is not a 32-digit hex value" : "does not match MD5ChecksumValidPoints (valid-points data corrupted)");
        goto done;
      }
      info->md5_valid_ok = 1;
    }
    for (size_t i = 0; i < n; i++)
      if (!(valid[i >> 3] >> (i & 7) & 1) && !isnan(tmp[i])) {
        tmp[i] = NAN;
        nvalid--;
      }
    info->has_valid = 1;
  }
  if (nvalid == 0) {
    rc = bf_error_set(BF_EQUALITY, "%s: all %zu points are missing (NaN or marked invalid)", name, n);
    goto done;
  }

  /* Units. X3P says metres; some writers put micrometres. A spacing over 1 mm per point cannot
   * be metres on a ballistic scan, nor a (robust) height spread over 1 cm; with increments in
   * micrometres, a spread over 1 mm is taken as micrometres too. */
  int xy_um = h.xy_um;
  double range = robust_range(tmp, n, nvalid);
  if (isnan(range)) {
    rc = bf_error_set(BF_ENOMEM, "%s: out of memory sampling heights", name);
    goto done;
  }
  int z_um = range > 1e-2 || (xy_um && range > 1e-3);
  info->xy_converted_from_um = xy_um;
  info->z_converted_from_um = z_um;

  if ((rc = bf_surface_new(&s, (int)nx, (int)ny, xy_um ? inc[0] : inc[0] * 1e6,
                           xy_um ? inc[1] : inc[1] * 1e6))) {
    bf_error_prefix(rc, "%s: ", name);
    goto done;
  }
  if (xy_um)
    s->flags |= BF_SURF_XY_FROM_UM;
  if (z_um)
    s->flags |= BF_SURF_Z_FROM_UM;
  if (info->has_valid)
    s->flags |= BF_SURF_HAS_VALID;
  /* Heights beyond float range (not a surface, and UB to convert) count as missing. */
  double zs = z_um ? 1.0 : 1e6;
  size_t nfloat = 0;
  for (size_t i = 0; i < n; i++) {
    double v = tmp[i] * zs;
    s->z[i] = fabs(v) <= FLT_MAX ? (float)v : NAN;
    nfloat += fabs(v) <= FLT_MAX;
  }
  if (nfloat == 0) {
    rc = bf_error_set(BF_EQUALITY, "%s: no height of the %zu points fits a float in micrometres", name, n);
    goto done;
  }

  read_meta(&s->meta, root);
  info->meta = s->meta;

  if ((rc = read_mask(s, z, prefix, root, name)))
    goto done;
  info->has_mask = s->mask != NULL;

  *out = s;
  s = NULL;
done:
  bf_surface_free(s);
  hdr_free(&h);
  if (z)
    zip_discard(z);
  bf_free(data);
  bf_free(hexf);
  bf_free(valid);
  bf_free(tmp);
  return rc;
}

int bf_x3p_read(bf_surface **out, const char *p, bf_x3p_info *info)
{
  *out = NULL;
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = bf_file_read(p, MAX_FILE_BYTES, &buf, &len);
  if (rc)
    return rc;
  rc = bf_x3p_read_mem(out, buf, len, p, info);
  bf_free(buf);
  return rc;
}

int bf_x3p_probe(const char *p, bf_x3p_info *info)
{
  memset(info, 0, sizeof *info);
  pthread_once(&xml_once, xml_init);
  int fd, rc, ze = 0;
  size_t size;
  hdr h = {0};
  if ((rc = bf_file_open(p, MAX_FILE_BYTES, &fd, &size)))
    return rc;
  info->file_bytes = (long)size;
  if (size == 0) {
    close(fd);
    return bf_error_set(BF_EFORMAT, "%s: empty file (not an X3P zip archive)", p);
  }
  /* libzip reads the central directory and main.xml only; it owns fd from here. */
  zip_t *z = zip_fdopen(fd, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
  if (!z) {
    zip_error_t e;
    zip_error_init_with_code(&e, ze);
    rc = bf_error_set(BF_EFORMAT, "%s: not a readable zip archive (%s)", p, zip_error_strerror(&e));
    zip_error_fini(&e);
    close(fd);
    return rc;
  }
  if (zip_get_num_entries(z, 0) > MAX_ENTRIES)
    rc = bf_error_set(BF_ELIMIT, "%s: zip archive lists %lld members, more than the %d an X3P may have",
                      p, (long long)zip_get_num_entries(z, 0), MAX_ENTRIES);
  else if (!(rc = read_header(&h, z, p, info))) {
    char dt[16];
    text_at(dt, sizeof dt, h.root, "Record1/Axes/CZ/DataType");
    info->data_type = (char)toupper((unsigned char)dt[0]);
    info->z_increment = h.inc[2];
    info->z_offset = h.off_z;
    read_meta(&info->meta, h.root);
  }
  hdr_free(&h);
  zip_discard(z);
  return rc;
}

/* ---------- writer ---------- */

/* Elements below the root are unqualified (the schema's elementFormDefault), so children are
 * made without a namespace rather than inheriting the root's "p:". */
static xmlNode *add(xmlNode *parent, const char *name, const char *text)
{
  xmlNode *c = xmlNewDocNode(parent->doc, NULL, (const xmlChar *)name, NULL);
  if (c && text)
    xmlNodeAddContent(c, (const xmlChar *)text);
  if (c)
    xmlAddChild(parent, c);
  return c;
}

/* The float metres nearest to f micrometres that reads back as exactly f. About 4 % of floats
 * have no such neighbour (1e6 is not a power of two); they come back within one ulp. */
static float metres_f(float f)
{
  float g = (float)((double)f / 1e6);
  if ((float)((double)g * 1e6) == f || isnan(f))
    return g;
  float lo = g, hi = g;
  for (int k = 0; k < 4; k++) {
    lo = nextafterf(lo, -INFINITY);
    hi = nextafterf(hi, INFINITY);
    if ((float)((double)lo * 1e6) == f) return lo;
    if ((float)((double)hi * 1e6) == f) return hi;
  }
  return g;
}

/* The shortest text of a spacing in metres that reads back as exactly um micrometres. */
static void metres_text(char *out, size_t cap, double um)
{
  double g = um / 1e6, cand[9];
  cand[0] = g;
  for (int k = 1; k <= 4; k++) {
    cand[2 * k - 1] = nextafter(cand[k > 1 ? 2 * k - 3 : 0], -INFINITY);
    cand[2 * k] = nextafter(cand[k > 1 ? 2 * k - 2 : 0], INFINITY);
  }
  for (int prec = 6; prec <= 17; prec++)
    for (int k = 0; k < 9; k++) {
      snprintf(out, cap, "%.*g", prec, cand[k]);
      if (strtod(out, NULL) * 1e6 == um)
        return;
    }
  snprintf(out, cap, "%.17g", g);
}

static void add_axis(xmlNode *axes, const char *name, double inc_um)
{
  char b[64];
  metres_text(b, sizeof b, inc_um);
  xmlNode *a = add(axes, name, NULL);
  add(a, "AxisType", "I");
  add(a, "DataType", "D");
  add(a, "Increment", b);
  add(a, "Offset", "0");
}

/* xsd:dateTime wants "YYYY-MM-DDThh:mm:ss[.s][zone]": keep a date that is one, complete a bare
 * date, and otherwise use fallback. */
static void date_time(char *out, size_t cap, const char *in, const char *fallback)
{
  int Y, M, D, h, m, sec, k = 0;
  if (sscanf(in, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &k) == 6 && k == 19)
    snprintf(out, cap, "%s", in);
  else if (sscanf(in, "%4d-%2d-%2d%n", &Y, &M, &D, &k) == 3 && k == 10 && !in[10])
    snprintf(out, cap, "%sT00:00:00", in);
  else
    snprintf(out, cap, "%s", fallback);
}

int bf_x3p_write(const char *p, const bf_surface *s, char data_type)
{
  if (data_type != 'D' && data_type != 'F')
    return bf_error_set(BF_EINVAL, "%s: can only write D or F heights, not '%c'", p, data_type);
  if (!s || !s->z || s->nx <= 0 || s->ny <= 0 || (long)s->nx * s->ny > BF_MAX_POINTS)
    return bf_error_set(BF_EINVAL, "%s: no surface, or a size of %d x %d points that cannot be written",
                        p, s ? s->nx : 0, s ? s->ny : 0);
  if (!(s->dx > 0) || !(s->dy > 0) || !isfinite(s->dx) || !isfinite(s->dy))
    return bf_error_set(BF_EINVAL, "%s: spacing %g x %g um is not positive", p, s->dx, s->dy);
  pthread_once(&xml_once, xml_init);
  xml_quiet(); /* serialising odd text must not print libxml2 lines either */
  int rc = 0, tsize = type_size(data_type);
  size_t n = (size_t)s->nx * s->ny, dlen = n * tsize;
  uint8_t *data = bf_malloc(dlen), *png = NULL;
  size_t png_len = 0;
  xmlChar *xml = NULL;
  int xml_len = 0;
  xmlDoc *doc = NULL;
  zip_t *z = NULL;
  char tmp[4200];
  static long serial;
  snprintf(tmp, sizeof tmp, "%s.tmp%ld.%ld", p, (long)getpid(), __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
  if (!data)
    return bf_error_set(BF_ENOMEM, "%s: out of memory", p);

  for (size_t i = 0; i < n; i++) {
    if (data_type == 'D') {
      double v = (double)s->z[i] / 1e6;
      memcpy(data + 8 * i, &v, 8);
    } else {
      float v = metres_f(s->z[i]);
      memcpy(data + 4 * i, &v, 4);
    }
  }
  uint8_t d[16];
  char hex[40];
  bf_md5(d, data, dlen);
  bf_hex(hex, d, 16);

  /* Element order follows ISO5436_2.xsd; Record2 is complete because x3ptools reads it. */
  const bf_meta *mt = &s->meta;
  char now[32], date[64], cal[64], b[64];
  time_t tnow = time(NULL);
  struct tm tm;
  gmtime_r(&tnow, &tm);
  strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
  date_time(date, sizeof date, mt->date, now);
  date_time(cal, sizeof cal, mt->calibration_date, "1970-01-01T00:00:00");
  const char *probe = (!strcmp(mt->probing_type, "Contacting") || !strcmp(mt->probing_type, "NonContacting") ||
                       !strcmp(mt->probing_type, "Software")) ? mt->probing_type : "NonContacting";

  doc = xmlNewDoc((const xmlChar *)"1.0");
  xmlNode *root = xmlNewDocNode(doc, NULL, (const xmlChar *)"ISO5436_2", NULL);
  xmlNs *ns = xmlNewNs(root, (const xmlChar *)X3P_NS, (const xmlChar *)"p");
  xmlSetNs(root, ns);
  xmlNs *xsi = xmlNewNs(root, (const xmlChar *)"http://www.w3.org/2001/XMLSchema-instance", (const xmlChar *)"xsi");
  xmlNewNsProp(root, xsi, (const xmlChar *)"schemaLocation",
               (const xmlChar *)X3P_NS " " X3P_NS "/ISO5436_2.xsd");
  xmlDocSetRootElement(doc, root);
  xmlNode *r1 = add(root, "Record1", NULL);
  add(r1, "Revision", "ISO5436 - 2000");
  add(r1, "FeatureType", s->ny == 1 && !strcmp(mt->feature_type, "PRF") ? "PRF" : "SUR");
  xmlNode *axes = add(r1, "Axes", NULL);
  char dts[2] = {data_type, 0};
  add_axis(axes, "CX", s->dx);
  add_axis(axes, "CY", s->dy);
  xmlNode *cz = add(axes, "CZ", NULL);
  add(cz, "AxisType", "A");
  add(cz, "DataType", dts);
  add(cz, "Increment", "1");
  add(cz, "Offset", "0");
  xmlNode *r2 = add(root, "Record2", NULL);
  add(r2, "Date", date);
  add(r2, "Creator", mt->creator[0] ? mt->creator : "bfm");
  xmlNode *ins = add(r2, "Instrument", NULL);
  add(ins, "Manufacturer", mt->manufacturer[0] ? mt->manufacturer : "unknown");
  add(ins, "Model", mt->model[0] ? mt->model : "unknown");
  add(ins, "Serial", mt->serial[0] ? mt->serial : "unknown");
  add(ins, "Version", mt->version[0] ? mt->version : "unknown");
  add(r2, "CalibrationDate", cal);
  xmlNode *ps = add(r2, "ProbingSystem", NULL);
  add(ps, "Type", probe);
  add(ps, "Identification", mt->probing_id[0] ? mt->probing_id : "unknown");
  add(r2, "Comment", mt->comment);
  xmlNode *r3 = add(root, "Record3", NULL);
  xmlNode *md = add(r3, "MatrixDimension", NULL);
  snprintf(b, sizeof b, "%d", s->nx);
  add(md, "SizeX", b);
  snprintf(b, sizeof b, "%d", s->ny);
  add(md, "SizeY", b);
  add(md, "SizeZ", "1");
  xmlNode *dl = add(r3, "DataLink", NULL);
  add(dl, "PointDataLink", "bindata/data.bin");
  add(dl, "MD5ChecksumPointData", hex);
  if (s->mask) {
    /* Not in ISO5436_2.xsd: the mask legend as x3ptools writes and reads it. */
    if ((rc = bf_cv_encode_png_rgb(&png, &png_len, s->mask, s->nx, s->ny))) {
      bf_error_prefix(rc, "%s: mask: ", p);
      goto done;
    }
    xmlNode *mk = add(r3, "Mask", NULL);
    snprintf(b, sizeof b, "#%06x", s->mask_background & 0xFFFFFF);
    add(mk, "Background", b);
    xmlNode *an = add(mk, "Annotations", NULL);
    for (int i = 0; i < s->nlabels; i++) {
      xmlNode *a = add(an, "Annotation", s->labels[i].name);
      snprintf(b, sizeof b, "#%06x", s->labels[i].rgb & 0xFFFFFF);
      xmlNewProp(a, (const xmlChar *)"color", (const xmlChar *)b);
    }
  }
  xmlNode *r4 = add(root, "Record4", NULL);
  add(r4, "ChecksumFile", "md5checksum.hex");
  xmlDocDumpFormatMemoryEnc(doc, &xml, &xml_len, "UTF-8", 1);
  if (!xml) {
    rc = bf_error_set(BF_ENOMEM, "%s: cannot serialise main.xml", p);
    goto done;
  }
  bf_md5(d, xml, (size_t)xml_len);
  char sum[64];
  bf_hex(sum, d, 16);
  strcat(sum, " *main.xml\n"); /* as `md5sum -b main.xml` writes it */

  int zerr = 0;
  unlink(tmp);
  z = zip_open(tmp, ZIP_CREATE | ZIP_EXCL, &zerr);
  if (!z) {
    zip_error_t e;
    zip_error_init_with_code(&e, zerr);
    rc = bf_error_set(BF_EIO, "%s: cannot create the archive: %s", p, zip_error_strerror(&e));
    zip_error_fini(&e);
    goto done;
  }
  struct { const char *name; const void *buf; size_t len; } mem[] = {
    {"main.xml", xml, (size_t)xml_len},
    {"bindata/data.bin", data, dlen},
    {"md5checksum.hex", sum, strlen(sum)},
    {"bindata/mask.png", png, png_len},
  };
  zip_dir_add(z, "bindata", ZIP_FL_ENC_UTF_8);
  for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++) {
    if (!mem[i].buf)
      continue;
    zip_source_t *zs = zip_source_buffer(z, mem[i].buf, mem[i].len, 0);
    if (!zs || zip_file_add(z, mem[i].name, zs, ZIP_FL_OVERWRITE) < 0) {
      zip_source_free(zs);
      rc = bf_error_set(BF_EIO, "%s: cannot add %s: %s", p, mem[i].name, zip_strerror(z));
      goto done;
    }
  }
  if (zip_close(z) != 0) {
    rc = bf_error_set(BF_EIO, "%s: cannot write the archive: %s", p, zip_strerror(z));
    goto done;
  }
  z = NULL;
  if (rename(tmp, p) != 0) {
    rc = bf_error_set(BF_EIO, "%s: cannot move the new file into place: %s", p, strerror(errno));
    goto done;
  }
done:
  if (z)
    zip_discard(z);
  if (rc)
    unlink(tmp);
  if (doc)
    xmlFreeDoc(doc);
  xmlFree(xml);
  bf_free(data);
  bf_free(png);
  return rc;
}
