/* libFuzzer target: what a webhook's answer and a secret setting bring in.
 *
 * Checked: outcome_retry_after on any text stays within it and either
 * refuses it or gives a wait no longer than its cap; digits alone (spaces
 * around allowed) give their number of seconds, capped. base64_decode on any text:
 * what it accepts encodes back to that very text (one spelling per value),
 * and base64_encode of any bytes decodes back to them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "fuzz.h"
#include "outcome.h"

#define FUZZ_WAIT_CAP_MS (UINT64_C(10) * 366 * 86400 * 1000)

static void fuzz_retry_after(const uint8_t *data, size_t size)
{
        char *text = malloc(size + 1);
        uint64_t wait = 0;
        size_t lead, digits;
        int r;

        FUZZ_CHECK(text);
        memcpy(text, data, size);
        text[size] = '\0';
        r = outcome_retry_after(text, 1700000000000, &wait);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        if (r == 0)
                FUZZ_CHECK(wait <= FUZZ_WAIT_CAP_MS);
        lead = strspn(text, " \t");
        digits = strspn(text + lead, "0123456789");
        if (digits > 0 && digits <= 9 && text[lead + digits + strspn(text + lead + digits, " \t")] == '\0') {
                FUZZ_CHECK(r == 0);
                uint64_t s = strtoull(text + lead, NULL, 10) * 1000;

                FUZZ_CHECK(wait == (s < FUZZ_WAIT_CAP_MS ? s : FUZZ_WAIT_CAP_MS));
        }
        free(text);
}

static void fuzz_base64(const uint8_t *data, size_t size)
{
        size_t cap = size / 4 * 3 + 3;
        unsigned char *bytes = malloc(cap);
        char *text = malloc(BASE64_ENCODED_LEN(size) + 1);
        ssize_t n;

        FUZZ_CHECK(bytes && text);
        n = base64_decode((const char *)data, size, bytes, cap);
        FUZZ_CHECK(n >= 0 || n == -EINVAL);
        if (n >= 0) {
                FUZZ_CHECK(base64_encode(bytes, (size_t)n, text) == size);
                FUZZ_CHECK(memcmp(text, data, size) == 0);
        }
        FUZZ_CHECK(base64_encode(data, size, text) == BASE64_ENCODED_LEN(size));
        free(bytes);
        bytes = malloc(size + 3);
        FUZZ_CHECK(bytes);
        n = base64_decode(text, BASE64_ENCODED_LEN(size), bytes, size + 3);
        FUZZ_CHECK(n == (ssize_t)size && memcmp(bytes, data, size) == 0);
        free(bytes);
        free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fuzz_retry_after(data, size);
        fuzz_base64(data, size);
        return 0;
}
