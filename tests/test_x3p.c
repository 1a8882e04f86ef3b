/* X3P reader and writer: the quirks real files have, every bad input of the foundation issue
 * (built here with libzip), and bit-exact round trips. */
#include "bf_alloc.h"
#include "bf_cv.h"
#include "bf_error.h"
#include "bf_hash.h"
#include "bf_x3p.h"
#include "bf_test.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <zip.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *dir;
static char path[4300];

static const char *tmp(const char *name)
{
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return path;
}

/* ---------- building X3P files by hand ---------- */

typedef struct member {
  const char *name;
  const void *buf;
  size_t len;
} member;

static int write_zip(const char *p, const member *m, int n)
{
  int err = 0;
  zip_t *z = zip_open(p, ZIP_CREATE | ZIP_TRUNCATE, &err);
  if (!z)
    return -1;
  for (int i = 0; i < n; i++) {
    zip_source_t *s = zip_source_buffer(z, m[i].buf, m[i].len, 0);
    if (!s || zip_file_add(z, m[i].name, s, ZIP_FL_OVERWRITE) < 0) {
      zip_source_free(s);
      zip_discard(z);
      return -1;
    }
  }
  return zip_close(z) == 0 ? 0 : -1;
}

static int write_bytes(const char *p, const void *b, size_t n)
{
  FILE *f = fopen(p, "wb");
  if (!f)
    return -1;
  size_t w = fwrite(b, 1, n, f);
  return (fclose(f) == 0 && w == n) ? 0 : -1;
}

/* What goes into one hand-made file; NULL fields take the defaults of spec_init(). */
typedef struct spec {
  const char *root;        /* root element open tag */
  const char *root_close;
  char dtype;
  const char *sizex, *sizey, *incx, *incy, *incz, *offz;
  const char *feature;     /* FeatureType text (SUR) */
  const char *data_md5;    /* NULL: computed; "": element left out */
  const char *valid_link, *valid_md5;
  const char *extra_r3;    /* more XML inside Record3 */
  const char *doctype;     /* put before the root */
  int shuffle;             /* records and fields out of schema order */
  const char *folder;      /* prefix of every member ("scan/") */
  int macosx;              /* add __MACOSX junk */
  int md5_style;           /* 0 "HEX *main.xml\n", 1 bare HEX, 2 upper case + "  main.xml", 3 none, 4 wrong, 5 BSD */
  const void *data;        /* data.bin; NULL = none */
  size_t data_len;
  const void *valid;
  size_t valid_len;
  const void *png;
  size_t png_len;
} spec;

static void spec_init(spec *s)
{
  memset(s, 0, sizeof *s);
  s->root = "<p:ISO5436_2 xmlns:p=\"http://www.opengps.eu/2008/ISO5436_2\">";
  s->root_close = "</p:ISO5436_2>";
  s->dtype = 'D';
  s->sizex = "4";
  s->sizey = "3";
  s->incx = "6.25e-06";
  s->incy = "6.25e-06";
  s->incz = "1";
  s->offz = "0";
  s->feature = "SUR";
}

static char xmlbuf[1 << 16];

static size_t make_xml(const spec *s)
{
  char md5[40] = "";
  if (!s->data_md5 && s->data) {
    uint8_t d[16];
    bf_md5(d, s->data, s->data_len);
    bf_hex(md5, d, 16);
  } else if (s->data_md5)
    snprintf(md5, sizeof md5, "%s", s->data_md5);
  char r1[2048], r2[1024], r3[4096], r4[256], dl[1024], valid[512] = "";
  if (s->valid_link)
    snprintf(valid, sizeof valid, "<ValidPointsLink>%s</ValidPointsLink>%s%s%s", s->valid_link,
             s->valid_md5 ? "<MD5ChecksumValidPoints>" : "", s->valid_md5 ? s->valid_md5 : "",
             s->valid_md5 ? "</MD5ChecksumValidPoints>" : "");
  char cx[256], cy[256], cz[256];
  snprintf(cx, sizeof cx, "<CX><AxisType>I</AxisType><DataType>D</DataType><Increment>%s</Increment><Offset>0</Offset></CX>", s->incx);
  snprintf(cy, sizeof cy, "<CY><AxisType>I</AxisType><DataType>D</DataType><Increment>%s</Increment><Offset>0</Offset></CY>", s->incy);
  if (s->shuffle) /* fields inside CZ reversed too */
    snprintf(cz, sizeof cz, "<CZ><Offset>%s</Offset><Increment>%s</Increment><DataType>%c</DataType><AxisType>A</AxisType></CZ>", s->offz, s->incz, s->dtype);
  else
    snprintf(cz, sizeof cz, "<CZ><AxisType>A</AxisType><DataType>%c</DataType><Increment>%s</Increment><Offset>%s</Offset></CZ>", s->dtype, s->incz, s->offz);
  if (s->shuffle)
    snprintf(r1, sizeof r1, "<Record1><Axes>%s%s%s</Axes><FeatureType>%s</FeatureType><Revision>ISO5436 - 2000</Revision></Record1>", cz, cy, cx, s->feature);
  else
    snprintf(r1, sizeof r1, "<Record1><Revision>ISO5436 - 2000</Revision><FeatureType>%s</FeatureType><Axes>%s%s%s</Axes></Record1>", s->feature, cx, cy, cz);
  snprintf(r2, sizeof r2, "<Record2><Date>2020-01-02T03:04:05</Date><Creator>test</Creator><Instrument><Manufacturer>Acme</Manufacturer><Model>M1</Model><Serial>42</Serial><Version>1.0</Version></Instrument><CalibrationDate>2019-12-31</CalibrationDate><ProbingSystem><Type>NonContacting</Type><Identification>lens</Identification></ProbingSystem><Comment>hand made</Comment></Record2>");
  snprintf(dl, sizeof dl, "<DataLink><PointDataLink>bindata/data.bin</PointDataLink>%s%s%s%s</DataLink>",
           md5[0] ? "<MD5ChecksumPointData>" : "", md5, md5[0] ? "</MD5ChecksumPointData>" : "", valid);
  char md[512];
  if (s->shuffle)
    snprintf(md, sizeof md, "<MatrixDimension><SizeZ>1</SizeZ><SizeY>%s</SizeY><SizeX>%s</SizeX></MatrixDimension>", s->sizey, s->sizex);
  else
    snprintf(md, sizeof md, "<MatrixDimension><SizeX>%s</SizeX><SizeY>%s</SizeY><SizeZ>1</SizeZ></MatrixDimension>", s->sizex, s->sizey);
  if (s->shuffle)
    snprintf(r3, sizeof r3, "<Record3>%s%s%s</Record3>", s->extra_r3 ? s->extra_r3 : "", dl, md);
  else
    snprintf(r3, sizeof r3, "<Record3>%s%s%s</Record3>", md, dl, s->extra_r3 ? s->extra_r3 : "");
  snprintf(r4, sizeof r4, "<Record4><ChecksumFile>md5checksum.hex</ChecksumFile></Record4>");
  int n;
  if (s->shuffle)
    n = snprintf(xmlbuf, sizeof xmlbuf, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n%s%s\n%s\n%s\n%s\n%s\n%s\n",
                 s->doctype ? s->doctype : "", s->root, r4, r3, r2, r1, s->root_close);
  else
    n = snprintf(xmlbuf, sizeof xmlbuf, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n%s%s\n%s\n%s\n%s\n%s\n%s\n",
                 s->doctype ? s->doctype : "", s->root, r1, r2, r3, r4, s->root_close);
  return (size_t)n;
}

