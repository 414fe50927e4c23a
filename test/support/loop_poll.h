/*
 * loop_poll.h: a gw_loop (base/loop.h) on plain poll(), for tests and tools that run
 * without libwebsockets. The caller drives it one iteration at a time.
 */
#ifndef GW_TEST_LOOP_POLL_H
#define GW_TEST_LOOP_POLL_H

struct gw_loop;

/* Creates an empty loop. Free it with loop_poll_free() after every watch and timer. */
struct gw_loop *loop_poll_new(void);
/*
 * Runs one iteration: waits up to timeout_ms (less when a timer is due sooner, -1 = no
 * limit besides timers) for readiness, then calls the ready watches and the due timers.
 * Returns the number of callbacks made, or -1 when poll() failed.
 */
int loop_poll_run(struct gw_loop *loop, int timeout_ms);
/* Frees the loop; watches and timers still registered are freed too. NULL is ignored. */
void loop_poll_free(struct gw_loop *loop);

#endif
