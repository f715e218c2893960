/* Header lists as JSON, Mailgun's "message-headers" shape:
 * [["Received", "from ..."], ["Subject", "..."]] in message order. JSON
 * strings must be UTF-8, so names and values go through utf8_sanitize
 * (raw 8-bit header bytes become U+FFFD); RFC 2047 words are not decoded
 * here, as Mailgun leaves them. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "utf8.h"

json_t *hwjson_from_bytes(const char *s, size_t len)
{
        char *clean = utf8_sanitize(s, len);
        json_t *j;

        if (!clean)
                return NULL;
        j = json_string_nocheck(clean);
        free(clean);
        return j;
}

json_t *hwjson_headers_array(const struct header_list *h)
{
        json_t *arr = json_array();

        if (!arr)
                return NULL;
        for (size_t i = 0; i < h->count; i++) {
                const struct header_field *f = &h->fields[i];
                json_t *pair = json_array();
                json_t *name = hwjson_from_bytes(f->name, strlen(f->name));
                json_t *value = hwjson_from_bytes(f->value, f->value_len);
                int r = -1;

                /* json_array_append (not _new) leaves our references
                 * alone, so one cleanup serves success and failure. */
                if (pair && name && value && json_array_append(pair, name) == 0 &&
                    json_array_append(pair, value) == 0)
                        r = json_array_append(arr, pair);
                json_decref(name);
                json_decref(value);
                json_decref(pair);
                if (r < 0) {
                        json_decref(arr);
                        return NULL;
                }
        }
        return arr;
}

char *hwjson_headers_dump(const struct header_list *h)
{
        json_t *arr = hwjson_headers_array(h);
        char *text;

        if (!arr)
                return NULL;
        text = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        return text;
}

static json_t *hwjson_text(const char *s)
{
        return hwjson_from_bytes(s, strlen(s));
}

/* Sets key to value, which it steals; false on ENOMEM. */
static bool hwjson_set(json_t *obj, const char *key, json_t *value)
{
        return value && json_object_set_new_nocheck(obj, key, value) == 0;
}

static json_t *hwjson_auth_dkim(const struct auth_dkim *d)
{
        json_t *o = json_object();

        if (o && hwjson_set(o, "result", json_string(auth_result_name(d->result))) &&
            hwjson_set(o, "domain", hwjson_text(d->domain)) &&
            hwjson_set(o, "selector", hwjson_text(d->selector)) &&
            hwjson_set(o, "algorithm", hwjson_text(d->algorithm)) &&
            hwjson_set(o, "b", hwjson_text(d->b)) &&
            hwjson_set(o, "reason", hwjson_text(d->reason)))
                return o;
        json_decref(o);
        return NULL;
}

json_t *hwjson_auth(const struct auth_verdict *v)
{
        json_t *o = json_object(), *spf = json_object(), *dkim = json_array(), *dmarc = json_object();
        size_t n = v->dkim_count < AUTH_DKIM_MAX ? v->dkim_count : AUTH_DKIM_MAX;
        bool ok = o && spf && dkim && dmarc &&
                  hwjson_set(spf, "result", json_string(auth_result_name(v->spf))) &&
                  hwjson_set(spf, "identity", json_string(v->spf_helo ? "helo" : "mailfrom")) &&
                  hwjson_set(spf, "value", hwjson_text(v->spf_identity)) &&
                  hwjson_set(dmarc, "result", json_string(auth_result_name(v->dmarc))) &&
                  hwjson_set(dmarc, "from", hwjson_text(v->dmarc_from)) &&
                  hwjson_set(dmarc, "policy", json_string(auth_policy_name(v->dmarc_policy))) &&
                  hwjson_set(dmarc, "reason", hwjson_text(v->dmarc_reason));

        for (size_t i = 0; ok && i < n; i++) {
                json_t *d = hwjson_auth_dkim(&v->dkim[i]);

                ok = d && json_array_append_new(dkim, d) == 0;
        }
        if (ok && hwjson_set(o, "spf", json_incref(spf)) && hwjson_set(o, "dkim", json_incref(dkim)) &&
            hwjson_set(o, "dmarc", json_incref(dmarc))) {
                json_decref(spf);
                json_decref(dkim);
                json_decref(dmarc);
                return o;
        }
        json_decref(o);
        json_decref(spf);
        json_decref(dkim);
        json_decref(dmarc);
        return NULL;
}

char *hwjson_auth_dump(const struct auth_verdict *v)
{
        json_t *j = hwjson_auth(v);
        char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

        json_decref(j);
        return text;
}
