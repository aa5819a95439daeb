"""What went to Microsoft Sentinel, record by record, and the exports that sent it.

``siem_sent`` holds one row per record Azure Monitor accepted: a run (``Run``, by run id), a
mailbox that failed in a run (``MailboxFailure``, by ``run_id:mailbox``), a finding
(``Finding``, by id) and an incident (``Incident``, by id, with the fingerprint of the version
last sent: a changed incident is sent again). Only settled runs are sent, and only their
findings: a run still going has not placed its findings in incidents yet.

A row's ``note`` says when the record was changed to fit an upload (a field cut short) or
set aside, not sent, because it could not be made to fit: the digest's health section shows
these (:func:`notes_since`), and a record set aside is not tried again.

``siem_exports`` holds each export, written before it sends anything with the process doing
it: one export at a time per database (:func:`start_export` refuses while another's process
is alive), so that two never send the same records.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from sweeper import store
from sweeper.errors import AlreadyRunning
from sweeper.processes import process_started, this_host
from sweeper.store.findings import copies_of, exposed_addresses
from sweeper.store.incidents import incident_mailboxes, top_domains
from sweeper.store.recovery import interruption
from sweeper.when import utc_now

INTERRUPTED = "interrupted: the process ended before the export finished"
SET_ASIDE = "set aside, not sent"
Key = tuple[str, str, str]  # kind, item, fingerprint ("" but for incidents)


def pending_runs(db: Database) -> list[dict[str, Any]]:
    """Settled runs not sent yet, oldest first."""
    return list(
        db.query(
            "select * from runs r where r.status != 'running' and not exists "
            "(select 1 from siem_sent s where s.kind = 'Run' and s.item = cast(r.id as text)) "
            "order by r.id"
        )
    )


def pending_failures(db: Database) -> list[dict[str, Any]]:
    """Mailboxes that failed in a settled run, not sent yet, with their run's end."""
    return list(
        db.query(
            "select m.*, r.started_at as run_started_at, r.finished_at as run_finished_at "
            "from run_mailboxes m join runs r on r.id = m.run_id "
            "where m.status = 'failed' and r.status != 'running' and not exists "
            "(select 1 from siem_sent s where s.kind = 'MailboxFailure' "
            "and s.item = m.run_id || ':' || m.mailbox) "
            "order by m.run_id, m.mailbox"
        )
    )


def pending_findings(db: Database) -> list[dict[str, Any]]:
    """Qualifying findings of settled runs not sent yet, with their exposed addresses (sorted)
    and the mailboxes holding a copy."""
    rows = list(
        db.query(
            "select f.* from findings f join runs r on r.id = f.run_id "
            "where f.qualifies = 1 and r.status != 'running' and not exists "
            "(select 1 from siem_sent s where s.kind = 'Finding' and s.item = cast(f.id as text)) "
            "order by f.id"
        )
    )
    for row in rows:
        row["addresses"] = [a["address"] for a in exposed_addresses(db, row["id"])]
        row["mailboxes"] = copies_of(db, row["id"])
    return rows


def incidents(db: Database) -> list[dict[str, Any]]:
    """Every incident with its top domains, its mailboxes, and the fingerprint and EventId of
    the version last sent (``sent_fingerprint``, ``sent_event_id``; None if never): the
    caller sends those that changed."""
    rows = list(
        db.query(
            "select i.*, s.fingerprint as sent_fingerprint, s.event_id as sent_event_id "
            "from incidents i "
            "left join siem_sent s on s.kind = 'Incident' and s.item = cast(i.id as text) "
            "order by i.id"
        )
    )
    for row in rows:
        row["top_domains"] = top_domains(db, row["id"])
        row["mailboxes"] = incident_mailboxes(db, row["id"])
    return rows


def mark_sent(
    db: Database,
    keys: Iterable[Key],
    notes: Mapping[Key, str] | None = None,
    event_ids: Mapping[Key, str] | None = None,
) -> None:
    """Record these records as accepted by Azure Monitor, in one transaction; ``notes``:
    what was changed in some of them to fit (fields cut short), for the digest;
    ``event_ids``: the ``EventId`` each went under."""
    now = utc_now()
    notes, event_ids = notes or {}, event_ids or {}
    rows = [
        {"kind": k, "item": i, "fingerprint": f, "sent_at": now, "note": notes.get((k, i, f)),
         "event_id": event_ids.get((k, i, f))}
        for k, i, f in keys
    ]  # fmt: skip
    with store.transaction(db):
        db.table("siem_sent").upsert_all(rows, pk=("kind", "item"))


def set_aside(db: Database, key: Key, note: str, event_id: str | None = None) -> None:
    """Record a record that cannot be sent (too large for any upload even cut short) as
    dealt with, with why: it no longer holds back the others, and the digest says so. An
    incident's later version is sent (or set aside) again."""
    kind, item, version = key
    with store.transaction(db):
        db.table("siem_sent").upsert(
            {"kind": kind, "item": item, "fingerprint": version, "sent_at": utc_now(),
             "note": f"{SET_ASIDE}: {note}", "event_id": event_id},
            pk=("kind", "item"),
        )  # fmt: skip


def notes_since(db: Database, since: str | None) -> list[dict[str, Any]]:
    """The records cut short or set aside since ``since`` (all if None), oldest first:
    ``kind``, ``item``, ``note``, ``sent_at``."""
    return list(
        db.query(
            "select kind, item, note, sent_at from siem_sent where note is not null "
            "and sent_at >= ? order by sent_at, kind, item",
            [since or ""],
        )
    )


def start_export(db: Database, now: datetime | None = None) -> int:
    """Record an export as started by this process; AlreadyRunning while another's is alive.

    An export whose process is gone (judged as runs are, see :mod:`.recovery`) is marked
    interrupted: what it had sent is recorded, the rest is still pending.
    """
    now = now or datetime.now(UTC)
    host = this_host()
    pid = os.getpid()
    with store.transaction(db):
        for row in db.query("select * from siem_exports where finished_at is null"):
            if interruption(row, host=host, now=now, holding_lock=False) is None:
                raise AlreadyRunning(
                    f"another process (pid {row['pid']} on {row['host']}) is sending to "
                    "Microsoft Sentinel; this one sent nothing"
                )
            db.table("siem_exports").update(
                row["id"], {"finished_at": utc_now(), "error": INTERRUPTED}
            )
        table = db.table("siem_exports")
        table.insert(
            {
                "started_at": utc_now(),
                "pid": pid,
                "pid_started": process_started(pid),
                "host": host,
            }
        )
        return int(table.last_pk or 0)


def finish_export(
    db: Database, export_id: int, *, sent: int, pending: int, error: str | None
) -> None:
    with store.transaction(db):
        db.table("siem_exports").update(
            export_id,
            {"finished_at": utc_now(), "sent": sent, "pending": pending, "error": error},
        )
