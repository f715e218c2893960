/* Optional parts of hw-receive live in modules loaded with dlopen(3) only
 * when a session needs them: hw-tls.so (GnuTLS) on STARTTLS, and after
 * DATA hw-auth.so (libspf2, libopendkim, libopendmarc) and
 * hw-decision.so (libcurl, jansson). Linking those libraries
 * would cost every connection several milliseconds of start-up, also the
 * many that never use them. Modules are looked for in $HW_MODULE_DIR, else
 * in the package's library directory. What a module sees is in
 * module_api.h; this is the session's side. */
#ifndef HW_MODULES_H
#define HW_MODULES_H

#include <stddef.h>

#include "config.h"
#include "smtp.h"

/* The hooks for the session: NULL when no module is configured. */
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
