/* Firing-pin benchmark: the pin's ACCF on the real raw scans (Fadul raw 1-1, 1-2, 2-1 and the
 * DFSC raw pair K013sA1/A2) and on a copy of each turned by a random angle (bilinear,
 * bf_synth_turn, made here), every pair: the CMC, the pin's ACCF as the search uses it (the CMC
 * rotation from 6 CMCs, else the full circle) and the rank value CMC + 0.9 x ACCF; AUC of each
 * over all pairs and over the unturned pairs; synthetic raw cases at several spacings (is the
 * impression found? same vs different firearm); CPU seconds per pin extraction and comparison
 * against the CMC's. In-process figures. Usage: bench_pin [--seed S] [--no-synth] */
#include "bf_breechface.h"
#include "bf_cmc.h"
#include "bf_error.h"
#include "bf_fft.h"
#include "bf_firingpin.h"
#include "bf_pin.h"
#include "bf_synth.h"
#include "bf_x3p.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Mann-Whitney AUC of scores s[] with labels y[] (1 = same source); ties count half. */
static double auc(const double *s, const int *y, int n)
{
  double a = 0;
  long np = 0, nn = 0;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (y[i] && !y[j]) {
        a += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
        np++;
      }
  for (int i = 0; i < n; i++)
    nn += y[i];
  (void)nn;
  return np ? a / np : NAN;
}

#define NSCAN 5
#define NITEM (2 * NSCAN)

