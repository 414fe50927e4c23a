/*
 * fanout.c: the subscription index and publishing.
 *
 * Topics live in a hash table keyed by their bytes. Each topic record keeps a dense array
 * of (sub_ud, subscription) slots; a subscription stores its index there, so unsubscribe
 * is an O(1) swap-remove. A second table keyed by (topic record, sub_ud) makes the
 * duplicate check of subscribe O(1) too.
 *
 * Publishing is a tight loop over the slot array with no allocation. The deliver callback
 * may unsubscribe anything, subscribe, or publish again (to the same topic or another):
 * while a topic has a publish running (`publishing` > 0) a removed subscription only
 * clears its slot (a tombstone the loop skips) and the array keeps its order; the last
 * publish to finish compacts it. The loop bound is taken before it starts, so a
 * subscription added during a publish does not get the current message. A topic record is
 * freed when its last subscriber and its last presence entry are gone and no publish runs
 * on it. Freeing the fanout from inside a callback is not supported.
 *
 * Cluster mode: redis.c is told when a topic gets its first subscriber and loses its
 * last (SUBSCRIBE / UNSUBSCRIBE), every publish is also queued for Redis, and messages of
 * other nodes come back through fanout__deliver_local().
 */
#include "fanout/fanout.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fanout/fanout_int.h"

#define TOPIC_MIN_SLOTS 4 /* slots allocated for a topic's first subscriber */

/* The key of a topic lookup. */
struct topic_key {
    const void *bytes; /* topic bytes */
    size_t len;        /* bytes */
};

/* The key of a pair lookup. */
struct pair_key {
    const struct fanout__topic *topic; /* topic record */
    const void *sub_ud;                /* subscriber */
};

static bool
topic_match(const struct fanout__hnode *n, const void *key)
{
    const struct fanout__topic *t = (const struct fanout__topic *)n;
    const struct topic_key *k = key;

    return t->key_len == k->len && (k->len == 0 || memcmp(t->key, k->bytes, k->len) == 0);
}

static bool
pair_match(const struct fanout__hnode *n, const void *key)
{
    const struct fanout_sub *s = (const struct fanout_sub *)n;
    const struct pair_key *k = key;

    return s->topic == k->topic && s->sub_ud == k->sub_ud;
}

static uint64_t
topic_hash(const void *topic, size_t len)
{
    return fanout__mix64(gw_hash64(topic, len));
}

static uint64_t
pair_hash(const struct fanout__topic *t, const void *sub_ud)
{
    uint64_t a = (uint64_t)(uintptr_t)t, b = (uint64_t)(uintptr_t)sub_ud;

    return fanout__mix64(a * 0x9e3779b97f4a7c15ull ^ b);
}

static struct fanout__topic *
topic_find(const struct fanout *fo, const void *topic, size_t topic_len)
{
    struct topic_key k = { .bytes = topic, .len = topic_len };

    return (struct fanout__topic *)fanout__table_find(&fo->topics, topic_hash(topic, topic_len),
                                                      topic_match, &k);
}

struct fanout__topic *
fanout__topic_get(struct fanout *fo, const void *topic, size_t topic_len, bool create)
{
    struct fanout__topic *t = topic_find(fo, topic, topic_len);

    if (t || !create)
        return t;
    t = gw_xcalloc(1, sizeof(*t) + topic_len);
    t->node.hash = topic_hash(topic, topic_len);
    t->key_len = topic_len;
    if (topic_len > 0)
        memcpy(t->key, topic, topic_len);
    fanout__table_insert(&fo->topics, &t->node);
    return t;
}

static void
topic_free(struct fanout__topic *t)
{
    for (size_t i = 0; i < t->nslots; i++)
        free(t->slots[i].sub);
    free(t->slots);
    fanout__presence_clear(t);
    free(t);
}

