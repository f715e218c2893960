/* Parallel webhook POSTs: the only user of libcurl's multi interface. */
#ifndef HW_FLUSH_DELIVER_H
#define HW_FLUSH_DELIVER_H

#include <stdbool.h>

#include "config.h"
#include "payload.h"

#define DELIVER_ERROR_MAX 256             /* libcurl's CURL_ERROR_SIZE */
#define DELIVER_LOCATION_MAX 512

/* A webhook URL split for use: user information goes to Basic auth and
 * never into url, which is what logs and dead-letter reasons show. */
struct deliver_target {
        char url[HW_URL_MAX];
        char *user;                       /* NULL without user information */
        char *password;
};

int deliver_target_init(struct deliver_target *t, const char *url);
void deliver_target_free(struct deliver_target *t);

struct deliver_job {
        /* set by the caller */
        const struct deliver_target *target;
        struct payload *payload;
        void *userdata;
        /* the result */
        long status;                      /* HTTP status, 0 without a response */
        int curl_code;                    /* CURLE_OK or the transfer's error */
        int read_error;                   /* -errno from the payload stream */
        char error[DELIVER_ERROR_MAX];    /* libcurl's words for curl_code */
        char location[DELIVER_LOCATION_MAX]; /* of a 3xx, never followed */
        void *easy;                       /* deliver.c's */
        void *headers;                    /* deliver.c's: the request headers */
};

struct deliver;

/* libcurl's process-wide set-up, before any other deliver_ call, and its
 * undoing at exit. deliver_global_init returns 0 or -EIO. */
int deliver_global_init(void);
void deliver_global_cleanup(void);

int deliver_new(struct deliver **out, const struct hw_config *cfg, unsigned concurrency);
void deliver_free(struct deliver *d);

/* Starts job; -EBUSY when all concurrency slots are taken. */
int deliver_start(struct deliver *d, struct deliver_job *job);
/* Transfers until at least one job ends (done is called for each that
 * did) or none is running. Returns the number ended, or -errno. */
int deliver_run(struct deliver *d, void (*done)(struct deliver_job *job, void *ctx), void *ctx);
unsigned deliver_active(const struct deliver *d);

#endif
