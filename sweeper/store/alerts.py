"""Alerts in the database: what each channel was sent, or failed to be sent, per incident.

One row per incident, alert key and channel (``new:high``, ``rose:critical``, ``grew:1136``;
see :mod:`sweeper.rules.alerts`), written after the delivery was tried: ``sent``, or
``failed`` with the reason. A key a channel was sent is never sent to it again; a failed one
is tried again by the next sweeps, :data:`TRIES` times in all, then left failed (the digest
shows it).
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from sweeper.rules.alerts import Alerted, IncidentNow
from sweeper.rules.triage import NOT_REPORTED
from sweeper.store.db import transaction
from sweeper.when import utc_now

TRIES = 3  # sweeps that try a failed alert before it is left failed


def incidents_now(db: Database) -> list[IncidentNow]:
    """Every incident's figures as the last sweep left them."""
    return [
        IncidentNow(
            id=r["id"],
            severity=r["severity"],
            unique_exposed=r["unique_exposed"] or 0,
            active=bool(r["active"]),
            suppressed=bool(r["suppressed"]),
            dismissed=r["status"] in NOT_REPORTED or r["merged_into"] is not None,
        )
        for r in db.query(
            "select id, severity, unique_exposed, active, suppressed, status, merged_into "
            "from incidents where purged_at is null and severity is not null"
        )
    ]


def alerted(db: Database) -> dict[int, Alerted]:
    """What was alerted of each incident, on any channel, sent or tried: the highest
    severity and the people exposed at its latest alert."""
    from sweeper.rules.severity import LEVELS

    state: dict[int, Alerted] = {}
    # An incident's alerts include those of the incidents merged into it (sweeper.store.merges).
    for r in db.query(
        "select coalesce(i.merged_into, a.incident_id) as incident_id, a.severity, "
        "a.unique_exposed from alerts a left join incidents i on i.id = a.incident_id "
        "where a.incident_id > 0 order by a.id"
    ):
        before = state.get(r["incident_id"])
        highest = r["severity"]
        if before is not None and LEVELS.index(before.severity) > LEVELS.index(highest):
            highest = before.severity
        state[r["incident_id"]] = Alerted(highest, r["unique_exposed"])
    return state


def to_retry(db: Database) -> list[dict[str, Any]]:
    """Failed alerts to try again: fewer than :data:`TRIES` tries, never sent since."""
    return list(
        db.query(
            "select * from alerts a where status = 'failed' and tries < ? and incident_id > 0 "
            # a merged-away incident is alerted as the incident it was merged into
            "and a.incident_id not in (select id from incidents where merged_into is not null) "
            "and not exists (select 1 from alerts b where b.incident_id = a.incident_id "
            "and b.key = a.key and b.channel = a.channel and b.status = 'sent')",
            [TRIES],
        )
    )


def record(
    db: Database,
    *,
    incident_id: int,
    key: str,
    kind: str,
    channel: str,
    severity: str,
    unique_exposed: int,
    error: str | None,
    run_id: int | None,
) -> None:
    """Write how one delivery went: sent (``error`` None) or failed; a retry adds a try."""
    now = utc_now()
    status = "failed" if error else "sent"
    with transaction(db):
        existing = db.execute(
            "select id, tries from alerts where incident_id = ? and key = ? and channel = ?",
            [incident_id, key, channel],
        ).fetchone()
        row = {
            "status": status,
            "error": error,
            "severity": severity,
            "unique_exposed": unique_exposed,
            "tried_at": now,
            "sent_at": None if error else now,
            "run_id": run_id,
        }
        if existing is None:
            db.table("alerts").insert(
                {
                    "incident_id": incident_id,
                    "key": key,
                    "kind": kind,
                    "channel": channel,
                    "created_at": now,
                    "tries": 1,
                    **row,
                }
            )
        else:
            db.table("alerts").update(existing[0], {**row, "tries": existing[1] + 1})


def already_sent(db: Database, incident_id: int, key: str, channel: str) -> bool:
    return (
        db.execute(
            "select 1 from alerts where incident_id = ? and key = ? and channel = ? "
            "and status = 'sent'",
            [incident_id, key, channel],
        ).fetchone()
        is not None
    )


def list_alerts(db: Database, limit: int = 200) -> list[dict[str, Any]]:
    """The latest alerts, newest first: what was sent, and what failed and why."""
    return list(
        db.query(
            "select id, incident_id, key, kind, channel, status, tries, severity, "
            "unique_exposed, error, created_at, tried_at, sent_at from alerts "
            "order by id desc limit ?",
            [limit],
        )
    )


def failed_since(db: Database, since: str | None) -> list[dict[str, Any]]:
    """Alerts left failed (or failing) since ``since``, for the digest's health."""
    return list(
        db.query(
            "select incident_id, key, channel, tries, error, tried_at from alerts "
            "where status = 'failed' and (? is null or tried_at >= ?) order by id",
            [since, since],
        )
    )
