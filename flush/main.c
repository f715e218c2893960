/* hw-flush: parse the command line, call the runner or an operator view,
 * map the result to an exit status (sysexits, as systemd expects):
 *   0   done (a normal run that deferred mail is done too, and a normal
 *       run without WEBHOOK_URL, which keeps the mail and says so once)
 *   64  usage: bad options, or an id that is not a dead letter
 *   75  temporary failure: spool or lock unusable; with --now, some mail
 *       was not delivered
 *   78  configuration: a bad setting, or running as root
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "deliver.h"
#include "log.h"
#include "metrics.h"
#include "metrics_text.h"
#include "modules.h"
#include "runner.h"
#include "sandbox.h"
#include "status.h"

/* Sanitizer builds: main_exit() runs the leak check itself. */
#if defined(__SANITIZE_ADDRESS__)
#define MAIN_LEAK_CHECK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define MAIN_LEAK_CHECK 1
#endif
#endif
#ifdef MAIN_LEAK_CHECK
#include <sanitizer/lsan_interface.h>
#endif


enum main_mode {
        MODE_RUN,
        MODE_NOW,
        MODE_STATUS,
        MODE_REQUEUE,
        MODE_REQUEUE_ALL,
        MODE_CHECK_CONFIG,
        MODE_METRICS,
        MODE_METRICS_TEXTFILE,
};

static void main_help(FILE *out)
{
        fputs("Usage: hw-flush [OPTION]\n"
              "Deliver the hw-webhook spool to WEBHOOK_URL (settings from the environment).\n"
              "\n"
              "  (no option)       a normal run: deliver new mail and deferred mail that is\n"
              "                    due, then exit; deferring mail is not an error\n"
              "  --now             deliver all pending and deferred mail, ignoring the retry\n"
              "                    delay (after an outage); progress on a terminal, a summary;\n"
              "                    exit 0 only when everything was delivered, else 75\n"
              "  --status          counts per state, age of the oldest item, the next retry,\n"
              "                    dead letters with their reasons\n"
              "  --metrics[=FORMAT]  the counters and the spool's state for Prometheus:\n"
              "                    FORMAT openmetrics (the default) or prometheus (text 0.0.4)\n"
              "  --metrics-textfile=PATH  the same in the prometheus format, written to PATH\n"
              "                    atomically (node_exporter's textfile collector)\n"
              "  --requeue ID...   move these dead letters back to pending/\n"
              "  --requeue-all     move every dead letter back to pending/\n"
              "  --check-config    check the settings; exit 78 with the reason if bad\n"
              "  --help            this text\n"
              "  --version         the version\n"
              "\n"
              "One run at a time: a second run waits for the first (a lock in SPOOL_DIR).\n"
              "Refuses to run as root unless HW_ALLOW_ROOT=1.\n"
              "Exit status: 0 done, 64 usage, 75 temporary failure, 78 configuration.\n",
              out);
}

/* On failure nothing is left to free: config_load() cleans up after
 * itself, and a loaded configuration the flush check refuses is freed here. */
static int main_load_config(struct hw_config *cfg, bool check_flush)
{
        char err[512] = "";

        if (config_load(cfg, err, sizeof(err)) < 0)
                goto fail;
        if (check_flush && config_check_flush(cfg, err, sizeof(err)) < 0) {
                config_free(cfg);
                goto fail;
        }
        return 0;
fail:
        log_msg(LOG_ERR, "configuration: %s", err[0] ? err : "invalid");
        return -EINVAL;
}

/* The run's own sandbox (receive/sandbox.h), after libcurl has loaded
 * what it loads at start: the unit's sandbox then needs no mount
 * namespace, which costs more than the rest of a run's start. */
static int main_sandbox(const struct hw_config *cfg)
{
        char err[512] = "";
        int fd, r;

        fd = open(cfg->spool_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                log_msg(LOG_ERR, "%s: %s", cfg->spool_dir, strerror(-r));
                return r;
        }
        r = sandbox_apply_delivery(cfg, fd, err, sizeof(err));
        close(fd);
        if (r < 0)
                log_msg(LOG_ERR, "sandbox: %s", err);
        return r;
}

