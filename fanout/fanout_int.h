/*
 * fanout_int.h: declarations shared by the files of the fanout module (not public).
 *
 * table.c is a small open-addressing hash table (linear probing, power-of-two capacity,
 * backward-shift deletion, no tombstones) of intrusive nodes: each indexed object embeds a
 * struct fanout__hnode as its FIRST member, so a node pointer converts to the object.
 * fanout.c holds the topic index (topic bytes -> struct fanout__topic), the pair index
 * ((topic, sub_ud) -> subscription, for O(1) duplicate checks) and publishing; presence.c
 * keeps per-topic presence entries keyed by owner in a table inside the topic record.
 * bus.c holds the pure parts of the Redis bus (URL parsing, the envelope, RESP command
 * bytes, node ids, presence values); redis.c the hiredis connections on the gw_loop,
 * subscriptions, the connection state, the bus traffic and presence in Redis.
 */
#ifndef GW_FANOUT_INT_H
#define GW_FANOUT_INT_H

#include "fanout/fanout.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define FANOUT_DEFAULT_PREFIX "tidings:" /* key and channel prefix when none is configured */
#define FANOUT_BUS_INFIX      "bus:"     /* channel = prefix + "bus:" + topic */
#define FANOUT_NODE_ID_MAX    64         /* bytes of a node id (one length byte on the wire) */
#define FANOUT_ENVELOPE_V1    1          /* first byte of a version 1 envelope */
/* Publishes queued to one instance but not yet answered, in bytes; beyond it, drop. */
#define FANOUT_REDIS_MAX_INFLIGHT_BYTES (32u * 1024u * 1024u)

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
    uint64_t oid;              /* per-process id of the owner (Redis field suffix) */
    struct fanout_presence p;  /* points into bytes (each part NUL-terminated) */
    char bytes[];              /* key, ref, meta */
};

struct fanout__redis;
struct fanout__lease;
struct fanout__regq;
struct fanout__rlq;
struct fanout__stq;
struct gw_loop;
struct redisAsyncContext;

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
    char *node_id;                   /* this process's id on the bus (owned) */
    uint64_t next_oid;               /* last owner id handed to a presence entry */
    struct fanout__redis *redis;     /* the Redis bus; NULL in in-memory mode */
    struct gw_loop *loop;            /* event loop (may be NULL in in-memory mode) */
    struct fanout__lease *leases;    /* leases competed for (lease.c) */
    struct fanout__regq *regq;       /* pending registry fetches (registry.c) */
    struct fanout__rlq *rlq;         /* pending rate limit takes (ratelimit.c) */
    struct fanout__stq *stq;         /* pending stream ranges (stream.c) */
};

/* Finds the record of a topic, or creates it when `create` is true; NULL when absent. */
struct fanout__topic *fanout__topic_get(struct fanout *fo, const void *topic, size_t topic_len,
                                        bool create);
/* Frees the topic record once it has no subscriber, no presence and no running publish. */
void fanout__topic_settle(struct fanout *fo, struct fanout__topic *t);
/* Frees every presence entry of a topic (used by fanout_free). */
void fanout__presence_clear(struct fanout__topic *t);
/* Calls fn once with `extra` (n_extra entries, e.g. other nodes' ones) followed by the
 * local entries of `topic`. */
void fanout__presence_answer(struct fanout *fo, const void *topic, size_t topic_len,
                             const struct fanout_presence *extra, size_t n_extra,
                             fanout_presence_list_fn *fn, void *ud);
/* Delivers `m` to the local subscribers of `topic` except `exclude` (NULL: none), exactly
 * as fanout_publish does without Redis. Returns the number of deliveries. */
size_t fanout__deliver_local(struct fanout *fo, const void *topic, size_t topic_len,
                             struct fanout_msg *m, const void *exclude);

/* A parsed Redis URL (bus.c). Strings are owned; release with fanout__redis_url_release. */
struct fanout__redis_url {
    char *host;     /* host name or address (IPv6 without brackets) */
    int port;       /* TCP port, 6379 when not given */
    char *user;     /* ACL user name for AUTH, NULL = none (default user) */
    char *password; /* password for AUTH, NULL = no AUTH */
    int db;         /* database for SELECT, -1 = not given (no SELECT) */
    char *label;    /* "host:port" for logs and details (never the password) */
};

/* Parses "redis://[[user]:password@]host[:port][/db]" (user and password may use %XX
 * escapes). Returns 0 and fills *out, or GW_EINVAL (out is then empty). */
int fanout__redis_url_parse(const char *url, struct fanout__redis_url *out);
void fanout__redis_url_release(struct fanout__redis_url *u);

/* A decoded envelope; the pointers point into the decoded bytes. */
struct fanout__envelope {
    const char *node;          /* node id of the publisher (not NUL-terminated) */
    size_t node_len;           /* bytes, 1..FANOUT_NODE_ID_MAX */
    unsigned tag;              /* the message tag */
    const unsigned char *body; /* the message body */
    size_t body_len;           /* bytes */
};

