/*
 * test_codec.c: unit tests of the protocol codec (gateway/codec.h) with crafted frames:
 * text decoding of both versions with every error message, binary kind 3 decoding
 * (including the PROTOCOL.md example and every truncation), exact bytes of every encoder,
 * the bus form and its rendering for each client variant.
 */
#include "gateway/codec.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "harness.h"

/* A codec_str over a C string literal; NULL gives a null string. */
static struct codec_str
S(const char *s) {
    struct codec_str r = { s, s ? strlen(s) : 0 };

    return r;
}

static const struct codec_str NUL_STR = { NULL, 0 };

/* Builds a kind 3 frame into dst (big enough) and returns its length. */
static size_t
kind3(unsigned char *dst, const char *jr, const char *ref, const char *topic, const char *event,
      const char *meta, unsigned char enc, const void *payload, size_t plen)
{
    const char *f[5] = { jr, ref, topic, event, meta };
    size_t off = 7;

    dst[0] = 3;
    dst[6] = enc;
    for (size_t i = 0; i < 5; i++) {
        size_t n = strlen(f[i]);

        dst[1 + i] = (unsigned char)n;
        memcpy(dst + off, f[i], n);
        off += n;
    }
    memcpy(dst + off, payload, plen);
    return off + plen;
}

static void
test_v2_decode_ok(void)
{
    const char *f = "[\"6\",\"7\",\"realtime:room1\",\"phx_join\",{\"a\":1}]";
    struct codec_msg m;
    struct codec_error e;
    json_t *payload;

    ASSERT_INT_EQ(codec_decode_text(CODEC_V2, f, strlen(f), &m, &e), 0);
    ASSERT_MEM_STR(m.join_ref.p, m.join_ref.n, "6");
    ASSERT_MEM_STR(m.ref.p, m.ref.n, "7");
    ASSERT_MEM_STR(m.topic.p, m.topic.n, "realtime:room1");
    ASSERT_MEM_STR(m.event.p, m.event.n, "phx_join");
    ASSERT_TRUE(json_is_object(m.payload));
    ASSERT_INT_EQ(json_integer_value(json_object_get(m.payload, "a")), 1);
    ASSERT_NOT_NULL(m.json);
    ASSERT_TRUE(!m.is_broadcast);
    ASSERT_NULL(e.message);
    /* The message owns a reference: a caller taking its own keeps the payload alive. */
    payload = json_incref(m.payload);
    codec_msg_release(&m);
    ASSERT_NULL(m.json);
    ASSERT_NULL(m.payload);
    ASSERT_NULL(m.topic.p);
    ASSERT_UINT_EQ(payload->refcount, 1);
    ASSERT_INT_EQ(json_object_size(payload), 1);
    json_decref(payload);
}

static void
test_v2_null_refs_and_extra_elements(void)
{
    const char *f = "[null,null,\"t\",\"e\",{},\"extra\",[1,2]]";
    struct codec_msg m;
    struct codec_error e;

    ASSERT_INT_EQ(codec_decode_text(CODEC_V2, f, strlen(f), &m, &e), 0);
    ASSERT_NULL(m.join_ref.p);
    ASSERT_NULL(m.ref.p);
    ASSERT_MEM_STR(m.topic.p, m.topic.n, "t");
    ASSERT_MEM_STR(m.event.p, m.event.n, "e");
    ASSERT_INT_EQ(json_object_size(m.payload), 0);
    codec_msg_release(&m);
    /* A NULL err is allowed. */
    ASSERT_INT_EQ(codec_decode_text(CODEC_V2, f, strlen(f), &m, NULL), 0);
    codec_msg_release(&m);
}

struct text_case {
    const char *frame;   /* input */
    const char *message; /* expected err.message */
    const char *ref;     /* expected err.ref, NULL = null */
    const char *topic;   /* expected err.topic, NULL = null */
};

static void
check_text_error(enum codec_vsn vsn, const struct text_case *c)
{
    struct codec_msg m;
    struct codec_error e;

    ASSERT_INT_EQ(codec_decode_text(vsn, c->frame, strlen(c->frame), &m, &e), GW_EPARSE);
    ASSERT_STR_EQ(e.message, c->message);
    if (c->ref)
        ASSERT_MEM_STR(e.ref.p, e.ref.n, c->ref);
    else
        ASSERT_NULL(e.ref.p);
    if (c->topic)
        ASSERT_MEM_STR(e.topic.p, e.topic.n, c->topic);
    else
        ASSERT_NULL(e.topic.p);
    ASSERT_NULL(m.json);
    ASSERT_NULL(m.payload);
    ASSERT_NULL(m.topic.p);
    ASSERT_NULL(m.event.p);
    codec_msg_release(&m);
}

