/* Configuration from the environment, with haraka-webhook's names so that
 * its .env file works unchanged as the units' EnvironmentFile=. A bad value
 * is an error naming the variable: nothing falls back to a default. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base64.h"

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

static bool config_url_ok(const char *url)
{
        return (strncasecmp(url, "http://", 7) == 0 && url[7]) ||
               (strncasecmp(url, "https://", 8) == 0 && url[8]);
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

/* A systemd credential wins over the variable (LoadCredential=): 1 when
 * dst holds it, 0 when there is none. */
static int config_credential(const char *cred, char *dst, size_t size, char *err, size_t errlen)
{
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        char path[PATH_MAX];
        ssize_t n;
        int fd;

        if (!dir || !*dir)
                return 0;
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, cred) >= sizeof(path))
                return config_fail(err, errlen, "CREDENTIALS_DIRECTORY: path too long");
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
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
        return 1;
}

static int config_hostname(struct hw_config *cfg, char *err, size_t errlen)
{
        if (!cfg->hostname[0] && gethostname(cfg->hostname, sizeof(cfg->hostname) - 1) < 0)
                return config_fail(err, errlen, "SMTP_HOSTNAME: not set and gethostname failed: %s",
                                   strerror(errno));
        for (const char *p = cfg->hostname; *p; p++)
                if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
                        return config_fail(err, errlen, "SMTP_HOSTNAME: '%s' is not a host name",
                                           cfg->hostname);
        return 0;
}

/* Stored in inet_ntop's form, the form the peer's address is compared in. */
static int config_proxy_trusted(struct hw_config *cfg, char *err, size_t errlen)
{
        for (char **p = cfg->proxy_trusted; *p; p++) {
                unsigned char addr[16];
                char canonical[INET6_ADDRSTRLEN];
                int family = strchr(*p, ':') ? AF_INET6 : AF_INET;

                if (inet_pton(family, *p, addr) != 1 ||
                    !inet_ntop(family, addr, canonical, sizeof(canonical)))
                        return config_fail(err, errlen, "SMTP_PROXY_TRUSTED: '%s' is not an IP address", *p);
                free(*p);
                *p = strdup(canonical);
                if (!*p)
                        return config_fail(err, errlen, "SMTP_PROXY_TRUSTED: out of memory");
        }
        return 0;
}

/* WEBHOOK_DECISION_STAGES: the words of the list become the two flags the
 * session reads. */
static int config_decision_stages(struct hw_config *cfg, char *err, size_t errlen)
{
        cfg->decision_at_rcpt = cfg->decision_at_data = false;
        for (char **p = cfg->decision_stages; *p; p++) {
                if (strcmp(*p, "rcpt") == 0)
                        cfg->decision_at_rcpt = true;
                else if (strcmp(*p, "data") == 0)
                        cfg->decision_at_data = true;
                else
                        return config_fail(err, errlen, "WEBHOOK_DECISION_STAGES: '%s' is not a stage "
                                           "(data, rcpt or rcpt,data)", *p);
        }
        if (!cfg->decision_at_rcpt && !cfg->decision_at_data)
                return config_fail(err, errlen, "WEBHOOK_DECISION_STAGES: names no stage (data, rcpt or rcpt,data)");
        return 0;
}

/* The authserv-id names this host in Authentication-Results: headers;
 * the host's name unless told otherwise. Host-name characters only, so it
 * is an RFC 8601 value as it stands. */
static int config_auth_serv_id(struct hw_config *cfg, char *err, size_t errlen)
{
        if (!cfg->auth_serv_id[0])
                snprintf(cfg->auth_serv_id, sizeof(cfg->auth_serv_id), "%s", cfg->hostname);
        for (const char *p = cfg->auth_serv_id; *p; p++)
                if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
                        return config_fail(err, errlen, "AUTH_SERV_ID: '%s' is not a host name",
                                           cfg->auth_serv_id);
        return 0;
}

static int config_spool_dir(struct hw_config *cfg, char *err, size_t errlen)
{
        if (cfg->spool_dir[0] != '/')
                return config_fail(err, errlen, "SPOOL_DIR: '%s' is not an absolute path", cfg->spool_dir);
        return 0;
}

/* WEBHOOK_STANDARD_SECRET: "whsec_" and the key in base64, as Standard
 * Webhooks consumers are given it; decoded once, here. */
