/*
 * listener.c: the PostgreSQL connection of the gateway on a gw_loop, with retry.
 *
 * States: IDLE -(retry timer)-> CONNECTING (PQconnectStartParams, then PQconnectPoll on
 * every readiness report, with our own 5 s timeout) -> SETUP (non-blocking; jobs.c runs
 * install, LISTEN, tables, cursor, catch-up) -> READY. Any failure finishes the
 * connection, deletes its watch and arms the retry timer (100 ms, 500 ms, 1 s, 2 s, then
 * every 5 s; back to 100 ms after 10 s of READY).
 *
 * libpq may replace its socket inside PQconnectPoll, often under the same fd number, so
 * after every poll the watch is checked against the socket's (fd, st_dev, st_ino).
 *
 * Reported states: CONNECTING once at start, RETRYING on a failure (a repeat of the same
 * detail is not reported again), READY when caught up. Retry attempts do not report
 * CONNECTING, so a server that stays away yields one report, not one per attempt.
 *
 * Every loop callback runs between enter() and leave(): pg_listener_free() called from
 * inside one of our callbacks only marks the listener dead (no callback runs any more),
 * and leave() destroys it when the outermost callback returns.
 */
#include "listen/listen_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/loop.h"

static const uint64_t backoff_ms[] = { 100, 500, 1000, 2000, 5000 };

static void destroy(struct pg_listener *l);

static void
enter(struct pg_listener *l)
{
    l->depth++;
}

static void
leave(struct pg_listener *l)
{
    if (--l->depth == 0 && l->dead)
        destroy(l);
}

void
pg__set_state(struct pg_listener *l, enum pg_state st, const char *detail)
{
    if (l->announced && l->state == st && strcmp(l->detail, detail) == 0)
        return;
    free(l->detail);
    l->detail = gw_xstrdup(detail);
    l->state = st;
    l->announced = true;
    gw_log(GW_LOG_DEBUG, "pg_state", "state=%d", (int)st);
    if (!l->dead && l->on_state)
        l->on_state(l->ud, st, l->detail);
}

static void
watch_drop(struct pg_listener *l)
{
    gw_watch_del(l->loop, l->watch);
    l->watch = NULL;
}

static void on_watch(void *ud, int fd, unsigned events);

/* Makes the watch follow libpq's socket (by identity, not only its number). */
static int
watch_sync(struct pg_listener *l, unsigned events)
{
    int fd = PQsocket(l->conn);
    struct stat st;

    if (fd < 0 || fstat(fd, &st) != 0) {
        watch_drop(l);
        return GW_EIO;
    }
    if (l->watch && (fd != l->watch_fd || st.st_dev != l->watch_dev || st.st_ino != l->watch_ino))
        watch_drop(l);
    if (!l->watch) {
        l->watch = gw_watch_add(l->loop, fd, events, on_watch, l);
        if (!l->watch)
            return GW_EIO;
        l->watch_fd = fd;
        l->watch_dev = st.st_dev;
        l->watch_ino = st.st_ino;
        l->watch_events = events;
    } else if (events != l->watch_events) {
        gw_watch_set(l->loop, l->watch, events);
        l->watch_events = events;
    }
    return 0;
}

void
pg__want(struct pg_listener *l)
{
    if (watch_sync(l, GW_LOOP_READ | (l->flushing ? GW_LOOP_WRITE : 0)) < 0)
        pg__fail(l, NULL, "lost the connection's socket");
}

int
pg__flush(struct pg_listener *l)
{
    int r = PQflush(l->conn);

    if (r < 0) {
        pg__fail(l, NULL, PQerrorMessage(l->conn));
        return GW_EIO;
    }
    l->flushing = r == 1;
    pg__want(l);
    return l->conn ? 0 : GW_EIO;
}

/* Drops the connection and everything that belongs to it; keeps the position. */
static void
teardown(struct pg_listener *l)
{
    watch_drop(l);
    PQfinish(l->conn);
    l->conn = NULL;
    l->phase = PG_PHASE_IDLE;
    l->flushing = false;
    l->hup_count = 0;
    l->catching_up = false;
    gw_timer_cancel(l->loop, l->connect_timer);
    gw_timer_cancel(l->loop, l->tick_timer);
    pg__jobs_clear(l, false);
}

