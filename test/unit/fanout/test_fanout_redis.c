/*
 * test_fanout_redis.c: integration tests of the Redis bus of fanout, against real
 * redis-server processes (redist.c) on loopback.
 *
 * Each "process" of the cluster is one fanout with its own node id; all of them run on
 * one poll() loop. A `struct sub` may be subscribed on several nodes and counts its
 * deliveries per node, so exact totals can be asserted per process. The sink asks for
 * frame variant 0 on every delivery, and the encoder counts its calls per node: one call
 * per message per node proves that a bus message becomes one fanout_msg per process.
 * Waits are bounded; server state is checked with PUBSUB (blocking queries).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"
#include "base/loop.h"
#include "fanout/fanout.h"
#include "fanout/fanout_int.h"
#include "harness.h"
#include "redist.h"

#define MAX_NODES  3
#define MAX_STATES 64
#define WAIT_MS    5000

struct node {
    const char *name;                       /* node id */
    int index;                              /* counter slot in struct sub */
    struct fanout *fo;                      /* the fanout, NULL when freed */
    size_t encodes;                         /* encode calls */
    size_t deliveries;                      /* deliver calls */
    enum fanout_redis_state st[MAX_STATES]; /* reported states, in order */
    char detail[MAX_STATES][160];           /* their details */
    size_t n_st;                            /* state calls */
};

struct sub {
    size_t got[MAX_NODES];           /* deliveries per node */
    struct fanout_sub *h[MAX_NODES]; /* subscription handle per node */
    char body[64];                   /* body of the last delivery */
    size_t len;                      /* its length */
    unsigned tag;                    /* its tag */
};

struct fix {
    struct gw_loop *loop;        /* the shared loop */
    struct redist srv[2];        /* servers */
    size_t n_srv;                /* servers started */
    struct node node[MAX_NODES]; /* the "processes" */
    size_t n_node;               /* nodes created */
};

static const char *const node_names[MAX_NODES] = { "node-a", "node-b", "node-c" };

static struct fanout_frame *
encode_cb(void *ud, const struct fanout_msg *m, unsigned variant)
{
    struct node *n = ud;
    size_t len;
    const void *body = fanout_msg_body(m, &len);
    struct fanout_frame *f = fanout_frame_new(8, len);

    (void)variant;
    n->encodes++;
    memcpy(f->data, body, len);
    f->len = len;
    return f;
}

static void
deliver_cb(void *ud, void *sub_ud, struct fanout_msg *m)
{
    struct node *n = ud;
    struct sub *s = sub_ud;
    const void *body = fanout_msg_body(m, &s->len);

    n->deliveries++;
    s->got[n->index]++;
    s->tag = fanout_msg_tag(m);
    memcpy(s->body, body, s->len < sizeof(s->body) ? s->len : sizeof(s->body));
    fanout_msg_frame(m, 0);
}

static void
state_cb(void *ud, enum fanout_redis_state st, const char *detail)
{
    struct node *n = ud;

    if (n->n_st < MAX_STATES) {
        n->st[n->n_st] = st;
        snprintf(n->detail[n->n_st], sizeof(n->detail[0]), "%s", detail);
    }
    n->n_st++;
}

static enum fanout_redis_state
last_state(const struct node *n)
{
    return n->n_st ? n->st[(n->n_st < MAX_STATES ? n->n_st : MAX_STATES) - 1] : 0;
}

static const char *
last_detail(const struct node *n)
{
    return n->n_st ? n->detail[(n->n_st < MAX_STATES ? n->n_st : MAX_STATES) - 1] : "";
}

/* Creates node `i` of f on the given URLs (prefix NULL = default). */
static struct fanout *
node_new(struct fix *f, size_t i, const char *const *urls, size_t n_urls, const char *prefix)
{
    struct node *n = &f->node[i];
    struct fanout_config cfg = {
        .encode = encode_cb,
        .deliver = deliver_cb,
        .ud = n,
        .loop = f->loop,
        .redis = urls,
        .n_redis = n_urls,
        .prefix = prefix,
        .node_id = node_names[i],
        .on_state = state_cb,
    };

    memset(n, 0, sizeof(*n));
    n->name = node_names[i];
    n->index = (int)i;
    n->fo = fanout_new(&cfg);
    if (f->n_node < i + 1)
        f->n_node = i + 1;
    return n->fo;
}

static bool
all_ready(const struct fix *f)
{
    for (size_t i = 0; i < f->n_node; i++) {
        if (f->node[i].fo && last_state(&f->node[i]) != FANOUT_REDIS_READY)
            return false;
    }
    return true;
}

/* Starts n_srv servers and n_node nodes using all of them; waits until all are READY. */
static int
fix_up(struct fix *f, size_t n_srv, size_t n_node)
{
    const char *urls[2];
    bool ok;

    memset(f, 0, sizeof(*f));
    f->loop = loop_poll_new();
    for (size_t i = 0; i < n_srv; i++) {
        if (redist_start(&f->srv[i], 0, NULL) < 0)
            return -1;
        f->n_srv = i + 1;
        urls[i] = f->srv[i].url;
    }
    for (size_t i = 0; i < n_node; i++) {
        if (!node_new(f, i, urls, n_srv, NULL))
            return -1;
    }
    REDIST_RUN_UNTIL(f->loop, all_ready(f), WAIT_MS, ok);
    return ok ? 0 : -1;
}

