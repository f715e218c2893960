/* Unit tests of receive/decision_request.c: the decision API's JSON without
 * HTTP (tests/decision/ drives the real module against a local server). */
#include "autoconfig.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "decision_request.h"
#include "unit.h"
#include "utf8.h"

#define FFFD "\xef\xbf\xbd"

static enum decision_outcome parse(long status, const char *body, char *reply, char *reason)
{
        strcpy(reply, "untouched");
        return decision_response_parse(status, body, strlen(body), reply, 512, reason, 256);
}

static void assert_sanitized(const char *in, size_t max, const char *want)
{
        char out[512];
        size_t n = decision_text_sanitize(in, strlen(in), out, max);

        ck_assert_str_eq(out, want);
        ck_assert_uint_eq(n, strlen(want));
}

/* ---- replies ---------------------------------------------------------- */

START_TEST(sanitize_text)
{
        char longer[400], want[201];

        assert_sanitized("Delivery rejected", 200, "Delivery rejected");
        assert_sanitized("  padded \t ", 200, "padded");
        /* A CR LF injection stays on the one reply line. */
        assert_sanitized("no\r\n250 2.0.0 Ok\r\nRSET", 200, "no 250 2.0.0 Ok RSET");
        assert_sanitized("a\x01\x02\x7f" "b\x1b[31m", 200, "a b [31m");
        /* One '?' per character, also for stray or invalid 8-bit bytes. */
        assert_sanitized("f\xc3\xbcr \xe2\x82\xac 5", 200, "f?r ? 5");
        assert_sanitized("\xf0\x9f\x98\x80!", 200, "?!");
        assert_sanitized("\xff\xfe x \x80", 200, "?? x ?");
        assert_sanitized("\r\n\t", 200, "");
        memset(longer, 'x', sizeof(longer) - 1);
        longer[sizeof(longer) - 1] = '\0';
        memset(want, 'x', 200);
        want[200] = '\0';
        assert_sanitized(longer, 200, want);
        /* Never a trailing space after the cut. */
        assert_sanitized("abcd efgh", 5, "abcd");
}
END_TEST

START_TEST(response_decisions)
{
        char reply[512], reason[256];

        ck_assert_int_eq(parse(200, "{\"decision\":\"allow\"}", reply, reason), DECISION_ALLOW);
        ck_assert_str_eq(reason, "decision allow");
        ck_assert_str_eq(reply, "untouched");

        ck_assert_int_eq(parse(200, "{\"decision\":\"deny\",\"reason\":\"blocked_sender\","
                                    "\"message\":\"Delivery rejected by recipient policy\"}", reply, reason),
                         DECISION_DENY);
        ck_assert_str_eq(reply, "550 5.7.1 Delivery rejected by recipient policy");
        ck_assert_str_eq(reason, "decision deny (reason: blocked_sender)");

        ck_assert_int_eq(parse(200, "{\"decision\":\"silent_deny\",\"reason\":\"shadow_block\","
                                    "\"message\":\"Internal\"}", reply, reason), DECISION_SILENT_DENY);
        ck_assert_str_eq(reason, "decision silent_deny (reason: shadow_block)");
        ck_assert_str_eq(reply, "untouched");
}
END_TEST

