/*
 * conn.c: one WebSocket connection: the bounded out-queue and the write path, inbound
 * reassembly, delayed replies and the idle check.
 *
 * Outbound frames are complete WebSocket frames (header included, unmasked), refcounted
 * and shared by every queue that holds them. A connection whose queue becomes non-empty is
 * marked dirty; after each loop pass gw__conn_flush() copies all its queued frames that
 * fit in GW_COALESCE_MAX into one scratch buffer and sends them with one send() straight on
 * the socket (a write costs the same whatever its size, so coalescing is what keeps CPU
 * per delivery low, and skipping the POLLOUT round trip through lws saves a poll() pass
 * and the lws callback per socket). Whatever the kernel does not take is handed to
 * lws_write(LWS_WRITE_RAW), which buffers it in buflist_out and sends it before anything
 * else; while lws holds such a tail, or for frames larger than the scratch buffer and for
 * closing, the queue drains through LWS_CALLBACK_SERVER_WRITEABLE instead. Only whole
 * frames are ever written, so lws's own control frames (pong, close) fall between them.
 * A long flush (thousands of sockets, tens of ms) stops every GW_FLUSH_SLICE sockets for a
 * non-blocking loop pass: a publish that arrives meanwhile is read at once, and its frames
 * join the same write on every socket not flushed yet instead of waiting for the burst to
 * end (lower latency and fewer writes under load).
 * The queue is bounded in frames and bytes; a connection that would exceed either is
 * closed as a slow consumer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway/gateway_int.h"

struct fanout_frame *
gw__frame_new(const void *p, size_t len, bool binary)
{
    struct fanout_frame *f = fanout_frame_new(GW_FRAME_HEADROOM, len);
    unsigned char *h;
    size_t hlen;

    memcpy(f->data, p, len);
    if (len < 126)
        hlen = 2;
    else if (len <= 0xffff)
        hlen = 4;
    else
        hlen = 10;
    h = f->data - hlen;
    h[0] = binary ? 0x82 : 0x81;
    if (hlen == 2) {
        h[1] = (unsigned char)len;
    } else if (hlen == 4) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    f->data = h;
    f->len = len + hlen;
    return f;
}

struct conn *
gw__conn_new(struct gw *gw, struct lws *wsi, enum codec_vsn vsn, struct auth_identity *id,
             const char *ip)
{
    struct conn *c = gw_xcalloc(1, sizeof(*c));

    c->gw = gw;
    c->wsi = wsi;
    c->vsn = vsn;
    c->id = id;
    c->last_rx_ms = gw_now_ms();
    snprintf(c->ip, sizeof(c->ip), "%s", ip);
    c->chans = &c->chan_inline;
    c->cap_chans = 1;
    c->next = gw->conns;
    if (gw->conns)
        gw->conns->prev = c;
    gw->conns = c;
    gw->m.connections++;
    gw->m.connections_total++;
    return c;
}

/* Frees the reassembly buffer: idle sockets keep none (RSS per connection). */
static void
rx_drop(struct conn *c)
{
    if (c->rx) {
        gw_buf_release(c->rx);
        free(c->rx);
        c->rx = NULL;
    }
}

static void
queue_clear(struct conn *c)
{
    while (c->q_len) {
        fanout_frame_unref(c->q[c->q_head]);
        c->q_head = (c->q_head + 1) & (c->q_cap - 1);
        c->q_len--;
    }
    c->q_bytes = 0;
}

static void
delayed_cancel_all(struct conn *c)
{
    while (c->delayed) {
        struct delayed *d = c->delayed;

        c->delayed = d->next;
        lws_sul_cancel(&d->sul);
        fanout_frame_unref(d->frame);
        free(d);
    }
}

void
gw__conn_free(struct conn *c)
{
    struct gw *gw;

    if (!c)
        return;
    gw = c->gw;
    if (c->dirty)
        gw->dirty[c->dirty_idx] = NULL;
    gw__channel_close_all(c);
    delayed_cancel_all(c);
    queue_clear(c);
    free(c->q);
    if (c->chans != &c->chan_inline)
        free(c->chans);
    rx_drop(c);
    auth_identity_unref(c->id);
    if (c->prev)
        c->prev->next = c->next;
    else
        gw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    gw__ip_release(gw, c->ip);
    gw->m.connections--;
    free(c);
}

static void
queue_grow(struct conn *c)
{
    uint32_t cap = c->q_cap ? c->q_cap * 2 : 8;
    struct fanout_frame **q = gw_xmalloc(cap * sizeof(*q));

    for (uint32_t i = 0; i < c->q_len; i++)
        q[i] = c->q[(c->q_head + i) & (c->q_cap - 1)];
    free(c->q);
    c->q = q;
    c->q_cap = cap;
    c->q_head = 0;
}

static void
mark_dirty(struct conn *c)
{
    struct gw *gw = c->gw;

    if (gw->n_dirty == gw->cap_dirty) {
        gw->cap_dirty = gw->cap_dirty ? gw->cap_dirty * 2 : 256;
        gw->dirty = gw_xrealloc(gw->dirty, gw->cap_dirty * sizeof(*gw->dirty));
    }
    c->dirty = true;
    c->dirty_idx = gw->n_dirty;
    gw->dirty[gw->n_dirty++] = c;
}

