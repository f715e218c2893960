/* Unit tests of hw-flush's pieces (flush/): the streamed URL encoding, the
 * signatures (Mailgun's and Standard Webhooks'), base64, the retry
 * schedule, Retry-After and the table of attempt outcomes. The spool's
 * moves are in check_spool.c; the status sets' syntax in check_config.c. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../flush/outcome.h"
#include "../flush/payload.h"
#include "../flush/sign.h"
#include "base64.h"
#include "config.h"
#include "spool.h"
#include "unit.h"

#define ID "1763729000123456-8f3a0c1b2e4d5a6f"

/* The stream, read with every buffer size from 1 up, equals the encoding
 * of the whole, and its length is the announced one. */
START_TEST(test_payload_stream)
{
        char tmpl[] = "/tmp/check-flush-payload-XXXXXX";
        static const char message[] = "Subject: x\r\n\r\nab c%&=+\xff\x00\xe9~._-\r\n.\r\n";
        size_t mlen = sizeof(message) - 1;
        struct payload_fields f = {
                .recipient = (char *)"a@b.example,c@d.example",
                .sender = "",
                .from = (char *)"J\xc3\xbcrgen",
                .subject = (char *)"a&b=c",
                .headers_json = (char *)"[[\"Subject\",\"x\"]]",
                .queue_id = ID,
        };
        struct sign_fields sig = { "1700000000", "ab", "" };
        struct payload *p = malloc(sizeof(*p));
        char expect[1024], got[1024], *e = expect;
        int fd = mkstemp(tmpl);

        ck_assert_int_ge(fd, 0);
        ck_assert_ptr_nonnull(p);
        unlink(tmpl);
        ck_assert_int_eq(write(fd, "env\n\n", 5), 5);
        ck_assert_int_eq(write(fd, message, mlen), (ssize_t)mlen);
        e += sprintf(e, "recipient=a%%40b.example%%2Cc%%40d.example&sender=&from=J%%C3%%BCrgen"
                     "&subject=a%%26b%%3Dc&message-headers=%%5B%%5B%%22Subject%%22%%2C%%22x%%22%%5D%%5D"
                     "&timestamp=1700000000&token=ab&queue-id=" ID "&body-mime=");
        ck_assert_uint_eq(payload_encode(message, mlen, e), payload_encoded_len(message, mlen));
        e += payload_encoded_len(message, mlen);

        ck_assert_int_eq(payload_init(p, &f, &sig, fd, 5), 0);
        ck_assert_uint_eq(payload_size(p), (uint64_t)(e - expect));
        for (size_t chunk = 1; chunk < 40; chunk++) {
                size_t len = 0;
                ssize_t n;

                payload_rewind(p);
                while ((n = payload_read(p, got + len, chunk)) > 0)
                        len += (size_t)n;
                ck_assert_int_eq(n, 0);
                ck_assert_uint_eq(len, (size_t)(e - expect));
                ck_assert(memcmp(got, expect, len) == 0);
        }
        payload_free(p);
        free(p);
        close(fd);
}
END_TEST

/* The encoding spelled out byte by byte, as the form rule says: the fast
 * encoder is checked against this, not only against its own length. */
static size_t ref_encode(const unsigned char *s, size_t len, char *out)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;

        for (size_t i = 0; i < len; i++) {
                unsigned char c = s[i];

                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~') {
                        out[o++] = (char)c;
                } else {
                        out[o++] = '%';
                        out[o++] = hex[c >> 4];
                        out[o++] = hex[c & 15];
                }
        }
        return o;
}

/* Bodies of every byte value, of random lengths and escape densities, read
 * back through the stream with every buffer size from 1 to 39 and a large
 * one: each equals the reference encoding. One body spans several preads
 * of the item file, and is read with fewer buffer sizes. */
