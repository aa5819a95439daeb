"""Alerts in the database: what each channel was sent, or failed to be sent, per incident.

One row per incident, alert key and channel (``new:high``, ``rose:critical``, ``grew:1136``;
see :mod:`sweeper.rules.alerts`). Before a delivery is tried its row is *claimed* in one
transaction (:func:`claim`: status ``claimed``, with the process trying it), so that two
sweeps at once never both try it; a claim whose process is gone is taken over. After the
try the row is *settled* (:func:`settle`): ``sent``; ``failed`` with the reason; or
``pending``, when the run's time for delivery ran out first. A key a channel was sent is
never sent to it again; a failed or pending one is tried again by the next sweeps,
:data:`TRIES` tries in all, then left failed (the digest shows it).

Each row keeps a random ``delivery_id``, made when it is first claimed: with the database's
installation token it makes the alert's ``webhook-id``, the same on every retry of that
alert and different for any other alert, database, or restored copy of one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from sweeper.errors import AlertStatus
from sweeper.processes import process_alive, process_started, this_host
from sweeper.rules.alerts import Alerted, Due, IncidentNow, due
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
    """Alerts not delivered yet to try again: failed or pending with fewer than
    :data:`TRIES` tries, or claimed (:func:`claim` takes over only a claim whose process
    is gone)."""
    return list(
        db.query(
            "select * from alerts a where status in ('failed', 'pending', 'claimed') "
            "and tries < ? and incident_id > 0 "
            # a merged-away incident is alerted as the incident it was merged into
            "and a.incident_id not in (select id from incidents where merged_into is not null) "
            "and not exists (select 1 from alerts b where b.incident_id = a.incident_id "
            "and b.key = a.key and b.channel = a.channel and b.status = 'sent') order by a.id",
            [TRIES],
        )
    )


@dataclass(frozen=True)
class Claim:
    """A delivery this process holds: its row and the random part of its webhook-id."""

    row_id: int
    delivery_id: str


@dataclass(frozen=True)
class Claimed:
    """A delivery this process claimed: what is due, on which channel, and what had been
    alerted of the incident before (for "rose" and "grew")."""

    claim: Claim
    due: Due
    channel: str
    before: Alerted | None


def claim_due(
    db: Database,
    channels: Sequence[str],
    *,
    min_severity: str,
    grew_by: float,
    run_id: int | None,
) -> list[Claimed]:
    """Claim every alert due now and every one still to try, on these channels, in one
    transaction: what is due is judged on what is stored at that moment, claims of other
    runs included, so that two runs at once never claim the same alert, nor one the other
    claimed under another key (``new:high`` beside ``new:critical``)."""
    claimed: list[Claimed] = []
    with transaction(db):
        before = alerted(db)
        now = {i.id: i for i in incidents_now(db)}
        wanted = due(now.values(), before, min_severity=min_severity, grew_by=grew_by)
        work = [(d, c) for d in wanted for c in channels]
        for row in to_retry(db):
            if row["channel"] in channels:
                work.append((Due(row["incident_id"], row["kind"], row["key"]), row["channel"]))
        for item, channel in work:
            figures = now.get(item.incident_id)
            held = claim(
                db,
                incident_id=item.incident_id,
                key=item.key,
                kind=item.kind,
                channel=channel,
                severity=figures.severity if figures else "",
                unique_exposed=figures.unique_exposed if figures else 0,
                run_id=run_id,
            )
            if held is not None:
                claimed.append(Claimed(held, item, channel, before.get(item.incident_id)))
    return claimed


def claim(
    db: Database,
    *,
    incident_id: int,
    key: str,
    kind: str,
    channel: str,
    severity: str,
    unique_exposed: int,
    run_id: int | None,
    fresh: bool = False,
) -> Claim | None:
    """Claim one delivery for this process before trying it, in one transaction; None when
    it is not to be tried: sent already, left failed after :data:`TRIES` tries, or claimed
    by a process that is still running.

    A row's ``delivery_id`` is made once, when it is first claimed, and kept for every
    retry; ``fresh`` (a test alert, a new intent each time) makes a new one and claims the
    row whatever it held, unless a live process holds it.
    """
    now = utc_now()
    held = {**_this_process(), "claimed_at": now, "run_id": run_id}
    figures = {"severity": severity, "unique_exposed": unique_exposed} if severity else {}
    with transaction(db):
        row = db.execute(
            "select id, status, tries, delivery_id, pid, pid_started, host, claimed_at "
            "from alerts where incident_id = ? and key = ? and channel = ?",
            [incident_id, key, channel],
        ).fetchone()
        if row is None:
            delivery_id = new_delivery_id()
            db.table("alerts").insert(
                {
                    "incident_id": incident_id,
                    "key": key,
                    "kind": kind,
                    "channel": channel,
                    "status": "claimed",
                    "tries": 0,
                    "created_at": now,
                    "delivery_id": delivery_id,
                    **figures,
                    **held,
                }
            )
            (row_id,) = db.execute("select last_insert_rowid()").fetchone()
            return Claim(int(row_id), delivery_id)
        row_id, status, tries, delivery_id, pid, pid_started, host, claimed_at = row
        if status == "claimed" and not claim_ended(pid, pid_started, host, claimed_at):
            return None
        if not fresh and (status == "sent" or (status == "failed" and tries >= TRIES)):
            return None
        if fresh or not delivery_id:
            delivery_id = new_delivery_id()
        db.table("alerts").update(
            row_id, {"status": "claimed", "delivery_id": delivery_id, **figures, **held}
        )
        return Claim(row_id, delivery_id)


def settle(
    db: Database, held: Claim, outcome: AlertStatus, error: str | None, *, tried: bool
) -> AlertStatus:
    """Write how a claimed delivery went; the status written.

    ``outcome``: ``sent``; ``failed`` (the channel refused it or had no answer: tried again
    by the next sweeps while fewer than :data:`TRIES` tries); ``pending`` (the run's time
    for delivery ran out before it went: ``tried`` says whether it was attempted at all).
    A pending alert that has had its :data:`TRIES` tries is left failed.
    """
    now = utc_now()
    with transaction(db):
        (tries,) = db.execute("select tries from alerts where id = ?", [held.row_id]).fetchone()
        tries += 1 if tried or outcome != "pending" else 0
        status: AlertStatus = "failed" if outcome == "pending" and tries >= TRIES else outcome
        row: dict[str, Any] = {"status": status, "error": error, "tries": tries}
        if tried or outcome != "pending":
            row["tried_at"] = now
        row["sent_at"] = now if outcome == "sent" else None
        db.table("alerts").update(held.row_id, {**row, "pid": None, "pid_started": None})
    return status


# A delivery takes this run's delivery time at most (alerts.budget_seconds, a few minutes
# at the very most): a claim from another host, whose process cannot be checked here, is
# taken for abandoned this long after it was made.
OTHER_HOST_AFTER = timedelta(hours=1)


def claim_ended(
    pid: int | None, pid_started: str | None, host: str | None, claimed_at: str | None
) -> bool:
    """Whether the process that claimed a delivery has ended (its claim may be taken)."""
    if pid is None or host != this_host():
        if not claimed_at:
            return True
        return datetime.now(UTC) - datetime.fromisoformat(claimed_at) > OTHER_HOST_AFTER
    if not process_alive(pid):
        return True
    now_started = process_started(pid)
    return pid_started is not None and now_started is not None and now_started != pid_started


def new_delivery_id() -> str:
    """The random part of one delivery intent's id (webhook-id): 16 hex digits."""
    return secrets.token_hex(8)


