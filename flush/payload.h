/* The webhook's request body as a stream: a head in memory, the message
 * streamed from the item file in the format's coding (URL-encoded, raw, or
 * a JSON string), then a tail in memory, with its exact length known before
 * the first byte is sent. The formats that fill it are in format.h. */
#ifndef HW_FLUSH_PAYLOAD_H
#define HW_FLUSH_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth_verdict.h"
#include "header.h"
#include "sign.h"
#include "spool.h"

#define PAYLOAD_CHUNK 65536               /* raw body bytes read per pread */
#define PAYLOAD_TYPE_MAX 128              /* the Content-Type header's value */

/* How the message travels between head and tail. */
enum payload_coding {
        PAYLOAD_FORM,                     /* URL-encoded (application/x-www-form-urlencoded) */
        PAYLOAD_RAW,                      /* byte for byte */
        PAYLOAD_JSON,                     /* inside a JSON string: escaped, invalid UTF-8 as U+FFFD */
};

/* The JSON coding's state between bytes: a UTF-8 sequence in progress. */
struct payload_utf8 {
        unsigned char pend[4];            /* its bytes so far */
        unsigned char npend, need;        /* how many, and how many more it needs */
        unsigned char lo, hi;             /* the range of its next byte */
        unsigned char replaced;           /* 1 once an invalid sequence became U+FFFD */
};

struct payload {
        char *head;                       /* e.g. "recipient=...&...&body-mime=" */
        size_t head_len;
        char *tail;                       /* after the message; NULL for none */
        size_t tail_len;
        enum payload_coding coding;
        char content_type[PAYLOAD_TYPE_MAX];
        char *headers;                    /* more request headers, "Name: value\n" each; NULL for none */
        int fd;                           /* item file, not owned */
        off_t body_offset;
        uint64_t body_len;                /* raw message bytes */
        uint64_t body_encoded_len;        /* the same, in the coding */
        bool sparse;                      /* FORM: under one byte in three escaped */
        bool body_utf8;                   /* JSON: the message measured as valid UTF-8 */

        /* stream position */
        size_t head_pos, tail_pos;
        uint64_t body_pos;                /* raw bytes encoded so far */
        char carry[16];                   /* an escape cut by a short buffer */
        size_t carry_len, carry_pos;
        struct payload_utf8 utf8;
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
        const struct envelope *env;       /* sender and recipients, one by one */
        struct header_list header;        /* the message's header; empty when too big */
        struct auth_verdict auth;         /* sender authentication; .checked false without */
        char *auth_json;                  /* the same as JSON (lib/json.h); NULL without */
        /* The verdicts as single words ("pass", "fail", ...; DKIM's is
         * auth_verdict_dkim_summary()), NULL when hw-receive did not
         * check: each format puts them where its consumers look (see
         * format.h). */
        const char *spf;
        const char *dkim;
        const char *dmarc;
};

int payload_fields_read(struct payload_fields *f, int fd, off_t body_offset,
                        const struct envelope *env);
void payload_fields_free(struct payload_fields *f);

/* Builds the body of one attempt in the mailgun format: fields,
 * signature, then body-mime (format.h builds every format). */
int payload_init(struct payload *p, const struct payload_fields *f,
                 const struct sign_fields *sig, int fd, off_t body_offset);
/* Any coding: takes head and tail (malloc'd, or NULL) and measures the
 * message in the coding; on failure frees them. */
int payload_start(struct payload *p, enum payload_coding coding, char *head, size_t head_len,
                  char *tail, size_t tail_len, int fd, off_t body_offset);
void payload_free(struct payload *p);

static inline uint64_t payload_size(const struct payload *p)
{
        return p->head_len + p->body_encoded_len + p->tail_len;
}

/* Copies up to len bytes of the body into out: the count, 0 at the end, or
 * -errno (-EIO when the file is shorter than it was when measured). */
ssize_t payload_read(struct payload *p, char *out, size_t len);
/* Back to the first byte, for a resend. */
void payload_rewind(struct payload *p);

/* URL-encoded length of len bytes, and the encoding itself (out holds 3*len). */
size_t payload_encoded_len(const void *in, size_t len);
size_t payload_encode(const void *in, size_t len, char *out);

/* The JSON coding of in[0..len) when it is the whole message (end) or a
 * piece of it: the output's length, written to out when out is not NULL
 * (at most 6 * len + 3 bytes). st carries a cut UTF-8 sequence along. */
size_t payload_json_encode(struct payload_utf8 *st, const void *in, size_t len, bool end, char *out);

#endif
