/*
 * The decision API's JSON (haraka-webhook.decision.v1, seeds/DecisionProtocol.md).
 *
 * Request, POST application/json, keys in this order:
 *
 *   {"protocol":"haraka-webhook.decision.v1","stage":"data","mode":"minimal|summary|full",
 *    "message":{"id":QUEUE-ID,"createdAt":"2026-06-16T10:00:00.000Z",
 *               "sender":"a@b" ("" for <>),"recipients":["c@d",...],
 *               "from":DECODED,"subject":DECODED,
 *               "remote":{"ip":IP,"host":IP,"helo":HELO},
 *               "headers":[[name,value],...]      (summary, full)
 *               "auth":{"spf":...,"dkim":[...],"dmarc":...}
 *                                     (summary, full; with AUTH_CHECKS, lib/json.h)
 *               "rawMime":"..."}}                 (full)
 *
 * from and subject are what the webhook sends: unfolded, RFC 2047 decoded to
 * UTF-8, "" when the header is missing. We do no reverse DNS (the unit has
 * no network but its socket, and a lookup would slow every message), so
 * remote.host repeats the IP; ip and host are null when the address is not
 * known. Every string is valid UTF-8: bad bytes become U+FFFD. A header
 * section over HEADER_BYTES_MAX is sent as from "", subject "", headers [],
 * as the webhook does.
 *
 * At RCPT time (WEBHOOK_DECISION_STAGES with rcpt) the request has "stage"
 * "rcpt" and always the minimal shape, since no message exists yet: id is
 * the queue id the message will have, createdAt the time of the RCPT,
 * recipients holds the one recipient asked about (so a service that judges
 * the recipients of a message judges that one), from and subject are "".
 * Services that ignore "stage" keep working at either stage.
 *
 * rawMime is the stored message (our Received: first) and is the one part
 * that grows with the message, so it is never held whole: the body is a
 * head, the message streamed from the spool file, and a tail, and its
 * length is measured by a first pass so the POST has a Content-Length.
 *
 * Response: 200 and a JSON object whose "decision" is allow, deny,
 * silent_deny or defer (a temporary refusal, 450); "reason" (for the log)
 * and "message" (the reply's text, deny and defer only) are optional.
 * Anything else is a temporary failure.
 */
#include "autoconfig.h"

#include "decision_request.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "header.h"
#include "json.h"
#include "rfc2047.h"
#include "utf8.h"

/* Stream ------------------------------------------------------------------ */

int decision_stream_init(struct decision_stream *st, int fd, off_t start, off_t end, size_t chunk)
{
        memset(st, 0, sizeof(*st));
        st->fd = fd;
        st->start = st->pos = start;
        st->end = end < start ? start : end;
        st->chunk = chunk ? chunk : DECISION_CHUNK;
        st->in = malloc(st->chunk + sizeof(st->carry));
        /* One input byte escapes to at most 6 ("\u0001"); a replaced byte
         * becomes 3 (U+FFFD), unescaped. */
        st->out = malloc(6 * (st->chunk + sizeof(st->carry)));
        if (!st->in || !st->out) {
                decision_stream_free(st);
                return -ENOMEM;
        }
        return 0;
}

void decision_stream_rewind(struct decision_stream *st)
{
        st->pos = st->start;
        st->carry_len = 0;
        st->out_len = st->out_pos = 0;
}

void decision_stream_free(struct decision_stream *st)
{
        free(st->in);
        free(st->out);
        st->in = NULL;
        st->out = NULL;
}

static size_t decision_json_escape(const char *s, char *out)
{
        static const char hex[] = "0123456789abcdef";
        char *o = out;

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                switch (c) {
                case '"':  *o++ = '\\'; *o++ = '"'; break;
                case '\\': *o++ = '\\'; *o++ = '\\'; break;
                case '\n': *o++ = '\\'; *o++ = 'n'; break;
                case '\r': *o++ = '\\'; *o++ = 'r'; break;
                case '\t': *o++ = '\\'; *o++ = 't'; break;
                default:
                        if (c < 0x20) {
                                memcpy(o, "\\u00", 4);
                                o[4] = hex[c >> 4];
                                o[5] = hex[c & 15];
                                o += 6;
                        } else {
                                *o++ = (char)c;
                        }
                }
        }
        return (size_t)(o - out);
}

/* Reads the next chunk and escapes it into out. A chunk is cut before a
 * lead byte in its last three bytes: a UTF-8 sequence never spans two
 * sanitize calls, and cutting before a non-continuation byte gives the
 * same replacements as sanitizing the whole message at once. */
