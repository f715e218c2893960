/* Logging: native journal records with fields under journald (journal.h),
 * a readable line on stderr otherwise. Secrets never reach here. */
#ifndef HW_LOG_H
#define HW_LOG_H

#include <syslog.h>

void log_init(const char *program);

/* One plain message. */
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One structured record: message plus fields "NAME=value" (NULL-terminated
 * array). Field names are upper case, HW_ prefixed (HW_QUEUE_ID=...). */
void log_record(int priority, const char *message, const char *const *fields);

#endif
