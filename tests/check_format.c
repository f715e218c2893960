/* Unit tests of the webhook formats (flush/format*.c) and the codings of
 * the payload stream they use: every format read back in pieces of every
 * size equals the whole and its announced length; the JSON coding against
 * lib/utf8.c's sanitizer and jansson's parser; the multipart boundary
 * against a message made to contain it. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "../flush/format.h"
#include "../flush/payload.h"
#include "unit.h"
#include "utf8.h"

#define ID "1763729000123456-8f3a0c1b2e4d5a6f"

/* An item file: "e\n\n" then the message; returns its fd. */
static int item_with(const void *msg, size_t len)
{
        char tmpl[] = "/tmp/check-format-XXXXXX";
        int fd = mkstemp(tmpl);

        ck_assert_int_ge(fd, 0);
        unlink(tmpl);
        ck_assert_int_eq(pwrite(fd, "e\n\n", 3, 0), 3);
        ck_assert_int_eq(pwrite(fd, msg, len, 3), (ssize_t)len);
        return fd;
}

struct fixture {
        struct envelope env;
        struct payload_fields f;
        struct sign_fields sig;
};

static void fixture_init(struct fixture *x, int fd)
{
        ck_assert_int_eq(envelope_init(&x->env, 4), 0);
        strcpy(x->env.id, ID);
        strcpy(x->env.sender, "alice@example.net");
        strcpy(x->env.remote_ip, "192.0.2.7");
        ck_assert_int_eq(envelope_add_rcpt(&x->env, "bob@example.com"), 0);
        ck_assert_int_eq(envelope_add_rcpt(&x->env, "carol@example.org"), 0);
        ck_assert_int_eq(payload_fields_read(&x->f, fd, 3, &x->env), 0);
        x->sig = (struct sign_fields){ "1700000000", "ab", "cd" };
}

static void fixture_free(struct fixture *x)
{
        payload_fields_free(&x->f);
        envelope_free(&x->env);
}

/* The whole stream in one read, then in pieces of each size in sizes: the
 * same bytes, and the announced length. Returns the bytes (malloc'd). */
static char *read_all(struct payload *p, size_t *len)
{
        uint64_t size = payload_size(p);
        char *whole = malloc(size + 1), *piece = malloc(size + 64);
        static const size_t sizes[] = { 1, 2, 3, 5, 7, 8, 9, 13, 64, 1000, 16384 };
        size_t n = 0;
        ssize_t r;

        ck_assert(whole && piece);
        payload_rewind(p);
        while ((r = payload_read(p, whole + n, size + 1 - n)) > 0)
                n += (size_t)r;
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(n, size);
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                size_t m = 0;

                if (sizes[k] < 13 && size > 100000)
                        continue;
                payload_rewind(p);
                while ((r = payload_read(p, piece + m, sizes[k])) > 0) {
                        m += (size_t)r;
                        ck_assert_uint_le(m, size);
                }
                ck_assert_int_eq(r, 0);
                ck_assert_uint_eq(m, size);
                ck_assert(memcmp(piece, whole, size) == 0);
        }
        free(piece);
        whole[size] = '\0';
        *len = n;
        return whole;
}

static const char MSG[] =
        "From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.net>\r\n"
        "To: Bob <bob@example.com>, \"C, D\" <carol@example.org>\r\n"
        "Subject: caf\xc3\xa9\r\n"
        "X-Eight: \xe9t\xe9\r\n"
        "\r\n"
        "8-bit \xe9\xff\xfe, UTF-8 \xe2\x82\xac, NUL \x00, \"quoted\" \\ \x01 end\r\n";

