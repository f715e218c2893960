/* hw-tls.so: STARTTLS for hw-receive, the only code that uses GnuTLS.
 *
 * hw-receive dlopen()s this module on the first EHLO of a session that
 * has SMTP_TLS_CERT_PATH and SMTP_TLS_KEY_PATH set (see module_api.h):
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
 * The built-in priority string (tls_default_priority) allows TLS 1.2 and
 * 1.3 only and lets the server choose: forward-secret AEAD suites first,
 * CBC and RSA key exchange kept as a last resort, because for opportunistic
 * TLS some encryption beats plain text. SMTP_TLS_PRIORITY replaces it
 * whole. The system's GnuTLS configuration still applies on top. The
 * module references no symbol of the executable, so it loads with
 * RTLD_NOW; it reports errors through err and never logs or exits. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "module_api.h"

/* The built-in order. GnuTLS ranks suites by key exchange first, then
 * cipher, then MAC, so with one certificate the lists below give: TLS 1.3
 * (AEAD, ECDHE or DHE), then ECDHE+AEAD, ECDHE+CBC, DHE+AEAD, DHE+CBC,
 * RSA+AEAD, RSA+CBC. As no DH parameters are set, DHE is chosen only for
 * clients that offer the RFC 7919 groups, which all have ECDHE+AEAD too,
 * and no client is sent a DH group it cannot use. CBC with SHA-256/384
 * serves no client that CBC with SHA-1 does not. Server precedence also
 * picks the TLS 1.3 group: X25519 comes first as the key share most
 * clients send, since any other costs them a HelloRetryRequest. */
static const char tls_default_priority[] =
        "NORMAL:%SERVER_PRECEDENCE"
        ":-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
        ":-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:+AES-256-CCM:+AES-128-CCM"
        ":+AES-256-CBC:+AES-128-CBC"
        ":-MAC-ALL:+AEAD:+SHA1"
        ":-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA:+RSA"
        ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1"
        ":+GROUP-X448:+GROUP-FFDHE2048:+GROUP-FFDHE3072:+GROUP-FFDHE4096";

/* A PEM chain is a few KiB; the bound keeps a wrong path (a log, a
 * device) from being read whole. */
#define TLS_FILE_MAX (1024 * 1024)

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

/* Key bytes are wiped before they are freed. */
static void tls_datum_free(gnutls_datum_t *d)
{
        if (d->data) {
                explicit_bzero(d->data, d->size);
                free(d->data);
        }
        d->data = NULL;
        d->size = 0;
}

/* Reads a whole PEM file, NUL-terminated as GnuTLS wants PEM in memory.
 * GnuTLS reports a missing file as a bare "Error while reading file";
 * this names the setting, the path and errno. */
static int tls_read_file(const char *name, const char *path, gnutls_datum_t *out,
                         char *err, size_t errlen)
{
        struct stat st;
        unsigned char *buf = NULL;
        size_t len = 0;
        int r = 0, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

        if (fd < 0) {
                r = -errno;
                snprintf(err, errlen, "%s %s: %s", name, path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                snprintf(err, errlen, "%s %s: %s", name, path, strerror(-r));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                snprintf(err, errlen, "%s %s: not a regular file", name, path);
                r = -EINVAL;
                goto out;
        }
        if (st.st_size > TLS_FILE_MAX) {
                snprintf(err, errlen, "%s %s: larger than %d bytes", name, path, TLS_FILE_MAX);
                r = -EFBIG;
                goto out;
        }
        /* One byte more than the limit tells a file that grew meanwhile. */
        buf = malloc(TLS_FILE_MAX + 2);
        if (!buf) {
                r = -ENOMEM;
                snprintf(err, errlen, "%s %s: %s", name, path, strerror(-r));
                goto out;
        }
        for (;;) {
                ssize_t n = read(fd, buf + len, TLS_FILE_MAX + 1 - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        snprintf(err, errlen, "%s %s: %s", name, path, strerror(-r));
                        goto out;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > TLS_FILE_MAX) {
                        snprintf(err, errlen, "%s %s: larger than %d bytes", name, path,
                                 TLS_FILE_MAX);
                        r = -EFBIG;
                        goto out;
                }
        }
        buf[len] = '\0';
        out->data = buf;
        out->size = (unsigned)len;
        buf = NULL;
out:
        if (buf) {
                explicit_bzero(buf, len);
                free(buf);
        }
        close(fd);
        return r;
}

/* At most len bytes of src, printable ASCII only: the log is line based. */
static void tls_printable(char *dst, size_t size, const char *src, size_t len)
{
        size_t i;

        if (len >= size)
                len = size - 1;
        for (i = 0; i < len && src[i]; i++)
                dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
        dst[i] = '\0';
}

/* The priority string: SMTP_TLS_PRIORITY when set, else the built-in one.
 * A syntax error names the element GnuTLS stopped at. */
static int tls_priority_load(const char *setting, gnutls_priority_t *out, char *err, size_t errlen)
{
        const char *string = setting[0] ? setting : tls_default_priority;
        const char *name = setting[0] ? "SMTP_TLS_PRIORITY" : "built-in TLS priority string";
        const char *pos = NULL;
        char shown[HW_TLS_PRIORITY_MAX];
        int r = gnutls_priority_init2(out, string, &pos, 0);

        if (r >= 0)
                return 0;
        *out = NULL;
        if (r == GNUTLS_E_INVALID_REQUEST && pos && pos >= string && pos <= string + strlen(string)) {
                tls_printable(shown, sizeof(shown), pos, strcspn(pos, ":"));
                snprintf(err, errlen, "%s: invalid GnuTLS priority string: \"%s\" at offset %zu",
                         name, shown, (size_t)(pos - string));
        } else {
                /* E.g. "NORMAL:-VERS-ALL": it parses but leaves nothing to use. */
                tls_printable(shown, sizeof(shown), string, strlen(string));
                snprintf(err, errlen, "%s \"%s\": %s", name, shown, gnutls_strerror(r));
        }
        return -EINVAL;
}

/* The chain is parsed here before GnuTLS's own loader sees it: a damaged
 * certificate is reported without that loader's error path (which leaks
 * the certificate it failed on), and the leaf is checked for validity,
 * since a certificate that peers must reject is as bad as none. The leaf
 * is the first certificate in the file, as GnuTLS also assumes. */
static int tls_check_chain(const char *path, const gnutls_datum_t *pem, char *err, size_t errlen)
{
        gnutls_x509_crt_t *chain = NULL;
        unsigned n = 0;
        time_t now = time(NULL), from, until;
        char when[64];
        struct tm tm;
        int r = gnutls_x509_crt_list_import2(&chain, &n, pem, GNUTLS_X509_FMT_PEM, 0);

        if (r < 0 || n == 0) {
                snprintf(err, errlen, "cannot use certificate %s: %s", path,
                         r < 0 ? gnutls_strerror(r) : "no certificate in the file");
                r = -EINVAL;
                goto out;
        }
        from = gnutls_x509_crt_get_activation_time(chain[0]);
        until = gnutls_x509_crt_get_expiration_time(chain[0]);
        r = 0;
        if (until != (time_t)-1 && until < now) {
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&until, &tm));
                snprintf(err, errlen, "certificate expired on %s (%s)", when, path);
                r = -EKEYEXPIRED;
        } else if (from != (time_t)-1 && from > now) {
                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&from, &tm));
                snprintf(err, errlen, "certificate not valid before %s (%s)", when, path);
                r = -EKEYEXPIRED;
        }
