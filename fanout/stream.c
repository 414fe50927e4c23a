/*
 * stream.c: bounded per-topic message storage in Redis Streams, for broadcast replay
 * (fanout.h, "Streams").
 *
 * The stream `<prefix>stream:<topic>` lives on the instance chosen by hashing the topic.
 * An add is one script: XADD with an approximate MAXLEN, XTRIM MINID ~ of the entries older
 * than max_age (computed from the Redis clock), PEXPIRE of the key so an idle topic's
 * stream disappears. A range is XRANGE <since>-0 + COUNT <limit>.
 *
 * A pending range is a struct fanout__stq owned by its reply callback, which hiredis
 * always calls (with NULL when the context goes away). Cancelling (by ud, or fanout_free)
 * marks it dead: its callback then only frees it.
 */
#include "fanout/fanout_int.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fanout__stq {
    struct fanout__stq *next; /* in fo->stq */
    struct fanout *fo;        /* owner; NULL once cancelled */
    fanout_stream_fn *fn;     /* answer callback */
    void *ud;                 /* for fn */
};

/* KEYS[1] stream; ARGV: body, maxlen, max_age_ms. */
static const char lua_add[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local age = tonumber(ARGV[3]) "
    "local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'b', ARGV[1]) "
    "if now > age then redis.call('XTRIM', KEYS[1], 'MINID', '~', "
    "string.format('%d', now - age)) end "
    "redis.call('PEXPIRE', KEYS[1], age) return id";

static void
key_of(struct gw_buf *b, const struct fanout *fo, const void *topic, size_t topic_len)
{
    size_t plen;
    const char *prefix = fanout__redis_prefix(fo->redis, &plen);

    gw_buf_init(b);
    gw_buf_append(b, prefix, plen);
    gw_buf_append_str(b, "stream:");
    gw_buf_append(b, topic, topic_len);
}

int
fanout_stream_add(struct fanout *fo, const void *topic, size_t topic_len, const void *body,
                  size_t len, size_t maxlen, uint64_t max_age_ms)
{
    redisAsyncContext *ac;
    struct gw_buf key;
    char smax[24], sage[24];

    if (!fo || !topic || !body || len == 0 || maxlen == 0 || max_age_ms == 0)
        return GW_EINVAL;
    if (!fo->redis || !(ac = fanout__redis_cmd(fo->redis, topic, topic_len)))
        return 0;
    key_of(&key, fo, topic, topic_len);
    snprintf(smax, sizeof(smax), "%zu", maxlen);
    snprintf(sage, sizeof(sage), "%" PRIu64, max_age_ms);
    redisAsyncCommand(ac, NULL, NULL, "EVAL %s 1 %b %b %s %s", lua_add, key.data, key.len, body,
                      len, smax, sage);
    gw_buf_release(&key);
    return 0;
}

/* Unlinks q from its fanout's list. */
static void
unlink_q(struct fanout__stq *q)
{
    for (struct fanout__stq **pp = &q->fo->stq; *pp; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            return;
        }
    }
}

/* Fills e from one XRANGE entry [id, [field, value, ...]]; false when malformed. */
static bool
entry_of(const redisReply *it, struct fanout_stream_entry *e)
{
    const redisReply *id, *fv;

    if (it->type != REDIS_REPLY_ARRAY || it->elements != 2)
        return false;
    id = it->element[0];
    fv = it->element[1];
    if (id->type != REDIS_REPLY_STRING || fv->type != REDIS_REPLY_ARRAY)
        return false;
    for (size_t i = 0; i + 1 < fv->elements; i += 2) {
        const redisReply *f = fv->element[i], *v = fv->element[i + 1];

        if (f->type == REDIS_REPLY_STRING && f->len == 1 && f->str[0] == 'b' &&
            v->type == REDIS_REPLY_STRING) {
            e->ms = strtoull(id->str, NULL, 10);
            e->body = v->str;
            e->len = v->len;
            return true;
        }
    }
    return false;
}

static void
on_range(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct fanout__stq *q = privdata;
    const redisReply *rep = reply;
    struct fanout_stream_entry *e = NULL;
    size_t n = 0;

    (void)ac;
    if (!q->fo) {
        free(q);
        return;
    }
    unlink_q(q);
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0) {
        e = gw_xcalloc(rep->elements, sizeof(*e));
        for (size_t i = 0; i < rep->elements; i++)
            if (entry_of(rep->element[i], &e[n]))
                n++;
    }
    q->fn(q->ud, e, n);
    free(e);
    free(q);
}

void
fanout_stream_range(struct fanout *fo, const void *topic, size_t topic_len, uint64_t since_ms,
                    size_t limit, fanout_stream_fn *fn, void *ud)
{
    redisAsyncContext *ac;
    struct gw_buf key;
    struct fanout__stq *q;
    char start[32], count[24];

    if (!fo || !fn)
        return;
    if (!topic || limit == 0 || !fo->redis ||
        !(ac = fanout__redis_cmd(fo->redis, topic, topic_len))) {
        fn(ud, NULL, 0);
        return;
    }
    q = gw_xcalloc(1, sizeof(*q));
    *q = (struct fanout__stq){ fo->stq, fo, fn, ud };
    key_of(&key, fo, topic, topic_len);
    snprintf(start, sizeof(start), "%" PRIu64 "-0", since_ms);
    snprintf(count, sizeof(count), "%zu", limit);
    if (redisAsyncCommand(ac, on_range, q, "XRANGE %b %s + COUNT %s", key.data, key.len, start,
                          count) == REDIS_OK) {
        fo->stq = q;
    } else {
        free(q);
        fn(ud, NULL, 0);
    }
    gw_buf_release(&key);
}

void
fanout_stream_cancel(struct fanout *fo, const void *ud)
{
    struct fanout__stq **pp;

    if (!fo)
        return;
    pp = &fo->stq;
    while (*pp) {
        struct fanout__stq *q = *pp;

        if (q->ud == ud) {
            *pp = q->next;
            q->next = NULL;
            q->fo = NULL;
        } else {
            pp = &q->next;
        }
    }
}

void
fanout__stream_free_all(struct fanout *fo)
{
    while (fo->stq) {
        struct fanout__stq *q = fo->stq;

        fo->stq = q->next;
        q->next = NULL;
        q->fo = NULL;
    }
}