/* Squeezes out the tombstones left by unsubscribes during a publish, keeping the order. */
static void
compact(struct fanout__topic *t)
{
    size_t w = 0;

    for (size_t r = 0; r < t->nslots; r++) {
        if (!t->slots[r].sub)
            continue;
        t->slots[w] = t->slots[r];
        t->slots[w].sub->idx = w;
        w++;
    }
    t->nslots = w;
    t->dead = 0;
}

void
fanout__topic_settle(struct fanout *fo, struct fanout__topic *t)
{
    if (t->publishing > 0)
        return;
    if (t->dead > 0)
        compact(t);
    if (t->nslots > 0 || t->presence.count > 0)
        return;
    fanout__table_remove(&fo->topics, &t->node);
    topic_free(t);
}

static bool
config_valid(const struct fanout_config *cfg)
{
    if (!cfg || !cfg->encode || !cfg->deliver)
        return false;
    if (cfg->node_id && !fanout__node_id_valid(cfg->node_id))
        return false;
    return cfg->n_redis == 0 || (cfg->loop && cfg->redis);
}

struct fanout *
fanout_new(const struct fanout_config *cfg)
{
    struct fanout *fo;

    if (!config_valid(cfg))
        return NULL;
    fo = gw_xcalloc(1, sizeof(*fo));
    fo->encode = cfg->encode;
    fo->deliver = cfg->deliver;
    fo->ud = cfg->ud;
    fo->loop = cfg->loop;
    fo->node_id = cfg->node_id ? gw_xstrdup(cfg->node_id) : fanout__node_id_new();
    if (cfg->n_redis > 0 && !(fo->redis = fanout__redis_new(fo, cfg))) {
        fanout_free(fo);
        return NULL;
    }
    return fo;
}

void
fanout_free(struct fanout *fo)
{
    if (!fo)
        return;
    /* Release the leases while the connections can still send the deletes. */
    fanout__lease_free_all(fo);
    fanout__registry_free_all(fo);
    fanout__ratelimit_free_all(fo);
    fanout__stream_free_all(fo);
    /* First: closing the connections must not find a half-freed index. */
    fanout__redis_free(fo->redis);
    for (size_t i = 0; fo->topics.slots && i <= fo->topics.mask; i++) {
        if (fo->topics.slots[i])
            topic_free((struct fanout__topic *)fo->topics.slots[i]);
    }
    fanout__table_release(&fo->topics);
    fanout__table_release(&fo->pairs);
    free(fo->scratch);
    free(fo->node_id);
    free(fo);
}

const char *
fanout_redis_status(const struct fanout *fo, bool *ready)
{
    if (!fo) {
        if (ready)
            *ready = false;
        return "no fanout";
    }
    return fanout__redis_status(fo->redis, ready);
}

const char *
fanout_node_id(const struct fanout *fo)
{
    return fo ? fo->node_id : NULL;
}

void
fanout_redis_stats(const struct fanout *fo, struct fanout_redis_stats *out)
{
    fanout__redis_stats(fo ? fo->redis : NULL, out);
}

static void
slot_append(struct fanout__topic *t, struct fanout_sub *s)
{
    if (t->nslots == t->cap) {
        t->cap = t->cap ? t->cap * 2 : TOPIC_MIN_SLOTS;
        t->slots = gw_xrealloc(t->slots, t->cap * sizeof(*t->slots));
    }
    s->idx = t->nslots;
    t->slots[t->nslots].sub_ud = s->sub_ud;
    t->slots[t->nslots].sub = s;
    t->nslots++;
}

int
fanout_subscribe(struct fanout *fo, const void *topic, size_t topic_len, void *sub_ud,
                 struct fanout_sub **out)
{
    struct fanout__topic *t;
    struct fanout_sub *s;
    struct pair_key k;
    uint64_t h;

