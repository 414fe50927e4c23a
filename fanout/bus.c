/*
 * bus.c: the pure parts of the Redis bus: URL parsing, the envelope, RESP command bytes
 * and node ids. Nothing here does I/O (except reading /dev/urandom for a node id).
 *
 * Envelope (version 1), the payload of every PUBLISH on a bus channel:
 *   byte 0          version, FANOUT_ENVELOPE_V1
 *   byte 1          N = bytes of the node id (1..FANOUT_NODE_ID_MAX)
 *   bytes 2..N+1    node id of the publishing process
 *   4 bytes         message tag, unsigned big-endian
 *   the rest        message body (opaque, binary)
 * Commands are built as RESP bytes directly (redisAsyncFormattedCommand), so a publish
 * copies the body once into the command and hiredis copies it once into its output buffer.
 */
#include "fanout/fanout_int.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define URL_SCHEME   "redis://"
#define DEFAULT_PORT 6379

/* Appends the decimal digits of v. */
static void
append_uint(struct gw_buf *b, size_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    gw_buf_append(b, tmp + i, sizeof(tmp) - i);
}

/* Appends "$<len>\r\n", the header of a RESP bulk string. */
static void
bulk_header(struct gw_buf *b, size_t len)
{
    gw_buf_append(b, "$", 1);
    append_uint(b, len);
    gw_buf_append(b, "\r\n", 2);
}

void
fanout__resp_begin(struct gw_buf *b, const char *cmd, size_t nargs)
{
    size_t len = strlen(cmd);

    gw_buf_append(b, "*", 1);
    append_uint(b, nargs + 1);
    gw_buf_append(b, "\r\n", 2);
    bulk_header(b, len);
    gw_buf_append(b, cmd, len);
    gw_buf_append(b, "\r\n", 2);
}

void
fanout__resp_channel(struct gw_buf *b, const char *prefix, size_t prefix_len, const void *topic,
                     size_t topic_len)
{
    size_t infix = sizeof(FANOUT_BUS_INFIX) - 1;

    bulk_header(b, prefix_len + infix + topic_len);
    gw_buf_append(b, prefix, prefix_len);
    gw_buf_append(b, FANOUT_BUS_INFIX, infix);
    gw_buf_append(b, topic, topic_len);
    gw_buf_append(b, "\r\n", 2);
}

void
fanout__resp_envelope(struct gw_buf *b, const char *node, size_t node_len, unsigned tag,
                      const void *body, size_t body_len)
{
    unsigned char head[2 + FANOUT_NODE_ID_MAX + 4];
    size_t n = 0;
    uint32_t t = (uint32_t)tag;

    head[n++] = FANOUT_ENVELOPE_V1;
    head[n++] = (unsigned char)node_len;
    memcpy(head + n, node, node_len);
    n += node_len;
    head[n++] = (unsigned char)(t >> 24);
    head[n++] = (unsigned char)(t >> 16);
    head[n++] = (unsigned char)(t >> 8);
    head[n++] = (unsigned char)t;
    bulk_header(b, n + body_len);
    gw_buf_append(b, head, n);
    gw_buf_append(b, body, body_len);
    gw_buf_append(b, "\r\n", 2);
}

static void
put_u32(struct gw_buf *b, size_t v)
{
    unsigned char x[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 8), (unsigned char)v };

    gw_buf_append(b, x, sizeof(x));
}

void
fanout__pvalue_encode(struct gw_buf *b, const struct fanout_presence *p)
{
    put_u32(b, p->key_len);
    gw_buf_append(b, p->key, p->key_len);
    put_u32(b, p->ref_len);
    gw_buf_append(b, p->ref, p->ref_len);
    gw_buf_append(b, p->meta, p->meta_len);
}

