"""What the console's pages read: incidents filtered and ranked, and the sweep's health."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from sweeper.rules.severity import LEVELS
from sweeper.store.digests import last_sent
from sweeper.store.incidents import list_incidents


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
