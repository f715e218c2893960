/* UTF-8 validation and repair for strings that must be UTF-8 (JSON, the
 * webhook's text fields). Message bytes themselves are never changed. */
#ifndef HW_UTF8_H
#define HW_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is well-formed UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). NUL bytes count as valid here. */
bool utf8_valid(const char *s, size_t len);

/* Returns a malloc'd NUL-terminated copy of s with each invalid sequence
 * (each maximal subpart, as Unicode recommends) and each NUL byte replaced
 * by U+FFFD; NULL on ENOMEM. */
char *utf8_sanitize(const char *s, size_t len);

#endif
