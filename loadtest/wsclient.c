/*
 * wsclient.c: the subscriber processes of the load tools (wsclient.h): the protocol logic,
 * independent of the transport (wsclient_int.h).
 *
 * The loop calls the transport's run_once() with a short timeout and every TICK_US runs the
 * tick: read the driver's control pipe, open more sockets while fewer than
 * LT_CONNECT_BURST connections are in flight, and every SCAN_US scan the sockets for due
 * heartbeats, reconnects and rejoins, count the settled ones and send the progress
 * records. Outbound frames (join, heartbeat) are pending flags turned into text by
 * lt__next_frame(). Inbound postgres_changes frames (and broadcast frames in fan-out
 * mode) take a fast path (memmem() for the
 * event name, ts_us and business_id; no JSON parsing); every other frame is parsed with
 * jansson.
 */
#define _GNU_SOURCE /* memmem */
#include "loadtest/wsclient.h"

#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "loadtest/hist.h"
#include "loadtest/wsclient_int.h"

#define HEARTBEAT_US (25 * 1000000LL) /* client heartbeat interval (PROTOCOL.md 3) */
#define TICK_US      50000            /* period of the tick */
#define SCAN_US      250000           /* period of the full scan of the sockets */
#define RETRY_US     1000000          /* delay before a reconnect or a rejoin after an error */
#define REJOIN_US    500000           /* delay before a rejoin after a system error */
#define MAX_ATTEMPTS 4                /* connection attempts per socket */
#define MAX_REJOINS  20               /* rejoins per socket */
#define FAST_WINDOW  200              /* bytes searched for the postgres_changes event */

/* ---- outbound frames ---- */

static int
join_frame(struct lt_proc *p, struct lt_client *c, char *f, size_t cap)
{
    c->ref++;
    c->join_ref = c->ref;
    c->joined = false;
    if (p->o->broadcast)
        return snprintf(f, cap,
                        "[\"%u\",\"%u\",\"realtime:bench\",\"phx_join\",{\"config\":{"
                        "\"broadcast\":{\"ack\":false,\"self\":false},"
                        "\"presence\":{\"key\":\"\",\"enabled\":false},"
                        "\"postgres_changes\":[],\"private\":false}}]",
                        c->join_ref, c->join_ref);
    return snprintf(f, cap,
                    "[\"%u\",\"%u\",\"realtime:bench-%u\",\"phx_join\",{\"config\":{"
                    "\"broadcast\":{\"ack\":false,\"self\":false},"
                    "\"presence\":{\"key\":\"\",\"enabled\":false},"
                    "\"postgres_changes\":[{\"event\":\"INSERT\",\"schema\":\"public\","
                    "\"table\":\"%s\",\"filter\":\"business_id=eq.%u\"}],"
                    "\"private\":false}}]",
                    c->join_ref, c->join_ref, c->idx, p->o->table, c->idx % p->o->businesses);
}

int
lt__next_frame(struct lt_proc *p, struct lt_client *c, char *buf, size_t cap)
{
    int n;

    if (c->want_join) {
        c->want_join = false;
        n = join_frame(p, c, buf, cap);
    } else if (c->want_hb) {
        c->want_hb = false;
        c->ref++;
        n = snprintf(buf, cap, "[null,\"%u\",\"phoenix\",\"heartbeat\",{}]", c->ref);
        p->st.hb_sent++;
    } else {
        return 0;
    }
    return n > 0 && (size_t)n < cap ? n : -1;
}

/* ---- inbound frames ---- */

/* Finds key in f and parses the integer after it (spaces allowed). Returns true on success. */
static bool
find_int(const char *f, size_t len, const char *key, int64_t *out)
{
    size_t klen = strlen(key);
    const char *k = memmem(f, len, key, klen), *e = f + len, *s;
    bool neg = false;
    int64_t v = 0;

    if (!k)
        return false;
    s = k + klen;
    while (s < e && *s == ' ')
        s++;
    if (s < e && *s == '-') {
        neg = true;
        s++;
    }
    if (s >= e || *s < '0' || *s > '9')
        return false;
    for (; s < e && *s >= '0' && *s <= '9'; s++)
        v = v * 10 + (*s - '0');
    *out = neg ? -v : v;
    return true;
}

static void
on_change(struct lt_proc *p, struct lt_client *c, const char *f, size_t len)
{
    int64_t ts, biz, lat;

    p->st.received++;
    if (!find_int(f, len, "\"ts_us\":", &ts)) {
        p->st.bad_frames++;
        return;
    }
    lat = lt_wall_us() - ts;
    lt_hist_record(p->lat, lat);
    if (lat > 0 && (uint64_t)lat > p->st.interval_max_us)
        p->st.interval_max_us = (uint64_t)lat;
    if (!p->o->broadcast && find_int(f, len, "\"business_id\":", &biz) &&
        biz != (int64_t)(c->idx % p->o->businesses))
        p->st.wrong_business++;
}

static bool
is_join_ref(const struct lt_client *c, const char *ref)
{
    char buf[16];

    if (!ref || !c->join_ref)
        return false;
    snprintf(buf, sizeof(buf), "%u", c->join_ref);
    return strcmp(buf, ref) == 0;
}

