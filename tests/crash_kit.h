/* Kill -9 real bfm commands (ingest, batch, review, compact) and check the store: shared by
 * tests/test_crash.c and benchmarks/bench_store.c. Inputs are made by `bfm synth`, so nothing
 * here needs ../shared. The properties checked after every kill: the store opens and passes
 * verify; every row an ingest had reported "stored" is there (its scans by SHA-256, under the
 * reported item, one feature per scan); nothing is half-stored; the writer that comes next
 * removes segment files no manifest lists; a killed batch left only hits of items it marked
 * searched; a killed review left the old or the new status (the new one if it had reported
 * success); a killed compaction left exactly the store it started from. */
#ifndef BF_CRASH_KIT_H
#define BF_CRASH_KIT_H

#include "bf_error.h"
#include "bf_hash.h"
#include "bf_store.h"

#include <dirent.h>
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

static double ck_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs argv (argv[0] = BF_BFM_EXE) with stdout to out (NULL: /dev/null); kills it with SIGKILL
 * after delay seconds (delay < 0: never). Returns 1 if it was killed, 0 if it ended first, -1 on
 * error; *status gets its exit status (-1 when killed), *secs its run time. env_crash sets
 * BF_STORE_CRASH_BEFORE_RENAME in the child (it dies between its synced files and the commit). */
static int ck_spawn(char *const argv[], const char *out, double delay, int env_crash, int *status,
                    double *secs)
{
  double t0 = ck_now();
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    if (!freopen(out ? out : "/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
      _exit(126);
    if (env_crash)
      setenv("BF_STORE_CRASH_BEFORE_RENAME", "1", 1);
    execv(argv[0], argv);
    _exit(127);
  }
  int ws = 0, killed = 0;
  if (delay >= 0) {
    while (ck_now() - t0 < delay) {
      if (waitpid(pid, &ws, WNOHANG) == pid)
        goto ended;
      usleep(1000);
    }
    kill(pid, SIGKILL);
    killed = 1;
  }
  waitpid(pid, &ws, 0);
ended:
  if (secs)
    *secs = ck_now() - t0;
  if (status)
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
  if (killed && WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL)
    return 1;
  return 0;
}

/* `bfm synth` into folder out (cartridge cases and 3-land bullets of nfirearms firearms, two
 * firings each), then the manifest's rows and their scans' SHA-256. Returns 0 on success. */
static int ck_synth(ck_manifest *m, const char *out, int nfirearms, char manifest[8400])
{
  char n[16];
  snprintf(n, sizeof n, "%d", nfirearms);
  char *argv[] = {(char *)BF_BFM_EXE, (char *)"synth", (char *)"--out", (char *)out, (char *)"--kind",
                  (char *)"both", (char *)"--firearms", n, (char *)"--firings", (char *)"2",
                  (char *)"--lands", (char *)"3", (char *)"--seed", (char *)"11", NULL};
  int status = 0;
  if (ck_spawn(argv, NULL, -1, 0, &status, NULL) || status)
    return -1;
  memset(m, 0, sizeof *m);
  snprintf(manifest, 8400, "%s/manifest.csv", out);
  FILE *f = fopen(manifest, "r");
  if (!f)
    return -1;
  char line[4096];
  int first = 1;
  while (fgets(line, sizeof line, f) && m->nrows < CK_MAXROWS) {
    if (first) { /* type,kind,scans,...: synthetic fields never hold commas or quotes */
      first = 0;
      continue;
    }
    char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL, *c3 = c2 ? strchr(c2 + 1, ',') : NULL;
    if (!c3)
      break;
    *c3 = 0;
    int k = 0;
    for (char *s = c2 + 1, *e; s && *s && k < CK_MAXSCANS; s = e ? e + 1 : NULL) {
      if ((e = strchr(s, ';')))
        *e = 0;
      char p[8400];
      snprintf(p, sizeof p, "%s/%s", out, s);
      if (ck_file_sha(m->sha[m->nrows][k++], p)) {
        fclose(f);
        return -1;
      }
    }
    m->nscans[m->nrows++] = k;
  }
  fclose(f);
  return m->nrows ? 0 : -1;
}

/* Runs `bfm ingest` (commit per row) on store; see ck_spawn. */
static int ck_run(const char *store, const char *manifest, const char *out, double delay, int env_crash,
                  double *secs)
{
  char *argv[] = {(char *)BF_BFM_EXE, (char *)"ingest", (char *)"--user", (char *)"crashtest",
                  (char *)store, (char *)manifest, NULL};
  return ck_spawn(argv, out, delay, env_crash, NULL, secs);
}

/* Segment files in STORE.d that the manifest does not list (what a crash leaves). */
static int ck_unlisted(const char *store)
{
  char d[4400];
  snprintf(d, sizeof d, "%s.d", store);
  bf_store *st = NULL;
  if (bf_store_open(&st, store, BF_STORE_READ, NULL))
    return -1;
  bf_store_stats s;
  bf_store_stats_get(st, &s);
  bf_store_close(st);
  int n = 0;
  DIR *dp = opendir(d);
  struct dirent *e;
  while (dp && (e = readdir(dp)))
    n += !strncmp(e->d_name, "seg-", 4);
  if (dp)
    closedir(dp);
  return n - s.segments;
}

/* Opens a writer and closes it: the next writer's clean-up of a crash's leftovers. */
static int ck_writer_cleans(const char *store)
{
  bf_store *st = NULL;
  int rc = bf_store_open(&st, store, BF_STORE_WRITE, "crashtest");
  bf_store_close(st);
  return rc ? -1 : ck_unlisted(store);
}

/* A digest of everything a store holds (rows, hit reviews, scan SHA-256s, feature counts and a
 * sum of feature values): equal before and after a compaction, a kill, or nothing at all. */
static int ck_digest(const char *store, char *buf, size_t n)
{
  bf_store *st = NULL;
  if (bf_store_open(&st, store, BF_STORE_READ, NULL))
    return -1;
  int rc = bf_store_load(st);
  size_t len = 0;
  len += (size_t)snprintf(buf + len, n - len, "items %zu firearms %zu evidence %zu scans %zu;",
                          bf_store_nitems(st), bf_store_nfirearms(st), bf_store_nevidence(st),
                          bf_store_nscans(st));
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < bf_store_nscans(st); i++)
    for (const char *p = bf_store_scans(st)[i].sha256; *p; p++)
      h = (h ^ (unsigned char)*p) * 1099511628211ull;
  for (size_t i = 0; i < bf_store_nitems(st); i++)
    h = (h ^ (uint64_t)(bf_store_items(st)[i].searched * 7 + bf_store_items(st)[i].nscans)) * 1099511628211ull;
  bf_hit *hv = NULL;
  size_t nh = 0;
  if (!rc)
    rc = bf_store_query_hits(st, NULL, &hv, &nh);
  for (size_t i = 0; i < nh; i++) {
    h = (h ^ (uint64_t)(hv[i].id * 31 + hv[i].status)) * 1099511628211ull;
    for (const char *p = hv[i].note; *p; p++)
      h = (h ^ (unsigned char)*p) * 1099511628211ull;
  }
  free(hv);
  char kinds[16][48];
  int nk = bf_store_feature_kinds(st, kinds, 16);
  for (int k = 0; k < nk && !rc && len < n; k++) {
    const bf_feat_row *r;
    size_t nr = 0;
    double sum = 0;
    rc = bf_store_feature_index(st, kinds[k], &r, &nr);
    for (size_t i = 0; i < nr && !rc; i++) {
      bf_feature *f = NULL;
      if (!(rc = bf_store_read_block(st, kinds[k], i, 1, &f)))
        for (int j = 0; j < f->nx * f->ny; j++)
          sum += f->z[j] == f->z[j] ? f->z[j] : 0;
      bf_feature_free(f);
    }
    len += (size_t)snprintf(buf + len, n - len, " %s %zu %.6g;", kinds[k], nr, sum);
  }
  if (len < n)
    snprintf(buf + len, n - len, " hits %zu hash %016llx", nh, (unsigned long long)h);
  bf_store_close(st);
  return rc ? -1 : 0;
}

