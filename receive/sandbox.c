/* The programs' own sandbox; see sandbox.h. Landlock through its raw
 * system calls (the C library has no wrappers), the seccomp filter written
 * out as classic BPF for the architectures listed below. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/lib/hw-webhook"
#endif

/* Sanitizer builds (make check under ASan/LSan) need a little more: the
 * leak checker stops the process's threads with ptrace(2) and reads /proc,
 * and reports go to the file named in *SAN_OPTIONS' log_path. */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define SANDBOX_SANITIZED 1
#endif
#endif

/* What differs between the two programs' sandboxes. */
struct sandbox_role {
        const char *program;
        bool connect;           /* TCP connections out, DNS, the CA file */
        bool dns;               /* DNS only: UDP anywhere, TCP to port 53 (hw-auth.so) */
        bool session_files;     /* the modules, the TLS certificate and key */
};

/* ---- Landlock --------------------------------------------------------- */

/* Access rights newer than the installed headers may know; the kernel's
 * ABI version says which of them it handles. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#define SANDBOX_NET_BIND_TCP (1ULL << 0)        /* ABI 4 */
#define SANDBOX_NET_CONNECT_TCP (1ULL << 1)     /* ABI 4 */
#define SANDBOX_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define SANDBOX_SCOPE_SIGNAL (1ULL << 1)        /* ABI 6 */
#define SANDBOX_RULE_NET_PORT 2                 /* ABI 4: landlock_net_port_attr */
#define SANDBOX_DNS_PORT 53

struct sandbox_net_port_attr {
        uint64_t allowed_access;
        uint64_t port;
} __attribute__((packed));

/* The kernel's struct landlock_ruleset_attr as of ABI 6; older kernels are
 * given the prefix they know. */
struct sandbox_ruleset_attr {
        uint64_t handled_access_fs;
        uint64_t handled_access_net;
        uint64_t scoped;
};

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_SPOOL (FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_FILE | \
                  LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_DIR |             \
                  LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE)
/* The rights that apply to a file that is not a directory. */
#define FS_FILE (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |      \
                 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
                 LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* Read-only, where present: programs' libraries, their configuration
 * (GnuTLS, libcurl, NSS, resolver, CA certificates, time zones). */
static const char *const sandbox_read_paths[] = { "/usr", "/etc", "/lib", "/lib64", "/lib32" };

static uint64_t sandbox_fs_rights(int abi)
{
        uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;   /* ABI 1 */

        if (abi >= 2)
                r |= LANDLOCK_ACCESS_FS_REFER;
        if (abi >= 3)
                r |= LANDLOCK_ACCESS_FS_TRUNCATE;
        if (abi >= 5)
                r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
        return r;
}

/* Allows `access` beneath fd (a directory) or on it (a file). */
static int sandbox_allow_fd(int ruleset, int fd, uint64_t access, uint64_t handled)
{
        struct landlock_path_beneath_attr rule = { .parent_fd = fd };
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        rule.allowed_access = access & handled;
        if (!S_ISDIR(st.st_mode))
                rule.allowed_access &= FS_FILE;
        if (rule.allowed_access == 0)
                return 0;
        if (syscall(__NR_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0)
                return -errno;
        return 0;
}

/* The same for a path; one that does not exist needs no rule. */
static int sandbox_allow_path(int ruleset, const char *path, uint64_t access, uint64_t handled,
                              char *err, size_t errlen)
{
        int fd, r;

        if (!path || !*path)
                return 0;
        fd = open(path, O_PATH | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT || errno == ENOTDIR || errno == EACCES)
                        return 0;
                r = -errno;
                snprintf(err, errlen, "cannot open %s for the sandbox: %s", path, strerror(-r));
                return r;
        }
        r = sandbox_allow_fd(ruleset, fd, access, handled);
        close(fd);
        if (r < 0)
                snprintf(err, errlen, "Landlock rule for %s: %s", path, strerror(-r));
        return r;
}

/* The directory holding path's final target: a resolv.conf that is a
 * symbolic link into /run is replaced there as a whole, not rewritten. */
