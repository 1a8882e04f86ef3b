/* bfm: dispatch from a table of subcommands. */
#include "bfm_cli.h"
#include "bf_error.h"
#include "bf_text.h"
#include "bf_fft.h"
#include "bf_search.h"

#define BFM_STR_(x) #x
#define BFM_STR(x) BFM_STR_(x) /* a default's value in the help, from its one definition */

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const bfm_cmd commands[] = {
  {"info", bfm_cmd_info, "describe X3P scans (or a store)",
   "bfm info [--json] [--header] SCAN.x3p...\n"
   "  Prints instrument, size, spacing (um), unit conversions applied, missing fraction,\n"
   "  height range and checksum status of each scan. --json writes one JSON array.\n"
   "  --header reads main.xml only (no point data inflated, checksums not verified).\n"},
  {"compare", bfm_cmd_compare, "compare two cartridge cases or two bullets",
   "bfm compare [--kind cartridge|bullet] [--json] [--png FILE] [--no-pin] A B\n"
   "  Cartridge cases: A and B are X3P scans; prints the CMC result and, when both raw scans\n"
   "  show the firing-pin impression, its ACCF (--no-pin: breech face only).\n"
   "  Bullets: A and B are folders of land scans (in land order) or comma-separated lists;\n"
   "  prints the land-score matrix, the phase and the bullet score.\n"
   "  Bullets: --png draws the matched lands' aligned signatures; --orient=x|y|auto says\n"
   "  which axis the striae run along (default: detected from the data).\n"
   "  The kind is guessed (folder or elongated scan = bullet) unless --kind says.\n"},
  {"features", bfm_cmd_features, "extract comparison features from scans",
   "bfm features [--kind cartridge|bullet] [--show DIR] [--json] SCAN...\n"
   "  Runs the feature pipeline on each scan and prints what it found; --show writes the\n"
   "  steps as PNG images into DIR (bullet lands: crosscut, land curve, groove cuts, signature;\n"
   "  --orient=x|y|auto as for compare).\n"},
  {"init", bfm_cmd_init, "create an empty store",
   "bfm init [--user NAME] STORE\n"
   "  Creates an empty HDF5 store (schema in storage/bf_store.h).\n"},
  {"firearm", bfm_cmd_firearm, "add a test-fire record with its test-fire scans",
   "bfm firearm add STORE --serial S [--make M --manufacturer M --model M --calibre C --country C\n"
   "    --manufactured DATE --markings T --testfire-date DATE --test-lab L --export DATE\n"
   "    --export-country C --import-country C --transit 'C1;C2' --consignee N]\n"
   "    [--kind cartridge|bullet] [--user NAME] SCAN...\n"
   "  Each SCAN is one test-fired item: a cartridge-case X3P, or a bullet as a folder of land\n"
   "  scans or a comma-separated list of them in land order. Features are extracted and stored\n"
   "  with the original files. A serial already stored gets the new items. Duplicates (same\n"
   "  SHA-256) are reported and skipped.\n"},
  {"evidence", bfm_cmd_evidence, "add a crime-scene item with its scans",
   "bfm evidence add STORE --case C --item I --kind cartridge|bullet [--calibre C --agency A\n"
   "    --date DATE --place P --lab L --notes N] [--user NAME] SCAN...\n"
   "  The scans are the item's: one cartridge-case X3P, or a bullet's lands in order (or a folder).\n"},
  {"ingest", bfm_cmd_ingest, "bulk submission from a CSV manifest",
   "bfm ingest [--commit-every N] [--quiet] [--user NAME] STORE manifest.csv\n"
   "  One row per item; columns: type (firearm|evidence), kind, scans (';'-separated, relative to\n"
   "  the manifest), calibre, the firearm fields (serial make manufacturer model country\n"
   "  manufactured markings testfire_date test_lab export_date export_country import_country\n"
   "  transit consignee) or the evidence fields (case agency item date place lab notes).\n"
   "  Bad rows are reported with their line and skipped; exit 1 when any row was not stored.\n"
   "  Rows are committed one by one (stores over 256 MB: every 100 rows or 10 s) unless\n"
   "  --commit-every says; a row is reported stored only once committed.\n"},
  {"verify", bfm_cmd_verify, "recheck a store's SHA-256s and checksums",
   "bfm verify STORE\n"
   "  Rereads every original scan (SHA-256), every table and feature dataset (fletcher32) and the\n"
   "  cross references; lists each problem. Exit 1 when any is found.\n"},
  {"export", bfm_cmd_export, "write store tables as CSV or JSON",
   "bfm export STORE --what firearms|evidence|items|scans|hits|audit [--format csv|json] [-o FILE]\n"},
  {"synth", bfm_cmd_synth, "write synthetic scans with a key",
   "bfm synth --out DIR [--kind cartridge|bullet|both] [--firearms N] [--firings M]\n"
   "    [--questioned Q] [--unknown U] [--seed S] [--raw] [--spacing UM] [--lands N]\n"
   "    [--land-spacing UM] [--striae-x] [--transfer F] [--damage P] [--type D|F]\n"
   "    [--max-rotation DEG (180)] [--max-shift UM (100)]\n"
   "  N firearms (barrels) x M firings (bullets) each; the last Q firings of each (default 1 when\n"
   "  M >= 2) are questioned, the rest known test-fires; U more firearms have questioned items\n"
   "  only. Cartridge cases are processed breech faces at 6.25 um unless --raw; bullets are raw\n"
   "  land scans (N lands, default 6) at 1.5625 um, striae along Y unless --striae-x.\n"
   "  Writes DIR/cartridge/Fnnnn-m.x3p, DIR/bullet/Bnnnn-m/landK.x3p, DIR/key.csv (columns of\n"
   "  ../shared/data/KEY.csv; the note holds the true rotation/shift) and DIR/manifest.csv for\n"
   "  `bfm ingest`. Same options and seed: the same heights (threads and order do not matter).\n"},
  {"match", bfm_cmd_match, "rank stored items against one evidence item",
   "bfm match STORE ITEM|SCAN... [--top K] [--keep N] [--screen M] [--kind cartridge|bullet]\n"
   "    [--calibre C] [--threads N] [--prefilter-only] [--json]\n"
   "  ITEM is a stored item id; or give the scans on the spot (one cartridge-case X3P, or a\n"
   "  bullet's land scans in order / a folder of them). Every stored item of the same kind (and\n"
   "  calibre, when known) is scored by the prefilter. Cartridge cases: the best N (default "
   BFM_STR(BF_SEARCH_KEEP) ", or\n  1 in " BFM_STR(BF_SEARCH_KEEP_PER) " of the candidates when more) are "
   "screened by a coarse areal\n"
   "  correlation and its best M (default " BFM_STR(BF_SEARCH_FULL) ", as in the batch;\n"
   "  0: no screen) are compared by CMC, ranked by CMC count and, between equal counts, by the\n"
   "  firing pin's ACCF (column pin; - when either item has none). Bullets: the best N (default\n"
   "  " BFM_STR(BF_SEARCH_KEEP_BULLET) ") are compared by land signatures. The top\n"
   "  K (default 10) are printed with, for test-fires, the firearm's trace fields. Items are\n"
   "  indexed for the prefilter when stored; older ones by the next `bfm batch` (a note says so).\n"},
  {"batch", bfm_cmd_batch, "search every unsearched item (the overnight run)",
   "bfm batch STORE [--threads N] [--keep N] [--screen M] [--min-score S] [--group G] [--limit N]\n"
   "    [--cache-mb MB] [--no-reuse] [--mpi] [--wave Q] [--quiet]\n"
   "  Indexes items without a prefilter descriptor, then searches each item not yet searched\n"
   "  against everything stored of its kind and calibre (cartridge cases: " BFM_STR(BF_SEARCH_KEEP)
   " or 1 in " BFM_STR(BF_SEARCH_KEEP_PER) " screened, " BFM_STR(BF_SEARCH_FULL) " by\n  CMC, each "
   "unordered pair compared once; bullets: " BFM_STR(BF_SEARCH_KEEP_BULLET) " by land signatures). Hits whose\n"
   "  calibrated likelihood ratio is at least 10 are stored with it (--min-score S: a plain\n"
   "  score threshold instead). Under mpirun (or --mpi) the ranks share the work, each pair\n"
   "  compared once in the job: each rank plans Q (8) items, then the ranks share out their\n"
   "  pairs. Groups of G (32)\n"
   "  items are committed with their searched mark: kill it and rerun, it continues and never\n"
   "  duplicates hits. Progress with rate and ETA on a terminal.\n"},
  {"hits", bfm_cmd_hits, "list candidate hits (for a case, a firearm, ...)",
   "bfm hits STORE [--case C] [--firearm SERIAL] [--item ID] [--run N] [--min-score S]\n"
   "    [--status candidate|confirmed|rejected] [--format table|json|csv] [--both]\n"
   "  Hits by descending score; a case or serial matches either side of a hit. A pair searched\n"
   "  from both sides is listed once (its reviewed hit, else its higher score) unless --both.\n"
   "  Cartridge hits show the firing pin's ACCF when it was compared.\n"},
  {"review", bfm_cmd_review, "confirm or reject a hit (audited)",
   "bfm review STORE HIT --confirm|--reject --examiner NAME [--note TEXT]\n"},
  {"links", bfm_cmd_links, "crime linkage: linked series of cases and firearms",
   "bfm links STORE [--min-score S | --confirmed] [--dot FILE | --png FILE] [--json]\n"
   "  Cases and firearms are nodes, hits (never rejected ones) edges; each connected component is\n"
   "  a linked series. --png draws it with Graphviz `dot`.\n"},
  {"serve", bfm_cmd_serve, "the web review screen (pages + JSON API) over a store",
   "bfm serve STORE [--listen HOST:PORT (127.0.0.1:8080)] [--users FILE (STORE.users)]\n"
   "    [--threads N (4)] [--secure-cookie]\n"
   "  Serves the store read-only to logged-in users (see `bfm user`); examiners confirm or\n"
   "  reject hits (audited, one commit each). Port 0 picks a free port. Plain HTTP: beyond\n"
   "  this machine put a TLS reverse proxy in front (README) and add --secure-cookie.\n"},
  {"user", bfm_cmd_user, "add a user of bfm serve (Argon2id password hash)",
   "bfm user add USERS_FILE NAME --role examiner|reader\n"
   "  Reads the password (8-1024 characters) from the terminal without echo, or from standard\n"
   "  input. A user already in the file gets the new password and role.\n"},
  {"show", bfm_cmd_show, "draw the two items of a hit side by side, aligned",
   "bfm show STORE HIT --png FILE\n"},
  {"compact", bfm_cmd_compact, "merge a store's small segments, drop superseded rows",
   "bfm compact STORE [--all] [--target-mb MB] [--user NAME]\n"
   "  Merges runs of segments smaller than MB (1024) into one; readers go on meanwhile.\n"},
  {"upgrade", bfm_cmd_upgrade, "convert a schema 1 store (one file) to segments",
   "bfm upgrade STORE [--user NAME]\n"},
};
static const int ncommands = sizeof commands / sizeof commands[0];

