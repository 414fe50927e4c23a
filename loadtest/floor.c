/* tidings-floor: the "floor" of the fan-out performance targets. It measures
 * the CPU cost of the raw loopback TCP write path with no server logic.
 *
 * How it works: it opens a listening socket on 127.0.0.1:0, connects N
 * clients and accepts N server-side sockets (real loopback TCP, not
 * socketpair). A forked reader child drains every client socket with epoll
 * (level-triggered, read and discard, counting bytes). The parent writes
 * pre-built 204-byte WebSocket text frames (0x81 0x7E 0x00 0xC8 + 200 bytes
 * of payload) to every server-side socket: R messages/s for T seconds, one
 * message being one frame to each of the N sockets. With --coalesce K the
 * parent wakes R/K times per second and writes K concatenated frames per
 * write() call, so the frame rate stays R*N/s and the write rate drops K
 * times. Server sockets are non-blocking: a write the kernel refuses
 * (EAGAIN) or takes only partly is counted, never retried.
 *
 * CPU is getrusage(RUSAGE_SELF) user+sys of the writer over the write phase
 * only, and wait4() rusage of the reader child over its whole life. Note
 * that loopback TCP runs the receiver's protocol processing in the sender's
 * system call, so the writer's CPU includes most of the receive path.
 *
 * Bounds: N <= 9,500 pairs (a process may hold at most 20,000 fds), the
 * write loop stops after ceil(R*T/K) ticks or T+5 s, the reader stops when
 * every socket saw EOF or after T+10 s. Everything is closed at exit. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FLOOR_MAX_PAIRS    9500 /* 2 fds per pair, 20,000 fds per process */
#define FLOOR_PAYLOAD      200  /* payload bytes of one frame */
#define FLOOR_HDR          4    /* 0x81 0x7E len16: 200 needs the 16-bit length */
#define FLOOR_FRAME        (FLOOR_HDR + FLOOR_PAYLOAD)
#define FLOOR_MAX_COALESCE 256 /* frames per write, bound */

struct opts {
    long sockets;     /* N: connected socket pairs */
    long rate;        /* R: messages per second (one frame to each socket) */
    long seconds;     /* T: length of the write phase */
    long coalesce;    /* K: frames per write() call */
    const char *json; /* machine-readable output file, or NULL */
};

struct pairs {
    int *srv; /* server-side (accepted) sockets, written by the parent */
    int *cli; /* client sockets, drained by the child */
    long n;   /* pairs actually opened */
    int lfd;  /* listening socket */
};

struct result {
    long ticks;           /* write rounds done (each = one write per socket) */
    long late_ticks;      /* rounds started after their deadline */
    long writes;          /* write() calls that took all their bytes */
    long short_writes;    /* write() calls that took only part */
    long eagain;          /* write() calls refused with EAGAIN */
    long frames;          /* whole frames handed to the kernel */
    double elapsed;       /* write phase wall time, s */
    double cpu_w;         /* writer user+sys over the write phase, s */
    double cpu_r;         /* reader child user+sys (whole life), s */
    long long read_bytes; /* bytes the reader drained */
    long nofile;          /* RLIMIT_NOFILE soft limit after raising */
};

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double
ru_cpu(const struct rusage *ru)
{
    return tv_s(ru->ru_utime) + tv_s(ru->ru_stime);
}

static void *
xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n, sz);
    if (!p)
        abort();
    return p;
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: tidings-floor [--sockets N] [--rate R] "
            "[--seconds T] [--coalesce K] [--json FILE]\n"
            "  defaults: N=5000 (max %d pairs: 20,000 fds per "
            "process), R=20 msgs/s, T=10 s, K=1 (max %d)\n",
            FLOOR_MAX_PAIRS, FLOOR_MAX_COALESCE);
}

