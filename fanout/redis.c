/*
 * redis.c: the Redis bus of fanout: hiredis 0.14 async connections on a gw_loop,
 * SUBSCRIBE bookkeeping, PUBLISH of local messages and delivery of remote ones.
 *
 * Each configured instance has two connections (struct rconn): `sub` holds the
 * SUBSCRIBEs, `cmd` sends the PUBLISHes. A topic belongs to instance
 * gw_hash64(topic) % n. A connection goes IDLE -(retry timer)-> CONNECTING
 * (redisAsyncConnect, completion seen by the connect callback) -> HANDSHAKE ([AUTH]
 * [SELECT] PING, pipelined) -> READY. On READY the sub connection re-SUBSCRIBEs every
 * topic of its instance that has local subscribers, in batches. Any failure (connect
 * error, disconnect, handshake error, 5 s connect timeout) drops the context and arms the
 * retry timer: 100 ms doubling to 5 s, back to 100 ms once READY.
 *
 * hiredis rules (ENGINEERING.md section 3): the five ev hooks map onto one gw_watch per
 * context; hiredis frees the context itself after the connect callback with an error and
 * after the disconnect callback, so those two callbacks only forget the pointer and arm
 * the retry. When we give up on a context ourselves (abort_conn) we forget it first and
 * then redisAsyncFree it; every hiredis callback first checks that its context is still
 * the connection's current one, so the callbacks of a forgotten context do nothing. A
 * new context is only ever created from the retry timer, never inside a hiredis call.
 * After GW_LOOP_ERROR the watch is dead: hiredis reads the socket until it notices the
 * hang-up itself; if it does not within a few reads, the context is aborted.
 *
 * Health: every 5 s the cmd connection of a READY instance sends a PING; when the
 * previous one is still unanswered, both connections of the instance are aborted (a hung
 * or stopped server accepts TCP but answers nothing; TCP keepalive catches a dead host).
 *
 * State: an instance is READY when both connections are, RETRYING once either failed
 * (until both are READY again), else CONNECTING. The aggregate is reported through
 * on_state when the state or the detail changes (a retry that fails the same way reports
 * nothing), and each instance change is logged once.
 *
 * Presence (docs/REDIS.md, "Presence"): entries are mirrored with HSET / HDEL on the cmd
 * connection of the topic's instance (skipped while it is not READY). When a cmd
 * connection becomes READY, presence_register purges this node's stale fields (Lua),
 * sets the node key with its TTL, joins `nodes` and writes every local entry again. A
 * timer refreshes the node key and runs the dead node cleanup script, whose removed
 * entries go to on_presence_gone grouped by topic. A list is one EVAL whose reply
 * carries the other live nodes' values; its struct plist stays linked in r->lists until
 * answered or cancelled (a cancelled one is only freed by its reply callback, which
 * hiredis always calls, with NULL when the context goes away).
 */
#include "fanout/fanout_int.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/loop.h"

#define BACKOFF_MIN_MS     100  /* first retry delay */
#define BACKOFF_MAX_MS     5000 /* retry delay cap */
#define CONNECT_TIMEOUT_MS 5000 /* connect + handshake must finish within this */
#define SUBSCRIBE_BATCH    256  /* channels per SUBSCRIBE command when re-subscribing */
#define HANGUP_READS       64   /* reads granted to hiredis to notice a hang-up */
#define HEALTH_MS          5000 /* health PING interval; unanswered at the next tick = hung */
#define DETAIL_MAX         320  /* bytes of a state detail */
#define ERROR_MAX          200  /* bytes of a failure reason */

enum phase {
    PH_IDLE = 0,   /* no context; the retry timer is armed */
    PH_CONNECTING, /* TCP connect in progress */
    PH_HANDSHAKE,  /* AUTH / SELECT / PING sent, replies pending */
    PH_READY,      /* usable */
};

enum hs_cmd { HS_AUTH, HS_SELECT, HS_PING };

struct instance;

struct rconn {
    struct instance *inst;  /* owner */
    bool is_sub;            /* the SUBSCRIBE connection (else the PUBLISH one) */
    redisAsyncContext *ac;  /* current context, NULL when none */
    struct gw_watch *watch; /* watch on ac's fd, NULL when none */
    unsigned want;          /* GW_LOOP_READ / GW_LOOP_WRITE asked for by hiredis */
    struct gw_timer *retry; /* starts the next connection attempt */
    struct gw_timer *limit; /* connect + handshake timeout */
    enum phase phase;       /* see enum phase */
    enum hs_cmd hs[3];      /* handshake commands sent, in order */
    unsigned hs_total;      /* entries in hs */
    unsigned hs_done;       /* handshake replies received */
    uint64_t backoff_ms;    /* delay before the next retry */
    bool failing;           /* failed since it was last READY */
    bool was_ready;         /* has been READY at least once (reconnect counting) */
    bool ping_out;          /* a health PING is unanswered (cmd connection) */
    char error[ERROR_MAX];  /* reason of the last failure */
    size_t inflight;        /* PUBLISH replies outstanding */
    size_t inflight_bytes;  /* bytes of those PUBLISH commands */
};

struct instance {
    struct fanout__redis *r;       /* owner */
    struct fanout__redis_url url;  /* where and how to connect */
    struct rconn sub;              /* SUBSCRIBE connection */
    struct rconn cmd;              /* PUBLISH connection */
    struct gw_timer *tick;         /* health PING every HEALTH_MS */
    enum fanout_redis_state state; /* last computed state (0 = none yet) */
    char detail[DETAIL_MAX];       /* last computed detail */
};

