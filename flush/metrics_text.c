/* See metrics_text.h. The two formats differ only in how a counter is
 * named (OpenMetrics: the family "x" with the sample "x_total";
 * Prometheus 0.0.4: "x_total" throughout), in OpenMetrics' UNIT, _created
 * samples and "# EOF"; everything else is written once for both. */
#include "metrics_text.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "spool.h"
#include "status.h"

struct metrics_text {
        FILE *out;
        enum metrics_format fmt;
        const struct metrics_snapshot *snap;
        const char *family;               /* the family being written */
        bool counter;
};

int metrics_format_parse(const char *name, enum metrics_format *fmt)
{
        if (strcasecmp(name, "openmetrics") == 0)
                *fmt = METRICS_OPENMETRICS;
        else if (strcasecmp(name, "prometheus") == 0)
                *fmt = METRICS_PROMETHEUS;
        else
                return -EINVAL;
        return 0;
}

static void metrics_family(struct metrics_text *t, const char *name, const char *type,
                           const char *unit, const char *help)
{
        t->family = name;
        t->counter = strcmp(type, "counter") == 0;
        if (t->fmt == METRICS_PROMETHEUS) {
                const char *suffix = t->counter ? "_total" : "";

                fprintf(t->out, "# HELP %s%s %s\n# TYPE %s%s %s\n", name, suffix, help, name, suffix, type);
                return;
        }
        fprintf(t->out, "# TYPE %s %s\n", name, type);
        if (unit)
                fprintf(t->out, "# UNIT %s %s\n", name, unit);
        fprintf(t->out, "# HELP %s %s\n", name, help);
}

/* labels: "" or 'a="x",b="y"'. */
static void metrics_sample(struct metrics_text *t, const char *suffix, const char *labels, uint64_t value)
{
        const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";

        fprintf(t->out, "%s%s%s%s%s %" PRIu64 "\n", t->family, suffix, open, labels, close, value);
        /* When the counters started: a new file is a reset. */
        if (t->fmt == METRICS_OPENMETRICS && (t->counter || strcmp(suffix, "_count") == 0) &&
            t->snap->created_ms > 0)
                fprintf(t->out, "%s_created%s%s%s %" PRId64 ".%03" PRId64 "\n", t->family, open, labels,
                        close, t->snap->created_ms / 1000, t->snap->created_ms % 1000);
}

static void metrics_counter(struct metrics_text *t, const char *labels, unsigned slot)
{
        metrics_sample(t, "_total", labels, t->snap->slot[slot]);
}

static void metrics_print_smtp(struct metrics_text *t)
{
        static const char *const refusals[METRICS_REFUSED_COUNT] = {
                [METRICS_REFUSED_SOURCE_LIMIT] = "source-limit",
                [METRICS_REFUSED_LOCAL_ERROR] = "local-error",
        };
        /* Refusals printed even before the first: the ones operators watch. */
        static const struct { enum metrics_command cmd; enum metrics_class class; int subject; } usual[] = {
                { METRICS_CMD_MAIL, METRICS_CLASS_4XX, 3 },     /* 452 4.3.1 low disk */
                { METRICS_CMD_RCPT, METRICS_CLASS_5XX, 7 },     /* 550 5.7.1 domain not accepted */
                { METRICS_CMD_RCPT, METRICS_CLASS_4XX, 5 },     /* 452 4.5.3 too many recipients */
        };
        static const char *const commands[METRICS_CMD_COUNT] = { "mail", "rcpt" };
        char labels[128];

        metrics_family(t, "hw_smtp_connections", "counter", NULL, "SMTP connections hw-receive served.");
        metrics_counter(t, "", METRICS_SLOT_CONNECTIONS);
        metrics_family(t, "hw_smtp_connections_refused", "counter", NULL,
                       "SMTP connections refused before the greeting, by reason.");
        for (int i = 0; i < METRICS_REFUSED_COUNT; i++) {
                snprintf(labels, sizeof(labels), "reason=\"%s\"", refusals[i]);
                metrics_counter(t, labels, METRICS_SLOT_CONN_REFUSED + (unsigned)i);
        }

        metrics_family(t, "hw_smtp_messages", "counter", NULL,
                       "Mail transactions after the final dot, by outcome and class of the reply.");
        for (int m = 0; m < METRICS_MSG_COUNT; m++)
                for (int c = 0; c < METRICS_CLASS_COUNT; c++) {
                        unsigned slot = METRICS_SLOT_MESSAGE(m, c);

                        if (!t->snap->slot[slot] && (m == METRICS_MSG_OTHER ||
                                                     c != (int)metrics_message_class((enum metrics_message)m)))
                                continue;
                        snprintf(labels, sizeof(labels), "outcome=\"%s\",class=\"%s\"",
                                 metrics_message_name((enum metrics_message)m),
                                 metrics_class_name((enum metrics_class)c));
                        metrics_counter(t, labels, slot);
                }

        metrics_family(t, "hw_smtp_refusals", "counter", NULL,
                       "MAIL and RCPT commands refused, by class and RFC 3463 subject of the reply.");
        for (int cmd = 0; cmd < METRICS_CMD_COUNT; cmd++)
                for (int c = 0; c < METRICS_CLASS_COUNT; c++)
                        for (int subject = 0; subject < METRICS_SUBJECT_COUNT; subject++) {
                                unsigned slot = METRICS_SLOT_REFUSAL(cmd, c, subject);
                                bool show = t->snap->slot[slot] > 0;

                                for (size_t i = 0; i < sizeof(usual) / sizeof(usual[0]); i++)
                                        show |= (int)usual[i].cmd == cmd && (int)usual[i].class == c &&
                                                usual[i].subject == subject;
                                if (!show)
                                        continue;
                                snprintf(labels, sizeof(labels), "command=\"%s\",class=\"%s\",subject=\"%s\"",
                                         commands[cmd], metrics_class_name((enum metrics_class)c),
                                         metrics_subject_name(subject));
                                metrics_counter(t, labels, slot);
                        }
}

