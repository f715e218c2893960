/* hw-test-enqueue: commits a message read from stdin to a spool through
 * the real spool API, the way hw-receive does, and prints its queue id.
 *
 *   hw-test-enqueue [-n COUNT] SPOOL_DIR SENDER RCPT...
 *
 * SENDER "" stands for <>. With -n the same message is committed COUNT
 * times (benchmarks); each id is printed on its own line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"

static int enqueue_read_all(char **out, size_t *out_len)
{
        size_t len = 0, cap = 65536;
        char *buf = malloc(cap);

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;
                if (len == cap) {
                        char *p = realloc(buf, cap * 2);
                        if (!p) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = p;
                        cap *= 2;
                }
                n = read(0, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        free(buf);
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        *out = buf;
        *out_len = len;
        return 0;
}

int main(int argc, char **argv)
{
        struct spool spool;
        struct envelope env;
        struct spool_item *item;
        unsigned long count = 1;
        size_t len = 0;
        char *msg = NULL;
        int c, r;

        while ((c = getopt(argc, argv, "n:")) != -1) {
                if (c != 'n')
                        goto usage;
                count = strtoul(optarg, NULL, 10);
        }
        if (argc - optind < 3 || count == 0)
                goto usage;
        if ((r = enqueue_read_all(&msg, &len)) < 0 ||
            (r = spool_open(&spool, argv[optind])) < 0 ||
            (r = envelope_init(&env, (size_t)(argc - optind - 2))) < 0)
                goto fail;
        snprintf(env.sender, sizeof(env.sender), "%s", argv[optind + 1]);
        snprintf(env.remote_ip, sizeof(env.remote_ip), "127.0.0.1");
        snprintf(env.helo, sizeof(env.helo), "test.example");
        env.remote_port = 25;
        for (int i = optind + 2; i < argc; i++)
                if ((r = envelope_add_rcpt(&env, argv[i])) < 0)
                        goto fail;
        item = malloc(sizeof(*item));
        if (!item) {
                r = -ENOMEM;
                goto fail;
        }
        for (unsigned long i = 0; i < count; i++) {
                struct timespec ts;

                if ((r = spool_new_id(env.id)) < 0)
                        goto fail;
                clock_gettime(CLOCK_REALTIME, &ts);
                env.received_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
                if ((r = spool_create(&spool, &env, item)) < 0)
                        goto fail;
                if ((r = spool_write(item, msg, len)) < 0 || (r = spool_commit(item)) < 0) {
                        spool_abort(item);
                        goto fail;
                }
                printf("%s\n", env.id);
        }
        free(item);
        free(msg);
        envelope_free(&env);
        spool_close(&spool);
        return fflush(stdout) == 0 ? 0 : 1;
fail:
        fprintf(stderr, "hw-test-enqueue: %s\n", strerror(-r));
        return 1;
usage:
        fprintf(stderr, "usage: hw-test-enqueue [-n COUNT] SPOOL_DIR SENDER RCPT...\n");
        return 64;
}