#define CONFIG_WHSEC_PREFIX "whsec_"

static int config_standard_secret(struct hw_config *cfg, char *err, size_t errlen)
{
        const char *text = cfg->standard_secret;
        const size_t prefix = sizeof(CONFIG_WHSEC_PREFIX) - 1;
        ssize_t n;

        cfg->standard_key_len = 0;
        if (!text[0])
                return 0;
        if (strncmp(text, CONFIG_WHSEC_PREFIX, prefix) != 0)
                return config_fail(err, errlen, "WEBHOOK_STANDARD_SECRET: does not start with '"
                                   CONFIG_WHSEC_PREFIX "' (a Standard Webhooks secret is "
                                   CONFIG_WHSEC_PREFIX " and the key in base64)");
        n = base64_decode(text + prefix, strlen(text + prefix), cfg->standard_key, sizeof(cfg->standard_key));
        if (n == -ENOBUFS || (n >= 0 && n < HW_STANDARD_KEY_MIN))
                return config_fail(err, errlen, "WEBHOOK_STANDARD_SECRET: the key must be %d to %d bytes "
                                   "(%d to %d base64 characters after '" CONFIG_WHSEC_PREFIX "')",
                                   HW_STANDARD_KEY_MIN, HW_STANDARD_KEY_MAX,
                                   (int)BASE64_ENCODED_LEN(HW_STANDARD_KEY_MIN),
                                   (int)BASE64_ENCODED_LEN(HW_STANDARD_KEY_MAX));
        if (n < 0)
                return config_fail(err, errlen, "WEBHOOK_STANDARD_SECRET: what follows '"
                                   CONFIG_WHSEC_PREFIX "' is not base64 (A-Z a-z 0-9 + /, "
                                   "padded with = to a multiple of 4 characters)");
        cfg->standard_key_len = (size_t)n;
        return 0;
}

/*
 * A status set is a comma list of items, spaces allowed around them:
 *   a code       409      (100..599)
 *   a class      4xx      (1xx..5xx, any case of x: every code of it)
 *   none                  (alone: the empty set)
 */
static void config_statuses_add(struct config_statuses *set, unsigned low, unsigned high)
{
        for (unsigned c = low; c <= high; c++)
                set->bits[c / 64] |= UINT64_C(1) << (c % 64);
}

bool config_status_in(const struct config_statuses *set, long status)
{
        if (status < CONFIG_STATUS_LOW || status > CONFIG_STATUS_HIGH)
                return false;
        return set->bits[status / 64] >> (status % 64) & 1;
}

/* Parses text into set, with bit d of classes set for each class dxx
 * written; what is wrong goes to err, naming the setting. */
static int config_statuses_parse(const char *name, const char *text, struct config_statuses *set,
                                 unsigned *classes, char *err, size_t errlen)
{
        const char *p = text;

        memset(set, 0, sizeof(*set));
        *classes = 0;
        if (strcasecmp(text, "none") == 0)
                return 0;
        for (;;) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                char item[8];

                while (len && isspace((unsigned char)*p))
                        p++, len--;
                while (len && isspace((unsigned char)p[len - 1]))
                        len--;
                if (len == 0)
                        return config_fail(err, errlen, "%s: an empty item in '%s' (write codes such as "
                                           "409 and classes such as 4xx, separated by commas)", name, text);
                if (len != 3 || p[0] < '1' || p[0] > '5')
                        return config_fail(err, errlen, "%s: '%.*s' is not a status code (100..599) or a "
                                           "class (1xx..5xx)", name, (int)len, p);
                memcpy(item, p, 3);
                item[3] = '\0';
                if (tolower((unsigned char)item[1]) == 'x' && tolower((unsigned char)item[2]) == 'x') {
                        unsigned low = (unsigned)(item[0] - '0') * 100;

                        config_statuses_add(set, low, low + 99);
                        *classes |= 1u << (item[0] - '0');
                } else if (isdigit((unsigned char)item[1]) && isdigit((unsigned char)item[2])) {
                        unsigned code = (unsigned)atoi(item);

                        config_statuses_add(set, code, code);
                } else {
                        return config_fail(err, errlen, "%s: '%s' is not a status code (100..599) or a "
                                           "class (1xx..5xx)", name, item);
                }
                if (!end)
                        return 0;
                p = end + 1;
        }
}

