"""Scheduled entry point: sweep the configured tenant for the default window.

Run from cron or a timer as ``python jobs/sweep.py [--config PATH] [-v] [--since WHEN ...]``
(the same as ``sweeper [--config PATH] sweep [--since WHEN ...]``: sweeper's own options may
come anywhere); the exit code is sweeper's: 0 all swept, 1 some mailboxes failed, 2 bad
settings, 3 the run failed.
"""

from __future__ import annotations

import sys

from sweeper.cli import main
from sweeper.cligroup import job_arguments

if __name__ == "__main__":
    sys.exit(main(job_arguments("sweep", sys.argv[1:])))
