/*
 * server.c: the lws context, the protocol callback (a dispatcher only), the WebSocket
 * upgrade check, the fanout sink and encoder, per-IP counts and the periodic sweep.
 *
 * One vhost and one protocol serve both HTTP and WebSocket. The upgrade is authorised in
 * LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION (path, apikey, vsn, connection limits): a refused
 * upgrade gets an HTTP error with a JSON body before any 101. Each accepted socket gets a
 * struct conn whose pointer lives in the per-session data.
 *
 * The loop: by default (event_loop epoll) lws runs on a libev loop of ours with the epoll
 * backend (lws's evlib_ev plugin, a foreign loop), so a loop pass costs only the sockets
 * that are ready; lws's own poll() loop scans every socket on every pass, which dominates
 * the CPU at thousands of mostly idle sockets (docs/BENCHMARKS.md). An ev_prepare watcher
 * runs before each wait: it flushes the out-queues written during the pass (conn.c),
 * starts the drain on a signal and ends the loop when the drain is over. event_loop poll
 * keeps lws's own loop, with the same steps around each lws_service().
 */
#include <ev.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

/* Per-session data, zeroed by lws; shared by the HTTP and WebSocket phases. */
struct pss {
    struct conn *conn;             /* the WebSocket connection, once established */
    struct auth_identity *pending; /* identity verified at upgrade, until ESTABLISHED */
    void *http;                    /* HTTP request state (http.c) */
    uint8_t vsn;                   /* negotiated protocol version */
};

static volatile sig_atomic_t got_signal;
static struct lws_context *signal_ctx;

#define IPC_BUCKETS 4096

struct ipnode {
    char ip[48];         /* address text */
    uint32_t n;          /* open connections */
    struct ipnode *next; /* chain */
};

struct gw_ipcount {
    struct ipnode *b[IPC_BUCKETS]; /* chained buckets */
};

static struct ipnode **
ip_slot(struct gw_ipcount *ipc, const char *ip)
{
    struct ipnode **pp = &ipc->b[gw_hash64(ip, strlen(ip)) & (IPC_BUCKETS - 1)];

    while (*pp && strcmp((*pp)->ip, ip) != 0)
        pp = &(*pp)->next;
    return pp;
}

bool
gw__ip_acquire(struct gw *gw, const char *ip)
{
    struct ipnode **pp;

    if (!gw->ipc)
        return true;
    pp = ip_slot(gw->ipc, ip);
    if (!*pp) {
        *pp = gw_xcalloc(1, sizeof(**pp));
        snprintf((*pp)->ip, sizeof((*pp)->ip), "%s", ip);
    }
    if ((*pp)->n >= (uint32_t)gw->conf->max_connections_per_ip)
        return false;
    (*pp)->n++;
    return true;
}

void
gw__ip_release(struct gw *gw, const char *ip)
{
    struct ipnode **pp, *node;

    if (!gw->ipc)
        return;
    pp = ip_slot(gw->ipc, ip);
    node = *pp;
    if (!node)
        return;
    if (--node->n == 0) {
        *pp = node->next;
        free(node);
    }
}

static void
ipcount_free(struct gw_ipcount *ipc)
{
    if (!ipc)
        return;
    for (size_t i = 0; i < IPC_BUCKETS; i++) {
        while (ipc->b[i]) {
            struct ipnode *n = ipc->b[i];

            ipc->b[i] = n->next;
            free(n);
        }
    }
    free(ipc);
}

/* ---- fanout sink and encoder ---- */

static struct fanout_frame *
encode(void *ud, const struct fanout_msg *m, unsigned variant)
{
    struct codec_bus bus;
    struct gw_buf out;
    struct fanout_frame *f = NULL;
    size_t len;
    const void *body = fanout_msg_body(m, &len);
    bool binary;

    (void)ud;
    if (codec_bus_decode(body, len, &bus))
        return NULL;
    gw_buf_init(&out);
    if (codec_bus_render(&out, &bus, (enum codec_variant)variant, &binary) == 0)
        f = gw__frame_new(out.data, out.len, binary);
    gw_buf_release(&out);
    return f;
}

