"""``sweeper schedule`` as a service: the scheduler's loop and the jobs it runs.

The nightly job runs on the configured cron schedule (:mod:`.schedule`), and with
``alerts.sweep_every`` a frequent sweep between. Each job gets a run id of its own and
logs how it went; a job that fails is one log line and the service stays up for the next.
A SIGTERM or SIGINT stops the service after the running job, if any.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from sweeper import logs
from sweeper.commands.nightly import NightlyResult, run_frequent, run_locked
from sweeper.commands.schedule import add_frequent, add_nightly, next_times, stop_on_sigterm
from sweeper.errors import AlreadyRunning, describe_failure
from sweeper.settings import Settings
from sweeper.settings.cron import cron_trigger

# The service's lines are the command line's: they keep its logger's name.
log = logging.getLogger("sweeper")


def serve_schedule(settings: Settings, env: Mapping[str, str] = os.environ) -> None:
    """Run the jobs on their schedule until a SIGTERM or SIGINT, then stop after the
    running job."""
    plan = settings.schedule
    scheduler = BackgroundScheduler(timezone=plan.timezone)
    add_nightly(
        scheduler,
        lambda: scheduled_run(settings, env),
        plan.cron,
        plan.timezone,
        plan.misfire_grace_minutes * 60,
    )
    every = settings.alerts.sweep_every
    if every is not None:
        add_frequent(scheduler, lambda: frequent_run(settings, env), every)
    stop = threading.Event()
    stop_on_sigterm(stop)  # from here on a SIGTERM only sets ``stop``, however early it comes
    log.setLevel(logging.INFO)  # a service's log says what it does
    upcoming = next_times(cron_trigger(plan.cron, plan.timezone), datetime.now(UTC), 1)
    scheduler.start()
    try:
        log.info(
            "sweeper schedule: '%s' in %s; next run at %s%s",
            plan.cron,
            plan.timezone,
            upcoming[0].isoformat() if upcoming else "never",
            f"; a frequent sweep every {every}" if every else "",
        )
        # A signal may be delivered to the scheduler's thread, which cannot interrupt a
        # wait in this one: Python runs the handler only when this thread next runs code.
        # Waking each second lets it run (a wait without a timeout hung now and then).
        while not stop.wait(timeout=1.0):
            pass
        log.info("signal received: stopping after the running job, if any")
    finally:
        scheduler.shutdown(wait=True)  # after the running job, if any
        log.info("sweeper schedule stopped")


def scheduled_run(settings: Settings, env: Mapping[str, str] = os.environ) -> None:
    """One nightly run from the scheduler, with a run id of its own; its outcome is logged.

    Whatever goes wrong is one log line: the scheduler stays up for the next night.
    """
    _logged_run("nightly run", lambda: run_locked(settings, env))


def frequent_run(settings: Settings, env: Mapping[str, str] = os.environ) -> None:
    """One frequent sweep from the scheduler; skipped while the nightly job runs."""
    _logged_run("frequent sweep", lambda: run_frequent(settings, env), skip_busy=True)


def _logged_run(what: str, run: Callable[[], NightlyResult], *, skip_busy: bool = False) -> None:
    """Run a scheduled job with a run id of its own and log how it went, in lines; a job
    that fails is one error line (``skip_busy``: one that finds the lock taken, info)."""
    logs.new_run_id()
    try:
        result = run()
    except Exception as exc:  # noqa: BLE001 - one failed run must not stop the service
        if skip_busy and isinstance(exc, AlreadyRunning):
            log.info("%s skipped: %s", what, exc)
            return
        line, code = describe_failure(exc)
        log.debug("the %s failed", what, exc_info=exc)
        log.error("%s failed (exit code %d): %s", what, code, line)
        return
    for line in result.lines:
        log.info("%s", line)
    log.info("%s finished with exit code %d", what, result.exit_code)
