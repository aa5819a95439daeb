"""The SQLite file: opening it, its connection's settings, transactions, plain-SQL rows.

``open_db`` creates the file readable by its owner only (it holds personal data) and brings
the schema up to date through :mod:`sweeper.store.migrations`. The rest of the store is small
``save_*`` / ``list_*`` functions over a sqlite-utils ``Database``; SQL only with parameters.
On the sweep's hot path they use :func:`select_rows`, :func:`insert_row`,
:func:`upsert_row` and :func:`update_row`: one SQL statement each, where sqlite-utils'
own ``query``, ``insert`` and ``update`` add savepoints and schema reads to every call.

Several processes may use one database at once (a nightly run, a ``sweep`` started by hand,
a ``lookup``, a digest). Every write goes through :func:`transaction`, which takes SQLite's
write lock at its start (``BEGIN IMMEDIATE``): a second writer waits for it, up to
:data:`BUSY_TIMEOUT_MS`, instead of failing with "database is locked" half-way through.
Each run records the process that runs it (:mod:`sweeper.processes`), so that
:mod:`sweeper.store.recovery` can tell a run still going from one whose process died.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from sweeper.errors import DatabaseBusy, DiskFull, StorageError
from sweeper.files import SQLITE_SIDE_FILES, open_private
from sweeper.store.migrations import MIGRATIONS, migrate

OWNER_ONLY = 0o600
# How long a writer waits for another process's write transaction before giving up. The
# longest transactions (reclassify, purge of a large database) take seconds, not minutes.
BUSY_TIMEOUT_MS = 30_000


def open_db(path: Path) -> Database:
    """Open (creating if needed, owner-only) and migrate the database at ``path``.

    Two processes creating the same new database at once can see "database is locked" at
    once, without SQLite's busy wait (changing the journal mode, or a read turning into a
    write): the opening is then tried again, for as long as a busy lock is waited for.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return _open_db(path)
        except StorageError as exc:
            if "database is locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def require_existing(path: Path, hint: str = "run `sweeper sweep` first") -> None:
    """Raise StorageError unless ``path`` holds a database already: a command that only reads
    (and the console) never creates one, not in the place of a missing file nor over an
    empty one (a file truncated by a failed copy or a full disk is not a new tenant)."""
    try:
        size = path.stat().st_size
    except OSError:
        raise StorageError(f"no database at {path}: {hint}, or restore it") from None
    if size == 0:
        raise StorageError(
            f"{path} is empty, not a sweeper database: restore it from a backup, or delete it "
            "to start afresh"
        )


def _open_db(path: Path) -> Database:
    """Open (creating if needed, owner-only) and migrate the database at ``path``.

    The connection never opens a transaction by itself (``isolation_level=None``): a write
    outside :func:`transaction` is one statement, committed at once. Freed pages are
    overwritten (``secure_delete``), so that purged addresses do not linger in the file.
    """
    try:
        _create_private(path)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA journal_mode = WAL")  # a digest can read while a sweep writes
    except sqlite3.DatabaseError as exc:
        raise _unusable(path, exc) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"no space left to create database {path}") from None
        raise StorageError(f"cannot create database {path}: {exc.strerror or exc}") from None
    # No sqlite-utils plugins: looking for them reads every installed package's metadata
    # at each start, and no outside code is handed a connection to personal data.
    db = Database(conn, execute_plugins=False)
    try:
        with _migration_lock(db):
            migrate(db)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _unusable(path, exc) from None
    return db


def _unusable(path: Path, exc: sqlite3.DatabaseError) -> StorageError:
    if "full" in str(exc):
        return DiskFull(f"no space left on the disk of {path}; nothing was written")
    return StorageError(f"{path} is not a usable sweeper database: {exc}")


