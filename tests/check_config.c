/* Unit tests of lib/config.c: defaults, refused values and the error that
 * names the setting, accepted values, and credentials read from files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

static int load(struct hw_config *cfg, char *err, size_t errlen)
{
        return config_load(cfg, err, errlen);
}

START_TEST(test_config_defaults)
{
        struct hw_config cfg;
        char err[256];

        unit_clear_env();
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
/* WEBHOOK_ROLE_FORMAT follows WEBHOOK_FORMAT unless it is set; a name
 * that is no format is an error naming the variable. */
START_TEST(test_config_formats)
{
        struct hw_config cfg;
        char err[256];

        unit_clear_env();
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        ck_assert_int_eq(cfg.webhook_format, WEBHOOK_FORMAT_MAILGUN);
        ck_assert_int_eq(cfg.webhook_role_format, WEBHOOK_FORMAT_MAILGUN);
        config_free(&cfg);
        setenv("WEBHOOK_FORMAT", "Relay", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        ck_assert_int_eq(cfg.webhook_format, WEBHOOK_FORMAT_RELAY);
        ck_assert_int_eq(cfg.webhook_role_format, WEBHOOK_FORMAT_RELAY);
        config_free(&cfg);
        setenv("WEBHOOK_ROLE_FORMAT", "mailgun-multipart", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        ck_assert_int_eq(cfg.webhook_format, WEBHOOK_FORMAT_RELAY);
        ck_assert_int_eq(cfg.webhook_role_format, WEBHOOK_FORMAT_MAILGUN_MULTIPART);
        config_free(&cfg);
        setenv("WEBHOOK_ROLE_FORMAT", "mailgun-form", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "WEBHOOK_ROLE_FORMAT"));
        ck_assert_ptr_nonnull(strstr(err, "sendgrid or postmark"));
        unit_clear_env();
}
END_TEST

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
                unit_clear_env();
                setenv(bad[i][0], bad[i][1], 1);
                ck_assert_int_eq(load(&cfg, err, sizeof(err)), -EINVAL);
                ck_assert_msg(strstr(err, bad[i][0]), "%s=%s: error '%s' does not name it",
                              bad[i][0], bad[i][1], err);
        }
        unit_clear_env();
        setenv("SMTP_TLS_CERT_PATH", "/x.pem", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "SMTP_TLS_KEY_PATH"));
        unit_clear_env();
        setenv("ACCEPT_ALL_RECIPIENTS", "false", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "ACCEPTED_DOMAINS"));
}
END_TEST

START_TEST(test_config_values)
{
        struct hw_config cfg;
        char err[256];

        unit_clear_env();
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
        unit_clear_env();
        setenv("WEBHOOK_SIGNING_KEY", "from-env", 1);
        setenv("CREDENTIALS_DIRECTORY", dir, 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        ck_assert_str_eq(cfg.signing_key, "from-credential");
        ck_assert_str_eq(cfg.decision_token, "");
        config_free(&cfg);
        unlink(path);
        rmdir(dir);
        unit_clear_env();
}
END_TEST

static Suite *config_suite(void)
{
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("config");

        tcase_add_test(tc, test_config_defaults);
        tcase_add_test(tc, test_config_bad_values);
        tcase_add_test(tc, test_config_formats);
        tcase_add_test(tc, test_config_values);
        tcase_add_test(tc, test_config_credentials);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(config_suite());
}
