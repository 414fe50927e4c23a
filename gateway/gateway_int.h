/*
 * gateway_int.h: declarations shared by the files of the gateway module.
 *
 * struct gw is the server of one process: configuration, verifier, rules, the fanout
 * index, the lws context and the metrics. struct conn is one WebSocket connection with its
 * bounded out-queue of pre-framed, refcounted frames; struct channel is one joined topic
 * of a connection. Every file here runs on the single lws event loop.
 */
#ifndef GW_GATEWAY_INT_H
#define GW_GATEWAY_INT_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "base/base.h"
#include "base/loop.h"
#include "conf/conf.h"
#include "fanout/fanout.h"
#include "gateway/codec.h"

struct json_t;
struct ev_loop;
struct ev_prepare;
struct ev_timer;
struct gw_pg;
struct pg_binding;
struct channel;
struct conn;

/* Close codes sent to clients (4000-4999 are application codes). */
#define GW_CLOSE_SLOW_CONSUMER 4008 /* out-queue limit exceeded */
#define GW_CLOSE_RATE_LIMIT    4029 /* join flood */
#define GW_CLOSE_IDLE          4000 /* no inbound frame within idle_timeout */
#define GW_CLOSE_TOO_BIG       1009 /* inbound message larger than max_frame_bytes */
#define GW_CLOSE_SHUTDOWN      1001 /* server going away */

/* Bytes of headroom in every frame: room for the largest WebSocket header (10 bytes). */
#define GW_FRAME_HEADROOM 16
/* Upper bound of one coalesced write. */
#define GW_COALESCE_MAX 65536
#define GW_FLUSH_SLICE  256 /* sockets flushed between two non-blocking loop passes */

/* Histogram of broadcast fan-out latency (seconds). */
#define GW_HIST_BUCKETS 12

struct gw_metrics {
    uint64_t connections;           /* gauge: open WebSocket connections */
    uint64_t connections_total;     /* accepted WebSocket connections */
    uint64_t channels;              /* gauge: joined channels */
    uint64_t joins_total;           /* successful joins */
    uint64_t join_errors_total;     /* refused joins */
    uint64_t messages_in_total;     /* inbound WebSocket messages */
    uint64_t messages_out_total;    /* frames queued to clients */
    uint64_t bytes_out_total;       /* bytes written to clients */
    uint64_t queue_drops_total;     /* frames dropped because a queue was full */
    uint64_t slow_consumers_total;  /* connections closed for a full queue */
    uint64_t auth_failures_total;   /* refused tokens (upgrade, join, refresh, REST) */
    uint64_t protocol_errors_total; /* malformed or unexpected frames */
    uint64_t rate_limited_total;    /* actions refused by a rate limit */
    uint64_t broadcasts_total;      /* broadcasts published */
    uint64_t rest_requests_total;   /* REST broadcast requests */
    uint64_t hist[GW_HIST_BUCKETS]; /* fan-out latency buckets (cumulative on output) */
    double hist_sum;                /* seconds */
    uint64_t hist_count;            /* observations */
};

/* Per-IP connection counts (only used when max_connections_per_ip > 0). */
struct gw_ipcount;
/* Cluster-wide per-user rate limits (climit.c). */
struct gw_climit;

struct gw {
    const struct conf *conf;          /* borrowed from main */
    struct auth *auth;                /* token verifier */
    struct auth_rules *rules;         /* authorization rules */
    struct fanout *fo;                /* subscription index */
    struct lws_context *ctx;          /* the lws context */
    struct lws_vhost *vh;             /* the one vhost */
    struct gw_loop *loop;             /* loop services for listen/ (on lws) */
    struct gw_pg *pg;                 /* PostgreSQL side, NULL without option pg */
    int listen_fd;                    /* our SO_REUSEPORT listening socket, -1 = closed */
    struct gw_watch *listen_watch;    /* its readiness watch */
    bool draining;                    /* shutdown started: no new connections */
    uint64_t drain_deadline_ms;       /* monotonic time the drain gives up */
    struct gw_metrics m;              /* counters */
    struct conn *conns;               /* all open connections (list) */
    struct gw_ipcount *ipc;           /* per-IP counts or NULL */
    struct gw_climit *climit;         /* cluster rate limit state or NULL (climit.c) */
    struct gw_bucket presence_bucket; /* process-wide presence events/s */
    uint64_t ref_seq;                 /* source of unique presence refs */
    uint64_t ref_salt;                /* random per process, mixed into refs */
    unsigned char *coalesce;          /* scratch buffer of GW_COALESCE_MAX bytes */
    struct conn **dirty;              /* connections queued to since the last flush */
    uint32_t n_dirty, cap_dirty;      /* dirty slots used (NULL = freed) / allocated */
    bool flushing;                    /* gw__conn_flush is running */
    struct gw_buf scratch;            /* reusable encode buffer */
    lws_sorted_usec_list_t sweep;     /* periodic idle / expiry sweep */
    struct ev_loop *ev;               /* libev loop (event_loop epoll) or NULL (poll) */
    struct ev_prepare *ev_prepare;    /* runs before each wait: flush, signals, drain */
    struct ev_timer *ev_drain;        /* re-checks the drain while stopping */
    bool stopping;                    /* SIGTERM/SIGINT received */
    uint64_t started_ms;              /* monotonic start time */
    char *stats_json;                 /* cached GET /admin/stats answer (owned) or NULL */
    uint64_t stats_next_ms;           /* monotonic time of the next registry refresh */
    bool stats_pending;               /* a registry fetch is unanswered */
};

