/*
 * codec: the Phoenix / Supabase Realtime wire format, as pure functions over bytes.
 *
 * Decoding: vsn 2.0.0 text frames ([join_ref, ref, topic, event, payload]), vsn 1.0.0
 * text frames ({"topic","event","payload","ref","join_ref"}) and vsn 2.0.0 binary kind 3
 * (user broadcast push). Encoding: text frames of both versions, binary kind 4 (user
 * broadcast), the broadcast payload object, and the neutral "bus" form of a message that
 * fanout carries and that is encoded once per client variant.
 * No I/O, no allocation except the jansson payload object and gw_buf appends.
 * See PROTOCOL.md sections 1-2 for the formats.
 */
#ifndef GW_CODEC_H
#define GW_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_buf;
struct json_t;

enum codec_vsn {
    CODEC_V1 = 1, /* vsn 1.0.0: JSON objects, no binary frames */
    CODEC_V2 = 2, /* vsn 2.0.0: JSON arrays, binary kinds 3 (in) and 4 (out) */
};

/* A byte string; p == NULL means JSON null (or absent). Not NUL-terminated. */
struct codec_str {
    const char *p; /* bytes, or NULL */
    size_t n;      /* length in bytes */
};

/*
 * A decoded inbound message. String fields point into the input buffer (valid while it
 * lives) or into `json` (valid until codec_msg_release()).
 */
struct codec_msg {
    struct codec_str join_ref; /* null when absent */
    struct codec_str ref;      /* null when absent */
    struct codec_str topic;    /* never null after a successful decode */
    struct codec_str event;    /* never null after a successful decode */
    struct json_t *payload;    /* owned: the payload object (text frames); NULL for kind 3 */
    struct json_t *json;       /* owned: the whole parsed frame (text frames) */
    /* Set for kind 3 (and for JSON "broadcast" pushes, see codec_broadcast_from_json): */
    bool is_broadcast;               /* a user broadcast push */
    struct codec_str bc_event;       /* user event name */
    struct codec_str bc_meta;        /* metadata JSON text, may be empty */
    bool bc_json;                    /* payload is JSON text (encoding 1), else raw bytes */
    const unsigned char *bc_payload; /* payload bytes */
    size_t bc_payload_len;           /* bytes */
};

/*
 * Decode error detail: a static message and, when it could be read, the ref/topic. ref and
 * topic point into ref_buf/topic_buf (copies, since the parsed JSON is freed on error);
 * they stay null when the value was unreadable or too long for the buffer.
 */
struct codec_error {
    const char *message;    /* e.g. "frame is not a JSON array", static storage */
    struct codec_str ref;   /* the frame's ref when readable, else null */
    struct codec_str topic; /* the frame's topic when readable, else null */
    char ref_buf[64];       /* storage for ref (NUL-terminated) */
    char topic_buf[256];    /* storage for topic (NUL-terminated) */
};

/*
 * Decodes a text frame of version `vsn`. Returns 0 and fills *out (release it), or
 * GW_EPARSE with *err filled and *out zeroed (nothing to release). Checks: valid JSON,
 * the array/object shape, join_ref and ref strings or null, topic and event non-empty
 * strings, payload an object (a missing v1 payload counts as {}); extra trailing
 * elements of a v2 array are ignored. err->ref/topic point into err's own buffers.
 */
int codec_decode_text(enum codec_vsn vsn, const char *buf, size_t len, struct codec_msg *out,
                      struct codec_error *err);

/*
 * Decodes a binary frame. Only kind 3 is accepted; unknown kinds, lengths past the end
 * and invalid JSON payloads (encoding 1) give GW_EPARSE. On success the string fields and
 * bc_* point into buf. On failure *out is zeroed and *err filled as for text frames.
 */
int codec_decode_binary(const unsigned char *buf, size_t len, struct codec_msg *out,
                        struct codec_error *err);

/* Releases the JSON held by a decoded message and zeroes it. Accepts a zeroed message. */
void codec_msg_release(struct codec_msg *m);

