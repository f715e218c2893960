"""Checks for the integration tests, and the sanitizer reports of the
programs they start.

In sanitizer builds (ASan, LSan, UBSan) every program a test starts with
sanitizer_env() writes its reports into one directory of the test,
whatever becomes of its stderr and exit status. A report fails the check
it turns up in, and finish() prints them all."""
import atexit
import os
import shutil
import sys
import tempfile

FAILURES = []
_passed = [0]
_reports = {"dir": None, "seen": set()}


def sanitizer_env(leaks=True):
    """The sanitizer options of a child: the caller's, then ours. Programs
    traced by strace need leaks=False: LeakSanitizer cannot work under
    ptrace."""
    if _reports["dir"] is None:
        _reports["dir"] = tempfile.mkdtemp(prefix="hw-sanitizer-")
        atexit.register(shutil.rmtree, _reports["dir"], True)
    log = "log_path=" + os.path.join(_reports["dir"], "report")
    ours = {
        "ASAN_OPTIONS": [log] + ([] if leaks else ["detect_leaks=0"]),
        "LSAN_OPTIONS": [log],
        "UBSAN_OPTIONS": [log, "print_stacktrace=1", "halt_on_error=1"],
    }
    return {k: ":".join(filter(None, [os.environ.get(k)] + v)) for k, v in ours.items()}


def sanitizer_new_reports():
    """Reports written since the last call."""
    if _reports["dir"] is None:
        return []
    new = sorted(set(os.listdir(_reports["dir"])) - _reports["seen"])
    _reports["seen"].update(new)
    return new


def check(cond, what):
    reports = sanitizer_new_reports()
    if reports:
        cond = False
        what += " (sanitizer report %s)" % ", ".join(reports)
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if cond:
        _passed[0] += 1
    else:
        FAILURES.append(what)
    return cond


def finish():
    check(True, "no sanitizer reports at the end")
    for name in sorted(_reports["seen"]):
        with open(os.path.join(_reports["dir"], name), errors="replace") as f:
            print("--- %s\n%s" % (name, f.read()), end="")
    print("%d passed, %d failed" % (_passed[0], len(FAILURES)))
    for what in FAILURES:
        print("  " + what)
    sys.exit(1 if FAILURES else 0)


def skip(why):
    """Automake's SKIP status."""
    print("SKIP " + why)
    sys.exit(77)
