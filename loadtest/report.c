/*
 * report.c: what a benchmark run prints and writes (driver.h): the completeness verdict,
 * the human summary, the JSON file, and CPU sampling from /proc/<pid>/stat (utime and
 * stime, fields 14-15; cutime and cstime, fields 16-17, hold the reaped children).
 */
#include "loadtest/driver.h"

#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- CPU ---- */

/* Reads utime+stime (and cutime+cstime when `reaped`) of pid; sets *ppid. -1 if gone. */
static int64_t
stat_ticks(pid_t pid, bool reaped, long *ppid)
{
    char path[64], buf[1024], *p;
    unsigned long ut, st;
    long cut, cst;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld", ppid, &ut, &st,
               &cut, &cst) != 5)
        return -1;
    return (int64_t)(ut + st) + (reaped ? (int64_t)(cut + cst) : 0);
}

unsigned
lt_cpu_stat(uint64_t *busy, uint64_t *total, unsigned max)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[512];
    unsigned n = 0;

    while (f && n < max && fgets(line, sizeof(line), f)) {
        unsigned long long v[8] = { 0 };

        /* cpuN user nice system idle iowait irq softirq steal */
        if (strncmp(line, "cpu", 3) || line[3] < '0' || line[3] > '9' ||
            sscanf(line + 3, "%*u %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]) < 4)
            continue;
        total[n] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
        busy[n] = total[n] - v[3] - v[4];
        n++;
    }
    if (f)
        fclose(f);
    return n;
}

int64_t
lt_cpu_ticks(pid_t pid, bool tree)
{
    long ppid;
    int64_t total = stat_ticks(pid, tree, &ppid);
    DIR *dir;
    struct dirent *e;

    if (total < 0 || !tree || !(dir = opendir("/proc")))
        return total;
    while ((e = readdir(dir))) {
        char *end;
        long child = strtol(e->d_name, &end, 10);
        int64_t t;

        if (*end || child <= 0 || child == (long)pid)
            continue;
        t = stat_ticks((pid_t)child, false, &ppid);
        if (t > 0 && ppid == (long)pid)
            total += t;
    }
    closedir(dir);
    return total;
}

/* ---- verdict ---- */

uint64_t
lt_bench_expected(const struct lt_bench_result *r)
{
    return r->writer.st.expected;
}

bool
lt_bench_complete(const struct lt_bench_opts *o, const struct lt_bench_result *r)
{
    const struct lt_client_stats *c = &r->clients;

    if (o->run_clients &&
        (r->procs_ok != o->procs || c->subscribed != o->clients || c->joins_ok != o->clients ||
         c->disconnects || c->chan_closed || c->bad_frames || c->wrong_business))
        return false;
    if (o->run_writer && (!r->writer_ok || r->writer.st.tx_err || !r->writer.st.rows_ok))
        return false;
    return !o->run_clients || !o->run_writer || c->received == r->writer.st.expected;
}

/* ---- human summary ---- */

static double
ms(uint64_t us)
{
    return (double)us / 1000.0;
}

static void
print_hist(FILE *f, const char *name, const struct lt_hist *h)
{
    fprintf(f,
            "%s: n=%llu  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms"
            "  mean %.2f ms\n",
            name, (unsigned long long)h->count, ms(lt_hist_percentile(h, 50)),
            ms(lt_hist_percentile(h, 90)), ms(lt_hist_percentile(h, 99)),
            ms(lt_hist_percentile(h, 99.9)), ms(h->max), lt_hist_mean(h) / 1000.0);
}

static double
achieved(const struct lt_bench_result *r)
{
    const struct lt_writer_stats *w = &r->writer.st;

    return w->window_s > 0 ? (double)w->rows_ok / w->window_s : 0.0;
}

static void
print_clients(FILE *f, const struct lt_bench_opts *o, const struct lt_client_stats *c)
{
    fprintf(f,
            "subscribers (%s): %u sockets in %u processes from %u source address(es); connected "
            "%llu, joins ok %llu/err %llu, subscribed %llu, connect errors %llu, failed %llu, "
            "disconnects %llu, channel closes %llu, system errors %llu\n",
            o->impl == LT_IMPL_LWS ? "lws" : "epoll", o->clients, o->procs, o->src_addrs,
            (unsigned long long)c->connected, (unsigned long long)c->joins_ok,
            (unsigned long long)c->joins_err, (unsigned long long)c->subscribed,
            (unsigned long long)c->connect_errors, (unsigned long long)c->failed,
            (unsigned long long)c->disconnects, (unsigned long long)c->chan_closed,
            (unsigned long long)c->sys_errors);
}

static void
print_writer(FILE *f, const struct lt_bench_opts *o, const struct lt_bench_result *r)
{
    const struct lt_writer_stats *w = &r->writer.st;

    fprintf(f,
            "writer: offered %.0f rows/s, achieved %.1f rows/s (%llu rows in %llu tx over "
            "%.2f s), tx errors %llu, rows lost to the in-flight cap %llu\n",
            o->rate, achieved(r), (unsigned long long)w->rows_ok, (unsigned long long)w->tx_ok,
            w->window_s, (unsigned long long)w->tx_err, (unsigned long long)w->tokens_lost);
    print_hist(f, "commit (send to commit acknowledged)", &r->writer.commit);
}

void
lt_bench_print(FILE *f, const struct lt_bench_opts *o, const struct lt_bench_result *r)
{
    const struct lt_client_stats *c = &r->clients;
    uint64_t exp = lt_bench_expected(r);

    fprintf(f, "tidings-pgbench: K=%u subscribers, B=%u businesses", o->clients, o->businesses);
    if (o->run_writer)
        fprintf(f, ", rate %.0f rows/s for %.1f s, %u rows/tx, payload %u B", o->rate, o->seconds,
                o->rows_per_tx, o->payload_bytes);
    fputc('\n', f);
    if (o->run_clients)
        print_clients(f, o, c);
    if (o->run_writer)
        print_writer(f, o, r);
    if (o->run_clients && o->run_writer) {
        fprintf(f,
                "deliveries: expected %llu, received %llu, drops %lld, wrong business %llu, "
                "bad frames %llu, %.0f deliveries/s (waited %.2f s after the writer)\n",
                (unsigned long long)exp, (unsigned long long)c->received,
                (long long)exp - (long long)c->received, (unsigned long long)c->wrong_business,
                (unsigned long long)c->bad_frames,
                r->writer.st.window_s > 0 ? (double)c->received / r->writer.st.window_s : 0.0,
                r->drain_s);
        print_hist(f, "latency commit->client", &r->lat);
    }
    if (r->gw_cpu_pct >= 0 || r->pg_cpu_pct >= 0)
        fprintf(f, "cpu over %.1f s: gateway %.1f %%, postgresql %.1f %% (of one core; -1 = n/a)\n",
                r->cpu_window_s, r->gw_cpu_pct, r->pg_cpu_pct);
    fprintf(f, "load processes cpu: %.2f s\n", r->load_cpu_s);
    for (unsigned i = 0; i < r->n_cpus; i++)
        fprintf(f, "%scpu%u busy %.0f %%%s", i ? ", " : "cpu busy (all processes): ", i,
                r->cpu_busy_pct[i], i + 1 == r->n_cpus ? "\n" : "");
    fprintf(f, "result: %s\n", lt_bench_complete(o, r) ? "COMPLETE" : "INCOMPLETE");
}

/* ---- JSON ---- */

static json_t *
hist_json(const struct lt_hist *h)
{
    return json_pack(
        "{s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,s:I}", "count", (json_int_t)h->count, "min",
        (json_int_t)(h->count ? h->min : 0), "mean", lt_hist_mean(h), "p50",
        (json_int_t)lt_hist_percentile(h, 50), "p90", (json_int_t)lt_hist_percentile(h, 90), "p99",
        (json_int_t)lt_hist_percentile(h, 99), "p999", (json_int_t)lt_hist_percentile(h, 99.9),
        "max", (json_int_t)h->max, "negative", (json_int_t)h->negative);
}

static json_t *
params_json(const struct lt_bench_opts *o)
{
    return json_pack(
        "{s:i,s:s,s:I,s:I,s:f,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:b,s:b,s:s?,s:s}", "port",
        o->port, "table", o->table, "clients", (json_int_t)o->clients, "businesses",
        (json_int_t)o->businesses, "rate", o->rate, "seconds", o->seconds, "procs",
        (json_int_t)o->procs, "rows_per_tx", (json_int_t)o->rows_per_tx, "payload_bytes",
        (json_int_t)o->payload_bytes, "src_addrs", (json_int_t)o->src_addrs, "max_inflight",
        (json_int_t)o->max_inflight, "join_timeout_s", (json_int_t)o->join_timeout_s, "drain_s",
        o->drain_s, "seed", (json_int_t)o->seed, "run_clients", o->run_clients, "run_writer",
        o->run_writer, "label", o->label, "client_impl", o->impl == LT_IMPL_LWS ? "lws" : "epoll");
}

static json_t *
clients_json(const struct lt_client_stats *c)
{
    json_t *j = json_object();

#define LT_JSON(f) json_object_set_new(j, #f, json_integer((json_int_t)c->f));
    LT_CLIENT_STATS_FIELDS(LT_JSON)
#undef LT_JSON
    return j;
}

static json_t *
writer_json(const struct lt_bench_result *r)
{
    const struct lt_writer_stats *w = &r->writer.st;

    return json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:o}", "ok", r->writer_ok, "tx_sent",
                     (json_int_t)w->tx_sent, "tx_ok", (json_int_t)w->tx_ok, "tx_err",
                     (json_int_t)w->tx_err, "rows_ok", (json_int_t)w->rows_ok, "expected",
                     (json_int_t)w->expected, "rows_lost_to_inflight_cap",
                     (json_int_t)w->tokens_lost, "window_s", w->window_s, "achieved_rate",
                     achieved(r), "commit_us", hist_json(&r->writer.commit));
}

