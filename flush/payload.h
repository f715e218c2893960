/* The webhook's form body: small fields in memory, body-mime streamed from
 * the item file and URL-encoded on the fly, with its exact length known
 * before the first byte is sent. */
#ifndef HW_FLUSH_PAYLOAD_H
#define HW_FLUSH_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth_verdict.h"
#include "sign.h"
#include "spool.h"

#define PAYLOAD_CHUNK 16384               /* raw body bytes read per pread */

struct payload {
        char *head;                       /* "recipient=...&...&body-mime=" */
        size_t head_len;
        int fd;                           /* item file, not owned */
        off_t body_offset;
        uint64_t body_len;                /* raw message bytes */
        uint64_t body_encoded_len;        /* the same, URL-encoded */
        bool sparse;                      /* under one byte in three escaped */

        /* stream position */
        size_t head_pos;
        uint64_t body_pos;                /* raw bytes encoded so far */
        char carry[3];                    /* an escape cut by a short buffer */
        size_t carry_len, carry_pos;
        size_t buf_len, buf_pos;
        unsigned char buf[PAYLOAD_CHUNK];
};

/* The text fields, taken from the envelope and the message's header. */
struct payload_fields {
        char *recipient;                  /* comma-joined bare addresses */
        const char *sender;
        char *from;                       /* decoded UTF-8; "" when absent */
        char *subject;
        char *headers_json;               /* [[name, value], ...] */
        const char *queue_id;
        bool header_too_big;              /* fields left empty, see payload.c */
        struct auth_verdict auth;         /* sender authentication; .checked false without */
        char *auth_json;                  /* the same as JSON (lib/json.h); NULL without */
};

int payload_fields_read(struct payload_fields *f, int fd, off_t body_offset,
                        const struct envelope *env);
void payload_fields_free(struct payload_fields *f);

/* Builds the body of one attempt: fields, signature, then body-mime. */
int payload_init(struct payload *p, const struct payload_fields *f,
                 const struct sign_fields *sig, int fd, off_t body_offset);
void payload_free(struct payload *p);

static inline uint64_t payload_size(const struct payload *p)
{
        return p->head_len + p->body_encoded_len;
}

/* Copies up to len bytes of the body into out: the count, 0 at the end, or
 * -errno (-EIO when the file is shorter than it was when measured). */
ssize_t payload_read(struct payload *p, char *out, size_t len);
/* Back to the first byte, for a resend. */
void payload_rewind(struct payload *p);

/* URL-encoded length of len bytes, and the encoding itself (out holds 3*len). */
size_t payload_encoded_len(const void *in, size_t len);
size_t payload_encode(const void *in, size_t len, char *out);

#endif
