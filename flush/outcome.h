/*
 * The one place that decides what an attempt at the webhook means (SPEC
 * section 5), as a single switch over what happened:
 *
 *   what happened                        verdict
 *   HTTP 2xx                             delivered       S3 -> gone
 *   HTTP 406                             dead            S3 -> S5
 *   HTTP 3xx (never followed), other     retry at T      S3 -> S4
 *   transport error (refused, timeout,   retry at T      S3 -> S4
 *     TLS), reading the item failed,
 *     a local error before the POST
 *   the envelope cannot be read: no      retry at T      S3 -> S4
 *     memory, or EIO
 *   the envelope cannot be read: any     dead            S3 -> S5
 *     other error (the item is not one)
 *
 * A retry whose time would pass MAX_RETRY_AGE_MS (counted from receipt)
 * is dead instead: "retry age exceeded". T is RETRY_INTERVAL_MS doubled
 * per failed attempt, capped at RETRY_MAX_INTERVAL_MS, never past the age
 * limit (the last try is at the limit).
 */
#ifndef HW_FLUSH_OUTCOME_H
#define HW_FLUSH_OUTCOME_H

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
        unsigned attempts_before;         /* attempts made before this one */
        int64_t received_ms;              /* receipt time, -1 if unknown */
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
        char what[OUTCOME_WHAT_MAX];      /* the failure in words, "" when delivered */
};

/* Decides one attempt; never fails. */
void outcome_decide(const struct hw_config *cfg, const struct outcome_attempt *a, struct outcome *o);

/* When a failed item is tried next, or -1 when it is dead-lettered instead:
 * the doubling delay after `attempts` failures, capped, and never past the
 * retry age (the last try is at the age limit). */
int64_t outcome_next_due(const struct hw_config *cfg, int64_t received_ms,
                         unsigned attempts, int64_t now_ms);

#endif
