/* bfm serve: HTTP through libmicrohttpd (no HTTP parsing of our own: headers, cookies, query
 * arguments and url-encoded forms all come from the library), sessions, CSRF, routing. */
#include "bf_error.h"
#include "web_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SESSION_MAX_AGE (24 * 3600) /* a session ends after a day whatever its use */
#define FIELD_MAX 1100

/* One request's state across libmicrohttpd's calls (POST bodies arrive in pieces). */
typedef struct req {
  struct MHD_PostProcessor *pp;
  size_t got;
  int too_big, bad_field, answered;
  char user[FIELD_MAX], password[FIELD_MAX], decision[FIELD_MAX], note[FIELD_MAX];
} req;

/* Extra response headers a route sets. */
typedef struct extra {
  char cookie[2][256];
  char location[64];
} extra;

/* ---- store ------------------------------------------------------------------------------ */

int web_store_fresh(bf_web *w, int force)
{
  struct stat s;
  if (stat(w->store_path, &s))
    return bf_error_set(BF_EIO, "the store cannot be read (%s)", strerror(errno));
  if (!force && w->st && s.st_ino == w->st_stat.st_ino && s.st_size == w->st_stat.st_size &&
      s.st_mtim.tv_sec == w->st_stat.st_mtim.tv_sec && s.st_mtim.tv_nsec == w->st_stat.st_mtim.tv_nsec)
    return 0;
  bf_store *n = NULL;
  int rc = bf_store_open(&n, w->store_path, BF_STORE_READ, NULL);
  if (rc)
    return w->st ? 0 : rc; /* keep serving the snapshot we have */
  bf_store_close(w->st);
  w->st = n;
  w->st_stat = s;
  w->gen++;
  return 0;
}

/* ---- sessions --------------------------------------------------------------------------- */

static void random_hex(char out[65])
{
  unsigned char r[32];
  randombytes_buf(r, sizeof r);
  sodium_bin2hex(out, 65, r, sizeof r);
  sodium_memzero(r, sizeof r);
}

/* Constant-time equality of a presented token with a 64-hex-digit secret. */
static int token_eq(const char *given, const char *secret)
{
  if (!given || strlen(given) != 64 || strlen(secret) != 64)
    return 0;
  return sodium_memcmp(given, secret, 64) == 0;
}

static int session_new(bf_web *w, const char *user, int role, web_session *out)
{
  time_t now = time(NULL);
  pthread_mutex_lock(&w->sess_lock);
  web_session *slot = NULL;
  for (int i = 0; i < WEB_MAX_SESSIONS; i++) {
    web_session *s = &w->sessions[i];
    if (!s->token[0] || now - s->last > w->o.session_idle || now - s->created > SESSION_MAX_AGE) {
      slot = s;
      break;
    }
    if (!slot || s->last < slot->last)
      slot = s; /* full: the least recently used one goes */
  }
  memset(slot, 0, sizeof *slot);
  random_hex(slot->token);
  random_hex(slot->csrf);
  snprintf(slot->user, sizeof slot->user, "%.63s", user);
  slot->role = role;
  slot->created = slot->last = now;
  *out = *slot;
  pthread_mutex_unlock(&w->sess_lock);
  return 0;
}

/* The live session whose token the request's cookie holds (copied to *out); 0 when none. */
static int session_find(bf_web *w, struct MHD_Connection *c, web_session *out, int drop)
{
  const char *tok = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "bfm_session");
  if (!tok || strlen(tok) != 64)
    return 0;
  time_t now = time(NULL);
  int found = 0;
  pthread_mutex_lock(&w->sess_lock);
  for (int i = 0; i < WEB_MAX_SESSIONS; i++) {
    web_session *s = &w->sessions[i];
    if (!s->token[0] || !token_eq(tok, s->token))
      continue;
    if (now - s->last > w->o.session_idle || now - s->created > SESSION_MAX_AGE) {
      memset(s, 0, sizeof *s);
      break;
    }
    s->last = now;
    *out = *s;
    found = 1;
    if (drop)
      sodium_memzero(s, sizeof *s);
    break;
  }
  pthread_mutex_unlock(&w->sess_lock);
  return found;
}

static void set_cookie(bf_web *w, extra *x, int k, const char *name, const char *value,
                       const char *path, int max_age)
{
  char age[40] = "";
  if (max_age >= 0)
    snprintf(age, sizeof age, "; Max-Age=%d", max_age);
  snprintf(x->cookie[k], sizeof x->cookie[k], "%s=%s; HttpOnly; SameSite=Strict; Path=%s%s%s",
           name, value, path, age, w->o.secure_cookie ? "; Secure" : "");
}

