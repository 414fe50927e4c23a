/*
 * test_conf: conf_load() sources and precedence, value checking, error messages, the
 * --help text and conf/tidings.conf.example against the option table. Config files are
 * written under a mkdtemp() directory that is removed at the end.
 */
#include "conf/conf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "harness.h"

#define NFILES 32

static char tmpdir[64];
static char *files[NFILES]; /* paths written by write_file(), removed at exit */
static size_t nfiles;

/* Writes `text` to a new file `name` in tmpdir and returns its path (static storage). */
static const char *
write_file(const char *name, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
    for (size_t i = 0; i < nfiles; i++) {
        if (strcmp(files[i], path) == 0)
            return files[i];
    }
    if (nfiles == NFILES)
        abort();
    files[nfiles] = gw_xstrdup(path);
    return files[nfiles++];
}

static void
remove_files(void)
{
    for (size_t i = 0; i < nfiles; i++) {
        unlink(files[i]);
        free(files[i]);
    }
    rmdir(tmpdir);
}

/* Loads with argv/envp (NULL-terminated arrays); err receives the message. */
static int
load(struct conf *c, const char **argv, const char **envp, struct conf_list *extra,
     struct gw_buf *err)
{
    int argc = 0;

    while (argv && argv[argc])
        argc++;
    gw_buf_reset(err);
    return conf_load(c, argc, (char **)argv, (char **)envp, extra, err);
}

/* Loads a config file holding `text` and returns the result; *path gets its path. */
static int
load_text(struct conf *c, const char *text, const char **path, struct gw_buf *err)
{
    char flag[300];
    const char *argv[] = { flag, NULL };

    *path = write_file("t.conf", text);
    snprintf(flag, sizeof(flag), "--config=%s", *path);
    return load(c, argv, NULL, NULL, err);
}

/* Renders the current value of a non-list option as text. */
static void
value_text(struct conf *c, const struct conf_option *o, char *buf, size_t n)
{
    const char *p = (const char *)c + o->offset;

    if (o->type == CONF_STRING)
        snprintf(buf, n, "%s", *(char *const *)(const void *)p);
    else if (o->type == CONF_INT)
        snprintf(buf, n, "%d", *(const int *)(const void *)p);
    else if (o->type == CONF_BOOL)
        snprintf(buf, n, "%s", *(const bool *)(const void *)p ? "yes" : "no");
    else
        snprintf(buf, n, "(list)");
}

static const char *const sections[] = { "server",     "authentication", "authorization",
                                        "postgresql", "redis",          "limits" };

static size_t
field_size(const struct conf_option *o)
{
    switch (o->type) {
    case CONF_STRING:
        return sizeof(char *);
    case CONF_INT:
        return sizeof(int);
    case CONF_BOOL:
        return sizeof(bool);
    case CONF_LIST:
        return sizeof(struct conf_list);
    }
    return 0;
}

/* True when the rows, ordered by offset, leave no gap in struct conf bigger than padding. */
static bool
rows_cover_struct(const struct conf_option *o, size_t n)
{
    size_t end = 0;

    for (size_t done = 0; done < n; done++) {
        const struct conf_option *next = NULL;
        for (size_t i = 0; i < n; i++) {
            if (o[i].offset >= end && (!next || o[i].offset < next->offset))
                next = &o[i];
        }
        if (!next || next->offset - end >= field_size(next))
            return false; /* a gap that could hold a field of the next row's type */
        end = next->offset + field_size(next);
    }
    return sizeof(struct conf) - end < sizeof(void *);
}

