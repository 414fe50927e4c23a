/*
 * test_listen_events.c: a listener against a real PostgreSQL (integration): SQL install,
 * the CONNECTING -> READY sequence, row changes of an enabled table, big rows fetched from
 * the outbox in their place, broadcast from SQL (tidings.send and the realtime compat
 * schema), plain NOTIFY channels, ordering across all of them, and pg_listener_table()
 * following enable/disable_changes.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "pgt.h"

struct fixture {
    struct pgt pg;           /* the server */
    struct gw_loop *loop;    /* the poll loop */
    struct rec rec;          /* callbacks seen */
    struct pg_listener *lst; /* the listener under test */
};

/* Returns the string at `path` ("record.name") of the JSON text, or "" when absent. */
static const char *
jstr(json_t *root, const char *a, const char *b)
{
    json_t *v = json_object_get(root, a);

    if (b)
        v = json_object_get(v, b);
    return json_is_string(v) ? json_string_value(v) : "";
}

static json_t *
event_json(const struct rec *r, size_t i)
{
    return json_loads(r->ev[i].json, 0, NULL);
}

static void
start_listener(struct fixture *f)
{
    static const char *const chans[] = { "cache_invalidation", "Mixed Case" };
    struct pg_listener_config cfg = pgt_config(f->loop, f->pg.conninfo, &f->rec);
    bool ok;

    cfg.channels = chans;
    cfg.n_channels = 2;
    cfg.realtime_compat = true;
    f->lst = pg_listener_new(&cfg);
    ASSERT_NOT_NULL(f->lst);
    /* Nothing is reported from inside pg_listener_new(). */
    ASSERT_UINT_EQ(f->rec.n_st_calls, 0);
    ASSERT_INT_EQ(pg_listener_state(f->lst, NULL), PG_STATE_CONNECTING);
    PGT_RUN_UNTIL(f->loop, f->rec.n_st >= 2, 15000, ok);
    ASSERT_TRUE(ok);
    ASSERT_UINT_EQ(f->rec.n_st, 2);
    ASSERT_INT_EQ(f->rec.st[0], PG_STATE_CONNECTING);
    ASSERT_INT_EQ(f->rec.st[1], PG_STATE_READY);
    ASSERT_INT_EQ(pg_listener_state(f->lst, NULL), PG_STATE_READY);
}

static void
check_table(struct fixture *f)
{
    const struct pg_table *t;
    bool ok;

    ASSERT_NULL(pg_listener_table(f->lst, "public", "kpi"));
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo,
                           "CREATE TABLE kpi (id bigserial PRIMARY KEY, name text NOT NULL, "
                           "tags text[], big text); SELECT tidings.enable_changes('kpi')"),
                  0);
    PGT_RUN_UNTIL(f->loop, pg_listener_table(f->lst, "public", "kpi") != NULL, 10000, ok);
    ASSERT_TRUE(ok);
    t = pg_listener_table(f->lst, "public", "kpi");
    ASSERT_STR_EQ(t->schema, "public");
    ASSERT_UINT_EQ(t->n_columns, 4);
    ASSERT_STR_EQ(t->columns[0].name, "id");
    ASSERT_STR_EQ(t->columns[0].type, "int8");
    ASSERT_STR_EQ(t->columns[2].name, "tags");
    ASSERT_STR_EQ(t->columns[2].type, "_text");
    ASSERT_TRUE(!t->replica_full);
}

