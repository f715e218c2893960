/* Configuration from the environment, with haraka-webhook's names so that
 * its .env file works unchanged as the units' EnvironmentFile=. A bad value
 * is an error naming the variable: nothing falls back to a default. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const config_default_roles =
        "abuse,admin,administrator,billing,contact,daemon,help,hostmaster,info,"
        "legal,mail,mailerdaemon,marketing,noc,noreply,nostr,postmaster,privacy,"
        "root,sales,security,spam,sysadmin,support,usenet,uucp,webmaster,www";

static int config_fail(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int config_fail(char *err, size_t errlen, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* An unset and an empty variable mean the same: the default. */
static const char *config_env(const char *name)
{
        const char *v = getenv(name);

        return v && *v ? v : NULL;
}

static int config_string(const char *name, char *dst, size_t size, char *err, size_t errlen)
{
        const char *v = config_env(name);

        if (!v)
                return 0;
        if (strlen(v) >= size)
                return config_fail(err, errlen, "%s: longer than %zu bytes", name, size - 1);
        strcpy(dst, v);
        return 0;
}

static int config_uint(const char *name, uint64_t min, uint64_t max, uint64_t *dst,
                       char *err, size_t errlen)
{
        const char *v = config_env(name);
        char *end;
        unsigned long long n;

        if (!v)
                return 0;
        if (!isdigit((unsigned char)v[0]))
                return config_fail(err, errlen, "%s: '%s' is not a whole number", name, v);
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno || *end)
                return config_fail(err, errlen, "%s: '%s' is not a whole number", name, v);
        if (n < min || n > max)
                return config_fail(err, errlen, "%s: %llu is outside %" PRIu64 "..%" PRIu64,
                                   name, n, min, max);
        *dst = n;
        return 0;
}

static int config_unsigned(const char *name, uint64_t min, uint64_t max, unsigned *dst,
                           char *err, size_t errlen)
{
        uint64_t n = *dst;
        int r = config_uint(name, min, max, &n, err, errlen);

        *dst = (unsigned)n;
        return r;
}

static int config_bool(const char *name, bool *dst, char *err, size_t errlen)
{
        static const char *const yes[] = { "1", "true", "yes", "on" };
        static const char *const no[] = { "0", "false", "no", "off" };
        const char *v = config_env(name);

        if (!v)
                return 0;
        for (size_t i = 0; i < 4; i++) {
                if (strcasecmp(v, yes[i]) == 0) {
                        *dst = true;
                        return 0;
                }
                if (strcasecmp(v, no[i]) == 0) {
                        *dst = false;
                        return 0;
                }
        }
        return config_fail(err, errlen, "%s: '%s' is not one of 1/true/yes/on or 0/false/no/off",
                           name, v);
}

static bool config_url_ok(const char *url)
{
        return (strncasecmp(url, "http://", 7) == 0 && url[7]) ||
               (strncasecmp(url, "https://", 8) == 0 && url[8]);
}

static int config_url(const char *name, char *dst, size_t size, char *err, size_t errlen)
{
        int r = config_string(name, dst, size, err, errlen);

        if (r < 0)
                return r;
        for (const char *p = dst; *p; p++)
                if ((unsigned char)*p <= ' ' || *p == 0x7f)
                        return config_fail(err, errlen, "%s: a URL may not contain spaces or control characters", name);
        if (*dst && !config_url_ok(dst))
                return config_fail(err, errlen, "%s: only http:// and https:// URLs are supported", name);
        return 0;
}

