/* Unit tests of hw-flush's pieces (flush/): the streamed URL encoding, the
 * signature, the retry schedule and the table of attempt outcomes. The
 * spool's moves are in check_spool.c. */
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

        ck_assert_int_eq(outcome_next_due(&cfg, 0, 1, 1000), 31000);
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 2, 1000), 61000);
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 3, 1000), 121000);
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 8, 1000), 1000 + 3600000);
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 4000000000u, 1000), 1000 + 3600000);
        cfg.max_retry_age_ms = 100000;
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 3, 1000), 100000);  /* last try at the age */
        ck_assert_int_eq(outcome_next_due(&cfg, 0, 1, 100000), -1);
}
END_TEST

/* The table of outcome.h, case by case: what happened in, the verdict, the
 * attempts to record, when to retry and the words out. */
START_TEST(test_outcome_table)
{
        const struct hw_config cfg = {
                .retry_interval_ms = 30000,
                .retry_max_interval_ms = 3600000,
                .max_retry_age_ms = 600000,
        };
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
                /* The retry age, counted from receipt: the last try is at the limit. */
                { { .cause = OUTCOME_HTTP, .status = 503, .attempts_before = 5, .received_ms = 0,
                    .now_ms = 590000 }, OUTCOME_RETRY, 6, 600000, "HTTP 503" },
                { { .cause = OUTCOME_HTTP, .status = 503, .received_ms = 0, .now_ms = 600000 },
                  OUTCOME_DEAD, 1, 0, "HTTP 503; retry age exceeded" },
                { { .cause = OUTCOME_TRANSPORT, .error = "Timeout was reached", .received_ms = 0,
                    .now_ms = 700000 }, OUTCOME_DEAD, 1, 0, "Timeout was reached; retry age exceeded" },
                /* A 2xx or a 406 past the age is still what it is. */
                { { .cause = OUTCOME_HTTP, .status = 200, .received_ms = 0, .now_ms = 700000 },
                  OUTCOME_DELIVERED, 1, 0, "" },
                { { .cause = OUTCOME_HTTP, .status = 406, .received_ms = 0, .now_ms = 700000 },
                  OUTCOME_DEAD, 1, 0, "HTTP 406" },
                /* Receipt time unknown: no age limit applies. */
                { { .cause = OUTCOME_HTTP, .status = 500, .received_ms = -1, .now_ms = 700000 },
                  OUTCOME_RETRY, 1, 730000, "HTTP 500" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct outcome o;

                outcome_decide(&cfg, &cases[i].in, &o);
                ck_assert_msg(o.verdict == cases[i].verdict, "case %zu: verdict %d", i, o.verdict);
                ck_assert_msg(o.attempts == cases[i].attempts, "case %zu: attempts %u", i, o.attempts);
                ck_assert_msg(o.due_ms == cases[i].due_ms, "case %zu: due %lld", i, (long long)o.due_ms);
                ck_assert_msg(strcmp(o.what, cases[i].what) == 0, "case %zu: '%s'", i, o.what);
        }
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
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(flush_suite());
}
