"""Incidents in the database: placing new findings, keeping each incident's figures current.

The judgement lives in :mod:`sweeper.rules.incidents` (pure); this module only loads what it
needs and writes what it decides.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlite_utils import Database

from sweeper.rules.incidents import (
    REEXPOSURE,
    EarlierList,
    Group,
    Member,
    MessageFigures,
    normalise_subject,
    place,
    summarise,
)
from sweeper.rules.severity import LEVELS, SeverityRule
from sweeper.store.db import insert_row, select_rows, transaction, update_row
from sweeper.when import iso, utc_now


def assign_incidents(
    db: Database,
    window: timedelta,
    rule: SeverityRule,
    *,
    settled_only: bool = False,
    run_id: int | None = None,
    reexposure: timedelta = REEXPOSURE,
) -> list[int]:
    """Place every qualifying finding not yet in an incident, oldest first.

    Returns the ids of the incidents created or extended. Safe to call at any time, from
    any process: the findings are read inside the same write transaction that places them,
    so two processes never place one finding twice, and a finding is never moved.
    ``settled_only``: see :func:`unplaced_findings`. ``run_id``: the incidents of findings
    placed before this run, to which it found another mailbox's copy, are refreshed too (the
    From mailbox's copy may have brought its department, see ``store.save_findings``).
    ``reexposure``: how soon after an incident's latest message the same sender showing the
    same people again joins it (``incidents.reexposure_days``, rule 4 of grouping).
    """
    touched: set[int] = set()
    with transaction(db):
        if run_id is not None:
            for row in select_rows(
                db,
                "select distinct f.incident_id from finding_copies c join findings f "
                "on f.id = c.finding_id where c.run_id = ? and f.incident_id is not null "
                "and f.run_id != ?",
                [run_id, run_id],
            ):
                refresh_incident(db, row["incident_id"], rule)
        unplaced = unplaced_findings(db, settled_only=settled_only)
        for row, member in zip(unplaced, members_of(db, unplaced), strict=True):
            group = place(member, _candidates(db, row, reexposure), window, reexposure)
            incident_id = group.id if group else _new_incident(db, row)
            db.execute("update findings set incident_id = ? where id = ?", [incident_id, row["id"]])
            touched.add(incident_id)
        for incident_id in touched:
            refresh_incident(db, incident_id, rule)
    return sorted(touched)


def unplaced_findings(db: Database, *, settled_only: bool = False) -> list[dict[str, Any]]:
    """Qualifying findings in no incident yet, oldest first.

    ``settled_only`` leaves out the findings of runs still running: such a run places them
    itself when it ends, and counts the incidents it touched.
    """
    return select_rows(
        db,
        "select * from findings where incident_id is null and qualifies = 1 "
        "and (? = 0 or not exists (select 1 from runs r where r.id = findings.run_id "
        "and r.status = 'running')) "
        "order by sent_at is null, sent_at, id",
        [int(settled_only)],
    )


def refresh_all(db: Database, rule: SeverityRule) -> int:
    ids = [r["id"] for r in select_rows(db, "select id from incidents")]
    with transaction(db):
        for incident_id in ids:
            refresh_incident(db, incident_id, rule)
    return len(ids)


def _parse(moment: str | None) -> datetime | None:
    return datetime.fromisoformat(moment) if moment else None


def members_of(db: Database, rows: list[dict[str, Any]]) -> list[Member]:
    """These findings' rows as grouping sees them, with their external addresses (read in
    one query for all of them)."""
    addresses: dict[int, set[str]] = {}
    if rows:
        for finding_id, address in db.execute(
            "select finding_id, address from finding_addresses "
            "where finding_id in (select value from json_each(?)) and external = 1",
            [orjson.dumps([row["id"] for row in rows]).decode()],
        ):
            addresses.setdefault(finding_id, set()).add(address)
    return [
        Member(
            key=row["message_key"],
            sender=row["sender"],
            subject_key=row["subject_key"] or normalise_subject(row["subject"] or ""),
            conversation_id=row["conversation_id"],
            sent_at=_parse(row["sent_at"]),
            addresses=frozenset(addresses.get(row["id"], ())),
        )
        for row in rows
    ]


def incident_members(db: Database, incident_ids: list[int]) -> dict[int, list[Member]]:
    """Each of these incidents' findings as grouping sees them, oldest first (two queries
    for all of them); an incident without findings is left out."""
    if not incident_ids:
        return {}
    rows = select_rows(
        db,
        "select * from findings where incident_id in (select value from json_each(?)) "
        "order by incident_id, sent_at is null, sent_at, id",
        [orjson.dumps(incident_ids).decode()],
    )
    members: dict[int, list[Member]] = {}
    for row, member in zip(rows, members_of(db, rows), strict=True):
        members.setdefault(row["incident_id"], []).append(member)
    return members


# The incidents a finding could join, in one query: same message, same sender and subject,
# same thread, or (when the last parameter is 1) the same sender's incidents whose latest
# message is recent enough to be re-exposed; each says whether the DPO decided it already.
_CANDIDATES = (
    "select c.id, i.status in ('false_positive', 'closed') as decided from ("
    "select incident_id as id from findings where incident_id is not null "
    "and (message_key = ? or (conversation_id is not null and conversation_id = ?)) "
    "union select id from incidents where sender = ? and subject_key = ? "
    "union select id from incidents where ? and sender = ? and merged_into is null "
    "and last_sent_at >= ? and first_sent_at <= ?"
    ") c left join incidents i on i.id = c.id order by c.id"
)


def _candidates(db: Database, row: dict[str, Any], reexposure: timedelta) -> list[Group]:
    """Incidents this finding could join: same message, same sender and subject, same thread,
    or the same sender's incidents whose latest message is recent enough to be re-exposed."""
    sent = _parse(row["sent_at"])
    recent = sent is not None and bool(row["sender"])
    soonest = iso(sent - reexposure) if sent is not None else None
    found = select_rows(
        db,
        _CANDIDATES,
        [
            *(row["message_key"], row["conversation_id"], row["sender"], row["subject_key"]),
            *(int(recent), row["sender"], soonest, row["sent_at"]),
        ],
    )
    members = incident_members(db, [r["id"] for r in found])
    return [
        Group(r["id"], members[r["id"]], decided=bool(r["decided"]))
        for r in found
        if r["id"] in members
    ]


