/*
 * test_fanout.c: unit tests of the fanout module (subscription index, publishing,
 * encode-once messages, frames and presence).
 *
 * Tests count callbacks and assert exact totals. Subscribers are `struct subscriber`
 * records passed as sub_ud; the deliver callback counts per subscriber and can run a
 * per-test hook (unsubscribe, subscribe or publish from inside a delivery). The private
 * header is included to check that topic records are released. Run under ASan+UBSan to
 * catch use-after-free and leaks.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fanout/fanout.h"
#include "fanout/fanout_int.h"
#include "harness.h"

#define MANY 1000

struct ctx;

struct subscriber {
    int id;                 /* index in its test's array */
    struct fanout_sub *sub; /* handle, NULL once unsubscribed */
    size_t got;             /* deliveries received */
};

typedef void hook_fn(struct ctx *c, struct subscriber *s, struct fanout_msg *m);

struct ctx {
    struct fanout *fo;                     /* the fanout under test */
    size_t deliveries;                     /* deliver calls */
    unsigned encodes[FANOUT_VARIANTS];     /* encode calls per variant */
    unsigned null_variants;                /* bit v: encode returns NULL for v */
    hook_fn *hook;                         /* run on each delivery, may be NULL */
    struct subscriber *subs;               /* the test's subscribers, for hooks */
    size_t nsubs;                          /* entries in subs */
    int depth;                             /* nesting guard for re-entrant hooks */
    struct fanout_frame *queued[MANY + 1]; /* frames referenced by deliveries */
    size_t nqueued;                        /* entries in queued */
    char last_body[64];                    /* body seen by the last delivery */
};

static struct fanout_frame *
encode_cb(void *ud, const struct fanout_msg *m, unsigned variant)
{
    struct ctx *c = ud;
    struct fanout_frame *f;
    size_t len;
    const char *body = fanout_msg_body(m, &len);

    c->encodes[variant]++;
    if (c->null_variants & (1u << variant))
        return NULL;
    /* Frame bytes: "v<variant>:" then the body, after 10 bytes of headroom. */
    f = fanout_frame_new(10, len + 3);
    f->data[0] = 'v';
    f->data[1] = (unsigned char)('0' + variant);
    f->data[2] = ':';
    memcpy(f->data + 3, body, len);
    f->len = len + 3;
    return f;
}

static void
deliver_cb(void *ud, void *sub_ud, struct fanout_msg *m)
{
    struct ctx *c = ud;
    struct subscriber *s = sub_ud;
    size_t len;
    const char *body = fanout_msg_body(m, &len);

    c->deliveries++;
    s->got++;
    if (len < sizeof(c->last_body)) {
        memcpy(c->last_body, body, len);
        c->last_body[len] = '\0';
    }
    if (c->hook)
        c->hook(c, s, m);
}

static void
ctx_init(struct ctx *c, struct subscriber *subs, size_t n)
{
    struct fanout_config cfg = { .encode = encode_cb, .deliver = deliver_cb, .ud = c };

    memset(c, 0, sizeof(*c));
    c->fo = fanout_new(&cfg);
    c->subs = subs;
    c->nsubs = n;
    for (size_t i = 0; i < n; i++)
        subs[i] = (struct subscriber){ .id = (int)i };
}

/* Subscribes subs[from..to) to topic; returns how many subscribes failed. */
static int
sub_range(struct ctx *c, const char *topic, size_t topic_len, size_t from, size_t to)
{
    int failed = 0;

    for (size_t i = from; i < to; i++) {
        if (fanout_subscribe(c->fo, topic, topic_len, &c->subs[i], &c->subs[i].sub) != 0)
            failed++;
    }
    return failed;
}

static int
publish_str(struct ctx *c, const char *topic, const char *body, const void *exclude)
{
    struct fanout_msg *m = fanout_msg_new(c->fo, body, strlen(body), 7);
    int rc = fanout_publish(c->fo, topic, strlen(topic), m, exclude);

    fanout_msg_unref(m);
    return rc;
}

static void
unsub(struct ctx *c, struct subscriber *s)
{
    fanout_unsubscribe(c->fo, s->sub);
    s->sub = NULL;
}

static void
test_publish_three(void)
{
    struct subscriber subs[3];
    struct ctx c;

    ctx_init(&c, subs, 3);
    ASSERT_NOT_NULL(c.fo);
    ASSERT_INT_EQ(sub_range(&c, "room", 4, 0, 3), 0);
    ASSERT_INT_EQ(publish_str(&c, "room", "hello", NULL), 3);
    ASSERT_UINT_EQ(c.deliveries, 3);
    for (int i = 0; i < 3; i++)
        ASSERT_UINT_EQ(subs[i].got, 1);
    ASSERT_STR_EQ(c.last_body, "hello");
    fanout_free(c.fo);
}

static void
test_publish_exclude(void)
{
    struct subscriber subs[3];
    struct ctx c;

    ctx_init(&c, subs, 3);
    ASSERT_INT_EQ(sub_range(&c, "room", 4, 0, 3), 0);
    ASSERT_INT_EQ(publish_str(&c, "room", "x", &subs[1]), 2);
    ASSERT_UINT_EQ(c.deliveries, 2);
    ASSERT_UINT_EQ(subs[0].got, 1);
    ASSERT_UINT_EQ(subs[1].got, 0);
    ASSERT_UINT_EQ(subs[2].got, 1);
    /* Excluding a stranger excludes nobody. */
    ASSERT_INT_EQ(publish_str(&c, "room", "y", &c), 3);
    fanout_free(c.fo);
}

