/*
 * writer.c: table set-up and the paced row writer (writer.h).
 *
 * The connection runs in libpq pipeline mode, non-blocking. The main loop refills the token
 * bucket, sends whole transactions while tokens and in-flight room allow, flushes, waits on
 * the socket with ppoll() until the next token is due (at most 5 ms), and reads results.
 * Results come back in order: one COMMAND_OK (or an error) and then PIPELINE_SYNC per
 * transaction, so a FIFO of the transactions in flight (send time and business ids) is
 * enough to account for each commit.
 */
#define _GNU_SOURCE /* ppoll */
#include "loadtest/writer.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BURST_S       0.02     /* token bucket depth, in seconds of rate */
#define MAX_WAIT_US   5000     /* longest sleep between two looks at the socket */
#define DRAIN_US      10000000 /* how long to wait for transactions in flight at the end */
#define MAX_ROWS_TX   1000     /* rows per transaction, upper bound */
#define SETUP_STEP_US 250000   /* retry period of enable_changes */

struct tx {
    int64_t sent_us; /* monotonic send time */
};

struct wr {
    const struct lt_writer_opts *o; /* options */
    PGconn *pg;                     /* the connection */
    uint64_t *subs;                 /* subscribers per business id */
    struct tx *ring;                /* transactions in flight, FIFO */
    unsigned *biz;                  /* their business ids, rows_per_tx per slot */
    unsigned head, n;               /* FIFO start and length */
    char (*num)[24];                /* parameter text: business id, ts_us per row */
    const char **vals;              /* parameter pointers, 3 per row */
    char *payload;                  /* payload text shared by every row */
    uint64_t rng;                   /* xorshift64* state */
    bool cur_ok, cur_err;           /* results seen for the head transaction */
    struct lt_writer_final *out;    /* results */
};

/* ---- set-up ---- */

static int
exec_ok(PGconn *pg, const char *sql, struct gw_buf *err, char *state, size_t state_len)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType s = PQresultStatus(r);
    int rc = 0;

    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);

        if (state)
            snprintf(state, state_len, "%s", st ? st : "");
        gw_buf_reset(err);
        gw_buf_printf(err, "%s: %s", sql, PQerrorMessage(pg));
        rc = GW_EIO;
    }
    PQclear(r);
    return rc;
}

int
lt_pg_setup(const char *conninfo, const char *table, unsigned wait_s, struct gw_buf *err)
{
    PGconn *pg = PQconnectdb(conninfo);
    int64_t deadline = lt_mono_us() + (int64_t)wait_s * 1000000;
    char sql[512], state[8];
    int rc = GW_EIO;

    if (PQstatus(pg) != CONNECTION_OK) {
        gw_buf_printf(err, "connect: %s", PQerrorMessage(pg));
        goto out;
    }
    if (exec_ok(pg, "SET client_min_messages = warning", err, NULL, 0))
        goto out;
    snprintf(sql, sizeof(sql),
             "CREATE TABLE IF NOT EXISTS public.%s (id bigserial PRIMARY KEY, business_id int "
             "NOT NULL, ts_us bigint NOT NULL, payload text NOT NULL)",
             table);
    if (exec_ok(pg, sql, err, NULL, 0))
        goto out;
    snprintf(sql, sizeof(sql), "TRUNCATE public.%s", table);
    if (exec_ok(pg, sql, err, NULL, 0))
        goto out;
    snprintf(sql, sizeof(sql), "SELECT tidings.enable_changes('public.%s')", table);
    while ((rc = exec_ok(pg, sql, err, state, sizeof(state))) != 0) {
        /* 3F000 no schema, 42883 no function: the gateway has not installed the SQL yet. */
        if ((strcmp(state, "3F000") && strcmp(state, "42883")) || lt_mono_us() > deadline)
            goto out;
        nanosleep(&(struct timespec){ 0, SETUP_STEP_US * 1000 }, NULL);
    }
out:
    PQfinish(pg);
    return rc;
}

/* ---- the writer ---- */

static uint64_t
rnd(struct wr *w)
{
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ULL;
}

