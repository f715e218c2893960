/* hw-decision.so: the pre-accept decision API over HTTP (libcurl). The JSON
 * is decision_request.c's; this file only moves it. One easy handle lives
 * for the whole SMTP session, so later messages and recipients reuse the
 * connection. WEBHOOK_TIMEOUT_MS bounds the whole exchange, connect
 * included; at RCPT the session may give a request less. Nothing
 * here logs: the session logs the outcome with our reason once, and the
 * bearer token never goes into a reason. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "decision_request.h"
#include "http_policy.h"
#include "module_api.h"

struct decision_call {
        struct decision_request req;
        int part;                          /* 0 head, 1 stream, 2 tail, 3 done */
        size_t pos;                        /* within head or tail */
        int read_error;                    /* -errno from the stream */
        bool too_big;
        size_t body_len;
        char body[DECISION_RESPONSE_MAX];
};

static CURL *decision_easy;

static size_t decision_read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
        struct decision_call *c = userdata;
        size_t room = size * nitems, done = 0, n;
        int r;

        while (done < room && c->part < 3) {
                const char *src = c->part == 0 ? c->req.head : c->req.tail;
                size_t len = c->part == 0 ? c->req.head_len : c->req.tail_len;

                if (c->part == 1) {
                        if (!c->req.has_stream) {
                                c->part++;
                                continue;
                        }
                        r = decision_stream_read(&c->req.stream, buf + done, room - done, &n);
                        if (r < 0) {
                                c->read_error = r;
                                return CURL_READFUNC_ABORT;
                        }
                        if (n == 0)
                                c->part++;
                        done += n;
                        continue;
                }
                n = len - c->pos < room - done ? len - c->pos : room - done;
                memcpy(buf + done, src + c->pos, n);
                c->pos += n;
                done += n;
                if (c->pos == len) {
                        c->part++;
                        c->pos = 0;
                }
        }
        return done;
}

/* curl rewinds when it must send the body again (a reused connection that
 * the server had closed). */
static int decision_seek_cb(void *userdata, curl_off_t offset, int origin)
{
        struct decision_call *c = userdata;

        if (offset != 0 || origin != SEEK_SET)
                return CURL_SEEKFUNC_CANTSEEK;
        c->part = 0;
        c->pos = 0;
        if (c->req.has_stream)
                decision_stream_rewind(&c->req.stream);
        return CURL_SEEKFUNC_OK;
}

static size_t decision_write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct decision_call *c = userdata;
        size_t n = size * nmemb;

        if (n > sizeof(c->body) - c->body_len) {
                c->too_big = true;
                return 0;       /* ends the transfer: CURLE_WRITE_ERROR */
        }
        memcpy(c->body + c->body_len, data, n);
        c->body_len += n;
        return n;
}

/* Every option is checked, as http_policy_apply() does for the shared ones. */
#define decision_setopt(easy, opt, val) \
        (curl_easy_setopt((easy), (opt), (val)) == CURLE_OK ? 0 : -EINVAL)

static int decision_prepare(CURL *easy, const struct hw_config *cfg, struct decision_call *c,
                            uint64_t body_len, uint64_t timeout_ms, struct curl_slist *headers,
                            char *errbuf)
{
        long timeout = (long)timeout_ms;       /* config caps it at a day */
        const char *refused;
        int r = 0;

        r |= decision_setopt(easy, CURLOPT_URL, cfg->decision_url);
        r |= decision_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        if (c->req.has_stream || c->req.tail_len) {
                r |= decision_setopt(easy, CURLOPT_READFUNCTION, decision_read_cb);
                r |= decision_setopt(easy, CURLOPT_READDATA, c);
                r |= decision_setopt(easy, CURLOPT_SEEKFUNCTION, decision_seek_cb);
                r |= decision_setopt(easy, CURLOPT_SEEKDATA, c);
        } else {
                /* A body in one piece (every request but full mode's) goes
                 * out in the headers' packet: one send and one wake-up of
                 * the service per request instead of two, which each RCPT
                 * decision pays. */
                r |= decision_setopt(easy, CURLOPT_POSTFIELDS, c->req.head);
        }
        r |= decision_setopt(easy, CURLOPT_WRITEFUNCTION, decision_write_cb);
        r |= decision_setopt(easy, CURLOPT_WRITEDATA, c);
        r |= decision_setopt(easy, CURLOPT_HTTPHEADER, headers);
        r |= decision_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
        r |= http_policy_apply(easy, timeout, "hw-receive/" PACKAGE_VERSION, cfg->webhook_ca_file, &refused);
        return r;
}

/* Content-Type, Accept, no "Expect: 100-continue" (it would cost a round
 * trip, or a second with servers that ignore it), and the bearer token. */
static struct curl_slist *decision_headers(const struct hw_config *cfg)
{
        char auth[HW_SECRET_MAX + 32];
        struct curl_slist *list = NULL, *next;
        const char *lines[] = { "Content-Type: application/json", "Accept: application/json",
                                "Expect:", cfg->decision_token[0] ? auth : NULL };

        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg->decision_token);
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]) && lines[i]; i++) {
                next = curl_slist_append(list, lines[i]);
                if (!next) {
                        curl_slist_free_all(list);
                        list = NULL;
                        break;
                }
                list = next;
        }
        explicit_bzero(auth, sizeof(auth));
        return list;
}

