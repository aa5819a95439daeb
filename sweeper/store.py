"""The SQLite store: runs, mailboxes, findings and the addresses each finding exposed.

``open_db`` creates the file readable by its owner only (it holds personal data) and brings
the schema up to date through :mod:`sweeper.migrations`. Everything else is a small
``save_*`` / ``list_*`` function over a sqlite-utils ``Database``; SQL only with parameters.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlite_utils import Database

from .classify import Facts, Finding, Recipient
from .errors import StorageError
from .incidents import normalise_subject
from .migrations import migrate

OWNER_ONLY = 0o600


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_db(path: Path) -> Database:
    """Open (creating if needed, owner-only) and migrate the database at ``path``."""
    try:
        _create_private(path)
        conn = sqlite3.connect(str(path), timeout=30)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")  # a digest can read while a sweep writes
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path} is not a usable sweeper database: {exc}") from None
    except OSError as exc:
        raise StorageError(f"cannot create database {path}: {exc.strerror or exc}") from None
    db = Database(conn)
    try:
        migrate(db)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StorageError(f"{path} is not a usable sweeper database: {exc}") from None
    return db


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite touches it; tighten an existing one that is not."""
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, OWNER_ONLY)
        return
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    os.close(fd)


@contextmanager
def transaction(db: Database) -> Iterator[None]:
    """All writes inside happen together or not at all, even if the process is killed.

    An explicit BEGIN, so that sqlite-utils' own writes inside become savepoints of this
    transaction; ``with conn:`` would begin only at the first write, which sqlite-utils
    then commits by itself, leaving half a mailbox stored if the process died after it.
    """
    with db.atomic():
        yield


# -- runs -----------------------------------------------------------------------------------


@dataclass
class RunTotals:
    mailboxes_total: int = 0
    swept: int = 0
    skipped: int = 0
    failed: int = 0
    messages_read: int = 0
    findings_new: int = 0
    throttled: int = 0
    malformed: int = 0
    incidents_touched: int = 0  # incidents created or extended by this run


def start_run(db: Database, since: str, until: str, mailboxes: list[str] | None) -> int:
    with transaction(db):
        table = db.table("runs")
        table.insert(
            {
                "started_at": utc_now(),
                "status": "running",
                "since": since,
                "until": until,
                "mailbox_filter": orjson.dumps(mailboxes).decode() if mailboxes else None,
            }
        )
        return int(table.last_pk or 0)


def finish_run(
    db: Database, run_id: int, status: str, totals: RunTotals, error: str | None = None
) -> None:
    with transaction(db):
        db.table("runs").update(
            run_id,
            {
                "finished_at": utc_now(),
                "status": status,
                "error": error,
                **totals.__dict__,
            },
        )


def get_run(db: Database, run_id: int) -> dict[str, Any]:
    return dict(db.table("runs").get(run_id))


# -- mailboxes and findings -----------------------------------------------------------------


def record_mailbox(
    db: Database,
    run_id: int,
    upn: str,
    user_id: str,
    status: str,
    *,
    messages: int = 0,
    findings_new: int = 0,
    throttled: int = 0,
    malformed: int = 0,
    error: str | None = None,
    window_until: str | None = None,
    window_since: str | None = None,
    targeted: bool = False,
) -> None:
    """What happened to one mailbox in one run; call inside the findings' transaction.

    A targeted run (chosen mailboxes, any window) is recorded with the run only: it leaves
    the mailbox's nightly state alone. The high-water mark moves only when a mailbox was
    read to the end; a mailbox that has none yet gets the start of the window it failed.
    """
    now = utc_now()
    db.table("run_mailboxes").insert(
        {
            "run_id": run_id,
            "mailbox": upn,
            "status": status,
            "messages": messages,
            "findings_new": findings_new,
            "throttled": throttled,
            "malformed": malformed,
            "error": error,
            "window_since": window_since,
        },
        replace=True,
    )
    if targeted:
        return
    row: dict[str, Any] = {
        "mailbox": upn,
        "user_id": user_id,
        "last_attempt_at": now,
        "last_status": status,
        "last_error": error,
        "last_run_id": run_id,
    }
    if status == "swept":
        row["last_success_at"] = now
        row["last_window_until"] = window_until
    db.table("mailboxes").upsert(row, pk="mailbox", alter=False)
    if status != "swept" and window_since is not None:
        # Never read yet: the next incremental run starts where this window started,
        # however far the nightly window has moved on by then.
        db.execute(
            "update mailboxes set last_window_until = ? "
            "where mailbox = ? and last_window_until is null",
            [window_since, upn],
        )


def mailbox_marks(db: Database) -> dict[str, str]:
    """The end of each mailbox's last successful nightly window (its high-water mark)."""
    return {
        r["mailbox"]: r["last_window_until"]
        for r in db.query(
            "select mailbox, last_window_until from mailboxes where last_window_until is not null"
        )
    }


def save_findings(db: Database, run_id: int, findings: Iterable[Finding]) -> int:
    """Store findings not seen before (key: mailbox + message key). Returns how many were new.

    Call inside a transaction. The same message swept twice is stored once. Every visible
    recipient is stored, flagged external or not, so the finding can be judged again.
    """
    new = 0
    found_at = utc_now()
    for finding in findings:
        facts = finding.facts
        existing = db.execute(
            "select id from findings where mailbox = ? and message_key = ?",
            [facts.mailbox, facts.message_key],
        ).fetchone()
        if existing:
            continue
        table = db.table("findings")
        table.insert(_finding_row(finding, run_id, found_at))
        finding_id = table.last_pk
        exposed = {r.address for r in finding.exposed}
        db.table("finding_addresses").insert_all(
            {
                "finding_id": finding_id,
                "address": r.address,
                "domain": r.domain,
                "name": r.name,
                "field": r.field,
                "external": int(r.address in exposed),
            }
            for r in facts.recipients
        )
        new += 1
    return new


