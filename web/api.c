/* The data of bfm serve's pages as JSON (and the hit pictures, the linkage SVG): each function
 * takes the store lock, reads, and answers one web_reply. The review is the one write: the store
 * is opened for write for that single commit. */
#define _GNU_SOURCE // pipe2
#include "bf_draw.h"
#include "bf_error.h"
#include "bf_linkage.h"
#include "bf_review.h"
#include "bf_search.h"
#include "web_int.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SVG_MAX (16u << 20)

void web_reply_error(web_reply *r, int status, const char *msg)
{
  wbuf b = {0};
  wb_str(&b, "{\"error\":");
  wb_json(&b, msg);
  wb_str(&b, "}\n");
  free(r->body);
  r->status = status;
  r->type = "application/json; charset=utf-8";
  r->body = b.p;
  r->n = b.n;
}

void web_reply_json(web_reply *r, wbuf *b)
{
  if (b->oom) {
    wb_free(b);
    web_reply_error(r, 500, "out of memory");
    return;
  }
  r->status = 200;
  r->type = "application/json; charset=utf-8";
  r->body = b->p;
  r->n = b->n;
  memset(b, 0, sizeof *b);
}

/* A strict non-negative integer argument; def when absent, -1 when malformed. */
static long long arg_int(web_arg_fn arg, void *ctx, const char *name, long long def)
{
  const char *s = arg(ctx, name);
  if (!s || !*s)
    return def;
  char *e;
  errno = 0;
  long long v = strtoll(s, &e, 10);
  return (*e || errno || v < 0) ? -1 : v;
}

static const char *arg_str(web_arg_fn arg, void *ctx, const char *name)
{
  const char *s = arg(ctx, name);
  return s && *s ? s : NULL;
}

static int contains_ci(const char *hay, const char *needle)
{
  if (!needle)
    return 1;
  size_t n = strlen(needle);
  for (; *hay; hay++)
    if (!strncasecmp(hay, needle, n))
      return 1;
  return !n;
}

static void json_firearm(wbuf *b, const bf_firearm *f)
{
  wb_fmt(b, "{\"id\":%lld,", (long long)f->id);
  wb_jkv(b, "serial", f->serial, 1);
  wb_jkv(b, "make", f->make, 1);
  wb_jkv(b, "manufacturer", f->manufacturer, 1);
  wb_jkv(b, "model", f->model, 1);
  wb_jkv(b, "calibre", f->calibre, 1);
  wb_jkv(b, "country", f->country, 1);
  wb_jkv(b, "manufactured", f->manufactured, 1);
  wb_jkv(b, "markings", f->markings, 1);
  wb_jkv(b, "testfire_date", f->testfire_date, 1);
  wb_jkv(b, "test_lab", f->test_lab, 1);
  wb_jkv(b, "export_date", f->export_date, 1);
  wb_jkv(b, "export_country", f->export_country, 1);
  wb_jkv(b, "import_country", f->import_country, 1);
  wb_jkv(b, "transit", f->transit, 1);
  wb_jkv(b, "consignee", f->consignee, 0);
  wb_str(b, "}");
}

static void json_evidence(wbuf *b, const bf_evidence *e)
{
  wb_fmt(b, "{\"id\":%lld,", (long long)e->id);
  wb_jkv(b, "case", e->case_no, 1);
  wb_jkv(b, "item", e->item, 1);
  wb_jkv(b, "agency", e->agency, 1);
  wb_jkv(b, "calibre", e->calibre, 1);
  wb_jkv(b, "date", e->date, 1);
  wb_jkv(b, "place", e->place, 1);
  wb_jkv(b, "lab", e->lab, 1);
  wb_jkv(b, "notes", e->notes, 0);
  wb_str(b, "}");
}

static void json_item(wbuf *b, const bf_store *st, int64_t id)
{
  const bf_item *it = bf_store_item(st, id);
  if (!it) {
    wb_fmt(b, "{\"id\":%lld,\"missing\":true}", (long long)id);
    return;
  }
  const bf_firearm *f = it->owner_type == BF_OWNER_FIREARM ? bf_store_firearm(st, it->owner) : NULL;
  const bf_evidence *e = it->owner_type == BF_OWNER_EVIDENCE ? bf_store_evidence(st, it->owner) : NULL;
  wb_fmt(b, "{\"id\":%lld,", (long long)it->id);
  wb_jkv(b, "kind", bf_kind_name(it->kind), 1);
  wb_jkv(b, "calibre", it->calibre, 1);
  wb_jkv(b, "owner", f ? "firearm" : e ? "evidence" : "none", 1);
  wb_fmt(b, "\"nscans\":%d,\"searched\":%lld,", it->nscans, (long long)it->searched);
  wb_jkv(b, "created", it->created, 1);
  wb_str(b, "\"firearm\":");
  if (f)
    json_firearm(b, f);
  else
    wb_str(b, "null");
  wb_str(b, ",\"evidence\":");
  if (e)
    json_evidence(b, e);
  else
    wb_str(b, "null");
  wb_str(b, "}");
}

