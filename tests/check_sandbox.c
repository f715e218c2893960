/* hw-receive's own sandbox (receive/sandbox.c): each test forks a child
 * that applies it exactly as a session does, then tries one thing. The
 * child exits with 0 when the attempt succeeded, with its errno otherwise. */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "sandbox.h"
#include "unit.h"

#define SANDBOX_FAILED 250

static char base[512], spool[512 + 8], outside[512 + 8];

static long landlock_abi(void)
{
        long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

        return abi < 0 ? 0 : abi;
}

static void setup(void)
{
        const char *tmp = getenv("TMPDIR");

        snprintf(base, sizeof(base), "%s/check-sandbox.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(base));
        snprintf(spool, sizeof(spool), "%s/spool", base);
        snprintf(outside, sizeof(outside), "%s/other", base);
        ck_assert_int_eq(mkdir(spool, 0700), 0);
        ck_assert_int_eq(mkdir(outside, 0700), 0);
}

static void teardown(void)
{
        char cmd[sizeof(base) + 16];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        ck_assert_int_eq(system(cmd), 0);
}

/* What LockPersonality= does before hw-receive starts: personality(2)
 * refused, even the query. */
static void lock_personality(void)
{
        struct sock_filter insn[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = sizeof(insn) / sizeof(insn[0]), .filter = insn };

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                _exit(SANDBOX_FAILED);
}

/* Runs probe() in a sandboxed child; returns its exit status. With
 * locked, the child starts as under the unit's LockPersonality=. */
/* Set by a test before it forks: the session's sandbox with AUTH_CHECKS. */
static bool with_auth;

static int sandboxed_as(bool decision, bool locked, int (*probe)(void))
{
        pid_t pid = fork();
        int status;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                static struct hw_config cfg;
                char err[256];
                int fd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                if (locked)
                        lock_personality();

                snprintf(cfg.spool_dir, sizeof(cfg.spool_dir), "%s", spool);
                if (decision)
                        snprintf(cfg.decision_url, sizeof(cfg.decision_url), "http://127.0.0.1:1/");
                cfg.auth_checks = with_auth;
                if (fd < 0 || sandbox_apply(&cfg, fd, err, sizeof(err)) < 0) {
                        fprintf(stderr, "sandbox: %s\n", fd < 0 ? strerror(errno) : err);
                        _exit(SANDBOX_FAILED);
                }
                _exit(probe());
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
        ck_assert_int_ne(WEXITSTATUS(status), SANDBOX_FAILED);
        return WEXITSTATUS(status);
}

static int sandboxed(bool decision, int (*probe)(void))
{
        return sandboxed_as(decision, false, probe);
}

static int result(int r)
{
        return r < 0 ? errno : 0;
}

static int create_in(const char *dir)
{
        char path[sizeof(spool) + 8];
        int fd;

        snprintf(path, sizeof(path), "%s/x", dir);
        fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0)
                return errno;
        return close(fd) < 0 ? errno : 0;
}

static int probe_write_outside(void) { return create_in(outside); }
static int probe_write_tmp(void) { return create_in(base); }
static int probe_write_spool(void) { return create_in(spool); }

/* A commit is a rename from one spool directory into another. */
static int probe_rename_in_spool(void)
{
        char a[sizeof(spool) + 16], b[sizeof(spool) + 16];
        int r = create_in(spool);

        snprintf(a, sizeof(a), "%s/x", spool);
        snprintf(b, sizeof(b), "%s/sub", spool);
        if (r == 0)
                r = result(mkdir(b, 0700));
        snprintf(b, sizeof(b), "%s/sub/y", spool);
        if (r == 0)
                r = result(rename(a, b));
        return r;
}

static int probe_read_outside(void)
{
        char path[sizeof(outside) + 8];
        int fd;

        snprintf(path, sizeof(path), "%s/r", outside);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? errno : (close(fd), 0);
}

