/* The DNS client of hw-auth.so (a stub resolver in RFC 1034's sense: it
 * asks a recursive server, never recurses itself); see auth_dns.h. Queries
 * carry a random id from a new socket each (a random source port), and an
 * answer counts only from the server asked, with that id and the same
 * question. */
#include "auth_dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DNS_HEADER 12
#define DNS_NAME_MAX 255                  /* RFC 1035 2.3.4, in wire form */
#define DNS_QUERY_MAX (DNS_HEADER + DNS_NAME_MAX + 4 + 11)
#define DNS_EDNS_PAYLOAD 1232             /* the DNS flag day 2020 size: no IP fragments */
#define DNS_TRY_MIN_MS 200                /* a try gets at least this, time allowing */

static int64_t auth_dns_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void auth_dns_add_server(struct auth_dns *d, const char *text)
{
        struct sockaddr_in *in = (struct sockaddr_in *)&d->server[d->server_count];
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&d->server[d->server_count];

        if (d->server_count >= AUTH_DNS_SERVERS_MAX)
                return;
        memset(&d->server[d->server_count], 0, sizeof(d->server[0]));
        if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
                in->sin_family = AF_INET;
                in->sin_port = htons(53);
                d->server_len[d->server_count++] = sizeof(*in);
        } else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons(53);
                d->server_len[d->server_count++] = sizeof(*in6);
        }
        /* Anything else (a scoped address, a typo) is skipped, as the C
         * library skips it. */
}

int auth_dns_init(struct auth_dns *d, const char *resolv_conf, uint64_t timeout_ms)
{
        FILE *f = fopen(resolv_conf, "re");
        char line[512];

        memset(d, 0, sizeof(*d));
        d->deadline_ms = auth_dns_now_ms() + (int64_t)timeout_ms;
        if (!f && errno != ENOENT)
                return -errno;
        while (f && fgets(line, sizeof(line), f)) {
                char *p = line, *end;

                if (strncmp(p, "nameserver", 10) != 0 || !isspace((unsigned char)p[10]))
                        continue;
                p += 10;
                while (isspace((unsigned char)*p))
                        p++;
                end = p;
                while (*end && !isspace((unsigned char)*end) && *end != '#' && *end != ';')
                        end++;
                *end = '\0';
                auth_dns_add_server(d, p);
        }
        if (f)
                fclose(f);
        /* No name server line means the local host, as in resolv.conf(5). */
        if (!d->server_count)
                auth_dns_add_server(d, "127.0.0.1");
        return 0;
}

bool auth_dns_expired(const struct auth_dns *d)
{
        return auth_dns_now_ms() >= d->deadline_ms;
}

/* The query message: header, the question, an EDNS0 OPT record. */
static int auth_dns_build(const char *name, int type, uint16_t id, unsigned char *q, size_t *len)
{
        size_t at = DNS_HEADER, name_start = at;
        const char *p = name;

        memset(q, 0, DNS_HEADER);
        q[0] = (unsigned char)(id >> 8);
        q[1] = (unsigned char)id;
        q[2] = 0x01;                      /* RD: the server recurses for us */
        q[5] = 1;                         /* QDCOUNT */
        q[11] = 1;                        /* ARCOUNT: the OPT record */
        while (*p) {
                const char *dot = strchr(p, '.');
                size_t label = dot ? (size_t)(dot - p) : strlen(p);

                if (label == 0 || label > 63 || at - name_start + label + 2 > DNS_NAME_MAX)
                        return -EINVAL;
                q[at++] = (unsigned char)label;
                memcpy(q + at, p, label);
                at += label;
                p += label;
                if (*p == '.')
                        p++;
        }
        if (at == name_start)
                return -EINVAL;
        q[at++] = 0;
        q[at++] = (unsigned char)(type >> 8);
        q[at++] = (unsigned char)type;
        q[at++] = 0;
        q[at++] = 1;                      /* class IN */
        /* OPT: root name, type 41, class = our UDP payload size. */
        q[at++] = 0;
        q[at++] = 0;
        q[at++] = 41;
        q[at++] = (unsigned char)(DNS_EDNS_PAYLOAD >> 8);
        q[at++] = (unsigned char)(DNS_EDNS_PAYLOAD & 0xff);
        memset(q + at, 0, 6);             /* TTL (extended RCODE, flags), RDLENGTH */
        at += 6;
        *len = at;
        return 0;
}

/* Whether answer is the reply to query: same id, QR set, same question
 * (names compared without case: servers may echo it in another). */
static bool auth_dns_matches(const unsigned char *query, size_t question_end,
                             const unsigned char *answer, size_t len)
{
        if (len < question_end || answer[0] != query[0] || answer[1] != query[1] || !(answer[2] & 0x80))
                return false;
        if (answer[4] != 0 || answer[5] != 1)
                return false;
        for (size_t i = DNS_HEADER; i < question_end; i++)
                if (tolower(answer[i]) != tolower(query[i]))
                        return false;
        return true;
}

