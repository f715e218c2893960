/* libFuzzer target: header_parse, rfc2047_decode, utf8_sanitize and the
 * header JSON on arbitrary bytes. Built and run by make fuzz, replayed
 * over corpus/fuzz_header/ by make check (see README.md).
 *
 * Checked beyond "no crash": every string that must be UTF-8 is, and the
 * JSON text parses back with as many fields as the list has. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"
#include "json.h"
#include "rfc2047.h"
#include "utf8.h"

#define FUZZ_CHECK(cond) do { if (!(cond)) { \
        fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *buf = (const char *)data;
        struct header_list h;
        char *s;

        /* The whole input as one string, too: decoding must not depend on
         * header_parse having cleaned it. */
        s = utf8_sanitize(buf, size);
        FUZZ_CHECK(s && utf8_valid(s, strlen(s)));
        free(s);

        if (header_parse(buf, size, 1000, &h) < 0)
                return 0;
        for (size_t i = 0; i < h.count; i++) {
                char *d = rfc2047_decode(h.fields[i].value);

                FUZZ_CHECK(d && utf8_valid(d, strlen(d)));
                FUZZ_CHECK(strlen(h.fields[i].value) <= h.fields[i].value_len);
                free(d);
        }
        s = hwjson_headers_dump(&h);
        FUZZ_CHECK(s);
        json_t *back = json_loads(s, 0, NULL);
        FUZZ_CHECK(back && json_array_size(back) == h.count);
        json_decref(back);
        free(s);
        header_list_free(&h);
        return 0;
}