out:
        for (unsigned i = 0; i < n; i++)
                gnutls_x509_crt_deinit(chain[i]);
        gnutls_free(chain);
        return r;
}

/* Everything is built in locals and handed to tls only when all of it
 * worked; one exit frees what is left, on every path. */
static int tls_check(const struct hw_config *cfg, char *err, size_t errlen)
{
        const char *cert = cfg->tls_cert_path, *key = cfg->tls_key_path;
        gnutls_certificate_credentials_t cred = NULL;
        gnutls_priority_t priority = NULL;
        gnutls_datum_t cert_pem = { NULL, 0 }, key_pem = { NULL, 0 };
        int r;

        tls_release();
        if (!cert[0] || !key[0]) {
                snprintf(err, errlen, "SMTP_TLS_CERT_PATH and SMTP_TLS_KEY_PATH must both be set");
                return -EINVAL;
        }
        /* First, as it needs no file: --check-config reports it even when
         * the certificate is not in place yet. */
        r = tls_priority_load(cfg->tls_priority, &priority, err, errlen);
        if (r < 0)
                goto out;
        r = tls_read_file("SMTP_TLS_CERT_PATH", cert, &cert_pem, err, errlen);
        if (r < 0)
                goto out;
        r = tls_read_file("SMTP_TLS_KEY_PATH", key, &key_pem, err, errlen);
        if (r < 0)
                goto out;
        r = tls_check_chain(cert, &cert_pem, err, errlen);
        if (r < 0)
                goto out;

        r = gnutls_certificate_allocate_credentials(&cred);
        if (r < 0) {
                cred = NULL;
                snprintf(err, errlen, "cannot allocate credentials: %s", gnutls_strerror(r));
                r = -ENOMEM;
                goto out;
        }
        /* Every certificate in the file is sent, so a full chain works; the
         * key is checked against the leaf (GNUTLS_E_CERTIFICATE_KEY_MISMATCH). */
        r = gnutls_certificate_set_x509_key_mem2(cred, &cert_pem, &key_pem, GNUTLS_X509_FMT_PEM,
                                                 NULL, 0);
        if (r < 0) {
                snprintf(err, errlen, "cannot use certificate %s with key %s: %s",
                         cert, key, gnutls_strerror(r));
                r = -EINVAL;
                goto out;
        }

        tls.cred = cred;
        cred = NULL;
        tls.priority = priority;
        priority = NULL;
        r = 0;
out:
        if (cred)
                gnutls_certificate_free_credentials(cred);
        if (priority)
                gnutls_priority_deinit(priority);
        tls_datum_free(&key_pem);
        tls_datum_free(&cert_pem);
        return r;
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
                r = -EINVAL;
                goto fail;
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
                switch (r) {
                case GNUTLS_E_TIMEDOUT:
                        r = -ETIMEDOUT;
                        break;
                case GNUTLS_E_PUSH_ERROR:
                case GNUTLS_E_PULL_ERROR:
                case GNUTLS_E_PREMATURE_TERMINATION:
                        r = -ECONNRESET;
                        break;
                default:
                        r = -EPROTO;
                        break;
                }
                goto fail;
        }

        snprintf(desc, desc_size, "%s with %s",
                 gnutls_protocol_get_name(gnutls_protocol_get_version(tls.session)),
                 gnutls_cipher_get_name(gnutls_cipher_get(tls.session)));
        t->read = tls_read;
        t->write = tls_write;
        t->ctx = &tls;
        return 0;

fail:
        gnutls_deinit(tls.session);
        tls.session = NULL;
        return r;
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
        .module = { .abi = HW_MODULE_ABI, .check = tls_check },
        .start = tls_start,
        .stop = tls_stop,
};
