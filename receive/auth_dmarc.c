/* DMARC with libopendmarc. The policy record is looked up here, through
 * auth_dns.c (libopendmarc's own lookup has no time bound), and handed to
 * the library, which parses it and judges alignment; organizational
 * domains come from the public suffix list, read only when a check needs
 * one (most mail aligns exactly, and reading the list costs more than the
 * rest of DMARC). */
#include "auth.h"

#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opendmarc/dmarc.h>

#include "autoconfig.h"

#define DMARC_RECORD_MAX 4096

/* Exported by libopendmarc but missing from its header. */
int opendmarc_get_tld(u_char *domain, u_char *tld, size_t tld_len);
u_char *opendmarc_util_finddomain(u_char *raw, u_char *buf, size_t buflen);

static bool auth_dmarc_suffixes_loaded;

static void auth_dmarc_load_suffixes(void)
{
        if (auth_dmarc_suffixes_loaded)
                return;
        /* The list's comments start with "//", wildcards with "*.",
         * exceptions with "!". Without it, relaxed alignment is strict. */
        if (opendmarc_tld_read_file((char *)HW_PUBLIC_SUFFIX_LIST, "//", "*.", "!") == 0)
                auth_dmarc_suffixes_loaded = true;
}

/* Whether the list has a rule for the top-level domain tld: asked of a
 * name below it, the library finds a shorter organizational domain. */
static bool auth_dmarc_tld_listed(const char *tld)
{
        char probe[AUTH_DOMAIN_MAX + 32], org[AUTH_DOMAIN_MAX + 32] = "";

        snprintf(probe, sizeof(probe), "hw-probe.hw-probe.%s", tld);
        return opendmarc_get_tld((unsigned char *)probe, (unsigned char *)org, sizeof(org)) == 0 &&
               org[0] && strcmp(org, probe) != 0;
}

/* The organizational domain of domain (RFC 7489 3.2). libopendmarc
 * answers nothing when no rule matches; the list's own
 * algorithm then applies the implicit "*" rule: the top-level domain is
 * the public suffix, the organizational domain one label more. */
static void auth_dmarc_org_domain(const char *domain, char *org, size_t size)
{
        const char *last = strrchr(domain, '.'), *p;

        /* Without a match the library writes nothing. */
        org[0] = '\0';
        auth_dmarc_load_suffixes();
        if (opendmarc_get_tld((unsigned char *)domain, (unsigned char *)org, size) != 0 || !org[0])
                snprintf(org, size, "%s", domain);
        if (strcmp(org, domain) != 0 || !last || auth_dmarc_tld_listed(last + 1))
                return;
        for (p = last; p > domain && p[-1] != '.'; p--)
                ;
        snprintf(org, size, "%s", p);
}

enum dmarc_lookup { LOOKUP_FOUND, LOOKUP_NONE, LOOKUP_TEMPERROR };

/* The one v=DMARC1 TXT record at _dmarc.domain (RFC 7489 6.6.3: none,
 * or several, mean no policy). */
static enum dmarc_lookup auth_dmarc_lookup(struct auth_dns *dns, const char *domain, char *record, size_t size)
{
        unsigned char *answer = malloc(AUTH_DNS_PACKET_MAX);
        char name[AUTH_DOMAIN_MAX + 16];
        enum dmarc_lookup result = LOOKUP_NONE;
        unsigned found = 0;
        ns_msg msg;
        int n;

        if (!answer)
                return LOOKUP_TEMPERROR;
        snprintf(name, sizeof(name), "_dmarc.%s", domain);
        n = auth_dns_query(dns, name, ns_t_txt, answer, AUTH_DNS_PACKET_MAX);
        if (n == -EINVAL) {
                free(answer);
                return LOOKUP_NONE;
        }
        if (n < 0 || ns_initparse(answer, n, &msg) < 0) {
                free(answer);
                return LOOKUP_TEMPERROR;
        }
        switch (ns_msg_getflag(msg, ns_f_rcode)) {
        case ns_r_noerror:
        case ns_r_nxdomain:
                break;
        default:
                free(answer);
                return LOOKUP_TEMPERROR;
        }
        for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
                char text[DMARC_RECORD_MAX];
                size_t len = 0;
                const unsigned char *rdata;
                size_t rdlen;
                ns_rr r;

