/*
 * wsclient.c: the protocol logic of the subscriber and churn processes (wsclient.h),
 * independent of the transport (wsclient_int.h).
 *
 * The loop calls the transport's run_once() with a short timeout and every TICK_US runs the
 * tick: read the driver's control pipe, open more sockets while fewer than
 * LT_CONNECT_BURST connections are in flight (churn: start the cycles that are due), and
 * every SCAN_US scan the sockets for due heartbeats, reconnects, rejoins and churn
 * timeouts, count the settled ones and send the progress records. Outbound frames (join,
 * heartbeat) are pending flags turned into text by lt__next_frame(). Inbound messages take
 * a fast path (memmem() for the event, topic, ts_us, seq, no JSON parsing); every other
 * frame is parsed with jansson.
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
#include "loadtest/load.h"
#include "loadtest/wsclient_int.h"

#define TICK_US      50000    /* period of the tick */
#define SCAN_US      250000   /* period of the full scan of the sockets */
#define RETRY_US     1000000  /* delay before a reconnect or a rejoin after an error */
#define REJOIN_US    500000   /* delay before a rejoin after a system error */
#define CHURN_MAX_US 10000000 /* a churn cycle must complete within this */
#define MAX_ATTEMPTS 4        /* connection attempts per socket */
#define MAX_REJOINS  20       /* rejoins per channel */
#define FAST_WINDOW  200      /* bytes searched for the event of a push */
#define SHARED_TOPIC "realtime:bench"
#define OWN_PREFIX   "realtime:bench-"

/* ---- outbound frames ---- */

static int
join_frame(struct lt_proc *p, struct lt_client *c, struct lt_chan *ch, char *f, size_t cap)
{
    char topic[48], presence[64], pg[160] = "";
    bool track = p->o->presence && ch->topic >= 0;

    c->ref++;
    ch->join_ref = c->ref;
    ch->joined = false;
    ch->join_us = lt_mono_us();
    if (ch->topic < 0)
        snprintf(topic, sizeof(topic), "%s", SHARED_TOPIC);
    else
        snprintf(topic, sizeof(topic), OWN_PREFIX "%d", ch->topic);
    if (track)
        snprintf(presence, sizeof(presence), "{\"key\":\"u%u\",\"enabled\":true}", c->client);
    else
        snprintf(presence, sizeof(presence), "{\"key\":\"\",\"enabled\":false}");
    if (p->o->kind == LT_SUB_PG && !p->o->churn)
        snprintf(pg, sizeof(pg),
                 "{\"event\":\"INSERT\",\"schema\":\"public\",\"table\":\"%s\","
                 "\"filter\":\"business_id=eq.%u\"}",
                 p->o->table, c->client % p->o->businesses);
    return snprintf(f, cap,
                    "[\"%u\",\"%u\",\"%s\",\"phx_join\",{\"config\":{"
                    "\"broadcast\":{\"ack\":false,\"self\":false},\"presence\":%s,"
                    "\"postgres_changes\":[%s],\"private\":%s},\"access_token\":\"%s\"}]",
                    ch->join_ref, ch->join_ref, topic, presence, pg,
                    p->o->private_ch ? "true" : "false", p->o->token);
}

/* The presence track push of a joined own-topic channel. */
static int
track_frame(struct lt_proc *p, struct lt_client *c, struct lt_chan *ch, char *f, size_t cap)
{
    c->ref++;
    ch->track_ref = c->ref;
    p->st.tracks_sent++;
    return snprintf(f, cap,
                    "[\"%u\",\"%u\",\"" OWN_PREFIX "%d\",\"presence\",{\"type\":\"presence\","
                    "\"event\":\"track\",\"payload\":{\"client\":%u,\"online_at\":%lld}}]",
                    ch->join_ref, c->ref, ch->topic, c->client, (long long)(lt_wall_us() / 1000));
}

int
lt__next_frame(struct lt_proc *p, struct lt_client *c, char *buf, size_t cap)
{
    int n = 0;

    for (unsigned i = 0; i < c->n_ch && !n; i++)
        if (c->ch[i].want_join) {
            c->ch[i].want_join = false;
            n = join_frame(p, c, &c->ch[i], buf, cap);
        } else if (c->ch[i].want_track && c->ch[i].joined) {
            c->ch[i].want_track = false;
            n = track_frame(p, c, &c->ch[i], buf, cap);
        }
    if (!n && c->want_hb) {
        c->want_hb = false;
        c->ref++;
        n = snprintf(buf, cap, "[null,\"%u\",\"phoenix\",\"heartbeat\",{}]", c->ref);
        p->st.hb_sent++;
    }
    return n >= 0 && (size_t)n < cap ? n : -1;
}

