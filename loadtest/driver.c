/*
 * driver.c: the orchestration of one benchmark run (driver.h).
 *
 * Every child is a struct kid: its pid, the read end of its report pipe and the write end
 * of its control pipe. pump() polls every open report pipe and handles one record per
 * readable pipe; the phases (all ready, writer done, drained, all final) are loops of
 * pump() until a predicate holds or a deadline passes. A child that exits closes its
 * pipe, which pump() sees as end of file, so no phase waits for a dead process. Children
 * are stopped by closing their control pipe and reaped by pid (SIGKILL after a timeout).
 */
#include "loadtest/driver.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loadtest/fanout.h"
#include "loadtest/writer.h"
#include "loadtest/wsclient.h"

#define RECV_TIMEOUT_MS 5000     /* a started record must be complete within this */
#define WRITER_SLACK_US 30000000 /* the writer may run this much past its seconds */
#define FINAL_WAIT_US   15000000 /* how long stopped subscribers may take to report */
#define REAP_WAIT_US    5000000  /* how long exited children may take to be reaped */

struct kid {
    pid_t pid;                   /* child process, 0 = none */
    int rd;                      /* read end of its report pipe, -1 = closed */
    int ctl;                     /* write end of its control pipe, -1 = closed */
    bool ready;                  /* LT_MSG_READY seen */
    bool final;                  /* final record seen */
    struct lt_client_stats last; /* latest counters */
};

struct drv {
    const struct lt_bench_opts *o; /* options */
    struct lt_bench_result *r;     /* result being filled */
    struct kid *kids;              /* subscriber processes */
    unsigned n_kids;               /* started */
    struct kid wk;                 /* the writer */
    struct lt_writer_stats wlast;  /* latest writer counters */
    struct pollfd *pfd;            /* scratch for pump() */
    struct kid **pk;               /* kid of each pfd entry */
    void *buf;                     /* receive buffer (largest record) */
    uint64_t tl_max;               /* largest latency reported since the last sample */
    int64_t t_writer_us;           /* monotonic writer start, 0 before */
    int64_t t_sample_us;           /* monotonic time of the last timeline sample */
};

#define BUF_CAP                                                      \
    (sizeof(struct lt_client_final) > sizeof(struct lt_writer_final) \
         ? sizeof(struct lt_client_final)                            \
         : sizeof(struct lt_writer_final))

/* ---- children ---- */

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* In a new child: closes the parent's ends of every other child's pipes. */
static void
close_inherited(struct drv *d)
{
    for (unsigned i = 0; i < d->n_kids; i++) {
        close_fd(&d->kids[i].rd);
        close_fd(&d->kids[i].ctl);
    }
    close_fd(&d->wk.rd);
    close_fd(&d->wk.ctl);
}

static int
client_body(struct drv *d, unsigned i, int ctl, int rep)
{
    const struct lt_bench_opts *o = d->o;
    unsigned per = o->clients / o->procs, extra = o->clients % o->procs;
    struct lt_clients_opts co = {
        .impl = o->impl,
        .host = "127.0.0.1",
        .port = o->port,
        .token = o->token,
        .first = i * per + (i < extra ? i : extra),
        .count = per + (i < extra),
        .businesses = o->businesses,
        .src_addrs = o->src_addrs,
        .table = o->table,
        .ctl_fd = ctl,
        .report_fd = rep,
        .join_timeout_s = o->join_timeout_s,
        .max_run_s = o->join_timeout_s + (unsigned)(o->seconds + o->drain_s) + 120,
        .broadcast = o->fanout,
    };

    return lt_clients_run(&co);
}

static int
writer_body(struct drv *d, unsigned i, int ctl, int rep)
{
    const struct lt_bench_opts *o = d->o;
    struct lt_writer_opts wo = {
        .conninfo = o->pg,
        .table = o->table,
        .rate = o->rate,
        .seconds = o->seconds,
        .rows_per_tx = o->rows_per_tx,
        .businesses = o->businesses,
        .clients = o->clients,
        .payload_bytes = o->payload_bytes,
        .max_inflight = o->max_inflight,
        .seed = o->seed,
        .report_fd = rep,
    };
    struct lt_writer_final *f = gw_xmalloc(sizeof(*f));
    struct gw_buf err;
    int rc;

    struct lt_fanout_opts fo = {
        .port = o->port,
        .token = o->token,
        .rate = o->rate,
        .seconds = o->seconds,
        .per_post = o->per_post,
        .payload_bytes = o->payload_bytes,
        .clients = o->clients,
        .report_fd = rep,
    };

    (void)i;
    (void)ctl;
    gw_buf_init(&err);
    rc = o->fanout ? lt_fanout_publish(&fo, f, &err) : lt_writer_run(&wo, f, &err);
    if (rc)
        fprintf(stderr, "tidings-pgbench: writer: %s\n", err.data ? err.data : "failed");
    if (!rc)
        rc = lt_msg_send(rep, LT_MSG_WRITER_FINAL, f, sizeof(*f));
    gw_buf_release(&err);
    free(f);
    return rc;
}

