/*
 * conf: loads struct conf from defaults, a config file, the environment and flags.
 *
 * Every option is one row of `options` below (offsetof into struct conf). conf_load()
 * zeroes the struct, applies each row's default, then the file named by `--config FILE`
 * (or env TIDINGS_CONFIG), then env TIDINGS_<NAME>, then `--name value` flags; each later
 * source overrides the earlier ones. All values go through set_value(), which parses and
 * checks them against the row (integer bounds, bool words, string choices).
 *
 * File format: one `name value` per line; blank lines and lines whose first non-blank
 * character is '#' are skipped. There are no trailing comments: the value is the rest of
 * the line, trimmed, because rule values may contain '#'. A value in double quotes may
 * hold leading/trailing blanks and the escapes \" and \\ (other escapes are errors); `""`
 * is the empty string.
 *
 * List options (`rule`) append one item per occurrence within a source, and a source that
 * sets the option replaces the items of lower sources: the flags' items replace env's,
 * env's replace the file's. An env list value holds items separated by newlines or ';'.
 */
#include "conf/conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"

#define ENV_PREFIX     "TIDINGS_"
#define ENV_CONFIG     "TIDINGS_CONFIG"
#define MAX_NAME_BYTES 64
#define HELP_COLUMNS   100 /* width of the --help text */

#define SEC_SERVER "server"
#define SEC_AUTHN  "authentication"
#define SEC_AUTHZ  "authorization"
#define SEC_PG     "postgresql"
#define SEC_REDIS  "redis"
#define SEC_LIMITS "limits"

#define OPT(n, t, d, lo, hi, ch, sec, h)                                                      \
    {                                                                                         \
        .name = #n, .type = (t), .offset = offsetof(struct conf, n), .def = (d), .min = (lo), \
        .max = (hi), .choices = (ch), .section = (sec), .help = (h)                           \
    }
#define OPT_STR(n, d, ch, sec, h)     OPT(n, CONF_STRING, d, 0, 0, ch, sec, h)
#define OPT_INT(n, d, lo, hi, sec, h) OPT(n, CONF_INT, d, lo, hi, NULL, sec, h)
#define OPT_BOOL(n, d, sec, h)        OPT(n, CONF_BOOL, d, 0, 0, NULL, sec, h)
#define OPT_LIMIT(n, d, lo, hi, h)    OPT_INT(n, d, lo, hi, SEC_LIMITS, h)

