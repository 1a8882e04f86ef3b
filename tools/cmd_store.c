/* Store commands: bfm init, firearm add, evidence add, ingest, verify, export (and the store
 * half of bfm info). Each is flags -> options -> one library call -> print: submitting items
 * and the ingest driver live in engine/bf_submit.h (manifest format: README "Manifest"), the
 * scan lists follow bf_scanset.h.
 * Exit status: 0 when every item/row was stored, 1 when any was not (or the store failed), 2 for
 * a usage error. */
#define _GNU_SOURCE
#include "bf_error.h"
#include "bf_store.h"
#include "bf_submit.h"
#include "bf_out.h"
#include "bf_text.h"
#include "bfm_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *arg_user(int argc, char **argv)
{
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--user"))
      return argv[i + 1];
  return NULL;
}

/* ---- bfm init ---- */

int bfm_cmd_init(int argc, char **argv)
{
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--user") && i + 1 < argc)
      i++;
    else if (argv[i][0] == '-')
      return bfm_usage_error("init", "unknown option %s", argv[i]);
    else if (path)
      return bfm_usage_error("init", "one store at a time");
    else
      path = argv[i];
  }
  if (!path)
    return bfm_usage_error("init", "no store path given");
  if (bf_store_create(path, arg_user(argc, argv)))
    return bfm_fail("init");
  printf("created store %s (schema %d)\n", path, BF_STORE_SCHEMA);
  return BFM_EXIT_OK;
}

/* ---- bfm firearm add / bfm evidence add ---- */

typedef struct add_args {
  const char *cmd, *store, *user;
  bf_submission t; /* the record every item shares */
  char **ops;
  int nops;
} add_args;

/* argv -> the shared record and the scan operands; 0 or an exit code. */
static int add_parse(add_args *a, int argc, char **argv)
{
  const char *cmd = a->cmd;
  if (argc < 2 || strcmp(argv[1], "add"))
    return bfm_usage_error(cmd, "expected `bfm %s add STORE ...`", cmd);
  for (int i = 2; i < argc; i++) {
    const char *f = argv[i];
    if (f[0] != '-' || f[1] != '-') {
      if (!a->store)
        a->store = f;
      else
        a->ops[a->nops++] = argv[i];
      continue;
    }
    if (i + 1 >= argc)
      return bfm_usage_error(cmd, "%s needs a value", f);
    const char *v = argv[++i];
    int e;
    if (!strcmp(f, "--user"))
      a->user = v;
    else if (!strcmp(f, "--kind")) {
      if (!(a->t.kind = bfm_parse_kind(v)))
        return bfm_usage_error(cmd, "--kind must be cartridge or bullet, not '%s'", v);
    } else if ((e = bf_submission_set(&a->t, f + 2, v)) == BF_ENOTFOUND)
      return bfm_usage_error(cmd, "unknown option %s", f);
    else if (e)
      return bfm_usage_error(cmd, "%s: %s", f, bf_error_last());
  }
  if (!a->store)
    return bfm_usage_error(cmd, "no store given");
  if (a->t.type == BF_OWNER_FIREARM && !a->t.firearm.serial[0])
    return bfm_usage_error(cmd, "--serial is required");
  if (a->t.type == BF_OWNER_EVIDENCE && (!a->t.evidence.case_no[0] || !a->t.evidence.item[0] || !a->t.kind))
    return bfm_usage_error(cmd, "--case, --item and --kind are required");
  if (!a->nops)
    return bfm_usage_error(cmd, "no scan given");
  return 0;
}

typedef struct add_ctx {
  const add_args *a;
  const int *op; /* submission -> operand */
  int failed;
} add_ctx;

static void add_event(void *vctx, const bf_submit_event *ev)
{
  add_ctx *c = vctx;
  const add_args *a = c->a;
  if (ev->rc) {
    fprintf(stderr, "bfm %s add: %s: %s%s\n", a->cmd, a->ops[c->op[ev->index]], ev->message,
            a->t.type == BF_OWNER_FIREARM ? " (item skipped)" : "");
    c->failed++;
    return;
  }
  if (a->t.type == BF_OWNER_FIREARM && !ev->res->owner_new && ev->index == 0)
    fprintf(stderr, "bfm firearm add: serial %s is firearm %lld already: the scans were added to it\n",
            a->t.firearm.serial, (long long)ev->res->owner);
  printf("stored item %lld: %s, %d scan(s) of %s %lld\n", (long long)ev->res->item, bf_kind_name(ev->res->kind),
         ev->res->nscans, a->cmd, (long long)ev->res->owner);
}

/* firearm: each operand is one item (a case scan, a bullet folder or a comma list of lands);
 * evidence: all operands are the one item's scans. */
