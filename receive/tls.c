/* hw-tls.so: STARTTLS for hw-receive, the only code that uses GnuTLS.
 *
 * hw-receive dlopen()s this module on the first EHLO of a session that
 * has SMTP_TLS_CERT_PATH and SMTP_TLS_KEY_PATH set (see modules.h):
 * check() loads the certificate chain and the key once, start() runs the
 * server handshake after "220 Ready to start TLS" and hands back the
 * record layer as an io_transport.
 *
 * Nothing is kept between connections: every connection is a new process
 * that reads the files again, so a renewed certificate is served by the
 * next connection with no reload. For the same reason there is no session
 * resumption (no tickets, no cache): a resumed session would need state
 * shared across processes, and SMTP sessions are long enough not to care.
 *
 * Protocol versions are TLS 1.2 and 1.3 only, on top of the system's
 * GnuTLS policy when there is one (ciphers, groups, signatures). The
 * module references no symbol of the executable, so it loads with
 * RTLD_NOW; it reports errors through err and never logs or exits. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "modules.h"

/* Tried in turn: the system's policy (@SYSTEM needs a system priority
 * file, which not every distribution ships), then the library's default
 * (which a system file may also set), each with the versions narrowed. */
static const struct {
        const char *string;
        unsigned flags;
} tls_priorities[] = {
        { "@SYSTEM:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", 0 },
        { "-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", GNUTLS_PRIORITY_INIT_DEF_APPEND },
        { "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2", 0 },
};

struct tls_state {
        gnutls_certificate_credentials_t cred;
        gnutls_priority_t priority;
        gnutls_session_t session;
        int in_fd;
        int out_fd;
};

/* One session per process, as hw-receive serves one connection. */
static struct tls_state tls;

static void tls_release(void)
{
        if (tls.session) {
                gnutls_deinit(tls.session);
                tls.session = NULL;
        }
        if (tls.priority) {
                gnutls_priority_deinit(tls.priority);
                tls.priority = NULL;
        }
        if (tls.cred) {
                gnutls_certificate_free_credentials(tls.cred);
                tls.cred = NULL;
        }
}

/* GnuTLS reports a missing file as a bare "Error while reading file";
 * opening it first gives the operator the path and errno. */
static int tls_check_file(const char *name, const char *path, char *err, size_t errlen)
{
        struct stat st;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0) {
                int r = -errno;

                snprintf(err, errlen, "%s %s: %s", name, path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                int r = -errno;

                close(fd);
                snprintf(err, errlen, "%s %s: %s", name, path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                snprintf(err, errlen, "%s %s: not a regular file", name, path);
                return -EINVAL;
        }
        close(fd);
        return 0;
}

/* A certificate that peers must reject is as bad as none: the leaf must be
 * valid now. */
static int tls_check_validity(char *err, size_t errlen)
{
        gnutls_x509_crt_t *chain = NULL;
        unsigned n = 0;
        time_t now = time(NULL), from, until;
        char when[64];
        struct tm tm;
        int r = gnutls_certificate_get_x509_crt(tls.cred, 0, &chain, &n);

        if (r < 0 || n == 0) {
                snprintf(err, errlen, "no certificate loaded: %s", gnutls_strerror(r));
                return -EINVAL;
        }
        from = gnutls_x509_crt_get_activation_time(chain[0]);
        until = gnutls_x509_crt_get_expiration_time(chain[0]);
        r = 0;
        if (until != (time_t)-1 && until < now) {
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&until, &tm));
                snprintf(err, errlen, "certificate expired on %s", when);
                r = -EKEYEXPIRED;
        } else if (from != (time_t)-1 && from > now) {
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&from, &tm));
                snprintf(err, errlen, "certificate not valid before %s", when);
                r = -EKEYEXPIRED;
        }
        for (unsigned i = 0; i < n; i++)
                gnutls_x509_crt_deinit(chain[i]);
        gnutls_free(chain);
        return r;
}

