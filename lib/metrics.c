/* The counter file and the counting; the file's format is in metrics.h. */
#include "metrics.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define METRICS_MAGIC 0x31307274656d7768ULL   /* "hwmetr01" in little-endian bytes */

_Static_assert(METRICS_SLOT_END <= METRICS_SLOTS, "the counters must fit the file");

const int64_t metrics_latency_bounds_ms[METRICS_LATENCY_BUCKETS] = {
        100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
        300000, 900000, 3600000, 21600000, 86400000,
};

/* The one mapping of this process; NULL: not counting. */
static uint64_t *metrics_words;

static const char *const metrics_message_names[METRICS_MSG_COUNT] = {
        [METRICS_MSG_ACCEPTED] = "accepted",
        [METRICS_MSG_SILENTLY_DENIED] = "silently-denied",
        [METRICS_MSG_DENIED] = "denied",
        [METRICS_MSG_REJECTED_SIZE] = "rejected-size",
        [METRICS_MSG_REJECTED_LOOP] = "rejected-loop",
        [METRICS_MSG_REJECTED_HEADER] = "rejected-header",
        [METRICS_MSG_DEFERRED_POLICY] = "deferred-policy",
        [METRICS_MSG_FAILED_SPOOL] = "failed-spool",
        [METRICS_MSG_ABORTED] = "aborted",
        [METRICS_MSG_DEFERRED] = "deferred",
        [METRICS_MSG_REJECTED_DMARC] = "rejected-dmarc",
        [METRICS_MSG_OTHER] = "other",
};

static const enum metrics_class metrics_message_classes[METRICS_MSG_COUNT] = {
        [METRICS_MSG_ACCEPTED] = METRICS_CLASS_2XX,
        [METRICS_MSG_SILENTLY_DENIED] = METRICS_CLASS_2XX,
        [METRICS_MSG_DENIED] = METRICS_CLASS_5XX,
        [METRICS_MSG_REJECTED_SIZE] = METRICS_CLASS_5XX,
        [METRICS_MSG_REJECTED_LOOP] = METRICS_CLASS_5XX,
        [METRICS_MSG_REJECTED_HEADER] = METRICS_CLASS_5XX,
        [METRICS_MSG_DEFERRED_POLICY] = METRICS_CLASS_4XX,
        [METRICS_MSG_FAILED_SPOOL] = METRICS_CLASS_4XX,
        [METRICS_MSG_ABORTED] = METRICS_CLASS_NONE,
        [METRICS_MSG_DEFERRED] = METRICS_CLASS_4XX,
        [METRICS_MSG_REJECTED_DMARC] = METRICS_CLASS_5XX,
        [METRICS_MSG_OTHER] = METRICS_CLASS_NONE,
};

static const char *const metrics_class_names[METRICS_CLASS_COUNT] = {
        "none", "2xx", "3xx", "4xx", "5xx",
};

/* RFC 3463 section 3. */
static const char *const metrics_subject_names[METRICS_SUBJECT_COUNT] = {
        "other", "addressing", "mailbox", "mail-system", "network", "protocol", "content", "policy",
};

enum metrics_class metrics_reply_class(const char *reply)
{
        switch (reply ? reply[0] : '\0') {
        case '2': return METRICS_CLASS_2XX;
        case '3': return METRICS_CLASS_3XX;
        case '4': return METRICS_CLASS_4XX;
        case '5': return METRICS_CLASS_5XX;
        default: return METRICS_CLASS_NONE;
        }
}

enum metrics_class metrics_http_class(long status)
{
        if (status >= 200 && status <= 599)
                return (enum metrics_class)(METRICS_CLASS_2XX + (status / 100 - 2));
        return METRICS_CLASS_NONE;
}

const char *metrics_class_name(enum metrics_class c)
{
        return metrics_class_names[c];
}

enum metrics_message metrics_message_of(const char *outcome)
{
        for (int m = 0; m < METRICS_MSG_OTHER; m++)
                if (strcmp(outcome, metrics_message_names[m]) == 0)
                        return (enum metrics_message)m;
        return METRICS_MSG_OTHER;
}