/* Seconds in one spelling: "0.25", "1.0", "86400.0". */
static void metrics_seconds(char *buf, size_t len, int64_t ms)
{
        int n = snprintf(buf, len, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);

        while (n > 2 && (size_t)n < len && buf[n - 1] == '0' && buf[n - 2] != '.')
                buf[--n] = '\0';
}

static void metrics_print_webhook(struct metrics_text *t)
{
        static const char *const outcomes[METRICS_DELIVERY_COUNT] = { "delivered", "deferred", "dead" };
        /* Printed even at 0: a 2xx delivers, anything else but 406 defers,
         * 406 or no usable item buries. */
        static const unsigned usual[METRICS_DELIVERY_COUNT] = {
                [METRICS_DELIVERED] = 1u << METRICS_CLASS_2XX,
                [METRICS_DEFERRED] = 1u << METRICS_CLASS_NONE | 1u << METRICS_CLASS_3XX |
                                     1u << METRICS_CLASS_4XX | 1u << METRICS_CLASS_5XX,
                [METRICS_DEAD] = 1u << METRICS_CLASS_NONE | 1u << METRICS_CLASS_4XX,
        };
        static const char *const dead[METRICS_DEAD_REASON_COUNT] = {
                [METRICS_DEAD_REFUSED] = "refused",
                [METRICS_DEAD_RETRY_AGE] = "retry-age",
                [METRICS_DEAD_UNREADABLE] = "unreadable",
        };
        const uint64_t *slot = t->snap->slot;
        uint64_t cumulative = 0;
        char labels[128];

        metrics_family(t, "hw_webhook_deliveries", "counter", NULL,
                       "Attempts at the webhook, by outcome and class of the HTTP status (none: no response).");
        for (int o = 0; o < METRICS_DELIVERY_COUNT; o++)
                for (int c = 0; c < METRICS_CLASS_COUNT; c++) {
                        unsigned s = METRICS_SLOT_DELIVERY(o, c);

                        if (!slot[s] && !(usual[o] & 1u << c))
                                continue;
                        snprintf(labels, sizeof(labels), "outcome=\"%s\",status_class=\"%s\"", outcomes[o],
                                 metrics_class_name((enum metrics_class)c));
                        metrics_counter(t, labels, s);
                }
        metrics_family(t, "hw_webhook_retries", "counter", NULL,
                       "Attempts at the webhook for messages whose earlier attempt failed.");
        metrics_counter(t, "", METRICS_SLOT_RETRIES);
        metrics_family(t, "hw_webhook_dead_letters", "counter", NULL, "Messages moved to dead/, by reason.");
        for (int i = 0; i < METRICS_DEAD_REASON_COUNT; i++) {
                snprintf(labels, sizeof(labels), "reason=\"%s\"", dead[i]);
                metrics_counter(t, labels, METRICS_SLOT_DEAD + (unsigned)i);
        }

        metrics_family(t, "hw_webhook_delivery_latency_seconds", "histogram", "seconds",
                       "Time from the message's commit to the spool to its delivery (2xx).");
        for (int b = 0; b <= METRICS_LATENCY_BUCKETS; b++) {
                cumulative += slot[METRICS_SLOT_LATENCY_BUCKETS + b];
                if (b == METRICS_LATENCY_BUCKETS) {
                        snprintf(labels, sizeof(labels), "le=\"+Inf\"");
                } else {
                        char bound[32];

                        metrics_seconds(bound, sizeof(bound), metrics_latency_bounds_ms[b]);
                        snprintf(labels, sizeof(labels), "le=\"%s\"", bound);
                }
                fprintf(t->out, "%s_bucket{%s} %" PRIu64 "\n", t->family, labels, cumulative);
        }
        fprintf(t->out, "%s_sum %" PRIu64 ".%03" PRIu64 "\n", t->family,
                slot[METRICS_SLOT_LATENCY_SUM_MS] / 1000, slot[METRICS_SLOT_LATENCY_SUM_MS] % 1000);
        metrics_sample(t, "_count", "", cumulative);
}