static int
parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int
parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = -1;
        if (!v)
            return -1;
        if (!strcmp(a, "--sockets"))
            rc = parse_long(v, 1, 1000000, &o->sockets);
        else if (!strcmp(a, "--rate"))
            rc = parse_long(v, 1, 100000, &o->rate);
        else if (!strcmp(a, "--seconds"))
            rc = parse_long(v, 1, 3600, &o->seconds);
        else if (!strcmp(a, "--coalesce"))
            rc = parse_long(v, 1, FLOOR_MAX_COALESCE, &o->coalesce);
        else if (!strcmp(a, "--json")) {
            o->json = v;
            rc = 0;
        }
        if (rc < 0)
            return -1;
        i++;
    }
    return 0;
}

/* Raise the soft fd limit to the hard one and cap N so that both ends fit. */
static long
raise_nofile(struct opts *o)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    long lim = rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
    long cap = (lim - 16) / 2;
    if (cap > FLOOR_MAX_PAIRS)
        cap = FLOOR_MAX_PAIRS;
    if (o->sockets > cap) {
        fprintf(stderr,
                "floor: capping --sockets %ld to %ld pairs "
                "(at most 20,000 fds per process, nofile %ld)\n",
                o->sockets, cap, lim);
        o->sockets = cap;
    }
    return lim;
}

