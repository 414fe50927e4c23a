/*
 * pg.c: postgres_changes, broadcast from SQL and forwarded NOTIFY channels, on top of the
 * listen/ module (PROTOCOL.md 5, 6.5; DESIGN.md 3).
 *
 * Subscriptions are grouped by shape: (schema, table, effective filter), where the
 * effective filter is the client's filter ANDed with the row rule resolved for the
 * channel's identity. A change evaluates each matching shape's filter once, collects the
 * matching binding ids per channel, and encodes one frame per distinct (version, topic, ids)
 * around the change JSON exactly as the SQL produced it (never re-serialised).
 * Changes replayed at start-up (committed while no gateway ran) are also kept for
 * PG_BACKLOG_MS so that clients rejoining after a restart receive them.
 *
 * Cluster mode (option redis): one process of the cluster holds the PostgreSQL listener,
 * the one holding the fanout lease "pg" (docs/REDIS.md). Every process subscribes an
 * internal subscriber (the address of `bus_sub`) to the fanout topic "pg:events". The
 * holder publishes each event of its listener there, encoded (see ev_encode), and
 * dispatches it itself; the others dispatch what the bus brings. Row changes are
 * dispatched by every process to its own channels; SQL broadcasts and NOTIFYs only by the
 * holder, since gw__broadcast_publish already reaches the whole cluster. Every process
 * remembers the outbox ids it has seen (a direct-mapped window of SEEN_SLOTS ids): a new
 * holder replays from the saved cursor, and what the previous holder already delivered
 * is dropped, so each change reaches each process once, in commit order. Losing the lease
 * frees the listener (it saves its cursor); gaining it creates a new one.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter/filter.h"
#include "gateway/gateway_int.h"
#include "listen/listen.h"

#define PG_BUCKETS    1024
#define IX_BUCKETS    4096
#define PG_BACKLOG_MS 120000      /* how long restart catch-up changes wait for rejoining clients */
#define PG_LEASE      "pg"        /* fanout lease of the listener (cluster mode) */
#define PG_LEASE_MS   5000        /* its TTL */
#define PG_BUS_TOPIC  "pg:events" /* fanout topic carrying the holder's events */
#define SEEN_SLOTS    65536       /* outbox ids remembered against replays (power of two) */

enum { EV_INSERT = 1, EV_UPDATE = 2, EV_DELETE = 4, EV_ALL = 7 };

struct pg_shape {
    char *schema;            /* schema name or "*" */
    char *table;             /* table name or "*" */
    char *key;               /* schema \x1f table \x1f canonical filter */
    struct filter *filter;   /* effective filter, NULL = every row */
    struct pg_binding *head; /* bindings of this shape */
    struct pg_shape *next;   /* next in its list (bucket, wildcard list or index chain) */
    struct ix_col *ix;       /* indexed column, or NULL when the shape is in a bucket list */
    char *ix_key;            /* schema \x1f table \x1f column \x1f value key (indexed only) */
};

/* A column some shapes of a table are indexed on (by the value of an eq condition). */
struct ix_col {
    char *schema, *table; /* the table */
    char *column, *type;  /* the column and its pg type */
    unsigned refs;        /* shapes indexed on it */
    struct ix_col *next;  /* next indexed column */
};

struct pg_binding {
    struct channel *ch;             /* owner */
    struct pg_shape *shape;         /* shape it belongs to */
    int64_t id;                     /* id echoed in the join reply and sent in ids */
    unsigned events;                /* EV_* mask */
    struct pg_binding *ch_next;     /* next binding of the channel */
    struct pg_binding *prev, *next; /* shape list */
};

struct backlog {
    char *json;           /* change JSON (owned) */
    size_t len;           /* bytes */
    uint64_t at_ms;       /* monotonic arrival time */
    struct backlog *next; /* next, oldest first */
};

struct notify_map {
    char *channel; /* NOTIFY channel */
    char *topic;   /* public subtopic it is forwarded to */
};

struct gw_pg {
    struct gw *gw;                          /* owner */
    struct pg_listener *l;                  /* the PostgreSQL side */
    struct filter_rows *rows;               /* row rules */
    struct pg_shape *buckets[PG_BUCKETS];   /* shapes by schema.table */
    struct pg_shape *wild;                  /* shapes with a '*' schema or table */
    struct pg_shape *ix[IX_BUCKETS];        /* shapes indexed by the value of an eq condition */
    struct ix_col *ix_cols;                 /* columns used by the index */
    struct notify_map *notify;              /* forwarded NOTIFY channels */
    size_t n_notify;                        /* entries */
    struct backlog *backlog, *backlog_tail; /* restart catch-up changes */
    enum pg_state state;                    /* last reported state */
    char detail[256];                       /* its detail */
    uint64_t seq;                           /* change counter (marks touched channels) */
    struct channel **touched;               /* scratch: channels touched by one change */
    size_t n_touched, cap_touched;          /* scratch sizes */
    const char **channels;                  /* NOTIFY channel names (into notify) */
    bool clustered;                         /* Redis configured: listener only with the lease */
    bool holder;                            /* this process holds the lease (listener runs) */
    struct fanout_sub *bus_sub;             /* subscription to PG_BUS_TOPIC (cluster mode) */
    int64_t *seen;                          /* SEEN_SLOTS outbox ids, by id % SEEN_SLOTS */
};

