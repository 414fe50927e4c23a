/*
 * loop.h: the event-loop services that lower modules (listen/, later fanout/'s Redis side)
 * need, without knowing the loop: readiness watches on file descriptors and one-shot
 * timers. The gateway implements it on libwebsockets (gateway/loop_lws.c); tests use a
 * plain poll() implementation (test/support/loop_poll.c).
 *
 * Contract for implementations and users:
 * - Single-threaded: every call and callback happens on the loop thread.
 * - A watch reports readiness of `fd` for the requested events. The implementation never
 *   closes the caller's fd (the lws one adopts a dup). GW_LOOP_ERROR reports a hang-up or
 *   error; after it the watch is dead and reports nothing more: the owner lets its library
 *   read the error (e.g. PQconsumeInput) and then calls gw_watch_del().
 * - Callbacks may call any loop function, including deleting their own watch or timer.
 * - gw_watch_del() and gw_timer_free() never call the callback afterwards.
 */
#ifndef GW_LOOP_H
#define GW_LOOP_H

#include <stdint.h>

#define GW_LOOP_READ  1u /* fd readable (or wanted readable) */
#define GW_LOOP_WRITE 2u /* fd writable (or wanted writable) */
#define GW_LOOP_ERROR 4u /* hang-up or error (reported only) */

struct gw_watch;
struct gw_timer;

/* Readiness callback: `events` is a mask of GW_LOOP_READ, GW_LOOP_WRITE, GW_LOOP_ERROR. */
typedef void gw_watch_fn(void *ud, int fd, unsigned events);
typedef void gw_timer_fn(void *ud);

struct gw_loop_ops {
    /* Starts watching fd for `events`; returns NULL on failure. */
    struct gw_watch *(*watch_add)(void *impl, int fd, unsigned events, gw_watch_fn *fn, void *ud);
    /* Changes the wanted events (READ and/or WRITE, 0 pauses). */
    void (*watch_set)(struct gw_watch *w, unsigned events);
    /* Stops watching and frees the watch. NULL is ignored. */
    void (*watch_del)(struct gw_watch *w);
    /* Creates a disarmed one-shot timer. */
    struct gw_timer *(*timer_new)(void *impl, gw_timer_fn *fn, void *ud);
    /* Arms (or re-arms) the timer to fire once after delay_ms (0 = next loop turn). */
    void (*timer_set)(struct gw_timer *t, uint64_t delay_ms);
    /* Disarms the timer. */
    void (*timer_cancel)(struct gw_timer *t);
    /* Disarms and frees the timer. NULL is ignored. */
    void (*timer_free)(struct gw_timer *t);
};

/* A loop: the operations plus the implementation's state. Owned by whoever made it. */
struct gw_loop {
    const struct gw_loop_ops *ops; /* implementation */
    void *impl;                    /* passed to watch_add / timer_new */
};

static inline struct gw_watch *
gw_watch_add(struct gw_loop *l, int fd, unsigned events, gw_watch_fn *fn, void *ud)
{
    return l->ops->watch_add(l->impl, fd, events, fn, ud);
}

static inline void
gw_watch_set(struct gw_loop *l, struct gw_watch *w, unsigned events)
{
    l->ops->watch_set(w, events);
}

static inline void
gw_watch_del(struct gw_loop *l, struct gw_watch *w)
{
    l->ops->watch_del(w);
}

static inline struct gw_timer *
gw_timer_new(struct gw_loop *l, gw_timer_fn *fn, void *ud)
{
    return l->ops->timer_new(l->impl, fn, ud);
}

static inline void
gw_timer_set(struct gw_loop *l, struct gw_timer *t, uint64_t delay_ms)
{
    l->ops->timer_set(t, delay_ms);
}

static inline void
gw_timer_cancel(struct gw_loop *l, struct gw_timer *t)
{
    l->ops->timer_cancel(t);
}

static inline void
gw_timer_free(struct gw_loop *l, struct gw_timer *t)
{
    l->ops->timer_free(t);
}

#endif
