/*
 * listener.c: the listening socket, opened by tidings rather than lws so that several
 * processes can share one port (SO_REUSEPORT; the Debian lws build cannot, see
 * ENGINEERING.md section 4). The socket is watched through base/loop.h; on readable,
 * accept4() runs until EAGAIN and each connection is handed to lws with
 * lws_adopt_socket_vhost(), after which HTTP and WebSocket work as with lws's own listener.
 */
/* accept4() and SO_REUSEPORT are Linux extensions. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

static void
on_accept(void *ud, int fd, unsigned events)
{
    struct gw *gw = ud;

    (void)events;
    for (int i = 0; i < 256; i++) {
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (c < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                gw_log(GW_LOG_WARN, "accept_failed", "errno=%d error=\"%s\"", errno,
                       strerror(errno));
            return;
        }
        /* lws sets TCP_NODELAY only on sockets its own listener accepts, not on adopted
         * ones: without it Nagle holds a small frame behind an unacknowledged one until
         * the peer's delayed ACK (up to 40 ms on Linux). */
        (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
        if (!lws_adopt_socket_vhost(gw->vh, c))
            close(c);
    }
}

static int
open_socket(const struct addrinfo *ai)
{
    int one = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) ||
        (ai->ai_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 4096)) {
        close(fd);
        return -1;
    }
    return fd;
}

int
gw__listener_open(struct gw *gw, struct gw_buf *err)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    char port[16];
    int rc;

    snprintf(port, sizeof port, "%d", gw->conf->port);
    rc = getaddrinfo(gw->conf->bind, port, &hints, &res);
    if (rc) {
        gw_buf_printf(err, "bind %s: %s", gw->conf->bind, gai_strerror(rc));
        return GW_EINVAL;
    }
    gw->listen_fd = open_socket(res);
    if (gw->listen_fd < 0)
        gw_buf_printf(err, "cannot listen on %s:%d: %s", gw->conf->bind, gw->conf->port,
                      strerror(errno));
    freeaddrinfo(res);
    if (gw->listen_fd < 0)
        return GW_EIO;
    gw->listen_watch = gw_watch_add(gw->loop, gw->listen_fd, GW_LOOP_READ, on_accept, gw);
    if (!gw->listen_watch) {
        gw_buf_printf(err, "cannot watch the listening socket");
        gw__listener_close(gw);
        return GW_EIO;
    }
    return 0;
}

void
gw__listener_close(struct gw *gw)
{
    if (gw->listen_watch)
        gw_watch_del(gw->loop, gw->listen_watch);
    gw->listen_watch = NULL;
    if (gw->listen_fd >= 0)
        close(gw->listen_fd);
    gw->listen_fd = -1;
}
