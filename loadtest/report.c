/*
 * report.c: what a tidings-load run prints and writes (load.h): the completeness verdict,
 * the human summary, the JSON result of load_cli.md (every key always present, null when
 * not measured) and the CSV (a header and one row, flattened from the same JSON: params
 * and every scalar of results, nested objects as name_key).
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "loadtest/load.h"

/* ---- verdict ---- */

uint64_t
lt_result_drops(const struct lt_result *r)
{
    uint64_t got = r->subs.received - r->subs.duplicates;

    return r->pub.st.expected > got ? r->pub.st.expected - got : 0;
}

static bool
subs_complete(const struct lt_opts *o, const struct lt_result *r)
{
    const struct lt_client_stats *c = &r->subs;

    return r->procs_ok == o->procs && c->settled == c->sockets &&
           c->sockets == (uint64_t)o->clients * lt_sockets_per_client(o) && !c->failed &&
           !c->disconnects && !c->chan_closed && !c->bad_frames && !c->misrouted &&
           !c->duplicates && !c->gaps;
}

bool
lt_result_complete(const struct lt_opts *o, const struct lt_result *r)
{
    if (!subs_complete(o, r))
        return false;
    if (lt_has_churn(o) && (r->churn_ok != 1 || r->churn.churn_failed || !r->churn.churn_cycles))
        return false;
    if (o->scenario == LT_SC_IDLE)
        return true;
    if (o->scenario != LT_SC_DB && r->pub.st.tokens_lost)
        return false; /* the offered rate was not applied */
    return r->pub_ok && !r->pub.st.tx_err && r->pub.st.rows_ok && !lt_result_drops(r) &&
           r->subs.received - r->subs.duplicates == r->pub.st.expected;
}

/* ---- derived figures (NaN = not measured) ---- */

static double
deliveries_per_s(const struct lt_opts *o, const struct lt_result *r)
{
    return o->scenario != LT_SC_IDLE && r->window_s > 0 ? (double)r->subs.received / r->window_s
                                                        : NAN;
}

static double
us_per_delivery(const struct lt_result *r)
{
    return r->gw_cpu_s >= 0 && r->subs.received ? r->gw_cpu_s * 1e6 / (double)r->subs.received
                                                : NAN;
}

static double
bytes_per_conn(const struct lt_result *r)
{
    if (r->rss_baseline_kb < 0 || r->rss_held_kb < 0 || !r->subs.connected)
        return NAN;
    return (double)(r->rss_held_kb - r->rss_baseline_kb) * 1024.0 / (double)r->subs.connected;
}

static double
ms(uint64_t us)
{
    return (double)us / 1000.0;
}

/* ---- human summary ---- */

static void
print_hist(FILE *f, const char *name, const struct lt_hist *h)
{
    if (!h->count) {
        fprintf(f, "%s: none\n", name);
        return;
    }
    fprintf(f, "%s: n=%llu  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms\n", name,
            (unsigned long long)h->count, ms(lt_hist_percentile(h, 50)),
            ms(lt_hist_percentile(h, 90)), ms(lt_hist_percentile(h, 99)),
            ms(lt_hist_percentile(h, 99.9)), ms(h->max));
}

static void
print_subs(FILE *f, const struct lt_opts *o, const struct lt_result *r)
{
    const struct lt_client_stats *c = &r->subs;

    fprintf(f,
            "sockets: %llu in %u process(es) from %u source address(es); connected %llu in "
            "%.1f s, joined %llu, failed %llu, connect errors %llu, disconnects %llu, channel "
            "closes %llu\n",
            (unsigned long long)c->sockets, o->procs, o->src_addrs,
            (unsigned long long)c->connected, r->connect_s, (unsigned long long)c->settled,
            (unsigned long long)c->failed, (unsigned long long)c->connect_errors,
            (unsigned long long)c->disconnects, (unsigned long long)c->chan_closed);
    print_hist(f, "join", &r->join);
}

