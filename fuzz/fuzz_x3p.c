/* libFuzzer target: the X3P reader from memory. An input starting with "PK" is read as the
 * whole archive; anything else is taken as main.xml and wrapped, with a 4 x 3 data.bin and a
 * matching md5checksum.hex, in a zip made here, so the mutations reach the header parser
 * instead of dying on the zip's CRC. */
#include "bf_hash.h"
#include "bf_x3p.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

static double points[12] = {1e-6, 2e-6, -1e-6, 0, 5e-7, 3e-6, 1e-6, 2e-6, -2e-6, 4e-7, 1e-7, 0};

/* The zip of main.xml (len bytes), data.bin and md5checksum.hex, into a malloc'ed buffer. */
static uint8_t *wrap(const uint8_t *xml, size_t len, size_t *out_len)
{
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
  uint8_t *out = NULL;
  if (!src)
    return NULL;
  zip_t *z = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
  if (!z) {
    zip_source_free(src);
    return NULL;
  }
  zip_source_keep(src);
  uint8_t d[16];
  char sum[64];
  bf_md5(d, xml, len);
  bf_hex(sum, d, 16);
  strcat(sum, " *main.xml\n");
  struct { const char *name; const void *buf; size_t len; } m[] = {
    {"main.xml", xml, len}, {"bindata/data.bin", points, sizeof points}, {"md5checksum.hex", sum, strlen(sum)}};
  for (int i = 0; i < 3; i++) {
    zip_source_t *s = zip_source_buffer(z, m[i].buf, m[i].len, 0);
    if (!s || zip_file_add(z, m[i].name, s, ZIP_FL_OVERWRITE) < 0) {
      zip_source_free(s);
      zip_discard(z);
      zip_source_free(src);
      return NULL;
    }
    zip_set_file_compression(z, (zip_uint64_t)i, ZIP_CM_STORE, 0); /* fast: nothing to deflate */
  }
  if (zip_close(z) != 0) {
    zip_discard(z);
    zip_source_free(src);
    return NULL;
  }
  zip_stat_t st;
  if (zip_source_stat(src, &st) == 0 && zip_source_open(src) == 0) {
    out = malloc(st.size ? st.size : 1);
    if (out && zip_source_read(src, out, st.size) != (zip_int64_t)st.size) {
      free(out);
      out = NULL;
    }
    *out_len = st.size;
    zip_source_close(src);
  }
  zip_source_free(src);
  return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > (1 << 20))
    return 0;
  const uint8_t *buf = data;
  uint8_t *wrapped = NULL;
  size_t len = size;
  if (size < 2 || memcmp(data, "PK", 2)) {
    if (!(wrapped = wrap(data, size, &len)))
      return 0;
    buf = wrapped;
  }
  bf_surface *s = NULL;
  bf_x3p_info in;
  int rc = bf_x3p_read_mem(&s, buf, len, "fuzz.x3p", &in);
  if (rc == 0 && (!s || s->nx <= 0 || s->ny <= 0 || !(s->dx > 0) || !(s->dy > 0)))
    abort(); /* a surface that came back must be usable */
  bf_surface_free(s);
  free(wrapped);
  return 0;
}
