/* bfm serve figures, all on loopback, the server in this process (times are what a client on
 * the same machine waits: server time plus loopback): the data of an item page with 20 ranked
 * candidates on a 1,000-item store, the item page's HTML, a hit picture drawn from scratch
 * (CMC comparison + drawing + PNG) and from the cache, and 50 concurrent readers.
 * usage: bench_serve [--items N] [--reps R] [--readers C] [--requests-each K] [--dir DIR]
 * Timings on a shared machine are noisy: medians are printed. */
#include "bf_error.h"
#include "bf_store.h"
#include "bf_web.h"

#include "../tests/http_kit.h"

#include <math.h>
#include <pthread.h>
#include <time.h>

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n)
{
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n ? (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2])) : NAN;
}

/* Two real synthetic cartridge cases (items 1 and 2, with features) from bfm, then n - 2 more
 * items, 20 candidate hits for item 1, `pics` hits of the pair (1, 2) under distinct runs (one
 * uncached picture each) and ~3 hits per other item. */
static int make_store(const char *dir, const char *store, int n, int pics)
{
  char cmd[32768];
  snprintf(cmd, sizeof cmd, "rm -rf '%s/s' '%s' && '%s' synth --out '%s/s' --kind cartridge --firearms 1 "
           "--firings 2 --seed 3 >/dev/null && '%s' init '%s' >/dev/null && '%s' ingest --quiet '%s' "
           "'%s/s/manifest.csv' >/dev/null", dir, store, BF_BFM_EXE, dir, BF_BFM_EXE, store,
           BF_BFM_EXE, store, dir);
  if (system(cmd))
    return fprintf(stderr, "bench_serve: making the store failed\n"), -1;
  bf_store *st = NULL;
  int rc = bf_store_open(&st, store, BF_STORE_WRITE, "bench");
  if (!rc)
    rc = bf_store_begin(st);
  for (int i = 3; i <= n && !rc; i++) {
    int64_t owner = 0, item = 0;
    if (i % 2) {
      bf_firearm f = {0};
      snprintf(f.serial, sizeof f.serial, "BENCH-%05d", i);
      snprintf(f.make, sizeof f.make, "Make%d", i % 7);
      snprintf(f.model, sizeof f.model, "Model %d", i % 13);
      snprintf(f.calibre, sizeof f.calibre, "9mm Luger");
      snprintf(f.manufactured, sizeof f.manufactured, "2019-0%d-01", 1 + i % 9);
      snprintf(f.export_country, sizeof f.export_country, "Country %d", i % 5);
      snprintf(f.import_country, sizeof f.import_country, "Country %d", 5 + i % 3);
      snprintf(f.consignee, sizeof f.consignee, "Dealer %d Ltd", i % 11);
      rc = bf_store_add_firearm(st, &owner, &f);
    } else {
      bf_evidence e = {0};
      snprintf(e.case_no, sizeof e.case_no, "CASE-%05d", i);
      snprintf(e.item, sizeof e.item, "1");
      e.kind = BF_KIND_CARTRIDGE;
      snprintf(e.calibre, sizeof e.calibre, "9mm Luger");
      rc = bf_store_add_evidence(st, &owner, &e);
    }
    if (!rc)
      rc = bf_store_add_item(st, &item, BF_KIND_CARTRIDGE, "9mm Luger",
                             i % 2 ? BF_OWNER_FIREARM : BF_OWNER_EVIDENCE, owner);
  }
  size_t nh = 0, cap = (size_t)n * 3 + 64 + (size_t)pics;
  bf_hit *h = calloc(cap, sizeof *h);
  for (int c = 0; c < 20 && h; c++, nh++) {
    h[nh].run = 1, h[nh].query = 1, h[nh].candidate = 2 + c, h[nh].rank = c + 1;
    h[nh].score = 30 - c;
  }
  for (int p = 0; p < pics && h; p++, nh++)
    h[nh].run = 100 + p, h[nh].query = 1, h[nh].candidate = 2, h[nh].rank = 1, h[nh].score = 18;
  for (int i = 3; i <= n && h && nh + 3 < cap; i++)
    for (int k = 1; k <= 3; k++, nh++)
      h[nh].run = 1, h[nh].query = i, h[nh].candidate = 3 + (i + 37 * k) % (n - 2),
      h[nh].rank = k, h[nh].score = 6 + (i * k) % 9;
  if (!rc)
    rc = h ? bf_store_add_hits(st, h, nh, NULL) : BF_ENOMEM;
  free(h);
  if (!rc)
    rc = bf_store_commit(st);
  if (rc)
    fprintf(stderr, "bench_serve: %s\n", bf_error_last());
  bf_store_close(st);
  return rc;
}

typedef struct reader_arg {
  const login *l;
  int requests, errors;
} reader_arg;

static void *reader(void *p)
{
  reader_arg *a = p;
  static const char *paths[] = {"/api/item/1", "/api/items?limit=100", "/api/summary", "/item/1"};
  for (int k = 0; k < a->requests; k++) {
    resp r = get_as(a->l, paths[k % 4]);
    a->errors += r.status != 200;
    resp_free(&r);
  }
  return NULL;
}

