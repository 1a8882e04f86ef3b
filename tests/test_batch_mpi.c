/* The batch over MPI ranks (needs an MPI build and mpirun; skipped otherwise), on a small
 * synthetic store: `mpirun -np 2 bfm batch` stores the same hits (pairs, scores, ranks) as the
 * single-process batch, on 9 cases and on 15 cases with every pair compared (a pair's score must
 * not depend on which rank, or which of its items' searches, compared it); the 2 ranks compute
 * each pair once in the job (the full comparisons they report computed and reused are the single
 * process's), also on 18 cases whose mates are searched on different ranks; kill -9 of a worker rank, then of rank 0 (the writer),
 * each ends the job, and reruns finish with no hit lost or duplicated. */
#include "bf_error.h"
#include "bf_prefilter.h"
#include "bf_store.h"
#include "bf_synth.h"
#include "bf_test.h"
#include "batch_kit.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[4096];


#define OPTS "--threads 1 --keep 5 --screen 3 --min-score 0 --quiet"

static int sh(const char *fmt, const char *a, const char *b)
{
  char cmd[12000];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  return system(cmd);
}

#ifdef BF_MPIEXEC
/* runs a batch command; *full and *reused: the full comparisons it reports computed and reused
 * (summed over ranks by rank 0). Returns the exit status. */
static double t_full_seen; /* the last run's full-comparison seconds (-1: no stage line) */

