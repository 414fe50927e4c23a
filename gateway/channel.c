/*
 * channel.c: the Phoenix channel protocol of one connection (PROTOCOL.md 3, 4, 6, 7, 8):
 * heartbeat, join / leave, broadcast pushes, presence, token refresh and expiry.
 *
 * A joined channel subscribes to up to two fanout topics: "b:<0|1>:<sub>" for broadcasts
 * (when broadcast.read is allowed) and "p:<0|1>:<sub>" for presence diffs (when presence
 * is enabled and presence.read is allowed); the digit is the privacy, so public and private
 * channels of one name never meet. Outbound broadcasts and diffs travel as codec bus
 * messages through fanout and are rendered once per client variant. Replies and
 * per-channel pushes are encoded here and queued on the connection.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gateway/gateway_int.h"

#define TOPIC_PREFIX "realtime:"
#define FO_KEY_MAX   (4 + 256)

/* The channel's presence key: the client's, or one generated on first use (most channels
 * never track, and an idle socket should not carry a key it does not use). */
static const char *
chan_presence_key(struct channel *ch)
{
    struct gw *gw = ch->conn->gw;
    char buf[40];

    if (!ch->presence_key) {
        gw->ref_seq++;
        snprintf(buf, sizeof buf, "%016" PRIx64 "-%08" PRIx64, gw->ref_salt, gw->ref_seq);
        ch->presence_key = gw_xstrdup(buf);
    }
    return ch->presence_key;
}

static const struct codec_str null_str = { NULL, 0 };

static struct codec_str
cstr(const char *s)
{
    return (struct codec_str){ s, s ? strlen(s) : 0 };
}