int main(int argc, char **argv)
{
  int items = 1000, reps = 30, readers = 50, each = 20, pics = 7;
  const char *dir = "/tmp/bfm-bench-serve";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--items") && i + 1 < argc)
      items = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--readers") && i + 1 < argc)
      readers = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--requests-each") && i + 1 < argc)
      each = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      dir = argv[++i];
    else
      return fprintf(stderr, "usage: bench_serve [--items N] [--reps R] [--readers C] "
                             "[--requests-each K] [--dir DIR]\n"), 2;
  }
  if (items < 30 || reps < 1 || readers < 1 || readers > 500 || each < 1)
    return fprintf(stderr, "bench_serve: out-of-range option\n"), 2;
  char store[4200], users[4200], cmd[4300];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  if (system(cmd))
    return 1;
  snprintf(store, sizeof store, "%s/store.h5", dir);
  snprintf(users, sizeof users, "%s/users", dir);
  double t0 = now();
  if (make_store(dir, store, items, pics) || bf_web_user_add(users, "bench", BF_ROLE_READER, "bench-password"))
    return 1;
  printf("store: %d items, 20 candidates for item 1, made in %.1f s\n", items, now() - t0);
  bf_web_opts o = BF_WEB_OPTS_INIT;
  o.store = store;
  o.users = users;
  o.listen = "127.0.0.1:0";
  bf_web *w = NULL;
  if (bf_web_start(&w, &o, &port))
    return fprintf(stderr, "bench_serve: %s\n", bf_error_last()), 1;
  login l = do_login("bench", "bench-password");
  if (l.status != 200)
    return fprintf(stderr, "bench_serve: login failed (%d)\n", l.status), 1;

  double *t = calloc((size_t)reps + pics + 2, sizeof *t);
  int bad = 0;
  for (int k = 0; k < reps; k++) {
    double a = now();
    resp r = get_as(&l, "/api/item/1");
    t[k] = now() - a;
    bad += r.status != 200 || !strstr(r.body, "\"rank\":20,");
    resp_free(&r);
  }
  printf("item page data (/api/item/1, 20 candidates, %d items): median %.1f ms over %d (%d bad)\n",
         items, 1e3 * median(t, reps), reps, bad);
  for (int k = 0; k < reps; k++) {
    double a = now();
    resp r = get_as(&l, "/item/1");
    t[k] = now() - a;
    resp_free(&r);
  }
  printf("item page HTML (/item/1): median %.2f ms\n", 1e3 * median(t, reps));
  /* the pair's hits under distinct runs are distinct hits: each picture is drawn from scratch */
  int found = 0;
  bad = 0;
  bf_store *st = NULL;
  bf_hit *h = NULL;
  size_t nh = 0;
  if (!bf_store_open(&st, store, BF_STORE_READ, NULL) && !bf_store_query_hits(st, NULL, &h, &nh))
    for (size_t i = 0; i < nh && found < pics; i++)
      if (h[i].run >= 100) {
        char path[100];
        snprintf(path, sizeof path, "/api/hit/%lld/pair.png", (long long)h[i].id);
        double a = now();
        resp r = get_as(&l, path);
        t[found++] = now() - a;
        bad += r.status != 200;
        resp_free(&r);
      }
  printf("hit picture drawn from scratch (CMC + drawing + PNG): median %.0f ms over %d (%d bad)\n",
         1e3 * median(t, found), found, bad);
  for (int k = 0; k < reps && nh; k++) {
    char path[100];
    snprintf(path, sizeof path, "/api/hit/%lld/pair.png", (long long)h[0].id);
    double a = now();
    resp r = get_as(&l, path);
    t[k] = now() - a;
    resp_free(&r);
  }
  printf("hit picture from the cache: median %.2f ms\n", 1e3 * median(t, reps));
  /* an examiner's flow: the item page, two seconds of reading, then the best hit's picture (drawn
   * ahead by the warm thread); a fresh server each time so nothing is cached before */
  int flows = pics < 5 ? pics : 5;
  for (int k = 0; k < flows; k++) {
    bf_web_stop(w);
    w = NULL;
    if (bf_web_start(&w, &o, &port))
      return fprintf(stderr, "bench_serve: %s\n", bf_error_last()), 1;
    l = do_login("bench", "bench-password");
    resp r = get_as(&l, "/api/item/1");
    char hid[32] = "", path[100];
    const char *p = strstr(r.body ? r.body : "", "\"hit\":{\"id\":");
    if (p)
      snprintf(hid, sizeof hid, "%lld", atoll(p + 14));
    resp_free(&r);
    sleep(2);
    snprintf(path, sizeof path, "/api/hit/%s/pair.png", hid);
    double a = now();
    r = get_as(&l, path);
    t[k] = now() - a;
    resp_free(&r);
  }
  printf("hit picture 2 s after its item page (drawn ahead): median %.1f ms over %d\n",
         1e3 * median(t, flows), flows);
  free(h);
  bf_store_close(st);

  pthread_t *th = calloc((size_t)readers, sizeof *th);
  reader_arg *ra = calloc((size_t)readers, sizeof *ra);
  double a = now();
  for (int i = 0; i < readers; i++) {
    ra[i].l = &l;
    ra[i].requests = each;
    pthread_create(&th[i], NULL, reader, &ra[i]);
  }
  int errors = 0;
  for (int i = 0; i < readers; i++) {
    pthread_join(th[i], NULL);
    errors += ra[i].errors;
  }
  double el = now() - a;
  printf("%d concurrent readers x %d requests (item data, item list, summary, page): %d errors, "
         "%.1f s, %.0f requests/s\n", readers, each, errors, el, readers * each / el);
  printf("for ab: ab -n 2000 -c 50 -C bfm_session=%s http://127.0.0.1:%d/api/item/1\n", l.session, port);
  if (getenv("BENCH_SERVE_HOLD")) {
    printf("holding the server for %s s\n", getenv("BENCH_SERVE_HOLD"));
    fflush(stdout);
    sleep((unsigned)atoi(getenv("BENCH_SERVE_HOLD")));
  }
  free(th);
  free(ra);
  free(t);
  bf_web_stop(w);
  return errors ? 1 : 0;
}