/* A reply scheduled for later (join errors are delayed like the reference server). */
struct delayed {
    lws_sorted_usec_list_t sul; /* timer */
    struct conn *conn;          /* owner */
    struct fanout_frame *frame; /* frame to send */
    bool close_after;           /* close the socket after sending */
    struct delayed *next;       /* next of the owner's list */
};

struct conn {
    struct gw *gw;                 /* owner */
    struct lws *wsi;               /* the lws connection */
    enum codec_vsn vsn;            /* protocol version of the socket */
    struct auth_identity *id;      /* identity of the apikey */
    struct channel **chans;        /* joined channels (owned): &chan_inline or an array */
    struct channel *chan_inline;   /* storage of chans while the socket has one channel */
    uint32_t n_chans;              /* channels used */
    uint32_t cap_chans;            /* channels allocated */
    struct fanout_frame **q;       /* out-queue ring (owned references) */
    uint32_t q_head;               /* index of the oldest frame */
    uint32_t q_len;                /* frames queued */
    uint32_t q_cap;                /* ring capacity (power of two) */
    size_t q_bytes;                /* bytes queued */
    struct gw_buf *rx;             /* reassembly of a fragmented inbound message, or NULL */
    bool rx_binary;                /* the message being reassembled is binary */
    bool rx_overflow;              /* the current message exceeded max_frame_bytes */
    bool closing;                  /* close requested; no more frames accepted */
    bool dirty;                    /* in gw->dirty: frames to flush after this loop pass */
    bool wait_writable;            /* WRITEABLE requested: the queue drains there */
    uint16_t close_code;           /* code for the close frame */
    const char *close_reason;      /* static reason text */
    struct gw_bucket join_bucket;  /* joins per second */
    struct gw_bucket event_bucket; /* broadcast pushes per second */
    uint64_t last_rx_ms;           /* monotonic time of the last inbound frame */
    int64_t min_exp;               /* earliest channel token expiry, 0 = none */
    struct delayed *delayed;       /* pending delayed replies */
    char ip[48];                   /* peer address */
    struct conn *prev, *next;      /* gw->conns list */
    uint32_t dirty_idx;            /* slot in gw->dirty while dirty */
};

#define TOPIC_PREFIX_LEN 9 /* strlen("realtime:") */
/* The subtopic (the name given to supabase.channel()): the topic after "realtime:". */
#define CH_SUB(ch)     ((ch)->topic + TOPIC_PREFIX_LEN)
#define CH_SUB_LEN(ch) ((ch)->topic_len - TOPIC_PREFIX_LEN)

