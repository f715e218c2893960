/* SPF with libspf2, its DNS through auth_dns.c: libspf2 takes a DNS
 * "layer" (spf_dns.h), and ours turns a DNS message into libspf2's
 * records. */
#include "auth.h"

#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

/* Copies one record's data into slot cnt of rr; false on ENOMEM. */
static bool auth_spf_rr_add(SPF_dns_rr_t *rr, int cnt, const ns_msg *msg, const ns_rr *r)
{
        const unsigned char *rdata = ns_rr_rdata(*r);
        size_t rdlen = ns_rr_rdlen(*r);
        char name[NS_MAXDNAME];

        switch (ns_rr_type(*r)) {
        case ns_t_a:
                if (rdlen != sizeof(struct in_addr) || SPF_dns_rr_buf_realloc(rr, cnt, sizeof(struct in_addr)))
                        return false;
                memcpy(&rr->rr[cnt]->a, rdata, sizeof(struct in_addr));
                return true;
        case ns_t_aaaa:
                if (rdlen != sizeof(struct in6_addr) || SPF_dns_rr_buf_realloc(rr, cnt, sizeof(struct in6_addr)))
                        return false;
                memcpy(&rr->rr[cnt]->aaaa, rdata, sizeof(struct in6_addr));
                return true;
        case ns_t_mx:
        case ns_t_ptr: {
                const unsigned char *p = ns_t_mx == ns_rr_type(*r) ? rdata + 2 : rdata;

                if (rdlen < 3 || dn_expand(ns_msg_base(*msg), ns_msg_end(*msg), p, name, sizeof(name)) < 0 ||
                    SPF_dns_rr_buf_realloc(rr, cnt, strlen(name) + 1))
                        return false;
                strcpy(ns_rr_type(*r) == ns_t_mx ? rr->rr[cnt]->mx : rr->rr[cnt]->ptr, name);
                return true;
        }
        case ns_t_txt: {
                /* The character-strings of one record, joined (RFC 7208 3.3). */
                char *dst;

                if (SPF_dns_rr_buf_realloc(rr, cnt, rdlen + 1))
                        return false;
                dst = rr->rr[cnt]->txt;
                for (size_t at = 0; at < rdlen;) {
                        size_t len = rdata[at++];

                        if (len > rdlen - at)
                                len = rdlen - at;
                        memcpy(dst, rdata + at, len);
                        dst += len;
                        at += len;
                }
                *dst = '\0';
                return true;
        }
        default:
                return false;
        }
}

/* The layer's state: the resolver, and whether any lookup failed for
 * a while (RFC 7208 5: any such failure makes the result temperror, which
 * libspf2 does not always say). */
struct auth_spf_state {
        struct auth_dns *dns;
        bool temporary_failure;
};

static SPF_dns_rr_t *auth_spf_temporary(SPF_dns_server_t *server, const char *domain, ns_type type)
{
        ((struct auth_spf_state *)server->hook)->temporary_failure = true;
        return SPF_dns_rr_new_init(server, domain, type, 0, TRY_AGAIN);
}

static SPF_dns_rr_t *auth_spf_lookup(SPF_dns_server_t *server, const char *domain, ns_type type, int should_cache)
{
        struct auth_dns *dns = ((struct auth_spf_state *)server->hook)->dns;
        unsigned char *answer = malloc(AUTH_DNS_PACKET_MAX);
        SPF_dns_rr_t *rr;
        ns_msg msg;
        int n = answer ? auth_dns_query(dns, domain, type, answer, AUTH_DNS_PACKET_MAX) : -ENOMEM;
        int cnt = 0;

        if (n == -EINVAL) {
                free(answer);
                /* A name that cannot be asked has no records. */
                return SPF_dns_rr_new_init(server, domain, type, 0, HOST_NOT_FOUND);
        }
        if (n < 0 || ns_initparse(answer, n, &msg) < 0) {
                free(answer);
                return auth_spf_temporary(server, domain, type);
        }
        switch (ns_msg_getflag(msg, ns_f_rcode)) {
        case ns_r_noerror:
                break;
        case ns_r_nxdomain:
                free(answer);
                return SPF_dns_rr_new_nxdomain(server, domain);
        default:
                free(answer);
                return auth_spf_temporary(server, domain, type);
        }
        rr = SPF_dns_rr_new_init(server, domain, type, 0, NETDB_SUCCESS);
        for (int i = 0; rr && i < ns_msg_count(msg, ns_s_an); i++) {
                ns_rr r;

                /* CNAMEs were followed by the resolver: only the type asked for. */
                if (ns_parserr(&msg, ns_s_an, i, &r) < 0 || ns_rr_type(r) != type)
                        continue;
                if (auth_spf_rr_add(rr, cnt, &msg, &r))
                        cnt++;
        }
        free(answer);
        if (rr) {
                rr->num_rr = cnt;
                if (!cnt)
                        rr->herrno = NO_DATA;
        }
        return rr;
}