/* Reads a 4-byte length and that many bytes at *at; returns false when they overrun. */
static bool
get_part(const unsigned char **at, const unsigned char *end, const char **s, size_t *len)
{
    const unsigned char *b = *at;
    size_t n;

    if (end - b < 4)
        return false;
    n = (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | (size_t)b[3];
    if ((size_t)(end - b - 4) < n)
        return false;
    *s = (const char *)b + 4;
    *len = n;
    *at = b + 4 + n;
    return true;
}

int
fanout__pvalue_decode(const void *p, size_t n, struct fanout_presence *out)
{
    const unsigned char *at = p, *end = at + n;

    if (!p || !get_part(&at, end, &out->key, &out->key_len) ||
        !get_part(&at, end, &out->ref, &out->ref_len))
        return GW_EPARSE;
    out->meta = (const char *)at;
    out->meta_len = (size_t)(end - at);
    return 0;
}

int
fanout__envelope_decode(const void *p, size_t n, struct fanout__envelope *out)
{
    const unsigned char *b = p;
    size_t node_len;

    if (!b || n < 2 || b[0] != FANOUT_ENVELOPE_V1)
        return GW_EPARSE;
    node_len = b[1];
    if (node_len == 0 || node_len > FANOUT_NODE_ID_MAX || n < 2 + node_len + 4)
        return GW_EPARSE;
    out->node = (const char *)b + 2;
    out->node_len = node_len;
    b += 2 + node_len;
    out->tag = (unsigned)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
                          (uint32_t)b[3]);
    out->body = b + 4;
    out->body_len = n - 2 - node_len - 4;
    return 0;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Returns a NUL-terminated copy of s[0..n) with %XX escapes decoded, or NULL when an
 * escape is malformed or decodes to NUL. */
static char *
percent_decode(const char *s, size_t n)
{
    char *out = gw_xmalloc(n + 1);
    size_t w = 0;

    for (size_t i = 0; i < n; i++) {
        int hi, lo;

        if (s[i] != '%') {
            out[w++] = s[i];
            continue;
        }
        hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
        lo = i + 2 < n ? hex_value(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[w++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[w] = '\0';
    return out;
}

/* Parses decimal digits s[0..n) into *out within [min, max]. */
static int
parse_int(const char *s, size_t n, long min, long max, int *out)
{
    long v = 0;

    if (n == 0 || n > 10)
        return GW_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return GW_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return GW_EINVAL;
    *out = (int)v;
    return 0;
}

/* Parses "[user]:password" (s[0..n)) into u->user and u->password. */
static int
parse_userinfo(const char *s, size_t n, struct fanout__redis_url *u)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen;

    /* "user@host" (no password) cannot be sent as AUTH: reject it. */
    if (!colon || colon == s + n - 1)
        return GW_EINVAL;
    ulen = (size_t)(colon - s);
    if (ulen > 0 && !(u->user = percent_decode(s, ulen)))
        return GW_EINVAL;
    u->password = percent_decode(colon + 1, n - ulen - 1);
    return u->password ? 0 : GW_EINVAL;
}

/* Parses "host[:port]" or "[v6]:port" (s[0..n)) into host, port and label. */
static int
parse_hostport(const char *s, size_t n, struct fanout__redis_url *u)
{
    const char *end = s + n, *host = s, *port = NULL;
    size_t hlen;
    bool v6 = n > 0 && s[0] == '[';

    if (v6) {
        const char *close = memchr(s, ']', n);

        if (!close || (close + 1 < end && close[1] != ':'))
            return GW_EINVAL;
        host = s + 1;
        hlen = (size_t)(close - host);
        port = close + 1 < end ? close + 2 : NULL;
    } else {
        const char *colon = memchr(s, ':', n);

        hlen = colon ? (size_t)(colon - s) : n;
        port = colon ? colon + 1 : NULL;
    }
    if (hlen == 0 || memchr(host, '@', hlen) || memchr(host, '%', hlen))
        return GW_EINVAL;
    u->port = DEFAULT_PORT;
    if (port && parse_int(port, (size_t)(end - port), 1, 65535, &u->port) < 0)
        return GW_EINVAL;
    u->host = gw_xstrndup(host, hlen);
    u->label = gw_xmalloc(hlen + 16);
    snprintf(u->label, hlen + 16, v6 ? "[%s]:%d" : "%s:%d", u->host, u->port);
    return 0;
}

static int
url_parse(const char *url, struct fanout__redis_url *u)
{
    const char *rest, *slash, *at, *hp;
    size_t len;

    if (strncasecmp(url, URL_SCHEME, sizeof(URL_SCHEME) - 1) != 0)
        return GW_EINVAL;
    rest = url + sizeof(URL_SCHEME) - 1;
    len = strlen(rest);
    if (strpbrk(rest, "?#") || strpbrk(rest, " \t\r\n"))
        return GW_EINVAL;
    /* The last '@' ends the user info, so an unescaped '@' may still be in a password. */
    at = strrchr(rest, '@');
    hp = at ? at + 1 : rest;
    slash = strchr(hp, '/');
    if (at && parse_userinfo(rest, (size_t)(at - rest), u) < 0)
        return GW_EINVAL;
    if (parse_hostport(hp, slash ? (size_t)(slash - hp) : (size_t)(rest + len - hp), u) < 0)
        return GW_EINVAL;
    if (slash && slash[1] != '\0' && parse_int(slash + 1, strlen(slash + 1), 0, INT_MAX, &u->db))
        return GW_EINVAL;
    return 0;
}

int
fanout__redis_url_parse(const char *url, struct fanout__redis_url *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    out->db = -1;
    if (!url)
        return GW_EINVAL;
    rc = url_parse(url, out);
    if (rc < 0)
        fanout__redis_url_release(out);
    return rc;
}

void
fanout__redis_url_release(struct fanout__redis_url *u)
{
    if (!u)
        return;
    free(u->host);
    free(u->user);
    free(u->password);
    free(u->label);
    memset(u, 0, sizeof(*u));
    u->db = -1;
}

bool
fanout__node_id_valid(const char *node_id)
{
    size_t n = node_id ? strlen(node_id) : 0;

    if (n == 0 || n > FANOUT_NODE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)node_id[i];

        if (c <= ' ' || c == 0x7f)
            return false;
    }
    return true;
}

/* 32 random bits from /dev/urandom, or from the clocks and the pid when it is missing. */
static uint32_t
random32(void)
{
    uint32_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");

    if (!f || fread(&v, sizeof(v), 1, f) != 1)
        v = (uint32_t)fanout__mix64(gw_wall_ms() ^ gw_now_ms() << 20 ^ (uint64_t)getpid());
    if (f)
        fclose(f);
    return v;
}

char *
fanout__node_id_new(void)
{
    char host[33] = "node";
    char id[FANOUT_NODE_ID_MAX + 1];

    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "node");
    host[sizeof(host) - 1] = '\0';
    for (char *p = host; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            *p = '_';
    }
    snprintf(id, sizeof(id), "%s-%ld-%08x", host, (long)getpid(), (unsigned)random32());
    return gw_xstrdup(id);
}
