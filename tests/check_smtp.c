/* Unit tests of receive/smtp.c and receive/smtp_parse.c: command and path
 * parsing, PROXY v1, the validators, what the session asks of its hooks,
 * and its answers when the disk fails (through the spool's seam). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "config.h"
#include "smtp.h"
#include "smtp_parse.h"
#include "unit.h"

START_TEST(test_command_parse)
{
        const char *args;

        ck_assert_int_eq(smtp_parse_command("EHLO mx.example", &args), CMD_EHLO);
        ck_assert_str_eq(args, "mx.example");
        ck_assert_int_eq(smtp_parse_command("mail from:<a@b>", &args), CMD_MAIL);
        ck_assert_str_eq(args, "<a@b>");
        ck_assert_int_eq(smtp_parse_command("RCPT TO: <a@b>", &args), CMD_RCPT);
        ck_assert_str_eq(args, "<a@b>");
        ck_assert_int_eq(smtp_parse_command("QUIT", &args), CMD_QUIT);
        ck_assert_int_eq(smtp_parse_command("QUITX", &args), CMD_UNKNOWN);
        ck_assert_int_eq(smtp_parse_command("DATAX", &args), CMD_UNKNOWN);
        ck_assert_int_eq(smtp_parse_command("starttls", &args), CMD_STARTTLS);
        ck_assert_int_eq(smtp_parse_command("BDAT 10", &args), CMD_BDAT);
        ck_assert_str_eq(args, "10");
        ck_assert_int_eq(smtp_parse_command("BDATX 10", &args), CMD_UNKNOWN);
        ck_assert_int_eq(smtp_parse_command("", &args), CMD_UNKNOWN);
}
END_TEST

START_TEST(test_path_parse)
{
        struct smtp_path p;

        ck_assert_int_eq(smtp_parse_path("<alice@example.net>", true, &p), 0);
        ck_assert_str_eq(p.addr, "alice@example.net");
        ck_assert_int_eq(smtp_parse_path("<>", true, &p), 0);
        ck_assert_str_eq(p.addr, "");
        ck_assert_int_eq(smtp_parse_path("<>", false, &p), -EINVAL);
        ck_assert_int_eq(smtp_parse_path("<a@b.c> SIZE=1000 BODY=8BITMIME SMTPUTF8", true, &p), 0);
        ck_assert_uint_eq(p.size, 1000);
        ck_assert_int_eq(p.body, BODY_8BITMIME);
        ck_assert(p.smtputf8);
        ck_assert_int_eq(smtp_parse_path("<a@b.c> BODY=binarymime", true, &p), 0);
        ck_assert_int_eq(p.body, BODY_BINARYMIME);
        ck_assert_int_eq(smtp_parse_path("<a@b.c> BODY=BINARY", true, &p), -EPROTO);
        ck_assert_int_eq(smtp_parse_path("<a@b.c> FOO=1", true, &p), -EPROTO);
        ck_assert_int_eq(smtp_parse_path("<a@b.c> SIZE=1", false, &p), -EPROTO);
        ck_assert_int_eq(smtp_parse_path("<@r1,@r2:u@d.e>", false, &p), 0);
        ck_assert_str_eq(p.addr, "u@d.e");
        ck_assert_int_eq(smtp_parse_path("bare@x.y", false, &p), 0);
        ck_assert_int_eq(smtp_parse_path("<Postmaster>", false, &p), 0);
        ck_assert_int_eq(smtp_parse_path("<no-at-sign>", false, &p), -EINVAL);
        ck_assert_int_eq(smtp_parse_path("<a@b", false, &p), -EINVAL);
        ck_assert_int_eq(smtp_parse_path("<a b@c.d>", false, &p), -EINVAL);
        ck_assert_int_eq(smtp_parse_path("<\"a b\"@c.d>", false, &p), 0);
        ck_assert_int_eq(smtp_parse_path("<a@[192.0.2.1]>", false, &p), 0);
        ck_assert_int_eq(smtp_parse_path("<a@b..c>", false, &p), -EINVAL);
        /* Found by fuzzing: an address literal holds dcontent only, and a
         * domain does not end with a dot. */
        ck_assert_int_eq(smtp_parse_path("<a@[IPv6:2001:db8::1]>", false, &p), 0);
        ck_assert_int_eq(smtp_parse_path("<bob@[19 7]>", false, &p), -EINVAL);
        ck_assert(!smtp_address_valid("bob@[\x01\xff]", true));
        ck_assert(!smtp_address_valid("bob@[x]y]", true));
        ck_assert(!smtp_address_valid("bob@[]", true));
        /* A quoted pair escapes printable ASCII only, with or without SMTPUTF8. */
        ck_assert(!smtp_address_valid("\"\\\xc6\"@b", false));
        ck_assert(!smtp_address_valid("\"\\\xc6\"@b", true));
        ck_assert(smtp_address_valid("\"a\\\"b\"@b", false));
        ck_assert_int_eq(smtp_parse_path("<bob@example.com.>", false, &p), -EINVAL);

        char long_addr[400];
        memset(long_addr, 'a', sizeof(long_addr));
        long_addr[0] = '<';
        strcpy(long_addr + 300, "@x.y>");
        ck_assert_int_eq(smtp_parse_path(long_addr, false, &p), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_bdat_parse)
{
        static const char *const bad[] = {
                "", " 1", "+1", "-1", "0x10", "1 ", "1  LAST", "1 LAST ", "1 LASTX", "1 MORE",
                "1 LAST x", "1\tLAST", "LAST", "1,000",
        };
        uint64_t size = 7;
        bool last = true;

        ck_assert_int_eq(smtp_parse_bdat("0 LAST", &size, &last), 0);
        ck_assert_uint_eq(size, 0);
        ck_assert(last);
        ck_assert_int_eq(smtp_parse_bdat("1024", &size, &last), 0);
        ck_assert_uint_eq(size, 1024);
        ck_assert(!last);
        ck_assert_int_eq(smtp_parse_bdat("0010 last", &size, &last), 0);
        ck_assert_uint_eq(size, 10);
        ck_assert(last);
        ck_assert_int_eq(smtp_parse_bdat("18446744073709551615", &size, &last), 0);
        ck_assert_uint_eq(size, UINT64_MAX);
        /* A size that does not fit is not taken modulo anything. */
        ck_assert_int_eq(smtp_parse_bdat("18446744073709551616", &size, &last), -ERANGE);
        ck_assert_int_eq(smtp_parse_bdat("99999999999999999999999 LAST", &size, &last), -ERANGE);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ck_assert_msg(smtp_parse_bdat(bad[i], &size, &last) == -EINVAL, "BDAT '%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_address_utf8)
{
        ck_assert(smtp_address_valid("j\xc3\xb6rg@example.de", true));
        ck_assert(!smtp_address_valid("j\xc3\xb6rg@example.de", false));
        ck_assert(smtp_address_valid("user@xn--bcher-kva.example", false));
        /* 8-bit bytes that are not UTF-8 are not an SMTPUTF8 address. */
        ck_assert(!smtp_address_valid("\xe4\xbe\x8b\x90@example.com", true));
        ck_assert(!smtp_address_valid("j\xf6rg@example.de", true));
}
END_TEST

START_TEST(test_proxy_v1)
{
        char ip[HW_IP_MAX];
        unsigned port;

        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY TCP4 192.0.2.7 198.51.100.1 56324 25", ip, &port), 0);
        ck_assert_str_eq(ip, "192.0.2.7");
        ck_assert_uint_eq(port, 56324);
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY TCP6 2001:db8::1 2001:db8::2 1 25", ip, &port), 0);
        ck_assert_str_eq(ip, "2001:db8::1");
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY UNKNOWN", ip, &port), 0);
        ck_assert_str_eq(ip, "");
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY TCP4 999.0.2.7 198.51.100.1 1 25", ip, &port), -EINVAL);
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY TCP4 192.0.2.7 198.51.100.1 70000 25", ip, &port), -EINVAL);
        ck_assert_int_eq(smtp_parse_proxy_v1("EHLO x", ip, &port), -EINVAL);
        /* Found by fuzzing: one space between fields, plain decimal ports,
         * nothing after the last one. */
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXYTCP4 192.0.2.1 198.51.1.2 51234 25", ip, &port), -EINVAL);
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY TCP4  192.0.2.1 198.51.1.2 51234 25", ip, &port), -EINVAL);
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY TCP4\t192.0.2.1 198.51.1.2 51234 25", ip, &port), -EINVAL);
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY TCP4 192.0.2.1 198.51.1.2 +5 25", ip, &port), -EINVAL);
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY TCP4 192.0.2.1 198.51.1.2 0025 25", ip, &port), -EINVAL);
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY TCP4 192.0.2.1 198.51.1.2 5 25 x", ip, &port), -EINVAL);
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY TCP4 192.0.2.1 198.51.1.2 5 25 ", ip, &port), -EINVAL);
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY UNKNOWNX", ip, &port), -EINVAL);
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY UNKNOWN ffff::1 ffff::2 1 2", ip, &port), 0);
        ck_assert_int_eq(smtp_parse_proxy_v1("PROXY TCP4 192.0.2.1 198.51.1.2 0 65535", ip, &port), 0);
        ck_assert_uint_eq(port, 0);
}
END_TEST

/* The validators need no I/O: a session that was never run will do. */
static struct smtp_session *validator_session(struct hw_config *cfg)
{
        static struct smtp_session s;

        memset(cfg, 0, sizeof(*cfg));
        cfg->max_message_bytes = 1000;
        cfg->max_recipients = 2;
        cfg->accept_all_recipients = true;
        memset(&s, 0, offsetof(struct smtp_session, io));
        s.cfg = cfg;
        envelope_init(&s.env, cfg->max_recipients);
        return &s;
}

START_TEST(test_validators)
{
        struct hw_config cfg;
        struct smtp_session *s = validator_session(&cfg);
        struct smtp_path p;
        char *domains[] = { "example.com", NULL };

        ck_assert_str_eq(smtp_check(s, CMD_MAIL, "<a@b.c>", &p)->text, "503 5.5.1 Send HELO or EHLO first");
        s->state = STATE_HELO;
        s->esmtp = true;
        ck_assert_ptr_null(smtp_check(s, CMD_MAIL, "<a@b.c>", &p));
        ck_assert_str_eq(smtp_check(s, CMD_MAIL, "<a@b.c> SIZE=1001", &p)->text,
                         "552 5.3.4 Message size exceeds fixed maximum message size");
        ck_assert_str_eq(smtp_check(s, CMD_RCPT, "<a@b.c>", &p)->text, "503 5.5.1 Need MAIL before RCPT");
        ck_assert_str_eq(smtp_check(s, CMD_DATA, "", &p)->text, "503 5.5.1 Need MAIL command");
        ck_assert_str_eq(smtp_check(s, CMD_BDAT, "5", &p)->text, "503 5.5.1 Need MAIL command");
        ck_assert_str_eq(smtp_check(s, CMD_MAIL, "<j\xc3\xb6rg@b.c>", &p)->text,
                         "553 5.6.7 Non-ASCII address without SMTPUTF8");
        s->state = STATE_MAIL;
        ck_assert_str_eq(smtp_check(s, CMD_MAIL, "<a@b.c>", &p)->text, "503 5.5.1 Nested MAIL command");
        ck_assert_str_eq(smtp_check(s, CMD_DATA, "", &p)->text, "503 5.5.1 Need RCPT command");
        ck_assert_str_eq(smtp_check(s, CMD_BDAT, "0 LAST", &p)->text, "503 5.5.1 Need RCPT command");
        ck_assert_ptr_null(smtp_check(s, CMD_RCPT, "<x@y.z>", &p));
        envelope_add_rcpt(&s->env, "x@y.z");
        envelope_add_rcpt(&s->env, "x2@y.z");
        ck_assert_str_eq(smtp_check(s, CMD_RCPT, "<x3@y.z>", &p)->text, "452 4.5.3 Too many recipients");
        s->env.rcpt_count = 0;
        cfg.accept_all_recipients = false;
        cfg.accepted_domains = domains;
        ck_assert_ptr_null(smtp_check(s, CMD_RCPT, "<x@EXAMPLE.com>", &p));
        ck_assert_str_eq(smtp_check(s, CMD_RCPT, "<x@example.net>", &p)->text,
                         "550 5.7.1 Relaying denied: recipient domain not accepted here");
        s->state = STATE_RCPT;
        ck_assert_ptr_null(smtp_check(s, CMD_DATA, "", &p));
        ck_assert_str_eq(smtp_check(s, CMD_DATA, "x", &p)->text, "501 5.5.4 No arguments allowed");
        ck_assert_ptr_null(smtp_check(s, CMD_BDAT, "5", &p));
        ck_assert_ptr_null(smtp_check(s, CMD_BDAT, "0 LAST", &p));
        ck_assert_str_eq(smtp_check(s, CMD_BDAT, "x", &p)->text,
                         "501 5.5.4 Syntax: BDAT <size> [LAST], closing connection");
        ck_assert_str_eq(smtp_check(s, CMD_BDAT, "18446744073709551616", &p)->text,
                         "501 5.5.4 Syntax: BDAT <size> [LAST], closing connection");
        /* Chunks under way: DATA and RCPT are out of sequence (RFC 3030 2). */
        s->bdat_open = true;
        ck_assert_str_eq(smtp_check(s, CMD_DATA, "", &p)->text,
                         "503 5.5.1 DATA not allowed after BDAT in the same transaction");
        ck_assert_str_eq(smtp_check(s, CMD_RCPT, "<x@example.com>", &p)->text,
                         "503 5.5.1 RCPT not allowed after BDAT in the same transaction");
        ck_assert_ptr_null(smtp_check(s, CMD_BDAT, "5 LAST", &p));
        s->bdat_open = false;
        /* BODY=BINARYMIME goes by BDAT only. */
        s->binarymime = true;
        ck_assert_str_eq(smtp_check(s, CMD_DATA, "", &p)->text, "503 5.5.1 BODY=BINARYMIME needs BDAT, not DATA");
        ck_assert_ptr_null(smtp_check(s, CMD_BDAT, "5 LAST", &p));
        s->binarymime = false;
        ck_assert_str_eq(smtp_check(s, CMD_STARTTLS, "", &p)->text, "502 5.5.1 STARTTLS not available");
        ck_assert_str_eq(smtp_check(s, CMD_HELO, "", &p)->text, "501 5.5.4 Syntax: HELO/EHLO hostname");
        /* Syntax errors count toward SMTP_MAX_BAD_COMMANDS; refusals by
         * state or policy do not. */
        ck_assert(smtp_check(s, CMD_HELO, "", &p)->bad_command);
        ck_assert(smtp_check(s, CMD_DATA, "x", &p)->bad_command);
        ck_assert(smtp_check(s, CMD_BDAT, "-1", &p)->bad_command);
        ck_assert(smtp_check(s, CMD_RCPT, "<x@", &p)->bad_command);
        ck_assert(!smtp_check(s, CMD_STARTTLS, "", &p)->bad_command);
        ck_assert(!smtp_check(s, CMD_RCPT, "<x@example.net>", &p)->bad_command);
        ck_assert(!smtp_check(s, CMD_MAIL, "<a@b.c>", &p)->bad_command);
        envelope_free(&s->env);
}
END_TEST

static unsigned tls_usable_calls;

static bool count_tls_usable(const struct hw_config *cfg, const struct spool *spool)
{
        tls_usable_calls++;
        return true;
}

static const struct smtp_hooks counting_hooks = { .tls_usable = count_tls_usable };

/* A transport over memory: the client's bytes from a string, the replies
 * into a buffer. */
struct memory_peer {
        const char *in;
        size_t in_len, in_pos;
        char out[8192];
        size_t out_len;
};

static ssize_t memory_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
        struct memory_peer *p = ctx;
        size_t n = p->in_len - p->in_pos < len ? p->in_len - p->in_pos : len;

        memcpy(buf, p->in + p->in_pos, n);
        p->in_pos += n;
        return (ssize_t)n;
}

static int memory_write(void *ctx, const void *buf, size_t len)
{
        struct memory_peer *p = ctx;

        if (len >= sizeof(p->out) - p->out_len)
                return -ENOSPC;
        memcpy(p->out + p->out_len, buf, len);
        p->out_len += len;
        return 0;
}

/* Runs a whole session with counting_hooks; peer->out holds the replies. */
static void run_dialogue(struct memory_peer *peer, const char *input)
{
        static struct smtp_session session;
        struct io_transport t = { memory_read, memory_write, peer };
        struct hw_config cfg;
        char err[256];

        memset(peer, 0, sizeof(*peer));
        peer->in = input;
        peer->in_len = strlen(input);
        setenv("SMTP_HOSTNAME", "mx.test", 1);
        ck_assert_int_eq(config_load(&cfg, err, sizeof(err)), 0);
        ck_assert_int_eq(smtp_session_init(&session, &cfg, NULL, &t, &counting_hooks), 0);
        ck_assert_int_eq(smtp_session_run(&session), 0);
        smtp_session_free(&session);
        config_free(&cfg);
}

/* Whether STARTTLS can work is asked once per session, before the first
 * command whose reply depends on it, and never by a session that has no
 * such command; the validators only read the answer. */
START_TEST(test_tls_verdict_asked_once)
{
        static struct memory_peer peer;

        tls_usable_calls = 0;
        run_dialogue(&peer, "HELO a.example\r\nNOOP\r\nQUIT\r\n");
        ck_assert_uint_eq(tls_usable_calls, 0);
        ck_assert_ptr_nonnull(strstr(peer.out, "\r\n221 2.0.0 mx.test closing connection\r\n"));

        run_dialogue(&peer, "STARTTLS\r\nEHLO a.example\r\nHELP\r\nSTARTTLS now\r\n"
                     "EHLO b.example\r\nQUIT\r\n");
        ck_assert_uint_eq(tls_usable_calls, 1);
        ck_assert_ptr_nonnull(strstr(peer.out, "\r\n503 5.5.1 Send HELO or EHLO first\r\n"));
        ck_assert_ptr_nonnull(strstr(peer.out, "\r\n250-STARTTLS\r\n"));
        ck_assert_ptr_nonnull(strstr(peer.out, "\r\n214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET "
                                     "NOOP QUIT VRFY HELP STARTTLS\r\n"));
        ck_assert_ptr_nonnull(strstr(peer.out, "\r\n501 5.5.4 No arguments allowed\r\n"));
}
END_TEST

/* The same message by DATA and by BDAT chunks: both end in the same commit. */
static const char *const fault_inputs[] = {
        "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n"
        "DATA\r\nSubject: t\r\n\r\nhello\r\n.\r\nQUIT\r\n",
        "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n"
        "BDAT 13\r\nSubject: t\r\n\r\nBDAT 7 LAST\r\nhello\r\nQUIT\r\n",
};

/* Runs one whole SMTP session in this process with the spool failing as
 * told; returns the server's output. */
static char *session_with_fault(const char *input, int fail, int error)
{
        static struct smtp_session session;
        struct hw_config cfg;
        struct spool s;
        struct io_plain fds;
        struct io_transport t;
        int in[2], out[2];
        char err[256];
        char *reply = calloc(1, 8192);
        ssize_t n, got = 0;

        unit_clear_env();
        setenv("SMTP_HOSTNAME", "mx.test", 1);
        setenv("SPOOL_MIN_FREE_BYTES", "0", 1);
        ck_assert_int_eq(config_load(&cfg, err, sizeof(err)), 0);
        unit_spool_setup(&s);
        s.io = &unit_faulty_io;
        unit_fail_at = fail;
        unit_fail_errno = error;
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
        ck_assert_int_eq(unit_count_entries("tmp"), 0);
        ck_assert_int_eq(unit_count_entries("pending"), fail == FAIL_NONE ? 1 : 0);
        smtp_session_free(&session);
        unit_spool_teardown(&s);
        config_free(&cfg);
        unit_fail_at = FAIL_NONE;
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

        for (size_t k = 0; k < sizeof(fault_inputs) / sizeof(fault_inputs[0]); k++) {
                for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                        char *reply = session_with_fault(fault_inputs[k], cases[i].fail, cases[i].error);

                        ck_assert_msg(strstr(reply, cases[i].reply), "input %zu case %zu: no '%s' in:\n%s",
                                      k, i, cases[i].reply, reply);
                        if (cases[i].fail != FAIL_NONE)
                                ck_assert_ptr_null(strstr(reply, "250 2.0.0 Ok: queued"));
                        ck_assert_ptr_nonnull(strstr(reply, "221 2.0.0"));
                        free(reply);
                }
        }
}
END_TEST

static Suite *smtp_suite(void)
{
        Suite *s = suite_create("smtp");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_command_parse);
        tcase_add_test(tc, test_path_parse);
        tcase_add_test(tc, test_bdat_parse);
        tcase_add_test(tc, test_address_utf8);
        tcase_add_test(tc, test_proxy_v1);
        suite_add_tcase(s, tc);

        tc = tcase_create("session");
        tcase_add_test(tc, test_validators);
        tcase_add_test(tc, test_tls_verdict_asked_once);
        tcase_add_test(tc, test_session_disk_faults);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(smtp_suite());
}
