/* What the counters (lib/metrics.h) cost, against a peer measured in the
 * same run: one system call (getppid), the cheapest thing a process can
 * ask of the kernel. Figures are CPU time.
 *
 *   metrics [-n COUNTS] [-s SESSIONS] DIR
 *
 * - per message: the counting an accepted message does in hw-receive (one
 *   transaction counted) and in hw-flush (one delivery with its latency),
 *   COUNTS times, in ns each; the target is less than one system call;
 * - per session: mapping the existing file and unmapping it, as each
 *   hw-receive process does once, SESSIONS times, in us each; the figure to
 *   hold against the start-up benchmark's (tests/bench/receive/run startup).
 * DIR must exist (a spool root; the file is made there). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

/* This process's CPU time (user + system): what a busy machine disturbs
 * least, and what the kernel's side of mmap and the page faults costs. */
static double bench_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
        long counts = 1000000, sessions = 5000;
        double t0, count_ns, syscall_ns, open_us;
        int opt, dir;

        while ((opt = getopt(argc, argv, "n:s:")) != -1) {
                if (opt == 'n')
                        counts = atol(optarg);
                else if (opt == 's')
                        sessions = atol(optarg);
                else
                        goto usage;
        }
        if (optind != argc - 1 || counts <= 0 || sessions <= 0)
                goto usage;
        dir = open(argv[optind], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0 || metrics_open(dir) < 0) {
                perror(argv[optind]);
                return 1;
        }

        t0 = bench_now_ns();
        for (long i = 0; i < counts; i++) {
                metrics_count_message("accepted", "250 2.0.0 Ok: queued as 1763729000123456-8f3a0c1b2e4d5a6f");
                metrics_count_delivery(METRICS_DELIVERED, 200, false, 1200);
        }
        count_ns = (bench_now_ns() - t0) / (double)counts;

        t0 = bench_now_ns();
        for (long i = 0; i < counts; i++)
                getppid();
        syscall_ns = (bench_now_ns() - t0) / (double)counts;

        metrics_close();
        t0 = bench_now_ns();
        for (long i = 0; i < sessions; i++) {
                metrics_open(dir);
                metrics_count_connection();
                metrics_close();
        }
        open_us = (bench_now_ns() - t0) / (double)sessions / 1e3;

        printf("per accepted message (transaction + delivery counted): %.1f ns\n", count_ns);
        printf("one system call (getppid), the peer:                    %.1f ns\n", syscall_ns);
        printf("ratio %.3f (target < 1): %s\n", count_ns / syscall_ns,
               count_ns < syscall_ns ? "met" : "MISSED");
        printf("per session (map, count the connection, unmap):          %.2f us\n", open_us);
        close(dir);
        return 0;
usage:
        fprintf(stderr, "usage: metrics [-n COUNTS] [-s SESSIONS] DIR\n");
        return 2;
}
