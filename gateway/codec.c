/*
 * codec.c: the Phoenix / Supabase Realtime wire format (PROTOCOL.md sections 1-2).
 *
 * Text frames are parsed with jansson (json_loadb, no NUL-termination needed) and checked
 * field by field; the decoded message keeps the parsed tree alive and its strings point
 * into it. Binary kind 3 frames are checked in place: every length against the frame,
 * every string for UTF-8, meta and JSON payloads by parsing them once. Encoders never
 * build JSON trees: they append escaped strings and caller-supplied JSON text to a gw_buf.
 *
 * Bus form (what fanout and the Redis bus carry; integers big-endian):
 *   off  size  field
 *   0    1     magic 0xB1 (bus form version 1)
 *   1    1     kind (enum codec_bus_kind)
 *   2    1     flags: bit 0 = payload is JSON text; other bits are 0
 *   3    1     reserved, 0
 *   4    4     topic length T (> 0)
 *   8    4     event length E (> 0)
 *   12   4     meta length M
 *   16   T     topic
 *   ..   E     event
 *   ..   M     meta JSON text
 *   ..   rest  payload
 */
#include "gateway/codec.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/base.h"

#define KIND3_HEADER   7    /* bytes before the variable fields of a kind 3 frame */
#define BUS_MAGIC      0xB1 /* first byte of a bus form */
#define BUS_HEADER     16   /* bytes before the variable fields of a bus form */
#define BUS_FLAG_JSON  0x01 /* payload is JSON text */
#define KIND_MSG_COUNT 5    /* kinds with their own "unsupported" message */

static const char LEN_MSG[] = "binary frame lengths exceed the frame";

/* The header fields shared by every text frame. */
struct frame_head {
    struct codec_str join_ref; /* null when absent */
    struct codec_str ref;      /* null when absent */
    struct codec_str topic;    /* wire topic */
    struct codec_str event;    /* Phoenix event */
};

static struct codec_str
str_of(const char *s)
{
    struct codec_str r = { s, strlen(s) };

    return r;
}

static int
bad(struct codec_error *err, const char *message)
{
    err->message = message;
    return GW_EPARSE;
}

static void
error_reset(struct codec_error *err)
{
    err->message = NULL;
    err->ref.p = err->topic.p = NULL;
    err->ref.n = err->topic.n = 0;
    err->ref_buf[0] = err->topic_buf[0] = '\0';
}

/* Copies p[0..n) into buf when it fits (with a NUL) and points dst at the copy. */
static void
keep_copy(struct codec_str *dst, char *buf, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        return;
    if (n)
        memcpy(buf, p, n);
    buf[n] = '\0';
    dst->p = buf;
    dst->n = n;
}

static void
keep_ref_topic(struct codec_error *err, struct codec_str ref, struct codec_str topic)
{
    if (ref.p)
        keep_copy(&err->ref, err->ref_buf, sizeof(err->ref_buf), ref.p, ref.n);
    if (topic.p && topic.n)
        keep_copy(&err->topic, err->topic_buf, sizeof(err->topic_buf), topic.p, topic.n);
}

/* join_ref / ref: absent or null gives a null string, a string its bytes; else -1. */
static int
get_ref(json_t *j, struct codec_str *out)
{
    out->p = NULL;
    out->n = 0;
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_string(j))
        return -1;
    out->p = json_string_value(j);
    out->n = json_string_length(j);
    return 0;
}

/* topic / event: a non-empty string, else -1. */
static int
get_name(json_t *j, struct codec_str *out)
{
    if (!json_is_string(j) || json_string_length(j) == 0)
        return -1;
    out->p = json_string_value(j);
    out->n = json_string_length(j);
    return 0;
}

/* Records ref and topic in err when they are strings, before any field is judged. */
static void
note_text_ref_topic(struct codec_error *err, json_t *ref, json_t *topic)
{
    struct codec_str r = { NULL, 0 }, t = { NULL, 0 };

    if (json_is_string(ref))
        get_ref(ref, &r);
    if (json_is_string(topic))
        get_ref(topic, &t);
    keep_ref_topic(err, r, t);
}

