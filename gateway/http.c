/*
 * http.c: the HTTP side of the gateway on the WebSocket port: the REST broadcast endpoints
 * (PROTOCOL.md 6.3, 6.4), /healthz, /readyz, /metrics and the static demo under /demo/.
 *
 * GET requests are answered in LWS_CALLBACK_HTTP. A POST is routed and authenticated there,
 * its body collected (bounded by max_rest_body_bytes) and answered on BODY_COMPLETION.
 * Every JSON error has the shape the reference server uses ({"message": ...} for REST,
 * {"error": ...} elsewhere).
 */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "gateway/gateway_int.h"

enum route {
    ROUTE_BATCH = 1,  /* POST /realtime/v1/api/broadcast */
    ROUTE_SINGLE = 2, /* POST /realtime/v1/api/broadcast/:topic/events/:event */
};

struct http_req {
    enum route route;         /* which POST endpoint */
    struct auth_identity *id; /* caller, verified from Bearer or apikey */
    struct gw_buf body;       /* collected body */
    bool too_big;             /* body exceeded max_rest_body_bytes */
    bool is_private;          /* single: ?private=true */
    bool raw;                 /* single: body is application/octet-stream */
    bool persist;             /* single: ?persist=true or persist[ttl]=: store for replay */
    char *topic;              /* single: subtopic (owned) */
    char *event;              /* single: event (owned) */
};

#define API_PREFIX "/realtime/v1/api/broadcast"

int
gw__http_send(struct lws *wsi, unsigned status, const char *content_type, const char *body,
              size_t len)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start;
    unsigned char *end = hdr + sizeof hdr - 1;
    unsigned char *out;
    int rc = 0;

    if (lws_add_http_common_headers(wsi, status, content_type, len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"access-control-allow-origin:",
                                    (const unsigned char *)"*", 1, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (len) {
        out = gw_xmalloc(LWS_PRE + len);
        memcpy(out + LWS_PRE, body, len);
        if (lws_write(wsi, out + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) < (int)len)
            rc = -1;
        free(out);
    }
    if (rc || lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

static int
send_json_msg(struct lws *wsi, unsigned status, const char *key, const char *msg)
{
    struct gw_buf b;
    int rc;

    gw_buf_init(&b);
    gw_buf_printf(&b, "{\"%s\":", key);
    gw_buf_append_json_str(&b, msg, strlen(msg));
    gw_buf_append_str(&b, "}");
    rc = gw__http_send(wsi, status, "application/json", b.data, b.len);
    gw_buf_release(&b);
    return rc;
}

static int
cors_preflight(struct lws *wsi)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start;
    unsigned char *end = hdr + sizeof hdr - 1;
    static const char *const h[][2] = {
        { "access-control-allow-origin:", "*" },
        { "access-control-allow-methods:", "GET, POST, OPTIONS" },
        { "access-control-allow-headers:",
          "apikey, authorization, content-type, x-client-info, x-api-key" },
        { "access-control-max-age:", "86400" },
    };

    if (lws_add_http_header_status(wsi, 204, &p, end))
        return -1;
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)h[i][0],
                                        (const unsigned char *)h[i][1], (int)strlen(h[i][1]), &p,
                                        end))
            return -1;
    }
    if (lws_add_http_header_content_length(wsi, 0, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

const char *
gw__urlarg(struct lws *wsi, const char *name, char *buf, int len)
{
    /* lws stops at the first argument that does not fit its buffer, so read with one as
     * large as the whole query string, then copy the value out. */
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    char *tmp;
    const char *v;
    size_t n = strlen(name);
    const char *res = NULL;

    if (total <= 0 || len <= 0)
        return NULL;
    tmp = gw_xmalloc((size_t)total + 16);
    v = lws_get_urlarg_by_name(wsi, name, tmp, total + 16);
    /* Depending on the lws version the result points at the value or at "name=value". */
    if (v && strncmp(v, name, n) == 0)
        v += n;
    if (v && strlen(v) < (size_t)len) {
        memcpy(buf, v, strlen(v) + 1);
        res = buf;
    }
    free(tmp);
    return res;
}

/* ---- GET endpoints ---- */

static int
get_metrics(struct gw *gw, struct lws *wsi)
{
    struct gw_buf b;
    int rc;

    gw_buf_init(&b);
    gw__metrics_render(gw, &b);
    rc = gw__http_send(wsi, 200, "text/plain; version=0.0.4", b.data, b.len);
    gw_buf_release(&b);
    return rc;
}

static const char *
mime_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const char *const map[][2] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".json", "application/json" },
        { ".svg", "image/svg+xml" },
        { ".png", "image/png" },
        { ".ico", "image/x-icon" },
    };

    for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(dot, map[i][0]) == 0)
            return map[i][1];
    }
    return "application/octet-stream";
}