static void metrics_print_spool(struct metrics_text *t, const struct status_summary *sum, int64_t now_ms)
{
        char labels[64];
        int64_t age = sum->oldest_ms >= 0 && now_ms > sum->oldest_ms ? now_ms - sum->oldest_ms : 0;

        metrics_family(t, "hw_spool_items", "gauge", NULL, "Items in each spool directory now.");
        for (int d = 0; d < SPOOL_DIR_COUNT; d++) {
                snprintf(labels, sizeof(labels), "state=\"%s\"", spool_dir_name((enum spool_dir)d));
                metrics_sample(t, "", labels, sum->count[d]);
        }
        metrics_family(t, "hw_spool_oldest_item_age_seconds", "gauge", "seconds",
                       "Age of the oldest message not yet delivered nor dead (0: none).");
        fprintf(t->out, "%s %" PRId64 ".%03" PRId64 "\n", t->family, age / 1000, age % 1000);
}

int metrics_text_print(const struct hw_config *cfg, enum metrics_format fmt, FILE *out)
{
        struct metrics_snapshot snap;
        struct status_summary sum;
        struct metrics_text t = { .out = out, .fmt = fmt, .snap = &snap };
        struct spool spool;
        struct timespec now;
        int r = spool_open(&spool, cfg->spool_dir);

        if (r < 0)
                return r;
        r = metrics_read(spool.root_fd, &snap);
        if (r >= 0)
                r = status_summary_read(&spool, &sum);
        spool_close(&spool);
        if (r < 0)
                return r;
        clock_gettime(CLOCK_REALTIME, &now);
        metrics_print_smtp(&t);
        metrics_print_webhook(&t);
        metrics_print_spool(&t, &sum, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        if (fmt == METRICS_OPENMETRICS)
                fputs("# EOF\n", out);
        return ferror(out) ? -EIO : 0;
}

int metrics_text_write_file(const struct hw_config *cfg, const char *path)
{
        char tmp[PATH_MAX];
        const char *slash = strrchr(path, '/');
        FILE *f;
        int fd, r;

        /* A hidden name in the same directory: the collector reads only
         * *.prom, and the rename cannot cross file systems. */
        if (slash)
                r = snprintf(tmp, sizeof(tmp), "%.*s/.%s.%ld", (int)(slash - path), path, slash + 1,
                             (long)getpid());
        else
                r = snprintf(tmp, sizeof(tmp), ".%s.%ld", path, (long)getpid());
        if (r < 0 || (size_t)r >= sizeof(tmp))
                return -ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        /* The exporter's user reads it, whatever our umask. */
        if (fchmod(fd, 0644) < 0 || !(f = fdopen(fd, "w"))) {
                r = -errno;
                close(fd);
                unlink(tmp);
                return r;
        }
        r = metrics_text_print(cfg, METRICS_PROMETHEUS, f);
        if (fclose(f) != 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}
