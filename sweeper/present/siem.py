"""The records sweeper sends to Microsoft Sentinel: one table, one row shape per ``Kind``.

All four kinds go to one custom table (``SweeperEvents_CL``, declared in
``deploy/sentinel/SweeperEvents_CL.json``) through one stream, a ``Kind`` column telling them
apart: ``Run``, ``MailboxFailure``, ``Finding`` and ``Incident``. One table means one data
collection rule stream, one transformation and one role assignment to set up, and a query
joins a run to its failures, a finding to its incident, without a union. Each record
carries only its own kind's columns; Log Analytics leaves the others empty.

Outside addresses are masked (``j***@gmail.com``) in ``Addresses`` and in subjects unless
``full_addresses``; the organisation's own mailboxes stay readable. Moments are sweeper's
UTC strings, which Log Analytics reads as ``datetime``.

Every text field is at most :data:`FIELD_LIMIT` characters (:func:`bounded`): a longer one
(a subject written by a stranger can be a megabyte) is cut short at a word's end, ends in
``…``, and is named in the record's ``Truncated`` list, so that one record never outgrows
an upload. A subject is cut before it is masked, so that masking reads a bounded text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from sweeper.addresses import mask_address
from sweeper.present.escape import mask_addresses
from sweeper.rules.clock import AwarenessClock

Record = dict[str, Any]
KINDS = ("Run", "MailboxFailure", "Finding", "Incident")
MAX_ADDRESSES = 1000  # per finding: a record stays far below the 1 MB of one upload
FIELD_LIMIT = 8192  # characters of one text field: a string column holds 32 KB at most
ELLIPSIS = "…"
# Where a cut text may end: never inside a word, where it could end half an address
# (``john.smith@exam``) that masking would no longer recognise.
_BOUNDARIES = frozenset(" \t\r\n,;:<>()[]\"'")


def run_record(row: dict[str, Any]) -> tuple[str, Record]:
    """A settled run's summary, keyed by its id."""
    item = str(row["id"])
    record = {
        "TimeGenerated": row["finished_at"] or row["started_at"],
        "Kind": "Run",
        "EventId": f"Run:{item}",
        "RunId": row["id"],
        "LogRunId": row["log_run_id"],
        "RunStatus": row["status"],
        "StartedAt": row["started_at"],
        "FinishedAt": row["finished_at"],
        "WindowSince": row["since"],
        "WindowUntil": row["until"],
        "Targeted": row["mailbox_filter"] is not None,
        "MailboxesTotal": row["mailboxes_total"],
        "Swept": row["swept"],
        "SweptDisabled": row["swept_disabled"],
        "Skipped": row["skipped"],
        "Excluded": row["excluded"],
        "Failed": row["failed"],
        "Throttled": row["throttled"],
        "MessagesRead": row["messages_read"],
        "Malformed": row["malformed"],
        "FindingsNew": row["findings_new"],
        "IncidentsTouched": row["incidents_touched"],
        "Error": row["error"],
    }
    return item, bounded(record)


def failure_record(row: dict[str, Any]) -> tuple[str, Record]:
    """One mailbox that could not be read in a run, keyed ``run_id:mailbox``."""
    item = f"{row['run_id']}:{row['mailbox']}"
    record = {
        "TimeGenerated": row["run_finished_at"] or row["run_started_at"],
        "Kind": "MailboxFailure",
        "EventId": f"MailboxFailure:{item}",
        "RunId": row["run_id"],
        "Mailbox": row["mailbox"],
        "MailboxEnabled": bool(row["enabled"]),
        "WindowSince": row["window_since"],
        "Error": row["error"],
    }
    return item, bounded(record)


def finding_record(
    row: dict[str, Any], internal: Iterable[str], *, full_addresses: bool
) -> tuple[str, Record]:
    """A finding as it was found, keyed by its id; ``row`` carries ``addresses`` (sorted)
    and ``mailboxes`` (:func:`sweeper.store.siem.pending_findings`)."""
    item = str(row["id"])
    addresses = list(row["addresses"])
    shown = addresses[:MAX_ADDRESSES]
    record = {
        "TimeGenerated": row["found_at"],
        "Kind": "Finding",
        "EventId": f"Finding:{item}",
        "RunId": row["run_id"],
        "FindingId": row["id"],
        "IncidentId": row["incident_id"],
        "Mailbox": row["mailbox"],
        "Mailboxes": list(row["mailboxes"]),
        "Sender": row["sender"],
        "SentBy": row["sent_by"],
        "Subject": _subject(row["subject"], internal, full_addresses),
        "SentAt": row["sent_at"],
        "InternetMessageId": row["internet_message_id"],
        "ToCount": row["to_count"],
        "CcCount": row["cc_count"],
        "BccCount": row["bcc_count"],
        "BccUsed": bool(row["bcc_used"]),
        "VisibleExternal": row["visible_external_count"],
        "Severity": row["severity"],
        "SeverityReason": row["severity_reason"],
        "SuppressedBy": row["suppressed_by"],
        "Source": row["source"],
        "Domains": orjson.loads(row["external_domains"] or "[]"),
        "Addresses": shown if full_addresses else [mask_address(a) for a in shown],
        "AddressesOmitted": len(addresses) - len(shown),
        "AddressesMasked": not full_addresses,
    }
    return item, bounded(record, _cut_before(row["subject"]))


