/*
 * pgbench.c: `tidings-pgbench`, the first benchmark of tidings: commit-to-client latency
 * and throughput of postgres_changes (docs/BENCHMARKS.md).
 *
 * The command line is a table of options (name, kind, target, bounds, help). --role picks
 * what runs: `all` (default) prepares the table, starts the subscribers, runs the writer and
 * reports; `clients` only subscribes and measures for --seconds (rows come from elsewhere);
 * `writer` only prepares the table and commits rows. `--mode fanout` runs the broadcast
 * fan-out benchmark instead (fanout.h). The work is done by driver.c; this file parses, checks the
 * limits (sockets per process, source addresses) and sets the exit code: 0 complete, 1 ran but
 * something was lost or failed, 2 usage or set-up error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadtest/driver.h"
#include "loadtest/wsclient.h"

enum kind {
    K_INT = 0, /* unsigned integer in [min, max] */
    K_NUM = 1, /* floating point number in [min, max] */
    K_STR = 2, /* string */
    K_PID = 3, /* process id */
};

struct opt {
    const char *name; /* flag without the leading "--" */
    enum kind kind;   /* value type */
    void *target;     /* where the value goes */
    double min, max;  /* bounds (numbers) */
    const char *help; /* one line of help */
};

static struct lt_bench_opts o = {
    .table = "bench",
    .clients = 1000,
    .businesses = 100,
    .rate = 1000,
    .seconds = 10,
    .rows_per_tx = 1,
    .payload_bytes = 100,
    .max_inflight = 16,
    .join_timeout_s = 60,
    .drain_s = 2,
    .seed = 1,
    .per_post = 1,
};
static const char *role = "all";
static const char *impl = "epoll";
static const char *mode = "pg";
static unsigned seed_arg = 1;

static const struct opt opts[] = {
    { "port", K_INT, &o.port, 1, 65535, "gateway port on 127.0.0.1 (required)" },
    { "token", K_STR, &o.token, 0, 0, "apikey of the subscribers (required for the subscribers)" },
    { "pg", K_STR, &o.pg, 0, 0, "libpq connection string (required for the writer)" },
    { "clients", K_INT, &o.clients, 1, 2000000, "K subscribers, one socket each (1000)" },
    { "businesses", K_INT, &o.businesses, 1, 1000000,
      "B: subscriber i filters business_id=eq.(i%B) (100)" },
    { "rate", K_NUM, &o.rate, 1, 10000000, "offered rows per second (1000)" },
    { "seconds", K_NUM, &o.seconds, 0.1, 3600, "writer duration in seconds (10)" },
    { "procs", K_INT, &o.procs, 1, LT_MAX_PROCS,
      "subscriber processes (auto: 19000 sockets each)" },
    { "rows-per-tx", K_INT, &o.rows_per_tx, 1, 1000, "rows per transaction (1)" },
    { "payload-bytes", K_INT, &o.payload_bytes, 0, 7000, "payload column length (100)" },
    { "src-addrs", K_INT, &o.src_addrs, 1, 254,
      "source addresses 127.0.0.1..N (auto: 25000 sockets each)" },
    { "max-inflight", K_INT, &o.max_inflight, 1, 100000, "writer transactions in flight (16)" },
    { "join-timeout", K_INT, &o.join_timeout_s, 1, 3600, "seconds allowed for all joins (60)" },
    { "drain", K_NUM, &o.drain_s, 0, 600, "seconds to wait for late deliveries (2)" },
    { "table", K_STR, &o.table, 0, 0, "bench table in schema public (bench)" },
    { "seed", K_INT, &seed_arg, 0, 4294967295.0, "seed of the business ids (1)" },
    { "gateway-pid", K_PID, &o.gateway_pid, 1, 4194304, "sample this gateway's CPU" },
    { "pg-pid", K_PID, &o.pg_pid, 1, 4194304, "sample this postmaster's CPU (with children)" },
    { "json", K_STR, &o.json_path, 0, 0, "write the result as JSON to this file" },
    { "label", K_STR, &o.label, 0, 0, "free text stored in the JSON" },
    { "role", K_STR, &role, 0, 0, "all | clients | writer (all)" },
    { "client-impl", K_STR, &impl, 0, 0, "subscriber transport: epoll | lws (epoll)" },
    { "mode", K_STR, &mode, 0, 0,
      "pg (postgres_changes) | fanout (REST broadcast to realtime:bench) (pg)" },
    { "per-post", K_INT, &o.per_post, 1, 100, "fanout: messages per REST POST (1)" },
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static void
usage(FILE *f)
{
    fprintf(f, "usage: tidings-pgbench --port P --token TOKEN --pg CONNINFO [options]\n\n");
    for (size_t i = 0; i < N_OPTS; i++)
        fprintf(f, "  --%-15s %s\n", opts[i].name, opts[i].help);
    fprintf(f, "\nexit status: 0 complete, 1 deliveries lost or errors, 2 usage or set-up error\n");
}

static int
set_opt(const struct opt *op, const char *v)
{
    char *end;
    double d = strtod(v, &end);

    if (op->kind == K_STR) {
        *(const char **)op->target = v;
        return 0;
    }
    if (*end || end == v || d < op->min || d > op->max)
        return -1;
    if (op->kind == K_INT && d != (double)(unsigned long)d)
        return -1;
    if (op->kind == K_INT && op->target == &o.port)
        o.port = (int)d;
    else if (op->kind == K_INT)
        *(unsigned *)op->target = (unsigned)d;
    else if (op->kind == K_PID)
        *(pid_t *)op->target = (pid_t)d;
    else
        *(double *)op->target = d;
    return 0;
}

static int
parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        size_t k;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        for (k = 0; k < N_OPTS; k++)
            if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, opts[k].name) == 0)
                break;
        if (k == N_OPTS || i + 1 >= argc || set_opt(&opts[k], argv[++i])) {
            fprintf(stderr, "tidings-pgbench: bad or incomplete option %s\n", a);
            return -1;
        }
    }
    return 0;
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

