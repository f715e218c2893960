/* Spool status and requeueing, for operators. These never take the run
 * lock: they only read, or move items out of dead/, which a run never
 * touches. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "status.h"

struct status_counts {
        struct status_summary sum;
        char (*dead)[HW_QID_LEN + 1];
        size_t dead_len, dead_cap;
};

static int64_t status_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The one reading of what an item in a directory means for the summary. */
static void status_summary_add(struct status_summary *c, const struct spool_entry *e)
{
        int64_t t;

        c->count[e->dir]++;
        if (e->dir != SPOOL_PENDING && e->dir != SPOOL_PROCESSING && e->dir != SPOOL_DEFERRED)
                return;
        t = spool_id_time_ms(e->id);
        if (t >= 0 && (c->oldest_ms < 0 || t < c->oldest_ms)) {
                c->oldest_ms = t;
                memcpy(c->oldest_id, e->id, sizeof(c->oldest_id));
        }
        if (e->dir == SPOOL_DEFERRED && (c->next_due_ms < 0 || e->due_ms < c->next_due_ms))
                c->next_due_ms = e->due_ms;
}

static int status_summary_one(const struct spool_entry *e, void *userdata)
{
        status_summary_add(userdata, e);
        return 0;
}

int status_summary_read(struct spool *spool, struct status_summary *sum)
{
        memset(sum, 0, sizeof(*sum));
        sum->oldest_ms = sum->next_due_ms = -1;
        for (int d = 0; d < SPOOL_DIR_COUNT; d++) {
                int r = spool_scan(spool, (enum spool_dir)d, status_summary_one, sum);

                if (r < 0)
                        return r;
        }
        return 0;
}

static int status_count_one(const struct spool_entry *e, void *userdata)
{
        struct status_counts *c = userdata;

        status_summary_add(&c->sum, e);
        if (e->dir != SPOOL_DEAD)
                return 0;
        if (c->dead_len == c->dead_cap) {
                size_t cap = c->dead_cap ? c->dead_cap * 2 : 64;
                void *p = realloc(c->dead, cap * sizeof(*c->dead));
                if (!p)
                        return -ENOMEM;
                c->dead = p;
                c->dead_cap = cap;
        }
        memcpy(c->dead[c->dead_len++], e->id, HW_QID_LEN + 1);
        return 0;
}