struct channel {
    struct conn *conn;               /* owner */
    char *topic;                     /* wire topic, "realtime:<sub>" (owned; join_ref follows) */
    size_t topic_len;                /* bytes */
    char *join_ref;                  /* the join's ref (in the topic's allocation) */
    struct auth_identity *id;        /* identity used for this channel */
    uint64_t token_hash;             /* hash of the access token in use, 0 = apikey */
    unsigned perms;                  /* AUTH_* bits allowed on this topic */
    bool is_private;                 /* config.private */
    bool self;                       /* config.broadcast.self */
    bool ack;                        /* config.broadcast.ack */
    bool presence;                   /* presence enabled (join or track) */
    bool tracked;                    /* has a presence entry */
    bool replaying;                  /* replay requested, answer not in yet: live is held */
    char *presence_key;              /* presence key (owned) */
    char *track_meta;                /* current tracked meta JSON text (owned) or NULL */
    struct fanout_sub *bsub;         /* broadcast subscription or NULL */
    struct fanout_sub *psub;         /* presence subscription or NULL */
    struct gw_window presence_calls; /* track/untrack calls per window */
    struct json_t *pg_params;        /* config.postgres_changes as joined (owned ref) */
    struct pg_binding *pg_bindings;  /* live postgres_changes bindings */
    int64_t *pg_ids;                 /* scratch: matching binding ids of one change */
    uint32_t pg_nids;                /* ids used */
    uint32_t pg_ids_cap;             /* ids allocated */
    uint64_t pg_seq;                 /* change counter value the ids belong to */
    struct fanout_msg **held;        /* live messages held during the replay (refs) */
    uint32_t n_held, cap_held;       /* held used / allocated */
};

/* server.c */
struct gw *gw_new(const struct conf *conf, struct auth *auth, struct auth_rules *rules,
                  struct gw_buf *err);
int gw_run(struct gw *gw);
void gw_free(struct gw *gw);
void gw_stop(struct gw *gw);

/* climit.c: cluster-wide per-user rate limits (Redis), one round trip behind */
enum gw_climit_kind {
    GW_CLIMIT_MESSAGES = 0,    /* broadcasts (WebSocket and REST) */
    GW_CLIMIT_JOINS = 1,       /* channel joins */
    GW_CLIMIT_CONNECTIONS = 2, /* WebSocket upgrades */
};

/* Returns false (the caller counts rate_limited_total) when the user (sub of id, else ip) is
 * blocked on this process because Redis recently denied one of its takes; else true, and
 * takes one token of the user's cluster bucket, whose denial blocks the user for 1 s.
 * Always true when the kind's limit is 0 or no Redis is configured. */
bool gw__climit_take(struct gw *gw, enum gw_climit_kind kind, const struct auth_identity *id,
                     const char *ip);
/* Cancels the pending takes and frees the state; call before fanout_free. NULL ok. */
void gw__climit_free(struct gw *gw);

/* conn.c: connections and the out-queue */
struct conn *gw__conn_new(struct gw *gw, struct lws *wsi, enum codec_vsn vsn,
                          struct auth_identity *id, const char *ip);
void gw__conn_free(struct conn *c);
/* Queues a frame (takes a new reference). Returns 0, or GW_ELIMIT when the queue is full:
 * the connection is then closed as a slow consumer. */
int gw__conn_enqueue(struct conn *c, struct fanout_frame *f);
/* Frames text (or binary) bytes into a new frame and queues it. */
int gw__conn_send(struct conn *c, const void *p, size_t len, bool binary);
/* Requests a close with a code; the queue is dropped when `now` is set. */
void gw__conn_close(struct conn *c, uint16_t code, const char *reason, bool now);
int gw__conn_writeable(struct conn *c);
/* Writes the queues of every connection queued to during this loop pass straight to its
 * socket (one coalesced send each); what the kernel does not take goes to lws. */
void gw__conn_flush(struct gw *gw);
/* server.c: one non-blocking loop pass from inside a flush (epoll loop only; no-op with
 * poll, whose lws_service is not re-entrant). */
void gw__poll_nowait(struct gw *gw);
int gw__conn_receive(struct conn *c, const void *in, size_t len);
/* Schedules a frame to be sent after delay_ms (0: now); may close afterwards. */
void gw__conn_send_later(struct conn *c, struct fanout_frame *f, uint32_t delay_ms,
                         bool close_after);
/* Builds a WebSocket frame (FIN, text or binary, unmasked) around len payload bytes. */
struct fanout_frame *gw__frame_new(const void *p, size_t len, bool binary);
/* Periodic checks: idle timeout and token expiry. */
void gw__conn_sweep(struct conn *c, uint64_t now_ms, int64_t now_s);

/* channel.c: protocol handling of one decoded message */
void gw__channel_dispatch(struct conn *c, struct codec_msg *m);
void gw__channel_close_all(struct conn *c);
void gw__channel_check_expiry(struct conn *c, int64_t now_s);
/* fanout on_presence_gone (ud = struct gw): publishes the leaves presence_diff of the
 * entries of a dead process on presence topic "p:<0|1>:<sub>". */