/* The first code of set within low..high, or 0. */
static unsigned config_statuses_first(const struct config_statuses *set, unsigned low, unsigned high)
{
        for (unsigned c = low; c <= high; c++)
                if (config_status_in(set, c))
                        return c;
        return 0;
}

/* What a dead letter can follow: an answer that is not a delivery. */
static int config_dead_statuses(struct hw_config *cfg, char *err, size_t errlen)
{
        unsigned bad, classes;
        int r = config_statuses_parse("WEBHOOK_DEAD_STATUSES", cfg->dead_statuses_text,
                                      &cfg->dead_statuses, &classes, err, errlen);

        if (r < 0)
                return r;
        if ((bad = config_statuses_first(&cfg->dead_statuses, 100, 299)))
                return config_fail(err, errlen, "WEBHOOK_DEAD_STATUSES: %u is not a refusal (only 3xx, "
                                   "4xx and 5xx answers can make a dead letter)", bad);
        return 0;
}

/* Every 2xx is a delivery; beyond them, only single 4xx codes (a 409 for
 * a delivery id already taken): a class, or a 3xx or 5xx, would count a
 * wrong URL or a broken consumer as a delivery and lose the message. */
static int config_delivered_statuses(struct hw_config *cfg, char *err, size_t errlen)
{
        const struct config_statuses *set = &cfg->delivered_statuses;
        unsigned bad, classes;
        int r = config_statuses_parse("WEBHOOK_DELIVERED_STATUSES", cfg->delivered_statuses_text,
                                      &cfg->delivered_statuses, &classes, err, errlen);

        if (r < 0)
                return r;
        for (unsigned c = 200; c <= 299; c++)
                if (!config_status_in(set, c))
                        return config_fail(err, errlen, "WEBHOOK_DELIVERED_STATUSES: leaves out %u; every "
                                           "2xx is a delivery (write 2xx and add codes: 2xx,409)", c);
        if ((bad = config_statuses_first(set, 100, 199)) || (bad = config_statuses_first(set, 300, 399)) ||
            (bad = config_statuses_first(set, 500, 599)))
                return config_fail(err, errlen, "WEBHOOK_DELIVERED_STATUSES: %u cannot mean delivered "
                                   "(only 2xx and single 4xx codes such as 409 can)", bad);
        if (classes & 1u << 4)
                return config_fail(err, errlen, "WEBHOOK_DELIVERED_STATUSES: 4xx would count a wrong URL "
                                   "(404) as a delivery; name the codes (such as 409)");
        for (unsigned c = 400; c <= 499; c++)
                if (config_status_in(set, c) && config_status_in(&cfg->dead_statuses, c))
                        return config_fail(err, errlen, "WEBHOOK_DELIVERED_STATUSES and "
                                           "WEBHOOK_DEAD_STATUSES both hold %u", c);
        return 0;
}

#define CONFIG_STR_(x) #x
#define CONFIG_STR(x) CONFIG_STR_(x)
#define CONFIG_FIELD(f) \
        .offset = offsetof(struct hw_config, f), .size = sizeof(((struct hw_config *)0)->f)
#define CONFIG_DAY_MS UINT64_C(86400000)
#define CONFIG_YEAR_MS (365 * CONFIG_DAY_MS)

/* In the order of enum decision_mode. */
static const char *const config_decision_modes[] = { "minimal", "summary", "full", NULL };
_Static_assert(sizeof(enum decision_mode) == sizeof(unsigned), "a choice is stored as unsigned");

/* In the order of enum webhook_format. */
static const char *const config_webhook_formats[] = {
        "mailgun", "mailgun-multipart", "relay", "sendgrid", "postmark", NULL
};
_Static_assert(sizeof(enum webhook_format) == sizeof(unsigned), "a choice is stored as unsigned");

/* Unset, the role webhook gets WEBHOOK_FORMAT's format. */
static int config_role_format(struct hw_config *cfg, char *err, size_t errlen)
{
        if (!config_env("WEBHOOK_ROLE_FORMAT"))
                cfg->webhook_role_format = cfg->webhook_format;
        return 0;
}

/* Every setting, in the order it is loaded, checked and printed. The
 * README's settings tables, man/hw-webhook.env.5 and
 * units/hw-webhook.env.example are checked against this table by
 * tests/config/docs.test, so a new setting is one row here (and its use).
 * A default is written as a user would write it and passes the same
 * checks as a value from the environment. */
