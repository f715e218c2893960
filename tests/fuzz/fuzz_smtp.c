/* libFuzzer target: an SMTP command line as the client sends it, through
 * smtp_parse_command, smtp_parse_path (as sender and as recipient),
 * smtp_parse_bdat, smtp_address_valid and smtp_printable.
 *
 * Checked beyond "no crash": the arguments pointer stays inside the line
 * and follows the verb; a parsed address is NUL-terminated inside its
 * buffer, valid unless it is <> or Postmaster, and carries parameters
 * only for senders; an address valid without SMTPUTF8 is 7-bit and also
 * valid with it; printable output is printable ASCII of the right length;
 * a BDAT size is taken only from plain decimal digits, gives back their
 * value, and "too large" means more than 19 digits. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "smtp_parse.h"

static void fuzz_path(const char *args, bool is_sender)
{
        struct smtp_path p;
        size_t len;
        int r = smtp_parse_path(args, is_sender, &p);

        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENAMETOOLONG || r == -EPROTO);
        if (r < 0)
                return;
        FUZZ_CHECK(memchr(p.addr, '\0', sizeof(p.addr)) != NULL);
        len = strlen(p.addr);
        FUZZ_CHECK(len <= HW_ADDR_MAX);
        /* A space only inside a quoted local part. */
        FUZZ_CHECK(!strchr(p.addr, ' ') || p.addr[0] == '"');
        if (len == 0)
                FUZZ_CHECK(is_sender);
        else if (is_sender || strcasecmp(p.addr, "postmaster") != 0)
                FUZZ_CHECK(smtp_address_valid(p.addr, true));
        /* RCPT TO takes no parameters. */
        if (!is_sender)
                FUZZ_CHECK(p.size == 0 && p.body == BODY_7BIT && !p.smtputf8);
}

static void fuzz_bdat(const char *args)
{
        uint64_t size;
        bool last;
        int r = smtp_parse_bdat(args, &size, &last);
        size_t digits = strspn(args, "0123456789");
        const char *value = args;
        char back[24];

        FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
        /* Every number of 19 digits fits in 64 bits. */
        if (r == -ERANGE)
                FUZZ_CHECK(digits > 19);
        if (r < 0)
                return;
        FUZZ_CHECK(digits > 0);
        if (args[digits] == '\0')
                FUZZ_CHECK(!last);
        else
                FUZZ_CHECK(last && strcasecmp(args + digits, " LAST") == 0);
        /* The value printed back is the digits without their leading zeros. */
        while (*value == '0' && value + 1 < args + digits)
                value++;
        snprintf(back, sizeof(back), "%" PRIu64, size);
        FUZZ_CHECK(strlen(back) == (size_t)(args + digits - value) &&
                   memcmp(back, value, strlen(back)) == 0);
}

static void fuzz_address(const char *addr)
{
        if (smtp_address_valid(addr, false)) {
                for (const char *p = addr; *p; p++)
                        FUZZ_CHECK((unsigned char)*p < 0x80);
                FUZZ_CHECK(smtp_address_valid(addr, true));
        }
}

static void fuzz_printable(const char *s)
{
        static const size_t sizes[] = { 1, 2, 17, HW_CMD_MAX_DEFAULT };

        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                /* Exactly size bytes: a sanitizer sees a write past them. */
                char *dst = malloc(sizes[k]);
                size_t want = strlen(s) < sizes[k] - 1 ? strlen(s) : sizes[k] - 1;

                FUZZ_CHECK(dst);
                smtp_printable(dst, sizes[k], s);
                FUZZ_CHECK(strlen(dst) == want);
                for (size_t i = 0; i < want; i++)
                        FUZZ_CHECK(dst[i] >= 0x20 && dst[i] < 0x7f &&
                                   (dst[i] == s[i] || dst[i] == '?'));
                free(dst);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* The session hands the parsers a NUL-terminated line; one NUL in
         * the input ends it early, as it would there. */
        char *line = malloc(size + 1);
        const char *args;
        enum smtp_cmd cmd;

        FUZZ_CHECK(line);
        memcpy(line, data, size);
        line[size] = '\0';

        cmd = smtp_parse_command(line, &args);
        FUZZ_CHECK(args >= line && args <= line + strlen(line));
        if (cmd == CMD_UNKNOWN)
                FUZZ_CHECK(args == line);
        else
                FUZZ_CHECK(args > line && *args != ' ');

        /* Whatever the verb, both path parsers get the arguments, and the
         * raw line too: they must not rely on the verb having matched. */
        fuzz_path(args, true);
        fuzz_path(args, false);
        fuzz_path(line, true);
        fuzz_bdat(args);
        fuzz_address(args);
        fuzz_address(line);
        fuzz_printable(line);
        free(line);
        return 0;
}