static void
test_table(void)
{
    size_t n = 0;
    const struct conf_option *o = conf_options(&n);

    ASSERT_INT_EQ(n, 51); /* one row per field of struct conf */
    ASSERT_TRUE(rows_cover_struct(o, n));
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (size_t k = 0; k < sizeof sections / sizeof sections[0]; k++)
            known = known || strcmp(o[i].section, sections[k]) == 0;
        ASSERT_TRUE(known);
        ASSERT_TRUE(strlen(o[i].help) > 20);
        ASSERT_TRUE(strlen(o[i].name) < 50);
        ASSERT_TRUE(strspn(o[i].name, "abcdefghijklmnopqrstuvwxyz_") == strlen(o[i].name));
        if (o[i].type == CONF_INT) {
            long d = strtol(o[i].def, NULL, 10);
            ASSERT_TRUE(o[i].min <= d && d <= o[i].max);
        }
        for (size_t k = 0; k < i; k++)
            ASSERT_TRUE(o[k].offset != o[i].offset);
    }
}

static void
test_defaults(void)
{
    struct conf c;
    struct gw_buf err;
    size_t n;
    const struct conf_option *o = conf_options(&n);
    char buf[64];

    gw_buf_init(&err);
    ASSERT_INT_EQ(load(&c, NULL, NULL, NULL, &err), 0);
    ASSERT_STR_EQ(c.bind, "127.0.0.1");
    ASSERT_INT_EQ(c.port, 4000);
    ASSERT_STR_EQ(c.log_level, "info");
    ASSERT_STR_EQ(c.log_format, "text");
    ASSERT_STR_EQ(c.demo_dir, "");
    ASSERT_STR_EQ(c.jwt_secret, "");
    ASSERT_STR_EQ(c.anon_key, "");
    ASSERT_STR_EQ(c.role_claim, "role");
    ASSERT_INT_EQ(c.jwt_leeway, 30);
    ASSERT_INT_EQ(c.rule.n, 0);
    ASSERT_TRUE(c.public_default);
    ASSERT_TRUE(!c.private_only);
    ASSERT_INT_EQ(c.max_connections, 100000);
    ASSERT_INT_EQ(c.max_connections_per_ip, 0);
    ASSERT_INT_EQ(c.max_payload_bytes, 3072000);
    ASSERT_INT_EQ(c.max_topic_bytes, 255);
    ASSERT_INT_EQ(c.max_queue_bytes, 4194304);
    ASSERT_INT_EQ(c.idle_timeout, 60);
    ASSERT_INT_EQ(c.join_error_delay_ms, 5000);
    for (size_t i = 0; i < n; i++) {
        if (o[i].type == CONF_LIST)
            continue;
        value_text(&c, &o[i], buf, sizeof(buf));
        ASSERT_STR_EQ(buf, o[i].def);
    }
    conf_release(&c);
    ASSERT_NULL(c.bind);
    conf_release(&c);
    conf_release(NULL);
    gw_buf_release(&err);
}

static void
test_file_parsing(void)
{
    struct conf c;
    struct gw_buf err;
    const char *path;
    char origin[300];

    gw_buf_init(&err);
    ASSERT_INT_EQ(load_text(&c,
                            "# a comment\n"
                            "\n"
                            "   # indented comment\n"
                            "port   4100  \r\n"
                            "bind \"  0.0.0.0 \"\n"
                            "jwt_secret \"a\\\"b\\\\c\"\n"
                            "role_claim app_role # not a comment\n"
                            "rule allow any all * role=admin|super_admin\n"
                            "\trule   deny any all #x#  \n"
                            "demo_dir \"\"\n"
                            "public_default off\n",
                            &path, &err),
                  0);
    ASSERT_INT_EQ(c.port, 4100);
    ASSERT_STR_EQ(c.bind, "  0.0.0.0 ");
    ASSERT_STR_EQ(c.jwt_secret, "a\"b\\c");
    ASSERT_STR_EQ(c.role_claim, "app_role # not a comment");
    ASSERT_STR_EQ(c.demo_dir, "");
    ASSERT_TRUE(!c.public_default);
    ASSERT_INT_EQ(c.rule.n, 2);
    ASSERT_STR_EQ(c.rule.items[0].value, "allow any all * role=admin|super_admin");
    ASSERT_STR_EQ(c.rule.items[1].value, "deny any all #x#");
    snprintf(origin, sizeof(origin), "%s:8", path);
    ASSERT_STR_EQ(c.rule.items[0].origin, origin);
    snprintf(origin, sizeof(origin), "%s:9", path);
    ASSERT_STR_EQ(c.rule.items[1].origin, origin);
    conf_release(&c);
    gw_buf_release(&err);
}

