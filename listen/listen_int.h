/*
 * listen_int.h: declarations shared by the files of listen/ and by its tests.
 *
 * listener.c owns the connection state machine (connect, socket watch, timers, retry),
 * jobs.c the serial query queue and the ordered event queue, order.c the exactly-once
 * bookkeeping (highest id delivered + gaps), tables.c the enabled tables, sql.c the
 * embedded SQL, the installer and the connection parameters. The generated file
 * sql_text.c (build directory) holds the SQL of listen/sql/ as byte arrays.
 */
#ifndef GW_LISTEN_INT_H
#define GW_LISTEN_INT_H

#include "listen/listen.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/base.h"

#define PG_CHANNEL            "tidings" /* the channel of the outbox notifications */
#define PG_CHANNEL_MAX        63        /* NOTIFY channel names stop at 63 bytes */
#define PG_CATCHUP_PAGE       1000      /* rows per catch-up query */
#define PG_GAPS_MAX           100000    /* most gaps remembered */
#define PG_JUMP_MAX           100000    /* an id this far from max_id restarts the count */
#define PG_CONNECT_TIMEOUT_MS 5000      /* connect (PQconnectPoll phase) timeout */
#define PG_PING_IDLE_MS       5000      /* ping after this long without input */
#define PG_PING_TIMEOUT_MS    3000      /* a ping must answer within this */
#define PG_QUERY_TIMEOUT_MS   8000      /* other queries: longest silence (no input) */
#define PG_SLOW_TIMEOUT_MS    60000     /* same for install and prune (locks, big deletes) */
#define PG_SAVE_MS            200       /* cursor saved at most this often */
#define PG_PRUNE_MS           60000     /* outbox pruned (and cursor refreshed) this often */
#define PG_TICK_MS            1000      /* housekeeping timer period */
#define PG_STABLE_MS          10000     /* READY this long resets the backoff */

/* Exactly-once bookkeeping (order.c). Ids are outbox ids, always > 0. */
struct pg_gap {
    int64_t id;       /* outbox id not delivered yet */
    uint64_t seen_ms; /* monotonic time it became a gap */
    bool done;        /* delivered (a tombstone until compaction) */
};

struct pg_order {
    int64_t max_id;      /* highest id delivered, 0 = none */
    struct pg_gap *gaps; /* ascending ids in [start, len) */
    size_t start;        /* first entry in use */
    size_t len;          /* end of the entries in use */
    size_t cap;          /* entries allocated */
    size_t live;         /* entries in use that are not done */
    uint64_t dups;       /* duplicates dropped */
    uint64_t resets;     /* restarts of the count after a jump of the ids */
    bool dirty;          /* changed since the last cursor save */
};

void pg__order_init(struct pg_order *o);
void pg__order_release(struct pg_order *o);
/* Sets the position: max_id and the gaps (any order; duplicates and ids >= max_id are
 * ignored), all first seen at now_ms. */
void pg__order_reset(struct pg_order *o, int64_t max_id, const int64_t *gaps, size_t n,
                     uint64_t now_ms);
/* Returns true when id is new (and records it as delivered), false for a duplicate. */
bool pg__order_accept(struct pg_order *o, int64_t id, uint64_t now_ms);
/* Returns true when id would be a duplicate now (and therefore forever). */
bool pg__order_is_dup(const struct pg_order *o, int64_t id);
/* Forgets gaps first seen more than window_ms before now_ms. */
void pg__order_expire(struct pg_order *o, uint64_t now_ms, uint64_t window_ms);
/* Number of open gaps. */
size_t pg__order_gap_count(const struct pg_order *o);
/* Appends the open gaps as a PostgreSQL array literal, e.g. "{3,7}". */
void pg__order_gaps_text(const struct pg_order *o, struct gw_buf *b);
/* Parses an int8[] literal "{1,2}" (NULL or "" = empty). Returns 0 or GW_EPARSE; the
 * caller frees *out. */
int pg__parse_id_array(const char *s, int64_t **out, size_t *n);
/* Parses a `tidings` payload "<kind>:<id>[:<json>]"; *json is NULL when absent.
 * Returns 0 or GW_EPARSE. */
