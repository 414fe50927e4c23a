/*
 * test_listen_reconnect.c: exactly once, in commit order, across failures (integration).
 * A writer process commits single-row inserts while the listener's backend is killed
 * (pg_terminate_backend) or the server restarts (pg_ctl restart); every committed row
 * must arrive once, in id order. Then a listener is freed and a new one started: rows
 * committed in between arrive once, flagged restart_catchup; a stale cursor replays
 * nothing; a first start replays nothing. Rows whose ids commit out of order arrive in
 * commit order, each once.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "pgt.h"

#define WRITES 200

struct fixture {
    struct pgt pg;           /* the server */
    struct gw_loop *loop;    /* the poll loop */
    struct rec rec;          /* callbacks seen */
    struct pg_listener *lst; /* the listener under test */
    int64_t base;            /* max outbox id before the writer starts */
};

static int64_t
max_outbox_id(const struct fixture *f)
{
    char *v = pgt_value(f->pg.conninfo, "SELECT coalesce(max(id), 0) FROM tidings.outbox");
    int64_t id = v ? strtoll(v, NULL, 10) : -1;

    free(v);
    return id;
}

static void
setup(struct fixture *f)
{
    struct pg_listener_config cfg = pgt_config(f->loop, f->pg.conninfo, &f->rec);
    bool ok;

    f->lst = pg_listener_new(&cfg);
    ASSERT_NOT_NULL(f->lst);
    PGT_RUN_UNTIL(f->loop, rec_states(&f->rec, PG_STATE_READY) == 1, 15000, ok);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "CREATE TABLE w (id serial PRIMARY KEY, v int); "
                                           "SELECT tidings.enable_changes('w')"),
                  0);
    PGT_RUN_UNTIL(f->loop, pg_listener_table(f->lst, "public", "w") != NULL, 10000, ok);
    ASSERT_TRUE(ok);
    f->base = max_outbox_id(f);
    ASSERT_TRUE(f->base >= 0);
}

/* Every committed row after base arrived exactly once, in id order. */
static void
check_exactly_once(struct fixture *f, long min_rows)
{
    static int64_t committed[WRITES * 2], got[WRITES * 2];
    char sql[128];
    long n;
    size_t m;
    bool ok;

    snprintf(sql, sizeof(sql), "SELECT id FROM tidings.outbox WHERE id > %lld ORDER BY id",
             (long long)f->base);
    n = pgt_ids(f->pg.conninfo, sql, committed, WRITES * 2);
    fprintf(stderr, "  %ld rows committed, %zu delivered so far\n", n, f->rec.n);
    ASSERT_TRUE(n >= min_rows && n <= WRITES);
    PGT_RUN_UNTIL(f->loop, f->rec.n >= (size_t)n, 15000, ok);
    ASSERT_TRUE(ok);
    pgt_run_for(f->loop, 500); /* duplicates would show up now */
    m = rec_ids(&f->rec, got, WRITES * 2);
    ASSERT_UINT_EQ(m, (size_t)n);
    for (size_t i = 0; i < m; i++) {
        ASSERT_INT_EQ(got[i], committed[i]);
        ASSERT_INT_EQ(f->rec.ev[i].kind, PG_EVENT_CHANGE);
        ASSERT_TRUE(!f->rec.ev[i].restart);
    }
}

/* No state is reported twice in a row with the same detail; the last one is READY. */
static void
check_states(const struct rec *r)
{
    ASSERT_TRUE(r->n_st >= 4);
    ASSERT_INT_EQ(r->st[0], PG_STATE_CONNECTING);
    ASSERT_INT_EQ(r->st[1], PG_STATE_READY);
    ASSERT_INT_EQ(r->st[2], PG_STATE_RETRYING);
    ASSERT_INT_EQ(r->st[r->n_st - 1], PG_STATE_READY);
    ASSERT_UINT_EQ(rec_states(r, PG_STATE_READY), 2);
    for (size_t i = 1; i < r->n_st; i++)
        ASSERT_TRUE(r->st[i] != r->st[i - 1] || strcmp(r->detail[i], r->detail[i - 1]) != 0);
}

