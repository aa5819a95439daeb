"""Where an incident stands, and who moved it there. Pure rules plus their storage.

    new → acknowledged → false_positive | notified | reported_to_authority → closed

``notified`` (the people, Article 34) and ``reported_to_authority`` (Article 33) may follow
each other, since many incidents need both. Every step is kept in ``incident_history``,
which the database refuses to change or delete.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from .errors import TriageError
from .store import transaction
from .when import utc_now

STATUSES = (
    "new",
    "acknowledged",
    "false_positive",
    "notified",
    "reported_to_authority",
    "closed",
)
ALLOWED: dict[str, tuple[str, ...]] = {
    "new": ("acknowledged",),
    "acknowledged": ("false_positive", "notified", "reported_to_authority"),
    "notified": ("reported_to_authority", "closed"),
    "reported_to_authority": ("notified", "closed"),
    "false_positive": ("closed",),
    "closed": (),
}
NOT_REPORTED = ("false_positive", "closed")  # the digest does not report these again


def check_step(current: str, target: str) -> None:
    if target not in STATUSES:
        raise TriageError(f"unknown status {target!r} (one of {', '.join(STATUSES)})")
    if target not in ALLOWED[current]:
        allowed = ", ".join(ALLOWED[current]) or "nothing: it is closed"
        raise TriageError(f"an incident that is {current} can move to {allowed}, not {target}")


def set_status(db: Database, incident_id: int, target: str, *, by: str, note: str) -> None:
    row = incident(db, incident_id)
    check_step(row["status"], target)
    if not by.strip():
        raise TriageError("say who made the decision (--by NAME)")
    with transaction(db):
        db.table("incidents").update(incident_id, {"status": target, "updated_at": utc_now()})
        record(db, incident_id, by=by, from_status=row["status"], to_status=target, note=note)


def record(
    db: Database, incident_id: int, *, by: str, from_status: str, to_status: str, note: str
) -> None:
    db.table("incident_history").insert(
        {
            "incident_id": incident_id,
            "at": utc_now(),
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
    return list(
        db.query(
            "select at, by, from_status, to_status, note from incident_history "
            "where incident_id = ? order by id",
            [incident_id],
        )
    )