static void
check_changes(struct fixture *f)
{
    json_t *j[3];
    bool ok;

    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "INSERT INTO kpi (name, tags) VALUES ('a', '{x,y}')"),
                  0);
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "UPDATE kpi SET name = 'b'"), 0);
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "DELETE FROM kpi"), 0);
    PGT_RUN_UNTIL(f->loop, f->rec.n >= 3, 10000, ok);
    ASSERT_TRUE(ok);
    ASSERT_UINT_EQ(f->rec.n, 3);
    for (size_t i = 0; i < 3; i++) {
        ASSERT_INT_EQ(f->rec.ev[i].kind, PG_EVENT_CHANGE);
        ASSERT_TRUE(!f->rec.ev[i].restart);
        ASSERT_NULL(f->rec.ev[i].channel);
        ASSERT_UINT_EQ(f->rec.ev[i].len, strlen(f->rec.ev[i].json));
        j[i] = event_json(&f->rec, i);
        ASSERT_NOT_NULL(j[i]);
    }
    ASSERT_TRUE(f->rec.ev[0].id < f->rec.ev[1].id && f->rec.ev[1].id < f->rec.ev[2].id);
    ASSERT_STR_EQ(jstr(j[0], "type", NULL), "INSERT");
    ASSERT_STR_EQ(jstr(j[0], "table", NULL), "kpi");
    ASSERT_STR_EQ(jstr(j[0], "schema", NULL), "public");
    ASSERT_STR_EQ(jstr(j[0], "record", "name"), "a");
    ASSERT_TRUE(json_is_null(json_object_get(j[0], "old_record")));
    ASSERT_STR_EQ(jstr(j[1], "type", NULL), "UPDATE");
    ASSERT_STR_EQ(jstr(j[1], "record", "name"), "b");
    ASSERT_STR_EQ(jstr(j[2], "type", NULL), "DELETE");
    ASSERT_TRUE(json_is_null(json_object_get(j[2], "record")));
    ASSERT_INT_EQ(json_integer_value(json_object_get(json_object_get(j[2], "old_record"), "id")),
                  1);
    for (size_t i = 0; i < 3; i++)
        json_decref(j[i]);
}

/* A row over the NOTIFY limit is fetched by id and still arrives in its place. */
static void
check_big_row(struct fixture *f)
{
    json_t *j;
    bool ok;

    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "INSERT INTO kpi (name) VALUES ('s1')"), 0);
    ASSERT_INT_EQ(
        pgt_exec(f->pg.conninfo, "INSERT INTO kpi (name, big) VALUES ('big', repeat('x', 10000))"),
        0);
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "INSERT INTO kpi (name) VALUES ('s2')"), 0);
    PGT_RUN_UNTIL(f->loop, f->rec.n >= 6, 10000, ok);
    ASSERT_TRUE(ok);
    ASSERT_UINT_EQ(f->rec.n, 6);
    ASSERT_TRUE(f->rec.ev[3].id < f->rec.ev[4].id && f->rec.ev[4].id < f->rec.ev[5].id);
    ASSERT_TRUE(f->rec.ev[4].len > 10000);
    j = event_json(&f->rec, 4);
    ASSERT_STR_EQ(jstr(j, "record", "name"), "big");
    ASSERT_UINT_EQ(strlen(jstr(j, "record", "big")), 10000);
    json_decref(j);
    j = event_json(&f->rec, 5);
    ASSERT_STR_EQ(jstr(j, "record", "name"), "s2");
    json_decref(j);
}

static void
check_broadcast(struct fixture *f)
{
    json_t *j;
    bool ok;

    ASSERT_INT_EQ(
        pgt_exec(f->pg.conninfo, "SELECT tidings.send('{\"a\":1}'::jsonb, 'ev', 'room:1', false)"),
        0);
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "SELECT realtime.send(jsonb_build_object('big', "
                                           "repeat('y', 9000)), 'ev2', 'room:2', true)"),
                  0);
    PGT_RUN_UNTIL(f->loop, f->rec.n >= 8, 10000, ok);
    ASSERT_TRUE(ok);
    ASSERT_UINT_EQ(f->rec.n, 8);
    ASSERT_INT_EQ(f->rec.ev[6].kind, PG_EVENT_BROADCAST);
    ASSERT_INT_EQ(f->rec.ev[7].kind, PG_EVENT_BROADCAST);
    ASSERT_TRUE(f->rec.ev[6].id > f->rec.ev[5].id && f->rec.ev[7].id > f->rec.ev[6].id);
    j = event_json(&f->rec, 6);
    ASSERT_STR_EQ(jstr(j, "topic", NULL), "room:1");
    ASSERT_STR_EQ(jstr(j, "event", NULL), "ev");
    ASSERT_INT_EQ(json_integer_value(json_object_get(json_object_get(j, "payload"), "a")), 1);
    ASSERT_TRUE(json_is_false(json_object_get(j, "private")));
    ASSERT_UINT_EQ(strlen(jstr(j, "id", NULL)), 36);
    json_decref(j);
    j = event_json(&f->rec, 7);
    ASSERT_STR_EQ(jstr(j, "topic", NULL), "room:2");
    ASSERT_UINT_EQ(strlen(jstr(j, "payload", "big")), 9000);
    ASSERT_TRUE(json_is_true(json_object_get(j, "private")));
    json_decref(j);
}

