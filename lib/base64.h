/* Base64 (RFC 4648 section 4, the standard alphabet, padded). */
#ifndef HW_BASE64_H
#define HW_BASE64_H

#include <stddef.h>
#include <sys/types.h>

/* Characters base64_encode writes for len bytes, without the NUL. */
#define BASE64_ENCODED_LEN(len) (((len) + 2) / 3 * 4)

/* Writes the encoding of len bytes and a NUL: out holds
 * BASE64_ENCODED_LEN(len) + 1. Returns the characters written. */
size_t base64_encode(const void *in, size_t len, char *out);

/* Decodes len characters into out (cap bytes): the byte count, or
 * -EINVAL for anything but padded base64 (no spaces, no line breaks),
 * -ENOBUFS when out is too small. */
/* The 6-bit value of one character of the alphabet, or -1. */
int base64_value(char c);

ssize_t base64_decode(const char *in, size_t len, unsigned char *out, size_t cap);

#endif