/*
 * For a text "broadcast" push (payload {"type":"broadcast","event":E,"payload":P}), fills
 * the bc_* fields of m: bc_event = E, bc_json = true, bc_payload = P serialised to JSON
 * text into `scratch` (P absent = "{}"). Returns 0, or GW_EPARSE when event is missing or
 * not a string. m->bc_payload points into scratch (keep it alive).
 */
int codec_broadcast_from_json(struct codec_msg *m, struct gw_buf *scratch);

/*
 * Appends one text frame of version vsn: v2 [join_ref,ref,topic,event,payload] or v1
 * {"topic":..,"event":..,"payload":..,"ref":..,"join_ref":..}. payload_json is inserted
 * verbatim (must be valid JSON; NULL means {}). Strings are JSON-escaped.
 */
void codec_encode_text(struct gw_buf *out, enum codec_vsn vsn, struct codec_str join_ref,
                       struct codec_str ref, struct codec_str topic, struct codec_str event,
                       struct codec_str payload_json);

/* Appends a phx_reply frame: payload {"status":status,"response":response_json}. */
void codec_encode_reply(struct gw_buf *out, enum codec_vsn vsn, struct codec_str join_ref,
                        struct codec_str ref, struct codec_str topic, const char *status,
                        struct codec_str response_json);

/* Appends {"type":"broadcast","event":E,"payload":P[,"meta":M]}; meta omitted when empty.
 * P must be JSON text. */
void codec_encode_broadcast_payload(struct gw_buf *out, struct codec_str event,
                                    struct codec_str payload_json, struct codec_str meta_json);

/*
 * Appends a binary kind 4 frame. Returns 0, or GW_ELIMIT when topic, event or meta is
 * longer than 255 bytes (nothing appended then).
 */
int codec_encode_kind4(struct gw_buf *out, struct codec_str topic, struct codec_str event,
                       struct codec_str meta_json, bool json, const void *payload, size_t len);

/* The neutral form of an outbound message, carried by fanout (and later by Redis). */
enum codec_bus_kind {
    CODEC_BUS_BROADCAST = 1, /* user broadcast: event, meta, json flag, payload */
    CODEC_BUS_PUSH = 2,      /* server push [null,null,topic,event,payload_json] */
};

struct codec_bus {
    enum codec_bus_kind kind; /* what this message is */
    struct codec_str topic;   /* wire topic, e.g. "realtime:room1" */
    struct codec_str event;   /* user event (broadcast) or Phoenix event (push) */
    struct codec_str meta;    /* broadcast meta JSON text, may be empty */
    bool json;                /* payload is JSON text (else raw bytes, broadcast only) */
    const void *payload;      /* payload bytes */
    size_t payload_len;       /* bytes */
};

/* Appends the bus form of *b to out. */
void codec_bus_encode(struct gw_buf *out, const struct codec_bus *b);
/* Parses a bus form; fields point into buf. Returns 0 or GW_EPARSE. */
int codec_bus_decode(const void *buf, size_t len, struct codec_bus *b);

/* Client variants of an outbound message. */
enum codec_variant {
    CODEC_VAR_V2_TEXT = 0, /* vsn 2 JSON text frame */
    CODEC_VAR_V2_BIN = 1,  /* vsn 2 binary kind 4 (broadcasts with raw payloads) */
    CODEC_VAR_V1_TEXT = 2, /* vsn 1 JSON text frame */
};

/*
 * Appends the WebSocket payload of the bus message for one variant and reports whether it
 * is a binary frame. Returns 0, or GW_ENOTFOUND when the variant cannot carry the message
 * (raw bytes to vsn 1), or GW_ELIMIT (kind 4 lengths). For a broadcast, V2_TEXT is used
 * for JSON payloads and V2_BIN for raw ones: the caller picks via codec_bus_variant().
 */
int codec_bus_render(struct gw_buf *out, const struct codec_bus *b, enum codec_variant v,
                     bool *binary);

/* The variant a client of version vsn should receive for bus message b. */
enum codec_variant codec_bus_variant(const struct codec_bus *b, enum codec_vsn vsn);

#endif
