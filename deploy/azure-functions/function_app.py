"""sweeper's nightly job as an Azure Function (Python v2 programming model).

Two timers: the nightly job at 05:30 UTC, and a frequent sweep every 15 minutes for alerts.
The nightly timer fires at 05:30 UTC: NCRONTAB has six fields, seconds first, and runs in UTC
(WEBSITE_TIME_ZONE is not honoured on Linux Consumption plans). The database lives in Blob
Storage under a lease (see README.md); Graph is signed in with the app's managed identity.
"""

import logging
import os

import azure.functions as func

from sweeper.commands.nightly import NightlyResult
from sweeper.errors import AlreadyRunning, SweeperError, describe_failure
from sweeper.hosting import run_in_function

app = func.FunctionApp()


@app.timer_trigger(
    schedule="0 30 5 * * *", arg_name="timer", run_on_startup=False, use_monitor=True
)
def nightly(timer: func.TimerRequest) -> None:
    result = _run(timer.past_due, "nightly run")
    for line in result.lines:
        logging.info(line)
    if result.exit_code == 3:
        # A failed run must show as a failed invocation in the portal and in alerts.
        raise RuntimeError("sweeper nightly run failed; see the log lines above")
    if result.exit_code == 1:
        logging.warning("sweeper nightly: some mailboxes could not be read (see the digest)")


# Frequent sweeps for alerts at once (see docs/alerts-and-siem.md, `sweeper alerts`): every 15 minutes an
# incremental sweep, then alerts; no digest, no purge. Change the NCRONTAB to change the
# pace. While the nightly run holds the database blob's lease, this one does nothing.
@app.timer_trigger(
    schedule="0 */15 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True
)
def frequent(timer: func.TimerRequest) -> None:
    try:
        result = _run(timer.past_due, "frequent sweep", frequent=True)
    except AlreadyRunning as exc:
        logging.info("sweeper frequent sweep skipped: %s", exc)
        return
    for line in result.lines:
        logging.info(line)
    if result.exit_code == 3:
        raise RuntimeError("sweeper frequent sweep failed; see the log lines above")


def _run(past_due: bool, what: str, *, frequent: bool = False) -> NightlyResult:
    """One run; a run that could not start (its state unread, say) fails with one line."""
    try:
        return run_in_function(past_due, os.environ, frequent=frequent)
    except AlreadyRunning:
        raise
    except SweeperError as exc:
        line, code = describe_failure(exc)
        logging.error("sweeper %s failed (exit %d): %s", what, code, line)
        raise RuntimeError(f"sweeper {what} failed: {line}") from None
