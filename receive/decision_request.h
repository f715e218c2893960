/* The decision API's messages (haraka-webhook.decision.v1) without any
 * HTTP: building the request body and judging the response. Kept apart
 * from decision.c (libcurl) so it can be tested without a network. */
#ifndef HW_DECISION_REQUEST_H
#define HW_DECISION_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "module_api.h"
#include "spool.h"

#define DECISION_PROTOCOL "haraka-webhook.decision.v1"
#define DECISION_RESPONSE_MAX 65536        /* bytes of response body we accept */
#define DECISION_TEXT_MAX 200              /* characters of the service's text in a reply */
#define DECISION_DENY_DEFAULT "Message rejected by recipient policy"
#define DECISION_DEFER_DEFAULT "Temporarily refused by recipient policy, try again later"
#define DECISION_CHUNK 16384               /* message bytes per pread in full mode */

/* rawMime, produced piecewise from the spool file: the message bytes with
 * invalid UTF-8 replaced by U+FFFD, escaped as the inside of a JSON string
 * (no quotes). Memory stays at a few chunks whatever the message size. */
struct decision_stream {
        int fd;
        off_t start, pos, end;             /* message bytes in the file */
        size_t chunk;                      /* bytes per pread */
        size_t carry_len;                  /* an unfinished UTF-8 sequence */
        unsigned char carry[4];
        unsigned char *in;                 /* chunk + carry */
        char *out;                         /* escaped text not yet taken */
        size_t out_len, out_pos;
};

int decision_stream_init(struct decision_stream *st, int fd, off_t start, off_t end, size_t chunk);
/* Back to the start (curl may rewind; the length is measured this way). */
void decision_stream_rewind(struct decision_stream *st);
/* Copies up to size bytes of the escaped text to buf; *n = 0 at the end.
 * 0 or -errno. */
int decision_stream_read(struct decision_stream *st, char *buf, size_t size, size_t *n);
/* Total length of the escaped text (one pass over the file), then rewinds. */
int decision_stream_length(struct decision_stream *st, uint64_t *len);
void decision_stream_free(struct decision_stream *st);

/* The request body is head + [stream] + tail; the stream only in full mode. */
struct decision_request {
        char *head;
        size_t head_len;
        const char *tail;
        size_t tail_len;
        bool has_stream;
        struct decision_stream stream;
};

/* Builds the body for env and the message at message_offset in fd (the
 * header section is parsed with pread; the file position is untouched). */
/* auth: the sender authentication verdict, sent as message.auth in the
 * summary and full modes; NULL when the checks did not run. */
int decision_request_build(struct decision_request *req, enum decision_mode mode,
                           const struct envelope *env, const struct auth_verdict *auth,
                           int fd, off_t message_offset);
/* The body for one recipient at RCPT time (stage "rcpt"): the minimal
 * shape, as no message exists yet. */
int decision_request_build_rcpt(struct decision_request *req, const struct hw_module_recipient *rcpt);
void decision_request_free(struct decision_request *req);

/* ISO 8601 UTC with milliseconds ("2026-06-16T10:00:00.000Z"). */
void decision_iso8601(int64_t ms, char buf[32]);

/* The service's text made safe for an SMTP reply or a log line: printable
 * ASCII on one line, at most max characters. Controls and whitespace
 * become one space, each non-ASCII character one '?'. Returns the length. */
size_t decision_text_sanitize(const char *s, size_t len, char *out, size_t max);

/* Judges a finished HTTP exchange: status and body (body_len bytes; the
 * caller gave up beyond DECISION_RESPONSE_MAX). For DENY fills reply with
 * "550 5.7.1 <text>", for DEFER with "450 4.7.1 <text>"; always fills
 * reason for the log. */
enum decision_outcome decision_response_parse(long status, const char *body, size_t body_len,
                                              char *reply, size_t reply_size,
                                              char *reason, size_t reason_size);

#endif
