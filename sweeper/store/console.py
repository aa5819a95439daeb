"""What the console reads and keeps: its database (which must exist), incidents filtered and
ranked, the sweep's health, and its sessions (kept here so that signing out ends one)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from sweeper.rules.severity import LEVELS
from sweeper.store.db import open_db, require_existing, transaction
from sweeper.store.digests import last_sent
from sweeper.store.incidents import list_incidents


def open_existing(path: Path) -> Database:
    """The console's database, which must exist: the console never creates one (a file that
    disappeared while it serves is refused, as at start, not replaced by an empty one)."""
    require_existing(path)
    return open_db(path)


@dataclass(frozen=True)
class ConsoleSession:
    who: str  # the account's user principal name
    name: str
    role: str


def _hashed(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def start_session(
    db: Database, *, who: str, name: str, role: str, minutes: int, now: datetime
) -> str:
    """A new session for ``who``, ending ``minutes`` after ``now``; its secret id (kept in
    the cookie only: the table holds its SHA-256). Sessions long over are removed."""
    token = secrets.token_urlsafe(32)
    with transaction(db):
        db.execute(
            "delete from console_sessions where expires_at < ?", [_stamp(now - timedelta(days=1))]
        )
        db.execute(
            "insert into console_sessions (id_hash, who, name, role, created_at, expires_at) "
            "values (?, ?, ?, ?, ?, ?)",
            [
                _hashed(token),
                who,
                name,
                role,
                _stamp(now),
                _stamp(now + timedelta(minutes=minutes)),
            ],
        )
    return token


def session_of(db: Database, token: str, *, now: datetime) -> ConsoleSession | None:
    """The session ``token`` names, while it is neither revoked nor expired."""
    row = db.execute(
        "select who, name, role from console_sessions where id_hash = ? "
        "and revoked_at is null and expires_at > ?",
        [_hashed(token), _stamp(now)],
    ).fetchone()
    return None if row is None else ConsoleSession(row[0], row[1] or row[0], row[2])


def end_session(db: Database, token: str, *, now: datetime) -> None:
    """Revoke the session ``token`` names: its cookie is no session from now on."""
    with transaction(db):
        db.execute(
            "update console_sessions set revoked_at = ? where id_hash = ? and revoked_at is null",
            [_stamp(now), _hashed(token)],
        )


def incidents_for_console(
    db: Database,
    *,
    severity: str | None = None,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    sender: str | None = None,
) -> list[dict[str, Any]]:
    """Incidents, most severe first, then the most recent; each filter applied when given.

    ``since`` and ``until`` are days (``YYYY-MM-DD``) compared with the last message sent;
    ``sender`` matches part of the sender's address, in any case.
    """
    rows = list_incidents(db, include_dismissed=True, include_inactive=False)
    if severity:
        rows = [r for r in rows if r["severity"] == severity]
    if status:
        rows = [r for r in rows if r["status"] == status]
    if since:
        rows = [r for r in rows if (r["last_sent_at"] or "")[:10] >= since]
    if until:
        rows = [r for r in rows if (r["last_sent_at"] or "")[:10] <= until]
    if sender:
        wanted = sender.strip().lower()
        rows = [r for r in rows if wanted in (r["sender"] or "").lower()]
    newest_first = sorted(rows, key=lambda r: r["last_sent_at"] or "", reverse=True)
    rank = {level: i for i, level in enumerate(reversed(LEVELS))}  # critical first
    return sorted(newest_first, key=lambda r: rank.get(r["severity"], len(LEVELS)))


def health(db: Database, runs: int = 10) -> dict[str, Any]:
    """The last runs, the mailboxes the last one could not read, the last digest and
    the last alerts."""
    recent = list(db.query("select * from runs order by id desc limit ?", [runs]))
    problems: list[dict[str, Any]] = []
    if recent:
        problems = list(
            db.query(
                "select mailbox, status, throttled, error from run_mailboxes where run_id = ? "
                "and (status = 'failed' or throttled > 0) order by mailbox",
                [recent[0]["id"]],
            )
        )
    alerts = list(
        db.query(
            "select incident_id, channel, status, severity, created_at, sent_at from alerts "
            "order by id desc limit 10"
        )
    )
    return {"runs": recent, "problems": problems, "digest": last_sent(db), "alerts": alerts}