START_TEST(test_payload_reference)
{
        enum { MAX = 3000, BIG = 2 * PAYLOAD_CHUNK + 17, CAP = 3 * BIG + 1024 };
        char tmpl[] = "/tmp/check-flush-ref-XXXXXX";
        struct payload_fields f = {
                .recipient = (char *)"a@b.example", .sender = "", .from = (char *)"",
                .subject = (char *)"", .headers_json = (char *)"[]", .queue_id = ID,
        };
        struct sign_fields sig = { "1700000000", "ab", "" };
        struct payload *p = malloc(sizeof(*p));
        unsigned char *body = malloc(BIG);
        char *expect = malloc(3 * BIG), *got = malloc(CAP), *direct = malloc(3 * BIG);
        unsigned seed = 12345;
        int fd = mkstemp(tmpl);

        ck_assert_int_ge(fd, 0);
        ck_assert(p && body && expect && got && direct);
        unlink(tmpl);
        for (unsigned round = 0; round < 24; round++) {
                size_t len = round == 0 ? 256 : round == 1 ? BIG : (size_t)rand_r(&seed) % MAX;
                unsigned plain_share = (unsigned)rand_r(&seed) % 101;   /* percent */
                size_t elen, head;

                for (size_t i = 0; i < len; i++) {
                        if (round == 0)
                                body[i] = (unsigned char)i;             /* all 256 values */
                        else if ((unsigned)rand_r(&seed) % 100 < plain_share)
                                body[i] = (unsigned char)"aZ09-._~"[rand_r(&seed) % 8];
                        else
                                body[i] = (unsigned char)rand_r(&seed);
                }
                ck_assert_int_eq(ftruncate(fd, 0), 0);
                ck_assert_int_eq(pwrite(fd, "e\n\n", 3, 0), 3);
                ck_assert_int_eq(pwrite(fd, body, len, 3), (ssize_t)len);
                elen = ref_encode(body, len, expect);
                ck_assert_uint_eq(payload_encoded_len(body, len), elen);
                ck_assert_uint_eq(payload_encode(body, len, direct), elen);
                ck_assert(memcmp(direct, expect, elen) == 0);

                ck_assert_int_eq(payload_init(p, &f, &sig, fd, 3), 0);
                head = p->head_len;
                ck_assert_uint_eq(payload_size(p), head + elen);
                for (size_t chunk = 1; chunk <= 40; chunk++) {
                        size_t n = 0;
                        ssize_t r;

                        if (len > MAX && chunk % 13 != 0 && chunk != 1 && chunk != 40)
                                continue;
                        payload_rewind(p);
                        while ((r = payload_read(p, got + n, chunk == 40 ? CAP - n : chunk)) > 0) {
                                n += (size_t)r;
                                ck_assert_uint_le(n, head + elen);
                        }
                        ck_assert_int_eq(r, 0);
                        ck_assert_uint_eq(n, head + elen);
                        ck_assert(memcmp(got + head, expect, elen) == 0);
                }
                payload_free(p);
        }
        free(p);
        free(body);
        free(expect);
        free(got);
        free(direct);
        close(fd);
}
END_TEST

START_TEST(test_sign)
{
        struct sign_fields a, b;
        char hex[SIGN_SIGNATURE_LEN + 1];

        /* RFC 4231 test case 2 */
        ck_assert_int_eq(sign_hmac_hex("Jefe", 4, "what do ya want for nothing?", 28, hex), 0);
        ck_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        ck_assert_int_eq(sign_make(&a, 1700000000, "key", 3), 0);
        ck_assert_int_eq(sign_make(&b, 1700000000, "", 0), 0);
        ck_assert_str_eq(a.timestamp, "1700000000");
        ck_assert_uint_eq(strlen(a.token), SIGN_TOKEN_LEN);
        ck_assert_uint_eq(strspn(a.token, "0123456789abcdef"), SIGN_TOKEN_LEN);
        ck_assert_str_ne(a.token, b.token);
        ck_assert_uint_eq(strlen(a.signature), SIGN_SIGNATURE_LEN);
        ck_assert_str_eq(b.signature, "");
}
END_TEST

START_TEST(test_next_due)
{
        struct hw_config cfg = {
                .retry_interval_ms = 30000,
                .retry_max_interval_ms = 3600000,
        };

        ck_assert_int_eq(outcome_next_due(&cfg, 0, 1, 1000, 0), 31000);
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 2, 1000, 0), 61000);
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 3, 1000, 0), 121000);
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 8, 1000, 0), 1000 + 3600000);
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 4000000000u, 1000, 0), 1000 + 3600000);
        /* A longer wait asked for wins; a shorter one does not; both capped. */
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 1, 1000, 120000), 121000);
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 3, 1000, 5000), 121000);
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 1, 1000, 86400000), 1000 + 3600000);
        cfg.max_retry_age_ms = 100000;
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 3, 1000, 0), 100000);  /* last try at the age */
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 1, 1000, 3600000), 100000);
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 1, 100000, 0), -1);
}
END_TEST

