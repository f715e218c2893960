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

#include "data.h"
#include "log.h"

struct smtp_command {
        enum smtp_cmd cmd;
        const char *(*check)(const struct smtp_session *s, const char *args, struct smtp_path *path);
        int (*proceed)(struct smtp_session *s, const char *args, const struct smtp_path *path);
};

static const char *const reply_need_helo = "503 5.5.1 Send HELO or EHLO first";
static const char *const reply_no_args = "501 5.5.4 No arguments allowed";

const char *smtp_spool_error_reply(int error)
{
        switch (error) {
        case -ENOSPC:
        case -EDQUOT:
                return "452 4.3.1 Insufficient system storage";
        case -ENOMEM:
                return "451 4.3.0 Out of memory, try again later";
        default:
                return "451 4.3.0 Local error in processing, try again later";
        }
}

/* Only syntax errors and unknown commands (500, 501, 555) count toward
 * SMTP_MAX_BAD_COMMANDS: a pipelining client whose MAIL was refused gets
 * 503 for each RCPT it had already sent, through no fault of its own, and
 * refusals by policy or for resources are not the client's errors. */
static bool smtp_reply_is_client_error(const char *reply)
{
        return strncmp(reply, "500", 3) == 0 || strncmp(reply, "501", 3) == 0 ||
               strncmp(reply, "555", 3) == 0;
}