int pg__parse_notify(const char *s, int *kind, int64_t *id, const char **json);

/* Enabled tables (tables.c). */
struct pg_tableset {
    struct pg_table *tables; /* owned, with all their strings */
    size_t n;                /* entries in tables */
    size_t cap;              /* entries allocated */
    bool loaded;             /* loaded at least once */
};

void pg__tables_release(struct pg_tableset *t);
/* Adds a table; columns_json is [{"name":..,"type":..},..]. Returns 0 or GW_EPARSE. */
int pg__tables_add(struct pg_tableset *t, const char *schema, const char *name, bool replica_full,
                   const char *columns_json);
const struct pg_table *pg__tables_find(const struct pg_tableset *t, const char *schema,
                                       const char *name);

/* Connection parameters for PQconnectStartParams (sql.c): NULL-terminated arrays. */
struct pg_params {
    char **keys; /* owned keywords, NULL-terminated */
    char **vals; /* owned values, NULL-terminated */
    size_t n;    /* entries before the terminators */
};

/* Parses conninfo (key=value or URI form), adds application_name=app (when given) and
 * the TCP keepalive settings where the user did not set them. Returns 0, or GW_EINVAL
 * with libpq's message appended to err. */
int pg__params_build(const char *conninfo, const char *app, bool keepalives, struct pg_params *p,
                     struct gw_buf *err);
void pg__params_release(struct pg_params *p);
/* The install transaction as one simple query string. */
void pg__install_query(bool compat, struct gw_buf *b);
/* First line of a libpq message, without "ERROR:  " and trailing blanks, into b. */
void pg__first_line(const char *msg, struct gw_buf *b);

/* Generated from listen/sql (sql_text.c in the build directory). */
extern const unsigned char pg__sql_main[];
extern const unsigned char pg__sql_compat[];

/* The serial query queue (jobs.c). */
enum pg_job_type {
    PG_JOB_INSTALL = 1, /* install the SQL */
    PG_JOB_LISTEN,      /* LISTEN tidings + the plain channels */
    PG_JOB_TABLES,      /* load the enabled tables */
    PG_JOB_POSITION,    /* read the cursor (first connect) */
    PG_JOB_CATCHUP,     /* one page of missed outbox rows */
    PG_JOB_FETCH,       /* the payload of one big notification */
    PG_JOB_SAVE,        /* save the cursor */
    PG_JOB_PRUNE,       /* delete old outbox rows */
    PG_JOB_PING,        /* SELECT 1 */
};

struct pg_item;

struct pg_job {
    struct pg_job *next;   /* queue link */
    enum pg_job_type type; /* what to run */
    struct pg_item *item;  /* FETCH: the queued event waiting for the payload */
    size_t rows;           /* CATCHUP: rows received */
    uint64_t sent_ms;      /* monotonic time the query was sent */
    bool ok;               /* a result reported success */
};

/* A queued event, delivered in queue order. */
struct pg_item {
    struct pg_item *next;    /* queue link */
    enum pg_event_kind kind; /* event kind */
    int64_t id;              /* outbox id (0 for NOTIFY) */
    char *channel;           /* NOTIFY: owned channel name */
    char *payload;           /* owned payload, NULL while waiting */
    size_t len;              /* payload bytes */
    bool waiting;            /* the payload is being fetched */
    bool missing;            /* fetched, but the row was gone */
};

enum pg_phase {
    PG_PHASE_IDLE = 0,   /* no connection (starting or waiting to retry) */
    PG_PHASE_CONNECTING, /* PQconnectPoll phase */
    PG_PHASE_SETUP,      /* connected: install, LISTEN, tables, position, catch-up */
    PG_PHASE_READY,      /* caught up and listening */
};

