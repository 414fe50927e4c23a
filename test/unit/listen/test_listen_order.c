/*
 * test_listen_order.c: the pure parts of listen/: exactly-once bookkeeping (max_id +
 * gaps), payload and array parsers, enabled-table parsing, connection parameters, and
 * the embedded SQL. No server needed.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "listen/listen_int.h"

static void
test_order_in_sequence(void)
{
    struct pg_order o;

    pg__order_init(&o);
    pg__order_reset(&o, 10, NULL, 0, 0);
    ASSERT_TRUE(pg__order_accept(&o, 11, 0));
    ASSERT_TRUE(pg__order_accept(&o, 12, 0));
    ASSERT_TRUE(!pg__order_accept(&o, 12, 0));
    ASSERT_TRUE(!pg__order_accept(&o, 5, 0));
    ASSERT_TRUE(!pg__order_accept(&o, 0, 0));
    ASSERT_INT_EQ(o.max_id, 12);
    ASSERT_UINT_EQ(o.dups, 3);
    ASSERT_UINT_EQ(pg__order_gap_count(&o), 0);
    pg__order_release(&o);
}

static void
test_order_fresh_count(void)
{
    struct pg_order o;

    /* An empty outbox at start: the first id starts the count, no gaps below it. */
    pg__order_init(&o);
    pg__order_reset(&o, 0, NULL, 0, 0);
    ASSERT_TRUE(pg__order_accept(&o, 50000, 0));
    ASSERT_UINT_EQ(pg__order_gap_count(&o), 0);
    ASSERT_UINT_EQ(o.resets, 0);
    ASSERT_TRUE(pg__order_accept(&o, 50002, 0));
    ASSERT_UINT_EQ(pg__order_gap_count(&o), 1);
    pg__order_release(&o);
}

static void
test_order_gaps(void)
{
    struct pg_order o;
    struct gw_buf b;

    pg__order_init(&o);
    gw_buf_init(&b);
    pg__order_reset(&o, 10, NULL, 0, 0);
    /* 14 commits before 11..13 (taken earlier, committed later). */
    ASSERT_TRUE(pg__order_accept(&o, 14, 100));
    ASSERT_UINT_EQ(pg__order_gap_count(&o), 3);
    pg__order_gaps_text(&o, &b);
    ASSERT_STR_EQ(b.data, "{11,12,13}");
    ASSERT_TRUE(!pg__order_is_dup(&o, 12));
    ASSERT_TRUE(pg__order_accept(&o, 12, 200));
    ASSERT_TRUE(pg__order_is_dup(&o, 12));
    ASSERT_TRUE(!pg__order_accept(&o, 12, 200));
    ASSERT_TRUE(!pg__order_accept(&o, 14, 200));
    gw_buf_reset(&b);
    pg__order_gaps_text(&o, &b);
    ASSERT_STR_EQ(b.data, "{11,13}");
    /* Gaps expire after the window; 11 then counts as a duplicate. */
    pg__order_expire(&o, 1099, 1000);
    ASSERT_UINT_EQ(pg__order_gap_count(&o), 2);
    pg__order_expire(&o, 1100, 1000);
    ASSERT_UINT_EQ(pg__order_gap_count(&o), 0);
    ASSERT_TRUE(!pg__order_accept(&o, 11, 2000));
    gw_buf_release(&b);
    pg__order_release(&o);
}

