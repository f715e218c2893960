/* Limits and defaults, with their units and where they come from. */
#ifndef HW_LIMITS_H
#define HW_LIMITS_H

/* SMTP (defaults from Haraka's core configuration, each settable). */
#define HW_MESSAGE_MAX_DEFAULT 26214400   /* bytes; Haraka max.bytes, advertised in SIZE */
#define HW_CMD_MAX_DEFAULT 512            /* bytes with CRLF; RFC 5321 4.5.3.1.4, Haraka max.line_length */
#define HW_CMD_MAX_LIMIT 65536            /* bytes; the largest command line a setting may allow */
#define HW_HEADER_LINES_DEFAULT 1000      /* lines; Haraka headers.max_lines */
#define HW_RECEIVED_MAX_DEFAULT 100       /* Received: headers; Haraka headers.max_received (mail loop) */
#define HW_RCPT_MAX_DEFAULT 1000          /* recipients; Postfix smtpd_recipient_limit (RFC 5321 4.5.3.1.8 asks at least 100;
                                            * some senders give up a transaction after repeated 452s) */
#define HW_RCPT_LIMIT 1000                /* the most a setting may allow (bounds the envelope) */
#define HW_IDLE_TIMEOUT_MS_DEFAULT 300000 /* ms; Haraka inactivity_timeout */
/* Deadlines a client sending one byte at a time cannot extend (the idle
 * timeout restarts on every read). */
#define HW_COMMAND_DEADLINE_MS_DEFAULT 300000 /* ms for one command line, wait included; RFC 5321 4.5.3.2.7 */
#define HW_DATA_MIN_RATE_DEFAULT 500      /* bytes/s DATA must average after its first idle timeout; Postfix smtpd_min_data_rate */
#define HW_SESSION_DEADLINE_MS_DEFAULT 1800000 /* ms for a whole session */
#define HW_BAD_COMMANDS_DEFAULT 10        /* Haraka max_unrecognized_commands */
#define HW_PER_SOURCE_DEFAULT 16          /* sessions at once from one IPv4 address or IPv6 /64;
                                            * the socket's former MaxConnectionsPerSource= */
#define HW_PER_SOURCE_LIMIT 1024          /* the most a setting may allow (a refusal tries each slot) */
#define HW_SESSIONS_DEFAULT 256           /* sessions at once under hw-receive --listen; the default
                                           * socket's MaxConnections= */
#define HW_SESSIONS_LIMIT 65536           /* the most a setting may allow */
#define HW_SPOOL_MIN_FREE_DEFAULT 104857600 /* bytes free below which MAIL gets 452 4.3.1 */
#define HW_SPOOL_MIN_FREE_INODES 1000     /* free inodes below which MAIL gets 452 4.3.1 */
#define HW_TLS_PRIORITY_MAX 512           /* bytes of a GnuTLS priority string */

#define HW_ADDR_MAX 256                   /* bytes; RFC 5321 4.5.3.1.3 path length */
#define HW_HELO_MAX 255                   /* bytes kept of the HELO argument */
#define HW_HOSTNAME_MAX 255               /* bytes; RFC 1035 */
#define HW_IP_MAX 64                      /* textual IPv6 with scope, and then some */
#define HW_TLS_DESC_MAX 128               /* "TLS1.3 with cipher ..." */
#define HW_PROXY_V1_MAX 107               /* bytes with CR LF: the longest PROXY protocol v1 header */
#define HW_PROXY_V2_MAX 2048              /* bytes of a PROXY v2 header with its TLVs; the format
                                           * allows 65551, HAProxy and AWS NLB send a few hundred */
#define HW_PROXY_HEADER_MS 10000          /* ms a trusted proxy has for its header (sent as it
                                           * connects; the PROXY format asks for >= 3 s) */
#define HW_PATH_SETTING_MAX 1024          /* bytes of a path setting, NUL included */
#define HW_IO_BUFFER 65536                /* bytes of each buffered reader/writer */

/* Webhook and decision API. */
#define HW_AUTH_DNS_TIMEOUT_MS_DEFAULT 5000 /* ms of DNS per message for SPF, DKIM and DMARC together */
#define HW_TIMEOUT_MS_DEFAULT 10000       /* ms; haraka-webhook WEBHOOK_TIMEOUT_MS */
#define HW_RETRY_INTERVAL_MS_DEFAULT 30000
#define HW_RETRY_MAX_INTERVAL_MS_DEFAULT 3600000
#define HW_CONCURRENCY_DEFAULT 8          /* parallel webhook POSTs */
#define HW_CONCURRENCY_LIMIT 256
/* ms all RCPT decisions of one transaction may take together: three
 * default timeouts, and well inside the 5 minutes a client waits for a RCPT
 * reply (RFC 5321 4.5.3.2.3) even when it waits for a whole pipelined group. */
#define HW_DECISION_RCPT_BUDGET_MS_DEFAULT 30000
#define HW_URL_MAX 2048
#define HW_SECRET_MAX 1024
#define HW_STANDARD_KEY_MIN 24            /* bytes of a Standard Webhooks secret, */
#define HW_STANDARD_KEY_MAX 64            /* as that specification recommends */
#define HW_STATUSES_TEXT_MAX 256          /* a status set setting as written */
#define HW_MAX_RETRY_AGE_MS_DEFAULT 432000000 /* 5 days, as Postfix's maximal_queue_lifetime */

/* Spool. */
#define HW_QID_LEN 33                     /* 16 digits of microseconds, '-', 16 hex digits */
#define HW_TMP_STALE_SEC 21600            /* tmp/ items untouched this long belong to dead sessions */

#endif
