/* bfm compare / bfm features for bullets: land signatures, land matrix, SAM phase, PNG plots. */
#include "bf_bullet.h"
#include "bf_cv.h"
#include "bf_draw.h"
#include "bf_error.h"
#include "bf_lr.h"
#include "bf_scanset.h"
#include "bf_striae.h"
#include "bf_x3p.h"
#include "bfm_cli.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_LANDS 64

/* ---- loading a bullet -------------------------------------------------------------------- */

typedef struct bullet {
  int n;
  char *path[MAX_LANDS];
  bf_feature *f[MAX_LANDS];
} bullet;

static void bullet_free(bullet *b)
{
  for (int i = 0; i < b->n; i++) {
    free(b->path[i]);
    bf_feature_free(b->f[i]);
  }
  b->n = 0;
}

/* A folder of land scans or a comma-separated list, numbered by the one scan-set rule
 * (bf_scanset.h): the same lands, in the same places, as match and ingest see them. */
static int bullet_list(bullet *b, const char *spec, int *lands)
{
  bf_scanset set = {0};
  char *specs[1] = {(char *)spec};
  memset(b, 0, sizeof *b);
  int rc = bf_scanset_build(&set, specs, 1, ',', NULL);
  if (rc)
    return rc;
  for (int i = 0; i < set.n && i < MAX_LANDS; i++) {
    b->path[i] = set.v[i].path; /* taken over */
    lands[i] = set.v[i].land;
    set.v[i].path = NULL;
    b->n++;
  }
  set.n = 0;
  return 0;
}

/* Reads and extracts every land; an unreadable or unusable land becomes a missing land (NULL)
 * with a warning. Fails only when no land is usable. */
static int bullet_load(bullet *b, const char *spec, const bf_bullet_opts *base, const char *cmd)
{
  int lands[MAX_LANDS], rc = bullet_list(b, spec, lands), ok = 0;
  if (rc)
    return rc;
  for (int i = 0; i < b->n; i++) {
    bf_surface *s = NULL;
    bf_bullet_opts o = *base;
    o.land = lands[i];
    if ((rc = bf_x3p_read(&s, b->path[i], NULL)) || (rc = bf_bullet_land_extract(&b->f[i], s, &o))) {
      fprintf(stderr, "bfm %s: warning: land %d (%s) left out: %s\n", cmd, o.land, b->path[i],
              bf_error_last());
      b->f[i] = NULL;
    } else
      ok++;
    bf_surface_free(s);
  }
  if (!ok) {
    bullet_free(b);
    return bf_error_set(BF_EQUALITY, "%s: no usable land scan", spec);
  }
  return 0;
}

static const char *flag_names(int q, char *buf, size_t len)
{
  if (!q)
    snprintf(buf, len, "ok");
  return q ? bf_quality_names(buf, len, q, BF_KIND_BULLET) : buf;
}

/* A land's quality flags, and "damaged" with its SAM weight when bf_land_quality marks it. */
static const char *land_quality(char *buf, size_t len, const bf_feature *f, double weight)
{
  if (!f)
    return "unreadable";
  char fb[96];
  flag_names(f->quality_flags, fb, sizeof fb);
  if (weight < BF_LAND_DAMAGED)
    snprintf(buf, len, "%s%sdamaged (weight %.2f)", f->quality_flags ? fb : "",
             f->quality_flags ? "," : "", weight);
  else
    snprintf(buf, len, "%s", fb);
  return buf;
}

static int parse_orient(const char *s)
{
  if (!strcasecmp(s, "x"))
    return BF_STRIAE_X;
  if (!strcasecmp(s, "y"))
    return BF_STRIAE_Y;
  if (!strcasecmp(s, "auto"))
    return BF_STRIAE_AUTO;
  return -1;
}

/* Draws the aligned signatures of the pairs on the best phase, one panel each. */
/* --orient V / --orient=V: 1 when taken (i advanced), -1 when V is bad (argv[*i] names it), 0
 * when argv[*i] is another option. */
static int orient_opt(bf_bullet_opts *bo, int argc, char **argv, int *i)
{
  const char *v = NULL;
  if (!strcmp(argv[*i], "--orient") && *i + 1 < argc)
    v = argv[++*i];
  else if (!strncmp(argv[*i], "--orient=", 9))
    v = argv[*i] + 9;
  if (!v)
    return 0;
  bo->orientation = parse_orient(v);
  return bo->orientation < 0 ? -1 : 1;
}

