"""What a digest reports, read from the database; and, once sent, what it did report.

Pending means: an incident never reported in a sent digest, an incident that exposed more
people than when it was last reported, and a failed or partial run never reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlite_utils import Database

from sweeper.addresses import mask_address
from sweeper.errors import DigestStatus
from sweeper.rules.digest import (
    Digest,
    FailedRun,
    Health,
    IncidentItem,
    Plan,
    Rejudgement,
    TrendDay,
    clock_for,
)
from sweeper.rules.severity import LEVELS
from sweeper.rules.triage import NOT_REPORTED
from sweeper.store.alerts import failed_since, pending_alerts
from sweeper.store.db import transaction
from sweeper.store.incidents import sample_addresses, top_domains
from sweeper.store.siem import notes_since as siem_notes_since
from sweeper.store.triage import reported_at
from sweeper.when import iso

SAMPLES = 3
TREND_DAYS = 30
COMMANDS = (
    "sweeper incident show ID",
    "sweeper incident export ID",
)


def last_sent(db: Database) -> dict[str, Any] | None:
    rows = list(db.query("select * from digests where status = 'sent' order by id desc limit 1"))
    return rows[0] if rows else None


def build(db: Database, now: datetime, *, since: str | None = None, resend: bool = False) -> Digest:
    """The digest as of ``now``: pending items, or everything sent since ``since``."""
    previous = last_sent(db)
    period_since = since or (previous["created_at"] if previous else None)
    if resend and previous:
        incidents = _incidents_of_digest(db, previous["id"])
        runs = _runs_of_digest(db, previous["id"])
        period_since = previous["period_since"]
    elif since:
        incidents = _incidents_since(db, since)
        runs = _problem_runs(db, since)
    else:
        incidents = _pending_incidents(db)
        runs = _pending_runs(db)
    return _digest(db, now, period_since, incidents, runs)


def build_planned(
    db: Database, now: datetime, plan: Plan, period_since: str | None, *, repeat_of: str
) -> Digest:
    """An interrupted digest again: the incidents (new or grown, as planned) and the runs it
    was about to report, with their figures as of ``now``; ``repeat_of`` is when sending it
    was interrupted."""
    before = {i.id: i.reported_before for i in plan.incidents}
    rows = db.query(
        "select * from incidents where id in (select value from json_each(?))",
        [orjson.dumps(list(before)).decode()],
    )
    incidents = _severity_order((row, before[row["id"]]) for row in rows)
    runs = list(
        db.query(
            "select * from runs where id in (select value from json_each(?)) order by id",
            [orjson.dumps(list(plan.runs)).decode()],
        )
    )
    return _digest(db, now, period_since, incidents, runs, repeat_of=repeat_of)


def _digest(
    db: Database,
    now: datetime,
    period_since: str | None,
    incidents: list[tuple[dict[str, Any], Reported]],
    runs: list[dict[str, Any]],
    *,
    repeat_of: str | None = None,
) -> Digest:
    items = [_item(db, row, reported) for row, reported in incidents]
    return Digest(
        created_at=iso(now),
        period_since=period_since,
        period_until=iso(now),
        new=tuple(i for i in items if i.reported_before is None),
        grown=tuple(i for i in items if i.reported_before is not None),
        health=_health(db, period_since, runs),
        trend=_trend(db, now),
        commands=COMMANDS,
        rejudgements=_rejudgements(db, period_since),
        repeat_of=repeat_of,
    )


def _rejudgements(db: Database, since: str | None) -> tuple[Rejudgement, ...]:
    rows = db.query(
        "select at, findings, severity_changed, incidents_changed from rejudgements "
        "where at >= ? order by id",
        [since or ""],
    )
    return tuple(Rejudgement(**row) for row in rows)


Reported = int | None


def _severity_order(rows: Iterable[tuple[dict[str, Any], Reported]]) -> list[tuple[Any, Any]]:
    return sorted(
        rows, key=lambda pair: (-LEVELS.index(pair[0]["severity"]), pair[0]["first_sent_at"] or "")
    )


def _pending_incidents(db: Database) -> list[tuple[dict[str, Any], Reported]]:
    rows = db.query(
        "select i.*, (select max(d.unique_exposed) from digest_items d "
        "where d.kind = 'incident' and d.item_id in "
        "(select m.id from incidents m where m.id = i.id or m.merged_into = i.id)) as reported "
        "from incidents i where i.active = 1 and i.suppressed = 0 "
        "and i.status not in (select value from json_each(?))",
        [orjson.dumps(NOT_REPORTED).decode()],
    )
    pending = [
        (row, row["reported"])
        for row in rows
        if row["reported"] is None or row["unique_exposed"] > row["reported"]
    ]
    return _severity_order(pending)


def _incidents_since(db: Database, since: str) -> list[tuple[dict[str, Any], Reported]]:
    rows = db.query(
        "select * from incidents where active = 1 and suppressed = 0 "
        "and status != 'false_positive' and last_sent_at >= ?",
        [since],
    )
    return _severity_order((row, None) for row in rows)


def _incidents_of_digest(db: Database, digest_id: int) -> list[tuple[dict[str, Any], Reported]]:
    rows = db.query(
        "select i.* from incidents i join digest_items d on d.item_id = i.id "
        "and d.kind = 'incident' where d.digest_id = ?",
        [digest_id],
    )
    return _severity_order((row, None) for row in rows)


def _pending_runs(db: Database) -> list[dict[str, Any]]:
    return list(
        db.query(
            "select * from runs where status in ('failed', 'partial') and id not in "
            "(select item_id from digest_items where kind = 'run') order by id"
        )
    )


def _problem_runs(db: Database, since: str) -> list[dict[str, Any]]:
    return list(
        db.query(
            "select * from runs where status in ('failed', 'partial') and started_at >= ? "
            "order by id",
            [since],
        )
    )


def _runs_of_digest(db: Database, digest_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "select r.* from runs r join digest_items d on d.item_id = r.id and d.kind = 'run' "
            "where d.digest_id = ? order by r.id",
            [digest_id],
        )
    )


def _item(db: Database, row: dict[str, Any], reported: Reported) -> IncidentItem:
    samples = sample_addresses(db, row["id"], SAMPLES)
    domains = top_domains(db, row["id"])
    return IncidentItem(
        id=row["id"],
        severity=row["severity"],
        reason=row["reason"],
        sender=row["sender"],
        sent_by=row["sent_by"],
        subject=row["subject"] or "",
        first_sent_at=row["first_sent_at"],
        last_sent_at=row["last_sent_at"],
        messages=row["messages"],
        unique_exposed=row["unique_exposed"],
        largest_batch=row["largest_batch"],
        personal_share=row["personal_share"] or 0.0,
        named_addresses=row["named_addresses"] or 0,
        top_domains=tuple(domains),
        samples=tuple(mask_address(a) for a in samples),
        detected_at=row["detected_at"],
        clock=clock_for(
            row["severity"], row["detected_at"], row["confirmed_at"], reported_at(db, row["id"])
        ),
        reported_before=reported,
        status=row["status"],
    )


def _health(db: Database, since: str | None, problem_runs: list[dict[str, Any]]) -> Health:
    """The runs that ended in the period: a run still going is reported once it has ended
    (in the digest after, if it outlasts this one), a run killed once it is marked failed."""
    runs = list(
        db.query(
            "select * from runs where status != 'running' and coalesce(finished_at, started_at) "
            ">= ? order by id",
            [since],
        )
        if since
        else db.query("select * from runs where status != 'running' order by id")
    )
    full = [r for r in runs if r["mailbox_filter"] is None and r["finished_at"]]
    last = full[-1] if full else (runs[-1] if runs else None)
    failed_runs = tuple(
        FailedRun(
            id=r["id"],
            started_at=r["started_at"],
            status=r["status"],
            error=r["error"],
            failed_mailboxes=tuple(
                (m["mailbox"], m["error"] or "")
                for m in db.query(
                    "select mailbox, error from run_mailboxes where run_id = ? "
                    "and status = 'failed' order by mailbox",
                    [r["id"]],
                )
            ),
        )
        for r in problem_runs
    )
    return Health(
        runs=len(runs),
        last_run_at=last["started_at"] if last else None,
        last_status=last["status"] if last else None,
        swept=(last["swept"] or 0) if last else 0,
        skipped=((last["skipped"] or 0) - (last["excluded"] or 0)) if last else 0,
        failed=(last["failed"] or 0) if last else 0,
        throttled=sum(r["throttled"] or 0 for r in runs),
        malformed=sum(r["malformed"] or 0 for r in runs),
        failed_runs=failed_runs,
        failed_alerts=tuple(
            f"incident {a['incident_id'] or '(test)'} {a['key']} by {a['channel']} "
            f"({a['tries']} tries): {a['error']}"
            for a in failed_since(db, since)
        ),
        pending_alerts=tuple(
            f"incident {a['incident_id']} {a['key']} by {a['channel']} "
            f"({a['tries']} tries): {a['error'] or 'claimed by a run that ended'}"
            for a in pending_alerts(db)
        ),
        swept_shared=(last["swept_disabled"] or 0) if last else 0,
        excluded=(last["excluded"] or 0) if last else 0,
        siem_records=tuple(
            f"{n['kind']} {n['item']}: {n['note']}" for n in siem_notes_since(db, since)
        ),
    )


def _trend(db: Database, now: datetime) -> tuple[TrendDay, ...]:
    first = (now - timedelta(days=TREND_DAYS - 1)).date()
    days = {(first + timedelta(days=i)).isoformat(): dict.fromkeys(LEVELS, 0) for i in range(30)}
    for row in db.query(
        "select substr(first_sent_at, 1, 10) as day, severity, count(*) as n from incidents "
        "where active = 1 and suppressed = 0 and status != 'false_positive' "
        "and first_sent_at >= ? group by day, severity",
        [first.isoformat()],
    ):
        if row["day"] in days:
            days[row["day"]][row["severity"]] = row["n"]
    return tuple(TrendDay(day, counts) for day, counts in days.items())


def record_digest(
    db: Database,
    digest: Digest,
    *,
    status: DigestStatus,
    transport: str,
    html_path: str | None,
    error: str | None = None,
) -> int:
    """Write the row of a digest that is not on its way: ``written`` (built, not sent).

    A digest that is sent goes through :mod:`sweeper.store.sending`, which records what it
    reported once it was delivered.
    """
    with transaction(db):
        table = db.table("digests")
        table.insert(
            {
                "created_at": digest.created_at,
                "period_since": digest.period_since,
                "period_until": digest.period_until,
                "status": status,
                "transport": transport,
                "verdict": digest.verdict,
                "html_path": html_path,
                "error": error,
            }
        )
        return int(table.last_pk or 0)


def sent_today(db: Database, now: datetime) -> bool:
    today = now.astimezone(UTC).strftime("%Y-%m-%d")
    rows = db.query(
        "select 1 from digests where status = 'sent' and substr(sent_at, 1, 10) = ? limit 1",
        [today],
    )
    return any(True for _ in rows)