START_TEST(response_deny_text)
{
        char reply[512], reason[256];

        ck_assert_int_eq(parse(200, "{\"decision\":\"deny\"}", reply, reason), DECISION_DENY);
        ck_assert_str_eq(reply, "550 5.7.1 " DECISION_DENY_DEFAULT);
        ck_assert_int_eq(parse(200, "{\"decision\":\"deny\",\"message\":\"\"}", reply, reason), DECISION_DENY);
        ck_assert_str_eq(reply, "550 5.7.1 " DECISION_DENY_DEFAULT);
        ck_assert_int_eq(parse(200, "{\"decision\":\"deny\",\"message\":\"\\r\\n\"}", reply, reason), DECISION_DENY);
        ck_assert_str_eq(reply, "550 5.7.1 " DECISION_DENY_DEFAULT);
        ck_assert_int_eq(parse(200, "{\"decision\":\"deny\",\"message\":42}", reply, reason), DECISION_DENY);
        ck_assert_str_eq(reply, "550 5.7.1 " DECISION_DENY_DEFAULT);
        ck_assert_int_eq(parse(200, "{\"decision\":\"deny\",\"message\":\"no\\r\\n250 ok\\u0000x\","
                                    "\"reason\":\"r\\nX-Injected: 1\"}", reply, reason), DECISION_DENY);
        ck_assert_str_eq(reply, "550 5.7.1 no 250 ok x");
        ck_assert_str_eq(reason, "decision deny (reason: r X-Injected: 1)");
        ck_assert_int_eq(parse(200, "{\"decision\":\"deny\",\"message\":\"Zugriff f\\u00fcr dich verweigert\"}",
                               reply, reason), DECISION_DENY);
        ck_assert_str_eq(reply, "550 5.7.1 Zugriff f?r dich verweigert");
}
END_TEST

/* defer: a temporary refusal with the service's text, for a 450. */
START_TEST(response_defer)
{
        char reply[512], reason[256];

        ck_assert_int_eq(parse(200, "{\"decision\":\"defer\",\"reason\":\"greylist\","
                                    "\"message\":\"Greylisted,\\r\\n250 ok try in 5 min\"}", reply, reason),
                         DECISION_DEFER);
        ck_assert_str_eq(reply, "450 4.7.1 Greylisted, 250 ok try in 5 min");
        ck_assert_str_eq(reason, "decision defer (reason: greylist)");
        ck_assert_int_eq(parse(200, "{\"decision\":\"defer\"}", reply, reason), DECISION_DEFER);
        ck_assert_str_eq(reply, "450 4.7.1 " DECISION_DEFER_DEFAULT);
        ck_assert_str_eq(reason, "decision defer");
        /* Only the exact word; anything else stays a failure (451). */
        ck_assert_int_eq(parse(200, "{\"decision\":\"Defer\"}", reply, reason), DECISION_TEMPFAIL);
        ck_assert_int_eq(parse(200, "{\"decision\":\"tempfail\"}", reply, reason), DECISION_TEMPFAIL);
        ck_assert_int_eq(parse(503, "{\"decision\":\"defer\"}", reply, reason), DECISION_TEMPFAIL);
}
END_TEST

START_TEST(response_failures)
{
        char reply[512], reason[256], big[DECISION_RESPONSE_MAX + 2];

        ck_assert_int_eq(parse(500, "{\"decision\":\"allow\"}", reply, reason), DECISION_TEMPFAIL);
        ck_assert_str_eq(reason, "decision service answered HTTP 500");
        ck_assert_int_eq(parse(302, "", reply, reason), DECISION_TEMPFAIL);
        ck_assert_ptr_nonnull(strstr(reason, "redirects are not followed"));
        ck_assert_int_eq(parse(201, "{\"decision\":\"allow\"}", reply, reason), DECISION_TEMPFAIL);
        ck_assert_int_eq(parse(200, "<html>oops</html>", reply, reason), DECISION_TEMPFAIL);
        ck_assert_ptr_nonnull(strstr(reason, "invalid JSON"));
        ck_assert_int_eq(parse(200, "", reply, reason), DECISION_TEMPFAIL);
        ck_assert_int_eq(parse(200, "{\"decision\":\"allow\"", reply, reason), DECISION_TEMPFAIL);
        ck_assert_int_eq(parse(200, "[\"allow\"]", reply, reason), DECISION_TEMPFAIL);
        ck_assert_str_eq(reason, "decision response is not a JSON object");
        ck_assert_int_eq(parse(200, "{\"decision\":true}", reply, reason), DECISION_TEMPFAIL);
        ck_assert_int_eq(parse(200, "{}", reply, reason), DECISION_TEMPFAIL);
        ck_assert_int_eq(parse(200, "{\"decision\":\"Allow\"}", reply, reason), DECISION_TEMPFAIL);
        ck_assert_str_eq(reason, "unknown decision \"Allow\"");
        ck_assert_int_eq(parse(200, "{\"decision\":\"allow\\u0000\"}", reply, reason), DECISION_TEMPFAIL);
        ck_assert_int_eq(parse(200, "{\"decision\":\"maybe\\r\\nX\"}", reply, reason), DECISION_TEMPFAIL);
        ck_assert_str_eq(reason, "unknown decision \"maybe X\"");
        ck_assert_str_eq(reply, "untouched");
        /* The caller stops reading past the bound; a body at it is judged. */
        memset(big, ' ', sizeof(big));
        ck_assert_int_eq(decision_response_parse(200, big, DECISION_RESPONSE_MAX + 1, reply, 512, reason, 256),
                         DECISION_TEMPFAIL);
        ck_assert_ptr_nonnull(strstr(reason, "over"));
}
END_TEST

