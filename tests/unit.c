/* The runner and the environment every unit test shares (unit.h). */
#include <stdlib.h>

#include "unit.h"

static const char *const config_vars[] = {
        "WEBHOOK_URL", "WEBHOOK_ROLE_URL", "WEBHOOK_SIGNING_KEY", "WEBHOOK_TIMEOUT_MS",
        "ROLE_ADDRESSES", "RETRY_INTERVAL_MS", "RETRY_MAX_INTERVAL_MS", "MAX_RETRY_AGE_MS",
        "FLUSH_CONCURRENCY", "WEBHOOK_DECISION_URL", "WEBHOOK_DECISION_TOKEN",
        "WEBHOOK_DECISION_PAYLOAD_MODE", "ACCEPT_ALL_RECIPIENTS", "ACCEPTED_DOMAINS",
        "SMTP_TLS_CERT_PATH", "SMTP_TLS_KEY_PATH", "SPOOL_DIR", "SMTP_MAX_RECIPIENTS",
        "CREDENTIALS_DIRECTORY", "SMTP_HOSTNAME", "SMTP_PROXY_TRUSTED", "SPOOL_MIN_FREE_BYTES",
        "SMTP_IDLE_TIMEOUT_MS", "SMTP_COMMAND_DEADLINE_MS", "SMTP_DATA_MIN_RATE",
        "SMTP_SESSION_DEADLINE_MS", "SMTP_TLS_PRIORITY", NULL,
};

void unit_clear_env(void)
{
        for (size_t i = 0; config_vars[i]; i++)
                unsetenv(config_vars[i]);
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
