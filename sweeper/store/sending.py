"""A digest on its way: written ``sending`` before delivery, settled after it.

Before a digest is delivered its row is committed as ``sending``, with the Message-ID it goes
out with, its :class:`~sweeper.rules.digest.Plan` (what it is about to report) and the
process sending it (pid, the process's start, host: as runs record theirs). The Message-ID
carries the row's ``nonce``, random and written before delivery: a copy found later is this
row's only if it carries it (ids are given out again when a database is restored from a
backup; nonces are not). After delivery the row becomes ``sent`` and the plan its
``digest_items``, in one transaction; or ``failed``. A row still ``sending`` whose process
is gone was interrupted somewhere between the two: :mod:`sweeper.commands.digest` finds out
which side of the delivery.

Only one digest is on its way at a time: :func:`start` claims the delivery in one write
transaction (``BEGIN IMMEDIATE``), refusing while another row is ``sending`` or when a
digest was sent after the caller read what to report (its ``basis``: two processes that
built the same digest at once send it once). The caller settles interrupted rows first.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from sweeper import store
from sweeper.errors import AlreadyRunning, StorageError
from sweeper.processes import process_alive, process_started, this_host
from sweeper.rules.digest import Digest, Plan, message_id
from sweeper.when import utc_now

# A digest's delivery takes a minute or two at most (sign-in and one request, each with a
# timeout): a row from another host, whose pid cannot be checked here, is taken for
# interrupted this long after it was written.
OTHER_HOST_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class Sending:
    """A digest row written ``sending`` (and, read again later, what it became)."""

    id: int
    status: str
    created_at: str
    period_since: str | None
    transport: str
    sender: str
    internet_message_id: str
    nonce: str | None  # this row's own random token, in its Message-ID (None: written before)
    save_to_sent_items: bool  # Graph kept a copy in the sender's Sent Items
    plan: Plan
    html_path: str | None
    pid: int | None
    pid_started: str | None
    host: str | None


def installation(db: Database) -> str:
    """This database's installation token (migration ``0013_digest_exactly_once``)."""
    rows = list(db.query("select value from meta where key = 'installation'"))
    if not rows or not rows[0]["value"]:
        raise StorageError(
            "the database is damaged: its installation token is missing (restore it from a "
            "backup, or move it aside to start a new one)"
        )
    return str(rows[0]["value"])


def start(
    db: Database,
    digest: Digest,
    *,
    transport: str,
    sender: str,
    save_to_sent_items: bool,
    html_path: str | None,
    basis: int,
) -> Sending:
    """Write the digest ``sending``, with its Message-ID and plan; committed on return.

    ``basis``: the last digest id (:func:`latest`) read before ``digest`` was built. Raises
    AlreadyRunning while another digest is on its way (the caller settled the interrupted
    ones before), or when one was sent or started since ``basis``: what ``digest`` reports
    may be reported already.
    """
    plan = Plan.of(digest)
    with store.transaction(db):
        _refuse_if_sending(db)
        _refuse_if_sent_since(db, basis)
        table = db.table("digests")
        table.insert(
            {
                "created_at": digest.created_at,
                "period_since": digest.period_since,
                "period_until": digest.period_until,
                "status": "sending",
                "transport": transport,
                "verdict": digest.verdict,
                "html_path": html_path,
                "sender": sender,
                "save_to_sent_items": int(save_to_sent_items),
                "plan": plan.to_json(),
                **_this_process(),
            }
        )
        digest_id = int(table.last_pk or 0)
        nonce = secrets.token_hex(8)
        mid = message_id(digest_id, installation(db), sender, nonce)
        table.update(digest_id, {"internet_message_id": mid, "nonce": nonce})
    return get(db, digest_id)


def resume(db: Database, row: Sending, *, html_path: str | None, verdict: str) -> Sending:
    """Claim an interrupted ``sending`` row for this process, to send it again.

    Raises AlreadyRunning if another process claimed or settled it since ``row`` was read.
    """
    with store.transaction(db):
        current = get(db, row.id)
        if current.status != "sending" or _process(current) != _process(row):
            raise AlreadyRunning(
                f"digest {row.id} is being settled by another process; this one sent nothing"
            )
        db.table("digests").update(
            row.id, {"html_path": html_path, "verdict": verdict, **_this_process()}
        )
    return get(db, row.id)