const char *metrics_message_name(enum metrics_message m)
{
        return metrics_message_names[m];
}

enum metrics_class metrics_message_class(enum metrics_message m)
{
        return metrics_message_classes[m];
}

/* "550 5.7.1 ..." -> 7; 0 without an enhanced code. */
int metrics_reply_subject(const char *reply)
{
        if (!reply || strlen(reply) < 8 || (reply[3] != ' ' && reply[3] != '-'))
                return 0;
        if (reply[4] != reply[0] || reply[5] != '.' || !isdigit((unsigned char)reply[6]) ||
            reply[7] != '.')
                return 0;
        return reply[6] - '0' < METRICS_SUBJECT_COUNT ? reply[6] - '0' : 0;
}

const char *metrics_subject_name(int subject)
{
        return metrics_subject_names[subject];
}

static void metrics_add(unsigned slot, uint64_t n)
{
        if (metrics_words && slot < METRICS_SLOT_END)
                __atomic_fetch_add(&metrics_words[METRICS_HEADER_WORDS + slot], n, __ATOMIC_RELAXED);
}

void metrics_count_connection(void)
{
        metrics_add(METRICS_SLOT_CONNECTIONS, 1);
}

void metrics_count_connection_refused(enum metrics_connection_refusal why)
{
        metrics_add(METRICS_SLOT_CONN_REFUSED + why, 1);
}

void metrics_count_message(const char *outcome, const char *reply)
{
        metrics_add(METRICS_SLOT_MESSAGE(metrics_message_of(outcome), metrics_reply_class(reply)), 1);
}

void metrics_count_refusal(enum metrics_command cmd, const char *reply)
{
        metrics_add(METRICS_SLOT_REFUSAL(cmd, metrics_reply_class(reply), metrics_reply_subject(reply)), 1);
}

void metrics_count_delivery(enum metrics_delivery verdict, long http_status, bool retry,
                            int64_t latency_ms)
{
        int bucket = 0;

        metrics_add(METRICS_SLOT_DELIVERY(verdict, metrics_http_class(http_status)), 1);
        if (retry)
                metrics_add(METRICS_SLOT_RETRIES, 1);
        if (verdict != METRICS_DELIVERED || latency_ms < 0)
                return;
        /* Buckets are kept apart here and made cumulative when printed, so
         * one observation is one add, not one per bucket. */
        while (bucket < METRICS_LATENCY_BUCKETS && latency_ms > metrics_latency_bounds_ms[bucket])
                bucket++;
        metrics_add(METRICS_SLOT_LATENCY_BUCKETS + (unsigned)bucket, 1);
        metrics_add(METRICS_SLOT_LATENCY_SUM_MS, (uint64_t)latency_ms);
}

void metrics_count_dead_letter(enum metrics_dead_reason why)
{
        metrics_add(METRICS_SLOT_DEAD + why, 1);
}

static bool metrics_whole(const struct stat *st, const uint64_t *words)
{
        return S_ISREG(st->st_mode) && st->st_size == METRICS_FILE_SIZE && words[0] == METRICS_MAGIC;
}

/* A new, whole file under a temporary name, then its name: without
 * replace, only where there is none. 0, -EEXIST (someone else made one),
 * or -errno. */
static int metrics_create(int dir_fd, bool replace)
{
        uint64_t page[METRICS_FILE_SIZE / 8] = { METRICS_MAGIC };
        char tmp[NAME_MAX + 1];
        struct timespec now;
        const char *p = (const char *)page;
        size_t left = sizeof(page);
        int fd, r = 0;

        clock_gettime(CLOCK_REALTIME, &now);
        page[1] = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
        snprintf(tmp, sizeof(tmp), ".%s.%ld", METRICS_FILE, (long)getpid());
        fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        while (left && r == 0) {
                ssize_t n = write(fd, p, left);

                if (n < 0 && errno != EINTR)
                        r = -errno;
                if (n > 0) {
                        p += n;
                        left -= (size_t)n;
                }
        }
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && renameat2(dir_fd, tmp, dir_fd, METRICS_FILE, replace ? 0 : RENAME_NOREPLACE) < 0)
                r = -errno;
        if (r < 0)
                unlinkat(dir_fd, tmp, 0);
        return r;
}