static void
test_order_cap_and_jump(void)
{
    struct pg_order o;

    pg__order_init(&o);
    pg__order_reset(&o, 1, NULL, 0, 0);
    /* Two jumps just under the limit: gaps capped at PG_GAPS_MAX, oldest dropped. */
    ASSERT_TRUE(pg__order_accept(&o, 1 + PG_JUMP_MAX, 0));
    ASSERT_UINT_EQ(pg__order_gap_count(&o), PG_JUMP_MAX - 1);
    ASSERT_TRUE(pg__order_accept(&o, 1 + 2 * PG_JUMP_MAX, 1));
    ASSERT_UINT_EQ(pg__order_gap_count(&o), PG_GAPS_MAX);
    ASSERT_TRUE(!pg__order_accept(&o, 2, 1)); /* dropped as oldest */
    ASSERT_TRUE(pg__order_accept(&o, 2 * PG_JUMP_MAX, 1));
    ASSERT_UINT_EQ(pg__order_gap_count(&o), PG_GAPS_MAX - 1);
    /* A jump beyond the limit restarts the count without gaps. */
    ASSERT_TRUE(pg__order_accept(&o, 10 * PG_JUMP_MAX, 2));
    ASSERT_UINT_EQ(pg__order_gap_count(&o), 0);
    ASSERT_UINT_EQ(o.resets, 1);
    ASSERT_INT_EQ(o.max_id, 10 * PG_JUMP_MAX);
    /* An id far below is an old duplicate, not a reset. */
    ASSERT_TRUE(!pg__order_accept(&o, 5, 3));
    ASSERT_UINT_EQ(o.resets, 1);
    pg__order_release(&o);
}

static void
test_order_reset_with_gaps(void)
{
    struct pg_order o;
    int64_t gaps[] = { 9, 3, 3, 20, 7, -1 };
    struct gw_buf b;

    pg__order_init(&o);
    gw_buf_init(&b);
    pg__order_reset(&o, 10, gaps, 6, 0);
    pg__order_gaps_text(&o, &b);
    ASSERT_STR_EQ(b.data, "{3,7,9}");
    ASSERT_TRUE(pg__order_accept(&o, 7, 0));
    ASSERT_TRUE(pg__order_accept(&o, 11, 0));
    ASSERT_TRUE(!pg__order_accept(&o, 10, 0));
    ASSERT_TRUE(o.dirty);
    /* Many deliveries of gaps: tombstones are compacted, lookups stay right. */
    pg__order_reset(&o, 1, NULL, 0, 0);
    ASSERT_TRUE(pg__order_accept(&o, 5001, 0));
    ASSERT_UINT_EQ(pg__order_gap_count(&o), 4999);
    for (int64_t i = 2; i <= 5000; i += 2)
        ASSERT_TRUE(pg__order_accept(&o, i, 0));
    ASSERT_UINT_EQ(pg__order_gap_count(&o), 2499);
    for (int64_t i = 3; i <= 5000; i += 2)
        ASSERT_TRUE(pg__order_accept(&o, i, 0));
    ASSERT_UINT_EQ(pg__order_gap_count(&o), 0);
    ASSERT_TRUE(!pg__order_accept(&o, 4000, 0));
    ASSERT_UINT_EQ(o.dups, 2);
    gw_buf_release(&b);
    pg__order_release(&o);
}

static void
test_parse_notify(void)
{
    int kind;
    int64_t id;
    const char *json;

    ASSERT_INT_EQ(pg__parse_notify("1:42:{\"a\":1}", &kind, &id, &json), 0);
    ASSERT_INT_EQ(kind, 1);
    ASSERT_INT_EQ(id, 42);
    ASSERT_STR_EQ(json, "{\"a\":1}");
    ASSERT_INT_EQ(pg__parse_notify("2:9000000000", &kind, &id, &json), 0);
    ASSERT_INT_EQ(id, 9000000000LL);
    ASSERT_NULL(json);
    ASSERT_INT_EQ(pg__parse_notify("0:0", &kind, &id, &json), 0);
    ASSERT_INT_EQ(kind, 0);
    ASSERT_INT_EQ(pg__parse_notify("1:", &kind, &id, &json), GW_EPARSE);
    ASSERT_INT_EQ(pg__parse_notify("x:1", &kind, &id, &json), GW_EPARSE);
    ASSERT_INT_EQ(pg__parse_notify("1:2x", &kind, &id, &json), GW_EPARSE);
    ASSERT_INT_EQ(pg__parse_notify("", &kind, &id, &json), GW_EPARSE);
    ASSERT_INT_EQ(pg__parse_notify("1:-5:{}", &kind, &id, &json), GW_EPARSE);
    ASSERT_INT_EQ(pg__parse_notify("1:99999999999999999999:{}", &kind, &id, &json), GW_EPARSE);
}

