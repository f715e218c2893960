/* Header lists as JSON, Mailgun's "message-headers" shape:
 * [["Received", "from ..."], ["Subject", "..."]] in message order. JSON
 * strings must be UTF-8, so names and values go through utf8_sanitize
 * (raw 8-bit header bytes become U+FFFD); RFC 2047 words are not decoded
 * here, as Mailgun leaves them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "utf8.h"

json_t *hwjson_from_bytes(const char *s, size_t len)
{
        char *clean = utf8_sanitize(s, len);
        json_t *j;

        if (!clean)
                return NULL;
        j = json_string_nocheck(clean);
        free(clean);
        return j;
}

json_t *hwjson_headers_array(const struct header_list *h)
{
        json_t *arr = json_array();

        if (!arr)
                return NULL;
        for (size_t i = 0; i < h->count; i++) {
                const struct header_field *f = &h->fields[i];
                json_t *pair = json_array();
                json_t *name = hwjson_from_bytes(f->name, strlen(f->name));
                json_t *value = hwjson_from_bytes(f->value, f->value_len);
                int r = -1;

                /* json_array_append (not _new) leaves our references
                 * alone, so one cleanup serves success and failure. */
                if (pair && name && value && json_array_append(pair, name) == 0 &&
                    json_array_append(pair, value) == 0)
                        r = json_array_append(arr, pair);
                json_decref(name);
                json_decref(value);
                json_decref(pair);
                if (r < 0) {
                        json_decref(arr);
                        return NULL;
                }
        }
        return arr;
}

char *hwjson_headers_dump(const struct header_list *h)
{
        json_t *arr = hwjson_headers_array(h);
        char *text;

        if (!arr)
                return NULL;
        text = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        return text;
}