static void
schedule_rejoin(struct lt_client *c, int64_t delay_us)
{
    if (c->rejoins < MAX_REJOINS)
        c->retry_us = lt_mono_us() + delay_us;
}

static void
on_reply(struct lt_proc *p, struct lt_client *c, const char *ref, json_t *payload)
{
    const char *status = json_string_value(json_object_get(payload, "status"));
    bool ok = status && strcmp(status, "ok") == 0;

    if (!is_join_ref(c, ref)) {
        p->st.hb_ok += ok;
        return;
    }
    if (ok && !c->joined) {
        c->joined = true;
        p->st.joins_ok++;
        if (p->o->broadcast && !c->subscribed) {
            c->subscribed = true; /* no postgres_changes: the join is the subscription */
            p->st.subscribed++;
        }
    } else if (!ok) {
        p->st.joins_err++;
        schedule_rejoin(c, RETRY_US);
    }
}

static void
on_system(struct lt_proc *p, struct lt_client *c, json_t *payload)
{
    const char *ext = json_string_value(json_object_get(payload, "extension"));
    const char *status = json_string_value(json_object_get(payload, "status"));

    if (!ext || !status || strcmp(ext, "postgres_changes") != 0) {
        p->st.other_frames++;
        return;
    }
    if (strcmp(status, "ok") == 0) {
        if (!c->subscribed)
            p->st.subscribed++;
        c->subscribed = true;
        return;
    }
    p->st.sys_errors++;
    schedule_rejoin(c, REJOIN_US);
}

static void
on_control(struct lt_proc *p, struct lt_client *c, const char *f, size_t len)
{
    json_t *a = json_loadb(f, len, 0, NULL);
    const char *ref, *ev;
    json_t *payload;

    if (!json_is_array(a) || json_array_size(a) < 5 ||
        !(ev = json_string_value(json_array_get(a, 3)))) {
        p->st.other_frames++;
        json_decref(a);
        return;
    }
    ref = json_string_value(json_array_get(a, 1));
    payload = json_array_get(a, 4);
    if (strcmp(ev, "phx_reply") == 0)
        on_reply(p, c, ref, payload);
    else if (strcmp(ev, "system") == 0)
        on_system(p, c, payload);
    else if ((strcmp(ev, "phx_close") == 0 || strcmp(ev, "phx_error") == 0) && is_join_ref(c, ref))
        p->st.chan_closed++;
    else
        p->st.other_frames++;
    json_decref(a);
}

void
lt__on_message(struct lt_proc *p, struct lt_client *c, const char *f, size_t len)
{
    p->st.rx_bytes += len;
    if (len > 11 && memcmp(f, "[null,null,", 11) == 0 &&
        (memmem(f, len < FAST_WINDOW ? len : FAST_WINDOW, "\",\"postgres_changes\",", 21) ||
         (p->o->broadcast &&
          memmem(f, len < FAST_WINDOW ? len : FAST_WINDOW, "\",\"broadcast\",", 14)))) {
        on_change(p, c, f, len);
        return;
    }
    on_control(p, c, f, len);
}

/* ---- connection life ---- */

static void
client_open(struct lt_proc *p, struct lt_client *c)
{
    c->st = LT_C_CONNECTING;
    c->attempts++;
    p->inflight++;
    p->tp->open(p, c);
}

void
lt__on_open_failed(struct lt_proc *p, struct lt_client *c)
{
    if (c->st != LT_C_CONNECTING)
        return;
    p->inflight--;
    p->st.connect_errors++;
    if (c->attempts < MAX_ATTEMPTS) {
        c->st = LT_C_IDLE;
        c->retry_us = lt_mono_us() + RETRY_US;
    } else {
        c->st = LT_C_FAILED;
        p->st.failed++;
    }
}

void
lt__on_open(struct lt_proc *p, struct lt_client *c)
{
    if (c->st != LT_C_CONNECTING)
        return;
    p->inflight--;
    p->st.connected++;
    c->st = LT_C_OPEN;
    c->retry_us = 0;
    c->want_join = true;
    c->next_hb_us = lt_mono_us() + HEARTBEAT_US;
    p->tp->kick(p, c);
}

void
lt__on_closed(struct lt_proc *p, struct lt_client *c)
{
    if (c->st == LT_C_CONNECTING) {
        lt__on_open_failed(p, c);
        return;
    }
    if (c->st == LT_C_OPEN && !p->stop)
        p->st.disconnects++;
    if (c->st == LT_C_OPEN)
        c->st = LT_C_CLOSED;
}

/* ---- the tick ---- */

static void
check_ctl(struct lt_proc *p)
{
    struct pollfd pfd = { .fd = p->o->ctl_fd, .events = POLLIN };
    char b[64];

    if (poll(&pfd, 1, 0) <= 0)
        return;
    if (read(p->o->ctl_fd, b, sizeof(b)) <= 0)
        p->stop = true;
}

