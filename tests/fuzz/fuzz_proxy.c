/* libFuzzer target: the PROXY protocol header a trusted load balancer sends
 * first, version 1 (smtp_parse_proxy_v1) and version 2 (proxy_v2_parse),
 * and the reader that takes it from the session's io (proxy_read). All
 * three get the whole input; the reader three times, its reads giving 1
 * byte, 7 bytes, and everything at a time.
 *
 * Checked beyond "no crash":
 * - v1: the ip buffer is exactly HW_IP_MAX bytes (a sanitizer sees any
 *   write past it); on success it holds a NUL-terminated address that
 *   inet_pton accepts as IPv4 or IPv6 (or is empty for PROXY UNKNOWN, with
 *   port 0), and the port is at most 65535.
 * - v2: success only for a whole header (signature, 16 + its length field
 *   bytes exactly) that proxy_detect calls v2; a client address only for
 *   TCP over IPv4 or IPv6, and then one inet_pton reads back; none (empty,
 *   port 0) otherwise.
 * - the reader: the errors proxy.h lists, each with a reason; on success
 *   it consumed exactly one header (v2: its length; v1: up to its LF) and
 *   gives what the parsers give for those bytes, whatever the chunking. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "io.h"
#include "proxy.h"
#include "proxy_parse.h"
#include "smtp_parse.h"

static void fuzz_v1(const uint8_t *data, size_t size)
{
        char *line = malloc(size + 1);
        char *ip = malloc(HW_IP_MAX);
        unsigned char addr[16];
        unsigned port = 70000;
        int r;

        FUZZ_CHECK(line && ip);
        memcpy(line, data, size);
        line[size] = '\0';
        r = smtp_parse_proxy_v1(line, ip, &port);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        if (r == 0) {
                FUZZ_CHECK(memchr(ip, '\0', HW_IP_MAX) != NULL);
                /* Fields are separated by single spaces: no tab, no
                 * run of spaces, no space at the end. */
                FUZZ_CHECK(strncmp(line, "PROXY ", 6) == 0);
                if (ip[0] != '\0')
                        FUZZ_CHECK(!strchr(line, '\t') && !strstr(line, "  ") &&
                                   line[strlen(line) - 1] != ' ');
                if (ip[0] == '\0')
                        FUZZ_CHECK(port == 0 && strncmp(line, "PROXY UNKNOWN", 13) == 0);
                else
                        FUZZ_CHECK(port <= 65535 &&
                                   (inet_pton(AF_INET, ip, addr) == 1 ||
                                    inet_pton(AF_INET6, ip, addr) == 1));
        }
        free(ip);
        free(line);
}

/* proxy_v2_parse on exactly size bytes (a copy, so a read past them is
 * seen); 0 or -EINVAL, and out checked. */
static int fuzz_v2(const uint8_t *data, size_t size, struct proxy_v2 *out)
{
        uint8_t *hdr = malloc(size ? size : 1);
        unsigned char addr[16];
        const char *why = NULL;
        int r;

        FUZZ_CHECK(hdr);
        if (size)
                memcpy(hdr, data, size);
        r = proxy_v2_parse(hdr, size, out, &why);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        FUZZ_CHECK(memchr(out->ip, '\0', sizeof(out->ip)) != NULL);
        if (r < 0) {
                FUZZ_CHECK(why != NULL && out->use_peer);
        } else {
                FUZZ_CHECK(size >= PROXY_V2_FIXED && proxy_detect(hdr, size) == PROXY_V2);
                FUZZ_CHECK(size == PROXY_V2_FIXED + ((size_t)hdr[14] << 8 | hdr[15]));
                FUZZ_CHECK(out->what != NULL);
                if (out->use_peer) {
                        FUZZ_CHECK(out->ip[0] == '\0' && out->port == 0);
                } else if (strcmp(out->what, "TCP4") == 0) {
                        FUZZ_CHECK(hdr[12] == 0x21 && hdr[13] == 0x11 &&
                                   inet_pton(AF_INET, out->ip, addr) == 1);
                } else {
                        FUZZ_CHECK(strcmp(out->what, "TCP6") == 0 && hdr[12] == 0x21 && hdr[13] == 0x21 &&
                                   (inet_pton(AF_INET6, out->ip, addr) == 1 ||
                                    inet_pton(AF_INET, out->ip, addr) == 1));
                }
                FUZZ_CHECK(out->port <= 65535);
        }
        free(hdr);
        return r;
}

struct fuzz_chunks {
        const uint8_t *data;
        size_t len, pos, step;
};

static ssize_t fuzz_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
        struct fuzz_chunks *c = ctx;
        size_t n = c->len - c->pos;

        (void)timeout_ms;
        if (n > c->step)
                n = c->step;
        if (n > len)
                n = len;
        memcpy(buf, c->data + c->pos, n);
        c->pos += n;
        return (ssize_t)n;
}

static int fuzz_write(void *ctx, const void *buf, size_t len)
{
        (void)ctx;
        (void)buf;
        (void)len;
        return 0;
}

static void fuzz_reader(const uint8_t *data, size_t size, size_t step)
{
        static struct io io;
        struct fuzz_chunks c = { .data = data, .len = size, .step = step };
        struct io_transport t = { .read = fuzz_read, .write = fuzz_write, .ctx = &c };
        struct proxy_client client;
        char why[256] = "";
        size_t used;
        int r;

        io_init(&io, &t, 1000);
        r = proxy_read(&io, &client, why, sizeof(why));
        FUZZ_CHECK(r == 0 || r == -ENODATA || r == -EPROTO || r == -EINVAL || r == -EMSGSIZE);
        FUZZ_CHECK(memchr(why, '\0', sizeof(why)) != NULL);
        if (r < 0) {
                FUZZ_CHECK(why[0] != '\0');
                return;
        }
        used = c.pos - (io.rlen - io.rpos);
        if (client.version == 2) {
                struct proxy_v2 v2;

                FUZZ_CHECK(fuzz_v2(data, used, &v2) == 0);
                FUZZ_CHECK(v2.use_peer == client.use_peer && strcmp(v2.ip, client.ip) == 0 &&
                           v2.port == client.port && strcmp(v2.what, client.what) == 0);
        } else {
                char line[HW_PROXY_V1_MAX + 1], ip[HW_IP_MAX];
                unsigned port;
                size_t n;

                /* One line up to and with its LF, CR LF or LF stripped. */
                FUZZ_CHECK(client.version == 1 && used >= 1 && used <= HW_PROXY_V1_MAX &&
                           data[used - 1] == '\n' && memchr(data, '\n', used - 1) == NULL);
                n = used - 1;
                if (n && data[n - 1] == '\r')
                        n--;
                memcpy(line, data, n);
                line[n] = '\0';
                FUZZ_CHECK(smtp_parse_proxy_v1(line, ip, &port) == 0);
                FUZZ_CHECK(strcmp(ip, client.ip) == 0 && port == client.port &&
                           client.use_peer == (ip[0] == '\0'));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct proxy_v2 v2;

        fuzz_v1(data, size);
        (void)fuzz_v2(data, size, &v2);
        fuzz_reader(data, size, 1);
        fuzz_reader(data, size, 7);
        fuzz_reader(data, size, size ? size : 1);
        return 0;
}
