/*
 * test_fanout_presence_redis.c: integration tests of cluster-wide presence (fanout in
 * Redis mode) against a real redis-server (redist.c) on loopback.
 *
 * Two or three fanouts ("processes", node ids node-a..node-c) share one poll() loop and
 * one server, with presence_timeout_s = 2. Lists are collected into a sorted, joined text
 * "key/ref/meta,..." so a whole answer is asserted at once; on_presence_gone calls are
 * counted per node with the same text. Waits are bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include <hiredis/hiredis.h>

#include "base/loop.h"
#include "fanout/fanout.h"
#include "harness.h"
#include "redist.h"

#define MAX_NODES 3
#define WAIT_MS   5000
#define TEXT_MAX  512

/* One list answer. */
struct answer {
    int calls;           /* times the callback ran */
    char text[TEXT_MAX]; /* sorted entries "key/ref/meta" joined by ',' */
};

struct node {
    struct fanout *fo;        /* the fanout, NULL when freed */
    bool ready;               /* last state was READY */
    int gone_calls;           /* on_presence_gone calls */
    size_t gone_entries;      /* entries reported gone */
    char gone_text[TEXT_MAX]; /* the entries of the last call, as in struct answer */
    char gone_topic[64];      /* the topic of the last call */
};

struct fix {
    struct gw_loop *loop;        /* the shared loop */
    struct redist srv;           /* the server */
    struct node node[MAX_NODES]; /* the "processes" */
};

static const char *const node_names[MAX_NODES] = { "node-a", "node-b", "node-c" };

static void
state_cb(void *ud, enum fanout_redis_state st, const char *detail)
{
    struct node *n = ud;

    (void)detail;
    n->ready = st == FANOUT_REDIS_READY;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Writes the sorted "key/ref/meta" texts of entries, joined by ',', into out. */
static void
entries_text(const struct fanout_presence *e, size_t n, char *out)
{
    char **items = gw_xcalloc(n + 1, sizeof(*items));
    size_t at = 0;

    for (size_t i = 0; i < n; i++) {
        items[i] = gw_xmalloc(e[i].key_len + e[i].ref_len + e[i].meta_len + 3);
        sprintf(items[i], "%.*s/%.*s/%.*s", (int)e[i].key_len, e[i].key, (int)e[i].ref_len,
                e[i].ref, (int)e[i].meta_len, e[i].meta);
    }
    qsort(items, n, sizeof(*items), cmp_str);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        at += (size_t)snprintf(out + at, TEXT_MAX - at, "%s%s", i ? "," : "", items[i]);
        if (at >= TEXT_MAX)
            at = TEXT_MAX - 1;
        free(items[i]);
    }
    free(items);
}

static void
gone_cb(void *ud, const void *topic, size_t topic_len, const struct fanout_presence *e, size_t n)
{
    struct node *nd = ud;

    nd->gone_calls++;
    nd->gone_entries += n;
    entries_text(e, n, nd->gone_text);
    snprintf(nd->gone_topic, sizeof(nd->gone_topic), "%.*s", (int)topic_len, (const char *)topic);
}

static void
answer_cb(void *ud, const struct fanout_presence *e, size_t n)
{
    struct answer *a = ud;

    a->calls++;
    entries_text(e, n, a->text);
}

static struct fanout *
node_new(struct fix *f, size_t i)
{
    struct node *n = &f->node[i];
    const char *urls[1] = { f->srv.url };
    struct fanout_config cfg = {
        .encode = redist_encode_none,
        .deliver = redist_deliver_none,
        .ud = n,
        .loop = f->loop,
        .redis = urls,
        .n_redis = 1,
        .node_id = node_names[i],
        .on_state = state_cb,
        .presence_timeout_s = 2,
        .on_presence_gone = gone_cb,
    };

    memset(n, 0, sizeof(*n));
    n->fo = fanout_new(&cfg);
    return n->fo;
}

static bool
all_ready(const struct fix *f)
{
    for (size_t i = 0; i < MAX_NODES; i++) {
        if (f->node[i].fo && !f->node[i].ready)
            return false;
    }
    return true;
}

static int
fix_up(struct fix *f, size_t n_node)
{
    bool ok;

    memset(f, 0, sizeof(*f));
    f->loop = loop_poll_new();
    if (redist_start(&f->srv, 0, NULL) < 0)
        return -1;
    for (size_t i = 0; i < n_node; i++) {
        if (!node_new(f, i))
            return -1;
    }
    REDIST_RUN_UNTIL(f->loop, all_ready(f), WAIT_MS, ok);
    return ok ? 0 : -1;
}

