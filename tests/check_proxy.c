/* Unit tests of receive/proxy_parse.c (the PROXY v2 parser: every command,
 * family and transport, TLVs, CRC32C, lengths) and receive/proxy.c (the
 * header read from a session's io: exactly its bytes, whatever the
 * chunking, and each way it can fail). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "io.h"
#include "proxy.h"
#include "proxy_parse.h"
#include "unit.h"

static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 'Q', 'U', 'I', 'T', 0x0a };

/* 203.0.113.9:56324 -> 198.51.100.1:25 */
static const uint8_t addr4[12] = { 203, 0, 113, 9, 198, 51, 100, 1, 0xdc, 0x04, 0x00, 0x19 };
/* [2001:db8:1::9]:40001 -> [2001:db8::25]:25 */
static const uint8_t addr6[36] = {
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25,
        0x9c, 0x41, 0x00, 0x19,
};

/* A header: signature, the two command bytes, the length of body, body. */
static size_t build(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *body, size_t len)
{
        memcpy(out, sig, sizeof(sig));
        out[12] = ver_cmd;
        out[13] = fam;
        out[14] = (uint8_t)(len >> 8);
        out[15] = (uint8_t)len;
        if (len)
                memcpy(out + PROXY_V2_FIXED, body, len);
        return PROXY_V2_FIXED + len;
}

static int parse(const uint8_t *hdr, size_t len, struct proxy_v2 *out)
{
        const char *why = NULL;
        int r = proxy_v2_parse(hdr, len, out, &why);

        if (r < 0)
                ck_assert_ptr_nonnull(why);
        return r;
}

START_TEST(test_detect)
{
        uint8_t v2[16];

        build(v2, 0x21, 0x11, NULL, 0);
        ck_assert_int_eq(proxy_detect("PROXY TCP4 ", 11), PROXY_V1);
        ck_assert_int_eq(proxy_detect("PROXY ", 6), PROXY_V1);
        ck_assert_int_eq(proxy_detect(v2, 16), PROXY_V2);
        ck_assert_int_eq(proxy_detect(v2, 12), PROXY_V2);
        /* Too short to tell. */
        ck_assert_int_eq(proxy_detect("", 0), PROXY_PARTIAL);
        ck_assert_int_eq(proxy_detect("PRO", 3), PROXY_PARTIAL);
        ck_assert_int_eq(proxy_detect(v2, 5), PROXY_PARTIAL);
        ck_assert_int_eq(proxy_detect(v2, 11), PROXY_PARTIAL);
        /* SMTP, and near misses. */
        ck_assert_int_eq(proxy_detect("EHLO x\r\n", 8), PROXY_NONE);
        ck_assert_int_eq(proxy_detect("PROXYTCP4", 9), PROXY_NONE);
        ck_assert_int_eq(proxy_detect("proxy TCP4", 10), PROXY_NONE);
        ck_assert_int_eq(proxy_detect("\r\n\r\nQUIT\r\n", 10), PROXY_NONE);
        ck_assert_int_eq(proxy_detect("\r\n", 2), PROXY_PARTIAL);
}
END_TEST

START_TEST(test_length)
{
        uint8_t h[16];
        const char *why;
        size_t total = 0;

        build(h, 0x21, 0x11, NULL, 0);
        h[14] = 0x01;
        h[15] = 0x02;
        ck_assert_int_eq(proxy_v2_length(h, HW_PROXY_V2_MAX, &total, &why), 0);
        ck_assert_uint_eq(total, 16 + 258);
        /* The limit is the whole header's length, inclusive. */
        ck_assert_int_eq(proxy_v2_length(h, 274, &total, &why), 0);
        ck_assert_int_eq(proxy_v2_length(h, 273, &total, &why), -EMSGSIZE);
        ck_assert_uint_eq(total, 274);
        h[14] = h[15] = 0xff;
        ck_assert_int_eq(proxy_v2_length(h, HW_PROXY_V2_MAX, &total, &why), -EMSGSIZE);
        ck_assert_uint_eq(total, 16 + 65535);
        h[14] = h[15] = 0;
        /* Version 2 only, commands LOCAL and PROXY only. */
        for (unsigned v = 0; v < 16; v++)
                for (unsigned c = 0; c < 16; c++) {
                        h[12] = (uint8_t)(v << 4 | c);
                        ck_assert_int_eq(proxy_v2_length(h, HW_PROXY_V2_MAX, &total, &why),
                                         v == 2 && c <= 1 ? 0 : -EINVAL);
                }
        h[12] = 0x21;
        /* Families UNSPEC, INET, INET6, UNIX; transports UNSPEC, STREAM, DGRAM. */
        for (unsigned f = 0; f < 16; f++)
                for (unsigned t = 0; t < 16; t++) {
                        h[13] = (uint8_t)(f << 4 | t);
                        ck_assert_int_eq(proxy_v2_length(h, HW_PROXY_V2_MAX, &total, &why),
                                         f <= 3 && t <= 2 ? 0 : -EINVAL);
                }
        h[13] = 0x11;
        /* Every byte of the signature counts, the NUL included. */
        for (size_t i = 0; i < sizeof(sig); i++) {
                h[i] ^= 0x20;
                ck_assert_int_eq(proxy_v2_length(h, HW_PROXY_V2_MAX, &total, &why), -EINVAL);
                ck_assert_str_eq(why, "no PROXY v2 signature");
                h[i] ^= 0x20;
        }
}
END_TEST

