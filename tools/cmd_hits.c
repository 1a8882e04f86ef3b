/* bfm hits: what investigators ask of the store (candidate hits for a case, crimes linked to a
 * gun), plus the item/firearm description helpers the search commands share. */
#include "bf_error.h"
#include "bf_review.h"
#include "bf_store.h"
#include "bf_text.h"
#include "bfm_cli.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void bfm_item_what(const bf_store *st, int64_t item, char *buf, size_t n)
{
  const bf_item *it = bf_store_item(st, item);
  if (!it) {
    snprintf(buf, n, "item %lld (not stored)", (long long)item);
    return;
  }
  /* Stored text is escaped (bf_text_esc): a newline in a serial cannot fake a line. */
  char a[520], b[520], c[520], d[520];
  if (it->owner_type == BF_OWNER_FIREARM) {
    const bf_firearm *f = bf_store_firearm(st, it->owner);
    snprintf(buf, n, "test-fire of firearm %s (%s %s%s%s)", bf_text_esc(a, sizeof a, f ? f->serial : "?"),
             bf_text_esc(b, sizeof b, f ? (f->make[0] ? f->make : f->manufacturer) : ""),
             bf_text_esc(c, sizeof c, f ? f->model : ""), it->calibre[0] ? ", " : "",
             bf_text_esc(d, sizeof d, it->calibre));
  } else {
    const bf_evidence *e = bf_store_evidence(st, it->owner);
    snprintf(buf, n, "evidence case %s item %s%s%s", bf_text_esc(a, sizeof a, e ? e->case_no : "?"),
             bf_text_esc(b, sizeof b, e ? e->item : "?"), e && e->agency[0] ? ", " : "",
             bf_text_esc(c, sizeof c, e ? e->agency : ""));
  }
}

const bf_firearm *bfm_item_firearm(const bf_store *st, int64_t item)
{
  const bf_item *it = bf_store_item(st, item);
  return it && it->owner_type == BF_OWNER_FIREARM ? bf_store_firearm(st, it->owner) : NULL;
}

const bf_evidence *bfm_item_evidence(const bf_store *st, int64_t item)
{
  const bf_item *it = bf_store_item(st, item);
  return it && it->owner_type == BF_OWNER_EVIDENCE ? bf_store_evidence(st, it->owner) : NULL;
}

/* The trace fields of a firearm, as table (indented lines) or as JSON members. */
#define TRACE_FIELDS(X)                                                                       \
  X(serial) X(make) X(manufacturer) X(model) X(calibre) X(country) X(manufactured)           \
  X(markings) X(testfire_date) X(test_lab) X(export_date) X(export_country)                  \
  X(import_country) X(transit) X(consignee)