const struct config_setting config_settings[] = {
        { "WEBHOOK_URL", CONFIG_URL, "", CONFIG_FIELD(webhook_url),
          .doc_default = "needed to deliver (until it is set, mail is kept and hw-flush says so once)",
          .help = "where mail is POSTed; `http://` or `https://`; `user:password@` becomes HTTP Basic authentication" },
        { "WEBHOOK_ROLE_URL", CONFIG_URL, "", CONFIG_FIELD(webhook_role_url),
          .help = "second webhook for mail to role addresses" },
        { "WEBHOOK_SIGNING_KEY", CONFIG_STRING, "", CONFIG_FIELD(signing_key),
          .secret = true, .credential = "webhook-signing-key",
          .help = "HMAC-SHA256 key for the `signature` field; none, no signature" },
        { "WEBHOOK_TIMEOUT_MS", CONFIG_NUMBER, CONFIG_STR(HW_TIMEOUT_MS_DEFAULT), CONFIG_FIELD(timeout_ms),
          .min = 1, .max = CONFIG_DAY_MS,
          .help = "per webhook POST and per decision request" },
        { "ROLE_ADDRESSES", CONFIG_LIST, config_default_roles, CONFIG_FIELD(role_addresses),
          .doc_default = "the 28 below",
          .help = "comma list of local parts; replaces the default list" },
        { "RETRY_INTERVAL_MS", CONFIG_NUMBER, CONFIG_STR(HW_RETRY_INTERVAL_MS_DEFAULT),
          CONFIG_FIELD(retry_interval_ms), .min = 1, .max = CONFIG_YEAR_MS,
          .help = "first retry delay; doubles with each attempt" },
        { "RETRY_MAX_INTERVAL_MS", CONFIG_NUMBER, CONFIG_STR(HW_RETRY_MAX_INTERVAL_MS_DEFAULT),
          CONFIG_FIELD(retry_max_interval_ms), .min = 1, .max = CONFIG_YEAR_MS,
          .help = "cap of the retry delay" },
        { "MAX_RETRY_AGE_MS", CONFIG_NUMBER, CONFIG_STR(HW_MAX_RETRY_AGE_MS_DEFAULT),
          CONFIG_FIELD(max_retry_age_ms), .min = 0, .max = 100 * CONFIG_YEAR_MS,
          .help = "dead-letter mail still not delivered this long after its first attempt (5 days); 0 = retry forever (`WEBHOOK_DEAD_STATUSES` still dead-letter)" },
        { "FLUSH_CONCURRENCY", CONFIG_NUMBER, CONFIG_STR(HW_CONCURRENCY_DEFAULT), CONFIG_FIELD(concurrency),
          .min = 1, .max = HW_CONCURRENCY_LIMIT,
          .help = "parallel webhook POSTs (1..256)" },
        { "WEBHOOK_CA_FILE", CONFIG_STRING, "", CONFIG_FIELD(webhook_ca_file),
          .help = "CA bundle for `https://` webhooks; empty = the system's" },
        { "WEBHOOK_STANDARD_SECRET", CONFIG_STRING, "", CONFIG_FIELD(standard_secret),
          .secret = true, .credential = "webhook-standard-secret", .check = config_standard_secret,
          .help = "Standard Webhooks secret (`whsec_` and a base64 key of 24 to 64 bytes): each POST gets `webhook-id`, `webhook-timestamp` and `webhook-signature`; none, no such headers" },
        { "WEBHOOK_DEAD_STATUSES", CONFIG_STRING, "406", CONFIG_FIELD(dead_statuses_text),
          .check = config_dead_statuses,
          .help = "answers that make a dead letter at once: comma list of codes (`410`) and classes (`4xx`), or `none`; 3xx to 5xx only" },
        { "WEBHOOK_DELIVERED_STATUSES", CONFIG_STRING, "2xx", CONFIG_FIELD(delivered_statuses_text),
          .check = config_delivered_statuses,
          .help = "answers that mean delivered: every 2xx, plus single 4xx codes (`2xx,409` for a consumer that answers 409 to a delivery id it already has)" },
        { "WEBHOOK_FORMAT", CONFIG_CHOICE, "mailgun", CONFIG_FIELD(webhook_format),
          .choices = config_webhook_formats,
          .help = "the body POSTed: `mailgun`, `mailgun-multipart`, `relay`, `sendgrid` or `postmark`; see [Payload formats](#payload-formats)" },
        { "WEBHOOK_ROLE_FORMAT", CONFIG_CHOICE, "mailgun", CONFIG_FIELD(webhook_role_format),
          .choices = config_webhook_formats, .check = config_role_format,
          .doc_default = "`WEBHOOK_FORMAT`",
          .help = "the format of the role webhook (`WEBHOOK_ROLE_URL`)" },
        { "WEBHOOK_DECISION_URL", CONFIG_URL, "", CONFIG_FIELD(decision_url),
          .help = "pre-accept decision API (`haraka-webhook.decision.v1`)" },
        { "WEBHOOK_DECISION_TOKEN", CONFIG_STRING, "", CONFIG_FIELD(decision_token),
          .secret = true, .credential = "webhook-decision-token",
          .help = "sent as `Authorization: Bearer <token>`" },
        { "WEBHOOK_DECISION_PAYLOAD_MODE", CONFIG_CHOICE, "minimal", CONFIG_FIELD(decision_mode),
          .choices = config_decision_modes,
          .help = "`minimal`, `summary` or `full`" },
        { "WEBHOOK_DECISION_STAGES", CONFIG_LIST, "data", CONFIG_FIELD(decision_stages),
          .check = config_decision_stages,
          .help = "when the decision API is asked: `data` (each message after the final dot), `rcpt` (each recipient at `RCPT`) or `rcpt,data`" },
        { "WEBHOOK_DECISION_RCPT_BUDGET_MS", CONFIG_NUMBER, CONFIG_STR(HW_DECISION_RCPT_BUDGET_MS_DEFAULT),
          CONFIG_FIELD(decision_rcpt_budget_ms), .min = 1, .max = CONFIG_DAY_MS,
          .help = "time all `RCPT` decisions of one transaction may take together; once spent, further recipients get 451 4.7.1 without asking" },
        { "ACCEPT_ALL_RECIPIENTS", CONFIG_BOOL, "true", CONFIG_FIELD(accept_all_recipients),
          .help = "1/true/yes/on or 0/false/no/off, any case" },
        { "ACCEPTED_DOMAINS", CONFIG_LIST, "", CONFIG_FIELD(accepted_domains),
          .help = "comma list, any case; used when the above is false (then required)" },
        { "SMTP_TLS_CERT_PATH", CONFIG_STRING, "", CONFIG_FIELD(tls_cert_path),
          .help = "the certificate (a full-chain file is fine); set with the key, it enables STARTTLS" },
        { "SMTP_TLS_KEY_PATH", CONFIG_STRING, "", CONFIG_FIELD(tls_key_path),
          .help = "the certificate's key; both or neither" },
        { "SMTP_TLS_PRIORITY", CONFIG_STRING, "", CONFIG_FIELD(tls_priority),
          .help = "GnuTLS priority string for STARTTLS; empty = forward-secret AEAD suites first, in the server's order, older ones as a last resort" },
        { "SMTP_HOSTNAME", CONFIG_STRING, "", CONFIG_FIELD(hostname), .check = config_hostname,
          .doc_default = "the host name",
          .help = "name in the greeting, EHLO reply and `Received:` header" },
        { "SMTP_MAX_MESSAGE_BYTES", CONFIG_NUMBER, CONFIG_STR(HW_MESSAGE_MAX_DEFAULT),
          CONFIG_FIELD(max_message_bytes), .min = 1024, .max = UINT64_C(1) << 40,
          .help = "advertised in `SIZE`; larger messages get 552 5.3.4" },
        { "SMTP_MAX_LINE_LENGTH", CONFIG_NUMBER, CONFIG_STR(HW_CMD_MAX_DEFAULT), CONFIG_FIELD(max_line_length),
          .min = 512, .max = HW_CMD_MAX_LIMIT,
          .help = "command line limit in bytes with CRLF (512..65536)" },
        { "SMTP_MAX_HEADER_LINES", CONFIG_NUMBER, CONFIG_STR(HW_HEADER_LINES_DEFAULT),
          CONFIG_FIELD(max_header_lines), .min = 1, .max = 1000000,
          .help = "header lines per message (552 5.3.4 beyond)" },
        { "SMTP_MAX_RECEIVED", CONFIG_NUMBER, CONFIG_STR(HW_RECEIVED_MAX_DEFAULT), CONFIG_FIELD(max_received),
          .min = 1, .max = 100000,
          .help = "`Received:` headers per message (554 5.4.6, a mail loop, beyond)" },
        { "SMTP_MAX_RECIPIENTS", CONFIG_NUMBER, CONFIG_STR(HW_RCPT_MAX_DEFAULT), CONFIG_FIELD(max_recipients),
          .min = 1, .max = HW_RCPT_LIMIT,
          .help = "recipients per message (452 4.5.3 beyond; 1..1000)" },
        { "SMTP_IDLE_TIMEOUT_MS", CONFIG_NUMBER, CONFIG_STR(HW_IDLE_TIMEOUT_MS_DEFAULT),
          CONFIG_FIELD(idle_timeout_ms), .min = 100, .max = CONFIG_DAY_MS,
          .help = "no byte from the client this long: 421 4.4.2 and close" },
        { "SMTP_COMMAND_DEADLINE_MS", CONFIG_NUMBER, CONFIG_STR(HW_COMMAND_DEADLINE_MS_DEFAULT),
          CONFIG_FIELD(command_deadline_ms), .min = 100, .max = CONFIG_DAY_MS,
          .help = "one command line, the wait for it included, however slowly it drips (421 4.4.2)" },
        { "SMTP_DATA_MIN_RATE", CONFIG_NUMBER, CONFIG_STR(HW_DATA_MIN_RATE_DEFAULT), CONFIG_FIELD(data_min_rate),
          .min = 0, .max = UINT64_C(1) << 40,
          .help = "bytes/s: DATA may take `SMTP_IDLE_TIMEOUT_MS` plus 1 s per this many bytes (421 4.4.2 beyond; 0 = no minimum)" },
        { "SMTP_SESSION_DEADLINE_MS", CONFIG_NUMBER, CONFIG_STR(HW_SESSION_DEADLINE_MS_DEFAULT),
          CONFIG_FIELD(session_deadline_ms), .min = 100, .max = 7 * CONFIG_DAY_MS,
          .help = "the whole connection (421 4.4.2 beyond)" },
        { "SMTP_MAX_BAD_COMMANDS", CONFIG_NUMBER, CONFIG_STR(HW_BAD_COMMANDS_DEFAULT),
          CONFIG_FIELD(max_bad_commands), .min = 1, .max = 100000,
          .help = "syntax errors (500, 501, 555) and unknown commands before 421 and close" },
        { "SMTP_MAX_CONNECTIONS_PER_SOURCE", CONFIG_NUMBER, CONFIG_STR(HW_PER_SOURCE_DEFAULT),
          CONFIG_FIELD(max_per_source), .min = 0, .max = HW_PER_SOURCE_LIMIT,
          .help = "sessions at once from one IPv4 address or IPv6 /64 (the next gets 421 4.7.0; 0 = no limit, at most 1024); see [Connections per source](#connections-per-source)" },
        { "SMTP_MAX_SESSIONS", CONFIG_NUMBER, CONFIG_STR(HW_SESSIONS_DEFAULT),
          CONFIG_FIELD(max_sessions), .min = 1, .max = HW_SESSIONS_LIMIT,
          .help = "sessions at once under `hw-receive --listen` (the next gets 421 4.7.0; 1..65536); see [The listener shape](#the-listener-shape)" },
        { "SMTP_PROXY_TRUSTED", CONFIG_LIST, "", CONFIG_FIELD(proxy_trusted), .check = config_proxy_trusted,
          .help = "comma list of proxy addresses (HAProxy `send-proxy` or `send-proxy-v2`, an AWS NLB) whose PROXY v1 or v2 header gives the client's address; see [Behind HAProxy or a load balancer](#behind-haproxy-or-a-load-balancer)" },
        /* The configured localstatedir: /var/spool/hw-webhook for packages. */
        { "SPOOL_DIR", CONFIG_STRING, LOCALSTATEDIR "/spool/hw-webhook", CONFIG_FIELD(spool_dir),
          .check = config_spool_dir, .doc_default = "/var/spool/hw-webhook",
          .help = "the spool root (absolute); the default follows `--localstatedir`" },
        { "SPOOL_MIN_FREE_BYTES", CONFIG_NUMBER, CONFIG_STR(HW_SPOOL_MIN_FREE_DEFAULT),
          CONFIG_FIELD(spool_min_free_bytes), .min = 0, .max = UINT64_C(1) << 50,
          .help = "below this much free space (or 1000 free inodes) `MAIL` gets 452 4.3.1 so senders queue mail on their side" },
        /* After SMTP_HOSTNAME, which AUTH_SERV_ID defaults to. */
        { "AUTH_CHECKS", CONFIG_BOOL, "on", CONFIG_FIELD(auth_checks),
          .help = "verify SPF, DKIM and DMARC after the final dot and prepend an `Authentication-Results:` header; see [Sender authentication](#sender-authentication)" },
        { "AUTH_SERV_ID", CONFIG_STRING, "", CONFIG_FIELD(auth_serv_id), .check = config_auth_serv_id,
          .doc_default = "`SMTP_HOSTNAME`",
          .help = "the authserv-id of `Authentication-Results:` headers; the sender's headers with it are renamed" },
        { "AUTH_DMARC_ENFORCE", CONFIG_BOOL, "off", CONFIG_FIELD(auth_dmarc_enforce),
          .help = "a DMARC `fail` under `p=reject` gets 550 5.7.1 and nothing is stored (off: only reported)" },
        { "AUTH_DNS_TIMEOUT_MS", CONFIG_NUMBER, CONFIG_STR(HW_AUTH_DNS_TIMEOUT_MS_DEFAULT),
          CONFIG_FIELD(auth_dns_timeout_ms), .min = 100, .max = 600000,
          .help = "all DNS of one message's checks together; past it, `temperror` and the mail flows on" },
};
const size_t config_settings_count = sizeof(config_settings) / sizeof(config_settings[0]);

