/* Store figures: ingest rate (scans/s, through `bfm ingest`, feature extraction included) for
 * cartridge cases and bullet lands, bytes stored per item, peak memory of the ingest, time to
 * open a 100,000-item store and look an item up, and kill -9 crash safety at >= 50 points.
 * usage: bench_store [--items N] [--kills K] [--dir DIR] [--skip-big] [--skip-crash] [--skip-ingest]
 * Timings on a shared machine are noisy: re-run quietly for figures worth recording. */
#include "bf_error.h"
#include "bf_store.h"

#include "../tests/crash_kit.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>

static char dir[4096];

/* Runs bfm ingest on a fresh store; prints time, scans/s, peak RSS and bytes per item. */
static void ingest_figures(const char *label, const char *manifest, int nscans, int every)
{
  char store[4300], out[4300], every_s[16];
  snprintf(store, sizeof store, "%s/%s.h5", dir, label);
  snprintf(out, sizeof out, "%s/%s.out", dir, label);
  snprintf(every_s, sizeof every_s, "%d", every);
  unlink(store);
  if (bf_store_create(store, "bench")) {
    printf("%s: %s\n", label, bf_error_last());
    return;
  }
  double t0 = ck_now();
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(out, "w", stdout))
      _exit(126);
    execl(BF_BFM_EXE, BF_BFM_EXE, "ingest", "--commit-every", every_s, store, manifest, (char *)NULL);
    _exit(127);
  }
  int ws = 0;
  struct rusage ru;
  wait4(pid, &ws, 0, &ru);
  double t = ck_now() - t0;
  bf_store *st = NULL;
  size_t items = 0, scans = 0;
  long long x3p = 0;
  if (!bf_store_open(&st, store, BF_STORE_READ, NULL)) {
    items = bf_store_nitems(st);
    scans = bf_store_nscans(st);
    for (size_t i = 0; i < scans; i++)
      x3p += bf_store_scans(st)[i].nbytes;
    bf_store_close(st);
  }
  struct stat sb;
  stat(store, &sb);
  printf("%-22s commit-every %-3d %3zu items %3zu scans (of %d) in %7.2f s = %6.2f scans/s; "
         "peak RSS %6.1f MB; %8.0f bytes/item (%.0f of them original X3P), exit %d\n",
         label, every, items, scans, nscans, t, scans / t, ru.ru_maxrss / 1024.0,
         items ? (double)sb.st_size / items : 0, items ? (double)x3p / items : 0,
         WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
}

