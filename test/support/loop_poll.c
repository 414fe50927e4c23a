/*
 * loop_poll.c: the gw_loop contract of base/loop.h on poll().
 *
 * Watches and timers live in two arrays of pointers. Deleting one (even from inside a
 * callback) marks it dead so it is never called again; dead entries are freed at the end
 * of the iteration. A hang-up or error (POLLHUP, POLLERR, POLLNVAL) is reported once with
 * GW_LOOP_ERROR, after which the watch is dead until its owner deletes it. A timer armed
 * during an iteration (even with delay 0) runs in a later iteration.
 */
#include "test/support/loop_poll.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/base.h"
#include "base/loop.h"

struct gw_watch {
    struct poll_loop *loop; /* owner */
    int fd;                 /* watched fd (not owned) */
    unsigned events;        /* GW_LOOP_READ / GW_LOOP_WRITE wanted */
    gw_watch_fn *fn;        /* callback */
    void *ud;               /* for fn */
    bool failed;            /* GW_LOOP_ERROR was reported: reports nothing more */
    bool dead;              /* deleted; freed at the end of the iteration */
};

struct gw_timer {
    struct poll_loop *loop; /* owner */
    gw_timer_fn *fn;        /* callback */
    void *ud;               /* for fn */
    uint64_t due_ms;        /* monotonic due time when armed */
    uint64_t armed_turn;    /* iteration in which it was armed */
    bool armed;             /* waiting to fire */
    bool dead;              /* freed; released at the end of the iteration */
};

struct poll_loop {
    struct gw_loop loop;       /* the public part (ops + impl) */
    struct gw_watch **watches; /* registered watches */
    size_t n_watches;          /* entries in watches */
    struct gw_timer **timers;  /* registered timers */
    size_t n_timers;           /* entries in timers */
    uint64_t turn;             /* iteration counter */
};

static struct gw_watch *
watch_add(void *impl, int fd, unsigned events, gw_watch_fn *fn, void *ud)
{
    struct poll_loop *pl = impl;
    struct gw_watch *w = gw_xcalloc(1, sizeof(*w));

    w->loop = pl;
    w->fd = fd;
    w->events = events & (GW_LOOP_READ | GW_LOOP_WRITE);
    w->fn = fn;
    w->ud = ud;
    pl->watches = gw_xrealloc(pl->watches, (pl->n_watches + 1) * sizeof(*pl->watches));
    pl->watches[pl->n_watches++] = w;
    return w;
}

static void
watch_set(struct gw_watch *w, unsigned events)
{
    w->events = events & (GW_LOOP_READ | GW_LOOP_WRITE);
}

static void
watch_del(struct gw_watch *w)
{
    if (w)
        w->dead = true;
}

static struct gw_timer *
timer_new(void *impl, gw_timer_fn *fn, void *ud)
{
    struct poll_loop *pl = impl;
    struct gw_timer *t = gw_xcalloc(1, sizeof(*t));

    t->loop = pl;
    t->fn = fn;
    t->ud = ud;
    pl->timers = gw_xrealloc(pl->timers, (pl->n_timers + 1) * sizeof(*pl->timers));
    pl->timers[pl->n_timers++] = t;
    return t;
}

static void
timer_set(struct gw_timer *t, uint64_t delay_ms)
{
    t->due_ms = gw_now_ms() + delay_ms;
    t->armed_turn = t->loop->turn;
    t->armed = true;
}

static void
timer_cancel(struct gw_timer *t)
{
    t->armed = false;
}

static void
timer_free(struct gw_timer *t)
{
    if (t) {
        t->armed = false;
        t->dead = true;
    }
}

static const struct gw_loop_ops poll_ops = {
    .watch_add = watch_add,
    .watch_set = watch_set,
    .watch_del = watch_del,
    .timer_new = timer_new,
    .timer_set = timer_set,
    .timer_cancel = timer_cancel,
    .timer_free = timer_free,
};

struct gw_loop *
loop_poll_new(void)
{
    struct poll_loop *pl = gw_xcalloc(1, sizeof(*pl));

    pl->loop.ops = &poll_ops;
    pl->loop.impl = pl;
    return &pl->loop;
}