/* Maps the file, making or replacing it as needed. */
static int metrics_map(int dir_fd, uint64_t **out)
{
        for (int tries = 0; tries < 3; tries++) {
                int fd = openat(dir_fd, METRICS_FILE, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
                struct stat st;
                void *m = MAP_FAILED;
                int r;

                if (fd < 0 && errno != ENOENT)
                        return -errno;
                if (fd >= 0) {
                        r = fstat(fd, &st) < 0 ? -errno : 0;
                        /* Never map past the end: that would fault on use. */
                        if (r == 0 && st.st_size >= METRICS_FILE_SIZE) {
                                m = mmap(NULL, METRICS_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                                if (m == MAP_FAILED)
                                        r = -errno;
                        }
                        /* A file that cannot be looked at or mapped may be a
                         * good one: left as it is, not reset. */
                        if (r < 0) {
                                close(fd);
                                return r;
                        }
                        if (m != MAP_FAILED && metrics_whole(&st, m)) {
                                close(fd);
                                *out = m;
                                return 0;
                        }
                        if (m != MAP_FAILED)
                                munmap(m, METRICS_FILE_SIZE);
                        close(fd);
                        log_msg(LOG_WARNING, "%s in the spool is not a counter file: replaced, counters start again at 0",
                                METRICS_FILE);
                        r = metrics_create(dir_fd, true);
                } else {
                        r = metrics_create(dir_fd, false);
                }
                if (r < 0 && r != -EEXIST)
                        return r;
        }
        return -EAGAIN;
}

int metrics_open(int spool_root_fd)
{
        int r;

        if (metrics_words)
                return 0;
        r = metrics_map(spool_root_fd, &metrics_words);
        if (r < 0) {
                metrics_words = NULL;
                log_msg(LOG_WARNING, "cannot use the counter file %s in the spool, not counting: %s",
                        METRICS_FILE, strerror(-r));
        }
        return r;
}

void metrics_sync(void)
{
        /* Where the counts stand when the machine crashes next. */
        if (metrics_words && msync(metrics_words, METRICS_FILE_SIZE, MS_SYNC) < 0)
                log_msg(LOG_WARNING, "cannot write the counter file back: %s", strerror(errno));
}

void metrics_close(void)
{
        if (metrics_words)
                munmap(metrics_words, METRICS_FILE_SIZE);
        metrics_words = NULL;
}

int metrics_read(int spool_root_fd, struct metrics_snapshot *snap)
{
        /* O_NONBLOCK: a FIFO under the name must not hold the reader. */
        int fd = openat(spool_root_fd, METRICS_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        const uint64_t *words;
        struct stat st;
        int r = 0;

        memset(snap, 0, sizeof(*snap));
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        /* Not whole: what the next counting process replaces, from 0. */
        if (!S_ISREG(st.st_mode) || st.st_size != METRICS_FILE_SIZE) {
                close(fd);
                return 0;
        }
        /* Mapped, so that each word is read whole while others add to it. */
        words = mmap(NULL, METRICS_FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
        if (words == MAP_FAILED)
                r = -errno;
        close(fd);
        if (r < 0)
                return r;
        if (words[0] == METRICS_MAGIC) {
                snap->created_ms = (int64_t)words[1];
                for (unsigned i = 0; i < METRICS_SLOTS; i++)
                        snap->slot[i] = __atomic_load_n(&words[METRICS_HEADER_WORDS + i], __ATOMIC_RELAXED);
        }
        munmap((void *)words, METRICS_FILE_SIZE);
        return 0;
}
