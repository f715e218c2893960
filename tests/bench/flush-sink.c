/* flush-sink: a fast webhook for benchmarks (libmicrohttpd). Accepts any
 * POST, reads and counts the body, answers 200 ("ok"). With a delay it
 * answers that many ms late, one thread per connection, to stand for a
 * slow application.
 *
 *   flush-sink PORT_FILE [DELAY_MS]
 *
 * Writes its port to PORT_FILE; on SIGTERM prints "requests bytes
 * cpu-seconds" (user + system, all threads), so a benchmark can tell
 * whether the sink or its client was the limit. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

static atomic_ulong sink_requests;
static atomic_ullong sink_bytes;
static unsigned sink_delay_ms;
static volatile sig_atomic_t sink_stop;

static void sink_on_term(int sig)
{
        sink_stop = 1;
}

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result sink_result;
#else
typedef int sink_result;
#endif

static sink_result sink_handle(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **state)
{
        static int first;
        static const char ok[] = "ok\n";
        struct MHD_Response *resp;
        sink_result r;

        if (*state == NULL) {
                *state = &first;
                return MHD_YES;
        }
        if (*upload_size > 0) {
                sink_bytes += *upload_size;
                *upload_size = 0;
                return MHD_YES;
        }
        if (sink_delay_ms) {
                struct timespec ts = { sink_delay_ms / 1000, (long)(sink_delay_ms % 1000) * 1000000L };
                nanosleep(&ts, NULL);
        }
        sink_requests++;
        resp = MHD_create_response_from_buffer(sizeof(ok) - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
        r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return r;
}

int main(int argc, char **argv)
{
        struct MHD_Daemon *d;
        const union MHD_DaemonInfo *info;
        struct rusage ru;
        unsigned flags;
        struct sockaddr_in addr = { .sin_family = AF_INET };
        FILE *f;

        if (argc < 2) {
                fprintf(stderr, "usage: flush-sink PORT_FILE [DELAY_MS]\n");
                return 64;
        }
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  /* loopback only */
        sink_delay_ms = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
        flags = sink_delay_ms ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
                              : MHD_USE_EPOLL_INTERNAL_THREAD;
        d = MHD_start_daemon(flags, 0, NULL, NULL, sink_handle, NULL,
                             MHD_OPTION_CONNECTION_LIMIT, 1000U,
                             /* Uploads are read into this pool: with the
                              * default 32 KiB every recv() gets 16 KiB, and
                              * the sink spends twice the CPU per 1 MiB POST. */
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                             MHD_OPTION_THREAD_POOL_SIZE, sink_delay_ms ? 0U : 2U,
                             MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_END);
        if (!d) {
                fprintf(stderr, "flush-sink: cannot start\n");
                return 1;
        }
        info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        f = fopen(argv[1], "w");
        if (!f || fprintf(f, "%u\n", info->port) < 0 || fclose(f) != 0)
                return 1;
        signal(SIGTERM, sink_on_term);
        signal(SIGINT, sink_on_term);
        while (!sink_stop)
                pause();
        MHD_stop_daemon(d);
        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 1;
        printf("%lu %llu %.3f\n", (unsigned long)sink_requests, (unsigned long long)sink_bytes,
               (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
        return 0;
}