static void big_store(long n)
{
  char path[4300];
  snprintf(path, sizeof path, "%s/big.h5", dir);
  unlink(path);
  double t0 = ck_now();
  bf_store *st = NULL;
  if (bf_store_create(path, "bench") || bf_store_open(&st, path, BF_STORE_WRITE, "bench")) {
    printf("big store: %s\n", bf_error_last());
    return;
  }
  bf_feature *f = NULL;
  bf_feature_new(&f, BF_KIND_CARTRIDGE, 16, 16, 25, 25);
  uint8_t bytes[512];
  uint32_t x = 12345;
  int rc = 0;
  for (long i = 0; i < n && !rc; i++) {
    if (i % 10000 == 0 && (rc = bf_store_begin(st)))
      break;
    bf_firearm fa = {0};
    snprintf(fa.serial, sizeof fa.serial, "SN%08ld", i);
    snprintf(fa.make, sizeof fa.make, "Make%ld", i % 37);
    snprintf(fa.calibre, sizeof fa.calibre, "%s", i % 3 ? "9mm Luger" : ".45 ACP");
    for (size_t k = 0; k < sizeof bytes; k++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      bytes[k] = (uint8_t)x;
    }
    for (int k = 0; k < 256; k++)
      f->z[k] = (float)((i * 7 + k) % 101);
    int64_t fid, item, sid;
    if ((rc = bf_store_add_firearm(st, &fid, &fa)) ||
        (rc = bf_store_add_item(st, &item, BF_KIND_CARTRIDGE, fa.calibre, BF_OWNER_FIREARM, fid)) ||
        (rc = bf_store_add_scan(st, &sid, item, 0, bytes, sizeof bytes, "synthetic.x3p", NULL)) ||
        (rc = bf_store_put_feature(st, "cartridge", item, sid, f)))
      break;
    if ((i + 1) % 10000 == 0 || i + 1 == n) {
      if ((rc = bf_store_commit(st)))
        break;
      printf("  built %ld items, %.1f s\n", i + 1, ck_now() - t0);
      fflush(stdout);
    }
  }
  if (rc) {
    printf("big store: %s\n", bf_error_last());
    bf_store_abort(st);
  }
  bf_store_close(st);
  bf_feature_free(f);
  double tb = ck_now() - t0;
  struct stat sb;
  stat(path, &sb);
  printf("big store: %ld items (firearm record + item + 512 B scan + 16x16 feature each) built in %.1f s, "
         "%.1f MB (%.0f bytes/item)\n", n, tb, sb.st_size / 1e6, (double)sb.st_size / n);
  for (int rep = 0; rep < 3; rep++) {
    double a = ck_now();
    if (bf_store_open(&st, path, BF_STORE_READ, NULL)) {
      printf("open: %s\n", bf_error_last());
      return;
    }
    double b = ck_now();
    int64_t id = 1 + (int64_t)((rep + 1) * 0.3 * n);
    const bf_item *it = bf_store_item(st, id);
    bf_feature **fv = NULL;
    int nf = 0;
    int g = bf_store_get_features(st, "cartridge", id, &fv, &nf);
    double c = ck_now();
    const bf_firearm *fa = it ? bf_store_firearm(st, it->owner) : NULL;
    double c2 = ck_now();
    char serial[64];
    snprintf(serial, sizeof serial, "SN%08lld", (long long)(id - 1));
    const bf_firearm *fs = bf_store_firearm_by_serial(st, serial);
    double c3 = ck_now();
    const bf_feat_row *rows;
    size_t nrows;
    bf_store_feature_index(st, "cartridge", &rows, &nrows);
    bf_feature **blk = calloc(nrows, sizeof *blk);
    double d = ck_now();
    int s = blk ? bf_store_read_block(st, "cartridge", 0, nrows, blk) : -1;
    double e = ck_now();
    printf("open %ld-item store %.3f s; item %lld + its feature %.4f s; its firearm record %.3f s "
           "(first use reads the firearms table); by serial %.4f s (%s); "
           "stream all %zu features in one block %.2f s (%s)\n",
           n, b - a, (long long)id, c - b, c2 - c, c3 - c2,
           it && fa && fs == fa && !g && nf == 1 ? "ok" : "WRONG", nrows, e - d, s ? "failed" : "ok");
    for (size_t k = 0; blk && k < nrows; k++)
      bf_feature_free(blk[k]);
    free(blk);
    for (int k = 0; k < nf; k++)
      bf_feature_free(fv[k]);
    free(fv);
    bf_store_close(st);
  }
  /* what one small write costs on a store this size: the commit copies and syncs the file */
  double a = ck_now();
  int64_t id = 0;
  if (!bf_store_open(&st, path, BF_STORE_WRITE, "bench") && !bf_store_begin(st) &&
      !bf_store_add_item(st, &id, BF_KIND_CARTRIDGE, "9mm Luger", BF_OWNER_FIREARM, 1) && !bf_store_commit(st))
    printf("one-item transaction on the %ld-item store (copy %.1f MB + fsync + rename): %.2f s\n", n,
           sb.st_size / 1e6, ck_now() - a);
  else
    printf("one-item transaction failed: %s\n", bf_error_last());
  bf_store_close(st);
}

