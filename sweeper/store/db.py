"""The SQLite store: runs, mailboxes, findings and the addresses each finding exposed.

``open_db`` creates the file readable by its owner only (it holds personal data) and brings
the schema up to date through :mod:`sweeper.store.migrations`. Everything else is a small
``save_*`` / ``list_*`` function over a sqlite-utils ``Database``; SQL only with parameters.

Several processes may use one database at once (a nightly run, a ``sweep`` started by hand,
a ``lookup``, a digest). Every write goes through :func:`transaction`, which takes SQLite's
write lock at its start (``BEGIN IMMEDIATE``): a second writer waits for it, up to
:data:`BUSY_TIMEOUT_MS`, instead of failing with "database is locked" half-way through.
Each run records the process that runs it, so that :mod:`sweeper.store.recovery` can tell a run
still going from one whose process died.
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlite_utils import Database

from sweeper.errors import DatabaseBusy, DiskFull, MailboxStatus, RunStatus, StorageError
from sweeper.files import SQLITE_SIDE_FILES, open_private
from sweeper.logs import current_run_id
from sweeper.rules.classify import Facts, Finding, Recipient
from sweeper.rules.incidents import normalise_subject
from sweeper.store.migrations import MIGRATIONS, migrate
from sweeper.when import utc_now

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
    migrations = db.table("migrations")
    done = {row["name"] for row in migrations.rows} if migrations.exists() else set()
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


# -- the process that runs a run ------------------------------------------------------------


def this_host() -> str:
    """The name runs record as where they ran: a pid means something only on its own host."""
    return socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host and has not ended (a zombie has)."""
    if pid <= 0:
        return False  # not a process: 0 and below name process groups
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return _proc_stat(pid)[:1] not in (["Z"], ["X"])


def process_started(pid: int) -> str | None:
    """When process ``pid`` started, as text that differs for a later process given the
    same pid; None when this host cannot tell.

    On Linux: the boot's id (after a reboot the same pid and tick count can recur) and
    field 22 of ``/proc/<pid>/stat``, the clock ticks from boot to the process's start.
    Elsewhere: ``ps``'s start time, to the second.
    """
    fields = _proc_stat(pid)
    if len(fields) > 19:
        try:
            boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        except OSError:
            boot = "boot"
        return f"{boot}:{fields[19]}"
    if Path("/proc/self/stat").exists():
        return None  # Linux, and no such process
    return _ps_started(pid)


