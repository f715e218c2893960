/* libFuzzer target: the DATA machine (data_feed), differentially. The same
 * body is fed whole and in chunks of sizes taken from the input; both ways
 * must give the same message bytes, consume the same input and end in the
 * same machine state. abort() on any difference.
 *
 * Input: byte 0's low 3 bits say how many chunking bytes (0-7) follow it,
 * and its bit 3 (0x08: '8' to '?') picks the machine of BDAT chunks
 * (data_init_bdat) instead of DATA's; the rest is the stream as the client
 * sends it. The BDAT machine must also give back exactly its input, all of
 * it consumed, and never end. A chunking byte c
 * gives a chunk of (c & 0x1f) + 1 bytes ('@' 1, 'A' 2, ... '_' 32), or of
 * ((c & 0x7f) + 1) * 64 bytes when its top bit is set; they are used in
 * turn. No chunking byte: one byte at a time.
 *
 * The contract (data.h): a call writes at most len bytes at out + *out_len
 * and may stop short of its input, before DATA_STATE_DONE, when it has written
 * len bytes; the caller calls again with the rest. Every buffer here is
 * malloc'd to exactly what the contract promises (*out_len + len bytes;
 * *out_len is 0 for the whole feed, 0-3 for the chunked one), so ASan
 * sees any byte more. A call on input that is not done makes progress: it consumes or
 * produces, and no two calls in a row consume nothing. */
#include <stdbool.h>
#include <string.h>

#include "data.h"
#include "fuzz.h"

struct fuzz_run {
        struct data_machine m;
        char *out;              /* message bytes produced, all calls */
        size_t out_len;
        size_t consumed;
};

/* One call on in[0..len) with its own copy of the input, so that a read
 * past len is seen too. out is a new buffer of exactly off + len bytes
 * with *out_len starting at off, as data.h allows; what the call writes
 * is appended to run->out. */
static size_t fuzz_call(struct fuzz_run *run, const uint8_t *in, size_t len, size_t off)
{
        enum data_state state = run->m.state;
        char *copy = malloc(len);
        char *out = malloc(off + len);
        size_t out_len = off, used, made;

        FUZZ_CHECK(copy && out);
        memcpy(copy, in, len);
        used = data_feed(&run->m, copy, len, out, &out_len);
        free(copy);
        FUZZ_CHECK(used <= len && out_len >= off && out_len - off <= len);
        made = out_len - off;
        /* Stopping short needs a reason: the end of data or a full out. */
        FUZZ_CHECK(used == len || run->m.state == DATA_STATE_DONE || made == len);
        if (state != DATA_STATE_DONE)
                FUZZ_CHECK(used > 0 || made > 0);
        /* run->out holds the whole input: output never outgrows it. */
        FUZZ_CHECK(run->out_len + made <= run->consumed + used);
        memcpy(run->out + run->out_len, out + off, made);
        run->out_len += made;
        free(out);
        return used;
}

/* Feeds body[0..len) in chunks of sizes[k % nsizes] (the whole rest when
 * nsizes is 0) until the machine is done or the input is used up. The
 * chunked feed also starts *out_len past 0 (0-3 bytes). */
static void fuzz_feed(struct fuzz_run *run, const uint8_t *body, size_t len,
                      const size_t *sizes, size_t nsizes, bool bdat)
{
        unsigned idle = 0;

        if (bdat)
                data_init_bdat(&run->m);
        else
                data_init(&run->m);
        run->out = malloc(len + 1);
        FUZZ_CHECK(run->out);
        run->out_len = 0;
        run->consumed = 0;
        for (size_t k = 0; run->consumed < len && run->m.state != DATA_STATE_DONE; k++) {
                size_t left = len - run->consumed;
                size_t n = nsizes && sizes[k % nsizes] < left ? sizes[k % nsizes] : left;
                size_t used = fuzz_call(run, body + run->consumed, n, nsizes ? k % 4 : 0);

                /* At most one call in a row may only write a held-back byte. */
                idle = used ? 0 : idle + 1;
                FUZZ_CHECK(idle < 2);
                run->consumed += used;
        }
        FUZZ_CHECK(run->m.size == run->out_len);
        FUZZ_CHECK(run->out_len <= run->consumed);
        if (bdat) {
                FUZZ_CHECK(run->consumed == len && run->out_len == len);
                FUZZ_CHECK(len == 0 || memcmp(run->out, body, len) == 0);
                FUZZ_CHECK(run->m.state != DATA_STATE_DONE);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        size_t sizes[7], nsizes, skip;
        struct fuzz_run whole, chunked;
        static const size_t one = 1;
        bool bdat;

        if (size == 0)
                return 0;
        nsizes = data[0] & 7;
        bdat = (data[0] & 8) != 0;
        if (size < 1 + nsizes)
                return 0;
        for (size_t k = 0; k < nsizes; k++) {
                uint8_t c = data[1 + k];

                sizes[k] = c & 0x80 ? ((size_t)(c & 0x7f) + 1) * 64 : (size_t)(c & 0x1f) + 1;
        }
        skip = 1 + nsizes;

        fuzz_feed(&whole, data + skip, size - skip, NULL, 0, bdat);
        if (nsizes)
                fuzz_feed(&chunked, data + skip, size - skip, sizes, nsizes, bdat);
        else
                fuzz_feed(&chunked, data + skip, size - skip, &one, 1, bdat);

        FUZZ_CHECK(whole.consumed == chunked.consumed);
        FUZZ_CHECK(whole.out_len == chunked.out_len);
        FUZZ_CHECK(whole.out_len == 0 || memcmp(whole.out, chunked.out, whole.out_len) == 0);
        FUZZ_CHECK(whole.m.state == chunked.m.state);
        FUZZ_CHECK(whole.m.in_header == chunked.m.in_header);
        FUZZ_CHECK(whole.m.header_lines == chunked.m.header_lines);
        FUZZ_CHECK(whole.m.received == chunked.m.received);
        FUZZ_CHECK(whole.m.size == chunked.m.size);
        FUZZ_CHECK(whole.m.line_len == chunked.m.line_len);
        free(whole.out);
        free(chunked.out);
        return 0;
}
