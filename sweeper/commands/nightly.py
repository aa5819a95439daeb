"""The nightly job: sweep the default window, send the digest, purge what is past retention.

In order: the sweep, its alerts (within ``alerts.budget_seconds``, so a slow channel never
holds what follows), the digest, the Sentinel export (after the digest, which it never
delays, within what the alerts left of that budget: the digest's own time is not counted),
then the purge.

One nightly run at a time (a ``sweep`` or ``lookup`` started by hand may run beside it).

Exit codes: 0 all good; 1 partial (some mailboxes failed; the digest was still sent and
says so); 2 a configuration error; 3 the run failed (sign-in refused, the digest could not
be delivered, or another run holds the lock).

The lock is an ``flock`` on a file beside the database: the kernel drops it when the
process ends, however it ends, so a crashed run never blocks the next night. Runs a crash
left marked ``running`` are marked failed at the next start, so the digest reports them,
once their process is known to be gone (:mod:`sweeper.store.recovery`): a sweep still running
beside this one is left alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from sweeper import store
from sweeper.commands.sweep import SweepReport, Window, run_summary, sweep_tenant
from sweeper.errors import exit_code_for
from sweeper.processes import single_run
from sweeper.settings import Settings
from sweeper.store.recovery import recover
from sweeper.store.retention import purge


@dataclass
class NightlyResult:
    exit_code: int
    lines: list[str]


def lock_path_for(settings: Settings) -> Path:
    return settings.database.with_name(settings.database.name + ".lock")


def run_locked(settings: Settings, env: Mapping[str, str]) -> NightlyResult:
    """One nightly run under the lock; AlreadyRunning if another holds it."""
    with single_run(lock_path_for(settings)):
        return run_nightly(settings, env)


def run_frequent(settings: Settings, env: Mapping[str, str]) -> NightlyResult:
    """A frequent sweep under the nightly lock: AlreadyRunning while the nightly job (or
    another frequent sweep) runs."""
    with single_run(lock_path_for(settings)):
        return frequent_sweep(settings, env)


def frequent_sweep(settings: Settings, env: Mapping[str, str]) -> NightlyResult:
    """A frequent sweep (``alerts.sweep_every``): an ordinary incremental run, then alerts;
    no digest and no retention, which stay with the nightly job. The caller holds the lock
    (or, in Azure Functions, the database blob's lease)."""
    db = store.open_db(settings.database)
    try:
        lines: list[str] = []
        report = _sweep(db, settings, env, datetime.now(UTC), lines)
        from sweeper.commands.aftersweep import after_sweep  # loaded once the sweep is done

        lines += after_sweep(db, settings, env, report.run_id)
        return NightlyResult(exit_code_for(report.status), lines)
    finally:
        db.conn.close()


def _sweep(
    db: Database, settings: Settings, env: Mapping[str, str], until: datetime, lines: list[str]
) -> SweepReport:
    """Put right what a killed run left, then sweep incrementally up to ``until``; what
    each step says is added to ``lines``."""
    recovered = recover(
        db,
        settings.incident_window,
        settings.severity,
        holding_lock=True,
        now=until,
        reexposure=settings.reexposure_window,
    )
    if recovered.summary():
        lines.append(recovered.summary())
    window = Window(until - settings.window - settings.overlap, until)
    report = asyncio.run(sweep_tenant(settings, env, db, window, incremental=True))
    lines.append(run_summary(report))
    return report


def run_nightly(
    settings: Settings, env: Mapping[str, str], *, now: datetime | None = None
) -> NightlyResult:
    """Sweep, alert, digest, then Sentinel. The caller holds the lock (see
    :func:`single_run`)."""
    db = store.open_db(settings.database)
    try:
        return _sweep_then_digest(db, settings, env, now)
    finally:
        db.conn.close()


@dataclass
class _Digest:
    """The nightly digest, sent between the alerts and the Sentinel export (a slow
    Sentinel never holds it); ``status`` is its outcome's once sent."""

    db: Database
    settings: Settings
    env: Mapping[str, str]
    now: datetime | None
    status: str = "nothing"

    def send(self) -> list[str]:
        from sweeper.commands.digest import run_digest  # loaded once the sweep is done

        send = bool(self.settings.digest.recipients)
        digest = run_digest(self.db, self.settings, self.env, send=send, now=self.now)
        self.status = digest.status
        return [digest.message if send else f"{digest.message}\n(no digest.recipients: not sent)"]


def _sweep_then_digest(
    db: Database, settings: Settings, env: Mapping[str, str], now: datetime | None
) -> NightlyResult:
    lines: list[str] = []
    until = now or datetime.now(UTC)
    report = _sweep(db, settings, env, until, lines)
    digest = _Digest(db, settings, env, now)
    from sweeper.commands.aftersweep import after_sweep  # loaded once the sweep is done

    lines += after_sweep(db, settings, env, report.run_id, before_export=digest.send)
    purged = purge(db, settings.retention, until)
    if purged.incidents:
        lines.append(purged.summary())
    return NightlyResult(exit_code_for(report.status, digest.status), lines)