/* ---- responses -------------------------------------------------------------------------- */

static const char *CSP = "default-src 'none'; script-src 'self'; style-src 'self'; "
                         "img-src 'self' blob: data:; connect-src 'self'; form-action 'self'; "
                         "frame-ancestors 'none'; base-uri 'none'";

static enum MHD_Result send_reply(struct MHD_Connection *c, web_reply *r, const extra *x)
{
  struct MHD_Response *resp;
  if (r->body)
    resp = MHD_create_response_from_buffer_with_free_callback(r->n, r->body, free);
  else
    resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    free(r->body);
    r->body = NULL;
    return MHD_NO;
  }
  r->body = NULL;
  if (r->type)
    MHD_add_response_header(resp, "Content-Type", r->type);
  MHD_add_response_header(resp, "Content-Security-Policy", CSP);
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, "X-Frame-Options", "DENY");
  MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(resp, "Cache-Control", "no-store");
  if (r->retry_after[0])
    MHD_add_response_header(resp, "Retry-After", r->retry_after);
  if (x) {
    for (int k = 0; k < 2; k++)
      if (x->cookie[k][0])
        MHD_add_response_header(resp, "Set-Cookie", x->cookie[k]);
    if (x->location[0])
      MHD_add_response_header(resp, "Location", x->location);
  }
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  return ret;
}

static void reply_asset(web_reply *r, const char *name, const char *type)
{
  const web_asset *a = web_asset_find(name);
  if (!a) {
    web_reply_error(r, 404, "not found");
    return;
  }
  r->body = malloc(a->size ? a->size : 1);
  if (!r->body) {
    web_reply_error(r, 500, "out of memory");
    return;
  }
  memcpy(r->body, a->data, a->size);
  r->n = a->size;
  r->status = 200;
  r->type = type;
}

static void reply_text(web_reply *r, int status, const char *msg)
{
  wbuf b = {0};
  wb_str(&b, "<!doctype html><meta charset=utf-8><title>bfm</title><p>");
  wb_html(&b, msg);
  wb_str(&b, "</p><p><a href=\"/\">bfm</a></p>\n");
  r->status = status;
  r->type = "text/html; charset=utf-8";
  r->body = b.p;
  r->n = b.n;
}

/* ---- routing ---------------------------------------------------------------------------- */

static const char *get_arg(void *ctx, const char *name)
{
  return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

/* "/api/hit/123/pair.png" with prefix "/api/hit/" -> 123 and rest "/pair.png"; 0 when no id. */
static int64_t path_id(const char *url, const char *prefix, const char **rest)
{
  size_t n = strlen(prefix);
  if (strncmp(url, prefix, n))
    return 0;
  const char *p = url + n;
  int64_t v = 0;
  int digits = 0;
  while (*p >= '0' && *p <= '9' && digits < 15) {
    v = v * 10 + (*p++ - '0');
    digits++;
  }
  if (!digits || (*p >= '0' && *p <= '9'))
    return 0;
  *rest = p;
  return v;
}

static int is_page(const char *url)
{
  const char *rest;
  static const char *pages[] = {"/", "/items", "/links", "/audit"};
  for (size_t i = 0; i < sizeof pages / sizeof *pages; i++)
    if (!strcmp(url, pages[i]))
      return 1;
  return (path_id(url, "/item/", &rest) > 0 || path_id(url, "/hit/", &rest) > 0) && !*rest;
}

static void client_addr(struct MHD_Connection *c, char *buf, size_t n)
{
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(buf, n, "?");
  if (!ci || !ci->client_addr)
    return;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)n);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)n);
}

