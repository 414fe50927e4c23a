/*
 * main.c: the composition root of tidings. Parses the command line (serve, token, --help,
 * --version), loads the configuration, builds the verifier and the rules, and runs the
 * server. It is the one file that knows every module.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth/auth.h"
#include "base/base.h"
#include "conf/conf.h"
#include "gateway/gateway_int.h"
#include "listen/listen.h"

extern char **environ;

static int
fail(const char *what, const char *msg)
{
    fprintf(stderr, "tidings: %s%s%s\n", what, *msg ? ": " : "", msg);
    return 2;
}

static struct auth *
make_auth(const struct conf *c, struct gw_buf *err)
{
    struct auth_config ac = {
        .jwt_secret = c->jwt_secret,
        .jwt_public_key = *c->jwt_public_key ? c->jwt_public_key : NULL,
        .jwks_file = *c->jwks_file ? c->jwks_file : NULL,
        .anon_key = *c->anon_key ? c->anon_key : NULL,
        .role_claim = c->role_claim,
        .leeway_s = (unsigned)c->jwt_leeway,
    };

    return auth_new(&ac, err);
}

static struct auth_rules *
make_rules(const struct conf *c, struct gw_buf *err)
{
    struct auth_rules *r = auth_rules_new(c->public_default);

    for (size_t i = 0; i < c->rule.n; i++) {
        struct gw_buf e;

        gw_buf_init(&e);
        if (auth_rules_add(r, c->rule.items[i].value, &e)) {
            gw_buf_printf(err, "%s: rule: %s", c->rule.items[i].origin, e.data ? e.data : "");
            gw_buf_release(&e);
            auth_rules_free(r);
            return NULL;
        }
        gw_buf_release(&e);
    }
    return r;
}

/* `tidings token`: prints a HS256 development token signed with jwt_secret. */
static int
cmd_token(const struct conf *c, const struct conf_list *args)
{
    const char *role = "user", *sub = "dev-user";
    long ttl = 3600;
    struct gw_buf claims;
    char *tok;

    if (!*c->jwt_secret)
        return fail("token", "jwt_secret is not set (use --jwt_secret or TIDINGS_JWT_SECRET)");
    gw_buf_init(&claims);
    for (size_t i = 0; i < args->n; i += 2) {
        const char *a = args->items[i].value,
                   *v = i + 1 < args->n ? args->items[i + 1].value : NULL;
        const char *eq;

        if (!v)
            return fail("token", "missing value after a flag");
        if (strcmp(a, "--role") == 0) {
            role = v;
        } else if (strcmp(a, "--sub") == 0) {
            sub = v;
        } else if (strcmp(a, "--ttl") == 0) {
            ttl = strtol(v, NULL, 10);
        } else if (strcmp(a, "--claim") == 0 && (eq = strchr(v, '=')) && eq != v) {
            gw_buf_append_str(&claims, ",");
            gw_buf_append_json_str(&claims, v, (size_t)(eq - v));
            gw_buf_append_str(&claims, ":");
            gw_buf_append_json_str(&claims, eq + 1, strlen(eq + 1));
        } else {
            gw_buf_release(&claims);
            return fail("token", "usage: tidings token [--role R] [--sub S] [--ttl SECONDS] "
                                 "[--claim NAME=VALUE ...]");
        }
    }
    {
        struct gw_buf json;
        int64_t now = (int64_t)(gw_wall_ms() / 1000);

        gw_buf_init(&json);
        gw_buf_append_str(&json, "{\"role\":");
        gw_buf_append_json_str(&json, role, strlen(role));
        gw_buf_append_str(&json, ",\"sub\":");
        gw_buf_append_json_str(&json, sub, strlen(sub));
        gw_buf_printf(&json, ",\"iat\":%" PRId64 ",\"exp\":%" PRId64 "%s}", now, now + ttl,
                      claims.data ? claims.data : "");
        tok = auth_sign_hs256(c->jwt_secret, json.data);
        gw_buf_release(&json);
    }
    gw_buf_release(&claims);
    if (!tok)
        return fail("token", "cannot sign the token");
    printf("%s\n", tok);
    free(tok);
    return 0;
}

/* `tidings sql print|install`: the SQL of schema tidings for a DBA, or install it now. */
static int
cmd_sql(const struct conf *c, const struct conf_list *args)
{
    struct gw_buf err;
    int rc;

    if (args->n == 1 && strcmp(args->items[0].value, "print") == 0) {
        fputs(pg_sql_text(), stdout);
        if (c->pg_realtime_compat)
            fputs(pg_sql_compat_text(), stdout);
        return 0;
    }
    if (args->n != 1 || strcmp(args->items[0].value, "install") != 0)
        return fail("sql", "usage: tidings sql print|install [--pg CONNINFO]");
    if (!*c->pg)
        return fail("sql install", "option pg is not set (--pg or TIDINGS_PG)");
    gw_buf_init(&err);
    rc = pg_sql_install(c->pg, c->pg_realtime_compat, &err);
    if (rc)
        fail("sql install", err.data ? err.data : "failed");
    else
        printf("tidings: SQL installed\n");
    gw_buf_release(&err);
    return rc ? 1 : 0;
}

