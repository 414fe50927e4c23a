/*
 * driver.c: the processes and phases of one tidings-load run (lt_run in load.h).
 *
 * Every child is a struct kid: its role (subscribers, churn, publisher or db writer), its
 * pid, the read end of its report pipe and the write end of its control pipe. pump() polls
 * every open report pipe and handles one record per readable pipe, then takes the timeline
 * sample of the second (connections, deliveries/s, percentiles of the interval histograms
 * merged since the last sample, gateway RSS, published/s) and rewrites the progress line.
 * The phases are loops of pump() until a predicate holds or a deadline passes:
 *   1. gateway RSS and sockstat baseline; db: prepare the table;
 *   2. subscriber processes connect and join (until all ready or --join-timeout);
 *   3. idle: settle 2 s, sample RSS and sockstat (held), hold for --seconds;
 *      others: sample held, start the churn process and the publishers (db: the writer),
 *      wait for them, stop the churn, wait up to --drain for the last deliveries;
 *   4. stop the subscribers (close the control pipe), collect the final records, reap.
 * A child that exits closes its pipe, which pump() sees as end of file, so no phase waits
 * for a dead process. Children are reaped by pid (SIGKILL after a timeout).
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loadtest/load.h"
#include "loadtest/publish.h"
#include "loadtest/writer.h"
#include "loadtest/wsclient.h"

#define RECV_TIMEOUT_MS 5000     /* a started record must be complete within this */
#define PUB_SLACK_US    30000000 /* publishers may run this much past --seconds */
#define FINAL_WAIT_US   15000000 /* how long stopped processes may take to report */
#define REAP_WAIT_US    5000000  /* how long exited children may take to be reaped */
#define SETTLE_US       2000000  /* idle: settling before the held RSS */
#define SETUP_WAIT_S    30       /* db: how long lt_pg_setup waits for schema tidings */
#define CHURN_NET       1        /* churn sources: 127.0.1.x */
#define CHURN_ADDRS     4        /* churn source addresses */

enum role {
    R_SUB = 0,    /* subscriber process */
    R_CHURN = 1,  /* churn process */
    R_PUB = 2,    /* publisher process */
    R_WRITER = 3, /* db writer */
};

struct kid {
    enum role role;               /* what it runs */
    unsigned index;               /* index among the kids of its role */
    pid_t pid;                    /* child process, 0 = none */
    int rd;                       /* read end of its report pipe, -1 = closed */
    int ctl;                      /* write end of its control pipe, -1 = closed */
    bool ready;                   /* LT_MSG_READY seen */
    bool final;                   /* final record seen */
    int status;                   /* exit status once reaped, -1 = abnormal */
    struct lt_client_stats last;  /* latest client counters */
    struct lt_writer_stats wlast; /* latest publisher / writer counters */
};

struct drv {
    const struct lt_opts *o; /* options */
    struct lt_result *r;     /* result being filled */
    struct kid *kids;        /* every child */
    unsigned n_kids;         /* started */
    struct pollfd *pfd;      /* scratch for pump() */
    struct kid **pk;         /* kid of each pfd entry */
    void *buf;               /* receive buffer (largest record) */
    struct lt_hist *sec;     /* latencies since the last timeline sample */
    struct lt_hist *sofar;   /* every latency so far (progress line) */
    int64_t t0_us;           /* monotonic start of the run */
    int64_t t_sample_us;     /* monotonic time of the last sample */
    uint64_t last_received;  /* deliveries at the last sample */
    uint64_t last_published; /* messages published at the last sample */
    bool progress;           /* live line on stderr */
};

#define MAX_KIDS (LT_MAX_PROCS + LT_MAX_PUBS + 2)

static size_t
buf_cap(void)
{
    size_t a = sizeof(struct lt_client_final), b = sizeof(struct lt_writer_final);

    return a > b ? a : b;
}

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
}

static unsigned
max_run_s(const struct lt_opts *o)
{
    return o->join_timeout_s + (unsigned)(o->seconds + o->drain_s) + 120;
}

