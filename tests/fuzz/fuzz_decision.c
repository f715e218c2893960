/* libFuzzer target: decision_response_parse on the body of a 200 answer
 * from the decision service, and decision_text_sanitize on raw bytes.
 *
 * Checked beyond "no crash": the outcome is the one jansson's own reading
 * of the body implies (an object whose "decision" string is exactly allow,
 * deny, silent_deny or defer; anything else is a temporary failure); reason
 * (and for deny the 550 reply, for defer the 450 one) is one line of printable ASCII that fits its
 * buffer; sanitized text is printable ASCII, at most max characters, with
 * no leading, trailing or doubled space. The reply and reason buffers are
 * malloc'd to the sizes hw-receive uses, so ASan sees a write past them. */
#include <string.h>

#include <jansson.h>

#include "decision_request.h"
#include "fuzz.h"

#define FUZZ_REPLY_SIZE 512     /* as smtp.c passes them */
#define FUZZ_REASON_SIZE 256

static enum decision_outcome fuzz_expected(const char *body, size_t len)
{
        static const struct {
                const char *word;
                enum decision_outcome outcome;
        } words[] = {
                { "allow", DECISION_ALLOW },
                { "deny", DECISION_DENY },
                { "silent_deny", DECISION_SILENT_DENY },
                { "defer", DECISION_DEFER },
        };
        enum decision_outcome outcome = DECISION_TEMPFAIL;
        json_t *root, *d;

        if (len > DECISION_RESPONSE_MAX)
                return DECISION_TEMPFAIL;
        root = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
        d = json_object_get(root, "decision");

        if (json_is_object(root) && json_is_string(d))
                for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                        if (json_string_length(d) == strlen(words[i].word) &&
                            memcmp(json_string_value(d), words[i].word, strlen(words[i].word)) == 0)
                                outcome = words[i].outcome;
        json_decref(root);
        return outcome;
}

static void fuzz_line(const char *s, size_t size)
{
        FUZZ_CHECK(memchr(s, '\0', size) != NULL);
        for (; *s; s++)
                FUZZ_CHECK(*s >= 0x20 && *s < 0x7f);
}

static void fuzz_sanitize(const char *s, size_t len, size_t max)
{
        char *out = malloc(max + 1);
        size_t n;

        FUZZ_CHECK(out);
        n = decision_text_sanitize(s, len, out, max);
        FUZZ_CHECK(n <= max && strlen(out) == n);
        fuzz_line(out, max + 1);
        if (n > 0)
                FUZZ_CHECK(out[0] != ' ' && out[n - 1] != ' ');
        FUZZ_CHECK(!strstr(out, "  "));
        free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *body = (const char *)data;
        char *reply = malloc(FUZZ_REPLY_SIZE);
        char *reason = malloc(FUZZ_REASON_SIZE);
        enum decision_outcome outcome;

        FUZZ_CHECK(reply && reason);
        reply[0] = '\0';
        outcome = decision_response_parse(200, body, size, reply, FUZZ_REPLY_SIZE,
                                          reason, FUZZ_REASON_SIZE);
        FUZZ_CHECK(outcome == fuzz_expected(body, size));
        fuzz_line(reason, FUZZ_REASON_SIZE);
        FUZZ_CHECK(reason[0] != '\0');
        if (outcome == DECISION_DENY) {
                fuzz_line(reply, FUZZ_REPLY_SIZE);
                FUZZ_CHECK(strncmp(reply, "550 5.7.1 ", 10) == 0 && reply[10] != '\0');
                FUZZ_CHECK(strlen(reply) <= 10 + DECISION_TEXT_MAX);
        }
        if (outcome == DECISION_DEFER) {
                fuzz_line(reply, FUZZ_REPLY_SIZE);
                FUZZ_CHECK(strncmp(reply, "450 4.7.1 ", 10) == 0 && reply[10] != '\0');
                FUZZ_CHECK(strlen(reply) <= 10 + DECISION_TEXT_MAX);
        }
        /* Not 200: a temporary failure whatever the body says. */
        FUZZ_CHECK(decision_response_parse(503, body, size, reply, FUZZ_REPLY_SIZE,
                                           reason, FUZZ_REASON_SIZE) == DECISION_TEMPFAIL);

        fuzz_sanitize(body, size, DECISION_TEXT_MAX);
        fuzz_sanitize(body, size, 1);
        free(reason);
        free(reply);
        return 0;
}