START_TEST(test_tcp)
{
        uint8_t h[64], mapped[36];
        struct proxy_v2 out;
        size_t n;

        n = build(h, 0x21, 0x11, addr4, sizeof(addr4));
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert(!out.use_peer);
        ck_assert_str_eq(out.what, "TCP4");
        ck_assert_str_eq(out.ip, "203.0.113.9");
        ck_assert_uint_eq(out.port, 56324);

        n = build(h, 0x21, 0x21, addr6, sizeof(addr6));
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert(!out.use_peer);
        ck_assert_str_eq(out.what, "TCP6");
        ck_assert_str_eq(out.ip, "2001:db8:1::9");
        ck_assert_uint_eq(out.port, 40001);

        /* IPv4-mapped IPv6 comes out as IPv4, as a socket's peer does. */
        memset(mapped, 0, sizeof(mapped));
        mapped[10] = mapped[11] = 0xff;
        memcpy(mapped + 12, addr4, 4);
        mapped[32] = 0x00;
        mapped[33] = 0x01;
        n = build(h, 0x21, 0x21, mapped, sizeof(mapped));
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert_str_eq(out.ip, "203.0.113.9");
        ck_assert_uint_eq(out.port, 1);
        ck_assert_str_eq(out.what, "TCP6");
}
END_TEST

START_TEST(test_no_client_address)
{
        uint8_t h[16 + 216 + 8], unix_addr[216] = "/run/client.sock";
        struct proxy_v2 out;
        size_t n;

        /* LOCAL: no address, with or without address bytes after it, and
         * whatever the family byte says. */
        n = build(h, 0x20, 0x00, NULL, 0);
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert(out.use_peer);
        ck_assert_str_eq(out.what, "LOCAL");
        ck_assert_str_eq(out.ip, "");
        ck_assert_uint_eq(out.port, 0);
        n = build(h, 0x20, 0x11, addr4, sizeof(addr4));
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert(out.use_peer);
        ck_assert_str_eq(out.what, "LOCAL");
        n = build(h, 0x20, 0x21, addr4, 3);   /* too short for INET6: ignored */
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert_str_eq(out.what, "LOCAL");

        /* PROXY with UNSPEC family or transport: the address is ignored. */
        n = build(h, 0x21, 0x00, NULL, 0);
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert(out.use_peer);
        ck_assert_str_eq(out.what, "UNSPEC");
        n = build(h, 0x21, 0x10, addr4, sizeof(addr4));
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert(out.use_peer);
        ck_assert_str_eq(out.what, "UNSPEC");
        n = build(h, 0x21, 0x01, addr4, 5);
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert_str_eq(out.what, "UNSPEC");

        /* UDP over IPv4 and IPv6: not an SMTP client, falls back to UNSPEC. */
        n = build(h, 0x21, 0x12, addr4, sizeof(addr4));
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert(out.use_peer);
        ck_assert_str_eq(out.what, "UDP");
        ck_assert_str_eq(out.ip, "");
        n = build(h, 0x21, 0x22, addr6, sizeof(addr6));
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert(out.use_peer);
        ck_assert_str_eq(out.what, "UDP");

        /* Unix stream and datagram sockets: no IP address. */
        n = build(h, 0x21, 0x31, unix_addr, sizeof(unix_addr));
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert(out.use_peer);
        ck_assert_str_eq(out.what, "unix");
        n = build(h, 0x21, 0x32, unix_addr, sizeof(unix_addr));
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert(out.use_peer);
        ck_assert_str_eq(out.what, "unix");
}
END_TEST