/* Writes the spec as an X3P at p; returns 0 when the file was made. */
static int build(const char *p, const spec *s)
{
  size_t xl = make_xml(s);
  uint8_t d[16];
  bf_md5(d, xmlbuf, xl);
  char hex[40], sum[128] = "";
  bf_hex(hex, d, 16);
  switch (s->md5_style) {
  case 0: snprintf(sum, sizeof sum, "%s *main.xml\n", hex); break;
  case 1: snprintf(sum, sizeof sum, "%s", hex); break;
  case 2:
    for (char *c = hex; *c; c++)
      *c = (char)toupper((unsigned char)*c);
    snprintf(sum, sizeof sum, "%s  main.xml\n", hex);
    break;
  case 4: snprintf(sum, sizeof sum, "%s *main.xml\n", "0123456789abcdef0123456789abcdef"); break;
  case 5: snprintf(sum, sizeof sum, "MD5 (main.xml) = %s\n", hex); break;
  default: break;
  }
  char names[6][256];
  member m[8];
  int n = 0;
  const char *f = s->folder ? s->folder : "";
  snprintf(names[0], 256, "%smain.xml", f);
  m[n++] = (member){names[0], xmlbuf, xl};
  if (s->data) {
    snprintf(names[1], 256, "%sbindata/data.bin", f);
    m[n++] = (member){names[1], s->data, s->data_len};
  }
  if (s->md5_style != 3) {
    snprintf(names[2], 256, "%smd5checksum.hex", f);
    m[n++] = (member){names[2], sum, strlen(sum)};
  }
  if (s->valid) {
    snprintf(names[3], 256, "%sbindata/valid.bin", f);
    m[n++] = (member){names[3], s->valid, s->valid_len};
  }
  if (s->png) {
    snprintf(names[4], 256, "%sbindata/mask.png", f);
    m[n++] = (member){names[4], s->png, s->png_len};
  }
  static const char junk[] = "\0\5\26\7\0\2\0\0Mac OS X        ";
  if (s->macosx) {
    snprintf(names[5], 256, "__MACOSX/%s._main.xml", f);
    m[n++] = (member){names[5], junk, sizeof junk};
    m[n++] = (member){"__MACOSX/main.xml", junk, sizeof junk};
  }
  return write_zip(p, m, n);
}

/* ---------- helpers for checks ---------- */

/* A failed read: the code, the file named, the problem named, on one line, nothing returned. */
static void expect_fail(const char *p, int code, const char *words, const char *what)
{
  bf_surface *s = (bf_surface *)1;
  bf_error_clear();
  int rc = bf_x3p_read(&s, p, NULL);
  const char *m = bf_error_last();
  CHECKF(rc == code, "%s: got %d (%s), want %d: %s", what, rc, bf_error_name(rc), code, m);
  CHECKF(s == NULL, "%s: no surface on failure", what);
  CHECKF(strstr(m, p) != NULL, "%s: message names the file: %s", what, m);
  CHECKF(strstr(m, words) != NULL, "%s: message says '%s': %s", what, words, m);
  CHECKF(!strchr(m, '\n') && !strchr(m, '\r'), "%s: one line: %s", what, m);
  bf_surface_free(s);
}

static double dbl_data[12];
static float flt_data[12];

static void fill_data(void)
{
  for (int i = 0; i < 12; i++) {
    dbl_data[i] = (i - 5) * 1.25e-6; /* metres */
    flt_data[i] = (float)((i - 5) * 1.25e-6);
  }
  dbl_data[7] = NAN;
  flt_data[7] = NAN;
}

/* Reads a spec built to name and returns the surface (or NULL, with a failed check). */
static bf_surface *build_read(const char *name, const spec *s, bf_x3p_info *in)
{
  const char *p = tmp(name);
  CHECKF(build(p, s) == 0, "%s: built", name);
  bf_surface *r = NULL;
  int rc = bf_x3p_read(&r, p, in);
  CHECKF(rc == 0, "%s: read: %s", name, bf_error_last());
  return r;
}

/* ---------- what real files do ---------- */

static void test_quirks(void)
{
  spec s;
  bf_x3p_info in;
  bf_surface *r;

  /* plain D with a NaN */
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  r = build_read("plain.x3p", &s, &in);
  if (r) {
    CHECK(r->nx == 4 && r->ny == 3);
    CHECK(fabs(r->dx - 6.25) < 1e-9 && fabs(r->dy - 6.25) < 1e-9);
    CHECK(fabs(r->z[0] - (-6.25f)) < 1e-5 && fabs(r->z[11] - 7.5f) < 1e-5);
    CHECK(isnan(r->z[7]));
    CHECK(in.data_type == 'D' && in.md5_main_ok && in.md5_data_ok);
    CHECK(!in.xy_converted_from_um && !in.z_converted_from_um);
    CHECK(!strcmp(r->meta.manufacturer, "Acme") && !strcmp(r->meta.serial, "42"));
    CHECK(!strcmp(in.main_xml_path, "main.xml"));
  }
  bf_surface_free(r);

  /* F */
  spec_init(&s);
  s.dtype = 'F';
  s.data = flt_data;
  s.data_len = sizeof flt_data;
  r = build_read("float.x3p", &s, &in);
  if (r) {
    CHECK(in.data_type == 'F' && fabs(r->z[1] - (-5.0f)) < 1e-5 && isnan(r->z[7]));
  }
  bf_surface_free(r);

  /* I (int16) with a nanometre increment and an offset */
  int16_t i16[12];
  for (int i = 0; i < 12; i++)
    i16[i] = (int16_t)(i * 100 - 300);
  spec_init(&s);
  s.dtype = 'I';
  s.incz = "1e-09";
  s.offz = "2e-06";
  s.data = i16;
  s.data_len = sizeof i16;
  r = build_read("int16.x3p", &s, &in);
  if (r) {
    /* (i*100-300) nm + 2 um */
    CHECK(in.data_type == 'I' && fabs(r->z[0] - 1.7f) < 1e-5 && fabs(r->z[11] - 2.8f) < 1e-5);
    CHECK(in.z_increment == 1e-9 && in.z_offset == 2e-6);
  }
  bf_surface_free(r);

  /* L (int32) with a 0.1 nm increment */
  int32_t i32[12];
  for (int i = 0; i < 12; i++)
    i32[i] = (int32_t)(i * 50000 - 100000);
  spec_init(&s);
  s.dtype = 'L';
  s.incz = "1e-10";
  s.data = i32;
  s.data_len = sizeof i32;
  r = build_read("int32.x3p", &s, &in);
  if (r) {
    CHECK(in.data_type == 'L' && fabs(r->z[0] - (-10.0f)) < 1e-5 && fabs(r->z[3] - 5.0f) < 1e-5);
  }
  bf_surface_free(r);

  /* main.xml in a sub-folder, with __MACOSX entries beside it */
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  s.folder = "Scan 7/";
  s.macosx = 1;
  r = build_read("subfolder.x3p", &s, &in);
  if (r) {
    CHECK(!strcmp(in.main_xml_path, "Scan 7/main.xml"));
    CHECK(in.md5_main_ok && in.md5_data_ok && r->nx == 4);
  }
  bf_surface_free(r);

  /* namespace prefix absent: default namespace, and no namespace at all */
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  s.root = "<ISO5436_2 xmlns=\"http://www.opengps.eu/2008/ISO5436_2\">";
  s.root_close = "</ISO5436_2>";
  r = build_read("defaultns.x3p", &s, &in);
  CHECK(r && r->nx == 4 && r->ny == 3);
  bf_surface_free(r);
  s.root = "<ISO5436_2>";
  r = build_read("nons.x3p", &s, &in);
  CHECK(r && r->nx == 4 && fabs(r->dx - 6.25) < 1e-9);
  bf_surface_free(r);

  /* elements out of schema order */
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  s.shuffle = 1;
  r = build_read("shuffled.x3p", &s, &in);
  if (r) {
    CHECK(r->nx == 4 && r->ny == 3 && in.data_type == 'D');
    CHECK(fabs(r->z[11] - 7.5f) < 1e-5);
  }
  bf_surface_free(r);

  /* md5checksum.hex: bare, upper case with two blanks, BSD style; absent */
  int styles[] = {1, 2, 5};
  for (int k = 0; k < 3; k++) {
    spec_init(&s);
    s.data = dbl_data;
    s.data_len = sizeof dbl_data;
    s.md5_style = styles[k];
    char name[32];
    snprintf(name, sizeof name, "md5style%d.x3p", styles[k]);
    r = build_read(name, &s, &in);
    CHECKF(r && in.md5_main_ok, "md5 style %d verified", styles[k]);
    bf_surface_free(r);
  }
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  s.data_md5 = "D41D8CD98F00B204E9800998ECF8427E"; /* upper case, but of the empty string */
  CHECK(build(tmp("md5upper_wrong.x3p"), &s) == 0);
  expect_fail(tmp("md5upper_wrong.x3p"), BF_ECHECKSUM, "MD5ChecksumPointData", "upper-case wrong data md5");
  {
    uint8_t d[16];
    char hex[40];
    bf_md5(d, dbl_data, sizeof dbl_data);
    bf_hex(hex, d, 16);
    for (char *c = hex; *c; c++)
      *c = (char)toupper((unsigned char)*c);
    s.data_md5 = hex;
    r = build_read("md5upper.x3p", &s, &in);
    CHECK(r && in.md5_data_ok);
    bf_surface_free(r);
  }
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  s.md5_style = 3;
  s.data_md5 = "";
  /* no md5checksum.hex but Record4 names it: an error; checksums absent are reported as such */
  CHECK(build(tmp("nohex.x3p"), &s) == 0);
  expect_fail(tmp("nohex.x3p"), BF_EFORMAT, "md5checksum.hex", "checksum file named but absent");

  /* micrometre increments and heights (DFSC files) detected and kept as micrometres */
  double um[12];
  for (int i = 0; i < 12; i++)
    um[i] = (i - 5) * 2.5; /* -12.5 .. 15 um */
  spec_init(&s);
  s.incx = "7.37468";
  s.incy = "7.37468";
  s.data = um;
  s.data_len = sizeof um;
  r = build_read("micrometres.x3p", &s, &in);
  if (r) {
    CHECK(in.xy_converted_from_um && in.z_converted_from_um);
    CHECK(r->flags & BF_SURF_XY_FROM_UM && r->flags & BF_SURF_Z_FROM_UM);
    CHECK(fabs(r->dx - 7.37468) < 1e-9 && r->z[0] == -12.5f && r->z[11] == 15.0f);
  }
  bf_surface_free(r);
  /* metre increments but heights in micrometres */
  spec_init(&s);
  s.data = um;
  s.data_len = sizeof um;
  r = build_read("zmicrometres.x3p", &s, &in);
  CHECK(r && !in.xy_converted_from_um && in.z_converted_from_um && r->z[11] == 15.0f);
  bf_surface_free(r);
  /* metres with one wild value: the robust spread keeps metres */
  double spike[12];
  memcpy(spike, dbl_data, sizeof spike);
  spike[3] = 1e300; /* beyond float range: becomes missing */
  spec_init(&s);
  s.data = spike;
  s.data_len = sizeof spike;
  r = build_read("spike.x3p", &s, &in);
  CHECK(r && !in.z_converted_from_um && fabs(r->z[0] - (-6.25f)) < 1e-5 && isnan(r->z[3]));
  bf_surface_free(r);

  /* valid.bin: bit i%8 of byte i/8, least significant first, 1 = valid */
  uint8_t vb[2] = {0xFF & ~(1u << 2), 0xFF & ~(1u << 1)}; /* points 2 and 9 invalid */
  uint8_t vd[16];
  char vhex[40];
  bf_md5(vd, vb, 2);
  bf_hex(vhex, vd, 16);
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  s.valid = vb;
  s.valid_len = 2;
  s.valid_link = "bindata/valid.bin";
  s.valid_md5 = vhex;
  r = build_read("valid.x3p", &s, &in);
  if (r) {
    CHECK(in.has_valid && in.md5_valid_ok && (r->flags & BF_SURF_HAS_VALID));
    CHECK(isnan(r->z[2]) && isnan(r->z[9]) && isnan(r->z[7]));
    CHECK(!isnan(r->z[1]) && !isnan(r->z[3]) && !isnan(r->z[8]) && !isnan(r->z[10]));
  }
  bf_surface_free(r);
  s.valid_md5 = "00000000000000000000000000000000";
  CHECK(build(tmp("valid_badmd5.x3p"), &s) == 0);
  expect_fail(tmp("valid_badmd5.x3p"), BF_ECHECKSUM, "MD5ChecksumValidPoints", "valid.bin checksum");
  s.valid_md5 = NULL;
  s.valid_len = 1;
  CHECK(build(tmp("valid_short.x3p"), &s) == 0);
  expect_fail(tmp("valid_short.x3p"), BF_EFORMAT, "fewer than", "valid.bin too short");
  s.valid = NULL;
  CHECK(build(tmp("valid_missing.x3p"), &s) == 0);
  expect_fail(tmp("valid_missing.x3p"), BF_EFORMAT, "valid.bin is missing", "valid.bin missing");
}

