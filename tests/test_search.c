/* Search engine plumbing through the callback interface (no store): the prefilter keeps the
 * best K, the full comparison re-ranks them, the query itself and non-candidates are skipped,
 * results do not depend on block size, thread count or how many queries share a pass, a pair of
 * stored items is compared in one orientation whichever is the query, the search in steps (plan,
 * pairs needed, computed in two halves, finish) gives bf_search_run's answer with each pair
 * computed once, and a candidate whose
 * features fail to load is kept last with a NaN score. */
#include "bf_error.h"
#include "bf_search.h"
#include "bf_test.h"
#include "bf_bullet.h"
#include "bf_store.h"
#include "bf_submit.h"
#include "bf_synth.h"
#include "bf_x3p.h"
#include "store_kit.h"

#include <math.h>
#include <stdint.h>

typedef struct mem_src {
  size_t n, len;
  int64_t *ids;
  float *desc;
  int *group;   /* mates share a group */
  int64_t fail_item; /* load of this item fails */
  int nread_calls, nload_calls;
} mem_src;

static int mem_read(void *ctx, size_t first, size_t n, int64_t *ids, float *desc)
{
  mem_src *m = ctx;
  m->nread_calls++;
  if (first + n > m->n)
    return bf_error_set(BF_EINVAL, "rows beyond the source");
  memcpy(ids, m->ids + first, n * sizeof *ids);
  memcpy(desc, m->desc + first * m->len, n * m->len * sizeof *desc);
  return 0;
}

static int mem_load(void *ctx, int64_t item, bf_feature ***feat, int *n)
{
  mem_src *m = ctx;
  m->nload_calls++;
  if (item == m->fail_item)
    return bf_error_set(BF_EIO, "item %lld unreadable", (long long)item);
  bf_feature *f = NULL;
  if (bf_feature_new(&f, BF_KIND_CARTRIDGE, 1, 1, 1, 1))
    return BF_ENOMEM;
  f->z[0] = (float)m->group[item - 1];
  f->params[0] = (double)item;
  *feat = malloc(sizeof **feat);
  (*feat)[0] = f;
  *n = 1;
  return 0;
}

/* Queries 1 and its mate 1 + 2 * ngroups (each keeps the other, and 1 + ngroups), with their
 * features (af[], the caller frees them). */
static void mate_queries(mem_src *m, int ngroups, bf_search_query aq[2], bf_feature *af[2])
{
  int64_t qi[2] = {1, 1 + 2 * (int64_t)ngroups};
  for (int k = 0; k < 2; k++) {
    bf_feature **ff = NULL;
    int nff = 0;
    mem_load(m, qi[k], &ff, &nff);
    af[k] = ff[0];
    free(ff);
    aq[k] = (bf_search_query){qi[k], BF_KIND_CARTRIDGE, m->desc + (size_t)(qi[k] - 1) * m->len, &af[k], 1};
  }
}


/* The "full comparison": 10 for a mate, else a small deterministic value below any mate. */
static int fake_cmp(void *ctx, void *qs, bf_feature *const *q, int nq, bf_feature *const *c, int nc,
                    double *score, double sub[4])
{
  (void)ctx;
  (void)qs;
  (void)nq;
  (void)nc;
  *score = q[0]->z[0] == c[0]->z[0] ? 10.0 : fmod(c[0]->params[0] * 0.37, 1.0);
  sub[0] = c[0]->params[0];
  return 0;
}

/* Not symmetric at all: 1000 x the reference's id + the target's; sub = (reference, target). */
static int asym_cmp(void *ctx, void *qs, bf_feature *const *q, int nq, bf_feature *const *c, int nc,
                    double *score, double sub[4])
{
  (void)ctx;
  (void)qs;
  (void)nq;
  (void)nc;
  *score = 1000 * q[0]->params[0] + c[0]->params[0];
  sub[0] = q[0]->params[0];
  sub[1] = c[0]->params[0];
  return 0;
}

static void asym_reverse(double sub[4])
{
  double t = sub[0];
  sub[0] = sub[1];
  sub[1] = t;
}

/* cmp with the comparison that declares itself symmetric but is not exactly (asym_cmp). */
static bf_search_cmp asym_of(const bf_search_cmp *cmp)
{
  bf_search_cmp ac = *cmp;
  ac.compare = asym_cmp;
  ac.reverse = asym_reverse;
  return ac;
}

