/*
 * writer: the PostgreSQL side of the load tools (libpq). lt_pg_setup() creates the bench
 * table and enables its changes for tidings; lt_writer_run() commits rows at a target rate.
 *
 * The table: public.<table>(id bigserial primary key, business_id int, ts_us bigint,
 * payload text). Each transaction is one multi-row INSERT sent in libpq pipeline mode and
 * followed by a Sync, so it commits on its own, with at most max_inflight transactions
 * unanswered. ts_us is CLOCK_REALTIME in microseconds taken right before the transaction is
 * sent; business_id is uniform in [0, businesses). A token bucket (burst: 20 ms of rate)
 * paces the rows; tokens that arrive while the in-flight cap is reached are lost and
 * counted, so the achieved rate is what PostgreSQL really accepted.
 */
#ifndef LT_WRITER_H
#define LT_WRITER_H

#include "base/base.h"
#include "loadtest/ipc.h"

struct lt_writer_opts {
    const char *conninfo;   /* libpq connection string */
    const char *table;      /* table name in schema public ([a-z0-9_]) */
    double rate;            /* target rows per second */
    double seconds;         /* how long to send */
    unsigned rows_per_tx;   /* rows in each transaction (1..1000) */
    unsigned businesses;    /* B */
    unsigned clients;       /* K: subscriber i filters business_id = i % B */
    unsigned payload_bytes; /* length of the payload text of each row */
    unsigned max_inflight;  /* transactions sent but not yet acknowledged */
    uint64_t seed;          /* random seed of the business ids */
    int report_fd;          /* progress records go here; -1 = none */
};

/*
 * Creates public.<table> if missing, empties it, and calls tidings.enable_changes() on it,
 * retrying for up to wait_s seconds while schema tidings is not installed yet (the gateway
 * installs it when it connects). Returns 0, or a negative GW_E* code with a message in err.
 */
int lt_pg_setup(const char *conninfo, const char *table, unsigned wait_s, struct gw_buf *err);

/*
 * Sends rows for o->seconds, then waits (at most 10 s) for the transactions in flight.
 * Fills *out (stats and the send-to-commit histogram). Returns 0, or a negative GW_E* code
 * with a message in err (connection or preparation failure).
 */
int lt_writer_run(const struct lt_writer_opts *o, struct lt_writer_final *out, struct gw_buf *err);

#endif
