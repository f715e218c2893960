/*
 * The floor of a process-per-connection receiver, for the throughput
 * benchmark: started by the same launcher as hw-receive, it answers the
 * benchmark client's commands without parsing them and commits each message
 * exactly as spool_commit() does (create in tmp/, write, fsync, close,
 * rename into pending/, fsync pending/) before its 250. What it costs above
 * the disk ceiling is what one process per connection costs: no receiver
 * started this way can be faster on the same machine.
 *
 *   SPOOL_DIR=DIR floor        (DIR/tmp and DIR/pending are created)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define FLOOR_BUF 65536

static char floor_in[FLOOR_BUF], floor_out[1024];
static size_t floor_pos, floor_len, floor_out_len;

static int floor_write_all(int fd, const char *p, size_t len);

/* Replies wait until the input runs dry, as pipelining allows, so a
 * pipelined group costs one segment, as it does in hw-receive. */
static int floor_flush(void)
{
        int r = floor_write_all(1, floor_out, floor_out_len);

        floor_out_len = 0;
        return r;
}

static int floor_fill(void)
{
        ssize_t n;

        if (floor_flush() < 0)
                return -1;
        do
                n = read(0, floor_in, sizeof(floor_in));
        while (n < 0 && errno == EINTR);
        if (n <= 0)
                return -1;
        floor_pos = 0;
        floor_len = (size_t)n;
        return 0;
}

static int floor_write_all(int fd, const char *p, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static int floor_reply(const char *text)
{
        size_t len = strlen(text);

        if (len > sizeof(floor_out) - floor_out_len && floor_flush() < 0)
                return -1;
        memcpy(floor_out + floor_out_len, text, len);
        floor_out_len += len;
        return 0;
}

/* The first four bytes of the next command line; the rest is skipped. */
static int floor_command(char verb[5])
{
        size_t got = 0;

        for (;;) {
                if (floor_pos == floor_len && floor_fill() < 0)
                        return -1;
                char c = floor_in[floor_pos++];

                if (c == '\n')
                        break;
                if (got < 4)
                        verb[got++] = c;
        }
        verb[got] = '\0';
        return 0;
}

/* Copies the data to fd until CRLF.CRLF (dot-stuffing is not undone:
 * the client sends none). */
static int floor_data(int fd)
{
        static const char end[] = "\r\n.\r\n";
        size_t matched = 2;     /* the DATA line's CRLF */

        for (;;) {
                if (floor_pos == floor_len && floor_fill() < 0)
                        return -1;
                size_t start = floor_pos;

                while (floor_pos < floor_len && matched < 5) {
                        char c = floor_in[floor_pos++];

                        matched = c == end[matched] ? matched + 1 : (c == '\r' ? 1 : 0);
                }
                if (floor_write_all(fd, floor_in + start, floor_pos - start) < 0)
                        return -1;
                if (matched == 5)
                        return 0;
        }
}

static int floor_message(int tmp_fd, int pending_fd, unsigned long count)
{
        char name[64];
        int fd, r;

        snprintf(name, sizeof(name), "f%ld-%lu", (long)getpid(), count);
        fd = openat(tmp_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return -1;
        r = floor_data(fd);
        if (r == 0 && fsync(fd) < 0)
                r = -1;
        if (close(fd) < 0)
                r = -1;
        if (r == 0 && renameat(tmp_fd, name, pending_fd, name) < 0)
                r = -1;
        if (r == 0 && fsync(pending_fd) < 0)
                r = -1;
        return r;
}

static int floor_open_dir(int spool_fd, const char *name)
{
        if (mkdirat(spool_fd, name, 0700) < 0 && errno != EEXIST)
                return -1;
        return openat(spool_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int main(void)
{
        const char *dir = getenv("SPOOL_DIR");
        int spool_fd, tmp_fd, pending_fd;
        unsigned long count = 0;
        char verb[5];

        if (!dir) {
                fputs("floor: SPOOL_DIR is not set\n", stderr);
                return 78;
        }
        spool_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        tmp_fd = spool_fd < 0 ? -1 : floor_open_dir(spool_fd, "tmp");
        pending_fd = spool_fd < 0 ? -1 : floor_open_dir(spool_fd, "pending");
        if (tmp_fd < 0 || pending_fd < 0) {
                perror("floor: the spool");
                return 75;
        }
        if (floor_reply("220 floor ESMTP\r\n") < 0)
                return 0;
        while (floor_command(verb) == 0) {
                int r;

                if (strcasecmp(verb, "QUIT") == 0) {
                        if (floor_reply("221 2.0.0 Bye\r\n") == 0)
                                floor_flush();
                        break;
                }
                if (strcasecmp(verb, "DATA") != 0) {
                        r = floor_reply("250 2.0.0 Ok\r\n");
                } else if (floor_reply("354 Go ahead\r\n") < 0) {
                        r = -1;
                } else if (floor_message(tmp_fd, pending_fd, count++) < 0) {
                        perror("floor: commit");
                        r = floor_reply("451 4.3.0 Not stored\r\n");
                } else {
                        r = floor_reply("250 2.0.0 Ok: queued\r\n");
                }
                if (r < 0)
                        break;
        }
        return 0;
}