static void
print_traffic(FILE *f, const struct lt_opts *o, const struct lt_result *r)
{
    const struct lt_client_stats *c = &r->subs;
    const struct lt_writer_stats *w = &r->pub.st;

    fprintf(f,
            "published: %llu messages in %llu request(s) over %.1f s, %llu failed request(s), "
            "%llu %s\n",
            (unsigned long long)w->rows_ok, (unsigned long long)w->tx_ok, w->window_s,
            (unsigned long long)w->tx_err, (unsigned long long)w->tokens_lost,
            o->scenario == LT_SC_DB ? "rows lost to the in-flight cap"
                                    : "never sent (the server fell behind the rate)");
    fprintf(f,
            "deliveries: expected %llu, received %llu, drops %llu, duplicates %llu, gaps %llu, "
            "bad %llu, misrouted %llu; %.0f deliveries/s\n",
            (unsigned long long)w->expected, (unsigned long long)c->received,
            (unsigned long long)lt_result_drops(r), (unsigned long long)c->duplicates,
            (unsigned long long)c->gaps, (unsigned long long)c->bad_frames,
            (unsigned long long)c->misrouted, deliveries_per_s(o, r));
    print_hist(f, "latency", &r->lat);
    if (lt_has_churn(o))
        fprintf(f, "churn: %llu cycles, %llu failed (%.0f/s offered)\n",
                (unsigned long long)r->churn.churn_cycles,
                (unsigned long long)r->churn.churn_failed, o->churn_rate);
}

static void
print_gateway(FILE *f, const struct lt_opts *o, const struct lt_result *r)
{
    if (r->gw_cpu_pct >= 0)
        fprintf(f, "gateway: cpu %.1f %% of one core", r->gw_cpu_pct);
    if (r->gw_cpu_pct >= 0 && !isnan(us_per_delivery(r)))
        fprintf(f, ", %.2f us per delivery", us_per_delivery(r));
    if (r->gw_cpu_pct >= 0)
        fputc('\n', f);
    if (r->rss_held_kb >= 0)
        fprintf(f, "gateway rss: %lld KB before, %lld KB held, %.0f bytes per connection (held)\n",
                (long long)r->rss_baseline_kb, (long long)r->rss_held_kb, bytes_per_conn(r));
    if (!isnan(r->rss_slope_kb_min))
        fprintf(f, "gateway rss slope after warm-up: %.1f KB/min\n", r->rss_slope_kb_min);
    if (r->pg_cpu_pct >= 0)
        fprintf(f, "postgresql: cpu %.1f %% of one core\n", r->pg_cpu_pct);
    fprintf(f, "kernel tcp memory: %lld pages before, %lld held; load processes cpu %.1f %%\n",
            (long long)r->sock_mem_baseline, (long long)r->sock_mem_held, r->load_cpu_pct);
    (void)o;
}

void
lt_result_print(FILE *f, const struct lt_opts *o, const struct lt_result *r)
{
    fprintf(f, "tidings-load %s (%s target): %u clients, %.1f s", lt_scenario_name(o->scenario),
            lt_target_name(o->target), o->clients, o->seconds);
    if (o->scenario != LT_SC_IDLE)
        fprintf(f, ", rate %.0f/s", o->rate);
    if (lt_has_own_topic(o))
        fprintf(f, ", own-rate %.0f/s", o->own_rate);
    fprintf(f, "%s%s\n", o->label ? ", " : "", o->label ? o->label : "");
    print_subs(f, o, r);
    if (o->scenario != LT_SC_IDLE)
        print_traffic(f, o, r);
    print_gateway(f, o, r);
    fprintf(f, "result: %s\n", lt_result_complete(o, r) ? "COMPLETE" : "INCOMPLETE");
}

/* ---- JSON ---- */

