/* Runs a fuzz target's LLVMFuzzerTestOneInput on saved inputs without
 * libFuzzer, so make check replays the seed corpora with the normal
 * compiler. Arguments are files or directories (one level: a corpus).
 * Each input gets a buffer of exactly its size, so a sanitizer or
 * valgrind sees any read past it. Exit 1 on an unreadable input or when
 * no input was found at all (a corpus that went missing). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Reads the whole file at path into a malloc'd buffer of its size. */
static int replay_read(const char *path, uint8_t **data, size_t *size)
{
        struct stat st;
        uint8_t *buf;
        size_t len = 0;
        int fd, err;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                err = -errno;
                close(fd);
                return err;
        }
        /* malloc(0) may return NULL: one byte keeps NULL for failure. */
        buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        while (len < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        err = n < 0 ? -errno : -EIO;    /* shrank while read */
                        free(buf);
                        close(fd);
                        return err;
                }
                len += (size_t)n;
        }
        if (close(fd) < 0) {
                err = -errno;
                free(buf);
                return err;
        }
        *data = buf;
        *size = len;
        return 0;
}

static int replay_file(const char *path, unsigned *count)
{
        uint8_t *data = NULL;
        size_t size = 0;
        int r = replay_read(path, &data, &size);

        if (r < 0) {
                fprintf(stderr, "replay: %s: %s\n", path, strerror(-r));
                return r;
        }
        /* Named first: if the target aborts, the log says on what. */
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, size);
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        (*count)++;
        return 0;
}

static int replay_dir(const char *dir, unsigned *count)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        int r = 0;

        if (!d) {
                r = -errno;
                fprintf(stderr, "replay: %s: %s\n", dir, strerror(-r));
                return r;
        }
        for (;;) {
                char path[PATH_MAX];
                struct stat st;

                errno = 0;
                de = readdir(d);
                if (!de)
                        break;
                if (de->d_name[0] == '.')
                        continue;
                if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path)) {
                        fprintf(stderr, "replay: %s/%s: name too long\n", dir, de->d_name);
                        r = -ENAMETOOLONG;
                        continue;
                }
                if (stat(path, &st) < 0) {
                        r = -errno;
                        fprintf(stderr, "replay: %s: %s\n", path, strerror(-r));
                        continue;
                }
                if (S_ISREG(st.st_mode) && replay_file(path, count) < 0)
                        r = -EIO;
        }
        if (errno != 0) {
                r = -errno;
                fprintf(stderr, "replay: %s: %s\n", dir, strerror(-r));
        }
        if (closedir(d) < 0) {
                r = -errno;
                fprintf(stderr, "replay: %s: %s\n", dir, strerror(-r));
        }
        return r;
}

int main(int argc, char **argv)
{
        unsigned count = 0;
        int failed = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
                        failed = 1;
                } else if (S_ISDIR(st.st_mode) ? replay_dir(argv[i], &count) < 0
                                               : replay_file(argv[i], &count) < 0) {
                        failed = 1;
                }
        }
        printf("%s: %u inputs replayed\n", argc > 0 ? argv[0] : "replay", count);
        return failed || count == 0 ? 1 : 0;
}
