/*
 * jobs.c: the serial query queue and the ordered event queue of a connected listener.
 *
 * Queries run one at a time (no pipelining): a job is sent when none is in flight, its
 * results are handled as they arrive, and the next job is sent when PQgetResult returns
 * NULL. Setup after every connect is a fixed run of jobs: [install] -> LISTEN ->
 * enabled tables -> [cursor, first connect only] -> catch-up pages -> READY.
 *
 * Events: notifications are queued in arrival order. A `tidings` notification whose
 * payload is only `<kind>:<id>` waits in the queue for a FETCH job, and everything behind
 * it waits too; plain-channel NOTIFYs take their place in the same queue. While the
 * catch-up runs the queue is held: catch-up rows (single-row mode) are delivered as they
 * arrive, then the queue drains through the exactly-once filter of order.c, which drops
 * what the catch-up already delivered.
 */
#include "listen/listen_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/loop.h"

#define PG_STR_(x) #x
#define PG_STR(x)  PG_STR_(x)

#define SQL_TABLES "SELECT schema, name, replica_full, columns::text FROM tidings.enabled_tables"
#define SQL_FETCH  "SELECT kind, payload FROM tidings.outbox WHERE id = $1"
#define SQL_CATCHUP \
    "SELECT id, kind, payload FROM tidings.catchup($1, $2, " PG_STR(PG_CATCHUP_PAGE) ")"
#define SQL_SAVE                                                      \
    "INSERT INTO tidings.cursor (name, last_id, gaps, updated_at) "   \
    "VALUES ('default', $1, $2, now()) ON CONFLICT (name) DO UPDATE " \
    "SET last_id = EXCLUDED.last_id, gaps = EXCLUDED.gaps, updated_at = now()"
#define SQL_PRUNE "SELECT tidings.prune($1)"
#define SQL_PING  "SELECT 1"
/* The saved cursor when recent enough, else the start of a fresh count: max(id) and the
 * ids among the 1000 below it that are not committed yet (their notifications may still
 * come). */
#define SQL_POSITION                                                              \
    "WITH m AS (SELECT coalesce(max(id), 0) AS m FROM tidings.outbox) "           \
    "SELECT c.last_id, c.gaps::text, m.m, "                                       \
    "ARRAY(SELECT g FROM generate_series(greatest(m.m - 1000, 1), m.m - 1) AS g " \
    "WHERE NOT EXISTS (SELECT 1 FROM tidings.outbox o WHERE o.id = g))::text "    \
    "FROM m LEFT JOIN tidings.cursor c ON c.name = 'default' "                    \
    "AND c.updated_at > now() - make_interval(secs => $1::float8)"

static const char *
job_step(enum pg_job_type t)
{
    switch (t) {
    case PG_JOB_INSTALL:
        return "install";
    case PG_JOB_LISTEN:
        return "listen";
    case PG_JOB_TABLES:
        return "load tables";
    case PG_JOB_POSITION:
        return "read cursor";
    case PG_JOB_CATCHUP:
        return "catch-up";
    case PG_JOB_FETCH:
        return "fetch";
    case PG_JOB_SAVE:
        return "save cursor";
    case PG_JOB_PRUNE:
        return "prune";
    case PG_JOB_PING:
        return "ping";
    }
    return "query";
}

static void
emit(struct pg_listener *l, const struct pg_event *ev)
{
    if (!l->dead)
        l->on_event(l->ud, ev);
}

/* Delivers an outbox event unless it is a duplicate; json NULL = the row was gone. */
static void
deliver_outbox(struct pg_listener *l, int kind, int64_t id, const char *json, size_t len,
               bool restart)
{
    struct pg_event ev = { 0 };

    if (!pg__order_accept(&l->order, id, gw_now_ms()))
        return;
    if (!json || (kind != PG_EVENT_CHANGE && kind != PG_EVENT_BROADCAST))
        return;
    ev.kind = (enum pg_event_kind)kind;
    ev.id = id;
    ev.json = json;
    ev.len = len;
    ev.restart_catchup = restart;
    emit(l, &ev);
}

