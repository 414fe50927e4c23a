/*
 * loop_lws.c: base/loop.h implemented on the lws event loop, so listen/ (libpq) and later
 * the Redis side run on the same single thread as the WebSocket server.
 *
 * A watch adopts a dup() of the caller's fd as an lws raw-file wsi of protocol "fdw"
 * (ENGINEERING.md section 1): lws closes the dup, the library closes its own fd. Read
 * interest is lws rx flow control; write interest is lws_callback_on_writable(), re-armed
 * from a 0-delay timer because lws clears POLLOUT after the WRITEABLE callback returns.
 * When lws closes the wsi by itself (POLLHUP/POLLERR) the owner gets GW_LOOP_ERROR from a
 * deferred timer and the watch is dead. Timers are lws sul timers.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

struct loop_lws {
    struct gw_loop loop;     /* the interface handed to lower modules */
    struct lws_context *ctx; /* the lws context */
    struct lws_vhost *vh;    /* vhost that has the "fdw" protocol */
};

struct gw_watch {
    struct loop_lws *lp;           /* owner loop */
    struct lws *wsi;               /* raw-file wsi, NULL once lws closed it */
    int fd;                        /* the caller's fd (reported back) */
    gw_watch_fn *fn;               /* readiness callback */
    void *ud;                      /* callback argument */
    unsigned want;                 /* GW_LOOP_READ / GW_LOOP_WRITE wanted */
    bool deleted;                  /* the owner called watch_del */
    lws_sorted_usec_list_t rearm;  /* re-arms write interest outside the callback */
    lws_sorted_usec_list_t hangup; /* reports GW_LOOP_ERROR after lws closed the wsi */
};

struct gw_timer {
    struct loop_lws *lp;        /* owner loop */
    lws_sorted_usec_list_t sul; /* the lws timer */
    gw_timer_fn *fn;            /* callback */
    void *ud;                   /* callback argument */
};

static void
watch_free(struct gw_watch *w)
{
    lws_sul_cancel(&w->rearm);
    lws_sul_cancel(&w->hangup);
    free(w);
}

static void
rearm_cb(lws_sorted_usec_list_t *sul)
{
    struct gw_watch *w = lws_container_of(sul, struct gw_watch, rearm);

    if (w->wsi && !w->deleted && (w->want & GW_LOOP_WRITE))
        lws_callback_on_writable(w->wsi);
}

static void
hangup_cb(lws_sorted_usec_list_t *sul)
{
    struct gw_watch *w = lws_container_of(sul, struct gw_watch, hangup);

    if (!w->deleted)
        w->fn(w->ud, w->fd, GW_LOOP_ERROR);
}

static struct gw_watch *
watch_add(void *impl, int fd, unsigned events, gw_watch_fn *fn, void *ud)
{
    struct loop_lws *lp = impl;
    struct gw_watch *w;
    lws_sock_file_fd_type u;
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);

    if (dup_fd < 0)
        return NULL;
    w = gw_xcalloc(1, sizeof(*w));
    w->lp = lp;
    w->fd = fd;
    w->fn = fn;
    w->ud = ud;
    u.filefd = dup_fd;
    w->wsi = lws_adopt_descriptor_vhost(lp->vh, LWS_ADOPT_RAW_FILE_DESC, u, "fdw", NULL);
    if (!w->wsi) {
        close(dup_fd);
        free(w);
        return NULL;
    }
    lws_set_opaque_user_data(w->wsi, w);
    lp->loop.ops->watch_set(w, events);
    return w;
}

static void
watch_set(struct gw_watch *w, unsigned events)
{
    w->want = events & (GW_LOOP_READ | GW_LOOP_WRITE);
    if (!w->wsi || w->deleted)
        return;
    lws_rx_flow_control(w->wsi, (w->want & GW_LOOP_READ) ? 1 : 0);
    if (w->want & GW_LOOP_WRITE)
        lws_sul_schedule(w->lp->ctx, 0, &w->rearm, rearm_cb, 0);
}

static void
watch_del(struct gw_watch *w)
{
    if (!w)
        return;
    w->deleted = true;
    if (!w->wsi) {
        watch_free(w);
        return;
    }
    /* Detach first: the wsi dies asynchronously and its RAW_CLOSE_FILE then finds no watch. */
    lws_set_opaque_user_data(w->wsi, NULL);
    lws_rx_flow_control(w->wsi, 0);
    lws_set_timeout(w->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
    w->wsi = NULL;
    watch_free(w);
}

static void
timer_fire(lws_sorted_usec_list_t *sul)
{
    struct gw_timer *t = lws_container_of(sul, struct gw_timer, sul);

    t->fn(t->ud);
}

static struct gw_timer *
timer_new(void *impl, gw_timer_fn *fn, void *ud)
{
    struct gw_timer *t = gw_xcalloc(1, sizeof(*t));

    t->lp = impl;
    t->fn = fn;
    t->ud = ud;
    return t;
}

static void
timer_set(struct gw_timer *t, uint64_t delay_ms)
{
    lws_sul_cancel(&t->sul);
    lws_sul_schedule(t->lp->ctx, 0, &t->sul, timer_fire, (lws_usec_t)delay_ms * 1000);
}

static void
timer_cancel(struct gw_timer *t)
{
    lws_sul_cancel(&t->sul);
}

static void
timer_free(struct gw_timer *t)
{
    if (!t)
        return;
    lws_sul_cancel(&t->sul);
    free(t);
}

static const struct gw_loop_ops ops = {
    .watch_add = watch_add,
    .watch_set = watch_set,
    .watch_del = watch_del,
    .timer_new = timer_new,
    .timer_set = timer_set,
    .timer_cancel = timer_cancel,
    .timer_free = timer_free,
};

struct gw_loop *
gw__loop_lws_new(struct lws_context *ctx, struct lws_vhost *vh)
{
    struct loop_lws *lp = gw_xcalloc(1, sizeof(*lp));

    lp->loop.ops = &ops;
    lp->loop.impl = lp;
    lp->ctx = ctx;
    lp->vh = vh;
    return &lp->loop;
}

void
gw__loop_lws_free(struct gw_loop *loop)
{
    free(loop ? loop->impl : NULL);
}

static void
raw_close(struct lws *wsi)
{
    struct gw_watch *w = lws_get_opaque_user_data(wsi);

    if (!w)
        return;
    w->wsi = NULL;
    lws_sul_cancel(&w->rearm);
    /* Let the owner's library see the hang-up itself, outside lws's close path. */
    lws_sul_schedule(w->lp->ctx, 0, &w->hangup, hangup_cb, 0);
}

int
gw__loop_lws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    struct gw_watch *w = lws_get_opaque_user_data(wsi);

    (void)user;
    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (w && !w->deleted && (w->want & GW_LOOP_READ))
            w->fn(w->ud, w->fd, GW_LOOP_READ);
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (w && !w->deleted && (w->want & GW_LOOP_WRITE)) {
            w->fn(w->ud, w->fd, GW_LOOP_WRITE);
            /* w may be gone now: look it up again. */
            w = lws_get_opaque_user_data(wsi);
            if (w && (w->want & GW_LOOP_WRITE))
                lws_sul_schedule(w->lp->ctx, 0, &w->rearm, rearm_cb, 0);
        }
        return 0;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        raw_close(wsi);
        return 0;
    default:
        return 0;
    }
}
