/* bfm match: one evidence item (stored, or scans given on the spot) against every stored item
 * of its kind and calibre, ranked (prefilter, then the full comparison of the best K). */
#include "bf_error.h"
#include "bf_search.h"
#include "bf_store.h"
#include "bf_x3p.h"
#include "bfm_cli.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int bfm_extract_scan(bf_feature **out, const char *path, int kind, int land)
{
  bf_surface *s = NULL;
  int rc = bf_x3p_read(&s, path, NULL);
  if (rc)
    return rc;
  rc = bf_feature_extract(out, s, kind, land);
  if (rc)
    bf_error_prefix(rc, "%s: feature extraction failed: ", path);
  bf_surface_free(s);
  return rc;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The scan paths of a query: a folder's *.x3p sorted by name, comma lists split, files as they are. */
static int collect_scans(char ***out, int *n, char **ops, int nops)
{
  char **v = NULL;
  int k = 0, cap = 0, rc = 0;
  for (int i = 0; i < nops && !rc; i++) {
    struct stat sb;
    if (!stat(ops[i], &sb) && S_ISDIR(sb.st_mode)) {
      DIR *d = opendir(ops[i]);
      if (!d) {
        rc = bf_error_set(BF_EIO, "%s: cannot read the folder", ops[i]);
        break;
      }
      struct dirent *e;
      int first = k;
      while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcasecmp(e->d_name + l - 4, ".x3p"))
          continue;
        if (k == cap) {
          cap = cap ? 2 * cap : 16;
          v = realloc(v, cap * sizeof *v);
        }
        size_t need = strlen(ops[i]) + l + 2;
        v[k] = malloc(need);
        snprintf(v[k++], need, "%s/%s", ops[i], e->d_name);
      }
      closedir(d);
      qsort(v + first, k - first, sizeof *v, cmp_str);
      if (k == first)
        rc = bf_error_set(BF_ENOTFOUND, "%s: no .x3p scans in the folder", ops[i]);
    } else {
      char *dup = strdup(ops[i]), *save = NULL;
      for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (k == cap) {
          cap = cap ? 2 * cap : 16;
          v = realloc(v, cap * sizeof *v);
        }
        v[k++] = strdup(t);
      }
      free(dup);
    }
  }
  *out = v;
  *n = k;
  return rc;
}

static int is_id(const char *s)
{
  if (!*s)
    return 0;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s))
      return 0;
  return 1;
}