static void
item_free(struct pg_item *it)
{
    if (!it)
        return;
    free(it->channel);
    free(it->payload);
    free(it);
}

static struct pg_item *
item_push(struct pg_listener *l, enum pg_event_kind kind, int64_t id)
{
    struct pg_item *it = gw_xcalloc(1, sizeof(*it));

    it->kind = kind;
    it->id = id;
    *l->items_tail = it;
    l->items_tail = &it->next;
    return it;
}

/* Delivers queued events from the head until one waits for its payload. */
static void
pump(struct pg_listener *l)
{
    while (!l->catching_up && !l->dead && l->items && !l->items->waiting) {
        struct pg_item *it = l->items;

        l->items = it->next;
        if (!l->items)
            l->items_tail = &l->items;
        if (it->kind == PG_EVENT_NOTIFY) {
            struct pg_event ev = {
                .kind = PG_EVENT_NOTIFY, .channel = it->channel, .json = it->payload, .len = it->len
            };

            emit(l, &ev);
        } else {
            deliver_outbox(l, (int)it->kind, it->id, it->missing ? NULL : it->payload, it->len,
                           false);
        }
        item_free(it);
    }
}

struct pg_job *
pg__job_push(struct pg_listener *l, enum pg_job_type type, bool front)
{
    struct pg_job *j = gw_xcalloc(1, sizeof(*j));

    j->type = type;
    if (front && l->jobs) {
        j->next = l->jobs;
        l->jobs = j;
    } else {
        *l->jobs_tail = j;
        l->jobs_tail = &j->next;
    }
    return j;
}

static struct pg_job *
job_pop(struct pg_listener *l)
{
    struct pg_job *j = l->jobs;

    if (j) {
        l->jobs = j->next;
        if (!l->jobs)
            l->jobs_tail = &l->jobs;
        j->next = NULL;
    }
    return j;
}

void
pg__jobs_clear(struct pg_listener *l, bool all_items)
{
    struct pg_job *j;
    struct pg_item **pp = &l->items;

    free(l->inflight);
    l->inflight = NULL;
    while ((j = job_pop(l)))
        free(j);
    l->save_queued = false;
    /* Outbox events come back through the catch-up; plain NOTIFYs have no other copy. */
    while (*pp) {
        struct pg_item *it = *pp;

        if (all_items || it->kind != PG_EVENT_NOTIFY) {
            *pp = it->next;
            item_free(it);
        } else {
            pp = &it->next;
        }
    }
    l->items_tail = pp;
}

void
pg__setup_start(struct pg_listener *l)
{
    l->catching_up = true;
    if (l->install_sql) /* every connect: cheap (~10 ms), and right after a failover */
        pg__job_push(l, PG_JOB_INSTALL, false);
    pg__job_push(l, PG_JOB_LISTEN, false);
    pg__job_push(l, PG_JOB_TABLES, false);
    if (!l->have_position)
        pg__job_push(l, PG_JOB_POSITION, false);
    pg__job_push(l, PG_JOB_CATCHUP, false);
    pg__jobs_kick(l);
}

static void
listen_query(struct pg_listener *l, struct gw_buf *q)
{
    gw_buf_append_str(q, "LISTEN " PG_CHANNEL ";");
    for (size_t i = 0; i < l->n_channels; i++) {
        char *id = PQescapeIdentifier(l->conn, l->channels[i], strlen(l->channels[i]));

        if (id)
            gw_buf_printf(q, "LISTEN %s;", id);
        PQfreemem(id);
    }
}

static int
send_params(struct pg_listener *l, const char *sql, int n, const char *const *vals)
{
    return PQsendQueryParams(l->conn, sql, n, NULL, vals, NULL, NULL, 0);
}

