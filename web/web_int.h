/* Internals of bfm serve shared by server.c (HTTP, sessions), api.c (the store's data as JSON
 * and pictures), users.c (passwords, login throttling) and buf.c (output escaping). */
#ifndef BF_WEB_INT_H
#define BF_WEB_INT_H

#include "bf_store.h"
#include "bf_web.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

/* ---- a growing byte buffer (plain malloc: libmicrohttpd frees response bodies) ---------- */
typedef struct wbuf {
  char *p;
  size_t n, cap;
  int oom;
} wbuf;
void wb_put(wbuf *b, const void *s, size_t n);
void wb_str(wbuf *b, const char *s);
void wb_fmt(wbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wb_free(wbuf *b);
/* JSON string literal (quotes included): escapes quotes, backslash, every control character,
 * < > & ' and U+2028/9 (safe inside HTML too); invalid UTF-8 becomes U+FFFD. NULL -> "". */
void wb_json(wbuf *b, const char *s);
/* "key": string, */
void wb_jkv(wbuf *b, const char *key, const char *val, int comma);
/* A JSON number, or null when not finite. */
void wb_jnum(wbuf *b, double v);
/* HTML text (& < > " ' escaped). */
void wb_html(wbuf *b, const char *s);

/* ---- the server ------------------------------------------------------------------------ */
typedef struct web_session {
  char token[65], csrf[65];
  char user[64];
  int role;
  time_t created, last;
} web_session;

typedef struct web_pic {
  int64_t hit;
  unsigned long gen;
  uint8_t *pair, *matrix;
  size_t npair, nmatrix;
  char *lands_json; /* bullet land-score matrix as JSON, NULL for cartridge cases */
  char *err;        /* set when the comparison could not be drawn */
  unsigned long used;
} web_pic;

#define WEB_MAX_SESSIONS 512
#define WEB_MAX_PICS 16

struct bf_web {
  bf_web_opts o;
  char store_path[4096], users_path[4096], tmpdir[256];
  struct MHD_Daemon *mhd;
  /* the read-only store handle; every use holds store_lock (HDF5 is used from one thread) */
  pthread_mutex_t store_lock;
  bf_store *st;
  struct stat st_stat;
  _Atomic unsigned long gen; /* bumped whenever the store is reopened (read without store_lock) */
  /* sessions and login throttling */
  pthread_mutex_t sess_lock;
  web_session sessions[WEB_MAX_SESSIONS];
  /* rendered hit pictures, small LRU (pic_lock, then store_lock when needed) */
  pthread_mutex_t pic_lock, draw_lock;
  web_pic pics[WEB_MAX_PICS];
  unsigned long pic_clock;
  unsigned long dot_seq;
  /* pictures drawn ahead: the top candidates of an item page just served (warm thread) */
  pthread_t warm_thread;
  int warm_started, warm_stop, nwarm;
  pthread_cond_t warm_cond;
  int64_t warm[8];
};

/* Reopens the store when the file changed on disk (another writer committed). Caller holds
 * store_lock. force = 1 reopens anyway. */
int web_store_fresh(bf_web *w, int force);

/* A response an API call builds: status, content type and body (owned). */
typedef struct web_reply {
  int status;
  const char *type;
  char *body;
  size_t n;
  char retry_after[16];
} web_reply;
/* A JSON error body {"error": msg}. */
void web_reply_error(web_reply *r, int status, const char *msg);
void web_reply_json(web_reply *r, wbuf *b);

/* GET argument lookup for the api functions. */
typedef const char *(*web_arg_fn)(void *ctx, const char *name);

/* ---- api.c: one function per API route (all JSON unless named .png/.svg) ---------------- */
void web_api_summary(bf_web *w, web_reply *r);
void web_api_items(bf_web *w, web_reply *r, web_arg_fn arg, void *ctx);
void web_api_item(bf_web *w, web_reply *r, int64_t id);
void web_api_hit(bf_web *w, web_reply *r, int64_t id);
/* what: "pair.png", "matrix.png" or "lands" */
void web_api_hit_picture(bf_web *w, web_reply *r, int64_t id, const char *what);
void web_api_review(bf_web *w, web_reply *r, int64_t id, const char *examiner,
                    const char *decision, const char *note);
void web_api_links(bf_web *w, web_reply *r, web_arg_fn arg, void *ctx, int svg);
void web_api_audit(bf_web *w, web_reply *r, web_arg_fn arg, void *ctx);
void web_pics_clear(bf_web *w);
/* Queues hits whose pictures the warm thread draws into the cache (pic_lock not held). */
void web_pics_warm(bf_web *w, const int64_t *hits, int n);
/* The warm thread's body (arg: bf_web *). */
void *web_pics_warm_main(void *arg);

/* ---- users.c ---------------------------------------------------------------------------- */
/* Checks name/password against the users file. 0 and *role on success; BF_ENOTFOUND for a
 * wrong name or password (the same time is spent either way); other BF_E* for a bad file. */
int web_user_check(const char *path, const char *name, const char *password, int *role);
/* Counts the users in a file (0 when it holds none); < 0 on error. */
int web_users_count(const char *path);
/* Failed-login throttle: seconds to wait before this user/address may try again (0: go). */
int web_throttle_wait(const char *user, const char *addr);
void web_throttle_fail(const char *user, const char *addr);
void web_throttle_ok(const char *user, const char *addr);

/* ---- assets (generated at build time from web/assets/) ---------------------------------- */
typedef struct web_asset {
  const char *name;
  const unsigned char *data;
  size_t size;
} web_asset;
const web_asset *web_asset_find(const char *name);

#endif
