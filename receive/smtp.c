/* One SMTP session; see smtp.h. Every reply carries an enhanced status
 * code (RFC 2034). The only destination of mail is the spool. */
#include "smtp.h"

#include <errno.h>
#include <stddef.h>
#include <strings.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth_verdict.h"
#include "data.h"
#include "log.h"
#include "metrics.h"
#include "proxy_parse.h"

struct smtp_command {
        enum smtp_cmd cmd;
        const struct smtp_reply *(*check)(const struct smtp_session *s, const char *args,
                                          struct smtp_path *path);
        int (*proceed)(struct smtp_session *s, const char *args, const struct smtp_path *path);
        bool tls_verdict;          /* the reply depends on whether STARTTLS can work */
};

/* Every reply this server sends, once. A refusal with bad_command is a
 * syntax error or an unknown command and counts toward
 * SMTP_MAX_BAD_COMMANDS; the others do not: a pipelining client whose MAIL
 * was refused gets 503 for each RCPT it had already sent, through no
 * fault of its own, and refusals by policy or for resources are not the
 * client's errors either. */
static const struct smtp_reply
        reply_ok = { .text = "250 2.0.0 Ok" },
        reply_sender_ok = { .text = "250 2.1.0 Ok" },
        reply_recipient_ok = { .text = "250 2.1.5 Ok" },
        reply_vrfy = { .text = "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery" },
        reply_tls_go_ahead = { .text = "220 2.0.0 Ready to start TLS" },
        reply_data_go_ahead = { .text = "354 End data with <CR><LF>.<CR><LF>" },

        reply_unrecognized = { .text = "500 5.5.1 Command unrecognized", .bad_command = true },
        reply_line_too_long = { .text = "500 5.5.2 Line too long", .bad_command = true },
        reply_nul_in_command = { .text = "500 5.5.2 NUL byte in command", .bad_command = true },
        reply_no_args = { .text = "501 5.5.4 No arguments allowed", .bad_command = true },
        reply_helo_syntax = { .text = "501 5.5.4 Syntax: HELO/EHLO hostname", .bad_command = true },
        reply_sender_too_long = { .text = "501 5.1.7 Sender address too long", .bad_command = true },
        reply_sender_syntax = { .text = "501 5.1.7 Bad sender address syntax", .bad_command = true },
        reply_recipient_too_long = { .text = "501 5.1.3 Recipient address too long", .bad_command = true },
        reply_recipient_syntax = { .text = "501 5.1.3 Bad recipient address syntax", .bad_command = true },
        reply_mail_parameter = { .text = "555 5.5.4 Unsupported MAIL FROM parameter", .bad_command = true },
        reply_rcpt_parameter = { .text = "555 5.5.4 Unsupported RCPT TO parameter", .bad_command = true },
        reply_parameters_need_ehlo = { .text = "555 5.5.4 MAIL FROM parameters need EHLO", .bad_command = true },
        /* The chunk's end cannot be found: the session closes after it. */
        reply_bdat_syntax = { .text = "501 5.5.4 Syntax: BDAT <size> [LAST], closing connection",
                              .bad_command = true },

        reply_not_implemented = { .text = "502 5.5.1 Command not implemented" },
        reply_tls_unavailable = { .text = "502 5.5.1 STARTTLS not available" },
        reply_need_helo = { .text = "503 5.5.1 Send HELO or EHLO first" },
        reply_nested_mail = { .text = "503 5.5.1 Nested MAIL command" },
        reply_need_mail_before_rcpt = { .text = "503 5.5.1 Need MAIL before RCPT" },
        reply_need_mail = { .text = "503 5.5.1 Need MAIL command" },
        reply_need_rcpt = { .text = "503 5.5.1 Need RCPT command" },
        reply_tls_active = { .text = "503 5.5.1 TLS already active" },
        reply_tls_in_transaction = { .text = "503 5.5.1 STARTTLS not allowed during a mail transaction" },
        reply_data_after_bdat = { .text = "503 5.5.1 DATA not allowed after BDAT in the same transaction" },
        reply_binarymime_needs_bdat = { .text = "503 5.5.1 BODY=BINARYMIME needs BDAT, not DATA" },
        reply_rcpt_after_bdat = { .text = "503 5.5.1 RCPT not allowed after BDAT in the same transaction" },
        reply_non_ascii_address = { .text = "553 5.6.7 Non-ASCII address without SMTPUTF8" },
        reply_recipient_denied = { .text = "550 5.7.1 Relaying denied: recipient domain not accepted here" },
        reply_too_many_recipients = { .text = "452 4.5.3 Too many recipients" },
        reply_message_too_big = { .text = "552 5.3.4 Message size exceeds fixed maximum message size" },
        reply_too_many_header_lines = { .text = "552 5.3.4 Too many header lines" },
        reply_too_many_hops = { .text = "554 5.4.6 Too many hops (Received: headers), mail loop suspected" },

        reply_no_storage = { .text = "452 4.3.1 Insufficient system storage, try again later" },
        reply_no_memory = { .text = "451 4.3.0 Out of memory, try again later" },
        reply_local_error = { .text = "451 4.3.0 Local error in processing, try again later" },
        reply_policy_unavailable = { .text = "451 4.7.1 Policy service unavailable, try again later" };

/* Replies that carry a value are printf formats, so the compiler checks
 * their arguments; the line end is added where they are sent. */
#define REPLY_GREETING "220 %s ESMTP hw-webhook"                              /* host */
#define REPLY_HELO "250 %s"                                                   /* host */
#define REPLY_EHLO "250-%s\r\n250-PIPELINING\r\n250-SIZE %" PRIu64 "\r\n" \
        "250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250-BINARYMIME\r\n" \
        "%s250 ENHANCEDSTATUSCODES"                                         /* host, size, STARTTLS */
