/* The table of webhook formats, the relay format, and the string builder
 * the others share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"

void format_buf_add(struct format_buf *b, const void *s, size_t len)
{
        if (b->error)
                return;
        if (b->len + len + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 1024;
                char *p;

                while (cap < b->len + len + 1)
                        cap *= 2;
                p = realloc(b->data, cap);
                if (!p) {
                        b->error = -ENOMEM;
                        return;
                }
                b->data = p;
                b->cap = cap;
        }
        memcpy(b->data + b->len, s, len);
        b->len += len;
        b->data[b->len] = '\0';
}

void format_buf_str(struct format_buf *b, const char *s)
{
        format_buf_add(b, s, strlen(s));
}

/* relay: the message itself as the body, what Rails Action Mailbox's
 * relay ingress takes; the envelope travels in request headers. */
static int format_relay(struct payload *p, const struct payload_fields *f, int fd, off_t body_offset)
{
        struct format_buf h = { 0 };
        int r;

        format_buf_str(&h, "X-Envelope-From: ");
        format_buf_str(&h, f->sender);
        format_buf_str(&h, "\nX-Envelope-To: ");
        format_buf_str(&h, f->recipient);
        format_buf_str(&h, "\n");
        /* verdicts: in the message's Authentication-Results: header. */
        if (h.error) {
                free(h.data);
                return h.error;
        }
        r = payload_start(p, PAYLOAD_RAW, NULL, 0, NULL, 0, fd, body_offset);
        if (r < 0) {
                free(h.data);
                return r;
        }
        strcpy(p->content_type, "message/rfc822");
        p->headers = h.data;
        return 0;
}

int format_build(struct payload *p, enum webhook_format format, const struct payload_fields *f,
                 const struct sign_fields *sig, int fd, off_t body_offset)
{
        switch (format) {
        case WEBHOOK_FORMAT_MAILGUN:
                /* verdicts: the auth-* fields (flush/payload.c). */
                return payload_init(p, f, sig, fd, body_offset);
        case WEBHOOK_FORMAT_MAILGUN_MULTIPART:
                return format_mailgun_multipart(p, f, sig, fd, body_offset, sign_random);
        case WEBHOOK_FORMAT_RELAY:
                return format_relay(p, f, fd, body_offset);
        case WEBHOOK_FORMAT_SENDGRID:
                return format_sendgrid(p, f, fd, body_offset, sign_random);
        case WEBHOOK_FORMAT_POSTMARK:
                return format_postmark(p, f, fd, body_offset);
        }
        return -EINVAL;
}
