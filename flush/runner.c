/*
 * The queue run. What an attempt means is decided by outcome.c; this file
 * carries the verdict out: delivered S3 -> gone, retry S3 -> S4, dead
 * S3 -> S5 with the reason (spool.h). The run lock serializes runners, the
 * claim rename makes each item one runner's, and what a killed run leaves
 * in processing/ is recovered by the next holder of the lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver.h"
#include "delivery_metrics.h"
#include "format.h"
#include "log.h"
#include "outcome.h"
#include "payload.h"
#include "runner.h"
#include "sign.h"
#include "spool.h"

struct runner_job {
        struct deliver_job dj;
        struct spool_entry entry;         /* in processing/ */
        int fd;
        bool busy;
        struct envelope env;
        struct payload_fields fields;
        struct payload payload;
        struct sign_standard standard;
};

struct runner {
        const struct hw_config *cfg;
        const struct runner_options *opt;
        struct runner_stats *stats;
        struct spool spool;
        struct deliver *deliver;
        struct deliver_target main_target;
        struct deliver_target role_target;
        bool have_role;
        struct runner_job *jobs;
        unsigned njobs;
        unsigned total;                   /* items found so far, for progress */
        int64_t last_progress_ms;

        struct spool_entry *batch;        /* what one scan found */
        size_t batch_len, batch_cap;
        int64_t scan_now_ms;
        size_t claims;                    /* items taken off the scan list */
        int claim_error;                  /* the last claim's failure, -errno */
};

static int64_t runner_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void runner_log(struct runner *r, int prio, const struct runner_job *job,
                       const char *outcome, unsigned attempt, const char *what, int64_t due_ms)
{
        const char *url = job->dj.target ? job->dj.target->url : "-";
        const char *id = job->entry.id;
        struct log_fields f;

        log_fields_init(&f);
        log_field(&f, "HW_QUEUE_ID", "%s", id);
        log_field(&f, "HW_OUTCOME", "%s", outcome);
        log_field(&f, "HW_ATTEMPT", "%u", attempt);
        if (job->dj.status > 0)
                log_field(&f, "HW_HTTP_STATUS", "%ld", job->dj.status);
        log_field(&f, "HW_WEBHOOK", "%s", url);
        if (what[0])
                log_field(&f, "HW_ERROR", "%s", what);
        if (due_ms > 0)
                log_field(&f, "HW_NEXT_ATTEMPT_MS", "%" PRId64, due_ms);

        if (due_ms > 0)
                log_fields_send(prio, &f, "%s %s (attempt %u, %s), next attempt in %" PRId64 " s", id,
                                outcome, attempt, what, (due_ms - runner_now_ms() + 999) / 1000);
        else if (what[0])
                log_fields_send(prio, &f, "%s %s (attempt %u, %s)", id, outcome, attempt, what);
        else
                log_fields_send(prio, &f, "%s %s to %s (attempt %u, HTTP %ld)", id, outcome, url,
                                attempt, job->dj.status);
}

/* The --now progress line, for a terminal only (opt->progress), redrawn
 * in place: a display, not a diagnostic, so not the log's. */
static void runner_progress(struct runner *r, bool final)
{
        const struct runner_stats *s = r->stats;
        int64_t now;

        if (!r->opt->progress)
                return;
        now = runner_now_ms();
        if (!final && now - r->last_progress_ms < 100)
                return;
        r->last_progress_ms = now;
        fprintf(stderr, "\rhw-flush: %u/%u: %u delivered, %u deferred, %u dead, %u failed%s",
                s->attempted, r->total, s->delivered, s->deferred, s->dead, s->failed,
                final ? "\n" : "");
}

static void runner_job_release(struct runner_job *job)
{
        payload_free(&job->payload);
        payload_fields_free(&job->fields);
        envelope_free(&job->env);
        if (job->fd >= 0)
                close(job->fd);
        job->fd = -1;
        job->busy = false;
}

static void runner_bury(struct runner *r, struct runner_job *job, const struct outcome *o)
{
        const struct spool_reason why = {
                .status = job->dj.status,
                .error = o->what,
                .attempts = o->attempts,
                .first_ms = job->entry.first_ms,
                .last_ms = runner_now_ms(),
                .url = job->dj.target ? job->dj.target->url : "-",
                .location = job->dj.location,
        };
        int e = spool_bury(&r->spool, &job->entry, &why);

        if (e < 0) {
                log_msg(LOG_ERR, "%s: cannot move to dead/: %s (a later run recovers it from processing/)",
                        job->entry.id, strerror(-e));
                r->stats->failed++;
                return;
        }
        r->stats->dead++;
        runner_log(r, LOG_WARNING, job, "dead", o->attempts, o->what, 0);
}

