/* The programs' own sandbox, applied once before any input is read. It
 * gives the process what the units' mount namespaces and seccomp settings
 * used to give it, for microseconds instead of a namespace per start:
 *  - Landlock: writes only beneath SPOOL_DIR; reads only of the system
 *    (/usr, /etc), /proc/self and a few devices, and of the files the
 *    program needs (below); nothing may be executed; no TCP bind; no
 *    signals to and no abstract sockets of processes outside the sandbox;
 *  - no_new_privs and one seccomp filter: no mounts, namespaces, modules,
 *    clocks, reboot, swap, raw I/O, tracing, keyrings, IPC objects,
 *    realtime scheduling, raised limits, personality changes, SUID/SGID
 *    modes or writable executable memory. Denied calls fail with EPERM.
 * Where the kernel lacks Landlock the unit's remaining settings apply and
 * the program goes on; any other failure is an error. */
#ifndef HW_SANDBOX_H
#define HW_SANDBOX_H

#include <stddef.h>

#include "config.h"

/* hw-receive's session: also reads the modules and the TLS certificate
 * and key; sockets of AF_UNIX only, and TCP connections out (with DNS and
 * WEBHOOK_CA_FILE) only when the decision API is configured. With
 * AUTH_CHECKS, DNS: AF_INET and AF_INET6 sockets, resolv.conf, and TCP
 * connections to port 53 only (UDP is not Landlock's to restrict).
 * spool_fd: the opened SPOOL_DIR. 0, or -errno with the reason in err. */
int sandbox_apply(const struct hw_config *cfg, int spool_fd, char *err, size_t errlen);

/* hw-flush's delivery run: TCP connections out, DNS and WEBHOOK_CA_FILE;
 * sockets of AF_UNIX, AF_INET and AF_INET6. */
int sandbox_apply_delivery(const struct hw_config *cfg, int spool_fd, char *err, size_t errlen);

#endif
