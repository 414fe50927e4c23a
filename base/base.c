/*
 * base.c: errors, checked allocation, the byte buffer, clocks and rate-limit helpers.
 * See base.h for the contracts.
 */
#include "base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *
gw_strerror(int err)
{
    switch (err) {
    case GW_OK:
        return "success";
    case GW_EINVAL:
        return "invalid argument";
    case GW_ENOMEM:
        return "out of memory";
    case GW_ELIMIT:
        return "limit exceeded";
    case GW_EPARSE:
        return "parse error";
    case GW_EAUTH:
        return "authentication failed";
    case GW_EEXPIRED:
        return "expired";
    case GW_EDENIED:
        return "permission denied";
    case GW_ENOTFOUND:
        return "not found";
    case GW_EIO:
        return "I/O error";
    case GW_EAGAIN:
        return "try again";
    case GW_EEXIST:
        return "already exists";
    case GW_ESTATE:
        return "invalid state";
    default:
        return "unknown error";
    }
}

static void
oom(size_t size)
{
    fprintf(stderr, "tidings: out of memory allocating %zu bytes\n", size);
    abort();
}

void *
gw_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (!p)
        oom(size);
    return p;
}

void *
gw_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (!p)
        oom(n * size);
    return p;
}

void *
gw_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);

    if (!q)
        oom(size);
    return q;
}

char *
gw_xstrndup(const char *s, size_t n)
{
    char *p = gw_xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
gw_xstrdup(const char *s)
{
    return gw_xstrndup(s, strlen(s));
}

void
gw_buf_init(struct gw_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void
gw_buf_release(struct gw_buf *b)
{
    free(b->data);
    gw_buf_init(b);
}

void
gw_buf_reset(struct gw_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *
gw_buf_reserve(struct gw_buf *b, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;

        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = gw_xrealloc(b->data, cap);
        b->cap = cap;
    }
    return b->data + b->len;
}

void
gw_buf_append(struct gw_buf *b, const void *p, size_t n)
{
    char *dst = gw_buf_reserve(b, n);

    if (n)
        memcpy(dst, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
gw_buf_append_str(struct gw_buf *b, const char *s)
{
    gw_buf_append(b, s, strlen(s));
}

void
gw_buf_printf(struct gw_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    gw_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void
gw_buf_append_json_str(struct gw_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    gw_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        gw_buf_append(b, s + run, i - run);
        run = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
            break;
        }
        gw_buf_append(b, esc, elen);
    }
    gw_buf_append(b, s + run, n - run);
    gw_buf_append(b, "\"", 1);
}

char *
gw_buf_steal(struct gw_buf *b, size_t *len)
{
    char *p = b->data ? b->data : gw_xstrdup("");

    if (len)
        *len = b->len;
    gw_buf_init(b);
    return p;
}

static uint64_t
clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
gw_now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

uint64_t
gw_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

bool
gw_bucket_take(struct gw_bucket *b, double rate, double burst, uint64_t now_ms)
{
    if (b->last_ms == 0) {
        b->tokens = burst;
    } else if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
    }
    b->last_ms = now_ms ? now_ms : 1;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

bool
gw_window_take(struct gw_window *w, uint32_t max, uint64_t window_ms, uint64_t now_ms)
{
    if (w->start_ms == 0 || now_ms - w->start_ms >= window_ms) {
        w->start_ms = now_ms ? now_ms : 1;
        w->count = 0;
    }
    if (w->count >= max)
        return false;
    w->count++;
    return true;
}

uint64_t
gw_hash64(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

bool
gw_next_token(const char **s, const char **tok, size_t *len)
{
    const char *p = *s;

    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return false;
    *tok = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    *len = (size_t)(p - *tok);
    *s = p;
    return true;
}

void
gw_claim_cond_release(struct gw_claim_cond *c)
{
    for (size_t v = 0; v < c->nvalues; v++)
        free(c->values[v]);
    free(c->values);
    free(c->claim);
    memset(c, 0, sizeof(*c));
}

int
gw_claim_cond_parse(struct gw_claim_cond *c, const char *tok, size_t len, struct gw_buf *err)
{
    const char *eq = memchr(tok, '=', len), *end = tok + len, *p;

    memset(c, 0, sizeof(*c));
    if (!eq || eq == tok || eq + 1 == end) {
        if (err)
            gw_buf_printf(err, "expected CLAIM=VALUE[|VALUE...], got '%.*s'", (int)len, tok);
        return GW_EPARSE;
    }
    c->claim = gw_xstrndup(tok, (size_t)(eq - tok));
    for (p = eq + 1; p <= end;) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        size_t n = (size_t)((bar ? bar : end) - p);

        if (n == 0) {
            if (err)
                gw_buf_printf(err, "empty value in condition '%.*s'", (int)len, tok);
            gw_claim_cond_release(c);
            return GW_EPARSE;
        }
        c->values = gw_xrealloc(c->values, (c->nvalues + 1) * sizeof(*c->values));
        c->values[c->nvalues++] = gw_xstrndup(p, n);
        c->any = c->any || (n == 1 && *p == '*');
        p += n + 1;
    }
    return 0;
}

bool
gw_claim_cond_holds(const struct gw_claim_cond *c, const char *value)
{
    if (!value)
        return false;
    if (c->any)
        return true;
    for (size_t i = 0; i < c->nvalues; i++) {
        if (strcmp(value, c->values[i]) == 0)
            return true;
    }
    return false;
}
