/* Striation comparison: alignment, features, land score, SAM bullet phase, bad input. */
#include "bf_bullet.h"
#include "bf_error.h"
#include "bf_striae.h"
#include "bf_test.h"
#include "bf_x3p.h"

#include <math.h>
#include <stdint.h>


/* A smooth random "barrel land" profile of n points at dx: band-limited noise. */
static void land_profile(float *z, int n, double dx)
{
  float *w = malloc(sizeof *w * n);
  for (int i = 0; i < n; i++)
    w[i] = (float)bf_t_nrand();
  bf_bullet_gauss_lowpass(z, w, n, dx, 15.0);
  free(w);
}

/* A land feature cut from a long profile at offset off, length n, plus noise of sd eps. */
static bf_feature *land_from(const float *prof, int off, int n, double dx, double eps, int land)
{
  bf_feature *f = NULL;
  if (bf_feature_new(&f, BF_KIND_BULLET, n, 1, dx, dx))
    return NULL;
  for (int i = 0; i < n; i++)
    f->z[i] = prof[off + i] + (float)(eps * bf_t_nrand());
  f->land = land;
  return f;
}

/* Bullet B turned heel for toe, as a base-first scan sees it: each land's signature read back
 * to front and the lands numbered round the other way (land k of n becomes n + 1 - k). */
static void turn_bullet(bf_feature **T, bf_feature *const *B, int n)
{
  for (int j = 0; j < n; j++) {
    const bf_feature *f = B[n - 1 - j];
    T[j] = NULL;
    if (!f || bf_feature_new(&T[j], BF_KIND_BULLET, f->nx, 1, f->dx, f->dy))
      continue;
    for (int i = 0; i < f->nx; i++)
      T[j]->z[i] = f->z[f->nx - 1 - i];
    T[j]->land = f->land ? n + 1 - f->land : 0;
  }
}

