/* hw-auth.so: SPF, DKIM and DMARC for one message after the final dot
 * (module_api.h). The sender's bytes are read once from the spool file,
 * in chunks: the header's fields go to the DKIM verifier and are looked
 * at for From: and for Authentication-Results: headers that claim to be
 * ours; the body goes to the verifier only when there is a signature.
 * Memory is bounded by the longest header field, not the message. */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "autoconfig.h"
#include "module_api.h"

#define AUTH_READ_CHUNK 65536
#define AUTH_FIELD_MAX (1024 * 1024)      /* longer fields are cut (and cannot verify) */
#define AUTH_FROM_MAX 2048                /* of the From: value kept for DMARC */

struct auth_scan {
        const struct hw_config *cfg;
        struct auth_verdict *v;
        struct auth_dkim_run *dkim;
        char *field;                      /* the header field being read */
        size_t field_len, field_size;
        uint64_t field_offset;            /* where it starts in the message */
        char from[AUTH_FROM_MAX];
        unsigned from_count;
        int error;                        /* -ENOMEM once memory ran out */
};

static void auth_scan_append(struct auth_scan *sc, char c)
{
        if (sc->field_len == sc->field_size) {
                size_t size = sc->field_size ? sc->field_size * 2 : 4096;
                char *more;

                if (size > AUTH_FIELD_MAX)
                        return;
                more = realloc(sc->field, size);
                if (!more) {
                        sc->error = -ENOMEM;
                        return;
                }
                sc->field = more;
                sc->field_size = size;
        }
        sc->field[sc->field_len++] = c;
}

/* A whole header field: name, colon, value with its folding. */
static void auth_scan_field(struct auth_scan *sc)
{
        size_t len = sc->field_len, name_len;
        const char *colon;

        /* Without its line end. */
        if (len && sc->field[len - 1] == '\n')
                len--;
        if (len && sc->field[len - 1] == '\r')
                len--;
        sc->field_len = 0;
        if (!len)
                return;
        auth_dkim_header(sc->dkim, sc->field, len);
        colon = memchr(sc->field, ':', len);
        if (!colon)
                return;
        name_len = (size_t)(colon - sc->field);
        while (name_len && (sc->field[name_len - 1] == ' ' || sc->field[name_len - 1] == '\t'))
                name_len--;
        if (name_len == 4 && strncasecmp(sc->field, "From", 4) == 0) {
                size_t value_len = len - (size_t)(colon + 1 - sc->field);

                if (sc->from_count++ == 0) {
                        if (value_len >= sizeof(sc->from))
                                value_len = sizeof(sc->from) - 1;
                        memcpy(sc->from, colon + 1, value_len);
                        sc->from[value_len] = '\0';
                        /* A NUL would cut the address short. */
                        for (size_t i = 0; i < value_len; i++)
                                if (!sc->from[i])
                                        sc->from[i] = ' ';
                }
        } else if (name_len == strlen(AUTH_HEADER_NAME) &&
                   strncasecmp(sc->field, AUTH_HEADER_NAME, name_len) == 0 &&
                   auth_header_is_ours(colon + 1, len - (size_t)(colon + 1 - sc->field), sc->cfg->auth_serv_id)) {
                if (auth_verdict_add_forged(sc->v, sc->field_offset) < 0)
                        sc->error = -ENOMEM;
        }
}

/* Reads the message at offset in fd: 0 or -errno. */
static int auth_scan_message(int fd, off_t offset, struct auth_scan *sc)
{
        char *buf = malloc(AUTH_READ_CHUNK);
        uint64_t pos = 0;
        bool in_header = true, line_start = true, cr_at_start = false, want_body = false;
        int r = 0;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = pread(fd, buf, AUTH_READ_CHUNK, offset + (off_t)pos);
                size_t i = 0;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                /* The header, a byte at a time: it is short, and folding
                 * is only known at the next line's first byte. */
                for (; in_header && i < (size_t)n; i++, pos++) {
                        char c = buf[i];

                        if (cr_at_start) {
                                cr_at_start = false;
                                if (c == '\n') {
                                        in_header = false;
                                        break;
                                }
                                /* A lone CR starts a (broken) field. */
                                sc->field_offset = pos - 1;
                                auth_scan_append(sc, '\r');
                                line_start = false;
                        }
                        if (line_start && c != ' ' && c != '\t') {
                                auth_scan_field(sc);
                                if (c == '\n') {
                                        in_header = false;
                                        break;
                                }
                                if (c == '\r') {
                                        cr_at_start = true;
                                        continue;
                                }
                                sc->field_offset = pos;
                        }
                        auth_scan_append(sc, c);
                        line_start = c == '\n';
                }
                if (!in_header && !want_body) {
                        /* i is at the LF of the empty line. */
                        i++;
                        pos++;
                        want_body = auth_dkim_end_of_header(sc->dkim);
                        if (!want_body)
                                break;
                }
                if (want_body && i < (size_t)n) {
                        auth_dkim_body(sc->dkim, buf + i, (size_t)n - i);
                        pos += (uint64_t)n - i;
                }
        }
        if (r >= 0 && in_header) {
                /* A message that is all header. */
                auth_scan_field(sc);
                auth_dkim_end_of_header(sc->dkim);
        }
        free(buf);
        free(sc->field);
        sc->field = NULL;
        return r < 0 ? r : sc->error;
}

