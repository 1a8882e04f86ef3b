#include "bf_alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long calls;
static atomic_long countdown; /* 0 = disarmed */
static atomic_int persist, fired;

/* 1 when this allocation must fail. countdown > 0: calls left before the failing one;
 * -1: failing persistently; 0: disarmed. */
static int should_fail(void)
{
  atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
  long c = atomic_load_explicit(&countdown, memory_order_relaxed);
  if (c == 0)
    return 0;
  if (c < 0) {
    atomic_store(&fired, 1);
    return 1;
  }
  if (atomic_fetch_sub(&countdown, 1) != 1)
    return 0;
  atomic_store(&countdown, atomic_load(&persist) ? -1 : 0);
  atomic_store(&fired, 1);
  return 1;
}

void *bf_malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }

void *bf_calloc(size_t count, size_t size)
{
  return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *bf_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n ? n : 1); }

char *bf_strdup(const char *s)
{
  size_t n = strlen(s) + 1;
  char *d = bf_malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

void bf_free(void *p) { free(p); }

void bf_alloc_fail(long n, int keep_failing)
{
  atomic_store(&persist, keep_failing);
  atomic_store(&fired, 0);
  atomic_store(&countdown, n);
}

long bf_alloc_calls(void) { return atomic_load(&calls); }

int bf_alloc_fired(void) { return atomic_load(&fired); }
