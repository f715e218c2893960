/*
 * The request body as a stream: head, the message in a coding, tail. The
 * head and tail are each format's (format.h); the codings are here.
 *
 * The mailgun format is built here too (the others are in format_*.c):
 * application/x-www-form-urlencoded, as Mailgun's raw-MIME route sends it:
 *
 *   recipient=..&sender=..&from=..&subject=..&message-headers=..&
 *   timestamp=..&token=..[&signature=..]&queue-id=..
 *   [&auth-spf=..&auth-dkim=..&auth-dmarc=..&auth-dmarc-policy=..&auth-results=..]
 *   &body-mime=..
 *
 * The auth-* fields are there when hw-receive verified the sender
 * (AUTH_CHECKS): result words (lib/auth_verdict.h) a consumer can read
 * without parsing the Authentication-Results: header, and auth-results,
 * the whole verdict as JSON (lib/json.h).
 *
 * Every byte outside RFC 3986's unreserved set (ALPHA DIGIT - . _ ~) is
 * sent as %XX, space included: form decoders accept %20 as well as '+',
 * and one rule keeps the length arithmetic obvious. body-mime is the file
 * from the body offset to its end, byte for byte; it is measured once (a
 * read of the file) so Content-Length is exact, then encoded while curl
 * asks for it, PAYLOAD_CHUNK bytes at a time: memory stays flat whatever
 * the message size. The raw coding is a pread into curl's buffer; the JSON
 * coding escapes '"', '\\' and controls and turns each invalid UTF-8
 * sequence (each maximal subpart, as Unicode recommends) into U+FFFD, since
 * a JSON string holds Unicode, not bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "header.h"
#include "json.h"
#include "payload.h"
#include "rfc2047.h"
#include "utf8.h"

/* Each byte's form on the wire, with its length in the fourth byte: the
 * encoder is then a table load and one 4-byte store per input byte, with
 * no branch on the byte. Built by the preprocessor from the rule above. */
struct payload_code {
        char s[3];
        unsigned char len;
};

#define PAYLOAD_PLAIN(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || \
                          ((c) >= '0' && (c) <= '9') || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~')
#define PAYLOAD_HEX(n) ((n) < 10 ? '0' + (n) : 'A' + (n) - 10)
#define PAYLOAD_CODE(c) { { PAYLOAD_PLAIN(c) ? (c) : '%', \
                            PAYLOAD_PLAIN(c) ? 0 : PAYLOAD_HEX((c) >> 4), \
                            PAYLOAD_PLAIN(c) ? 0 : PAYLOAD_HEX((c) & 15) }, \
                          PAYLOAD_PLAIN(c) ? 1 : 3 }
#define PAYLOAD_CODE4(c) PAYLOAD_CODE(c), PAYLOAD_CODE((c) + 1), PAYLOAD_CODE((c) + 2), PAYLOAD_CODE((c) + 3)
#define PAYLOAD_CODE16(c) PAYLOAD_CODE4(c), PAYLOAD_CODE4((c) + 4), PAYLOAD_CODE4((c) + 8), PAYLOAD_CODE4((c) + 12)
#define PAYLOAD_CODE64(c) PAYLOAD_CODE16(c), PAYLOAD_CODE16((c) + 16), PAYLOAD_CODE16((c) + 32), PAYLOAD_CODE16((c) + 48)

static const struct payload_code payload_code[256] = {
        PAYLOAD_CODE64(0), PAYLOAD_CODE64(64), PAYLOAD_CODE64(128), PAYLOAD_CODE64(192)
};

/* Sixteen bytes at a time: GCC and clang lower this to SSE2 or NEON, or
 * to plain words where there is neither. */
typedef unsigned char payload_v16 __attribute__((vector_size(16)));

/* 1 in each lane whose byte is sent as %XX, 0 in the others. */
static inline payload_v16 payload_escapes16(const unsigned char *s)
{
        payload_v16 x, plain;

        memcpy(&x, s, sizeof(x));
        /* | 0x20 folds A-Z onto a-z and moves nothing else there. */
        plain = (payload_v16)((payload_v16)((x | 0x20) - 'a') < 26) |
                (payload_v16)((payload_v16)(x - '0') < 10) |
                (payload_v16)(x == '-') | (payload_v16)(x == '.') |
                (payload_v16)(x == '_') | (payload_v16)(x == '~');
        return ~plain & 1;
}

