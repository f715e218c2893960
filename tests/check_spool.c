/* Unit tests of lib/spool.c and lib/spool_queue.c: queue ids, the envelope
 * format, the commit and its fsyncs, strays and stale tmp/ items, entry
 * names, every move between the directories, the run lock, and the
 * dead-letter reason. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"
#include "unit.h"

#define ID "1763729000123456-8f3a0c1b2e4d5a6f"

START_TEST(test_queue_ids)
{
        char a[HW_QID_LEN + 1], b[HW_QID_LEN + 1];

        ck_assert_int_eq(spool_new_id(a), 0);
        ck_assert_int_eq(spool_new_id(b), 0);
        ck_assert_uint_eq(strlen(a), HW_QID_LEN);
        ck_assert_str_ne(a, b);
        ck_assert_int_le(strncmp(a, b, 16), 0);
        ck_assert_int_gt(spool_id_time_ms(a), 1700000000000LL);
        ck_assert_int_eq(spool_id_time_ms("../../etc/passwd"), -1);
        ck_assert_int_eq(spool_id_time_ms("1763729000123456-8F3A0C1B2E4D5A6F"), -1);
}
END_TEST

static void make_envelope(struct envelope *env)
{
        ck_assert_int_eq(envelope_init(env, 4), 0);
        ck_assert_int_eq(spool_new_id(env->id), 0);
        env->received_ms = 1763729000123;
        strcpy(env->remote_ip, "192.0.2.1");
        env->remote_port = 51234;
        strcpy(env->helo, "evil\r\nrcpt x@y");
        strcpy(env->sender, "");
        envelope_add_rcpt(env, "bob@example.com");
        envelope_add_rcpt(env, "j\xc3\xb6rg@example.de");
}

START_TEST(test_spool_commit_and_read)
{
        struct spool s;
        struct envelope env, back;
        struct spool_item *item = malloc(sizeof(*item));
        const char msg[] = "Subject: x\r\n\r\n\x80\xff body\r\n";
        char path[256], got[64];
        struct stat st;
        off_t offset;
        int fd;

        unit_spool_setup(&s);
        make_envelope(&env);
        ck_assert_int_eq(spool_create(&s, &env, item), 0);
        ck_assert_int_eq(unit_count_entries("tmp"), 1);
        ck_assert_int_eq(spool_write(item, msg, sizeof(msg) - 1), 0);
        ck_assert_int_eq(spool_commit(item), 0);
        ck_assert_int_eq(unit_count_entries("tmp"), 0);
        ck_assert_int_eq(unit_count_entries("pending"), 1);

        snprintf(path, sizeof(path), "%s/pending/%s", unit_spool_root, env.id);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
        fd = open(path, O_RDONLY);
        ck_assert_int_eq(envelope_init(&back, 0), 0);
        ck_assert_int_eq(envelope_read(fd, &back, &offset), 0);
        ck_assert_str_eq(back.id, env.id);
        ck_assert_int_eq(back.received_ms, env.received_ms);
        ck_assert_str_eq(back.remote_ip, "192.0.2.1");
        ck_assert_uint_eq(back.remote_port, 51234);
        /* A CR in the HELO cannot forge an envelope line. */
        ck_assert_str_eq(back.helo, "evil??rcpt x@y");
        ck_assert_str_eq(back.sender, "");
        ck_assert_uint_eq(back.rcpt_count, 2);
        ck_assert_str_eq(back.rcpt[1], "j\xc3\xb6rg@example.de");
        ck_assert_int_eq(pread(fd, got, sizeof(got), offset), (ssize_t)(sizeof(msg) - 1));
        ck_assert_mem_eq(got, msg, sizeof(msg) - 1);
        close(fd);
        envelope_free(&back);
        envelope_free(&env);
        free(item);
        unit_spool_teardown(&s);
}
END_TEST

/* An envelope longer than any session writes is refused, not grown into
 * megabytes (found by fuzzing envelope_read). */
