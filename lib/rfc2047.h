/* RFC 2047 encoded-words in header values ("=?charset?B?...?=") to UTF-8. */
#ifndef HW_RFC2047_H
#define HW_RFC2047_H

/* Decodes encoded-words (B and Q, any charset iconv knows, an RFC 2231
 * language suffix "charset*lang" ignored) into UTF-8. Whitespace between
 * adjacent encoded-words is dropped; undecodable words are left as they
 * are; the result is valid UTF-8 (sanitized). malloc'd; NULL on ENOMEM. */
char *rfc2047_decode(const char *s);

#endif
