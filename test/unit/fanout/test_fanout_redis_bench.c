/*
 * test_fanout_redis_bench.c: cross-process throughput of the Redis bus (a benchmark that
 * also checks that nothing is lost; it asserts no timing).
 *
 * Node A publishes N small messages (64-byte body) to one topic; nodes B (and C) have one
 * subscriber each. All nodes share one poll() loop and one redis-server, so the figure is
 * the whole path on one core: envelope + PUBLISH on A, Redis, read + decode + one
 * fanout_msg + delivery on B. A publishes in batches of 1000 and keeps at most 20,000
 * messages ahead of the slowest receiver. N is 100,000 unless TIDINGS_BENCH_N says
 * otherwise. Prints one line per scenario.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fanout/fanout.h"
#include "harness.h"
#include "redist.h"

#define BODY_LEN 64
#define BATCH    1000
#define AHEAD    20000

struct node {
    struct fanout *fo; /* the fanout */
    size_t got;        /* deliveries */
    bool ready;        /* last state was READY */
};

static struct fanout_frame *
encode_cb(void *ud, const struct fanout_msg *m, unsigned variant)
{
    size_t len;
    const void *body = fanout_msg_body(m, &len);
    struct fanout_frame *f = fanout_frame_new(10, len);

    (void)ud;
    (void)variant;
    memcpy(f->data, body, len);
    f->len = len;
    return f;
}

static void
deliver_cb(void *ud, void *sub_ud, struct fanout_msg *m)
{
    struct node *n = ud;

    (void)sub_ud;
    n->got++;
    fanout_msg_frame(m, 0); /* what a gateway sink does: build (once) and queue the frame */
}

static void
state_cb(void *ud, enum fanout_redis_state st, const char *detail)
{
    struct node *n = ud;

    (void)detail;
    n->ready = st == FANOUT_REDIS_READY;
}

static bool
all_ready(const struct node *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!nodes[i].ready)
            return false;
    }
    return true;
}

static size_t
min_got(const struct node *nodes, size_t from, size_t n)
{
    size_t m = SIZE_MAX;

    for (size_t i = from; i < n; i++)
        m = nodes[i].got < m ? nodes[i].got : m;
    return m;
}

/* Runs one scenario with `receivers` receiving nodes; returns messages per second. */
static double
run(struct gw_loop *loop, const struct redist *srv, size_t receivers, size_t total)
{
    struct node nodes[3];
    const char *url = srv->url;
    unsigned char body[BODY_LEN];
    struct fanout_sub *h;
    uint64_t t0, t1;
    bool ok;
    size_t n = receivers + 1, sent = 0;

    memset(nodes, 0, sizeof(nodes));
    memset(body, 'b', sizeof(body));
    for (size_t i = 0; i < n; i++) {
        struct fanout_config cfg = { .encode = encode_cb,
                                     .deliver = deliver_cb,
                                     .ud = &nodes[i],
                                     .loop = loop,
                                     .redis = &url,
                                     .n_redis = 1,
                                     .on_state = state_cb };

        nodes[i].fo = fanout_new(&cfg);
        if (i > 0)
            fanout_subscribe(nodes[i].fo, "bench", 5, &nodes[i], &h);
    }
    REDIST_RUN_UNTIL(
        loop, all_ready(nodes, n) && redist_numsub(srv, "tidings:bus:bench") == (long)receivers,
        10000, ok);
    t0 = gw_now_ms();
    while (ok && sent < total) {
        for (size_t i = 0; i < BATCH && sent < total; i++, sent++) {
            struct fanout_msg *m = fanout_msg_new(nodes[0].fo, body, sizeof(body), 1);

            fanout_publish(nodes[0].fo, "bench", 5, m, NULL);
            fanout_msg_unref(m);
        }
        do
            loop_poll_run(loop, 0);
        while (sent - min_got(nodes, 1, n) > AHEAD && gw_now_ms() - t0 < 60000);
    }
    REDIST_RUN_UNTIL(loop, min_got(nodes, 1, n) >= total, 60000, ok);
    t1 = gw_now_ms();
    {
        struct fanout_redis_stats st;

        fanout_redis_stats(nodes[0].fo, &st);
        printf("bench: %zu messages of %d bytes, A -> %zu node(s): %.0f ms, %.0f msgs/s "
               "(published %llu, dropped %llu)\n",
               total, BODY_LEN, receivers, (double)(t1 - t0),
               (double)total * 1000.0 / (double)(t1 > t0 ? t1 - t0 : 1),
               (unsigned long long)st.published, (unsigned long long)st.dropped);
    }
    ok = ok && min_got(nodes, 1, n) == total;
    for (size_t i = 0; i < n; i++)
        fanout_free(nodes[i].fo);
    return ok ? (double)total * 1000.0 / (double)(t1 > t0 ? t1 - t0 : 1) : 0;
}

static void
test_bench(void)
{
    struct gw_loop *loop = loop_poll_new();
    struct redist srv;
    const char *env = getenv("TIDINGS_BENCH_N");
    size_t total = env ? (size_t)strtoul(env, NULL, 10) : 100000;
    int rc = redist_start(&srv, 0, NULL);
    double one = 0, two = 0;

    if (rc == 0) {
        one = run(loop, &srv, 1, total);
        two = run(loop, &srv, 2, total);
    }
    redist_stop(&srv);
    loop_poll_free(loop);
    ASSERT_INT_EQ(rc, 0);
    ASSERT_TRUE(one > 0);
    ASSERT_TRUE(two > 0);
}

int
main(void)
{
    gw_log_setup(GW_LOG_ERROR, false);
    RUN(test_bench);
    return HARNESS_DONE();
}