static int decision_stream_fill(struct decision_stream *st)
{
        size_t total, cut, want;
        ssize_t got;
        char *clean;

        memcpy(st->in, st->carry, st->carry_len);
        want = (uint64_t)(st->end - st->pos) < st->chunk ? (size_t)(st->end - st->pos) : st->chunk;
        do
                got = pread(st->fd, st->in + st->carry_len, want, st->pos);
        while (got < 0 && errno == EINTR);
        if (got < 0)
                return -errno;
        if (got == 0 && want > 0)
                return -EIO;    /* the spool file shrank under us */
        st->pos += got;
        total = st->carry_len + (size_t)got;
        cut = total;
        if (st->pos < st->end) {
                for (size_t i = total; i > 0 && i + 3 > total; i--) {
                        unsigned char c = st->in[i - 1];

                        if (c < 0x80)
                                break;
                        if (c >= 0xc0) {
                                cut = i - 1;
                                break;
                        }
                }
        }
        st->carry_len = total - cut;
        memcpy(st->carry, st->in + cut, st->carry_len);
        clean = utf8_sanitize((const char *)st->in, cut);
        if (!clean)
                return -ENOMEM;
        st->out_len = decision_json_escape(clean, st->out);
        st->out_pos = 0;
        free(clean);
        return 0;
}

int decision_stream_read(struct decision_stream *st, char *buf, size_t size, size_t *n)
{
        size_t take;
        int r;

        *n = 0;
        while (st->out_pos == st->out_len) {
                if (st->pos >= st->end && st->carry_len == 0)
                        return 0;
                r = decision_stream_fill(st);
                if (r < 0)
                        return r;
        }
        take = st->out_len - st->out_pos;
        if (take > size)
                take = size;
        memcpy(buf, st->out + st->out_pos, take);
        st->out_pos += take;
        *n = take;
        return 0;
}

int decision_stream_length(struct decision_stream *st, uint64_t *len)
{
        int r = 0;

        decision_stream_rewind(st);
        *len = 0;
        while (st->pos < st->end || st->carry_len) {
                r = decision_stream_fill(st);
                if (r < 0)
                        break;
                *len += st->out_len;
        }
        decision_stream_rewind(st);
        return r;
}

/* Request ----------------------------------------------------------------- */

void decision_iso8601(int64_t ms, char buf[32])
{
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;

        size_t len;

        if (ms < 0 || !gmtime_r(&sec, &tm) ||
            (len = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm)) == 0 || len > 19) {
                snprintf(buf, 32, "1970-01-01T00:00:00.000Z");
                return;
        }
        snprintf(buf + len, 32 - len, ".%03dZ", (int)(ms % 1000));
}

/* A JSON string of a C string's raw bytes, sanitized to UTF-8. */
static json_t *decision_json_bytes(const char *s)
{
        return hwjson_from_bytes(s, strlen(s));
}

/* Steals value (even on failure, as json_object_set_new does). */
static int decision_set(json_t *obj, const char *key, json_t *value)
{
        if (!value)
                return -ENOMEM;
        return json_object_set_new_nocheck(obj, key, value) == 0 ? 0 : -ENOMEM;
}

static json_t *decision_header_text(const struct header_list *h, const char *name)
{
        const struct header_field *f = header_find(h, name);
        char *text;
        json_t *j;

        if (!f)
                return json_string("");
        text = rfc2047_decode(f->value);
        if (!text)
                return NULL;
        /* rfc2047_decode returns sanitized UTF-8 without NUL bytes. */
        j = json_string_nocheck(text);
        free(text);
        return j;
}

static bool decision_ip_known(const char *ip)
{
        unsigned char addr[sizeof(struct in6_addr)];
        char plain[HW_IP_MAX];
        size_t len = strcspn(ip, "%");      /* an IPv6 zone is no part of the address */

        if (len >= sizeof(plain))
                return false;
        memcpy(plain, ip, len);
        plain[len] = '\0';
        return inet_pton(AF_INET, plain, addr) == 1 || inet_pton(AF_INET6, plain, addr) == 1;
}

