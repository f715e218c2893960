/* Unit tests of receive/data.c, the DATA byte machine: end of data,
 * dot-unstuffing, smuggling, header counting, whatever the chunking; and
 * the same machine for BDAT chunks, which stores every byte as it came. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "data.h"
#include "unit.h"

/* Runs the DATA machine (the BDAT one with bdat) over input split in
 * chunks of `step` bytes. Returns the produced message; *consumed is how
 * much input was used. */
static char *feed_mode(const char *in, size_t len, size_t step, size_t *out_len, size_t *consumed,
                       struct data_machine *m, bool bdat)
{
        char *out = malloc(len + 1);
        size_t used = 0;

        if (bdat)
                data_init_bdat(m);
        else
                data_init(m);
        *out_len = 0;
        while (used < len && m->state != DATA_STATE_DONE) {
                size_t n = len - used < step ? len - used : step, produced = 0;
                /* Exactly as large as data.h promises, so an overrun shows. */
                char *chunk_out = malloc(n);

                ck_assert_ptr_nonnull(chunk_out);
                used += data_feed(m, in + used, n, chunk_out, &produced);
                ck_assert_uint_le(produced, n);
                memcpy(out + *out_len, chunk_out, produced);
                *out_len += produced;
                free(chunk_out);
        }
        out[*out_len] = '\0';
        *consumed = used;
        return out;
}

static char *feed(const char *in, size_t len, size_t step, size_t *out_len, size_t *consumed,
                  struct data_machine *m)
{
        return feed_mode(in, len, step, out_len, consumed, m, false);
}

/* The same input must give the same result whatever the chunking. */
static void assert_data(const char *in, const char *expect, bool done, size_t expect_consumed)
{
        static const size_t steps[] = { 1, 2, 3, 7, 4096 };

        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
                struct data_machine m;
                size_t out_len, consumed;
                char *out = feed(in, strlen(in), steps[i], &out_len, &consumed, &m);

                ck_assert_msg(out_len == strlen(expect) && memcmp(out, expect, out_len) == 0,
                              "step %zu: got [%s] want [%s]", steps[i], out, expect);
                ck_assert_int_eq(m.state == DATA_STATE_DONE, done);
                if (done)
                        ck_assert_uint_eq(consumed, expect_consumed);
                ck_assert_uint_eq(m.size, out_len);
                free(out);
        }
}

START_TEST(test_data_end_and_unstuffing)
{
        assert_data("Subject: x\r\n\r\nhello\r\n.\r\n", "Subject: x\r\n\r\nhello\r\n", true, 24);
        assert_data(".\r\n", "", true, 3);
        assert_data("a\r\n..b\r\n...\r\n.\r\nQUIT\r\n", "a\r\n.b\r\n..\r\n", true, 16);
        /* ".x" at a line start: the dot is stuffing and goes. */
        assert_data(".x\r\n.\r\n", "x\r\n", true, 7);
        /* ".\r" followed by other bytes: dot removed, CR kept. */
        assert_data(".\rX\r\n.\r\n", "\rX\r\n", true, 8);
        assert_data("a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n", true, 10);
}
END_TEST

/* A chunk that starts right after "<CRLF>.<CR>" used to get its first
 * byte and the held-back CR written together: one byte more than it had. */
START_TEST(test_data_output_never_exceeds_input)
{
        struct data_machine m;
        const char *head = "Subject: x\r\n\r\nbody\r\n.\r", *tail = "Xyz\r\n.\r\n";
        char out_head[32], out_tail[8], one;
        size_t produced = 0, used;

        data_init(&m);
        used = data_feed(&m, head, strlen(head), out_head, &produced);
        ck_assert_uint_eq(used, strlen(head));
        ck_assert_int_eq(m.state, DATA_STATE_DOT_CR);
        /* One byte in: only the owed CR comes out, and the X waits. */
        produced = 0;
        used = data_feed(&m, tail, 1, &one, &produced);
        ck_assert_uint_eq(produced, 1);
        ck_assert_uint_eq(used, 0);
        ck_assert_int_eq(one, '\r');
        produced = 0;
        used = data_feed(&m, tail, strlen(tail), out_tail, &produced);
        ck_assert_uint_eq(used, strlen(tail));
        ck_assert_int_eq(m.state, DATA_STATE_DONE);
        ck_assert_uint_eq(produced, 5);
        ck_assert(memcmp(out_tail, "Xyz\r\n", 5) == 0);
}
END_TEST

