/* The disk's own ceiling for hw-receive's commit: CONC processes, each
 * repeating what one accepted message costs at least (create in tmp/,
 * write SIZE bytes, fsync, close, rename into pending/, fsync pending/)
 * for SECONDS. No SMTP, no parsing, no process start: what is left is the
 * file system and the device.
 *
 *   disk-ceiling [-c CONC] [-d SECONDS] [-s SIZE] DIR
 *
 * DIR must be empty or absent; tmp/ and pending/ are made in it and the
 * files are left there (as a spool would have them) for the caller to
 * remove. Prints one line with the cycles, cycles per second and the CPU
 * time (user + system) the workers spent per cycle: on a machine whose
 * file system work is CPU-bound, the "disk" ceiling is partly a CPU one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CEILING_CONC_MAX 256
#define CEILING_SIZE_MAX (16 * 1024 * 1024)

static double ceiling_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int ceiling_write_all(int fd, const char *p, size_t len)
{
        while (len) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* One cycle, in the order of spool_commit(). */
static int ceiling_cycle(int tmp_fd, int pending_fd, const char *name, const char *data, size_t size)
{
        int fd = openat(tmp_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        int r;

        if (fd < 0)
                return -errno;
        r = ceiling_write_all(fd, data, size);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && renameat(tmp_fd, name, pending_fd, name) < 0)
                r = -errno;
        if (r == 0 && fsync(pending_fd) < 0)
                r = -errno;
        return r;
}

/* A worker: waits for the start (the parent closes go_fd's other end),
 * runs until the deadline and writes its count to result_fd. */
static int ceiling_worker(const char *dir, int id, double seconds, size_t size, int go_fd, int result_fd)
{
        char path[4096], name[64], c;
        unsigned long count = 0;
        int tmp_fd, pending_fd, r = 0;
        double deadline;
        char *data;

        snprintf(path, sizeof(path), "%s/tmp", dir);
        tmp_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        snprintf(path, sizeof(path), "%s/pending", dir);
        pending_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        data = malloc(size);
        if (tmp_fd < 0 || pending_fd < 0 || !data) {
                perror("disk-ceiling");
                return 1;
        }
        /* Printable bytes, like a message. */
        for (size_t i = 0; i < size; i++)
                data[i] = (i % 78 == 77) ? '\n' : (char)('a' + i % 26);
        if (read(go_fd, &c, 1) < 0)
                return 1;
        deadline = ceiling_now() + seconds;
        while (ceiling_now() < deadline) {
                snprintf(name, sizeof(name), "c%d-%lu", id, count);
                r = ceiling_cycle(tmp_fd, pending_fd, name, data, size);
                if (r < 0) {
                        fprintf(stderr, "disk-ceiling: %s: %s\n", name, strerror(-r));
                        return 1;
                }
                count++;
        }
        if (write(result_fd, &count, sizeof(count)) != sizeof(count))
                return 1;
        return 0;
}

int main(int argc, char **argv)
{
        int conc = 1, go[2], result[2], opt, failed = 0;
        unsigned long total = 0, count;
        double seconds = 5, t0, elapsed, cpu_ms;
        struct rusage ru;
        size_t size = 4096;
        char path[4096];
        const char *dir;

        while ((opt = getopt(argc, argv, "c:d:s:")) != -1) {
                switch (opt) {
                case 'c':
                        conc = atoi(optarg);
                        break;
                case 'd':
                        seconds = atof(optarg);
                        break;
                case 's':
                        size = (size_t)strtoul(optarg, NULL, 10);
                        break;
                default:
                        goto usage;
                }
        }
        if (optind + 1 != argc || conc < 1 || conc > CEILING_CONC_MAX ||
            seconds <= 0 || seconds > 600 || size < 1 || size > CEILING_SIZE_MAX)
                goto usage;
        dir = argv[optind];
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                perror(dir);
                return 1;
        }
        snprintf(path, sizeof(path), "%s/tmp", dir);
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
                perror(path);
                return 1;
        }
        snprintf(path, sizeof(path), "%s/pending", dir);
        if (mkdir(path, 0700) < 0 && errno != EEXIST) {
                perror(path);
                return 1;
        }
        if (pipe(go) < 0 || pipe(result) < 0) {
                perror("pipe");
                return 1;
        }
        for (int i = 0; i < conc; i++) {
                pid_t pid = fork();

                if (pid < 0) {
                        perror("fork");
                        return 1;
                }
                if (pid == 0) {
                        close(go[1]);
                        close(result[0]);
                        _exit(ceiling_worker(dir, i, seconds, size, go[0], result[1]));
                }
        }
        close(go[0]);
        close(result[1]);
        /* Everyone is forked and set up before the clock starts. */
        usleep(100000);
        t0 = ceiling_now();
        close(go[1]);
        for (int i = 0; i < conc; i++) {
                int status;

                if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        failed = 1;
        }
        elapsed = ceiling_now() - t0;
        while (read(result[0], &count, sizeof(count)) == sizeof(count))
                total += count;
        if (failed || getrusage(RUSAGE_CHILDREN, &ru) < 0)
                return 1;
        cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
        printf("concurrency=%d size=%zu cycles=%lu seconds=%.2f cycles_per_s=%.1f cpu_ms_per_cycle=%.3f\n",
               conc, size, total, elapsed, total / elapsed, total ? cpu_ms / total : 0);
        return 0;
usage:
        fprintf(stderr, "Usage: disk-ceiling [-c CONC] [-d SECONDS] [-s SIZE] DIR\n");
        return 2;
}