static int
sub_body(struct drv *d, const struct kid *k, int ctl, int rep)
{
    const struct lt_opts *o = d->o;
    unsigned total = o->clients * lt_sockets_per_client(o);
    unsigned per = total / o->procs, extra = total % o->procs, i = k->index;
    struct lt_clients_opts co = {
        .host = o->host,
        .port = o->port,
        .token = o->token,
        .simple = o->target == LT_TARGET_SIMPLE,
        .private_ch = o->private_ch,
        .presence = o->presence != 0,
        .kind = o->scenario == LT_SC_DB ? LT_SUB_PG
                                        : (lt_has_own_topic(o) ? LT_SUB_BOTH : LT_SUB_SHARED),
        .first = i * per + (i < extra ? i : extra),
        .count = per + (i < extra),
        .publishers = o->publishers,
        .businesses = o->businesses,
        .table = o->table,
        .src_addrs = o->src_addrs,
        .heartbeat_s = o->heartbeat_s,
        .ctl_fd = ctl,
        .report_fd = rep,
        .join_timeout_s = o->join_timeout_s,
        .max_run_s = max_run_s(o),
    };

    return lt_clients_run(&co);
}

static int
churn_body(struct drv *d, const struct kid *k, int ctl, int rep)
{
    const struct lt_opts *o = d->o;
    double slots = ceil(o->churn_rate * 12);
    struct lt_clients_opts co = {
        .host = o->host,
        .port = o->port,
        .token = o->token,
        .simple = o->target == LT_TARGET_SIMPLE,
        .kind = LT_SUB_SHARED,
        .private_ch = o->private_ch,
        .churn = true,
        .churn_rate = o->churn_rate,
        .count = slots < 64 ? 64 : (slots > LT_MAX_PER_PROC ? LT_MAX_PER_PROC : (unsigned)slots),
        .publishers = o->publishers,
        .src_addrs = CHURN_ADDRS,
        .src_net = CHURN_NET + k->index,
        .heartbeat_s = o->heartbeat_s,
        .ctl_fd = ctl,
        .report_fd = rep,
        .max_run_s = max_run_s(o),
    };

    return lt_clients_run(&co);
}

static int
pub_body(struct drv *d, const struct kid *k, int ctl, int rep)
{
    const struct lt_opts *o = d->o;
    struct lt_pub_opts po = {
        .host = o->host,
        .port = o->port,
        .token = o->token,
        .simple = o->target == LT_TARGET_SIMPLE,
        .private_ch = o->private_ch,
        .index = k->index,
        .publishers = o->publishers,
        .rate = o->rate / o->publishers,
        .own_rate = lt_has_own_topic(o) ? o->own_rate / o->publishers : 0,
        .clients = o->clients,
        .seconds = o->seconds,
        .per_post = o->per_post,
        .payload_bytes = o->payload_bytes,
        .report_fd = rep,
    };
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

    (void)ctl;
    gw_buf_init(&err);
    rc = k->role == R_WRITER ? lt_writer_run(&wo, f, &err) : lt_publish_run(&po, f, &err);
    if (rc)
        fprintf(stderr, "\ntidings-load: %s: %s\n", k->role == R_WRITER ? "writer" : "publisher",
                err.data ? err.data : "failed");
    lt_msg_send(rep, LT_MSG_WRITER_FINAL, f, sizeof(*f));
    gw_buf_release(&err);
    free(f);
    return rc;
}

static int
kid_body(struct drv *d, const struct kid *k, int ctl, int rep)
{
    switch (k->role) {
    case R_SUB:
        return sub_body(d, k, ctl, rep);
    case R_CHURN:
        return churn_body(d, k, ctl, rep);
    default:
        return pub_body(d, k, ctl, rep);
    }
}

/* Starts one child of the role. Returns 0 or GW_EIO (message in err). */
static int
spawn(struct drv *d, enum role role, unsigned index, struct gw_buf *err)
{
    struct kid *k = &d->kids[d->n_kids];
    int rep[2], ctl[2];

    if (pipe(rep) || pipe(ctl)) {
        gw_buf_printf(err, "pipe: %s", strerror(errno));
        return GW_EIO;
    }
    *k = (struct kid){ .role = role, .index = index, .rd = rep[0], .ctl = ctl[1] };
    fflush(NULL);
    k->pid = fork();
    if (k->pid == 0) {
        close(rep[0]);
        close(ctl[1]);
        close_inherited(d);
        exit(kid_body(d, k, ctl[0], rep[1]) ? 1 : 0); /* exit(): stdio was flushed before */
    }
    close(rep[1]);
    close(ctl[0]);
    if (k->pid < 0) {
        gw_buf_printf(err, "fork: %s", strerror(errno));
        close_fd(&k->rd);
        close_fd(&k->ctl);
        k->pid = 0;
        return GW_EIO;
    }
    d->n_kids++;
    return 0;
}