def _migration_lock(db: Database) -> AbstractContextManager[None]:
    """The write lock while migrations are due, so that two processes opening an old (or new)
    database at once apply each migration once; nothing when none is due, so that opening
    the database to read it never waits for a writer."""
    exists = db.execute(
        "select 1 from sqlite_master where type = 'table' and name = 'migrations'"
    ).fetchone()
    done = {row[0] for row in db.execute("select name from migrations")} if exists else set()
    if all(name in done for name, _ in MIGRATIONS):
        return nullcontext()
    return transaction(db)


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite touches it; tighten an existing one that is not.

    SQLite gives the files it creates beside the database the database's own mode, but a
    write-ahead log or shared-memory file left behind by a crash keeps whatever mode it was
    made with: those are tightened too, before SQLite opens them again.
    """
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    try:
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, doing="create database")
    except FileExistsError:  # an existing database, or another process created it just now
        if path.is_symlink() and not path.exists():  # SQLite would create its target
            raise StorageError(
                f"{path} is a symbolic link to nothing: refusing to create a database through it"
            ) from None
        _tighten(path, follow=True)  # through a symbolic link, as SQLite opens it
    else:
        os.close(fd)
    real = path.resolve()  # SQLite keeps its files beside the database itself
    for suffix in SQLITE_SIDE_FILES:  # they hold the same personal data as the database
        side = real.with_name(real.name + suffix)
        if side.is_symlink():  # SQLite would open it, and write its log over the target
            raise StorageError(f"{side} is a symbolic link: refusing to write through it")
        _tighten(side, follow=False)


def _tighten(path: Path, *, follow: bool) -> None:
    """Make an existing regular file owner-only if group or others may read or write it."""
    try:
        info = path.stat() if follow else path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, OWNER_ONLY)


@contextmanager
def transaction(db: Database) -> Iterator[None]:
    """All writes inside happen together or not at all, even if the process is killed.

    ``BEGIN IMMEDIATE`` takes the write lock at once, waiting (up to ``BUSY_TIMEOUT_MS``)
    while another process writes. A deferred ``BEGIN`` would take it only at the first
    write, and a transaction that has read by then cannot wait for it: SQLite fails it
    with "database is locked" at once, since what it read may be stale. Everything read
    inside is therefore also what the writes are based on.

    sqlite-utils' own writes inside become savepoints of this transaction, as does a
    nested ``transaction``; ``with conn:`` would begin only at the first write, which
    sqlite-utils then commits by itself, leaving half a mailbox stored if the process died.
    """
    if db.conn.in_transaction:
        with db.atomic():  # a savepoint of the transaction already open
            yield
        return
    try:
        db.conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        raise DatabaseBusy(
            f"the database stayed locked by another process for {BUSY_TIMEOUT_MS // 1000} s "
            f"({exc}); nothing was written"
        ) from None
    try:
        yield
    except BaseException:
        db.rollback()  # a no-op if SQLite already rolled back itself
        raise
    try:
        db.conn.execute("COMMIT")
    except BaseException:
        db.rollback()
        raise


# -- one statement each ---------------------------------------------------------------------


def select_rows(db: Database, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The rows of a query, as dicts by column name: ``db.query`` without its savepoint
    (sqlite-utils wraps every query in one, two more statements each time)."""
    cursor = db.execute(sql, list(params))
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def insert_row(db: Database, table: str, row: Mapping[str, Any], *, replace: bool = False) -> int:
    """Insert one row in plain SQL and return its rowid: sqlite-utils' ``insert`` reads the
    table's schema on every call, which on a sweep's hot path cost more than the writing."""
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    verb = "insert or replace" if replace else "insert"
    cursor = db.execute(f"{verb} into {table} ({columns}) values ({marks})", list(row.values()))
    return int(cursor.lastrowid or 0)


def upsert_row(
    db: Database, table: str, row: Mapping[str, Any], *, key: str, keep: tuple[str, ...] = ()
) -> None:
    """Insert ``row``, or set these columns of the row with the same ``key``: the others
    keep their values (as sqlite-utils' ``upsert``, without reading the schema first), and
    so do the ``keep`` columns, unless theirs is null."""
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    updates = ", ".join(
        f"{c} = coalesce({table}.{c}, excluded.{c})" if c in keep else f"{c} = excluded.{c}"
        for c in row
        if c != key
    )
    # Table and column names are sweeper's own, never data: the values are parameters.
    upsert = f"insert into {table} ({columns}) values ({marks}) on conflict ({key})"  # noqa: S608
    db.execute(f"{upsert} do update set {updates}", list(row.values()))


def update_row(db: Database, table: str, row_id: int, changes: Mapping[str, Any]) -> None:
    """Set these columns of the row whose ``id`` is ``row_id`` (sqlite-utils' ``update``
    reads the schema and the row first)."""
    assignments = ", ".join(f"{column} = ?" for column in changes)
    # Table and column names are sweeper's own, never data: the values are parameters.
    update = f"update {table} set {assignments} where id = ?"  # noqa: S608
    db.execute(update, [*changes.values(), row_id])
