/*
 * wsclient_int.h: what the protocol logic (wsclient.c) and the epoll transport
 * (ws_epoll.c: sockets, epoll and WebSocket framing) share.
 *
 * The protocol side owns the sockets' life: it asks the transport to open or close a
 * socket, hears back through lt__on_open / lt__on_open_failed / lt__on_message /
 * lt__on_closed, and calls kick() when a socket has frames to send; the transport then
 * pulls them with lt__next_frame(). run_once() waits at most timeout_ms for events.
 */
#ifndef LT_WSCLIENT_INT_H
#define LT_WSCLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "loadtest/ipc.h"
#include "loadtest/wsclient.h"

enum lt_cstate {
    LT_C_IDLE = 0,       /* not connected yet, or waiting for a reconnect (churn: free) */
    LT_C_CONNECTING = 1, /* TCP connect or WebSocket handshake in flight */
    LT_C_OPEN = 2,       /* WebSocket established */
    LT_C_CLOSED = 3,     /* closed after it was established */
    LT_C_FAILED = 4,     /* every connection attempt failed */
};

/* One channel (topic) of a socket. */
struct lt_chan {
    int topic;          /* -1 = the shared topic bench, else the own topic bench-<topic> */
    unsigned join_ref;  /* ref of the current join, 0 = none */
    bool want_join;     /* a phx_join is waiting to be sent */
    bool joined;        /* the current join was answered ok */
    bool want_track;    /* a presence track is waiting to be sent */
    unsigned track_ref; /* ref of the last track push, 0 = none */
    bool subscribed;    /* PG: "Subscribed to PostgreSQL" seen (counted once) */
    int64_t join_us;    /* monotonic time the join was sent */
    int64_t retry_us;   /* monotonic time of a pending rejoin, 0 = none */
    unsigned rejoins;   /* rejoins after join or system errors */
    uint64_t *last;     /* last seq seen per publisher (shared: P entries, own: 1) */
};

struct lt_client {
    unsigned idx;         /* global socket index (churn: slot) */
    unsigned client;      /* client index (topic bench-<client>) */
    enum lt_cstate st;    /* connection state */
    unsigned ref;         /* last ref used on this socket */
    int64_t next_hb_us;   /* monotonic time of the next heartbeat */
    int64_t retry_us;     /* monotonic time of a pending reconnect (IDLE) */
    int64_t open_us;      /* monotonic time the current connection attempt started */
    unsigned attempts;    /* connection attempts made */
    bool want_hb;         /* a heartbeat is waiting to be sent */
    bool counted;         /* churn: this cycle's outcome was counted */
    struct lt_chan ch[2]; /* channels (simple target: ch[0] names the socket's topic) */
    unsigned n_ch;        /* channels in use */
    int fd;               /* the socket, -1 when none */
    bool requested;       /* connected and the upgrade request sent */
    bool upgraded;        /* the 101 response was read */
    bool frag_bin;        /* the fragmented message is binary */
    struct gw_buf in;     /* unparsed input */
    struct gw_buf frag;   /* fragments of a message */
    struct gw_buf out;    /* output the kernel did not take yet */
};

struct lt_proc;

struct lt_transport {
    int (*init)(struct lt_proc *p);                        /* 0 or GW_E* */
    void (*release)(struct lt_proc *p);                    /* closes every socket */
    void (*open)(struct lt_proc *p, struct lt_client *c);  /* starts a connection */
    void (*close)(struct lt_proc *p, struct lt_client *c); /* close frame + close */
    void (*kick)(struct lt_proc *p, struct lt_client *c);  /* frames are pending */
    void (*run_once)(struct lt_proc *p, int timeout_ms);   /* waits and dispatches */
};

struct lt_proc {
    const struct lt_clients_opts *o; /* options */
    const struct lt_transport *tp;   /* transport in use */
    int epfd;                        /* the epoll fd, -1 = none */
    unsigned char *scratch;          /* read buffer */
    uint64_t rng;                    /* masking keys */
    struct lt_client *c;             /* o->count sockets */
    uint64_t *seqs;                  /* storage of every channel's last[] */
    char path[2048];                 /* request path of the socket being opened */
    char (*src)[20];                 /* o->src_addrs source addresses */
    unsigned next_open;              /* first socket never opened */
    unsigned inflight;               /* connections in flight */
    unsigned done;                   /* sockets joined, failed or closed (last scan) */
    unsigned *free_slots;            /* churn: stack of free slots */
    unsigned n_free;                 /* churn: entries of free_slots */
    uint64_t churn_started;          /* churn: cycles started (or refused) */
    struct lt_client_stats st;       /* counters */
    struct lt_hist *lat;             /* latency of every delivery, microseconds */
    struct lt_hist *ilat;            /* latency since the last progress record */
    struct lt_hist *join;            /* join latency, microseconds */
    int64_t start_us;                /* monotonic start time */
    int64_t last_tick_us;            /* time of the last tick */
    int64_t last_scan_us;            /* time of the last scan */
    int64_t last_report_us;          /* time of the last progress record */
    bool ready_sent;                 /* LT_MSG_READY went out */
    bool stop;                       /* leave the loop */
};

extern const struct lt_transport lt__tp_epoll;

/* Transport -> protocol. */
void lt__on_open(struct lt_proc *p, struct lt_client *c);
void lt__on_open_failed(struct lt_proc *p, struct lt_client *c);
void lt__on_closed(struct lt_proc *p, struct lt_client *c);
/* One complete message (len bytes at f, not NUL-terminated); binary when `bin`. */
void lt__on_message(struct lt_proc *p, struct lt_client *c, const char *f, size_t len, bool bin);
/* Writes the next pending frame's text into buf; returns its length, 0 if none, <0 on error. */
int lt__next_frame(struct lt_proc *p, struct lt_client *c, char *buf, size_t cap);
/* The request path (with query) of c; valid until the next call. */
const char *lt__path(struct lt_proc *p, const struct lt_client *c);

#define LT_FRAME_CAP 1024       /* room for one outbound frame, bytes */
#define LT_MAX_MSG   (4u << 20) /* largest inbound message accepted, bytes */

#endif