static int record_add(int argc, char **argv, int type)
{
  add_args a = {.cmd = type == BF_OWNER_FIREARM ? "firearm" : "evidence", .t = {.type = type}};
  bf_submission *subs = NULL;
  int *op = NULL, n = 0, stored = 0, rc = 0;
  add_ctx ctx = {&a, NULL, 0};
  bf_store *st = NULL;
  a.ops = calloc((size_t)argc, sizeof *a.ops);
  subs = calloc((size_t)argc, sizeof *subs);
  op = calloc((size_t)argc, sizeof *op);
  if (!a.ops || !subs || !op) {
    rc = bfm_usage_error(a.cmd, "out of memory");
    goto done;
  }
  if ((rc = add_parse(&a, argc, argv)))
    goto done;
  int nitems = type == BF_OWNER_FIREARM ? a.nops : 1;
  for (int k = 0; k < nitems; k++) {
    subs[n] = a.t;
    char **specs = type == BF_OWNER_FIREARM ? &a.ops[k] : a.ops;
    if (bf_scanset_build(&subs[n].scans, specs, type == BF_OWNER_FIREARM ? 1 : a.nops, ',', NULL)) {
      fprintf(stderr, "bfm %s add: %s%s\n", a.cmd, bf_error_last(), type == BF_OWNER_FIREARM ? " (item skipped)" : "");
      ctx.failed++;
      continue;
    }
    op[n++] = k;
  }
  ctx.op = op;
  bf_submit_many_opts so = {.all_or_nothing = type == BF_OWNER_EVIDENCE, .event = add_event, .ctx = &ctx};
  if (!n)
    fprintf(stderr, "bfm %s add: nothing stored\n", a.cmd);
  else if (bf_store_open(&st, a.store, BF_STORE_WRITE, a.user)) {
    rc = bfm_fail(a.cmd);
    goto done;
  } else if (bf_submit_many(st, subs, n, &so, &stored) && !stored) /* (refusals were printed) */
    fprintf(stderr, "bfm %s add: %s%s\n", a.cmd, ctx.failed ? "" : bf_error_last(),
            ctx.failed ? "nothing stored" : ": nothing stored");
  rc = ctx.failed || stored < n ? BFM_EXIT_FAIL : BFM_EXIT_OK;
done:
  for (int k = 0; subs && k < n; k++)
    bf_submission_clear(&subs[k]);
  free(subs);
  free(op);
  free(a.ops);
  bf_store_close(st);
  return rc;
}

int bfm_cmd_firearm(int argc, char **argv)
{
  return record_add(argc, argv, BF_OWNER_FIREARM);
}

int bfm_cmd_evidence(int argc, char **argv)
{
  return record_add(argc, argv, BF_OWNER_EVIDENCE);
}

/* ---- bfm ingest ---- */

typedef struct ingest_ctx {
  bfm_progress prog;
  int quiet;
} ingest_ctx;

static void ingest_event(void *vctx, const bf_ingest_event *ev)
{
  ingest_ctx *c = vctx;
  if (c->prog.tty)
    fprintf(stderr, "\r\033[K"); /* clear the bar before the lines */
  if (ev->status == BF_INGEST_FAILED)
    fprintf(stderr, "%s\n", ev->message);
  else if (!c->quiet) {
    printf("row %d: stored item %lld (%s, %d scan(s)) line %d\n", ev->row, (long long)ev->item,
           bf_kind_name(ev->kind), ev->nscans, ev->line);
    fflush(stdout);
  }
}

static void ingest_progress(void *vctx, int done, int total)
{
  (void)total;
  bfm_progress_step(&((ingest_ctx *)vctx)->prog, done);
}

