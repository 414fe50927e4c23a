/*
 * fanout: the publisher of the broadcast fan-out benchmark (docs/BENCHMARKS.md 2).
 *
 * In fan-out mode (`tidings-pgbench --fanout`) the subscribers (wsclient.h, broadcast
 * set) all join the public channel realtime:bench, and the writer process runs
 * lt_fanout_publish() instead of the PostgreSQL writer: one blocking keep-alive HTTP/1.1
 * connection to the gateway, one POST /realtime/v1/api/broadcast per `per_post` messages,
 * paced by a token bucket to `rate` messages per second for `seconds`. Each message is
 * {"topic":"bench","event":"e","payload":{"ts_us":<CLOCK_REALTIME us>,"seq":n,"pad":"..."}}
 * of about `payload_bytes` bytes; every subscriber's latency is now - ts_us. The results go
 * into the writer's records (ipc.h): rows = messages accepted (202), tx = POSTs, expected =
 * clients * messages, commit histogram = POST round trip.
 */
#ifndef LT_FANOUT_H
#define LT_FANOUT_H

#include "base/base.h"
#include "loadtest/ipc.h"

struct lt_fanout_opts {
    int port;               /* gateway port on 127.0.0.1 */
    const char *token;      /* apikey header */
    double rate;            /* messages per second */
    double seconds;         /* how long to send */
    unsigned per_post;      /* messages in one POST (1..100) */
    unsigned payload_bytes; /* approximate size of one message's payload */
    unsigned clients;       /* K: subscribers of realtime:bench (for expected) */
    int report_fd;          /* progress records go here; -1 = none */
};

/*
 * Publishes for o->seconds and fills *out. Returns 0, or a negative GW_E* code with a
 * message in err (connection failure or a broken HTTP exchange).
 */
int lt_fanout_publish(const struct lt_fanout_opts *o, struct lt_writer_final *out,
                      struct gw_buf *err);

#endif
