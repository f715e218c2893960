/* Unit tests of lib/log.c and lib/journal.c: structured records on stderr
 * and in the journal, their bounds, and the field names the journal takes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "unit.h"

/* Reads what this process wrote to stderr into file since offset 0. */
static void log_read_back(FILE *f, char *buf, size_t len)
{
        size_t n;

        fflush(stderr);
        rewind(f);
        n = fread(buf, 1, len - 1, f);
        buf[n] = '\0';
        ck_assert_int_eq(ftruncate(fileno(f), 0), 0);
        rewind(f);
}

/* Structured records and plain messages: the stderr line outside the
 * journal, the priority prefix under it, and the bounds of a record. */
START_TEST(test_log_fields)
{
        static char big[LOG_RECORD_MAX * 2];
        char got[LOG_RECORD_MAX * 2], stream[64];
        struct log_fields f;
        struct stat st;
        FILE *out = tmpfile();

        ck_assert_ptr_nonnull(out);
        ck_assert_int_eq(dup2(fileno(out), 2), 2);
        unsetenv("JOURNAL_STREAM");
        log_init("hw-test");

        log_fields_init(&f);
        log_field(&f, "HW_QUEUE_ID", "%s", "1763729000123456-8f3a0c1b2e4d5a6f");
        log_field(&f, "HW_ATTEMPT", "%u", 3u);
        log_fields_send(LOG_NOTICE, &f, "%s %s", "item", "deferred");
        log_read_back(out, got, sizeof(got));
        ck_assert_str_eq(got, "hw-test: item deferred HW_QUEUE_ID=1763729000123456-8f3a0c1b2e4d5a6f "
                         "HW_ATTEMPT=3\n");

        /* Too many fields, too long a value: cut, never overrun. */
        log_fields_init(&f);
        for (int i = 0; i < LOG_FIELDS_MAX + 8; i++)
                log_field(&f, "HW_N", "%d", i);
        ck_assert_uint_eq(f.n, LOG_FIELDS_MAX);
        ck_assert_ptr_null(f.field[LOG_FIELDS_MAX]);
        log_fields_init(&f);
        memset(big, 'x', sizeof(big) - 1);
        log_field(&f, "HW_BIG", "%s", big);
        log_field(&f, "HW_AFTER", "%s", "y");
        ck_assert_uint_eq(f.n, 1);
        ck_assert_uint_eq(strlen(f.field[0]), LOG_RECORD_MAX - 1);
        ck_assert_uint_le(f.used, sizeof(f.buf));

        /* Under journald (JOURNAL_STREAM names stderr) a plain message
         * carries its priority. */
        ck_assert_int_eq(fstat(2, &st), 0);
        snprintf(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        setenv("JOURNAL_STREAM", stream, 1);
        log_init("hw-test");
        log_msg(LOG_ERR, "configuration: %s", "bad");
        log_read_back(out, got, sizeof(got));
        ck_assert_str_eq(got, "<3>configuration: bad\n");
        unsetenv("JOURNAL_STREAM");
        fclose(out);
}
END_TEST

/* A native journal record, read back from a socket of our own. */
START_TEST(test_journal_record)
{
        char dir[] = "/tmp/hw-journal-XXXXXX", path[256], got[512];
        static const char expected[] =
                "MESSAGE=hello\n"
                "HW_EMPTY=\n"
                "HW_TWO_LINES\n\x06\0\0\0\0\0\0\0a\nb\0\xff" "c\n"
                "PRIORITY=6\n";
        struct iovec fields[] = {
                { "MESSAGE=hello", 13 },
                { "HW_EMPTY=", 9 },
                { "HW_TWO_LINES=a\nb\0\xff" "c", 19 },
                { "PRIORITY=6", 10 },
        };
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        ssize_t n;
        int fd;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/socket", dir);
        ck_assert_int_eq(journal_send_to(path, fields, 4), -ENOENT);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);

        ck_assert_int_eq(journal_send_to(path, fields, 4), 0);
        n = recv(fd, got, sizeof(got), MSG_DONTWAIT);
        ck_assert_int_eq(n, (ssize_t)sizeof(expected) - 1);
        ck_assert_mem_eq(got, expected, sizeof(expected) - 1);

        /* Names journald would drop refuse the whole record, so the caller
         * logs a plain line instead; nothing is sent. */
        static const char *const bad[] = { "lower=x", "1ST=x", "NO_EQUALS", "=x", "A-B=x" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct iovec one[2] = { { "MESSAGE=m", 9 }, { (void *)bad[i], strlen(bad[i]) } };

                ck_assert_int_eq(journal_send_to(path, one, 2), -EINVAL);
        }
        ck_assert_int_eq(recv(fd, got, sizeof(got), MSG_DONTWAIT), -1);
        ck_assert_int_eq(errno, EAGAIN);

        close(fd);
        unlink(path);
        rmdir(dir);
}
END_TEST

static Suite *log_suite(void)
{
        Suite *s = suite_create("log");
        TCase *tc = tcase_create("log");

        tcase_add_test(tc, test_journal_record);
        tcase_add_test(tc, test_log_fields);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(log_suite());
}
