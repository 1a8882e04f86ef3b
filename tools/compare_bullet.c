/* bfm compare / bfm features for bullets: land signatures, land matrix, SAM phase, PNG plots. */
#include "bf_bullet.h"
#include "bf_cv.h"
#include "bf_error.h"
#include "bf_lr.h"
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

/* ---- a tiny RGB canvas for line plots ---------------------------------------------------- */

typedef struct canvas {
  int w, h;
  uint32_t *px;
} canvas;

static void put(canvas *c, int x, int y, uint32_t col)
{
  if (x >= 0 && x < c->w && y >= 0 && y < c->h)
    c->px[(size_t)y * c->w + x] = col;
}

static void line(canvas *c, int x0, int y0, int x1, int y1, uint32_t col)
{
  int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    put(c, x0, y0, col);
    if (x0 == x1 && y0 == y1)
      break;
    int e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

/* Plots n values into the panel [py, py + ph) with a shared vertical range [lo, hi]. */
static void plot(canvas *c, int py, int ph, const float *v, int n, double lo, double hi, uint32_t col)
{
  int px = -1, pyv = 0;
  for (int i = 0; i < n; i++) {
    if (!isfinite(v[i])) {
      px = -1;
      continue;
    }
    int x = n > 1 ? (int)((double)i * (c->w - 1) / (n - 1)) : 0;
    int y = py + ph - 1 - (int)((v[i] - lo) / (hi - lo) * (ph - 1));
    if (px >= 0)
      line(c, px, pyv, x, y, col);
    else
      put(c, x, y, col);
    px = x;
    pyv = y;
  }
}

static void range(const float *v, int n, double *lo, double *hi)
{
  for (int i = 0; i < n; i++)
    if (isfinite(v[i])) {
      if (v[i] < *lo)
        *lo = v[i];
      if (v[i] > *hi)
        *hi = v[i];
    }
}

static int canvas_new(canvas *c, int w, int h)
{
  c->w = w;
  c->h = h;
  c->px = malloc(sizeof *c->px * (size_t)w * h);
  if (!c->px)
    return bf_error_set(BF_ENOMEM, "out of memory for a %d x %d image", w, h);
  for (size_t i = 0; i < (size_t)w * h; i++)
    c->px[i] = 0xffffff;
  return 0;
}

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

/* Land number from a file name ("...Land3.x3p", "land_3.x3p"), 0 when none. */
static int land_number(const char *path)
{
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  for (const char *p = base; *p; p++)
    if (!strncasecmp(p, "land", 4)) {
      const char *q = p + 4;
      while (*q == '_' || *q == '-' || *q == ' ')
        q++;
      if (isdigit((unsigned char)*q))
        return atoi(q);
    }
  return 0;
}

static int cmp_path(const void *a, const void *b)
{
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  int lx = land_number(x), ly = land_number(y);
  if (lx != ly)
    return lx - ly;
  return strcmp(x, y);
}

static int add_path(bullet *b, const char *p)
{
  if (b->n == MAX_LANDS)
    return bf_error_set(BF_ELIMIT, "more than %d lands in one bullet", MAX_LANDS);
  if (!(b->path[b->n] = strdup(p)))
    return bf_error_set(BF_ENOMEM, "out of memory");
  b->n++;
  return 0;
}

/* A folder of land scans (sorted by land number, then name) or a comma-separated list. */
static int bullet_list(bullet *b, const char *spec)
{
  struct stat st;
  int rc = 0;
  memset(b, 0, sizeof *b);
  if (stat(spec, &st) == 0 && S_ISDIR(st.st_mode)) {
    DIR *d = opendir(spec);
    if (!d)
      return bf_error_set(BF_EIO, "%s: cannot open folder", spec);
    struct dirent *e;
    while ((e = readdir(d)) && !rc) {
      size_t l = strlen(e->d_name);
      if (l > 4 && !strcasecmp(e->d_name + l - 4, ".x3p")) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", spec, e->d_name);
        rc = add_path(b, p);
      }
    }
    closedir(d);
    if (!rc && b->n == 0)
      rc = bf_error_set(BF_ENOTFOUND, "%s: no .x3p land scans in this folder", spec);
    if (!rc)
      qsort(b->path, b->n, sizeof *b->path, cmp_path);
  } else {
    char *copy = strdup(spec), *save = NULL;
    if (!copy)
      return bf_error_set(BF_ENOMEM, "out of memory");
    for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save))
      if (*t)
        rc = add_path(b, t);
    free(copy);
    if (!rc && b->n == 0)
      rc = bf_error_set(BF_EINVAL, "'%s' names no land scans", spec);
  }
  if (rc)
    bullet_free(b);
  return rc;
}

/* Reads and extracts every land; an unreadable or unusable land becomes a missing land (NULL)
 * with a warning. Fails only when no land is usable. */