/* JSON escapes, and each invalid sequence (maximal subpart) as U+FFFD. */
START_TEST(test_json_vectors)
{
        static const struct { const char *in; size_t len; const char *out; } cases[] = {
                { "a\"b\\c", 5, "a\\\"b\\\\c" },
                { "\r\n\t\x01\x1f\x7f", 6, "\\r\\n\\t\\u0001\\u001f\x7f" },
                { "\x00", 1, "\\u0000" },
                { "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" },
                { "\xe9t\xe9", 3, "\xef\xbf\xbdt\xef\xbf\xbd" },
                { "\xe2\x82" "A", 3, "\xef\xbf\xbd" "A" },
                { "\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd" },                  /* overlong */
                { "\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },  /* surrogate */
                { "\xf4\x90\x80\x80", 4,
                  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },          /* past U+10FFFF */
                { "\xf0\x9f\x98", 3, "\xef\xbf\xbd" },                          /* cut at the end */
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct payload_utf8 st = { 0 };
                char out[64];
                size_t n = payload_json_encode(&st, cases[i].in, cases[i].len, true, out);

                ck_assert_msg(n == strlen(cases[i].out) && memcmp(out, cases[i].out, n) == 0,
                              "case %zu: %.*s", i, (int)n, out);
                /* Byte by byte, with the state carried, the same. */
                memset(&st, 0, sizeof(st));
                n = 0;
                for (size_t k = 0; k < cases[i].len; k++)
                        n += payload_json_encode(&st, cases[i].in + k, 1, k + 1 == cases[i].len, out + n);
                ck_assert_msg(n == strlen(cases[i].out) && memcmp(out, cases[i].out, n) == 0,
                              "case %zu byte by byte", i);
        }
}
END_TEST

/* Byte-by-byte reference for the JSON coding: each byte or sequence on
 * its own, through lib/utf8.h's rule. */
static size_t ref_json(const unsigned char *s, size_t len, char *out)
{
        size_t o = 0;

        for (size_t i = 0; i < len;) {
                unsigned char c = s[i];
                int k = utf8_sequence(s + i, len - i);

                if (k < 0) {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i += (size_t)-k;
                } else if (c == '"' || c == '\\') {
                        out[o++] = '\\';
                        out[o++] = (char)c;
                        i++;
                } else if (c == '\n' || c == '\r' || c == '\t') {
                        out[o++] = '\\';
                        out[o++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
                        i++;
                } else if (c < 0x20) {
                        o += (size_t)sprintf(out + o, "\\u%04x", c);
                        i++;
                } else {
                        memcpy(out + o, s + i, (size_t)k);
                        o += (size_t)k;
                        i += (size_t)k;
                }
        }
        return o;
}

/* The JSON coding's block-at-a-time path for valid UTF-8 against the
 * reference: texts valid throughout, and with a few broken bytes (so
 * blocks fall back to the byte-by-byte path and come back), whole, only
 * counted, and in pieces of random sizes that cut sequences. */
START_TEST(test_json_blocks_match_reference)
{
        static const char *const pieces[] = {
                "abc", "Caf\xc3\xa9 ", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\r\n", "\"", "\\", "\t", "\x01",
                "\x7f", "0123456789012345", "\xed\x9f\xbf",
                /* broken: */ "\xe9", "\xff", "\xe2\x82", "\xc0\xaf", "\xed\xa0\x80",
        };
        enum { LEN = 20000, GOOD = 12, PIECES = sizeof(pieces) / sizeof(pieces[0]) };
        unsigned char *in = malloc(LEN + 16);
        char *want = malloc(6 * LEN + 64), *got = malloc(6 * LEN + 64);
        unsigned seed = 5;

        ck_assert(in && want && got);
        for (unsigned round = 0; round < 12; round++) {
                /* Rounds 0-3 valid throughout; then 1 broken piece in 2000..20. */
                unsigned every = round < 4 ? 0 : round < 8 ? 2000 : 20;
                struct payload_utf8 st = { 0 };
                size_t len = 0, wlen, glen = 0;

                while (len < LEN) {
                        unsigned k = every && rand_r(&seed) % every == 0 ? GOOD + (unsigned)rand_r(&seed) % (PIECES - GOOD)
                                                                       : (unsigned)rand_r(&seed) % GOOD;

                        memcpy(in + len, pieces[k], strlen(pieces[k]));
                        len += strlen(pieces[k]);
                }
                if (round % 2)
                        in[len - 1] = 0xe2;     /* a sequence cut by the end */
                wlen = ref_json(in, len, want);
                ck_assert_uint_eq(payload_json_encode(&st, in, len, true, NULL), wlen);
                memset(&st, 0, sizeof(st));
                glen = payload_json_encode(&st, in, len, true, got);
                ck_assert_msg(glen == wlen && memcmp(got, want, wlen) == 0, "round %u whole", round);
                memset(&st, 0, sizeof(st));
                glen = 0;
                for (size_t i = 0; i < len;) {
                        size_t n = 1 + (size_t)rand_r(&seed) % (round % 3 == 0 ? 9000 : 40);

                        if (n > len - i)
                                n = len - i;
                        glen += payload_json_encode(&st, in + i, n, i + n == len, got + glen);
                        i += n;
                }
                ck_assert_msg(glen == wlen && memcmp(got, want, wlen) == 0, "round %u in pieces", round);
        }
        free(in);
        free(want);
        free(got);
}
END_TEST

/* postmark with a valid UTF-8 message: measured as such, it is sent
 * with the ASCII escapes only, in reads that cut sequences anywhere (see
 * read_all); the RawEmail bytes equal the byte-by-byte reference. */
START_TEST(test_postmark_valid_utf8)
{
        enum { LEN = 2 * PAYLOAD_CHUNK + 333 };
        static const char *const pieces[] = { "ab ", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\r\n",
                                              "\"", "\\", "\x01", "\t", "0123456789abcdef" };
        unsigned char *msg = malloc(LEN + 16);
        char *want = malloc(6 * LEN + 16), *body, *raw;
        struct payload *p = malloc(sizeof(*p));
        unsigned seed = 9;
        struct fixture x;
        size_t len = 14, wlen, blen;
        int fd;

        ck_assert(msg && want && p);
        memcpy(msg, "Subject: v\r\n\r\n", 14);
        while (len < LEN) {
                const char *s = pieces[rand_r(&seed) % 10];

                memcpy(msg + len, s, strlen(s));
                len += strlen(s);
        }
        fd = item_with(msg, len);
        fixture_init(&x, fd);
        ck_assert_int_eq(format_build(p, WEBHOOK_FORMAT_POSTMARK, &x.f, &x.sig, fd, 3), 0);
        ck_assert(p->body_utf8);
        body = read_all(p, &blen);
        raw = strstr(body, "\"RawEmail\":\"");
        ck_assert_ptr_nonnull(raw);
        raw += strlen("\"RawEmail\":\"");
        wlen = ref_json(msg, len, want);
        ck_assert_uint_eq((size_t)(body + blen - raw), wlen + 2);
        ck_assert(memcmp(raw, want, wlen) == 0);
        ck_assert(memcmp(raw + wlen, "\"}", 2) == 0);
        free(body);
        payload_free(p);
        fixture_free(&x);
        free(p);
        free(want);
        free(msg);
        close(fd);
}
END_TEST

/* postmark over random bytes spanning several chunks: valid JSON whose
 * RawEmail is what lib/utf8.c's sanitizer makes of the message (it maps
 * NUL to U+FFFD too; JSON keeps NUL as \u0000). */
START_TEST(test_postmark_random)
{
        enum { LEN = 3 * PAYLOAD_CHUNK + 101 };
        unsigned char *msg = malloc(LEN);
        unsigned seed = 7;
        struct fixture x;
        struct payload *p = malloc(sizeof(*p));
        json_error_t jerr;
        size_t len, vlen;
        char *body, *clean, *raw;
        json_t *j;
        int fd;

        ck_assert(msg && p);
        memcpy(msg, "Subject: r\r\n\r\n", 14);
        for (size_t i = 14; i < LEN; i++)
                msg[i] = (unsigned char)(rand_r(&seed) % 4 ? "ab\xc3\xa9\xe2\x82\xac\"\\\n"[rand_r(&seed) % 11]
                                                           : rand_r(&seed));
        fd = item_with(msg, LEN);
        fixture_init(&x, fd);
        ck_assert_int_eq(format_build(p, WEBHOOK_FORMAT_POSTMARK, &x.f, &x.sig, fd, 3), 0);
        ck_assert_str_eq(p->content_type, "application/json");
        ck_assert(!p->body_utf8);       /* invalid bytes: checked on every send */
        body = read_all(p, &len);
        j = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
        ck_assert_msg(j != NULL, "JSON: %s", jerr.text);
        ck_assert_str_eq(json_string_value(json_object_get(j, "MessageID")), ID);
        ck_assert_str_eq(json_string_value(json_object_get(j, "OriginalRecipient")), "bob@example.com");
        vlen = json_string_length(json_object_get(j, "RawEmail"));
        raw = malloc(3 * vlen + 1);
        ck_assert_ptr_nonnull(raw);
        {
                const char *v = json_string_value(json_object_get(j, "RawEmail"));
                size_t o = 0;

                for (size_t i = 0; i < vlen; i++) {
                        if (v[i] == '\0') {
                                memcpy(raw + o, "\xef\xbf\xbd", 3);
                                o += 3;
                        } else {
                                raw[o++] = v[i];
                        }
                }
                raw[o] = '\0';
        }
        clean = utf8_sanitize((const char *)msg, LEN);
        ck_assert_ptr_nonnull(clean);
        ck_assert_str_eq(raw, clean);
        free(clean);
        free(raw);
        json_decref(j);
        free(body);
        payload_free(p);
        fixture_free(&x);
        free(p);
        free(msg);
        close(fd);
}
END_TEST

/* The fields the consumers read, and a valid UTF-8 message kept whole. */
START_TEST(test_postmark_fields)
{
        static const char utf8msg[] = "From: \"J, R\" <j@example.net>\r\nTo: a@example.com, B <b@example.com>\r\n"
                                      "Cc: c@example.com\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\nDate: Mon, 1 Jan 2024\r\n"
                                      "X-Other: 1\r\n\r\nbody \xe2\x82\xac\r\n";
        int fd = item_with(utf8msg, sizeof(utf8msg) - 1);
        struct fixture x;
        struct payload *p = malloc(sizeof(*p));
        size_t len;
        char *body;
        json_t *j, *h;

        fixture_init(&x, fd);
        ck_assert_int_eq(format_build(p, WEBHOOK_FORMAT_POSTMARK, &x.f, &x.sig, fd, 3), 0);
        body = read_all(p, &len);
        j = json_loadb(body, len, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_str_eq(json_string_value(json_object_get(j, "RawEmail")), utf8msg);
        ck_assert_str_eq(json_string_value(json_object_get(j, "From")), "j@example.net");
        ck_assert_str_eq(json_string_value(json_object_get(j, "FromName")), "J, R");
        ck_assert_str_eq(json_string_value(json_object_get(j, "Subject")), "caf\xc3\xa9");
        ck_assert_uint_eq(json_array_size(json_object_get(j, "ToFull")), 2);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(j, "ToFull"), 1),
                                                           "Email")), "b@example.com");
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(j, "CcFull"), 0),
                                                           "Email")), "c@example.com");
        h = json_object_get(j, "Headers");
        ck_assert_uint_eq(json_array_size(h), 1);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(h, 0), "Name")), "X-Other");
        json_decref(j);
        free(body);
        payload_free(p);
        fixture_free(&x);
        free(p);
        close(fd);
}
END_TEST