/* Checks the five fields (join_ref, ref, topic, event, payload) and fills m. */
static int
fill_fields(struct codec_msg *m, struct codec_error *err, json_t *const f[5])
{
    if (get_ref(f[0], &m->join_ref) < 0)
        return bad(err, "join_ref must be a string or null");
    if (get_ref(f[1], &m->ref) < 0)
        return bad(err, "ref must be a string or null");
    if (get_name(f[2], &m->topic) < 0)
        return bad(err, "topic must be a non-empty string");
    if (get_name(f[3], &m->event) < 0)
        return bad(err, "event must be a non-empty string");
    if (!json_is_object(f[4]))
        return bad(err, "payload must be an object");
    m->payload = json_incref(f[4]);
    return 0;
}

static int
decode_v2(json_t *root, struct codec_msg *m, struct codec_error *err)
{
    json_t *f[5];

    if (!json_is_array(root))
        return bad(err, "frame is not a JSON array");
    if (json_array_size(root) < 5)
        return bad(err, "frame has fewer than 5 elements");
    for (size_t i = 0; i < 5; i++)
        f[i] = json_array_get(root, i);
    note_text_ref_topic(err, f[1], f[2]);
    return fill_fields(m, err, f);
}

static int
decode_v1(json_t *root, struct codec_msg *m, struct codec_error *err)
{
    json_t *f[5];

    if (!json_is_object(root))
        return bad(err, "frame is not a JSON object");
    f[0] = json_object_get(root, "join_ref");
    f[1] = json_object_get(root, "ref");
    f[2] = json_object_get(root, "topic");
    f[3] = json_object_get(root, "event");
    f[4] = json_object_get(root, "payload");
    note_text_ref_topic(err, f[1], f[2]);
    if (!f[4]) {
        /* A missing payload counts as {}: store it in the tree, which owns it. */
        f[4] = json_object();
        json_object_set_new(root, "payload", f[4]);
    }
    return fill_fields(m, err, f);
}

int
codec_decode_text(enum codec_vsn vsn, const char *buf, size_t len, struct codec_msg *out,
                  struct codec_error *err)
{
    struct codec_error spare;
    json_error_t jerr;
    int rc;

    if (!err)
        err = &spare;
    memset(out, 0, sizeof(*out));
    error_reset(err);
    /* DECODE_ANY so that a scalar frame gets the shape message, not "invalid JSON". */
    out->json = json_loadb(buf, len, JSON_DECODE_ANY, &jerr);
    if (!out->json)
        return bad(err, "invalid JSON");
    if (vsn == CODEC_V1)
        rc = decode_v1(out->json, out, err);
    else
        rc = decode_v2(out->json, out, err);
    if (rc < 0)
        codec_msg_release(out);
    return rc;
}

/*
 * UTF-8 as JSON and browsers accept it: no overlong forms, no surrogates, nothing past
 * U+10FFFF. NUL is refused too, as jansson refuses \u0000 in text frames.
 */
static bool
utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], cp, min;
        size_t k;

        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

static const char *
kind_message(unsigned kind)
{
    static const char *const msgs[KIND_MSG_COUNT] = {
        "unsupported binary frame kind 0", "unsupported binary frame kind 1",
        "unsupported binary frame kind 2", "unsupported binary frame kind 3",
        "unsupported binary frame kind 4",
    };

    return kind < KIND_MSG_COUNT ? msgs[kind] : "unsupported binary frame kind";
}

static bool
json_text_valid(const unsigned char *p, size_t n, bool object_only)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)p, n, object_only ? 0 : JSON_DECODE_ANY, &jerr);
    bool ok = j && (!object_only || json_is_object(j));

    json_decref(j);
    return ok;
}

/* Splits a kind 3 frame into its six fields (the last is the payload); -1 if truncated. */
static int
kind3_split(const unsigned char *buf, size_t len, struct codec_str f[6])
{
    size_t off = KIND3_HEADER;

    if (len < KIND3_HEADER)
        return -1;
    for (size_t i = 0; i < 5; i++) {
        f[i].p = (const char *)buf + off;
        f[i].n = buf[1 + i];
        off += f[i].n;
    }
    if (off > len)
        return -1;
    f[5].p = (const char *)buf + off;
    f[5].n = len - off;
    return 0;
}

