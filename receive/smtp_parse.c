/* Pure SMTP command parsers; see smtp_parse.h. */
#include "smtp_parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "utf8.h"

static const struct {
        enum smtp_cmd cmd;
        const char *verb;
} smtp_verbs[] = {
        { CMD_HELO, "HELO" },
        { CMD_EHLO, "EHLO" },
        { CMD_MAIL, "MAIL FROM:" },
        { CMD_RCPT, "RCPT TO:" },
        { CMD_DATA, "DATA" },
        { CMD_RSET, "RSET" },
        { CMD_NOOP, "NOOP" },
        { CMD_QUIT, "QUIT" },
        { CMD_VRFY, "VRFY" },
        { CMD_HELP, "HELP" },
        { CMD_STARTTLS, "STARTTLS" },
        { CMD_EXPN, "EXPN" },
        { CMD_AUTH, "AUTH" },
        { CMD_BDAT, "BDAT" },
};

enum smtp_cmd smtp_parse_command(const char *line, const char **args)
{
        for (size_t i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++) {
                size_t n = strlen(smtp_verbs[i].verb);
                const char *rest = line + n;

                if (strncasecmp(line, smtp_verbs[i].verb, n) != 0)
                        continue;
                /* A verb ends at a space, the line's end, or its own colon. */
                if (smtp_verbs[i].verb[n - 1] != ':' && *rest && *rest != ' ')
                        continue;
                while (*rest == ' ')
                        rest++;
                *args = rest;
                return smtp_verbs[i].cmd;
        }
        *args = line;
        return CMD_UNKNOWN;
}

/* RFC 5321 atext plus '.', for dot-atom local parts. */
static bool smtp_atext(unsigned char c)
{
        return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~.", c);
}

/* "[...]" with RFC 5321's dcontent inside: printable ASCII but the
 * brackets and the backslash. What it names is not looked at: mail is
 * never routed by it. */
static bool smtp_address_literal_valid(const char *literal)
{
        size_t len = strlen(literal);

        if (len < 3 || literal[0] != '[' || literal[len - 1] != ']')
                return false;
        for (size_t i = 1; i + 1 < len; i++) {
                unsigned char c = (unsigned char)literal[i];

                if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
                        return false;
        }
        return true;
}

bool smtp_address_valid(const char *addr, bool allow_utf8)
{
        const char *at = strrchr(addr, '@');
        const char *p = addr;
        size_t dots = 0;

        if (!at || at == addr || !at[1])
                return false;
        /* SMTPUTF8 allows UTF-8 (RFC 6531 3.3), not any 8-bit bytes. */
        if (allow_utf8 && !utf8_valid(addr, strlen(addr)))
                return false;
        if (*p == '"') {
                /* Quoted local part: printable ASCII, and backslash pairs
                 * whose second byte is printable ASCII too (RFC 5321
                 * quoted-pairSMTP; RFC 6531 does not widen it). */
                for (p++; p < at && *p != '"'; p++) {
                        if (*p == '\\' && p + 1 < at) {
                                p++;
                                if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                                        return false;
                        } else if ((unsigned char)*p < 0x20 || *p == 0x7f ||
                                 ((unsigned char)*p >= 0x80 && !allow_utf8))
                                return false;
                }
                if (p + 1 != at || *p != '"')
                        return false;
        } else {
                for (; p < at; p++) {
                        unsigned char c = (unsigned char)*p;

                        if (c >= 0x80 ? !allow_utf8 : !smtp_atext(c))
                                return false;
                }
        }
        p = at + 1;
        if (*p == '[')
                return smtp_address_literal_valid(p);
        for (; *p; p++) {
                unsigned char c = (unsigned char)*p;

                if (c == '.') {
                        if (p == at + 1 || p[-1] == '.')
                                return false;
                        dots++;
                } else if (c >= 0x80 ? !allow_utf8 : !(isalnum(c) || c == '-' || c == '_')) {
                        return false;
                }
        }
        /* A domain does not end with a dot (RFC 5321 4.1.2). */
        return p[-1] != '.';
}

/* MAIL FROM parameters (RFC 1870, 6152, 6531). */
static int smtp_parse_param(const char *param, size_t len, struct smtp_path *out)
{
        char buf[64];
        char *value, *end;

        if (len >= sizeof(buf))
                return -EPROTO;
        memcpy(buf, param, len);
        buf[len] = '\0';
        value = strchr(buf, '=');
        if (value)
                *value++ = '\0';
        if (strcasecmp(buf, "SIZE") == 0 && value && isdigit((unsigned char)*value)) {
                errno = 0;
                out->size = strtoull(value, &end, 10);
                if (*end)
                        return -EPROTO;
                /* Digits beyond 2^64 still declare a message too big. */
                if (errno == ERANGE)
                        out->size = UINT64_MAX;
                return 0;
        }
        if (strcasecmp(buf, "BODY") == 0 && value) {
                if (strcasecmp(value, "7BIT") == 0)
                        out->body = BODY_7BIT;
                else if (strcasecmp(value, "8BITMIME") == 0)
                        out->body = BODY_8BITMIME;
                else if (strcasecmp(value, "BINARYMIME") == 0)
                        out->body = BODY_BINARYMIME;
                else
                        return -EPROTO;
                return 0;
        }
        if (strcasecmp(buf, "SMTPUTF8") == 0 && !value) {
                out->smtputf8 = true;
                return 0;
        }
        return -EPROTO;
}

