/*
 * pgt.c: throwaway PostgreSQL servers, SQL helpers, a writer process and a callback
 * recorder for the listen/ integration tests (see pgt.h).
 *
 * Each server lives in a mkdtemp() directory. A reaper child waits on a pipe whose write
 * end only this process holds: when the test ends normally it writes one byte (the reaper
 * just exits); when the test dies, the pipe closes and the reaper stops the server and
 * removes the directory.
 */
#include "pgt.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PGTMP
#error "PGTMP (path of test/support/pgtmp.sh) must be defined by the build"
#endif

static void
sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void
run_stop(const char *root, const char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "'%s' stop '%s' >/dev/null 2>&1; rm -rf '%s'", PGTMP, dir, root);
    if (system(cmd) != 0)
        fprintf(stderr, "pgt: cleanup of %s failed\n", root);
}

static void
reaper_main(int rfd, const char *root, const char *dir)
{
    char c;
    ssize_t n;

    do {
        n = read(rfd, &c, 1);
    } while (n < 0);
    if (n == 0)
        run_stop(root, dir);
    _exit(0);
}

static int
reaper_start(struct pgt *p)
{
    int fds[2];

    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    p->reaper = fork();
    if (p->reaper < 0)
        return -1;
    if (p->reaper == 0) {
        close(fds[1]);
        setpgid(0, 0); /* not killed with the test's process group */
        reaper_main(fds[0], p->root, p->dir);
    }
    close(fds[0]);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    p->reaper_fd = fds[1];
    return 0;
}

int
pgt_start(struct pgt *p)
{
    char cmd[512];
    FILE *f;

    memset(p, 0, sizeof(*p));
    p->reaper_fd = -1;
    snprintf(p->root, sizeof(p->root), "/tmp/tidings-listen-XXXXXX");
    if (!mkdtemp(p->root) || chmod(p->root, 0755) != 0)
        return -1;
    snprintf(p->dir, sizeof(p->dir), "%s/data", p->root);
    if (reaper_start(p) < 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "'%s' start '%s'", PGTMP, p->dir);
    f = popen(cmd, "r");
    if (!f || !fgets(p->conninfo, sizeof(p->conninfo), f)) {
        if (f)
            pclose(f);
        fprintf(stderr, "pgt: %s failed\n", cmd);
        return -1;
    }
    pclose(f);
    p->conninfo[strcspn(p->conninfo, "\n")] = '\0';
    if (sscanf(strstr(p->conninfo, "port="), "port=%d", &p->port) != 1)
        return -1;
    return 0;
}

void
pgt_stop(struct pgt *p)
{
    if (p->reaper_fd >= 0) {
        if (write(p->reaper_fd, "x", 1) != 1)
            fprintf(stderr, "pgt: reaper write failed\n");
        close(p->reaper_fd);
        waitpid(p->reaper, NULL, 0);
        p->reaper_fd = -1;
    }
    if (p->root[0])
        run_stop(p->root, p->dir);
    p->root[0] = '\0';
}

void
pgt_server_stop(struct pgt *p)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "'%s' stop '%s'", PGTMP, p->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "pgt: %s failed\n", cmd);
}

/* Runs pg_ctl with args as the postgres user (when root); returns system()'s status. */
static int
pg_ctl(const struct pgt *p, const char *args)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd),
             "bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); "
             "as=''; [ \"$(id -u)\" -eq 0 ] && as='runuser -u postgres --'; "
             "$as \"$bin/pg_ctl\" -D '%s' -w -t 30 -l '%s/server.log' %s >/dev/null",
             p->dir, p->dir, args);
    return system(cmd);
}

int
pgt_server_start(struct pgt *p)
{
    char args[512];

    snprintf(args, sizeof(args),
             "-o \"-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
             "-c max_connections=200\" start",
             p->port, p->dir);
    return pg_ctl(p, args) == 0 ? 0 : -1;
}

pid_t
pgt_restart_async(struct pgt *p)
{
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0)
        _exit(pg_ctl(p, "-m fast restart") == 0 ? 0 : 1);
    return pid;
}

static PGconn *
connect_quiet(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgt: connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

static PGresult *
query(const char *conninfo, const char *sql, PGconn **out)
{
    PGconn *c = connect_quiet(conninfo);
    PGresult *r;
    ExecStatusType st;

    *out = c;
    if (!c)
        return NULL;
    r = PQexec(c, sql);
    st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgt: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        return NULL;
    }
    return r;
}

