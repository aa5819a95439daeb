"""Runs and the mailboxes each run swept: what a run did, and each mailbox's nightly state.

Each run records the process that runs it (:mod:`sweeper.processes`), so that
:mod:`sweeper.store.recovery` can tell a run still going from one whose process died. Each
mailbox's high-water mark (the end of its last window read to the end) is where the next
incremental run starts reading it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlite_utils import Database

from sweeper.errors import MailboxStatus, RunStatus
from sweeper.logs import current_run_id
from sweeper.processes import process_started, this_host
from sweeper.store.db import insert_row, select_rows, transaction, update_row, upsert_row
from sweeper.when import utc_now


@dataclass
class RunTotals:
    mailboxes_total: int = 0
    swept: int = 0
    skipped: int = 0
    failed: int = 0
    messages_read: int = 0
    findings_new: int = 0
    throttled: int = 0
    malformed: int = 0
    incidents_touched: int = 0  # incidents created or extended by this run
    swept_disabled: int = 0  # of the swept: disabled accounts (shared mailboxes, leavers')
    excluded: int = 0  # of the skipped: named by sweep.exclude


def start_run(db: Database, since: str, until: str, mailboxes: list[str] | None) -> int:
    """Record a run as running, with the process that runs it (see :mod:`.recovery`)."""
    pid = os.getpid()
    with transaction(db):
        return insert_row(
            db,
            "runs",
            {
                "started_at": utc_now(),
                "status": "running",
                "since": since,
                "until": until,
                "mailbox_filter": orjson.dumps(mailboxes).decode() if mailboxes else None,
                "pid": pid,
                "pid_started": process_started(pid),
                "host": this_host(),
                "log_run_id": current_run_id(),  # joins the run to its log lines
            },
        )


def finish_run(
    db: Database, run_id: int, status: RunStatus, totals: RunTotals, error: str | None = None
) -> None:
    with transaction(db):
        update_row(
            db,
            "runs",
            run_id,
            {"finished_at": utc_now(), "status": status, "error": error, **totals.__dict__},
        )


def get_run(db: Database, run_id: int) -> dict[str, Any]:
    return dict(db.table("runs").get(run_id))


def last_run_of(path: Path) -> dict[str, Any]:
    """The latest run's row in the database at ``path``, opened read-only; {} if none."""
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("select * from runs order by id desc limit 1").fetchone()
    finally:
        conn.close()
    return dict(row) if row is not None else {}


def record_mailbox(
    db: Database,
    run_id: int,
    upn: str,
    user_id: str,
    status: MailboxStatus,
    *,
    messages: int = 0,
    findings_new: int = 0,
    throttled: int = 0,
    malformed: int = 0,
    error: str | None = None,
    window_until: str | None = None,
    window_since: str | None = None,
    targeted: bool = False,
    enabled: bool = True,
    run_only: bool = False,
) -> None:
    """What happened to one mailbox in one run; call inside the findings' transaction.

    A targeted run (chosen mailboxes, any window) is recorded with the run only: it leaves
    the mailbox's nightly state alone; so is a mailbox a run passed over without asking
    Graph (``run_only``: excluded, or not yet due for its weekly probe). The high-water
    mark moves only when a mailbox was read to the end; a mailbox that has none yet gets
    the start of the window it failed.
    """
    now = utc_now()
    insert_row(
        db,
        "run_mailboxes",
        {
            "run_id": run_id,
            "mailbox": upn,
            "status": status,
            "messages": messages,
            "findings_new": findings_new,
            "throttled": throttled,
            "malformed": malformed,
            "error": error,
            "window_since": window_since,
            "enabled": int(enabled),
        },
        replace=True,
    )
    if targeted or run_only:
        return
    row: dict[str, Any] = {
        "mailbox": upn,
        "user_id": user_id,
        "last_attempt_at": now,
        "last_status": status,
        "last_error": error,
        "last_run_id": run_id,
    }
    if status == "swept":
        row["last_success_at"] = now
        row["last_window_until"] = window_until
        upsert_row(db, "mailboxes", row, key="mailbox")
    elif window_since is not None:
        # Never read yet: the next incremental run starts where this window started,
        # however far the nightly window has moved on by then; a mark already set stays.
        row["last_window_until"] = window_since
        upsert_row(db, "mailboxes", row, key="mailbox", keep=("last_window_until",))
    else:
        upsert_row(db, "mailboxes", row, key="mailbox")


def without_mailbox(db: Database) -> dict[str, str]:
    """Accounts Graph last said have no mailbox, with when it said so (the last probe).

    A nightly mailbox is recorded ``skipped`` only when Graph answered that it has none."""
    return {
        r["mailbox"]: r["last_attempt_at"]
        for r in select_rows(
            db, "select mailbox, last_attempt_at from mailboxes where last_status = 'skipped'"
        )
    }


def mailbox_marks(db: Database) -> dict[str, str]:
    """The end of each mailbox's last successful nightly window (its high-water mark)."""
    return {
        r["mailbox"]: r["last_window_until"]
        for r in select_rows(
            db,
            "select mailbox, last_window_until from mailboxes where last_window_until is not null",
        )
    }