void
pg__fail(struct pg_listener *l, const char *step, const char *msg)
{
    struct gw_buf d;
    uint64_t now = gw_now_ms();
    size_t i;

    gw_buf_init(&d);
    if (step)
        gw_buf_printf(&d, "%s: ", step);
    /* Before teardown: msg may belong to the connection. */
    pg__first_line(!step && l->fatal ? l->fatal : msg, &d);
    free(l->fatal);
    l->fatal = NULL;
    teardown(l);
    if (l->ready_ms && now - l->ready_ms >= PG_STABLE_MS)
        l->backoff_step = 0;
    l->ready_ms = 0;
    i = l->backoff_step < 4 ? l->backoff_step : 4;
    l->backoff_step++;
    gw_timer_set(l->loop, l->retry_timer, backoff_ms[i]);
    gw_log(GW_LOG_DEBUG, "pg_retry", "delay_ms=%u", (unsigned)backoff_ms[i]);
    pg__set_state(l, PG_STATE_RETRYING, d.data);
    gw_buf_release(&d);
}

/* Notices are dropped, except a FATAL the server sends before it closes the connection
 * (libpq passes it here when no query runs): it becomes the detail of the failure. */
static void
on_notice(void *arg, const char *message)
{
    struct pg_listener *l = arg;

    if (strncmp(message, "FATAL:", 6) == 0) {
        free(l->fatal);
        l->fatal = gw_xstrdup(message);
    }
}

static void
connect_start(struct pg_listener *l)
{
    if (!l->announced)
        pg__set_state(l, PG_STATE_CONNECTING, "connecting");
    l->conn = PQconnectStartParams((const char *const *)l->params.keys,
                                   (const char *const *)l->params.vals, 0);
    if (!l->conn) {
        pg__fail(l, "connect", "out of memory");
        return;
    }
    PQsetNoticeProcessor(l->conn, on_notice, l);
    if (PQstatus(l->conn) == CONNECTION_BAD) {
        pg__fail(l, NULL, PQerrorMessage(l->conn));
        return;
    }
    l->phase = PG_PHASE_CONNECTING;
    gw_timer_set(l->loop, l->connect_timer, PG_CONNECT_TIMEOUT_MS);
    /* libpq: after PQconnectStart, act as if PQconnectPoll had said WRITING. */
    if (watch_sync(l, GW_LOOP_WRITE) < 0)
        pg__fail(l, "connect", "cannot watch the socket");
}

static void
connected(struct pg_listener *l)
{
    gw_timer_cancel(l->loop, l->connect_timer);
    if (PQsetnonblocking(l->conn, 1) != 0) {
        pg__fail(l, "connect", PQerrorMessage(l->conn));
        return;
    }
    l->phase = PG_PHASE_SETUP;
    l->io_ms = gw_now_ms();
    l->flushing = false;
    gw_timer_set(l->loop, l->tick_timer, PG_TICK_MS);
    pg__want(l);
    if (l->conn)
        pg__setup_start(l);
}

static void
connect_poll(struct pg_listener *l, unsigned events)
{
    unsigned want;

    switch (PQconnectPoll(l->conn)) {
    case PGRES_POLLING_READING:
        want = GW_LOOP_READ;
        break;
    case PGRES_POLLING_WRITING:
        want = GW_LOOP_WRITE;
        break;
    case PGRES_POLLING_OK:
        if (events & GW_LOOP_ERROR)
            watch_drop(l);
        connected(l);
        return;
    default:
        pg__fail(l, NULL, PQerrorMessage(l->conn));
        return;
    }
    if (events & GW_LOOP_ERROR)
        watch_drop(l); /* that watch is dead; a new one follows the (maybe new) socket */
    if (watch_sync(l, want) < 0)
        pg__fail(l, "connect", "lost the connection's socket");
}

static void
conn_io(struct pg_listener *l, unsigned events)
{
    if ((events & GW_LOOP_WRITE) && l->flushing && pg__flush(l) < 0)
        return;
    if (events & (GW_LOOP_READ | GW_LOOP_ERROR))
        pg__input(l);
    if (l->conn && (events & GW_LOOP_ERROR)) {
        /* libpq has not seen the end yet: watch again, the next report carries it. */
        watch_drop(l);
        pg__want(l);
    }
}

static void
on_watch(void *ud, int fd, unsigned events)
{
    struct pg_listener *l = ud;

    (void)fd;
    enter(l);
    l->hup_count = (events & GW_LOOP_ERROR) ? l->hup_count + 1 : 0;
    if (l->hup_count > 20)
        pg__fail(l, NULL, "connection lost (socket error)");
    else if (l->phase == PG_PHASE_CONNECTING)
        connect_poll(l, events);
    else if (l->conn)
        conn_io(l, events);
    leave(l);
}