typedef int body_fn(struct drv *d, unsigned i, int ctl, int rep);

static int
spawn(struct drv *d, struct kid *k, body_fn *body, unsigned i)
{
    int rep[2], ctl[2];

    if (pipe(rep))
        return GW_EIO;
    if (pipe(ctl)) {
        close(rep[0]);
        close(rep[1]);
        return GW_EIO;
    }
    fflush(NULL);
    k->pid = fork();
    if (k->pid == 0) {
        close(rep[0]);
        close(ctl[1]);
        close_inherited(d);
        exit(body(d, i, ctl[0], rep[1]) ? 1 : 0); /* exit(): stdio was flushed before fork */
    }
    close(rep[1]);
    close(ctl[0]);
    k->rd = rep[0];
    k->ctl = ctl[1];
    if (k->pid < 0) {
        k->pid = 0;
        close_fd(&k->rd);
        close_fd(&k->ctl);
        return GW_EIO;
    }
    return 0;
}

/* ---- records ---- */

static void
on_client_record(struct drv *d, struct kid *k, uint32_t type, size_t len)
{
    const struct lt_client_stats *st = d->buf;

    if (type == LT_MSG_CLIENT_FINAL && len == sizeof(struct lt_client_final)) {
        const struct lt_client_final *f = d->buf;

        k->last = f->st;
        k->final = true;
        lt_hist_merge(&d->r->lat, &f->lat);
        d->r->procs_ok++;
        return;
    }
    if ((type != LT_MSG_READY && type != LT_MSG_PROGRESS) || len != sizeof(*st))
        return;
    k->last = *st;
    k->ready = true;
    if (st->interval_max_us > d->tl_max)
        d->tl_max = st->interval_max_us;
}

static void
on_writer_record(struct drv *d, uint32_t type, size_t len)
{
    if (type == LT_MSG_WRITER_PROGRESS && len == sizeof(d->wlast)) {
        memcpy(&d->wlast, d->buf, len);
    } else if (type == LT_MSG_WRITER_FINAL && len == sizeof(d->r->writer)) {
        memcpy(&d->r->writer, d->buf, len);
        d->wlast = d->r->writer.st;
        d->wk.final = true;
    }
}

static void
read_record(struct drv *d, struct kid *k)
{
    uint32_t type;
    size_t len;

    if (lt_msg_recv(k->rd, &type, d->buf, BUF_CAP, &len, RECV_TIMEOUT_MS)) {
        close_fd(&k->rd);
        return;
    }
    if (k == &d->wk)
        on_writer_record(d, type, len);
    else
        on_client_record(d, k, type, len);
}

static uint64_t
sum_received(const struct drv *d)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < d->n_kids; i++)
        n += d->kids[i].last.received;
    return n;
}

static void
sample(struct drv *d, int64_t now)
{
    struct lt_bench_result *r = d->r;

    if (!d->t_writer_us || now - d->t_sample_us < 1000000 || r->n_timeline >= LT_MAX_TIMELINE)
        return;
    r->timeline[r->n_timeline++] = (struct lt_sample){
        .t_s = (double)(now - d->t_writer_us) / 1e6,
        .rows_ok = d->wlast.rows_ok,
        .received = sum_received(d),
        .max_us = d->tl_max,
    };
    d->tl_max = 0;
    d->t_sample_us = now;
}

/* Waits up to timeout_ms for records and handles one per readable pipe. */
static void
pump(struct drv *d, int timeout_ms)
{
    nfds_t n = 0;

    for (unsigned i = 0; i <= d->n_kids; i++) {
        struct kid *k = i < d->n_kids ? &d->kids[i] : &d->wk;

        if (k->rd < 0)
            continue;
        d->pfd[n] = (struct pollfd){ .fd = k->rd, .events = POLLIN };
        d->pk[n++] = k;
    }
    if (n && poll(d->pfd, n, timeout_ms) > 0) {
        for (nfds_t i = 0; i < n; i++)
            if (d->pfd[i].revents)
                read_record(d, d->pk[i]);
    } else if (!n) {
        nanosleep(&(struct timespec){ 0, (long)timeout_ms * 1000000L }, NULL);
    }
    sample(d, lt_mono_us());
}

