/* bfm serve over a small synthetic store, started in-process on an ephemeral loopback port and
 * driven through real HTTP: login (wrong password, missing login token, throttling), session
 * and CSRF checks, the JSON API of every page, the hit pictures, escaping of a hostile case
 * number, the examiner review (audited, visible to `bfm hits`), the reader role, oversize
 * requests, paths that must not reach the filesystem, logout. */
#include "bf_test.h"
#include "bf_error.h"
#include "bf_store.h"
#include "bf_web.h"

#include "http_kit.h"

#define HOSTILE "<script>alert(1)</script>&\"x'"

static void make_store(const char *dir, char *store, char *users)
{
  char args[16384], out[4200], err[4200];
  snprintf(out, sizeof out, "%s/out.txt", dir);
  snprintf(err, sizeof err, "%s/err.txt", dir);
  snprintf(store, 4200, "%s/store.h5", dir);
  snprintf(users, 4200, "%s/users", dir);
  const char *quick = getenv("BF_QUICK");
  snprintf(args, sizeof args, "synth --out '%s/s' --kind %s --firearms 2 --firings 2 --lands 3 --seed 5",
           dir, quick && *quick == '1' ? "cartridge" : "both");
  CHECK(bf_t_bfm(args, out, err) == 0);
  snprintf(args, sizeof args, "synth --out '%s/h' --kind cartridge --firearms 1 --firings 1 --seed 6", dir);
  CHECK(bf_t_bfm(args, out, err) == 0);
  snprintf(args, sizeof args, "init '%s'", store);
  CHECK(bf_t_bfm(args, out, err) == 0);
  snprintf(args, sizeof args, "ingest --quiet '%s' '%s/s/manifest.csv'", store, dir);
  CHECK(bf_t_bfm(args, out, err) == 0);
  /* user input that would run as script if a page put it into HTML unescaped */
  setenv("BF_T_HOSTILE", HOSTILE, 1);
  snprintf(args, sizeof args, "evidence add '%s' --case \"$BF_T_HOSTILE\" --item 1 --kind cartridge "
           "--calibre '9mm Luger' '%s/h/cartridge/F0001-1.x3p'", store, dir);
  CHECKF(bf_t_bfm(args, out, err) == 0, "%s", bf_t_read(err));
  snprintf(args, sizeof args, "batch --quiet '%s'", store);
  CHECK(bf_t_bfm(args, out, err) == 0);
  CHECK(bf_web_user_add(users, "exam", BF_ROLE_EXAMINER, "exam-password") == 0);
  CHECK(bf_web_user_add(users, "read", BF_ROLE_READER, "read-password") == 0);
}

static void test_users_file(const char *dir)
{
  char path[4200];
  snprintf(path, sizeof path, "%s/u2", dir);
  CHECK(bf_web_user_add(path, "bad:name", BF_ROLE_READER, "long-enough") != 0);
  CHECK(bf_web_user_add(path, "ok", BF_ROLE_READER, "short") != 0);
  CHECK(bf_web_user_add(path, "ok", 7, "long-enough") != 0);
  CHECK(bf_web_user_add(path, "ok", BF_ROLE_READER, "long-enough") == 0);
  CHECK(bf_web_user_add(path, "ok", BF_ROLE_EXAMINER, "other-password") == 0);
  const char *txt = bf_t_read(path);
  CHECKF(!strncmp(txt, "ok:examiner:$argon2id$", 22) && !strchr(txt + 1, '\n')[1],
         "one line for a re-added user: %s", txt);
  CHECK(!strstr(txt, "other-password"));
  struct stat st;
  CHECK(stat(path, &st) == 0 && (st.st_mode & 077) == 0);
  CHECK(bf_web_role_parse("examiner") == BF_ROLE_EXAMINER && bf_web_role_parse("admin") == 0);
}

