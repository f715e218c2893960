/* The runner and the environment every unit test shares (unit.h). */
#include <stdlib.h>

#include "config.h"
#include "unit.h"

/* Every variable of the settings table (lib/config.c), and where
 * credentials come from. */
void unit_clear_env(void)
{
        for (size_t i = 0; i < config_settings_count; i++)
                unsetenv(config_settings[i].name);
        unsetenv("CREDENTIALS_DIRECTORY");
}

int unit_run(Suite *s)
{
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
