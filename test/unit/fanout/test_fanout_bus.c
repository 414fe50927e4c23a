/*
 * test_fanout_bus.c: unit tests of the pure parts of the Redis bus (fanout/bus.c): URL
 * parsing, the envelope, the RESP bytes of commands and node ids. No server needed.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fanout/fanout_int.h"
#include "harness.h"

static void
test_url_full(void)
{
    struct fanout__redis_url u;

    ASSERT_INT_EQ(fanout__redis_url_parse("redis://:pw@10.0.0.5:6380/2", &u), 0);
    ASSERT_STR_EQ(u.host, "10.0.0.5");
    ASSERT_INT_EQ(u.port, 6380);
    ASSERT_NULL(u.user);
    ASSERT_STR_EQ(u.password, "pw");
    ASSERT_INT_EQ(u.db, 2);
    ASSERT_STR_EQ(u.label, "10.0.0.5:6380");
    fanout__redis_url_release(&u);
    ASSERT_NULL(u.host);
}

static void
test_url_defaults(void)
{
    struct fanout__redis_url u;

    ASSERT_INT_EQ(fanout__redis_url_parse("redis://cache.internal", &u), 0);
    ASSERT_STR_EQ(u.host, "cache.internal");
    ASSERT_INT_EQ(u.port, 6379);
    ASSERT_NULL(u.password);
    ASSERT_INT_EQ(u.db, -1);
    ASSERT_STR_EQ(u.label, "cache.internal:6379");
    fanout__redis_url_release(&u);
    ASSERT_INT_EQ(fanout__redis_url_parse("REDIS://h:1/", &u), 0);
    ASSERT_INT_EQ(u.port, 1);
    ASSERT_INT_EQ(u.db, -1);
    fanout__redis_url_release(&u);
}

static void
test_url_user_escapes_v6(void)
{
    struct fanout__redis_url u;

    /* ACL user, escaped '@' and ':' in the password, and a raw '@' (the last one wins). */
    ASSERT_INT_EQ(fanout__redis_url_parse("redis://app:a%40b%3Ac@x@[::1]:7000/0", &u), 0);
    ASSERT_STR_EQ(u.user, "app");
    ASSERT_STR_EQ(u.password, "a@b:c@x");
    ASSERT_STR_EQ(u.host, "::1");
    ASSERT_INT_EQ(u.port, 7000);
    ASSERT_INT_EQ(u.db, 0);
    ASSERT_STR_EQ(u.label, "[::1]:7000");
    fanout__redis_url_release(&u);
    ASSERT_INT_EQ(fanout__redis_url_parse("redis://[::1]", &u), 0);
    ASSERT_STR_EQ(u.label, "[::1]:6379");
    fanout__redis_url_release(&u);
}

static void
test_url_invalid(void)
{
    static const char *const bad[] = {
        "",
        "127.0.0.1:6379",
        "rediss://h:6379",
        "http://h",
        "redis://",
        "redis://:6379",
        "redis://h:",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:12x",
        "redis://h/x",
        "redis://h/-1",
        "redis://h/99999999999",
        "redis://user@h",
        "redis://:@h",
        "redis://:p%4@h",
        "redis://:p%00@h",
        "redis://h?db=1",
        "redis://h x",
        "redis://[::1",
        "redis://[::1]x",
        "redis://[]:1",
    };
    struct fanout__redis_url u;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = fanout__redis_url_parse(bad[i], &u);

        if (rc != GW_EINVAL)
            FAIL_AT("accepted \"%s\"", bad[i]);
        ASSERT_NULL(u.host);
        ASSERT_NULL(u.password);
    }
    ASSERT_INT_EQ(fanout__redis_url_parse(NULL, &u), GW_EINVAL);
}

static void
test_resp_publish(void)
{
    struct gw_buf b;
    static const char want[] = "*3\r\n$7\r\nPUBLISH\r\n$12\r\ntidings:bus:"
                               "\r\n$11\r\n\x01\x02nA\x00\x00\x01\x02x\x00y\r\n";

    gw_buf_init(&b);
    fanout__resp_begin(&b, "PUBLISH", 2);
    fanout__resp_channel(&b, "tidings:", 8, "", 0);
    fanout__resp_envelope(&b, "nA", 2, 0x102, "x\0y", 3);
    ASSERT_UINT_EQ(b.len, sizeof(want) - 1);
    ASSERT_TRUE(memcmp(b.data, want, b.len) == 0);
    gw_buf_reset(&b);
    fanout__resp_begin(&b, "SUBSCRIBE", 2);
    fanout__resp_channel(&b, "p:", 2, "a", 1);
    fanout__resp_channel(&b, "p:", 2, "bc\r\n", 4);
    ASSERT_MEM_STR(b.data, b.len,
                   "*3\r\n$9\r\nSUBSCRIBE\r\n$7\r\np:bus:a\r\n$10\r\np:bus:bc\r\n\r\n");
    gw_buf_release(&b);
}