static bool
str_eq(struct codec_str s, const char *lit)
{
    size_t n = strlen(lit);

    return s.p && s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Builds the fanout key "<kind>:<0|1>:<sub>" into out (FO_KEY_MAX bytes). */
static size_t
fo_key(char *out, char kind, bool is_private, const char *sub, size_t sub_len)
{
    out[0] = kind;
    out[1] = ':';
    out[2] = is_private ? '1' : '0';
    out[3] = ':';
    memcpy(out + 4, sub, sub_len);
    return sub_len + 4;
}

static void
send_text(struct conn *c, const struct gw_buf *b)
{
    gw__conn_send(c, b->data, b->len, false);
}

static void
reply(struct conn *c, struct codec_str join_ref, struct codec_str ref, struct codec_str topic,
      const char *status, const char *response)
{
    struct gw_buf *b = &c->gw->scratch;

    gw_buf_reset(b);
    codec_encode_reply(b, c->vsn, join_ref, ref, topic, status, cstr(response));
    send_text(c, b);
}

/* Replies {"status":"error","response":{"reason":reason}}. */
static void
reply_error(struct conn *c, struct codec_str join_ref, struct codec_str ref, struct codec_str topic,
            const char *reason)
{
    struct gw_buf resp;

    gw_buf_init(&resp);
    gw_buf_append_str(&resp, "{\"reason\":");
    gw_buf_append_json_str(&resp, reason, strlen(reason));
    gw_buf_append_str(&resp, "}");
    reply(c, join_ref, ref, topic, "error", resp.data);
    gw_buf_release(&resp);
}

static void
push(struct conn *c, struct codec_str join_ref, struct codec_str ref, struct codec_str topic,
     const char *event, const char *payload, size_t len)
{
    struct gw_buf *b = &c->gw->scratch;

    gw_buf_reset(b);
    codec_encode_text(b, c->vsn, join_ref, ref, topic, cstr(event),
                      (struct codec_str){ payload, len });
    send_text(c, b);
}

static struct codec_str
ch_topic(const struct channel *ch)
{
    return (struct codec_str){ ch->topic, ch->topic_len };
}

static struct codec_str
ch_jr(const struct channel *ch)
{
    return cstr(ch->join_ref);
}

void
gw__channel_system(struct channel *ch, const char *extension, const char *status, const char *msg)
{
    struct gw_buf p;

    gw_buf_init(&p);
    gw_buf_append_str(&p, "{\"extension\":");
    gw_buf_append_json_str(&p, extension, strlen(extension));
    gw_buf_printf(&p, ",\"status\":\"%s\",\"message\":", status);
    gw_buf_append_json_str(&p, msg, strlen(msg));
    gw_buf_append_str(&p, ",\"channel\":");
    gw_buf_append_json_str(&p, CH_SUB(ch), CH_SUB_LEN(ch));
    gw_buf_append_str(&p, "}");
    push(ch->conn, ch_jr(ch), null_str, ch_topic(ch), "system", p.data, p.len);
    gw_buf_release(&p);
}

static struct channel *
chan_find(struct conn *c, struct codec_str topic)
{
    for (uint32_t i = 0; i < c->n_chans; i++) {
        struct channel *ch = c->chans[i];

        if (ch->topic_len == topic.n && memcmp(ch->topic, topic.p, topic.n) == 0)
            return ch;
    }
    return NULL;
}

static void
recompute_min_exp(struct conn *c)
{
    int64_t min = 0;

    for (uint32_t i = 0; i < c->n_chans; i++) {
        int64_t exp = auth_identity_exp(c->chans[i]->id);

        if (exp && (!min || exp < min))
            min = exp;
    }
    c->min_exp = min;
}

/* Appends a presence meta: {"phx_ref":ref[,"phx_ref_prev":prev],<meta members>}. */
static void
append_meta(struct gw_buf *b, const char *ref, size_t ref_len, const char *prev, const char *meta,
            size_t meta_len)
{
    gw_buf_append_str(b, "{\"phx_ref\":");
    gw_buf_append_json_str(b, ref, ref_len);
    if (prev) {
        gw_buf_append_str(b, ",\"phx_ref_prev\":");
        gw_buf_append_json_str(b, prev, strlen(prev));
    }
    /* meta is a JSON object text "{...}": splice its members after ours. */
    if (meta_len > 2) {
        gw_buf_append(b, ",", 1);
        gw_buf_append(b, meta + 1, meta_len - 1);
    } else {
        gw_buf_append(b, "}", 1);
    }
}

struct presence_old {
    char *ref;  /* owned copy of the previous phx_ref */
    char *meta; /* owned copy of the previous meta */
    char *key;  /* owned copy of the previous key */
};

static void
capture_old(void *ud, const struct fanout_presence *p)
{
    struct presence_old *old = ud;

    old->ref = gw_xstrndup(p->ref, p->ref_len);
    old->meta = gw_xstrndup(p->meta, p->meta_len);
    old->key = gw_xstrndup(p->key, p->key_len);
}

static void
presence_old_release(struct presence_old *old)
{
    free(old->ref);
    free(old->meta);
    free(old->key);
}

static void
publish_push(struct gw *gw, const char *fo_topic, size_t fo_len, struct codec_str topic,
             const char *event, const char *payload, size_t len)
{
    struct gw_buf body;
    struct codec_bus bus = {
        .kind = CODEC_BUS_PUSH,
        .topic = topic,
        .event = cstr(event),
        .json = true,
        .payload = payload,
        .payload_len = len,
    };
    struct fanout_msg *m;

    gw_buf_init(&body);
    codec_bus_encode(&body, &bus);
    m = fanout_msg_new(gw->fo, body.data, body.len, CODEC_BUS_PUSH | 0x10u);
    fanout_publish(gw->fo, fo_topic, fo_len, m, NULL);
    fanout_msg_unref(m);
    gw_buf_release(&body);
}

/* Publishes {"joins":{..},"leaves":{..}} for one key on the channel's presence topic. */
static void
publish_diff(struct channel *ch, const char *join_ref, const char *meta,
             const struct presence_old *old)
{
    struct gw *gw = ch->conn->gw;
    char key[FO_KEY_MAX];
    size_t klen = fo_key(key, 'p', ch->is_private, CH_SUB(ch), CH_SUB_LEN(ch));
    struct gw_buf p;

    gw_buf_init(&p);
    gw_buf_append_str(&p, "{\"joins\":{");
    if (join_ref) {
        gw_buf_append_json_str(&p, chan_presence_key(ch), strlen(chan_presence_key(ch)));
        gw_buf_append_str(&p, ":{\"metas\":[");
        append_meta(&p, join_ref, strlen(join_ref), old ? old->ref : NULL, meta, strlen(meta));
        gw_buf_append_str(&p, "]}");
    }
    gw_buf_append_str(&p, "},\"leaves\":{");
    if (old) {
        gw_buf_append_json_str(&p, old->key, strlen(old->key));
        gw_buf_append_str(&p, ":{\"metas\":[");
        append_meta(&p, old->ref, strlen(old->ref), NULL, old->meta, strlen(old->meta));
        gw_buf_append_str(&p, "]}");
    }
    gw_buf_append_str(&p, "}}");
    publish_push(gw, key, klen, ch_topic(ch), "presence_diff", p.data, p.len);
    gw_buf_release(&p);
}

static void
presence_untrack(struct channel *ch)
{
    struct gw *gw = ch->conn->gw;
    char key[FO_KEY_MAX];
    size_t klen = fo_key(key, 'p', ch->is_private, CH_SUB(ch), CH_SUB_LEN(ch));
    struct presence_old old = { 0 };

    if (!ch->tracked)
        return;
    ch->tracked = false;
    free(ch->track_meta);
    ch->track_meta = NULL;
    if (fanout_presence_del(gw->fo, key, klen, ch, capture_old, &old) == 0)
        publish_diff(ch, NULL, NULL, &old);
    presence_old_release(&old);
}

/* Detaches the channel from every index and frees it. */
static void
chan_remove(struct channel *ch)
{
    struct conn *c = ch->conn;
    struct gw *gw = c->gw;

    fanout_unsubscribe(gw->fo, ch->bsub);
    fanout_unsubscribe(gw->fo, ch->psub);
    ch->bsub = ch->psub = NULL;
    presence_untrack(ch);
    fanout_presence_cancel(gw->fo, ch);
    gw__pg_leave(ch);
    gw__replay_leave(ch);
    json_decref(ch->pg_params);
    for (uint32_t i = 0; i < c->n_chans; i++) {
        if (c->chans[i] == ch) {
            c->chans[i] = c->chans[--c->n_chans];
            break;
        }
    }
    gw->m.channels--;
    auth_identity_unref(ch->id);
    free(ch->topic); /* join_ref lives in the same allocation */
    free(ch->presence_key);
    free(ch->track_meta);
    free(ch);
    recompute_min_exp(c);
}

static void
send_close(struct channel *ch)
{
    push(ch->conn, ch_jr(ch), ch_jr(ch), ch_topic(ch), "phx_close", "{}", 2);
}

/* "system error + phx_close" (PROTOCOL.md 9), then the channel is gone. */
static void
chan_shutdown(struct channel *ch, const char *message)
{
    gw_log(GW_LOG_INFO, "channel_closed", "ip=%s topic=%s reason=\"%s\"", ch->conn->ip, ch->topic,
           message);
    gw__channel_system(ch, "system", "error", message);
    send_close(ch);
    chan_remove(ch);
}

void
gw__channel_close_all(struct conn *c)
{
    while (c->n_chans)
        chan_remove(c->chans[c->n_chans - 1]);
}

void
gw__channel_check_expiry(struct conn *c, int64_t now_s)
{
    for (uint32_t i = c->n_chans; i-- > 0;) {
        struct channel *ch = c->chans[i];
        int64_t exp = auth_identity_exp(ch->id);
        char msg[96];

        if (!exp || exp > now_s || i >= c->n_chans)
            continue;
        snprintf(msg, sizeof msg, "Token has expired %" PRId64 " seconds ago", now_s - exp);
        chan_shutdown(ch, msg);
    }
    recompute_min_exp(c);
}

/* ---- subscriptions ---- */

static void
update_subscriptions(struct channel *ch)
{
    struct gw *gw = ch->conn->gw;
    char key[FO_KEY_MAX];
    size_t klen;
    bool want_b = ch->perms & AUTH_BROADCAST_READ;
    bool want_p = ch->presence && (ch->perms & AUTH_PRESENCE_READ);

    if (want_b && !ch->bsub) {
        klen = fo_key(key, 'b', ch->is_private, CH_SUB(ch), CH_SUB_LEN(ch));
        fanout_subscribe(gw->fo, key, klen, ch, &ch->bsub);
    } else if (!want_b && ch->bsub) {
        fanout_unsubscribe(gw->fo, ch->bsub);
        ch->bsub = NULL;
    }
    if (want_p && !ch->psub) {
        klen = fo_key(key, 'p', ch->is_private, CH_SUB(ch), CH_SUB_LEN(ch));
        fanout_subscribe(gw->fo, key, klen, ch, &ch->psub);
    } else if (!want_p && ch->psub) {
        fanout_unsubscribe(gw->fo, ch->psub);
        ch->psub = NULL;
    }
}

/* ---- presence_state ---- */

/* Builds {key:{"metas":[{"phx_ref":ref,<meta members>},..]},..} from entries. */
static json_t *
presence_json(const struct fanout_presence *e, size_t n)
{
    json_t *state = json_object();

    for (size_t i = 0; i < n; i++) {
        char *k = gw_xstrndup(e[i].key, e[i].key_len);
        json_t *entry = json_object_get(state, k);
        json_t *meta = json_loadb(e[i].meta, e[i].meta_len, 0, NULL);

        if (!json_is_object(meta)) {
            json_decref(meta);
            meta = json_object();
        }
        json_object_set_new(meta, "phx_ref", json_stringn(e[i].ref, e[i].ref_len));
        if (!entry) {
            entry = json_pack("{s:[]}", "metas");
            json_object_set_new(state, k, entry);
        }
        json_array_append_new(json_object_get(entry, "metas"), meta);
        free(k);
    }
    return state;
}

/* The list answer; ud is the channel (chan_remove cancels a pending answer). */
static void
send_state(void *ud, const struct fanout_presence *e, size_t n)
{
    struct channel *ch = ud;
    json_t *state = presence_json(e, n);
    char *text = json_dumps(state, JSON_COMPACT);

    push(ch->conn, ch_jr(ch), null_str, ch_topic(ch), "presence_state", text, strlen(text));
    free(text);
    json_decref(state);
}

static void
send_presence_state(struct channel *ch)
{
    struct gw *gw = ch->conn->gw;
    char key[FO_KEY_MAX];
    size_t klen = fo_key(key, 'p', ch->is_private, CH_SUB(ch), CH_SUB_LEN(ch));

    fanout_presence_list(gw->fo, key, klen, send_state, ch);
}

void
gw__presence_gone(void *ud, const void *topic, size_t topic_len,
                  const struct fanout_presence *entries, size_t n)
{
    struct gw *gw = ud;
    const char *t = topic;
    json_t *diff;
    char *text, wire[FO_KEY_MAX + 16];
    int wlen;

    /* topic = "p:<0|1>:<sub>"; the wire topic is "realtime:<sub>". */
    if (topic_len < 4 || t[0] != 'p' || topic_len - 4 > FO_KEY_MAX)
        return;
    wlen = snprintf(wire, sizeof wire, "realtime:%.*s", (int)(topic_len - 4), t + 4);
    diff = json_pack("{s:{},s:o}", "joins", "leaves", presence_json(entries, n));
    text = json_dumps(diff, JSON_COMPACT);
    publish_push(gw, topic, topic_len, (struct codec_str){ wire, (size_t)wlen }, "presence_diff",
                 text, strlen(text));
    free(text);
    json_decref(diff);
}

/* ---- join ---- */

/* Reads a boolean that may arrive as true/false or "true"/"false"; missing = false. */
static bool
json_flag(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);

    if (json_is_boolean(v))
        return json_is_true(v);
    return json_is_string(v) && strcmp(json_string_value(v), "true") == 0;
}

