"""Incidents in the database: placing new findings, keeping each incident's figures current.

The judgement lives in :mod:`sweeper.rules.incidents` (pure); this module only loads what it
needs and writes what it decides.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlite_utils import Database

from sweeper.rules.classify import Finding
from sweeper.rules.incidents import (
    REEXPOSURE,
    EarlierList,
    Group,
    Member,
    MessageFigures,
    normalise_subject,
    place,
    repeats_list,
    summarise,
)
from sweeper.rules.severity import LEVELS, SeverityRule
from sweeper.store.db import transaction
from sweeper.store.findings import save_findings
from sweeper.store.merges import carried_decision, move_attachments
from sweeper.store.triage import record
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
            for row in db.query(
                "select distinct f.incident_id from finding_copies c join findings f "
                "on f.id = c.finding_id where c.run_id = ? and f.incident_id is not null "
                "and f.run_id != ?",
                [run_id, run_id],
            ):
                refresh_incident(db, row["incident_id"], rule)
        for row in unplaced_findings(db, settled_only=settled_only):
            member = _member(db, row)
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
    return list(
        db.query(
            "select * from findings where incident_id is null and qualifies = 1 "
            "and (? = 0 or not exists (select 1 from runs r where r.id = findings.run_id "
            "and r.status = 'running')) "
            "order by sent_at is null, sent_at, id",
            [int(settled_only)],
        )
    )


def refresh_all(db: Database, rule: SeverityRule) -> int:
    ids = [r["id"] for r in db.query("select id from incidents")]
    with transaction(db):
        for incident_id in ids:
            refresh_incident(db, incident_id, rule)
    return len(ids)


def _parse(moment: str | None) -> datetime | None:
    return datetime.fromisoformat(moment) if moment else None


def _addresses(db: Database, finding_id: int) -> frozenset[str]:
    rows = db.query(
        "select address from finding_addresses where finding_id = ? and external = 1",
        [finding_id],
    )
    return frozenset(r["address"] for r in rows)


def _member(db: Database, row: dict[str, Any]) -> Member:
    return Member(
        key=row["message_key"],
        sender=row["sender"],
        subject_key=row["subject_key"] or normalise_subject(row["subject"] or ""),
        conversation_id=row["conversation_id"],
        sent_at=_parse(row["sent_at"]),
        addresses=_addresses(db, row["id"]),
    )


def _candidates(db: Database, row: dict[str, Any], reexposure: timedelta) -> list[Group]:
    """Incidents this finding could join: same message, same sender and subject, same thread,
    or the same sender's incidents whose latest message is recent enough to be re-exposed."""
    ids = {
        r["incident_id"]
        for r in db.query(
            "select distinct incident_id from findings where incident_id is not null "
            "and (message_key = ? or (conversation_id is not null and conversation_id = ?))",
            [row["message_key"], row["conversation_id"]],
        )
    }
    ids |= {
        r["id"]
        for r in db.query(
            "select id from incidents where sender = ? and subject_key = ?",
            [row["sender"], row["subject_key"]],
        )
    }
    sent = _parse(row["sent_at"])
    if sent is not None and row["sender"]:
        ids |= {
            r["id"]
            for r in db.query(
                "select id from incidents where sender = ? and merged_into is null "
                "and last_sent_at >= ? and first_sent_at <= ?",
                [row["sender"], iso(sent - reexposure), row["sent_at"]],
            )
        }
    decided = {
        r["id"]
        for r in db.query(
            "select id from incidents where status in ('false_positive', 'closed') "
            "and id in (select value from json_each(?))",
            [orjson.dumps(sorted(ids)).decode()],
        )
    }
    groups = []
    for incident_id in sorted(ids):
        members = _members(db, incident_id)
        if members:
            groups.append(Group(incident_id, members, decided=incident_id in decided))
    return groups


def _new_incident(db: Database, row: dict[str, Any]) -> int:
    now = utc_now()
    table = db.table("incidents")
    table.insert(
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
        }
    )
    return int(table.last_pk or 0)