static char bus_sub; /* its address is the internal subscriber of PG_BUS_TOPIC */

static size_t
bucket_of(const char *schema, const char *table)
{
    return (gw_hash64(schema, strlen(schema)) ^ gw_hash64(table, strlen(table))) & (PG_BUCKETS - 1);
}

static bool
is_wild(const char *schema, const char *table)
{
    return strcmp(schema, "*") == 0 || strcmp(table, "*") == 0;
}

/* ---- shapes and bindings ---- */

static struct pg_shape **
shape_list(struct gw_pg *p, const char *schema, const char *table)
{
    return is_wild(schema, table) ? &p->wild : &p->buckets[bucket_of(schema, table)];
}

static struct ix_col *
ix_col_get(struct gw_pg *p, const char *schema, const char *table, const char *column,
           const char *type)
{
    struct ix_col *c;

    for (c = p->ix_cols; c; c = c->next) {
        if (!strcmp(c->schema, schema) && !strcmp(c->table, table) && !strcmp(c->column, column))
            break;
    }
    if (!c) {
        c = gw_xcalloc(1, sizeof(*c));
        c->schema = gw_xstrdup(schema);
        c->table = gw_xstrdup(table);
        c->column = gw_xstrdup(column);
        c->type = gw_xstrdup(type);
        c->next = p->ix_cols;
        p->ix_cols = c;
    }
    c->refs++;
    return c;
}