/* Checks the store after an ingest run whose stdout is in out; rows reported stored are added
 * to m->stored. Returns the number of violated properties (0 = all held); why gets the first. */
static int ck_check(ck_manifest *m, const char *store, const char *out, char *why, size_t nwhy)
{
  int bad = 0;
  why[0] = 0;
  FILE *f = out ? fopen(out, "r") : NULL;
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
  /* a killed batch: every stored hit belongs to an item marked searched by its run */
  bf_hit *hv = NULL;
  size_t nh = 0;
  if (!bf_store_query_hits(st, NULL, &hv, &nh))
    for (size_t i = 0; i < nh; i++) {
      const bf_item *q = bf_store_item(st, hv[i].query);
      if (!q || q->searched < hv[i].run) {
        if (!bad)
          snprintf(why, nwhy, "hit %lld of run %lld: its query item %lld is not marked searched",
                   (long long)hv[i].id, (long long)hv[i].run, (long long)hv[i].query);
        bad++;
      }
    }
  free(hv);
  bf_store_close(st);
  return bad;
}

/* Status of hit id (or -1). */
static int ck_hit_status(const char *store, int64_t id, char note[256])
{
  bf_store *st = NULL;
  int s = -1;
  if (bf_store_open(&st, store, BF_STORE_READ, NULL))
    return -1;
  bf_hit *hv = NULL;
  size_t nh = 0;
  if (!bf_store_query_hits(st, NULL, &hv, &nh))
    for (size_t i = 0; i < nh; i++)
      if (hv[i].id == id) {
        s = hv[i].status;
        if (note)
          snprintf(note, 256, "%s", hv[i].note);
      }
  free(hv);
  bf_store_close(st);
  return s;
}

#endif
