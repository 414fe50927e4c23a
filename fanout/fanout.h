/*
 * fanout: the subscription index and the delivery of encode-once messages.
 *
 * A topic is an opaque byte string chosen by the caller (the gateway keys topics by
 * privacy and kind, e.g. "b:pub:room1"). Subscribers are opaque pointers (`sub_ud`).
 * fanout_publish() hands one refcounted message to every local subscriber of a topic
 * through the deliver callback (the sink). A message carries an opaque body (the caller's
 * neutral wire form, which is also what a later Redis bus carries between processes) and
 * up to FANOUT_VARIANTS lazily built frames: each frame is encoded once, by the encode
 * callback, the first time a subscriber asks for that variant, and then shared by
 * refcount. fanout knows nothing of JSON, WebSockets or the protocol.
 *
 * Presence: per topic, one entry per owner (e.g. a channel): key, ref and meta bytes.
 *
 * Cluster mode (n_redis > 0): fanout_publish() also sends the message's tag and body once
 * to Redis (PUBLISH on `<prefix>bus:<topic>` of the instance chosen by hashing the topic),
 * and every process SUBSCRIBEs to the channels of the topics it has local subscribers
 * for; a message from another process becomes one fanout_msg delivered to the local
 * subscribers (from the loop, inside no fanout call). Encoded frames never cross Redis.
 * Presence is cluster-wide: every entry is also written to a Redis hash per topic, lists
 * read that hash (asynchronously), and the entries of a process that stops refreshing its
 * node key are removed by one surviving process and reported through on_presence_gone.
 * docs/REDIS.md describes the keys, channels, the envelope and the behaviour while Redis
 * is down.
 *
 * Threading: single-threaded, on the gateway's event loop. Callbacks run synchronously
 * inside the call that triggers them unless stated otherwise.
 */
#ifndef GW_FANOUT_H
#define GW_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FANOUT_VARIANTS 4 /* encodings a message may have (e.g. vsn1 text, vsn2 text, kind 4) */

struct fanout;
struct fanout_msg;
struct fanout_sub;

/*
 * An immutable, refcounted byte buffer with headroom in front of `data`, so the owner may
 * prepend a header (e.g. a WebSocket frame header) in place before sharing it.
 */
struct fanout_frame {
    uint32_t refs;       /* references: the creator's plus one per holder */
    uint32_t headroom;   /* bytes available in front of data */
    size_t len;          /* bytes at data */
    unsigned char *data; /* start of the bytes; points into mem */
    unsigned char mem[]; /* headroom + capacity */
};

/* Returns a frame with refs = 1, `headroom` bytes before data and room for `cap` bytes
 * (len = 0). Aborts on out of memory. */
struct fanout_frame *fanout_frame_new(size_t headroom, size_t cap);
struct fanout_frame *fanout_frame_ref(struct fanout_frame *f);
/* Drops one reference; frees the frame with the last. Accepts NULL. */
void fanout_frame_unref(struct fanout_frame *f);

/*
 * Encode callback: builds the frame of `variant` for message `m`. Returns a new frame
 * (refs = 1, ownership passes to fanout) or NULL when the message has no such variant
 * (e.g. a binary payload for a text-only client); NULL is remembered, not retried.
 */
typedef struct fanout_frame *fanout_encode_fn(void *ud, const struct fanout_msg *m,
                                              unsigned variant);

/*
 * Deliver callback (the sink): called once per local subscriber of the published topic
 * (minus the excluded one). `m` is borrowed for the duration of the call; the sink calls
 * fanout_msg_frame() and refs the frame it queues.
 */
typedef void fanout_deliver_fn(void *ud, void *sub_ud, struct fanout_msg *m);

struct gw_loop;

/* Redis connection state, reported on every change. */
enum fanout_redis_state {
    FANOUT_REDIS_CONNECTING = 1, /* first connection attempts, nothing failed yet */
    FANOUT_REDIS_READY = 2,      /* every instance has both connections up */
    FANOUT_REDIS_RETRYING = 3,   /* an instance failed; reconnecting with backoff */
};