/* Loads `text` as a config file and expects failure with "PATH:" + `msg`. */
static void
expect_file_error(const char *text, const char *msg)
{
    struct conf c;
    struct gw_buf err;
    const char *path;
    char want[400];

    gw_buf_init(&err);
    ASSERT_INT_EQ(load_text(&c, text, &path, &err), GW_EINVAL);
    snprintf(want, sizeof(want), "%s:%s", path, msg);
    ASSERT_STR_EQ(err.data, want);
    conf_release(&c);
    gw_buf_release(&err);
}

static void
test_file_errors(void)
{
    expect_file_error("\n\nport 70000\n", "3: port: 70000 is out of range 1..65535");
    expect_file_error("port 4000x\n", "1: port: '4000x' is not an integer");
    expect_file_error("port +4000\n", "1: port: '+4000' is not an integer");
    expect_file_error("port 99999999999999999999\n",
                      "1: port: 99999999999999999999 is out of range 1..65535");
    expect_file_error("max_connections_per_ip -1\n",
                      "1: max_connections_per_ip: -1 is out of range 0..10000000");
    expect_file_error("# c\n\n\n\n\n\n\n\n\n\n\nprot 4000\n", "12: unknown option 'prot'");
    expect_file_error("config other.conf\n", "1: unknown option 'config'");
    expect_file_error("max-connections 5\n", "1: unknown option 'max-connections'");
    expect_file_error("port\n", "1: port: missing value");
    expect_file_error("bind \"abc\n", "1: bind: unterminated quoted value");
    expect_file_error("bind \"a\"b\n", "1: bind: characters after the closing quote");
    expect_file_error("bind \"a\\nb\"\n",
                      "1: bind: invalid escape in quoted value (only \\\" and \\\\ are allowed)");
    expect_file_error("port 4001 # web\n", "1: port: '4001 # web' is not an integer");
    expect_file_error("port 80\nidle_timeout 5\n", "2: idle_timeout: 5 is out of range 10..86400");
}

static void
test_missing_file(void)
{
    struct conf c;
    struct gw_buf err;
    char path[200];
    const char *argv[] = { "--config", path, NULL };

    gw_buf_init(&err);
    snprintf(path, sizeof(path), "%s/absent.conf", tmpdir);
    ASSERT_INT_EQ(load(&c, argv, NULL, NULL, &err), GW_EIO);
    ASSERT_TRUE(strstr(err.data, "cannot read config file '") == err.data);
    ASSERT_TRUE(strstr(err.data, "absent.conf': No such file or directory") != NULL);
    conf_release(&c);
    argv[1] = tmpdir; /* a directory opens but cannot be read */
    ASSERT_INT_EQ(load(&c, argv, NULL, NULL, &err), GW_EIO);
    ASSERT_TRUE(strstr(err.data, "cannot read config file '") == err.data);
    conf_release(&c);
    gw_buf_release(&err);
}

