/*
 * redist.h: throwaway redis-server processes for the fanout integration tests, and
 * blocking queries against them (hiredis sync API).
 *
 * A server runs in the foreground of a forked child (`redis-server --port P --bind
 * 127.0.0.1 --save '' --appendonly no --daemonize no --dir D`), on a free loopback port,
 * in a mkdtemp() directory. It is stopped by pid: redist_stop(), an atexit() handler for
 * every server still running, and PR_SET_PDEATHSIG (SIGKILL) should the test die.
 */
#ifndef GW_TEST_REDIST_H
#define GW_TEST_REDIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/base.h"
#include "test/support/loop_poll.h"

/* One server. */
struct redist {
    pid_t pid;         /* redis-server process, 0 = not running */
    int port;          /* TCP port on 127.0.0.1 */
    char dir[64];      /* throwaway working directory, "" = none */
    char password[64]; /* --requirepass value, "" = none */
    char url[160];     /* "redis://[:password@]127.0.0.1:port" */
};

/* Returns a loopback TCP port that was free a moment ago, or -1. */
int redist_free_port(void);
/* Starts a server on `port` (0 = a free one) with an optional password and waits until it
 * answers PING (at most 5 s). Returns 0 or -1 (message on stderr). */
int redist_start(struct redist *s, int port, const char *password);
/* Kills the server with SIGKILL and reaps it; keeps port and directory for a restart. */
void redist_kill(struct redist *s);
/* Freezes (SIGSTOP) or thaws (SIGCONT) the server: it keeps accepting TCP, answers nothing. */
void redist_pause(struct redist *s, bool paused);
/* Starts the server again on the same port. Returns 0 or -1. */
int redist_restart(struct redist *s);
/* Stops the server (SIGTERM, then SIGKILL after 2 s) and removes its directory. */
void redist_stop(struct redist *s);

/*
 * Blocking queries on a fresh connection (AUTH when the server has a password).
 * redist_numsub: subscribers of `channel` (PUBSUB NUMSUB), -1 on error.
 * redist_channels: the channels matching `pattern` (PUBSUB CHANNELS), sorted and joined
 * by ',' into out (cap bytes); returns the count or -1.
 * redist_publish: PUBLISH of raw bytes; returns the receivers or -1.
 */
long redist_numsub(const struct redist *s, const char *channel);
long redist_channels(const struct redist *s, const char *pattern, char *out, size_t cap);
long redist_publish(const struct redist *s, const char *channel, const void *p, size_t n);

/* Runs the loop until `cond` holds or ms pass; ok receives the last value of cond. */
#define REDIST_RUN_UNTIL(loop, cond, ms, ok)                \
    do {                                                    \
        uint64_t deadline_ = gw_now_ms() + (uint64_t)(ms);  \
        while (!((ok) = (cond)) && gw_now_ms() < deadline_) \
            loop_poll_run((loop), 10);                      \
    } while (0)

/* Runs the loop for ms milliseconds. */
void redist_run_for(struct gw_loop *loop, int ms);

struct fanout_frame;
struct fanout_msg;
/* No-op fanout callbacks for tests that do not look at deliveries. */
struct fanout_frame *redist_encode_none(void *ud, const struct fanout_msg *m, unsigned variant);
void redist_deliver_none(void *ud, void *sub_ud, struct fanout_msg *m);

#endif