/* Frees the dead watches and timers. */
static void
reap(struct poll_loop *pl)
{
    size_t w = 0;

    for (size_t i = 0; i < pl->n_watches; i++) {
        if (pl->watches[i]->dead)
            free(pl->watches[i]);
        else
            pl->watches[w++] = pl->watches[i];
    }
    pl->n_watches = w;
    w = 0;
    for (size_t i = 0; i < pl->n_timers; i++) {
        if (pl->timers[i]->dead)
            free(pl->timers[i]);
        else
            pl->timers[w++] = pl->timers[i];
    }
    pl->n_timers = w;
}

/* Milliseconds until the next timer is due (capped by timeout_ms; -1 = none). */
static int
poll_timeout(const struct poll_loop *pl, int timeout_ms, uint64_t now)
{
    int t = timeout_ms;

    for (size_t i = 0; i < pl->n_timers; i++) {
        const struct gw_timer *tm = pl->timers[i];
        uint64_t left;

        if (!tm->armed || tm->dead)
            continue;
        left = tm->due_ms > now ? tm->due_ms - now : 0;
        if (left > INT32_MAX)
            left = INT32_MAX;
        if (t < 0 || (int)left < t)
            t = (int)left;
    }
    return t;
}

static short
poll_events(unsigned events)
{
    return (short)(((events & GW_LOOP_READ) ? POLLIN : 0) |
                   ((events & GW_LOOP_WRITE) ? POLLOUT : 0));
}

/* Calls the watches poll() reported; returns the number of calls. */
static int
dispatch_watches(struct gw_watch **ws, const struct pollfd *pfd, size_t n)
{
    int calls = 0;

    for (size_t i = 0; i < n; i++) {
        struct gw_watch *w = ws[i];
        unsigned ev = 0;

        if (w->dead || w->failed || !pfd[i].revents)
            continue;
        if (pfd[i].revents & POLLIN)
            ev |= GW_LOOP_READ;
        if (pfd[i].revents & POLLOUT)
            ev |= GW_LOOP_WRITE;
        if (pfd[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
            ev |= GW_LOOP_ERROR;
            w->failed = true;
        }
        ev &= w->events | GW_LOOP_ERROR;
        if (!ev)
            continue;
        w->fn(w->ud, w->fd, ev);
        calls++;
    }
    return calls;
}

static int
dispatch_timers(struct poll_loop *pl)
{
    uint64_t now = gw_now_ms();
    int calls = 0;

    /* Index loop: callbacks may append timers (realloc), never remove entries. */
    for (size_t i = 0; i < pl->n_timers; i++) {
        struct gw_timer *t = pl->timers[i];

        if (!t->armed || t->dead || t->due_ms > now || t->armed_turn >= pl->turn)
            continue;
        t->armed = false;
        t->fn(t->ud);
        calls++;
    }
    return calls;
}

int
loop_poll_run(struct gw_loop *loop, int timeout_ms)
{
    struct poll_loop *pl = loop->impl;
    size_t n = pl->n_watches;
    struct pollfd *pfd = gw_xcalloc(n, sizeof(*pfd));
    struct gw_watch **ws = gw_xcalloc(n, sizeof(*ws));
    int rc, calls = 0;

    pl->turn++;
    for (size_t i = 0; i < n; i++) {
        ws[i] = pl->watches[i];
        pfd[i].fd = (ws[i]->dead || ws[i]->failed) ? -1 : ws[i]->fd;
        pfd[i].events = poll_events(ws[i]->events);
    }
    rc = poll(pfd, (nfds_t)n, poll_timeout(pl, timeout_ms, gw_now_ms()));
    if (rc < 0 && errno == EINTR)
        rc = 0;
    if (rc > 0)
        calls += dispatch_watches(ws, pfd, n);
    if (rc >= 0)
        calls += dispatch_timers(pl);
    reap(pl);
    free(pfd);
    free(ws);
    return rc < 0 ? -1 : calls;
}

void
loop_poll_free(struct gw_loop *loop)
{
    struct poll_loop *pl;

    if (!loop)
        return;
    pl = loop->impl;
    for (size_t i = 0; i < pl->n_watches; i++)
        free(pl->watches[i]);
    for (size_t i = 0; i < pl->n_timers; i++)
        free(pl->timers[i]);
    free(pl->watches);
    free(pl->timers);
    free(pl);
}