int bfm_cmd_match(int argc, char **argv)
{
  const char *store = NULL, *calibre = NULL;
  char **ops = calloc(argc, sizeof *ops), **paths = NULL;
  int nops = 0, top = 10, keep = 0, json = 0, threads = 0, kind = 0, npaths = 0, prefonly = 0;
  int screen = -1;
  int rc = BFM_EXIT_OK;
  bf_store *st = NULL;
  bf_prefilter *pf = NULL;
  bf_feature **feat = NULL, *desc = NULL;
  int nfeat = 0;
  int64_t qitem = 0;
  bf_search_store_ctx *sctx = NULL;
  bf_cand *res = NULL;
  size_t nres = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int hasv = i + 1 < argc;
    if (!strcmp(a, "--top") && hasv) {
      top = atoi(argv[++i]);
      if (top < 1) {
        rc = bfm_usage_error("match", "--top needs a count >= 1");
        goto done;
      }
    } else if (!strcmp(a, "--keep") && hasv) {
      keep = atoi(argv[++i]);
      if (keep < 1) {
        rc = bfm_usage_error("match", "--keep needs a count >= 1");
        goto done;
      }
    } else if (!strcmp(a, "--screen") && hasv) {
      screen = atoi(argv[++i]);
      if (screen < 0) {
        rc = bfm_usage_error("match", "--screen needs a count >= 0 (0: no screen)");
        goto done;
      }
    } else if (!strcmp(a, "--threads") && hasv)
      threads = atoi(argv[++i]);
    else if ((!strcmp(a, "--calibre") || !strcmp(a, "--caliber")) && hasv)
      calibre = argv[++i];
    else if (!strcmp(a, "--kind") && hasv) {
      kind = bfm_parse_kind(argv[++i]);
      if (!kind) {
        rc = bfm_usage_error("match", "--kind must be cartridge or bullet, not '%s'", argv[i]);
        goto done;
      }
    } else if (!strcmp(a, "--json"))
      json = 1;
    else if (!strcmp(a, "--prefilter-only"))
      prefonly = 1;
    else if (a[0] == '-' && a[1]) {
      rc = bfm_usage_error("match", "unknown option %s", a);
      goto done;
    } else if (!store)
      store = a;
    else
      ops[nops++] = argv[i];
  }
  if (!store || !nops) {
    rc = bfm_usage_error("match", "usage: bfm match STORE ITEM|SCAN... [--top K] [--json]");
    goto done;
  }
  if (bf_store_open(&st, store, BF_STORE_READ, NULL) || bf_prefilter_new(&pf, NULL)) {
    rc = bfm_fail("match");
    goto done;
  }
  struct stat sb;
  if (nops == 1 && is_id(ops[0]) && stat(ops[0], &sb)) {
    qitem = atoll(ops[0]);
    const bf_item *it = bf_store_item(st, qitem);
    if (!it) {
      bf_error_set(BF_ENOTFOUND, "%s: no item %lld (see `bfm export %s --what items`)", store,
                   (long long)qitem, store);
      rc = bfm_fail("match");
      goto done;
    }
    kind = it->kind;
    if (!calibre)
      calibre = it->calibre;
    if (bf_search_store_item(st, pf, qitem, &feat, &nfeat, &desc)) {
      rc = bfm_fail("match");
      goto done;
    }
  } else {
    if (collect_scans(&paths, &npaths, ops, nops)) {
      rc = bfm_fail("match");
      goto done;
    }
    if (!kind)
      kind = npaths > 1 ? BF_KIND_BULLET : bfm_guess_kind(paths[0]);
    if (!kind) {
      bf_error_set(BF_EFORMAT, "%s: cannot read it as a scan (nor is it a stored item id)", paths[0]);
      rc = bfm_fail("match");
      goto done;
    }
    if (kind == BF_KIND_CARTRIDGE && npaths != 1) {
      rc = bfm_usage_error("match", "a cartridge case is one scan, %d given", npaths);
      goto done;
    }
    feat = calloc(npaths, sizeof *feat);
    nfeat = npaths;
    for (int i = 0; i < npaths; i++)
      if (bfm_extract_scan(&feat[i], paths[i], kind, kind == BF_KIND_BULLET ? i + 1 : 0)) {
        rc = bfm_fail("match");
        goto done;
      }
    if (bf_prefilter_describe(pf, &desc, feat, nfeat)) {
      bf_error_prefix(BF_EQUALITY, "%s: ", paths[0]);
      rc = bfm_fail("match");
      goto done;
    }
  }
  bf_search_source src;
  if (bf_search_store_source(&src, &sctx, st, kind, calibre)) {
    rc = bfm_fail("match");
    goto done;
  }
  /* items of the kind that have features but no descriptor yet (batch indexes them) */
  const bf_feat_row *rows;
  size_t nfr = 0, nitems = 0;
  if (!bf_store_feature_index(st, bf_kind_name(kind), &rows, &nfr))
    for (size_t i = 0; i < nfr; i++)
      nitems += (i == 0 || rows[i].item != rows[i - 1].item) && rows[i].item != qitem;
  size_t nindexed = 0;
  if (!bf_store_feature_index(st, bf_prefilter_kind_name(kind), &rows, &nfr))
    for (size_t i = 0; i < nfr; i++)
      nindexed += (i == 0 || rows[i].item != rows[i - 1].item) && rows[i].item != qitem;
  if (nitems > nindexed)
    fprintf(stderr, "bfm match: note: %zu stored %s items have no search descriptor yet and are "
            "not searched (`bfm batch %s` indexes them)\n", nitems - nindexed, bf_kind_name(kind), store);
  bf_search_opts so = BF_SEARCH_OPTS_INIT;
  if (!keep)
    keep = kind == BF_KIND_BULLET ? BF_SEARCH_KEEP_BULLET : so.keep;
  so.keep = keep > top ? keep : top;
  if (screen >= 0)
    so.screen = screen;
  if (so.screen && so.screen < top)
    so.screen = top; /* every candidate shown is fully compared */
  so.threads = threads;
  so.prefilter_only = prefonly;
  bf_search_cmp cmp;
  bf_search_default_cmp(&cmp, kind);
  bf_search_query q = {qitem, kind, desc->z, feat, nfeat};
  bf_search_stats stats;
  double t0 = bfm_now();
  if (bf_search_run(&res, &nres, &q, 1, &src, &cmp, pf, &so, &stats)) {
    rc = bfm_fail("match");
    goto done;
  }
  double el = bfm_now() - t0;
  if (stats.pre_pairs == 0) {
    bf_error_set(BF_ENOTFOUND, "%s: no stored %s items%s%s to search against%s", store,
                 bf_kind_name(kind), calibre && calibre[0] ? " of calibre " : "", calibre ? calibre : "",
                 nitems ? " (none indexed yet: run `bfm batch` first)" : "");
    rc = bfm_fail("match");
    goto done;
  }
  char what[256];
  if (qitem)
    bfm_item_what(st, qitem, what, sizeof what);
  else
    snprintf(what, sizeof what, "%s%s", paths[0], npaths > 1 ? " ..." : "");
  size_t shown = nres < (size_t)top ? nres : (size_t)top;
  if (json) {
    printf("{\"query\": ");
    bfm_json_str(stdout, what);
    printf(", \"query_item\": %lld, \"kind\": \"%s\", \"calibre\": ", (long long)qitem, bf_kind_name(kind));
    bfm_json_str(stdout, calibre ? calibre : "");
    printf(", \"searched\": %zu, \"kept\": %zu, \"screened\": %zu, \"compared\": %zu, \"failed\": "
           "%zu, \"seconds\": %.3f, \"candidates\": [", stats.pre_pairs, nres, stats.screen_pairs,
           stats.full_pairs, stats.full_failed, el);
    for (size_t i = 0; i < shown; i++) {
      char w[256];
      bfm_item_what(st, res[i].item, w, sizeof w);
      printf("%s\n {\"rank\": %d, \"item\": %lld, \"score\": ", i ? "," : "", res[i].rank,
             (long long)res[i].item);
      if (isnan(res[i].score))
        printf("null");
      else
        printf("%.6g", res[i].score);
      printf(", \"prefilter\": %.4f, \"prefilter_rank\": %d, \"what\": ", res[i].pre, res[i].pre_rank);
      bfm_json_str(stdout, w);
      const bf_firearm *f = bfm_item_firearm(st, res[i].item);
      if (f) {
        printf(", \"firearm\": ");
        bfm_json_trace(stdout, f);
      }
      printf("}");
    }
    printf("%s]}\n", shown ? "\n" : "");
  } else {
    printf("query: %s (%s%s%s)\n", what, bf_kind_name(kind), calibre && calibre[0] ? ", calibre " : "",
           calibre ? calibre : "");
    printf("searched %zu stored %s items; prefilter kept %zu, screened %zu, fully compared %zu%s "
           "in %.2f s\n", stats.pre_pairs, bf_kind_name(kind), nres, stats.screen_pairs,
           prefonly ? (size_t)0 : stats.full_pairs,
           stats.full_failed ? " (some failed)" : "", el);
    printf("%4s %8s %10s %7s  %s\n", "rank", "score", "prefilter", "item", "what");
    for (size_t i = 0; i < shown; i++) {
      char w[256], sc[32];
      bfm_item_what(st, res[i].item, w, sizeof w);
      if (isnan(res[i].score))
        snprintf(sc, sizeof sc, "-");
      else
        snprintf(sc, sizeof sc, "%.3g", res[i].score);
      printf("%4d %8s %6.3f(%d) %7lld  %s\n", res[i].rank, sc, res[i].pre, res[i].pre_rank,
             (long long)res[i].item, w);
      const bf_firearm *f = bfm_item_firearm(st, res[i].item);
      if (f)
        bfm_print_trace(stdout, f, "                                  trace: ");
    }
  }
done:
  free(res);
  bf_search_store_source_free(sctx);
  bf_search_free_features(feat, nfeat);
  bf_feature_free(desc);
  for (int i = 0; i < npaths; i++)
    free(paths[i]);
  free(paths);
  free(ops);
  bf_prefilter_free(pf);
  bf_store_close(st);
  return rc;
}
