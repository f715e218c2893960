/* The DATA byte machine; see data.h. */
#include "data.h"

#include <string.h>
#include <strings.h>

void data_init(struct data_machine *m)
{
        memset(m, 0, sizeof(*m));
        m->state = DATA_STATE_BOL;
        m->in_header = true;
}

void data_init_bdat(struct data_machine *m)
{
        data_init(m);
        m->bdat = true;
}

/* Header bookkeeping for one produced byte. */
static void data_header_byte(struct data_machine *m, char c)
{
        if (m->line_len < sizeof(m->line_start))
                m->line_start[m->line_len] = c;
        m->line_len++;
}

/* Called at each CR LF while in the header. */
static void data_header_line_end(struct data_machine *m)
{
        /* line_len counts the CR just produced: an empty line is "\r". */
        if (m->line_len <= 1) {
                m->in_header = false;
                return;
        }
        m->header_lines++;
        if (m->line_len >= sizeof(m->line_start) &&
            strncasecmp(m->line_start, "Received:", sizeof(m->line_start)) == 0)
                m->received++;
        m->line_len = 0;
}

size_t data_feed(struct data_machine *m, const char *in, size_t len, char *out, size_t *out_len)
{
        /* end bounds the output by the input: see data.h. */
        size_t i = 0, o = *out_len, end = *out_len + len;

        while (i < len && o < end && m->state != DATA_STATE_DONE) {
                char c = in[i];

                /* Fastest path: a BDAT body is copied as it is. */
                if (m->bdat && !m->in_header) {
                        memcpy(out + o, in + i, len - i);
                        o += len - i;
                        i = len;
                        break;
                }
                /* Fast path: the body, inside a line, up to the next CR. */
                if (m->state == DATA_STATE_TEXT && !m->in_header) {
                        size_t avail = len - i < end - o ? len - i : end - o;
                        const char *cr = memchr(in + i, '\r', avail);
                        size_t run = cr ? (size_t)(cr - (in + i)) : avail;

                        memcpy(out + o, in + i, run);
                        o += run;
                        i += run;
                        if (!cr)
                                continue;
                        c = in[i];
                }
                i++;
                switch (m->state) {
                case DATA_STATE_BOL:
                        if (c == '.' && !m->bdat) {
                                m->state = DATA_STATE_DOT;
                                continue;
                        }
                        m->state = c == '\r' ? DATA_STATE_CR : DATA_STATE_TEXT;
                        break;
                case DATA_STATE_TEXT:
                        if (c == '\r')
                                m->state = DATA_STATE_CR;
                        break;
                case DATA_STATE_CR:
                        if (c == '\n') {
                                m->state = DATA_STATE_BOL;
                                out[o++] = c;
                                if (m->in_header)
                                        data_header_line_end(m);
                                continue;
                        }
                        if (c != '\r')
                                m->state = DATA_STATE_TEXT;
                        break;
                case DATA_STATE_DOT:
                        /* A stuffed dot: drop it, the byte after it is data. */
                        if (c == '\r') {
                                m->state = DATA_STATE_DOT_CR;
                                continue;
                        }
                        m->state = DATA_STATE_TEXT;
                        break;
                case DATA_STATE_DOT_CR:
                        if (c == '\n') {
                                m->state = DATA_STATE_DONE;
                                continue;
                        }
                        /* ".\r" then something else: the dot was stuffing and
                         * the CR is data. Only the CR is written now and c
                         * is read again as the byte after a CR: writing both
                         * would put two bytes out for one in when c starts
                         * this call's input. */
                        out[o++] = '\r';
                        if (m->in_header)
                                data_header_byte(m, '\r');
                        m->state = DATA_STATE_CR;
                        i--;
                        continue;
                case DATA_STATE_DONE:
                        break;
                }
                out[o++] = c;
                if (m->in_header)
                        data_header_byte(m, c);
        }
        m->size += o - *out_len;
        *out_len = o;
        return i;
}
