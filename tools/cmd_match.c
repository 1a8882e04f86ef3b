/* bfm match: one evidence item (stored, or scans given on the spot) against every stored item
 * of its kind and calibre, ranked. Flags -> bf_query_opts -> bf_query_item / bf_query_scans
 * (engine/bf_query.h) -> print. */
#include "bf_error.h"
#include "bf_query.h"
#include "bf_store.h"
#include "bfm_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct match_args {
  const char *store;
  char **ops;
  int nops, json;
  bf_query_opts q;
} match_args;

/* Flags -> options; returns 0 or an exit code. */
static int parse(match_args *a, int argc, char **argv)
{
  int rc = 0;
  for (int i = 1; i < argc && !rc; i++) {
    const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(f, "--top") && v)
      rc = bfm_parse_int("match", f, argv[++i], 1, 1000000, &a->q.top);
    else if (!strcmp(f, "--keep") && v)
      rc = bfm_parse_int("match", f, argv[++i], 1, 10000000, &a->q.keep);
    else if (!strcmp(f, "--screen") && v)
      rc = bfm_parse_int("match", f, argv[++i], 0, 10000000, &a->q.screen);
    else if (!strcmp(f, "--threads") && v)
      rc = bfm_parse_int("match", f, argv[++i], 0, 4096, &a->q.threads);
    else if ((!strcmp(f, "--calibre") || !strcmp(f, "--caliber")) && v)
      a->q.calibre = argv[++i];
    else if (!strcmp(f, "--kind") && v) {
      if (!(a->q.kind = bfm_parse_kind(argv[++i])))
        rc = bfm_usage_error("match", "--kind must be cartridge or bullet, not '%s'", argv[i]);
    } else if (!strcmp(f, "--json"))
      a->json = 1;
    else if (!strcmp(f, "--prefilter-only"))
      a->q.prefilter_only = 1;
    else if (f[0] == '-' && f[1])
      rc = bfm_usage_error("match", "unknown option %s", f);
    else if (!a->store)
      a->store = f;
    else
      a->ops[a->nops++] = argv[i];
  }
  if (!rc && (!a->store || !a->nops))
    rc = bfm_usage_error("match", "usage: bfm match STORE ITEM|SCAN... [--top K] [--json]");
  return rc;
}

static void print_json(bf_store *st, const bf_query_result *r, const char *what, size_t shown)
{
  printf("{\"query\": ");
  bfm_json_str(stdout, what);
  printf(", \"query_item\": %lld, \"kind\": \"%s\", \"calibre\": ", (long long)r->item, bf_kind_name(r->kind));
  bfm_json_str(stdout, r->calibre);
  printf(", \"searched\": %zu, \"kept\": %zu, \"screened\": %zu, \"compared\": %zu, \"failed\": "
         "%zu, \"seconds\": %.3f, \"candidates\": [", r->stats.pre_pairs, r->n, r->stats.screen_pairs,
         r->stats.full_pairs, r->stats.full_failed, r->seconds);
  for (size_t i = 0; i < shown; i++) {
    const bf_cand *c = &r->cand[i];
    char w[256];
    bfm_item_what(st, c->item, w, sizeof w);
    printf("%s\n {\"rank\": %d, \"item\": %lld, \"score\": ", i ? "," : "", c->rank, (long long)c->item);
    if (isnan(c->score))
      printf("null");
    else
      printf("%.6g", c->score);
    if (r->kind == BF_KIND_CARTRIDGE) /* the firing pin's ACCF (sub[3]): null when not compared */
      printf(isnan(c->score) || isnan(c->sub[3]) ? ", \"firing_pin_accf\": null" : ", \"firing_pin_accf\": %.4f",
             c->sub[3]);
    printf(", \"prefilter\": %.4f, \"prefilter_rank\": %d", c->pre, c->pre_rank);
    if (c->screen_rank && !isnan(c->screen)) /* the screen's CCF and rank, when screened */
      printf(", \"screen\": %.4f, \"screen_rank\": %d", c->screen, c->screen_rank);
    printf(", \"what\": ");
    bfm_json_str(stdout, w);
    const bf_firearm *f = bfm_item_firearm(st, c->item);
    if (f) {
      printf(", \"firearm\": ");
      bfm_json_trace(stdout, f);
    }
    printf("}");
  }
  printf("%s]}\n", shown ? "\n" : "");
}