size_t payload_encoded_len(const void *in, size_t len)
{
        const unsigned char *s = in;
        size_t n = len, i = 0;

        while (len - i >= 16) {
                /* A lane counts up to 255 before the lanes are added up. */
                size_t blocks = (len - i) / 16 < 255 ? (len - i) / 16 : 255;
                payload_v16 sum = { 0 };

                for (size_t end = i + 16 * blocks; i < end; i += 16)
                        sum += payload_escapes16(s + i);
                for (unsigned k = 0; k < 16; k++)
                        n += 2 * (size_t)sum[k];
        }
        for (; i < len; i++)
                n += payload_code[s[i]].len - 1u;
        return n;
}

/* Out must hold 3 * len + 8 for payload_encode_wide: its stores run up to
 * 8 bytes past the encoding. */
#define PAYLOAD_WIDE_SLACK 8

/* Encodes len bytes. Unless escapes are dense (sparse: under one byte in
 * three, as in text and base64), runs of plain bytes are copied 8 at a
 * time and the escapes patched in: 1.3 times the table's speed on text,
 * 3 times on base64, but half of it on binary, hence the choice. */
static size_t payload_encode_wide(const unsigned char *s, size_t len, char *out, bool sparse)
{
        size_t o = 0, i = 0;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* The 8-byte copies read up to 8 bytes past a block: stay 8 short. */
        for (; sparse && len - i >= 16 + 8; i += 16) {
                payload_v16 esc = payload_escapes16(s + i);
                uint64_t half[2];

                memcpy(half, &esc, sizeof(half));
                for (unsigned h = 0; h < 2; h++) {
                        const unsigned char *p = s + i + 8 * h;
                        uint64_t bits = half[h];        /* bit 8k set: byte k escapes */
                        unsigned done = 0;

                        while (bits) {
                                unsigned k = (unsigned)__builtin_ctzll(bits) / 8;

                                memcpy(out + o, p + done, 8);
                                o += k - done;
                                memcpy(out + o, &payload_code[p[k]], sizeof(struct payload_code));
                                o += 3;
                                done = k + 1;
                                bits &= bits - 1;
                        }
                        memcpy(out + o, p + done, 8);
                        o += 8 - done;
                }
        }
#endif
        for (; i < len; i++) {
                const struct payload_code *c = &payload_code[s[i]];

                memcpy(out + o, c, sizeof(*c));
                o += c->len;
        }
        return o;
}

size_t payload_encode(const void *in, size_t len, char *out)
{
        const unsigned char *s = in;
        /* out holds 3 * len: the last 3 bytes are stored exactly. */
        size_t wide = len > 3 ? len - 3 : 0;
        size_t o = payload_encode_wide(s, wide, out, true);

        for (size_t i = wide; i < len; i++) {
                const struct payload_code *c = &payload_code[s[i]];

                memcpy(out + o, c->s, c->len);
                o += c->len;
        }
        return o;
}

/* A growing string for the head of the form. */
struct payload_buf {
        char *data;
        size_t len, cap;
};

static int payload_buf_reserve(struct payload_buf *b, size_t more)
{
        size_t cap;
        char *p;

        if (b->len + more + 1 <= b->cap)
                return 0;
        cap = b->cap ? b->cap : 1024;
        while (cap < b->len + more + 1)
                cap *= 2;
        p = realloc(b->data, cap);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        return 0;
}

static int payload_buf_field(struct payload_buf *b, const char *name, const char *value)
{
        size_t nlen = strlen(name), vlen = strlen(value);
        int r;

        r = payload_buf_reserve(b, 2 + nlen + 3 * vlen);
        if (r < 0)
                return r;
        if (b->len > 0)
                b->data[b->len++] = '&';
        memcpy(b->data + b->len, name, nlen);
        b->len += nlen;
        b->data[b->len++] = '=';
        b->len += payload_encode(value, vlen, b->data + b->len);
        b->data[b->len] = '\0';
        return 0;
}

static char *payload_join_rcpt(const struct envelope *env)
{
        size_t len = 1;
        char *s, *p;

        for (size_t i = 0; i < env->rcpt_count; i++)
                len += strlen(env->rcpt[i]) + 1;
        s = malloc(len);
        if (!s)
                return NULL;
        p = s;
        for (size_t i = 0; i < env->rcpt_count; i++) {
                size_t n = strlen(env->rcpt[i]);
                if (i > 0)
                        *p++ = ',';
                memcpy(p, env->rcpt[i], n);
                p += n;
        }
        *p = '\0';
        return s;
}

