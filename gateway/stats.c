/*
 * stats.c: the registry of connections and subscriptions behind GET /admin/stats.
 *
 * Every STATS_INTERVAL_MS (driven by the 1 s sweep) this process builds its own stats
 * blob {"node","pid","started_at","connections","channels","topics":[...]} from the
 * metrics and the fanout topics ("b:<0|1>:<sub>" give subscribers, "p:<0|1>:<sub>" the
 * presence entries), puts it in the fanout registry with a TTL of three intervals and
 * fetches every node's blob; the merged answer {"nodes","totals","topics"} is cached in
 * struct gw and served synchronously. In-memory mode the answer is built on each request
 * from this process alone. Topic lists are sorted by subscribers and capped at
 * STATS_TOPICS_MAX entries ("topics_truncated": true when capped).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

#define STATS_INTERVAL_MS 2000u /* refresh period of the registry */
#define STATS_TOPICS_MAX  1000u /* topics listed per node and in the merged answer */

/* One decoded fanout topic. */
struct stopic {
    char *sub;          /* subtopic (owned) */
    bool is_private;    /* "1" in the key */
    size_t subscribers; /* local subscribers of the broadcast topic */
    size_t presence;    /* local presence entries of the presence topic */
};

struct scollect {
    struct stopic *t; /* decoded topics */
    size_t n;         /* used */
    size_t cap;       /* allocated */
};

static void
collect(void *ud, const void *topic, size_t len, size_t subscribers, size_t presence)
{
    struct scollect *c = ud;
    const char *k = topic;

    if (len < 4 || (k[0] != 'b' && k[0] != 'p') || k[1] != ':' || (k[2] != '0' && k[2] != '1') ||
        k[3] != ':')
        return; /* internal topics (e.g. pg:events) */
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->t = gw_xrealloc(c->t, c->cap * sizeof(*c->t));
    }
    c->t[c->n++] = (struct stopic){ gw_xstrndup(k + 4, len - 4), k[2] == '1',
                                    k[0] == 'b' ? subscribers : 0, k[0] == 'p' ? presence : 0 };
}

static int
cmp_key(const void *a, const void *b)
{
    const struct stopic *x = a, *y = b;
    int r = strcmp(x->sub, y->sub);

    return r ? r : (int)x->is_private - (int)y->is_private;
}

static int
cmp_subs(const void *a, const void *b)
{
    const struct stopic *x = a, *y = b;

    if (x->subscribers != y->subscribers)
        return x->subscribers > y->subscribers ? -1 : 1;
    return cmp_key(a, b);
}

/* Merges entries of the same (sub, private), sorts by subscribers; frees merged subs. */
static void
merge_sort(struct scollect *c)
{
    size_t w = 0;

    if (c->n == 0)
        return;
    qsort(c->t, c->n, sizeof(*c->t), cmp_key);
    for (size_t r = 1; r < c->n; r++) {
        if (cmp_key(&c->t[w], &c->t[r]) == 0) {
            c->t[w].subscribers += c->t[r].subscribers;
            c->t[w].presence += c->t[r].presence;
            free(c->t[r].sub);
        } else {
            c->t[++w] = c->t[r];
        }
    }
    c->n = w + 1;
    qsort(c->t, c->n, sizeof(*c->t), cmp_subs);
}

/* Sets "topics" (and "topics_truncated" when capped) on obj; frees c's contents. */
static void
set_topics(json_t *obj, struct scollect *c)
{
    json_t *arr = json_array();

    merge_sort(c);
    for (size_t i = 0; i < c->n; i++) {
        if (i < STATS_TOPICS_MAX)
            json_array_append_new(arr, json_pack("{s:s,s:b,s:I,s:I}", "topic", c->t[i].sub,
                                                 "private", c->t[i].is_private, "subscribers",
                                                 (json_int_t)c->t[i].subscribers, "presence",
                                                 (json_int_t)c->t[i].presence));
        free(c->t[i].sub);
    }
    json_object_set_new(obj, "topics", arr);
    if (c->n > STATS_TOPICS_MAX)
        json_object_set_new(obj, "topics_truncated", json_true());
    free(c->t);
    memset(c, 0, sizeof(*c));
}