static int
serve(const struct conf *c)
{
    struct gw_buf err;
    struct auth *auth = NULL;
    struct auth_rules *rules = NULL;
    struct gw *gw = NULL;
    enum gw_log_level lvl = GW_LOG_INFO;
    int rc = 2;

    gw_buf_init(&err);
    gw_log_level_parse(c->log_level, &lvl);
    gw_log_setup(lvl, strcmp(c->log_format, "json") == 0);
    lws_set_log_level(LLL_ERR, NULL);
    auth = make_auth(c, &err);
    if (!auth) {
        fail("configuration", err.data ? err.data : "no key");
        goto out;
    }
    rules = make_rules(c, &err);
    if (!rules) {
        fail("configuration", err.data);
        goto out;
    }
    gw = gw_new(c, auth, rules, &err);
    if (!gw) {
        fail("startup", err.data ? err.data : "");
        goto out;
    }
    gw_log(GW_LOG_INFO, "listening", "url=http://%s:%d websocket=ws://%s:%d/realtime/v1/websocket",
           c->bind, c->port, c->bind, c->port);
    rc = gw_run(gw) ? 1 : 0;
out:
    gw_free(gw);
    auth_rules_free(rules);
    auth_free(auth);
    gw_buf_release(&err);
    return rc;
}

/* ---- workers: N processes on one port (SO_REUSEPORT), supervised by the parent ---- */

static volatile sig_atomic_t supervisor_stop;

static void
supervisor_signal(int sig)
{
    (void)sig;
    supervisor_stop = 1;
}

static pid_t
spawn_worker(const struct conf *c, int index)
{
    pid_t pid = fork();

    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        exit(serve(c));
    }
    if (pid > 0)
        gw_log(GW_LOG_INFO, "worker_started", "worker=%d pid=%d", index, (int)pid);
    return pid;
}

/* Forwards SIGTERM/SIGINT to the workers and restarts a worker that dies on its own. */
static int
supervise(const struct conf *c)
{
    pid_t *pids = gw_xcalloc((size_t)c->workers, sizeof(*pids));
    int alive = 0, rc = 0;

    signal(SIGTERM, supervisor_signal);
    signal(SIGINT, supervisor_signal);
    for (int i = 0; i < c->workers; i++)
        alive += (pids[i] = spawn_worker(c, i)) > 0;
    while (alive > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);

        if (pid < 0 && errno == EINTR) {
            for (int i = 0; supervisor_stop && i < c->workers; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGTERM);
            continue;
        }
        if (pid < 0)
            break;
        for (int i = 0; i < c->workers; i++) {
            if (pids[i] != pid)
                continue;
            pids[i] = 0;
            alive--;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
                /* A startup failure (configuration, port in use): restarting cannot help. */
                supervisor_stop = 1;
                rc = 2;
                for (int k = 0; k < c->workers; k++)
                    if (pids[k] > 0)
                        kill(pids[k], SIGTERM);
            } else if (!supervisor_stop) {
                gw_log(GW_LOG_ERROR, "worker_died", "worker=%d pid=%d status=%d", i, (int)pid,
                       status);
                rc = 1;
                sleep(1);
                alive += (pids[i] = spawn_worker(c, i)) > 0;
            }
        }
    }
    free(pids);
    return rc;
}

int
main(int argc, char **argv)
{
    struct conf c;
    struct conf_list extra = { 0 };
    struct gw_buf err;
    const char *cmd = "serve";
    int first = 1, rc;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        conf_print_help(stdout, "tidings");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("tidings 0.1.0\n");
        return 0;
    }
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        first = 2;
    }
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "token") != 0 && strcmp(cmd, "sql") != 0)
        return fail("unknown command", cmd);
    memset(&c, 0, sizeof c);
    gw_buf_init(&err);
    rc = conf_load(&c, argc - first, argv + first, environ,
                   strcmp(cmd, "serve") != 0 ? &extra : NULL, &err);
    if (rc) {
        fail("configuration", err.data ? err.data : "");
        rc = 2;
    } else if (strcmp(cmd, "token") == 0) {
        rc = cmd_token(&c, &extra);
    } else if (strcmp(cmd, "sql") == 0) {
        rc = cmd_sql(&c, &extra);
    } else if (c.workers > 1) {
        if (!c.redis.n)
            gw_log(GW_LOG_WARN, "workers_without_redis",
                   "workers=%d note=\"channels and presence are per worker until redis is "
                   "configured\"",
                   c.workers);
        rc = supervise(&c);
    } else {
        rc = serve(&c);
    }
    conf_list_release(&extra);
    conf_release(&c);
    gw_buf_release(&err);
    return rc;
}