int main(void)
{
  const char *dir = bf_t_tmpdir("serve");
  char store[4200], users[4200], args[16384], out[4200], err[4200];
  snprintf(out, sizeof out, "%s/out.txt", dir);
  snprintf(err, sizeof err, "%s/err.txt", dir);
  test_users_file(dir);
  make_store(dir, store, users);

  /* a users file without users, a store that is not there: refused at start */
  bf_web *w = NULL;
  bf_web_opts o = BF_WEB_OPTS_INIT;
  char empty[4200];
  snprintf(empty, sizeof empty, "%s/nobody", dir);
  fclose(fopen(empty, "w"));
  o.store = store;
  o.users = empty;
  o.listen = "127.0.0.1:0";
  CHECK(bf_web_start(&w, &o, &port) != 0 && !w);
  o.users = users;
  o.listen = "0.0.0.0.1:80";
  CHECK(bf_web_start(&w, &o, &port) != 0 && !w);
  o.listen = "127.0.0.1:0";
  o.max_body = 2048;
  CHECK(bf_web_start(&w, &o, &port) == 0 && port > 0);

  /* no session: the API says 401, pages send to the login page, the login page is open */
  resp r = http("GET", "/api/summary", NULL, NULL);
  CHECK(r.status == 401);
  resp_free(&r);
  r = http("GET", "/items", NULL, NULL);
  CHECK(r.status == 303 && strstr(r.head, "Location: /login"));
  resp_free(&r);
  r = http("GET", "/login", NULL, NULL);
  CHECK(r.status == 200 && strstr(r.body, "<form") && strstr(r.head, "Content-Security-Policy"));
  resp_free(&r);

  /* login: without the double-submit token, with a wrong password, then right */
  r = http("POST", "/api/login", NULL, "user=exam&password=exam-password");
  CHECK(r.status == 403 && !strstr(r.head, "bfm_session="));
  resp_free(&r);
  login bad = do_login("exam", "wrong-password");
  CHECK(bad.status == 401 && !bad.session[0]);
  login ex = do_login("exam", "exam-password");
  CHECKF(ex.status == 200 && strlen(ex.session) == 64 && strlen(ex.csrf) == 64, "login %d", ex.status);
  login rd = do_login("read", "read-password");
  CHECK(rd.status == 200);
  login nobody = do_login("nobody", "exam-password");
  CHECK(nobody.status == 401);

  /* every page's data */
  r = get_as(&ex, "/api/summary");
  CHECKF(r.status == 200 && strstr(r.body, "\"items\":"), "%d %s", r.status, r.body);
  resp_free(&r);
  r = get_as(&ex, "/api/session");
  CHECK(r.status == 200 && strstr(r.body, "\"role\":\"examiner\""));
  resp_free(&r);
  r = get_as(&ex, "/api/items?kind=cartridge");
  CHECK(r.status == 200 && strstr(r.body, "\"serial\":\"SYN-0001\"") && !strstr(r.body, "\"kind\":\"bullet\""));
  resp_free(&r);
  r = get_as(&ex, "/api/items?kind=shoe");
  CHECK(r.status == 400);
  resp_free(&r);
  r = get_as(&ex, "/api/items?serial=SYN-0002&limit=x");
  CHECK(r.status == 400);
  resp_free(&r);
  r = get_as(&ex, "/api/item/1");
  CHECKF(r.status == 200 && strstr(r.body, "\"candidates\":[{") && strstr(r.body, "\"log10_lr\":") &&
         strstr(r.body, "\"serial\":\"SYN-0001\""), "%s", r.body);
  resp_free(&r);
  r = get_as(&ex, "/api/item/999999");
  CHECK(r.status == 404);
  resp_free(&r);

  /* escaping: the hostile case number comes back as JSON escapes, never as markup */
  r = get_as(&ex, "/api/items?case=alert");
  CHECKF(r.status == 200 && strstr(r.body, "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\\u0026\\\"x\\u0027") &&
         !strstr(r.body, "<script>") && strstr(r.body, "\"total\":1"), "%s", r.body);
  resp_free(&r);
  r = get_as(&ex, "/api/audit?limit=5000");
  CHECK(r.status == 200 && strstr(r.body, "\\u003cscript") && !strstr(r.body, "<script>"));
  resp_free(&r);

  /* the best cartridge hit of item 1: data and picture */
  bf_store *st = NULL;
  bf_hit *h = NULL;
  size_t nh = 0;
  int64_t hit = 0, bhit = 0;
  CHECK(bf_store_open(&st, store, BF_STORE_READ, NULL) == 0 && bf_store_query_hits(st, NULL, &h, &nh) == 0);
  for (size_t i = 0; i < nh; i++) {
    const bf_item *it = bf_store_item(st, h[i].query);
    if (it && it->kind == BF_KIND_CARTRIDGE && (h[i].query == 1 || h[i].candidate == 1) && !hit)
      hit = h[i].id;
    if (it && it->kind == BF_KIND_BULLET && !bhit)
      bhit = h[i].id;
  }
  free(h);
  bf_store_close(st);
  CHECK(hit > 0);
  char path[200];
  snprintf(path, sizeof path, "/api/hit/%lld", (long long)hit);
  r = get_as(&ex, path);
  CHECK(r.status == 200 && strstr(r.body, "\"kind\":\"cartridge\"") && strstr(r.body, "pair.png"));
  resp_free(&r);
  snprintf(path, sizeof path, "/api/hit/%lld/pair.png", (long long)hit);
  r = get_as(&ex, path);
  CHECKF(r.status == 200 && r.nbody > 1000 && !memcmp(r.body, "\x89PNG", 4) &&
         strstr(r.head, "Content-Type: image/png"), "%d", r.status);
  resp_free(&r);
  if (bhit) {
    snprintf(path, sizeof path, "/api/hit/%lld/matrix.png", (long long)bhit);
    r = get_as(&ex, path);
    CHECK(r.status == 200 && !memcmp(r.body, "\x89PNG", 4));
    resp_free(&r);
    snprintf(path, sizeof path, "/api/hit/%lld/lands", (long long)bhit);
    r = get_as(&ex, path);
    CHECKF(r.status == 200 && strstr(r.body, "\"matrix\":[["), "%s", r.body);
    resp_free(&r);
  }
  r = get_as(&ex, "/api/links");
  CHECK(r.status == 200 && strstr(r.body, "\"nodes\":[{"));
  resp_free(&r);
  r = get_as(&ex, "/api/links.svg");
  CHECKF(r.status == 200 && strstr(r.body, "<svg") && strstr(r.body, "firearm SYN") &&
         !strstr(r.body, "<script>"), "%d", r.status);
  resp_free(&r);

  /* review: refused without CSRF, with a wrong one, for a reader; done by the examiner */
  snprintf(path, sizeof path, "/api/hit/%lld/review", (long long)hit);
  char sha0[72], sha1[72];
  bf_t_file_sha(sha0, store);
  r = post_as(&ex, path, NULL, "decision=confirm&note=x");
  CHECK(r.status == 403);
  resp_free(&r);
  r = post_as(&ex, path, rd.csrf, "decision=confirm&note=x");
  CHECK(r.status == 403);
  resp_free(&r);
  r = post_as(&rd, path, rd.csrf, "decision=confirm&note=x");
  CHECK(r.status == 403 && strstr(r.body, "examiner"));
  resp_free(&r);
  r = post_as(&ex, path, ex.csrf, "decision=maybe");
  CHECK(r.status == 400);
  resp_free(&r);
  /* another process (here: another handle) holds the writer lock: 409, nothing changes */
  bf_store *wr = NULL;
  CHECK(bf_store_open(&wr, store, BF_STORE_WRITE, "batch") == 0);
  r = post_as(&ex, path, ex.csrf, "decision=confirm&note=x");
  CHECKF(r.status == 409 && strstr(r.body, "try again"), "locked store: %d %s", r.status, r.body);
  resp_free(&r);
  bf_store_close(wr);
  bf_t_file_sha(sha1, store);
  CHECK(!strcmp(sha0, sha1)); /* nothing refused touched the store */
  r = post_as(&ex, path, ex.csrf, "decision=confirm&note=same+firearm+%3Cb%3E");
  CHECKF(r.status == 200 && strstr(r.body, "\"status\":\"confirmed\""), "%d %s", r.status, r.body);
  resp_free(&r);
  snprintf(args, sizeof args, "hits '%s' --format json --both", store);
  CHECK(bf_t_bfm(args, out, err) == 0);
  CHECKF(strstr(bf_t_read(out), "\"examiner\": \"exam\"") || strstr(bf_t_read(out), "\"examiner\":\"exam\""),
         "%s", bf_t_read(out));
  CHECK(strstr(bf_t_read(out), "confirmed") != NULL);
  r = get_as(&ex, "/api/audit?limit=1");
  CHECKF(r.status == 200 && strstr(r.body, "\"user\":\"exam\"") && strstr(r.body, "confirmed") &&
         strstr(r.body, "\\u003cb\\u003e"), "%s", r.body);
  resp_free(&r);
  snprintf(path, sizeof path, "/api/item/1");
  r = get_as(&ex, path);
  CHECK(r.status == 200 && strstr(r.body, "\"status\":\"confirmed\""));
  resp_free(&r);

  /* size limits: a declared oversize body, a huge header */
  char big[4000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  char *body = malloc(sizeof big + 32);
  snprintf(body, sizeof big + 32, "decision=confirm&note=%s", big);
  r = post_as(&ex, path, ex.csrf, body);
  CHECKF(r.status == 413, "oversize POST: %d", r.status);
  resp_free(&r);
  free(body);
  char *hdr = malloc(200000);
  strcpy(hdr, "X-Big: ");
  memset(hdr + 7, 'b', 150000);
  strcpy(hdr + 150007, "\r\n");
  r = http("GET", "/login", hdr, NULL);
  CHECKF(r.status == 0 || r.status == 413 || r.status == 431, "huge header: %d", r.status);
  resp_free(&r);
  free(hdr);

  /* no path reaches the filesystem */
  r = get_as(&ex, "/static/../../../../etc/passwd");
  CHECK(r.status == 404 && !strstr(r.body, "root:"));
  resp_free(&r);
  r = get_as(&ex, "/static/..%2f..%2fCMakeLists.txt");
  CHECK(r.status == 404);
  resp_free(&r);
  r = get_as(&ex, "/api/item/1/../../");
  CHECK(r.status == 404 || r.status == 303);
  resp_free(&r);
  r = http("DELETE", "/api/item/1", NULL, NULL);
  CHECK(r.status == 401 || r.status == 405);
  resp_free(&r);

  /* failed logins are throttled per user: after 3 failures even the right password waits */
  for (int k = 0; k < 3; k++)
    do_login("read", "not-it");
  login late = do_login("read", "read-password");
  CHECKF(late.status == 429, "throttled login: %d", late.status);

  /* logout ends the session */
  r = post_as(&ex, "/api/logout", ex.csrf, "");
  CHECK(r.status == 200);
  resp_free(&r);
  r = get_as(&ex, "/api/summary");
  CHECK(r.status == 401);
  resp_free(&r);

  bf_web_stop(w);
  return bf_t_done();
}
