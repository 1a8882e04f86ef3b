/* Hoare's FIND with a median-of-three pivot value, one copy per element type. */
#include "bf_select.h"

#include <assert.h>
#include <sys/types.h>

#define BF_SELECT(name, T)                                                                       \
  T name(T *v, size_t n, size_t k)                                                               \
  {                                                                                              \
    assert(k < n);                                                                               \
    ssize_t l = 0, r = (ssize_t)n - 1, kk = (ssize_t)k;                                          \
    while (l < r) {                                                                              \
      T a = v[l], b = v[l + (r - l) / 2], c = v[r];                                              \
      T x = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));               \
      ssize_t i = l, j = r;                                                                      \
      do {                                                                                       \
        while (v[i] < x)                                                                         \
          i++;                                                                                   \
        while (x < v[j])                                                                         \
          j--;                                                                                   \
        if (i <= j) {                                                                            \
          T t = v[i];                                                                            \
          v[i++] = v[j];                                                                         \
          v[j--] = t;                                                                            \
        }                                                                                        \
      } while (i <= j);                                                                          \
      if (j < kk)                                                                                \
        l = i;                                                                                   \
      if (kk < i)                                                                                \
        r = j;                                                                                   \
    }                                                                                            \
    return v[k];                                                                                 \
  }

BF_SELECT(bf_select_float, float)
BF_SELECT(bf_select_double, double)
