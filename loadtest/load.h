/*
 * load.h: `tidings-load`, the load and soak tool of tidings (docs/BENCHMARKS.md,
 * /work/briefs/load_cli.md is the command-line and JSON contract).
 *
 * One run is one scenario: idle (hold sockets), fanout (one shared topic), many-topics
 * (a shared and an own topic per client), churn (connect+join+close cycles while the
 * fan-out runs), db (postgres_changes from a PostgreSQL writer) and soak (many-topics plus
 * churn, with the gateway's RSS slope). The pieces:
 *   opts.c    the option table, parsing and checks (lt_opts_*),
 *   driver.c  the processes of a run and its phases (lt_run),
 *   report.c  the verdict, the human summary, JSON and CSV (lt_result_*),
 *   probe.c   what is read from /proc: CPU, RSS of a process tree, sockstat,
 *   stats.c   pure helpers: sequence checking, least-squares slope.
 * Subscribers and churn processes are wsclient.h, publishers publish.h, the db writer
 * writer.h.
 */
#ifndef LT_LOAD_H
#define LT_LOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "base/base.h"
#include "loadtest/ipc.h"

#define LT_MAX_PROCS    64    /* subscriber processes at most */
#define LT_MAX_PER_PROC 19000 /* sockets per process: stays below 20,000 open files */
#define LT_PER_ADDR     25000 /* sockets per source address (auto --src-addrs) */
#define LT_MAX_PIDS     16    /* --gateway-pid entries */
#define LT_MAX_PUBS     16    /* --publishers at most */
#define LT_MAX_CPUS     64    /* CPUs whose busy time is sampled */

enum lt_scenario {
    LT_SC_IDLE = 0,        /* hold the sockets */
    LT_SC_FANOUT = 1,      /* one shared topic */
    LT_SC_MANY_TOPICS = 2, /* shared + own topic per client */
    LT_SC_CHURN = 3,       /* fan-out plus connect/join/close cycles */
    LT_SC_DB = 4,          /* postgres_changes from a writer */
    LT_SC_SOAK = 5,        /* many-topics plus churn, RSS slope */
};

enum lt_target {
    LT_TARGET_TIDINGS = 0, /* supabase-js protocol, vsn 2.0.0 */
    LT_TARGET_SIMPLE = 1,  /* GET /sub/<topic> WebSocket, POST /pub/<topic> */
};

struct lt_opts {
    enum lt_scenario scenario;       /* what runs */
    const char *host;                /* server address (loopback only) */
    int port;                        /* server port */
    const char *token;               /* apikey (tidings target) */
    enum lt_target target;           /* protocol */
    unsigned clients;                /* N subscriber clients */
    unsigned procs;                  /* subscriber processes (0 = auto before lt_opts_check) */
    unsigned src_addrs;              /* source addresses 127.0.0.1..S (0 = auto) */
    double seconds;                  /* measured phase, seconds */
    double rate;                     /* messages/s to the shared topic (db: rows/s) */
    double own_rate;                 /* messages/s over the own topics */
    double churn_rate;               /* churn cycles per second */
    unsigned payload_bytes;          /* message size, approximately */
    unsigned per_post;               /* tidings: messages per REST POST */
    unsigned private_ch;             /* tidings: 1 = join with config.private (RLS topic) */
    unsigned presence;               /* tidings: 1 = own-topic channels track presence */
    unsigned publishers;             /* publisher processes */
    double heartbeat_s;              /* client heartbeat interval, seconds */
    unsigned join_timeout_s;         /* time allowed for every socket to join */
    double drain_s;                  /* wait after publishing for late messages */
    pid_t gateway_pids[LT_MAX_PIDS]; /* sampled server processes (with descendants) */
    unsigned n_gateway_pids;         /* entries of gateway_pids */
    const char *json_path;           /* result file, NULL = none */
    const char *csv_path;            /* CSV result file, NULL = none */
    int progress;                    /* live line: 1 on, 0 off, -1 auto (tty) */
    const char *label;               /* free text copied into the results, may be NULL */
    const char *pg;                  /* db: libpq connection string */
    unsigned businesses;             /* db: subscriber i filters business_id=eq.(i%B) */
    unsigned rows_per_tx;            /* db: rows per transaction */
    const char *table;               /* db: bench table in schema public */
    pid_t pg_pid;                    /* db: postmaster whose CPU is sampled, 0 = none */
    unsigned max_inflight;           /* db: transactions in flight at most */
    uint64_t seed;                   /* db: seed of the business ids */
};

/* ---- opts.c ---- */

/* Name of a scenario ("many-topics"), or of a target. */
const char *lt_scenario_name(enum lt_scenario s);
const char *lt_target_name(enum lt_target t);

/* Sets every option to its default (scenario idle). */
void lt_opts_init(struct lt_opts *o);

/*
 * Parses `SCENARIO --opt value ...` (argv[0] is the scenario). Returns 0, 1 when --help
 * was asked (usage not printed), or GW_EINVAL with a message in err (unknown scenario or
 * option, value missing or out of bounds). The strings stay owned by argv.
 */
int lt_opts_parse(struct lt_opts *o, int argc, char **argv, struct gw_buf *err);

/* Checks what the table cannot and fills the automatic values. 0 or GW_EINVAL + err. */
int lt_opts_check(struct lt_opts *o, struct gw_buf *err);

/* Prints the usage and the option table. */
void lt_opts_usage(FILE *f);

/* Every option by its name with '-' -> '_' (the token is replaced by "(set)"). New ref. */
struct json_t *lt_opts_params(const struct lt_opts *o);

