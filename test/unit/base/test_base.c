/*
 * test_base.c: unit tests of base/: byte buffer, JSON string escaping, rate-limit helpers,
 * error names and log-level parsing.
 */
#include <stdlib.h>

#include "base/base.h"
#include "harness.h"

static void
test_buf_append_and_printf(void)
{
    struct gw_buf b;

    gw_buf_init(&b);
    gw_buf_append_str(&b, "abc");
    gw_buf_printf(&b, "-%d-%s", 42, "x");
    ASSERT_STR_EQ(b.data, "abc-42-x");
    ASSERT_UINT_EQ(b.len, 8);
    gw_buf_reset(&b);
    ASSERT_UINT_EQ(b.len, 0);
    ASSERT_STR_EQ(b.data, "");
    for (int i = 0; i < 1000; i++)
        gw_buf_append(&b, "0123456789", 10);
    ASSERT_UINT_EQ(b.len, 10000);
    ASSERT_TRUE(b.cap > 10000);
    gw_buf_release(&b);
    ASSERT_NULL(b.data);
}

static void
test_buf_steal(void)
{
    struct gw_buf b;
    size_t len = 99;
    char *s;

    gw_buf_init(&b);
    s = gw_buf_steal(&b, &len);
    ASSERT_STR_EQ(s, "");
    ASSERT_UINT_EQ(len, 0);
    free(s);
    gw_buf_append_str(&b, "hello");
    s = gw_buf_steal(&b, &len);
    ASSERT_STR_EQ(s, "hello");
    ASSERT_UINT_EQ(len, 5);
    ASSERT_NULL(b.data);
    free(s);
}

static void
test_json_escape(void)
{
    struct gw_buf b;

    gw_buf_init(&b);
    gw_buf_append_json_str(&b, "a\"b\\c\nd\x01\xc3\xa9", 10);
    ASSERT_STR_EQ(b.data, "\"a\\\"b\\\\c\\nd\\u0001\xc3\xa9\"");
    gw_buf_reset(&b);
    gw_buf_append_json_str(&b, "x\0y", 3);
    ASSERT_STR_EQ(b.data, "\"x\\u0000y\"");
    gw_buf_release(&b);
}

static void
test_bucket(void)
{
    struct gw_bucket bk = { 0 };
    int taken = 0;

    for (int i = 0; i < 20; i++)
        taken += gw_bucket_take(&bk, 10, 10, 1000);
    ASSERT_INT_EQ(taken, 10);
    /* 500 ms later, 5 tokens have come back. */
    taken = 0;
    for (int i = 0; i < 20; i++)
        taken += gw_bucket_take(&bk, 10, 10, 1500);
    ASSERT_INT_EQ(taken, 5);
    /* Never more than the burst, however long the pause. */
    taken = 0;
    for (int i = 0; i < 50; i++)
        taken += gw_bucket_take(&bk, 10, 10, 100000);
    ASSERT_INT_EQ(taken, 10);
}

static void
test_window(void)
{
    struct gw_window w = { 0 };
    int taken = 0;

    for (int i = 0; i < 10; i++)
        taken += gw_window_take(&w, 5, 30000, 1000 + (uint64_t)i);
    ASSERT_INT_EQ(taken, 5);
    ASSERT_TRUE(!gw_window_take(&w, 5, 30000, 30999));
    ASSERT_TRUE(gw_window_take(&w, 5, 30000, 31000));
}

static void
test_strerror_and_levels(void)
{
    enum gw_log_level lvl = GW_LOG_DEBUG;

    ASSERT_STR_EQ(gw_strerror(GW_ELIMIT), "limit exceeded");
    ASSERT_STR_EQ(gw_strerror(12345), "unknown error");
    ASSERT_INT_EQ(gw_log_level_parse("warn", &lvl), 0);
    ASSERT_INT_EQ(lvl, GW_LOG_WARN);
    ASSERT_INT_EQ(gw_log_level_parse("loud", &lvl), GW_EINVAL);
    ASSERT_INT_EQ(lvl, GW_LOG_WARN);
}

static void
test_strndup_and_hash(void)
{
    char *s = gw_xstrndup("abcdef", 3);

    ASSERT_STR_EQ(s, "abc");
    free(s);
    ASSERT_TRUE(gw_hash64("a", 1) != gw_hash64("b", 1));
    ASSERT_UINT_EQ(gw_hash64("", 0), 1469598103934665603ull);
}

static void
test_tokens(void)
{
    const char *s = "  allow\tany  x ", *tok;
    size_t len;

    ASSERT_TRUE(gw_next_token(&s, &tok, &len));
    ASSERT_MEM_STR(tok, len, "allow");
    ASSERT_TRUE(gw_next_token(&s, &tok, &len));
    ASSERT_MEM_STR(tok, len, "any");
    ASSERT_TRUE(gw_next_token(&s, &tok, &len));
    ASSERT_MEM_STR(tok, len, "x");
    ASSERT_TRUE(!gw_next_token(&s, &tok, &len));
}

static void
test_claim_cond(void)
{
    struct gw_claim_cond c;
    struct gw_buf err;

    gw_buf_init(&err);
    ASSERT_INT_EQ(gw_claim_cond_parse(&c, "custom:role=admin|super_admin", 29, &err), 0);
    ASSERT_STR_EQ(c.claim, "custom:role");
    ASSERT_TRUE(gw_claim_cond_holds(&c, "super_admin"));
    ASSERT_TRUE(!gw_claim_cond_holds(&c, "user"));
    ASSERT_TRUE(!gw_claim_cond_holds(&c, NULL));
    gw_claim_cond_release(&c);
    ASSERT_INT_EQ(gw_claim_cond_parse(&c, "sub=*", 5, &err), 0);
    ASSERT_TRUE(gw_claim_cond_holds(&c, "anyone"));
    ASSERT_TRUE(!gw_claim_cond_holds(&c, NULL));
    gw_claim_cond_release(&c);
    ASSERT_INT_EQ(gw_claim_cond_parse(&c, "role=a||b", 9, &err), GW_EPARSE);
    ASSERT_STR_EQ(err.data, "empty value in condition 'role=a||b'");
    ASSERT_NULL(c.claim);
    gw_buf_reset(&err);
    ASSERT_INT_EQ(gw_claim_cond_parse(&c, "role", 4, &err), GW_EPARSE);
    ASSERT_STR_EQ(err.data, "expected CLAIM=VALUE[|VALUE...], got 'role'");
    gw_buf_release(&err);
}

int
main(void)
{
    RUN(test_buf_append_and_printf);
    RUN(test_buf_steal);
    RUN(test_json_escape);
    RUN(test_bucket);
    RUN(test_window);
    RUN(test_strerror_and_levels);
    RUN(test_strndup_and_hash);
    RUN(test_tokens);
    RUN(test_claim_cond);
    return HARNESS_DONE();
}