int main(int argc, char **argv)
{
  long nbig = 100000;
  int kills = 60, skip_big = 0, skip_crash = 0, skip_ingest = 0;
  snprintf(dir, sizeof dir, "/tmp/bench_store");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--items") && i + 1 < argc)
      nbig = atol(argv[++i]);
    else if (!strcmp(argv[i], "--kills") && i + 1 < argc)
      kills = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      snprintf(dir, sizeof dir, "%s", argv[++i]);
    else if (!strcmp(argv[i], "--skip-big"))
      skip_big = 1;
    else if (!strcmp(argv[i], "--skip-crash"))
      skip_crash = 1;
    else if (!strcmp(argv[i], "--skip-ingest"))
      skip_ingest = 1;
    else {
      fprintf(stderr, "usage: bench_store [--items N] [--kills K] [--dir DIR] [--skip-big] [--skip-crash] [--skip-ingest]\n");
      return 2;
    }
  }
  char cmd[8400];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  if (system(cmd))
    return 1;
  const char *data = getenv("BF_SHARED") ? getenv("BF_SHARED") : BF_SHARED_DIR;
  char dpath[4200];
  snprintf(dpath, sizeof dpath, "%s/data", data);
  printf("bench_store: bfm %s, data %s, scratch %s (timings on a shared machine are noisy)\n", BF_VERSION,
         dpath, dir);

  /* cartridge cases: all 40 Fadul scans, one row each */
  char man[4300];
  if (skip_ingest)
    goto big;
  snprintf(man, sizeof man, "%s/cart.csv", dir);
  FILE *f = fopen(man, "w");
  int ncart = 0;
  if (f) {
    fprintf(f, "type,serial,calibre,kind,scans\n");
    snprintf(cmd, sizeof cmd, "%s/cartridge/fadul", dpath);
    DIR *d = opendir(cmd);
    struct dirent *e;
    while (d && (e = readdir(d)))
      if (strstr(e->d_name, ".x3p")) {
        fprintf(f, "firearm,F%d,9mm Luger,cartridge,\"%s/%s\"\n", ncart, cmd, e->d_name);
        ncart++;
      }
    if (d)
      closedir(d);
    fclose(f);
  }
  ingest_figures("cartridge", man, ncart, 1);
  ingest_figures("cartridge-batch", man, ncart, 10);

  /* bullets: the Hamby 44 and Hamby 252 bullets, lands in order */
  snprintf(man, sizeof man, "%s/bullet.csv", dir);
  f = fopen(man, "w");
  int nl = 0;
  if (f) {
    static const char *rows[][7] = {
      {"hamby44/HS44_Barrel1_Bullet1_Land", "1", "2", "3", "4", "5", "6"},
      {"hamby44/HS44_Barrel1_Bullet2_Land", "1", "2", "3", "4", "5", "6"},
      {"hamby252/Hamby252_Barrel1_Bullet1_Land", "1", "2", "3", "4", "5", NULL},
      {"hamby252/Hamby252_Barrel1_Bullet2_Land", "1", "2", "4", "5", "6", NULL},
      {"hamby252/Hamby252_Barrel2_Bullet1_Land", "1", NULL},
      {"hamby252/Hamby252_Barrel4_Bullet1_Land", "1", NULL}};
    fprintf(f, "type,serial,calibre,kind,scans\n");
    for (int r = 0; r < 6; r++) {
      fprintf(f, "firearm,B%d,9mm Luger,bullet,\"", r);
      for (int l = 1; l < 7 && rows[r][l]; l++, nl++)
        fprintf(f, "%s%s/bullet/%s%s.x3p", l > 1 ? ";" : "", dpath, rows[r][0], rows[r][l]);
      fprintf(f, "\"\n");
    }
    fclose(f);
  }
  ingest_figures("bullet-lands", man, nl, 1);

big:
  if (!skip_big)
    big_store(nbig);

  if (!skip_crash) {
    ck_manifest m;
    char cm[4300], out[4300], why[1024], store[4300];
    snprintf(cm, sizeof cm, "%s/crash.csv", dir);
    snprintf(out, sizeof out, "%s/crash.out", dir);
    if (ck_write_manifest(&m, cm, dpath, 6)) {
      printf("crash: cannot write the manifest\n");
      return 1;
    }
    snprintf(store, sizeof store, "%s/crash-full.h5", dir);
    unlink(store);
    bf_store_create(store, "bench");
    double full = 0;
    ck_run(store, cm, out, -1, 0, &full);
    int landed = 0, bad = 0, rows_kept = 0;
    srand(20261126);
    for (int k = 0; k < kills; k++) {
      snprintf(store, sizeof store, "%s/crash.h5", dir);
      unlink(store);
      if (bf_store_create(store, "bench"))
        break;
      ck_manifest mk = m;
      double delay = full * (double)rand() / RAND_MAX;
      landed += ck_run(store, cm, out, delay, 0, NULL) == 1;
      int v = ck_check(&mk, store, out, why, sizeof why);
      if (v) {
        bad++;
        printf("  kill %d at %.3f s: VIOLATION: %s\n", k, delay, why);
      }
      for (int r = 0; r < mk.nrows; r++)
        rows_kept += mk.stored[r] != 0;
    }
    printf("crash: %d kill -9 points over a %.2f s ingest of %d rows: %d landed inside it, %d violation(s); "
           "%d reported rows all kept\n", kills, full, m.nrows, landed, bad, rows_kept);
  }
  return 0;
}
