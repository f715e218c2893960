/* Start-up benchmark: fork + exec + exit of programs whose standard input
 * and output are one end of a socketpair (the shape of an Accept=yes
 * service), RUNS times each. The input (by default "QUIT\r\n") is queued
 * on the socket before the fork, so the figure is the program's own start,
 * its session and its exit, with no waiting on a client.
 *
 *   startup [-n RUNS] [-i INPUT] [-e EXPECT] VARIANT...
 *
 * A VARIANT is "PROGRAM [NAME=VALUE...]": a path and environment variables
 * added for it (space-separated, so no spaces inside). The variants take
 * turns run by run, so a machine that gets busier or quieter during the
 * benchmark weighs on all of them alike. The first variant is the baseline
 * (the empty program); every other one must exit 0 and, with -e, print
 * EXPECT (e.g. "221 "), so a program that fails fast cannot look fast.
 *
 * Prints one line per variant: median, mean, 90th percentile and minimum
 * of the wall time in ms and the median's ratio to the baseline's; then
 * the mean CPU time of the child (user + system, from wait4) and its
 * ratio, which a busy machine disturbs much less than the wall time. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STARTUP_RUNS_MAX 1000000
#define STARTUP_OUTPUT_MAX 65536
#define STARTUP_VARIANTS_MAX 8
#define STARTUP_ENV_MAX 4096

extern char **environ;

struct startup_variant {
        char *argv[2];                     /* the program, NULL */
        char **envp;                       /* environ plus the variant's own */
        const char *expect;                /* NULL: not checked */
        double *ms;
        double total;
        double cpu_total;                  /* the child's user + system time */
};

static double startup_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int startup_cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

/* Splits "PROGRAM NAME=VALUE..." (spec is modified and kept). The
 * environment is built here, not between fork and exec, so that building
 * it is not timed. */
