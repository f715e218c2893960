/* Runs a program with this process's standard input, output and error and
 * writes its peak resident set size (wait4's ru_maxrss) to a file.
 *
 *   maxrss -o FILE PROGRAM [ARG...]
 *
 * The figure counts the forked child from fork on, so the launcher must be
 * smaller than what it measures: a Python parent (or its vfork) would put
 * its own 10 MiB into the child's maximum. This one is about 1 MiB.
 * Exits with the program's status. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
        const char *out_path = NULL;
        struct rusage ru;
        int opt, status;
        FILE *out;
        pid_t pid;

        while ((opt = getopt(argc, argv, "+o:")) != -1) {
                if (opt != 'o')
                        goto usage;
                out_path = optarg;
        }
        if (!out_path || optind >= argc)
                goto usage;
        pid = fork();
        if (pid < 0) {
                perror("maxrss: fork");
                return 1;
        }
        if (pid == 0) {
                execv(argv[optind], argv + optind);
                fprintf(stderr, "maxrss: %s: %s\n", argv[optind], strerror(errno));
                _exit(127);
        }
        while (wait4(pid, &status, 0, &ru) < 0) {
                if (errno != EINTR) {
                        perror("maxrss: wait4");
                        return 1;
                }
        }
        out = fopen(out_path, "w");
        if (!out || fprintf(out, "peak_rss_kib=%ld\n", ru.ru_maxrss) < 0 || fclose(out) != 0) {
                perror(out_path);
                return 1;
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
usage:
        fprintf(stderr, "Usage: maxrss -o FILE PROGRAM [ARG...]\n");
        return 2;
}
