/*
 * Webhook POSTs through one curl multi handle: up to `concurrency`
 * transfers at once over reused connections (HTTP/2 when an https server
 * offers it). Easy handles are kept in a pool and reused, so their
 * connections and TLS sessions live for the whole run. Redirects are not
 * followed, by design: a 301/302/303 would become a GET without the
 * message and a 200 to that would lose it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "deliver.h"
#include "http_policy.h"
#include "log.h"

struct deliver {
        CURLM *multi;
        unsigned concurrency;
        unsigned active;
        unsigned nfree;
        unsigned nall;                    /* handles made so far, up to concurrency */
        CURL **free_easy;                 /* stack of idle handles */
        CURL **all_easy;
        const struct hw_config *cfg;
        char ca_file[PATH_MAX];           /* trust anchors; "" = libcurl's default */
};

/* Every option is checked: an option this libcurl does not know must not
 * silently turn into a transfer that follows redirects or speaks ftp. */
#define deliver_setopt(easy, opt, val) deliver_setopt_check(curl_easy_setopt((easy), (opt), (val)), #opt)

static int deliver_setopt_check(CURLcode code, const char *name)
{
        if (code == CURLE_OK)
                return 0;
        log_msg(LOG_ERR, "libcurl refused %s: %s", name, curl_easy_strerror(code));
        return -EINVAL;
}

int deliver_target_init(struct deliver_target *t, const char *url)
{
        CURLU *u;
        char *user = NULL, *password = NULL, *plain = NULL;
        int r = -EINVAL;

        memset(t, 0, sizeof(*t));
        u = curl_url();
        if (!u)
                return -ENOMEM;
        if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
                goto out;
        if (curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE) == CURLUE_OK) {
                if (curl_url_get(u, CURLUPART_PASSWORD, &password, CURLU_URLDECODE) != CURLUE_OK)
                        password = NULL;
                t->user = strdup(user);
                t->password = strdup(password ? password : "");
                if (!t->user || !t->password) {
                        r = -ENOMEM;
                        goto out;
                }
                if (curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
                    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK)
                        goto out;
        }
        if (curl_url_get(u, CURLUPART_URL, &plain, 0) != CURLUE_OK)
                goto out;
        if (strlen(plain) >= sizeof(t->url)) {
                r = -ENAMETOOLONG;
                goto out;
        }
        strcpy(t->url, plain);
        r = 0;
out:
        curl_free(user);
        curl_free(password);
        curl_free(plain);
        curl_url_cleanup(u);
        if (r < 0)
                deliver_target_free(t);
        return r;
}

void deliver_target_free(struct deliver_target *t)
{
        if (t->password)
                explicit_bzero(t->password, strlen(t->password));
        free(t->user);
        free(t->password);
        t->user = t->password = NULL;
}

static size_t deliver_read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
        struct deliver_job *job = userdata;
        ssize_t n = payload_read(job->payload, buf, size * nitems);

        if (n < 0) {
                job->read_error = (int)n;
                return CURL_READFUNC_ABORT;
        }
        return (size_t)n;
}

/* libcurl rewinds to resend, e.g. on a reused connection the server had
 * closed; only a rewind to the start is ever needed. */
static int deliver_seek_cb(void *userdata, curl_off_t offset, int origin)
{
        struct deliver_job *job = userdata;

        if (origin != SEEK_SET || offset != 0)
                return CURL_SEEKFUNC_CANTSEEK;
        payload_rewind(job->payload);
        return CURL_SEEKFUNC_OK;
}

/* Of the answer's header, only Retry-After is kept (printable ASCII,
 * trimmed, bounded); a new status line (an interim 1xx) starts afresh. */
static size_t deliver_header_cb(char *line, size_t size, size_t nitems, void *userdata)
{
        static const char name[] = "Retry-After:";
        struct deliver_job *job = userdata;
        size_t len = size * nitems, o = 0;

        if (len >= 5 && strncmp(line, "HTTP/", 5) == 0)
                job->retry_after[0] = '\0';
        if (len < sizeof(name) - 1 || strncasecmp(line, name, sizeof(name) - 1) != 0)
                return len;
        for (size_t i = sizeof(name) - 1; i < len && o + 1 < sizeof(job->retry_after); i++)
                if ((line[i] > ' ' && line[i] < 0x7f) || (line[i] == ' ' && o > 0))
                        job->retry_after[o++] = line[i];
        while (o > 0 && job->retry_after[o - 1] == ' ')
                o--;
        job->retry_after[o] = '\0';
        return len;
}

