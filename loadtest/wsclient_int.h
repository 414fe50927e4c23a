/*
 * wsclient_int.h: what the subscriber protocol logic (wsclient.c) and its two transports
 * (ws_epoll.c: own epoll loop and WebSocket framing; ws_lws.c: the lws client API) share.
 *
 * The protocol side owns the sockets' life: it asks a transport to open a socket, hears
 * back through lt__on_open / lt__on_open_failed / lt__on_message / lt__on_closed, and
 * calls kick() when a socket has frames to send; the transport then pulls them with
 * lt__next_frame() when it can write. run_once() waits at most timeout_ms for events.
 */
#ifndef LT_WSCLIENT_INT_H
#define LT_WSCLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "loadtest/ipc.h"
#include "loadtest/wsclient.h"

struct lws;
struct lws_context;

enum lt_cstate {
    LT_C_IDLE = 0,       /* not connected yet, or waiting for a reconnect */
    LT_C_CONNECTING = 1, /* TCP connect or WebSocket handshake in flight */
    LT_C_OPEN = 2,       /* WebSocket established */
    LT_C_CLOSED = 3,     /* closed after it was established */
    LT_C_FAILED = 4,     /* every connection attempt failed */
};

struct lt_client {
    unsigned idx;       /* global subscriber index */
    enum lt_cstate st;  /* connection state */
    unsigned ref;       /* last ref used on this socket */
    unsigned join_ref;  /* ref of the current join, 0 = none */
    int64_t next_hb_us; /* monotonic time of the next heartbeat */
    int64_t retry_us;   /* monotonic time of a pending reconnect (IDLE) or rejoin (OPEN) */
    unsigned attempts;  /* connection attempts made */
    unsigned rejoins;   /* rejoins after join or system errors */
    bool want_join;     /* a phx_join is waiting to be sent */
    bool want_hb;       /* a heartbeat is waiting to be sent */
    bool joined;        /* the current join was answered ok */
    bool subscribed;    /* "Subscribed to PostgreSQL" seen (counted once) */
    struct lws *wsi;    /* lws transport: the connection, NULL when none */
    int fd;             /* epoll transport: the socket, -1 when none */
    bool requested;     /* epoll transport: connected and the upgrade request sent */
    bool upgraded;      /* epoll transport: the 101 response was read */
    struct gw_buf in;   /* unparsed input (epoll) or message fragments (lws) */
    struct gw_buf frag; /* epoll transport: fragments of a message */
    struct gw_buf out;  /* epoll transport: output the kernel did not take yet */
};

struct lt_proc;

struct lt_transport {
    const char *name;                                     /* "epoll" or "lws" */
    int (*init)(struct lt_proc *p);                       /* 0 or GW_E* */
    void (*release)(struct lt_proc *p);                   /* closes every socket */
    void (*open)(struct lt_proc *p, struct lt_client *c); /* starts a connection */
    void (*kick)(struct lt_proc *p, struct lt_client *c); /* frames are pending */
    void (*run_once)(struct lt_proc *p, int timeout_ms);  /* waits and dispatches */
};

struct lt_proc {
    const struct lt_clients_opts *o; /* options */
    const struct lt_transport *tp;   /* transport in use */
    struct lws_context *ctx;         /* lws transport: the context */
    int epfd;                        /* epoll transport: the epoll fd, -1 = none */
    unsigned char *scratch;          /* epoll transport: read buffer */
    uint64_t rng;                    /* epoll transport: masking keys */
    struct lt_client *c;             /* o->count sockets */
    char *path;                      /* request path with the query string */
    char (*src)[20];                 /* o->src_addrs source addresses */
    unsigned next_open;              /* first socket never opened */
    unsigned inflight;               /* connections in flight */
    unsigned settled;                /* sockets subscribed, failed or closed (last scan) */
    struct lt_client_stats st;       /* counters */
    struct lt_hist *lat;             /* latency histogram, microseconds */
    int64_t start_us;                /* monotonic start time */
    int64_t last_tick_us;            /* time of the last tick */
    int64_t last_scan_us;            /* time of the last scan */
    int64_t last_report_us;          /* time of the last progress record */
    bool ready_sent;                 /* LT_MSG_READY went out */
    bool stop;                       /* leave the loop */
};

extern const struct lt_transport lt__tp_epoll;
extern const struct lt_transport lt__tp_lws;

/* Transport -> protocol. */
void lt__on_open(struct lt_proc *p, struct lt_client *c);
void lt__on_open_failed(struct lt_proc *p, struct lt_client *c);
void lt__on_closed(struct lt_proc *p, struct lt_client *c);
/* One complete text or binary message (len bytes at f, not NUL-terminated). */
void lt__on_message(struct lt_proc *p, struct lt_client *c, const char *f, size_t len);
/* Writes the next pending frame's text into buf; returns its length, 0 if none, <0 on error. */
int lt__next_frame(struct lt_proc *p, struct lt_client *c, char *buf, size_t cap);

#define LT_FRAME_CAP 1024       /* room for one outbound frame, bytes */
#define LT_MAX_MSG   (4u << 20) /* largest inbound message accepted, bytes */

#endif
