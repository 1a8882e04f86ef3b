#include "bf_linalg.h"

#include <math.h>

int bf_solve(double *m, int n, int stride, double *x, double tiny)
{
  for (int c = 0; c < n; c++) {
    int p = c;
    for (int r = c + 1; r < n; r++)
      if (fabs(m[r * stride + c]) > fabs(m[p * stride + c]))
        p = r;
    if (!(fabs(m[p * stride + c]) >= tiny))
      return -1;
    if (p != c)
      for (int j = 0; j <= n; j++) {
        double t = m[c * stride + j];
        m[c * stride + j] = m[p * stride + j];
        m[p * stride + j] = t;
      }
    const double *pc = m + c * stride;
    for (int r = 0; r < n; r++)
      if (r != c) {
        double *pr = m + r * stride, f = pr[c] / pc[c];
        for (int j = c; j <= n; j++)
          pr[j] -= f * pc[j];
      }
  }
  for (int i = 0; i < n; i++)
    x[i] = m[i * stride + n] / m[i * stride + i];
  return 0;
}