const char *
lt__path(struct lt_proc *p, const struct lt_client *c)
{
    if (!p->o->simple)
        snprintf(p->path, sizeof(p->path), "/realtime/v1/websocket?apikey=%s&vsn=2.0.0",
                 p->o->token);
    else if (c->ch[0].topic < 0)
        snprintf(p->path, sizeof(p->path), "/sub/bench");
    else
        snprintf(p->path, sizeof(p->path), "/sub/bench-%d", c->ch[0].topic);
    return p->path;
}

/* ---- inbound messages ---- */

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
record_latency(struct lt_proc *p, int64_t ts)
{
    int64_t lat = lt_wall_us() - ts;

    lt_hist_record(p->lat, lat);
    lt_hist_record(p->ilat, lat);
}

/* The channel of c that a pushed topic names, or NULL (misrouted). */
static struct lt_chan *
chan_of(struct lt_client *c, const char *t, size_t n)
{
    size_t pl = strlen(OWN_PREFIX);
    int64_t own;

    if (n == strlen(SHARED_TOPIC) && memcmp(t, SHARED_TOPIC, n) == 0)
        return c->ch[0].topic < 0 ? &c->ch[0] : NULL;
    if (n <= pl || memcmp(t, OWN_PREFIX, pl) != 0 || !find_int(t, n, "-", &own))
        return NULL;
    for (unsigned i = 0; i < c->n_ch; i++)
        if (c->ch[i].topic >= 0 && c->ch[i].topic == own)
            return &c->ch[i];
    return NULL;
}

/* One message body of channel ch (NULL: a topic c did not ask for). */
static void
deliver(struct lt_proc *p, struct lt_chan *ch, const char *b, size_t n)
{
    int64_t ts, seq, pub = 0;
    size_t slot;

    if (p->o->churn) {
        p->st.other_frames++; /* churn sockets only measure joins */
        return;
    }
    p->st.received++;
    if (!ch) {
        p->st.misrouted++;
        return;
    }
    if (!find_int(b, n, "\"ts_us\":", &ts) || !find_int(b, n, "\"seq\":", &seq) || seq < 1) {
        p->st.bad_frames++;
        return;
    }
    record_latency(p, ts);
    find_int(b, n, "\"pub\":", &pub);
    if (pub < 0 || (uint64_t)pub >= p->o->publishers) {
        p->st.bad_frames++;
        return;
    }
    slot = ch->topic < 0 ? (size_t)pub : 0; /* an own topic has one publisher */
    lt_seq_check(&ch->last[slot], (uint64_t)seq, &p->st.duplicates, &p->st.gaps);
}

static void
on_change(struct lt_proc *p, struct lt_client *c, const char *f, size_t len)
{
    int64_t ts, biz;

    p->st.received++;
    if (!find_int(f, len, "\"ts_us\":", &ts)) {
        p->st.bad_frames++;
        return;
    }
    record_latency(p, ts);
    if (find_int(f, len, "\"business_id\":", &biz) &&
        biz != (int64_t)(c->client % p->o->businesses))
        p->st.misrouted++;
}

/* A text push "[jr,null,"realtime:...","broadcast",{...}]": finds the topic. */
static bool
text_broadcast(struct lt_proc *p, struct lt_client *c, const char *f, size_t len)
{
    size_t w = len < FAST_WINDOW ? len : FAST_WINDOW;
    const char *t, *e;

    if (len < 2 || f[0] != '[' || !memmem(f, w, "\",\"broadcast\",{", 15))
        return false;
    if (!(t = memmem(f, w, "\"realtime:", 10)) ||
        !(e = memchr(t + 1, '"', (size_t)(f + w - t - 1))))
        return false;
    deliver(p, chan_of(c, t + 1, (size_t)(e - t - 1)), f, len);
    return true;
}

/* Binary kind 4 (PROTOCOL.md 1.3): topic, event, meta, then the payload. */
static bool
binary_broadcast(struct lt_proc *p, struct lt_client *c, const char *f, size_t len)
{
    const unsigned char *u = (const unsigned char *)f;
    size_t off;

    if (len < 5 || u[0] != 4)
        return false;
    off = 5u + u[1] + u[2] + u[3];
    if (off > len)
        return false;
    deliver(p, chan_of(c, f + 5, u[1]), f + off, len - off);
    return true;
}