static void
want_writable(struct conn *c)
{
    c->wait_writable = true;
    lws_callback_on_writable(c->wsi);
}

int
gw__conn_enqueue(struct conn *c, struct fanout_frame *f)
{
    const struct conf *cf = c->gw->conf;

    if (c->closing)
        return GW_ESTATE;
    if (c->q_len >= (uint32_t)cf->max_queue_messages ||
        c->q_bytes + f->len > (size_t)cf->max_queue_bytes) {
        c->gw->m.queue_drops_total++;
        c->gw->m.slow_consumers_total++;
        gw_log(GW_LOG_WARN, "slow_consumer", "ip=%s queued=%u bytes=%zu", c->ip, c->q_len,
               c->q_bytes);
        gw__conn_close(c, GW_CLOSE_SLOW_CONSUMER, "slow consumer: out-queue limit exceeded", true);
        return GW_ELIMIT;
    }
    if (c->q_len == c->q_cap)
        queue_grow(c);
    c->q[(c->q_head + c->q_len) & (c->q_cap - 1)] = fanout_frame_ref(f);
    c->q_len++;
    c->q_bytes += f->len;
    c->gw->m.messages_out_total++;
    if (c->q_len == 1 && !c->wait_writable && !c->dirty)
        mark_dirty(c);
    return 0;
}

int
gw__conn_send(struct conn *c, const void *p, size_t len, bool binary)
{
    struct fanout_frame *f = gw__frame_new(p, len, binary);
    int rc = gw__conn_enqueue(c, f);

    fanout_frame_unref(f);
    return rc;
}

void
gw__conn_close(struct conn *c, uint16_t code, const char *reason, bool now)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_code = code;
    c->close_reason = reason;
    if (now)
        queue_clear(c);
    want_writable(c);
    /* A peer that reads nothing never makes us writeable: bound the wait. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 3);
}

static struct fanout_frame *
queue_pop(struct conn *c)
{
    struct fanout_frame *f = c->q[c->q_head];

    c->q_head = (c->q_head + 1) & (c->q_cap - 1);
    c->q_len--;
    c->q_bytes -= f->len;
    return f;
}

/* Writes the head frame alone (it does not fit the coalescing buffer). */
static int
write_single(struct conn *c)
{
    struct fanout_frame *f = queue_pop(c);
    int n = lws_write(c->wsi, f->data, f->len, LWS_WRITE_RAW);
    int rc = n < (int)f->len ? -1 : 0;

    c->gw->m.bytes_out_total += f->len;
    fanout_frame_unref(f);
    return rc;
}

/* Moves the whole queued frames that fit into the scratch buffer; returns the bytes. */
static size_t
coalesce(struct conn *c, unsigned char *buf)
{
    size_t off = 0;

    while (c->q_len && off + c->q[c->q_head]->len <= GW_COALESCE_MAX) {
        struct fanout_frame *f = queue_pop(c);

        memcpy(buf + off, f->data, f->len);
        off += f->len;
        fanout_frame_unref(f);
    }
    c->gw->m.bytes_out_total += off;
    return off;
}

int
gw__conn_writeable(struct conn *c)
{
    unsigned char *buf = c->gw->coalesce;
    size_t off;

    c->wait_writable = false;
    if (c->q_len && c->q[c->q_head]->len > GW_COALESCE_MAX) {
        if (write_single(c))
            return -1;
    } else {
        off = coalesce(c, buf);
        if (off && lws_write(c->wsi, buf, off, LWS_WRITE_RAW) < (int)off)
            return -1;
    }
    if (c->q_len) {
        want_writable(c);
        return 0;
    }
    if (c->closing) {
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)(uintptr_t)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    return 0;
}

/* One direct write of the queue of c (see the file comment). */
static void
flush_one(struct conn *c, unsigned char *buf)
{
    size_t off;
    ssize_t n;

    if (c->wait_writable || !c->q_len)
        return;
    if (c->closing || lws_partial_buffered(c->wsi) || c->q[c->q_head]->len > GW_COALESCE_MAX) {
        want_writable(c);
        return;
    }
    off = coalesce(c, buf);
    do
        n = send(lws_get_socket_fd(c->wsi), buf, off, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        /* The peer is gone: lws sees the error on its next poll() and closes. */
        want_writable(c);
        return;
    }
    if (n < 0)
        n = 0;
    if ((size_t)n < off)
        lws_write(c->wsi, buf + n, off - (size_t)n, LWS_WRITE_RAW);
    if (c->q_len)
        want_writable(c);
}