static void
test_v2_decode_errors(void)
{
    static const struct text_case cases[] = {
        { "", "invalid JSON", NULL, NULL },
        { "not json", "invalid JSON", NULL, NULL },
        { "[null,null,\"t\",\"e\",{}] x", "invalid JSON", NULL, NULL },
        { "[null,null,\"t\\u0000\",\"e\",{}]", "invalid JSON", NULL, NULL },
        { "[null,null,\"\xff\",\"e\",{}]", "invalid JSON", NULL, NULL },
        { "{\"topic\":\"t\"}", "frame is not a JSON array", NULL, NULL },
        { "\"str\"", "frame is not a JSON array", NULL, NULL },
        { "42", "frame is not a JSON array", NULL, NULL },
        { "[\"1\",\"2\",\"t\",\"e\"]", "frame has fewer than 5 elements", NULL, NULL },
        { "[]", "frame has fewer than 5 elements", NULL, NULL },
        { "[1,\"2\",\"t\",\"e\",{}]", "join_ref must be a string or null", "2", "t" },
        { "[{},\"2\",\"t\",\"e\",{}]", "join_ref must be a string or null", "2", "t" },
        { "[\"1\",2,\"t\",\"e\",{}]", "ref must be a string or null", NULL, "t" },
        { "[\"1\",true,\"t\",\"e\",{}]", "ref must be a string or null", NULL, "t" },
        { "[\"1\",\"2\",\"\",\"e\",{}]", "topic must be a non-empty string", "2", NULL },
        { "[\"1\",\"2\",5,\"e\",{}]", "topic must be a non-empty string", "2", NULL },
        { "[\"1\",\"2\",null,\"e\",{}]", "topic must be a non-empty string", "2", NULL },
        { "[\"1\",\"2\",\"t\",\"\",{}]", "event must be a non-empty string", "2", "t" },
        { "[\"1\",\"2\",\"t\",null,{}]", "event must be a non-empty string", "2", "t" },
        { "[\"1\",\"2\",\"t\",\"e\",[]]", "payload must be an object", "2", "t" },
        { "[\"1\",\"2\",\"t\",\"e\",null]", "payload must be an object", "2", "t" },
        { "[\"1\",\"2\",\"t\",\"e\",\"x\"]", "payload must be an object", "2", "t" },
        { "[null,\"\",\"t\",\"e\",1]", "payload must be an object", "", "t" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int before = harness_failures;

        check_text_error(CODEC_V2, &cases[i]);
        if (harness_failures != before) {
            fprintf(stderr, "  in case %zu: %s\n", i, cases[i].frame);
            return;
        }
    }
}

static void
test_error_ref_topic_too_long(void)
{
    struct gw_buf f;
    struct codec_msg m;
    struct codec_error e;
    char ref[101], topic[301];

    memset(ref, 'r', 100);
    ref[100] = '\0';
    memset(topic, 't', 300);
    topic[300] = '\0';
    gw_buf_init(&f);
    gw_buf_printf(&f, "[null,\"%s\",\"ok\",\"e\",[]]", ref);
    ASSERT_INT_EQ(codec_decode_text(CODEC_V2, f.data, f.len, &m, &e), GW_EPARSE);
    ASSERT_NULL(e.ref.p);
    ASSERT_MEM_STR(e.topic.p, e.topic.n, "ok");
    gw_buf_reset(&f);
    gw_buf_printf(&f, "[null,\"9\",\"%s\",\"e\",[]]", topic);
    ASSERT_INT_EQ(codec_decode_text(CODEC_V2, f.data, f.len, &m, &e), GW_EPARSE);
    ASSERT_MEM_STR(e.ref.p, e.ref.n, "9");
    ASSERT_NULL(e.topic.p);
    gw_buf_release(&f);
}

static void
test_v1_decode(void)
{
    const char *full = "{\"topic\":\"realtime:a\",\"event\":\"phx_join\",\"payload\":{\"k\":true},"
                       "\"ref\":\"3\",\"join_ref\":\"3\"}";
    const char *bare = "{\"event\":\"heartbeat\",\"topic\":\"phoenix\"}";
    const char *nulls = "{\"topic\":\"t\",\"event\":\"e\",\"payload\":{},\"ref\":null,"
                        "\"join_ref\":null}";
    struct codec_msg m;
    struct codec_error e;

    ASSERT_INT_EQ(codec_decode_text(CODEC_V1, full, strlen(full), &m, &e), 0);
    ASSERT_MEM_STR(m.topic.p, m.topic.n, "realtime:a");
    ASSERT_MEM_STR(m.event.p, m.event.n, "phx_join");
    ASSERT_MEM_STR(m.ref.p, m.ref.n, "3");
    ASSERT_MEM_STR(m.join_ref.p, m.join_ref.n, "3");
    ASSERT_TRUE(json_is_true(json_object_get(m.payload, "k")));
    codec_msg_release(&m);

    ASSERT_INT_EQ(codec_decode_text(CODEC_V1, bare, strlen(bare), &m, &e), 0);
    ASSERT_MEM_STR(m.topic.p, m.topic.n, "phoenix");
    ASSERT_NULL(m.ref.p);
    ASSERT_NULL(m.join_ref.p);
    ASSERT_TRUE(json_is_object(m.payload));
    ASSERT_INT_EQ(json_object_size(m.payload), 0);
    codec_msg_release(&m);

    ASSERT_INT_EQ(codec_decode_text(CODEC_V1, nulls, strlen(nulls), &m, &e), 0);
    ASSERT_NULL(m.ref.p);
    ASSERT_NULL(m.join_ref.p);
    codec_msg_release(&m);
}

static void
test_v1_decode_errors(void)
{
    static const struct text_case cases[] = {
        { "{", "invalid JSON", NULL, NULL },
        { "[null,null,\"t\",\"e\",{}]", "frame is not a JSON object", NULL, NULL },
        { "{\"event\":\"e\",\"ref\":\"1\"}", "topic must be a non-empty string", "1", NULL },
        { "{\"topic\":\"\",\"event\":\"e\"}", "topic must be a non-empty string", NULL, NULL },
        { "{\"topic\":\"t\",\"ref\":\"1\"}", "event must be a non-empty string", "1", "t" },
        { "{\"topic\":\"t\",\"event\":7}", "event must be a non-empty string", NULL, "t" },
        { "{\"topic\":\"t\",\"event\":\"e\",\"payload\":[]}", "payload must be an object", NULL,
          "t" },
        { "{\"topic\":\"t\",\"event\":\"e\",\"payload\":null}", "payload must be an object", NULL,
          "t" },
        { "{\"topic\":\"t\",\"event\":\"e\",\"ref\":5}", "ref must be a string or null", NULL,
          "t" },
        { "{\"topic\":\"t\",\"event\":\"e\",\"join_ref\":true,\"ref\":\"4\"}",
          "join_ref must be a string or null", "4", "t" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int before = harness_failures;

        check_text_error(CODEC_V1, &cases[i]);
        if (harness_failures != before) {
            fprintf(stderr, "  in case %zu: %s\n", i, cases[i].frame);
            return;
        }
    }
}

static void
test_unicode_and_escapes_round_trip(void)
{
    const char *in = "[null,\"1\",\"realtime:caf\\u00e9 \xe2\x82\xac\",\"a\\\"b\\\\c\\n\\t\\/"
                     "\\ud83d\\ude00\",{\"x\":\"\\u00e9\"}]";
    const char *want = "[null,\"1\",\"realtime:caf\xc3\xa9 \xe2\x82\xac\",\"a\\\"b\\\\c\\n\\t/"
                       "\xf0\x9f\x98\x80\",{}]";
    struct codec_msg m, m2;
    struct codec_error e;
    struct gw_buf out;

    gw_buf_init(&out);
    ASSERT_INT_EQ(codec_decode_text(CODEC_V2, in, strlen(in), &m, &e), 0);
    ASSERT_MEM_STR(m.topic.p, m.topic.n, "realtime:caf\xc3\xa9 \xe2\x82\xac");
    ASSERT_MEM_STR(m.event.p, m.event.n, "a\"b\\c\n\t/\xf0\x9f\x98\x80");
    ASSERT_STR_EQ(json_string_value(json_object_get(m.payload, "x")), "\xc3\xa9");
    codec_encode_text(&out, CODEC_V2, m.join_ref, m.ref, m.topic, m.event, NUL_STR);
    ASSERT_MEM_STR(out.data, out.len, want);
    ASSERT_INT_EQ(codec_decode_text(CODEC_V2, out.data, out.len, &m2, &e), 0);
    ASSERT_TRUE(m2.event.n == m.event.n && memcmp(m2.event.p, m.event.p, m.event.n) == 0);
    ASSERT_TRUE(m2.topic.n == m.topic.n && memcmp(m2.topic.p, m.topic.p, m.topic.n) == 0);
    ASSERT_NULL(m2.join_ref.p);
    codec_msg_release(&m2);
    codec_msg_release(&m);
    gw_buf_release(&out);
}

static void
test_encode_control_characters(void)
{
    struct codec_str topic = { "a\x01z\x1f\r\x7f", 6 };
    struct codec_str event = { "n\0l", 3 };
    struct codec_msg m;
    struct gw_buf out;

    gw_buf_init(&out);
    codec_encode_text(&out, CODEC_V2, NUL_STR, NUL_STR, topic, event, S("{}"));
    ASSERT_MEM_STR(out.data, out.len, "[null,null,\"a\\u0001z\\u001f\\r\x7f\",\"n\\u0000l\",{}]");
    /* The escaped topic is valid JSON again (the event with NUL is refused by design). */
    gw_buf_reset(&out);
    codec_encode_text(&out, CODEC_V2, NUL_STR, NUL_STR, topic, S("e"), S("{}"));
    ASSERT_INT_EQ(codec_decode_text(CODEC_V2, out.data, out.len, &m, NULL), 0);
    ASSERT_TRUE(m.topic.n == 6 && memcmp(m.topic.p, topic.p, 6) == 0);
    codec_msg_release(&m);
    gw_buf_release(&out);
}

static void
test_encode_text_and_reply(void)
{
    struct gw_buf out;

    gw_buf_init(&out);
    codec_encode_reply(&out, CODEC_V2, S("6"), S("6"), S("realtime:room1"), "ok",
                       S("{\"postgres_changes\":[]}"));
    ASSERT_MEM_STR(out.data, out.len,
                   "[\"6\",\"6\",\"realtime:room1\",\"phx_reply\",{\"status\":\"ok\","
                   "\"response\":{\"postgres_changes\":[]}}]");
    gw_buf_reset(&out);
    codec_encode_reply(&out, CODEC_V2, NUL_STR, S("9"), S("realtime:x"), "error", NUL_STR);
    ASSERT_MEM_STR(out.data, out.len,
                   "[null,\"9\",\"realtime:x\",\"phx_reply\",{\"status\":\"error\","
                   "\"response\":{}}]");
    gw_buf_reset(&out);
    codec_encode_reply(&out, CODEC_V1, S("6"), S("7"), S("t"), "ok", S("{\"a\":1}"));
    ASSERT_MEM_STR(out.data, out.len,
                   "{\"topic\":\"t\",\"event\":\"phx_reply\",\"payload\":{\"status\":\"ok\","
                   "\"response\":{\"a\":1}},\"ref\":\"7\",\"join_ref\":\"6\"}");
    gw_buf_reset(&out);
    codec_encode_text(&out, CODEC_V2, NUL_STR, NUL_STR, S("t"), S("phx_close"), NUL_STR);
    ASSERT_MEM_STR(out.data, out.len, "[null,null,\"t\",\"phx_close\",{}]");
    /* Appends: the second frame follows the first. */
    codec_encode_text(&out, CODEC_V2, S("1"), NUL_STR, S("t"), S("e"), S("{\"b\":[]}"));
    ASSERT_MEM_STR(out.data, out.len,
                   "[null,null,\"t\",\"phx_close\",{}][\"1\",null,\"t\",\"e\",{\"b\":[]}]");
    gw_buf_release(&out);
}

static void
test_encode_v1_all_keys_in_order(void)
{
    struct gw_buf out;
    struct codec_msg m;

    gw_buf_init(&out);
    codec_encode_text(&out, CODEC_V1, NUL_STR, NUL_STR, S("realtime:a"), S("system"), NUL_STR);
    ASSERT_MEM_STR(out.data, out.len,
                   "{\"topic\":\"realtime:a\",\"event\":\"system\",\"payload\":{},\"ref\":null,"
                   "\"join_ref\":null}");
    gw_buf_reset(&out);
    codec_encode_text(&out, CODEC_V1, S("1"), S("2"), S("t"), S("e"), S("{\"a\":1}"));
    ASSERT_MEM_STR(out.data, out.len,
                   "{\"topic\":\"t\",\"event\":\"e\",\"payload\":{\"a\":1},\"ref\":\"2\","
                   "\"join_ref\":\"1\"}");
    ASSERT_INT_EQ(codec_decode_text(CODEC_V1, out.data, out.len, &m, NULL), 0);
    ASSERT_MEM_STR(m.join_ref.p, m.join_ref.n, "1");
    ASSERT_MEM_STR(m.ref.p, m.ref.n, "2");
    codec_msg_release(&m);
    gw_buf_release(&out);
}

static void
test_encode_broadcast_payload(void)
{
    struct gw_buf out;

    gw_buf_init(&out);
    codec_encode_broadcast_payload(&out, S("cursor"), S("{\"x\":1}"), NUL_STR);
    ASSERT_MEM_STR(out.data, out.len,
                   "{\"type\":\"broadcast\",\"event\":\"cursor\",\"payload\":{\"x\":1}}");
    gw_buf_reset(&out);
    codec_encode_broadcast_payload(&out, S("INSERT"), S("[1,\"a\"]"), S("{\"id\":\"u-1\"}"));
    ASSERT_MEM_STR(out.data, out.len,
                   "{\"type\":\"broadcast\",\"event\":\"INSERT\",\"payload\":[1,\"a\"],"
                   "\"meta\":{\"id\":\"u-1\"}}");
    gw_buf_reset(&out);
    codec_encode_broadcast_payload(&out, S("e\"q"), S("5"), S(""));
    ASSERT_MEM_STR(out.data, out.len,
                   "{\"type\":\"broadcast\",\"event\":\"e\\\"q\",\"payload\":5}");
    gw_buf_release(&out);
}

/* The tested example of PROTOCOL.md 1.3. */
static const unsigned char EXAMPLE[] = "\x03\x01\x01\x0e\x06\x02\x01"
                                       "67realtime:room1cursor{}{\"x\":\"\xc3\xa9\"}";

static void
test_kind3_example(void)
{
    size_t len = sizeof(EXAMPLE) - 1;
    struct codec_msg m;
    struct codec_error e;

    ASSERT_INT_EQ(len, 7 + 1 + 1 + 14 + 6 + 2 + 10);
    ASSERT_INT_EQ(codec_decode_binary(EXAMPLE, len, &m, &e), 0);
    ASSERT_MEM_STR(m.join_ref.p, m.join_ref.n, "6");
    ASSERT_MEM_STR(m.ref.p, m.ref.n, "7");
    ASSERT_MEM_STR(m.topic.p, m.topic.n, "realtime:room1");
    ASSERT_MEM_STR(m.event.p, m.event.n, "broadcast");
    ASSERT_TRUE(m.is_broadcast);
    ASSERT_MEM_STR(m.bc_event.p, m.bc_event.n, "cursor");
    ASSERT_MEM_STR(m.bc_meta.p, m.bc_meta.n, "{}");
    ASSERT_TRUE(m.bc_json);
    ASSERT_MEM_STR(m.bc_payload, m.bc_payload_len, "{\"x\":\"\xc3\xa9\"}");
    ASSERT_TRUE(m.bc_payload == EXAMPLE + len - 10);
    ASSERT_NULL(m.payload);
    ASSERT_NULL(m.json);
    codec_msg_release(&m);
}

static void
test_kind3_raw_payload(void)
{
    static const unsigned char raw[] = { 0x00, 0xff, 0x00, 0x7b, 0x01 };
    unsigned char f[128];
    size_t len = kind3(f, "", "12", "realtime:bin", "blob", "", 0, raw, sizeof(raw));
    struct codec_msg m;

    ASSERT_INT_EQ(codec_decode_binary(f, len, &m, NULL), 0);
    ASSERT_NULL(m.join_ref.p);
    ASSERT_MEM_STR(m.ref.p, m.ref.n, "12");
    ASSERT_MEM_STR(m.bc_event.p, m.bc_event.n, "blob");
    ASSERT_INT_EQ(m.bc_meta.n, 0);
    ASSERT_TRUE(!m.bc_json);
    ASSERT_INT_EQ(m.bc_payload_len, sizeof(raw));
    ASSERT_TRUE(memcmp(m.bc_payload, raw, sizeof(raw)) == 0);
    codec_msg_release(&m);
    /* An empty raw payload and an empty ref are fine too. */
    len = kind3(f, "1", "", "t", "e", "", 0, "", 0);
    ASSERT_INT_EQ(codec_decode_binary(f, len, &m, NULL), 0);
    ASSERT_NULL(m.ref.p);
    ASSERT_MEM_STR(m.join_ref.p, m.join_ref.n, "1");
    ASSERT_INT_EQ(m.bc_payload_len, 0);
    codec_msg_release(&m);
    /* Any JSON value is a valid encoding 1 payload. */
    len = kind3(f, "1", "2", "t", "e", "{\"persist\":true}", 1, "\"s\"", 3);
    ASSERT_INT_EQ(codec_decode_binary(f, len, &m, NULL), 0);
    ASSERT_MEM_STR(m.bc_meta.p, m.bc_meta.n, "{\"persist\":true}");
    ASSERT_MEM_STR(m.bc_payload, m.bc_payload_len, "\"s\"");
    codec_msg_release(&m);
}

static void
test_kind3_truncations(void)
{
    size_t len = sizeof(EXAMPLE) - 1, body = len - 10;

    for (size_t n = 0; n < len; n++) {
        unsigned char *copy = gw_xmalloc(n ? n : 1); /* exact size, so ASan sees overreads */
        struct codec_msg m;
        struct codec_error e;
        const char *want = n == 0     ? "empty binary frame"
                           : n < body ? "binary frame lengths exceed the frame"
                                      : "payload is not valid JSON";

        memcpy(copy, EXAMPLE, n);
        ASSERT_INT_EQ(codec_decode_binary(copy, n, &m, &e), GW_EPARSE);
        free(copy);
        ASSERT_STR_EQ(e.message, want);
        ASSERT_NULL(m.topic.p);
        ASSERT_NULL(m.bc_payload);
        ASSERT_TRUE(!m.is_broadcast);
    }
}

struct bin_case {
    const char *jr, *ref, *topic, *event, *meta; /* fields */
    unsigned char enc;                           /* encoding byte */
    const char *payload;                         /* payload */
    const char *message;                         /* expected err.message */
};

static void
test_kind3_errors(void)
{
    static const struct bin_case cases[] = {
        { "1", "2", "t", "e", "", 2, "{}", "unsupported binary payload encoding" },
        { "1", "2", "", "e", "", 1, "{}", "topic must be a non-empty string" },
        { "1", "2", "t", "", "", 1, "{}", "broadcast event must be a non-empty string" },
        { "1", "2", "t", "e", "[]", 1, "{}", "meta must be empty or a JSON object" },
        { "1", "2", "t", "e", "{", 1, "{}", "meta must be empty or a JSON object" },
        { "1", "2", "t", "e", "3", 1, "{}", "meta must be empty or a JSON object" },
        { "1", "2", "t", "e", "", 1, "{", "payload is not valid JSON" },
        { "1", "2", "t", "e", "", 1, "", "payload is not valid JSON" },
        { "1", "2", "t", "e", "", 1, "{} {}", "payload is not valid JSON" },
        { "1", "2", "t\xff", "e", "", 1, "{}", "binary frame strings must be UTF-8 without NUL" },
        { "1", "2", "t", "\xc0\x80", "", 1, "{}",
          "binary frame strings must be UTF-8 without NUL" },
        { "1", "2", "t", "\xed\xa0\x80", "", 1, "{}",
          "binary frame strings must be UTF-8 without NUL" },
        { "\xe2\x82", "2", "t", "e", "", 1, "{}",
          "binary frame strings must be UTF-8 without NUL" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bin_case *c = &cases[i];
        unsigned char f[128];
        size_t len = kind3(f, c->jr, c->ref, c->topic, c->event, c->meta, c->enc, c->payload,
                           strlen(c->payload));
        struct codec_msg m;
        struct codec_error e;

        ASSERT_INT_EQ(codec_decode_binary(f, len, &m, &e), GW_EPARSE);
        if (strcmp(e.message, c->message) != 0) {
            fprintf(stderr, "  case %zu\n", i);
            ASSERT_STR_EQ(e.message, c->message);
        }
        ASSERT_MEM_STR(e.ref.p, e.ref.n, "2");
        ASSERT_NULL(m.topic.p);
        if (c->topic[0] == 't' && c->topic[1] == '\0')
            ASSERT_MEM_STR(e.topic.p, e.topic.n, "t");
        else
            ASSERT_NULL(e.topic.p);
    }
}

static void
test_kind3_nul_and_kinds(void)
{
    unsigned char f[64];
    size_t len = kind3(f, "1", "2", "t", "eXv", "", 1, "{}", 2);
    struct codec_msg m;
    struct codec_error e;

    static const struct {
        unsigned char kind;
        const char *message;
    } kinds[] = {
        { 0, "unsupported binary frame kind 0" }, { 1, "unsupported binary frame kind 1" },
        { 2, "unsupported binary frame kind 2" }, { 4, "unsupported binary frame kind 4" },
        { 9, "unsupported binary frame kind" },
    };

    f[7 + 1 + 1 + 1 + 1] = '\0'; /* the X of the event */
    ASSERT_INT_EQ(codec_decode_binary(f, len, &m, &e), GW_EPARSE);
    ASSERT_STR_EQ(e.message, "binary frame strings must be UTF-8 without NUL");
    f[7 + 1 + 1 + 1 + 1] = 'X';
    ASSERT_INT_EQ(codec_decode_binary(f, len, &m, &e), 0);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        f[0] = kinds[i].kind;
        ASSERT_INT_EQ(codec_decode_binary(f, len, &m, &e), GW_EPARSE);
        ASSERT_STR_EQ(e.message, kinds[i].message);
        ASSERT_NULL(e.ref.p);
    }
    /* A single kind byte with a wrong kind reports the kind, not the length. */
    ASSERT_INT_EQ(codec_decode_binary(f, 1, &m, &e), GW_EPARSE);
    ASSERT_STR_EQ(e.message, "unsupported binary frame kind");
}

static void
test_broadcast_from_json(void)
{
    const char *f = "[\"6\",\"7\",\"realtime:room1\",\"broadcast\",{\"type\":\"broadcast\","
                    "\"event\":\"cursor\",\"payload\":{\"x\": 1, \"y\": [1, 2]}}]";
    const char *absent =
        "[\"6\",\"7\",\"t\",\"broadcast\",{\"type\":\"broadcast\",\"event\":\"e\"}]";
    const char *scalar =
        "[null,null,\"t\",\"broadcast\",{\"event\":\"e\",\"payload\":\"h\\u00e9\"}]";
    struct gw_buf scratch;
    struct codec_msg m;

    gw_buf_init(&scratch);
    gw_buf_append_str(&scratch, "junk that must go");
    ASSERT_INT_EQ(codec_decode_text(CODEC_V2, f, strlen(f), &m, NULL), 0);
    ASSERT_INT_EQ(codec_broadcast_from_json(&m, &scratch), 0);
    ASSERT_TRUE(m.is_broadcast);
    ASSERT_TRUE(m.bc_json);
    ASSERT_MEM_STR(m.bc_event.p, m.bc_event.n, "cursor");
    ASSERT_INT_EQ(m.bc_meta.n, 0);
    ASSERT_MEM_STR(m.bc_payload, m.bc_payload_len, "{\"x\":1,\"y\":[1,2]}");
    ASSERT_TRUE((const char *)m.bc_payload == scratch.data);
    codec_msg_release(&m);

    ASSERT_INT_EQ(codec_decode_text(CODEC_V2, absent, strlen(absent), &m, NULL), 0);
    ASSERT_INT_EQ(codec_broadcast_from_json(&m, &scratch), 0);
    ASSERT_MEM_STR(m.bc_payload, m.bc_payload_len, "{}");
    codec_msg_release(&m);

    ASSERT_INT_EQ(codec_decode_text(CODEC_V2, scalar, strlen(scalar), &m, NULL), 0);
    ASSERT_INT_EQ(codec_broadcast_from_json(&m, &scratch), 0);
    ASSERT_MEM_STR(m.bc_payload, m.bc_payload_len, "\"h\xc3\xa9\"");
    codec_msg_release(&m);
    gw_buf_release(&scratch);
}

static void
test_broadcast_from_json_errors(void)
{
    static const char *const frames[] = {
        "[null,null,\"t\",\"broadcast\",{\"type\":\"broadcast\",\"payload\":{}}]",
        "[null,null,\"t\",\"broadcast\",{\"event\":5,\"payload\":{}}]",
        "[null,null,\"t\",\"broadcast\",{\"event\":\"\",\"payload\":{}}]",
        "[null,null,\"t\",\"broadcast\",{\"event\":null}]",
    };
    struct gw_buf scratch;
    struct codec_msg m;

    gw_buf_init(&scratch);
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        ASSERT_INT_EQ(codec_decode_text(CODEC_V2, frames[i], strlen(frames[i]), &m, NULL), 0);
        ASSERT_INT_EQ(codec_broadcast_from_json(&m, &scratch), GW_EPARSE);
        ASSERT_TRUE(!m.is_broadcast);
        codec_msg_release(&m);
    }
    /* A released (zeroed) message has no payload to read. */
    ASSERT_INT_EQ(codec_broadcast_from_json(&m, &scratch), GW_EPARSE);
    gw_buf_release(&scratch);
}

static void
test_kind4_exact_bytes(void)
{
    static const unsigned char want[] = "\x04\x0e\x06\x0a\x01"
                                        "realtime:room1cursor{\"id\":\"u\"}{\"x\":1}";
    static const unsigned char raw[] = { 0x00, 0x01, 0x00 };
    static const unsigned char want_raw[] = { 4, 1, 1, 0, 0, 't', 'e', 0x00, 0x01, 0x00 };
    struct gw_buf out;

    gw_buf_init(&out);
    ASSERT_INT_EQ(codec_encode_kind4(&out, S("realtime:room1"), S("cursor"), S("{\"id\":\"u\"}"),
                                     true, "{\"x\":1}", 7),
                  0);
    ASSERT_INT_EQ(out.len, sizeof(want) - 1);
    ASSERT_TRUE(memcmp(out.data, want, out.len) == 0);
    gw_buf_reset(&out);
    ASSERT_INT_EQ(codec_encode_kind4(&out, S("t"), S("e"), NUL_STR, false, raw, sizeof(raw)), 0);
    ASSERT_INT_EQ(out.len, sizeof(want_raw));
    ASSERT_TRUE(memcmp(out.data, want_raw, out.len) == 0);
    gw_buf_release(&out);
}

static void
test_kind4_limits(void)
{
    char big[257];
    struct codec_str at = { big, 255 }, over = { big, 256 };
    struct gw_buf out;

    memset(big, 'a', sizeof(big));
    gw_buf_init(&out);
    gw_buf_append_str(&out, "pre");
    ASSERT_INT_EQ(codec_encode_kind4(&out, over, S("e"), NUL_STR, true, "1", 1), GW_ELIMIT);
    ASSERT_INT_EQ(codec_encode_kind4(&out, S("t"), over, NUL_STR, true, "1", 1), GW_ELIMIT);
    ASSERT_INT_EQ(codec_encode_kind4(&out, S("t"), S("e"), over, true, "1", 1), GW_ELIMIT);
    ASSERT_MEM_STR(out.data, out.len, "pre");
    ASSERT_INT_EQ(codec_encode_kind4(&out, at, at, at, true, "1", 1), 0);
    ASSERT_INT_EQ(out.len, 3 + 5 + 3 * 255 + 1);
    ASSERT_INT_EQ((unsigned char)out.data[4], 255);
    ASSERT_INT_EQ((unsigned char)out.data[5], 255);
    ASSERT_INT_EQ((unsigned char)out.data[6], 255);
    gw_buf_release(&out);
}

static void
bus_equal(const struct codec_bus *a, const struct codec_bus *b)
{
    ASSERT_INT_EQ(a->kind, b->kind);
    ASSERT_TRUE(a->topic.n == b->topic.n && memcmp(a->topic.p, b->topic.p, a->topic.n) == 0);
    ASSERT_TRUE(a->event.n == b->event.n && memcmp(a->event.p, b->event.p, a->event.n) == 0);
    ASSERT_INT_EQ(a->meta.n, b->meta.n);
    if (a->meta.n)
        ASSERT_TRUE(memcmp(a->meta.p, b->meta.p, a->meta.n) == 0);
    ASSERT_INT_EQ(a->json, b->json);
    ASSERT_INT_EQ(a->payload_len, b->payload_len);
    if (a->payload_len)
        ASSERT_TRUE(memcmp(a->payload, b->payload, a->payload_len) == 0);
}

static void
test_bus_round_trip(void)
{
    static const unsigned char raw[] = { 0, 1, 2, 0, 255 };
    const struct codec_bus cases[] = {
        { CODEC_BUS_BROADCAST, S("realtime:room1"), S("cursor"), S("{\"id\":\"x\"}"), true,
          "{\"x\":1}", 7 },
        { CODEC_BUS_BROADCAST, S("realtime:b"), S("blob"), NUL_STR, false, raw, sizeof(raw) },
        { CODEC_BUS_PUSH, S("realtime:p"), S("presence_diff"), NUL_STR, true,
          "{\"joins\":{},\"leaves\":{}}", 24 },
        { CODEC_BUS_BROADCAST, S("t"), S("e"), NUL_STR, false, "", 0 },
    };
    struct gw_buf out;

    gw_buf_init(&out);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct codec_bus b;
        int before = harness_failures;

        gw_buf_reset(&out);
        codec_bus_encode(&out, &cases[i]);
        ASSERT_INT_EQ(out.len, 16 + cases[i].topic.n + cases[i].event.n + cases[i].meta.n +
                                   cases[i].payload_len);
        ASSERT_INT_EQ(codec_bus_decode(out.data, out.len, &b), 0);
        bus_equal(&cases[i], &b);
        if (harness_failures != before) {
            fprintf(stderr, "  in case %zu\n", i);
            break;
        }
    }
    gw_buf_release(&out);
}

