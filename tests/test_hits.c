/* bfm hits: one row per pair unless --both, the reviewed hit of a pair preferred. */
#include "bf_review.h"
#include "bf_store.h"
#include "bf_test.h"

#include <math.h>
#include <string.h>

static int count_lines(const char *cmd)
{
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  int n = 0, c;
  while ((c = fgetc(p)) != EOF)
    n += c == '\n';
  pclose(p);
  return n;
}

/* The rule itself: reviewed before candidate, then score, then the older hit; NaN last. */
static void test_rule(void)
{
  bf_hit h[6];
  memset(h, 0, sizeof h);
  h[0] = (bf_hit){.id = 2, .query = 2, .candidate = 1, .score = 5};
  h[1] = (bf_hit){.id = 1, .query = 1, .candidate = 2, .score = 5}; /* tie: the older one */
  h[2] = (bf_hit){.id = 3, .query = 3, .candidate = 4, .score = 9};
  h[3] = (bf_hit){.id = 4, .query = 4, .candidate = 3, .score = 2, .status = BF_HIT_REJECTED};
  h[4] = (bf_hit){.id = 5, .query = 5, .candidate = 6, .score = NAN};
  h[5] = (bf_hit){.id = 6, .query = 7, .candidate = 5, .score = 1};
  size_t n = 6;
  bf_hits_one_per_pair(h, &n);
  CHECKF(n == 4, "one per pair: %zu kept", n);
  if (n == 4) {
    CHECKF(h[0].id == 1 && h[1].id == 4 && h[2].id == 6 && h[3].id == 5,
           "order: %lld %lld %lld %lld", (long long)h[0].id, (long long)h[1].id, (long long)h[2].id,
           (long long)h[3].id);
  }
}

int main(void)
{
  test_rule();
  const char *dir = bf_t_tmpdir("hits");
  char store[4200], cmd[9000];
  snprintf(store, sizeof store, "%s/s.h5", dir);
  CHECK(bf_store_create(store, "tester") == 0);
  bf_store *st = NULL;
  CHECK(bf_store_open(&st, store, BF_STORE_WRITE, "tester") == 0);
  CHECK(bf_store_begin(st) == 0);
  int64_t ev[3], it[3];
  for (int i = 0; i < 3; i++) {
    bf_evidence e = {0};
    snprintf(e.case_no, sizeof e.case_no, "C%d", i);
    snprintf(e.item, sizeof e.item, "1");
    e.kind = BF_KIND_CARTRIDGE;
    CHECK(bf_store_add_evidence(st, &ev[i], &e) == 0);
    CHECK(bf_store_add_item(st, &it[i], BF_KIND_CARTRIDGE, "", BF_OWNER_EVIDENCE, ev[i]) == 0);
  }
  /* pair (0,1) both ways, pair (1,2) one way */
  bf_hit h[3] = {{0}};
  h[0].query = it[0], h[0].candidate = it[1], h[0].score = 20, h[0].run = 1;
  h[1].query = it[1], h[1].candidate = it[0], h[1].score = 18, h[1].run = 1;
  h[2].query = it[1], h[2].candidate = it[2], h[2].score = 9, h[2].run = 1;
  size_t added = 0;
  CHECK(bf_store_add_hits(st, h, 3, &added) == 0 && added == 3);
  CHECK(bf_store_commit(st) == 0);
  bf_hit *all = NULL;
  size_t n = 0;
  CHECK(bf_store_query_hits(st, NULL, &all, &n) == 0 && n == 3);
  int64_t lower = 0; /* the id of the lower-scored twin */
  for (size_t i = 0; i < n; i++)
    if (all[i].score == 18)
      lower = all[i].id;
  free(all);
  bf_store_close(st);

  snprintf(cmd, sizeof cmd, "'%s' hits '%s' --format csv", BF_BFM_EXE, store);
  CHECKF(count_lines(cmd) == 1 + 2, "one header and two pairs");
  snprintf(cmd, sizeof cmd, "'%s' hits '%s' --format csv --both", BF_BFM_EXE, store);
  CHECKF(count_lines(cmd) == 1 + 3, "--both lists every direction");
  /* confirming the lower twin makes it the one shown for its pair */
  snprintf(cmd, sizeof cmd, "'%s' review '%s' %lld --confirm --examiner E >/dev/null", BF_BFM_EXE,
           store, (long long)lower);
  CHECK(system(cmd) == 0);
  snprintf(cmd, sizeof cmd, "'%s' hits '%s' --format csv --status confirmed", BF_BFM_EXE, store);
  CHECK(count_lines(cmd) == 1 + 1);
  snprintf(cmd, sizeof cmd, "'%s' hits '%s' --format csv | grep -c ',confirmed,' ", BF_BFM_EXE, store);
  FILE *p = popen(cmd, "r");
  int conf = -1;
  if (p) {
    if (fscanf(p, "%d", &conf) != 1)
      conf = -1;
    pclose(p);
  }
  CHECKF(conf == 1, "the pair shows its confirmed hit, got %d", conf);
  return bf_t_done();
}
