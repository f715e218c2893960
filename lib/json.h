/* Header lists as JSON (the only jansson user in lib/, built as
 * lib/libhwjson.la so programs without JSON do not link jansson). */
#ifndef HW_JSON_H
#define HW_JSON_H

#include <jansson.h>

#include "header.h"

/* A JSON string of s[0..len), sanitized to UTF-8 (NUL bytes become
 * U+FFFD). New reference; NULL on ENOMEM. */
json_t *hwjson_from_bytes(const char *s, size_t len);

/* [[name, value], ...] in message order, names and values sanitized to
 * UTF-8. New reference; NULL on ENOMEM. */
json_t *hwjson_headers_array(const struct header_list *h);

/* The same as compact JSON text, malloc'd (free()); NULL on ENOMEM. */
char *hwjson_headers_dump(const struct header_list *h);

#endif