START_TEST(test_short_address)
{
        uint8_t h[16 + 216], body[216] = { 0 };
        struct proxy_v2 out;
        const uint8_t fams[] = { 0x11, 0x12, 0x21, 0x22, 0x31, 0x32 };
        const size_t need[] = { 12, 12, 36, 36, 216, 216 };

        for (size_t i = 0; i < sizeof(fams); i++) {
                size_t n = build(h, 0x21, fams[i], body, need[i] - 1);

                ck_assert_int_eq(parse(h, n, &out), -EINVAL);
                ck_assert(out.use_peer);
                n = build(h, 0x21, fams[i], body, need[i]);
                ck_assert_int_eq(parse(h, n, &out), 0);
        }
}
END_TEST

/* The TCP4 addresses followed by tlvs. */
static size_t build_tlvs(uint8_t *h, const void *tlvs, size_t len)
{
        uint8_t body[256];

        memcpy(body, addr4, sizeof(addr4));
        memcpy(body + sizeof(addr4), tlvs, len);
        return build(h, 0x21, 0x11, body, sizeof(addr4) + len);
}

START_TEST(test_tlvs)
{
        /* AWS's VPC endpoint id, an empty NOOP, a unique id. */
        static const uint8_t good[] = {
                0xea, 0x00, 0x05, 0x01, 'v', 'p', 'c', 'e',
                0x04, 0x00, 0x00,
                0x05, 0x00, 0x02, 'i', 'd',
        };
        uint8_t h[300], bad[sizeof(good) + 2];
        struct proxy_v2 out;
        size_t n;

        n = build_tlvs(h, good, sizeof(good));
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert_str_eq(out.ip, "203.0.113.9");
        /* A value one byte longer than the header has. */
        memcpy(bad, good, sizeof(good));
        bad[sizeof(good) - 3] = 0x03;
        n = build_tlvs(h, bad, sizeof(good));
        ck_assert_int_eq(parse(h, n, &out), -EINVAL);
        ck_assert(out.use_peer);
        /* One or two bytes after the last TLV: a TLV head cut short. */
        bad[sizeof(good) - 3] = 0x02;
        bad[sizeof(good)] = 0x04;
        bad[sizeof(good) + 1] = 0x00;
        n = build_tlvs(h, bad, sizeof(good) + 1);
        ck_assert_int_eq(parse(h, n, &out), -EINVAL);
        n = build_tlvs(h, bad, sizeof(good) + 2);
        ck_assert_int_eq(parse(h, n, &out), -EINVAL);
        /* A value length of 65535 in a short header. */
        n = build_tlvs(h, (const uint8_t[]){ 0x04, 0xff, 0xff, 0 }, 4);
        ck_assert_int_eq(parse(h, n, &out), -EINVAL);
}
END_TEST

/* CRC-32C of the header with the checksum's value bytes zero (RFC 4960
 * appendix B); the test's own, bit by bit like the code under test but
 * checked against the standard check value below. */
static uint32_t crc32c(const uint8_t *p, size_t len)
{
        uint32_t crc = 0xffffffffu;

        while (len--) {
                crc ^= *p++;
                for (int k = 0; k < 8; k++)
                        crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
        }
        return ~crc;
}

START_TEST(test_crc32c)
{
        uint8_t h[64];
        struct proxy_v2 out;
        uint32_t crc;
        size_t n;

        /* The standard check value of CRC-32C. */
        ck_assert_uint_eq(crc32c((const uint8_t *)"123456789", 9), 0xe3069283u);
        n = build_tlvs(h, (const uint8_t[]){ 0x04, 0x00, 0x01, 'x', 0x03, 0x00, 0x04, 0, 0, 0, 0 }, 11);
        crc = crc32c(h, n);
        h[n - 4] = (uint8_t)(crc >> 24);
        h[n - 3] = (uint8_t)(crc >> 16);
        h[n - 2] = (uint8_t)(crc >> 8);
        h[n - 1] = (uint8_t)crc;
        ck_assert_int_eq(parse(h, n, &out), 0);
        ck_assert_str_eq(out.ip, "203.0.113.9");
        /* Any changed bit of the header, or of the checksum, is refused. */
        for (size_t i = 16; i < n; i++) {
                /* Lengths and the checksum's type make other errors,
                 * tested apart. */
                if (i == 29 || i == 30 || i == 32 || i == 33 || i == 34)
                        continue;
                h[i] ^= 0x01;
                ck_assert_int_eq(parse(h, n, &out), -EINVAL);
                h[i] ^= 0x01;
        }
        ck_assert_int_eq(parse(h, n, &out), 0);
        /* A checksum TLV must be 4 bytes. */
        n = build_tlvs(h, (const uint8_t[]){ 0x03, 0x00, 0x03, 0, 0, 0 }, 6);
        ck_assert_int_eq(parse(h, n, &out), -EINVAL);
}
END_TEST