/* The parts of a multipart body, by name, from the body alone. */
static const char *part(const char *body, size_t len, const char *boundary, const char *name, size_t *vlen)
{
        char want[128];
        const char *s, *v, *end;
        char delim[64];

        snprintf(want, sizeof(want), "Content-Disposition: form-data; name=\"%s\"\r\n", name);
        snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
        s = memmem(body, len, want, strlen(want));
        if (!s)
                return NULL;
        v = (const char *)memmem(s, len - (size_t)(s - body), "\r\n\r\n", 4) + 4;
        end = memmem(v, len - (size_t)(v - body), delim, strlen(delim));
        ck_assert_ptr_nonnull(end);
        *vlen = (size_t)(end - v);
        return v;
}

/* mailgun-multipart, sendgrid and relay carry the message byte for byte. */
START_TEST(test_raw_formats)
{
        int fd = item_with(MSG, sizeof(MSG) - 1);
        struct fixture x;
        struct payload *p = malloc(sizeof(*p));
        const char *boundary, *v;
        size_t len, vlen;
        char *body;

        fixture_init(&x, fd);

        ck_assert_int_eq(format_build(p, WEBHOOK_FORMAT_MAILGUN_MULTIPART, &x.f, &x.sig, fd, 3), 0);
        ck_assert(strncmp(p->content_type, "multipart/form-data; boundary=hw-", 33) == 0);
        boundary = p->content_type + 30;
        body = read_all(p, &len);
        v = part(body, len, boundary, "body-mime", &vlen);
        ck_assert(v && vlen == sizeof(MSG) - 1 && memcmp(v, MSG, vlen) == 0);
        ck_assert(strstr(body, "Content-Type: text/plain; charset=iso-8859-1\r\n\r\nFrom:") != NULL);
        v = part(body, len, boundary, "recipient", &vlen);
        ck_assert(v && vlen == 33 && memcmp(v, "bob@example.com,carol@example.org", 33) == 0);
        v = part(body, len, boundary, "signature", &vlen);
        ck_assert(v && vlen == 2 && memcmp(v, "cd", 2) == 0);
        ck_assert(memcmp(body + len - strlen(boundary) - 8, "\r\n--", 4) == 0);
        free(body);
        payload_free(p);

        ck_assert_int_eq(format_build(p, WEBHOOK_FORMAT_SENDGRID, &x.f, &x.sig, fd, 3), 0);
        boundary = p->content_type + 30;
        body = read_all(p, &len);
        v = part(body, len, boundary, "email", &vlen);
        ck_assert(v && vlen == sizeof(MSG) - 1 && memcmp(v, MSG, vlen) == 0);
        v = part(body, len, boundary, "envelope", &vlen);
        ck_assert(v && strncmp(v, "{\"to\":[\"bob@example.com\",\"carol@example.org\"],\"from\":\"alice@example.net\"}",
                               vlen) == 0);
        ck_assert_ptr_null(part(body, len, boundary, "headers", &vlen));
        ck_assert_ptr_null(part(body, len, boundary, "SPF", &vlen));
        free(body);
        payload_free(p);
        /* The verdicts' spot: sendgrid sends them when known. */
        x.f.spf = "pass";
        ck_assert_int_eq(format_build(p, WEBHOOK_FORMAT_SENDGRID, &x.f, &x.sig, fd, 3), 0);
        boundary = p->content_type + 30;
        body = read_all(p, &len);
        v = part(body, len, boundary, "SPF", &vlen);
        ck_assert(v && vlen == 4 && memcmp(v, "pass", 4) == 0);
        free(body);
        payload_free(p);

        ck_assert_int_eq(format_build(p, WEBHOOK_FORMAT_RELAY, &x.f, &x.sig, fd, 3), 0);
        ck_assert_str_eq(p->content_type, "message/rfc822");
        ck_assert_str_eq(p->headers, "X-Envelope-From: alice@example.net\n"
                                     "X-Envelope-To: bob@example.com,carol@example.org\n");
        body = read_all(p, &len);
        ck_assert(len == sizeof(MSG) - 1 && memcmp(body, MSG, len) == 0);
        free(body);
        payload_free(p);

        fixture_free(&x);
        free(p);
        close(fd);
}
END_TEST