static void
test_bus_header_layout(void)
{
    const struct codec_bus b = { CODEC_BUS_BROADCAST, S("tt"), S("eee"), S("{}"), true, "1", 1 };
    static const unsigned char want[] = "\xb1\x01\x01\x00"
                                        "\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x02"
                                        "tteee{}1";
    struct gw_buf out;

    gw_buf_init(&out);
    codec_bus_encode(&out, &b);
    ASSERT_INT_EQ(out.len, sizeof(want) - 1);
    ASSERT_TRUE(memcmp(out.data, want, out.len) == 0);
    gw_buf_release(&out);
}

static void
test_bus_decode_errors(void)
{
    const struct codec_bus b = {
        CODEC_BUS_BROADCAST, S("realtime:x"), S("ev"), S("{\"a\":1}"), true, "{}", 2
    };
    struct codec_bus d;
    struct gw_buf out;
    size_t payload_at;

    /* Header byte offset and a bad value for it. */
    static const struct {
        size_t off;
        unsigned char value;
    } pokes[] = { { 0, 0xb2 }, { 1, 0 },  { 1, 3 },    { 2, 0x02 },  { 3, 1 },
                  { 7, 0 },    { 11, 0 }, { 4, 0xff }, { 12, 0xff }, { 15, 0x40 } };

    gw_buf_init(&out);
    codec_bus_encode(&out, &b);
    payload_at = out.len - 2;
    /* Every prefix that cuts the header, topic, event or meta fails; the payload is free. */
    for (size_t n = 0; n < out.len; n++) {
        unsigned char *copy = gw_xmalloc(n ? n : 1);

        memcpy(copy, out.data, n);
        ASSERT_INT_EQ(codec_bus_decode(copy, n, &d), n < payload_at ? GW_EPARSE : 0);
        free(copy);
    }
    for (size_t i = 0; i < sizeof(pokes) / sizeof(pokes[0]); i++) {
        unsigned char saved = (unsigned char)out.data[pokes[i].off];

        out.data[pokes[i].off] = (char)pokes[i].value;
        ASSERT_INT_EQ(codec_bus_decode(out.data, out.len, &d), GW_EPARSE);
        out.data[pokes[i].off] = (char)saved;
    }
    ASSERT_INT_EQ(codec_bus_decode(out.data, out.len, &d), 0);
    gw_buf_release(&out);
}

