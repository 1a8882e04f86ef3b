/* bfm serve: the web review screen over one store, until SIGINT/SIGTERM. */
#include "bf_error.h"
#include "bf_web.h"
#include "bfm_cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bfm_cmd_serve(int argc, char **argv)
{
  bf_web_opts o = BF_WEB_OPTS_INIT;
  char users[4200];
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int hasv = i + 1 < argc;
    if (!strcmp(a, "--listen") && hasv)
      o.listen = argv[++i];
    else if (!strcmp(a, "--users") && hasv)
      o.users = argv[++i];
    else if (!strcmp(a, "--threads") && hasv) {
      char *e;
      long v = strtol(argv[++i], &e, 10);
      if (*e || v < 1 || v > 64)
        return bfm_usage_error("serve", "--threads needs 1..64, not '%s'", argv[i]);
      o.threads = (int)v;
    } else if (!strcmp(a, "--secure-cookie"))
      o.secure_cookie = 1;
    else if (a[0] == '-')
      return bfm_usage_error("serve", "unknown option %s", a);
    else if (!o.store)
      o.store = a;
    else
      return bfm_usage_error("serve", "too many arguments");
  }
  if (!o.store)
    return bfm_usage_error("serve", "usage: bfm serve STORE [--listen HOST:PORT] [--users FILE]");
  if (!o.users) {
    snprintf(users, sizeof users, "%s.users", o.store);
    o.users = users;
  }
  /* the signals are waited for, not handled: block them before the server's threads start */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  bf_web *w = NULL;
  int port = 0;
  if (bf_web_start(&w, &o, &port))
    return bfm_fail("serve");
  char host[128];
  snprintf(host, sizeof host, "%s", o.listen);
  char *colon = strrchr(host, ':');
  if (colon)
    *colon = 0;
  if (strcmp(host, "127.0.0.1") && strcmp(host, "localhost") && strcmp(host, "[::1]"))
    fprintf(stderr, "bfm serve: listening beyond this machine over plain HTTP: put a TLS reverse "
                    "proxy in front (README, `bfm serve`) and use --secure-cookie\n");
  printf("bfm serve: %s on http://%s:%d/ (users: %s); Ctrl-C stops\n", o.store, host, port, o.users);
  fflush(stdout);
  int sig = 0;
  sigwait(&sigs, &sig);
  bf_web_stop(w);
  printf("bfm serve: stopped\n");
  return BFM_EXIT_OK;
}