static int sandbox_allow_parent(int ruleset, const char *path, uint64_t handled,
                                char *err, size_t errlen)
{
        char real[PATH_MAX], *slash;

        if (!realpath(path, real))
                return 0;
        slash = strrchr(real, '/');
        if (!slash)
                return 0;
        if (slash == real)
                slash[1] = '\0';
        else
                *slash = '\0';
        return sandbox_allow_path(ruleset, real, FS_READ, handled, err, errlen);
}

#ifdef SANDBOX_SANITIZED
/* Lets the sanitizers write their report next to log_path. */
static int sandbox_allow_sanitizer_logs(int ruleset, uint64_t handled, char *err, size_t errlen)
{
        static const char *const vars[] = { "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS" };
        int r;

        for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
                const char *v = getenv(vars[i]), *p = v ? strstr(v, "log_path=") : NULL;
                char dir[PATH_MAX], *slash;
                size_t len;

                if (!p)
                        continue;
                p += strlen("log_path=");
                len = strcspn(p, ":, ");
                if (len == 0 || len >= sizeof(dir))
                        continue;
                memcpy(dir, p, len);
                dir[len] = '\0';
                slash = strrchr(dir, '/');
                if (!slash || slash == dir)
                        continue;
                *slash = '\0';
                r = sandbox_allow_path(ruleset, dir, FS_SPOOL, handled, err, errlen);
                if (r < 0)
                        return r;
        }
        return 0;
}
#endif

/* Returns 1 when the kernel has no Landlock (the caller says so once). */
static int sandbox_landlock(const struct hw_config *cfg, const struct sandbox_role *role, int spool_fd,
                            char *err, size_t errlen)
{
        struct sandbox_ruleset_attr attr = { 0 };
        const char *module_dir = getenv("HW_MODULE_DIR");
        bool connect = role->connect;
        size_t attr_size;
        char self[32];
        uint64_t fs;
        long abi;
        int ruleset, r = 0;

        abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
        if (abi < 0) {
                /* EPERM: a system call filter of the caller's (an older
                 * unit's SystemCallFilter=@system-service) hides it. */
                if (errno == ENOSYS || errno == EOPNOTSUPP || errno == EPERM)
                        return 1;
                r = -errno;
                snprintf(err, errlen, "Landlock ABI version: %s", strerror(-r));
                return r;
        }
        attr.handled_access_fs = sandbox_fs_rights((int)abi);
        attr_size = sizeof(attr.handled_access_fs);
        if (abi >= 4) {
                /* No listening ever; connecting only to a webhook or the
                 * decision API. */
                attr.handled_access_net = SANDBOX_NET_BIND_TCP | (connect ? 0 : SANDBOX_NET_CONNECT_TCP);
                attr_size = offsetof(struct sandbox_ruleset_attr, scoped);
        }
        if (abi >= 6) {
                attr.scoped = SANDBOX_SCOPE_ABSTRACT_UNIX | SANDBOX_SCOPE_SIGNAL;
                attr_size = sizeof(attr);
        }
        ruleset = (int)syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0);
        if (ruleset < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot create a Landlock ruleset (ABI %ld): %s", abi, strerror(-r));
                return r;
        }

        fs = attr.handled_access_fs;
        r = sandbox_allow_fd(ruleset, spool_fd, FS_SPOOL, fs);
        if (r < 0)
                snprintf(err, errlen, "Landlock rule for %s: %s", cfg->spool_dir, strerror(-r));
        for (size_t i = 0; r >= 0 && i < sizeof(sandbox_read_paths) / sizeof(sandbox_read_paths[0]); i++)
                r = sandbox_allow_path(ruleset, sandbox_read_paths[i], FS_READ, fs, err, errlen);
        if (r >= 0 && role->session_files)
                r = sandbox_allow_path(ruleset, module_dir && *module_dir ? module_dir : PKGLIBDIR,
                                       FS_READ, fs, err, errlen);
        if (r >= 0 && role->session_files)
                r = sandbox_allow_path(ruleset, cfg->tls_cert_path, FS_READ, fs, err, errlen);
        if (r >= 0 && role->session_files)
                r = sandbox_allow_path(ruleset, cfg->tls_key_path, FS_READ, fs, err, errlen);
        if (r >= 0 && connect)
                r = sandbox_allow_path(ruleset, cfg->webhook_ca_file, FS_READ, fs, err, errlen);
        if (r >= 0 && (connect || role->dns))
                r = sandbox_allow_parent(ruleset, "/etc/resolv.conf", fs, err, errlen);
        /* DNS over TCP (answers too long for UDP): port 53 only. UDP is
         * outside Landlock's reach; the seccomp filter allows its sockets. */
        if (r >= 0 && role->dns && (attr.handled_access_net & SANDBOX_NET_CONNECT_TCP)) {
                struct sandbox_net_port_attr port = { .allowed_access = SANDBOX_NET_CONNECT_TCP,
                                                      .port = SANDBOX_DNS_PORT };

                if (syscall(__NR_landlock_add_rule, ruleset, SANDBOX_RULE_NET_PORT, &port, 0) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "Landlock rule for TCP port %d: %s", SANDBOX_DNS_PORT, strerror(-r));
                }
        }
        /* This process's own /proc entries (also for its threads), never
         * other processes'. */
        snprintf(self, sizeof(self), "/proc/%ld", (long)getpid());
