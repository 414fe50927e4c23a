/*
 * hist.c: the log-linear histogram of hist.h. A value v >= 256 with its highest set bit at
 * position m (m >= 8) is shifted right by s = m - 7, which leaves a sub-bucket number in
 * [128, 256); the bucket is 256 + (s - 1) * 128 + (sub - 128). Going back, a bucket covers
 * [sub << s, ((sub + 1) << s) - 1].
 */
#include "loadtest/hist.h"

#include <math.h>
#include <string.h>

void
lt_hist_init(struct lt_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned
lt_hist_index(uint64_t v)
{
    unsigned msb, shift, idx;

    if (v < LT_HIST_LINEAR)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - 7u;
    idx = LT_HIST_LINEAR + (shift - 1u) * LT_HIST_SUB + (unsigned)((v >> shift) - LT_HIST_SUB);
    return idx < LT_HIST_BUCKETS ? idx : LT_HIST_BUCKETS - 1u;
}

uint64_t
lt_hist_bucket_high(unsigned idx)
{
    unsigned shift;
    uint64_t sub;

    if (idx < LT_HIST_LINEAR)
        return idx;
    shift = (idx - LT_HIST_LINEAR) / LT_HIST_SUB + 1u;
    sub = (idx - LT_HIST_LINEAR) % LT_HIST_SUB + LT_HIST_SUB;
    return ((sub + 1u) << shift) - 1u;
}

void
lt_hist_record(struct lt_hist *h, int64_t v)
{
    uint64_t u;

    if (v < 0) {
        h->negative++;
        v = 0;
    }
    u = (uint64_t)v;
    h->buckets[lt_hist_index(u)]++;
    h->count++;
    h->sum += u;
    if (u < h->min)
        h->min = u;
    if (u > h->max)
        h->max = u;
}

void
lt_hist_merge(struct lt_hist *dst, const struct lt_hist *src)
{
    for (unsigned i = 0; i < LT_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    dst->negative += src->negative;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t
lt_hist_percentile(const struct lt_hist *h, double p)
{
    uint64_t rank, seen = 0;

    if (!h->count)
        return 0;
    if (p > 100.0)
        p = 100.0;
    rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < LT_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t hi = lt_hist_bucket_high(i);

            return hi < h->max ? hi : h->max;
        }
    }
    return h->max;
}

double
lt_hist_mean(const struct lt_hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