static int read_envelope_with_rcpts(unsigned n)
{
        struct envelope back;
        off_t offset;
        int fd = memfd_create("envelope", 0), r;
        FILE *f;

        ck_assert_int_ge(fd, 0);
        f = fdopen(dup(fd), "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "hw-spool 1\nid 1763729000123456-8f3a0c1b2e4d5a6f\nreceived 1763729000123\n");
        for (unsigned i = 0; i < n; i++)
                fprintf(f, "rcpt u%u@example.com\n", i);
        fprintf(f, "\nSubject: x\r\n\r\n");
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
        ck_assert_int_eq(envelope_init(&back, 0), 0);
        r = envelope_read(fd, &back, &offset);
        if (r == 0)
                ck_assert_uint_eq(back.rcpt_count, n);
        envelope_free(&back);
        close(fd);
        return r;
}

START_TEST(test_envelope_recipient_limit)
{
        ck_assert_int_eq(read_envelope_with_rcpts(HW_RCPT_LIMIT), 0);
        ck_assert_int_eq(read_envelope_with_rcpts(HW_RCPT_LIMIT + 1), -EBADMSG);
}
END_TEST

START_TEST(test_spool_commit_fsyncs)
{
        struct spool s;
        struct envelope env;
        struct spool_item *item = malloc(sizeof(*item));

        unit_spool_setup(&s);
        s.io = &unit_faulty_io;
        unit_fail_at = FAIL_NONE;
        unit_fsync_calls = 0;
        make_envelope(&env);
        ck_assert_int_eq(spool_create(&s, &env, item), 0);
        ck_assert_int_eq(spool_write(item, "x\r\n", 3), 0);
        ck_assert_int_eq(spool_commit(item), 0);
        /* One for the data, one for pending/. */
        ck_assert_int_eq(unit_fsync_calls, 2);
        envelope_free(&env);
        free(item);
        unit_spool_teardown(&s);
}
END_TEST

static int strays_reported;
static int stray_error;               /* the error each report must carry */

static void count_stray(void *userdata, const char *name, int error)
{
        ck_assert_int_eq(error, stray_error);
        strays_reported++;
}

/* Stray files in pending/ are moved out of the way, into dead/. */
START_TEST(test_spool_evict_strays)
{
        struct spool s;
        struct envelope env;
        struct spool_item *item = malloc(sizeof(*item));
        char path[256];
        FILE *f;

        unit_spool_setup(&s);
        make_envelope(&env);
        ck_assert_int_eq(spool_create(&s, &env, item), 0);
        ck_assert_int_eq(spool_commit(item), 0);
        for (int i = 0; i < 2; i++) {
                snprintf(path, sizeof(path), "%s/pending/%s", unit_spool_root, i ? ".note.swp" : "README");
                f = fopen(path, "w");
                ck_assert_ptr_nonnull(f);
                fputs("operator's file\n", f);
                fclose(f);
        }
        /* Through the fault seam: a stray that cannot be moved is reported
         * with its error and stays where it is. */
        s.io = &unit_faulty_io;
        unit_fail_at = FAIL_RENAME;
        unit_fail_errno = EACCES;
        stray_error = -EACCES;
        strays_reported = 0;
        ck_assert_int_eq(spool_evict_strays(&s, count_stray, NULL), 0);
        ck_assert_int_eq(strays_reported, 2);
        ck_assert_int_eq(unit_count_entries("pending"), 2);   /* the item and README */
        snprintf(path, sizeof(path), "%s/pending/.note.swp", unit_spool_root);
        ck_assert_int_eq(access(path, F_OK), 0);
        ck_assert_int_eq(unit_count_entries("dead"), 0);
        unit_fail_at = FAIL_NONE;
        stray_error = 0;
        strays_reported = 0;
        ck_assert_int_eq(spool_evict_strays(&s, count_stray, NULL), 2);
        ck_assert_int_eq(strays_reported, 2);
        /* The real item stays; the strays are kept in dead/, not deleted. */
        ck_assert_int_eq(unit_count_entries("pending"), 1);
        snprintf(path, sizeof(path), "%s/dead/README", unit_spool_root);
        ck_assert_int_eq(access(path, F_OK), 0);
        snprintf(path, sizeof(path), "%s/dead/.note.swp", unit_spool_root);
        ck_assert_int_eq(access(path, F_OK), 0);
        ck_assert_int_eq(spool_evict_strays(&s, count_stray, NULL), 0);
        envelope_free(&env);
        free(item);
        unit_spool_teardown(&s);
}
END_TEST

/* S1 -> gone for a tmp/ item its session left behind, not for one being
 * written now. */
START_TEST(test_spool_clean_tmp)
{
        struct spool s;
        struct envelope env;
        struct spool_item *item = malloc(sizeof(*item)), *live = malloc(sizeof(*live));
        struct timespec old[2] = { { .tv_sec = 1000000 }, { .tv_sec = 1000000 } };
        struct timespec now;
        char path[256];

        unit_spool_setup(&s);
        make_envelope(&env);
        ck_assert_int_eq(spool_create(&s, &env, item), 0);
        snprintf(path, sizeof(path), "%s/tmp/%s", unit_spool_root, env.id);
        ck_assert_int_eq(utimensat(AT_FDCWD, path, old, 0), 0);
        ck_assert_int_eq(spool_new_id(env.id), 0);
        ck_assert_int_eq(spool_create(&s, &env, live), 0);
        ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &now), 0);
        ck_assert_int_eq(spool_clean_tmp(&s, (int64_t)now.tv_sec * 1000), 1);
        ck_assert_int_eq(access(path, F_OK), -1);
        ck_assert_int_eq(unit_count_entries("tmp"), 1);
        ck_assert_int_eq(spool_commit(live), 0);
        close(item->fd);
        envelope_free(&env);
        free(item);
        free(live);
        unit_spool_teardown(&s);
}
END_TEST

