/* Buffered SMTP I/O; see io.h. */
#include "io.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static ssize_t io_plain_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
        struct io_plain *fds = ctx;
        struct pollfd pfd = { .fd = fds->in_fd, .events = POLLIN };

        for (;;) {
                int r = poll(&pfd, 1, timeout_ms);
                ssize_t n;

                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        return -ETIMEDOUT;
                n = read(fds->in_fd, buf, len);
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                return n;
        }
}

static int io_plain_write(void *ctx, const void *buf, size_t len)
{
        struct io_plain *fds = ctx;
        const char *p = buf;

        while (len) {
                ssize_t n = write(fds->out_fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

void io_plain_transport(struct io_plain *fds, struct io_transport *t)
{
        t->read = io_plain_read;
        t->write = io_plain_write;
        t->ctx = fds;
}

void io_init(struct io *io, const struct io_transport *t, int timeout_ms)
{
        io->transport = *t;
        io->timeout_ms = timeout_ms;
        io->deadline_ms = 0;
        io->last_input_ms = io_now_ms();
        io->rpos = io->rlen = io->wlen = 0;
}

int64_t io_now_ms(void)
{
        struct timespec now;

        /* CLOCK_MONOTONIC cannot fail with a valid clock id. */
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void io_set_deadline(struct io *io, int64_t deadline_ms)
{
        io->deadline_ms = deadline_ms;
}

size_t io_switch_transport(struct io *io, const struct io_transport *t)
{
        size_t dropped = io->rlen - io->rpos;

        io->transport = *t;
        io->rpos = io->rlen = 0;
        return dropped;
}

int io_flush(struct io *io)
{
        int r;

        if (!io->wlen)
                return 0;
        r = io->transport.write(io->transport.ctx, io->wbuf, io->wlen);
        io->wlen = 0;
        return r;
}

/* Refills the read buffer; replies are flushed first (qmail's rule), so a
 * pipelining client gets every reply to its batch before we wait. */
static int io_fill(struct io *io)
{
        bool by_deadline = false;
        int64_t now;
        int wait_ms, r;
        ssize_t n;

        if (io->rpos < io->rlen)
                return 0;
        r = io_flush(io);
        if (r < 0)
                return r;
        io->rpos = io->rlen = 0;
        wait_ms = io->timeout_ms;
        now = io_now_ms();
        if (io->deadline_ms) {
                int64_t left = io->deadline_ms - now;

                if (left <= 0)
                        return -ETIME;
                if (left < wait_ms) {
                        wait_ms = (int)left;
                        by_deadline = true;
                }
        }
        n = io->transport.read(io->transport.ctx, io->rbuf, sizeof(io->rbuf), wait_ms);
        /* A client silent for the idle timeout is told so, even when a
         * deadline ended the wait. */
        if (n == -ETIMEDOUT && by_deadline && now + wait_ms - io->last_input_ms < io->timeout_ms)
                return -ETIME;
        if (n < 0)
                return (int)n;
        io->last_input_ms = io_now_ms();
        if (n == 0)
                return -ENODATA;
        io->rlen = (size_t)n;
        return 0;
}

int io_peek(struct io *io, const char **data, size_t *len)
{
        int r = io_fill(io);

        if (r < 0)
                return r;
        *data = io->rbuf + io->rpos;
        *len = io->rlen - io->rpos;
        return 0;
}

void io_consume(struct io *io, size_t n)
{
        io->rpos += n;
}

int io_getline(struct io *io, char *line, size_t max, size_t *len)
{
        size_t have = 0;
        bool too_long = false, has_nul = false;

        for (;;) {
                const char *data, *nl;
                size_t avail, take;
                int r = io_peek(io, &data, &avail);

                if (r < 0)
                        return r;
                nl = memchr(data, '\n', avail);
                take = nl ? (size_t)(nl - data) + 1 : avail;
                if (memchr(data, '\0', take))
                        has_nul = true;
                /* max counts the CR LF, as RFC 5321's line limits do. */
                if (have + take > max) {
                        too_long = true;
                } else {
                        memcpy(line + have, data, take);
                        have += take;
                }
                io_consume(io, take);
                if (nl)
                        break;
        }
        if (too_long)
                return -E2BIG;
        if (has_nul)
                return -EBADMSG;
        /* Strip LF and one CR before it. */
        have--;
        if (have && line[have - 1] == '\r')
                have--;
        line[have] = '\0';
        *len = have;
        return 0;
}

int io_write(struct io *io, const void *data, size_t len)
{
        const char *p = data;

        while (len) {
                size_t n = sizeof(io->wbuf) - io->wlen;

                if (n == 0) {
                        int r = io_flush(io);

                        if (r < 0)
                                return r;
                        continue;
                }
                if (n > len)
                        n = len;
                memcpy(io->wbuf + io->wlen, p, n);
                io->wlen += n;
                p += n;
                len -= n;
        }
        return 0;
}

int io_printf(struct io *io, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        if ((size_t)n >= sizeof(buf))
                n = sizeof(buf) - 1;
        return io_write(io, buf, (size_t)n);
}
