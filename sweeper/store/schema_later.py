"""The schema's migrations from 0012 on, as they shipped: never edit one.

Each is applied once, in order, by :func:`sweeper.store.migrations.migrate`. A new one is
appended here (or, when this module grows long, in a module of its own after it).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlite_utils import Database


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


LATER_MIGRATIONS: list[tuple[str, Callable[[Database], None]]] = [
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