/* A NULL sub_ud is a valid subscriber: NULL as exclude_sub_ud must not exclude it. */
static void
count_null(void *ud, void *sub_ud, struct fanout_msg *m)
{
    size_t *n = ud;

    (void)m;
    *n += sub_ud == NULL;
}

static void
test_publish_null_subscriber(void)
{
    struct fanout_config cfg = { .encode = encode_cb, .deliver = count_null };
    struct fanout_sub *s = NULL;
    struct fanout_msg *m;
    struct fanout *fo;
    size_t n = 0;

    cfg.ud = &n;
    fo = fanout_new(&cfg);
    ASSERT_INT_EQ(fanout_subscribe(fo, "t", 1, NULL, &s), 0);
    m = fanout_msg_new(fo, "x", 1, 0);
    ASSERT_INT_EQ(fanout_publish(fo, "t", 1, m, NULL), 1);
    ASSERT_UINT_EQ(n, 1);
    fanout_msg_unref(m);
    fanout_free(fo);
}

static void
test_topics_isolated(void)
{
    static const struct {
        const char *bytes;
        size_t len;
    } topics[] = {
        { "a", 1 }, { "ab", 2 }, { "abc", 3 }, { "a\0b", 3 }, { "a\0c", 3 }, { "", 0 },
    };

    const size_t n = sizeof(topics) / sizeof(topics[0]);
    struct subscriber subs[6];
    struct ctx c;

    ctx_init(&c, subs, n);
    for (size_t i = 0; i < n; i++)
        ASSERT_INT_EQ(sub_range(&c, topics[i].bytes, topics[i].len, i, i + 1), 0);
    ASSERT_UINT_EQ(fanout_topic_count(c.fo), n);
    for (size_t i = 0; i < n; i++) {
        struct fanout_msg *m = fanout_msg_new(c.fo, "b", 1, 0);

        ASSERT_INT_EQ(fanout_publish(c.fo, topics[i].bytes, topics[i].len, m, NULL), 1);
        fanout_msg_unref(m);
        for (size_t j = 0; j < n; j++)
            ASSERT_UINT_EQ(subs[j].got, j <= i ? 1 : 0);
        ASSERT_UINT_EQ(fanout_subscriber_count(c.fo, topics[i].bytes, topics[i].len), 1);
    }
    ASSERT_INT_EQ(publish_str(&c, "abcd", "z", NULL), 0);
    ASSERT_INT_EQ(publish_str(&c, "b", "z", NULL), 0);
    ASSERT_UINT_EQ(c.deliveries, n);
    fanout_free(c.fo);
}

static void
test_duplicate_subscribe(void)
{
    struct subscriber subs[1];
    struct fanout_sub *again, *other = NULL;
    struct ctx c;

    ctx_init(&c, subs, 1);
    ASSERT_INT_EQ(sub_range(&c, "t", 1, 0, 1), 0);
    again = subs[0].sub;
    ASSERT_INT_EQ(fanout_subscribe(c.fo, "t", 1, &subs[0], &again), GW_EEXIST);
    ASSERT_NULL(again);
    ASSERT_UINT_EQ(fanout_subscription_count(c.fo), 1);
    /* The same subscriber on another topic is fine. */
    ASSERT_INT_EQ(fanout_subscribe(c.fo, "u", 1, &subs[0], &other), 0);
    ASSERT_NOT_NULL(other);
    ASSERT_UINT_EQ(fanout_subscription_count(c.fo), 2);
    ASSERT_INT_EQ(publish_str(&c, "t", "x", NULL), 1);
    /* After unsubscribing, the pair may be subscribed again. */
    unsub(&c, &subs[0]);
    ASSERT_INT_EQ(sub_range(&c, "t", 1, 0, 1), 0);
    ASSERT_INT_EQ(publish_str(&c, "t", "x", NULL), 1);
    ASSERT_UINT_EQ(subs[0].got, 2);
    fanout_free(c.fo);
}

static void
test_unsubscribe_then_publish(void)
{
    struct subscriber subs[3];
    struct ctx c;

    ctx_init(&c, subs, 3);
    ASSERT_INT_EQ(sub_range(&c, "room", 4, 0, 3), 0);
    unsub(&c, &subs[0]);
    ASSERT_INT_EQ(publish_str(&c, "room", "x", NULL), 2);
    ASSERT_UINT_EQ(subs[0].got, 0);
    ASSERT_UINT_EQ(subs[1].got, 1);
    ASSERT_UINT_EQ(subs[2].got, 1);
    unsub(&c, &subs[2]);
    unsub(&c, &subs[1]);
    fanout_unsubscribe(c.fo, NULL);
    ASSERT_INT_EQ(publish_str(&c, "room", "x", NULL), 0);
    ASSERT_UINT_EQ(c.deliveries, 2);
    ASSERT_UINT_EQ(fanout_topic_count(c.fo), 0);
    ASSERT_UINT_EQ(fanout_subscription_count(c.fo), 0);
    ASSERT_UINT_EQ(c.fo->topics.count, 0);
    fanout_free(c.fo);
}

