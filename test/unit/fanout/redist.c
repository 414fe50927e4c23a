/*
 * redist.c: throwaway redis-server processes and blocking queries (see redist.h).
 *
 * Every running server is also listed in a small table that an atexit() handler walks,
 * so a test that fails half-way still stops its servers; PR_SET_PDEATHSIG covers a crash.
 */
#include "redist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef REDIS_SERVER
#define REDIS_SERVER "/usr/bin/redis-server"
#endif

#define MAX_SERVERS 8

static struct redist *running[MAX_SERVERS];
static bool atexit_set;

static void
sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void
stop_all(void)
{
    for (size_t i = 0; i < MAX_SERVERS; i++) {
        if (running[i])
            redist_stop(running[i]);
    }
}

static void
track(struct redist *s, bool on)
{
    for (size_t i = 0; i < MAX_SERVERS; i++) {
        if (on ? running[i] == NULL : running[i] == s) {
            running[i] = on ? s : NULL;
            return;
        }
    }
}

int
redist_free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* The child: becomes redis-server, killed with its parent. */
static void
child_exec(const struct redist *s, pid_t parent)
{
    char port[16], log[128];
    int fd;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(log, sizeof(log), "%s/redis.log", s->dir);
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    if (s->password[0])
        execl(REDIS_SERVER, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--daemonize", "no", "--dir", s->dir, "--requirepass",
              s->password, (char *)NULL);
    else
        execl(REDIS_SERVER, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--daemonize", "no", "--dir", s->dir, (char *)NULL);
    _exit(127);
}

/* A connected, authenticated sync context, or NULL. */
static redisContext *
connect_sync(const struct redist *s)
{
    struct timeval tv = { .tv_sec = 0, .tv_usec = 500000 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    redisReply *r;

    if (!c || c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, (struct timeval){ .tv_sec = 2 });
    if (!s->password[0])
        return c;
    r = redisCommand(c, "AUTH %s", s->password);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(r);
    return c;
}

static bool
answers_ping(const struct redist *s)
{
    redisContext *c = connect_sync(s);
    redisReply *r = c ? redisCommand(c, "PING") : NULL;
    bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;

    freeReplyObject(r);
    redisFree(c);
    return ok;
}

static int
spawn(struct redist *s)
{
    pid_t parent = getpid();

    fflush(NULL);
    s->pid = fork();
    if (s->pid < 0) {
        s->pid = 0;
        return -1;
    }
    if (s->pid == 0)
        child_exec(s, parent);
    track(s, true);
    for (int i = 0; i < 250; i++) {
        if (answers_ping(s))
            return 0;
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            fprintf(stderr, "redist: redis-server on port %d exited (see %s/redis.log)\n", s->port,
                    s->dir);
            track(s, false);
            s->pid = 0;
            return -1;
        }
        sleep_ms(20);
    }
    fprintf(stderr, "redist: redis-server on port %d did not answer\n", s->port);
    return -1;
}

int
redist_start(struct redist *s, int port, const char *password)
{
    memset(s, 0, sizeof(*s));
    if (!atexit_set) {
        atexit(stop_all);
        atexit_set = true;
    }
    s->port = port > 0 ? port : redist_free_port();
    snprintf(s->dir, sizeof(s->dir), "/tmp/tidings-redis-XXXXXX");
    if (s->port < 0 || !mkdtemp(s->dir)) {
        s->dir[0] = '\0';
        return -1;
    }
    snprintf(s->password, sizeof(s->password), "%s", password ? password : "");
    if (s->password[0])
        snprintf(s->url, sizeof(s->url), "redis://:%s@127.0.0.1:%d", s->password, s->port);
    else
        snprintf(s->url, sizeof(s->url), "redis://127.0.0.1:%d", s->port);
    return spawn(s);
}

void
redist_kill(struct redist *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    track(s, false);
    s->pid = 0;
}

void
redist_pause(struct redist *s, bool paused)
{
    if (s->pid > 0)
        kill(s->pid, paused ? SIGSTOP : SIGCONT);
}

int
redist_restart(struct redist *s)
{
    return s->pid > 0 ? 0 : spawn(s);
}

void
redist_stop(struct redist *s)
{
    char cmd[128];

    if (s->pid > 0) {
        kill(s->pid, SIGCONT);
        kill(s->pid, SIGTERM);
        for (int i = 0; i < 100 && waitpid(s->pid, NULL, WNOHANG) != s->pid; i++)
            sleep_ms(20);
        if (kill(s->pid, 0) == 0) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
        }
        track(s, false);
        s->pid = 0;
    }
    if (s->dir[0]) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "redist: cannot remove %s\n", s->dir);
        s->dir[0] = '\0';
    }
}

long
redist_numsub(const struct redist *s, const char *channel)
{
    redisContext *c = connect_sync(s);
    redisReply *r = c ? redisCommand(c, "PUBSUB NUMSUB %s", channel) : NULL;
    long n = -1;

    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_INTEGER)
        n = (long)r->element[1]->integer;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

long
redist_channels(const struct redist *s, const char *pattern, char *out, size_t cap)
{
    redisContext *c = connect_sync(s);
    redisReply *r = c ? redisCommand(c, "PUBSUB CHANNELS %s", pattern) : NULL;
    long n = -1;

    out[0] = '\0';
    if (r && r->type == REDIS_REPLY_ARRAY) {
        char **names = calloc(r->elements + 1, sizeof(*names));
        size_t used = 0;

        for (size_t i = 0; i < r->elements; i++)
            names[i] = r->element[i]->str;
        qsort(names, r->elements, sizeof(*names), cmp_str);
        for (size_t i = 0; i < r->elements && used < cap; i++)
            used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "", names[i]);
        free(names);
        n = (long)r->elements;
    }
    freeReplyObject(r);
    redisFree(c);
    return n;
}

long
redist_publish(const struct redist *s, const char *channel, const void *p, size_t n)
{
    redisContext *c = connect_sync(s);
    redisReply *r = c ? redisCommand(c, "PUBLISH %s %b", channel, p, n) : NULL;
    long got = -1;

    if (r && r->type == REDIS_REPLY_INTEGER)
        got = (long)r->integer;
    freeReplyObject(r);
    redisFree(c);
    return got;
}

void
redist_run_for(struct gw_loop *loop, int ms)
{
    uint64_t end = gw_now_ms() + (uint64_t)ms;

    while (gw_now_ms() < end)
        loop_poll_run(loop, 10);
}

struct fanout_frame *
redist_encode_none(void *ud, const struct fanout_msg *m, unsigned variant)
{
    (void)ud;
    (void)m;
    (void)variant;
    return NULL;
}

void
redist_deliver_none(void *ud, void *sub_ud, struct fanout_msg *m)
{
    (void)ud;
    (void)sub_ud;
    (void)m;
}