static const struct conf_option options[] = {
    OPT_STR(bind, "127.0.0.1", NULL, SEC_SERVER,
            "IP address to listen on; 0.0.0.0 or :: listens on every interface"),
    OPT_INT(port, "4000", 1, 65535, SEC_SERVER,
            "TCP port for WebSocket, REST broadcast and health endpoints"),
    OPT_STR(log_level, "info", "debug|info|warn|error", SEC_SERVER,
            "lowest level of log lines written to stderr"),
    OPT_STR(event_loop, "epoll", "epoll|poll", SEC_SERVER,
            "event loop: epoll (libev; each loop pass costs only the ready sockets) or poll "
            "(lws's own poll(), whose every pass scans all sockets; kept as a fallback)"),
    OPT_STR(log_format, "text", "text|json", SEC_SERVER,
            "log line format: text (key=value pairs) or json (one object per line)"),
    OPT_STR(demo_dir, "", NULL, SEC_SERVER,
            "directory served under /demo/ (browser demo files); empty disables /demo/"),
    OPT_INT(workers, "1", 1, 64, SEC_SERVER,
            "processes serving the port together (SO_REUSEPORT); without redis they share no "
            "channels, so use more than 1 only with redis"),
    OPT_INT(shutdown_timeout, "10", 1, 600, SEC_SERVER,
            "seconds a SIGTERM drain may take: stop accepting, close sockets with 1001 so "
            "clients reconnect elsewhere, flush queues, then exit"),
    OPT_STR(admin_secret, "", NULL, SEC_SERVER,
            "secret accepted as 'Authorization: Bearer SECRET' by GET /admin/stats (besides "
            "tokens of role admin or super_admin); empty = admin tokens only"),
    OPT_STR(jwt_secret, "", NULL, SEC_AUTHN,
            "HS256 secret that signs access tokens (the project's JWT secret); empty = none"),
    OPT_STR(jwt_public_key, "", NULL, SEC_AUTHN,
            "path of a PEM public key (RSA or P-256) for RS256/ES256 tokens; empty = none"),
    OPT_STR(jwks_file, "", NULL, SEC_AUTHN,
            "path of a JWKS JSON file; each token's key is chosen by its kid; empty = none"),
    OPT_STR(anon_key, "", NULL, SEC_AUTHN,
            "opaque API key (e.g. sb_publishable_...) accepted as apikey and access token with "
            "role anon and no expiry; empty = none"),
    OPT_STR(role_claim, "role", NULL, SEC_AUTHN, "JWT claim that holds the caller's role"),
    OPT_INT(jwt_leeway, "30", 0, 3600, SEC_AUTHN,
            "clock skew tolerated when checking exp, nbf and iat, in seconds"),
    OPT(rule, CONF_LIST, "", 0, 0, NULL, SEC_AUTHZ,
        "access rule 'allow|deny public|private|any ACTIONS TOPIC [CLAIM=V1|V2 ...]'; repeat "
        "it for more rules, the first match decides"),
    OPT_BOOL(public_default, "yes", SEC_AUTHZ,
             "allow every action on public channels when no rule matches"),
    OPT_BOOL(private_only, "no", SEC_AUTHZ,
             "reject joins of public channels (only config.private channels are allowed)"),
    OPT_STR(pg, "", NULL, SEC_PG,
            "libpq connection string of the database to LISTEN to (e.g. 'host=127.0.0.1 "
            "dbname=app user=tidings'); empty = no postgres_changes"),
    OPT_BOOL(pg_install_sql, "yes", SEC_PG,
             "install or upgrade the SQL of schema tidings when connecting (needs CREATE rights); "
             "'tidings sql print' shows it for manual installation"),
    OPT_BOOL(pg_realtime_compat, "no", SEC_PG,
             "also install schema realtime with send() and broadcast_changes() so Supabase "
             "triggers work unchanged"),
    OPT(notify_channel, CONF_LIST, "", 0, 0, NULL, SEC_PG,
        "'CHANNEL [TOPIC]': forward plain NOTIFYs on CHANNEL as broadcasts (event = CHANNEL) to "
        "public topic TOPIC (default CHANNEL); repeat for more channels"),
    OPT_INT(catchup_window, "300", 10, 86400, SEC_PG,
            "seconds of changes kept in tidings.outbox and replayed after a reconnect or restart"),
    OPT(row_rule, CONF_LIST, "", 0, 0, NULL, SEC_PG,
        "row visibility 'TABLE all|COLUMN={CLAIM} [CLAIM=V1|V2 ...]' for postgres_changes; first "
        "match decides, no match = no rows"),
    OPT(redis, CONF_LIST, "", 0, 0, NULL, SEC_REDIS,
        "Redis URL 'redis://[[user]:password@]host[:port][/db]' of the cross-process bus; repeat "
        "it to hash topics over several instances; none = processes share nothing"),
    OPT_STR(redis_prefix, "tidings:", NULL, SEC_REDIS, "prefix of every Redis key and channel"),
    OPT_INT(replay_max_len, "1000", 0, 1000000, SEC_REDIS,
            "persisted broadcasts kept per private topic in a Redis stream for replay "
            "(config.broadcast.replay); 0 stores none"),
    OPT_INT(replay_max_age, "86400", 1, 31536000, SEC_REDIS,
            "seconds a persisted broadcast stays replayable"),
    OPT_INT(presence_timeout, "30", 2, 3600, SEC_REDIS,
            "seconds after which the presence entries of a process that stopped refreshing its "
            "Redis node key (crashed) are removed and announced as leaves by another process"),
    OPT_LIMIT(max_connections, "100000", 1, 10000000,
              "concurrent WebSocket connections for the whole process"),
    OPT_LIMIT(max_connections_per_ip, "0", 0, 10000000,
              "concurrent WebSocket connections from one client IP address; 0 = unlimited"),
    OPT_LIMIT(max_channels_per_socket, "100", 1, 10000,
              "channels one WebSocket may have joined at the same time"),
    OPT_LIMIT(max_joins_per_second, "100", 1, 100000,
              "joins per second on one WebSocket; above it the join fails and the socket closes"),
    OPT_LIMIT(max_events_per_second, "100", 1, 1000000,
              "broadcast messages per second one WebSocket may send; above it the channel closes"),
    OPT_LIMIT(cluster_messages_per_second, "1000", 0, 1000000,
              "broadcast messages per second one user (token sub, else client IP) may send "
              "across the cluster (Redis token bucket, approximate); 0 = off"),
    OPT_LIMIT(cluster_joins_per_second, "100", 0, 100000,
              "joins per second one user may make across the cluster (Redis); 0 = off"),
    OPT_LIMIT(cluster_connections_per_second, "50", 0, 100000,
              "new WebSocket connections per second one user or IP may open across the "
              "cluster (Redis); 0 = off"),
    OPT_LIMIT(max_presence_events_per_second, "1000", 1, 1000000,
              "presence changes per second for the whole process; above it the channel closes"),
    OPT_LIMIT(max_presence_calls, "5", 1, 100000,
              "presence track/untrack calls per channel within presence_calls_window"),
    OPT_LIMIT(presence_calls_window, "30", 1, 3600,
              "length of the window that max_presence_calls counts in, in seconds"),
    OPT_LIMIT(max_payload_bytes, "3072000", 16, 100000000,
              "largest broadcast payload or presence state, in bytes"),
    OPT_LIMIT(max_frame_bytes, "5000000", 1024, 100000000,
              "largest inbound WebSocket message, in bytes; a larger one closes the socket"),
    OPT_LIMIT(max_topic_bytes, "255", 16, 255,
              "longest wire topic, in bytes, including the 9-byte \"realtime:\" prefix"),
    OPT_LIMIT(max_queue_bytes, "4194304", 4096, 1073741824,
              "bytes waiting to be sent to one WebSocket; a client further behind is "
              "disconnected as too slow"),
    OPT_LIMIT(max_queue_messages, "1024", 16, 1000000,
              "messages waiting to be sent to one WebSocket; a client further behind is "
              "disconnected as too slow"),
    OPT_LIMIT(max_rest_body_bytes, "4000000", 1024, 100000000,
              "largest body of a REST broadcast request, in bytes"),
    OPT_LIMIT(max_rest_batch, "100", 1, 100000, "messages in one REST broadcast request"),
    OPT_LIMIT(max_header_bytes, "8192", 1024, 65536,
              "largest HTTP request head (request line with the URL, plus headers), in bytes"),
    OPT_LIMIT(idle_timeout, "60", 10, 86400,
              "seconds without an inbound frame before a WebSocket is closed; clients send a "
              "heartbeat every 25 s, so keep it at 50 or more"),
    OPT_LIMIT(handshake_timeout, "10", 1, 300,
              "seconds a client has to send its HTTP request and finish the WebSocket upgrade"),
    OPT_LIMIT(join_error_delay_ms, "5000", 0, 9000,
              "delay before a join error reply, in milliseconds; slows retry loops, must stay "
              "below the client's 10000 ms join timeout"),
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* Where a value comes from, for error messages and list item origins. */
struct source {
    const char *where;  /* error prefix: "path:line: name", "env TIDINGS_X" or "flag --x" */
    const char *origin; /* list item origin: "path:line", "env TIDINGS_X" or "flag --x" */
};

const struct conf_option *
conf_options(size_t *n)
{
    if (n)
        *n = N_OPTIONS;
    return options;
}

static void *
field(struct conf *c, const struct conf_option *o)
{
    return (char *)c + o->offset;
}

static const struct conf_option *
find_option(const char *name, size_t len, bool dashes)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *o = options[i].name;
        size_t k = 0;
        while (k < len && o[k] && (o[k] == name[k] || (dashes && o[k] == '_' && name[k] == '-')))
            k++;
        if (k == len && o[k] == '\0')
            return &options[i];
    }
    return NULL;
}

