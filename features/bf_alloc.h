/* Allocation through one door, so tests can make any chosen allocation fail (SQLite's
 * test_malloc idea): library code on the submit and batch paths allocates with bf_malloc /
 * bf_calloc / bf_realloc / bf_strdup, and a test sweeps n = 1, 2, ... with bf_alloc_fail(n, 1)
 * to prove that every error path leaves the store unchanged and leaks nothing (under ASan).
 * When no failure is armed the cost is one relaxed atomic load per call. */
#ifndef BF_ALLOC_H
#define BF_ALLOC_H

#include <stddef.h>

void *bf_malloc(size_t n);
void *bf_calloc(size_t count, size_t size);
void *bf_realloc(void *p, size_t n); /* on failure p is left allocated, as realloc does */
char *bf_strdup(const char *s);
void bf_free(void *p);

/* Test hook. countdown = 1 makes the next allocation fail, 2 the one after, ...; with persist
 * every allocation after that fails too. countdown = 0 disarms. Counts all threads. */
void bf_alloc_fail(long countdown, int persist);
/* Allocations made through bf_* since the process started (to size a sweep). */
long bf_alloc_calls(void);
/* Whether an armed failure has fired since the last bf_alloc_fail call. */
int bf_alloc_fired(void);

#endif