/* compare --json: lands, land scores, phase scores and the verdict as one object. */
static void print_bullet_json(const char **ops, const bullet *A, const bullet *B, const bf_bullet_result *rr,
                              const bf_lr *lr)
{
  const bf_bullet_result r = *rr;
  char fb[128];
  printf("{\"a\":");
  bfm_json_str(stdout, ops[0]);
  printf(",\"b\":");
  bfm_json_str(stdout, ops[1]);
  printf(",\"lands_a\":[");
  for (int i = 0; i < A->n; i++) {
    printf("%s{\"path\":", i ? "," : "");
    bfm_json_str(stdout, A->path[i]);
    printf(",\"position\":%d,\"quality\":\"%s\",\"weight\":%.3f,\"damaged\":%s}", r.pos_a[i] + 1,
           A->f[i] ? flag_names(A->f[i]->quality_flags, fb, sizeof fb) : "unreadable", r.quality_a[i],
           A->f[i] && r.quality_a[i] < BF_LAND_DAMAGED ? "true" : "false");
  }
  printf("],\"lands_b\":[");
  for (int j = 0; j < B->n; j++) {
    printf("%s{\"path\":", j ? "," : "");
    bfm_json_str(stdout, B->path[j]);
    printf(",\"position\":%d,\"quality\":\"%s\",\"weight\":%.3f,\"damaged\":%s}", r.pos_b[j] + 1,
           B->f[j] ? flag_names(B->f[j]->quality_flags, fb, sizeof fb) : "unreadable", r.quality_b[j],
           B->f[j] && r.quality_b[j] < BF_LAND_DAMAGED ? "true" : "false");
  }
  printf("],\"land_scores\":[");
  for (int i = 0; i < r.na; i++) {
    printf("%s[", i ? "," : "");
    for (int j = 0; j < r.nb; j++) {
      const bf_land_result *l = &r.lands[i * r.nb + j];
      if (l->scored)
        printf("%s{\"score\":%.4f,\"ccf\":%.4f,\"lag_um\":%.2f,\"overlap_um\":%.1f,\"D\":%.4f,"
               "\"sd_D\":%.4f,\"cms\":%d,\"non_cms\":%d,\"matches\":%d,\"mismatches\":%d,"
               "\"sum_peaks\":%.3f}",
               j ? "," : "", l->score, l->ccf, l->lag_um, l->overlap_um, l->D, l->sd_D, l->cms,
               l->non_cms, l->matches, l->mismatches, l->sum_peaks);
      else
        printf("%snull", j ? "," : "");
    }
    printf("]");
  }
  printf("],\"phase_scores\":[");
  for (int p = 0; p < r.nphase; p++)
    isfinite(r.phase_score[p]) ? printf("%s%.4f", p ? "," : "", r.phase_score[p])
                               : printf("%snull", p ? "," : "");
  printf("],\"reversed\":%s,\"other_score\":", r.reversed ? "true" : "false");
  isfinite(r.other_score) ? printf("%.4f", r.other_score) : printf("null");
  printf(",\"phase\":%d,\"score\":%.4f,\"margin\":%.4f,\"match\":%s,\"lr\":%.6g,\"log10_lr\":%.4f,"
         "\"lr_reference\":\"%s\",\"min_log10_lr\":%g}\n", r.phase, r.score, r.margin,
         lr->match ? "true" : "false", lr->lr, lr->log10_lr, lr->reference,
         ((bf_lr_rule)BF_LR_RULE_INIT).min_log10_lr);
}

