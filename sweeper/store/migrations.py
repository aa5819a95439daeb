"""Schema changes, in order. Each runs once, in a transaction, and is recorded by name.

Add a migration by appending a function to ``MIGRATIONS``; never edit one that has shipped.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from sqlite_utils import Database

from sweeper import __version__
from sweeper.errors import NewerDatabase, StorageError

Migration = Callable[[Database], None]


def _initial(db: Database) -> None:
    db.table("runs").create(
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "status": str,  # running | ok | partial | failed
            "since": str,
            "until": str,
            "mailbox_filter": str,  # JSON list of UPNs for a targeted sweep, else null
            "mailboxes_total": int,
            "swept": int,
            "skipped": int,
            "failed": int,
            "messages_read": int,
            "findings_new": int,
            "throttled": int,
            "malformed": int,  # page entries that were not message objects
            "error": str,
        },
        pk="id",
    )
    db.table("mailboxes").create(
        {
            "mailbox": str,  # UPN, lower case
            "user_id": str,
            "last_attempt_at": str,
            "last_success_at": str,
            "last_window_until": str,
            "last_status": str,  # swept | skipped | failed
            "last_error": str,
            "last_run_id": int,
        },
        pk="mailbox",
    )
    db.table("run_mailboxes").create(
        {
            "run_id": int,
            "mailbox": str,
            "status": str,
            "messages": int,
            "findings_new": int,
            "throttled": int,
            "malformed": int,
            "error": str,
        },
        pk=("run_id", "mailbox"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("findings").create(
        {
            "id": int,
            "mailbox": str,
            "message_key": str,  # internetMessageId, else the Graph id
            "graph_id": str,
            "internet_message_id": str,
            "conversation_id": str,
            "sent_at": str,
            "subject": str,
            "sender": str,
            "to_count": int,
            "cc_count": int,
            "bcc_count": int,
            "visible_external_count": int,
            "external_domains": str,  # JSON list, most addresses first
            "bcc_used": int,
            "severity": str,
            "run_id": int,
            "found_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("findings").create_index(["mailbox", "message_key"], unique=True)
    db.table("findings").create_index(["sent_at"])
    db.table("finding_addresses").create(
        {"finding_id": int, "address": str, "domain": str, "name": str, "field": str},
        pk=("finding_id", "address"),
        foreign_keys=[("finding_id", "findings", "id")],
    )


def _incidents(db: Database) -> None:
    findings = db.table("findings")
    findings.add_column("subject_key", str)  # normalised subject, for grouping
    findings.add_column("severity_reason", str)
    findings.add_column("suppressed_by", str)  # "rule name: reason" of the allowlist rule
    findings.add_column("qualifies", int, not_null_default=1)  # 0: below threshold now
    findings.add_column("incident_id", int)
    findings.create_index(["incident_id"])
    findings.create_index(["conversation_id"])
    findings.create_index(["internet_message_id"])
    # Every visible recipient of a finding, internal ones too, so that `reclassify` can
    # judge again when the organisation's domains change.
    db.table("finding_addresses").add_column("external", int, not_null_default=1)
    db.table("incidents").create(
        {
            "id": int,
            "sender": str,
            "subject": str,
            "subject_key": str,
            "first_sent_at": str,
            "last_sent_at": str,
            "messages": int,
            "unique_exposed": int,
            "largest_batch": int,
            "personal_share": float,
            "named_addresses": int,
            "domains": int,
            "severity": str,
            "reason": str,
            "suppressed": int,
            "active": int,  # 0 when none of its findings qualifies any more
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
    )
    db.table("incidents").create_index(["sender", "subject_key"])
    db.table("runs").add_column("incidents_touched", int)
    db.table("tenant_domains").create({"domain": str, "verified": int, "seen_at": str}, pk="domain")


def _digests(db: Database) -> None:
    db.table("digests").create(
        {
            "id": int,
            "created_at": str,
            "period_since": str,
            "period_until": str,
            "status": str,  # sent | failed | written (built, not sent)
            "transport": str,  # graph | smtp | none
            "verdict": str,
            "html_path": str,
            "sent_at": str,
            "error": str,
        },
        pk="id",
    )
    # What a sent digest reported, so that nothing is reported twice and nothing is lost:
    # incidents with their size at the time (a grown incident is reported as grown), and
    # runs that failed or were partial.
    db.table("digest_items").create(
        {"digest_id": int, "kind": str, "item_id": int, "unique_exposed": int},
        pk=("digest_id", "kind", "item_id"),
        foreign_keys=[("digest_id", "digests", "id")],
    )
    db.table("digest_items").create_index(["kind", "item_id"])


def _triage(db: Database) -> None:
    incidents = db.table("incidents")
    incidents.add_column("status", str, not_null_default="new")
    incidents.add_column("merged_into", int)  # a lookup joined it to another incident
    incidents.add_column("purged_at", str)  # exposed addresses removed (retention)
    db.table("findings").add_column("source", str, not_null_default="sweep")  # or lookup
    db.table("incident_history").create(
        {
            "id": int,
            "incident_id": int,
            "at": str,
            "by": str,
            "from_status": str,
            "to_status": str,
            "note": str,
        },
        pk="id",
        foreign_keys=[("incident_id", "incidents", "id")],
    )
    db.table("incident_history").create_index(["incident_id"])
    # Append-only: the history is the audit trail, so the database itself refuses changes.
    for action in ("update", "delete"):
        db.execute(
            f"create trigger incident_history_no_{action} before {action} on incident_history "
            "begin select raise(abort, 'incident history is append-only'); end"
        )


def _incremental(db: Database) -> None:
    # Each mailbox's own window in a run: incremental runs read from its high-water mark.
    db.table("run_mailboxes").add_column("window_since", str)


def _run_process(db: Database) -> None:
    # The process that runs a run, so that a run left "running" can be told apart from one
    # still going (sweeper.recovery): its pid, when that process started (a pid is reused
    # later by other processes), and the host, where alone the pid means anything.
    runs = db.table("runs")
    runs.add_column("pid", int)
    runs.add_column("pid_started", str)
    runs.add_column("host", str)


def _exports(db: Database) -> None:
    # Files of exposed people that `incident export` wrote, so that `purge` removes them
    # with the addresses in the database.
    db.table("exports").create(
        {
            "id": int,
            "incident_id": int,
            "path": str,  # absolute
            "written_at": str,
            "removed_at": str,  # when purge removed the file
            "purge_note": str,  # what purge found: removed, already gone, replaced, ...
        },
        pk="id",
        foreign_keys=[("incident_id", "incidents", "id")],
    )
    db.table("exports").create_index(["incident_id"])


def _sender_function(db: Database) -> None:
    # The sending mailbox's Entra department and job title, so that reclassify can judge
    # sensitive functions again without Graph (empty for findings stored before this).
    findings = db.table("findings")
    findings.add_column("sender_department", str)
    findings.add_column("sender_job_title", str)


def _rejudgements(db: Database) -> None:
    # Each reclassify, so that the next digest says how many severities it changed.
    db.table("rejudgements").create(
        {"id": int, "at": str, "findings": int, "severity_changed": int, "incidents_changed": int},
        pk="id",
    )


def _awareness(db: Database) -> None:
    # The two moments the Article 33 clock runs from: sweeper's detection and the triage
    # step that confirmed a breach. Incidents stored before this were detected when they
    # were created, and confirmed by their first step to a breach status, if any.
    incidents = db.table("incidents")
    incidents.add_column("detected_at", str)
    incidents.add_column("confirmed_at", str)
    db.execute("update incidents set detected_at = created_at")
    db.execute(
        "update incidents set confirmed_at = (select min(h.at) from incident_history h "
        "where h.incident_id = incidents.id "
        "and h.to_status in ('confirmed', 'notified', 'reported_to_authority'))"
    )


def _run_log_id(db: Database) -> None:
    # The run id on the run's log lines, so that a SIEM line and a runs row can be joined.
    db.table("runs").add_column("log_run_id", str)


def _disabled_accounts(db: Database) -> None:
    # Disabled accounts are swept too (shared mailboxes, leavers' kept mailboxes): each
    # mailbox of a run says whether its account was enabled, each run how many of the
    # mailboxes it swept were disabled accounts and how many sweep.exclude passed over.
    db.table("run_mailboxes").add_column("enabled", int, not_null_default=1)
    db.table("runs").add_column("swept_disabled", int)
    db.table("runs").add_column("excluded", int)


def _digest_exactly_once(db: Database) -> None:
    # A digest is written `sending` before it is delivered, with the Message-ID it goes
    # out with, what it is about to report (`plan`, JSON) and the process sending it, so
    # that a process killed after the mail was accepted can be told from one killed before
    # (sweeper.commands.digest). The Message-ID is made from the digest's id and this
    # database's installation token, created once here: two databases never share one.
    digests = db.table("digests")
    for column, kind in (
        ("internet_message_id", str),
        ("sender", str),
        ("save_to_sent_items", int),  # Graph kept a copy that can be looked for
        ("plan", str),
        ("pid", int),
        ("pid_started", str),
        ("host", str),
    ):
        digests.add_column(column, kind)
    db.table("meta").create({"key": str, "value": str}, pk="key")
    db.table("meta").insert({"key": "installation", "value": secrets.token_hex(8)})


def _one_finding_per_message(db: Database) -> None:
    # One message, one finding, wherever it is stored: mail sent as a shared mailbox can be
    # saved in the sender's Sent Items and in the shared mailbox's. Each finding lists the
    # mailboxes holding a copy; a finding's own mailbox is the first of them. Mail sent on
    # behalf of another address keeps the delegate (Graph's sender) beside the From address.
    copies = db.table("finding_copies")
    copies.create(
        {"finding_id": int, "mailbox": str, "graph_id": str, "run_id": int, "found_at": str},
        pk=("finding_id", "mailbox"),
        foreign_keys=[("finding_id", "findings", "id")],
    )
    copies.create_index(["mailbox"])
    db.execute(
        "insert into finding_copies (finding_id, mailbox, graph_id, run_id, found_at) "
        "select id, mailbox, graph_id, run_id, found_at from findings"
    )
    db.table("findings").create_index(["message_key"])
    db.table("findings").add_column("sent_by", str)
    db.table("incidents").add_column("sent_by", str)


def _alerts(db: Database) -> None:
    # Alerts at once, after any sweep: one row per incident, alert key and channel, written
    # after delivery was tried (sent, or failed with the reason and how many tries).
    alerts = db.table("alerts")
    alerts.create(
        {
            "id": int,
            "incident_id": int,  # 0: a test alert (sweeper alerts test)
            "key": str,
            "kind": str,
            "channel": str,
            "status": str,
            "tries": int,
            "severity": str,
            "unique_exposed": int,
            "error": str,
            "run_id": int,
            "created_at": str,
            "tried_at": str,
            "sent_at": str,
        },
        pk="id",
    )
    alerts.create_index(["incident_id", "key", "channel"], unique=True)


def _siem(db: Database) -> None:
    # What went to Microsoft Sentinel (sweeper.commands.siem), record by record, so that each
    # is sent once: a run, a mailbox's failure in a run, a finding, and each version of an
    # incident (its fingerprint: a digest of the record last sent for it).
    db.table("siem_sent").create(
        {"kind": str, "item": str, "fingerprint": str, "sent_at": str}, pk=("kind", "item")
    )
    # Each export, written before it starts with the process doing it, so that two never
    # send the same records at once, and finished with what it sent or why it stopped.
    db.table("siem_exports").create(
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "sent": int,
            "pending": int,  # records left for the next export
            "error": str,
            "pid": int,
            "pid_started": str,
            "host": str,
        },
        pk="id",
    )


def _console_audit(db: Database) -> None:
    # Every look at personal data in the console (sweeper.store.audit): reveals, downloads,
    # triage steps; who, from where, when. Append-only, as the triage history is: the
    # database itself refuses to change or remove a row.
    db.table("console_audit").create(
        {
            "id": int,
            "at": str,
            "who": str,
            "name": str,
            "source": str,
            "action": str,
            "incident_id": int,
            "detail": str,
        },
        pk="id",
        not_null={"at", "who", "source", "action"},
    )
    db.table("console_audit").create_index(["incident_id"])
    for action in ("update", "delete"):
        db.execute(
            f"create trigger console_audit_no_{action} before {action} on console_audit "
            "begin select raise(abort, 'the console audit trail is append-only'); end"
        )


def _delivery_claims(db: Database) -> None:
    # An alert's delivery is claimed before it is tried: the row is written `claimed`, with
    # the process trying it, in one transaction, so that two sweeps at once never both try
    # it (a claim whose process is gone is taken over). Each row also keeps the random part
    # of its webhook-id, made once when the alert is first claimed: the same on every retry
    # of that alert, never the same for another alert, another database or a restored one.
    alerts = db.table("alerts")
    for column, kind in (
        ("delivery_id", str),
        ("pid", int),
        ("pid_started", str),
        ("host", str),
        ("claimed_at", str),
    ):
        alerts.add_column(column, kind)
    db.execute("update alerts set delivery_id = lower(hex(randomblob(8)))")


def _attempt_nonces(db: Database) -> None:
    # Each digest sent carries a random nonce of its own, written with its `sending` row
    # before delivery and part of its Message-ID: a copy found in Sent Items is taken for
    # this digest's only when it carries this nonce, never a copy of a digest that had the
    # same id in a database since restored from a backup (sweeper.store.sending).
    db.table("digests").add_column("nonce", str)
    # A Sentinel record changed to fit an upload (a field cut short), or set aside because
    # it could not be made to fit, says so here, for the digest's health section; a record
    # set aside is not sent again (sweeper.commands.siem).
    db.table("siem_sent").add_column("note", str)


def _console_sessions(db: Database) -> None:
    # The console's sessions, kept on the server so that signing out ends one for good: the
    # cookie holds only a random id, whose SHA-256 is the key here (the id itself is never
    # stored). A session counts only while it is not revoked and not expired.
    db.table("console_sessions").create(
        {
            "id_hash": str,
            "who": str,
            "name": str,
            "role": str,
            "created_at": str,
            "expires_at": str,
            "revoked_at": str,
        },
        pk="id_hash",
        not_null={"who", "role", "created_at", "expires_at"},
    )
    db.table("console_sessions").create_index(["expires_at"])


def _merge_follows(db: Database) -> None:
    # Everything attached to an incident is read with the incidents merged into it
    # (sweeper.store.merges): found by merged_into, indexed. A merged-away incident names
    # its survivor directly: a chain left by earlier merges (b into a, then a into c) is
    # flattened, as each merge now does.
    db.table("incidents").create_index(["merged_into"])
    for _ in range(64):  # a survivor is always older than what it took in: no cycle
        flattened = db.execute(
            "update incidents set merged_into = (select p.merged_into from incidents p "
            "where p.id = incidents.merged_into) "
            "where merged_into in (select id from incidents where merged_into is not null)"
        )
        if not flattened.rowcount:
            break


def _siem_event_ids(db: Database) -> None:
    # The EventId each item was last sent (or set aside) under: an incident's next version
    # chains its own id to it, so that a version saying what an earlier one said (a status
    # back to an earlier one) is a new event for Sentinel, never a repeat of that one.
    db.table("siem_sent").add_column("event_id", str)


MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_initial", _initial),
    ("0002_incidents", _incidents),
    ("0003_digests", _digests),
    ("0004_triage", _triage),
    ("0005_incremental", _incremental),
    ("0006_run_process", _run_process),
    ("0007_exports", _exports),
    ("0008_sender_function", _sender_function),
    ("0009_rejudgements", _rejudgements),
    ("0010_awareness", _awareness),
    ("0011_run_log_id", _run_log_id),
    ("0012_disabled_accounts", _disabled_accounts),
    ("0013_digest_exactly_once", _digest_exactly_once),
    ("0014_one_finding_per_message", _one_finding_per_message),
    ("0015_alerts", _alerts),
    ("0016_siem", _siem),
    ("0017_console_audit", _console_audit),
    ("0018_delivery_claims", _delivery_claims),
    ("0019_attempt_nonces", _attempt_nonces),
    ("0020_console_sessions", _console_sessions),
    ("0021_merge_follows", _merge_follows),
    ("0022_siem_event_ids", _siem_event_ids),
]


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
    done = {row["name"] for row in db.table("migrations").rows}
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
    missing = [table for table in TABLES if not db.table(table).exists()]
    if missing:
        raise StorageError(
            f"the database is damaged or not sweeper's: table {missing[0]!r} is missing "
            "(restore it from a backup, or move it aside to start a new one)"
        )
    return applied