/*
 * State callback: the aggregated state of all Redis instances (READY only when all are
 * ready) and a detail naming the failing instance and the reason, e.g.
 * "redis 127.0.0.1:6380: Connection refused". Called only when the state or the detail
 * changes (not once per retry), always from the loop, never from inside fanout_new() or
 * fanout_free(). `detail` is borrowed for the duration of the call.
 */
typedef void fanout_state_fn(void *ud, enum fanout_redis_state st, const char *detail);

struct fanout_presence;

/*
 * Presence-gone callback (cluster mode): the entries of `topic` that belonged to a
 * process found dead (its node key expired). Across the cluster exactly one live process
 * reports each dead entry, once. Called from the loop, inside no fanout call; pointers
 * are borrowed for the duration of the call.
 */
typedef void fanout_presence_gone_fn(void *ud, const void *topic, size_t topic_len,
                                     const struct fanout_presence *entries, size_t n);

struct fanout_config {
    fanout_encode_fn *encode;    /* builds frames; required */
    fanout_deliver_fn *deliver;  /* the sink; required */
    void *ud;                    /* passed to every callback (encode, deliver, on_state) */
    struct gw_loop *loop;        /* event loop; required when n_redis > 0 */
    const char *const *redis;    /* URLs "redis://[[user]:password@]host[:port][/db]" */
    size_t n_redis;              /* entries in redis; 0 = in-memory (no Redis) */
    const char *prefix;          /* key and channel prefix; NULL = "tidings:" */
    const char *node_id;         /* unique id of this process (1..64 bytes); NULL = generated */
    fanout_state_fn *on_state;   /* may be NULL; aggregated Redis state changes */
    unsigned presence_timeout_s; /* node key TTL (liveness of presence); 0 = 30 */
    fanout_presence_gone_fn *on_presence_gone; /* may be NULL; entries of dead nodes */
};

/*
 * Creates a fanout: in-memory when n_redis is 0, else backed by the Redis bus (the
 * strings of cfg are copied). It never blocks and never calls back: connections start on
 * the next loop turn, and a Redis that is unreachable now is retried until it appears.
 * Returns NULL on invalid config (missing callback, missing loop, malformed URL, bad
 * node id).
 */
struct fanout *fanout_new(const struct fanout_config *cfg);
/* Closes the Redis connections (after a non-blocking attempt to send what is queued),
 * then frees the index, all subscriptions and presence entries. No callback runs after it
 * returns. Accepts NULL. Must not be called from inside a fanout callback. Messages still
 * referenced elsewhere stay valid (they hold no pointer to the fanout after this). */
void fanout_free(struct fanout *fo);

/*
 * Aggregated Redis state for /readyz: returns a text (borrowed, valid until the next loop
 * turn or fanout call) and sets *ready (may be NULL) when every instance is ready.
 * In-memory mode: "not configured" and ready.
 */
const char *fanout_redis_status(const struct fanout *fo, bool *ready);
/* The node id in use (borrowed, valid until fanout_free). */
const char *fanout_node_id(const struct fanout *fo);

/* Counters of the Redis bus since fanout_new (all 0 in in-memory mode). */
struct fanout_redis_stats {
    uint64_t published;  /* PUBLISH commands queued to Redis */
    uint64_t dropped;    /* publishes not sent: instance down or its send queue full */
    uint64_t lost;       /* publishes sent but unconfirmed when a connection dropped */
    uint64_t errors;     /* publishes Redis answered with an error */
    uint64_t received;   /* bus messages of other nodes delivered locally */
    uint64_t own;        /* bus messages of this node, ignored (delivered at publish) */
    uint64_t malformed;  /* bus messages with a bad envelope, ignored */
    uint64_t reconnects; /* connections re-established after having been ready */
};

/* Fills *out with the counters (zeros in in-memory mode). */
void fanout_redis_stats(const struct fanout *fo, struct fanout_redis_stats *out);

