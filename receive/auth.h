/* The parts of hw-auth.so (receive/auth*.c), each one check; auth.c reads
 * the message once and runs them. None of them logs: what went wrong
 * becomes a result word and a reason (lib/auth_verdict.h). */
#ifndef HW_AUTH_H
#define HW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth_dns.h"
#include "auth_verdict.h"
#include "spool.h"

/* SPF (RFC 7208) of the MAIL FROM domain, or of the HELO name for <>,
 * for the client's address: fills v->spf, spf_helo, spf_identity. */
void auth_spf_check(struct auth_dns *dns, const struct envelope *env, struct auth_verdict *v);

/* DKIM (RFC 6376): a verifier fed the message as auth.c reads it. */
struct auth_dkim_run;
int auth_dkim_start(struct auth_dkim_run **run, struct auth_dns *dns);
/* One header field as it is in the message, without its final line end. */
void auth_dkim_header(struct auth_dkim_run *run, const char *field, size_t len);
/* After the last header field: false when there is no signature, and no
 * body need be fed. */
bool auth_dkim_end_of_header(struct auth_dkim_run *run);
void auth_dkim_body(struct auth_dkim_run *run, const char *p, size_t len);
/* Verifies every signature and fills v->dkim; frees run. */
void auth_dkim_finish(struct auth_dkim_run *run, struct auth_verdict *v);

/* DMARC (RFC 7489) for the From: domain, with the SPF and DKIM results
 * already in v; from is the From: field's value and from_count how many
 * From: fields the message has. Fills v->dmarc*. */
void auth_dmarc_check(struct auth_dns *dns, const struct envelope *env, const char *from,
                      unsigned from_count, struct auth_verdict *v);

#endif