/* Fields: 0 join_ref, 1 ref, 2 topic, 3 event, 4 meta, 5 payload. */
static int
kind3_check(const struct codec_str f[6], unsigned encoding, struct codec_error *err)
{
    if (encoding > 1)
        return bad(err, "unsupported binary payload encoding");
    for (size_t i = 0; i < 4; i++) {
        if (!utf8_valid((const unsigned char *)f[i].p, f[i].n))
            return bad(err, "binary frame strings must be UTF-8 without NUL");
    }
    if (f[2].n == 0)
        return bad(err, "topic must be a non-empty string");
    if (f[3].n == 0)
        return bad(err, "broadcast event must be a non-empty string");
    if (f[4].n && !json_text_valid((const unsigned char *)f[4].p, f[4].n, true))
        return bad(err, "meta must be empty or a JSON object");
    if (encoding == 1 && !json_text_valid((const unsigned char *)f[5].p, f[5].n, false))
        return bad(err, "payload is not valid JSON");
    return 0;
}

static struct codec_str
null_if_empty(struct codec_str s)
{
    if (s.n == 0)
        s.p = NULL;
    return s;
}

/* Records ref and topic in err when they are valid strings (they may be echoed as JSON). */
static void
note_binary_ref_topic(struct codec_error *err, const struct codec_str f[6])
{
    struct codec_str none = { NULL, 0 };
    bool ref_ok = f[1].n && utf8_valid((const unsigned char *)f[1].p, f[1].n);
    bool topic_ok = utf8_valid((const unsigned char *)f[2].p, f[2].n);

    keep_ref_topic(err, ref_ok ? f[1] : none, topic_ok ? f[2] : none);
}

int
codec_decode_binary(const unsigned char *buf, size_t len, struct codec_msg *out,
                    struct codec_error *err)
{
    struct codec_error spare;
    struct codec_str f[6];

    if (!err)
        err = &spare;
    memset(out, 0, sizeof(*out));
    error_reset(err);
    if (len == 0)
        return bad(err, "empty binary frame");
    if (buf[0] != 3)
        return bad(err, kind_message(buf[0]));
    if (kind3_split(buf, len, f) < 0)
        return bad(err, LEN_MSG);
    note_binary_ref_topic(err, f);
    if (kind3_check(f, buf[6], err) < 0)
        return GW_EPARSE;
    out->join_ref = null_if_empty(f[0]);
    out->ref = null_if_empty(f[1]);
    out->topic = f[2];
    out->event = str_of("broadcast");
    out->is_broadcast = true;
    out->bc_event = f[3];
    out->bc_meta = null_if_empty(f[4]);
    out->bc_json = buf[6] == 1;
    out->bc_payload = (const unsigned char *)f[5].p;
    out->bc_payload_len = f[5].n;
    return 0;
}

void
codec_msg_release(struct codec_msg *m)
{
    if (!m)
        return;
    json_decref(m->payload);
    json_decref(m->json);
    memset(m, 0, sizeof(*m));
}

int
codec_broadcast_from_json(struct codec_msg *m, struct gw_buf *scratch)
{
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    json_t *event, *payload;
    size_t need;

    if (!m->payload)
        return GW_EPARSE;
    event = json_object_get(m->payload, "event");
    if (!json_is_string(event) || json_string_length(event) == 0)
        return GW_EPARSE;
    gw_buf_reset(scratch);
    payload = json_object_get(m->payload, "payload");
    if (payload) {
        need = json_dumpb(payload, NULL, 0, flags);
        if (need == 0)
            return GW_EPARSE;
        json_dumpb(payload, gw_buf_reserve(scratch, need), need, flags);
        scratch->len = need;
        scratch->data[need] = '\0';
    } else {
        gw_buf_append(scratch, "{}", 2);
    }
    m->is_broadcast = true;
    m->bc_event.p = json_string_value(event);
    m->bc_event.n = json_string_length(event);
    m->bc_meta.p = NULL;
    m->bc_meta.n = 0;
    m->bc_json = true;
    m->bc_payload = (const unsigned char *)scratch->data;
    m->bc_payload_len = scratch->len;
    return 0;
}

static void
put_lit(struct gw_buf *out, const char *s)
{
    gw_buf_append(out, s, strlen(s));
}

/* A JSON string, or null for a null codec_str. */
static void
put_str(struct gw_buf *out, struct codec_str s)
{
    if (s.p)
        gw_buf_append_json_str(out, s.p, s.n);
    else
        put_lit(out, "null");
}