START_TEST(test_entry_parse)
{
        struct spool_entry e;

        ck_assert_int_eq(spool_entry_parse(SPOOL_PENDING, ID, &e), 0);
        ck_assert_str_eq(e.id, ID);
        ck_assert_uint_eq(e.attempts, 0);
        ck_assert_int_eq(spool_entry_parse(SPOOL_DEFERRED, ID ".3.1763729999000", &e), 0);
        ck_assert_uint_eq(e.attempts, 3);
        ck_assert_int_eq(e.due_ms, 1763729999000LL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_PROCESSING, ID ".2", &e), 0);
        ck_assert_uint_eq(e.attempts, 2);
        ck_assert_int_eq(e.first_ms, 0);
        ck_assert_int_eq(e.first_ms, 0);                   /* written before FIRST was */
        ck_assert_int_eq(spool_entry_parse(SPOOL_DEFERRED, ID ".3.1763729999000.1763729000500", &e), 0);
        ck_assert_uint_eq(e.attempts, 3);
        ck_assert_int_eq(e.due_ms, 1763729999000LL);
        ck_assert_int_eq(e.first_ms, 1763729000500LL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_PROCESSING, ID ".2.1763729000500", &e), 0);
        ck_assert_uint_eq(e.attempts, 2);
        ck_assert_int_eq(e.first_ms, 1763729000500LL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_PROCESSING, ID ".2.", &e), -EINVAL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_PROCESSING, ID ".2.5.6", &e), -EINVAL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_DEFERRED, ID ".3.1.2.3", &e), -EINVAL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_DEFERRED, ID ".3.1.x", &e), -EINVAL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_PENDING, ID ".5", &e), -EINVAL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_DEAD, ID ".reason", &e), -EINVAL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_PENDING, ID ".1", &e), -EINVAL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_DEFERRED, ID ".1", &e), -EINVAL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_DEFERRED, ID ".1.", &e), -EINVAL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_PROCESSING, ID ".x", &e), -EINVAL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_PENDING, "1763729000123456-8F3A0C1B2E4D5A6F", &e), -EINVAL);
        ck_assert_int_eq(spool_entry_parse(SPOOL_PENDING, "../etc/passwd", &e), -EINVAL);
}
END_TEST

static int count_cb(const struct spool_entry *e, void *userdata)
{
        (*(unsigned *)userdata)++;
        return 0;
}

static unsigned count(struct spool *s, enum spool_dir d)
{
        unsigned n = 0;

        ck_assert_int_eq(spool_scan(s, d, count_cb, &n), 0);
        return n;
}

