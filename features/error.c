#include "bf_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_msg[1024];

int bf_error_set(int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_msg, sizeof last_msg, fmt, ap);
  va_end(ap);
  return code;
}

int bf_error_prefix(int code, const char *fmt, ...)
{
  char old[sizeof last_msg], pre[512];
  va_list ap;
  memcpy(old, last_msg, sizeof old);
  va_start(ap, fmt);
  vsnprintf(pre, sizeof pre, fmt, ap);
  va_end(ap);
  snprintf(last_msg, sizeof last_msg, "%s%s", pre, old);
  return code;
}

const char *bf_error_last(void) { return last_msg[0] ? last_msg : "no error message"; }

void bf_error_clear(void) { last_msg[0] = 0; }

const char *bf_error_name(int code)
{
  switch (code) {
  case BF_OK: return "ok";
  case BF_ENOMEM: return "out of memory";
  case BF_EIO: return "i/o error";
  case BF_EFORMAT: return "bad format";
  case BF_ECHECKSUM: return "checksum mismatch";
  case BF_ENOTFOUND: return "not found";
  case BF_ELIMIT: return "limit exceeded";
  case BF_EINVAL: return "invalid argument";
  case BF_EQUALITY: return "unusable data";
  case BF_EEXIST: return "already exists";
  case BF_ELOCKED: return "locked";
  case BF_ESCHEMA: return "schema mismatch";
  default: return "unknown error";
  }
}