/* Carries out the verdict on one attempt, then frees its slot. */
static void runner_conclude(struct runner *r, struct runner_job *job, struct outcome_attempt *a)
{
        struct outcome o;
        int e;

        a->attempts_before = job->entry.attempts;
        a->age_from_ms = job->entry.first_ms > 0 ? job->entry.first_ms : spool_id_time_ms(job->entry.id);
        a->now_ms = runner_now_ms();
        outcome_decide(r->cfg, a, &o);
        delivery_metrics_count(r->cfg, a, &o, job->fd);
        r->stats->attempted++;
        switch (o.verdict) {
        case OUTCOME_DELIVERED:
                e = spool_done(&r->spool, &job->entry);
                if (e < 0) {
                        /* Delivered but still spooled: the next run sends it again. */
                        log_msg(LOG_ERR, "%s: delivered, but cannot remove it: %s",
                                job->entry.id, strerror(-e));
                }
                r->stats->delivered++;
                runner_log(r, LOG_INFO, job, "delivered", o.attempts, "", 0);
                break;
        case OUTCOME_RETRY:
                e = spool_defer(&r->spool, &job->entry, o.attempts, o.due_ms);
                if (e < 0) {
                        log_msg(LOG_ERR, "%s: cannot move to deferred/: %s (a later run recovers it "
                                "from processing/)", job->entry.id, strerror(-e));
                        r->stats->failed++;
                        break;
                }
                r->stats->deferred++;
                runner_log(r, LOG_NOTICE, job, "deferred", o.attempts, o.what, o.due_ms);
                break;
        case OUTCOME_DEAD:
                runner_bury(r, job, &o);
                break;
        }
        runner_job_release(job);
}

static void runner_done(struct deliver_job *dj, void *ctx)
{
        struct runner *r = ctx;
        struct outcome_attempt a = { .cause = OUTCOME_HTTP, .status = dj->status,
                                     .location = dj->location,
                                     .retry_after = dj->retry_after[0] ? dj->retry_after : NULL };

        if (dj->read_error < 0) {
                a.cause = OUTCOME_READ;
                a.errno_value = dj->read_error;
        } else if (dj->curl_code != 0) {
                a.cause = OUTCOME_TRANSPORT;
                a.error = dj->error;
        }
        runner_conclude(r, dj->userdata, &a);
        runner_progress(r, false);
}

static const struct deliver_target *runner_route(struct runner *r, const struct envelope *env)
{
        if (r->have_role)
                for (size_t i = 0; i < env->rcpt_count; i++)
                        if (config_is_role_address(r->cfg, env->rcpt[i]))
                                return &r->role_target;
        return &r->main_target;
}

static ssize_t runner_read_payload(void *payload, char *buf, size_t len)
{
        return payload_read(payload, buf, len);
}

/* The Standard Webhooks signature needs the whole body before the first
 * byte is sent: one pass over the stream, then back to its start. */
static int runner_sign_standard(struct runner *r, struct runner_job *job, int64_t now_sec)
{
        int err = sign_standard_make(&job->standard, r->cfg->standard_key, r->cfg->standard_key_len,
                                     job->entry.id, now_sec, runner_read_payload, &job->payload);

        payload_rewind(&job->payload);
        return err;
}