static void
test_env_overrides_file(void)
{
    struct conf c;
    struct gw_buf err;
    char cfg[300];
    const char *envp[] = { cfg,
                           "TIDINGS_PORT=6000",
                           "TIDINGS_LOG_FORMAT=json",
                           "TIDINGS_PORT=6001", /* only the first occurrence counts, as getenv */
                           "TIDINGS_NOT_AN_OPTION=1",
                           "TIDINGS_=x",
                           "PORT=1",
                           "TIDINGS_JWT_SECRET=",
                           NULL };

    gw_buf_init(&err);
    snprintf(cfg, sizeof(cfg), "TIDINGS_CONFIG=%s",
             write_file("env.conf", "port 5000\nbind 10.0.0.1\njwt_secret s\n"));
    ASSERT_INT_EQ(load(&c, NULL, envp, NULL, &err), 0);
    ASSERT_INT_EQ(c.port, 6000);
    ASSERT_STR_EQ(c.bind, "10.0.0.1");
    ASSERT_STR_EQ(c.log_format, "json");
    ASSERT_STR_EQ(c.jwt_secret, "");
    conf_release(&c);
    envp[1] = "TIDINGS_PORT=0";
    ASSERT_INT_EQ(load(&c, NULL, envp, NULL, &err), GW_EINVAL);
    ASSERT_STR_EQ(err.data, "env TIDINGS_PORT: 0 is out of range 1..65535");
    conf_release(&c);
    envp[0] = "TIDINGS_CONFIG="; /* empty: no file */
    envp[1] = "TIDINGS_PORT=6000";
    ASSERT_INT_EQ(load(&c, NULL, envp, NULL, &err), 0);
    ASSERT_STR_EQ(c.bind, "127.0.0.1");
    conf_release(&c);
    gw_buf_release(&err);
}

static void
test_flags_override_env(void)
{
    struct conf c;
    struct gw_buf err;
    char cfg[300];
    const char *envp[] = { "TIDINGS_PORT=6000", "TIDINGS_BIND=10.0.0.2", "TIDINGS_JWT_LEEWAY=5",
                           NULL };
    const char *argv[] = { "--port",
                           "7000",
                           "--bind=0.0.0.0",
                           "--max-connections",
                           "5",
                           "--log-level=debug",
                           cfg,
                           "--demo_dir=",
                           "--anon_key",
                           "sb_x=y",
                           NULL };

    gw_buf_init(&err);
    snprintf(cfg, sizeof(cfg), "--config=%s",
             write_file("flags.conf", "port 5000\nmax_connections 9\nrole_claim r\n"));
    ASSERT_INT_EQ(load(&c, argv, envp, NULL, &err), 0);
    ASSERT_INT_EQ(c.port, 7000);
    ASSERT_STR_EQ(c.bind, "0.0.0.0");
    ASSERT_INT_EQ(c.max_connections, 5);
    ASSERT_STR_EQ(c.log_level, "debug");
    ASSERT_STR_EQ(c.role_claim, "r");
    ASSERT_INT_EQ(c.jwt_leeway, 5);
    ASSERT_STR_EQ(c.demo_dir, "");
    ASSERT_STR_EQ(c.anon_key, "sb_x=y");
    conf_release(&c);
    argv[1] = "0";
    ASSERT_INT_EQ(load(&c, argv, envp, NULL, &err), GW_EINVAL);
    ASSERT_STR_EQ(err.data, "flag --port: 0 is out of range 1..65535");
    conf_release(&c);
    argv[1] = "7000";
    argv[4] = "x5";
    ASSERT_INT_EQ(load(&c, argv, envp, NULL, &err), GW_EINVAL);
    ASSERT_STR_EQ(err.data, "flag --max-connections: 'x5' is not an integer");
    conf_release(&c);
    gw_buf_release(&err);
}

static void
test_config_flag_wins(void)
{
    struct conf c;
    struct gw_buf err;
    char cfg[300], path[300];
    const char *envp[] = { cfg, NULL };
    const char *argv[] = { "--config", path, NULL };

    gw_buf_init(&err);
    snprintf(cfg, sizeof(cfg), "TIDINGS_CONFIG=%s", write_file("a.conf", "port 1111\n"));
    snprintf(path, sizeof(path), "%s", write_file("b.conf", "port 2222\n"));
    ASSERT_INT_EQ(load(&c, argv, envp, NULL, &err), 0);
    ASSERT_INT_EQ(c.port, 2222);
    conf_release(&c);
    ASSERT_INT_EQ(load(&c, NULL, envp, NULL, &err), 0);
    ASSERT_INT_EQ(c.port, 1111);
    conf_release(&c);
    gw_buf_release(&err);
}