static void
deliver(void *ud, void *sub_ud, struct fanout_msg *m)
{
    struct channel *ch = sub_ud;
    struct conn *c;
    unsigned tag = fanout_msg_tag(m);
    struct codec_bus shape = { .kind = (enum codec_bus_kind)(tag & 0xf), .json = tag & 0x10 };
    struct fanout_frame *f;

    if (gw__pg_bus_deliver(ud, sub_ud, m))
        return; /* PostgreSQL events of the lease holder (pg.c), not a channel */
    c = ch->conn;
    if (c->closing || gw__replay_hold(ch, m))
        return;
    f = fanout_msg_frame(m, codec_bus_variant(&shape, c->vsn));
    if (f)
        gw__conn_enqueue(c, f);
}

/* ---- WebSocket upgrade ---- */

static bool
ws_path_ok(struct lws *wsi)
{
    char path[128];

    if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) <= 0)
        return false;
    return strcmp(path, "/realtime/v1/websocket") == 0 || strcmp(path, "/socket/websocket") == 0 ||
           strcmp(path, "/realtime/v1/websocket/") == 0;
}

static int
refuse(struct gw *gw, struct lws *wsi, unsigned status, const char *msg)
{
    struct gw_buf b;

    gw_buf_init(&b);
    gw_buf_append_str(&b, "{\"error\":");
    gw_buf_append_json_str(&b, msg, strlen(msg));
    gw_buf_append_str(&b, "}");
    gw_log(GW_LOG_INFO, "upgrade_refused", "status=%u reason=\"%s\"", status, msg);
    (void)gw;
    gw__http_send(wsi, status, "application/json", b.data, b.len);
    gw_buf_release(&b);
    return -1;
}

static char *
read_apikey(struct lws *wsi)
{
    int len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    char *buf;

    if (len <= 0)
        len = 0;
    buf = gw_xmalloc((size_t)len + 16);
    if (gw__urlarg(wsi, "apikey=", buf, len + 16))
        return buf;
    free(buf);
    len = lws_hdr_custom_length(wsi, "x-api-key:", 10);
    if (len <= 0)
        return NULL;
    buf = gw_xmalloc((size_t)len + 1);
    if (lws_hdr_custom_copy(wsi, buf, len + 1, "x-api-key:", 10) > 0)
        return buf;
    free(buf);
    return NULL;
}

static int
ws_filter(struct gw *gw, struct lws *wsi, struct pss *pss)
{
    char vbuf[32], ip[48], msg[128];
    const char *vsn;
    char *key;
    struct auth_failure why;
    int rc;

    if (!ws_path_ok(wsi))
        return refuse(gw, wsi, 404, "Not found");
    if (gw->stopping)
        return refuse(gw, wsi, 503, "Realtime is restarting, please standby");
    vsn = gw__urlarg(wsi, "vsn=", vbuf, sizeof vbuf);
    if (!vsn)
        vsn = "1.0.0";
    if (strcmp(vsn, "1.0.0") != 0 && strcmp(vsn, "2.0.0") != 0)
        return refuse(gw, wsi, 400, "Unsupported protocol version");
    pss->vsn = vsn[0] == '2' ? CODEC_V2 : CODEC_V1;
    key = read_apikey(wsi);
    if (!key) {
        gw->m.auth_failures_total++;
        return refuse(gw, wsi, 401, "API key is missing");
    }
    rc = auth_verify(gw->auth, key, strlen(key), (int64_t)(gw_wall_ms() / 1000), &pss->pending,
                     &why);
    free(key);
    if (rc) {
        gw->m.auth_failures_total++;
        auth_failure_message(&why, msg, sizeof msg);
        return refuse(gw, wsi, 401, msg);
    }
    if (gw->m.connections >= (uint64_t)gw->conf->max_connections) {
        gw->m.rate_limited_total++;
        return refuse(gw, wsi, 429, "Too many connected users");
    }
    lws_get_peer_simple(wsi, ip, sizeof ip);
    if (!gw__climit_take(gw, GW_CLIMIT_CONNECTIONS, pss->pending, ip)) {
        gw->m.rate_limited_total++;
        return refuse(gw, wsi, 429, "Too many connected users");
    }
    if (gw->ipc && !gw__ip_acquire(gw, ip)) {
        gw->m.rate_limited_total++;
        return refuse(gw, wsi, 429, "Too many connections from this address");
    }
    return 0;
}

