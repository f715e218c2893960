/* Test helper, never installed by `make install`: loads the configuration
 * and opens the spool as the programs do, applies hw-receive's own sandbox
 * (receive/sandbox.c), or hw-flush's with `delivery`, and reports what the
 * process can still do, one line each, into SPOOL_DIR/NAME (the only place
 * it can write). The container test runs it as ExecStartPre= of the units,
 * so it sees the unit's settings and the process's own sandbox together.
 * Usage: hw-sandbox-probe NAME PORT [delivery] */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "sandbox.h"
#include "spool.h"

static const char *const probe_dirs[] = {
        "/etc", "/usr", "/var/lib", "/var/log", "/var/spool", "/var/tmp", "/tmp",
        "/root", "/home", "/run", "/dev/shm",
};

static bool probe_write(int dir_fd, const char *dir)
{
        char path[1100];
        int fd;

        if (dir_fd >= 0)
                fd = openat(dir_fd, "hw-probe", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        else {
                snprintf(path, sizeof(path), "%s/hw-probe", dir);
                fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        }
        if (fd < 0)
                return false;
        close(fd);
        if (dir_fd >= 0)
                unlinkat(dir_fd, "hw-probe", 0);
        else
                unlink(path);
        return true;
}

static bool probe_connect(unsigned port)
{
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok;

        if (fd < 0)
                return false;
        ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
        close(fd);
        return ok;
}

int main(int argc, char **argv)
{
        static struct hw_config cfg;
        struct spool spool;
        char err[512];
        FILE *out;
        int fd, r;

        bool delivery = argc == 4 && strcmp(argv[3], "delivery") == 0;

        if ((argc != 3 && !delivery) || strchr(argv[1], '/')) {
                fprintf(stderr, "usage: hw-sandbox-probe NAME PORT [delivery]\n");
                return 64;
        }
        if (config_load(&cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "hw-sandbox-probe: %s\n", err);
                return 0;
        }
        r = spool_open(&spool, cfg.spool_dir);
        if (r < 0) {
                fprintf(stderr, "hw-sandbox-probe: spool: %s\n", strerror(-r));
                return 0;
        }
        r = delivery ? sandbox_apply_delivery(&cfg, spool.root_fd, err, sizeof(err))
                     : sandbox_apply(&cfg, spool.root_fd, err, sizeof(err));
        fd = openat(spool.root_fd, argv[1], O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
        out = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!out) {
                fprintf(stderr, "hw-sandbox-probe: cannot write %s/%s: %s\n", cfg.spool_dir, argv[1],
                        strerror(errno));
                return 0;
        }
        if (r < 0) {
                fprintf(out, "sandbox failed: %s\n", err);
        } else {
                fprintf(out, "sandbox ok\n");
                for (size_t i = 0; i < sizeof(probe_dirs) / sizeof(probe_dirs[0]); i++)
                        if (probe_write(-1, probe_dirs[i]))
                                fprintf(out, "writable %s\n", probe_dirs[i]);
                fprintf(out, "spool %s\n", probe_write(spool.root_fd, NULL) ? "yes" : "no");
                fprintf(out, "network %s\n", probe_connect((unsigned)atoi(argv[2])) ? "yes" : "no");
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                fprintf(out, "inet %s\n", fd >= 0 ? "yes" : "no");
                if (fd >= 0)
                        close(fd);
                /* Only the process's own filter refuses this (the units
                 * allow IPC): a "no" shows that filter is in place. */
                fd = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
                fprintf(out, "ipc %s\n", fd >= 0 ? "yes" : "no");
                if (fd >= 0)
                        shmctl(fd, IPC_RMID, NULL);
                /* A program that runs ends this one: no line means "yes". */
                fflush(out);
                execl("/bin/sh", "sh", "-c", "exit 0", (char *)NULL);
                fprintf(out, "exec no\n");
        }
        if (fclose(out) != 0)
                fprintf(stderr, "hw-sandbox-probe: %s\n", strerror(errno));
        spool_close(&spool);
        config_free(&cfg);
        return 0;
}