#ifdef SANDBOX_SANITIZED
        snprintf(self, sizeof(self), "/proc");
        if (r >= 0)
                r = sandbox_allow_sanitizer_logs(ruleset, fs, err, errlen);
#endif
        if (r >= 0)
                r = sandbox_allow_path(ruleset, self, FS_READ, fs, err, errlen);
        if (r >= 0)
                r = sandbox_allow_path(ruleset, "/dev/null", FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE,
                                       fs, err, errlen);
        if (r >= 0)
                r = sandbox_allow_path(ruleset, "/dev/urandom", FS_READ, fs, err, errlen);
        if (r >= 0)
                r = sandbox_allow_path(ruleset, "/dev/random", FS_READ, fs, err, errlen);
        if (r >= 0 && syscall(__NR_landlock_restrict_self, ruleset, 0) < 0) {
                r = -errno;
                snprintf(err, errlen, "landlock_restrict_self: %s", strerror(-r));
        }
        close(ruleset);
        return r < 0 ? r : 0;
}

/* ---- seccomp ---------------------------------------------------------- */

#if defined(__x86_64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef SANDBOX_AUDIT_ARCH

/* Room for the whole program below, with margin. */
#define FILTER_MAX 512

struct filter {
        struct sock_filter insn[FILTER_MAX];
        unsigned n;
};

#define RET_ALLOW SECCOMP_RET_ALLOW
#define RET_ERRNO(e) (SECCOMP_RET_ERRNO | ((e) & SECCOMP_RET_DATA))
/* The low 32 bits of a 64-bit argument (both architectures are little
 * endian), and the high ones. */
#define ARG_LO(i) ((uint32_t)offsetof(struct seccomp_data, args[i]))
#define ARG_HI(i) ((uint32_t)offsetof(struct seccomp_data, args[i]) + 4)

static void emit(struct filter *f, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
        if (f->n < FILTER_MAX)
                f->insn[f->n] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
        f->n++;
}

/* Each block below starts and, when skipped, ends with the system call
 * number in the accumulator; a block that is entered always returns. */
static void filter_return(struct filter *f, long nr, uint32_t ret)
{
        emit(f, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1);
        emit(f, BPF_RET | BPF_K, ret, 0, 0);
}

/* EPERM when the argument has any of `bits`. */
static void filter_deny_bits(struct filter *f, long nr, unsigned arg, uint32_t bits)
{
        emit(f, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 4);
        emit(f, BPF_LD | BPF_W | BPF_ABS, ARG_LO(arg), 0, 0);
        emit(f, BPF_JMP | BPF_JSET | BPF_K, bits, 0, 1);
        emit(f, BPF_RET | BPF_K, RET_ERRNO(EPERM), 0, 0);
        emit(f, BPF_RET | BPF_K, RET_ALLOW, 0, 0);
}

