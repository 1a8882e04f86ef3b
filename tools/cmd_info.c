/* bfm info: what a scan file holds and what the reader did to it. */
#include "bf_error.h"
#include "bf_text.h"
#include "bf_x3p.h"
#include "bfm_cli.h"

#include <string.h>

static void print_text(const char *path, const bf_surface *s, const bf_x3p_info *in)
{
  bf_surface_stats st;
  bf_surface_stats_get(&st, s);
  char e[6][260]; /* the header's free text, escaped (bf_text_esc): it cannot fake lines */
  printf("%s\n", path);
  printf("  instrument   %s %s (serial %s, version %s)\n", bf_text_esc(e[0], 260, s->meta.manufacturer),
         bf_text_esc(e[1], 260, s->meta.model), bf_text_esc(e[2], 260, s->meta.serial),
         bf_text_esc(e[3], 260, s->meta.version));
  printf("  creator      %s, %s\n", bf_text_esc(e[4], 260, s->meta.creator), bf_text_esc(e[5], 260, s->meta.date));
  printf("  size         %d x %d points (%.1f x %.1f um)\n", s->nx, s->ny, s->nx * s->dx, s->ny * s->dy);
  printf("  spacing      %.6g x %.6g um\n", s->dx, s->dy);
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

static void print_json(const char *path, const bf_surface *s, const bf_x3p_info *in)
{
  bf_surface_stats st;
  bf_surface_stats_get(&st, s);
  printf("{\"file\": ");
  bfm_json_str(stdout, path);
  printf(", \"manufacturer\": ");
  bfm_json_str(stdout, s->meta.manufacturer);
  printf(", \"model\": ");
  bfm_json_str(stdout, s->meta.model);
  printf(", \"date\": ");
  bfm_json_str(stdout, s->meta.date);
  printf(", \"nx\": %d, \"ny\": %d, \"dx_um\": %.9g, \"dy_um\": %.9g, \"data_type\": \"%c\"", s->nx,
         s->ny, s->dx, s->dy, in->data_type);
  printf(", \"xy_converted_from_um\": %s, \"z_converted_from_um\": %s",
         in->xy_converted_from_um ? "true" : "false", in->z_converted_from_um ? "true" : "false");
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
  int json = 0, nfiles = 0, failed = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
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
      failed |= bfm_store_info(argv[i], json) != BFM_EXIT_OK;
      first = 0;
      continue;
    }
    bf_surface *s = NULL;
    bf_x3p_info in;
    if (bf_x3p_read(&s, argv[i], &in)) {
      fprintf(stderr, "bfm info: %s\n", bf_error_last());
      failed = 1;
      continue;
    }
    if (json) {
      printf("%s\n ", first ? "" : ",");
      print_json(argv[i], s, &in);
    } else
      print_text(argv[i], s, &in);
    first = 0;
    bf_surface_free(s);
  }
  if (json)
    printf("]\n");
  return failed ? BFM_EXIT_FAIL : BFM_EXIT_OK;
}
