/* bfm user add: a user of `bfm serve`, with an Argon2id password hash, in a users file. The
 * password comes from the terminal (not echoed, asked twice) or from standard input. */
#include "bf_error.h"
#include "bf_web.h"
#include "bfm_cli.h"

#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* One line from stdin without its newline; on a terminal with echo off. */
static int read_password(char *buf, size_t n, const char *prompt)
{
  int tty = isatty(0);
  struct termios old, quiet;
  if (tty) {
    fprintf(stderr, "%s", prompt);
    tcgetattr(0, &old);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(0, TCSAFLUSH, &quiet);
  }
  char *got = fgets(buf, (int)n, stdin);
  if (tty) {
    tcsetattr(0, TCSAFLUSH, &old);
    fprintf(stderr, "\n");
  }
  if (!got)
    return -1;
  buf[strcspn(buf, "\r\n")] = 0;
  return 0;
}

int bfm_cmd_user(int argc, char **argv)
{
  const char *pos[3] = {0}, *role = NULL;
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--role") && i + 1 < argc)
      role = argv[++i];
    else if (argv[i][0] == '-')
      return bfm_usage_error("user", "unknown option %s", argv[i]);
    else if (npos < 3)
      pos[npos++] = argv[i];
    else
      return bfm_usage_error("user", "too many arguments");
  }
  if (npos != 3 || strcmp(pos[0], "add"))
    return bfm_usage_error("user", "usage: bfm user add USERS_FILE NAME --role examiner|reader");
  int r = bf_web_role_parse(role);
  if (!r)
    return bfm_usage_error("user", "--role must be examiner or reader");
  char pw[1100], again[1100];
  int rc = BFM_EXIT_OK;
  if (read_password(pw, sizeof pw, "password: ")) {
    fprintf(stderr, "bfm user: no password given on standard input\n");
    return BFM_EXIT_FAIL;
  }
  if (isatty(0) && (read_password(again, sizeof again, "again: ") || strcmp(pw, again))) {
    fprintf(stderr, "bfm user: the two passwords differ\n");
    rc = BFM_EXIT_FAIL;
  } else if (bf_web_user_add(pos[1], pos[2], r, pw))
    rc = bfm_fail("user");
  else
    printf("user %s (%s) saved in %s\n", pos[2], bf_web_role_name(r), pos[1]);
  memset(pw, 0, sizeof pw);
  memset(again, 0, sizeof again);
  return rc;
}
