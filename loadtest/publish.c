/*
 * publish.c: the publisher process (publish.h).
 *
 * A blocking TCP socket speaks HTTP/1.1 keep-alive: each POST is written in one send, then
 * the response head is read up to the blank line and its body skipped (Content-Length or
 * chunked). A connection the server closed (or announced with Connection: close) is
 * reopened for the next POST; a POST that fails on a fresh connection, or a refused one,
 * ends the run with an error.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include "loadtest/publish.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_CAP   8192    /* largest response head accepted, bytes */
#define IO_TIMEOUT 5       /* seconds a send or receive may block */
#define LATE_US    5000000 /* a publisher behind its schedule stops this long after it */

struct pub {
    const struct lt_pub_opts *o; /* options */
    int fd;                      /* connection, -1 = none */
    char *pad;                   /* padding string of each body (owned) */
    struct gw_buf body;          /* request body being built */
    struct gw_buf req;           /* request being built */
    char path[64];               /* simple: POST path of the batch */
    uint64_t shared_total;       /* shared messages to send */
    uint64_t own_total;          /* own-topic messages to send */
    uint64_t shared_sent;        /* shared messages built */
    uint64_t own_sent;           /* own-topic messages built */
    unsigned own_topics;         /* own topics of this publisher */
    uint64_t batch_shared;       /* shared messages in the batch being sent */
    uint64_t batch_own;          /* own-topic messages in it */
};

static int
pub_connect(struct pub *p)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    struct timeval tv = { .tv_sec = IO_TIMEOUT };
    socklen_t len = sizeof(*s4);
    int one = 1;

    memset(&ss, 0, sizeof(ss));
    if (strchr(p->o->host, ':')) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)p->o->port);
        inet_pton(AF_INET6, p->o->host, &s6->sin6_addr);
        len = sizeof(*s6);
    } else {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)p->o->port);
        inet_pton(AF_INET, p->o->host, &s4->sin_addr);
    }
    if (p->fd >= 0)
        close(p->fd);
    p->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->fd < 0)
        return GW_EIO;
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(p->fd, (struct sockaddr *)&ss, len)) {
        close(p->fd);
        p->fd = -1;
        return GW_EIO;
    }
    return 0;
}

/* Due time (seconds from the start) of the next shared / own message; INFINITY when done. */
static double
due_shared(const struct pub *p)
{
    return p->shared_sent < p->shared_total ? (double)p->shared_sent / p->o->rate : INFINITY;
}

static double
due_own(const struct pub *p)
{
    return p->own_sent < p->own_total ? (double)p->own_sent / p->o->own_rate : INFINITY;
}

/* Picks the next message of the shared topic (shared) or of the own topics: its topic
 * (-1 = shared) and seq. */
static uint64_t
pick(struct pub *p, bool shared, int *topic)
{
    uint64_t seq;

    if (shared) {
        *topic = -1;
        seq = ++p->shared_sent;
        p->batch_shared++;
    } else {
        unsigned j = (unsigned)(p->own_sent % p->own_topics);

        *topic = (int)(p->o->index + p->o->publishers * j);
        seq = p->own_sent / p->own_topics + 1;
        p->own_sent++;
        p->batch_own++;
    }
    return seq;
}

/* Appends one message body to p->body. */
static void
put_body(struct pub *p, uint64_t seq)
{
    gw_buf_printf(&p->body, "{\"ts_us\":%lld,\"seq\":%llu", (long long)lt_wall_us(),
                  (unsigned long long)seq);
    if (p->o->publishers > 1)
        gw_buf_printf(&p->body, ",\"pub\":%u", p->o->index);
    gw_buf_printf(&p->body, ",\"pad\":\"%s\"}", p->pad);
}

static bool
more(const struct pub *p)
{
    return isfinite(due_shared(p)) || isfinite(due_own(p));
}

