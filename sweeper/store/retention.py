"""Data minimisation: the exposed addresses are kept only as long as they are needed.

``purge`` removes the addresses (and display names) of incidents that are closed, were
suppressed by an allowlist, or no longer reach the threshold after ``reclassify``, and whose
last message is older than the retention period. The files of people ``incident export``
wrote for those incidents are deleted with them (each is recorded when written), and the
report names every one. The counts, the severity, the messages and the triage history stay,
so the incident remains auditable; ``incident export`` then says the addresses were purged.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlite_utils import Database

from sweeper.store.db import transaction
from sweeper.store.triage import record
from sweeper.when import iso, utc_now


@dataclass
class PurgeReport:
    incidents: int
    addresses: int
    files_removed: list[str] = field(default_factory=list)
    files_left: list[tuple[str, str]] = field(default_factory=list)  # (path, why)

    def summary(self) -> str:
        lines = [
            f"Purged the exposed addresses of {self.incidents} incident(s): "
            f"{self.addresses} address records removed; counts and history kept."
        ]
        if self.files_removed:
            lines.append(f"Removed {len(self.files_removed)} export file(s):")
            lines += [f"  {path}" for path in self.files_removed]
        if self.files_left:
            lines.append(f"{len(self.files_left)} export file(s) could not be removed:")
            lines += [f"  {path}: {why}" for path, why in self.files_left]
        return "\n".join(lines)


def record_export(db: Database, incident_id: int, path: Path) -> None:
    """Remember a file of exposed people, so that the purge of its incident removes it."""
    with transaction(db):
        db.table("exports").insert(
            {"incident_id": incident_id, "path": str(path.absolute()), "written_at": utc_now()}
        )


def purge(db: Database, older_than: timedelta, now: datetime) -> PurgeReport:
    cutoff = iso(now - older_than)
    stamp = iso(now)
    report = PurgeReport(0, 0)
    with transaction(db):
        due = list(
            db.query(
                "select id, status, active from incidents where purged_at is null "
                "and (status = 'closed' or suppressed = 1 or active = 0) and last_sent_at < ?",
                [cutoff],
            )
        )
        for row in due:
            cursor = db.execute(
                "delete from finding_addresses where finding_id in "
                "(select id from findings where incident_id = ?)",
                [row["id"]],
            )
            report.addresses += max(cursor.rowcount, 0)
            db.table("incidents").update(row["id"], {"purged_at": stamp})
            why = "" if row["active"] else " (no longer at the threshold)"
            record(
                db,
                row["id"],
                by="sweeper purge",
                from_status=row["status"],
                to_status=row["status"],
                note=f"exposed addresses removed: older than {_words(older_than)}{why}",
            )
        report.incidents = len(due)
        _remove_exports(db, [row["id"] for row in due], stamp, report)
    return report


def _remove_exports(db: Database, incident_ids: list[int], stamp: str, report: PurgeReport) -> None:
    """Delete the export files of the purged incidents; say what happened to each."""
    for incident_id in incident_ids:
        for export in list(
            db.query(
                "select id, path from exports where incident_id = ? and removed_at is null",
                [incident_id],
            )
        ):
            note = _remove_file(Path(export["path"]))
            if note == "removed":
                report.files_removed.append(export["path"])
            elif note != "already gone":
                report.files_left.append((export["path"], note))
            db.table("exports").update(export["id"], {"removed_at": stamp, "purge_note": note})


def _remove_file(path: Path) -> str:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "already gone"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return "no longer a regular file: left alone, remove it by hand"
    try:
        path.unlink()
    except OSError as exc:
        return f"cannot be removed: {exc.strerror or exc}; remove it by hand"
    return "removed"


def _words(span: timedelta) -> str:
    if span >= timedelta(days=1):
        return f"{span.days} days"
    return f"{int(span.total_seconds() // 60)} minutes"
