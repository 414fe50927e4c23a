/*
 * wsclient: the WebSocket side of tidings-load. One process, many non-blocking sockets
 * on one epoll loop (ws_epoll.c), in one of two roles:
 *
 * Subscribers (churn unset): `count` sockets that stay connected. With the tidings target
 * they speak the supabase-js wire protocol (vsn 2.0.0 JSON arrays, PROTOCOL.md 1-5): each
 * socket joins realtime:bench (kind SHARED), realtime:bench and realtime:bench-<client>
 * (BOTH), or realtime:bench-<client> with one filtered postgres_changes binding (PG), and
 * heartbeats every heartbeat_s like the client. With the simple target a socket is a GET
 * /sub/<topic> WebSocket whose text frames are the message bodies (BOTH: two sockets per
 * client, socket s is client s/2, topic bench for even s, bench-<client> for odd s). Every
 * delivered message becomes a latency sample (now - its ts_us) and its seq is checked per
 * (socket, topic, publisher) for duplicates and gaps.
 *
 * Churn (churn set): a pool of `count` slots; churn_rate times per second a free slot
 * connects, joins realtime:bench (simple: completes the upgrade of /sub/bench), waits for
 * the ok reply, and closes. Completed cycles, failures (connect error, join error, server
 * close, no reply within 10 s, no free slot) and join latency are counted.
 *
 * lt_clients_run() drives the life of the process: it opens the sockets (at most
 * LT_CONNECT_BURST handshakes in flight, each retried a few times), reports LT_MSG_READY
 * on report_fd once every socket is joined or given up (churn: at once), LT_MSG_PROGRESS
 * every LT_PROGRESS_MS, and LT_MSG_CLIENT_FINAL when ctl_fd reaches end of file (or
 * max_run_s passes); then it closes everything and returns.
 */
#ifndef LT_WSCLIENT_H
#define LT_WSCLIENT_H

#include <stdbool.h>

#define LT_CONNECT_BURST 128 /* WebSocket handshakes in flight at once, per process */

enum lt_sub_kind {
    LT_SUB_SHARED = 0, /* realtime:bench (simple: /sub/bench) */
    LT_SUB_BOTH = 1,   /* realtime:bench and realtime:bench-<client> */
    LT_SUB_PG = 2,     /* realtime:bench-<client> with postgres_changes (db) */
};

struct lt_clients_opts {
    const char *host;        /* server address (loopback) */
    int port;                /* server port */
    const char *token;       /* apikey query parameter (tidings target) */
    bool simple;             /* simple target: GET /sub/<topic>, no join, no heartbeat */
    enum lt_sub_kind kind;   /* what each socket subscribes to */
    bool churn;              /* churn process instead of subscribers */
    bool private_ch;         /* join with config.private true */
    bool presence;           /* own-topic channels enable presence and track once joined */
    double churn_rate;       /* churn: cycles per second */
    unsigned first;          /* global index of this process's first socket */
    unsigned count;          /* sockets (churn: slots) of this process */
    unsigned publishers;     /* P: the shared topic has P independent seq streams */
    unsigned businesses;     /* PG: socket i filters business_id=eq.(i % B) */
    const char *table;       /* PG: table of the binding, in schema public */
    unsigned src_addrs;      /* source addresses 127.0.<src_net>.1 .. .N (N >= 1) */
    unsigned src_net;        /* third octet of the source addresses */
    double heartbeat_s;      /* heartbeat interval */
    int ctl_fd;              /* read end from the driver; end of file = stop */
    int report_fd;           /* write end to the driver */
    unsigned join_timeout_s; /* LT_MSG_READY is sent at the latest after this */
    unsigned max_run_s;      /* hard limit on the life of the process */
};

/* Runs the sockets of o until told to stop. Returns 0, or a negative GW_E* code. */
int lt_clients_run(const struct lt_clients_opts *o);

#endif
