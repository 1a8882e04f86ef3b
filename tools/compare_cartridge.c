/* bfm compare / bfm features for cartridge cases: breech-face features and CMC comparison. */
#include "bf_breechface.h"
#include "bf_cmc.h"
#include "bf_cv.h"
#include "bf_draw.h"
#include "bf_error.h"
#include "bf_fft.h"
#include "bf_firingpin.h"
#include "bf_lr.h"
#include "bf_pin.h"
#include "bf_x3p.h"
#include "bfm_cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The breech face of a scan and, when pin is not NULL, its firing-pin impression (*pin NULL
 * and why in why[] when the scan shows none). */
static int load_feature(bf_feature **f, bf_breechface_trace *tr, const char *path,
                        bf_feature **pin, char *why, size_t nwhy)
{
  bf_surface *s = NULL;
  int rc = bf_x3p_read(&s, path, NULL);
  if (!rc && (rc = bf_breechface_extract_trace(f, tr, s, NULL)))
    bf_error_prefix(rc, "%s: ", path);
  if (!rc && pin && (rc = bf_firingpin_extract(pin, s, NULL)) == BF_ENOTFOUND) {
    snprintf(why, nwhy, "%s: %s", path, bf_error_last());
    bf_error_clear();
    rc = 0;
  } else if (rc && pin && *f)
    bf_error_prefix(rc, "%s: ", path);
  bf_surface_free(s);
  return rc;
}

static int write_surface_png(const char *path, const bf_surface *s)
{
  uint32_t *rgb = malloc((size_t)s->nx * s->ny * sizeof *rgb);
  if (!rgb)
    return bf_error_set(BF_ENOMEM, "out of memory drawing %s", path);
  bf_draw_heights(rgb, s->nx, s->z, s->nx, s->ny);
  int rc = bf_cv_write_rgb(path, rgb, s->nx, s->ny);
  free(rgb);
  return rc;
}

static void print_flags(FILE *f, int q)
{
  char buf[256];
  fprintf(f, "%s", q ? bf_quality_names(buf, sizeof buf, q, BF_KIND_CARTRIDGE) : "none");
}

