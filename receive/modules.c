/* Loading hw-receive's optional modules; see modules.h and module_api.h. */
#include "modules.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "module_api.h"

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/lib/hw-webhook"
#endif

struct module {
        const char *file;
        const char *symbol;
        bool (*wanted)(const struct hw_config *cfg);
        void *handle;
        const struct hw_module *api;   /* NULL until loaded */
};

static bool modules_want_tls(const struct hw_config *cfg)
{
        return cfg->tls_cert_path[0] && cfg->tls_key_path[0];
}

static bool modules_want_decision(const struct hw_config *cfg)
{
        return cfg->decision_url[0];
}

static bool modules_want_auth(const struct hw_config *cfg)
{
        return cfg->auth_checks;
}

/* Every module hw-receive knows, in the order --check-config checks them. */
enum { MODULE_TLS, MODULE_DECISION, MODULE_AUTH, MODULE_COUNT };
static struct module modules[MODULE_COUNT] = {
        [MODULE_TLS] = { .file = HW_TLS_MODULE_FILE, .symbol = HW_TLS_MODULE_SYMBOL,
                         .wanted = modules_want_tls },
        [MODULE_DECISION] = { .file = HW_DECISION_MODULE_FILE, .symbol = HW_DECISION_MODULE_SYMBOL,
                              .wanted = modules_want_decision },
        [MODULE_AUTH] = { .file = HW_AUTH_MODULE_FILE, .symbol = HW_AUTH_MODULE_SYMBOL,
                          .wanted = modules_want_auth },
};

/* The TLS verdict is taken once per process, on the first EHLO, and
 * remembered in the spool's tls-verdict note for the certificate and key
 * files as they are: most sessions never send STARTTLS, and only those
 * should pay for loading GnuTLS. A renewed file has a new inode or change
 * time, so the next session checks it again. */
enum tls_status { TLS_UNCHECKED, TLS_READY, TLS_BROKEN };
static enum tls_status tls_status;
#define TLS_VERDICT_NOTE "tls-verdict"
#define TLS_VERDICT_MAX 1024

static int module_load(struct module *m, char *err, size_t errlen)
{
        const char *dir = getenv("HW_MODULE_DIR");
        char path[PATH_MAX];
        const struct hw_module *api;

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
        api = dlsym(m->handle, m->symbol);
        if (!api || api->abi != HW_MODULE_ABI) {
                snprintf(err, errlen, "%s: no %s of ABI %d", path, m->symbol, HW_MODULE_ABI);
                dlclose(m->handle);
                m->handle = NULL;
                return -ENOEXEC;
        }
        m->api = api;
        return 0;
}

/* FNV-1a, to fold the paths and the priority string into the note's key. */
static uint64_t tls_fnv1a(uint64_t h, const char *s)
{
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * UINT64_C(0x100000001b3);
        return (h ^ 0xff) * UINT64_C(0x100000001b3);
}