def _proc_stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` from the third (the state) on; [] if unreadable.

    The second field, the command name in parentheses, may itself hold spaces and
    parentheses: the fields start after its last ``)``.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text[text.rfind(")") + 1 :].split()


def _ps_started(pid: int) -> str | None:
    """The start time ``ps`` shows for the process (macOS, the BSDs), or None."""
    try:
        done = subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    started = " ".join(done.stdout.split())
    return started if done.returncode == 0 and started else None


# -- runs -----------------------------------------------------------------------------------


@dataclass
class RunTotals:
    mailboxes_total: int = 0
    swept: int = 0
    skipped: int = 0
    failed: int = 0
    messages_read: int = 0
    findings_new: int = 0
    throttled: int = 0
    malformed: int = 0
    incidents_touched: int = 0  # incidents created or extended by this run
    swept_disabled: int = 0  # of the swept: disabled accounts (shared mailboxes, leavers')
    excluded: int = 0  # of the skipped: named by sweep.exclude


def start_run(db: Database, since: str, until: str, mailboxes: list[str] | None) -> int:
    """Record a run as running, with the process that runs it (see :mod:`.recovery`)."""
    pid = os.getpid()
    with transaction(db):
        table = db.table("runs")
        table.insert(
            {
                "started_at": utc_now(),
                "status": "running",
                "since": since,
                "until": until,
                "mailbox_filter": orjson.dumps(mailboxes).decode() if mailboxes else None,
                "pid": pid,
                "pid_started": process_started(pid),
                "host": this_host(),
                "log_run_id": current_run_id(),  # joins the run to its log lines
            }
        )
        return int(table.last_pk or 0)


def finish_run(
    db: Database, run_id: int, status: RunStatus, totals: RunTotals, error: str | None = None
) -> None:
    with transaction(db):
        db.table("runs").update(
            run_id,
            {
                "finished_at": utc_now(),
                "status": status,
                "error": error,
                **totals.__dict__,
            },
        )


def get_run(db: Database, run_id: int) -> dict[str, Any]:
    return dict(db.table("runs").get(run_id))


# -- mailboxes and findings -----------------------------------------------------------------


def record_mailbox(
    db: Database,
    run_id: int,
    upn: str,
    user_id: str,
    status: MailboxStatus,
    *,
    messages: int = 0,
    findings_new: int = 0,
    throttled: int = 0,
    malformed: int = 0,
    error: str | None = None,
    window_until: str | None = None,
    window_since: str | None = None,
    targeted: bool = False,
    enabled: bool = True,
    run_only: bool = False,
) -> None:
    """What happened to one mailbox in one run; call inside the findings' transaction.

    A targeted run (chosen mailboxes, any window) is recorded with the run only: it leaves
    the mailbox's nightly state alone; so is a mailbox a run passed over without asking
    Graph (``run_only``: excluded, or not yet due for its weekly probe). The high-water
    mark moves only when a mailbox was read to the end; a mailbox that has none yet gets
    the start of the window it failed.
    """
    now = utc_now()
    _insert(
        db,
        "run_mailboxes",
        {
            "run_id": run_id,
            "mailbox": upn,
            "status": status,
            "messages": messages,
            "findings_new": findings_new,
            "throttled": throttled,
            "malformed": malformed,
            "error": error,
            "window_since": window_since,
            "enabled": int(enabled),
        },
        replace=True,
    )
    if targeted or run_only:
        return
    row: dict[str, Any] = {
        "mailbox": upn,
        "user_id": user_id,
        "last_attempt_at": now,
        "last_status": status,
        "last_error": error,
        "last_run_id": run_id,
    }
    if status == "swept":
        row["last_success_at"] = now
        row["last_window_until"] = window_until
    _upsert(db, "mailboxes", row, key="mailbox")
    if status != "swept" and window_since is not None:
        # Never read yet: the next incremental run starts where this window started,
        # however far the nightly window has moved on by then.
        db.execute(
            "update mailboxes set last_window_until = ? "
            "where mailbox = ? and last_window_until is null",
            [window_since, upn],
        )


def _insert(db: Database, table: str, row: Mapping[str, Any], *, replace: bool = False) -> None:
    """One row, in plain SQL: sqlite-utils' ``insert`` reads the table's schema on every
    call, which on a sweep's hot path (a row per mailbox) cost more than the writing."""
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    verb = "insert or replace" if replace else "insert"
    db.execute(f"{verb} into {table} ({columns}) values ({marks})", list(row.values()))


def _upsert(db: Database, table: str, row: Mapping[str, Any], *, key: str) -> None:
    """Insert ``row``, or set these columns of the row with the same ``key``: the others
    keep their values (as sqlite-utils' ``upsert``, without reading the schema first)."""
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != key)
    # Table and column names are sweeper's own, never data: the values are parameters.
    upsert = f"insert into {table} ({columns}) values ({marks}) on conflict ({key})"  # noqa: S608
    db.execute(f"{upsert} do update set {updates}", list(row.values()))


def without_mailbox(db: Database) -> dict[str, str]:
    """Accounts Graph last said have no mailbox, with when it said so (the last probe).

    A nightly mailbox is recorded ``skipped`` only when Graph answered that it has none."""
    return {
        r["mailbox"]: r["last_attempt_at"]
        for r in db.query(
            "select mailbox, last_attempt_at from mailboxes where last_status = 'skipped'"
        )
    }


def mailbox_marks(db: Database) -> dict[str, str]:
    """The end of each mailbox's last successful nightly window (its high-water mark)."""
    return {
        r["mailbox"]: r["last_window_until"]
        for r in db.query(
            "select mailbox, last_window_until from mailboxes where last_window_until is not null"
        )
    }


def save_findings(db: Database, run_id: int, findings: Iterable[Finding]) -> int:
    """Store findings not seen before (key: the message key). Returns how many were new.

    Call inside a transaction. The same message swept twice is stored once, and so is one
    message stored in two mailboxes (sent as a shared mailbox, with a copy in each): one
    finding, each mailbox recorded as holding a copy (``finding_copies``). Every visible
    recipient is stored, flagged external or not, so the finding can be judged again.
    """
    new = 0
    found_at = utc_now()
    for finding in findings:
        facts = finding.facts
        existing = db.execute(
            "select id, mailbox from findings where message_key = ? order by id limit 1",
            [facts.message_key],
        ).fetchone()
        if existing:
            _add_copy(db, existing[0], existing[1], finding, run_id, found_at)
            continue
        table = db.table("findings")
        table.insert(_finding_row(finding, run_id, found_at))
        finding_id = table.last_pk
        _copy(db, int(finding_id or 0), facts.mailbox, facts.graph_id, run_id, found_at)
        exposed = {r.address for r in finding.exposed}
        db.table("finding_addresses").insert_all(
            {
                "finding_id": finding_id,
                "address": r.address,
                "domain": r.domain,
                "name": r.name,
                "field": r.field,
                "external": int(r.address in exposed),
            }
            for r in facts.recipients
        )
        new += 1
    return new


def _copy(
    db: Database, finding_id: int, mailbox: str, graph_id: str, run_id: int, found_at: str
) -> bool:
    """Record that ``mailbox`` holds a copy of the finding's message; False if known."""
    cursor = db.execute(
        "insert or ignore into finding_copies (finding_id, mailbox, graph_id, run_id, found_at) "
        "values (?, ?, ?, ?, ?)",
        [finding_id, mailbox, graph_id, run_id, found_at],
    )
    return cursor.rowcount > 0


def _add_copy(
    db: Database, finding_id: int, stored_in: str, finding: Finding, run_id: int, found_at: str
) -> None:
    """Another mailbox's copy of a stored finding. The From mailbox's own copy speaks for the
    message: its Entra department is the one the severity rule reads, whichever copy was
    read first (the sender's own Sent Items, or the shared mailbox's)."""
    facts = finding.facts
    if not _copy(db, finding_id, facts.mailbox, facts.graph_id, run_id, found_at):
        return
    if facts.mailbox != facts.sender or stored_in == facts.sender:
        return
    db.table("findings").update(
        finding_id,
        {
            "mailbox": facts.mailbox,
            "graph_id": facts.graph_id,
            "sender_department": facts.department,
            "sender_job_title": facts.job_title,
            **judgement_row(finding),
        },
    )


def copies_of(db: Database, finding_id: int) -> list[str]:
    """The mailboxes holding a copy of the finding's message, its own mailbox first."""
    return [
        r["mailbox"]
        for r in db.query(
            "select c.mailbox from finding_copies c join findings f on f.id = c.finding_id "
            "where c.finding_id = ? order by c.mailbox != f.mailbox, c.found_at, c.mailbox",
            [finding_id],
        )
    ]


def _finding_row(finding: Finding, run_id: int, found_at: str) -> dict[str, Any]:
    facts = finding.facts
    return {
        "mailbox": facts.mailbox,
        "message_key": facts.message_key,
        "graph_id": facts.graph_id,
        "internet_message_id": facts.internet_message_id,
        "conversation_id": facts.conversation_id,
        "sent_at": facts.sent_at,
        "subject": facts.subject,
        "subject_key": normalise_subject(facts.subject),
        "sender": facts.sender,
        "sent_by": facts.sent_by,
        "to_count": facts.to_count,
        "cc_count": facts.cc_count,
        "bcc_count": facts.bcc_count,
        "sender_department": facts.department,
        "sender_job_title": facts.job_title,
        "run_id": run_id,
        "found_at": found_at,
        **judgement_row(finding),
    }


def judgement_row(finding: Finding) -> dict[str, Any]:
    """The columns that depend on the rules, which ``reclassify`` rewrites."""
    return {
        "visible_external_count": finding.visible_external_count,
        "external_domains": orjson.dumps(list(finding.external_domains)).decode(),
        "bcc_used": int(finding.facts.bcc_used),
        "severity": finding.severity,
        "severity_reason": finding.severity_reason,
        "suppressed_by": finding.suppressed_by,
        "qualifies": 1,
    }


def save_tenant_domains(db: Database, verified: Iterable[str]) -> None:
    """Remember the verified domains last seen, for judging again without Graph."""
    now = utc_now()
    with transaction(db):
        db.execute("update tenant_domains set verified = 0")
        db.table("tenant_domains").upsert_all(
            ({"domain": d, "verified": 1, "seen_at": now} for d in verified), pk="domain"
        )


def verified_domains(db: Database) -> list[str]:
    return [r["domain"] for r in db.query("select domain from tenant_domains where verified = 1")]


def list_findings(
    db: Database, since: str | None = None, *, include_suppressed: bool = True
) -> list[dict[str, Any]]:
    """Qualifying findings sent at or after ``since`` (ISO UTC), oldest first, public shape."""
    sql = "select * from findings where qualifies = 1"
    params: list[Any] = []
    if since:
        sql += " and sent_at >= ?"
        params.append(since)
    if not include_suppressed:
        sql += " and suppressed_by is null"
    sql += " order by sent_at, mailbox, id"
    return [
        {
            "id": row["id"],
            "incident_id": row["incident_id"],
            "mailbox": row["mailbox"],
            "mailboxes": copies_of(db, row["id"]),
            "internet_message_id": row["internet_message_id"],
            "sent_at": row["sent_at"],
            "subject": row["subject"],
            "sender": row["sender"],
            "sent_by": row["sent_by"],
            "to_count": row["to_count"],
            "cc_count": row["cc_count"],
            "bcc_count": row["bcc_count"],
            "visible_external_count": row["visible_external_count"],
            "external_domains": orjson.loads(row["external_domains"]),
            "bcc_used": bool(row["bcc_used"]),
            "severity": row["severity"],
            "severity_reason": row["severity_reason"],
            "suppressed_by": row["suppressed_by"],
            "found_at": row["found_at"],
        }
        for row in db.query(sql, params)
    ]


def exposed_addresses(db: Database, finding_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "select address, domain, name, field from finding_addresses "
            "where finding_id = ? and external = 1 order by address",
            [finding_id],
        )
    )


def stored_facts(db: Database) -> Iterator[tuple[int, Facts, str]]:
    """Every stored finding's facts, with all its visible recipients, for judging again.

    Findings of incidents whose addresses were purged are left as they were judged.
    """
    for row in db.query(
        "select * from findings where incident_id is null or incident_id not in "
        "(select id from incidents where purged_at is not null) order by id"
    ):
        recipients = tuple(
            Recipient(r["address"], r["domain"], r["name"], r["field"])
            for r in db.query(
                "select * from finding_addresses where finding_id = ? order by rowid",
                [row["id"]],
            )
        )
        yield (
            row["id"],
            Facts(
                mailbox=row["mailbox"],
                message_key=row["message_key"],
                graph_id=row["graph_id"] or "",
                internet_message_id=row["internet_message_id"],
                conversation_id=row["conversation_id"],
                sent_at=row["sent_at"],
                subject=row["subject"] or "",
                sender=row["sender"],
                to_count=row["to_count"],
                cc_count=row["cc_count"],
                bcc_count=row["bcc_count"],
                recipients=recipients,
                department=row["sender_department"],
                job_title=row["sender_job_title"],
                sent_by=row["sent_by"],
            ),
            row["source"],
        )


def update_judgement(
    db: Database, finding_id: int, finding: Finding | None, external: Iterable[str]
) -> dict[str, Any]:
    """Write a new judgement of a stored finding; None marks it as no longer qualifying.

    ``external`` are the addresses now external, whether or not the finding qualifies.
    Returns the row as it was before, for the caller to count what changed.
    """
    before = dict(db.table("findings").get(finding_id))
    changes = judgement_row(finding) if finding is not None else {"qualifies": 0}
    db.table("findings").update(finding_id, changes)
    now_external = list(external)
    db.execute("update finding_addresses set external = 0 where finding_id = ?", [finding_id])
    db.execute(
        "update finding_addresses set external = 1 "
        "where finding_id = ? and address in (select value from json_each(?))",
        [finding_id, orjson.dumps(now_external).decode()],
    )
    return before
