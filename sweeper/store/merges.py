"""What follows an incident when ``lookup`` merges it into another: everything attached to it.

An incident is referred to from several tables. When incidents are merged, the survivor
(the oldest) must show everything the merged-away ones had, so each reference is one of:

- **moved** (:data:`MOVED`): the row is re-pointed at the survivor, in the merge's
  transaction: its findings (all of them, not only the ones the lookup found), the export
  files whose purge it now owns, and the incidents that had been merged into a merged-away
  one (so that every merged-away incident names the survivor directly, one step away).
- **read through the merge** (:data:`READ_THROUGH`): a record of what was done to that
  incident, kept under the id it was made for: the triage history and the console audit
  (both append-only: the database refuses to change them), the alerts sent, and what each
  digest reported. Every read of them for an incident reads its whole :func:`family`: the
  incident and every incident merged into it (``merged_into`` is indexed, migration
  ``0021_merge_follows``).

``tests/test_merges.py`` walks every table with an incident reference and fails for one
that is in neither list, so a new table cannot be forgotten.
"""

from __future__ import annotations

from sqlite_utils import Database

from sweeper.rules.triage import BREACH_STEPS

MOVED: dict[str, str] = {
    "findings": "incident_id",
    "exports": "incident_id",
    "incidents": "merged_into",
}
READ_THROUGH: dict[str, str] = {
    "incident_history": "incident_id",  # sweeper.store.triage.history, reported_at
    "console_audit": "incident_id",  # sweeper.store.audit.accesses
    "alerts": "incident_id",  # sweeper.store.alerts.alerted
    "digest_items": "item_id",  # kind 'incident': sweeper.store.digests (what was reported)
}
# Not attached to the incident but a record sent about it: Sentinel has each incident's
# own record (a merged-away one is sent again, with MergedInto naming the survivor).
OWN_RECORDS: dict[str, str] = {"siem_sent": "item"}


def family(db: Database, incident_id: int) -> list[int]:
    """The incident and every incident merged into it, oldest first."""
    rows = db.execute(
        "select id from incidents where id = ? or merged_into = ? order by id",
        [incident_id, incident_id],
    )
    return [int(r[0]) for r in rows.fetchall()]


def move_attachments(db: Database, target: int, others: list[int]) -> None:
    """Re-point at ``target`` every moved reference to ``others`` (inside the caller's
    transaction), and mark ``others`` merged into it."""
    for other in others:
        for table, column in MOVED.items():
            move = f"update {table} set {column} = ? where {column} = ?"  # noqa: S608 (constants)
            db.execute(move, [target, other])
        db.execute("update incidents set merged_into = ? where id = ?", [target, other])


def carried_decision(db: Database, target: int) -> tuple[str, str | None]:
    """The survivor's status and confirmation after a merge: the earliest confirmation of
    any part (the Article 33 clock runs from it), and, for a survivor not yet judged a
    breach, the furthest breach step a merged part had reached."""
    rows = db.execute(
        "select id, status, confirmed_at from incidents where id = ? or merged_into = ? "
        "order by id",
        [target, target],
    ).fetchall()
    status = next(r[1] for r in rows if r[0] == target)
    confirmed = min((r[2] for r in rows if r[2]), default=None)
    if status in ("new", "acknowledged"):
        steps = [r[1] for r in rows if r[1] in BREACH_STEPS]
        if steps:
            status = max(steps, key=BREACH_STEPS.index)
    return status, confirmed