static int tls_file_id(const char *path, char *buf, size_t size)
{
        struct stat st;

        if (stat(path, &st) < 0)
                return -errno;
        snprintf(buf, size, "%ju:%ju:%jd:%jd.%09ld:%jd.%09ld", (uintmax_t)st.st_dev,
                 (uintmax_t)st.st_ino, (intmax_t)st.st_size, (intmax_t)st.st_mtim.tv_sec,
                 st.st_mtim.tv_nsec, (intmax_t)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
        return 0;
}

/* The note's first line: what the verdict was taken for. */
static int tls_verdict_key(const struct hw_config *cfg, char *key, size_t size)
{
        char cert[128], keyfile[128];
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        int r = tls_file_id(cfg->tls_cert_path, cert, sizeof(cert));

        if (r >= 0)
                r = tls_file_id(cfg->tls_key_path, keyfile, sizeof(keyfile));
        if (r < 0)
                return r;
        h = tls_fnv1a(tls_fnv1a(tls_fnv1a(h, cfg->tls_cert_path), cfg->tls_key_path), cfg->tls_priority);
        snprintf(key, size, "%s %s %016" PRIx64, cert, keyfile, h);
        return 0;
}

/* 0 when the note holds a verdict for key: ok, or the reason in err. */
static int tls_verdict_recall(const struct spool *spool, const char *key, bool *ok,
                              char *err, size_t errlen)
{
        char note[TLS_VERDICT_MAX], *verdict;
        size_t key_len = strlen(key);

        if (spool_note_read(spool, TLS_VERDICT_NOTE, note, sizeof(note)) < 0 ||
            strncmp(note, key, key_len) != 0 || note[key_len] != '\n')
                return -ENOENT;
        verdict = note + key_len + 1;
        verdict[strcspn(verdict, "\n")] = '\0';
        *ok = strcmp(verdict, "ok") == 0;
        if (!*ok && strncmp(verdict, "bad ", 4) != 0)
                return -ENOENT;
        if (!*ok)
                snprintf(err, errlen, "%s", verdict + 4);
        return 0;
}

static void tls_verdict_remember(const struct spool *spool, const char *key, bool ok, const char *err)
{
        char note[TLS_VERDICT_MAX];
        int r;

        snprintf(note, sizeof(note), "%s\n%s%s\n", key, ok ? "ok" : "bad ", ok ? "" : err);
        /* Only a saving: without it the next session checks again. */
        r = spool_note_write(spool, TLS_VERDICT_NOTE, note);
        if (r < 0)
                log_msg(LOG_WARNING, "cannot write the spool's %s note: %s", TLS_VERDICT_NOTE, strerror(-r));
}

/* The entry points of a loaded module; each module's struct starts with
 * struct hw_module (module_api.h). */
static const struct hw_tls_module *modules_tls(void)
{
        return (const struct hw_tls_module *)modules[MODULE_TLS].api;
}

static const struct hw_decision_module *modules_decision(void)
{
        return (const struct hw_decision_module *)modules[MODULE_DECISION].api;
}

static const struct hw_auth_module *modules_auth(void)
{
        return (const struct hw_auth_module *)modules[MODULE_AUTH].api;
}

/* Loads m and checks its settings: 0, or -errno with the reason in err. */
static int module_load_checked(struct module *m, const struct hw_config *cfg, char *err, size_t errlen)
{
        int r = module_load(m, err, errlen);

        if (r >= 0 && m->api->check)
                r = m->api->check(cfg, err, errlen);
        return r;
}

static bool modules_tls_usable(const struct hw_config *cfg, const struct spool *spool)
{
        char err[512], key[512];
        bool ok, keyed;
        int r;

        if (tls_status != TLS_UNCHECKED)
                return tls_status == TLS_READY;
        keyed = tls_verdict_key(cfg, key, sizeof(key)) >= 0;
        if (keyed && tls_verdict_recall(spool, key, &ok, err, sizeof(err)) >= 0) {
                r = ok ? 0 : -EINVAL;
        } else {
                r = module_load_checked(&modules[MODULE_TLS], cfg, err, sizeof(err));
                /* A module that cannot load says nothing about the files. */
                if (keyed && modules_tls())
                        tls_verdict_remember(spool, key, r >= 0, err);
        }
        tls_status = r < 0 ? TLS_BROKEN : TLS_READY;
        /* Loud, but mail keeps flowing without STARTTLS. */
        if (r < 0)
                log_msg(LOG_ERR, "STARTTLS disabled: %s", err);
        return tls_status == TLS_READY;
}

static int modules_tls_start(const struct hw_config *cfg, int timeout_ms, const char *remote_ip,
                             struct io_transport *t, char *desc, size_t desc_size)
{
        char err[512];
        /* Loaded here when the verdict came from the note. */
        int r = module_load(&modules[MODULE_TLS], err, sizeof(err));

        if (r < 0) {
                log_msg(LOG_ERR, "STARTTLS failed: %s", err);
                return r;
        }
        r = modules_tls()->start(cfg, 0, 1, timeout_ms, t, desc, desc_size, err, sizeof(err));
        if (r < 0)
                log_msg(LOG_WARNING, "TLS handshake with %s failed: %s", remote_ip, err);
        return r;
}

static enum decision_outcome modules_decide(const struct hw_config *cfg, const struct envelope *env,
                                            const struct spool_item *item, const struct auth_verdict *auth,
                                            char *reply, size_t size, char *reason, size_t reason_size)
{
        struct hw_module_message msg = { .env = env, .offset = item->message_offset,
                                         .auth = auth && auth->checked ? auth : NULL };
        enum decision_outcome outcome;
        int r = module_load(&modules[MODULE_DECISION], reason, reason_size);

        if (r < 0)
                return DECISION_TEMPFAIL;
        msg.fd = spool_item_open_read(item);
        if (msg.fd < 0) {
                snprintf(reason, reason_size, "cannot reopen the message: %s", strerror(-msg.fd));
                return DECISION_TEMPFAIL;
        }
        outcome = modules_decision()->decide(cfg, &msg, reply, size, reason, reason_size);
        close(msg.fd);
        return outcome;
}

static enum decision_outcome modules_decide_rcpt(const struct hw_config *cfg, const struct envelope *env,
                                                 const char *addr, uint64_t timeout_ms,
                                                 char *reply, size_t size,
                                                 char *reason, size_t reason_size)
{
        struct hw_module_recipient rcpt = { .env = env, .addr = addr, .timeout_ms = timeout_ms };
        struct timespec now;
        /* Loaded once per session, by the first recipient. */
        int r = module_load(&modules[MODULE_DECISION], reason, reason_size);

        if (r < 0)
                return DECISION_TEMPFAIL;
        clock_gettime(CLOCK_REALTIME, &now);
        rcpt.asked_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        return modules_decision()->decide_rcpt(cfg, &rcpt, reply, size, reason, reason_size);
}

/* Loaded at the first final dot of the session: a session that only
 * connects and quits never pays for the three libraries. */
static int modules_authenticate(const struct hw_config *cfg, const struct envelope *env,
                                const struct spool_item *item, struct auth_verdict *v)
{
        struct hw_module_message msg = { .env = env, .offset = item->message_offset };
        char err[512] = "";
        int r = module_load(&modules[MODULE_AUTH], err, sizeof(err));

        if (r < 0) {
                /* Loud, but mail keeps flowing, without the header. */
                log_msg(LOG_ERR, "sender authentication disabled: %s", err);
                return 0;
        }
        msg.fd = spool_item_open_read(item);
        if (msg.fd < 0) {
                log_msg(LOG_ERR, "%s: cannot reopen the message: %s", env->id, strerror(-msg.fd));
                return msg.fd;
        }
        r = modules_auth()->verify(cfg, &msg, v, err, sizeof(err));
        close(msg.fd);
        if (err[0])
                log_msg(r < 0 ? LOG_ERR : LOG_WARNING, "%s: sender authentication: %s", env->id, err);
        return r;
}

const struct smtp_hooks *modules_hooks(const struct hw_config *cfg)
{
        static struct smtp_hooks hooks;
        bool any = false;

        if (modules[MODULE_TLS].wanted(cfg)) {
                hooks.tls_usable = modules_tls_usable;
                hooks.tls_start = modules_tls_start;
                any = true;
        }
        if (modules[MODULE_DECISION].wanted(cfg)) {
                /* WEBHOOK_DECISION_STAGES: which of the two are asked. */
                if (cfg->decision_at_data)
                        hooks.decide = modules_decide;
                if (cfg->decision_at_rcpt)
                        hooks.decide_rcpt = modules_decide_rcpt;
                any = true;
        }
        if (modules[MODULE_AUTH].wanted(cfg)) {
                hooks.authenticate = modules_authenticate;
                any = true;
        }
        return any ? &hooks : NULL;
}

int modules_check(const struct hw_config *cfg, char *err, size_t errlen)
{
        for (size_t i = 0; i < MODULE_COUNT; i++) {
                int r;

                if (!modules[i].wanted(cfg))
                        continue;
                r = module_load_checked(&modules[i], cfg, err, errlen);
                if (r < 0)
                        return r;
        }
        if (modules_auth()) {
                char report[512];

                /* A dead resolver is reported, not refused: mail still
                 * flows, with temperror results. */
                if (modules_auth()->probe(cfg, report, sizeof(report)) < 0)
                        log_msg(LOG_WARNING, "AUTH_CHECKS: %s", report);
                else
                        log_msg(LOG_NOTICE, "AUTH_CHECKS: %s", report);
        }
        return 0;
}

void modules_prepare(const struct hw_config *cfg)
{
        static char last_key[512], last_err[512];
        char key[512], err[512] = "";
        int r;

        if (modules[MODULE_DECISION].wanted(cfg) && module_load(&modules[MODULE_DECISION], err, sizeof(err)) < 0)
                log_msg(LOG_ERR, "decision API: %s", err);
        if (modules[MODULE_AUTH].wanted(cfg) && module_load(&modules[MODULE_AUTH], err, sizeof(err)) < 0)
                log_msg(LOG_ERR, "sender authentication: %s", err);
        if (!cfg->tls_cert_path[0] || !cfg->tls_key_path[0])
                return;
        r = tls_verdict_key(cfg, key, sizeof(key));
        if (r < 0) {
                /* A file that is missing now: the session sees why. */
                snprintf(err, sizeof(err), "SMTP_TLS_CERT_PATH or SMTP_TLS_KEY_PATH: %s", strerror(-r));
                key[0] = '\0';
        } else if (tls_status != TLS_UNCHECKED && strcmp(key, last_key) == 0) {
                return;
        } else {
                r = module_load_checked(&modules[MODULE_TLS], cfg, err, sizeof(err));
        }
        tls_status = r < 0 ? TLS_BROKEN : TLS_READY;
        /* Once per verdict, not once per connection. */
        if (r < 0 && (strcmp(key, last_key) != 0 || strcmp(err, last_err) != 0))
                log_msg(LOG_ERR, "STARTTLS disabled: %s", err);
        snprintf(last_key, sizeof(last_key), "%s", key);
        snprintf(last_err, sizeof(last_err), "%s", r < 0 ? err : "");
}

void modules_unload(void)
{
        if (modules_tls() && tls_status == TLS_READY)
                modules_tls()->stop();
        /* The handles stay open: the process ends right after this. */
}
