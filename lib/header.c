/* The header section of a message (RFC 5322 section 2.2), read leniently.
 *
 * A physical line ends at LF; a CR right before the LF is part of the line
 * break, any other CR is data. The section ends at the first empty line
 * (CRLF or a bare LF) or at the end of the input. Each line is one of:
 *   - a field:        name ":" value, the name 1+ printable ASCII bytes
 *                     other than ":" (WSP before the colon is tolerated, as
 *                     RFC 5322 obs-optional allows);
 *   - a continuation: it begins with SP or TAB and belongs to the field
 *                     above it (unfolding removes only the line break);
 *   - anything else:  skipped, with any continuation lines after it (mbox
 *                     "From " lines, garbage from broken software).
 * Values keep their bytes (8-bit, invalid UTF-8): conversion is left to
 * whoever needs text (rfc2047.c, utf8.c). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "header.h"

#define HEADER_READ_CHUNK 65536

static bool header_is_wsp(char c)
{
        return c == ' ' || c == '\t';
}

/* Length of the line at p (up to n bytes) without its line break; *next
 * gets the offset of the following line. */
static size_t header_line(const char *p, size_t n, size_t *next)
{
        const char *lf = memchr(p, '\n', n);
        size_t len;

        if (!lf) {
                *next = n;
                return n;
        }
        len = (size_t)(lf - p);
        *next = len + 1;
        if (len > 0 && p[len - 1] == '\r')
                len--;
        return len;
}

/* Length of the name if the line is a field, 0 if not; *colon gets the
 * offset of the colon. */
static size_t header_field_name(const char *p, size_t n, size_t *colon)
{
        const char *c = memchr(p, ':', n);
        size_t len;

        if (!c)
                return 0;
        *colon = (size_t)(c - p);
        len = *colon;
        while (len > 0 && header_is_wsp(p[len - 1]))
                len--;
        if (len == 0)
                return 0;
        for (size_t i = 0; i < len; i++) {
                unsigned char b = (unsigned char)p[i];
                if (b < 33 || b > 126)
                        return 0;
        }
        return len;
}

static int header_list_add(struct header_list *h, const char *name, size_t name_len,
                           const char *val, size_t val_len)
{
        struct header_field *f;
        char *n, *v, *o;
        size_t i = 0;

        if (h->count == h->capacity) {
                size_t cap = h->capacity ? h->capacity * 2 : 16;
                f = reallocarray(h->fields, cap, sizeof(*f));
                if (!f)
                        return -ENOMEM;
                h->fields = f;
                h->capacity = cap;
        }
        n = strndup(name, name_len);
        v = malloc(val_len + 1);
        if (!n || !v) {
                free(n);
                free(v);
                return -ENOMEM;
        }
        /* Unfold: drop LF and the CR before it; skip the value's leading
         * WSP, which may sit on a continuation line. */
        o = v;
        while (i < val_len && (header_is_wsp(val[i]) || val[i] == '\n' ||
                               (val[i] == '\r' && i + 1 < val_len && val[i + 1] == '\n')))
                i++;
        for (; i < val_len; i++) {
                if (val[i] == '\n')
                        continue;
                if (val[i] == '\r' && i + 1 < val_len && val[i + 1] == '\n')
                        continue;
                *o++ = val[i];
        }
        *o = '\0';
        f = &h->fields[h->count++];
        f->name = n;
        f->value = v;
        f->value_len = (size_t)(o - v);
        return 0;
}

/* Offset just past the header section's last line (before the empty line)
 * and whether the empty line was seen. Scans from `from`, a line start. */
static size_t header_section_end(const char *buf, size_t len, size_t from, bool *found)
{
        size_t pos = from;

        *found = false;
        while (pos < len) {
                size_t next;

                if (buf[pos] == '\n' ||
                    (buf[pos] == '\r' && pos + 1 < len && buf[pos + 1] == '\n')) {
                        *found = true;
                        return pos;
                }
                header_line(buf + pos, len - pos, &next);
                pos += next;
        }
        return len;
}

