/* The bfm command: subcommands, shared helpers. Only tools/ parses argv, prints or exits. */
#ifndef BFM_CLI_H
#define BFM_CLI_H

#include <stdio.h>

/* Exit codes of every subcommand. */
enum { BFM_EXIT_OK = 0, BFM_EXIT_FAIL = 1, BFM_EXIT_USAGE = 2 };

/* A subcommand: argv[0] is its name. Returns an exit code. */
typedef int (*bfm_cmd_fn)(int argc, char **argv);

typedef struct bfm_cmd {
  const char *name;
  bfm_cmd_fn fn;
  const char *summary;
  const char *usage; /* printed by `bfm NAME --help` */
} bfm_cmd;

/* Prints "bfm NAME: message" on stderr; returns BFM_EXIT_USAGE. */
int bfm_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "bfm NAME: <bf_error_last()>" on stderr; returns BFM_EXIT_FAIL. */
int bfm_fail(const char *cmd);
/* True when argv holds -h or --help. */
int bfm_wants_help(int argc, char **argv);
/* Prints the usage text of a command to f. */
void bfm_print_usage(FILE *f, const char *name);

/* A progress bar on stderr, drawn only when stderr is a terminal. */
typedef struct bfm_progress {
  const char *label;
  long total, done;
  double t0, last_draw;
  int tty;
} bfm_progress;
void bfm_progress_start(bfm_progress *p, const char *label, long total);
void bfm_progress_step(bfm_progress *p, long done);
void bfm_progress_end(bfm_progress *p);
double bfm_now(void);

/* JSON string output with escaping. */
void bfm_json_str(FILE *f, const char *s);

/* Strict number parsing for flags: the whole of s must be a number (no trailing text, no
 * overflow) within [lo, hi]. On failure prints "bfm CMD: FLAG needs ..." (a usage error) and
 * returns BFM_EXIT_USAGE; 0 on success. `--threads abc` is exit 2, never 0 threads. */
int bfm_parse_long(const char *cmd, const char *flag, const char *s, long lo, long hi, long *out);
int bfm_parse_int(const char *cmd, const char *flag, const char *s, int lo, int hi, int *out);
int bfm_parse_double(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out);
/* An item or hit id: decimal digits only, >= 1. 0 when s is not one. */
long long bfm_parse_id(const char *s);

/* Which kind of evidence a command-line argument is: a folder (of land scans) is a bullet;
 * a scan whose long side is at least 1.8x its short side is a bullet land; else a cartridge
 * case. `--kind` on the command line overrides. Returns BF_KIND_* or 0 when unreadable. */
int bfm_guess_kind(const char *path);
/* Parses "cartridge" / "bullet"; 0 when neither. */
int bfm_parse_kind(const char *s);

/* Subcommands (one file each: cmd_<name>.c). */
int bfm_cmd_info(int argc, char **argv);
int bfm_cmd_compare(int argc, char **argv);
int bfm_cmd_features(int argc, char **argv);
/* Store commands (cmd_store.c). */
int bfm_cmd_init(int argc, char **argv);
int bfm_cmd_firearm(int argc, char **argv);
int bfm_cmd_evidence(int argc, char **argv);
int bfm_cmd_ingest(int argc, char **argv);
int bfm_cmd_verify(int argc, char **argv);
int bfm_cmd_export(int argc, char **argv);
/* bfm synth (cmd_synth.c). */
int bfm_cmd_synth(int argc, char **argv);
/* True when path is an HDF5 file (a store); bfm info prints its summary. */
int bfm_store_is(const char *path);
/* Search commands (cmd_match.c, cmd_batch.c, cmd_hits.c, cmd_review.c, cmd_links.c, cmd_show.c). */
int bfm_cmd_match(int argc, char **argv);
int bfm_cmd_batch(int argc, char **argv);
int bfm_cmd_hits(int argc, char **argv);
int bfm_cmd_review(int argc, char **argv);
int bfm_cmd_links(int argc, char **argv);
int bfm_cmd_show(int argc, char **argv);
/* The web review screen and its users (cmd_serve.c, cmd_user.c). */
int bfm_cmd_serve(int argc, char **argv);
int bfm_cmd_user(int argc, char **argv);

int bfm_cmd_compact(int argc, char **argv); /* cmd_compact.c */
int bfm_cmd_upgrade(int argc, char **argv); /* cmd_compact.c */
/* Shared by them (cmd_hits.c): "test-fire of firearm S (make model, calibre)" / "evidence case
 * C item I, agency"; the firearm or evidence owning an item (NULL when the other); a firearm's
 * trace fields as indented text lines or as one JSON object. */
#include <stdint.h>
struct bf_store;
struct bf_firearm;
struct bf_evidence;
void bfm_item_what(const struct bf_store *st, int64_t item, char *buf, size_t n);
const struct bf_firearm *bfm_item_firearm(const struct bf_store *st, int64_t item);
const struct bf_evidence *bfm_item_evidence(const struct bf_store *st, int64_t item);
void bfm_print_trace(FILE *out, const struct bf_firearm *f, const char *indent);
void bfm_json_trace(FILE *out, const struct bf_firearm *f);
/* Kind-specific halves of compare/features: compare_cartridge.c, compare_bullet.c.
 * They receive the full argv of the subcommand. */
int bfm_compare_cartridge(int argc, char **argv);
int bfm_compare_bullet(int argc, char **argv);
int bfm_features_cartridge(int argc, char **argv);
int bfm_features_bullet(int argc, char **argv);
/* The pictures of compare --png, also drawn by show: the reference with its congruent cells
 * beside the target rotated by the consensus angle; the aligned signatures of the lands that
 * meet at the best phase. */
struct bf_feature;
struct bf_cmc_result;
struct bf_bullet_result;
int bfm_draw_cmc_pair(const char *path, const struct bf_feature *a, const struct bf_feature *b,
                      const struct bf_cmc_result *r);
int bfm_draw_bullet_pair(const char *path, const struct bf_bullet_result *r,
                         struct bf_feature *const *fa, struct bf_feature *const *fb);

#endif