/* Sends the position-dependent queries (catch-up, save) with the current position. */
static int
send_position(struct pg_listener *l, const char *sql, struct gw_buf *q)
{
    char max[24];
    const char *vals[2];

    snprintf(max, sizeof(max), "%" PRId64, l->order.max_id);
    pg__order_gaps_text(&l->order, q);
    vals[0] = max;
    vals[1] = q->data;
    return send_params(l, sql, 2, vals);
}

static int
job_send(struct pg_listener *l, struct pg_job *j, struct gw_buf *q)
{
    char num[24];
    const char *vals[1] = { num };

    switch (j->type) {
    case PG_JOB_INSTALL:
        pg__install_query(l->realtime_compat, q);
        return PQsendQuery(l->conn, q->data);
    case PG_JOB_LISTEN:
        listen_query(l, q);
        return PQsendQuery(l->conn, q->data);
    case PG_JOB_TABLES:
        return send_params(l, SQL_TABLES, 0, NULL);
    case PG_JOB_POSITION:
    case PG_JOB_PRUNE:
        snprintf(num, sizeof(num), "%" PRIu32, l->window_s);
        return send_params(l, j->type == PG_JOB_PRUNE ? SQL_PRUNE : SQL_POSITION, 1, vals);
    case PG_JOB_CATCHUP:
        return send_position(l, SQL_CATCHUP, q) && PQsetSingleRowMode(l->conn);
    case PG_JOB_FETCH:
        snprintf(num, sizeof(num), "%" PRId64, j->item->id);
        return send_params(l, SQL_FETCH, 1, vals);
    case PG_JOB_SAVE:
        l->order.dirty = false;
        l->save_ms = gw_now_ms();
        return send_position(l, SQL_SAVE, q);
    case PG_JOB_PING:
        return PQsendQuery(l->conn, SQL_PING);
    }
    return 0;
}

void
pg__jobs_kick(struct pg_listener *l)
{
    struct gw_buf q;

    gw_buf_init(&q);
    while (l->conn && !l->inflight && l->jobs && l->phase >= PG_PHASE_SETUP) {
        struct pg_job *j = job_pop(l);

        gw_buf_reset(&q);
        j->sent_ms = gw_now_ms();
        l->inflight = j;
        if (!job_send(l, j, &q)) {
            pg__fail(l, job_step(j->type), PQerrorMessage(l->conn));
            break;
        }
        if (pg__flush(l) < 0)
            break;
    }
    gw_buf_release(&q);
}

static void
load_tables(struct pg_listener *l, PGresult *r)
{
    struct pg_tableset t = { 0 };

    for (int i = 0; i < PQntuples(r); i++) {
        bool full = PQgetvalue(r, i, 2)[0] == 't';

        if (pg__tables_add(&t, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), full,
                           PQgetvalue(r, i, 3)) < 0)
            gw_log(GW_LOG_WARN, "pg_table_columns_bad", "table=%s.%s", PQgetvalue(r, i, 0),
                   PQgetvalue(r, i, 1));
    }
    pg__tables_release(&l->tables);
    l->tables = t;
    l->tables.loaded = true;
}

/* First connect: start from the saved cursor (replayed as restart catch-up) when it is
 * recent, else from now. */
static void
load_position(struct pg_listener *l, PGresult *r)
{
    bool saved = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0);
    int64_t *gaps = NULL;
    size_t n = 0;
    int64_t max = 0;

    if (PQntuples(r) != 1) {
        pg__fail(l, "read cursor", "unexpected result");
        return;
    }
    if (pg__parse_id_array(PQgetvalue(r, 0, saved ? 1 : 3), &gaps, &n) < 0)
        gw_log(GW_LOG_WARN, "pg_cursor_gaps_bad", "saved=%d", saved);
    max = strtoll(PQgetvalue(r, 0, saved ? 0 : 2), NULL, 10);
    pg__order_reset(&l->order, max, gaps, n, gw_now_ms());
    l->have_position = true;
    l->restart_pending = saved;
    gw_log(GW_LOG_DEBUG, "pg_position", "from=%s last_id=%" PRId64 " gaps=%zu",
           saved ? "cursor" : "now", max, pg__order_gap_count(&l->order));
    free(gaps);
}

