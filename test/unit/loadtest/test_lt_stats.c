/*
 * test_lt_stats.c: the pure helpers of tidings-load (loadtest/stats.c): per-topic
 * sequence checking (duplicates, gaps) and the least-squares slope behind the soak's
 * RSS growth figure.
 */
#include <math.h>

#include "harness.h"
#include "loadtest/load.h"

static void
test_seq_in_order(void)
{
    uint64_t last = 0, dups = 0, gaps = 0;

    for (uint64_t s = 1; s <= 100; s++)
        ASSERT_INT_EQ(lt_seq_check(&last, s, &dups, &gaps), LT_SEQ_OK);
    ASSERT_UINT_EQ(last, 100);
    ASSERT_UINT_EQ(dups, 0);
    ASSERT_UINT_EQ(gaps, 0);
}

static void
test_seq_duplicate(void)
{
    uint64_t last = 0, dups = 0, gaps = 0;

    lt_seq_check(&last, 1, &dups, &gaps);
    lt_seq_check(&last, 2, &dups, &gaps);
    ASSERT_INT_EQ(lt_seq_check(&last, 2, &dups, &gaps), LT_SEQ_DUP);
    ASSERT_INT_EQ(lt_seq_check(&last, 1, &dups, &gaps), LT_SEQ_DUP); /* older: reordered */
    ASSERT_UINT_EQ(last, 2);                                         /* unchanged */
    ASSERT_UINT_EQ(dups, 2);
    ASSERT_INT_EQ(lt_seq_check(&last, 3, &dups, &gaps), LT_SEQ_OK);
    ASSERT_UINT_EQ(gaps, 0);
}

static void
test_seq_gap(void)
{
    uint64_t last = 0, dups = 0, gaps = 0;

    ASSERT_INT_EQ(lt_seq_check(&last, 4, &dups, &gaps), LT_SEQ_GAP); /* 1..3 lost */
    ASSERT_UINT_EQ(gaps, 3);
    ASSERT_INT_EQ(lt_seq_check(&last, 5, &dups, &gaps), LT_SEQ_OK);
    ASSERT_INT_EQ(lt_seq_check(&last, 10, &dups, &gaps), LT_SEQ_GAP); /* 6..9 lost */
    ASSERT_UINT_EQ(gaps, 7);
    ASSERT_UINT_EQ(last, 10);
    ASSERT_UINT_EQ(dups, 0);
}

static void
test_slope_line(void)
{
    double x[10], y[10];

    for (int i = 0; i < 10; i++) {
        x[i] = i;
        y[i] = 1000 + 2.5 * i;
    }
    ASSERT_TRUE(fabs(lt_slope(x, y, 10, 0) - 2.5) < 1e-9);
    y[0] = y[1] = 50000; /* a warm-up spike before x_from does not count */
    ASSERT_TRUE(fabs(lt_slope(x, y, 10, 2) - 2.5) < 1e-9);
    ASSERT_TRUE(lt_slope(x, y, 10, 0) < 0); /* with it, the fit falls */
}

static void
test_slope_flat_noise_and_gaps(void)
{
    double x[6] = { 0, 1, 2, 3, 4, 5 }, y[6] = { 100, 102, 100, 102, 100, 102 };

    ASSERT_TRUE(fabs(lt_slope(x, y, 6, 0) - 3.0 / 17.5) < 1e-9); /* Sxy / Sxx */
    y[5] = -1;                                                   /* not measured: skipped */
    ASSERT_TRUE(fabs(lt_slope(x, y, 6, 0)) < 1e-9);
}

static void
test_slope_undefined(void)
{
    double x[3] = { 1, 1, 1 }, y[3] = { 1, 2, 3 };

    ASSERT_TRUE(isnan(lt_slope(x, y, 2, 0)));  /* fewer than 3 points */
    ASSERT_TRUE(isnan(lt_slope(x, y, 3, 0)));  /* no spread in x */
    ASSERT_TRUE(isnan(lt_slope(x, y, 3, 10))); /* nothing after x_from */
}

int
main(void)
{
    RUN(test_seq_in_order);
    RUN(test_seq_duplicate);
    RUN(test_seq_gap);
    RUN(test_slope_line);
    RUN(test_slope_flat_noise_and_gaps);
    RUN(test_slope_undefined);
    return HARNESS_DONE();
}