/*
 * Messages. fanout_msg_new() copies `body` (len bytes, may be 0) and returns refs = 1.
 * The body is opaque to fanout. `tag` is a caller-defined small integer stored with it.
 */
struct fanout_msg *fanout_msg_new(struct fanout *fo, const void *body, size_t len, unsigned tag);
struct fanout_msg *fanout_msg_ref(struct fanout_msg *m);
/* Drops one reference; the last frees the body and releases the built frames. NULL ok. */
void fanout_msg_unref(struct fanout_msg *m);
/* The body and its length; valid as long as a reference is held. */
const void *fanout_msg_body(const struct fanout_msg *m, size_t *len);
unsigned fanout_msg_tag(const struct fanout_msg *m);
/*
 * The frame of `variant` (< FANOUT_VARIANTS), built on first use by the encode callback.
 * Returns a borrowed frame (valid while `m` is referenced; ref it to keep it longer) or
 * NULL when the variant does not exist for this message.
 */
struct fanout_frame *fanout_msg_frame(struct fanout_msg *m, unsigned variant);

/*
 * Subscribes `sub_ud` to `topic`. One subscriber may hold many topics; the same
 * (topic, sub_ud) pair twice is GW_EEXIST. On success *out is the subscription handle,
 * owned by fanout until fanout_unsubscribe(). Returns 0 or a negative GW_E* code. In
 * cluster mode a topic's first local subscriber makes this process SUBSCRIBE to the
 * topic's Redis channel, and its last unsubscribe makes it UNSUBSCRIBE.
 */
int fanout_subscribe(struct fanout *fo, const void *topic, size_t topic_len, void *sub_ud,
                     struct fanout_sub **out);
/* Removes the subscription; safe to call from inside the deliver callback for any
 * subscription (delivery of the current publish skips removed subscribers). NULL ok. */
void fanout_unsubscribe(struct fanout *fo, struct fanout_sub *s);

/*
 * Publishes `m` (borrowed; fanout takes its own references as needed) to every
 * subscriber of `topic` except `exclude_sub_ud` (NULL excludes none). Returns the number
 * of local subscribers it was delivered to (>= 0) or a negative GW_E* code. In cluster
 * mode the tag and body are also queued for Redis (without blocking; when the instance is
 * down the message is only delivered locally and counted as dropped); the subscribers of
 * other processes get it there, and `exclude_sub_ud` does not apply to them.
 */
int fanout_publish(struct fanout *fo, const void *topic, size_t topic_len, struct fanout_msg *m,
                   const void *exclude_sub_ud);

/* Number of topics with at least one subscriber, and subscribers of one topic. */
size_t fanout_topic_count(const struct fanout *fo);
size_t fanout_subscriber_count(const struct fanout *fo, const void *topic, size_t topic_len);
/* Total subscriptions held. */
size_t fanout_subscription_count(const struct fanout *fo);

/*
 * Calls fn once per local topic that has subscribers or presence entries, with the topic
 * bytes (borrowed for the call), its local subscriber count and its local presence entry
 * count, in no particular order. fn must not subscribe, unsubscribe or change presence.
 */
typedef void fanout_topic_fn(void *ud, const void *topic, size_t topic_len, size_t subscribers,
                             size_t presence);
void fanout_topics_foreach(const struct fanout *fo, fanout_topic_fn *fn, void *ud);

/* One presence entry. Pointers are borrowed (by the callee on input, by the caller of a
 * callback on output) and valid only during the call. */
struct fanout_presence {
    const char *key;  /* presence key */
    size_t key_len;   /* bytes */
    const char *ref;  /* unique ref of this entry (phx_ref) */
    size_t ref_len;   /* bytes */
    const char *meta; /* opaque meta bytes (the gateway stores JSON text) */
    size_t meta_len;  /* bytes */
};

/*
 * Sets the entry of `owner` on `topic`, replacing its previous one. When there was a
 * previous entry, `prev_fn` (may be NULL) is called with it before it is replaced.
 * Returns 0 or a negative GW_E* code.
 */