int bfm_compare_bullet(int argc, char **argv)
{
  const char *cmd = argv[0], *png = NULL, *ops[2] = {0};
  int json = 0, nops = 0, code = BFM_EXIT_FAIL, k;
  bf_bullet_opts bo = BF_BULLET_OPTS_INIT;
  bf_land_opts lo = BF_LAND_OPTS_INIT;
  bullet A = {0}, B = {0};
  bf_bullet_result r = {0};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--kind") && i + 1 < argc)
      i++;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--png") && i + 1 < argc)
      png = argv[++i];
    else if (!strcmp(argv[i], "--turn-margin") && i + 1 < argc) {
      char *end;
      lo.turn_margin = strtod(argv[++i], &end);
      if (end == argv[i] || *end || !isfinite(lo.turn_margin))
        return bfm_usage_error(cmd, "--turn-margin needs a number (negative: never turn B), not '%s'",
                               argv[i]);
    } else if ((k = orient_opt(&bo, argc, argv, &i)) != 0) {
      if (k < 0)
        return bfm_usage_error(cmd, "--orient must be x, y or auto, not '%s'", argv[i]);
    } else if (argv[i][0] == '-')
      return bfm_usage_error(cmd, "unknown option %s", argv[i]);
    else if (nops < 2)
      ops[nops++] = argv[i];
    else
      return bfm_usage_error(cmd, "bullets compare two at a time (A B)");
  }
  if (nops != 2)
    return bfm_usage_error(cmd, "give two bullets: folders of land scans or comma-separated lists");
  if (bullet_load(&A, ops[0], &bo, cmd) || bullet_load(&B, ops[1], &bo, cmd)) {
    code = bfm_fail(cmd);
    goto done;
  }
  bf_lr lr;
  if (bf_bullet_compare(&r, (const bf_feature *const *)A.f, A.n, (const bf_feature *const *)B.f, B.n,
                        &lo) || bf_lr_bullet(&lr, &r, NULL)) {
    code = bfm_fail(cmd);
    goto done;
  }
  char fb[128];
  if (json)
    print_bullet_json(ops, &A, &B, &r, &lr);
  else {
    printf("land scores (rows: %s, columns: %s; '-' = not scored)\n", ops[0], ops[1]);
    printf("        ");
    for (int j = 0; j < r.nb; j++)
      printf("   B%-3d", r.pos_b[j] + 1);
    printf("\n");
    for (int i = 0; i < r.na; i++) {
      printf("  A%-4d", r.pos_a[i] + 1);
      for (int j = 0; j < r.nb; j++) {
        const bf_land_result *l = &r.lands[i * r.nb + j];
        int on = bf_bullet_on_phase(&r, i, j);
        if (l->scored)
          printf("  %c%.3f", on ? '*' : ' ', l->score);
        else
          printf("  %6s", "-");
      }
      printf("   %s\n", land_quality(fb, sizeof fb, A.f[i], r.quality_a[i]));
    }
    printf("  B quality:");
    for (int j = 0; j < r.nb; j++)
      printf(" B%d %s", r.pos_b[j] + 1, land_quality(fb, sizeof fb, B.f[j], r.quality_b[j]));
    printf("\nphase scores:");
    for (int p = 0; p < r.nphase; p++)
      isfinite(r.phase_score[p]) ? printf(" %d:%.3f", p, r.phase_score[p]) : printf(" %d:-", p);
    printf("\n");
    if (r.phase < 0)
      printf("no land pair could be scored: no bullet score\n");
    else if (r.reversed)
      printf("B turned heel for toe (each land reversed, lands in the opposite order): SAM %.3f, as "
             "scanned %.3f\nphase %d (A land i meets B land %d-i, mod %d), bullet score %.3f (SAM), margin "
             "%.3f over the next phase\n", r.score, r.other_score, r.phase, r.n + 1 - r.phase, r.n,
             r.score, r.margin);
    else
      printf("phase %d (A land i meets B land i+%d), bullet score %.3f (SAM), margin %.3f over the next "
             "phase\n", r.phase, r.phase, r.score, r.margin);
    printf("lr %.3g (log10 %.2f%s; reference: %s): %s (hit rule log10 LR >= %g)\n", lr.lr,
           lr.log10_lr, lr.capped ? ", at the bound of the reference data" : "", lr.reference,
           lr.match ? "MATCH" : "no match", ((bf_lr_rule)BF_LR_RULE_INIT).min_log10_lr);
  }
  if (png && bfm_draw_bullet_pair(png, &r, A.f, B.f)) {
    code = bfm_fail(cmd);
    goto done;
  }
  code = BFM_EXIT_OK;
done:
  bf_bullet_result_clear(&r);
  bullet_free(&A);
  bullet_free(&B);
  return code;
}

/* crosscut with the land curve and groove cuts above, signature below */
static int draw_land(const char *path, const bf_bullet_trace *t, const bf_feature *f)
{
  bf_image im = {0};
  int rc = bf_draw_land_steps(&im, t, f);
  if (!rc)
    rc = bf_image_write(&im, path);
  bf_image_clear(&im);
  return rc;
}

