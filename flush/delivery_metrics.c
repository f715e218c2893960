/* See delivery_metrics.h. */
#include "delivery_metrics.h"

#include <sys/stat.h>

#include "metrics.h"

/* The commit is the item's last write (spool.c: the fsync and the rename
 * into pending/ follow it, and no later move changes the mtime), so the
 * latency is measured from there, across any retries, to now. */
static int64_t delivery_latency_ms(int item_fd, int64_t now_ms)
{
        struct stat st;
        int64_t committed_ms;

        if (item_fd < 0 || fstat(item_fd, &st) < 0)
                return -1;
        committed_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        return now_ms >= committed_ms ? now_ms - committed_ms : 0;
}

/* An item the webhook refused for good, one out of time (the age limit
 * wins when both hold), or one that is not an item. */
static enum metrics_dead_reason delivery_dead_reason(const struct outcome_attempt *a,
                                                     const struct outcome *o)
{
        if (a->cause == OUTCOME_ENVELOPE)
                return METRICS_DEAD_UNREADABLE;
        if (o->too_old)
                return METRICS_DEAD_RETRY_AGE;
        return METRICS_DEAD_REFUSED;
}

void delivery_metrics_count(const struct hw_config *cfg, const struct outcome_attempt *a,
                            const struct outcome *o, int item_fd)
{
        long status = a->cause == OUTCOME_HTTP ? a->status : 0;
        bool retry = a->attempts_before > 0;

        switch (o->verdict) {
        case OUTCOME_DELIVERED:
                metrics_count_delivery(METRICS_DELIVERED, status, retry,
                                       delivery_latency_ms(item_fd, a->now_ms));
                break;
        case OUTCOME_RETRY:
                metrics_count_delivery(METRICS_DEFERRED, status, retry, -1);
                break;
        case OUTCOME_DEAD:
                metrics_count_delivery(METRICS_DEAD, status, retry, -1);
                metrics_count_dead_letter(delivery_dead_reason(a, o));
                break;
        }
}
