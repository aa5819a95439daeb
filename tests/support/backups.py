"""Backups of the database and restores from them, as an operator makes them."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def back_up(db: Path, to: Path) -> None:
    """A consistent copy of the database, as ``sqlite3 .backup`` makes one."""
    source, target = sqlite3.connect(db), sqlite3.connect(to)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def restore(backup: Path, db: Path) -> None:
    """The database as the backup holds it, as an operator restores one (``.restore``)."""
    back_up(backup, db)
