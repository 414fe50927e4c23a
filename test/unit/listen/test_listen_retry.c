/*
 * test_listen_retry.c: failures and how they are reported (integration): nothing
 * listening on the port, a server that appears later on that port, a role without rights
 * on schema tidings, a hung backend caught by the application ping, free from inside a
 * callback, invalid configurations and pg_sql_install errors.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "pgt.h"

/* A loopback port with nothing listening on it (bound, then released). */
static int
free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool
contains_ci(const char *s, const char *word)
{
    size_t n = strlen(word);

    for (; s && *s; s++) {
        size_t i = 0;

        while (i < n && s[i] && tolower((unsigned char)s[i]) == word[i])
            i++;
        if (i == n)
            return true;
    }
    return false;
}

static void
test_wrong_dsn(void)
{
    struct gw_loop *loop = loop_poll_new();
    struct rec r = { 0 };
    char conninfo[128];
    struct pg_listener_config cfg;
    struct pg_listener *l;
    const char *detail = NULL;
    uint64_t t0 = gw_now_ms();

    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d dbname=x user=postgres",
             free_port());
    cfg = pgt_config(loop, conninfo, &r);
    l = pg_listener_new(&cfg);
    /* Attempts at 0, 0.1, 0.6, 1.6 and 3.6 s: one RETRYING report for all of them. */
    pgt_run_for(loop, 4000);
    ASSERT_TRUE(gw_now_ms() - t0 < 4500); /* nothing blocked the loop */
    ASSERT_UINT_EQ(r.n_st_calls, 2);
    ASSERT_INT_EQ(r.st[0], PG_STATE_CONNECTING);
    ASSERT_INT_EQ(r.st[1], PG_STATE_RETRYING);
    ASSERT_TRUE(contains_ci(r.detail[1], "connection refused"));
    ASSERT_INT_EQ(pg_listener_state(l, &detail), PG_STATE_RETRYING);
    ASSERT_STR_EQ(detail, r.detail[1]);
    pg_listener_free(l);
    loop_poll_free(loop);
    rec_release(&r);
}

static void
late_server_body(struct pgt *pg, struct gw_loop *loop, struct rec *r)
{
    struct pg_listener_config cfg = pgt_config(loop, pg->conninfo, r);
    struct pg_listener *l;
    bool ok;

    pgt_server_stop(pg);
    l = pg_listener_new(&cfg);
    pgt_run_for(loop, 1500);
    ASSERT_UINT_EQ(r->n_st, 2);
    ASSERT_INT_EQ(r->st[1], PG_STATE_RETRYING);
    ASSERT_INT_EQ(pgt_server_start(pg), 0);
    PGT_RUN_UNTIL(loop, rec_states(r, PG_STATE_READY) == 1, 15000, ok);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(r->st[0], PG_STATE_CONNECTING);
    ASSERT_INT_EQ(r->st[r->n_st - 1], PG_STATE_READY);
    for (size_t i = 1; i < r->n_st; i++)
        ASSERT_TRUE(r->st[i] != r->st[i - 1] || strcmp(r->detail[i], r->detail[i - 1]) != 0);
    pg_listener_free(l);
}

static void
permission_body(struct pgt *pg, struct gw_loop *loop, struct rec *r)
{
    struct pg_listener_config cfg;
    struct pg_listener *l;
    char conninfo[300];

    ASSERT_INT_EQ(pg_sql_install(pg->conninfo, false, NULL), 0);
    ASSERT_INT_EQ(pgt_exec(pg->conninfo, "CREATE ROLE nobody LOGIN"), 0);
    snprintf(conninfo, sizeof(conninfo), "%s user=nobody", pg->conninfo);
    cfg = pgt_config(loop, conninfo, r);
    cfg.install_sql = false;
    l = pg_listener_new(&cfg);
    pgt_run_for(loop, 2500); /* attempts at 0, 0.1, 0.6 and 1.6 s */
    ASSERT_UINT_EQ(r->n_st_calls, 2);
    ASSERT_INT_EQ(r->st[1], PG_STATE_RETRYING);
    ASSERT_TRUE(contains_ci(r->detail[1], "permission denied"));
    ASSERT_TRUE(strncmp(r->detail[1], "load tables: ", 13) == 0);
    pg_listener_free(l);
}

/* A stopped backend still ACKs TCP: only the application ping notices it (SELECT 1 after
 * 5 s without input, failed after 3 s without an answer). */
