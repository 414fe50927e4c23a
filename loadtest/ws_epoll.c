/*
 * ws_epoll.c: the transport of the subscriber and churn processes (wsclient_int.h): plain
 * non-blocking sockets, one epoll set, and just enough of RFC 6455 for a client.
 *
 * open(): socket, bind() to a source address 127.0.x.y when more than one is in use or the
 * process has its own range (IP_BIND_ADDRESS_NO_PORT, so the port is chosen at connect time
 * and the ephemeral range is per address), connect(); writable means connected, then the
 * upgrade
 * request goes out. Input is read into one shared scratch buffer; bytes before the end of
 * the 101 response are the handshake, the rest are frames. Whole frames are handled in
 * place; a partial frame waits in c->in, a fragmented message in c->frag. Outbound frames
 * are masked with a key from a xorshift generator and written at once; what the kernel
 * does not take waits in c->out for EPOLLOUT. Pings are answered; a close frame, end of
 * file or an error closes the socket.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadtest/wsclient_int.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define SCRATCH_BYTES (256 * 1024) /* shared read buffer */
#define MAX_EVENTS    256          /* events taken per epoll_wait */
#define READS_PER_EV  8            /* reads per readiness event before moving on */
#define MAX_HEAD      4096         /* largest 101 response accepted */

/* ---- output ---- */

static void
set_events(struct lt_proc *p, struct lt_client *c)
{
    struct epoll_event ev = { .events = EPOLLIN | (c->out.len || !c->requested ? EPOLLOUT : 0),
                              .data.ptr = c };

    epoll_ctl(p->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes n bytes, queueing what the kernel does not take. Returns 0 or -1 (socket dead). */
static int
put(struct lt_proc *p, struct lt_client *c, const void *b, size_t n)
{
    ssize_t w = 0;

    if (!c->out.len) {
        w = send(c->fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (w < 0)
            w = 0;
    }
    if ((size_t)w < n) {
        bool was_empty = !c->out.len;

        gw_buf_append(&c->out, (const char *)b + w, n - (size_t)w);
        if (was_empty)
            set_events(p, c);
    }
    return 0;
}

static int
flush_out(struct lt_proc *p, struct lt_client *c)
{
    ssize_t w;

    if (!c->out.len)
        return 0;
    w = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
    if (w < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    memmove(c->out.data, c->out.data + w, c->out.len - (size_t)w);
    c->out.len -= (size_t)w;
    if (!c->out.len)
        set_events(p, c);
    return 0;
}

static uint32_t
mask_key(struct lt_proc *p)
{
    p->rng ^= p->rng << 13;
    p->rng ^= p->rng >> 7;
    p->rng ^= p->rng << 17;
    return (uint32_t)p->rng;
}

/* Sends one masked frame (payload up to 65535 bytes). */
static int
send_frame(struct lt_proc *p, struct lt_client *c, unsigned op, const void *pl, size_t n)
{
    unsigned char f[8 + LT_FRAME_CAP];
    uint32_t key = mask_key(p);
    size_t h;

    if (n > LT_FRAME_CAP)
        return -1;
    f[0] = (unsigned char)(0x80u | op);
    if (n < 126) {
        f[1] = (unsigned char)(0x80u | n);
        h = 2;
    } else {
        f[1] = 0x80u | 126u;
        f[2] = (unsigned char)(n >> 8);
        f[3] = (unsigned char)n;
        h = 4;
    }
    memcpy(f + h, &key, 4);
    for (size_t i = 0; i < n; i++)
        f[h + 4 + i] = ((const unsigned char *)pl)[i] ^ f[h + (i & 3)];
    return put(p, c, f, h + 4 + n);
}

static void close_client(struct lt_proc *p, struct lt_client *c);

static void
tp_kick(struct lt_proc *p, struct lt_client *c)
{
    char buf[LT_FRAME_CAP];
    int n;

    if (c->fd < 0 || !c->upgraded)
        return;
    while ((n = lt__next_frame(p, c, buf, sizeof(buf))) > 0)
        if (send_frame(p, c, 0x1, buf, (size_t)n)) {
            close_client(p, c);
            return;
        }
}

/* ---- connection ---- */

static void
close_client(struct lt_proc *p, struct lt_client *c)
{
    if (c->fd < 0)
        return;
    close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->requested = c->upgraded = false;
    gw_buf_release(&c->in);
    gw_buf_release(&c->frag);
    gw_buf_release(&c->out);
    lt__on_closed(p, c);
}

/* The server address (IPv4, or IPv6 when the host has a colon). Returns its length or 0. */
static socklen_t
server_addr(const struct lt_proc *p, struct sockaddr_storage *ss)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (strchr(p->o->host, ':')) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)p->o->port);
        return inet_pton(AF_INET6, p->o->host, &s6->sin6_addr) == 1 ? sizeof(*s6) : 0;
    }
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)p->o->port);
    return inet_pton(AF_INET, p->o->host, &s4->sin_addr) == 1 ? sizeof(*s4) : 0;
}

