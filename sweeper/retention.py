"""Data minimisation: the exposed addresses are kept only as long as they are needed.

``purge`` removes the addresses (and display names) of incidents that are closed, or were
suppressed by an allowlist, and whose last message is older than the retention period. The
counts, the severity, the messages and the triage history stay, so the incident remains
auditable; ``incident export`` then says the addresses were purged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlite_utils import Database

from .store import transaction
from .triage import record


@dataclass
class PurgeReport:
    incidents: int
    addresses: int

    def summary(self) -> str:
        return (
            f"Purged the exposed addresses of {self.incidents} incident(s): "
            f"{self.addresses} address records removed; counts and history kept."
        )


def purge(db: Database, older_than: timedelta, now: datetime) -> PurgeReport:
    cutoff = (now - older_than).strftime("%Y-%m-%dT%H:%M:%SZ")
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    due = list(
        db.query(
            "select id, status from incidents where purged_at is null "
            "and (status = 'closed' or suppressed = 1) and last_sent_at < ?",
            [cutoff],
        )
    )
    removed = 0
    with transaction(db):
        for row in due:
            cursor = db.execute(
                "delete from finding_addresses where finding_id in "
                "(select id from findings where incident_id = ?)",
                [row["id"]],
            )
            removed += max(cursor.rowcount, 0)
            db.table("incidents").update(row["id"], {"purged_at": stamp})
            record(
                db,
                row["id"],
                by="sweeper purge",
                from_status=row["status"],
                to_status=row["status"],
                note=f"exposed addresses removed: older than {_words(older_than)}",
            )
    return PurgeReport(len(due), removed)


def _words(span: timedelta) -> str:
    if span >= timedelta(days=1):
        return f"{span.days} days"
    return f"{int(span.total_seconds() // 60)} minutes"
