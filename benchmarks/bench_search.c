/* Search benchmark: recall and scale of the two-stage search. Prints figures; asserts nothing.
 *
 *  recall (cartridge): the 40 processed Fadul scans among D synthetic cartridge cases (bf_synth,
 *      processed, one firing per synthetic firearm): per query, the prefilter rank of every known
 *      mate; recall@K for K = 1..500 (the fraction of query->mate pairs ranked within K, and the
 *      fraction of queries with EVERY mate within K). With --full K2 the best K2 go through the
 *      CMC and the final top-10 recall is printed; with --screen K1 --full K2 (K1 > K2) the three
 *      default stages: prefilter top K1 -> the engine's screen -> its top K2 -> CMC (the defaults
 *      of bfm match/batch are --screen 200 --full 20).
 *  recall (bullet): the Hamby bullets (Hamby 252 barrel 1 bullets 1-2, barrel 2/4 single lands,
 *      Hamby 44 barrel 1 bullets 1-2) and the 24 Hamby lands as one-land bullets among B
 *      synthetic 6-land bullets; prefilter recall vs K; with --full K2 the SAM comparison re-ranks.
 *  registry (--registry N STORE, --registry-queries STORE [--jobs J] [--match-args 'ARGS']): a real
 *      store of N synthetic cartridge cases of one calibre submitted as `bfm firearm add` would
 *      (resumable), then the 40 Fadul cases added and each searched by `bfm match` end to end;
 *      --screen-cost STORE: CPU of the screen stage with stored screen surfaces vs without.
 *  scale store (--scale-store N STORE): distractor entries appended until STORE holds N cartridge
 *      items: real-size descriptors and table rows, no originals or full features (see there);
 *      --open-cost STORE: what a match pays around its search (open, indexes, descriptors,
 *      records), step by step.
 *  scale: query time of the prefilter stage against N stored cartridge descriptors (in memory,
 *      and through a real store file for N <= --store-max), peak memory of a store-backed query
 *      (measured in a child process), the default stages 2+3 (screen + CMC) of one query on
 *      pooled synthetic features, and the predicted query time = stage 1 + stages 2+3.
 *
 * usage: bench_search [--distractors D] [--bullets B] [--scale N1,N2,...] [--full K2] [--screen K1]
 *                     [--store-max N] [--cache DIR] [--skip recall|bullet|scale]...
 * Synthetic descriptors are cached in DIR (default ./bench_search_cache) so reruns are quick.
 * The machine may be shared: timings are noisy, rerun on a quiet machine for the record. */
#include "bf_breechface.h"
#include "bf_bullet.h"
#include "bf_cmc.h"
#include "bf_error.h"
#include "bf_prefilter.h"
#include "bf_search.h"
#include "bf_lr.h"
#include "bf_store.h"
#include "bf_striae.h"
#include "bf_submit.h"
#include "bf_synth.h"
#include "bf_x3p.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *cache_dir = "bench_search_cache";
static bf_prefilter *pf;
static size_t clen, blen; /* descriptor lengths */

static double now(void) { return omp_get_wtime(); }

static long vm_hwm_kb(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmHWM:", 6))
      v = atol(line + 6);
  if (f)
    fclose(f);
  return v;
}

/* ---- cache of float arrays ---- */
static int cache_load(const char *name, float *v, size_t n)
{
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", cache_dir, name);
  FILE *f = fopen(p, "rb");
  if (!f)
    return 0;
  int ok = fread(v, sizeof(float), n, f) == n && fgetc(f) == EOF;
  fclose(f);
  return ok;
}

static void cache_save(const char *name, const float *v, size_t n)
{
  char p[1024];
  mkdir(cache_dir, 0777);
  snprintf(p, sizeof p, "%s/%s", cache_dir, name);
  FILE *f = fopen(p, "wb");
  if (f) {
    fwrite(v, sizeof(float), n, f);
    fclose(f);
  }
}

/* ---- KEY.csv ---- */
typedef struct keyrow {
  char scan[512], kind[32], study[32], source[64], group[64];
} keyrow;

static int read_key(const char *data, keyrow **out)
{
  char p[4200], line[2048];
  snprintf(p, sizeof p, "%s/KEY.csv", data);
  FILE *f = fopen(p, "r");
  if (!f)
    return 0;
  keyrow *v = calloc(512, sizeof *v);
  int n = 0;
  if (!fgets(line, sizeof line, f)) {
    fclose(f);
    return 0;
  }
  while (fgets(line, sizeof line, f) && n < 512) {
    char *fld[8] = {0}, *s = line;
    int k = 0;
    while (k < 8 && s) {
      fld[k++] = s;
      s = strchr(s, ',');
      if (s)
        *s++ = 0;
    }
    if (k < 5)
      continue;
    if (snprintf(v[n].scan, sizeof v[n].scan, "%s", fld[0]) >= (int)sizeof v[n].scan)
      continue; /* too long to be a KEY.csv scan path */
    snprintf(v[n].kind, sizeof v[n].kind, "%s", fld[1]);
    snprintf(v[n].study, sizeof v[n].study, "%s", fld[2]);
    snprintf(v[n].source, sizeof v[n].source, "%s", fld[3]);
    snprintf(v[n].group, sizeof v[n].group, "%s", fld[4]);
    n++;
  }
  fclose(f);
  *out = v;
  return n;
}

/* ---- synthetic descriptors ---- */
static bf_synth *synth;

static int synth_cart_feature(bf_feature **f, int firearm, int firing)
{
  bf_surface *s = NULL;
  int rc = bf_synth_cartridge(&s, synth, firearm, firing, NULL);
  if (!rc)
    rc = bf_feature_new(f, BF_KIND_CARTRIDGE, s->nx, s->ny, s->dx, s->dy);
  if (!rc)
    memcpy((*f)->z, s->z, sizeof(float) * s->nx * s->ny);
  bf_surface_free(s);
  return rc;
}

static float *synth_cart_desc(int n)
{
  float *d = malloc((size_t)n * clen * sizeof(float));
  char name[128];
  snprintf(name, sizeof name, "cart-desc-v%d-%d.f32", BF_PREFILTER_VERSION, n);
  if (cache_load(name, d, (size_t)n * clen))
    return d;
  double t = now();
  int done = 0, fails = 0;
#pragma omp parallel for schedule(dynamic, 4)
  for (int i = 0; i < n; i++) {
    bf_feature *f = NULL, *o = NULL;
    if (synth_cart_feature(&f, 100000 + i, 0) || bf_prefilter_describe(pf, &o, &f, 1)) {
#pragma omp atomic
      fails++;
      memset(d + (size_t)i * clen, 0, clen * sizeof(float));
    } else
      memcpy(d + (size_t)i * clen, o->z, clen * sizeof(float));
    bf_feature_free(f);
    bf_feature_free(o);
#pragma omp atomic
    done++;
    if (omp_get_thread_num() == 0 && done % 200 == 0)
      fprintf(stderr, "\r  synthetic cartridge cases %d/%d (%.0f s)", done, n, now() - t);
  }
  fprintf(stderr, "\r  synthetic cartridge cases %d made and described in %.0f s (%d failed)\n", n,
          now() - t, fails);
  cache_save(name, d, (size_t)n * clen);
  return d;
}

static int synth_bullet_lands(bf_feature **lands, int barrel)
{
  const bf_synth_opts *so = bf_synth_options(synth);
  int nl = so->lands, rc = 0;
  for (int l = 0; l < nl && !rc; l++) {
    bf_surface *s = NULL;
    bf_bullet_opts bo = BF_BULLET_OPTS_INIT;
    bo.land = l + 1;
    lands[l] = NULL;
    rc = bf_synth_land(&s, synth, barrel, 0, l + 1, NULL);
    if (!rc)
      rc = bf_bullet_land_extract(&lands[l], s, &bo);
    bf_surface_free(s);
  }
  return rc ? rc : nl;
}

static float *synth_bullet_desc(int n)
{
  float *d = malloc((size_t)n * blen * sizeof(float));
  char name[128];
  snprintf(name, sizeof name, "bullet-desc-v%d-%d.f32", BF_PREFILTER_VERSION, n);
  if (cache_load(name, d, (size_t)n * blen))
    return d;
  double t = now();
  int done = 0;
#pragma omp parallel for schedule(dynamic, 2)
  for (int i = 0; i < n; i++) {
    bf_feature *l[BF_PF_MAX_LANDS] = {0}, *o = NULL;
    int nl = synth_bullet_lands(l, 200000 + i);
    if (nl > 0 && !bf_prefilter_describe(pf, &o, l, nl))
      memcpy(d + (size_t)i * blen, o->z, blen * sizeof(float));
    else
      memset(d + (size_t)i * blen, 0, blen * sizeof(float));
    for (int k = 0; k < BF_PF_MAX_LANDS; k++)
      bf_feature_free(l[k]);
    bf_feature_free(o);
#pragma omp atomic
    done++;
    if (omp_get_thread_num() == 0 && done % 50 == 0)
      fprintf(stderr, "\r  synthetic bullets %d/%d (%.0f s)", done, n, now() - t);
  }
  fprintf(stderr, "\r  synthetic bullets %d made and described in %.0f s\n", n, now() - t);
  cache_save(name, d, (size_t)n * blen);
  return d;
}

/* ---- recall of prefilter ranks ---- */
static const int Ks[] = {1, 3, 5, 10, 20, 50, 100, 200, 500};
enum { NK = sizeof Ks / sizeof Ks[0] };