void gw__presence_gone(void *ud, const void *topic, size_t topic_len,
                       const struct fanout_presence *entries, size_t n);
/* Publishes a broadcast to (privacy, subtopic); exclude may be NULL. Returns deliveries. */
int gw__broadcast_publish(struct gw *gw, bool is_private, const char *sub, size_t sub_len,
                          struct codec_str event, struct codec_str meta, bool json,
                          const void *payload, size_t len, const struct channel *exclude);

/* Sends a `system` push on the channel: {"extension","status","message","channel"}. */
void gw__channel_system(struct channel *ch, const char *extension, const char *status,
                        const char *msg);

/* pg.c: postgres_changes, broadcast from SQL, forwarded NOTIFY channels */
struct gw_pg *gw__pg_new(struct gw *gw, struct gw_buf *err);
void gw__pg_free(struct gw_pg *p);
/* The id of a binding object, as echoed in the join reply and used in `ids`. */
int64_t gw__pg_binding_id(struct json_t *binding);
/* Subscribes the channel's bindings (after its join reply) and sends the system messages. */
void gw__pg_join(struct channel *ch, struct json_t *bindings);
/* Re-resolves the bindings after the channel's identity changed. */
void gw__pg_rebind(struct channel *ch, struct json_t *bindings);
void gw__pg_leave(struct channel *ch);
/* Readiness of the PostgreSQL side for /readyz: text, and *ready. */
const char *gw__pg_status(const struct gw_pg *p, bool *ready);
/* The fanout sink's hook: when sub_ud is pg.c's internal subscriber of the "pg:events"
 * topic, dispatches the PostgreSQL event carried by m and returns true; else false. */
bool gw__pg_bus_deliver(struct gw *gw, void *sub_ud, struct fanout_msg *m);

/* replay.c: broadcast replay for private channels (Redis Streams) */
void gw__replay_store(struct gw *gw, const char *fo_topic, size_t fo_len,
                      const struct codec_bus *bus, const void *body, size_t len);
void gw__replay_join(struct channel *ch, struct json_t *replay, const char *fo_topic,
                     size_t fo_len);
/* Holds m for a channel whose replay is pending; false when it should be delivered now. */
bool gw__replay_hold(struct channel *ch, struct fanout_msg *m);
void gw__replay_leave(struct channel *ch);
/* A new random message id (uuid text) for persisted broadcasts. */
void gw__replay_new_id(struct gw *gw, char out[40]);

/* http.c */
int gw__http_request(struct gw *gw, struct lws *wsi, const char *path, void **http_state);
int gw__http_body(struct gw *gw, struct lws *wsi, void *http_state, const void *in, size_t len);
int gw__http_body_done(struct gw *gw, struct lws *wsi, void *http_state);
void gw__http_state_free(void *http_state);
/* Answers the WebSocket upgrade filter: 0 to accept, -1 after writing an HTTP error. */
int gw__http_send(struct lws *wsi, unsigned status, const char *content_type, const char *body,
                  size_t len);

/* Reads a query argument ("name=" with the '='); returns the value inside buf or NULL. */
const char *gw__urlarg(struct lws *wsi, const char *name, char *buf, int len);

/* listener.c: the shared (SO_REUSEPORT) listening socket */
int gw__listener_open(struct gw *gw, struct gw_buf *err);
void gw__listener_close(struct gw *gw);

/* loop_lws.c: base/loop.h on lws; the "fdw" protocol callback serves its raw-file wsis. */
struct gw_loop *gw__loop_lws_new(struct lws_context *ctx, struct lws_vhost *vh);
void gw__loop_lws_free(struct gw_loop *loop);
int gw__loop_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len);

/* metrics.c */
void gw__metrics_observe(struct gw_metrics *m, double seconds);
void gw__metrics_render(const struct gw *gw, struct gw_buf *out);

/* stats.c: GET /admin/stats */
/* Refreshes this node's blob in the registry and fetches all nodes' (every 2 s; Redis
 * mode only). Called by the sweep. */
void gw__stats_tick(struct gw *gw, uint64_t now_ms);
/* The /admin/stats JSON text (borrowed, valid until the next stats call). */
const char *gw__stats_json(struct gw *gw);
void gw__stats_free(struct gw *gw);

/* ipcount in server.c */
bool gw__ip_acquire(struct gw *gw, const char *ip);
void gw__ip_release(struct gw *gw, const char *ip);

#endif
