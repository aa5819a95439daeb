"""What a process killed mid-run left behind, put right by the next command to open the database.

A run is recorded ``running`` when it starts and gets its end when it finishes, fails, or
is stopped by an exception. A process killed outright (SIGKILL, the out-of-memory killer, a
container or machine gone) leaves its run ``running`` for ever, and the findings it stored
without an incident (a sweep places its findings in incidents at its end): the next digest
would read as a quiet night. :func:`recover` marks such runs failed, so that the digest
reports a failed sweep, and places their findings in incidents.

Other processes may be running at the same time (a ``sweep`` started by hand takes no lock),
so a run is marked failed only when its process is known to be gone:

- recorded on this host: no process has its pid any more, or the pid now belongs to a
  later process (its start time differs from the one recorded);
- recorded on another host (a database moved between machines, as the blob-held state of
  Azure Functions is): its pid means nothing here, so it is taken for dead
  :data:`DEAD_AFTER` after it started, far longer than any sweep takes and longer than the
  nightly schedule leaves between two runs;
- recorded before runs recorded their process (no pid): dead when the caller holds the
  nightly lock, as every run was judged before, or after :data:`DEAD_AFTER`.

Hosts are told apart by name: containers sharing one database need distinct host names
(each container's own, as Docker gives by default), since their pids are not comparable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from sweeper import store
from sweeper.processes import process_alive, process_started, this_host
from sweeper.rules.incidents import REEXPOSURE
from sweeper.rules.severity import SeverityRule
from sweeper.store.incidents import assign_incidents, unplaced_findings
from sweeper.when import utc_now

log = logging.getLogger(__name__)

DEAD_AFTER = timedelta(hours=24)
INTERRUPTED = "interrupted: the process ended before the run finished"


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover` did."""

    runs: tuple[int, ...] = ()  # runs marked failed, their process being gone
    findings: int = 0  # findings without an incident, now placed in one
    incidents: tuple[int, ...] = ()  # the incidents created or extended for them

    def summary(self) -> str:
        """One line for a command to print or log; empty when there was nothing to do."""
        parts = []
        if self.runs:
            parts.append(f"{len(self.runs)} earlier run(s) had been interrupted; marked failed.")
        if self.findings:
            parts.append(
                f"{self.findings} finding(s) left without an incident were placed in "
                f"{len(self.incidents)} incident(s)."
            )
        return " ".join(parts)


def recover(
    db: Database,
    incident_window: timedelta,
    rule: SeverityRule,
    *,
    holding_lock: bool = False,
    now: datetime | None = None,
    reexposure: timedelta = REEXPOSURE,
) -> Recovery:
    """Mark failed the runs whose process is gone; place findings left without an incident.

    Safe to call from any command at any time, while other processes run: a run whose
    process may still be alive is left alone, as are the findings of runs still running
    (such a run places them when it ends); what is put right is judged again and written
    in one write transaction, taken only when there is something to put right, so that a
    command that only reads usually takes no write lock.
    ``holding_lock``: the caller holds the nightly lock, so a run that recorded no process
    cannot be another nightly run's.
    """
    now = now or datetime.now(UTC)
    host = this_host()
    if not _dead_runs(db, host, now, holding_lock) and not unplaced_findings(db, settled_only=True):
        return Recovery()  # the usual case, found by reading alone: no write lock taken
    with store.transaction(db):  # judged again under the lock: another process may be here
        dead = _dead_runs(db, host, now, holding_lock)
        for run_id, reason in dead:
            db.table("runs").update(
                run_id, {"status": "failed", "finished_at": utc_now(), "error": reason}
            )
            log.warning("run %d was still marked running: %s; marked failed", run_id, reason)
        orphans = unplaced_findings(db, settled_only=True)
        incidents = assign_incidents(
            db, incident_window, rule, settled_only=True, reexposure=reexposure
        )
    return Recovery(tuple(run_id for run_id, _ in dead), len(orphans), tuple(incidents))


def _dead_runs(db: Database, host: str, now: datetime, holding_lock: bool) -> list[tuple[int, str]]:
    """The runs still marked running whose process is gone, each with why."""
    dead = []
    for run in db.query("select * from runs where status = 'running' order by id"):
        reason = interruption(run, host=host, now=now, holding_lock=holding_lock)
        if reason is not None:
            dead.append((int(run["id"]), reason))
    return dead


def interruption(
    run: Mapping[str, Any], *, host: str, now: datetime, holding_lock: bool
) -> str | None:
    """Why a run still marked running has ended (the error to record), or None while its
    process may still be running it. See the module's docstring for the rules."""
    pid = run.get("pid")
    if pid is None:
        if holding_lock:
            return INTERRUPTED
        return _overdue(run, now, "no process recorded")
    if run.get("host") != host:
        return _overdue(run, now, f"pid {pid} on {run.get('host') or 'an unknown host'}")
    if not process_alive(pid):
        return f"{INTERRUPTED} (pid {pid})"
    started = run.get("pid_started")
    now_started = process_started(pid)
    if started is not None and now_started is not None and started != now_started:
        return f"{INTERRUPTED} (pid {pid}, now another process's)"
    return None


def _overdue(run: Mapping[str, Any], now: datetime, who: str) -> str | None:
    """Dead if started more than DEAD_AFTER ago: a process this host cannot check."""
    started = datetime.fromisoformat(run["started_at"])
    if now - started <= DEAD_AFTER:
        return None
    hours = int(DEAD_AFTER.total_seconds() // 3600)
    return f"interrupted: not finished {hours} h after it started ({who})"