int bfm_features_bullet(int argc, char **argv)
{
  const char *cmd = argv[0], *show = NULL;
  int json = 0, code = BFM_EXIT_OK, nscan = 0, first = 1, k;
  bf_bullet_opts bo = BF_BULLET_OPTS_INIT;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--kind") && i + 1 < argc)
      i++;
    else if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (!strcmp(argv[i], "--show") && i + 1 < argc)
      show = argv[++i];
    else if ((k = orient_opt(&bo, argc, argv, &i)) != 0) {
      if (k < 0)
        return bfm_usage_error(cmd, "--orient must be x, y or auto, not '%s'", argv[i]);
    } else if (argv[i][0] == '-')
      return bfm_usage_error(cmd, "unknown option %s", argv[i]);
    else
      nscan++;
  }
  if (!nscan)
    return bfm_usage_error(cmd, "no land scan given");
  if (show && mkdir(show, 0777) != 0) {
    struct stat st;
    if (stat(show, &st) != 0 || !S_ISDIR(st.st_mode)) {
      fprintf(stderr, "bfm %s: cannot make folder %s\n", cmd, show);
      return BFM_EXIT_FAIL;
    }
  }
  /* the operands as one scan set: a folder works too, lands numbered as everywhere else */
  bf_scanset set = {0};
  char **specs = calloc((size_t)argc, sizeof *specs);
  int nspec = 0;
  for (int i = 1; specs && i < argc; i++) {
    if (!strcmp(argv[i], "--kind") || !strcmp(argv[i], "--show") || !strcmp(argv[i], "--orient"))
      i++;
    else if (argv[i][0] != '-')
      specs[nspec++] = argv[i];
  }
  if (!specs || bf_scanset_build(&set, specs, nspec, ',', NULL)) {
    free(specs);
    return bfm_fail(cmd);
  }
  free(specs);
  if (json)
    printf("[");
  for (int k = 0; k < set.n; k++) {
    const char *path = set.v[k].path;
    bf_surface *s = NULL;
    bf_feature *f = NULL;
    bf_bullet_trace t = {0};
    bf_bullet_opts o = bo;
    o.land = set.v[k].land;
    if (bf_x3p_read(&s, path, NULL) || bf_bullet_land_extract_trace(&f, &t, s, &o)) {
      bfm_fail(cmd);
      code = BFM_EXIT_FAIL;
      bf_surface_free(s);
      continue;
    }
    char fb[160];
    double weight = bf_land_quality(f);
    const char *q = land_quality(fb, sizeof fb, f, weight);
    if (json) {
      printf("%s{\"path\":", first ? "" : ",");
      bfm_json_str(stdout, path);
      printf(",\"land\":%d,\"striae_along\":\"%s\",\"spacing_um\":%.4f,\"points\":%d,"
             "\"groove_left_um\":%.1f,\"groove_right_um\":%.1f,\"grooves_found\":%d,"
             "\"crosscut_um\":%.1f,\"agreement\":%.3f,\"roughness_um\":%.3f,\"valid_fraction\":%.3f,"
             "\"quality\":\"%s\",\"weight\":%.3f,\"damaged\":%s}",
             f->land, f->params[BF_BP_ORIENT] == BF_STRIAE_X ? "x" : "y", f->dx, f->nx,
             f->params[BF_BP_GROOVE_LEFT], f->params[BF_BP_GROOVE_RIGHT], (int)f->params[BF_BP_GROOVES],
             f->params[BF_BP_CROSSCUT], f->params[BF_BP_AGREE], f->params[BF_BP_ROUGH],
             f->valid_fraction, q, weight, weight < BF_LAND_DAMAGED ? "true" : "false");
      first = 0;
    } else
      printf("%s: land %d, striae along %s, signature %d points at %.4f um (%.0f um), grooves cut at "
             "%.0f and %.0f um of %.0f, crosscut at %.0f um (agreement %.2f), roughness %.3f um, %s\n",
             path, f->land, f->params[BF_BP_ORIENT] == BF_STRIAE_X ? "X" : "Y", f->nx, f->dx,
             f->nx * f->dx, f->params[BF_BP_GROOVE_LEFT], f->params[BF_BP_GROOVE_RIGHT],
             f->params[BF_BP_LENGTH], f->params[BF_BP_CROSSCUT], f->params[BF_BP_AGREE],
             f->params[BF_BP_ROUGH], q);
    if (show) {
      const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
      char p[4096];
      snprintf(p, sizeof p, "%s/%.*s.png", show, (int)(strlen(base) > 4 ? strlen(base) - 4 : strlen(base)), base);
      if (draw_land(p, &t, f)) {
        bfm_fail(cmd);
        code = BFM_EXIT_FAIL;
      }
    }
    bf_bullet_trace_clear(&t);
    bf_feature_free(f);
    bf_surface_free(s);
  }
  if (json)
    printf("]\n");
  bf_scanset_clear(&set);
  return code;
}