START_TEST(test_parse_length_mismatch)
{
        uint8_t h[64];
        struct proxy_v2 out;
        size_t n = build(h, 0x21, 0x11, addr4, sizeof(addr4));

        ck_assert_int_eq(parse(h, n - 1, &out), -EINVAL);
        ck_assert_int_eq(parse(h, n + 1, &out), -EINVAL);
        ck_assert_int_eq(parse(h, 15, &out), -EINVAL);
        ck_assert_int_eq(parse(h, 0, &out), -EINVAL);
}
END_TEST

/* A transport that gives the bytes of a buffer step bytes per read, then
 * end of input (or a timeout when at_end is -ETIMEDOUT). */
struct chunks {
        const uint8_t *data;
        size_t len, pos, step;
        int at_end;
};

static ssize_t chunks_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
        struct chunks *c = ctx;
        size_t n = c->len - c->pos;

        (void)timeout_ms;
        if (n == 0)
                return c->at_end;
        if (n > c->step)
                n = c->step;
        if (n > len)
                n = len;
        memcpy(buf, c->data + c->pos, n);
        c->pos += n;
        return (ssize_t)n;
}

static int chunks_write(void *ctx, const void *buf, size_t len)
{
        (void)ctx;
        (void)buf;
        (void)len;
        return 0;
}

static struct io test_io;

/* proxy_read on data delivered step bytes at a time. */
static int read_header(const void *data, size_t len, size_t step, int at_end, struct proxy_client *client,
                       struct chunks *c)
{
        struct io_transport t = { .read = chunks_read, .write = chunks_write, .ctx = c };
        char why[256] = "";
        int r;

        *c = (struct chunks){ .data = data, .len = len, .step = step, .at_end = at_end };
        io_init(&test_io, &t, 1000);
        r = proxy_read(&test_io, client, why, sizeof(why));
        if (r < 0)
                ck_assert_msg(why[0] != '\0', "no reason given for %d", r);
        return r;
}

START_TEST(test_read_exact)
{
        static const char smtp[] = "EHLO c.example.net\r\n";
        uint8_t buf[128];
        struct proxy_client client;
        struct chunks c;
        char line[64];
        size_t n = build(buf, 0x21, 0x11, addr4, sizeof(addr4)), len;

        memcpy(buf + n, smtp, strlen(smtp));
        /* Whatever the chunking, the header and nothing more is taken. */
        for (size_t step = 1; step <= n + strlen(smtp); step++) {
                ck_assert_int_eq(read_header(buf, n + strlen(smtp), step, 0, &client, &c), 0);
                ck_assert_int_eq(client.version, 2);
                ck_assert(!client.use_peer);
                ck_assert_str_eq(client.ip, "203.0.113.9");
                ck_assert_uint_eq(client.port, 56324);
                ck_assert_int_eq(io_getline(&test_io, line, sizeof(line) - 1, &len), 0);
                ck_assert_str_eq(line, "EHLO c.example.net");
        }
        /* Version 1 the same way. */
        n = (size_t)snprintf((char *)buf, sizeof(buf), "PROXY TCP6 2001:db8::1 2001:db8::2 1 25\r\n%s", smtp);
        ck_assert_int_eq(read_header(buf, n, 3, 0, &client, &c), 0);
        ck_assert_int_eq(client.version, 1);
        ck_assert_str_eq(client.what, "TCP6");
        ck_assert_str_eq(client.ip, "2001:db8::1");
        ck_assert_int_eq(io_getline(&test_io, line, sizeof(line) - 1, &len), 0);
        ck_assert_str_eq(line, "EHLO c.example.net");
        n = (size_t)snprintf((char *)buf, sizeof(buf), "PROXY UNKNOWN\r\n");
        ck_assert_int_eq(read_header(buf, n, 64, 0, &client, &c), 0);
        ck_assert(client.use_peer);
        ck_assert_str_eq(client.what, "UNKNOWN");
        /* LOCAL with address bytes: they are skipped, SMTP follows. */
        n = build(buf, 0x20, 0x11, addr4, sizeof(addr4));
        memcpy(buf + n, smtp, strlen(smtp));
        ck_assert_int_eq(read_header(buf, n + strlen(smtp), 7, 0, &client, &c), 0);
        ck_assert(client.use_peer);
        ck_assert_str_eq(client.what, "LOCAL");
        ck_assert_int_eq(io_getline(&test_io, line, sizeof(line) - 1, &len), 0);
        ck_assert_str_eq(line, "EHLO c.example.net");
}
END_TEST