/* The table of outcome.h, case by case: what happened in, the verdict, the
 * attempts to record, when to retry and the words out. */
/* The settings' defaults (the status sets among them), with the retry
 * settings the tables below are written for. */
static void flush_config(struct hw_config *cfg, const char *dead, const char *delivered)
{
        char err[256];

        unit_clear_env();
        if (dead)
                setenv("WEBHOOK_DEAD_STATUSES", dead, 1);
        if (delivered)
                setenv("WEBHOOK_DELIVERED_STATUSES", delivered, 1);
        ck_assert_msg(config_load(cfg, err, sizeof(err)) == 0, "%s", err);
        unit_clear_env();
        cfg->retry_interval_ms = 30000;
        cfg->retry_max_interval_ms = 3600000;
        cfg->max_retry_age_ms = 600000;
}

START_TEST(test_outcome_table)
{
        struct hw_config cfg;
        static const struct {
                struct outcome_attempt in;
                enum outcome_verdict verdict;
                unsigned attempts;
                int64_t due_ms;
                const char *what;
        } cases[] = {
                { { .cause = OUTCOME_HTTP, .status = 200, .now_ms = 1000 }, OUTCOME_DELIVERED, 1, 0, "" },
                { { .cause = OUTCOME_HTTP, .status = 204, .attempts_before = 4, .now_ms = 1000 },
                  OUTCOME_DELIVERED, 5, 0, "" },
                { { .cause = OUTCOME_HTTP, .status = 299, .now_ms = 1000 }, OUTCOME_DELIVERED, 1, 0, "" },
                { { .cause = OUTCOME_HTTP, .status = 406, .now_ms = 1000 }, OUTCOME_DEAD, 1, 0, "HTTP 406" },
                { { .cause = OUTCOME_HTTP, .status = 500, .now_ms = 1000 }, OUTCOME_RETRY, 1, 31000,
                  "HTTP 500" },
                { { .cause = OUTCOME_HTTP, .status = 199, .now_ms = 1000 }, OUTCOME_RETRY, 1, 31000,
                  "HTTP 199" },
                { { .cause = OUTCOME_HTTP, .status = 300, .now_ms = 1000 }, OUTCOME_RETRY, 1, 31000,
                  "HTTP 300 redirect to (no Location), not followed" },
                { { .cause = OUTCOME_HTTP, .status = 301, .location = "https://x.example/",
                    .attempts_before = 2, .now_ms = 1000 }, OUTCOME_RETRY, 3, 121000,
                  "HTTP 301 redirect to https://x.example/, not followed" },
                { { .cause = OUTCOME_HTTP, .status = 0, .now_ms = 1000 }, OUTCOME_RETRY, 1, 31000,
                  "HTTP 0" },
                { { .cause = OUTCOME_TRANSPORT, .status = 0, .error = "Connection refused",
                    .now_ms = 1000 }, OUTCOME_RETRY, 1, 31000, "Connection refused" },
                { { .cause = OUTCOME_READ, .errno_value = -EIO, .now_ms = 1000 }, OUTCOME_RETRY, 1,
                  31000, "reading the item: Input/output error" },
                { { .cause = OUTCOME_LOCAL, .errno_value = -ENOMEM, .now_ms = 1000 }, OUTCOME_RETRY,
                  1, 31000, "local error: Cannot allocate memory" },
                { { .cause = OUTCOME_ENVELOPE, .errno_value = -EIO, .now_ms = 1000 }, OUTCOME_RETRY,
                  1, 31000, "local error: Input/output error" },
                { { .cause = OUTCOME_ENVELOPE, .errno_value = -EBADMSG, .attempts_before = 3,
                    .now_ms = 1000 }, OUTCOME_DEAD, 3, 0, "unreadable item: Bad message" },
                /* The retry age, counted from the first attempt: the last try is at the limit. */
                { { .cause = OUTCOME_HTTP, .status = 503, .attempts_before = 5, .age_from_ms = 0,
                    .now_ms = 590000 }, OUTCOME_RETRY, 6, 600000, "HTTP 503" },
                { { .cause = OUTCOME_HTTP, .status = 503, .age_from_ms = 0, .now_ms = 600000 },
                  OUTCOME_DEAD, 1, 0, "HTTP 503; retry age exceeded" },
                { { .cause = OUTCOME_TRANSPORT, .error = "Timeout was reached", .age_from_ms = 0,
                    .now_ms = 700000 }, OUTCOME_DEAD, 1, 0, "Timeout was reached; retry age exceeded" },
                /* A 2xx or a 406 past the age is still what it is. */
                { { .cause = OUTCOME_HTTP, .status = 200, .age_from_ms = 0, .now_ms = 700000 },
                  OUTCOME_DELIVERED, 1, 0, "" },
                { { .cause = OUTCOME_HTTP, .status = 406, .age_from_ms = 0, .now_ms = 700000 },
                  OUTCOME_DEAD, 1, 0, "HTTP 406" },
                /* Its start unknown: no age limit applies. */
                { { .cause = OUTCOME_HTTP, .status = 500, .age_from_ms = -1, .now_ms = 700000 },
                  OUTCOME_RETRY, 1, 730000, "HTTP 500" },
                /* 409 is a failure unless added to WEBHOOK_DELIVERED_STATUSES. */
                { { .cause = OUTCOME_HTTP, .status = 409, .now_ms = 1000 }, OUTCOME_RETRY, 1, 31000,
                  "HTTP 409" },
                /* Retry-After, on 429 and 503 only, waits longer than the
                 * backoff, within RETRY_MAX_INTERVAL_MS and the age. */
                { { .cause = OUTCOME_HTTP, .status = 429, .retry_after = "120", .now_ms = 1000 },
                  OUTCOME_RETRY, 1, 121000, "HTTP 429, Retry-After: 120" },
                { { .cause = OUTCOME_HTTP, .status = 503, .retry_after = "5", .attempts_before = 2,
                    .now_ms = 1000 }, OUTCOME_RETRY, 3, 121000, "HTTP 503, Retry-After: 5" },
                { { .cause = OUTCOME_HTTP, .status = 503, .retry_after = "86400", .age_from_ms = -1,
                    .now_ms = 1000 }, OUTCOME_RETRY, 1, 3601000, "HTTP 503, Retry-After: 86400" },
                { { .cause = OUTCOME_HTTP, .status = 429, .retry_after = "86400", .age_from_ms = 0,
                    .now_ms = 1000 }, OUTCOME_RETRY, 1, 600000, "HTTP 429, Retry-After: 86400" },
                { { .cause = OUTCOME_HTTP, .status = 429, .retry_after = "soon", .now_ms = 1000 },
                  OUTCOME_RETRY, 1, 31000, "HTTP 429, Retry-After: soon" },
                { { .cause = OUTCOME_HTTP, .status = 500, .retry_after = "120", .now_ms = 1000 },
                  OUTCOME_RETRY, 1, 31000, "HTTP 500" },
        };

        flush_config(&cfg, NULL, NULL);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct outcome o;

                outcome_decide(&cfg, &cases[i].in, &o);
                ck_assert_msg(o.verdict == cases[i].verdict, "case %zu: verdict %d", i, o.verdict);
                ck_assert_msg(o.attempts == cases[i].attempts, "case %zu: attempts %u", i, o.attempts);
                ck_assert_msg(o.due_ms == cases[i].due_ms, "case %zu: due %lld", i, (long long)o.due_ms);
                ck_assert_msg(strcmp(o.what, cases[i].what) == 0, "case %zu: '%s'", i, o.what);
        }
        config_free(&cfg);
}
END_TEST