def mark_sent(db: Database, digest_id: int, plan: Plan, *, sent_at: str | None = None) -> None:
    """The digest was delivered: ``sent``, and what it reported recorded, in one transaction.

    A row no longer ``sending`` (another process settled it meanwhile) is left as it is.
    """
    with store.transaction(db):
        if get(db, digest_id).status != "sending":
            return
        db.table("digests").update(
            digest_id, {"status": "sent", "sent_at": sent_at or utc_now(), "error": None}
        )
        items = [
            {"digest_id": digest_id, "kind": "incident", "item_id": i.id,
             "unique_exposed": i.unique_exposed}
            for i in plan.incidents
        ] + [
            {"digest_id": digest_id, "kind": "run", "item_id": run_id, "unique_exposed": None}
            for run_id in plan.runs
        ]  # fmt: skip
        db.table("digest_items").insert_all(items, replace=True)


def mark_failed(db: Database, digest_id: int, error: str) -> None:
    """The digest was not delivered: everything it planned stays pending."""
    with store.transaction(db):
        if get(db, digest_id).status != "sending":
            return
        db.table("digests").update(digest_id, {"status": "failed", "error": error})


def get(db: Database, digest_id: int) -> Sending:
    row = db.table("digests").get(digest_id)
    return _sending(row)


def left_sending(db: Database) -> list[Sending]:
    """Every digest row still ``sending``, oldest first."""
    return [
        _sending(row)
        for row in db.query("select * from digests where status = 'sending' order by id")
    ]


def interruption(row: Sending, *, host: str, now: datetime) -> str | None:
    """Why a ``sending`` row's delivery has ended without being settled, or None while the
    process that wrote it may still be delivering it."""
    if row.host != host:
        written = datetime.fromisoformat(row.created_at)
        if now - written <= OTHER_HOST_AFTER:
            return None
        return f"pid {row.pid} on {row.host or 'an unknown host'}, not settled after an hour"
    if row.pid is None:
        return "no process recorded"
    if row.pid == os.getpid() and row.pid_started == process_started(row.pid):
        return f"pid {row.pid}, this process, which is not sending it any more"
    if not process_alive(row.pid):
        return f"pid {row.pid} has ended"
    now_started = process_started(row.pid)
    if row.pid_started is not None and now_started is not None and row.pid_started != now_started:
        return f"pid {row.pid} has ended (the pid is now another process's)"
    return None


def _refuse_if_sending(db: Database) -> None:
    on_its_way = left_sending(db)
    if on_its_way:
        row = on_its_way[0]
        raise AlreadyRunning(
            f"digest {row.id} is being sent right now (pid {row.pid} on {row.host}); "
            "this one sent nothing"
        )


def latest(db: Database) -> int:
    """The last digest id so far (0 if none): the ``basis`` of a digest built now."""
    rows = list(db.query("select coalesce(max(id), 0) as id from digests"))
    return int(rows[0]["id"])


def _refuse_if_sent_since(db: Database, basis: int) -> None:
    rows = list(
        db.query(
            "select id from digests where id > ? and status in ('sending', 'sent') "
            "order by id limit 1",
            [basis],
        )
    )
    if rows:
        raise AlreadyRunning(
            f"digest {rows[0]['id']} was sent by another process while this one was being "
            "prepared; this one sent nothing"
        )


def _process(row: Sending) -> tuple[int | None, str | None, str | None]:
    return row.pid, row.pid_started, row.host


def _this_process() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "pid_started": process_started(pid), "host": this_host()}


def _sending(row: dict[str, Any]) -> Sending:
    return Sending(
        id=int(row["id"]),
        status=row["status"],
        created_at=row["created_at"],
        period_since=row["period_since"],
        transport=row["transport"] or "",
        sender=row["sender"] or "",
        internet_message_id=row["internet_message_id"] or "",
        nonce=row.get("nonce"),
        save_to_sent_items=bool(row["save_to_sent_items"]),
        plan=Plan.from_json(row["plan"] or "{}"),
        html_path=row["html_path"],
        pid=row["pid"],
        pid_started=row["pid_started"],
        host=row["host"],
    )