static int run_counts(const char *cmd, long *full, long *reused)
{
  char line[2048];
  *full = *reused = -1;
  t_full_seen = -1;
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  while (fgets(line, sizeof line, p)) {
    const char *t = strstr(line, ", full comparison ");
    if (strstr(line, "seconds by stage") && t)
      t_full_seen = atof(t + strlen(", full comparison "));
    const char *f = strstr(line, " full comparisons (");
    const char *b = f;
    while (f && b > line && b[-1] >= '0' && b[-1] <= '9')
      b--;
    if (f && b < f) {
      *full = atol(b);
      *reused = atol(f + strlen(" full comparisons ("));
    }
  }
  return pclose(p);
}

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
  hitrow r[256];
  hit_rows(store, r, 256, &dup, &s0);
  pid_t pid = fork();
  if (pid == 0) {
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "exec %s %s batch '%s' " OPTS " --group 1 --wave 1 >/dev/null 2>&1",
             mpirun_cmd(), BF_BFM_EXE, store);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  int killed = -1;
  for (int t = 0; t < 20000; t++) {
    int st, ns = 0;
    if (waitpid(pid, &st, WNOHANG) == pid)
      return -1;
    if (hit_rows(store, r, 256, &dup, &ns) >= 0 && ns >= s0 + after) {
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
  CHECK(make_store(ref, dir) == 0);
  CHECK(bf_t_copy_store(ref, mpi) == 0 && bf_t_copy_store(ref, kil) == 0);
  char bad[4300];
  snprintf(bad, sizeof bad, "%s/bad.bfm", dir);
  CHECK(bf_t_copy_store(ref, bad) == 0);
  /* the same answer: 2 ranks vs one process */
  CHECK(sh("'%s' batch '%s' " OPTS " --group 2", BF_BFM_EXE, ref) == 0);
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "%s %s batch '%s' " OPTS " --group 2", mpirun_cmd(), BF_BFM_EXE, mpi);
  CHECKF(system(cmd) == 0, "%s", cmd);
  hitrow a[256], b[256];
  int da, db, sa, sb;
  int na = hit_rows(ref, a, 256, &da, &sa), nb = hit_rows(mpi, b, 256, &db, &sb);
  printf("single process: %d hits; 2 ranks: %d hits\n", na, nb);
  CHECK(na > 0 && da == 0 && db == 0 && sa == 3 * NF && sb == 3 * NF);
  CHECKF(same_rows(a, na, b, nb), "the 2-rank hits differ from the single process's");
  /* the same answer when a pair's two searches run on different ranks: 15 cases (5 firearms x 3
   * firings), every pair compared from both sides (keep = screen = 14), one item per group and
   * wave (8 waves: a pair scored in one is taken from the memo in the next), so
   * items 1-8 are searched on rank 0 and 9-15 on rank 1. The CMC is not exactly symmetric (seen
   * on these synthetic cases: pair (1, 10) scored 3 in one process and 4 over 2 ranks) */
  char big[4300], bigm[4300];
  snprintf(big, sizeof big, "%s/big.bfm", dir);
  snprintf(bigm, sizeof bigm, "%s/bigmpi.bfm", dir);
  CHECK(make_store_n(big, dir, 5, 3, 0) == 0 && bf_t_copy_store(big, bigm) == 0);
#define ALL "--threads 1 --keep 14 --screen 14 --min-score 0 --quiet --group 1 --wave 1"
  long f1, r1, f2, r2;
  snprintf(cmd, sizeof cmd, "'%s' batch '%s' " ALL, BF_BFM_EXE, big);
  CHECKF(run_counts(cmd, &f1, &r1) == 0, "%s", cmd);
  double t1 = t_full_seen;
  snprintf(cmd, sizeof cmd, "%s %s batch '%s' " ALL, mpirun_cmd(), BF_BFM_EXE, bigm);
  CHECKF(run_counts(cmd, &f2, &r2) == 0, "%s", cmd);
  /* both report the seconds of their 105 CMCs by stage (2 ranks: summed over the ranks) */
  CHECKF(t1 > 0 && t_full_seen > 0, "full-comparison seconds %g and %g", t1, t_full_seen);
  /* each pair computed once in the job: 105 pairs of 15 items, whichever rank asked */
  printf("15 cases, all pairs: full comparisons %ld + %ld reused (one process), %ld + %ld (2 ranks)\n",
         f1, r1, f2, r2);
  CHECK(f1 == 105 && r1 == 105 && f2 == f1 && r2 == r1);
  {
    hitrow c[256], d[256];
    int dc, dd, sc, sd;
    int nc = hit_rows(big, c, 256, &dc, &sc), nd = hit_rows(bigm, d, 256, &dd, &sd);
    printf("15 cases, all pairs: single process: %d hits; 2 ranks: %d hits\n", nc, nd);
    CHECK(nc > 150 && dc == 0 && dd == 0 && sc == 15 && sd == 15);
    CHECKF(same_rows(c, nc, d, nd), "15 cases: the 2-rank hits differ from the single process's");
  }
  /* no pair computed twice in the job when mates are searched on different ranks: firing-major
   * order puts each item's mates in the other half of the queue, the screen keeps 3 of 5 (a
   * pair is often asked for from one side only, or from both in the same wave); waves of 8
   * groups of one (2 waves) */
  {
    char mix[4300], mixm[4300];
    snprintf(mix, sizeof mix, "%s/mix.bfm", dir);
    snprintf(mixm, sizeof mixm, "%s/mixmpi.bfm", dir);
    CHECK(make_store_n(mix, dir, 6, 3, 1) == 0 && bf_t_copy_store(mix, mixm) == 0);
#define MIX "--threads 1 --keep 5 --screen 3 --min-score 0 --quiet --group 1"
    snprintf(cmd, sizeof cmd, "'%s' batch '%s' " MIX, BF_BFM_EXE, mix);
    CHECKF(run_counts(cmd, &f1, &r1) == 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "%s %s batch '%s' " MIX, mpirun_cmd(), BF_BFM_EXE, mixm);
    CHECKF(run_counts(cmd, &f2, &r2) == 0, "%s", cmd);
    hitrow c[256], d[256];
    int dc, dd, sc, sd;
    int nc = hit_rows(mix, c, 256, &dc, &sc), nd = hit_rows(mixm, d, 256, &dd, &sd);
    printf("18 cases, mates apart: full comparisons %ld + %ld reused (one process), %ld + %ld (2 "
           "ranks); %d and %d hits\n", f1, r1, f2, r2, nc, nd);
    CHECK(f1 > 0 && r1 > 0 && f2 == f1 && r2 == r1);
    CHECK(nc > 0 && dc == 0 && dd == 0 && sc == 18 && sd == 18);
    CHECKF(same_rows(c, nc, d, nd), "18 cases: the 2-rank hits differ from the single process's");
  }
  /* kill -9 of the worker rank, then of rank 0 (the writer); reruns finish the run */
  int k1 = run_and_kill(kil, 1, 2);
  printf("worker rank killed after %d items searched\n", k1);
  CHECK(k1 >= 2 && k1 < 3 * NF);
  int k0 = run_and_kill(kil, 0, 1);
  printf("rank 0 killed after %d items searched\n", k0);
  CHECK(k0 == -1 || (k0 > k1 && k0 <= 3 * NF));
  snprintf(cmd, sizeof cmd, "%s %s batch '%s' " OPTS " --group 2", mpirun_cmd(), BF_BFM_EXE, kil);
  CHECKF(system(cmd) == 0, "%s", cmd);
  int dk, sk, nk = hit_rows(kil, b, 256, &dk, &sk);
  CHECKF(dk == 0 && sk == 3 * NF, "%d duplicated, %d searched", dk, sk);
  CHECKF(same_rows(a, na, b, nk), "after the kills: %d hits vs %d", nk, na);
  /* an item whose feature is bad, searched on rank 1: reported and left unsearched, the job
   * goes on and stores every other item's hits (as a candidate it is merely unscored) */
  CHECK(sh("'%s' batch '%s' --limit 0 --quiet >/dev/null", BF_BFM_EXE, bad) == 0); /* describe */
  int64_t bi = add_bad_item(bad);
  char bad1[4300];
  snprintf(bad1, sizeof bad1, "%s/bad1.bfm", dir);
  CHECK(bi > 0 && bf_t_copy_store(bad, bad1) == 0);
  CHECK(sh("'%s' batch '%s' " OPTS " --group 2 2>/dev/null", BF_BFM_EXE, bad1) == 0);
  char berr[4400];
  snprintf(berr, sizeof berr, "%s/bad.err", dir);
  snprintf(cmd, sizeof cmd, "%s %s batch '%s' " OPTS " --group 2 2>'%s'", mpirun_cmd(),
           BF_BFM_EXE, bad, berr);
  CHECKF(system(cmd) == 0, "%s", cmd);
  int dbd, sbd, nbd = hit_rows(bad, b, 256, &dbd, &sbd);
  printf("with a bad item: %d hits, %d searched; %s", nbd, sbd, bf_t_read(berr));
  CHECK(dbd == 0 && sbd == 3 * NF && strstr(bf_t_read(berr), "left unsearched"));
  int d1, s1, n1 = hit_rows(bad1, a, 256, &d1, &s1);
  CHECKF(s1 == 3 * NF && same_rows(a, n1, b, nbd), "with a bad item: %d hits vs %d", nbd, n1);
  return bf_t_done();
#endif
}