/* rank (1-based) of score s among the candidate scores (other than the query) */
static void print_recall(const char *what, int *ranks, int nr, int *qworst, int nq)
{
  printf("%s: %d query->mate pairs, %d queries with mates\n", what, nr, nq);
  printf("  K      ");
  for (int k = 0; k < NK; k++)
    printf("%7d", Ks[k]);
  printf("\n  pairs  ");
  for (int k = 0; k < NK; k++) {
    int c = 0;
    for (int i = 0; i < nr; i++)
      c += ranks[i] <= Ks[k];
    printf("%6.1f%%", 100.0 * c / (nr ? nr : 1));
  }
  printf("\n  all    ");
  for (int k = 0; k < NK; k++) {
    int c = 0;
    for (int i = 0; i < nq; i++)
      c += qworst[i] <= Ks[k];
    printf("%6.1f%%", 100.0 * c / (nq ? nq : 1));
  }
  int *s = malloc(sizeof(int) * (nr ? nr : 1));
  memcpy(s, ranks, sizeof(int) * nr);
  for (int i = 1; i < nr; i++)
    for (int j = i; j > 0 && s[j] < s[j - 1]; j--) {
      int t = s[j];
      s[j] = s[j - 1];
      s[j - 1] = t;
    }
  printf("\n  mate rank: median %d, 90th pct %d, worst %d\n", nr ? s[nr / 2] : 0,
         nr ? s[(int)(0.9 * (nr - 1))] : 0, nr ? s[nr - 1] : 0);
  free(s);
}

/* ---- cartridge recall ---- */
/* the best K candidates (indices j != q, best first) of row q of the score matrix */
static void top_k(const float *row, int ncol, int q, int K, int *cand)
{
  for (int k = 0; k < K; k++)
    cand[k] = -1;
  for (int j = 0; j < ncol; j++) {
    if (j == q)
      continue;
    float s = row[j];
    int pos = K;
    while (pos > 0 && (cand[pos - 1] < 0 || row[cand[pos - 1]] < s))
      pos--;
    if (pos < K) {
      memmove(cand + pos + 1, cand + pos, sizeof(int) * (K - pos - 1));
      cand[pos] = j;
    }
  }
}

static double screen_pair_s = -1; /* measured screen time per comparison (all threads) */

/* Three stages as bf_search_run with opts.keep = K1, opts.screen = K2 and the default
 * comparison: prefilter top K1 -> the engine's screen (coarse CMC) -> its top K2 -> CMC.
 * Each synthetic candidate is synthesised once and screened against every query that kept it. */
static void cart_screen(bf_feature **feat, const float *sc, int n, int D, keyrow *key,
                        const int *idx, int K1, int K2, int nr, int nq)
{
  int N = n + D;
  bf_search_cmp cmp;
  bf_search_default_cmp(&cmp, BF_KIND_CARTRIDGE);
  int *top = malloc(sizeof(int) * (size_t)n * K1), *pos = malloc(sizeof(int) * (size_t)n * N);
  double *ss = malloc(sizeof(double) * (size_t)n * K1);
  char *need = calloc(N, 1);
  void *st[64] = {0};
  for (size_t i = 0; i < (size_t)n * N; i++)
    pos[i] = -1;
  for (int q = 0; q < n; q++) {
    top_k(sc + (size_t)q * N, N, q, K1, top + (size_t)q * K1);
    for (int k = 0; k < K1; k++) {
      ss[(size_t)q * K1 + k] = NAN;
      if (top[(size_t)q * K1 + k] >= 0) {
        pos[(size_t)q * N + top[(size_t)q * K1 + k]] = k;
        need[top[(size_t)q * K1 + k]] = 1;
      }
    }
    if (cmp.screen_prepare(NULL, &st[q], &feat[q], 1))
      printf("  screen prepare of query %d: %s\n", q, bf_error_last());
  }
  int *u = malloc(sizeof(int) * N), nu = 0, done = 0;
  for (int j = 0; j < N; j++)
    if (need[j])
      u[nu++] = j;
  size_t npairs = 0;
  double t = now(), tsyn = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : npairs, tsyn)
  for (int i = 0; i < nu; i++) {
    int j = u[i];
    bf_feature *c = NULL;
    double t0 = now();
    if (j >= n && synth_cart_feature(&c, 100000 + j - n, 0))
      continue;
    tsyn += now() - t0;
    bf_feature *cf = j < n ? feat[j] : c;
    for (int q = 0; q < n; q++) {
      int k = pos[(size_t)q * N + j];
      if (k < 0 || !st[q])
        continue;
      double s = NAN, sub[4];
      if (cmp.screen(NULL, st[q], &feat[q], 1, &cf, 1, &s, sub))
        s = NAN;
      ss[(size_t)q * K1 + k] = s;
      npairs++;
    }
    bf_feature_free(c);
#pragma omp atomic
    done++;
    if (omp_get_thread_num() == 0)
      fprintf(stderr, "\r  screen: candidate %d/%d (%.0f s)", done, nu, now() - t);
  }
  double tscr = now() - t;
  screen_pair_s = (tscr - tsyn / omp_get_max_threads()) / (double)(npairs ? npairs : 1);
  fprintf(stderr, "\n");
  /* per query: screen order, its top K2 through the CMC */
  int in_scr = 0, in10 = 0, all10 = 0, full_pairs = 0, nsr = 0;
  int *srank = malloc(sizeof(int) * (nr ? nr : 1)); /* mates' ranks after the screen */
  int *ord = malloc(sizeof(int) * K1);
  double *cs = malloc(sizeof(double) * K2);
  double tf = now();
  for (int q = 0; q < n; q++) {
    const double *sq = ss + (size_t)q * K1;
    for (int k = 0; k < K1; k++)
      ord[k] = k;
    for (int a = 1; a < K1; a++) /* stable: ties keep the prefilter order */
      for (int b = a; b > 0; b--) {
        double x = sq[ord[b]], y = sq[ord[b - 1]];
        if (!(isnan(y) ? !isnan(x) : (!isnan(x) && x > y)))
          break;
        int tt = ord[b];
        ord[b] = ord[b - 1];
        ord[b - 1] = tt;
      }
#pragma omp parallel for schedule(dynamic, 1)
    for (int k = 0; k < K2; k++) {
      int j = top[(size_t)q * K1 + ord[k]];
      bf_feature *c = NULL;
      cs[k] = -1;
      if (j < 0 || (j >= n && synth_cart_feature(&c, 100000 + j - n, 0)))
        continue;
      bf_cmc_opts o = BF_CMC_OPTS_INIT;
      bf_cmc_result r;
      memset(&r, 0, sizeof r);
      if (!bf_cmc_compare(&r, feat[q], j < n ? feat[j] : c, &o))
        cs[k] = r.score + 1e-6 * (K2 - k);
      bf_cmc_result_clear(&r);
      bf_feature_free(c);
    }
    full_pairs += K2;
    int allin = 1, hasm = 0;
    for (int m = 0; m < n; m++) {
      if (m == q || strcmp(key[idx[m]].source, key[idx[q]].source))
        continue;
      hasm = 1;
      int k1 = pos[(size_t)q * N + m], k2 = -1;
      if (k1 >= 0 && nsr < nr)
        for (int k = 0; k < K1; k++)
          if (ord[k] == k1)
            srank[nsr++] = k + 1;
      for (int k = 0; k < K2 && k1 >= 0; k++)
        if (ord[k] == k1)
          k2 = k;
      int r = 1 << 30;
      if (k2 >= 0) {
        r = 1;
        for (int k = 0; k < K2; k++)
          r += cs[k] > cs[k2];
        in_scr++;
      } else if (k1 >= 0) {
        int sr = 1;
        for (int k = 0; k < K1 && ord[k] != k1; k++)
          sr++;
        printf("  query %d: mate %d prefilter rank %d, screen rank %d (screen score %.3f)\n", q, m,
               k1 + 1, sr, sq[k1]);
      }
      in10 += r <= 10;
      allin &= r <= 10;
    }
    all10 += hasm && allin;
    fprintf(stderr, "\r  CMC stage: query %d/%d (%.0f s)", q + 1, n, now() - tf);
  }
  fprintf(stderr, "\n");
  printf("  three-stage (prefilter top %d -> screen at %.0f um -> top %d -> CMC): mates kept by the "
         "screen %d/%d (%.1f%%); in final top 10: %d/%d pairs (%.1f%%), queries with every mate in "
         "top 10: %d/%d (%.1f%%)\n",
         K1, BF_SEARCH_SCREEN_UM, K2, in_scr, nr, 100.0 * in_scr / nr, in10, nr, 100.0 * in10 / nr,
         all10, nq, 100.0 * all10 / nq);
  for (int i = 1; i < nsr; i++)
    for (int j = i; j > 0 && srank[j] < srank[j - 1]; j--) {
      int tt = srank[j];
      srank[j] = srank[j - 1];
      srank[j - 1] = tt;
    }
  if (nsr)
    printf("  mates' rank after the screen (of %d kept by the prefilter): median %d, 90th pct %d, "
           "worst %d\n", nsr, srank[nsr / 2], srank[(int)(0.9 * (nsr - 1))], srank[nsr - 1]);
  free(srank);
  printf("  screen: %zu comparisons in %.0f s (%d candidates synthesised in it): %.4f s per "
         "comparison on %d threads; CMC: %d comparisons in %.0f s\n",
         npairs, tscr, nu, screen_pair_s, omp_get_max_threads(), full_pairs, now() - tf);
  for (int q = 0; q < n; q++)
    if (st[q])
      cmp.screen_release(NULL, st[q]);
  free(ord);
  free(cs);
  free(u);
  free(need);
  free(ss);
  free(pos);
  free(top);
}

