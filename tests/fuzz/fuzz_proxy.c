/* libFuzzer target: the PROXY protocol v1 header (smtp_parse_proxy_v1), the
 * first line a trusted load balancer sends.
 *
 * Checked beyond "no crash": the ip buffer is exactly HW_IP_MAX bytes (a
 * sanitizer sees any write past it); on success it holds a NUL-terminated
 * address that inet_pton accepts as IPv4 or IPv6 (or is empty for PROXY
 * UNKNOWN, with port 0), and the port is at most 65535. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *line = malloc(size + 1);
        char *ip = malloc(HW_IP_MAX);
        unsigned char addr[16];
        unsigned port = 70000;
        int r;

        FUZZ_CHECK(line && ip);
        memcpy(line, data, size);
        line[size] = '\0';
        r = smtp_parse_proxy_v1(line, ip, &port);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        if (r == 0) {
                FUZZ_CHECK(memchr(ip, '\0', HW_IP_MAX) != NULL);
                /* Fields are separated by single spaces: no tab, no
                 * run of spaces, no space at the end. */
                FUZZ_CHECK(strncmp(line, "PROXY ", 6) == 0);
                if (ip[0] != '\0')
                        FUZZ_CHECK(!strchr(line, '\t') && !strstr(line, "  ") &&
                                   line[strlen(line) - 1] != ' ');
                if (ip[0] == '\0')
                        FUZZ_CHECK(port == 0 && strncmp(line, "PROXY UNKNOWN", 13) == 0);
                else
                        FUZZ_CHECK(port <= 65535 &&
                                   (inet_pton(AF_INET, ip, addr) == 1 ||
                                    inet_pton(AF_INET6, ip, addr) == 1));
        }
        free(ip);
        free(line);
        return 0;
}
