/* Small dense linear systems: the normal equations of the least-squares fits (planes, circles,
 * land curves, logistic regression). */
#ifndef BF_LINALG_H
#define BF_LINALG_H

/* Solves the n x n system whose augmented matrix (the right-hand side in column n) is m, row
 * major with row stride `stride` (>= n + 1), by Gauss-Jordan elimination with partial pivoting;
 * m is overwritten, the solution goes to x. Returns 0, or -1 when a pivot is smaller in
 * magnitude than tiny (or NaN): the system is singular for the caller's purpose. */
int bf_solve(double *m, int n, int stride, double *x, double tiny);

#endif
