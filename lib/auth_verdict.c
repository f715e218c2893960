/* Sender authentication verdicts and their forms; see auth_verdict.h. */
#include "auth_verdict.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const auth_result_names[AUTH_RESULT_COUNT] = {
        [AUTH_NONE] = "none",
        [AUTH_PASS] = "pass",
        [AUTH_FAIL] = "fail",
        [AUTH_SOFTFAIL] = "softfail",
        [AUTH_NEUTRAL] = "neutral",
        [AUTH_POLICY] = "policy",
        [AUTH_PERMERROR] = "permerror",
        [AUTH_TEMPERROR] = "temperror",
};

static const char *const auth_policy_names[AUTH_POLICY_COUNT] = {
        [AUTH_POLICY_ABSENT] = "absent",
        [AUTH_POLICY_NONE] = "none",
        [AUTH_POLICY_QUARANTINE] = "quarantine",
        [AUTH_POLICY_REJECT] = "reject",
};

void auth_verdict_init(struct auth_verdict *v)
{
        memset(v, 0, sizeof(*v));
}

void auth_verdict_free(struct auth_verdict *v)
{
        free(v->forged);
        v->forged = NULL;
        v->forged_count = 0;
}

int auth_verdict_add_forged(struct auth_verdict *v, uint64_t offset)
{
        uint64_t *more = reallocarray(v->forged, v->forged_count + 1, sizeof(*more));

        if (!more)
                return -ENOMEM;
        v->forged = more;
        v->forged[v->forged_count++] = offset;
        return 0;
}

const char *auth_result_name(enum auth_result r)
{
        return (unsigned)r < AUTH_RESULT_COUNT ? auth_result_names[r] : "none";
}

int auth_result_parse(const char *word, enum auth_result *r)
{
        for (int i = 0; i < AUTH_RESULT_COUNT; i++)
                if (strcmp(word, auth_result_names[i]) == 0) {
                        *r = (enum auth_result)i;
                        return 0;
                }
        return -EINVAL;
}

const char *auth_policy_name(enum auth_policy p)
{
        return (unsigned)p < AUTH_POLICY_COUNT ? auth_policy_names[p] : "absent";
}

int auth_policy_parse(const char *word, enum auth_policy *p)
{
        for (int i = 0; i < AUTH_POLICY_COUNT; i++)
                if (strcmp(word, auth_policy_names[i]) == 0) {
                        *p = (enum auth_policy)i;
                        return 0;
                }
        return -EINVAL;
}

enum auth_result auth_verdict_dkim_summary(const struct auth_verdict *v)
{
        size_t n = v->dkim_count < AUTH_DKIM_MAX ? v->dkim_count : AUTH_DKIM_MAX;

        for (size_t i = 0; i < n; i++)
                if (v->dkim[i].result == AUTH_PASS)
                        return AUTH_PASS;
        return n ? v->dkim[0].result : AUTH_NONE;
}

/* A bounded appender: once full, it stays full and says so at the end. */
struct auth_buf {
        char *p;
        size_t size, len;
        bool overflow;
};

static void auth_put(struct auth_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void auth_put(struct auth_buf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (b->overflow)
                return;
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->size - b->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= b->size - b->len) {
                b->overflow = true;
                return;
        }
        b->len += (size_t)n;
}

/* Bytes a property value (RFC 8601 pvalue) may hold unquoted: printable
 * ASCII but for the specials that would end or break it. */
static bool auth_value_plain(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || strchr("()<>,;:\\\"[]", *s))
                        return false;
        return true;
}

/* A property value, quoted when it must be (RFC 5322 quoted-string);
 * bytes that no header may carry become '?'. Values come from the sender. */
static void auth_put_value(struct auth_buf *b, const char *s)
{
        if (auth_value_plain(s)) {
                auth_put(b, "%s", s);
                return;
        }
        auth_put(b, "\"");
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\')
                        auth_put(b, "\\%c", c);
                else
                        auth_put(b, "%c", c < ' ' || c >= 0x7f ? '?' : c);
        }
        auth_put(b, "\"");
}

/* A comment " (reason)", parentheses and backslashes escaped. */
static void auth_put_comment(struct auth_buf *b, const char *s)
{
        if (!*s)
                return;
        auth_put(b, " (");
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '(' || c == ')' || c == '\\')
                        auth_put(b, "\\%c", c);
                else
                        auth_put(b, "%c", c < ' ' || c >= 0x7f ? '?' : c);
        }
        auth_put(b, ")");
}

