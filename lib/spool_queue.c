/*
 * The queue side of the spool: the moves hw-flush makes (S2/S4 -> S3 ->
 * gone/S4/S5, S5 -> S2), the scans, the run lock and tmp/ cleaning.
 * The states and names are described at the top of spool.h.
 *
 * Durability of the moves: rename(2) within one file system is atomic, so
 * after a crash an item is under its old name or its new one, never lost.
 * The directory fsync only decides which of the two a crash leaves:
 *   - claim and done skip it: a claim undone by a crash leaves the item in
 *     pending/ or deferred/, a done undone by a crash means one more
 *     delivery, which at-least-once allows. These two run per message and
 *     an fsync each would bound delivery to the disk's flush rate.
 *   - defer, bury, recover and requeue fsync the target directory: they
 *     record a decision (a due time, a dead letter) an operator relies on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"

#define SPOOL_LOCK_NAME "flush.lock"
#define SPOOL_REASON_SUFFIX ".reason"

static bool spool_id_valid(const char *s, size_t len)
{
        if (len != HW_QID_LEN || s[16] != '-')
                return false;
        for (size_t i = 0; i < 16; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        for (size_t i = 17; i < HW_QID_LEN; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

/* A decimal number of at most 19 digits ending at end or at '.'. */
static int spool_parse_number(const char *s, const char **endp, uint64_t *out)
{
        uint64_t v = 0;
        size_t n = 0;

        while (s[n] >= '0' && s[n] <= '9') {
                if (n == 19)
                        return -EINVAL;
                v = v * 10 + (uint64_t)(s[n] - '0');
                n++;
        }
        if (n == 0)
                return -EINVAL;
        *endp = s + n;
        *out = v;
        return 0;
}

/* ".FIRST" at the end of a name, absent in names written before it was
 * recorded. */
static int spool_parse_first(const char **p, uint64_t *first)
{
        if (**p != '.')
                return 0;
        (*p)++;
        return spool_parse_number(*p, p, first);
}

int spool_entry_parse(enum spool_dir dir, const char *name, struct spool_entry *e)
{
        size_t len = strlen(name);
        const char *p;
        uint64_t attempts = 0, due = 0, first = 0;

        if (len < HW_QID_LEN || len >= sizeof(e->name) || !spool_id_valid(name, HW_QID_LEN))
                return -EINVAL;
        p = name + HW_QID_LEN;

        switch (dir) {
        case SPOOL_TMP:
        case SPOOL_PENDING:
        case SPOOL_DEAD:
                /* dead/ID.reason is the companion of an item, not an item */
                if (*p != '\0')
                        return -EINVAL;
                break;
        case SPOOL_PROCESSING:
                if (*p++ != '.' || spool_parse_number(p, &p, &attempts) < 0 ||
                    spool_parse_first(&p, &first) < 0 || *p != '\0')
                        return -EINVAL;
                break;
        case SPOOL_DEFERRED:
                if (*p++ != '.' || spool_parse_number(p, &p, &attempts) < 0 || *p++ != '.' ||
                    spool_parse_number(p, &p, &due) < 0 || spool_parse_first(&p, &first) < 0 ||
                    *p != '\0')
                        return -EINVAL;
                break;
        default:
                return -EINVAL;
        }
        if (attempts > UINT32_MAX || due > INT64_MAX || first > INT64_MAX)
                return -EINVAL;

        memcpy(e->id, name, HW_QID_LEN);
        e->id[HW_QID_LEN] = '\0';
        e->dir = dir;
        e->attempts = (unsigned)attempts;
        e->due_ms = (int64_t)due;
        e->first_ms = (int64_t)first;
        memcpy(e->name, name, len + 1);
        return 0;
}

/* The name of an item in dir; first_ms is written only when known. */
static int spool_entry_make(enum spool_dir dir, const char *id, unsigned attempts,
                            int64_t due_ms, int64_t first_ms, struct spool_entry *e)
{
        char first[24] = "";
        int n;

        memcpy(e->id, id, HW_QID_LEN);
        e->id[HW_QID_LEN] = '\0';
        e->dir = dir;
        e->attempts = attempts;
        e->due_ms = dir == SPOOL_DEFERRED ? due_ms : 0;
        e->first_ms = 0;
        if ((dir == SPOOL_PROCESSING || dir == SPOOL_DEFERRED) && first_ms > 0) {
                e->first_ms = first_ms;
                snprintf(first, sizeof(first), ".%" PRId64, first_ms);
        }
        switch (dir) {
        case SPOOL_PROCESSING:
                n = snprintf(e->name, sizeof(e->name), "%s.%u%s", e->id, attempts, first);
                break;
        case SPOOL_DEFERRED:
                n = snprintf(e->name, sizeof(e->name), "%s.%u.%" PRId64 "%s", e->id, attempts,
                             due_ms < 0 ? 0 : due_ms, first);
                break;
        default:
                n = snprintf(e->name, sizeof(e->name), "%s", e->id);
                break;
        }
        return n > 0 && (size_t)n < sizeof(e->name) ? 0 : -ENAMETOOLONG;
}

