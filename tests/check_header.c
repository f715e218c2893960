/* Unit tests of lib/utf8.c, lib/rfc2047.c, lib/header.c and lib/json.c. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "header.h"
#include "json.h"
#include "rfc2047.h"
#include "unit.h"
#include "utf8.h"

#define FFFD "\xef\xbf\xbd"

/* Parses a NUL-free literal. */
static struct header_list parse_ok(const char *msg, unsigned max_lines)
{
        struct header_list h;
        int r = header_parse(msg, strlen(msg), max_lines, &h);

        ck_assert_int_eq(r, 0);
        return h;
}

static void assert_field(const struct header_list *h, size_t i, const char *name, const char *value)
{
        ck_assert_uint_lt(i, h->count);
        ck_assert_str_eq(h->fields[i].name, name);
        ck_assert_str_eq(h->fields[i].value, value);
        ck_assert_uint_eq(h->fields[i].value_len, strlen(value));
}

static void assert_decode(const char *in, const char *want)
{
        char *got = rfc2047_decode(in);

        ck_assert_ptr_nonnull(got);
        ck_assert_msg(strcmp(got, want) == 0, "rfc2047_decode(\"%s\") = \"%s\", want \"%s\"",
                      in, got, want);
        ck_assert(utf8_valid(got, strlen(got)));
        free(got);
}

static void assert_sanitize(const char *in, size_t len, const char *want)
{
        char *got = utf8_sanitize(in, len);

        ck_assert_ptr_nonnull(got);
        ck_assert_str_eq(got, want);
        ck_assert(utf8_valid(got, strlen(got)));
        free(got);
}

/* ---- utf8 ------------------------------------------------------------ */

START_TEST(utf8_valid_sequences)
{
        ck_assert(utf8_valid("", 0));
        ck_assert(utf8_valid("plain ascii", 11));
        ck_assert(utf8_valid("\xc3\xa9", 2));                   /* U+00E9 */
        ck_assert(utf8_valid("\xe2\x82\xac", 3));               /* U+20AC */
        ck_assert(utf8_valid("\xf0\x9f\x98\x80", 4));           /* U+1F600 */
        ck_assert(utf8_valid("\xf4\x8f\xbf\xbf", 4));           /* U+10FFFF */
        ck_assert(utf8_valid("\xed\x9f\xbf", 3));               /* U+D7FF */
        ck_assert(utf8_valid("a\0b", 3));
}
END_TEST

START_TEST(utf8_invalid_sequences)
{
        ck_assert(!utf8_valid("\x80", 1));                      /* stray continuation */
        ck_assert(!utf8_valid("\xc0\xaf", 2));                  /* overlong */
        ck_assert(!utf8_valid("\xc1\xbf", 2));
        ck_assert(!utf8_valid("\xe0\x80\xaf", 3));              /* overlong */
        ck_assert(!utf8_valid("\xed\xa0\x80", 3));              /* surrogate */
        ck_assert(!utf8_valid("\xf0\x80\x80\xaf", 4));          /* overlong */
        ck_assert(!utf8_valid("\xf4\x90\x80\x80", 4));          /* > U+10FFFF */
        ck_assert(!utf8_valid("\xf5\x80\x80\x80", 4));
        ck_assert(!utf8_valid("\xff", 1));
        ck_assert(!utf8_valid("\xe2\x82", 2));                  /* truncated */
        ck_assert(!utf8_valid("\xc3\xa9\xc3", 3));
}
END_TEST

/* Byte-by-byte reference for utf8_valid: decode each sequence and check
 * its code point (not overlong, no surrogate, at most U+10FFFF). */
static bool ref_utf8_valid(const unsigned char *s, size_t len)
{
        for (size_t i = 0; i < len;) {
                unsigned char b = s[i];
                size_t n = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 :
                           (b & 0xf8) == 0xf0 ? 4 : 0;
                static const uint32_t least[5] = { 0, 0, 0x80, 0x800, 0x10000 };
                uint32_t cp;

                if (n == 0 || i + n > len)
                        return false;
                cp = n == 1 ? b : (uint32_t)(b & (0x7f >> n));
                for (size_t k = 1; k < n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + k] & 0x3f);
                }
                if (cp < least[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                        return false;
                i += n;
        }
        return true;
}

