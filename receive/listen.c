/* The listener of hw-receive --listen; see listen.h. */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "envfile.h"
#include "log.h"
#include "modules.h"
#include "source_limit.h"

#define LISTEN_FDS_START 3
#define LISTEN_FDS_MAX 16
/* Connections taken per socket per wake-up, so that one busy socket and
 * the signals (SIGCHLD frees slots) take turns. */
#define LISTEN_ACCEPT_BATCH 64
/* How long accepting waits after running out of fds or memory. */
#define LISTEN_PAUSE_MS 100
/* Refusals come in floods: at most one line per this many ms. */
#define LISTEN_REFUSAL_LOG_MS 1000

struct listen_child {
        pid_t pid;
        char key[SOURCE_LIMIT_KEY_MAX];   /* "" when not counted per source */
        char ip[INET6_ADDRSTRLEN];
};

struct listener {
        struct hw_config *cfg;
        listen_session_fn session;
        int fds[LISTEN_FDS_MAX];
        unsigned nfds;
        int sig_fd;
        struct listen_child *children;
        unsigned nchildren, capacity;
        bool stopping;
        sigset_t old_mask;
        int64_t refusal_logged_ms;        /* when a refusal was last logged */
        unsigned refusals_unlogged;       /* refusals since then */
};

static int64_t listen_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sd_notify(3) without libsystemd, which would cost every inetd-shape
 * session its start-up: one datagram to $NOTIFY_SOCKET. Best effort. */
static void listen_notify(const char *state)
{
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len;
        int fd;

        if (!path || (path[0] != '/' && path[0] != '@') || (len = strlen(path)) >= sizeof(sa.sun_path))
                return;
        memcpy(sa.sun_path, path, len);
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = '\0';
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return;
        if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
                log_msg(LOG_WARNING, "cannot notify systemd: %s", strerror(errno));
        close(fd);
}

/* sd_listen_fds(3)'s rules: the fds are ours only when LISTEN_PID is our
 * pid; the variables are removed so that nothing started later takes them. */
static int listen_take_fds(struct listener *l)
{
        const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
        char *end;
        unsigned long count;

        if (!pid || !n || strtoul(pid, &end, 10) != (unsigned long)getpid() || *end) {
                log_msg(LOG_ERR, "--listen: no listening socket passed (LISTEN_PID and LISTEN_FDS, as systemd's Accept=no gives them)");
                return -EBADF;
        }
        errno = 0;
        count = strtoul(n, &end, 10);
        if (errno || *end || count == 0 || count > LISTEN_FDS_MAX) {
                log_msg(LOG_ERR, "--listen: LISTEN_FDS=%s: want 1 to %d sockets", n, LISTEN_FDS_MAX);
                return -EBADF;
        }
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        for (unsigned i = 0; i < count; i++) {
                int fd = LISTEN_FDS_START + (int)i, on = 0, flags;
                socklen_t len = sizeof(on);

                if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0 || !on) {
                        log_msg(LOG_ERR, "--listen: fd %d is not a listening socket (Accept=no, ListenStream=)", fd);
                        return -EBADF;
                }
                flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
                    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                        log_msg(LOG_ERR, "--listen: fd %d: %s", fd, strerror(errno));
                        return -errno;
                }
                l->fds[l->nfds++] = fd;
        }
        return 0;
}

/* The signals arrive on a signalfd, read between accepts: nothing runs in
 * a handler. The children get the old mask back. */
static int listen_signals(struct listener *l)
{
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, &l->old_mask) < 0)
                return -errno;
        l->sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        return l->sig_fd < 0 ? -errno : 0;
}

/* The address the limits count: the peer as text (IPv4-mapped shown as
 * IPv4) and its source key; key "" when no per-source limit applies. */
static void listen_peer(const struct listener *l, const struct sockaddr_storage *ss,
                        struct listen_child *c)
{
        c->ip[0] = c->key[0] = '\0';
        if (ss->ss_family == AF_INET) {
                inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, c->ip, sizeof(c->ip));
        } else if (ss->ss_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;

                if (IN6_IS_ADDR_V4MAPPED(a))
                        inet_ntop(AF_INET, &a->s6_addr[12], c->ip, sizeof(c->ip));
                else
                        inet_ntop(AF_INET6, a, c->ip, sizeof(c->ip));
        } else {
                snprintf(c->ip, sizeof(c->ip), "local");
                return;
        }
        for (char **p = l->cfg->proxy_trusted; p && *p; p++)
                if (strcmp(*p, c->ip) == 0)
                        return;
        if (l->cfg->max_per_source > 0)
                (void)source_limit_key(c->ip, c->key);
}

static unsigned listen_count_source(const struct listener *l, const char *key)
{
        unsigned n = 0;

        for (unsigned i = 0; i < l->nchildren; i++)
                if (strcmp(l->children[i].key, key) == 0)
                        n++;
        return n;
}

