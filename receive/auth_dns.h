/* hw-auth.so's DNS client: every DNS query of SPF, DKIM and DMARC for
 * one message goes through here, so one deadline bounds them all (the
 * libraries' own resolvers have per-query timeouts in whole seconds and
 * retries of their own). It asks the recursive resolvers named by the
 * `nameserver` lines of /etc/resolv.conf (port 53, in order), over UDP and
 * over TCP when an answer is truncated, and returns whole DNS messages.
 * A query is an exchange with no state kept between messages. */
#ifndef HW_AUTH_DNS_H
#define HW_AUTH_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define AUTH_DNS_RESOLV_CONF "/etc/resolv.conf"
#define AUTH_DNS_SERVERS_MAX 3            /* as glibc's MAXNS */
#define AUTH_DNS_PACKET_MAX 65535         /* the largest DNS message (TCP) */

struct auth_dns {
        struct sockaddr_storage server[AUTH_DNS_SERVERS_MAX];
        socklen_t server_len[AUTH_DNS_SERVERS_MAX];
        size_t server_count;
        int64_t deadline_ms;      /* CLOCK_MONOTONIC ms; no query after it */
        unsigned queries;         /* sent, for the log and the tests */
};

/* Reads the name servers (127.0.0.1 when none is named, as the C
 * library does) and sets the deadline timeout_ms from now. 0 or -errno. */
int auth_dns_init(struct auth_dns *d, const char *resolv_conf, uint64_t timeout_ms);

/* Whether the deadline has passed. */
bool auth_dns_expired(const struct auth_dns *d);

/* One question (class IN) of type about name. On success the answer's
 * whole DNS message is in answer and its length returned, whatever its
 * RCODE. -ETIMEDOUT when no server answered before the deadline (or it
 * had passed), -EINVAL for a name that cannot be asked, -EMSGSIZE when the
 * answer does not fit, other -errno for local failures. */
int auth_dns_query(struct auth_dns *d, const char *name, int type, unsigned char *answer, size_t size);

#endif
