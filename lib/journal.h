#ifndef HW_JOURNAL_H
#define HW_JOURNAL_H

#include <stddef.h>
#include <sys/uio.h>

/* Where journald listens for native records. */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"
/* Fields in one record, and the bytes of all of them together. */
#define JOURNAL_FIELDS_MAX 64
#define JOURNAL_RECORD_MAX (128 * 1024)

/* Sends one record of "NAME=value" fields (values may hold any byte) to
 * the journal socket at path as one datagram. 0 or -errno: -EINVAL for a
 * field without a valid name, -EMSGSIZE for a record over the limits, or
 * the socket's error (no journald: -ENOENT or -ECONNREFUSED). */
int journal_send_to(const char *path, const struct iovec *fields, size_t n);

/* journal_send_to(JOURNAL_SOCKET, ...). */
int journal_send(const struct iovec *fields, size_t n);

#endif