/* EPERM when the argument has all of `bits`. */
static void filter_deny_all_bits(struct filter *f, long nr, unsigned arg, uint32_t bits)
{
        emit(f, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 5);
        emit(f, BPF_LD | BPF_W | BPF_ABS, ARG_LO(arg), 0, 0);
        emit(f, BPF_ALU | BPF_AND | BPF_K, bits, 0, 0);
        emit(f, BPF_JMP | BPF_JEQ | BPF_K, bits, 0, 1);
        emit(f, BPF_RET | BPF_K, RET_ERRNO(EPERM), 0, 0);
        emit(f, BPF_RET | BPF_K, RET_ALLOW, 0, 0);
}

/* socket(2): only the listed address families. */
static void filter_socket(struct filter *f, const uint32_t *families, uint8_t n)
{
        emit(f, BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, (uint8_t)(n + 3));
        emit(f, BPF_LD | BPF_W | BPF_ABS, ARG_LO(0), 0, 0);
        for (uint8_t i = 0; i < n; i++)
                emit(f, BPF_JMP | BPF_JEQ | BPF_K, families[i], (uint8_t)(n - i), 0);
        /* What RestrictAddressFamilies= answers: the family is not there. */
        emit(f, BPF_RET | BPF_K, RET_ERRNO(EAFNOSUPPORT), 0, 0);
        emit(f, BPF_RET | BPF_K, RET_ALLOW, 0, 0);
}

/* personality(2): queries and the current persona only. */
static void filter_personality(struct filter *f, uint32_t current)
{
        emit(f, BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 0, 5);
        emit(f, BPF_LD | BPF_W | BPF_ABS, ARG_LO(0), 0, 0);
        emit(f, BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffU, 2, 0);
        emit(f, BPF_JMP | BPF_JEQ | BPF_K, current, 1, 0);
        emit(f, BPF_RET | BPF_K, RET_ERRNO(EPERM), 0, 0);
        emit(f, BPF_RET | BPF_K, RET_ALLOW, 0, 0);
}

/* prlimit64(2): reading limits, never setting them. */
static void filter_prlimit(struct filter *f)
{
        emit(f, BPF_JMP | BPF_JEQ | BPF_K, __NR_prlimit64, 0, 6);
        emit(f, BPF_LD | BPF_W | BPF_ABS, ARG_LO(2), 0, 0);
        emit(f, BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2);
        emit(f, BPF_LD | BPF_W | BPF_ABS, ARG_HI(2), 0, 0);
        emit(f, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0);
        emit(f, BPF_RET | BPF_K, RET_ERRNO(EPERM), 0, 0);
        emit(f, BPF_RET | BPF_K, RET_ALLOW, 0, 0);
}

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | \
                  CLONE_NEWPID | CLONE_NEWNET)
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#define SUID_SGID (S_ISUID | S_ISGID)

/* Plain denials: what @mount @module @reboot @swap @raw-io @clock @debug
 * @obsolete @cpu-emulation @privileged @resources take away, as far as an
 * unprivileged process could use it, plus keyrings and io_uring (both
 * outside @system-service), and making SysV IPC or POSIX message queue
 * objects, which would outlive the session (the unit's RemoveIPC=). */
