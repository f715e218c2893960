/* Unit tests of lib/metrics.c: counts from many processes at once add up
 * exactly, a missing, short, garbage or foreign file is replaced, a file
 * that cannot be replaced turns counting off without failing, a FIFO
 * under its name is not waited on, and the
 * classification of replies. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "unit.h"

#define WRITERS 12
#define COUNTS_EACH 20000

static struct spool spool;

static void setup(void)
{
        unit_spool_setup(&spool);
}

static void teardown(void)
{
        metrics_close();
        unit_spool_teardown(&spool);
}

static void write_file(const char *bytes, size_t len)
{
        int fd = openat(spool.root_fd, METRICS_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, bytes, len), (ssize_t)len);
        ck_assert_int_eq(close(fd), 0);
}

static off_t file_size(void)
{
        struct stat st;

        ck_assert_int_eq(fstatat(spool.root_fd, METRICS_FILE, &st, 0), 0);
        return st.st_size;
}

static struct metrics_snapshot snap;

static uint64_t slot_value(unsigned slot)
{
        ck_assert_int_eq(metrics_read(spool.root_fd, &snap), 0);
        return snap.slot[slot];
}

/* WRITERS processes open the file at the same moment (none exists yet, so
 * they race to make it) and count as fast as they can; every count must be
 * there, in the one file they all ended up sharing. */
START_TEST(test_concurrent_counts)
{
        int go[2];
        pid_t pids[WRITERS];

        ck_assert_int_eq(pipe(go), 0);
        for (int w = 0; w < WRITERS; w++) {
                pids[w] = fork();
                ck_assert_int_ge(pids[w], 0);
                if (pids[w] == 0) {
                        char c;

                        close(go[1]);
                        if (read(go[0], &c, 1) != 0)
                                _exit(2);
                        if (metrics_open(spool.root_fd) < 0)
                                _exit(3);
                        for (int i = 0; i < COUNTS_EACH; i++) {
                                metrics_count_connection();
                                metrics_count_message("accepted", "250 2.0.0 Ok: queued as x");
                                if (i % 2)
                                        metrics_count_delivery(METRICS_DELIVERED, 204, w % 2, 1500);
                        }
                        _exit(0);
                }
        }
        close(go[0]);
        close(go[1]);                     /* all start now */
        for (int w = 0; w < WRITERS; w++) {
                int status;

                ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
                ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        ck_assert_uint_eq(slot_value(METRICS_SLOT_CONNECTIONS), WRITERS * COUNTS_EACH);
        ck_assert_uint_eq(snap.slot[METRICS_SLOT_MESSAGE(METRICS_MSG_ACCEPTED, METRICS_CLASS_2XX)],
                          WRITERS * COUNTS_EACH);
        ck_assert_uint_eq(snap.slot[METRICS_SLOT_DELIVERY(METRICS_DELIVERED, METRICS_CLASS_2XX)],
                          WRITERS * COUNTS_EACH / 2);
        ck_assert_uint_eq(snap.slot[METRICS_SLOT_RETRIES], WRITERS / 2 * COUNTS_EACH / 2);
        /* 1.5 s is in the 2.5 s bucket, the fifth. */
        ck_assert_uint_eq(snap.slot[METRICS_SLOT_LATENCY_BUCKETS + 4], WRITERS * COUNTS_EACH / 2);
        ck_assert_uint_eq(snap.slot[METRICS_SLOT_LATENCY_SUM_MS], (uint64_t)WRITERS * COUNTS_EACH / 2 * 1500);
        ck_assert_int_gt(snap.created_ms, 0);
        /* No temporary file left behind by the losers of the race. */
        ck_assert_int_eq(unit_count_entries("."), SPOOL_DIR_COUNT + 1);
}
END_TEST

/* Counts survive the process and the file is reused, not made again. */
START_TEST(test_counts_persist)
{
        int64_t created;

        ck_assert_int_eq(metrics_open(spool.root_fd), 0);
        metrics_count_connection();
        metrics_close();
        ck_assert_uint_eq(slot_value(METRICS_SLOT_CONNECTIONS), 1);
        created = snap.created_ms;
        ck_assert_int_eq(metrics_open(spool.root_fd), 0);
        metrics_count_connection();
        metrics_sync();
        ck_assert_uint_eq(slot_value(METRICS_SLOT_CONNECTIONS), 2);
        ck_assert_int_eq(snap.created_ms, created);
}
END_TEST

/* A file that is not whole is replaced by a new one at 0: garbage of the
 * right size, a short one, an empty one, one too long. */
START_TEST(test_broken_file_replaced)
{
        static char garbage[METRICS_FILE_SIZE * 2];

        memset(garbage, 0xa5, sizeof(garbage));
        for (int i = 0; i < 4; i++) {
                static const size_t sizes[] = { METRICS_FILE_SIZE, 100, 0, METRICS_FILE_SIZE + 8 };

                metrics_close();
                write_file(garbage, sizes[i]);
                /* The reader sees no counters in it, and makes nothing. */
                ck_assert_uint_eq(slot_value(METRICS_SLOT_CONNECTIONS), 0);
                ck_assert_int_eq(snap.created_ms, 0);
                ck_assert_int_eq(file_size(), (off_t)sizes[i]);

                ck_assert_int_eq(metrics_open(spool.root_fd), 0);
                ck_assert_int_eq(file_size(), METRICS_FILE_SIZE);
                metrics_count_connection();
                ck_assert_uint_eq(slot_value(METRICS_SLOT_CONNECTIONS), 1);
                ck_assert_int_gt(snap.created_ms, 0);
        }
}
END_TEST

/* A newer version's counters (slots this one does not know) are kept. */
START_TEST(test_newer_file_kept)
{
        static uint64_t page[METRICS_FILE_SIZE / 8];
        int fd;

        ck_assert_int_eq(metrics_open(spool.root_fd), 0);
        metrics_count_connection();
        metrics_close();
        fd = openat(spool.root_fd, METRICS_FILE, O_RDONLY);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pread(fd, page, sizeof(page), 0), (ssize_t)sizeof(page));
        close(fd);
        page[METRICS_HEADER_WORDS + METRICS_SLOTS - 1] = 77;
        write_file((const char *)page, sizeof(page));
        ck_assert_int_eq(metrics_open(spool.root_fd), 0);
        metrics_count_connection();
        ck_assert_uint_eq(slot_value(METRICS_SLOT_CONNECTIONS), 2);
        ck_assert_uint_eq(snap.slot[METRICS_SLOTS - 1], 77);
}
END_TEST