/* Waits for events on fd until deadline_ms: 1 ready, -ETIMEDOUT, -errno. */
static int auth_dns_wait(int fd, short events, int64_t deadline_ms)
{
        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = events };
                int64_t left = deadline_ms - auth_dns_now_ms();
                int r;

                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r > 0)
                        return 1;
        }
}

static int auth_dns_socket(const struct sockaddr_storage *server, socklen_t len, int type)
{
        int fd = socket(server->ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *)server, len) < 0 && errno != EINPROGRESS) {
                int e = errno;

                close(fd);
                return -e;
        }
        return fd;
}

/* One UDP try: the answer's length, 0 when truncated (ask over TCP),
 * -ETIMEDOUT, -ECONNREFUSED (nobody there: try the next), -errno. */
static int auth_dns_udp(const struct sockaddr_storage *server, socklen_t server_len,
                        const unsigned char *q, size_t qlen, size_t question_end,
                        unsigned char *answer, size_t size, int64_t deadline_ms)
{
        int fd = auth_dns_socket(server, server_len, SOCK_DGRAM), r;

        if (fd < 0)
                return fd;
        r = send(fd, q, qlen, 0) < 0 ? -errno : 0;
        while (r >= 0) {
                ssize_t n;

                r = auth_dns_wait(fd, POLLIN, deadline_ms);
                if (r < 0)
                        break;
                n = recv(fd, answer, size, 0);
                if (n < 0) {
                        r = errno == EAGAIN || errno == EINTR ? 0 : -errno;
                        continue;
                }
                if (!auth_dns_matches(q, question_end, answer, (size_t)n))
                        continue;                 /* not ours: keep waiting */
                r = answer[2] & 0x02 ? 0 : (int)n;
                break;
        }
        close(fd);
        return r;
}

static int auth_dns_tcp_io(int fd, unsigned char *p, size_t len, bool sending, int64_t deadline_ms)
{
        while (len) {
                ssize_t n;
                int r = auth_dns_wait(fd, sending ? POLLOUT : POLLIN, deadline_ms);

                if (r < 0)
                        return r;
                n = sending ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ECONNRESET;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* The same question over TCP (RFC 7766), for answers UDP truncated. */
static int auth_dns_tcp(const struct sockaddr_storage *server, socklen_t server_len,
                        const unsigned char *q, size_t qlen, size_t question_end,
                        unsigned char *answer, size_t size, int64_t deadline_ms)
{
        unsigned char framed[2 + DNS_QUERY_MAX], prefix[2] = { 0, 0 };
        size_t len;
        int fd = auth_dns_socket(server, server_len, SOCK_STREAM), r;

        if (fd < 0)
                return fd;
        framed[0] = (unsigned char)(qlen >> 8);
        framed[1] = (unsigned char)qlen;
        memcpy(framed + 2, q, qlen);
        r = auth_dns_tcp_io(fd, framed, qlen + 2, true, deadline_ms);
        if (r >= 0)
                r = auth_dns_tcp_io(fd, prefix, 2, false, deadline_ms);
        len = (size_t)prefix[0] << 8 | prefix[1];
        if (r >= 0 && len > size)
                r = -EMSGSIZE;
        if (r >= 0)
                r = auth_dns_tcp_io(fd, answer, len, false, deadline_ms);
        if (r >= 0)
                r = auth_dns_matches(q, question_end, answer, len) ? (int)len : -EPROTO;
        close(fd);
        return r;
}

int auth_dns_query(struct auth_dns *d, const char *name, int type, unsigned char *answer, size_t size)
{
        unsigned char q[DNS_QUERY_MAX];
        size_t qlen, tries = 2 * d->server_count;
        uint16_t id;
        int r = -ETIMEDOUT;

        if (getrandom(&id, sizeof(id), 0) != sizeof(id))
                return -EIO;
        r = auth_dns_build(name, type, id, q, &qlen);
        if (r < 0)
                return r;
        r = -ETIMEDOUT;
        /* Two rounds over the servers; each try gets its share of the
         * time left, so a dead first server leaves time for the next. */
        for (size_t i = 0; i < tries; i++) {
                const size_t s = i % d->server_count;
                int64_t now = auth_dns_now_ms(), left = d->deadline_ms - now, share;

                if (left <= 0)
                        return -ETIMEDOUT;
                share = left / (int64_t)(tries - i);
                if (share < DNS_TRY_MIN_MS)
                        share = left < DNS_TRY_MIN_MS ? left : DNS_TRY_MIN_MS;
                d->queries++;
                r = auth_dns_udp(&d->server[s], d->server_len[s], q, qlen, qlen - 11,
                                 answer, size, now + share);
                if (r == 0)
                        r = auth_dns_tcp(&d->server[s], d->server_len[s], q, qlen, qlen - 11,
                                         answer, size, d->deadline_ms);
                if (r > 0 || r == -EMSGSIZE)
                        return r;
        }
        return r == -ECONNREFUSED || r == -ECONNRESET || r == -EPROTO ? -ETIMEDOUT : r;
}