int bfm_cmd_ingest(int argc, char **argv)
{
  const char *store = NULL, *manifest = NULL, *user = NULL;
  ingest_ctx ctx = {.quiet = 0};
  bf_ingest_opts o = BF_INGEST_OPTS_INIT;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--user") && i + 1 < argc)
      user = argv[++i];
    else if (!strcmp(argv[i], "--commit-every") && i + 1 < argc) {
      if (bfm_parse_int("ingest", "--commit-every", argv[++i], 1, 1000000000, &o.commit_every))
        return BFM_EXIT_USAGE;
    } else if (!strcmp(argv[i], "--quiet"))
      ctx.quiet = 1;
    else if (argv[i][0] == '-')
      return bfm_usage_error("ingest", "unknown option %s", argv[i]);
    else if (!store)
      store = argv[i];
    else if (!manifest)
      manifest = argv[i];
    else
      return bfm_usage_error("ingest", "too many arguments");
  }
  if (!store || !manifest)
    return bfm_usage_error("ingest", "usage: bfm ingest STORE manifest.csv");
  bf_manifest *m = NULL;
  bf_store *st = NULL;
  bf_ingest_stats s = {0};
  int rc = bf_manifest_read(&m, manifest);
  if (rc) /* a manifest that does not parse stores nothing; a bad header is a usage error */
    return rc == BF_EINVAL ? bfm_usage_error("ingest", "%s", bf_error_last()) : bfm_fail("ingest");
  if (bf_store_open(&st, store, BF_STORE_WRITE, user)) {
    rc = bfm_fail("ingest");
    goto done;
  }
  o.event = ingest_event;
  o.progress = ingest_progress;
  o.ctx = &ctx;
  bfm_progress_start(&ctx.prog, "ingest", bf_manifest_nrows(m));
  rc = bf_ingest_run(st, m, &o, &s);
  bfm_progress_end(&ctx.prog);
  if (rc && s.failed == 0) /* stopped before the rows (the store refused to write) */
    fprintf(stderr, "bfm ingest: %s\n", bf_error_last());
  printf("ingest %s: %d row(s): %d stored (%d scans), %d failed (%d duplicate)\n", manifest, s.rows, s.stored,
         s.scans, s.failed, s.duplicates);
  rc = rc ? BFM_EXIT_FAIL : BFM_EXIT_OK;
done:
  bf_store_close(st);
  bf_manifest_free(m);
  return rc;
}

/* ---- bfm verify ---- */

static void print_problem(void *ctx, const char *p)
{
  (void)ctx;
  printf("  PROBLEM %s\n", p);
}

int bfm_cmd_verify(int argc, char **argv)
{
  if (argc != 2 || argv[1][0] == '-')
    return bfm_usage_error("verify", "usage: bfm verify STORE");
  bf_store *st = NULL;
  if (bf_store_open(&st, argv[1], BF_STORE_READ, NULL))
    return bfm_fail("verify");
  int np = 0;
  printf("%s: checking %zu scan(s) (SHA-256), every table and feature dataset (fletcher32)\n", argv[1],
         bf_store_nscans(st));
  int rc = bf_store_verify(st, print_problem, NULL, &np);
  if (rc)
    printf("%s: %d problem(s)\n", argv[1], np);
  else
    printf("%s: OK (%zu items, %zu scans)\n", argv[1], bf_store_nitems(st), bf_store_nscans(st));
  bf_store_close(st);
  return rc ? BFM_EXIT_FAIL : BFM_EXIT_OK;
}

/* ---- bfm export ---- */

int bfm_cmd_export(int argc, char **argv)
{
  const char *path = NULL, *what = NULL, *fmt = "csv", *outp = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--what") && i + 1 < argc)
      what = argv[++i];
    else if (!strcmp(argv[i], "--format") && i + 1 < argc)
      fmt = argv[++i];
    else if (!strcmp(argv[i], "-o") && i + 1 < argc)
      outp = argv[++i];
    else if (argv[i][0] == '-')
      return bfm_usage_error("export", "unknown option %s", argv[i]);
    else if (!path)
      path = argv[i];
    else
      return bfm_usage_error("export", "too many arguments");
  }
  if (!path || !what)
    return bfm_usage_error("export", "usage: bfm export STORE --what firearms|evidence|hits [--format csv|json]");
  if (strcmp(fmt, "csv") && strcmp(fmt, "json"))
    return bfm_usage_error("export", "--format must be csv or json");
  bf_store *st = NULL;
  bf_out *o = NULL; /* -o: checked (never the store), written to a temporary, renamed when whole */
  if (bf_store_open(&st, path, BF_STORE_READ, NULL))
    return bfm_fail("export");
  int rc = BFM_EXIT_OK;
  if (outp && (bf_out_protect(path) || bf_out_open(&o, outp)))
    rc = bfm_fail("export");
  else if (bf_store_export(st, what, !strcmp(fmt, "json"), o ? bf_out_file(o) : stdout))
    rc = bfm_fail("export");
  else if (o) {
    rc = bf_out_commit(o) ? bfm_fail("export") : BFM_EXIT_OK;
    o = NULL;
  }
  bf_out_abort(o);
  bf_store_close(st);
  return rc;
}

/* ---- bfm info STORE ---- */

int bfm_store_is(const char *path)
{
  static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  uint8_t b[8];
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not hang this */
  struct stat sb;
  if (fd < 0)
    return 0;
  int ok = !fstat(fd, &sb) && S_ISREG(sb.st_mode) && read(fd, b, 8) == 8 && !memcmp(b, sig, 8);
  close(fd);
  return ok;
}

