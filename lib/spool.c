/* The spool's layout, queue ids, the envelope block and the receive side
 * (S1 -> S2). The format and the states are described in spool.h. */
#include "spool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define SPOOL_MAGIC "hw-spool 1\n"
/* The largest envelope block: HW_RCPT_LIMIT recipients and the rest. */
#define ENVELOPE_MAX (16 * 1024 + HW_RCPT_LIMIT * (HW_ADDR_MAX + 8))

static const char *const spool_dir_names[SPOOL_DIR_COUNT] = {
        [SPOOL_TMP] = "tmp",
        [SPOOL_PENDING] = "pending",
        [SPOOL_PROCESSING] = "processing",
        [SPOOL_DEFERRED] = "deferred",
        [SPOOL_DEAD] = "dead",
};

static int spool_sys_fsync(int fd)
{
        return fsync(fd);
}

const struct spool_io spool_io_system = {
        .write = write,
        .fsync = spool_sys_fsync,
        .renameat2 = renameat2,
};

const char *spool_dir_name(enum spool_dir dir)
{
        return spool_dir_names[dir];
}

/* Opens a spool directory, creating it only when missing: the common case
 * (it exists) costs one system call per directory and connection. */
static int spool_open_dir(int parent_fd, const char *name)
{
        int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0 && errno == ENOENT) {
                if (mkdirat(parent_fd, name, 0700) < 0 && errno != EEXIST)
                        return -errno;
                fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        return fd < 0 ? -errno : fd;
}

int spool_open(struct spool *s, const char *root)
{
        int r;

        s->io = &spool_io_system;
        for (int i = 0; i < SPOOL_DIR_COUNT; i++)
                s->dir_fd[i] = -1;
        s->root_fd = spool_open_dir(AT_FDCWD, root);
        if (s->root_fd < 0)
                return s->root_fd;
        for (int i = 0; i < SPOOL_DIR_COUNT; i++) {
                r = spool_open_dir(s->root_fd, spool_dir_names[i]);
                if (r < 0) {
                        spool_close(s);
                        return r;
                }
                s->dir_fd[i] = r;
        }
        return 0;
}

void spool_close(struct spool *s)
{
        for (int i = 0; i < SPOOL_DIR_COUNT; i++) {
                if (s->dir_fd[i] >= 0)
                        close(s->dir_fd[i]);
                s->dir_fd[i] = -1;
        }
        if (s->root_fd >= 0)
                close(s->root_fd);
        s->root_fd = -1;
}

int spool_free_space(const struct spool *s, uint64_t *free_bytes, uint64_t *free_inodes)
{
        struct statvfs st;

        if (fstatvfs(s->root_fd, &st) < 0)
                return -errno;
        *free_bytes = (uint64_t)st.f_bavail * st.f_frsize;
        /* File systems that allocate inodes as they go (btrfs) report 0. */
        *free_inodes = st.f_files ? (uint64_t)st.f_favail : UINT64_MAX;
        return 0;
}

