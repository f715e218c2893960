/* Logging: native journal records with fields under journald (journal.h),
 * a readable line on stderr otherwise. Secrets never reach here. */
#ifndef HW_LOG_H
#define HW_LOG_H

#include <stddef.h>
#include <syslog.h>

void log_init(const char *program);

/* One plain message. */
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One structured record: fields added one by one with log_field(), then
 * sent with a message by log_fields_send(). Names are upper case and HW_
 * prefixed (HW_QUEUE_ID); values are formatted into the record's own
 * buffer, so a record is bounded: what does not fit in LOG_RECORD_MAX
 * bytes or LOG_FIELDS_MAX fields is cut or left out, never overrun. */
#define LOG_FIELDS_MAX 32
#define LOG_RECORD_MAX 8192

struct log_fields {
        const char *field[LOG_FIELDS_MAX + 1];   /* "NAME=value", NULL-terminated */
        size_t n;
        size_t used;
        char buf[LOG_RECORD_MAX];
};

void log_fields_init(struct log_fields *f);
void log_field(struct log_fields *f, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void log_fields_send(int priority, const struct log_fields *f, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#endif
