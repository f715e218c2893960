/* Buffered, deadlined SMTP I/O over a replaceable transport (plain fds or
 * TLS), so the session never knows whether TLS is on. Replies are buffered
 * and flushed before every blocking read: pipelined commands get their
 * replies in one write, and a client waiting for a reply always gets it. */
#ifndef HW_IO_H
#define HW_IO_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hw_limits.h"
#include "io_transport.h"

struct io {
        struct io_transport transport;
        int timeout_ms;            /* idle: restarts with every read */
        int64_t deadline_ms;       /* io_now_ms() time reads must end by; 0 = none */
        int64_t last_input_ms;     /* io_now_ms() time of the last bytes read */
        size_t rpos, rlen;
        size_t wlen;
        char rbuf[HW_IO_BUFFER];
        char wbuf[HW_IO_BUFFER];
};

/* The transport of plain file descriptors (fd 0 and 1 under inetd). */
struct io_plain {
        int in_fd;
        int out_fd;
};
void io_plain_transport(struct io_plain *fds, struct io_transport *t);

void io_init(struct io *io, const struct io_transport *t, int timeout_ms);

/* Milliseconds of a monotonic clock, the time base of deadlines. */
int64_t io_now_ms(void);

/* Reads from now on fail with -ETIME once io_now_ms() reaches deadline_ms
 * (0: no deadline), however often bytes arrive: a client sending one byte
 * at a time restarts the idle timeout but not this. */
void io_set_deadline(struct io *io, int64_t deadline_ms);

/* Switches transport (after the TLS handshake). Input buffered from the
 * old transport is dropped: nothing sent before the handshake may be
 * taken as a command after it (CVE-2011-0411). Returns how many bytes
 * were dropped. */
size_t io_switch_transport(struct io *io, const struct io_transport *t);


/* Reads one line ended by LF into line (without CR LF, NUL-terminated).
 * 0 on success; -E2BIG if the line (with its CR LF) is longer than max
 * bytes: the rest of it is read and dropped so the session stays in step
 * (line must hold max + 1 bytes);
 * -EBADMSG if it holds a NUL byte; -ENODATA at end of input;
 * -ETIMEDOUT when idle too long, -ETIME past the deadline, or another
 * -errno. */
int io_getline(struct io *io, char *line, size_t max, size_t *len);

/* Makes buffered input available: on success *data and *len point into the
 * read buffer (at least one byte). Consume with io_consume(). */
int io_peek(struct io *io, const char **data, size_t *len);
void io_consume(struct io *io, size_t n);

int io_write(struct io *io, const void *data, size_t len);
int io_printf(struct io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int io_flush(struct io *io);

#endif