struct fanout__redis {
    struct fanout *fo;                /* owner: topics, delivery, node id */
    struct gw_loop *loop;             /* event loop */
    fanout_state_fn *on_state;        /* aggregated state callback, may be NULL */
    void *ud;                         /* for on_state */
    char *prefix;                     /* key and channel prefix (owned) */
    size_t prefix_len;                /* bytes of prefix */
    const char *node;                 /* the fanout's node id (borrowed) */
    size_t node_len;                  /* bytes of node */
    struct instance *inst;            /* instances in configuration order */
    size_t n;                         /* entries in inst */
    struct gw_timer *start;           /* first connection attempts, on the first loop turn */
    struct gw_buf buf;                /* scratch for RESP commands */
    enum fanout_redis_state state;    /* aggregated state */
    char detail[DETAIL_MAX];          /* aggregated detail */
    bool closing;                     /* fanout__redis_free is running: no callbacks */
    struct fanout_redis_stats stats;  /* counters */
    unsigned timeout_s;               /* node key TTL, seconds */
    fanout_presence_gone_fn *on_gone; /* entries of dead nodes, may be NULL */
    struct gw_timer *pres_tick;       /* node key refresh and dead node check */
    struct plist *lists;              /* pending presence lists */
};

/* A pending presence list (the privdata of its EVAL). */
struct plist {
    struct plist *prev, *next;   /* in r->lists while pending */
    struct fanout__redis *r;     /* owner */
    fanout_presence_list_fn *fn; /* the answer */
    void *ud;                    /* for fn */
    bool cancelled;              /* fn must not run (unlinked) */
    size_t topic_len;            /* bytes of topic */
    unsigned char topic[];       /* the topic listed */
};

static void on_watch(void *ud, int fd, unsigned events);
static void update_state(struct fanout__redis *r);

static struct instance *
pick(struct fanout__redis *r, const void *topic, size_t topic_len)
{
    return &r->inst[r->n == 1 ? 0 : gw_hash64(topic, topic_len) % r->n];
}

/* ---- event hooks: hiredis asks for read/write interest on its socket ---- */

static void
want_set(struct rconn *rc, unsigned want)
{
    if (want == rc->want)
        return;
    rc->want = want;
    if (rc->watch)
        gw_watch_set(rc->inst->r->loop, rc->watch, want);
}

static void
ev_add_read(void *p)
{
    struct rconn *rc = p;

    want_set(rc, rc->want | GW_LOOP_READ);
}

static void
ev_del_read(void *p)
{
    struct rconn *rc = p;

    want_set(rc, rc->want & ~GW_LOOP_READ);
}

static void
ev_add_write(void *p)
{
    struct rconn *rc = p;

    want_set(rc, rc->want | GW_LOOP_WRITE);
}

static void
ev_del_write(void *p)
{
    struct rconn *rc = p;

    want_set(rc, rc->want & ~GW_LOOP_WRITE);
}

static void
watch_drop(struct rconn *rc)
{
    gw_watch_del(rc->inst->r->loop, rc->watch);
    rc->watch = NULL;
    rc->want = 0;
}

/* hiredis is freeing the context: its socket is about to close. */
static void
ev_cleanup(void *p)
{
    watch_drop(p);
}

/* ---- connection life cycle ---- */

/* Forgets the current context (which hiredis frees, or the caller does) and, unless the
 * fanout is closing, records the failure and arms the retry. */
static void
lost(struct rconn *rc, const char *why)
{
    struct fanout__redis *r = rc->inst->r;

    rc->ac = NULL;
    watch_drop(rc);
    gw_timer_cancel(r->loop, rc->limit);
    r->stats.lost += rc->inflight;
    rc->inflight = 0;
    rc->inflight_bytes = 0;
    rc->ping_out = false;
    rc->phase = PH_IDLE;
    if (r->closing)
        return;
    snprintf(rc->error, sizeof(rc->error), "%s", why && why[0] ? why : "disconnected");
    rc->failing = true;
    gw_timer_set(r->loop, rc->retry, rc->backoff_ms);
    rc->backoff_ms = rc->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rc->backoff_ms * 2;
    update_state(r);
}

/* Gives up on the current context: forget it, then free it (deferred by hiredis when
 * called from inside one of its reply callbacks). Never call from the connect callback. */
static void
abort_conn(struct rconn *rc, const char *why)
{
    redisAsyncContext *ac = rc->ac;

    if (!ac)
        return;
    lost(rc, why);
    redisAsyncFree(ac);
}

static void resubscribe(struct rconn *rc);
static void presence_register(struct instance *in);

static void
ready(struct rconn *rc)
{
    struct fanout__redis *r = rc->inst->r;

    rc->phase = PH_READY;
    gw_timer_cancel(r->loop, rc->limit);
    rc->backoff_ms = BACKOFF_MIN_MS;
    if (rc->was_ready)
        r->stats.reconnects++;
    rc->was_ready = true;
    rc->ping_out = false;
    rc->failing = false;
    rc->error[0] = '\0';
    if (rc->is_sub)
        resubscribe(rc);
    else
        presence_register(rc->inst);
    update_state(r);
}

static const char *const hs_names[] = { "AUTH", "SELECT", "PING" };

