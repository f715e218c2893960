/* Per-source connection slots (SMTP_MAX_CONNECTIONS_PER_SOURCE).
 *
 * Each source has a lock file in SPOOL_DIR/sources/; a session holds one
 * byte-range lock (an open file description lock) on one byte of it, byte
 * i being slot i. The kernel drops the lock when the session exits, however
 * it exits, so a slot can never leak. A source is an IPv4 address or an
 * IPv6 /64 (what one host is commonly given), named by its hex digits:
 *
 *   sources/4-c0000201            192.0.2.1
 *   sources/6-20010db800000001    2001:db8:0:1::/64
 *
 * A file is removed only by whoever holds a write lock on all of it (no
 * session holds a slot then); a session that finds its file removed under
 * it, or being removed, opens the new one. */
#ifndef HW_SOURCE_LIMIT_H
#define HW_SOURCE_LIMIT_H

#include <stddef.h>

#define SOURCE_LIMIT_DIR "sources"
#define SOURCE_LIMIT_KEY_MAX 20           /* "6-" and 16 hex digits, NUL */

struct source_limit {
        int dir_fd;
        int fd;                           /* holds the slot; -1 without one */
        char key[SOURCE_LIMIT_KEY_MAX];
};

/* The file name of ip's source; -EINVAL when ip is not an address. */
int source_limit_key(const char *ip, char key[SOURCE_LIMIT_KEY_MAX]);

/* Takes one of max slots of ip's source; never waits for another session
 * (at most a few milliseconds for a file being removed). Returns 0 with a
 * slot (or with none: max 0, ip not an address, or a file that stays
 * locked whole by another local process), -EBUSY when all are taken,
 * another -errno when the directory is unusable. */
int source_limit_acquire(struct source_limit *l, int spool_root_fd, const char *ip, unsigned max);

/* Gives the slot back and removes the file when it was the last one.
 * Safe to call on a limit that took nothing. */
void source_limit_release(struct source_limit *l);

#endif
