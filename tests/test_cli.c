/* The built `bfm` command: help, version, exit codes 0/1/2, errors on stderr naming the file,
 * `info` in text and JSON; the store commands' CLI concerns (strict number flags, exit codes of
 * ingest / firearm add / evidence add / match, a second writer, a full disk), on scans made by
 * `bfm synth`. What ingest stores is tested through the library in test_ingest. */
#include "bf_error.h"
#include "bf_x3p.h"
#include "bf_test.h"

#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *dir;
static char out[1 << 16], err[1 << 16];

/* Runs bfm with args (already shell-quoted); fills out/err; returns the exit code. */
static int run(const char *args)
{
  char o[4200], e[4200];
  snprintf(o, sizeof o, "%s/stdout", dir);
  snprintf(e, sizeof e, "%s/stderr", dir);
  int st = bf_t_bfm(args, o, e);
  snprintf(out, sizeof out, "%s", bf_t_read(o));
  snprintf(err, sizeof err, "%s", bf_t_read(e));
  return st;
}

static int count_lines(const char *s)
{
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

/* Brackets and braces balance outside strings, and the text is one array: JSON enough. */
static int json_ish(const char *s)
{
  int depth = 0, in_str = 0, seen = 0;
  while (*s == ' ' || *s == '\n')
    s++;
  if (*s != '[')
    return 0;
  for (; *s; s++) {
    if (in_str) {
      if (*s == '\\' && s[1])
        s++;
      else if (*s == '"')
        in_str = 0;
      continue;
    }
    if (*s == '"')
      in_str = 1;
    else if (*s == '[' || *s == '{')
      depth++, seen = 1;
    else if (*s == ']' || *s == '}')
      if (--depth < 0)
        return 0;
  }
  return seen && depth == 0 && !in_str;
}

/* The store commands at the command line (synthetic scans, so no ../shared needed). */
static void store_commands(void)
{
  char a[16384], S[4300], M[4400], syn[4200];
  snprintf(syn, sizeof syn, "%s/syn", dir);
  snprintf(S, sizeof S, "%s/s.h5", dir);
  snprintf(M, sizeof M, "%s/manifest.csv", syn);
  snprintf(a, sizeof a, "synth --out '%s' --kind cartridge --firearms 3 --firings 1 --unknown 1 --seed 3", syn);
  CHECK(run(a) == 0);
  snprintf(a, sizeof a, "init '%s'", S);
  CHECK(run(a) == 0);
  /* strict numbers: a usage error (2) naming the flag, never atoi's 0 */
  static const char *bad[] = {"match '%s' 1 --threads abc", "match '%s' 1 --top 0", "match '%s' 1 --keep 5x",
                              "match '%s' 1 --screen -1", "ingest '%s' m.csv --commit-every 1.5",
                              "hits '%s' --run abc", "hits '%s' --item -3", "review '%s' 1x --confirm --examiner e"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(a, sizeof a, bad[i], S);
    int rc = run(a);
    CHECKF(rc == 2 && count_lines(err) >= 1, "`bfm %s`: exit %d, stderr %s", a, rc, err);
  }
  CHECK(run("match x.h5 1 --threads abc") == 2 && strstr(err, "--threads") && strstr(err, "abc"));
  /* a bad header is a usage error; a manifest that does not parse stores nothing */
  char bm[4300], before[72], after[72];
  snprintf(bm, sizeof bm, "%s/bad.csv", syn);
  FILE *f = fopen(bm, "w");
  fputs("type,scans,colour\nfirearm,a.x3p,red\n", f);
  fclose(f);
  snprintf(a, sizeof a, "ingest '%s' '%s'", S, bm);
  CHECK(run(a) == 2 && strstr(err, "colour"));
  f = fopen(bm, "w");
  fputs("type,serial,scans\nfirearm,X,\"a.x3p\n", f);
  fclose(f);
  bf_t_file_sha(before, S);
  CHECK(run(a) == 1 && strstr(err, "unterminated") && count_lines(err) == 1);
  bf_t_file_sha(after, S);
  CHECK(!strcmp(before, after));
  /* a second writer is refused while one holds the lock */
  char lockp[4400];
  snprintf(lockp, sizeof lockp, "%s.lock", S);
  pid_t holder = fork();
  if (holder == 0) {
    execlp("flock", "flock", "-x", lockp, "sleep", "2", (char *)NULL);
    _exit(127);
  }
  usleep(500000);
  snprintf(a, sizeof a, "ingest '%s' '%s'", S, M);
  CHECKF(run(a) == 1 && strstr(err, "another bfm process is writing"), "locked: %s", err);
  waitpid(holder, NULL, 0);
  /* full disk: a file-size limit just above the store makes the first commit fail */
  struct stat sb;
  stat(S, &sb);
  bf_t_file_sha(before, S);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit rl = {(rlim_t)sb.st_size + 20000, (rlim_t)sb.st_size + 20000};
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &rl);
    char o[4300];
    snprintf(o, sizeof o, "%s/stderr", dir);
    if (!freopen("/dev/null", "w", stdout) || !freopen(o, "w", stderr))
      _exit(126);
    execl(BF_BFM_EXE, BF_BFM_EXE, "ingest", S, M, (char *)NULL);
    _exit(127);
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  CHECKF(WIFEXITED(ws) && WEXITSTATUS(ws) == 1, "ingest on a full disk should exit 1");
  bf_t_file_sha(after, S);
  CHECK(!strcmp(before, after));
  /* a read-only store: exit 1, the file unchanged */
  char c[9000];
  snprintf(c, sizeof c, getuid() == 0 ? "chattr +i '%s'" : "chmod 0444 '%s'", S);
  if (system(c) == 0) {
    CHECK(run(a) == 1 && count_lines(err) >= 1);
    snprintf(c, sizeof c, getuid() == 0 ? "chattr -i '%s'" : "chmod 0644 '%s'", S);
    CHECK(system(c) == 0);
    bf_t_file_sha(after, S);
    CHECK(!strcmp(before, after));
  } else
    fprintf(stderr, "cannot make the store read-only here: that case skipped\n");
  /* with room: every row stored (0); again: duplicates, each named with its line (1) */
  CHECK(run(a) == 0 && strstr(out, "row 1: stored item 1") && strstr(out, "4 stored (4 scans), 0 failed"));
  CHECK(run(a) == 1 && strstr(err, "manifest.csv:2:") && strstr(err, "duplicate") && strstr(out, "4 failed (4 duplicate)"));
  /* firearm add / evidence add: missing flags are usage errors; a stored scan is exit 1 */
  snprintf(a, sizeof a, "evidence add '%s' --case C-1 --kind cartridge '%s/cartridge/F0001-1.x3p'", S, syn);
  CHECK(run(a) == 2 && strstr(err, "--item"));
  snprintf(a, sizeof a, "firearm add '%s' --serial 'Z 1' --colour red x.x3p", S);
  CHECK(run(a) == 2 && strstr(err, "--colour"));
  snprintf(a, sizeof a, "firearm add '%s' --serial 'Z 1' '%s/cartridge/F0001-1.x3p'", S, syn);
  CHECK(run(a) == 1 && strstr(err, "duplicate") && strstr(err, "nothing stored"));
  snprintf(a, sizeof a, "evidence add '%s' --case 'C-1' --item \"$(printf '1\\n2')\" --kind cartridge '%s/cartridge/F0001-1.x3p'", S, syn);
  CHECK(run(a) == 1 && strstr(err, "control character"));
  /* match: a stored item, and a scan on the spot */
  snprintf(a, sizeof a, "match '%s' 4 --top 2", S);
  CHECKF(run(a) == 0 && strstr(out, "rank") && strstr(out, "SYN-"), "match: %s %s", out, err);
  snprintf(a, sizeof a, "match '%s' '%s/cartridge/F0001-1.x3p' --json", S, syn);
  CHECK(run(a) == 0 && strstr(out, "\"candidates\""));
  snprintf(a, sizeof a, "match '%s' 99", S);
  CHECK(run(a) == 1 && strstr(err, "no item 99"));
}