static int probe_read_system(void)
{
        int fd = open("/usr", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        return fd < 0 ? errno : (close(fd), 0);
}

static int probe_exec(void)
{
        char *const argv[] = { "true", NULL };

        execv("/bin/true", argv);
        return errno;
}

static int probe_socket(int family, int type)
{
        int fd = socket(family, type | SOCK_CLOEXEC, 0);

        return fd < 0 ? errno : (close(fd), 0);
}

static int probe_inet(void) { return probe_socket(AF_INET, SOCK_STREAM); }
static int probe_inet6(void) { return probe_socket(AF_INET6, SOCK_DGRAM); }
static int probe_netlink(void) { return probe_socket(AF_NETLINK, SOCK_RAW); }
static int probe_unix(void) { return probe_socket(AF_UNIX, SOCK_DGRAM); }

/* A TCP connection to port on the loopback: 0 or errno. */
static int probe_connect(unsigned short port)
{
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

        if (fd < 0)
                return errno;
        r = result(connect(fd, (struct sockaddr *)&sin, sizeof(sin)));
        close(fd);
        return r;
}

static int probe_connect_dns(void) { return probe_connect(53); }
static int probe_connect_other(void) { return probe_connect(1); }

/* Listening is never the session's business. */
static int probe_bind(void)
{
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

        if (fd < 0)
                return errno;
        r = result(bind(fd, (struct sockaddr *)&sin, sizeof(sin)));
        close(fd);
        return r;
}

static int probe_mmap_wx(void)
{
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        return p == MAP_FAILED ? errno : 0;
}

static int probe_mprotect_x(void)
{
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED)
                return 100;
        return result(mprotect(p, 4096, PROT_READ | PROT_EXEC));
}

/* What the dynamic loader does with a library's code. */
static int probe_mmap_rx(void)
{
        void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        return p == MAP_FAILED ? errno : 0;
}

/* hw-receive loads hw-tls.so (GnuTLS) after the sandbox is in place. */
static int probe_dlopen(void)
{
        const char *dir = getenv("HW_MODULE_DIR");
        char path[4096];

        snprintf(path, sizeof(path), "%s/hw-tls.so", dir);
        if (!dlopen(path, RTLD_NOW | RTLD_LOCAL)) {
                fprintf(stderr, "dlopen: %s\n", dlerror());
                return 1;
        }
        return 0;
}

static int probe_personality(void)
{
        if (personality(0xffffffff) < 0)
                return 100;
        return result(personality(PER_LINUX | ADDR_NO_RANDOMIZE));
}

static int probe_unshare(void) { return result(unshare(CLONE_NEWUSER)); }
static int probe_mount(void) { return result(mount("none", "/mnt", "tmpfs", 0, NULL)); }

static int probe_fork(void)
{
        pid_t pid = fork();
        int status;

        if (pid == 0)
                _exit(0);
        if (pid < 0)
                return errno;
        return waitpid(pid, &status, 0) == pid && WIFEXITED(status) ? 0 : 100;
}

static int probe_rlimit(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 100;
        return result(setrlimit(RLIMIT_NOFILE, &rl));
}

static int probe_realtime(void)
{
        struct sched_param sp = { .sched_priority = 1 };

        return result(sched_setscheduler(0, SCHED_FIFO, &sp));
}

/* Objects that would outlive the session: SysV shared memory, a queue. */
static int probe_ipc(void)
{
        int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);

        if (id >= 0) {
                shmctl(id, IPC_RMID, NULL);
                return 0;
        }
        return errno;
}

static int probe_mqueue(void)
{
        struct mq_attr attr = { .mq_maxmsg = 1, .mq_msgsize = 8 };
        mqd_t q = mq_open("/hw-sandbox-probe", O_CREAT | O_RDWR, 0600, &attr);

        if (q != (mqd_t)-1) {
                mq_close(q);
                mq_unlink("/hw-sandbox-probe");
                return 0;
        }
        return errno;
}

static int probe_suid(void)
{
        char path[sizeof(spool) + 8];
        int fd;

        snprintf(path, sizeof(path), "%s/s", spool);
        fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (fd < 0)
                return 100;
        return result(fchmod(fd, 04755));
}

/* The parent is outside the sandbox: no signals to it. */
static int probe_signal(void) { return result(kill(getppid(), 0)); }