START_TEST(test_read_refused)
{
        uint8_t buf[HW_PROXY_V2_MAX + 64];
        struct proxy_client client;
        struct chunks c;
        size_t n = build(buf, 0x21, 0x21, addr6, sizeof(addr6));

        /* Nothing at all: a health check. */
        ck_assert_int_eq(read_header(buf, 0, 1, 0, &client, &c), -ENODATA);
        /* Cut short anywhere, inside the fixed part or the addresses. */
        for (size_t cut = 1; cut < n; cut++)
                ck_assert_int_eq(read_header(buf, cut, 5, 0, &client, &c), -EPROTO);
        /* Late: the reads time out before the header is whole. */
        ck_assert_int_eq(read_header(buf, 20, 5, -ETIMEDOUT, &client, &c), -ETIMEDOUT);
        ck_assert_int_eq(read_header(buf, 0, 5, -ETIMEDOUT, &client, &c), -ETIMEDOUT);
        /* SMTP where the header belongs. */
        ck_assert_int_eq(read_header("EHLO x\r\n", 8, 8, 0, &client, &c), -EINVAL);
        /* Over the limit: refused from the length field, the rest unread. */
        memset(buf, 0, sizeof(buf));
        n = build(buf, 0x21, 0x11, addr4, sizeof(addr4));
        buf[14] = (uint8_t)((HW_PROXY_V2_MAX - 15) >> 8);
        buf[15] = (uint8_t)(HW_PROXY_V2_MAX - 15);
        ck_assert_int_eq(read_header(buf, sizeof(buf), 4096, 0, &client, &c), -EMSGSIZE);
        ck_assert_uint_eq(test_io.rpos, PROXY_V2_FIXED);
        /* Exactly at the limit, TLVs of NOOP padding: taken. */
        buf[14] = (uint8_t)((HW_PROXY_V2_MAX - 16) >> 8);
        buf[15] = (uint8_t)(HW_PROXY_V2_MAX - 16);
        buf[16 + 12] = 0x04;
        buf[16 + 13] = (uint8_t)((HW_PROXY_V2_MAX - 16 - 12 - 3) >> 8);
        buf[16 + 14] = (uint8_t)(HW_PROXY_V2_MAX - 16 - 12 - 3);
        ck_assert_int_eq(read_header(buf, HW_PROXY_V2_MAX, 1000, 0, &client, &c), 0);
        ck_assert_str_eq(client.ip, "203.0.113.9");
        /* Malformed v1 and v2. */
        ck_assert_int_eq(read_header("PROXY TCP4 1.2.3.4\r\n", 20, 64, 0, &client, &c), -EINVAL);
        n = build(buf, 0x22, 0x11, addr4, sizeof(addr4));
        ck_assert_int_eq(read_header(buf, n, 64, 0, &client, &c), -EINVAL);
        ck_assert_int_eq(read_header("PROXY TCP4 1.2.3.4", 18, 64, 0, &client, &c), -EPROTO);
}
END_TEST

static Suite *proxy_suite(void)
{
        Suite *s = suite_create("proxy");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_detect);
        tcase_add_test(tc, test_length);
        tcase_add_test(tc, test_tcp);
        tcase_add_test(tc, test_no_client_address);
        tcase_add_test(tc, test_short_address);
        tcase_add_test(tc, test_tlvs);
        tcase_add_test(tc, test_crc32c);
        tcase_add_test(tc, test_parse_length_mismatch);
        suite_add_tcase(s, tc);

        tc = tcase_create("read");
        tcase_add_test(tc, test_read_exact);
        tcase_add_test(tc, test_read_refused);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(proxy_suite());
}