static void
fix_down(struct fix *f)
{
    for (size_t i = 0; i < MAX_NODES; i++) {
        fanout_free(f->node[i].fo);
        f->node[i].fo = NULL;
    }
    redist_stop(&f->srv);
    loop_poll_free(f->loop);
}

static int
set(struct node *n, const char *topic, const void *owner, const char *key, const char *ref,
    const char *meta)
{
    struct fanout_presence p = { key, strlen(key), ref, strlen(ref), meta, strlen(meta) };

    return fanout_presence_set(n->fo, topic, strlen(topic), owner, &p, NULL, NULL);
}

static int
del(struct node *n, const char *topic, const void *owner)
{
    return fanout_presence_del(n->fo, topic, strlen(topic), owner, NULL, NULL);
}

/* Lists `topic` on n and waits for the answer; returns its text ("?" on timeout). */
static const char *
list_wait(struct fix *f, struct node *n, const char *topic, struct answer *a)
{
    bool ok;

    memset(a, 0, sizeof(*a));
    fanout_presence_list(n->fo, topic, strlen(topic), answer_cb, a);
    REDIST_RUN_UNTIL(f->loop, a->calls > 0, WAIT_MS, ok);
    if (!ok)
        return "?";
    return a->text;
}

/* Lists on n until the answer is `want` (entries cross nodes through Redis, not at once). */
static bool
list_until(struct fix *f, struct node *n, const char *topic, const char *want)
{
    struct answer a;
    uint64_t deadline = gw_now_ms() + WAIT_MS;

    while (gw_now_ms() < deadline) {
        if (strcmp(list_wait(f, n, topic, &a), want) == 0 && a.calls == 1)
            return true;
        redist_run_for(f->loop, 20);
    }
    fprintf(stderr, "list: got \"%s\", want \"%s\"\n", a.text, want);
    return false;
}

/* Runs one integer-answering command on a fresh connection; -1 on error. */
static long long
redis_int(const struct fix *f, const char *fmt, const char *arg)
{
    redisContext *c = redisConnect("127.0.0.1", f->srv.port);
    redisReply *rep;
    long long v = -1;

    if (!c || c->err) {
        redisFree(c);
        return -1;
    }
    rep = redisCommand(c, fmt, arg);
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        v = rep->integer;
    freeReplyObject(rep);
    redisFree(c);
    return v;
}

/* ---- tests ---- */

static int o1, o2, o3, o4; /* owners */

/* Set on A is listed on B (and A); replace and del propagate; each entry appears once. */
static void
set_list_body(struct fix *f)
{
    struct node *a = &f->node[0], *b = &f->node[1];
    struct answer ans;

    ASSERT_INT_EQ(set(a, "p:0:room", &o1, "k1", "r1", "{\"x\":1}"), 0);
    ASSERT_INT_EQ(set(a, "p:0:room", &o2, "k2", "r2", "{}"), 0);
    ASSERT_INT_EQ(set(b, "p:0:room", &o3, "k3", "r3", "{}"), 0);
    ASSERT_INT_EQ(set(a, "p:0:other", &o1, "k9", "r9", "{}"), 0);
    ASSERT_TRUE(list_until(f, b, "p:0:room", "k1/r1/{\"x\":1},k2/r2/{},k3/r3/{}"));
    ASSERT_TRUE(list_until(f, a, "p:0:room", "k1/r1/{\"x\":1},k2/r2/{},k3/r3/{}"));
    ASSERT_TRUE(list_until(f, b, "p:0:other", "k9/r9/{}"));
    /* Asynchronous in cluster mode: no answer inside the call. */
    memset(&ans, 0, sizeof(ans));
    fanout_presence_list(b->fo, "p:0:room", 8, answer_cb, &ans);
    ASSERT_INT_EQ(ans.calls, 0);
    redist_run_for(f->loop, 100);
    ASSERT_INT_EQ(ans.calls, 1);
    /* What Redis holds: one field per entry, the node key with its TTL, the sets. */
    ASSERT_INT_EQ(redis_int(f, "HLEN %s", "tidings:presence:p:0:room"), 3);
    ASSERT_INT_EQ(redis_int(f, "HEXISTS tidings:presence:p:0:room %s", "node-a:1"), 1);
    ASSERT_TRUE(redis_int(f, "TTL %s", "tidings:node:node-a") > 0);
    ASSERT_TRUE(redis_int(f, "TTL %s", "tidings:node:node-a") <= 2);
    ASSERT_INT_EQ(redis_int(f, "SISMEMBER tidings:nodes %s", "node-b"), 1);
    ASSERT_INT_EQ(redis_int(f, "SCARD %s", "tidings:node_topics:node-a"), 2);
    /* Replace keeps the field, changes the value. */
    ASSERT_INT_EQ(set(a, "p:0:room", &o1, "k1", "r1b", "{}"), 0);
    ASSERT_TRUE(list_until(f, b, "p:0:room", "k1/r1b/{},k2/r2/{},k3/r3/{}"));
    ASSERT_INT_EQ(redis_int(f, "HLEN %s", "tidings:presence:p:0:room"), 3);
    /* Del on A. */
    ASSERT_INT_EQ(del(a, "p:0:room", &o1), 0);
    ASSERT_TRUE(list_until(f, b, "p:0:room", "k2/r2/{},k3/r3/{}"));
    ASSERT_INT_EQ(del(a, "p:0:other", &o1), 0);
    ASSERT_TRUE(list_until(f, b, "p:0:other", ""));
    ASSERT_INT_EQ(redis_int(f, "SCARD %s", "tidings:node_topics:node-a"), 1);
    ASSERT_INT_EQ(a->gone_calls + b->gone_calls, 0);
}

