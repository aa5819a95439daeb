"""Long-running entry point: run the nightly job on the configured schedule.

For hosts without cron or systemd timers, and the container image:
``python jobs/scheduler.py [--config PATH]`` (the same as ``sweeper schedule``). See the
``[schedule]`` section of the configuration; stops cleanly on SIGTERM.
"""

from __future__ import annotations

import sys

from sweeper.cli import main
from sweeper.cligroup import job_arguments

if __name__ == "__main__":
    sys.exit(main(job_arguments("schedule", sys.argv[1:])))
