/* PROXY protocol version 2, the binary header that HAProxy's
 * send-proxy-v2 and AWS Network Load Balancers put before the client's
 * bytes, as a pure parser: no I/O, so unit tests and fuzz_proxy call it
 * directly. Version 1 (one text line) is smtp_parse_proxy_v1, smtp_parse.h.
 *
 * The header:
 *   12 bytes  signature 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
 *    1 byte   version (high nibble, always 2) and command (0 LOCAL, 1 PROXY)
 *    1 byte   family (0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) and transport
 *             (0 UNSPEC, 1 STREAM, 2 DGRAM)
 *    2 bytes  length of the rest, big-endian
 *   then the addresses (INET 12 bytes, INET6 36, UNIX 216: source,
 *   destination, then for INET/INET6 the two ports) and TLVs (type, 16-bit
 *   length, value) to the end.
 *
 * Which client address a header gives:
 *   PROXY over TCP4/TCP6    the source address and port (IPv4-mapped IPv6
 *                           shown as IPv4, as for a socket's peer)
 *   LOCAL                   none: the proxy's own connection (a health
 *                           check); the socket's peer stays
 *   UNSPEC, UDP, unix       none: the valid combinations SMTP cannot use
 *                           fall back to UNSPEC, which the format allows;
 *                           the socket's peer stays
 *   other values            refused: the format forbids them
 * TLVs are skipped, but they must fit the header exactly; a CRC32C TLV
 * (type 0x03) is checked, as the format requires of a receiver that
 * supports it. */
#ifndef HW_PROXY_PARSE_H
#define HW_PROXY_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw_limits.h"

#define PROXY_V2_FIXED 16          /* bytes before the address block */
#define PROXY_V1_PREFIX "PROXY "

enum proxy_version {
        PROXY_NONE,                /* not a PROXY header */
        PROXY_V1,
        PROXY_V2,
        PROXY_PARTIAL,             /* too few bytes to tell, all matching so far */
};

/* Which header data begins with: "PROXY " for v1, the 12-byte signature
 * for v2. */
enum proxy_version proxy_detect(const void *data, size_t len);

/* What a v2 header says about the client. */
struct proxy_v2 {
        bool use_peer;             /* no client address: keep the socket's peer */
        const char *what;          /* "TCP4", "TCP6", "LOCAL", "UNSPEC", "UDP", "unix" */
        char ip[HW_IP_MAX];        /* the client, unless use_peer; "" then */
        unsigned port;             /* 0 when use_peer */
};

/* From the first PROXY_V2_FIXED bytes: the whole header's length in
 * *total. -EINVAL when they are not a v2 header the format allows
 * (signature, version, command, family, transport), -EMSGSIZE when the
 * header is longer than max; *why says which, for the log. */
int proxy_v2_length(const uint8_t *head, size_t max, size_t *total, const char **why);

/* Parses one whole header of len bytes (as proxy_v2_length gave).
 * 0 and *out; -EINVAL with *why when it is malformed. */
int proxy_v2_parse(const uint8_t *hdr, size_t len, struct proxy_v2 *out, const char **why);

#endif