static void cart_recall(const char *data, keyrow *key, int nkey, int D, int full, int screen)
{
  int idx[64], n = 0;
  for (int i = 0; i < nkey && n < 64; i++)
    if (!strcmp(key[i].study, "fadul") && !strncmp(key[i].scan, "cartridge/fadul/", 16))
      idx[n++] = i; /* the processed set (fadul-raw holds 3 raw scans of the same cases) */
  if (n < 2) {
    printf("cartridge recall: Fadul scans not found\n");
    return;
  }
  bf_feature *feat[64] = {0};
  float *fd = malloc((size_t)n * clen * sizeof(float));
  for (int i = 0; i < n; i++) {
    char p[4800];
    bf_surface *s = NULL;
    bf_feature *o = NULL;
    snprintf(p, sizeof p, "%s/%s", data, key[idx[i]].scan);
    if (bf_x3p_read(&s, p, NULL) || bf_feature_new(&feat[i], BF_KIND_CARTRIDGE, s->nx, s->ny, s->dx, s->dy)) {
      printf("%s: %s\n", p, bf_error_last());
      return;
    }
    memcpy(feat[i]->z, s->z, sizeof(float) * s->nx * s->ny);
    bf_surface_free(s);
    if (bf_prefilter_describe(pf, &o, &feat[i], 1)) {
      printf("%s: %s\n", p, bf_error_last());
      return;
    }
    memcpy(fd + (size_t)i * clen, o->z, clen * sizeof(float));
    bf_feature_free(o);
  }
  float *sd = synth_cart_desc(D);
  int ranks[64 * 64], worst[64], nr = 0, nq = 0;
  double t = now();
  float *sc = malloc(sizeof(float) * (size_t)(n + D) * n);
#pragma omp parallel for schedule(dynamic, 64)
  for (int j = 0; j < n + D; j++) {
    const float *c = j < n ? fd + (size_t)j * clen : sd + (size_t)(j - n) * clen;
    for (int q = 0; q < n; q++)
      sc[(size_t)q * (n + D) + j] = (float)bf_prefilter_score(pf, BF_KIND_CARTRIDGE, fd + (size_t)q * clen, c, NULL);
  }
  double tp = now() - t;
  for (int q = 0; q < n; q++) {
    worst[nq] = 0;
    int has = 0;
    for (int m = 0; m < n; m++) {
      if (m == q || strcmp(key[idx[m]].source, key[idx[q]].source))
        continue;
      float s = sc[(size_t)q * (n + D) + m];
      int r = 1;
      for (int j = 0; j < n + D; j++)
        if (j != q && sc[(size_t)q * (n + D) + j] > s)
          r++;
      ranks[nr++] = r;
      if (r > worst[nq])
        worst[nq] = r;
      has = 1;
    }
    nq += has;
  }
  char what[256];
  snprintf(what, sizeof what, "cartridge prefilter recall, %d Fadul among %d synthetic", n, D);
  print_recall(what, ranks, nr, worst, nq);
  printf("  (%zu prefilter scores in %.2f s on %d threads: %.0f scores/s)\n", (size_t)n * (n + D), tp,
         omp_get_max_threads(), n * (double)(n + D) / tp);
  if (full > 0 && screen > full)
    cart_screen(feat, sc, n, D, key, idx, screen, full, nr, nq);
  else if (full > 0) {
    /* stage 2: CMC on the best `full` of each query, mates in the final top 10 */
    int in10 = 0, all10 = 0, pairs = 0;
    double tf = now();
    int *cand = malloc(sizeof(int) * full);
    double *cs = malloc(sizeof(double) * full);
    for (int q = 0; q < n; q++) {
      /* top `full` by prefilter */
      for (int k = 0; k < full; k++)
        cand[k] = -1;
      for (int j = 0; j < n + D; j++) {
        if (j == q)
          continue;
        float s = sc[(size_t)q * (n + D) + j];
        int pos = full;
        while (pos > 0 && (cand[pos - 1] < 0 || sc[(size_t)q * (n + D) + cand[pos - 1]] < s))
          pos--;
        if (pos < full) {
          memmove(cand + pos + 1, cand + pos, sizeof(int) * (full - pos - 1));
          cand[pos] = j;
        }
      }
#pragma omp parallel for schedule(dynamic, 1)
      for (int k = 0; k < full; k++) {
        bf_feature *c = NULL;
        cs[k] = -1;
        if (cand[k] < 0)
          continue;
        int own = cand[k] < n;
        if (!own && synth_cart_feature(&c, 100000 + cand[k] - n, 0))
          continue;
        bf_cmc_opts o = BF_CMC_OPTS_INIT;
        bf_cmc_result r;
        memset(&r, 0, sizeof r);
        if (!bf_cmc_compare(&r, feat[q], own ? feat[cand[k]] : c, &o))
          cs[k] = r.score + 1e-6 * (full - k); /* ties keep the prefilter order */
        bf_cmc_result_clear(&r);
        bf_feature_free(c);
      }
      pairs += full;
      int allin = 1, hasm = 0;
      for (int m = 0; m < n; m++) {
        if (m == q || strcmp(key[idx[m]].source, key[idx[q]].source))
          continue;
        hasm = 1;
        int pos = -1;
        for (int k = 0; k < full; k++)
          if (cand[k] == m)
            pos = k;
        int r = 1 << 30;
        if (pos >= 0) {
          r = 1;
          for (int k = 0; k < full; k++)
            r += cs[k] > cs[pos];
        }
        in10 += r <= 10;
        allin &= r <= 10;
      }
      all10 += hasm && allin;
      fprintf(stderr, "\r  CMC stage: query %d/%d (%.0f s)", q + 1, n, now() - tf);
    }
    fprintf(stderr, "\n");
    printf("  two-stage (prefilter top %d -> CMC): mates in final top 10: %d/%d pairs (%.1f%%), "
           "queries with every mate in top 10: %d/%d (%.1f%%); %d CMC comparisons in %.0f s\n",
           full, in10, nr, 100.0 * in10 / nr, all10, nq, 100.0 * all10 / nq, pairs, now() - tf);
    free(cand);
    free(cs);
  }
  for (int i = 0; i < n; i++)
    bf_feature_free(feat[i]);
  free(sc);
  free(fd);
  free(sd);
}

/* ---- bullet recall ---- */
static void bullet_recall(const char *data, keyrow *key, int nkey, int B)
{
  /* real bullets: scans grouped by file-name prefix up to "_Land" */
  typedef struct rb {
    char name[128], source[64];
    bf_feature *land[8];
    char group[8][64];
    int n;
  } rb;
  rb bul[16];
  int nb = 0, nl = 0;
  memset(bul, 0, sizeof bul);
  for (int i = 0; i < nkey; i++) {
    if (strcmp(key[i].kind, "bullet_land"))
      continue;
    const char *base = strrchr(key[i].scan, '/');
    base = base ? base + 1 : key[i].scan;
    char name[128];
    snprintf(name, sizeof name, "%s", base);
    char *lp = strstr(name, "_Land");
    if (lp)
      *lp = 0;
    int b = 0;
    while (b < nb && strcmp(bul[b].name, name))
      b++;
    if (b == nb) {
      if (nb == 16)
        continue;
      snprintf(bul[nb].name, sizeof bul[nb].name, "%s", name);
      snprintf(bul[nb].source, sizeof bul[nb].source, "%s", key[i].source);
      nb++;
    }
    char p[4800];
    bf_surface *s = NULL;
    bf_bullet_opts bo = BF_BULLET_OPTS_INIT;
    bo.land = lp ? atoi(lp + 5) : 0;
    snprintf(p, sizeof p, "%s/%s", data, key[i].scan);
    bf_feature *f = NULL;
    if (bf_x3p_read(&s, p, NULL) || bf_bullet_land_extract(&f, s, &bo)) {
      printf("  %s: %s\n", p, bf_error_last());
      bf_surface_free(s);
      continue;
    }
    bf_surface_free(s);
    if (bul[b].n < 8) {
      snprintf(bul[b].group[bul[b].n], 64, "%s", key[i].group);
      bul[b].land[bul[b].n++] = f;
      nl++;
    } else
      bf_feature_free(f);
  }
  if (!nb) {
    printf("bullet recall: Hamby scans not found\n");
    return;
  }
  float *sd = synth_bullet_desc(B);
  /* bullet level */
  float *bd = calloc((size_t)nb * blen, sizeof(float));
  for (int b = 0; b < nb; b++) {
    bf_feature *o = NULL;
    if (!bf_prefilter_describe(pf, &o, bul[b].land, bul[b].n))
      memcpy(bd + (size_t)b * blen, o->z, blen * sizeof(float));
    bf_feature_free(o);
  }
  int ranks[4096], worst[256], nr = 0, nq = 0;
  for (int q = 0; q < nb; q++) {
    int has = 0;
    worst[nq] = 0;
    for (int m = 0; m < nb; m++) {
      if (m == q || strcmp(bul[m].source, bul[q].source))
        continue;
      double s = bf_prefilter_score(pf, BF_KIND_BULLET, bd + (size_t)q * blen, bd + (size_t)m * blen, NULL);
      int r = 1;
      for (int j = 0; j < nb; j++)
        r += j != q && j != m &&
             bf_prefilter_score(pf, BF_KIND_BULLET, bd + (size_t)q * blen, bd + (size_t)j * blen, NULL) > s;
      for (int j = 0; j < B; j++)
        r += bf_prefilter_score(pf, BF_KIND_BULLET, bd + (size_t)q * blen, sd + (size_t)j * blen, NULL) > s;
      ranks[nr++] = r;
      if (r > worst[nq])
        worst[nq] = r;
      has = 1;
    }
    nq += has;
  }
  char what[256];
  snprintf(what, sizeof what, "bullet prefilter recall, %d Hamby bullets among %d synthetic", nb, B);
  print_recall(what, ranks, nr, worst, nq);
  /* land level: each land a one-land bullet; mates share the land group */
  float *ld = calloc((size_t)nl * blen, sizeof(float));
  char (*lg)[64] = calloc(nl, 64);
  int k = 0;
  for (int b = 0; b < nb; b++)
    for (int l = 0; l < bul[b].n; l++, k++) {
      bf_feature *o = NULL;
      if (!bf_prefilter_describe(pf, &o, &bul[b].land[l], 1))
        memcpy(ld + (size_t)k * blen, o->z, blen * sizeof(float));
      snprintf(lg[k], 64, "%s", bul[b].group[l]);
      bf_feature_free(o);
    }
  nr = nq = 0;
  for (int q = 0; q < nl; q++) {
    int has = 0;
    worst[nq] = 0;
    for (int m = 0; m < nl; m++) {
      if (m == q || strcmp(lg[m], lg[q]))
        continue;
      double s = bf_prefilter_score(pf, BF_KIND_BULLET, ld + (size_t)q * blen, ld + (size_t)m * blen, NULL);
      int r = 1;
      for (int j = 0; j < nl; j++)
        r += j != q && j != m &&
             bf_prefilter_score(pf, BF_KIND_BULLET, ld + (size_t)q * blen, ld + (size_t)j * blen, NULL) > s;
      for (int j = 0; j < B; j++)
        r += bf_prefilter_score(pf, BF_KIND_BULLET, ld + (size_t)q * blen, sd + (size_t)j * blen, NULL) > s;
      ranks[nr++] = r;
      if (r > worst[nq])
        worst[nq] = r;
      has = 1;
    }
    nq += has;
  }
  snprintf(what, sizeof what, "land prefilter recall, %d Hamby lands as one-land bullets among %d synthetic bullets", nl, B);
  print_recall(what, ranks, nr, worst, nq);
  for (int b = 0; b < nb; b++)
    for (int l = 0; l < bul[b].n; l++)
      bf_feature_free(bul[b].land[l]);
  free(lg);
  free(ld);
  free(bd);
  free(sd);
}