static void
test_bools(void)
{
    static const char *const yes[] = { "yes", "true", "on", "1", "YES", "True" };
    static const char *const no[] = { "no", "false", "off", "0", "No", "OFF" };
    struct conf c;
    struct gw_buf err;
    const char *argv[] = { "--private_only", NULL, "--public-default", NULL, NULL };

    gw_buf_init(&err);
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        argv[1] = yes[i];
        argv[3] = no[i];
        ASSERT_INT_EQ(load(&c, argv, NULL, NULL, &err), 0);
        ASSERT_TRUE(c.private_only);
        ASSERT_TRUE(!c.public_default);
        conf_release(&c);
    }
    argv[1] = "maybe";
    argv[3] = "yes";
    ASSERT_INT_EQ(load(&c, argv, NULL, NULL, &err), GW_EINVAL);
    ASSERT_STR_EQ(err.data, "flag --private_only: 'maybe' is not a boolean (use yes or no)");
    conf_release(&c);
    argv[1] = "";
    ASSERT_INT_EQ(load(&c, argv, NULL, NULL, &err), GW_EINVAL);
    conf_release(&c);
    gw_buf_release(&err);
}

static void
test_choices(void)
{
    struct conf c;
    struct gw_buf err;
    const char *path;
    const char *argv[] = { "--log_level", "warn", "--log_format", "json", NULL };

    gw_buf_init(&err);
    ASSERT_INT_EQ(load(&c, argv, NULL, NULL, &err), 0);
    ASSERT_STR_EQ(c.log_level, "warn");
    ASSERT_STR_EQ(c.log_format, "json");
    conf_release(&c);
    argv[1] = "inf"; /* a prefix of a choice is not a choice */
    ASSERT_INT_EQ(load(&c, argv, NULL, NULL, &err), GW_EINVAL);
    ASSERT_STR_EQ(err.data, "flag --log_level: 'inf' is not one of debug|info|warn|error");
    conf_release(&c);
    ASSERT_INT_EQ(load_text(&c, "log_format\txml\n", &path, &err), GW_EINVAL);
    ASSERT_TRUE(strstr(err.data, ":1: log_format: 'xml' is not one of text|json") != NULL);
    conf_release(&c);
    gw_buf_release(&err);
}

static void
test_extra_args(void)
{
    struct conf c;
    struct conf_list extra = { 0 };
    struct gw_buf err;
    const char *argv[] = { "--help", "--port", "5", "token",   "--role", "admin", "--ttl=60",
                           "--x",    "--bind", "b", "--claim", "a=b",    "last",  NULL };
    static const char *const want[] = { "--help", "token",   "--role", "admin", "--ttl=60",
                                        "--x",    "--claim", "a=b",    "last" };

    gw_buf_init(&err);
    ASSERT_INT_EQ(load(&c, argv, NULL, &extra, &err), 0);
    ASSERT_INT_EQ(c.port, 5);
    ASSERT_STR_EQ(c.bind, "b");
    ASSERT_INT_EQ(extra.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < extra.n && i < sizeof(want) / sizeof(want[0]); i++) {
        ASSERT_STR_EQ(extra.items[i].value, want[i]);
        ASSERT_STR_EQ(extra.items[i].origin, "argv");
    }
    conf_list_release(&extra);
    ASSERT_NULL(extra.items);
    conf_release(&c);
    gw_buf_release(&err);
}