/* Odd subscribers unsubscribe themselves when delivered. */
static void
hook_unsub_odd_self(struct ctx *c, struct subscriber *s, struct fanout_msg *m)
{
    (void)m;
    if (s->id % 2 == 1)
        unsub(c, s);
}

/* Even subscribers unsubscribe the next one, which has not been delivered yet. */
static void
hook_unsub_next(struct ctx *c, struct subscriber *s, struct fanout_msg *m)
{
    (void)m;
    if (s->id % 2 == 0 && (size_t)s->id + 1 < c->nsubs)
        unsub(c, &c->subs[s->id + 1]);
}

/* The first subscriber delivered unsubscribes everybody, itself included. */
static void
hook_unsub_all(struct ctx *c, struct subscriber *s, struct fanout_msg *m)
{
    (void)s;
    (void)m;
    for (size_t i = 0; i < c->nsubs; i++) {
        if (c->subs[i].sub)
            unsub(c, &c->subs[i]);
    }
}

static void
test_unsubscribe_in_deliver(void)
{
    static struct subscriber subs[MANY];
    struct ctx c;

    ctx_init(&c, subs, MANY);
    ASSERT_INT_EQ(sub_range(&c, "big", 3, 0, MANY), 0);
    c.hook = hook_unsub_odd_self;
    ASSERT_INT_EQ(publish_str(&c, "big", "1", NULL), MANY);
    ASSERT_UINT_EQ(fanout_subscriber_count(c.fo, "big", 3), MANY / 2);
    ASSERT_UINT_EQ(fanout_subscription_count(c.fo), MANY / 2);
    c.hook = NULL;
    ASSERT_INT_EQ(publish_str(&c, "big", "2", NULL), MANY / 2);
    for (size_t i = 0; i < MANY; i++)
        ASSERT_UINT_EQ(subs[i].got, i % 2 ? 1 : 2);
    ASSERT_UINT_EQ(c.deliveries, MANY + MANY / 2);
    fanout_free(c.fo);
}

static void
test_unsubscribe_other_in_deliver(void)
{
    static struct subscriber subs[MANY];
    struct ctx c;

    ctx_init(&c, subs, MANY);
    ASSERT_INT_EQ(sub_range(&c, "big", 3, 0, MANY), 0);
    c.hook = hook_unsub_next;
    ASSERT_INT_EQ(publish_str(&c, "big", "1", NULL), MANY / 2);
    for (size_t i = 0; i < MANY; i++)
        ASSERT_UINT_EQ(subs[i].got, i % 2 ? 0 : 1);
    ASSERT_UINT_EQ(fanout_subscriber_count(c.fo, "big", 3), MANY / 2);
    /* Now everybody goes during one publish, the topic record only after it. */
    c.hook = hook_unsub_all;
    ASSERT_INT_EQ(publish_str(&c, "big", "2", NULL), 1);
    ASSERT_UINT_EQ(fanout_topic_count(c.fo), 0);
    ASSERT_UINT_EQ(fanout_subscription_count(c.fo), 0);
    ASSERT_UINT_EQ(c.fo->topics.count, 0);
    ASSERT_UINT_EQ(c.deliveries, MANY / 2 + 1);
    fanout_free(c.fo);
}

/* A subscriber of "x" unsubscribes all subscribers of "y" (ids >= 10). */
static void
hook_unsub_other_topic(struct ctx *c, struct subscriber *s, struct fanout_msg *m)
{
    (void)m;
    if (s->id != 0)
        return;
    for (size_t i = 10; i < c->nsubs; i++)
        unsub(c, &c->subs[i]);
}

static void
test_unsubscribe_other_topic_in_deliver(void)
{
    struct subscriber subs[20];
    struct ctx c;

    ctx_init(&c, subs, 20);
    ASSERT_INT_EQ(sub_range(&c, "x", 1, 0, 10), 0);
    ASSERT_INT_EQ(sub_range(&c, "y", 1, 10, 20), 0);
    c.hook = hook_unsub_other_topic;
    ASSERT_INT_EQ(publish_str(&c, "x", "1", NULL), 10);
    ASSERT_UINT_EQ(fanout_topic_count(c.fo), 1);
    ASSERT_UINT_EQ(c.fo->topics.count, 1);
    ASSERT_INT_EQ(publish_str(&c, "y", "2", NULL), 0);
    ASSERT_UINT_EQ(c.deliveries, 10);
    fanout_free(c.fo);
}

/*
 * Once: subscriber 0 adds subscribers 10..29 to the same topic (the array must grow), and
 * subscriber 1 unsubscribes and subscribes itself again (a new slot, not delivered twice).
 */
static void
hook_subscribe_more(struct ctx *c, struct subscriber *s, struct fanout_msg *m)
{
    (void)m;
    if (c->depth > 0)
        return;
    if (s->id == 0) {
        ASSERT_INT_EQ(sub_range(c, "t", 1, 10, 30), 0);
    } else if (s->id == 1) {
        unsub(c, s);
        ASSERT_INT_EQ(sub_range(c, "t", 1, 1, 2), 0);
        c->depth = 1;
    }
}