static void
list_append(struct conf_list *l, const char *value, const char *origin)
{
    l->items = gw_xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
    l->items[l->n].value = gw_xstrdup(value);
    l->items[l->n].origin = gw_xstrdup(origin);
    l->n++;
}

void
conf_list_release(struct conf_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].value);
        free(l->items[i].origin);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void
conf_release(struct conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct conf_option *o = &options[i];
        if (o->type == CONF_STRING)
            free(*(char **)field(c, o));
        else if (o->type == CONF_LIST)
            conf_list_release(field(c, o));
    }
    memset(c, 0, sizeof(*c));
}

static int fail(struct gw_buf *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends the formatted message to err (when not NULL) and returns code. */
static int
fail(struct gw_buf *err, int code, const char *fmt, ...)
{
    va_list ap, ap2;
    int n;

    if (!err)
        return code;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    if (n > 0) {
        vsnprintf(gw_buf_reserve(err, (size_t)n + 1), (size_t)n + 1, fmt, ap2);
        err->len += (size_t)n;
    }
    va_end(ap2);
    va_end(ap);
    return code;
}

/* Returns a malloc'd "a: b" (the caller frees it). */
static char *
join2(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = gw_xmalloc(na + nb + 3);

    memcpy(s, a, na);
    memcpy(s + na, ": ", 2);
    memcpy(s + na + 2, b, nb + 1);
    return s;
}

static int
parse_int(const struct conf_option *o, const char *s, int *out, const struct source *src,
          struct gw_buf *err)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (s[0] == '\0' || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) || *end != '\0')
        return fail(err, GW_EINVAL, "%s: '%s' is not an integer", src->where, s);
    if (errno == ERANGE || v < o->min || v > o->max)
        return fail(err, GW_EINVAL, "%s: %s is out of range %ld..%ld", src->where, s, o->min,
                    o->max);
    *out = (int)v;
    return 0;
}