/* Splits a comma list into lower-case, trimmed, non-empty items. */
static int config_list_parse(const char *text, char ***out)
{
        size_t n = 1;
        char **items;
        size_t count = 0;

        for (const char *p = text; *p; p++)
                n += *p == ',';
        items = calloc(n + 1, sizeof(*items));
        if (!items)
                return -ENOMEM;
        for (const char *p = text; *p;) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                const char *s = p;

                while (len && isspace((unsigned char)*s))
                        s++, len--;
                while (len && isspace((unsigned char)s[len - 1]))
                        len--;
                if (len) {
                        char *item = strndup(s, len);

                        if (!item) {
                                for (size_t i = 0; i < count; i++)
                                        free(items[i]);
                                free(items);
                                return -ENOMEM;
                        }
                        for (char *c = item; *c; c++)
                                *c = (char)tolower((unsigned char)*c);
                        items[count++] = item;
                }
                if (!end)
                        break;
                p = end + 1;
        }
        *out = items;
        return 0;
}

static void config_list_free(char **items)
{
        if (!items)
                return;
        for (char **p = items; *p; p++)
                free(*p);
        free(items);
}

static int config_list(const char *name, const char *fallback, char ***dst, char *err, size_t errlen)
{
        const char *v = config_env(name);
        int r;

        if (!v)
                v = fallback;
        r = config_list_parse(v, dst);
        if (r < 0)
                return config_fail(err, errlen, "%s: out of memory", name);
        return 0;
}

/* A systemd credential wins over the variable (LoadCredential=). */
static int config_credential(const char *cred, const char *name, char *dst, size_t size,
                             char *err, size_t errlen)
{
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        char path[4096];
        ssize_t n;
        int fd;

        if (!dir || !*dir)
                return config_string(name, dst, size, err, errlen);
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, cred) >= sizeof(path))
                return config_fail(err, errlen, "CREDENTIALS_DIRECTORY: path too long");
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return config_string(name, dst, size, err, errlen);
                return config_fail(err, errlen, "credential %s: %s", cred, strerror(errno));
        }
        n = read(fd, dst, size);
        if (n < 0) {
                int e = errno;

                close(fd);
                return config_fail(err, errlen, "credential %s: %s", cred, strerror(e));
        }
        close(fd);
        if ((size_t)n >= size)
                return config_fail(err, errlen, "credential %s: longer than %zu bytes", cred, size - 1);
        dst[n] = '\0';
        /* Files written by editors end in a newline that is not part of the key. */
        while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == '\r'))
                dst[--n] = '\0';
        return 0;
}

static int config_decision_mode(enum decision_mode *mode, char *err, size_t errlen)
{
        const char *v = config_env("WEBHOOK_DECISION_PAYLOAD_MODE");

        if (!v || strcasecmp(v, "minimal") == 0)
                *mode = DECISION_MODE_MINIMAL;
        else if (strcasecmp(v, "summary") == 0)
                *mode = DECISION_MODE_SUMMARY;
        else if (strcasecmp(v, "full") == 0)
                *mode = DECISION_MODE_FULL;
        else
                return config_fail(err, errlen,
                                   "WEBHOOK_DECISION_PAYLOAD_MODE: '%s' is not minimal, summary or full", v);
        return 0;
}

static int config_hostname(struct hw_config *cfg, char *err, size_t errlen)
{
        int r = config_string("SMTP_HOSTNAME", cfg->hostname, sizeof(cfg->hostname), err, errlen);

        if (r < 0)
                return r;
        if (!cfg->hostname[0] && gethostname(cfg->hostname, sizeof(cfg->hostname) - 1) < 0)
                return config_fail(err, errlen, "SMTP_HOSTNAME: not set and gethostname failed: %s",
                                   strerror(errno));
        for (const char *p = cfg->hostname; *p; p++)
                if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
                        return config_fail(err, errlen, "SMTP_HOSTNAME: '%s' is not a host name",
                                           cfg->hostname);
        return 0;
}