static int spool_fsync_dir(struct spool *s, enum spool_dir dir)
{
        return s->io->fsync(s->dir_fd[dir]) < 0 ? -errno : 0;
}

static int spool_move(struct spool *s, const struct spool_entry *from, const struct spool_entry *to)
{
        if (s->io->renameat2(s->dir_fd[from->dir], from->name, s->dir_fd[to->dir], to->name, 0) < 0)
                return -errno;
        return 0;
}

/* A directory stream of dir on a new open file description, so the
 * shared dir_fd's offset stays put. */
static int spool_opendir(struct spool *s, enum spool_dir dir, DIR **out)
{
        int fd = openat(s->dir_fd[dir], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        *out = fdopendir(fd);
        if (!*out) {
                int r = -errno;

                close(fd);
                return r;
        }
        return 0;
}

int spool_scan(struct spool *s, enum spool_dir dir,
               int (*fn)(const struct spool_entry *e, void *userdata), void *userdata)
{
        struct spool_entry e;
        struct dirent *de;
        DIR *d;
        int r = spool_opendir(s, dir, &d);

        if (r < 0)
                return r;
        for (;;) {
                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = -errno;
                        break;
                }
                if (de->d_name[0] == '.' || spool_entry_parse(dir, de->d_name, &e) < 0)
                        continue;
                r = fn(&e, userdata);
                if (r != 0)
                        break;
        }
        closedir(d);
        return r;
}

/* S2 -> S3, S4 -> S3 */
int spool_claim(struct spool *s, const struct spool_entry *e, int64_t attempt_ms,
                struct spool_entry *claimed, int *fd)
{
        int64_t first = e->first_ms;
        int r;

        if (e->dir != SPOOL_PENDING && e->dir != SPOOL_DEFERRED)
                return -EINVAL;
        /* An item tried before its first attempt was recorded keeps it
         * unknown rather than take this one's time. */
        if (first <= 0 && e->attempts == 0)
                first = attempt_ms;
        r = spool_entry_make(SPOOL_PROCESSING, e->id, e->attempts, 0, first, claimed);
        if (r < 0)
                return r;
        r = spool_move(s, e, claimed);
        if (r < 0)
                return r;
        *fd = openat(s->dir_fd[SPOOL_PROCESSING], claimed->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (*fd < 0)
                return -errno;  /* stays in processing/; the next run recovers it */
        return 0;
}

/* S3 -> gone */
int spool_done(struct spool *s, const struct spool_entry *e)
{
        if (e->dir != SPOOL_PROCESSING)
                return -EINVAL;
        if (unlinkat(s->dir_fd[SPOOL_PROCESSING], e->name, 0) < 0)
                return -errno;
        return 0;
}

/* S3 -> S4 */
int spool_defer(struct spool *s, const struct spool_entry *e, unsigned attempts, int64_t due_ms)
{
        struct spool_entry to;
        int r;

        if (e->dir != SPOOL_PROCESSING)
                return -EINVAL;
        r = spool_entry_make(SPOOL_DEFERRED, e->id, attempts, due_ms, e->first_ms, &to);
        if (r < 0)
                return r;
        r = spool_move(s, e, &to);
        if (r < 0)
                return r;
        return spool_fsync_dir(s, SPOOL_DEFERRED);
}

static int spool_write_file(struct spool *s, int dirfd, const char *name, const char *text)
{
        int fd, r;

        fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        r = spool_write_all(s->io, fd, text, strlen(text));
        if (r == 0 && s->io->fsync(fd) < 0)
                r = -errno;
        /* close is checked: some file systems report write errors only here */
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r < 0)
                unlinkat(dirfd, name, 0);
        return r;
}