/* The sixteen-bytes-at-a-time check against the reference: random mixes
 * of valid and broken sequences, every prefix length, every alignment,
 * and one bad byte put at every place of a long valid text (each lane of
 * a block, each block edge, the overlapping last block). */
START_TEST(utf8_valid_blocks_match_reference)
{
        static const char *const pieces[] = {
                "a", "Z", " ", "\r\n", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
                "\xed\x9f\xbf", "\xe0\xa0\x80", "\xee\x80\x80", "\xc2\x80", "\x00",
                /* broken: */ "\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xe0\x9f\xbf", "\xed\xa0\x80",
                "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80", "\xff", "\xe2\x82", "\xf0\x9f\x98", "\xc3",
        };
        enum { GOOD = 13, PIECES = sizeof(pieces) / sizeof(pieces[0]) };
        static const unsigned char bad[] = { 0x80, 0xbf, 0xc0, 0xc3, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff };
        unsigned char buf[512 + 3], text[1200];
        unsigned seed = 11;
        size_t tlen = 0;

        for (unsigned round = 0; round < 600; round++) {
                size_t len = 0, want = (size_t)rand_r(&seed) % 300;
                unsigned align = round % 4;

                while (len < want) {
                        /* Mostly valid; now and then a broken piece. */
                        unsigned k = (unsigned)rand_r(&seed) % (rand_r(&seed) % 40 ? GOOD : PIECES);
                        size_t n = k == 12 ? 1 : strlen(pieces[k]);

                        memcpy(buf + align + len, pieces[k], n);
                        len += n;
                }
                for (size_t cut = 0; cut <= len; cut++)
                        ck_assert_msg(utf8_valid((const char *)buf + align, cut) ==
                                      ref_utf8_valid(buf + align, cut), "round %u, %zu bytes", round, cut);
        }
        while (tlen < sizeof(text) - 4) {
                unsigned k = (unsigned)rand_r(&seed) % (GOOD - 1);   /* no NUL: strlen */

                memcpy(text + tlen, pieces[k], strlen(pieces[k]));
                tlen += strlen(pieces[k]);
        }
        ck_assert(utf8_valid((const char *)text, tlen));
        for (size_t at = 0; at < tlen; at++) {
                for (size_t b = 0; b < sizeof(bad); b++) {
                        unsigned char was = text[at];

                        text[at] = bad[b];
                        ck_assert_msg(utf8_valid((const char *)text, tlen) == ref_utf8_valid(text, tlen),
                                      "0x%02x at %zu", bad[b], at);
                        text[at] = was;
                }
        }
}
END_TEST