/* A boundary source a test controls: the first candidates repeat one
 * known byte string, then random-looking ones follow. */
static unsigned fake_calls, fake_colliding;

static int fake_random(void *buf, size_t len)
{
        unsigned char *b = buf;

        for (size_t i = 0; i < len; i++)
                b[i] = fake_calls < fake_colliding ? 0xab : (unsigned char)(fake_calls * 31 + i * 7);
        fake_calls++;
        return 0;
}

/* The boundary a message was made to contain is never used: the next
 * candidate is, and when every candidate collides the build fails. A
 * boundary across two chunks of the scan, or in a field, counts too. */
START_TEST(test_boundary_collision)
{
        char known[FORMAT_BOUNDARY_LEN + 1], got[FORMAT_BOUNDARY_LEN + 1];
        size_t size = 2 * FORMAT_SCAN_CHUNK + 500;
        char *msg = malloc(size);
        const char *none[] = { "" };
        struct fixture x;
        struct payload *p = malloc(sizeof(*p));
        bool utf8;
        int fd;

        ck_assert(msg && p);
        fake_calls = 0;
        fake_colliding = 100;
        ck_assert_int_eq(fake_random(known, 1), 0);     /* learn the candidate */
        fake_calls = 0;
        {
                int tmpfd = item_with("x", 1);

                ck_assert_int_eq(format_boundary_pick(known, none, 1, tmpfd, 3, fake_random, &utf8), 0);
                close(tmpfd);
        }
        /* known is the colliding candidate; hide it across the first chunk edge. */
        memset(msg, 'a', size);
        memcpy(msg, "Subject: x\r\n\r\n", 14);
        memcpy(msg + FORMAT_SCAN_CHUNK - 10, "--", 2);
        memcpy(msg + FORMAT_SCAN_CHUNK - 8, known, FORMAT_BOUNDARY_LEN);
        fd = item_with(msg, size);

        fake_calls = 0;
        fake_colliding = 2;
        ck_assert_int_eq(format_boundary_pick(got, none, 1, fd, 3, fake_random, &utf8), 0);
        ck_assert_str_ne(got, known);
        ck_assert_uint_eq(fake_calls, 3);
        ck_assert(utf8);

        fake_calls = 0;
        fake_colliding = 1000;
        ck_assert_int_eq(format_boundary_pick(got, none, 1, fd, 3, fake_random, &utf8), -EEXIST);
        ck_assert_uint_eq(fake_calls, FORMAT_BOUNDARY_TRIES);

        /* In a field value: the subject, say. */
        {
                const char *fields[] = { "ok", known };
                int clean = item_with("Subject: x\r\n\r\nb\r\n", 17);

                fake_calls = 0;
                fake_colliding = 1;
                ck_assert_int_eq(format_boundary_pick(got, fields, 2, clean, 3, fake_random, &utf8), 0);
                ck_assert_str_ne(got, known);
                close(clean);
        }

        /* Through a format: the body still holds known once, the boundary another. */
        fixture_init(&x, fd);
        fake_calls = 0;
        fake_colliding = 1;
        ck_assert_int_eq(format_mailgun_multipart(p, &x.f, &x.sig, fd, 3, fake_random), 0);
        ck_assert(strstr(p->content_type, known) == NULL);
        payload_free(p);
        fixture_free(&x);
        free(p);
        free(msg);
        close(fd);
}
END_TEST

