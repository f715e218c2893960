/*
 * Counters for Prometheus, shared by every hw-receive and hw-flush process
 * with no daemon and no lock: SPOOL_DIR/metrics is one page of 64-bit
 * words, mapped MAP_SHARED into each process that counts, and a count is
 * one atomic add to its word. The kernel's page cache is the meeting point:
 * a process that exits or is killed has already put its counts there, and
 * the next process, or the next boot, finds them in the file.
 *
 * The file (native byte order):
 *
 *   word 0      magic "hwmetr01"
 *   word 1      created: Unix ms when the file was made (the counters'
 *               start; a new file means counters started again at 0)
 *   word 2..3   reserved, 0
 *   word 4..    the counters, at the slots of enum metrics_slot
 *   size        exactly METRICS_FILE_SIZE bytes
 *
 * Slots are only ever appended, never moved or reused, so every version
 * reads every other's file: a newer one finds zeros in its new slots, an
 * older one ignores them.
 *
 * Made whole before it has its name: a new file is written under a
 * temporary name and renamed into place (RENAME_NOREPLACE when there was
 * none, so two processes creating it at once share the winner's). A file
 * that is not whole (wrong size, wrong magic: a crash, a stray write, an
 * operator's truncation) is replaced by a new one, and the counters start
 * again at 0 with a new `created`; two processes replacing one bad file
 * at the same instant can lose each other's first few counts. Counting
 * never fails a session or a delivery: when the file cannot be made or
 * mapped, the process logs it once and counts nothing.
 *
 * Durability: counts survive the process at once (they are in the shared
 * page) and a crash of the machine once the kernel has written the page
 * back (hw-flush also syncs it at the end of every run, hw-receive never:
 * a session must not wait for statistics); a power loss
 * between the two may take back the last seconds of counts, which
 * Prometheus reads as a counter reset.
 *
 * The file is replaced, never truncated, by this code: a file truncated
 * under a running process that has it mapped would fault that process
 * (SIGBUS). To reset the counters, remove the file; each process keeps
 * counting into the one it mapped until it exits.
 */
#ifndef HW_METRICS_H
#define HW_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#define METRICS_FILE "metrics"
#define METRICS_FILE_SIZE 4096
#define METRICS_HEADER_WORDS 4
#define METRICS_SLOTS (METRICS_FILE_SIZE / 8 - METRICS_HEADER_WORDS)

/* Labels with a fixed set of values; each list ends with its count. */
enum metrics_class { METRICS_CLASS_NONE, METRICS_CLASS_2XX, METRICS_CLASS_3XX,
                     METRICS_CLASS_4XX, METRICS_CLASS_5XX, METRICS_CLASS_COUNT };

/* The outcomes of a mail transaction after its final dot: the HW_OUTCOME
 * values of receive/smtp.c's transaction log, with '-' as '_'. */
enum metrics_message {
        METRICS_MSG_ACCEPTED, METRICS_MSG_SILENTLY_DENIED, METRICS_MSG_DENIED,
        METRICS_MSG_REJECTED_SIZE, METRICS_MSG_REJECTED_LOOP, METRICS_MSG_REJECTED_HEADER,
        METRICS_MSG_DEFERRED_POLICY, METRICS_MSG_FAILED_SPOOL, METRICS_MSG_ABORTED,
        METRICS_MSG_DEFERRED, METRICS_MSG_REJECTED_DMARC,
        METRICS_MSG_OTHER, METRICS_MSG_COUNT
};

/* Commands whose refusals are counted. */
enum metrics_command { METRICS_CMD_MAIL, METRICS_CMD_RCPT, METRICS_CMD_COUNT };

/* RFC 3463's subjects (the middle digit of the enhanced status code). */
#define METRICS_SUBJECT_COUNT 8

enum metrics_delivery { METRICS_DELIVERED, METRICS_DEFERRED, METRICS_DEAD, METRICS_DELIVERY_COUNT };

enum metrics_dead_reason { METRICS_DEAD_REFUSED, METRICS_DEAD_RETRY_AGE, METRICS_DEAD_UNREADABLE,
                           METRICS_DEAD_REASON_COUNT };