START_TEST(utf8_sanitize_maximal_subparts)
{
        /* Unicode 15 table 3-8. */
        assert_sanitize("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64", 13,
                        "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d");
        /* Bytes that can never start a sequence: one U+FFFD each. */
        assert_sanitize("\xc0\xaf", 2, FFFD FFFD);
        assert_sanitize("\xe0\x80\xaf", 3, FFFD FFFD FFFD);
        assert_sanitize("\xed\xa0\x80", 3, FFFD FFFD FFFD);
        assert_sanitize("\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD);
        assert_sanitize("\xff\xfe", 2, FFFD FFFD);
        /* A truncated sequence is one U+FFFD, at the end or before ASCII. */
        assert_sanitize("x\xe2\x82", 3, "x" FFFD);
        assert_sanitize("\xf0\x9f\x98z", 4, FFFD "z");
        assert_sanitize("caf\xe9", 4, "caf" FFFD);
        /* NUL bytes cannot live in a C string. */
        assert_sanitize("a\0b", 3, "a" FFFD "b");
        /* Valid input comes back unchanged. */
        assert_sanitize("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
        assert_sanitize("", 0, "");
}
END_TEST

START_TEST(utf8_sanitize_exact_bytes)
{
        char *got = utf8_sanitize("\x80", 1);

        ck_assert_ptr_nonnull(got);
        ck_assert_uint_eq(strlen(got), 3);
        ck_assert_int_eq((unsigned char)got[0], 0xef);
        ck_assert_int_eq((unsigned char)got[1], 0xbf);
        ck_assert_int_eq((unsigned char)got[2], 0xbd);
        free(got);
}
END_TEST

/* ---- rfc2047 --------------------------------------------------------- */

START_TEST(rfc2047_b_and_q)
{
        assert_decode("=?UTF-8?B?w6lsw6h2ZQ==?=", "\xc3\xa9l\xc3\xa8ve");
        assert_decode("=?utf-8?b?w6lsw6h2ZQ==?=", "\xc3\xa9l\xc3\xa8ve");
        assert_decode("=?UTF-8?Q?=C3=A9l=C3=A8ve?=", "\xc3\xa9l\xc3\xa8ve");
        assert_decode("=?utf-8?q?=c3=a9l=c3=a8ve?=", "\xc3\xa9l\xc3\xa8ve");
        /* Underscore is a space in Q; "=5F" is an underscore. */
        assert_decode("=?UTF-8?Q?a_b=5Fc=20d?=", "a b_c d");
        /* B without padding. */
        assert_decode("=?UTF-8?B?w6k?=", "\xc3\xa9");
        assert_decode("=?UTF-8?B?QUI?=", "AB");
        assert_decode("=?UTF-8?B?" "?=", "");
        assert_decode("=?UTF-8?Q?" "?=", "");
}
END_TEST

START_TEST(rfc2047_charsets)
{
        assert_decode("=?ISO-8859-1?Q?caf=E9_cr=E8me?=", "caf\xc3\xa9 cr\xc3\xa8me");
        assert_decode("=?iso-8859-1?B?R3L832U=?=", "Gr\xc3\xbc\xc3\x9f" "e");
        /* Windows-1252 in the spellings senders use. */
        assert_decode("=?windows-1252?Q?=80_=93quoted=94?=",
                      "\xe2\x82\xac \xe2\x80\x9cquoted\xe2\x80\x9d");
        assert_decode("=?Windows-1252?Q?=80?=", "\xe2\x82\xac");
        assert_decode("=?WINDOWS-1252?Q?=80?=", "\xe2\x82\xac");
        assert_decode("=?cp1252?Q?=80?=", "\xe2\x82\xac");
        /* A stateful charset needs its final shift sequence flushed. */
        assert_decode("=?ISO-2022-JP?B?GyRCJEskWyRzGyhC?=",
                      "\xe3\x81\xab\xe3\x81\xbb\xe3\x82\x93");
        /* A charset that makes four characters of one byte: the output
         * buffer must grow. */
        {
                char in[256] = "=?TSCII?Q?", want[1024] = "";
                for (int i = 0; i < 40; i++) {
                        strcat(in, "=82");
                        strcat(want, "\xe0\xae\xb8\xe0\xaf\x8d\xe0\xae\xb0\xe0\xaf\x80");
                }
                strcat(in, "?=");
                assert_decode(in, want);
        }
        /* RFC 2231 language suffix. */
        assert_decode("=?UTF-8*en-us?Q?hi?=", "hi");
        assert_decode("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore");
}
END_TEST

START_TEST(rfc2047_left_as_is)
{
        /* Unknown charset. */
        assert_decode("=?x-unknown-42?Q?abc?=", "=?x-unknown-42?Q?abc?=");
        /* Bytes the charset does not have. */
        assert_decode("=?UTF-8?Q?=FF?=", "=?UTF-8?Q?=FF?=");
        assert_decode("=?US-ASCII?Q?=E9?=", "=?US-ASCII?Q?=E9?=");
        assert_decode("=?windows-1252?Q?=81?=", "=?windows-1252?Q?=81?=");
        /* Malformed words. */
        assert_decode("=?UTF-8?Q?=ZZ?=", "=?UTF-8?Q?=ZZ?=");
        assert_decode("=?UTF-8?Q?abc=?=", "=?UTF-8?Q?abc=?=");
        assert_decode("=?UTF-8?Q?abc=4?=", "=?UTF-8?Q?abc=4?=");
        assert_decode("=?UTF-8?X?abc?=", "=?UTF-8?X?abc?=");
        assert_decode("=?UTF-8?B?ab!c?=", "=?UTF-8?B?ab!c?=");
        assert_decode("=?UTF-8?B?QUJDR?=", "=?UTF-8?B?QUJDR?=");
        assert_decode("=?UTF-8?B?QQ==QQ==?=", "=?UTF-8?B?QQ==QQ==?=");
        assert_decode("=?UTF-8?Q?abc", "=?UTF-8?Q?abc");
        assert_decode("=?UTF-8?Q?a b?=", "=?UTF-8?Q?a b?=");
        assert_decode("=??Q?abc?=", "=??Q?abc?=");
        assert_decode("=?", "=?");
        assert_decode("=?UTF-8?", "=?UTF-8?");
        assert_decode("=?UTF-8?Q", "=?UTF-8?Q");
        assert_decode("Hello =? world ?=", "Hello =? world ?=");
        /* A charset name cannot select iconv's //IGNORE mode. */
        assert_decode("=?UTF-8//IGNORE?Q?=FF?=", "=?UTF-8//IGNORE?Q?=FF?=");
        /* Plain text is untouched. */
        assert_decode("", "");
        assert_decode("Just a subject", "Just a subject");
}
END_TEST

START_TEST(rfc2047_adjacent_words)
{
        /* Whitespace between two decoded words goes. */
        assert_decode("=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab");
        assert_decode("=?UTF-8?Q?a?=\t  =?UTF-8?Q?b?=", "ab");
        assert_decode("=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?=", "ab");
        assert_decode("=?UTF-8?Q?a?==?UTF-8?Q?b?=", "ab");
        assert_decode("=?ISO-8859-1?Q?=E9?= =?UTF-8?Q?=C3=A9?=", "\xc3\xa9\xc3\xa9");
        /* ...but not between a word and text, or around a word left as is. */
        assert_decode("=?UTF-8?Q?a?= b =?UTF-8?Q?c?=", "a b c");
        assert_decode("x =?UTF-8?Q?a?= y", "x a y");
        assert_decode("=?UTF-8?Q?a?= =?UTF-8?Q?=ZZ?=", "a =?UTF-8?Q?=ZZ?=");
        assert_decode("=?UTF-8?Q?a?= =?bogus?Q?b?= =?UTF-8?Q?c?=", "a =?bogus?Q?b?= c");
        /* A character split over two words (common, if not allowed). */
        assert_decode("=?UTF-8?Q?=C3?= =?UTF-8?Q?=A9?=", "\xc3\xa9");
        assert_decode("=?UTF-8?B?w6nD?= =?UTF-8?B?qQ==?=", "\xc3\xa9\xc3\xa9");
        /* In a run where one word does not convert, the others still do. */
        assert_decode("=?UTF-8?Q?a?= =?UTF-8?Q?=FF?= =?UTF-8?Q?b?=", "a =?UTF-8?Q?=FF?= b");
        /* Real-world From: */
        assert_decode("=?UTF-8?Q?Ren=C3=A9e?= <renee@example.org>",
                      "Ren\xc3\xa9" "e <renee@example.org>");
}
END_TEST

START_TEST(rfc2047_result_is_utf8)
{
        /* Raw 8-bit text around words: maximal subparts become U+FFFD. */
        assert_decode("\xff =?UTF-8?Q?a?=", FFFD " a");
        assert_decode("caf\xe9", "caf" FFFD);
        /* Raw UTF-8 (RFC 6532) passes. */
        assert_decode("caf\xc3\xa9", "caf\xc3\xa9");
        /* A decoded NUL cannot end the string early. */
        assert_decode("=?UTF-8?Q?a=00b?=", "a" FFFD "b");
}
END_TEST

/* ---- header ---------------------------------------------------------- */

START_TEST(header_folded)
{
        struct header_list h = parse_ok("Subject: one\r\n two\r\n\tthree\r\n"
                                        "X-Other: x\r\n\r\nbody\r\n", 0);

        ck_assert_uint_eq(h.count, 2);
        assert_field(&h, 0, "Subject", "one two\tthree");
        assert_field(&h, 1, "X-Other", "x");
        header_list_free(&h);
        ck_assert_uint_eq(h.count, 0);
        ck_assert_ptr_null(h.fields);

        /* A value that starts on the continuation line. */
        h = parse_ok("Subject:\r\n   hello\r\n\r\n", 0);
        assert_field(&h, 0, "Subject", "hello");
        header_list_free(&h);

        /* A line of only WSP is a continuation, not the end. */
        h = parse_ok("A: 1\r\n \r\nB: 2\r\n\r\n", 0);
        ck_assert_uint_eq(h.count, 2);
        assert_field(&h, 0, "A", "1 ");
        assert_field(&h, 1, "B", "2");
        header_list_free(&h);
}
END_TEST

START_TEST(header_lf_only)
{
        struct header_list h = parse_ok("From: a@example.org\nSubject: x\n y\n\nC: body\n", 0);

        ck_assert_uint_eq(h.count, 2);
        assert_field(&h, 0, "From", "a@example.org");
        assert_field(&h, 1, "Subject", "x y");
        header_list_free(&h);

        /* Mixed line ends. */
        h = parse_ok("A: 1\r\nB: 2\n\r\nC: body\r\n", 0);
        ck_assert_uint_eq(h.count, 2);
        header_list_free(&h);
}
END_TEST

START_TEST(header_no_body)
{
        struct header_list h = parse_ok("A: 1\r\nB: 2\r\n", 0);

        ck_assert_uint_eq(h.count, 2);
        assert_field(&h, 1, "B", "2");
        header_list_free(&h);

        h = parse_ok("A: 1\r\nB: 2\r\n c", 0);              /* no final line break */
        ck_assert_uint_eq(h.count, 2);
        assert_field(&h, 1, "B", "2 c");
        header_list_free(&h);

        h = parse_ok("", 0);
        ck_assert_uint_eq(h.count, 0);
        header_list_free(&h);

        h = parse_ok("\r\nA: body\r\n", 0);                 /* no header at all */
        ck_assert_uint_eq(h.count, 0);
        header_list_free(&h);
}
END_TEST

START_TEST(header_empty_values)
{
        struct header_list h = parse_ok("A:\r\nB: \r\nC:\t \r\nD:x\r\nE:  y  \r\n\r\n", 0);

        ck_assert_uint_eq(h.count, 5);
        assert_field(&h, 0, "A", "");
        assert_field(&h, 1, "B", "");
        assert_field(&h, 2, "C", "");
        assert_field(&h, 3, "D", "x");
        assert_field(&h, 4, "E", "y  ");               /* trailing WSP is data */
        header_list_free(&h);
}
END_TEST

START_TEST(header_duplicates_in_order)
{
        struct header_list h = parse_ok("Received: from c\r\nSubject: s\r\n"
                                        "Received: from b\r\nreceived: from a\r\n\r\n", 0);
        const struct header_field *f;

        ck_assert_uint_eq(h.count, 4);
        assert_field(&h, 0, "Received", "from c");
        assert_field(&h, 2, "Received", "from b");
        assert_field(&h, 3, "received", "from a");
        f = header_find(&h, "RECEIVED");
        ck_assert_ptr_eq(f, &h.fields[0]);
        f = header_find(&h, "subject");
        ck_assert_ptr_eq(f, &h.fields[1]);
        ck_assert_ptr_null(header_find(&h, "From"));
        ck_assert_ptr_null(header_find(&h, "Subjec"));
        header_list_free(&h);
}
END_TEST

START_TEST(header_garbage_skipped)
{
        struct header_list h = parse_ok(" leading continuation\r\n"
                                        "From sender@example.org Mon Jan  1 00:00:00 2024\r\n"
                                        "A: 1\r\n"
                                        "this is not a header\r\n"
                                        " continuation of the garbage\r\n"
                                        ": no name\r\n"
                                        "Bad Name: x\r\n"
                                        "Subject : obsolete space\r\n"
                                        "B: 2\r\n\r\n", 0);

        ck_assert_uint_eq(h.count, 3);
        assert_field(&h, 0, "A", "1");
        assert_field(&h, 1, "Subject", "obsolete space");
        assert_field(&h, 2, "B", "2");
        header_list_free(&h);
}
END_TEST

START_TEST(header_raw_bytes)
{
        /* 8-bit bytes, a bare CR and a NUL stay as they are in the value. */
        static const char msg[] = "Subject: caf\xe9 \xc3\xa9\r\nX-Cr: a\rb\r\nX-Nul: a\0b\r\n\r\n";
        struct header_list h;

        ck_assert_int_eq(header_parse(msg, sizeof(msg) - 1, 0, &h), 0);
        ck_assert_uint_eq(h.count, 3);
        assert_field(&h, 0, "Subject", "caf\xe9 \xc3\xa9");
        assert_field(&h, 1, "X-Cr", "a\rb");
        ck_assert_uint_eq(h.fields[2].value_len, 3);
        ck_assert_mem_eq(h.fields[2].value, "a\0b", 4);
        header_list_free(&h);
}
END_TEST

START_TEST(header_line_limit)
{
        static const char msg[] = "A: 1\r\nB: 2\r\n 2b\r\nC: 3\r\n\r\nbody\r\nmore\r\n";
        struct header_list h;

        ck_assert_int_eq(header_parse(msg, strlen(msg), 4, &h), 0);
        ck_assert_uint_eq(h.count, 3);
        header_list_free(&h);
        /* Continuation lines count: four physical lines. */
        ck_assert_int_eq(header_parse(msg, strlen(msg), 3, &h), -E2BIG);
        ck_assert_uint_eq(h.count, 0);
        ck_assert_ptr_null(h.fields);
        ck_assert_int_eq(header_parse(msg, strlen(msg), 1, &h), -E2BIG);
        /* 0: only the byte limit. */
        ck_assert_int_eq(header_parse(msg, strlen(msg), 0, &h), 0);
        header_list_free(&h);
        /* Garbage lines count too. */
        ck_assert_int_eq(header_parse("x\r\ny\r\nA: 1\r\n", 12, 2, &h), -E2BIG);
}
END_TEST

/* A header section of exactly `size` bytes (one long field and filler
 * lines of 1000 bytes), followed by an empty line and a body. */
static char *make_big(size_t size, size_t *len)
{
        char *buf = malloc(size + 64);
        size_t pos = 0;

        ck_assert_ptr_nonnull(buf);
        while (size - pos > 1000) {
                memcpy(buf + pos, "X-Fill: ", 8);
                memset(buf + pos + 8, 'f', 1000 - 10);
                memcpy(buf + pos + 998, "\r\n", 2);
                pos += 1000;
        }
        /* The last line: "Z: zzz...\r\n", at least 5 bytes. */
        ck_assert_uint_ge(size - pos, 5);
        memcpy(buf + pos, "Z: ", 3);
        memset(buf + pos + 3, 'z', size - pos - 5);
        memcpy(buf + size - 2, "\r\n", 2);
        memcpy(buf + size, "\r\nbody\r\n", 8);
        *len = size + 8;
        return buf;
}

/* Fields make_big writes. */
static size_t big_count(size_t size)
{
        return (size - 1) / 1000 + 1;
}

START_TEST(header_byte_limit)
{
        struct header_list h;
        size_t len;
        char *buf = make_big(HEADER_BYTES_MAX, &len);

        ck_assert_int_eq(header_parse(buf, len, 0, &h), 0);
        ck_assert_uint_eq(h.count, big_count(HEADER_BYTES_MAX));
        ck_assert_str_eq(h.fields[h.count - 1].name, "Z");
        header_list_free(&h);
        free(buf);

        buf = make_big(HEADER_BYTES_MAX + 1, &len);
        ck_assert_int_eq(header_parse(buf, len, 0, &h), -E2BIG);
        ck_assert_ptr_null(h.fields);
        /* Without the empty line it is the same section. */
        ck_assert_int_eq(header_parse(buf, HEADER_BYTES_MAX + 1, 0, &h), -E2BIG);
        free(buf);
}
END_TEST

static int tmp_file(const void *data, size_t len)
{
        const char *dir = getenv("TMPDIR");
        char path[4096];
        int fd;

        snprintf(path, sizeof(path), "%s/check_header.XXXXXX", dir && *dir ? dir : "/tmp");
        fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
        return fd;
}

START_TEST(header_read_file)
{
        static const char msg[] = "PREFIX-BYTES"
                                  "Subject: =?UTF-8?Q?caf=C3=A9?=\r\n\tfolded\r\n"
                                  "From: a@example.org\r\n\r\nNot: header\r\n";
        struct header_list h;
        int fd = tmp_file(msg, sizeof(msg) - 1);

        ck_assert_int_eq(header_read(fd, 12, 0, &h), 0);
        ck_assert_uint_eq(h.count, 2);
        assert_field(&h, 0, "Subject", "=?UTF-8?Q?caf=C3=A9?=\tfolded");
        assert_field(&h, 1, "From", "a@example.org");
        header_list_free(&h);
        /* pread: the file offset is untouched. */
        ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), (off_t)sizeof(msg) - 1);
        /* Past the end: an empty list. */
        ck_assert_int_eq(header_read(fd, 10000, 0, &h), 0);
        ck_assert_uint_eq(h.count, 0);
        ck_assert_int_eq(header_read(fd, -1, 0, &h), -EINVAL);
        ck_assert_int_eq(header_read(fd, INT64_MAX - 10, 0, &h), -EOVERFLOW);
        ck_assert_int_eq(close(fd), 0);
        ck_assert_int_eq(header_read(fd, 0, 0, &h), -EBADF);
}
END_TEST