/* JSON text verbatim; null or empty text becomes {}. */
static void
put_json(struct gw_buf *out, struct codec_str j)
{
    if (j.p && j.n)
        gw_buf_append(out, j.p, j.n);
    else
        put_lit(out, "{}");
}

/* Everything of a text frame before the payload. */
static void
frame_open(struct gw_buf *out, enum codec_vsn vsn, const struct frame_head *h)
{
    if (vsn == CODEC_V1) {
        put_lit(out, "{\"topic\":");
        put_str(out, h->topic);
        put_lit(out, ",\"event\":");
        put_str(out, h->event);
        put_lit(out, ",\"payload\":");
        return;
    }
    put_lit(out, "[");
    put_str(out, h->join_ref);
    put_lit(out, ",");
    put_str(out, h->ref);
    put_lit(out, ",");
    put_str(out, h->topic);
    put_lit(out, ",");
    put_str(out, h->event);
    put_lit(out, ",");
}

/* Everything of a text frame after the payload. */
static void
frame_close(struct gw_buf *out, enum codec_vsn vsn, const struct frame_head *h)
{
    if (vsn == CODEC_V1) {
        put_lit(out, ",\"ref\":");
        put_str(out, h->ref);
        put_lit(out, ",\"join_ref\":");
        put_str(out, h->join_ref);
        put_lit(out, "}");
        return;
    }
    put_lit(out, "]");
}

void
codec_encode_text(struct gw_buf *out, enum codec_vsn vsn, struct codec_str join_ref,
                  struct codec_str ref, struct codec_str topic, struct codec_str event,
                  struct codec_str payload_json)
{
    struct frame_head h = { join_ref, ref, topic, event };

    frame_open(out, vsn, &h);
    put_json(out, payload_json);
    frame_close(out, vsn, &h);
}

void
codec_encode_reply(struct gw_buf *out, enum codec_vsn vsn, struct codec_str join_ref,
                   struct codec_str ref, struct codec_str topic, const char *status,
                   struct codec_str response_json)
{
    struct frame_head h = { join_ref, ref, topic, str_of("phx_reply") };

    frame_open(out, vsn, &h);
    put_lit(out, "{\"status\":");
    put_str(out, str_of(status));
    put_lit(out, ",\"response\":");
    put_json(out, response_json);
    put_lit(out, "}");
    frame_close(out, vsn, &h);
}

void
codec_encode_broadcast_payload(struct gw_buf *out, struct codec_str event,
                               struct codec_str payload_json, struct codec_str meta_json)
{
    put_lit(out, "{\"type\":\"broadcast\",\"event\":");
    put_str(out, event);
    put_lit(out, ",\"payload\":");
    put_json(out, payload_json);
    if (meta_json.p && meta_json.n) {
        put_lit(out, ",\"meta\":");
        gw_buf_append(out, meta_json.p, meta_json.n);
    }
    put_lit(out, "}");
}

int
codec_encode_kind4(struct gw_buf *out, struct codec_str topic, struct codec_str event,
                   struct codec_str meta_json, bool json, const void *payload, size_t len)
{
    unsigned char head[5];

    if (topic.n > 255 || event.n > 255 || meta_json.n > 255)
        return GW_ELIMIT;
    head[0] = 4;
    head[1] = (unsigned char)topic.n;
    head[2] = (unsigned char)event.n;
    head[3] = (unsigned char)meta_json.n;
    head[4] = json ? 1 : 0;
    gw_buf_append(out, head, sizeof(head));
    gw_buf_append(out, topic.p, topic.n);
    gw_buf_append(out, event.p, event.n);
    gw_buf_append(out, meta_json.p, meta_json.n);
    gw_buf_append(out, payload, len);
    return 0;
}

