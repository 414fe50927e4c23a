/*
 * conf: the configuration of tidings in one validated struct.
 *
 * Sources, lowest to highest precedence: built-in defaults, the config file
 * (`--config FILE` or env TIDINGS_CONFIG; Redis-style "name value" lines, '#' comments),
 * environment variables TIDINGS_<NAME> (upper case), then command-line flags `--name value`
 * or `--name=value`. Every option is a row of one table (name, type, default, bounds,
 * help); the help text and conf/tidings.conf.example are checked against that table.
 * List options (e.g. `rule`) may repeat; each item remembers where it came from
 * ("file:line", "env", "flag") so later validation can point at it.
 */
#ifndef GW_CONF_H
#define GW_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct gw_buf;

/* One item of a repeatable option. */
struct conf_item {
    char *value;  /* owned */
    char *origin; /* owned: "path:line", "env TIDINGS_X" or "flag --x" */
};

struct conf_list {
    struct conf_item *items; /* owned array */
    size_t n;                /* items used */
};

struct conf {
    /* server */
    char *bind;           /* listen address */
    int port;             /* listen port */
    char *log_level;      /* debug|info|warn|error */
    char *event_loop;     /* epoll|poll */
    char *log_format;     /* text|json */
    char *demo_dir;       /* directory served at /demo/, "" = no demo */
    int workers;          /* processes sharing the port (SO_REUSEPORT) */
    int shutdown_timeout; /* seconds a SIGTERM drain may take */
    char *admin_secret;   /* Bearer secret for /admin/stats, "" = admin tokens only */
    /* authentication */
    char *jwt_secret;     /* HS256 secret, "" = none */
    char *jwt_public_key; /* PEM file path, "" = none */
    char *jwks_file;      /* JWKS file path, "" = none */
    char *anon_key;       /* opaque API key accepted as role anon, "" = none */
    char *role_claim;     /* claim holding the role */
    int jwt_leeway;       /* seconds */
    /* authorization */
    struct conf_list rule; /* `rule` lines, in order */
    bool public_default;   /* allow public topics no rule matches */
    bool private_only;     /* reject joins of public channels */
    /* postgresql */
    char *pg;                        /* libpq connection string, "" = no database */
    bool pg_install_sql;             /* install/upgrade schema tidings at start */
    bool pg_realtime_compat;         /* also install the `realtime` compat schema */
    struct conf_list notify_channel; /* `CHANNEL [TOPIC]` plain NOTIFY channels to forward */
    int catchup_window;              /* seconds of outbox kept for catch-up */
    struct conf_list row_rule;       /* `row_rule` lines, in order */
    /* redis */
    struct conf_list redis; /* Redis URLs; topics are hashed over them */
    char *redis_prefix;     /* key and channel prefix */
    int replay_max_len;     /* stored broadcasts per private topic for replay, 0 = none */
    int replay_max_age;     /* seconds a stored broadcast stays replayable */
    int presence_timeout;   /* seconds before a silent node's presence is dropped */
    /* limits */
    int max_connections;                /* concurrent WebSocket connections */
    int max_connections_per_ip;         /* 0 = unlimited */
    int max_channels_per_socket;        /* joined channels per socket */
    int max_joins_per_second;           /* per socket, token bucket */
    int max_events_per_second;          /* broadcast pushes per socket */
    int cluster_messages_per_second;    /* per user across the cluster; 0 = off */
    int cluster_joins_per_second;       /* per user across the cluster; 0 = off */
    int cluster_connections_per_second; /* new connections per user/IP; 0 = off */
    int max_presence_events_per_second; /* presence changes per process */
    int max_presence_calls;             /* track/untrack per channel per window */
    int presence_calls_window;          /* seconds */
    int max_payload_bytes;              /* broadcast payload / presence meta */
    int max_frame_bytes;                /* inbound WebSocket message */
    int max_topic_bytes;                /* wire topic including "realtime:" */
    int max_queue_bytes;                /* per-connection out-queue, bytes */
    int max_queue_messages;             /* per-connection out-queue, frames */
    int max_rest_body_bytes;            /* REST request body */
    int max_rest_batch;                 /* messages per REST batch */
    int max_header_bytes;               /* HTTP request headers incl. the URL */
    int idle_timeout;                   /* seconds without an inbound frame before close */
    int handshake_timeout;              /* seconds for the HTTP / upgrade phase */
    int join_error_delay_ms;            /* delay before a join error reply */
};

/* Types of option rows. */
enum conf_type {
    CONF_STRING,
    CONF_INT,
    CONF_BOOL,
    CONF_LIST,
};

/* One row of the option table. */
struct conf_option {
    const char *name;    /* option name, lower case with '_' */
    enum conf_type type; /* value type */
    size_t offset;       /* offset of the field in struct conf */
    const char *def;     /* default as text */
    long min;            /* bounds for CONF_INT */
    long max;            /* bounds for CONF_INT */
    const char *choices; /* "a|b|c" for enumerated strings, or NULL */
    const char *section; /* heading in --help and the example file */
    const char *help;    /* one-line description */
};

/* The option table and its length. Static storage. */
const struct conf_option *conf_options(size_t *n);

/*
 * Loads the configuration: defaults, then the file named by `--config FILE` in argv (or
 * env TIDINGS_CONFIG), then env (envp: NULL-terminated "NAME=value" strings), then the
 * flags in argv[0..argc). argv holds flags only (no program name, no subcommand).
 * Arguments that are not known options are an error unless `extra` is non-NULL, in which
 * case they are collected there in order (values after unknown flags included).
 * Returns 0, or GW_EINVAL / GW_EIO with one message (e.g. "tidings.conf:12: unknown option
 * 'prot'") appended to err. On failure *c is still safe to conf_release().
 */
int conf_load(struct conf *c, int argc, char **argv, char **envp, struct conf_list *extra,
              struct gw_buf *err);

/* Frees every string of *c and zeroes it. Accepts a zeroed struct. */
void conf_release(struct conf *c);
/* Frees the items of a list. */
void conf_list_release(struct conf_list *l);

/* Prints the --help text: usage and every option with its default, grouped by section. */
void conf_print_help(FILE *out, const char *prog);

#endif
