/* What a module of hw-receive sees: the interface between the session's
 * loader (modules.c) and the shared objects it loads with dlopen(3) when a
 * session needs them. A module gets the configuration, the envelope and
 * the spooled message read-only, or a pair of descriptors to run TLS on;
 * never the session itself.
 *
 * A module exports one constant under its symbol. The constant starts
 * with struct hw_module, so the loader checks the ABI and the settings of
 * every module the same way. A module links only its own libraries and
 * lib/, and never logs or exits: it says what went wrong in the buffer it
 * is given, and hw-receive logs it once.
 *
 * Adding a module: its struct below (struct hw_module first, then its
 * entry points), a row in modules.c's table (file, symbol, and when the
 * configuration wants it), the hook that calls it in smtp.h's struct
 * smtp_hooks, and its library in Makefile.am. */
#ifndef HW_MODULE_API_H
#define HW_MODULE_API_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth_verdict.h"
#include "config.h"
#include "io_transport.h"
#include "spool.h"             /* struct envelope, nothing else of the spool */

/* Changes whenever a struct below does: the loader refuses a module built
 * for another. */
#define HW_MODULE_ABI 3

struct hw_module {
        unsigned abi;
        /* Checks the module's settings (--check-config, and before its
         * first use): 0, or -errno with the reason in err. NULL when there
         * is nothing to check. */
        int (*check)(const struct hw_config *cfg, char *err, size_t errlen);
};

/* A received message, after the final dot and before the commit. */
struct hw_module_message {
        const struct envelope *env;
        int fd;                /* read-only; read it with pread(2) */
        off_t offset;          /* where the message starts in fd */
        const struct auth_verdict *auth;   /* NULL when not verified */
};

/* A recipient at RCPT time, before any message exists. */
struct hw_module_recipient {
        const struct envelope *env;    /* the transaction so far: queue id, client, sender */
        const char *addr;              /* the recipient asked about */
        int64_t asked_ms;              /* Unix ms of the RCPT command */
        uint64_t timeout_ms;           /* bounds this request (at most WEBHOOK_TIMEOUT_MS) */
};

/* hw-tls.so: STARTTLS (GnuTLS). check() loads the certificate chain and
 * the key. */
#define HW_TLS_MODULE_FILE "hw-tls.so"
#define HW_TLS_MODULE_SYMBOL "hw_tls_module"
struct hw_tls_module {
        struct hw_module module;
        /* The server handshake on in_fd/out_fd within timeout_ms. On
         * success *t reads and writes through TLS and desc names the
         * protocol and cipher (e.g. "TLS1.3 with AES-256-GCM"). */
        int (*start)(const struct hw_config *cfg, int in_fd, int out_fd, int timeout_ms,
                     struct io_transport *t, char *desc, size_t desc_size,
                     char *err, size_t errlen);
        /* Sends close_notify (best effort) and frees the session. */
        void (*stop)(void);
};

/* hw-decision.so: the pre-accept decision API (libcurl, jansson). */
#define HW_DECISION_MODULE_FILE "hw-decision.so"
#define HW_DECISION_MODULE_SYMBOL "hw_decision_module"
enum decision_outcome {
        DECISION_ALLOW,
        DECISION_DENY,         /* 550 with the service's text */
        DECISION_SILENT_DENY,  /* 250, nothing kept */
        DECISION_TEMPFAIL,     /* 451 */
        DECISION_DEFER,        /* 450 with the service's text */
};
struct hw_decision_module {
        struct hw_module module;
        /* Asks WEBHOOK_DECISION_URL about msg. For DENY and DEFER, reply
         * is the whole SMTP reply line ("550 5.7.1 <sanitized text>",
         * "450 4.7.1 <sanitized text>"); reason
         * says why for the log (never the token). */
        enum decision_outcome (*decide)(const struct hw_config *cfg, const struct hw_module_message *msg,
                                        char *reply, size_t reply_size,
                                        char *reason, size_t reason_size);
        /* Asks about one recipient at RCPT time (WEBHOOK_DECISION_STAGES
         * with rcpt); reply and reason as for decide. */
        enum decision_outcome (*decide_rcpt)(const struct hw_config *cfg, const struct hw_module_recipient *rcpt,
                                             char *reply, size_t reply_size,
                                             char *reason, size_t reason_size);
};

/* hw-auth.so: SPF, DKIM and DMARC (libspf2, libopendkim, libopendmarc),
 * all DNS through one DNS client bounded by AUTH_DNS_TIMEOUT_MS.
 * check() reads the resolver configuration and the public suffix list. */
#define HW_AUTH_MODULE_FILE "hw-auth.so"
#define HW_AUTH_MODULE_SYMBOL "hw_auth_module"
struct hw_auth_module {
        struct hw_module module;
        /* Verifies msg (the sender's bytes, before our headers) for the
         * client in msg->env. Fills v (checked true, and temperror where
         * time or DNS ran out) and lists the sender's forged
         * Authentication-Results: headers in v->forged. 0, or -errno with
         * the reason in err when something failed that is not DNS. */
        int (*verify)(const struct hw_config *cfg, const struct hw_module_message *msg,
                      struct auth_verdict *v, char *err, size_t errlen);
        /* For --check-config: one query to the resolver. 0 when it
         * answered; report says what happened either way. */
        int (*probe)(const struct hw_config *cfg, char *report, size_t report_size);
};

#endif
