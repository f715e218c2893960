/*
 * postmark: Postmark's inbound JSON, with the message in RawEmail (its
 * "include raw email content" option) and the fields consumers read:
 *
 *   {"RecordType":"Inbound","MessageStream":"inbound","MessageID":<queue id>,
 *    "From":..,"FromName":..,"FromFull":{"Email","Name","MailboxHash"},
 *    "To":..,"ToFull":[..],"Cc":..,"CcFull":[..],"OriginalRecipient":..,
 *    "Subject":..,"Date":..,"ReplyTo":..,"MailboxHash":"",
 *    "Headers":[{"Name","Value"}, ...],      (all but the fields above)
 *    "TextBody":"","HtmlBody":"","StrippedTextReply":"","Attachments":[],
 *    "RawEmail":"<the message>"}
 *
 * The head is jansson's text of the object without RawEmail; RawEmail is
 * streamed as the payload's JSON coding. The message is not parsed into
 * TextBody, HtmlBody and Attachments: consumers that want the body read
 * RawEmail. A JSON string holds Unicode, so bytes that are not UTF-8 arrive
 * as U+FFFD: relay and mailgun-multipart are the byte-exact formats.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "format.h"
#include "json.h"
#include "rfc2047.h"

/* Header fields Postmark gives as fields of their own, not in Headers. */
static const char *const format_postmark_own[] = { "From", "To", "Cc", "Subject", "Date", "Reply-To", NULL };

static json_t *format_text(const char *s, size_t len)
{
        return hwjson_from_bytes(s, len);
}