/* The refusal is sent without waiting: a client that does not read it
 * loses it, and nobody else waits for that client. */
static void listen_refuse(const struct listener *l, int fd, const char *code, const char *why)
{
        char reply[HW_HOSTNAME_MAX + 96];
        int n = snprintf(reply, sizeof(reply), "421 %s %s %s, try again later\r\n", code,
                         l->cfg->hostname, why);

        if (n > 0)
                (void)send(fd, reply, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* In the child: the connection on fd 0 and 1, nothing of the parent's
 * left open, the signals as an inetd-started hw-receive has them. */
static void listen_child(struct listener *l, int conn)
{
        int status = EX_TEMPFAIL;

        for (unsigned i = 0; i < l->nfds; i++)
                close(l->fds[i]);
        close(l->sig_fd);
        signal(SIGCHLD, SIG_DFL);
        if (sigprocmask(SIG_SETMASK, &l->old_mask, NULL) == 0 &&
            dup2(conn, 0) == 0 && dup2(conn, 1) == 1) {
                if (conn > 1)
                        close(conn);
                status = l->session(l->cfg);
                fflush(stdout);
        } else {
                log_msg(LOG_ERR, "cannot set up a session: %s", strerror(errno));
        }
        /* _exit: the parent's atexit handlers and stdio are not ours. */
        _exit(status);
}

/* One line for a refusal, unless one was logged within the last second:
 * a source that reconnects at once must not flood the journal. */
static void listen_log_refusal(struct listener *l, const char *ip, const char *setting, unsigned limit,
                               const char *whose)
{
        int64_t now = listen_now_ms();

        if (l->refusal_logged_ms && now - l->refusal_logged_ms < LISTEN_REFUSAL_LOG_MS) {
                l->refusals_unlogged++;
                return;
        }
        log_msg(LOG_NOTICE, "refused %s: %s=%u sessions%s already (%u more refused since the last such line)",
                ip, setting, limit, whose, l->refusals_unlogged);
        l->refusal_logged_ms = now;
        l->refusals_unlogged = 0;
}

static void listen_start(struct listener *l, int conn, const struct listen_child *c)
{
        pid_t pid;

        if (l->nchildren >= l->cfg->max_sessions) {
                listen_log_refusal(l, c->ip, "SMTP_MAX_SESSIONS", l->cfg->max_sessions, "");
                listen_refuse(l, conn, "4.7.0", "Too many connections");
                return;
        }
        if (c->key[0] && listen_count_source(l, c->key) >= l->cfg->max_per_source) {
                listen_log_refusal(l, c->ip, "SMTP_MAX_CONNECTIONS_PER_SOURCE", l->cfg->max_per_source,
                                   " from its address");
                listen_refuse(l, conn, "4.7.0", "Too many connections from your address");
                return;
        }
        /* The TLS verdict and the modules, inherited by the child. */
        modules_prepare(l->cfg);
        pid = fork();
        if (pid == 0)
                listen_child(l, conn);
        if (pid < 0) {
                log_msg(LOG_ERR, "cannot start a session for %s: %s", c->ip, strerror(errno));
                listen_refuse(l, conn, "4.3.0", "Local error in processing");
                return;
        }
        l->children[l->nchildren] = *c;
        l->children[l->nchildren].pid = pid;
        l->nchildren++;
}

/* Returns true when accepting should pause: out of fds or memory, the
 * socket stays readable and polling it again at once would spin. */
static bool listen_accept(struct listener *l, int fd)
{
        for (int i = 0; i < LISTEN_ACCEPT_BATCH; i++) {
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);
                struct listen_child c;
                int conn = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);

                if (conn < 0) {
                        /* EAGAIN: all taken; ECONNABORTED: a client that
                         * reset before we took it. */
                        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED ||
                            errno == EINTR)
                                return false;
                        int e = errno;

                        log_msg(LOG_WARNING, "accept: %s", strerror(e));
                        return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
                }
                listen_peer(l, &ss, &c);
                listen_start(l, conn, &c);
                close(conn);
        }
        return false;
}

/* Reaps every child that ended and frees its slot. A session that failed
 * is worth a line, as a failed instance of the inetd shape's unit is. */
static void listen_reap(struct listener *l)
{
        int status;
        pid_t pid;

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                for (unsigned i = 0; i < l->nchildren; i++) {
                        if (l->children[i].pid != pid)
                                continue;
                        if (WIFSIGNALED(status))
                                log_msg(LOG_WARNING, "session %d with %s killed by signal %d",
                                        (int)pid, l->children[i].ip, WTERMSIG(status));
                        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
                                log_msg(LOG_WARNING, "session %d with %s exited with status %d",
                                        (int)pid, l->children[i].ip, WEXITSTATUS(status));
                        l->children[i] = l->children[--l->nchildren];
                        break;
                }
        }
}

