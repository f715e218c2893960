/* Sender authentication verdicts (SPF, DKIM, DMARC): what hw-receive's
 * hw-auth.so found, and every form they take afterwards. One module owns
 * the words and the formats, so the header, the spool item, the payload
 * and the decision request can never disagree:
 *
 * - the Authentication-Results: header (RFC 8601) hw-receive prepends;
 * - the spool item's envelope lines, one per check (the item format is in
 *   lib/spool.h; older readers skip these keys):
 *
 *     auth-spf RESULT mailfrom|helo IDENTITY
 *     auth-dkim RESULT DOMAIN SELECTOR ALGORITHM B    (one per signature)
 *     auth-dmarc RESULT FROM-DOMAIN POLICY
 *
 *   where a value that is empty is "-" and a byte outside printable ASCII,
 *   or a space, is '?';
 * - the fields a payload format carries (auth_verdict_fields()).
 */
#ifndef HW_AUTH_VERDICT_H
#define HW_AUTH_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hw_limits.h"

/* The result words of RFC 8601 section 2.7 that SPF, DKIM and DMARC use. */
enum auth_result {
        AUTH_NONE,
        AUTH_PASS,
        AUTH_FAIL,
        AUTH_SOFTFAIL,     /* SPF only */
        AUTH_NEUTRAL,
        AUTH_POLICY,       /* DKIM: valid, but refused by local policy */
        AUTH_PERMERROR,
        AUTH_TEMPERROR,
        AUTH_RESULT_COUNT,
};

/* The DMARC policy that applies to the From: domain (p=, or sp= for a
 * subdomain whose record was found at its organizational domain),
 * whatever pct= says. */
enum auth_policy {
        AUTH_POLICY_ABSENT,        /* no record */
        AUTH_POLICY_NONE,
        AUTH_POLICY_QUARANTINE,
        AUTH_POLICY_REJECT,
        AUTH_POLICY_COUNT,
};

#define AUTH_DKIM_MAX 8            /* signatures reported; all are verified */
#define AUTH_DOMAIN_MAX 255        /* RFC 1035 */
#define AUTH_REASON_MAX 64
#define AUTH_B_PREFIX 8            /* header.b: enough of b= to tell signatures apart (RFC 6008) */
/* The longest Authentication-Results: header auth_header_format() writes. */
#define AUTH_HEADER_MAX 8192
/* The longest envelope lines auth_verdict_format_lines() writes. */
#define AUTH_LINES_MAX 4096

struct auth_dkim {
        enum auth_result result;
        char domain[AUTH_DOMAIN_MAX + 1];          /* d= */
        char selector[AUTH_DOMAIN_MAX + 1];        /* s= */
        char algorithm[24];                        /* a= */
        char b[AUTH_B_PREFIX + 1];                 /* the first characters of b= */
        char reason[AUTH_REASON_MAX];              /* why it did not pass; "" when it did */
};

struct auth_verdict {
        bool checked;                      /* false: verification did not run */
        enum auth_result spf;
        bool spf_helo;                     /* the identity is the HELO name (MAIL FROM:<>) */
        char spf_identity[HW_ADDR_MAX + 1];
        size_t dkim_count;                 /* signatures found (dkim[] holds the first AUTH_DKIM_MAX) */
        struct auth_dkim dkim[AUTH_DKIM_MAX];
        enum auth_result dmarc;
        char dmarc_from[AUTH_DOMAIN_MAX + 1];      /* the From: domain; "" when none */
        enum auth_policy dmarc_policy;
        char dmarc_reason[AUTH_REASON_MAX];
        /* Offsets, from the start of the sender's message, of the field
         * names of Authentication-Results: headers that carry our
         * authserv-id (RFC 8601 section 5): malloc'd, auth_verdict_free(). */
        uint64_t *forged;
        size_t forged_count;
};

/* An empty verdict (checked false, every result none). */
void auth_verdict_init(struct auth_verdict *v);
void auth_verdict_free(struct auth_verdict *v);
/* Remembers one forged header's offset: 0 or -ENOMEM. */
int auth_verdict_add_forged(struct auth_verdict *v, uint64_t offset);

const char *auth_result_name(enum auth_result r);
/* 0, or -EINVAL for a word that is no result. */
int auth_result_parse(const char *word, enum auth_result *r);
const char *auth_policy_name(enum auth_policy p);
int auth_policy_parse(const char *word, enum auth_policy *p);

/* The one DKIM word for a consumer that wants one: pass when any
 * signature passed, else the first signature's result, none without one. */
enum auth_result auth_verdict_dkim_summary(const struct auth_verdict *v);

/* The Authentication-Results: header for v, CRLF-terminated and folded
 * one result per line. serv_id is our authserv-id. Returns its length,
 * or -E2BIG when it does not fit in size. */
ssize_t auth_header_format(const struct auth_verdict *v, const char *serv_id, char *buf, size_t size);

/* Whether a header field named Authentication-Results: with this value
 * (everything after the colon, folding included) carries serv_id as its
 * authserv-id, compared case-insensitively. */
bool auth_header_is_ours(const char *value, size_t len, const char *serv_id);

/* The name hw-receive gives a forged Authentication-Results: header: the
 * same length, so renaming it moves no byte. */
#define AUTH_HEADER_NAME "Authentication-Results"
#define AUTH_FORGED_NAME "X-Forged-Authn-Results"

/* The envelope lines for v (see above); "" when v was not checked.
 * Returns their length, or -E2BIG. */
ssize_t auth_verdict_format_lines(const struct auth_verdict *v, char *buf, size_t size);
/* Applies one envelope line (key and value split at the first space):
 * 1 when it was an auth line, 0 when key is not ours, -EBADMSG when it is
 * ours but malformed. */
int auth_verdict_parse_line(struct auth_verdict *v, const char *key, const char *value);
/* Reads the verdict from the envelope block of an open spool item file,
 * which ends before body_offset (envelope_read's): v->checked is false
 * when the item has none (verification off, or an older item). 0 or
 * -errno. This is what every payload format calls. */
int auth_verdict_read(int fd, off_t body_offset, struct auth_verdict *v);

/* The payload fields of v, in this order: auth-spf, auth-dkim, auth-dmarc,
 * auth-dmarc-policy, each a result or policy word. Nothing when v was not
 * checked. */
void auth_verdict_fields(const struct auth_verdict *v,
                         void (*field)(void *userdata, const char *name, const char *value),
                         void *userdata);

#endif
