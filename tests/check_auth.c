/* Unit tests of lib/auth_verdict.c (the header, forged headers, the
 * envelope lines and the payload fields), hwjson_auth() and the spool's
 * reserve that carries them (lib/spool.c). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_verdict.h"
#include "json.h"
#include "spool.h"
#include "unit.h"

/* A verdict with one of everything. */
static void sample(struct auth_verdict *v)
{
        auth_verdict_init(v);
        v->checked = true;
        v->spf = AUTH_SOFTFAIL;
        snprintf(v->spf_identity, sizeof(v->spf_identity), "alice@example.net");
        v->dkim_count = 2;
        v->dkim[0] = (struct auth_dkim){ .result = AUTH_PASS, .domain = "example.net", .selector = "sel",
                                         .algorithm = "rsa-sha256", .b = "W9zR647S" };
        v->dkim[1] = (struct auth_dkim){ .result = AUTH_FAIL, .domain = "other.example", .selector = "ed",
                                         .algorithm = "ed25519-sha256", .b = "AbC+/9=x",
                                         .reason = "body hash mismatch" };
        v->dmarc = AUTH_PASS;
        snprintf(v->dmarc_from, sizeof(v->dmarc_from), "example.net");
        v->dmarc_policy = AUTH_POLICY_QUARANTINE;
}

START_TEST(result_words_round_trip)
{
        for (int i = 0; i < AUTH_RESULT_COUNT; i++) {
                enum auth_result r;

                ck_assert_int_eq(auth_result_parse(auth_result_name((enum auth_result)i), &r), 0);
                ck_assert_int_eq(r, i);
        }
        for (int i = 0; i < AUTH_POLICY_COUNT; i++) {
                enum auth_policy p;

                ck_assert_int_eq(auth_policy_parse(auth_policy_name((enum auth_policy)i), &p), 0);
                ck_assert_int_eq(p, i);
        }
        {
                enum auth_result r;

                ck_assert_int_eq(auth_result_parse("Pass", &r), -EINVAL);
                ck_assert_int_eq(auth_result_parse("hardfail", &r), -EINVAL);
        }
}
END_TEST

START_TEST(header_has_every_property)
{
        struct auth_verdict v;
        char buf[AUTH_HEADER_MAX];
        ssize_t n;

        sample(&v);
        n = auth_header_format(&v, "mx.test", buf, sizeof(buf));
        ck_assert_int_gt(n, 0);
        ck_assert_uint_eq((size_t)n, strlen(buf));
        ck_assert_str_eq(buf,
                         "Authentication-Results: mx.test;\r\n"
                         "\tspf=softfail smtp.mailfrom=alice@example.net;\r\n"
                         "\tdkim=pass header.d=example.net header.s=sel header.a=rsa-sha256 header.b=W9zR647S;\r\n"
                         "\tdkim=fail (body hash mismatch) header.d=other.example header.s=ed"
                         " header.a=ed25519-sha256 header.b=AbC+/9=x;\r\n"
                         "\tdmarc=pass header.from=example.net policy.dmarc=quarantine\r\n");
}
END_TEST