static uint32_t rng = 99;
static double urand(void)
{
  rng = rng * 1664525u + 1013904223u;
  return (rng >> 8) / 16777216.0;
}

/* Bullets end to end through the default comparison: 2 barrels x 2 synthetic bullets; the
 * other bullet of the query's barrel must come first. */
typedef struct bul_src {
  bf_feature *lands[4][8];
  int nl[4];
  float *desc;
  size_t len;
} bul_src;

static int bul_read(void *ctx, size_t first, size_t n, int64_t *ids, float *desc)
{
  bul_src *b = ctx;
  for (size_t i = 0; i < n; i++) {
    ids[i] = (int64_t)(first + i) + 1;
    memcpy(desc + i * b->len, b->desc + (first + i) * b->len, b->len * sizeof(float));
  }
  return 0;
}

static int bul_load(void *ctx, int64_t item, bf_feature ***feat, int *n)
{
  bul_src *b = ctx;
  int k = (int)item - 1;
  *feat = calloc(b->nl[k], sizeof **feat);
  for (int i = 0; i < b->nl[k]; i++) {
    bf_feature *f = NULL;
    bf_feature_new(&f, BF_KIND_BULLET, b->lands[k][i]->nx, 1, b->lands[k][i]->dx, 1);
    memcpy(f->z, b->lands[k][i]->z, sizeof(float) * f->nx);
    f->land = b->lands[k][i]->land;
    f->quality_flags = b->lands[k][i]->quality_flags;
    (*feat)[i] = f;
  }
  *n = b->nl[k];
  return 0;
}

static void bullets(const bf_prefilter *pf)
{
  bf_synth_opts so = BF_SYNTH_OPTS_INIT;
  so.lands = 4;
  so.land_length = 400; /* short scans: the search plumbing is under test */
  bf_synth *g = NULL;
  CHECK(bf_synth_new(&g, &so) == 0);
  if (!g)
    return;
  bul_src b;
  memset(&b, 0, sizeof b);
  b.len = bf_prefilter_len(pf, BF_KIND_BULLET);
  b.desc = calloc(4 * b.len, sizeof(float));
  int ok = 1;
  for (int k = 0; k < 4 && ok; k++) {
    for (int l = 0; l < so.lands && ok; l++) {
      bf_surface *s = NULL;
      bf_bullet_opts bo = BF_BULLET_OPTS_INIT;
      bo.land = l + 1;
      ok = !bf_synth_land(&s, g, k / 2, k % 2, l + 1, NULL) &&
           !bf_bullet_land_extract(&b.lands[k][l], s, &bo);
      bf_surface_free(s);
    }
    b.nl[k] = so.lands;
    bf_feature *d = NULL;
    ok = ok && !bf_prefilter_describe(pf, &d, b.lands[k], b.nl[k]);
    if (ok)
      memcpy(b.desc + k * b.len, d->z, b.len * sizeof(float));
    bf_feature_free(d);
  }
  CHECKF(ok, "synthetic bullets: %s", bf_error_last());
  if (ok) {
    bf_search_source src = {&b, 4, bul_read, bul_load, NULL};
    bf_search_cmp cmp;
    bf_search_default_cmp(&cmp, BF_KIND_BULLET);
    bf_search_opts o = BF_SEARCH_OPTS_INIT;
    bf_search_query q = {1, BF_KIND_BULLET, b.desc, b.lands[0], b.nl[0]};
    bf_cand *r = NULL;
    size_t n = 0;
    CHECK(bf_search_run(&r, &n, &q, 1, &src, &cmp, pf, &o, NULL) == 0);
    CHECK(n == 3);
    if (n == 3) {
      CHECKF(r[0].item == 2, "best candidate %lld (score %g, next %g)", (long long)r[0].item,
             r[0].score, r[1].score);
      CHECK(r[0].score > r[1].score && r[0].score >= 0 && r[0].score <= 1);
    }
    free(r);
  }
  for (int k = 0; k < 4; k++)
    for (int l = 0; l < 8; l++)
      bf_feature_free(b.lands[k][l]);
  free(b.desc);
  bf_synth_free(g);
}

/* Cartridge cases through the three stages (prefilter -> screen -> CMC): firearm 0's second
 * firing must lead the screen and be the one fully compared; the screen scores a surface
 * against itself ~1. */
