/* The batch over MPI ranks (needs an MPI build and mpirun; skipped otherwise), on a small
 * synthetic store: `mpirun -np 2 bfm batch` stores the same hits (pairs, scores, ranks) as the
 * single-process batch; kill -9 of a worker rank, then of rank 0 (the writer), each ends the job,
 * and reruns finish with no hit lost or duplicated. */
#include "bf_error.h"
#include "bf_store.h"
#include "bf_synth.h"
#include "bf_test.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[4096];

enum { NF = 3 };
/* NF firearms with 2 test-fired cases each and one crime-scene case each, small breech faces */
static int make_store(const char *path)
{
  bf_synth_opts so = BF_SYNTH_OPTS_INIT;
  so.cart_diameter = 1600;
  so.max_rotation = 20;
  bf_synth *g = NULL;
  bf_store *st = NULL;
  int rc = bf_synth_new(&g, &so);
  if (!rc)
    rc = bf_store_create(path, "tester");
  if (!rc)
    rc = bf_store_open(&st, path, BF_STORE_WRITE, "tester");
  if (!rc)
    rc = bf_store_begin(st);
  for (int fa = 0; fa < NF && !rc; fa++) {
    bf_firearm f;
    bf_evidence e;
    int64_t fid = 0, eid = 0;
    memset(&f, 0, sizeof f);
    memset(&e, 0, sizeof e);
    snprintf(f.serial, sizeof f.serial, "SN-%d", fa);
    snprintf(f.calibre, sizeof f.calibre, "9mm");
    snprintf(e.case_no, sizeof e.case_no, "C-%d", 100 + fa);
    snprintf(e.item, sizeof e.item, "1");
    e.kind = BF_KIND_CARTRIDGE;
    rc = bf_store_add_firearm(st, &fid, &f);
    if (!rc)
      rc = bf_store_add_evidence(st, &eid, &e);
    for (int k = 0; k < 3 && !rc; k++) {
      bf_surface *s = NULL;
      bf_feature *ft = NULL;
      int64_t item = 0, sid = 0;
      char name[64];
      snprintf(name, sizeof name, "F%d-%d.x3p", fa, k);
      rc = bf_synth_cartridge(&s, g, fa, k, NULL);
      if (!rc)
        rc = bf_store_add_item(st, &item, BF_KIND_CARTRIDGE, "9mm",
                               k < 2 ? BF_OWNER_FIREARM : BF_OWNER_EVIDENCE, k < 2 ? fid : eid);
      if (!rc)
        rc = bf_store_add_scan(st, &sid, item, 0, name, strlen(name), name, s);
      if (!rc)
        rc = bf_feature_new(&ft, BF_KIND_CARTRIDGE, s->nx, s->ny, s->dx, s->dy);
      if (!rc) {
        memcpy(ft->z, s->z, sizeof(float) * s->nx * s->ny);
        ft->version = 1;
        rc = bf_store_put_feature(st, "cartridge", item, sid, ft);
      }
      bf_feature_free(ft);
      bf_surface_free(s);
    }
  }
  if (!rc)
    rc = bf_store_commit(st);
  if (rc)
    fprintf(stderr, "make_store: %s\n", bf_error_last());
  bf_store_close(st);
  bf_synth_free(g);
  return rc;
}

typedef struct row {
  int64_t q, c;
  double s;
  int rank;
} row;

static int cmp_row(const void *a, const void *b)
{
  const row *x = a, *y = b;
  if (x->q != y->q)
    return x->q < y->q ? -1 : 1;
  return x->c < y->c ? -1 : x->c > y->c;
}

/* hits sorted by (query, candidate); *dup counts pairs stored twice; -1: unreadable */
static int rows(const char *path, row *r, int max, int *dup, int *searched)
{
  bf_store *st = NULL;
  bf_hit *h = NULL;
  size_t n = 0;
  if (bf_store_open(&st, path, BF_STORE_READ, NULL) || bf_store_query_hits(st, NULL, &h, &n)) {
    bf_store_close(st);
    return -1;
  }
  int k = 0;
  for (size_t i = 0; i < n && k < max; i++)
    r[k++] = (row){h[i].query, h[i].candidate, h[i].score, h[i].rank};
  *searched = 0;
  for (size_t i = 0; i < bf_store_nitems(st); i++)
    *searched += bf_store_items(st)[i].searched != 0;
  free(h);
  bf_store_close(st);
  qsort(r, k, sizeof *r, cmp_row);
  *dup = 0;
  for (int i = 1; i < k; i++)
    *dup += r[i].q == r[i - 1].q && r[i].c == r[i - 1].c;
  return k;
}

static int same(const row *a, int na, const row *b, int nb)
{
  if (na != nb)
    return 0;
  for (int i = 0; i < na; i++)
    if (a[i].q != b[i].q || a[i].c != b[i].c || a[i].s != b[i].s || a[i].rank != b[i].rank)
      return 0;
  return 1;
}

#define OPTS "--threads 1 --keep 5 --screen 3 --min-score 0 --quiet"

static int sh(const char *fmt, const char *a, const char *b)
{
  char cmd[12000];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  return system(cmd);
}

#ifdef BF_MPIEXEC
static const char *mpirun_cmd(void)
{
  return BF_MPIEXEC " -np 2 --oversubscribe --allow-run-as-root";
}