/* Due heartbeat, reconnect or rejoin of one socket. */
static void
scan_one(struct lt_proc *p, struct lt_client *c, int64_t now)
{
    if (c->st == LT_C_IDLE && now >= c->retry_us && p->inflight < LT_CONNECT_BURST)
        client_open(p, c);
    if (c->st != LT_C_OPEN)
        return;
    if (now >= c->next_hb_us) {
        c->want_hb = true;
        c->next_hb_us += HEARTBEAT_US;
        p->tp->kick(p, c);
    }
    if (c->retry_us && now >= c->retry_us) {
        c->retry_us = 0;
        c->rejoins++;
        c->want_join = true;
        p->tp->kick(p, c);
    }
}

static void
scan(struct lt_proc *p, int64_t now)
{
    p->settled = 0;
    for (unsigned i = 0; i < p->next_open; i++) {
        struct lt_client *c = &p->c[i];

        scan_one(p, c, now);
        p->settled += (c->subscribed && c->joined) || c->st >= LT_C_CLOSED ||
                      (c->st == LT_C_OPEN && c->rejoins >= MAX_REJOINS && !c->retry_us);
    }
}

static void
report(struct lt_proc *p, int64_t now)
{
    if (!p->ready_sent) {
        if (p->settled < p->o->count && now - p->start_us < (int64_t)p->o->join_timeout_s * 1000000)
            return;
        lt_msg_send(p->o->report_fd, LT_MSG_READY, &p->st, sizeof(p->st));
        p->ready_sent = true;
        p->last_report_us = now;
        return;
    }
    if (now - p->last_report_us < LT_PROGRESS_MS * 1000)
        return;
    if (lt_msg_send(p->o->report_fd, LT_MSG_PROGRESS, &p->st, sizeof(p->st)))
        p->stop = true;
    p->st.interval_max_us = 0;
    p->last_report_us = now;
}

static void
tick(struct lt_proc *p, int64_t now)
{
    p->last_tick_us = now;
    check_ctl(p);
    while (p->inflight < LT_CONNECT_BURST && p->next_open < p->o->count)
        client_open(p, &p->c[p->next_open++]);
    if (now - p->last_scan_us >= SCAN_US) {
        scan(p, now);
        p->last_scan_us = now;
        report(p, now);
    }
    if (now - p->start_us > (int64_t)p->o->max_run_s * 1000000)
        p->stop = true;
}

/* ---- set-up ---- */

static int
raise_nofile(unsigned need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl))
        return GW_EIO;
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max < need)
        return GW_ELIMIT;
    rl.rlim_cur = need;
    return setrlimit(RLIMIT_NOFILE, &rl) ? GW_EIO : 0;
}

static int
proc_init(struct lt_proc *p, const struct lt_clients_opts *o)
{
    struct gw_buf path;

    memset(p, 0, sizeof(*p));
    p->o = o;
    p->tp = o->impl == LT_IMPL_LWS ? &lt__tp_lws : &lt__tp_epoll;
    p->epfd = -1;
    p->c = gw_xcalloc(o->count ? o->count : 1, sizeof(*p->c));
    for (unsigned i = 0; i < o->count; i++) {
        p->c[i].idx = o->first + i;
        p->c[i].fd = -1;
    }
    p->src = gw_xcalloc(o->src_addrs ? o->src_addrs : 1, sizeof(*p->src));
    for (unsigned i = 0; i < o->src_addrs; i++)
        snprintf(p->src[i], sizeof(p->src[i]), "127.0.0.%u", i + 1);
    gw_buf_init(&path);
    gw_buf_printf(&path, "/realtime/v1/websocket?apikey=%s&vsn=2.0.0", o->token);
    p->path = gw_buf_steal(&path, NULL);
    p->lat = gw_xmalloc(sizeof(*p->lat));
    lt_hist_init(p->lat);
    p->st.sockets = o->count;
    p->start_us = lt_mono_us();
    return raise_nofile(o->count + 64);
}

static void
proc_release(struct lt_proc *p)
{
    for (unsigned i = 0; p->c && i < p->o->count; i++) {
        gw_buf_release(&p->c[i].in);
        gw_buf_release(&p->c[i].frag);
        gw_buf_release(&p->c[i].out);
    }
    free(p->c);
    free(p->src);
    free(p->path);
    free(p->lat);
}

static void
send_final(struct lt_proc *p)
{
    struct lt_client_final *f = gw_xmalloc(sizeof(*f));

    f->st = p->st;
    f->lat = *p->lat;
    lt_msg_send(p->o->report_fd, LT_MSG_CLIENT_FINAL, f, sizeof(*f));
    free(f);
}

int
lt_clients_run(const struct lt_clients_opts *o)
{
    struct lt_proc p;
    int rc = proc_init(&p, o);

    if (!rc)
        rc = p.tp->init(&p);
    while (!rc && !p.stop) {
        int64_t now;

        p.tp->run_once(&p, TICK_US / 1000);
        now = lt_mono_us();
        if (now - p.last_tick_us >= TICK_US)
            tick(&p, now);
    }
    if (!rc)
        send_final(&p);
    p.tp->release(&p);
    proc_release(&p);
    return rc;
}