/* Appends one header line to *list: false when there is no memory (what
 * was appended stays, for the caller to free). Most lines fit the stack
 * buffer; a longer one (relay's X-Envelope-To with many recipients, whose
 * count SMTP_MAX_RECIPIENTS bounds) gets one of its size. */
static bool deliver_header_add(struct curl_slist **list, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static bool deliver_header_add(struct curl_slist **list, const char *fmt, ...)
{
        char buf[DELIVER_HEADER_MAX], *line = buf;
        struct curl_slist *h = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (n < 0)
                return false;
        if ((size_t)n >= sizeof(buf)) {
                line = malloc((size_t)n + 1);
                if (!line)
                        return false;
                va_start(ap, fmt);
                vsnprintf(line, (size_t)n + 1, fmt, ap);
                va_end(ap);
        }
        h = curl_slist_append(*list, line);
        if (line != buf)
                free(line);
        if (!h)
                return false;
        *list = h;
        return true;
}

/* This attempt's request headers: the payload's Content-Type and headers
 * of its own, the delivery id, and the Standard Webhooks signature when
 * there is one; NULL on failure. */
static struct curl_slist *deliver_job_headers(const struct deliver_job *job)
{
        const struct sign_standard *std = job->standard;
        const struct payload *p = job->payload;
        struct curl_slist *list = NULL;
        /* No "Expect: 100-continue" round trip before large bodies. */
        bool ok = deliver_header_add(&list, "Expect:") &&
                  deliver_header_add(&list, "Content-Type: %s", p->content_type);

        for (const char *h = p->headers; ok && h && *h;) {
                const char *nl = strchr(h, '\n');
                int n = nl ? (int)(nl - h) : (int)strlen(h);
                const char *colon = memchr(h, ':', (size_t)n);
                int name_len = colon ? (int)(colon - h) : n;

                /* libcurl leaves out "Name:" with an empty value; "Name;"
                 * is how it is told to send the header empty (relay's
                 * X-Envelope-From for <>). */
                if (colon && strspn(colon + 1, " ") == (size_t)(n - name_len - 1))
                        ok = deliver_header_add(&list, "%.*s;", name_len, h);
                else
                        ok = deliver_header_add(&list, "%.*s", n, h);
                h += n + (nl ? 1 : 0);
        }
        if (ok && job->delivery_id)
                ok = deliver_header_add(&list, DELIVER_ID_HEADER ": %s", job->delivery_id);
        if (ok && std && job->delivery_id)
                ok = deliver_header_add(&list, "webhook-id: %s", job->delivery_id) &&
                     deliver_header_add(&list, "webhook-timestamp: %s", std->timestamp) &&
                     deliver_header_add(&list, "webhook-signature: %s", std->signature);
        if (!ok) {
                curl_slist_free_all(list);
                return NULL;
        }
        return list;
}

/* The webhook's answer body is not used. */
static size_t deliver_discard_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        return size * nmemb;
}

static int deliver_easy_setup(struct deliver *d, CURL *easy, struct curl_slist *headers)
{
        const struct hw_config *cfg = d->cfg;
        long timeout = cfg->timeout_ms > LONG_MAX ? LONG_MAX : (long)cfg->timeout_ms;
        const char *refused;
        int r = 0;

        r |= deliver_setopt(easy, CURLOPT_HTTPHEADER, headers);
        r |= deliver_setopt(easy, CURLOPT_READFUNCTION, deliver_read_cb);
        r |= deliver_setopt(easy, CURLOPT_SEEKFUNCTION, deliver_seek_cb);
        r |= deliver_setopt(easy, CURLOPT_WRITEFUNCTION, deliver_discard_cb);
        r |= deliver_setopt(easy, CURLOPT_HEADERFUNCTION, deliver_header_cb);
        r |= deliver_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        if (http_policy_apply(easy, timeout, "hw-flush/" HW_VERSION, d->ca_file, &refused) < 0) {
                log_msg(LOG_ERR, "libcurl refused %s", refused);
                r = -EINVAL;
        }
        return r ? -EINVAL : 0;
}

static struct curl_slist *deliver_headers;

/* The trust anchors: WEBHOOK_CA_FILE replaces the system's store. Without
 * it, a libcurl that knows only a CA directory (Debian's: /etc/ssl/certs)
 * has GnuTLS parse all of it for each connection, every certificate three
 * times over (its file, its hash link, the bundle), 8 MiB at the peak; the
 * bundle that update-ca-certificates keeps in that directory holds each
 * once. A libcurl with a default bundle (Fedora's) is left as it is. */
