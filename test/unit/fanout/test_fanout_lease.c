/*
 * test_fanout_lease.c: integration tests of fanout leases against a real redis-server
 * (redist.c) on loopback, plus the in-memory mode.
 *
 * Two fanouts ("processes" node-a and node-b) share one poll() loop and one server and
 * compete for lease "pg" with TTL_MS. Each records its held state, the number of
 * callbacks and when the last one ran, so tests assert who holds and how fast a change
 * happened. A crash is simulated with fanout__lease_abandon() (the key stays until its
 * TTL expires) before fanout_free(). Waits are bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "base/base.h"
#include "base/loop.h"
#include "fanout/fanout.h"
#include "fanout/fanout_int.h"
#include "harness.h"
#include "redist.h"

#define TTL_MS  1500
#define WAIT_MS 5000

struct node {
    struct fanout *fo; /* the fanout, NULL when freed */
    bool ready;        /* last Redis state was READY */
    bool held;         /* last lease callback value */
    int calls;         /* lease callbacks */
    uint64_t at_ms;    /* when the last callback ran */
};

struct fix {
    struct gw_loop *loop; /* the shared loop */
    struct redist srv;    /* the server */
    struct node node[2];  /* the "processes" */
};

static const char *const names[2] = { "node-a", "node-b" };

static void
state_cb(void *ud, enum fanout_redis_state st, const char *detail)
{
    struct node *n = ud;

    (void)detail;
    n->ready = st == FANOUT_REDIS_READY;
}

static void
lease_cb(void *ud, bool held)
{
    struct node *n = ud;

    n->held = held;
    n->calls++;
    n->at_ms = gw_now_ms();
}

static int
node_new(struct fix *f, size_t i, bool redis)
{
    struct node *n = &f->node[i];
    const char *urls[1] = { f->srv.url };
    struct fanout_config cfg = {
        .encode = redist_encode_none,
        .deliver = redist_deliver_none,
        .ud = n,
        .loop = f->loop,
        .redis = urls,
        .n_redis = redis ? 1 : 0,
        .node_id = names[i],
        .on_state = state_cb,
    };

    memset(n, 0, sizeof(*n));
    n->fo = fanout_new(&cfg);
    if (!n->fo)
        return -1;
    return fanout_lease_start(n->fo, "pg", TTL_MS, lease_cb, n);
}

static int
holders(const struct fix *f)
{
    return (f->node[0].fo && f->node[0].held) + (f->node[1].fo && f->node[1].held);
}

static int
fix_up(struct fix *f)
{
    bool ok;

    memset(f, 0, sizeof(*f));
    f->loop = loop_poll_new();
    if (redist_start(&f->srv, 0, NULL) < 0 || node_new(f, 0, true) || node_new(f, 1, true))
        return -1;
    REDIST_RUN_UNTIL(f->loop, holders(f) == 1, WAIT_MS, ok);
    return ok ? 0 : -1;
}

static void
fix_down(struct fix *f)
{
    fanout_free(f->node[0].fo);
    fanout_free(f->node[1].fo);
    redist_stop(&f->srv);
    loop_poll_free(f->loop);
}