/* The message part's charset: a UTF-8 sequence cut by the scan's chunk
 * edge is still valid; one bad byte anywhere makes it iso-8859-1. */
START_TEST(test_multipart_charset)
{
        size_t size = 3 * FORMAT_SCAN_CHUNK;
        char *msg = malloc(size), boundary[FORMAT_BOUNDARY_LEN + 1];
        const char *none[] = { "" };
        bool utf8;
        int fd;

        ck_assert_ptr_nonnull(msg);
        for (size_t i = 0; i + 3 <= size; i += 3)
                memcpy(msg + i, "\xe2\x82\xac", 3);    /* the chunk is not a multiple of 3 */
        fd = item_with(msg, size);
        ck_assert_int_eq(format_boundary_pick(boundary, none, 1, fd, 3, fake_random, &utf8), 0);
        ck_assert(utf8);
        close(fd);
        msg[size - 1] = (char)0xff;
        fd = item_with(msg, size);
        ck_assert_int_eq(format_boundary_pick(boundary, none, 1, fd, 3, fake_random, &utf8), 0);
        ck_assert(!utf8);
        close(fd);
        free(msg);
}
END_TEST

static Suite *format_suite(void)
{
        Suite *s = suite_create("format");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_json_vectors);
        tcase_add_test(tc, test_json_blocks_match_reference);
        tcase_add_test(tc, test_postmark_valid_utf8);
        tcase_add_test(tc, test_postmark_random);
        tcase_add_test(tc, test_postmark_fields);
        tcase_add_test(tc, test_raw_formats);
        tcase_add_test(tc, test_boundary_collision);
        tcase_add_test(tc, test_multipart_charset);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(format_suite());
}
