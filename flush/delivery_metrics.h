/* What one attempt at the webhook adds to the counters (lib/metrics.h). */
#ifndef HW_FLUSH_DELIVERY_METRICS_H
#define HW_FLUSH_DELIVERY_METRICS_H

#include "config.h"
#include "outcome.h"

/* Counts the attempt a as outcome.c decided it (o), whether or not the
 * spool move that carries the verdict out succeeds: the attempt was made.
 * item_fd is the item's open file (its mtime is its commit time), or -1. */
void delivery_metrics_count(const struct hw_config *cfg, const struct outcome_attempt *a,
                            const struct outcome *o, int item_fd);

#endif