static void
test_unknown_args(void)
{
    struct conf c;
    struct gw_buf err;
    const char *flag[] = { "--port", "5", "--prot=5", NULL };
    const char *positional[] = { "serve", NULL };
    const char *dashdash[] = { "--", NULL };

    gw_buf_init(&err);
    ASSERT_INT_EQ(load(&c, flag, NULL, NULL, &err), GW_EINVAL);
    ASSERT_STR_EQ(err.data, "unknown flag '--prot'");
    conf_release(&c);
    ASSERT_INT_EQ(load(&c, positional, NULL, NULL, &err), GW_EINVAL);
    ASSERT_STR_EQ(err.data, "unexpected argument 'serve'");
    conf_release(&c);
    ASSERT_INT_EQ(load(&c, dashdash, NULL, NULL, &err), GW_EINVAL);
    ASSERT_STR_EQ(err.data, "unknown flag '--'");
    conf_release(&c);
    gw_buf_release(&err);
}

static void
test_missing_value(void)
{
    struct conf c;
    struct gw_buf err;
    const char *end[] = { "--bind", "x", "--port", NULL };
    const char *next_flag[] = { "--port", "--bind", "x", NULL };
    const char *config[] = { "--config", NULL };
    const char *dashed[] = { "--max-frame-bytes", NULL };

    gw_buf_init(&err);
    ASSERT_INT_EQ(load(&c, end, NULL, NULL, &err), GW_EINVAL);
    ASSERT_STR_EQ(err.data, "flag --port: missing value");
    conf_release(&c);
    ASSERT_INT_EQ(load(&c, next_flag, NULL, NULL, &err), GW_EINVAL);
    ASSERT_STR_EQ(err.data, "flag --port: missing value");
    conf_release(&c);
    ASSERT_INT_EQ(load(&c, config, NULL, NULL, &err), GW_EINVAL);
    ASSERT_STR_EQ(err.data, "flag --config: missing value");
    conf_release(&c);
    ASSERT_INT_EQ(load(&c, dashed, NULL, NULL, &err), GW_EINVAL);
    ASSERT_STR_EQ(err.data, "flag --max-frame-bytes: missing value");
    conf_release(&c);
    gw_buf_release(&err);
}

static void
test_list_precedence(void)
{
    struct conf c;
    struct gw_buf err;
    char cfg[300], origin[300];
    const char *envp[] = { cfg, "TIDINGS_RULE=a1; a2 \n\n a3;", NULL };
    const char *argv[] = { "--rule", "f1", "--port", "4001", "--rule=f2", NULL };

    gw_buf_init(&err);
    snprintf(cfg, sizeof(cfg), "TIDINGS_CONFIG=%s", write_file("r.conf", "rule r1\nrule r2\n"));
    ASSERT_INT_EQ(load(&c, NULL, envp, NULL, &err), 0);
    ASSERT_INT_EQ(c.rule.n, 3);
    ASSERT_STR_EQ(c.rule.items[0].value, "a1");
    ASSERT_STR_EQ(c.rule.items[1].value, "a2");
    ASSERT_STR_EQ(c.rule.items[2].value, "a3");
    ASSERT_STR_EQ(c.rule.items[2].origin, "env TIDINGS_RULE");
    conf_release(&c);
    ASSERT_INT_EQ(load(&c, argv, envp, NULL, &err), 0);
    ASSERT_INT_EQ(c.rule.n, 2);
    ASSERT_STR_EQ(c.rule.items[0].value, "f1");
    ASSERT_STR_EQ(c.rule.items[1].value, "f2");
    ASSERT_STR_EQ(c.rule.items[0].origin, "flag --rule");
    conf_release(&c);
    envp[1] = NULL; /* no env: the file's rules stay unless a flag gives some */
    argv[4] = NULL;
    ASSERT_INT_EQ(load(&c, argv + 2, envp, NULL, &err), 0);
    ASSERT_INT_EQ(c.rule.n, 2);
    ASSERT_STR_EQ(c.rule.items[1].value, "r2");
    snprintf(origin, sizeof(origin), "%s:2", cfg + strlen("TIDINGS_CONFIG="));
    ASSERT_STR_EQ(c.rule.items[1].origin, origin);
    conf_release(&c);
    argv[4] = "--rule=f2";
    ASSERT_INT_EQ(load(&c, argv + 2, envp, NULL, &err), 0);
    ASSERT_INT_EQ(c.rule.n, 1);
    ASSERT_STR_EQ(c.rule.items[0].value, "f2");
    conf_release(&c);
    envp[1] = "TIDINGS_RULE="; /* set but empty: clears the file's rules */
    ASSERT_INT_EQ(load(&c, NULL, envp, NULL, &err), 0);
    ASSERT_INT_EQ(c.rule.n, 0);
    conf_release(&c);
    gw_buf_release(&err);
}