typedef struct cart_src {
  bf_feature *f[8];
  float *desc;
  size_t len;
} cart_src;

static int cart_read(void *ctx, size_t first, size_t n, int64_t *ids, float *desc)
{
  cart_src *c = ctx;
  for (size_t i = 0; i < n; i++) {
    ids[i] = (int64_t)(first + i) + 1;
    memcpy(desc + i * c->len, c->desc + (first + i) * c->len, c->len * sizeof(float));
  }
  return 0;
}

static int cart_load(void *ctx, int64_t item, bf_feature ***feat, int *n)
{
  cart_src *c = ctx;
  const bf_feature *s = c->f[item - 1];
  bf_feature *f = NULL;
  int rc = bf_feature_new(&f, BF_KIND_CARTRIDGE, s->nx, s->ny, s->dx, s->dy);
  if (rc)
    return rc;
  memcpy(f->z, s->z, sizeof(float) * s->nx * s->ny);
  *feat = calloc(1, sizeof **feat);
  (*feat)[0] = f;
  *n = 1;
  return 0;
}

static void cartridges(const bf_prefilter *pf)
{
  enum { NC = 5 };
  bf_synth_opts so = BF_SYNTH_OPTS_INIT;
  bf_synth *g = NULL;
  CHECK(bf_synth_new(&g, &so) == 0);
  if (!g)
    return;
  cart_src b; /* f[k] = candidate k's feature (item k+1) */
  memset(&b, 0, sizeof b);
  b.len = bf_prefilter_len(pf, BF_KIND_CARTRIDGE);
  b.desc = calloc((NC + 1) * b.len, sizeof(float));
  bf_feature *qf = NULL;
  int ok = 1;
  for (int k = 0; k <= NC && ok; k++) { /* k = NC: the query, firearm 0 firing 0 */
    bf_surface *s = NULL;
    bf_feature *f = NULL, *d = NULL;
    ok = !bf_synth_cartridge(&s, g, k == NC ? 0 : k, k == 0 ? 1 : 0, NULL) &&
         !bf_feature_new(&f, BF_KIND_CARTRIDGE, s->nx, s->ny, s->dx, s->dy);
    if (ok)
      memcpy(f->z, s->z, sizeof(float) * s->nx * s->ny);
    ok = ok && !bf_prefilter_describe(pf, &d, &f, 1);
    if (ok)
      memcpy(b.desc + k * b.len, d->z, b.len * sizeof(float));
    if (k < NC)
      b.f[k] = f;
    else
      qf = f;
    bf_feature_free(d);
    bf_surface_free(s);
  }
  CHECKF(ok, "synthetic cartridge cases: %s", bf_error_last());
  bf_search_cmp cmp;
  bf_search_default_cmp(&cmp, BF_KIND_CARTRIDGE);
  CHECK(cmp.screen && cmp.screen_prepare && cmp.screen_release);
  if (ok && cmp.screen) {
    void *st = NULL;
    double self = 0, sub[4];
    CHECK(cmp.screen_prepare(NULL, &st, &qf, 1) == 0);
    CHECK(cmp.screen(NULL, st, &qf, 1, &qf, 1, &self, sub) == 0);
    CHECKF(self > 0.99 && self < 1.01 && fabs(sub[2]) < 1e-9, "self screen %g at %g deg", self, sub[2]);
    cmp.screen_release(NULL, st);
    bf_search_source src = {&b, NC, cart_read, cart_load, NULL};
    bf_search_opts o = BF_SEARCH_OPTS_INIT;
    o.keep = NC;
    o.screen = 1;
    bf_search_query q = {0, BF_KIND_CARTRIDGE, b.desc + NC * b.len, &qf, 1};
    bf_search_stats stats;
    bf_cand *r = NULL;
    size_t n = 0;
    CHECK(bf_search_run(&r, &n, &q, 1, &src, &cmp, pf, &o, &stats) == 0);
    CHECK(n == NC && stats.screen_pairs == NC && stats.full_pairs == 1);
    if (n == NC) {
      CHECKF(r[0].item == 1 && !isnan(r[0].score), "best candidate %lld (screen %g, next %g)",
             (long long)r[0].item, r[0].screen, r[1].screen);
      for (int i = 1; i < NC; i++)
        CHECKF(isnan(r[i].score) && r[i].screen < r[0].screen && r[i].rank == i + 1,
               "candidate %d: score %g screen %g rank %d", i, r[i].score, r[i].screen, r[i].rank);
      /* the rank after the screen: by screen score, whatever the full stage did */
      int sr_ok = 1;
      for (int i = 0; i < NC; i++)
        for (int j = 0; j < NC; j++)
          if (r[i].screen_rank < r[j].screen_rank && r[i].screen < r[j].screen)
            sr_ok = 0;
      CHECKF(sr_ok && r[0].screen_rank == 1, "screen ranks do not follow the screen scores");
    }
    free(r);
  }
  for (int k = 0; k < NC; k++)
    bf_feature_free(b.f[k]);
  bf_feature_free(qf);
  free(b.desc);
  bf_synth_free(g);
}


