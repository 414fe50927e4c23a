/*
 * test_lt_opts.c: the command line of tidings-load (loadtest/opts.c): scenarios, defaults,
 * bounds, enumerations, --gateway-pid lists, the loopback-only host, the automatic
 * process and source-address counts, and the params object of the JSON result.
 */
#include <jansson.h>
#include <string.h>

#include "harness.h"
#include "loadtest/load.h"

/* argv copies that outlive a parse (the options keep pointers into argv). */
static char argbuf[64][64];

/* Parses and checks argv (NULL-terminated list); returns the first non-zero code. */
static int
parse(struct lt_opts *o, struct gw_buf *err, const char *const *args)
{
    char *argv[64];
    int argc = 0, rc;

    for (; args[argc] && argc < 63; argc++) {
        snprintf(argbuf[argc], sizeof(argbuf[argc]), "%s", args[argc]);
        argv[argc] = argbuf[argc];
    }
    argv[argc] = NULL;
    lt_opts_init(o);
    gw_buf_reset(err);
    rc = lt_opts_parse(o, argc, argv, err);
    return rc ? rc : lt_opts_check(o, err);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void
test_defaults(void)
{
    struct lt_opts o;
    struct gw_buf err;

    gw_buf_init(&err);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("fanout", "--port", "4000", "--token", "t")), 0);
    ASSERT_INT_EQ(o.scenario, LT_SC_FANOUT);
    ASSERT_INT_EQ(o.port, 4000);
    ASSERT_STR_EQ(o.host, "127.0.0.1");
    ASSERT_UINT_EQ(o.clients, 1000);
    ASSERT_TRUE(o.rate == 20 && o.own_rate == 100 && o.churn_rate == 100);
    ASSERT_TRUE(o.seconds == 10 && o.heartbeat_s == 25 && o.drain_s == 2);
    ASSERT_UINT_EQ(o.payload_bytes, 200);
    ASSERT_UINT_EQ(o.join_timeout_s, 120);
    ASSERT_UINT_EQ(o.procs, 1);
    ASSERT_UINT_EQ(o.src_addrs, 1);
    ASSERT_INT_EQ(o.progress, -1);
    ASSERT_INT_EQ(o.target, LT_TARGET_TIDINGS);
    gw_buf_release(&err);
}

static void
test_rejects(void)
{
    struct lt_opts o;
    struct gw_buf err;

    gw_buf_init(&err);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("flood", "--port", "1")), GW_EINVAL);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("idle", "--port", "1", "--token", "t", "--nope", "1")),
                  GW_EINVAL);
    ASSERT_MEM_STR(err.data, err.len, "unknown option --nope");
    ASSERT_INT_EQ(parse(&o, &err, ARGS("idle", "--port", "70000", "--token", "t")), GW_EINVAL);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("idle", "--port", "1", "--token", "t", "--clients", "1.5")),
                  GW_EINVAL);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("idle", "--port", "1", "--token", "t", "--clients", "0")),
                  GW_EINVAL);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("idle", "--port", "1", "--token", "t", "--clients")),
                  GW_EINVAL);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("idle", "--port", "1", "--token", "t", "--seconds", "x")),
                  GW_EINVAL);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("idle", "--token", "t")), GW_EINVAL); /* no port */
    ASSERT_INT_EQ(parse(&o, &err, ARGS("idle", "--port", "1")), GW_EINVAL);  /* no token */
    ASSERT_INT_EQ(parse(&o, &err, ARGS("idle", "--port", "1", "--token", "t", "--target", "x")),
                  GW_EINVAL);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("db", "--port", "1", "--token", "t")), GW_EINVAL); /* --pg */
    ASSERT_INT_EQ(parse(&o, &err, ARGS("fanout", "--port", "1", "--token", "t", "--rate", "0")),
                  GW_EINVAL); /* nothing to publish */
    /* presence needs own topics; private and presence need the tidings protocol */
    ASSERT_INT_EQ(parse(&o, &err, ARGS("fanout", "--port", "1", "--token", "t", "--presence", "1")),
                  GW_EINVAL);
    ASSERT_TRUE(err.data && strstr(err.data, "--presence needs own topics") != NULL);
    ASSERT_INT_EQ(
        parse(&o, &err, ARGS("fanout", "--port", "1", "--target", "simple", "--private", "1")),
        GW_EINVAL);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("fanout", "--port", "1", "--token", "t", "--private", "2")),
                  GW_EINVAL);
    ASSERT_INT_EQ(
        parse(&o, &err,
              ARGS("soak", "--port", "1", "--token", "t", "--presence", "1", "--private", "1")),
        0);
    ASSERT_UINT_EQ(o.presence, 1);
    ASSERT_UINT_EQ(o.private_ch, 1);
    gw_buf_release(&err);
}