static void
test_bus_variant(void)
{
    const struct codec_bus json_bc = {
        CODEC_BUS_BROADCAST, S("t"), S("e"), NUL_STR, true, "{}", 2
    };
    const struct codec_bus raw_bc = { CODEC_BUS_BROADCAST, S("t"), S("e"), NUL_STR, false, "x", 1 };
    const struct codec_bus push = { CODEC_BUS_PUSH, S("t"), S("e"), NUL_STR, true, "{}", 2 };

    ASSERT_INT_EQ(codec_bus_variant(&json_bc, CODEC_V2), CODEC_VAR_V2_TEXT);
    ASSERT_INT_EQ(codec_bus_variant(&raw_bc, CODEC_V2), CODEC_VAR_V2_BIN);
    ASSERT_INT_EQ(codec_bus_variant(&push, CODEC_V2), CODEC_VAR_V2_TEXT);
    ASSERT_INT_EQ(codec_bus_variant(&json_bc, CODEC_V1), CODEC_VAR_V1_TEXT);
    ASSERT_INT_EQ(codec_bus_variant(&raw_bc, CODEC_V1), CODEC_VAR_V1_TEXT);
    ASSERT_INT_EQ(codec_bus_variant(&push, CODEC_V1), CODEC_VAR_V1_TEXT);
}