/* ---- scale ---- */
typedef struct tile_src {
  const float *pool;
  size_t npool, n;
  bf_feature **feat; /* nfeat synthetic cases the loader hands out (item i -> feat[i % nfeat]) */
  int nfeat;
} tile_src;

/* A candidate's features as a store would give them: a fresh copy of a pooled synthetic case. */
static int tile_load(void *ctx, int64_t item, bf_feature ***feat, int *n)
{
  tile_src *t = ctx;
  const bf_feature *s = t->feat[item % t->nfeat];
  bf_feature *f = NULL;
  int rc = bf_feature_new(&f, BF_KIND_CARTRIDGE, s->nx, s->ny, s->dx, s->dy);
  if (rc)
    return rc;
  memcpy(f->z, s->z, sizeof(float) * s->nx * s->ny);
  *feat = malloc(sizeof **feat);
  (*feat)[0] = f;
  *n = 1;
  return 0;
}

/* Row i is pool row i % npool with a cheap deterministic perturbation (content does not change
 * the cost of a score). */
static int tile_read(void *ctx, size_t first, size_t n, int64_t *ids, float *desc)
{
  tile_src *t = ctx;
  for (size_t i = 0; i < n; i++) {
    size_t r = first + i;
    ids[i] = (int64_t)r + 1;
    const float *src = t->pool + (r % t->npool) * clen;
    float g = 1.0f + 0.001f * (float)(r % 97);
    for (size_t k = 0; k < clen; k++)
      desc[i * clen + k] = src[k] * g;
  }
  return 0;
}

static int build_store(const char *path, const float *pool, size_t npool, size_t n)
{
  struct stat sb;
  if (!stat(path, &sb))
    return 0; /* cached */
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.building", path);
  remove(tmp);
  bf_store *st = NULL;
  int rc = bf_store_create(tmp, "bench");
  if (!rc)
    rc = bf_store_open(&st, tmp, BF_STORE_WRITE, "bench");
  bf_feature *d = NULL;
  if (!rc)
    rc = bf_feature_new(&d, BF_KIND_CARTRIDGE, (int)clen, 1, 1, 1);
  double t = now();
  for (size_t i0 = 0; i0 < n && !rc; i0 += 25000) {
    rc = bf_store_begin(st);
    if (!rc && !i0) /* as bf_search_store_index creates it */
      rc = bf_store_add_kind(st, "cartridge-pf", 0);
    int64_t fid = 0;
    bf_firearm f;
    memset(&f, 0, sizeof f);
    for (size_t i = i0; i < n && i < i0 + 25000 && !rc; i++) {
      int64_t item;
      snprintf(f.serial, sizeof f.serial, "SYN-%zu", i);
      rc = bf_store_add_firearm(st, &fid, &f);
      if (!rc)
        rc = bf_store_add_item(st, &item, BF_KIND_CARTRIDGE, "9mm", BF_OWNER_FIREARM, fid);
      if (!rc) {
        int64_t id1;
        tile_src ts = {pool, npool, n, NULL, 0};
        tile_read(&ts, i, 1, &id1, d->z);
        d->version = BF_PREFILTER_VERSION;
        rc = bf_store_put_feature(st, "cartridge-pf", item, 0, d);
      }
    }
    if (!rc)
      rc = bf_store_commit(st);
    fprintf(stderr, "\r  building a %zu-item store: %zu (%.0f s)", n, i0 + 25000 < n ? i0 + 25000 : n, now() - t);
  }
  fprintf(stderr, "\n");
  bf_feature_free(d);
  bf_store_close(st);
  if (!rc && rename(tmp, path))
    rc = BF_EIO;
  if (rc)
    fprintf(stderr, "  store build failed: %s\n", bf_error_last());
  return rc;
}

/* --query-store PATH: one store-backed prefilter query; prints seconds and peak-memory growth. */
static int query_store(const char *path)
{
  bf_store *st = NULL;
  bf_search_store_ctx *sc = NULL;
  bf_search_source ss;
  bf_search_opts o = BF_SEARCH_OPTS_INIT;
  o.prefilter_only = 1;
  float *q = synth_cart_desc(1000); /* the cached pool: row 0 is the query */
  long h0 = vm_hwm_kb();
  double t0 = now(), t = -1;
  if (!bf_store_open(&st, path, BF_STORE_READ, NULL) &&
      !bf_search_store_source(&ss, &sc, st, BF_KIND_CARTRIDGE, NULL)) {
    bf_search_query qq = {0, BF_KIND_CARTRIDGE, q, NULL, 0};
    bf_cand *rr = NULL;
    size_t nn = 0;
    if (!bf_search_run(&rr, &nn, &qq, 1, &ss, NULL, pf, &o, NULL))
      t = now() - t0;
    free(rr);
  }
  if (t < 0)
    fprintf(stderr, "query-store: %s\n", bf_error_last());
  printf("%.4f %.1f\n", t, (vm_hwm_kb() - h0) / 1024.0);
  bf_search_store_source_free(sc);
  bf_store_close(st);
  free(q);
  return t < 0;
}

static void scale(const size_t *sizes, int ns, size_t store_max)
{
  size_t npool = 1000;
  float *pool = synth_cart_desc((int)npool);
  bf_search_opts o = BF_SEARCH_OPTS_INIT;
  o.prefilter_only = 1;
  o.keep = 50;
  /* CMC pair time: synthetic pairs, all threads across pairs (as stage 2 runs) */
  int npairs = 8;
  double tc = now();
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < npairs; i++) {
    bf_feature *a = NULL, *b = NULL;
    if (!synth_cart_feature(&a, 7 + i, 0) && !synth_cart_feature(&b, 7 + i, 1)) {
      bf_cmc_opts co = BF_CMC_OPTS_INIT;
      bf_cmc_result r;
      memset(&r, 0, sizeof r);
      bf_cmc_compare(&r, a, b, &co);
      bf_cmc_result_clear(&r);
    }
    bf_feature_free(a);
    bf_feature_free(b);
  }
  double cmc_pair = (now() - tc) / npairs; /* includes making the two synthetic features */
  printf("CMC stage: %.2f s per comparison on %d threads in parallel (incl. synthesising the pair, "
         "545^2 at 6.25 um) -> %.2f comparisons/s\n", cmc_pair, omp_get_max_threads(), 1 / cmc_pair);
  /* the default pipeline (prefilter top keep -> screen -> CMC) on pooled synthetic features */
  enum { NF = 16 };
  bf_feature *qf = NULL, *ff[NF] = {0};
  int okf = !synth_cart_feature(&qf, 7, 1);
  for (int i = 0; i < NF && okf; i++)
    okf = !synth_cart_feature(&ff[i], i == 0 ? 7 : 300 + i, 0);
  bf_search_opts dflt = BF_SEARCH_OPTS_INIT;
  double t23 = -1, tscr = 0, tcmc = 0;
  if (okf) {
    tile_src ts = {pool, npool, 1000, ff, NF};
    bf_search_source src = {&ts, 1000, tile_read, tile_load, NULL};
    bf_search_cmp cmp;
    bf_search_default_cmp(&cmp, BF_KIND_CARTRIDGE);
    bf_search_query q = {0, BF_KIND_CARTRIDGE, pool, &qf, 1};
    bf_cand *res = NULL;
    size_t nres = 0;
    bf_search_stats stats;
    if (!bf_search_run(&res, &nres, &q, 1, &src, &cmp, pf, &dflt, &stats)) {
      tscr = stats.t_screen;
      tcmc = stats.t_full;
      t23 = tscr + tcmc;
      printf("default stages 2+3 of one query (keep %d -> screen -> %d CMCs, features copied from "
             "memory): screen %.2f s (%zu pairs, %.1f ms each), CMC %.2f s (%zu pairs, %.2f s each) "
             "on %d threads\n", dflt.keep, dflt.screen, tscr, stats.screen_pairs,
             1e3 * tscr / (stats.screen_pairs ? stats.screen_pairs : 1), tcmc, stats.full_pairs,
             tcmc / (stats.full_pairs ? stats.full_pairs : 1), omp_get_max_threads());
    } else
      printf("default stages 2+3 failed: %s\n", bf_error_last());
    free(res);
  }
  bf_feature_free(qf);
  for (int i = 0; i < NF; i++)
    bf_feature_free(ff[i]);
  printf("scale (prefilter stage, one query; K = %d kept):\n", o.keep);
  printf("  %9s %12s %12s %14s %12s %16s\n", "stored", "in-memory s", "scores/s", "store-backed s",
         "peak MB", "predicted s");
  for (int k = 0; k < ns; k++) {
    size_t n = sizes[k];
    tile_src ts = {pool, npool, n, NULL, 0};
    bf_search_source src = {&ts, n, tile_read, NULL, NULL};
    bf_search_query q = {0, BF_KIND_CARTRIDGE, pool, NULL, 0};
    bf_cand *res = NULL;
    size_t nres = 0;
    bf_search_stats stats;
    double t = now();
    bf_search_run(&res, &nres, &q, 1, &src, NULL, pf, &o, &stats);
    double tm = now() - t;
    free(res);
    double ts_store = -1;
    long hwm = -1;
    if (n <= store_max) {
      char path[1024];
      mkdir(cache_dir, 0777);
      snprintf(path, sizeof path, "%s/scale-plain-%zu.bfm", cache_dir, n);
      if (!build_store(path, pool, npool, n)) {
        /* a fresh process (OpenMP is not fork-safe): its own peak memory is the figure */
        char cmd[2400];
        snprintf(cmd, sizeof cmd, "/proc/%d/exe --cache '%s' --query-store '%s'", (int)getpid(), cache_dir, path);
        FILE *pp = popen(cmd, "r");
        double r0 = -1, r1 = -1;
        if (pp) {
          if (fscanf(pp, "%lf %lf", &r0, &r1) != 2)
            r0 = -1;
          pclose(pp);
        }
        ts_store = r0;
        hwm = (long)r1;
      }
    }
    double stage1 = ts_store > 0 ? ts_store : tm;
    char sst[32] = "-", shw[32] = "-";
    if (ts_store > 0) {
      snprintf(sst, sizeof sst, "%.3f", ts_store);
      snprintf(shw, sizeof shw, "%ld", hwm);
    }
    printf("  %9zu %12.3f %12.0f %14s %12s %16.1f\n", n, tm, n / tm, sst, shw,
           stage1 + (t23 >= 0 ? t23 : dflt.screen * cmc_pair));
    fflush(stdout);
  }
  printf("  (in-memory: descriptors generated by a callback, pure scoring cost; store-backed: a real\n"
         "   store file of N items with descriptors only, opened read-only in a child process: open +\n"
         "   index + streamed HDF5 reads + scoring; peak MB = growth of the child's VmHWM during it;\n"
         "   predicted = stage 1 (store-backed when measured) + the default stages 2+3 above; reading\n"
         "   the ~220 candidates' features from a store comes on top, overlapped with the comparisons)\n");
  free(pool);
}

