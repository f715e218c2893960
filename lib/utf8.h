/* UTF-8 validation and repair for strings that must be UTF-8 (JSON, the
 * webhook's text fields). Message bytes themselves are never changed. */
#ifndef HW_UTF8_H
#define HW_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the well-formed sequence at p (1..4), or minus the length of
 * the maximal subpart to replace (-1..-3): RFC 3629 / Unicode table 3-7,
 * the rule of this file and of the JSON coding in flush/payload.c. n >= 1. */
static inline int utf8_sequence(const unsigned char *p, size_t n)
{
        unsigned char b = p[0];
        unsigned char lo = 0x80, hi = 0xbf;     /* range of the second byte */
        int need;

        if (b < 0x80)
                return 1;
        if (b >= 0xc2 && b <= 0xdf)
                need = 2;
        else if (b >= 0xe0 && b <= 0xef) {
                need = 3;
                if (b == 0xe0)
                        lo = 0xa0;              /* no overlongs */
                else if (b == 0xed)
                        hi = 0x9f;              /* no surrogates */
        } else if (b >= 0xf0 && b <= 0xf4) {
                need = 4;
                if (b == 0xf0)
                        lo = 0x90;              /* no overlongs */
                else if (b == 0xf4)
                        hi = 0x8f;              /* nothing above U+10FFFF */
        } else
                return -1;

        for (int i = 1; i < need; i++) {
                if ((size_t)i >= n)
                        return -i;
                unsigned char c = p[i];
                if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xbf))
                        return -i;
        }
        return need;
}

/* Where a sequence cut by the end of s[0..len) starts (its lead is in the
 * last three bytes and it needs more than are left), or len: the place to
 * split a buffer so that a reader of pieces sees whole sequences. */
static inline size_t utf8_cut(const unsigned char *s, size_t len)
{
        for (size_t k = 1; k <= 3 && k <= len; k++) {
                unsigned char c = s[len - k];
                size_t need;

                if ((c & 0xc0) == 0x80)
                        continue;       /* a continuation byte: look further back */
                need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
                return need > k ? len - k : len;
        }
        return len;
}

/* True when s[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). NUL bytes count as valid here.
 * Sixteen bytes at a time: it is on the path of every multipart and JSON
 * delivery (flush/format_multipart.c, flush/payload.c). */
bool utf8_valid(const char *s, size_t len);

/* Returns a malloc'd NUL-terminated copy of s with each invalid sequence
 * (each maximal subpart, as Unicode recommends) and each NUL byte replaced
 * by U+FFFD; NULL on ENOMEM. */
char *utf8_sanitize(const char *s, size_t len);

#endif