struct join_req {
    json_t *config;    /* borrowed */
    json_t *broadcast; /* borrowed */
    json_t *presence;  /* borrowed */
    json_t *pg;        /* borrowed: postgres_changes array or NULL */
    const char *token; /* access_token or NULL */
    bool is_private;   /* config.private */
};

static void
join_parse(json_t *payload, struct join_req *r)
{
    json_t *tok = json_object_get(payload, "access_token");

    if (!json_is_string(tok))
        tok = json_object_get(payload, "user_token");
    memset(r, 0, sizeof(*r));
    r->config = json_object_get(payload, "config");
    r->broadcast = json_object_get(r->config, "broadcast");
    r->presence = json_object_get(r->config, "presence");
    r->pg = json_object_get(r->config, "postgres_changes");
    r->is_private = json_flag(r->config, "private");
    r->token = json_is_string(tok) ? json_string_value(tok) : NULL;
    if (r->token && (!*r->token || strncmp(r->token, "sb_", 3) == 0))
        r->token = NULL;
}

/* Sends a join error after the configured delay. */
static void
join_fail(struct conn *c, struct codec_msg *m, const char *reason, bool close_after)
{
    struct gw_buf resp, *b = &c->gw->scratch;
    struct fanout_frame *f;

    c->gw->m.join_errors_total++;
    gw_log(GW_LOG_INFO, "join_refused", "ip=%s reason=\"%s\"", c->ip, reason);
    gw_buf_init(&resp);
    gw_buf_append_str(&resp, "{\"reason\":");
    gw_buf_append_json_str(&resp, reason, strlen(reason));
    gw_buf_append_str(&resp, "}");
    gw_buf_reset(b);
    codec_encode_reply(b, c->vsn, m->join_ref, m->ref, m->topic, "error",
                       (struct codec_str){ resp.data, resp.len });
    f = gw__frame_new(b->data, b->len, false);
    gw__conn_send_later(c, f, (uint32_t)c->gw->conf->join_error_delay_ms, close_after);
    fanout_frame_unref(f);
    gw_buf_release(&resp);
}

