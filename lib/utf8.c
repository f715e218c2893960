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

bool utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;

        while (i < len) {
                uint64_t w;
                int k;

                /* Eight ASCII bytes at a time (most of most mail), else
                 * straight to the first byte that is not ASCII. */
                if (len - i >= 8) {
                        uint64_t high;

                        memcpy(&w, p + i, 8);
                        high = w & UINT64_C(0x8080808080808080);
                        if (high == 0) {
                                i += 8;
                                continue;
                        }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                        i += (unsigned)__builtin_ctzll(high) / 8;
#endif
                }
                if (p[i] < 0x80) {
                        i++;
                        continue;
                }
                k = utf8_sequence(p + i, len - i);
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
                k = p[i] ? utf8_sequence(p + i, len - i) : -1;
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
