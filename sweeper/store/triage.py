"""Triage in the database: each step recorded in ``incident_history``, which refuses change.

The workflow itself (which step may follow which) is :mod:`sweeper.rules.triage`.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from sweeper.errors import TriageError
from sweeper.rules.triage import BREACH_STEPS, check_step
from sweeper.store.db import transaction
from sweeper.when import utc_now


def set_status(db: Database, incident_id: int, target: str, *, by: str, note: str) -> None:
    row = incident(db, incident_id)
    check_step(row["status"], target)
    if not by.strip():
        raise TriageError("say who made the decision (--by NAME)")
    now = utc_now()
    change = {"status": target, "updated_at": now}
    if target in BREACH_STEPS and not row["confirmed_at"]:
        change["confirmed_at"] = now  # the first step that says it is a breach
    with transaction(db):
        db.table("incidents").update(incident_id, change)
        record(
            db, incident_id, by=by, from_status=row["status"], to_status=target, note=note, at=now
        )


def record(
    db: Database,
    incident_id: int,
    *,
    by: str,
    from_status: str,
    to_status: str,
    note: str,
    at: str | None = None,
) -> None:
    db.table("incident_history").insert(
        {
            "incident_id": incident_id,
            "at": at or utc_now(),
            "by": by.strip(),
            "from_status": from_status,
            "to_status": to_status,
            "note": note.strip(),
        }
    )


def incident(db: Database, incident_id: int) -> dict[str, Any]:
    rows = list(db.query("select * from incidents where id = ?", [incident_id]))
    if not rows:
        raise TriageError(f"no incident {incident_id}")
    return rows[0]


def history(db: Database, incident_id: int) -> list[dict[str, Any]]:
    """The incident's steps, oldest first, with those of the incidents merged into it
    (each step keeps the id it was taken on, ``incident_id``)."""
    return list(
        db.query(
            "select at, by, from_status, to_status, note, incident_id from incident_history "
            "where incident_id = ? or incident_id in "
            "(select id from incidents where merged_into = ?) order by id",
            [incident_id, incident_id],
        )
    )


def reported_at(db: Database, incident_id: int) -> str | None:
    """When the incident was first reported to the authority, if it was."""
    row = db.execute(
        "select min(at) from incident_history where (incident_id = ? or incident_id in "
        "(select id from incidents where merged_into = ?)) and to_status = 'reported_to_authority'",
        [incident_id, incident_id],
    ).fetchone()
    return row[0] if row else None
