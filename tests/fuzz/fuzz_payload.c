/* libFuzzer target: the webhook's form body (payload.c) against a
 * byte-by-byte URL encoder written here from the rule in payload.c's
 * top comment (unreserved bytes as they are, every other one as %XX).
 *
 * Input: byte 0's low 3 bits say how many read-size bytes (0-7) follow
 * it; bit 3 adds a signature field; bits 4-5 put 0-3 bytes before the
 * message in the item file (the body offset); bit 6 takes the text fields
 * from the message's header with payload_fields_read, as hw-flush does
 * (slow: header_read allocates 192 KiB per call), else from the message's
 * raw bytes (any byte, not only UTF-8). The rest is the message as stored. A read-size byte c asks payload_read for c + 1 bytes, or for
 * ((c & 0x7f) + 1) * 64 when its top bit is set; used in turn; none: one
 * read of the whole announced size.
 *
 * Checked: payload_encode and payload_encoded_len on the message equal the
 * reference; the stream, read with those sizes and again after a rewind in
 * one read, is exactly the reference encoding of the fields
 * payload_fields_read found plus body-mime; payload_size, the announced
 * Content-Length, is the number of bytes read. Every out buffer is
 * malloc'd to exactly what the API promises (3 * len for payload_encode,
 * len for payload_read), so ASan sees the wide stores overrun it. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "payload.h"

static int fuzz_fd = -1;

/* Replaces the memfd's contents with prefix bytes of 'x' then data. */
static void fuzz_file(size_t prefix, const void *data, size_t size)
{
        const char *p = data;

        if (fuzz_fd < 0) {
                fuzz_fd = memfd_create("fuzz_payload", MFD_CLOEXEC);
                FUZZ_CHECK(fuzz_fd >= 0);
        }
        FUZZ_CHECK(ftruncate(fuzz_fd, 0) == 0);
        FUZZ_CHECK(pwrite(fuzz_fd, "xxx", prefix, 0) == (ssize_t)prefix);
        for (size_t at = 0; at < size;) {
                ssize_t n = pwrite(fuzz_fd, p + at, size - at, (off_t)(prefix + at));

                FUZZ_CHECK(n > 0 || (n < 0 && errno == EINTR));
                if (n > 0)
                        at += (size_t)n;
        }
}

static size_t ref_encode(const void *in, size_t len, char *out)
{
        static const char hex[] = "0123456789ABCDEF";
        const unsigned char *s = in;
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                unsigned char c = s[i];
                bool plain = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
                             (c >= 'a' && c <= 'z') || c == '-' || c == '.' || c == '_' || c == '~';

                if (plain) {
                        out[o++] = (char)c;
                        continue;
                }
                out[o++] = '%';
                out[o++] = hex[c >> 4];
                out[o++] = hex[c & 15];
        }
        return o;
}

/* "&name=" and value encoded at out + *at (the '&' only after the first). */
static void ref_field(char *out, size_t *at, const char *name, const char *value)
{
        size_t n = strlen(name);

        if (*at > 0)
                out[(*at)++] = '&';
        memcpy(out + *at, name, n);
        *at += n;
        out[(*at)++] = '=';
        *at += ref_encode(value, strlen(value), out + *at);
}

/* The whole expected body into a malloc'd buffer. */
static char *ref_form(const struct payload_fields *f, const struct sign_fields *sig,
                      const void *msg, size_t msg_len, size_t *len)
{
        const char *fields[][2] = {
                { "recipient", f->recipient }, { "sender", f->sender },
                { "from", f->from }, { "subject", f->subject },
                { "message-headers", f->headers_json },
                { "timestamp", sig->timestamp }, { "token", sig->token },
                { "signature", sig->signature }, { "queue-id", f->queue_id },
        };
        size_t size = 3 * msg_len + 32, at = 0;
        char *out;

        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
                size += 2 + strlen(fields[i][0]) + 3 * strlen(fields[i][1]);
        out = malloc(size);
        FUZZ_CHECK(out);
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
                if (strcmp(fields[i][0], "signature") != 0 || fields[i][1][0])
                        ref_field(out, &at, fields[i][0], fields[i][1]);
        ref_field(out, &at, "body-mime", "");
        at += ref_encode(msg, msg_len, out + at);
        FUZZ_CHECK(at <= size);
        *len = at;
        return out;
}

/* Reads the stream to its end with sizes[k % nsizes] per call (the
 * announced size when nsizes is 0) and compares it with expect. Each size
 * has its own buffer of exactly that many bytes, reused from call to call. */
