"""The schema's first migrations, 0001 to 0011, as they shipped: never edit one.

Each is applied once, in order, by :func:`sweeper.store.migrations.migrate`.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database


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


EARLY_MIGRATIONS: list[tuple[str, Callable[[Database], None]]] = [
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
]