void
gw__conn_flush(struct gw *gw)
{
    if (gw->flushing)
        return; /* a nested loop pass (gw__poll_nowait) must not start another flush */
    gw->flushing = true;
    /* n_dirty is re-read each turn: the nested passes append what they queue. */
    for (uint32_t i = 0; i < gw->n_dirty; i++) {
        struct conn *c = gw->dirty[i];

        if (i && i % GW_FLUSH_SLICE == 0)
            gw__poll_nowait(gw);
        if (!(c = gw->dirty[i]))
            continue;
        c->dirty = false;
        flush_one(c, gw->coalesce);
    }
    gw->n_dirty = 0;
    gw->flushing = false;
}

static void
handle_message(struct conn *c, const void *p, size_t len, bool binary)
{
    struct codec_msg m;
    struct codec_error err;
    int rc;

    c->gw->m.messages_in_total++;
    if (binary && c->vsn == CODEC_V2)
        rc = codec_decode_binary(p, len, &m, &err);
    else if (binary)
        rc = GW_EPARSE, err = (struct codec_error){ .message = "binary frames need vsn 2.0.0" };
    else
        rc = codec_decode_text(c->vsn, p, len, &m, &err);
    if (rc) {
        c->gw->m.protocol_errors_total++;
        gw_log(GW_LOG_INFO, "bad_frame", "ip=%s error=\"%s\"", c->ip, err.message);
        if (err.ref.p && err.topic.p) {
            struct gw_buf *b = &c->gw->scratch;
            struct gw_buf resp;

            gw_buf_init(&resp);
            gw_buf_append_str(&resp, "{\"reason\":");
            gw_buf_append_json_str(&resp, err.message, strlen(err.message));
            gw_buf_append_str(&resp, "}");
            gw_buf_reset(b);
            codec_encode_reply(b, c->vsn, (struct codec_str){ 0 }, err.ref, err.topic, "error",
                               (struct codec_str){ resp.data, resp.len });
            gw__conn_send(c, b->data, b->len, false);
            gw_buf_release(&resp);
        }
        return;
    }
    gw__channel_dispatch(c, &m);
    codec_msg_release(&m);
}

int
gw__conn_receive(struct conn *c, const void *in, size_t len)
{
    bool first = lws_is_first_fragment(c->wsi);
    bool final = lws_is_final_fragment(c->wsi) && !lws_remaining_packet_payload(c->wsi);
    size_t limit = (size_t)c->gw->conf->max_frame_bytes;

    c->last_rx_ms = gw_now_ms();
    if (c->closing)
        return 0;
    if (first) {
        rx_drop(c);
        c->rx_binary = lws_frame_is_binary(c->wsi);
        c->rx_overflow = false;
    }
    if (first && final) {
        if (len > limit)
            goto too_big;
        handle_message(c, in, len, c->rx_binary);
        return 0;
    }
    if (!c->rx) {
        c->rx = gw_xmalloc(sizeof(*c->rx));
        gw_buf_init(c->rx);
    }
    if (c->rx->len + len > limit)
        goto too_big;
    gw_buf_append(c->rx, in, len);
    if (final) {
        handle_message(c, c->rx->data, c->rx->len, c->rx_binary);
        rx_drop(c);
    }
    return 0;
too_big:
    c->gw->m.protocol_errors_total++;
    gw_log(GW_LOG_INFO, "frame_too_big", "ip=%s limit=%zu", c->ip, limit);
    rx_drop(c);
    gw__conn_close(c, GW_CLOSE_TOO_BIG, "message too big", true);
    return 0;
}

static void
delayed_fire(lws_sorted_usec_list_t *sul)
{
    struct delayed *d = lws_container_of(sul, struct delayed, sul);
    struct conn *c = d->conn;

    for (struct delayed **pp = &c->delayed; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    gw__conn_enqueue(c, d->frame);
    if (d->close_after)
        gw__conn_close(c, GW_CLOSE_RATE_LIMIT, "too many joins per second", false);
    fanout_frame_unref(d->frame);
    free(d);
}

void
gw__conn_send_later(struct conn *c, struct fanout_frame *f, uint32_t delay_ms, bool close_after)
{
    struct delayed *d;

    if (delay_ms == 0) {
        gw__conn_enqueue(c, f);
        if (close_after)
            gw__conn_close(c, GW_CLOSE_RATE_LIMIT, "too many joins per second", false);
        return;
    }
    d = gw_xcalloc(1, sizeof(*d));
    d->conn = c;
    d->frame = fanout_frame_ref(f);
    d->close_after = close_after;
    d->next = c->delayed;
    c->delayed = d;
    lws_sul_schedule(c->gw->ctx, 0, &d->sul, delayed_fire, (lws_usec_t)delay_ms * 1000);
}

void
gw__conn_sweep(struct conn *c, uint64_t now_ms, int64_t now_s)
{
    uint64_t idle_ms = (uint64_t)c->gw->conf->idle_timeout * 1000u;

    if (c->closing)
        return;
    if (now_ms - c->last_rx_ms > idle_ms) {
        gw_log(GW_LOG_INFO, "idle_close", "ip=%s", c->ip);
        gw__conn_close(c, GW_CLOSE_IDLE, "idle timeout", false);
        return;
    }
    if (c->min_exp && now_s >= c->min_exp)
        gw__channel_check_expiry(c, now_s);
}