/* Builds the next request into p->req: up to per_post messages (simple: one). */
static void
build(struct pub *p)
{
    int topic;
    uint64_t seq;

    gw_buf_reset(&p->body);
    p->batch_shared = p->batch_own = 0;
    if (p->o->simple) {
        seq = pick(p, due_shared(p) <= due_own(p), &topic);
        put_body(p, seq);
        if (topic < 0)
            snprintf(p->path, sizeof(p->path), "/pub/bench");
        else
            snprintf(p->path, sizeof(p->path), "/pub/bench-%d", topic);
    } else {
        /* One kind per request, so that a batch to the shared topic reaches every
         * subscriber in one pass and its frames coalesce into one write per socket. */
        bool shared = due_shared(p) <= due_own(p);

        gw_buf_append_str(&p->body, "{\"messages\":[");
        for (unsigned i = 0; i < p->o->per_post && isfinite(shared ? due_shared(p) : due_own(p));
             i++) {
            seq = pick(p, shared, &topic);
            gw_buf_append_str(&p->body, i ? ",{\"topic\":\"bench" : "{\"topic\":\"bench");
            if (topic >= 0)
                gw_buf_printf(&p->body, "-%d", topic);
            gw_buf_append_str(&p->body, p->o->private_ch ? "\",\"private\":true" : "\"");
            gw_buf_append_str(&p->body, ",\"event\":\"e\",\"payload\":");
            put_body(p, seq);
            gw_buf_append_str(&p->body, "}");
        }
        gw_buf_append_str(&p->body, "]}");
        snprintf(p->path, sizeof(p->path), "/realtime/v1/api/broadcast");
    }
    gw_buf_reset(&p->req);
    gw_buf_printf(&p->req,
                  "POST %s HTTP/1.1\r\nHost: %s\r\napikey: %s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  p->path, p->o->host, p->o->token ? p->o->token : "", p->body.len);
    gw_buf_append(&p->req, p->body.data, p->body.len);
}

static int
send_all(int fd, const char *b, size_t n)
{
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

        if (w <= 0)
            return GW_EIO;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Skips a chunked body; `have` bytes of it are already in h. Returns 0 or GW_EIO. */
static int
skip_chunked(int fd, char *h, size_t have)
{
    while (!(have >= 5 && memmem(h, have, "0\r\n\r\n", 5))) {
        ssize_t r;

        if (have > 16) { /* keep a tail that may hold a split terminator */
            memmove(h, h + have - 16, 16);
            have = 16;
        }
        r = recv(fd, h + have, HEAD_CAP - have, 0);
        if (r <= 0)
            return GW_EIO;
        have += (size_t)r;
    }
    return 0;
}

/* Skips want - body bytes of a Content-Length body. */
static int
skip_body(int fd, char *h, size_t body, size_t want)
{
    while (body < want) {
        ssize_t r = recv(fd, h, want - body < HEAD_CAP ? want - body : HEAD_CAP, 0);

        if (r <= 0)
            return GW_EIO;
        body += (size_t)r;
    }
    return 0;
}

/* Reads one response; returns its status (> 0), 0 when the peer closed first, or GW_E*.
 * Sets *close when the server will close the connection. */
static int
read_response(int fd, bool *close_after)
{
    char *h = gw_xmalloc(HEAD_CAP + 1), *eoh = NULL, *cl;
    size_t have = 0, body;
    int status = GW_EPARSE;

    while (!eoh && have < HEAD_CAP) {
        ssize_t r = recv(fd, h + have, HEAD_CAP - have, 0);

        if (r <= 0) {
            status = r == 0 && have == 0 ? 0 : GW_EIO;
            goto out;
        }
        have += (size_t)r;
        h[have] = '\0';
        eoh = strstr(h, "\r\n\r\n");
    }
    if (!eoh || sscanf(h, "HTTP/1.%*d %d", &status) != 1)
        goto out;
    *eoh = '\0';
    *close_after = strcasestr(h, "\r\nconnection: close") != NULL;
    body = have - (size_t)(eoh + 4 - h);
    if (strcasestr(h, "\r\ntransfer-encoding: chunked")) {
        memmove(h, eoh + 4, body);
        if (skip_chunked(fd, h, body))
            status = GW_EIO;
    } else if ((cl = strcasestr(h, "\r\ncontent-length:"))) {
        if (skip_body(fd, h, body, strtoul(cl + 17, NULL, 10)))
            status = GW_EIO;
    }
out:
    free(h);
    return status;
}

/* Sends the built request and reads the answer, reconnecting once. Returns the status. */
static int
post(struct pub *p)
{
    bool close_after = false;
    int st = GW_EIO;

    for (int attempt = 0; attempt < 2 && st <= 0; attempt++) {
        if ((p->fd < 0 || attempt) && pub_connect(p))
            continue;
        if (send_all(p->fd, p->req.data, p->req.len) == 0)
            st = read_response(p->fd, &close_after);
    }
    if (close_after && p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    return st;
}

static void
sleep_until(int64_t mono_us)
{
    int64_t d = mono_us - lt_mono_us();

    if (d > 0)
        nanosleep(&(struct timespec){ d / 1000000, (long)(d % 1000000) * 1000 }, NULL);
}

/* One request: POST, counters, histogram. Returns 0 or GW_E* (message in err). */
static int
batch(struct pub *p, struct lt_writer_final *out, struct gw_buf *err)
{
    int64_t t0 = lt_mono_us();
    bool ok;
    int st;

    build(p);
    out->st.tx_sent++;
    st = post(p);
    lt_hist_record(&out->commit, lt_mono_us() - t0);
    ok = p->o->simple ? st >= 200 && st < 300 : st == 202;
    if (!ok) {
        out->st.tx_err++;
        gw_buf_printf(err, "POST %s answered %d", p->path, st);
        return st < 0 ? st : GW_EIO;
    }
    out->st.tx_ok++;
    out->st.rows_ok += p->batch_shared + p->batch_own;
    out->st.expected += p->batch_shared * p->o->clients + p->batch_own;
    return 0;
}

static void
pub_init(struct pub *p, const struct lt_pub_opts *o)
{
    unsigned pad = o->payload_bytes > 48 ? o->payload_bytes - 48 : 1;

    memset(p, 0, sizeof(*p));
    p->o = o;
    p->fd = -1;
    p->pad = gw_xmalloc(pad + 1);
    memset(p->pad, 'x', pad);
    p->pad[pad] = '\0';
    gw_buf_init(&p->body);
    gw_buf_init(&p->req);
    p->own_topics =
        o->index < o->clients ? (o->clients - o->index + o->publishers - 1) / o->publishers : 0;
    p->shared_total = o->rate > 0 ? (uint64_t)llround(o->rate * o->seconds) : 0;
    p->own_total =
        o->own_rate > 0 && p->own_topics ? (uint64_t)llround(o->own_rate * o->seconds) : 0;
}

int
lt_publish_run(const struct lt_pub_opts *o, struct lt_writer_final *out, struct gw_buf *err)
{
    struct pub p;
    int64_t start = lt_mono_us(), last_rep = start;
    int rc = 0;

    pub_init(&p, o);
    memset(out, 0, sizeof(*out));
    lt_hist_init(&out->commit);
    out->st.t0_us = lt_wall_us();
    while (!rc && more(&p)) {
        double due = fmin(due_shared(&p), due_own(&p));

        if (lt_mono_us() > start + (int64_t)(o->seconds * 1e6) + LATE_US) {
            /* the server cannot take the offered rate: what is left is never sent */
            out->st.tokens_lost = p.shared_total - p.shared_sent + p.own_total - p.own_sent;
            break;
        }
        sleep_until(start + (int64_t)(due * 1e6));
        rc = batch(&p, out, err);
        if (o->report_fd >= 0 && lt_mono_us() - last_rep >= LT_PROGRESS_MS * 1000) {
            lt_msg_send(o->report_fd, LT_MSG_WRITER_PROGRESS, &out->st, sizeof(out->st));
            last_rep = lt_mono_us();
        }
    }
    out->st.t_end_us = lt_wall_us();
    out->st.window_s = (double)(lt_mono_us() - start) / 1e6;
    if (p.fd >= 0)
        close(p.fd);
    gw_buf_release(&p.req);
    gw_buf_release(&p.body);
    free(p.pad);
    return rc;
}