/* Resolves the channel identity; on failure writes the join error reason. */
static struct auth_identity *
join_identity(struct conn *c, const struct join_req *r, uint64_t *hash, char *reason, size_t cap)
{
    struct auth_identity *id = NULL;
    struct auth_failure why;
    char msg[128];

    *hash = 0;
    if (!r->token)
        return auth_identity_ref(c->id);
    if (auth_verify(c->gw->auth, r->token, strlen(r->token), (int64_t)(gw_wall_ms() / 1000), &id,
                    &why) == 0) {
        *hash = gw_hash64(r->token, strlen(r->token));
        return id;
    }
    c->gw->m.auth_failures_total++;
    auth_failure_message(&why, msg, sizeof msg);
    snprintf(reason, cap, "%s: %s", auth_failure_code(&why), msg);
    return NULL;
}

/* Echoes the postgres_changes bindings with ids; returns the response JSON (malloc'd). */
static char *
join_response(json_t *pg, size_t *n_bindings)
{
    json_t *resp = json_object();
    json_t *arr = json_array();
    size_t i;
    json_t *v;
    char *text;

    *n_bindings = 0;
    json_array_foreach(pg, i, v) {
        json_t *copy;

        if (!json_is_object(v))
            continue;
        copy = json_deep_copy(v);
        json_object_set_new(copy, "id", json_integer((json_int_t)gw__pg_binding_id(v)));
        json_array_append_new(arr, copy);
        (*n_bindings)++;
    }
    json_object_set_new(resp, "postgres_changes", arr);
    text = json_dumps(resp, JSON_COMPACT);
    json_decref(resp);
    return text;
}