static bool decision_token_ok(const char *token)
{
        /* A CR or LF would let the token add header lines of its own. */
        for (const unsigned char *p = (const unsigned char *)token; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

static int decision_init(char *reason, size_t reason_size)
{
        static bool global_done;

        if (!global_done) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                        snprintf(reason, reason_size, "decision: libcurl initialization failed");
                        return -ENOMEM;
                }
                global_done = true;
        }
        if (!decision_easy)
                decision_easy = curl_easy_init();
        else
                curl_easy_reset(decision_easy);     /* keeps the connection cache */
        if (!decision_easy) {
                snprintf(reason, reason_size, "decision: cannot create a libcurl handle");
                return -ENOMEM;
        }
        return 0;
}

static enum decision_outcome decision_transfer(const struct hw_config *cfg, struct decision_call *c,
                                               uint64_t body_len, uint64_t timeout_ms,
                                               char *reply, size_t reply_size,
                                               char *reason, size_t reason_size)
{
        char errbuf[CURL_ERROR_SIZE] = "", why[DECISION_TEXT_MAX + 1];
        struct curl_slist *headers;
        CURLcode code;
        long status = 0;

        if (decision_init(reason, reason_size) < 0)
                return DECISION_TEMPFAIL;
        headers = decision_headers(cfg);
        if (!headers) {
                snprintf(reason, reason_size, "decision: out of memory");
                return DECISION_TEMPFAIL;
        }
        if (decision_prepare(decision_easy, cfg, c, body_len, timeout_ms, headers, errbuf) < 0) {
                curl_slist_free_all(headers);
                snprintf(reason, reason_size, "decision: libcurl refused an option");
                return DECISION_TEMPFAIL;
        }
        code = curl_easy_perform(decision_easy);
        /* The list holds the token: gone before anything else happens. */
        curl_easy_setopt(decision_easy, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(decision_easy, CURLOPT_ERRORBUFFER, NULL);
        curl_slist_free_all(headers);
        if (code == CURLE_OK) {
                curl_easy_getinfo(decision_easy, CURLINFO_RESPONSE_CODE, &status);
                return decision_response_parse(status, c->body, c->body_len, reply, reply_size,
                                               reason, reason_size);
        }
        if (c->too_big)
                snprintf(reason, reason_size, "decision response over %d bytes", DECISION_RESPONSE_MAX);
        else if (c->read_error < 0)
                snprintf(reason, reason_size, "decision: cannot read the message: %s", strerror(-c->read_error));
        else if (code == CURLE_OPERATION_TIMEDOUT)
                snprintf(reason, reason_size, "decision service gave no answer within %llu ms",
                         (unsigned long long)timeout_ms);
        else {
                const char *text = errbuf[0] ? errbuf : curl_easy_strerror(code);

                decision_text_sanitize(text, strlen(text), why, DECISION_TEXT_MAX);
                snprintf(reason, reason_size, "decision service unreachable: %s", why);
        }
        return DECISION_TEMPFAIL;
}

/* A new call, or NULL with the reason why no request can be made. */
static struct decision_call *decision_call_new(const struct hw_config *cfg, char *reason, size_t reason_size)
{
        struct decision_call *c;

        if (!cfg->decision_url[0]) {
                snprintf(reason, reason_size, "decision: no WEBHOOK_DECISION_URL");
                return NULL;
        }
        if (!decision_token_ok(cfg->decision_token)) {
                snprintf(reason, reason_size, "decision: WEBHOOK_DECISION_TOKEN holds control characters");
                return NULL;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                snprintf(reason, reason_size, "decision: out of memory");
        return c;
}

static enum decision_outcome decision_decide(const struct hw_config *cfg, const struct hw_module_message *msg,
                                             char *reply, size_t reply_size,
                                             char *reason, size_t reason_size)
{
        struct decision_call *c = decision_call_new(cfg, reason, reason_size);
        enum decision_outcome outcome;
        uint64_t body_len;
        int r;

        if (!c)
                return DECISION_TEMPFAIL;
        r = decision_request_build(&c->req, cfg->decision_mode, msg->env, msg->auth, msg->fd, msg->offset);
        body_len = c->req.head_len + c->req.tail_len;
        if (r >= 0 && c->req.has_stream) {
                uint64_t raw_len;

                r = decision_stream_length(&c->req.stream, &raw_len);
                body_len += raw_len;
        }
        if (r < 0) {
                snprintf(reason, reason_size, "decision: cannot build the request: %s", strerror(-r));
                outcome = DECISION_TEMPFAIL;
        } else {
                outcome = decision_transfer(cfg, c, body_len, cfg->timeout_ms, reply, reply_size,
                                            reason, reason_size);
        }
        decision_request_free(&c->req);
        free(c);
        return outcome;
}

static enum decision_outcome decision_decide_rcpt(const struct hw_config *cfg,
                                                  const struct hw_module_recipient *rcpt,
                                                  char *reply, size_t reply_size,
                                                  char *reason, size_t reason_size)
{
        struct decision_call *c = decision_call_new(cfg, reason, reason_size);
        enum decision_outcome outcome;
        int r;

        if (!c)
                return DECISION_TEMPFAIL;
        r = decision_request_build_rcpt(&c->req, rcpt);
        if (r < 0) {
                snprintf(reason, reason_size, "decision: cannot build the request: %s", strerror(-r));
                outcome = DECISION_TEMPFAIL;
        } else {
                outcome = decision_transfer(cfg, c, c->req.head_len, rcpt->timeout_ms, reply, reply_size,
                                            reason, reason_size);
        }
        decision_request_free(&c->req);
        free(c);
        return outcome;
}

/* The one symbol hw-receive looks up (module_api.h). */
extern const struct hw_decision_module hw_decision_module;
const struct hw_decision_module hw_decision_module = {
        .module = { .abi = HW_MODULE_ABI, .check = NULL },
        .decide = decision_decide,
        .decide_rcpt = decision_decide_rcpt,
};