def _this_process() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "pid_started": process_started(pid), "host": this_host()}


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


def pending_alerts(db: Database) -> list[dict[str, Any]]:
    """Alerts left for the next run, for the digest's health: pending (a run's time for
    delivery ran out first), or claimed by a process that ended before settling them.
    (Failed ones are :func:`failed_since`'s.)"""
    return [
        r
        for r in db.query(
            "select incident_id, key, channel, status, tries, error, pid, pid_started, host, "
            "claimed_at from alerts where incident_id > 0 and ((status = 'pending' and tries < ?) "
            "or status = 'claimed') order by id",
            [TRIES],
        )
        if r["status"] == "pending"
        or claim_ended(r["pid"], r["pid_started"], r["host"], r["claimed_at"])
    ]


def installation_token(db: Database) -> str:
    """This database's random installation token, made once when it was created (the
    digest's Message-ID carries it too): in every id a receiver deduplicates on."""
    from sweeper.store.sending import installation

    return installation(db)


def failed_since(db: Database, since: str | None) -> list[dict[str, Any]]:
    """Alerts left failed (or failing) since ``since``, for the digest's health."""
    return list(
        db.query(
            "select incident_id, key, channel, tries, error, tried_at from alerts "
            "where status = 'failed' and (? is null or tried_at >= ?) order by id",
            [since, since],
        )
    )