static int
parse_bool(const char *s, bool *out, const struct source *src, struct gw_buf *err)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return fail(err, GW_EINVAL, "%s: '%s' is not a boolean (use yes or no)", src->where, s);
}

/* True when s is one of the '|'-separated words of choices. */
static bool
is_choice(const char *choices, const char *s)
{
    size_t n = strlen(s);

    for (const char *p = choices; *p;) {
        size_t k = strcspn(p, "|");
        if (k == n && strncmp(p, s, n) == 0)
            return true;
        p += k + (p[k] == '|');
    }
    return false;
}

static int
parse_string(const struct conf_option *o, const char *s, char **out, const struct source *src,
             struct gw_buf *err)
{
    if (o->choices && !is_choice(o->choices, s))
        return fail(err, GW_EINVAL, "%s: '%s' is not one of %s", src->where, s, o->choices);
    free(*out);
    *out = gw_xstrdup(s);
    return 0;
}

/* Parses `value` for option `o` and stores it in *c (a list gets one more item). */
static int
set_value(struct conf *c, const struct conf_option *o, const char *value, const struct source *src,
          struct gw_buf *err)
{
    switch (o->type) {
    case CONF_STRING:
        return parse_string(o, value, field(c, o), src, err);
    case CONF_INT:
        return parse_int(o, value, field(c, o), src, err);
    case CONF_BOOL:
        return parse_bool(value, field(c, o), src, err);
    case CONF_LIST:
        list_append(field(c, o), value, src->origin);
        return 0;
    }
    return GW_EINVAL;
}

