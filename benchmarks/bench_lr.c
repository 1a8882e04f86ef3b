/* Likelihood-ratio calibration: leave-one-study-out evaluation and the fit of the built-in
 * models (engine/bf_lr.h, the table in engine/lr.c).
 *
 *   bench_lr [--out DIR]   scores every Fadul and DFSC cartridge pair (CMC) and every Hamby 252
 *                          and Hamby 44 cross-bullet land pair; then per split (train on one
 *                          study, test on the other): Cllr, Cllr_min (PAV), rates of misleading
 *                          evidence; Tippett plots to DIR/tippett.png (default: .); finally fits
 *                          on all data and prints the models as the C table of lr.c
 *   bench_lr --quick       the first 10 Fadul scans only (45 pairs), for a fast look
 *   bench_lr --scores F    keeps the cartridge pair scores in F: read when F exists, else
 *                          computed and written (the CMC of 785 pairs is the slow part)
 * Land pairs: every pair of lands from different bullets of one study; same = same land_group of
 * KEY.csv. Bullet pairs: every pair of bullets of one study (Hamby 252: barrel 1 bullets 1 and 2
 * and the single lands of barrels 2 and 4; Hamby 44: barrel 1 bullets 1 and 2). */
#include "bf_breechface.h"
#include "bf_bullet.h"
#include "bf_cmc.h"
#include "bf_cv.h"
#include "bf_error.h"
#include "bf_lr.h"
#include "bf_striae.h"
#include "bf_x3p.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXS 64
typedef struct scan {
  char path[1200], name[200], study[32], source[64], group[64];
  int bullet, land;
  bf_feature *f;
  bf_cmc_prep *p;
} scan;

/* Rows of KEY.csv whose path starts with prefix. */
static int load_key(scan *v, int max, const char *data, const char *prefix)
{
  char key[1200], line[2048];
  snprintf(key, sizeof key, "%s/KEY.csv", data);
  FILE *fp = fopen(key, "r");
  if (!fp) {
    fprintf(stderr, "cannot open %s\n", key);
    return -1;
  }
  int n = 0;
  while (fgets(line, sizeof line, fp) && n < max) {
    if (strncmp(line, prefix, strlen(prefix)))
      continue;
    char *fld[8] = {0}, *p = line;
    int nf = 0;
    while (nf < 8) { /* empty fields kept (land_group is empty for cartridges) */
      fld[nf++] = p;
      char *c = strpbrk(p, ",\n");
      if (!c)
        break;
      int end = *c == '\n';
      *c = 0;
      if (end)
        break;
      p = c + 1;
    }
    if (nf < 5)
      continue;
    scan *s = &v[n];
    memset(s, 0, sizeof *s);
    const char *base = strrchr(fld[0], '/') ? strrchr(fld[0], '/') + 1 : fld[0];
    if (snprintf(s->path, sizeof s->path, "%s/%s", data, fld[0]) >= (int)sizeof s->path ||
        snprintf(s->name, sizeof s->name, "%s", base) >= (int)sizeof s->name)
      continue; /* a path too long for the table: not a KEY.csv row we can use */
    snprintf(s->study, sizeof s->study, "%s", fld[2]);
    snprintf(s->source, sizeof s->source, "%s", fld[3]);
    snprintf(s->group, sizeof s->group, "%s", fld[4]);
    const char *b = strstr(base, "Barrel"), *u = strstr(base, "Bullet"), *d = strstr(base, "Land");
    s->bullet = (b ? atoi(b + 6) : 0) * 10 + (u ? atoi(u + 6) : 0);
    s->land = d ? atoi(d + 4) : 0;
    n++;
  }
  fclose(fp);
  return n;
}