START_TEST(iso8601)
{
        char buf[32];

        decision_iso8601(1718532000123LL, buf);
        ck_assert_str_eq(buf, "2024-06-16T10:00:00.123Z");
        decision_iso8601(0, buf);
        ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
}
END_TEST

/* ---- the rawMime stream ----------------------------------------------- */

static int memfile(const void *data, size_t len)
{
        char path[] = "/tmp/check_decision.XXXXXX";
        int fd = mkstemp(path);

        ck_assert_int_ge(fd, 0);
        unlink(path);
        ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
        return fd;
}

/* The stream, read in pieces of piece bytes, as one string. */
static char *stream_all(struct decision_stream *st, size_t piece)
{
        size_t cap = 1 << 20, len = 0, n;
        char *out = malloc(cap);

        ck_assert_ptr_nonnull(out);
        for (;;) {
                ck_assert_int_eq(decision_stream_read(st, out + len, piece, &n), 0);
                if (n == 0)
                        break;
                len += n;
                ck_assert_uint_lt(len + piece, cap);
        }
        out[len] = '\0';
        return out;
}

/* Whatever the chunk size, the stream decodes (as a JSON string) to what
 * sanitizing the whole message at once gives. */
static void assert_stream(const char *data, size_t len, size_t offset)
{
        char *want = utf8_sanitize(data + offset, len - offset);
        int fd = memfile(data, len);

        ck_assert_ptr_nonnull(want);
        for (size_t chunk = 1; chunk <= 9; chunk++) {
                struct decision_stream st;
                uint64_t measured;
                char *text, *quoted;
                json_error_t error;
                json_t *j;

                ck_assert_int_eq(decision_stream_init(&st, fd, (off_t)offset, (off_t)len, chunk), 0);
                ck_assert_int_eq(decision_stream_length(&st, &measured), 0);
                text = stream_all(&st, chunk + 3);
                ck_assert_uint_eq(measured, strlen(text));
                ck_assert_int_ge(asprintf(&quoted, "\"%s\"", text), 0);
                j = json_loads(quoted, JSON_DECODE_ANY, &error);
                ck_assert_msg(j != NULL, "chunk %zu: %s in %s", chunk, error.text, quoted);
                ck_assert_str_eq(json_string_value(j), want);
                json_decref(j);
                /* A rewind (curl's seek) gives the same text again. */
                decision_stream_rewind(&st);
                free(text);
                text = stream_all(&st, 1000);
                ck_assert_uint_eq(measured, strlen(text));
                free(text);
                free(quoted);
                decision_stream_free(&st);
        }
        free(want);
        close(fd);
}

START_TEST(stream_utf8_repair)
{
        static const char mixed[] =
                "HEADERS\n\nSubject: \xc3\xa9t\xc3\xa9\r\n\"quoted\" \\ \t\x01\x1f\x7f\r\n"
                "\xe2\x82\xac\xf0\x9f\x98\x80 bad: \xff\xc0\xaf\xed\xa0\x80\xe2\x82 x\x80\xf4\x90\x80\x80"
                "\xe2\x82\x82\x82 end \xf0\x9f\x98";     /* cut short at EOF */

        assert_stream(mixed, sizeof(mixed) - 1, 0);
        assert_stream(mixed, sizeof(mixed) - 1, 9);
        assert_stream("", 0, 0);
        assert_stream("a\0b", 3, 0);
}
END_TEST

