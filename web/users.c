/* Users of bfm serve: a text file of "name:role:argon2id-hash" lines (libsodium's
 * crypto_pwhash_str, so the salt and cost travel with each hash), and the failed-login
 * throttle (per user and per address, exponential backoff). */
#include "bf_error.h"
#include "web_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_LEN 512

int bf_web_role_parse(const char *s)
{
  if (s && !strcmp(s, "examiner"))
    return BF_ROLE_EXAMINER;
  if (s && !strcmp(s, "reader"))
    return BF_ROLE_READER;
  return 0;
}

const char *bf_web_role_name(int role)
{
  return role == BF_ROLE_EXAMINER ? "examiner" : role == BF_ROLE_READER ? "reader" : "none";
}

static int name_ok(const char *s)
{
  size_t n = strlen(s);
  if (n < 1 || n > 63)
    return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '.' || *s == '_' || *s == '@' || *s == '-'))
      return 0;
  return 1;
}

/* Splits a line "name:role:hash" in place; 0 when malformed. */
static int split_line(char *line, char **name, char **role, char **hash)
{
  line[strcspn(line, "\r\n")] = 0;
  if (!line[0] || line[0] == '#')
    return 0;
  char *a = strchr(line, ':');
  char *b = a ? strchr(a + 1, ':') : NULL;
  if (!a || !b)
    return 0;
  *a = *b = 0;
  *name = line;
  *role = a + 1;
  *hash = b + 1;
  return name_ok(*name) && bf_web_role_parse(*role) && strlen(*hash) < crypto_pwhash_STRBYTES;
}

int bf_web_user_add(const char *path, const char *name, int role, const char *password)
{
  if (sodium_init() < 0)
    return bf_error_set(BF_EIO, "libsodium could not start");
  if (!name_ok(name))
    return bf_error_set(BF_EINVAL, "user name '%s': use 1-63 letters, digits or . _ @ -", name);
  if (role != BF_ROLE_EXAMINER && role != BF_ROLE_READER)
    return bf_error_set(BF_EINVAL, "role must be examiner or reader");
  size_t plen = strlen(password);
  if (plen < 8 || plen > 1024)
    return bf_error_set(BF_EINVAL, "the password must be 8 to 1024 characters long");
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, password, plen, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE))
    return bf_error_set(BF_ENOMEM, "out of memory hashing the password");
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int rc = 0, fd = -1;
  FILE *in = fopen(path, "r"), *out = NULL;
  if (!in && errno != ENOENT) {
    rc = bf_error_set(BF_EIO, "%s: cannot read (%s)", path, strerror(errno));
    goto done;
  }
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
  if (fd < 0 || !(out = fdopen(fd, "w"))) {
    rc = bf_error_set(BF_EIO, "%s: cannot write (%s)", tmp, strerror(errno));
    goto done;
  }
  fd = -1;
  char line[LINE_MAX_LEN], copy[LINE_MAX_LEN];
  int lineno = 0;
  while (in && fgets(line, sizeof line, in)) {
    lineno++;
    char *n, *r, *h;
    memcpy(copy, line, sizeof line);
    if (!split_line(copy, &n, &r, &h)) {
      if (line[0] != '#' && line[strspn(line, " \r\n")]) {
        rc = bf_error_set(BF_EFORMAT, "%s line %d: not name:role:hash", path, lineno);
        goto done;
      }
      fputs(line, out);
    } else if (strcmp(n, name))
      fputs(line, out);
  }
  fprintf(out, "%s:%s:%s\n", name, bf_web_role_name(role), hash);
  if (fflush(out) || fsync(fileno(out)) || ferror(out)) {
    rc = bf_error_set(BF_EIO, "%s: write failed", tmp);
    goto done;
  }
  if (fclose(out)) {
    out = NULL;
    rc = bf_error_set(BF_EIO, "%s: write failed", tmp);
    goto done;
  }
  out = NULL;
  if (rename(tmp, path))
    rc = bf_error_set(BF_EIO, "%s: cannot rename into place (%s)", path, strerror(errno));
done:
  sodium_memzero(hash, sizeof hash);
  if (in)
    fclose(in);
  if (out)
    fclose(out);
  if (fd >= 0)
    close(fd);
  if (rc)
    unlink(tmp);
  return rc;
}