static void
test_subscribe_in_deliver(void)
{
    struct subscriber subs[30];
    struct ctx c;

    ctx_init(&c, subs, 30);
    ASSERT_INT_EQ(sub_range(&c, "t", 1, 0, 10), 0);
    c.hook = hook_subscribe_more;
    ASSERT_INT_EQ(publish_str(&c, "t", "1", NULL), 10);
    ASSERT_UINT_EQ(subs[1].got, 1);
    for (size_t i = 10; i < 30; i++)
        ASSERT_UINT_EQ(subs[i].got, 0);
    ASSERT_UINT_EQ(fanout_subscriber_count(c.fo, "t", 1), 30);
    ASSERT_UINT_EQ(fanout_subscription_count(c.fo), 30);
    ASSERT_INT_EQ(publish_str(&c, "t", "2", NULL), 30);
    ASSERT_UINT_EQ(subs[1].got, 2);
    ASSERT_UINT_EQ(c.deliveries, 40);
    fanout_free(c.fo);
}

/* Subscribers of "a" (ids 0..2) publish to "b" (ids 3..4) on each delivery. */
static void
hook_publish_other(struct ctx *c, struct subscriber *s, struct fanout_msg *m)
{
    (void)m;
    if (s->id < 3)
        ASSERT_INT_EQ(publish_str(c, "b", "inner", NULL), 2);
}

/*
 * On "a" with 4 subscribers, subscriber 0 publishes to "a" again once; during that inner
 * publish, subscriber 3 unsubscribes itself (a tombstone the outer loop must skip).
 */
static void
hook_publish_same(struct ctx *c, struct subscriber *s, struct fanout_msg *m)
{
    if (s->id == 0 && c->depth == 0) {
        c->depth++;
        ASSERT_INT_EQ(fanout_publish(c->fo, "a", 1, m, NULL), 4);
        c->depth--;
    } else if (s->id == 3 && c->depth == 1) {
        unsub(c, s);
    }
}

static void
test_publish_in_deliver(void)
{
    struct subscriber subs[5];
    struct ctx c;

    ctx_init(&c, subs, 5);
    ASSERT_INT_EQ(sub_range(&c, "a", 1, 0, 3), 0);
    ASSERT_INT_EQ(sub_range(&c, "b", 1, 3, 5), 0);
    c.hook = hook_publish_other;
    ASSERT_INT_EQ(publish_str(&c, "a", "outer", NULL), 3);
    ASSERT_UINT_EQ(c.deliveries, 3 + 3 * 2);
    ASSERT_UINT_EQ(subs[3].got, 3);
    ASSERT_UINT_EQ(subs[4].got, 3);
    fanout_free(c.fo);

    ctx_init(&c, subs, 4);
    ASSERT_INT_EQ(sub_range(&c, "a", 1, 0, 4), 0);
    c.hook = hook_publish_same;
    ASSERT_INT_EQ(publish_str(&c, "a", "x", NULL), 3);
    ASSERT_UINT_EQ(c.deliveries, 7);
    ASSERT_UINT_EQ(subs[0].got, 2);
    ASSERT_UINT_EQ(subs[1].got, 2);
    ASSERT_UINT_EQ(subs[2].got, 2);
    ASSERT_UINT_EQ(subs[3].got, 1);
    ASSERT_UINT_EQ(fanout_subscriber_count(c.fo, "a", 1), 3);
    c.hook = NULL;
    ASSERT_INT_EQ(publish_str(&c, "a", "y", NULL), 3);
    fanout_free(c.fo);
}

/* Like a sink: asks for every variant and queues (refs) the frame of variant 0. */
static void
hook_queue_frames(struct ctx *c, struct subscriber *s, struct fanout_msg *m)
{
    struct fanout_frame *f = fanout_msg_frame(m, 0);

    (void)s;
    ASSERT_NOT_NULL(fanout_msg_frame(m, 1));
    ASSERT_NULL(fanout_msg_frame(m, 2));
    ASSERT_NULL(fanout_msg_frame(m, FANOUT_VARIANTS));
    ASSERT_NOT_NULL(f);
    c->queued[c->nqueued++] = fanout_frame_ref(f);
}

static void
test_lazy_encode(void)
{
    static struct subscriber subs[MANY];
    struct fanout_msg *m;
    struct ctx c;

    ctx_init(&c, subs, MANY);
    c.null_variants = 1u << 2;
    c.hook = hook_queue_frames;
    ASSERT_INT_EQ(sub_range(&c, "t", 1, 0, MANY), 0);
    m = fanout_msg_new(c.fo, "body", 4, 3);
    ASSERT_UINT_EQ(fanout_msg_tag(m), 3);
    ASSERT_UINT_EQ(c.encodes[0], 0);
    ASSERT_INT_EQ(fanout_publish(c.fo, "t", 1, m, NULL), MANY);
    ASSERT_UINT_EQ(c.encodes[0], 1);
    ASSERT_UINT_EQ(c.encodes[1], 1);
    ASSERT_UINT_EQ(c.encodes[2], 1);
    ASSERT_UINT_EQ(c.encodes[3], 0);
    ASSERT_UINT_EQ(c.nqueued, MANY);
    ASSERT_UINT_EQ(c.queued[0]->refs, MANY + 1);
    ASSERT_TRUE(c.queued[0] == c.queued[MANY - 1]);
    fanout_msg_unref(m);
    ASSERT_UINT_EQ(c.queued[0]->refs, MANY);
    ASSERT_MEM_STR(c.queued[0]->data, c.queued[0]->len, "v0:body");
    for (size_t i = 0; i < c.nqueued; i++)
        fanout_frame_unref(c.queued[i]);
    fanout_free(c.fo);
}