static void
ix_col_put(struct gw_pg *p, struct ix_col *c)
{
    if (--c->refs)
        return;
    for (struct ix_col **pp = &p->ix_cols; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    free(c->schema);
    free(c->table);
    free(c->column);
    free(c->type);
    free(c);
}

static struct pg_shape **
ix_slot(struct gw_pg *p, const char *ix_key)
{
    return &p->ix[gw_hash64(ix_key, strlen(ix_key)) & (IX_BUCKETS - 1)];
}

/* The index key of a shape when its filter has a keyable eq condition, else NULL. */
static char *
shape_ix_key(const char *schema, const char *table, const struct filter *f,
             const struct filter_column *cols, size_t n, const char **col, const char **type)
{
    struct gw_buf val, key;

    if (!cols || is_wild(schema, table))
        return NULL;
    gw_buf_init(&val);
    if (!filter_eq_key(f, cols, n, col, type, &val)) {
        gw_buf_release(&val);
        return NULL;
    }
    gw_buf_init(&key);
    gw_buf_printf(&key, "%s\x1f%s\x1f%s\x1f", schema, table, *col);
    gw_buf_append(&key, val.data, val.len);
    gw_buf_release(&val);
    return gw_buf_steal(&key, NULL);
}

/* Finds or creates the shape; takes ownership of f. cols (may be NULL) are the table's
 * column types: with them, a shape with a keyable eq condition goes into the index. */
static struct pg_shape *
shape_get(struct gw_pg *p, const char *schema, const char *table, struct filter *f,
          const struct filter_column *cols, size_t n_cols)
{
    const char *col = NULL, *type = NULL;
    char *ix_key = shape_ix_key(schema, table, f, cols, n_cols, &col, &type);
    struct pg_shape **list = ix_key ? ix_slot(p, ix_key) : shape_list(p, schema, table), *s;
    struct gw_buf key;

    gw_buf_init(&key);
    gw_buf_printf(&key, "%s\x1f%s\x1f", schema, table);
    filter_canonical(f, &key);
    for (s = *list; s; s = s->next) {
        if (strcmp(s->key, key.data) == 0) {
            filter_free(f);
            free(ix_key);
            gw_buf_release(&key);
            return s;
        }
    }
    s = gw_xcalloc(1, sizeof(*s));
    s->schema = gw_xstrdup(schema);
    s->table = gw_xstrdup(table);
    s->key = gw_buf_steal(&key, NULL);
    s->filter = f;
    if (ix_key) {
        s->ix = ix_col_get(p, schema, table, col, type);
        s->ix_key = ix_key;
    }
    s->next = *list;
    *list = s;
    return s;
}

static void
shape_free(struct pg_shape *s)
{
    free(s->ix_key);
    filter_free(s->filter);
    free(s->schema);
    free(s->table);
    free(s->key);
    free(s);
}

static void
shape_drop_if_empty(struct gw_pg *p, struct pg_shape *s)
{
    struct pg_shape **pp;

    if (s->head)
        return;
    for (pp = s->ix ? ix_slot(p, s->ix_key) : shape_list(p, s->schema, s->table); *pp;
         pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    if (s->ix)
        ix_col_put(p, s->ix);
    shape_free(s);
}

static void
binding_add(struct channel *ch, struct pg_shape *s, int64_t id, unsigned events)
{
    struct pg_binding *b = gw_xcalloc(1, sizeof(*b));

    b->ch = ch;
    b->shape = s;
    b->id = id;
    b->events = events;
    b->next = s->head;
    if (s->head)
        s->head->prev = b;
    s->head = b;
    b->ch_next = ch->pg_bindings;
    ch->pg_bindings = b;
}

void
gw__pg_leave(struct channel *ch)
{
    struct gw_pg *p = ch->conn->gw->pg;

    while (ch->pg_bindings) {
        struct pg_binding *b = ch->pg_bindings;

        ch->pg_bindings = b->ch_next;
        if (b->prev)
            b->prev->next = b->next;
        else
            b->shape->head = b->next;
        if (b->next)
            b->next->prev = b->prev;
        if (p)
            shape_drop_if_empty(p, b->shape);
        free(b);
    }
    free(ch->pg_ids);
    ch->pg_ids = NULL;
    ch->pg_ids_cap = 0;
}

int64_t
gw__pg_binding_id(json_t *binding)
{
    char *canon = json_dumps(binding, JSON_COMPACT | JSON_SORT_KEYS);
    uint64_t h = gw_hash64(canon, strlen(canon)) & ((1ull << 53) - 1);

    free(canon);
    return (int64_t)(h ? h : 1);
}

/* ---- delivery ---- */

static unsigned
event_bit(const char *type)
{
    if (!type)
        return 0;
    if (strcmp(type, "INSERT") == 0)
        return EV_INSERT;
    if (strcmp(type, "UPDATE") == 0)
        return EV_UPDATE;
    if (strcmp(type, "DELETE") == 0)
        return EV_DELETE;
    return 0;
}

static void
touch(struct gw_pg *p, struct channel *ch, int64_t id)
{
    if (ch->pg_seq != p->seq) {
        ch->pg_seq = p->seq;
        ch->pg_nids = 0;
        if (p->n_touched == p->cap_touched) {
            p->cap_touched = p->cap_touched ? p->cap_touched * 2 : 64;
            p->touched = gw_xrealloc(p->touched, p->cap_touched * sizeof(*p->touched));
        }
        p->touched[p->n_touched++] = ch;
    }
    for (uint32_t i = 0; i < ch->pg_nids; i++) {
        if (ch->pg_ids[i] == id)
            return;
    }
    if (ch->pg_nids == ch->pg_ids_cap) {
        ch->pg_ids_cap = ch->pg_ids_cap ? ch->pg_ids_cap * 2 : 4;
        ch->pg_ids = gw_xrealloc(ch->pg_ids, ch->pg_ids_cap * sizeof(*ch->pg_ids));
    }
    ch->pg_ids[ch->pg_nids++] = id;
}

static bool
shape_applies(const struct pg_shape *s, const char *schema, const char *table)
{
    return (strcmp(s->schema, "*") == 0 || strcmp(s->schema, schema) == 0) &&
           (strcmp(s->table, "*") == 0 || strcmp(s->table, table) == 0);
}

struct change {
    const char *schema, *table; /* borrowed from the parsed JSON */
    unsigned ev;                /* EV_* bit */
    json_t *row;                /* record, or old_record for DELETE */
    struct filter_column *cols; /* column types (owned array, borrowed strings) */
    size_t n_cols;              /* entries */
};

static void
match_list(struct gw_pg *p, struct pg_shape *s, const struct change *c, const struct channel *only)
{
    for (; s; s = s->next) {
        if (!shape_applies(s, c->schema, c->table))
            continue;
        if (!filter_match(s->filter, c->row, c->cols, c->n_cols))
            continue;
        for (struct pg_binding *b = s->head; b; b = b->next) {
            if ((b->events & c->ev) && (!only || b->ch == only) && !b->ch->conn->closing)
                touch(p, b->ch, b->id);
        }
    }
}

static int
cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

struct frame_slot {
    uint64_t hash;              /* hash of (vsn, topic, ids) */
    int vsn;                    /* protocol version of the frame */
    const char *topic;          /* wire topic (borrowed from a channel alive for the call) */
    char *ids;                  /* "1,2" (owned) */
    struct fanout_frame *frame; /* the encoded frame */
};

/* Appends the decimal text of v (no printf on the hot path). */
static void
append_i64(struct gw_buf *b, int64_t v)
{
    char tmp[24], *e = tmp + sizeof tmp, *q = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--q = '-';
    gw_buf_append(b, q, (size_t)(e - q));
}

static struct fanout_frame *
change_frame(const struct channel *ch, const struct gw_buf *ids, const char *json, size_t len)
{
    struct gw_buf payload, frame;
    struct fanout_frame *f;

    gw_buf_init(&payload);
    gw_buf_init(&frame);
    gw_buf_append_str(&payload, "{\"ids\":[");
    gw_buf_append(&payload, ids->data, ids->len);
    gw_buf_append_str(&payload, "],\"data\":");
    gw_buf_append(&payload, json, len);
    gw_buf_append(&payload, "}", 1);
    codec_encode_text(&frame, ch->conn->vsn, (struct codec_str){ NULL, 0 },
                      (struct codec_str){ NULL, 0 }, (struct codec_str){ ch->topic, ch->topic_len },
                      (struct codec_str){ "postgres_changes", 16 },
                      (struct codec_str){ payload.data, payload.len });
    f = gw__frame_new(frame.data, frame.len, false);
    gw_buf_release(&payload);
    gw_buf_release(&frame);
    return f;
}

/* Encodes (or reuses) the frame for one channel and queues it. */
static void
send_change(struct channel *ch, const char *json, size_t len, struct frame_slot *slots,
            size_t n_slots)
{
    struct gw_buf ids;
    uint64_t h;
    size_t i;

    gw_buf_init(&ids);
    qsort(ch->pg_ids, ch->pg_nids, sizeof(*ch->pg_ids), cmp_id);
    for (uint32_t k = 0; k < ch->pg_nids; k++) {
        if (k)
            gw_buf_append(&ids, ",", 1);
        append_i64(&ids, ch->pg_ids[k]);
    }
    h = gw_hash64(ch->topic, ch->topic_len) ^ gw_hash64(ids.data, ids.len) ^
        (uint64_t)ch->conn->vsn;
    for (i = h & (n_slots - 1); slots[i].frame; i = (i + 1) & (n_slots - 1)) {
        if (slots[i].hash == h && slots[i].vsn == (int)ch->conn->vsn &&
            strcmp(slots[i].topic, ch->topic) == 0 && strcmp(slots[i].ids, ids.data) == 0)
            break;
    }
    if (!slots[i].frame) {
        slots[i].hash = h;
        slots[i].vsn = (int)ch->conn->vsn;
        slots[i].topic = ch->topic;
        slots[i].frame = change_frame(ch, &ids, json, len);
        slots[i].ids = gw_buf_steal(&ids, NULL);
    }
    gw_buf_release(&ids);
    gw__conn_enqueue(ch->conn, slots[i].frame);
}

static void
send_touched(struct gw_pg *p, const char *json, size_t len)
{
    size_t n_slots = 16;
    struct frame_slot *slots;

    while (n_slots < p->n_touched * 2)
        n_slots *= 2;
    slots = gw_xcalloc(n_slots, sizeof(*slots));
    for (size_t i = 0; i < p->n_touched; i++)
        send_change(p->touched[i], json, len, slots, n_slots);
    for (size_t i = 0; i < n_slots; i++) {
        free(slots[i].ids);
        fanout_frame_unref(slots[i].frame);
    }
    free(slots);
    p->n_touched = 0;
}

static bool
change_parse(json_t *root, struct change *c)
{
    json_t *cols = json_object_get(root, "columns"), *v;
    size_t i;

    memset(c, 0, sizeof(*c));
    c->schema = json_string_value(json_object_get(root, "schema"));
    c->table = json_string_value(json_object_get(root, "table"));
    c->ev = event_bit(json_string_value(json_object_get(root, "type")));
    if (!c->schema || !c->table || !c->ev)
        return false;
    c->row = json_object_get(root, c->ev == EV_DELETE ? "old_record" : "record");
    c->cols = gw_xcalloc(json_array_size(cols) + 1, sizeof(*c->cols));
    json_array_foreach(cols, i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        const char *type = json_string_value(json_object_get(v, "type"));

        if (name && type)
            c->cols[c->n_cols++] = (struct filter_column){ name, type };
    }
    return true;
}

/* Looks up the indexed shapes of the change's table by the value of each indexed column. */
static void
match_index(struct gw_pg *p, const struct change *c, const struct channel *only)
{
    struct gw_buf key;

    gw_buf_init(&key);
    for (struct ix_col *ic = p->ix_cols; ic; ic = ic->next) {
        struct pg_shape *s;

        if (strcmp(ic->schema, c->schema) || strcmp(ic->table, c->table))
            continue;
        gw_buf_reset(&key);
        gw_buf_printf(&key, "%s\x1f%s\x1f%s\x1f", c->schema, c->table, ic->column);
        if (!filter_value_key(json_object_get(c->row, ic->column), ic->type, &key))
            continue;
        for (s = *ix_slot(p, key.data); s; s = s->next) {
            if (strcmp(s->ix_key, key.data) != 0 ||
                !filter_match(s->filter, c->row, c->cols, c->n_cols))
                continue;
            for (struct pg_binding *b = s->head; b; b = b->next) {
                if ((b->events & c->ev) && (!only || b->ch == only) && !b->ch->conn->closing)
                    touch(p, b->ch, b->id);
            }
        }
    }
    gw_buf_release(&key);
}

/* Delivers one change to every matching channel, or only to `only`. */
static void
dispatch_change(struct gw_pg *p, const char *json, size_t len, const struct channel *only)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    struct change c;

    if (!root || !change_parse(root, &c)) {
        gw_log(GW_LOG_WARN, "pg_bad_change", "bytes=%zu", len);
        json_decref(root);
        return;
    }
    p->seq++;
    match_list(p, p->buckets[bucket_of(c.schema, c.table)], &c, only);
    match_list(p, p->wild, &c, only);
    match_index(p, &c, only);
    send_touched(p, json, len);
    free(c.cols);
    json_decref(root);
}

/* ---- events from listen/ ---- */

static void
backlog_add(struct gw_pg *p, const struct pg_event *ev)
{
    struct backlog *b = gw_xcalloc(1, sizeof(*b));

    b->json = gw_xstrndup(ev->json, ev->len);
    b->len = ev->len;
    b->at_ms = gw_now_ms();
    if (p->backlog_tail)
        p->backlog_tail->next = b;
    else
        p->backlog = b;
    p->backlog_tail = b;
}

static void
backlog_expire(struct gw_pg *p)
{
    uint64_t now = gw_now_ms();

    while (p->backlog && now - p->backlog->at_ms > PG_BACKLOG_MS) {
        struct backlog *b = p->backlog;

        p->backlog = b->next;
        if (!p->backlog)
            p->backlog_tail = NULL;
        free(b->json);
        free(b);
    }
}

static void
on_sql_broadcast(struct gw_pg *p, const struct pg_event *ev)
{
    json_t *root = json_loadb(ev->json, ev->len, 0, NULL);
    const char *topic = json_string_value(json_object_get(root, "topic"));
    const char *event = json_string_value(json_object_get(root, "event"));
    json_t *payload = json_object_get(root, "payload"), *id = json_object_get(root, "id");
    char *text, *meta = NULL;

    if (!topic || !event || !*topic || strlen(topic) > 255 || strlen(event) > 255) {
        gw_log(GW_LOG_WARN, "pg_bad_broadcast", "bytes=%zu", ev->len);
        json_decref(root);
        return;
    }
    text = json_dumps(payload ? payload : json_object(), JSON_COMPACT | JSON_ENCODE_ANY);
    if (json_is_string(id)) {
        json_t *m = json_pack("{s:O}", "id", id);

        meta = json_dumps(m, JSON_COMPACT);
        json_decref(m);
    }
    gw__broadcast_publish(p->gw, json_is_true(json_object_get(root, "private")), topic,
                          strlen(topic), (struct codec_str){ event, strlen(event) },
                          (struct codec_str){ meta, meta ? strlen(meta) : 0 }, true, text,
                          strlen(text), NULL);
    free(text);
    free(meta);
    json_decref(root);
}

static void
on_notify(struct gw_pg *p, const struct pg_event *ev)
{
    json_t *check;
    struct gw_buf str;

    for (size_t i = 0; i < p->n_notify; i++) {
        const char *topic = p->notify[i].topic;

        if (strcmp(p->notify[i].channel, ev->channel) != 0)
            continue;
        gw_buf_init(&str);
        check = json_loadb(ev->json, ev->len, JSON_DECODE_ANY, NULL);
        if (check)
            gw_buf_append(&str, ev->json, ev->len);
        else
            gw_buf_append_json_str(&str, ev->json, ev->len);
        json_decref(check);
        gw__broadcast_publish(p->gw, false, topic, strlen(topic),
                              (struct codec_str){ ev->channel, strlen(ev->channel) },
                              (struct codec_str){ NULL, 0 }, true, str.data, str.len, NULL);
        gw_buf_release(&str);
    }
}

/* Dispatches one event; `own`: it comes from this process's listener. */
static void
handle(struct gw_pg *p, const struct pg_event *ev, bool own)
{
    switch (ev->kind) {
    case PG_EVENT_CHANGE:
        backlog_expire(p);
        if (ev->restart_catchup)
            backlog_add(p, ev);
        dispatch_change(p, ev->json, ev->len, NULL);
        break;
    case PG_EVENT_BROADCAST:
        if (own)
            on_sql_broadcast(p, ev);
        break;
    case PG_EVENT_NOTIFY:
        if (own)
            on_notify(p, ev);
        break;
    }
}

/* True when the outbox id was seen already (a replay); else remembers it. */
static bool
seen_before(struct gw_pg *p, int64_t id)
{
    int64_t *slot;

    if (!p->seen || id <= 0)
        return false;
    slot = &p->seen[(uint64_t)id & (SEEN_SLOTS - 1)];
    if (*slot == id)
        return true;
    *slot = id;
    return false;
}

/* The bus form of an event: kind, restart flag, 8-byte big-endian id, channel length
 * (0..63), channel, then the payload bytes up to the end. */
static void
ev_encode(struct gw_buf *b, const struct pg_event *ev)
{
    size_t clen = ev->channel ? strlen(ev->channel) : 0;
    unsigned char h[11];
    uint64_t id = (uint64_t)ev->id;

    h[0] = (unsigned char)ev->kind;
    h[1] = ev->restart_catchup ? 1 : 0;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)(id >> (56 - 8 * i));
    h[10] = (unsigned char)(clen > 63 ? 63 : clen);
    gw_buf_append(b, h, sizeof h);
    gw_buf_append(b, ev->channel ? ev->channel : "", h[10]);
    gw_buf_append(b, ev->json, ev->len);
}