/* The counters of this run (lib/metrics.h); without them it runs all the same. */
static void main_metrics_open(const struct hw_config *cfg)
{
        int fd = open(cfg->spool_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return;                   /* the run reports the spool itself */
        metrics_open(fd);
        close(fd);
}

static int main_run(struct hw_config *cfg, bool now)
{
        struct runner_options opt = { .ignore_backoff = now, .progress = now && isatty(2) };
        struct runner_stats st;
        int r;

        if (deliver_global_init() < 0) {
                log_msg(LOG_ERR, "libcurl initialization failed");
                return EX_TEMPFAIL;
        }
        r = main_sandbox(cfg);
        if (r < 0) {
                deliver_global_cleanup();
                return EX_TEMPFAIL;
        }
        main_metrics_open(cfg);
        r = runner_run(cfg, &opt, &st);
        metrics_sync();
        metrics_close();
        deliver_global_cleanup();
        if (r < 0)
                return EX_TEMPFAIL;
        if (now || st.attempted > 0 || st.recovered > 0)
                log_msg(LOG_INFO, "run done: %u delivered, %u deferred, %u dead, %u failed",
                        st.delivered, st.deferred, st.dead, st.failed);
        if (now) {
                printf("hw-flush: %u delivered, %u deferred, %u dead, %u failed\n",
                       st.delivered, st.deferred, st.dead, st.failed);
                if (st.deferred || st.dead || st.failed)
                        return EX_TEMPFAIL;
        }
        return 0;
}

/* Ends the process without the libraries' destructors. Everything of ours
 * is already closed and libcurl cleaned up; what is left are the exit hooks
 * of the libraries Debian's libcurl pulls in (Kerberos, LDAP, GSSAPI, zstd,
 * p11-kit, GnuTLS ...), which only fault in some 300 KiB of their code to
 * free memory the kernel takes back anyway: the top of hw-flush's peak RSS.
 * stdout is the one buffered stream, so it is flushed here, and checked. */
static _Noreturn void main_exit(int status)
{
        if (fflush(stdout) != 0 && status == 0)
                status = EX_TEMPFAIL;
#ifdef MAIN_LEAK_CHECK
        /* _exit() skips the leak check that exit() would run; a leak found
         * here ends the process with the sanitizer's status. */
        __lsan_do_leak_check();
#endif
        _exit(status);
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "now", no_argument, NULL, 'n' },
                { "status", no_argument, NULL, 's' },
                { "requeue", no_argument, NULL, 'r' },
                { "requeue-all", no_argument, NULL, 'R' },
                { "check-config", no_argument, NULL, 'c' },
                { "metrics", optional_argument, NULL, 'm' },
                { "metrics-textfile", required_argument, NULL, 'M' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        enum main_mode mode = MODE_RUN;
        enum metrics_format format = METRICS_OPENMETRICS;
        const char *textfile = NULL;
        struct hw_config cfg;
        int c, modes = 0, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
                switch (c) {
                case 'n': mode = MODE_NOW; break;
                case 's': mode = MODE_STATUS; break;
                case 'r': mode = MODE_REQUEUE; break;
                case 'R': mode = MODE_REQUEUE_ALL; break;
                case 'c': mode = MODE_CHECK_CONFIG; break;
                case 'm':
                        mode = MODE_METRICS;
                        if (optarg && metrics_format_parse(optarg, &format) < 0) {
                                fprintf(stderr, "hw-flush: --metrics=%s: the format is openmetrics or prometheus\n",
                                        optarg);
                                return EX_USAGE;
                        }
                        break;
                case 'M':
                        mode = MODE_METRICS_TEXTFILE;
                        textfile = optarg;
                        break;
                case 'h':
                        main_help(stdout);
                        return 0;
                case 'V':
                        printf("hw-flush %s\n", HW_VERSION);
                        return 0;
                default:
                        main_help(stderr);
                        return EX_USAGE;
                }
                modes++;
        }
        if (modes > 1 || (mode == MODE_REQUEUE) != (optind < argc)) {
                main_help(stderr);
                return EX_USAGE;
        }

        log_init("hw-flush");
        /* The operator views only read the spool: root may run them. */
        if (mode != MODE_CHECK_CONFIG && mode != MODE_STATUS && mode != MODE_METRICS &&
            mode != MODE_METRICS_TEXTFILE && config_refuses_root()) {
                log_msg(LOG_ERR, "refusing to run as root (spool files would be root's); "
                        "run as the service user, or set HW_ALLOW_ROOT=1");
                return EX_CONFIG;
        }

        /* A normal run without WEBHOOK_URL keeps the mail (runner.c); only
         * --now and --check-config insist on it. */
        if (main_load_config(&cfg, mode == MODE_NOW || mode == MODE_CHECK_CONFIG) < 0)
                return EX_CONFIG;

        switch (mode) {
        case MODE_CHECK_CONFIG: {
                char err[512] = "";

                /* One command checks the whole file: hw-receive's certificate,
                 * key and modules as well, the way hw-receive loads them. */
                r = modules_check(&cfg, err, sizeof(err));
                if (r < 0) {
                        log_msg(LOG_ERR, "configuration: %s", err);
                        r = EX_CONFIG;
                        break;
                }
                config_print(&cfg, stdout);
                r = 0;
                break;
        }
        case MODE_STATUS:
                r = status_print(&cfg, stdout);
                if (r < 0)
                        log_msg(LOG_ERR, "%s: %s", cfg.spool_dir, strerror(-r));
                r = r < 0 ? EX_TEMPFAIL : 0;
                break;
        case MODE_METRICS:
                r = metrics_text_print(&cfg, format, stdout);
                if (r < 0)
                        log_msg(LOG_ERR, "metrics of %s: %s", cfg.spool_dir, strerror(-r));
                r = r < 0 ? EX_TEMPFAIL : 0;
                break;
        case MODE_METRICS_TEXTFILE:
                r = metrics_text_write_file(&cfg, textfile);
                if (r < 0)
                        log_msg(LOG_ERR, "cannot write the metrics to %s: %s", textfile, strerror(-r));
                r = r < 0 ? EX_TEMPFAIL : 0;
                break;
        case MODE_REQUEUE:
                r = status_requeue(&cfg, argv + optind, argc - optind, stdout);
                r = r == 0 ? 0 : r == -ENOENT ? EX_USAGE : EX_TEMPFAIL;
                break;
        case MODE_REQUEUE_ALL: {
                unsigned n = 0;
                r = status_requeue_all(&cfg, stdout, &n);
                if (r < 0)
                        log_msg(LOG_ERR, "requeue: %s", strerror(-r));
                else
                        printf("hw-flush: %u dead letter(s) requeued\n", n);
                r = r < 0 ? EX_TEMPFAIL : 0;
                break;
        }
        default:
                r = main_run(&cfg, mode == MODE_NOW);
                break;
        }
        config_free(&cfg);
        main_exit(r);
}