START_TEST(header_read_chunk_boundaries)
{
        /* Put the empty line's CRLF, and a field's, across 64 KiB reads. */
        for (size_t shift = 0; shift < 4; shift++) {
                size_t size = 65536 - 2 + shift, len;
                char *buf = make_big(size, &len);
                struct header_list h;
                int fd = tmp_file(buf, len);

                ck_assert_int_eq(header_read(fd, 0, 0, &h), 0);
                ck_assert_uint_eq(h.count, big_count(size));
                ck_assert_str_eq(h.fields[h.count - 1].name, "Z");
                ck_assert_uint_eq(h.fields[h.count - 1].value_len, size - 1000 * (h.count - 1) - 5);
                header_list_free(&h);
                close(fd);
                free(buf);
        }
}
END_TEST

START_TEST(header_read_limits)
{
        size_t len;
        char *buf = make_big(HEADER_BYTES_MAX, &len);
        struct header_list h;
        int fd = tmp_file(buf, len);

        ck_assert_int_eq(header_read(fd, 0, 0, &h), 0);
        ck_assert_uint_eq(h.count, big_count(HEADER_BYTES_MAX));
        header_list_free(&h);
        ck_assert_int_eq(header_read(fd, 0, 100, &h), -E2BIG);
        ck_assert_ptr_null(h.fields);
        close(fd);
        free(buf);

        buf = make_big(HEADER_BYTES_MAX + 1, &len);
        fd = tmp_file(buf, len);
        ck_assert_int_eq(header_read(fd, 0, 0, &h), -E2BIG);
        /* Read from one byte in, the section fits again. */
        ck_assert_int_eq(header_read(fd, 1, 0, &h), 0);
        ck_assert_str_eq(h.fields[0].name, "-Fill");
        header_list_free(&h);
        close(fd);
        free(buf);

        /* A long header with no empty line and no end: -E2BIG, not a hang. */
        buf = malloc(HEADER_BYTES_MAX + 100);
        ck_assert_ptr_nonnull(buf);
        memset(buf, 'a', HEADER_BYTES_MAX + 100);
        buf[0] = 'A';
        buf[1] = ':';
        fd = tmp_file(buf, HEADER_BYTES_MAX + 100);
        ck_assert_int_eq(header_read(fd, 0, 0, &h), -E2BIG);
        close(fd);
        free(buf);
}
END_TEST