static void config_defaults(struct hw_config *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        cfg->timeout_ms = HW_TIMEOUT_MS_DEFAULT;
        cfg->retry_interval_ms = HW_RETRY_INTERVAL_MS_DEFAULT;
        cfg->retry_max_interval_ms = HW_RETRY_MAX_INTERVAL_MS_DEFAULT;
        cfg->concurrency = HW_CONCURRENCY_DEFAULT;
        cfg->accept_all_recipients = true;
        cfg->max_message_bytes = HW_MESSAGE_MAX_DEFAULT;
        cfg->max_line_length = HW_CMD_MAX_DEFAULT;
        cfg->max_header_lines = HW_HEADER_LINES_DEFAULT;
        cfg->max_received = HW_RECEIVED_MAX_DEFAULT;
        cfg->max_recipients = HW_RCPT_MAX_DEFAULT;
        cfg->idle_timeout_ms = HW_IDLE_TIMEOUT_MS_DEFAULT;
        cfg->command_deadline_ms = HW_COMMAND_DEADLINE_MS_DEFAULT;
        cfg->data_min_rate = HW_DATA_MIN_RATE_DEFAULT;
        cfg->session_deadline_ms = HW_SESSION_DEADLINE_MS_DEFAULT;
        cfg->max_bad_commands = HW_BAD_COMMANDS_DEFAULT;
        cfg->max_per_source = HW_PER_SOURCE_DEFAULT;
        cfg->max_sessions = HW_SESSIONS_DEFAULT;
        cfg->spool_min_free_bytes = HW_SPOOL_MIN_FREE_DEFAULT;
        /* The configured localstatedir: /var/spool/hw-webhook for packages. */
        strcpy(cfg->spool_dir, LOCALSTATEDIR "/spool/hw-webhook");
}

