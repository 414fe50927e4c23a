/*
 * table.c: the open-addressing hash table behind the topic, pair and presence indexes.
 *
 * Linear probing over a power-of-two array of node pointers, grown to twice its size when
 * more than 3/4 full. Deletion shifts the following run back into the hole (no
 * tombstones), so lookups never slow down after many removals. Nodes are intrusive and
 * carry their full hash, so growth never re-reads keys.
 */
#include "fanout/fanout_int.h"

#include <stdlib.h>

#include "base/base.h"

#define TABLE_MIN_CAP 16 /* slots allocated by the first insertion */

uint64_t
fanout__mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

struct fanout__hnode *
fanout__table_find(const struct fanout__table *t, uint64_t hash, fanout__match_fn *match,
                   const void *key)
{
    if (t->count == 0)
        return NULL;
    for (size_t i = (size_t)hash & t->mask;; i = (i + 1) & t->mask) {
        struct fanout__hnode *n = t->slots[i];

        if (!n)
            return NULL;
        if (n->hash == hash && match(n, key))
            return n;
    }
}

static void
place(struct fanout__hnode **slots, size_t mask, struct fanout__hnode *n)
{
    size_t i = (size_t)n->hash & mask;

    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = n;
}

static void
grow(struct fanout__table *t)
{
    size_t cap = t->slots ? (t->mask + 1) * 2 : TABLE_MIN_CAP;
    struct fanout__hnode **slots = gw_xcalloc(cap, sizeof(*slots));

    for (size_t i = 0; t->slots && i <= t->mask; i++) {
        if (t->slots[i])
            place(slots, cap - 1, t->slots[i]);
    }
    free(t->slots);
    t->slots = slots;
    t->mask = cap - 1;
}

void
fanout__table_insert(struct fanout__table *t, struct fanout__hnode *n)
{
    if (!t->slots || (t->count + 1) * 4 > (t->mask + 1) * 3)
        grow(t);
    place(t->slots, t->mask, n);
    t->count++;
}

/* True when home slot `k` lies cyclically in (i, j]: the node at j may not move to i. */
static bool
stays(size_t i, size_t j, size_t k)
{
    if (i <= j)
        return i < k && k <= j;
    return i < k || k <= j;
}

void
fanout__table_remove(struct fanout__table *t, struct fanout__hnode *n)
{
    size_t i, j;

    if (t->count == 0)
        return;
    for (i = (size_t)n->hash & t->mask; t->slots[i] != n; i = (i + 1) & t->mask) {
        if (!t->slots[i])
            return;
    }
    for (j = (i + 1) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
        if (stays(i, j, (size_t)t->slots[j]->hash & t->mask))
            continue;
        t->slots[i] = t->slots[j];
        i = j;
    }
    t->slots[i] = NULL;
    t->count--;
}

void
fanout__table_release(struct fanout__table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->mask = 0;
    t->count = 0;
}
