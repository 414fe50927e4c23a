/*
 * opts.c: the command line of tidings-load (load.h, load_cli.md). The options are a table
 * (name, kind, target, bounds, help); lt_opts_parse() walks argv against it and
 * lt_opts_check() applies what the table cannot express: required options, loopback-only
 * host, enumerations, and the automatic process and source-address counts.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "loadtest/load.h"

enum kind {
    K_INT = 0,  /* unsigned integer in [min, max] */
    K_NUM = 1,  /* floating point number in [min, max] */
    K_STR = 2,  /* string */
    K_PID = 3,  /* process id */
    K_PIDS = 4, /* comma-separated process ids (--gateway-pid) */
    K_ENUM = 5, /* one of the words in `words`, stored as its index (int) */
    K_U64 = 6,  /* 64-bit unsigned integer */
};

struct opt {
    const char *name;  /* flag without the leading "--" */
    enum kind kind;    /* value type */
    size_t off;        /* offset of the field in struct lt_opts */
    double min, max;   /* bounds (numbers) */
    const char *words; /* K_ENUM: the words, separated by '|'; their index is stored */
    const char *help;  /* one line of help */
};

#define F(field) offsetof(struct lt_opts, field)

static const struct opt opts[] = {
    { "host", K_STR, F(host), 0, 0, NULL, "server address, loopback only (127.0.0.1)" },
    { "port", K_INT, F(port), 1, 65535, NULL, "server port (required)" },
    { "token", K_STR, F(token), 0, 0, NULL, "apikey JWT (required for --target tidings)" },
    { "target", K_ENUM, F(target), 0, 0, "tidings|simple",
      "tidings (supabase-js protocol) | simple (GET /sub/T, POST /pub/T) (tidings)" },
    { "clients", K_INT, F(clients), 1, 2000000, NULL, "subscriber clients (1000)" },
    { "procs", K_INT, F(procs), 1, LT_MAX_PROCS, NULL,
      "subscriber processes (auto: <= 19000 sockets each)" },
    { "src-addrs", K_INT, F(src_addrs), 1, 254, NULL,
      "source addresses 127.0.0.1..S (auto: 25000 sockets each)" },
    { "seconds", K_NUM, F(seconds), 0.1, 86400, NULL, "duration of the measured phase (10)" },
    { "rate", K_NUM, F(rate), 0, 10000000, NULL,
      "messages/s to the shared topic (db: rows/s) (20)" },
    { "own-rate", K_NUM, F(own_rate), 0, 10000000, NULL,
      "many-topics/soak: messages/s over the per-client topics (100)" },
    { "churn-rate", K_NUM, F(churn_rate), 0, 100000, NULL,
      "churn/soak: connect+join+close cycles per second (100)" },
    { "payload-bytes", K_INT, F(payload_bytes), 0, 60000, NULL, "message size, approx (200)" },
    { "per-post", K_INT, F(per_post), 1, 100, NULL, "tidings: messages per REST POST (1)" },
    { "private", K_INT, F(private_ch), 0, 1, NULL,
      "tidings: 1 = join private channels (the server's rules must allow them) (0)" },
    { "presence", K_INT, F(presence), 0, 1, NULL,
      "tidings, many-topics/soak: 1 = each own-topic channel tracks its presence (0)" },
    { "publishers", K_INT, F(publishers), 1, LT_MAX_PUBS, NULL,
      "publisher connections, one process each (1)" },
    { "heartbeat-s", K_NUM, F(heartbeat_s), 0.1, 3600, NULL, "heartbeat interval (25)" },
    { "join-timeout", K_INT, F(join_timeout_s), 1, 3600, NULL,
      "seconds allowed for every socket to connect and join (120)" },
    { "drain", K_NUM, F(drain_s), 0, 600, NULL, "wait after publishing for late messages (2)" },
    { "gateway-pid", K_PIDS, F(gateway_pids), 1, 4194304, NULL,
      "PID[,PID]: server processes sampled for CPU and RSS (children included)" },
    { "json", K_STR, F(json_path), 0, 0, NULL, "write the result as JSON to this file" },
    { "csv", K_STR, F(csv_path), 0, 0, NULL, "write a header and one row of CSV to this file" },
    { "progress", K_ENUM, F(progress), 0, 0, "off|on|auto",
      "live progress line on stderr: auto|on|off (auto = when stderr is a tty)" },
    { "label", K_STR, F(label), 0, 0, NULL, "free text copied into the results" },
    { "pg", K_STR, F(pg), 0, 0, NULL, "db: libpq connection string (required)" },
    { "businesses", K_INT, F(businesses), 1, 1000000, NULL,
      "db: subscriber i filters business_id=eq.(i%B) (100)" },
    { "rows-per-tx", K_INT, F(rows_per_tx), 1, 1000, NULL, "db: rows per transaction (1)" },
    { "table", K_STR, F(table), 0, 0, NULL, "db: bench table in schema public (bench)" },
    { "pg-pid", K_PID, F(pg_pid), 1, 4194304, NULL, "db: postmaster sampled (with children)" },
    { "max-inflight", K_INT, F(max_inflight), 1, 100000, NULL,
      "db: writer transactions in flight (16)" },
    { "seed", K_U64, F(seed), 0, 4294967295.0, NULL, "db: seed of the business ids (1)" },
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const char *const scenarios[] = { "idle", "fanout", "many-topics", "churn", "db", "soak" };

const char *
lt_scenario_name(enum lt_scenario s)
{
    return (unsigned)s < 6 ? scenarios[s] : "?";
}

const char *
lt_target_name(enum lt_target t)
{
    return t == LT_TARGET_SIMPLE ? "simple" : "tidings";
}

void
lt_opts_init(struct lt_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->clients = 1000;
    o->seconds = 10;
    o->rate = 20;
    o->own_rate = 100;
    o->churn_rate = 100;
    o->payload_bytes = 200;
    o->per_post = 1;
    o->publishers = 1;
    o->heartbeat_s = 25;
    o->join_timeout_s = 120;
    o->drain_s = 2;
    o->progress = -1;
    o->businesses = 100;
    o->rows_per_tx = 1;
    o->table = "bench";
    o->max_inflight = 16;
    o->seed = 1;
}

void
lt_opts_usage(FILE *f)
{
    fprintf(f, "usage: tidings-load SCENARIO [--option value ...]\n"
               "       tidings-load plot RESULT.json OUT.svg\n"
               "       tidings-load --help | SCENARIO --help\n\n"
               "SCENARIO: idle | fanout | many-topics | churn | db | soak\n\noptions:\n");
    for (size_t i = 0; i < N_OPTS; i++)
        fprintf(f, "  --%-15s %s\n", opts[i].name, opts[i].help);
    fprintf(f, "\nexit status: 0 complete, 1 ran but lost, duplicated or failed something, "
               "2 usage or set-up error\n");
}

/* K_ENUM: index of v among the '|'-separated words, or -1. */
static int
word_index(const char *words, const char *v)
{
    size_t n = strlen(v);
    int i = 0;

    for (const char *w = words; w; i++) {
        const char *bar = strchr(w, '|');
        size_t len = bar ? (size_t)(bar - w) : strlen(w);

        if (len == n && strncmp(w, v, n) == 0)
            return i;
        w = bar ? bar + 1 : NULL;
    }
    return -1;
}

/* Parses a number in [min, max]; integers must be whole. */
static int
number(const struct opt *op, const char *v, double *out)
{
    char *end;
    double d = strtod(v, &end);

    if (!*v || *end || d != d || d < op->min || d > op->max)
        return GW_EINVAL;
    if (op->kind != K_NUM && d != (double)(uint64_t)d)
        return GW_EINVAL;
    *out = d;
    return 0;
}

static int
set_pids(struct lt_opts *o, const struct opt *op, const char *v)
{
    char *copy = gw_xstrdup(v), *save = NULL;
    int rc = 0;

    o->n_gateway_pids = 0;
    for (char *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        double d;

        if (o->n_gateway_pids == LT_MAX_PIDS || number(op, t, &d))
            rc = GW_EINVAL;
        else
            o->gateway_pids[o->n_gateway_pids++] = (pid_t)d;
    }
    free(copy);
    return rc || !o->n_gateway_pids ? GW_EINVAL : 0;
}

static int
set_opt(struct lt_opts *o, const struct opt *op, const char *v)
{
    char *base = (char *)o + op->off;
    double d = 0;
    int w;

    switch (op->kind) {
    case K_STR:
        *(const char **)(void *)base = v;
        return 0;
    case K_ENUM:
        if ((w = word_index(op->words, v)) < 0)
            return GW_EINVAL;
        if (op->off == F(progress))
            o->progress = w == 2 ? -1 : w;
        else
            o->target = (enum lt_target)w;
        return 0;
    case K_PIDS:
        return set_pids(o, op, v);
    default:
        break;
    }
    if (number(op, v, &d))
        return GW_EINVAL;
    if (op->kind == K_NUM)
        *(double *)(void *)base = d;
    else if (op->kind == K_PID)
        *(pid_t *)(void *)base = (pid_t)d;
    else if (op->kind == K_U64)
        *(uint64_t *)(void *)base = (uint64_t)d;
    else if (op->off == F(port))
        o->port = (int)d;
    else
        *(unsigned *)(void *)base = (unsigned)d;
    return 0;
}

static const struct opt *
find_opt(const char *a)
{
    if (strncmp(a, "--", 2) != 0)
        return NULL;
    for (size_t k = 0; k < N_OPTS; k++)
        if (strcmp(a + 2, opts[k].name) == 0)
            return &opts[k];
    return NULL;
}

int
lt_opts_parse(struct lt_opts *o, int argc, char **argv, struct gw_buf *err)
{
    int sc = argc > 0 ? word_index("idle|fanout|many-topics|churn|db|soak", argv[0]) : -1;

    if (argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0))
        return 1;
    if (sc < 0) {
        gw_buf_printf(err, "unknown scenario \"%s\"", argc > 0 ? argv[0] : "");
        return GW_EINVAL;
    }
    o->scenario = (enum lt_scenario)sc;
    for (int i = 1; i < argc; i++) {
        const struct opt *op = find_opt(argv[i]);

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
        if (!op) {
            gw_buf_printf(err, "unknown option %s", argv[i]);
            return GW_EINVAL;
        }
        if (i + 1 >= argc || set_opt(o, op, argv[i + 1])) {
            gw_buf_printf(err, "bad or missing value for %s", argv[i]);
            return GW_EINVAL;
        }
        i++;
    }
    return 0;
}