static char *payload_header_text(const struct header_list *h, const char *name)
{
        const struct header_field *f = header_find(h, name);

        return f ? rfc2047_decode(f->value) : strdup("");
}

int payload_fields_read(struct payload_fields *f, int fd, off_t body_offset,
                        const struct envelope *env)
{
        struct header_list h;
        int r;

        memset(f, 0, sizeof(*f));
        f->env = env;
        f->sender = env->sender;
        f->queue_id = env->id;
        f->recipient = payload_join_rcpt(env);
        if (!f->recipient)
                return -ENOMEM;

        /* The verdict hw-receive recorded, if it checked (lib/auth_verdict.h). */
        r = auth_verdict_read(fd, body_offset, &f->auth);
        if (r < 0) {
                payload_fields_free(f);
                return r;
        }
        if (f->auth.checked && !(f->auth_json = hwjson_auth_dump(&f->auth))) {
                payload_fields_free(f);
                return -ENOMEM;
        }
        if (f->auth.checked) {
                f->spf = auth_result_name(f->auth.spf);
                f->dkim = auth_result_name(auth_verdict_dkim_summary(&f->auth));
                f->dmarc = auth_result_name(f->auth.dmarc);
        }
        r = header_read(fd, body_offset, 0, &h);
        if (r == -E2BIG) {
                /* hw-receive bounds header lines, not their bytes: a header
                 * section over HEADER_BYTES_MAX still goes out, whole in
                 * body-mime, with the parsed fields left empty. */
                f->header_too_big = true;
                f->from = strdup("");
                f->subject = strdup("");
                f->headers_json = strdup("[]");
        } else if (r < 0) {
                payload_fields_free(f);
                return r;
        } else {
                f->from = payload_header_text(&h, "From");
                f->subject = payload_header_text(&h, "Subject");
                f->headers_json = hwjson_headers_dump(&h);
                f->header = h;          /* kept for the formats that read more of it */
        }
        if (!f->from || !f->subject || !f->headers_json) {
                payload_fields_free(f);
                return -ENOMEM;
        }
        return 0;
}

void payload_fields_free(struct payload_fields *f)
{
        free(f->recipient);
        free(f->from);
        free(f->subject);
        free(f->headers_json);
        header_list_free(&f->header);
        free(f->auth_json);
        auth_verdict_free(&f->auth);
        memset(f, 0, sizeof(*f));
}

/* Measures the encoded length of the body with preads of one chunk (the
 * raw coding needs no reading). */
static int payload_measure(struct payload *p)
{
        struct payload_utf8 utf8 = { 0 };
        struct stat st;
        uint64_t pos = 0;

        if (fstat(p->fd, &st) < 0)
                return -errno;
        if (st.st_size < p->body_offset)
                return -EIO;
        p->body_len = (uint64_t)(st.st_size - p->body_offset);
        p->body_encoded_len = 0;
        if (p->coding == PAYLOAD_RAW) {
                p->body_encoded_len = p->body_len;
                return 0;
        }
        while (pos < p->body_len) {
                size_t want = p->body_len - pos < sizeof(p->buf) ? (size_t)(p->body_len - pos) : sizeof(p->buf);
                ssize_t n = pread(p->fd, p->buf, want, p->body_offset + (off_t)pos);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                pos += (uint64_t)n;
                if (p->coding == PAYLOAD_JSON)
                        p->body_encoded_len += payload_json_encode(&utf8, p->buf, (size_t)n,
                                                                   pos == p->body_len, NULL);
                else
                        p->body_encoded_len += payload_encoded_len(p->buf, (size_t)n);
        }
        /* Valid throughout: the sends need not check UTF-8 again. */
        p->body_utf8 = p->coding == PAYLOAD_JSON && !utf8.replaced;
        /* Each escape adds 2 bytes. */
        p->sparse = (p->body_encoded_len - p->body_len) * 3 < 2 * p->body_len;
        return 0;
}

struct payload_auth_fields {
        struct payload_buf *b;
        int error;
};

static void payload_auth_field(void *userdata, const char *name, const char *value)
{
        struct payload_auth_fields *a = userdata;

        if (a->error >= 0)
                a->error = payload_buf_field(a->b, name, value);
}