static void
fetched(struct pg_listener *l, struct pg_job *j, PGresult *r)
{
    struct pg_item *it = j->item;

    (void)l;
    it->waiting = false;
    if (!r || PQntuples(r) != 1) {
        it->missing = true;
        return;
    }
    it->kind = (enum pg_event_kind)atoi(PQgetvalue(r, 0, 0));
    it->len = (size_t)PQgetlength(r, 0, 1);
    it->payload = gw_xmalloc(it->len + 1);
    memcpy(it->payload, PQgetvalue(r, 0, 1), it->len + 1);
}

static void
catchup_row(struct pg_listener *l, struct pg_job *j, PGresult *r)
{
    if (PQntuples(r) != 1)
        return;
    j->rows++;
    deliver_outbox(l, atoi(PQgetvalue(r, 0, 1)), strtoll(PQgetvalue(r, 0, 0), NULL, 10),
                   PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2), l->restart_pending);
}

static void
job_result(struct pg_listener *l, struct pg_job *j, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);

    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

        pg__fail(l, job_step(j->type), msg ? msg : PQresultErrorMessage(r));
        return;
    }
    j->ok = true;
    if (j->type == PG_JOB_TABLES && st == PGRES_TUPLES_OK)
        load_tables(l, r);
    else if (j->type == PG_JOB_POSITION && st == PGRES_TUPLES_OK)
        load_position(l, r);
    else if (j->type == PG_JOB_FETCH && st == PGRES_TUPLES_OK)
        fetched(l, j, r);
    else if (j->type == PG_JOB_CATCHUP && st == PGRES_SINGLE_TUPLE)
        catchup_row(l, j, r);
}

static void
catchup_done(struct pg_listener *l, struct pg_job *j)
{
    if (j->rows >= PG_CATCHUP_PAGE) {
        pg__job_push(l, PG_JOB_CATCHUP, true);
        return;
    }
    l->catching_up = false;
    l->restart_pending = false;
    l->phase = PG_PHASE_READY;
    l->ready_ms = gw_now_ms();
    l->prune_ms = l->ready_ms;
    /* Save the position at once: a crash before the first periodic save must not make the
     * next process start from max(id) and skip what was committed in between. */
    l->order.dirty = true;
    if (!l->save_queued) {
        l->save_queued = true;
        pg__job_push(l, PG_JOB_SAVE, false);
    }
    pg__set_state(l, PG_STATE_READY, "listening");
}

static void
job_done(struct pg_listener *l)
{
    struct pg_job *j = l->inflight;

    l->inflight = NULL;
    if (!j->ok) {
        pg__fail(l, job_step(j->type), "no result");
        free(j);
        return;
    }
    if (j->type == PG_JOB_SAVE)
        l->save_queued = false;
    else if (j->type == PG_JOB_FETCH && j->item->waiting)
        fetched(l, j, NULL);
    else if (j->type == PG_JOB_CATCHUP)
        catchup_done(l, j);
    free(j);
    pg__jobs_kick(l);
}

static void
drain_results(struct pg_listener *l)
{
    while (l->conn && l->inflight && !PQisBusy(l->conn)) {
        PGresult *r = PQgetResult(l->conn);

        if (!r) {
            job_done(l);
            continue;
        }
        job_result(l, l->inflight, r);
        PQclear(r);
    }
}