ssize_t auth_header_format(const struct auth_verdict *v, const char *serv_id, char *buf, size_t size)
{
        struct auth_buf b = { .p = buf, .size = size };
        size_t n = v->dkim_count < AUTH_DKIM_MAX ? v->dkim_count : AUTH_DKIM_MAX;

        if (!size)
                return -E2BIG;
        buf[0] = '\0';
        auth_put(&b, "%s: %s;\r\n\tspf=%s", AUTH_HEADER_NAME, serv_id, auth_result_name(v->spf));
        if (v->spf_identity[0]) {
                auth_put(&b, v->spf_helo ? " smtp.helo=" : " smtp.mailfrom=");
                auth_put_value(&b, v->spf_identity);
        }
        if (!n)
                auth_put(&b, ";\r\n\tdkim=none");
        for (size_t i = 0; i < n; i++) {
                const struct auth_dkim *d = &v->dkim[i];

                auth_put(&b, ";\r\n\tdkim=%s", auth_result_name(d->result));
                auth_put_comment(&b, d->reason);
                auth_put(&b, " header.d=");
                auth_put_value(&b, d->domain[0] ? d->domain : "unknown");
                auth_put(&b, " header.s=");
                auth_put_value(&b, d->selector[0] ? d->selector : "unknown");
                if (d->algorithm[0]) {
                        auth_put(&b, " header.a=");
                        auth_put_value(&b, d->algorithm);
                }
                if (d->b[0]) {
                        auth_put(&b, " header.b=");
                        auth_put_value(&b, d->b);
                }
        }
        auth_put(&b, ";\r\n\tdmarc=%s", auth_result_name(v->dmarc));
        auth_put_comment(&b, v->dmarc_reason);
        if (v->dmarc_from[0]) {
                auth_put(&b, " header.from=");
                auth_put_value(&b, v->dmarc_from);
        }
        if (v->dmarc_policy != AUTH_POLICY_ABSENT)
                auth_put(&b, " policy.dmarc=%s", auth_policy_name(v->dmarc_policy));
        auth_put(&b, "\r\n");
        return b.overflow ? -E2BIG : (ssize_t)b.len;
}

/* Skips white space, folding and comments (RFC 5322 CFWS), nested ones
 * too; a comment left open runs to the end. */
static size_t auth_skip_cfws(const char *s, size_t len, size_t i)
{
        unsigned depth = 0;

        while (i < len) {
                char c = s[i];

                if (depth) {
                        if (c == '\\')
                                i++;
                        else if (c == '(')
                                depth++;
                        else if (c == ')')
                                depth--;
                } else if (c == '(') {
                        depth = 1;
                } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
                        break;
                }
                i++;
        }
        return i;
}

bool auth_header_is_ours(const char *value, size_t len, const char *serv_id)
{
        size_t i = auth_skip_cfws(value, len, 0), start = i, id_len = strlen(serv_id);

        /* authserv-id = value: a token up to CFWS, ';' or a version. */
        while (i < len && value[i] != ';' && value[i] != '(' && value[i] != ' ' &&
               value[i] != '\t' && value[i] != '\r' && value[i] != '\n')
                i++;
        if (start < len && value[start] == '"') {
                /* A quoted authserv-id: compare what is inside. */
                size_t end = start + 1;

                while (end < len && value[end] != '"')
                        end++;
                return end - start - 1 == id_len && strncasecmp(value + start + 1, serv_id, id_len) == 0;
        }
        return i - start == id_len && id_len && strncasecmp(value + start, serv_id, id_len) == 0;
}

/* An envelope value: one word, printable ASCII, "-" when empty. */
static void auth_put_word(struct auth_buf *b, const char *s)
{
        if (!*s) {
                auth_put(b, " -");
                return;
        }
        auth_put(b, " ");
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                auth_put(b, "%c", c <= ' ' || c >= 0x7f ? '?' : c);
        }
}

ssize_t auth_verdict_format_lines(const struct auth_verdict *v, char *buf, size_t size)
{
        struct auth_buf b = { .p = buf, .size = size };
        size_t n = v->dkim_count < AUTH_DKIM_MAX ? v->dkim_count : AUTH_DKIM_MAX;

        if (!size)
                return -E2BIG;
        buf[0] = '\0';
        if (!v->checked)
                return 0;
        auth_put(&b, "auth-spf %s %s", auth_result_name(v->spf), v->spf_helo ? "helo" : "mailfrom");
        auth_put_word(&b, v->spf_identity);
        auth_put(&b, "\n");
        for (size_t i = 0; i < n; i++) {
                auth_put(&b, "auth-dkim %s", auth_result_name(v->dkim[i].result));
                auth_put_word(&b, v->dkim[i].domain);
                auth_put_word(&b, v->dkim[i].selector);
                auth_put_word(&b, v->dkim[i].algorithm);
                auth_put_word(&b, v->dkim[i].b);
                auth_put(&b, "\n");
        }
        auth_put(&b, "auth-dmarc %s", auth_result_name(v->dmarc));
        auth_put_word(&b, v->dmarc_from);
        auth_put(&b, " %s\n", auth_policy_name(v->dmarc_policy));
        return b.overflow ? -E2BIG : (ssize_t)b.len;
}

