/* Pure parsers for SMTP command lines: no I/O, so tests and fuzzers call
 * them directly. */
#ifndef HW_SMTP_PARSE_H
#define HW_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw_limits.h"

enum smtp_cmd {
        CMD_UNKNOWN,
        CMD_HELO,
        CMD_EHLO,
        CMD_MAIL,
        CMD_RCPT,
        CMD_DATA,
        CMD_RSET,
        CMD_NOOP,
        CMD_QUIT,
        CMD_VRFY,
        CMD_HELP,
        CMD_STARTTLS,
        CMD_EXPN,           /* known, refused with 502 */
        CMD_AUTH,           /* known, refused with 502: nobody logs in here */
        CMD_BDAT,           /* RFC 3030 CHUNKING */
};

enum mail_body {
        BODY_7BIT,
        BODY_8BITMIME,
        BODY_BINARYMIME,    /* RFC 3030: only BDAT may carry it */
};

/* What MAIL FROM and RCPT TO carry. */
struct smtp_path {
        char addr[HW_ADDR_MAX + 1];   /* bare address; empty for <> */
        uint64_t size;                /* SIZE=, 0 when absent */
        enum mail_body body;
        bool smtputf8;
};

/* Splits "VERB args": returns the command, *args points after the verb and
 * its separating spaces ("MAIL FROM:" and "RCPT TO:" count as the verb). */
enum smtp_cmd smtp_parse_command(const char *line, const char **args);

/* Parses the argument of MAIL FROM: / RCPT TO: (after the colon).
 * Returns 0, -EINVAL for a bad address, -ENAMETOOLONG for a too long one,
 * -EPROTO for an unknown or bad parameter. <> is allowed only for senders. */
int smtp_parse_path(const char *args, bool is_sender, struct smtp_path *out);

/* Parses the argument of BDAT: "<size>" or "<size> LAST" (RFC 3030),
 * size in decimal digits only. Returns 0, -ERANGE when size does not fit
 * in 64 bits, -EINVAL otherwise. */
int smtp_parse_bdat(const char *args, uint64_t *size, bool *last);

/* Checks an address's syntax; 8-bit bytes only when utf8 is allowed. */
bool smtp_address_valid(const char *addr, bool allow_utf8);

/* Parses a PROXY protocol v1 line (without CR LF). Returns 0 and fills the
 * source address and port; -EINVAL when malformed. "PROXY UNKNOWN" gives
 * an empty ip. */
int smtp_parse_proxy_v1(const char *line, char ip[HW_IP_MAX], unsigned *port);

/* Copies s as printable ASCII (others become '?'), at most size-1 bytes. */
void smtp_printable(char *dst, size_t size, const char *s);

#endif