static int extract(scan *s, int kind)
{
  bf_surface *srf = NULL;
  int rc = bf_x3p_read(&srf, s->path, NULL);
  if (!rc && kind == BF_KIND_CARTRIDGE) {
    bf_breechface_opts o = BF_BREECHFACE_OPTS_INIT;
    rc = bf_breechface_extract(&s->f, srf, &o);
    bf_cmc_opts co = BF_CMC_OPTS_INIT;
    if (!rc)
      rc = bf_cmc_prep_new(&s->p, s->f, &co);
  } else if (!rc) {
    bf_bullet_opts o = BF_BULLET_OPTS_INIT;
    o.land = s->land;
    rc = bf_bullet_land_extract(&s->f, srf, &o);
  }
  bf_surface_free(srf);
  if (rc)
    fprintf(stderr, "%s: %s\n", s->path, bf_error_last());
  return rc;
}

/* One scored pair. */
typedef struct pr {
  int study;   /* 0 / 1: the two studies of a kind */
  int same;
  int c, n;    /* cartridge: CMC count and cells */
  double s;    /* bullet land or bullet pair: score */
  double l10;  /* held-out log10 LR */
} pr;

/* The K013sA1 raw and processed files are one case: not a pair. */
static int same_case(const scan *a, const scan *b)
{
  return !strncmp(a->name, "K013sA1", 7) && !strncmp(b->name, "K013sA1", 7);
}

static int cartridge_pairs(pr **out, const char *data, int quick, const char *cache)
{
  FILE *cf = cache ? fopen(cache, "r") : NULL;
  if (cf) {
    pr *p = calloc(4096, sizeof *p);
    int np = 0;
    while (np < 4096 && fscanf(cf, "%d %d %d %d", &p[np].study, &p[np].same, &p[np].c, &p[np].n) == 4)
      np++;
    fclose(cf);
    printf("  %d cartridge pair scores read from %s\n", np, cache);
    *out = p;
    return np;
  }
  static scan v[MAXS];
  int nf = load_key(v, 48, data, "cartridge/fadul/");
  if (nf < 0)
    return -1;
  if (quick && nf > 10)
    nf = 10;
  int nd = load_key(v + nf, MAXS - nf, data, "cartridge/dfsc-pair/");
  if (nd < 0)
    return -1;
  int n = nf + nd, bad = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : bad)
  for (int i = 0; i < n; i++)
    bad += extract(&v[i], BF_KIND_CARTRIDGE) != 0;
  if (bad)
    return -1;
  int np = 0;
  pr *p = calloc((size_t)n * n, sizeof *p);
  int *ia = malloc(sizeof *ia * (size_t)n * n), *ib = malloc(sizeof *ib * (size_t)n * n);
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if ((i < nf) == (j < nf) && !same_case(&v[i], &v[j])) {
        ia[np] = i;
        ib[np] = j;
        p[np].study = i >= nf;
        p[np].same = !strcmp(v[i].source, v[j].source);
        np++;
      }
  bf_cmc_opts o1 = BF_CMC_OPTS_INIT;
  o1.threads = 1;
#pragma omp parallel for schedule(dynamic) reduction(+ : bad)
  for (int k = 0; k < np; k++) {
    bf_cmc_result r;
    if (bf_cmc_compare_prep(&r, v[ia[k]].p, v[ib[k]].p, &o1)) {
      fprintf(stderr, "%s vs %s: %s\n", v[ia[k]].name, v[ib[k]].name, bf_error_last());
      bad++;
      continue;
    }
    int d = r.cmc_original[1] < r.cmc_original[0];
    p[k].c = (int)r.score;
    p[k].n = r.ncells[d];
    bf_cmc_result_clear(&r);
  }
  for (int k = 0; k < np; k++)
    if (p[k].study)
      printf("  dfsc: %s vs %s: %d CMCs of %d cells (%s)\n", v[ia[k]].name, v[ib[k]].name, p[k].c,
             p[k].n, p[k].same ? "same source" : "different source");
  for (int i = 0; i < n; i++) {
    bf_cmc_prep_free(v[i].p);
    bf_feature_free(v[i].f);
  }
  if (cache && !bad && (cf = fopen(cache, "w"))) {
    for (int k = 0; k < np; k++)
      fprintf(cf, "%d %d %d %d\n", p[k].study, p[k].same, p[k].c, p[k].n);
    fclose(cf);
  }
  free(ia);
  free(ib);
  *out = p;
  return bad ? -1 : np;
}