static struct lt_chan *
chan_by_ref(struct lt_client *c, const char *ref)
{
    char buf[16];

    for (unsigned i = 0; ref && i < c->n_ch; i++) {
        snprintf(buf, sizeof(buf), "%u", c->ch[i].join_ref);
        if (c->ch[i].join_ref && strcmp(buf, ref) == 0)
            return &c->ch[i];
    }
    return NULL;
}

static void
schedule_rejoin(struct lt_chan *ch, int64_t delay_us)
{
    if (ch->rejoins < MAX_REJOINS)
        ch->retry_us = lt_mono_us() + delay_us;
}

static void churn_done(struct lt_proc *p, struct lt_client *c, bool ok);

static void
on_reply(struct lt_proc *p, struct lt_client *c, const char *ref, json_t *payload)
{
    const char *status = json_string_value(json_object_get(payload, "status"));
    bool ok = status && strcmp(status, "ok") == 0;
    struct lt_chan *ch = chan_by_ref(c, ref);

    if (!ch) {
        for (unsigned i = 0; ref && i < c->n_ch; i++)
            if (c->ch[i].track_ref && (unsigned)strtoul(ref, NULL, 10) == c->ch[i].track_ref) {
                p->st.tracks_ok += ok;
                return;
            }
        p->st.hb_ok += ok;
        return;
    }
    if (ok && !ch->joined) {
        ch->joined = true;
        p->st.joins_ok++;
        lt_hist_record(p->join, lt_mono_us() - ch->join_us);
        if (p->o->presence && ch->topic >= 0 && !p->o->churn) {
            ch->want_track = true;
            p->tp->kick(p, c);
        }
        if (p->o->churn)
            churn_done(p, c, true);
    } else if (!ok) {
        p->st.joins_err++;
        if (p->o->churn)
            churn_done(p, c, false);
        else
            schedule_rejoin(ch, RETRY_US);
    }
}

static void
on_system(struct lt_proc *p, struct lt_client *c, const char *ref, json_t *payload)
{
    const char *ext = json_string_value(json_object_get(payload, "extension"));
    const char *status = json_string_value(json_object_get(payload, "status"));
    struct lt_chan *ch = chan_by_ref(c, ref) ? chan_by_ref(c, ref) : &c->ch[0];

    if (!ext || !status || strcmp(ext, "postgres_changes") != 0) {
        p->st.other_frames++;
        return;
    }
    if (strcmp(status, "ok") == 0) {
        if (!ch->subscribed)
            p->st.subscribed++;
        ch->subscribed = true;
        return;
    }
    p->st.sys_errors++;
    schedule_rejoin(ch, REJOIN_US);
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
        on_system(p, c, json_string_value(json_array_get(a, 0)), payload);
    else if (strcmp(ev, "presence_state") == 0 || strcmp(ev, "presence_diff") == 0)
        p->st.presence_in++;
    else if ((strcmp(ev, "phx_close") == 0 || strcmp(ev, "phx_error") == 0) &&
             chan_by_ref(c, json_string_value(json_array_get(a, 0))))
        p->st.chan_closed++;
    else
        p->st.other_frames++;
    json_decref(a);
}

void
lt__on_message(struct lt_proc *p, struct lt_client *c, const char *f, size_t len, bool bin)
{
    size_t w = len < FAST_WINDOW ? len : FAST_WINDOW;

    p->st.rx_bytes += len;
    if (p->o->simple) {
        deliver(p, &c->ch[0], f, len);
        return;
    }
    if (bin) {
        if (!binary_broadcast(p, c, f, len))
            p->st.other_frames++;
        return;
    }
    if (p->o->kind == LT_SUB_PG && !p->o->churn && len > 2 && f[0] == '[' &&
        memmem(f, w, "\",\"postgres_changes\",", 21)) {
        on_change(p, c, f, len);
        return;
    }
    if (!text_broadcast(p, c, f, len))
        on_control(p, c, f, len);
}

/* ---- connection life ---- */

static void
client_open(struct lt_proc *p, struct lt_client *c)
{
    c->st = LT_C_CONNECTING;
    p->st.reconnects += c->attempts > 0;
    c->attempts++;
    c->open_us = lt_mono_us();
    p->inflight++;
    p->tp->open(p, c);
}