int main(int argc, char **argv)
{
  unsigned seed = 20261129;
  int synth = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seed") && i + 1 < argc)
      seed = (unsigned)strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--no-synth"))
      synth = 0;
    else {
      fprintf(stderr, "usage: bench_pin [--seed S] [--no-synth]\n");
      return 2;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0); /* progress visible on a slow, shared machine */
  const char *fn[NSCAN] = {"fadul-raw/fadul1-1_raw.x3p", "fadul-raw/fadul1-2_raw.x3p",
                           "fadul-raw/fadul2-1_raw.x3p", "dfsc-pair/K013sA1_raw.x3p",
                           "dfsc-pair/K013sA2_raw.x3p"};
  const char *nm[NSCAN] = {"F1-1", "F1-2", "F2-1", "A1", "A2"};
  int src[NITEM] = {1, 1, 2, 3, 3, 1, 1, 2, 3, 3};
  bf_feature *bf[NITEM] = {NULL}, *pf[NITEM] = {NULL};
  double turn[NITEM] = {0};
  char name[NITEM][16];
  double t_ext = 0, t_bf = 0;
  int next = 0;
  srand(seed);
  for (int i = 0; i < NSCAN; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/data/cartridge/%s", BF_SHARED_DIR, fn[i]);
    bf_surface *s = NULL, *t = NULL;
    if (bf_x3p_read(&s, path, NULL)) {
      fprintf(stderr, "bench_pin: %s (real data absent: nothing to measure)\n", bf_error_last());
      return 1;
    }
    turn[NSCAN + i] = -180.0 + 360.0 * rand() / ((double)RAND_MAX + 1);
    if (bf_synth_turn(&t, s, turn[NSCAN + i])) {
      fprintf(stderr, "bench_pin: %s\n", bf_error_last());
      return 1;
    }
    bf_surface *v[2] = {s, t};
    for (int k = 0; k < 2; k++) {
      int it = i + k * NSCAN;
      snprintf(name[it], sizeof name[it], "%s%s", nm[i], k ? "t" : "");
      double c0 = cpu_now();
      if (bf_breechface_extract(&bf[it], v[k], NULL))
        fprintf(stderr, "%s: breech face: %s\n", name[it], bf_error_last());
      double c1 = cpu_now();
      if (bf_firingpin_extract(&pf[it], v[k], NULL))
        fprintf(stderr, "%s: firing pin: %s\n", name[it], bf_error_last());
      double c2 = cpu_now();
      t_bf += c1 - c0;
      t_ext += c2 - c1;
      next++;
      if (pf[it])
        printf("%-5s pin r %.0f um, disc %.0f um, %.0f %% of the disc valid, %d x %d at %g um%s\n",
               name[it], pf[it]->params[2], pf[it]->params[1], 100 * pf[it]->params[6],
               pf[it]->nx, pf[it]->ny, pf[it]->dx, k ? "" : "");
    }
    bf_surface_free(s);
    bf_surface_free(t);
  }
  printf("turned copies: %s %.1f, %s %.1f, %s %.1f, %s %.1f, %s %.1f deg (seed %u)\n", name[5],
         turn[5], name[6], turn[6], name[7], turn[7], name[8], turn[8], name[9], turn[9], seed);
  printf("\n%-5s %-5s %4s %4s %8s %8s %8s %8s\n", "A", "B", "same", "CMC", "ACCF-fc", "ACCF",
         "rot", "rank");
  double sc_cmc[NITEM * NITEM], sc_pin[NITEM * NITEM], sc_rank[NITEM * NITEM];
  int lab[NITEM * NITEM], unturned[NITEM * NITEM], np = 0;
  double t_cmc = 0, t_fc = 0, t_used = 0;
  int n_fc = 0, n_cmcrot = 0;
  double same_self_min = 2, same_min = 2, diff_max = -2;
  for (int i = 0; i < NITEM; i++)
    for (int j = i + 1; j < NITEM; j++) {
      if (!bf[i] || !bf[j])
        continue;
      bf_cmc_result r;
      bf_pin_result pfc, pu;
      memset(&r, 0, sizeof r);
      double c0 = cpu_now();
      int e = bf_cmc_compare(&r, bf[i], bf[j], NULL);
      double c1 = cpu_now();
      if (e) {
        fprintf(stderr, "%s vs %s: %s\n", name[i], name[j], bf_error_last());
        continue;
      }
      int ef = bf_pin_compare_cmc(&pfc, pf[i], pf[j], NULL, NULL);
      double c2 = cpu_now();
      int eu = bf_pin_compare_cmc(&pu, pf[i], pf[j], &r, NULL);
      double c3 = cpu_now();
      if (ef || eu)
        fprintf(stderr, "%s vs %s: %s\n", name[i], name[j], bf_error_last());
      t_cmc += c1 - c0;
      t_fc += c2 - c1;
      n_fc++;
      t_used += c3 - c2;
      n_cmcrot += pu.from_cmc;
      int same = src[i] == src[j];
      double accf = pu.found ? pu.accf : NAN;
      lab[np] = same;
      unturned[np] = i < NSCAN && j < NSCAN;
      sc_cmc[np] = r.score;
      sc_pin[np] = isnan(accf) ? -1 : accf;
      sc_rank[np] = bf_pin_rank(r.score, accf, NULL);
      np++;
      int self = j == i + NSCAN;
      if (same && self)
        same_self_min = fmin(same_self_min, accf);
      else if (same)
        same_min = fmin(same_min, accf);
      else
        diff_max = fmax(diff_max, accf);
      printf("%-5s %-5s %4s %4.0f %8.3f %8.3f %8.1f %8.3f%s\n", name[i], name[j],
             same ? (self ? "self" : "yes") : "no", r.score, pfc.accf, accf, pu.rotation,
             sc_rank[np - 1], pu.from_cmc ? "  (CMC rotation)" : "");
      bf_cmc_result_clear(&r);
    }
  double s1[NITEM * NITEM], s2[NITEM * NITEM], s3[NITEM * NITEM];
  int l1[NITEM * NITEM], m = 0;
  for (int k = 0; k < np; k++)
    if (unturned[k]) {
      s1[m] = sc_cmc[k];
      s2[m] = sc_pin[k];
      s3[m] = sc_rank[k];
      l1[m++] = lab[k];
    }
  int nsame = 0;
  for (int k = 0; k < np; k++)
    nsame += lab[k];
  printf("\nsame source (other scan): ACCF >= %.3f; turned copy of itself: >= %.3f; different "
         "source: ACCF <= %.3f\n", same_min, same_self_min, diff_max);
  printf("AUC all %d pairs (%d same): CMC %.3f, pin ACCF %.3f, CMC + 0.9 ACCF %.3f\n", np, nsame,
         auc(sc_cmc, lab, np), auc(sc_pin, lab, np), auc(sc_rank, lab, np));
  printf("AUC unturned %d pairs: CMC %.3f, pin ACCF %.3f, CMC + 0.9 ACCF %.3f\n", m,
         auc(s1, l1, m), auc(s2, l1, m), auc(s3, l1, m));
  printf("CPU per item: breech face %.3f s, firing pin %.3f s; per pair: CMC %.3f s, pin full "
         "circle %.3f s, pin as used %.3f s (%d of %d pairs on the CMC rotation)\n",
         t_bf / next, t_ext / next, t_cmc / n_fc, t_fc / n_fc, t_used / n_fc, n_cmcrot, n_fc);
  for (int i = 0; i < NITEM; i++) {
    bf_feature_free(bf[i]);
    bf_feature_free(pf[i]);
  }
  if (synth) {
    printf("\nsynthetic raw (firearm 1 firings 1, 2; firearm 2 firing 1; any orientation):\n");
    double sp[4] = {1.5, 2.0, 4.0, 6.25};
    for (int k = 0; k < 4; k++) {
      bf_synth_opts so = BF_SYNTH_OPTS_INIT;
      so.processed = 0;
      so.max_rotation = 180;
      so.cart_spacing = sp[k];
      bf_synth *g = NULL;
      bf_feature *f[3] = {NULL};
      const char *why[3] = {"", "", ""};
      char msg[3][256];
      if (bf_synth_new(&g, &so))
        continue;
      int fa[3] = {0, 0, 1}, fi[3] = {0, 1, 0};
      for (int q = 0; q < 3; q++) {
        bf_surface *s = NULL;
        if (!bf_synth_cartridge(&s, g, fa[q], fi[q], NULL) && bf_firingpin_extract(&f[q], s, NULL)) {
          snprintf(msg[q], sizeof msg[q], "%s", bf_error_last());
          why[q] = msg[q];
        }
        bf_surface_free(s);
      }
      bf_pin_result a, b;
      if (f[0] && f[1] && f[2] && !bf_pin_compare(&a, f[0], f[1], NAN, NULL) &&
          !bf_pin_compare(&b, f[0], f[2], NAN, NULL))
        printf("  %.2f um: pin r %.0f um; same firearm ACCF %.3f, different %.3f\n", sp[k],
               f[0]->params[2], a.accf, b.accf);
      else
        printf("  %.2f um: pin not found: %s%s%s\n", sp[k], why[0], why[1][0] ? " / " : "",
               why[1][0] ? why[1] : why[2]);
      for (int q = 0; q < 3; q++)
        bf_feature_free(f[q]);
      bf_synth_free(g);
    }
  }
  bf_fft_cleanup();
  return 0;
}