/* Land pairs (*lp) and bullet pairs (*bp) of both Hamby sets. */
static int bullet_pairs(pr **lp, int *nlp, pr **bp, int *nbp, const char *data)
{
  static scan v[MAXS];
  int n0 = load_key(v, 32, data, "bullet/hamby252/");
  int n1 = n0 < 0 ? -1 : load_key(v + n0, 32, data, "bullet/hamby44/");
  if (n1 < 0)
    return -1;
  int n = n0 + n1, bad = 0;
#pragma omp parallel for schedule(dynamic) reduction(+ : bad)
  for (int i = 0; i < n; i++)
    bad += extract(&v[i], BF_KIND_BULLET) != 0;
  if (bad)
    return -1;
  pr *p = calloc((size_t)n * n, sizeof *p);
  int np = 0;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      if ((i < n0) != (j < n0) || v[i].bullet == v[j].bullet)
        continue;
      bf_land_result r;
      if (bf_land_compare(&r, v[i].f, v[j].f, NULL) || !r.scored) {
        fprintf(stderr, "%s vs %s: %s\n", v[i].name, v[j].name, r.scored ? bf_error_last() : "not scored");
        continue;
      }
      p[np].study = i >= n0;
      p[np].same = !strcmp(v[i].group, v[j].group);
      p[np].s = r.score;
      np++;
    }
  *lp = p;
  *nlp = np;
  /* bullet pairs: group lands by bullet id within a study */
  pr *b = calloc(64, sizeof *b);
  int nb = 0;
  for (int st = 0; st < 2; st++) {
    int lo = st ? n0 : 0, hi = st ? n : n0, ids[16], ni = 0;
    for (int i = lo; i < hi; i++) {
      int k = 0;
      while (k < ni && ids[k] != v[i].bullet)
        k++;
      if (k == ni && ni < 16)
        ids[ni++] = v[i].bullet;
    }
    for (int x = 0; x < ni; x++)
      for (int y = x + 1; y < ni; y++) {
        const bf_feature *A[8], *B[8];
        int na = 0, nb2 = 0;
        for (int i = lo; i < hi; i++) {
          if (v[i].bullet == ids[x] && na < 8)
            A[na++] = v[i].f;
          if (v[i].bullet == ids[y] && nb2 < 8)
            B[nb2++] = v[i].f;
        }
        bf_bullet_result r;
        if (bf_bullet_compare(&r, A, na, B, nb2, NULL)) {
          fprintf(stderr, "bullet compare: %s\n", bf_error_last());
          continue;
        }
        b[nb].study = st;
        b[nb].same = ids[x] / 10 == ids[y] / 10; /* same barrel */
        b[nb].s = r.phase < 0 ? 0 : r.score;
        b[nb].n = r.phase < 0 ? 1 : r.phase_pairs[r.phase];
        printf("  %s bullet %d vs %d (%d x %d lands): SAM %.3f (%s)\n", st ? "hamby44" : "hamby252",
               ids[x], ids[y], na, nb2, b[nb].s, b[nb].same ? "same barrel" : "different barrels");
        nb++;
        bf_bullet_result_clear(&r);
      }
  }
  for (int i = 0; i < n; i++)
    bf_feature_free(v[i].f);
  *bp = b;
  *nbp = nb;
  return 0;
}

/* ---- evaluation ---- */