static void
test_set_list(void)
{
    struct fix f;
    int rc = fix_up(&f, 2);

    if (rc == 0)
        set_list_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

/* A crashes (freed without any cleanup): after the timeout exactly one of B and C reports
 * A's entries, per topic, once; lists no longer show them; B's own entry stays. */
static void
crash_body(struct fix *f)
{
    struct node *a = &f->node[0], *b = &f->node[1], *c = &f->node[2];
    uint64_t t0;
    bool ok;

    ASSERT_INT_EQ(set(a, "p:0:room", &o1, "k1", "r1", "{}"), 0);
    ASSERT_INT_EQ(set(a, "p:0:room", &o2, "k2", "r2", "{}"), 0);
    ASSERT_INT_EQ(set(a, "p:1:priv", &o3, "k3", "r3", "{}"), 0);
    ASSERT_INT_EQ(set(b, "p:0:room", &o4, "kb", "rb", "{}"), 0);
    ASSERT_TRUE(list_until(f, c, "p:0:room", "k1/r1/{},k2/r2/{},kb/rb/{}"));
    fanout_free(a->fo);
    a->fo = NULL;
    t0 = gw_now_ms();
    REDIST_RUN_UNTIL(f->loop, b->gone_entries + c->gone_entries == 3, 8000, ok);
    ASSERT_TRUE(ok);
    ASSERT_TRUE(gw_now_ms() - t0 >= 1000); /* not before the node key expired */
    redist_run_for(f->loop, 1500);         /* a second report would come now */
    ASSERT_INT_EQ(b->gone_calls + c->gone_calls, 2);
    ASSERT_UINT_EQ(b->gone_entries + c->gone_entries, 3);
    /* One node won the lock and reported both topics. */
    {
        struct node *w = b->gone_calls ? b : c;

        ASSERT_INT_EQ(w->gone_calls, 2);
    }
    ASSERT_TRUE(list_until(f, c, "p:0:room", "kb/rb/{}"));
    ASSERT_TRUE(list_until(f, b, "p:1:priv", ""));
    ASSERT_INT_EQ(redis_int(f, "SISMEMBER tidings:nodes %s", "node-a"), 0);
    ASSERT_INT_EQ(redis_int(f, "EXISTS %s", "tidings:node_topics:node-a"), 0);
    ASSERT_INT_EQ(redis_int(f, "HLEN %s", "tidings:presence:p:0:room"), 1);
    ASSERT_INT_EQ(redis_int(f, "SISMEMBER tidings:nodes %s", "node-b"), 1);
}

static void
test_crash(void)
{
    struct fix f;
    int rc = fix_up(&f, 3);

    if (rc == 0)
        crash_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

/* One report carries the entries of one topic. */
static void
crash_topics_body(struct fix *f)
{
    struct node *a = &f->node[0], *b = &f->node[1];
    bool ok;

    ASSERT_INT_EQ(set(a, "p:0:room", &o1, "k1", "r1", "{\"m\":true}"), 0);
    ASSERT_INT_EQ(set(a, "p:0:room", &o2, "k1", "r2", "{}"), 0);
    ASSERT_TRUE(list_until(f, b, "p:0:room", "k1/r1/{\"m\":true},k1/r2/{}"));
    fanout_free(a->fo);
    a->fo = NULL;
    REDIST_RUN_UNTIL(f->loop, b->gone_calls == 1, 8000, ok);
    ASSERT_TRUE(ok);
    ASSERT_STR_EQ(b->gone_topic, "p:0:room");
    ASSERT_STR_EQ(b->gone_text, "k1/r1/{\"m\":true},k1/r2/{}");
}

static void
test_crash_topics(void)
{
    struct fix f;
    int rc = fix_up(&f, 2);

    if (rc == 0)
        crash_topics_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

/* Redis down: lists answer at once with the local entries. Redis restarted empty: every
 * node writes its entries again. Entries deleted while down do not come back. */
static void
restart_body(struct fix *f)
{
    struct node *a = &f->node[0], *b = &f->node[1];
    struct answer ans;
    bool ok;

    ASSERT_INT_EQ(set(a, "p:0:room", &o1, "k1", "r1", "{}"), 0);
    ASSERT_INT_EQ(set(a, "p:0:room", &o2, "k2", "r2", "{}"), 0);
    ASSERT_INT_EQ(set(b, "p:0:room", &o3, "kb", "rb", "{}"), 0);
    ASSERT_TRUE(list_until(f, b, "p:0:room", "k1/r1/{},k2/r2/{},kb/rb/{}"));
    redist_kill(&f->srv);
    REDIST_RUN_UNTIL(f->loop, !a->ready && !b->ready, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    /* The cmd connection may notice the loss a turn after the sub one: a list sent just
     * then is answered when the connection drops. */
    ASSERT_STR_EQ(list_wait(f, a, "p:0:room", &ans), "k1/r1/{},k2/r2/{}");
    redist_run_for(f->loop, 300);
    memset(&ans, 0, sizeof(ans));
    fanout_presence_list(a->fo, "p:0:room", 8, answer_cb, &ans);
    ASSERT_INT_EQ(ans.calls, 1); /* instance down: at once */
    ASSERT_STR_EQ(ans.text, "k1/r1/{},k2/r2/{}");
    ASSERT_INT_EQ(del(a, "p:0:room", &o2), 0);
    ASSERT_INT_EQ(set(a, "p:0:room", &o4, "k4", "r4", "{}"), 0);
    ASSERT_INT_EQ(redist_restart(&f->srv), 0);
    REDIST_RUN_UNTIL(f->loop, all_ready(f), 15000, ok);
    ASSERT_TRUE(ok);
    ASSERT_TRUE(list_until(f, b, "p:0:room", "k1/r1/{},k4/r4/{},kb/rb/{}"));
    ASSERT_TRUE(list_until(f, a, "p:0:room", "k1/r1/{},k4/r4/{},kb/rb/{}"));
    ASSERT_INT_EQ(redis_int(f, "HLEN %s", "tidings:presence:p:0:room"), 3);
    ASSERT_INT_EQ(a->gone_calls + b->gone_calls, 0);
}

static void
test_restart(void)
{
    struct fix f;
    int rc = fix_up(&f, 2);

    if (rc == 0)
        restart_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

/* A cancelled list never answers; others with another ud still do; freeing the fanout
 * with a list pending answers nothing. */
static void
cancel_body(struct fix *f)
{
    struct node *a = &f->node[0], *b = &f->node[1];
    struct answer x = { 0 }, y = { 0 }, z = { 0 };
    bool ok;

    ASSERT_INT_EQ(set(a, "p:0:room", &o1, "k1", "r1", "{}"), 0);
    ASSERT_TRUE(list_until(f, b, "p:0:room", "k1/r1/{}"));
    fanout_presence_list(b->fo, "p:0:room", 8, answer_cb, &x);
    fanout_presence_list(b->fo, "p:0:room", 8, answer_cb, &y);
    fanout_presence_list(b->fo, "p:0:room", 8, answer_cb, &x);
    fanout_presence_cancel(b->fo, &x);
    fanout_presence_cancel(b->fo, &z); /* none pending: no-op */
    REDIST_RUN_UNTIL(f->loop, y.calls == 1, WAIT_MS, ok);
    ASSERT_TRUE(ok);
    redist_run_for(f->loop, 200);
    ASSERT_INT_EQ(x.calls, 0);
    ASSERT_INT_EQ(y.calls, 1);
    ASSERT_STR_EQ(y.text, "k1/r1/{}");
    fanout_presence_list(b->fo, "p:0:room", 8, answer_cb, &z);
    fanout_free(b->fo);
    b->fo = NULL;
    redist_run_for(f->loop, 200);
    ASSERT_INT_EQ(z.calls, 0);
}

static void
test_cancel(void)
{
    struct fix f;
    int rc = fix_up(&f, 2);

    if (rc == 0)
        cancel_body(&f);
    fix_down(&f);
    ASSERT_INT_EQ(rc, 0);
}

int
main(void)
{
    gw_log_setup(getenv("TIDINGS_TEST_LOG") ? GW_LOG_DEBUG : GW_LOG_ERROR, false);
    RUN(test_set_list);
    RUN(test_cancel);
    RUN(test_crash);
    RUN(test_crash_topics);
    RUN(test_restart);
    return HARNESS_DONE();
}
