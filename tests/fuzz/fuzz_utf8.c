/* libFuzzer target: utf8_valid and utf8_sanitize against a reference
 * written here from RFC 3629's table (one byte range per position), with
 * U+FFFD per maximal subpart as Unicode recommends.
 *
 * Checked: utf8_valid agrees with the reference; utf8_sanitize gives the
 * reference's bytes exactly, which are valid UTF-8 without NUL; sanitizing
 * is idempotent and leaves valid text without NUL unchanged. */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "utf8.h"

/* The allowed range of the byte at position pos (1..3) after lead c;
 * false when c leads no sequence that long. */
static bool ref_range(unsigned char c, size_t pos, unsigned char *lo, unsigned char *hi)
{
        size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
                   c >= 0xf0 && c <= 0xf4 ? 4 : 1;

        if (pos >= n)
                return false;
        *lo = 0x80;
        *hi = 0xbf;
        if (pos == 1) {
                if (c == 0xe0)
                        *lo = 0xa0;     /* overlong */
                else if (c == 0xed)
                        *hi = 0x9f;     /* surrogates */
                else if (c == 0xf0)
                        *lo = 0x90;     /* overlong */
                else if (c == 0xf4)
                        *hi = 0x8f;     /* above U+10FFFF */
        }
        return true;
}

/* Length of the sequence at s[0..len): > 0 when whole and valid, else
 * minus the length of its maximal subpart (at least 1). */
static long ref_seq(const unsigned char *s, size_t len)
{
        unsigned char lo, hi;
        size_t k = 1;

        if (s[0] < 0x80)
                return 1;
        while (k < len && ref_range(s[0], k, &lo, &hi) && s[k] >= lo && s[k] <= hi)
                k++;
        /* Whole when no further position is expected. */
        if (k > 1 && !ref_range(s[0], k, &lo, &hi))
                return (long)k;
        return -(long)k;
}

static bool ref_valid(const unsigned char *s, size_t len)
{
        for (size_t i = 0; i < len;) {
                long k = ref_seq(s + i, len - i);

                if (k < 0)
                        return false;
                i += (size_t)k;
        }
        return true;
}

/* Into out (3 * len + 1 bytes); returns the length. */
static size_t ref_sanitize(const unsigned char *s, size_t len, char *out)
{
        size_t o = 0;

        for (size_t i = 0; i < len;) {
                long k = s[i] ? ref_seq(s + i, len - i) : -1;

                if (k > 0) {
                        memcpy(out + o, s + i, (size_t)k);
                        o += (size_t)k;
                        i += (size_t)k;
                } else {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i += (size_t)-k;
                }
        }
        out[o] = '\0';
        return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *in = (const char *)data;
        char *expect = malloc(3 * size + 1);
        char *got, *again;
        size_t len;

        FUZZ_CHECK(expect);
        FUZZ_CHECK(utf8_valid(in, size) == ref_valid(data, size));

        len = ref_sanitize(data, size, expect);
        got = utf8_sanitize(in, size);
        FUZZ_CHECK(got);
        FUZZ_CHECK(strlen(got) == len && memcmp(got, expect, len) == 0);
        FUZZ_CHECK(utf8_valid(got, len) && ref_valid((const unsigned char *)got, len));
        if (ref_valid(data, size) && !memchr(data, '\0', size))
                FUZZ_CHECK(len == size && memcmp(got, in, size) == 0);

        again = utf8_sanitize(got, len);
        FUZZ_CHECK(again && strcmp(again, got) == 0);
        free(again);
        free(got);
        free(expect);
        return 0;
}