#define REPLY_EHLO_STARTTLS "250-STARTTLS\r\n"
#define REPLY_HELP "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP%s"
#define REPLY_HELP_STARTTLS " STARTTLS"
#define REPLY_QUEUED "250 2.0.0 Ok: queued as %s"                             /* queue id */
#define REPLY_CHUNK "250 2.0.0 %" PRIu64 " octets received"                  /* BDAT chunk size */
#define REPLY_CLOSING "221 2.0.0 %s closing connection"                       /* host */
#define REPLY_TOO_MANY_ERRORS "421 4.7.0 %s Too many errors, closing connection" /* host */
#define REPLY_IDLE_TIMEOUT "421 4.4.2 %s Timeout exceeded, closing connection"   /* host */
#define REPLY_DEADLINE "421 4.4.2 %s %s deadline exceeded, closing connection"   /* host, what */
#define REPLY_PROXY_REFUSED "421 4.7.0 %s PROXY header not accepted here, closing connection" /* host */
#define REPLY_DMARC_REJECT "550 5.7.1 The DMARC policy of %s rejects this message" /* From: domain */

/* The item's reserve (lib/spool.h) when sender authentication is on: the
 * auth envelope lines, our Received: header and the
 * Authentication-Results: header, with room for the padding line. */
#define SMTP_AUTH_RESERVE (AUTH_LINES_MAX + sizeof(((struct smtp_session *)0)->received) + AUTH_HEADER_MAX + 16)

const struct smtp_reply *smtp_spool_error_reply(int error)
{
        switch (error) {
        case -ENOSPC:
        case -EDQUOT:
                return &reply_no_storage;
        case -ENOMEM:
                return &reply_no_memory;
        default:
                return &reply_local_error;
        }
}

static int smtp_send(struct smtp_session *s, const struct smtp_reply *reply)
{
        return io_printf(&s->io, "%s\r\n", reply->text);
}

/* Reads from now on must end by deadline_ms, and the session's own
 * deadline is never passed. */
static void smtp_set_deadline(struct smtp_session *s, const char *what, int64_t deadline_ms)
{
        if (deadline_ms >= s->session_deadline_ms) {
                deadline_ms = s->session_deadline_ms;
                what = "session";
        }
        s->deadline_what = what;
        io_set_deadline(&s->io, deadline_ms);
}

static void smtp_bdat_abandon(struct smtp_session *s, const char *why);

static void smtp_transaction_reset(struct smtp_session *s)
{
        smtp_bdat_abandon(s, "transaction reset before BDAT LAST");
        envelope_reset(&s->env);
        s->smtputf8 = false;
        s->binarymime = false;
        s->declared_size = 0;
        s->rcpt_decision_ms = 0;
        s->rcpt_silent = 0;
        if (s->state > STATE_HELO && s->state != STATE_CLOSING)
                s->state = STATE_HELO;
}

/* Validators: pure, they only look at the session and the arguments. */

/* The refusals of a MAIL or RCPT path that does not parse, one for each
 * error of smtp_parse_path(). */
struct smtp_path_refusals {
        const struct smtp_reply *too_long;     /* -ENAMETOOLONG */
        const struct smtp_reply *parameter;    /* -EPROTO */
        const struct smtp_reply *syntax;       /* any other error */
};

static const struct smtp_path_refusals smtp_sender_refusals = {
        &reply_sender_too_long, &reply_mail_parameter, &reply_sender_syntax,
};
static const struct smtp_path_refusals smtp_recipient_refusals = {
        &reply_recipient_too_long, &reply_rcpt_parameter, &reply_recipient_syntax,
};

static const struct smtp_reply *smtp_check_path(const char *args, bool is_sender, struct smtp_path *path)
{
        const struct smtp_path_refusals *no = is_sender ? &smtp_sender_refusals : &smtp_recipient_refusals;
        int r = smtp_parse_path(args, is_sender, path);

        if (r == -ENAMETOOLONG)
                return no->too_long;
        if (r == -EPROTO)
                return no->parameter;
        return r < 0 ? no->syntax : NULL;
}

static const struct smtp_reply *smtp_check_helo(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        if (!*args)
                return &reply_helo_syntax;
        return NULL;
}

static const struct smtp_reply *smtp_check_mail(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        const struct smtp_reply *refusal;

        if (s->state == STATE_CONNECTED)
                return &reply_need_helo;
        if (s->state != STATE_HELO)
                return &reply_nested_mail;
        refusal = smtp_check_path(args, true, path);
        if (refusal)
                return refusal;
        if (!s->esmtp && (path->size || path->smtputf8 || path->body != BODY_7BIT))
                return &reply_parameters_need_ehlo;
        if (path->size > s->cfg->max_message_bytes)
                return &reply_message_too_big;
        if (!path->smtputf8 && !smtp_address_valid(path->addr, false) && path->addr[0])
                return &reply_non_ascii_address;
        return NULL;
}

static const struct smtp_reply *smtp_check_rcpt(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        const struct smtp_reply *refusal;

        if (s->state == STATE_CONNECTED)
                return &reply_need_helo;
        if (s->state != STATE_MAIL && s->state != STATE_RCPT)
                return &reply_need_mail_before_rcpt;
        if (s->bdat_open)
                return &reply_rcpt_after_bdat;
        refusal = smtp_check_path(args, false, path);
        if (refusal)
                return refusal;
        if (!s->smtputf8 && !smtp_address_valid(path->addr, false) &&
            strcasecmp(path->addr, "postmaster") != 0)
                return &reply_non_ascii_address;
        /* Silently dropped recipients count: each cost a decision request. */
        if (s->env.rcpt_count + s->rcpt_silent >= s->cfg->max_recipients)
                return &reply_too_many_recipients;
        if (!config_accepts_recipient(s->cfg, path->addr))
                return &reply_recipient_denied;
        return NULL;
}