static void
outbox_notify(struct pg_listener *l, const char *payload)
{
    int kind;
    int64_t id;
    const char *json;
    struct pg_item *it;

    if (pg__parse_notify(payload, &kind, &id, &json) < 0) {
        gw_log(GW_LOG_DEBUG, "pg_notify_bad", "len=%zu", strlen(payload));
        return;
    }
    if (kind == 0) {
        pg__job_push(l, PG_JOB_TABLES, false);
        return;
    }
    if (kind != PG_EVENT_CHANGE && kind != PG_EVENT_BROADCAST)
        return;
    if (!json && l->have_position && pg__order_is_dup(&l->order, id)) {
        l->order.dups++;
        return;
    }
    it = item_push(l, (enum pg_event_kind)kind, id);
    if (json) {
        it->len = strlen(json);
        it->payload = gw_xstrdup(json);
    } else {
        it->waiting = true;
        pg__job_push(l, PG_JOB_FETCH, false)->item = it;
    }
}

static void
drain_notifies(struct pg_listener *l)
{
    PGnotify *n;

    while (l->conn && (n = PQnotifies(l->conn))) {
        if (strcmp(n->relname, PG_CHANNEL) == 0) {
            outbox_notify(l, n->extra);
        } else {
            struct pg_item *it = item_push(l, PG_EVENT_NOTIFY, 0);

            it->channel = gw_xstrdup(n->relname);
            it->len = strlen(n->extra);
            it->payload = gw_xstrdup(n->extra);
        }
        PQfreemem(n);
    }
}

void
pg__input(struct pg_listener *l)
{
    if (!PQconsumeInput(l->conn)) {
        pg__fail(l, NULL, PQerrorMessage(l->conn));
        return;
    }
    l->io_ms = gw_now_ms();
    if (l->flushing && pg__flush(l) < 0)
        return;
    drain_results(l);
    if (l->conn)
        drain_notifies(l);
    if (l->conn && PQstatus(l->conn) == CONNECTION_BAD) {
        pg__fail(l, NULL, PQerrorMessage(l->conn));
        return;
    }
    if (l->conn) {
        pg__jobs_kick(l);
        pump(l);
    }
}

/* The longest silence allowed while job j runs. */
static uint64_t
job_timeout(const struct pg_job *j)
{
    switch (j->type) {
    case PG_JOB_PING:
        return PG_PING_TIMEOUT_MS;
    case PG_JOB_INSTALL:
    case PG_JOB_PRUNE:
        return PG_SLOW_TIMEOUT_MS;
    default:
        return PG_QUERY_TIMEOUT_MS;
    }
}

void
pg__housekeeping(struct pg_listener *l, uint64_t now)
{
    if (l->inflight) {
        uint64_t since = l->inflight->sent_ms > l->io_ms ? l->inflight->sent_ms : l->io_ms;

        if (now - since > job_timeout(l->inflight)) {
            pg__fail(l, job_step(l->inflight->type), "no answer from the server in time");
            return;
        }
    }
    if (l->phase != PG_PHASE_READY)
        return;
    pg__order_expire(&l->order, now, (uint64_t)l->window_s * 1000);
    if (now - l->prune_ms >= PG_PRUNE_MS) {
        l->prune_ms = now;
        l->order.dirty = true; /* refreshes the cursor's updated_at too */
        pg__job_push(l, PG_JOB_PRUNE, false);
    }
    if (l->order.dirty && !l->save_queued && now - l->save_ms >= PG_SAVE_MS) {
        l->save_queued = true;
        pg__job_push(l, PG_JOB_SAVE, false);
    }
    if (!l->inflight && !l->jobs && now - l->io_ms >= PG_PING_IDLE_MS)
        pg__job_push(l, PG_JOB_PING, false);
    pg__jobs_kick(l);
}

void
pg__save_now(struct pg_listener *l)
{
    struct gw_buf q;

    if (!l->conn || l->phase != PG_PHASE_READY || l->inflight || !l->order.dirty)
        return;
    gw_buf_init(&q);
    PQconsumeInput(l->conn); /* unread input would turn our close into a reset */
    if (send_position(l, SQL_SAVE, &q))
        PQflush(l->conn);
    gw_buf_release(&q);
}