/* Claims e and starts its POST; failures before the POST are decided here. */
static void runner_start(struct runner *r, struct runner_job *job, const struct spool_entry *e)
{
        struct sign_fields sig;
        off_t body_offset;
        int64_t now_sec;
        int err;

        memset(&job->dj, 0, sizeof(job->dj));
        job->fd = -1;
        err = spool_claim(&r->spool, e, runner_now_ms(), &job->entry, &job->fd);
        if (err == 0 || err == -ENOENT)
                r->claims++;
        if (err == -ENOENT)
                return;                   /* gone since the scan (a racing tool) */
        if (err < 0) {
                log_msg(LOG_ERR, "%s: cannot claim %s: %s", e->id, e->name, strerror(-err));
                r->stats->failed++;
                r->claim_error = err;
                return;
        }
        job->busy = true;
        err = envelope_init(&job->env, 4);
        if (err < 0)
                goto temporary;
        err = envelope_read(job->fd, &job->env, &body_offset);
        if (err < 0) {
                struct outcome_attempt a = { .cause = OUTCOME_ENVELOPE, .errno_value = err };

                runner_conclude(r, job, &a);
                return;
        }
        err = payload_fields_read(&job->fields, job->fd, body_offset, &job->env);
        if (err < 0)
                goto temporary;
        job->fields.queue_id = job->entry.id;
        if (job->fields.header_too_big)
                log_msg(LOG_WARNING, "%s: header section too large to parse; from, subject and "
                        "message-headers left empty", job->entry.id);
        now_sec = runner_now_ms() / 1000;
        err = sign_make(&sig, now_sec, r->cfg->signing_key, strlen(r->cfg->signing_key));
        if (err < 0)
                goto temporary;
        job->dj.target = runner_route(r, &job->env);
        err = format_build(&job->payload,
                           job->dj.target == &r->role_target ? r->cfg->webhook_role_format
                                                             : r->cfg->webhook_format,
                           &job->fields, &sig, job->fd, body_offset);
        if (err < 0)
                goto temporary;
        if (r->cfg->standard_key_len) {
                err = runner_sign_standard(r, job, now_sec);
                if (err < 0) {
                        struct outcome_attempt a = { .cause = OUTCOME_READ, .errno_value = err };

                        runner_conclude(r, job, &a);
                        return;
                }
                job->dj.standard = &job->standard;
        }
        job->dj.delivery_id = job->entry.id;
        job->dj.payload = &job->payload;
        job->dj.userdata = job;
        err = deliver_start(r->deliver, &job->dj);
        if (err < 0)
                goto temporary;
        return;

temporary:
        {
                struct outcome_attempt a = { .cause = OUTCOME_LOCAL, .errno_value = err };

                runner_conclude(r, job, &a);
        }
}

static int runner_collect(const struct spool_entry *e, void *userdata)
{
        struct runner *r = userdata;

        if (e->dir == SPOOL_DEFERRED && !r->opt->ignore_backoff && e->due_ms > r->scan_now_ms)
                return 0;
        if (r->batch_len == r->batch_cap) {
                size_t cap = r->batch_cap ? r->batch_cap * 2 : 256;
                struct spool_entry *b = realloc(r->batch, cap * sizeof(*b));
                if (!b)
                        return -ENOMEM;
                r->batch = b;
                r->batch_cap = cap;
        }
        r->batch[r->batch_len++] = *e;
        return 0;
}

static int runner_entry_cmp(const void *a, const void *b)
{
        return strcmp(((const struct spool_entry *)a)->id, ((const struct spool_entry *)b)->id);
}

static struct runner_job *runner_free_job(struct runner *r)
{
        for (unsigned i = 0; i < r->njobs; i++)
                if (!r->jobs[i].busy)
                        return &r->jobs[i];
        return NULL;
}

/* Delivers one batch, oldest first, keeping every slot busy. */
static int runner_batch(struct runner *r)
{
        int e;

        qsort(r->batch, r->batch_len, sizeof(*r->batch), runner_entry_cmp);
        r->total += (unsigned)r->batch_len;
        for (size_t i = 0; i < r->batch_len; i++) {
                struct runner_job *job;

                while (!(job = runner_free_job(r))) {
                        e = deliver_run(r->deliver, runner_done, r);
                        if (e < 0)
                                return e;
                }
                runner_start(r, job, &r->batch[i]);
        }
        while (deliver_active(r->deliver) > 0) {
                e = deliver_run(r->deliver, runner_done, r);
                if (e < 0)
                        return e;
        }
        return 0;
}

static int runner_loop(struct runner *r)
{
        int e;

        /* First pass: pending/ and what is due in deferred/ (all of it with
         * --now). Then pending/ again until a scan finds it empty, so mail
         * committed during the run is not left for the timer. Items this
         * run defers are not looked at again: no busy loop. */
        r->batch_len = 0;
        r->scan_now_ms = runner_now_ms();
        e = spool_scan(&r->spool, SPOOL_DEFERRED, runner_collect, r);
        if (e < 0)
                return e;
        for (;;) {
                e = spool_scan(&r->spool, SPOOL_PENDING, runner_collect, r);
                if (e < 0)
                        return e;
                if (r->batch_len == 0)
                        return 0;
                r->claims = 0;
                e = runner_batch(r);
                if (e < 0)
                        return e;
                /* Items that cannot even be renamed would be found again
                 * and again: stop rather than spin, and say why. */
                if (r->claims == 0)
                        return r->claim_error < 0 ? r->claim_error : -EIO;
                r->batch_len = 0;
        }
}