/* DATA and BDAT need HELO, MAIL and at least one RCPT first. */
static const struct smtp_reply *smtp_check_message_order(const struct smtp_session *s)
{
        if (s->state == STATE_CONNECTED)
                return &reply_need_helo;
        if (s->state == STATE_HELO)
                return &reply_need_mail;
        if (s->state != STATE_RCPT)
                return &reply_need_rcpt;
        return NULL;
}

static const struct smtp_reply *smtp_check_data(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        const struct smtp_reply *order;

        if (*args)
                return &reply_no_args;
        order = smtp_check_message_order(s);
        if (order)
                return order;
        /* RFC 3030 2: DATA and BDAT do not mix in one transaction. */
        if (s->bdat_open)
                return &reply_data_after_bdat;
        if (s->binarymime)
                return &reply_binarymime_needs_bdat;
        return NULL;
}

static const struct smtp_reply *smtp_check_bdat(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        uint64_t size;
        bool last;

        if (smtp_parse_bdat(args, &size, &last) < 0)
                return &reply_bdat_syntax;
        return smtp_check_message_order(s);
}

static const struct smtp_reply *smtp_check_no_args(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        return *args ? &reply_no_args : NULL;
}

static const struct smtp_reply *smtp_check_any(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        return NULL;
}

static const struct smtp_reply *smtp_check_starttls(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        if (*args)
                return &reply_no_args;
        if (s->tls_active)
                return &reply_tls_active;
        if (!s->tls_usable)
                return &reply_tls_unavailable;
        if (s->state == STATE_CONNECTED)
                return &reply_need_helo;
        if (s->state != STATE_HELO)
                return &reply_tls_in_transaction;
        return NULL;
}

/* Actions. */

static int smtp_proceed_helo(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        smtp_printable(s->env.helo, sizeof(s->env.helo), args);
        s->esmtp = false;
        smtp_transaction_reset(s);
        s->state = STATE_HELO;
        return io_printf(&s->io, REPLY_HELO "\r\n", s->cfg->hostname);
}

/* Whether STARTTLS may be offered to this client now. */
static bool smtp_tls_offerable(const struct smtp_session *s)
{
        return s->tls_usable && !s->tls_active;
}

static int smtp_proceed_ehlo(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        bool tls = smtp_tls_offerable(s);

        smtp_printable(s->env.helo, sizeof(s->env.helo), args);
        s->esmtp = true;
        smtp_transaction_reset(s);
        s->state = STATE_HELO;
        return io_printf(&s->io, REPLY_EHLO "\r\n", s->cfg->hostname, s->cfg->max_message_bytes,
                         tls ? REPLY_EHLO_STARTTLS : "");
}

static int smtp_proceed_mail(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        uint64_t free_bytes, free_inodes;
        int r = spool_free_space(s->spool, &free_bytes, &free_inodes);

        /* Back-pressure: refuse what we could not keep; the sender queues it.
         * A disk out of inodes is as full as one out of blocks. */
        if (r < 0 || free_bytes < s->cfg->spool_min_free_bytes ||
            free_bytes - s->cfg->spool_min_free_bytes < path->size ||
            free_inodes < HW_SPOOL_MIN_FREE_INODES) {
                metrics_count_refusal(METRICS_CMD_MAIL, reply_no_storage.text);
                return smtp_send(s, &reply_no_storage);
        }
        strcpy(s->env.sender, path->addr);
        s->smtputf8 = path->smtputf8;
        s->binarymime = path->body == BODY_BINARYMIME;
        s->declared_size = path->size;
        s->state = STATE_MAIL;
        return smtp_send(s, &reply_sender_ok);
}

static void smtp_log_recipient(const struct smtp_session *s, const char *addr, const char *outcome,
                               const char *reply, const char *reason)
{
        struct log_fields f;

        log_fields_init(&f);
        log_field(&f, "HW_QUEUE_ID", "%s", s->env.id);
        log_field(&f, "HW_REMOTE_IP", "%s", s->env.remote_ip);
        log_field(&f, "HW_SENDER", "%s", s->env.sender);
        log_field(&f, "HW_RCPT", "%s", addr);
        log_field(&f, "HW_OUTCOME", "%s", outcome);
        log_field(&f, "HW_REPLY", "%s", reply);
        if (reason[0])
                log_field(&f, "HW_REASON", "%s", reason);
        log_fields_send(LOG_NOTICE, &f, "%s: %s <%s> from <%s> [%s]", s->env.id, outcome, addr,
                        s->env.sender, s->env.remote_ip);
}

/* The decision API at RCPT (WEBHOOK_DECISION_STAGES with rcpt): true when
 * addr goes into the envelope; otherwise the reply is sent here and *r is
 * its result. The RCPT decisions of one transaction share
 * WEBHOOK_DECISION_RCPT_BUDGET_MS: each request gets what is left of it (at
 * most WEBHOOK_TIMEOUT_MS, never past the session's deadline), and once it
 * is spent further recipients get 451 without a request, so a slow service
 * cannot hold a pipelined transaction for a timeout per recipient. A
 * silent_deny is a 250 for a recipient that is not kept: the sender learns
 * nothing, as silent_deny promises. */