START_TEST(stream_random_bytes)
{
        char data[2000];
        unsigned seed = 12345;

        for (int round = 0; round < 6; round++) {
                for (size_t i = 0; i < sizeof(data); i++) {
                        seed = seed * 1103515245u + 12345u;
                        /* Mostly high bytes: many sequences, valid and not. */
                        data[i] = (char)((seed >> 16) % 5 == 0 ? 'a' + (seed >> 8) % 26 : 0x80 | (seed >> 20));
                }
                assert_stream(data, sizeof(data), (size_t)round);
        }
}
END_TEST

/* ---- the request ------------------------------------------------------ */

static const char stored[] =
        "hw-spool 1\nid X\n\n"
        "Received: from client.test ([192.0.2.7])\r\n\tby mx.test; Tue, 1 Jul 2025 10:00:00 +0000\r\n"
        "From: =?UTF-8?B?SsO2cmc=?= <jorg@example.net>\r\n"
        "Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= and\r\n more\r\n"
        "X-Raw: caf\xe9 8-bit\r\n"
        "\r\n"
        "Body \xff\xfe line\r\n";

static char *request_text(struct decision_request *req)
{
        char *text, *raw = NULL;

        if (req->has_stream) {
                uint64_t len;

                ck_assert_int_eq(decision_stream_length(&req->stream, &len), 0);
                raw = stream_all(&req->stream, 4096);
                ck_assert_uint_eq(len, strlen(raw));
        }
        ck_assert_int_ge(asprintf(&text, "%.*s%s%s", (int)req->head_len, req->head, raw ? raw : "",
                                  req->tail), 0);
        ck_assert_uint_eq(strlen(req->tail), req->tail_len);
        free(raw);
        return text;
}

static json_t *build(enum decision_mode mode, const struct envelope *env, int fd, off_t offset)
{
        struct decision_request req;
        json_error_t error;
        json_t *root;
        char *text;

        ck_assert_int_eq(decision_request_build(&req, mode, env, NULL, fd, offset), 0);
        text = request_text(&req);
        ck_assert(utf8_valid(text, strlen(text)));
        root = json_loads(text, 0, &error);
        ck_assert_msg(root != NULL, "%s: %s", error.text, text);
        ck_assert_str_eq(json_string_value(json_object_get(root, "protocol")), DECISION_PROTOCOL);
        free(text);
        decision_request_free(&req);
        return root;
}

static void fill_envelope(struct envelope *env, const char *ip)
{
        ck_assert_int_eq(envelope_init(env, 4), 0);
        snprintf(env->id, sizeof(env->id), "1718532000123456-0123456789abcdef");
        env->received_ms = 1718532000123LL;
        snprintf(env->remote_ip, sizeof(env->remote_ip), "%s", ip);
        snprintf(env->helo, sizeof(env->helo), "client.test");
        snprintf(env->sender, sizeof(env->sender), "alice@example.net");
        ck_assert_int_eq(envelope_add_rcpt(env, "bob@example.com"), 0);
        ck_assert_int_eq(envelope_add_rcpt(env, "carol@example.com"), 0);
}

#define STR(obj, key) json_string_value(json_object_get((obj), (key)))

