/* RFC 2047 encoded-words to UTF-8.
 *
 *   encoded-word = "=?" charset ["*" language] "?" ("B" / "Q") "?" text "?="
 *
 * Decoding is lenient where real mail is sloppy and strict where leniency
 * would guess: words are recognized anywhere in the value (not only between
 * whitespace) and need not respect the 75-byte limit, B text may lack its
 * "=" padding, and Q accepts lower-case hex. A word whose text does not
 * decode, or whose bytes iconv cannot convert from its charset exactly (no
 * //TRANSLIT, no //IGNORE), stays as written.
 *
 * Whitespace between two adjacent words is dropped when both decode
 * (RFC 2047 section 6.2). Adjacent words in the same charset are converted
 * together, because senders split multibyte characters across words; if
 * that fails, each is tried alone. The result is passed through
 * utf8_sanitize, since the text around the words is raw header bytes. */
#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "rfc2047.h"
#include "utf8.h"

#define RFC2047_CHARSET_MAX 64  /* bytes of a charset name we pass to iconv */

enum rfc2047_seg_type {
        RFC2047_SEG_TEXT,
        RFC2047_SEG_WORD,
};

struct rfc2047_seg {
        enum rfc2047_seg_type type;
        size_t start, end;              /* span in the input */
        char charset[RFC2047_CHARSET_MAX];
        char *bytes;                    /* WORD: the decoded octets */
        size_t len;
        char *utf8;                     /* WORD: converted text, when it converted */
        size_t utf8_len;
        bool ok;                        /* WORD: the word is replaced by utf8 */
};

struct rfc2047_buf {
        char *p;
        size_t len, cap;
};

static int rfc2047_buf_put(struct rfc2047_buf *b, const char *s, size_t n)
{
        if (n > SIZE_MAX - b->len - 1)
                return -ENOMEM;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 64;
                char *p;

                while (cap < b->len + n + 1)
                        cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
                p = realloc(b->p, cap);
                if (!p)
                        return -ENOMEM;
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
}