/* {"Email","Name","MailboxHash"} of one address: "Name <a@b>" or "a@b". */
static json_t *format_postmark_address(const char *s, size_t len)
{
        const char *lt = memchr(s, '<', len), *gt = lt ? memchr(lt, '>', len - (size_t)(lt - s)) : NULL;
        const char *email = s, *name = s;
        size_t elen = len, nlen = 0;
        json_t *o = json_object();

        if (lt && gt) {
                email = lt + 1;
                elen = (size_t)(gt - lt - 1);
                nlen = (size_t)(lt - s);
        }
        while (nlen && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
                nlen--;
        while (nlen && (*name == ' ' || *name == '\t'))
                name++, nlen--;
        if (nlen >= 2 && name[0] == '"' && name[nlen - 1] == '"')
                name++, nlen -= 2;
        while (elen && (*email == ' ' || *email == '\t'))
                email++, elen--;
        while (elen && (email[elen - 1] == ' ' || email[elen - 1] == '\t'))
                elen--;
        if (!o || json_object_set_new(o, "Email", format_text(email, elen)) < 0 ||
            json_object_set_new(o, "Name", format_text(name, nlen)) < 0 ||
            json_object_set_new(o, "MailboxHash", json_string("")) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* A decoded address list split at the commas outside quotes and <>. */
static json_t *format_postmark_addresses(const char *s)
{
        json_t *list = json_array();
        bool quoted = false;
        int angle = 0;
        const char *start = s;

        if (!list)
                return NULL;
        for (const char *p = s;; p++) {
                if (*p == '\0' || (*p == ',' && !quoted && angle == 0)) {
                        const char *a = start;

                        while (a < p && (*a == ' ' || *a == '\t'))
                                a++;
                        if (a < p && json_array_append_new(list, format_postmark_address(a, (size_t)(p - a))) < 0) {
                                json_decref(list);
                                return NULL;
                        }
                        if (*p == '\0')
                                return list;
                        start = p + 1;
                } else if (*p == '"' && (p == s || p[-1] != '\\')) {
                        quoted = !quoted;
                } else if (!quoted && *p == '<') {
                        angle++;
                } else if (!quoted && *p == '>' && angle > 0) {
                        angle--;
                }
        }
}

static bool format_postmark_is_own(const char *name)
{
        for (const char *const *o = format_postmark_own; *o; o++)
                if (strcasecmp(name, *o) == 0)
                        return true;
        return false;
}

static json_t *format_postmark_headers(const struct payload_fields *f)
{
        json_t *list = json_array();

        if (!list)
                return NULL;
        for (size_t i = 0; i < f->header.count; i++) {
                const struct header_field *h = &f->header.fields[i];
                json_t *o;

                if (format_postmark_is_own(h->name))
                        continue;
                o = json_object();
                if (!o || json_object_set_new(o, "Name", format_text(h->name, strlen(h->name))) < 0 ||
                    json_object_set_new(o, "Value", format_text(h->value, h->value_len)) < 0 ||
                    json_array_append_new(list, o) < 0) {
                        json_decref(list);
                        return NULL;
                }
        }
        /* verdicts: hw-receive's Authentication-Results: header is one of these. */
        return list;
}

/* Sets key to the decoded header (and Full to its addresses). */
static int format_postmark_header(json_t *o, const struct payload_fields *f, const char *name,
                                  const char *key, const char *full)
{
        const struct header_field *h = header_find(&f->header, name);
        char *text = h ? rfc2047_decode(h->value) : strdup("");
        int r = -1;

        if (!text)
                return -1;
        if (json_object_set_new(o, key, format_text(text, strlen(text))) == 0)
                r = full ? json_object_set_new(o, full, format_postmark_addresses(text)) : 0;
        free(text);
        return r;
}

static json_t *format_postmark_object(const struct payload_fields *f)
{
        json_t *o = json_object(), *from;
        int r;

        if (!o)
                return NULL;
        r = json_object_set_new(o, "RecordType", json_string("Inbound")) |
            json_object_set_new(o, "MessageStream", json_string("inbound")) |
            json_object_set_new(o, "MessageID", json_string(f->queue_id)) |
            format_postmark_header(o, f, "From", "From", NULL) |
            format_postmark_header(o, f, "To", "To", "ToFull") |
            format_postmark_header(o, f, "Cc", "Cc", "CcFull") |
            format_postmark_header(o, f, "Subject", "Subject", NULL) |
            format_postmark_header(o, f, "Date", "Date", NULL) |
            format_postmark_header(o, f, "Reply-To", "ReplyTo", NULL) |
            json_object_set_new(o, "OriginalRecipient",
                                f->env->rcpt_count ? format_text(f->env->rcpt[0], strlen(f->env->rcpt[0]))
                                                   : json_string("")) |
            json_object_set_new(o, "MailboxHash", json_string("")) |
            json_object_set_new(o, "Headers", format_postmark_headers(f)) |
            json_object_set_new(o, "TextBody", json_string("")) |
            json_object_set_new(o, "HtmlBody", json_string("")) |
            json_object_set_new(o, "StrippedTextReply", json_string("")) |
            json_object_set_new(o, "Attachments", json_array());
        if (r == 0) {
                /* "From" is the address; FromName and FromFull split it. */
                json_t *list = format_postmark_addresses(json_string_value(json_object_get(o, "From")));

                from = list ? json_array_get(list, 0) : NULL;
                if (from) {
                        r = json_object_set(o, "FromFull", from) |
                            json_object_set(o, "FromName", json_object_get(from, "Name")) |
                            json_object_set(o, "From", json_object_get(from, "Email"));
                } else {
                        r = list ? 0 : -1;
                }
                json_decref(list);
        }
        if (r != 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

int format_postmark(struct payload *p, const struct payload_fields *f, int fd, off_t body_offset)
{
        json_t *o = format_postmark_object(f);
        char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        struct format_buf head = { 0 }, tail = { 0 };
        size_t len = text ? strlen(text) : 0;
        int r;

        json_decref(o);
        if (!text || len < 2)
                goto nomem;
        /* "{...}" less its "}", then the RawEmail string, open. */
        format_buf_add(&head, text, len - 1);
        format_buf_str(&head, ",\"RawEmail\":\"");
        format_buf_str(&tail, "\"}");
        free(text);
        if (head.error || tail.error)
                goto nomem_bufs;
        r = payload_start(p, PAYLOAD_JSON, head.data, head.len, tail.data, tail.len, fd, body_offset);
        if (r < 0)
                return r;
        strcpy(p->content_type, "application/json");
        return 0;
nomem_bufs:
        free(head.data);
        free(tail.data);
        return -ENOMEM;
nomem:
        free(text);
        return -ENOMEM;
}