static void
hung_backend_body(struct pgt *pg, struct gw_loop *loop, struct rec *r)
{
    struct pg_listener_config cfg = pgt_config(loop, pg->conninfo, r);
    struct pg_listener *l = pg_listener_new(&cfg);
    char *pid = NULL;
    bool ok;

    PGT_RUN_UNTIL(loop, rec_states(r, PG_STATE_READY) == 1, 15000, ok);
    ASSERT_TRUE(ok);
    pgt_run_for(loop, 1500); /* the first cursor save is done: the connection is idle */
    pid = pgt_value(pg->conninfo,
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'tidings'");
    ASSERT_NOT_NULL(pid);
    ASSERT_INT_EQ(kill(atoi(pid), SIGSTOP), 0);
    PGT_RUN_UNTIL(loop, rec_states(r, PG_STATE_RETRYING) == 1, 15000, ok);
    kill(atoi(pid), SIGCONT);
    free(pid);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(r->st[2], PG_STATE_RETRYING);
    ASSERT_STR_EQ(r->detail[2], "ping: no answer from the server in time");
    PGT_RUN_UNTIL(loop, rec_states(r, PG_STATE_READY) == 2, 15000, ok);
    ASSERT_TRUE(ok);
    ASSERT_UINT_EQ(r->n_st_calls, 4);
    pg_listener_free(l);
}

/* pg_listener_free() from inside the state callback: nothing runs afterwards. */
static void
free_in_callback_body(struct pgt *pg, struct gw_loop *loop, struct rec *r)
{
    struct pg_listener_config cfg = pgt_config(loop, pg->conninfo, r);
    struct pg_listener *l = pg_listener_new(&cfg);
    bool ok;

    r->self = &l;
    PGT_RUN_UNTIL(loop, l == NULL, 15000, ok);
    ASSERT_TRUE(ok);
    ASSERT_INT_EQ(pgt_exec(pg->conninfo, "SELECT pg_notify('tidings', '2:1:{}')"), 0);
    pgt_run_for(loop, 300);
    ASSERT_UINT_EQ(r->n_st_calls, 2);
    ASSERT_UINT_EQ(r->n, 0);
}

typedef void body_fn(struct pgt *pg, struct gw_loop *loop, struct rec *r);

static void
with_server(body_fn *body)
{
    struct pgt pg;
    struct gw_loop *loop = loop_poll_new();
    struct rec r = { 0 };

    if (pgt_start(&pg) == 0) {
        body(&pg, loop, &r);
    } else {
        fprintf(stderr, "PostgreSQL did not start\n");
        harness_failures++;
    }
    pgt_stop(&pg);
    loop_poll_free(loop);
    rec_release(&r);
}

static void
test_late_server(void)
{
    with_server(late_server_body);
}

static void
test_permission_denied(void)
{
    with_server(permission_body);
}

static void
test_hung_backend(void)
{
    with_server(hung_backend_body);
}

static void
test_free_in_callback(void)
{
    with_server(free_in_callback_body);
}

static void
test_invalid_config(void)
{
    struct gw_loop *loop = loop_poll_new();
    struct rec r = { 0 };
    struct pg_listener_config cfg = pgt_config(loop, "host=127.0.0.1", &r);
    const char *bad_chan[] = { "tidings" };
    const char *long_chan[] = {
        "a123456789b123456789c123456789d123456789e123456789f123456789g123"
    };
    struct gw_buf err;

    cfg.on_event = NULL;
    ASSERT_NULL(pg_listener_new(&cfg));
    cfg = pgt_config(loop, "host=127.0.0.1 bogus=1", &r);
    ASSERT_NULL(pg_listener_new(&cfg));
    cfg = pgt_config(loop, "postgresql://[::1", &r);
    ASSERT_NULL(pg_listener_new(&cfg));
    cfg = pgt_config(loop, "host=127.0.0.1", &r);
    cfg.catchup_window_s = 0;
    ASSERT_NULL(pg_listener_new(&cfg));
    cfg = pgt_config(loop, "host=127.0.0.1", &r);
    cfg.channels = bad_chan;
    cfg.n_channels = 1;
    ASSERT_NULL(pg_listener_new(&cfg));
    cfg.channels = long_chan;
    ASSERT_NULL(pg_listener_new(&cfg));
    ASSERT_NULL(pg_listener_new(NULL));
    pg_listener_free(NULL);
    ASSERT_NULL(pg_listener_table(NULL, "public", "x"));
    ASSERT_UINT_EQ(r.n_st_calls, 0);

    gw_buf_init(&err);
    {
        char conninfo[128];

        snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d user=postgres", free_port());
        ASSERT_INT_EQ(pg_sql_install(conninfo, false, &err), GW_EIO);
        ASSERT_TRUE(contains_ci(err.data, "connection refused"));
    }
    gw_buf_release(&err);
    loop_poll_free(loop);
}

int
main(void)
{
    RUN(test_invalid_config);
    RUN(test_wrong_dsn);
    RUN(test_late_server);
    RUN(test_permission_denied);
    RUN(test_free_in_callback);
    RUN(test_hung_backend);
    return HARNESS_DONE();
}