static void deliver_pick_ca(struct deliver *d, CURL *easy)
{
        d->ca_file[0] = '\0';
        if (d->cfg->webhook_ca_file[0]) {
                snprintf(d->ca_file, sizeof(d->ca_file), "%s", d->cfg->webhook_ca_file);
                return;
        }
#if LIBCURL_VERSION_NUM >= 0x075400
        {
                char *info = NULL, *path = NULL;
                int n;

                if (curl_easy_getinfo(easy, CURLINFO_CAINFO, &info) != CURLE_OK || info ||
                    curl_easy_getinfo(easy, CURLINFO_CAPATH, &path) != CURLE_OK || !path)
                        return;
                n = snprintf(d->ca_file, sizeof(d->ca_file), "%s/ca-certificates.crt", path);
                if (n < 0 || (size_t)n >= sizeof(d->ca_file) || access(d->ca_file, R_OK) != 0)
                        d->ca_file[0] = '\0';
        }
#endif
}

/* LIBSSH2_INIT_NO_CRYPTO in <libssh2.h>, which is not needed otherwise. */
#define DELIVER_LIBSSH2_INIT_NO_CRYPTO 0x0001

static void (*deliver_ssh2_exit)(void);

int deliver_global_init(void)
{
        int (*ssh2_init)(int);

        /* Debian's libcurl links libssh2, and curl_global_init calls
         * libssh2_init(0), which sets up OpenSSL's libcrypto for SSH that
         * hw-flush never speaks (only http and https are allowed): 1.5 MiB
         * of resident pages. libssh2 sets up its crypto only in its first
         * init, so an init without crypto first leaves it out. Looked up at
         * run time: a libcurl without libssh2 simply lacks the symbol. */
        *(void **)&ssh2_init = dlsym(RTLD_DEFAULT, "libssh2_init");
        if (ssh2_init) {
                if (ssh2_init(DELIVER_LIBSSH2_INIT_NO_CRYPTO) != 0)
                        return -EIO;
                *(void **)&deliver_ssh2_exit = dlsym(RTLD_DEFAULT, "libssh2_exit");
        }
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;
        return 0;
}

void deliver_global_cleanup(void)
{
        curl_slist_free_all(deliver_headers);
        deliver_headers = NULL;
        curl_global_cleanup();
        if (deliver_ssh2_exit)
                deliver_ssh2_exit();
        deliver_ssh2_exit = NULL;
}

/* Makes one more pooled handle. They are made when needed: the usual run,
 * started for one new message, uses one, and each idle handle would cost
 * some 5 KiB of resident memory and its set-up. */
static int deliver_easy_add(struct deliver *d)
{
        CURL *easy = curl_easy_init();
        int r;

        if (!easy)
                return -ENOMEM;
        if (d->nall == 0)
                deliver_pick_ca(d, easy);
        r = deliver_easy_setup(d, easy, deliver_headers);
        if (r < 0) {
                curl_easy_cleanup(easy);
                return r;
        }
        d->all_easy[d->nall++] = easy;
        d->free_easy[d->nfree++] = easy;
        return 0;
}

int deliver_new(struct deliver **out, const struct hw_config *cfg, unsigned concurrency)
{
        struct deliver *d;
        int r = -ENOMEM;

        if (concurrency == 0)
                concurrency = 1;
        if (!deliver_headers) {
                struct curl_slist *h;
                h = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
                /* No "Expect: 100-continue" round trip before large bodies. */
                if (h)
                        h = curl_slist_append(h, "Expect:");
                if (!h)
                        return -ENOMEM;
                deliver_headers = h;
        }
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->cfg = cfg;
        d->concurrency = concurrency;
        d->free_easy = calloc(concurrency, sizeof(CURL *));
        d->all_easy = calloc(concurrency, sizeof(CURL *));
        d->multi = curl_multi_init();
        if (!d->free_easy || !d->all_easy || !d->multi)
                goto fail;
        if (curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)concurrency) != CURLM_OK)
                goto fail_inval;
        /* One handle now, so a refused option shows before any item is
         * claimed; the others as transfers need them. */
        r = deliver_easy_add(d);
        if (r < 0)
                goto fail_r;
        *out = d;
        return 0;
fail_inval:
        r = -EINVAL;
        goto fail_r;
fail:
        r = -ENOMEM;
fail_r:
        deliver_free(d);
        return r;
}