static const long filter_denied[] = {
        __NR_mount, __NR_umount2, __NR_pivot_root, __NR_chroot, __NR_fsopen, __NR_fsconfig,
        __NR_fsmount, __NR_fspick, __NR_move_mount, __NR_open_tree, __NR_mount_setattr,
        __NR_init_module, __NR_finit_module, __NR_delete_module,
        __NR_reboot, __NR_kexec_load, __NR_kexec_file_load, __NR_swapon, __NR_swapoff,
        __NR_adjtimex, __NR_clock_adjtime, __NR_clock_settime, __NR_settimeofday,
#ifndef SANDBOX_SANITIZED
        __NR_ptrace,
#endif
        __NR_process_vm_readv, __NR_process_vm_writev, __NR_perf_event_open, __NR_kcmp,
        __NR_pidfd_getfd, __NR_bpf, __NR_acct, __NR_quotactl, __NR_open_by_handle_at,
        __NR_fanotify_init, __NR_vhangup, __NR_sethostname, __NR_setdomainname, __NR_syslog,
        __NR_setuid, __NR_setgid, __NR_setreuid, __NR_setregid, __NR_setresuid, __NR_setresgid,
        __NR_setfsuid, __NR_setfsgid, __NR_setgroups, __NR_fchown, __NR_fchownat,
        __NR_add_key, __NR_keyctl, __NR_request_key, __NR_userfaultfd,
        __NR_io_uring_setup, __NR_io_uring_enter, __NR_io_uring_register,
        __NR_sched_setscheduler, __NR_sched_setparam, __NR_sched_setattr, __NR_sched_setaffinity,
        __NR_setpriority, __NR_ioprio_set, __NR_set_mempolicy, __NR_mbind, __NR_migrate_pages,
        __NR_move_pages, __NR_setrlimit, __NR_setns,
        __NR_shmget, __NR_msgget, __NR_semget, __NR_mq_open,
#ifdef __NR_quotactl_fd
        __NR_quotactl_fd,
#endif
#ifdef __x86_64__
        __NR_iopl, __NR_ioperm, __NR_modify_ldt, __NR_uselib, __NR_ustat, __NR_sysfs,
        __NR__sysctl, __NR_lookup_dcookie, __NR_chown, __NR_lchown,
#endif
};

/* Called often during a session: allowed before anything is compared. */
static const long filter_frequent[] = {
        __NR_read, __NR_write, __NR_ppoll, __NR_close, __NR_fstat, __NR_newfstatat,
        __NR_pread64, __NR_pwrite64, __NR_writev, __NR_futex, __NR_fsync, __NR_fdatasync,
        __NR_lseek, __NR_getrandom,
#ifdef __x86_64__
        __NR_poll,
#endif
};