/* Decodes ev_encode's bytes; channel (64 bytes) receives the NOTIFY channel. */
static bool
ev_decode(const unsigned char *d, size_t n, struct pg_event *ev, char *channel)
{
    uint64_t id = 0;

    if (n < 11 || d[0] < PG_EVENT_CHANGE || d[0] > PG_EVENT_NOTIFY || d[10] > 63 || n < 11u + d[10])
        return false;
    for (int i = 0; i < 8; i++)
        id = id << 8 | d[2 + i];
    memcpy(channel, d + 11, d[10]);
    channel[d[10]] = '\0';
    *ev = (struct pg_event){
        .kind = (enum pg_event_kind)d[0],
        .id = (int64_t)id,
        .channel = channel,
        .json = (const char *)d + 11 + d[10],
        .len = n - 11 - d[10],
        .restart_catchup = d[1] != 0,
    };
    return true;
}

/* An event of this process's listener. */
static void
on_event(void *ud, const struct pg_event *ev)
{
    struct gw_pg *p = ud;

    if (p->clustered) {
        struct gw_buf b;
        struct fanout_msg *m;

        if (seen_before(p, ev->id))
            return; /* delivered by the previous holder already */
        gw_buf_init(&b);
        ev_encode(&b, ev);
        m = fanout_msg_new(p->gw->fo, b.data, b.len, 0);
        fanout_publish(p->gw->fo, PG_BUS_TOPIC, strlen(PG_BUS_TOPIC), m, &bus_sub);
        fanout_msg_unref(m);
        gw_buf_release(&b);
    }
    handle(p, ev, true);
}

