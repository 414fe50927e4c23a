/*
 * fanout.c: the REST publisher of the broadcast fan-out benchmark (fanout.h).
 *
 * A blocking TCP socket speaks HTTP/1.1 keep-alive to the gateway: each POST is written in
 * one send, then the response head is read up to the blank line and its Content-Length
 * body skipped. A response other than 202 fails the run; a connection the server closed is
 * reopened once per POST. The pacing is a schedule: batch n is due at n * per_post / rate
 * seconds after the start, so a slow POST is caught up right after (no message is skipped).
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include "loadtest/fanout.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_CAP   8192 /* largest response head accepted, bytes */
#define IO_TIMEOUT 5    /* seconds a send or receive may block */

struct pub {
    const struct lt_fanout_opts *o; /* options */
    int fd;                         /* connection, -1 = none */
    char *pad;                      /* padding string of each payload (owned) */
    struct gw_buf req;              /* request being built */
    uint64_t seq;                   /* messages built so far */
};

static int
pub_connect(struct pub *p)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p->o->port) };
    struct timeval tv = { .tv_sec = IO_TIMEOUT };
    int one = 1;

    if (p->fd >= 0)
        close(p->fd);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->fd < 0)
        return GW_EIO;
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(p->fd, (struct sockaddr *)&sa, sizeof(sa))) {
        close(p->fd);
        p->fd = -1;
        return GW_EIO;
    }
    return 0;
}

/* Builds one POST of n messages into p->req. */
static void
build(struct pub *p, unsigned n)
{
    struct gw_buf body;

    gw_buf_init(&body);
    gw_buf_append_str(&body, "{\"messages\":[");
    for (unsigned i = 0; i < n; i++)
        gw_buf_printf(&body,
                      "%s{\"topic\":\"bench\",\"event\":\"e\",\"payload\":{\"ts_us\":%lld,"
                      "\"seq\":%llu,\"pad\":\"%s\"}}",
                      i ? "," : "", (long long)lt_wall_us(), (unsigned long long)p->seq++, p->pad);
    gw_buf_append_str(&body, "]}");
    gw_buf_reset(&p->req);
    gw_buf_printf(&p->req,
                  "POST /realtime/v1/api/broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "apikey: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                  p->o->token, body.len);
    gw_buf_append(&p->req, body.data, body.len);
    gw_buf_release(&body);
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

/* Reads one response; returns its status (> 0), 0 when the peer closed first, or GW_E*. */
static int
read_response(int fd)
{
    char *h = gw_xmalloc(HEAD_CAP + 1), *eoh = NULL, *cl;
    size_t have = 0, body = 0, want = 0;
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
    if ((cl = strcasestr(h, "\r\ncontent-length:")))
        want = strtoul(cl + 17, NULL, 10);
    body = have - (size_t)(eoh + 4 - h);
    while (body < want) {
        ssize_t r = recv(fd, h, want - body < HEAD_CAP ? want - body : HEAD_CAP, 0);

        if (r <= 0) {
            status = GW_EIO;
            goto out;
        }
        body += (size_t)r;
    }
out:
    free(h);
    return status;
}

/* Sends the built request and reads the answer, reconnecting once. Returns the status. */
static int
post(struct pub *p)
{
    int st = GW_EIO;

    for (int attempt = 0; attempt < 2 && st <= 0; attempt++) {
        if ((p->fd < 0 || attempt) && pub_connect(p))
            continue;
        if (send_all(p->fd, p->req.data, p->req.len) == 0)
            st = read_response(p->fd);
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

/* One batch of n messages: POST, counters, histogram. Returns 0 or GW_E* (message in err). */
static int
batch(struct pub *p, unsigned n, struct lt_writer_final *out, struct gw_buf *err)
{
    int64_t t0 = lt_mono_us();
    int st;

    build(p, n);
    out->st.tx_sent++;
    st = post(p);
    lt_hist_record(&out->commit, lt_mono_us() - t0);
    if (st != 202) {
        out->st.tx_err++;
        gw_buf_printf(err, "broadcast POST answered %d", st);
        return st < 0 ? st : GW_EIO;
    }
    out->st.tx_ok++;
    out->st.rows_ok += n;
    out->st.expected += (uint64_t)n * p->o->clients;
    return 0;
}

int
lt_fanout_publish(const struct lt_fanout_opts *o, struct lt_writer_final *out, struct gw_buf *err)
{
    struct pub p = { .o = o, .fd = -1 };
    unsigned per = o->per_post ? o->per_post : 1,
             pad = o->payload_bytes > 48 ? o->payload_bytes - 48 : 1;
    uint64_t total = (uint64_t)(o->rate * o->seconds + 0.5), sent = 0;
    int64_t start = lt_mono_us(), last_rep = start;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    lt_hist_init(&out->commit);
    p.pad = gw_xmalloc(pad + 1);
    memset(p.pad, 'x', pad);
    p.pad[pad] = '\0';
    gw_buf_init(&p.req);
    out->st.t0_us = lt_wall_us();
    while (!rc && sent < total) {
        unsigned n = total - sent < per ? (unsigned)(total - sent) : per;

        sleep_until(start + (int64_t)((double)sent / o->rate * 1e6));
        rc = batch(&p, n, out, err);
        sent += n;
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
    free(p.pad);
    return rc;
}