/* ---- the registry: N synthetic cartridge cases of one calibre in a real store ----
 * --registry N STORE builds (or continues: cases already stored are kept) a store of N
 * synthetic cartridge cases submitted through bf_submit exactly as `bfm firearm add` would
 * (X3P original + feature + descriptor + screen surface), REG_BATCH per commit. The X3P files
 * of batch b+1 are made by the other threads while thread 0 submits batch b (HDF5: one thread).
 * --registry-queries STORE adds the Fadul scans (evidence case FADUL, once) and runs
 * `bfm match STORE ITEM --json` for each as a new process: mates in the top 10, ranks, non-mates
 * meeting the hit rule (LR >= 10), wall/CPU/max RSS of every match. */
#define REG_CALIBRE "9mm Luger"
#define REG_BATCH 250
#define REG_FIREARM0 100000 /* synthetic firearm ids (same generator as the recall distractors) */

static double cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int reg_count(bf_store *st)
{
  size_t n = bf_store_nfirearms(st);
  const bf_firearm *f = bf_store_firearms(st);
  int c = 0;
  for (size_t i = 0; i < n; i++)
    c += !strncmp(f[i].serial, "REG-", 4);
  return c;
}

static void reg_file(char *p, size_t n, const char *tmp, int i)
{
  snprintf(p, n, "%s/REG-%07d.x3p", tmp, i);
}

static int reg_make(const char *tmp, int i)
{
  bf_surface *s = NULL;
  char p[4400];
  reg_file(p, sizeof p, tmp, i);
  int rc = bf_synth_cartridge(&s, synth, REG_FIREARM0 + i, 0, NULL);
  if (!rc)
    rc = bf_x3p_write(p, s, 'F');
  bf_surface_free(s);
  return rc;
}

static int reg_submit(bf_store *st, const char *tmp, int b0, int bn, int *stored)
{
  bf_submit_opts so = {.pf = pf};
  int rc = bf_store_begin(st);
  for (int i = 0; i < bn && !rc; i++) {
    char p[4400];
    char *spec = p;
    bf_submission sub;
    bf_submit_result res;
    memset(&sub, 0, sizeof sub);
    reg_file(p, sizeof p, tmp, b0 + i);
    sub.type = BF_OWNER_FIREARM;
    sub.kind = BF_KIND_CARTRIDGE;
    snprintf(sub.firearm.serial, sizeof sub.firearm.serial, "REG-%07d", b0 + i);
    snprintf(sub.firearm.make, sizeof sub.firearm.make, "Synthetic");
    snprintf(sub.calibre, sizeof sub.calibre, "%s", REG_CALIBRE);
    int e = bf_scanset_build(&sub.scans, &spec, 1, 0, NULL);
    if (!e)
      e = bf_submit(st, &sub, &so, &res);
    bf_submission_clear(&sub);
    if (e && res.dirty)
      rc = e;
    else if (e)
      fprintf(stderr, "\n  %s: not stored: %s\n", p, bf_error_last());
    else
      (*stored)++;
    unlink(p);
  }
  if (!rc)
    rc = bf_store_commit(st);
  else
    bf_store_abort(st);
  return rc;
}

static long file_mb(const char *path)
{
  char cmd[4400];
  snprintf(cmd, sizeof cmd, "du -smc '%s' '%s.d' 2>/dev/null | tail -1", path, path);
  FILE *f = popen(cmd, "r");
  long v = -1;
  if (f) {
    if (fscanf(f, "%ld", &v) != 1)
      v = -1;
    pclose(f);
  }
  return v;
}

static int registry_build(const char *path, int n)
{
  struct stat sb;
  bf_store *st = NULL;
  char tmp[4200];
  int rc = 0, stored = 0;
  if (stat(path, &sb) && (rc = bf_store_create(path, "bench")))
    goto done;
  if ((rc = bf_store_open(&st, path, BF_STORE_WRITE, "bench")))
    goto done;
  snprintf(tmp, sizeof tmp, "%s.x3p-tmp", path);
  mkdir(tmp, 0777);
  int have = reg_count(st), first = have;
  printf("registry %s: %d synthetic cartridge cases stored, building to %d (%d per commit)\n", path,
         have, n, REG_BATCH);
  double t0 = now(), c0 = cpu_s();
  int bn = n - have < REG_BATCH ? n - have : REG_BATCH, mfail = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : mfail)
  for (int i = 0; i < bn; i++)
    mfail += reg_make(tmp, have + i) != 0;
  while (have < n && !rc) {
    int nb0 = have + bn, nbn = n - nb0 < REG_BATCH ? n - nb0 : REG_BATCH, src = 0;
    if (nbn < 0)
      nbn = 0;
#pragma omp parallel reduction(+ : mfail)
    {
      if (omp_get_thread_num() == 0)
        src = reg_submit(st, tmp, have, bn, &stored);
#pragma omp for schedule(dynamic, 1) nowait
      for (int i = 0; i < nbn; i++)
        mfail += reg_make(tmp, nb0 + i) != 0;
    }
    rc = src;
    have = nb0;
    bn = nbn;
    double t = now() - t0, c = cpu_s() - c0;
    printf("  %d stored (%d this run, %d not made) %.0f s wall %.0f s CPU: %.1f cases/s, %.2f CPU s/case, "
           "%ld MB\n", first + stored, stored, mfail, t, c, stored / t, stored ? c / stored : 0,
           file_mb(path));
  }
  for (int i = 0; i < bn; i++) { /* made but not submitted (a failure stopped the build) */
    char p[4400];
    reg_file(p, sizeof p, tmp, have + i);
    unlink(p);
  }
  rmdir(tmp);
done:
  if (rc)
    fprintf(stderr, "registry: %s\n", bf_error_last());
  bf_store_close(st);
  return rc ? 1 : 0;
}

/* `bfm match` runs as new processes, up to `jobs` at once (the machine is shared: running a few
 * side by side keeps the wall clock of the whole set bounded; CPU and max RSS are per process).
 * argv[i] of job i; its stdout is kept in out[i] and in the file TMP.qI.json, which a later run
 * reuses when complete (so a stopped set of queries resumes; jobs 0: only those are read). */