/* The status sets decide: a 409 added to the delivered ones, other dead
 * ones than 406, and a dead set that also holds 429 (dead wins over its
 * Retry-After). */
START_TEST(test_outcome_statuses)
{
        static const struct {
                long status;
                enum outcome_verdict verdict;
        } cases[] = {
                { 200, OUTCOME_DELIVERED }, { 204, OUTCOME_DELIVERED }, { 409, OUTCOME_DELIVERED },
                { 406, OUTCOME_RETRY }, { 400, OUTCOME_DEAD }, { 410, OUTCOME_DEAD },
                { 413, OUTCOME_RETRY }, { 429, OUTCOME_DEAD }, { 500, OUTCOME_RETRY },
                { 501, OUTCOME_DEAD }, { 0, OUTCOME_RETRY },
        };
        struct hw_config cfg;

        flush_config(&cfg, "400,410,429,501", "2xx,409");
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct outcome_attempt a = { .cause = OUTCOME_HTTP, .status = cases[i].status,
                                             .retry_after = "60", .now_ms = 1000 };
                struct outcome o;

                outcome_decide(&cfg, &a, &o);
                ck_assert_msg(o.verdict == cases[i].verdict, "HTTP %ld: verdict %d", cases[i].status, o.verdict);
        }
        config_free(&cfg);
}
END_TEST