/* The presence key the client gave, or NULL: chan_presence_key() makes one when needed. */
static char *
presence_key_new(json_t *presence)
{
    json_t *k = json_object_get(presence, "key");

    if (json_is_string(k) && json_string_length(k) > 0)
        return gw_xstrdup(json_string_value(k));
    return NULL;
}

static struct channel *
chan_new(struct conn *c, struct codec_msg *m, const struct join_req *r, struct auth_identity *id,
         uint64_t token_hash, unsigned perms)
{
    struct channel *ch = gw_xcalloc(1, sizeof(*ch));
    const char *jr = m->join_ref.p ? m->join_ref.p : (m->ref.p ? m->ref.p : "");
    size_t jr_len = m->join_ref.p ? m->join_ref.n : (m->ref.p ? m->ref.n : 0);

    ch->conn = c;
    /* One allocation holds the topic and the join ref (memory per idle socket). */
    ch->topic = gw_xmalloc(m->topic.n + 1 + jr_len + 1);
    memcpy(ch->topic, m->topic.p, m->topic.n);
    ch->topic[m->topic.n] = '\0';
    ch->join_ref = ch->topic + m->topic.n + 1;
    memcpy(ch->join_ref, jr, jr_len);
    ch->join_ref[jr_len] = '\0';
    ch->topic_len = m->topic.n;
    ch->id = id;
    ch->token_hash = token_hash;
    ch->perms = perms;
    ch->is_private = r->is_private;
    ch->self = json_flag(r->broadcast, "self");
    ch->ack = json_flag(r->broadcast, "ack");
    ch->presence = json_flag(r->presence, "enabled");
    ch->presence_key = presence_key_new(r->presence);
    if (c->n_chans == c->cap_chans) { /* the first channel lives in c->chan_inline */
        struct channel **a = gw_xmalloc(c->cap_chans * 2 * sizeof(*a));

        memcpy(a, c->chans, c->n_chans * sizeof(*a));
        if (c->chans != &c->chan_inline)
            free(c->chans);
        c->chans = a;
        c->cap_chans *= 2;
    }
    c->chans[c->n_chans++] = ch;
    c->gw->m.channels++;
    c->gw->m.joins_total++;
    return ch;
}

/* Checks that do not need the identity; returns the refusal reason or NULL. */
static const char *
join_precheck(struct conn *c, struct codec_msg *m, const struct join_req *r, char *buf, size_t cap,
              bool *close_after)
{
    const struct conf *cf = c->gw->conf;

    *close_after = false;
    if (!gw_bucket_take(&c->join_bucket, cf->max_joins_per_second, cf->max_joins_per_second,
                        gw_now_ms())) {
        c->gw->m.rate_limited_total++;
        *close_after = true;
        return "ClientJoinRateLimitReached: Too many joins per second";
    }
    if (m->topic.n == TOPIC_PREFIX_LEN)
        return "TopicNameRequired: You must provide a topic name";
    if (m->topic.n > (size_t)cf->max_topic_bytes) {
        snprintf(buf, cap, "TopicNameTooLong: Topic names are limited to %d bytes",
                 cf->max_topic_bytes);
        return buf;
    }
    if (cf->private_only && !r->is_private)
        return "PrivateOnly: This project only allows private channels";
    if (json_object_get(r->broadcast, "replay") && !r->is_private)
        return "UnableToReplayMessages: Replay is not allowed for public channels";
    return NULL;
}

