/* PROXY protocol v2 header parsing; see proxy_parse.h. */
#include "proxy_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t proxy_v2_signature[12] = {
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};

enum proxy_v2_command { PROXY_CMD_LOCAL = 0x0, PROXY_CMD_PROXY = 0x1 };
enum proxy_v2_family { PROXY_AF_UNSPEC = 0x0, PROXY_AF_INET = 0x1, PROXY_AF_INET6 = 0x2, PROXY_AF_UNIX = 0x3 };
enum proxy_v2_transport { PROXY_TRANSPORT_UNSPEC = 0x0, PROXY_TRANSPORT_STREAM = 0x1, PROXY_TRANSPORT_DGRAM = 0x2 };

#define PROXY_TLV_CRC32C 0x03
#define PROXY_TLV_HEAD 3           /* type and 16-bit length */

/* Bytes of the address block of each family (ports included). */
static size_t proxy_v2_address_len(unsigned family)
{
        switch (family) {
        case PROXY_AF_INET:
                return 4 + 4 + 2 + 2;
        case PROXY_AF_INET6:
                return 16 + 16 + 2 + 2;
        case PROXY_AF_UNIX:
                return 108 + 108;
        default:
                return 0;
        }
}

/* Whether data (len bytes) is a prefix of what (what_len bytes), or begins
 * with all of it. */
static bool proxy_prefix(const void *data, size_t len, const void *what, size_t what_len)
{
        return memcmp(data, what, len < what_len ? len : what_len) == 0;
}

enum proxy_version proxy_detect(const void *data, size_t len)
{
        size_t v1_len = strlen(PROXY_V1_PREFIX);

        if (proxy_prefix(data, len, proxy_v2_signature, sizeof(proxy_v2_signature)))
                return len >= sizeof(proxy_v2_signature) ? PROXY_V2 : PROXY_PARTIAL;
        if (proxy_prefix(data, len, PROXY_V1_PREFIX, v1_len))
                return len >= v1_len ? PROXY_V1 : PROXY_PARTIAL;
        return PROXY_NONE;
}

int proxy_v2_length(const uint8_t *head, size_t max, size_t *total, const char **why)
{
        unsigned version = head[12] >> 4, command = head[12] & 0x0f;
        unsigned family = head[13] >> 4, transport = head[13] & 0x0f;

        if (memcmp(head, proxy_v2_signature, sizeof(proxy_v2_signature)) != 0) {
                *why = "no PROXY v2 signature";
                return -EINVAL;
        }
        if (version != 2) {
                *why = "PROXY v2 signature with another version";
                return -EINVAL;
        }
        if (command != PROXY_CMD_LOCAL && command != PROXY_CMD_PROXY) {
                *why = "PROXY v2 header with an unknown command";
                return -EINVAL;
        }
        if (family > PROXY_AF_UNIX || transport > PROXY_TRANSPORT_DGRAM) {
                *why = "PROXY v2 header with an unknown address family or transport";
                return -EINVAL;
        }
        *total = PROXY_V2_FIXED + ((size_t)head[14] << 8 | head[15]);
        if (*total > max) {
                *why = "PROXY v2 header longer than the limit";
                return -EMSGSIZE;
        }
        return 0;
}

/* CRC-32C (Castagnoli, reflected), bit by bit: headers are short. */
static uint32_t proxy_crc32c(uint32_t crc, const uint8_t *p, size_t len)
{
        while (len--) {
                crc ^= *p++;
                for (int k = 0; k < 8; k++)
                        crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
        }
        return crc;
}

/* The header's CRC-32C with the 4 checksum bytes at value taken as zero. */
static bool proxy_v2_crc_ok(const uint8_t *hdr, size_t len, size_t value)
{
        static const uint8_t zero[4];
        uint32_t want = (uint32_t)hdr[value] << 24 | (uint32_t)hdr[value + 1] << 16 |
                        (uint32_t)hdr[value + 2] << 8 | hdr[value + 3];
        uint32_t crc = 0xffffffffu;

        crc = proxy_crc32c(crc, hdr, value);
        crc = proxy_crc32c(crc, zero, sizeof(zero));
        crc = proxy_crc32c(crc, hdr + value + 4, len - value - 4);
        return (crc ^ 0xffffffffu) == want;
}