int config_load(struct hw_config *cfg, char *err, size_t errlen)
{
        const uint64_t day_ms = 86400000, year_ms = 365 * day_ms;
        int r = 0;

        config_defaults(cfg);
        /* Each step stops at the first bad value; r carries it out. */
        if (r >= 0) r = config_url("WEBHOOK_URL", cfg->webhook_url, sizeof(cfg->webhook_url), err, errlen);
        if (r >= 0) r = config_url("WEBHOOK_ROLE_URL", cfg->webhook_role_url, sizeof(cfg->webhook_role_url), err, errlen);
        if (r >= 0) r = config_credential("webhook-signing-key", "WEBHOOK_SIGNING_KEY",
                                          cfg->signing_key, sizeof(cfg->signing_key), err, errlen);
        if (r >= 0) r = config_uint("WEBHOOK_TIMEOUT_MS", 1, day_ms, &cfg->timeout_ms, err, errlen);
        if (r >= 0) r = config_list("ROLE_ADDRESSES", config_default_roles, &cfg->role_addresses, err, errlen);
        if (r >= 0) r = config_uint("RETRY_INTERVAL_MS", 1, year_ms, &cfg->retry_interval_ms, err, errlen);
        if (r >= 0) r = config_uint("RETRY_MAX_INTERVAL_MS", 1, year_ms, &cfg->retry_max_interval_ms, err, errlen);
        if (r >= 0) r = config_uint("MAX_RETRY_AGE_MS", 0, 100 * year_ms, &cfg->max_retry_age_ms, err, errlen);
        if (r >= 0) r = config_unsigned("FLUSH_CONCURRENCY", 1, HW_CONCURRENCY_LIMIT, &cfg->concurrency, err, errlen);
        if (r >= 0) r = config_string("WEBHOOK_CA_FILE", cfg->webhook_ca_file, sizeof(cfg->webhook_ca_file), err, errlen);
        if (r >= 0) r = config_url("WEBHOOK_DECISION_URL", cfg->decision_url, sizeof(cfg->decision_url), err, errlen);
        if (r >= 0) r = config_credential("webhook-decision-token", "WEBHOOK_DECISION_TOKEN",
                                          cfg->decision_token, sizeof(cfg->decision_token), err, errlen);
        if (r >= 0) r = config_decision_mode(&cfg->decision_mode, err, errlen);
        if (r >= 0) r = config_bool("ACCEPT_ALL_RECIPIENTS", &cfg->accept_all_recipients, err, errlen);
        if (r >= 0) r = config_list("ACCEPTED_DOMAINS", "", &cfg->accepted_domains, err, errlen);
        if (r >= 0) r = config_string("SMTP_TLS_CERT_PATH", cfg->tls_cert_path, sizeof(cfg->tls_cert_path), err, errlen);
        if (r >= 0) r = config_string("SMTP_TLS_KEY_PATH", cfg->tls_key_path, sizeof(cfg->tls_key_path), err, errlen);
        if (r >= 0) r = config_string("SMTP_TLS_PRIORITY", cfg->tls_priority, sizeof(cfg->tls_priority), err, errlen);
        if (r >= 0) r = config_hostname(cfg, err, errlen);
        if (r >= 0) r = config_uint("SMTP_MAX_MESSAGE_BYTES", 1024, UINT64_C(1) << 40, &cfg->max_message_bytes, err, errlen);
        if (r >= 0) r = config_unsigned("SMTP_MAX_LINE_LENGTH", 512, HW_CMD_MAX_LIMIT, &cfg->max_line_length, err, errlen);
        if (r >= 0) r = config_unsigned("SMTP_MAX_HEADER_LINES", 1, 1000000, &cfg->max_header_lines, err, errlen);
        if (r >= 0) r = config_unsigned("SMTP_MAX_RECEIVED", 1, 100000, &cfg->max_received, err, errlen);
        if (r >= 0) r = config_unsigned("SMTP_MAX_RECIPIENTS", 1, HW_RCPT_LIMIT, &cfg->max_recipients, err, errlen);
        if (r >= 0) r = config_uint("SMTP_IDLE_TIMEOUT_MS", 100, day_ms, &cfg->idle_timeout_ms, err, errlen);
        if (r >= 0) r = config_uint("SMTP_COMMAND_DEADLINE_MS", 100, day_ms, &cfg->command_deadline_ms, err, errlen);
        if (r >= 0) r = config_uint("SMTP_DATA_MIN_RATE", 0, UINT64_C(1) << 40, &cfg->data_min_rate, err, errlen);
        if (r >= 0) r = config_uint("SMTP_SESSION_DEADLINE_MS", 100, 7 * day_ms, &cfg->session_deadline_ms, err, errlen);
        if (r >= 0) r = config_unsigned("SMTP_MAX_BAD_COMMANDS", 1, 100000, &cfg->max_bad_commands, err, errlen);
        if (r >= 0) r = config_unsigned("SMTP_MAX_CONNECTIONS_PER_SOURCE", 0, HW_PER_SOURCE_LIMIT,
                                        &cfg->max_per_source, err, errlen);
        if (r >= 0) r = config_unsigned("SMTP_MAX_SESSIONS", 1, HW_SESSIONS_LIMIT, &cfg->max_sessions, err, errlen);
        if (r >= 0) r = config_list("SMTP_PROXY_TRUSTED", "", &cfg->proxy_trusted, err, errlen);
        if (r >= 0) r = config_string("SPOOL_DIR", cfg->spool_dir, sizeof(cfg->spool_dir), err, errlen);
        if (r >= 0) r = config_uint("SPOOL_MIN_FREE_BYTES", 0, UINT64_C(1) << 50, &cfg->spool_min_free_bytes, err, errlen);
        if (r < 0)
                goto fail;

        if (!cfg->accept_all_recipients && !cfg->accepted_domains[0]) {
                r = config_fail(err, errlen, "ACCEPTED_DOMAINS: empty while ACCEPT_ALL_RECIPIENTS is false (no mail could be accepted)");
                goto fail;
        }
        if (!cfg->tls_cert_path[0] != !cfg->tls_key_path[0]) {
                r = config_fail(err, errlen, "SMTP_TLS_CERT_PATH and SMTP_TLS_KEY_PATH: set both or neither");
                goto fail;
        }
        /* Stored in inet_ntop's form, the form the peer's address is compared in. */
        for (char **p = cfg->proxy_trusted; *p; p++) {
                unsigned char addr[16];
                char canonical[INET6_ADDRSTRLEN];
                int family = strchr(*p, ':') ? AF_INET6 : AF_INET;

                if (inet_pton(family, *p, addr) != 1 ||
                    !inet_ntop(family, addr, canonical, sizeof(canonical))) {
                        r = config_fail(err, errlen, "SMTP_PROXY_TRUSTED: '%s' is not an IP address", *p);
                        goto fail;
                }
                free(*p);
                *p = strdup(canonical);
                if (!*p) {
                        r = config_fail(err, errlen, "SMTP_PROXY_TRUSTED: out of memory");
                        goto fail;
                }
        }
        if (cfg->spool_dir[0] != '/') {
                r = config_fail(err, errlen, "SPOOL_DIR: '%s' is not an absolute path", cfg->spool_dir);
                goto fail;
        }
        if (cfg->retry_max_interval_ms < cfg->retry_interval_ms) {
                r = config_fail(err, errlen, "RETRY_MAX_INTERVAL_MS: smaller than RETRY_INTERVAL_MS");
                goto fail;
        }
        return 0;
fail:
        config_free(cfg);
        return r;
}