/* Every result temperror: what a message gets when DNS cannot be used. */
static void auth_all_temperror(struct auth_verdict *v, const char *reason)
{
        v->spf = AUTH_TEMPERROR;
        v->dmarc = AUTH_TEMPERROR;
        snprintf(v->dmarc_reason, sizeof(v->dmarc_reason), "%s", reason);
}

static int auth_verify(const struct hw_config *cfg, const struct hw_module_message *msg,
                       struct auth_verdict *v, char *err, size_t errlen)
{
        struct auth_scan sc = { .cfg = cfg, .v = v };
        struct auth_dns dns;
        int r = auth_dns_init(&dns, AUTH_DNS_RESOLV_CONF, cfg->auth_dns_timeout_ms);

        v->checked = true;
        if (r < 0) {
                /* No resolver configuration: no DNS, but the forged
                 * headers must still be found. */
                snprintf(err, errlen, "cannot read %s: %s", AUTH_DNS_RESOLV_CONF, strerror(-r));
                auth_dns_init(&dns, "/dev/null", 0);
        }
        auth_spf_check(&dns, msg->env, v);
        r = auth_dkim_start(&sc.dkim, &dns);
        if (r < 0) {
                snprintf(err, errlen, "cannot start the DKIM verifier: %s", strerror(-r));
                return r;
        }
        r = auth_scan_message(msg->fd, msg->offset, &sc);
        auth_dkim_finish(sc.dkim, v);
        if (r < 0) {
                snprintf(err, errlen, "cannot read the message: %s", strerror(-r));
                auth_all_temperror(v, "message unreadable");
                return r;
        }
        auth_dmarc_check(&dns, msg->env, sc.from, sc.from_count, v);
        return 0;
}

static int auth_check(const struct hw_config *cfg, char *err, size_t errlen)
{
        if (access(HW_PUBLIC_SUFFIX_LIST, R_OK) < 0) {
                snprintf(err, errlen, "AUTH_CHECKS: the public suffix list %s: %s", HW_PUBLIC_SUFFIX_LIST,
                         strerror(errno));
                return -errno;
        }
        return 0;
}

static int auth_probe(const struct hw_config *cfg, char *report, size_t size)
{
        unsigned char answer[4096];
        struct auth_dns dns;
        struct timespec start, end;
        int r = auth_dns_init(&dns, AUTH_DNS_RESOLV_CONF, cfg->auth_dns_timeout_ms);

        if (r < 0) {
                snprintf(report, size, "cannot read %s: %s", AUTH_DNS_RESOLV_CONF, strerror(-r));
                return r;
        }
        clock_gettime(CLOCK_MONOTONIC, &start);
        /* Any answer, NXDOMAIN too, shows the resolver is there. */
        r = auth_dns_query(&dns, cfg->auth_serv_id, 1 /* A */, answer, sizeof(answer));
        clock_gettime(CLOCK_MONOTONIC, &end);
        if (r < 0)
                snprintf(report, size, "the resolver of %s did not answer within AUTH_DNS_TIMEOUT_MS=%llu (%s): "
                         "messages will get temperror results", AUTH_DNS_RESOLV_CONF,
                         (unsigned long long)cfg->auth_dns_timeout_ms, strerror(-r));
        else
                snprintf(report, size, "the resolver of %s answered in %lld ms", AUTH_DNS_RESOLV_CONF,
                         (long long)((end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000));
        return r < 0 ? r : 0;
}

const struct hw_auth_module hw_auth_module = {
        .module = { .abi = HW_MODULE_ABI, .check = auth_check },
        .verify = auth_verify,
        .probe = auth_probe,
};