static int
set_defaults(struct conf *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct conf_option *o = &options[i];
        struct source src = { .where = o->name, .origin = "default" };
        int rc;
        if (o->type == CONF_LIST)
            continue;
        rc = set_value(c, o, o->def, &src, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- config file ---- */

static char *
trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        e--;
    *e = '\0';
    return s;
}

/*
 * Removes the double quotes around v in place and resolves \" and \\. Returns NULL, or a
 * static message about the malformed value. Values without a leading '"' are untouched.
 */
static const char *
unquote(char *v)
{
    char *r = v + 1, *w = v;

    if (v[0] != '"')
        return NULL;
    for (; *r && *r != '"'; r++) {
        if (*r == '\\') {
            r++;
            if (*r != '"' && *r != '\\')
                return "invalid escape in quoted value (only \\\" and \\\\ are allowed)";
        }
        *w++ = *r;
    }
    if (*r != '"')
        return "unterminated quoted value";
    if (r[1] != '\0')
        return "characters after the closing quote";
    *w = '\0';
    return NULL;
}

/* Applies one line of the file; `loc` is "path:line". */
static int
apply_line(struct conf *c, char *line, const char *loc, struct gw_buf *err)
{
    char *name = trim(line), *value, *where = NULL;
    const struct conf_option *o;
    const char *bad;
    size_t n;
    int rc;

    if (name[0] == '\0' || name[0] == '#')
        return 0;
    n = strcspn(name, " \t");
    value = trim(name + n);
    name[n] = '\0';
    o = find_option(name, n, false);
    if (!o)
        return fail(err, GW_EINVAL, "%s: unknown option '%s'", loc, name);
    where = join2(loc, o->name);
    bad = value[0] == '\0' ? "missing value" : unquote(value);
    if (bad)
        rc = fail(err, GW_EINVAL, "%s: %s", where, bad);
    else
        rc = set_value(c, o, value, &(struct source){ .where = where, .origin = loc }, err);
    free(where);
    return rc;
}

static int
load_file(struct conf *c, const char *path, struct gw_buf *err)
{
    FILE *f = fopen(path, "r");
    size_t cap = 0, lineno = 0, loc_size = strlen(path) + 24;
    char *line = NULL, *loc = NULL;
    int rc = 0;

    if (!f)
        return fail(err, GW_EIO, "cannot read config file '%s': %s", path, strerror(errno));
    loc = gw_xmalloc(loc_size);
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        snprintf(loc, loc_size, "%s:%zu", path, ++lineno);
        rc = apply_line(c, line, loc, err);
    }
    if (rc == 0 && ferror(f))
        rc = fail(err, GW_EIO, "cannot read config file '%s': %s", path, strerror(errno));
    free(loc);
    free(line);
    fclose(f);
    return rc;
}

/* ---- environment ---- */