START_TEST(files)
{
        char path[sizeof(outside) + 8];
        int fd;

        if (landlock_abi() < 1)
                return;
        snprintf(path, sizeof(path), "%s/r", outside);
        fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert_int_eq(sandboxed(false, probe_write_outside), EACCES);
        ck_assert_int_eq(sandboxed(false, probe_write_tmp), EACCES);
        ck_assert_int_eq(sandboxed(false, probe_read_outside), EACCES);
        ck_assert_int_eq(sandboxed(false, probe_exec), EACCES);
        ck_assert_int_eq(sandboxed(false, probe_write_spool), 0);
        ck_assert_int_eq(sandboxed(false, probe_rename_in_spool), 0);
        ck_assert_int_eq(sandboxed(false, probe_read_system), 0);
}
END_TEST

START_TEST(sockets)
{
        ck_assert_int_eq(sandboxed(false, probe_inet), EAFNOSUPPORT);
        ck_assert_int_eq(sandboxed(false, probe_inet6), EAFNOSUPPORT);
        ck_assert_int_eq(sandboxed(false, probe_netlink), EAFNOSUPPORT);
        ck_assert_int_eq(sandboxed(false, probe_unix), 0);
        /* The decision API needs IPv4/IPv6, and still no listening. */
        ck_assert_int_eq(sandboxed(true, probe_inet), 0);
        ck_assert_int_eq(sandboxed(true, probe_inet6), 0);
        ck_assert_int_eq(sandboxed(true, probe_netlink), EAFNOSUPPORT);
        if (landlock_abi() >= 4)
                ck_assert_int_eq(sandboxed(true, probe_bind), EACCES);
}
END_TEST

/* Sender authentication needs DNS and nothing more: IPv4/IPv6 sockets,
 * TCP only to port 53, still no listening. */
START_TEST(dns_sockets)
{
        with_auth = true;
        ck_assert_int_eq(sandboxed(false, probe_inet), 0);
        ck_assert_int_eq(sandboxed(false, probe_inet6), 0);
        ck_assert_int_eq(sandboxed(false, probe_netlink), EAFNOSUPPORT);
        if (landlock_abi() >= 4) {
                /* Refused or answered, but not forbidden. */
                ck_assert_int_ne(sandboxed(false, probe_connect_dns), EACCES);
                ck_assert_int_eq(sandboxed(false, probe_connect_other), EACCES);
                ck_assert_int_eq(sandboxed(false, probe_bind), EACCES);
        }
        with_auth = false;
}
END_TEST

START_TEST(memory)
{
        ck_assert_int_eq(sandboxed(false, probe_mmap_wx), EPERM);
        ck_assert_int_eq(sandboxed(false, probe_mprotect_x), EPERM);
        ck_assert_int_eq(sandboxed(false, probe_mmap_rx), 0);
        if (getenv("HW_MODULE_DIR"))
                ck_assert_int_eq(sandboxed(false, probe_dlopen), 0);
}
END_TEST

START_TEST(system_calls)
{
        ck_assert_int_eq(sandboxed(false, probe_personality), EPERM);
        ck_assert_int_eq(sandboxed(false, probe_unshare), EPERM);
        ck_assert_int_eq(sandboxed(false, probe_mount), EPERM);
        ck_assert_int_eq(sandboxed(false, probe_rlimit), EPERM);
        ck_assert_int_eq(sandboxed(false, probe_realtime), EPERM);
        ck_assert_int_eq(sandboxed(false, probe_suid), EPERM);
        ck_assert_int_eq(sandboxed(false, probe_ipc), EPERM);
        ck_assert_int_eq(sandboxed(false, probe_mqueue), EPERM);
        ck_assert_int_eq(sandboxed(false, probe_fork), 0);
        ck_assert_int_eq(sandboxed_as(false, true, probe_unshare), EPERM);
        if (landlock_abi() >= 6)
                ck_assert_int_eq(sandboxed(false, probe_signal), EPERM);
}
END_TEST

static Suite *sandbox_suite(void)
{
        Suite *s = suite_create("sandbox");
        TCase *tc = tcase_create("sandbox");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, files);
        tcase_add_test(tc, sockets);
        tcase_add_test(tc, dns_sockets);
        tcase_add_test(tc, memory);
        tcase_add_test(tc, system_calls);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return unit_run(sandbox_suite());
}
