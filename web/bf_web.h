/* bfm serve: the investigators' web review screen, served by libmicrohttpd.
 *
 * Pages (plain HTML/CSS/JS embedded in the binary) and a JSON API under /api/ over one store,
 * opened read-only; an examiner's confirm/reject opens it for write for that one commit (the
 * normal single-writer transaction; BF_ELOCKED is answered "busy, try again"). Users and their
 * Argon2id password hashes (libsodium) live in a users file made by bf_web_user_add.
 *
 * Security model: every page and /api/ call except the login page needs a session (a random
 * 256-bit token in an HttpOnly, SameSite=Strict cookie); every POST carries the session's CSRF
 * token in an X-CSRF-Token header (compared in constant time; the login form uses a
 * double-submit token); failed logins are throttled per user and per address with exponential
 * backoff; requests are capped in size; no request path reaches the filesystem (assets are
 * compiled in, the store path is fixed at start); every text is escaped on output. Plain HTTP
 * on loopback by default: TLS belongs to a reverse proxy in front (README). */
#ifndef BF_WEB_H
#define BF_WEB_H

#include <stddef.h>

enum { BF_ROLE_READER = 1, BF_ROLE_EXAMINER = 2 };

typedef struct bf_web_opts {
  const char *store;      /* the store file (required) */
  const char *users;      /* users file (required; see bf_web_user_add) */
  const char *listen;     /* "HOST:PORT" (IPv4 literal, "localhost" or "[IPv6]"); port 0 = any */
  int threads;            /* request threads (thread pool) */
  size_t max_body;        /* largest POST body accepted (bytes) */
  size_t conn_memory;     /* libmicrohttpd per-connection memory limit (headers + buffers) */
  int max_connections;    /* connections at once */
  int session_idle;       /* seconds a session lives without use */
  int secure_cookie;      /* 1: add "Secure" to cookies (behind a TLS proxy) */
  const char *dot;        /* Graphviz program run for the linkage picture (argv[0], via PATH) */
} bf_web_opts;

#define BF_WEB_OPTS_INIT                                                                       \
  {                                                                                            \
    .store = NULL, .users = NULL, .listen = "127.0.0.1:8080", .threads = 4,                    \
    .max_body = 16384, .conn_memory = 65536, .max_connections = 256, .session_idle = 8 * 3600, \
    .secure_cookie = 0, .dot = "dot"                                                           \
  }

typedef struct bf_web bf_web;

/* Opens the store read-only, checks the users file and starts listening (threads run the
 * requests). Returns once the socket is bound; *port gets the bound port (may be NULL). */
int bf_web_start(bf_web **out, const bf_web_opts *o, int *port);
/* Stops serving and frees everything (NULL is a no-op). */
void bf_web_stop(bf_web *w);

/* Adds a user to a users file (created 0600 when missing) or replaces the password and role of
 * an existing one. name: 1-63 of [A-Za-z0-9._@-]; role: BF_ROLE_*; password: 8-1024 bytes.
 * The file is rewritten through a temporary file and rename. */
int bf_web_user_add(const char *path, const char *name, int role, const char *password);
/* "examiner" / "reader" -> BF_ROLE_*, 0 for anything else. */
int bf_web_role_parse(const char *s);
const char *bf_web_role_name(int role);

#endif