/* Serves /demo/<name>: one flat directory, names of [A-Za-z0-9._-] not starting with '.'. */
static int
get_demo(struct gw *gw, struct lws *wsi, const char *name)
{
    char path[4096];
    struct stat st;

    if (!*gw->conf->demo_dir)
        return send_json_msg(wsi, 404, "error", "Not found");
    if (!*name)
        name = "index.html";
    if (name[0] == '.')
        return send_json_msg(wsi, 404, "error", "Not found");
    for (const char *p = name; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            return send_json_msg(wsi, 404, "error", "Not found");
    }
    snprintf(path, sizeof path, "%s/%s", gw->conf->demo_dir, name);
    /* "/demo/kpis" serves kpis.html. */
    if (!strchr(name, '.') && strlen(path) + 6 < sizeof path)
        strcat(path, ".html");
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return send_json_msg(wsi, 404, "error", "Not found");
    if (lws_serve_http_file(wsi, path, mime_of(path), NULL, 0) < 0)
        return -1;
    return 0;
}

/* 200 when every configured backend is ready; 503 says which one is not and why. */
static int
get_ready(struct gw *gw, struct lws *wsi)
{
    bool pg_ready, redis_ready;
    const char *pg = gw__pg_status(gw->pg, &pg_ready);
    const char *redis = fanout_redis_status(gw->fo, &redis_ready);
    bool ready = pg_ready && redis_ready && !gw->stopping;
    struct gw_buf b;
    int rc;

    gw_buf_init(&b);
    gw_buf_printf(&b, "{\"status\":\"%s\",\"postgres\":",
                  gw->stopping ? "stopping"
                  : ready      ? "ready"
                               : "degraded");
    gw_buf_append_json_str(&b, pg, strlen(pg));
    gw_buf_append_str(&b, ",\"redis\":");
    gw_buf_append_json_str(&b, redis, strlen(redis));
    gw_buf_append_str(&b, "}");
    rc = gw__http_send(wsi, ready ? 200 : 503, "application/json", b.data, b.len);
    gw_buf_release(&b);
    return rc;
}

/* Compares in time independent of the contents (the length may leak). */
static bool
secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;

    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return d == 0;
}

/* True when the Bearer token is admin_secret or a valid token of role admin/super_admin. */
static bool
admin_allowed(struct gw *gw, struct lws *wsi)
{
    char buf[8192];
    const char *tok, *role;
    struct auth_identity *id = NULL;
    struct auth_failure why;
    bool ok;

    if (lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_AUTHORIZATION) <= 7 ||
        strncasecmp(buf, "Bearer ", 7) != 0)
        return false;
    tok = buf + 7;
    if (*gw->conf->admin_secret && secret_equal(tok, gw->conf->admin_secret))
        return true;
    if (auth_verify(gw->auth, tok, strlen(tok), (int64_t)(gw_wall_ms() / 1000), &id, &why)) {
        gw->m.auth_failures_total++;
        return false;
    }
    role = auth_identity_role(id);
    ok = strcmp(role, "admin") == 0 || strcmp(role, "super_admin") == 0;
    auth_identity_unref(id);
    return ok;
}

static int
get_admin_stats(struct gw *gw, struct lws *wsi)
{
    const char *text;

    if (!admin_allowed(gw, wsi))
        return send_json_msg(wsi, 401, "message", "Unauthorized");
    text = gw__stats_json(gw);
    if (!text)
        return send_json_msg(wsi, 500, "message", "Internal error");
    return gw__http_send(wsi, 200, "application/json", text, strlen(text));
}