static void
ws_established(struct gw *gw, struct lws *wsi, struct pss *pss)
{
    char ip[48];

    lws_get_peer_simple(wsi, ip, sizeof ip);
    pss->conn = gw__conn_new(gw, wsi, (enum codec_vsn)pss->vsn, pss->pending, ip);
    pss->pending = NULL;
}

static void
ws_closed(struct pss *pss)
{
    gw__conn_free(pss->conn);
    pss->conn = NULL;
}

/* ---- the protocol callback: a dispatcher ---- */

static int
http_cb(struct gw *gw, struct lws *wsi, enum lws_callback_reasons reason, struct pss *pss, void *in,
        size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return gw__http_request(gw, wsi, in, &pss->http);
    case LWS_CALLBACK_HTTP_BODY:
        return gw__http_body(gw, wsi, pss->http, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return gw__http_body_done(gw, wsi, pss->http);
    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        gw__http_state_free(pss->http);
        pss->http = NULL;
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, pss, in, len);
    }
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct gw *gw = lws_context_user(lws_get_context(wsi));
    struct pss *pss = user;

    /* lws may call us without session data, e.g. for a request it refused while parsing. */
    if (!pss && reason != LWS_CALLBACK_EVENT_WAIT_CANCELLED)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return ws_filter(gw, wsi, pss);
    case LWS_CALLBACK_ESTABLISHED:
        ws_established(gw, wsi, pss);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return pss->conn ? gw__conn_receive(pss->conn, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return pss->conn ? gw__conn_writeable(pss->conn) : 0;
    case LWS_CALLBACK_CLOSED:
        ws_closed(pss);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        auth_identity_unref(pss->pending);
        pss->pending = NULL;
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* gw_run notices got_signal after this loop turn and starts the drain. */
        return 0;
    default:
        return http_cb(gw, wsi, reason, pss, in, len);
    }
}