static void
on_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct rconn *rc = privdata;
    const redisReply *rep = reply;
    char why[ERROR_MAX];

    if (!rep || rc->ac != ac || rc->phase != PH_HANDSHAKE || rc->hs_done >= rc->hs_total)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "%s failed: %.*s", hs_names[rc->hs[rc->hs_done]],
                 (int)(rep->len > 160 ? 160 : rep->len), rep->str ? rep->str : "");
        abort_conn(rc, why);
        return;
    }
    if (++rc->hs_done == rc->hs_total)
        ready(rc);
}

/* Sends [AUTH] [SELECT] PING, pipelined; READY when all succeeded. */
static void
handshake(struct rconn *rc, redisAsyncContext *ac)
{
    const struct fanout__redis_url *u = &rc->inst->url;

    rc->phase = PH_HANDSHAKE;
    rc->hs_total = 0;
    rc->hs_done = 0;
    if (u->password && u->user)
        redisAsyncCommand(ac, on_handshake, rc, "AUTH %s %s", u->user, u->password);
    else if (u->password)
        redisAsyncCommand(ac, on_handshake, rc, "AUTH %s", u->password);
    if (u->password)
        rc->hs[rc->hs_total++] = HS_AUTH;
    if (u->db >= 0) {
        redisAsyncCommand(ac, on_handshake, rc, "SELECT %d", u->db);
        rc->hs[rc->hs_total++] = HS_SELECT;
    }
    redisAsyncCommand(ac, on_handshake, rc, "PING");
    rc->hs[rc->hs_total++] = HS_PING;
}

static void
on_connect(const redisAsyncContext *cac, int status)
{
    struct rconn *rc = cac->data;

    if (rc->ac != cac)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns. */
        lost(rc, cac->c.errstr);
        return;
    }
    handshake(rc, rc->ac);
}

static void
on_disconnect(const redisAsyncContext *cac, int status)
{
    struct rconn *rc = cac->data;

    if (rc->ac != cac)
        return;
    /* hiredis frees the context when this returns. */
    lost(rc, status == REDIS_OK ? "disconnected" : cac->c.errstr);
}

static void
on_limit(void *ud)
{
    struct rconn *rc = ud;

    if (rc->phase == PH_CONNECTING || rc->phase == PH_HANDSHAKE)
        abort_conn(rc, rc->phase == PH_CONNECTING ? "connect timeout" : "handshake timeout");
}

/* Hooks the new context onto the loop; returns 0 or GW_EIO. */
static int
attach(struct rconn *rc, redisAsyncContext *ac)
{
    struct fanout__redis *r = rc->inst->r;

    rc->watch = gw_watch_add(r->loop, ac->c.fd, 0, on_watch, rc);
    if (!rc->watch)
        return GW_EIO;
    rc->want = 0;
    rc->ac = ac;
    rc->phase = PH_CONNECTING;
    ac->data = rc;
    ac->ev.data = rc;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* After the hooks: it asks for write interest to see the connect complete. */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisEnableKeepAlive(&ac->c);
    gw_timer_set(r->loop, rc->limit, CONNECT_TIMEOUT_MS);
    return 0;
}

/* One connection attempt (from the retry timer only). */
static void
on_retry(void *ud)
{
    struct rconn *rc = ud;
    const struct fanout__redis_url *u = &rc->inst->url;
    redisAsyncContext *ac;
    char why[ERROR_MAX];

    if (rc->ac)
        return;
    ac = redisAsyncConnect(u->host, u->port);
    if (!ac) {
        lost(rc, "out of memory");
        return;
    }
    if (ac->err) {
        /* Immediate failure (often a refused connect on loopback). */
        snprintf(why, sizeof(why), "%s", ac->c.errstr);
        redisAsyncFree(ac);
        lost(rc, why);
        return;
    }
    if (attach(rc, ac) < 0) {
        redisAsyncFree(ac);
        lost(rc, "cannot watch the socket");
    }
}

/* After GW_LOOP_ERROR the watch reports nothing more: let hiredis read until it sees the
 * error or EOF and drops the context; abort it if it does not. */
static void
on_hangup(struct rconn *rc, redisAsyncContext *ac)
{
    if (!(ac->c.flags & REDIS_CONNECTED))
        redisAsyncHandleWrite(ac); /* completes (or fails) the connect */
    for (int i = 0; i < HANGUP_READS && rc->ac == ac; i++)
        redisAsyncHandleRead(ac);
    if (rc->ac == ac)
        abort_conn(rc, "connection hang-up");
}

static void
on_watch(void *ud, int fd, unsigned events)
{
    struct rconn *rc = ud;
    redisAsyncContext *ac = rc->ac;

    (void)fd;
    if (!ac)
        return;
    if (events & GW_LOOP_ERROR) {
        on_hangup(rc, ac);
        return;
    }
    /* hiredis may free the context inside either call: re-check before the next. */
    if (events & GW_LOOP_READ)
        redisAsyncHandleRead(ac);
    if ((events & GW_LOOP_WRITE) && rc->ac == ac)
        redisAsyncHandleWrite(ac);
}

static void
on_pong(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct rconn *rc = privdata;

    if (reply && rc->ac == ac)
        rc->ping_out = false;
}

/* Health check of an instance (see the file comment). */
static void
on_tick(void *ud)
{
    struct instance *in = ud;
    struct rconn *rc = &in->cmd;

    gw_timer_set(in->r->loop, in->tick, HEALTH_MS);
    if (rc->phase != PH_READY)
        return;
    if (rc->ping_out) {
        abort_conn(&in->sub, "no reply to PING within 5 s");
        abort_conn(rc, "no reply to PING within 5 s");
        return;
    }
    if (redisAsyncCommand(rc->ac, on_pong, rc, "PING") == REDIS_OK)
        rc->ping_out = true;
}