static void
test_frame_outlives_msg(void)
{
    struct subscriber subs[1];
    struct fanout_frame *f;
    struct fanout_msg *m;
    struct ctx c;
    size_t len;

    ctx_init(&c, subs, 0);
    m = fanout_msg_new(c.fo, "payload", 7, 1);
    ASSERT_MEM_STR(fanout_msg_body(m, &len), len, "payload");
    f = fanout_frame_ref(fanout_msg_frame(m, 3));
    ASSERT_NOT_NULL(f);
    ASSERT_UINT_EQ(f->refs, 2);
    ASSERT_TRUE(fanout_msg_frame(m, 3) == f);
    ASSERT_UINT_EQ(c.encodes[3], 1);
    fanout_msg_unref(m);
    ASSERT_UINT_EQ(f->refs, 1);
    ASSERT_MEM_STR(f->data, f->len, "v3:payload");
    fanout_frame_unref(f);
    /* An empty body is allowed. */
    m = fanout_msg_new(c.fo, NULL, 0, 0);
    ASSERT_NOT_NULL(m);
    fanout_msg_body(m, &len);
    ASSERT_UINT_EQ(len, 0);
    ASSERT_MEM_STR(fanout_msg_frame(m, 0)->data, fanout_msg_frame(m, 0)->len, "v0:");
    fanout_msg_ref(m);
    fanout_msg_unref(m);
    fanout_msg_unref(m);
    fanout_free(c.fo);
}

static void
test_frame_headroom(void)
{
    struct fanout_frame *f = fanout_frame_new(14, 100);

    ASSERT_UINT_EQ(f->refs, 1);
    ASSERT_UINT_EQ(f->headroom, 14);
    ASSERT_UINT_EQ(f->len, 0);
    ASSERT_INT_EQ(f->data - f->mem, 14);
    /* Every byte of headroom and capacity is writable (ASan checks the bounds). */
    memset(f->mem, 'h', 14);
    memset(f->data, 'd', 100);
    f->len = 100;
    ASSERT_TRUE(f->data[-1] == 'h' && f->data[99] == 'd');
    ASSERT_TRUE(fanout_frame_ref(f) == f);
    ASSERT_UINT_EQ(f->refs, 2);
    fanout_frame_unref(f);
    fanout_frame_unref(f);
    fanout_frame_unref(NULL);
    ASSERT_NULL(fanout_frame_ref(NULL));
    f = fanout_frame_new(0, 0);
    ASSERT_TRUE(f->data == f->mem);
    fanout_frame_unref(f);
}

static void
test_counts(void)
{
    struct subscriber subs[4];
    struct fanout_presence p = { .key = "k", .key_len = 1, .ref = "r", .ref_len = 1 };
    struct ctx c;

    ctx_init(&c, subs, 4);
    ASSERT_UINT_EQ(fanout_topic_count(c.fo), 0);
    ASSERT_INT_EQ(sub_range(&c, "a", 1, 0, 3), 0);
    ASSERT_INT_EQ(sub_range(&c, "b", 1, 0, 1), 0);
    ASSERT_INT_EQ(sub_range(&c, "c", 1, 3, 4), 0);
    ASSERT_UINT_EQ(fanout_topic_count(c.fo), 3);
    ASSERT_UINT_EQ(fanout_subscriber_count(c.fo, "a", 1), 3);
    ASSERT_UINT_EQ(fanout_subscriber_count(c.fo, "b", 1), 1);
    ASSERT_UINT_EQ(fanout_subscriber_count(c.fo, "z", 1), 0);
    ASSERT_UINT_EQ(fanout_subscription_count(c.fo), 5);
    /* A topic with presence only is not counted; the record lives until both go. */
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "c", 1, &subs[3], &p, NULL, NULL), 0);
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "p", 1, &subs[3], &p, NULL, NULL), 0);
    ASSERT_UINT_EQ(fanout_topic_count(c.fo), 3);
    ASSERT_UINT_EQ(c.fo->topics.count, 4);
    unsub(&c, &subs[3]);
    ASSERT_UINT_EQ(fanout_topic_count(c.fo), 2);
    ASSERT_UINT_EQ(c.fo->topics.count, 4);
    ASSERT_INT_EQ(fanout_presence_del(c.fo, "c", 1, &subs[3], NULL, NULL), 0);
    ASSERT_UINT_EQ(c.fo->topics.count, 3);
    ASSERT_INT_EQ(fanout_presence_del(c.fo, "p", 1, &subs[3], NULL, NULL), 0);
    ASSERT_UINT_EQ(c.fo->topics.count, 2);
    ASSERT_UINT_EQ(fanout_subscription_count(c.fo), 4);
    fanout_free(c.fo);
}