static void
kill_body(struct fixture *f)
{
    pid_t writer;
    char *pid;
    bool ok;
    int before = harness_failures;

    setup(f);
    if (harness_failures != before)
        return;
    writer = pgt_writer(f->pg.conninfo, "INSERT INTO w (v) VALUES (1)", WRITES, 5, 30000);
    PGT_RUN_UNTIL(f->loop, f->rec.n >= 50, 10000, ok);
    ASSERT_TRUE(ok);
    pid = pgt_value(f->pg.conninfo, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE application_name = 'tidings'");
    ASSERT_STR_EQ(pid, "t");
    free(pid);
    PGT_RUN_UNTIL(f->loop, pgt_reaped(writer), 30000, ok);
    ASSERT_TRUE(ok);
    check_exactly_once(f, WRITES);
    check_states(&f->rec);
    ASSERT_UINT_EQ(rec_states(&f->rec, PG_STATE_RETRYING), 1);
}

static void
restart_body(struct fixture *f)
{
    pid_t writer, ctl;
    bool ok;
    int status = -1;
    int before = harness_failures;

    setup(f);
    if (harness_failures != before)
        return;
    writer = pgt_writer(f->pg.conninfo, "INSERT INTO w (v) VALUES (1)", WRITES, 5, 30000);
    PGT_RUN_UNTIL(f->loop, f->rec.n >= 50, 10000, ok);
    ASSERT_TRUE(ok);
    ctl = pgt_restart_async(&f->pg);
    PGT_RUN_UNTIL(f->loop, waitpid(ctl, &status, WNOHANG) == ctl, 60000, ok);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(status, 0);
    PGT_RUN_UNTIL(f->loop, pgt_reaped(writer), 30000, ok);
    ASSERT_TRUE(ok);
    PGT_RUN_UNTIL(f->loop, rec_states(&f->rec, PG_STATE_READY) == 2, 15000, ok);
    ASSERT_TRUE(ok);
    check_exactly_once(f, 50);
    check_states(&f->rec);
}

static void
insert_rows(struct fixture *f, int n)
{
    for (int i = 0; i < n; i++)
        ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "INSERT INTO w (v) VALUES (2)"), 0);
}

/* Starts a listener (no install: pg_sql_install did it) and waits for READY. */
static void
start_plain(struct fixture *f)
{
    struct pg_listener_config cfg = pgt_config(f->loop, f->pg.conninfo, &f->rec);
    bool ok;

    cfg.install_sql = false;
    rec_release(&f->rec);
    f->lst = pg_listener_new(&cfg);
    ASSERT_NOT_NULL(f->lst);
    PGT_RUN_UNTIL(f->loop, rec_states(&f->rec, PG_STATE_READY) == 1, 15000, ok);
    ASSERT_TRUE(ok);
}

/* Waits until `from + n` events arrived; events [from, from + n) must be the n newest
 * outbox rows in id order with the given restart flag. */
static void
expect_rows(struct fixture *f, size_t from, size_t n, bool restart)
{
    int64_t top = max_outbox_id(f);
    bool ok;

    PGT_RUN_UNTIL(f->loop, f->rec.n >= from + n, 10000, ok);
    ASSERT_TRUE(ok);
    pgt_run_for(f->loop, 300);
    ASSERT_UINT_EQ(f->rec.n, from + n);
    for (size_t i = 0; i < n; i++) {
        ASSERT_INT_EQ(f->rec.ev[from + i].id, top - (int64_t)(n - 1 - i));
        ASSERT_INT_EQ(f->rec.ev[from + i].restart, restart);
    }
}

/* Waits for exactly the events with these ids, in this order. */
static void
expect_order(struct fixture *f, const int64_t *ids, size_t n)
{
    bool ok;

    PGT_RUN_UNTIL(f->loop, f->rec.n >= n, 10000, ok);
    ASSERT_TRUE(ok);
    pgt_run_for(f->loop, 300);
    ASSERT_UINT_EQ(f->rec.n, n);
    for (size_t i = 0; i < n; i++)
        ASSERT_INT_EQ(f->rec.ev[i].id, ids[i]);
}

/* The cursor reaches last_id within 3 s. */
static void
expect_cursor(struct fixture *f, int64_t last_id)
{
    int64_t saved = -1;

    for (int i = 0; i < 30 && saved != last_id; i++) {
        char *v =
            pgt_value(f->pg.conninfo, "SELECT last_id FROM tidings.cursor WHERE name = 'default'");

        saved = v ? strtoll(v, NULL, 10) : -1;
        free(v);
        if (saved != last_id)
            pgt_run_for(f->loop, 100);
    }
    ASSERT_INT_EQ(saved, last_id);
}

