/* Output buffers and escaping for bfm serve: every text from the store (case numbers, notes,
 * names are user input) passes through wb_json or wb_html on its way out. */
#include "web_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wb_put(wbuf *b, const void *s, size_t n)
{
  if (b->oom)
    return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

void wb_str(wbuf *b, const char *s)
{
  wb_put(b, s, strlen(s));
}

void wb_fmt(wbuf *b, const char *fmt, ...)
{
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (k < 0)
    return;
  if ((size_t)k < sizeof tmp) {
    wb_put(b, tmp, (size_t)k);
    return;
  }
  char *big = malloc((size_t)k + 1);
  if (!big) {
    b->oom = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)k + 1, fmt, ap);
  va_end(ap);
  wb_put(b, big, (size_t)k);
  free(big);
}

void wb_free(wbuf *b)
{
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* Length of a valid UTF-8 sequence at s (1-4), 0 when invalid (overlong, surrogate, > U+10FFFF,
 * truncated); *cp gets the code point. */
static int utf8_seq(const unsigned char *s, unsigned *cp)
{
  unsigned c = s[0];
  int n;
  unsigned min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    n = 2, min = 0x80, c &= 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3, min = 0x800, c &= 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4, min = 0x10000, c &= 0x07;
  } else
    return 0;
  for (int i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    c = c << 6 | (s[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
    return 0;
  *cp = c;
  return n;
}

void wb_json(wbuf *b, const char *s)
{
  wb_put(b, "\"", 1);
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  while (*p) {
    unsigned cp;
    int n = utf8_seq(p, &cp);
    if (!n) {
      wb_str(b, "\\ufffd");
      p++;
      continue;
    }
    if (cp == '"')
      wb_str(b, "\\\"");
    else if (cp == '\\')
      wb_str(b, "\\\\");
    else if (cp == '\n')
      wb_str(b, "\\n");
    else if (cp == '\t')
      wb_str(b, "\\t");
    else if (cp < 0x20 || cp == 0x7f || cp == '<' || cp == '>' || cp == '&' || cp == '\'' ||
             cp == 0x2028 || cp == 0x2029)
      wb_fmt(b, "\\u%04x", cp);
    else
      wb_put(b, p, (size_t)n);
    p += n;
  }
  wb_put(b, "\"", 1);
}

void wb_jkv(wbuf *b, const char *key, const char *val, int comma)
{
  wb_json(b, key);
  wb_put(b, ":", 1);
  wb_json(b, val);
  if (comma)
    wb_put(b, ",", 1);
}

void wb_jnum(wbuf *b, double v)
{
  if (isfinite(v))
    wb_fmt(b, "%.6g", v);
  else
    wb_str(b, "null");
}

void wb_html(wbuf *b, const char *s)
{
  for (; s && *s; s++) {
    switch (*s) {
    case '&': wb_str(b, "&amp;"); break;
    case '<': wb_str(b, "&lt;"); break;
    case '>': wb_str(b, "&gt;"); break;
    case '"': wb_str(b, "&quot;"); break;
    case '\'': wb_str(b, "&#39;"); break;
    default: wb_put(b, s, 1);
    }
  }
}
