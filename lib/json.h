/* Header lists as JSON (the only jansson user in lib/, built as
 * lib/libhwjson.la so programs without JSON do not link jansson). */
#ifndef HW_JSON_H
#define HW_JSON_H

#include <jansson.h>

#include "header.h"

/* [[name, value], ...] in message order, names and values sanitized to
 * UTF-8. New reference; NULL on ENOMEM. */
json_t *json_headers_array(const struct header_list *h);

/* The same as compact JSON text, malloc'd (free()); NULL on ENOMEM. */
char *json_headers_dump(const struct header_list *h);

#endif
