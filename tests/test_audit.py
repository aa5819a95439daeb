"""The console's audit trail: each look at personal data is a row the database keeps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sweeper import store
from sweeper.store.audit import accesses, record_access


def test_each_look_is_recorded_with_who_from_where_and_what(tmp_path: Path) -> None:
    db = store.open_db(tmp_path / "sweeper.db")

    record_access(
        db, who="dpo@northwick.example", name="Dana Pryce", source="192.0.2.7",
        action="reveal", incident_id=4, detail="12 addresses shown",
    )  # fmt: skip
    record_access(
        db, who="dpo@northwick.example", name="Dana Pryce", source="192.0.2.7",
        action="export", incident_id=4, detail="people to notify (CSV)",
    )  # fmt: skip
    record_access(
        db, who="viewer@northwick.example", name="Vic Ewer", source="192.0.2.8",
        action="worksheet", incident_id=5,
    )  # fmt: skip

    trail = accesses(db, 4)
    assert [(a.who, a.action, a.detail) for a in trail] == [
        ("dpo@northwick.example", "reveal", "12 addresses shown"),
        ("dpo@northwick.example", "export", "people to notify (CSV)"),
    ]
    assert all(a.source == "192.0.2.7" and a.at.endswith("Z") for a in trail)


def test_the_database_refuses_to_change_or_remove_the_trail(tmp_path: Path) -> None:
    path = tmp_path / "sweeper.db"
    db = store.open_db(path)
    record_access(
        db, who="dpo@northwick.example", name="Dana Pryce", source="192.0.2.7",
        action="reveal", incident_id=4,
    )  # fmt: skip

    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("update console_audit set who = 'someone.else@northwick.example'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("delete from console_audit")
    conn.close()
    assert [a.who for a in accesses(db, 4)] == ["dpo@northwick.example"]