static void
put_u32(unsigned char *p, size_t v)
{
    /* Bus fields are far below 4 GiB (frames are capped at a few MB): a larger one is a bug. */
    if (v > UINT32_MAX)
        abort();
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static size_t
get_u32(const unsigned char *p)
{
    return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | (size_t)p[3];
}

void
codec_bus_encode(struct gw_buf *out, const struct codec_bus *b)
{
    unsigned char head[BUS_HEADER] = { 0 };

    head[0] = BUS_MAGIC;
    head[1] = (unsigned char)b->kind;
    head[2] = b->json ? BUS_FLAG_JSON : 0;
    put_u32(head + 4, b->topic.n);
    put_u32(head + 8, b->event.n);
    put_u32(head + 12, b->meta.n);
    gw_buf_append(out, head, sizeof(head));
    gw_buf_append(out, b->topic.p, b->topic.n);
    gw_buf_append(out, b->event.p, b->event.n);
    gw_buf_append(out, b->meta.p, b->meta.n);
    gw_buf_append(out, b->payload, b->payload_len);
}

int
codec_bus_decode(const void *buf, size_t len, struct codec_bus *b)
{
    const unsigned char *p = buf;
    size_t tn, en, mn;

    memset(b, 0, sizeof(*b));
    if (len < BUS_HEADER || p[0] != BUS_MAGIC || p[3] != 0 || (p[2] & ~BUS_FLAG_JSON))
        return GW_EPARSE;
    if (p[1] != CODEC_BUS_BROADCAST && p[1] != CODEC_BUS_PUSH)
        return GW_EPARSE;
    tn = get_u32(p + 4);
    en = get_u32(p + 8);
    mn = get_u32(p + 12);
    /* Each length is below 2^32, so the sum cannot wrap a 64-bit size_t. */
    if (tn == 0 || en == 0 || tn + en + mn > len - BUS_HEADER)
        return GW_EPARSE;
    b->kind = (enum codec_bus_kind)p[1];
    b->json = (p[2] & BUS_FLAG_JSON) != 0;
    b->topic.p = (const char *)p + BUS_HEADER;
    b->topic.n = tn;
    b->event.p = b->topic.p + tn;
    b->event.n = en;
    b->meta.p = mn ? b->event.p + en : NULL;
    b->meta.n = mn;
    b->payload = p + BUS_HEADER + tn + en + mn;
    b->payload_len = len - BUS_HEADER - tn - en - mn;
    return 0;
}

enum codec_variant
codec_bus_variant(const struct codec_bus *b, enum codec_vsn vsn)
{
    if (vsn == CODEC_V1)
        return CODEC_VAR_V1_TEXT;
    if (b->kind == CODEC_BUS_BROADCAST && !b->json)
        return CODEC_VAR_V2_BIN;
    return CODEC_VAR_V2_TEXT;
}

static int
render_broadcast(struct gw_buf *out, const struct codec_bus *b, enum codec_variant v, bool *binary)
{
    struct frame_head h = { { NULL, 0 }, { NULL, 0 }, b->topic, str_of("broadcast") };
    enum codec_vsn vsn = v == CODEC_VAR_V1_TEXT ? CODEC_V1 : CODEC_V2;
    struct codec_str payload = { b->payload, b->payload_len };
    int rc;

    if (v == CODEC_VAR_V2_BIN) {
        rc = codec_encode_kind4(out, b->topic, b->event, b->meta, b->json, b->payload,
                                b->payload_len);
        *binary = rc == 0;
        return rc;
    }
    /* Text frames cannot carry raw bytes. */
    if (!b->json)
        return GW_ENOTFOUND;
    frame_open(out, vsn, &h);
    codec_encode_broadcast_payload(out, b->event, payload, b->meta);
    frame_close(out, vsn, &h);
    return 0;
}

int
codec_bus_render(struct gw_buf *out, const struct codec_bus *b, enum codec_variant v, bool *binary)
{
    struct codec_str none = { NULL, 0 };
    struct codec_str payload = { b->payload, b->payload_len };

    *binary = false;
    if (v != CODEC_VAR_V2_TEXT && v != CODEC_VAR_V2_BIN && v != CODEC_VAR_V1_TEXT)
        return GW_EINVAL;
    if (b->kind == CODEC_BUS_BROADCAST)
        return render_broadcast(out, b, v, binary);
    if (b->kind != CODEC_BUS_PUSH)
        return GW_EINVAL;
    /* Pushes are JSON text frames only: the client decodes no binary push. */
    if (v == CODEC_VAR_V2_BIN || !b->json)
        return GW_ENOTFOUND;
    codec_encode_text(out, v == CODEC_VAR_V1_TEXT ? CODEC_V1 : CODEC_V2, none, none, b->topic,
                      b->event, payload);
    return 0;
}
