/* bfm ingest / firearm add / evidence add / verify / export at the command line: a manifest
 * with good and bad rows (malformed, missing file, duplicate, unreadable scan, quoted commas),
 * a re-ingest (duplicates only), a read-only store and a full disk (file-size limit): each
 * failure is named, and the store is left as it was. Real scans from ../shared/data. */
#include "bf_error.h"
#include "bf_hash.h"
#include "bf_store.h"
#include "bf_test.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[4096], store[4200], out[4200], err[4200];

/* Runs bfm with args, stdout/stderr into the files out/err; returns the exit code. */
static int bfm(const char *args) { return bf_t_bfm(args, out, err); }

static int has(const char *path, const char *needle)
{
  const char *t = bf_t_read(path);
  int r = strstr(t, needle) != NULL;
  if (!r)
    fprintf(stderr, "--- %s lacks '%s'; it holds:\n%s\n", path, needle, t);
  return r;
}

static size_t nitems(void)
{
  bf_store *st = NULL;
  size_t n = (size_t)-1;
  if (bf_store_open(&st, store, BF_STORE_READ, NULL) == 0)
    n = bf_store_nitems(st);
  bf_store_close(st);
  return n;
}

int main(void)
{
  const char *data = bf_t_shared("data");
  if (!data)
    return bf_t_done();
  char ddir[4096];
  snprintf(ddir, sizeof ddir, "%s", data);
  /* an earlier interrupted run may have left the store immutable: undo before cleaning */
  snprintf(dir, sizeof dir, "%s/ingest", BF_TEST_TMP);
  if (getuid() == 0) {
    char c[9000];
    snprintf(c, sizeof c, "chattr -i '%s/s.h5' '%s' 2>/dev/null", dir, dir);
    if (system(c)) {
    }
  }
  snprintf(dir, sizeof dir, "%s", bf_t_tmpdir("ingest"));
  snprintf(store, sizeof store, "%s/s.h5", dir);
  snprintf(out, sizeof out, "%s/out.txt", dir);
  snprintf(err, sizeof err, "%s/err.txt", dir);

  /* a broken scan file and the manifest */
  char path[8192];
  snprintf(path, sizeof path, "%s/broken.x3p", dir);
  FILE *f = fopen(path, "w");
  fputs("PK\003\004 this is not a zip archive", f);
  fclose(f);
  snprintf(path, sizeof path, "%s/manifest.csv", dir);
  f = fopen(path, "w");
  fprintf(f, "type,serial,make,model,calibre,case,item,notes,kind,scans\n"
             "# comment line\n"
             "firearm,RG-1,Ruger,SR9,9mm Luger,,,,cartridge,%s/cartridge/fadul/Fadul 1-1.x3p\n"
             "evidence,,,,9mm Luger,C-17,\"bullet 4, left\",\"found \"\"near\"\" door, wet\",bullet,"
             "%s/bullet/hamby252/Hamby252_Barrel1_Bullet1_Land1.x3p;%s/bullet/hamby252/Hamby252_Barrel1_Bullet1_Land2.x3p\n"
             "weapon,RG-2,,,,,,,,x.x3p\n"
             "firearm,RG-3,Ruger,SR9,9mm Luger,,,,cartridge,%s/no/such/file.x3p\n"
             "evidence,,,,,C-18,1,,cartridge,%s/cartridge/fadul/Fadul 1-1.x3p\n"
             "evidence,,,,,C-19,1,,cartridge,broken.x3p\n"
             "firearm,RG-4,,,,,,,gun,%s/cartridge/fadul/Fadul 2-1.x3p\n"
             "evidence,,,,,C-20,1,,cartridge,\"unterminated\n",
          ddir, ddir, ddir, ddir, ddir, ddir);
  fclose(f);

  char args[32768];
  snprintf(args, sizeof args, "init --user alice '%s'", store);
  CHECK(bfm(args) == 0);
  CHECK(bfm(args) == 1 && has(err, "already exists"));
  snprintf(args, sizeof args, "ingest --user alice '%s' '%s'", store, path);
  int rc = bfm(args);
  CHECK(rc == 1 && has(err, "unterminated")); /* a manifest that does not parse stores nothing */
  CHECK(nitems() == 0);

  /* drop the unterminated row and run again */
  char *m = strdup(bf_t_read(path));
  char *cut = strstr(m, "evidence,,,,,C-20");
  if (cut)
    *cut = 0;
  f = fopen(path, "w");
  fputs(m, f);
  fclose(f);
  free(m);
  rc = bfm(args);
  CHECKF(rc == 1, "ingest with bad rows should exit 1, got %d", rc);
  CHECK(has(out, "row 1: stored item 1"));
  CHECK(has(out, "row 2: stored item 2 (bullet, 2 scan(s))"));
  CHECK(has(out, "2 stored (3 scans), 5 failed (1 duplicate)"));
  CHECK(has(err, "manifest.csv:5: type must be firearm or evidence"));
  CHECK(has(err, "manifest.csv:6:") && has(err, "no/such/file.x3p"));
  CHECK(has(err, "manifest.csv:7:") && has(err, "duplicate"));
  CHECK(has(err, "manifest.csv:8:") && has(err, "broken.x3p"));
  CHECK(has(err, "manifest.csv:9: kind must be cartridge or bullet"));
  CHECK(nitems() == 2);

  bf_store *st = NULL;
  CHECK(bf_store_open(&st, store, BF_STORE_READ, NULL) == 0);
  if (st) {
    const bf_evidence *e = bf_store_evidence_by_case_item(st, "C-17", "bullet 4, left");
    CHECK(e && !strcmp(e->notes, "found \"near\" door, wet") && e->kind == BF_KIND_BULLET);
    const bf_firearm *fa = bf_store_firearm_by_serial(st, "RG-1");
    CHECK(fa && !strcmp(fa->calibre, "9mm Luger") && !strcmp(fa->user, "alice"));
    bf_feature **fv = NULL;
    int nf = 0;
    CHECK(bf_store_get_features(st, "bullet", 2, &fv, &nf) == 0 && nf == 2 && fv[0]->land == 1 &&
          fv[1]->land == 2);
    for (int i = 0; i < nf; i++)
      bf_feature_free(fv[i]);
    free(fv);
    CHECK(bf_store_nfirearms(st) == 1 && bf_store_nevidence(st) == 1); /* failed rows left nothing */
    bf_store_close(st);
  }

  /* re-ingest: every good row is now a duplicate; nothing is stored twice */
  rc = bfm(args);
  CHECK(rc == 1 && has(out, "0 stored") && nitems() == 2);

  /* firearm add: two items on one command line, the second a bullet given as a comma list */
  snprintf(args, sizeof args,
           "firearm add '%s' --serial 'KB 77' --make Beretta --model 92 --calibre 9mm --transit 'AT;DE' "
           "--export 2020-01-02 '%s/cartridge/fadul/Fadul 3-1.x3p' "
           "'%s/bullet/hamby252/Hamby252_Barrel2_Bullet1_Land1.x3p,%s/bullet/hamby252/Hamby252_Barrel4_Bullet1_Land1.x3p'",
           store, ddir, ddir, ddir);
  CHECK(bfm(args) == 0 && has(out, "stored item 4: bullet, 2 scan(s)") && nitems() == 4);
  snprintf(args, sizeof args, "evidence add '%s' --case C-30 --item 1 --kind cartridge '%s/cartridge/fadul/Fadul 3-1.x3p'",
           store, ddir);
  CHECK(bfm(args) == 1 && has(err, "duplicate") && nitems() == 4);
  snprintf(args, sizeof args, "evidence add '%s' --case C-30 --kind cartridge x.x3p", store);
  CHECK(bfm(args) == 2);

  snprintf(args, sizeof args, "verify '%s'", store);
  CHECK(bfm(args) == 0 && has(out, "OK (4 items, 6 scans)"));
  snprintf(args, sizeof args, "export '%s' --what firearms --format csv", store);
  CHECK(bfm(args) == 0 && has(out, "KB 77") && has(out, "AT;DE") && has(out, "2020-01-02"));
  snprintf(args, sizeof args, "export '%s' --what evidence --format json", store);
  CHECK(bfm(args) == 0 && has(out, "\"item\": \"bullet 4, left\"") && has(out, "\\\"near\\\""));
  snprintf(args, sizeof args, "info '%s'", store);
  CHECK(bfm(args) == 0 && has(out, "items        4"));

  /* a second writer is refused while one holds the lock (flock held by a child shell) */
  char lockp[4300];
  snprintf(lockp, sizeof lockp, "%s.lock", store);
  pid_t holder = fork();
  if (holder == 0) {
    execlp("flock", "flock", "-x", lockp, "sleep", "3", (char *)NULL);
    _exit(127);
  }
  usleep(500000);
  snprintf(path, sizeof path, "%s/manifest.csv", dir);
  snprintf(args, sizeof args, "ingest '%s' '%s'", store, path);
  rc = bfm(args);
  CHECKF(rc == 1 && has(err, "another bfm process is writing"), "locked store: rc %d", rc);
  waitpid(holder, NULL, 0); /* (flock's child sleep holds the lock until it ends) */

  /* read-only store: the command fails, the file is unchanged */
  char before[72], after[72];
  bf_t_file_sha(before, store);
  snprintf(path, sizeof path, "%s/m2.csv", dir);
  f = fopen(path, "w");
  fprintf(f, "type,serial,scans\nfirearm,RO-1,%s/cartridge/fadul/Fadul 4-1.x3p\n", ddir);
  fclose(f);
  snprintf(args, sizeof args, "ingest '%s' '%s'", store, path);
  char c[9000];
  if (getuid() == 0)
    snprintf(c, sizeof c, "chattr +i '%s'", store);
  else
    snprintf(c, sizeof c, "chmod 0444 '%s'", store);
  if (system(c) == 0) {
    rc = bfm(args);
    CHECKF(rc == 1, "ingest into a read-only store: rc %d", rc);
    bf_t_file_sha(after, store);
    CHECK(!strcmp(before, after) && before[0]);
    snprintf(c, sizeof c, getuid() == 0 ? "chattr -i '%s'" : "chmod 0644 '%s'", store);
    CHECK(system(c) == 0);
  } else
    fprintf(stderr, "cannot make the store read-only here: that case skipped\n");
  CHECK(nitems() == 4);

  /* full disk: a file-size limit just above the store makes the write fail midway */
  struct stat sb;
  stat(store, &sb);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit rl = {(rlim_t)sb.st_size + 50000, (rlim_t)sb.st_size + 50000};
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &rl);
    if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr))
      _exit(126);
    execl(BF_BFM_EXE, BF_BFM_EXE, "ingest", store, path, (char *)NULL);
    _exit(127);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  CHECKF(WIFEXITED(ws) && WEXITSTATUS(ws) == 1, "ingest on a full disk should exit 1");
  CHECK(has(err, "m2.csv:2:"));
  bf_t_file_sha(after, store);
  CHECK(!strcmp(before, after));
  snprintf(c, sizeof c, "%s.tmp", store);
  CHECK(access(c, F_OK) != 0); /* no transaction copy left behind */
  snprintf(args, sizeof args, "verify '%s'", store);
  CHECK(bfm(args) == 0);
  /* and with room again the same row goes in */
  snprintf(args, sizeof args, "ingest '%s' '%s'", store, path);
  CHECK(bfm(args) == 0 && nitems() == 5);
  return bf_t_done();
}