ssize_t spool_note_read(const struct spool *s, const char *name, char *buf, size_t size)
{
        size_t have = 0;
        int fd = openat(s->root_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r = 0;

        if (fd < 0)
                return -errno;
        while (have + 1 < size) {
                ssize_t n = read(fd, buf + have, size - 1 - have);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                have += (size_t)n;
        }
        close(fd);
        buf[have] = '\0';
        return r < 0 ? r : (ssize_t)have;
}

int spool_note_write(const struct spool *s, const char *name, const char *text)
{
        char tmp[NAME_MAX + 1];
        int fd, r;

        /* The process id keeps concurrent writers off each other's file. */
        if ((size_t)snprintf(tmp, sizeof(tmp), ".%s.%ld", name, (long)getpid()) >= sizeof(tmp))
                return -ENAMETOOLONG;
        fd = openat(s->root_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        r = spool_write_all(s->io, fd, text, strlen(text));
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && renameat(s->root_fd, tmp, s->root_fd, name) < 0)
                r = -errno;
        if (r < 0)
                unlinkat(s->root_fd, tmp, 0);
        return r;
}

int spool_note_remove(const struct spool *s, const char *name)
{
        if (unlinkat(s->root_fd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int spool_new_id(char id[HW_QID_LEN + 1])
{
        struct timespec now;
        uint64_t random_bits;

        if (clock_gettime(CLOCK_REALTIME, &now) < 0)
                return -errno;
        if (getrandom(&random_bits, sizeof(random_bits), 0) != sizeof(random_bits))
                return -EIO;
        snprintf(id, HW_QID_LEN + 1, "%016" PRIu64 "-%016" PRIx64,
                 (uint64_t)now.tv_sec * 1000000 + (uint64_t)now.tv_nsec / 1000, random_bits);
        return 0;
}

int64_t spool_id_time_ms(const char *id)
{
        int64_t us = 0;

        for (int i = 0; i < 16; i++) {
                if (!isdigit((unsigned char)id[i]))
                        return -1;
                us = us * 10 + (id[i] - '0');
        }
        if (id[16] != '-')
                return -1;
        for (int i = 17; i < HW_QID_LEN; i++)
                if (!isxdigit((unsigned char)id[i]) || isupper((unsigned char)id[i]))
                        return -1;
        return us / 1000;
}

int envelope_init(struct envelope *env, size_t rcpt_capacity)
{
        memset(env, 0, sizeof(*env));
        env->rcpt = calloc(rcpt_capacity ? rcpt_capacity : 1, sizeof(*env->rcpt));
        if (!env->rcpt)
                return -ENOMEM;
        env->rcpt_capacity = rcpt_capacity;
        return 0;
}

int envelope_add_rcpt(struct envelope *env, const char *addr)
{
        if (env->rcpt_count >= env->rcpt_capacity)
                return -E2BIG;
        if (strlen(addr) > HW_ADDR_MAX)
                return -ENAMETOOLONG;
        strcpy(env->rcpt[env->rcpt_count++], addr);
        return 0;
}

void envelope_reset(struct envelope *env)
{
        env->id[0] = '\0';
        env->sender[0] = '\0';
        env->rcpt_count = 0;
}

void envelope_free(struct envelope *env)
{
        free(env->rcpt);
        env->rcpt = NULL;
        env->rcpt_capacity = env->rcpt_count = 0;
}

int spool_write_all(const struct spool_io *io, int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len) {
                ssize_t n = io->write(fd, p, len);

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

/* Envelope values are single lines: anything that could break the block's
 * format becomes '?'. */
static size_t envelope_put(char *buf, size_t size, size_t at, const char *key, const char *value)
{
        size_t n, value_len = strlen(value);

        if (at >= size)
                return at;
        n = (size_t)snprintf(buf + at, size - at, "%s %s\n", key, value);
        if (at + n >= size)
                return size;
        for (char *p = buf + at + strlen(key) + 1; p < buf + at + strlen(key) + 1 + value_len; p++)
                if (*p == '\r' || *p == '\n')
                        *p = '?';
        return at + n;
}

static int envelope_format(const struct envelope *env, char *buf, size_t size, size_t *len)
{
        char number[32];
        size_t at = 0;

        at = (size_t)snprintf(buf, size, "%s", SPOOL_MAGIC);
        at = envelope_put(buf, size, at, "id", env->id);
        snprintf(number, sizeof(number), "%" PRId64, env->received_ms);
        at = envelope_put(buf, size, at, "received", number);
        at = envelope_put(buf, size, at, "remote-ip", env->remote_ip);
        snprintf(number, sizeof(number), "%u", env->remote_port);
        at = envelope_put(buf, size, at, "remote-port", number);
        at = envelope_put(buf, size, at, "helo", env->helo);
        at = envelope_put(buf, size, at, "tls", env->tls[0] ? env->tls : "-");
        at = envelope_put(buf, size, at, "sender", env->sender);
        for (size_t i = 0; i < env->rcpt_count; i++)
                at = envelope_put(buf, size, at, "rcpt", env->rcpt[i]);
        if (at + 1 >= size)
                return -E2BIG;
        buf[at++] = '\n';
        *len = at;
        return 0;
}

int spool_create(struct spool *s, const struct envelope *env, struct spool_item *item)
{
        return spool_create_reserved(s, env, item, 0);
}

/* The reserve's padding line: "pad ", filler, LF; len >= 5. */
static void spool_pad_line(char *p, size_t len)
{
        memcpy(p, "pad ", 4);
        memset(p + 4, '-', len - 5);
        p[len - 1] = '\n';
}

int spool_create_reserved(struct spool *s, const struct envelope *env, struct spool_item *item,
                          size_t reserve)
{
        /* Sized for this envelope: a fixed maximum would be a large
         * allocation (an mmap) for every message. */
        size_t size = 16 * 1024 + env->rcpt_count * (HW_ADDR_MAX + 8), len = 0;
        char *block;
        int r;

        item->spool = s;
        item->bytes = 0;
        item->error = 0;
        item->buffered = 0;
        strcpy(item->id, env->id);
        /* S1: O_EXCL so a colliding id can never overwrite another item. */
        item->fd = openat(s->dir_fd[SPOOL_TMP], item->id,
                          O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (item->fd < 0)
                return -errno;
        if (reserve && reserve < SPOOL_RESERVE_MIN)
                reserve = SPOOL_RESERVE_MIN;
        size += reserve;
        block = malloc(size);
        r = block ? envelope_format(env, block, size - reserve, &len) : -ENOMEM;
        item->reserve_len = reserve;
        if (r >= 0 && reserve) {
                /* The block's empty line moves to the reserve's end. */
                item->reserve_offset = (off_t)len - 1;
                spool_pad_line(block + len - 1, reserve - 1);
                block[len - 1 + reserve - 1] = '\n';
                len += reserve - 1;
        }
        if (r >= 0)
                r = spool_write_all(s->io, item->fd, block, len);
        item->message_offset = (off_t)len;
        free(block);
        if (r < 0) {
                spool_abort(item);
                return r;
        }
        return 0;
}

int spool_fill_reserve(struct spool_item *item, const char *envelope_lines,
                       const char *headers, size_t headers_len)
{
        size_t lines_len = strlen(envelope_lines), reserve = item->reserve_len, pad;
        char *fill;
        int r = 0;

        if (!reserve)
                return -EINVAL;
        /* lines, a padding line of at least "pad \n", the empty line, headers */
        if (lines_len + 5 + 1 + headers_len > reserve)
                return -E2BIG;
        fill = malloc(reserve);
        if (!fill)
                return -ENOMEM;
        pad = reserve - lines_len - 1 - headers_len;
        memcpy(fill, envelope_lines, lines_len);
        spool_pad_line(fill + lines_len, pad);
        fill[lines_len + pad] = '\n';
        memcpy(fill + lines_len + pad + 1, headers, headers_len);
        for (size_t done = 0; done < reserve && r >= 0;) {
                ssize_t n = pwrite(item->fd, fill + done, reserve - done, item->reserve_offset + (off_t)done);

                if (n < 0 && errno != EINTR)
                        r = -errno;
                else if (n == 0)
                        r = -EIO;         /* a regular file never takes nothing */
                else if (n > 0)
                        done += (size_t)n;
        }
        free(fill);
        if (r < 0) {
                if (!item->error)
                        item->error = r;
                return r;
        }
        item->message_offset -= (off_t)headers_len;
        item->bytes += headers_len;
        item->reserve_len = 0;
        return 0;
}

int spool_patch(struct spool_item *item, uint64_t offset, const void *bytes, size_t len)
{
        const char *p = bytes;

        if (offset + len > item->bytes - item->buffered)
                return -EINVAL;
        while (len) {
                ssize_t n = pwrite(item->fd, p, len, item->message_offset + (off_t)offset);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int r = n < 0 ? -errno : -EIO;

                        if (!item->error)
                                item->error = r;
                        return r;
                }
                p += n;
                offset += (uint64_t)n;
                len -= (size_t)n;
        }
        return 0;
}

int spool_item_open_read(const struct spool_item *item)
{
        int fd = openat(item->spool->dir_fd[SPOOL_TMP], item->id, O_RDONLY | O_CLOEXEC);

        return fd < 0 ? -errno : fd;
}

int spool_flush(struct spool_item *item)
{
        if (!item->error && item->buffered)
                item->error = spool_write_all(item->spool->io, item->fd, item->buf, item->buffered);
        item->buffered = 0;
        return item->error;
}

int spool_write(struct spool_item *item, const void *data, size_t len)
{
        const char *p = data;

        item->bytes += len;
        while (len && !item->error) {
                size_t n = sizeof(item->buf) - item->buffered;

                if (n > len)
                        n = len;
                memcpy(item->buf + item->buffered, p, n);
                item->buffered += n;
                p += n;
                len -= n;
                if (item->buffered == sizeof(item->buf))
                        spool_flush(item);
        }
        return item->error;
}

int spool_commit(struct spool_item *item)
{
        const struct spool_io *io = item->spool->io;
        int r = spool_flush(item);

        /* The order is the promise: data on disk, then the name in pending/,
         * then that name on disk; only then may the caller say 250. */
        if (r >= 0 && io->fsync(item->fd) < 0)
                r = -errno;
        /* close() is checked: some file systems report write errors here. */
        if (close(item->fd) < 0 && r >= 0)
                r = -errno;
        item->fd = -1;
        if (r >= 0 && io->renameat2(item->spool->dir_fd[SPOOL_TMP], item->id,
                                    item->spool->dir_fd[SPOOL_PENDING], item->id, 0) < 0)
                r = -errno;
        if (r < 0) {
                spool_abort(item);
                return r;
        }
        /* S1 -> S2 */
        if (io->fsync(item->spool->dir_fd[SPOOL_PENDING]) < 0) {
                r = -errno;
                /* S2 -> gone. Not acknowledged, so take it back rather than
                 * leave an item whose name may or may not survive a crash:
                 * the sender retries. A claim may win this race (spool.h). */
                unlinkat(item->spool->dir_fd[SPOOL_PENDING], item->id, 0);
                return r;
        }
        return 0;
}

void spool_abort(struct spool_item *item)
{
        if (item->fd >= 0)
                close(item->fd);
        item->fd = -1;
        /* S1 -> gone; ENOENT after a failed rename is fine. */
        unlinkat(item->spool->dir_fd[SPOOL_TMP], item->id, 0);
}

static int envelope_parse_line(struct envelope *env, char *line)
{
        char *value = strchr(line, ' ');
        char *end;

        if (!value)
                return -EBADMSG;
        *value++ = '\0';
        if (strcmp(line, "id") == 0) {
                if (spool_id_time_ms(value) < 0 || strlen(value) != HW_QID_LEN)
                        return -EBADMSG;
                strcpy(env->id, value);
        } else if (strcmp(line, "received") == 0) {
                env->received_ms = strtoll(value, &end, 10);
                if (*end)
                        return -EBADMSG;
        } else if (strcmp(line, "remote-ip") == 0) {
                snprintf(env->remote_ip, sizeof(env->remote_ip), "%s", value);
        } else if (strcmp(line, "remote-port") == 0) {
                env->remote_port = (unsigned)strtoul(value, &end, 10);
                if (*end)
                        return -EBADMSG;
        } else if (strcmp(line, "helo") == 0) {
                snprintf(env->helo, sizeof(env->helo), "%s", value);
        } else if (strcmp(line, "tls") == 0) {
                snprintf(env->tls, sizeof(env->tls), "%s", strcmp(value, "-") ? value : "");
        } else if (strcmp(line, "sender") == 0) {
                if (strlen(value) > HW_ADDR_MAX)
                        return -EBADMSG;
                strcpy(env->sender, value);
        } else if (strcmp(line, "rcpt") == 0) {
                /* No session takes more; a longer list is not ours. */
                if (env->rcpt_count >= HW_RCPT_LIMIT)
                        return -EBADMSG;
                if (env->rcpt_count == env->rcpt_capacity) {
                        size_t cap = env->rcpt_capacity ? env->rcpt_capacity * 2 : 8;
                        void *p = reallocarray(env->rcpt, cap, sizeof(*env->rcpt));

                        if (!p)
                                return -ENOMEM;
                        env->rcpt = p;
                        env->rcpt_capacity = cap;
                }
                if (envelope_add_rcpt(env, value) < 0)
                        return -EBADMSG;
        }
        /* Unknown keys are skipped: a newer writer may add some. */
        return 0;
}

int envelope_read(int fd, struct envelope *env, off_t *body_offset)
{
        /* Most envelopes are a few hundred bytes: start small, grow to the bound. */
        size_t size = 4096, len = 0;
        char *buf = malloc(size + 1);
        char *line, *end;
        int r = 0;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (len == size) {
                        char *bigger;

                        if (size >= ENVELOPE_MAX)
                                break;
                        size = size * 2 > ENVELOPE_MAX ? ENVELOPE_MAX : size * 2;
                        bigger = realloc(buf, size + 1);
                        if (!bigger) {
                                r = -ENOMEM;
                                goto out;
                        }
                        buf = bigger;
                }
                n = pread(fd, buf + len, size - len, (off_t)len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto out;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                buf[len] = '\0';
                if (strstr(buf, "\n\n"))
                        break;
        }
        buf[len] = '\0';
        end = strstr(buf, "\n\n");
        if (len < strlen(SPOOL_MAGIC) || memcmp(buf, SPOOL_MAGIC, strlen(SPOOL_MAGIC)) != 0 || !end) {
                r = -EBADMSG;
                goto out;
        }
        end[1] = '\0';
        env->id[0] = '\0';
        env->rcpt_count = 0;
        for (line = buf + strlen(SPOOL_MAGIC); *line && r >= 0;) {
                char *nl = strchr(line, '\n');

                *nl = '\0';
                r = envelope_parse_line(env, line);
                line = nl + 1;
        }
        if (r >= 0 && (!env->id[0] || env->rcpt_count == 0))
                r = -EBADMSG;
        if (r >= 0)
                *body_offset = (off_t)(end - buf) + 2;
out:
        free(buf);
        return r;
}