bool
gw__pg_bus_deliver(struct gw *gw, void *sub_ud, struct fanout_msg *m)
{
    struct gw_pg *p = gw->pg;
    struct pg_event ev;
    char channel[64];
    size_t len;
    const unsigned char *body = fanout_msg_body(m, &len);

    if (sub_ud != &bus_sub)
        return false;
    if (!p || !ev_decode(body, len, &ev, channel)) {
        gw_log(GW_LOG_WARN, "pg_bad_bus_event", "bytes=%zu", len);
        return true;
    }
    if (!seen_before(p, ev.id))
        handle(p, &ev, false);
    return true;
}

static void
on_state(void *ud, enum pg_state st, const char *detail)
{
    struct gw_pg *p = ud;
    static const char *const names[] = { "", "connecting", "ready", "retrying" };

    p->state = st;
    snprintf(p->detail, sizeof p->detail, "%s", detail);
    gw_log(st == PG_STATE_RETRYING ? GW_LOG_WARN : GW_LOG_INFO, "postgres",
           "state=%s detail=\"%s\"", names[st], detail);
}

/* ---- join ---- */

static const char *
claim_of(void *ud, const char *name)
{
    return auth_identity_claim(ud, name);
}

static unsigned
events_of(const char *e)
{
    if (!e || strcmp(e, "*") == 0)
        return EV_ALL;
    if (strcasecmp(e, "INSERT") == 0)
        return EV_INSERT;
    if (strcasecmp(e, "UPDATE") == 0)
        return EV_UPDATE;
    if (strcasecmp(e, "DELETE") == 0)
        return EV_DELETE;
    return EV_ALL;
}

