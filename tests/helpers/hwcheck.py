"""The checks of the integration tests under the name hw-receive's test
library (tests/receive/hwrecv.py) imports them by; they live in hwtest.py."""
from hwtest import FAILURES, check, finish, sanitizer_env, sanitizer_new_reports, skip  # noqa: F401
