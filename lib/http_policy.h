/* The rules every HTTP request of hw-webhook follows, the webhook POSTs of
 * hw-flush and the decision API call of hw-receive alike, so that the two
 * cannot drift apart: POST, no redirects (a 301/302/303 would turn it
 * into a GET without the message), http and https only, TLS verified
 * against the name, one timeout for the connection and the whole request,
 * no signals (both are single-threaded event loops). */
#ifndef HW_HTTP_POLICY_H
#define HW_HTTP_POLICY_H

#include <curl/curl.h>

/* Applies the rules to easy. ca_file, when not NULL or empty, is the only
 * trust store (libcurl's default CA directory is not read besides it).
 * Every option is checked: one this libcurl refuses must not turn silently
 * into a transfer that follows redirects or speaks another protocol.
 * 0, or -EINVAL with *refused naming the first option refused. */
int http_policy_apply(CURL *easy, long timeout_ms, const char *user_agent,
                      const char *ca_file, const char **refused);

#endif