int web_users_count(const char *path)
{
  FILE *f = fopen(path, "r");
  if (!f)
    return bf_error_set(BF_EIO, "%s: cannot read the users file (%s)", path, strerror(errno));
  char line[LINE_MAX_LEN];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    char *a, *b, *c;
    n += split_line(line, &a, &b, &c);
  }
  fclose(f);
  return n;
}

/* A hash to verify against when the user is unknown, so both answers take as long. */
static char dummy[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static void make_dummy(void)
{
  if (crypto_pwhash_str(dummy, "no such user, no such password", 30,
                        crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE))
    dummy[0] = 0;
}

int web_user_check(const char *path, const char *name, const char *password, int *role)
{
  char line[LINE_MAX_LEN], hash[crypto_pwhash_STRBYTES] = "";
  int found = 0, r = 0;
  FILE *f = fopen(path, "r");
  if (!f)
    return bf_error_set(BF_EIO, "%s: cannot read the users file", path);
  while (fgets(line, sizeof line, f)) {
    char *n, *ro, *h;
    if (split_line(line, &n, &ro, &h) && !strcmp(n, name)) {
      found = 1;
      r = bf_web_role_parse(ro);
      snprintf(hash, sizeof hash, "%s", h);
    }
  }
  fclose(f);
  pthread_once(&dummy_once, make_dummy);
  if (!found && !dummy[0])
    return bf_error_set(BF_ENOMEM, "out of memory checking a password");
  int ok = crypto_pwhash_str_verify(found ? hash : dummy, password, strlen(password)) == 0;
  sodium_memzero(hash, sizeof hash);
  if (!found || !ok)
    return bf_error_set(BF_ENOTFOUND, "wrong user name or password");
  *role = r;
  return 0;
}

/* ---- failed-login throttle ------------------------------------------------------------- */
#define THROTTLE_SLOTS 1024
#define THROTTLE_FREE 3      /* failures before any wait */
#define THROTTLE_MAX_WAIT 300

typedef struct throttle {
  char key[96];
  int fails;
  time_t until, last;
} throttle;

static throttle slots[THROTTLE_SLOTS];
static pthread_mutex_t tlock = PTHREAD_MUTEX_INITIALIZER;

static throttle *slot(const char *kind, const char *v, int create)
{
  char key[96];
  snprintf(key, sizeof key, "%s:%s", kind, v ? v : "");
  throttle *oldest = &slots[0];
  for (int i = 0; i < THROTTLE_SLOTS; i++) {
    if (slots[i].key[0] && !strcmp(slots[i].key, key))
      return &slots[i];
    if (slots[i].last < oldest->last)
      oldest = &slots[i];
  }
  if (!create)
    return NULL;
  memset(oldest, 0, sizeof *oldest);
  snprintf(oldest->key, sizeof oldest->key, "%s", key);
  return oldest;
}

int web_throttle_wait(const char *user, const char *addr)
{
  time_t now = time(NULL);
  int wait = 0;
  pthread_mutex_lock(&tlock);
  const throttle *t[2] = {slot("u", user, 0), slot("a", addr, 0)};
  for (int i = 0; i < 2; i++)
    if (t[i] && t[i]->until > now && t[i]->until - now > wait)
      wait = (int)(t[i]->until - now);
  pthread_mutex_unlock(&tlock);
  return wait;
}

void web_throttle_fail(const char *user, const char *addr)
{
  time_t now = time(NULL);
  pthread_mutex_lock(&tlock);
  throttle *t[2] = {slot("u", user, 1), slot("a", addr, 1)};
  for (int i = 0; i < 2; i++) {
    if (i == 1 && t[1] == t[0])
      break;
    t[i]->fails++;
    t[i]->last = now;
    if (t[i]->fails >= THROTTLE_FREE) {
      int k = t[i]->fails - THROTTLE_FREE, wait = k > 8 ? THROTTLE_MAX_WAIT : 1 << k;
      t[i]->until = now + (wait > THROTTLE_MAX_WAIT ? THROTTLE_MAX_WAIT : wait);
    }
  }
  pthread_mutex_unlock(&tlock);
}

void web_throttle_ok(const char *user, const char *addr)
{
  pthread_mutex_lock(&tlock);
  throttle *t[2] = {slot("u", user, 0), slot("a", addr, 0)};
  for (int i = 0; i < 2; i++)
    if (t[i])
      memset(t[i], 0, sizeof *t[i]);
  pthread_mutex_unlock(&tlock);
}
