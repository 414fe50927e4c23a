/*
 * base: libc-only foundations shared by every module.
 *
 * Errors: functions return 0 on success or a negative GW_E* code; gw_strerror() names it.
 * Memory: gw_x* allocators abort with a message when memory runs out, so callers never
 * handle allocation failure. Logging: one line per event, key=value or JSON, to stderr.
 * Byte buffer: a growable buffer owned by its holder (gw_buf_init / gw_buf_release).
 * Time: monotonic and wall clocks in milliseconds. Token bucket for rate limits.
 * Nothing here knows about the network, the event loop or any third-party library.
 */
#ifndef GW_BASE_H
#define GW_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Error codes: always negative, 0 is success. */
enum gw_err {
    GW_OK = 0,
    GW_EINVAL = -1,    /* invalid argument or malformed input */
    GW_ENOMEM = -2,    /* out of memory (only where aborting is wrong) */
    GW_ELIMIT = -3,    /* a configured limit would be exceeded */
    GW_EPARSE = -4,    /* input could not be parsed */
    GW_EAUTH = -5,     /* authentication failed (bad token, bad signature) */
    GW_EEXPIRED = -6,  /* token expired */
    GW_EDENIED = -7,   /* authorization denied */
    GW_ENOTFOUND = -8, /* no such object */
    GW_EIO = -9,       /* system call or I/O failure */
    GW_EAGAIN = -10,   /* try again later (rate limit, would block) */
    GW_EEXIST = -11,   /* object already exists */
    GW_ESTATE = -12,   /* operation not valid in the current state */
};

/* Returns a static description of a GW_E* code; never NULL. */
const char *gw_strerror(int err);

/* Allocation: abort with a message on failure; never return NULL (size 0 is allowed). */
void *gw_xmalloc(size_t size);
void *gw_xcalloc(size_t n, size_t size);
void *gw_xrealloc(void *p, size_t size);
/* Returns a malloc'd NUL-terminated copy; the caller frees it. */
char *gw_xstrdup(const char *s);
char *gw_xstrndup(const char *s, size_t n);

/* Logging. */
enum gw_log_level {
    GW_LOG_DEBUG = 0,
    GW_LOG_INFO = 1,
    GW_LOG_WARN = 2,
    GW_LOG_ERROR = 3,
};

/* Sets the minimum level and the line format (json false: key=value). Not thread-safe. */
void gw_log_setup(enum gw_log_level min_level, bool json);

/*
 * Parses "debug", "info", "warn" or "error". Returns 0 and sets *out, or GW_EINVAL.
 */
int gw_log_level_parse(const char *s, enum gw_log_level *out);

/*
 * Logs one line: a timestamp, the level, `event` and then `fmt` as further key=value
 * pairs written by the caller (e.g. "fd=%d reason=%s"). In JSON mode the pairs are
 * converted to JSON members (values stay strings unless they parse as integers).
 * Never log tokens or payloads.
 */
void gw_log(enum gw_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Growable byte buffer. data is NUL-terminated after every append (not counted in len). */
struct gw_buf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
};

void gw_buf_init(struct gw_buf *b);
/* Frees the storage and re-initialises the buffer. */
void gw_buf_release(struct gw_buf *b);
/* Sets len to 0 and keeps the storage. */
void gw_buf_reset(struct gw_buf *b);
void gw_buf_append(struct gw_buf *b, const void *p, size_t n);
void gw_buf_append_str(struct gw_buf *b, const char *s);
void gw_buf_printf(struct gw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (with quotes and escapes). */
void gw_buf_append_json_str(struct gw_buf *b, const char *s, size_t n);
/* Makes room for n more bytes and returns a pointer to them (len unchanged). */
char *gw_buf_reserve(struct gw_buf *b, size_t n);
/* Hands the storage to the caller (who frees it) and re-initialises the buffer. */
char *gw_buf_steal(struct gw_buf *b, size_t *len);

/* Clocks, in milliseconds. */
uint64_t gw_now_ms(void);  /* monotonic */
uint64_t gw_wall_ms(void); /* Unix epoch */

/*
 * Token bucket: `rate` tokens per second, at most `burst` stored. Starts full when
 * last_ms is 0. gw_bucket_take() returns true and takes one token if one is available.
 */
struct gw_bucket {
    double tokens;    /* tokens available */
    uint64_t last_ms; /* monotonic time of the last refill, 0 = never */
};

bool gw_bucket_take(struct gw_bucket *b, double rate, double burst, uint64_t now_ms);

/* Sliding-count window: at most `max` events per `window_ms`. */
struct gw_window {
    uint64_t start_ms; /* start of the current window */
    uint32_t count;    /* events counted in it */
};

bool gw_window_take(struct gw_window *w, uint32_t max, uint64_t window_ms, uint64_t now_ms);

/* Next token of s separated by spaces or tabs: sets *tok and *len, advances *s; returns
 * false at the end of the text. */
bool gw_next_token(const char **s, const char **tok, size_t *len);

/*
 * A claim condition "CLAIM=V1|V2" of the authorization rules (topic rules in auth/, row
 * rules in filter/): it holds when the identity's claim CLAIM equals one of the values;
 * the value '*' only requires the claim to be present. Claim names may contain ':'.
 */
struct gw_claim_cond {
    char *claim;    /* owned claim name */
    char **values;  /* owned accepted values */
    size_t nvalues; /* number of values */
    bool any;       /* '*' among the values: present with any value */
};

/* Parses len bytes of tok into *c. Returns 0, or GW_EPARSE with a message appended to err
 * ("expected CLAIM=VALUE[|VALUE...], got '...'" or "empty value in condition '...'");
 * *c is released on failure. */
int gw_claim_cond_parse(struct gw_claim_cond *c, const char *tok, size_t len, struct gw_buf *err);
void gw_claim_cond_release(struct gw_claim_cond *c);
/* Whether the condition holds for a claim of text `value` (NULL: the claim is absent). */
bool gw_claim_cond_holds(const struct gw_claim_cond *c, const char *value);

/* 64-bit FNV-1a hash of n bytes. */
uint64_t gw_hash64(const void *p, size_t n);

#endif
