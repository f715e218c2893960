/* The PROXY header a trusted proxy sends before anything else (HAProxy's
 * send-proxy and send-proxy-v2, AWS Network Load Balancers): version 1 or
 * 2, read from the session's io before the greeting. Exactly the header's
 * bytes are consumed (v1 up to its LF, v2 as its length field says), so
 * whatever follows stays SMTP. */
#ifndef HW_PROXY_H
#define HW_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "hw_limits.h"
#include "io.h"

struct proxy_client {
        int version;               /* 1 or 2 */
        bool use_peer;             /* no client address (LOCAL, UNKNOWN, ...): the peer stays */
        const char *what;          /* TCP4, TCP6, LOCAL, UNKNOWN, UNSPEC, UDP, unix */
        char ip[HW_IP_MAX];
        unsigned port;
};

/* Reads one header within the io's deadline. 0 and *client, or -errno
 * with why saying what was wrong, for the log:
 *   -ENODATA    the proxy closed (or reset) before its first byte: a
 *               health check
 *   -EPROTO     it closed or reset in the middle of the header
 *   -EINVAL     not a PROXY header, or a malformed one
 *   -EMSGSIZE   a v2 header over HW_PROXY_V2_MAX bytes
 *   -ETIME, -ETIMEDOUT  the header was not complete in time
 *   other -errno from reading. */
int proxy_read(struct io *io, struct proxy_client *client, char *why, size_t why_size);

#endif