int bfm_compare_cartridge(int argc, char **argv)
{
  const char *files[2] = {NULL, NULL}, *png = NULL;
  int json = 0, nf = 0, ret = BFM_EXIT_FAIL, nopin = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--no-pin"))
      nopin = 1;
    else if (!strcmp(argv[i], "--png") && i + 1 < argc)
      png = argv[++i];
    else if (!strcmp(argv[i], "--kind") && i + 1 < argc)
      i++;
    else if (argv[i][0] == '-')
      return bfm_usage_error(argv[0], "unknown option %s", argv[i]);
    else if (nf < 2)
      files[nf++] = argv[i];
    else
      return bfm_usage_error(argv[0], "cartridge cases are compared two at a time");
  }
  if (nf != 2)
    return bfm_usage_error(argv[0], "give two scans A B");
  bf_feature *a = NULL, *b = NULL, *pa = NULL, *pb = NULL;
  bf_cmc_result r;
  bf_pin_result pr;
  bf_lr lr;
  char why[2][1024] = {"", ""};
  if (nopin)
    snprintf(why[0], sizeof why[0], "--no-pin");
  memset(&r, 0, sizeof r);
  if (load_feature(&a, NULL, files[0], nopin ? NULL : &pa, why[0], sizeof why[0]) ||
      load_feature(&b, NULL, files[1], nopin ? NULL : &pb, why[1], sizeof why[1]) ||
      bf_cmc_compare(&r, a, b, NULL) || bf_lr_cmc(&lr, &r, NULL) ||
      bf_pin_compare_cmc(&pr, pa, pb, &r, NULL)) {
    ret = bfm_fail(argv[0]);
    goto done;
  }
  const char *pin_why = why[0][0] ? why[0] : why[1];
  double rank = bf_pin_rank(r.score, pr.found ? pr.accf : NAN, NULL);
  if (json) {
    printf("{\"reference\": ");
    bfm_json_str(stdout, files[0]);
    printf(", \"target\": ");
    bfm_json_str(stdout, files[1]);
    printf(", \"method\": \"cmc\", \"score\": %g, \"match\": %s, \"lr\": %.6g, \"log10_lr\": %.4f, "
           "\"lr_reference\": \"%s\", \"cmc_original\": [%d, %d], "
           "\"cmc_high\": [%d, %d], \"cmc_combined_high\": %d, \"high_pass\": [%s, %s], \"cells_compared\": [%d, %d], "
           "\"theta_deg\": %g, \"theta_refined_deg\": %g, \"dx_um\": %.3f, \"dy_um\": %.3f, "
           "\"quality_flags\": %d, ",
           r.score, lr.match ? "true" : "false", lr.lr, lr.log10_lr, lr.reference,
           r.cmc_original[0], r.cmc_original[1],
           r.cmc_high[0], r.cmc_high[1], r.cmc_combined, r.high_pass[0] ? "true" : "false",
           r.high_pass[1] ? "true" : "false", r.ncells[0], r.ncells[1], r.theta, r.theta_refined, r.dx, r.dy,
           r.quality_flags);
    printf("\"firing_pin\": {\"found\": %s", pr.found ? "true" : "false");
    if (pr.found && isfinite(pr.rotation))
      printf(", \"accf\": %.4f, \"rotation_deg\": %g, \"rotation_from\": \"%s\", \"dx_um\": %.3f, "
             "\"dy_um\": %.3f", pr.accf, pr.rotation, pr.from_cmc ? "cmc" : "search", pr.dx, pr.dy);
    else if (pr.found) /* never enough overlap at any shift: nothing in common */
      printf(", \"accf\": %.4f, \"rotation_deg\": null", pr.accf);
    else {
      printf(", \"why\": ");
      bfm_json_str(stdout, pin_why);
    }
    printf("}, \"rank_score\": %.4f, \"cells\": [", rank);
    for (int i = 0; i < r.ncell; i++) {
      const bf_cmc_cell *c = &r.cells[i];
      printf("%s{\"direction\": %d, \"row\": %d, \"col\": %d, \"theta_deg\": %g, \"dx_um\": %.3f, "
             "\"dy_um\": %.3f, \"corr\": %.4f, \"cmc_original\": %s, \"cmc_high\": %s}",
             i ? ", " : "", c->direction, c->row, c->col, c->theta, c->dx, c->dy, c->corr,
             c->cmc_original ? "true" : "false", c->cmc_high ? "true" : "false");
    }
    printf("]}\n");
  } else {
    printf("reference  %s\ntarget     %s\n", files[0], files[1]);
    printf("score      %g CMCs (original method, smaller direction)\n", r.score);
    printf("lr         %.3g (log10 %.2f%s; reference: %s): %s (hit rule log10 LR >= %g)\n", lr.lr,
           lr.log10_lr, lr.capped ? ", at the bound of the reference data" : "", lr.reference,
           lr.match ? "MATCH" : "no match", ((bf_lr_rule)BF_LR_RULE_INIT).min_log10_lr);
    printf("combined   %d High CMCs (cmcR's two-direction rule)\n", r.cmc_combined);
    printf("original   %d (A->B)  %d (B->A)   of %d / %d cells compared\n", r.cmc_original[0],
           r.cmc_original[1], r.ncells[0], r.ncells[1]);
    printf("high CMC   %d (A->B, %s)  %d (B->A, %s)\n", r.cmc_high[0],
           r.high_pass[0] ? "passed" : "failed", r.cmc_high[1], r.high_pass[1] ? "passed" : "failed");
    printf("consensus  theta %g deg (refined %g), dx %.1f um, dy %.1f um (A->B)\n", r.theta,
           r.theta_refined, r.dx, r.dy);
    if (pr.found)
      printf("firing pin ACCF %.3f at %g deg (%s), dx %.1f um, dy %.1f um\n", pr.accf, pr.rotation,
             pr.from_cmc ? "the CMC rotation, refined" : "full-circle search", pr.dx, pr.dy);
    else
      printf("firing pin not compared (%s)\n", pin_why);
    printf("rank       %.3f (CMCs + 0.9 x ACCF: orders pairs of equal CMC count)\n", rank);
    printf("quality    ");
    print_flags(stdout, r.quality_flags);
    printf("\n\n dir row col  theta     dx_um     dy_um    corr  CMC\n");
    for (int i = 0; i < r.ncell; i++) {
      const bf_cmc_cell *c = &r.cells[i];
      printf(" %s %3d %3d %6g %9.1f %9.1f %7.3f  %s%s\n", c->direction ? "B>A" : "A>B", c->row,
             c->col, c->theta, c->dx, c->dy, c->corr, c->cmc_original ? "orig " : "",
             c->cmc_high ? "high" : "");
    }
  }
  if (png && bfm_draw_cmc_pair(png, a, b, &r)) {
    ret = bfm_fail(argv[0]);
    goto done;
  }
  ret = BFM_EXIT_OK;
done:
  bf_cmc_result_clear(&r);
  bf_feature_free(a);
  bf_feature_free(b);
  bf_feature_free(pa);
  bf_feature_free(pb);
  bf_fft_cleanup();
  return ret;
}