static int
get_route(struct gw *gw, struct lws *wsi, const char *path)
{
    if (strcmp(path, "/admin/stats") == 0)
        return get_admin_stats(gw, wsi);
    if (strcmp(path, "/healthz") == 0)
        return gw__http_send(wsi, 200, "application/json", "{\"status\":\"ok\"}", 15);
    if (strcmp(path, "/readyz") == 0)
        return get_ready(gw, wsi);
    if (strcmp(path, "/metrics") == 0)
        return get_metrics(gw, wsi);
    if (strcmp(path, "/demo") == 0 || strcmp(path, "/demo/") == 0)
        return get_demo(gw, wsi, "");
    if (strncmp(path, "/demo/", 6) == 0)
        return get_demo(gw, wsi, path + 6);
    return send_json_msg(wsi, 404, "error", "Not found");
}

/* ---- POST endpoints ---- */

/* Percent-decodes s in place. */
static void
urldecode(char *s)
{
    char *w = s;

    for (char *r = s; *r; r++) {
        if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2])) {
            char hex[3] = { r[1], r[2], 0 };

            *w++ = (char)strtol(hex, NULL, 16);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* Parses "/<topic>/events/<event>" after the API prefix. */
static bool
parse_single(const char *rest, struct http_req *req)
{
    const char *mid = strstr(rest, "/events/");

    if (rest[0] != '/' || !mid || mid == rest + 1 || !mid[8])
        return false;
    req->topic = gw_xstrndup(rest + 1, (size_t)(mid - rest - 1));
    req->event = gw_xstrdup(mid + 8);
    if (strchr(req->event, '/'))
        return false;
    urldecode(req->topic);
    urldecode(req->event);
    return true;
}

/* Authenticates a REST caller: Bearer token first, then the apikey header or query. */
static struct auth_identity *
rest_identity(struct gw *gw, struct lws *wsi)
{
    char buf[8192];
    const char *tok = NULL, *q;
    struct auth_identity *id = NULL;
    struct auth_failure why;

    if (lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_AUTHORIZATION) > 7 &&
        strncasecmp(buf, "Bearer ", 7) == 0)
        tok = buf + 7;
    else if (lws_hdr_custom_length(wsi, "apikey:", 7) > 0 &&
             lws_hdr_custom_copy(wsi, buf, sizeof buf, "apikey:", 7) > 0)
        tok = buf;
    else if ((q = gw__urlarg(wsi, "apikey=", buf, sizeof buf)))
        tok = q;
    if (!tok)
        return NULL;
    if (auth_verify(gw->auth, tok, strlen(tok), (int64_t)(gw_wall_ms() / 1000), &id, &why))
        gw->m.auth_failures_total++;
    return id;
}

static bool
query_true(struct lws *wsi, const char *name)
{
    char buf[64];
    const char *v = gw__urlarg(wsi, name, buf, sizeof buf);

    return v && strcmp(v, "true") == 0;
}

/* Answers a POST before its body was read, then closes: the body must not be parsed as
 * the next request of a keep-alive connection. */
static int
reject(struct lws *wsi, unsigned status, const char *msg)
{
    send_json_msg(wsi, status, status == 404 ? "error" : "message", msg);
    return -1;
}

static bool
query_present(struct lws *wsi, const char *name)
{
    char buf[64];

    return gw__urlarg(wsi, name, buf, sizeof buf) != NULL;
}