    if (out)
        *out = NULL;
    if (!fo || !out || (!topic && topic_len > 0))
        return GW_EINVAL;
    t = fanout__topic_get(fo, topic, topic_len, true);
    k = (struct pair_key){ .topic = t, .sub_ud = sub_ud };
    h = pair_hash(t, sub_ud);
    if (fanout__table_find(&fo->pairs, h, pair_match, &k))
        return GW_EEXIST;
    s = gw_xcalloc(1, sizeof(*s));
    s->node.hash = h;
    s->topic = t;
    s->sub_ud = sub_ud;
    slot_append(t, s);
    fanout__table_insert(&fo->pairs, &s->node);
    fo->subs++;
    if (t->live++ == 0) {
        fo->topics_with_subs++;
        fanout__redis_topic_on(fo->redis, t->key, t->key_len);
    }
    *out = s;
    return 0;
}

void
fanout_unsubscribe(struct fanout *fo, struct fanout_sub *s)
{
    struct fanout__topic *t;

    if (!fo || !s)
        return;
    t = s->topic;
    fanout__table_remove(&fo->pairs, &s->node);
    fo->subs--;
    if (--t->live == 0) {
        fo->topics_with_subs--;
        fanout__redis_topic_off(fo->redis, t->key, t->key_len);
    }
    if (t->publishing > 0) {
        /* A publish loop is walking the array: leave a hole, never move slots. */
        t->slots[s->idx].sub = NULL;
        t->dead++;
    } else {
        t->slots[s->idx] = t->slots[--t->nslots];
        t->slots[s->idx].sub->idx = s->idx;
    }
    free(s);
    fanout__topic_settle(fo, t);
}

size_t
fanout__deliver_local(struct fanout *fo, const void *topic, size_t topic_len, struct fanout_msg *m,
                      const void *exclude)
{
    struct fanout__topic *t = topic_find(fo, topic, topic_len);
    size_t n, delivered = 0;

    if (!t)
        return 0;
    /* Our own reference: the sink may drop the caller's last one. */
    fanout_msg_ref(m);
    t->publishing++;
    n = t->nslots;
    for (size_t i = 0; i < n; i++) {
        /* Re-read t->slots each time: a subscribe in the callback may move the array. */
        struct fanout__slot slot = t->slots[i];

        if (!slot.sub || (exclude && slot.sub_ud == exclude))
            continue;
        fo->deliver(fo->ud, slot.sub_ud, m);
        delivered++;
    }
    t->publishing--;
    fanout__topic_settle(fo, t);
    fanout_msg_unref(m);
    return delivered;
}

int
fanout_publish(struct fanout *fo, const void *topic, size_t topic_len, struct fanout_msg *m,
               const void *exclude_sub_ud)
{
    size_t delivered;

    if (!fo || !m || (!topic && topic_len > 0))
        return GW_EINVAL;
    /* Queued first: only copies bytes, and never calls back. */
    fanout__redis_publish(fo->redis, topic, topic_len, m);
    delivered = fanout__deliver_local(fo, topic, topic_len, m, exclude_sub_ud);
    return delivered > INT_MAX ? INT_MAX : (int)delivered;
}

size_t
fanout_topic_count(const struct fanout *fo)
{
    return fo ? fo->topics_with_subs : 0;
}

size_t
fanout_subscriber_count(const struct fanout *fo, const void *topic, size_t topic_len)
{
    const struct fanout__topic *t;

    if (!fo || (!topic && topic_len > 0))
        return 0;
    t = topic_find(fo, topic, topic_len);
    return t ? t->live : 0;
}

size_t
fanout_subscription_count(const struct fanout *fo)
{
    return fo ? fo->subs : 0;
}

void
fanout_topics_foreach(const struct fanout *fo, fanout_topic_fn *fn, void *ud)
{
    for (size_t i = 0; fo && fo->topics.slots && i <= fo->topics.mask; i++) {
        const struct fanout__topic *t = (const struct fanout__topic *)fo->topics.slots[i];

        if (t && (t->live > 0 || t->presence.count > 0))
            fn(ud, t->key, t->key_len, t->live, t->presence.count);
    }
}