static void
restart_phases(struct fixture *f)
{
    /* First start, no cursor: nothing from before is replayed. */
    insert_rows(f, 10);
    start_plain(f);
    pgt_run_for(f->loop, 300);
    ASSERT_UINT_EQ(f->rec.n, 0);
    insert_rows(f, 20);
    expect_rows(f, 0, 20, false);
    expect_cursor(f, max_outbox_id(f));
    pg_listener_free(f->lst);
    f->lst = NULL;
    /* Rows committed while no listener runs arrive once, flagged restart_catchup. */
    insert_rows(f, 30);
    start_plain(f);
    expect_rows(f, 0, 30, true);
    insert_rows(f, 5);
    expect_rows(f, 30, 5, false);
    /* Freed right away: the position is saved at free (or was by the 1 s timer). */
    pg_listener_free(f->lst);
    f->lst = NULL;
    expect_cursor(f, max_outbox_id(f));
    /* A cursor older than the catch-up window is ignored: no replay. */
    insert_rows(f, 7);
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo,
                           "UPDATE tidings.cursor SET updated_at = now() - interval '1 hour'"),
                  0);
    start_plain(f);
    pgt_run_for(f->loop, 300);
    ASSERT_UINT_EQ(f->rec.n, 0);
    insert_rows(f, 1);
    expect_rows(f, 0, 1, false);
}

static void
listener_restart_body(struct fixture *f)
{
    struct gw_buf err;
    int rc1, rc2;

    gw_buf_init(&err);
    rc1 = pg_sql_install(f->pg.conninfo, false, &err);
    rc2 = pg_sql_install(f->pg.conninfo, false, &err); /* idempotent */
    if (err.len)
        fprintf(stderr, "install: %s\n", err.data);
    gw_buf_release(&err);
    ASSERT_INT_EQ(rc1, 0);
    ASSERT_INT_EQ(rc2, 0);
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "CREATE TABLE w (id serial PRIMARY KEY, v int); "
                                           "SELECT tidings.enable_changes('w')"),
                  0);
    restart_phases(f);
}

/* Opens a transaction that inserts one row (taking its outbox id) and stays open. */
static PGconn *
open_insert(struct fixture *f)
{
    PGconn *c = PQconnectdb(f->pg.conninfo);
    PGresult *r = PQexec(c, "BEGIN; INSERT INTO w (v) VALUES (3)");

    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "open_insert: %s", PQerrorMessage(c));
    PQclear(r);
    return c;
}

static void
commit(PGconn *c)
{
    PQclear(PQexec(c, "COMMIT"));
    PQfinish(c);
}

/* Ids are taken at INSERT, NOTIFY comes at COMMIT: a lower id committed later is
 * delivered (in commit order), also one still open when the listener started. */
static void
out_of_order_body(struct fixture *f)
{
    PGconn *t1, *t2;
    int64_t n;

    ASSERT_INT_EQ(pg_sql_install(f->pg.conninfo, false, NULL), 0);
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "CREATE TABLE w (id serial PRIMARY KEY, v int); "
                                           "SELECT tidings.enable_changes('w')"),
                  0);
    insert_rows(f, 3);
    n = max_outbox_id(f) + 1;
    t1 = open_insert(f); /* takes id n */
    insert_rows(f, 1);   /* n + 1, committed before the start: not replayed */
    start_plain(f);
    pgt_run_for(f->loop, 300);
    t2 = open_insert(f); /* n + 2 */
    insert_rows(f, 1);   /* n + 3 */
    commit(t2);
    commit(t1);
    expect_order(f, (int64_t[]){ n + 3, n + 2, n }, 3);
}

typedef void body_fn(struct fixture *f);

static void
with_server(body_fn *body)
{
    struct fixture f = { 0 };

    f.loop = loop_poll_new();
    if (pgt_start(&f.pg) == 0) {
        body(&f);
    } else {
        fprintf(stderr, "PostgreSQL did not start\n");
        harness_failures++;
    }
    pg_listener_free(f.lst);
    pgt_stop(&f.pg);
    loop_poll_free(f.loop);
    rec_release(&f.rec);
}

static void
test_backend_killed(void)
{
    with_server(kill_body);
}

static void
test_server_restart(void)
{
    with_server(restart_body);
}

static void
test_listener_restart(void)
{
    with_server(listener_restart_body);
}

static void
test_out_of_order_commits(void)
{
    with_server(out_of_order_body);
}

int
main(void)
{
    RUN(test_backend_killed);
    RUN(test_server_restart);
    RUN(test_listener_restart);
    RUN(test_out_of_order_commits);
    return HARNESS_DONE();
}
