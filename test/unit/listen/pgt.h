/*
 * pgt.h: support for the listen/ integration tests: a throwaway PostgreSQL per test
 * (test/support/pgtmp.sh, stopped by a reaper process even when the test crashes),
 * blocking SQL helpers, a background writer process, and a recorder of listener
 * callbacks.
 */
#ifndef GW_TEST_PGT_H
#define GW_TEST_PGT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/base.h"
#include "listen/listen.h"
#include "test/support/loop_poll.h"

/* A throwaway server. */
struct pgt {
    char root[128];     /* temporary directory, removed at the end */
    char dir[160];      /* data directory (root/data) */
    char conninfo[256]; /* key=value conninfo printed by pgtmp.sh */
    int port;           /* TCP port on 127.0.0.1 */
    int reaper_fd;      /* write end of the reaper's pipe, -1 = none */
    pid_t reaper;       /* stops the server if this process dies */
};

/* Creates and starts a server. Returns 0 or -1 (with a message on stderr). */
int pgt_start(struct pgt *p);
/* Stops the server and removes its files. */
void pgt_stop(struct pgt *p);
/* Stops the server but keeps its data (pgtmp.sh stop). */
void pgt_server_stop(struct pgt *p);
/* Starts the kept server again on the same port (pg_ctl). Returns 0 or -1. */
int pgt_server_start(struct pgt *p);
/* Runs `pg_ctl restart -m fast` in a child process; returns its pid (waitpid it). */
pid_t pgt_restart_async(struct pgt *p);

/* Runs sql (may be several statements); returns 0 or -1 (message on stderr). */
int pgt_exec(const char *conninfo, const char *sql);
/* Returns the first value of sql's result as a malloc'd string, or NULL. */
char *pgt_value(const char *conninfo, const char *sql);
/* Fills ids with the int8 first column of sql's rows; returns the count or -1. */
long pgt_ids(const char *conninfo, const char *sql, int64_t *ids, size_t max);

/* Forks a writer that runs `sql` n times, each in its own transaction, with sleep_ms
 * between, reconnecting after errors; it gives up after max_ms. Returns its pid. */
pid_t pgt_writer(const char *conninfo, const char *sql, int n, int sleep_ms, int max_ms);
/* Waits for a child without blocking; true when it has exited. */
bool pgt_reaped(pid_t pid);

/* One recorded event. */
struct rec_event {
    enum pg_event_kind kind; /* event kind */
    int64_t id;              /* outbox id */
    bool restart;            /* restart_catchup flag */
    char *json;              /* owned copy of the payload */
    size_t len;              /* payload length */
    char *channel;           /* owned copy of the NOTIFY channel or NULL */
    uint64_t at_ms;          /* monotonic arrival time */
};

/* Records the callbacks of one listener. */
struct rec {
    struct rec_event *ev;      /* events in arrival order */
    size_t n;                  /* events recorded */
    size_t cap;                /* entries allocated */
    enum pg_state st[64];      /* states in report order */
    char *detail[64];          /* owned details */
    size_t n_st;               /* states recorded */
    size_t n_st_calls;         /* state calls, including those past st[] */
    struct pg_listener **self; /* when set, freed (and cleared) on the first READY */
};

void rec_event(void *ud, const struct pg_event *ev);
void rec_state(void *ud, enum pg_state st, const char *detail);
void rec_release(struct rec *r);
/* Number of events of `kind`. */
size_t rec_count(const struct rec *r, enum pg_event_kind kind);
/* Number of times state `st` was reported. */
size_t rec_states(const struct rec *r, enum pg_state st);
/* Copies the ids of the outbox events (CHANGE and BROADCAST) in arrival order. */
size_t rec_ids(const struct rec *r, int64_t *ids, size_t max);

/* Runs the loop until `cond` holds or ms pass; ok receives the last value of cond,
 * which is evaluated once per turn (it may have side effects, e.g. waitpid). */
#define PGT_RUN_UNTIL(loop, cond, ms, ok)                   \
    do {                                                    \
        uint64_t deadline_ = gw_now_ms() + (uint64_t)(ms);  \
        while (!((ok) = (cond)) && gw_now_ms() < deadline_) \
            loop_poll_run((loop), 20);                      \
    } while (0)

/* Runs the loop for ms milliseconds. */
void pgt_run_for(struct gw_loop *loop, int ms);
/* Default listener configuration for the tests. */
struct pg_listener_config pgt_config(struct gw_loop *loop, const char *conninfo, struct rec *r);

#endif
