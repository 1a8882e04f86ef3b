/* Firing-pin impression: extraction from raw scans and the ACCF comparison (synthetic raw
 * cases always; Fadul raw and the DFSC pair when ../shared is present). */
#include "bf_breechface.h"
#include "bf_cmc.h"
#include "bf_error.h"
#include "bf_fft.h"
#include "bf_firingpin.h"
#include "bf_pin.h"
#include "bf_synth.h"
#include "bf_test.h"
#include "bf_x3p.h"

static bf_feature *pin_of(const bf_surface *s)
{
  bf_feature *f = NULL;
  if (bf_firingpin_extract(&f, s, NULL))
    fprintf(stderr, "  no pin: %s\n", bf_error_last());
  return f;
}

static double accf(const bf_feature *a, const bf_feature *b, double theta, double *rot)
{
  bf_pin_result r;
  if (bf_pin_compare(&r, a, b, theta, NULL))
    return NAN;
  if (rot)
    *rot = r.rotation;
  return r.accf;
}

static double angdiff(double a, double b)
{
  double d = fmod(a - b, 360.0);
  if (d > 180)
    d -= 360;
  if (d < -180)
    d += 360;
  return fabs(d);
}

static void test_synthetic(void)
{
  bf_synth_opts so = BF_SYNTH_OPTS_INIT;
  so.processed = 0;
  so.max_rotation = 180;
  bf_synth *g = NULL;
  CHECK(bf_synth_new(&g, &so) == 0);
  bf_surface *s[4] = {NULL};
  bf_feature *f[4] = {NULL};
  int fa[4] = {0, 0, 1, 2}, fi[4] = {0, 1, 0, 0};
  bf_synth_truth tr[4];
  for (int i = 0; i < 4; i++) {
    CHECK(bf_synth_cartridge(&s[i], g, fa[i], fi[i], &tr[i]) == 0);
    CHECK((f[i] = pin_of(s[i])) != NULL);
  }
  if (f[0] && f[1] && f[2] && f[3]) {
    CHECK(f[0]->kind == BF_KIND_FIRINGPIN && f[0]->params[2] > 300);
    double r01 = 0, same = accf(f[0], f[1], NAN, &r01), d02 = accf(f[0], f[2], NAN, NULL),
           d03 = accf(f[0], f[3], NAN, NULL), d12 = accf(f[1], f[2], NAN, NULL);
    fprintf(stderr, "synthetic raw pin ACCF: same %.3f (rot %.0f, truth %.0f), different %.3f "
                    "%.3f %.3f\n", same, r01, tr[1].rotation_deg - tr[0].rotation_deg, d02, d03,
            d12);
    CHECKF(same > d02 && same > d03 && same > d12, "same %g vs %g %g %g", same, d02, d03, d12);
    CHECKF(same > 0.4, "same %g", same);
    /* reference -> target as the CMC (target point u_b = R(-theta) u_a): truth b - a */
    CHECKF(angdiff(r01, tr[1].rotation_deg - tr[0].rotation_deg) <= 3, "rotation %g vs %g", r01,
           tr[1].rotation_deg - tr[0].rotation_deg);
    /* the CMC's rotation, when given, is only refined: the same value, fewer rotations */
    bf_pin_result pr;
    CHECK(bf_pin_compare(&pr, f[0], f[1], r01, NULL) == 0);
    CHECK(pr.from_cmc == 1 && pr.nrot == 5 && fabs(pr.accf - same) < 0.02);
    /* a turned copy is the same impression */
    bf_surface *t = NULL;
    bf_feature *ft = NULL;
    CHECK(bf_synth_turn(&t, s[0], 63.0) == 0);
    if (t && (ft = pin_of(t))) {
      double rt = 0, at = accf(f[0], ft, NAN, &rt);
      fprintf(stderr, "synthetic turned 63 deg: ACCF %.3f at %.1f deg\n", at, rt);
      CHECKF(at > 0.8 && angdiff(rt, -63.0) <= 2, "turned: %g at %g", at, rt);
    }
    CHECK(ft != NULL);
    bf_feature_free(ft);
    bf_surface_free(t);
  }
  /* no pin: the pair is ranked by CMC alone; the pin never outranks one CMC more */
  bf_pin_result none;
  CHECK(bf_pin_compare_cmc(&none, f[0], NULL, NULL, NULL) == 0 && !none.found);
  CHECK(bf_pin_rank(7, none.accf, NULL) == 7);
  CHECK(bf_pin_rank(6, 1.0, NULL) < bf_pin_rank(7, NAN, NULL));
  CHECK(bf_pin_rank(6, 0.3, NULL) > 6 && bf_pin_rank(6, 0.3, NULL) < bf_pin_rank(6, 0.5, NULL));
  /* wrong kinds are refused */
  CHECK(bf_pin_compare(&none, f[0], NULL, NAN, NULL) == BF_EINVAL);
  for (int i = 0; i < 4; i++) {
    bf_surface_free(s[i]);
    bf_feature_free(f[i]);
  }
  /* a processed breech face has its aperture cut out: no impression, a clear answer */
  so.processed = 1;
  bf_surface *p = NULL;
  bf_feature *fp = NULL;
  CHECK(bf_synth_cartridge1(&p, &so, 0, 0, NULL) == 0);
  CHECK(p && bf_firingpin_extract(&fp, p, NULL) == BF_ENOTFOUND && !fp);
  CHECK(strstr(bf_error_last(), "firing pin") != NULL);
  bf_surface_free(p);
  bf_synth_free(g);
}

