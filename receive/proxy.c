/* Reading the trusted proxy's header; see proxy.h. */
#include "proxy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proxy_parse.h"
#include "smtp_parse.h"

/* Fills buf up to n bytes from the io, *got counting what came, so that a
 * header cut short can be told from one that never started. */
static int proxy_read_exact(struct io *io, uint8_t *buf, size_t n, size_t *got)
{
        while (*got < n) {
                const char *data;
                size_t avail;
                int r = io_peek(io, &data, &avail);

                if (r < 0)
                        return r;
                if (avail > n - *got)
                        avail = n - *got;
                memcpy(buf + *got, data, avail);
                io_consume(io, avail);
                *got += avail;
        }
        return 0;
}

/* The error of a read that stopped inside the header. */
static int proxy_cut_short(int r, char *why, size_t why_size, const char *what, size_t got, size_t want)
{
        if (r == -ECONNRESET)
                r = -ENODATA;
        if (r == -ENODATA && want) {
                snprintf(why, why_size, "%s cut short: the connection closed after %zu of its %zu bytes",
                         what, got, want);
                return -EPROTO;
        }
        if (r == -ENODATA) {
                snprintf(why, why_size, "%s cut short: the connection closed after %zu bytes", what, got);
                return -EPROTO;
        }
        if ((r == -ETIME || r == -ETIMEDOUT) && got)
                snprintf(why, why_size, "%s not complete in time (%zu bytes came)", what, got);
        else if (r == -ETIME || r == -ETIMEDOUT)
                snprintf(why, why_size, "%s not complete in time", what);
        else
                snprintf(why, why_size, "reading the %s: %s", what, strerror(-r));
        return r;
}

static int proxy_read_v2(struct io *io, struct proxy_client *client, char *why, size_t why_size)
{
        uint8_t hdr[HW_PROXY_V2_MAX];
        struct proxy_v2 v2;
        const char *problem;
        size_t got = 0, total;
        int r = proxy_read_exact(io, hdr, PROXY_V2_FIXED, &got);

        if (r < 0)
                return proxy_cut_short(r, why, why_size, "PROXY v2 header", got, 0);
        r = proxy_v2_length(hdr, sizeof(hdr), &total, &problem);
        if (r == -EMSGSIZE) {
                snprintf(why, why_size, "PROXY v2 header of %zu bytes, over the limit of %d", total,
                         HW_PROXY_V2_MAX);
                return r;
        }
        if (r == 0)
                r = proxy_read_exact(io, hdr, total, &got);
        if (r == -EINVAL) {
                snprintf(why, why_size, "%s", problem);
                return r;
        }
        if (r < 0)
                return proxy_cut_short(r, why, why_size, "PROXY v2 header", got, total);
        r = proxy_v2_parse(hdr, total, &v2, &problem);
        if (r < 0) {
                snprintf(why, why_size, "%s", problem);
                return r;
        }
        client->version = 2;
        client->use_peer = v2.use_peer;
        client->what = v2.what;
        snprintf(client->ip, sizeof(client->ip), "%s", v2.ip);
        client->port = v2.port;
        return 0;
}

static int proxy_read_v1(struct io *io, struct proxy_client *client, char *why, size_t why_size)
{
        char line[HW_PROXY_V1_MAX + 1];
        size_t len;
        int r = io_getline(io, line, HW_PROXY_V1_MAX, &len);

        if (r == -E2BIG || r == -EBADMSG) {
                if (r == -E2BIG)
                        snprintf(why, why_size, "PROXY v1 line longer than %d bytes", HW_PROXY_V1_MAX);
                else
                        snprintf(why, why_size, "PROXY v1 line with a NUL byte");
                return -EINVAL;
        }
        if (r < 0)
                return proxy_cut_short(r, why, why_size, "PROXY v1 line", 0, 0);
        if (smtp_parse_proxy_v1(line, client->ip, &client->port) < 0) {
                snprintf(why, why_size, "malformed PROXY v1 line");
                return -EINVAL;
        }
        client->version = 1;
        client->use_peer = client->ip[0] == '\0';
        client->what = client->use_peer ? "UNKNOWN" : strncmp(line, "PROXY TCP4", 10) == 0 ? "TCP4" : "TCP6";
        return 0;
}

int proxy_read(struct io *io, struct proxy_client *client, char *why, size_t why_size)
{
        const char *data;
        size_t avail;
        int r = io_peek(io, &data, &avail);

        memset(client, 0, sizeof(*client));
        /* HAProxy ends a plain health check with a reset: no header was
         * meant, as when the proxy closes. */
        if (r == -ECONNRESET)
                r = -ENODATA;
        if (r == -ENODATA) {
                snprintf(why, why_size, "closed before sending a PROXY header");
                return r;
        }
        if (r == -ETIME || r == -ETIMEDOUT) {
                snprintf(why, why_size, "no PROXY header in time");
                return r;
        }
        if (r < 0) {
                snprintf(why, why_size, "reading the PROXY header: %s", strerror(-r));
                return r;
        }
        /* The first byte tells the version; the parsers check the rest. */
        if (proxy_detect(data, avail) != PROXY_NONE)
                return data[0] == 'P' ? proxy_read_v1(io, client, why, why_size)
                                      : proxy_read_v2(io, client, why, why_size);
        snprintf(why, why_size, "no PROXY header at the start (is send-proxy or send-proxy-v2 set on the proxy?)");
        return -EINVAL;
}
