/*
 * test_listen_bench.c: delivery latency and throughput of the listener on the poll loop
 * (integration; prints its measurements). Latency: a row inserted and committed on
 * another connection -> its on_event call. Throughput: 10,000 rows committed in one
 * transaction (live NOTIFY path), the same number replayed by a restart catch-up, and
 * 1,000 rows over the NOTIFY limit (fetch path). Counts are checked exactly.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "pgt.h"

#define LAT_N  200
#define BULK_N 10000
#define BIG_N  1000

struct fixture {
    struct pgt pg;           /* the server */
    struct gw_loop *loop;    /* the poll loop */
    struct rec rec;          /* callbacks seen */
    struct pg_listener *lst; /* the listener under test */
    PGconn *db;              /* writer connection */
};

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

static bool
exec_ok(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return ok;
}

static void
start(struct fixture *f)
{
    struct pg_listener_config cfg = pgt_config(f->loop, f->pg.conninfo, &f->rec);
    bool ok;

    rec_release(&f->rec);
    f->lst = pg_listener_new(&cfg);
    PGT_RUN_UNTIL(f->loop, rec_states(&f->rec, PG_STATE_READY) == 1, 15000, ok);
    ASSERT_TRUE(ok);
}

static void
latency(struct fixture *f)
{
    static uint64_t commit_us[LAT_N], insert_us[LAT_N];
    bool ok = true;

    for (int i = 0; i < LAT_N && ok; i++) {
        uint64_t t0 = now_us(), t1;
        size_t want = f->rec.n + 1;

        ASSERT_TRUE(exec_ok(f->db, "INSERT INTO b (v) VALUES (1)"));
        t1 = now_us();
        while (f->rec.n < want && now_us() - t0 < 5000000u)
            loop_poll_run(f->loop, 5);
        ok = f->rec.n == want;
        commit_us[i] = now_us() - t1;
        insert_us[i] = now_us() - t0;
    }
    ASSERT_TRUE(ok);
    qsort(commit_us, LAT_N, sizeof(uint64_t), cmp_u64);
    qsort(insert_us, LAT_N, sizeof(uint64_t), cmp_u64);
    fprintf(stderr,
            "latency over %d rows: commit acked -> on_event p50 %llu us p99 %llu us; "
            "INSERT sent -> on_event p50 %llu us p99 %llu us\n",
            LAT_N, (unsigned long long)commit_us[LAT_N / 2],
            (unsigned long long)commit_us[LAT_N * 99 / 100],
            (unsigned long long)insert_us[LAT_N / 2],
            (unsigned long long)insert_us[LAT_N * 99 / 100]);
}

/* Runs until `n` events; prints and returns the rate since t0. */
static double
rate(struct fixture *f, size_t n, uint64_t t0, const char *what)
{
    bool ok;
    double s;

    PGT_RUN_UNTIL(f->loop, f->rec.n >= n, 60000, ok);
    s = (double)(now_us() - t0) / 1e6;
    fprintf(stderr, "%s: %zu events in %.3f s = %.0f events/s\n", what, f->rec.n, s,
            (double)f->rec.n / s);
    return ok ? (double)f->rec.n / s : 0;
}

static void
throughput(struct fixture *f)
{
    uint64_t t0;

    rec_release(&f->rec);
    t0 = now_us();
    ASSERT_TRUE(exec_ok(f->db, "INSERT INTO b (v) SELECT g FROM generate_series(1, 10000) g"));
    fprintf(stderr, "(bulk INSERT of %d rows committed in %.3f s)\n", BULK_N,
            (double)(now_us() - t0) / 1e6);
    t0 = now_us();
    ASSERT_TRUE(rate(f, BULK_N, t0, "live NOTIFY, after commit") > 0);
    pgt_run_for(f->loop, 300);
    ASSERT_UINT_EQ(f->rec.n, BULK_N);
    for (size_t i = 1; i < f->rec.n; i++)
        ASSERT_TRUE(f->rec.ev[i].id == f->rec.ev[i - 1].id + 1);
}

static void
catchup_rate(struct fixture *f)
{
    bool ok;
    uint64_t t0;

    /* Wait for the cursor save, then replay BULK_N rows at the next start. */
    pgt_run_for(f->loop, 1500);
    pg_listener_free(f->lst);
    f->lst = NULL;
    ASSERT_TRUE(exec_ok(f->db, "INSERT INTO b (v) SELECT g FROM generate_series(1, 10000) g"));
    t0 = now_us();
    start(f);
    PGT_RUN_UNTIL(f->loop, f->rec.n >= BULK_N, 60000, ok);
    ASSERT_TRUE(ok);
    ASSERT_TRUE(rate(f, BULK_N, t0, "restart catch-up, from pg_listener_new") > 0);
    ASSERT_TRUE(f->rec.ev[0].restart && f->rec.ev[BULK_N - 1].restart);
}

static void
fetch_rate(struct fixture *f)
{
    uint64_t t0;

    rec_release(&f->rec);
    t0 = now_us();
    ASSERT_TRUE(exec_ok(f->db, "INSERT INTO b (v, pad) SELECT g, repeat('p', 9000) "
                               "FROM generate_series(1, 1000) g"));
    t0 = now_us();
    ASSERT_TRUE(rate(f, BIG_N, t0, "9 kB rows (fetched by id), after commit") > 0);
    pgt_run_for(f->loop, 300);
    ASSERT_UINT_EQ(f->rec.n, BIG_N);
}

static void
bench_body(struct fixture *f)
{
    int before = harness_failures;

    start(f);
    f->db = PQconnectdb(f->pg.conninfo);
    ASSERT_TRUE(PQstatus(f->db) == CONNECTION_OK);
    ASSERT_TRUE(exec_ok(f->db, "CREATE TABLE b (id serial PRIMARY KEY, v int, pad text); "
                               "SELECT tidings.enable_changes('b')"));
    pgt_run_for(f->loop, 300);
    latency(f);
    if (harness_failures == before)
        throughput(f);
    if (harness_failures == before)
        catchup_rate(f);
    if (harness_failures == before)
        fetch_rate(f);
}

static void
test_bench(void)
{
    struct fixture f = { 0 };

    f.loop = loop_poll_new();
    if (pgt_start(&f.pg) == 0) {
        bench_body(&f);
    } else {
        fprintf(stderr, "PostgreSQL did not start\n");
        harness_failures++;
    }
    PQfinish(f.db);
    pg_listener_free(f.lst);
    pgt_stop(&f.pg);
    loop_poll_free(f.loop);
    rec_release(&f.rec);
}

int
main(void)
{
    RUN(test_bench);
    return HARNESS_DONE();
}