static void print_help(FILE *f)
{
  fprintf(f, "bfm %s - ballistic fingerprint matching\n\nusage: bfm <command> [options]\n\ncommands:\n",
          BF_VERSION);
  for (int i = 0; i < ncommands; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\n`bfm <command> --help` describes one command. Exit codes: 0 ok, 1 failure, 2 usage error.\n");
}

void bfm_print_usage(FILE *f, const char *name)
{
  for (int i = 0; i < ncommands; i++)
    if (!strcmp(commands[i].name, name)) {
      fprintf(f, "%s", commands[i].usage);
      return;
    }
}

int bfm_usage_error(const char *cmd, const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "bfm %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n(see `bfm %s --help`)\n", cmd);
  return BFM_EXIT_USAGE;
}

int bfm_fail(const char *cmd)
{
  fprintf(stderr, "bfm %s: %s\n", cmd, bf_error_last());
  return BFM_EXIT_FAIL;
}

int bfm_wants_help(int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
      return 1;
  return 0;
}

double bfm_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void bfm_progress_start(bfm_progress *p, const char *label, long total)
{
  p->label = label;
  p->total = total;
  p->done = 0;
  p->t0 = bfm_now();
  p->last_draw = 0;
  p->tty = isatty(2);
}

void bfm_progress_step(bfm_progress *p, long done)
{
  p->done = done;
  if (!p->tty)
    return;
  double t = bfm_now();
  if (t - p->last_draw < 0.1 && done < p->total)
    return;
  p->last_draw = t;
  double el = t - p->t0, rate = el > 0 ? done / el : 0;
  double eta = rate > 0 ? (p->total - done) / rate : 0;
  int w = 30, fill = p->total > 0 ? (int)(w * (double)done / p->total) : 0;
  char bar[64];
  for (int i = 0; i < w; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[w] = 0;
  fprintf(stderr, "\r%s [%s] %ld/%ld %.1f/s ETA %.0fs ", p->label, bar, done, p->total, rate, eta);
  fflush(stderr);
}

void bfm_progress_end(bfm_progress *p)
{
  if (p->tty) {
    p->last_draw = 0;
    bfm_progress_step(p, p->done);
    fprintf(stderr, "\n");
  }
}

void bfm_json_str(FILE *f, const char *s) { bf_text_json(f, s); }

int main(int argc, char **argv)
{
  if (argc < 2) {
    print_help(stderr);
    return BFM_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    print_help(stdout);
    return BFM_EXIT_OK;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("bfm %s\n", BF_VERSION);
    return BFM_EXIT_OK;
  }
  for (int i = 0; i < ncommands; i++)
    if (!strcmp(commands[i].name, argv[1])) {
      if (bfm_wants_help(argc - 1, argv + 1)) {
        bfm_print_usage(stdout, argv[1]);
        return BFM_EXIT_OK;
      }
      /* FFTW wisdom from the per-user cache makes a one-shot command skip plan timing. */
      if (bf_fft_wisdom_load(NULL))
        fprintf(stderr, "bfm: note: %s\n", bf_error_last());
      int rc = commands[i].fn(argc - 1, argv + 1);
      if (bf_fft_wisdom_save(NULL))
        fprintf(stderr, "bfm: note: %s\n", bf_error_last());
      return rc;
    }
  fprintf(stderr, "bfm: unknown command '%s' (see `bfm --help`)\n", argv[1]);
  return BFM_EXIT_USAGE;
}