/* This process's blob. */
static json_t *
own_blob(struct gw *gw)
{
    struct scollect c = { 0 };
    uint64_t started = gw_wall_ms() - (gw_now_ms() - gw->started_ms);
    json_t *o =
        json_pack("{s:s,s:I,s:I,s:I,s:I}", "node", fanout_node_id(gw->fo), "pid",
                  (json_int_t)getpid(), "started_at", (json_int_t)(started / 1000), "connections",
                  (json_int_t)gw->m.connections, "channels", (json_int_t)gw->m.channels);

    fanout_topics_foreach(gw->fo, collect, &c);
    set_topics(o, &c);
    return o;
}

static json_int_t
int_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* Adds the topics of one node blob to c. */
static void
add_topics(struct scollect *c, json_t *blob)
{
    size_t i;
    json_t *t;

    json_array_foreach(json_object_get(blob, "topics"), i, t) {
        const char *sub = json_string_value(json_object_get(t, "topic"));

        if (!sub)
            continue;
        if (c->n == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 16;
            c->t = gw_xrealloc(c->t, c->cap * sizeof(*c->t));
        }
        c->t[c->n++] =
            (struct stopic){ gw_xstrdup(sub), json_is_true(json_object_get(t, "private")),
                             (size_t)int_of(t, "subscribers"), (size_t)int_of(t, "presence") };
    }
}

/* The merged answer from the node blobs (steals `nodes`). Returns the JSON text. */
static char *
combine(json_t *nodes)
{
    struct scollect c = { 0 };
    json_int_t conns = 0, chans = 0;
    size_t i;
    json_t *n, *out;
    char *text;

    json_array_foreach(nodes, i, n) {
        conns += int_of(n, "connections");
        chans += int_of(n, "channels");
        add_topics(&c, n);
    }
    out = json_pack("{s:o,s:{s:I,s:I,s:I}}", "nodes", nodes, "totals", "nodes",
                    (json_int_t)json_array_size(nodes), "connections", conns, "channels", chans);
    set_topics(out, &c);
    text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return text;
}

static void
cache_set(struct gw *gw, char *text)
{
    free(gw->stats_json);
    gw->stats_json = text;
}

/* Registry answer: every node's blob (or, when Redis could not answer, this one's). */
static void
on_fetch(void *ud, bool ok, const struct fanout_registry_entry *e, size_t n)
{
    struct gw *gw = ud;
    json_t *nodes = json_array();

    gw->stats_pending = false;
    for (size_t i = 0; ok && i < n; i++) {
        json_t *b = json_loadb(e[i].data, e[i].len, 0, NULL);

        if (json_is_object(b))
            json_array_append_new(nodes, b);
        else
            json_decref(b);
    }
    if (json_array_size(nodes) == 0)
        json_array_append_new(nodes, own_blob(gw));
    cache_set(gw, combine(nodes));
}

void
gw__stats_tick(struct gw *gw, uint64_t now_ms)
{
    json_t *blob;
    char *text;

    if (!gw->conf->redis.n || now_ms < gw->stats_next_ms)
        return;
    gw->stats_next_ms = now_ms + STATS_INTERVAL_MS;
    blob = own_blob(gw);
    text = json_dumps(blob, JSON_COMPACT);
    json_decref(blob);
    if (text)
        fanout_registry_put(gw->fo, text, strlen(text), 3u * STATS_INTERVAL_MS);
    free(text);
    if (gw->stats_pending)
        return;
    gw->stats_pending = true;
    fanout_registry_fetch(gw->fo, on_fetch, gw);
}

const char *
gw__stats_json(struct gw *gw)
{
    if (!gw->conf->redis.n || !gw->stats_json) {
        json_t *nodes = json_array();

        json_array_append_new(nodes, own_blob(gw));
        cache_set(gw, combine(nodes));
    }
    return gw->stats_json;
}

void
gw__stats_free(struct gw *gw)
{
    free(gw->stats_json);
    gw->stats_json = NULL;
}