static void do_login(bf_web *w, struct MHD_Connection *c, req *rq, web_reply *r, extra *x)
{
  const char *lt = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "bfm_login");
  const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token");
  if (!lt || strlen(lt) != 64 || !token_eq(given, lt)) {
    web_reply_error(r, 403, "missing or wrong login token (reload the login page)");
    return;
  }
  char addr[64];
  client_addr(c, addr, sizeof addr);
  int wait = web_throttle_wait(rq->user, addr);
  if (wait > 0) {
    snprintf(r->retry_after, sizeof r->retry_after, "%d", wait);
    web_reply_error(r, 429, "too many failed logins: wait before trying again");
    return;
  }
  int role = 0;
  int rc = web_user_check(w->users_path, rq->user, rq->password, &role);
  sodium_memzero(rq->password, sizeof rq->password);
  if (rc == BF_ENOTFOUND) {
    web_throttle_fail(rq->user, addr);
    web_reply_error(r, 401, "wrong user name or password");
    return;
  }
  if (rc) {
    web_reply_error(r, 500, "the users file cannot be read");
    return;
  }
  web_throttle_ok(rq->user, addr);
  web_session s;
  session_new(w, rq->user, role, &s);
  set_cookie(w, x, 0, "bfm_session", s.token, "/", -1);
  set_cookie(w, x, 1, "bfm_login", "", "/", 0);
  wbuf b = {0};
  wb_str(&b, "{");
  wb_jkv(&b, "user", s.user, 1);
  wb_jkv(&b, "role", bf_web_role_name(s.role), 1);
  wb_jkv(&b, "csrf", s.csrf, 0);
  wb_str(&b, "}\n");
  web_reply_json(r, &b);
  sodium_memzero(&s, sizeof s);
}

/* Routes that need no session. 1 when handled. */
static int route_public(bf_web *w, struct MHD_Connection *c, req *rq, const char *method,
                        const char *url, web_reply *r, extra *x)
{
  int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  if (get && !strcmp(url, "/login"))
    reply_asset(r, "login.html", "text/html; charset=utf-8");
  else if (get && !strcmp(url, "/static/style.css"))
    reply_asset(r, "style.css", "text/css; charset=utf-8");
  else if (get && !strcmp(url, "/static/login.js"))
    reply_asset(r, "login.js", "text/javascript; charset=utf-8");
  else if (get && !strcmp(url, "/api/login-token")) {
    char t[65];
    random_hex(t);
    set_cookie(w, x, 0, "bfm_login", t, "/", 900);
    wbuf b = {0};
    wb_str(&b, "{");
    wb_jkv(&b, "token", t, 0);
    wb_str(&b, "}\n");
    web_reply_json(r, &b);
  } else if (!strcmp(method, "POST") && !strcmp(url, "/api/login"))
    do_login(w, c, rq, r, x);
  else
    return 0;
  return 1;
}

static void route_private(bf_web *w, struct MHD_Connection *c, req *rq, const char *method,
                          const char *url, const web_session *s, web_reply *r, extra *x)
{
  int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  const char *rest = NULL;
  int64_t id;
  if (!strcmp(method, "POST")) {
    const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token");
    if (!token_eq(given, s->csrf)) {
      web_reply_error(r, 403, "missing or wrong CSRF token");
      return;
    }
    if (!strcmp(url, "/api/logout")) {
      web_session gone;
      session_find(w, c, &gone, 1);
      set_cookie(w, x, 0, "bfm_session", "", "/", 0);
      wbuf b = {0};
      wb_str(&b, "{\"logged_out\":true}\n");
      web_reply_json(r, &b);
    } else if ((id = path_id(url, "/api/hit/", &rest)) > 0 && !strcmp(rest, "/review")) {
      if (s->role != BF_ROLE_EXAMINER)
        web_reply_error(r, 403, "only an examiner may confirm or reject a hit");
      else
        web_api_review(w, r, id, s->user, rq->decision, rq->note);
    } else
      web_reply_error(r, 404, "no such action");
    return;
  }
  if (!get) {
    web_reply_error(r, 405, "method not allowed");
    return;
  }
  if (is_page(url))
    reply_asset(r, "app.html", "text/html; charset=utf-8");
  else if (!strcmp(url, "/static/app.js"))
    reply_asset(r, "app.js", "text/javascript; charset=utf-8");
  else if (!strcmp(url, "/api/session")) {
    wbuf b = {0};
    wb_str(&b, "{");
    wb_jkv(&b, "user", s->user, 1);
    wb_jkv(&b, "role", bf_web_role_name(s->role), 1);
    wb_jkv(&b, "csrf", s->csrf, 0);
    wb_str(&b, "}\n");
    web_reply_json(r, &b);
  } else if (!strcmp(url, "/api/summary"))
    web_api_summary(w, r);
  else if (!strcmp(url, "/api/items"))
    web_api_items(w, r, get_arg, c);
  else if ((id = path_id(url, "/api/item/", &rest)) > 0 && !*rest)
    web_api_item(w, r, id);
  else if ((id = path_id(url, "/api/hit/", &rest)) > 0 && !*rest)
    web_api_hit(w, r, id);
  else if (id > 0 && (!strcmp(rest, "/pair.png") || !strcmp(rest, "/matrix.png") ||
                      !strcmp(rest, "/lands")))
    web_api_hit_picture(w, r, id, rest + 1);
  else if (!strcmp(url, "/api/links"))
    web_api_links(w, r, get_arg, c, 0);
  else if (!strcmp(url, "/api/links.svg"))
    web_api_links(w, r, get_arg, c, 1);
  else if (!strcmp(url, "/api/audit"))
    web_api_audit(w, r, get_arg, c);
  else if (!strncmp(url, "/api/", 5))
    web_reply_error(r, 404, "no such API call");
  else
    reply_text(r, 404, "No such page.");
}

