"""Schema changes, in order. Each runs once, in a transaction, and is recorded by name.

The migrations themselves are in :mod:`.schema_early` (0001 to 0011) and
:mod:`.schema_later` (0012 on). Add one by appending a function to ``LATER_MIGRATIONS``;
never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlite_utils import Database

from sweeper import __version__
from sweeper.errors import NewerDatabase, StorageError
from sweeper.store.schema_early import EARLY_MIGRATIONS
from sweeper.store.schema_later import LATER_MIGRATIONS

Migration = Callable[[Database], None]

MIGRATIONS: list[tuple[str, Migration]] = [*EARLY_MIGRATIONS, *LATER_MIGRATIONS]


TABLES = (
    "runs",
    "mailboxes",
    "run_mailboxes",
    "findings",
    "finding_addresses",
    "finding_copies",
    "incidents",
    "tenant_domains",
    "digests",
    "digest_items",
    "incident_history",
    "exports",
    "rejudgements",
    "meta",
    "alerts",
    "siem_sent",
    "siem_exports",
    "console_audit",
    "console_sessions",
)


def migrate(db: Database) -> list[str]:
    """Apply the migrations this database has not had yet; return their names.

    A database with a migration this version does not know was written by a newer sweeper:
    reading or writing it could lose what the newer version keeps, so it is refused
    (:class:`~sweeper.errors.NewerDatabase`). A table missing after migrating means the file
    was damaged or is not sweeper's (StorageError).
    """
    db.table("migrations").create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)
    done = {row[0] for row in db.execute("select name from migrations")}
    unknown = sorted(done - {name for name, _ in MIGRATIONS})
    if unknown:
        raise NewerDatabase(
            f"the database was written by a newer version of sweeper (schema change "
            f"{unknown[-1]!r} is unknown to sweeper {__version__}): upgrade sweeper to use it"
        )
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        with db.atomic():  # a migration is applied whole or not at all
            step(db)
            db.table("migrations").insert(
                {"name": name, "applied_at": datetime.now(UTC).isoformat(timespec="seconds")}
            )
        applied.append(name)
    present = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
    missing = [table for table in TABLES if table not in present]
    if missing:
        raise StorageError(
            f"the database is damaged or not sweeper's: table {missing[0]!r} is missing "
            "(restore it from a backup, or move it aside to start a new one)"
        )
    return applied