int config_check_flush(const struct hw_config *cfg, char *err, size_t errlen)
{
        if (!cfg->webhook_url[0])
                return config_fail(err, errlen, "WEBHOOK_URL: required (the http:// or https:// URL to POST mail to)");
        return 0;
}

void config_free(struct hw_config *cfg)
{
        config_list_free(cfg->role_addresses);
        config_list_free(cfg->accepted_domains);
        config_list_free(cfg->proxy_trusted);
        cfg->role_addresses = cfg->accepted_domains = cfg->proxy_trusted = NULL;
        explicit_bzero(cfg->signing_key, sizeof(cfg->signing_key));
        explicit_bzero(cfg->decision_token, sizeof(cfg->decision_token));
}

static bool config_list_has(char *const *list, const char *s, size_t len)
{
        if (!list)
                return false;
        for (; *list; list++)
                if (strlen(*list) == len && strncasecmp(*list, s, len) == 0)
                        return true;
        return false;
}

bool config_is_role_address(const struct hw_config *cfg, const char *addr)
{
        const char *at = strrchr(addr, '@');
        size_t len = at ? (size_t)(at - addr) : strlen(addr);

        return config_list_has(cfg->role_addresses, addr, len);
}

bool config_accepts_recipient(const struct hw_config *cfg, const char *addr)
{
        const char *at = strrchr(addr, '@');

        if (cfg->accept_all_recipients)
                return true;
        /* RFC 5321 4.5.1: a bare "postmaster" is always for this host. */
        if (!at)
                return strcasecmp(addr, "postmaster") == 0;
        return config_list_has(cfg->accepted_domains, at + 1, strlen(at + 1));
}

/* URLs may carry user information (Basic auth): never print it. */
static void config_print_url(FILE *out, const char *name, const char *url)
{
        const char *scheme_end = strstr(url, "://");
        const char *host = scheme_end ? scheme_end + 3 : url;
        const char *at = strchr(host, '@');
        const char *slash = strchr(host, '/');

        if (at && (!slash || at < slash))
                fprintf(out, "%s=%.*s***@%s\n", name, (int)(host - url), url, at + 1);
        else
                fprintf(out, "%s=%s\n", name, url);
}

static void config_print_list(FILE *out, const char *name, char *const *list)
{
        fprintf(out, "%s=", name);
        for (char *const *p = list; p && *p; p++)
                fprintf(out, "%s%s", p == list ? "" : ",", *p);
        fputc('\n', out);
}

