/* Loading hw-receive's optional modules; see modules.h. */
#include "modules.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/lib/hw-webhook"
#endif

struct module {
        const char *file;
        const char *symbol;
        void *handle;
        const void *api;
};

static struct module tls_module = { HW_TLS_MODULE_FILE, HW_TLS_MODULE_SYMBOL, NULL, NULL };
static struct module decision_module = { HW_DECISION_MODULE_FILE, HW_DECISION_MODULE_SYMBOL, NULL, NULL };

/* The TLS verdict is taken once per process: on the first EHLO. */
enum tls_status { TLS_UNCHECKED, TLS_READY, TLS_BROKEN };
static enum tls_status tls_status;

static int module_load(struct module *m, char *err, size_t errlen)
{
        const char *dir = getenv("HW_MODULE_DIR");
        char path[4096];
        const unsigned *abi;

        if (m->api)
                return 0;
        if (!dir || !*dir)
                dir = PKGLIBDIR;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, m->file) >= sizeof(path)) {
                snprintf(err, errlen, "module path too long");
                return -ENAMETOOLONG;
        }
        m->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!m->handle) {
                snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
                return -ENOENT;
        }
        abi = dlsym(m->handle, m->symbol);
        if (!abi || *abi != HW_MODULE_ABI) {
                snprintf(err, errlen, "%s: no %s of ABI %d", path, m->symbol, HW_MODULE_ABI);
                dlclose(m->handle);
                m->handle = NULL;
                return -ENOEXEC;
        }
        m->api = abi;
        return 0;
}

static bool modules_tls_available(struct smtp_session *s)
{
        char err[512];
        int r;

        if (tls_status == TLS_UNCHECKED) {
                r = module_load(&tls_module, err, sizeof(err));
                if (r >= 0)
                        r = ((const struct hw_tls_module *)tls_module.api)->check(s->cfg, err, sizeof(err));
                tls_status = r < 0 ? TLS_BROKEN : TLS_READY;
                /* Loud, but mail keeps flowing without STARTTLS. */
                if (r < 0)
                        log_msg(LOG_ERR, "STARTTLS disabled: %s", err);
        }
        return tls_status == TLS_READY;
}

static int modules_tls_start(struct smtp_session *s)
{
        const struct hw_tls_module *tls = tls_module.api;
        struct io_transport t;
        char err[512];
        size_t dropped;
        int r = tls->start(s->cfg, 0, 1, s->io.timeout_ms, &t, s->env.tls, sizeof(s->env.tls),
                           err, sizeof(err));

        if (r < 0) {
                log_msg(LOG_WARNING, "TLS handshake with %s failed: %s", s->env.remote_ip, err);
                return r;
        }
        /* CVE-2011-0411: whatever came with STARTTLS in plain text is dropped. */
        dropped = io_switch_transport(&s->io, &t);
        if (dropped)
                log_msg(LOG_NOTICE, "dropped %zu plaintext bytes sent after STARTTLS by %s",
                        dropped, s->env.remote_ip);
        return 0;
}

static enum decision_outcome modules_decide(struct smtp_session *s, const struct spool_item *item,
                                            char *reply, size_t size, char *reason, size_t reason_size)
{
        const struct hw_decision_module *decision;
        enum decision_outcome outcome;
        int fd, r = module_load(&decision_module, reason, reason_size);

        if (r < 0)
                return DECISION_TEMPFAIL;
        decision = decision_module.api;
        fd = spool_item_open_read(item);
        if (fd < 0) {
                snprintf(reason, reason_size, "cannot reopen the message: %s", strerror(-fd));
                return DECISION_TEMPFAIL;
        }
        outcome = decision->decide(s->cfg, &s->env, fd, item->message_offset, reply, size,
                                   reason, reason_size);
        close(fd);
        return outcome;
}

static const struct smtp_hooks modules_tls_hooks = {
        .tls_available = modules_tls_available,
        .tls_start = modules_tls_start,
};

static const struct smtp_hooks modules_decision_hooks = {
        .decide = modules_decide,
};

static const struct smtp_hooks modules_all_hooks = {
        .tls_available = modules_tls_available,
        .tls_start = modules_tls_start,
        .decide = modules_decide,
};

const struct smtp_hooks *modules_hooks(const struct hw_config *cfg)
{
        bool tls = cfg->tls_cert_path[0] && cfg->tls_key_path[0];
        bool decision = cfg->decision_url[0];

        if (tls && decision)
                return &modules_all_hooks;
        if (tls)
                return &modules_tls_hooks;
        if (decision)
                return &modules_decision_hooks;
        return NULL;
}

int modules_check(const struct hw_config *cfg, char *err, size_t errlen)
{
        int r;

        if (cfg->tls_cert_path[0]) {
                r = module_load(&tls_module, err, errlen);
                if (r >= 0)
                        r = ((const struct hw_tls_module *)tls_module.api)->check(cfg, err, errlen);
                if (r < 0)
                        return r;
        }
        if (cfg->decision_url[0])
                return module_load(&decision_module, err, errlen);
        return 0;
}

void modules_unload(void)
{
        if (tls_module.api && tls_status == TLS_READY)
                ((const struct hw_tls_module *)tls_module.api)->stop();
        /* The handles stay open: the process ends right after this. */
}
