/*
 * replay.c: broadcast replay for private channels (PROTOCOL.md 6.6) on Redis Streams.
 *
 * Storing: a broadcast to a private topic that carries an id in its meta (persisted sends,
 * tidings.send, REST messages with an id) is added, in its bus form, to the bounded stream
 * of its fanout topic (fanout_stream_add: replay_max_len entries, replay_max_age seconds).
 * Replaying: a private join with config.broadcast.replay = {since, limit} asks for the
 * range; until it arrives, live broadcasts for that channel are held. The answer is sent
 * first, each message with meta {"replayed":true,"id":..}, then the held live messages
 * whose id was not replayed, so the client sees every message once, stored ones first.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway_int.h"

#define REPLAY_DEFAULT_LIMIT 25
#define REPLAY_MAX_LIMIT     1000

/* The "id" of a meta JSON text, copied into out (cap bytes); false when there is none. */
static bool
meta_id(struct codec_str meta, char *out, size_t cap)
{
    json_t *m, *id;
    bool ok = false;

    if (!meta.p || meta.n == 0)
        return false;
    m = json_loadb(meta.p, meta.n, 0, NULL);
    id = json_object_get(m, "id");
    if (json_is_string(id) && json_string_length(id) < cap) {
        memcpy(out, json_string_value(id), json_string_length(id) + 1);
        ok = true;
    }
    json_decref(m);
    return ok;
}

void
gw__replay_store(struct gw *gw, const char *fo_topic, size_t fo_len, const struct codec_bus *bus,
                 const void *body, size_t len)
{
    char id[128];

    if (!gw->conf->redis.n || gw->conf->replay_max_len <= 0 || !meta_id(bus->meta, id, sizeof id))
        return;
    fanout_stream_add(gw->fo, fo_topic, fo_len, body, len, (size_t)gw->conf->replay_max_len,
                      (uint64_t)gw->conf->replay_max_age * 1000u);
}

/* Sends one stored message to the channel with meta {"replayed":true,"id":..}. */
static void
send_replayed(struct channel *ch, const struct codec_bus *stored, const char *id)
{
    struct gw_buf meta, out;
    struct codec_bus b = *stored;
    bool binary;

    gw_buf_init(&meta);
    gw_buf_init(&out);
    gw_buf_append_str(&meta, "{\"replayed\":true,\"id\":");
    gw_buf_append_json_str(&meta, id, strlen(id));
    gw_buf_append_str(&meta, "}");
    b.meta = (struct codec_str){ meta.data, meta.len };
    if (codec_bus_render(&out, &b, codec_bus_variant(&b, ch->conn->vsn), &binary) == 0)
        gw__conn_send(ch->conn, out.data, out.len, binary);
    gw_buf_release(&meta);
    gw_buf_release(&out);
}

static bool
id_in(char **ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ids[i], id) == 0)
            return true;
    }
    return false;
}

/* Delivers the live messages held during the replay, minus those already replayed. */
static void
flush_held(struct channel *ch, char **ids, size_t n_ids)
{
    for (size_t i = 0; i < ch->n_held; i++) {
        struct fanout_msg *m = ch->held[i];
        size_t len;
        const void *body = fanout_msg_body(m, &len);
        struct codec_bus b;
        char id[128];
        struct fanout_frame *f;

        if (codec_bus_decode(body, len, &b) == 0 && meta_id(b.meta, id, sizeof id) &&
            id_in(ids, n_ids, id)) {
            fanout_msg_unref(m);
            continue;
        }
        f = fanout_msg_frame(m, codec_bus_variant(&b, ch->conn->vsn));
        if (f && !ch->conn->closing)
            gw__conn_enqueue(ch->conn, f);
        fanout_msg_unref(m);
    }
    free(ch->held);
    ch->held = NULL;
    ch->n_held = 0;
}

static void
replay_answer(void *ud, const struct fanout_stream_entry *e, size_t n)
{
    struct channel *ch = ud;
    char **ids = gw_xcalloc(n + 1, sizeof(*ids));
    size_t n_ids = 0;

    for (size_t i = 0; i < n; i++) {
        struct codec_bus b;
        char id[128];

        if (codec_bus_decode(e[i].body, e[i].len, &b) || !meta_id(b.meta, id, sizeof id) ||
            id_in(ids, n_ids, id))
            continue;
        send_replayed(ch, &b, id);
        ids[n_ids++] = gw_xstrdup(id);
    }
    ch->replaying = false;
    flush_held(ch, ids, n_ids);
    for (size_t i = 0; i < n_ids; i++)
        free(ids[i]);
    free(ids);
}

void
gw__replay_join(struct channel *ch, struct json_t *replay, const char *fo_topic, size_t fo_len)
{
    json_t *since = json_object_get(replay, "since"), *limit = json_object_get(replay, "limit");
    json_int_t lim = json_is_integer(limit) ? json_integer_value(limit) : REPLAY_DEFAULT_LIMIT;
    double s = json_is_number(since) ? json_number_value(since) : 0;

    if (!ch->is_private || !(ch->perms & AUTH_BROADCAST_READ) || !json_is_object(replay))
        return;
    if (lim < 1)
        lim = REPLAY_DEFAULT_LIMIT;
    if (lim > REPLAY_MAX_LIMIT)
        lim = REPLAY_MAX_LIMIT;
    ch->replaying = true;
    fanout_stream_range(ch->conn->gw->fo, fo_topic, fo_len, s > 0 ? (uint64_t)s : 0, (size_t)lim,
                        replay_answer, ch);
}

bool
gw__replay_hold(struct channel *ch, struct fanout_msg *m)
{
    if (!ch->replaying)
        return false;
    if (ch->n_held == ch->cap_held) {
        ch->cap_held = ch->cap_held ? ch->cap_held * 2 : 8;
        ch->held = gw_xrealloc(ch->held, ch->cap_held * sizeof(*ch->held));
    }
    ch->held[ch->n_held++] = fanout_msg_ref(m);
    return true;
}

void
gw__replay_leave(struct channel *ch)
{
    fanout_stream_cancel(ch->conn->gw->fo, ch);
    for (size_t i = 0; i < ch->n_held; i++)
        fanout_msg_unref(ch->held[i]);
    free(ch->held);
    ch->held = NULL;
    ch->n_held = ch->cap_held = 0;
    ch->replaying = false;
}

void
gw__replay_new_id(struct gw *gw, char out[40])
{
    uint64_t a, b;

    gw->ref_seq++;
    a = gw_hash64(&gw->ref_seq, sizeof gw->ref_seq) ^ gw->ref_salt;
    b = gw_hash64(&a, sizeof a) ^ gw_now_ms();
    snprintf(out, 40, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
             (unsigned)((b >> 48) & 0x3fff) | 0x8000, (unsigned long long)(b & 0xffffffffffffull));
}