void bfm_print_trace(FILE *out, const bf_firearm *f, const char *indent)
{
  int col = 0;
#define X(nm)                                                                                 \
  if (f->nm[0]) {                                                                             \
    char e_[1100];                                                                             \
    col += fprintf(out, "%s%s=%s", col ? "  " : indent, #nm, bf_text_esc(e_, sizeof e_, f->nm)); \
    if (col > 90) {                                                                           \
      fputc('\n', out);                                                                       \
      col = 0;                                                                                \
    }                                                                                         \
  }
  TRACE_FIELDS(X)
#undef X
  if (col)
    fputc('\n', out);
}

void bfm_json_trace(FILE *out, const bf_firearm *f)
{
  int first = 1;
  fputc('{', out);
#define X(nm)                                                                                 \
  fprintf(out, "%s\"%s\": ", first ? "" : ", ", #nm);                                         \
  bfm_json_str(out, f->nm);                                                                   \
  first = 0;
  TRACE_FIELDS(X)
#undef X
  fputc('}', out);
}

static int parse_status(const char *s)
{
  if (!strcmp(s, "candidate"))
    return BF_HIT_CANDIDATE;
  if (!strcmp(s, "confirmed"))
    return BF_HIT_CONFIRMED;
  if (!strcmp(s, "rejected"))
    return BF_HIT_REJECTED;
  return -2;
}

static void csv_field(FILE *f, const char *s) { bf_text_csv(f, s); }

/* The owner fields of one side of a hit for csv/json. */
static void side_fields(const bf_store *st, int64_t item, const char **type, const char **a,
                        const char **b, const char **c)
{
  const bf_firearm *f = bfm_item_firearm(st, item);
  const bf_evidence *e = bfm_item_evidence(st, item);
  *type = f ? "firearm" : e ? "evidence" : "unknown";
  *a = f ? f->serial : e ? e->case_no : "";
  *b = f ? f->make : e ? e->item : "";
  *c = f ? f->model : e ? e->agency : "";
}

/* The three formats of `bfm hits`: CSV rows, a JSON array, and the table. Stored text goes
 * through bf_text (escaped, one line per row). */
static void print_csv(const bf_store *st, const bf_hit *h, size_t n)
{
  printf("hit,score,status,rank,run,query_item,query_type,query_id,query_b,query_c,"
         "candidate_item,candidate_type,candidate_id,candidate_b,candidate_c,examiner,when,note\n");
  for (size_t i = 0; i < n; i++) {
    const char *t, *a, *b, *c;
    printf("%lld,%.4g,%s,%d,%lld,%lld,", (long long)h[i].id, h[i].score,
           bf_hit_status_name(h[i].status), h[i].rank, (long long)h[i].run, (long long)h[i].query);
    side_fields(st, h[i].query, &t, &a, &b, &c);
    printf("%s,", t);
    csv_field(stdout, a), putchar(','), csv_field(stdout, b), putchar(','), csv_field(stdout, c);
    printf(",%lld,", (long long)h[i].candidate);
    side_fields(st, h[i].candidate, &t, &a, &b, &c);
    printf("%s,", t);
    csv_field(stdout, a), putchar(','), csv_field(stdout, b), putchar(','), csv_field(stdout, c);
    putchar(',');
    csv_field(stdout, h[i].examiner), putchar(','), csv_field(stdout, h[i].when), putchar(',');
    csv_field(stdout, h[i].note);
    putchar('\n');
  }
}

static void print_json(const bf_store *st, const bf_hit *h, size_t n)
{
  printf("[");
  for (size_t i = 0; i < n; i++) {
    char wq[1024], wc[1024];
    bfm_item_what(st, h[i].query, wq, sizeof wq);
    bfm_item_what(st, h[i].candidate, wc, sizeof wc);
    printf("%s\n {\"hit\": %lld, \"score\": %.6g, \"status\": \"%s\", \"rank\": %d, \"run\": %lld, "
           "\"query\": %lld, \"query_what\": ", i ? "," : "", (long long)h[i].id, h[i].score,
           bf_hit_status_name(h[i].status), h[i].rank, (long long)h[i].run, (long long)h[i].query);
    bfm_json_str(stdout, wq);
    printf(", \"candidate\": %lld, \"candidate_what\": ", (long long)h[i].candidate);
    bfm_json_str(stdout, wc);
    const bf_item *it = bf_store_item(st, h[i].query);
    if (it && it->kind == BF_KIND_CARTRIDGE) /* the firing pin's ACCF: null when not compared */
      printf(isnan(h[i].scores[3]) ? ", \"firing_pin_accf\": null" : ", \"firing_pin_accf\": %.4f",
             h[i].scores[3]);
    const bf_firearm *f = bfm_item_firearm(st, h[i].candidate);
    if (!f)
      f = bfm_item_firearm(st, h[i].query);
    if (f) {
      printf(", \"firearm\": ");
      bfm_json_trace(stdout, f);
    }
    printf(", \"examiner\": ");
    bfm_json_str(stdout, h[i].examiner);
    printf(", \"when\": ");
    bfm_json_str(stdout, h[i].when);
    printf(", \"note\": ");
    bfm_json_str(stdout, h[i].note);
    printf("}");
  }
  printf("%s]\n", n ? "\n" : "");
}

static void print_table(const bf_store *st, const bf_hit *h, size_t n)
{
  printf("%zu hit%s\n", n, n == 1 ? "" : "s");
  if (n)
    printf("%6s %8s %-9s  %s\n", "hit", "score", "status", "query -> candidate");
  for (size_t i = 0; i < n; i++) {
    char wq[1024], wc[1024];
    bfm_item_what(st, h[i].query, wq, sizeof wq);
    bfm_item_what(st, h[i].candidate, wc, sizeof wc);
    const bf_item *it = bf_store_item(st, h[i].query);
    char pin[48] = "";
    if (it && it->kind == BF_KIND_CARTRIDGE && !isnan(h[i].scores[3]))
      snprintf(pin, sizeof pin, ", firing pin ACCF %.3f", h[i].scores[3]);
    printf("%6lld %8.3g %-9s  [%lld] %s\n %25s -> [%lld] %s (rank %d%s)\n", (long long)h[i].id,
           h[i].score, bf_hit_status_name(h[i].status), (long long)h[i].query, wq, "",
           (long long)h[i].candidate, wc, h[i].rank, pin);
    if (h[i].status != BF_HIT_CANDIDATE) {
      char ex[300], wh[140], no[1100];
      printf(" %25s    %s by %s %s%s%s\n", "", bf_hit_status_name(h[i].status),
             bf_text_esc(ex, sizeof ex, h[i].examiner), bf_text_esc(wh, sizeof wh, h[i].when),
             h[i].note[0] ? ": " : "", bf_text_esc(no, sizeof no, h[i].note));
    }
    const bf_firearm *f = bfm_item_firearm(st, h[i].candidate);
    if (f && bfm_item_evidence(st, h[i].query))
      bfm_print_trace(stdout, f, "                            trace: ");
  }
}

typedef struct hits_args {
  int both;
  const char *store, *format;
  bf_hit_filter flt;
} hits_args;

/* Flags -> arguments; 0 or a usage exit code. */
static int hits_parse(hits_args *h, int argc, char **argv)
{
  int both = 0;
  const char *store = NULL, *format = "table";
  bf_hit_filter flt = BF_HIT_FILTER_INIT;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int hasv = i + 1 < argc;
    if (!strcmp(a, "--case") && hasv)
      flt.case_no = argv[++i];
    else if (!strcmp(a, "--firearm") && hasv)
      flt.serial = argv[++i];
    else if (!strcmp(a, "--min-score") && hasv) {
      char *e;
      flt.min_score = strtod(argv[++i], &e);
      if (*e || e == argv[i] || !isfinite(flt.min_score))
        return bfm_usage_error("hits", "--min-score needs a number, not '%s'", argv[i]);
    } else if (!strcmp(a, "--status") && hasv) {
      flt.status = parse_status(argv[++i]);
      if (flt.status == -2)
        return bfm_usage_error("hits", "--status must be candidate, confirmed or rejected");
    } else if ((!strcmp(a, "--run") || !strcmp(a, "--item")) && hasv) {
      long v = 0;
      if (bfm_parse_long("hits", a, argv[++i], 1, LONG_MAX, &v))
        return BFM_EXIT_USAGE;
      *(a[2] == 'r' ? &flt.run : &flt.item) = v;
    } else if (!strcmp(a, "--format") && hasv) {
      format = argv[++i];
      if (strcmp(format, "table") && strcmp(format, "json") && strcmp(format, "csv"))
        return bfm_usage_error("hits", "--format must be table, json or csv");
    } else if (!strcmp(a, "--json"))
      format = "json";
    else if (!strcmp(a, "--both"))
      both = 1;
    else if (a[0] == '-')
      return bfm_usage_error("hits", "unknown option %s", a);
    else if (!store)
      store = a;
    else
      return bfm_usage_error("hits", "one store at a time");
  }
  *h = (hits_args){both, store, format, flt};
  return 0;
}

int bfm_cmd_hits(int argc, char **argv)
{
  hits_args ha = {0};
  int e = hits_parse(&ha, argc, argv);
  if (e)
    return e;
  int both = ha.both;
  const char *store = ha.store, *format = ha.format;
  bf_hit_filter flt = ha.flt;
  if (!store)
    return bfm_usage_error("hits", "no store given");
  bf_store *st = NULL;
  bf_hit *h = NULL;
  size_t n = 0;
  if (bf_store_open(&st, store, BF_STORE_READ, NULL))
    return bfm_fail("hits");
  if (flt.case_no && !flt.case_no[0])
    flt.case_no = NULL;
  int rc = BFM_EXIT_OK;
  if (flt.serial && !bf_store_firearm_by_serial(st, flt.serial)) {
    bf_error_set(BF_ENOTFOUND, "%s: no firearm with serial %s", store, flt.serial);
    rc = bfm_fail("hits");
    goto done;
  }
  if (flt.case_no) {
    int found = 0;
    for (size_t i = 0; i < bf_store_nevidence(st) && !found; i++)
      found = !strcmp(bf_store_evidences(st)[i].case_no, flt.case_no);
    if (!found) {
      bf_error_set(BF_ENOTFOUND, "%s: no evidence of case %s", store, flt.case_no);
      rc = bfm_fail("hits");
      goto done;
    }
  }
  if (flt.item && !bf_store_item(st, flt.item)) {
    bf_error_set(BF_ENOTFOUND, "%s: no item %lld", store, (long long)flt.item);
    rc = bfm_fail("hits");
    goto done;
  }
  if (bf_store_query_hits(st, &flt, &h, &n)) {
    rc = bfm_fail("hits");
    goto done;
  }
  if (!both)
    bf_hits_one_per_pair(h, &n);
  if (!strcmp(format, "csv"))
    print_csv(st, h, n);
  else if (!strcmp(format, "json"))
    print_json(st, h, n);
  else
    print_table(st, h, n);
done:
  free(h);
  bf_store_close(st);
  return rc;
}