static bool smtp_rcpt_allowed(struct smtp_session *s, const char *addr, int *r)
{
        char reply[512], reason[256] = "";
        const char *outcome = "rcpt-deferred-policy";
        enum decision_outcome decision = DECISION_TEMPFAIL;
        const int64_t start = io_now_ms();
        int64_t left = (int64_t)s->cfg->decision_rcpt_budget_ms - s->rcpt_decision_ms;

        if (left > (int64_t)s->cfg->timeout_ms)
                left = (int64_t)s->cfg->timeout_ms;
        if (left > s->session_deadline_ms - start)
                left = s->session_deadline_ms - start;
        /* The queue id is made by the first recipient asked about, so the
         * service sees one id at both stages. */
        if (!s->env.id[0] && spool_new_id(s->env.id) < 0) {
                snprintf(reason, sizeof(reason), "cannot make a queue id");
        } else if (left <= 0) {
                snprintf(reason, sizeof(reason), "the RCPT decisions of this transaction took their %" PRIu64
                         " ms (WEBHOOK_DECISION_RCPT_BUDGET_MS)", s->cfg->decision_rcpt_budget_ms);
        } else {
                decision = s->hooks->decide_rcpt(s->cfg, &s->env, addr, (uint64_t)left, reply, sizeof(reply),
                                                 reason, sizeof(reason));
                s->rcpt_decision_ms += io_now_ms() - start;
        }
        switch (decision) {
        case DECISION_ALLOW:
                return true;
        case DECISION_DENY:
                outcome = "rcpt-denied";
                break;
        case DECISION_DEFER:
                outcome = "rcpt-deferred";
                break;
        case DECISION_SILENT_DENY:
                s->rcpt_silent++;
                s->state = STATE_RCPT;
                snprintf(reply, sizeof(reply), "%s", reply_recipient_ok.text);
                outcome = "rcpt-silently-denied";
                break;
        case DECISION_TEMPFAIL:
                snprintf(reply, sizeof(reply), "%s", reply_policy_unavailable.text);
                break;
        }
        smtp_log_recipient(s, addr, outcome, reply, reason);
        if (decision != DECISION_SILENT_DENY)
                metrics_count_refusal(METRICS_CMD_RCPT, reply);
        *r = io_printf(&s->io, "%s\r\n", reply);
        return false;
}

static int smtp_proceed_rcpt(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        int r;

        if (s->hooks && s->hooks->decide_rcpt && !smtp_rcpt_allowed(s, path->addr, &r))
                return r;
        r = envelope_add_rcpt(&s->env, path->addr);
        if (r < 0)
                return smtp_send(s, &reply_too_many_recipients);
        s->state = STATE_RCPT;
        return smtp_send(s, &reply_recipient_ok);
}

static int smtp_proceed_rset(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        smtp_transaction_reset(s);
        return smtp_send(s, &reply_ok);
}

static int smtp_proceed_noop(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        return smtp_send(s, &reply_ok);
}

static int smtp_proceed_vrfy(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        return smtp_send(s, &reply_vrfy);
}

static int smtp_proceed_help(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        return io_printf(&s->io, REPLY_HELP "\r\n", smtp_tls_offerable(s) ? REPLY_HELP_STARTTLS : "");
}

/* Known commands this server does not do: 502 rather than 500, so a
 * client trying them is not counted as sending garbage. */
static int smtp_proceed_not_implemented(struct smtp_session *s, const char *args,
                                        const struct smtp_path *path)
{
        return smtp_send(s, &reply_not_implemented);
}

static int smtp_proceed_quit(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        s->state = STATE_CLOSING;
        return io_printf(&s->io, REPLY_CLOSING "\r\n", s->cfg->hostname);
}

static int smtp_proceed_starttls(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        struct io_transport t;
        size_t dropped;
        int r = smtp_send(s, &reply_tls_go_ahead);

        if (r >= 0)
                r = io_flush(&s->io);
        if (r >= 0)
                r = s->hooks->tls_start(s->cfg, s->io.timeout_ms, s->env.remote_ip, &t,
                                        s->env.tls, sizeof(s->env.tls));
        if (r < 0) {
                /* The stream is in an unknown state: nothing more can be said.
                 * The hook has logged why. */
                s->state = STATE_CLOSING;
                return 0;
        }
        /* CVE-2011-0411: whatever came with STARTTLS in plain text is dropped. */
        dropped = io_switch_transport(&s->io, &t);
        if (dropped)
                log_msg(LOG_NOTICE, "dropped %zu plaintext bytes sent after STARTTLS by %s",
                        dropped, s->env.remote_ip);
        /* RFC 3207 4.2: forget everything learnt before TLS, EHLO again. */
        s->tls_active = true;
        s->esmtp = false;
        s->env.helo[0] = '\0';
        smtp_transaction_reset(s);
        s->state = STATE_CONNECTED;
        return 0;
}