static void status_duration(int64_t ms, char *buf, size_t len)
{
        int64_t s = ms < 0 ? 0 : ms / 1000;

        if (s < 120)
                snprintf(buf, len, "%" PRId64 "s", s);
        else if (s < 7200)
                snprintf(buf, len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
        else if (s < 172800)
                snprintf(buf, len, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
        else
                snprintf(buf, len, "%" PRId64 "d%02" PRId64 "h", s / 86400, s / 3600 % 24);
}

static int status_id_cmp(const void *a, const void *b)
{
        return strcmp(a, b);
}

int status_print(const struct hw_config *cfg, FILE *out)
{
        struct status_counts c = { .sum = { .oldest_ms = -1, .next_due_ms = -1 } };
        struct spool spool;
        int64_t now = status_now_ms();
        char buf[64];
        int r;

        r = spool_open(&spool, cfg->spool_dir);
        if (r < 0)
                return r;
        for (int d = 0; d < SPOOL_DIR_COUNT; d++) {
                r = spool_scan(&spool, (enum spool_dir)d, status_count_one, &c);
                if (r < 0)
                        goto out;
        }
        fprintf(out, "spool: %s\n", cfg->spool_dir);
        for (int d = 0; d < SPOOL_DIR_COUNT; d++)
                fprintf(out, "%-11s %u\n", spool_dir_name((enum spool_dir)d), c.sum.count[d]);
        if (c.sum.oldest_ms >= 0) {
                status_duration(now - c.sum.oldest_ms, buf, sizeof(buf));
                fprintf(out, "oldest      %s (%s)\n", buf, c.sum.oldest_id);
        } else {
                fprintf(out, "oldest      -\n");
        }
        if (c.sum.next_due_ms >= 0) {
                status_duration(c.sum.next_due_ms - now, buf, sizeof(buf));
                fprintf(out, "next retry  %s\n", c.sum.next_due_ms <= now ? "due now" : buf);
        }
        /* qsort(NULL, 0, ...) is undefined: an empty spool has no list. */
        if (c.dead_len > 1)
                qsort(c.dead, c.dead_len, sizeof(*c.dead), status_id_cmp);
        for (size_t i = 0; i < c.dead_len; i++) {
                char reason[2048];
                char *line, *save = NULL;

                fprintf(out, "\ndead %s\n", c.dead[i]);
                r = spool_dead_reason(&spool, c.dead[i], reason, sizeof(reason));
                if (r < 0) {
                        fprintf(out, "    (no reason: %s)\n", strerror(-r));
                        continue;
                }
                for (line = strtok_r(reason, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                        fprintf(out, "    %s\n", line);
        }
        r = 0;
out:
        free(c.dead);
        spool_close(&spool);
        return r;
}

/* Opens the spool and takes the run lock for a requeue, so a run cannot
 * bury an item again (and write its new reason) between our move and our
 * removal of the old reason. A running delivery is waited for, and the
 * operator is told. Returns the lock's descriptor or -errno. */
static int status_open_locked(const struct hw_config *cfg, struct spool *spool)
{
        int r = spool_open(spool, cfg->spool_dir);
        int fd;

        if (r < 0)
                return r;
        fd = spool_lock(spool, false);
        if (fd == -EBUSY) {
                log_msg(LOG_NOTICE, "waiting for the delivery run in progress to finish");
                fd = spool_lock(spool, true);
        }
        if (fd < 0)
                spool_close(spool);
        return fd;
}

int status_requeue(const struct hw_config *cfg, char *const *ids, int n, FILE *out)
{
        struct spool spool;
        int r, result = 0;
        int lock_fd = status_open_locked(cfg, &spool);

        if (lock_fd < 0)
                return lock_fd;
        for (int i = 0; i < n; i++) {
                r = spool_requeue(&spool, ids[i]);
                if (r == 0) {
                        fprintf(out, "requeued %s\n", ids[i]);
                        continue;
                }
                if (r == -ENOENT || r == -EINVAL)
                        log_msg(LOG_ERR, "%s: not a dead letter", ids[i]);
                else
                        log_msg(LOG_ERR, "%s: cannot requeue: %s", ids[i], strerror(-r));
                if (result == 0)
                        result = r == -EINVAL ? -ENOENT : r;
        }
        close(lock_fd);
        spool_close(&spool);
        return result;
}

struct status_requeue_ctx {
        struct spool *spool;
        FILE *out;
        unsigned count;
        int error;
};

static int status_requeue_one(const struct spool_entry *e, void *userdata)
{
        struct status_requeue_ctx *ctx = userdata;
        int r = spool_requeue(ctx->spool, e->id);

        if (r == 0) {
                fprintf(ctx->out, "requeued %s\n", e->id);
                ctx->count++;
        } else if (ctx->error == 0) {
                ctx->error = r;
        }
        return 0;
}

int status_requeue_all(const struct hw_config *cfg, FILE *out, unsigned *count)
{
        struct status_requeue_ctx ctx = { .out = out };
        struct spool spool;
        int r, lock_fd;

        *count = 0;
        lock_fd = status_open_locked(cfg, &spool);
        if (lock_fd < 0)
                return lock_fd;
        ctx.spool = &spool;
        r = spool_scan(&spool, SPOOL_DEAD, status_requeue_one, &ctx);
        close(lock_fd);
        spool_close(&spool);
        *count = ctx.count;
        return r < 0 ? r : ctx.error;
}