unsigned
lt_sockets_per_client(const struct lt_opts *o)
{
    return o->target == LT_TARGET_SIMPLE && lt_has_own_topic(o) ? 2 : 1;
}

bool
lt_has_own_topic(const struct lt_opts *o)
{
    return o->scenario == LT_SC_MANY_TOPICS || o->scenario == LT_SC_SOAK;
}

bool
lt_has_churn(const struct lt_opts *o)
{
    return (o->scenario == LT_SC_CHURN || o->scenario == LT_SC_SOAK) && o->churn_rate > 0;
}

bool
lt_has_publisher(const struct lt_opts *o)
{
    return o->scenario != LT_SC_IDLE && o->scenario != LT_SC_DB;
}

static bool
loopback(const char *host)
{
    struct in_addr a4;

    if (strcmp(host, "::1") == 0)
        return true;
    return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

static bool
table_ok(const char *t)
{
    if (!*t || strlen(t) > 48)
        return false;
    for (; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '_'))
            return false;
    return true;
}

/* The checks that need more than one option. Returns an error text or NULL. */
static const char *
check_text(const struct lt_opts *o)
{
    if (!o->port)
        return "--port is required";
    if (!loopback(o->host))
        return "--host must be a loopback address (127.0.0.0/8 or ::1)";
    if (o->target == LT_TARGET_TIDINGS && !o->token)
        return "--token is required with --target tidings";
    if (o->scenario == LT_SC_DB && o->target != LT_TARGET_TIDINGS)
        return "db needs --target tidings";
    if (o->scenario == LT_SC_DB && !o->pg)
        return "db needs --pg";
    if (!table_ok(o->table))
        return "--table must be 1-48 characters of [a-z0-9_]";
    if (lt_has_publisher(o) && o->rate <= 0 && (!lt_has_own_topic(o) || o->own_rate <= 0))
        return "nothing to publish: raise --rate (or --own-rate)";
    if ((o->private_ch || o->presence) && o->target != LT_TARGET_TIDINGS)
        return "--private and --presence need --target tidings";
    if (o->presence && !lt_has_own_topic(o))
        return "--presence needs own topics (many-topics or soak): every subscriber of the "
               "shared topic would get every other's presence";
    if (o->scenario == LT_SC_DB && o->rate <= 0)
        return "db needs --rate > 0";
    if (o->publishers > 1 && o->publishers > o->clients && lt_has_own_topic(o))
        return "--publishers must not exceed --clients";
    return NULL;
}