/* Screen surfaces stored at submit (BF_SEARCH_SCREEN_KIND): a store-backed search reads them
 * instead of the full features and ranks exactly as when it reduces the full features; a
 * damaged stored screen is the candidate's reported failure, never a crash or a silent score;
 * bfm info lists the kind. Synthetic scans only. */
static void stored_screens(const bf_prefilter *pf)
{
  enum { NF = 4, NS = 2 * NF };
  const char *dir = bf_t_tmpdir("search-screens");
  char path[1100], dmg[1100], x3p[1100], args[2400], out[1100], err[1100];
  snprintf(path, sizeof path, "%.1000s/s.bfm", dir);
  snprintf(dmg, sizeof dmg, "%.1000s/damaged.bfm", dir);
  snprintf(out, sizeof out, "%.1000s/out", dir);
  snprintf(err, sizeof err, "%.1000s/err", dir);
  bf_synth_opts so = BF_SYNTH_OPTS_INIT;
  bf_synth *g = NULL;
  bf_store *st = NULL;
  int ok = !bf_synth_new(&g, &so) && !bf_store_create(path, "t") &&
           !bf_store_open(&st, path, BF_STORE_WRITE, "t") && !bf_store_begin(st);
  for (int i = 0; ok && i < NS; i++) { /* NF firearms x 2 firings */
    bf_surface *s = NULL;
    snprintf(x3p, sizeof x3p, "%.1000s/F%d-%d.x3p", dir, i / 2, i % 2);
    ok = !bf_synth_cartridge(&s, g, 700 + i / 2, i % 2, NULL) && !bf_x3p_write(x3p, s, 'F');
    bf_surface_free(s);
    bf_submission sub;
    bf_submit_result res;
    char *spec = x3p;
    memset(&sub, 0, sizeof sub);
    sub.type = BF_OWNER_FIREARM;
    snprintf(sub.firearm.serial, sizeof sub.firearm.serial, "SN-%d", i / 2);
    ok = ok && !bf_scanset_build(&sub.scans, &spec, 1, 0, NULL) && !bf_submit(st, &sub, NULL, &res) &&
         res.indexed;
    bf_submission_clear(&sub);
  }
  ok = ok && !bf_store_commit(st);
  CHECKF(ok, "stored screens: building the store: %s", bf_error_last());
  bf_store_close(st);
  st = NULL;
  if (!ok) {
    bf_synth_free(g);
    return;
  }
  const bf_feat_row *rows;
  size_t nrows = 0;
  CHECK(!bf_store_open(&st, path, BF_STORE_READ, NULL) &&
        !bf_store_feature_index(st, BF_SEARCH_SCREEN_KIND, &rows, &nrows) && nrows == NS);
  /* item 1 as the query: every other item is a candidate; the screen passes 3 of 7 */
  bf_feature **qf = NULL, *qd = NULL;
  int nq = 0;
  bf_search_source src;
  bf_search_store_ctx *sc = NULL;
  bf_search_cmp cmp;
  bf_search_default_cmp(&cmp, BF_KIND_CARTRIDGE);
  CHECK(!bf_search_store_item(st, pf, 1, &qf, &nq, &qd) &&
        !bf_search_store_source(&src, &sc, st, BF_KIND_CARTRIDGE, NULL) && src.load_screen);
  bf_search_query q = {1, BF_KIND_CARTRIDGE, qd ? qd->z : NULL, qf, nq};
  bf_search_opts o = BF_SEARCH_OPTS_INIT;
  o.keep = NS;
  o.screen = 3;
  bf_cand *r[2] = {NULL, NULL};
  size_t n[2] = {0, 0};
  bf_search_stats stats[2];
  for (int pass = 0; pass < 2 && sc && qd; pass++) { /* 0: stored screens, 1: reduced on the spot */
    bf_search_source s2 = src;
    if (pass)
      s2.load_screen = NULL;
    CHECK(bf_search_run(&r[pass], &n[pass], &q, 1, &s2, &cmp, pf, &o, &stats[pass]) == 0);
  }
  CHECKF(n[0] == NS - 1 && n[1] == n[0] && stats[0].screen_stored == NS - 1 && stats[1].screen_stored == 0 &&
             stats[0].screen_failed == 0 && stats[0].full_pairs == 3,
         "stored %zu/%zu candidates, %zu screened from storage, %zu failed", n[0], n[1],
         stats[0].screen_stored, stats[0].screen_failed);
  for (size_t i = 0; i < n[0] && n[1] == n[0]; i++)
    CHECKF(r[0][i].item == r[1][i].item && r[0][i].screen == r[1][i].screen &&
               (r[0][i].score == r[1][i].score || (isnan(r[0][i].score) && isnan(r[1][i].score))),
           "rank %zu: item %lld screen %g score %g (stored) vs item %lld screen %g score %g", i + 1,
           (long long)r[0][i].item, r[0][i].screen, r[0][i].score, (long long)r[1][i].item, r[1][i].screen,
           r[1][i].score);
  CHECKF(n[0] && r[0][0].item == 2, "the mate of item 1 ranks first: item %lld", n[0] ? (long long)r[0][0].item : 0LL);
  free(r[0]);
  free(r[1]);
  bf_search_store_source_free(sc);
  bf_store_close(st);
  st = NULL;
  sc = NULL;
  /* a damaged stored screen (the first chunk: item 1's) met as a candidate of item 3: the
   * search finishes, the candidate is reported failed, naming the dataset */
  CHECK(bf_t_copy_store(path, dmg) == 0);
  CHECK(flip_in_segments(dmg, "/features/" BF_SEARCH_SCREEN_KIND "/data") == 64);
  bf_cand *rd = NULL;
  size_t nd = 0;
  bf_search_stats sd;
  bf_feature **qf3 = NULL, *qd3 = NULL;
  int nq3 = 0;
  memset(&sd, 0, sizeof sd);
  if (!bf_store_open(&st, dmg, BF_STORE_READ, NULL) && !bf_search_store_item(st, pf, 3, &qf3, &nq3, &qd3) &&
      !bf_search_store_source(&src, &sc, st, BF_KIND_CARTRIDGE, NULL)) {
    bf_search_query q3 = {3, BF_KIND_CARTRIDGE, qd3->z, qf3, nq3};
    CHECK(bf_search_run(&rd, &nd, &q3, 1, &src, &cmp, pf, &o, &sd) == 0);
  }
  CHECKF(nd == NS - 1 && sd.screen_failed == 1 && strstr(sd.failure, BF_SEARCH_SCREEN_KIND) &&
             rd[0].item == 4,
         "damaged screen: %zu candidates, %zu failed: %s", nd, sd.screen_failed, sd.failure);
  free(rd);
  bf_search_free_features(qf3, nq3);
  bf_feature_free(qd3);
  bf_search_store_source_free(sc);
  bf_store_close(st);
  snprintf(args, sizeof args, "info '%s'", path);
  CHECKF(bf_t_bfm(args, out, err) == 0 && strstr(bf_t_read(out), BF_SEARCH_SCREEN_KIND), "bfm info: %s",
         bf_t_read(out));
  bf_search_free_features(qf, nq);
  bf_feature_free(qd);
  bf_synth_free(g);
}

