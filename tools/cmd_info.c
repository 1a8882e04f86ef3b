/* bfm info: what a scan file holds and what the reader did to it. */
#include "bf_error.h"
#include "bf_store.h"
#include "bf_text.h"
#include "bf_x3p.h"
#include "bfm_cli.h"

#include <stdlib.h>
#include <string.h>

/* A store's summary; a table or feature index that does not load is named on stderr and the
 * command fails (counts of a damaged store are not shown as if they were complete). */
static int store_info(const char *path, int json)
{
  bf_store *st = NULL;
  if (bf_store_open(&st, path, BF_STORE_READ, NULL)) {
    fprintf(stderr, "bfm info: %s\n", bf_error_last());
    return BFM_EXIT_FAIL;
  }
  int bad = bf_store_load(st);
  if (bad)
    fprintf(stderr, "bfm info: %s\n", bf_error_last());
  bf_store_stats ss;
  bf_store_stats_get(st, &ss);
  size_t nk[3] = {0}, nsearched = 0, hs[3] = {0}, nh = 0, na = 0;
  for (size_t i = 0; i < bf_store_nitems(st); i++) {
    const bf_item *it = &bf_store_items(st)[i];
    nk[it->kind == BF_KIND_BULLET ? 2 : 1]++;
    nsearched += it->searched != 0;
  }
  bf_hit *h = NULL;
  if (bf_store_query_hits(st, NULL, &h, &nh) && !bad)
    bad = 1, fprintf(stderr, "bfm info: %s\n", bf_error_last());
  for (size_t i = 0; i < nh; i++)
    hs[h[i].status >= 0 && h[i].status <= 2 ? h[i].status : 0]++;
  free(h);
  bf_audit_rec *au = NULL;
  if (bf_store_read_audit(st, &au, &na) && !bad)
    bad = 1, fprintf(stderr, "bfm info: %s\n", bf_error_last());
  char kinds[16][48];
  int nkind = bf_store_feature_kinds(st, kinds, 16);
  if (json) {
    printf("{\"store\": ");
    bfm_json_str(stdout, path);
    printf(", \"schema\": %d, \"bytes\": %lld, \"segments\": %d, \"small_segments\": %d, "
           "\"compaction_due\": %s, \"superseded_rows\": %lld, \"unkeyed_segments\": %d, \"damaged\": %s, \"firearms\": %zu, "
           "\"evidence\": %zu, \"items\": %zu, \"cartridge_items\": %zu, \"bullet_items\": %zu, "
           "\"searched_items\": %zu, \"scans\": %zu, \"hits\": %zu, \"confirmed\": %zu, "
           "\"rejected\": %zu, \"audit_rows\": %zu, \"features\": {",
           ss.schema, (long long)ss.bytes, ss.segments, ss.small_segments,
           ss.compaction_due ? "true" : "false", (long long)ss.superseded_rows, ss.unkeyed_segments,
           bad ? "true" : "false",
           bf_store_nfirearms(st), bf_store_nevidence(st), bf_store_nitems(st), nk[1], nk[2], nsearched,
           bf_store_nscans(st), nh, hs[1], hs[2], na);
    for (int k = 0; k < nkind; k++) {
      size_t n = 0;
      bf_store_kind_info(st, kinds[k], NULL, &n, NULL);
      printf("%s\"%s\": %zu", k ? ", " : "", kinds[k], n);
    }
    printf("}}\n");
  } else {
    printf("%s: bfm store, schema %d, %.1f MB in %d segment(s)%s\n", path, ss.schema, ss.bytes / 1e6,
           ss.segments, bad ? " (DAMAGED: see above)" : "");
    printf("  firearms     %zu\n  evidence     %zu\n", bf_store_nfirearms(st), bf_store_nevidence(st));
    printf("  items        %zu (%zu cartridge cases, %zu bullets; %zu searched)\n", bf_store_nitems(st),
           nk[1], nk[2], nsearched);
    printf("  scans        %zu (original X3P kept, SHA-256 recorded)\n", bf_store_nscans(st));
    for (int k = 0; k < nkind; k++) {
      size_t n = 0;
      int64_t vals = 0;
      int comp = 1;
      bf_store_kind_info(st, kinds[k], &comp, &n, &vals);
      printf("  features     %-16s %zu (%lld values%s)\n", kinds[k], n, (long long)vals,
             comp ? "" : ", plain");
    }
    printf("  hits         %zu (%zu confirmed, %zu rejected, %zu candidates)\n", nh, hs[1], hs[2], hs[0]);
    char eu[260];
    printf("  audit log    %zu entries%s%s%s%s\n", na, na ? ", last " : "", na ? au[na - 1].time : "",
           na ? " by " : "", bf_text_esc(eu, sizeof eu, na ? au[na - 1].user : ""));
    printf("  compaction   %s (%d small segment(s), %lld superseded row(s))\n",
           ss.compaction_due ? "due: run `bfm compact`" : "not due", ss.small_segments,
           (long long)ss.superseded_rows);
    if (ss.unkeyed_segments)
      printf("  key lists    missing in %d segment(s) written by an older bfm: an ingest reads whole tables "
             "until `bfm compact --all`\n", ss.unkeyed_segments);
  }
  free(au);
  bf_store_close(st);
  return bad ? BFM_EXIT_FAIL : BFM_EXIT_OK;
}