/* ---- state ---- */

static void
instance_state(const struct instance *in, enum fanout_redis_state *st, char *detail)
{
    const struct rconn *bad = in->sub.failing ? &in->sub : in->cmd.failing ? &in->cmd : NULL;

    if (bad) {
        *st = FANOUT_REDIS_RETRYING;
        snprintf(detail, DETAIL_MAX, "redis %.100s: %s", in->url.label, bad->error);
    } else if (in->sub.phase == PH_READY && in->cmd.phase == PH_READY) {
        *st = FANOUT_REDIS_READY;
        snprintf(detail, DETAIL_MAX, "redis %.100s ready", in->url.label);
    } else {
        *st = FANOUT_REDIS_CONNECTING;
        snprintf(detail, DETAIL_MAX, "redis %.100s: connecting", in->url.label);
    }
}

/* Recomputes an instance's state; logs a change. */
static void
instance_update(struct instance *in)
{
    enum fanout_redis_state st;
    char detail[DETAIL_MAX];

    instance_state(in, &st, detail);
    if (st == in->state && strcmp(detail, in->detail) == 0)
        return;
    in->state = st;
    memcpy(in->detail, detail, sizeof(detail));
    if (st == FANOUT_REDIS_RETRYING)
        gw_log(GW_LOG_WARN, "redis_retrying", "instance=%s reason=\"%s\"", in->url.label,
               in->sub.failing ? in->sub.error : in->cmd.error);
    else if (st == FANOUT_REDIS_READY)
        gw_log(GW_LOG_INFO, "redis_ready", "instance=%s", in->url.label);
}

/* Recomputes every instance and the aggregate; reports an aggregate change. */
static void
update_state(struct fanout__redis *r)
{
    const struct instance *worst = NULL;
    char detail[DETAIL_MAX];

    for (size_t i = 0; i < r->n; i++) {
        instance_update(&r->inst[i]);
        /* RETRYING (3) outranks CONNECTING (1), which outranks READY (2). */
        if (r->inst[i].state != FANOUT_REDIS_READY && (!worst || r->inst[i].state > worst->state))
            worst = &r->inst[i];
    }
    if (worst)
        memcpy(detail, worst->detail, sizeof(detail));
    else if (r->n == 1)
        memcpy(detail, r->inst[0].detail, sizeof(detail));
    else
        snprintf(detail, sizeof(detail), "all %zu redis instances ready", r->n);
    if (r->state == (worst ? worst->state : FANOUT_REDIS_READY) && strcmp(detail, r->detail) == 0)
        return;
    r->state = worst ? worst->state : FANOUT_REDIS_READY;
    memcpy(r->detail, detail, sizeof(detail));
    if (r->on_state && !r->closing)
        r->on_state(r->ud, r->state, r->detail);
}

/* ---- subscriptions and bus messages ---- */

/* A message from a bus channel: deliver it locally unless we published it. */
static void
bus_message(struct fanout__redis *r, const char *ch, size_t ch_len, const char *p, size_t n)
{
    size_t skip = r->prefix_len + sizeof(FANOUT_BUS_INFIX) - 1;
    struct fanout__envelope env;
    struct fanout_msg *m;

    if (ch_len < skip || memcmp(ch, r->prefix, r->prefix_len) != 0 ||
        memcmp(ch + r->prefix_len, FANOUT_BUS_INFIX, skip - r->prefix_len) != 0 ||
        fanout__envelope_decode(p, n, &env) < 0) {
        r->stats.malformed++;
        return;
    }
    if (env.node_len == r->node_len && memcmp(env.node, r->node, env.node_len) == 0) {
        r->stats.own++;
        return;
    }
    r->stats.received++;
    /* An UNSUBSCRIBE may still be in flight: no message to build for nobody. */
    if (fanout_subscriber_count(r->fo, ch + skip, ch_len - skip) == 0)
        return;
    m = fanout_msg_new(r->fo, env.body, env.body_len, env.tag);
    fanout__deliver_local(r->fo, ch + skip, ch_len - skip, m, NULL);
    fanout_msg_unref(m);
}

static bool
is_str(const redisReply *e, const char *s)
{
    size_t n = strlen(s);

    return e->type == REDIS_REPLY_STRING && e->len == n && memcmp(e->str, s, n) == 0;
}

/* The callback of every subscribed channel: "subscribe", "unsubscribe" and "message". */
static void
on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct rconn *rc = privdata;
    const redisReply *rep = reply;

    /* NULL: the context is going away. */
    if (!rep || rc->ac != ac || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
        return;
    if (!is_str(rep->element[0], "message") || rep->element[1]->type != REDIS_REPLY_STRING ||
        rep->element[2]->type != REDIS_REPLY_STRING)
        return;
    bus_message(rc->inst->r, rep->element[1]->str, rep->element[1]->len, rep->element[2]->str,
                rep->element[2]->len);
}

