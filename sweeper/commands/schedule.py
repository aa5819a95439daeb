"""``sweeper schedule``: a long-running scheduler for hosts without cron or systemd timers.

APScheduler's own defaults would hurt here: a job late by more than one second is skipped
(``misfire_grace_time=1``), and a trigger built without a zone uses the machine's. So the
trigger always gets the configured zone, a late run still runs within a grace of hours
(default 6), missed runs are coalesced into one, and only one instance runs at a time.

The cron expression is the usual five fields with the usual day-of-week numbers (0 and 7
are Sunday): :func:`sweeper.settings.cron.cron_trigger`, which the settings check it with.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from sweeper.settings.cron import cron_trigger

log = logging.getLogger(__name__)
JOB_ID = "nightly"


def add_nightly(
    scheduler: BaseScheduler,
    job: Callable[[], Any],
    expression: str,
    timezone: str,
    grace_seconds: int,
) -> None:
    scheduler.add_job(
        job,
        cron_trigger(expression, timezone),
        id=JOB_ID,
        name="sweeper nightly",
        misfire_grace_time=grace_seconds,
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )

    def after(event: JobExecutionEvent) -> None:
        if event.exception is not None:
            log.error("the nightly job failed: %s", event.exception)
        next_run = scheduler.get_job(JOB_ID)
        if next_run is not None and next_run.next_run_time is not None:
            log.info("next run at %s", next_run.next_run_time.isoformat())

    scheduler.add_listener(after, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)


FREQUENT_ID = "frequent"


def add_frequent(scheduler: BaseScheduler, job: Callable[[], Any], every: timedelta) -> None:
    """An incremental sweep every ``every`` (``alerts.sweep_every``): one at a time, a late
    one run once (not one per missed interval), skipped while the nightly job holds the lock."""
    scheduler.add_job(
        job,
        IntervalTrigger(seconds=int(every.total_seconds())),
        id=FREQUENT_ID,
        name="sweeper frequent sweep",
        misfire_grace_time=int(every.total_seconds()),
        coalesce=True,
        max_instances=1,
        replace_existing=True,
    )


def next_times(trigger: CronTrigger, start: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times after ``start``, as the scheduler computes them."""
    times: list[datetime] = []
    previous: datetime | None = None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        times.append(fire)
        previous, now = fire, fire
    return times


def stop_on_sigterm(stop: threading.Event) -> None:
    """SIGTERM (systemd, docker stop) and SIGINT set ``stop``: the caller then shuts the
    scheduler down after the running job, and says so. The handler only sets the event: a
    handler that logged could interrupt a log line being written to stderr, and the
    logging module's "reentrant call" error then kept the event from being set at all."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
