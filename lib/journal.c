/* journald's native protocol, the documented interface behind
 * sd_journal_sendv(): one datagram per record, each field either
 *
 *      NAME=value\n                            (the value has no newline)
 *      NAME\n <length: 8 bytes little endian> value \n     (any bytes)
 *
 * hw-receive logs one record per transaction in a process that lives for
 * one connection; loading libsystemd (and the five libraries it links) for
 * that record quadrupled the instructions of a whole one-message session,
 * so both programs speak the protocol here. Records are bounded well under
 * the datagram size the socket accepts, so the file-descriptor passing
 * journald offers for huge records is not needed. */
#include "journal.h"

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define JOURNAL_NAME_MAX 64

/* The socket stays open: hw-flush sends a record per delivery. */
static int journal_fd = -1;

/* journald's rule: upper-case letters, digits and '_', not starting with
 * a digit; it drops other fields, we refuse the record instead so the
 * caller can fall back to a plain line. */
static size_t journal_name_len(const struct iovec *field)
{
        const char *p = field->iov_base;
        const char *eq = memchr(p, '=', field->iov_len);
        size_t len = eq ? (size_t)(eq - p) : 0;

        if (len == 0 || len > JOURNAL_NAME_MAX || (p[0] >= '0' && p[0] <= '9'))
                return 0;
        for (size_t i = 0; i < len; i++)
                if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
                        return 0;
        return len;
}

int journal_send_to(const char *path, const struct iovec *fields, size_t n)
{
        /* Up to five pieces per field: name, "\n", length, value, "\n". */
        struct iovec iov[JOURNAL_FIELDS_MAX * 5];
        uint64_t lengths[JOURNAL_FIELDS_MAX];
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        struct msghdr msg = { .msg_name = &addr, .msg_iov = iov };
        size_t k = 0, total = 0;
        size_t path_len;

        if (n > JOURNAL_FIELDS_MAX)
                return -EMSGSIZE;
        path_len = strlen(path);

        if (path_len >= sizeof(addr.sun_path))
                return -ENAMETOOLONG;
        memcpy(addr.sun_path, path, path_len + 1);
        msg.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len + 1);

        for (size_t i = 0; i < n; i++) {
                char *base = fields[i].iov_base;
                size_t name = journal_name_len(&fields[i]);
                size_t value_len = fields[i].iov_len - name - 1;

                if (name == 0)
                        return -EINVAL;
                total += fields[i].iov_len + 1 + sizeof(uint64_t);
                if (total > JOURNAL_RECORD_MAX)
                        return -EMSGSIZE;
                if (!memchr(base + name + 1, '\n', value_len)) {
                        iov[k++] = fields[i];
                        iov[k++] = (struct iovec){ "\n", 1 };
                        continue;
                }
                lengths[i] = htole64((uint64_t)value_len);
                iov[k++] = (struct iovec){ base, name };
                iov[k++] = (struct iovec){ "\n", 1 };
                iov[k++] = (struct iovec){ &lengths[i], sizeof(lengths[i]) };
                iov[k++] = (struct iovec){ base + name + 1, value_len };
                iov[k++] = (struct iovec){ "\n", 1 };
        }
        msg.msg_iovlen = k;

        if (journal_fd < 0) {
                journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (journal_fd < 0)
                        return -errno;
        }
        if (sendmsg(journal_fd, &msg, MSG_NOSIGNAL) < 0)
                return -errno;
        return 0;
}

int journal_send(const struct iovec *fields, size_t n)
{
        return journal_send_to(JOURNAL_SOCKET, fields, n);
}