START_TEST(header_helo_and_none)
{
        struct auth_verdict v;
        char buf[AUTH_HEADER_MAX];

        auth_verdict_init(&v);
        v.checked = true;
        v.spf = AUTH_PASS;
        v.spf_helo = true;
        snprintf(v.spf_identity, sizeof(v.spf_identity), "mail.example.net");
        v.dmarc = AUTH_PERMERROR;
        snprintf(v.dmarc_reason, sizeof(v.dmarc_reason), "several From: fields");
        ck_assert_int_gt(auth_header_format(&v, "mx.test", buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf,
                         "Authentication-Results: mx.test;\r\n"
                         "\tspf=pass smtp.helo=mail.example.net;\r\n"
                         "\tdkim=none;\r\n"
                         "\tdmarc=permerror (several From: fields)\r\n");
}
END_TEST

/* Values come from the sender: nothing in them may end the header,
 * start a new property or break out of a comment. */
START_TEST(header_escapes_hostile_values)
{
        struct auth_verdict v;
        char buf[AUTH_HEADER_MAX];

        auth_verdict_init(&v);
        v.checked = true;
        snprintf(v.spf_identity, sizeof(v.spf_identity), "\"a;b\\\"\"@example.net");
        v.dkim_count = 1;
        snprintf(v.dkim[0].domain, sizeof(v.dkim[0].domain), "x.example;\r\nBcc: y");
        snprintf(v.dkim[0].selector, sizeof(v.dkim[0].selector), "s (c)");
        snprintf(v.dkim[0].reason, sizeof(v.dkim[0].reason), "a) dkim=pass (b");
        v.dkim[0].result = AUTH_NEUTRAL;
        ck_assert_int_gt(auth_header_format(&v, "mx.test", buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf,
                         "Authentication-Results: mx.test;\r\n"
                         "\tspf=none smtp.mailfrom=\"\\\"a;b\\\\\\\"\\\"@example.net\";\r\n"
                         "\tdkim=neutral (a\\) dkim=pass \\(b) header.d=\"x.example;??Bcc: y\""
                         " header.s=\"s (c)\";\r\n"
                         "\tdmarc=none\r\n");
        /* Exactly the CRLFs of the folding, each followed by a tab. */
        for (const char *p = strstr(buf, "\r\n"); p; p = strstr(p + 2, "\r\n"))
                ck_assert(p[2] == '\t' || p[2] == '\0');
}
END_TEST

START_TEST(header_too_small)
{
        struct auth_verdict v;
        char buf[40];

        sample(&v);
        ck_assert_int_eq(auth_header_format(&v, "mx.test", buf, sizeof(buf)), -E2BIG);
}
END_TEST

#define OURS(value) auth_header_is_ours(value, strlen(value), "mx.test")

START_TEST(forged_header_recognized)
{
        ck_assert(OURS(" mx.test; spf=pass"));
        ck_assert(OURS(" MX.Test; spf=pass"));
        ck_assert(OURS("mx.test;spf=pass"));
        ck_assert(OURS(" mx.test 1; spf=pass"));               /* with a version */
        ck_assert(OURS(" (comment) mx.test; none"));
        ck_assert(OURS(" (nested (comment)) mx.test; none"));
        ck_assert(OURS("\r\n\tmx.test;\r\n\tspf=pass"));       /* folded */
        ck_assert(OURS(" \"mx.test\"; none"));                 /* quoted */
        ck_assert(OURS(" mx.test(c); none"));
        ck_assert(!OURS(" mx.test.evil; spf=pass"));
        ck_assert(!OURS(" evil.mx.test; spf=pass"));
        ck_assert(!OURS(" mx.tes; spf=pass"));
        ck_assert(!OURS(" other.example; spf=pass header.d=mx.test"));
        ck_assert(!OURS(""));
        ck_assert(!OURS(" ; spf=pass"));
        ck_assert(!OURS(" (mx.test) other; none"));
}
END_TEST

START_TEST(forged_name_keeps_the_length)
{
        ck_assert_uint_eq(strlen(AUTH_FORGED_NAME), strlen(AUTH_HEADER_NAME));
}
END_TEST

/* The envelope lines back through the parser give the same verdict. */
START_TEST(lines_round_trip)
{
        struct auth_verdict v, back;
        char lines[AUTH_LINES_MAX];

        sample(&v);
        ck_assert_int_gt(auth_verdict_format_lines(&v, lines, sizeof(lines)), 0);
        ck_assert_str_eq(lines,
                         "auth-spf softfail mailfrom alice@example.net\n"
                         "auth-dkim pass example.net sel rsa-sha256 W9zR647S\n"
                         "auth-dkim fail other.example ed ed25519-sha256 AbC+/9=x\n"
                         "auth-dmarc pass example.net quarantine\n");
        auth_verdict_init(&back);
        for (char *line = lines, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
                char *space = strchr(line, ' ');

                *nl = '\0';
                *space = '\0';
                ck_assert_int_eq(auth_verdict_parse_line(&back, line, space + 1), 1);
        }
        ck_assert(back.checked);
        ck_assert_int_eq(back.spf, AUTH_SOFTFAIL);
        ck_assert(!back.spf_helo);
        ck_assert_str_eq(back.spf_identity, "alice@example.net");
        ck_assert_uint_eq(back.dkim_count, 2);
        ck_assert_int_eq(back.dkim[1].result, AUTH_FAIL);
        ck_assert_str_eq(back.dkim[1].domain, "other.example");
        ck_assert_str_eq(back.dkim[1].b, "AbC+/9=x");
        ck_assert_int_eq(back.dmarc, AUTH_PASS);
        ck_assert_str_eq(back.dmarc_from, "example.net");
        ck_assert_int_eq(back.dmarc_policy, AUTH_POLICY_QUARANTINE);
}
END_TEST

START_TEST(lines_empty_values_and_spaces)
{
        struct auth_verdict v, back;
        char lines[AUTH_LINES_MAX], *space;

        auth_verdict_init(&v);
        v.checked = true;
        v.spf_helo = true;
        v.dmarc = AUTH_NONE;
        v.dkim_count = 1;
        snprintf(v.dkim[0].selector, sizeof(v.dkim[0].selector), "a b\r\n");
        ck_assert_int_gt(auth_verdict_format_lines(&v, lines, sizeof(lines)), 0);
        ck_assert_str_eq(lines,
                         "auth-spf none helo -\n"
                         "auth-dkim none - a?b?? - -\n"
                         "auth-dmarc none - absent\n");
        auth_verdict_init(&back);
        lines[strcspn(lines, "\n")] = '\0';
        space = strchr(lines, ' ');
        *space = '\0';
        ck_assert_int_eq(auth_verdict_parse_line(&back, lines, space + 1), 1);
        ck_assert(back.spf_helo);
        ck_assert_str_eq(back.spf_identity, "");
}
END_TEST

START_TEST(lines_unchecked_and_malformed)
{
        struct auth_verdict v;
        char lines[64];

        auth_verdict_init(&v);
        ck_assert_int_eq(auth_verdict_format_lines(&v, lines, sizeof(lines)), 0);
        ck_assert_str_eq(lines, "");
        ck_assert_int_eq(auth_verdict_parse_line(&v, "rcpt", "a@b"), 0);
        ck_assert_int_eq(auth_verdict_parse_line(&v, "auth-spf", "pass"), -EBADMSG);
        ck_assert_int_eq(auth_verdict_parse_line(&v, "auth-spf", "great mailfrom a@b"), -EBADMSG);
        ck_assert_int_eq(auth_verdict_parse_line(&v, "auth-dmarc", "pass example.net maybe"), -EBADMSG);
        ck_assert(!v.checked);
        /* A check a later version adds is skipped, not an error. */
        ck_assert_int_eq(auth_verdict_parse_line(&v, "auth-arc", "pass"), 1);
}
END_TEST

struct fields {
        char text[512];
};

static void collect(void *userdata, const char *name, const char *value)
{
        struct fields *f = userdata;
        size_t len = strlen(f->text);

        snprintf(f->text + len, sizeof(f->text) - len, "%s=%s;", name, value);
}

START_TEST(payload_fields_from_verdict)
{
        struct auth_verdict v;
        struct fields f = { "" };

        sample(&v);
        auth_verdict_fields(&v, collect, &f);
        ck_assert_str_eq(f.text, "auth-spf=softfail;auth-dkim=pass;auth-dmarc=pass;auth-dmarc-policy=quarantine;");

        /* DKIM's one word: the first signature's when none passed. */
        v.dkim[0].result = AUTH_TEMPERROR;
        ck_assert_int_eq(auth_verdict_dkim_summary(&v), AUTH_TEMPERROR);
        v.dkim_count = 0;
        ck_assert_int_eq(auth_verdict_dkim_summary(&v), AUTH_NONE);

        /* Not checked: no fields at all. */
        auth_verdict_init(&v);
        f.text[0] = '\0';
        auth_verdict_fields(&v, collect, &f);
        ck_assert_str_eq(f.text, "");
}
END_TEST

START_TEST(json_form)
{
        struct auth_verdict v;
        char *text;

        sample(&v);
        v.dkim_count = 1;
        text = hwjson_auth_dump(&v);
        ck_assert_ptr_nonnull(text);
        ck_assert_str_eq(text,
                         "{\"spf\":{\"result\":\"softfail\",\"identity\":\"mailfrom\",\"value\":\"alice@example.net\"},"
                         "\"dkim\":[{\"result\":\"pass\",\"domain\":\"example.net\",\"selector\":\"sel\","
                         "\"algorithm\":\"rsa-sha256\",\"b\":\"W9zR647S\",\"reason\":\"\"}],"
                         "\"dmarc\":{\"result\":\"pass\",\"from\":\"example.net\",\"policy\":\"quarantine\",\"reason\":\"\"}}");
        free(text);
}
END_TEST

/* ---- the spool's reserve -------------------------------------------- */

static struct spool spool;

static void reserve_setup(void)
{
        unit_spool_setup(&spool);
}

static void reserve_teardown(void)
{
        unit_spool_teardown(&spool);
}

static char *slurp(const char *dir, const char *id, size_t *len)
{
        char path[256], *buf = malloc(65536);
        int fd;
        ssize_t n;

        snprintf(path, sizeof(path), "%s/%s/%s", unit_spool_root, dir, id);
        fd = open(path, O_RDONLY);
        ck_assert_int_ge(fd, 0);
        n = read(fd, buf, 65535);
        ck_assert_int_ge(n, 0);
        buf[n] = '\0';
        close(fd);
        *len = (size_t)n;
        return buf;
}

static void new_item(struct envelope *env, struct spool_item *item, size_t reserve)
{
        ck_assert_int_eq(envelope_init(env, 4), 0);
        ck_assert_int_eq(spool_new_id(env->id), 0);
        snprintf(env->remote_ip, sizeof(env->remote_ip), "192.0.2.7");
        snprintf(env->sender, sizeof(env->sender), "alice@example.net");
        ck_assert_int_eq(envelope_add_rcpt(env, "bob@example.com"), 0);
        ck_assert_int_eq(spool_create_reserved(&spool, env, item, reserve), 0);
}

START_TEST(reserve_filled_then_committed)
{
        static const char sender_bytes[] = "Authentication-Results: mx.test; spf=pass\r\nSubject: x\r\n\r\nhi\r\n";
        static const char headers[] = "Received: by mx.test\r\nAuthentication-Results: mx.test; spf=fail\r\n";
        struct envelope env, back;
        struct spool_item item;
        struct auth_verdict v;
        off_t body;
        size_t len;
        char *text;
        int fd;

        new_item(&env, &item, 1024);
        ck_assert_int_eq(spool_write(&item, sender_bytes, strlen(sender_bytes)), 0);
        ck_assert_int_eq(spool_flush(&item), 0);
        /* Unfilled, the item is already valid: its message is the sender's. */
        fd = spool_item_open_read(&item);
        ck_assert_int_eq(envelope_init(&back, 4), 0);
        ck_assert_int_eq(envelope_read(fd, &back, &body), 0);
        ck_assert_int_eq(body, item.message_offset);
        close(fd);

        ck_assert_int_eq(spool_patch(&item, 0, AUTH_FORGED_NAME, strlen(AUTH_FORGED_NAME)), 0);
        ck_assert_int_eq(spool_patch(&item, strlen(sender_bytes) - 2, "xyz", 3), -EINVAL);
        ck_assert_int_eq(spool_fill_reserve(&item, "auth-spf fail mailfrom alice@example.net\n",
                                            headers, strlen(headers)), 0);
        ck_assert_uint_eq(item.bytes, strlen(headers) + strlen(sender_bytes));
        ck_assert_int_eq(spool_fill_reserve(&item, "", headers, strlen(headers)), -EINVAL);
        ck_assert_int_eq(spool_commit(&item), 0);

        text = slurp("pending", env.id, &len);
        /* The message: our headers, then the sender's bytes, renamed. */
        ck_assert_str_eq(text + len - strlen(headers) - strlen(sender_bytes) , 
                         "Received: by mx.test\r\nAuthentication-Results: mx.test; spf=fail\r\n"
                         "X-Forged-Authn-Results: mx.test; spf=pass\r\nSubject: x\r\n\r\nhi\r\n");
        ck_assert_ptr_nonnull(strstr(text, "\nrcpt bob@example.com\nauth-spf fail mailfrom alice@example.net\npad "));
        ck_assert_ptr_nonnull(strstr(text, "-\n\nReceived: by mx.test\r\n"));
        free(text);

        /* Both readers agree on where the message starts and what it says. */
        {
                char path[256];

                snprintf(path, sizeof(path), "%s/pending/%s", unit_spool_root, env.id);
                fd = open(path, O_RDONLY);
        }
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(envelope_read(fd, &back, &body), 0);
        ck_assert_int_eq(body, (off_t)(len - strlen(headers) - strlen(sender_bytes)));
        ck_assert_str_eq(back.sender, "alice@example.net");
        ck_assert_int_eq(auth_verdict_read(fd, body, &v), 0);
        ck_assert(v.checked);
        ck_assert_int_eq(v.spf, AUTH_FAIL);
        close(fd);
        envelope_free(&env);
        envelope_free(&back);
}
END_TEST

START_TEST(reserve_too_small)
{
        struct envelope env;
        struct spool_item item;
        char headers[200];

        memset(headers, 'x', sizeof(headers));
        new_item(&env, &item, 64);
        ck_assert_int_eq(spool_fill_reserve(&item, "", headers, sizeof(headers)), -E2BIG);
        spool_abort(&item);
        envelope_free(&env);
}
END_TEST

/* An item without a reserve (AUTH_CHECKS=off, or older) has no verdict. */
START_TEST(no_reserve_no_verdict)
{
        struct envelope env;
        struct spool_item item;
        struct auth_verdict v;
        int fd;

        new_item(&env, &item, 0);
        ck_assert_uint_eq(item.reserve_len, 0);
        ck_assert_int_eq(spool_write(&item, "Subject: x\r\n\r\n", 14), 0);
        ck_assert_int_eq(spool_flush(&item), 0);
        fd = spool_item_open_read(&item);
        ck_assert_int_eq(auth_verdict_read(fd, item.message_offset, &v), 0);
        ck_assert(!v.checked);
        /* A file with no envelope block before the offset says nothing. */
        ck_assert_int_eq(auth_verdict_read(fd, 5, &v), 0);
        ck_assert(!v.checked);
        close(fd);
        spool_abort(&item);
        envelope_free(&env);
}
END_TEST

static Suite *auth_suite(void)
{
        Suite *s = suite_create("auth");
        TCase *t = tcase_create("verdict");

        tcase_add_test(t, result_words_round_trip);
        tcase_add_test(t, header_has_every_property);
        tcase_add_test(t, header_helo_and_none);
        tcase_add_test(t, header_escapes_hostile_values);
        tcase_add_test(t, header_too_small);
        tcase_add_test(t, forged_header_recognized);
        tcase_add_test(t, forged_name_keeps_the_length);
        tcase_add_test(t, lines_round_trip);
        tcase_add_test(t, lines_empty_values_and_spaces);
        tcase_add_test(t, lines_unchecked_and_malformed);
        tcase_add_test(t, payload_fields_from_verdict);
        tcase_add_test(t, json_form);
        suite_add_tcase(s, t);
        t = tcase_create("reserve");
        tcase_add_checked_fixture(t, reserve_setup, reserve_teardown);
        tcase_add_test(t, reserve_filled_then_committed);
        tcase_add_test(t, reserve_too_small);
        tcase_add_test(t, no_reserve_no_verdict);
        suite_add_tcase(s, t);
        return s;
}

int main(void)
{
        return unit_run(auth_suite());
}