typedef bool pred_fn(const struct drv *d);

static void
pump_until(struct drv *d, pred_fn *done, int64_t deadline_us)
{
    while (!done(d) && lt_mono_us() < deadline_us)
        pump(d, 100);
}

static bool
all_ready(const struct drv *d)
{
    for (unsigned i = 0; i < d->n_kids; i++)
        if (!d->kids[i].ready && d->kids[i].rd >= 0)
            return false;
    return true;
}

static bool
writer_done(const struct drv *d)
{
    return d->wk.final || d->wk.rd < 0;
}

static bool
drained(const struct drv *d)
{
    return sum_received(d) >= d->r->writer.st.expected;
}

static bool
all_final(const struct drv *d)
{
    for (unsigned i = 0; i < d->n_kids; i++)
        if (!d->kids[i].final && d->kids[i].rd >= 0)
            return false;
    return true;
}

/* ---- reaping ---- */

/* Waits for k's exit (SIGKILL at the deadline); returns its exit status or -1. */
static int
reap(struct kid *k, int64_t deadline_us)
{
    int status = 0;
    pid_t got = 0;

    while (k->pid > 0 && (got = waitpid(k->pid, &status, WNOHANG)) == 0 &&
           lt_mono_us() < deadline_us)
        nanosleep(&(struct timespec){ 0, 20000000 }, NULL);
    if (k->pid > 0 && got == 0) {
        kill(k->pid, SIGKILL);
        got = waitpid(k->pid, &status, 0);
    }
    close_fd(&k->rd);
    close_fd(&k->ctl);
    k->pid = 0;
    return got > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
stop_all(struct drv *d)
{
    int64_t deadline;

    for (unsigned i = 0; i < d->n_kids; i++)
        close_fd(&d->kids[i].ctl);
    pump_until(d, all_final, lt_mono_us() + FINAL_WAIT_US);
    deadline = lt_mono_us() + REAP_WAIT_US;
    for (unsigned i = 0; i < d->n_kids; i++) {
        if (d->kids[i].pid > 0)
            reap(&d->kids[i], deadline);
        close_fd(&d->kids[i].rd);
    }
    if (d->wk.pid > 0 && reap(&d->wk, deadline) != 0)
        d->r->writer_ok = false;
}

/* ---- phases ---- */

static void
sum_clients(struct drv *d)
{
    struct lt_client_stats *s = &d->r->clients;

    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < d->n_kids; i++) {
        const struct lt_client_stats *k = &d->kids[i].last;

#define LT_ADD(f) s->f += k->f;
        LT_CLIENT_STATS_FIELDS(LT_ADD)
#undef LT_ADD
    }
}

static int
start_clients(struct drv *d, struct gw_buf *err)
{
    for (unsigned i = 0; i < d->o->procs; i++) {
        if (spawn(d, &d->kids[i], client_body, i)) {
            gw_buf_printf(err, "cannot start subscriber process %u: %s", i, strerror(errno));
            return GW_EIO;
        }
        d->n_kids++;
    }
    pump_until(d, all_ready, lt_mono_us() + ((int64_t)d->o->join_timeout_s + 10) * 1000000);
    sum_clients(d);
    return 0;
}

/* CPU counters at one moment: the sampled processes and every CPU. */
struct cpu_snap {
    int64_t t_us;                /* monotonic time of the snapshot */
    int64_t gw;                  /* gateway ticks, -1 = not sampled */
    int64_t pg;                  /* PostgreSQL ticks (postmaster and children), -1 = not sampled */
    uint64_t busy[LT_MAX_CPUS];  /* busy jiffies per CPU */
    uint64_t total[LT_MAX_CPUS]; /* all jiffies per CPU */
    unsigned n;                  /* CPUs read */
};

static void
snap_take(const struct lt_bench_opts *o, struct cpu_snap *s)
{
    s->t_us = lt_mono_us();
    s->gw = o->gateway_pid ? lt_cpu_ticks(o->gateway_pid, o->fanout) : -1;
    s->pg = o->pg_pid ? lt_cpu_ticks(o->pg_pid, true) : -1;
    s->n = lt_cpu_stat(s->busy, s->total, LT_MAX_CPUS);
}

