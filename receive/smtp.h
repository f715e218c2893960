/* One SMTP session (RFC 5321) over an io: an explicit state and a command
 * table pairing a pure validator with an action. STARTTLS and the decision
 * API plug in through hooks (modules.h) so the session does not link their
 * libraries; a hook gets the values it needs, never the session. */
#ifndef HW_SMTP_H
#define HW_SMTP_H

#include <stdbool.h>

#include "config.h"
#include "data.h"
#include "io.h"
#include "module_api.h"
#include "smtp_parse.h"
#include "spool.h"

enum smtp_state {
        STATE_CONNECTED,     /* greeted, waiting for HELO/EHLO */
        STATE_HELO,          /* no transaction */
        STATE_MAIL,          /* MAIL accepted */
        STATE_RCPT,          /* at least one RCPT accepted */
        STATE_CLOSING,       /* QUIT, timeout, or a fatal error */
};

/* One reply line. bad_command: a refusal that counts toward
 * SMTP_MAX_BAD_COMMANDS (a syntax error or an unknown command). */
struct smtp_reply {
        const char *text;
        bool bad_command;
};

struct smtp_hooks {
        /* Whether STARTTLS can work here (certificate and key are good).
         * Asked at most once per session, before the first command whose
         * reply depends on it. */
        bool (*tls_usable)(const struct hw_config *cfg, const struct spool *spool);
        /* After "220 Ready to start TLS" was sent and flushed: the handshake
         * on fd 0/1 within timeout_ms. On success *t is the TLS transport
         * and desc names protocol and cipher. 0, or -errno (logged, with
         * the client's address) and the session ends. */
        int (*tls_start)(const struct hw_config *cfg, int timeout_ms, const char *remote_ip,
                         struct io_transport *t, char *desc, size_t desc_size);
        /* After the whole message is in the tmp/ file and before the
         * commit. For DENY, reply gets the reply line with the sanitized
         * text; reason says why, for the log. */
        enum decision_outcome (*decide)(const struct hw_config *cfg, const struct envelope *env,
                                        const struct spool_item *item, const struct auth_verdict *auth,
                                        char *reply, size_t size, char *reason, size_t reason_size);
        /* After the whole message is in the tmp/ file, before the
         * decision: SPF, DKIM and DMARC into v (hw-auth.so). 0, or -errno
         * (logged) when the message could not be read; v is filled
         * either way. Set, the session reserves room for the
         * Authentication-Results: header in each item (lib/spool.h). */
        int (*authenticate)(const struct hw_config *cfg, const struct envelope *env,
                            const struct spool_item *item, struct auth_verdict *v);
        /* At RCPT, when WEBHOOK_DECISION_STAGES holds rcpt: asks about addr
         * within timeout_ms; env is the transaction so far (its queue id
         * set). For DENY and DEFER, reply gets the reply line. */
        enum decision_outcome (*decide_rcpt)(const struct hw_config *cfg, const struct envelope *env,
                                             const char *addr, uint64_t timeout_ms,
                                             char *reply, size_t size,
                                             char *reason, size_t reason_size);
};

/* What the limits found in the message so far: the first one passed. */
enum data_result {
        DATA_OK,
        DATA_TOO_BIG,
        DATA_TOO_MANY_HOPS,
        DATA_TOO_MANY_HEADER_LINES,
};

/* The message arriving in the item: by DATA in one command, or by BDAT
 * chunks across commands (RFC 3030). */
struct smtp_message {
        struct data_machine machine;
        enum data_result result;
        int64_t start_ms;          /* io_now_ms() when its first byte was awaited */
        uint64_t bytes_in;         /* bytes read from the client, for the minimum rate */
};

struct smtp_session {
        const struct hw_config *cfg;
        struct spool *spool;
        const struct smtp_hooks *hooks;
        enum smtp_state state;
        bool esmtp;
        bool tls_checked;          /* tls_usable is known */
        bool tls_usable;           /* the tls_usable hook said yes */
        bool tls_active;
        bool smtputf8;             /* this transaction */
        bool binarymime;           /* this transaction: MAIL BODY=BINARYMIME, so BDAT only */
        bool bdat_open;            /* BDAT chunks are in the item in tmp/, LAST not yet */
        uint64_t declared_size;    /* MAIL FROM SIZE= */
        unsigned bad_commands;
        unsigned transactions;
        int64_t session_deadline_ms;   /* io_now_ms() time the session must end by */
        const char *deadline_what;     /* the deadline now set: "command", "DATA", "session" */
        int64_t rcpt_decision_ms;      /* this transaction's time in RCPT decisions */
        unsigned rcpt_silent;          /* recipients taken at RCPT but silently dropped */
        struct envelope env;       /* helo, remote and tls persist across RSET */
        struct io io;
        struct spool_item item;
        struct smtp_message message;
        char line[HW_CMD_MAX_LIMIT + 1];
        char received[1024];       /* our Received: header, kept until the reserve is filled */
        size_t received_len;
        char data_out[HW_IO_BUFFER];   /* DATA after unstuffing, on its way to the spool */
};

int smtp_session_init(struct smtp_session *s, const struct hw_config *cfg, struct spool *spool,
                      const struct io_transport *t, const struct smtp_hooks *hooks);
void smtp_session_free(struct smtp_session *s);

/* Sets the client's address (from the socket or a trusted PROXY header). */
void smtp_session_set_remote(struct smtp_session *s, const char *ip, unsigned port);

/* Runs the session to its end; 0 when it ended by QUIT or the client
 * closing, -errno for I/O errors and timeouts (already answered). */
int smtp_session_run(struct smtp_session *s);

/* The validator of cmd: NULL when the command may proceed, else the reply.
 * Pure: fills path for MAIL and RCPT, touches nothing else. */
const struct smtp_reply *smtp_check(const struct smtp_session *s, enum smtp_cmd cmd,
                                    const char *args, struct smtp_path *path);

/* The reply for a spool error (the SMTP boundary's one mapping). */
const struct smtp_reply *smtp_spool_error_reply(int error);

#endif