/* Retry-After: delay-seconds and the three HTTP-date forms, relative to
 * now; a date past waits 0; anything else does not parse. */
START_TEST(test_retry_after)
{
        /* The dates are Sun, 06 Nov 1994 08:49:37 GMT: 784111777 s. */
        static const struct {
                const char *value;
                int64_t now_ms;
                int ret;
                uint64_t wait_ms;
        } cases[] = {
                { "120", 0, 0, 120000 },
                { "0", 0, 0, 0 },
                { " 7 ", 0, 0, 7000 },
                { "99999999999999999999999", 0, 0, UINT64_C(10) * 366 * 86400 * 1000 },
                { "Sun, 06 Nov 1994 08:49:37 GMT", INT64_C(784111777) * 1000 - 90000, 0, 90000 },
                { "Sunday, 06-Nov-94 08:49:37 GMT", INT64_C(784111777) * 1000 - 1500, 0, 1500 },
                { "Sun Nov  6 08:49:37 1994", INT64_C(784111777) * 1000 - 1, 0, 1 },
                { "Sun, 06 Nov 1994 08:49:37 GMT", INT64_C(784111777) * 1000 + 5000, 0, 0 },
                { "-5", 0, -EINVAL, 0 },
                { "1.5", 0, -EINVAL, 0 },
                { "12 s", 0, -EINVAL, 0 },
                { "", 0, -EINVAL, 0 },
                { "tomorrow", 0, -EINVAL, 0 },
                { "Sun, 06 Nov 1994 08:49:37 GMT trailing", 0, -EINVAL, 0 },
                { "Sun, 06 Nov 1994 08:49:37 PST", 0, -EINVAL, 0 },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t wait = 12345;
                int r = outcome_retry_after(cases[i].value, cases[i].now_ms, &wait);

                ck_assert_msg(r == cases[i].ret, "'%s': %d", cases[i].value, r);
                if (r == 0)
                        ck_assert_msg(wait == cases[i].wait_ms, "'%s': waits %llu", cases[i].value,
                                      (unsigned long long)wait);
        }
}
END_TEST

/* Base64 both ways, RFC 4648's vectors, and what strict decoding refuses. */
START_TEST(test_base64)
{
        static const char *const vectors[][2] = {
                { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
        };
        static const char *const refused[] = { "Zg=", "Zg", "Zh==", "Zm9=", "Z===", "Zm9v Yg==", "Zg==Zg==",
                                                "Zm-v", "Zm_v" };
        char text[64];
        unsigned char bytes[64];

        for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
                size_t len = strlen(vectors[i][0]);

                ck_assert_uint_eq(base64_encode(vectors[i][0], len, text), BASE64_ENCODED_LEN(len));
                ck_assert_str_eq(text, vectors[i][1]);
                ck_assert_int_eq(base64_decode(text, strlen(text), bytes, sizeof(bytes)), (ssize_t)len);
                ck_assert(memcmp(bytes, vectors[i][0], len) == 0);
        }
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
                ck_assert_msg(base64_decode(refused[i], strlen(refused[i]), bytes, sizeof(bytes)) == -EINVAL,
                              "'%s' decoded", refused[i]);
        ck_assert_int_eq(base64_decode("Zm9vYmFy", 8, bytes, 5), -ENOBUFS);
        ck_assert_int_eq(base64_decode("Zm9vYmFy", 8, bytes, 6), 6);
}
END_TEST