/* Fills the CPU figures of r from two snapshots. */
static void
snap_diff(const struct cpu_snap *a, const struct cpu_snap *b, struct lt_bench_result *r)
{
    double hz = (double)sysconf(_SC_CLK_TCK), win = (double)(b->t_us - a->t_us) / 1e6;

    r->cpu_window_s = win;
    if (a->gw >= 0 && b->gw >= 0)
        r->gw_cpu_pct = (double)(b->gw - a->gw) / hz / win * 100.0;
    if (a->pg >= 0 && b->pg >= 0)
        r->pg_cpu_pct = (double)(b->pg - a->pg) / hz / win * 100.0;
    for (unsigned i = 0; i < a->n && i < b->n; i++)
        r->cpu_busy_pct[r->n_cpus++] =
            b->total[i] > a->total[i]
                ? (double)(b->busy[i] - a->busy[i]) / (double)(b->total[i] - a->total[i]) * 100.0
                : 0.0;
}

static void
run_writer(struct drv *d, struct gw_buf *err)
{
    const struct lt_bench_opts *o = d->o;
    struct cpu_snap *s = gw_xcalloc(2, sizeof(*s));
    int64_t t_end;

    snap_take(o, &s[0]);
    d->t_writer_us = d->t_sample_us = s[0].t_us;
    if (spawn(d, &d->wk, writer_body, 0)) {
        gw_buf_printf(err, "cannot start the writer: %s", strerror(errno));
        free(s);
        return;
    }
    pump_until(d, writer_done, s[0].t_us + (int64_t)(o->seconds * 1e6) + WRITER_SLACK_US);
    d->r->writer_ok = d->wk.final;
    t_end = lt_mono_us();
    if (d->n_kids)
        pump_until(d, drained, t_end + (int64_t)(o->drain_s * 1e6));
    d->r->drain_s = (double)(lt_mono_us() - t_end) / 1e6;
    snap_take(o, &s[1]);
    snap_diff(&s[0], &s[1], d->r);
    free(s);
}

static void
drv_init(struct drv *d, const struct lt_bench_opts *o, struct lt_bench_result *r)
{
    memset(d, 0, sizeof(*d));
    memset(r, 0, sizeof(*r));
    d->o = o;
    d->r = r;
    d->kids = gw_xcalloc(o->procs + 1u, sizeof(*d->kids));
    for (unsigned i = 0; i <= o->procs; i++)
        d->kids[i].rd = d->kids[i].ctl = -1;
    d->wk.rd = d->wk.ctl = -1;
    d->pfd = gw_xcalloc(o->procs + 2u, sizeof(*d->pfd));
    d->pk = gw_xcalloc(o->procs + 2u, sizeof(*d->pk));
    d->buf = gw_xmalloc(BUF_CAP);
    lt_hist_init(&r->lat);
    lt_hist_init(&r->writer.commit);
    r->timeline = gw_xcalloc(LT_MAX_TIMELINE, sizeof(*r->timeline));
    r->gw_cpu_pct = r->pg_cpu_pct = -1.0;
    r->started_us = lt_wall_us();
}

int
lt_bench_run(const struct lt_bench_opts *o, struct lt_bench_result *r, struct gw_buf *err)
{
    struct drv d;
    struct rusage ru;
    int rc = 0;

    drv_init(&d, o, r);
    signal(SIGPIPE, SIG_IGN);
    if (o->run_writer && !o->fanout &&
        (rc = lt_pg_setup(o->pg, o->table, LT_SETUP_WAIT_S, err)) != 0)
        goto out;
    if (o->run_clients && (rc = start_clients(&d, err)) != 0)
        goto out;
    if (o->run_writer)
        run_writer(&d, err);
    else
        pump_until(&d, all_final, lt_mono_us() + (int64_t)(o->seconds * 1e6));
out:
    stop_all(&d);
    sum_clients(&d);
    if (getrusage(RUSAGE_CHILDREN, &ru) == 0)
        r->load_cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                        (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    free(d.kids);
    free(d.pfd);
    free(d.pk);
    free(d.buf);
    return rc ? rc : (err->len ? GW_EIO : 0);
}

void
lt_bench_result_release(struct lt_bench_result *r)
{
    if (!r)
        return;
    free(r->timeline);
    r->timeline = NULL;
}