def _new_incident(db: Database, row: dict[str, Any]) -> int:
    now = utc_now()
    return insert_row(
        db,
        "incidents",
        {
            "sender": row["sender"],
            "subject": row["subject"],
            "subject_key": row["subject_key"],
            "first_sent_at": row["sent_at"],
            "last_sent_at": row["sent_at"],
            "active": 1,
            "created_at": now,
            "updated_at": now,
            "detected_at": now,
        },
    )


def refresh_incident(db: Database, incident_id: int, rule: SeverityRule) -> None:
    """Recompute an incident's figures and severity from its qualifying findings.

    An incident whose addresses were purged keeps the figures it had.
    """
    if db.execute(
        "select 1 from incidents where id = ? and purged_at is not null", [incident_id]
    ).fetchone():
        return
    rows = select_rows(
        db,
        "select * from findings where incident_id = ? and qualifies = 1 "
        "order by sent_at is null, sent_at, id",
        [incident_id],
    )
    if not rows:
        db.execute(
            "update incidents set active = 0, updated_at = ? where id = ?",
            [utc_now(), incident_id],
        )
        return
    listed = select_rows(
        db,
        "select a.finding_id, a.address, a.name from finding_addresses a join findings f "
        "on f.id = a.finding_id where f.incident_id = ? and f.qualifies = 1 "
        "and a.external = 1",
        [incident_id],
    )
    messages = _message_figures(rows, listed, rule)
    founder = rows[0]
    # Delegates who sent its messages on the From address's behalf, named beside it.
    sent_by = sorted({r["sent_by"] for r in rows if r["sent_by"]})
    earlier = closed_lists(db, founder["sender"], incident_id)
    addresses = [(a["address"], a["name"]) for a in listed]
    summary = summarise(messages, addresses, founder["subject"] or "", rule, earlier)
    update_row(
        db,
        "incidents",
        incident_id,
        {
            "sender": founder["sender"],
            "sent_by": ", ".join(sent_by) or None,
            "subject": founder["subject"],
            "subject_key": founder["subject_key"],
            **summary.__dict__,
            "suppressed": int(summary.suppressed),
            "active": 1,
            "updated_at": utc_now(),
        },
    )


def _message_figures(
    rows: list[dict[str, Any]], listed: list[dict[str, Any]], rule: SeverityRule
) -> list[MessageFigures]:
    """Each qualifying finding's figures, with the external addresses ``listed`` for it."""
    by_finding: dict[int, set[str]] = {}
    for a in listed:
        by_finding.setdefault(a["finding_id"], set()).add(a["address"])
    return [
        MessageFigures(
            key=r["message_key"],
            sent_at=r["sent_at"],
            visible_external=r["visible_external_count"],
            bcc_used=bool(r["bcc_used"]),
            suppressed=r["suppressed_by"] is not None,
            function=rule.sensitive_function(
                r["sender"], r["sender_department"], r["sender_job_title"]
            ),
            addresses=frozenset(by_finding.get(r["id"], ())),
            subject=r["subject"] or "",
            teams=tuple(t for t in (r["sender_department"], r["sender_job_title"]) if t),
        )
        for r in rows
    ]


