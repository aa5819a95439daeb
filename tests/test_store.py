"""The SQLite store: private files, migrations safe to re-run, no finding stored twice."""

from __future__ import annotations

import sqlite3
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.findings import finding

from sweeper import store
from sweeper.cli import main
from sweeper.errors import StorageError
from sweeper.store.migrations import MIGRATIONS, migrate


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "sweeper.db"
    db = store.open_db(path)
    run = store.start_run(db, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z", None)
    with store.transaction(db):
        store.save_findings(db, run, [finding()])

    assert mode(path) == 0o600
    for sidecar in tmp_path.glob("new/sweeper.db-*"):  # WAL and shared-memory files
        assert mode(sidecar) & 0o077 == 0, sidecar


def test_an_existing_database_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "sweeper.db"
    store.open_db(path).conn.close()
    path.chmod(0o644)
    store.open_db(path).conn.close()
    assert mode(path) == 0o600


def test_migrations_run_once_and_are_safe_to_re_run(tmp_path: Path) -> None:
    db = store.open_db(tmp_path / "sweeper.db")
    assert migrate(db) == []
    assert [r["name"] for r in db.table("migrations").rows] == [name for name, _ in MIGRATIONS]
    assert set(db.table_names()) >= {
        "runs",
        "mailboxes",
        "run_mailboxes",
        "findings",
        "finding_addresses",
    }


def test_the_same_message_is_stored_once_with_its_addresses(tmp_path: Path) -> None:
    db = store.open_db(tmp_path / "sweeper.db")
    run = store.start_run(db, "a", "b", None)
    with store.transaction(db):
        assert store.save_findings(db, run, [finding(), finding()]) == 1
        assert store.save_findings(db, run, [finding()]) == 0
        # The same message in another mailbox (sent as a shared mailbox): the same finding.
        copy = replace(finding(), facts=replace(finding().facts, mailbox="b@northwick.example"))
        assert store.save_findings(db, run, [copy]) == 0

    assert db.table("findings").count == 1
    assert store.copies_of(db, 1) == [finding().facts.mailbox, "b@northwick.example"]
    addresses = store.exposed_addresses(db, 1)
    assert len(addresses) == 11
    assert addresses[0] == {
        "address": "p0@gmail.com",
        "domain": "gmail.com",
        "name": "P 0",
        "field": "to",
    }


def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "sweeper.db"
    path.write_bytes(b"this is not sqlite" * 100)
    before = path.read_bytes()

    with pytest.raises(StorageError, match="not a usable sweeper database"):
        store.open_db(path)
    assert path.read_bytes() == before

    result = CliRunner().invoke(main, ["findings"], env={"SWEEPER_DB": str(path)})
    assert result.exit_code == 2
    assert result.output.startswith("sweeper: ")
    assert "Traceback" not in result.output


def test_findings_without_a_database_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    result = CliRunner().invoke(main, ["findings"], env={"SWEEPER_DB": str(path)})
    assert result.exit_code == 2
    assert "run `sweeper sweep` first" in result.output
    assert not path.exists()


def test_an_empty_file_in_the_databases_place_is_refused_not_made_a_database(
    tmp_path: Path,
) -> None:
    path = tmp_path / "emptied.db"
    path.write_bytes(b"")
    result = CliRunner().invoke(main, ["incidents"], env={"SWEEPER_DB": str(path)})
    assert result.exit_code == 2
    assert result.output == (
        f"sweeper: {path} is empty, not a sweeper database: restore it from a backup, or "
        "delete it to start afresh\n"
    )
    assert path.stat().st_size == 0


def test_a_database_path_that_is_a_link_to_nothing_is_refused(tmp_path: Path) -> None:
    """Issue 24, item 18's class: SQLite would create the link's target (with the umask's
    mode, not the owner-only one) wherever it points."""
    target = tmp_path / "elsewhere" / "sweeper.db"
    target.parent.mkdir()
    link = tmp_path / "sweeper.db"
    link.symlink_to(target)
    with pytest.raises(StorageError, match="a symbolic link to nothing"):
        store.open_db(link)
    assert not target.exists()


def test_a_mailbox_cut_short_inside_its_transaction_leaves_nothing_of_it(tmp_path: Path) -> None:
    db = store.open_db(tmp_path / "sweeper.db")
    run_id = store.start_run(db, "2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z", None)

    with pytest.raises(KeyboardInterrupt), store.transaction(db):
        store.save_findings(db, run_id, [finding()])  # sqlite-utils' own writes commit...
        store.record_mailbox(db, run_id, "a@northwick.example", "id-a", "swept")
        raise KeyboardInterrupt  # ...unless they join this transaction

    assert db.table("findings").count == 0
    assert db.table("finding_addresses").count == 0
    assert db.table("run_mailboxes").count == 0

    with store.transaction(db):
        store.save_findings(db, run_id, [finding()])
    assert (db.table("findings").count, db.table("finding_addresses").count) == (1, 12)


def test_a_transaction_takes_the_write_lock_at_its_start(tmp_path: Path) -> None:
    """So that a second writer waits for it instead of failing after it has read."""
    path = tmp_path / "sweeper.db"
    db = store.open_db(path)
    other = sqlite3.connect(path, timeout=0, isolation_level=None)

    with store.transaction(db):
        db.execute("select count(*) from findings").fetchone()  # only read so far
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            other.execute("BEGIN IMMEDIATE")
        with store.transaction(db):  # nested: a savepoint of the same transaction
            db.table("tenant_domains").insert({"domain": "x.example", "verified": 1})
    other.execute("BEGIN IMMEDIATE")  # released at the end
    other.execute("ROLLBACK")
    assert db.table("tenant_domains").count == 1


def test_a_writer_waits_up_to_the_busy_timeout_then_says_so(tmp_path: Path) -> None:
    path = tmp_path / "sweeper.db"
    db = store.open_db(path)
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == store.BUSY_TIMEOUT_MS
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    db.execute("PRAGMA busy_timeout = 50")  # not thirty seconds, in a test
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    with pytest.raises(StorageError, match="stayed locked by another process"):
        store.start_run(db, "a", "b", None)
    holder.execute("ROLLBACK")
    assert db.table("runs").count == 0