int
lt_opts_check(struct lt_opts *o, struct gw_buf *err)
{
    const char *bad = check_text(o);
    uint64_t sockets = (uint64_t)o->clients * lt_sockets_per_client(o);

    if (!bad && o->target == LT_TARGET_SIMPLE)
        o->per_post = 1;
    if (!bad && !o->procs)
        o->procs = (unsigned)((sockets + LT_MAX_PER_PROC - 1) / LT_MAX_PER_PROC);
    if (!bad && o->procs > sockets)
        o->procs = (unsigned)sockets;
    if (!bad && o->procs > LT_MAX_PROCS)
        bad = "too many sockets: at most 64 processes of 19000";
    if (!bad && (sockets + o->procs - 1) / o->procs > LT_MAX_PER_PROC)
        bad = "too many sockets per process (at most 19000): raise --procs";
    if (!bad && !o->src_addrs)
        o->src_addrs = (unsigned)((sockets + LT_PER_ADDR - 1) / LT_PER_ADDR);
    if (bad) {
        gw_buf_printf(err, "%s", bad);
        return GW_EINVAL;
    }
    return 0;
}

/* One option's value as JSON (NULL-safe: unset strings and pids are null). */
static json_t *
opt_json(const struct lt_opts *o, const struct opt *op)
{
    const char *base = (const char *)o + op->off;
    const char *s;
    struct gw_buf b;
    json_t *j;

    switch (op->kind) {
    case K_STR:
        s = *(const char *const *)(const void *)base;
        if (s && op->off == F(token))
            return json_string("(set)"); /* a credential: never copied into results */
        return s ? json_string(s) : json_null();
    case K_ENUM:
        if (op->off == F(progress))
            return json_string(o->progress < 0 ? "auto" : (o->progress ? "on" : "off"));
        return json_string(lt_target_name(o->target));
    case K_PIDS:
        if (!o->n_gateway_pids)
            return json_null();
        gw_buf_init(&b);
        for (unsigned i = 0; i < o->n_gateway_pids; i++)
            gw_buf_printf(&b, "%s%ld", i ? "," : "", (long)o->gateway_pids[i]);
        j = json_string(b.data);
        gw_buf_release(&b);
        return j;
    case K_PID:
        return o->pg_pid ? json_integer(o->pg_pid) : json_null();
    case K_NUM:
        return json_real(*(const double *)(const void *)base);
    case K_U64:
        return json_integer((json_int_t) * (const uint64_t *)(const void *)base);
    default:
        if (op->off == F(port))
            return json_integer(o->port);
        return json_integer((json_int_t) * (const unsigned *)(const void *)base);
    }
}

json_t *
lt_opts_params(const struct lt_opts *o)
{
    json_t *j = json_object();

    for (size_t i = 0; i < N_OPTS; i++) {
        char key[32];

        snprintf(key, sizeof(key), "%s", opts[i].name);
        for (char *c = key; *c; c++)
            if (*c == '-')
                *c = '_';
        json_object_set_new(j, key, opt_json(o, &opts[i]));
    }
    return j;
}
