/*
 * registry.c: one opaque blob per process in Redis, listed by any process (fanout.h,
 * "Registry").
 *
 * Everything lives on the first Redis instance: `<prefix>stats:<node>` holds a process's
 * blob with a PX TTL and the set `<prefix>stats` its node id. A put is one script (SET
 * with PX, SADD); a fetch is one script that takes at most FANOUT_REGISTRY_MAX ids of the
 * set, MGETs their blobs, SREMs the ids whose blob has expired and answers a flat array
 * node, blob, node, blob... of the live ones.
 *
 * A pending fetch is a struct fanout__regq owned by its reply callback, which hiredis
 * always calls (with NULL when the context goes away). fanout_free marks every pending
 * one dead first: its callback then only frees it.
 */
#include "fanout/fanout_int.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

struct fanout__regq {
    struct fanout__regq *next; /* in fo->regq */
    struct fanout *fo;         /* owner; NULL once dead */
    fanout_registry_fn *fn;    /* answer callback */
    void *ud;                  /* for fn */
};

/* KEYS[1] blob key, KEYS[2] set; ARGV: blob, ttl_ms, node. */
static const char lua_put[] = "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
                              "redis.call('SADD', KEYS[2], ARGV[3]) return 1";

/* KEYS[1] set; ARGV: blob key prefix, limit. Answers node, blob, node, blob... */
static const char lua_fetch[] = "local ids = redis.call('SRANDMEMBER', KEYS[1], tonumber(ARGV[2])) "
                                "if #ids == 0 then return {} end "
                                "local keys = {} "
                                "for i, id in ipairs(ids) do keys[i] = ARGV[1] .. id end "
                                "local vals = redis.call('MGET', unpack(keys)) "
                                "local out = {} "
                                "for i, id in ipairs(ids) do "
                                "if vals[i] then out[#out + 1] = id out[#out + 1] = vals[i] "
                                "else redis.call('SREM', KEYS[1], id) end end "
                                "return out";

static void
key_of(struct gw_buf *b, const struct fanout *fo, const char *suffix, size_t len)
{
    size_t plen;
    const char *prefix = fanout__redis_prefix(fo->redis, &plen);

    gw_buf_reset(b);
    gw_buf_append(b, prefix, plen);
    gw_buf_append_str(b, "stats");
    gw_buf_append(b, suffix, len);
}

int
fanout_registry_put(struct fanout *fo, const char *data, size_t len, uint32_t ttl_ms)
{
    redisAsyncContext *ac;
    struct gw_buf blob_key, set_key;
    char ttl[16];

    if (!fo || !data || len == 0 || ttl_ms == 0)
        return GW_EINVAL;
    if (!(ac = fanout__redis_cmd_first(fo->redis)))
        return 0;
    gw_buf_init(&blob_key);
    gw_buf_init(&set_key);
    key_of(&blob_key, fo, ":", 1);
    gw_buf_append_str(&blob_key, fo->node_id);
    key_of(&set_key, fo, "", 0);
    snprintf(ttl, sizeof(ttl), "%u", (unsigned)ttl_ms);
    redisAsyncCommand(ac, NULL, NULL, "EVAL %s 2 %b %b %b %s %s", lua_put, blob_key.data,
                      blob_key.len, set_key.data, set_key.len, data, len, ttl, fo->node_id);
    gw_buf_release(&blob_key);
    gw_buf_release(&set_key);
    return 0;
}

/* Unlinks q from its fanout's list. */
static void
unlink_q(struct fanout__regq *q)
{
    for (struct fanout__regq **pp = &q->fo->regq; *pp; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            return;
        }
    }
}

/* Converts a flat reply into entries; returns the count (0 when malformed). */
static size_t
entries_of(const redisReply *rep, struct fanout_registry_entry *e)
{
    size_t n = 0;

    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const redisReply *id = rep->element[i], *v = rep->element[i + 1];

        if (id->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return 0;
        e[n++] = (struct fanout_registry_entry){ id->str, id->len, v->str, v->len };
    }
    return n;
}

static void
on_fetch(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct fanout__regq *q = privdata;
    const redisReply *rep = reply;
    struct fanout_registry_entry *e = NULL;
    size_t n = 0;
    bool ok;

    (void)ac;
    if (!q->fo) {
        free(q);
        return;
    }
    unlink_q(q);
    ok = rep && rep->type == REDIS_REPLY_ARRAY;
    if (ok && rep->elements > 0) {
        e = gw_xcalloc(rep->elements / 2 + 1, sizeof(*e));
        n = entries_of(rep, e);
    }
    q->fn(q->ud, ok, e, n);
    free(e);
    free(q);
}

void
fanout_registry_fetch(struct fanout *fo, fanout_registry_fn *fn, void *ud)
{
    redisAsyncContext *ac;
    struct gw_buf set_key, prefix;
    struct fanout__regq *q;
    char limit[16];

    if (!fo || !fn)
        return;
    if (!fo->redis) {
        fn(ud, true, NULL, 0);
        return;
    }
    if (!(ac = fanout__redis_cmd_first(fo->redis))) {
        fn(ud, false, NULL, 0);
        return;
    }
    q = gw_xcalloc(1, sizeof(*q));
    *q = (struct fanout__regq){ fo->regq, fo, fn, ud };
    gw_buf_init(&set_key);
    gw_buf_init(&prefix);
    key_of(&set_key, fo, "", 0);
    key_of(&prefix, fo, ":", 1);
    snprintf(limit, sizeof(limit), "%u", (unsigned)FANOUT_REGISTRY_MAX);
    if (redisAsyncCommand(ac, on_fetch, q, "EVAL %s 1 %b %b %s", lua_fetch, set_key.data,
                          set_key.len, prefix.data, prefix.len, limit) == REDIS_OK) {
        fo->regq = q;
    } else {
        free(q);
        fn(ud, false, NULL, 0);
    }
    gw_buf_release(&set_key);
    gw_buf_release(&prefix);
}

void
fanout__registry_free_all(struct fanout *fo)
{
    while (fo->regq) {
        struct fanout__regq *q = fo->regq;

        fo->regq = q->next;
        q->next = NULL;
        q->fo = NULL;
    }
}
