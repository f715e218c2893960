/* hw-receive: one SMTP session on fd 0/1, as systemd's Accept=yes (or any
 * inetd) starts it; with --listen, the same session in a forked child for
 * each connection on the sockets systemd passes (listen.h). Exit statuses:
 * 0 session ended, 64 usage, 75 temporary failure (spool unusable, I/O
 * error, no valid PROXY header from a trusted proxy), 78 configuration
 * error. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <sys/socket.h>
#include <unistd.h>

#include "autoconfig.h"
#include "config.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "modules.h"
#include "proxy.h"
#include "sandbox.h"
#include "smtp.h"
#include "source_limit.h"


static void usage(FILE *out)
{
        fprintf(out,
                "Usage: hw-receive [--listen | --check-config | --help | --version]\n"
                "Speaks SMTP on standard input and output (one session, inetd style)\n"
                "and writes accepted mail into SPOOL_DIR. With --listen, accepts\n"
                "connections on the sockets systemd passes (Accept=no) and runs one\n"
                "session per connection. Configuration comes from the environment;\n"
                "see hw-webhook.env(5).\n");
}

/* The client's address from the socket; systemd's REMOTE_ADDR otherwise. */
static void receive_peer(char ip[HW_IP_MAX], unsigned *port)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        const char *env_ip = getenv("REMOTE_ADDR"), *env_port = getenv("REMOTE_PORT");

        snprintf(ip, HW_IP_MAX, "unknown");
        *port = 0;
        if (getpeername(0, (struct sockaddr *)&ss, &len) == 0) {
                if (ss.ss_family == AF_INET) {
                        struct sockaddr_in *in = (struct sockaddr_in *)&ss;

                        inet_ntop(AF_INET, &in->sin_addr, ip, HW_IP_MAX);
                        *port = ntohs(in->sin_port);
                        return;
                }
                if (ss.ss_family == AF_INET6) {
                        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

                        /* Show IPv4 clients of a dual-stack socket as IPv4. */
                        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
                                inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip, HW_IP_MAX);
                        else
                                inet_ntop(AF_INET6, &in6->sin6_addr, ip, HW_IP_MAX);
                        *port = ntohs(in6->sin6_port);
                        return;
                }
        }
        if (env_ip && *env_ip && strlen(env_ip) < HW_IP_MAX)
                snprintf(ip, HW_IP_MAX, "%s", env_ip);
        if (env_port)
                *port = (unsigned)strtoul(env_port, NULL, 10);
}

static bool receive_proxy_trusted(const struct hw_config *cfg, const char *ip)
{
        for (char **p = cfg->proxy_trusted; p && *p; p++)
                if (strcmp(*p, ip) == 0)
                        return true;
        return false;
}

/* A trusted proxy speaks first: its PROXY header (v1 or v2, proxy.h),
 * before the greeting and within HW_PROXY_HEADER_MS. 0 when the session
 * goes on; 1 when the proxy closed without a byte (a health check); -errno
 * when the header is refused (logged; the connection is closed). */
static int receive_proxy_header(struct smtp_session *s, const char *proxy_ip)
{
        struct proxy_client client;
        char why[256];
        int64_t deadline = io_now_ms() + HW_PROXY_HEADER_MS;
        int r;

        if (s->io.deadline_ms && s->io.deadline_ms < deadline)
                deadline = s->io.deadline_ms;
        io_set_deadline(&s->io, deadline);
        r = proxy_read(&s->io, &client, why, sizeof(why));
        if (r == -ENODATA) {
                log_msg(LOG_DEBUG, "proxy %s closed before sending a PROXY header (a health check?)", proxy_ip);
                return 1;
        }
        if (r < 0) {
                log_msg(LOG_WARNING, "refused connection from trusted proxy %s: %s", proxy_ip, why);
                return r;
        }
        if (client.use_peer) {
                /* LOCAL is the proxy's own health check: not news. */
                log_msg(strcmp(client.what, "LOCAL") == 0 ? LOG_DEBUG : LOG_INFO,
                        "connection from proxy %s with PROXY v%d %s: no client address, the proxy's is used",
                        proxy_ip, client.version, client.what);
                return 0;
        }
        log_msg(LOG_INFO, "client %s port %u via proxy %s (PROXY v%d %s)", client.ip, client.port, proxy_ip,
                client.version, client.what);
        smtp_session_set_remote(s, client.ip, client.port);
        return 0;
}

/* A client that left, timed out or broke the TLS protocol ended its own
 * session: a normal end, not a failed unit in systemd's list. */
static bool receive_client_gone(int r)
{
        return r == -ETIMEDOUT || r == -ECONNRESET || r == -EPIPE || r == -EPROTO;
}

/* The session: the spool, the client's address, the dialogue. Whatever it
 * opens is released on every path, through the one exit at the end. */