static int startup_variant_parse(struct startup_variant *v, char *spec, long runs)
{
        size_t n_env = 0, n_add = 0;
        char *tok, *save = NULL;

        while (environ[n_env])
                n_env++;
        v->envp = calloc(n_env + STARTUP_ENV_MAX / 2 + 1, sizeof(*v->envp));
        v->ms = calloc((size_t)runs, sizeof(*v->ms));
        if (!v->envp || !v->ms)
                return -ENOMEM;
        v->argv[0] = NULL;
        for (tok = strtok_r(spec, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                if (!strchr(tok, '=')) {
                        if (v->argv[0])
                                return -EINVAL;
                        v->argv[0] = tok;
                        continue;
                }
                if (n_add == STARTUP_ENV_MAX / 2)
                        return -E2BIG;
                v->envp[n_add++] = tok;
        }
        if (!v->argv[0])
                return -EINVAL;
        /* The variant's own settings come first, so getenv() finds them. */
        for (size_t i = 0; i < n_env; i++)
                v->envp[n_add + i] = environ[i];
        return 0;
}

/* One run: 0, or -errno; -ECHILD / -EBADMSG (already reported) for a
 * child that failed or did not say what was expected. */
static int startup_run(const struct startup_variant *v, const char *input, double *ms, double *cpu_ms)
{
        struct rusage ru;
        static char out[STARTUP_OUTPUT_MAX];
        size_t out_len = 0, in_len = strlen(input);
        int sv[2], status;
        double t0;
        pid_t pid;
        ssize_t n;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        if (in_len && write(sv[0], input, in_len) != (ssize_t)in_len) {
                close(sv[0]);
                close(sv[1]);
                return -EIO;
        }
        t0 = startup_now_ms();
        pid = fork();
        if (pid < 0) {
                close(sv[0]);
                close(sv[1]);
                return -errno;
        }
        if (pid == 0) {
                if (dup2(sv[1], 0) < 0 || dup2(sv[1], 1) < 0)
                        _exit(127);
                execve(v->argv[0], v->argv, v->envp);
                _exit(127);
        }
        close(sv[1]);
        if (wait4(pid, &status, 0, &ru) < 0) {
                close(sv[0]);
                return -errno;
        }
        *ms = startup_now_ms() - t0;
        *cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                  (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
        /* The child has exited: whatever it wrote is already queued. */
        while (out_len < sizeof(out) - 1 &&
               (n = recv(sv[0], out + out_len, sizeof(out) - 1 - out_len, MSG_DONTWAIT)) > 0)
                out_len += (size_t)n;
        out[out_len] = '\0';
        close(sv[0]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "startup: %s exited with status %d; output: %s\n",
                        v->argv[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
                return -ECHILD;
        }
        if (v->expect && !strstr(out, v->expect)) {
                fprintf(stderr, "startup: %s did not print \"%s\"; output: %s\n",
                        v->argv[0], v->expect, out);
                return -EBADMSG;
        }
        return 0;
}

int main(int argc, char **argv)
{
        struct startup_variant variants[STARTUP_VARIANTS_MAX];
        const char *input = "QUIT\r\n", *expect = NULL;
        int opt, n_variants, r;
        double base_median = 0, base_cpu = 0;
        long runs = 1000;

        while ((opt = getopt(argc, argv, "n:i:e:")) != -1) {
                switch (opt) {
                case 'n':
                        runs = strtol(optarg, NULL, 10);
                        break;
                case 'i':
                        input = optarg;
                        break;
                case 'e':
                        expect = optarg;
                        break;
                default:
                        goto usage;
                }
        }
        n_variants = argc - optind;
        if (n_variants < 1 || n_variants > STARTUP_VARIANTS_MAX || runs < 1 || runs > STARTUP_RUNS_MAX)
                goto usage;
        for (int i = 0; i < n_variants; i++) {
                memset(&variants[i], 0, sizeof(variants[i]));
                r = startup_variant_parse(&variants[i], argv[optind + i], runs);
                if (r < 0) {
                        fprintf(stderr, "startup: variant %d: %s\n", i, strerror(-r));
                        goto usage;
                }
                variants[i].expect = i > 0 ? expect : NULL;
        }
        /* Not timed: fills the page cache and the dynamic loader's caches. */
        for (int k = 0; k < 10; k++) {
                for (int i = 0; i < n_variants; i++) {
                        double ignored, ignored_cpu;

                        if (startup_run(&variants[i], input, &ignored, &ignored_cpu) < 0)
                                return 1;
                }
        }
        for (long k = 0; k < runs; k++) {
                for (int i = 0; i < n_variants; i++) {
                        double cpu;

                        r = startup_run(&variants[i], input, &variants[i].ms[k], &cpu);
                        if (r < 0) {
                                if (r != -ECHILD && r != -EBADMSG)
                                        fprintf(stderr, "startup: run %ld: %s\n", k, strerror(-r));
                                return 1;
                        }
                        variants[i].total += variants[i].ms[k];
                        variants[i].cpu_total += cpu;
                }
        }
        for (int i = 0; i < n_variants; i++) {
                struct startup_variant *v = &variants[i];
                double median;

                qsort(v->ms, (size_t)runs, sizeof(*v->ms), startup_cmp);
                median = v->ms[runs / 2];
                if (i == 0) {
                        base_median = median;
                        base_cpu = v->cpu_total / runs;
                }
                printf("variant=%d runs=%ld median_ms=%.3f mean_ms=%.3f p90_ms=%.3f min_ms=%.3f "
                       "ratio=%.2f cpu_ms=%.3f cpu_ratio=%.2f\n",
                       i, runs, median, v->total / runs, v->ms[runs * 9 / 10], v->ms[0],
                       base_median > 0 ? median / base_median : 0, v->cpu_total / runs,
                       base_cpu > 0 ? v->cpu_total / runs / base_cpu : 0);
                free(v->ms);
                free(v->envp);
        }
        return 0;
usage:
        fprintf(stderr, "Usage: startup [-n RUNS] [-i INPUT] [-e EXPECT] PROGRAM|\"PROGRAM NAME=VALUE...\"...\n");
        return 2;
}