int
pgt_exec(const char *conninfo, const char *sql)
{
    PGconn *c;
    PGresult *r = query(conninfo, sql, &c);
    int rc = r ? 0 : -1;

    PQclear(r);
    PQfinish(c);
    return rc;
}

char *
pgt_value(const char *conninfo, const char *sql)
{
    PGconn *c;
    PGresult *r = query(conninfo, sql, &c);
    char *v = NULL;

    if (r && PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0))
        v = gw_xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return v;
}

long
pgt_ids(const char *conninfo, const char *sql, int64_t *ids, size_t max)
{
    PGconn *c;
    PGresult *r = query(conninfo, sql, &c);
    long n = -1;

    if (r) {
        n = 0;
        for (int i = 0; i < PQntuples(r) && (size_t)n < max; i++)
            ids[n++] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    }
    PQclear(r);
    PQfinish(c);
    return n;
}

static void
writer_main(const char *conninfo, const char *sql, int n, int sleep, int max_ms)
{
    uint64_t deadline = gw_now_ms() + (uint64_t)max_ms;
    PGconn *c = NULL;

    for (int i = 0; i < n && gw_now_ms() < deadline;) {
        PGresult *r;

        if (!c) {
            c = PQconnectdb(conninfo);
            if (PQstatus(c) != CONNECTION_OK) {
                PQfinish(c);
                c = NULL;
                sleep_ms(50);
                continue;
            }
        }
        r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
            PQfinish(c);
            c = NULL;
        }
        PQclear(r);
        i++;
        if (sleep)
            sleep_ms(sleep);
    }
    PQfinish(c);
}

pid_t
pgt_writer(const char *conninfo, const char *sql, int n, int sleep, int max_ms)
{
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        writer_main(conninfo, sql, n, sleep, max_ms);
        _exit(0);
    }
    return pid;
}

bool
pgt_reaped(pid_t pid)
{
    return waitpid(pid, NULL, WNOHANG) == pid;
}

void
rec_event(void *ud, const struct pg_event *ev)
{
    struct rec *r = ud;
    struct rec_event *e;

    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->ev = gw_xrealloc(r->ev, r->cap * sizeof(*r->ev));
    }
    e = &r->ev[r->n++];
    e->kind = ev->kind;
    e->id = ev->id;
    e->restart = ev->restart_catchup;
    e->len = ev->len;
    e->json = gw_xstrndup(ev->json, ev->len);
    e->channel = ev->channel ? gw_xstrdup(ev->channel) : NULL;
    e->at_ms = gw_now_ms();
}

void
rec_state(void *ud, enum pg_state st, const char *detail)
{
    struct rec *r = ud;

    if (r->n_st < sizeof(r->st) / sizeof(r->st[0])) {
        r->st[r->n_st] = st;
        r->detail[r->n_st] = gw_xstrdup(detail);
        r->n_st++;
    }
    r->n_st_calls++;
    if (getenv("PGT_VERBOSE"))
        fprintf(stderr, "  state %d: %s\n", (int)st, detail);
    if (st == PG_STATE_READY && r->self && *r->self) {
        pg_listener_free(*r->self);
        *r->self = NULL;
    }
}

void
rec_release(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->ev[i].json);
        free(r->ev[i].channel);
    }
    free(r->ev);
    for (size_t i = 0; i < r->n_st; i++)
        free(r->detail[i]);
    memset(r, 0, sizeof(*r));
}

size_t
rec_count(const struct rec *r, enum pg_event_kind kind)
{
    size_t n = 0;

    for (size_t i = 0; i < r->n; i++)
        n += r->ev[i].kind == kind;
    return n;
}

size_t
rec_states(const struct rec *r, enum pg_state st)
{
    size_t n = 0;

    for (size_t i = 0; i < r->n_st; i++)
        n += r->st[i] == st;
    return n;
}

size_t
rec_ids(const struct rec *r, int64_t *ids, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < r->n && n < max; i++) {
        if (r->ev[i].kind != PG_EVENT_NOTIFY)
            ids[n++] = r->ev[i].id;
    }
    return n;
}

void
pgt_run_for(struct gw_loop *loop, int ms)
{
    uint64_t deadline = gw_now_ms() + (uint64_t)ms;

    while (gw_now_ms() < deadline)
        loop_poll_run(loop, 20);
}

struct pg_listener_config
pgt_config(struct gw_loop *loop, const char *conninfo, struct rec *r)
{
    struct pg_listener_config c = { 0 };

    c.conninfo = conninfo;
    c.install_sql = true;
    c.catchup_window_s = 300;
    c.loop = loop;
    c.on_event = rec_event;
    c.on_state = rec_state;
    c.ud = r;
    return c;
}