static const struct lws_protocols protocols_tpl[] = {
    { .name = "tidings",
      .callback = callback,
      .per_session_data_size = sizeof(struct pss),
      .rx_buffer_size = 64,
      .tx_packet_size = GW_COALESCE_MAX },
    { .name = "fdw", .callback = gw__loop_lws_callback },
    { NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- sweep, signals, lifecycle ---- */

static void
sweep(lws_sorted_usec_list_t *sul)
{
    struct gw *gw = lws_container_of(sul, struct gw, sweep);
    uint64_t now_ms = gw_now_ms();
    int64_t now_s = (int64_t)(gw_wall_ms() / 1000);

    for (struct conn *c = gw->conns; c; c = c->next)
        gw__conn_sweep(c, now_ms, now_s);
    gw__stats_tick(gw, now_ms);
    lws_sul_schedule(gw->ctx, 0, &gw->sweep, sweep, LWS_US_PER_SEC);
}

static void
on_signal(int sig)
{
    (void)sig;
    got_signal = 1;
    if (signal_ctx)
        lws_cancel_service(signal_ctx);
}

static void
raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static uint64_t
random_salt(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return gw_hash64(&ts, sizeof ts) ^ ((uint64_t)getpid() << 32);
}

static void
on_redis_state(void *ud, enum fanout_redis_state st, const char *detail)
{
    static const char *const names[] = { "", "connecting", "ready", "retrying" };

    (void)ud;
    gw_log(st == FANOUT_REDIS_RETRYING ? GW_LOG_WARN : GW_LOG_INFO, "redis",
           "state=%s detail=\"%s\"", names[st], detail);
}

/* The fanout: in memory, or on the Redis bus when `redis` is configured. */
static struct fanout *
make_fanout(struct gw *gw, struct gw_buf *err)
{
    const struct conf_list *r = &gw->conf->redis;
    const char **urls = gw_xcalloc(r->n + 1, sizeof(*urls));
    struct fanout_config fc = {
        .encode = encode,
        .deliver = deliver,
        .ud = gw,
        .loop = gw->loop,
        .redis = urls,
        .n_redis = r->n,
        .prefix = gw->conf->redis_prefix,
        .on_state = on_redis_state,
        .presence_timeout_s = (unsigned)gw->conf->presence_timeout,
        .on_presence_gone = gw__presence_gone,
    };
    struct fanout *fo;

    for (size_t i = 0; i < r->n; i++)
        urls[i] = r->items[i].value;
    fo = fanout_new(&fc);
    free(urls);
    if (!fo)
        gw_buf_printf(err, "redis: invalid configuration (check the redis URLs)");
    return fo;
}

struct gw *
gw_new(const struct conf *conf, struct auth *auth, struct auth_rules *rules, struct gw_buf *err)
{
    struct gw *gw = gw_xcalloc(1, sizeof(*gw));
    struct lws_context_creation_info info;
    void *foreign[1];

    gw->conf = conf;
    gw->auth = auth;
    gw->rules = rules;
    gw->coalesce = gw_xmalloc(GW_COALESCE_MAX);
    gw->ref_salt = random_salt();
    gw->started_ms = gw_now_ms();
    gw_buf_init(&gw->scratch);
    if (conf->max_connections_per_ip > 0)
        gw->ipc = gw_xcalloc(1, sizeof(*gw->ipc));
    raise_fd_limit();
    gw->listen_fd = -1;
    memset(&info, 0, sizeof info);
    /* We listen ourselves (SO_REUSEPORT, several processes per port): see listener.c. */
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = protocols_tpl;
    info.user = gw;
    info.gid = -1;
    info.uid = -1;
    info.max_http_header_data = (unsigned short)conf->max_header_bytes;
    info.timeout_secs = (unsigned)conf->handshake_timeout;
    if (strcmp(conf->event_loop, "epoll") == 0) {
        gw->ev = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
        if (!gw->ev) {
            gw_buf_printf(err, "event_loop epoll: cannot create the libev epoll loop");
            gw_free(gw);
            return NULL;
        }
        foreign[0] = gw->ev;
        info.options |= LWS_SERVER_OPTION_LIBEV;
        info.foreign_loops = foreign;
    }
    gw->ctx = lws_create_context(&info);
    if (!gw->ctx) {
        gw_buf_printf(err, "cannot listen on %s:%d", conf->bind, conf->port);
        gw_free(gw);
        return NULL;
    }
    gw->vh = lws_get_vhost_by_name(gw->ctx, "default");
    gw->loop = gw__loop_lws_new(gw->ctx, gw->vh);
    gw->fo = make_fanout(gw, err);
    if (!gw->fo || gw__listener_open(gw, err)) {
        gw_free(gw);
        return NULL;
    }
    if (*conf->pg) {
        gw->pg = gw__pg_new(gw, err);
        if (!gw->pg) {
            gw_free(gw);
            return NULL;
        }
    }
    lws_sul_schedule(gw->ctx, 0, &gw->sweep, sweep, LWS_US_PER_SEC);
    return gw;
}

/* Graceful drain: refuse new connections, tell every channel, flush and close each socket
 * with 1001 so supabase-js reconnects (to another process) and rejoins by itself. */
static void
drain_start(struct gw *gw)
{
    gw->stopping = true;
    gw->drain_deadline_ms = gw_now_ms() + (uint64_t)gw->conf->shutdown_timeout * 1000u;
    gw__listener_close(gw);
    gw_log(GW_LOG_INFO, "draining", "connections=%" PRIu64 " timeout_s=%d", gw->m.connections,
           gw->conf->shutdown_timeout);
    for (struct conn *c = gw->conns; c; c = c->next) {
        for (uint32_t i = 0; i < c->n_chans; i++)
            gw__channel_system(c->chans[i], "system", "ok", "Server requested disconnect");
        gw__conn_close(c, GW_CLOSE_SHUTDOWN, "server shutting down, reconnect", false);
    }
}

/* One step between loop passes: flush, start the drain on a signal, tell if we are done. */
static bool
between_passes(struct gw *gw)
{
    gw__conn_flush(gw);
    if (got_signal && !gw->stopping)
        drain_start(gw);
    return gw->stopping && (gw->m.connections == 0 || gw_now_ms() >= gw->drain_deadline_ms);
}

void
gw__poll_nowait(struct gw *gw)
{
    if (gw->ev)
        ev_run(gw->ev, EVRUN_NOWAIT);
}

static void
on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct gw *gw = w->data;

    (void)revents;
    if (gw->flushing)
        return; /* the nested pass of gw__poll_nowait: the outer flush goes on */
    if (between_passes(gw))
        ev_break(loop, EVBREAK_ALL);
    else if (gw->stopping && !ev_is_active(gw->ev_drain))
        ev_timer_start(loop, gw->ev_drain); /* wakes the loop to re-check the drain */
}

static void
on_drain_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents; /* on_prepare runs next and does the check */
}