/* What main.xml says; the same lines whether or not the points were read. */
static void print_header_text(const char *path, const bf_x3p_info *in)
{
  const bf_meta *m = &in->meta;
  char e[6][260]; /* the header's free text, escaped (bf_text_esc): it cannot fake lines */
  printf("%s\n", path);
  printf("  instrument   %s %s (serial %s, version %s)\n", bf_text_esc(e[0], 260, m->manufacturer),
         bf_text_esc(e[1], 260, m->model), bf_text_esc(e[2], 260, m->serial),
         bf_text_esc(e[3], 260, m->version));
  printf("  creator      %s, %s\n", bf_text_esc(e[4], 260, m->creator), bf_text_esc(e[5], 260, m->date));
  printf("  size         %ld x %ld points (%.1f x %.1f um)\n", in->nx, in->ny, in->nx * in->dx_um,
         in->ny * in->dy_um);
  printf("  spacing      %.6g x %.6g um\n", in->dx_um, in->dy_um);
}

static void print_text(const char *path, const bf_surface *s, const bf_x3p_info *in)
{
  bf_surface_stats st;
  bf_surface_stats_get(&st, s);
  char e[6][260];
  print_header_text(path, in);
  printf("  heights      %c, range %.4g .. %.4g um (mean %.4g, sd %.4g)\n", in->data_type, st.zmin,
         st.zmax, st.zmean, st.zsd);
  printf("  units        %s%s\n",
         in->xy_converted_from_um ? "x/y increments were micrometres (converted)" : "x/y in metres",
         in->z_converted_from_um ? "; heights were micrometres (converted)" : "; heights in metres");
  printf("  missing      %.2f %% (%zu of %zu points)\n", 100 * st.missing_fraction, st.n - st.nvalid, st.n);
  printf("  checksums    main.xml %s, data %s", in->md5_main_ok ? "verified" : "absent",
         in->md5_data_ok ? "verified" : "absent");
  if (in->has_valid)
    printf(", valid.bin %s", in->md5_valid_ok ? "verified" : "no checksum given");
  printf("\n");
  if (s->mask) {
    printf("  mask         %d annotation(s)", s->nlabels);
    for (int i = 0; i < s->nlabels; i++)
      printf("%s #%06x %s", i ? "," : ":", s->labels[i].rgb, bf_text_esc(e[0], 260, s->labels[i].name));
    printf("\n");
  }
}

/* One scan as a JSON object; s is NULL in header-only mode (nothing but main.xml was read). */
static void print_json(const char *path, const bf_surface *s, const bf_x3p_info *in)
{
  printf("{\"file\": ");
  bfm_json_str(stdout, path);
  printf(", \"manufacturer\": ");
  bfm_json_str(stdout, in->meta.manufacturer);
  printf(", \"model\": ");
  bfm_json_str(stdout, in->meta.model);
  printf(", \"date\": ");
  bfm_json_str(stdout, in->meta.date);
  printf(", \"nx\": %ld, \"ny\": %ld, \"dx_um\": %.9g, \"dy_um\": %.9g, \"data_type\": \"%c\"", in->nx,
         in->ny, in->dx_um, in->dy_um, in->data_type);
  printf(", \"xy_converted_from_um\": %s", in->xy_converted_from_um ? "true" : "false");
  if (!s) {
    printf(", \"header_only\": true}");
    return;
  }
  bf_surface_stats st;
  bf_surface_stats_get(&st, s);
  printf(", \"z_converted_from_um\": %s", in->z_converted_from_um ? "true" : "false");
  printf(", \"missing_fraction\": %.6f, \"z_min_um\": %.6g, \"z_max_um\": %.6g", st.missing_fraction,
         st.zmin, st.zmax);
  printf(", \"md5_main\": \"%s\", \"md5_data\": \"%s\", \"md5_valid\": \"%s\", \"mask\": %s, "
         "\"mask_labels\": %d}",
         in->md5_main_ok ? "verified" : "absent", in->md5_data_ok ? "verified" : "absent",
         !in->has_valid ? "no valid.bin" : in->md5_valid_ok ? "verified" : "absent",
         s->mask ? "true" : "false", s->nlabels);
}

int bfm_cmd_info(int argc, char **argv)
{
  int json = 0, header = 0, nfiles = 0, failed = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--header"))
      header = 1;
    else if (argv[i][0] == '-' && argv[i][1])
      return bfm_usage_error("info", "unknown option %s", argv[i]);
    else
      nfiles++;
  }
  if (!nfiles)
    return bfm_usage_error("info", "no scan given");
  if (json)
    printf("[");
  int first = 1;
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-' && argv[i][1])
      continue;
    if (bfm_store_is(argv[i])) { /* an HDF5 store: its summary */
      if (json)
        printf("%s\n ", first ? "" : ",");
      failed |= store_info(argv[i], json) != BFM_EXIT_OK;
      first = 0;
      continue;
    }
    bf_surface *s = NULL;
    bf_x3p_info in;
    if (header ? bf_x3p_probe(argv[i], &in) : bf_x3p_read(&s, argv[i], &in)) {
      fprintf(stderr, "bfm info: %s\n", bf_error_last());
      failed = 1;
      continue;
    }
    if (json) {
      printf("%s\n ", first ? "" : ",");
      print_json(argv[i], s, &in);
    } else if (s)
      print_text(argv[i], s, &in);
    else {
      print_header_text(argv[i], &in);
      printf("  heights      %c, not read (--header: main.xml only, checksums not verified)\n", in.data_type);
    }
    first = 0;
    bf_surface_free(s);
  }
  if (json)
    printf("]\n");
  return failed ? BFM_EXIT_FAIL : BFM_EXIT_OK;
}