static int
post_start(struct gw *gw, struct lws *wsi, const char *path, void **state)
{
    struct http_req *req;
    char clen[32], ctype[128];
    const char *rest;

    if (strncmp(path, API_PREFIX, strlen(API_PREFIX)) != 0)
        return reject(wsi, 404, "Not found");
    gw->m.rest_requests_total++;
    /* lws 4.1 cannot tell where a chunked request body ends: insist on a length. */
    if (lws_hdr_copy(wsi, clen, sizeof clen, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return reject(wsi, 411, "Content-Length required");
    if (strtoll(clen, NULL, 10) > gw->conf->max_rest_body_bytes)
        return reject(wsi, 413, "Request body too large");
    req = gw_xcalloc(1, sizeof(*req));
    *state = req;
    gw_buf_init(&req->body);
    rest = path + strlen(API_PREFIX);
    if (!*rest || strcmp(rest, "/") == 0) {
        req->route = ROUTE_BATCH;
    } else if (parse_single(rest, req)) {
        req->route = ROUTE_SINGLE;
        req->is_private = query_true(wsi, "private=");
        req->persist = query_true(wsi, "persist=") || query_present(wsi, "persist[ttl]=");
        req->raw = lws_hdr_copy(wsi, ctype, sizeof ctype, WSI_TOKEN_HTTP_CONTENT_TYPE) > 0 &&
                   strncmp(ctype, "application/octet-stream", 24) == 0;
    } else {
        return reject(wsi, 404, "Not found");
    }
    req->id = rest_identity(gw, wsi);
    if (!req->id)
        return reject(wsi, 401, "Unauthorized");
    return 0;
}

int
gw__http_request(struct gw *gw, struct lws *wsi, const char *path, void **state)
{
    gw__http_state_free(*state);
    *state = NULL;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0)
        return cors_preflight(wsi);
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0)
        return post_start(gw, wsi, path, state);
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
        return get_route(gw, wsi, path);
    return send_json_msg(wsi, 405, "error", "Method not allowed");
}

int
gw__http_body(struct gw *gw, struct lws *wsi, void *state, const void *in, size_t len)
{
    struct http_req *req = state;

    (void)wsi;
    if (!req || req->too_big)
        return 0;
    if (req->body.len + len > (size_t)gw->conf->max_rest_body_bytes) {
        req->too_big = true;
        gw_buf_release(&req->body);
        return 0;
    }
    gw_buf_append(&req->body, in, len);
    return 0;
}

static bool
may_write(struct gw *gw, const struct auth_identity *id, bool is_private, const char *sub,
          size_t len)
{
    return auth_rules_eval(gw->rules, id, is_private, sub, len) & AUTH_BROADCAST_WRITE;
}

/* Validates a batch; returns NULL when fine or the HTTP status + message to answer. */
static const char *
batch_check(struct gw *gw, json_t *msgs, unsigned *status)
{
    size_t i;
    json_t *m;

    *status = 422;
    if (!json_is_array(msgs))
        return "messages must be an array";
    if (json_array_size(msgs) > (size_t)gw->conf->max_rest_batch) {
        *status = 429;
        return "Too many messages to broadcast, please reduce the batch size";
    }
    json_array_foreach(msgs, i, m) {
        json_t *topic = json_object_get(m, "topic"), *event = json_object_get(m, "event");
        json_t *payload = json_object_get(m, "payload");
        size_t plen;

        if (!json_is_string(topic) || !json_is_string(event) || !json_string_length(topic) ||
            !json_string_length(event) || json_string_length(topic) > 255 ||
            json_string_length(event) > 255)
            return "each message needs a topic and an event (non-empty strings)";
        plen = payload ? json_dumpb(payload, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) : 2;
        if (plen > (size_t)gw->conf->max_payload_bytes)
            return "Payload size exceeds tenant limit";
    }
    return NULL;
}

/* The cluster message limit of a request of n messages: false (counted) when the caller
 * is blocked; else one token per message is taken (climit.c). */
static bool
rest_climit(struct gw *gw, struct lws *wsi, const struct http_req *req, size_t n)
{
    char ip[48];

    lws_get_peer_simple(wsi, ip, sizeof ip);
    if (!gw__climit_take(gw, GW_CLIMIT_MESSAGES, req->id, ip)) {
        gw->m.rate_limited_total++;
        return false;
    }
    for (size_t i = 1; i < n; i++)
        gw__climit_take(gw, GW_CLIMIT_MESSAGES, req->id, ip);
    return true;
}

