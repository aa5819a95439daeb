"""The files of an incident the DPO takes away: the people to notify (Article 34) and the
breach worksheet (Article 33), written readable by their owner only.

A path given with ``--out`` is refused before anything is read if it would replace one of
sweeper's own files (the database, its side files, the configuration); an export of the
people is remembered, so that the purge of its incident removes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from sweeper.commands.database import protected
from sweeper.files import check_out_path, write_private
from sweeper.present.response import export_people, render_worksheet
from sweeper.settings import Settings
from sweeper.store.response import people_to_notify, worksheet
from sweeper.store.retention import record_export


def people_path(settings: Settings, incident_id: int, fmt: str, out: Path | None) -> Path | None:
    """Where the people go: ``--out``, else ``reports/incident-ID-people.FORMAT``; None for
    ``-`` (standard output). Refused if it would replace one of sweeper's own files."""
    if str(out) == "-":
        return None
    path = out or settings.digest.reports_dir / f"incident-{incident_id}-people.{fmt}"
    check_out_path(path, protected(settings))
    return path


def export_people_to(
    db: Database, settings: Settings, incident_id: int, fmt: str, path: Path | None
) -> str:
    """The people to notify as CSV or JSON, written to ``path`` (and remembered for the
    purge) unless None; returns the content."""
    content = export_people(people_to_notify(db, incident_id), fmt)
    if path is not None:
        write_private(path, content, protected=protected(settings))
        record_export(db, incident_id, path)
    return content


def worksheet_to(
    db: Database, settings: Settings, incident_id: int, fmt: str, out: Path | None
) -> str:
    """The incident's breach worksheet in Markdown or HTML, written to ``out`` unless None;
    returns the text."""
    sheet = worksheet(db, incident_id, settings.severity, now=datetime.now(UTC))
    text = render_worksheet(sheet, fmt, settings.own_domains, settings.timezone)
    if out is not None:
        write_private(out, text, protected=protected(settings))
    return text
