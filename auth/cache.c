/*
 * cache.c: verified tokens by SHA-256, so a reconnect storm skips the signature checks.
 *
 * A fixed set-associative table: AUTH_CACHE_SETS sets of AUTH_CACHE_WAYS entries, the set
 * chosen by the first digest bytes. A full set evicts its least recently used entry.
 * Each entry holds one identity reference and the token's exp/nbf, which the caller
 * re-checks against the current time on every hit, so an expired token is never served.
 */
#include "auth/auth_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"

struct cache_entry {
    unsigned char key[AUTH_SHA256_LEN]; /* SHA-256 of the token */
    struct auth_identity *id;           /* one reference; NULL when the slot is free */
    struct auth_times times;            /* validity window of the token */
    uint64_t used;                      /* cache clock at the last use, for eviction */
};

struct auth_cache {
    struct cache_entry slot[AUTH_CACHE_SETS * AUTH_CACHE_WAYS]; /* set i at i * WAYS */
    uint64_t clock;                                             /* bumped on every use */
};

struct auth_cache *
auth__cache_new(void)
{
    return gw_xcalloc(1, sizeof(struct auth_cache));
}

void
auth__cache_free(struct auth_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < AUTH_CACHE_SETS * AUTH_CACHE_WAYS; i++)
        auth_identity_unref(c->slot[i].id);
    free(c);
}

/* The first entry of the set for key. */
static struct cache_entry *
set_of(struct auth_cache *c, const unsigned char *key)
{
    size_t set = ((size_t)key[0] << 8 | key[1]) & (AUTH_CACHE_SETS - 1);

    return &c->slot[set * AUTH_CACHE_WAYS];
}

/* The entry holding key, or NULL. */
static struct cache_entry *
find(struct auth_cache *c, const unsigned char *key)
{
    struct cache_entry *e = set_of(c, key);

    for (size_t w = 0; w < AUTH_CACHE_WAYS; w++) {
        if (e[w].id && memcmp(e[w].key, key, AUTH_SHA256_LEN) == 0)
            return &e[w];
    }
    return NULL;
}

struct auth_identity *
auth__cache_get(struct auth_cache *c, const unsigned char *key, struct auth_times *times)
{
    struct cache_entry *e = find(c, key);

    if (!e)
        return NULL;
    e->used = ++c->clock;
    *times = e->times;
    return e->id;
}

void
auth__cache_put(struct auth_cache *c, const unsigned char *key, struct auth_identity *id,
                const struct auth_times *times)
{
    struct cache_entry *e = find(c, key);

    if (!e) {
        struct cache_entry *set = set_of(c, key);

        e = &set[0];
        for (size_t w = 0; w < AUTH_CACHE_WAYS && e->id; w++) {
            if (!set[w].id || set[w].used < e->used)
                e = &set[w];
        }
    }
    auth_identity_ref(id);
    auth_identity_unref(e->id);
    memcpy(e->key, key, AUTH_SHA256_LEN);
    e->id = id;
    e->times = *times;
    e->used = ++c->clock;
}

void
auth__cache_drop(struct auth_cache *c, const unsigned char *key)
{
    struct cache_entry *e = find(c, key);

    if (!e)
        return;
    auth_identity_unref(e->id);
    e->id = NULL;
}