int smtp_parse_path(const char *args, bool is_sender, struct smtp_path *out)
{
        const char *start = args, *end, *params;
        size_t len;

        memset(out, 0, sizeof(*out));
        while (*start == ' ')
                start++;
        if (*start == '<') {
                start++;
                end = strchr(start, '>');
                if (!end)
                        return -EINVAL;
                params = end + 1;
        } else {
                /* Tolerated: a bare address without angle brackets. */
                end = start + strcspn(start, " ");
                params = end;
        }
        /* Source routes (<@a,@b:user@c>) are obsolete: keep the mailbox. */
        if (*start == '@') {
                const char *colon = memchr(start, ':', (size_t)(end - start));

                if (!colon)
                        return -EINVAL;
                start = colon + 1;
        }
        len = (size_t)(end - start);
        if (len > HW_ADDR_MAX)
                return -ENAMETOOLONG;
        memcpy(out->addr, start, len);
        out->addr[len] = '\0';

        while (*params) {
                size_t n;

                if (*params != ' ')
                        return -EPROTO;
                while (*params == ' ')
                        params++;
                n = strcspn(params, " ");
                if (n && (!is_sender || smtp_parse_param(params, n, out) < 0))
                        return -EPROTO;
                params += n;
        }
        if (len == 0)
                return is_sender ? 0 : -EINVAL;
        /* RFC 5321 4.5.1: RCPT TO:<Postmaster> without a domain is valid. */
        if (!is_sender && strcasecmp(out->addr, "postmaster") == 0)
                return 0;
        return smtp_address_valid(out->addr, true) ? 0 : -EINVAL;
}

int smtp_parse_bdat(const char *args, uint64_t *size, bool *last)
{
        const char *p = args;
        uint64_t v = 0;

        /* Digits only: strtoull would take a sign or leading spaces. */
        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                unsigned digit = (unsigned)(*p - '0');

                if (v > (UINT64_MAX - digit) / 10)
                        return -ERANGE;
                v = v * 10 + digit;
        }
        if (*p == '\0')
                *last = false;
        else if (strcasecmp(p, " LAST") == 0)
                *last = true;
        else
                return -EINVAL;
        *size = v;
        return 0;
}

/* Copies the next field of a PROXY line, ended by one space (or, for the
 * last field, the line's end), and steps past it. */
static int smtp_proxy_field(const char **line, char *out, size_t size, bool last)
{
        size_t n = strcspn(*line, " ");

        if (n == 0 || n >= size || (last ? (*line)[n] != '\0' : (*line)[n] != ' '))
                return -EINVAL;
        memcpy(out, *line, n);
        out[n] = '\0';
        *line += last ? n : n + 1;
        return 0;
}

/* A port: decimal, no sign, no leading zero, at most 65535. */
static int smtp_proxy_port(const char *text, unsigned *port)
{
        unsigned long v = 0;

        if (!*text || strlen(text) > 5 || (text[0] == '0' && text[1]))
                return -EINVAL;
        for (const char *p = text; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned long)(*p - '0');
        }
        if (v > 65535)
                return -EINVAL;
        *port = (unsigned)v;
        return 0;
}

int smtp_parse_proxy_v1(const char *line, char ip[HW_IP_MAX], unsigned *port)
{
        char proto[8], src[HW_IP_MAX], dst[HW_IP_MAX], sport[8], dport[8];
        unsigned char addr[16];
        unsigned ignored;
        int family;

        /* The header is at most HW_PROXY_V1_MAX bytes with its CR LF;
         * fields are separated by exactly one space. */
        if (strlen(line) > HW_PROXY_V1_MAX - 2 || strncmp(line, "PROXY ", 6) != 0)
                return -EINVAL;
        line += 6;
        /* UNKNOWN: the proxy could not tell; the rest of the line is ignored. */
        if (strncmp(line, "UNKNOWN", 7) == 0 && (line[7] == '\0' || line[7] == ' ')) {
                ip[0] = '\0';
                *port = 0;
                return 0;
        }
        if (smtp_proxy_field(&line, proto, sizeof(proto), false) < 0 ||
            smtp_proxy_field(&line, src, sizeof(src), false) < 0 ||
            smtp_proxy_field(&line, dst, sizeof(dst), false) < 0 ||
            smtp_proxy_field(&line, sport, sizeof(sport), false) < 0 ||
            smtp_proxy_field(&line, dport, sizeof(dport), true) < 0)
                return -EINVAL;
        if (strcmp(proto, "TCP4") == 0)
                family = AF_INET;
        else if (strcmp(proto, "TCP6") == 0)
                family = AF_INET6;
        else
                return -EINVAL;
        if (inet_pton(family, src, addr) != 1 || inet_pton(family, dst, addr) != 1 ||
            smtp_proxy_port(sport, port) < 0 || smtp_proxy_port(dport, &ignored) < 0)
                return -EINVAL;
        strcpy(ip, src);
        return 0;
}

void smtp_printable(char *dst, size_t size, const char *s)
{
        size_t i = 0;

        for (; s[i] && i + 1 < size; i++)
                dst[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
        dst[i] = '\0';
}