void config_print(const struct hw_config *cfg, FILE *out)
{
        static const char *const modes[] = { "minimal", "summary", "full" };

        config_print_url(out, "WEBHOOK_URL", cfg->webhook_url);
        config_print_url(out, "WEBHOOK_ROLE_URL", cfg->webhook_role_url);
        fprintf(out, "WEBHOOK_SIGNING_KEY=%s\n", cfg->signing_key[0] ? "(set)" : "");
        fprintf(out, "WEBHOOK_TIMEOUT_MS=%" PRIu64 "\n", cfg->timeout_ms);
        config_print_list(out, "ROLE_ADDRESSES", cfg->role_addresses);
        fprintf(out, "RETRY_INTERVAL_MS=%" PRIu64 "\n", cfg->retry_interval_ms);
        fprintf(out, "RETRY_MAX_INTERVAL_MS=%" PRIu64 "\n", cfg->retry_max_interval_ms);
        fprintf(out, "MAX_RETRY_AGE_MS=%" PRIu64 "\n", cfg->max_retry_age_ms);
        fprintf(out, "FLUSH_CONCURRENCY=%u\n", cfg->concurrency);
        fprintf(out, "WEBHOOK_CA_FILE=%s\n", cfg->webhook_ca_file);
        config_print_url(out, "WEBHOOK_DECISION_URL", cfg->decision_url);
        fprintf(out, "WEBHOOK_DECISION_TOKEN=%s\n", cfg->decision_token[0] ? "(set)" : "");
        fprintf(out, "WEBHOOK_DECISION_PAYLOAD_MODE=%s\n", modes[cfg->decision_mode]);
        fprintf(out, "ACCEPT_ALL_RECIPIENTS=%s\n", cfg->accept_all_recipients ? "true" : "false");
        config_print_list(out, "ACCEPTED_DOMAINS", cfg->accepted_domains);
        fprintf(out, "SMTP_TLS_CERT_PATH=%s\n", cfg->tls_cert_path);
        fprintf(out, "SMTP_TLS_KEY_PATH=%s\n", cfg->tls_key_path);
        fprintf(out, "SMTP_TLS_PRIORITY=%s\n", cfg->tls_priority);
        fprintf(out, "SMTP_HOSTNAME=%s\n", cfg->hostname);
        fprintf(out, "SMTP_MAX_MESSAGE_BYTES=%" PRIu64 "\n", cfg->max_message_bytes);
        fprintf(out, "SMTP_MAX_LINE_LENGTH=%u\n", cfg->max_line_length);
        fprintf(out, "SMTP_MAX_HEADER_LINES=%u\n", cfg->max_header_lines);
        fprintf(out, "SMTP_MAX_RECEIVED=%u\n", cfg->max_received);
        fprintf(out, "SMTP_MAX_RECIPIENTS=%u\n", cfg->max_recipients);
        fprintf(out, "SMTP_IDLE_TIMEOUT_MS=%" PRIu64 "\n", cfg->idle_timeout_ms);
        fprintf(out, "SMTP_COMMAND_DEADLINE_MS=%" PRIu64 "\n", cfg->command_deadline_ms);
        fprintf(out, "SMTP_DATA_MIN_RATE=%" PRIu64 "\n", cfg->data_min_rate);
        fprintf(out, "SMTP_SESSION_DEADLINE_MS=%" PRIu64 "\n", cfg->session_deadline_ms);
        fprintf(out, "SMTP_MAX_BAD_COMMANDS=%u\n", cfg->max_bad_commands);
        fprintf(out, "SMTP_MAX_CONNECTIONS_PER_SOURCE=%u\n", cfg->max_per_source);
        fprintf(out, "SMTP_MAX_SESSIONS=%u\n", cfg->max_sessions);
        config_print_list(out, "SMTP_PROXY_TRUSTED", cfg->proxy_trusted);
        fprintf(out, "SPOOL_DIR=%s\n", cfg->spool_dir);
        fprintf(out, "SPOOL_MIN_FREE_BYTES=%" PRIu64 "\n", cfg->spool_min_free_bytes);
}
