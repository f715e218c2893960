/*
 * multipart/form-data (RFC 7578) for the mailgun-multipart and sendgrid
 * formats: small fields first, the message last as a part of its own, raw:
 *
 *   --B CRLF Content-Disposition: form-data; name="recipient" CRLF CRLF value CRLF
 *   ...
 *   --B CRLF Content-Disposition: form-data; name="body-mime" CRLF
 *   Content-Type: text/plain; charset=utf-8 CRLF CRLF <message> CRLF --B-- CRLF
 *
 * The message part has no file name: consumers read it as a form field.
 * Its charset says how to turn the text back into the stored bytes:
 * utf-8 when the message is valid UTF-8, else iso-8859-1, which maps each
 * byte to one character (Rack takes the part's charset and so keeps the
 * bytes; a utf-8 label on other bytes makes Rails answer 400).
 *
 * B is random for each attempt and checked against every field value and
 * the whole message before it is used.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "format.h"
#include "json.h"
#include "rfc2047.h"
#include "utf8.h"

/* Reads the message once: is b in it, and is it valid UTF-8? Chunks
 * overlap by the boundary's length, so a match across two is found. */
static int format_scan(int fd, off_t body_offset, const char *b, size_t blen, bool *found, bool *utf8)
{
        unsigned char buf[FORMAT_SCAN_CHUNK];
        off_t pos = body_offset, checked = body_offset;

        *found = false;
        *utf8 = true;
        for (;;) {
                ssize_t n = pread(fd, buf, sizeof(buf), pos);
                size_t from, cut;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0;
                if (memmem(buf, (size_t)n, b, blen))
                        *found = true;
                from = (size_t)(checked - pos);
                cut = (size_t)n < sizeof(buf) ? (size_t)n : utf8_cut(buf, (size_t)n);
                if (*utf8 && cut > from && !utf8_valid((const char *)buf + from, cut - from))
                        *utf8 = false;
                if (cut > from)
                        checked = pos + (off_t)cut;
                if ((size_t)n < sizeof(buf))
                        return 0;
                pos += n - (off_t)(blen - 1);
        }
}

int format_boundary_pick(char out[FORMAT_BOUNDARY_LEN + 1], const char *const *strings, size_t nstrings,
                         int fd, off_t body_offset, format_random_fn rnd, bool *utf8)
{
        static const char hex[] = "0123456789abcdef";

        for (unsigned t = 0; t < FORMAT_BOUNDARY_TRIES; t++) {
                unsigned char raw[(FORMAT_BOUNDARY_LEN - 3) / 2];
                bool found = false;
                size_t i;
                int r = rnd(raw, sizeof(raw));

                if (r < 0)
                        return r;
                memcpy(out, "hw-", 3);
                for (i = 0; i < sizeof(raw); i++) {
                        out[3 + 2 * i] = hex[raw[i] >> 4];
                        out[4 + 2 * i] = hex[raw[i] & 15];
                }
                for (i = 3 + 2 * sizeof(raw); i < FORMAT_BOUNDARY_LEN; i++)
                        out[i] = '0';
                out[FORMAT_BOUNDARY_LEN] = '\0';
                for (i = 0; i < nstrings && !found; i++)
                        found = strstr(strings[i], out) != NULL;
                if (found)
                        continue;
                r = format_scan(fd, body_offset, out, FORMAT_BOUNDARY_LEN, &found, utf8);
                if (r < 0)
                        return r;
                if (!found)
                        return 0;
        }
        return -EEXIST;
}

static void format_part(struct format_buf *b, const char *boundary, const char *name, const char *value)
{
        format_buf_str(b, "--");
        format_buf_str(b, boundary);
        format_buf_str(b, "\r\nContent-Disposition: form-data; name=\"");
        format_buf_str(b, name);
        format_buf_str(b, "\"\r\n\r\n");
        format_buf_str(b, value);
        format_buf_str(b, "\r\n");
}

/* The message's part header, the tail, and the stream; takes head. */
static int format_multipart_finish(struct payload *p, struct format_buf *head, const char *boundary,
                                   const char *name, bool utf8, int fd, off_t body_offset)
{
        struct format_buf tail = { 0 };
        int r;

        format_buf_str(head, "--");
        format_buf_str(head, boundary);
        format_buf_str(head, "\r\nContent-Disposition: form-data; name=\"");
        format_buf_str(head, name);
        format_buf_str(head, "\"\r\nContent-Type: text/plain; charset=");
        format_buf_str(head, utf8 ? "utf-8" : "iso-8859-1");
        format_buf_str(head, "\r\n\r\n");
        format_buf_str(&tail, "\r\n--");
        format_buf_str(&tail, boundary);
        format_buf_str(&tail, "--\r\n");
        if (head->error || tail.error) {
                free(head->data);
                free(tail.data);
                return -ENOMEM;
        }
        r = payload_start(p, PAYLOAD_RAW, head->data, head->len, tail.data, tail.len, fd, body_offset);
        if (r < 0)
                return r;
        snprintf(p->content_type, sizeof(p->content_type), "multipart/form-data; boundary=%s", boundary);
        return 0;
}