static void
test_envelope_roundtrip(void)
{
    struct gw_buf b;
    struct fanout__envelope e;
    const char *env;
    char node[FANOUT_NODE_ID_MAX];

    memset(node, 'n', sizeof(node));
    gw_buf_init(&b);
    fanout__resp_envelope(&b, node, sizeof(node), 0xfedcba98u, "body", 4);
    /* Skip the "$<len>\r\n" header; the trailing "\r\n" is not part of the envelope. */
    env = strstr(b.data, "\r\n") + 2;
    ASSERT_INT_EQ(fanout__envelope_decode(env, b.len - (size_t)(env - b.data) - 2, &e), 0);
    ASSERT_UINT_EQ(e.node_len, FANOUT_NODE_ID_MAX);
    ASSERT_TRUE(memcmp(e.node, node, sizeof(node)) == 0);
    ASSERT_UINT_EQ(e.tag, 0xfedcba98u);
    ASSERT_MEM_STR(e.body, e.body_len, "body");
    gw_buf_release(&b);
}

static void
test_envelope_invalid(void)
{
    struct fanout__envelope e;
    static const unsigned char empty_body[] = { 1, 1, 'n', 0, 0, 0, 7 };
    static const unsigned char v2[] = { 2, 1, 'n', 0, 0, 0, 7 };
    static const unsigned char no_node[] = { 1, 0, 0, 0, 0, 7 };
    static const unsigned char short_tag[] = { 1, 1, 'n', 0, 0, 7 };
    static const unsigned char long_node[] = { 1, 65, 'n' };

    ASSERT_INT_EQ(fanout__envelope_decode(empty_body, sizeof(empty_body), &e), 0);
    ASSERT_UINT_EQ(e.body_len, 0);
    ASSERT_UINT_EQ(e.tag, 7);
    ASSERT_INT_EQ(fanout__envelope_decode(v2, sizeof(v2), &e), GW_EPARSE);
    ASSERT_INT_EQ(fanout__envelope_decode(no_node, sizeof(no_node), &e), GW_EPARSE);
    ASSERT_INT_EQ(fanout__envelope_decode(short_tag, sizeof(short_tag), &e), GW_EPARSE);
    ASSERT_INT_EQ(fanout__envelope_decode(long_node, sizeof(long_node), &e), GW_EPARSE);
    ASSERT_INT_EQ(fanout__envelope_decode("", 0, &e), GW_EPARSE);
    ASSERT_INT_EQ(fanout__envelope_decode(NULL, 5, &e), GW_EPARSE);
}

static void
test_node_id(void)
{
    char *a = fanout__node_id_new(), *b = fanout__node_id_new();
    char long_id[FANOUT_NODE_ID_MAX + 2];

    ASSERT_TRUE(fanout__node_id_valid(a));
    ASSERT_TRUE(strcmp(a, b) != 0);
    ASSERT_TRUE(fanout__node_id_valid("gw-1"));
    ASSERT_TRUE(!fanout__node_id_valid(""));
    ASSERT_TRUE(!fanout__node_id_valid(NULL));
    ASSERT_TRUE(!fanout__node_id_valid("a b"));
    ASSERT_TRUE(!fanout__node_id_valid("a\nb"));
    memset(long_id, 'x', sizeof(long_id));
    long_id[FANOUT_NODE_ID_MAX] = '\0';
    ASSERT_TRUE(fanout__node_id_valid(long_id));
    long_id[FANOUT_NODE_ID_MAX] = 'x';
    long_id[FANOUT_NODE_ID_MAX + 1] = '\0';
    ASSERT_TRUE(!fanout__node_id_valid(long_id));
    free(a);
    free(b);
}

/* A presence value round-trips binary bytes; truncated values are refused. */
static void
test_pvalue(void)
{
    static const char meta[] = "{\"a\":\"\0x\"}";
    struct fanout_presence in = { "k\0y", 3, "ref", 3, meta, sizeof(meta) - 1 }, out;
    struct gw_buf b;

    gw_buf_init(&b);
    fanout__pvalue_encode(&b, &in);
    ASSERT_UINT_EQ(b.len, 4 + 3 + 4 + 3 + sizeof(meta) - 1);
    ASSERT_INT_EQ(fanout__pvalue_decode(b.data, b.len, &out), 0);
    ASSERT_UINT_EQ(out.key_len, 3);
    ASSERT_TRUE(memcmp(out.key, "k\0y", 3) == 0);
    ASSERT_MEM_STR(out.ref, out.ref_len, "ref");
    ASSERT_UINT_EQ(out.meta_len, sizeof(meta) - 1);
    ASSERT_TRUE(memcmp(out.meta, meta, out.meta_len) == 0);
    /* Empty meta. */
    ASSERT_INT_EQ(fanout__pvalue_decode(b.data, 14, &out), 0);
    ASSERT_UINT_EQ(out.meta_len, 0);
    /* Cut inside the key or the ref, or shorter than a length. */
    ASSERT_INT_EQ(fanout__pvalue_decode(b.data, 6, &out), GW_EPARSE);
    ASSERT_INT_EQ(fanout__pvalue_decode(b.data, 13, &out), GW_EPARSE);
    ASSERT_INT_EQ(fanout__pvalue_decode(b.data, 3, &out), GW_EPARSE);
    ASSERT_INT_EQ(fanout__pvalue_decode(NULL, 0, &out), GW_EPARSE);
    gw_buf_release(&b);
}

int
main(void)
{
    RUN(test_url_full);
    RUN(test_url_defaults);
    RUN(test_url_user_escapes_v6);
    RUN(test_url_invalid);
    RUN(test_resp_publish);
    RUN(test_envelope_roundtrip);
    RUN(test_envelope_invalid);
    RUN(test_node_id);
    RUN(test_pvalue);
    return HARNESS_DONE();
}