static void smtp_received_header(struct smtp_session *s, char *buf, size_t size, size_t *len)
{
        char date[64], tls[HW_TLS_DESC_MAX + 8] = "", rcpt[HW_ADDR_MAX + 16] = "";
        struct tm tm;
        time_t now = (time_t)(s->env.received_ms / 1000);
        const char *with = s->smtputf8 ? (s->tls_active ? "UTF8SMTPS" : "UTF8SMTP")
                                       : s->esmtp ? (s->tls_active ? "ESMTPS" : "ESMTP") : "SMTP";
        int n;

        gmtime_r(&now, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
        if (s->tls_active)
                snprintf(tls, sizeof(tls), "\r\n\t(%s)", s->env.tls);
        /* Naming the recipient is only safe when there is one. */
        if (s->env.rcpt_count == 1)
                snprintf(rcpt, sizeof(rcpt), "\r\n\tfor <%s>", s->env.rcpt[0]);
        n = snprintf(buf, size,
                     "Received: from %s ([%s])\r\n"
                     "\tby %s (hw-webhook) with %s id %s%s%s;\r\n"
                     "\t%s\r\n",
                     s->env.helo[0] ? s->env.helo : "unknown", s->env.remote_ip,
                     s->cfg->hostname, with, s->env.id, tls, rcpt, date);
        *len = n < 0 ? 0 : (size_t)n >= size ? size - 1 : (size_t)n;
}

/* A slow client keeps the idle timeout plus the time its bytes earn at the
 * minimum rate, and no more (what: "DATA" or "BDAT"). */
static void smtp_set_rate_deadline(struct smtp_session *s, const char *what, int64_t start_ms,
                                   uint64_t bytes_in)
{
        if (s->cfg->data_min_rate)
                smtp_set_deadline(s, what, start_ms + (int64_t)s->cfg->idle_timeout_ms +
                                  (int64_t)(bytes_in * 1000 / s->cfg->data_min_rate));
        else
                smtp_set_deadline(s, "session", s->session_deadline_ms);
}

/* Reads message bytes into the open item: to the final dot (DATA), or
 * left octets (a BDAT chunk). Once a limit is passed the item is gone and
 * the rest is only counted: the client is read to the end so it stays in
 * step. */
static int smtp_read_message(struct smtp_session *s, uint64_t left)
{
        struct smtp_message *msg = &s->message;
        const char *what = msg->machine.bdat ? "BDAT" : "DATA";

        while (msg->machine.state != DATA_STATE_DONE && left > 0) {
                const char *in;
                size_t avail, used, produced = 0;
                int r;

                smtp_set_rate_deadline(s, what, msg->start_ms, msg->bytes_in);
                r = io_peek(&s->io, &in, &avail);
                if (r < 0)
                        return r;
                if (avail > left)
                        avail = (size_t)left;
                used = data_feed(&msg->machine, in, avail, s->data_out, &produced);
                io_consume(&s->io, used);
                msg->bytes_in += used;
                left -= used;
                if (msg->result == DATA_OK) {
                        if (msg->machine.size > s->cfg->max_message_bytes)
                                msg->result = DATA_TOO_BIG;
                        else if (msg->machine.received > s->cfg->max_received)
                                msg->result = DATA_TOO_MANY_HOPS;
                        else if (msg->machine.header_lines > s->cfg->max_header_lines)
                                msg->result = DATA_TOO_MANY_HEADER_LINES;
                        /* Free the space now; the rest is only counted. */
                        if (msg->result != DATA_OK)
                                spool_abort(&s->item);
                }
                if (msg->result == DATA_OK)
                        spool_write(&s->item, s->data_out, produced);
                else
                        s->item.bytes += produced;
        }
        return 0;
}

static void smtp_log_transaction(struct smtp_session *s, uint64_t size, const char *outcome,
                                 const char *reply, const char *reason, const struct auth_verdict *auth)
{
        struct log_fields f;

        metrics_count_message(outcome, reply);
        log_fields_init(&f);
        log_field(&f, "HW_QUEUE_ID", "%s", s->env.id);
        log_field(&f, "HW_REMOTE_IP", "%s", s->env.remote_ip);
        log_field(&f, "HW_HELO", "%s", s->env.helo);
        log_field(&f, "HW_TLS", "%s", s->tls_active ? s->env.tls : "no");
        log_field(&f, "HW_SENDER", "%s", s->env.sender);
        log_field(&f, "HW_RCPT_COUNT", "%zu", s->env.rcpt_count);
        log_field(&f, "HW_SIZE", "%" PRIu64, size);
        log_field(&f, "HW_OUTCOME", "%s", outcome);
        log_field(&f, "HW_REPLY", "%s", reply);
        if (reason)
                log_field(&f, "HW_REASON", "%s", reason);
        if (auth && auth->checked)
                log_field(&f, "HW_AUTH", "spf=%s dkim=%s dmarc=%s", auth_result_name(auth->spf),
                          auth_result_name(auth_verdict_dkim_summary(auth)), auth_result_name(auth->dmarc));
        log_fields_send(strcmp(outcome, "accepted") == 0 ? LOG_INFO : LOG_NOTICE, &f,
                        "%s: %s from <%s> [%s], %zu recipient(s), %" PRIu64 " bytes", s->env.id,
                        outcome, s->env.sender, s->env.remote_ip, s->env.rcpt_count, size);
}

/* Sender authentication, then our headers into the item's reserve: 0 to
 * go on, 1 when DMARC enforcement refused the message (reply set), or
 * -errno. */
static int smtp_authenticate(struct smtp_session *s, struct auth_verdict *v, char *reply, size_t size)
{
        char lines[AUTH_LINES_MAX] = "", headers[sizeof(s->received) + AUTH_HEADER_MAX], from[128];
        ssize_t len = 0;
        int r = s->hooks->authenticate(s->cfg, &s->env, &s->item, v);

        if (r < 0)
                return r;
        /* RFC 8601 section 5: a header that claims our authserv-id is the
         * sender's forgery. It is renamed in place, the same length, so
         * nothing moves: the only change to the sender's bytes. */
        for (size_t i = 0; i < v->forged_count && r >= 0; i++)
                r = spool_patch(&s->item, v->forged[i], AUTH_FORGED_NAME, strlen(AUTH_FORGED_NAME));
        memcpy(headers, s->received, s->received_len);
        if (r >= 0 && v->checked) {
                len = auth_header_format(v, s->cfg->auth_serv_id, headers + s->received_len,
                                         sizeof(headers) - s->received_len);
                if (len >= 0 && auth_verdict_format_lines(v, lines, sizeof(lines)) < 0)
                        len = -E2BIG;
                if (len < 0)
                        r = (int)len;
        }
        if (r >= 0)
                r = spool_fill_reserve(&s->item, lines, headers, s->received_len + (size_t)len);
        if (r < 0)
                return r;
        /* temperror never rejects: only a DMARC fail under p=reject. */
        if (s->cfg->auth_dmarc_enforce && v->dmarc == AUTH_FAIL && v->dmarc_policy == AUTH_POLICY_REJECT) {
                smtp_printable(from, sizeof(from), v->dmarc_from);
                snprintf(reply, size, REPLY_DMARC_REJECT, from);
                return 1;
        }
        return 0;
}

/* After the final dot: limits, sender authentication, the decision API,
 * the commit, the reply. */
static int smtp_finish_message(struct smtp_session *s, enum data_result result)
{
        char reply[512], reason[256] = "";
        const char *outcome = "accepted";
        uint64_t size = s->item.bytes;
        struct auth_verdict auth;
        int r = 0;

        auth_verdict_init(&auth);

        switch (result) {
        case DATA_TOO_BIG:
                snprintf(reply, sizeof(reply), "%s", reply_message_too_big.text);
                outcome = "rejected-size";
                goto answer;
        case DATA_TOO_MANY_HOPS:
                snprintf(reply, sizeof(reply), "%s", reply_too_many_hops.text);
                outcome = "rejected-loop";
                goto answer;
        case DATA_TOO_MANY_HEADER_LINES:
                snprintf(reply, sizeof(reply), "%s", reply_too_many_header_lines.text);
                outcome = "rejected-header";
                goto answer;
        case DATA_OK:
                break;
        }
        r = spool_flush(&s->item);
        /* Every recipient was silently denied at RCPT: the same 250 as a
         * silent_deny after DATA, nothing kept, nobody asked again. */
        if (r >= 0 && s->env.rcpt_count == 0) {
                spool_abort(&s->item);
                snprintf(reply, sizeof(reply), REPLY_QUEUED, s->env.id);
                snprintf(reason, sizeof(reason), "every recipient silently denied at RCPT");
                outcome = "silently-denied";
                goto answer;
        }
        if (r >= 0 && s->item.reserve_len) {
                r = smtp_authenticate(s, &auth, reply, sizeof(reply));
                if (r > 0) {
                        spool_abort(&s->item);
                        snprintf(reason, sizeof(reason), "DMARC fail under p=reject");
                        outcome = "rejected-dmarc";
                        goto answer;
                }
                size = s->item.bytes;
        }
        if (r >= 0 && s->hooks && s->hooks->decide) {
                switch (s->hooks->decide(s->cfg, &s->env, &s->item, &auth, reply, sizeof(reply),
                                         reason, sizeof(reason))) {
                case DECISION_ALLOW:
                        break;
                case DECISION_DENY:
                        spool_abort(&s->item);
                        outcome = "denied";
                        goto answer;
                case DECISION_SILENT_DENY:
                        spool_abort(&s->item);
                        snprintf(reply, sizeof(reply), REPLY_QUEUED, s->env.id);
                        outcome = "silently-denied";
                        goto answer;
                case DECISION_TEMPFAIL:
                        spool_abort(&s->item);
                        snprintf(reply, sizeof(reply), "%s", reply_policy_unavailable.text);
                        outcome = "deferred-policy";
                        goto answer;
                case DECISION_DEFER:
                        spool_abort(&s->item);
                        outcome = "deferred";
                        goto answer;
                }
        }
        if (r >= 0)
                r = spool_commit(&s->item);
        else
                spool_abort(&s->item);
        if (r < 0) {
                snprintf(reply, sizeof(reply), "%s", smtp_spool_error_reply(r)->text);
                snprintf(reason, sizeof(reason), "spool: %s", strerror(-r));
                outcome = "failed-spool";
                goto answer;
        }
        /* S2: the message is durable; only now may we say so. */
        snprintf(reply, sizeof(reply), REPLY_QUEUED, s->env.id);
answer:
        s->transactions++;
        smtp_log_transaction(s, size, outcome, reply, reason[0] ? reason : NULL, &auth);
        auth_verdict_free(&auth);
        smtp_transaction_reset(s);
        return io_printf(&s->io, "%s\r\n", reply);
}

/* S1: a new item in tmp/ with our Received: header, and the message
 * machine ready for DATA or for BDAT chunks. */
static int smtp_message_open(struct smtp_session *s, bool bdat)
{
        char received[1024];
        size_t len;
        struct timespec now;
        int r;

        clock_gettime(CLOCK_REALTIME, &now);
        s->env.received_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        /* An id made at RCPT for the decision API is kept. S1: the file
         * exists before the 354, so a full disk is said early. With sender
         * authentication our headers wait in the reserve until the
         * Authentication-Results: header is known. */
        r = s->env.id[0] ? 0 : spool_new_id(s->env.id);
        if (r >= 0)
                r = spool_create_reserved(s->spool, &s->env, &s->item,
                                          s->hooks && s->hooks->authenticate ? SMTP_AUTH_RESERVE : 0);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot create a spool item: %s", strerror(-r));
                return r;
        }
        smtp_received_header(s, received, sizeof(received), &len);
        if (s->item.reserve_len) {
                memcpy(s->received, received, len);
                s->received_len = len;
        } else {
                spool_write(&s->item, received, len);
        }
        if (bdat)
                data_init_bdat(&s->message.machine);
        else
                data_init(&s->message.machine);
        s->message.result = DATA_OK;
        s->message.start_ms = io_now_ms();
        s->message.bytes_in = 0;
        return 0;
}