static int bullet_load(bullet *b, const char *spec, const bf_bullet_opts *base, const char *cmd)
{
  int rc = bullet_list(b, spec), ok = 0;
  if (rc)
    return rc;
  int numbered = 1;
  for (int i = 0; i < b->n; i++)
    if (!land_number(b->path[i]))
      numbered = 0;
  for (int i = 0; i < b->n; i++) {
    bf_surface *s = NULL;
    bf_bullet_opts o = *base;
    o.land = numbered ? land_number(b->path[i]) : i + 1;
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
  static const struct {
    int bit;
    const char *name;
  } names[] = {{BF_Q_MOSTLY_MISSING, "mostly-missing"}, {BF_Q_NO_REGION, "no-grooves"},
               {BF_Q_TOO_SHORT, "too-short"},           {BF_Q_SPACING, "spacing"},
               {BF_Q_NO_MARKS, "no-striae"},            {BF_Q_ORIENTATION, "orientation"}};
  buf[0] = 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (q & names[i].bit) {
      if (buf[0])
        strncat(buf, ",", len - strlen(buf) - 1);
      strncat(buf, names[i].name, len - strlen(buf) - 1);
    }
  if (!buf[0])
    snprintf(buf, len, "ok");
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

int bfm_draw_bullet_pair(const char *path, const bf_bullet_result *r, bf_feature *const *fa_all,
                         bf_feature *const *fb_all)
{
  int pairs[MAX_LANDS][2], np = 0, rc = 0;
  for (int i = 0; i < r->na; i++)
    for (int j = 0; j < r->nb; j++)
      if (r->phase >= 0 && (r->pos_a[i] + r->phase) % r->n == r->pos_b[j] && r->lands[i * r->nb + j].scored &&
          np < MAX_LANDS) {
        pairs[np][0] = i;
        pairs[np][1] = j;
        np++;
      }
  if (!np)
    return bf_error_set(BF_ENOTFOUND, "%s: no scored land pair on the best phase to draw", path);
  canvas c = {0};
  int ph = 140;
  if ((rc = canvas_new(&c, 1200, ph * np)))
    return rc;
  for (int k = 0; k < np && !rc; k++) {
    float *sa = NULL, *sb = NULL;
    int n = 0;
    const bf_feature *fa = fa_all[pairs[k][0]], *fb = fb_all[pairs[k][1]];
    if ((rc = bf_land_aligned(&sa, &sb, &n, fa, fb, &r->lands[pairs[k][0] * r->nb + pairs[k][1]])))
      break;
    double lo = 1e30, hi = -1e30;
    range(sa, n, &lo, &hi);
    range(sb, n, &lo, &hi);
    if (!(hi > lo)) {
      lo = -1;
      hi = 1;
    }
    for (int x = 0; x < c.w; x++)
      put(&c, x, k * ph, 0x808080);
    plot(&c, k * ph + 4, ph - 8, sa, n, lo, hi, 0x1f4fd0);
    plot(&c, k * ph + 4, ph - 8, sb, n, lo, hi, 0xd02f1f);
    free(sa);
    free(sb);
  }
  if (!rc)
    rc = bf_cv_write_rgb(path, c.px, c.w, c.h);
  free(c.px);
  return rc;
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
    else if ((k = orient_opt(&bo, argc, argv, &i)) != 0) {
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
  if (json) {
    printf("{\"a\":");
    bfm_json_str(stdout, ops[0]);
    printf(",\"b\":");
    bfm_json_str(stdout, ops[1]);
    printf(",\"lands_a\":[");
    for (int i = 0; i < A.n; i++) {
      printf("%s{\"path\":", i ? "," : "");
      bfm_json_str(stdout, A.path[i]);
      printf(",\"position\":%d,\"quality\":\"%s\"}", r.pos_a[i] + 1,
             A.f[i] ? flag_names(A.f[i]->quality_flags, fb, sizeof fb) : "unreadable");
    }
    printf("],\"lands_b\":[");
    for (int j = 0; j < B.n; j++) {
      printf("%s{\"path\":", j ? "," : "");
      bfm_json_str(stdout, B.path[j]);
      printf(",\"position\":%d,\"quality\":\"%s\"}", r.pos_b[j] + 1,
             B.f[j] ? flag_names(B.f[j]->quality_flags, fb, sizeof fb) : "unreadable");
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
    printf("],\"phase\":%d,\"score\":%.4f,\"margin\":%.4f,\"match\":%s,\"lr\":%.6g,\"log10_lr\":%.4f,"
           "\"lr_reference\":\"%s\",\"min_log10_lr\":%g}\n", r.phase, r.score, r.margin,
           lr.match ? "true" : "false", lr.lr, lr.log10_lr, lr.reference,
           ((bf_lr_rule)BF_LR_RULE_INIT).min_log10_lr);
  } else {
    printf("land scores (rows: %s, columns: %s; '-' = not scored)\n", ops[0], ops[1]);
    printf("        ");
    for (int j = 0; j < r.nb; j++)
      printf("   B%-3d", r.pos_b[j] + 1);
    printf("\n");
    for (int i = 0; i < r.na; i++) {
      printf("  A%-4d", r.pos_a[i] + 1);
      for (int j = 0; j < r.nb; j++) {
        const bf_land_result *l = &r.lands[i * r.nb + j];
        int on = r.phase >= 0 && (r.pos_a[i] + r.phase) % r.n == r.pos_b[j];
        if (l->scored)
          printf("  %c%.3f", on ? '*' : ' ', l->score);
        else
          printf("  %6s", "-");
      }
      printf("   %s\n", A.f[i] ? flag_names(A.f[i]->quality_flags, fb, sizeof fb) : "unreadable");
    }
    printf("  B quality:");
    for (int j = 0; j < r.nb; j++)
      printf(" B%d %s", r.pos_b[j] + 1, B.f[j] ? flag_names(B.f[j]->quality_flags, fb, sizeof fb) : "unreadable");
    printf("\nphase scores:");
    for (int p = 0; p < r.nphase; p++)
      isfinite(r.phase_score[p]) ? printf(" %d:%.3f", p, r.phase_score[p]) : printf(" %d:-", p);
    printf("\n");
    if (r.phase < 0)
      printf("no land pair could be scored: no bullet score\n");
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
  canvas c = {0};
  int rc = canvas_new(&c, 1200, 400);
  if (rc)
    return rc;
  double lo = 1e30, hi = -1e30;
  range(t->crosscut, t->n, &lo, &hi);
  if (!(hi > lo)) {
    lo = -1;
    hi = 1;
  }
  plot(&c, 4, 192, t->crosscut, t->n, lo, hi, 0x202020);
  plot(&c, 4, 192, t->curve, t->n, lo, hi, 0x1f9f3f);
  for (int k = 0; k < 2; k++) {
    int idx = k ? t->right : t->left;
    int x = t->n > 1 ? (int)((double)idx * (c.w - 1) / (t->n - 1)) : 0;
    line(&c, x, 0, x, 199, 0xd02f1f);
  }
  for (int x = 0; x < c.w; x++)
    put(&c, x, 200, 0x808080);
  lo = 1e30;
  hi = -1e30;
  range(f->z, f->nx, &lo, &hi);
  if (!(hi > lo)) {
    lo = -1;
    hi = 1;
  }
  plot(&c, 204, 192, f->z, f->nx, lo, hi, 0x1f4fd0);
  rc = bf_cv_write_rgb(path, c.px, c.w, c.h);
  free(c.px);
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
  if (json)
    printf("[");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--kind") || !strcmp(argv[i], "--show") || !strcmp(argv[i], "--orient")) {
      i++;
      continue;
    }
    if (argv[i][0] == '-')
      continue;
    bf_surface *s = NULL;
    bf_feature *f = NULL;
    bf_bullet_trace t = {0};
    bf_bullet_opts o = bo;
    o.land = land_number(argv[i]);
    if (bf_x3p_read(&s, argv[i], NULL) || bf_bullet_land_extract_trace(&f, &t, s, &o)) {
      bfm_fail(cmd);
      code = BFM_EXIT_FAIL;
      bf_surface_free(s);
      continue;
    }
    char fb[128];
    const char *q = flag_names(f->quality_flags, fb, sizeof fb);
    if (json) {
      printf("%s{\"path\":", first ? "" : ",");
      bfm_json_str(stdout, argv[i]);
      printf(",\"land\":%d,\"striae_along\":\"%s\",\"spacing_um\":%.4f,\"points\":%d,"
             "\"groove_left_um\":%.1f,\"groove_right_um\":%.1f,\"grooves_found\":%d,"
             "\"crosscut_um\":%.1f,\"agreement\":%.3f,\"roughness_um\":%.3f,\"valid_fraction\":%.3f,"
             "\"quality\":\"%s\"}",
             f->land, f->params[BF_BP_ORIENT] == BF_STRIAE_X ? "x" : "y", f->dx, f->nx,
             f->params[BF_BP_GROOVE_LEFT], f->params[BF_BP_GROOVE_RIGHT], (int)f->params[BF_BP_GROOVES],
             f->params[BF_BP_CROSSCUT], f->params[BF_BP_AGREE], f->params[BF_BP_ROUGH],
             f->valid_fraction, q);
      first = 0;
    } else
      printf("%s: land %d, striae along %s, signature %d points at %.4f um (%.0f um), grooves cut at "
             "%.0f and %.0f um of %.0f, crosscut at %.0f um (agreement %.2f), roughness %.3f um, %s\n",
             argv[i], f->land, f->params[BF_BP_ORIENT] == BF_STRIAE_X ? "X" : "Y", f->nx, f->dx,
             f->nx * f->dx, f->params[BF_BP_GROOVE_LEFT], f->params[BF_BP_GROOVE_RIGHT],
             f->params[BF_BP_LENGTH], f->params[BF_BP_CROSSCUT], f->params[BF_BP_AGREE],
             f->params[BF_BP_ROUGH], q);
    if (show) {
      const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
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
  return code;
}