/* mailgun's fields: its own, then the verdict's (as the mailgun format
 * sends them, flush/payload.c), with body-mime as the last part. */
#define FORMAT_MAILGUN_FIELDS 9
#define FORMAT_AUTH_FIELDS 5              /* auth_verdict_fields()'s four, and auth-results */

struct format_fields {
        const char *names[FORMAT_MAILGUN_FIELDS + FORMAT_AUTH_FIELDS];
        const char *values[FORMAT_MAILGUN_FIELDS + FORMAT_AUTH_FIELDS];
        size_t n;
};

static void format_field_add(void *userdata, const char *name, const char *value)
{
        struct format_fields *ff = userdata;

        if (ff->n < sizeof(ff->names) / sizeof(ff->names[0])) {
                ff->names[ff->n] = name;
                ff->values[ff->n++] = value;
        }
}

int format_mailgun_multipart(struct payload *p, const struct payload_fields *f,
                             const struct sign_fields *sig, int fd, off_t body_offset,
                             format_random_fn rnd)
{
        static const char *const names[FORMAT_MAILGUN_FIELDS] = {
                "recipient", "sender", "from", "subject", "message-headers",
                "timestamp", "token", "signature", "queue-id" };
        const char *values[FORMAT_MAILGUN_FIELDS] = {
                f->recipient, f->sender, f->from, f->subject, f->headers_json,
                sig->timestamp, sig->token, sig->signature, f->queue_id };
        struct format_fields ff = { .n = 0 };
        char boundary[FORMAT_BOUNDARY_LEN + 1];
        struct format_buf head = { 0 };
        bool utf8;
        int r;

        for (size_t i = 0; i < FORMAT_MAILGUN_FIELDS; i++)
                if (values[i][0] || strcmp(names[i], "signature") != 0)
                        format_field_add(&ff, names[i], values[i]);
        auth_verdict_fields(&f->auth, format_field_add, &ff);
        if (f->auth_json)
                format_field_add(&ff, "auth-results", f->auth_json);
        r = format_boundary_pick(boundary, ff.values, ff.n, fd, body_offset, rnd, &utf8);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ff.n; i++)
                format_part(&head, boundary, ff.names[i], ff.values[i]);
        return format_multipart_finish(p, &head, boundary, "body-mime", utf8, fd, body_offset);
}

static char *format_header_text(const struct payload_fields *f, const char *name)
{
        const struct header_field *h = header_find(&f->header, name);

        return h ? rfc2047_decode(h->value) : strdup("");
}

/* {"to":[...],"from":"..."}: SendGrid's envelope field. */
static char *format_sendgrid_envelope(const struct payload_fields *f)
{
        json_t *o = json_object(), *to = json_array();
        char *text = NULL;
        bool ok = o && to;

        for (size_t i = 0; ok && i < f->env->rcpt_count; i++)
                ok = json_array_append_new(to, hwjson_from_bytes(f->env->rcpt[i], strlen(f->env->rcpt[i]))) == 0;
        if (ok && json_object_set(o, "to", to) == 0 &&
            json_object_set_new(o, "from", hwjson_from_bytes(f->sender, strlen(f->sender))) == 0)
                text = json_dumps(o, JSON_COMPACT);
        json_decref(to);
        json_decref(o);
        return text;
}

/* SendGrid Inbound Parse with "send raw": the message in `email`. No
 * `headers` field: raw mode has none, and a consumer that sees one (as
 * django-anymail does) takes the parsed mode's fields instead. */
int format_sendgrid(struct payload *p, const struct payload_fields *f, int fd, off_t body_offset,
                    format_random_fn rnd)
{
        static const char charsets[] = "{\"to\":\"UTF-8\",\"from\":\"UTF-8\",\"subject\":\"UTF-8\"}";
        char *to = format_header_text(f, "To");
        char *envelope = format_sendgrid_envelope(f);
        const char *values[] = { to ? to : "", f->from, f->subject, f->env->remote_ip,
                                 envelope ? envelope : "", charsets,
                                 f->spf ? f->spf : "", f->dkim ? f->dkim : "" };
        char boundary[FORMAT_BOUNDARY_LEN + 1];
        struct format_buf head = { 0 };
        bool utf8;
        int r = -ENOMEM;

        if (!to || !envelope)
                goto out;
        r = format_boundary_pick(boundary, values, sizeof(values) / sizeof(values[0]), fd, body_offset,
                                 rnd, &utf8);
        if (r < 0)
                goto out;
        format_part(&head, boundary, "to", values[0]);
        format_part(&head, boundary, "from", f->from);
        format_part(&head, boundary, "subject", f->subject);
        format_part(&head, boundary, "sender_ip", f->env->remote_ip);
        format_part(&head, boundary, "envelope", envelope);
        format_part(&head, boundary, "charsets", charsets);
        /* verdicts: SendGrid's own fields. */
        if (f->spf)
                format_part(&head, boundary, "SPF", f->spf);
        if (f->dkim)
                format_part(&head, boundary, "dkim", f->dkim);
        r = format_multipart_finish(p, &head, boundary, "email", utf8, fd, body_offset);
out:
        free(to);
        free(envelope);
        return r;
}