struct pg_listener {
    struct gw_loop *loop;           /* borrowed event loop */
    struct pg_params params;        /* connection parameters */
    char **channels;                /* owned plain channel names */
    size_t n_channels;              /* entries in channels */
    bool install_sql;               /* install the SQL at connect */
    bool realtime_compat;           /* with the compat schema */
    uint32_t window_s;              /* catch-up window, seconds */
    pg_listener_event_fn *on_event; /* event sink */
    pg_listener_state_fn *on_state; /* state sink or NULL */
    void *ud;                       /* for both sinks */

    PGconn *conn;                   /* the connection, NULL when IDLE */
    enum pg_phase phase;            /* where the connection is */
    struct gw_watch *watch;         /* socket watch or NULL */
    int watch_fd;                   /* fd of the watch */
    dev_t watch_dev;                /* device of that socket */
    ino_t watch_ino;                /* inode of that socket (identity across fd reuse) */
    unsigned watch_events;          /* GW_LOOP_* wanted */
    bool flushing;                  /* output pending: want write readiness */
    unsigned hup_count;             /* consecutive hang-up reports without a failure */
    struct gw_timer *retry_timer;   /* backoff, then connect */
    struct gw_timer *connect_timer; /* connect timeout */
    struct gw_timer *tick_timer;    /* housekeeping every PG_TICK_MS */
    unsigned backoff_step;          /* index into the backoff table */
    uint64_t ready_ms;              /* monotonic time READY was reached, 0 = not ready */
    uint64_t io_ms;                 /* monotonic time of the last input */
    uint64_t save_ms;               /* monotonic time of the last cursor save sent */
    uint64_t prune_ms;              /* monotonic time of the last prune sent */
    char *fatal;                    /* owned FATAL message received outside a query */

    enum pg_state state; /* reported state */
    char *detail;        /* owned detail of state */
    bool announced;      /* state has been reported at least once */

    struct pg_job *jobs;         /* queued jobs */
    struct pg_job **jobs_tail;   /* append point */
    struct pg_job *inflight;     /* the job whose query runs, or NULL */
    struct pg_item *items;       /* queued events */
    struct pg_item **items_tail; /* append point */
    bool catching_up;            /* hold the event queue until catch-up ends */
    bool have_position;          /* order holds a real position */
    bool restart_pending;        /* the coming catch-up replays a saved cursor */
    bool save_queued;            /* a SAVE job is queued or in flight */
    struct pg_order order;       /* exactly-once bookkeeping */
    struct pg_tableset tables;   /* enabled tables */
    unsigned depth;              /* nesting of loop callbacks being served */
    bool dead;                   /* freed inside a callback: destroy when depth drops */
};

/* listener.c */
/* Drops the connection, reports RETRYING "<step>: <first line of msg>" (step may be NULL)
 * and arms the retry timer. Callers must stop using l->conn (it is NULL afterwards). */
void pg__fail(struct pg_listener *l, const char *step, const char *msg);
/* Reports a state change through on_state, unless it repeats the current one. */
void pg__set_state(struct pg_listener *l, enum pg_state st, const char *detail);
/* Watches the socket for input, and for output while l->flushing. */
void pg__want(struct pg_listener *l);
/* PQflush and the write interest that follows. Returns 0, or GW_EIO after pg__fail. */
int pg__flush(struct pg_listener *l);

/* jobs.c */
/* Queues the setup jobs of a fresh connection and holds the event queue until the
 * catch-up ends. */
void pg__setup_start(struct pg_listener *l);
/* Queues a job (at the front when `front`); pg__jobs_kick() sends it. */
struct pg_job *pg__job_push(struct pg_listener *l, enum pg_job_type type, bool front);
/* Sends the next job when none is in flight. */
void pg__jobs_kick(struct pg_listener *l);
/* Forgets every job, and the queued events that the catch-up will bring back (all events
 * when all_items). */
void pg__jobs_clear(struct pg_listener *l, bool all_items);
/* Reads the socket: results of the job in flight, notifications, then delivery. */
void pg__input(struct pg_listener *l);
/* Once a second: query timeouts, gap expiry, cursor save, prune, idle ping. */
void pg__housekeeping(struct pg_listener *l, uint64_t now);
/* Best effort at free: sends the cursor save without waiting for its result. */
void pg__save_now(struct pg_listener *l);

#endif