int header_parse(const char *buf, size_t len, unsigned max_lines, struct header_list *out)
{
        size_t end, pos = 0, lines = 0;
        size_t field_start = 0, name_len = 0, val_start = 0, val_end = 0;
        bool found, in_field = false;
        int r;

        memset(out, 0, sizeof(*out));
        end = header_section_end(buf, len, 0, &found);
        if (end > HEADER_BYTES_MAX)
                return -E2BIG;

        while (pos < end) {
                size_t next, colon, nl;
                size_t ll = header_line(buf + pos, end - pos, &next);

                if (max_lines && ++lines > max_lines) {
                        header_list_free(out);
                        return -E2BIG;
                }
                if (ll > 0 && header_is_wsp(buf[pos])) {
                        if (in_field)
                                val_end = pos + ll;
                        pos += next;
                        continue;
                }
                if (in_field) {
                        r = header_list_add(out, buf + field_start, name_len,
                                            buf + val_start, val_end - val_start);
                        if (r < 0)
                                goto fail;
                        in_field = false;
                }
                nl = header_field_name(buf + pos, ll, &colon);
                if (nl > 0) {
                        in_field = true;
                        field_start = pos;
                        name_len = nl;
                        val_start = pos + colon + 1;
                        val_end = pos + ll;
                }
                pos += next;
        }
        if (in_field) {
                r = header_list_add(out, buf + field_start, name_len,
                                    buf + val_start, val_end - val_start);
                if (r < 0)
                        goto fail;
        }
        return 0;
fail:
        header_list_free(out);
        return r;
}

int header_read(int fd, off_t offset, unsigned max_lines, struct header_list *out)
{
        /* Room for the largest section allowed plus its empty line, so a
         * section of exactly HEADER_BYTES_MAX is still recognized. */
        const size_t cap = HEADER_BYTES_MAX + 2;
        size_t len = 0, scan = 0, alloc = 0;
        char *buf = NULL;
        bool found = false;
        int r;

        memset(out, 0, sizeof(*out));
        if (offset < 0)
                return -EINVAL;
        /* offset + len below must not overflow off_t. */
        if (offset > INT64_MAX - (off_t)cap)
                return -EOVERFLOW;
        while (!found && len < cap) {
                size_t want = cap - len < HEADER_READ_CHUNK ? cap - len : HEADER_READ_CHUNK;
                ssize_t n;

                if (alloc - len < want) {
                        size_t na = alloc ? alloc * 2 : HEADER_READ_CHUNK;
                        char *nb;

                        if (na > cap)
                                na = cap;
                        nb = realloc(buf, na);
                        if (!nb) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = nb;
                        alloc = na;
                }
                n = pread(fd, buf + len, want, offset + (off_t)len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        free(buf);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                /* Rescan only from the start of the last, maybe partial,
                 * line; its line break may be split over two reads. */
                size_t end = header_section_end(buf, len, scan, &found);
                for (size_t i = end; !found && i > scan; i--) {
                        if (buf[i - 1] == '\n') {
                                scan = i;
                                break;
                        }
                }
        }
        if (!found && len >= cap) {
                free(buf);
                return -E2BIG;
        }
        r = header_parse(buf ? buf : "", len, max_lines, out);
        free(buf);
        return r;
}

const struct header_field *header_find(const struct header_list *h, const char *name)
{
        for (size_t i = 0; i < h->count; i++)
                if (strcasecmp(h->fields[i].name, name) == 0)
                        return &h->fields[i];
        return NULL;
}

void header_list_free(struct header_list *h)
{
        for (size_t i = 0; i < h->count; i++) {
                free(h->fields[i].name);
                free(h->fields[i].value);
        }
        free(h->fields);
        memset(h, 0, sizeof(*h));
}
