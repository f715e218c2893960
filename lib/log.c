/* Logging. Under journald (JOURNAL_STREAM names our stderr) plain messages
 * are stderr lines with a <priority> prefix and records are native journal
 * records (journal.c), so their fields can be queried; a record journald
 * does not take becomes a stderr line. Elsewhere everything is a readable
 * stderr line. */
#include "log.h"

#include "journal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#define LOG_LINE_MAX 2048

static const char *log_program = "hw-webhook";
static bool log_to_journal;

static bool log_stderr_is_journal(void)
{
        const char *stream = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!stream || sscanf(stream, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(2, &st) < 0)
                return false;
        return st.st_dev == dev && st.st_ino == ino;
}

void log_init(const char *program)
{
        log_program = program;
        log_to_journal = log_stderr_is_journal();
}

static void log_line(int priority, const char *text)
{
        if (log_to_journal)
                fprintf(stderr, "<%d>%s\n", priority, text);
        else
                fprintf(stderr, "%s: %s\n", log_program, text);
        fflush(stderr);
}

static void log_record(int priority, const char *message, const char *const *fields);

/* Formats the message; a plain message has no fields (NULL). */
static void log_vsend(int priority, const char *const *fields, const char *fmt, va_list ap)
{
        char text[LOG_LINE_MAX];
        int saved = errno;

        vsnprintf(text, sizeof(text), fmt, ap);
        if (fields)
                log_record(priority, text, fields);
        else
                log_line(priority, text);
        errno = saved;
}

void log_msg(int priority, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_vsend(priority, NULL, fmt, ap);
        va_end(ap);
}

static bool log_record_journal(int priority, const char *message, const char *const *fields)
{
        char msg[sizeof("MESSAGE=") + LOG_LINE_MAX], prio[16], ident[64];
        struct iovec iov[LOG_FIELDS_MAX + 3];
        size_t n = 0;

        snprintf(msg, sizeof(msg), "MESSAGE=%s", message);
        snprintf(prio, sizeof(prio), "PRIORITY=%d", priority);
        snprintf(ident, sizeof(ident), "SYSLOG_IDENTIFIER=%s", log_program);
        iov[n++] = (struct iovec){ msg, strlen(msg) };
        iov[n++] = (struct iovec){ prio, strlen(prio) };
        iov[n++] = (struct iovec){ ident, strlen(ident) };
        for (size_t i = 0; fields && fields[i] && n < LOG_FIELDS_MAX + 3; i++)
                iov[n++] = (struct iovec){ (void *)fields[i], strlen(fields[i]) };
        return journal_send(iov, n) == 0;
}

/* A native record under journald, else one line with the fields. */
static void log_record(int priority, const char *message, const char *const *fields)
{
        char line[LOG_LINE_MAX];
        size_t len;

        if (log_to_journal && log_record_journal(priority, message, fields))
                return;
        len = (size_t)snprintf(line, sizeof(line), "%s", message);
        for (size_t i = 0; fields[i] && len < sizeof(line); i++)
                len += (size_t)snprintf(line + len, sizeof(line) - len, " %s", fields[i]);
        log_line(priority, line);
}

void log_fields_init(struct log_fields *f)
{
        f->n = 0;
        f->used = 0;
        f->field[0] = NULL;
}

void log_field(struct log_fields *f, const char *name, const char *fmt, ...)
{
        size_t room = sizeof(f->buf) - f->used;
        char *at = f->buf + f->used;
        va_list ap;
        int n;

        if (f->n == LOG_FIELDS_MAX || room < strlen(name) + 2)
                return;
        n = snprintf(at, room, "%s=", name);
        va_start(ap, fmt);
        vsnprintf(at + n, room - (size_t)n, fmt, ap);
        va_end(ap);
        f->used += strlen(at) + 1;
        f->field[f->n++] = at;
        f->field[f->n] = NULL;
}

void log_fields_send(int priority, const struct log_fields *f, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_vsend(priority, f->field, fmt, ap);
        va_end(ap);
}
