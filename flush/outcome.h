/*
 * The one place that decides what an attempt at the webhook means (SPEC
 * section 5), as a single switch over what happened:
 *
 *   what happened                        verdict
 *   HTTP status in                       delivered       S3 -> gone
 *     WEBHOOK_DELIVERED_STATUSES (2xx,
 *     and codes such as 409 if added)
 *   HTTP status in WEBHOOK_DEAD_STATUSES dead            S3 -> S5
 *     (406 unless set)
 *   HTTP 429 or 503 with Retry-After     retry at the    S3 -> S4
 *     (delay-seconds or an HTTP-date)      later of T and
 *                                          what it says,
 *                                          capped as T is
 *   HTTP 3xx (never followed), other     retry at T      S3 -> S4
 *   transport error (refused, timeout,   retry at T      S3 -> S4
 *     TLS), reading the item failed,
 *     a local error before the POST
 *   the envelope cannot be read: no      retry at T      S3 -> S4
 *     memory, or EIO
 *   the envelope cannot be read: any     dead            S3 -> S5
 *     other error (the item is not one)
 *
 * A retry whose time would pass MAX_RETRY_AGE_MS (5 days unless set) is
 * dead instead: "retry age exceeded". The age counts from the item's first
 * attempt (from receipt when an older version left it unrecorded): mail
 * held while WEBHOOK_URL was unset or hw-flush was stopped gets its whole
 * retry age once delivery starts, and so does a requeued dead letter, whose
 * first attempt starts anew (lib/spool.h). So a consumer
 * that refuses one message for ever (a 400 for its encoding, say) does
 * not keep it in deferred/ for ever: it becomes a dead letter, logged,
 * counted by hw-flush --status and requeueable. T is RETRY_INTERVAL_MS doubled
 * per failed attempt, capped at RETRY_MAX_INTERVAL_MS, never past the age
 * limit (the last try is at the limit).
 */
#ifndef HW_FLUSH_OUTCOME_H
#define HW_FLUSH_OUTCOME_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define OUTCOME_WHAT_MAX 800              /* a failure in words */

enum outcome_cause {
        OUTCOME_HTTP,                     /* the webhook answered: status */
        OUTCOME_TRANSPORT,                /* no answer: error names libcurl's failure */
        OUTCOME_READ,                     /* the item could not be streamed: errno */
        OUTCOME_LOCAL,                    /* the POST could not be prepared: errno */
        OUTCOME_ENVELOPE,                 /* envelope_read() failed: errno */
};

struct outcome_attempt {
        enum outcome_cause cause;
        long status;                      /* OUTCOME_HTTP */
        int errno_value;                  /* OUTCOME_READ, _LOCAL, _ENVELOPE: -errno */
        const char *error;                /* OUTCOME_TRANSPORT: libcurl's words */
        const char *location;             /* a 3xx's Location, or NULL */
        const char *retry_after;          /* the Retry-After header, or NULL */
        unsigned attempts_before;         /* attempts made before this one */
        int64_t age_from_ms;              /* when the retry age starts, -1 if unknown */
        int64_t now_ms;
};

enum outcome_verdict {
        OUTCOME_DELIVERED,
        OUTCOME_RETRY,
        OUTCOME_DEAD,
};

struct outcome {
        enum outcome_verdict verdict;
        unsigned attempts;                /* attempts to record, this one included */
        int64_t due_ms;                   /* OUTCOME_RETRY: when to try again */
        bool too_old;                     /* OUTCOME_DEAD by MAX_RETRY_AGE_MS */
        char what[OUTCOME_WHAT_MAX];      /* the failure in words, "" when delivered */
};

/* Decides one attempt; never fails. */
void outcome_decide(const struct hw_config *cfg, const struct outcome_attempt *a, struct outcome *o);

/* When a failed item is tried next, or -1 when it is dead-lettered instead:
 * the doubling delay after `attempts` failures or wait_ms if longer (what
 * the webhook asked for; 0 if nothing), capped, and never past the retry
 * age (the last try is at the age limit). */
int64_t outcome_next_due(const struct hw_config *cfg, int64_t age_from_ms,
                         unsigned attempts, int64_t now_ms, uint64_t wait_ms);

/* The wait a Retry-After value asks for (RFC 9110 10.2.3: delay-seconds,
 * or an HTTP-date in any of its three forms) in ms from now_ms, 0 for a
 * date past; -EINVAL when it is neither. */
int outcome_retry_after(const char *value, int64_t now_ms, uint64_t *wait_ms);

#endif