static void fuzz_read(struct payload *p, const size_t *sizes, size_t nsizes,
                      const char *expect, size_t expect_len)
{
        size_t whole = (size_t)payload_size(p) + 1, got = 0;
        char *bufs[7];

        if (nsizes == 0) {
                sizes = &whole;
                nsizes = 1;
        }
        for (size_t k = 0; k < nsizes; k++) {
                bufs[k] = malloc(sizes[k]);
                FUZZ_CHECK(bufs[k]);
        }
        for (size_t k = 0;; k++) {
                size_t want = sizes[k % nsizes];
                ssize_t n = payload_read(p, bufs[k % nsizes], want);

                FUZZ_CHECK(n >= 0 && (size_t)n <= want);
                if (n == 0)
                        break;
                FUZZ_CHECK(got + (size_t)n <= expect_len);
                FUZZ_CHECK(memcmp(bufs[k % nsizes], expect + got, (size_t)n) == 0);
                got += (size_t)n;
        }
        for (size_t k = 0; k < nsizes; k++)
                free(bufs[k]);
        FUZZ_CHECK(got == expect_len);
        FUZZ_CHECK(payload_size(p) == got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct sign_fields sig = {
                .timestamp = "1763729000",
                .token = "0123456789abcdef0123456789abcdef0123456789abcdef01",
        };
        size_t sizes[7], nsizes, skip, prefix, msg_len, expect_len, enc_len;
        struct payload_fields f;
        struct envelope env;
        struct payload *p;
        const uint8_t *msg;
        char *expect, *enc, *ref;

        if (size == 0)
                return 0;
        nsizes = data[0] & 7;
        if (size < 1 + nsizes)
                return 0;
        for (size_t k = 0; k < nsizes; k++) {
                uint8_t c = data[1 + k];

                sizes[k] = c & 0x80 ? ((size_t)(c & 0x7f) + 1) * 64 : (size_t)c + 1;
        }
        if (data[0] & 8)
                memset(sig.signature, 'a', SIGN_SIGNATURE_LEN);
        prefix = (data[0] >> 4) & 3;
        skip = 1 + nsizes;
        msg = data + skip;
        msg_len = size - skip;

        /* The encoder alone, with out of exactly 3 * len bytes. */
        enc = malloc(3 * msg_len + 1);
        ref = malloc(3 * msg_len + 1);
        FUZZ_CHECK(enc && ref);
        enc_len = ref_encode(msg, msg_len, ref);
        FUZZ_CHECK(payload_encoded_len(msg, msg_len) == enc_len);
        FUZZ_CHECK(payload_encode(msg, msg_len, enc) == enc_len);
        FUZZ_CHECK(memcmp(enc, ref, enc_len) == 0);
        free(ref);
        free(enc);

        /* The stream, from an item file as hw-flush reads it. */
        fuzz_file(prefix, msg, msg_len);
        FUZZ_CHECK(envelope_init(&env, 2) == 0);
        snprintf(env.id, sizeof(env.id), "1763729000123456-8f3a0c1b2e4d5a6f");
        snprintf(env.sender, sizeof(env.sender), "alice+tag@example.net");
        FUZZ_CHECK(envelope_add_rcpt(&env, "bob@example.com") == 0);
        FUZZ_CHECK(envelope_add_rcpt(&env, "\"c d\"@example.org") == 0);
        if (data[0] & 0x40) {
                FUZZ_CHECK(payload_fields_read(&f, fuzz_fd, (off_t)prefix, &env) == 0);
        } else {
                /* The message's bytes up to its first NUL, whatever they are. */
                size_t text = strnlen((const char *)msg, msg_len);

                memset(&f, 0, sizeof(f));
                f.recipient = strdup("bob@example.com,\"c d\"@example.org");
                f.sender = env.sender;
                f.from = strndup((const char *)msg, text < 100 ? text : 100);
                f.subject = strndup((const char *)msg, text);
                f.headers_json = strdup("[[\"Subject\",\"x\"]]");
                f.queue_id = env.id;
                FUZZ_CHECK(f.recipient && f.from && f.subject && f.headers_json);
        }

        p = malloc(sizeof(*p));
        FUZZ_CHECK(p);
        FUZZ_CHECK(payload_init(p, &f, &sig, fuzz_fd, (off_t)prefix) == 0);
        expect = ref_form(&f, &sig, msg, msg_len, &expect_len);
        fuzz_read(p, sizes, nsizes, expect, expect_len);
        payload_rewind(p);
        fuzz_read(p, NULL, 0, expect, expect_len);

        free(expect);
        payload_free(p);
        free(p);
        payload_fields_free(&f);
        envelope_free(&env);
        return 0;
}