/* Sends (UN)SUBSCRIBE for `n` topics on a READY sub connection. */
static void
send_channels(struct rconn *rc, const char *cmd, const struct fanout__topic *const *topics,
              size_t n)
{
    struct fanout__redis *r = rc->inst->r;

    gw_buf_reset(&r->buf);
    fanout__resp_begin(&r->buf, cmd, n);
    for (size_t i = 0; i < n; i++)
        fanout__resp_channel(&r->buf, r->prefix, r->prefix_len, topics[i]->key, topics[i]->key_len);
    /* UNSUBSCRIBE registers no callback; SUBSCRIBE registers on_message per channel. */
    redisAsyncFormattedCommand(rc->ac, on_message, rc, r->buf.data, r->buf.len);
}

/* Re-subscribes every topic of this instance that has local subscribers. */
static void
resubscribe(struct rconn *rc)
{
    struct fanout__redis *r = rc->inst->r;
    const struct fanout__table *t = &r->fo->topics;
    const struct fanout__topic *batch[SUBSCRIBE_BATCH];
    size_t n = 0;

    for (size_t i = 0; t->slots && i <= t->mask; i++) {
        const struct fanout__topic *tp = (const struct fanout__topic *)t->slots[i];

        if (!tp || tp->live == 0 || pick(r, tp->key, tp->key_len) != rc->inst)
            continue;
        batch[n++] = tp;
        if (n == SUBSCRIBE_BATCH) {
            send_channels(rc, "SUBSCRIBE", batch, n);
            n = 0;
        }
    }
    if (n > 0)
        send_channels(rc, "SUBSCRIBE", batch, n);
}

static void
topic_cmd(struct fanout__redis *r, const char *cmd, const void *topic, size_t topic_len)
{
    struct instance *in = pick(r, topic, topic_len);
    const struct fanout__topic *tp;

    /* Not READY: the re-subscribe on READY reads the topic index, nothing to do now. */
    if (in->sub.phase != PH_READY)
        return;
    tp = fanout__topic_get(r->fo, topic, topic_len, false);
    if (tp)
        send_channels(&in->sub, cmd, &tp, 1);
}

void
fanout__redis_topic_on(struct fanout__redis *r, const void *topic, size_t topic_len)
{
    if (r)
        topic_cmd(r, "SUBSCRIBE", topic, topic_len);
}

void
fanout__redis_topic_off(struct fanout__redis *r, const void *topic, size_t topic_len)
{
    if (r)
        topic_cmd(r, "UNSUBSCRIBE", topic, topic_len);
}

/* ---- publishing ---- */

static void
on_published(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct rconn *rc = ac->data;
    const redisReply *rep = reply;
    size_t bytes = (size_t)(uintptr_t)privdata;

    if (rc->ac != ac)
        return;
    rc->inflight--;
    rc->inflight_bytes -= bytes;
    if (!rep)
        rc->inst->r->stats.lost++;
    else if (rep->type == REDIS_REPLY_ERROR)
        rc->inst->r->stats.errors++;
}

void
fanout__redis_publish(struct fanout__redis *r, const void *topic, size_t topic_len,
                      const struct fanout_msg *m)
{
    struct rconn *rc;
    const void *body;
    size_t len;

    if (!r)
        return;
    rc = &pick(r, topic, topic_len)->cmd;
    if (rc->phase != PH_READY || rc->inflight_bytes > FANOUT_REDIS_MAX_INFLIGHT_BYTES) {
        r->stats.dropped++;
        return;
    }
    body = fanout_msg_body(m, &len);
    gw_buf_reset(&r->buf);
    fanout__resp_begin(&r->buf, "PUBLISH", 2);
    fanout__resp_channel(&r->buf, r->prefix, r->prefix_len, topic, topic_len);
    fanout__resp_envelope(&r->buf, r->node, r->node_len, fanout_msg_tag(m), body, len);
    if (redisAsyncFormattedCommand(rc->ac, on_published, (void *)(uintptr_t)r->buf.len, r->buf.data,
                                   r->buf.len) != REDIS_OK) {
        r->stats.dropped++;
        return;
    }
    rc->inflight++;
    rc->inflight_bytes += r->buf.len;
    r->stats.published++;
}

/* ---- presence ---- */

/* Removes the fields of node ARGV[2] from the presence hashes of the topics in its
 * node_topics set; returns the removed (topic, value) pairs flat. Shared by the purge of
 * our own stale fields on reconnect and by the dead node cleanup. */
#define LUA_PURGE                                                                   \
    "local function purge(p, n, out) "                                              \
    "local nt = p .. 'node_topics:' .. n "                                          \
    "for _, t in ipairs(redis.call('SMEMBERS', nt)) do "                            \
    "local h = p .. 'presence:' .. t "                                              \
    "local kv = redis.call('HGETALL', h) "                                          \
    "for i = 1, #kv, 2 do "                                                         \
    "if string.match(kv[i], '^(.*):[0-9]+$') == n then "                            \
    "redis.call('HDEL', h, kv[i]) out[#out + 1] = t out[#out + 1] = kv[i + 1] end " \
    "end end "                                                                      \
    "redis.call('DEL', nt) "                                                        \
    "end "

/* ARGV: prefix, node. Drops our own fields (stale after a connection loss). */
static const char lua_self[] = LUA_PURGE "local out = {} purge(ARGV[1], ARGV[2], out) return 0";

/* ARGV: prefix, node. Every member of `nodes` without a node key whose cleanup lock we
 * win is purged and forgotten; returns the removed (topic, value) pairs. */
