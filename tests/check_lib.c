/* Unit tests of lib/: configuration, queue ids, the envelope format, the
 * commit, and the session's answers when the disk fails (through the
 * spool's system-call seam). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "journal.h"
#include "log.h"
#include "smtp.h"
#include "spool.h"

static const char *const config_vars[] = {
        "WEBHOOK_URL", "WEBHOOK_ROLE_URL", "WEBHOOK_SIGNING_KEY", "WEBHOOK_TIMEOUT_MS",
        "ROLE_ADDRESSES", "RETRY_INTERVAL_MS", "RETRY_MAX_INTERVAL_MS", "MAX_RETRY_AGE_MS",
        "FLUSH_CONCURRENCY", "WEBHOOK_DECISION_URL", "WEBHOOK_DECISION_TOKEN",
        "WEBHOOK_DECISION_PAYLOAD_MODE", "ACCEPT_ALL_RECIPIENTS", "ACCEPTED_DOMAINS",
        "SMTP_TLS_CERT_PATH", "SMTP_TLS_KEY_PATH", "SPOOL_DIR", "SMTP_MAX_RECIPIENTS",
        "CREDENTIALS_DIRECTORY", "SMTP_HOSTNAME", "SMTP_PROXY_TRUSTED", "SPOOL_MIN_FREE_BYTES",
        "SMTP_IDLE_TIMEOUT_MS", "SMTP_COMMAND_DEADLINE_MS", "SMTP_DATA_MIN_RATE",
        "SMTP_SESSION_DEADLINE_MS", "SMTP_TLS_PRIORITY", NULL,
};

static void config_clear_env(void)
{
        for (size_t i = 0; config_vars[i]; i++)
                unsetenv(config_vars[i]);
}

static int load(struct hw_config *cfg, char *err, size_t errlen)
{
        return config_load(cfg, err, errlen);
}

START_TEST(test_config_defaults)
{
        struct hw_config cfg;
        char err[256];

        config_clear_env();
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        ck_assert_uint_eq(cfg.timeout_ms, 10000);
        ck_assert_uint_eq(cfg.retry_interval_ms, 30000);
        ck_assert_uint_eq(cfg.retry_max_interval_ms, 3600000);
        ck_assert_uint_eq(cfg.max_retry_age_ms, 0);
        ck_assert_uint_eq(cfg.max_message_bytes, 26214400);
        ck_assert_uint_eq(cfg.max_recipients, 1000);
        ck_assert_uint_eq(cfg.idle_timeout_ms, 300000);
        ck_assert_uint_eq(cfg.command_deadline_ms, 300000);
        ck_assert_uint_eq(cfg.data_min_rate, 500);
        ck_assert_uint_eq(cfg.session_deadline_ms, 1800000);
        ck_assert_str_eq(cfg.tls_priority, "");
        ck_assert(cfg.accept_all_recipients);
        ck_assert_int_eq(cfg.decision_mode, DECISION_MODE_MINIMAL);
        ck_assert_str_eq(cfg.spool_dir, LOCALSTATEDIR "/spool/hw-webhook");
        /* The seed's 28 role addresses. */
        size_t n = 0;
        while (cfg.role_addresses[n])
                n++;
        ck_assert_uint_eq(n, 28);
        ck_assert(config_is_role_address(&cfg, "Postmaster@example.com"));
        ck_assert(config_is_role_address(&cfg, "mailerdaemon@x"));
        ck_assert(!config_is_role_address(&cfg, "alice@example.com"));
        ck_assert_int_eq(config_check_flush(&cfg, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "WEBHOOK_URL"));
        config_free(&cfg);
}
END_TEST

/* Each bad value fails and the message names its variable. */
START_TEST(test_config_bad_values)
{
        static const char *const bad[][2] = {
                { "WEBHOOK_TIMEOUT_MS", "10s" },
                { "WEBHOOK_TIMEOUT_MS", "-5" },
                { "WEBHOOK_TIMEOUT_MS", "0" },
                { "RETRY_INTERVAL_MS", "99999999999999999999999" },
                { "ACCEPT_ALL_RECIPIENTS", "maybe" },
                { "WEBHOOK_URL", "ftp://example.com/" },
                { "WEBHOOK_URL", "https://exa mple.com/" },
                { "WEBHOOK_DECISION_URL", "example.com/decide" },
                { "WEBHOOK_DECISION_PAYLOAD_MODE", "everything" },
                { "SPOOL_DIR", "relative/path" },
                { "SMTP_MAX_RECIPIENTS", "100000" },
                { "FLUSH_CONCURRENCY", "0" },
                { "SMTP_PROXY_TRUSTED", "proxy.example.net" },
                { "SMTP_PROXY_TRUSTED", "192.0.2.1,300.1.1.1" },
        };
        struct hw_config cfg;
        char err[256];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                config_clear_env();
                setenv(bad[i][0], bad[i][1], 1);
                ck_assert_int_eq(load(&cfg, err, sizeof(err)), -EINVAL);
                ck_assert_msg(strstr(err, bad[i][0]), "%s=%s: error '%s' does not name it",
                              bad[i][0], bad[i][1], err);
        }
        config_clear_env();
        setenv("SMTP_TLS_CERT_PATH", "/x.pem", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "SMTP_TLS_KEY_PATH"));
        config_clear_env();
        setenv("ACCEPT_ALL_RECIPIENTS", "false", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "ACCEPTED_DOMAINS"));
}
END_TEST

