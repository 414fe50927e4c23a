/*
 * fanout_int.h: declarations shared by the files of the fanout module (not public).
 *
 * table.c is a small open-addressing hash table (linear probing, power-of-two capacity,
 * backward-shift deletion, no tombstones) of intrusive nodes: each indexed object embeds a
 * struct fanout__hnode as its FIRST member, so a node pointer converts to the object.
 * fanout.c holds the topic index (topic bytes -> struct fanout__topic), the pair index
 * ((topic, sub_ud) -> subscription, for O(1) duplicate checks) and publishing; presence.c
 * keeps per-topic presence entries keyed by owner in a table inside the topic record.
 */
#ifndef GW_FANOUT_INT_H
#define GW_FANOUT_INT_H

#include "fanout/fanout.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Embedded first in every object a table indexes. */
struct fanout__hnode {
    uint64_t hash; /* full hash of the object's key, kept for probing and growth */
};

/* An open-addressing table of node pointers. Zero-initialised = empty, no allocation. */
struct fanout__table {
    struct fanout__hnode **slots; /* cap entries, NULL = free; NULL while cap is 0 */
    size_t mask;                  /* cap - 1 (cap is a power of two) */
    size_t count;                 /* nodes stored */
};

/* Returns true when `n` has the key `key` (its hash already matched). */
typedef bool fanout__match_fn(const struct fanout__hnode *n, const void *key);

struct fanout__hnode *fanout__table_find(const struct fanout__table *t, uint64_t hash,
                                         fanout__match_fn *match, const void *key);
/* Inserts `n` (whose key must be absent); grows the table as needed. */
void fanout__table_insert(struct fanout__table *t, struct fanout__hnode *n);
/* Removes the node `n` (compared by address); no-op when it is not stored. */
void fanout__table_remove(struct fanout__table *t, struct fanout__hnode *n);
/* Frees the slot array (not the nodes) and empties the table. */
void fanout__table_release(struct fanout__table *t);
/* Mixes a 64-bit value into a well-spread hash (the murmur3 finaliser). */
uint64_t fanout__mix64(uint64_t x);

/* One entry of a topic's subscriber array. */
struct fanout__slot {
    void *sub_ud;           /* copy of sub->sub_ud, read by publish without a pointer chase */
    struct fanout_sub *sub; /* the subscription; NULL = removed during a publish */
};

struct fanout__topic {
    struct fanout__hnode node;     /* first: hash of the topic bytes */
    struct fanout__slot *slots;    /* subscribers in array order (dense unless publishing) */
    size_t nslots;                 /* slots used, removed ones included */
    size_t cap;                    /* slots allocated */
    size_t live;                   /* subscriptions not removed */
    size_t dead;                   /* slots with sub NULL, compacted after the last publish */
    unsigned publishing;           /* publish calls running on this topic (re-entrancy) */
    struct fanout__table presence; /* struct fanout__pentry by owner */
    size_t key_len;                /* bytes of the topic */
    unsigned char key[];           /* the topic bytes */
};

struct fanout_sub {
    struct fanout__hnode node;   /* first: hash of (topic, sub_ud) in the pair index */
    struct fanout__topic *topic; /* the topic subscribed to */
    void *sub_ud;                /* the subscriber */
    size_t idx;                  /* position in topic->slots */
};

/* A presence entry: one allocation holding the struct and its bytes. */
struct fanout__pentry {
    struct fanout__hnode node; /* first: hash of the owner pointer */
    const void *owner;         /* the owner this entry belongs to */
    struct fanout_presence p;  /* points into bytes (each part NUL-terminated) */
    char bytes[];              /* key, ref, meta */
};

struct fanout {
    fanout_encode_fn *encode;        /* builds frames; captured by each message */
    fanout_deliver_fn *deliver;      /* the sink */
    void *ud;                        /* passed to both callbacks */
    struct fanout__table topics;     /* struct fanout__topic by topic bytes */
    struct fanout__table pairs;      /* struct fanout_sub by (topic, sub_ud) */
    size_t topics_with_subs;         /* topics whose live count is > 0 */
    size_t subs;                     /* live subscriptions in all topics */
    struct fanout_presence *scratch; /* reusable array for fanout_presence_list */
    size_t scratch_cap;              /* entries allocated in scratch */
    bool scratch_busy;               /* a list callback is using scratch (nested list) */
};

/* Finds the record of a topic, or creates it when `create` is true; NULL when absent. */
struct fanout__topic *fanout__topic_get(struct fanout *fo, const void *topic, size_t topic_len,
                                        bool create);
/* Frees the topic record once it has no subscriber, no presence and no running publish. */
void fanout__topic_settle(struct fanout *fo, struct fanout__topic *t);
/* Frees every presence entry of a topic (used by fanout_free). */
void fanout__presence_clear(struct fanout__topic *t);

#endif
