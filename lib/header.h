/* The header section of a stored message, as a list of unfolded fields. */
#ifndef HW_HEADER_H
#define HW_HEADER_H

#include <stddef.h>
#include <sys/types.h>

/* Most bytes of header section we read; a larger one is -E2BIG. */
#define HEADER_BYTES_MAX (1024 * 1024)

struct header_field {
        char *name;     /* as written, NUL-terminated */
        char *value;    /* unfolded (CR/LF of folds removed), raw bytes,
                         * leading WSP removed, NUL-terminated */
        size_t value_len; /* bytes of value: a NUL byte in the message
                           * would end the C string early */
};

struct header_list {
        struct header_field *fields;
        size_t count;
        size_t capacity;
};

/* Reads the header section of the message starting at offset in fd (pread
 * only, so the file position is untouched): up to the first empty line
 * (CRLF CRLF or LF LF) or end of file. More than max_lines physical lines or
 * HEADER_BYTES_MAX bytes is -E2BIG (max_lines 0: no line limit, only the
 * byte limit). Lines that are neither "name:" fields
 * nor continuations are skipped. *out is initialized here; on error it is
 * left empty. Returns 0 or -errno. */
int header_read(int fd, off_t offset, unsigned max_lines, struct header_list *out);

/* The same from memory. buf need not be NUL-terminated. */
int header_parse(const char *buf, size_t len, unsigned max_lines, struct header_list *out);

/* First field with that name (case-insensitive), or NULL. */
const struct header_field *header_find(const struct header_list *h, const char *name);

void header_list_free(struct header_list *h);

#endif
