/*
 * journal.c against libsystemd: the same records sent by journal_send()
 * and by sd_journal_sendv() must reach the journal socket as the same
 * bytes. The test runs in its own user and mount namespaces, with a tmpfs
 * on /run, so it owns /run/systemd/journal/socket whatever the machine
 * runs; where namespaces are not allowed it is skipped (exit 77).
 */
/* sd_journal_sendv() would add CODE_FILE=, CODE_LINE= and CODE_FUNC=. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "journal.h"

#define SKIP 77
/* A field from a string literal, which may hold NUL bytes. */
#define FIELD(s) { (void *)(s), sizeof(s) - 1 }

static int write_file(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -1;
        n = write(fd, text, strlen(text));
        if (close(fd) < 0 || n != (ssize_t)strlen(text))
                return -1;
        return 0;
}

/* Our own /run, as root of a user namespace mapped to the caller. */
static int enter_namespaces(void)
{
        char map[64];
        uid_t uid = getuid();
        gid_t gid = getgid();

        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                return -1;
        snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
        if (write_file("/proc/self/uid_map", map) < 0 ||
            write_file("/proc/self/setgroups", "deny\n") < 0)
                return -1;
        snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
        if (write_file("/proc/self/gid_map", map) < 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", "/run", "tmpfs", 0, "size=1m,mode=0755") < 0 ||
            mkdir("/run/systemd", 0755) < 0 || mkdir("/run/systemd/journal", 0755) < 0)
                return -1;
        return 0;
}

static int listen_journal(void)
{
        struct sockaddr_un addr = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET };
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
                return -1;
        return fd;
}

/* The bytes around the first difference. */
static void dump(const char *who, const unsigned char *p, ssize_t n, ssize_t at)
{
        ssize_t from = at > 16 ? at - 16 : 0;

        fprintf(stderr, "  %s, %zd bytes; from offset %zd:", who, n, from);
        for (ssize_t i = from; i < n && i < from + 48; i++)
                fprintf(stderr, " %02x", p[i]);
        fputc('\n', stderr);
}

/* One record both ways; 0 when the datagrams are equal. */
static int compare(int fd, const char *name, const struct iovec *fields, size_t n)
{
        static unsigned char ours[JOURNAL_RECORD_MAX], theirs[JOURNAL_RECORD_MAX];
        ssize_t ours_len, theirs_len;
        int r;

        r = journal_send(fields, n);
        if (r < 0) {
                fprintf(stderr, "differential: %s: journal_send: %s\n", name, strerror(-r));
                return -1;
        }
        ours_len = recv(fd, ours, sizeof(ours), MSG_DONTWAIT);
        r = sd_journal_sendv(fields, (int)n);
        if (r < 0) {
                fprintf(stderr, "differential: %s: sd_journal_sendv: %s\n", name, strerror(-r));
                return -1;
        }
        theirs_len = recv(fd, theirs, sizeof(theirs), MSG_DONTWAIT);
        if (ours_len < 0 || theirs_len < 0) {
                fprintf(stderr, "differential: %s: no datagram: %s\n", name, strerror(errno));
                return -1;
        }
        if (ours_len != theirs_len || memcmp(ours, theirs, (size_t)ours_len) != 0) {
                ssize_t at = 0;

                while (at < ours_len && at < theirs_len && ours[at] == theirs[at])
                        at++;
                fprintf(stderr, "differential: %s: the records differ at byte %zd\n", name, at);
                dump("journal_send", ours, ours_len, at);
                dump("sd_journal_sendv", theirs, theirs_len, at);
                return -1;
        }
        printf("ok: %s (%zd bytes)\n", name, ours_len);
        return 0;
}

int main(void)
{
        static char big[8192];
        struct iovec plain[] = {
                FIELD("MESSAGE=1795268546309897-51423d008834f786: accepted"),
                FIELD("PRIORITY=6"),
                FIELD("SYSLOG_IDENTIFIER=hw-receive"),
                FIELD("HW_QUEUE_ID=1795268546309897-51423d008834f786"),
                FIELD("HW_EMPTY="),
        };
        struct iovec binary[] = {
                FIELD("MESSAGE=first line\nsecond line"),
                FIELD("SYSLOG_IDENTIFIER=differential"),
                FIELD("HW_BYTES=\0\xff\r\n="),
                FIELD("HW_UTF8=d\xc3\xa9j\xc3\xa0"),
        };
        struct iovec large[] = { { big, sizeof(big) }, FIELD("SYSLOG_IDENTIFIER=differential") };
        int fd, failed = 0;

        if (enter_namespaces() < 0) {
                printf("differential: skipped: no user and mount namespace here (%s)\n", strerror(errno));
                return SKIP;
        }
        fd = listen_journal();
        if (fd < 0) {
                perror("differential: " JOURNAL_SOCKET);
                return 1;
        }
        memcpy(big, "HW_LARGE=", 9);
        for (size_t i = 9; i < sizeof(big); i++)
                big[i] = (char)('a' + i % 26);
        big[100] = '\n';

        failed |= compare(fd, "plain fields", plain, sizeof(plain) / sizeof(plain[0]));
        failed |= compare(fd, "newlines and binary", binary, sizeof(binary) / sizeof(binary[0]));
        failed |= compare(fd, "an 8 KiB field", large, 2);
        return failed ? 1 : 0;
}