static void report(const char *title, pr *p, int np, int test_study)
{
  double *l = malloc(sizeof *l * (size_t)np);
  int *s = malloc(sizeof *s * (size_t)np), m = 0, nss = 0, nds = 0, mss = 0, mds = 0;
  double lo = 1e9, hi = -1e9;
  for (int k = 0; k < np; k++)
    if (p[k].study == test_study || test_study < 0) {
      l[m] = p[k].l10;
      s[m] = p[k].same;
      if (s[m]) {
        nss++;
        mss += l[m] < 0;
      } else {
        nds++;
        mds += l[m] > 0;
      }
      lo = fmin(lo, l[m]);
      hi = fmax(hi, l[m]);
      m++;
    }
  printf("  %-44s Cllr %.3f  Cllr_min %.3f  misleading: Hss %d/%d (LR<1)  Hds %d/%d (LR>1)"
         "  log10 LR in [%.2f, %.2f]\n", title, bf_lr_cllr(l, s, m), bf_lr_cllr_min(l, s, m), mss,
         nss, mds, nds, lo, hi);
  free(l);
  free(s);
}

/* ---- Tippett plot: for each hypothesis, the proportion of log10 LR >= x ---- */

static void px(uint32_t *img, int w, int h, int x, int y, uint32_t c)
{
  if (x >= 0 && y >= 0 && x < w && y < h)
    img[y * w + x] = c;
}
static void seg(uint32_t *img, int w, int h, double x0, double y0, double x1, double y1, uint32_t c)
{
  int n = (int)(fabs(x1 - x0) + fabs(y1 - y0)) + 1;
  for (int i = 0; i <= n; i++) {
    double t = (double)i / n;
    int x = (int)lround(x0 + t * (x1 - x0)), y = (int)lround(y0 + t * (y1 - y0));
    px(img, w, h, x, y, c);
    px(img, w, h, x + 1, y, c);
    px(img, w, h, x, y + 1, c);
  }
}

/* One panel at (ox, oy) of pw x ph pixels, x range [-4, 4] log10 LR. Hss blue, Hds red,
 * grid every unit, the LR = 1 line black. */
static void panel(uint32_t *img, int w, int h, int ox, int oy, int pw, int ph, const pr *p, int np)
{
  const double xmin = -4, xmax = 4;
  for (int y = oy; y < oy + ph; y++)
    for (int x = ox; x < ox + pw; x++)
      img[y * w + x] = 0xffffff;
  for (int g = (int)xmin; g <= (int)xmax; g++) {
    double x = ox + (g - xmin) / (xmax - xmin) * pw;
    seg(img, w, h, x, oy, x, oy + ph - 1, g ? 0xdddddd : 0x000000);
  }
  for (int q = 0; q <= 4; q++)
    seg(img, w, h, ox, oy + q * (ph - 1) / 4.0, ox + pw - 1, oy + q * (ph - 1) / 4.0, 0xdddddd);
  for (int hyp = 0; hyp < 2; hyp++) {
    int tot = 0;
    for (int k = 0; k < np; k++)
      tot += p[k].same == hyp;
    if (!tot)
      continue;
    double prevy = -1, prevx = 0;
    for (int i = 0; i <= pw; i++) {
      double x = xmin + (xmax - xmin) * i / pw;
      int c = 0;
      for (int k = 0; k < np; k++)
        c += p[k].same == hyp && p[k].l10 >= x;
      double y = oy + (ph - 1) * (1 - (double)c / tot);
      if (prevy >= 0)
        seg(img, w, h, prevx, prevy, ox + i, y, hyp ? 0x1f4fd0 : 0xd02020);
      prevx = ox + i;
      prevy = y;
    }
  }
}

static void tippett(const char *path, const pr *cp, int ncp, const pr *lp, int nlp)
{
  int w = 1000, h = 420;
  uint32_t *img = malloc(sizeof *img * (size_t)w * h);
  for (int i = 0; i < w * h; i++)
    img[i] = 0x808080;
  panel(img, w, h, 20, 20, 470, 380, cp, ncp);
  panel(img, w, h, 510, 20, 470, 380, lp, nlp);
  if (bf_cv_write_rgb(path, img, w, h))
    fprintf(stderr, "%s: %s\n", path, bf_error_last());
  else
    printf("Tippett plot: %s (left: cartridges, right: bullet lands; x = log10 LR from -4 to 4, "
           "y = proportion with log10 LR >= x; blue same source, red different source)\n", path);
  free(img);
}

