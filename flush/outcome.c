/* See outcome.h: what an attempt at the webhook means. */
#include "outcome.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define OUTCOME_AGE_WORDS "; retry age exceeded"

int64_t outcome_next_due(const struct hw_config *cfg, int64_t age_from_ms,
                         unsigned attempts, int64_t now_ms, uint64_t wait_ms)
{
        uint64_t delay = cfg->retry_interval_ms;
        int64_t due, limit;

        for (unsigned i = 1; i < attempts && delay < cfg->retry_max_interval_ms; i++)
                delay *= 2;
        if (delay < wait_ms)
                delay = wait_ms;
        if (delay > cfg->retry_max_interval_ms)
                delay = cfg->retry_max_interval_ms;
        due = now_ms + (int64_t)delay;
        if (cfg->max_retry_age_ms == 0 || age_from_ms < 0)
                return due;
        limit = age_from_ms + (int64_t)cfg->max_retry_age_ms;
        if (now_ms >= limit)
                return -1;
        return due < limit ? due : limit;
}

/* Longer waits than this are all capped the same (RETRY_MAX_INTERVAL_MS
 * is at most a year): the figure only keeps the arithmetic in range. */
#define OUTCOME_WAIT_MAX_S (UINT64_C(10) * 366 * 86400)

/* The three forms of an HTTP-date (RFC 9110 5.6.7), read in the C locale
 * (hw-flush never calls setlocale): IMF-fixdate, then the obsolete
 * RFC 850 and asctime forms a recipient must still accept. */
static const char *const outcome_date_forms[] = {
        "%a, %d %b %Y %H:%M:%S GMT",
        "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %e %H:%M:%S %Y",
};

int outcome_retry_after(const char *value, int64_t now_ms, uint64_t *wait_ms)
{
        const char *p = value;
        size_t digits;

        while (*p == ' ' || *p == '\t')
                p++;
        digits = strspn(p, "0123456789");
        if (digits > 0 && p[digits + strspn(p + digits, " \t")] == '\0') {
                uint64_t s = 0;

                for (size_t i = 0; i < digits && s <= OUTCOME_WAIT_MAX_S; i++)
                        s = s * 10 + (uint64_t)(p[i] - '0');
                *wait_ms = (s > OUTCOME_WAIT_MAX_S ? OUTCOME_WAIT_MAX_S : s) * 1000;
                return 0;
        }
        for (size_t i = 0; i < sizeof(outcome_date_forms) / sizeof(outcome_date_forms[0]); i++) {
                struct tm tm;
                const char *end;
                time_t t;

                memset(&tm, 0, sizeof(tm));
                end = strptime(p, outcome_date_forms[i], &tm);
                if (!end || end[strspn(end, " \t")] != '\0')
                        continue;
                t = timegm(&tm);
                if (t == (time_t)-1)
                        return -EINVAL;
                if ((int64_t)t * 1000 <= now_ms)
                        *wait_ms = 0;
                else if ((uint64_t)((int64_t)t * 1000 - now_ms) > OUTCOME_WAIT_MAX_S * 1000)
                        *wait_ms = OUTCOME_WAIT_MAX_S * 1000;
                else
                        *wait_ms = (uint64_t)((int64_t)t * 1000 - now_ms);
                return 0;
        }
        return -EINVAL;
}

/* What the webhook asked to wait: only 429 (RFC 6585) and 503 (RFC 9110)
 * are honoured, and a value that does not parse asks for nothing. */
static uint64_t outcome_wait(const struct outcome_attempt *a)
{
        uint64_t wait_ms;

        if (a->cause != OUTCOME_HTTP || (a->status != 429 && a->status != 503) || !a->retry_after ||
            outcome_retry_after(a->retry_after, a->now_ms, &wait_ms) < 0)
                return 0;
        return wait_ms;
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
                else if ((a->status == 429 || a->status == 503) && a->retry_after)
                        snprintf(buf, len, "HTTP %ld, Retry-After: %s", a->status, a->retry_after);
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
                if (config_status_in(&cfg->delivered_statuses, a->status)) {
                        o->verdict = OUTCOME_DELIVERED;
                        return;
                }
                o->verdict = config_status_in(&cfg->dead_statuses, a->status) ? OUTCOME_DEAD : OUTCOME_RETRY;
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
        o->due_ms = outcome_next_due(cfg, a->age_from_ms, o->attempts, a->now_ms, outcome_wait(a));
        if (o->due_ms < 0) {
                size_t n = strlen(o->what);

                o->verdict = OUTCOME_DEAD;
                o->too_old = true;
                o->due_ms = 0;
                if (n + sizeof(OUTCOME_AGE_WORDS) > sizeof(o->what))
                        n = sizeof(o->what) - sizeof(OUTCOME_AGE_WORDS);
                memcpy(o->what + n, OUTCOME_AGE_WORDS, sizeof(OUTCOME_AGE_WORDS));
        }
}