START_TEST(request_minimal)
{
        struct envelope env;
        int fd = memfile(stored, sizeof(stored) - 1);
        json_t *root, *msg, *remote, *rcpt;

        fill_envelope(&env, "192.0.2.7");
        root = build(DECISION_MODE_MINIMAL, &env, fd, 17);
        ck_assert_str_eq(STR(root, "mode"), "minimal");
        ck_assert_str_eq(STR(root, "stage"), "data");
        msg = json_object_get(root, "message");
        ck_assert_str_eq(STR(msg, "id"), "1718532000123456-0123456789abcdef");
        ck_assert_str_eq(STR(msg, "createdAt"), "2024-06-16T10:00:00.123Z");
        ck_assert_str_eq(STR(msg, "sender"), "alice@example.net");
        rcpt = json_object_get(msg, "recipients");
        ck_assert_uint_eq(json_array_size(rcpt), 2);
        ck_assert_str_eq(json_string_value(json_array_get(rcpt, 1)), "carol@example.com");
        ck_assert_str_eq(STR(msg, "from"), "J\xc3\xb6rg <jorg@example.net>");
        ck_assert_str_eq(STR(msg, "subject"), "Gr\xc3\xbc\xc3\x9f" "e and more");
        remote = json_object_get(msg, "remote");
        ck_assert_str_eq(STR(remote, "ip"), "192.0.2.7");
        ck_assert_str_eq(STR(remote, "host"), "192.0.2.7");
        ck_assert_str_eq(STR(remote, "helo"), "client.test");
        ck_assert_ptr_null(json_object_get(msg, "headers"));
        ck_assert_ptr_null(json_object_get(msg, "rawMime"));
        json_decref(root);

        /* An unknown address is null, never a made-up name. */
        envelope_free(&env);
        fill_envelope(&env, "unknown");
        env.sender[0] = '\0';
        root = build(DECISION_MODE_MINIMAL, &env, fd, 17);
        remote = json_object_get(json_object_get(root, "message"), "remote");
        ck_assert(json_is_null(json_object_get(remote, "ip")));
        ck_assert(json_is_null(json_object_get(remote, "host")));
        ck_assert_str_eq(STR(json_object_get(root, "message"), "sender"), "");
        json_decref(root);
        envelope_free(&env);
        close(fd);
}
END_TEST

START_TEST(request_summary_and_full)
{
        static const char message_only[] = "Subject: hi\r\n\r\nno from\r\n";
        struct envelope env;
        int fd = memfile(stored, sizeof(stored) - 1);
        json_t *root, *msg, *headers, *pair;
        char *want;

        fill_envelope(&env, "2001:db8::7");
        root = build(DECISION_MODE_SUMMARY, &env, fd, 17);
        ck_assert_str_eq(STR(root, "mode"), "summary");
        msg = json_object_get(root, "message");
        ck_assert_str_eq(STR(json_object_get(msg, "remote"), "host"), "2001:db8::7");
        headers = json_object_get(msg, "headers");
        ck_assert_uint_eq(json_array_size(headers), 4);
        pair = json_array_get(headers, 0);
        ck_assert_str_eq(json_string_value(json_array_get(pair, 0)), "Received");
        ck_assert_str_eq(json_string_value(json_array_get(pair, 1)),
                         "from client.test ([192.0.2.7])\tby mx.test; Tue, 1 Jul 2025 10:00:00 +0000");
        pair = json_array_get(headers, 3);
        ck_assert_str_eq(json_string_value(json_array_get(pair, 0)), "X-Raw");
        ck_assert_str_eq(json_string_value(json_array_get(pair, 1)), "caf" FFFD " 8-bit");
        ck_assert_ptr_null(json_object_get(msg, "rawMime"));
        json_decref(root);

        root = build(DECISION_MODE_FULL, &env, fd, 17);
        ck_assert_str_eq(STR(root, "mode"), "full");
        msg = json_object_get(root, "message");
        ck_assert_uint_eq(json_array_size(json_object_get(msg, "headers")), 4);
        want = utf8_sanitize(stored + 17, sizeof(stored) - 1 - 17);
        ck_assert_str_eq(STR(msg, "rawMime"), want);
        ck_assert_ptr_nonnull(strstr(want, "Body " FFFD FFFD " line"));
        free(want);
        json_decref(root);
        close(fd);

        /* No From: is "", as the webhook sends it. */
        fd = memfile(message_only, sizeof(message_only) - 1);
        root = build(DECISION_MODE_FULL, &env, fd, 0);
        msg = json_object_get(root, "message");
        ck_assert_str_eq(STR(msg, "from"), "");
        ck_assert_str_eq(STR(msg, "subject"), "hi");
        ck_assert_str_eq(STR(msg, "rawMime"), message_only);
        json_decref(root);
        close(fd);
        envelope_free(&env);
}
END_TEST