/* The client vanished or timed out mid-message: nothing was acknowledged. */
static int smtp_message_lost(struct smtp_session *s, int error)
{
        spool_abort(&s->item);
        smtp_log_transaction(s, s->item.bytes, "aborted", "", strerror(-error), NULL);
        return error;
}

static int smtp_proceed_data(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        /* The file exists before the 354, so a full disk is said early. */
        int r = smtp_message_open(s, false);

        if (r < 0) {
                smtp_transaction_reset(s);
                return smtp_send(s, smtp_spool_error_reply(r));
        }
        r = smtp_send(s, &reply_data_go_ahead);
        if (r >= 0)
                r = smtp_read_message(s, UINT64_MAX);
        if (r < 0)
                return smtp_message_lost(s, r);
        return smtp_finish_message(s, s->message.result);
}

/* BDAT (RFC 3030). The chunk's octets follow the command line whatever
 * the reply, so every answer is given after they are read: a chunk is
 * never taken for commands. A chunk that would pass the size limit is
 * read and dropped, then answered 552 (RFC 3030 2: the sender learns of
 * an error only after its chunk, and must be able to stop cleanly), as an
 * over-size DATA is read to its dot. The transaction ends at a refused
 * chunk; chunks the client had pipelined after it get 503 and are dropped
 * the same way. */

