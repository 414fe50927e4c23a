/*
 * ratelimit.c: cluster-wide token buckets in Redis (fanout.h, "Rate limits").
 *
 * A bucket is the hash `<prefix>rl:<key>` (fields t = tokens, ts = last refill in ms) on
 * the instance chosen by hashing the key. A take is one script: it reads the hash, refills
 * by rate * elapsed (clock: Redis TIME, so every process agrees) up to burst, takes one
 * token when at least one is there, writes the hash back with a PEXPIRE of about
 * 2 * burst / rate (a full bucket needs no key) and answers 1 (allowed) or 0 (denied).
 *
 * A pending take is a struct fanout__rlq owned by its reply callback, which hiredis
 * always calls (with NULL when the context goes away). Cancelling (by ud) or fanout_free
 * marks it dead: its callback then only frees it. Fail open: in in-memory mode, while
 * the instance is not ready, on a send error, a lost connection or an error reply the
 * answer is "allowed".
 */
#include "fanout/fanout_int.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fanout__rlq {
    struct fanout__rlq *next;  /* in fo->rlq */
    struct fanout__rlq **prev; /* link pointing at this one */
    fanout_ratelimit_fn *fn;   /* answer callback; NULL once dead */
    void *ud;                  /* for fn */
};

/* KEYS[1] bucket; ARGV: rate (tokens/s), burst, ttl_ms. 1 = allowed, 0 = denied. */
static const char lua_take[] =
    "local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]) "
    "local tm = redis.call('TIME') "
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000) "
    "local v = redis.call('HMGET', KEYS[1], 't', 'ts') "
    "local t, ts = tonumber(v[1]), tonumber(v[2]) "
    "if not t or not ts then t = burst ts = now end "
    "if now > ts then t = math.min(burst, t + rate * (now - ts) / 1000) end "
    "local ok = 0 "
    "if t >= 1 then t = t - 1 ok = 1 end "
    "redis.call('HSET', KEYS[1], 't', tostring(t), 'ts', tostring(now)) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[3]) "
    "return ok";

static void
unlink_q(struct fanout__rlq *q)
{
    if (!q->prev)
        return;
    *q->prev = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->next = NULL;
    q->prev = NULL;
}

static void
on_take(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct fanout__rlq *q = privdata;
    const redisReply *rep = reply;
    fanout_ratelimit_fn *fn = q->fn;
    void *ud = q->ud;

    (void)ac;
    unlink_q(q);
    free(q);
    if (!fn)
        return;
    fn(ud, !(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0));
}

/* The TTL of a bucket: about twice the time it takes to refill, at least 1 s. */
static unsigned long long
ttl_of(double rate, double burst)
{
    double ms = 2000.0 * burst / rate;

    if (ms < 1000.0)
        ms = 1000.0;
    if (ms > 86400000.0)
        ms = 86400000.0;
    return (unsigned long long)ms;
}

void
fanout_ratelimit_take(struct fanout *fo, const char *key, double rate, double burst,
                      fanout_ratelimit_fn *fn, void *ud)
{
    redisAsyncContext *ac;
    struct fanout__rlq *q;
    struct gw_buf k;
    const char *prefix;
    char srate[32], sburst[32], sttl[32];
    size_t plen, klen;

    if (!fn)
        return;
    if (!fo || !key || !(rate > 0) || !(burst >= 1) || !fo->redis ||
        !(ac = fanout__redis_cmd(fo->redis, key, (klen = strlen(key))))) {
        fn(ud, true);
        return;
    }
    prefix = fanout__redis_prefix(fo->redis, &plen);
    gw_buf_init(&k);
    gw_buf_append(&k, prefix, plen);
    gw_buf_append_str(&k, "rl:");
    gw_buf_append(&k, key, klen);
    snprintf(srate, sizeof(srate), "%.17g", rate);
    snprintf(sburst, sizeof(sburst), "%.17g", burst);
    snprintf(sttl, sizeof(sttl), "%llu", ttl_of(rate, burst));
    q = gw_xcalloc(1, sizeof(*q));
    q->fn = fn;
    q->ud = ud;
    if (redisAsyncCommand(ac, on_take, q, "EVAL %s 1 %b %s %s %s", lua_take, k.data, k.len, srate,
                          sburst, sttl) == REDIS_OK) {
        q->next = fo->rlq;
        q->prev = &fo->rlq;
        if (fo->rlq)
            fo->rlq->prev = &q->next;
        fo->rlq = q;
    } else {
        free(q);
        fn(ud, true);
    }
    gw_buf_release(&k);
}

void
fanout_ratelimit_cancel(struct fanout *fo, const void *ud)
{
    struct fanout__rlq *q, *next;

    if (!fo)
        return;
    for (q = fo->rlq; q; q = next) {
        next = q->next;
        if (q->ud == ud) {
            q->fn = NULL;
            unlink_q(q);
        }
    }
}

void
fanout__ratelimit_free_all(struct fanout *fo)
{
    while (fo->rlq) {
        fo->rlq->fn = NULL;
        unlink_q(fo->rlq);
    }
}
