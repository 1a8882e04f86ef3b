/* The built `bfm` command: help, version, exit codes 0/1/2, errors on stderr naming the file,
 * `info` in text and JSON. */
#include "bf_error.h"
#include "bf_x3p.h"
#include "bf_test.h"

#include <math.h>

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

int main(void)
{
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
  return bf_t_done();
}