static void route(bf_web *w, struct MHD_Connection *c, req *rq, const char *method,
                  const char *url, web_reply *r, extra *x)
{
  if (rq->too_big) {
    web_reply_error(r, 413, "request body too large");
    return;
  }
  if (rq->bad_field) {
    web_reply_error(r, 400, "a form field is too long");
    return;
  }
  if (route_public(w, c, rq, method, url, r, x))
    return;
  web_session s;
  if (!session_find(w, c, &s, 0)) {
    if (!strncmp(url, "/api/", 5) || strcmp(method, "GET"))
      web_reply_error(r, 401, "log in first");
    else {
      r->status = 303;
      snprintf(x->location, sizeof x->location, "/login");
      reply_text(r, 303, "Log in first.");
    }
    return;
  }
  route_private(w, c, rq, method, url, &s, r, x);
  sodium_memzero(&s, sizeof s);
}

/* ---- libmicrohttpd callbacks ------------------------------------------------------------ */

static enum MHD_Result post_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *filename, const char *ctype, const char *enc,
                                  const char *data, uint64_t off, size_t size)
{
  (void)kind, (void)filename, (void)ctype, (void)enc;
  req *rq = cls;
  char *dst = !strcmp(key, "user") ? rq->user : !strcmp(key, "password") ? rq->password
            : !strcmp(key, "decision") ? rq->decision : !strcmp(key, "note") ? rq->note : NULL;
  if (!dst)
    return MHD_YES; /* unknown fields are ignored */
  if (off + size >= FIELD_MAX) {
    rq->bad_field = 1;
    return MHD_NO;
  }
  memcpy(dst + off, data, size);
  dst[off + size] = 0;
  return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
  (void)version;
  bf_web *w = cls;
  req *rq = *con_cls;
  int post = !strcmp(method, "POST");
  if (!rq) {
    rq = calloc(1, sizeof *rq);
    if (!rq)
      return MHD_NO;
    *con_cls = rq;
    if (!post)
      goto answer;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > w->o.max_body)
      rq->too_big = 1;
    else if (!(rq->pp = MHD_create_post_processor(c, 4096, post_field, rq)) &&
             (cl && strtoull(cl, NULL, 10) > 0)) {
      web_reply r = {0};
      web_reply_error(&r, 415, "send the form as application/x-www-form-urlencoded");
      rq->answered = 1;
      return send_reply(c, &r, NULL);
    }
    if (rq->too_big) {
      web_reply r = {0};
      web_reply_error(&r, 413, "request body too large");
      rq->answered = 1;
      return send_reply(c, &r, NULL);
    }
    return MHD_YES;
  }
  if (*data_size) {
    rq->got += *data_size;
    if (rq->got > w->o.max_body)
      rq->too_big = 1;
    else if (rq->pp && !rq->bad_field)
      MHD_post_process(rq->pp, data, *data_size);
    *data_size = 0;
    return MHD_YES;
  }
answer:;
  if (rq->answered)
    return MHD_YES;
  rq->answered = 1;
  web_reply r = {0};
  extra x;
  memset(&x, 0, sizeof x);
  route(w, c, rq, method, url, &r, &x);
  enum MHD_Result ret = send_reply(c, &r, &x);
  sodium_memzero(rq->password, sizeof rq->password);
  return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
  (void)cls, (void)c, (void)toe;
  req *rq = *con_cls;
  if (!rq)
    return;
  if (rq->pp)
    MHD_destroy_post_processor(rq->pp);
  sodium_memzero(rq, sizeof *rq);
  free(rq);
  *con_cls = NULL;
}

/* ---- start / stop ----------------------------------------------------------------------- */

