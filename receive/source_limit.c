/* Per-source connection slots: see source_limit.h for the files and locks.
 * Everything here is non-blocking: a source over its limit costs a session
 * a few system calls, and nobody else waits for it. */
#include "source_limit.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Files left by sessions that were killed are removed when this old (a
 * live file is never removed: its slots are locked). The age only spares
 * files that are about to be used again. */
#define SOURCE_LIMIT_STALE_SEC 600
/* Entries looked at per sweep, so that a sweep has a bounded cost. */
#define SOURCE_LIMIT_SWEEP_MAX 4096
/* A file removed under us is retried; more than this is not a race. */
#define SOURCE_LIMIT_TRIES 8
/* The pause before looking again at a file whose remover is at work. */
#define SOURCE_LIMIT_PAUSE_NS 1000000

int source_limit_key(const char *ip, char key[SOURCE_LIMIT_KEY_MAX])
{
        unsigned char a[16];

        if (inet_pton(AF_INET, ip, a) == 1) {
                snprintf(key, SOURCE_LIMIT_KEY_MAX, "4-%02x%02x%02x%02x", a[0], a[1], a[2], a[3]);
                return 0;
        }
        if (inet_pton(AF_INET6, ip, a) != 1)
                return -EINVAL;
        /* IPv4-mapped: the same source as the IPv4 address. */
        if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
                snprintf(key, SOURCE_LIMIT_KEY_MAX, "4-%02x%02x%02x%02x", a[12], a[13], a[14], a[15]);
                return 0;
        }
        snprintf(key, SOURCE_LIMIT_KEY_MAX, "6-%02x%02x%02x%02x%02x%02x%02x%02x",
                 a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
        return 0;
}

static bool source_limit_is_key(const char *name)
{
        size_t n = strlen(name);

        if (!((name[0] == '4' && n == 10) || (name[0] == '6' && n == 18)) || name[1] != '-')
                return false;
        return strspn(name + 2, "0123456789abcdef") == n - 2;
}

/* A write lock on the whole file: no session holds a slot in it. */
static int source_limit_lock_all(int fd)
{
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

        return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* Removes name when fd (open on it) holds the whole file and name still
 * is that file: only a holder of the whole file may unlink it. */
static int source_limit_remove(int dir_fd, const char *name, int fd)
{
        struct stat mine, now;

        if (source_limit_lock_all(fd) < 0)
                return -EBUSY;
        if (fstat(fd, &mine) < 0 || fstatat(dir_fd, name, &now, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (mine.st_dev != now.st_dev || mine.st_ino != now.st_ino)
                return 0;
        return unlinkat(dir_fd, name, 0) < 0 ? -errno : 0;
}

/* Files of sources whose last session was killed. Errors are ignored: a
 * file left now is looked at again by the next sweep. */
static void source_limit_sweep(int dir_fd)
{
        time_t now = time(NULL);
        struct dirent *de;
        unsigned seen = 0;
        int fd = dup(dir_fd);
        DIR *d;

        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        while ((de = readdir(d)) && seen++ < SOURCE_LIMIT_SWEEP_MAX) {
                struct stat st;
                int f;

                if (!source_limit_is_key(de->d_name) ||
                    fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode) || now - st.st_mtime < SOURCE_LIMIT_STALE_SEC)
                        continue;
                f = openat(dir_fd, de->d_name, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
                if (f < 0)
                        continue;
                (void)source_limit_remove(dir_fd, de->d_name, f);
                close(f);
        }
        closedir(d);
}

static int source_limit_open_dir(int root_fd)
{
        int fd = openat(root_fd, SOURCE_LIMIT_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

        if (fd >= 0 || errno != ENOENT)
                return fd < 0 ? -errno : fd;
        /* Made here too, so that a spool made before this directory existed
         * (or moved by SPOOL_DIR) works without tmpfiles.d. */
        if (mkdirat(root_fd, SOURCE_LIMIT_DIR, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(root_fd, SOURCE_LIMIT_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        return fd < 0 ? -errno : fd;
}

/* Whether a remover holds all of fd's file: its lock makes every slot look
 * taken, but the file is on its way out (slot holders lock one byte). */
static bool source_limit_being_removed(int fd)
{
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

        return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK && fl.l_start == 0 && fl.l_len == 0;
}

/* One try: 1 with a slot, 0 when the file was removed under us or is
 * being removed (try again), -EBUSY when all are taken, another -errno on
 * an error. */
static int source_limit_try(struct source_limit *l, unsigned max, bool *created)
{
        struct stat st;
        int fd, r = -EBUSY;

        *created = false;
        fd = openat(l->dir_fd, l->key, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0 && errno == ENOENT) {
                fd = openat(l->dir_fd, l->key, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                if (fd < 0 && errno == EEXIST)
                        return 0;
                *created = fd >= 0;
        }
        if (fd < 0)
                return -errno;
        for (unsigned i = 0; i < max; i++) {
                struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = i, .l_len = 1 };

                if (fcntl(fd, F_OFD_SETLK, &fl) == 0) {
                        r = 1;
                        break;
                }
                if (errno != EAGAIN && errno != EACCES) {
                        r = -errno;
                        break;
                }
        }
        /* A file that was unlinked while we opened it counts for nobody. */
        if (r == 1 || r == -EBUSY) {
                if (fstat(fd, &st) < 0)
                        r = -errno;
                else if (st.st_nlink == 0)
                        r = 0;
        }
        if (r == -EBUSY && source_limit_being_removed(fd)) {
                const struct timespec pause = { .tv_nsec = SOURCE_LIMIT_PAUSE_NS };

                nanosleep(&pause, NULL);
                r = 0;
        }
        if (r == 1)
                l->fd = fd;
        else
                close(fd);
        return r;
}

int source_limit_acquire(struct source_limit *l, int spool_root_fd, const char *ip, unsigned max)
{
        bool created = false;
        int r;

        l->dir_fd = l->fd = -1;
        l->key[0] = '\0';
        if (max == 0 || source_limit_key(ip, l->key) < 0)
                return 0;
        r = source_limit_open_dir(spool_root_fd);
        if (r < 0)
                return r;
        l->dir_fd = r;
        for (int i = 0; i < SOURCE_LIMIT_TRIES; i++) {
                r = source_limit_try(l, max, &created);
                if (r != 0)
                        break;
        }
        /* Still being removed after all the tries: only another process of
         * the spool's user can hold a file that long, never a client, so
         * the session goes on without a slot rather than be refused. */
        if (r == 0) {
                close(l->dir_fd);
                l->dir_fd = -1;
                return 0;
        }
        if (r > 0 && created)
                source_limit_sweep(l->dir_fd);
        if (r < 0) {
                close(l->dir_fd);
                l->dir_fd = -1;
                return r;
        }
        return 0;
}

void source_limit_release(struct source_limit *l)
{
        if (l->fd >= 0) {
                /* The last session of its source takes the file along. */
                (void)source_limit_remove(l->dir_fd, l->key, l->fd);
                close(l->fd);
        }
        if (l->dir_fd >= 0)
                close(l->dir_fd);
        l->fd = l->dir_fd = -1;
}