static int
start_connect(struct lt_proc *p, struct lt_client *c)
{
    struct sockaddr_storage sa;
    socklen_t salen = server_addr(p, &sa);
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
    int one = 1;

    if (!salen)
        return -1;
    c->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    if (sa.ss_family == AF_INET && (p->o->src_addrs > 1 || p->o->src_net)) {
        struct sockaddr_in src = { .sin_family = AF_INET };

        inet_pton(AF_INET, p->src[c->idx % p->o->src_addrs], &src.sin_addr);
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)))
            return -1;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, salen) && errno != EINPROGRESS)
        return -1;
    return epoll_ctl(p->epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void
tp_open(struct lt_proc *p, struct lt_client *c)
{
    gw_buf_reset(&c->in);
    c->requested = c->upgraded = false;
    if (start_connect(p, c) == 0)
        return;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    lt__on_open_failed(p, c);
}

/* Connected (or failed): sends the upgrade request. */
static void
on_connected(struct lt_proc *p, struct lt_client *c)
{
    struct gw_buf req;
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
        close_client(p, c);
        return;
    }
    c->requested = true;
    gw_buf_init(&req);
    gw_buf_printf(&req,
                  "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: "
                  "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\nOrigin: http://%s\r\n\r\n",
                  lt__path(p, c), p->o->host, p->o->port, p->o->host);
    if (put(p, c, req.data, req.len))
        close_client(p, c);
    else
        set_events(p, c);
    gw_buf_release(&req);
}

/* ---- input ---- */

/* Handles one frame. Returns 0, or -1 to close the socket. */
static int
on_frame(struct lt_proc *p, struct lt_client *c, unsigned op, bool fin, const char *pl, size_t n)
{
    switch (op) {
    case 0x0: /* continuation */
        if (c->frag.len + n > LT_MAX_MSG)
            return -1;
        gw_buf_append(&c->frag, pl, n);
        if (fin) {
            lt__on_message(p, c, c->frag.data, c->frag.len, c->frag_bin);
            gw_buf_release(&c->frag);
        }
        return 0;
    case 0x1: /* text */
    case 0x2: /* binary */
        c->frag_bin = op == 0x2;
        if (fin) {
            lt__on_message(p, c, pl, n, op == 0x2);
        } else {
            gw_buf_reset(&c->frag);
            gw_buf_append(&c->frag, pl, n);
        }
        return 0;
    case 0x9: /* ping */
        return send_frame(p, c, 0xA, pl, n);
    case 0xA: /* pong */
        return 0;
    default: /* close, or an unknown opcode */
        send_frame(p, c, 0x8, pl, n < 2 ? n : 2);
        return -1;
    }
}

/* Handles the whole frames at the start of b; returns the bytes used, or -1 to close. */
static long
parse_frames(struct lt_proc *p, struct lt_client *c, const unsigned char *b, size_t n)
{
    size_t off = 0;

    while (n - off >= 2) {
        const unsigned char *f = b + off;
        uint64_t len = f[1] & 0x7fu;
        size_t h = 2;

        if (f[1] & 0x80u)
            return -1; /* a server must not mask */
        if (len == 126 && n - off >= 4) {
            len = (uint64_t)f[2] << 8 | f[3];
            h = 4;
        } else if (len == 127 && n - off >= 10) {
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | f[2 + i];
            h = 10;
        } else if (len >= 126) {
            break;
        }
        if (len > LT_MAX_MSG)
            return -1;
        if (n - off - h < len)
            break;
        if (on_frame(p, c, f[0] & 0x0fu, f[0] & 0x80u, (const char *)f + h, (size_t)len) ||
            c->fd < 0)
            return -1;
        off += h + (size_t)len;
    }
    return (long)off;
}

