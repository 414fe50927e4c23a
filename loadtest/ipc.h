/*
 * ipc: the records the load processes send their driver through pipes, and the helpers
 * that frame them. A record is a header {type, len} followed by len bytes of one of the
 * flat structs below (host byte order: both ends are the same binary on the same host).
 * Client processes send LT_MSG_READY once every socket has joined (or failed),
 * LT_MSG_PROGRESS every LT_PROGRESS_MS (counters and the latencies of that interval, so the
 * driver can merge per-second percentiles), and LT_MSG_CLIENT_FINAL (counters and whole-run
 * histograms) when told to stop. The writer or publisher sends LT_MSG_WRITER_PROGRESS and
 * one LT_MSG_WRITER_FINAL.
 */
#ifndef LT_IPC_H
#define LT_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "loadtest/hist.h"

#define LT_PROGRESS_MS 250 /* interval of the progress records */

enum lt_msg_type {
    LT_MSG_READY = 1,           /* struct lt_client_progress: all sockets joined or failed */
    LT_MSG_PROGRESS = 2,        /* struct lt_client_progress */
    LT_MSG_CLIENT_FINAL = 3,    /* struct lt_client_final */
    LT_MSG_WRITER_PROGRESS = 4, /* struct lt_writer_stats */
    LT_MSG_WRITER_FINAL = 5,    /* struct lt_writer_final */
};

/* Counters of one client process (subscriber or churn). */
struct lt_client_stats {
    uint64_t sockets;        /* sockets this process is in charge of (steady subscribers) */
    uint64_t connected;      /* WebSocket handshakes completed */
    uint64_t open;           /* established sockets open right now */
    uint64_t connect_errors; /* failed connection attempts (each retry counts) */
    uint64_t reconnects;     /* connection attempts after the first one of a socket */
    uint64_t failed;         /* sockets given up after every retry */
    uint64_t disconnects;    /* established sockets closed by the server or the network */
    uint64_t joins_ok;       /* phx_join replies with status ok (channels) */
    uint64_t joins_err;      /* phx_join replies with status error */
    uint64_t settled;        /* sockets whose every channel is joined (last scan) */
    uint64_t subscribed;     /* db: channels with the system "Subscribed to PostgreSQL" */
    uint64_t sys_errors;     /* db: postgres_changes system errors (each is retried) */
    uint64_t chan_closed;    /* phx_close / phx_error received for a joined channel */
    uint64_t received;       /* messages delivered (broadcasts, changes or simple frames) */
    uint64_t duplicates;     /* messages whose seq was not above the last one seen */
    uint64_t gaps;           /* messages skipped: sum of the seq jumps */
    uint64_t bad_frames;     /* messages without a usable ts_us or seq */
    uint64_t misrouted;      /* messages of a topic (or business) the socket did not ask for */
    uint64_t other_frames;   /* frames of any other kind */
    uint64_t hb_sent;        /* heartbeats sent */
    uint64_t hb_ok;          /* heartbeat replies with status ok */
    uint64_t tracks_sent;    /* presence track pushes sent */
    uint64_t tracks_ok;      /* presence track replies with status ok */
    uint64_t presence_in;    /* presence_state and presence_diff frames received */
    uint64_t rx_bytes;       /* payload bytes of every frame received */
    uint64_t churn_cycles;   /* churn: connect + join + close cycles completed */
    uint64_t churn_failed;   /* churn: cycles that failed (connect, join, timeout, no slot) */
};

/* X-macro over every field of struct lt_client_stats (sums, JSON); keep it in step. */
#define LT_CLIENT_STATS_FIELDS(X) \
    X(sockets)                    \
    X(connected)                  \
    X(open)                       \
    X(connect_errors)             \
    X(reconnects)                 \
    X(failed)                     \
    X(disconnects)                \
    X(joins_ok)                   \
    X(joins_err)                  \
    X(settled)                    \
    X(subscribed)                 \
    X(sys_errors)                 \
    X(chan_closed)                \
    X(received)                   \
    X(duplicates)                 \
    X(gaps)                       \
    X(bad_frames)                 \
    X(misrouted)                  \
    X(other_frames)               \
    X(hb_sent)                    \
    X(hb_ok)                      \
    X(tracks_sent)                \
    X(tracks_ok)                  \
    X(presence_in)                \
    X(rx_bytes)                   \
    X(churn_cycles)               \
    X(churn_failed)

/* A progress record: the counters so far and the latencies since the previous record. */
struct lt_client_progress {
    struct lt_client_stats st; /* counters so far */
    struct lt_hist lat;        /* delivery latency since the previous record, microseconds */
};

struct lt_client_final {
    struct lt_client_stats st; /* final counters */
    struct lt_hist lat;        /* publish-to-client latency of every delivery, microseconds */
    struct lt_hist join;       /* phx_join sent to ok reply (simple: connect to 101), us */
};

/* Counters of the writer process (db) or of a publisher process (every other scenario:
 * tx = POSTs, rows = messages accepted, expected = the deliveries they must cause). */
struct lt_writer_stats {
    uint64_t tx_sent;     /* transactions sent */
    uint64_t tx_ok;       /* transactions committed */
    uint64_t tx_err;      /* transactions that failed */
    uint64_t rows_ok;     /* rows committed */
    uint64_t expected;    /* deliveries the committed rows must cause */
    uint64_t tokens_lost; /* rows the rate asked for but the in-flight cap refused */
    int64_t t0_us;        /* CLOCK_REALTIME when the writer started sending */
    int64_t t_end_us;     /* CLOCK_REALTIME when the last transaction was acknowledged */
    double window_s;      /* seconds during which rows were sent */
};

struct lt_writer_final {
    struct lt_writer_stats st; /* final counters */
    struct lt_hist commit;     /* send-to-commit-acknowledged time, microseconds */
};

/* Clocks in microseconds: CLOCK_REALTIME (comparable across processes) and monotonic. */
int64_t lt_wall_us(void);
int64_t lt_mono_us(void);

/* Writes one record; returns 0 or GW_EIO. Blocking; EINTR is retried. */
int lt_msg_send(int fd, uint32_t type, const void *p, size_t len);

/*
 * Reads one record into buf (cap bytes) within timeout_ms. Returns 0 with *type and *len
 * set, GW_ENOTFOUND at end of file before a header, GW_EAGAIN on timeout, GW_ELIMIT when the
 * record is larger than cap, GW_EIO otherwise.
 */
int lt_msg_recv(int fd, uint32_t *type, void *buf, size_t cap, size_t *len, int timeout_ms);

#endif