def refresh_incident(db: Database, incident_id: int, rule: SeverityRule) -> None:
    """Recompute an incident's figures and severity from its qualifying findings.

    An incident whose addresses were purged keeps the figures it had.
    """
    if db.execute(
        "select 1 from incidents where id = ? and purged_at is not null", [incident_id]
    ).fetchone():
        return
    rows = list(
        db.query(
            "select * from findings where incident_id = ? and qualifies = 1 "
            "order by sent_at is null, sent_at, id",
            [incident_id],
        )
    )
    if not rows:
        db.execute(
            "update incidents set active = 0, updated_at = ? where id = ?",
            [utc_now(), incident_id],
        )
        return
    messages = [
        MessageFigures(
            key=r["message_key"],
            sent_at=r["sent_at"],
            visible_external=r["visible_external_count"],
            bcc_used=bool(r["bcc_used"]),
            suppressed=r["suppressed_by"] is not None,
            function=rule.sensitive_function(
                r["sender"], r["sender_department"], r["sender_job_title"]
            ),
        )
        for r in rows
    ]
    listed = list(
        db.query(
            "select a.finding_id, a.address, a.name from finding_addresses a join findings f "
            "on f.id = a.finding_id where f.incident_id = ? and f.qualifies = 1 "
            "and a.external = 1",
            [incident_id],
        )
    )
    addresses = [(a["address"], a["name"]) for a in listed]
    by_finding: dict[int, set[str]] = {}
    for a in listed:
        by_finding.setdefault(a["finding_id"], set()).add(a["address"])
    messages = [
        replace(
            m,
            addresses=frozenset(by_finding.get(r["id"], ())),
            subject=r["subject"] or "",
            teams=tuple(t for t in (r["sender_department"], r["sender_job_title"]) if t),
        )
        for m, r in zip(messages, rows, strict=True)
    ]
    founder = rows[0]
    # Delegates who sent its messages on the From address's behalf, named beside it.
    sent_by = sorted({r["sent_by"] for r in rows if r["sent_by"]})
    earlier = closed_lists(db, founder["sender"], incident_id)
    summary = summarise(messages, addresses, founder["subject"] or "", rule, earlier)
    db.table("incidents").update(
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


def closed_lists(db: Database, sender: str | None, incident_id: int) -> list[EarlierList]:
    """The sender's other incidents the DPO closed (addresses not purged), with their lists.

    Not a breach: closed after being marked a false positive. A breach: closed after it
    was confirmed, or the people or the authority were notified.
    """
    lists = []
    for row in db.query(
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
            for r in db.query(
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


def save_lookup_findings(db: Database, run_id: int, findings: list[Finding]) -> list[int]:
    """Store what a lookup found, marked as the lookup's and qualifying whatever the
    threshold (it belongs to a reported breach); returns the findings' ids.

    One transaction: a process killed half-way leaves no findings stored but not marked.
    """
    with transaction(db):
        save_findings(db, run_id, findings)
        ids = [
            int(
                db.execute(
                    "select id from findings where message_key = ? order by id limit 1",
                    [f.facts.message_key],
                ).fetchone()[0]
            )
            for f in findings
        ]
        listed = orjson.dumps(ids).decode()  # one parameter: the ids as a JSON array
        db.execute(
            "update findings set source = 'lookup' "
            "where id in (select value from json_each(?)) and run_id = ?",
            [listed, run_id],
        )
        db.execute(
            "update findings set qualifies = 1 where id in (select value from json_each(?))",
            [listed],
        )
    return ids


def regroup_reexposures(db: Database, rule: SeverityRule, reexposure: timedelta) -> list[int]:
    """Merge into an earlier incident each later one whose first message shows the earlier
    incident's people again from the same sender, soon after (rule 4 of grouping, for
    incidents placed before the rule existed or before the window was widened).

    Returns the incidents merged away. Decisions and history follow the merge
    (:func:`merge_into_one`)."""
    merged: list[int] = []
    rows = list(
        db.query(
            "select id, sender, first_sent_at, last_sent_at from incidents "
            "where merged_into is null and purged_at is null and sender is not null "
            "and first_sent_at is not null and status not in ('false_positive', 'closed') "
            "order by first_sent_at, id"
        )
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
                    for r in db.query(
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
    return [
        _member(db, m)
        for m in db.query(
            "select * from findings where incident_id = ? order by sent_at is null, sent_at, id",
            [incident_id],
        )
    ]


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
    was = db.table("incidents").get(target)["status"]
    status, confirmed = carried_decision(db, target)
    db.table("incidents").update(target, {"status": status, "confirmed_at": confirmed})
    parts = [f"{o} ({db.table('incidents').get(o)['status']})" for o in others]
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