static int sandbox_seccomp(const struct sandbox_role *role, char *err, size_t errlen)
{
        static struct filter f;
        uint32_t families[3] = { AF_UNIX, AF_INET, AF_INET6 };
        int current = personality(0xffffffff);
        struct sock_fprog prog;

        /* LockPersonality= refuses even the query: then queries are all
         * there is to allow. */
        if (current < 0 && errno != EPERM) {
                int r = -errno;

                snprintf(err, errlen, "personality: %s", strerror(-r));
                return r;
        }
        if (current < 0)
                current = (int)0xffffffff;
        f.n = 0;
        /* Another architecture's numbers mean other calls: none of them. */
        emit(&f, BPF_LD | BPF_W | BPF_ABS, (uint32_t)offsetof(struct seccomp_data, arch), 0, 0);
        emit(&f, BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_AUDIT_ARCH, 1, 0);
        emit(&f, BPF_RET | BPF_K, RET_ERRNO(EPERM), 0, 0);
        emit(&f, BPF_LD | BPF_W | BPF_ABS, (uint32_t)offsetof(struct seccomp_data, nr), 0, 0);
#ifdef __x86_64__
        /* The x32 ABI shares the architecture tag. */
        emit(&f, BPF_JMP | BPF_JGE | BPF_K, 0x40000000U, 0, 1);
        emit(&f, BPF_RET | BPF_K, RET_ERRNO(EPERM), 0, 0);
#endif
        for (size_t i = 0; i < sizeof(filter_frequent) / sizeof(filter_frequent[0]); i++)
                filter_return(&f, filter_frequent[i], RET_ALLOW);

        filter_socket(&f, families, role->connect || role->dns ? 3 : 1);
        /* No memory both writable and executable, and no executable
         * memory made later (MemoryDenyWriteExecute=): mapping libraries
         * read-only and executable, as dlopen(3) does, stays possible. */
        filter_deny_all_bits(&f, __NR_mmap, 2, PROT_WRITE | PROT_EXEC);
        filter_deny_bits(&f, __NR_mprotect, 2, PROT_EXEC);
        filter_deny_bits(&f, __NR_pkey_mprotect, 2, PROT_EXEC);
        filter_deny_bits(&f, __NR_shmat, 2, SHM_EXEC);
        filter_personality(&f, (uint32_t)current);
        filter_prlimit(&f);
        /* Threads, yes; new namespaces, no (RestrictNamespaces=). clone3
         * passes its flags in memory, out of the filter's sight: ENOSYS
         * makes the C library fall back to clone. */
        filter_deny_bits(&f, __NR_clone, 0, NS_FLAGS);
        filter_deny_bits(&f, __NR_unshare, 0, NS_FLAGS | CLONE_NEWTIME);
        filter_return(&f, __NR_clone3, RET_ERRNO(ENOSYS));
        /* No set-user/group-ID files (RestrictSUIDSGID=); openat2 hides
         * its mode in memory too. */
        filter_deny_bits(&f, __NR_fchmod, 1, SUID_SGID);
        filter_deny_bits(&f, __NR_fchmodat, 2, SUID_SGID);
#ifdef __NR_fchmodat2
        filter_deny_bits(&f, __NR_fchmodat2, 2, SUID_SGID);
#endif
        filter_deny_bits(&f, __NR_openat, 3, SUID_SGID);
        filter_return(&f, __NR_openat2, RET_ERRNO(ENOSYS));
#ifdef __x86_64__
        filter_deny_bits(&f, __NR_chmod, 1, SUID_SGID);
        filter_deny_bits(&f, __NR_open, 2, SUID_SGID);
        filter_deny_bits(&f, __NR_creat, 1, SUID_SGID);
#endif
        for (size_t i = 0; i < sizeof(filter_denied) / sizeof(filter_denied[0]); i++)
                filter_return(&f, filter_denied[i], RET_ERRNO(EPERM));
        emit(&f, BPF_RET | BPF_K, RET_ALLOW, 0, 0);

        if (f.n > FILTER_MAX) {
                snprintf(err, errlen, "seccomp filter too long (%u instructions)", f.n);
                return -E2BIG;
        }
        prog.len = (unsigned short)f.n;
        prog.filter = f.insn;
        /* All threads, should a library have started one. */
        if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
                int r = errno ? -errno : -EBUSY;

                /* A filter of the caller's refuses seccomp(2) itself (an
                 * older unit's SystemCallFilter=): that filter applies. */
                if (r == -EPERM)
                        return 1;

                snprintf(err, errlen, "cannot install the seccomp filter: %s", strerror(-r));
                return r;
        }
        return 0;
}

#else

static int sandbox_seccomp(const struct sandbox_role *role, char *err, size_t errlen)
{
        return 1;
}

#endif

static int sandbox_apply_role(const struct hw_config *cfg, const struct sandbox_role *role, int spool_fd,
                              char *err, size_t errlen)
{
        int r;

        /* Required for both, and keeps set-user-ID programs powerless. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                r = -errno;
                snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(-r));
                return r;
        }
        r = sandbox_landlock(cfg, role, spool_fd, err, errlen);
        if (r < 0)
                return r;
        if (r > 0)
                log_msg(LOG_INFO, "no Landlock here (kernel or system call filter): the unit's settings are the file sandbox");
        r = sandbox_seccomp(role, err, errlen);
        if (r < 0)
                return r;
        if (r > 0)
                log_msg(LOG_INFO, "no system call filter of %s's own (architecture, or seccomp(2) refused): the unit's filter applies",
                        role->program);
        return 0;
}

int sandbox_apply(const struct hw_config *cfg, int spool_fd, char *err, size_t errlen)
{
        const struct sandbox_role session = {
                .program = "hw-receive",
                .connect = cfg->decision_url[0] != '\0',
                .dns = cfg->auth_checks,
                .session_files = true,
        };

        return sandbox_apply_role(cfg, &session, spool_fd, err, errlen);
}

int sandbox_apply_delivery(const struct hw_config *cfg, int spool_fd, char *err, size_t errlen)
{
        const struct sandbox_role delivery = { .program = "hw-flush", .connect = true };

        return sandbox_apply_role(cfg, &delivery, spool_fd, err, errlen);
}