/* Churn: the outcome of the cycle in slot c; a successful one closes the socket. */
static void
churn_done(struct lt_proc *p, struct lt_client *c, bool ok)
{
    if (!c->counted) {
        c->counted = true;
        if (ok)
            p->st.churn_cycles++;
        else
            p->st.churn_failed++;
    }
    if (c->fd >= 0)
        p->tp->close(p, c); /* calls lt__on_closed, which frees the slot */
}

static void
churn_free(struct lt_proc *p, struct lt_client *c)
{
    if (!c->counted)
        p->st.churn_failed++;
    c->counted = true;
    c->st = LT_C_IDLE;
    p->free_slots[p->n_free++] = c->idx;
}

void
lt__on_open_failed(struct lt_proc *p, struct lt_client *c)
{
    if (c->st != LT_C_CONNECTING)
        return;
    p->inflight--;
    p->st.connect_errors++;
    if (p->o->churn) {
        churn_free(p, c);
    } else if (c->attempts < MAX_ATTEMPTS) {
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
    p->st.open++;
    c->st = LT_C_OPEN;
    c->retry_us = 0;
    c->next_hb_us = lt_mono_us() + (int64_t)(p->o->heartbeat_s * 1e6);
    if (p->o->simple) {
        lt_hist_record(p->join, lt_mono_us() - c->open_us);
        c->ch[0].joined = true;
        if (p->o->churn)
            churn_done(p, c, true);
        return;
    }
    for (unsigned i = 0; i < c->n_ch; i++)
        c->ch[i].want_join = true;
    p->tp->kick(p, c);
}

void
lt__on_closed(struct lt_proc *p, struct lt_client *c)
{
    if (c->st == LT_C_CONNECTING) {
        lt__on_open_failed(p, c);
        return;
    }
    if (c->st != LT_C_OPEN)
        return;
    p->st.open--;
    if (p->o->churn) {
        churn_free(p, c);
        return;
    }
    if (!p->stop)
        p->st.disconnects++;
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
    if (c->st != LT_C_OPEN || p->o->simple)
        return;
    if (now >= c->next_hb_us) {
        c->want_hb = true;
        c->next_hb_us += (int64_t)(p->o->heartbeat_s * 1e6);
        p->tp->kick(p, c);
    }
    for (unsigned i = 0; i < c->n_ch; i++) {
        struct lt_chan *ch = &c->ch[i];

        if (ch->retry_us && now >= ch->retry_us) {
            ch->retry_us = 0;
            ch->rejoins++;
            ch->want_join = true;
            p->tp->kick(p, c);
        }
    }
}

/* 1 when every channel of c is joined (PG: and subscribed), 0 pending, -1 given up. */
static int
joined(const struct lt_proc *p, const struct lt_client *c)
{
    int r = 1;

    if (c->st >= LT_C_CLOSED)
        return -1;
    if (c->st != LT_C_OPEN)
        return 0;
    for (unsigned i = 0; i < c->n_ch; i++) {
        const struct lt_chan *ch = &c->ch[i];

        if (!ch->joined || (p->o->kind == LT_SUB_PG && !ch->subscribed)) {
            if (ch->rejoins < MAX_REJOINS || ch->retry_us)
                return 0;
            r = -1;
        }
    }
    return r;
}

static void
scan(struct lt_proc *p, int64_t now)
{
    p->done = 0;
    p->st.settled = 0;
    for (unsigned i = 0; i < p->next_open; i++) {
        struct lt_client *c = &p->c[i];
        int j;

        if (p->o->churn) {
            if (c->st != LT_C_IDLE && now - c->open_us > CHURN_MAX_US)
                churn_done(p, c, false);
            continue;
        }
        scan_one(p, c, now);
        j = joined(p, c);
        p->done += j != 0;
        p->st.settled += j > 0;
    }
}

static void
send_progress(struct lt_proc *p, uint32_t type)
{
    struct lt_client_progress *r = gw_xmalloc(sizeof(*r));

    r->st = p->st;
    r->lat = *p->ilat;
    if (lt_msg_send(p->o->report_fd, type, r, sizeof(*r)))
        p->stop = true;
    lt_hist_init(p->ilat);
    free(r);
}

static void
report(struct lt_proc *p, int64_t now)
{
    if (!p->ready_sent) {
        if (!p->o->churn && p->done < p->o->count &&
            now - p->start_us < (int64_t)p->o->join_timeout_s * 1000000)
            return;
        send_progress(p, LT_MSG_READY);
        p->ready_sent = true;
        p->last_report_us = now;
        return;
    }
    if (now - p->last_report_us < LT_PROGRESS_MS * 1000)
        return;
    send_progress(p, LT_MSG_PROGRESS);
    p->last_report_us = now;
}

/* Churn: starts the cycles that are due, each in a free slot. */
static void
churn_start(struct lt_proc *p, int64_t now)
{
    uint64_t due = (uint64_t)((double)(now - p->start_us) / 1e6 * p->o->churn_rate);

    while (p->churn_started < due) {
        struct lt_client *c;

        p->churn_started++;
        if (!p->n_free) {
            p->st.churn_failed++;
            continue;
        }
        c = &p->c[p->free_slots[--p->n_free]];
        c->counted = false;
        c->attempts = 0;
        c->ch[0].joined = false;
        c->ch[0].join_ref = 0;
        if (c->idx >= p->next_open)
            p->next_open = c->idx + 1;
        client_open(p, c);
    }
}

static void
tick(struct lt_proc *p, int64_t now)
{
    p->last_tick_us = now;
    check_ctl(p);
    if (p->o->churn)
        churn_start(p, now);
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

/* The channels of socket i (global index s): topics and seq storage. */
static void
client_init(struct lt_proc *p, struct lt_client *c, unsigned s, uint64_t **seq)
{
    const struct lt_clients_opts *o = p->o;
    bool both = o->kind == LT_SUB_BOTH && !o->churn;

    c->idx = s - o->first;
    c->fd = -1;
    c->client = o->simple && both ? s / 2 : s;
    c->n_ch = !o->simple && both ? 2 : 1;
    c->ch[0].topic = o->kind == LT_SUB_PG && !o->churn ? (int)c->client : -1;
    if (o->simple && both && s % 2)
        c->ch[0].topic = (int)c->client;
    c->ch[1].topic = (int)c->client;
    for (unsigned k = 0; k < c->n_ch; k++) {
        c->ch[k].last = *seq;
        *seq += c->ch[k].topic < 0 ? o->publishers : 1;
    }
}

static int
proc_init(struct lt_proc *p, const struct lt_clients_opts *o)
{
    uint64_t *seq;

    memset(p, 0, sizeof(*p));
    p->o = o;
    p->tp = &lt__tp_epoll;
    p->epfd = -1;
    p->c = gw_xcalloc(o->count ? o->count : 1, sizeof(*p->c));
    p->seqs = gw_xcalloc((size_t)(o->count ? o->count : 1) * (o->publishers + 1), sizeof(*p->seqs));
    p->free_slots = gw_xcalloc(o->count ? o->count : 1, sizeof(*p->free_slots));
    seq = p->seqs;
    for (unsigned i = 0; i < o->count; i++)
        client_init(p, &p->c[i], o->first + i, &seq);
    for (unsigned i = o->churn ? o->count : 0; i > 0; i--)
        p->free_slots[p->n_free++] = i - 1;
    p->src = gw_xcalloc(o->src_addrs ? o->src_addrs : 1, sizeof(*p->src));
    for (unsigned i = 0; i < o->src_addrs; i++)
        snprintf(p->src[i], sizeof(p->src[i]), "127.0.%u.%u", o->src_net, i + 1);
    p->lat = gw_xmalloc(sizeof(*p->lat));
    p->ilat = gw_xmalloc(sizeof(*p->ilat));
    p->join = gw_xmalloc(sizeof(*p->join));
    lt_hist_init(p->lat);
    lt_hist_init(p->ilat);
    lt_hist_init(p->join);
    p->st.sockets = o->churn ? 0 : o->count;
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
    free(p->seqs);
    free(p->free_slots);
    free(p->src);
    free(p->lat);
    free(p->ilat);
    free(p->join);
}

static void
send_final(struct lt_proc *p)
{
    struct lt_client_final *f = gw_xmalloc(sizeof(*f));

    f->st = p->st;
    f->lat = *p->lat;
    f->join = *p->join;
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
        while (!o->churn && p.inflight < LT_CONNECT_BURST && p.next_open < o->count)
            client_open(&p, &p.c[p.next_open++]); /* refill the burst after every pass */
        now = lt_mono_us();
        if (now - p.last_tick_us >= TICK_US)
            tick(&p, now);
    }
    if (!rc) {
        scan(&p, lt_mono_us());
        send_final(&p);
    }
    p.tp->release(&p);
    proc_release(&p);
    return rc;
}
