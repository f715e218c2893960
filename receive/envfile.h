/* Settings read again on reload (hw-receive --listen). systemd reads a
 * unit's EnvironmentFile= only when it starts the service, so a reload
 * reads the file itself: HW_RELOAD_ENV_FILE names it (the listener's unit
 * sets it to its EnvironmentFile=). Without it a reload takes the
 * environment as it is (credentials and TLS files are read again anyway).
 *
 * The syntax is the part of systemd's that hw-webhook.env(5) documents:
 * NAME=VALUE lines, blank lines, comments starting with # or ;, a value
 * optionally in one pair of single or double quotes. Anything else makes
 * the reload fail with the line number, and the settings stay. The file
 * must be readable by the service user (packages make it 0640 root with
 * the service's group). */
#ifndef HW_ENVFILE_H
#define HW_ENVFILE_H

#include <stddef.h>

#define ENVFILE_BYTES_MAX 65536
#define ENVFILE_VARS_MAX 256
#define ENVFILE_NAME_MAX 64

/* At start: notes which names the file sets (systemd already set them), so
 * that a name later removed from the file is removed from the settings.
 * A file the service user cannot read is only a warning here: systemd
 * read it as root. Returns 0. */
int envfile_remember(void);

/* On reload: the file's variables into the environment, the names it no
 * longer sets removed. 0, or -errno with the reason in err (nothing
 * changed then). */
int envfile_reload(char *err, size_t errlen);

#endif