static void
join_ok(struct channel *ch, struct codec_msg *m, json_t *pg)
{
    struct conn *c = ch->conn;
    size_t n_bindings;
    char *resp = join_response(pg, &n_bindings);
    json_t *replay;

    reply(c, m->join_ref, m->ref, m->topic, "ok", resp);
    free(resp);
    if (ch->presence && (ch->perms & AUTH_PRESENCE_READ))
        send_presence_state(ch);
    replay = json_object_get(json_object_get(json_object_get(m->payload, "config"), "broadcast"),
                             "replay");
    if (replay) {
        char key[FO_KEY_MAX];

        gw__replay_join(ch, replay, key,
                        fo_key(key, 'b', ch->is_private, CH_SUB(ch), CH_SUB_LEN(ch)));
    }
    if (n_bindings) {
        ch->pg_params = json_incref(pg);
        gw__pg_join(ch, pg);
    }
}

static void
join(struct conn *c, struct codec_msg *m)
{
    struct join_req r;
    struct channel *old, *ch;
    struct auth_identity *id;
    uint64_t hash;
    unsigned perms;
    char buf[512];
    const char *reason;
    bool close_after;

    join_parse(m->payload, &r);
    reason = join_precheck(c, m, &r, buf, sizeof buf, &close_after);
    if (reason) {
        join_fail(c, m, reason, close_after);
        return;
    }
    old = chan_find(c, m->topic);
    if (old) {
        send_close(old);
        chan_remove(old);
    }
    if (c->n_chans >= (uint32_t)c->gw->conf->max_channels_per_socket) {
        c->gw->m.rate_limited_total++;
        join_fail(c, m, "ChannelRateLimitReached: Too many channels", false);
        return;
    }
    id = join_identity(c, &r, &hash, buf, sizeof buf);
    if (!id) {
        join_fail(c, m, buf, false);
        return;
    }
    if (!gw__climit_take(c->gw, GW_CLIMIT_JOINS, id, c->ip)) {
        auth_identity_unref(id);
        c->gw->m.rate_limited_total++;
        join_fail(c, m, "ClientJoinRateLimitReached: Too many joins per second", true);
        return;
    }
    perms = auth_rules_eval(c->gw->rules, id, r.is_private, m->topic.p + TOPIC_PREFIX_LEN,
                            m->topic.n - TOPIC_PREFIX_LEN);
    if (!(perms & AUTH_JOIN)) {
        snprintf(buf, sizeof buf,
                 "Unauthorized: You do not have permissions to read from this Channel topic: "
                 "%.*s",
                 (int)(m->topic.n - TOPIC_PREFIX_LEN), m->topic.p + TOPIC_PREFIX_LEN);
        auth_identity_unref(id);
        join_fail(c, m, buf, false);
        return;
    }
    ch = chan_new(c, m, &r, id, hash, perms);
    update_subscriptions(ch);
    recompute_min_exp(c);
    join_ok(ch, m, r.pg);
}

/* ---- broadcast ---- */

