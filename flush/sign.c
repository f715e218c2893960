/* timestamp, token and signature: what a Mailgun consumer checks, so that
 * its HMAC(key, timestamp + token) comparison accepts our POSTs; and the
 * Standard Webhooks signature, which covers the body as well. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "sign.h"

static void sign_hex(const unsigned char *in, size_t len, char *out)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 0xf];
        }
        out[2 * len] = '\0';
}

int sign_hmac_hex(const char *key, size_t key_len, const void *data, size_t len,
                  char out[SIGN_SIGNATURE_LEN + 1])
{
        unsigned char digest[SIGN_SIGNATURE_LEN / 2];

        if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, key_len, data, len, digest) < 0)
                return -EIO;
        sign_hex(digest, sizeof(digest), out);
        return 0;
}

int sign_random(void *buf, size_t len)
{
        size_t done = 0;

        while (done < len) {
                ssize_t n = getrandom((char *)buf + done, len - done, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t)n;
        }
        return 0;
}

int sign_make(struct sign_fields *out, int64_t now_sec, const char *key, size_t key_len)
{
        unsigned char raw[SIGN_TOKEN_LEN / 2];
        char data[sizeof(out->timestamp) + SIGN_TOKEN_LEN];
        int r;

        snprintf(out->timestamp, sizeof(out->timestamp), "%" PRId64, now_sec);
        r = sign_random(raw, sizeof(raw));
        if (r < 0)
                return r;
        sign_hex(raw, sizeof(raw), out->token);
        out->signature[0] = '\0';
        if (key_len == 0)
                return 0;
        r = snprintf(data, sizeof(data), "%s%s", out->timestamp, out->token);
        return sign_hmac_hex(key, key_len, data, (size_t)r, out->signature);
}

/* Bytes of the body read per call of the Standard Webhooks pre-pass. */
#define SIGN_READ_CHUNK 32768

int sign_standard_make(struct sign_standard *out, const unsigned char *key, size_t key_len,
                       const char *id, int64_t now_sec,
                       ssize_t (*read_body)(void *ctx, char *buf, size_t len), void *ctx)
{
        char buf[SIGN_READ_CHUNK];
        unsigned char digest[32];
        gnutls_hmac_hd_t h;
        int n, r = 0;

        n = snprintf(out->timestamp, sizeof(out->timestamp), "%" PRId64, now_sec);
        if (gnutls_hmac_init(&h, GNUTLS_MAC_SHA256, key, key_len) < 0)
                return -EIO;
        if (gnutls_hmac(h, id, strlen(id)) < 0 || gnutls_hmac(h, ".", 1) < 0 ||
            gnutls_hmac(h, out->timestamp, (size_t)n) < 0 || gnutls_hmac(h, ".", 1) < 0)
                r = -EIO;
        while (r == 0) {
                ssize_t got = read_body(ctx, buf, sizeof(buf));

                if (got <= 0) {
                        r = (int)got;
                        break;
                }
                if (gnutls_hmac(h, buf, (size_t)got) < 0)
                        r = -EIO;
        }
        gnutls_hmac_deinit(h, digest);
        if (r < 0)
                return r;
        memcpy(out->signature, SIGN_STANDARD_PREFIX, sizeof(SIGN_STANDARD_PREFIX) - 1);
        base64_encode(digest, sizeof(digest), out->signature + sizeof(SIGN_STANDARD_PREFIX) - 1);
        return 0;
}
