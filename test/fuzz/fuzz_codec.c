/*
 * fuzz_codec.c: libFuzzer target for the protocol codec (gateway/codec.h).
 *
 * The same bytes go to every decoder: text frames of both versions, binary frames and the
 * bus form. Whatever decodes is released, and checked with invariants that abort on
 * failure: a decoded text frame re-encodes to a frame that decodes to the same fields, a
 * decoded kind 3 frame renders (through the bus form) to a text frame that is valid JSON,
 * and a decoded bus form re-encodes to the very same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"
#include "gateway/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok)
{
    if (!ok)
        abort();
}

static bool
str_eq(struct codec_str a, struct codec_str b)
{
    if (!a.p || !b.p)
        return a.p == b.p;
    return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

/* Decodes, re-encodes and decodes again: the fields must survive. */
static void
text_round_trip(enum codec_vsn vsn, const uint8_t *data, size_t size)
{
    struct codec_msg m, m2;
    struct codec_error err;
    struct gw_buf out, scratch;
    char *payload;

    if (codec_decode_text(vsn, (const char *)data, size, &m, &err) < 0) {
        check(err.message != NULL && m.json == NULL);
        return;
    }
    gw_buf_init(&out);
    gw_buf_init(&scratch);
    payload = json_dumps(m.payload, JSON_COMPACT);
    check(payload != NULL);
    codec_encode_text(&out, vsn, m.join_ref, m.ref, m.topic, m.event,
                      (struct codec_str){ payload, strlen(payload) });
    check(codec_decode_text(vsn, out.data, out.len, &m2, &err) == 0);
    check(str_eq(m.join_ref, m2.join_ref) && str_eq(m.ref, m2.ref));
    check(str_eq(m.topic, m2.topic) && str_eq(m.event, m2.event));
    check(json_equal(m.payload, m2.payload));
    if (codec_broadcast_from_json(&m, &scratch) == 0)
        check(m.bc_json && m.bc_event.n > 0 && m.bc_payload_len > 0);
    free(payload);
    codec_msg_release(&m2);
    codec_msg_release(&m);
    gw_buf_release(&scratch);
    gw_buf_release(&out);
}

/* A decoded kind 3 frame goes over the bus and out to every variant. */
static void
binary_to_clients(const uint8_t *data, size_t size)
{
    struct codec_msg m, t;
    struct codec_error err;
    struct codec_bus b = { 0 };
    struct gw_buf out;
    bool binary;
    int rc;

    if (codec_decode_binary(data, size, &m, &err) < 0) {
        check(err.message != NULL && m.topic.p == NULL);
        return;
    }
    b.kind = CODEC_BUS_BROADCAST;
    b.topic = m.topic;
    b.event = m.bc_event;
    b.meta = m.bc_meta;
    b.json = m.bc_json;
    b.payload = m.bc_payload;
    b.payload_len = m.bc_payload_len;
    gw_buf_init(&out);
    rc = codec_bus_render(&out, &b, CODEC_VAR_V2_TEXT, &binary);
    check(rc == (m.bc_json ? 0 : GW_ENOTFOUND) && !binary);
    if (rc == 0) {
        /* Validated input must never produce an invalid text frame. */
        check(codec_decode_text(CODEC_V2, out.data, out.len, &t, &err) == 0);
        check(str_eq(t.topic, m.topic));
        codec_msg_release(&t);
    }
    gw_buf_reset(&out);
    check(codec_bus_render(&out, &b, CODEC_VAR_V2_BIN, &binary) == 0 && binary);
    check(out.len == 5 + m.topic.n + m.bc_event.n + m.bc_meta.n + m.bc_payload_len);
    gw_buf_release(&out);
    codec_msg_release(&m);
}

/* A decoded bus form re-encodes byte for byte and renders without crashing. */
static void
bus_round_trip(const uint8_t *data, size_t size)
{
    static const enum codec_variant variants[] = { CODEC_VAR_V2_TEXT, CODEC_VAR_V2_BIN,
                                                   CODEC_VAR_V1_TEXT };
    struct codec_bus b;
    struct gw_buf out;
    bool binary;

    if (codec_bus_decode(data, size, &b) < 0)
        return;
    gw_buf_init(&out);
    codec_bus_encode(&out, &b);
    check(out.len == size && memcmp(out.data, data, size) == 0);
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        gw_buf_reset(&out);
        (void)codec_bus_render(&out, &b, variants[i], &binary);
    }
    (void)codec_bus_variant(&b, CODEC_V2);
    gw_buf_release(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    text_round_trip(CODEC_V2, data, size);
    text_round_trip(CODEC_V1, data, size);
    binary_to_clients(data, size);
    bus_round_trip(data, size);
    return 0;
}