def closed_lists(db: Database, sender: str | None, incident_id: int) -> list[EarlierList]:
    """The sender's other incidents the DPO closed (addresses not purged), with their lists.

    Not a breach: closed after being marked a false positive. A breach: closed after it
    was confirmed, or the people or the authority were notified.
    """
    lists = []
    for row in select_rows(
        db,
        "select i.id, (select substr(max(h.at), 1, 10) from incident_history h "
        "where h.incident_id = i.id and h.to_status = 'closed') as closed_on, "
        "exists (select 1 from incident_history h where h.incident_id = i.id "
        "and h.to_status in ('confirmed', 'notified', 'reported_to_authority')) as breach, "
        "exists (select 1 from incident_history h where h.incident_id = i.id "
        "and h.to_status = 'false_positive') as dismissed "
        "from incidents i where i.sender = ? and i.id != ? and i.status = 'closed' "
        "and i.purged_at is null and i.merged_into is null",  # a merged one: its survivor
        [sender, incident_id],
    ):
        if not (row["breach"] or row["dismissed"]):
            continue
        addresses = frozenset(
            r["address"]
            for r in select_rows(
                db,
                "select distinct a.address from finding_addresses a join findings f "
                "on f.id = a.finding_id where f.incident_id = ? and a.external = 1",
                [row["id"]],
            )
        )
        lists.append(EarlierList(row["id"], row["closed_on"], bool(row["breach"]), addresses))
    return lists


def list_incidents(
    db: Database,
    since: str | None = None,
    min_severity: str | None = None,
    *,
    include_suppressed: bool = False,
    include_dismissed: bool = False,
    include_inactive: bool = False,
) -> list[dict[str, Any]]:
    """Active incidents last sent at or after ``since``, newest first, in the public shape.

    False positives are left out unless ``include_dismissed``, and incidents none of whose
    findings reaches the threshold any more (after ``reclassify``) unless
    ``include_inactive``: both stay stored for audit until purged.
    """
    sql = "select * from incidents where (active = 1 or ?)"
    params: list[Any] = [int(include_inactive)]
    if not include_dismissed:
        sql += " and status != 'false_positive'"
    if since:
        sql += " and last_sent_at >= ?"
        params.append(since)
    if min_severity:
        allowed = LEVELS[LEVELS.index(min_severity) :]
        sql += f" and severity in ({', '.join('?' for _ in allowed)})"
        params += allowed
    if not include_suppressed:
        sql += " and suppressed = 0"
    sql += " order by last_sent_at desc, id desc"
    return [_public(db, row) for row in db.query(sql, params)]


def top_domains(db: Database, incident_id: int, limit: int = 5) -> list[str]:
    """The incident's external domains, the most exposed addresses first."""
    return [
        r["domain"]
        for r in db.query(
            "select a.domain, count(distinct a.address) as n from finding_addresses a "
            "join findings f on f.id = a.finding_id where f.incident_id = ? "
            "and f.qualifies = 1 and a.external = 1 group by a.domain order by n desc, a.domain "
            "limit ?",
            [incident_id, limit],
        )
    ]


def sample_addresses(db: Database, incident_id: int, limit: int = 3) -> list[str]:
    """One exposed address from each of the incident's most exposed domains (to be masked)."""
    return [
        r["sample"]
        for r in db.query(
            "select min(a.address) as sample, count(distinct a.address) as n "
            "from finding_addresses a join findings f on f.id = a.finding_id "
            "where f.incident_id = ? and f.qualifies = 1 and a.external = 1 "
            "group by a.domain order by n desc, a.domain limit ?",
            [incident_id, limit],
        )
    ]


def incident_mailboxes(db: Database, incident_id: int) -> list[str]:
    """The mailboxes holding a copy of any of the incident's messages."""
    return [
        r["mailbox"]
        for r in db.query(
            "select distinct c.mailbox from finding_copies c join findings f "
            "on f.id = c.finding_id where f.incident_id = ? order by c.mailbox",
            [incident_id],
        )
    ]


def _public(db: Database, row: dict[str, Any]) -> dict[str, Any]:
    domains = top_domains(db, row["id"])
    return {
        "id": row["id"],
        "sender": row["sender"],
        "sent_by": row["sent_by"],
        "mailboxes": incident_mailboxes(db, row["id"]),
        "subject": row["subject"],
        "first_sent_at": row["first_sent_at"],
        "last_sent_at": row["last_sent_at"],
        "messages": row["messages"],
        "unique_exposed": row["unique_exposed"],
        "largest_batch": row["largest_batch"],
        "personal_share": row["personal_share"],
        "named_addresses": row["named_addresses"],
        "domains": row["domains"],
        "top_domains": domains,
        "severity": row["severity"],
        "reason": row["reason"],
        "suppressed": bool(row["suppressed"]),
        "status": row["status"],
        "active": bool(row["active"]),
        "detected_at": row["detected_at"],
        "confirmed_at": row["confirmed_at"],
    }


def severities(db: Database) -> dict[int, str]:
    """Each incident's severity now."""
    return {r["id"]: r["severity"] for r in db.query("select id, severity from incidents")}


def record_rejudgement(
    db: Database, findings: int, severity_changed: int, incidents_changed: int
) -> None:
    """Remember a reclassify, for the next digest to mention."""
    with transaction(db):
        db.table("rejudgements").insert(
            {
                "at": utc_now(),
                "findings": findings,
                "severity_changed": severity_changed,
                "incidents_changed": incidents_changed,
            }
        )


def activity(db: Database) -> dict[int, tuple[bool, str]]:
    """Each incident not purged: whether it is active, and its status."""
    rows = db.query("select id, active, status from incidents where purged_at is null")
    return {r["id"]: (bool(r["active"]), r["status"]) for r in rows}