static const char lua_cleanup[] =
    LUA_PURGE "local p, me, out = ARGV[1], ARGV[2], {} "
              "for _, n in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do "
              "if n ~= me and redis.call('EXISTS', p .. 'node:' .. n) == 0 and "
              "redis.call('SET', p .. 'cleanup:' .. n, me, 'NX', 'PX', 10000) then "
              "purge(p, n, out) redis.call('SREM', p .. 'nodes', n) "
              "redis.call('DEL', p .. 'node:' .. n) end end "
              "return out";

/* ARGV: prefix, node, topic. The values of the topic's fields of other live nodes. */
static const char lua_list[] =
    "local p, me, live, out = ARGV[1], ARGV[2], {}, {} "
    "local kv = redis.call('HGETALL', p .. 'presence:' .. ARGV[3]) "
    "for i = 1, #kv, 2 do "
    "local n = string.match(kv[i], '^(.*):[0-9]+$') "
    "if n and n ~= me then "
    "if live[n] == nil then live[n] = redis.call('EXISTS', p .. 'node:' .. n) == 1 end "
    "if live[n] then out[#out + 1] = kv[i + 1] end "
    "end end "
    "return out";

/* The cmd context of an instance when it is READY, else NULL. */
static redisAsyncContext *
cmd_ctx(const struct instance *in)
{
    return in->cmd.phase == PH_READY ? in->cmd.ac : NULL;
}

/* Sets b to prefix + infix + bytes. */
static void
key_of(struct gw_buf *b, const struct fanout__redis *r, const char *infix, const void *bytes,
       size_t len)
{
    gw_buf_reset(b);
    gw_buf_append(b, r->prefix, r->prefix_len);
    gw_buf_append_str(b, infix);
    gw_buf_append(b, bytes, len);
}

/* Field "<node>:<owner id>" into out (room for FANOUT_NODE_ID_MAX + 22 bytes). */
static size_t
field_of(char *out, size_t cap, const struct fanout__redis *r, uint64_t oid)
{
    int n = snprintf(out, cap, "%s:%llu", r->node, (unsigned long long)oid);

    return n < 0 ? 0 : (size_t)n;
}

/* HSET of one entry (and SADD of its topic to node_topics when `add_topic`). */
static void
write_entry(struct fanout__redis *r, redisAsyncContext *ac, const void *topic, size_t topic_len,
            const struct fanout__pentry *e, bool add_topic)
{
    struct gw_buf key, val;
    char field[FANOUT_NODE_ID_MAX + 32];
    size_t flen = field_of(field, sizeof(field), r, e->oid);

    gw_buf_init(&key);
    gw_buf_init(&val);
    key_of(&key, r, "presence:", topic, topic_len);
    fanout__pvalue_encode(&val, &e->p);
    redisAsyncCommand(ac, NULL, NULL, "HSET %b %b %b", key.data, key.len, field, flen, val.data,
                      val.len);
    if (add_topic) {
        key_of(&key, r, "node_topics:", r->node, r->node_len);
        redisAsyncCommand(ac, NULL, NULL, "SADD %b %b", key.data, key.len, topic, topic_len);
    }
    gw_buf_release(&key);
    gw_buf_release(&val);
}

void
fanout__redis_presence_set(struct fanout__redis *r, const void *topic, size_t topic_len,
                           const struct fanout__pentry *e, bool alone)
{
    redisAsyncContext *ac;

    (void)alone;
    if (!r || !(ac = cmd_ctx(pick(r, topic, topic_len))))
        return; /* written by presence_register once ready */
    write_entry(r, ac, topic, topic_len, e, true);
}

void
fanout__redis_presence_del(struct fanout__redis *r, const void *topic, size_t topic_len,
                           const struct fanout__pentry *e, bool alone)
{
    redisAsyncContext *ac;
    struct gw_buf key;
    char field[FANOUT_NODE_ID_MAX + 32];
    size_t flen;

    if (!r || !(ac = cmd_ctx(pick(r, topic, topic_len))))
        return; /* a stale field is purged by presence_register once ready */
    flen = field_of(field, sizeof(field), r, e->oid);
    gw_buf_init(&key);
    key_of(&key, r, "presence:", topic, topic_len);
    redisAsyncCommand(ac, NULL, NULL, "HDEL %b %b", key.data, key.len, field, flen);
    if (alone) {
        key_of(&key, r, "node_topics:", r->node, r->node_len);
        redisAsyncCommand(ac, NULL, NULL, "SREM %b %b", key.data, key.len, topic, topic_len);
    }
    gw_buf_release(&key);
}

/* SET node key with TTL and SADD to nodes. */
static void
node_refresh(struct fanout__redis *r, redisAsyncContext *ac)
{
    struct gw_buf key;

    gw_buf_init(&key);
    key_of(&key, r, "node:", r->node, r->node_len);
    redisAsyncCommand(ac, NULL, NULL, "SET %b %b EX %u", key.data, key.len, r->node, r->node_len,
                      r->timeout_s);
    key_of(&key, r, "nodes", NULL, 0);
    redisAsyncCommand(ac, NULL, NULL, "SADD %b %b", key.data, key.len, r->node, r->node_len);
    gw_buf_release(&key);
}

/* The cmd connection of `in` became READY: drop our stale fields, register this node and
 * write every local entry of the instance's topics again (a restarted Redis lost them). */