/* Fills in the automatic values and checks what the table cannot. Returns an error text. */
static const char *
check(void)
{
    o.run_clients = strcmp(role, "writer") != 0;
    o.run_writer = strcmp(role, "clients") != 0;
    o.seed = seed_arg;
    if (strcmp(role, "all") && strcmp(role, "clients") && strcmp(role, "writer"))
        return "--role must be all, clients or writer";
    if (strcmp(impl, "epoll") && strcmp(impl, "lws"))
        return "--client-impl must be epoll or lws";
    o.impl = strcmp(impl, "lws") == 0 ? LT_IMPL_LWS : LT_IMPL_EPOLL;
    if (strcmp(mode, "pg") && strcmp(mode, "fanout"))
        return "--mode must be pg or fanout";
    o.fanout = strcmp(mode, "fanout") == 0;
    if (o.fanout && (!o.port || !o.token))
        return "--mode fanout needs --port and --token";
    if (!o.port && o.run_clients)
        return "--port is required";
    if (o.run_clients && !o.token)
        return "--token is required";
    if (o.run_writer && !o.pg && !o.fanout)
        return "--pg is required";
    if (!table_ok(o.table))
        return "--table must be 1-48 characters of [a-z0-9_]";
    if (!o.procs)
        o.procs = (o.clients + LT_MAX_PER_PROC - 1) / LT_MAX_PER_PROC;
    if (o.procs > o.clients)
        o.procs = o.clients;
    if ((o.clients + o.procs - 1) / o.procs > LT_MAX_PER_PROC)
        return "too many sockets per process (at most 19000): raise --procs";
    if (!o.src_addrs)
        o.src_addrs = (o.clients + 24999) / 25000;
    return NULL;
}

int
main(int argc, char **argv)
{
    struct lt_bench_result *r = gw_xcalloc(1, sizeof(*r));
    struct gw_buf err;
    const char *bad;
    int rc, status;

    if (parse(argc, argv)) {
        usage(stderr);
        free(r);
        return 2;
    }
    if ((bad = check())) {
        fprintf(stderr, "tidings-pgbench: %s\n", bad);
        free(r);
        return 2;
    }
    gw_buf_init(&err);
    rc = lt_bench_run(&o, r, &err);
    if (rc)
        fprintf(stderr, "tidings-pgbench: %s\n", err.data ? err.data : gw_strerror(rc));
    lt_bench_print(stdout, &o, r);
    if (o.json_path && lt_bench_json(o.json_path, &o, r))
        fprintf(stderr, "tidings-pgbench: cannot write %s\n", o.json_path);
    status = rc ? 2 : (lt_bench_complete(&o, r) ? 0 : 1);
    gw_buf_release(&err);
    lt_bench_result_release(r);
    free(r);
    return status;
}