static int listen_capacity(struct listener *l, unsigned want)
{
        struct listen_child *c;

        if (want <= l->capacity)
                return 0;
        c = realloc(l->children, want * sizeof(*c));
        if (!c)
                return -ENOMEM;
        l->children = c;
        l->capacity = want;
        return 0;
}

/* SIGHUP: new settings for the sessions that start from now on; on a bad
 * value the old ones stay and the reason is logged. */
static void listen_reload(struct listener *l)
{
        struct hw_config cfg;
        char err[512];
        int r;

        listen_notify("RELOADING=1");
        r = envfile_reload(err, sizeof(err));
        if (r >= 0)
                r = config_load(&cfg, err, sizeof(err));
        if (r < 0) {
                log_msg(LOG_ERR, "reload: settings kept: %s", err);
        } else if (listen_capacity(l, cfg.max_sessions) < 0) {
                log_msg(LOG_ERR, "reload: settings kept: out of memory");
                config_free(&cfg);
        } else {
                config_free(l->cfg);
                *l->cfg = cfg;
                log_msg(LOG_INFO, "settings reloaded");
        }
        listen_notify("READY=1");
}

static void listen_signal(struct listener *l)
{
        struct signalfd_siginfo si;

        while (read(l->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                switch (si.ssi_signo) {
                case SIGCHLD:
                        listen_reap(l);
                        break;
                case SIGHUP:
                        if (!l->stopping)
                                listen_reload(l);
                        break;
                default:
                        l->stopping = true;
                        break;
                }
        }
        /* A SIGCHLD merged with another signal: reap anyway. */
        listen_reap(l);
}

/* Stopping: no more accepts (connections waiting in the socket stay with
 * systemd for the next start), running sessions end on their own within
 * the grace, the rest get SIGTERM. Nothing they acknowledged is lost: a
 * 250 is only sent after the commit. */
static void listen_drain(struct listener *l)
{
        int64_t deadline = listen_now_ms() + LISTEN_STOP_GRACE_MS;
        struct pollfd p = { .fd = l->sig_fd, .events = POLLIN };

        for (unsigned i = 0; i < l->nfds; i++)
                close(l->fds[i]);
        l->nfds = 0;
        listen_notify("STOPPING=1");
        if (l->nchildren)
                log_msg(LOG_INFO, "stopping: waiting for %u sessions", l->nchildren);
        while (l->nchildren) {
                int64_t left = deadline - listen_now_ms();

                if (left <= 0) {
                        log_msg(LOG_WARNING, "stopping: ending %u sessions still running after %d ms",
                                l->nchildren, LISTEN_STOP_GRACE_MS);
                        for (unsigned i = 0; i < l->nchildren; i++)
                                kill(l->children[i].pid, SIGTERM);
                        break;
                }
                if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
                        break;
                listen_signal(l);
        }
}

int listen_run(struct hw_config *cfg, listen_session_fn session)
{
        struct listener l = { .cfg = cfg, .session = session, .sig_fd = -1 };
        struct pollfd p[LISTEN_FDS_MAX + 1];
        bool pause = false;
        int r;

        r = listen_take_fds(&l);
        if (r >= 0)
                r = envfile_remember();
        if (r >= 0)
                r = listen_capacity(&l, l.cfg->max_sessions);
        if (r >= 0) {
                r = listen_signals(&l);
                if (r < 0)
                        log_msg(LOG_ERR, "cannot set up signals: %s", strerror(-r));
        }
        if (r < 0) {
                free(l.children);
                return r == -EINVAL ? EX_CONFIG : EX_TEMPFAIL;
        }
        modules_prepare(l.cfg);
        log_msg(LOG_INFO, "listening on %u sockets, at most %u sessions", l.nfds, l.cfg->max_sessions);
        listen_notify("READY=1");
        while (!l.stopping) {
                /* After a shortage only the signals, for a moment: a
                 * session that ends gives its fd and memory back. */
                nfds_t n = pause ? 1 : l.nfds + 1;

                p[0] = (struct pollfd){ .fd = l.sig_fd, .events = POLLIN };
                for (unsigned i = 0; i < l.nfds; i++)
                        p[i + 1] = (struct pollfd){ .fd = l.fds[i], .events = POLLIN };
                r = poll(p, n, pause ? LISTEN_PAUSE_MS : -1);
                pause = false;
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        log_msg(LOG_ERR, "poll: %s", strerror(errno));
                        break;
                }
                if (p[0].revents)
                        listen_signal(&l);
                for (nfds_t i = 1; i < n && !l.stopping; i++)
                        if (p[i].revents && listen_accept(&l, p[i].fd))
                                pause = true;
        }
        listen_drain(&l);
        close(l.sig_fd);
        free(l.children);
        return 0;
}