static void split_arrays(const pr *p, int np, int study, int **c, int **n, int **s, double **v,
                         int *m)
{
  *c = malloc(sizeof **c * (size_t)np);
  *n = malloc(sizeof **n * (size_t)np);
  *s = malloc(sizeof **s * (size_t)np);
  *v = malloc(sizeof **v * (size_t)np);
  *m = 0;
  for (int k = 0; k < np; k++)
    if (study < 0 || p[k].study == study) {
      (*c)[*m] = p[k].c;
      (*n)[*m] = p[k].n;
      (*s)[*m] = p[k].same;
      (*v)[*m] = p[k].s;
      (*m)++;
    }
}

/* Bullet model from the land pairs of one study (study < 0: all). */
static int fit_bullet(bf_lr_model *m, const pr *lp, int nlp, int study, const char *ref)
{
  double *ss = malloc(sizeof *ss * (size_t)nlp), *ds = malloc(sizeof *ds * (size_t)nlp);
  int nss = 0, nds = 0;
  for (int k = 0; k < nlp; k++)
    if (study < 0 || lp[k].study == study) {
      if (lp[k].same)
        ss[nss++] = lp[k].s;
      else
        ds[nds++] = lp[k].s;
    }
  int rc = bf_lr_fit_bullet(m, ss, nss, ds, nds, 6, 20000, 1, ref);
  free(ss);
  free(ds);
  return rc;
}

static void print_model(const char *var, const bf_lr_model *m)
{
  if (m->method == BF_LR_BETABINOM)
    printf("static const bf_lr_model %s = {\n  .kind = BF_KIND_CARTRIDGE, .method = BF_LR_BETABINOM,\n"
           "  .p_ss = %.6g, .rho_ss = %.6g, .p_ds = %.6g, .rho_ds = %.6g,\n"
           "  .ncells = %d, .n_ss = %g, .n_ds = %g,\n  .reference = \"%s\"};\n", var, m->p_ss,
           m->rho_ss, m->p_ds, m->rho_ds, m->ncells, m->n_ss, m->n_ds, m->reference);
  else {
    printf("static const bf_lr_model %s = {\n  .kind = BF_KIND_BULLET, .method = BF_LR_LOGIT,\n"
           "  .a = {", var);
    for (int k = 0; k < BF_LR_MAXK; k++)
      printf("%s%.6g", k ? ", " : "", m->a[k]);
    printf("},\n  .b = {");
    for (int k = 0; k < BF_LR_MAXK; k++)
      printf("%s%.6g", k ? ", " : "", m->b[k]);
    printf("},\n  .n_ss = %g, .n_ds = %g,\n  .reference = \"%s\"};\n", m->n_ss, m->n_ds,
           m->reference);
  }
}

/* Land-level model: one logistic for every k (a land pair is k = 1), bounds from its pairs. */
static void land_model(bf_lr_model *m, const double *v, const int *s, int np)
{
  memset(m, 0, sizeof *m);
  m->kind = BF_KIND_BULLET;
  m->method = BF_LR_LOGIT;
  m->reference = "land pairs";
  if (bf_lr_fit_logit(&m->a[0], &m->b[0], v, s, np, 1e-3))
    fprintf(stderr, "%s\n", bf_error_last());
  for (int k = 0; k < np; k++)
    s[k] ? m->n_ss++ : m->n_ds++;
}

/* log10 LR of one pair under m, bounded as the library bounds it. */
static double bounded(const bf_lr_model *m, const pr *p)
{
  bf_lr r;
  int kind = m->method == BF_LR_BETABINOM ? BF_KIND_CARTRIDGE : BF_KIND_BULLET;
  if (bf_lr_score(&r, kind, kind == BF_KIND_CARTRIDGE ? p->c : p->s, kind == BF_KIND_CARTRIDGE ? p->n : (p->n ? p->n : 1), m))
    return NAN;
  return r.log10_lr;
}

