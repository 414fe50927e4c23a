/*
 * publish: a publisher process of tidings-load. One blocking keep-alive HTTP/1.1
 * connection to the server; every message body is
 * {"ts_us":<CLOCK_REALTIME us>,"seq":<n>[,"pub":<k>],"pad":"xxx..."} of about payload_bytes
 * ("pub" only when there are several publishers: the shared topic then has one seq stream
 * per publisher). Target tidings: POST /realtime/v1/api/broadcast with per_post messages
 * {"topic":..,"event":"e","payload":<body>} (202 expected); target simple: POST
 * /pub/<topic> with the body alone (any 2xx).
 *
 * Two schedules are merged: the shared topic `bench` at `rate` messages/s and the own
 * topics at `own_rate` messages/s, round-robin over the own topics of this publisher
 * (bench-<i> for i = index, index + P, ...; so every topic has exactly one publisher and
 * seq 1, 2, 3, ...). A batch is sent when its first message is due, so a slow POST is
 * caught up right after and no message is skipped; a publisher still behind 5 s after
 * `seconds` stops and counts what it did not send (the server could not take the offered
 * rate). The results go into the writer's records (ipc.h): tx = POSTs, rows = messages
 * accepted, expected = deliveries they must cause (shared: clients each, own: one),
 * tokens_lost = messages never sent, commit histogram = POST round trip.
 */
#ifndef LT_PUBLISH_H
#define LT_PUBLISH_H

#include <stdbool.h>

#include "base/base.h"
#include "loadtest/ipc.h"

struct lt_pub_opts {
    const char *host;       /* server address (loopback) */
    int port;               /* server port */
    const char *token;      /* apikey header (tidings) */
    bool simple;            /* simple target */
    bool private_ch;        /* tidings: the messages go to private channels */
    unsigned index;         /* k: this publisher, 0 .. publishers-1 */
    unsigned publishers;    /* P */
    double rate;            /* this publisher's messages/s to the shared topic */
    double own_rate;        /* this publisher's messages/s over its own topics */
    unsigned clients;       /* N: subscribers of bench, own topics bench-0 .. bench-(N-1) */
    double seconds;         /* how long to publish */
    unsigned per_post;      /* tidings: messages in one POST (1..100) */
    unsigned payload_bytes; /* approximate size of one body */
    int report_fd;          /* progress records go here; -1 = none */
};

/*
 * Publishes for o->seconds and fills *out. Returns 0, or a negative GW_E* code with a
 * message in err (connection failure, a refused POST or a broken HTTP exchange).
 */
int lt_publish_run(const struct lt_pub_opts *o, struct lt_writer_final *out, struct gw_buf *err);

#endif
