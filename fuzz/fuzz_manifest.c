/* libFuzzer target: the ingest manifest parser (engine/manifest.c: CSV, RFC 4180, header map,
 * BOM, comments) and the conversion of every row into a submission, as `bfm ingest` does. */
#include "bf_submit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > (1 << 20))
    return 0;
  bf_manifest *m = NULL;
  if (bf_manifest_parse(&m, (const char *)data, size, "fuzz.csv", ".") == 0) {
    int n = bf_manifest_nrows(m), prev = 0;
    for (int r = 0; r < n; r++) {
      int line = bf_manifest_line(m, r);
      if (line <= prev) /* lines rise */
        abort();
      prev = line;
      bf_submission sub;
      memset(&sub, 0, sizeof sub);
      (void)bf_manifest_row(m, r, &sub);
      bf_submission_clear(&sub);
    }
  }
  bf_manifest_free(m);
  return 0;
}