int main(void)
{
  const double dx = 1.5625;
  int quick = getenv("BF_QUICK") != NULL;
  int L = 2000;
  float *p1 = malloc(sizeof *p1 * L), *p2 = malloc(sizeof *p2 * L);
  land_profile(p1, L, dx);
  land_profile(p2, L, dx);

  /* same land, shifted by 37 points, a little noise */
  bf_feature *a = land_from(p1, 100, 1200, dx, 0.02, 1), *b = land_from(p1, 137, 1150, dx, 0.02, 1);
  bf_feature *c = land_from(p2, 100, 1200, dx, 0.02, 1);
  bf_land_result r;
  CHECK(bf_land_compare(&r, a, b, NULL) == 0);
  CHECK(r.scored == 1);
  CHECKF(fabs(r.lag_um - 37 * dx) < 1.01 * dx, "lag %.2f um, expected %.2f", r.lag_um, 37 * dx);
  CHECKF(r.ccf > 0.9, "ccf %.3f", r.ccf);
  CHECKF(r.score > 0.8, "same-land score %.3f", r.score);
  CHECK(r.matches > r.mismatches);
  CHECK(r.cms >= 5);
  CHECK(r.score >= 0 && r.score <= 1);

  /* different lands */
  bf_land_result rn;
  CHECK(bf_land_compare(&rn, a, c, NULL) == 0);
  CHECKF(rn.score < 0.3, "different-land score %.3f", rn.score);
  CHECK(rn.score < r.score);
  CHECK(rn.ccf < r.ccf);

  /* self: perfect */
  bf_land_result rs;
  CHECK(bf_land_compare(&rs, a, a, NULL) == 0);
  CHECK(fabs(rs.ccf - 1) < 1e-3 && fabs(rs.lag_um) < 1e-9 && rs.mismatches == 0 && rs.D < 1e-6);

  /* another instrument spacing: b resampled at 1.935 um still lines up */
  {
    int n2 = (int)(1150 * dx / 1.935);
    bf_feature *b2 = NULL;
    CHECK(bf_feature_new(&b2, BF_KIND_BULLET, n2, 1, 1.935, 1.935) == 0);
    for (int i = 0; i < n2; i++) {
      double t = 137 + i * 1.935 / dx;
      int k = (int)t;
      double f = t - k;
      b2->z[i] = (float)((1 - f) * p1[k] + f * p1[k + 1]);
    }
    bf_land_result r2;
    CHECK(bf_land_compare(&r2, a, b2, NULL) == 0);
    CHECKF(r2.ccf > 0.85 && fabs(r2.lag_um - 37 * dx) < 3 * dx, "resampled ccf %.3f lag %.1f", r2.ccf,
           r2.lag_um);
    bf_feature_free(b2);
  }

  /* missing points inside a signature are tolerated */
  {
    bf_feature *h = land_from(p1, 137, 1150, dx, 0.02, 1);
    for (int i = 300; i < 420; i++)
      h->z[i] = NAN;
    bf_land_result rh;
    CHECK(bf_land_compare(&rh, a, h, NULL) == 0);
    CHECKF(rh.ccf > 0.9 && rh.score > 0.7, "with a hole: ccf %.3f score %.3f", rh.ccf, rh.score);
    bf_feature_free(h);
  }

  /* flagged land: not scored, no error; wrong kind: error */
  {
    bf_feature *fl = land_from(p1, 137, 1150, dx, 0.02, 1);
    fl->quality_flags = BF_Q_NO_MARKS;
    bf_land_result rf;
    CHECK(bf_land_compare(&rf, a, fl, NULL) == 0 && rf.scored == 0 && rf.score == 0);
    fl->quality_flags = 0;
    fl->kind = BF_KIND_CARTRIDGE;
    CHECK(bf_land_compare(&rf, a, fl, NULL) == BF_EINVAL);
    CHECK(strstr(bf_error_last(), "not a bullet land") != NULL);
    bf_feature_free(fl);
    /* too short to align: not scored */
    bf_feature *tiny = land_from(p1, 0, 10, dx, 0, 1);
    CHECK(bf_land_compare(&rf, a, tiny, NULL) == 0 && rf.scored == 0);
    bf_feature_free(tiny);
  }

  /* concurrent comparisons give the serial answers */
  {
    int n = quick ? 16 : 64;
    bf_land_result *par = calloc(n, sizeof *par);
    int errs = 0;
#pragma omp parallel for reduction(+ : errs)
    for (int k = 0; k < n; k++)
      errs += bf_land_compare(&par[k], a, (k & 1) ? b : c, NULL) != 0;
    CHECK(errs == 0);
    int same = 1;
    for (int k = 0; k < n; k++)
      same &= par[k].score == ((k & 1) ? r.score : rn.score) && par[k].lag_um == ((k & 1) ? r.lag_um : rn.lag_um);
    CHECK(same);
    free(par);
  }

  /* aligned signatures for drawing */
  {
    float *sa, *sb;
    int n;
    CHECK(bf_land_aligned(&sa, &sb, &n, a, b, &r) == 0);
    CHECK(n >= 1200);
    int k0 = 200; /* a point in the overlap: both values within noise */
    CHECK(isfinite(sa[k0]) && isfinite(sb[k0]) && fabs(sa[k0] - sb[k0]) < 0.2);
    free(sa);
    free(sb);
  }

  /* bullets: 6 barrel lands; B engraved by the same barrel, rotated by phase 2 */
  {
    float *bar[6];
    for (int l = 0; l < 6; l++) {
      bar[l] = malloc(sizeof(float) * L);
      land_profile(bar[l], L, dx);
    }
    bf_feature *A[6], *B[6], *C[6];
    for (int i = 0; i < 6; i++) {
      A[i] = land_from(bar[i], 50 + 7 * i, 1100, dx, 0.05, i + 1);
      B[(i + 2) % 6] = land_from(bar[i], 90 - 5 * i, 1150, dx, 0.05, (i + 2) % 6 + 1);
    }
    float *other = malloc(sizeof(float) * L);
    for (int i = 0; i < 6; i++) {
      land_profile(other, L, dx);
      C[i] = land_from(other, 100, 1100, dx, 0.05, i + 1);
    }
    bf_bullet_result br;
    CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 6, (const bf_feature *const *)B, 6, NULL) == 0);
    CHECKF(br.phase == 2 && br.match && br.score > 0.8 && br.margin > 0.5, "phase %d score %.3f margin %.3f",
           br.phase, br.score, br.margin);
    CHECK(br.phase_pairs[2] == 6);
    bf_bullet_result_clear(&br);
    CHECK(br.lands == NULL);

    /* a missing land and a damaged (flagged) one: still the right phase */
    const bf_feature *A2[6];
    for (int i = 0; i < 6; i++)
      A2[i] = A[i];
    A2[1] = NULL;
    A[3]->quality_flags = BF_Q_TOO_SHORT;
    CHECK(bf_bullet_compare(&br, A2, 6, (const bf_feature *const *)B, 6, NULL) == 0);
    CHECKF(br.phase == 2 && br.match && br.phase_pairs[2] == 4, "missing/damaged: phase %d pairs %d", br.phase,
           br.phase_pairs[2]);
    bf_bullet_result_clear(&br);
    A[3]->quality_flags = 0;

    /* lands by number: bullet B given with land 3 left out, in another order */
    const bf_feature *B5[5] = {B[5], B[0], B[1], B[3], B[4]};
    CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 6, B5, 5, NULL) == 0);
    CHECKF(br.phase == 2 && br.match, "by land number: phase %d", br.phase);
    bf_bullet_result_clear(&br);

    /* heel/toe: B scanned base-first is found turned and matches as well as B as scanned; B
     * as scanned is not turned; with turning off the turned B does not match */
    {
      bf_feature *T[6];
      turn_bullet(T, B, 6);
      CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 6, (const bf_feature *const *)B, 6, NULL) == 0);
      double plain = br.score;
      CHECKF(!br.reversed && br.other_score < 0.5, "as scanned: reversed %d, turned score %.3f", br.reversed,
             br.other_score);
      bf_bullet_result_clear(&br);
      CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 6, (const bf_feature *const *)T, 6, NULL) == 0);
      CHECKF(br.reversed && br.match && fabs(br.score - plain) < 1e-6 && br.other_score < 0.5 &&
             br.phase_pairs[br.phase] == 6, "turned: reversed %d match %d score %.3f (as scanned %.3f), "
             "unturned %.3f", br.reversed, br.match, br.score, plain, br.other_score);
      /* the turned land pairs lie on the best phase: A land i with T land (n - 1 - (i + p)) */
      int on = 0;
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
          if (bf_bullet_on_phase(&br, i, j)) {
            on++;
            CHECKF(br.lands[i * 6 + j].reversed && br.lands[i * 6 + j].score > 0.8,
                   "turned pair A%d-T%d score %.3f", i + 1, j + 1, br.lands[i * 6 + j].score);
          }
      CHECK(on == 6);
      /* the aligned signatures of a turned pair line up (drawing uses them) */
      for (int i = 0; i < 6 && !quick; i++)
        for (int j = 0; j < 6; j++)
          if (bf_bullet_on_phase(&br, i, j)) {
            float *sa, *sb;
            int n, m = 0;
            double d = 0;
            CHECK(bf_land_aligned(&sa, &sb, &n, A[i], T[j], &br.lands[i * 6 + j]) == 0);
            for (int k = 0; k < n; k++)
              if (isfinite(sa[k]) && isfinite(sb[k])) {
                d += fabs(sa[k] - sb[k]);
                m++;
              }
            CHECKF(m > 500 && d / m < 0.2, "turned aligned: %d points, mean |d| %.3f", m, m ? d / m : 0);
            free(sa);
            free(sb);
          }
      bf_bullet_result_clear(&br);
      bf_land_opts lo = BF_LAND_OPTS_INIT;
      lo.turn_margin = -1;
      CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 6, (const bf_feature *const *)T, 6, &lo) == 0);
      CHECKF(!br.reversed && !br.match && isnan(br.other_score), "never turned: reversed %d match %d",
             br.reversed, br.match);
      bf_bullet_result_clear(&br);
      /* another barrel's bullet is not made a match by being tried both ways */
      CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 6, (const bf_feature *const *)C, 6, NULL) == 0);
      CHECKF(!br.match && br.score < 0.5, "different barrel tried both ways: score %.3f reversed %d", br.score,
             br.reversed);
      bf_bullet_result_clear(&br);
      for (int j = 0; j < 6; j++)
        bf_feature_free(T[j]);
    }

    /* damaged lands: B land 1 with tank rash (a gouge: 12 % of the land far above the
     * striae), B land 5 with 40 % of its points missing inside; both are reported and weigh
     * less, so the true phase scores above the plain mean of its land scores */
    {
      bf_feature *g = B[0], *h = B[4];
      double sd = 0;
      for (int i = 0; i < g->nx; i++)
        sd += isfinite(g->z[i]) ? (double)g->z[i] * g->z[i] : 0;
      sd = sqrt(sd / g->nx);
      float *keep_g = malloc(sizeof(float) * g->nx), *keep_h = malloc(sizeof(float) * h->nx);
      memcpy(keep_g, g->z, sizeof(float) * g->nx);
      memcpy(keep_h, h->z, sizeof(float) * h->nx);
      for (int i = g->nx / 3; i < g->nx / 3 + g->nx * 12 / 100; i++)
        g->z[i] += (float)(12 * sd);
      for (int i = 100; i < h->nx - 100; i++)
        if ((i / 25) % 5 < 2)
          h->z[i] = NAN;
      CHECKF(bf_land_quality(g) < BF_LAND_DAMAGED, "tank rash quality %.3f", bf_land_quality(g));
      CHECKF(bf_land_quality(h) < BF_LAND_DAMAGED, "missing-data quality %.3f", bf_land_quality(h));
      CHECKF(bf_land_quality(A[2]) > 0.95, "intact quality %.3f", bf_land_quality(A[2]));
      CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 6, (const bf_feature *const *)B, 6, NULL) == 0);
      CHECKF(br.damaged_b == 2 && br.damaged_a == 0, "damaged %d %d", br.damaged_a, br.damaged_b);
      double plain = 0;
      int np = 0;
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
          if ((br.pos_a[i] + 2) % 6 == br.pos_b[j] && br.lands[i * 6 + j].scored) {
            plain += br.lands[i * 6 + j].score;
            np++;
          }
      plain /= np;
      CHECKF(br.phase == 2 && br.score > plain + 0.01, "phase %d weighted %.3f plain %.3f", br.phase,
             br.score, plain);
      /* the damaged same-barrel bullet still ranks above another barrel's intact one */
      double damaged_same = br.score;
      bf_bullet_result_clear(&br);
      CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 6, (const bf_feature *const *)C, 6, NULL) == 0);
      CHECKF(br.match == 0 && damaged_same > br.score + 0.3, "damaged same source %.3f, different source %.3f",
             damaged_same, br.score);
      bf_bullet_result_clear(&br);
      memcpy(g->z, keep_g, sizeof(float) * g->nx);
      memcpy(h->z, keep_h, sizeof(float) * h->nx);
      free(keep_g);
      free(keep_h);
    }

    /* another barrel: no match */
    CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 6, (const bf_feature *const *)C, 6, NULL) == 0);
    CHECKF(!br.match && br.score < 0.5, "different barrels: score %.3f", br.score);
    bf_bullet_result_clear(&br);

    /* nothing comparable: no score, no error */
    const bf_feature *none[2] = {NULL, NULL};
    CHECK(bf_bullet_compare(&br, none, 2, (const bf_feature *const *)B, 6, NULL) == 0);
    CHECK(br.phase == -1 && br.match == 0);
    bf_bullet_result_clear(&br);
    CHECK(bf_bullet_compare(&br, none, 0, (const bf_feature *const *)B, 6, NULL) == BF_EINVAL);

    for (int i = 0; i < 6; i++) {
      bf_feature_free(A[i]);
      bf_feature_free(B[i]);
      bf_feature_free(C[i]);
      free(bar[i]);
    }
    free(other);
  }

  /* real data: Hamby 252 bullet 1 vs bullet 2, phase 2 (B1 land i = B2 land i+2) */
  const char *data = bf_t_shared("data");
  if (data && !quick) {
    int b1[5] = {1, 2, 3, 4, 5}, b2[5] = {1, 2, 4, 5, 6};
    bf_feature *A[5] = {0}, *B[5] = {0};
    int ok = 1;
    for (int k = 0; k < 10; k++) {
      char p[4200];
      int bullet = k < 5 ? 1 : 2, land = k < 5 ? b1[k] : b2[k - 5];
      snprintf(p, sizeof p, "%s/bullet/hamby252/Hamby252_Barrel1_Bullet%d_Land%d.x3p", data, bullet, land);
      bf_surface *s = NULL;
      bf_bullet_opts o = BF_BULLET_OPTS_INIT;
      o.land = land;
      if (bf_x3p_read(&s, p, NULL) || bf_bullet_land_extract(k < 5 ? &A[k] : &B[k - 5], s, &o))
        ok = 0;
      bf_surface_free(s);
    }
    CHECK(ok);
    if (ok) {
      bf_bullet_result br;
      CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 5, (const bf_feature *const *)B, 5, NULL) == 0);
      CHECKF(br.phase == 2 && br.match, "Hamby 252: phase %d score %.3f", br.phase, br.score);
      /* the four same-land pairs score above every different-land pair */
      double min_same = 2, max_diff = -1;
      for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
          double s = br.lands[i * 5 + j].score;
          if ((b1[i] + 1) % 6 + 1 == b2[j] || (b1[i] == 5 && b2[j] == 1))
            min_same = fmin(min_same, s);
          else
            max_diff = fmax(max_diff, s);
        }
      CHECKF(min_same > max_diff, "same-land min %.3f vs different max %.3f", min_same, max_diff);
      CHECKF(br.damaged_a == 0 && br.damaged_b == 0, "intact Hamby lands reported damaged: %d %d",
             br.damaged_a, br.damaged_b);
      CHECKF(!br.reversed, "Hamby 252 as scanned reported turned (turned score %.3f vs %.3f)", br.other_score,
             br.score);
      double plain = br.score;
      bf_bullet_result_clear(&br);
      /* bullet 2 turned heel for toe (lands 1 2 4 5 6 of 6 become 6 5 3 2 1, reversed) */
      {
        bf_feature *T[6] = {0}, *B6[6] = {0};
        for (int k = 0; k < 5; k++)
          B6[b2[k] - 1] = B[k];
        turn_bullet(T, B6, 6);
        CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 5, (const bf_feature *const *)T, 6, NULL) == 0);
        CHECKF(br.reversed && br.match && fabs(br.score - plain) < 1e-3 && br.other_score < plain - 0.3,
               "Hamby 252 turned: reversed %d match %d score %.3f (as scanned %.3f), unturned %.3f", br.reversed,
               br.match, br.score, plain, br.other_score);
        bf_bullet_result_clear(&br);
        for (int k = 0; k < 6; k++)
          bf_feature_free(T[k]);
      }
      /* data dropped: half of bullet 2 land 4 missing in stripes; still phase 2, reported */
      bf_feature *h = B[2];
      for (int i = 0; i < h->nx; i++)
        if ((i / 40) % 2)
          h->z[i] = NAN;
      CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 5, (const bf_feature *const *)B, 5, NULL) == 0);
      CHECKF(br.phase == 2 && br.match && br.damaged_b == 1, "dropped data: phase %d damaged %d",
             br.phase, br.damaged_b);
      bf_bullet_result_clear(&br);
      /* tank rash as well: a gouge over 12 % of bullet 2 land 1 (10 sd deep); two damaged
       * lands, still phase 2, and still above another barrel's bullet (Hamby 44 bullet 1) */
      bf_feature *g = B[0];
      double sd = g->params[BF_BP_ROUGH];
      for (int i = g->nx / 2; i < g->nx / 2 + g->nx * 12 / 100; i++)
        if (isfinite(g->z[i]))
          g->z[i] -= (float)(10 * sd);
      CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 5, (const bf_feature *const *)B, 5, NULL) == 0);
      double damaged = br.score;
      CHECKF(br.phase == 2 && br.damaged_b == 2 && br.quality_b[0] < BF_LAND_DAMAGED,
             "tank rash: phase %d damaged %d quality %.3f", br.phase, br.damaged_b, br.quality_b[0]);
      bf_bullet_result_clear(&br);
      bf_feature *O[6] = {0};
      int ok44 = 1;
      for (int l = 0; l < 6; l++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/bullet/hamby44/HS44_Barrel1_Bullet1_Land%d.x3p", data, l + 1);
        bf_surface *s = NULL;
        bf_bullet_opts o = BF_BULLET_OPTS_INIT;
        o.land = l + 1;
        if (bf_x3p_read(&s, p, NULL) || bf_bullet_land_extract(&O[l], s, &o))
          ok44 = 0;
        bf_surface_free(s);
      }
      CHECK(ok44);
      if (ok44) {
        CHECK(bf_bullet_compare(&br, (const bf_feature *const *)A, 5, (const bf_feature *const *)O, 6, NULL) == 0);
        CHECKF(!br.match && damaged > br.score + 0.2, "damaged same source %.3f vs another barrel %.3f", damaged,
               br.score);
        bf_bullet_result_clear(&br);
      }
      for (int l = 0; l < 6; l++)
        bf_feature_free(O[l]);
    }
    for (int k = 0; k < 5; k++) {
      bf_feature_free(A[k]);
      bf_feature_free(B[k]);
    }
  }

  bf_feature_free(a);
  bf_feature_free(b);
  bf_feature_free(c);
  free(p1);
  free(p2);
  return bf_t_done();
}