def incident_record(
    row: dict[str, Any], internal: Iterable[str], *, full_addresses: bool, now: str
) -> tuple[str, Record]:
    """An incident as it stands ``now``, keyed by its id; ``row`` carries ``top_domains`` and
    ``mailboxes`` (:func:`sweeper.store.siem.incidents`). ``TimeGenerated`` is ``now``: each
    version sent is a later row, so ``arg_max(TimeGenerated, *)`` is the incident today."""
    item = str(row["id"])
    detected = row["detected_at"] or row["created_at"]
    clock = AwarenessClock(detected, row["confirmed_at"])
    record = {
        "TimeGenerated": now,
        "Kind": "Incident",
        "EventId": f"Incident:{item}",  # made whole by identified()
        "IncidentId": row["id"],
        "Status": row["status"],
        "Severity": row["severity"],
        "SeverityReason": row["reason"],
        "Sender": row["sender"],
        "SentBy": row["sent_by"],
        "Subject": _subject(row["subject"], internal, full_addresses),
        "Mailboxes": list(row["mailboxes"]),
        "Messages": row["messages"],
        "UniqueExposed": row["unique_exposed"],
        "LargestBatch": row["largest_batch"],
        "DomainCount": row["domains"],
        "Domains": list(row["top_domains"]),
        "PersonalShare": row["personal_share"],
        "NamedAddresses": row["named_addresses"],
        "FirstSentAt": row["first_sent_at"],
        "LastSentAt": row["last_sent_at"],
        "DetectedAt": detected,
        "ConfirmedAt": row["confirmed_at"],
        "Deadline": clock.conservative_deadline,
        "DeadlineFromConfirmation": clock.confirmed_deadline,
        "UpdatedAt": row["updated_at"],
        "Active": bool(row["active"]),
        "Suppressed": bool(row["suppressed"]),
        "MergedInto": row["merged_into"],
        "PurgedAt": row["purged_at"],
        "AddressesMasked": not full_addresses,
    }
    return item, bounded(record, _cut_before(row["subject"]))


UNVERSIONED = ("TimeGenerated", "EventId", "UpdatedAt")  # not what a version says


def fingerprint(record: Record) -> str:
    """What a version of a record says, as a short digest: not when it was sent, nor when
    sweeper last recomputed it (``reclassify`` recomputes every incident)."""
    content = {k: v for k, v in record.items() if k not in UNVERSIONED}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def identified(record: Record, installation: str, after: str | None = None) -> Record:
    """The record with an ``EventId`` that only this record can have: ``Kind``, the
    database's random installation token, the item, and a digest of what the record says
    (an incident's version) and, for an incident, of the ``EventId`` the version before it
    went under (``after``): a chain, so no two versions share one. A record sent again has
    the same one, so ``take_any(*) by EventId`` drops the repeat; a second installation
    writing to the same workspace, a restored database numbering its runs and findings
    again, or an incident back to what an earlier version said (acknowledged, notified,
    acknowledged again), never has another record's."""
    kind, _, item = record["EventId"].partition(":")
    version = fingerprint(record)
    if after is not None:
        version = hashlib.sha256(f"{version}|{after}".encode()).hexdigest()[:16]
    return {**record, "EventId": f"{kind}:{installation}:{item}:{version}"}


def bounded(record: Record, cut_already: Iterable[str] = ()) -> Record:
    """The record with every text field at most :data:`FIELD_LIMIT` characters, and the
    fields cut short (those cut before, ``cut_already``, too) named in ``Truncated``."""
    cut = list(cut_already)
    fitted = dict(record)
    for name, value in record.items():
        if isinstance(value, str) and len(value) > FIELD_LIMIT:
            fitted[name] = cut_short(value)
            cut.append(name)
    if cut:
        fitted["Truncated"] = sorted(set(cut))
    return fitted


def cut_short(text: str, limit: int = FIELD_LIMIT) -> str:
    """``text`` if it has at most ``limit`` characters; else its start up to the last word
    boundary that fits, and ``…``. Linear in ``limit``, whatever the length of ``text``."""
    if len(text) <= limit:
        return text
    head = text[: limit - len(ELLIPSIS)]
    if text[len(head)] not in _BOUNDARIES:  # the cut falls inside a word: drop that word
        end = len(head)
        while end > 0 and head[end - 1] not in _BOUNDARIES:
            end -= 1
        head = head[:end]
    return head.rstrip() + ELLIPSIS


def _cut_before(subject: str | None) -> tuple[str, ...]:
    """``("Subject",)`` when :func:`_subject` cut the subject short."""
    return ("Subject",) if subject is not None and len(subject) > FIELD_LIMIT else ()


def _subject(subject: str | None, internal: Iterable[str], full_addresses: bool) -> str | None:
    if subject is None:
        return None
    short = cut_short(subject)  # before masking: what is masked is bounded
    return short if full_addresses else mask_addresses(short, internal)
