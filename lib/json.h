/* Header lists as JSON (the only jansson user in lib/, built as
 * lib/libhwjson.la so programs without JSON do not link jansson). */
#ifndef HW_JSON_H
#define HW_JSON_H

#include <jansson.h>

#include "auth_verdict.h"
#include "header.h"

/* A JSON string of s[0..len), sanitized to UTF-8 (NUL bytes become
 * U+FFFD). New reference; NULL on ENOMEM. */
json_t *hwjson_from_bytes(const char *s, size_t len);

/* [[name, value], ...] in message order, names and values sanitized to
 * UTF-8. New reference; NULL on ENOMEM. */
json_t *hwjson_headers_array(const struct header_list *h);

/* The same as compact JSON text, malloc'd (free()); NULL on ENOMEM. */
char *hwjson_headers_dump(const struct header_list *h);

/* A sender authentication verdict (lib/auth_verdict.h) as one object,
 * the same in the decision request and the payload:
 *   {"spf":{"result":"pass","identity":"mailfrom","value":"alice@example.net"},
 *    "dkim":[{"result":"pass","domain":"example.net","selector":"sel",
 *             "algorithm":"rsa-sha256","b":"W9zR647S","reason":""}],
 *    "dmarc":{"result":"pass","from":"example.net","policy":"reject","reason":""}}
 * identity is "mailfrom" or "helo"; policy is absent, none, quarantine or
 * reject. New reference; NULL on ENOMEM. */
json_t *hwjson_auth(const struct auth_verdict *v);

/* The same as compact JSON text, malloc'd (free()); NULL on ENOMEM. */
char *hwjson_auth_dump(const struct auth_verdict *v);

#endif