static void *config_field(struct hw_config *cfg, const struct config_setting *s)
{
        return (char *)cfg + s->offset;
}

static uint64_t config_number_get(const struct hw_config *cfg, const struct config_setting *s)
{
        const void *field = (const char *)cfg + s->offset;

        return s->size == sizeof(uint64_t) ? *(const uint64_t *)field : *(const unsigned *)field;
}

static int config_number(const struct config_setting *s, const char *v, void *field,
                         char *err, size_t errlen)
{
        char *end;
        unsigned long long n;

        if (!isdigit((unsigned char)v[0]))
                return config_fail(err, errlen, "%s: '%s' is not a whole number", s->name, v);
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno || *end)
                return config_fail(err, errlen, "%s: '%s' is not a whole number", s->name, v);
        if (n < s->min || n > s->max)
                return config_fail(err, errlen, "%s: %llu is outside %" PRIu64 "..%" PRIu64,
                                   s->name, n, s->min, s->max);
        if (s->size == sizeof(uint64_t))
                *(uint64_t *)field = n;
        else
                *(unsigned *)field = (unsigned)n;
        return 0;
}

static int config_bool(const struct config_setting *s, const char *v, bool *dst,
                       char *err, size_t errlen)
{
        static const char *const yes[] = { "1", "true", "yes", "on" };
        static const char *const no[] = { "0", "false", "no", "off" };

        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
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
                           s->name, v);
}

