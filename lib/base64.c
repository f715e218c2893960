/* See base64.h. Strict on input: a secret that is not exactly base64 is a
 * typing error to report, not something to guess around. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "base64.h"

static const char base64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const void *in, size_t len, char *out)
{
        const unsigned char *s = in;
        size_t o = 0, i = 0;

        for (; len - i >= 3; i += 3) {
                uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

                out[o++] = base64_alphabet[v >> 18];
                out[o++] = base64_alphabet[(v >> 12) & 63];
                out[o++] = base64_alphabet[(v >> 6) & 63];
                out[o++] = base64_alphabet[v & 63];
        }
        if (len - i > 0) {
                uint32_t v = (uint32_t)s[i] << 16 | (len - i > 1 ? (uint32_t)s[i + 1] << 8 : 0);

                out[o++] = base64_alphabet[v >> 18];
                out[o++] = base64_alphabet[(v >> 12) & 63];
                out[o++] = len - i > 1 ? base64_alphabet[(v >> 6) & 63] : '=';
                out[o++] = '=';
        }
        out[o] = '\0';
        return o;
}

int base64_value(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

ssize_t base64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
        size_t o = 0;

        if (len % 4 != 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                int pad = last ? (in[i + 3] == '=') + (in[i + 2] == '=' && in[i + 3] == '=') : 0;
                uint32_t v = 0;
                size_t bytes = 3 - (size_t)pad;

                for (int k = 0; k < 4 - pad; k++) {
                        int d = base64_value(in[i + k]);

                        if (d < 0)
                                return -EINVAL;
                        v |= (uint32_t)d << (18 - 6 * k);
                }
                /* Bits the padding drops must be zero: one spelling per value. */
                if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff)))
                        return -EINVAL;
                if (cap - o < bytes)
                        return -ENOBUFS;
                out[o++] = (unsigned char)(v >> 16);
                if (bytes > 1)
                        out[o++] = (unsigned char)(v >> 8);
                if (bytes > 2)
                        out[o++] = (unsigned char)v;
        }
        return (ssize_t)o;
}
