/* Reading the environment file again on reload; see envfile.h. */
#include "envfile.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

struct envfile {
        char text[ENVFILE_BYTES_MAX + 1];
        char *names[ENVFILE_VARS_MAX];
        char *values[ENVFILE_VARS_MAX];
        unsigned count;
};

/* The names the file set last time; kept across reloads. */
static char envfile_names[ENVFILE_VARS_MAX][ENVFILE_NAME_MAX];
static unsigned envfile_count;

static int envfile_read(const char *path, char *buf, char *err, size_t errlen)
{
        size_t got = 0;
        ssize_t n;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0) {
                snprintf(err, errlen, "HW_RELOAD_ENV_FILE=%s: %s", path, strerror(errno));
                return -errno;
        }
        while ((n = read(fd, buf + got, ENVFILE_BYTES_MAX + 1 - got)) > 0 && got < ENVFILE_BYTES_MAX + 1)
                got += (size_t)n;
        if (n < 0 || got > ENVFILE_BYTES_MAX) {
                int e = n < 0 ? errno : EFBIG;

                snprintf(err, errlen, "HW_RELOAD_ENV_FILE=%s: %s", path,
                         n < 0 ? strerror(e) : "larger than 64 KiB");
                close(fd);
                return -e;
        }
        close(fd);
        buf[got] = '\0';
        return 0;
}

static char *envfile_trim(char *s)
{
        char *end;

        while (*s == ' ' || *s == '\t')
                s++;
        end = s + strlen(s);
        while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
                *--end = '\0';
        return s;
}

static int envfile_line(struct envfile *f, char *line, unsigned no, char *err, size_t errlen)
{
        char *eq, *name, *value;
        size_t len;

        line = envfile_trim(line);
        if (!*line || *line == '#' || *line == ';')
                return 0;
        eq = strchr(line, '=');
        if (!eq) {
                snprintf(err, errlen, "line %u: not NAME=VALUE", no);
                return -EINVAL;
        }
        *eq = '\0';
        name = envfile_trim(line);
        value = envfile_trim(eq + 1);
        len = strlen(name);
        if (!len || len >= ENVFILE_NAME_MAX || isdigit((unsigned char)name[0]) ||
            strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != len) {
                snprintf(err, errlen, "line %u: not a variable name", no);
                return -EINVAL;
        }
        len = strlen(value);
        if (len >= 2 && (value[0] == '"' || value[0] == '\'') && value[len - 1] == value[0]) {
                value[len - 1] = '\0';
                value++;
        }
        if (f->count >= ENVFILE_VARS_MAX) {
                snprintf(err, errlen, "more than %d variables", ENVFILE_VARS_MAX);
                return -E2BIG;
        }
        f->names[f->count] = name;
        f->values[f->count] = value;
        f->count++;
        return 0;
}

static int envfile_parse(struct envfile *f, const char *path, char *err, size_t errlen)
{
        char *line, *next;
        unsigned no = 0;
        int r = envfile_read(path, f->text, err, errlen);

        f->count = 0;
        for (line = f->text; r >= 0 && line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                r = envfile_line(f, line, ++no, err, errlen);
        }
        return r;
}

static void envfile_keep_names(const struct envfile *f)
{
        for (unsigned i = 0; i < f->count; i++)
                snprintf(envfile_names[i], ENVFILE_NAME_MAX, "%s", f->names[i]);
        envfile_count = f->count;
}

int envfile_remember(void)
{
        static struct envfile f;
        const char *path = getenv("HW_RELOAD_ENV_FILE");
        char err[512];
        int r;

        if (!path || !*path)
                return 0;
        r = envfile_parse(&f, path, err, sizeof(err));
        /* systemd read the file at start, as root: serving goes on, and
         * only a reload will fail and say why. */
        if (r < 0)
                log_msg(LOG_WARNING, "reload will not work: %s", err);
        else
                envfile_keep_names(&f);
        return 0;
}

int envfile_reload(char *err, size_t errlen)
{
        static struct envfile f;
        const char *path = getenv("HW_RELOAD_ENV_FILE");
        int r;

        if (!path || !*path)
                return 0;
        r = envfile_parse(&f, path, err, errlen);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < envfile_count; i++) {
                bool kept = false;

                for (unsigned j = 0; j < f.count && !kept; j++)
                        kept = strcmp(envfile_names[i], f.names[j]) == 0;
                if (!kept)
                        unsetenv(envfile_names[i]);
        }
        for (unsigned i = 0; i < f.count; i++)
                if (setenv(f.names[i], f.values[i], 1) < 0) {
                        snprintf(err, errlen, "%s: %s", f.names[i], strerror(errno));
                        return -errno;
                }
        envfile_keep_names(&f);
        return 0;
}
