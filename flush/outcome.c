/* See outcome.h: what an attempt at the webhook means. */
#include "outcome.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define OUTCOME_AGE_WORDS "; retry age exceeded"

int64_t outcome_next_due(const struct hw_config *cfg, int64_t received_ms,
                         unsigned attempts, int64_t now_ms)
{
        uint64_t delay = cfg->retry_interval_ms;
        int64_t due, limit;

        for (unsigned i = 1; i < attempts && delay < cfg->retry_max_interval_ms; i++)
                delay *= 2;
        if (delay > cfg->retry_max_interval_ms)
                delay = cfg->retry_max_interval_ms;
        due = now_ms + (int64_t)delay;
        if (cfg->max_retry_age_ms == 0 || received_ms < 0)
                return due;
        limit = received_ms + (int64_t)cfg->max_retry_age_ms;
        if (now_ms >= limit)
                return -1;
        return due < limit ? due : limit;
}

/* An envelope that cannot be read for want of memory, or because the disk
 * failed, may read fine next time; any other failure is the item's own. */
static bool outcome_envelope_broken(const struct outcome_attempt *a)
{
        return a->errno_value != -ENOMEM && a->errno_value != -EIO;
}

/* The words for what happened, without secrets: the URL is not in them. */
static void outcome_describe(const struct outcome_attempt *a, char *buf, size_t len)
{
        switch (a->cause) {
        case OUTCOME_HTTP:
                if (a->status >= 300 && a->status <= 399)
                        snprintf(buf, len, "HTTP %ld redirect to %s, not followed", a->status,
                                 a->location && a->location[0] ? a->location : "(no Location)");
                else
                        snprintf(buf, len, "HTTP %ld", a->status);
                break;
        case OUTCOME_TRANSPORT:
                snprintf(buf, len, "%s", a->error ? a->error : "transfer failed");
                break;
        case OUTCOME_READ:
                snprintf(buf, len, "reading the item: %s", strerror(-a->errno_value));
                break;
        case OUTCOME_LOCAL:
                snprintf(buf, len, "local error: %s", strerror(-a->errno_value));
                break;
        case OUTCOME_ENVELOPE:
                snprintf(buf, len, "%s: %s", outcome_envelope_broken(a) ? "unreadable item" :
                         "local error", strerror(-a->errno_value));
                break;
        }
}

void outcome_decide(const struct hw_config *cfg, const struct outcome_attempt *a, struct outcome *o)
{
        memset(o, 0, sizeof(*o));
        o->attempts = a->attempts_before + 1;
        switch (a->cause) {
        case OUTCOME_HTTP:
                if (a->status >= 200 && a->status <= 299) {
                        o->verdict = OUTCOME_DELIVERED;
                        return;
                }
                o->verdict = a->status == 406 ? OUTCOME_DEAD : OUTCOME_RETRY;
                break;
        case OUTCOME_TRANSPORT:
        case OUTCOME_READ:
        case OUTCOME_LOCAL:
                o->verdict = OUTCOME_RETRY;
                break;
        case OUTCOME_ENVELOPE:
                if (!outcome_envelope_broken(a)) {
                        o->verdict = OUTCOME_RETRY;
                        break;
                }
                /* Nothing was sent: no attempt is counted. */
                o->verdict = OUTCOME_DEAD;
                o->attempts = a->attempts_before;
                break;
        }
        outcome_describe(a, o->what, sizeof(o->what));
        if (o->verdict != OUTCOME_RETRY)
                return;
        o->due_ms = outcome_next_due(cfg, a->received_ms, o->attempts, a->now_ms);
        if (o->due_ms < 0) {
                size_t n = strlen(o->what);

                o->verdict = OUTCOME_DEAD;
                o->due_ms = 0;
                if (n + sizeof(OUTCOME_AGE_WORDS) > sizeof(o->what))
                        n = sizeof(o->what) - sizeof(OUTCOME_AGE_WORDS);
                memcpy(o->what + n, OUTCOME_AGE_WORDS, sizeof(OUTCOME_AGE_WORDS));
        }
}