static void
test_parse_id_array(void)
{
    int64_t *v = NULL;
    size_t n = 9;

    ASSERT_INT_EQ(pg__parse_id_array("{}", &v, &n), 0);
    ASSERT_UINT_EQ(n, 0);
    ASSERT_INT_EQ(pg__parse_id_array(NULL, &v, &n), 0);
    ASSERT_INT_EQ(pg__parse_id_array("{5,17,3}", &v, &n), 0);
    ASSERT_UINT_EQ(n, 3);
    ASSERT_INT_EQ(v[0], 5);
    ASSERT_INT_EQ(v[2], 3);
    free(v);
    ASSERT_INT_EQ(pg__parse_id_array("{5,}", &v, &n), GW_EPARSE);
    ASSERT_NULL(v);
    ASSERT_INT_EQ(pg__parse_id_array("5,6", &v, &n), GW_EPARSE);
    ASSERT_INT_EQ(pg__parse_id_array("{5,6}x", &v, &n), GW_EPARSE);
}

static void
test_tables(void)
{
    struct pg_tableset t = { 0 };
    const struct pg_table *tab;

    ASSERT_INT_EQ(pg__tables_add(&t, "public", "kpi", true,
                                 "[{\"name\":\"id\",\"type\":\"int8\"},"
                                 "{\"name\":\"tags\",\"type\":\"_text\"}]"),
                  0);
    ASSERT_INT_EQ(pg__tables_add(&t, "s2", "kpi", false, "[]"), 0);
    ASSERT_INT_EQ(pg__tables_add(&t, "s3", "bad", false, "[{\"name\":1}]"), GW_EPARSE);
    ASSERT_INT_EQ(pg__tables_add(&t, "s3", "bad", false, "{"), GW_EPARSE);
    tab = pg__tables_find(&t, "public", "kpi");
    ASSERT_NOT_NULL(tab);
    ASSERT_UINT_EQ(tab->n_columns, 2);
    ASSERT_STR_EQ(tab->columns[1].name, "tags");
    ASSERT_STR_EQ(tab->columns[1].type, "_text");
    ASSERT_TRUE(tab->replica_full);
    tab = pg__tables_find(&t, "s2", "kpi");
    ASSERT_NOT_NULL(tab);
    ASSERT_UINT_EQ(tab->n_columns, 0);
    ASSERT_NULL(pg__tables_find(&t, "s3", "bad"));
    ASSERT_NULL(pg__tables_find(&t, "public", "nope"));
    pg__tables_release(&t);
}

static const char *
param(const struct pg_params *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->keys[i], key) == 0)
            return p->vals[i];
    }
    return NULL;
}

static void
test_params(void)
{
    struct pg_params p;
    struct gw_buf err;

    gw_buf_init(&err);
    ASSERT_INT_EQ(
        pg__params_build("host=127.0.0.1 port=5 keepalives_idle=30", "tidings", true, &p, &err), 0);
    ASSERT_STR_EQ(param(&p, "host"), "127.0.0.1");
    ASSERT_STR_EQ(param(&p, "keepalives_idle"), "30");
    ASSERT_STR_EQ(param(&p, "keepalives"), "1");
    ASSERT_STR_EQ(param(&p, "keepalives_interval"), "3");
    ASSERT_STR_EQ(param(&p, "keepalives_count"), "3");
    ASSERT_STR_EQ(param(&p, "tcp_user_timeout"), "10000");
    ASSERT_STR_EQ(param(&p, "application_name"), "tidings");
    ASSERT_NULL(p.keys[p.n]);
    pg__params_release(&p);

    ASSERT_INT_EQ(pg__params_build("postgresql://u@db.example:6000/app?application_name=x"
                                   "&tcp_user_timeout=500",
                                   "tidings", true, &p, &err),
                  0);
    ASSERT_STR_EQ(param(&p, "host"), "db.example");
    ASSERT_STR_EQ(param(&p, "port"), "6000");
    ASSERT_STR_EQ(param(&p, "dbname"), "app");
    ASSERT_STR_EQ(param(&p, "application_name"), "x");
    ASSERT_STR_EQ(param(&p, "tcp_user_timeout"), "500");
    ASSERT_STR_EQ(param(&p, "keepalives_count"), "3");
    pg__params_release(&p);

    ASSERT_INT_EQ(pg__params_build("host=a nonsense=1", "tidings", true, &p, &err), GW_EINVAL);
    ASSERT_TRUE(strstr(err.data, "nonsense") != NULL);
    gw_buf_release(&err);
}