/* At RCPT: the minimal shape with the one recipient asked about, the time
 * of the RCPT, no message. */
START_TEST(request_rcpt)
{
        struct envelope env;
        struct hw_module_recipient rcpt = { .env = &env, .addr = "dave@example.com",
                                            .asked_ms = 1718532000999LL, .timeout_ms = 1000 };
        struct decision_request req;
        char *text, longest[HW_ADDR_MAX + 2];
        json_t *root, *msg, *list;
        json_error_t error;
        const char *key;
        json_t *value;
        static const char *const keys[] = { "protocol", "stage", "mode", "message" };
        size_t i = 0;

        fill_envelope(&env, "192.0.2.7");
        ck_assert_int_eq(decision_request_build_rcpt(&req, &rcpt), 0);
        ck_assert(!req.has_stream);
        text = request_text(&req);
        root = json_loads(text, JSON_PRESERVE_ORDER, &error);
        ck_assert_msg(root != NULL, "%s: %s", error.text, text);
        json_object_foreach(root, key, value) {
                ck_assert_uint_lt(i, 4);
                ck_assert_str_eq(key, keys[i++]);
        }
        ck_assert_uint_eq(i, 4);
        ck_assert_str_eq(STR(root, "protocol"), DECISION_PROTOCOL);
        ck_assert_str_eq(STR(root, "stage"), "rcpt");
        ck_assert_str_eq(STR(root, "mode"), "minimal");
        msg = json_object_get(root, "message");
        ck_assert_str_eq(STR(msg, "id"), "1718532000123456-0123456789abcdef");
        ck_assert_str_eq(STR(msg, "createdAt"), "2024-06-16T10:00:00.999Z");
        ck_assert_str_eq(STR(msg, "sender"), "alice@example.net");
        list = json_object_get(msg, "recipients");
        ck_assert_uint_eq(json_array_size(list), 1);
        ck_assert_str_eq(json_string_value(json_array_get(list, 0)), "dave@example.com");
        ck_assert_str_eq(STR(msg, "from"), "");
        ck_assert_str_eq(STR(msg, "subject"), "");
        ck_assert_str_eq(STR(json_object_get(msg, "remote"), "helo"), "client.test");
        ck_assert_ptr_null(json_object_get(msg, "headers"));
        ck_assert_ptr_null(json_object_get(msg, "rawMime"));
        /* The session's envelope is only read. */
        ck_assert_uint_eq(env.rcpt_count, 2);
        ck_assert_str_eq(env.rcpt[0], "bob@example.com");
        json_decref(root);
        free(text);
        decision_request_free(&req);

        /* An address longer than a path can be is refused, not cut. */
        memset(longest, 'x', sizeof(longest) - 1);
        longest[sizeof(longest) - 1] = '\0';
        rcpt.addr = longest;
        ck_assert_int_eq(decision_request_build_rcpt(&req, &rcpt), -ENAMETOOLONG);
        decision_request_free(&req);
        envelope_free(&env);
}
END_TEST

static Suite *decision_suite(void)
{
        Suite *s = suite_create("decision");
        TCase *t = tcase_create("response");

        tcase_add_test(t, sanitize_text);
        tcase_add_test(t, response_decisions);
        tcase_add_test(t, response_deny_text);
        tcase_add_test(t, response_defer);
        tcase_add_test(t, response_failures);
        tcase_add_test(t, iso8601);
        suite_add_tcase(s, t);
        t = tcase_create("request");
        tcase_add_test(t, stream_utf8_repair);
        tcase_add_test(t, stream_random_bytes);
        tcase_add_test(t, request_minimal);
        tcase_add_test(t, request_summary_and_full);
        tcase_add_test(t, request_rcpt);
        suite_add_tcase(s, t);
        return s;
}

int main(void)
{
        return unit_run(decision_suite());
}
