/* Kill -9 a real `bfm ingest` and check the store: shared by tests/test_crash.c and
 * benchmarks/bench_store.c. The property checked after every kill: the store opens, passes
 * verify, and holds every row the killed ingest had reported "stored" (its scans by SHA-256,
 * under the reported item, with one feature per scan); nothing is half-stored. */
#ifndef BF_CRASH_KIT_H
#define BF_CRASH_KIT_H

#include "bf_error.h"
#include "bf_hash.h"
#include "bf_store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CK_MAXROWS 64
#define CK_MAXSCANS 8

typedef struct ck_manifest {
  int nrows;
  int nscans[CK_MAXROWS];
  char sha[CK_MAXROWS][CK_MAXSCANS][72];
  int stored[CK_MAXROWS]; /* item id once some run reported it stored */
} ck_manifest;

static int ck_file_sha(char hex[72], const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return -1;
  bf_sha256_ctx c;
  bf_sha256_init(&c);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    bf_sha256_update(&c, buf, n);
  fclose(f);
  uint8_t h[32];
  bf_sha256_final(&c, h);
  bf_hex(hex, h, 32);
  return 0;
}

/* Writes a manifest of up to ncart Fadul cartridge rows (firearm and evidence alternating) and
 * one Hamby 252 bullet row of 3 lands. Returns 0 on success. */
static int ck_write_manifest(ck_manifest *m, const char *path, const char *data, int ncart)
{
  static const char *cart[] = {"1-1", "1-2", "2-1", "2-2", "3-1", "3-2", "4-1", "4-2", "5-1", "5-2",
                               "6-1", "6-2", "7-1", "7-2", "8-1", "8-2", "9-1", "9-2", "10-1", "10-2"};
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  memset(m, 0, sizeof *m);
  fprintf(f, "type,serial,make,model,calibre,case,item,kind,scans\n");
  if (ncart > 20)
    ncart = 20;
  for (int i = 0; i < ncart; i++) {
    char p[8400];
    snprintf(p, sizeof p, "%s/cartridge/fadul/Fadul %s.x3p", data, cart[i]);
    if (i % 2 == 0)
      fprintf(f, "firearm,SN-%s,Ruger,P95,9mm Luger,,,cartridge,\"%s\"\n", cart[i], p);
    else
      fprintf(f, "evidence,,,,9mm Luger,CASE-%d,\"case, %s\",cartridge,\"%s\"\n", i, cart[i], p);
    m->nscans[m->nrows] = 1;
    if (ck_file_sha(m->sha[m->nrows][0], p)) {
      fclose(f);
      return -1;
    }
    m->nrows++;
  }
  fprintf(f, "firearm,SN-B1,Ruger,P85,9mm Luger,,,bullet,\"");
  for (int l = 1; l <= 3; l++) {
    char p[8400];
    snprintf(p, sizeof p, "%s/bullet/hamby252/Hamby252_Barrel1_Bullet1_Land%d.x3p", data, l);
    fprintf(f, "%s%s", l > 1 ? ";" : "", p);
    if (ck_file_sha(m->sha[m->nrows][l - 1], p)) {
      fclose(f);
      return -1;
    }
  }
  fprintf(f, "\"\n");
  m->nscans[m->nrows++] = 3;
  return fclose(f) ? -1 : 0;
}

static double ck_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs `bfm ingest store manifest` with stdout to out; kills it with SIGKILL after delay
 * seconds (delay < 0: never). Returns 1 if it was killed, 0 if it ended first, -1 on error;
 * *secs gets its run time. env_crash sets BF_STORE_CRASH_BEFORE_RENAME in the child. */
static int ck_run(const char *store, const char *manifest, const char *out, double delay, int env_crash,
                  double *secs)
{
  double t0 = ck_now();
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    if (!freopen(out, "w", stdout) || !freopen("/dev/null", "w", stderr))
      _exit(126);
    if (env_crash)
      setenv("BF_STORE_CRASH_BEFORE_RENAME", "1", 1);
    execl(BF_BFM_EXE, BF_BFM_EXE, "ingest", "--user", "crashtest", store, manifest, (char *)NULL);
    _exit(127);
  }
  int ws = 0, killed = 0;
  if (delay >= 0) {
    while (ck_now() - t0 < delay) {
      if (waitpid(pid, &ws, WNOHANG) == pid)
        goto ended;
      usleep(2000);
    }
    kill(pid, SIGKILL);
    killed = 1;
  }
  waitpid(pid, &ws, 0);
ended:
  if (secs)
    *secs = ck_now() - t0;
  if (killed && WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL)
    return 1;
  return 0;
}

/* Checks the store after a run whose stdout is in out; rows reported stored are added to
 * m->stored. Returns the number of violated properties (0 = all held); why gets the first. */
static int ck_check(ck_manifest *m, const char *store, const char *out, char *why, size_t nwhy)
{
  int bad = 0;
  why[0] = 0;
  FILE *f = fopen(out, "r");
  char line[1024];
  while (f && fgets(line, sizeof line, f)) {
    int row;
    long long item;
    if (sscanf(line, "row %d: stored item %lld", &row, &item) == 2 && row >= 1 && row <= m->nrows)
      m->stored[row - 1] = (int)item;
  }
  if (f)
    fclose(f);
  bf_store *st = NULL;
  if (bf_store_open(&st, store, BF_STORE_READ, NULL)) {
    snprintf(why, nwhy, "store does not open: %s", bf_error_last());
    return 1;
  }
  int np = 0;
  if (bf_store_verify(st, NULL, NULL, &np)) {
    snprintf(why, nwhy, "verify found %d problem(s): %s", np, bf_error_last());
    bad++;
  }
  for (int r = 0; r < m->nrows; r++) {
    if (!m->stored[r])
      continue;
    for (int s = 0; s < m->nscans[r]; s++) {
      int64_t sid = 0;
      if (bf_store_find_sha256(st, m->sha[r][s], &sid) ||
          bf_store_scans(st)[sid - 1].item != m->stored[r]) {
        if (!bad)
          snprintf(why, nwhy, "row %d reported stored as item %d but scan %d is not there", r + 1,
                   m->stored[r], s + 1);
        bad++;
      }
    }
  }
  /* nothing half-stored: every item has its scans and one feature per scan */
  for (size_t i = 0; i < bf_store_nitems(st); i++) {
    const bf_item *it = &bf_store_items(st)[i];
    const bf_feat_row *rows;
    size_t n, have = 0;
    bf_store_feature_index(st, bf_kind_name(it->kind), &rows, &n);
    for (size_t k = 0; k < n; k++)
      have += rows[k].item == it->id;
    if (it->nscans < 1 || have != (size_t)it->nscans) {
      if (!bad)
        snprintf(why, nwhy, "item %lld has %d scans and %zu features", (long long)it->id, it->nscans, have);
      bad++;
    }
  }
  bf_store_close(st);
  return bad;
}

#endif