static int show_steps(const char *dir, const char *scan, const bf_breechface_trace *tr,
                      const bf_feature *f)
{
  const char *base = strrchr(scan, '/');
  base = base ? base + 1 : scan;
  char stem[512], path[1200];
  snprintf(stem, sizeof stem, "%s", base);
  char *dot = strrchr(stem, '.');
  if (dot)
    *dot = 0;
  mkdir(dir, 0777);
  const bf_surface *st[4] = {tr->input, tr->cropped, tr->levelled, tr->filtered};
  const char *nm[4] = {"1-input", "2-cropped", "3-levelled", "4-filtered"};
  for (int k = 0; k < 4; k++) {
    if (!st[k])
      continue;
    snprintf(path, sizeof path, "%s/%s-%s.png", dir, stem, nm[k]);
    if (k == 0 && (tr->r_out > 0)) {
      /* the input with the fitted circles drawn */
      const bf_surface *s = st[0];
      uint32_t *rgb = malloc((size_t)s->nx * s->ny * sizeof *rgb);
      if (!rgb)
        return bf_error_set(BF_ENOMEM, "out of memory drawing %s", path);
      bf_draw_heights(rgb, s->nx, s->z, s->nx, s->ny);
      double rr[2] = {tr->r_out, tr->r_fp}, ox[2] = {tr->cx, tr->fcx}, oy[2] = {tr->cy, tr->fcy};
      for (int c = 0; c < 2; c++)
        for (int a = 0; a < 3600 && rr[c] > 0; a++) {
          int x = (int)lround(ox[c] + rr[c] * cos(a * M_PI / 1800)),
              y = (int)lround(oy[c] + rr[c] * sin(a * M_PI / 1800));
          if (x >= 0 && y >= 0 && x < s->nx && y < s->ny)
            rgb[(size_t)y * s->nx + x] = 0x00c000;
        }
      int rc = bf_cv_write_rgb(path, rgb, s->nx, s->ny);
      free(rgb);
      if (rc)
        return rc;
    } else if (write_surface_png(path, st[k]))
      return -1;
  }
  bf_surface fs;
  memset(&fs, 0, sizeof fs);
  fs.nx = f->nx;
  fs.ny = f->ny;
  fs.dx = f->dx;
  fs.dy = f->dy;
  fs.z = f->z;
  snprintf(path, sizeof path, "%s/%s-5-feature.png", dir, stem);
  return write_surface_png(path, &fs);
}

int bfm_features_cartridge(int argc, char **argv)
{
  const char *show = NULL;
  int json = 0, failed = 0, n = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--show") && i + 1 < argc)
      show = argv[++i];
    else if (!strcmp(argv[i], "--kind") && i + 1 < argc)
      i++;
    else if (argv[i][0] == '-')
      return bfm_usage_error(argv[0], "unknown option %s", argv[i]);
  }
  if (json)
    printf("[");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--show") || !strcmp(argv[i], "--kind")) {
      i++;
      continue;
    }
    if (argv[i][0] == '-')
      continue;
    bf_feature *f = NULL;
    bf_breechface_trace tr;
    memset(&tr, 0, sizeof tr);
    if (load_feature(&f, show ? &tr : NULL, argv[i], NULL, NULL, 0)) {
      fprintf(stderr, "bfm %s: %s\n", argv[0], bf_error_last());
      failed++;
      continue;
    }
    if (json) {
      printf("%s{\"file\": ", n ? ", " : "");
      bfm_json_str(stdout, argv[i]);
      printf(", \"kind\": \"cartridge\", \"nx\": %d, \"ny\": %d, \"spacing_um\": %g, "
             "\"valid_fraction\": %.4f, \"quality_flags\": %d, \"source_spacing_um\": %g, "
             "\"primer_radius_um\": %.1f, \"firing_pin_radius_um\": %.1f, \"processed_input\": %s, "
             "\"sd_um\": %.4f}", f->nx, f->ny, f->dx, f->valid_fraction, f->quality_flags,
             f->params[0], f->params[1], f->params[2], f->params[5] ? "true" : "false", f->params[6]);
    } else {
      printf("%s\n  feature      %d x %d points at %g um, %.1f %% valid, sd %.3f um\n", argv[i],
             f->nx, f->ny, f->dx, 100 * f->valid_fraction, f->params[6]);
      printf("  input        %s, spacing %g um\n",
             f->params[5] ? "already processed (only resampled)" : "raw (full preprocessing)",
             f->params[0]);
      if (!f->params[5])
        printf("  circles      primer r %.0f um, firing pin r %.0f um\n", f->params[1], f->params[2]);
      printf("  quality      ");
      print_flags(stdout, f->quality_flags);
      printf("\n");
    }
    n++;
    if (show && show_steps(show, argv[i], &tr, f)) {
      fprintf(stderr, "bfm %s: %s\n", argv[0], bf_error_last());
      failed++;
    }
    bf_breechface_trace_clear(&tr);
    bf_feature_free(f);
  }
  if (json)
    printf("]\n");
  if (!n && !failed)
    return bfm_usage_error(argv[0], "no scan given");
  return failed ? BFM_EXIT_FAIL : BFM_EXIT_OK;
}