static void
presence_register(struct instance *in)
{
    struct fanout__redis *r = in->r;
    redisAsyncContext *ac = in->cmd.ac;
    const struct fanout__table *t = &r->fo->topics;

    redisAsyncCommand(ac, NULL, NULL, "EVAL %s 0 %b %b", lua_self, r->prefix, r->prefix_len,
                      r->node, r->node_len);
    node_refresh(r, ac);
    for (size_t i = 0; t->slots && i <= t->mask; i++) {
        const struct fanout__topic *tp = (const struct fanout__topic *)t->slots[i];
        const struct fanout__table *pt = tp ? &tp->presence : NULL;
        bool first = true;

        if (!pt || pt->count == 0 || pick(r, tp->key, tp->key_len) != in)
            continue;
        for (size_t k = 0; pt->slots && k <= pt->mask; k++) {
            if (!pt->slots[k])
                continue;
            write_entry(r, ac, tp->key, tp->key_len, (const struct fanout__pentry *)pt->slots[k],
                        first);
            first = false;
        }
    }
}

static void
plist_unlink(struct plist *pl)
{
    struct fanout__redis *r = pl->r;

    if (pl->prev)
        pl->prev->next = pl->next;
    else if (r->lists == pl)
        r->lists = pl->next;
    if (pl->next)
        pl->next->prev = pl->prev;
    pl->prev = pl->next = NULL;
}

/* Decodes the values of an EVAL array reply into entries (malformed ones skipped);
 * returns the count. `out` has room for rep->elements entries. */
static size_t
decode_values(const redisReply *rep, size_t from, size_t step, struct fanout_presence *out)
{
    size_t n = 0;

    for (size_t i = from; i < rep->elements; i += step) {
        const redisReply *e = rep->element[i];

        if (e->type == REDIS_REPLY_STRING && fanout__pvalue_decode(e->str, e->len, &out[n]) == 0)
            n++;
    }
    return n;
}

/* The answer of a list's EVAL (NULL: the connection is gone). */
static void
on_list(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct plist *pl = privdata;
    struct fanout__redis *r = pl->r;
    const redisReply *rep = reply;
    struct fanout_presence *arr = NULL;
    size_t n = 0;

    (void)ac;
    if (!pl->cancelled)
        plist_unlink(pl);
    if (pl->cancelled || r->closing) {
        free(pl);
        return;
    }
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0) {
        arr = gw_xmalloc(rep->elements * sizeof(*arr));
        n = decode_values(rep, 0, 1, arr);
    }
    fanout__presence_answer(r->fo, pl->topic, pl->topic_len, arr, n, pl->fn, pl->ud);
    free(arr);
    free(pl);
}

bool
fanout__redis_presence_list(struct fanout__redis *r, const void *topic, size_t topic_len,
                            fanout_presence_list_fn *fn, void *ud)
{
    redisAsyncContext *ac;
    struct plist *pl;

    if (!r || !(ac = cmd_ctx(pick(r, topic, topic_len))))
        return false;
    pl = gw_xcalloc(1, sizeof(*pl) + topic_len);
    pl->r = r;
    pl->fn = fn;
    pl->ud = ud;
    pl->topic_len = topic_len;
    if (topic_len > 0)
        memcpy(pl->topic, topic, topic_len);
    if (redisAsyncCommand(ac, on_list, pl, "EVAL %s 0 %b %b %b", lua_list, r->prefix, r->prefix_len,
                          r->node, r->node_len, pl->topic, topic_len) != REDIS_OK) {
        free(pl);
        return false;
    }
    pl->next = r->lists;
    if (r->lists)
        r->lists->prev = pl;
    r->lists = pl;
    return true;
}

void
fanout__redis_presence_cancel(struct fanout__redis *r, const void *ud)
{
    struct plist *pl, *next;

    if (!r)
        return;
    for (pl = r->lists; pl; pl = next) {
        next = pl->next;
        if (pl->ud != ud)
            continue;
        plist_unlink(pl);
        pl->cancelled = true; /* freed by on_list */
    }
}

/* Reports the (topic, value) pairs of a cleanup, one call per run of equal topics. */
static void
report_gone(struct fanout__redis *r, const redisReply *rep)
{
    struct fanout_presence *arr = gw_xmalloc((rep->elements / 2 + 1) * sizeof(*arr));

    for (size_t i = 0; i + 1 < rep->elements;) {
        const redisReply *t = rep->element[i];
        size_t j = i, n = 0;

        while (j + 1 < rep->elements && rep->element[j]->type == REDIS_REPLY_STRING &&
               t->type == REDIS_REPLY_STRING && rep->element[j]->len == t->len &&
               memcmp(rep->element[j]->str, t->str, t->len) == 0) {
            const redisReply *v = rep->element[j + 1];

            if (v->type == REDIS_REPLY_STRING &&
                fanout__pvalue_decode(v->str, v->len, &arr[n]) == 0)
                n++;
            j += 2;
        }
        if (j == i)
            j += 2; /* not a string topic: skip the pair */
        if (n > 0 && t->type == REDIS_REPLY_STRING)
            r->on_gone(r->ud, t->str, t->len, arr, n);
        i = j;
    }
    free(arr);
}

static void
on_cleanup(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct fanout__redis *r = privdata;
    const redisReply *rep = reply;

    (void)ac;
    if (!rep || r->closing || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2)
        return;
    gw_log(GW_LOG_INFO, "presence_cleanup", "entries=%zu", rep->elements / 2);
    if (r->on_gone)
        report_gone(r, rep);
}

