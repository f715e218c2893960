/* One queue run: recover, clean, deliver what is due, rescan, exit. */
#ifndef HW_FLUSH_RUNNER_H
#define HW_FLUSH_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct runner_options {
        bool ignore_backoff;              /* --now: every deferred item too */
        bool progress;                    /* a progress line on stderr */
};

struct runner_stats {
        unsigned attempted;
        unsigned delivered;
        unsigned deferred;
        unsigned dead;
        unsigned failed;                  /* local errors; item left for later */
        unsigned recovered;               /* found in processing/ at start */
};

/* Returns 0 when the run went through (some mail may be deferred) or
 * -errno when it could not run (spool, lock, libcurl). */
int runner_run(const struct hw_config *cfg, const struct runner_options *opt,
               struct runner_stats *stats);

#endif