static int
prepare(struct wr *w, struct gw_buf *err)
{
    struct gw_buf sql;
    int rc;

    gw_buf_init(&sql);
    gw_buf_printf(&sql, "INSERT INTO public.%s (business_id, ts_us, payload) VALUES ", w->o->table);
    for (unsigned r = 0; r < w->o->rows_per_tx; r++)
        gw_buf_printf(&sql, "%s($%u::int, $%u::bigint, $%u)", r ? ", " : "", 3 * r + 1, 3 * r + 2,
                      3 * r + 3);
    {
        PGresult *res = PQprepare(w->pg, "ins", sql.data, 0, NULL);

        rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : GW_EIO;
        if (rc)
            gw_buf_printf(err, "prepare: %s", PQerrorMessage(w->pg));
        PQclear(res);
    }
    gw_buf_release(&sql);
    return rc;
}

static int
send_tx(struct wr *w)
{
    unsigned n = w->o->rows_per_tx, slot = (w->head + w->n) % w->o->max_inflight;
    unsigned *biz = &w->biz[(size_t)slot * n];
    int64_t ts;

    for (unsigned r = 0; r < n; r++) {
        biz[r] = (unsigned)(rnd(w) % w->o->businesses);
        snprintf(w->num[2 * r], sizeof(w->num[0]), "%u", biz[r]);
    }
    ts = lt_wall_us();
    for (unsigned r = 0; r < n; r++)
        snprintf(w->num[2 * r + 1], sizeof(w->num[0]), "%lld", (long long)ts);
    if (!PQsendQueryPrepared(w->pg, "ins", (int)(3 * n), w->vals, NULL, NULL, 0) ||
        !PQpipelineSync(w->pg))
        return GW_EIO;
    w->ring[slot].sent_us = lt_mono_us();
    w->n++;
    w->out->st.tx_sent++;
    return 0;
}

/* The head transaction's Sync arrived: account for it and pop it. */
static void
finish_tx(struct wr *w)
{
    unsigned n = w->o->rows_per_tx, *biz = &w->biz[(size_t)w->head * n];
    struct lt_writer_stats *st = &w->out->st;

    if (!w->n)
        return;
    if (w->cur_ok && !w->cur_err) {
        st->tx_ok++;
        st->rows_ok += n;
        for (unsigned r = 0; r < n; r++)
            st->expected += w->subs[biz[r]];
        lt_hist_record(&w->out->commit, lt_mono_us() - w->ring[w->head].sent_us);
        st->t_end_us = lt_wall_us();
    } else {
        st->tx_err++;
    }
    w->head = (w->head + 1) % w->o->max_inflight;
    w->n--;
    w->cur_ok = w->cur_err = false;
}

static int
read_results(struct wr *w)
{
    unsigned nulls = 0;

    if (!PQconsumeInput(w->pg))
        return GW_EIO;
    while (w->n && !PQisBusy(w->pg) && nulls < 2) {
        PGresult *r = PQgetResult(w->pg);

        if (!r) {
            nulls++;
            continue;
        }
        nulls = 0;
        switch (PQresultStatus(r)) {
        case PGRES_COMMAND_OK:
            w->cur_ok = true;
            break;
        case PGRES_PIPELINE_SYNC:
            finish_tx(w);
            break;
        default:
            w->cur_err = true;
            break;
        }
        PQclear(r);
    }
    return 0;
}

/* Waits for the socket (or until timeout_us passes), then reads what arrived. */
static int
wait_io(struct wr *w, int64_t timeout_us)
{
    int fl = PQflush(w->pg);
    struct pollfd pfd = { .fd = PQsocket(w->pg), .events = POLLIN };
    struct timespec ts;

    if (fl < 0)
        return GW_EIO;
    if (fl > 0)
        pfd.events |= POLLOUT;
    if (timeout_us < 0)
        timeout_us = 0;
    ts.tv_sec = timeout_us / 1000000;
    ts.tv_nsec = (long)(timeout_us % 1000000) * 1000;
    if (ppoll(&pfd, 1, &ts, NULL) > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)))
        return read_results(w);
    return 0;
}

static void
maybe_report(struct wr *w, int64_t now, int64_t *last)
{
    if (w->o->report_fd < 0 || now - *last < LT_PROGRESS_MS * 1000)
        return;
    lt_msg_send(w->o->report_fd, LT_MSG_WRITER_PROGRESS, &w->out->st, sizeof(w->out->st));
    *last = now;
}

