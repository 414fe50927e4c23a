/*
 * presence.c: per-topic presence entries, one per owner.
 *
 * Each topic record holds a hash table of entries keyed by the owner pointer, so set and
 * del are O(1) on average however many entries a topic has. An entry is one allocation
 * holding copies of the key, ref and meta bytes (each NUL-terminated for convenience, not
 * counted in the lengths). Callbacks always run when the index is already consistent: set
 * stores the new entry before it shows the old one to prev_fn, del unlinks the entry
 * before it shows it to fn, and the entry is freed after the callback returns. So the
 * callbacks may call back into fanout. fanout_presence_list fills an array of borrowed
 * entries kept in the fanout (a temporary one when lists nest); its callback must not
 * change the presence of the topic being listed, which would free entries it still sees.
 * Entries are listed in no particular order.
 *
 * Cluster mode: each entry also carries an owner id (a per-process counter, kept when the
 * entry is replaced) and set / del mirror it into Redis (redis.c). A list then asks Redis
 * for the entries of the other live processes and answers later, appending this
 * process's entries from memory (fanout__presence_answer); when the topic's instance is
 * not ready it answers at once with the local entries.
 */
#include "fanout/fanout.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fanout/fanout_int.h"

static bool
owner_match(const struct fanout__hnode *n, const void *key)
{
    return ((const struct fanout__pentry *)n)->owner == key;
}

static uint64_t
owner_hash(const void *owner)
{
    return fanout__mix64((uint64_t)(uintptr_t)owner);
}

static bool
part_valid(const char *s, size_t len)
{
    return s || len == 0;
}

static bool
presence_valid(const struct fanout_presence *p)
{
    return p && part_valid(p->key, p->key_len) && part_valid(p->ref, p->ref_len) &&
           part_valid(p->meta, p->meta_len) && p->key_len < SIZE_MAX / 4 &&
           p->ref_len < SIZE_MAX / 4 && p->meta_len < SIZE_MAX / 4;
}

/* Copies `len` bytes of `s` to `*at` with a NUL after them; returns the copy. */
static const char *
copy_part(char **at, const char *s, size_t len)
{
    char *dst = *at;

    if (len > 0)
        memcpy(dst, s, len);
    dst[len] = '\0';
    *at = dst + len + 1;
    return dst;
}

static struct fanout__pentry *
pentry_new(const void *owner, const struct fanout_presence *p)
{
    size_t bytes = p->key_len + p->ref_len + p->meta_len + 3;
    struct fanout__pentry *e = gw_xmalloc(sizeof(*e) + bytes);
    char *at = e->bytes;

    e->node.hash = owner_hash(owner);
    e->owner = owner;
    e->p.key_len = p->key_len;
    e->p.ref_len = p->ref_len;
    e->p.meta_len = p->meta_len;
    e->p.key = copy_part(&at, p->key, p->key_len);
    e->p.ref = copy_part(&at, p->ref, p->ref_len);
    e->p.meta = copy_part(&at, p->meta, p->meta_len);
    return e;
}

static struct fanout__pentry *
pentry_find(const struct fanout__topic *t, const void *owner)
{
    return (struct fanout__pentry *)fanout__table_find(&t->presence, owner_hash(owner), owner_match,
                                                       owner);
}

void
fanout__presence_clear(struct fanout__topic *t)
{
    for (size_t i = 0; t->presence.slots && i <= t->presence.mask; i++)
        free(t->presence.slots[i]);
    fanout__table_release(&t->presence);
}

int
fanout_presence_set(struct fanout *fo, const void *topic, size_t topic_len, const void *owner,
                    const struct fanout_presence *p, fanout_presence_fn *prev_fn, void *ud)
{
    struct fanout__topic *t;
    struct fanout__pentry *e, *old;

    if (!fo || !owner || !presence_valid(p) || (!topic && topic_len > 0))
        return GW_EINVAL;
    t = fanout__topic_get(fo, topic, topic_len, true);
    e = pentry_new(owner, p);
    old = pentry_find(t, owner);
    if (old)
        fanout__table_remove(&t->presence, &old->node);
    e->oid = old ? old->oid : ++fo->next_oid;
    fanout__table_insert(&t->presence, &e->node);
    fanout__redis_presence_set(fo->redis, topic, topic_len, e, t->presence.count == 1);
    if (old && prev_fn)
        prev_fn(ud, &old->p);
    free(old);
    return 0;
}

int
fanout_presence_del(struct fanout *fo, const void *topic, size_t topic_len, const void *owner,
                    fanout_presence_fn *fn, void *ud)
{
    struct fanout__topic *t;
    struct fanout__pentry *old;

    if (!fo || !owner || (!topic && topic_len > 0))
        return GW_EINVAL;
    t = fanout__topic_get(fo, topic, topic_len, false);
    old = t ? pentry_find(t, owner) : NULL;
    if (!old)
        return GW_ENOTFOUND;
    fanout__table_remove(&t->presence, &old->node);
    fanout__redis_presence_del(fo->redis, topic, topic_len, old, t->presence.count == 0);
    fanout__topic_settle(fo, t);
    if (fn)
        fn(ud, &old->p);
    free(old);
    return 0;
}

/* Returns an array for n entries: the fanout's scratch unless a list is already using it. */
static struct fanout_presence *
list_array(struct fanout *fo, size_t n, bool *temp)
{
    *temp = fo->scratch_busy;
    if (*temp)
        return gw_xmalloc((n ? n : 1) * sizeof(*fo->scratch));
    if (n > fo->scratch_cap) {
        free(fo->scratch);
        fo->scratch_cap = n < 16 ? 16 : n;
        fo->scratch = gw_xmalloc(fo->scratch_cap * sizeof(*fo->scratch));
    }
    return fo->scratch;
}

void
fanout__presence_answer(struct fanout *fo, const void *topic, size_t topic_len,
                        const struct fanout_presence *extra, size_t n_extra,
                        fanout_presence_list_fn *fn, void *ud)
{
    struct fanout__topic *t = fanout__topic_get(fo, topic, topic_len, false);
    struct fanout_presence *arr;
    size_t n = n_extra;
    bool temp;

    arr = list_array(fo, n_extra + (t ? t->presence.count : 0), &temp);
    if (n_extra > 0)
        memcpy(arr, extra, n_extra * sizeof(*arr));
    for (size_t i = 0; t && t->presence.slots && i <= t->presence.mask; i++) {
        const struct fanout__pentry *e = (const struct fanout__pentry *)t->presence.slots[i];

        if (e)
            arr[n++] = e->p;
    }
    fo->scratch_busy = true;
    fn(ud, arr, n);
    if (temp)
        free(arr);
    else
        fo->scratch_busy = false;
}

void
fanout_presence_list(struct fanout *fo, const void *topic, size_t topic_len,
                     fanout_presence_list_fn *fn, void *ud)
{
    if (!fo || !fn || (!topic && topic_len > 0))
        return;
    if (fanout__redis_presence_list(fo->redis, topic, topic_len, fn, ud))
        return;
    fanout__presence_answer(fo, topic, topic_len, NULL, 0, fn, ud);
}

void
fanout_presence_cancel(struct fanout *fo, const void *ud)
{
    if (fo)
        fanout__redis_presence_cancel(fo->redis, ud);
}