static void run_matches(char *(*argv)[16], int n, int jobs, const char *tmp, char **out, int *exit_code,
                        double *wall, double *cpu, long *rss_kb)
{
  pid_t *pid = calloc((size_t)n, sizeof *pid);
  double *t0 = calloc((size_t)n, sizeof *t0);
  int next = 0, running = 0;
  for (int i = 0; i < n; i++) { /* a finished answer of an earlier (stopped) run is kept */
    char f[4400];
    snprintf(f, sizeof f, "%s.q%d.json", tmp, i);
    FILE *fp = fopen(f, "rb");
    char *b = fp ? calloc(1, 1 << 20) : NULL;
    size_t len = b ? fread(b, 1, (1 << 20) - 1, fp) : 0;
    if (fp)
      fclose(fp);
    if (b && len > 3 && !strcmp(b + len - 3, "]}\n")) {
      out[i] = b;
      exit_code[i] = 0;
      pid[i] = -1;
    } else
      free(b);
  }
  while (next < n || running) {
    while (next < n && pid[next] == -1)
      next++;
    while (next < n && running < jobs) {
      char f[4400];
      snprintf(f, sizeof f, "%s.q%d.json", tmp, next);
      t0[next] = now();
      pid_t c = fork();
      if (c == 0) {
        FILE *o = freopen(f, "w", stdout);
        (void)o;
        execv(argv[next][0], argv[next]);
        _exit(127);
      }
      pid[next++] = c;
      running++;
      while (next < n && pid[next] == -1)
        next++;
    }
    if (!running)
      break;
    int status = 0;
    struct rusage ru;
    pid_t w = wait4(-1, &status, 0, &ru);
    if (w < 0)
      break;
    for (int i = 0; i < n; i++)
      if (pid[i] == w) {
        running--;
        wall[i] = now() - t0[i];
        cpu[i] = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
        rss_kb[i] = ru.ru_maxrss;
        exit_code[i] = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        char f[4400];
        snprintf(f, sizeof f, "%s.q%d.json", tmp, i);
        FILE *fp = fopen(f, "rb");
        size_t len = 0, cap = 1 << 16;
        char *b = malloc(cap);
        size_t r;
        while (fp && (r = fread(b + len, 1, cap - len - 1, fp)) > 0)
          if ((len += r) + 4096 > cap)
            b = realloc(b, cap *= 2);
        b[len] = 0;
        if (fp)
          fclose(fp);
        out[i] = b; /* the file stays for a second look */
      }
  }
  free(pid);
  free(t0);
}