static void
test_sql_text(void)
{
    struct gw_buf b;
    const char *sql = pg_sql_text();

    gw_buf_init(&b);
    ASSERT_TRUE(strstr(sql, "tidings.outbox") != NULL);
    ASSERT_TRUE(strstr(sql, "tidings.catchup") != NULL);
    ASSERT_TRUE(strstr(sql, "CREATE SCHEMA") != NULL || strstr(sql, "create schema") != NULL);
    pg__install_query(true, &b);
    ASSERT_TRUE(strncmp(b.data, "BEGIN;", 6) == 0);
    ASSERT_TRUE(strstr(b.data, "pg_advisory_xact_lock(hashtext('tidings'))") != NULL);
    ASSERT_TRUE(strstr(b.data, "realtime") != NULL);
    ASSERT_TRUE(strcmp(b.data + b.len - 8, "COMMIT;\n") == 0);
    gw_buf_release(&b);
}

/* Concatenates the files matching pattern (name order), each followed by a newline. */
static void
read_glob(const char *pattern, struct gw_buf *b)
{
    glob_t g;

    if (glob(pattern, 0, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        FILE *f = fopen(g.gl_pathv[i], "rb");
        char chunk[4096];
        size_t n;

        while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
            gw_buf_append(b, chunk, n);
        if (f)
            fclose(f);
        gw_buf_append_str(b, "\n");
    }
    globfree(&g);
}

/* The embedded SQL is exactly the files of listen/sql in name order (and compat). */
static void
test_sql_embedded(void)
{
    struct gw_buf files;

    gw_buf_init(&files);
    read_glob(LISTEN_SQL_DIR "/*.sql", &files);
    ASSERT_TRUE(files.len > 1000);
    ASSERT_STR_EQ(pg_sql_text(), files.data);
    gw_buf_reset(&files);
    read_glob(LISTEN_SQL_DIR "/compat/*.sql", &files);
    ASSERT_TRUE(files.len > 100);
    ASSERT_STR_EQ((const char *)pg__sql_compat, files.data);
    gw_buf_release(&files);
}

static void
test_first_line(void)
{
    struct gw_buf b;

    gw_buf_init(&b);
    pg__first_line("ERROR:  permission denied for schema tidings\nLINE 1: x\n", &b);
    ASSERT_STR_EQ(b.data, "permission denied for schema tidings");
    gw_buf_reset(&b);
    pg__first_line("connection to server failed: Connection refused\n\tIs the server", &b);
    ASSERT_STR_EQ(b.data, "connection to server failed: Connection refused");
    gw_buf_reset(&b);
    pg__first_line(NULL, &b);
    ASSERT_STR_EQ(b.data, "unknown error");
    gw_buf_release(&b);
}

int
main(void)
{
    RUN(test_order_in_sequence);
    RUN(test_order_fresh_count);
    RUN(test_order_gaps);
    RUN(test_order_cap_and_jump);
    RUN(test_order_reset_with_gaps);
    RUN(test_parse_notify);
    RUN(test_parse_id_array);
    RUN(test_tables);
    RUN(test_params);
    RUN(test_sql_text);
    RUN(test_sql_embedded);
    RUN(test_first_line);
    return HARNESS_DONE();
}
