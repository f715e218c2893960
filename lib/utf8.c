/* UTF-8 validation and repair.
 *
 * Well-formed sequences are those of RFC 3629 / Unicode table 3-7. When a
 * sequence is broken, the replacement follows the Unicode "maximal subpart"
 * practice (also what the WHATWG decoder does): the longest prefix that
 * could still have begun a valid sequence becomes one U+FFFD, and decoding
 * resumes at the byte that broke it. A lone invalid byte (C0, C1, F5..FF, a
 * stray continuation byte) is one U+FFFD by itself. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* Length of the well-formed sequence at p (1..4), or minus the length of
 * the maximal subpart to replace (-1..-3). n >= 1. */
static inline int utf8_seq(const unsigned char *p, size_t n)
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

bool utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;

        while (i < len) {
                int k;

                if (p[i] < 0x80) {
                        i++;
                        continue;
                }
                k = utf8_seq(p + i, len - i);
                if (k < 0)
                        return false;
                i += (size_t)k;
        }
        return true;
}

char *utf8_sanitize(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        char *out, *o;
        size_t i = 0;

        /* Worst case: every byte becomes the three bytes of U+FFFD. */
        if (len > (SIZE_MAX - 1) / 3) {
                errno = ENOMEM;
                return NULL;
        }
        out = malloc(len * 3 + 1);
        if (!out)
                return NULL;
        o = out;
        while (i < len) {
                size_t run = i;
                int k;

                /* Most header text is ASCII: copy runs of it at once. */
                while (run < len && p[run] != 0 && p[run] < 0x80)
                        run++;
                if (run > i) {
                        memcpy(o, p + i, run - i);
                        o += run - i;
                        i = run;
                        continue;
                }
                k = p[i] ? utf8_seq(p + i, len - i) : -1;
                if (k > 0) {
                        memcpy(o, p + i, (size_t)k);
                        o += k;
                        i += (size_t)k;
                } else {
                        *o++ = (char)0xef;
                        *o++ = (char)0xbf;
                        *o++ = (char)0xbd;
                        i += (size_t)-k;
                }
        }
        *o = '\0';
        return out;
}
