"""Who looked at personal data, and when: the console's audit trail, append-only.

Every reveal of an incident's addresses, every download of its worksheet or of the people
to notify, and every triage step made in the console is a row of ``console_audit``: who
(the signed-in account, as Entra ID named it), from where (the client's address as the
console saw it), when, what, and about which incident. The database refuses to change or
remove a row (triggers, migration ``0017_console_audit``), as it does for the triage
history: a DPO answering a regulator can show every look at the people exposed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlite_utils import Database

from sweeper.when import utc_now

Action = Literal["reveal", "worksheet", "export", "triage"]
"""What was done: addresses shown unmasked; the worksheet or the export downloaded; a
triage step taken (its history row says which)."""


@dataclass(frozen=True)
class Access:
    at: str
    who: str  # the account's user principal name, from its ID token
    name: str  # its display name, for people reading the trail
    source: str  # the client's address, as the console saw it
    action: Action
    incident_id: int | None
    detail: str


def record_access(
    db: Database,
    *,
    who: str,
    name: str,
    source: str,
    action: Action,
    incident_id: int | None,
    detail: str = "",
) -> Access:
    """Add one row to the trail (inside the caller's transaction, if any) and return it."""
    access = Access(utc_now(), who, name, source, action, incident_id, detail)
    db.execute(
        "insert into console_audit (at, who, name, source, action, incident_id, detail) "
        "values (?, ?, ?, ?, ?, ?, ?)",
        [access.at, who, name, source, action, incident_id, detail],
    )
    return access


def accesses(db: Database, incident_id: int) -> list[Access]:
    """The incident's trail, oldest first, with the trails of the incidents merged into it
    (each access keeps the id it was recorded on)."""
    rows = db.execute(
        "select at, who, name, source, action, incident_id, detail from console_audit "
        "where incident_id = ? or incident_id in (select id from incidents where merged_into = ?) "
        "order by id",
        [incident_id, incident_id],
    ).fetchall()
    return [Access(*row) for row in rows]