/* ---- json ------------------------------------------------------------ */

START_TEST(json_exact)
{
        static const char msg[] = "Received: from a\r\n\tby b\r\n"
                                  "Subject: =?UTF-8?Q?caf=C3=A9?= caf\xe9 \xc3\xa9\r\n"
                                  "X-Quote: \"q\" \\ / \x01\r\n"
                                  "X-Empty:\r\n"
                                  "X-Nul: a\0b\r\n\r\nbody";
        struct header_list h;
        char *text;

        ck_assert_int_eq(header_parse(msg, sizeof(msg) - 1, 0, &h), 0);
        text = hwjson_headers_dump(&h);
        ck_assert_ptr_nonnull(text);
        ck_assert_str_eq(text,
                "[[\"Received\",\"from a\\tby b\"],"
                "[\"Subject\",\"=?UTF-8?Q?caf=C3=A9?= caf" FFFD " \xc3\xa9\"],"
                "[\"X-Quote\",\"\\\"q\\\" \\\\ / \\u0001\"],"
                "[\"X-Empty\",\"\"],"
                "[\"X-Nul\",\"a" FFFD "b\"]]");
        free(text);
        header_list_free(&h);
}
END_TEST

START_TEST(json_array_value)
{
        struct header_list h = parse_ok("A: 1\r\nB: \xff\r\n", 0);
        json_t *arr = hwjson_headers_array(&h), *pair;

        ck_assert_ptr_nonnull(arr);
        ck_assert_uint_eq(json_array_size(arr), 2);
        pair = json_array_get(arr, 1);
        ck_assert(json_is_array(pair));
        ck_assert_str_eq(json_string_value(json_array_get(pair, 0)), "B");
        ck_assert_str_eq(json_string_value(json_array_get(pair, 1)), FFFD);
        json_decref(arr);
        header_list_free(&h);

        h = parse_ok("", 0);
        char *text = hwjson_headers_dump(&h);
        ck_assert_str_eq(text, "[]");
        free(text);
        header_list_free(&h);
}
END_TEST

