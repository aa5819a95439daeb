"""Whether a database file copied from elsewhere is whole and sweeper's, before it is used.

The Blob-held database (:mod:`sweeper.blobstate`) is downloaded to a temporary file and
checked here before it takes the place of the working copy, and checked again before it is
stored back: a cut download, a damaged file or one written by a newer sweeper is never
worked on, and never written back over the good copy.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sweeper.store.migrations import MIGRATIONS


def problem_with(path: Path) -> str | None:
    """What makes the SQLite file at ``path`` unfit to use, or None when it is sound.

    Sound: SQLite's ``quick_check`` finds nothing wrong, and the file records sweeper's
    schema changes, every one of them known to this version.
    """
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return f"it cannot be opened ({exc})"
    try:
        verdict = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        if verdict != ["ok"]:
            return f"SQLite's quick_check found it damaged ({verdict[0] if verdict else '?'})"
        tables = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
        ).fetchall()
        if not tables:
            return "it is not a sweeper database (no schema version)"
        done = {row[0] for row in conn.execute("SELECT name FROM migrations").fetchall()}
    except sqlite3.Error as exc:
        return f"it cannot be read as a database ({exc})"
    finally:
        conn.close()
    unknown = sorted(done - {name for name, _ in MIGRATIONS})
    if unknown:
        return f"its schema change {unknown[-1]!r} is unknown to this sweeper (a newer one)"
    if MIGRATIONS[0][0] not in done:
        return "it is not a sweeper database (no initial schema)"
    return None


def checkpoint(path: Path) -> None:
    """Fold the write-ahead log into the file itself, so that the file alone is the whole."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