static void
test_loopback_only(void)
{
    struct lt_opts o;
    struct gw_buf err;

    gw_buf_init(&err);
    ASSERT_INT_EQ(
        parse(&o, &err, ARGS("idle", "--port", "1", "--token", "t", "--host", "127.0.0.9")), 0);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("idle", "--port", "1", "--token", "t", "--host", "::1")), 0);
    ASSERT_INT_EQ(
        parse(&o, &err, ARGS("idle", "--port", "1", "--token", "t", "--host", "10.0.0.1")),
        GW_EINVAL);
    ASSERT_INT_EQ(
        parse(&o, &err, ARGS("idle", "--port", "1", "--token", "t", "--host", "example.com")),
        GW_EINVAL);
    gw_buf_release(&err);
}

static void
test_simple_target_and_auto_counts(void)
{
    struct lt_opts o;
    struct gw_buf err;

    gw_buf_init(&err);
    /* simple: no token needed, per-post forced to 1, 2 sockets per many-topics client */
    ASSERT_INT_EQ(parse(&o, &err,
                        ARGS("many-topics", "--port", "1", "--target", "simple", "--clients",
                             "20000", "--per-post", "10")),
                  0);
    ASSERT_INT_EQ(o.target, LT_TARGET_SIMPLE);
    ASSERT_UINT_EQ(o.per_post, 1);
    ASSERT_UINT_EQ(lt_sockets_per_client(&o), 2);
    ASSERT_UINT_EQ(o.procs, 3);     /* 40000 sockets / 19000 */
    ASSERT_UINT_EQ(o.src_addrs, 2); /* 40000 / 25000 */
    ASSERT_INT_EQ(
        parse(&o, &err, ARGS("idle", "--port", "1", "--token", "t", "--clients", "100000")), 0);
    ASSERT_UINT_EQ(o.procs, 6);
    ASSERT_UINT_EQ(o.src_addrs, 4);
    ASSERT_INT_EQ(
        parse(&o, &err,
              ARGS("idle", "--port", "1", "--token", "t", "--clients", "40000", "--procs", "2")),
        GW_EINVAL); /* 20000 per process */
    ASSERT_INT_EQ(
        parse(&o, &err,
              ARGS("idle", "--port", "1", "--token", "t", "--clients", "3", "--procs", "8")),
        0);
    ASSERT_UINT_EQ(o.procs, 3); /* never more processes than sockets */
    gw_buf_release(&err);
}

static void
test_pids_progress_help(void)
{
    struct lt_opts o;
    struct gw_buf err;

    gw_buf_init(&err);
    ASSERT_INT_EQ(parse(&o, &err,
                        ARGS("soak", "--port", "1", "--token", "t", "--gateway-pid", "12,34,56",
                             "--progress", "off")),
                  0);
    ASSERT_UINT_EQ(o.n_gateway_pids, 3);
    ASSERT_INT_EQ(o.gateway_pids[2], 56);
    ASSERT_INT_EQ(o.progress, 0);
    ASSERT_INT_EQ(
        parse(&o, &err, ARGS("soak", "--port", "1", "--token", "t", "--gateway-pid", "1,,x")),
        GW_EINVAL);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("soak", "--port", "1", "--progress", "sometimes")),
                  GW_EINVAL);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("soak", "--help")), 1);
    ASSERT_INT_EQ(parse(&o, &err, ARGS("--help")), 1);
    gw_buf_release(&err);
}

static void
test_params_json(void)
{
    struct lt_opts o;
    struct gw_buf err;
    json_t *p;

    gw_buf_init(&err);
    ASSERT_INT_EQ(parse(&o, &err,
                        ARGS("churn", "--port", "4100", "--token", "secret.jwt", "--churn-rate",
                             "250", "--join-timeout", "30")),
                  0);
    p = lt_opts_params(&o);
    ASSERT_INT_EQ(json_integer_value(json_object_get(p, "port")), 4100);
    ASSERT_TRUE(json_real_value(json_object_get(p, "churn_rate")) == 250.0);
    ASSERT_INT_EQ(json_integer_value(json_object_get(p, "join_timeout")), 30);
    ASSERT_STR_EQ(json_string_value(json_object_get(p, "token")), "(set)"); /* never the JWT */
    ASSERT_STR_EQ(json_string_value(json_object_get(p, "target")), "tidings");
    ASSERT_STR_EQ(json_string_value(json_object_get(p, "progress")), "auto");
    ASSERT_TRUE(json_is_null(json_object_get(p, "gateway_pid")));
    ASSERT_TRUE(json_is_null(json_object_get(p, "label")));
    ASSERT_NOT_NULL(json_object_get(p, "own_rate"));
    json_decref(p);
    gw_buf_release(&err);
}

int
main(void)
{
    RUN(test_defaults);
    RUN(test_rejects);
    RUN(test_loopback_only);
    RUN(test_simple_target_and_auto_counts);
    RUN(test_pids_progress_help);
    RUN(test_params_json);
    return HARNESS_DONE();
}