/* The TLVs from pos to len: each must fit, and a CRC32C must match. */
static int proxy_v2_tlvs(const uint8_t *hdr, size_t pos, size_t len, const char **why)
{
        while (pos < len) {
                size_t value_len;

                if (len - pos < PROXY_TLV_HEAD) {
                        *why = "PROXY v2 TLV cut short by the header's end";
                        return -EINVAL;
                }
                value_len = (size_t)hdr[pos + 1] << 8 | hdr[pos + 2];
                if (value_len > len - pos - PROXY_TLV_HEAD) {
                        *why = "PROXY v2 TLV longer than the rest of the header";
                        return -EINVAL;
                }
                if (hdr[pos] == PROXY_TLV_CRC32C) {
                        if (value_len != 4) {
                                *why = "PROXY v2 CRC32C TLV not 4 bytes long";
                                return -EINVAL;
                        }
                        if (!proxy_v2_crc_ok(hdr, len, pos + PROXY_TLV_HEAD)) {
                                *why = "PROXY v2 header with a wrong CRC32C";
                                return -EINVAL;
                        }
                }
                pos += PROXY_TLV_HEAD + value_len;
        }
        return 0;
}

/* The source address of an INET or INET6 block as text and its port. */
static void proxy_v2_source(const uint8_t *addr, unsigned family, struct proxy_v2 *out)
{
        const uint8_t *port;

        if (family == PROXY_AF_INET) {
                inet_ntop(AF_INET, addr, out->ip, sizeof(out->ip));
                port = addr + 8;
                out->what = "TCP4";
        } else {
                /* Shown as a socket's peer is (receive/main.c): IPv4-mapped
                 * as IPv4, so limits and logs see one form. */
                if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr))
                        inet_ntop(AF_INET, addr + 12, out->ip, sizeof(out->ip));
                else
                        inet_ntop(AF_INET6, addr, out->ip, sizeof(out->ip));
                port = addr + 32;
                out->what = "TCP6";
        }
        out->port = (unsigned)port[0] << 8 | port[1];
}

int proxy_v2_parse(const uint8_t *hdr, size_t len, struct proxy_v2 *out, const char **why)
{
        unsigned command, family, transport;
        size_t total, addr_len;
        int r;

        memset(out, 0, sizeof(*out));
        out->use_peer = true;
        if (len < PROXY_V2_FIXED) {
                *why = "PROXY v2 header shorter than 16 bytes";
                return -EINVAL;
        }
        r = proxy_v2_length(hdr, SIZE_MAX, &total, why);
        if (r < 0)
                return r;
        if (total != len) {
                *why = "PROXY v2 header of another length than its length field says";
                return -EINVAL;
        }
        command = hdr[12] & 0x0f;
        family = hdr[13] >> 4;
        transport = hdr[13] & 0x0f;
        /* LOCAL: the proxy's own connection; what follows is ignored, as
         * the format says, since its layout is not known. */
        if (command == PROXY_CMD_LOCAL) {
                out->what = "LOCAL";
                return 0;
        }
        if (family == PROXY_AF_UNSPEC || transport == PROXY_TRANSPORT_UNSPEC) {
                out->what = "UNSPEC";
                return 0;
        }
        addr_len = proxy_v2_address_len(family);
        if (len - PROXY_V2_FIXED < addr_len) {
                *why = "PROXY v2 address block shorter than its family needs";
                return -EINVAL;
        }
        r = proxy_v2_tlvs(hdr, PROXY_V2_FIXED + addr_len, len, why);
        if (r < 0)
                return r;
        if (family == PROXY_AF_UNIX) {
                out->what = "unix";
                return 0;
        }
        if (transport == PROXY_TRANSPORT_DGRAM) {
                out->what = "UDP";
                return 0;
        }
        proxy_v2_source(hdr + PROXY_V2_FIXED, family, out);
        out->use_peer = false;
        return 0;
}