static int config_choice(const struct config_setting *s, const char *v, unsigned *dst,
                         char *err, size_t errlen)
{
        char words[256] = "";
        size_t n = 0;

        for (unsigned i = 0; s->choices[i]; i++)
                if (strcasecmp(v, s->choices[i]) == 0) {
                        *dst = i;
                        return 0;
                }
        /* "a, b or c" */
        while (s->choices[n])
                n++;
        for (size_t i = 0; i < n; i++) {
                size_t len = strlen(words);

                snprintf(words + len, sizeof(words) - len, "%s%s",
                         i == 0 ? "" : i + 1 == n ? " or " : ", ", s->choices[i]);
        }
        return config_fail(err, errlen, "%s: '%s' is not %s", s->name, v, words);
}

static int config_text(const struct config_setting *s, const char *v, char *dst,
                       char *err, size_t errlen)
{
        if (strlen(v) >= s->size)
                return config_fail(err, errlen, "%s: longer than %zu bytes", s->name, s->size - 1);
        strcpy(dst, v);
        if (s->type != CONFIG_URL)
                return 0;
        for (const char *p = dst; *p; p++)
                if ((unsigned char)*p <= ' ' || *p == 0x7f)
                        return config_fail(err, errlen, "%s: a URL may not contain spaces or control characters",
                                           s->name);
        if (*dst && !config_url_ok(dst))
                return config_fail(err, errlen, "%s: only http:// and https:// URLs are supported", s->name);
        return 0;
}

