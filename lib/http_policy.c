/* See http_policy.h. */
#include "http_policy.h"

#include <errno.h>
#include <stddef.h>

/* Sets one option; the first refusal is remembered by name. */
#define HTTP_POLICY_SET(easy, opt, val, refused)                                        \
        (curl_easy_setopt((easy), (opt), (val)) == CURLE_OK ? 0 :                       \
         (*(refused) = *(refused) ? *(refused) : #opt, -EINVAL))

int http_policy_apply(CURL *easy, long timeout_ms, const char *user_agent,
                      const char *ca_file, const char **refused)
{
        int r = 0;

        *refused = NULL;
        r |= HTTP_POLICY_SET(easy, CURLOPT_NOSIGNAL, 1L, refused);
        r |= HTTP_POLICY_SET(easy, CURLOPT_POST, 1L, refused);
        r |= HTTP_POLICY_SET(easy, CURLOPT_FOLLOWLOCATION, 0L, refused);
#if LIBCURL_VERSION_NUM >= 0x075500
        r |= HTTP_POLICY_SET(easy, CURLOPT_PROTOCOLS_STR, "http,https", refused);
#else
        r |= HTTP_POLICY_SET(easy, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS), refused);
#endif
        r |= HTTP_POLICY_SET(easy, CURLOPT_TIMEOUT_MS, timeout_ms, refused);
        r |= HTTP_POLICY_SET(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms, refused);
        r |= HTTP_POLICY_SET(easy, CURLOPT_USERAGENT, user_agent, refused);
        r |= HTTP_POLICY_SET(easy, CURLOPT_SSL_VERIFYPEER, 1L, refused);
        r |= HTTP_POLICY_SET(easy, CURLOPT_SSL_VERIFYHOST, 2L, refused);
        if (ca_file && ca_file[0]) {
                /* One bundle and nothing else: libcurl would also read its
                 * default CA directory, every file of it, per connection. */
                r |= HTTP_POLICY_SET(easy, CURLOPT_CAINFO, ca_file, refused);
                r |= HTTP_POLICY_SET(easy, CURLOPT_CAPATH, (char *)NULL, refused);
        }
        return r ? -EINVAL : 0;
}