static json_t *decision_message_object(enum decision_mode mode, const struct envelope *env,
                                       const struct auth_verdict *auth, const struct header_list *h)
{
        json_t *msg = json_object(), *rcpt = json_array(), *remote = json_object();
        bool ip_known = decision_ip_known(env->remote_ip);
        char created[32];
        int r = msg && rcpt && remote ? 0 : -ENOMEM;

        decision_iso8601(env->received_ms, created);
        for (size_t i = 0; r >= 0 && i < env->rcpt_count; i++) {
                json_t *addr = decision_json_bytes(env->rcpt[i]);

                r = addr && json_array_append_new(rcpt, addr) == 0 ? 0 : -ENOMEM;
        }
        if (r >= 0) r = decision_set(remote, "ip", ip_known ? decision_json_bytes(env->remote_ip) : json_null());
        if (r >= 0) r = decision_set(remote, "host", ip_known ? decision_json_bytes(env->remote_ip) : json_null());
        if (r >= 0) r = decision_set(remote, "helo", decision_json_bytes(env->helo));
        if (r >= 0) r = decision_set(msg, "id", decision_json_bytes(env->id));
        if (r >= 0) r = decision_set(msg, "createdAt", json_string(created));
        if (r >= 0) r = decision_set(msg, "sender", decision_json_bytes(env->sender));
        if (r >= 0) r = decision_set(msg, "recipients", json_incref(rcpt));
        if (r >= 0) r = decision_set(msg, "from", decision_header_text(h, "From"));
        if (r >= 0) r = decision_set(msg, "subject", decision_header_text(h, "Subject"));
        if (r >= 0) r = decision_set(msg, "remote", json_incref(remote));
        if (r >= 0 && mode != DECISION_MODE_MINIMAL)
                r = decision_set(msg, "headers", hwjson_headers_array(h));
        if (r >= 0 && mode != DECISION_MODE_MINIMAL && auth && auth->checked)
                r = decision_set(msg, "auth", hwjson_auth(auth));
        json_decref(rcpt);
        json_decref(remote);
        if (r < 0) {
                json_decref(msg);
                return NULL;
        }
        return msg;
}

static const char *decision_mode_name(enum decision_mode mode)
{
        switch (mode) {
        case DECISION_MODE_SUMMARY: return "summary";
        case DECISION_MODE_FULL: return "full";
        case DECISION_MODE_MINIMAL: break;
        }
        return "minimal";
}

int decision_request_build(struct decision_request *req, enum decision_mode mode,
                           const struct envelope *env, const struct auth_verdict *auth,
                           int fd, off_t message_offset)
{
        struct header_list h;
        struct stat st;
        json_t *msg;
        char *text;
        size_t text_len;
        int r;

        memset(req, 0, sizeof(*req));
        req->tail = "";
        r = header_read(fd, message_offset, 0, &h);
        if (r == -E2BIG)
                memset(&h, 0, sizeof(h));
        else if (r < 0)
                return r;
        msg = decision_message_object(mode, env, auth, &h);
        header_list_free(&h);
        if (!msg)
                return -ENOMEM;
        text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(msg);
        if (!text)
                return -ENOMEM;
        text_len = strlen(text);
        /* The message object is spliced in: in full mode without its
         * closing brace, which the tail brings after rawMime. */
        if (mode == DECISION_MODE_FULL)
                text_len--;
        r = asprintf(&req->head, "{\"protocol\":\"" DECISION_PROTOCOL "\",\"stage\":\"data\","
                     "\"mode\":\"%s\",\"message\":%.*s%s", decision_mode_name(mode), (int)text_len, text,
                     mode == DECISION_MODE_FULL ? ",\"rawMime\":\"" : "}");
        free(text);
        if (r < 0) {
                req->head = NULL;
                return -ENOMEM;
        }
        req->head_len = (size_t)r;
        if (mode == DECISION_MODE_FULL) {
                if (fstat(fd, &st) < 0) {
                        r = -errno;
                        decision_request_free(req);
                        return r;
                }
                r = decision_stream_init(&req->stream, fd, message_offset, st.st_size, 0);
                if (r < 0) {
                        decision_request_free(req);
                        return r;
                }
                req->has_stream = true;
                req->tail = "\"}}";
        }
        req->tail_len = strlen(req->tail);
        return 0;
}

int decision_request_build_rcpt(struct decision_request *req, const struct hw_module_recipient *rcpt)
{
        /* The transaction as it would be with this recipient alone. */
        struct envelope view = *rcpt->env;
        char one[1][HW_ADDR_MAX + 1];
        struct header_list none = { 0 };
        json_t *msg;
        char *text;
        int r;

        memset(req, 0, sizeof(*req));
        req->tail = "";
        if (strlen(rcpt->addr) >= sizeof(one[0]))
                return -ENAMETOOLONG;
        strcpy(one[0], rcpt->addr);
        view.rcpt = one;
        view.rcpt_count = 1;
        view.received_ms = rcpt->asked_ms;
        msg = decision_message_object(DECISION_MODE_MINIMAL, &view, NULL, &none);
        if (!msg)
                return -ENOMEM;
        text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(msg);
        if (!text)
                return -ENOMEM;
        r = asprintf(&req->head, "{\"protocol\":\"" DECISION_PROTOCOL "\",\"stage\":\"rcpt\","
                     "\"mode\":\"minimal\",\"message\":%s}", text);
        free(text);
        if (r < 0) {
                req->head = NULL;
                return -ENOMEM;
        }
        req->head_len = (size_t)r;
        req->tail_len = 0;
        return 0;
}