static enum auth_result auth_spf_result(SPF_result_t r)
{
        switch (r) {
        case SPF_RESULT_PASS:
                return AUTH_PASS;
        case SPF_RESULT_FAIL:
                return AUTH_FAIL;
        case SPF_RESULT_SOFTFAIL:
                return AUTH_SOFTFAIL;
        case SPF_RESULT_NEUTRAL:
                return AUTH_NEUTRAL;
        case SPF_RESULT_NONE:
                return AUTH_NONE;
        case SPF_RESULT_TEMPERROR:
                return AUTH_TEMPERROR;
        case SPF_RESULT_PERMERROR:
        default:
                return AUTH_PERMERROR;
        }
}

void auth_spf_check(struct auth_dns *dns, const struct envelope *env, struct auth_verdict *v)
{
        SPF_dns_server_t *layer = calloc(1, sizeof(*layer));
        struct auth_spf_state state = { .dns = dns };
        SPF_server_t *server = NULL;
        SPF_request_t *req = NULL;
        SPF_response_t *resp = NULL;
        bool v6 = strchr(env->remote_ip, ':') != NULL;

        v->spf_helo = !env->sender[0];
        snprintf(v->spf_identity, sizeof(v->spf_identity), "%s", env->sender[0] ? env->sender : env->helo);
        /* No identity to check: RFC 7208 2.3 and 4.3 give "none". */
        v->spf = AUTH_NONE;
        if (!layer || !v->spf_identity[0] || (v->spf_helo && env->helo[0] == '['))
                goto out;
        /* libspf2's messages would go to stderr; its errors abort, so they
         * stay. */
        SPF_warning_handler = NULL;
        SPF_info_handler = NULL;
        SPF_debug_handler = NULL;
        layer->lookup = auth_spf_lookup;
        layer->destroy = NULL;
        layer->name = "hw-auth";
        layer->hook = &state;
        /* The server does not free a layer it was given (destroy_resolver
         * is 0 in SPF_server_new_dns): it is freed below. */
        server = SPF_server_new_dns(layer, 0);
        if (!server)
                goto out;
        req = SPF_request_new(server);
        if (!req)
                goto out;
        if ((v6 ? SPF_request_set_ipv6_str(req, env->remote_ip) : SPF_request_set_ipv4_str(req, env->remote_ip))) {
                /* No client address (a pipe without REMOTE_ADDR): nothing to check. */
                goto out;
        }
        if (env->helo[0] && env->helo[0] != '[')
                SPF_request_set_helo_dom(req, env->helo);
        if (SPF_request_set_env_from(req, env->sender))
                goto out;
        SPF_request_query_mailfrom(req, &resp);
        v->spf = resp ? auth_spf_result(SPF_response_result(resp)) : AUTH_TEMPERROR;
        /* A lookup that failed or ran out of time can come back from
         * libspf2 as "none" or "permerror" (a record it could not get).
         * pass and fail stand: a match was found, and a failure after it
         * (the exp= text) changes nothing. */
        if ((state.temporary_failure || auth_dns_expired(dns)) && v->spf != AUTH_PASS && v->spf != AUTH_FAIL)
                v->spf = AUTH_TEMPERROR;
out:
        if (resp)
                SPF_response_free(resp);
        if (req)
                SPF_request_free(req);
        if (server)
                SPF_server_free(server);
        free(layer);
}
