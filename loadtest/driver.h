/*
 * driver: one benchmark run of postgres_changes, end to end, in one call.
 *
 * lt_bench_run() prepares the table (lt_pg_setup), forks `procs` subscriber processes
 * (wsclient.h) that share the K sockets, waits until every socket is subscribed, forks the
 * writer (writer.h), follows the progress records of all of them through pipes (a timeline
 * sample per second), waits up to drain_s after the writer for the last deliveries, then
 * stops the subscribers, collects their histograms and reaps every child by pid. Every wait
 * has a deadline. lt_bench_print() and lt_bench_json() report a result (report.c).
 */
#ifndef LT_DRIVER_H
#define LT_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "base/base.h"
#include "loadtest/ipc.h"
#include "loadtest/wsclient.h"

#define LT_MAX_PROCS    64    /* subscriber processes at most */
#define LT_MAX_PER_PROC 19000 /* sockets per process: stays below 20,000 open files */
#define LT_MAX_TIMELINE 3600  /* timeline samples kept */
#define LT_SETUP_WAIT_S 30    /* how long lt_pg_setup waits for schema tidings */
#define LT_MAX_CPUS     64    /* CPUs whose busy time is sampled */

struct lt_bench_opts {
    int port;                 /* gateway port on 127.0.0.1 */
    const char *token;        /* apikey of the subscribers */
    const char *pg;           /* libpq connection string */
    const char *table;        /* bench table in schema public */
    unsigned clients;         /* K subscribers (one socket, one channel each) */
    unsigned businesses;      /* B distinct filters */
    double rate;              /* offered rows per second */
    double seconds;           /* writer duration */
    unsigned procs;           /* subscriber processes */
    unsigned rows_per_tx;     /* rows per transaction */
    unsigned payload_bytes;   /* payload column length */
    unsigned src_addrs;       /* source addresses 127.0.0.1 .. 127.0.0.N */
    enum lt_client_impl impl; /* subscriber transport */
    unsigned max_inflight;    /* writer transactions in flight at most */
    unsigned join_timeout_s;  /* how long the subscribers may take to join */
    double drain_s;           /* wait after the writer for late deliveries */
    pid_t gateway_pid;        /* process whose CPU is sampled, 0 = none */
    pid_t pg_pid;             /* postmaster whose CPU (with its children) is sampled, 0 = none */
    uint64_t seed;            /* seed of the business ids */
    bool run_clients;         /* start subscribers */
    bool run_writer;          /* start the writer */
    const char *label;        /* free text copied into the JSON, may be NULL */
    const char *json_path;    /* machine-readable result file, NULL = none */
    bool fanout;              /* broadcast fan-out mode (fanout.h) instead of postgres_changes */
    unsigned per_post;        /* fan-out: messages per REST POST */
};

struct lt_sample {
    double t_s;        /* seconds since the writer started */
    uint64_t rows_ok;  /* rows committed so far */
    uint64_t received; /* deliveries so far */
    uint64_t max_us;   /* largest latency reported during this second */
};

struct lt_bench_result {
    struct lt_client_stats clients;   /* counters summed over the subscriber processes */
    struct lt_hist lat;               /* commit-to-client latency of every delivery */
    struct lt_writer_final writer;    /* writer counters and commit times */
    bool writer_ok;                   /* the writer reported and exited 0 */
    unsigned procs_ok;                /* subscriber processes that reported their results */
    struct lt_sample *timeline;       /* one sample per second (owned) */
    size_t n_timeline;                /* samples */
    double gw_cpu_pct;                /* gateway CPU during the load, % of one core; < 0 n/a */
    double pg_cpu_pct;                /* PostgreSQL CPU during the load, % of one core; < 0 n/a */
    double cpu_window_s;              /* length of the CPU sampling window */
    double cpu_busy_pct[LT_MAX_CPUS]; /* each CPU's busy time in that window, % (all processes) */
    unsigned n_cpus;                  /* entries of cpu_busy_pct */
    double load_cpu_s;                /* CPU seconds of the subscriber and writer processes */
    double drain_s;                   /* seconds waited after the writer for deliveries */
    int64_t started_us;               /* wall clock at the start of the run */
};

/* Runs one benchmark. Returns 0, or a negative GW_E* code with a message in err. */
int lt_bench_run(const struct lt_bench_opts *o, struct lt_bench_result *r, struct gw_buf *err);

/* Frees what r owns. */
void lt_bench_result_release(struct lt_bench_result *r);

/* Deliveries the committed rows required (every matching subscriber once). */
uint64_t lt_bench_expected(const struct lt_bench_result *r);

/*
 * True when nothing was lost: every socket subscribed and stayed connected, every committed
 * row reached exactly its subscribers, no frame was malformed or misrouted, and the writer
 * had no failed transaction.
 */
bool lt_bench_complete(const struct lt_bench_opts *o, const struct lt_bench_result *r);

/* Prints the human summary. */
void lt_bench_print(FILE *f, const struct lt_bench_opts *o, const struct lt_bench_result *r);

/* Writes every parameter and result as JSON to path. Returns 0 or GW_EIO. */
int lt_bench_json(const char *path, const struct lt_bench_opts *o, const struct lt_bench_result *r);

/*
 * Reads the busy and total jiffies of each CPU (cpuN lines of /proc/stat) into busy[] and
 * total[] (max entries). Returns the number of CPUs read (0 on failure).
 */
unsigned lt_cpu_stat(uint64_t *busy, uint64_t *total, unsigned max);

/*
 * Reads the busy and total jiffies of each CPU (cpuN lines of /proc/stat) into busy[] and
 * total[] (max entries). Returns the number of CPUs read (0 on failure).
 */
unsigned lt_cpu_stat(uint64_t *busy, uint64_t *total, unsigned max);

/* CPU time (user + system) of pid in clock ticks, with its reaped children when `tree`
 * is set; its live children are added too. Returns -1 when pid does not exist. */
int64_t lt_cpu_ticks(pid_t pid, bool tree);

#endif
