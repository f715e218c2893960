/* How bytes move under the session's buffered I/O (io.h): plain file
 * descriptors, or TLS from the hw-tls.so module (module_api.h). Apart from
 * io.h so that a module sees this and nothing of the session's buffers. */
#ifndef HW_IO_TRANSPORT_H
#define HW_IO_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>

struct io_transport {
        /* > 0 bytes read, 0 end of input, -ETIMEDOUT after timeout_ms
         * without input, other -errno on errors. */
        ssize_t (*read)(void *ctx, void *buf, size_t len, int timeout_ms);
        /* Writes all of buf: 0 or -errno. */
        int (*write)(void *ctx, const void *buf, size_t len);
        void *ctx;
};

#endif