/* pid of the process of MPI rank `rank` whose command line names `store` (0: none) */
static pid_t rank_pid(int rank, const char *store)
{
  DIR *d = opendir("/proc");
  struct dirent *e;
  pid_t found = 0;
  char want[64];
  snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
  while (d && !found && (e = readdir(d))) {
    char p[300], buf[65536];
    if (e->d_name[0] < '1' || e->d_name[0] > '9')
      continue;
    snprintf(p, sizeof p, "/proc/%s/cmdline", e->d_name);
    FILE *f = fopen(p, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
      fclose(f);
    int named = 0, isbfm = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
      buf[n] = 0;
      named |= !strcmp(buf + i, store);
      isbfm |= !strcmp(buf + i, "batch");
    }
    if (!named || !isbfm)
      continue;
    snprintf(p, sizeof p, "/proc/%s/environ", e->d_name);
    f = fopen(p, "rb");
    n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
      fclose(f);
    buf[n] = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
      if (!strcmp(buf + i, want))
        found = (pid_t)atoi(e->d_name);
  }
  if (d)
    closedir(d);
  return found;
}

/* starts mpirun on store, kills rank `victim` once `after` more items are searched; returns
 * the number searched when it was killed (-1: the job ended before) */
static int run_and_kill(const char *store, int victim, int after)
{
  int dup, s0 = 0;
  row r[256];
  rows(store, r, 256, &dup, &s0);
  pid_t pid = fork();
  if (pid == 0) {
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "exec %s %s batch '%s' " OPTS " --group 1 >/dev/null 2>&1",
             mpirun_cmd(), BF_BFM_EXE, store);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  int killed = -1;
  for (int t = 0; t < 20000; t++) {
    int st, ns = 0;
    if (waitpid(pid, &st, WNOHANG) == pid)
      return -1;
    if (rows(store, r, 256, &dup, &ns) >= 0 && ns >= s0 + after) {
      pid_t v = rank_pid(victim, store);
      if (v > 0 && kill(v, SIGKILL) == 0) {
        killed = ns;
        break;
      }
    }
    usleep(20000);
  }
  waitpid(pid, NULL, 0);
  return killed;
}
#endif

int main(void)
{
#ifndef BF_MPIEXEC
  printf("SKIP: bfm was built without MPI (no mpirun found)\n");
  return 0;
#else
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  setenv("OMP_NUM_THREADS", "1", 1);
  /* Open MPI keeps buffers until exit: leak reports under ASan would be its, not bfm's (the
   * batch path's leaks are checked in-process by test_batch's allocation sweep) */
  const char *ao = getenv("ASAN_OPTIONS");
  char aopt[1024];
  snprintf(aopt, sizeof aopt, "%s%sdetect_leaks=0", ao ? ao : "", ao && *ao ? ":" : ""); /* last wins */
  setenv("ASAN_OPTIONS", aopt, 1);
  snprintf(dir, sizeof dir, "%s", bf_t_tmpdir("batch_mpi"));
  char ref[4300], mpi[4300], kil[4300];
  snprintf(ref, sizeof ref, "%s/ref.bfm", dir);
  snprintf(mpi, sizeof mpi, "%s/mpi.bfm", dir);
  snprintf(kil, sizeof kil, "%s/kill.bfm", dir);
  CHECK(make_store(ref) == 0);
  CHECK(bf_t_copy_store(ref, mpi) == 0 && bf_t_copy_store(ref, kil) == 0);
  /* the same answer: 2 ranks vs one process */
  CHECK(sh("'%s' batch '%s' " OPTS " --group 2", BF_BFM_EXE, ref) == 0);
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "%s %s batch '%s' " OPTS " --group 2", mpirun_cmd(), BF_BFM_EXE, mpi);
  CHECKF(system(cmd) == 0, "%s", cmd);
  row a[256], b[256];
  int da, db, sa, sb;
  int na = rows(ref, a, 256, &da, &sa), nb = rows(mpi, b, 256, &db, &sb);
  printf("single process: %d hits; 2 ranks: %d hits\n", na, nb);
  CHECK(na > 0 && da == 0 && db == 0 && sa == 3 * NF && sb == 3 * NF);
  CHECKF(same(a, na, b, nb), "the 2-rank hits differ from the single process's");
  /* kill -9 of the worker rank, then of rank 0 (the writer); reruns finish the run */
  int k1 = run_and_kill(kil, 1, 2);
  printf("worker rank killed after %d items searched\n", k1);
  CHECK(k1 >= 2 && k1 < 3 * NF);
  int k0 = run_and_kill(kil, 0, 1);
  printf("rank 0 killed after %d items searched\n", k0);
  CHECK(k0 == -1 || (k0 > k1 && k0 <= 3 * NF));
  snprintf(cmd, sizeof cmd, "%s %s batch '%s' " OPTS " --group 2", mpirun_cmd(), BF_BFM_EXE, kil);
  CHECKF(system(cmd) == 0, "%s", cmd);
  int dk, sk, nk = rows(kil, b, 256, &dk, &sk);
  CHECKF(dk == 0 && sk == 3 * NF, "%d duplicated, %d searched", dk, sk);
  CHECKF(same(a, na, b, nk), "after the kills: %d hits vs %d", nk, na);
  return bf_t_done();
#endif
}