enum metrics_connection_refusal { METRICS_REFUSED_SOURCE_LIMIT, METRICS_REFUSED_LOCAL_ERROR,
                                  METRICS_REFUSED_COUNT };

/* Upper bounds of the commit-to-delivery latency buckets, in ms; +Inf follows. */
#define METRICS_LATENCY_BUCKETS 14
extern const int64_t metrics_latency_bounds_ms[METRICS_LATENCY_BUCKETS];

/* Where each counter lives in the file. Append only (see above). */
enum metrics_slot {
        METRICS_SLOT_CONNECTIONS = 0,
        METRICS_SLOT_CONN_REFUSED = 1,
        METRICS_SLOT_MESSAGES = METRICS_SLOT_CONN_REFUSED + 8,
        METRICS_SLOT_REFUSALS = METRICS_SLOT_MESSAGES + 8 * METRICS_MSG_COUNT + 8,
        METRICS_SLOT_DELIVERIES = METRICS_SLOT_REFUSALS + 8 * METRICS_CMD_COUNT * METRICS_CLASS_COUNT + 8,
        METRICS_SLOT_RETRIES = METRICS_SLOT_DELIVERIES + 8 * METRICS_DELIVERY_COUNT + 8,
        METRICS_SLOT_DEAD = METRICS_SLOT_RETRIES + 1,
        METRICS_SLOT_LATENCY_BUCKETS = METRICS_SLOT_DEAD + 8,
        METRICS_SLOT_LATENCY_SUM_MS = METRICS_SLOT_LATENCY_BUCKETS + 24,
        METRICS_SLOT_END,
};
/* The blocks are sized with room to grow: messages 8 classes per outcome
 * (of which METRICS_CLASS_COUNT are used), refusals 8 subjects per
 * command and class, deliveries 8 classes per outcome. */
#define METRICS_SLOT_MESSAGE(outcome, class) (METRICS_SLOT_MESSAGES + 8 * (outcome) + (class))
#define METRICS_SLOT_REFUSAL(cmd, class, subject) \
        (METRICS_SLOT_REFUSALS + 8 * ((cmd) * METRICS_CLASS_COUNT + (class)) + (subject))
#define METRICS_SLOT_DELIVERY(outcome, class) (METRICS_SLOT_DELIVERIES + 8 * (outcome) + (class))

/* Maps (or makes) SPOOL_DIR/metrics for counting, from the spool's root
 * directory. 0, or -errno (logged once; counting is then off). */
int metrics_open(int spool_root_fd);
/* Writes the counts back to the disk (hw-flush, at the end of a run). */
void metrics_sync(void);
void metrics_close(void);

/* The counting calls: no-ops while no file is mapped. reply is the SMTP
 * reply line sent ("" when none was). */
void metrics_count_connection(void);
void metrics_count_connection_refused(enum metrics_connection_refusal why);
void metrics_count_message(const char *outcome, const char *reply);
void metrics_count_refusal(enum metrics_command cmd, const char *reply);
/* One attempt at the webhook: its verdict, the HTTP status (0: none),
 * whether it was a retry of an earlier failed attempt and, when delivered,
 * the ms since the message was committed (< 0: unknown). */
void metrics_count_delivery(enum metrics_delivery verdict, long http_status, bool retry,
                            int64_t latency_ms);
void metrics_count_dead_letter(enum metrics_dead_reason why);

/* A copy of the counters, read without creating anything (for a reader
 * that may be root, or a spool without the file yet: all zeros, created 0). */
struct metrics_snapshot {
        int64_t created_ms;
        uint64_t slot[METRICS_SLOTS];
};
int metrics_read(int spool_root_fd, struct metrics_snapshot *snap);

/* Classifications, for the counters and their printing. */
enum metrics_class metrics_reply_class(const char *reply);
enum metrics_class metrics_http_class(long status);
const char *metrics_class_name(enum metrics_class c);
enum metrics_message metrics_message_of(const char *outcome);
const char *metrics_message_name(enum metrics_message m);
/* The usual class of each outcome's reply (printed even at 0). */
enum metrics_class metrics_message_class(enum metrics_message m);
int metrics_reply_subject(const char *reply);
const char *metrics_subject_name(int subject);

#endif
