/*
 * ws_lws.c: the lws transport of the subscriber processes (wsclient_int.h). One lws client
 * context; each socket is a client wsi whose user data is its struct lt_client. Frames go
 * out one per WRITEABLE callback; fragmented messages are reassembled in c->in.
 * run_once() arms a timer before lws_service(): lws runs due timers before it polls and
 * then waits for the next timer or socket event, so without one it could wait for ever.
 */
#include <libwebsockets.h>
#include <string.h>

#include "loadtest/wsclient_int.h"

static lws_sorted_usec_list_t wake; /* ends the poll of run_once() (one context per process) */

static int
on_writable(struct lt_proc *p, struct lt_client *c, struct lws *wsi)
{
    unsigned char buf[LWS_PRE + LT_FRAME_CAP];
    int n = lt__next_frame(p, c, (char *)buf + LWS_PRE, LT_FRAME_CAP);

    if (n <= 0)
        return n;
    if (lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < n)
        return -1;
    if (c->want_join || c->want_hb)
        lws_callback_on_writable(wsi);
    return 0;
}

static int
on_receive(struct lt_proc *p, struct lt_client *c, struct lws *wsi, const char *in, size_t len)
{
    bool fin = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);

    if (!c->in.len && fin) {
        lt__on_message(p, c, in, len);
        return 0;
    }
    if (c->in.len + len > LT_MAX_MSG)
        return -1;
    gw_buf_append(&c->in, in, len);
    if (fin) {
        lt__on_message(p, c, c->in.data, c->in.len);
        gw_buf_release(&c->in);
    }
    return 0;
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct lt_proc *p = lws_context_user(lws_get_context(wsi));
    struct lt_client *c = user ? user : lws_get_opaque_user_data(wsi);

    if (!c)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        c->wsi = NULL;
        lt__on_open_failed(p, c);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->wsi = wsi;
        lt__on_open(p, c);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_receive(p, c, wsi, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writable(p, c, wsi);
    case LWS_CALLBACK_CLIENT_CLOSED:
        c->wsi = NULL;
        gw_buf_release(&c->in);
        lt__on_closed(p, c);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    { "lt-client", callback, 0, 4096, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }, /* terminator */
};

static void
wake_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* only there to end the poll */
}

static void
tp_open(struct lt_proc *p, struct lt_client *c)
{
    struct lws_client_connect_info ci;

    memset(&ci, 0, sizeof(ci));
    ci.context = p->ctx;
    ci.address = p->o->host;
    ci.port = p->o->port;
    ci.path = p->path;
    ci.host = p->o->host;
    ci.origin = p->o->host;
    ci.userdata = c;
    ci.opaque_user_data = c;
    ci.pwsi = &c->wsi;
    ci.iface = p->o->src_addrs > 1 ? p->src[c->idx % p->o->src_addrs] : NULL;
    if (!lws_client_connect_via_info(&ci)) {
        /* Failed before any callback, or after CONNECTION_ERROR (then this is a no-op). */
        c->wsi = NULL;
        lt__on_open_failed(p, c);
    }
}

static void
tp_kick(struct lt_proc *p, struct lt_client *c)
{
    (void)p;
    if (c->wsi)
        lws_callback_on_writable(c->wsi);
}

static void
tp_run_once(struct lt_proc *p, int timeout_ms)
{
    lws_sul_schedule(p->ctx, 0, &wake, wake_cb, (lws_usec_t)timeout_ms * 1000);
    if (lws_service(p->ctx, 0) < 0)
        p->stop = true;
}

static int
tp_init(struct lt_proc *p)
{
    struct lws_context_creation_info info;

    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = p;
    info.fd_limit_per_thread = p->o->count + 64;
    p->ctx = lws_create_context(&info);
    return p->ctx ? 0 : GW_EIO;
}

static void
tp_release(struct lt_proc *p)
{
    if (!p->ctx)
        return;
    lws_sul_cancel(&wake);
    lws_context_destroy(p->ctx);
    p->ctx = NULL;
}

const struct lt_transport lt__tp_lws = {
    .name = "lws",
    .init = tp_init,
    .release = tp_release,
    .open = tp_open,
    .kick = tp_kick,
    .run_once = tp_run_once,
};