static void print_text(bf_store *st, const bf_query_result *r, const char *what, size_t shown, int prefonly)
{
  printf("query: %s (%s%s%s)\n", what, bf_kind_name(r->kind), r->calibre[0] ? ", calibre " : "", r->calibre);
  printf("searched %zu stored %s items; prefilter kept %zu, screened %zu, fully compared %zu%s "
         "in %.2f s\n", r->stats.pre_pairs, bf_kind_name(r->kind), r->n, r->stats.screen_pairs,
         prefonly ? (size_t)0 : r->stats.full_pairs, r->stats.full_failed ? " (some failed)" : "", r->seconds);
  int cart = r->kind == BF_KIND_CARTRIDGE; /* a column for the firing pin's ACCF (sub[3]) */
  printf("%4s %8s%s %10s %7s  %s\n", "rank", "score", cart ? "    pin" : "", "prefilter", "item", "what");
  for (size_t i = 0; i < shown; i++) {
    const bf_cand *c = &r->cand[i];
    char w[256], sc[32], pin[16] = "";
    bfm_item_what(st, c->item, w, sizeof w);
    if (isnan(c->score))
      snprintf(sc, sizeof sc, "-");
    else
      snprintf(sc, sizeof sc, "%.3g", c->score);
    if (cart && (isnan(c->score) || isnan(c->sub[3])))
      snprintf(pin, sizeof pin, " %6s", "-");
    else if (cart)
      snprintf(pin, sizeof pin, " %6.3f", c->sub[3]);
    printf("%4d %8s%s %6.3f(%d) %7lld  %s\n", c->rank, sc, pin, c->pre, c->pre_rank, (long long)c->item, w);
    const bf_firearm *f = bfm_item_firearm(st, c->item);
    if (f)
      bfm_print_trace(stdout, f, "                                  trace: ");
  }
}

int bfm_cmd_match(int argc, char **argv)
{
  match_args a = {.q = BF_QUERY_OPTS_INIT};
  bf_store *st = NULL;
  bf_scanset scans = {0};
  bf_query_result r = {0};
  struct stat sb;
  int rc = BFM_EXIT_OK;
  if (!(a.ops = calloc((size_t)argc, sizeof *a.ops)))
    return bfm_usage_error("match", "out of memory");
  if ((rc = parse(&a, argc, argv)))
    goto done;
  long long id = a.nops == 1 && stat(a.ops[0], &sb) ? bfm_parse_id(a.ops[0]) : 0;
  int e = bf_store_open(&st, a.store, BF_STORE_READ, NULL);
  if (!e && id)
    e = bf_query_item(&r, st, id, &a.q);
  else if (!e && !(e = bf_scanset_build(&scans, a.ops, a.nops, ',', NULL)))
    e = bf_query_scans(&r, st, &scans, &a.q);
  if (r.unindexed)
    fprintf(stderr, "bfm match: note: %zu stored %s items have no search descriptor and are not searched "
            "(their scans are too poor to describe)\n", r.unindexed, bf_kind_name(r.kind));
  if (e) {
    rc = bfm_fail("match");
    goto done;
  }
  char what[256];
  if (id)
    bfm_item_what(st, id, what, sizeof what);
  else
    snprintf(what, sizeof what, "%s%s", scans.v[0].path, scans.n > 1 ? " ..." : "");
  size_t shown = r.n < (size_t)a.q.top ? r.n : (size_t)a.q.top;
  if (a.json)
    print_json(st, &r, what, shown);
  else
    print_text(st, &r, what, shown, a.q.prefilter_only);
  size_t nfail = r.stats.full_failed + r.stats.screen_failed;
  if (nfail) { /* the ranking stands, but a candidate was not compared: say so */
    fprintf(stderr, "bfm match: %zu candidate comparison(s) failed (left unscored); first: %s\n",
            nfail, r.stats.failure[0] ? r.stats.failure : "no message");
    rc = BFM_EXIT_FAIL;
  }
done:
  bf_query_result_clear(&r);
  bf_scanset_clear(&scans);
  bf_store_close(st);
  free(a.ops);
  return rc;
}
