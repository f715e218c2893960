/* Prints the settings table of lib/config.c, one tab-separated line per
 * setting: name, type, default as documented, min, max, secret, help.
 * tests/config/docs.test compares the documentation with it. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

static const char *const settings_types[] = {
        [CONFIG_STRING] = "string", [CONFIG_URL] = "url", [CONFIG_NUMBER] = "number",
        [CONFIG_BOOL] = "bool", [CONFIG_LIST] = "list", [CONFIG_CHOICE] = "choice",
};

int main(void)
{
        for (size_t i = 0; i < config_settings_count; i++) {
                const struct config_setting *s = &config_settings[i];
                const char *shown = s->doc_default ? s->doc_default :
                                    s->fallback[0] ? s->fallback : "empty";

                printf("%s\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t%s\t%s\n", s->name,
                       settings_types[s->type], shown, s->min, s->max,
                       s->secret ? "secret" : "-", s->help);
        }
        if (fflush(stdout) != 0 || ferror(stdout)) {
                perror("hw-settings");
                return 1;
        }
        return 0;
}
