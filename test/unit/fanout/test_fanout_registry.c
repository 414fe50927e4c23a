/*
 * test_fanout_registry.c: the fanout registry (one blob per process in Redis) against a
 * real redis-server (redist.c) on loopback, plus the in-memory mode and
 * fanout_topics_foreach.
 *
 * Two fanouts ("processes" node-a and node-b) share one poll() loop and one server. Each
 * puts a blob; a fetch on either must list both, a blob whose TTL ran out disappears, and
 * a fetch still pending when its fanout is freed never calls back. Waits are bounded.
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

/* The answer of one fetch. */
struct answer {
    int calls;     /* callbacks received */
    bool ok;       /* last ok */
    size_t n;      /* last entry count */
    char all[256]; /* "node=blob;" per entry, sorted by node (at most two) */
};

static void
fetch_cb(void *ud, bool ok, const struct fanout_registry_entry *e, size_t n)
{
    struct answer *a = ud;
    size_t first = 0;

    a->calls++;
    a->ok = ok;
    a->n = n;
    a->all[0] = '\0';
    if (n == 2 && memcmp(e[0].node, e[1].node,
                         e[0].node_len < e[1].node_len ? e[0].node_len : e[1].node_len) > 0)
        first = 1;
    for (size_t k = 0; k < n && k < 2; k++) {
        const struct fanout_registry_entry *x = &e[(first + k) % n];
        size_t used = strlen(a->all);

        snprintf(a->all + used, sizeof(a->all) - used, "%.*s=%.*s;", (int)x->node_len, x->node,
                 (int)x->len, x->data);
    }
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

/* Fetches on fo and runs the loop until the answer. */
static bool
fetch(struct gw_loop *loop, struct fanout *fo, struct answer *a)
{
    bool ok;

    memset(a, 0, sizeof(*a));
    fanout_registry_fetch(fo, fetch_cb, a);
    REDIST_RUN_UNTIL(loop, a->calls > 0, WAIT_MS, ok);
    return ok;
}

/* Both blobs are listed by both; an expired blob disappears; a pending fetch is cancelled
 * by fanout_free. */
static void
test_cluster(void)
{
    struct gw_loop *loop = loop_poll_new();
    struct redist srv;
    struct fanout *a, *b;
    struct answer ans;

    ASSERT_INT_EQ(redist_start(&srv, 0, NULL), 0);
    a = node_new(loop, srv.url, "node-a");
    b = node_new(loop, srv.url, "node-b");
    ASSERT_NOT_NULL(a);
    ASSERT_NOT_NULL(b);
    /* Not ready yet (connections start on the next loop turn): ok = false at once. */
    memset(&ans, 0, sizeof(ans));
    fanout_registry_fetch(a, fetch_cb, &ans);
    ASSERT_INT_EQ(ans.calls, 1);
    ASSERT_TRUE(!ans.ok);
    for (uint64_t end = gw_now_ms() + WAIT_MS; !ans.ok && gw_now_ms() < end;) {
        ASSERT_TRUE(fetch(loop, a, &ans));
        if (!ans.ok)
            redist_run_for(loop, 20);
    }
    ASSERT_TRUE(ans.ok);
    ASSERT_INT_EQ(ans.n, 0);
    ASSERT_INT_EQ(fanout_registry_put(a, "A1", 2, 10000), 0);
    ASSERT_INT_EQ(fanout_registry_put(b, "B1", 2, 300), 0);
    ASSERT_INT_EQ(fanout_registry_put(a, "x", 1, 0), GW_EINVAL);
    ASSERT_TRUE(fetch(loop, b, &ans));
    ASSERT_TRUE(ans.ok);
    ASSERT_STR_EQ(ans.all, "node-a=A1;node-b=B1;");
    ASSERT_TRUE(fetch(loop, a, &ans));
    ASSERT_STR_EQ(ans.all, "node-a=A1;node-b=B1;");
    /* node-b's blob expires (TTL 300 ms); a's is replaced. */
    ASSERT_INT_EQ(fanout_registry_put(a, "A2", 2, 10000), 0);
    redist_run_for(loop, 600);
    ASSERT_TRUE(fetch(loop, a, &ans));
    ASSERT_INT_EQ(ans.n, 1);
    ASSERT_STR_EQ(ans.all, "node-a=A2;");
    /* Freed with a fetch pending: no callback, ever. */
    memset(&ans, 0, sizeof(ans));
    fanout_registry_fetch(b, fetch_cb, &ans);
    fanout_free(b);
    redist_run_for(loop, 200);
    ASSERT_INT_EQ(ans.calls, 0);
    fanout_free(a);
    redist_stop(&srv);
    loop_poll_free(loop);
}

/* In memory: fetch answers synchronously with nothing; put is a no-op. */
static void
test_memory(void)
{
    struct gw_loop *loop = loop_poll_new();
    struct fanout *fo = node_new(loop, NULL, "solo");
    struct answer ans;

    ASSERT_NOT_NULL(fo);
    ASSERT_INT_EQ(fanout_registry_put(fo, "x", 1, 1000), 0);
    memset(&ans, 0, sizeof(ans));
    fanout_registry_fetch(fo, fetch_cb, &ans);
    ASSERT_INT_EQ(ans.calls, 1);
    ASSERT_TRUE(ans.ok);
    ASSERT_INT_EQ(ans.n, 0);
    fanout_free(fo);
    loop_poll_free(loop);
}

struct seen {
    int topics;         /* callbacks */
    size_t subs_t1;     /* subscribers reported for "t1" */
    size_t presence_t2; /* presence entries reported for "t2" */
};

static void
topic_cb(void *ud, const void *topic, size_t len, size_t subscribers, size_t presence)
{
    struct seen *s = ud;

    s->topics++;
    if (len == 2 && memcmp(topic, "t1", 2) == 0)
        s->subs_t1 = subscribers;
    if (len == 2 && memcmp(topic, "t2", 2) == 0)
        s->presence_t2 = presence;
}

/* Every topic with subscribers or presence, with its counts. */
static void
test_topics_foreach(void)
{
    struct fanout *fo = node_new(NULL, NULL, "solo");
    struct fanout_sub *s1, *s2;
    struct fanout_presence p = { "k", 1, "r", 1, "{}", 2 };
    struct seen seen = { 0 };
    int owner;

    ASSERT_NOT_NULL(fo);
    ASSERT_INT_EQ(fanout_subscribe(fo, "t1", 2, &seen, &s1), 0);
    ASSERT_INT_EQ(fanout_subscribe(fo, "t1", 2, &owner, &s2), 0);
    ASSERT_INT_EQ(fanout_presence_set(fo, "t2", 2, &owner, &p, NULL, NULL), 0);
    fanout_topics_foreach(fo, topic_cb, &seen);
    ASSERT_INT_EQ(seen.topics, 2);
    ASSERT_INT_EQ(seen.subs_t1, 2);
    ASSERT_INT_EQ(seen.presence_t2, 1);
    fanout_unsubscribe(fo, s1);
    fanout_unsubscribe(fo, s2);
    memset(&seen, 0, sizeof(seen));
    fanout_topics_foreach(fo, topic_cb, &seen);
    ASSERT_INT_EQ(seen.topics, 1);
    fanout_free(fo);
}

int
main(void)
{
    gw_log_setup(getenv("TIDINGS_TEST_LOG") ? GW_LOG_DEBUG : GW_LOG_ERROR, false);
    RUN(test_memory);
    RUN(test_topics_foreach);
    RUN(test_cluster);
    return HARNESS_DONE();
}