static void
batch_publish_one(struct gw *gw, const struct auth_identity *id, json_t *m)
{
    const char *sub = json_string_value(json_object_get(m, "topic"));
    const char *event = json_string_value(json_object_get(m, "event"));
    json_t *payload = json_object_get(m, "payload"), *idv = json_object_get(m, "id");
    bool is_private = json_is_true(json_object_get(m, "private"));
    char *text, *meta = NULL;
    struct codec_str meta_s = { NULL, 0 };

    if (!may_write(gw, id, is_private, sub, strlen(sub)))
        return;
    text = payload ? json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY) : gw_xstrdup("{}");
    if (json_is_string(idv) || json_is_integer(idv)) {
        json_t *mo = json_pack("{s:O}", "id", idv);

        meta = json_dumps(mo, JSON_COMPACT);
        json_decref(mo);
        meta_s = (struct codec_str){ meta, strlen(meta) };
    }
    gw__broadcast_publish(gw, is_private, sub, strlen(sub),
                          (struct codec_str){ event, strlen(event) }, meta_s, true, text,
                          strlen(text), NULL);
    free(text);
    free(meta);
}

static int
post_batch(struct gw *gw, struct lws *wsi, struct http_req *req)
{
    json_t *root = json_loadb(req->body.data ? req->body.data : "", req->body.len, 0, NULL);
    const char *problem;
    unsigned status;
    size_t i;
    json_t *m;
    int rc;

    if (!root)
        return send_json_msg(wsi, 400, "message", "Invalid JSON body");
    problem = batch_check(gw, json_object_get(root, "messages"), &status);
    if (problem) {
        rc = send_json_msg(wsi, status, "message", problem);
        json_decref(root);
        return rc;
    }
    if (!rest_climit(gw, wsi, req, json_array_size(json_object_get(root, "messages")))) {
        json_decref(root);
        return send_json_msg(wsi, 429, "message", "You have exceeded your rate limit");
    }
    json_array_foreach(json_object_get(root, "messages"), i, m) {
        batch_publish_one(gw, req->id, m);
    }
    json_decref(root);
    return gw__http_send(wsi, 202, "application/json", NULL, 0);
}

static int
post_single(struct gw *gw, struct lws *wsi, struct http_req *req)
{
    const char *data = req->body.data ? req->body.data : "";
    size_t len = req->body.len;
    char meta[64] = "";
    json_t *check;

    if (strlen(req->topic) > 255 || strlen(req->event) > 255)
        return send_json_msg(wsi, 422, "message", "topic and event are limited to 255 bytes");
    if (len > (size_t)gw->conf->max_payload_bytes)
        return send_json_msg(wsi, 422, "message", "Payload size exceeds tenant limit");
    if (!req->raw) {
        check = json_loadb(data, len, JSON_DECODE_ANY, NULL);
        if (!check)
            return send_json_msg(wsi, 400, "message", "Invalid JSON body");
        json_decref(check);
    }
    if (!may_write(gw, req->id, req->is_private, req->topic, strlen(req->topic)))
        return send_json_msg(wsi, 403, "message", "Unauthorized");
    if (!rest_climit(gw, wsi, req, 1))
        return send_json_msg(wsi, 429, "message", "You have exceeded your rate limit");
    if (req->is_private && req->persist) {
        char id[40];

        gw__replay_new_id(gw, id);
        snprintf(meta, sizeof meta, "{\"id\":\"%s\"}", id);
    }
    gw__broadcast_publish(gw, req->is_private, req->topic, strlen(req->topic),
                          (struct codec_str){ req->event, strlen(req->event) },
                          (struct codec_str){ meta, strlen(meta) }, !req->raw, data, len, NULL);
    return gw__http_send(wsi, 202, "application/json", NULL, 0);
}

int
gw__http_body_done(struct gw *gw, struct lws *wsi, void *state)
{
    struct http_req *req = state;

    if (!req)
        return -1;
    if (req->too_big)
        return send_json_msg(wsi, 413, "message", "Request body too large");
    return req->route == ROUTE_BATCH ? post_batch(gw, wsi, req) : post_single(gw, wsi, req);
}

void
gw__http_state_free(void *state)
{
    struct http_req *req = state;

    if (!req)
        return;
    auth_identity_unref(req->id);
    gw_buf_release(&req->body);
    free(req->topic);
    free(req->event);
    free(req);
}
