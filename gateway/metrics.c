/*
 * metrics.c: Prometheus text exposition of the gateway counters and the broadcast fan-out
 * latency histogram (time to hand one broadcast to every local subscriber queue).
 */
#include <inttypes.h>

#include "gateway/gateway_int.h"

static const double bounds[GW_HIST_BUCKETS] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                0.01,   0.025,   0.05,   0.1,   0.25,   0.5 };

void
gw__metrics_observe(struct gw_metrics *m, double seconds)
{
    for (int i = 0; i < GW_HIST_BUCKETS; i++) {
        if (seconds <= bounds[i]) {
            m->hist[i]++;
            break;
        }
    }
    m->hist_sum += seconds;
    m->hist_count++;
}

static void
metric(struct gw_buf *out, const char *name, const char *type, const char *help, uint64_t v)
{
    gw_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name,
                  v);
}

static void
histogram(struct gw_buf *out, const struct gw_metrics *m)
{
    const char *name = "tidings_broadcast_fanout_seconds";
    uint64_t cum = 0;

    gw_buf_printf(out,
                  "# HELP %s Time to queue one broadcast to every local subscriber.\n"
                  "# TYPE %s histogram\n",
                  name, name);
    for (int i = 0; i < GW_HIST_BUCKETS; i++) {
        cum += m->hist[i];
        gw_buf_printf(out, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bounds[i], cum);
    }
    gw_buf_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, m->hist_count);
    gw_buf_printf(out, "%s_sum %.9f\n%s_count %" PRIu64 "\n", name, m->hist_sum, name,
                  m->hist_count);
}

static void
redis_metrics(const struct gw *gw, struct gw_buf *out)
{
    struct fanout_redis_stats st;
    bool ready;

    fanout_redis_status(gw->fo, &ready);
    fanout_redis_stats(gw->fo, &st);
    metric(out, "tidings_redis_up", "gauge", "1 when every Redis instance is connected.",
           ready ? 1 : 0);
    metric(out, "tidings_redis_published_total", "counter", "Messages published to Redis.",
           st.published);
    metric(out, "tidings_redis_dropped_total", "counter",
           "Publishes not sent because an instance was down or its queue full.", st.dropped);
    metric(out, "tidings_redis_received_total", "counter",
           "Messages of other processes delivered from Redis.", st.received);
    metric(out, "tidings_redis_reconnects_total", "counter", "Redis reconnections.", st.reconnects);
}

void
gw__metrics_render(const struct gw *gw, struct gw_buf *out)
{
    const struct gw_metrics *m = &gw->m;

    metric(out, "tidings_connections", "gauge", "Open WebSocket connections.", m->connections);
    metric(out, "tidings_connections_total", "counter", "Accepted WebSocket connections.",
           m->connections_total);
    metric(out, "tidings_channels", "gauge", "Joined channels.", m->channels);
    metric(out, "tidings_topics", "gauge", "Topics with local subscribers.",
           (uint64_t)fanout_topic_count(gw->fo));
    metric(out, "tidings_joins_total", "counter", "Successful channel joins.", m->joins_total);
    metric(out, "tidings_join_errors_total", "counter", "Refused channel joins.",
           m->join_errors_total);
    metric(out, "tidings_messages_in_total", "counter", "Inbound WebSocket messages.",
           m->messages_in_total);
    metric(out, "tidings_messages_out_total", "counter", "Frames queued to clients.",
           m->messages_out_total);
    metric(out, "tidings_bytes_out_total", "counter", "Bytes written to WebSocket clients.",
           m->bytes_out_total);
    metric(out, "tidings_queue_drops_total", "counter",
           "Frames dropped because a client queue was full.", m->queue_drops_total);
    metric(out, "tidings_slow_consumer_disconnects_total", "counter",
           "Connections closed because their out-queue limit was exceeded.",
           m->slow_consumers_total);
    metric(out, "tidings_auth_failures_total", "counter", "Refused tokens and API keys.",
           m->auth_failures_total);
    metric(out, "tidings_protocol_errors_total", "counter", "Malformed or unexpected frames.",
           m->protocol_errors_total);
    metric(out, "tidings_rate_limited_total", "counter", "Actions refused by a rate limit.",
           m->rate_limited_total);
    metric(out, "tidings_broadcasts_total", "counter", "Broadcasts published.",
           m->broadcasts_total);
    metric(out, "tidings_rest_requests_total", "counter", "REST broadcast requests.",
           m->rest_requests_total);
    redis_metrics(gw, out);
    histogram(out, m);
}