/* "HOST:PORT" -> socket address. HOST: IPv4 literal, "localhost", or "[IPv6 literal]". */
static int parse_listen(const char *s, struct sockaddr_storage *ss, int *v6)
{
  char host[128];
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || (size_t)(colon - s) >= sizeof host)
    return bf_error_set(BF_EINVAL, "--listen '%s': give HOST:PORT (e.g. 127.0.0.1:8080)", s);
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = 0;
  char *e;
  long port = strtol(colon + 1, &e, 10);
  if (*e || e == colon + 1 || port < 0 || port > 65535)
    return bf_error_set(BF_EINVAL, "--listen '%s': the port must be 0..65535", s);
  memset(ss, 0, sizeof *ss);
  size_t hl = strlen(host);
  if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    host[hl - 1] = 0;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
      return bf_error_set(BF_EINVAL, "--listen '%s': not an IPv6 address", s);
    *v6 = 1;
    return 0;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  if (!strcmp(host, "localhost"))
    snprintf(host, sizeof host, "127.0.0.1");
  if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
    return bf_error_set(BF_EINVAL, "--listen '%s': HOST must be an IPv4 address, localhost or "
                        "[IPv6]", s);
  *v6 = 0;
  return 0;
}

int bf_web_start(bf_web **out, const bf_web_opts *o, int *port)
{
  *out = NULL;
  if (!o || !o->store || !o->users)
    return bf_error_set(BF_EINVAL, "bf_web_start: a store and a users file are required");
  if (sodium_init() < 0)
    return bf_error_set(BF_EIO, "libsodium could not start");
  int n = web_users_count(o->users);
  if (n < 0)
    return n;
  if (n == 0)
    return bf_error_set(BF_ENOTFOUND, "%s: no users (add one with `bfm user add %s NAME --role "
                        "examiner`)", o->users, o->users);
  struct sockaddr_storage ss;
  int v6 = 0, rc = parse_listen(o->listen ? o->listen : "127.0.0.1:8080", &ss, &v6);
  if (rc)
    return rc;
  bf_web *w = calloc(1, sizeof *w);
  if (!w)
    return bf_error_set(BF_ENOMEM, "out of memory");
  w->o = *o;
  snprintf(w->store_path, sizeof w->store_path, "%s", o->store);
  snprintf(w->users_path, sizeof w->users_path, "%s", o->users);
  pthread_mutex_init(&w->store_lock, NULL);
  pthread_mutex_init(&w->sess_lock, NULL);
  pthread_mutex_init(&w->pic_lock, NULL);
  pthread_mutex_init(&w->draw_lock, NULL);
  pthread_cond_init(&w->warm_cond, NULL);
  const char *td = getenv("TMPDIR");
  snprintf(w->tmpdir, sizeof w->tmpdir, "%s/bfm-serve-XXXXXX", td && *td && strlen(td) < 200 ? td : "/tmp");
  if (!mkdtemp(w->tmpdir)) {
    rc = bf_error_set(BF_EIO, "%s: cannot make a private temporary folder", w->tmpdir);
    w->tmpdir[0] = 0;
    goto fail;
  }
  if ((rc = web_store_fresh(w, 1))) {
    bf_error_prefix(rc, "%s: ", o->store);
    goto fail;
  }
  if (!pthread_create(&w->warm_thread, NULL, web_pics_warm_main, w))
    w->warm_started = 1;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
  if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
    flags |= MHD_USE_EPOLL;
  w->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, w,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(o->threads > 0 ? o->threads : 1),
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, o->conn_memory,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
                            MHD_OPTION_NOTIFY_COMPLETED, on_done, w,
                            MHD_OPTION_END);
  if (!w->mhd) {
    rc = bf_error_set(BF_EIO, "cannot listen on %s (address in use or not ours?)", o->listen);
    goto fail;
  }
  if (port) {
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_BIND_PORT);
    *port = di ? di->port : 0;
  }
  *out = w;
  return 0;
fail:
  bf_web_stop(w);
  return rc;
}

void bf_web_stop(bf_web *w)
{
  if (!w)
    return;
  if (w->mhd)
    MHD_stop_daemon(w->mhd);
  if (w->warm_started) {
    pthread_mutex_lock(&w->pic_lock);
    w->warm_stop = 1;
    pthread_cond_signal(&w->warm_cond);
    pthread_mutex_unlock(&w->pic_lock);
    pthread_join(w->warm_thread, NULL);
  }
  bf_store_close(w->st);
  web_pics_clear(w);
  if (w->tmpdir[0])
    rmdir(w->tmpdir);
  pthread_mutex_destroy(&w->store_lock);
  pthread_mutex_destroy(&w->sess_lock);
  pthread_mutex_destroy(&w->pic_lock);
  pthread_mutex_destroy(&w->draw_lock);
  pthread_cond_destroy(&w->warm_cond);
  sodium_memzero(w->sessions, sizeof w->sessions);
  free(w);
}
