/* Error codes and the per-thread message that names the file and the problem. */
#ifndef BF_ERROR_H
#define BF_ERROR_H

enum {
  BF_OK = 0,
  BF_ENOMEM = -1,    /* allocation failed */
  BF_EIO = -2,       /* read/write/open failed */
  BF_EFORMAT = -3,   /* input is not what it claims to be */
  BF_ECHECKSUM = -4, /* a checksum did not verify */
  BF_ENOTFOUND = -5, /* no such item, file, member */
  BF_ELIMIT = -6,    /* a size or count beyond what we accept */
  BF_EINVAL = -7,    /* bad argument from the caller */
  BF_EQUALITY = -8,  /* data usable in form but not in substance (too little valid surface...) */
  BF_EEXIST = -9,    /* already there (duplicate) */
  BF_ELOCKED = -10,  /* another writer holds the store */
  BF_ESCHEMA = -11   /* store of another schema version */
};

/* Sets this thread's message (printf-style) and returns code, for `return bf_error_set(...)`. */
int bf_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with more context ("file.x3p: " + old message). */
int bf_error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *bf_error_last(void);
const char *bf_error_name(int code);
void bf_error_clear(void);

#endif