static int tls_check(const struct hw_config *cfg, char *err, size_t errlen)
{
        const char *cert = cfg->tls_cert_path, *key = cfg->tls_key_path;
        int r;

        tls_release();
        if (!cert[0] || !key[0]) {
                snprintf(err, errlen, "SMTP_TLS_CERT_PATH and SMTP_TLS_KEY_PATH must both be set");
                return -EINVAL;
        }
        r = tls_check_file("SMTP_TLS_CERT_PATH", cert, err, errlen);
        if (r >= 0)
                r = tls_check_file("SMTP_TLS_KEY_PATH", key, err, errlen);
        if (r < 0)
                return r;

        r = gnutls_certificate_allocate_credentials(&tls.cred);
        if (r < 0) {
                tls.cred = NULL;
                snprintf(err, errlen, "cannot allocate credentials: %s", gnutls_strerror(r));
                return -ENOMEM;
        }
        /* Every certificate in the file is sent, so a full chain works; the
         * key is checked against the leaf (GNUTLS_E_CERTIFICATE_KEY_MISMATCH). */
        r = gnutls_certificate_set_x509_key_file2(tls.cred, cert, key, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (r < 0) {
                snprintf(err, errlen, "cannot use certificate %s with key %s: %s",
                         cert, key, gnutls_strerror(r));
                tls_release();
                return -EINVAL;
        }
        r = tls_check_validity(err, errlen);
        if (r < 0) {
                /* Name the file: "expired" alone does not say which one. */
                size_t len = strlen(err);

                snprintf(err + len, errlen - len, " (%s)", cert);
                tls_release();
                return r;
        }

        r = GNUTLS_E_INVALID_REQUEST;
        for (size_t i = 0; i < sizeof(tls_priorities) / sizeof(tls_priorities[0]) && r < 0; i++)
                r = gnutls_priority_init2(&tls.priority, tls_priorities[i].string, NULL,
                                          tls_priorities[i].flags);
        if (r < 0) {
                tls.priority = NULL;
                snprintf(err, errlen, "no usable TLS priority string: %s", gnutls_strerror(r));
                tls_release();
                return -EINVAL;
        }
        return 0;
}

/* The transport callbacks: plain read(2)/write(2), so fds that are not
 * sockets (pipes in tests) work as well, and poll(2) for GnuTLS's
 * timeouts. */
static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
        struct tls_state *st = ptr;
        ssize_t n = read(st->in_fd, buf, len);

        if (n < 0)
                gnutls_transport_set_errno(st->session, errno);
        return n;
}

static ssize_t tls_push(gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
        struct tls_state *st = ptr;
        ssize_t n = write(st->out_fd, buf, len);

        if (n < 0)
                gnutls_transport_set_errno(st->session, errno);
        return n;
}

/* 0 on timeout, > 0 when readable, -1 on error (GnuTLS's contract). */
static int tls_wait_readable(int fd, int timeout_ms)
{
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        struct timespec deadline, now;

        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        for (;;) {
                int wait_ms = timeout_ms, r;

                if (timeout_ms >= 0) {
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        wait_ms = (int)((deadline.tv_sec - now.tv_sec) * 1000 +
                                        (deadline.tv_nsec - now.tv_nsec) / 1000000);
                        if (wait_ms < 0)
                                wait_ms = 0;
                }
                r = poll(&pfd, 1, wait_ms);
                if (r >= 0 || errno != EINTR)
                        return r;
        }
}

static int tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
        struct tls_state *st = ptr;
        int r = tls_wait_readable(st->in_fd, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);

        if (r < 0)
                gnutls_transport_set_errno(st->session, errno);
        return r;
}

static ssize_t tls_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
        for (;;) {
                ssize_t n;

                /* Decrypted bytes may wait inside GnuTLS with nothing left on
                 * the fd: poll only when GnuTLS holds none. */
                if (gnutls_record_check_pending(tls.session) == 0) {
                        int r = tls_wait_readable(tls.in_fd, timeout_ms);

                        if (r < 0)
                                return -errno;
                        if (r == 0)
                                return -ETIMEDOUT;
                }
                /* A record that arrives in pieces is bounded by the same time. */
                gnutls_record_set_timeout(tls.session, timeout_ms < 0 ? GNUTLS_INDEFINITE_TIMEOUT
                                                                      : (unsigned)timeout_ms);
                n = gnutls_record_recv(tls.session, buf, len);
                if (n >= 0)
                        return n;
                switch (n) {
                case GNUTLS_E_AGAIN:
                case GNUTLS_E_INTERRUPTED:
                case GNUTLS_E_WARNING_ALERT_RECEIVED:
                        continue;
                case GNUTLS_E_REHANDSHAKE:
                        /* Renegotiation buys an SMTP server nothing. */
                        gnutls_alert_send(tls.session, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
                        continue;
                case GNUTLS_E_TIMEDOUT:
                        return -ETIMEDOUT;
                case GNUTLS_E_PREMATURE_TERMINATION:
                        /* Closed without close_notify: most clients do that. */
                        return -ECONNRESET;
                case GNUTLS_E_PUSH_ERROR:
                        return -EPIPE;
                case GNUTLS_E_PULL_ERROR:
                        return -ECONNRESET;
                default:
                        return -EPROTO;
                }
        }
}

