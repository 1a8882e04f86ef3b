/* One escaping rule for every text output (see bf_text.h). */
#include "bf_text.h"

#include <stdint.h>
#include <string.h>

/* Decodes one UTF-8 sequence at s (shortest form, no surrogates, at most U+10FFFF). Returns its
 * length and sets *cp, or 0 when the byte at s does not start a valid sequence. */
static int utf8_next(const unsigned char *s, uint32_t *cp)
{
  unsigned c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  int n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? (c <= 0xEF ? 3 : 0) : c >= 0xC2 ? 2 : 0;
  if (!n)
    return 0;
  uint32_t v = c & (0x3F >> (n - 1));
  for (int i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    v = v << 6 | (s[i] & 0x3F);
  }
  if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return n;
}

/* Code points that steer a terminal or reorder what is shown. */
static int cp_unsafe(uint32_t v)
{
  return v < 0x20 || (v >= 0x7F && v <= 0x9F) || v == 0x2028 || v == 0x2029 ||
         (v >= 0x202A && v <= 0x202E) || (v >= 0x2066 && v <= 0x2069) || v == 0x200E ||
         v == 0x200F || v == 0x061C || v == 0xFEFF;
}

/* Writes the escape for one piece of s into e (room for 16); returns the input length used. */
static int esc_one(char e[16], const unsigned char *s)
{
  uint32_t v;
  int n = utf8_next(s, &v);
  if (!n) {
    snprintf(e, 16, "\\x%02X", s[0]);
    return 1;
  }
  if (v == '\\')
    snprintf(e, 16, "\\\\");
  else if (v == '\n')
    snprintf(e, 16, "\\n");
  else if (v == '\r')
    snprintf(e, 16, "\\r");
  else if (v == '\t')
    snprintf(e, 16, "\\t");
  else if (v < 0x80 && cp_unsafe(v))
    snprintf(e, 16, "\\x%02X", (unsigned)v);
  else if (cp_unsafe(v))
    snprintf(e, 16, "\\u{%04X}", (unsigned)v);
  else {
    memcpy(e, s, (size_t)n);
    e[n] = 0;
  }
  return n;
}

char *bf_text_esc(char *out, size_t cap, const char *s)
{
  size_t o = 0;
  if (!cap)
    return out;
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  while (*p) {
    char e[16];
    int n = esc_one(e, p);
    size_t l = strlen(e);
    if (o + l + 1 > cap)
      break;
    memcpy(out + o, e, l);
    o += l;
    p += n;
  }
  out[o] = 0;
  return out;
}

void bf_text_put(FILE *f, const char *s)
{
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  while (*p) {
    char e[16];
    p += esc_one(e, p);
    fputs(e, f);
  }
}

int bf_text_unsafe(const char *s)
{
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  while (*p) {
    uint32_t v;
    int n = utf8_next(p, &v);
    if (!n || cp_unsafe(v))
      return 1;
    p += n;
  }
  return 0;
}

void bf_text_csv(FILE *f, const char *s)
{
  s = s ? s : "";
  size_t l = strlen(s);
  /* A spreadsheet runs a cell that starts with = + - @ (or a tab or CR before one) as a
   * formula: such a field gets a leading apostrophe, which spreadsheets show as text. */
  int formula = strchr("=+-@\t\r", s[0]) && s[0];
  int quote = formula || strpbrk(s, ",\"") || (l && (s[0] == ' ' || s[l - 1] == ' '));
  if (quote)
    fputc('"', f);
  if (formula)
    fputc('\'', f);
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    char e[16];
    p += esc_one(e, p);
    for (const char *c = e; *c; c++) {
      if (*c == '"')
        fputc('"', f);
      fputc(*c, f);
    }
  }
  if (quote)
    fputc('"', f);
}

void bf_text_json(FILE *f, const char *s)
{
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  fputc('"', f);
  while (*p) {
    uint32_t v;
    int n = utf8_next(p, &v);
    if (!n) {
      fputs("\\ufffd", f);
      p++;
      continue;
    }
    if (v == '"' || v == '\\')
      fprintf(f, "\\%c", (char)v);
    else if (v == '\n')
      fputs("\\n", f);
    else if (v == '\t')
      fputs("\\t", f);
    else if (v < 0x20 || v == 0x7F || v == 0x2028 || v == 0x2029)
      fprintf(f, "\\u%04x", (unsigned)v);
    else
      fwrite(p, 1, (size_t)n, f);
    p += n;
  }
  fputc('"', f);
}