int
gw__broadcast_publish(struct gw *gw, bool is_private, const char *sub, size_t sub_len,
                      struct codec_str event, struct codec_str meta, bool json, const void *payload,
                      size_t len, const struct channel *exclude)
{
    char key[FO_KEY_MAX], topic[TOPIC_PREFIX_LEN + 256];
    size_t klen = fo_key(key, 'b', is_private, sub, sub_len);
    struct gw_buf body;
    struct codec_bus bus = { .kind = CODEC_BUS_BROADCAST,
                             .event = event,
                             .meta = meta,
                             .json = json,
                             .payload = payload,
                             .payload_len = len };
    struct fanout_msg *m;
    struct timespec ts0, ts1;
    int n;

    memcpy(topic, TOPIC_PREFIX, TOPIC_PREFIX_LEN);
    memcpy(topic + TOPIC_PREFIX_LEN, sub, sub_len);
    bus.topic = (struct codec_str){ topic, TOPIC_PREFIX_LEN + sub_len };
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    gw_buf_init(&body);
    codec_bus_encode(&body, &bus);
    if (is_private)
        gw__replay_store(gw, key, klen, &bus, body.data, body.len);
    m = fanout_msg_new(gw->fo, body.data, body.len, CODEC_BUS_BROADCAST | (json ? 0x10u : 0));
    n = fanout_publish(gw->fo, key, klen, m, exclude);
    fanout_msg_unref(m);
    gw_buf_release(&body);
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    gw->m.broadcasts_total++;
    gw__metrics_observe(&gw->m, (double)(ts1.tv_sec - ts0.tv_sec) +
                                    (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e9);
    return n;
}

/* A private broadcast sent with {"persist":true} gets an id (meta {"id":..}) so that it is
 * stored for replay; otherwise meta stays empty. */
static void
persist_meta(struct channel *ch, const struct codec_msg *m, char *meta, size_t cap)
{
    json_t *j;
    char id[40];

    meta[0] = '\0';
    if (!ch->is_private || !m->bc_meta.p || m->bc_meta.n == 0)
        return;
    j = json_loadb(m->bc_meta.p, m->bc_meta.n, 0, NULL);
    if (json_is_true(json_object_get(j, "persist"))) {
        gw__replay_new_id(ch->conn->gw, id);
        snprintf(meta, cap, "{\"id\":\"%s\"}", id);
    }
    json_decref(j);
}

static void
broadcast(struct channel *ch, struct codec_msg *m)
{
    struct conn *c = ch->conn;
    char meta[64];
    const struct conf *cf = c->gw->conf;

    if (!gw_bucket_take(&c->event_bucket, cf->max_events_per_second, cf->max_events_per_second,
                        gw_now_ms()) ||
        !gw__climit_take(c->gw, GW_CLIMIT_MESSAGES, ch->id ? ch->id : c->id, c->ip)) {
        c->gw->m.rate_limited_total++;
        chan_shutdown(ch, "Too many messages per second");
        return;
    }
    if (m->bc_payload_len > (size_t)cf->max_payload_bytes) {
        if (ch->ack)
            reply_error(c, m->join_ref, m->ref, m->topic, "payload_size_exceeded");
        return;
    }
    if (!(ch->perms & AUTH_BROADCAST_WRITE)) {
        if (ch->ack)
            reply_error(c, m->join_ref, m->ref, m->topic,
                        "Unauthorized: You do not have permissions to write to this Channel topic");
        return;
    }
    persist_meta(ch, m, meta, sizeof meta);
    gw__broadcast_publish(c->gw, ch->is_private, CH_SUB(ch), CH_SUB_LEN(ch), m->bc_event,
                          cstr(meta), m->bc_json, m->bc_payload, m->bc_payload_len,
                          ch->self ? NULL : ch);
    if (ch->ack)
        reply(c, m->join_ref, m->ref, m->topic, "ok", "{}");
}

/* ---- presence ---- */

static void
presence_track(struct channel *ch, struct codec_msg *m, json_t *payload)
{
    struct gw *gw = ch->conn->gw;
    char key[FO_KEY_MAX], ref[24];
    size_t klen = fo_key(key, 'p', ch->is_private, CH_SUB(ch), CH_SUB_LEN(ch));
    char *meta = payload ? json_dumps(payload, JSON_COMPACT) : gw_xstrdup("{}");
    struct presence_old old = { 0 };
    struct fanout_presence p;

    if (strlen(meta) > (size_t)gw->conf->max_payload_bytes) {
        free(meta);
        chan_shutdown(ch, "Track message size exceeded");
        return;
    }
    reply(ch->conn, m->join_ref, m->ref, m->topic, "ok", "{}");
    if (ch->tracked && strcmp(ch->track_meta, meta) == 0) {
        free(meta);
        return;
    }
    gw->ref_seq++;
    snprintf(ref, sizeof ref, "F%" PRIx64, (gw->ref_salt << 20) ^ gw->ref_seq);
    p = (struct fanout_presence){
        chan_presence_key(ch), strlen(chan_presence_key(ch)), ref, strlen(ref), meta, strlen(meta)
    };
    if (!ch->presence) {
        ch->presence = true;
        update_subscriptions(ch);
    }
    fanout_presence_set(gw->fo, key, klen, ch, &p, capture_old, &old);
    ch->tracked = true;
    free(ch->track_meta);
    ch->track_meta = meta;
    publish_diff(ch, ref, meta, old.ref ? &old : NULL);
    presence_old_release(&old);
}

static void
presence(struct channel *ch, struct codec_msg *m)
{
    struct conn *c = ch->conn;
    const struct conf *cf = c->gw->conf;
    const char *ev = json_string_value(json_object_get(m->payload, "event"));
    json_t *payload = json_object_get(m->payload, "payload");
    uint64_t now = gw_now_ms();

    if (!ev || (strcasecmp(ev, "track") && strcasecmp(ev, "untrack"))) {
        reply_error(c, m->join_ref, m->ref, m->topic, "unknown presence event");
        return;
    }
    if (!gw_window_take(&ch->presence_calls, (uint32_t)cf->max_presence_calls,
                        (uint64_t)cf->presence_calls_window * 1000u, now)) {
        c->gw->m.rate_limited_total++;
        chan_shutdown(ch, "Client presence rate limit exceeded");
        return;
    }
    if (!gw_bucket_take(&c->gw->presence_bucket, cf->max_presence_events_per_second,
                        cf->max_presence_events_per_second, now)) {
        c->gw->m.rate_limited_total++;
        chan_shutdown(ch, "Too many presence messages per second");
        return;
    }
    if (!(ch->perms & AUTH_PRESENCE_WRITE)) {
        reply_error(c, m->join_ref, m->ref, m->topic,
                    "Unauthorized: You do not have permissions to track presence on this "
                    "Channel topic");
        return;
    }
    if (strcasecmp(ev, "untrack") == 0) {
        reply(c, m->join_ref, m->ref, m->topic, "ok", "{}");
        presence_untrack(ch);
        return;
    }
    if (payload && !json_is_object(payload)) {
        reply_error(c, m->join_ref, m->ref, m->topic, "Presence track payload must be a map");
        return;
    }
    presence_track(ch, m, payload);
}

/* ---- token refresh ---- */

static void
refresh(struct channel *ch, struct codec_msg *m)
{
    struct conn *c = ch->conn;
    const char *tok = json_string_value(json_object_get(m->payload, "access_token"));
    struct auth_identity *id = NULL;
    struct auth_failure why;
    char msg[512];
    uint64_t h;
    unsigned perms;

    if (!tok || !*tok || strncmp(tok, "sb_", 3) == 0)
        return;
    h = gw_hash64(tok, strlen(tok));
    if (h == ch->token_hash)
        return;
    if (auth_verify(c->gw->auth, tok, strlen(tok), (int64_t)(gw_wall_ms() / 1000), &id, &why)) {
        c->gw->m.auth_failures_total++;
        auth_failure_message(&why, msg, sizeof msg);
        chan_shutdown(ch, msg);
        return;
    }
    perms = auth_rules_eval(c->gw->rules, id, ch->is_private, CH_SUB(ch), CH_SUB_LEN(ch));
    if (!(perms & AUTH_JOIN)) {
        snprintf(msg, sizeof msg,
                 "You no longer have permission to read from this Channel topic: %.*s",
                 (int)CH_SUB_LEN(ch), CH_SUB(ch));
        auth_identity_unref(id);
        chan_shutdown(ch, msg);
        return;
    }
    auth_identity_unref(ch->id);
    ch->id = id;
    ch->token_hash = h;
    ch->perms = perms;
    update_subscriptions(ch);
    recompute_min_exp(c);
    if (ch->pg_params)
        gw__pg_rebind(ch, ch->pg_params);
}

/* ---- dispatch ---- */

static void
leave(struct conn *c, struct channel *ch, struct codec_msg *m)
{
    reply(c, m->join_ref, m->ref, m->topic, "ok", "{}");
    if (ch) {
        send_close(ch);
        chan_remove(ch);
    }
}

static void
phoenix(struct conn *c, struct codec_msg *m)
{
    if (str_eq(m->event, "heartbeat"))
        reply(c, null_str, m->ref, m->topic, "ok", "{}");
    else
        reply_error(c, null_str, m->ref, m->topic, "unknown event");
}

static void
channel_event(struct conn *c, struct channel *ch, struct codec_msg *m)
{
    struct gw_buf scratch;
    char reason[160];

    if (m->is_broadcast) {
        broadcast(ch, m);
    } else if (str_eq(m->event, "broadcast")) {
        gw_buf_init(&scratch);
        if (codec_broadcast_from_json(m, &scratch) == 0)
            broadcast(ch, m);
        else
            reply_error(c, m->join_ref, m->ref, m->topic, "broadcast needs a string event");
        gw_buf_release(&scratch);
    } else if (str_eq(m->event, "presence")) {
        presence(ch, m);
    } else if (str_eq(m->event, "access_token")) {
        refresh(ch, m);
    } else if (str_eq(m->event, "phx_leave")) {
        leave(c, ch, m);
    } else {
        c->gw->m.protocol_errors_total++;
        snprintf(reason, sizeof reason, "unknown event '%.*s'",
                 (int)(m->event.n > 64 ? 64 : m->event.n), m->event.p);
        reply_error(c, m->join_ref, m->ref, m->topic, reason);
    }
}

void
gw__channel_dispatch(struct conn *c, struct codec_msg *m)
{
    struct channel *ch;

    if (str_eq(m->topic, "phoenix")) {
        phoenix(c, m);
        return;
    }
    if (str_eq(m->event, "phx_join") && !m->is_broadcast) {
        if (m->topic.n < TOPIC_PREFIX_LEN || memcmp(m->topic.p, TOPIC_PREFIX, TOPIC_PREFIX_LEN))
            reply_error(c, null_str, m->ref, m->topic, "unmatched topic");
        else
            join(c, m);
        return;
    }
    ch = chan_find(c, m->topic);
    if (ch) {
        channel_event(c, ch, m);
    } else if (str_eq(m->event, "phx_leave")) {
        leave(c, NULL, m);
    } else {
        c->gw->m.protocol_errors_total++;
        reply_error(c, null_str, m->ref, m->topic, "unmatched topic");
    }
}
