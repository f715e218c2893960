/* libFuzzer target: envelope_read, the parser hw-flush runs on every
 * item file of the spool (the envelope block spool_create writes, then the
 * message). The input is the whole file, put in a memfd: envelope_read
 * reads with pread, as it does on the spool.
 *
 * Checked beyond "no crash": on success every field is NUL-terminated
 * inside its array, the id is a well-formed queue id, there is at least
 * one recipient, the body offset is just past the first empty line; and
 * writing the envelope out again in the spool's format and reading that
 * gives the same envelope. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "spool.h"

/* hw-flush starts with room for 4 recipients and lets the reader grow it. */
#define FUZZ_RCPT_CAPACITY 4

static int fuzz_fd = -1;

/* Replaces the memfd's contents with data. */
static void fuzz_file(const void *data, size_t size)
{
        const char *p = data;

        if (fuzz_fd < 0) {
                fuzz_fd = memfd_create("fuzz_envelope", MFD_CLOEXEC);
                FUZZ_CHECK(fuzz_fd >= 0);
        }
        FUZZ_CHECK(ftruncate(fuzz_fd, 0) == 0);
        for (size_t at = 0; at < size;) {
                ssize_t n = pwrite(fuzz_fd, p + at, size - at, (off_t)at);

                FUZZ_CHECK(n > 0 || (n < 0 && errno == EINTR));
                if (n > 0)
                        at += (size_t)n;
        }
}

static bool fuzz_terminated(const char *s, size_t size)
{
        return memchr(s, '\0', size) != NULL && !strchr(s, '\n');
}

#define FUZZ_MESSAGE "Subject: x\n\nbody\n\n"

/* The block as the spool's format spells it (see spool.h), then a
 * message; *len is the block's length. */
static char *fuzz_format(const struct envelope *env, size_t *len, size_t *total)
{
        size_t size = 1024 + env->rcpt_count * (HW_ADDR_MAX + 8), at;
        char *buf = malloc(size);

        FUZZ_CHECK(buf);
        at = (size_t)snprintf(buf, size,
                              "hw-spool 1\nid %s\nreceived %" PRId64 "\nremote-ip %s\n"
                              "remote-port %u\nhelo %s\ntls %s\nsender %s\n",
                              env->id, env->received_ms, env->remote_ip, env->remote_port,
                              env->helo, env->tls[0] ? env->tls : "-", env->sender);
        FUZZ_CHECK(at < size);
        for (size_t i = 0; i < env->rcpt_count; i++) {
                at += (size_t)snprintf(buf + at, size - at, "rcpt %s\n", env->rcpt[i]);
                FUZZ_CHECK(at < size);
        }
        buf[at++] = '\n';
        *len = at;
        *total = at + strlen(FUZZ_MESSAGE);
        FUZZ_CHECK(*total < size);
        memcpy(buf + at, FUZZ_MESSAGE, strlen(FUZZ_MESSAGE));
        return buf;
}

static bool fuzz_same(const struct envelope *a, const struct envelope *b)
{
        if (strcmp(a->id, b->id) != 0 || a->received_ms != b->received_ms ||
            strcmp(a->remote_ip, b->remote_ip) != 0 || a->remote_port != b->remote_port ||
            strcmp(a->helo, b->helo) != 0 || strcmp(a->tls, b->tls) != 0 ||
            strcmp(a->sender, b->sender) != 0 || a->rcpt_count != b->rcpt_count)
                return false;
        for (size_t i = 0; i < a->rcpt_count; i++)
                if (strcmp(a->rcpt[i], b->rcpt[i]) != 0)
                        return false;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct envelope env, back;
        off_t body = -1, back_body = -1;
        char *block;
        size_t len, total;
        int r;

        fuzz_file(data, size);
        FUZZ_CHECK(envelope_init(&env, FUZZ_RCPT_CAPACITY) == 0);
        r = envelope_read(fuzz_fd, &env, &body);
        FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
        if (r < 0) {
                envelope_free(&env);
                return 0;
        }

        FUZZ_CHECK(body >= 2 && (size_t)body <= size);
        FUZZ_CHECK(memcmp(data + body - 2, "\n\n", 2) == 0);
        FUZZ_CHECK(!memmem(data, (size_t)body - 1, "\n\n", 2));
        FUZZ_CHECK(strlen(env.id) == HW_QID_LEN && spool_id_time_ms(env.id) >= 0);
        FUZZ_CHECK(fuzz_terminated(env.remote_ip, sizeof(env.remote_ip)));
        FUZZ_CHECK(fuzz_terminated(env.helo, sizeof(env.helo)));
        FUZZ_CHECK(fuzz_terminated(env.tls, sizeof(env.tls)));
        FUZZ_CHECK(fuzz_terminated(env.sender, sizeof(env.sender)));
        FUZZ_CHECK(env.rcpt_count >= 1 && env.rcpt_count <= env.rcpt_capacity);
        for (size_t i = 0; i < env.rcpt_count; i++)
                FUZZ_CHECK(fuzz_terminated(env.rcpt[i], sizeof(env.rcpt[i])));

        /* Round trip, with a message after the block that must not matter. */
        block = fuzz_format(&env, &len, &total);
        fuzz_file(block, total);
        FUZZ_CHECK(envelope_init(&back, FUZZ_RCPT_CAPACITY) == 0);
        FUZZ_CHECK(envelope_read(fuzz_fd, &back, &back_body) == 0);
        FUZZ_CHECK(back_body == (off_t)len && fuzz_same(&env, &back));
        envelope_free(&back);
        free(block);
        envelope_free(&env);
        return 0;
}
