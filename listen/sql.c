/*
 * sql.c: the embedded SQL of listen/sql/ and its installer, and the connection
 * parameters shared by the listener and the installer.
 *
 * The build turns the .sql files of listen/sql (name order) and those of listen/sql/compat
 * into two NUL-terminated byte arrays (sql_text.c in the build directory). The install
 * runs as one
 * simple query: BEGIN; the advisory lock; the SQL; [the compat SQL;] COMMIT. Connection
 * strings in key=value or URI form are parsed with PQconninfoParse, and our defaults
 * (application_name, TCP keepalives) are added only where neither the string nor the
 * environment set them.
 */
#include "listen/listen_int.h"

#include <stdlib.h>
#include <string.h>

const char *
pg_sql_text(void)
{
    return (const char *)pg__sql_main;
}

const char *
pg_sql_compat_text(void)
{
    return (const char *)pg__sql_compat;
}

void
pg__install_query(bool compat, struct gw_buf *b)
{
    gw_buf_append_str(b, "BEGIN;\nSELECT pg_advisory_xact_lock(hashtext('tidings'));\n");
    gw_buf_append_str(b, (const char *)pg__sql_main);
    gw_buf_append_str(b, "\n;\n");
    if (compat) {
        gw_buf_append_str(b, (const char *)pg__sql_compat);
        gw_buf_append_str(b, "\n;\n");
    }
    gw_buf_append_str(b, "COMMIT;\n");
}

void
pg__first_line(const char *msg, struct gw_buf *b)
{
    size_t n;

    if (!msg || !*msg)
        msg = "unknown error";
    if (strncmp(msg, "ERROR:  ", 8) == 0)
        msg += 8;
    else if (strncmp(msg, "FATAL:  ", 8) == 0)
        msg += 8;
    n = strcspn(msg, "\n");
    while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == '\t' || msg[n - 1] == '\r'))
        n--;
    gw_buf_append(b, msg, n);
}

/* Our defaults, applied where the user set nothing. */
static const char *const keepalive_defaults[][2] = {
    { "keepalives", "1" },       { "keepalives_idle", "10" },     { "keepalives_interval", "3" },
    { "keepalives_count", "3" }, { "tcp_user_timeout", "10000" },
};

static void
params_add(struct pg_params *p, const char *key, const char *val)
{
    p->keys = gw_xrealloc(p->keys, (p->n + 2) * sizeof(*p->keys));
    p->vals = gw_xrealloc(p->vals, (p->n + 2) * sizeof(*p->vals));
    p->keys[p->n] = gw_xstrdup(key);
    p->vals[p->n] = gw_xstrdup(val);
    p->n++;
    p->keys[p->n] = NULL;
    p->vals[p->n] = NULL;
}

/* True when `key` has a value in the parsed string or in the environment defaults. */
static bool
is_set(const PQconninfoOption *parsed, const PQconninfoOption *defaults, const char *key)
{
    for (const PQconninfoOption *o = parsed; o && o->keyword; o++) {
        if (strcmp(o->keyword, key) == 0 && o->val && *o->val)
            return true;
    }
    for (const PQconninfoOption *o = defaults; o && o->keyword; o++) {
        if (strcmp(o->keyword, key) == 0 && o->val && *o->val)
            return true;
    }
    return false;
}

static void
add_defaults(struct pg_params *p, const PQconninfoOption *parsed, const char *app, bool keepalives)
{
    PQconninfoOption *defaults = PQconndefaults();

    if (app && !is_set(parsed, defaults, "application_name"))
        params_add(p, "application_name", app);
    for (size_t i = 0; keepalives && i < sizeof(keepalive_defaults) / sizeof(*keepalive_defaults);
         i++) {
        if (!is_set(parsed, defaults, keepalive_defaults[i][0]))
            params_add(p, keepalive_defaults[i][0], keepalive_defaults[i][1]);
    }
    PQconninfoFree(defaults);
}

int
pg__params_build(const char *conninfo, const char *app, bool keepalives, struct pg_params *p,
                 struct gw_buf *err)
{
    char *msg = NULL;
    PQconninfoOption *parsed = PQconninfoParse(conninfo ? conninfo : "", &msg);

    memset(p, 0, sizeof(*p));
    if (!parsed) {
        if (err)
            pg__first_line(msg ? msg : "invalid connection string", err);
        PQfreemem(msg);
        return GW_EINVAL;
    }
    p->keys = gw_xcalloc(1, sizeof(*p->keys));
    p->vals = gw_xcalloc(1, sizeof(*p->vals));
    for (const PQconninfoOption *o = parsed; o->keyword; o++) {
        if (o->val)
            params_add(p, o->keyword, o->val);
    }
    add_defaults(p, parsed, app, keepalives);
    PQconninfoFree(parsed);
    return 0;
}

void
pg__params_release(struct pg_params *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->keys[i]);
        free(p->vals[i]);
    }
    free(p->keys);
    free(p->vals);
    memset(p, 0, sizeof(*p));
}

static void
quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Appends a whole libpq message without its trailing newline. */
static void
append_trimmed(struct gw_buf *b, const char *msg)
{
    size_t n = msg ? strlen(msg) : 0;

    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    if (n == 0)
        gw_buf_append_str(b, "unknown error");
    else
        gw_buf_append(b, msg, n);
}

int
pg_sql_install(const char *conninfo, bool realtime_compat, struct gw_buf *err)
{
    struct pg_params p;
    struct gw_buf q;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int rc = GW_EIO;

    gw_buf_init(&q);
    if (pg__params_build(conninfo, "tidings-install", false, &p, err) < 0)
        return GW_EIO;
    conn = PQconnectdbParams((const char *const *)p.keys, (const char *const *)p.vals, 0);
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        goto out;
    PQsetNoticeProcessor(conn, quiet_notice, NULL);
    pg__install_query(realtime_compat, &q);
    res = PQexec(conn, q.data);
    if (PQresultStatus(res) == PGRES_COMMAND_OK)
        rc = 0;
out:
    if (rc < 0 && err)
        append_trimmed(err, res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
    pg__params_release(&p);
    gw_buf_release(&q);
    return rc;
}