int main(void)
{
  bf_prefilter *pf = NULL;
  CHECK(bf_prefilter_new(&pf, NULL) == 0);
  if (!pf)
    return bf_t_done();
  const char *quick = getenv("BF_QUICK");
  size_t N = quick ? 600 : 3000, len = bf_prefilter_len(pf, BF_KIND_CARTRIDGE);
  int ngroups = (int)N / 3;
  mem_src m = {0};
  m.n = N;
  m.len = len;
  m.ids = malloc(N * sizeof *m.ids);
  m.desc = malloc(N * len * sizeof *m.desc);
  m.group = malloc(N * sizeof *m.group);
  float *base = malloc((size_t)ngroups * len * sizeof(float));
  for (size_t i = 0; i < (size_t)ngroups * len; i++)
    base[i] = (float)(urand() - 0.5);
  /* item i (1-based) belongs to group (i-1) % ngroups: three mates each, noisy copies */
  for (size_t i = 0; i < N; i++) {
    m.ids[i] = (int64_t)i + 1;
    m.group[i] = (int)(i % ngroups);
    for (size_t k = 0; k < len; k++)
      m.desc[i * len + k] = base[(size_t)m.group[i] * len + k] + (float)(0.6 * (urand() - 0.5));
  }
  m.ids[5] = 0; /* row 6 is not a candidate (other calibre, say) */
  m.fail_item = -1;
  bf_search_source src = {&m, N, mem_read, mem_load, NULL};
  bf_search_cmp cmp;
  memset(&cmp, 0, sizeof cmp);
  cmp.compare = fake_cmp;

  /* one query: item 1 (group 0, mates = items 1+ngroups, 1+2*ngroups) */
  bf_search_query q[4];
  int qitems[4] = {1, 2, 7, 50};
  for (int k = 0; k < 4; k++) {
    q[k].item = qitems[k];
    q[k].kind = BF_KIND_CARTRIDGE;
    q[k].desc = m.desc + (size_t)(qitems[k] - 1) * len;
    q[k].feat = NULL;
    q[k].nfeat = 0;
  }
  bf_feature *qf[4] = {0};
  for (int k = 0; k < 4; k++) {
    bf_feature **ff = NULL;
    int nf = 0;
    mem_load(&m, qitems[k], &ff, &nf);
    qf[k] = ff[0];
    free(ff);
    q[k].feat = &qf[k];
    q[k].nfeat = 1;
  }
  bf_search_opts o = BF_SEARCH_OPTS_INIT;
  o.keep = 20;
  o.block = 257; /* not a divisor of N: last block is partial */
  o.chunk = 7;
  bf_cand *res1[4] = {0};
  size_t n1[4] = {0};
  bf_search_stats stats;
  CHECK(bf_search_run(res1, n1, q, 1, &src, &cmp, pf, &o, &stats) == 0);
  CHECK(n1[0] == 20);
  if (n1[0] == 20) {
    int mates = 0, self = 0, skipped = 0;
    for (size_t i = 0; i < n1[0]; i++) {
      mates += res1[0][i].score == 10.0;
      self += res1[0][i].item == 1;
      skipped += res1[0][i].item == 6;
      CHECK(res1[0][i].rank == (int)i + 1);
      CHECK(res1[0][i].sub[0] == (double)res1[0][i].item);
      if (i)
        CHECK(res1[0][i].score <= res1[0][i - 1].score);
    }
    CHECKF(mates == 2, "mates kept %d", mates);
    CHECK(self == 0 && skipped == 0);
    CHECK(res1[0][0].score == 10.0 && res1[0][1].score == 10.0);
    CHECK(res1[0][0].pre_rank <= 2 && res1[0][1].pre_rank <= 2);
  }
  CHECK(stats.rows == N);
  CHECK(stats.pre_pairs == N - 2); /* minus self and the non-candidate */
  CHECK(stats.full_pairs == 20);
  CHECK(m.nread_calls == (int)((N + 256) / 257));

  /* four queries in one pass, one thread, other block size: same answer for query 0 */
  bf_cand *res4[4] = {0};
  size_t n4[4] = {0};
  o.threads = 1;
  o.block = 1000;
  o.chunk = 3;
  CHECK(bf_search_run(res4, n4, q, 4, &src, &cmp, pf, &o, &stats) == 0);
  CHECK(n4[0] == n1[0]);
  int same = n4[0] == n1[0];
  for (size_t i = 0; same && i < n1[0]; i++)
    same = res4[0][i].item == res1[0][i].item && res4[0][i].pre == res1[0][i].pre &&
           res4[0][i].score == res1[0][i].score;
  CHECK(same);
  CHECK(stats.pre_pairs == 4 * (N - 1) - 4); /* each query skips itself and row 6 (query 7 is row 7) */
  for (int k = 1; k < 4; k++) {
    CHECK(n4[k] == 20);
    int mates = 0;
    for (size_t i = 0; i < n4[k]; i++)
      mates += res4[k][i].score == 10.0;
    CHECKF(mates == 2, "query %d: mates %d", k, mates);
  }

  /* a comparison that declares itself symmetric (reverse) but is not exactly: two stored items
   * are compared smaller id first whichever is the query, so a pair scores alike from both
   * sides (the batch's same answer on any number of ranks rests on this) */
  {
    bf_search_cmp ac = asym_of(&cmp);
    bf_search_query aq[2];
    bf_feature *af[2] = {0};
    mate_queries(&m, ngroups, aq, af);
    bf_cand *ra[2] = {0};
    size_t na[2] = {0};
    CHECK(bf_search_run(ra, na, aq, 2, &src, &ac, pf, &o, &stats) == 0);
    int bad = 0, flipped = 0;
    for (int k = 0; k < 2; k++)
      for (size_t i = 0; i < na[k]; i++) {
        double a = (double)aq[k].item, c = (double)ra[k][i].item;
        bad += ra[k][i].score != 1000 * (a < c ? a : c) + (a < c ? c : a) ||
               ra[k][i].sub[0] != a || ra[k][i].sub[1] != c;
        flipped += c < a;
      }
    CHECKF(bad == 0 && flipped >= 2, "%d candidates scored in the query's orientation, %d flipped",
           bad, flipped);
    for (int k = 0; k < 2; k++) {
      free(ra[k]);
      bf_feature_free(af[k]);
    }
  }

  /* bf_search_run in steps, as two processes of the MPI batch run it: each plans its query, the
   * pairs they need are merged, each computes half, both record every score and finish: the
   * one-process answer, and each pair computed once between them */
  {
    bf_search_cmp ac = asym_of(&cmp);
    bf_search_query aq[2];
    bf_feature *af[2] = {0};
    mate_queries(&m, ngroups, aq, af);
    bf_search_cache *one = NULL, *pc[2] = {NULL, NULL};
    CHECK(bf_search_cache_new(&one, 1 << 20) == 0 && bf_search_cache_new(&pc[0], 1 << 20) == 0 &&
          bf_search_cache_new(&pc[1], 1 << 20) == 0);
    bf_search_opts so = o, po[2] = {o, o};
    so.cache = one, po[0].cache = pc[0], po[1].cache = pc[1];
    bf_cand *ref[2] = {0}, *res[2] = {0};
    size_t nref[2] = {0}, nres[2] = {0}, np[2] = {0}, nall = 0;
    int nfull[2] = {0, 0};
    bf_search_stats s1, sp[2], sc[2], sf[2];
    CHECK(bf_search_run(ref, nref, aq, 2, &src, &ac, pf, &so, &s1) == 0);
    bf_search_pair *need[2] = {NULL, NULL}, *all = NULL;
    for (int k = 0; k < 2; k++) {
      CHECK(bf_search_plan(&res[k], &nres[k], &nfull[k], &aq[k], 1, &src, &ac, pf, &po[k], &sp[k]) == 0);
      CHECK(bf_search_pairs_needed(&need[k], &np[k], &aq[k], 1, &res[k], &nfull[k], &ac, &po[k]) == 0);
    }
    all = malloc((np[0] + np[1] + 1) * sizeof *all);
    for (int k = 0; k < 2; k++) /* merged, each pair once, by (a, b) */
      for (size_t i = 0; i < np[k]; i++) {
        size_t j = 0;
        while (j < nall && (all[j].a < need[k][i].a || (all[j].a == need[k][i].a && all[j].b < need[k][i].b)))
          j++;
        if (j < nall && all[j].a == need[k][i].a && all[j].b == need[k][i].b)
          continue;
        memmove(all + j + 1, all + j, (nall - j) * sizeof *all);
        all[j] = need[k][i];
        nall++;
      }
    size_t half = nall / 2;
    CHECK(bf_search_pairs_compute(all, half, &src, &ac, &po[0], &sc[0]) == 0);
    CHECK(bf_search_pairs_compute(all + half, nall - half, &src, &ac, &po[1], &sc[1]) == 0);
    bf_search_cache_add_pairs(pc[0], &ac, all + half, nall - half);
    bf_search_cache_add_pairs(pc[1], &ac, all, half);
    for (int k = 0; k < 2; k++)
      CHECK(bf_search_finish(&res[k], &nres[k], &nfull[k], &aq[k], 1, &src, &ac, &po[k], all, nall,
                             &sf[k]) == 0);
    printf("two processes: %zu + %zu pairs needed, %zu unique, computed %zu + %zu; one process "
           "%zu (+ %zu reused)\n", np[0], np[1], nall, sc[0].full_pairs, sc[1].full_pairs,
           s1.full_pairs, s1.full_reused);
    CHECK(np[0] == 20 && np[1] == 20 && nall < 40); /* they keep each other */
    CHECK(sc[0].full_pairs + sc[1].full_pairs == s1.full_pairs && nall == s1.full_pairs);
    CHECK(sf[0].full_pairs == 0 && sf[1].full_pairs == 0 && sf[0].full_reused == 20);
    int diff = 0;
    for (int k = 0; k < 2; k++) {
      diff += nres[k] != nref[k];
      for (size_t i = 0; i < nres[k] && i < nref[k]; i++)
        diff += res[k][i].item != ref[k][i].item || res[k][i].score != ref[k][i].score ||
                res[k][i].rank != ref[k][i].rank || memcmp(res[k][i].sub, ref[k][i].sub, sizeof res[k][i].sub);
    }
    CHECKF(diff == 0, "%d candidates differ from the one-process search", diff);
    /* the next plan finds every pair in the memo: nothing needed */
    bf_search_pair *again = NULL;
    size_t nagain = 1;
    CHECK(bf_search_pairs_needed(&again, &nagain, &aq[0], 1, &res[0], &nfull[0], &ac, &po[1]) == 0 &&
          nagain == 0 && again == NULL);
    for (int k = 0; k < 2; k++) {
      free(ref[k]);
      free(res[k]);
      free(need[k]);
      bf_feature_free(af[k]);
      bf_search_cache_free(pc[k]);
    }
    free(all);
    bf_search_cache_free(one);
  }

  /* a candidate that fails to load: kept, NaN score, ranked last */
  m.fail_item = 1 + ngroups;
  bf_cand *rf = NULL;
  size_t nf = 0;
  o.threads = 0;
  CHECK(bf_search_run(&rf, &nf, q, 1, &src, &cmp, pf, &o, &stats) == 0);
  CHECK(nf == 20 && stats.full_failed == 1);
  if (nf == 20) {
    CHECK(rf[19].item == 1 + ngroups && isnan(rf[19].score));
    CHECK(rf[0].score == 10.0);
  }
  free(rf);
  m.fail_item = -1;

  /* prefilter only: ranked by prefilter score, no loads */
  int loads = m.nload_calls;
  o.prefilter_only = 1;
  CHECK(bf_search_run(&rf, &nf, q, 1, &src, NULL, pf, &o, &stats) == 0);
  CHECK(m.nload_calls == loads && stats.full_pairs == 0);
  if (nf)
    CHECK(isnan(rf[0].score) && rf[0].pre >= rf[nf - 1].pre);
  free(rf);
  o.prefilter_only = 0;

  /* K larger than the store; an empty store; bad arguments */
  o.keep = (int)N * 2;
  CHECK(bf_search_run(&rf, &nf, q, 1, &src, &cmp, pf, &o, &stats) == 0);
  CHECK(nf == N - 2);
  free(rf);
  bf_search_source empty = {&m, 0, mem_read, mem_load, NULL};
  CHECK(bf_search_run(&rf, &nf, q, 1, &empty, &cmp, pf, &o, &stats) == 0 && nf == 0);
  free(rf);
  CHECK(bf_search_run(&rf, &nf, q, 1, &src, NULL, pf, &o, &stats) == BF_EINVAL && rf == NULL);
  /* a read error in the middle of streaming is reported, nothing returned */
  bf_search_source broken = {&m, N + 100, mem_read, mem_load, NULL};
  o.block = 256;
  CHECK(bf_search_run(&rf, &nf, q, 1, &broken, &cmp, pf, &o, &stats) == BF_EINVAL && rf == NULL);
  CHECK(strstr(bf_error_last(), "beyond") != NULL);

  for (int k = 0; k < 4; k++) {
    free(res1[k]);
    free(res4[k]);
    bf_feature_free(qf[k]);
  }
  bullets(pf);
  cartridges(pf);
  stored_screens(pf);
  free(base);
  free(m.ids);
  free(m.desc);
  free(m.group);
  bf_prefilter_free(pf);
  return bf_t_done();
}
