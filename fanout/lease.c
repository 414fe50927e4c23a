/*
 * lease.c: named leases held by at most one process of the cluster (fanout.h, "Leases").
 *
 * Cluster mode: the key `<prefix>lease:<name>` lives on the instance chosen by hashing the
 * name (like a topic) and holds the holder's node id with a PX TTL of ttl_ms. A tick every
 * ttl_ms/3 sends one EVAL on that instance's cmd connection (skipped while a previous one
 * is unanswered or the connection is not READY): the script renews the key when it holds
 * our id, sets it when it is absent, and answers 1 (ours) or 0 (another node's). A 1
 * makes this process hold the lease until ttl_ms*2/3 after that EVAL was SENT (the fence
 * timer): the key lives at least ttl_ms from then, so we stop before anyone else can
 * take it, even when the next renewals never come back. A 0 drops the lease at once.
 * Release deletes the key only when it still holds our id (compare-and-delete script).
 *
 * A pending EVAL owns a pointer to its lease: a lease released (or abandoned) while one
 * is pending is unlinked and marked dead, and freed by the reply callback, which hiredis
 * always calls (with NULL when the context goes away).
 *
 * In-memory mode: held on the next loop turn, for good.
 */
#include "fanout/fanout_int.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "base/loop.h"

#define LEASE_NAME_MAX 200 /* bytes of a lease name */
#define LEASE_TTL_MIN  30  /* shortest ttl_ms accepted */

struct fanout__lease {
    struct fanout__lease *next; /* in fo->leases (not once dead) */
    struct fanout *fo;          /* owner */
    char *name;                 /* lease name (owned) */
    char *key;                  /* prefix + "lease:" + name (owned; NULL in memory mode) */
    uint32_t ttl_ms;            /* key TTL */
    fanout_lease_fn *fn;        /* held / lost callback */
    void *ud;                   /* for fn */
    struct gw_timer *tick;      /* acquire / renew every ttl_ms/3 */
    struct gw_timer *fence;     /* stop holding: ttl_ms*2/3 after the last good EVAL's send */
    bool held;                  /* this process holds the lease */
    bool pending;               /* an EVAL is unanswered (its callback owns a pointer) */
    bool dead;                  /* released while pending: the callback frees it */
    uint64_t sent_ms;           /* when the pending EVAL was sent */
};

/* KEYS[1] lease key; ARGV: node, ttl_ms. 1 = ours (renewed or taken), 0 = another's. */
static const char lua_acquire[] = "local v = redis.call('GET', KEYS[1]) "
                                  "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) "
                                  "return 1 end "
                                  "if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', "
                                  "ARGV[2]) return 1 end "
                                  "return 0";

/* KEYS[1] lease key; ARGV: node. Deletes the key when it is ours. */
static const char lua_release[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                  "return redis.call('DEL', KEYS[1]) end return 0";

static void
lease_destroy(struct fanout__lease *ls)
{
    gw_timer_free(ls->fo->loop, ls->tick);
    gw_timer_free(ls->fo->loop, ls->fence);
    free(ls->name);
    free(ls->key);
    free(ls);
}

static void
set_held(struct fanout__lease *ls, bool held)
{
    if (ls->held == held)
        return;
    ls->held = held;
    gw_log(GW_LOG_INFO, "lease", "name=%s state=%s", ls->name, held ? "held" : "lost");
    ls->fn(ls->ud, held);
}

static void
on_fence(void *ud)
{
    set_held(ud, false);
}

/* The answer of an acquire / renew EVAL. */
static void
on_acquire(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct fanout__lease *ls = privdata;
    const redisReply *rep = reply;
    uint64_t now = gw_now_ms(), hold = (uint64_t)ls->ttl_ms * 2u / 3u;

    (void)ac;
    ls->pending = false;
    if (ls->dead) {
        lease_destroy(ls);
        return;
    }
    if (!rep || rep->type != REDIS_REPLY_INTEGER || ls->fo->redis == NULL)
        return; /* no answer: the fence timer decides */
    if (rep->integer != 1) {
        gw_timer_cancel(ls->fo->loop, ls->fence);
        set_held(ls, false);
        return;
    }
    if (now - ls->sent_ms >= hold)
        return; /* too late to count on it; the next tick renews */
    gw_timer_set(ls->fo->loop, ls->fence, ls->sent_ms + hold - now);
    set_held(ls, true);
}

static void
on_tick(void *ud)
{
    struct fanout__lease *ls = ud;
    struct fanout *fo = ls->fo;
    redisAsyncContext *ac;
    char ttl[16];

    gw_timer_set(fo->loop, ls->tick, ls->ttl_ms / 3u);
    if (!fo->redis) {
        set_held(ls, true);
        gw_timer_cancel(fo->loop, ls->tick);
        return;
    }
    if (ls->pending || !(ac = fanout__redis_cmd(fo->redis, ls->name, strlen(ls->name))))
        return;
    snprintf(ttl, sizeof(ttl), "%u", (unsigned)ls->ttl_ms);
    if (redisAsyncCommand(ac, on_acquire, ls, "EVAL %s 1 %s %s %s", lua_acquire, ls->key,
                          fo->node_id, ttl) != REDIS_OK)
        return;
    ls->pending = true;
    ls->sent_ms = gw_now_ms();
}

static struct fanout__lease *
find(const struct fanout *fo, const char *name, struct fanout__lease ***link)
{
    struct fanout__lease *const *pp;

    for (pp = &fo->leases; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            if (link)
                *link = (struct fanout__lease **)pp;
            return *pp;
        }
    }
    return NULL;
}

