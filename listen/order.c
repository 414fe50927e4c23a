/*
 * order.c: exactly-once bookkeeping over outbox ids, plus the small parsers of the
 * notification payload and of int8[] literals.
 *
 * NOTIFY delivers in commit order, but ids are taken in statement order, so a transaction
 * that took a lower id can commit after a higher one. We keep max_id (highest id
 * delivered) and the gaps below it (ids not delivered yet, with the time first seen). An
 * id above max_id is new: the ids skipped over become gaps. An id in the gaps is new and
 * leaves them. Anything else is a duplicate. Gaps are appended in ascending id order at
 * non-decreasing times, so one sorted array serves lookups (binary search), expiry and
 * the size cap (both drop from the front); delivered gaps become tombstones that a
 * compaction removes.
 */
#include "listen/listen_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void
pg__order_init(struct pg_order *o)
{
    memset(o, 0, sizeof(*o));
}

void
pg__order_release(struct pg_order *o)
{
    free(o->gaps);
    pg__order_init(o);
}

static void
clear_gaps(struct pg_order *o)
{
    o->start = 0;
    o->len = 0;
    o->live = 0;
}

/* Moves the live entries to the front of the array. */
static void
compact(struct pg_order *o)
{
    size_t w = 0;

    for (size_t r = o->start; r < o->len; r++) {
        if (!o->gaps[r].done)
            o->gaps[w++] = o->gaps[r];
    }
    o->start = 0;
    o->len = w;
}

/* Drops the oldest gaps (the front) until at most `keep` remain. */
static void
drop_front(struct pg_order *o, size_t keep)
{
    while (o->live > keep && o->start < o->len) {
        if (!o->gaps[o->start].done)
            o->live--;
        o->start++;
    }
}

static void
append_gap(struct pg_order *o, int64_t id, uint64_t now_ms)
{
    if (o->len == o->cap) {
        if (o->start > 0 || o->len > o->live)
            compact(o);
        if (o->len == o->cap) {
            o->cap = o->cap ? o->cap * 2 : 64;
            o->gaps = gw_xrealloc(o->gaps, o->cap * sizeof(*o->gaps));
        }
    }
    o->gaps[o->len++] = (struct pg_gap){ .id = id, .seen_ms = now_ms, .done = false };
    o->live++;
}

/* Index of the live gap `id`, or -1. */
static ptrdiff_t
find_gap(const struct pg_order *o, int64_t id)
{
    size_t lo = o->start, hi = o->len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (o->gaps[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < o->len && o->gaps[lo].id == id && !o->gaps[lo].done)
        return (ptrdiff_t)lo;
    return -1;
}

static int
cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

void
pg__order_reset(struct pg_order *o, int64_t max_id, const int64_t *gaps, size_t n, uint64_t now_ms)
{
    int64_t *sorted = gw_xmalloc(n * sizeof(*sorted));

    if (n)
        memcpy(sorted, gaps, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_id);
    clear_gaps(o);
    o->max_id = max_id > 0 ? max_id : 0;
    for (size_t i = 0; i < n; i++) {
        if (sorted[i] <= 0 || sorted[i] >= o->max_id || (i > 0 && sorted[i] == sorted[i - 1]))
            continue;
        append_gap(o, sorted[i], now_ms);
    }
    drop_front(o, PG_GAPS_MAX);
    o->dirty = true;
    free(sorted);
}

/* The first id ever (max_id 0: empty outbox at a fresh start, whatever the sequence
 * says), or an id far above max_id (another database, a reset sequence): counting starts
 * there, without gaps. An id far below max_id is not taken as a reset: a long transaction
 * can commit an old id. */
static void
restart_count(struct pg_order *o, int64_t id)
{
    if (o->max_id != 0) {
        o->resets++;
        gw_log(GW_LOG_WARN, "pg_outbox_id_jump", "from=%" PRId64 " to=%" PRId64, o->max_id, id);
    }
    clear_gaps(o);
    o->max_id = id;
    o->dirty = true;
}

bool
pg__order_accept(struct pg_order *o, int64_t id, uint64_t now_ms)
{
    ptrdiff_t at;

    if (id <= 0) {
        o->dups++;
        return false;
    }
    if (id > o->max_id) {
        if (o->max_id == 0 || id - o->max_id > PG_JUMP_MAX) {
            restart_count(o, id);
            return true;
        }
        for (int64_t g = o->max_id + 1; g < id; g++)
            append_gap(o, g, now_ms);
        drop_front(o, PG_GAPS_MAX);
        o->max_id = id;
        o->dirty = true;
        return true;
    }
    at = find_gap(o, id);
    if (at >= 0) {
        o->gaps[at].done = true;
        o->live--;
        o->dirty = true;
        if (o->len - o->start > 2 * o->live + 1024)
            compact(o);
        return true;
    }
    o->dups++;
    return false;
}

bool
pg__order_is_dup(const struct pg_order *o, int64_t id)
{
    if (id <= 0)
        return true;
    if (id > o->max_id)
        return false;
    return find_gap(o, id) < 0;
}

void
pg__order_expire(struct pg_order *o, uint64_t now_ms, uint64_t window_ms)
{
    while (o->start < o->len) {
        struct pg_gap *g = &o->gaps[o->start];

        if (!g->done && g->seen_ms + window_ms > now_ms)
            break;
        if (!g->done) {
            o->live--;
            o->dirty = true;
        }
        o->start++;
    }
}

size_t
pg__order_gap_count(const struct pg_order *o)
{
    return o->live;
}

void
pg__order_gaps_text(const struct pg_order *o, struct gw_buf *b)
{
    bool first = true;

    gw_buf_append_str(b, "{");
    for (size_t i = o->start; i < o->len; i++) {
        if (o->gaps[i].done)
            continue;
        gw_buf_printf(b, "%s%" PRId64, first ? "" : ",", o->gaps[i].id);
        first = false;
    }
    gw_buf_append_str(b, "}");
}

/* Parses a decimal int64 at *s (no sign); advances *s. Returns 0 or GW_EPARSE. */
static int
parse_id(const char **s, int64_t *out)
{
    char *end = NULL;
    long long v;

    if (**s < '0' || **s > '9')
        return GW_EPARSE;
    errno = 0;
    v = strtoll(*s, &end, 10);
    if (errno != 0)
        return GW_EPARSE;
    *s = end;
    *out = (int64_t)v;
    return 0;
}

int
pg__parse_id_array(const char *s, int64_t **out, size_t *n)
{
    size_t cap = 0;
    int rc = 0;

    *out = NULL;
    *n = 0;
    if (!s || !*s || strcmp(s, "{}") == 0)
        return 0;
    if (*s++ != '{')
        return GW_EPARSE;
    for (;;) {
        int64_t v;

        if ((rc = parse_id(&s, &v)) < 0)
            goto out;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = gw_xrealloc(*out, cap * sizeof(**out));
        }
        (*out)[(*n)++] = v;
        if (*s == '}' && s[1] == '\0')
            return 0;
        if (*s++ != ',') {
            rc = GW_EPARSE;
            goto out;
        }
    }
out:
    free(*out);
    *out = NULL;
    *n = 0;
    return rc;
}

int
pg__parse_notify(const char *s, int *kind, int64_t *id, const char **json)
{
    int64_t k;

    *json = NULL;
    if (parse_id(&s, &k) < 0 || k > 9 || *s++ != ':' || parse_id(&s, id) < 0)
        return GW_EPARSE;
    *kind = (int)k;
    if (*s == ':')
        *json = s + 1;
    else if (*s != '\0')
        return GW_EPARSE;
    return 0;
}
