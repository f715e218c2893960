/* Operator views of the spool: --status, --requeue, --requeue-all. */
#ifndef HW_FLUSH_STATUS_H
#define HW_FLUSH_STATUS_H

#include <stdio.h>

#include "config.h"
#include "spool.h"

/* What a scan of every spool directory finds (readdir only). */
struct status_summary {
        unsigned count[SPOOL_DIR_COUNT];
        int64_t oldest_ms;                /* receipt time of the oldest live item; -1: none */
        char oldest_id[HW_QID_LEN + 1];
        int64_t next_due_ms;              /* earliest deferred due time; -1: none */
};
int status_summary_read(struct spool *spool, struct status_summary *sum);

int status_print(const struct hw_config *cfg, FILE *out);
/* Requeues the dead letters ids[0..n); reports each on out/err. Returns 0,
 * -ENOENT when one of them was not a dead letter, or another -errno. */
int status_requeue(const struct hw_config *cfg, char *const *ids, int n, FILE *out);
int status_requeue_all(const struct hw_config *cfg, FILE *out, unsigned *count);

#endif