def _finding_row(finding: Finding, run_id: int, found_at: str) -> dict[str, Any]:
    facts = finding.facts
    return {
        "mailbox": facts.mailbox,
        "message_key": facts.message_key,
        "graph_id": facts.graph_id,
        "internet_message_id": facts.internet_message_id,
        "conversation_id": facts.conversation_id,
        "sent_at": facts.sent_at,
        "subject": facts.subject,
        "subject_key": normalise_subject(facts.subject),
        "sender": facts.sender,
        "to_count": facts.to_count,
        "cc_count": facts.cc_count,
        "bcc_count": facts.bcc_count,
        "run_id": run_id,
        "found_at": found_at,
        **judgement_row(finding),
    }


def judgement_row(finding: Finding) -> dict[str, Any]:
    """The columns that depend on the rules, which ``reclassify`` rewrites."""
    return {
        "visible_external_count": finding.visible_external_count,
        "external_domains": orjson.dumps(list(finding.external_domains)).decode(),
        "bcc_used": int(finding.facts.bcc_used),
        "severity": finding.severity,
        "severity_reason": finding.severity_reason,
        "suppressed_by": finding.suppressed_by,
        "qualifies": 1,
    }


def save_tenant_domains(db: Database, verified: Iterable[str]) -> None:
    """Remember the verified domains last seen, for judging again without Graph."""
    now = utc_now()
    with transaction(db):
        db.execute("update tenant_domains set verified = 0")
        db.table("tenant_domains").upsert_all(
            ({"domain": d, "verified": 1, "seen_at": now} for d in verified), pk="domain"
        )


def verified_domains(db: Database) -> list[str]:
    return [r["domain"] for r in db.query("select domain from tenant_domains where verified = 1")]


def list_findings(
    db: Database, since: str | None = None, *, include_suppressed: bool = True
) -> list[dict[str, Any]]:
    """Qualifying findings sent at or after ``since`` (ISO UTC), oldest first, public shape."""
    sql = "select * from findings where qualifies = 1"
    params: list[Any] = []
    if since:
        sql += " and sent_at >= ?"
        params.append(since)
    if not include_suppressed:
        sql += " and suppressed_by is null"
    sql += " order by sent_at, mailbox, id"
    return [
        {
            "id": row["id"],
            "incident_id": row["incident_id"],
            "mailbox": row["mailbox"],
            "internet_message_id": row["internet_message_id"],
            "sent_at": row["sent_at"],
            "subject": row["subject"],
            "sender": row["sender"],
            "to_count": row["to_count"],
            "cc_count": row["cc_count"],
            "bcc_count": row["bcc_count"],
            "visible_external_count": row["visible_external_count"],
            "external_domains": orjson.loads(row["external_domains"]),
            "bcc_used": bool(row["bcc_used"]),
            "severity": row["severity"],
            "severity_reason": row["severity_reason"],
            "suppressed_by": row["suppressed_by"],
            "found_at": row["found_at"],
        }
        for row in db.query(sql, params)
    ]


def exposed_addresses(db: Database, finding_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "select address, domain, name, field from finding_addresses "
            "where finding_id = ? and external = 1 order by address",
            [finding_id],
        )
    )


def stored_facts(db: Database) -> Iterator[tuple[int, Facts, str]]:
    """Every stored finding's facts, with all its visible recipients, for judging again.

    Findings of incidents whose addresses were purged are left as they were judged.
    """
    for row in db.query(
        "select * from findings where incident_id is null or incident_id not in "
        "(select id from incidents where purged_at is not null) order by id"
    ):
        recipients = tuple(
            Recipient(r["address"], r["domain"], r["name"], r["field"])
            for r in db.query(
                "select * from finding_addresses where finding_id = ? order by rowid",
                [row["id"]],
            )
        )
        yield (
            row["id"],
            Facts(
                mailbox=row["mailbox"],
                message_key=row["message_key"],
                graph_id=row["graph_id"] or "",
                internet_message_id=row["internet_message_id"],
                conversation_id=row["conversation_id"],
                sent_at=row["sent_at"],
                subject=row["subject"] or "",
                sender=row["sender"],
                to_count=row["to_count"],
                cc_count=row["cc_count"],
                bcc_count=row["bcc_count"],
                recipients=recipients,
            ),
            row["source"],
        )


def update_judgement(
    db: Database, finding_id: int, finding: Finding | None, external: Iterable[str]
) -> dict[str, Any]:
    """Write a new judgement of a stored finding; None marks it as no longer qualifying.

    ``external`` are the addresses now external, whether or not the finding qualifies.
    Returns the row as it was before, for the caller to count what changed.
    """
    before = dict(db.table("findings").get(finding_id))
    changes = judgement_row(finding) if finding is not None else {"qualifies": 0}
    db.table("findings").update(finding_id, changes)
    now_external = list(external)
    db.execute("update finding_addresses set external = 0 where finding_id = ?", [finding_id])
    db.execute(
        "update finding_addresses set external = 1 "
        "where finding_id = ? and address in (select value from json_each(?))",
        [finding_id, orjson.dumps(now_external).decode()],
    )
    return before
