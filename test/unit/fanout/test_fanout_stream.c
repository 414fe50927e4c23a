/*
 * test_fanout_stream.c: the fanout streams (replay storage in Redis Streams) against a
 * real redis-server (redist.c) on loopback, plus the in-memory mode.
 *
 * One fanout on a poll() loop: adds bodies, reads ranges (since, limit), checks the
 * approximate MAXLEN trim with many adds, and that a cancelled range or one pending at
 * fanout_free never calls back. Waits are bounded.
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

/* The answer of one range. */
struct answer {
    int calls;      /* callbacks received */
    size_t n;       /* last entry count */
    uint64_t first; /* ms of the first entry */
    uint64_t last;  /* ms of the last entry */
    char all[4096]; /* bodies joined by ';' */
};

static void
range_cb(void *ud, const struct fanout_stream_entry *e, size_t n)
{
    struct answer *a = ud;

    a->calls++;
    a->n = n;
    a->all[0] = '\0';
    for (size_t k = 0; k < n; k++) {
        size_t used = strlen(a->all);

        snprintf(a->all + used, sizeof(a->all) - used, "%.*s;", (int)e[k].len,
                 (const char *)e[k].body);
    }
    a->first = n ? e[0].ms : 0;
    a->last = n ? e[n - 1].ms : 0;
}

static struct fanout *
node_new(struct gw_loop *loop, const char *url)
{
    const char *urls[1] = { url };
    struct fanout_config cfg = {
        .encode = redist_encode_none,
        .deliver = redist_deliver_none,
        .loop = loop,
        .redis = urls,
        .n_redis = url ? 1 : 0,
        .node_id = "node-s",
    };

    return fanout_new(&cfg);
}

/* Reads a range and runs the loop until the answer. */
static bool
range(struct gw_loop *loop, struct fanout *fo, const char *topic, uint64_t since, size_t limit,
      struct answer *a)
{
    bool ok;

    memset(a, 0, sizeof(*a));
    fanout_stream_range(fo, topic, strlen(topic), since, limit, range_cb, a);
    REDIST_RUN_UNTIL(loop, a->calls > 0, WAIT_MS, ok);
    return ok;
}

/* Waits until the fanout is ready (the range is then answered from Redis). */
static void
wait_ready(struct gw_loop *loop, struct fanout *fo)
{
    bool ready = false;

    for (uint64_t end = gw_now_ms() + WAIT_MS; !ready && gw_now_ms() < end;) {
        (void)fanout_redis_status(fo, &ready);
        if (!ready)
            redist_run_for(loop, 20);
    }
    ASSERT_TRUE(ready);
}

/* Add, range since/limit, topics kept apart. */
static void
test_add_range(struct gw_loop *loop, struct fanout *fo)
{
    struct answer a;
    uint64_t t0 = gw_wall_ms() - 5000, t1;

    ASSERT_INT_EQ(fanout_stream_add(fo, "t1", 2, "m1", 2, 100, 60000), 0);
    ASSERT_INT_EQ(fanout_stream_add(fo, "t1", 2, "m2", 2, 100, 60000), 0);
    ASSERT_INT_EQ(fanout_stream_add(fo, "t2", 2, "other", 5, 100, 60000), 0);
    ASSERT_INT_EQ(fanout_stream_add(fo, "t1", 2, "x", 1, 0, 60000), GW_EINVAL);
    ASSERT_INT_EQ(fanout_stream_add(fo, "t1", 2, "x", 1, 10, 0), GW_EINVAL);
    ASSERT_TRUE(range(loop, fo, "t1", t0, 10, &a));
    ASSERT_INT_EQ(a.n, 2);
    ASSERT_STR_EQ(a.all, "m1;m2;");
    ASSERT_TRUE(a.first >= t0 && a.first <= gw_wall_ms() + 1000);
    ASSERT_TRUE(range(loop, fo, "t1", t0, 1, &a));
    ASSERT_STR_EQ(a.all, "m1;");
    ASSERT_TRUE(range(loop, fo, "t2", t0, 10, &a));
    ASSERT_STR_EQ(a.all, "other;");
    ASSERT_TRUE(range(loop, fo, "nope", t0, 10, &a));
    ASSERT_INT_EQ(a.n, 0);
    /* since excludes older entries. */
    redist_run_for(loop, 30);
    t1 = gw_wall_ms();
    redist_run_for(loop, 30);
    ASSERT_INT_EQ(fanout_stream_add(fo, "t1", 2, "m3", 2, 100, 60000), 0);
    ASSERT_TRUE(range(loop, fo, "t1", t1, 10, &a));
    ASSERT_STR_EQ(a.all, "m3;");
    ASSERT_TRUE(range(loop, fo, "t1", t0, 10, &a));
    ASSERT_STR_EQ(a.all, "m1;m2;m3;");
}