/* A name that cannot be replaced (a directory): counting is off, and
 * every counting call is still safe. */
START_TEST(test_unusable_file)
{
        ck_assert_int_eq(mkdirat(spool.root_fd, METRICS_FILE, 0700), 0);
        ck_assert_int_lt(metrics_open(spool.root_fd), 0);
        metrics_count_connection();
        metrics_count_message("accepted", "250 ok");
        metrics_count_refusal(METRICS_CMD_RCPT, "550 5.7.1 no");
        metrics_count_delivery(METRICS_DELIVERED, 200, false, 10);
        metrics_count_dead_letter(METRICS_DEAD_REFUSED);
        metrics_sync();
        metrics_close();
        ck_assert_int_eq(metrics_read(spool.root_fd, &snap), 0);
        ck_assert_uint_eq(snap.slot[METRICS_SLOT_CONNECTIONS], 0);
}
END_TEST

/* A FIFO under the file's name (a stray or hostile one in the spool): the
 * reader (hw-flush --metrics) sees no counters and does not wait for a
 * writer; a counting process replaces it. */
START_TEST(test_fifo_not_waited_for)
{
        ck_assert_int_eq(mkfifoat(spool.root_fd, METRICS_FILE, 0600), 0);
        alarm(3);
        ck_assert_int_eq(metrics_read(spool.root_fd, &snap), 0);
        alarm(0);
        ck_assert_int_eq(snap.created_ms, 0);
        ck_assert_int_eq(metrics_open(spool.root_fd), 0);
        metrics_count_connection();
        ck_assert_uint_eq(slot_value(METRICS_SLOT_CONNECTIONS), 1);
}
END_TEST

START_TEST(test_classify)
{
        ck_assert_int_eq(metrics_reply_class("250 2.0.0 Ok"), METRICS_CLASS_2XX);
        ck_assert_int_eq(metrics_reply_class("452 4.3.1 full"), METRICS_CLASS_4XX);
        ck_assert_int_eq(metrics_reply_class("554 5.4.6 loop"), METRICS_CLASS_5XX);
        ck_assert_int_eq(metrics_reply_class(""), METRICS_CLASS_NONE);
        ck_assert_int_eq(metrics_http_class(204), METRICS_CLASS_2XX);
        ck_assert_int_eq(metrics_http_class(302), METRICS_CLASS_3XX);
        ck_assert_int_eq(metrics_http_class(406), METRICS_CLASS_4XX);
        ck_assert_int_eq(metrics_http_class(503), METRICS_CLASS_5XX);
        ck_assert_int_eq(metrics_http_class(0), METRICS_CLASS_NONE);
        ck_assert_int_eq(metrics_http_class(100), METRICS_CLASS_NONE);
        ck_assert_int_eq(metrics_http_class(600), METRICS_CLASS_NONE);
        ck_assert_int_eq(metrics_reply_subject("550 5.7.1 Relaying denied"), 7);
        ck_assert_int_eq(metrics_reply_subject("452 4.5.3 Too many recipients"), 5);
        ck_assert_int_eq(metrics_reply_subject("452 4.3.1 Insufficient system storage"), 3);
        ck_assert_int_eq(metrics_reply_subject("550 4.7.1 class mismatch"), 0);
        ck_assert_int_eq(metrics_reply_subject("550 no enhanced code"), 0);
        ck_assert_int_eq(metrics_reply_subject("550"), 0);
        ck_assert_int_eq(metrics_message_of("accepted"), METRICS_MSG_ACCEPTED);
        ck_assert_int_eq(metrics_message_of("failed-spool"), METRICS_MSG_FAILED_SPOOL);
        ck_assert_int_eq(metrics_message_of("something-new"), METRICS_MSG_OTHER);
        for (int m = 0; m < METRICS_MSG_COUNT; m++)
                ck_assert_int_eq(metrics_message_of(metrics_message_name((enum metrics_message)m)), m);
}
END_TEST

static Suite *metrics_suite(void)
{
        Suite *s = suite_create("metrics");
        TCase *tc = tcase_create("metrics");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_concurrent_counts);
        tcase_add_test(tc, test_counts_persist);
        tcase_add_test(tc, test_broken_file_replaced);
        tcase_add_test(tc, test_newer_file_kept);
        tcase_add_test(tc, test_unusable_file);
        tcase_add_test(tc, test_fifo_not_waited_for);
        tcase_add_test(tc, test_classify);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(metrics_suite());
}