typedef void fanout_presence_fn(void *ud, const struct fanout_presence *p);
int fanout_presence_set(struct fanout *fo, const void *topic, size_t topic_len, const void *owner,
                        const struct fanout_presence *p, fanout_presence_fn *prev_fn, void *ud);
/* Removes the entry of `owner`; calls `fn` (may be NULL) with it first. Returns 0, or
 * GW_ENOTFOUND when the owner had none. */
int fanout_presence_del(struct fanout *fo, const void *topic, size_t topic_len, const void *owner,
                        fanout_presence_fn *fn, void *ud);

/*
 * Lists all entries of `topic`: calls `fn` once with an array of `n` entries (n may be 0).
 * In-memory mode, or when the topic's Redis instance is not ready: synchronously, with
 * the local entries. Cluster mode otherwise: later, from the loop, with the entries of
 * every live process (this one's taken from memory at answer time, each entry once); a
 * connection lost before the answer yields the local entries. Callers must not rely on
 * either, and cancel a pending answer with fanout_presence_cancel() before `ud` dies.
 */
typedef void fanout_presence_list_fn(void *ud, const struct fanout_presence *entries, size_t n);
void fanout_presence_list(struct fanout *fo, const void *topic, size_t topic_len,
                          fanout_presence_list_fn *fn, void *ud);
/* Cancels every pending (not yet answered) list whose ud is `ud`: their fn never runs.
 * No-op when there is none. */
void fanout_presence_cancel(struct fanout *fo, const void *ud);

/*
 * Leases: at most one process of the cluster holds a named lease at a time (e.g. the one
 * PostgreSQL LISTEN connection). Cluster mode: the key `<prefix>lease:<name>` on the
 * instance chosen by hashing the name holds the holder's node id with a TTL of ttl_ms.
 * Every ttl_ms/3 a script sets the key when it is absent or renews it when it is ours;
 * a process stops holding (fn(ud, false)) when the script says another node holds it, or
 * ttl_ms*2/3 after the sending of its last successful renewal (Redis slow or unreachable),
 * so before the key can expire and another process can take it. In-memory mode the lease
 * is held at once: fn(ud, true) on the next loop turn.
 * fn runs from the loop, inside no fanout call, only when the held state changes; it
 * must not release the lease nor free the fanout.
 */
typedef void fanout_lease_fn(void *ud, bool held);
/* Starts competing for lease `name` (1..200 bytes). Returns 0, GW_EEXIST when this fanout
 * already has a lease of that name, or GW_EINVAL (bad name, ttl_ms < 30, no fn, no loop). */
int fanout_lease_start(struct fanout *fo, const char *name, uint32_t ttl_ms, fanout_lease_fn *fn,
                       void *ud);
/* Stops competing; when held, deletes the key if it is still ours (another process may
 * take it at once). fn is not called. Returns 0 or GW_ENOTFOUND. fanout_free() releases
 * every lease the same way. */
int fanout_lease_release(struct fanout *fo, const char *name);
/* True when this process holds the lease now. */
bool fanout_lease_held(const struct fanout *fo, const char *name);

/*
 * Registry: one opaque blob per process (the gateway's stats JSON), shared in Redis so any
 * process can list every live one. Cluster mode: the first instance holds
 * `<prefix>stats:<node_id>` (the blob, PX ttl_ms) and the set `<prefix>stats` of node ids;
 * a fetch is one script that reads at most FANOUT_REGISTRY_MAX blobs of the set (MGET) and
 * removes the ids whose blob has expired.
 */
#define FANOUT_REGISTRY_MAX 1000 /* blobs one fetch returns at most */

/* One process's blob. Pointers are borrowed for the duration of the callback. */
struct fanout_registry_entry {
    const char *node; /* node id of the process */
    size_t node_len;  /* bytes */
    const char *data; /* the blob */
    size_t len;       /* bytes */
};

/* Stores this process's blob (len bytes) for ttl_ms (>= 1). No-op in in-memory mode and
 * while the first instance is not ready. Returns 0, or GW_EINVAL (ttl_ms 0, len 0). */