/* The verdict's fields (auth-spf, auth-dkim, auth-dmarc, auth-dmarc-policy)
 * and auth-results, the whole verdict as JSON; nothing without one. */
static int payload_auth(struct payload_buf *b, const struct payload_fields *f)
{
        struct payload_auth_fields a = { .b = b };

        auth_verdict_fields(&f->auth, payload_auth_field, &a);
        if (a.error >= 0 && f->auth_json)
                a.error = payload_buf_field(b, "auth-results", f->auth_json);
        return a.error;
}

int payload_start(struct payload *p, enum payload_coding coding, char *head, size_t head_len,
                  char *tail, size_t tail_len, int fd, off_t body_offset)
{
        int r;

        memset(p, 0, offsetof(struct payload, buf));
        p->coding = coding;
        p->head = head;
        p->head_len = head_len;
        p->tail = tail;
        p->tail_len = tail ? tail_len : 0;
        p->fd = fd;
        p->body_offset = body_offset;
        r = payload_measure(p);
        if (r < 0) {
                payload_free(p);
                return r;
        }
        payload_rewind(p);
        return 0;
}

int payload_init(struct payload *p, const struct payload_fields *f,
                 const struct sign_fields *sig, int fd, off_t body_offset)
{
        struct payload_buf b = { 0 };
        int r;

        if ((r = payload_buf_field(&b, "recipient", f->recipient)) < 0 ||
            (r = payload_buf_field(&b, "sender", f->sender)) < 0 ||
            (r = payload_buf_field(&b, "from", f->from)) < 0 ||
            (r = payload_buf_field(&b, "subject", f->subject)) < 0 ||
            (r = payload_buf_field(&b, "message-headers", f->headers_json)) < 0 ||
            (r = payload_buf_field(&b, "timestamp", sig->timestamp)) < 0 ||
            (r = payload_buf_field(&b, "token", sig->token)) < 0 ||
            (sig->signature[0] && (r = payload_buf_field(&b, "signature", sig->signature)) < 0) ||
            (r = payload_buf_field(&b, "queue-id", f->queue_id)) < 0 ||
            (r = payload_auth(&b, f)) < 0 ||
            (r = payload_buf_field(&b, "body-mime", "")) < 0)
                goto fail;
        r = payload_start(p, PAYLOAD_FORM, b.data, b.len, NULL, 0, fd, body_offset);
        if (r < 0)
                return r;
        strcpy(p->content_type, "application/x-www-form-urlencoded");
        return 0;
fail:
        free(b.data);
        return r;
}

void payload_free(struct payload *p)
{
        free(p->head);
        free(p->tail);
        free(p->headers);
        p->head = p->tail = p->headers = NULL;
        p->head_len = p->tail_len = 0;
}

void payload_rewind(struct payload *p)
{
        p->head_pos = 0;
        p->tail_pos = 0;
        p->body_pos = 0;
        p->carry_len = p->carry_pos = 0;
        memset(&p->utf8, 0, sizeof(p->utf8));
        p->buf_len = p->buf_pos = 0;
}

/* U+FFFD, for each invalid UTF-8 sequence. */
#define PAYLOAD_REPLACEMENT "\xef\xbf\xbd"

static size_t payload_json_put(char *out, size_t o, const void *s, size_t n)
{
        if (out)
                memcpy(out + o, s, n);
        return n;
}

/* U+FFFD for an invalid sequence, noted in st. */
static size_t payload_json_replace(struct payload_utf8 *st, char *out, size_t o)
{
        st->replaced = 1;
        return payload_json_put(out, o, PAYLOAD_REPLACEMENT, 3);
}

/* '"', '\\' and the controls, as JSON escapes. */
static size_t payload_json_escape(unsigned char c, char *out, size_t o)
{
        static const char hex[] = "0123456789abcdef";
        char e[6] = { '\\', (char)c };

        switch (c) {
        case '"': case '\\': return payload_json_put(out, o, e, 2);
        case '\n': e[1] = 'n'; return payload_json_put(out, o, e, 2);
        case '\r': e[1] = 'r'; return payload_json_put(out, o, e, 2);
        case '\t': e[1] = 't'; return payload_json_put(out, o, e, 2);
        default:
                e[1] = 'u';
                e[2] = e[3] = '0';
                e[4] = hex[c >> 4];
                e[5] = hex[c & 15];
                return payload_json_put(out, o, e, 6);
        }
}

