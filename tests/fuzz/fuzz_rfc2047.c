/* libFuzzer target: rfc2047_decode on a header value (a NUL-terminated
 * string, as header_parse gives it).
 *
 * Checked: the result is valid UTF-8; a value with no "=?" holds no
 * encoded-word, so it comes out exactly as utf8_sanitize makes it. */
#include <string.h>

#include "fuzz.h"
#include "rfc2047.h"
#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *value = malloc(size + 1);
        char *d;
        size_t len;

        FUZZ_CHECK(value);
        memcpy(value, data, size);
        value[size] = '\0';
        len = strlen(value);

        d = rfc2047_decode(value);
        FUZZ_CHECK(d && utf8_valid(d, strlen(d)));
        if (!strstr(value, "=?")) {
                char *s = utf8_sanitize(value, len);

                FUZZ_CHECK(s && strcmp(s, d) == 0);
                free(s);
        }
        free(d);
        free(value);
        return 0;
}
