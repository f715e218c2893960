/* The signatures of one POST attempt: Mailgun's fields, and Standard
 * Webhooks' headers over the body. */
#ifndef HW_FLUSH_SIGN_H
#define HW_FLUSH_SIGN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base64.h"

#define SIGN_TOKEN_LEN 50                 /* hex characters, as Mailgun sends */
#define SIGN_SIGNATURE_LEN 64             /* hex of an HMAC-SHA256 */

struct sign_fields {
        char timestamp[24];               /* Unix seconds, decimal */
        char token[SIGN_TOKEN_LEN + 1];
        char signature[SIGN_SIGNATURE_LEN + 1]; /* empty without a key */
};

/* Fresh timestamp (now_sec) and token; the signature when key is not empty. */
int sign_make(struct sign_fields *out, int64_t now_sec, const char *key, size_t key_len);

/* Fills buf with len bytes from the kernel's random source: 0 or -errno. */
int sign_random(void *buf, size_t len);

/* Lower-case hex HMAC-SHA256 of data keyed by key. */
int sign_hmac_hex(const char *key, size_t key_len, const void *data, size_t len,
                  char out[SIGN_SIGNATURE_LEN + 1]);

/* Standard Webhooks: webhook-signature is "v1," and the base64 of
 * HMAC-SHA256(key, id "." timestamp "." body), over the exact body sent. */
#define SIGN_STANDARD_PREFIX "v1,"
#define SIGN_STANDARD_LEN (sizeof(SIGN_STANDARD_PREFIX) - 1 + BASE64_ENCODED_LEN(32))

struct sign_standard {
        char timestamp[24];               /* webhook-timestamp: Unix seconds */
        char signature[SIGN_STANDARD_LEN + 1]; /* webhook-signature */
};

/* Reads the body once to its end through read_body (a count, 0 at the
 * end, or -errno, which is returned) and signs it for id at now_sec. The
 * caller rewinds the body before sending it: memory stays one buffer
 * whatever the body's size. */
int sign_standard_make(struct sign_standard *out, const unsigned char *key, size_t key_len,
                       const char *id, int64_t now_sec,
                       ssize_t (*read_body)(void *ctx, char *buf, size_t len), void *ctx);

#endif
