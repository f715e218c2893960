/* The Mailgun-style signature fields of one POST attempt. */
#ifndef HW_FLUSH_SIGN_H
#define HW_FLUSH_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SIGN_TOKEN_LEN 50                 /* hex characters, as Mailgun sends */
#define SIGN_SIGNATURE_LEN 64             /* hex of an HMAC-SHA256 */

struct sign_fields {
        char timestamp[24];               /* Unix seconds, decimal */
        char token[SIGN_TOKEN_LEN + 1];
        char signature[SIGN_SIGNATURE_LEN + 1]; /* empty without a key */
};

/* Fresh timestamp (now_sec) and token; the signature when key is not empty. */
int sign_make(struct sign_fields *out, int64_t now_sec, const char *key, size_t key_len);

/* Lower-case hex HMAC-SHA256 of data keyed by key. */
int sign_hmac_hex(const char *key, size_t key_len, const void *data, size_t len,
                  char out[SIGN_SIGNATURE_LEN + 1]);

#endif