int main(int argc, char **argv)
{
  const char *outdir = ".", *cache = NULL;
  int quick = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--out") && i + 1 < argc)
      outdir = argv[++i];
    else if (!strcmp(argv[i], "--scores") && i + 1 < argc)
      cache = argv[++i];
    else if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else {
      fprintf(stderr, "usage: bench_lr [--out DIR] [--quick] [--scores FILE]\n");
      return 2;
    }
  }
  char data[1100];
  snprintf(data, sizeof data, "%s/data", getenv("BF_SHARED") ? getenv("BF_SHARED") : BF_SHARED_DIR);
  pr *cp = NULL, *lp = NULL, *bp = NULL;
  int nlp = 0, nbp = 0;
  printf("== scoring cartridge pairs (Fadul%s, DFSC pair)\n", quick ? " first 10" : "");
  int ncp = cartridge_pairs(&cp, data, quick, cache);
  printf("== scoring bullet land and bullet pairs (Hamby 252, Hamby 44)\n");
  if (ncp < 0 || bullet_pairs(&lp, &nlp, &bp, &nbp, data)) {
    fprintf(stderr, "scoring failed\n");
    return 1;
  }
  static const char *cname[2] = {"fadul", "dfsc"}, *bname[2] = {"hamby252", "hamby44"};
  printf("== leave one study out\n");
  for (int test = 0; test < 2; test++) {
    int *c, *n, *s, m;
    double *v;
    bf_lr_model cm, bm, lm;
    char title[160];
    split_arrays(cp, ncp, 1 - test, &c, &n, &s, &v, &m);
    if (bf_lr_fit_cmc(&cm, c, n, s, m, cname[1 - test]))
      fprintf(stderr, "%s\n", bf_error_last());
    free(c), free(n), free(s), free(v);
    for (int k = 0; k < ncp; k++)
      cp[k].l10 = bounded(&cm, &cp[k]);
    printf(" cartridge model fitted on %s: p_ss %.4f rho_ss %.4f p_ds %.4f rho_ds %.4f, bounds "
           "[%.2f, %.2f]\n", cname[1 - test], cm.p_ss, cm.rho_ss, cm.p_ds, cm.rho_ds,
           -log10(cm.n_ss + 1), log10(cm.n_ds + 1));
    snprintf(title, sizeof title, "cartridges, test %s (train %s)", cname[test], cname[1 - test]);
    report(title, cp, ncp, test);
    /* land level: weighted logistic on the land score */
    split_arrays(lp, nlp, 1 - test, &c, &n, &s, &v, &m);
    land_model(&lm, v, s, m);
    free(c), free(n), free(s), free(v);
    for (int k = 0; k < nlp; k++)
      lp[k].l10 = bounded(&lm, &lp[k]);
    printf(" land model fitted on %s: ln LR = %.3f + %.3f logit(land score), bounds [%.2f, %.2f]\n",
           bname[1 - test], lm.a[0], lm.b[0], -log10(lm.n_ss + 1), log10(lm.n_ds + 1));
    snprintf(title, sizeof title, "bullet lands, test %s (train %s)", bname[test], bname[1 - test]);
    report(title, lp, nlp, test);
    /* bullet level: the simulated-SAM model */
    if (fit_bullet(&bm, lp, nlp, 1 - test, bname[1 - test]))
      fprintf(stderr, "%s\n", bf_error_last());
    for (int k = 0; k < nbp; k++)
      bp[k].l10 = bounded(&bm, &bp[k]);
    printf(" bullet model fitted on %s land pairs: ln LR = a_k + b_k logit(SAM), k = 1..6:",
           bname[1 - test]);
    for (int k = 0; k < BF_LR_MAXK; k++)
      printf(" (%.2f, %.2f)", bm.a[k], bm.b[k]);
    printf("\n");
    snprintf(title, sizeof title, "bullets, test %s (train %s)", bname[test], bname[1 - test]);
    report(title, bp, nbp, test);
    for (int k = 0; k < nbp; k++)
      if (bp[k].study == test)
        printf("    SAM %.3f -> log10 LR %.2f (%s)\n", bp[k].s, bp[k].l10,
               bp[k].same ? "same barrel" : "different barrels");
  }
  /* Tippett plot of the held-out values: recompute each study's values with the other's model */
  for (int test = 0; test < 2; test++) {
    int *c, *n, *s, m;
    double *v;
    bf_lr_model cm, lm;
    split_arrays(cp, ncp, 1 - test, &c, &n, &s, &v, &m);
    bf_lr_fit_cmc(&cm, c, n, s, m, "");
    free(c), free(n), free(s), free(v);
    for (int k = 0; k < ncp; k++)
      if (cp[k].study == test)
        cp[k].l10 = bounded(&cm, &cp[k]);
    split_arrays(lp, nlp, 1 - test, &c, &n, &s, &v, &m);
    land_model(&lm, v, s, m);
    free(c), free(n), free(s), free(v);
    for (int k = 0; k < nlp; k++)
      if (lp[k].study == test)
        lp[k].l10 = bounded(&lm, &lp[k]);
  }
  printf("== pooled held-out values (each study scored by the model of the other)\n");
  report("cartridges, pooled", cp, ncp, -1);
  report("bullet lands, pooled", lp, nlp, -1);
  char path[1300];
  snprintf(path, sizeof path, "%s/tippett.png", outdir);
  tippett(path, cp, ncp, lp, nlp);

  /* the built-in models: fitted on everything */
  printf("== built-in models (all data); paste into engine/lr.c\n");
  {
    int *c, *n, *s, m;
    double *v;
    bf_lr_model cm, bm;
    split_arrays(cp, ncp, -1, &c, &n, &s, &v, &m);
    bf_lr_fit_cmc(&cm, c, n, s, m, "fadul+dfsc-pair CMC (full circle), fitted 2026-11-29");
    free(c), free(n), free(s), free(v);
    fit_bullet(&bm, lp, nlp, -1, "hamby252+hamby44 land pairs (SAM simulated), fitted 2026-11-28");
    print_model("BF_LR_CARTRIDGE", &cm);
    print_model("BF_LR_BULLET", &bm);
    const bf_lr_model *bc = bf_lr_model_builtin(BF_KIND_CARTRIDGE);
    int same_table = fabs(bc->p_ss - cm.p_ss) < 1e-5 && fabs(bc->p_ds - cm.p_ds) < 1e-6;
    const bf_lr_model *bb = bf_lr_model_builtin(BF_KIND_BULLET);
    same_table = same_table && fabs(bb->a[5] - bm.a[5]) < 1e-4 && fabs(bb->b[0] - bm.b[0]) < 1e-4;
    printf("built-in tables %s this fit\n", same_table ? "match" : "DIFFER FROM");
    printf("built-in models at typical scores:\n");
    for (int cmc = 0; cmc <= 20; cmc += 2) {
      bf_lr r;
      bf_lr_score(&r, BF_KIND_CARTRIDGE, cmc, 0, NULL);
      printf("  %2d CMCs of %d cells: log10 LR %.2f%s\n", cmc, bc->ncells, r.log10_lr,
             r.capped ? " (bounded)" : "");
    }
    for (int k = 1; k <= BF_LR_MAXK; k += BF_LR_MAXK - 1)
      for (double sam = 0.1; sam < 1.0; sam += 0.2) {
        bf_lr r;
        bf_lr_score(&r, BF_KIND_BULLET, sam, k, NULL);
        printf("  SAM %.1f over %d land pair%s: log10 LR %.2f%s\n", sam, k, k > 1 ? "s" : "",
               r.log10_lr, r.capped ? " (bounded)" : "");
      }
  }
  free(cp);
  free(lp);
  free(bp);
  return 0;
}