static void
on_retry(void *ud)
{
    struct pg_listener *l = ud;

    enter(l);
    if (!l->conn)
        connect_start(l);
    leave(l);
}

static void
on_connect_timeout(void *ud)
{
    struct pg_listener *l = ud;

    enter(l);
    if (l->phase == PG_PHASE_CONNECTING)
        pg__fail(l, "connect", "timeout expired (5 s)");
    leave(l);
}

static void
on_tick(void *ud)
{
    struct pg_listener *l = ud;

    enter(l);
    if (l->conn)
        pg__housekeeping(l, gw_now_ms());
    if (l->conn)
        gw_timer_set(l->loop, l->tick_timer, PG_TICK_MS);
    leave(l);
}

/* Returns true when the configuration can be used. */
static bool
config_ok(const struct pg_listener_config *cfg)
{
    if (!cfg || !cfg->conninfo || !cfg->loop || !cfg->on_event || cfg->catchup_window_s == 0)
        return false;
    if (cfg->n_channels && !cfg->channels)
        return false;
    for (size_t i = 0; i < cfg->n_channels; i++) {
        const char *c = cfg->channels[i];

        if (!c || !*c || strlen(c) > PG_CHANNEL_MAX || strcmp(c, PG_CHANNEL) == 0)
            return false;
    }
    return true;
}

struct pg_listener *
pg_listener_new(const struct pg_listener_config *cfg)
{
    struct pg_listener *l;
    struct gw_buf err;

    if (!config_ok(cfg))
        return NULL;
    l = gw_xcalloc(1, sizeof(*l));
    gw_buf_init(&err);
    if (pg__params_build(cfg->conninfo, "tidings", true, &l->params, &err) < 0) {
        gw_log(GW_LOG_WARN, "pg_conninfo_invalid", "error=\"%s\"", err.data);
        gw_buf_release(&err);
        free(l);
        return NULL;
    }
    gw_buf_release(&err);
    l->loop = cfg->loop;
    l->channels = gw_xcalloc(cfg->n_channels, sizeof(*l->channels));
    for (size_t i = 0; i < cfg->n_channels; i++)
        l->channels[l->n_channels++] = gw_xstrdup(cfg->channels[i]);
    l->install_sql = cfg->install_sql;
    l->realtime_compat = cfg->realtime_compat;
    l->window_s = cfg->catchup_window_s;
    l->on_event = cfg->on_event;
    l->on_state = cfg->on_state;
    l->ud = cfg->ud;
    l->state = PG_STATE_CONNECTING;
    l->detail = gw_xstrdup("starting");
    l->jobs_tail = &l->jobs;
    l->items_tail = &l->items;
    pg__order_init(&l->order);
    l->retry_timer = gw_timer_new(l->loop, on_retry, l);
    l->connect_timer = gw_timer_new(l->loop, on_connect_timeout, l);
    l->tick_timer = gw_timer_new(l->loop, on_tick, l);
    gw_timer_set(l->loop, l->retry_timer, 0); /* connect on the first loop turn */
    return l;
}

static void
destroy(struct pg_listener *l)
{
    pg__save_now(l);
    teardown(l);
    pg__jobs_clear(l, true);
    gw_timer_free(l->loop, l->retry_timer);
    gw_timer_free(l->loop, l->connect_timer);
    gw_timer_free(l->loop, l->tick_timer);
    pg__params_release(&l->params);
    for (size_t i = 0; i < l->n_channels; i++)
        free(l->channels[i]);
    free(l->channels);
    pg__order_release(&l->order);
    pg__tables_release(&l->tables);
    free(l->detail);
    free(l->fatal);
    free(l);
}

void
pg_listener_free(struct pg_listener *l)
{
    if (!l)
        return;
    l->dead = true;
    if (l->depth == 0)
        destroy(l);
}

enum pg_state
pg_listener_state(const struct pg_listener *l, const char **detail)
{
    if (detail)
        *detail = l->detail;
    return l->state;
}

const struct pg_table *
pg_listener_table(const struct pg_listener *l, const char *schema, const char *table)
{
    if (!l || !l->tables.loaded)
        return NULL;
    return pg__tables_find(&l->tables, schema, table);
}