static json_t *
cpus_json(const struct lt_bench_result *r)
{
    json_t *a = json_array();

    for (unsigned i = 0; i < r->n_cpus; i++)
        json_array_append_new(a, json_real(r->cpu_busy_pct[i]));
    return a;
}

static json_t *
timeline_json(const struct lt_bench_result *r)
{
    json_t *a = json_array();

    for (size_t i = 0; i < r->n_timeline; i++) {
        const struct lt_sample *s = &r->timeline[i];

        json_array_append_new(
            a, json_pack("{s:f,s:I,s:I,s:I}", "t_s", s->t_s, "rows_ok", (json_int_t)s->rows_ok,
                         "received", (json_int_t)s->received, "max_us", (json_int_t)s->max_us));
    }
    return a;
}

int
lt_bench_json(const char *path, const struct lt_bench_opts *o, const struct lt_bench_result *r)
{
    uint64_t exp = lt_bench_expected(r);
    json_t *j = json_pack(
        "{s:s,s:I,s:o,s:o,s:o,s:I,s:I,s:I,s:f,s:o,s:f,s:f,s:f,s:f,s:f,s:o,s:o,s:b}", "tool",
        "tidings-pgbench", "started_unix_us", (json_int_t)r->started_us, "params", params_json(o),
        "clients", clients_json(&r->clients), "writer", writer_json(r), "expected", (json_int_t)exp,
        "received", (json_int_t)r->clients.received, "drops",
        (json_int_t)((int64_t)exp - (int64_t)r->clients.received), "deliveries_per_s",
        r->writer.st.window_s > 0 ? (double)r->clients.received / r->writer.st.window_s : 0.0,
        "latency_us", hist_json(&r->lat), "drain_s", r->drain_s, "gateway_cpu_pct", r->gw_cpu_pct,
        "postgresql_cpu_pct", r->pg_cpu_pct, "cpu_window_s", r->cpu_window_s, "load_cpu_s",
        r->load_cpu_s, "cpu_busy_pct", cpus_json(r), "timeline", timeline_json(r), "complete",
        lt_bench_complete(o, r));
    int rc = j && json_dump_file(j, path, JSON_INDENT(2) | JSON_SORT_KEYS) == 0 ? 0 : GW_EIO;

    json_decref(j);
    return rc;
}
