"""Scheduled entry point: the nightly job (sweep, then digest), one run at a time.

For cron and systemd: ``python jobs/nightly.py [--config PATH]`` (the same as
``sweeper [--config PATH] nightly``). Exit codes: 0 all good, 1 some mailboxes failed (the
digest was sent and says so), 2 configuration error, 3 the run failed or another holds the lock.
"""

from __future__ import annotations

import sys

from sweeper.cli import main
from sweeper.cligroup import job_arguments

if __name__ == "__main__":
    sys.exit(main(job_arguments("nightly", sys.argv[1:])))