int
fanout_lease_start(struct fanout *fo, const char *name, uint32_t ttl_ms, fanout_lease_fn *fn,
                   void *ud)
{
    struct fanout__lease *ls;
    size_t plen;

    if (!fo || !name || !*name || strlen(name) > LEASE_NAME_MAX || ttl_ms < LEASE_TTL_MIN || !fn ||
        !fo->loop)
        return GW_EINVAL;
    if (find(fo, name, NULL))
        return GW_EEXIST;
    ls = gw_xcalloc(1, sizeof(*ls));
    ls->fo = fo;
    ls->name = gw_xstrdup(name);
    ls->ttl_ms = ttl_ms;
    ls->fn = fn;
    ls->ud = ud;
    if (fo->redis) {
        const char *prefix = fanout__redis_prefix(fo->redis, &plen);
        struct gw_buf k;

        gw_buf_init(&k);
        gw_buf_printf(&k, "%.*slease:%s", (int)plen, prefix, name);
        ls->key = gw_buf_steal(&k, NULL);
    }
    ls->tick = gw_timer_new(fo->loop, on_tick, ls);
    ls->fence = gw_timer_new(fo->loop, on_fence, ls);
    ls->next = fo->leases;
    fo->leases = ls;
    gw_timer_set(fo->loop, ls->tick, 0);
    return 0;
}

/* Unlinks ls; deletes the key when held and `send`; frees it now or from its callback. */
static void
drop(struct fanout__lease **link, bool send)
{
    struct fanout__lease *ls = *link;
    struct fanout *fo = ls->fo;
    redisAsyncContext *ac;

    *link = ls->next;
    ls->next = NULL;
    if (send && ls->held && ls->key &&
        (ac = fanout__redis_cmd(fo->redis, ls->name, strlen(ls->name))))
        redisAsyncCommand(ac, NULL, NULL, "EVAL %s 1 %s %s", lua_release, ls->key, fo->node_id);
    if (ls->held)
        gw_log(GW_LOG_INFO, "lease", "name=%s state=%s", ls->name, send ? "released" : "abandoned");
    gw_timer_cancel(fo->loop, ls->tick);
    gw_timer_cancel(fo->loop, ls->fence);
    ls->held = false;
    if (ls->pending)
        ls->dead = true;
    else
        lease_destroy(ls);
}

int
fanout_lease_release(struct fanout *fo, const char *name)
{
    struct fanout__lease **link;

    if (!fo || !name || !find(fo, name, &link))
        return GW_ENOTFOUND;
    drop(link, true);
    return 0;
}

bool
fanout_lease_held(const struct fanout *fo, const char *name)
{
    const struct fanout__lease *ls = fo && name ? find(fo, name, NULL) : NULL;

    return ls && ls->held;
}

void
fanout__lease_free_all(struct fanout *fo)
{
    while (fo->leases)
        drop(&fo->leases, true);
}

void
fanout__lease_abandon(struct fanout *fo)
{
    while (fo->leases)
        drop(&fo->leases, false);
}