START_TEST(test_data_smuggling_does_not_end)
{
        /* Bare LF and bare CR never make a line: none of these end DATA. */
        assert_data("a\n.\nb", "a\n.\nb", false, 0);
        assert_data("a\r.\rb", "a\r.\rb", false, 0);
        assert_data("a\r\n.\nb", "a\r\n\nb", false, 0);
        assert_data("a\n.\r\nb", "a\n.\r\nb", false, 0);
        /* ... and the real end still works after them. */
        assert_data("a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", "a\n.\r\nMAIL FROM:<x@y>\r\n", true, 25);
}
END_TEST

START_TEST(test_data_header_counting)
{
        struct data_machine m;
        size_t out_len, consumed;
        const char *in = "Received: a\r\nreceived: b\r\n c\r\nX: Received: no\r\n\r\nReceived: body\r\n.\r\n";
        char *out = feed(in, strlen(in), 5, &out_len, &consumed, &m);

        ck_assert_uint_eq(m.received, 2);
        ck_assert_uint_eq(m.header_lines, 4);
        ck_assert(!m.in_header);
        free(out);
}
END_TEST

/* BDAT: the chunks are the message. Nothing ends it, no dot goes, bare
 * CR and LF and NUL stay, whatever the chunking (a chunk boundary may
 * split a line or its CR LF). */
START_TEST(test_bdat_bytes_exact)
{
        static const char in[] = "Subject: b\r\n\r\n.\r\n..two\r\n.\r\na\nb\rc\0d\r\n.";
        static const size_t steps[] = { 1, 2, 3, 7, 4096 };

        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
                struct data_machine m;
                size_t out_len, consumed;
                char *out = feed_mode(in, sizeof(in) - 1, steps[i], &out_len, &consumed, &m, true);

                ck_assert_uint_eq(consumed, sizeof(in) - 1);
                ck_assert_uint_eq(out_len, sizeof(in) - 1);
                ck_assert(memcmp(out, in, out_len) == 0);
                ck_assert_int_ne(m.state, DATA_STATE_DONE);
                ck_assert_uint_eq(m.size, out_len);
                ck_assert(!m.in_header);
                free(out);
        }
}
END_TEST

/* The header is counted as for DATA, so the same limits hold; a line
 * that starts with a dot is a line like any other. */
START_TEST(test_bdat_header_counting)
{
        struct data_machine m;
        size_t out_len, consumed;
        const char *in = "Received: a\r\n.Received: no\r\nreceived: b\r\n\r\nReceived: body\r\n";
        char *out = feed_mode(in, strlen(in), 3, &out_len, &consumed, &m, true);

        ck_assert_uint_eq(m.received, 2);
        ck_assert_uint_eq(m.header_lines, 3);
        ck_assert(!m.in_header);
        ck_assert_str_eq(out, in);
        free(out);
}
END_TEST

static Suite *data_suite(void)
{
        Suite *s = suite_create("data");
        TCase *tc = tcase_create("data");

        tcase_add_test(tc, test_data_end_and_unstuffing);
        tcase_add_test(tc, test_data_smuggling_does_not_end);
        tcase_add_test(tc, test_data_output_never_exceeds_input);
        tcase_add_test(tc, test_data_header_counting);
        tcase_add_test(tc, test_bdat_bytes_exact);
        tcase_add_test(tc, test_bdat_header_counting);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(data_suite());
}