static json_t *
num(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

static json_t *
inum(int64_t v)
{
    return v < 0 ? json_null() : json_integer((json_int_t)v);
}

static json_t *
pct_json(const struct lt_hist *h)
{
    if (!h->count)
        return json_pack("{s:n,s:n,s:n,s:n,s:n}", "p50", "p90", "p99", "p999", "max");
    return json_pack("{s:f,s:f,s:f,s:f,s:f}", "p50", ms(lt_hist_percentile(h, 50)), "p90",
                     ms(lt_hist_percentile(h, 90)), "p99", ms(lt_hist_percentile(h, 99)), "p999",
                     ms(lt_hist_percentile(h, 99.9)), "max", ms(h->max));
}

static json_t *
counters_json(const struct lt_client_stats *c)
{
    json_t *j = json_object();

#define LT_JSON(f) json_object_set_new(j, #f, json_integer((json_int_t)c->f));
    LT_CLIENT_STATS_FIELDS(LT_JSON)
#undef LT_JSON
    return j;
}

/* The keys load_cli.md does not name: raw counters and more CPU detail. */
static void
extra_json(json_t *j, const struct lt_result *r)
{
    json_t *cpus = json_array();

    for (unsigned i = 0; i < r->n_cpus; i++)
        json_array_append_new(cpus, json_real(r->cpu_busy_pct[i]));
    json_object_set_new(j, "cpu_busy_pct", cpus);
    json_object_set_new(j, "postgresql_cpu_pct",
                        r->pg_cpu_pct >= 0 ? json_real(r->pg_cpu_pct) : json_null());
    json_object_set_new(j, "window_s", json_real(r->window_s));
    json_object_set_new(j, "connect_s", json_real(r->connect_s));
    json_object_set_new(j, "post_ms", pct_json(&r->pub.commit));
    json_object_set_new(j, "unsent", json_integer((json_int_t)r->pub.st.tokens_lost));
    json_object_set_new(j, "subscriber_counters", counters_json(&r->subs));
    json_object_set_new(j, "churn_counters", counters_json(&r->churn));
}

static json_t *
results_json(const struct lt_opts *o, const struct lt_result *r)
{
    const struct lt_client_stats *c = &r->subs;
    bool churn = lt_has_churn(o);
    json_t *j = json_pack(
        "{s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o}", "sockets",
        (json_int_t)c->sockets, "connected", (json_int_t)c->connected, "connect_failed",
        (json_int_t)c->failed, "connect_errors", (json_int_t)c->connect_errors,
        "connect_rate_per_s", num(r->connect_s > 0 ? (double)c->connected / r->connect_s : NAN),
        "reconnects", (json_int_t)c->reconnects, "disconnects", (json_int_t)c->disconnects,
        "join_ms", pct_json(&r->join), "published", (json_int_t)r->pub.st.rows_ok, "expected",
        (json_int_t)r->pub.st.expected, "received", (json_int_t)c->received, "drops",
        (json_int_t)lt_result_drops(r), "duplicates", (json_int_t)c->duplicates, "gaps",
        (json_int_t)c->gaps, "deliveries_per_s", num(deliveries_per_s(o, r)), "latency_ms",
        pct_json(&r->lat));

    json_object_set_new(j, "churn_cycles",
                        churn ? json_integer((json_int_t)r->churn.churn_cycles) : json_null());
    json_object_set_new(j, "churn_failed",
                        churn ? json_integer((json_int_t)r->churn.churn_failed) : json_null());
    json_object_set_new(j, "gateway_cpu_pct", num(r->gw_cpu_pct >= 0 ? r->gw_cpu_pct : NAN));
    json_object_set_new(j, "gateway_us_per_delivery", num(us_per_delivery(r)));
    json_object_set_new(j, "load_cpu_pct", json_real(r->load_cpu_pct));
    json_object_set_new(j, "gateway_rss_kb_baseline", inum(r->rss_baseline_kb));
    json_object_set_new(j, "gateway_rss_kb_held", inum(r->rss_held_kb));
    json_object_set_new(j, "rss_bytes_per_conn", num(bytes_per_conn(r)));
    json_object_set_new(j, "rss_slope_kb_per_min", num(r->rss_slope_kb_min));
    json_object_set_new(j, "sockstat_tcp_mem_pages_baseline", inum(r->sock_mem_baseline));
    json_object_set_new(j, "sockstat_tcp_mem_pages_held", inum(r->sock_mem_held));
    json_object_set_new(j, "complete", json_boolean(lt_result_complete(o, r)));
    extra_json(j, r);
    return j;
}

static json_t *
timeline_json(const struct lt_result *r)
{
    json_t *a = json_array();

    for (size_t i = 0; i < r->n_timeline; i++) {
        const struct lt_sample *s = &r->timeline[i];

        json_array_append_new(
            a, json_pack("{s:f,s:I,s:f,s:f,s:f,s:f,s:o,s:f}", "t_s", s->t_s, "connections",
                         (json_int_t)s->connections, "deliveries_per_s", s->deliveries_per_s,
                         "p50_ms", s->p50_ms, "p99_ms", s->p99_ms, "max_ms", s->max_ms, "rss_kb",
                         inum(s->rss_kb), "published_per_s", s->published_per_s));
    }
    return a;
}

static json_t *
host_json(void)
{
    struct utsname u;

    return json_pack("{s:I,s:s}", "nproc", (json_int_t)sysconf(_SC_NPROCESSORS_ONLN), "kernel",
                     uname(&u) == 0 ? u.release : "");
}

static json_t *
result_json(const struct lt_opts *o, const struct lt_result *r)
{
    time_t t = (time_t)(r->started_us / 1000000);
    char started[32];
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_pack("{s:s,s:i,s:s,s:o,s:s,s:o,s:o,s:o,s:o}", "tool", "tidings-load", "format", 1,
                     "scenario", lt_scenario_name(o->scenario), "label",
                     o->label ? json_string(o->label) : json_null(), "started", started, "host",
                     host_json(), "params", lt_opts_params(o), "results", results_json(o, r),
                     "timeline", timeline_json(r));
}

int
lt_result_json(const char *path, const struct lt_opts *o, const struct lt_result *r)
{
    json_t *j = result_json(o, r);
    int rc = j && json_dump_file(j, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 ? 0 : GW_EIO;

    json_decref(j);
    return rc;
}

/* ---- CSV ---- */

static void
csv_value(struct gw_buf *b, json_t *v)
{
    if (json_is_string(v)) {
        gw_buf_append_str(b, "\"");
        for (const char *s = json_string_value(v); *s; s++)
            gw_buf_append(b, *s == '"' ? "\"\"" : s, *s == '"' ? 2 : 1);
        gw_buf_append_str(b, "\"");
    } else if (json_is_integer(v)) {
        gw_buf_printf(b, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        gw_buf_printf(b, "%.6g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        gw_buf_append_str(b, json_is_true(v) ? "true" : "false");
    }
}

/* Adds the scalars of obj (one level of nested objects as prefix_key) to head and row. */
static void
csv_object(struct gw_buf *head, struct gw_buf *row, const char *prefix, json_t *obj)
{
    const char *k;
    json_t *v;

    json_object_foreach(obj, k, v) {
        if (json_is_array(v) || (json_is_object(v) && *prefix))
            continue;
        if (json_is_object(v)) {
            csv_object(head, row, k, v);
            continue;
        }
        gw_buf_printf(head, ",%s%s%s", prefix, *prefix ? "_" : "", k);
        gw_buf_append_str(row, ",");
        csv_value(row, v);
    }
}

int
lt_result_csv(const char *path, const struct lt_opts *o, const struct lt_result *r)
{
    json_t *j = result_json(o, r);
    struct gw_buf head, row;
    FILE *f = fopen(path, "w");
    int rc = GW_EIO;

    gw_buf_init(&head);
    gw_buf_init(&row);
    gw_buf_printf(&head, "scenario,started"); /* the label is among the params */
    csv_value(&row, json_object_get(j, "scenario"));
    gw_buf_append_str(&row, ",");
    csv_value(&row, json_object_get(j, "started"));
    csv_object(&head, &row, "", json_object_get(j, "params"));
    csv_object(&head, &row, "", json_object_get(j, "results"));
    if (f && fprintf(f, "%s\n%s\n", head.data, row.data) > 0)
        rc = 0;
    if (f && fclose(f))
        rc = GW_EIO;
    gw_buf_release(&head);
    gw_buf_release(&row);
    json_decref(j);
    return rc;
}