/* ---- records ---- */

static void
on_client_record(struct drv *d, struct kid *k, uint32_t type, size_t len)
{
    if (type == LT_MSG_CLIENT_FINAL && len == sizeof(struct lt_client_final)) {
        const struct lt_client_final *f = d->buf;

        k->last = f->st;
        k->final = true;
        if (k->role == R_SUB) {
            lt_hist_merge(&d->r->lat, &f->lat);
            d->r->procs_ok++;
        } else {
            d->r->churn_ok++;
        }
        lt_hist_merge(&d->r->join, &f->join);
    } else if ((type == LT_MSG_READY || type == LT_MSG_PROGRESS) &&
               len == sizeof(struct lt_client_progress)) {
        const struct lt_client_progress *pr = d->buf;

        k->last = pr->st;
        k->ready = true;
        lt_hist_merge(d->sec, &pr->lat);
        lt_hist_merge(d->sofar, &pr->lat);
    }
}

static void
on_writer_record(struct drv *d, struct kid *k, uint32_t type, size_t len)
{
    if (type == LT_MSG_WRITER_PROGRESS && len == sizeof(k->wlast)) {
        memcpy(&k->wlast, d->buf, len);
    } else if (type == LT_MSG_WRITER_FINAL && len == sizeof(struct lt_writer_final)) {
        const struct lt_writer_final *f = d->buf;

        k->wlast = f->st;
        k->final = true;
        lt_hist_merge(&d->r->pub.commit, &f->commit);
    }
}

static void
read_record(struct drv *d, struct kid *k)
{
    uint32_t type;
    size_t len;

    if (lt_msg_recv(k->rd, &type, d->buf, buf_cap(), &len, RECV_TIMEOUT_MS)) {
        close_fd(&k->rd);
        return;
    }
    if (k->role == R_SUB || k->role == R_CHURN)
        on_client_record(d, k, type, len);
    else
        on_writer_record(d, k, type, len);
}

/* ---- sums ---- */

static void
sum_stats(const struct drv *d, enum role role, struct lt_client_stats *s)
{
    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < d->n_kids; i++) {
        const struct lt_client_stats *k = &d->kids[i].last;

        if (d->kids[i].role != role)
            continue;
#define LT_ADD(f) s->f += k->f;
        LT_CLIENT_STATS_FIELDS(LT_ADD)
#undef LT_ADD
    }
}

/* Publisher (or writer) counters summed; window_s is the longest. */
static void
sum_pub(const struct drv *d, struct lt_writer_stats *s)
{
    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < d->n_kids; i++) {
        const struct lt_writer_stats *w = &d->kids[i].wlast;

        if (d->kids[i].role != R_PUB && d->kids[i].role != R_WRITER)
            continue;
        s->tx_sent += w->tx_sent;
        s->tx_ok += w->tx_ok;
        s->tx_err += w->tx_err;
        s->rows_ok += w->rows_ok;
        s->expected += w->expected;
        s->tokens_lost += w->tokens_lost;
        if (!s->t0_us || (w->t0_us && w->t0_us < s->t0_us))
            s->t0_us = w->t0_us;
        if (w->t_end_us > s->t_end_us)
            s->t_end_us = w->t_end_us;
        if (w->window_s > s->window_s)
            s->window_s = w->window_s;
    }
}

/* ---- timeline and progress line ---- */

static void
progress_line(struct drv *d, const struct lt_sample *s, const struct lt_client_stats *st)
{
    fprintf(stderr, "\r[%7.1f s] conns %llu/%llu  msgs/s %.0f  p99 %.1f ms  gaps %llu  dups %llu",
            s->t_s, (unsigned long long)s->connections,
            (unsigned long long)d->o->clients * lt_sockets_per_client(d->o), s->deliveries_per_s,
            (double)lt_hist_percentile(d->sofar, 99) / 1000.0, (unsigned long long)st->gaps,
            (unsigned long long)st->duplicates);
    if (s->rss_kb >= 0)
        fprintf(stderr, "  rss %.1f MB", (double)s->rss_kb / 1024.0);
    fprintf(stderr, "   ");
    fflush(stderr);
}

static void
add_sample(struct lt_result *r, const struct lt_sample *s)
{
    if (r->n_timeline == r->cap_timeline) {
        r->cap_timeline = r->cap_timeline ? r->cap_timeline * 2 : 256;
        r->timeline = gw_xrealloc(r->timeline, r->cap_timeline * sizeof(*r->timeline));
    }
    r->timeline[r->n_timeline++] = *s;
}