void decision_request_free(struct decision_request *req)
{
        free(req->head);
        if (req->has_stream)
                decision_stream_free(&req->stream);
        memset(req, 0, sizeof(*req));
        req->tail = "";
}

/* Response ---------------------------------------------------------------- */

size_t decision_text_sanitize(const char *s, size_t len, char *out, size_t max)
{
        bool space = false, prev_high = false;
        size_t o = 0;

        for (size_t i = 0; i < len && o < max; i++) {
                unsigned char c = (unsigned char)s[i];
                char keep;

                if (c <= ' ' || c == 0x7f) {
                        space = true;
                        prev_high = false;
                        continue;
                }
                if (c >= 0x80) {
                        /* One '?' per character: continuation bytes of a
                         * sequence already counted add nothing. */
                        bool continuation = c < 0xc0 && prev_high;

                        prev_high = true;
                        if (continuation)
                                continue;
                        keep = '?';
                } else {
                        prev_high = false;
                        keep = (char)c;
                }
                if (space && o > 0) {
                        if (o + 2 > max)
                                break;
                        out[o++] = ' ';
                }
                space = false;
                out[o++] = keep;
        }
        out[o] = '\0';
        return o;
}

/* A string member sanitized into buf (max characters); false when absent,
 * not a string, or empty after sanitizing. */
static bool decision_member_text(json_t *root, const char *key, char *buf, size_t max)
{
        json_t *v = json_object_get(root, key);

        buf[0] = '\0';
        if (!json_is_string(v))
                return false;
        return decision_text_sanitize(json_string_value(v), json_string_length(v), buf, max) > 0;
}

enum decision_outcome decision_response_parse(long status, const char *body, size_t body_len,
                                              char *reply, size_t reply_size,
                                              char *reason, size_t reason_size)
{
        char text[DECISION_TEXT_MAX + 1], why[DECISION_TEXT_MAX + 1], word[41];
        enum decision_outcome outcome = DECISION_TEMPFAIL;
        json_error_t error;
        json_t *root, *decision;
        const char *d;

        if (status != 200) {
                snprintf(reason, reason_size, "decision service answered HTTP %ld%s", status,
                         status >= 300 && status < 400 ? " (redirects are not followed)" : "");
                return DECISION_TEMPFAIL;
        }
        if (body_len > DECISION_RESPONSE_MAX) {
                snprintf(reason, reason_size, "decision response over %d bytes", DECISION_RESPONSE_MAX);
                return DECISION_TEMPFAIL;
        }
        /* NUL inside strings is allowed: lengths are used, never strlen. */
        root = json_loadb(body, body_len, JSON_ALLOW_NUL, &error);
        if (!root) {
                decision_text_sanitize(error.text, strlen(error.text), why, 80);
                snprintf(reason, reason_size, "invalid JSON from the decision service: %s", why);
                return DECISION_TEMPFAIL;
        }
        decision = json_object_get(root, "decision");
        if (!json_is_object(root)) {
                snprintf(reason, reason_size, "decision response is not a JSON object");
                goto out;
        }
        if (!json_is_string(decision)) {
                snprintf(reason, reason_size, "decision response has no \"decision\" string");
                goto out;
        }
        d = json_string_value(decision);
        if (strlen(d) != json_string_length(decision)) {
                d = "";     /* a NUL inside: not one of ours */
        }
        if (strcmp(d, "allow") == 0)
                outcome = DECISION_ALLOW;
        else if (strcmp(d, "deny") == 0)
                outcome = DECISION_DENY;
        else if (strcmp(d, "silent_deny") == 0)
                outcome = DECISION_SILENT_DENY;
        else if (strcmp(d, "defer") == 0)
                outcome = DECISION_DEFER;
        else {
                decision_text_sanitize(json_string_value(decision), json_string_length(decision),
                                       word, sizeof(word) - 1);
                snprintf(reason, reason_size, "unknown decision \"%s\"", word);
                goto out;
        }
        if (decision_member_text(root, "reason", why, DECISION_TEXT_MAX))
                snprintf(reason, reason_size, "decision %s (reason: %s)", d, why);
        else
                snprintf(reason, reason_size, "decision %s", d);
        if (outcome == DECISION_DENY) {
                if (!decision_member_text(root, "message", text, DECISION_TEXT_MAX))
                        snprintf(text, sizeof(text), "%s", DECISION_DENY_DEFAULT);
                snprintf(reply, reply_size, "550 5.7.1 %s", text);
        }
        if (outcome == DECISION_DEFER) {
                if (!decision_member_text(root, "message", text, DECISION_TEXT_MAX))
                        snprintf(text, sizeof(text), "%s", DECISION_DEFER_DEFAULT);
                snprintf(reply, reply_size, "450 4.7.1 %s", text);
        }
out:
        json_decref(root);
        return outcome;
}
