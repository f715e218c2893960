/* Optional parts of hw-receive live in modules loaded with dlopen(3) only
 * when a session needs them: hw-tls.so (GnuTLS) on STARTTLS and
 * hw-decision.so (libcurl, jansson) after DATA. Linking those libraries
 * would cost every connection several milliseconds of start-up, also the
 * many that never use them. Modules are looked for in $HW_MODULE_DIR, else
 * in the package's library directory. */
#ifndef HW_MODULES_H
#define HW_MODULES_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "io.h"
#include "smtp.h"
#include "spool.h"

#define HW_MODULE_ABI 1

#define HW_TLS_MODULE_FILE "hw-tls.so"
#define HW_TLS_MODULE_SYMBOL "hw_tls_module"
struct hw_tls_module {
        unsigned abi;
        /* Loads and checks the certificate (chain) and key: 0 or -errno
         * with the reason in err. */
        int (*check)(const struct hw_config *cfg, char *err, size_t errlen);
        /* The server handshake on in_fd/out_fd within timeout_ms. On success
         * *t reads and writes through TLS and desc names the protocol and
         * cipher (e.g. "TLS1.3 with AES-256-GCM"). */
        int (*start)(const struct hw_config *cfg, int in_fd, int out_fd, int timeout_ms,
                     struct io_transport *t, char *desc, size_t desc_size,
                     char *err, size_t errlen);
        /* Sends close_notify (best effort) and frees the session. */
        void (*stop)(void);
};

#define HW_DECISION_MODULE_FILE "hw-decision.so"
#define HW_DECISION_MODULE_SYMBOL "hw_decision_module"
struct hw_decision_module {
        unsigned abi;
        /* Asks WEBHOOK_DECISION_URL about the message in fd (read-only; the
         * message starts at message_offset). For DENY, reply is the whole
         * SMTP reply line ("550 5.7.1 <sanitized text>"); reason says why
         * for the log (never the token). */
        enum decision_outcome (*decide)(const struct hw_config *cfg, const struct envelope *env,
                                        int fd, off_t message_offset,
                                        char *reply, size_t reply_size,
                                        char *reason, size_t reason_size);
};

/* The hooks for the session: NULL when neither TLS nor the decision API
 * is configured. */
const struct smtp_hooks *modules_hooks(const struct hw_config *cfg);

/* For --check-config: loads the configured modules and checks their
 * settings (certificate and key). */
int modules_check(const struct hw_config *cfg, char *err, size_t errlen);

/* For a process that forks sessions (hw-receive --listen): loads the
 * configured modules and takes the TLS verdict now, again only when the
 * certificate or key file or the settings changed, so that every session
 * forked afterwards inherits both and pays for neither. */
void modules_prepare(const struct hw_config *cfg);

void modules_unload(void);

#endif
