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

/* Byte by byte, with ASCII eight bytes at a time: short strings. */
static bool utf8_valid_bytes(const unsigned char *p, size_t len)
{
        size_t i = 0;

        while (i < len) {
                uint64_t w;
                int k;

                if (len - i >= 8) {
                        memcpy(&w, p + i, 8);
                        if ((w & UINT64_C(0x8080808080808080)) == 0) {
                                i += 8;
                                continue;
                        }
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

/* Sixteen bytes at a time: GCC and clang lower this to SSE2 or NEON, or
 * to plain words where there is neither. */
typedef unsigned char utf8_v16 __attribute__((vector_size(16)));

/* Nonzero lanes where a byte of s[0..16) breaks table 3-7 given the three
 * bytes before it (s[-3..-1] must be readable). A byte must be a
 * continuation exactly when one of those three leads a sequence reaching
 * it; bytes that never appear, and the second bytes that E0, ED, F0 and F4
 * narrow, are errors wherever they are. Checking every byte this way is
 * the whole rule: no state carries from one block to the next. */
static inline utf8_v16 utf8_block_errors(const unsigned char *s)
{
        utf8_v16 x, p1, p2, p3, cont, need, never, narrow;

        memcpy(&x, s, sizeof(x));
        memcpy(&p1, s - 1, sizeof(p1));
        memcpy(&p2, s - 2, sizeof(p2));
        memcpy(&p3, s - 3, sizeof(p3));
        cont = (utf8_v16)((utf8_v16)(x & 0xc0) == 0x80);
        need = (utf8_v16)(p1 >= 0xc0) | (utf8_v16)(p2 >= 0xe0) | (utf8_v16)(p3 >= 0xf0);
        never = (utf8_v16)((utf8_v16)(x - 0xc0) < 2) | (utf8_v16)(x >= 0xf5);
        narrow = ((utf8_v16)(p1 == 0xe0) & (utf8_v16)(x < 0xa0)) |
                 ((utf8_v16)(p1 == 0xed) & (utf8_v16)(x > 0x9f)) |
                 ((utf8_v16)(p1 == 0xf0) & (utf8_v16)(x < 0x90)) |
                 ((utf8_v16)(p1 == 0xf4) & (utf8_v16)(x > 0x8f));
        return (cont ^ need) | never | narrow;
}

static inline bool utf8_v16_any(utf8_v16 v)
{
        uint64_t w[2];

        memcpy(w, &v, sizeof(w));
        return (w[0] | w[1]) != 0;
}

/* Past the blocks, a sequence cut by the end: a lead in the last three
 * bytes whose sequence would run past it. */
static bool utf8_cut_at_end(const unsigned char *p, size_t len)
{
        return (len >= 1 && p[len - 1] >= 0xc0) || (len >= 2 && p[len - 2] >= 0xe0) ||
               (len >= 3 && p[len - 3] >= 0xf0);
}

bool utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        unsigned char first[3 + 16] = { 0 };    /* the first block, after three ASCII bytes */
        utf8_v16 err;
        size_t i;

        if (len < 16 + 3)
                return utf8_valid_bytes(p, len);
        memcpy(first + 3, p, 16);
        err = utf8_block_errors(first + 3);
        for (i = 16; len - i >= 16; i += 16) {
                uint64_t a, b, c;

                /* All of s[i-3..i+16) ASCII: nothing to check (most mail). */
                memcpy(&a, p + i - 3, 8);
                memcpy(&b, p + i + 5, 8);
                memcpy(&c, p + i + 8, 8);
                if (((a | b | c) & UINT64_C(0x8080808080808080)) == 0)
                        continue;
                err |= utf8_block_errors(p + i);
                /* Give up early on text that is not UTF-8 (every 1 KiB). */
                if ((i & 1023) == 0 && utf8_v16_any(err))
                        return false;
        }
        /* The last bytes as one more block ending at len (it overlaps). */
        if (i < len)
                err |= utf8_block_errors(p + len - 16);
        return !utf8_v16_any(err) && !utf8_cut_at_end(p, len);
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