static void
test_many_topics(void)
{
    enum { N = 10000 };
    static struct subscriber subs[N];
    char topic[32];
    struct ctx c;

    ctx_init(&c, subs, N);
    for (size_t i = 0; i < N; i++) {
        int len = snprintf(topic, sizeof(topic), "topic:%zu", i);
        ASSERT_INT_EQ(sub_range(&c, topic, (size_t)len, i, i + 1), 0);
    }
    ASSERT_UINT_EQ(fanout_topic_count(c.fo), N);
    ASSERT_UINT_EQ(fanout_subscription_count(c.fo), N);
    ASSERT_TRUE(c.fo->topics.mask + 1 >= N);
    for (size_t i = 0; i < N; i += 2)
        unsub(&c, &subs[i]);
    ASSERT_UINT_EQ(fanout_topic_count(c.fo), N / 2);
    ASSERT_UINT_EQ(c.fo->topics.count, N / 2);
    for (size_t i = 0; i < N; i++) {
        snprintf(topic, sizeof(topic), "topic:%zu", i);
        ASSERT_INT_EQ(publish_str(&c, topic, "m", NULL), i % 2 ? 1 : 0);
    }
    for (size_t i = 0; i < N; i++)
        ASSERT_UINT_EQ(subs[i].got, i % 2 ? 1 : 0);
    ASSERT_UINT_EQ(c.deliveries, N / 2);
    fanout_free(c.fo);
}

/* What presence callbacks saw, as "key|ref|meta" lines. */
struct seen {
    unsigned calls;  /* callback calls */
    char text[4096]; /* entries, sorted, one per line */
};

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
seen_list(void *ud, const struct fanout_presence *entries, size_t n)
{
    struct seen *s = ud;
    char *lines[64], buf[64][128];
    size_t off = 0;

    s->calls++;
    for (size_t i = 0; i < n && i < 64; i++) {
        snprintf(buf[i], sizeof(buf[i]), "%.*s|%.*s|%.*s", (int)entries[i].key_len, entries[i].key,
                 (int)entries[i].ref_len, entries[i].ref, (int)entries[i].meta_len,
                 entries[i].meta);
        lines[i] = buf[i];
    }
    qsort(lines, n < 64 ? n : 64, sizeof(lines[0]), cmp_str);
    s->text[0] = '\0';
    for (size_t i = 0; i < n && i < 64; i++)
        off += (size_t)snprintf(s->text + off, sizeof(s->text) - off, "%s\n", lines[i]);
}

static void
seen_one(void *ud, const struct fanout_presence *p)
{
    seen_list(ud, p, 1);
}

static struct fanout_presence
pres(const char *key, const char *ref, const char *meta)
{
    return (struct fanout_presence){ .key = key,
                                     .key_len = strlen(key),
                                     .ref = ref,
                                     .ref_len = strlen(ref),
                                     .meta = meta,
                                     .meta_len = meta ? strlen(meta) : 0 };
}

static void
test_presence(void)
{
    struct fanout_presence p;
    struct seen s = { 0 };
    int owners[3];
    struct ctx c;

    ctx_init(&c, NULL, 0);
    p = pres("alice", "r1", "{\"a\":1}");
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "room", 4, &owners[0], &p, seen_one, &s), 0);
    p = pres("bob", "r2", NULL);
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "room", 4, &owners[1], &p, seen_one, &s), 0);
    p = pres("alice", "r3", "{}");
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "room", 4, &owners[2], &p, seen_one, &s), 0);
    ASSERT_UINT_EQ(s.calls, 0);
    fanout_presence_list(c.fo, "room", 4, seen_list, &s);
    ASSERT_UINT_EQ(s.calls, 1);
    ASSERT_STR_EQ(s.text, "alice|r1|{\"a\":1}\nalice|r3|{}\nbob|r2|\n");

    /* Update: prev_fn sees exactly the old entry. */
    p = pres("alice", "r4", "{\"a\":2}");
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "room", 4, &owners[0], &p, seen_one, &s), 0);
    ASSERT_UINT_EQ(s.calls, 2);
    ASSERT_STR_EQ(s.text, "alice|r1|{\"a\":1}\n");
    fanout_presence_list(c.fo, "room", 4, seen_list, &s);
    ASSERT_STR_EQ(s.text, "alice|r3|{}\nalice|r4|{\"a\":2}\nbob|r2|\n");

    /* Delete: fn sees the entry; a missing owner is GW_ENOTFOUND without a call. */
    ASSERT_INT_EQ(fanout_presence_del(c.fo, "room", 4, &owners[1], seen_one, &s), 0);
    ASSERT_UINT_EQ(s.calls, 4);
    ASSERT_STR_EQ(s.text, "bob|r2|\n");
    ASSERT_INT_EQ(fanout_presence_del(c.fo, "room", 4, &owners[1], seen_one, &s), GW_ENOTFOUND);
    ASSERT_INT_EQ(fanout_presence_del(c.fo, "nope", 4, &owners[0], seen_one, &s), GW_ENOTFOUND);
    ASSERT_INT_EQ(fanout_presence_del(c.fo, "roo", 3, &owners[0], seen_one, &s), GW_ENOTFOUND);
    ASSERT_UINT_EQ(s.calls, 4);
    fanout_presence_list(c.fo, "room", 4, seen_list, &s);
    ASSERT_STR_EQ(s.text, "alice|r3|{}\nalice|r4|{\"a\":2}\n");

    /* Other topics are separate; an unknown topic lists zero entries once. */
    p = pres("carol", "r5", "m");
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "room\0b", 6, &owners[0], &p, NULL, NULL), 0);
    fanout_presence_list(c.fo, "room\0b", 6, seen_list, &s);
    ASSERT_STR_EQ(s.text, "carol|r5|m\n");
    fanout_presence_list(c.fo, "empty", 5, seen_list, &s);
    ASSERT_UINT_EQ(s.calls, 7);
    ASSERT_STR_EQ(s.text, "");
    ASSERT_UINT_EQ(fanout_topic_count(c.fo), 0);
    fanout_free(c.fo);
}