/* Sockets of one client: 2 for the simple target with an own topic, else 1. */
unsigned lt_sockets_per_client(const struct lt_opts *o);

/* True when the scenario has an own topic per client / churn / a publisher. */
bool lt_has_own_topic(const struct lt_opts *o);
bool lt_has_churn(const struct lt_opts *o);
bool lt_has_publisher(const struct lt_opts *o);

/* ---- results ---- */

struct lt_sample {
    double t_s;              /* seconds since the start of the run */
    uint64_t connections;    /* established subscriber sockets */
    double deliveries_per_s; /* deliveries during the last second, per second */
    double p50_ms;           /* latency percentiles of that second (0 when none) */
    double p99_ms;
    double max_ms;
    int64_t rss_kb;         /* gateway RSS (tree), -1 = not sampled */
    double published_per_s; /* messages (db: rows) accepted during that second, per second */
};

struct lt_result {
    struct lt_client_stats subs;      /* steady subscribers, summed */
    struct lt_client_stats churn;     /* churn processes, summed */
    struct lt_hist lat;               /* delivery latency, microseconds */
    struct lt_hist join;              /* join latency (subscribers and churn), microseconds */
    struct lt_writer_final pub;       /* publishers (summed) or the db writer */
    bool pub_ok;                      /* every publisher or the writer reported and exited 0 */
    unsigned procs_ok;                /* subscriber processes that sent their final record */
    unsigned churn_ok;                /* churn processes that sent their final record */
    double connect_s;                 /* start to all sockets settled, seconds */
    double window_s;                  /* publishing phase (idle: hold), seconds */
    double gw_cpu_pct;                /* gateway CPU over the window, % of one core; < 0 n/a */
    double gw_cpu_s;                  /* gateway CPU seconds over the window; < 0 n/a */
    double pg_cpu_pct;                /* db: PostgreSQL CPU over the window; < 0 n/a */
    double load_cpu_pct;              /* every load process over the run, % of one core */
    double run_s;                     /* whole run, seconds */
    int64_t rss_baseline_kb;          /* gateway RSS before the first connect, -1 = n/a */
    int64_t rss_held_kb;              /* gateway RSS with every socket joined, -1 = n/a */
    double rss_slope_kb_min;          /* soak: RSS slope after warm-up, NaN = n/a */
    int64_t sock_mem_baseline;        /* /proc/net/sockstat TCP mem pages, -1 = n/a */
    int64_t sock_mem_held;            /* the same with every socket joined, -1 = n/a */
    double cpu_busy_pct[LT_MAX_CPUS]; /* each CPU's busy time over the window, % */
    unsigned n_cpus;                  /* entries of cpu_busy_pct */
    struct lt_sample *timeline;       /* one sample per second (owned) */
    size_t n_timeline;                /* samples */
    size_t cap_timeline;              /* room */
    int64_t started_us;               /* wall clock at the start of the run */
};

/* ---- driver.c ---- */

/* Runs one scenario and fills r. Returns 0, or a negative GW_E* code with a message in err. */
int lt_run(const struct lt_opts *o, struct lt_result *r, struct gw_buf *err);

/* Frees what r owns. */
void lt_result_release(struct lt_result *r);

/* ---- report.c ---- */

/* Messages (db: changes) lost: expected minus the distinct messages received, >= 0. */
uint64_t lt_result_drops(const struct lt_result *r);

/* True when nothing was lost, duplicated or failed (exit status 0). */
bool lt_result_complete(const struct lt_opts *o, const struct lt_result *r);

/* Prints the human summary. */
void lt_result_print(FILE *f, const struct lt_opts *o, const struct lt_result *r);

/* Writes the JSON result (load_cli.md) / the CSV header and row. 0 or GW_EIO. */
int lt_result_json(const char *path, const struct lt_opts *o, const struct lt_result *r);
int lt_result_csv(const char *path, const struct lt_opts *o, const struct lt_result *r);

/* ---- probe.c ---- */

/* Busy and total jiffies of each CPU (/proc/stat); returns the number of CPUs read. */
unsigned lt_cpu_stat(uint64_t *busy, uint64_t *total, unsigned max);

/* CPU ticks (user + system) of the pids and all their live descendants (plus the reaped
 * children of the pids themselves). -1 when none of the pids exists. */
int64_t lt_tree_cpu_ticks(const pid_t *pids, unsigned n);

/* Sum of VmRSS (KB) of the pids and all their descendants; -1 when none exists. */
int64_t lt_tree_rss_kb(const pid_t *pids, unsigned n);

/* The TCP "mem" figure (pages) of /proc/net/sockstat, -1 when unreadable. */
int64_t lt_sockstat_tcp_mem(void);

/* ---- stats.c ---- */

enum lt_seq_verdict {
    LT_SEQ_OK = 0,  /* the next one */
    LT_SEQ_DUP = 1, /* not above the last one: a duplicate (or reordered) */
    LT_SEQ_GAP = 2, /* above last + 1: messages in between were lost */
};

/*
 * Checks seq against *last (0 = none yet, sequences start at 1). OK and GAP move *last to
 * seq; GAP adds the number of skipped messages to *gaps; DUP leaves *last alone and counts
 * one in *dups.
 */
enum lt_seq_verdict lt_seq_check(uint64_t *last, uint64_t seq, uint64_t *dups, uint64_t *gaps);

/*
 * Least-squares slope of y over x, for the points with x >= x_from (y < 0 skipped: not
 * measured). Returns the slope in y units per x unit, or NaN with fewer than 3 points or
 * no spread in x.
 */
double lt_slope(const double *x, const double *y, size_t n, double x_from);

#endif