START_TEST(test_config_values)
{
        struct hw_config cfg;
        char err[256];

        config_clear_env();
        setenv("ACCEPT_ALL_RECIPIENTS", "Off", 1);
        setenv("ACCEPTED_DOMAINS", " Example.COM , example.net,,", 1);
        setenv("ROLE_ADDRESSES", "abuse, Billing", 1);
        setenv("WEBHOOK_URL", "https://user:secret@hooks.example/in", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        ck_assert(!cfg.accept_all_recipients);
        ck_assert_str_eq(cfg.accepted_domains[0], "example.com");
        ck_assert_str_eq(cfg.accepted_domains[1], "example.net");
        ck_assert_ptr_null(cfg.accepted_domains[2]);
        ck_assert(config_accepts_recipient(&cfg, "a@EXAMPLE.net"));
        ck_assert(!config_accepts_recipient(&cfg, "a@example.org"));
        ck_assert(!config_accepts_recipient(&cfg, "a@sub.example.com"));
        ck_assert(config_accepts_recipient(&cfg, "postmaster"));
        ck_assert(config_is_role_address(&cfg, "BILLING@x.y"));
        ck_assert(!config_is_role_address(&cfg, "postmaster@x.y"));
        ck_assert_int_eq(config_check_flush(&cfg, err, sizeof(err)), 0);
        config_free(&cfg);

        /* Trusted proxies are kept in the form peers' addresses are shown in. */
        setenv("SMTP_PROXY_TRUSTED", "0:0::1, 192.0.2.1,2001:DB8:0:0::7", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        ck_assert_str_eq(cfg.proxy_trusted[0], "::1");
        ck_assert_str_eq(cfg.proxy_trusted[1], "192.0.2.1");
        ck_assert_str_eq(cfg.proxy_trusted[2], "2001:db8::7");
        unsetenv("SMTP_PROXY_TRUSTED");

        /* --check-config output must not show the URL's password. */
        char *text = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&text, &size);
        config_print(&cfg, out);
        fclose(out);
        ck_assert_ptr_null(strstr(text, "secret"));
        ck_assert_ptr_nonnull(strstr(text, "WEBHOOK_URL=https://***@hooks.example/in"));
        free(text);
        config_free(&cfg);
}
END_TEST

START_TEST(test_config_credentials)
{
        char dir[] = "/tmp/hw-cred-XXXXXX";
        char path[256];
        struct hw_config cfg;
        char err[256];
        FILE *f;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/webhook-signing-key", dir);
        f = fopen(path, "w");
        fputs("from-credential\n", f);
        fclose(f);
        config_clear_env();
        setenv("WEBHOOK_SIGNING_KEY", "from-env", 1);
        setenv("CREDENTIALS_DIRECTORY", dir, 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        ck_assert_str_eq(cfg.signing_key, "from-credential");
        ck_assert_str_eq(cfg.decision_token, "");
        config_free(&cfg);
        unlink(path);
        rmdir(dir);
        config_clear_env();
}
END_TEST

static char spool_root[64];

static void spool_setup(struct spool *s)
{
        strcpy(spool_root, "/tmp/hw-spool-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(spool_root));
        ck_assert_int_eq(spool_open(s, spool_root), 0);
}

static int count_entries(const char *dir)
{
        char path[128];
        DIR *d;
        struct dirent *e;
        int n = 0;

        snprintf(path, sizeof(path), "%s/%s", spool_root, dir);
        d = opendir(path);
        ck_assert_ptr_nonnull(d);
        while ((e = readdir(d)))
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

static void spool_teardown(struct spool *s)
{
        char cmd[128];

        spool_close(s);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", spool_root);
        ck_assert_int_eq(system(cmd), 0);
}

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

        spool_setup(&s);
        make_envelope(&env);
        ck_assert_int_eq(spool_create(&s, &env, item), 0);
        ck_assert_int_eq(count_entries("tmp"), 1);
        ck_assert_int_eq(spool_write(item, msg, sizeof(msg) - 1), 0);
        ck_assert_int_eq(spool_commit(item), 0);
        ck_assert_int_eq(count_entries("tmp"), 0);
        ck_assert_int_eq(count_entries("pending"), 1);

        snprintf(path, sizeof(path), "%s/pending/%s", spool_root, env.id);
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
        spool_teardown(&s);
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

/* Fault injection: the failing call and the errno it reports. */
static enum { FAIL_NONE, FAIL_WRITE, FAIL_FSYNC, FAIL_DIR_FSYNC, FAIL_RENAME } fail_at;
static int fail_errno;
static int fsync_calls;

static ssize_t faulty_write(int fd, const void *buf, size_t len)
{
        if (fail_at == FAIL_WRITE) {
                errno = fail_errno;
                return -1;
        }
        return write(fd, buf, len);
}

static int faulty_fsync(int fd)
{
        struct stat st;

        fsync_calls++;
        if (fail_at == FAIL_FSYNC ||
            (fail_at == FAIL_DIR_FSYNC && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))) {
                errno = fail_errno;
                return -1;
        }
        return fsync(fd);
}

static int faulty_renameat2(int a, const char *b, int c, const char *d, unsigned int flags)
{
        if (fail_at == FAIL_RENAME) {
                errno = fail_errno;
                return -1;
        }
        return renameat2(a, b, c, d, flags);
}

static const struct spool_io faulty_io = { faulty_write, faulty_fsync, faulty_renameat2 };

START_TEST(test_spool_commit_fsyncs)
{
        struct spool s;
        struct envelope env;
        struct spool_item *item = malloc(sizeof(*item));

        spool_setup(&s);
        s.io = &faulty_io;
        fail_at = FAIL_NONE;
        fsync_calls = 0;
        make_envelope(&env);
        ck_assert_int_eq(spool_create(&s, &env, item), 0);
        ck_assert_int_eq(spool_write(item, "x\r\n", 3), 0);
        ck_assert_int_eq(spool_commit(item), 0);
        /* One for the data, one for pending/. */
        ck_assert_int_eq(fsync_calls, 2);
        envelope_free(&env);
        free(item);
        spool_teardown(&s);
}
END_TEST

/* Runs one whole SMTP session in this process with the spool failing as
 * told; returns the server's output. */
static char *session_with_fault(int fail, int error)
{
        const char *input = "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n"
                            "DATA\r\nSubject: t\r\n\r\nhello\r\n.\r\nQUIT\r\n";
        static struct smtp_session session;
        struct hw_config cfg;
        struct spool s;
        struct io_plain fds;
        struct io_transport t;
        int in[2], out[2];
        char err[256];
        char *reply = calloc(1, 8192);
        ssize_t n, got = 0;

        config_clear_env();
        setenv("SMTP_HOSTNAME", "mx.test", 1);
        setenv("SPOOL_MIN_FREE_BYTES", "0", 1);
        ck_assert_int_eq(config_load(&cfg, err, sizeof(err)), 0);
        spool_setup(&s);
        s.io = &faulty_io;
        fail_at = fail;
        fail_errno = error;
        ck_assert_int_eq(pipe(in), 0);
        ck_assert_int_eq(pipe(out), 0);
        ck_assert_int_eq(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
        close(in[1]);
        fds.in_fd = in[0];
        fds.out_fd = out[1];
        io_plain_transport(&fds, &t);
        ck_assert_int_eq(smtp_session_init(&session, &cfg, &s, &t, NULL), 0);
        ck_assert_int_eq(smtp_session_run(&session), 0);
        close(out[1]);
        while ((n = read(out[0], reply + got, 8191 - got)) > 0)
                got += n;
        close(out[0]);
        close(in[0]);
        /* Whatever happened, nothing half-written is left behind. */
        ck_assert_int_eq(count_entries("tmp"), 0);
        ck_assert_int_eq(count_entries("pending"), fail == FAIL_NONE ? 1 : 0);
        smtp_session_free(&session);
        spool_teardown(&s);
        config_free(&cfg);
        fail_at = FAIL_NONE;
        return reply;
}

START_TEST(test_session_disk_faults)
{
        static const struct {
                int fail, error;
                const char *reply;
        } cases[] = {
                { FAIL_NONE, 0, "250 2.0.0 Ok: queued as " },
                { FAIL_WRITE, ENOSPC, "452 4.3.1 Insufficient system storage, try again later" },
                { FAIL_FSYNC, EIO, "451 4.3.0 Local error in processing, try again later" },
                { FAIL_FSYNC, ENOSPC, "452 4.3.1 Insufficient system storage, try again later" },
                /* The name is in pending/ but not on disk: the commit is undone. */
                { FAIL_DIR_FSYNC, EIO, "451 4.3.0 Local error in processing, try again later" },
                { FAIL_RENAME, EIO, "451 4.3.0 Local error in processing, try again later" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *reply = session_with_fault(cases[i].fail, cases[i].error);

                ck_assert_msg(strstr(reply, cases[i].reply), "case %zu: no '%s' in:\n%s", i,
                              cases[i].reply, reply);
                if (cases[i].fail != FAIL_NONE)
                        ck_assert_ptr_null(strstr(reply, "250 2.0.0 Ok: queued"));
                ck_assert_ptr_nonnull(strstr(reply, "221 2.0.0"));
                free(reply);
        }
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

        spool_setup(&s);
        make_envelope(&env);
        ck_assert_int_eq(spool_create(&s, &env, item), 0);
        ck_assert_int_eq(spool_commit(item), 0);
        for (int i = 0; i < 2; i++) {
                snprintf(path, sizeof(path), "%s/pending/%s", spool_root, i ? ".note.swp" : "README");
                f = fopen(path, "w");
                ck_assert_ptr_nonnull(f);
                fputs("operator's file\n", f);
                fclose(f);
        }
        /* Through the fault seam: a stray that cannot be moved is reported
         * with its error and stays where it is. */
        s.io = &faulty_io;
        fail_at = FAIL_RENAME;
        fail_errno = EACCES;
        stray_error = -EACCES;
        strays_reported = 0;
        ck_assert_int_eq(spool_evict_strays(&s, count_stray, NULL), 0);
        ck_assert_int_eq(strays_reported, 2);
        ck_assert_int_eq(count_entries("pending"), 2);   /* the item and README */
        snprintf(path, sizeof(path), "%s/pending/.note.swp", spool_root);
        ck_assert_int_eq(access(path, F_OK), 0);
        ck_assert_int_eq(count_entries("dead"), 0);
        fail_at = FAIL_NONE;
        stray_error = 0;
        strays_reported = 0;
        ck_assert_int_eq(spool_evict_strays(&s, count_stray, NULL), 2);
        ck_assert_int_eq(strays_reported, 2);
        /* The real item stays; the strays are kept in dead/, not deleted. */
        ck_assert_int_eq(count_entries("pending"), 1);
        snprintf(path, sizeof(path), "%s/dead/README", spool_root);
        ck_assert_int_eq(access(path, F_OK), 0);
        snprintf(path, sizeof(path), "%s/dead/.note.swp", spool_root);
        ck_assert_int_eq(access(path, F_OK), 0);
        ck_assert_int_eq(spool_evict_strays(&s, count_stray, NULL), 0);
        envelope_free(&env);
        free(item);
        spool_teardown(&s);
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

        spool_setup(&s);
        make_envelope(&env);
        ck_assert_int_eq(spool_create(&s, &env, item), 0);
        snprintf(path, sizeof(path), "%s/tmp/%s", spool_root, env.id);
        ck_assert_int_eq(utimensat(AT_FDCWD, path, old, 0), 0);
        ck_assert_int_eq(spool_new_id(env.id), 0);
        ck_assert_int_eq(spool_create(&s, &env, live), 0);
        ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &now), 0);
        ck_assert_int_eq(spool_clean_tmp(&s, (int64_t)now.tv_sec * 1000), 1);
        ck_assert_int_eq(access(path, F_OK), -1);
        ck_assert_int_eq(count_entries("tmp"), 1);
        ck_assert_int_eq(spool_commit(live), 0);
        close(item->fd);
        envelope_free(&env);
        free(item);
        free(live);
        spool_teardown(&s);
}
END_TEST


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

static Suite *lib_suite(void)
{
        Suite *s = suite_create("lib");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_config_defaults);
        tcase_add_test(tc, test_config_bad_values);
        tcase_add_test(tc, test_config_values);
        tcase_add_test(tc, test_config_credentials);
        tcase_add_test(tc, test_queue_ids);
        tcase_add_test(tc, test_spool_commit_and_read);
        tcase_add_test(tc, test_envelope_recipient_limit);
        tcase_add_test(tc, test_spool_commit_fsyncs);
        tcase_add_test(tc, test_session_disk_faults);
        tcase_add_test(tc, test_spool_evict_strays);
        tcase_add_test(tc, test_spool_clean_tmp);
        tcase_add_test(tc, test_journal_record);
        tcase_add_test(tc, test_log_fields);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(lib_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
