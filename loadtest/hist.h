/*
 * hist: a log-linear latency histogram in the style of HdrHistogram, for the load tools.
 *
 * Values are non-negative integers (microseconds in practice). Values below 256 each have
 * their own bucket; above that every power of two is split into 128 linear sub-buckets, so
 * a reported percentile is at most 1/128 (0.8 %) above the true value. Values up to 2^40
 * are kept (about 12 days in microseconds); larger ones land in the last bucket. The exact
 * minimum, maximum and sum are tracked beside the buckets. The struct is flat (no
 * pointers), so it can be copied through a pipe between processes and merged there.
 */
#ifndef LT_HIST_H
#define LT_HIST_H

#include <stdint.h>

#define LT_HIST_LINEAR  256 /* values with their own bucket: 0..255 */
#define LT_HIST_SUB     128 /* linear sub-buckets per power of two above that */
#define LT_HIST_SHIFTS  32  /* powers of two covered above LT_HIST_LINEAR (to 2^40) */
#define LT_HIST_BUCKETS (LT_HIST_LINEAR + LT_HIST_SHIFTS * LT_HIST_SUB)

struct lt_hist {
    uint64_t count;                    /* values recorded */
    uint64_t min;                      /* smallest value (UINT64_MAX while empty) */
    uint64_t max;                      /* largest value (0 while empty) */
    uint64_t sum;                      /* sum of the values (for the mean) */
    uint64_t negative;                 /* negative inputs, recorded as 0 */
    uint64_t buckets[LT_HIST_BUCKETS]; /* counts per bucket */
};

/* Empties h. */
void lt_hist_init(struct lt_hist *h);

/* Records one value; a negative v is counted in h->negative and recorded as 0. */
void lt_hist_record(struct lt_hist *h, int64_t v);

/* Adds every value of src to dst. */
void lt_hist_merge(struct lt_hist *dst, const struct lt_hist *src);

/*
 * Returns the value at percentile p (0 < p <= 100): the upper bound of the bucket that holds
 * the value of rank ceil(p/100 * count), never above the exact maximum. 0 when h is empty.
 */
uint64_t lt_hist_percentile(const struct lt_hist *h, double p);

/* Returns the mean of the recorded values, 0 when h is empty. */
double lt_hist_mean(const struct lt_hist *h);

/* Bucket index of v and the highest value that bucket holds (exposed for the unit test). */
unsigned lt_hist_index(uint64_t v);
uint64_t lt_hist_bucket_high(unsigned idx);

#endif