/* The paced part: sends for o->seconds. */
static int
pace(struct wr *w)
{
    const struct lt_writer_opts *o = w->o;
    double burst = o->rate * BURST_S > o->rows_per_tx ? o->rate * BURST_S : o->rows_per_tx;
    double tokens = o->rows_per_tx;
    int64_t t0 = lt_mono_us(), last = t0, end = t0 + (int64_t)(o->seconds * 1e6), rep = t0, wait;

    w->out->st.t0_us = lt_wall_us();
    for (int64_t now = t0; now < end; now = lt_mono_us()) {
        tokens += o->rate * (double)(now - last) / 1e6;
        last = now;
        while (tokens >= o->rows_per_tx && w->n < o->max_inflight) {
            if (send_tx(w))
                return GW_EIO;
            tokens -= o->rows_per_tx;
        }
        if (tokens > burst) {
            w->out->st.tokens_lost += (uint64_t)(tokens - burst);
            tokens = burst;
        }
        /* With the in-flight cap reached only an answer helps: sleep until one comes. */
        wait = w->n >= o->max_inflight ? MAX_WAIT_US
                                       : (int64_t)((o->rows_per_tx - tokens) / o->rate * 1e6);
        if (wait_io(w, wait < MAX_WAIT_US ? wait : MAX_WAIT_US))
            return GW_EIO;
        maybe_report(w, now, &rep);
    }
    w->out->st.window_s = (double)(lt_mono_us() - t0) / 1e6;
    return 0;
}

static void
wr_init(struct wr *w, const struct lt_writer_opts *o, struct lt_writer_final *out)
{
    unsigned n = o->rows_per_tx;

    memset(w, 0, sizeof(*w));
    w->o = o;
    w->out = out;
    memset(out, 0, sizeof(*out));
    lt_hist_init(&out->commit);
    w->subs = gw_xcalloc(o->businesses, sizeof(*w->subs));
    for (unsigned b = 0; b < o->businesses; b++)
        w->subs[b] = o->clients / o->businesses + (b < o->clients % o->businesses);
    w->ring = gw_xcalloc(o->max_inflight, sizeof(*w->ring));
    w->biz = gw_xcalloc((size_t)o->max_inflight * n, sizeof(*w->biz));
    w->num = gw_xcalloc(2 * (size_t)n, sizeof(*w->num));
    w->vals = gw_xcalloc(3 * (size_t)n, sizeof(*w->vals));
    w->payload = gw_xmalloc(o->payload_bytes + 1u);
    memset(w->payload, 'x', o->payload_bytes);
    w->payload[o->payload_bytes] = '\0';
    for (unsigned r = 0; r < n; r++) {
        w->vals[3 * r] = w->num[2 * r];
        w->vals[3 * r + 1] = w->num[2 * r + 1];
        w->vals[3 * r + 2] = w->payload;
    }
    w->rng = o->seed ? o->seed : 0x9e3779b97f4a7c15ULL;
}

static void
wr_release(struct wr *w)
{
    PQfinish(w->pg);
    free(w->subs);
    free(w->ring);
    free(w->biz);
    free(w->num);
    free(w->vals);
    free(w->payload);
}

int
lt_writer_run(const struct lt_writer_opts *o, struct lt_writer_final *out, struct gw_buf *err)
{
    struct wr w;
    int64_t deadline;
    int rc = GW_EIO;

    wr_init(&w, o, out);
    w.pg = PQconnectdb(o->conninfo);
    if (PQstatus(w.pg) != CONNECTION_OK) {
        gw_buf_printf(err, "connect: %s", PQerrorMessage(w.pg));
        goto out;
    }
    if (prepare(&w, err))
        goto out;
    if (!PQenterPipelineMode(w.pg) || PQsetnonblocking(w.pg, 1)) {
        gw_buf_printf(err, "pipeline mode: %s", PQerrorMessage(w.pg));
        goto out;
    }
    rc = pace(&w);
    deadline = lt_mono_us() + DRAIN_US;
    while (!rc && w.n && lt_mono_us() < deadline)
        rc = wait_io(&w, MAX_WAIT_US);
    if (rc)
        gw_buf_printf(err, "pipeline: %s", PQerrorMessage(w.pg));
out:
    wr_release(&w);
    return rc;
}