static void
sample(struct drv *d, int64_t now)
{
    struct lt_client_stats st;
    struct lt_writer_stats w;
    struct lt_sample s;
    double dt = (double)(now - d->t_sample_us) / 1e6;

    if (dt < 1.0)
        return;
    sum_stats(d, R_SUB, &st);
    sum_pub(d, &w);
    s = (struct lt_sample){
        .t_s = (double)(now - d->t0_us) / 1e6,
        .connections = st.open,
        .deliveries_per_s = (double)(st.received - d->last_received) / dt,
        .p50_ms = (double)lt_hist_percentile(d->sec, 50) / 1000.0,
        .p99_ms = (double)lt_hist_percentile(d->sec, 99) / 1000.0,
        .max_ms = (double)d->sec->max / 1000.0,
        .rss_kb =
            d->o->n_gateway_pids ? lt_tree_rss_kb(d->o->gateway_pids, d->o->n_gateway_pids) : -1,
        .published_per_s = (double)(w.rows_ok - d->last_published) / dt,
    };
    add_sample(d->r, &s);
    d->last_received = st.received;
    d->last_published = w.rows_ok;
    lt_hist_init(d->sec);
    d->t_sample_us = now;
    if (d->progress)
        progress_line(d, &s, &st);
}

/* Waits up to timeout_ms for records and handles one per readable pipe. */
static void
pump(struct drv *d, int timeout_ms)
{
    nfds_t n = 0;

    for (unsigned i = 0; i < d->n_kids; i++) {
        if (d->kids[i].rd < 0)
            continue;
        d->pfd[n] = (struct pollfd){ .fd = d->kids[i].rd, .events = POLLIN };
        d->pk[n++] = &d->kids[i];
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
    while ((!done || !done(d)) && lt_mono_us() < deadline_us)
        pump(d, 100);
}

static bool
all_ready(const struct drv *d)
{
    for (unsigned i = 0; i < d->n_kids; i++)
        if (d->kids[i].role == R_SUB && !d->kids[i].ready && d->kids[i].rd >= 0)
            return false;
    return true;
}

static bool
pubs_done(const struct drv *d)
{
    for (unsigned i = 0; i < d->n_kids; i++)
        if ((d->kids[i].role == R_PUB || d->kids[i].role == R_WRITER) && !d->kids[i].final &&
            d->kids[i].rd >= 0)
            return false;
    return true;
}

static bool
drained(const struct drv *d)
{
    struct lt_client_stats st;
    struct lt_writer_stats w;

    sum_stats(d, R_SUB, &st);
    sum_pub(d, &w);
    return st.received >= w.expected;
}

static bool
all_final(const struct drv *d)
{
    for (unsigned i = 0; i < d->n_kids; i++)
        if ((d->kids[i].role == R_SUB || d->kids[i].role == R_CHURN) && !d->kids[i].final &&
            d->kids[i].rd >= 0)
            return false;
    return true;
}

/* ---- reaping ---- */

/* Waits for k's exit (SIGKILL at the deadline); keeps its exit status in k->status. */
static void
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
    if (k->pid > 0)
        k->status = got > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    k->pid = 0;
}

static void
stop_role(struct drv *d, enum role role)
{
    for (unsigned i = 0; i < d->n_kids; i++)
        if (d->kids[i].role == role)
            close_fd(&d->kids[i].ctl);
}

static void
stop_all(struct drv *d)
{
    int64_t deadline;

    stop_role(d, R_SUB);
    stop_role(d, R_CHURN);
    pump_until(d, all_final, lt_mono_us() + FINAL_WAIT_US);
    deadline = lt_mono_us() + REAP_WAIT_US;
    for (unsigned i = 0; i < d->n_kids; i++)
        reap(&d->kids[i], deadline);
}

/* ---- CPU ---- */

/* CPU counters at one moment: the sampled processes and every CPU. */
struct cpu_snap {
    int64_t t_us;                /* monotonic time of the snapshot */
    int64_t gw;                  /* gateway ticks (tree), -1 = not sampled */
    int64_t pg;                  /* PostgreSQL ticks (tree), -1 = not sampled */
    uint64_t busy[LT_MAX_CPUS];  /* busy jiffies per CPU */
    uint64_t total[LT_MAX_CPUS]; /* all jiffies per CPU */
    unsigned n;                  /* CPUs read */
};

