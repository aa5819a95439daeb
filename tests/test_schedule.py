"""The scheduler: the right times in the right zone, late runs kept, one at a time.

The clock is injected: the scheduler is driven step by step, no test sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.executors.debug import DebugExecutor
from apscheduler.schedulers.base import BaseScheduler
from support.runner import write_config

from sweeper.commands.schedule import JOB_ID, add_nightly, next_times
from sweeper.errors import ConfigError
from sweeper.settings import load_settings
from sweeper.settings.cron import cron_trigger

LONDON = "Europe/London"


class Clock:
    now = datetime(2027, 3, 26, 12, 0, tzinfo=UTC)


class FakeDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
        return Clock.now.astimezone(tz) if tz else Clock.now.replace(tzinfo=None)


class SteppedScheduler(BaseScheduler):  # type: ignore[misc]
    """Runs due jobs only when told to, at the injected time."""

    def wakeup(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)

    def step(self, moment: datetime) -> None:
        Clock.now = moment
        self._process_jobs()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> type[Clock]:
    monkeypatch.setattr("apscheduler.schedulers.base.datetime", FakeDatetime)
    monkeypatch.setattr("apscheduler.executors.base.datetime", FakeDatetime)
    Clock.now = datetime(2027, 3, 26, 12, 0, tzinfo=UTC)
    return Clock


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_job_fires_at_local_time_across_the_spring_dst_change(clock: type[Clock]) -> None:
    runs: list[datetime] = []
    scheduler = SteppedScheduler(executors={"default": DebugExecutor()}, timezone=UTC)
    add_nightly(scheduler, lambda: runs.append(Clock.now), "30 5 * * *", LONDON, 6 * 3600)
    scheduler.start()

    for moment in [
        "2027-03-27T05:29:00",  # not yet
        "2027-03-27T05:30:00",  # 05:30 GMT
        "2027-03-27T05:31:00",  # already done
        "2027-03-28T04:30:00",  # 05:30 BST: clocks went forward at 01:00 UTC
        "2027-03-28T05:30:00",  # not again at the old UTC time
        "2027-03-29T06:30:00",  # two hours late (the host slept): still runs
        "2027-03-31T12:00:00",  # 7.5 hours after the 31st's slot: beyond the grace
    ]:
        scheduler.step(utc(moment))

    assert runs == [
        utc("2027-03-27T05:30:00"),
        utc("2027-03-28T04:30:00"),
        utc("2027-03-29T06:30:00"),
    ]
    job = scheduler.get_job(JOB_ID)
    assert (job.misfire_grace_time, job.coalesce, job.max_instances) == (6 * 3600, True, 1)
    assert job.trigger.timezone == ZoneInfo(LONDON)
    scheduler.shutdown(wait=False)


def test_autumn_fire_times_keep_the_local_hour() -> None:
    times = next_times(cron_trigger("30 5 * * *", LONDON), utc("2027-10-29T12:00:00"), 4)
    assert [t.astimezone(UTC).isoformat() for t in times] == [
        "2027-10-30T04:30:00+00:00",  # BST
        "2027-10-31T05:30:00+00:00",  # GMT from 31 October
        "2027-11-01T05:30:00+00:00",
        "2027-11-02T05:30:00+00:00",
    ]
    assert {t.astimezone(ZoneInfo(LONDON)).hour for t in times} == {5}


@pytest.mark.parametrize(
    ("dow", "weekdays"),
    [("0", {6}), ("7", {6}), ("1-5", {0, 1, 2, 3, 4}), ("6,0", {5, 6}), ("*", set(range(7)))],
)
def test_day_of_week_numbers_mean_what_they_mean_in_crontab(dow: str, weekdays: set[int]) -> None:
    times = next_times(cron_trigger(f"0 6 * * {dow}", "UTC"), utc("2027-01-01T00:00:00"), 14)
    assert {t.weekday() for t in times} == weekdays


@pytest.mark.parametrize(
    ("cron", "zone", "named"),
    [
        ("30 5 * *", "UTC", "schedule.cron"),
        ("61 5 * * *", "UTC", "schedule.cron"),
        ("30 5 * * 8", "UTC", "schedule.cron"),
        ("30 5 * * *", "Mars/Olympus", "schedule.timezone"),
    ],
)
def test_bad_schedules_are_named(cron: str, zone: str, named: str) -> None:
    with pytest.raises(ConfigError) as error:
        cron_trigger(cron, zone)
    assert error.value.setting == named


SIGNED_IN = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s"}


def test_a_bad_cron_stops_the_commands_that_sweep_not_the_listings(tmp_path: Path) -> None:
    """Compiling the expression loads apscheduler; the listings start without it."""
    config = write_config(tmp_path / "c.toml", '[schedule]\ncron = "61 5 * * *"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config, SIGNED_IN)
    assert error.value.setting == "schedule.cron"
    assert load_settings(config, {}, need_graph=False).schedule.cron == "61 5 * * *"


@pytest.mark.parametrize("need_graph", [True, False])
def test_a_bad_schedule_zone_stops_every_command(tmp_path: Path, need_graph: bool) -> None:
    config = write_config(tmp_path / "c.toml", '[schedule]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(config, SIGNED_IN, need_graph=need_graph)
    assert error.value.setting == "schedule.timezone"


@pytest.mark.slow
def test_sweeper_schedule_logs_the_next_run_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        '[schedule]\ncron = "30 5 * * 1-5"\ntimezone = "Europe/London"\n',
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SWEEPER_DB": str(tmp_path / "s.db"),
        "AZURE_TENANT_ID": "t",
        "AZURE_CLIENT_ID": "c",
        "AZURE_CLIENT_SECRET": "s",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sweeper.cli", "--config", str(config), "schedule"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    started = time.monotonic()
    line = ""
    while "next run at" not in line and time.monotonic() - started < 30:
        line = process.stderr.readline()
    assert "'30 5 * * 1-5' in Europe/London; next run at 20" in line
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=30)
    rest = process.stderr.read()
    assert code == 0, rest
    assert "sweeper schedule stopped" in rest
