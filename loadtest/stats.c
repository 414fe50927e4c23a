/*
 * stats.c: the pure helpers of the load tool (load.h): per-topic sequence checking and the
 * least-squares slope used for the RSS growth of a soak.
 */
#include <math.h>

#include "loadtest/load.h"

enum lt_seq_verdict
lt_seq_check(uint64_t *last, uint64_t seq, uint64_t *dups, uint64_t *gaps)
{
    if (seq <= *last) {
        (*dups)++;
        return LT_SEQ_DUP;
    }
    if (seq > *last + 1) {
        *gaps += seq - *last - 1;
        *last = seq;
        return LT_SEQ_GAP;
    }
    *last = seq;
    return LT_SEQ_OK;
}

double
lt_slope(const double *x, const double *y, size_t n, double x_from)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0, k = 0, den;

    for (size_t i = 0; i < n; i++) {
        if (x[i] < x_from || y[i] < 0)
            continue;
        sx += x[i];
        sy += y[i];
        sxx += x[i] * x[i];
        sxy += x[i] * y[i];
        k++;
    }
    if (k < 3)
        return NAN;
    den = k * sxx - sx * sx;
    if (fabs(den) < 1e-12)
        return NAN;
    return (k * sxy - sx * sy) / den;
}
