"""Microsoft Sentinel: what sweeper knows, sent through Azure Monitor's Logs Ingestion API.

After each run (and with ``sweeper siem send``) every record Sentinel has not had is sent:
settled runs, the mailboxes that failed in them, their qualifying findings, and each
incident that is new or changed since it was last sent (its record's fingerprint differs).
A record is marked sent (:mod:`sweeper.store.siem`) as soon as the call that carried it was
accepted, before the next call goes: a record is sent once, and an incident once per version.
A process killed after Azure Monitor accepted a call and before the mark was written sends
that call's records again (the same ``EventId``): at least once in that moment, never lost.
An ``EventId`` carries the database's installation token and ends in a digest of what its
record says (:func:`~sweeper.present.siem.identified`), so that a record of a database
restored from a backup, which gives its ids out again, or of a second installation, is never
taken for a repeat of another.

A failing SIEM never fails the run: :func:`export_after_run` returns a
:class:`SiemOutcome` whose line says what went wrong, and what was not sent stays pending
for the next export. Each export is recorded (``siem_exports``), and one runs at a time.

The export after a run is outbound delivery like the run's alerts, and shares their time
budget (``alerts.budget_seconds``): it gets what the alerts left of it (all of it when no
alert channel is set), and the upload, its sign-in, retries and ``Retry-After`` waits
included, ends by then; what was not accepted waits for the next export, and the line says
the budget ran out. ``sweeper siem send``, run by hand, has no run budget: each read is
bounded by ``graph.timeout_seconds``, with at most three retries and no wait over 180 s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlite_utils import Database

from sweeper import store
from sweeper.errors import EXIT_OK, IngestionError, describe_failure
from sweeper.faultpoints import reached
from sweeper.graph.signin import make_credential
from sweeper.outbound.ingestion import CALL_BUDGET, Target, fits, record_bytes, upload
from sweeper.present.siem import (
    FIELD_LIMIT,
    KINDS,
    Record,
    failure_record,
    finding_record,
    fingerprint,
    identified,
    incident_record,
    run_record,
)
from sweeper.settings import Settings
from sweeper.store import siem as ledger
from sweeper.store.sending import installation as installation_token
from sweeper.when import iso

log = logging.getLogger(__name__)
NAMES = {"Run": "run", "MailboxFailure": "mailbox failure", "Finding": "finding"}


@dataclass
class SiemOutcome:
    """What an export did: records sent by kind, records left, and what went wrong."""

    enabled: bool = True
    sent: Counter[str] = field(default_factory=Counter)
    pending: int = 0  # records not sent, for the next export
    error: str | None = None
    exit_code: int = EXIT_OK
    truncated: int = 0  # records sent with a text field cut short
    set_aside: int = 0  # records too large to send even so: recorded, not sent
    out_of_time: bool = False  # the run's time for delivery ran out first

    @property
    def line(self) -> str:
        """One line for the terminal or the nightly log."""
        if not self.enabled:
            return "Sentinel: not configured (no siem.endpoint); nothing sent."
        sent = _counts(self.sent)
        if self.error is not None:
            waiting = "1 record waits" if self.pending == 1 else f"{self.pending} records wait"
            return (
                f"Sentinel: {self.error}; sent {sent or 'nothing'}, {waiting} for the next "
                f"export.{self._fitted}"
            )
        if sent:
            return f"Sentinel: sent {sent}.{self._fitted}"
        return f"Sentinel: nothing new to send.{self._fitted}"

    @property
    def _fitted(self) -> str:
        parts = []
        if self.truncated:
            parts.append(f"{self.truncated} sent with a text field cut short to fit")
        if self.set_aside:
            parts.append(f"{self.set_aside} set aside, too large to send even so")
        if not parts:
            return ""
        return f" Records: {'; '.join(parts)} (the digest's health lists them)."


@dataclass(frozen=True)
class _Pending:
    key: ledger.Key
    record: Record


def export_after_run(
    db: Database, settings: Settings, env: Mapping[str, str], *, budget: float | None = None
) -> SiemOutcome:
    """Send everything Sentinel has not had yet; never raises, and does nothing unless
    ``[siem]`` is configured. Call it after a run has finished (and its digest gone), with
    ``budget``: the seconds the run's alerts left of ``alerts.budget_seconds``; None (by
    hand) for no run budget."""
    if not settings.siem.enabled:
        return SiemOutcome(enabled=False)
    try:
        return asyncio.run(export(db, settings, env, budget=budget))
    except Exception as exc:  # noqa: BLE001 - the run's findings are stored whatever this does
        line, code = describe_failure(exc)
        log.debug("the Sentinel export failed", exc_info=exc)
        return SiemOutcome(error=line, exit_code=code)


async def export(
    db: Database, settings: Settings, env: Mapping[str, str], *, budget: float | None = None
) -> SiemOutcome:
    """The export itself, for a caller inside an event loop; raises AlreadyRunning while
    another export is under way, and nothing else of sweeper's (see :class:`SiemOutcome`).
    With ``budget``, every upload ends within that many seconds from now."""
    deadline = None if budget is None else time.monotonic() + max(0.0, budget)
    export_id = ledger.start_export(db)
    reached("siem-claimed")
    outcome = SiemOutcome(error="interrupted")
    pending: list[_Pending] = []
    try:
        pending = _fitting(db, _pending(db, settings, iso(datetime.now(UTC))), outcome)
        outcome.pending = len(pending)
        notes = {p.key: note for p in pending if (note := _cut_note(p.record))}

        def accepted(positions: list[int]) -> None:
            keys = [pending[i].key for i in positions]
            ids = {pending[i].key: pending[i].record["EventId"] for i in positions}
            ledger.mark_sent(db, keys, notes, ids)
            outcome.truncated += sum(1 for key in keys if key in notes)
            outcome.sent.update(kind for kind, _, _ in keys)
            outcome.pending -= len(keys)

        if pending:
            credential = make_credential(settings.sign_in, env)
            async with credential:
                await upload(
                    target_for(settings, deadline),
                    credential,
                    [p.record for p in pending],
                    accepted,
                )
        outcome.error = None
    except IngestionError as exc:
        outcome.error, outcome.exit_code = describe_failure(exc)
        if exc.out_of_time:
            outcome.out_of_time = True
            outcome.error = (
                f"this run's {settings.alerts.budget_seconds:g} s for delivery "
                f"(alerts.budget_seconds) ran out: {exc}"
            )
        log.debug("the Sentinel export stopped", exc_info=exc)
    except Exception as exc:  # noqa: BLE001 - one line and its exit code, recorded below
        outcome.error, outcome.exit_code = describe_failure(exc)
        log.debug("the Sentinel export stopped", exc_info=exc)
    finally:
        ledger.finish_export(
            db,
            export_id,
            sent=sum(outcome.sent.values()),
            pending=outcome.pending,
            error=outcome.error,
        )
    return outcome


def _pending(db: Database, settings: Settings, now: str) -> list[_Pending]:
    """Every record not sent yet: incidents new or changed first, then runs, failures,
    findings, each oldest first."""
    internal = [*store.verified_domains(db), *settings.own_domains]
    full = settings.siem.full_addresses
    token = installation_token(db)
    items: list[_Pending] = []
    for row in ledger.incidents(db):
        item, record = incident_record(row, internal, full_addresses=full, now=now)
        version = fingerprint(record)
        if version != row["sent_fingerprint"]:
            record = identified(record, token, after=row["sent_event_id"] or "")
            items.append(_Pending(("Incident", item, version), record))
    for item, record in map(run_record, ledger.pending_runs(db)):
        items.append(_Pending(("Run", item, ""), identified(record, token)))
    for item, record in map(failure_record, ledger.pending_failures(db)):
        items.append(_Pending(("MailboxFailure", item, ""), identified(record, token)))
    for row in ledger.pending_findings(db):
        item, record = finding_record(row, internal, full_addresses=full)
        items.append(_Pending(("Finding", item, ""), identified(record, token)))
    return items


def _fitting(db: Database, pending: list[_Pending], outcome: SiemOutcome) -> list[_Pending]:
    """The records that can be sent; each that cannot, even with its text fields cut short
    (:func:`~sweeper.present.siem.bounded`), is set aside: recorded with why, not sent, so
    that it never holds back the records after it."""
    sendable = []
    for item in pending:
        if fits(item.record):
            sendable.append(item)
            continue
        size = record_bytes(item.record)
        kind, key, _ = item.key
        ledger.set_aside(
            db,
            item.key,
            f"{size:,} bytes even with its text fields cut short, over the {CALL_BUDGET:,} "
            "one upload may carry",
            item.record["EventId"],
        )
        log.warning("the Sentinel record %s %s (%d bytes) was set aside", kind, key, size)
        outcome.set_aside += 1
    return sendable


def _cut_note(record: Record) -> str | None:
    fields = record.get("Truncated")
    if not fields:
        return None
    return f"sent with {', '.join(fields)} cut short to {FIELD_LIMIT:,} characters"


def target_for(settings: Settings, deadline: float | None = None) -> Target:
    """Where ``[siem]`` sends: endpoint, rule, stream, scope, the CA and timeout to use, and
    the ``time.monotonic()`` by which an upload ends (None: no run budget)."""
    siem = settings.siem
    return Target(
        endpoint=siem.endpoint or "",
        rule_id=siem.rule_id or "",
        stream=siem.stream,
        scope=siem.scope,
        ca_bundle=settings.ca_bundle,
        timeout=settings.timeout,
        max_answer_mb=settings.max_answer_mb,
        deadline=deadline,
    )


def _counts(sent: Counter[str]) -> str:
    parts = []
    for kind in KINDS:
        count = sent.get(kind, 0)
        if not count:
            continue
        if kind == "Incident":
            parts.append(f"{count} incident{'s' if count != 1 else ''} (new or changed)")
        else:
            parts.append(f"{count} {NAMES[kind]}{'s' if count != 1 else ''}")
    return ", ".join(parts)