START_TEST(test_moves)
{
        char root[] = "/tmp/check-flush-XXXXXX", path[512], reason[SPOOL_REASON_MAX];
        struct spool s;
        struct spool_entry e, claimed, again;
        int fd, fd2, lock;

        ck_assert_ptr_nonnull(mkdtemp(root));
        ck_assert_int_eq(spool_open(&s, root), 0);
        snprintf(path, sizeof(path), "%s/pending/" ID, root);
        fd = open(path, O_WRONLY | O_CREAT, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);

        ck_assert_int_eq(spool_entry_parse(SPOOL_PENDING, ID, &e), 0);
        /* A move that makes no attempt records none. */
        ck_assert_int_eq(spool_claim(&s, &e, 0, &claimed, &fd), 0);
        ck_assert_str_eq(claimed.name, ID ".0");
        close(fd);
        ck_assert_int_eq(spool_defer(&s, &claimed, 0, 3000), 0);
        ck_assert_int_eq(spool_entry_parse(SPOOL_DEFERRED, ID ".0.3000", &e), 0);

        /* The first attempt's time goes into the name at its claim. */
        ck_assert_int_eq(spool_claim(&s, &e, 4000, &claimed, &fd), 0);
        ck_assert_str_eq(claimed.name, ID ".0.4000");
        ck_assert_int_eq(claimed.first_ms, 4000);
        /* The rename is the lock: a second claim of the same entry loses. */
        ck_assert_int_eq(spool_claim(&s, &e, 4000, &again, &fd2), -ENOENT);
        close(fd);

        ck_assert_int_eq(spool_defer(&s, &claimed, 1, 5000), 0);
        ck_assert_uint_eq(count(&s, SPOOL_DEFERRED), 1);
        ck_assert_int_eq(spool_entry_parse(SPOOL_DEFERRED, ID ".1.5000.4000", &e), 0);
        /* Later attempts keep the first one's time. */
        ck_assert_int_eq(spool_claim(&s, &e, 6000, &claimed, &fd), 0);
        close(fd);
        ck_assert_str_eq(claimed.name, ID ".1.4000");

        /* A run that died: recover puts it back, due at once, FIRST kept. */
        ck_assert_int_eq(spool_recover(&s, 7000), 1);
        ck_assert_uint_eq(count(&s, SPOOL_PROCESSING), 0);
        ck_assert_int_eq(spool_entry_parse(SPOOL_DEFERRED, ID ".1.7000.4000", &e), 0);
        ck_assert_int_eq(spool_claim(&s, &e, 8000, &claimed, &fd), 0);
        close(fd);
        ck_assert_int_eq(claimed.first_ms, 4000);

        ck_assert_int_eq(spool_bury(&s, &claimed, &(struct spool_reason){
                .status = 406, .error = "HTTP 406", .attempts = 2, .first_ms = 1763729000123,
                .last_ms = 1763729060456, .url = "http://hook.example/in" }), 0);
        ck_assert_uint_eq(count(&s, SPOOL_DEAD), 1);     /* the reason is not an item */
        ck_assert_int_eq(spool_dead_reason(&s, ID, reason, sizeof(reason)), 0);
        ck_assert_str_eq(reason, "status: 406\nerror: HTTP 406\nattempts: 2\n"
                         "first-attempt: 2025-11-21T12:43:20.123Z\n"
                         "last-attempt: 2025-11-21T12:44:20.456Z\nurl: http://hook.example/in\n");

        ck_assert_int_eq(spool_requeue(&s, ID), 0);
        ck_assert_uint_eq(count(&s, SPOOL_DEAD), 0);
        ck_assert_uint_eq(count(&s, SPOOL_PENDING), 1);
        ck_assert_int_eq(spool_requeue(&s, ID), -ENOENT);
        ck_assert_int_eq(spool_requeue(&s, "../x"), -EINVAL);

        /* A requeued item starts anew: its next claim is a first attempt. */
        ck_assert_int_eq(spool_entry_parse(SPOOL_PENDING, ID, &e), 0);
        ck_assert_int_eq(spool_claim(&s, &e, 9000, &claimed, &fd), 0);
        close(fd);
        ck_assert_str_eq(claimed.name, ID ".0.9000");
        ck_assert_int_eq(spool_done(&s, &claimed), 0);
        ck_assert_uint_eq(count(&s, SPOOL_PROCESSING), 0);

        /* An item from a spool written before FIRST was recorded: read,
         * claimed and deferred with its first attempt left unknown. */
        snprintf(path, sizeof(path), "%s/deferred/" ID ".2.1000", root);
        fd = open(path, O_WRONLY | O_CREAT, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert_int_eq(spool_entry_parse(SPOOL_DEFERRED, ID ".2.1000", &e), 0);
        ck_assert_int_eq(spool_claim(&s, &e, 9000, &claimed, &fd), 0);
        close(fd);
        ck_assert_str_eq(claimed.name, ID ".2");
        ck_assert_int_eq(claimed.first_ms, 0);
        ck_assert_int_eq(spool_defer(&s, &claimed, 3, 10000), 0);
        ck_assert_int_eq(spool_entry_parse(SPOOL_DEFERRED, ID ".3.10000", &e), 0);
        ck_assert_int_eq(spool_claim(&s, &e, 11000, &claimed, &fd), 0);
        close(fd);
        ck_assert_int_eq(spool_done(&s, &claimed), 0);

        lock = spool_lock(&s, false);
        ck_assert_int_ge(lock, 0);
        /* flock locks belong to the open file: a second open is refused. */
        ck_assert_int_eq(spool_lock(&s, false), -EBUSY);
        close(lock);
        lock = spool_lock(&s, false);
        ck_assert_int_ge(lock, 0);
        close(lock);

        spool_close(&s);
        snprintf(path, sizeof(path), "rm -rf '%s'", root);
        ck_assert_int_eq(system(path), 0);
}
END_TEST

/* The reason file's format: every field, a 3xx's location, the words for
 * what is missing, and values that cannot add lines. */
START_TEST(test_reason_format)
{
        char buf[SPOOL_REASON_MAX], small[40];
        struct spool_reason why = {
                .error = "Failed to connect\r\nstatus: 200", .attempts = 7,
                .last_ms = 1000, .url = NULL, .location = "",
        };

        spool_reason_format(&why, buf, sizeof(buf));
        ck_assert_str_eq(buf, "status: none\nerror: Failed to connect??status: 200\nattempts: 7\n"
                         "first-attempt: unknown\nlast-attempt: 1970-01-01T00:00:01.000Z\nurl: -\n");
        why.status = 302;
        why.error = "HTTP 302 redirect to https://b.example/, not followed";
        why.first_ms = 500;
        why.url = "https://a.example/in";
        why.location = "https://b.example/";
        spool_reason_format(&why, buf, sizeof(buf));
        ck_assert_str_eq(buf, "status: 302\nerror: HTTP 302 redirect to https://b.example/, not followed\n"
                         "attempts: 7\nfirst-attempt: 1970-01-01T00:00:00.500Z\n"
                         "last-attempt: 1970-01-01T00:00:01.000Z\nurl: https://a.example/in\n"
                         "location: https://b.example/\n");
        /* Truncated, never overrun. */
        spool_reason_format(&why, small, sizeof(small));
        ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
        ck_assert(strncmp(small, buf, sizeof(small) - 1) == 0);
}
END_TEST

static Suite *spool_suite(void)
{
        Suite *s = suite_create("spool");
        TCase *tc = tcase_create("queue");

        tcase_add_test(tc, test_queue_ids);
        tcase_add_test(tc, test_spool_commit_and_read);
        tcase_add_test(tc, test_envelope_recipient_limit);
        tcase_add_test(tc, test_spool_commit_fsyncs);
        tcase_add_test(tc, test_spool_evict_strays);
        tcase_add_test(tc, test_spool_clean_tmp);
        suite_add_tcase(s, tc);

        tc = tcase_create("entries");
        tcase_add_test(tc, test_entry_parse);
        tcase_add_test(tc, test_moves);
        tcase_add_test(tc, test_reason_format);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(spool_suite());
}
