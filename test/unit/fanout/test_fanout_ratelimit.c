/*
 * test_fanout_ratelimit.c: cluster-wide token buckets (fanout_ratelimit_take) against a
 * real redis-server (redist.c) on loopback, plus the fail-open cases.
 *
 * Two fanouts ("processes" node-a and node-b) share one poll() loop, one server and one
 * bucket of rate 5, burst 5: across both exactly 5 takes are allowed, then denied, and
 * tokens come back with time. In-memory mode, a fanout not yet ready and a killed server
 * answer allowed; a cancelled take and a take pending at fanout_free never call back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/loop.h"
#include "fanout/fanout.h"
#include "harness.h"
#include "redist.h"

#define WAIT_MS 5000

/* Answers received by one caller. */
struct answers {
    int calls;   /* callbacks */
    int allowed; /* of which allowed */
};

static void
take_cb(void *ud, bool allowed)
{
    struct answers *a = ud;

    a->calls++;
    a->allowed += allowed ? 1 : 0;
}

static struct fanout *
node_new(struct gw_loop *loop, const char *url, const char *id)
{
    const char *urls[1] = { url };
    struct fanout_config cfg = {
        .encode = redist_encode_none,
        .deliver = redist_deliver_none,
        .loop = loop,
        .redis = urls,
        .n_redis = url ? 1 : 0,
        .node_id = id,
    };

    return fanout_new(&cfg);
}

static bool
both_ready(struct fanout *a, struct fanout *b, bool *ra, bool *rb)
{
    fanout_redis_status(a, ra);
    fanout_redis_status(b, rb);
    return *ra && *rb;
}

/* Runs the loop until both fanouts report ready. */
static bool
wait_ready(struct gw_loop *loop, struct fanout *a, struct fanout *b)
{
    bool ra = false, rb = false, ok;

    REDIST_RUN_UNTIL(loop, both_ready(a, b, &ra, &rb), WAIT_MS, ok);
    return ok;
}

/* Takes n tokens of `key` alternately on a and b; returns the allowed count, or -1 when
 * not every answer came. */
static int
take_n(struct gw_loop *loop, struct fanout *a, struct fanout *b, const char *key, int n)
{
    struct answers ans = { 0, 0 };
    bool ok;

    for (int i = 0; i < n; i++)
        fanout_ratelimit_take(i % 2 ? b : a, key, 5, 5, take_cb, &ans);
    REDIST_RUN_UNTIL(loop, ans.calls == n, WAIT_MS, ok);
    return ok ? ans.allowed : -1;
}

/* Two processes share a bucket; it refills; a cancelled take never answers. */
static void
test_shared_bucket(void)
{
    struct gw_loop *loop = loop_poll_new();
    struct redist srv;
    struct fanout *a, *b;
    struct answers early = { 0, 0 }, cancelled = { 0, 0 }, other = { 0, 0 }, freed = { 0, 0 };
    bool ok;

    ASSERT_INT_EQ(redist_start(&srv, 0, NULL), 0);
    a = node_new(loop, srv.url, "node-a");
    b = node_new(loop, srv.url, "node-b");
    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(b);
    /* Not connected yet: fail open, synchronously. */
    fanout_ratelimit_take(a, "user:x", 5, 5, take_cb, &early);
    ASSERT_INT_EQ(early.calls, 1);
    ASSERT_INT_EQ(early.allowed, 1);
    ASSERT_TRUE(wait_ready(loop, a, b));
    /* Exactly the burst across both processes, then denied. */
    ASSERT_INT_EQ(take_n(loop, a, b, "user:1", 12), 5);
    ASSERT_INT_EQ(take_n(loop, a, b, "user:1", 3), 0);
    /* Another key has its own bucket. */
    ASSERT_INT_EQ(take_n(loop, a, b, "user:2", 6), 5);
    /* Refill at 5/s: after ~500 ms about 2 tokens (not a full bucket). */
    redist_run_for(loop, 500);
    {
        int got = take_n(loop, a, b, "user:1", 5);

        ASSERT_TRUE(got >= 2 && got <= 3);
    }
    redist_run_for(loop, 1200);
    ASSERT_INT_EQ(take_n(loop, a, b, "user:1", 8), 5);
    /* A cancelled take never answers; another ud's take still does. */
    fanout_ratelimit_take(a, "user:3", 5, 5, take_cb, &cancelled);
    fanout_ratelimit_take(b, "user:3", 5, 5, take_cb, &other);
    fanout_ratelimit_cancel(a, &cancelled);
    REDIST_RUN_UNTIL(loop, other.calls == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    redist_run_for(loop, 100);
    ASSERT_INT_EQ(cancelled.calls, 0);
    ASSERT_INT_EQ(other.allowed, 1);
    /* A take pending at fanout_free never answers. */
    fanout_ratelimit_take(a, "user:4", 5, 5, take_cb, &freed);
    fanout_free(a);
    redist_run_for(loop, 100);
    ASSERT_INT_EQ(freed.calls, 0);
    fanout_free(b);
    redist_stop(&srv);
    loop_poll_free(loop);
}

/* Redis down (killed) or absent: allowed. */
static void
test_fail_open(void)
{
    struct gw_loop *loop = loop_poll_new();
    struct redist srv;
    struct fanout *a, *b, *mem;
    struct answers ans = { 0, 0 };
    bool ok;

    ASSERT_INT_EQ(redist_start(&srv, 0, NULL), 0);
    a = node_new(loop, srv.url, "node-a");
    b = node_new(loop, srv.url, "node-b");
    ASSERT_TRUE(wait_ready(loop, a, b));
    ASSERT_INT_EQ(take_n(loop, a, b, "user:1", 7), 5);
    redist_kill(&srv);
    {
        bool ready = true;

        REDIST_RUN_UNTIL(loop, !(fanout_redis_status(a, &ready), ready), WAIT_MS, ok);
        ASSERT_TRUE(ok);
    }
    for (int i = 0; i < 10; i++)
        fanout_ratelimit_take(a, "user:1", 5, 5, take_cb, &ans);
    REDIST_RUN_UNTIL(loop, ans.calls == 10, WAIT_MS, ok);
    ASSERT_INT_EQ(ans.calls, 10);
    ASSERT_INT_EQ(ans.allowed, 10);
    /* In-memory mode: allowed at once. */
    mem = node_new(loop, NULL, "node-m");
    memset(&ans, 0, sizeof(ans));
    for (int i = 0; i < 10; i++)
        fanout_ratelimit_take(mem, "user:1", 5, 5, take_cb, &ans);
    ASSERT_INT_EQ(ans.allowed, 10);
    fanout_free(mem);
    fanout_free(a);
    fanout_free(b);
    redist_stop(&srv);
    loop_poll_free(loop);
}

int
main(void)
{
    RUN(test_shared_bucket);
    RUN(test_fail_open);
    return HARNESS_DONE();
}
