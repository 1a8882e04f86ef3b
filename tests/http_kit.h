/* A tiny HTTP/1.1 client over loopback for test_serve and bench_serve: one request per
 * connection, the whole answer read; login through bfm serve's double-submit token. */
#ifndef HTTP_KIT_H
#define HTTP_KIT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int port; /* the server under test */

typedef struct resp {
  int status;
  char *head, *body; /* head: status line + headers; body: after the blank line */
  size_t nbody;
} resp;

static inline void resp_free(resp *r)
{
  free(r->head);
  memset(r, 0, sizeof *r);
}

/* One request over a fresh connection (Connection: close), the whole answer read. */
static inline resp http(const char *method, const char *path, const char *headers, const char *body)
{
  resp r = {0};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
    if (fd >= 0)
      close(fd);
    return r;
  }
  size_t bl = body ? strlen(body) : 0, cap = 4096 + bl + (headers ? strlen(headers) : 0);
  char *req = malloc(cap);
  int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method,
                   path, headers ? headers : "");
  if (body)
    n += snprintf(req + n, cap - (size_t)n,
                  "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n", bl);
  n += snprintf(req + n, cap - (size_t)n, "\r\n%s", body ? body : "");
  for (ssize_t off = 0, w; off < n; off += w)
    if ((w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL)) <= 0)
      break;
  free(req);
  size_t len = 0, rcap = 65536;
  char *buf = malloc(rcap);
  for (ssize_t got; (got = recv(fd, buf + len, rcap - len - 1, 0)) > 0;) {
    len += (size_t)got;
    if (len + 1 >= rcap)
      buf = realloc(buf, rcap *= 2);
  }
  close(fd);
  buf[len] = 0;
  r.head = buf;
  sscanf(buf, "HTTP/1.%*d %d", &r.status);
  char *sep = strstr(buf, "\r\n\r\n");
  if (sep) {
    *sep = 0;
    r.body = sep + 4;
    r.nbody = len - (size_t)(r.body - buf);
  } else
    r.body = buf + len;
  return r;
}

/* Value of cookie name=... in the Set-Cookie headers of r (into out, "" when absent). */
static inline void cookie_of(const resp *r, const char *name, char *out, size_t n)
{
  char key[64];
  snprintf(key, sizeof key, "Set-Cookie: %s=", name);
  out[0] = 0;
  const char *p = r->head ? strstr(r->head, key) : NULL;
  if (p)
    snprintf(out, n, "%.*s", (int)strcspn(p + strlen(key), ";\r\n"), p + strlen(key));
}

/* A JSON string member "key":"value" (first occurrence) into out. */
static inline void json_of(const char *body, const char *key, char *out, size_t n)
{
  char k[64];
  snprintf(k, sizeof k, "\"%s\":\"", key);
  out[0] = 0;
  const char *p = body ? strstr(body, k) : NULL;
  if (p)
    snprintf(out, n, "%.*s", (int)strcspn(p + strlen(k), "\""), p + strlen(k));
}

typedef struct login {
  char session[80], csrf[80];
  int status;
} login;

static inline login do_login(const char *user, const char *password)
{
  login l = {0};
  resp t = http("GET", "/api/login-token", NULL, NULL);
  char tok[80], lt[80], hdr[400], body[300];
  json_of(t.body, "token", tok, sizeof tok);
  cookie_of(&t, "bfm_login", lt, sizeof lt);
  resp_free(&t);
  snprintf(hdr, sizeof hdr, "Cookie: bfm_login=%s\r\nX-CSRF-Token: %s\r\n", lt, tok);
  snprintf(body, sizeof body, "user=%s&password=%s", user, password);
  resp r = http("POST", "/api/login", hdr, body);
  l.status = r.status;
  cookie_of(&r, "bfm_session", l.session, sizeof l.session);
  json_of(r.body, "csrf", l.csrf, sizeof l.csrf);
  resp_free(&r);
  return l;
}

static inline resp get_as(const login *l, const char *path)
{
  char hdr[200];
  snprintf(hdr, sizeof hdr, "Cookie: bfm_session=%s\r\n", l->session);
  return http("GET", path, hdr, NULL);
}

static inline resp post_as(const login *l, const char *path, const char *csrf, const char *body)
{
  char hdr[300];
  if (csrf)
    snprintf(hdr, sizeof hdr, "Cookie: bfm_session=%s\r\nX-CSRF-Token: %s\r\n", l->session, csrf);
  else
    snprintf(hdr, sizeof hdr, "Cookie: bfm_session=%s\r\n", l->session);
  return http("POST", path, hdr, body);
}

#endif
