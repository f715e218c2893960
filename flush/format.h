/*
 * The webhook formats (WEBHOOK_FORMAT, WEBHOOK_ROLE_FORMAT): each fills a
 * payload (payload.h) with a head, the message in a coding, a tail, its
 * Content-Type and any request headers of its own.
 *
 *   format              Content-Type                    message as
 *   mailgun             application/x-www-form-urlencoded  body-mime, URL-encoded (payload.c)
 *   mailgun-multipart   multipart/form-data             body-mime part, raw
 *   relay               message/rfc822                  the whole body, raw
 *   sendgrid            multipart/form-data             email part, raw
 *   postmark            application/json                RawEmail, a JSON string
 *
 * Where sender authentication verdicts go, when hw-receive checked them:
 * every format's message starts with hw-receive's Authentication-Results:
 * header (so relay's body and postmark's RawEmail and Headers carry it);
 * mailgun and mailgun-multipart add the auth-* fields
 * (auth_verdict_fields(), and auth-results as JSON); sendgrid sends its
 * own `SPF` and `dkim` fields (payload_fields' spf, dkim).
 */
#ifndef HW_FLUSH_FORMAT_H
#define HW_FLUSH_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "payload.h"
#include "sign.h"

/* Fills p with one attempt's body in format. A multipart boundary is new
 * for each call and fixed for the attempt: every rewind replays the same
 * bytes (a signature over them stays true). */
int format_build(struct payload *p, enum webhook_format format, const struct payload_fields *f,
                 const struct sign_fields *sig, int fd, off_t body_offset);

/* A growing string for heads and tails. */
struct format_buf {
        char *data;
        size_t len, cap;
        int error;                        /* -ENOMEM once a reservation failed */
};

void format_buf_add(struct format_buf *b, const void *s, size_t len);
void format_buf_str(struct format_buf *b, const char *s);

/* multipart/form-data (format_multipart.c) ------------------------------- */

#define FORMAT_BOUNDARY_LEN 40            /* "hw-" and hex; RFC 2046 allows 70 */
#define FORMAT_BOUNDARY_TRIES 8
#define FORMAT_SCAN_CHUNK 65536           /* message bytes per pread of the scan */

/* Random bytes for a boundary: getrandom(), or a test's choice. */
typedef int (*format_random_fn)(void *buf, size_t len);

/* Picks a boundary found in none of the strings and nowhere in the
 * message (read from the file), and says whether the message is valid
 * UTF-8. -EEXIST when FORMAT_BOUNDARY_TRIES boundaries all collided. */
int format_boundary_pick(char out[FORMAT_BOUNDARY_LEN + 1], const char *const *strings, size_t nstrings,
                         int fd, off_t body_offset, format_random_fn rnd, bool *utf8);

int format_mailgun_multipart(struct payload *p, const struct payload_fields *f,
                             const struct sign_fields *sig, int fd, off_t body_offset,
                             format_random_fn rnd);
int format_sendgrid(struct payload *p, const struct payload_fields *f, int fd, off_t body_offset,
                    format_random_fn rnd);

/* application/json (format_postmark.c) ---------------------------------- */
int format_postmark(struct payload *p, const struct payload_fields *f, int fd, off_t body_offset);

#endif