/* Reads the 101 response; returns the bytes it used, 0 while incomplete, -1 to close. */
static long
handshake(struct lt_proc *p, struct lt_client *c, const unsigned char *b, size_t n)
{
    const unsigned char *e = memmem(b, n, "\r\n\r\n", 4);

    if (!e)
        return n > MAX_HEAD ? -1 : 0;
    if (n < 12 || memcmp(b, "HTTP/1.1 101", 12) != 0)
        return -1;
    c->upgraded = true;
    lt__on_open(p, c);
    return (long)(e + 4 - b);
}

/* Handles n new bytes: after what c->in holds, if anything. Returns 0 or -1 to close. */
static int
consume(struct lt_proc *p, struct lt_client *c, const unsigned char *b, size_t n)
{
    bool buffered = c->in.len > 0;
    size_t used = 0;
    long k = 0;

    if (buffered) {
        gw_buf_append(&c->in, b, n);
        b = (const unsigned char *)c->in.data;
        n = c->in.len;
    }
    if (!c->upgraded && (k = handshake(p, c, b, n)) < 0)
        return -1;
    if (c->fd < 0)
        return -1; /* closed while sending the join: b may point into released memory */
    used = (size_t)k;
    if (c->upgraded && (k = parse_frames(p, c, b + used, n - used)) < 0)
        return -1;
    used += c->upgraded ? (size_t)k : 0;
    if (buffered) {
        memmove(c->in.data, c->in.data + used, n - used);
        c->in.len = n - used;
    } else if (used < n) {
        gw_buf_append(&c->in, b + used, n - used);
    }
    return 0;
}

static void
on_readable(struct lt_proc *p, struct lt_client *c)
{
    for (int i = 0; i < READS_PER_EV && c->fd >= 0; i++) {
        ssize_t r = recv(c->fd, p->scratch, SCRATCH_BYTES, 0);

        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0 || consume(p, c, p->scratch, (size_t)r)) {
            close_client(p, c);
            return;
        }
        if ((size_t)r < SCRATCH_BYTES)
            return;
    }
}

/* ---- the loop ---- */

static void
tp_run_once(struct lt_proc *p, int timeout_ms)
{
    struct epoll_event ev[MAX_EVENTS];
    int n = epoll_wait(p->epfd, ev, MAX_EVENTS, timeout_ms);

    for (int i = 0; i < n; i++) {
        struct lt_client *c = ev[i].data.ptr;

        if (c->fd < 0)
            continue; /* closed earlier in this batch */
        if (!c->requested) {
            on_connected(p, c);
            continue;
        }
        if ((ev[i].events & EPOLLOUT) && flush_out(p, c)) {
            close_client(p, c);
            continue;
        }
        if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            on_readable(p, c);
    }
}

static int
tp_init(struct lt_proc *p)
{
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    p->scratch = gw_xmalloc(SCRATCH_BYTES);
    p->rng = 0x2545f4914f6cdd1dULL ^ (uint64_t)lt_mono_us();
    return p->epfd < 0 ? GW_EIO : 0;
}

/* A clean close: the close frame 1000 (when established), then the socket. */
static void
tp_close(struct lt_proc *p, struct lt_client *c)
{
    static const unsigned char bye[2] = { 0x03, 0xe8 }; /* 1000, normal closure */

    if (c->fd >= 0 && c->upgraded)
        send_frame(p, c, 0x8, bye, sizeof(bye));
    close_client(p, c);
}

static void
tp_release(struct lt_proc *p)
{
    for (unsigned i = 0; p->c && i < p->o->count; i++)
        tp_close(p, &p->c[i]);
    if (p->epfd >= 0)
        close(p->epfd);
    p->epfd = -1;
    free(p->scratch);
    p->scratch = NULL;
}

const struct lt_transport lt__tp_epoll = {
    .init = tp_init,
    .release = tp_release,
    .open = tp_open,
    .close = tp_close,
    .kick = tp_kick,
    .run_once = tp_run_once,
};
