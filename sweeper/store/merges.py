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

The merging itself is here too: :func:`merge_into_one` (``lookup``: the findings of one
reported message in one incident) and :func:`regroup_reexposures` (``reclassify``: an
incident showing an earlier one's people again joins it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
from sqlite_utils import Database

from sweeper.rules.incidents import Group, Member, repeats_list
from sweeper.rules.severity import SeverityRule
from sweeper.rules.triage import BREACH_STEPS
from sweeper.store.db import select_rows, transaction, update_row
from sweeper.store.incidents import incident_members, refresh_incident
from sweeper.store.triage import incident, record
from sweeper.when import iso

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


def regroup_reexposures(db: Database, rule: SeverityRule, reexposure: timedelta) -> list[int]:
    """Merge into an earlier incident each later one whose first message shows the earlier
    incident's people again from the same sender, soon after (rule 4 of grouping, for
    incidents placed before the rule existed or before the window was widened).

    Returns the incidents merged away. Decisions and history follow the merge
    (:func:`merge_into_one`)."""
    merged: list[int] = []
    rows = select_rows(
        db,
        "select id, sender, first_sent_at, last_sent_at from incidents "
        "where merged_into is null and purged_at is null and sender is not null "
        "and first_sent_at is not null and status not in ('false_positive', 'closed') "
        "order by first_sent_at, id",
    )
    for later in rows:
        soonest = iso(datetime.fromisoformat(later["first_sent_at"]) - reexposure)
        candidates = [  # the same sender's, begun before it, recent enough: nothing loaded yet
            e
            for e in rows
            if e["id"] != later["id"]
            and e["id"] not in merged
            and e["sender"] == later["sender"]
            and e["first_sent_at"] <= later["first_sent_at"]
            and (e["last_sent_at"] or e["first_sent_at"]) >= soonest
        ]
        founder = _first_member(db, later["id"]) if candidates else None
        if founder is None or later["id"] in merged:
            continue
        for earlier in candidates:
            group = Group(earlier["id"], _members(db, earlier["id"]))
            if group.members and repeats_list(founder, group, reexposure):
                ids = [
                    r["id"]
                    for r in select_rows(
                        db,
                        "select id from findings where incident_id in (?, ?)",
                        [earlier["id"], later["id"]],
                    )
                ]
                why = f"reclassify: incident {later['id']} shows the list of {earlier['id']} again"
                target = merge_into_one(db, ids, rule, why, by="sweeper reclassify")
                merged.append(later["id"] if target == earlier["id"] else earlier["id"])
                break
    return merged


def _members(db: Database, incident_id: int) -> list[Member]:
    return incident_members(db, [incident_id]).get(incident_id, [])


def _first_member(db: Database, incident_id: int) -> Member | None:
    members = _members(db, incident_id)
    return members[0] if members else None


def merge_into_one(
    db: Database,
    finding_ids: list[int],
    rule: SeverityRule,
    why: str,
    *,
    by: str = "sweeper lookup",
) -> int:
    """Put the findings in one incident, the oldest of theirs; the others are merged into it,
    with everything attached to them (:mod:`sweeper.store.merges`).

    The incidents read are the ones merged, whoever else writes: one write transaction.
    """
    listed = orjson.dumps(finding_ids).decode()
    with transaction(db):
        incidents = sorted(
            {
                r[0]
                for r in db.execute(
                    "select incident_id from findings where id in (select value from json_each(?))",
                    [listed],
                ).fetchall()
            }
        )
        target, others = int(incidents[0]), incidents[1:]
        db.execute(
            "update findings set incident_id = ? where id in (select value from json_each(?))",
            [target, listed],
        )
        move_attachments(db, target, others)
        for other in others:
            refresh_incident(db, other, rule)
        refresh_incident(db, target, rule)
        _carry_decisions(db, target, others, why, by)
    return target


def _carry_decisions(db: Database, target: int, others: list[int], why: str, by: str) -> None:
    """The merged incident was detected when the first of its parts was, confirmed when the
    first was, and is at least as far along as a breach as any part; the history says so."""
    db.execute(
        "update incidents set detected_at = (select min(detected_at) from incidents "
        "where id = ? or merged_into = ?) where id = ?",
        [target, target, target],
    )
    was = incident(db, target)["status"]
    status, confirmed = carried_decision(db, target)
    update_row(db, "incidents", target, {"status": status, "confirmed_at": confirmed})
    parts = [f"{o} ({incident(db, o)['status']})" for o in others]
    count = db.execute("select count(*) from findings where incident_id = ?", [target])
    record(
        db,
        target,
        by=by,
        from_status=was,
        to_status=status,
        note=f"{why}: {count.fetchone()[0]} message(s) in this incident"
        + (f"; merged incidents {', '.join(parts)}" if parts else "")
        + (f"; status {status}, as a merged incident had" if status != was else ""),
    )