/* Reads the whole example file; the caller frees. */
static char *
read_example(void)
{
    FILE *f = fopen(CONF_EXAMPLE, "r");
    struct gw_buf b;
    char chunk[4096];
    size_t n;

    gw_buf_init(&b);
    if (!f)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        gw_buf_append(&b, chunk, n);
    fclose(f);
    return gw_buf_steal(&b, NULL);
}

/* Returns the option named by a "# name value" line, or NULL. */
static const struct conf_option *
default_line_option(const char *line)
{
    size_t n;
    const struct conf_option *o = conf_options(&n);

    if (strncmp(line, "# ", 2) != 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(o[i].name);
        if (strncmp(line + 2, o[i].name, k) == 0 && line[2 + k] == ' ')
            return &o[i];
    }
    return NULL;
}

/* Writes the "# name value" lines of text, uncommented, to a buffer; counts per option. */
static void
uncomment_defaults(char *text, struct gw_buf *out, size_t *count)
{
    const struct conf_option *base = conf_options(NULL);

    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        const struct conf_option *o = default_line_option(line);
        if (!o)
            continue;
        count[o - base]++;
        gw_buf_append_str(out, line + 2);
        gw_buf_append_str(out, "\n");
    }
}

/* Lower-cases s and turns each run of '#' and blanks (newlines included) into one blank. */
static void
squeeze(char *s)
{
    char *w = s;

    for (char *r = s; *r; r++) {
        if (strchr("# \t\r\n", *r)) {
            if (w == s || w[-1] != ' ')
                *w++ = ' ';
            continue;
        }
        *w++ = (char)tolower((unsigned char)*r);
    }
    *w = '\0';
}

/* True when the help text of every option appears in the example's comments. */
static void
test_example_helps(void)
{
    size_t n;
    const struct conf_option *o = conf_options(&n);
    char *text = read_example(), help[512];

    ASSERT_NOT_NULL(text);
    squeeze(text);
    for (size_t i = 0; i < n; i++) {
        snprintf(help, sizeof(help), "%s", o[i].help);
        squeeze(help);
        if (!strstr(text, help))
            fprintf(stderr, "the example lacks the help of %s: %s\n", o[i].name, o[i].help);
        ASSERT_NOT_NULL(strstr(text, help));
    }
    free(text);
}

static void
test_example_file(void)
{
    struct conf c, d;
    struct gw_buf err, settings;
    size_t n, count[64] = { 0 };
    const struct conf_option *o = conf_options(&n);
    char *text = read_example();
    const char *path;
    char a[64], b[64];
    int rc;

    ASSERT_NOT_NULL(text);
    gw_buf_init(&err);
    gw_buf_init(&settings);
    uncomment_defaults(text, &settings, count);
    free(text);
    for (size_t i = 0; i < n; i++) {
        if (count[i] == 0)
            fprintf(stderr, "option '%s' has no '# %s ' line in the example\n", o[i].name,
                    o[i].name);
        ASSERT_TRUE(count[i] > 0);
        ASSERT_TRUE(count[i] == 1 || o[i].type == CONF_LIST);
    }
    rc = load_text(&c, settings.data, &path, &err);
    if (rc != 0)
        fprintf(stderr, "example: %s\n", err.data);
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(load(&d, NULL, NULL, NULL, &err), 0);
    ASSERT_TRUE(c.rule.n >= 4);
    for (size_t i = 0; i < c.rule.n; i++) {
        const char *r = c.rule.items[i].value;
        ASSERT_TRUE(strncmp(r, "allow ", 6) == 0 || strncmp(r, "deny ", 5) == 0);
    }
    for (size_t i = 0; i < n; i++) {
        if (o[i].type == CONF_LIST)
            continue;
        value_text(&c, &o[i], a, sizeof(a));
        value_text(&d, &o[i], b, sizeof(b));
        ASSERT_STR_EQ(a, b); /* the documented default is the real default */
    }
    conf_release(&c);
    conf_release(&d);
    gw_buf_release(&settings);
    gw_buf_release(&err);
}