static void
snap_take(const struct lt_opts *o, struct cpu_snap *s)
{
    s->t_us = lt_mono_us();
    s->gw = o->n_gateway_pids ? lt_tree_cpu_ticks(o->gateway_pids, o->n_gateway_pids) : -1;
    s->pg = o->pg_pid ? lt_tree_cpu_ticks(&o->pg_pid, 1) : -1;
    s->n = lt_cpu_stat(s->busy, s->total, LT_MAX_CPUS);
}

/* Fills the CPU figures of r from two snapshots. */
static void
snap_diff(const struct cpu_snap *a, const struct cpu_snap *b, struct lt_result *r)
{
    double hz = (double)sysconf(_SC_CLK_TCK), win = (double)(b->t_us - a->t_us) / 1e6;

    if (win <= 0)
        return;
    if (a->gw >= 0 && b->gw >= 0) {
        r->gw_cpu_s = (double)(b->gw - a->gw) / hz;
        r->gw_cpu_pct = r->gw_cpu_s / win * 100.0;
    }
    if (a->pg >= 0 && b->pg >= 0)
        r->pg_cpu_pct = (double)(b->pg - a->pg) / hz / win * 100.0;
    r->n_cpus = 0;
    for (unsigned i = 0; i < a->n && i < b->n; i++)
        r->cpu_busy_pct[r->n_cpus++] =
            b->total[i] > a->total[i]
                ? (double)(b->busy[i] - a->busy[i]) / (double)(b->total[i] - a->total[i]) * 100.0
                : 0.0;
}

/* ---- phases ---- */

static void
measure_held(struct drv *d)
{
    const struct lt_opts *o = d->o;

    if (o->n_gateway_pids)
        d->r->rss_held_kb = lt_tree_rss_kb(o->gateway_pids, o->n_gateway_pids);
    d->r->sock_mem_held = lt_sockstat_tcp_mem();
}

static int
start_subscribers(struct drv *d, struct gw_buf *err)
{
    for (unsigned i = 0; i < d->o->procs; i++)
        if (spawn(d, R_SUB, i, err))
            return GW_EIO;
    pump_until(d, all_ready, lt_mono_us() + ((int64_t)d->o->join_timeout_s + 10) * 1000000);
    d->r->connect_s = (double)(lt_mono_us() - d->t0_us) / 1e6;
    return 0;
}

static void
run_idle(struct drv *d)
{
    int64_t t = lt_mono_us(), hold = (int64_t)(d->o->seconds * 1e6);
    struct cpu_snap *s = gw_xcalloc(2, sizeof(*s));

    snap_take(d->o, &s[0]);
    pump_until(d, NULL, t + (hold < SETTLE_US ? hold : SETTLE_US));
    measure_held(d);
    pump_until(d, NULL, t + hold);
    snap_take(d->o, &s[1]);
    snap_diff(&s[0], &s[1], d->r);
    d->r->window_s = (double)(lt_mono_us() - t) / 1e6;
    free(s);
}

/* Churn and publishers (db: the writer), then the drain. */
static int
run_traffic(struct drv *d, struct gw_buf *err)
{
    const struct lt_opts *o = d->o;
    struct cpu_snap *s = gw_xcalloc(2, sizeof(*s));
    int64_t t, t_end;
    int rc = 0;

    measure_held(d);
    snap_take(o, &s[0]);
    t = s[0].t_us;
    if (lt_has_churn(o))
        rc = spawn(d, R_CHURN, 0, err);
    for (unsigned i = 0; !rc && i < (o->scenario == LT_SC_DB ? 1 : o->publishers); i++)
        rc = spawn(d, o->scenario == LT_SC_DB ? R_WRITER : R_PUB, i, err);
    if (!rc)
        pump_until(d, pubs_done, t + (int64_t)(o->seconds * 1e6) + PUB_SLACK_US);
    t_end = lt_mono_us();
    d->r->window_s = (double)(t_end - t) / 1e6;
    stop_role(d, R_CHURN);
    if (!rc)
        pump_until(d, drained, t_end + (int64_t)(o->drain_s * 1e6));
    snap_take(o, &s[1]);
    snap_diff(&s[0], &s[1], d->r);
    free(s);
    return rc;
}