void deliver_free(struct deliver *d)
{
        if (!d)
                return;
        for (unsigned i = 0; i < d->concurrency && d->all_easy; i++) {
                if (!d->all_easy[i])
                        continue;
                if (d->multi)
                        curl_multi_remove_handle(d->multi, d->all_easy[i]);
                curl_easy_cleanup(d->all_easy[i]);
        }
        if (d->multi)
                curl_multi_cleanup(d->multi);
        free(d->free_easy);
        free(d->all_easy);
        free(d);
}

unsigned deliver_active(const struct deliver *d)
{
        return d->active;
}

int deliver_start(struct deliver *d, struct deliver_job *job)
{
        const struct deliver_target *t = job->target;
        CURL *easy;
        int r = 0;

        if (d->nfree == 0) {
                if (d->nall == d->concurrency)
                        return -EBUSY;
                r = deliver_easy_add(d);
                if (r < 0)
                        return r;
        }
        easy = d->free_easy[d->nfree - 1];
        job->status = 0;
        job->curl_code = CURLE_OK;
        job->read_error = 0;
        job->error[0] = '\0';
        job->location[0] = '\0';
        job->retry_after[0] = '\0';
        job->headers = deliver_job_headers(job);
        if (!job->headers)
                return -ENOMEM;

        r |= deliver_setopt(easy, CURLOPT_URL, t->url);
        if (t->user) {
                r |= deliver_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
                r |= deliver_setopt(easy, CURLOPT_USERNAME, t->user);
                r |= deliver_setopt(easy, CURLOPT_PASSWORD, t->password);
        } else {
                r |= deliver_setopt(easy, CURLOPT_USERNAME, NULL);
                r |= deliver_setopt(easy, CURLOPT_PASSWORD, NULL);
        }
        r |= deliver_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)payload_size(job->payload));
        r |= deliver_setopt(easy, CURLOPT_READDATA, job);
        r |= deliver_setopt(easy, CURLOPT_SEEKDATA, job);
        r |= deliver_setopt(easy, CURLOPT_HEADERDATA, job);
        r |= deliver_setopt(easy, CURLOPT_HTTPHEADER, (struct curl_slist *)job->headers);
        r |= deliver_setopt(easy, CURLOPT_ERRORBUFFER, job->error);
        r |= deliver_setopt(easy, CURLOPT_PRIVATE, job);
        if (r || curl_multi_add_handle(d->multi, easy) != CURLM_OK) {
                deliver_setopt(easy, CURLOPT_HTTPHEADER, deliver_headers);
                curl_slist_free_all(job->headers);
                job->headers = NULL;
                return r ? -EINVAL : -ENOMEM;
        }
        job->easy = easy;
        d->nfree--;
        d->active++;
        return 0;
}

static struct deliver_job *deliver_finish(struct deliver *d, CURL *easy, CURLcode code)
{
        struct deliver_job *job = NULL;
        char *location = NULL;

        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&job);
        job->curl_code = code;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &job->status);
        if (code != CURLE_OK && job->error[0] == '\0')
                snprintf(job->error, sizeof(job->error), "%s", curl_easy_strerror(code));
        if (job->status >= 300 && job->status <= 399 &&
            curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location)
                snprintf(job->location, sizeof(job->location), "%s", location);
        curl_multi_remove_handle(d->multi, easy);
        /* The job's buffer and payload go away after done: forget them. */
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(easy, CURLOPT_READDATA, NULL);
        curl_easy_setopt(easy, CURLOPT_SEEKDATA, NULL);
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, NULL);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, deliver_headers);
        curl_slist_free_all(job->headers);
        job->headers = NULL;
        job->easy = NULL;
        d->free_easy[d->nfree++] = easy;
        d->active--;
        return job;
}

int deliver_run(struct deliver *d, void (*done)(struct deliver_job *job, void *ctx), void *ctx)
{
        int ended = 0;

        while (d->active > 0) {
                CURLMsg *msg;
                int running, left;

                if (curl_multi_perform(d->multi, &running) != CURLM_OK)
                        return -EIO;
                while ((msg = curl_multi_info_read(d->multi, &left))) {
                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        /* msg is invalid once the handle is removed: its
                         * fields are read as the arguments, before that. */
                        done(deliver_finish(d, msg->easy_handle, msg->data.result), ctx);
                        ended++;
                }
                if (ended > 0)
                        return ended;
                if (curl_multi_poll(d->multi, NULL, 0, 1000, NULL) != CURLM_OK)
                        return -EIO;
        }
        return ended;
}