/* Strays that cannot be moved (a directory root made there, say) stay in
 * pending/; each is reported once, not at every run: the spool's "strays"
 * note keeps the names already reported and still there. */
#define RUNNER_STRAYS_NOTE "strays"
#define RUNNER_STRAYS_MAX 4096
struct runner_strays {
        char reported[RUNNER_STRAYS_MAX];   /* "\nname\nname\n" from the note */
        char stuck[RUNNER_STRAYS_MAX];      /* the same form, for this run */
        size_t stuck_len;
};

static bool runner_stray_listed(const char *list, const char *name)
{
        const char *p = list;
        size_t n = strlen(name);

        while ((p = strstr(p, name)) != NULL) {
                if (p > list && p[-1] == '\n' && p[n] == '\n')
                        return true;
                p++;
        }
        return false;
}

static void runner_report_stray(void *userdata, const char *name, int error)
{
        struct runner_strays *st = userdata;
        size_t n = strlen(name);

        if (!error) {
                log_msg(LOG_WARNING, "pending/%s is not a spool item: moved to dead/%s", name, name);
                return;
        }
        if (!runner_stray_listed(st->reported, name))
                log_msg(LOG_ERR, "pending/%s is not a spool item and cannot be moved to dead/: %s "
                        "(remove it; reported once)", name, strerror(-error));
        /* A name that does not fit is reported again next time: no harm. */
        if (st->stuck_len + n + 1 < sizeof(st->stuck)) {
                memcpy(st->stuck + st->stuck_len, name, n);
                st->stuck_len += n;
                st->stuck[st->stuck_len++] = '\n';
                st->stuck[st->stuck_len] = '\0';
        }
}

static void runner_evict_strays(struct runner *r)
{
        struct runner_strays st = { .stuck = "\n", .stuck_len = 1 };
        int e;

        st.reported[0] = '\n';
        if (spool_note_read(&r->spool, RUNNER_STRAYS_NOTE, st.reported + 1, sizeof(st.reported) - 1) < 0)
                st.reported[1] = '\0';
        e = spool_evict_strays(&r->spool, runner_report_stray, &st);
        if (e < 0) {
                log_msg(LOG_WARNING, "cannot check pending/ for stray files: %s", strerror(-e));
                return;
        }
        if (strcmp(st.reported, st.stuck) != 0) {
                e = spool_note_write(&r->spool, RUNNER_STRAYS_NOTE, st.stuck + 1);
                if (e < 0)
                        log_msg(LOG_WARNING, "cannot write the spool's %s note: %s",
                                RUNNER_STRAYS_NOTE, strerror(-e));
        }
}

/* Without WEBHOOK_URL (a fresh install, say) mail is still accepted. New
 * items wait in deferred/ with no attempt counted, so hw-flush.path does not
 * start hw-flush again and again, and the first run after WEBHOOK_URL is set
 * (the timer's, or --now) delivers them. Said once, loudly: the spool's
 * "unconfigured" note remembers that it was said. */
#define RUNNER_UNCONFIGURED_NOTE "unconfigured"

static int runner_hold(struct runner *r)
{
        char note[8];
        int e, held = 0;

        r->batch_len = 0;
        e = spool_scan(&r->spool, SPOOL_PENDING, runner_collect, r);
        if (e < 0)
                return e;
        for (size_t i = 0; i < r->batch_len; i++) {
                struct spool_entry claimed;
                int fd;

                /* No attempt: nothing recorded as a first one. */
                e = spool_claim(&r->spool, &r->batch[i], 0, &claimed, &fd);
                if (e == -ENOENT)
                        continue;
                if (e < 0)
                        return e;
                close(fd);
                e = spool_defer(&r->spool, &claimed, claimed.attempts,
                                runner_now_ms() + (int64_t)r->cfg->retry_interval_ms);
                if (e < 0)
                        return e;       /* left in processing/: the next run recovers it */
                held++;
        }
        r->stats->deferred += (unsigned)held;
        if (spool_note_read(&r->spool, RUNNER_UNCONFIGURED_NOTE, note, sizeof(note)) >= 0) {
                if (held)
                        log_msg(LOG_INFO, "WEBHOOK_URL is not set: %d new message(s) wait in deferred/", held);
                return 0;
        }
        log_msg(LOG_ERR, "WEBHOOK_URL is not set: mail is accepted and kept in the spool (%d new "
                "message(s) wait in deferred/); set WEBHOOK_URL in the configuration file and "
                "delivery starts by itself at the next timer run (hw-flush --now delivers at once)",
                held);
        e = spool_note_write(&r->spool, RUNNER_UNCONFIGURED_NOTE, "WEBHOOK_URL is not set\n");
        if (e < 0)
                log_msg(LOG_WARNING, "cannot write the spool's %s note: %s", RUNNER_UNCONFIGURED_NOTE,
                        strerror(-e));
        return 0;
}