/* A body read from memory in pieces of `step` bytes, or failing. */
struct test_body {
        const char *data;
        size_t len, pos, step;
        int error;
};

static ssize_t test_body_read(void *ctx, char *buf, size_t len)
{
        struct test_body *b = ctx;
        size_t n = b->len - b->pos;

        if (b->error && b->pos > 0)
                return b->error;
        if (n > len)
                n = len;
        if (n > b->step)
                n = b->step;
        memcpy(buf, b->data + b->pos, n);
        b->pos += n;
        return (ssize_t)n;
}

/* Standard Webhooks: the specification's example (an independent
 * figure), a body of every byte value read in pieces (checked against
 * Python's hmac), a changed byte, and a read error passed on. */
START_TEST(test_sign_standard)
{
        static const unsigned char key[] = {   /* whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw */
                0x31, 0xf2, 0x90, 0xf6, 0xbf, 0x06, 0x29, 0x8a, 0xab, 0x4f, 0x08, 0xd4,
                0x3c, 0x3f, 0x08, 0x2c, 0xf6, 0x48, 0xa3, 0x62, 0xda, 0x2d, 0xa4, 0xb0,
        };
        static const char example[] = "{\"test\": 2432232314}";
        char every[256 * 5];
        struct sign_standard out;
        struct test_body b = { example, sizeof(example) - 1, 0, 1000, 0 };

        ck_assert_int_eq(sign_standard_make(&out, key, sizeof(key), "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                            1614265330, test_body_read, &b), 0);
        ck_assert_str_eq(out.timestamp, "1614265330");
        ck_assert_str_eq(out.signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        ck_assert_uint_eq(strlen(out.signature), SIGN_STANDARD_LEN);

        for (size_t i = 0; i < sizeof(every); i++)
                every[i] = (char)(i % 256);
        for (size_t step = 1; step < 2000; step += 333) {
                b = (struct test_body){ every, sizeof(every), 0, step, 0 };
                ck_assert_int_eq(sign_standard_make(&out, key, sizeof(key), ID, 1700000000,
                                                    test_body_read, &b), 0);
                ck_assert_str_eq(out.signature, "v1,sdIkeRJhu0gv98GbyPIJAOABhHS88JHORMECvaR13VA=");
        }
        every[700] ^= 1;
        b = (struct test_body){ every, sizeof(every), 0, 4096, 0 };
        ck_assert_int_eq(sign_standard_make(&out, key, sizeof(key), ID, 1700000000, test_body_read, &b), 0);
        ck_assert_str_ne(out.signature, "v1,sdIkeRJhu0gv98GbyPIJAOABhHS88JHORMECvaR13VA=");
        /* Another timestamp, another signature. */
        every[700] ^= 1;
        b = (struct test_body){ every, sizeof(every), 0, 4096, 0 };
        ck_assert_int_eq(sign_standard_make(&out, key, sizeof(key), ID, 1700000001, test_body_read, &b), 0);
        ck_assert_str_ne(out.signature, "v1,sdIkeRJhu0gv98GbyPIJAOABhHS88JHORMECvaR13VA=");

        b = (struct test_body){ every, sizeof(every), 0, 100, -EIO };
        ck_assert_int_eq(sign_standard_make(&out, key, sizeof(key), ID, 1700000000, test_body_read, &b), -EIO);
}
END_TEST

static Suite *flush_suite(void)
{
        Suite *s = suite_create("flush");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_payload_stream);
        tcase_add_test(tc, test_payload_reference);
        tcase_add_test(tc, test_sign);
        tcase_add_test(tc, test_next_due);
        tcase_add_test(tc, test_outcome_table);
        tcase_add_test(tc, test_outcome_statuses);
        tcase_add_test(tc, test_retry_after);
        tcase_add_test(tc, test_base64);
        tcase_add_test(tc, test_sign_standard);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(flush_suite());
}
