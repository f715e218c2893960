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
        ck_assert_uint_eq(cfg.max_retry_age_ms, 432000000);
        ck_assert_uint_eq(cfg.standard_key_len, 0);
        ck_assert(config_status_in(&cfg.dead_statuses, 406));
        ck_assert(!config_status_in(&cfg.dead_statuses, 400));
        ck_assert(config_status_in(&cfg.delivered_statuses, 200));
        ck_assert(config_status_in(&cfg.delivered_statuses, 299));
        ck_assert(!config_status_in(&cfg.delivered_statuses, 409));
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
                { "WEBHOOK_STANDARD_SECRET", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" },   /* no whsec_ */
                { "WEBHOOK_STANDARD_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS" }, /* not base64 */
                { "WEBHOOK_STANDARD_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8I LPZIo2LaLaSw" },
                { "WEBHOOK_STANDARD_SECRET", "whsec_c2hvcnQ=" },      /* 5 bytes */
                { "WEBHOOK_DEAD_STATUSES", "4xx,abc" },
                { "WEBHOOK_DEAD_STATUSES", "600" },
                { "WEBHOOK_DEAD_STATUSES", "099" },
                { "WEBHOOK_DEAD_STATUSES", "4XY" },
                { "WEBHOOK_DEAD_STATUSES", "406,,410" },
                { "WEBHOOK_DEAD_STATUSES", "4066" },
                { "WEBHOOK_DEAD_STATUSES", "2xx" },            /* a delivery */
                { "WEBHOOK_DEAD_STATUSES", "none,406" },
                { "WEBHOOK_DELIVERED_STATUSES", "409" },        /* leaves out 2xx */
                { "WEBHOOK_DELIVERED_STATUSES", "2xx,4xx" },    /* 404 delivered */
                { "WEBHOOK_DELIVERED_STATUSES", "2xx,302" },    /* a redirect never followed */
                { "WEBHOOK_DELIVERED_STATUSES", "2xx,500" },
                { "WEBHOOK_DELIVERED_STATUSES", "2xx,406" },    /* also dead */
                { "WEBHOOK_DELIVERED_STATUSES", "none" },
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

/* WEBHOOK_DECISION_STAGES: any order and case, and a bad word is named. */
START_TEST(test_config_decision_stages)
{
        static const struct {
                const char *value;
                bool rcpt, data;
        } good[] = {
                { "data", false, true },
                { "rcpt", true, false },
                { "rcpt,data", true, true },
                { " DATA , Rcpt ", true, true },
                { "rcpt,rcpt", true, false },
        };
        static const char *const bad[] = { "rpct", "rcpt,body", ",", "rcpt;data", "none" };
        struct hw_config cfg;
        char err[256];

        unit_clear_env();
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        ck_assert(cfg.decision_at_data && !cfg.decision_at_rcpt);
        ck_assert_uint_eq(cfg.decision_rcpt_budget_ms, 30000);
        config_free(&cfg);
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                setenv("WEBHOOK_DECISION_STAGES", good[i].value, 1);
                ck_assert_msg(load(&cfg, err, sizeof(err)) == 0, "%s: %s", good[i].value, err);
                ck_assert_msg(cfg.decision_at_rcpt == good[i].rcpt && cfg.decision_at_data == good[i].data,
                              "%s: rcpt %d data %d", good[i].value, cfg.decision_at_rcpt, cfg.decision_at_data);
                config_free(&cfg);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                setenv("WEBHOOK_DECISION_STAGES", bad[i], 1);
                ck_assert_int_eq(load(&cfg, err, sizeof(err)), -EINVAL);
                ck_assert_msg(strstr(err, "WEBHOOK_DECISION_STAGES") && strstr(err, "rcpt,data"),
                              "%s: error '%s'", bad[i], err);
        }
        unit_clear_env();
        setenv("WEBHOOK_DECISION_RCPT_BUDGET_MS", "0", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "WEBHOOK_DECISION_RCPT_BUDGET_MS"));
}
END_TEST

/* The status sets: codes, classes, spaces, any case of x, and none. */
START_TEST(test_config_statuses)
{
        struct hw_config cfg;
        char err[256];

        unit_clear_env();
        setenv("WEBHOOK_DEAD_STATUSES", " 410 , 5XX,3xx", 1);
        setenv("WEBHOOK_DELIVERED_STATUSES", "2xx, 409,410", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "both hold 410"));
        setenv("WEBHOOK_DELIVERED_STATUSES", "2xx, 409", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        for (long c = 100; c <= 599; c++) {
                ck_assert_msg(config_status_in(&cfg.dead_statuses, c) ==
                              (c == 410 || (c >= 500 && c <= 599) || (c >= 300 && c <= 399)), "dead %ld", c);
                ck_assert_msg(config_status_in(&cfg.delivered_statuses, c) ==
                              (c == 409 || (c >= 200 && c <= 299)), "delivered %ld", c);
        }
        ck_assert(!config_status_in(&cfg.dead_statuses, 0));
        ck_assert(!config_status_in(&cfg.dead_statuses, 600));
        ck_assert(!config_status_in(&cfg.dead_statuses, -1));
        config_free(&cfg);

        /* 406 can mean delivered once it is no longer dead. */
        setenv("WEBHOOK_DEAD_STATUSES", "NONE", 1);
        setenv("WEBHOOK_DELIVERED_STATUSES", "2xx,406", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        for (long c = 100; c <= 599; c++)
                ck_assert(!config_status_in(&cfg.dead_statuses, c));
        ck_assert(config_status_in(&cfg.delivered_statuses, 406));
        config_free(&cfg);
}
END_TEST

/* The Standard Webhooks secret is decoded once, and wiped with the rest. */
START_TEST(test_config_standard_secret)
{
        static const unsigned char key[] = {   /* base64 -d of the text below */
                0x31, 0xf2, 0x90, 0xf6, 0xbf, 0x06, 0x29, 0x8a, 0xab, 0x4f, 0x08, 0xd4,
                0x3c, 0x3f, 0x08, 0x2c, 0xf6, 0x48, 0xa3, 0x62, 0xda, 0x2d, 0xa4, 0xb0,
        };
        struct hw_config cfg;
        char err[256];

        unit_clear_env();
        setenv("WEBHOOK_STANDARD_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        ck_assert_uint_eq(cfg.standard_key_len, sizeof(key));
        ck_assert(memcmp(cfg.standard_key, key, sizeof(key)) == 0);
        config_free(&cfg);
        ck_assert_uint_eq(cfg.standard_key_len, 0);
        for (size_t i = 0; i < sizeof(cfg.standard_key); i++)
                ck_assert_uint_eq(cfg.standard_key[i], 0);
        /* 64 bytes is the most. */
        setenv("WEBHOOK_STANDARD_SECRET", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), 0);
        ck_assert_uint_eq(cfg.standard_key_len, 64);
        config_free(&cfg);
        setenv("WEBHOOK_STANDARD_SECRET", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1);
        ck_assert_int_eq(load(&cfg, err, sizeof(err)), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err, "24 to 64 bytes"));
        unit_clear_env();
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
        tcase_add_test(tc, test_config_decision_stages);
        tcase_add_test(tc, test_config_credentials);
        tcase_add_test(tc, test_config_statuses);
        tcase_add_test(tc, test_config_standard_secret);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(config_suite());
}