/* The column types of an enabled table, as filter columns (malloc'd array), or NULL. */
static struct filter_column *
table_cols(const struct pg_table *t)
{
    struct filter_column *cols;

    if (!t)
        return NULL;
    cols = gw_xcalloc(t->n_columns + 1, sizeof(*cols));
    for (size_t i = 0; i < t->n_columns; i++)
        cols[i] = (struct filter_column){ t->columns[i].name, t->columns[i].type };
    return cols;
}

/* Resolves one binding: its effective filter in *out and the table's columns in *cols
 * (both owned by the caller), or an error message in err. */
static int
binding_filter(struct gw_pg *p, struct channel *ch, const char *schema, const char *table,
               const char *ftext, struct filter **out, struct filter_column **cols, size_t *n_cols,
               struct gw_buf *err)
{
    const struct pg_table *t = NULL;
    const char *col, *val;
    struct filter *f = NULL;

    *out = NULL;
    *cols = NULL;
    *n_cols = 0;
    if (!is_wild(schema, table)) {
        t = pg_listener_table(p->l, schema, table);
        if (!t && p->state == PG_STATE_READY) {
            gw_buf_printf(err,
                          "Unable to subscribe to changes with given parameters. Table %s.%s is "
                          "not enabled for changes (SELECT tidings.enable_changes('%s.%s'))",
                          schema, table, schema, table);
            return GW_ENOTFOUND;
        }
    }
    if (filter_parse(ftext, &f, err))
        return GW_EPARSE;
    *cols = table_cols(t);
    *n_cols = t ? t->n_columns : 0;
    if (t && filter_check(f, *cols, *n_cols, err))
        goto fail;
    switch (filter_rows_resolve(p->rows, schema, table, claim_of, ch->id, &col, &val)) {
    case FILTER_ROWS_ALL:
        break;
    case FILTER_ROWS_WHERE:
        filter_add_eq(&f, col, val);
        break;
    default:
        gw_buf_printf(err,
                      "Unable to subscribe to changes with given parameters. Unauthorized: no "
                      "row_rule lets role %s read %s.%s",
                      auth_identity_role(ch->id), schema, table);
        goto fail;
    }
    *out = f;
    return 0;
fail:
    filter_free(f);
    free(*cols);
    *cols = NULL;
    return GW_EINVAL;
}