static int
listen_loopback(struct sockaddr_in *sa)
{
    socklen_t len = sizeof(*sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(fd, 1024) < 0 ||
        getsockname(fd, (struct sockaddr *)sa, &len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Connect one client and accept its server side; both end up non-blocking. */
static int
open_pair(int lfd, const struct sockaddr_in *sa, int *cli, int *srv)
{
    int one = 1;
    *cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*cli < 0)
        return -1;
    if (connect(*cli, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
        goto fail;
    *srv = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (*srv < 0)
        goto fail;
    (void)setsockopt(*srv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fcntl(*cli, F_SETFL, O_NONBLOCK) < 0) {
        close(*srv);
        goto fail;
    }
    return 0;
fail:
    close(*cli);
    *cli = -1;
    return -1;
}

static int
pairs_open(struct pairs *p, long n)
{
    struct sockaddr_in sa;
    p->srv = xcalloc((size_t)n, sizeof(int));
    p->cli = xcalloc((size_t)n, sizeof(int));
    p->n = 0;
    p->lfd = listen_loopback(&sa);
    if (p->lfd < 0) {
        perror("floor: listen");
        return -1;
    }
    for (long i = 0; i < n; i++) {
        if (open_pair(p->lfd, &sa, &p->cli[i], &p->srv[i]) < 0) {
            perror("floor: connect/accept");
            return -1;
        }
        p->n++;
    }
    return 0;
}

static void
close_all(int *fds, long n)
{
    for (long i = 0; fds && i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

static void
pairs_close(struct pairs *p)
{
    close_all(p->srv, p->n);
    close_all(p->cli, p->n);
    if (p->lfd >= 0)
        close(p->lfd);
    p->lfd = -1;
    free(p->srv);
    free(p->cli);
    p->srv = p->cli = NULL;
}

/* Drain one ready socket; returns 1 at EOF or error, else 0. */
static int
drain_one(int fd, unsigned char *buf, size_t cap, long long *bytes)
{
    for (int k = 0; k < 64; k++) {
        ssize_t r = read(fd, buf, cap);
        if (r > 0) {
            *bytes += r;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        return 1;
    }
    return 0;
}

/* Reader child: epoll over the client sockets until all closed or deadline. */
static long long
reader_run(const int *cli, long n, double limit_s)
{
    static unsigned char buf[65536];
    struct epoll_event evs[256];
    long long bytes = 0;
    long open_n = 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -1;
    for (long i = 0; i < n; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = cli[i] };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cli[i], &ev) == 0)
            open_n++;
    }
    double end = now_s() + limit_s;
    while (open_n > 0 && now_s() < end) {
        int k = epoll_wait(ep, evs, 256, 200);
        for (int j = 0; j < k; j++) {
            int fd = evs[j].data.fd;
            if (drain_one(fd, buf, sizeof(buf), &bytes)) {
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                open_n--;
            }
        }
    }
    close(ep);
    return bytes;
}

/* Fork the reader; the child reports its byte count through the pipe. */
static pid_t
reader_fork(struct pairs *p, double limit_s, int *rfd)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        close(pfd[0]);
        close_all(p->srv, p->n);
        close(p->lfd);
        long long bytes = reader_run(p->cli, p->n, limit_s);
        ssize_t w = write(pfd[1], &bytes, sizeof(bytes));
        _exit(w == (ssize_t)sizeof(bytes) ? 0 : 1);
    }
    close(pfd[1]);
    close_all(p->cli, p->n); /* the child owns them now */
    *rfd = pfd[0];
    return pid;
}

/* One round: one write of `len` bytes (K frames) to every server socket. */
static void
write_round(const struct pairs *p, const unsigned char *buf, size_t len, long k, struct result *r)
{
    for (long i = 0; i < p->n; i++) {
        ssize_t w = write(p->srv[i], buf, len);
        if (w == (ssize_t)len) {
            r->writes++;
            r->frames += k;
        } else if (w > 0) {
            r->short_writes++;
            r->frames += (long)((size_t)w / FLOOR_FRAME);
        } else if (errno == EAGAIN) {
            r->eagain++;
        }
    }
}

static void
ts_add(struct timespec *ts, long ns)
{
    ts->tv_nsec += ns;
    while (ts->tv_nsec >= 1000000000L) {
        ts->tv_nsec -= 1000000000L;
        ts->tv_sec++;
    }
}

/* The paced write phase: ceil(R*T/K) rounds, one every K/R seconds. */
static void
writer_run(const struct pairs *p, const struct opts *o, struct result *r)
{
    size_t len = (size_t)o->coalesce * FLOOR_FRAME;
    unsigned char *buf = xcalloc(len, 1);
    for (long k = 0; k < o->coalesce; k++) {
        unsigned char *f = buf + (size_t)k * FLOOR_FRAME;
        f[0] = 0x81; /* FIN + text */
        f[1] = 0x7E; /* 16-bit extended length follows */
        f[2] = 0x00;
        f[3] = FLOOR_PAYLOAD; /* 0xC8 */
        memset(f + FLOOR_HDR, 'x', FLOOR_PAYLOAD);
    }
    long rounds = (o->rate * o->seconds + o->coalesce - 1) / o->coalesce;
    long period = (long)(1e9 * (double)o->coalesce / (double)o->rate);
    double t0 = now_s(), hard_end = t0 + (double)o->seconds + 5.0;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (long i = 0; i < rounds && now_s() < hard_end; i++) {
        int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        if (rc == 0 && i > 0 &&
            now_s() > (double)next.tv_sec + (double)next.tv_nsec / 1e9 + (double)period / 1e9)
            r->late_ticks++;
        write_round(p, buf, len, o->coalesce, r);
        r->ticks++;
        ts_add(&next, period);
    }
    if (now_s() < hard_end) /* close the last period: elapsed ~ T */
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    r->elapsed = now_s() - t0;
    free(buf);
}

static void
print_text(const struct opts *o, const struct pairs *p, const struct result *r)
{
    double calls = (double)(r->writes + r->short_writes);
    double us = r->cpu_w * 1e6;
    printf("tidings-floor: %ld pairs (loopback TCP), rate %ld msgs/s, %ld s, "
           "coalesce %ld, frame %d B, nofile %ld\n",
           p->n, o->rate, o->seconds, o->coalesce, FLOOR_FRAME, r->nofile);
    printf("  writes       %ld (short %ld, eagain %ld), rounds %ld (late %ld)\n", r->writes,
           r->short_writes, r->eagain, r->ticks, r->late_ticks);
    printf("  frames       %ld, %.0f frames/s (target %ld)\n", r->frames,
           (double)r->frames / r->elapsed, o->rate * p->n);
    printf("  elapsed      %.3f s\n", r->elapsed);
    printf("  writer CPU   %.3f s = %.2f %% of a core, %.2f us/write, "
           "%.2f us/frame\n",
           r->cpu_w, 100.0 * r->cpu_w / r->elapsed, calls ? us / calls : 0.0,
           r->frames ? us / (double)r->frames : 0.0);
    printf("  reader CPU   %.3f s, %.2f us/frame, read %lld B (sent %lld B)\n", r->cpu_r,
           r->frames ? r->cpu_r * 1e6 / (double)r->frames : 0.0, r->read_bytes,
           (long long)r->frames * FLOOR_FRAME);
}

static int
write_json(const struct opts *o, const struct pairs *p, const struct result *r)
{
    FILE *f = fopen(o->json, "w");
    if (!f)
        return -1;
    double calls = (double)(r->writes + r->short_writes);
    double fr = (double)r->frames;
    fprintf(f,
            "{\"tool\":\"tidings-floor\",\"sockets\":%ld,\"sockets_requested\":"
            "%ld,\"rate\":%ld,\"seconds\":%ld,\"coalesce\":%ld,"
            "\"frame_bytes\":%d,\"payload_bytes\":%d,\"nofile\":%ld,",
            p->n, o->sockets, o->rate, o->seconds, o->coalesce, FLOOR_FRAME, FLOOR_PAYLOAD,
            r->nofile);
    fprintf(f,
            "\"rounds\":%ld,\"late_rounds\":%ld,\"writes\":%ld,"
            "\"short_writes\":%ld,\"eagain\":%ld,\"frames\":%ld,"
            "\"frames_per_s\":%.1f,\"elapsed_s\":%.4f,",
            r->ticks, r->late_ticks, r->writes, r->short_writes, r->eagain, r->frames,
            fr / r->elapsed, r->elapsed);
    fprintf(f,
            "\"writer_cpu_s\":%.4f,\"writer_us_per_write\":%.3f,"
            "\"writer_us_per_frame\":%.3f,\"reader_cpu_s\":%.4f,"
            "\"reader_us_per_frame\":%.3f,\"read_bytes\":%lld}\n",
            r->cpu_w, calls ? r->cpu_w * 1e6 / calls : 0.0, fr ? r->cpu_w * 1e6 / fr : 0.0,
            r->cpu_r, fr ? r->cpu_r * 1e6 / fr : 0.0, r->read_bytes);
    return fclose(f) == 0 ? 0 : -1;
}

/* Write phase + teardown: close the server sockets so the child sees EOF. */
static int
run(struct pairs *p, const struct opts *o, struct result *r)
{
    struct rusage ru0, ru1, ruc;
    int rfd = -1, status = 0;
    pid_t pid = reader_fork(p, (double)o->seconds + 10.0, &rfd);
    if (pid < 0) {
        perror("floor: fork");
        return -1;
    }
    getrusage(RUSAGE_SELF, &ru0);
    writer_run(p, o, r);
    getrusage(RUSAGE_SELF, &ru1);
    r->cpu_w = ru_cpu(&ru1) - ru_cpu(&ru0);
    close_all(p->srv, p->n);
    if (read(rfd, &r->read_bytes, sizeof(r->read_bytes)) != (ssize_t)sizeof(r->read_bytes))
        r->read_bytes = -1;
    close(rfd);
    if (wait4(pid, &status, 0, &ruc) < 0)
        return -1;
    r->cpu_r = ru_cpu(&ruc);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
    struct opts o = { .sockets = 5000, .rate = 20, .seconds = 10, .coalesce = 1 };
    struct pairs p = { .lfd = -1 };
    struct result r;
    int rc = 1;
    memset(&r, 0, sizeof(r));
    if (parse_args(argc, argv, &o) < 0) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    r.nofile = raise_nofile(&o);
    if (pairs_open(&p, o.sockets) < 0)
        goto out;
    if (run(&p, &o, &r) < 0)
        fprintf(stderr, "floor: reader child failed\n");
    print_text(&o, &p, &r);
    if (o.json && write_json(&o, &p, &r) < 0) {
        perror("floor: json");
        goto out;
    }
    rc = 0;
out:
    pairs_close(&p);
    return rc;
}
