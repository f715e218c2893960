/* DKIM with libopendkim, its key queries through auth_dns.c (the
 * library's query-service hooks). The message is fed as auth.c reads it
 * from the spool file: libopendkim hashes as it goes, so memory does not
 * grow with the body. */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <opendkim/dkim.h>

struct auth_dkim_run {
        DKIM_LIB *lib;
        DKIM *dkim;
        struct auth_dns *dns;
        int answer_len;            /* the last query's: length or -errno */
        bool signed_message;
};

/* The query hooks: the query is made at once, within auth_dns's deadline,
 * so "waiting" only hands the result over. */
static int auth_dkim_query_start(void *service, int type, unsigned char *query, unsigned char *buf,
                                 size_t buflen, void **handle)
{
        struct auth_dkim_run *run = service;

        run->answer_len = auth_dns_query(run->dns, (const char *)query, type, buf, buflen);
        *handle = run;
        return 0;
}

static int auth_dkim_query_cancel(void *service, void *handle)
{
        return 0;
}

static int auth_dkim_query_waitreply(void *service, void *handle, struct timeval *timeout,
                                     size_t *bytes, int *error, int *dnssec)
{
        struct auth_dkim_run *run = service;

        if (error)
                *error = 0;
        if (dnssec)
                *dnssec = DKIM_DNSSEC_UNKNOWN;
        if (run->answer_len == -ETIMEDOUT)
                return DKIM_DNS_EXPIRED;
        if (run->answer_len < 0) {
                if (error)
                        *error = -run->answer_len;
                return DKIM_DNS_ERROR;
        }
        *bytes = (size_t)run->answer_len;
        return DKIM_DNS_SUCCESS;
}

static void auth_dkim_service_close(void *service)
{
}

int auth_dkim_start(struct auth_dkim_run **out, struct auth_dns *dns)
{
        /* Bad signatures are kept so that they are reported; bare LFs are
         * read as line ends, as the signer most likely meant. */
        unsigned int flags = DKIM_LIBFLAGS_BADSIGHANDLES | DKIM_LIBFLAGS_FIXCRLF;
        struct auth_dkim_run *run = calloc(1, sizeof(*run));
        DKIM_STAT status;

        if (!run)
                return -ENOMEM;
        run->dns = dns;
        run->lib = dkim_init(NULL, NULL);
        if (!run->lib) {
                free(run);
                return -ENOMEM;
        }
        dkim_options(run->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags));
        dkim_dns_set_query_service(run->lib, run);
        dkim_dns_set_query_start(run->lib, auth_dkim_query_start);
        dkim_dns_set_query_cancel(run->lib, auth_dkim_query_cancel);
        dkim_dns_set_query_waitreply(run->lib, auth_dkim_query_waitreply);
        dkim_dns_set_close(run->lib, auth_dkim_service_close);
        run->dkim = dkim_verify(run->lib, (const unsigned char *)"hw-auth", NULL, &status);
        if (!run->dkim) {
                dkim_close(run->lib);
                free(run);
                return -ENOMEM;
        }
        *out = run;
        return 0;
}

void auth_dkim_header(struct auth_dkim_run *run, const char *field, size_t len)
{
        /* A field libopendkim refuses (no colon) cannot be signed: skip it. */
        dkim_header(run->dkim, (unsigned char *)field, len);
}

bool auth_dkim_end_of_header(struct auth_dkim_run *run)
{
        DKIM_SIGINFO **sigs;
        int count = 0;

        dkim_eoh(run->dkim);
        run->signed_message = dkim_getsiglist(run->dkim, &sigs, &count) == DKIM_STAT_OK && count > 0;
        return run->signed_message;
}

void auth_dkim_body(struct auth_dkim_run *run, const char *p, size_t len)
{
        dkim_body(run->dkim, (unsigned char *)p, len);
}

/* RFC 8601 2.7.1's words for a signature that did not pass. */
static enum auth_result auth_dkim_error_result(int error, const char **reason)
{
        *reason = dkim_sig_geterrorstr(error);
        switch (error) {
        case DKIM_SIGERROR_BADSIG:
        case DKIM_SIGERROR_KEYREVOKED:
                return AUTH_FAIL;
        case DKIM_SIGERROR_NOKEY:
                return AUTH_PERMERROR;
        case DKIM_SIGERROR_KEYFAIL:
        case DKIM_SIGERROR_MULTIREPLY:
                return AUTH_TEMPERROR;
        default:
                /* Syntax errors of the signature or the key, expiry, an
                 * unknown algorithm: the signature could not be processed. */
                return AUTH_NEUTRAL;
        }
}

static void auth_dkim_report(DKIM_SIGINFO *sig, struct auth_dkim *d, bool out_of_time)
{
        unsigned flags = dkim_sig_getflags(sig);
        int error = dkim_sig_geterror(sig);
        const unsigned char *domain = dkim_sig_getdomain(sig), *selector = dkim_sig_getselector(sig);
        const unsigned char *b = dkim_sig_gettagvalue(sig, false, (unsigned char *)"b");
        const char *reason = "";
        dkim_alg_t alg;

        snprintf(d->domain, sizeof(d->domain), "%s", domain ? (const char *)domain : "");
        snprintf(d->selector, sizeof(d->selector), "%s", selector ? (const char *)selector : "");
        snprintf(d->b, sizeof(d->b), "%.*s", AUTH_B_PREFIX, b ? (const char *)b : "");
        d->algorithm[0] = '\0';
        if (dkim_sig_getsignalg(sig, &alg) == DKIM_STAT_OK)
                snprintf(d->algorithm, sizeof(d->algorithm), "%s",
                         alg == DKIM_SIGN_RSASHA256 ? "rsa-sha256" :
                         alg == DKIM_SIGN_ED25519SHA256 ? "ed25519-sha256" :
                         alg == DKIM_SIGN_RSASHA1 ? "rsa-sha1" : "");
        if ((flags & DKIM_SIGFLAG_PASSED) && dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH) {
                d->result = AUTH_PASS;
        } else if ((flags & DKIM_SIGFLAG_PROCESSED) && dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH) {
                /* The more useful of the two reasons a changed body gives. */
                d->result = AUTH_FAIL;
                reason = "body hash mismatch";
        } else if (error != DKIM_SIGERROR_OK && error != DKIM_SIGERROR_UNKNOWN) {
                d->result = auth_dkim_error_result(error, &reason);
        } else if (flags & DKIM_SIGFLAG_PROCESSED) {
                d->result = AUTH_FAIL;
                reason = "signature mismatch";
        } else {
                d->result = out_of_time ? AUTH_TEMPERROR : AUTH_NEUTRAL;
                reason = out_of_time ? "no time left for the key query" : "not processed";
        }
        snprintf(d->reason, sizeof(d->reason), "%s", reason ? reason : "");
}

void auth_dkim_finish(struct auth_dkim_run *run, struct auth_verdict *v)
{
        DKIM_SIGINFO **sigs;
        int count = 0;

        if (run->signed_message) {
                dkim_eom(run->dkim, NULL);
                if (dkim_getsiglist(run->dkim, &sigs, &count) != DKIM_STAT_OK)
                        count = 0;
        }
        v->dkim_count = (size_t)count;
        for (int i = 0; i < count && i < AUTH_DKIM_MAX; i++)
                auth_dkim_report(sigs[i], &v->dkim[i], auth_dns_expired(run->dns));
        dkim_free(run->dkim);
        dkim_close(run->lib);
        free(run);
}