static void spool_reason_time(int64_t ms, char *buf, size_t len)
{
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;

        if (ms <= 0 || !gmtime_r(&sec, &tm)) {
                snprintf(buf, len, "unknown");
                return;
        }
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* One "key: value" line; a value cannot break the format. */
static size_t spool_reason_put(char *buf, size_t len, size_t at, const char *key, const char *value)
{
        size_t vlen = strlen(value);
        int n;

        if (at + 1 >= len)
                return at;
        n = snprintf(buf + at, len - at, "%s: ", key);
        if (n < 0 || (size_t)n >= len - at)
                return len - 1;
        at += (size_t)n;
        n = snprintf(buf + at, len - at, "%s\n", value);
        if (n < 0 || (size_t)n >= len - at)
                n = (int)(len - at - 1);
        for (size_t i = at; i < at + (size_t)n && i < at + vlen; i++)
                if (buf[i] == '\r' || buf[i] == '\n')
                        buf[i] = '?';
        return at + (size_t)n;
}

void spool_reason_format(const struct spool_reason *why, char *buf, size_t len)
{
        char status[24], attempts[16], first[80], last[80];
        size_t at = 0;

        if (len == 0)
                return;
        buf[0] = '\0';
        if (why->status > 0)
                snprintf(status, sizeof(status), "%ld", why->status);
        else
                snprintf(status, sizeof(status), "none");
        snprintf(attempts, sizeof(attempts), "%u", why->attempts);
        spool_reason_time(why->first_ms, first, sizeof(first));
        spool_reason_time(why->last_ms, last, sizeof(last));
        at = spool_reason_put(buf, len, at, "status", status);
        at = spool_reason_put(buf, len, at, "error", why->error ? why->error : "");
        at = spool_reason_put(buf, len, at, "attempts", attempts);
        at = spool_reason_put(buf, len, at, "first-attempt", first);
        at = spool_reason_put(buf, len, at, "last-attempt", last);
        at = spool_reason_put(buf, len, at, "url", why->url ? why->url : "-");
        if (why->location && why->location[0])
                spool_reason_put(buf, len, at, "location", why->location);
}

/* S3 -> S5: the reason first, so a dead item always has its reason; a
 * reason left without its item by a crash is an orphan and is ignored. */
int spool_bury(struct spool *s, const struct spool_entry *e, const struct spool_reason *why)
{
        char reason_name[HW_QID_LEN + sizeof(SPOOL_REASON_SUFFIX)];
        char text[SPOOL_REASON_MAX];
        struct spool_entry to;
        int r;

        if (e->dir != SPOOL_PROCESSING)
                return -EINVAL;
        spool_reason_format(why, text, sizeof(text));
        snprintf(reason_name, sizeof(reason_name), "%s" SPOOL_REASON_SUFFIX, e->id);
        r = spool_write_file(s, s->dir_fd[SPOOL_DEAD], reason_name, text);
        if (r < 0)
                return r;
        r = spool_entry_make(SPOOL_DEAD, e->id, 0, 0, 0, &to);
        if (r < 0)
                return r;
        r = spool_move(s, e, &to);
        if (r < 0)
                return r;
        return spool_fsync_dir(s, SPOOL_DEAD);
}

struct spool_recover_ctx {
        struct spool *spool;
        int64_t now_ms;
        int error;
        unsigned count;
};

static int spool_recover_one(const struct spool_entry *e, void *userdata)
{
        struct spool_recover_ctx *ctx = userdata;
        struct spool_entry to;
        int r;

        /* The attempt that was running when the run died is not counted:
         * nobody knows whether it reached the webhook. */
        r = spool_entry_make(SPOOL_DEFERRED, e->id, e->attempts, ctx->now_ms, e->first_ms, &to);
        if (r == 0)
                r = spool_move(ctx->spool, e, &to);
        if (r < 0 && r != -ENOENT && ctx->error == 0)
                ctx->error = r;
        if (r == 0)
                ctx->count++;
        return 0;
}

/* S3 -> S4, due at once; only the holder of the run lock may call this. */
int spool_recover(struct spool *s, int64_t now_ms)
{
        struct spool_recover_ctx ctx = { .spool = s, .now_ms = now_ms };
        int r;

        r = spool_scan(s, SPOOL_PROCESSING, spool_recover_one, &ctx);
        if (r < 0)
                return r;
        if (ctx.error < 0)
                return ctx.error;
        if (ctx.count > 0) {
                r = spool_fsync_dir(s, SPOOL_DEFERRED);
                if (r < 0)
                        return r;
        }
        return (int)ctx.count;
}

/* S5 -> S2 */
int spool_requeue(struct spool *s, const char *id)
{
        char reason_name[HW_QID_LEN + sizeof(SPOOL_REASON_SUFFIX)];
        struct spool_entry from, to;
        int r;

        if (!spool_id_valid(id, strlen(id)))
                return -EINVAL;
        if (spool_entry_make(SPOOL_DEAD, id, 0, 0, 0, &from) < 0 ||
            spool_entry_make(SPOOL_PENDING, id, 0, 0, 0, &to) < 0)
                return -EINVAL;
        r = spool_move(s, &from, &to);
        if (r < 0)
                return r;
        r = spool_fsync_dir(s, SPOOL_PENDING);
        if (r < 0)
                return r;
        /* After the move: a crash in between leaves an ignored orphan. */
        snprintf(reason_name, sizeof(reason_name), "%s" SPOOL_REASON_SUFFIX, id);
        if (unlinkat(s->dir_fd[SPOOL_DEAD], reason_name, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int spool_dead_reason(struct spool *s, const char *id, char *buf, size_t len)
{
        char reason_name[HW_QID_LEN + sizeof(SPOOL_REASON_SUFFIX)];
        size_t done = 0;
        int fd, r = 0;

        if (len == 0 || !spool_id_valid(id, strlen(id)))
                return -EINVAL;
        snprintf(reason_name, sizeof(reason_name), "%s" SPOOL_REASON_SUFFIX, id);
        fd = openat(s->dir_fd[SPOOL_DEAD], reason_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        while (done + 1 < len) {
                ssize_t n = read(fd, buf + done, len - 1 - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                done += (size_t)n;
        }
        buf[done] = '\0';
        close(fd);
        return r;
}

struct spool_clean_ctx {
        struct spool *spool;
        int64_t cutoff_sec;
        unsigned count;
};

static int spool_clean_one(const struct spool_entry *e, void *userdata)
{
        struct spool_clean_ctx *ctx = userdata;
        int dirfd = ctx->spool->dir_fd[SPOOL_TMP];
        struct stat st;

        /* Untouched for hours: its session is gone (idle timeouts are minutes). */
        if (fstatat(dirfd, e->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;
        if ((int64_t)st.st_mtime < ctx->cutoff_sec && unlinkat(dirfd, e->name, 0) == 0)
                ctx->count++;
        return 0;
}

/* S1 -> gone, for items whose session died without spool_abort. */
int spool_clean_tmp(struct spool *s, int64_t now_ms)
{
        struct spool_clean_ctx ctx = {
                .spool = s,
                .cutoff_sec = now_ms / 1000 - HW_TMP_STALE_SEC,
        };
        int r;

        r = spool_scan(s, SPOOL_TMP, spool_clean_one, &ctx);
        return r < 0 ? r : (int)ctx.count;
}

int spool_lock(struct spool *s, bool wait)
{
        int fd;

        fd = openat(s->root_fd, SPOOL_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
                int r = -errno;
                if (r == -EINTR)
                        continue;
                close(fd);
                return r == -EWOULDBLOCK ? -EBUSY : r;
        }
        return fd;
}

/* Anything in pending/ that is not an item (an editor's backup, a file an
 * operator dropped there) does not wake hw-flush.path, whose glob matches
 * item names only, but it is not mail either: it goes to dead/ under its
 * own name, never replacing a file there, and is reported to the caller. */
int spool_evict_strays(struct spool *s, void (*report)(void *userdata, const char *name, int error),
                       void *userdata)
{
        struct spool_entry e;
        struct dirent *de;
        DIR *d;
        int count = 0, r = spool_opendir(s, SPOOL_PENDING, &d);

        if (r < 0)
                return r;
        while ((errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                    spool_entry_parse(SPOOL_PENDING, de->d_name, &e) == 0)
                        continue;
                /* stray -> dead/NAME */
                if (s->io->renameat2(s->dir_fd[SPOOL_PENDING], de->d_name, s->dir_fd[SPOOL_DEAD],
                                     de->d_name, RENAME_NOREPLACE) < 0) {
                        report(userdata, de->d_name, -errno);
                        continue;
                }
                report(userdata, de->d_name, 0);
                count++;
        }
        if (errno != 0)
                r = -errno;
        closedir(d);
        if (r >= 0 && count > 0)
                r = spool_fsync_dir(s, SPOOL_DEAD);
        return r < 0 ? r : count;
}
