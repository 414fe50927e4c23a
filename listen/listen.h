/*
 * listen: everything PostgreSQL. One non-blocking libpq connection on the gateway's loop
 * (base/loop.h) that LISTENs to tidings' channels and to the plain NOTIFY channels of the
 * config, reconnects with backoff, catches up from the outbox after a reconnect or a
 * restart, and installs the SQL of listen/sql/ (schema `tidings`).
 *
 * Events go upward through one callback, in the order PostgreSQL committed them, each
 * exactly once per listener lifetime. listen/ knows nothing of WebSockets, Redis or client
 * frames: it hands over the JSON text the SQL produced (or the raw NOTIFY payload).
 */
#ifndef GW_LISTEN_H
#define GW_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_buf;
struct gw_loop;
struct pg_listener;

enum pg_event_kind {
    PG_EVENT_CHANGE = 1,    /* a row change of an enabled table (postgres_changes) */
    PG_EVENT_BROADCAST = 2, /* tidings.send / broadcast_changes (broadcast from SQL) */
    PG_EVENT_NOTIFY = 3,    /* a plain NOTIFY on a configured channel */
};

/*
 * One event. Pointers are valid only during the callback.
 * PG_EVENT_CHANGE json: {"schema","table","type","commit_timestamp","columns":[{name,type}],
 *   "record":{..}|null,"old_record":{..}|null,"errors":null|[..]} (PROTOCOL.md 5.3 `data`).
 * PG_EVENT_BROADCAST json: {"topic","event","payload":{..},"private":bool,"id":"<uuid>"}.
 * PG_EVENT_NOTIFY: json is the NOTIFY payload as sent (may not be JSON), channel is set.
 */
struct pg_event {
    enum pg_event_kind kind; /* what happened */
    int64_t id;              /* outbox id (CHANGE, BROADCAST); 0 for NOTIFY */
    const char *channel;     /* NOTIFY channel name (NOTIFY only), NUL-terminated */
    const char *json;        /* payload bytes, NUL-terminated */
    size_t len;              /* payload length in bytes */
    bool restart_catchup;    /* committed while no listener of this process was running
                                (catch-up from the saved cursor at start-up) */
};

typedef void pg_listener_event_fn(void *ud, const struct pg_event *ev);

/* Connection state, for /readyz and logs. */
enum pg_state {
    PG_STATE_CONNECTING = 1, /* connecting or installing SQL */
    PG_STATE_READY = 2,      /* LISTENing, caught up */
    PG_STATE_RETRYING = 3,   /* failed; waiting to retry (see detail) */
};

/* State callback: called on every state change; detail (never NULL) says why. */
typedef void pg_listener_state_fn(void *ud, enum pg_state st, const char *detail);

struct pg_listener_config {
    const char *conninfo;           /* libpq connection string */
    const char *const *channels;    /* plain NOTIFY channels to forward (may be NULL) */
    size_t n_channels;              /* entries in channels */
    bool install_sql;               /* install/upgrade schema tidings at connect */
    bool realtime_compat;           /* also install the `realtime` compat schema */
    uint32_t catchup_window_s;      /* outbox retention and catch-up window, seconds */
    struct gw_loop *loop;           /* the event loop; borrowed, must outlive the listener */
    pg_listener_event_fn *on_event; /* event sink; required */
    pg_listener_state_fn *on_state; /* state sink; may be NULL */
    void *ud;                       /* passed to both callbacks */
};

/* Creates the listener and starts connecting (asynchronously). Strings are copied.
 * Returns NULL on invalid config. */
struct pg_listener *pg_listener_new(const struct pg_listener_config *cfg);
/* Closes the connection and frees everything; no callback runs afterwards. NULL ok. */
void pg_listener_free(struct pg_listener *l);
/* Current state and its detail text (borrowed; valid until the next state change). */
enum pg_state pg_listener_state(const struct pg_listener *l, const char **detail);

/* A column of an enabled table. */
struct pg_column {
    const char *name; /* attribute name */
    const char *type; /* pg_type.typname, e.g. "int8", "_text" */
};

/* A table enabled with tidings.enable_changes(). */
struct pg_table {
    const char *schema;              /* schema name */
    const char *name;                /* table name */
    const struct pg_column *columns; /* in attribute order */
    size_t n_columns;                /* entries in columns */
    bool replica_full;               /* REPLICA IDENTITY FULL */
};

/*
 * Looks up an enabled table (loaded at connect and reloaded whenever enable_changes or
 * disable_changes runs). Returns NULL when the table is not enabled or the listener is
 * not connected yet. Valid until the listener next runs (do not keep it).
 */
const struct pg_table *pg_listener_table(const struct pg_listener *l, const char *schema,
                                         const char *table);

/* The SQL of listen/sql/ in install order, concatenated (static storage). */
const char *pg_sql_text(void);
/* The optional compat SQL (schema `realtime`), static storage. */
const char *pg_sql_compat_text(void);
/* Installs the SQL synchronously over a blocking connection (for `tidings sql install`).
 * Returns 0, or GW_EIO with libpq's message appended to err. */
int pg_sql_install(const char *conninfo, bool realtime_compat, struct gw_buf *err);

#endif