static inline bool payload_json_plain(unsigned char c)
{
        return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* 1 in the top bit of each byte of w that is a control, '"', '\\' or
 * not ASCII (the zero-byte test of "Bit Twiddling Hacks"; its false hits
 * come only after a true one, so "none" is exact). */
#define PAYLOAD_ONES UINT64_C(0x0101010101010101)
#define PAYLOAD_HIGH UINT64_C(0x8080808080808080)
static inline uint64_t payload_json_special8(uint64_t w)
{
        uint64_t q = w ^ (PAYLOAD_ONES * '"'), b = w ^ (PAYLOAD_ONES * '\\');

        return (w | ((w - PAYLOAD_ONES * 0x20) & ~w) | ((q - PAYLOAD_ONES) & ~q) |
                ((b - PAYLOAD_ONES) & ~b)) & PAYLOAD_HIGH;
}

/* The end of the run from i of bytes sent as they are: plain ASCII (eight
 * at a time when they can) and whole, valid UTF-8 sequences. */
static size_t payload_json_run(const unsigned char *s, size_t i, size_t len)
{
        while (i < len) {
                uint64_t w;
                int k;

                if (len - i >= 8) {
                        uint64_t m;

                        memcpy(&w, s + i, 8);
                        m = payload_json_special8(w);
                        if (m == 0) {
                                i += 8;
                                continue;
                        }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                        /* The lowest hit is a true one: skip to it. */
                        i += (unsigned)__builtin_ctzll(m) / 8;
#endif
                }
                if (payload_json_plain(s[i])) {
                        i++;
                        continue;
                }
                if (s[i] < 0x80 || (k = utf8_sequence(s + i, len - i)) < 0)
                        break;
                i += (size_t)k;
        }
        return i;
}

/* Lanes (0xff) of a block of valid UTF-8 that JSON escapes: the
 * controls, '"' and '\\'; in ctl, the controls sent as \u00XX. */
static inline payload_v16 payload_json_escapes16(payload_v16 x, payload_v16 *ctl)
{
        payload_v16 low = (payload_v16)(x < 0x20);

        *ctl = low & ~((payload_v16)(x == '\n') | (payload_v16)(x == '\r') | (payload_v16)(x == '\t'));
        return low | (payload_v16)(x == '"') | (payload_v16)(x == '\\');
}

/* The JSON coding's length of s[0..len), known to be valid UTF-8: two
 * bytes per short escape, six per \u00XX. */
static size_t payload_json_valid_len(const unsigned char *s, size_t len)
{
        size_t n = len, i = 0;

        while (len - i >= 16) {
                /* A lane counts up to 255 before the lanes are added up. */
                size_t blocks = (len - i) / 16 < 255 ? (len - i) / 16 : 255;
                payload_v16 esc_sum = { 0 }, ctl_sum = { 0 };

                for (size_t end = i + 16 * blocks; i < end; i += 16) {
                        payload_v16 x, ctl;

                        memcpy(&x, s + i, sizeof(x));
                        esc_sum += payload_json_escapes16(x, &ctl) & 1;
                        ctl_sum += ctl & 1;
                }
                for (unsigned k = 0; k < 16; k++)
                        n += (size_t)esc_sum[k] + 4 * (size_t)ctl_sum[k];
        }
        for (; i < len; i++)
                n += payload_json_plain(s[i]) || s[i] >= 0x80 ? 0 : payload_json_escape(s[i], NULL, 0) - 1;
        return n;
}

/* The JSON coding of s[0..len), known to be valid UTF-8: the bytes as
 * they are, sixteen at a time, but for the ASCII escapes. */
static size_t payload_json_valid(const unsigned char *s, size_t len, char *out)
{
        size_t o = 0, i = 0;

        if (!out)
                return payload_json_valid_len(s, len);
        while (len - i >= 16) {
                payload_v16 x, esc, ctl;
                uint64_t e[2];
                unsigned k;

                memcpy(&x, s + i, sizeof(x));
                esc = payload_json_escapes16(x, &ctl);
                memcpy(e, &esc, sizeof(e));
                if ((e[0] | e[1]) == 0) {
                        memcpy(out + o, s + i, 16);
                        o += 16;
                        i += 16;
                        continue;
                }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                k = e[0] ? (unsigned)__builtin_ctzll(e[0]) / 8 : 8 + (unsigned)__builtin_ctzll(e[1]) / 8;
#else
                for (k = 0; esc[k] == 0; k++)
                        ;
#endif
                memcpy(out + o, s + i, k);
                o += k;
                o += payload_json_escape(s[i + k], out, o);
                i += k + 1;
        }
        for (; i < len; i++) {
                if (payload_json_plain(s[i]) || s[i] >= 0x80)
                        out[o++] = (char)s[i];
                else
                        o += payload_json_escape(s[i], out, o);
        }
        return o;
}

/* Bytes checked as one piece by the fast path below. */
#define PAYLOAD_JSON_BLOCK 4096

/* From i, whole blocks of valid UTF-8 (ending on a whole sequence) go out
 * through payload_json_valid; returns where it stopped: the end, a block
 * that is not valid UTF-8, or a cut sequence at the end of the piece. */
static size_t payload_json_fast(const unsigned char *s, size_t i, size_t len, bool end, char *out,
                                size_t *o)
{
        while (i < len) {
                size_t n = len - i < PAYLOAD_JSON_BLOCK ? len - i : PAYLOAD_JSON_BLOCK;
                size_t whole = end && i + n == len ? n : utf8_cut(s + i, n);

                if (whole == 0 || !utf8_valid((const char *)s + i, whole))
                        break;
                *o += payload_json_valid(s + i, whole, out ? out + *o : NULL);
                i += whole;
        }
        return i;
}

size_t payload_json_encode(struct payload_utf8 *st, const void *in, size_t len, bool end, char *out)
{
        const unsigned char *s = in;
        size_t o = 0, i = 0, retry = 0;

        while (i < len) {
                unsigned char c;

                /* Valid UTF-8 (most mail) a block at a time; where a block
                 * is not, byte by byte until the next one. */
                if (st->need == 0 && i >= retry) {
                        size_t j = payload_json_fast(s, i, len, end, out, &o);

                        retry = j + PAYLOAD_JSON_BLOCK;
                        i = j;
                        if (i == len)
                                break;
                }
                c = s[i];
                if (st->need > 0) {
                        if (c < st->lo || c > st->hi) {
                                /* The sequence so far is invalid; c starts afresh. */
                                o += payload_json_replace(st, out, o);
                                st->need = st->npend = 0;
                                continue;
                        }
                        st->pend[st->npend++] = c;
                        st->lo = 0x80;
                        st->hi = 0xbf;
                        i++;
                        if (--st->need == 0) {
                                o += payload_json_put(out, o, st->pend, st->npend);
                                st->npend = 0;
                        }
                        continue;
                }
                if (payload_json_plain(c) || c >= 0x80) {
                        size_t j = payload_json_run(s, i, len);

                        if (j > i) {
                                o += payload_json_put(out, o, s + i, j - i);
                                i = j;
                                continue;
                        }
                }
                i++;
                if (c < 0x80) {
                        o += payload_json_escape(c, out, o);
                        continue;
                }
                /* RFC 3629's table: no overlongs, surrogates or beyond U+10FFFF. */
                st->lo = 0x80;
                st->hi = 0xbf;
                if (c >= 0xc2 && c <= 0xdf)
                        st->need = 1;
                else if (c >= 0xe0 && c <= 0xef)
                        st->need = 2, st->lo = c == 0xe0 ? 0xa0 : 0x80, st->hi = c == 0xed ? 0x9f : 0xbf;
                else if (c >= 0xf0 && c <= 0xf4)
                        st->need = 3, st->lo = c == 0xf0 ? 0x90 : 0x80, st->hi = c == 0xf4 ? 0x8f : 0xbf;
                else {
                        o += payload_json_replace(st, out, o);
                        continue;
                }
                st->pend[0] = c;
                st->npend = 1;
        }
        if (end && st->need > 0) {
                o += payload_json_replace(st, out, o);
                st->need = st->npend = 0;
        }
        return o;
}

/* Up to len bytes of the tail. */
static size_t payload_read_tail(struct payload *p, char *out, size_t len)
{
        size_t n = p->tail_len - p->tail_pos < len ? p->tail_len - p->tail_pos : len;

        if (n > 0)
                memcpy(out, p->tail + p->tail_pos, n);
        p->tail_pos += n;
        return n;
}

/* The raw coding: straight from the file into out. */
static ssize_t payload_read_raw(struct payload *p, char *out, size_t len)
{
        uint64_t left = p->body_len - p->body_pos;
        size_t want = left < len ? (size_t)left : len;
        ssize_t r;

        if (want == 0)
                return 0;
        do
                r = pread(p->fd, out, want, p->body_offset + (off_t)p->body_pos);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -EIO;            /* shrank since measured */
        p->body_pos += (uint64_t)r;
        return r;
}

ssize_t payload_read(struct payload *p, char *out, size_t len)
{
        size_t o = 0;

        if (p->head_pos < p->head_len) {
                size_t n = p->head_len - p->head_pos < len ? p->head_len - p->head_pos : len;
                memcpy(out, p->head + p->head_pos, n);
                p->head_pos += n;
                o = n;
        }
        if (p->coding == PAYLOAD_RAW) {
                while (o < len && p->body_pos < p->body_len) {
                        ssize_t r = payload_read_raw(p, out + o, len - o);

                        if (r < 0)
                                return r;
                        o += (size_t)r;
                }
                return (ssize_t)(o + payload_read_tail(p, out + o, len - o));
        }
        while (o < len) {
                const struct payload_code *c;
                size_t room, n;

                if (p->carry_pos < p->carry_len) {
                        out[o++] = p->carry[p->carry_pos++];
                        continue;
                }
                if (p->buf_pos == p->buf_len) {
                        uint64_t left = p->body_len - p->body_pos;
                        size_t want = left < sizeof(p->buf) ? (size_t)left : sizeof(p->buf);
                        ssize_t r;

                        if (want == 0)
                                return (ssize_t)(o + payload_read_tail(p, out + o, len - o));
                        r = pread(p->fd, p->buf, want, p->body_offset + (off_t)p->body_pos);
                        if (r < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        if (r == 0)
                                return -EIO;    /* shrank since measured */
                        p->buf_len = (size_t)r;
                        p->buf_pos = 0;
                        p->body_pos += (uint64_t)r;
                }
                if (p->coding == PAYLOAD_JSON && p->body_utf8) {
                        /* Measured as valid UTF-8: only the ASCII escapes,
                         * and a piece may cut a sequence (6 per byte). */
                        room = (len - o) / 6;
                        n = p->buf_len - p->buf_pos < room ? p->buf_len - p->buf_pos : room;
                        if (n > 0) {
                                o += payload_json_valid(p->buf + p->buf_pos, n, out + o);
                        } else {
                                n = 1;
                                p->carry_len = payload_json_valid(p->buf + p->buf_pos, 1, p->carry);
                                p->carry_pos = 0;
                        }
                        p->buf_pos += n;
                        continue;
                }
                if (p->coding == PAYLOAD_JSON) {
                        bool last;

                        /* As many bytes as surely fit (6 per byte, 3 at the end)... */
                        room = len - o > 3 ? (len - o - 3) / 6 : 0;
                        n = p->buf_len - p->buf_pos < room ? p->buf_len - p->buf_pos : room;
                        if (n == 0)
                                n = 1;  /* ...else one byte into carry */
                        last = p->buf_pos + n == p->buf_len && p->body_pos == p->body_len;
                        if (room > 0) {
                                o += payload_json_encode(&p->utf8, p->buf + p->buf_pos, n, last, out + o);
                        } else {
                                p->carry_len = payload_json_encode(&p->utf8, p->buf + p->buf_pos, n, last,
                                                                   p->carry);
                                p->carry_pos = 0;
                        }
                        p->buf_pos += n;
                        continue;
                }
                /* As many bytes as surely fit with the wide stores... */
                room = len - o > PAYLOAD_WIDE_SLACK ? (len - o - PAYLOAD_WIDE_SLACK) / 3 : 0;
                n = p->buf_len - p->buf_pos < room ? p->buf_len - p->buf_pos : room;
                if (n > 0) {
                        o += payload_encode_wide(p->buf + p->buf_pos, n, out + o, p->sparse);
                        p->buf_pos += n;
                        continue;
                }
                /* ...then, near the end of out, one byte at a time; an
                 * escape that does not fit whole is carried to the next call. */
                c = &payload_code[p->buf[p->buf_pos++]];
                if (c->len <= len - o) {
                        memcpy(out + o, c->s, c->len);
                        o += c->len;
                } else {
                        memcpy(p->carry, c->s, sizeof(c->s));
                        p->carry_len = c->len;
                        p->carry_pos = 0;
                }
        }
        return (ssize_t)o;
}