static void
drv_init(struct drv *d, const struct lt_opts *o, struct lt_result *r)
{
    memset(d, 0, sizeof(*d));
    memset(r, 0, sizeof(*r));
    d->o = o;
    d->r = r;
    d->kids = gw_xcalloc(MAX_KIDS, sizeof(*d->kids));
    d->pfd = gw_xcalloc(MAX_KIDS, sizeof(*d->pfd));
    d->pk = gw_xcalloc(MAX_KIDS, sizeof(*d->pk));
    d->buf = gw_xmalloc(buf_cap());
    d->sec = gw_xmalloc(sizeof(*d->sec));
    d->sofar = gw_xmalloc(sizeof(*d->sofar));
    lt_hist_init(d->sec);
    lt_hist_init(d->sofar);
    lt_hist_init(&r->lat);
    lt_hist_init(&r->join);
    lt_hist_init(&r->pub.commit);
    r->gw_cpu_pct = r->gw_cpu_s = r->pg_cpu_pct = -1.0;
    r->rss_baseline_kb = r->rss_held_kb = r->sock_mem_baseline = r->sock_mem_held = -1;
    r->rss_slope_kb_min = NAN;
    r->started_us = lt_wall_us();
    d->t0_us = d->t_sample_us = lt_mono_us();
    d->progress = o->progress == 1 || (o->progress < 0 && isatty(2));
}

/* Soak: the RSS slope over the publishing phase after its first 20 %. */
static void
rss_slope(struct lt_result *r, double t_pub_s)
{
    size_t n = r->n_timeline;
    double *x = gw_xcalloc(n ? n : 1, sizeof(*x)), *y = gw_xcalloc(n ? n : 1, sizeof(*y));
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (r->timeline[i].t_s > t_pub_s + r->window_s)
            break;
        x[k] = r->timeline[i].t_s;
        y[k++] = (double)r->timeline[i].rss_kb;
    }
    r->rss_slope_kb_min = lt_slope(x, y, k, t_pub_s + 0.2 * r->window_s) * 60.0;
    free(x);
    free(y);
}

static void
finish(struct drv *d)
{
    struct lt_result *r = d->r;
    struct rusage ru;

    sum_stats(d, R_SUB, &r->subs);
    sum_stats(d, R_CHURN, &r->churn);
    sum_pub(d, &r->pub.st);
    r->pub_ok = true;
    for (unsigned i = 0; i < d->n_kids; i++)
        if ((d->kids[i].role == R_PUB || d->kids[i].role == R_WRITER) &&
            (!d->kids[i].final || d->kids[i].status != 0))
            r->pub_ok = false;
    r->run_s = (double)(lt_mono_us() - d->t0_us) / 1e6;
    if (getrusage(RUSAGE_CHILDREN, &ru) == 0 && r->run_s > 0)
        r->load_cpu_pct = ((double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6) /
                          r->run_s * 100.0;
    if (d->progress)
        fputc('\n', stderr);
}

int
lt_run(const struct lt_opts *o, struct lt_result *r, struct gw_buf *err)
{
    struct drv d;
    double t_pub_s = 0;
    int rc = 0;

    drv_init(&d, o, r);
    signal(SIGPIPE, SIG_IGN);
    if (o->n_gateway_pids &&
        (r->rss_baseline_kb = lt_tree_rss_kb(o->gateway_pids, o->n_gateway_pids)) < 0) {
        gw_buf_printf(err, "--gateway-pid: no such process");
        rc = GW_EINVAL;
        goto out;
    }
    r->sock_mem_baseline = lt_sockstat_tcp_mem();
    if (o->scenario == LT_SC_DB && (rc = lt_pg_setup(o->pg, o->table, SETUP_WAIT_S, err)) != 0)
        goto out;
    if ((rc = start_subscribers(&d, err)) != 0)
        goto out;
    t_pub_s = (double)(lt_mono_us() - d.t0_us) / 1e6;
    if (o->scenario == LT_SC_IDLE)
        run_idle(&d);
    else
        rc = run_traffic(&d, err);
out:
    stop_all(&d);
    finish(&d);
    if (o->scenario == LT_SC_SOAK)
        rss_slope(r, t_pub_s);
    free(d.kids);
    free(d.pfd);
    free(d.pk);
    free(d.buf);
    free(d.sec);
    free(d.sofar);
    return rc;
}

void
lt_result_release(struct lt_result *r)
{
    if (!r)
        return;
    free(r->timeline);
    r->timeline = NULL;
    r->n_timeline = r->cap_timeline = 0;
}
