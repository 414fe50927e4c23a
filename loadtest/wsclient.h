/*
 * wsclient: the subscriber side of the load tools. One process, many non-blocking
 * WebSocket connections that speak the supabase-js wire protocol (vsn 2.0.0 JSON arrays,
 * PROTOCOL.md 1-5): each socket joins one channel with one postgres_changes binding,
 * heartbeats every 25 s, and turns every delivered change into a latency sample (now - the
 * row's ts_us column) in an lt_hist.
 *
 * Two transports: LT_IMPL_EPOLL (default) runs its own epoll loop and WebSocket framing,
 * so a pass costs only the ready sockets; LT_IMPL_LWS uses one lws client context, whose
 * poll() loop costs every open socket on each pass (see docs/BENCHMARKS.md for why the
 * default is epoll: at 1000 sockets the lws client could not keep up with the gateway).
 *
 * With `broadcast` set (fan-out mode, fanout.h) every socket joins the public channel
 * realtime:bench without postgres_changes, counts as subscribed once the join is answered
 * ok, and takes its latency samples from the "ts_us" of every broadcast frame.
 *
 * lt_clients_run() drives the whole life of the process: it opens the sockets (at most
 * LT_CONNECT_BURST handshakes at once, each retried a few times), reports LT_MSG_READY on
 * report_fd once every socket is subscribed or given up, LT_MSG_PROGRESS every
 * LT_PROGRESS_MS, and LT_MSG_CLIENT_FINAL when ctl_fd reaches end of file (or max_run_s
 * passes); then it closes everything and returns.
 */
#ifndef LT_WSCLIENT_H
#define LT_WSCLIENT_H

#include <stdbool.h>

#define LT_CONNECT_BURST 64 /* WebSocket handshakes in flight at once, per process */

enum lt_client_impl {
    LT_IMPL_EPOLL = 0, /* own epoll loop */
    LT_IMPL_LWS = 1,   /* lws client context */
};

struct lt_clients_opts {
    enum lt_client_impl impl; /* transport */
    const char *host;         /* server address, "127.0.0.1" */
    int port;                 /* server port */
    const char *token;        /* apikey query parameter (a JWT) */
    unsigned first;           /* global index of this process's first subscriber */
    unsigned count;           /* subscribers (sockets) of this process */
    unsigned businesses;      /* B: subscriber i filters business_id=eq.(i % B) */
    unsigned src_addrs;       /* local source addresses 127.0.0.1 .. 127.0.0.N (N >= 1) */
    const char *table;        /* table of the binding, in schema public */
    int ctl_fd;               /* read end from the driver; end of file = stop */
    int report_fd;            /* write end to the driver */
    unsigned join_timeout_s;  /* LT_MSG_READY is sent at the latest after this */
    unsigned max_run_s;       /* hard limit on the life of the process */
    bool broadcast;           /* fan-out mode: join realtime:bench for broadcasts only */
};

/* Runs the subscribers of o until told to stop. Returns 0, or a negative GW_E* code. */
int lt_clients_run(const struct lt_clients_opts *o);

#endif