static int smtp_reply(struct smtp_session *s, const char *text)
{
        return io_printf(&s->io, "%s\r\n", text);
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

static void smtp_transaction_reset(struct smtp_session *s)
{
        envelope_reset(&s->env);
        s->smtputf8 = false;
        s->declared_size = 0;
        if (s->state > STATE_HELO && s->state != STATE_CLOSING)
                s->state = STATE_HELO;
}

/* Validators: pure, they only look at the session and the arguments. */

static const char *smtp_check_helo(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        if (!*args)
                return "501 5.5.4 Syntax: HELO/EHLO hostname";
        return NULL;
}

static const char *smtp_check_mail(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        int r;

        if (s->state == STATE_CONNECTED)
                return reply_need_helo;
        if (s->state != STATE_HELO)
                return "503 5.5.1 Nested MAIL command";
        r = smtp_parse_path(args, true, path);
        if (r == -ENAMETOOLONG)
                return "501 5.1.7 Sender address too long";
        if (r == -EPROTO)
                return "555 5.5.4 Unsupported MAIL FROM parameter";
        if (r < 0)
                return "501 5.1.7 Bad sender address syntax";
        if (!s->esmtp && (path->size || path->smtputf8 || path->body != BODY_7BIT))
                return "555 5.5.4 MAIL FROM parameters need EHLO";
        if (path->size > s->cfg->max_message_bytes)
                return "552 5.3.4 Message size exceeds fixed maximum message size";
        if (!path->smtputf8 && !smtp_address_valid(path->addr, false) && path->addr[0])
                return "553 5.6.7 Non-ASCII address without SMTPUTF8";
        return NULL;
}

static const char *smtp_check_rcpt(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        int r;

        if (s->state == STATE_CONNECTED)
                return reply_need_helo;
        if (s->state != STATE_MAIL && s->state != STATE_RCPT)
                return "503 5.5.1 Need MAIL before RCPT";
        r = smtp_parse_path(args, false, path);
        if (r == -ENAMETOOLONG)
                return "501 5.1.3 Recipient address too long";
        if (r == -EPROTO)
                return "555 5.5.4 Unsupported RCPT TO parameter";
        if (r < 0)
                return "501 5.1.3 Bad recipient address syntax";
        if (!s->smtputf8 && !smtp_address_valid(path->addr, false) &&
            strcasecmp(path->addr, "postmaster") != 0)
                return "553 5.6.7 Non-ASCII address without SMTPUTF8";
        if (s->env.rcpt_count >= s->cfg->max_recipients)
                return "452 4.5.3 Too many recipients";
        if (!config_accepts_recipient(s->cfg, path->addr))
                return "550 5.7.1 Relaying denied: recipient domain not accepted here";
        return NULL;
}

static const char *smtp_check_data(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        if (*args)
                return reply_no_args;
        if (s->state == STATE_CONNECTED)
                return reply_need_helo;
        if (s->state == STATE_HELO)
                return "503 5.5.1 Need MAIL command";
        if (s->state != STATE_RCPT)
                return "503 5.5.1 Need RCPT command";
        return NULL;
}

static const char *smtp_check_no_args(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        return *args ? reply_no_args : NULL;
}

static const char *smtp_check_any(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        return NULL;
}

static const char *smtp_check_starttls(const struct smtp_session *s, const char *args, struct smtp_path *path)
{
        if (*args)
                return reply_no_args;
        if (s->tls_active)
                return "503 5.5.1 TLS already active";
        if (!s->hooks || !s->hooks->tls_available || !s->hooks->tls_available((struct smtp_session *)s))
                return "502 5.5.1 STARTTLS not available";
        if (s->state == STATE_CONNECTED)
                return reply_need_helo;
        if (s->state != STATE_HELO)
                return "503 5.5.1 STARTTLS not allowed during a mail transaction";
        return NULL;
}

/* Actions. */

static int smtp_proceed_helo(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        smtp_printable(s->env.helo, sizeof(s->env.helo), args);
        s->esmtp = false;
        smtp_transaction_reset(s);
        s->state = STATE_HELO;
        return io_printf(&s->io, "250 %s\r\n", s->cfg->hostname);
}

/* Whether STARTTLS may be offered to this client now. */
static bool smtp_tls_offerable(struct smtp_session *s)
{
        return !s->tls_active && s->hooks && s->hooks->tls_available && s->hooks->tls_available(s);
}

static int smtp_proceed_ehlo(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        bool tls = smtp_tls_offerable(s);

        smtp_printable(s->env.helo, sizeof(s->env.helo), args);
        s->esmtp = true;
        smtp_transaction_reset(s);
        s->state = STATE_HELO;
        return io_printf(&s->io,
                         "250-%s\r\n"
                         "250-PIPELINING\r\n"
                         "250-SIZE %" PRIu64 "\r\n"
                         "250-8BITMIME\r\n"
                         "250-SMTPUTF8\r\n"
                         "%s"
                         "250 ENHANCEDSTATUSCODES\r\n",
                         s->cfg->hostname, s->cfg->max_message_bytes,
                         tls ? "250-STARTTLS\r\n" : "");
}

static int smtp_proceed_mail(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        uint64_t free_bytes, free_inodes;
        int r = spool_free_space(s->spool, &free_bytes, &free_inodes);

        /* Back-pressure: refuse what we could not keep; the sender queues it.
         * A disk out of inodes is as full as one out of blocks. */
        if (r < 0 || free_bytes < s->cfg->spool_min_free_bytes ||
            free_bytes - s->cfg->spool_min_free_bytes < path->size ||
            free_inodes < HW_SPOOL_MIN_FREE_INODES)
                return smtp_reply(s, "452 4.3.1 Insufficient system storage, try again later");
        strcpy(s->env.sender, path->addr);
        s->smtputf8 = path->smtputf8;
        s->declared_size = path->size;
        s->state = STATE_MAIL;
        return smtp_reply(s, "250 2.1.0 Ok");
}

static int smtp_proceed_rcpt(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        int r = envelope_add_rcpt(&s->env, path->addr);

        if (r < 0)
                return smtp_reply(s, "452 4.5.3 Too many recipients");
        s->state = STATE_RCPT;
        return smtp_reply(s, "250 2.1.5 Ok");
}

static int smtp_proceed_rset(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        smtp_transaction_reset(s);
        return smtp_reply(s, "250 2.0.0 Ok");
}

static int smtp_proceed_noop(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        return smtp_reply(s, "250 2.0.0 Ok");
}

static int smtp_proceed_vrfy(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        return smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static int smtp_proceed_help(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        return smtp_reply(s, smtp_tls_offerable(s)
                ? "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS"
                : "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
}

/* Known commands this server does not do: 502 rather than 500, so a
 * client trying them is not counted as sending garbage. */
static int smtp_proceed_not_implemented(struct smtp_session *s, const char *args,
                                        const struct smtp_path *path)
{
        return smtp_reply(s, "502 5.5.1 Command not implemented");
}

static int smtp_proceed_quit(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        s->state = STATE_CLOSING;
        return io_printf(&s->io, "221 2.0.0 %s closing connection\r\n", s->cfg->hostname);
}

static int smtp_proceed_starttls(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        int r = smtp_reply(s, "220 2.0.0 Ready to start TLS");

        if (r >= 0)
                r = io_flush(&s->io);
        if (r >= 0)
                r = s->hooks->tls_start(s);
        if (r < 0) {
                /* The stream is in an unknown state: nothing more can be said.
                 * The hook has logged why. */
                s->state = STATE_CLOSING;
                return 0;
        }
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

enum data_result {
        DATA_OK,
        DATA_TOO_BIG,
        DATA_TOO_MANY_HOPS,
        DATA_TOO_MANY_HEADER_LINES,
};

/* Reads the message to the final dot into the open item; an over-limit
 * message is still read to its end so the client stays in step. */
static int smtp_read_data(struct smtp_session *s, enum data_result *result)
{
        struct data_machine m;
        bool storing = true;
        const int64_t start_ms = io_now_ms();
        uint64_t bytes_in = 0;

        data_init(&m);
        *result = DATA_OK;
        while (m.state != DATA_STATE_DONE) {
                const char *in;
                size_t avail, used, produced = 0;
                int r;

                /* A slow client keeps the idle timeout plus the time its
                 * bytes earn at the minimum rate, and no more. */
                if (s->cfg->data_min_rate)
                        smtp_set_deadline(s, "DATA", start_ms + (int64_t)s->cfg->idle_timeout_ms +
                                          (int64_t)(bytes_in * 1000 / s->cfg->data_min_rate));
                else
                        smtp_set_deadline(s, "session", s->session_deadline_ms);
                r = io_peek(&s->io, &in, &avail);
                if (r < 0)
                        return r;
                used = data_feed(&m, in, avail, s->data_out, &produced);
                io_consume(&s->io, used);
                bytes_in += used;
                if (*result == DATA_OK) {
                        if (m.size > s->cfg->max_message_bytes)
                                *result = DATA_TOO_BIG;
                        else if (m.received > s->cfg->max_received)
                                *result = DATA_TOO_MANY_HOPS;
                        else if (m.header_lines > s->cfg->max_header_lines)
                                *result = DATA_TOO_MANY_HEADER_LINES;
                        if (*result != DATA_OK) {
                                /* Free the space now; the rest is only counted. */
                                spool_abort(&s->item);
                                storing = false;
                        }
                }
                if (storing)
                        spool_write(&s->item, s->data_out, produced);
                else
                        s->item.bytes += produced;
        }
        return 0;
}

static void smtp_log_transaction(struct smtp_session *s, uint64_t size, const char *outcome,
                                 const char *reply, const char *reason)
{
        char f_id[64], f_ip[96], f_helo[300], f_tls[160], f_sender[300], f_rcpt[32], f_size[48],
             f_outcome[64], f_reply[300], f_reason[300];
        const char *fields[] = { f_id, f_ip, f_helo, f_tls, f_sender, f_rcpt, f_size, f_outcome,
                                 f_reply, reason ? f_reason : NULL, NULL };
        char message[512];

        snprintf(f_id, sizeof(f_id), "HW_QUEUE_ID=%s", s->env.id);
        snprintf(f_ip, sizeof(f_ip), "HW_REMOTE_IP=%s", s->env.remote_ip);
        snprintf(f_helo, sizeof(f_helo), "HW_HELO=%s", s->env.helo);
        snprintf(f_tls, sizeof(f_tls), "HW_TLS=%s", s->tls_active ? s->env.tls : "no");
        snprintf(f_sender, sizeof(f_sender), "HW_SENDER=%s", s->env.sender);
        snprintf(f_rcpt, sizeof(f_rcpt), "HW_RCPT_COUNT=%zu", s->env.rcpt_count);
        snprintf(f_size, sizeof(f_size), "HW_SIZE=%" PRIu64, size);
        snprintf(f_outcome, sizeof(f_outcome), "HW_OUTCOME=%s", outcome);
        snprintf(f_reply, sizeof(f_reply), "HW_REPLY=%s", reply);
        snprintf(f_reason, sizeof(f_reason), "HW_REASON=%s", reason ? reason : "");
        snprintf(message, sizeof(message), "%s: %s from <%s> [%s], %zu recipient(s), %" PRIu64 " bytes",
                 s->env.id, outcome, s->env.sender, s->env.remote_ip, s->env.rcpt_count, size);
        log_record(strcmp(outcome, "accepted") == 0 ? LOG_INFO : LOG_NOTICE, message, fields);
}

/* After the final dot: limits, the decision API, the commit, the reply. */
static int smtp_finish_message(struct smtp_session *s, enum data_result result)
{
        char reply[512], reason[256] = "";
        const char *outcome = "accepted";
        uint64_t size = s->item.bytes;
        int r = 0;

        switch (result) {
        case DATA_TOO_BIG:
                snprintf(reply, sizeof(reply), "552 5.3.4 Message size exceeds fixed maximum message size");
                outcome = "rejected-size";
                goto answer;
        case DATA_TOO_MANY_HOPS:
                snprintf(reply, sizeof(reply), "554 5.4.6 Too many hops (Received: headers), mail loop suspected");
                outcome = "rejected-loop";
                goto answer;
        case DATA_TOO_MANY_HEADER_LINES:
                snprintf(reply, sizeof(reply), "552 5.3.4 Too many header lines");
                outcome = "rejected-header";
                goto answer;
        case DATA_OK:
                break;
        }
        r = spool_flush(&s->item);
        if (r >= 0 && s->hooks && s->hooks->decide) {
                switch (s->hooks->decide(s, &s->item, reply, sizeof(reply), reason, sizeof(reason))) {
                case DECISION_ALLOW:
                        break;
                case DECISION_DENY:
                        spool_abort(&s->item);
                        outcome = "denied";
                        goto answer;
                case DECISION_SILENT_DENY:
                        spool_abort(&s->item);
                        snprintf(reply, sizeof(reply), "250 2.0.0 Ok: queued as %s", s->env.id);
                        outcome = "silently-denied";
                        goto answer;
                case DECISION_TEMPFAIL:
                        spool_abort(&s->item);
                        snprintf(reply, sizeof(reply), "451 4.7.1 Policy service unavailable, try again later");
                        outcome = "deferred-policy";
                        goto answer;
                }
        }
        if (r >= 0)
                r = spool_commit(&s->item);
        else
                spool_abort(&s->item);
        if (r < 0) {
                snprintf(reply, sizeof(reply), "%s", smtp_spool_error_reply(r));
                snprintf(reason, sizeof(reason), "spool: %s", strerror(-r));
                outcome = "failed-spool";
                goto answer;
        }
        /* S2: the message is durable; only now may we say so. */
        snprintf(reply, sizeof(reply), "250 2.0.0 Ok: queued as %s", s->env.id);
answer:
        s->transactions++;
        smtp_log_transaction(s, size, outcome, reply, reason[0] ? reason : NULL);
        smtp_transaction_reset(s);
        return smtp_reply(s, reply);
}

static int smtp_proceed_data(struct smtp_session *s, const char *args, const struct smtp_path *path)
{
        char received[1024];
        size_t len;
        enum data_result result;
        struct timespec now;
        int r;

        clock_gettime(CLOCK_REALTIME, &now);
        s->env.received_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        r = spool_new_id(s->env.id);
        /* S1: the file exists before the 354, so a full disk is said early. */
        if (r >= 0)
                r = spool_create(s->spool, &s->env, &s->item);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot create a spool item: %s", strerror(-r));
                smtp_transaction_reset(s);
                return smtp_reply(s, smtp_spool_error_reply(r));
        }
        smtp_received_header(s, received, sizeof(received), &len);
        spool_write(&s->item, received, len);
        r = smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
        if (r >= 0)
                r = smtp_read_data(s, &result);
        if (r < 0) {
                /* The client vanished or timed out mid-DATA: nothing was acknowledged. */
                spool_abort(&s->item);
                smtp_log_transaction(s, s->item.bytes, "aborted", "", strerror(-r));
                return r;
        }
        return smtp_finish_message(s, result);
}

static const struct smtp_command smtp_commands[] = {
        { CMD_HELO, smtp_check_helo, smtp_proceed_helo },
        { CMD_EHLO, smtp_check_helo, smtp_proceed_ehlo },
        { CMD_MAIL, smtp_check_mail, smtp_proceed_mail },
        { CMD_RCPT, smtp_check_rcpt, smtp_proceed_rcpt },
        { CMD_DATA, smtp_check_data, smtp_proceed_data },
        { CMD_RSET, smtp_check_no_args, smtp_proceed_rset },
        { CMD_NOOP, smtp_check_any, smtp_proceed_noop },
        { CMD_QUIT, smtp_check_no_args, smtp_proceed_quit },
        { CMD_VRFY, smtp_check_any, smtp_proceed_vrfy },
        { CMD_HELP, smtp_check_any, smtp_proceed_help },
        { CMD_STARTTLS, smtp_check_starttls, smtp_proceed_starttls },
        { CMD_EXPN, smtp_check_any, smtp_proceed_not_implemented },
        { CMD_AUTH, smtp_check_any, smtp_proceed_not_implemented },
};

const char *smtp_check(const struct smtp_session *s, enum smtp_cmd cmd, const char *args,
                       struct smtp_path *path)
{
        for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++)
                if (smtp_commands[i].cmd == cmd)
                        return smtp_commands[i].check(s, args, path);
        return "500 5.5.1 Command unrecognized";
}

static int smtp_proceed(struct smtp_session *s, enum smtp_cmd cmd, const char *args,
                        const struct smtp_path *path)
{
        for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++)
                if (smtp_commands[i].cmd == cmd)
                        return smtp_commands[i].proceed(s, args, path);
        return -EINVAL;
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

/* One command line: read, validate, act. */
static int smtp_command(struct smtp_session *s)
{
        struct smtp_path path;
        const char *args, *error;
        enum smtp_cmd cmd;
        size_t len;
        int r;

        smtp_set_deadline(s, "command", io_now_ms() + (int64_t)s->cfg->command_deadline_ms);
        r = io_getline(&s->io, s->line, s->cfg->max_line_length, &len);

        if (r == -E2BIG)
                error = "500 5.5.2 Line too long";
        else if (r == -EBADMSG)
                error = "500 5.5.2 NUL byte in command";
        else if (r < 0)
                return r;
        else if ((cmd = smtp_parse_command(s->line, &args)) == CMD_UNKNOWN)
                error = "500 5.5.1 Command unrecognized";
        else
                error = smtp_check(s, cmd, args, &path);

        if (!error)
                return smtp_proceed(s, cmd, args, &path);
        if (smtp_reply_is_client_error(error))
                s->bad_commands++;
        if (s->bad_commands >= s->cfg->max_bad_commands) {
                s->state = STATE_CLOSING;
                return io_printf(&s->io, "%s\r\n421 4.7.0 %s Too many errors, closing connection\r\n",
                                 error, s->cfg->hostname);
        }
        return smtp_reply(s, error);
}

int smtp_session_run(struct smtp_session *s)
{
        int r = io_printf(&s->io, "220 %s ESMTP hw-webhook\r\n", s->cfg->hostname);

        while (r >= 0 && s->state != STATE_CLOSING)
                r = smtp_command(s);
        if (r == -ETIMEDOUT)
                io_printf(&s->io, "421 4.4.2 %s Timeout exceeded, closing connection\r\n",
                          s->cfg->hostname);
        if (r == -ETIME) {
                log_msg(LOG_NOTICE, "session with %s ended: %s deadline exceeded",
                        s->env.remote_ip, s->deadline_what);
                io_printf(&s->io, "421 4.4.2 %s %s deadline exceeded, closing connection\r\n",
                          s->cfg->hostname, s->deadline_what);
                /* A normal end for the caller, like the idle timeout. */
                r = -ETIMEDOUT;
        }
        if (io_flush(&s->io) < 0 && r >= 0)
                r = -EPIPE;
        return r == -ENODATA ? 0 : r;
}