/* Splits value into at most max words at spaces; returns how many. */
static size_t auth_split(char *value, char **words, size_t max)
{
        size_t n = 0;

        for (char *save = NULL, *w = strtok_r(value, " ", &save); w && n < max; w = strtok_r(NULL, " ", &save))
                words[n++] = strcmp(w, "-") == 0 ? w + 1 : w;
        return n;
}

static void auth_copy(char *dst, size_t size, const char *src)
{
        snprintf(dst, size, "%s", src);
}

int auth_verdict_parse_line(struct auth_verdict *v, const char *key, const char *value)
{
        char copy[1024], *w[6];
        size_t n;

        if (strncmp(key, "auth-", 5) != 0)
                return 0;
        if (strlen(value) >= sizeof(copy))
                return -EBADMSG;
        strcpy(copy, value);
        n = auth_split(copy, w, 6);
        if (strcmp(key, "auth-spf") == 0) {
                if (n != 3 || auth_result_parse(w[0], &v->spf) < 0)
                        return -EBADMSG;
                v->spf_helo = strcmp(w[1], "helo") == 0;
                auth_copy(v->spf_identity, sizeof(v->spf_identity), w[2]);
        } else if (strcmp(key, "auth-dkim") == 0) {
                struct auth_dkim *d;

                if (n != 5)
                        return -EBADMSG;
                if (v->dkim_count >= AUTH_DKIM_MAX)
                        return 1;
                d = &v->dkim[v->dkim_count];
                if (auth_result_parse(w[0], &d->result) < 0)
                        return -EBADMSG;
                auth_copy(d->domain, sizeof(d->domain), w[1]);
                auth_copy(d->selector, sizeof(d->selector), w[2]);
                auth_copy(d->algorithm, sizeof(d->algorithm), w[3]);
                auth_copy(d->b, sizeof(d->b), w[4]);
                v->dkim_count++;
        } else if (strcmp(key, "auth-dmarc") == 0) {
                if (n != 3 || auth_result_parse(w[0], &v->dmarc) < 0 ||
                    auth_policy_parse(w[2], &v->dmarc_policy) < 0)
                        return -EBADMSG;
                auth_copy(v->dmarc_from, sizeof(v->dmarc_from), w[1]);
        } else {
                /* A later version's check: not ours to judge. */
                return 1;
        }
        v->checked = true;
        return 1;
}

/* Applies one line of the envelope block; other keys are skipped. */
static int auth_verdict_apply(struct auth_verdict *v, char *line)
{
        char *space = strchr(line, ' ');

        if (!space)
                return 0;
        *space = '\0';
        return auth_verdict_parse_line(v, line, space + 1) < 0 ? -EBADMSG : 0;
}

int auth_verdict_read(int fd, off_t body_offset, struct auth_verdict *v)
{
        /* Line by line through a small window: the envelope block may be
         * large (many recipients, the reserve's padding line), the auth
         * lines are short, and lines too long for the window are nobody's
         * business here. */
        char buf[4096];
        size_t have = 0;
        off_t at = 0;
        bool skipping = false;

        auth_verdict_init(v);
        for (;;) {
                size_t want = sizeof(buf) - have, start = 0;
                ssize_t n;

                if (at >= body_offset)
                        return 0;                  /* no envelope block: nothing said */
                if ((off_t)want > body_offset - at)
                        want = (size_t)(body_offset - at);
                n = pread(fd, buf + have, want, at);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EBADMSG;           /* shorter than its body offset */
                at += n;
                have += (size_t)n;
                for (;;) {
                        char *nl = memchr(buf + start, '\n', have - start);

                        if (!nl)
                                break;
                        *nl = '\0';
                        if (skipping)
                                skipping = false;
                        else if (nl == buf + start)
                                return 0;          /* the empty line: the message starts */
                        else if (auth_verdict_apply(v, buf + start) < 0)
                                return -EBADMSG;
                        start = (size_t)(nl - buf) + 1;
                }
                memmove(buf, buf + start, have - start);
                have -= start;
                if (have == sizeof(buf)) {
                        skipping = true;
                        have = 0;
                }
        }
}

void auth_verdict_fields(const struct auth_verdict *v,
                         void (*field)(void *userdata, const char *name, const char *value),
                         void *userdata)
{
        if (!v->checked)
                return;
        field(userdata, "auth-spf", auth_result_name(v->spf));
        field(userdata, "auth-dkim", auth_result_name(auth_verdict_dkim_summary(v)));
        field(userdata, "auth-dmarc", auth_result_name(v->dmarc));
        field(userdata, "auth-dmarc-policy", auth_policy_name(v->dmarc_policy));
}