static int tls_write(void *ctx, const void *buf, size_t len)
{
        const char *p = buf;

        while (len) {
                ssize_t n = gnutls_record_send(tls.session, p, len);

                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                        continue;
                if (n < 0)
                        return n == GNUTLS_E_PUSH_ERROR ? -EPIPE : -EPROTO;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

static int tls_start(const struct hw_config *cfg, int in_fd, int out_fd, int timeout_ms,
                     struct io_transport *t, char *desc, size_t desc_size,
                     char *err, size_t errlen)
{
        int r;

        if (!tls.cred) {
                r = tls_check(cfg, err, errlen);
                if (r < 0)
                        return r;
        }
        if (tls.session) {
                snprintf(err, errlen, "TLS already started");
                return -EALREADY;
        }
        /* No tickets: nothing could resume them in another process. */
        r = gnutls_init(&tls.session, GNUTLS_SERVER | GNUTLS_NO_TICKETS);
        if (r < 0) {
                tls.session = NULL;
                snprintf(err, errlen, "cannot create a session: %s", gnutls_strerror(r));
                return -ENOMEM;
        }
        r = gnutls_priority_set(tls.session, tls.priority);
        if (r >= 0)
                r = gnutls_credentials_set(tls.session, GNUTLS_CRD_CERTIFICATE, tls.cred);
        if (r < 0) {
                snprintf(err, errlen, "cannot set up the session: %s", gnutls_strerror(r));
                gnutls_deinit(tls.session);
                tls.session = NULL;
                return -EINVAL;
        }
        tls.in_fd = in_fd;
        tls.out_fd = out_fd;
        gnutls_transport_set_ptr(tls.session, &tls);
        gnutls_transport_set_pull_function(tls.session, tls_pull);
        gnutls_transport_set_push_function(tls.session, tls_push);
        gnutls_transport_set_pull_timeout_function(tls.session, tls_pull_timeout);
        gnutls_handshake_set_timeout(tls.session, timeout_ms > 0 ? (unsigned)timeout_ms
                                                                 : GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);

        do
                r = gnutls_handshake(tls.session);
        while (r < 0 && !gnutls_error_is_fatal(r));
        if (r < 0) {
                snprintf(err, errlen, "%s", gnutls_strerror(r));
                /* Tell the client why (e.g. protocol_version for TLS 1.1). */
                if (r != GNUTLS_E_TIMEDOUT && r != GNUTLS_E_PUSH_ERROR &&
                    r != GNUTLS_E_PREMATURE_TERMINATION)
                        gnutls_alert_send_appropriate(tls.session, r);
                gnutls_deinit(tls.session);
                tls.session = NULL;
                switch (r) {
                case GNUTLS_E_TIMEDOUT:
                        return -ETIMEDOUT;
                case GNUTLS_E_PUSH_ERROR:
                case GNUTLS_E_PULL_ERROR:
                case GNUTLS_E_PREMATURE_TERMINATION:
                        return -ECONNRESET;
                default:
                        return -EPROTO;
                }
        }

        snprintf(desc, desc_size, "%s with %s",
                 gnutls_protocol_get_name(gnutls_protocol_get_version(tls.session)),
                 gnutls_cipher_get_name(gnutls_cipher_get(tls.session)));
        t->read = tls_read;
        t->write = tls_write;
        t->ctx = &tls;
        return 0;
}

static void tls_stop(void)
{
        if (tls.session) {
                /* Best effort and one-way: waiting for the peer's close_notify
                 * could hang on a client that already left. */
                gnutls_bye(tls.session, GNUTLS_SHUT_WR);
        }
        tls_release();
}

const struct hw_tls_module hw_tls_module = {
        .abi = HW_MODULE_ABI,
        .check = tls_check,
        .start = tls_start,
        .stop = tls_stop,
};