/* Joins the continuation lines of wrapped help text (a newline and blanks become one blank). */
static void
unwrap(char *s)
{
    char *w = s;

    for (char *r = s; *r; r++) {
        if (r[0] == '\n' && r[1] == ' ' && r[2] == ' ' && r[3] == ' ') {
            while (r[1] == ' ')
                r++;
            *w++ = ' ';
            continue;
        }
        *w++ = *r;
    }
    *w = '\0';
}

static void
test_help(void)
{
    char *text = NULL, *help, want[128];
    size_t len = 0, n;
    const struct conf_option *o = conf_options(&n);
    FILE *f = open_memstream(&text, &len);

    ASSERT_NOT_NULL(f);
    conf_print_help(f, "tidings");
    fclose(f);
    ASSERT_TRUE(strstr(text, "usage: tidings [serve] [--config FILE] [--NAME VALUE ...]\n") ==
                text);
    ASSERT_NOT_NULL(strstr(text, "       tidings token [--role ROLE] [--sub SUB] [--ttl "
                                 "SECONDS] [--claim NAME=VALUE ...]\n"));
    ASSERT_NOT_NULL(strstr(text, "       tidings --help | --version\n"));
    for (size_t i = 0; i < n; i++) {
        snprintf(want, sizeof(want), "\n  --%s ", o[i].name);
        if (!strstr(text, want))
            fprintf(stderr, "--help lacks %s\n", o[i].name);
        ASSERT_NOT_NULL(strstr(text, want));
    }
    for (size_t k = 0; k < sizeof sections / sizeof sections[0]; k++) {
        snprintf(want, sizeof(want), "\n%s:\n", sections[k]);
        ASSERT_NOT_NULL(strstr(text, want));
    }
    unwrap(text);
    for (size_t i = 0; i < n; i++) {
        if (o[i].type == CONF_INT)
            snprintf(want, sizeof(want), " (default: %s; range %ld..%ld)\n", o[i].def, o[i].min,
                     o[i].max);
        else if (o[i].type != CONF_LIST)
            snprintf(want, sizeof(want), " (default: %s)\n", o[i].def[0] ? o[i].def : "\"\"");
        else
            snprintf(want, sizeof(want), " (repeatable; default: none)\n");
        help = strstr(text, o[i].help);
        ASSERT_NOT_NULL(help);
        ASSERT_TRUE(strncmp(help + strlen(o[i].help), want, strlen(want)) == 0);
    }
    ASSERT_NOT_NULL(strstr(text, "TIDINGS_<NAME>=value"));
    ASSERT_NOT_NULL(strstr(text, "Precedence: flag > env > config file > default."));
    free(text);
}

int
main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_conf.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_table);
    RUN(test_defaults);
    RUN(test_file_parsing);
    RUN(test_file_errors);
    RUN(test_missing_file);
    RUN(test_env_overrides_file);
    RUN(test_flags_override_env);
    RUN(test_config_flag_wins);
    RUN(test_bools);
    RUN(test_choices);
    RUN(test_extra_args);
    RUN(test_unknown_args);
    RUN(test_missing_value);
    RUN(test_list_precedence);
    RUN(test_example_file);
    RUN(test_example_helps);
    RUN(test_help);
    remove_files();
    return HARNESS_DONE();
}