int fanout_registry_put(struct fanout *fo, const char *data, size_t len, uint32_t ttl_ms);

/*
 * Fetch callback: ok is true when the answer came from Redis (every live process's blob,
 * this one's included once it was put), false when it could not be read (n = 0).
 */
typedef void fanout_registry_fn(void *ud, bool ok, const struct fanout_registry_entry *e, size_t n);
/*
 * Reads every process's blob. In-memory mode: fn(ud, true, NULL, 0) synchronously.
 * Cluster mode with the first instance not ready: fn(ud, false, NULL, 0) synchronously.
 * Otherwise later, from the loop, inside no fanout call (a connection lost before the
 * answer gives ok = false). fanout_free() cancels pending fetches: fn never runs after it.
 */
void fanout_registry_fetch(struct fanout *fo, fanout_registry_fn *fn, void *ud);

/*
 * Rate limits: cluster-wide token buckets. Cluster mode: the hash `<prefix>rl:<key>` on
 * the instance chosen by hashing the key holds the tokens and the time of the last refill
 * (Redis TIME); a take is one script that refills by rate * elapsed up to burst, takes one
 * token when there is one, and sets a TTL of about 2 * burst / rate.
 * Fail open: in in-memory mode, while the key's instance is not ready, or when the answer
 * is lost or an error, the answer is allowed = true (synchronously when nothing was sent).
 */
typedef void fanout_ratelimit_fn(void *ud, bool allowed);
/* Takes one token of bucket `key` (refilled at `rate` tokens/s, at most `burst`). fn(ud,
 * allowed) runs once: synchronously when answered without Redis (see above; also for
 * rate <= 0 or burst < 1), else later from the loop, inside no fanout call. */
void fanout_ratelimit_take(struct fanout *fo, const char *key, double rate, double burst,
                           fanout_ratelimit_fn *fn, void *ud);
/* Cancels every pending take whose ud is `ud`: their fn never runs. fanout_free() cancels
 * them all. */
void fanout_ratelimit_cancel(struct fanout *fo, const void *ud);

/*
 * Streams (replay storage). Cluster mode: the Redis stream `<prefix>stream:<topic>` on the
 * instance chosen by hashing the topic holds stored bodies (field "b"), each with the id
 * "<ms>-<seq>" Redis gives it (the time it was added). An add is one script: XADD with
 * MAXLEN ~ maxlen, XTRIM MINID ~ (now - max_age_ms), PEXPIRE of the key to max_age_ms.
 * In-memory mode nothing is stored (adds are no-ops, ranges answer n = 0).
 */
struct fanout_stream_entry {
    uint64_t ms;      /* time the entry was added (ms since the Unix epoch, Redis clock) */
    const void *body; /* the stored body (borrowed for the callback) */
    size_t len;       /* bytes */
};

/* Stores `body` on the stream of `topic` (no-op while the instance is not ready or in
 * in-memory mode). Returns 0, or GW_EINVAL (no body, maxlen or max_age_ms 0). */
int fanout_stream_add(struct fanout *fo, const void *topic, size_t topic_len, const void *body,
                      size_t len, size_t maxlen, uint64_t max_age_ms);

/* Range callback: the entries added at or after since_ms, oldest first (n may be 0). */
typedef void fanout_stream_fn(void *ud, const struct fanout_stream_entry *e, size_t n);
/*
 * Reads at most `limit` (>= 1) entries of the stream of `topic` added at or after since_ms.
 * In-memory mode or instance not ready: fn(ud, NULL, 0) synchronously. Otherwise later,
 * from the loop, inside no fanout call (a lost connection or an error answers n = 0).
 */
void fanout_stream_range(struct fanout *fo, const void *topic, size_t topic_len, uint64_t since_ms,
                         size_t limit, fanout_stream_fn *fn, void *ud);
/* Cancels every pending range whose ud is `ud`: their fn never runs. fanout_free() cancels
 * them all. */
void fanout_stream_cancel(struct fanout *fo, const void *ud);

#endif
