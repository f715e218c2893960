/*
 * The DATA byte machine. Only CR LF . CR LF ends the data: a bare LF or a
 * bare CR never starts or ends a line (no SMTP smuggling), and both are
 * stored as they came. A '.' that starts a line (after CR LF) is removed
 * (RFC 5321 4.5.2). While in the header, physical lines and Received:
 * fields are counted for the loop and size limits; nothing else is looked
 * at. The caller stores what comes out; the machine never buffers input.
 *
 * A BDAT chunk (RFC 3030) goes through the same machine started with
 * data_init_bdat(): its bytes are the message's, exactly (no dot is
 * removed and nothing ends the data: the caller counts the chunk's
 * octets), and only the header is looked at, for the same limits.
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
        bool bdat;                 /* BDAT chunks: no dot-unstuffing, no end */
        bool in_header;
        unsigned header_lines;     /* physical lines of the header */
        unsigned received;         /* Received: fields */
        unsigned line_len;         /* bytes of the current header line seen */
        char line_start[9];        /* its first bytes, to spot "Received:" */
        uint64_t size;             /* message bytes produced */
};

void data_init(struct data_machine *m);
/* For the chunks of one BDAT transaction, fed in turn. */
void data_init_bdat(struct data_machine *m);

/* Consumes input until the end of data or of in. Message bytes are written
 * at out + *out_len and counted in *out_len; never more than len of them,
 * so out must hold *out_len + len bytes. Returns the bytes of in consumed:
 * all of them, or fewer when m->state became DATA_STATE_DONE (input after the
 * final dot line is not consumed) or when len bytes were written (a line
 * that began ".\r" and goes on owes the CR it held back: call again with
 * the rest of in). Started by data_init_bdat(), it consumes and writes
 * all of in. */
size_t data_feed(struct data_machine *m, const char *in, size_t len, char *out, size_t *out_len);

#endif
