/*
 * climit.c: cluster-wide rate limits per user (messages, joins, new connections), checked
 * one Redis round trip behind.
 *
 * The user is the token's `sub`, or "ip:<client IP>" for tokens without one. An action
 * is never delayed: gw__climit_take() answers from a small per-process table of users
 * blocked until some time (synchronously, no Redis), and when the user is not blocked it
 * also takes a token of the user's Redis bucket (fanout_ratelimit_take, key
 * "<kind>:<user>", rate = burst = the configured per-second limit). When Redis answers
 * "denied" the user is blocked on this process for GW_CLIMIT_BLOCK_MS. So the limit is
 * approximate: a user may overshoot by what it sends during one round trip, and each
 * process only blocks after one of its own takes is denied. Redis down = no cluster limit
 * (fanout fails open); the local per-socket buckets still apply.
 *
 * The blocked table is a fixed array scanned linearly (entries are 64-bit hashes of the
 * bucket key); when full, the entry expiring first is replaced. Pending takes are kept in
 * a list so gw__climit_free() can free them after fanout_free() cancelled them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "gateway/gateway_int.h"

#define GW_CLIMIT_BLOCK_MS 1000 /* how long a user over budget is refused on this process */
#define CLIMIT_SLOTS       1024 /* users blocked at the same time, at most */

/* A user blocked on this process. */
struct blocked {
    uint64_t h;     /* hash of the bucket key; 0 = free */
    uint64_t until; /* monotonic ms the block ends */
};

/* A take waiting for Redis. */
struct take {
    struct gw_climit *cl;     /* owner */
    struct take *prev, *next; /* in cl->pending */
    uint64_t h;               /* hash of the bucket key */
};

struct gw_climit {
    struct blocked slots[CLIMIT_SLOTS]; /* blocked users */
    struct take *pending;               /* takes sent to Redis */
};

static const char kind_char[] = { 'm', 'j', 'c' };

static bool
is_blocked(const struct gw_climit *cl, uint64_t h, uint64_t now)
{
    for (size_t i = 0; i < CLIMIT_SLOTS; i++)
        if (cl->slots[i].h == h)
            return cl->slots[i].until > now;
    return false;
}

static void
block(struct gw_climit *cl, uint64_t h, uint64_t now)
{
    struct blocked *best = &cl->slots[0];

    for (size_t i = 0; i < CLIMIT_SLOTS; i++) {
        struct blocked *b = &cl->slots[i];

        if (b->h == h) {
            best = b;
            break;
        }
        if (b->h == 0 || b->until <= now || b->until < best->until)
            best = b;
    }
    best->h = h;
    best->until = now + GW_CLIMIT_BLOCK_MS;
}

static void
unlink_take(struct take *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        t->cl->pending = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

static void
on_answer(void *ud, bool allowed)
{
    struct take *t = ud;

    unlink_take(t);
    if (!allowed)
        block(t->cl, t->h, gw_now_ms());
    free(t);
}

/* The per-second limit of a kind (0 = off). */
static int
limit_of(const struct conf *cf, enum gw_climit_kind kind)
{
    switch (kind) {
    case GW_CLIMIT_MESSAGES:
        return cf->cluster_messages_per_second;
    case GW_CLIMIT_JOINS:
        return cf->cluster_joins_per_second;
    default:
        return cf->cluster_connections_per_second;
    }
}

bool
gw__climit_take(struct gw *gw, enum gw_climit_kind kind, const struct auth_identity *id,
                const char *ip)
{
    const char *sub = id ? auth_identity_sub(id) : NULL;
    int limit = limit_of(gw->conf, kind);
    uint64_t now = gw_now_ms(), h;
    char key[512];
    struct take *t;

    if (limit <= 0 || gw->conf->redis.n == 0)
        return true;
    if (!gw->climit)
        gw->climit = gw_xcalloc(1, sizeof(*gw->climit));
    snprintf(key, sizeof key, "%c:%s%s", kind_char[kind],
             sub && *sub ? "u:" : "ip:", sub && *sub ? sub : (ip ? ip : ""));
    h = gw_hash64(key, strlen(key)) | 1u;
    if (is_blocked(gw->climit, h, now))
        return false;
    t = gw_xcalloc(1, sizeof(*t));
    t->cl = gw->climit;
    t->h = h;
    t->next = gw->climit->pending;
    if (t->next)
        t->next->prev = t;
    gw->climit->pending = t;
    fanout_ratelimit_take(gw->fo, key, limit, limit, on_answer, t);
    return true;
}

void
gw__climit_free(struct gw *gw)
{
    struct gw_climit *cl = gw ? gw->climit : NULL;

    if (!cl)
        return;
    while (cl->pending) {
        struct take *t = cl->pending;

        cl->pending = t->next;
        fanout_ratelimit_cancel(gw->fo, t);
        free(t);
    }
    free(cl);
    gw->climit = NULL;
}
