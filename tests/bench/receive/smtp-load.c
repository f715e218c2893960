/* A fast SMTP load client for the throughput benchmark: CONC threads, each
 * opening connections one after another for SECONDS and sending PER_CONN
 * messages of SIZE bytes on each (MAIL, RCPT and DATA pipelined, as
 * RFC 2920 allows; the message after the 354). A message counts when its
 * final dot got a 250; anything else stops the run with an error. With -b
 * the message goes as one BDAT LAST chunk (RFC 3030), pipelined with the
 * envelope, and counts when that chunk got its 250.
 *
 *   smtp-load [-b] [-c CONC] [-m PER_CONN] [-d SECONDS] [-s SIZE] HOST PORT
 *
 * Prints one line: messages, connections, seconds, messages per second and
 * the client's own CPU time per message. */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOAD_CONC_MAX 256
#define LOAD_SIZE_MAX (32 * 1024 * 1024)
#define LOAD_TIMEOUT_S 30                  /* per read or write */
#define LOAD_REPLY_MAX 4096

struct load_shared {
        struct addrinfo *addr;
        const char *message;               /* SIZE bytes, CRLF lines, then ".\r\n" */
        size_t message_len;
        bool bdat;                         /* -b: BDAT LAST instead of DATA */
        char bdat_envelope[160];           /* MAIL, RCPT and the BDAT command */
        long per_conn;
        double deadline;
        pthread_barrier_t start;
};

struct load_worker {
        pthread_t thread;
        struct load_shared *shared;
        unsigned long messages;
        unsigned long connections;
        char error[256];
};

struct load_conn {
        int fd;
        char buf[LOAD_REPLY_MAX];
        size_t pos, len;
};