static void
system_msg(struct channel *ch, const char *status, const char *msg)
{
    gw__channel_system(ch, "postgres_changes", status, msg);
}

/* Subscribes one binding object; returns true when it is live. */
static bool
bind_one(struct gw_pg *p, struct channel *ch, json_t *b)
{
    const char *schema = json_string_value(json_object_get(b, "schema"));
    const char *table = json_string_value(json_object_get(b, "table"));
    const char *ftext = json_string_value(json_object_get(b, "filter"));
    struct filter *f;
    struct filter_column *cols;
    size_t n_cols;
    struct gw_buf err;
    bool ok;

    gw_buf_init(&err);
    if (!schema && !table) {
        system_msg(ch, "error",
                   "No subscription params provided. Please provide at least a `schema` or "
                   "`table` to subscribe to.");
        return false;
    }
    schema = schema ? schema : "public";
    table = table ? table : "*";
    ok = binding_filter(p, ch, schema, table, ftext, &f, &cols, &n_cols, &err) == 0;
    if (ok)
        binding_add(ch, shape_get(p, schema, table, f, cols, n_cols), gw__pg_binding_id(b),
                    events_of(json_string_value(json_object_get(b, "event"))));
    else
        system_msg(ch, "error", err.data);
    free(cols);
    gw_buf_release(&err);
    return ok;
}

void
gw__pg_join(struct channel *ch, json_t *bindings)
{
    struct gw_pg *p = ch->conn->gw->pg;
    size_t i, live = 0, n = 0;
    json_t *b;

    json_array_foreach(bindings, i, b) {
        if (!json_is_object(b))
            continue;
        n++;
        if (p)
            live += bind_one(p, ch, b);
    }
    if (!n)
        return;
    if (!p) {
        system_msg(ch, "error",
                   "Unable to subscribe to changes with given parameters. PostgreSQL is not "
                   "configured on this server (option pg)");
        return;
    }
    if (!live)
        return;
    system_msg(ch, "ok", "Subscribed to PostgreSQL");
    backlog_expire(p);
    for (struct backlog *bl = p->backlog; bl; bl = bl->next)
        dispatch_change(p, bl->json, bl->len, ch);
}

void
gw__pg_rebind(struct channel *ch, json_t *bindings)
{
    gw__pg_leave(ch);
    if (ch->conn->gw->pg) {
        size_t i;
        json_t *b;

        json_array_foreach(bindings, i, b) {
            if (json_is_object(b))
                bind_one(ch->conn->gw->pg, ch, b);
        }
    }
}

/* ---- lifecycle ---- */

static int
notify_parse(struct gw_pg *p, const struct conf_list *list, const char **channels,
             struct gw_buf *err)
{
    p->notify = gw_xcalloc(list->n + 1, sizeof(*p->notify));
    for (size_t i = 0; i < list->n; i++) {
        char ch[128], topic[256];
        int n = sscanf(list->items[i].value, "%127s %255s", ch, topic);

        if (n < 1 || strlen(ch) > 63) {
            gw_buf_printf(err,
                          "%s: notify_channel: expected CHANNEL [TOPIC] (channel at most "
                          "63 bytes)",
                          list->items[i].origin);
            return GW_EINVAL;
        }
        p->notify[i].channel = gw_xstrdup(ch);
        p->notify[i].topic = gw_xstrdup(n == 2 ? topic : ch);
        channels[i] = p->notify[i].channel;
        p->n_notify++;
    }
    return 0;
}

static int
rows_parse(struct gw_pg *p, const struct conf_list *list, struct gw_buf *err)
{
    p->rows = filter_rows_new();
    for (size_t i = 0; i < list->n; i++) {
        struct gw_buf e;

        gw_buf_init(&e);
        if (filter_rows_add(p->rows, list->items[i].value, &e)) {
            gw_buf_printf(err, "%s: row_rule: %s", list->items[i].origin, e.data ? e.data : "");
            gw_buf_release(&e);
            return GW_EINVAL;
        }
        gw_buf_release(&e);
    }
    return 0;
}

/* Creates the listener (at start, or on gaining the lease). Returns 0 or GW_EINVAL. */
static int
listener_start(struct gw_pg *p)
{
    const struct conf *c = p->gw->conf;
    struct pg_listener_config lc = {
        .conninfo = c->pg,
        .channels = p->channels,
        .n_channels = p->n_notify,
        .install_sql = c->pg_install_sql,
        .realtime_compat = c->pg_realtime_compat,
        .catchup_window_s = (uint32_t)c->catchup_window,
        .loop = p->gw->loop,
        .on_event = on_event,
        .on_state = on_state,
        .ud = p,
    };

    p->state = PG_STATE_CONNECTING;
    snprintf(p->detail, sizeof p->detail, "connecting");
    p->l = pg_listener_new(&lc);
    return p->l ? 0 : GW_EINVAL;
}