static int receive_run(const struct hw_config *cfg)
{
        static struct smtp_session session;
        struct spool spool;
        struct io_plain fds = { .in_fd = 0, .out_fd = 1 };
        struct io_transport transport;
        char err[256];
        struct source_limit limit = { .dir_fd = -1, .fd = -1 };
        char ip[HW_IP_MAX];
        unsigned port;
        int r, status = EX_TEMPFAIL;

        r = spool_open(&spool, cfg->spool_dir);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot open spool %s: %s", cfg->spool_dir, strerror(-r));
                fputs("421 4.3.0 Local error in processing, try again later\r\n", stdout);
                return EX_TEMPFAIL;
        }
        /* Before the client's first byte: from here on only the spool is
         * writable (sandbox.h). */
        r = sandbox_apply(cfg, spool.root_fd, err, sizeof(err));
        if (r < 0) {
                log_msg(LOG_ERR, "cannot sandbox the session: %s", err);
                fputs("421 4.3.0 Local error in processing, try again later\r\n", stdout);
                spool_close(&spool);
                return EX_TEMPFAIL;
        }
        /* Counting never stops mail: without the file, it is off. */
        metrics_open(spool.root_fd);
        metrics_count_connection();
        io_plain_transport(&fds, &transport);
        r = smtp_session_init(&session, cfg, &spool, &transport, modules_hooks(cfg));
        if (r < 0) {
                log_msg(LOG_ERR, "cannot start a session: %s", strerror(-r));
                goto out;
        }
        receive_peer(ip, &port);
        smtp_session_set_remote(&session, ip, port);
        if (receive_proxy_trusted(cfg, ip)) {
                r = receive_proxy_header(&session, ip);
                if (r != 0) {
                        if (r > 0)
                                status = 0;
                        goto out;
                }
        }
        /* After the PROXY header: the limit is the real client's. */
        r = source_limit_acquire(&limit, spool.root_fd, session.env.remote_ip, cfg->max_per_source);
        if (r == -EBUSY) {
                log_msg(LOG_NOTICE, "refused %s: SMTP_MAX_CONNECTIONS_PER_SOURCE=%u sessions from its address already",
                        session.env.remote_ip, cfg->max_per_source);
                printf("421 4.7.0 %s Too many connections from your address, try again later\r\n", cfg->hostname);
                metrics_count_connection_refused(METRICS_REFUSED_SOURCE_LIMIT);
                status = 0;
                goto out;
        }
        if (r < 0) {
                log_msg(LOG_ERR, "cannot count sessions per source in %s/%s: %s",
                        cfg->spool_dir, SOURCE_LIMIT_DIR, strerror(-r));
                fputs("421 4.3.0 Local error in processing, try again later\r\n", stdout);
                metrics_count_connection_refused(METRICS_REFUSED_LOCAL_ERROR);
                goto out;
        }
        r = smtp_session_run(&session);
        if (r == -EPROTO)
                log_msg(LOG_NOTICE, "session with %s ended: TLS protocol error", session.env.remote_ip);
        if (r >= 0 || receive_client_gone(r))
                status = 0;
        else
                log_msg(LOG_WARNING, "session with %s ended: %s", session.env.remote_ip, strerror(-r));
out:
        source_limit_release(&limit);
        modules_unload();
        smtp_session_free(&session);
        spool_close(&spool);
        return status;
}

int main(int argc, char **argv)
{
        struct hw_config cfg;
        char err[512];
        bool check_only = false, listener = false;
        int r;

        log_init("hw-receive");
        if (argc > 1) {
                if (strcmp(argv[1], "--check-config") == 0 && argc == 2) {
                        check_only = true;
                } else if (strcmp(argv[1], "--listen") == 0 && argc == 2) {
                        listener = true;
                } else if (strcmp(argv[1], "--help") == 0) {
                        usage(stdout);
                        return 0;
                } else if (strcmp(argv[1], "--version") == 0) {
                        printf("hw-receive %s\n", PACKAGE_VERSION);
                        return 0;
                } else {
                        usage(stderr);
                        return EX_USAGE;
                }
        }
        if (config_refuses_root()) {
                log_msg(LOG_ERR, "refusing to run as root; run as the service user (HW_ALLOW_ROOT=1 overrides)");
                if (!check_only && !listener)
                        fputs("421 4.3.5 Service misconfigured, try again later\r\n", stdout);
                return EX_CONFIG;
        }
        if (config_load(&cfg, err, sizeof(err)) < 0) {
                log_msg(LOG_ERR, "configuration error: %s", err);
                if (!check_only && !listener)
                        fputs("421 4.3.5 Service misconfigured, try again later\r\n", stdout);
                return EX_CONFIG;
        }
        if (check_only) {
                r = modules_check(&cfg, err, sizeof(err));
                if (r < 0)
                        log_msg(LOG_ERR, "configuration error: %s", err);
                else
                        config_print(&cfg, stdout);
                r = r < 0 ? EX_CONFIG : 0;
        } else {
                /* A client that goes away must not kill us mid-commit. */
                signal(SIGPIPE, SIG_IGN);
                r = listener ? listen_run(&cfg, receive_run) : receive_run(&cfg);
        }
        config_free(&cfg);
        return r;
}