static double load_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int load_send(struct load_conn *c, const char *p, size_t len)
{
        while (len) {
                ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Reads one whole reply (all its lines) and returns its code. */
static int load_reply(struct load_conn *c, char *text, size_t text_size)
{
        char line[LOAD_REPLY_MAX];
        size_t line_len = 0;

        for (;;) {
                if (c->pos == c->len) {
                        ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);

                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return -errno;
                        if (n == 0)
                                return -ECONNRESET;
                        c->pos = 0;
                        c->len = (size_t)n;
                }
                char ch = c->buf[c->pos++];

                if (line_len < sizeof(line) - 1)
                        line[line_len++] = ch;
                if (ch != '\n')
                        continue;
                line[line_len] = '\0';
                if (line_len < 4)
                        return -EBADMSG;
                if (line[3] == '-') {
                        line_len = 0;
                        continue;
                }
                snprintf(text, text_size, "%s", line);
                return atoi(line);
        }
}

static int load_expect(struct load_worker *w, struct load_conn *c, int want, const char *after)
{
        char text[LOAD_REPLY_MAX];
        int code = load_reply(c, text, sizeof(text));

        if (code == want)
                return 0;
        if (code < 0)
                snprintf(w->error, sizeof(w->error), "after %s: %s", after, strerror(-code));
        else
                snprintf(w->error, sizeof(w->error), "after %s: %.200s", after, text);
        return -EPROTO;
}

static int load_connect(struct load_worker *w, struct load_conn *c)
{
        const struct addrinfo *ai = w->shared->addr;
        struct timeval tv = { .tv_sec = LOAD_TIMEOUT_S };

        c->pos = c->len = 0;
        c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (c->fd < 0 ||
            setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
            connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                snprintf(w->error, sizeof(w->error), "connect: %s", strerror(errno));
                if (c->fd >= 0)
                        close(c->fd);
                return -errno;
        }
        return 0;
}

/* One connection: greeting, EHLO, up to per_conn messages, QUIT. */
static int load_session(struct load_worker *w)
{
        static const char envelope[] =
                "MAIL FROM:<bench@example.org> SIZE=4096\r\n"
                "RCPT TO:<rcpt@example.com>\r\n"
                "DATA\r\n";
        const struct load_shared *sh = w->shared;
        struct load_conn c;
        int r;

        r = load_connect(w, &c);
        if (r < 0)
                return r;
        w->connections++;
        r = load_expect(w, &c, 220, "connect");
        if (r == 0)
                r = load_send(&c, "EHLO bench.example.org\r\n", 24);
        if (r == 0)
                r = load_expect(w, &c, 250, "EHLO");
        for (long i = 0; r == 0 && i < sh->per_conn && load_now() < sh->deadline; i++) {
                if (sh->bdat) {
                        /* The chunk is the message without DATA's final dot. */
                        r = load_send(&c, sh->bdat_envelope, strlen(sh->bdat_envelope));
                        if (r == 0)
                                r = load_send(&c, sh->message, sh->message_len - 3);
                        if (r == 0)
                                r = load_expect(w, &c, 250, "MAIL");
                        if (r == 0)
                                r = load_expect(w, &c, 250, "RCPT");
                        if (r == 0)
                                r = load_expect(w, &c, 250, "BDAT LAST");
                        if (r == 0)
                                w->messages++;
                        continue;
                }
                r = load_send(&c, envelope, sizeof(envelope) - 1);
                if (r == 0)
                        r = load_expect(w, &c, 250, "MAIL");
                if (r == 0)
                        r = load_expect(w, &c, 250, "RCPT");
                if (r == 0)
                        r = load_expect(w, &c, 354, "DATA");
                if (r == 0)
                        r = load_send(&c, sh->message, sh->message_len);
                if (r == 0)
                        r = load_expect(w, &c, 250, "the final dot");
                if (r == 0)
                        w->messages++;
        }
        if (r == 0)
                r = load_send(&c, "QUIT\r\n", 6);
        if (r == 0)
                r = load_expect(w, &c, 221, "QUIT");
        if (r < 0 && !w->error[0])
                snprintf(w->error, sizeof(w->error), "send: %s", strerror(-r));
        close(c.fd);
        return r;
}

static void *load_worker_main(void *arg)
{
        struct load_worker *w = arg;

        pthread_barrier_wait(&w->shared->start);
        while (load_now() < w->shared->deadline)
                if (load_session(w) < 0)
                        break;
        return NULL;
}

/* SIZE bytes of a plain message in CRLF lines, then the final dot. */
static char *load_message(size_t size, size_t *len)
{
        static const char head[] =
                "From: Bench <bench@example.org>\r\n"
                "To: <rcpt@example.com>\r\n"
                "Subject: throughput benchmark\r\n"
                "\r\n";
        char *m = malloc(size + 3 + sizeof(head));
        size_t at;

        if (!m)
                return NULL;
        memcpy(m, head, sizeof(head) - 1);
        at = sizeof(head) - 1;
        while (at < size) {
                /* Lines of up to 78 characters; the last one fills the size. */
                size_t line = size - at > 80 ? 78 : size - at - 2;

                for (size_t i = 0; i < line; i++)
                        m[at + i] = (char)('a' + (at + i) % 26);
                at += line;
                m[at++] = '\r';
                m[at++] = '\n';
        }
        memcpy(m + at, ".\r\n", 3);
        *len = at + 3;
        return m;
}

int main(int argc, char **argv)
{
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
        struct load_worker *workers;
        struct load_shared sh = { .per_conn = 1 };
        unsigned long messages = 0, connections = 0;
        double seconds = 5, t0, elapsed, cpu_ms;
        struct rusage ru;
        size_t size = 4096;
        int conc = 1, opt, r, failed = 0;

        while ((opt = getopt(argc, argv, "bc:m:d:s:")) != -1) {
                switch (opt) {
                case 'b':
                        sh.bdat = true;
                        break;
                case 'c':
                        conc = atoi(optarg);
                        break;
                case 'm':
                        sh.per_conn = strtol(optarg, NULL, 10);
                        break;
                case 'd':
                        seconds = atof(optarg);
                        break;
                case 's':
                        size = (size_t)strtoul(optarg, NULL, 10);
                        break;
                default:
                        goto usage;
                }
        }
        if (optind + 2 != argc || conc < 1 || conc > LOAD_CONC_MAX || sh.per_conn < 1 ||
            seconds <= 0 || seconds > 600 || size < 128 || size > LOAD_SIZE_MAX)
                goto usage;
        r = getaddrinfo(argv[optind], argv[optind + 1], &hints, &sh.addr);
        if (r != 0) {
                fprintf(stderr, "smtp-load: %s: %s\n", argv[optind], gai_strerror(r));
                return 1;
        }
        sh.message = load_message(size, &sh.message_len);
        if (sh.message)
                snprintf(sh.bdat_envelope, sizeof(sh.bdat_envelope),
                         "MAIL FROM:<bench@example.org> SIZE=%zu\r\nRCPT TO:<rcpt@example.com>\r\n"
                         "BDAT %zu LAST\r\n", sh.message_len - 3, sh.message_len - 3);
        workers = calloc((size_t)conc, sizeof(*workers));
        if (!sh.message || !workers) {
                perror("smtp-load");
                return 1;
        }
        pthread_barrier_init(&sh.start, NULL, (unsigned)conc + 1);
        sh.deadline = load_now() + 3600;   /* set for real once all are up */
        for (int i = 0; i < conc; i++) {
                workers[i].shared = &sh;
                r = pthread_create(&workers[i].thread, NULL, load_worker_main, &workers[i]);
                if (r != 0) {
                        fprintf(stderr, "smtp-load: thread: %s\n", strerror(r));
                        return 1;
                }
        }
        t0 = load_now();
        sh.deadline = t0 + seconds;
        pthread_barrier_wait(&sh.start);
        for (int i = 0; i < conc; i++) {
                pthread_join(workers[i].thread, NULL);
                messages += workers[i].messages;
                connections += workers[i].connections;
                if (workers[i].error[0]) {
                        fprintf(stderr, "smtp-load: connection %d: %s\n", i, workers[i].error);
                        failed = 1;
                }
        }
        elapsed = load_now() - t0;
        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 1;
        cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
        printf("concurrency=%d per_conn=%ld size=%zu command=%s messages=%lu connections=%lu seconds=%.2f "
               "msgs_per_s=%.1f client_cpu_ms_per_msg=%.3f\n",
               conc, sh.per_conn, size, sh.bdat ? "BDAT" : "DATA", messages, connections, elapsed,
               messages / elapsed,
               messages ? cpu_ms / messages : 0);
        freeaddrinfo(sh.addr);
        return failed;
usage:
        fprintf(stderr, "Usage: smtp-load [-b] [-c CONC] [-m PER_CONN] [-d SECONDS] [-s SIZE] HOST PORT\n");
        return 2;
}