struct render_case {
    const struct codec_bus *bus; /* message */
    enum codec_variant v;        /* variant */
    int rc;                      /* expected return */
    bool binary;                 /* expected binary flag */
    const char *bytes;           /* expected output (may contain no NUL) */
    size_t n;                    /* its length */
};

static void
check_render(const struct render_case *c, size_t i)
{
    struct gw_buf out;
    bool binary = !c->binary, ok;

    gw_buf_init(&out);
    gw_buf_append_str(&out, "<");
    ASSERT_INT_EQ(codec_bus_render(&out, c->bus, c->v, &binary), c->rc);
    ASSERT_INT_EQ(binary, c->binary);
    ok = out.len == c->n + 1 && memcmp(out.data + 1, c->bytes, c->n) == 0;
    if (!ok)
        fprintf(stderr, "render case %zu: got \"%.*s\"\n", i, (int)out.len, out.data);
    gw_buf_release(&out);
    ASSERT_TRUE(ok);
}

#define R(bus, v, rc, bin, lit)               \
    {                                         \
        bus, v, rc, bin, lit, sizeof(lit) - 1 \
    }

static void
test_render_every_kind_and_variant(void)
{
    const struct codec_bus bc = { CODEC_BUS_BROADCAST,
                                  S("realtime:room1"),
                                  S("cursor"),
                                  S("{\"id\":\"a\"}"),
                                  true,
                                  "{\"x\":1}",
                                  7 };
    const struct codec_bus bc_nometa = {
        CODEC_BUS_BROADCAST, S("realtime:r"), S("e"), NUL_STR, true, "[1]", 3
    };
    const struct codec_bus raw = {
        CODEC_BUS_BROADCAST, S("realtime:r"), S("b"), NUL_STR, false, "\x00\x01", 2
    };
    const struct codec_bus push = { CODEC_BUS_PUSH,
                                    S("realtime:room1"),
                                    S("presence_diff"),
                                    NUL_STR,
                                    true,
                                    "{\"joins\":{},\"leaves\":{}}",
                                    24 };
    const struct render_case cases[] = {
        R(&bc, CODEC_VAR_V2_TEXT, 0, false,
          "[null,null,\"realtime:room1\",\"broadcast\",{\"type\":\"broadcast\",\"event\":"
          "\"cursor\",\"payload\":{\"x\":1},\"meta\":{\"id\":\"a\"}}]"),
        R(&bc, CODEC_VAR_V1_TEXT, 0, false,
          "{\"topic\":\"realtime:room1\",\"event\":\"broadcast\",\"payload\":{\"type\":"
          "\"broadcast\",\"event\":\"cursor\",\"payload\":{\"x\":1},\"meta\":{\"id\":\"a\"}},"
          "\"ref\":null,\"join_ref\":null}"),
        R(&bc, CODEC_VAR_V2_BIN, 0, true,
          "\x04\x0e\x06\x0a\x01realtime:room1cursor{\"id\":\"a\"}{\"x\":1}"),
        R(&bc_nometa, CODEC_VAR_V2_TEXT, 0, false,
          "[null,null,\"realtime:r\",\"broadcast\",{\"type\":\"broadcast\",\"event\":\"e\","
          "\"payload\":[1]}]"),
        R(&raw, CODEC_VAR_V2_BIN, 0, true, "\x04\x0a\x01\x00\x00realtime:rb\x00\x01"),
        R(&raw, CODEC_VAR_V2_TEXT, GW_ENOTFOUND, false, ""),
        R(&raw, CODEC_VAR_V1_TEXT, GW_ENOTFOUND, false, ""),
        R(&push, CODEC_VAR_V2_TEXT, 0, false,
          "[null,null,\"realtime:room1\",\"presence_diff\",{\"joins\":{},\"leaves\":{}}]"),
        R(&push, CODEC_VAR_V1_TEXT, 0, false,
          "{\"topic\":\"realtime:room1\",\"event\":\"presence_diff\",\"payload\":{\"joins\":{},"
          "\"leaves\":{}},\"ref\":null,\"join_ref\":null}"),
        R(&push, CODEC_VAR_V2_BIN, GW_ENOTFOUND, false, ""),
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_render(&cases[i], i);
}

static void
test_render_limit(void)
{
    char big[300];
    struct codec_bus bc = {
        CODEC_BUS_BROADCAST, { big, sizeof(big) }, S("e"), NUL_STR, false, "x", 1
    };
    struct gw_buf out;
    bool binary = true;

    memset(big, 'a', sizeof(big));
    gw_buf_init(&out);
    ASSERT_INT_EQ(codec_bus_render(&out, &bc, CODEC_VAR_V2_BIN, &binary), GW_ELIMIT);
    ASSERT_TRUE(!binary);
    ASSERT_INT_EQ(out.len, 0);
    gw_buf_release(&out);
}

/* The inbound kind 3 example, carried on the bus and rendered to a vsn 2 text client. */
static void
test_kind3_to_bus_to_text(void)
{
    struct codec_msg m;
    struct codec_bus b = { 0 }, d;
    struct gw_buf bus, out;
    bool binary;

    gw_buf_init(&bus);
    gw_buf_init(&out);
    ASSERT_INT_EQ(codec_decode_binary(EXAMPLE, sizeof(EXAMPLE) - 1, &m, NULL), 0);
    b.kind = CODEC_BUS_BROADCAST;
    b.topic = m.topic;
    b.event = m.bc_event;
    b.meta = m.bc_meta;
    b.json = m.bc_json;
    b.payload = m.bc_payload;
    b.payload_len = m.bc_payload_len;
    codec_bus_encode(&bus, &b);
    ASSERT_INT_EQ(codec_bus_decode(bus.data, bus.len, &d), 0);
    ASSERT_INT_EQ(codec_bus_variant(&d, CODEC_V2), CODEC_VAR_V2_TEXT);
    ASSERT_INT_EQ(codec_bus_render(&out, &d, CODEC_VAR_V2_TEXT, &binary), 0);
    ASSERT_MEM_STR(out.data, out.len,
                   "[null,null,\"realtime:room1\",\"broadcast\",{\"type\":\"broadcast\","
                   "\"event\":\"cursor\",\"payload\":{\"x\":\"\xc3\xa9\"},\"meta\":{}}]");
    codec_msg_release(&m);
    gw_buf_release(&bus);
    gw_buf_release(&out);
}

static void
test_release_accepts_null_and_zeroed(void)
{
    struct codec_msg m;

    memset(&m, 0, sizeof(m));
    codec_msg_release(NULL);
    codec_msg_release(&m);
    codec_msg_release(&m);
    ASSERT_NULL(m.json);
}

int
main(void)
{
    RUN(test_v2_decode_ok);
    RUN(test_v2_null_refs_and_extra_elements);
    RUN(test_v2_decode_errors);
    RUN(test_error_ref_topic_too_long);
    RUN(test_v1_decode);
    RUN(test_v1_decode_errors);
    RUN(test_unicode_and_escapes_round_trip);
    RUN(test_encode_control_characters);
    RUN(test_encode_text_and_reply);
    RUN(test_encode_v1_all_keys_in_order);
    RUN(test_encode_broadcast_payload);
    RUN(test_kind3_example);
    RUN(test_kind3_raw_payload);
    RUN(test_kind3_truncations);
    RUN(test_kind3_errors);
    RUN(test_kind3_nul_and_kinds);
    RUN(test_broadcast_from_json);
    RUN(test_broadcast_from_json_errors);
    RUN(test_kind4_exact_bytes);
    RUN(test_kind4_limits);
    RUN(test_bus_round_trip);
    RUN(test_bus_header_layout);
    RUN(test_bus_decode_errors);
    RUN(test_bus_variant);
    RUN(test_render_every_kind_and_variant);
    RUN(test_render_limit);
    RUN(test_kind3_to_bus_to_text);
    RUN(test_release_accepts_null_and_zeroed);
    return HARNESS_DONE();
}
