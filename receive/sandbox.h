/* hw-receive's own sandbox, applied once per session before the client's
 * first byte is read. It gives the process what the unit's mount
 * namespaces and seccomp settings used to give it, for microseconds
 * instead of a namespace per connection:
 *  - Landlock: writes only beneath SPOOL_DIR; reads only of the system
 *    (/usr, /etc), the modules, the TLS and CA files, /proc/self and a
 *    few devices; nothing may be executed; no TCP bind, and no TCP
 *    connect unless the decision API is configured; no signals to and no
 *    abstract sockets of processes outside the sandbox;
 *  - no_new_privs and one seccomp filter: sockets of AF_UNIX only (and
 *    AF_INET/AF_INET6 with the decision API), no mounts, namespaces,
 *    modules, clocks, reboot, swap, raw I/O, tracing, keyrings, realtime
 *    scheduling, raised limits, personality changes, SUID/SGID modes or
 *    writable executable memory. Denied calls fail with EPERM.
 * Where the kernel lacks Landlock the unit's remaining settings apply and
 * the session goes on; any other failure is an error. */
#ifndef HW_SANDBOX_H
#define HW_SANDBOX_H

#include <stddef.h>

#include "config.h"

/* spool_fd: the opened SPOOL_DIR. 0, or -errno with the reason in err. */
int sandbox_apply(const struct hw_config *cfg, int spool_fd, char *err, size_t errlen);

#endif