/* ---------- bad input: a clear error, never a crash ---------- */

static void test_bad(void)
{
  spec s;
  const char *p;

  p = tmp("missing-file.x3p");
  expect_fail(p, BF_ENOTFOUND, "cannot open", "no such file");

  p = tmp("notzip.x3p");
  CHECK(write_bytes(p, "just some text, not a zip archive\n", 34) == 0);
  expect_fail(p, BF_EFORMAT, "not a readable zip", "not a zip");

  p = tmp("empty.x3p");
  CHECK(write_bytes(p, "", 0) == 0);
  expect_fail(p, BF_EFORMAT, "zip", "empty file");

  /* truncated zip: a good file cut in the middle */
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  CHECK(build(tmp("good.x3p"), &s) == 0);
  FILE *f = fopen(tmp("good.x3p"), "rb");
  static uint8_t buf[1 << 16];
  size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f)
    fclose(f);
  CHECK(n > 200);
  p = tmp("truncated.x3p");
  CHECK(write_bytes(p, buf, n / 2) == 0);
  expect_fail(p, BF_EFORMAT, "damaged or truncated zip", "truncated zip");
  /* a flipped byte inside the compressed main.xml: the zip CRC or inflate catches it */
  buf[60] ^= 0x55;
  p = tmp("corrupt.x3p");
  CHECK(write_bytes(p, buf, n) == 0);
  {
    bf_surface *r = NULL;
    int rc = bf_x3p_read(&r, p, NULL);
    CHECKF(rc < 0 && strstr(bf_error_last(), p), "corrupt member: %s", bf_error_last());
    bf_surface_free(r);
  }

  /* no main.xml */
  member m1[] = {{"bindata/data.bin", dbl_data, sizeof dbl_data}, {"readme.txt", "hi", 2}};
  p = tmp("nomain.x3p");
  CHECK(write_zip(p, m1, 2) == 0);
  expect_fail(p, BF_EFORMAT, "no main.xml", "no main.xml");

  /* malformed XML */
  member m2[] = {{"main.xml", "<p:ISO5436_2><Record1></p:ISO5436_2", 36},
                 {"bindata/data.bin", dbl_data, sizeof dbl_data}};
  p = tmp("malformed.x3p");
  CHECK(write_zip(p, m2, 2) == 0);
  expect_fail(p, BF_EFORMAT, "not well-formed XML", "malformed XML");

  /* wrong root */
  member m3[] = {{"main.xml", "<html><body/></html>", 20}};
  p = tmp("wrongroot.x3p");
  CHECK(write_zip(p, m3, 1) == 0);
  expect_fail(p, BF_EFORMAT, "root element", "wrong root");

  /* external entity and a DOCTYPE with internal entities (billion laughs) */
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  s.doctype = "<!DOCTYPE p:ISO5436_2 [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n";
  s.sizex = "&xxe;";
  p = tmp("xxe.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_EFORMAT, "DOCTYPE", "external entity");
  s.doctype = "<!DOCTYPE lolz [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
              "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>\n";
  s.sizex = "4";
  p = tmp("laughs.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_EFORMAT, "DOCTYPE", "billion laughs");

  /* missing data.bin */
  spec_init(&s);
  s.data_md5 = "";
  p = tmp("nodata.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_EFORMAT, "bindata/data.bin is missing", "missing data.bin");

  /* data.bin shorter and longer than SizeX*SizeY*8 */
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data - 8;
  p = tmp("short.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_EFORMAT, "too short", "short data.bin");
  static double longer[13];
  s.data = longer;
  s.data_len = sizeof longer;
  p = tmp("long.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_EFORMAT, "too long", "long data.bin");
  /* F data under a D header is 'too short' as well */
  s.data = flt_data;
  s.data_len = sizeof flt_data;
  p = tmp("typemismatch.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_EFORMAT, "too short", "F data declared D");

  /* SizeX / SizeY zero, negative, absurd, not a number, absent */
  struct { const char *x, *y; int code; const char *words; } sz[] = {
    {"0", "3", BF_EFORMAT, "not positive"},
    {"4", "-3", BF_EFORMAT, "not positive"},
    {"100000", "100000", BF_ELIMIT, "exceeds the limit"},
    {"300000000", "1", BF_ELIMIT, "exceeds the limit"},
    {"99999999999999999999999", "3", BF_ELIMIT, "absurdly large"},
    {"4x", "3", BF_EFORMAT, "not an integer"},
    {"", "3", BF_EFORMAT, "SizeX"},
  };
  for (size_t k = 0; k < sizeof sz / sizeof sz[0]; k++) {
    spec_init(&s);
    s.data = dbl_data;
    s.data_len = sizeof dbl_data;
    s.sizex = sz[k].x;
    s.sizey = sz[k].y;
    char name[32];
    snprintf(name, sizeof name, "size%zu.x3p", k);
    p = tmp(name);
    CHECK(build(p, &s) == 0);
    expect_fail(p, sz[k].code, sz[k].words, name);
  }

  /* zip bomb: 16 MiB of zeros (a few KiB compressed) as data.bin of a 4x3 header is refused
   * from its declared size, never inflated */
  size_t big = (size_t)16 << 20;
  uint8_t *zeros = calloc(big, 1);
  CHECK(zeros != NULL);
  if (zeros) {
    spec_init(&s);
    s.data = zeros;
    s.data_len = big;
    s.data_md5 = "";
    p = tmp("bomb.x3p");
    CHECK(build(p, &s) == 0);
    expect_fail(p, BF_EFORMAT, "holds 16777216 bytes", "zip bomb data.bin");
    /* an 8 MiB main.xml is over the header limit */
    memset(zeros, ' ', (size_t)8 << 20);
    memcpy(zeros, "<ISO5436_2>", 11);
    member mb[] = {{"main.xml", zeros, (size_t)8 << 20}};
    p = tmp("bombxml.x3p");
    CHECK(write_zip(p, mb, 1) == 0);
    expect_fail(p, BF_ELIMIT, "more than the", "zip bomb main.xml");
    free(zeros);
  }

  /* lying sizes: data.bin's declared size (local header and central directory patched to
   * 96 bytes, what 4x3 D needs) against a stream that inflates to more, or to less */
  {
    static double more[40], less[5];
    struct { const void *d; size_t n; const char *name; int code; const char *words; } lie[] = {
      {more, sizeof more, "lie_more.x3p", BF_ELIMIT, "inflates to more than its declared size"},
      {less, sizeof less, "lie_less.x3p", BF_EFORMAT, "bindata/data.bin"},
    };
    for (int k = 0; k < 2; k++) {
      spec_init(&s);
      s.data = lie[k].d;
      s.data_len = lie[k].n;
      s.data_md5 = "";
      p = tmp(lie[k].name);
      CHECK(build(p, &s) == 0);
      static uint8_t zb[1 << 16];
      FILE *fz = fopen(p, "rb");
      size_t zn = fz ? fread(zb, 1, sizeof zb, fz) : 0;
      if (fz)
        fclose(fz);
      int patched = 0;
      for (size_t i = 0; i + 46 + 16 < zn; i++) {
        uint32_t want = 96;
        if (!memcmp(zb + i, "PK\003\004", 4) && !memcmp(zb + i + 30, "bindata/data.bin", 16)) {
          memcpy(zb + i + 22, &want, 4); /* local header: uncompressed size */
          patched++;
        }
        if (!memcmp(zb + i, "PK\001\002", 4) && !memcmp(zb + i + 46, "bindata/data.bin", 16)) {
          memcpy(zb + i + 24, &want, 4); /* central directory: uncompressed size */
          patched++;
        }
      }
      CHECK(patched == 2);
      CHECK(write_bytes(p, zb, zn) == 0);
      expect_fail(p, lie[k].code, lie[k].words, lie[k].name);
    }
  }

  /* a directory bomb: more members than any X3P has */
  {
    int err = 0;
    p = tmp("manymembers.x3p");
    zip_t *z = zip_open(p, ZIP_CREATE | ZIP_TRUNCATE, &err);
    CHECK(z != NULL);
    if (z) {
      for (int i = 0; i < 10050; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "m%05d", i);
        zip_source_t *zs = zip_source_buffer(z, "", 0, 0);
        if (!zs || zip_file_add(z, nm, zs, 0) < 0)
          zip_source_free(zs);
      }
      CHECK(zip_close(z) == 0);
      expect_fail(p, BF_ELIMIT, "members", "10050 zip members");
    }
  }

  /* unknown data type */
  spec_init(&s);
  s.dtype = 'Q';
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  p = tmp("dtype.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_EFORMAT, "unknown Z data type", "unknown data type");

  /* wrong checksums */
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  s.md5_style = 4;
  p = tmp("badmain.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_ECHECKSUM, "MD5 checksum of main.xml", "wrong main.xml checksum");
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  s.data_md5 = "0123456789abcdef0123456789abcdef";
  p = tmp("baddata.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_ECHECKSUM, "MD5ChecksumPointData", "wrong data checksum");
  s.data_md5 = "not-a-checksum";
  p = tmp("junkmd5.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_ECHECKSUM, "not a 32-digit hex", "junk data checksum");

  /* all points NaN */
  double nans[12];
  for (int i = 0; i < 12; i++)
    nans[i] = NAN;
  spec_init(&s);
  s.data = nans;
  s.data_len = sizeof nans;
  p = tmp("allnan.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_EQUALITY, "all 12 points are missing", "all NaN");

  /* a bad increment */
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  s.incx = "-1e-6";
  p = tmp("badinc.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_EFORMAT, "Increment", "negative increment");

  /* mask.png that is not a PNG, and one whose header claims 100000 x 100000 pixels */
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  s.png = "GIF89a not a png at all";
  s.png_len = 23;
  p = tmp("badpng.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_EFORMAT, "mask.png is not a PNG", "mask not PNG");
  static const uint8_t hugepng[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13,
                                      'I', 'H', 'D', 'R', 0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0,
                                      8, 2, 0, 0, 0, 0, 0, 0, 0};
  s.png = hugepng;
  s.png_len = sizeof hugepng;
  p = tmp("hugepng.x3p");
  CHECK(build(p, &s) == 0);
  expect_fail(p, BF_ELIMIT, "100000 x 100000 pixels", "mask PNG bomb");
}

/* ---------- the writer ---------- */

static uint32_t next32(void) { return (uint32_t)(bf_t_next() >> 16); }

/* ISO5436_2.xsd (openGPS, 2007) transcribed in structure: element order, which are required,
 * and their types (dateTime, hexBinary, unsignedLong, the enumerations). The writer's main.xml
 * must validate against it. */
static const char iso_xsd[] =
  "<xsd:schema targetNamespace=\"http://www.opengps.eu/2008/ISO5436_2\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns=\"http://www.opengps.eu/2008/ISO5436_2\" elementFormDefault=\"unqualified\">\n"
  " <xsd:element name=\"ISO5436_2\"><xsd:complexType><xsd:sequence>\n"
  "  <xsd:element name=\"Record1\"><xsd:complexType><xsd:sequence>\n"
  "   <xsd:element name=\"Revision\" type=\"xsd:token\"/>\n"
  "   <xsd:element name=\"FeatureType\"><xsd:simpleType><xsd:restriction base=\"xsd:token\"><xsd:enumeration value=\"PRF\"/><xsd:enumeration value=\"SUR\"/><xsd:enumeration value=\"PCL\"/></xsd:restriction></xsd:simpleType></xsd:element>\n"
  "   <xsd:element name=\"Axes\"><xsd:complexType><xsd:sequence>\n"
  "    <xsd:element name=\"CX\" type=\"Axis\"/><xsd:element name=\"CY\" type=\"Axis\"/><xsd:element name=\"CZ\" type=\"Axis\"/>\n"
  "    <xsd:element name=\"Rotation\" minOccurs=\"0\"><xsd:complexType><xsd:sequence>\n"
  "     <xsd:element name=\"r11\" type=\"xsd:double\"/><xsd:element name=\"r12\" type=\"xsd:double\"/><xsd:element name=\"r13\" type=\"xsd:double\"/>\n"
  "     <xsd:element name=\"r21\" type=\"xsd:double\"/><xsd:element name=\"r22\" type=\"xsd:double\"/><xsd:element name=\"r23\" type=\"xsd:double\"/>\n"
  "     <xsd:element name=\"r31\" type=\"xsd:double\"/><xsd:element name=\"r32\" type=\"xsd:double\"/><xsd:element name=\"r33\" type=\"xsd:double\"/>\n"
  "    </xsd:sequence></xsd:complexType></xsd:element>\n"
  "   </xsd:sequence></xsd:complexType></xsd:element>\n"
  "  </xsd:sequence></xsd:complexType></xsd:element>\n"
  "  <xsd:element name=\"Record2\" minOccurs=\"0\"><xsd:complexType><xsd:sequence>\n"
  "   <xsd:element name=\"Date\" type=\"xsd:dateTime\"/>\n"
  "   <xsd:element name=\"Creator\" type=\"xsd:token\" minOccurs=\"0\"/>\n"
  "   <xsd:element name=\"Instrument\"><xsd:complexType><xsd:sequence>\n"
  "    <xsd:element name=\"Manufacturer\" type=\"xsd:token\"/><xsd:element name=\"Model\" type=\"xsd:token\"/>\n"
  "    <xsd:element name=\"Serial\" type=\"xsd:token\"/><xsd:element name=\"Version\" type=\"xsd:token\"/>\n"
  "   </xsd:sequence></xsd:complexType></xsd:element>\n"
  "   <xsd:element name=\"CalibrationDate\" type=\"xsd:dateTime\"/>\n"
  "   <xsd:element name=\"ProbingSystem\"><xsd:complexType><xsd:sequence>\n"
  "    <xsd:element name=\"Type\"><xsd:simpleType><xsd:restriction base=\"xsd:token\"><xsd:enumeration value=\"Contacting\"/><xsd:enumeration value=\"NonContacting\"/><xsd:enumeration value=\"Software\"/></xsd:restriction></xsd:simpleType></xsd:element>\n"
  "    <xsd:element name=\"Identification\" type=\"xsd:token\"/>\n"
  "   </xsd:sequence></xsd:complexType></xsd:element>\n"
  "   <xsd:element name=\"Comment\" type=\"xsd:string\" minOccurs=\"0\"/>\n"
  "  </xsd:sequence></xsd:complexType></xsd:element>\n"
  "  <xsd:element name=\"Record3\"><xsd:complexType><xsd:sequence>\n"
  "   <xsd:element name=\"MatrixDimension\"><xsd:complexType><xsd:sequence>\n"
  "    <xsd:element name=\"SizeX\" type=\"xsd:unsignedLong\"/><xsd:element name=\"SizeY\" type=\"xsd:unsignedLong\"/><xsd:element name=\"SizeZ\" type=\"xsd:unsignedLong\"/>\n"
  "   </xsd:sequence></xsd:complexType></xsd:element>\n"
  "   <xsd:element name=\"DataLink\"><xsd:complexType><xsd:sequence>\n"
  "    <xsd:element name=\"PointDataLink\" type=\"xsd:string\"/>\n"
  "    <xsd:element name=\"MD5ChecksumPointData\" type=\"xsd:hexBinary\"/>\n"
  "    <xsd:sequence minOccurs=\"0\"><xsd:element name=\"ValidPointsLink\" type=\"xsd:string\"/><xsd:element name=\"MD5ChecksumValidPoints\" type=\"xsd:hexBinary\"/></xsd:sequence>\n"
  "   </xsd:sequence></xsd:complexType></xsd:element>\n"
  "  </xsd:sequence></xsd:complexType></xsd:element>\n"
  "  <xsd:element name=\"Record4\"><xsd:complexType><xsd:sequence><xsd:element name=\"ChecksumFile\" type=\"xsd:string\"/></xsd:sequence></xsd:complexType></xsd:element>\n"
  "  <xsd:element name=\"VendorSpecificID\" type=\"xsd:anyURI\" minOccurs=\"0\"/>\n"
  " </xsd:sequence></xsd:complexType></xsd:element>\n"
  " <xsd:complexType name=\"Axis\"><xsd:sequence>\n"
  "  <xsd:element name=\"AxisType\"><xsd:simpleType><xsd:restriction base=\"xsd:token\"><xsd:enumeration value=\"A\"/><xsd:enumeration value=\"I\"/></xsd:restriction></xsd:simpleType></xsd:element>\n"
  "  <xsd:element name=\"DataType\" minOccurs=\"0\"><xsd:simpleType><xsd:restriction base=\"xsd:token\"><xsd:enumeration value=\"I\"/><xsd:enumeration value=\"L\"/><xsd:enumeration value=\"F\"/><xsd:enumeration value=\"D\"/></xsd:restriction></xsd:simpleType></xsd:element>\n"
  "  <xsd:element name=\"Increment\" type=\"xsd:double\" minOccurs=\"0\"/>\n"
  "  <xsd:element name=\"Offset\" type=\"xsd:double\" minOccurs=\"0\"/>\n"
  " </xsd:sequence></xsd:complexType>\n"
  "</xsd:schema>\n";

static void quiet(void *ctx, xmlErrorPtr e)
{
  (void)ctx;
  (void)e;
}

/* 0 when xml (len bytes) validates, else the number of schema errors (-1: schema broken). */
static int schema_errors(const char *xml, size_t len)
{
  int rc = -1;
  xmlSchemaParserCtxtPtr pc = xmlSchemaNewMemParserCtxt(iso_xsd, (int)sizeof iso_xsd - 1);
  xmlSchemaPtr sc = pc ? xmlSchemaParse(pc) : NULL;
  xmlSchemaValidCtxtPtr vc = sc ? xmlSchemaNewValidCtxt(sc) : NULL;
  xmlDocPtr doc = xmlReadMemory(xml, (int)len, "main.xml", NULL, XML_PARSE_NONET);
  if (vc && doc) {
    xmlSchemaSetValidStructuredErrors(vc, quiet, NULL);
    rc = xmlSchemaValidateDoc(vc, doc);
  }
  xmlFreeDoc(doc);
  xmlSchemaFreeValidCtxt(vc);
  xmlSchemaFree(sc);
  xmlSchemaFreeParserCtxt(pc);
  return rc;
}

static int same_bits(const bf_surface *a, const bf_surface *b, size_t *ndiff)
{
  size_t n = (size_t)a->nx * a->ny, d = 0;
  if (a->nx != b->nx || a->ny != b->ny)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (memcmp(&a->z[i], &b->z[i], sizeof(float)) && !(isnan(a->z[i]) && isnan(b->z[i])))
      d++;
  if (ndiff)
    *ndiff = d;
  return d == 0;
}

static void test_write(void)
{
  bf_surface *s = NULL, *r = NULL, *r2 = NULL;
  bf_x3p_info in;
  int nx = 97, ny = 61;
  CHECK(bf_surface_new(&s, nx, ny, 1.5625, 3.125) == 0);
  if (!s)
    return;
  size_t n = (size_t)nx * ny;
  for (size_t i = 0; i < n; i++) /* heights over several binades, both signs, a few NaN */
    s->z[i] = (float)(((int32_t)next32() % 2000000) * 1e-4) * ((i % 7) ? 1.0f : 0.001f);
  s->z[5] = NAN;
  s->z[n - 1] = NAN;
  snprintf(s->meta.manufacturer, sizeof s->meta.manufacturer, "Sensofar & <Co>");
  snprintf(s->meta.calibration_date, sizeof s->meta.calibration_date, "2021-08-05");

  /* D: bit-exact for any float */
  const char *p = tmp("rt_d.x3p");
  CHECKF(bf_x3p_write(p, s, 'D') == 0, "write D: %s", bf_error_last());
  CHECKF(bf_x3p_read(&r, p, &in) == 0, "read D back: %s", bf_error_last());
  if (r) {
    size_t d = 0;
    CHECKF(same_bits(s, r, &d), "D round trip bit-exact (%zu differ)", d);
    CHECK(r->dx == s->dx && r->dy == s->dy);
    CHECK(in.md5_main_ok && in.md5_data_ok && in.data_type == 'D');
    CHECK(!in.xy_converted_from_um && !in.z_converted_from_um);
    CHECK(!strcmp(r->meta.manufacturer, "Sensofar & <Co>"));
    CHECK(!strcmp(r->meta.calibration_date, "2021-08-05T00:00:00"));
  }
  /* F: floats in metres read from an F file come back bit for bit (read -> write -> read) */
  p = tmp("rt_f1.x3p");
  CHECKF(bf_x3p_write(p, s, 'F') == 0, "write F: %s", bf_error_last());
  bf_surface_free(r);
  r = NULL;
  CHECKF(bf_x3p_read(&r, p, &in) == 0, "read F: %s", bf_error_last());
  if (r) {
    size_t d = 0;
    same_bits(s, r, &d);
    /* arbitrary micrometre floats: only those without a float in metres move, by one ulp */
    CHECKF(d < n / 10, "F from arbitrary floats: %zu of %zu moved", d, n);
    int ulp_ok = 1;
    for (size_t i = 0; i < n; i++)
      if (!isnan(s->z[i]) && r->z[i] != s->z[i] && nextafterf(s->z[i], r->z[i]) != r->z[i])
        ulp_ok = 0;
    CHECK(ulp_ok);
    CHECK(in.data_type == 'F');
    p = tmp("rt_f2.x3p");
    CHECKF(bf_x3p_write(p, r, 'F') == 0, "write F again: %s", bf_error_last());
    CHECKF(bf_x3p_read(&r2, p, &in) == 0, "read F again: %s", bf_error_last());
    if (r2) {
      CHECKF(same_bits(r, r2, &d), "F read->write->read bit-exact (%zu differ)", d);
      CHECK(r2->dx == r->dx && r2->dy == r->dy);
    }
  }
  bf_surface_free(r);
  bf_surface_free(r2);
  r = r2 = NULL;

  /* what the writer puts in the zip: the standard layout x3ptools and openGPS expect */
  int err = 0;
  zip_t *z = zip_open(tmp("rt_d.x3p"), ZIP_RDONLY, &err);
  CHECK(z != NULL);
  if (z) {
    CHECK(zip_name_locate(z, "main.xml", 0) >= 0);
    CHECK(zip_name_locate(z, "bindata/data.bin", 0) >= 0);
    CHECK(zip_name_locate(z, "md5checksum.hex", 0) >= 0);
    int nxml = 0;
    for (zip_int64_t i = 0; i < zip_get_num_entries(z, 0); i++) {
      const char *nm = zip_get_name(z, (zip_uint64_t)i, 0);
      size_t l = strlen(nm);
      nxml += l >= 4 && !strcmp(nm + l - 4, ".xml"); /* x3ptools reads every .xml */
    }
    CHECK(nxml == 1);
    static char x[1 << 16], h[128];
    zip_file_t *f = zip_fopen(z, "main.xml", 0);
    zip_int64_t xl = f ? zip_fread(f, x, sizeof x - 1) : -1;
    if (f)
      zip_fclose(f);
    CHECK(xl > 0);
    x[xl > 0 ? xl : 0] = 0;
    f = zip_fopen(z, "md5checksum.hex", 0);
    zip_int64_t hl = f ? zip_fread(f, h, sizeof h - 1) : -1;
    if (f)
      zip_fclose(f);
    h[hl > 0 ? hl : 0] = 0;
    uint8_t d[16];
    char hex[40];
    bf_md5(d, x, (size_t)(xl > 0 ? xl : 0));
    bf_hex(hex, d, 16);
    CHECK(hl == 43 && !strncmp(h, hex, 32) && !strcmp(h + 32, " *main.xml\n"));
    CHECK(strstr(x, "<p:ISO5436_2 xmlns:p=\"http://www.opengps.eu/2008/ISO5436_2\"") != NULL);
    CHECK(strstr(x, "</p:ISO5436_2>") != NULL);
    CHECK(!strstr(x, "<p:Record1")); /* children unqualified, as the schema says */
    /* schema order, top level and inside the records */
    const char *order[] = {"<Record1>", "<Revision>", "<FeatureType>", "<Axes>", "<CX>", "<CY>", "<CZ>",
                           "<Record2>", "<Date>", "<Creator>", "<Instrument>", "<Manufacturer>",
                           "<Model>", "<Serial>", "<Version>", "<CalibrationDate>", "<ProbingSystem>",
                           "<Type>", "<Identification>", "<Comment", "<Record3>", "<MatrixDimension>",
                           "<SizeX>", "<SizeY>", "<SizeZ>", "<DataLink>", "<PointDataLink>",
                           "<MD5ChecksumPointData>", "<Record4>", "<ChecksumFile>"};
    const char *prev = x;
    int in_order = 1;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
      const char *q = strstr(prev, order[k]);
      if (!q) {
        fprintf(stderr, "writer: %s missing or out of order\n", order[k]);
        in_order = 0;
        break;
      }
      prev = q;
    }
    CHECK(in_order);
    CHECK(strstr(x, "<Increment>1.5625e-06</Increment>") != NULL);
    CHECK(strstr(x, "<PointDataLink>bindata/data.bin</PointDataLink>") != NULL);
    CHECK(strstr(x, "<CalibrationDate>2021-08-05T00:00:00</CalibrationDate>") != NULL);
    CHECK(strstr(x, "Sensofar &amp; &lt;Co&gt;") != NULL);
    int se = schema_errors(x, (size_t)xl);
    CHECKF(se == 0, "writer's main.xml validates against ISO5436_2.xsd (%d)", se);
    /* and the check can fail: the records swapped, or a date that is no xsd:dateTime */
    char *r2 = strstr(x, "  <Record2>"), *r3 = strstr(x, "  <Record3>");
    if (r2 && r3) {
      static char y[1 << 16];
      size_t a = (size_t)(r2 - x), b = (size_t)(r3 - x);
      char *r1 = strstr(x, "  <Record1>");
      size_t c = r1 ? (size_t)(r1 - x) : 0;
      int yl = snprintf(y, sizeof y, "%.*s%.*s%.*s%s", (int)c, x, (int)(b - a), x + a, (int)(a - c), x + c, x + b);
      CHECK(r1 && schema_errors(y, (size_t)yl) > 0);
    }
    char *cd = strstr(x, "2021-08-05T00:00:00");
    if (cd) {
      memcpy(cd + 10, "         ", 9); /* "2021-08-05" and blanks */
      CHECK(schema_errors(x, (size_t)xl) > 0);
    }
    zip_close(z);
  }

  /* mask and legend round trip */
  s->mask = malloc(n * sizeof *s->mask);
  s->labels = calloc(2, sizeof *s->labels);
  CHECK(s->mask && s->labels);
  if (s->mask && s->labels) {
    for (int y = 0; y < ny; y++)
      for (int x2 = 0; x2 < nx; x2++)
        s->mask[(size_t)y * nx + x2] = x2 < 10 ? 0xFF0000 : (y < 5 ? 0x1F77B4 : 0xCD7F32);
    s->mask_background = 0xCD7F32;
    s->nlabels = 2;
    s->labels[0] = (bf_mask_label){0xFF0000, "Firing pin impression"};
    s->labels[1] = (bf_mask_label){0x1F77B4, "Breech face <left>"};
    s->flags |= BF_SURF_HAS_MASK;
    p = tmp("mask.x3p");
    CHECKF(bf_x3p_write(p, s, 'F') == 0, "write with mask: %s", bf_error_last());
    CHECKF(bf_x3p_read(&r, p, &in) == 0, "read with mask: %s", bf_error_last());
    if (r) {
      CHECK(in.has_mask && r->mask && (r->flags & BF_SURF_HAS_MASK));
      CHECK(r->mask && !memcmp(r->mask, s->mask, n * sizeof *s->mask));
      CHECK(r->mask_background == 0xCD7F32);
      CHECK(r->nlabels == 2);
      if (r->nlabels == 2) {
        CHECK(r->labels[0].rgb == 0xFF0000 && !strcmp(r->labels[0].name, "Firing pin impression"));
        CHECK(r->labels[1].rgb == 0x1F77B4 && !strcmp(r->labels[1].name, "Breech face <left>"));
      }
    }
    bf_surface_free(r);
    r = NULL;
  }

  /* a legend as x3ptools writes it: #RRGGBBAA and R colour names */
  {
    spec sp;
    spec_init(&sp);
    sp.data = dbl_data;
    sp.data_len = sizeof dbl_data;
    uint32_t px[12];
    for (int i = 0; i < 12; i++)
      px[i] = i < 6 ? 0xFF0000 : 0xCD7F32;
    uint8_t *png = NULL;
    size_t plen = 0;
    CHECK(bf_cv_encode_png_rgb(&png, &plen, px, 4, 3) == 0);
    sp.png = png;
    sp.png_len = plen;
    sp.extra_r3 = "<Mask><Background>#CD7F32FF</Background><Annotations>"
                  "<Annotation color=\"#FF0000FF\">striae</Annotation>"
                  "<Annotation color=\"blue\">other</Annotation></Annotations></Mask>";
    bf_surface *mr = build_read("rmask.x3p", &sp, &in);
    if (mr) {
      CHECK(mr->mask && mr->mask[0] == 0xFF0000 && mr->mask[11] == 0xCD7F32);
      CHECK(mr->mask_background == 0xCD7F32);
      CHECK(mr->nlabels == 2 && mr->labels[0].rgb == 0xFF0000 && mr->labels[1].rgb == 0x0000FF);
      CHECK(mr->nlabels == 2 && !strcmp(mr->labels[0].name, "striae"));
    }
    bf_surface_free(mr);
    free(png);
  }

  /* the writer refuses what it cannot write, naming the file */
  CHECK(bf_x3p_write(tmp("bad.x3p"), s, 'I') == BF_EINVAL && strstr(bf_error_last(), "bad.x3p"));
  CHECK(bf_x3p_write("/nonexistent-dir/x.x3p", s, 'D') == BF_EIO &&
        strstr(bf_error_last(), "/nonexistent-dir/x.x3p"));
  bf_surface_free(s);
}

/* Every allocation bf_x3p_read and bf_x3p_write make through bf_alloc fails in turn: each
 * call then fails cleanly (an error naming the file, nothing returned; ASan reports any leak),
 * and the sweep ends when a read with the n-th allocation armed no longer fails. */
static void test_alloc_sweep(void)
{
  const char *p = tmp("mask.x3p");
  bf_surface *ok = NULL;
  CHECKF(bf_x3p_read(&ok, p, NULL) == 0, "read mask.x3p: %s", bf_error_last());
  if (!ok)
    return;
  int reads = 0, writes = 0;
  for (long n = 1; n < 200; n++) {
    bf_surface *r = NULL;
    bf_alloc_fail(n, 1);
    int rc = bf_x3p_read(&r, p, NULL);
    int fired = bf_alloc_fired();
    bf_alloc_fail(0, 0);
    if (!fired) {
      CHECKF(rc == 0 && r, "read with no failure fired: %s", bf_error_last());
      bf_surface_free(r);
      break;
    }
    CHECKF(rc != 0 && !r && strstr(bf_error_last(), "mask.x3p"),
           "read with allocation %ld failing: rc %d, message '%s'", n, rc, bf_error_last());
    bf_surface_free(r);
    reads++;
  }
  const char *q = tmp("sweep.x3p");
  for (long n = 1; n < 200; n++) {
    bf_alloc_fail(n, 1);
    int rc = bf_x3p_write(q, ok, 'F');
    int fired = bf_alloc_fired();
    bf_alloc_fail(0, 0);
    if (!fired) {
      CHECKF(rc == 0, "write with no failure fired: %s", bf_error_last());
      break;
    }
    CHECKF(rc != 0 && strstr(bf_error_last(), "sweep.x3p"),
           "write with allocation %ld failing: rc %d, message '%s'", n, rc, bf_error_last());
    writes++;
  }
  CHECKF(reads >= 3, "the read sweep reached %d allocations", reads);
  printf("allocation sweep: %d read and %d write failures, each clean\n", reads, writes);
  bf_surface_free(ok);
}

/* Mutated headers inside well-formed zips (with a matching md5checksum.hex, so every stage
 * is reached): each read succeeds or fails cleanly, naming the file on one line. */
static void test_fuzz(int rounds)
{
  spec sp;
  spec_init(&sp);
  sp.data = dbl_data;
  sp.data_len = sizeof dbl_data;
  static const char alphabet[] = "<>/&;:=\"'0123456789-+e.xDFIL \n#!?[]";
  char *base = malloc(sizeof xmlbuf), *x = malloc(2 * sizeof xmlbuf);
  size_t bl = make_xml(&sp);
  if (!base || !x) {
    CHECK(0);
    free(base);
    free(x);
    return;
  }
  memcpy(base, xmlbuf, bl);
  int clean = 1, nok = 0, codes[16] = {0};
  const char *p = tmp("fuzz.x3p");
  for (int r = 0; r < rounds; r++) {
    size_t xl = bl;
    memcpy(x, base, bl);
    int nmut = 1 + (int)(next32() % 4);
    for (int k = 0; k < nmut && xl > 2; k++) {
      size_t at = next32() % xl, span = 1 + next32() % 24;
      if (span > xl - at)
        span = xl - at;
      if (next32() % 2) { /* rewrite one element's text, keeping the XML well-formed */
        static const char val[] = "0123456789-+e.EDFILQ x#";
        char *gt = memchr(x + at, '>', xl - at);
        if (gt && gt + 1 < x + xl && gt[1] != '<' && gt[1] != '\n') {
          for (char *c = gt + 1; c < x + xl && *c != '<'; c++)
            *c = val[next32() % (sizeof val - 1)];
        }
        continue;
      }
      switch (next32() % 3) {
      case 0: /* delete */
        memmove(x + at, x + at + span, xl - at - span);
        xl -= span;
        break;
      case 1: /* overwrite */
        for (size_t j = 0; j < span && j < 3; j++)
          x[at + j] = alphabet[next32() % (sizeof alphabet - 1)];
        break;
      default: /* duplicate */
        if (xl + span < 2 * sizeof xmlbuf) {
          memmove(x + at + span, x + at, xl - at);
          xl += span;
        }
        break;
      }
    }
    uint8_t d[16];
    char sum[80];
    bf_md5(d, x, xl);
    bf_hex(sum, d, 16);
    strcat(sum, " *main.xml\n");
    member m[] = {{"main.xml", x, xl}, {"bindata/data.bin", dbl_data, sizeof dbl_data},
                  {"md5checksum.hex", sum, strlen(sum)}};
    if (write_zip(p, m, 3)) {
      CHECK(0);
      break;
    }
    bf_surface *s = NULL;
    bf_error_clear();
    bf_x3p_info in;
    int rc = bf_x3p_read(&s, p, &in);
    if (rc == 0) {
      nok++;
      int ts = in.data_type == 'D' ? 8 : in.data_type == 'I' ? 2 : 4;
      if (!s || (size_t)s->nx * s->ny * ts != sizeof dbl_data)
        clean = 0;
    } else {
      codes[-rc & 15]++;
      const char *msg = bf_error_last();
      if (s || !strstr(msg, p) || strchr(msg, '\n')) {
        fprintf(stderr, "fuzz round %d: rc %d, message: %s\n", r, rc, msg);
        clean = 0;
      }
    }
    bf_surface_free(s);
  }
  printf("fuzz: %d of %d mutated headers still read; failures: format %d, checksum %d, limit %d, "
         "quality %d, other %d\n", nok, rounds, codes[-BF_EFORMAT], codes[-BF_ECHECKSUM],
         codes[-BF_ELIMIT], codes[-BF_EQUALITY],
         rounds - nok - codes[-BF_EFORMAT] - codes[-BF_ECHECKSUM] - codes[-BF_ELIMIT] - codes[-BF_EQUALITY]);
  CHECKF(clean, "fuzzed headers: every failure clean (%d of %d still read)", nok, rounds);
  free(base);
  free(x);
}

/* ---------- hostile files of issue 14, each built here ---------- */

/* Runs fn with this process's stderr sent to a file; returns what was printed there. */
static const char *stderr_of(void (*fn)(void *), void *arg)
{
  static char got[4096];
  char capp[4300]; /* not through tmp(): its buffer holds the caller's file name */
  snprintf(capp, sizeof capp, "%s/stderr.txt", dir);
  fflush(stderr);
  int saved = dup(2), fd = open(capp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (saved < 0 || fd < 0)
    return "(cannot capture stderr)";
  dup2(fd, 2);
  close(fd);
  fn(arg);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  FILE *f = fopen(capp, "rb");
  size_t n = f ? fread(got, 1, sizeof got - 1, f) : 0;
  if (f)
    fclose(f);
  got[n] = 0;
  return got;
}

static int quiet_rc;
static void read_quietly(void *p)
{
  bf_surface *s = NULL;
  quiet_rc = bf_x3p_read(&s, (const char *)p, NULL);
  bf_surface_free(s);
}

static void test_hostile(void)
{
  spec s;
  const char *p;
  int cases = 0;

  /* 1. spacing: tiny (1e-13 m, 1.4e-10 m), mixed units, far apart axes, huge */
  struct { const char *x, *y, *words; } sp[] = {
    {"1e-13", "1e-13", "outside"}, {"1.4e-10", "1.4e-10", "outside"},
    {"6.25", "1.5625e-06", "same unit"}, {"1.5625e-06", "6.25", "same unit"},
    {"1e-06", "1e-04", "differ more than"}, {"5000", "5000", "outside"}};
  for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++, cases++) {
    spec_init(&s);
    s.data = dbl_data;
    s.data_len = sizeof dbl_data;
    s.incx = sp[i].x;
    s.incy = sp[i].y;
    char name[64];
    snprintf(name, sizeof name, "spacing%zu.x3p", i);
    p = tmp(name);
    CHECK(build(p, &s) == 0);
    expect_fail(p, BF_EFORMAT, sp[i].words, sp[i].x);
    bf_x3p_info in;
    CHECKF(bf_x3p_probe(p, &in) == BF_EFORMAT, "probe refuses spacing %s x %s", sp[i].x, sp[i].y);
  }

  /* 2. a FIFO and a folder named like a scan: refused at once, never opened for reading */
  p = tmp("fifo.x3p");
  unlink(p);
  CHECK(mkfifo(p, 0644) == 0);
  expect_fail(p, BF_EIO, "FIFO", "FIFO");
  {
    bf_x3p_info in;
    CHECKF(bf_x3p_probe(p, &in) == BF_EIO && strstr(bf_error_last(), "FIFO"), "probe: %s", bf_error_last());
  }
  cases++;
  p = tmp("folder.x3p");
  CHECK(mkdir(p, 0755) == 0 || errno == EEXIST);
  expect_fail(p, BF_EIO, "folder", "folder");
  cases++;

  /* 3. point clouds and profiles: refused, naming the type */
  const char *types[] = {"PCL", "PRF", "XYZ"};
  for (int i = 0; i < 3; i++, cases++) {
    spec_init(&s);
    s.data = dbl_data;
    s.data_len = sizeof dbl_data;
    s.feature = types[i];
    char name[64];
    snprintf(name, sizeof name, "type%s.x3p", types[i]);
    p = tmp(name);
    CHECK(build(p, &s) == 0);
    expect_fail(p, BF_EFORMAT, types[i], types[i]);
  }

  /* 4. a zip bomb within the size cap: 2100 x 2100 float zeros (17.6 MB) deflate to ~17 kB */
  spec_init(&s);
  s.dtype = 'F';
  s.sizex = "2100";
  s.sizey = "2100";
  size_t nb = (size_t)2100 * 2100 * 4;
  float *zeros = calloc(nb, 1);
  CHECK(zeros != NULL);
  if (zeros) {
    s.data = zeros;
    s.data_len = nb;
    p = tmp("bomb.x3p");
    CHECK(build(p, &s) == 0);
    struct stat st;
    CHECKF(stat(p, &st) == 0 && st.st_size < (1 << 20), "bomb is small on disk (%lld bytes)", (long long)st.st_size);
    expect_fail(p, BF_ELIMIT, "zip bomb", "zip bomb");
    bf_x3p_info in; /* the header alone is fine: the probe inflates nothing */
    CHECKF(bf_x3p_probe(p, &in) == 0 && in.nx == 2100 && in.ny == 2100 && in.data_type == 'F',
           "probe of the bomb's header: %s", bf_error_last());
    free(zeros);
    cases++;
  }

  /* 5. libxml2 and libpng print nothing of their own: one message, from bfm */
  static const char badutf[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<p:ISO5436_2 xmlns:p=\"x\">\xff\xfe\x80</p:ISO5436_2>\n";
  member mx[] = {{"main.xml", badutf, sizeof badutf - 1}};
  p = tmp("badutf8.x3p");
  CHECK(write_zip(p, mx, 1) == 0);
  const char *err = stderr_of(read_quietly, (void *)p);
  CHECKF(quiet_rc == BF_EFORMAT && !err[0], "bad UTF-8 main.xml: rc %d, stderr '%s'", quiet_rc, err);
  static const char badenc[] = "<?xml version=\"1.0\" encoding=\"NO-SUCH-CODE\"?>\n<p:ISO5436_2/>\n";
  member me[] = {{"main.xml", badenc, sizeof badenc - 1}};
  p = tmp("badenc.x3p");
  CHECK(write_zip(p, me, 1) == 0);
  err = stderr_of(read_quietly, (void *)p);
  CHECKF(quiet_rc < 0 && !err[0], "unknown encoding: rc %d, stderr '%s'", quiet_rc, err);
  /* bytes iconv cannot convert: libxml2 2.9 printed "encoding error" and "I/O error" lines */
  static const char badsjis[] = "<?xml version=\"1.0\" encoding=\"SHIFT_JIS\"?>\n<p:ISO5436_2 xmlns:p=\"x\"><a>\x81\xff\x80\xfe</a></p:ISO5436_2>\n";
  member mj[] = {{"main.xml", badsjis, sizeof badsjis - 1}};
  p = tmp("badsjis.x3p");
  CHECK(write_zip(p, mj, 1) == 0);
  err = stderr_of(read_quietly, (void *)p);
  CHECKF(quiet_rc == BF_EFORMAT && !err[0], "bad SHIFT_JIS: rc %d, stderr '%s'", quiet_rc, err);
  expect_fail(p, BF_EFORMAT, "input conversion failed", "bad SHIFT_JIS");
  cases += 3;
  {
    uint32_t px[12];
    for (int i = 0; i < 12; i++)
      px[i] = i % 2 ? 0xFF0000 : 0xFFFFFF;
    uint8_t *png = NULL;
    size_t plen = 0;
    CHECK(bf_cv_encode_png_rgb(&png, &plen, px, 4, 3) == 0);
    if (png && plen > 40) {
      /* a flipped byte inside IDAT: libpng's CRC error, which it used to print itself */
      for (size_t i = 8; i + 8 < plen; i++)
        if (!memcmp(png + i, "IDAT", 4)) {
          png[i + 6] ^= 0x5A;
          break;
        }
      spec_init(&s);
      s.data = dbl_data;
      s.data_len = sizeof dbl_data;
      s.png = png;
      s.png_len = plen;
      p = tmp("badcrc_png.x3p");
      CHECK(build(p, &s) == 0);
      err = stderr_of(read_quietly, (void *)p);
      CHECKF(quiet_rc == BF_EFORMAT && !err[0], "corrupt mask PNG: rc %d (%s), stderr '%s'", quiet_rc,
             bf_error_last(), err);
      expect_fail(p, BF_EFORMAT, "mask.png", "corrupt mask PNG");
      cases++;
    }
    free(png);
  }

  /* the probe on a good file: header facts without the data */
  spec_init(&s);
  s.data = dbl_data;
  s.data_len = sizeof dbl_data;
  s.incx = "1.5625e-06";
  s.incy = "1.5625e-06";
  p = tmp("probe_ok.x3p");
  CHECK(build(p, &s) == 0);
  bf_x3p_info in;
  int rc = bf_x3p_probe(p, &in);
  CHECKF(rc == 0 && in.nx == 4 && in.ny == 3 && fabs(in.dx_um - 1.5625) < 1e-9 &&
         !strcmp(in.feature_type, "SUR") && in.data_type == 'D', "probe: %s", bf_error_last());
  printf("hostile reader cases: %d\n", cases);
}

/* Reads from several threads at once (libxml2 set up once, messages per thread). */
static void test_threads(void)
{
  char good[4300], bad[4300];
  snprintf(good, sizeof good, "%s", tmp("plain.x3p"));
  snprintf(bad, sizeof bad, "%s", tmp("badmain.x3p"));
  int ok = 0, failed_right = 0;
#pragma omp parallel for reduction(+ : ok, failed_right) schedule(static, 1)
  for (int i = 0; i < 32; i++) {
    bf_surface *r = NULL;
    if (i % 2 == 0)
      ok += bf_x3p_read(&r, good, NULL) == 0 && r && r->nx == 4;
    else
      failed_right += bf_x3p_read(&r, bad, NULL) == BF_ECHECKSUM && strstr(bf_error_last(), "badmain.x3p");
    bf_surface_free(r);
  }
  CHECKF(ok == 16 && failed_right == 16, "parallel reads: %d good, %d failed as they should", ok, failed_right);
}

int main(void)
{
  dir = bf_t_tmpdir("x3p");
  fill_data();
  test_quirks();
  test_bad();
  test_write();
  test_alloc_sweep();
  test_threads();
  test_hostile();
  const char *q = getenv("BF_QUICK");
  test_fuzz(q && *q && strcmp(q, "0") ? 150 : 1500);
  return bf_t_done();
}
