/* libFuzzer target: the ingest manifest parser (CSV, RFC 4180). It lives in tools/cmd_store.c
 * as a static function today, so that file is included here; when the parser moves into the
 * library, point PARSE / FREE at the library's entry point and drop the include. */
#include "../tools/cmd_store.c"

#define PARSE(text, len, rows, n) csv_parse((text), (len), (rows), (n), "fuzz.csv")
#define FREE(rows, n) csv_free((rows), (n))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > (1 << 20))
    return 0;
  csvrow *rows = NULL;
  int n = 0;
  int rc = PARSE((const char *)data, size, &rows, &n);
  /* what came back is whole: every field a string, lines rising */
  for (int r = 0; r < n; r++) {
    if (rows[r].nf < 1 || (r && rows[r].line <= rows[r - 1].line))
      abort();
    for (int k = 0; k < rows[r].nf; k++)
      if (!rows[r].f[k] || strlen(rows[r].f[k]) > size)
        abort();
  }
  (void)rc;
  FREE(rows, n);
  return 0;
}