int runner_run(const struct hw_config *cfg, const struct runner_options *opt,
               struct runner_stats *stats)
{
        struct runner r = { .cfg = cfg, .opt = opt, .stats = stats };
        int lock_fd = -1, e;

        memset(stats, 0, sizeof(*stats));
        e = spool_open(&r.spool, cfg->spool_dir);
        if (e < 0) {
                log_msg(LOG_ERR, "cannot open the spool %s: %s", cfg->spool_dir, strerror(-e));
                return e;
        }
        lock_fd = spool_lock(&r.spool, true);
        if (lock_fd < 0) {
                e = lock_fd;
                log_msg(LOG_ERR, "cannot take the run lock in %s: %s", cfg->spool_dir, strerror(-e));
                goto out_spool;
        }

        e = spool_recover(&r.spool, runner_now_ms());
        if (e < 0) {
                log_msg(LOG_ERR, "cannot recover items from processing/: %s", strerror(-e));
                goto out_lock;
        }
        stats->recovered = (unsigned)e;
        if (e > 0)
                log_msg(LOG_WARNING, "recovered %d item(s) left in processing/ by an earlier run", e);
        e = spool_clean_tmp(&r.spool, runner_now_ms());
        if (e < 0)
                log_msg(LOG_WARNING, "cannot clean tmp/: %s", strerror(-e));
        else if (e > 0)
                log_msg(LOG_NOTICE, "removed %d stale item(s) from tmp/", e);

        runner_evict_strays(&r);

        if (!cfg->webhook_url[0]) {
                e = runner_hold(&r);
                if (e < 0)
                        log_msg(LOG_ERR, "cannot keep new mail in deferred/: %s", strerror(-e));
                free(r.batch);
                goto out_lock;
        }
        e = spool_note_remove(&r.spool, RUNNER_UNCONFIGURED_NOTE);
        if (e < 0)
                log_msg(LOG_WARNING, "cannot remove the spool's %s note: %s", RUNNER_UNCONFIGURED_NOTE,
                        strerror(-e));

        e = deliver_target_init(&r.main_target, cfg->webhook_url);
        if (e < 0) {
                log_msg(LOG_ERR, "WEBHOOK_URL cannot be used: %s", strerror(-e));
                goto out_lock;
        }
        if (cfg->webhook_role_url[0]) {
                e = deliver_target_init(&r.role_target, cfg->webhook_role_url);
                if (e < 0) {
                        log_msg(LOG_ERR, "WEBHOOK_ROLE_URL cannot be used: %s", strerror(-e));
                        goto out_targets;
                }
                r.have_role = true;
        }
        r.njobs = cfg->concurrency ? cfg->concurrency : 1;
        r.jobs = calloc(r.njobs, sizeof(*r.jobs));
        if (!r.jobs) {
                e = -ENOMEM;
                goto out_targets;
        }
        e = deliver_new(&r.deliver, cfg, r.njobs);
        if (e < 0) {
                log_msg(LOG_ERR, "cannot set up libcurl: %s", strerror(-e));
                goto out_jobs;
        }

        e = runner_loop(&r);
        if (e < 0)
                log_msg(LOG_ERR, "the run stopped: %s", strerror(-e));
        if (r.total > 0)
                runner_progress(&r, true);

        deliver_free(r.deliver);
out_jobs:
        for (unsigned i = 0; i < r.njobs; i++)
                if (r.jobs[i].busy)
                        runner_job_release(&r.jobs[i]);
        free(r.jobs);
out_targets:
        deliver_target_free(&r.main_target);
        deliver_target_free(&r.role_target);
        free(r.batch);
out_lock:
        close(lock_fd);
out_spool:
        spool_close(&r.spool);
        return e < 0 ? e : 0;
}