static int rfc2047_hex(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* Q (section 4.2) into out (room for n bytes); -EINVAL if malformed. */
static int rfc2047_q_decode(const char *s, size_t n, char *out, size_t *olen)
{
        size_t o = 0;

        for (size_t i = 0; i < n; i++) {
                if (s[i] == '_')
                        out[o++] = ' ';
                else if (s[i] == '=') {
                        int hi, lo;

                        if (i + 2 >= n)
                                return -EINVAL;
                        hi = rfc2047_hex(s[i + 1]);
                        lo = rfc2047_hex(s[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        out[o++] = (char)(hi << 4 | lo);
                        i += 2;
                } else
                        out[o++] = s[i];
        }
        *olen = o;
        return 0;
}

/* B (section 4.1, base64) into out (room for n bytes); padding optional. */
static int rfc2047_b_decode(const char *s, size_t n, char *out, size_t *olen)
{
        uint32_t acc = 0;
        size_t o = 0, digits = 0, pad = 0;

        for (size_t i = 0; i < n; i++) {
                int v;

                if (s[i] == '=') {
                        pad++;
                        continue;
                }
                if (pad)
                        return -EINVAL;         /* data after padding */
                v = base64_value(s[i]);
                if (v < 0)
                        return -EINVAL;
                acc = acc << 6 | (uint32_t)v;
                if (++digits % 4 == 0) {
                        out[o++] = (char)(acc >> 16);
                        out[o++] = (char)(acc >> 8);
                        out[o++] = (char)acc;
                        acc = 0;
                }
        }
        switch (digits % 4) {
        case 0:
                if (pad)
                        return -EINVAL;
                break;
        case 1:
                return -EINVAL;                 /* six bits are not a byte */
        case 2:
                if (pad > 2)
                        return -EINVAL;
                out[o++] = (char)(acc >> 4);
                break;
        case 3:
                if (pad > 1)
                        return -EINVAL;
                out[o++] = (char)(acc >> 10);
                out[o++] = (char)(acc >> 2);
                break;
        }
        *olen = o;
        return 0;
}

static bool rfc2047_charset_char(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
               (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
               c == ':' || c == '+';
}

/* Parses an encoded-word at s[i..n) (s[i] == '=' and s[i+1] == '?').
 * Returns the offset just past it, or 0 when it is not a well-formed word
 * whose text decodes. Fills seg (charset upper case, language dropped). */
static size_t rfc2047_word(const char *s, size_t n, size_t i, struct rfc2047_seg *seg)
{
        size_t p = i + 2, cs = p, cs_len, text, text_len, olen = 0;
        char enc;
        int r;

        /* Only [A-Za-z0-9-_.:+] reach iconv: a "/" would let the message
         * choose iconv's //TRANSLIT or //IGNORE modes. */
        while (p < n && rfc2047_charset_char(s[p]))
                p++;
        cs_len = p - cs;
        if (p < n && s[p] == '*') {             /* RFC 2231 language */
                p++;
                while (p < n && (rfc2047_charset_char(s[p])))
                        p++;
        }
        if (cs_len == 0 || cs_len >= RFC2047_CHARSET_MAX || p + 2 >= n || s[p] != '?')
                return 0;
        enc = s[p + 1];
        if (s[p + 2] != '?' || !(enc == 'B' || enc == 'b' || enc == 'Q' || enc == 'q'))
                return 0;
        text = p + 3;
        p = text;
        while (p < n && s[p] > ' ' && s[p] < 0x7f && s[p] != '?')
                p++;
        if (p + 1 >= n || s[p] != '?' || s[p + 1] != '=')
                return 0;
        text_len = p - text;

        seg->bytes = malloc(text_len + 1);
        if (!seg->bytes)
                return SIZE_MAX;
        if (enc == 'B' || enc == 'b')
                r = rfc2047_b_decode(s + text, text_len, seg->bytes, &olen);
        else
                r = rfc2047_q_decode(s + text, text_len, seg->bytes, &olen);
        if (r < 0) {
                free(seg->bytes);
                seg->bytes = NULL;
                return 0;
        }
        for (size_t k = 0; k < cs_len; k++) {
                char c = s[cs + k];
                seg->charset[k] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
        }
        seg->charset[cs_len] = '\0';
        seg->type = RFC2047_SEG_WORD;
        seg->start = i;
        seg->end = p + 2;
        seg->len = olen;
        return seg->end;
}

/* Converts in[0..n) from charset to UTF-8 exactly; -EILSEQ/-EINVAL when it
 * does not convert, -ENOMEM. */
static int rfc2047_convert(const char *charset, const char *in, size_t n,
                           char **out, size_t *olen)
{
        iconv_t cd = iconv_open("UTF-8", charset);
        char *buf = NULL, *ip = (char *)in, *op;
        size_t cap = 0, used = 0, ileft = n;
        bool flushed = false;
        int r = 0;

        if (cd == (iconv_t)-1)
                return errno == ENOMEM ? -ENOMEM : -EINVAL;
        /* Twice the input is enough for most charsets; a few (TSCII) make
         * several characters of one byte, so E2BIG grows the buffer. */
        for (;;) {
                size_t oleft, res;
                char *nb;

                if (cap > (SIZE_MAX - 64) / 2 - n) {
                        r = -ENOMEM;
                        break;
                }
                cap = cap ? cap * 2 : n * 2 + 64;
                nb = realloc(buf, cap);
                if (!nb) {
                        r = -ENOMEM;
                        break;
                }
                buf = nb;
                op = buf + used;
                oleft = cap - used - 1;
                /* The NULL call ends a stateful charset's shift state. */
                if (!flushed)
                        res = iconv(cd, &ip, &ileft, &op, &oleft);
                else
                        res = iconv(cd, NULL, NULL, &op, &oleft);
                if (res != (size_t)-1 && !flushed) {
                        flushed = true;
                        res = iconv(cd, NULL, NULL, &op, &oleft);
                }
                used = (size_t)(op - buf);
                if (res != (size_t)-1)
                        break;
                if (errno != E2BIG) {
                        r = -EILSEQ;    /* EILSEQ, or EINVAL: input cut short */
                        break;
                }
        }
        iconv_close(cd);
        if (r < 0) {
                free(buf);
                return r;
        }
        buf[used] = '\0';
        *out = buf;
        *olen = used;
        return 0;
}

static bool rfc2047_all_wsp(const char *s, size_t a, size_t b)
{
        for (size_t i = a; i < b; i++)
                if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
                        return false;
        return true;
}

/* Splits s into text and word segments. */
static int rfc2047_split(const char *s, size_t n, struct rfc2047_seg **segs, size_t *count)
{
        struct rfc2047_seg *v = NULL;
        size_t c = 0, cap = 0, text = 0, i = 0;

        while (i <= n) {
                struct rfc2047_seg w = { 0 };
                size_t end = 0;

                if (i + 1 < n && s[i] == '=' && s[i + 1] == '?')
                        end = rfc2047_word(s, n, i, &w);
                if (end == SIZE_MAX)
                        goto nomem;
                if (end == 0 && i < n) {
                        i++;
                        continue;
                }
                /* Room for a text segment and the word. */
                if (c + 2 > cap) {
                        size_t nc = cap ? cap * 2 : 8;
                        struct rfc2047_seg *nv = reallocarray(v, nc, sizeof(*nv));
                        if (!nv) {
                                free(w.bytes);
                                goto nomem;
                        }
                        v = nv;
                        cap = nc;
                }
                if (i > text)
                        v[c++] = (struct rfc2047_seg){ .type = RFC2047_SEG_TEXT,
                                                       .start = text, .end = i };
                if (end == 0)
                        break;                  /* i == n */
                v[c++] = w;
                text = i = end;
        }
        *segs = v;
        *count = c;
        return 0;
nomem:
        for (size_t k = 0; k < c; k++)
                free(v[k].bytes);
        free(v);
        return -ENOMEM;
}

/* Converts segs[a..b) (words of one charset separated by whitespace) as
 * one string; on failure, each word alone. */
static int rfc2047_convert_run(struct rfc2047_seg *segs, size_t a, size_t b)
{
        int r = 0;

        /* A single word (the common case) needs no joined copy. */
        if (b - a > 1) {
                struct rfc2047_buf joined = { 0 };

                for (size_t k = a; k < b && r == 0; k++)
                        if (segs[k].type == RFC2047_SEG_WORD)
                                r = rfc2047_buf_put(&joined, segs[k].bytes, segs[k].len);
                if (r == 0)
                        r = rfc2047_convert(segs[a].charset, joined.p ? joined.p : "", joined.len,
                                            &segs[a].utf8, &segs[a].utf8_len);
                free(joined.p);
                if (r == 0) {
                        for (size_t k = a; k < b; k++)
                                segs[k].ok = segs[k].type == RFC2047_SEG_WORD;
                        return 0;
                }
                if (r == -ENOMEM)
                        return r;
        }
        for (size_t k = a; k < b; k++) {
                if (segs[k].type != RFC2047_SEG_WORD)
                        continue;
                r = rfc2047_convert(segs[k].charset, segs[k].bytes, segs[k].len,
                                    &segs[k].utf8, &segs[k].utf8_len);
                if (r == -ENOMEM)
                        return r;
                segs[k].ok = r == 0;
        }
        return 0;
}

char *rfc2047_decode(const char *s)
{
        struct rfc2047_seg *segs = NULL;
        struct rfc2047_buf out = { 0 };
        size_t n = strlen(s), count = 0;
        char *result = NULL;
        int r;

        if (rfc2047_split(s, n, &segs, &count) < 0)
                return NULL;

        /* Runs: words of one charset with only whitespace between them. */
        r = 0;
        for (size_t a = 0; a < count && r == 0;) {
                size_t b = a + 1, last = a;

                if (segs[a].type != RFC2047_SEG_WORD) {
                        a++;
                        continue;
                }
                while (b < count) {
                        if (segs[b].type == RFC2047_SEG_TEXT &&
                            rfc2047_all_wsp(s, segs[b].start, segs[b].end) &&
                            b + 1 < count && segs[b + 1].type == RFC2047_SEG_WORD &&
                            strcmp(segs[b + 1].charset, segs[a].charset) == 0)
                                b += 2;
                        else if (segs[b].type == RFC2047_SEG_WORD &&
                                 strcmp(segs[b].charset, segs[a].charset) == 0)
                                b++;
                        else
                                break;
                        last = b - 1;
                }
                r = rfc2047_convert_run(segs, a, last + 1);
                a = last + 1;
        }

        for (size_t k = 0; k < count && r == 0; k++) {
                struct rfc2047_seg *g = &segs[k];

                if (g->type == RFC2047_SEG_WORD && g->ok) {
                        if (g->utf8)
                                r = rfc2047_buf_put(&out, g->utf8, g->utf8_len);
                } else if (g->type == RFC2047_SEG_TEXT && k > 0 && k + 1 < count &&
                           segs[k - 1].ok && segs[k + 1].ok &&
                           rfc2047_all_wsp(s, g->start, g->end)) {
                        continue;               /* between two decoded words */
                } else
                        r = rfc2047_buf_put(&out, s + g->start, g->end - g->start);
        }
        if (r == 0)
                result = utf8_sanitize(out.p ? out.p : "", out.len);
        free(out.p);
        for (size_t k = 0; k < count; k++) {
                free(segs[k].bytes);
                free(segs[k].utf8);
        }
        free(segs);
        return result;
}