/* Decodes an envelope. Returns 0, or GW_EPARSE when the bytes are not a v1 envelope. */
int fanout__envelope_decode(const void *p, size_t n, struct fanout__envelope *out);
/* Appends "*<nargs + 1>\r\n" and the command name as a RESP bulk string to b. */
void fanout__resp_begin(struct gw_buf *b, const char *cmd, size_t nargs);
/* Appends the channel "<prefix>bus:<topic>" as a RESP bulk string to b. */
void fanout__resp_channel(struct gw_buf *b, const char *prefix, size_t prefix_len,
                          const void *topic, size_t topic_len);
/* Appends the envelope (node, tag, body) as a RESP bulk string to b. */
void fanout__resp_envelope(struct gw_buf *b, const char *node, size_t node_len, unsigned tag,
                           const void *body, size_t body_len);
/* Appends the Redis value of a presence entry: 4-byte big-endian key length, key, 4-byte
 * big-endian ref length, ref, then the meta bytes up to the end. */
void fanout__pvalue_encode(struct gw_buf *b, const struct fanout_presence *p);
/* Decodes such a value (pointers into p). Returns 0 or GW_EPARSE. */
int fanout__pvalue_decode(const void *p, size_t n, struct fanout_presence *out);
/* Returns true when node_id is a usable node id (1..FANOUT_NODE_ID_MAX bytes, no
 * control characters or spaces). */
bool fanout__node_id_valid(const char *node_id);
/* Returns a new node id "<host>-<pid>-<8 random hex digits>" (caller frees). */
char *fanout__node_id_new(void);

/* The Redis side (redis.c); every function ignores a NULL `r`. */
/* Starts the connections of cfg->redis on cfg->loop (from the next loop turn). Returns
 * NULL when a URL is malformed. Never calls back from inside. */
struct fanout__redis *fanout__redis_new(struct fanout *fo, const struct fanout_config *cfg);
/* Closes every connection and frees r; no callback afterwards. */
void fanout__redis_free(struct fanout__redis *r);
/* The topic got its first local subscriber / lost its last one. */
void fanout__redis_topic_on(struct fanout__redis *r, const void *topic, size_t topic_len);
void fanout__redis_topic_off(struct fanout__redis *r, const void *topic, size_t topic_len);
/* Queues the PUBLISH of m's tag and body on the topic's instance (or counts a drop). */
void fanout__redis_publish(struct fanout__redis *r, const void *topic, size_t topic_len,
                           const struct fanout_msg *m);
/* Presence in Redis: HSET of the entry (and SADD of the topic to node_topics; `alone` is
 * ignored, the SADD is idempotent) / HDEL of the entry (and SREM of the topic when
 * `alone`: it was the topic's last local entry). No-ops while the instance is down. */
void fanout__redis_presence_set(struct fanout__redis *r, const void *topic, size_t topic_len,
                                const struct fanout__pentry *e, bool alone);
void fanout__redis_presence_del(struct fanout__redis *r, const void *topic, size_t topic_len,
                                const struct fanout__pentry *e, bool alone);
/* Starts an asynchronous list; returns false (nothing started) when the topic's instance
 * is not ready, and the caller answers with the local entries. */
bool fanout__redis_presence_list(struct fanout__redis *r, const void *topic, size_t topic_len,
                                 fanout_presence_list_fn *fn, void *ud);
void fanout__redis_presence_cancel(struct fanout__redis *r, const void *ud);
const char *fanout__redis_status(const struct fanout__redis *r, bool *ready);
void fanout__redis_stats(const struct fanout__redis *r, struct fanout_redis_stats *out);

/* The cmd context of the instance of `key` when it is READY, else NULL (lease.c). */
struct redisAsyncContext *fanout__redis_cmd(struct fanout__redis *r, const void *key,
                                            size_t key_len);
/* The key prefix and its length. */
const char *fanout__redis_prefix(const struct fanout__redis *r, size_t *len);
/* The cmd context of the first instance when it is READY, else NULL (registry.c). */
struct redisAsyncContext *fanout__redis_cmd_first(struct fanout__redis *r);

/* Releases every lease (lease.c); called by fanout_free before the connections close. */
void fanout__lease_free_all(struct fanout *fo);
/* Test hook: forgets every lease without releasing the keys (as a crashed process). */
void fanout__lease_abandon(struct fanout *fo);
/* Cancels every pending registry fetch (registry.c); called by fanout_free before the
 * connections close: their callbacks then only free the requests. */
void fanout__registry_free_all(struct fanout *fo);
/* Cancels every pending rate limit take (ratelimit.c); called by fanout_free before the
 * connections close. */
void fanout__ratelimit_free_all(struct fanout *fo);
/* Cancels every pending stream range (stream.c); called by fanout_free. */
void fanout__stream_free_all(struct fanout *fo);

#endif