/* Reads and drops size octets of a refused chunk. */
static int smtp_bdat_discard(struct smtp_session *s, uint64_t size)
{
        const int64_t start_ms = io_now_ms();
        uint64_t done = 0;

        while (done < size) {
                const char *in;
                size_t avail;
                int r;

                smtp_set_rate_deadline(s, "BDAT", start_ms, done);
                r = io_peek(&s->io, &in, &avail);
                if (r < 0)
                        return r;
                if (avail > size - done)
                        avail = (size_t)(size - done);
                io_consume(&s->io, avail);
                done += avail;
        }
        return 0;
}

/* The refusals of check: the chunk is read and dropped first. A size that
 * does not parse leaves nothing to find the next command by: the session
 * ends after the reply. */
static int smtp_refuse_bdat(struct smtp_session *s, const char *args, const struct smtp_reply *reply)
{
        uint64_t size;
        bool last;
        int r = 0;

        if (smtp_parse_bdat(args, &size, &last) < 0)
                s->state = STATE_CLOSING;
        else
                r = smtp_bdat_discard(s, size);
        return r < 0 ? r : smtp_send(s, reply);
}

/* Between chunks the item waits in tmp/; a transaction reset (RSET, EHLO)
 * or the end of the session removes it, unacknowledged. */
static void smtp_bdat_abandon(struct smtp_session *s, const char *why)
{
        if (!s->bdat_open)
                return;
        s->bdat_open = false;
        spool_abort(&s->item);
        smtp_log_transaction(s, s->item.bytes, "aborted", "", why, NULL);
}

static int smtp_proceed_bdat(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        uint64_t size;
        bool last;
        int r;

        /* Parsed by smtp_check_bdat already. */
        smtp_parse_bdat(args, &size, &last);
        if (!s->bdat_open) {
                r = smtp_message_open(s, true);
                if (r < 0) {
                        const struct smtp_reply *reply = smtp_spool_error_reply(r);

                        smtp_transaction_reset(s);
                        return smtp_refuse_bdat(s, args, reply);
                }
                s->bdat_open = true;
        }
        /* A chunk sent with its command in one write is read without a
         * wait, where the deadline is looked at: a client sending tiny
         * chunks slowly is held to the minimum rate here. */
        smtp_set_rate_deadline(s, "BDAT", s->message.start_ms, s->message.bytes_in);
        if (s->io.deadline_ms && io_now_ms() >= s->io.deadline_ms) {
                s->bdat_open = false;
                return smtp_message_lost(s, -ETIME);
        }
        /* Announced too big: nothing of it is stored. */
        if (s->message.result == DATA_OK &&
            size > s->cfg->max_message_bytes - s->message.machine.size) {
                s->message.result = DATA_TOO_BIG;
                spool_abort(&s->item);
        }
        r = smtp_read_message(s, size);
        if (r < 0) {
                s->bdat_open = false;
                return smtp_message_lost(s, r);
        }
        if (!last && s->message.result == DATA_OK)
                return io_printf(&s->io, REPLY_CHUNK "\r\n", size);
        /* The last chunk, or a refused one: the message ends as after DATA's dot. */
        s->bdat_open = false;
        return smtp_finish_message(s, s->message.result);
}

static const struct smtp_command smtp_commands[] = {
        { CMD_HELO, smtp_check_helo, smtp_proceed_helo, false },
        { CMD_EHLO, smtp_check_helo, smtp_proceed_ehlo, true },
        { CMD_MAIL, smtp_check_mail, smtp_proceed_mail, false },
        { CMD_RCPT, smtp_check_rcpt, smtp_proceed_rcpt, false },
        { CMD_DATA, smtp_check_data, smtp_proceed_data, false },
        { CMD_RSET, smtp_check_no_args, smtp_proceed_rset, false },
        { CMD_NOOP, smtp_check_any, smtp_proceed_noop, false },
        { CMD_QUIT, smtp_check_no_args, smtp_proceed_quit, false },
        { CMD_VRFY, smtp_check_any, smtp_proceed_vrfy, false },
        { CMD_HELP, smtp_check_any, smtp_proceed_help, true },
        { CMD_STARTTLS, smtp_check_starttls, smtp_proceed_starttls, true },
        { CMD_EXPN, smtp_check_any, smtp_proceed_not_implemented, false },
        { CMD_AUTH, smtp_check_any, smtp_proceed_not_implemented, false },
        { CMD_BDAT, smtp_check_bdat, smtp_proceed_bdat, false },
};

static const struct smtp_command *smtp_command_find(enum smtp_cmd cmd)
{
        for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++)
                if (smtp_commands[i].cmd == cmd)
                        return &smtp_commands[i];
        return NULL;
}

const struct smtp_reply *smtp_check(const struct smtp_session *s, enum smtp_cmd cmd,
                                   const char *args, struct smtp_path *path)
{
        const struct smtp_command *c = smtp_command_find(cmd);

        return c ? c->check(s, args, path) : &reply_unrecognized;
}

/* Whether STARTTLS can work is asked once, before the first command whose
 * reply depends on it (a session that never asks loads no TLS library),
 * so that validators and actions only read the answer. */
