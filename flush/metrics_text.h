/* hw-flush --metrics: the counters of lib/metrics.h and gauges read from
 * the spool at this moment, as text for Prometheus. */
#ifndef HW_FLUSH_METRICS_TEXT_H
#define HW_FLUSH_METRICS_TEXT_H

#include <stdio.h>

#include "config.h"

enum metrics_format {
        METRICS_OPENMETRICS,              /* OpenMetrics 1.0 text, "# EOF" at the end */
        METRICS_PROMETHEUS,               /* Prometheus text 0.0.4: node_exporter's textfile collector */
};

/* Parses "openmetrics" or "prometheus"; -EINVAL for anything else. */
int metrics_format_parse(const char *name, enum metrics_format *fmt);

/* Reads the spool without changing it. 0 or -errno. */
int metrics_text_print(const struct hw_config *cfg, enum metrics_format fmt, FILE *out);

/* The Prometheus text, written to path atomically (a temporary file in the
 * same directory, then rename), mode 0644 so the exporter can read it. */
int metrics_text_write_file(const struct hw_config *cfg, const char *path);

#endif