static void
fix_down(struct fix *f)
{
    for (size_t i = 0; i < f->n_node; i++) {
        fanout_free(f->node[i].fo);
        f->node[i].fo = NULL;
    }
    for (size_t i = 0; i < f->n_srv; i++)
        redist_stop(&f->srv[i]);
    loop_poll_free(f->loop);
}

static int
sub_on(struct node *n, struct sub *s, const char *topic)
{
    return fanout_subscribe(n->fo, topic, strlen(topic), s, &s->h[n->index]);
}

static void
sub_off(struct node *n, struct sub *s)
{
    fanout_unsubscribe(n->fo, s->h[n->index]);
    s->h[n->index] = NULL;
}

static int
publish(struct node *n, const char *topic, const void *body, size_t len, unsigned tag,
        const void *exclude)
{
    struct fanout_msg *m = fanout_msg_new(n->fo, body, len, tag);
    int rc = fanout_publish(n->fo, topic, strlen(topic), m, exclude);

    fanout_msg_unref(m);
    return rc;
}

static struct fanout_redis_stats
stats(const struct node *n)
{
    struct fanout_redis_stats st;

    fanout_redis_stats(n->fo, &st);
    return st;
}

/* ---- tests ---- */

/* A publish on A reaches B and C once, and A's own subscribers once (exclude on A only). */
static void
cross_node_body(struct fix *f)
{
    struct node *a = &f->node[0], *b = &f->node[1], *c = &f->node[2];
    struct sub x = { 0 }, y = { 0 }, z = { 0 }, w = { 0 };
    static const char body[] = "hello\0world";
    bool ok;

    ASSERT_INT_EQ(sub_on(a, &x, "room:1"), 0);
    ASSERT_INT_EQ(sub_on(a, &y, "room:1"), 0);
    ASSERT_INT_EQ(sub_on(b, &x, "room:1"), 0); /* the same sub_ud pointer on B */
    ASSERT_INT_EQ(sub_on(c, &z, "room:1"), 0);
    ASSERT_INT_EQ(sub_on(c, &w, "room:1"), 0);
    REDIST_RUN_UNTIL(f->loop, redist_numsub(&f->srv[0], "tidings:bus:room:1") == 3, WAIT_MS, ok);
    ASSERT_TRUE(ok);

    /* Local delivery is immediate and honours exclude. */
    ASSERT_INT_EQ(publish(a, "room:1", body, sizeof(body) - 1, 0x89abcdefu, &x), 1);
    ASSERT_UINT_EQ(y.got[0], 1);
    ASSERT_UINT_EQ(x.got[0], 0);
    REDIST_RUN_UNTIL(f->loop, x.got[1] == 1 && z.got[2] == 1 && w.got[2] == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    redist_run_for(f->loop, 200); /* duplicates would arrive now */
    ASSERT_UINT_EQ(x.got[0], 0);
    ASSERT_UINT_EQ(y.got[0], 1);
    ASSERT_UINT_EQ(x.got[1], 1);
    ASSERT_UINT_EQ(z.got[2], 1);
    ASSERT_UINT_EQ(w.got[2], 1);
    ASSERT_UINT_EQ(w.len, sizeof(body) - 1);
    ASSERT_TRUE(memcmp(w.body, body, sizeof(body) - 1) == 0);
    ASSERT_UINT_EQ(w.tag, 0x89abcdefu);
    /* One message per process: C encoded once for its two subscribers. */
    ASSERT_UINT_EQ(a->encodes, 1);
    ASSERT_UINT_EQ(b->encodes, 1);
    ASSERT_UINT_EQ(c->encodes, 1);
    ASSERT_UINT_EQ(stats(a).published, 1);
    ASSERT_UINT_EQ(stats(a).own, 1); /* A's echo, ignored */
    ASSERT_UINT_EQ(stats(a).received, 0);
    ASSERT_UINT_EQ(stats(b).received, 1);
    ASSERT_UINT_EQ(stats(c).received, 1);

    /* From B: everyone on A gets it (exclude is B's local matter). */
    ASSERT_INT_EQ(publish(b, "room:1", "2", 1, 1, &x), 0);
    REDIST_RUN_UNTIL(f->loop, x.got[0] == 1 && y.got[0] == 2 && z.got[2] == 2 && w.got[2] == 2,
                     WAIT_MS, ok);
    ASSERT_TRUE(ok);
    redist_run_for(f->loop, 200);
    ASSERT_UINT_EQ(x.got[0], 1);
    ASSERT_UINT_EQ(y.got[0], 2);
    ASSERT_UINT_EQ(x.got[1], 1);
    ASSERT_UINT_EQ(z.got[2], 2);
    ASSERT_UINT_EQ(x.got[1], 1); /* excluded on B, its publisher */
    ASSERT_UINT_EQ(a->deliveries + b->deliveries + c->deliveries, 8);
}

static void
test_cross_node(void)
{
    struct fix f;
    int rc = fix_up(&f, 1, 3);

    if (rc == 0)
        cross_node_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

/* Topics are isolated (also by prefix), and a publisher needs no local subscriber. */
static void
isolated_body(struct fix *f)
{
    struct node *a = &f->node[0], *b = &f->node[1];
    struct sub room = { 0 }, room1 = { 0 }, r = { 0 };
    bool ok;

    ASSERT_INT_EQ(sub_on(b, &room, "room"), 0);
    ASSERT_INT_EQ(sub_on(b, &room1, "room1"), 0);
    ASSERT_INT_EQ(sub_on(b, &r, "r"), 0);
    REDIST_RUN_UNTIL(f->loop, redist_numsub(&f->srv[0], "tidings:bus:r") == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(publish(a, "room", "m1", 2, 0, NULL), 0);
    ASSERT_INT_EQ(publish(a, "room1", "m2", 2, 0, NULL), 0);
    ASSERT_INT_EQ(publish(a, "nobody", "m3", 2, 0, NULL), 0);
    REDIST_RUN_UNTIL(f->loop, room.got[1] == 1 && room1.got[1] == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    redist_run_for(f->loop, 200);
    ASSERT_UINT_EQ(room.got[1], 1);
    ASSERT_UINT_EQ(room1.got[1], 1);
    ASSERT_UINT_EQ(r.got[1], 0);
    ASSERT_MEM_STR(room1.body, room1.len, "m2");
    ASSERT_UINT_EQ(stats(a).published, 3);
    ASSERT_UINT_EQ(stats(b).received, 2);
}

static void
test_topics_isolated(void)
{
    struct fix f;
    int rc = fix_up(&f, 1, 2);

    if (rc == 0)
        isolated_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

static bool
channels_are(const struct redist *s, const char *pattern, const char *want)
{
    char got[512];

    return redist_channels(s, pattern, got, sizeof(got)) >= 0 && strcmp(got, want) == 0;
}

/* SUBSCRIBE only while the topic has local subscribers. */
static void
lifecycle_body(struct fix *f)
{
    struct node *a = &f->node[0];
    struct sub s1 = { 0 }, s2 = { 0 };
    bool ok;

    ASSERT_TRUE(channels_are(&f->srv[0], "tidings:*", ""));
    ASSERT_INT_EQ(sub_on(a, &s1, "t"), 0);
    REDIST_RUN_UNTIL(f->loop, channels_are(&f->srv[0], "tidings:*", "tidings:bus:t"), WAIT_MS, ok);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(sub_on(a, &s2, "t"), 0);
    redist_run_for(f->loop, 100);
    ASSERT_INT_EQ(redist_numsub(&f->srv[0], "tidings:bus:t"), 1); /* one per process */
    sub_off(a, &s1);
    redist_run_for(f->loop, 200);
    ASSERT_TRUE(channels_are(&f->srv[0], "tidings:*", "tidings:bus:t"));
    sub_off(a, &s2);
    REDIST_RUN_UNTIL(f->loop, channels_are(&f->srv[0], "tidings:*", ""), WAIT_MS, ok);
    ASSERT_TRUE(ok);

    /* On, off, on without a loop turn in between: ends subscribed, once. */
    ASSERT_INT_EQ(sub_on(a, &s1, "u"), 0);
    sub_off(a, &s1);
    ASSERT_INT_EQ(sub_on(a, &s1, "u"), 0);
    redist_run_for(f->loop, 200);
    ASSERT_TRUE(channels_are(&f->srv[0], "tidings:*", "tidings:bus:u"));
    ASSERT_INT_EQ(redist_numsub(&f->srv[0], "tidings:bus:u"), 1);
    /* Off, on, off: ends unsubscribed. */
    sub_off(a, &s1);
    ASSERT_INT_EQ(sub_on(a, &s1, "u"), 0);
    sub_off(a, &s1);
    redist_run_for(f->loop, 200);
    ASSERT_TRUE(channels_are(&f->srv[0], "tidings:*", ""));
    /* Still delivered after all that churn. */
    ASSERT_INT_EQ(sub_on(a, &s1, "u"), 0);
    redist_run_for(f->loop, 100);
    ASSERT_INT_EQ(redist_publish(&f->srv[0], "tidings:bus:u", "\x01\x01X\0\0\0\x05hi", 9), 1);
    REDIST_RUN_UNTIL(f->loop, s1.got[0] == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    ASSERT_MEM_STR(s1.body, s1.len, "hi");
    ASSERT_UINT_EQ(s1.tag, 5);
    sub_off(a, &s1);
}

static void
test_subscribe_lifecycle(void)
{
    struct fix f;
    int rc = fix_up(&f, 1, 1);

    if (rc == 0)
        lifecycle_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

/* A custom prefix names the channels. */
static void
prefix_body(struct fix *f)
{
    const char *url = f->srv[0].url;
    struct sub s = { 0 }, t = { 0 };
    bool ok;

    ASSERT_NOT_NULL(node_new(f, 0, &url, 1, "app1:"));
    ASSERT_NOT_NULL(node_new(f, 1, &url, 1, "app1:"));
    ASSERT_INT_EQ(sub_on(&f->node[0], &s, "t"), 0);
    ASSERT_INT_EQ(sub_on(&f->node[1], &t, "t"), 0);
    REDIST_RUN_UNTIL(f->loop, all_ready(f) && redist_numsub(&f->srv[0], "app1:bus:t") == 2, WAIT_MS,
                     ok);
    ASSERT_TRUE(ok);
    ASSERT_TRUE(channels_are(&f->srv[0], "*", "app1:bus:t"));
    ASSERT_INT_EQ(publish(&f->node[0], "t", "p", 1, 0, NULL), 1);
    REDIST_RUN_UNTIL(f->loop, t.got[1] == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
}

static void
test_prefix(void)
{
    struct fix f;
    int rc = fix_up(&f, 1, 0);

    if (rc == 0)
        prefix_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

#define SPREAD_TOPICS 16

/* Two instances: topics spread by hash, each SUBSCRIBEd on its own instance, all delivered. */
static void
two_instances_body(struct fix *f)
{
    struct sub s[SPREAD_TOPICS];
    char topic[SPREAD_TOPICS][16], ch[64];
    size_t on[2] = { 0, 0 };
    bool ok;

    memset(s, 0, sizeof(s));
    for (size_t i = 0; i < SPREAD_TOPICS; i++) {
        snprintf(topic[i], sizeof(topic[i]), "topic-%zu", i);
        on[gw_hash64(topic[i], strlen(topic[i])) % 2]++;
        ASSERT_INT_EQ(sub_on(&f->node[1], &s[i], topic[i]), 0);
        ASSERT_INT_EQ(sub_on(&f->node[2], &s[i], topic[i]), 0);
    }
    ASSERT_TRUE(on[0] > 0 && on[1] > 0);
    for (size_t i = 0; i < SPREAD_TOPICS; i++) {
        size_t home = gw_hash64(topic[i], strlen(topic[i])) % 2;

        snprintf(ch, sizeof(ch), "tidings:bus:%s", topic[i]);
        REDIST_RUN_UNTIL(f->loop, redist_numsub(&f->srv[home], ch) == 2, WAIT_MS, ok);
        ASSERT_TRUE(ok);
        ASSERT_INT_EQ(redist_numsub(&f->srv[1 - home], ch), 0);
    }
    {
        char list[1024];

        ASSERT_INT_EQ(redist_channels(&f->srv[0], "tidings:*", list, sizeof(list)), on[0]);
        ASSERT_INT_EQ(redist_channels(&f->srv[1], "tidings:*", list, sizeof(list)), on[1]);
    }
    for (size_t i = 0; i < SPREAD_TOPICS; i++)
        ASSERT_INT_EQ(publish(&f->node[0], topic[i], topic[i], strlen(topic[i]), 0, NULL), 0);
    REDIST_RUN_UNTIL(
        f->loop, f->node[1].deliveries == SPREAD_TOPICS && f->node[2].deliveries == SPREAD_TOPICS,
        WAIT_MS, ok);
    ASSERT_TRUE(ok);
    redist_run_for(f->loop, 200);
    for (size_t i = 0; i < SPREAD_TOPICS; i++) {
        ASSERT_UINT_EQ(s[i].got[1], 1);
        ASSERT_UINT_EQ(s[i].got[2], 1);
        ASSERT_MEM_STR(s[i].body, s[i].len, topic[i]);
    }
    ASSERT_STR_EQ(fanout_redis_status(f->node[0].fo, &ok), "all 2 redis instances ready");
    ASSERT_TRUE(ok);
}

static void
test_two_instances(void)
{
    struct fix f;
    int rc = fix_up(&f, 2, 3);

    if (rc == 0)
        two_instances_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

static bool
contains(const char *s, const char *needle)
{
    return strstr(s, needle) != NULL;
}

static bool
node_is(const struct node *n, enum fanout_redis_state st)
{
    return last_state(n) == st;
}

/* Publishes one message on a every 20 ms for `ms`; returns how many. */
static size_t
publish_for(struct fix *f, struct node *a, int ms)
{
    uint64_t end = gw_now_ms() + (uint64_t)ms;
    size_t n = 0;

    while (gw_now_ms() < end) {
        publish(a, "t", "tick", 4, 0, NULL);
        n++;
        redist_run_for(f->loop, 20);
    }
    return n;
}

/* SIGKILL of Redis while publishing: local delivery goes on, then everything recovers. */
static void
restart_body(struct fix *f)
{
    struct node *a = &f->node[0], *b = &f->node[1];
    struct sub la = { 0 }, rb = { 0 };
    size_t sent = 0;
    char want[64];
    bool ok;

    ASSERT_INT_EQ(sub_on(a, &la, "t"), 0);
    ASSERT_INT_EQ(sub_on(b, &rb, "t"), 0);
    REDIST_RUN_UNTIL(f->loop, redist_numsub(&f->srv[0], "tidings:bus:t") == 2, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    sent += publish_for(f, a, 100);
    REDIST_RUN_UNTIL(f->loop, rb.got[1] == sent, WAIT_MS, ok);
    ASSERT_TRUE(ok);

    redist_kill(&f->srv[0]);
    sent += publish_for(f, a, 600);
    ASSERT_UINT_EQ(la.got[0], sent); /* every publish reached the local subscriber */
    ASSERT_TRUE(node_is(a, FANOUT_REDIS_RETRYING));
    ASSERT_TRUE(node_is(b, FANOUT_REDIS_RETRYING));
    snprintf(want, sizeof(want), "redis 127.0.0.1:%d: ", f->srv[0].port);
    ASSERT_TRUE(strncmp(last_detail(a), want, strlen(want)) == 0);
    ASSERT_TRUE(stats(a).dropped > 0);
    fanout_redis_status(a->fo, &ok);
    ASSERT_TRUE(!ok);
    ASSERT_TRUE(a->n_st <= 6); /* READY, then a few distinct reasons, not one per retry */

    ASSERT_INT_EQ(redist_restart(&f->srv[0]), 0);
    REDIST_RUN_UNTIL(f->loop, all_ready(f), 10000, ok);
    ASSERT_TRUE(ok);
    REDIST_RUN_UNTIL(f->loop, redist_numsub(&f->srv[0], "tidings:bus:t") == 2, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    ASSERT_TRUE(channels_are(&f->srv[0], "tidings:*", "tidings:bus:t"));
    ASSERT_TRUE(stats(a).reconnects >= 2);
    {
        size_t before = rb.got[1];

        ASSERT_INT_EQ(publish(a, "t", "after", 5, 0, NULL), 1);
        REDIST_RUN_UNTIL(f->loop, rb.got[1] == before + 1, WAIT_MS, ok);
        ASSERT_TRUE(ok);
        ASSERT_MEM_STR(rb.body, rb.len, "after");
        sent++;
    }
    ASSERT_UINT_EQ(la.got[0], sent);
    ASSERT_TRUE(rb.got[1] <= sent);
}

static void
test_redis_restart(void)
{
    struct fix f;
    int rc = fix_up(&f, 1, 2);

    if (rc == 0)
        restart_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

/* A frozen Redis (SIGSTOP: TCP still accepted, nothing answered) is noticed by the health
 * PING; local delivery goes on; after SIGCONT everything recovers. */
static void
stalled_body(struct fix *f)
{
    struct node *a = &f->node[0], *b = &f->node[1];
    struct sub la = { 0 }, rb = { 0 };
    bool ok;

    ASSERT_INT_EQ(sub_on(a, &la, "t"), 0);
    ASSERT_INT_EQ(sub_on(b, &rb, "t"), 0);
    REDIST_RUN_UNTIL(f->loop, redist_numsub(&f->srv[0], "tidings:bus:t") == 2, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    redist_pause(&f->srv[0], true);
    REDIST_RUN_UNTIL(f->loop, node_is(a, FANOUT_REDIS_RETRYING), 15000, ok);
    ASSERT_TRUE(ok);
    ASSERT_TRUE(contains(last_detail(a), "no reply to PING"));
    ASSERT_INT_EQ(publish(a, "t", "local", 5, 0, NULL), 1);
    ASSERT_UINT_EQ(la.got[0], 1);
    redist_pause(&f->srv[0], false);
    REDIST_RUN_UNTIL(f->loop, all_ready(f) && redist_numsub(&f->srv[0], "tidings:bus:t") == 2,
                     15000, ok);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(publish(a, "t", "again", 5, 0, NULL), 1);
    REDIST_RUN_UNTIL(f->loop, rb.got[1] == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    ASSERT_MEM_STR(rb.body, rb.len, "again");
}

static void
test_redis_stalled(void)
{
    struct fix f;
    int rc = fix_up(&f, 1, 2);

    if (rc == 0)
        stalled_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

/* A fake server on the test's loop: accepts, then closes at once or stays silent. */
struct fake {
    int fd;             /* listening socket */
    int port;           /* its port */
    bool slam;          /* close each accepted connection at once (else keep it mute) */
    int held[32];       /* accepted connections kept open */
    size_t n_held;      /* entries in held */
    size_t accepted;    /* connections accepted */
    struct gw_watch *w; /* watch on fd */
};

static void
fake_accept(void *ud, int fd, unsigned events)
{
    struct fake *fk = ud;
    int c = accept(fd, NULL, NULL);

    (void)events;
    if (c < 0)
        return;
    fk->accepted++;
    if (fk->slam || fk->n_held == sizeof(fk->held) / sizeof(fk->held[0]))
        close(c);
    else
        fk->held[fk->n_held++] = c;
}

static int
fake_start(struct fake *fk, struct gw_loop *loop, bool slam)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);

    memset(fk, 0, sizeof(*fk));
    fk->slam = slam;
    fk->fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fk->fd < 0 || bind(fk->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(fk->fd, 16) != 0 || getsockname(fk->fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    fk->port = ntohs(a.sin_port);
    fk->w = gw_watch_add(loop, fk->fd, GW_LOOP_READ, fake_accept, fk);
    return 0;
}

static void
fake_stop(struct fake *fk, struct gw_loop *loop)
{
    gw_watch_del(loop, fk->w);
    for (size_t i = 0; i < fk->n_held; i++)
        close(fk->held[i]);
    if (fk->fd >= 0)
        close(fk->fd);
}

/* Servers that accept and hang up, or accept and never answer: RETRYING, no crash. */
static void
bad_servers_body(struct fix *f, struct fake *slam, struct fake *mute)
{
    char u0[64], u1[64], want[96];
    const char *u;
    bool ok;

    snprintf(u0, sizeof(u0), "redis://127.0.0.1:%d", slam->port);
    snprintf(u1, sizeof(u1), "redis://127.0.0.1:%d", mute->port);
    u = u0;
    ASSERT_NOT_NULL(node_new(f, 0, &u, 1, NULL));
    u = u1;
    ASSERT_NOT_NULL(node_new(f, 1, &u, 1, NULL));
    REDIST_RUN_UNTIL(f->loop, node_is(&f->node[0], FANOUT_REDIS_RETRYING), WAIT_MS, ok);
    ASSERT_TRUE(ok);
    snprintf(want, sizeof(want), "redis 127.0.0.1:%d: ", slam->port);
    ASSERT_TRUE(strncmp(last_detail(&f->node[0]), want, strlen(want)) == 0);
    /* The mute one stays CONNECTING until the 5 s handshake timeout. */
    ASSERT_TRUE(node_is(&f->node[1], FANOUT_REDIS_CONNECTING));
    REDIST_RUN_UNTIL(f->loop, node_is(&f->node[1], FANOUT_REDIS_RETRYING), 8000, ok);
    ASSERT_TRUE(ok);
    snprintf(want, sizeof(want), "redis 127.0.0.1:%d: handshake timeout", mute->port);
    ASSERT_STR_EQ(last_detail(&f->node[1]), want);
    ASSERT_UINT_EQ(f->node[1].n_st, 2);
    ASSERT_TRUE(mute->accepted >= 2);
    /* The slammed one kept retrying (backoff) without a report per attempt. */
    ASSERT_TRUE(slam->accepted >= 8);
    ASSERT_TRUE(f->node[0].n_st <= 3);
}

static void
test_bad_servers(void)
{
    struct fix f;
    struct fake slam, mute;
    int rc;

    memset(&f, 0, sizeof(f));
    memset(&mute, 0, sizeof(mute));
    mute.fd = -1;
    f.loop = loop_poll_new();
    rc = fake_start(&slam, f.loop, true);
    if (rc == 0)
        rc = fake_start(&mute, f.loop, false);
    if (rc == 0)
        bad_servers_body(&f, &slam, &mute);
    for (size_t i = 0; i < f.n_node; i++)
        fanout_free(f.node[i].fo);
    fake_stop(&slam, f.loop);
    fake_stop(&mute, f.loop);
    loop_poll_free(f.loop);
    ASSERT_INT_EQ(rc, 0);
}

/* Redis absent at fanout_new: CONNECTING, RETRYING (once), later READY; no blocking. */
static void
down_at_start_body(struct fix *f)
{
    struct node *a = &f->node[0];
    struct sub s = { 0 }, t = { 0 };
    const char *url;
    char url_buf[64], want[96];
    int port = redist_free_port();
    bool ok, ready = true;

    snprintf(url_buf, sizeof(url_buf), "redis://127.0.0.1:%d", port);
    url = url_buf;
    ASSERT_NOT_NULL(node_new(f, 0, &url, 1, NULL));
    ASSERT_UINT_EQ(a->n_st, 0); /* fanout_new never calls back */
    ASSERT_INT_EQ(sub_on(a, &s, "t"), 0);
    redist_run_for(f->loop, 700); /* several retries: 100, 200, 400 ms */
    ASSERT_UINT_EQ(a->n_st, 2);
    ASSERT_INT_EQ(a->st[0], FANOUT_REDIS_CONNECTING);
    ASSERT_INT_EQ(a->st[1], FANOUT_REDIS_RETRYING);
    snprintf(want, sizeof(want), "redis 127.0.0.1:%d: Connection refused", port);
    ASSERT_STR_EQ(a->detail[1], want);
    ASSERT_STR_EQ(fanout_redis_status(a->fo, &ready), want);
    ASSERT_TRUE(!ready);
    ASSERT_INT_EQ(publish(a, "t", "local", 5, 0, NULL), 1); /* local delivery works */
    ASSERT_UINT_EQ(stats(a).dropped, 1);

    ASSERT_INT_EQ(redist_start(&f->srv[0], port, NULL), 0);
    f->n_srv = 1;
    REDIST_RUN_UNTIL(f->loop, node_is(a, FANOUT_REDIS_READY), 8000, ok);
    ASSERT_TRUE(ok);
    ASSERT_UINT_EQ(a->n_st, 3);
    snprintf(want, sizeof(want), "redis 127.0.0.1:%d ready", port);
    ASSERT_STR_EQ(a->detail[2], want);
    ASSERT_STR_EQ(fanout_redis_status(a->fo, &ready), want);
    ASSERT_TRUE(ready);
    /* The subscription made while Redis was away is in place now. */
    REDIST_RUN_UNTIL(f->loop, redist_numsub(&f->srv[0], "tidings:bus:t") == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    ASSERT_NOT_NULL(node_new(f, 1, &url, 1, NULL));
    ASSERT_INT_EQ(sub_on(&f->node[1], &t, "t"), 0);
    REDIST_RUN_UNTIL(f->loop, node_is(&f->node[1], FANOUT_REDIS_READY), WAIT_MS, ok);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(publish(&f->node[1], "t", "hello", 5, 0, NULL), 1);
    REDIST_RUN_UNTIL(f->loop, s.got[0] == 2, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    ASSERT_MEM_STR(s.body, s.len, "hello");
    /* The exact sequence of the second node: CONNECTING, READY. */
    ASSERT_UINT_EQ(f->node[1].n_st, 2);
    ASSERT_INT_EQ(f->node[1].st[0], FANOUT_REDIS_CONNECTING);
    ASSERT_INT_EQ(f->node[1].st[1], FANOUT_REDIS_READY);
}

static void
test_down_at_start(void)
{
    struct fix f;

    memset(&f, 0, sizeof(f));
    f.loop = loop_poll_new();
    down_at_start_body(&f);
    fix_down(&f);
}

/* AUTH with the URL's password; a wrong or missing one retries with a clear detail. */
static void
auth_body(struct fix *f)
{
    struct redist *srv = &f->srv[0];
    char good[160], acl[160], wrong[160], none[160];
    const char *u;
    struct sub s = { 0 }, t = { 0 };
    bool ok;

    snprintf(good, sizeof(good), "%s", srv->url);
    snprintf(acl, sizeof(acl), "redis://default:s3cr%%40t@127.0.0.1:%d", srv->port);
    snprintf(wrong, sizeof(wrong), "redis://:nope@127.0.0.1:%d", srv->port);
    snprintf(none, sizeof(none), "redis://127.0.0.1:%d", srv->port);
    u = wrong;
    ASSERT_NOT_NULL(node_new(f, 1, &u, 1, NULL));
    u = none;
    ASSERT_NOT_NULL(node_new(f, 2, &u, 1, NULL));
    u = good;
    ASSERT_NOT_NULL(node_new(f, 0, &u, 1, NULL));
    redist_run_for(f->loop, 1600); /* retries at 100, 200, 400, 800 ms */
    ASSERT_TRUE(node_is(&f->node[0], FANOUT_REDIS_READY));
    ASSERT_UINT_EQ(f->node[1].n_st, 2);
    ASSERT_INT_EQ(f->node[1].st[1], FANOUT_REDIS_RETRYING);
    ASSERT_TRUE(contains(f->node[1].detail[1], "AUTH failed: WRONGPASS"));
    ASSERT_TRUE(!contains(f->node[1].detail[1], "nope"));
    ASSERT_UINT_EQ(f->node[2].n_st, 2);
    ASSERT_INT_EQ(f->node[2].st[1], FANOUT_REDIS_RETRYING);
    ASSERT_TRUE(contains(f->node[2].detail[1], "PING failed: NOAUTH"));
    /* Percent-escaped password with an ACL user name. */
    fanout_free(f->node[1].fo);
    u = acl;
    ASSERT_NOT_NULL(node_new(f, 1, &u, 1, NULL));
    ASSERT_INT_EQ(sub_on(&f->node[1], &t, "t"), 0);
    ASSERT_INT_EQ(sub_on(&f->node[0], &s, "t"), 0);
    REDIST_RUN_UNTIL(f->loop,
                     node_is(&f->node[1], FANOUT_REDIS_READY) &&
                         redist_numsub(srv, "tidings:bus:t") == 2,
                     WAIT_MS, ok);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(publish(&f->node[0], "t", "secret", 6, 0, NULL), 1);
    REDIST_RUN_UNTIL(f->loop, t.got[1] == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
}

static void
test_auth(void)
{
    struct fix f;
    int rc;

    memset(&f, 0, sizeof(f));
    f.loop = loop_poll_new();
    rc = redist_start(&f.srv[0], 0, "s3cr@t");
    if (rc == 0) {
        f.n_srv = 1;
        /* The URL of redist would carry '@' unescaped: rebuild it escaped. */
        snprintf(f.srv[0].url, sizeof(f.srv[0].url), "redis://:s3cr%%40t@127.0.0.1:%d",
                 f.srv[0].port);
        auth_body(&f);
    }
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

/* SELECT of the URL's db; an out-of-range db is a clear failure. */
static void
select_body(struct fix *f)
{
    char good[192], bad[192];
    const char *u;
    bool ok;

    snprintf(good, sizeof(good), "%s/3", f->srv[0].url);
    snprintf(bad, sizeof(bad), "%s/999", f->srv[0].url);
    u = good;
    ASSERT_NOT_NULL(node_new(f, 0, &u, 1, NULL));
    u = bad;
    ASSERT_NOT_NULL(node_new(f, 1, &u, 1, NULL));
    REDIST_RUN_UNTIL(f->loop,
                     node_is(&f->node[0], FANOUT_REDIS_READY) &&
                         node_is(&f->node[1], FANOUT_REDIS_RETRYING),
                     WAIT_MS, ok);
    ASSERT_TRUE(ok);
    ASSERT_TRUE(contains(last_detail(&f->node[1]), "SELECT failed: ERR DB index"));
}

static void
test_select_db(void)
{
    struct fix f;
    int rc = fix_up(&f, 1, 0);

    if (rc == 0)
        select_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

/* fanout_free: queued publishes still go out, and no callback runs afterwards. */
static void
free_body(struct fix *f)
{
    struct node *a = &f->node[0], *b = &f->node[1];
    struct sub s = { 0 };
    const char *url = f->srv[0].url;
    const char *dead;
    char dead_buf[64];
    size_t calls;
    bool ok;

    ASSERT_INT_EQ(sub_on(b, &s, "t"), 0);
    REDIST_RUN_UNTIL(f->loop, redist_numsub(&f->srv[0], "tidings:bus:t") == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    for (int i = 0; i < 10; i++)
        publish(a, "t", "bye", 3, 0, NULL);
    fanout_free(a->fo); /* before any loop turn: the 10 PUBLISHes are only queued */
    a->fo = NULL;
    REDIST_RUN_UNTIL(f->loop, s.got[1] == 10, WAIT_MS, ok);
    ASSERT_TRUE(ok);

    /* Freed while connecting, and while retrying: silent afterwards. */
    ASSERT_NOT_NULL(node_new(f, 0, &url, 1, NULL));
    fanout_free(a->fo);
    a->fo = NULL;
    snprintf(dead_buf, sizeof(dead_buf), "redis://127.0.0.1:%d", redist_free_port());
    dead = dead_buf;
    ASSERT_NOT_NULL(node_new(f, 2, &dead, 1, NULL));
    redist_run_for(f->loop, 150);
    ASSERT_TRUE(node_is(&f->node[2], FANOUT_REDIS_RETRYING));
    fanout_free(f->node[2].fo);
    f->node[2].fo = NULL;
    calls = a->n_st + f->node[2].n_st;
    redist_run_for(f->loop, 400);
    ASSERT_UINT_EQ(a->n_st + f->node[2].n_st, calls);
    ASSERT_UINT_EQ(a->n_st, 0);
}

static void
test_free(void)
{
    struct fix f;
    int rc = fix_up(&f, 1, 2);

    if (rc == 0)
        free_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

/* Envelopes from other writers: a well-formed foreign one is delivered, garbage is not. */
static void
envelope_body(struct fix *f)
{
    struct node *a = &f->node[0];
    struct sub s = { 0 };
    /* v1, node "zz", tag 0x00000102, body "a\0b". */
    static const unsigned char good[] = { 1, 2, 'z', 'z', 0, 0, 1, 2, 'a', 0, 'b' };
    static const unsigned char own[] = { 1, 6, 'n', 'o', 'd', 'e', '-', 'a', 0, 0, 0, 0, 'x' };
    static const unsigned char short_node[] = { 1, 9, 'z', 'z' };
    bool ok;

    ASSERT_INT_EQ(sub_on(a, &s, "t"), 0);
    REDIST_RUN_UNTIL(f->loop, redist_numsub(&f->srv[0], "tidings:bus:t") == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(redist_publish(&f->srv[0], "tidings:bus:t", "garbage", 7), 1);
    ASSERT_INT_EQ(redist_publish(&f->srv[0], "tidings:bus:t", short_node, sizeof(short_node)), 1);
    ASSERT_INT_EQ(redist_publish(&f->srv[0], "tidings:bus:t", "", 0), 1);
    ASSERT_INT_EQ(redist_publish(&f->srv[0], "tidings:bus:t", own, sizeof(own)), 1);
    ASSERT_INT_EQ(redist_publish(&f->srv[0], "tidings:bus:t", good, sizeof(good)), 1);
    REDIST_RUN_UNTIL(f->loop, s.got[0] == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    redist_run_for(f->loop, 100);
    ASSERT_UINT_EQ(s.got[0], 1);
    ASSERT_UINT_EQ(s.len, 3);
    ASSERT_TRUE(memcmp(s.body, "a\0b", 3) == 0);
    ASSERT_UINT_EQ(s.tag, 0x102);
    ASSERT_UINT_EQ(stats(a).malformed, 3);
    ASSERT_UINT_EQ(stats(a).own, 1);
    ASSERT_UINT_EQ(stats(a).received, 1);
}

static void
test_foreign_envelopes(void)
{
    struct fix f;
    int rc = fix_up(&f, 1, 1);

    if (rc == 0)
        envelope_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

/* Configuration checks and the in-memory defaults (no server needed). */
static void
test_config(void)
{
    struct gw_loop *loop = loop_poll_new();
    struct node n = { 0 };
    const char *good[] = { "redis://127.0.0.1:1" };
    const char *bad[] = { "redis://127.0.0.1:1", "http://x" };
    struct fanout_config cfg = { .encode = encode_cb, .deliver = deliver_cb, .ud = &n };
    struct fanout *fo, *fo2;
    bool ready = false;
    struct fanout_redis_stats st;

    fo = fanout_new(&cfg);
    ASSERT_NOT_NULL(fo);
    ASSERT_STR_EQ(fanout_redis_status(fo, &ready), "not configured");
    ASSERT_TRUE(ready);
    ASSERT_TRUE(fanout__node_id_valid(fanout_node_id(fo)));
    fo2 = fanout_new(&cfg);
    ASSERT_TRUE(strcmp(fanout_node_id(fo), fanout_node_id(fo2)) != 0);
    fanout_redis_stats(fo, &st);
    ASSERT_UINT_EQ(st.published + st.dropped + st.received, 0);
    fanout_free(fo);
    fanout_free(fo2);

    cfg.redis = good;
    cfg.n_redis = 1;
    ASSERT_NULL(fanout_new(&cfg)); /* no loop */
    cfg.loop = loop;
    cfg.redis = bad;
    cfg.n_redis = 2;
    ASSERT_NULL(fanout_new(&cfg)); /* second URL malformed */
    cfg.n_redis = 1;
    cfg.node_id = "has space";
    ASSERT_NULL(fanout_new(&cfg));
    cfg.node_id = "n1";
    fo = fanout_new(&cfg);
    ASSERT_NOT_NULL(fo);
    ASSERT_STR_EQ(fanout_node_id(fo), "n1");
    fanout_redis_status(fo, &ready);
    ASSERT_TRUE(!ready);
    fanout_free(fo);
    loop_poll_free(loop);
}

int
main(void)
{
    /* TIDINGS_TEST_LOG=1 shows the module's log lines (state changes). */
    gw_log_setup(getenv("TIDINGS_TEST_LOG") ? GW_LOG_DEBUG : GW_LOG_ERROR, false);
    RUN(test_config);
    RUN(test_cross_node);
    RUN(test_topics_isolated);
    RUN(test_subscribe_lifecycle);
    RUN(test_prefix);
    RUN(test_two_instances);
    RUN(test_foreign_envelopes);
    RUN(test_down_at_start);
    RUN(test_redis_restart);
    RUN(test_redis_stalled);
    RUN(test_bad_servers);
    RUN(test_auth);
    RUN(test_select_db);
    RUN(test_free);
    return HARNESS_DONE();
}