static void smtp_tls_settle(struct smtp_session *s, const struct smtp_command *c)
{
        if (s->tls_checked || !c->tls_verdict)
                return;
        s->tls_usable = s->hooks && s->hooks->tls_usable && s->hooks->tls_usable(s->cfg, s->spool);
        s->tls_checked = true;
}

int smtp_session_init(struct smtp_session *s, const struct hw_config *cfg, struct spool *spool,
                      const struct io_transport *t, const struct smtp_hooks *hooks)
{
        int r;

        memset(s, 0, offsetof(struct smtp_session, io));
        s->cfg = cfg;
        s->spool = spool;
        s->hooks = hooks;
        s->state = STATE_CONNECTED;
        s->item.fd = -1;
        io_init(&s->io, t, cfg->idle_timeout_ms > INT32_MAX ? INT32_MAX : (int)cfg->idle_timeout_ms);
        /* The session's clock starts now: a PROXY header read before the
         * first command is bounded like a command line. */
        s->session_deadline_ms = io_now_ms() + (int64_t)cfg->session_deadline_ms;
        smtp_set_deadline(s, "command", io_now_ms() + (int64_t)cfg->command_deadline_ms);
        r = envelope_init(&s->env, cfg->max_recipients);
        snprintf(s->env.remote_ip, sizeof(s->env.remote_ip), "unknown");
        return r;
}

void smtp_session_free(struct smtp_session *s)
{
        envelope_free(&s->env);
}

void smtp_session_set_remote(struct smtp_session *s, const char *ip, unsigned port)
{
        snprintf(s->env.remote_ip, sizeof(s->env.remote_ip), "%s", ip);
        s->env.remote_port = port;
}

/* A PROXY header where a command belongs, before HELO/EHLO: from a peer
 * not in SMTP_PROXY_TRUSTED (a trusted proxy's header is read before the
 * greeting, receive/main.c), or a second one. Never believed: refused
 * and the connection closed. 1 when refused, 0 when the input is not a
 * header, or -errno from reading. */
static int smtp_refuse_proxy_header(struct smtp_session *s)
{
        const char *data;
        size_t len;
        enum proxy_version v;
        int r = io_peek(&s->io, &data, &len);

        if (r < 0)
                return r;
        v = proxy_detect(data, len);
        if (v != PROXY_V1 && v != PROXY_V2)
                return 0;
        log_msg(LOG_WARNING, "refused %s: PROXY v%d header after the greeting "
                "(only addresses in SMTP_PROXY_TRUSTED may send one, before it)",
                s->env.remote_ip, v == PROXY_V1 ? 1 : 2);
        s->state = STATE_CLOSING;
        r = io_printf(&s->io, REPLY_PROXY_REFUSED "\r\n", s->cfg->hostname);
        return r < 0 ? r : 1;
}

/* One command line: read, validate, act. */
static int smtp_command(struct smtp_session *s)
{
        struct smtp_path path;
        const struct smtp_command *c = NULL;
        const struct smtp_reply *error;
        const char *args;
        enum smtp_cmd cmd;
        size_t len;
        int r;

        smtp_set_deadline(s, "command", io_now_ms() + (int64_t)s->cfg->command_deadline_ms);
        if (s->state == STATE_CONNECTED) {
                r = smtp_refuse_proxy_header(s);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        r = io_getline(&s->io, s->line, s->cfg->max_line_length, &len);

        if (r == -E2BIG)
                error = &reply_line_too_long;
        else if (r == -EBADMSG)
                error = &reply_nul_in_command;
        else if (r < 0)
                return r;
        else if ((cmd = smtp_parse_command(s->line, &args)) == CMD_UNKNOWN)
                error = &reply_unrecognized;
        else if ((c = smtp_command_find(cmd)) == NULL)
                error = &reply_unrecognized;
        else {
                smtp_tls_settle(s, c);
                error = c->check(s, args, &path);
        }

        if (!error)
                return c->proceed(s, args, &path);
        if (error->bad_command)
                s->bad_commands++;
        if (c && (c->cmd == CMD_MAIL || c->cmd == CMD_RCPT))
                metrics_count_refusal(c->cmd == CMD_MAIL ? METRICS_CMD_MAIL : METRICS_CMD_RCPT, error->text);
        /* A refused BDAT's chunk follows it all the same. */
        r = c && c->cmd == CMD_BDAT ? smtp_refuse_bdat(s, args, error) : smtp_send(s, error);
        /* A refusal that ends the session was the last reply. */
        if (r >= 0 && s->state != STATE_CLOSING && s->bad_commands >= s->cfg->max_bad_commands) {
                s->state = STATE_CLOSING;
                r = io_printf(&s->io, REPLY_TOO_MANY_ERRORS "\r\n", s->cfg->hostname);
        }
        return r;
}

int smtp_session_run(struct smtp_session *s)
{
        int r = io_printf(&s->io, REPLY_GREETING "\r\n", s->cfg->hostname);

        while (r >= 0 && s->state != STATE_CLOSING)
                r = smtp_command(s);
        smtp_bdat_abandon(s, "session ended before BDAT LAST");
        if (r == -ETIMEDOUT)
                io_printf(&s->io, REPLY_IDLE_TIMEOUT "\r\n", s->cfg->hostname);
        if (r == -ETIME) {
                log_msg(LOG_NOTICE, "session with %s ended: %s deadline exceeded",
                        s->env.remote_ip, s->deadline_what);
                io_printf(&s->io, REPLY_DEADLINE "\r\n", s->cfg->hostname, s->deadline_what);
                /* A normal end for the caller, like the idle timeout. */
                r = -ETIMEDOUT;
        }
        if (io_flush(&s->io) < 0 && r >= 0)
                r = -EPIPE;
        return r == -ENODATA ? 0 : r;
}