static void
check_notify(struct fixture *f)
{
    bool ok;

    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "SELECT pg_notify('cache_invalidation', 'not json')"),
                  0);
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "NOTIFY other, 'ignored'"), 0);
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "NOTIFY \"Mixed Case\", '{\"x\":1}'"), 0);
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "SELECT pg_notify('cache_invalidation', '')"), 0);
    PGT_RUN_UNTIL(f->loop, f->rec.n >= 11, 10000, ok);
    ASSERT_TRUE(ok);
    pgt_run_for(f->loop, 100);
    ASSERT_UINT_EQ(f->rec.n, 11);
    ASSERT_INT_EQ(f->rec.ev[8].kind, PG_EVENT_NOTIFY);
    ASSERT_INT_EQ(f->rec.ev[8].id, 0);
    ASSERT_STR_EQ(f->rec.ev[8].channel, "cache_invalidation");
    ASSERT_MEM_STR(f->rec.ev[8].json, f->rec.ev[8].len, "not json");
    ASSERT_STR_EQ(f->rec.ev[9].channel, "Mixed Case");
    ASSERT_MEM_STR(f->rec.ev[9].json, f->rec.ev[9].len, "{\"x\":1}");
    ASSERT_STR_EQ(f->rec.ev[10].channel, "cache_invalidation");
    ASSERT_UINT_EQ(f->rec.ev[10].len, 0);
}

/* One transaction: a NOTIFY behind a fetched row waits for it. */
static void
check_mixed_order(struct fixture *f)
{
    json_t *j;
    bool ok;

    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo,
                           "BEGIN; INSERT INTO kpi (name) VALUES ('m1'); "
                           "SELECT pg_notify('cache_invalidation', 'mid'); "
                           "INSERT INTO kpi (name, big) VALUES ('m2', repeat('z', 8000)); "
                           "SELECT pg_notify('cache_invalidation', 'after'); COMMIT"),
                  0);
    PGT_RUN_UNTIL(f->loop, f->rec.n >= 15, 10000, ok);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(f->rec.ev[11].kind, PG_EVENT_CHANGE);
    ASSERT_MEM_STR(f->rec.ev[12].json, f->rec.ev[12].len, "mid");
    ASSERT_INT_EQ(f->rec.ev[13].kind, PG_EVENT_CHANGE);
    ASSERT_MEM_STR(f->rec.ev[14].json, f->rec.ev[14].len, "after");
    j = event_json(&f->rec, 13);
    ASSERT_STR_EQ(jstr(j, "record", "name"), "m2");
    json_decref(j);
}

static void
check_disable(struct fixture *f)
{
    bool ok;

    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "SELECT tidings.disable_changes('kpi')"), 0);
    PGT_RUN_UNTIL(f->loop, pg_listener_table(f->lst, "public", "kpi") == NULL, 10000, ok);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(pgt_exec(f->pg.conninfo, "INSERT INTO kpi (name) VALUES ('off')"), 0);
    pgt_run_for(f->loop, 300);
    ASSERT_UINT_EQ(f->rec.n, 15);
    ASSERT_UINT_EQ(rec_count(&f->rec, PG_EVENT_CHANGE), 8);
    ASSERT_UINT_EQ(rec_count(&f->rec, PG_EVENT_BROADCAST), 2);
    ASSERT_UINT_EQ(rec_count(&f->rec, PG_EVENT_NOTIFY), 5);
    ASSERT_UINT_EQ(f->rec.n_st_calls, 2);
}

static void
events_body(struct fixture *f)
{
    int failures = harness_failures;

    start_listener(f);
    if (harness_failures == failures)
        check_table(f);
    if (harness_failures == failures)
        check_changes(f);
    if (harness_failures == failures)
        check_big_row(f);
    if (harness_failures == failures)
        check_broadcast(f);
    if (harness_failures == failures)
        check_notify(f);
    if (harness_failures == failures)
        check_mixed_order(f);
    if (harness_failures == failures)
        check_disable(f);
}

static void
test_events(void)
{
    struct fixture f = { 0 };

    f.loop = loop_poll_new();
    if (pgt_start(&f.pg) == 0) {
        events_body(&f);
    } else {
        fprintf(stderr, "PostgreSQL did not start\n");
        harness_failures++;
    }
    pg_listener_free(f.lst);
    pgt_stop(&f.pg);
    loop_poll_free(f.loop);
    rec_release(&f.rec);
}

int
main(void)
{
    RUN(test_events);
    return HARNESS_DONE();
}