static int dcmp_asc(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int registry_queries(const char *path, const char *data, const keyrow *key, int nkey,
                            const char *extra, int jobs)
{
  bf_store *st = NULL;
  int64_t ids[64];
  int src[64], nq = 0, rc = 0;
  char sources[64][64];
  if ((rc = bf_store_open(&st, path, BF_STORE_WRITE, "bench")))
    goto fail;
  size_t nregistry = (size_t)reg_count(st);
  if ((rc = bf_store_begin(st)))
    goto fail;
  int added = 0;
  for (int k = 0; k < nkey && nq < 64; k++) {
    if (strcmp(key[k].study, "fadul") || strcmp(key[k].kind, "cartridge"))
      continue;
    const char *base = strrchr(key[k].scan, '/') ? strrchr(key[k].scan, '/') + 1 : key[k].scan;
    const bf_evidence *ev = bf_store_evidence_by_case_item(st, "FADUL", base);
    if (!ev) {
      char p[4200];
      char *spec = p;
      bf_submission sub;
      bf_submit_result res;
      memset(&sub, 0, sizeof sub);
      snprintf(p, sizeof p, "%s/%s", data, key[k].scan);
      sub.type = BF_OWNER_EVIDENCE;
      sub.kind = BF_KIND_CARTRIDGE;
      snprintf(sub.evidence.case_no, sizeof sub.evidence.case_no, "FADUL");
      snprintf(sub.evidence.item, sizeof sub.evidence.item, "%s", base);
      snprintf(sub.calibre, sizeof sub.calibre, "%s", REG_CALIBRE);
      bf_submit_opts so = {.pf = pf};
      int e = bf_scanset_build(&sub.scans, &spec, 1, 0, NULL);
      if (!e)
        e = bf_submit(st, &sub, &so, &res);
      bf_submission_clear(&sub);
      if (e) {
        rc = e;
        goto fail;
      }
      added++;
      ev = bf_store_evidence_by_case_item(st, "FADUL", base);
    }
    /* the item of the evidence record */
    size_t nit = bf_store_nitems(st);
    const bf_item *it = bf_store_items(st);
    int64_t item = 0;
    for (size_t i = nit; i-- > 0 && ev;)
      if (it[i].owner_type == BF_OWNER_EVIDENCE && it[i].owner == ev->id) {
        item = it[i].id;
        break;
      }
    ids[nq] = item;
    snprintf(sources[nq], sizeof sources[nq], "%s", key[k].source);
    nq++;
  }
  if (added ? (rc = bf_store_commit(st)) : (bf_store_abort(st), 0))
    goto fail;
  bf_store_close(st);
  st = NULL;
  for (int i = 0; i < nq; i++) {
    src[i] = 0;
    for (int j = 0; j < nq; j++)
      src[i] += j != i && !strcmp(sources[i], sources[j]);
  }
  printf("registry queries: %d Fadul cases (%d added now) among %zu synthetic cases, `bfm match "
         "STORE ITEM --json%s%s` (top 10, the default stages) each as a new process, %d at a time\n", nq, added, nregistry,
         extra ? " " : "", extra ? extra : "", jobs);
  int mates = 0, top10 = 0, nrank = 0, allq = 0, npr = 0, nsr = 0;
  double pranks[64 * 64], sranks[64 * 64];
  double ranks[64 * 64], walls[64], cpus[64], hits_nm[64];
  long rss_max = 0, rssv[64];
  char *outs[64], idbuf[64][32], extra_copy[64][256], *argvs[64][16];
  int exits[64];
  for (int i = 0; i < nq; i++) {
    outs[i] = NULL;
    exits[i] = -1;
    walls[i] = cpus[i] = NAN;
    rssv[i] = 0;
    snprintf(idbuf[i], sizeof idbuf[i], "%lld", (long long)ids[i]);
    char *a0[] = {(char *)BF_BFM_EXE, "match", (char *)path, idbuf[i], "--json", "--top", "10"};
    int a = 7;
    memcpy(argvs[i], a0, sizeof a0);
    if (extra) {
      snprintf(extra_copy[i], sizeof extra_copy[i], "%s", extra);
      for (char *s = strtok(extra_copy[i], " "); s && a < 15; s = strtok(NULL, " "))
        argvs[i][a++] = s;
    }
    argvs[i][a] = NULL;
  }
  run_matches(argvs, nq, jobs, path, outs, exits, walls, cpus, rssv);
  int nrun = 0, nmeas = 0;
  for (int i = 0; i < nq; i++) {
    char *out = outs[i];
    int e = exits[i];
    long rss = rssv[i];
    if (e) { /* not run (stopped) or failed: left out of the figures */
      printf("  query %2d item %6lld (%s): %s\n", i + 1, (long long)ids[i], sources[i],
             e < 0 ? "not run" : "bfm match failed");
      free(out);
      hits_nm[i] = NAN;
      continue;
    }
    nrun++;
    if (!isnan(walls[i])) {
      walls[nmeas] = walls[i];
      cpus[nmeas++] = cpus[i];
    }
    if (rss > rss_max)
      rss_max = rss;
    int qm = 0, q10 = 0, nm_hits = 0;
    /* parse the candidates: "rank": R, "item": I, "score": S|null */
    for (const char *s = out; e == 0 && s && (s = strstr(s, "\"rank\": ")); s++) {
      int r = 0;
      long long item = 0;
      double sc = NAN;
      if (sscanf(s, "\"rank\": %d, \"item\": %lld, \"score\": %lf", &r, &item, &sc) < 2)
        continue;
      int mate = 0;
      for (int j = 0; j < nq; j++)
        if (j != i && ids[j] == item && !strcmp(sources[j], sources[i]))
          mate = 1;
      if (mate) {
        qm++;
        q10 += r <= 10;
        ranks[nrank++] = r;
        /* the same candidate's prefilter and screen ranks (the screen's only when screened) */
        const char *end = strchr(s, '}'), *p;
        int pr = 0, sr = 0;
        if ((p = strstr(s, "\"prefilter_rank\": ")) && (!end || p < end))
          pr = atoi(p + 18);
        if ((p = strstr(s, "\"screen_rank\": ")) && (!end || p < end))
          sr = atoi(p + 15);
        pranks[npr++] = pr;
        if (sr)
          sranks[nsr++] = sr;
      } else if (!isnan(sc)) {
        bf_lr lr;
        if (!bf_lr_score(&lr, BF_KIND_CARTRIDGE, sc, 0, NULL) && lr.match)
          nm_hits++;
      }
    }
    for (int m = qm; m < src[i]; m++) /* a mate outside the kept candidates */
      ranks[nrank++] = 1e9;
    for (int m = qm; m < src[i]; m++) /* ... or not shown: its screen rank is past those shown */
      sranks[nsr++] = 1e9;
    mates += src[i];
    top10 += q10;
    allq += q10 == src[i];
    hits_nm[i] = nm_hits;
    printf("  query %2d item %6lld (%s): exit %d, mates in top 10 %d/%d, non-mates at LR>=10 %d, "
           "%.2f s wall %.2f s CPU %.0f MB\n", i + 1, (long long)ids[i], sources[i], e, q10, src[i], nm_hits,
           walls[i], cpus[i], rss / 1024.0);
    free(out);
  }
  qsort(ranks, nrank, sizeof *ranks, dcmp_asc);
  qsort(pranks, npr, sizeof *pranks, dcmp_asc);
  qsort(sranks, nsr, sizeof *sranks, dcmp_asc);
  /* ranks of the mates shown (a mate not shown has screen rank 1e9: past the shown ones) */
  printf("registry: mate ranks (shown mates): prefilter median %.0f worst %.0f of %d; after the screen "
         "median %.0f worst %.0f of %d (1e9 = not among those shown); after the full comparison median "
         "%.0f worst %.0f\n", npr ? pranks[npr / 2] : NAN, npr ? pranks[npr - 1] : NAN, npr,
         nsr ? sranks[nsr / 2] : NAN, nsr ? sranks[nsr - 1] : NAN, nsr, nrank ? ranks[nrank / 2] : NAN,
         nrank ? ranks[nrank - 1] : NAN);
  double hn[64];
  int nh = 0;
  double sum_nm = 0;
  for (int i = 0; i < nq; i++)
    if (!isnan(hits_nm[i])) {
      hn[nh++] = hits_nm[i];
      sum_nm += hits_nm[i];
    }
  qsort(hn, nh, sizeof *hn, dcmp_asc);
  qsort(walls, nmeas, sizeof *walls, dcmp_asc);
  qsort(cpus, nmeas, sizeof *cpus, dcmp_asc);
  printf("registry: %zu synthetic + %d Fadul, %d queries answered; mates in top 10: %d/%d pairs, %d/%d "
         "queries with every mate; median mate rank %.0f (worst %.0f); non-mates at LR>=10 per query: "
         "mean %.2f, max %.0f; bfm match (%d timed) median %.2f s wall (max %.2f), median %.2f s CPU "
         "(max %.2f), max RSS %.0f MB\n",
         nregistry, nq, nrun, top10, mates, allq, nrun, nrank ? ranks[nrank / 2] : NAN,
         nrank ? ranks[nrank - 1] : NAN, nh ? sum_nm / nh : 0, nh ? hn[nh - 1] : 0, nmeas,
         nmeas ? walls[nmeas / 2] : NAN, nmeas ? walls[nmeas - 1] : NAN, nmeas ? cpus[nmeas / 2] : NAN,
         nmeas ? cpus[nmeas - 1] : NAN, rss_max / 1024.0);
  return 0;
fail:
  fprintf(stderr, "registry queries: %s\n", bf_error_last());
  bf_store_close(st);
  return 1;
}

/* ---- --scale-store N STORE: what only the store size changes ----
 * Appends distractor entries to STORE (a registry, or a new store) until it holds N cartridge
 * items, SCALE_BATCH per commit. Each entry is what a stored test-fired cartridge case adds to the
 * tables and indexes that `bfm match` reads: a firearm record with every text field filled to a
 * realistic length (serial, make, model, markings, lab, transfer history...), an item of calibre
 * REG_CALIBRE, a real-size prefilter descriptor (bf_prefilter_len floats, plain, version
 * BF_PREFILTER_VERSION) and one row each in the breech-face and screen-surface indexes (their
 * values a 4x4 stand-in). Not stored: the X3P original and the scan record (a match never reads
 * them) and full-size breech faces (120 GB at 100,000). The descriptors are noise of tiny
 * amplitude: a pair's score costs the same as a real one, but it stays near 0, below the real
 * cases' scores, so the prefilter's 200 are real cases and the later stages run on real features
 * (the cost of N is real; the recall at N is not measured this way). */
#define SCALE_BATCH 5000
static int scale_entry(bf_store *st, long i, bf_feature *d, bf_feature *tiny, bf_feature *scr)
{
  bf_firearm fa = {0};
  static const char *mk[] = {"Glock", "SIG Sauer", "Beretta", "Smith & Wesson", "CZ", "Walther"};
  snprintf(fa.serial, sizeof fa.serial, "BIG-%08ld", i);
  snprintf(fa.make, sizeof fa.make, "%s", mk[i % 6]);
  snprintf(fa.manufacturer, sizeof fa.manufacturer, "%s Manufacturing GmbH", mk[(i / 6) % 6]);
  snprintf(fa.model, sizeof fa.model, "Model %ld Gen %ld", 17 + i % 30, 1 + i % 5);
  snprintf(fa.calibre, sizeof fa.calibre, "%s", REG_CALIBRE);
  snprintf(fa.country, sizeof fa.country, "Austria");
  snprintf(fa.manufactured, sizeof fa.manufactured, "20%02ld-%02ld-%02ld", 10 + i % 15, 1 + i % 12, 1 + i % 28);
  snprintf(fa.markings, sizeof fa.markings, "slide: %s %ld; frame: %08lX; barrel: %06ld; proof marks N, eagle",
           mk[i % 6], 17 + i % 30, (unsigned long)(i * 2654435761u), i % 999983);
  snprintf(fa.testfire_date, sizeof fa.testfire_date, "20%02ld-%02ld-%02ld", 10 + i % 15, 1 + (i + 3) % 12, 1 + i % 28);
  snprintf(fa.test_lab, sizeof fa.test_lab, "National Test-Fire Laboratory %ld, Vienna", i % 7);
  snprintf(fa.export_date, sizeof fa.export_date, "20%02ld-%02ld-%02ld", 11 + i % 14, 1 + i % 12, 1 + (i + 5) % 28);
  snprintf(fa.export_country, sizeof fa.export_country, "Austria");
  snprintf(fa.import_country, sizeof fa.import_country, "%s", i % 2 ? "Germany" : "Netherlands");
  snprintf(fa.transit, sizeof fa.transit, "Czech Republic;Poland");
  snprintf(fa.consignee, sizeof fa.consignee, "Registered Dealer %ld GmbH, Industriestrasse %ld, Berlin",
           i % 4999, i % 200);
  for (int k = 0; k < d->nx; k++) { /* xorshift noise, tiny: scores near 0 (see above) */
    uint32_t x = (uint32_t)(i * 2654435761u + (uint32_t)k * 40503u + 1u);
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    d->z[k] = 1e-4f * ((float)(x & 0xffff) / 32768.0f - 1.0f);
  }
  int64_t fid, item;
  int rc;
  if ((rc = bf_store_add_firearm(st, &fid, &fa)) ||
      (rc = bf_store_add_item(st, &item, BF_KIND_CARTRIDGE, fa.calibre, BF_OWNER_FIREARM, fid)) ||
      (rc = bf_store_put_feature(st, "cartridge", item, 0, tiny)) ||
      (rc = bf_store_put_feature(st, BF_SEARCH_SCREEN_KIND, item, 0, scr)) ||
      (rc = bf_store_put_feature(st, bf_prefilter_kind_name(BF_KIND_CARTRIDGE), item, 0, d)))
    return rc;
  return 0;
}

static int scale_store(const char *path, long n)
{
  struct stat sb;
  bf_store *st = NULL;
  bf_feature *d = NULL, *tiny = NULL, *scr = NULL;
  int rc = 0;
  if (stat(path, &sb) && (rc = bf_store_create(path, "bench")))
    goto done;
  if ((rc = bf_feature_new(&d, BF_KIND_CARTRIDGE, (int)clen, 1, 1, 1)) ||
      (rc = bf_feature_new(&tiny, BF_KIND_CARTRIDGE, 4, 4, 3.125, 3.125)) ||
      (rc = bf_feature_new(&scr, BF_KIND_CARTRIDGE, 4, 4, 25, 25)))
    goto done;
  d->version = BF_PREFILTER_VERSION;
  d->params[0] = 1;
  d->params[1] = 12.5;
  if ((rc = bf_store_open(&st, path, BF_STORE_WRITE, "bench")))
    goto done;
  long have = 0;
  const bf_item *it = bf_store_items(st);
  for (size_t i = 0; i < bf_store_nitems(st); i++)
    have += it[i].kind == BF_KIND_CARTRIDGE;
  printf("scale store %s: %ld cartridge items, growing to %ld (%d per commit)\n", path, have, n, SCALE_BATCH);
  double t0 = now(), c0 = cpu_s();
  long added = 0;
  while (have < n && !rc) {
    long m = n - have < SCALE_BATCH ? n - have : SCALE_BATCH;
    if ((rc = bf_store_begin(st)))
      break;
    /* the hot kinds plain, the breech face deflated, as bf_search_store_index makes them */
    if ((rc = bf_store_add_kind(st, bf_prefilter_kind_name(BF_KIND_CARTRIDGE), 0)) ||
        (rc = bf_store_add_kind(st, BF_SEARCH_SCREEN_KIND, 0)) || (rc = bf_store_add_kind(st, "cartridge", 1)))
      break;
    for (long i = 0; i < m && !rc; i++)
      rc = scale_entry(st, have + i, d, tiny, scr);
    if (rc || (rc = bf_store_commit(st)))
      break;
    have += m;
    added += m;
    printf("  %ld items (%ld added) %.0f s wall %.0f s CPU, %ld MB\n", have, added, now() - t0, cpu_s() - c0,
           file_mb(path));
  }
done:
  if (rc)
    fprintf(stderr, "scale store: %s\n", bf_error_last());
  bf_store_close(st);
  bf_feature_free(d);
  bf_feature_free(tiny);
  bf_feature_free(scr);
  return rc ? 1 : 0;
}

/* --open-cost STORE: what a `bfm match` pays before and around its search, step by step, in
 * one process (wall and CPU of each): opening the store (manifest, segments, the items table),
 * loading the feature indexes a match reads (descriptors, breech faces for the unindexed count,
 * screen surfaces), streaming every descriptor as the search does (bf_store_read_values, blocks
 * of 1024), the firearm records of 10 items one by one (what a match prints) and, for
 * comparison, the whole firearms table (what the lookups loaded before). */
static int open_cost(const char *path)
{
  bf_store *st = NULL;
  double w = now(), c = cpu_s(), w0 = w, c0 = c;
#define STEP(what)                                                                                 \
  do {                                                                                             \
    double w1 = now(), c1 = cpu_s();                                                               \
    printf("  %-44s %7.3f s wall %7.3f s CPU\n", what, w1 - w, c1 - c);                           \
    w = w1, c = c1;                                                                                \
  } while (0)
  if (bf_store_open(&st, path, BF_STORE_READ, NULL)) {
    fprintf(stderr, "open-cost: %s\n", bf_error_last());
    return 1;
  }
  printf("open-cost %s: %zu items\n", path, bf_store_nitems(st));
  STEP("open (manifest, segments, items table)");
  const char *kinds[] = {bf_prefilter_kind_name(BF_KIND_CARTRIDGE), "cartridge", BF_SEARCH_SCREEN_KIND};
  size_t nrows[3] = {0, 0, 0};
  for (int k = 0; k < 3; k++) {
    const bf_feat_row *r;
    char what[96];
    bf_store_feature_index(st, kinds[k], &r, &nrows[k]);
    snprintf(what, sizeof what, "index of %s (%zu rows)", kinds[k], nrows[k]);
    STEP(what);
  }
  float *blk = malloc(1024 * clen * sizeof *blk);
  unsigned char ok[1024];
  for (size_t f = 0; blk && f < nrows[0]; f += 1024)
    if (bf_store_read_values(st, kinds[0], f, nrows[0] - f < 1024 ? nrows[0] - f : 1024, clen, blk, ok)) {
      fprintf(stderr, "open-cost: %s\n", bf_error_last());
      break;
    }
  free(blk);
  STEP("every descriptor read (one thread)");
  const bf_item *it = bf_store_items(st);
  size_t n = bf_store_nitems(st), got = 0;
  for (size_t i = 0; i < n && got < 10; i += n / 10 + 1)
    got += it[i].owner_type == BF_OWNER_FIREARM && bf_store_firearm(st, it[i].owner) != NULL;
  char what[96];
  snprintf(what, sizeof what, "%zu firearm records, one by one", got);
  STEP(what);
  size_t nf = bf_store_nfirearms(st);
  snprintf(what, sizeof what, "the whole firearms table (%zu rows)", nf);
  STEP(what);
  bf_store_close(st);
  STEP("close");
  printf("  %-44s %7.3f s wall %7.3f s CPU\n", "total", now() - w0, cpu_s() - c0);
#undef STEP
  return 0;
}

/* --screen-cost STORE: CPU of the screen stage (keep 200 -> screen) for a few stored queries,
 * in-process, reading candidates' stored screen surfaces vs reducing their full features
 * (load_screen NULL), in alternation; the full stage is a no-op so only loading + screening
 * remain above the prefilter (measured alone and subtracted). */
static int noop_cmp(void *ctx, void *qs, bf_feature *const *q, int nq, bf_feature *const *c, int nc,
                    double *score, double sub[4])
{
  (void)ctx, (void)qs, (void)q, (void)nq, (void)c, (void)nc, (void)sub;
  *score = 0;
  return 0;
}

static int screen_cost(const char *path)
{
  bf_store *st = NULL;
  bf_search_store_ctx *sc = NULL;
  bf_search_source src;
  if (bf_store_open(&st, path, BF_STORE_READ, NULL) ||
      bf_search_store_source(&src, &sc, st, BF_KIND_CARTRIDGE, NULL)) {
    fprintf(stderr, "screen-cost: %s\n", bf_error_last());
    bf_store_close(st);
    return 1;
  }
  bf_search_cmp cmp;
  bf_search_default_cmp(&cmp, BF_KIND_CARTRIDGE);
  cmp.compare = noop_cmp;
  cmp.prepare = NULL;
  cmp.release = NULL;
  printf("screen cost: %s, %zu descriptor rows; keep 200, screen 20, full comparison a no-op\n", path,
         src.nrows);
  double sum[3] = {0, 0, 0}, wsum[3] = {0, 0, 0};
  int runs = 0;
  for (int64_t qi = 1; qi <= 5; qi++) {
    bf_feature **qf = NULL, *qd = NULL;
    int nq = 0;
    if (bf_search_store_item(st, pf, qi, &qf, &nq, &qd))
      continue;
    bf_search_query q = {qi, BF_KIND_CARTRIDGE, qd->z, qf, nq};
    double c[3], w[3];
    size_t stored = 0, pairs = 0;
    for (int mode = 0; mode < 3; mode++) { /* 0 prefilter only, 1 stored screens, 2 reduced */
      bf_search_source s2 = src;
      bf_search_opts o = BF_SEARCH_OPTS_INIT;
      bf_search_stats ss;
      o.prefilter_only = mode == 0;
      if (mode == 2)
        s2.load_screen = NULL;
      bf_cand *r = NULL;
      size_t n = 0;
      double c0 = cpu_s(), t0 = now();
      int e = bf_search_run(&r, &n, &q, 1, &s2, &cmp, pf, &o, &ss);
      c[mode] = cpu_s() - c0;
      w[mode] = now() - t0;
      if (e)
        fprintf(stderr, "screen-cost: %s\n", bf_error_last());
      if (mode == 1) {
        stored = ss.screen_stored;
        pairs = ss.screen_pairs;
      }
      free(r);
    }
    printf("  query item %lld: prefilter %.3f s CPU; + screen of %zu (%zu stored): %.3f s CPU (%.3f s wall) "
           "with stored screens, %.3f s CPU (%.3f s wall) reducing full features\n",
           (long long)qi, c[0], pairs, stored, c[1] - c[0], w[1] - w[0], c[2] - c[0], w[2] - w[0]);
    for (int m = 0; m < 3; m++) {
      sum[m] += c[m];
      wsum[m] += w[m];
    }
    runs++;
    bf_search_free_features(qf, nq);
    bf_feature_free(qd);
  }
  if (runs)
    printf("screen stage (200 candidates), mean of %d queries: %.3f s CPU with stored screens, %.3f s CPU "
           "reducing full features (%.1fx)\n", runs, (sum[1] - sum[0]) / runs, (sum[2] - sum[0]) / runs,
           (sum[2] - sum[0]) / (sum[1] - sum[0]));
  bf_search_store_source_free(sc);
  bf_store_close(st);
  return 0;
}

int main(int argc, char **argv)
{
  int D = 10000, B = 2000, full = 0, screen = 0, skip_recall = 0, skip_bullet = 0, skip_scale = 0;
  size_t sizes[8] = {1000, 10000, 100000}, store_max = 10000;
  int nsizes = 3;
  const char *qstore = NULL, *registry = NULL, *rq = NULL, *rq_extra = NULL, *scost = NULL;
  const char *sstore = NULL, *ocost = NULL;
  long scale_n = 0;
  int reg_n = 0, rq_jobs = 1; /* --jobs 0: report the answers a stopped run left, run none */
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--distractors") && i + 1 < argc)
      D = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--bullets") && i + 1 < argc)
      B = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--full") && i + 1 < argc)
      full = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--screen") && i + 1 < argc)
      screen = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--store-max") && i + 1 < argc)
      store_max = (size_t)atol(argv[++i]);
    else if (!strcmp(argv[i], "--registry") && i + 2 < argc) {
      reg_n = atoi(argv[++i]);
      registry = argv[++i];
    } else if (!strcmp(argv[i], "--scale-store") && i + 2 < argc) {
      scale_n = atol(argv[++i]);
      sstore = argv[++i];
    } else if (!strcmp(argv[i], "--open-cost") && i + 1 < argc)
      ocost = argv[++i];
    else if (!strcmp(argv[i], "--registry-queries") && i + 1 < argc)
      rq = argv[++i];
    else if (!strcmp(argv[i], "--screen-cost") && i + 1 < argc)
      scost = argv[++i];
    else if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
      rq_jobs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--match-args") && i + 1 < argc)
      rq_extra = argv[++i];
    else if (!strcmp(argv[i], "--query-store") && i + 1 < argc)
      qstore = argv[++i];
    else if (!strcmp(argv[i], "--cache") && i + 1 < argc)
      cache_dir = argv[++i];
    else if (!strcmp(argv[i], "--scale") && i + 1 < argc) {
      nsizes = 0;
      for (char *s = strtok(argv[++i], ","); s && nsizes < 8; s = strtok(NULL, ","))
        sizes[nsizes++] = (size_t)atol(s);
    } else if (!strcmp(argv[i], "--skip") && i + 1 < argc) {
      const char *w = argv[++i];
      skip_recall |= !strcmp(w, "recall");
      skip_bullet |= !strcmp(w, "bullet");
      skip_scale |= !strcmp(w, "scale");
    } else {
      fprintf(stderr, "usage: bench_search [--distractors D] [--bullets B] [--scale N1,N2] [--full K]\n"
                      "  [--screen K1]\n"
                      "  [--store-max N] [--cache DIR] [--skip recall|bullet|scale]\n"
                      "  | --registry N STORE | --registry-queries STORE [--match-args 'ARGS'] [--jobs J]\n"
                      "  | --screen-cost STORE | --scale-store N STORE | --open-cost STORE\n");
      return 2;
    }
  }
  const char *root = getenv("BF_SHARED");
  char data[4096];
  snprintf(data, sizeof data, "%s/data", root ? root : BF_SHARED_DIR);
  bf_synth_opts so = BF_SYNTH_OPTS_INIT;
  if (bf_prefilter_new(&pf, NULL) || bf_synth_new(&synth, &so)) {
    fprintf(stderr, "%s\n", bf_error_last());
    return 1;
  }
  clen = bf_prefilter_len(pf, BF_KIND_CARTRIDGE);
  blen = bf_prefilter_len(pf, BF_KIND_BULLET);
  if (!qstore)
    printf("bench_search: %d threads; cartridge descriptor %zu floats (%zu bytes), bullet %zu floats\n",
         omp_get_max_threads(), clen, clen * 4, blen);
  if (qstore)
    return query_store(qstore);
  if (registry)
    return registry_build(registry, reg_n);
  if (scost)
    return screen_cost(scost);
  if (sstore)
    return scale_store(sstore, scale_n);
  if (ocost)
    return open_cost(ocost);
  keyrow *key = NULL;
  int nkey = read_key(data, &key);
  if (rq)
    return nkey ? registry_queries(rq, data, key, nkey, rq_extra, rq_jobs) : 1;
  if (!nkey)
    printf("no %s/KEY.csv: recall sections skipped\n", data);
  if (nkey && !skip_recall)
    cart_recall(data, key, nkey, D, full, screen);
  if (nkey && !skip_bullet)
    bullet_recall(data, key, nkey, B);
  if (!skip_scale)
    scale(sizes, nsizes, store_max);
  free(key);
  bf_synth_free(synth);
  bf_prefilter_free(pf);
  return 0;
}