/* Checks a binary entry seen by a delete callback: meta_len 3 and bytes "a\0b". */
static void
check_binary(void *ud, const struct fanout_presence *p)
{
    int *ok = ud;

    *ok = p->meta_len == 3 && memcmp(p->meta, "a\0b", 3) == 0 && p->meta[3] == '\0';
}

static void
test_presence_binary(void)
{
    struct fanout_presence p = {
        .key = "k", .key_len = 1, .ref = "r", .ref_len = 1, .meta = "a\0b", .meta_len = 3
    };
    int owner, ok = 0;
    struct ctx c;

    ctx_init(&c, NULL, 0);
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "t", 1, &owner, &p, check_binary, &ok), 0);
    ASSERT_INT_EQ(ok, 0);
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "t", 1, &owner, &p, check_binary, &ok), 0);
    ASSERT_INT_EQ(ok, 1);
    ok = 0;
    ASSERT_INT_EQ(fanout_presence_del(c.fo, "t", 1, &owner, check_binary, &ok), 0);
    ASSERT_INT_EQ(ok, 1);
    ASSERT_UINT_EQ(c.fo->topics.count, 0);
    fanout_free(c.fo);
}

struct count_list {
    size_t n;          /* entries of the last list */
    size_t with_r0;    /* entries whose ref starts with "u" (updated) */
    unsigned calls;    /* list calls */
    struct fanout *fo; /* for the nested list */
};

static void
count_entries(void *ud, const struct fanout_presence *entries, size_t n)
{
    struct count_list *cl = ud;

    cl->calls++;
    cl->n = n;
    cl->with_r0 = 0;
    for (size_t i = 0; i < n; i++)
        cl->with_r0 += entries[i].ref_len > 0 && entries[i].ref[0] == 'u';
}

static void
test_presence_many(void)
{
    enum { N = 3000 };

    static int owners[N];
    struct count_list cl = { 0 };
    struct fanout_presence p;
    struct ctx c;

    ctx_init(&c, NULL, 0);
    for (size_t i = 0; i < N; i++) {
        p = pres("key", "orig", "{}");
        ASSERT_INT_EQ(fanout_presence_set(c.fo, "t", 1, &owners[i], &p, NULL, NULL), 0);
    }
    for (size_t i = 0; i < N; i += 2) {
        p = pres("key", "upd", "{}");
        ASSERT_INT_EQ(fanout_presence_set(c.fo, "t", 1, &owners[i], &p, NULL, NULL), 0);
    }
    for (size_t i = 0; i < N; i += 3)
        ASSERT_INT_EQ(fanout_presence_del(c.fo, "t", 1, &owners[i], NULL, NULL), 0);
    fanout_presence_list(c.fo, "t", 1, count_entries, &cl);
    ASSERT_UINT_EQ(cl.calls, 1);
    ASSERT_UINT_EQ(cl.n, N - N / 3);
    /* Updated: even i not divisible by 3, i.e. 1000 of the 1500 even indexes. */
    ASSERT_UINT_EQ(cl.with_r0, N / 2 - N / 6);
    fanout_free(c.fo);
}

/* Lists "b" from inside the list of "a", then checks that "a"'s array is intact. */
static void
nested_list(void *ud, const struct fanout_presence *entries, size_t n)
{
    struct count_list *cl = ud;
    struct count_list inner = { 0 };

    fanout_presence_list(cl->fo, "b", 1, count_entries, &inner);
    cl->calls++;
    cl->n = inner.n;
    cl->with_r0 = n == 1 && entries[0].key_len == 1 && entries[0].key[0] == 'A';
}

/* prev_fn re-enters: it lists the topic, which already shows the new entry. */
static void
prev_lists(void *ud, const struct fanout_presence *p)
{
    struct count_list *cl = ud;

    (void)p;
    fanout_presence_list(cl->fo, "a", 1, count_entries, cl);
}

