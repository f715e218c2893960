/* The spool fixture of the unit tests and its fault seam (unit.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

char unit_spool_root[64];

void unit_spool_setup(struct spool *s)
{
        strcpy(unit_spool_root, "/tmp/hw-spool-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(unit_spool_root));
        ck_assert_int_eq(spool_open(s, unit_spool_root), 0);
}

int unit_count_entries(const char *dir)
{
        char path[128];
        DIR *d;
        struct dirent *e;
        int n = 0;

        snprintf(path, sizeof(path), "%s/%s", unit_spool_root, dir);
        d = opendir(path);
        ck_assert_ptr_nonnull(d);
        while ((e = readdir(d)))
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

void unit_spool_teardown(struct spool *s)
{
        char cmd[128];

        spool_close(s);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", unit_spool_root);
        ck_assert_int_eq(system(cmd), 0);
}

enum unit_fail unit_fail_at;
int unit_fail_errno;
int unit_fsync_calls;

static ssize_t faulty_write(int fd, const void *buf, size_t len)
{
        if (unit_fail_at == FAIL_WRITE) {
                errno = unit_fail_errno;
                return -1;
        }
        return write(fd, buf, len);
}

static int faulty_fsync(int fd)
{
        struct stat st;

        unit_fsync_calls++;
        if (unit_fail_at == FAIL_FSYNC ||
            (unit_fail_at == FAIL_DIR_FSYNC && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))) {
                errno = unit_fail_errno;
                return -1;
        }
        return fsync(fd);
}

static int faulty_renameat2(int a, const char *b, int c, const char *d, unsigned int flags)
{
        if (unit_fail_at == FAIL_RENAME) {
                errno = unit_fail_errno;
                return -1;
        }
        return renameat2(a, b, c, d, flags);
}

const struct spool_io unit_faulty_io = { faulty_write, faulty_fsync, faulty_renameat2 };
