/* Operator views of the spool: --status, --requeue, --requeue-all. */
#ifndef HW_FLUSH_STATUS_H
#define HW_FLUSH_STATUS_H

#include <stdio.h>

#include "config.h"

int status_print(const struct hw_config *cfg, FILE *out);
/* Requeues the dead letters ids[0..n); reports each on out/err. Returns 0,
 * -ENOENT when one of them was not a dead letter, or another -errno. */
int status_requeue(const struct hw_config *cfg, char *const *ids, int n, FILE *out);
int status_requeue_all(const struct hw_config *cfg, FILE *out, unsigned *count);

#endif