static bf_feature *pin_file(const char *dir, const char *name, bf_surface **keep)
{
  char path[8192];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  bf_surface *s = NULL;
  bf_feature *f = NULL;
  if (bf_x3p_read(&s, path, NULL) == 0)
    f = pin_of(s);
  if (keep)
    *keep = s;
  else
    bf_surface_free(s);
  return f;
}

static void test_real(void)
{
  const char *d = bf_t_shared("data/cartridge");
  if (!d)
    return;
  const char *fn[5] = {"fadul-raw/fadul1-1_raw.x3p", "fadul-raw/fadul1-2_raw.x3p",
                       "fadul-raw/fadul2-1_raw.x3p", "dfsc-pair/K013sA1_raw.x3p",
                       "dfsc-pair/K013sA2_raw.x3p"};
  int src[5] = {1, 1, 2, 3, 3};
  bf_feature *f[5];
  bf_surface *s0 = NULL;
  for (int i = 0; i < 5; i++) {
    f[i] = pin_file(d, fn[i], i == 0 ? &s0 : NULL);
    CHECKF(f[i] != NULL, "%s", fn[i]);
  }
  double minsame = 2, maxdiff = -2;
  for (int i = 0; i < 5; i++)
    for (int j = i + 1; j < 5; j++) {
      if (!f[i] || !f[j] || fabs(f[i]->dx - f[j]->dx) > 1e-9)
        continue;
      double rot = 0, a = accf(f[i], f[j], NAN, &rot);
      fprintf(stderr, "real pin ACCF %s vs %s: %.3f at %.0f deg (%s)\n", fn[i], fn[j], a, rot,
              src[i] == src[j] ? "same" : "different");
      if (src[i] == src[j])
        minsame = fmin(minsame, a);
      else
        maxdiff = fmax(maxdiff, a);
    }
  CHECKF(minsame > maxdiff, "same >= %g, different <= %g", minsame, maxdiff);
  /* a turned copy of Fadul 1-1 */
  bf_surface *t = NULL;
  if (s0 && f[0] && bf_synth_turn(&t, s0, -41.0) == 0) {
    bf_feature *ft = pin_of(t);
    double rot = 0, a = ft ? accf(f[0], ft, NAN, &rot) : NAN;
    fprintf(stderr, "real turned -41 deg: ACCF %.3f at %.1f deg\n", a, rot);
    CHECKF(a > 0.7 && angdiff(rot, 41.0) <= 2, "turned %g at %g", a, rot);
    bf_feature_free(ft);
  }
  bf_surface_free(t);
  bf_surface_free(s0);
  for (int i = 0; i < 5; i++)
    bf_feature_free(f[i]);
}

/* Through bfm: compare prints the pin beside the CMCs; a store keeps the pin at ingest and
 * match shows its ACCF per candidate (scans on the spot and stored items alike). */
static void test_cli(void)
{
  const char *d = bf_t_tmpdir("pin_cli");
  char args[16384], out[4200], err[4200], o[64 * 1024];
  snprintf(out, sizeof out, "%s/out", d);
  snprintf(err, sizeof err, "%s/err", d);
  snprintf(args, sizeof args, "synth --out '%s/s' --kind cartridge --raw --firearms 2 --firings 2 "
           "--seed 7", d);
  CHECK(bf_t_bfm(args, out, err) == 0);
  snprintf(args, sizeof args, "compare --json '%s/s/cartridge/F0001-1.x3p' "
           "'%s/s/cartridge/F0001-2.x3p'", d, d);
  CHECK(bf_t_bfm(args, out, err) == 0);
  snprintf(o, sizeof o, "%s", bf_t_read(out));
  const char *fp = strstr(o, "\"firing_pin\": {\"found\": true, \"accf\": ");
  CHECKF(fp && atof(fp + 38) > 0.4, "%s", o);
  CHECK(strstr(o, "\"rank_score\": ") != NULL);
  snprintf(args, sizeof args, "init '%s/st' && '%s' ingest --quiet '%s/st' '%s/s/manifest.csv'", d,
           BF_BFM_EXE, d, d);
  CHECK(bf_t_bfm(args, out, err) == 0);
  snprintf(args, sizeof args, "match --json '%s/st' '%s/s/cartridge/F0001-2.x3p'", d, d);
  CHECK(bf_t_bfm(args, out, err) == 0);
  snprintf(o, sizeof o, "%s", bf_t_read(out));
  /* the first candidate is the stored copy of the query: the same pin */
  fp = strstr(o, "\"firing_pin_accf\": ");
  CHECKF(fp && atof(fp + 19) > 0.9, "%s", o);
  /* stored items carry their pin: the search of a stored item compares pins too */
  snprintf(args, sizeof args, "match '%s/st' 1", d);
  CHECK(bf_t_bfm(args, out, err) == 0);
  snprintf(o, sizeof o, "%s", bf_t_read(out));
  CHECKF(strstr(o, "    pin ") && strstr(o, " 0."), "%s", o);
}

int main(void)
{
  test_synthetic();
  test_cli();
  test_real();
  bf_fft_cleanup();
  return bf_t_done();
}
