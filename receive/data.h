/*
 * The DATA byte machine. Only CR LF . CR LF ends the data: a bare LF or a
 * bare CR never starts or ends a line (no SMTP smuggling), and both are
 * stored as they came. A '.' that starts a line (after CR LF) is removed
 * (RFC 5321 4.5.2). While in the header, physical lines and Received:
 * fields are counted for the loop and size limits; nothing else is looked
 * at. The caller stores what comes out; the machine never buffers input.
 */
#ifndef HW_DATA_H
#define HW_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum data_state {
        DATA_STATE_BOL,        /* at the start of a line */
        DATA_STATE_TEXT,       /* inside a line */
        DATA_STATE_CR,         /* after a CR inside a line */
        DATA_STATE_DOT,        /* a line began with '.' */
        DATA_STATE_DOT_CR,     /* a line began with ".\r" */
        DATA_STATE_DONE,       /* CR LF . CR LF seen */
};

struct data_machine {
        enum data_state state;
        bool in_header;
        unsigned header_lines;     /* physical lines of the header */
        unsigned received;         /* Received: fields */
        unsigned line_len;         /* bytes of the current header line seen */
        char line_start[9];        /* its first bytes, to spot "Received:" */
        uint64_t size;             /* message bytes produced */
};

void data_init(struct data_machine *m);

/* Consumes input until the end of data or of in. Message bytes are written
 * at out + *out_len and counted in *out_len; never more than len of them,
 * so out must hold *out_len + len bytes. Returns the bytes of in consumed:
 * all of them, or fewer when m->state became DATA_STATE_DONE (input after the
 * final dot line is not consumed) or when len bytes were written (a line
 * that began ".\r" and goes on owes the CR it held back: call again with
 * the rest of in). */
size_t data_feed(struct data_machine *m, const char *in, size_t len, char *out, size_t *out_len);

#endif