int main(void)
{
  if (getuid() == 0) { /* an interrupted run may have left the store immutable: undo first */
    char c[8400];
    snprintf(c, sizeof c, "chattr -i '%s/cli/s.h5' 2>/dev/null", BF_TEST_TMP);
    if (system(c)) {
    }
  }
  dir = bf_t_tmpdir("cli");

  CHECK(run("--help") == 0);
  CHECK(strstr(out, "usage: bfm") && strstr(out, "info"));
  CHECK(run("-h") == 0 && strstr(out, "usage: bfm"));
  CHECK(run("--version") == 0);
  CHECKF(!strncmp(out, "bfm ", 4) && strstr(out, BF_VERSION), "version: %s", out);
  CHECK(run("info --help") == 0);
  CHECK(strstr(out, "bfm info") && strstr(out, "--json"));

  /* usage errors: 2, on stderr, nothing on stdout */
  CHECK(run("") == 2);
  CHECK(run("frobnicate") == 2);
  CHECKF(strstr(err, "frobnicate") != NULL && out[0] == 0, "unknown command on stderr: %s", err);
  CHECK(run("info") == 2);
  CHECK(strstr(err, "bfm info") != NULL);
  CHECK(run("info --no-such-option x.x3p") == 2);
  CHECK(strstr(err, "--no-such-option") != NULL);

  /* a good scan and a broken one */
  bf_surface *s = NULL;
  CHECK(bf_surface_new(&s, 8, 5, 3.125, 3.125) == 0);
  if (!s)
    return bf_t_done();
  for (int i = 0; i < 40; i++)
    s->z[i] = (float)(i % 8) - 2.5f;
  s->z[3] = NAN;
  snprintf(s->meta.manufacturer, sizeof s->meta.manufacturer, "Sensofar \"S neox\"");
  char good[4200], bad[4200], args[13000];
  snprintf(good, sizeof good, "%s/good scan.x3p", dir);
  snprintf(bad, sizeof bad, "%s/broken.x3p", dir);
  CHECKF(bf_x3p_write(good, s, 'D') == 0, "%s", bf_error_last());
  bf_surface_free(s);
  FILE *f = fopen(bad, "wb");
  if (f) {
    fputs("PK\003\004 this is not really a zip", f);
    fclose(f);
  }

  snprintf(args, sizeof args, "info '%s'", good);
  CHECK(run(args) == 0);
  CHECKF(strstr(out, "8 x 5 points") && strstr(out, "3.125") && strstr(out, "verified"),
         "info text: %s", out);
  CHECK(strstr(out, "2.50 %") != NULL); /* 1 of 40 missing */
  CHECK(err[0] == 0);

  snprintf(args, sizeof args, "info '%s'", bad);
  CHECK(run(args) == 1);
  CHECKF(strstr(err, bad) && count_lines(err) == 1, "broken file named on one stderr line: %s", err);

  snprintf(args, sizeof args, "info --json '%s'", good);
  CHECK(run(args) == 0);
  CHECKF(json_ish(out), "json: %s", out);
  CHECK(strstr(out, "\"nx\": 8") && strstr(out, "\"ny\": 5") && strstr(out, "\"data_type\": \"D\""));
  CHECK(strstr(out, "\"md5_main\": \"verified\"") && strstr(out, "\"xy_converted_from_um\": false"));
  CHECK(strstr(out, "Sensofar \\\"S neox\\\"") != NULL); /* quotes escaped */

  /* --header: main.xml only, the same header lines, no heights read or checksums claimed */
  snprintf(args, sizeof args, "info --header '%s'", good);
  CHECK(run(args) == 0);
  CHECKF(strstr(out, "8 x 5 points") && strstr(out, "3.125") && strstr(out, "Sensofar") &&
             strstr(out, "not read") && !strstr(out, "main.xml verified") && !strstr(out, "missing"),
         "info --header: %s", out);
  snprintf(args, sizeof args, "info --header --json '%s'", good);
  CHECK(run(args) == 0);
  CHECKF(json_ish(out) && strstr(out, "\"header_only\": true") && strstr(out, "\"nx\": 8") &&
             !strstr(out, "md5_main"),
         "info --header --json: %s", out);
  snprintf(args, sizeof args, "info --header '%s'", bad);
  CHECK(run(args) == 1);
  CHECK(strstr(err, bad) != NULL);

  /* one bad among good: output for the good ones, 1, the bad one named */
  snprintf(args, sizeof args, "info --json '%s' '%s' '%s'", good, bad, good);
  CHECK(run(args) == 1);
  CHECK(json_ish(out));
  CHECK(strstr(err, bad) != NULL);

  /* on real data: a micrometre file says it was converted */
  const char *data = bf_t_shared("data");
  if (data) {
    snprintf(args, sizeof args, "info --json '%s/cartridge/dfsc-pair/K013sA1.x3p'", data);
    CHECK(run(args) == 0);
    CHECKF(strstr(out, "\"xy_converted_from_um\": true") && strstr(out, "\"z_converted_from_um\": true"),
           "dfsc conversion reported: %s", out);
    snprintf(args, sizeof args, "info '%s/cartridge/dfsc-pair/K013sA1.x3p'", data);
    CHECK(run(args) == 0);
    CHECK(strstr(out, "micrometres (converted)") != NULL);
  }
  store_commands();
  return bf_t_done();
}