                if (ns_parserr(&msg, ns_s_an, i, &r) < 0 || ns_rr_type(r) != ns_t_txt)
                        continue;
                rdata = ns_rr_rdata(r);
                rdlen = ns_rr_rdlen(r);
                /* A record's character-strings are one text, joined. */
                for (size_t at = 0; at < rdlen;) {
                        size_t part = rdata[at++];

                        if (part > rdlen - at)
                                part = rdlen - at;
                        if (len + part >= sizeof(text))
                                part = sizeof(text) - 1 - len;
                        memcpy(text + len, rdata + at, part);
                        len += part;
                        at += part;
                }
                text[len] = '\0';
                if (strncmp(text, "v=DMARC1", 8) != 0 || (text[8] && text[8] != ';' && !isspace((unsigned char)text[8])))
                        continue;
                found++;
                snprintf(record, size, "%s", text);
        }
        free(answer);
        if (found == 1)
                result = LOOKUP_FOUND;
        return result;
}

/* The domain of the From: field's one address, lower case, or "" when
 * there is none or there are several. */
static void auth_dmarc_from_domain(const char *from, char *domain, size_t size)
{
        char buf[AUTH_DOMAIN_MAX + 1];
        const char *d;
        unsigned ats = 0;
        bool quoted = false;
        int depth = 0;

        domain[0] = '\0';
        /* Several addresses (RFC 7489 6.6.1) are not judged. */
        for (const char *p = from; *p; p++) {
                if (*p == '\\' && p[1])
                        p++;
                else if (*p == '"' && !depth)
                        quoted = !quoted;
                else if (*p == '(' && !quoted)
                        depth++;
                else if (*p == ')' && !quoted && depth)
                        depth--;
                else if (*p == '@' && !quoted && !depth)
                        ats++;
        }
        if (ats != 1)
                return;
        d = (const char *)opendmarc_util_finddomain((unsigned char *)from, (unsigned char *)buf, sizeof(buf));
        if (!d)
                return;
        snprintf(domain, size, "%s", d);
        for (char *p = domain; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        if (domain[0] && domain[strlen(domain) - 1] == '.')
                domain[strlen(domain) - 1] = '\0';
        if (!strchr(domain, '.'))
                domain[0] = '\0';
}

static int auth_dmarc_dkim_outcome(enum auth_result r)
{
        return r == AUTH_PASS ? DMARC_POLICY_DKIM_OUTCOME_PASS :
               r == AUTH_TEMPERROR ? DMARC_POLICY_DKIM_OUTCOME_TMPFAIL : DMARC_POLICY_DKIM_OUTCOME_FAIL;
}

static int auth_dmarc_spf_outcome(enum auth_result r)
{
        return r == AUTH_PASS ? DMARC_POLICY_SPF_OUTCOME_PASS :
               r == AUTH_TEMPERROR ? DMARC_POLICY_SPF_OUTCOME_TMPFAIL :
               r == AUTH_NONE ? DMARC_POLICY_SPF_OUTCOME_NONE : DMARC_POLICY_SPF_OUTCOME_FAIL;
}

static enum auth_policy auth_dmarc_policy_of(int p)
{
        return p == DMARC_RECORD_P_REJECT ? AUTH_POLICY_REJECT :
               p == DMARC_RECORD_P_QUARANTINE ? AUTH_POLICY_QUARANTINE : AUTH_POLICY_NONE;
}

/* Whether relaxed alignment may need the suffix list: a passing
 * identifier that is not the From: domain itself. */
static bool auth_dmarc_needs_suffixes(const struct auth_verdict *v, const char *spf_domain, const char *from)
{
        size_t n = v->dkim_count < AUTH_DKIM_MAX ? v->dkim_count : AUTH_DKIM_MAX;

        if (v->spf == AUTH_PASS && strcasecmp(spf_domain, from) != 0)
                return true;
        for (size_t i = 0; i < n; i++)
                if (v->dkim[i].result == AUTH_PASS && strcasecmp(v->dkim[i].domain, from) != 0)
                        return true;
        return false;
}

static void auth_dmarc_reason(struct auth_verdict *v, enum auth_result r, const char *reason)
{
        v->dmarc = r;
        snprintf(v->dmarc_reason, sizeof(v->dmarc_reason), "%s", reason);
}

void auth_dmarc_check(struct auth_dns *dns, const struct envelope *env, const char *from,
                      unsigned from_count, struct auth_verdict *v)
{
        char record[DMARC_RECORD_MAX], org[AUTH_DOMAIN_MAX + 1] = "";
        const char *at = strrchr(v->spf_identity, '@');
        const char *spf_domain = at ? at + 1 : v->spf_identity;
        bool at_org = false, v6 = strchr(env->remote_ip, ':') != NULL;
        size_t n = v->dkim_count < AUTH_DKIM_MAX ? v->dkim_count : AUTH_DKIM_MAX;
        enum dmarc_lookup found;
        DMARC_POLICY_T *pctx;
        int p = 0, sp = 0, status;

        v->dmarc_policy = AUTH_POLICY_ABSENT;
        if (from_count != 1)
                return auth_dmarc_reason(v, from_count ? AUTH_PERMERROR : AUTH_NONE,
                                         from_count ? "several From: fields" : "no From: field");
        auth_dmarc_from_domain(from, v->dmarc_from, sizeof(v->dmarc_from));
        if (!v->dmarc_from[0])
                return auth_dmarc_reason(v, AUTH_PERMERROR, "no single domain in From:");
        found = auth_dmarc_lookup(dns, v->dmarc_from, record, sizeof(record));
        if (found == LOOKUP_NONE) {
                auth_dmarc_org_domain(v->dmarc_from, org, sizeof(org));
                if (strcmp(org, v->dmarc_from) != 0) {
                        found = auth_dmarc_lookup(dns, org, record, sizeof(record));
                        at_org = true;
                }
        }
        if (found == LOOKUP_TEMPERROR)
                return auth_dmarc_reason(v, AUTH_TEMPERROR, "policy lookup failed");
        if (found == LOOKUP_NONE)
                return auth_dmarc_reason(v, AUTH_NONE, "");
        if (auth_dmarc_needs_suffixes(v, spf_domain, v->dmarc_from))
                auth_dmarc_load_suffixes();
        pctx = opendmarc_policy_connect_init((unsigned char *)env->remote_ip,
                                             v6 ? DMARC_POLICY_IP_TYPE_IPV6 : DMARC_POLICY_IP_TYPE_IPV4);
        if (!pctx)
                return auth_dmarc_reason(v, AUTH_TEMPERROR, "out of memory");
        status = opendmarc_policy_store_dmarc(pctx, (unsigned char *)record, (unsigned char *)v->dmarc_from,
                                              at_org ? (unsigned char *)org : NULL);
        if (status != DMARC_PARSE_OKAY) {
                opendmarc_policy_connect_shutdown(pctx);
                return auth_dmarc_reason(v, AUTH_PERMERROR, "bad policy record");
        }
        if (spf_domain[0])
                opendmarc_policy_store_spf(pctx, (unsigned char *)spf_domain, auth_dmarc_spf_outcome(v->spf),
                                           v->spf_helo ? DMARC_POLICY_SPF_ORIGIN_HELO : DMARC_POLICY_SPF_ORIGIN_MAILFROM,
                                           NULL);
        for (size_t i = 0; i < n; i++)
                if (v->dkim[i].domain[0])
                        opendmarc_policy_store_dkim(pctx, (unsigned char *)v->dkim[i].domain,
                                                    (unsigned char *)v->dkim[i].selector,
                                                    auth_dmarc_dkim_outcome(v->dkim[i].result), NULL);
        /* The policy that applies, whatever pct= samples: sp= for a
         * subdomain whose record is its organization's, when it is set. */
        opendmarc_policy_fetch_p(pctx, &p);
        opendmarc_policy_fetch_sp(pctx, &sp);
        v->dmarc_policy = auth_dmarc_policy_of(at_org && sp != DMARC_RECORD_P_UNSPECIFIED ? sp : p);
        switch (opendmarc_get_policy_to_enforce(pctx)) {
        case DMARC_POLICY_PASS:
                auth_dmarc_reason(v, AUTH_PASS, "");
                break;
        case DMARC_POLICY_ABSENT:
                auth_dmarc_reason(v, AUTH_NONE, "");
                break;
        default:
                /* Neither an aligned SPF pass nor an aligned DKIM pass;
                 * a temporary failure of either may have hidden one. */
                if (v->spf == AUTH_TEMPERROR || auth_verdict_dkim_summary(v) == AUTH_TEMPERROR)
                        auth_dmarc_reason(v, AUTH_TEMPERROR, "SPF or DKIM could not be checked");
                else
                        auth_dmarc_reason(v, AUTH_FAIL, "");
                break;
        }
        opendmarc_policy_connect_shutdown(pctx);
}