/* Returns the value of env variable `key` in envp (the first occurrence), or NULL. */
static const char *
find_env(char **envp, const char *key)
{
    size_t n = strlen(key);

    for (size_t i = 0; envp && envp[i]; i++) {
        if (strncmp(envp[i], key, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    }
    return NULL;
}

/* Writes "TIDINGS_" and the upper-cased option name to key (n bytes). */
static void
env_key(const char *name, char *key, size_t n)
{
    snprintf(key, n, "%s%s", ENV_PREFIX, name);
    for (char *p = key; *p; p++)
        *p = (char)toupper((unsigned char)*p);
}

/* Replaces list `o` with the items of v, separated by newlines or ';'. */
static void
env_list(struct conf *c, const struct conf_option *o, const char *v, const char *origin)
{
    struct conf_list *l = field(c, o);

    conf_list_release(l);
    while (*v) {
        size_t k = strcspn(v, "\n;");
        char *item = gw_xstrndup(v, k);
        char *t = trim(item);
        if (t[0] != '\0')
            list_append(l, t, origin);
        free(item);
        v += k + (v[k] != '\0');
    }
}

static int
load_env(struct conf *c, char **envp, struct gw_buf *err)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct conf_option *o = &options[i];
        char key[MAX_NAME_BYTES], where[MAX_NAME_BYTES + 8];
        const char *v;
        int rc;

        env_key(o->name, key, sizeof(key));
        v = find_env(envp, key);
        if (!v)
            continue;
        snprintf(where, sizeof(where), "env %s", key);
        if (o->type == CONF_LIST) {
            env_list(c, o, v, where);
            continue;
        }
        rc = set_value(c, o, v, &(struct source){ .where = where, .origin = where }, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- command line ---- */

enum arg_kind {
    ARG_OPTION,     /* a known option with its value */
    ARG_CONFIG,     /* --config FILE */
    ARG_UNKNOWN,    /* an unknown flag, with the value that followed it or NULL */
    ARG_POSITIONAL, /* an argument that is not a flag */
};

/* One argument of argv, as classified by next_arg(). */
struct arg {
    enum arg_kind kind;          /* what it is */
    const struct conf_option *o; /* for ARG_OPTION */
    const char *flag;            /* the argv text of the flag (or the positional argument) */
    size_t flag_len;             /* bytes of the flag name, "--" included, before any '=' */
    const char *value;           /* the value, or NULL (ARG_UNKNOWN without one) */
    const char *next;            /* the following argument when it was taken as the value */
};

/*
 * Classifies argv[*i] (and the value after it) into *a and advances *i. A flag's value is
 * the text after '=' or else the next argument unless that starts with "--". Returns 0 or
 * GW_EINVAL when a known flag has no value.
 */
static int
next_arg(int argc, char **argv, int *i, struct arg *a, struct gw_buf *err)
{
    const char *s = argv[(*i)++], *eq;

    *a = (struct arg){ .kind = ARG_POSITIONAL, .flag = s, .flag_len = strlen(s) };
    if (strncmp(s, "--", 2) != 0)
        return 0;
    eq = strchr(s, '=');
    a->flag_len = eq ? (size_t)(eq - s) : strlen(s);
    a->o = find_option(s + 2, a->flag_len - 2, true);
    a->kind = a->o ? ARG_OPTION : ARG_UNKNOWN;
    if (!a->o && a->flag_len == 8 && strncmp(s, "--config", 8) == 0)
        a->kind = ARG_CONFIG;
    if (eq)
        a->value = eq + 1;
    else if (*i < argc && strncmp(argv[*i], "--", 2) != 0)
        a->value = a->next = argv[(*i)++];
    if (!a->value && a->kind != ARG_UNKNOWN)
        return fail(err, GW_EINVAL, "flag %.*s: missing value", (int)a->flag_len, s);
    return 0;
}

/* Checks argv and returns in *config the last --config value (or leaves it). */
static int
scan_args(int argc, char **argv, bool collect, const char **config, struct gw_buf *err)
{
    struct arg a;

    for (int i = 0; i < argc;) {
        int rc = next_arg(argc, argv, &i, &a, err);
        if (rc < 0)
            return rc;
        if (a.kind == ARG_CONFIG)
            *config = a.value;
        else if (a.kind == ARG_UNKNOWN && !collect)
            return fail(err, GW_EINVAL, "unknown flag '%.*s'", (int)a.flag_len, a.flag);
        else if (a.kind == ARG_POSITIONAL && !collect)
            return fail(err, GW_EINVAL, "unexpected argument '%s'", a.flag);
    }
    return 0;
}

/* Applies one known flag (origin: the flag as typed). The first flag of a list option drops the
 * lower sources' items. */
static int
apply_flag(struct conf *c, const struct arg *a, bool *list_seen, struct gw_buf *err)
{
    char where[MAX_NAME_BYTES + 16];
    size_t idx = (size_t)(a->o - options);

    snprintf(where, sizeof(where), "flag %.*s", (int)a->flag_len, a->flag);
    if (a->o->type == CONF_LIST && !list_seen[idx]) {
        conf_list_release(field(c, a->o));
        list_seen[idx] = true;
    }
    return set_value(c, a->o, a->value, &(struct source){ .where = where, .origin = where }, err);
}

static int
load_flags(struct conf *c, int argc, char **argv, struct conf_list *extra, struct gw_buf *err)
{
    bool list_seen[N_OPTIONS] = { false };
    struct arg a;
    int rc = 0;

    for (int i = 0; i < argc && rc == 0;) {
        rc = next_arg(argc, argv, &i, &a, err);
        if (rc < 0)
            break;
        if (a.kind == ARG_OPTION) {
            rc = apply_flag(c, &a, list_seen, err);
        } else if (a.kind != ARG_CONFIG && extra) {
            list_append(extra, a.flag, "argv");
            if (a.next)
                list_append(extra, a.next, "argv");
        }
    }
    return rc;
}

int
conf_load(struct conf *c, int argc, char **argv, char **envp, struct conf_list *extra,
          struct gw_buf *err)
{
    const char *config = NULL;
    int rc;

    rc = set_defaults(c);
    if (rc == 0)
        rc = scan_args(argc, argv, extra != NULL, &config, err);
    if (rc < 0)
        return rc;
    if (!config)
        config = find_env(envp, ENV_CONFIG);
    if (config && config[0] != '\0')
        rc = load_file(c, config, err);
    if (rc == 0)
        rc = load_env(c, envp, err);
    if (rc == 0)
        rc = load_flags(c, argc, argv, extra, err);
    return rc;
}

/* ---- --help ---- */

static void
metavar(const struct conf_option *o, char *buf, size_t n)
{
    const char *m = "VALUE";

    if (o->type == CONF_INT)
        m = "N";
    else if (o->type == CONF_BOOL)
        m = "yes|no";
    else if (o->choices)
        m = o->choices;
    snprintf(buf, n, "--%s %s", o->name, m);
}

/* Writes text in lines of at most `room` bytes (longer words stay whole), each after the
 * first indented by `indent` blanks. */
static void
print_wrapped(FILE *out, const char *text, int indent, size_t room)
{
    while (strlen(text) > room) {
        size_t cut = room;
        while (cut > 0 && text[cut] != ' ')
            cut--;
        if (cut == 0)
            cut = strcspn(text, " ");
        fprintf(out, "%.*s\n%*s", (int)cut, text, indent, "");
        text += cut + (text[cut] == ' ');
    }
    fprintf(out, "%s\n", text);
}

static void
print_option(FILE *out, const struct conf_option *o, int width)
{
    char flag[128];
    struct gw_buf b;

    gw_buf_init(&b);
    metavar(o, flag, sizeof(flag));
    fprintf(out, "  %-*s  ", width, flag);
    gw_buf_append_str(&b, o->help);
    if (o->type == CONF_LIST)
        gw_buf_printf(&b, " (repeatable; default: none)");
    else if (o->type == CONF_INT)
        gw_buf_printf(&b, " (default: %s; range %ld..%ld)", o->def, o->min, o->max);
    else
        gw_buf_printf(&b, " (default: %s)", o->def[0] ? o->def : "\"\"");
    print_wrapped(out, b.data, width + 4, HELP_COLUMNS - (size_t)width - 4);
    gw_buf_release(&b);
}

/* Calls print_option() for the rows of `section`. */
static void
print_section(FILE *out, const char *section, int width)
{
    fprintf(out, "\n%s:\n", section);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (strcmp(options[i].section, section) == 0)
            print_option(out, &options[i], width);
    }
}

void
conf_print_help(FILE *out, const char *prog)
{
    static const char *const sections[] = { SEC_SERVER, SEC_AUTHN, SEC_AUTHZ,
                                            SEC_PG,     SEC_REDIS, SEC_LIMITS };
    char flag[128];
    int width = 0;

    for (size_t i = 0; i < N_OPTIONS; i++) {
        metavar(&options[i], flag, sizeof(flag));
        if ((int)strlen(flag) > width)
            width = (int)strlen(flag);
    }
    fprintf(out, "usage: %s [serve] [--config FILE] [--NAME VALUE ...]\n", prog);
    fprintf(out,
            "       %s token [--role ROLE] [--sub SUB] [--ttl SECONDS] "
            "[--claim NAME=VALUE ...]\n",
            prog);
    fprintf(out, "       %s --help | --version\n", prog);
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
        print_section(out, sections[i], width);
    fputs("\nEvery option can also be set:\n"
          "  in the config file    name value            (--config FILE or env TIDINGS_CONFIG)\n"
          "  in the environment    TIDINGS_<NAME>=value  (upper case, e.g. TIDINGS_PORT=4001)\n"
          "  on the command line   --name value or --name=value (or --max-connections style)\n"
          "Precedence: flag > env > config file > default.\n"
          "Bools take yes|no|true|false|on|off|1|0. `rule` items from flags replace those from\n"
          "env, which replace those from the file; in env, separate rules with newlines or ';'.\n"
          "Rule syntax, examples and every option: conf/tidings.conf.example.\n",
          out);
}