/* The lease "pg" was gained or lost (cluster mode). */
static void
on_lease(void *ud, bool held)
{
    struct gw_pg *p = ud;

    p->holder = held;
    gw_log(GW_LOG_INFO, "pg_lease", "state=%s node=%s", held ? "held" : "standby",
           fanout_node_id(p->gw->fo));
    if (held) {
        if (!p->l && listener_start(p) < 0)
            gw_log(GW_LOG_ERROR, "pg_lease", "state=error detail=\"cannot create the listener\"");
        return;
    }
    /* Frees before anyone else can hold the lease; the listener saves its cursor. */
    pg_listener_free(p->l);
    p->l = NULL;
    p->state = PG_STATE_CONNECTING;
    snprintf(p->detail, sizeof p->detail, "standby");
}

/* Cluster mode: subscribe to the holder's events and compete for the lease. */
static int
cluster_start(struct gw_pg *p)
{
    struct fanout *fo = p->gw->fo;

    p->clustered = true;
    p->seen = gw_xcalloc(SEEN_SLOTS, sizeof(*p->seen));
    if (fanout_subscribe(fo, PG_BUS_TOPIC, strlen(PG_BUS_TOPIC), &bus_sub, &p->bus_sub) < 0 ||
        fanout_lease_start(fo, PG_LEASE, PG_LEASE_MS, on_lease, p) < 0)
        return GW_EINVAL;
    gw_log(GW_LOG_INFO, "pg_lease", "state=standby node=%s", fanout_node_id(fo));
    return 0;
}

struct gw_pg *
gw__pg_new(struct gw *gw, struct gw_buf *err)
{
    const struct conf *c = gw->conf;
    struct gw_pg *p;

    if (!*c->pg)
        return NULL;
    p = gw_xcalloc(1, sizeof(*p));
    p->gw = gw;
    p->state = PG_STATE_CONNECTING;
    snprintf(p->detail, sizeof p->detail, "connecting");
    p->channels = gw_xcalloc(c->notify_channel.n + 1, sizeof(*p->channels));
    if (notify_parse(p, &c->notify_channel, p->channels, err) || rows_parse(p, &c->row_rule, err)) {
        gw__pg_free(p);
        return NULL;
    }
    if (c->redis.n > 0 ? cluster_start(p) : listener_start(p)) {
        gw_buf_printf(err, "pg: invalid configuration");
        gw__pg_free(p);
        return NULL;
    }
    return p;
}

/* Frees a shape list and its bindings; the channels forget their bindings. */
static void
shapes_free(struct pg_shape **list)
{
    while (*list) {
        struct pg_shape *s = *list;

        *list = s->next;
        while (s->head) {
            struct pg_binding *b = s->head;

            s->head = b->next;
            b->ch->pg_bindings = NULL;
            free(b);
        }
        shape_free(s);
    }
}

void
gw__pg_free(struct gw_pg *p)
{
    if (!p)
        return;
    pg_listener_free(p->l);
    p->l = NULL;
    if (p->clustered) {
        fanout_lease_release(p->gw->fo, PG_LEASE); /* another process takes over at once */
        fanout_unsubscribe(p->gw->fo, p->bus_sub);
    }
    for (size_t i = 0; i < PG_BUCKETS; i++)
        shapes_free(&p->buckets[i]);
    shapes_free(&p->wild);
    for (size_t i = 0; i < IX_BUCKETS; i++)
        shapes_free(&p->ix[i]);
    while (p->ix_cols) {
        struct ix_col *c = p->ix_cols;

        p->ix_cols = c->next;
        free(c->schema);
        free(c->table);
        free(c->column);
        free(c->type);
        free(c);
    }
    p->backlog_tail = NULL;
    while (p->backlog) {
        struct backlog *b = p->backlog;

        p->backlog = b->next;
        free(b->json);
        free(b);
    }
    for (size_t i = 0; i < p->n_notify; i++) {
        free(p->notify[i].channel);
        free(p->notify[i].topic);
    }
    free(p->notify);
    filter_rows_free(p->rows);
    free(p->touched);
    free(p->channels);
    free(p->seen);
    free(p);
}

const char *
gw__pg_status(const struct gw_pg *p, bool *ready)
{
    static char buf[300];

    if (!p) {
        *ready = true;
        return "not configured";
    }
    if (p->clustered && !p->holder) {
        fanout_redis_status(p->gw->fo, ready);
        return "standby (lease held by another process)";
    }
    *ready = p->state == PG_STATE_READY;
    if (*ready)
        return "ready";
    snprintf(buf, sizeof buf, "%s: %s", p->state == PG_STATE_CONNECTING ? "connecting" : "retrying",
             p->detail);
    return buf;
}
