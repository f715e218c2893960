/* hw-receive --listen: the high-volume shape. systemd (Accept=no) or
 * systemd-socket-activate passes listening sockets (LISTEN_FDS and
 * LISTEN_PID, from fd 3 on). The parent accepts, counts and reaps; for
 * each connection it forks a child, without exec, that puts the
 * connection on fd 0 and 1 and runs the session exactly as the inetd
 * shape does, sandbox included, then exits. The parent never reads a byte
 * from a client.
 *
 * Limits, enforced by the parent at accept time without waiting for
 * anyone: SMTP_MAX_SESSIONS sessions at once, and
 * SMTP_MAX_CONNECTIONS_PER_SOURCE per IPv4 address or IPv6 /64 (the rule
 * of source_limit.h; not for SMTP_PROXY_TRUSTED peers, whose sessions
 * count their real client after the PROXY header). A connection over a
 * limit gets "421 4.7.0" and is closed at once; refusals are logged at
 * most once a second, with the count of those in between.
 *
 * Signals: SIGTERM and SIGINT stop accepting and let running sessions end,
 * for at most LISTEN_STOP_GRACE_MS, after which they get SIGTERM; SIGHUP
 * reads the settings again (and HW_RELOAD_ENV_FILE, see envfile.h) for the
 * sessions that start after it. sd_notify(3) READY, RELOADING and STOPPING
 * go to $NOTIFY_SOCKET when it is set. */
#ifndef HW_LISTEN_H
#define HW_LISTEN_H

#include "config.h"

#define LISTEN_STOP_GRACE_MS 60000

/* The session of one connection on fd 0/1; returns its exit status. */
typedef int (*listen_session_fn)(const struct hw_config *cfg);

/* Runs until stopped; returns the exit status (0, or 75/78 when the
 * sockets are unusable). A reload replaces *cfg; the caller frees it. */
int listen_run(struct hw_config *cfg, listen_session_fn session);

#endif
