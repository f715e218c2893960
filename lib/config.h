/* Configuration from the environment (haraka-webhook's variable names). */
#ifndef HW_CONFIG_H
#define HW_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "hw_limits.h"

/* A set of HTTP status codes, 100..599 (WEBHOOK_DEAD_STATUSES and
 * WEBHOOK_DELIVERED_STATUSES; their syntax is in lib/config.c). */
#define CONFIG_STATUS_LOW 100
#define CONFIG_STATUS_HIGH 599
struct config_statuses {
        uint64_t bits[(CONFIG_STATUS_HIGH + 64) / 64];
};

enum decision_mode {
        DECISION_MODE_MINIMAL,
        DECISION_MODE_SUMMARY,
        DECISION_MODE_FULL,
};

/* The body a webhook is sent (flush/format.h); in the order of
 * config_webhook_formats in lib/config.c. */
enum webhook_format {
        WEBHOOK_FORMAT_MAILGUN,
        WEBHOOK_FORMAT_MAILGUN_MULTIPART,
        WEBHOOK_FORMAT_RELAY,
        WEBHOOK_FORMAT_SENDGRID,
        WEBHOOK_FORMAT_POSTMARK,
};

struct hw_config {
        /* webhook delivery (hw-flush) */
        char webhook_url[HW_URL_MAX];
        char webhook_role_url[HW_URL_MAX];
        char signing_key[HW_SECRET_MAX];
        uint64_t timeout_ms;
        char **role_addresses;            /* NULL-terminated, lower case */
        uint64_t retry_interval_ms;
        uint64_t retry_max_interval_ms;
        uint64_t max_retry_age_ms;        /* 0 = forever */
        unsigned concurrency;             /* FLUSH_CONCURRENCY */
        char webhook_ca_file[HW_PATH_SETTING_MAX];       /* WEBHOOK_CA_FILE: CA bundle for https webhooks; empty = system's */
        char standard_secret[HW_SECRET_MAX];    /* WEBHOOK_STANDARD_SECRET, "whsec_" + base64 */
        unsigned char standard_key[HW_STANDARD_KEY_MAX]; /* its key, decoded */
        size_t standard_key_len;          /* 0: no Standard Webhooks signature */
        char dead_statuses_text[HW_STATUSES_TEXT_MAX];      /* WEBHOOK_DEAD_STATUSES */
        struct config_statuses dead_statuses;
        char delivered_statuses_text[HW_STATUSES_TEXT_MAX]; /* WEBHOOK_DELIVERED_STATUSES */
        struct config_statuses delivered_statuses;
        enum webhook_format webhook_format;               /* WEBHOOK_FORMAT */
        enum webhook_format webhook_role_format;          /* WEBHOOK_ROLE_FORMAT */

        /* decision API (hw-receive) */
        char decision_url[HW_URL_MAX];
        char decision_token[HW_SECRET_MAX];
        enum decision_mode decision_mode;
        char **decision_stages;           /* WEBHOOK_DECISION_STAGES as written */
        bool decision_at_rcpt;            /* ... holds rcpt: each recipient is asked about */
        bool decision_at_data;            /* ... holds data: each message is asked about */
        uint64_t decision_rcpt_budget_ms; /* RCPT decisions of one transaction, all together */

        /* recipient policy */
        bool accept_all_recipients;
        char **accepted_domains;          /* NULL-terminated, lower case */

        /* TLS */
        char tls_cert_path[HW_PATH_SETTING_MAX];
        char tls_key_path[HW_PATH_SETTING_MAX];
        char tls_priority[HW_TLS_PRIORITY_MAX]; /* SMTP_TLS_PRIORITY; empty = the built-in order */

        /* SMTP limits */
        char hostname[HW_HOSTNAME_MAX + 1];
        uint64_t max_message_bytes;
        unsigned max_line_length;
        unsigned max_header_lines;
        unsigned max_received;
        unsigned max_recipients;
        uint64_t idle_timeout_ms;
        uint64_t command_deadline_ms;     /* one command line, however slowly it drips */
        uint64_t data_min_rate;           /* bytes/s of DATA after the first idle timeout */
        uint64_t session_deadline_ms;     /* the whole session */
        unsigned max_bad_commands;
        unsigned max_per_source;          /* sessions at once from one source; 0 = no limit */
        unsigned max_sessions;            /* sessions at once under --listen */
        char **proxy_trusted;             /* PROXY protocol peers, NULL-terminated */

        /* spool */
        char spool_dir[HW_PATH_SETTING_MAX];
        uint64_t spool_min_free_bytes;

        /* sender authentication (hw-auth.so) */
        bool auth_checks;                 /* AUTH_CHECKS */
        char auth_serv_id[HW_HOSTNAME_MAX + 1];  /* AUTH_SERV_ID; SMTP_HOSTNAME when unset */
        bool auth_dmarc_enforce;          /* AUTH_DMARC_ENFORCE */
        uint64_t auth_dns_timeout_ms;     /* AUTH_DNS_TIMEOUT_MS: all DNS of one message */
};

/* The settings table (lib/config.c): one row per variable. */
enum config_type {
        CONFIG_STRING,  /* text shorter than the field */
        CONFIG_URL,     /* http:// or https://; printed without user information */
        CONFIG_NUMBER,  /* a whole number within min..max (uint64_t or unsigned field) */
        CONFIG_BOOL,
        CONFIG_LIST,    /* comma list, lower case, NULL-terminated char ** */
        CONFIG_CHOICE,  /* one of choices, stored as its index (unsigned-sized enum) */
};

struct config_setting {
        const char *name;               /* the environment variable */
        enum config_type type;
        const char *fallback;           /* the default, written as a value would be */
        size_t offset, size;            /* the field of struct hw_config */
        uint64_t min, max;              /* CONFIG_NUMBER bounds */
        bool secret;                    /* printed as "(set)", wiped by config_free() */
        const char *credential;         /* systemd credential that wins over the variable */
        const char *const *choices;     /* CONFIG_CHOICE: NULL-terminated */
        /* Further checks once the field holds its value (may complete it). */
        int (*check)(struct hw_config *cfg, char *err, size_t errlen);
        const char *doc_default;        /* how the docs state a default that is no literal */
        const char *help;               /* one line, the README table's wording */
};

extern const struct config_setting config_settings[];
extern const size_t config_settings_count;

/* Fills cfg from the environment (and $CREDENTIALS_DIRECTORY). On a bad
 * value returns -EINVAL and writes a message naming the variable to err. */
int config_load(struct hw_config *cfg, char *err, size_t errlen);

/* What hw-flush needs beyond config_load: a usable WEBHOOK_URL. */
int config_check_flush(const struct hw_config *cfg, char *err, size_t errlen);

void config_free(struct hw_config *cfg);

/* True when addr's local part (before the last '@') is a role address. */
bool config_is_role_address(const struct hw_config *cfg, const char *addr);

/* True when RCPT TO:<addr> passes the recipient policy. */
bool config_accepts_recipient(const struct hw_config *cfg, const char *addr);

/* True when status is in the set. */
bool config_status_in(const struct config_statuses *set, long status);

/* Prints the settings, secrets masked, for --check-config. */
void config_print(const struct hw_config *cfg, FILE *out);

/* True when running as root without HW_ALLOW_ROOT=1 (which tests set):
 * both programs then refuse, since spool files would be root's. */
bool config_refuses_root(void);

#endif