/* ---- robustness ------------------------------------------------------ */

START_TEST(random_input)
{
        /* Cheap smoke test in the spirit of the fuzz target: random bytes
         * biased towards the syntax, every result valid and freed. */
        static const char alphabet[] = "=?_:\r\n \tQqBb-8UTF\xc3\xa9\xff\x80" "ab";
        unsigned seed = 12345;
        char buf[512];

        for (int iter = 0; iter < 2000; iter++) {
                size_t len = (size_t)(iter % (int)sizeof(buf));
                struct header_list h;

                for (size_t i = 0; i < len; i++) {
                        seed = seed * 1103515245u + 12345u;
                        buf[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
                }
                ck_assert_int_eq(header_parse(buf, len, 0, &h), 0);
                for (size_t i = 0; i < h.count; i++) {
                        char *d = rfc2047_decode(h.fields[i].value);
                        ck_assert_ptr_nonnull(d);
                        ck_assert(utf8_valid(d, strlen(d)));
                        free(d);
                }
                char *text = hwjson_headers_dump(&h);
                ck_assert_ptr_nonnull(text);
                free(text);
                header_list_free(&h);
        }
}
END_TEST

static Suite *header_suite(void)
{
        Suite *s = suite_create("header");
        TCase *tc;

        tc = tcase_create("utf8");
        tcase_add_test(tc, utf8_valid_sequences);
        tcase_add_test(tc, utf8_invalid_sequences);
        tcase_add_test(tc, utf8_valid_blocks_match_reference);
        tcase_add_test(tc, utf8_sanitize_maximal_subparts);
        tcase_add_test(tc, utf8_sanitize_exact_bytes);
        suite_add_tcase(s, tc);

        tc = tcase_create("rfc2047");
        tcase_add_test(tc, rfc2047_b_and_q);
        tcase_add_test(tc, rfc2047_charsets);
        tcase_add_test(tc, rfc2047_left_as_is);
        tcase_add_test(tc, rfc2047_adjacent_words);
        tcase_add_test(tc, rfc2047_result_is_utf8);
        suite_add_tcase(s, tc);

        tc = tcase_create("header");
        tcase_add_test(tc, header_folded);
        tcase_add_test(tc, header_lf_only);
        tcase_add_test(tc, header_no_body);
        tcase_add_test(tc, header_empty_values);
        tcase_add_test(tc, header_duplicates_in_order);
        tcase_add_test(tc, header_garbage_skipped);
        tcase_add_test(tc, header_raw_bytes);
        tcase_add_test(tc, header_line_limit);
        tcase_add_test(tc, header_byte_limit);
        tcase_add_test(tc, header_read_file);
        tcase_add_test(tc, header_read_chunk_boundaries);
        tcase_add_test(tc, header_read_limits);
        suite_add_tcase(s, tc);

        tc = tcase_create("json");
        tcase_add_test(tc, json_exact);
        tcase_add_test(tc, json_array_value);
        tcase_add_test(tc, random_input);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(header_suite());
}