/* Refreshes the node key and looks for dead nodes on every ready instance. */
static void
on_pres_tick(void *ud)
{
    struct fanout__redis *r = ud;
    uint64_t ms = (uint64_t)r->timeout_s * 1000u / 3u;

    gw_timer_set(r->loop, r->pres_tick, ms > 5000 ? 5000 : ms);
    for (size_t i = 0; i < r->n; i++) {
        redisAsyncContext *ac = cmd_ctx(&r->inst[i]);

        if (!ac)
            continue;
        node_refresh(r, ac);
        redisAsyncCommand(ac, on_cleanup, r, "EVAL %s 0 %b %b", lua_cleanup, r->prefix,
                          r->prefix_len, r->node, r->node_len);
    }
}

/* ---- life of the whole ---- */

static void
on_start(void *ud)
{
    struct fanout__redis *r = ud;

    update_state(r); /* announces CONNECTING */
    gw_timer_set(r->loop, r->pres_tick, 0);
    for (size_t i = 0; i < r->n; i++) {
        gw_timer_set(r->loop, r->inst[i].tick, HEALTH_MS);
        on_retry(&r->inst[i].sub);
        on_retry(&r->inst[i].cmd);
    }
}

static void
rconn_init(struct rconn *rc, struct instance *in, bool is_sub)
{
    struct gw_loop *loop = in->r->loop;

    rc->inst = in;
    rc->is_sub = is_sub;
    rc->backoff_ms = BACKOFF_MIN_MS;
    rc->retry = gw_timer_new(loop, on_retry, rc);
    rc->limit = gw_timer_new(loop, on_limit, rc);
}

struct fanout__redis *
fanout__redis_new(struct fanout *fo, const struct fanout_config *cfg)
{
    struct fanout__redis *r = gw_xcalloc(1, sizeof(*r));
    const char *prefix = cfg->prefix ? cfg->prefix : FANOUT_DEFAULT_PREFIX;

    r->fo = fo;
    r->loop = cfg->loop;
    r->on_state = cfg->on_state;
    r->ud = cfg->ud;
    r->prefix = gw_xstrdup(prefix);
    r->prefix_len = strlen(prefix);
    r->node = fo->node_id;
    r->node_len = strlen(fo->node_id);
    r->timeout_s = cfg->presence_timeout_s ? cfg->presence_timeout_s : 30;
    r->on_gone = cfg->on_presence_gone;
    gw_buf_init(&r->buf);
    r->inst = gw_xcalloc(cfg->n_redis, sizeof(*r->inst));
    for (size_t i = 0; i < cfg->n_redis; i++) {
        struct instance *in = &r->inst[i];

        in->r = r;
        if (fanout__redis_url_parse(cfg->redis[i], &in->url) < 0) {
            fanout__redis_free(r);
            return NULL;
        }
        r->n = i + 1;
        rconn_init(&in->sub, in, true);
        rconn_init(&in->cmd, in, false);
        in->tick = gw_timer_new(r->loop, on_tick, in);
    }
    r->pres_tick = gw_timer_new(r->loop, on_pres_tick, r);
    r->start = gw_timer_new(r->loop, on_start, r);
    gw_timer_set(r->loop, r->start, 0);
    return r;
}

static void
rconn_close(struct rconn *rc)
{
    struct gw_loop *loop = rc->inst->r->loop;
    redisAsyncContext *ac = rc->ac;
    int done;

    if (ac) {
        /* Best effort, without blocking: send what is queued (PUBLISHes) before closing. */
        if (ac->c.flags & REDIS_CONNECTED)
            (void)redisBufferWrite(&ac->c, &done);
        lost(rc, NULL);
        redisAsyncFree(ac);
    }
    gw_timer_free(loop, rc->retry);
    gw_timer_free(loop, rc->limit);
}

void
fanout__redis_free(struct fanout__redis *r)
{
    if (!r)
        return;
    r->closing = true;
    for (size_t i = 0; i < r->n; i++) {
        rconn_close(&r->inst[i].sub);
        rconn_close(&r->inst[i].cmd);
        gw_timer_free(r->loop, r->inst[i].tick);
    }
    /* A URL that failed to parse was already released; the rest are released here. */
    for (size_t i = 0; i < r->n; i++)
        fanout__redis_url_release(&r->inst[i].url);
    gw_timer_free(r->loop, r->start);
    gw_timer_free(r->loop, r->pres_tick);
    gw_buf_release(&r->buf);
    free(r->inst);
    free(r->prefix);
    free(r);
}

const char *
fanout__redis_status(const struct fanout__redis *r, bool *ready)
{
    if (ready)
        *ready = !r || r->state == FANOUT_REDIS_READY;
    if (!r)
        return "not configured";
    return r->detail[0] ? r->detail : "redis: connecting";
}

void
fanout__redis_stats(const struct fanout__redis *r, struct fanout_redis_stats *out)
{
    if (!out)
        return;
    if (r)
        *out = r->stats;
    else
        memset(out, 0, sizeof(*out));
}

struct redisAsyncContext *
fanout__redis_cmd(struct fanout__redis *r, const void *key, size_t key_len)
{
    return r && !r->closing ? cmd_ctx(pick(r, key, key_len)) : NULL;
}

const char *
fanout__redis_prefix(const struct fanout__redis *r, size_t *len)
{
    *len = r->prefix_len;
    return r->prefix;
}

redisAsyncContext *
fanout__redis_cmd_first(struct fanout__redis *r)
{
    return r && !r->closing && r->n > 0 ? cmd_ctx(&r->inst[0]) : NULL;
}
