/*
 * ipc.c: record framing over pipes (ipc.h). Reads wait with poll() against a deadline, so
 * a dead or stuck peer cannot hang the driver.
 */
#include "loadtest/ipc.h"

#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"

struct hdr {
    uint32_t type; /* enum lt_msg_type */
    uint32_t len;  /* bytes that follow */
};

int64_t
lt_wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
lt_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
write_full(int fd, const void *p, size_t len)
{
    const char *c = p;

    while (len) {
        ssize_t n = write(fd, c, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return GW_EIO;
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

int
lt_msg_send(int fd, uint32_t type, const void *p, size_t len)
{
    struct hdr h = { type, (uint32_t)len };

    if (write_full(fd, &h, sizeof(h)))
        return GW_EIO;
    return write_full(fd, p, len);
}

/* Reads exactly len bytes before deadline_us (monotonic); GW_ENOTFOUND on EOF at offset 0. */
static int
read_full(int fd, void *p, size_t len, int64_t deadline_us)
{
    char *c = p;
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int64_t left = deadline_us - lt_mono_us();
        ssize_t n;

        if (left <= 0)
            return GW_EAGAIN;
        if (poll(&pfd, 1, (int)(left / 1000 + 1)) <= 0)
            continue;
        n = read(fd, c + got, len - got);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n == 0 && got == 0)
            return GW_ENOTFOUND;
        if (n <= 0)
            return GW_EIO;
        got += (size_t)n;
    }
    return 0;
}

int
lt_msg_recv(int fd, uint32_t *type, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    int64_t deadline = lt_mono_us() + (int64_t)timeout_ms * 1000;
    struct hdr h;
    int rc = read_full(fd, &h, sizeof(h), deadline);

    if (rc)
        return rc;
    if (h.len > cap)
        return GW_ELIMIT;
    rc = read_full(fd, buf, h.len, deadline);
    if (rc)
        return rc == GW_ENOTFOUND ? GW_EIO : rc;
    *type = h.type;
    *len = h.len;
    return 0;
}