static void
test_presence_reentrant(void)
{
    struct count_list cl = { 0 };
    struct fanout_presence p;
    int owners[3];
    struct ctx c;

    ctx_init(&c, NULL, 0);
    cl.fo = c.fo;
    p = pres("A", "1", "");
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "a", 1, &owners[0], &p, NULL, NULL), 0);
    p = pres("B", "2", "");
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "b", 1, &owners[1], &p, NULL, NULL), 0);
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "b", 1, &owners[2], &p, NULL, NULL), 0);
    fanout_presence_list(c.fo, "a", 1, nested_list, &cl);
    ASSERT_UINT_EQ(cl.calls, 1);
    ASSERT_UINT_EQ(cl.n, 2);
    ASSERT_UINT_EQ(cl.with_r0, 1);
    p = pres("A", "upd", "");
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "a", 1, &owners[0], &p, prev_lists, &cl), 0);
    ASSERT_UINT_EQ(cl.calls, 2);
    ASSERT_UINT_EQ(cl.n, 1);
    ASSERT_UINT_EQ(cl.with_r0, 1);
    fanout_free(c.fo);
}

static void
test_free_with_live_state(void)
{
    struct subscriber subs[5];
    struct fanout_presence p = pres("k", "r", "meta");
    struct fanout_frame *f;
    struct fanout_msg *m;
    struct ctx c;

    ctx_init(&c, subs, 5);
    ASSERT_INT_EQ(sub_range(&c, "a", 1, 0, 5), 0);
    ASSERT_INT_EQ(sub_range(&c, "b", 1, 0, 2), 0);
    for (int i = 0; i < 5; i++)
        ASSERT_INT_EQ(fanout_presence_set(c.fo, "a", 1, &subs[i], &p, NULL, NULL), 0);
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "only-presence", 13, &subs[0], &p, NULL, NULL), 0);
    m = fanout_msg_new(c.fo, "late", 4, 0);
    f = fanout_msg_frame(m, 0);
    fanout_free(c.fo);
    fanout_free(NULL);
    /* The message outlives the fanout and can still encode a new variant. */
    ASSERT_MEM_STR(f->data, f->len, "v0:late");
    f = fanout_msg_frame(m, 1);
    ASSERT_NOT_NULL(f);
    ASSERT_MEM_STR(f->data, f->len, "v1:late");
    fanout_msg_unref(m);
}

static void
test_invalid_args(void)
{
    struct fanout_config cfg = { .encode = encode_cb, .deliver = NULL };
    struct fanout_presence p = { .key = NULL, .key_len = 3 };
    struct fanout_sub *s = NULL;
    struct subscriber subs[1];
    struct fanout_msg *m;
    struct ctx c;
    int owner;

    ASSERT_NULL(fanout_new(NULL));
    ASSERT_NULL(fanout_new(&cfg));
    cfg = (struct fanout_config){ .deliver = deliver_cb };
    ASSERT_NULL(fanout_new(&cfg));
    ctx_init(&c, subs, 1);
    ASSERT_NULL(fanout_msg_new(NULL, "x", 1, 0));
    ASSERT_NULL(fanout_msg_new(c.fo, NULL, 1, 0));
    m = fanout_msg_new(c.fo, "x", 1, 0);
    ASSERT_INT_EQ(fanout_subscribe(c.fo, "t", 1, &subs[0], NULL), GW_EINVAL);
    ASSERT_INT_EQ(fanout_subscribe(c.fo, NULL, 1, &subs[0], &s), GW_EINVAL);
    ASSERT_INT_EQ(fanout_subscribe(NULL, "t", 1, &subs[0], &s), GW_EINVAL);
    ASSERT_INT_EQ(fanout_publish(c.fo, "t", 1, NULL, NULL), GW_EINVAL);
    ASSERT_INT_EQ(fanout_publish(NULL, "t", 1, m, NULL), GW_EINVAL);
    ASSERT_INT_EQ(fanout_publish(c.fo, NULL, 1, m, NULL), GW_EINVAL);
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "t", 1, &owner, NULL, NULL, NULL), GW_EINVAL);
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "t", 1, &owner, &p, NULL, NULL), GW_EINVAL);
    ASSERT_INT_EQ(fanout_presence_set(c.fo, "t", 1, NULL, &p, NULL, NULL), GW_EINVAL);
    ASSERT_INT_EQ(fanout_presence_del(c.fo, "t", 1, NULL, NULL, NULL), GW_EINVAL);
    ASSERT_UINT_EQ(fanout_subscription_count(c.fo), 0);
    ASSERT_UINT_EQ(c.fo->topics.count, 0);
    ASSERT_UINT_EQ(c.deliveries, 0);
    fanout_msg_unref(m);
    fanout_msg_unref(NULL);
    fanout_free(c.fo);
}

int
main(void)
{
    RUN(test_publish_three);
    RUN(test_publish_exclude);
    RUN(test_publish_null_subscriber);
    RUN(test_topics_isolated);
    RUN(test_duplicate_subscribe);
    RUN(test_unsubscribe_then_publish);
    RUN(test_unsubscribe_in_deliver);
    RUN(test_unsubscribe_other_in_deliver);
    RUN(test_unsubscribe_other_topic_in_deliver);
    RUN(test_subscribe_in_deliver);
    RUN(test_publish_in_deliver);
    RUN(test_lazy_encode);
    RUN(test_frame_outlives_msg);
    RUN(test_frame_headroom);
    RUN(test_counts);
    RUN(test_many_topics);
    RUN(test_presence);
    RUN(test_presence_binary);
    RUN(test_presence_many);
    RUN(test_presence_reentrant);
    RUN(test_free_with_live_state);
    RUN(test_invalid_args);
    return HARNESS_DONE();
}