static void json_hit(wbuf *b, const bf_hit *h)
{
  wb_fmt(b, "{\"id\":%lld,\"query\":%lld,\"candidate\":%lld,\"run\":%lld,\"score\":",
         (long long)h->id, (long long)h->query, (long long)h->candidate, (long long)h->run);
  wb_jnum(b, h->score);
  wb_str(b, ",\"scores\":[");
  for (int k = 0; k < 4; k++) {
    wb_jnum(b, h->scores[k]);
    wb_str(b, k < 3 ? "," : "]");
  }
  /* the calibrated likelihood ratio (null when not computed) */
  wb_str(b, ",\"log10_lr\":");
  wb_jnum(b, h->log10_lr);
  wb_fmt(b, ",\"rank\":%d,", h->rank);
  wb_jkv(b, "status", bf_hit_status_name(h->status), 1);
  wb_jkv(b, "time", h->time, 1);
  wb_jkv(b, "examiner", h->examiner, 1);
  wb_jkv(b, "when", h->when, 1);
  wb_jkv(b, "note", h->note, 0);
  wb_str(b, "}");
}

/* Takes the store lock with a fresh handle; on failure answers r and returns NULL. */
static bf_store *store_get(bf_web *w, web_reply *r)
{
  pthread_mutex_lock(&w->store_lock);
  if (web_store_fresh(w, 0)) {
    pthread_mutex_unlock(&w->store_lock);
    web_reply_error(r, 503, bf_error_last());
    return NULL;
  }
  return w->st;
}

static void store_put(bf_web *w)
{
  pthread_mutex_unlock(&w->store_lock);
}

static const char *basename_of(const char *p)
{
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

void web_api_summary(bf_web *w, web_reply *r)
{
  bf_store *st = store_get(w, r);
  if (!st)
    return;
  wbuf b = {0};
  size_t nk[3] = {0};
  const bf_item *it = bf_store_items(st);
  for (size_t i = 0; i < bf_store_nitems(st); i++)
    nk[it[i].kind == BF_KIND_CARTRIDGE ? 0 : it[i].kind == BF_KIND_BULLET ? 1 : 2]++;
  bf_hit *h = NULL;
  size_t nh = 0, ns[3] = {0};
  bf_audit_rec *a = NULL;
  size_t na = 0;
  if (bf_store_query_hits(st, NULL, &h, &nh) || bf_store_read_audit(st, &a, &na)) {
    web_reply_error(r, 500, bf_error_last());
    goto done;
  }
  for (size_t i = 0; i < nh; i++)
    if (h[i].status >= 0 && h[i].status < 3)
      ns[h[i].status]++;
  char kinds[16][48];
  int nkinds = bf_store_feature_kinds(st, kinds, 16);
  wb_str(&b, "{");
  wb_jkv(&b, "store", basename_of(w->store_path), 1);
  wb_fmt(&b, "\"bytes\":%lld,\"firearms\":%zu,\"evidence\":%zu,\"items\":%zu,",
         (long long)w->st_stat.st_size, bf_store_nfirearms(st), bf_store_nevidence(st),
         bf_store_nitems(st));
  wb_fmt(&b, "\"cartridge_items\":%zu,\"bullet_items\":%zu,\"scans\":%zu,", nk[0], nk[1],
         bf_store_nscans(st));
  wb_fmt(&b, "\"hits\":%zu,\"candidate\":%zu,\"confirmed\":%zu,\"rejected\":%zu,\"audit\":%zu,",
         nh, ns[0], ns[1], ns[2], na);
  wb_str(&b, "\"feature_kinds\":[");
  for (int k = 0; k < nkinds; k++) {
    wb_json(&b, kinds[k]);
    if (k + 1 < nkinds)
      wb_str(&b, ",");
  }
  wb_str(&b, "],");
  wb_jkv(&b, "last_change", a && na ? a[na - 1].time : "", 0);
  wb_str(&b, "}\n");
  web_reply_json(r, &b);
done:
  store_put(w);
  free(h);
  free(a);
  wb_free(&b);
}

/* Position of item id in the id-sorted items, -1 when absent. */
static long item_pos(const bf_item *it, size_t n, int64_t id)
{
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t m = (lo + hi) / 2;
    if (it[m].id < id)
      lo = m + 1;
    else
      hi = m;
  }
  return lo < n && it[lo].id == id ? (long)lo : -1;
}