/* MAXLEN ~ keeps the stream bounded (approximately: whole nodes of 100 are trimmed). */
static void
test_trim(struct gw_loop *loop, struct fanout *fo)
{
    struct answer a;
    char body[16];

    for (int i = 0; i < 400; i++) {
        snprintf(body, sizeof(body), "b%d", i);
        ASSERT_INT_EQ(fanout_stream_add(fo, "big", 3, body, strlen(body), 10, 60000), 0);
    }
    ASSERT_TRUE(range(loop, fo, "big", 0, 1000, &a));
    ASSERT_TRUE(a.n >= 10 && a.n < 400);
    ASSERT_TRUE(strstr(a.all, "b399;") != NULL);
    ASSERT_TRUE(strstr(a.all, "b0;") == NULL);
}

/* A cancelled range and one pending at fanout_free never call back. */
static void
test_cancel(struct gw_loop *loop, struct fanout *fo)
{
    struct answer a, b;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    fanout_stream_range(fo, "t1", 2, 0, 10, range_cb, &a);
    fanout_stream_range(fo, "t1", 2, 0, 10, range_cb, &b);
    fanout_stream_cancel(fo, &a);
    redist_run_for(loop, 200);
    ASSERT_INT_EQ(a.calls, 0);
    ASSERT_INT_EQ(b.calls, 1);
    ASSERT_INT_EQ(b.n, 3);
    memset(&a, 0, sizeof(a));
    fanout_stream_range(fo, "t1", 2, 0, 10, range_cb, &a);
    fanout_free(fo);
    redist_run_for(loop, 200);
    ASSERT_INT_EQ(a.calls, 0);
}

static void
test_cluster(void)
{
    struct gw_loop *loop = loop_poll_new();
    struct redist srv;
    struct fanout *fo;
    struct answer a;

    ASSERT_INT_EQ(redist_start(&srv, 0, NULL), 0);
    fo = node_new(loop, srv.url);
    ASSERT_NOT_NULL(fo);
    /* Not ready yet: answered at once, empty. */
    memset(&a, 0, sizeof(a));
    fanout_stream_range(fo, "t1", 2, 0, 10, range_cb, &a);
    ASSERT_INT_EQ(a.calls, 1);
    ASSERT_INT_EQ(a.n, 0);
    wait_ready(loop, fo);
    test_add_range(loop, fo);
    test_trim(loop, fo);
    test_cancel(loop, fo);
    redist_stop(&srv);
    loop_poll_free(loop);
}

/* In memory: adds are no-ops, ranges answer empty synchronously. */
static void
test_memory(void)
{
    struct fanout *fo = node_new(NULL, NULL);
    struct answer a;

    ASSERT_NOT_NULL(fo);
    ASSERT_INT_EQ(fanout_stream_add(fo, "t", 1, "x", 1, 10, 1000), 0);
    memset(&a, 0, sizeof(a));
    fanout_stream_range(fo, "t", 1, 0, 10, range_cb, &a);
    ASSERT_INT_EQ(a.calls, 1);
    ASSERT_INT_EQ(a.n, 0);
    fanout_free(fo);
}

int
main(void)
{
    RUN(test_memory);
    RUN(test_cluster);
    return HARNESS_DONE();
}
