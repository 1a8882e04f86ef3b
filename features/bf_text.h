/* Text that came from outside (ids, names, notes, X3P free text) made safe to print: one
 * escaping rule for every terminal, CSV and JSON output, so a newline or an escape sequence
 * in a serial number can never fabricate a line or drive the terminal. */
#ifndef BF_TEXT_H
#define BF_TEXT_H

#include <stddef.h>
#include <stdio.h>

/* For terminals and plain-text reports: C0 controls, DEL, C1 controls, bidirectional overrides,
 * the line/paragraph separators and bytes that are not UTF-8 become visible escapes (\n, \t,
 * \r, \xNN, \u{NNNN}); a backslash is doubled so an escape cannot be faked. Printable UTF-8
 * (accents, CJK) passes unchanged. Writes at most cap bytes including the NUL (truncating on
 * a whole escape) and returns out. NULL s is "". */
char *bf_text_esc(char *out, size_t cap, const char *s);
/* The same, streamed to f. */
void bf_text_put(FILE *f, const char *s);
/* One CSV field (RFC 4180): escaped as above (so a row stays one line), then quoted when it
 * holds a comma, a quote or a leading or trailing blank. A field starting with = + - @, a tab
 * or a CR is quoted with a leading apostrophe so a spreadsheet cannot run it as a formula
 * (JSON output keeps the exact value). */
void bf_text_csv(FILE *f, const char *s);
/* One JSON string, quotes included: always valid JSON; bytes that are not UTF-8 become U+FFFD,
 * controls and U+2028/U+2029 become \uNNNN escapes. */
void bf_text_json(FILE *f, const char *s);
/* True when s holds a byte that bf_text_esc would escape (a control, not UTF-8...). */
int bf_text_unsafe(const char *s);

#endif