void web_api_items(bf_web *w, web_reply *r, web_arg_fn arg, void *ctx)
{
  const char *cs = arg_str(arg, ctx, "case"), *serial = arg_str(arg, ctx, "serial"),
             *kind = arg_str(arg, ctx, "kind"), *cal = arg_str(arg, ctx, "calibre");
  long long off = arg_int(arg, ctx, "offset", 0), lim = arg_int(arg, ctx, "limit", 100);
  int k = 0;
  if (kind && !(k = !strcmp(kind, "cartridge") ? BF_KIND_CARTRIDGE
                    : !strcmp(kind, "bullet") ? BF_KIND_BULLET : 0)) {
    web_reply_error(r, 400, "kind must be cartridge or bullet");
    return;
  }
  if (off < 0 || lim < 1 || lim > 1000) {
    web_reply_error(r, 400, "offset must be >= 0 and limit 1..1000");
    return;
  }
  bf_store *st = store_get(w, r);
  if (!st)
    return;
  wbuf b = {0};
  bf_hit *h = NULL;
  size_t nh = 0, n = bf_store_nitems(st);
  const bf_item *it = bf_store_items(st);
  int *cnt = calloc(n + 1, sizeof *cnt), *conf = calloc(n + 1, sizeof *conf);
  double *best = malloc((n + 1) * sizeof *best);
  if (!cnt || !conf || !best || bf_store_query_hits(st, NULL, &h, &nh)) {
    web_reply_error(r, 500, cnt && conf && best ? bf_error_last() : "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++)
    best[i] = NAN;
  for (size_t i = 0; i < nh; i++) {
    if (h[i].status == BF_HIT_REJECTED)
      continue;
    int64_t ids[2] = {h[i].query, h[i].candidate};
    for (int s = 0; s < 2; s++) {
      long p = item_pos(it, n, ids[s]);
      if (p < 0)
        continue;
      cnt[p]++;
      conf[p] |= h[i].status == BF_HIT_CONFIRMED;
      if (!(best[p] >= h[i].score))
        best[p] = h[i].score;
    }
  }
  size_t total = 0, shown = 0;
  wb_str(&b, "{\"items\":[");
  for (size_t i = 0; i < n; i++) {
    const bf_item *x = &it[i];
    const bf_firearm *f = x->owner_type == BF_OWNER_FIREARM ? bf_store_firearm(st, x->owner) : NULL;
    const bf_evidence *e = x->owner_type == BF_OWNER_EVIDENCE ? bf_store_evidence(st, x->owner) : NULL;
    if ((k && x->kind != k) || (cal && strcasecmp(x->calibre, cal)) ||
        (cs && !(e && contains_ci(e->case_no, cs))) || (serial && !(f && contains_ci(f->serial, serial))))
      continue;
    if (total++ < (size_t)off || shown >= (size_t)lim)
      continue;
    if (shown++)
      wb_str(&b, ",");
    wb_fmt(&b, "{\"id\":%lld,", (long long)x->id);
    wb_jkv(&b, "kind", bf_kind_name(x->kind), 1);
    wb_jkv(&b, "calibre", x->calibre, 1);
    wb_jkv(&b, "owner", f ? "firearm" : e ? "evidence" : "none", 1);
    wb_jkv(&b, "case", e ? e->case_no : "", 1);
    wb_jkv(&b, "item", e ? e->item : "", 1);
    wb_jkv(&b, "agency", e ? e->agency : "", 1);
    wb_jkv(&b, "serial", f ? f->serial : "", 1);
    wb_jkv(&b, "make", f ? f->make : "", 1);
    wb_jkv(&b, "model", f ? f->model : "", 1);
    wb_fmt(&b, "\"nscans\":%d,\"searched\":%lld,\"hits\":%d,\"confirmed\":%s,\"best_score\":",
           x->nscans, (long long)x->searched, cnt[i], conf[i] ? "true" : "false");
    wb_jnum(&b, best[i]);
    wb_str(&b, "}");
  }
  wb_fmt(&b, "],\"total\":%zu,\"offset\":%lld,\"limit\":%lld}\n", total, off, lim);
  web_reply_json(r, &b);
done:
  store_put(w);
  free(h);
  free(cnt);
  free(conf);
  free(best);
  wb_free(&b);
}

void web_api_item(bf_web *w, web_reply *r, int64_t id)
{
  bf_store *st = store_get(w, r);
  if (!st)
    return;
  wbuf b = {0};
  bf_hit *h = NULL;
  size_t nh = 0;
  bf_hit_filter flt = BF_HIT_FILTER_INIT;
  flt.item = id;
  if (!bf_store_item(st, id)) {
    web_reply_error(r, 404, "no such item");
    goto done;
  }
  if (bf_store_query_hits(st, &flt, &h, &nh)) {
    web_reply_error(r, 500, bf_error_last());
    goto done;
  }
  size_t k = nh; /* one row per candidate */
  bf_hits_one_per_pair(h, &k);
  int64_t top[3] = {0};
  int ntop = 0;
  for (size_t i = 0; i < k && ntop < 3; i++)
    top[ntop++] = h[i].id;
  web_pics_warm(w, top, ntop); /* the examiner's next click is most likely one of these */
  wb_str(&b, "{\"item\":");
  json_item(&b, st, id);
  wb_str(&b, ",\"candidates\":[");
  for (size_t i = 0; i < k; i++) {
    int64_t oi = h[i].query == id ? h[i].candidate : h[i].query;
    wb_fmt(&b, "%s{\"rank\":%zu,\"searched_from\":\"%s\",\"hit\":", i ? "," : "", i + 1,
           h[i].query == id ? "this" : "candidate");
    json_hit(&b, &h[i]);
    wb_str(&b, ",\"other\":");
    json_item(&b, st, oi);
    wb_str(&b, "}");
  }
  wb_str(&b, "]}\n");
  web_reply_json(r, &b);
done:
  store_put(w);
  free(h);
  wb_free(&b);
}

/* Copies hit id out of the store into *out; BF_ENOTFOUND when absent. */
static int find_hit(bf_store *st, int64_t id, bf_hit *out)
{
  bf_hit *h = NULL;
  size_t nh = 0;
  int rc = bf_store_query_hits(st, NULL, &h, &nh);
  if (!rc) {
    rc = BF_ENOTFOUND;
    for (size_t i = 0; i < nh; i++)
      if (h[i].id == id) {
        *out = h[i];
        rc = 0;
      }
    if (rc)
      bf_error_set(rc, "no such hit");
  }
  free(h);
  return rc;
}

void web_api_hit(bf_web *w, web_reply *r, int64_t id)
{
  bf_store *st = store_get(w, r);
  if (!st)
    return;
  wbuf b = {0};
  bf_hit h;
  int rc = find_hit(st, id, &h);
  if (rc) {
    web_reply_error(r, rc == BF_ENOTFOUND ? 404 : 500, bf_error_last());
    goto done;
  }
  const bf_item *q = bf_store_item(st, h.query);
  int bullet = q && q->kind == BF_KIND_BULLET;
  wb_str(&b, "{\"hit\":");
  json_hit(&b, &h);
  wb_str(&b, ",\"kind\":");
  wb_json(&b, q ? bf_kind_name(q->kind) : "");
  wb_str(&b, bullet ? ",\"score_name\":\"SAM bullet score\",\"scores_names\":[\"margin\",\"phase\",\"\",\"\"]"
                    : ",\"score_name\":\"CMC count\",\"scores_names\":[\"CMCs reference to target\","
                      "\"CMCs target to reference\",\"rotation (deg)\",\"firing-pin ACCF\"]");
  wb_str(&b, ",\"query\":");
  json_item(&b, st, h.query);
  wb_str(&b, ",\"candidate\":");
  json_item(&b, st, h.candidate);
  wb_fmt(&b, ",\"pictures\":{\"pair\":\"/api/hit/%lld/pair.png\"", (long long)id);
  if (bullet)
    wb_fmt(&b, ",\"matrix\":\"/api/hit/%lld/matrix.png\",\"lands\":\"/api/hit/%lld/lands\"",
           (long long)id, (long long)id);
  wb_str(&b, "}}\n");
  web_reply_json(r, &b);
done:
  store_put(w);
  wb_free(&b);
}

/* ---- hit pictures ---------------------------------------------------------------------- */

static void pic_free(web_pic *p)
{
  free(p->pair);
  free(p->matrix);
  free(p->lands_json);
  free(p->err);
  memset(p, 0, sizeof *p);
}

void web_pics_clear(bf_web *w)
{
  for (int i = 0; i < WEB_MAX_PICS; i++)
    pic_free(&w->pics[i]);
}

static void lands_json(wbuf *b, const bf_bullet_result *br)
{
  wb_fmt(b, "{\"na\":%d,\"nb\":%d,\"phase\":%d,\"score\":", br->na, br->nb, br->phase);
  wb_jnum(b, br->score);
  wb_str(b, ",\"margin\":");
  wb_jnum(b, br->margin);
  wb_str(b, ",\"phase_scores\":[");
  for (int p = 0; p < br->nphase; p++) {
    if (p)
      wb_str(b, ",");
    wb_jnum(b, br->phase_score[p]);
  }
  wb_str(b, "],\"matrix\":[");
  for (int i = 0; i < br->na; i++) {
    wb_str(b, i ? ",[" : "[");
    for (int j = 0; j < br->nb; j++) {
      const bf_land_result *l = &br->lands[i * br->nb + j];
      if (j)
        wb_str(b, ",");
      if (l->scored)
        wb_jnum(b, l->score);
      else
        wb_str(b, "null");
    }
    wb_str(b, "]");
  }
  wb_str(b, "]}\n");
}

/* Compares and draws the two items of a hit (no lock held: features are private copies). */
static int render(web_pic *p, int kind, bf_feature **fa, int na, bf_feature **fb, int nb)
{
  bf_image im = {0};
  int rc;
  if (kind == BF_KIND_BULLET) {
    bf_bullet_result br;
    memset(&br, 0, sizeof br);
    rc = bf_bullet_compare(&br, (const bf_feature *const *)fa, na, (const bf_feature *const *)fb,
                           nb, NULL);
    if (!rc && !(rc = bf_draw_bullet_pair(&im, &br, fa, fb)))
      rc = bf_image_png(&im, &p->pair, &p->npair);
    bf_image_clear(&im);
    if (!rc && !(rc = bf_draw_land_matrix(&im, &br)))
      rc = bf_image_png(&im, &p->matrix, &p->nmatrix);
    if (!rc) {
      wbuf b = {0};
      lands_json(&b, &br);
      if (b.oom)
        rc = bf_error_set(BF_ENOMEM, "out of memory");
      p->lands_json = b.p;
    }
    bf_bullet_result_clear(&br);
  } else {
    bf_cmc_opts o = BF_CMC_OPTS_INIT;
    bf_cmc_result cr;
    memset(&cr, 0, sizeof cr);
    if (na < 1 || nb < 1)
      rc = bf_error_set(BF_ENOTFOUND, "an item of the hit has no stored features");
    else if (!(rc = bf_cmc_compare(&cr, fa[0], fb[0], &o)) &&
             !(rc = bf_draw_cmc_pair(&im, fa[0], fb[0], &cr)))
      rc = bf_image_png(&im, &p->pair, &p->npair);
    bf_cmc_result_clear(&cr);
  }
  bf_image_clear(&im);
  return rc;
}

/* Answers from a cached picture; 1 when found (pic_lock held by the caller). */
static int pic_answer(bf_web *w, web_reply *r, int64_t id, const char *what)
{
  for (int i = 0; i < WEB_MAX_PICS; i++) {
    web_pic *p = &w->pics[i];
    if (p->hit != id || p->gen != w->gen || (!p->pair && !p->err))
      continue;
    p->used = ++w->pic_clock;
    const void *src = NULL;
    size_t n = 0;
    if (p->err) {
      web_reply_error(r, 422, p->err);
      return 1;
    }
    if (!strcmp(what, "pair.png"))
      src = p->pair, n = p->npair, r->type = "image/png";
    else if (!strcmp(what, "matrix.png"))
      src = p->matrix, n = p->nmatrix, r->type = "image/png";
    else if (p->lands_json)
      src = p->lands_json, n = strlen(p->lands_json), r->type = "application/json; charset=utf-8";
    if (!src) {
      web_reply_error(r, 404, "this hit has no such picture (bullets only)");
      return 1;
    }
    r->body = malloc(n ? n : 1);
    if (!r->body) {
      web_reply_error(r, 500, "out of memory");
      return 1;
    }
    memcpy(r->body, src, n);
    r->n = n;
    r->status = 200;
    return 1;
  }
  return 0;
}

void web_api_hit_picture(bf_web *w, web_reply *r, int64_t id, const char *what)
{
  pthread_mutex_lock(&w->pic_lock);
  int done = pic_answer(w, r, id, what);
  pthread_mutex_unlock(&w->pic_lock);
  if (done)
    return;
  /* one drawing at a time: a second request for the same hit waits and finds it cached */
  pthread_mutex_lock(&w->draw_lock);
  pthread_mutex_lock(&w->pic_lock);
  done = pic_answer(w, r, id, what);
  pthread_mutex_unlock(&w->pic_lock);
  bf_feature **fa = NULL, **fb = NULL;
  int na = 0, nb = 0, kind = 0;
  unsigned long gen = 0;
  if (done)
    goto out;
  bf_store *st = store_get(w, r);
  if (!st)
    goto out;
  bf_hit h;
  int rc = find_hit(st, id, &h);
  const bf_item *it = rc ? NULL : bf_store_item(st, h.query);
  if (!rc && !it)
    rc = bf_error_set(BF_ENOTFOUND, "the hit's item %lld is missing", (long long)h.query);
  if (!rc) {
    kind = it->kind;
    rc = bf_store_get_features(st, bf_kind_name(kind), h.query, &fa, &na);
    if (!rc)
      rc = bf_store_get_features(st, bf_kind_name(kind), h.candidate, &fb, &nb);
  }
  gen = w->gen;
  store_put(w);
  if (rc) {
    web_reply_error(r, rc == BF_ENOTFOUND ? 404 : 500, bf_error_last());
    goto out;
  }
  web_pic np = {0};
  np.hit = id;
  np.gen = gen;
  if (render(&np, kind, fa, na, fb, nb)) {
    pic_free(&np);
    np.hit = id;
    np.gen = gen;
    np.err = strdup(bf_error_last());
  }
  pthread_mutex_lock(&w->pic_lock);
  web_pic *slot = &w->pics[0];
  for (int i = 1; i < WEB_MAX_PICS; i++)
    if (w->pics[i].used < slot->used)
      slot = &w->pics[i];
  pic_free(slot);
  *slot = np;
  slot->used = ++w->pic_clock;
  if (!pic_answer(w, r, id, what))
    web_reply_error(r, 500, "picture lost");
  pthread_mutex_unlock(&w->pic_lock);
out:
  pthread_mutex_unlock(&w->draw_lock);
  bf_search_free_features(fa, na);
  bf_search_free_features(fb, nb);
}

void web_pics_warm(bf_web *w, const int64_t *hits, int n)
{
  pthread_mutex_lock(&w->pic_lock);
  for (int i = 0; i < n && w->warm_started; i++) {
    int have = 0;
    for (int j = 0; j < w->nwarm; j++)
      have |= w->warm[j] == hits[i];
    for (int j = 0; j < WEB_MAX_PICS; j++)
      have |= w->pics[j].hit == hits[i] && w->pics[j].gen == w->gen;
    if (!have && w->nwarm < (int)(sizeof w->warm / sizeof w->warm[0]))
      w->warm[w->nwarm++] = hits[i];
  }
  pthread_cond_signal(&w->warm_cond);
  pthread_mutex_unlock(&w->pic_lock);
}

void *web_pics_warm_main(void *arg)
{
  bf_web *w = arg;
  pthread_mutex_lock(&w->pic_lock);
  for (;;) {
    while (!w->warm_stop && !w->nwarm)
      pthread_cond_wait(&w->warm_cond, &w->pic_lock);
    if (w->warm_stop)
      break;
    int64_t id = w->warm[0];
    memmove(w->warm, w->warm + 1, sizeof w->warm[0] * (size_t)--w->nwarm);
    pthread_mutex_unlock(&w->pic_lock);
    web_reply r = {0};
    web_api_hit_picture(w, &r, id, "pair.png"); /* draws and caches; the answer is dropped */
    free(r.body);
    pthread_mutex_lock(&w->pic_lock);
  }
  pthread_mutex_unlock(&w->pic_lock);
  return NULL;
}

/* ---- review (the one write) ------------------------------------------------------------ */

void web_api_review(bf_web *w, web_reply *r, int64_t id, const char *examiner,
                    const char *decision, const char *note)
{
  int status = decision && !strcmp(decision, "confirm") ? BF_HIT_CONFIRMED
             : decision && !strcmp(decision, "reject")  ? BF_HIT_REJECTED : -1;
  if (status < 0) {
    web_reply_error(r, 400, "decision must be confirm or reject");
    return;
  }
  note = note ? note : "";
  if (strlen(note) >= sizeof ((bf_hit *)0)->note) {
    web_reply_error(r, 400, "the note is too long (at most 255 bytes)");
    return;
  }
  for (const char *c = note; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) {
      web_reply_error(r, 400, "the note may not hold control characters (one line of text)");
      return;
    }
  pthread_mutex_lock(&w->store_lock);
  bf_store *wr = NULL;
  int rc = bf_store_open(&wr, w->store_path, BF_STORE_WRITE, examiner);
  if (rc == BF_ELOCKED) {
    web_reply_error(r, 409, "the store is being written by another process (a batch or an "
                            "ingest); nothing was changed, try again in a moment");
  } else if (rc) {
    web_reply_error(r, 500, bf_error_last());
  } else if ((rc = bf_store_begin(wr)) || (rc = bf_store_set_hit_status(wr, id, status, examiner, note)) ||
             (rc = bf_store_commit(wr))) {
    bf_store_abort(wr);
    web_reply_error(r, rc == BF_ENOTFOUND ? 404 : 500, bf_error_last());
  } else {
    wbuf b = {0};
    wb_fmt(&b, "{\"hit\":%lld,", (long long)id);
    wb_jkv(&b, "status", bf_hit_status_name(status), 1);
    wb_jkv(&b, "examiner", examiner, 1);
    wb_jkv(&b, "note", note, 0);
    wb_str(&b, "}\n");
    web_reply_json(r, &b);
  }
  bf_store_close(wr);
  if (!rc && web_store_fresh(w, 1))
    web_reply_error(r, 500, bf_error_last());
  pthread_mutex_unlock(&w->store_lock);
}

/* ---- linkage ---------------------------------------------------------------------------- */

/* Runs `dot -Tsvg FILE` (fixed argv, no shell) and reads its output. */
static int run_dot(const char *prog, const char *file, char **out, size_t *n)
{
  int pfd[2], rc = 0;
  if (pipe2(pfd, O_CLOEXEC))
    return bf_error_set(BF_EIO, "cannot make a pipe for dot");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  char *argv[] = {(char *)prog, "-Tsvg", (char *)file, NULL};
  pid_t pid;
  int e = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pfd[1]);
  if (e) {
    close(pfd[0]);
    return bf_error_set(BF_EIO, "cannot run Graphviz '%s' (%s): install graphviz", prog, strerror(e));
  }
  wbuf b = {0};
  char tmp[65536];
  for (;;) {
    struct pollfd p = {.fd = pfd[0], .events = POLLIN};
    int k = poll(&p, 1, 30000);
    if (k <= 0) {
      rc = bf_error_set(BF_EIO, "dot took longer than 30 s");
      kill(pid, SIGKILL);
      break;
    }
    ssize_t got = read(pfd[0], tmp, sizeof tmp);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      break;
    wb_put(&b, tmp, (size_t)got);
    if (b.n > SVG_MAX) {
      rc = bf_error_set(BF_ELIMIT, "the linkage picture is larger than %u bytes", SVG_MAX);
      kill(pid, SIGKILL);
      break;
    }
  }
  close(pfd[0]);
  int ws = 0;
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
    ;
  if (!rc && (!WIFEXITED(ws) || WEXITSTATUS(ws)))
    rc = bf_error_set(BF_EIO, "dot failed (exit status %d)", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
  if (!rc && b.oom)
    rc = bf_error_set(BF_ENOMEM, "out of memory");
  if (rc)
    wb_free(&b);
  *out = b.p;
  *n = b.n;
  return rc;
}

void web_api_links(bf_web *w, web_reply *r, web_arg_fn arg, void *ctx, int svg)
{
  const char *ms = arg_str(arg, ctx, "min_score");
  long long confirmed = arg_int(arg, ctx, "confirmed", 0);
  bf_hit_filter flt = BF_HIT_FILTER_INIT;
  if (ms) {
    char *e;
    flt.min_score = strtod(ms, &e);
    if (*e || !isfinite(flt.min_score)) {
      web_reply_error(r, 400, "min_score must be a number");
      return;
    }
  }
  if (confirmed < 0 || confirmed > 1) {
    web_reply_error(r, 400, "confirmed must be 0 or 1");
    return;
  }
  bf_store *st = store_get(w, r);
  if (!st)
    return;
  bf_linkage *g = NULL;
  int rc = bf_linkage_from_store(&g, st, &flt, (int)confirmed);
  store_put(w);
  if (rc) {
    web_reply_error(r, 500, bf_error_last());
    return;
  }
  if (svg) {
    char path[400];
    pthread_mutex_lock(&w->pic_lock);
    unsigned long seq = ++w->dot_seq;
    pthread_mutex_unlock(&w->pic_lock);
    snprintf(path, sizeof path, "%s/links-%lu.dot", w->tmpdir, seq);
    char *body = NULL;
    size_t n = 0;
    if ((rc = bf_linkage_write_dot(g, path)) || (rc = run_dot(w->o.dot, path, &body, &n)))
      web_reply_error(r, 500, bf_error_last());
    else {
      r->status = 200;
      r->type = "image/svg+xml";
      r->body = body;
      r->n = n;
    }
    unlink(path);
    bf_linkage_free(g);
    return;
  }
  wbuf b = {0};
  wb_fmt(&b, "{\"series\":%d,\"nodes\":[", bf_linkage_ncomponents(g));
  for (int i = 0; i < bf_linkage_nnodes(g); i++) {
    const bf_link_node *nd = bf_linkage_node_at(g, i);
    wb_str(&b, i ? ",{" : "{");
    wb_jkv(&b, "type", nd->type == BF_NODE_FIREARM ? "firearm" : "case", 1);
    wb_jkv(&b, "name", nd->name, 1);
    wb_jkv(&b, "label", nd->label, 1);
    wb_fmt(&b, "\"series\":%d,\"degree\":%d}", nd->component + 1, nd->degree);
  }
  wb_str(&b, "],\"edges\":[");
  for (int i = 0; i < bf_linkage_nedges(g); i++) {
    const bf_link_edge *e = bf_linkage_edge_at(g, i);
    wb_fmt(&b, "%s{\"a\":%d,\"b\":%d,\"hit\":%lld,\"score\":", i ? "," : "", e->a, e->b,
           (long long)e->hit);
    wb_jnum(&b, e->score);
    wb_fmt(&b, ",\"hits\":%d,\"confirmed\":%s}", e->nhits, e->confirmed ? "true" : "false");
  }
  wb_str(&b, "]}\n");
  bf_linkage_free(g);
  web_reply_json(r, &b);
}

void web_api_audit(bf_web *w, web_reply *r, web_arg_fn arg, void *ctx)
{
  long long off = arg_int(arg, ctx, "offset", 0), lim = arg_int(arg, ctx, "limit", 200);
  const char *user = arg_str(arg, ctx, "user"), *action = arg_str(arg, ctx, "action");
  if (off < 0 || lim < 1 || lim > 5000) {
    web_reply_error(r, 400, "offset must be >= 0 and limit 1..5000");
    return;
  }
  bf_store *st = store_get(w, r);
  if (!st)
    return;
  bf_audit_rec *a = NULL;
  size_t n = 0;
  int rc = bf_store_read_audit(st, &a, &n);
  store_put(w);
  if (rc) {
    web_reply_error(r, 500, bf_error_last());
    return;
  }
  wbuf b = {0};
  size_t total = 0, shown = 0;
  wb_str(&b, "{\"entries\":[");
  for (size_t k = n; k-- > 0;) { /* newest first */
    if ((user && strcmp(a[k].user, user)) || (action && strcmp(a[k].action, action)))
      continue;
    if (total++ < (size_t)off || shown >= (size_t)lim)
      continue;
    wb_fmt(&b, "%s{\"seq\":%lld,", shown++ ? "," : "", (long long)a[k].seq);
    wb_jkv(&b, "time", a[k].time, 1);
    wb_jkv(&b, "user", a[k].user, 1);
    wb_jkv(&b, "action", a[k].action, 1);
    wb_jkv(&b, "what", a[k].what, 0);
    wb_str(&b, "}");
  }
  wb_fmt(&b, "],\"total\":%zu,\"offset\":%lld,\"limit\":%lld}\n", total, off, lim);
  free(a);
  web_reply_json(r, &b);
}