static int
run_ev(struct gw *gw)
{
    gw->ev_prepare = gw_xcalloc(1, sizeof(*gw->ev_prepare));
    gw->ev_drain = gw_xcalloc(1, sizeof(*gw->ev_drain));
    ev_prepare_init(gw->ev_prepare, on_prepare);
    gw->ev_prepare->data = gw;
    ev_prepare_start(gw->ev, gw->ev_prepare);
    ev_timer_init(gw->ev_drain, on_drain_tick, 0.1, 0.1);
    ev_run(gw->ev, 0);
    ev_prepare_stop(gw->ev, gw->ev_prepare);
    ev_timer_stop(gw->ev, gw->ev_drain);
    return 0;
}

int
gw_run(struct gw *gw)
{
    int rc = 0;

    signal_ctx = gw->ctx;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (gw->ev) {
        rc = run_ev(gw);
    } else {
        while (!between_passes(gw)) {
            if (lws_service(gw->ctx, gw->stopping ? 100 : 0) < 0)
                return GW_EIO;
        }
    }
    gw_log(GW_LOG_INFO, "shutdown", "connections=%" PRIu64, gw->m.connections);
    return rc;
}

void
gw_stop(struct gw *gw)
{
    got_signal = 1;
    lws_cancel_service(gw->ctx);
}

void
gw_free(struct gw *gw)
{
    if (!gw)
        return;
    /* A late SIGTERM must not wake a context that is being destroyed. */
    signal_ctx = NULL;
    /* The listener's watches live on the lws loop: free it while the context exists. */
    gw__pg_free(gw->pg);
    gw->pg = NULL;
    if (gw->loop)
        gw__listener_close(gw);
    /* Detach every channel while the fanout and the loop (Redis sockets) still exist. */
    for (struct conn *c = gw->conns; c; c = c->next)
        gw__channel_close_all(c);
    gw__climit_free(gw);
    fanout_free(gw->fo);
    gw->fo = NULL;
    if (gw->ctx) {
        lws_sul_cancel(&gw->sweep);
        lws_context_destroy(gw->ctx);
    }
    gw__loop_lws_free(gw->loop);
    ipcount_free(gw->ipc);
    gw__stats_free(gw);
    gw_buf_release(&gw->scratch);
    if (gw->ev)
        ev_loop_destroy(gw->ev);
    free(gw->ev_prepare);
    free(gw->ev_drain);
    free(gw->coalesce);
    free(gw->dirty);
    free(gw);
}
