/* Order statistics by selection (Hoare's FIND, median-of-three pivot): the k-th smallest of n
 * values in O(n) on average, where a full sort costs O(n log n). For percentiles and medians. */
#ifndef BF_SELECT_H
#define BF_SELECT_H

#include <stddef.h>

/* The k-th smallest (0-based, k < n) of v, which is reordered: afterwards v[i] <= v[k] for
 * i < k and v[i] >= v[k] for i > k, so a lower order statistic can then be selected within
 * v[0..k). v must hold no NaN. */
float bf_select_float(float *v, size_t n, size_t k);
double bf_select_double(double *v, size_t n, size_t k);

#endif
