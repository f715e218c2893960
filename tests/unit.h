/* What the unit tests (tests/check_*.c) share: the runner, a clean
 * environment for configuration, and a spool in a temporary directory whose
 * system calls can be made to fail (the seam of spool.h). */
#ifndef HW_TESTS_UNIT_H
#define HW_TESTS_UNIT_H

#include <check.h>

#include "spool.h"

/* Runs every test of the suite; the exit status for main(). */
int unit_run(Suite *s);

/* Unsets every setting config_load reads. */
void unit_clear_env(void);

/* A fresh spool in a new temporary directory, and its removal. */
extern char unit_spool_root[64];
void unit_spool_setup(struct spool *s);
void unit_spool_teardown(struct spool *s);
/* Entries, dot files left out, in one of the spool's directories. */
int unit_count_entries(const char *dir);

/* Fault injection through spool.io: the failing call and the errno it
 * reports; unit_fsync_calls counts every fsync. */
enum unit_fail { FAIL_NONE, FAIL_WRITE, FAIL_FSYNC, FAIL_DIR_FSYNC, FAIL_RENAME };
extern enum unit_fail unit_fail_at;
extern int unit_fail_errno;
extern int unit_fsync_calls;
extern const struct spool_io unit_faulty_io;

#endif