/* The value of the lease key ("" when absent). */
static void
lease_value(const struct fix *f, char *out, size_t cap)
{
    redisContext *c = redisConnect("127.0.0.1", f->srv.port);
    redisReply *r = c ? redisCommand(c, "GET tidings:lease:pg") : NULL;

    snprintf(out, cap, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    if (r)
        freeReplyObject(r);
    redisFree(c);
}

static size_t
holder_of(const struct fix *f)
{
    return f->node[0].held ? 0 : 1;
}

/* Exactly one node holds, the key names it, and it stays so across several TTLs. */
static void
test_exclusive(void)
{
    struct fix f;
    char v[80];
    size_t h;
    int calls_a, calls_b;

    ASSERT_INT_EQ(fix_up(&f), 0);
    h = holder_of(&f);
    lease_value(&f, v, sizeof(v));
    ASSERT_STR_EQ(v, names[h]);
    ASSERT_TRUE(fanout_lease_held(f.node[h].fo, "pg"));
    ASSERT_TRUE(!fanout_lease_held(f.node[1 - h].fo, "pg"));
    calls_a = f.node[0].calls;
    calls_b = f.node[1].calls;
    redist_run_for(f.loop, 3 * TTL_MS);
    ASSERT_INT_EQ(holders(&f), 1);
    ASSERT_TRUE(f.node[h].held);
    ASSERT_INT_EQ(f.node[0].calls, calls_a); /* renewals do not call back */
    ASSERT_INT_EQ(f.node[1].calls, calls_b);
    ASSERT_INT_EQ(fanout_lease_start(f.node[0].fo, "pg", TTL_MS, lease_cb, &f.node[0]), GW_EEXIST);
    ASSERT_INT_EQ(fanout_lease_start(f.node[0].fo, "x", 10, lease_cb, &f.node[0]), GW_EINVAL);
    ASSERT_INT_EQ(fanout_lease_release(f.node[0].fo, "nope"), GW_ENOTFOUND);
    fix_down(&f);
}

/* The holder crashes (keeps the key): the other takes over once the key expired. */
static void
test_crash(void)
{
    struct fix f;
    size_t h;
    uint64_t t0;
    bool ok;
    char v[80];

    ASSERT_INT_EQ(fix_up(&f), 0);
    h = holder_of(&f);
    fanout__lease_abandon(f.node[h].fo);
    fanout_free(f.node[h].fo);
    f.node[h].fo = NULL;
    t0 = gw_now_ms();
    REDIST_RUN_UNTIL(f.loop, f.node[1 - h].held, TTL_MS * 2, ok);
    ASSERT_TRUE(ok);
    /* Not before the key could expire, within TTL + one tick (+ slack). */
    ASSERT_TRUE(f.node[1 - h].at_ms - t0 >= TTL_MS / 2);
    ASSERT_TRUE(f.node[1 - h].at_ms - t0 <= TTL_MS + TTL_MS / 3 + 300);
    lease_value(&f, v, sizeof(v));
    ASSERT_STR_EQ(v, names[1 - h]);
    fix_down(&f);
}

/* A clean shutdown deletes the key: the other takes over within about one tick. */
static void
test_release(void)
{
    struct fix f;
    size_t h;
    uint64_t t0;
    bool ok;

    ASSERT_INT_EQ(fix_up(&f), 0);
    h = holder_of(&f);
    fanout_free(f.node[h].fo);
    f.node[h].fo = NULL;
    t0 = gw_now_ms();
    REDIST_RUN_UNTIL(f.loop, f.node[1 - h].held, TTL_MS * 2, ok);
    ASSERT_TRUE(ok);
    ASSERT_TRUE(f.node[1 - h].at_ms - t0 <= TTL_MS / 3 + 300);
    /* Explicit release without a competitor: the key is gone, no callback. */
    ASSERT_INT_EQ(fanout_lease_release(f.node[1 - h].fo, "pg"), 0);
    redist_run_for(f.loop, 200);
    {
        char v[80];

        lease_value(&f, v, sizeof(v));
        ASSERT_STR_EQ(v, "");
    }
    ASSERT_TRUE(!fanout_lease_held(f.node[1 - h].fo, "pg"));
    fix_down(&f);
}

/* Redis dies or hangs: the holder stops holding before the key could have expired. */
static void
test_fence(bool pause)
{
    struct fix f;
    size_t h;
    uint64_t t0;
    bool ok;

    ASSERT_INT_EQ(fix_up(&f), 0);
    redist_run_for(f.loop, 100);
    h = holder_of(&f);
    t0 = gw_now_ms();
    if (pause)
        redist_pause(&f.srv, true);
    else
        redist_kill(&f.srv);
    REDIST_RUN_UNTIL(f.loop, !f.node[h].held, TTL_MS * 2, ok);
    ASSERT_TRUE(ok);
    /* Fenced at 2/3 TTL after the last renewal was sent (at most TTL/3 before t0). */
    ASSERT_TRUE(f.node[h].at_ms - t0 <= TTL_MS * 2 / 3 + 50);
    ASSERT_INT_EQ(holders(&f), 0);
    if (pause) {
        redist_pause(&f.srv, false);
    } else {
        ASSERT_INT_EQ(redist_restart(&f.srv), 0);
    }
    REDIST_RUN_UNTIL(f.loop, holders(&f) == 1, WAIT_MS * 3, ok);
    ASSERT_TRUE(ok);
    fix_down(&f);
}

static void
test_fence_kill(void)
{
    test_fence(false);
}

static void
test_fence_pause(void)
{
    test_fence(true);
}

/* In memory: held on the next loop turn, not inside fanout_lease_start. */
static void
test_memory(void)
{
    struct fix f;
    bool ok;

    memset(&f, 0, sizeof(f));
    f.loop = loop_poll_new();
    ASSERT_INT_EQ(node_new(&f, 0, false), 0);
    ASSERT_INT_EQ(f.node[0].calls, 0);
    REDIST_RUN_UNTIL(f.loop, f.node[0].held, 1000, ok);
    ASSERT_TRUE(ok);
    ASSERT_TRUE(fanout_lease_held(f.node[0].fo, "pg"));
    redist_run_for(f.loop, 100);
    ASSERT_INT_EQ(f.node[0].calls, 1);
    fanout_free(f.node[0].fo);
    loop_poll_free(f.loop);
}

int
main(void)
{
    gw_log_setup(getenv("TIDINGS_TEST_LOG") ? GW_LOG_DEBUG : GW_LOG_ERROR, false);
    RUN(test_memory);
    RUN(test_exclusive);
    RUN(test_crash);
    RUN(test_release);
    RUN(test_fence_kill);
    RUN(test_fence_pause);
    return HARNESS_DONE();
}
