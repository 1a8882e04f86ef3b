/* The allocation-failure hook: the armed call fails, the others succeed, persist keeps failing. */
#include "bf_alloc.h"
#include "bf_test.h"

#include <stdlib.h>

int main(void)
{
  void *p = bf_malloc(8);
  CHECK(p != NULL);
  bf_free(p);

  bf_alloc_fail(3, 0);
  void *a = bf_malloc(1), *b = bf_calloc(2, 2), *c = bf_malloc(1), *d = bf_malloc(1);
  CHECK(a && b && !c && d);
  CHECK(bf_alloc_fired());
  bf_free(a), bf_free(b), bf_free(d);
  void *e = bf_malloc(1); /* disarmed after one failure */
  CHECK(e != NULL);
  bf_free(e);

  bf_alloc_fail(1, 1);
  char *s = bf_strdup("x");
  void *r = bf_realloc(NULL, 4);
  CHECK(!s && !r);
  bf_alloc_fail(0, 0);
  CHECK(!bf_alloc_fired());
  long before = bf_alloc_calls();
  s = bf_strdup("abc");
  CHECK(s && bf_alloc_calls() == before + 1);
  bf_free(s);
  return bf_t_done();
}