/* One setting: its credential, else its variable, else its default. */
static int config_setting_load(struct hw_config *cfg, const struct config_setting *s,
                               char *err, size_t errlen)
{
        void *field = config_field(cfg, s);
        const char *v;
        int r;

        if (s->credential) {
                r = config_credential(s->credential, field, s->size, err, errlen);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        v = config_env(s->name);
        if (!v)
                v = s->fallback;
        switch (s->type) {
        case CONFIG_STRING:
        case CONFIG_URL:
                r = config_text(s, v, field, err, errlen);
                break;
        case CONFIG_NUMBER:
                r = config_number(s, v, field, err, errlen);
                break;
        case CONFIG_BOOL:
                r = config_bool(s, v, field, err, errlen);
                break;
        case CONFIG_LIST:
                r = config_list_parse(v, field);
                if (r < 0)
                        r = config_fail(err, errlen, "%s: out of memory", s->name);
                break;
        case CONFIG_CHOICE:
                r = config_choice(s, v, field, err, errlen);
                break;
        default:
                r = config_fail(err, errlen, "%s: unknown type", s->name);
        }
        if (r >= 0 && s->check)
                r = s->check(cfg, err, errlen);
        return r;
}

int config_load(struct hw_config *cfg, char *err, size_t errlen)
{
        int r = 0;

        memset(cfg, 0, sizeof(*cfg));
        /* Stops at the first bad value. */
        for (size_t i = 0; i < config_settings_count && r >= 0; i++)
                r = config_setting_load(cfg, &config_settings[i], err, errlen);
        if (r < 0)
                goto fail;

        /* Rules between settings. */
        if (!cfg->accept_all_recipients && !cfg->accepted_domains[0]) {
                r = config_fail(err, errlen, "ACCEPTED_DOMAINS: empty while ACCEPT_ALL_RECIPIENTS is false (no mail could be accepted)");
                goto fail;
        }
        if (!cfg->tls_cert_path[0] != !cfg->tls_key_path[0]) {
                r = config_fail(err, errlen, "SMTP_TLS_CERT_PATH and SMTP_TLS_KEY_PATH: set both or neither");
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
        for (size_t i = 0; i < config_settings_count; i++) {
                const struct config_setting *s = &config_settings[i];
                void *field = config_field(cfg, s);

                if (s->type == CONFIG_LIST) {
                        config_list_free(*(char ***)field);
                        *(char ***)field = NULL;
                }
                if (s->secret)
                        explicit_bzero(field, s->size);
        }
        /* Decoded from a secret setting, so a secret too. */
        explicit_bzero(cfg->standard_key, sizeof(cfg->standard_key));
        cfg->standard_key_len = 0;
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

bool config_refuses_root(void)
{
        const char *allow = getenv("HW_ALLOW_ROOT");

        return geteuid() == 0 && !(allow && strcmp(allow, "1") == 0);
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
        for (size_t i = 0; i < config_settings_count; i++) {
                const struct config_setting *s = &config_settings[i];
                const void *field = (const char *)cfg + s->offset;

                switch (s->type) {
                case CONFIG_URL:
                        config_print_url(out, s->name, field);
                        break;
                case CONFIG_STRING:
                        if (s->secret)
                                fprintf(out, "%s=%s\n", s->name, *(const char *)field ? "(set)" : "");
                        else
                                fprintf(out, "%s=%s\n", s->name, (const char *)field);
                        break;
                case CONFIG_NUMBER:
                        fprintf(out, "%s=%" PRIu64 "\n", s->name, config_number_get(cfg, s));
                        break;
                case CONFIG_BOOL:
                        fprintf(out, "%s=%s\n", s->name, *(const bool *)field ? "true" : "false");
                        break;
                case CONFIG_LIST:
                        config_print_list(out, s->name, *(char *const *const *)field);
                        break;
                case CONFIG_CHOICE:
                        fprintf(out, "%s=%s\n", s->name, s->choices[*(const unsigned *)field]);
                        break;
                }
        }
}
