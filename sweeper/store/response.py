"""What an incident response reads: the people to notify (Article 34), the facts of the
breach worksheet (Article 33) and of ``incident show``. Rendering them is
:mod:`sweeper.present.response`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from sweeper.addresses import DisplayName
from sweeper.errors import PurgedError
from sweeper.rules import breach
from sweeper.rules.breach import Circumstance
from sweeper.rules.clock import AwarenessClock
from sweeper.rules.severity import SeverityRule, reveals_name, whole_words
from sweeper.store.audit import Access, accesses
from sweeper.store.findings import copies_of, verified_domains
from sweeper.store.triage import history, incident


def _messages_by_address(db: Database, incident_id: int) -> dict[str, dict[str, Any]]:
    rows = db.query(
        "select a.address, a.name, a.field, f.message_key, f.internet_message_id, f.sent_at "
        "from finding_addresses a join findings f on f.id = a.finding_id "
        "where f.incident_id = ? and f.qualifies = 1 and a.external = 1 "
        "order by f.sent_at, a.address",
        [incident_id],
    )
    people: dict[str, dict[str, Any]] = {}
    for row in rows:
        person = people.setdefault(
            row["address"],
            {"address": row["address"], "name": None, "fields": [], "ids": [], "first": None},
        )
        person["name"] = person["name"] or row["name"]
        if row["field"] not in person["fields"]:
            person["fields"].append(row["field"])
        message = row["internet_message_id"] or row["message_key"]
        if message not in person["ids"]:
            person["ids"].append(message)
        person["first"] = person["first"] or row["sent_at"]
    return people


def people_to_notify(db: Database, incident_id: int) -> list[dict[str, Any]]:
    """Each exposed address once, with its name, where it was visible and in which messages."""
    row = incident(db, incident_id)
    if row["purged_at"]:
        raise PurgedError(
            f"the addresses of incident {incident_id} were removed on {row['purged_at'][:10]} "
            "under the retention period; its counts and history remain"
        )
    return [
        {
            "address": p["address"],
            "name": DisplayName.of(p["name"]),  # masked wherever the address is
            "field": ",".join(sorted(p["fields"], key=("to", "cc").index)),
            "messages": len(p["ids"]),
            "message_ids": p["ids"],
            "first_sent_at": p["first"],
        }
        for p in sorted(_messages_by_address(db, incident_id).values(), key=lambda p: p["address"])
    ]


@dataclass(frozen=True)
class Worksheet:
    """The facts of the breach report (Article 33(3), the ICO's form), with sweeper's drafts
    of what needs judgement (:mod:`sweeper.rules.breach`)."""

    incident: dict[str, Any]
    messages: list[dict[str, Any]]
    history: list[dict[str, Any]]
    people: int  # unique external addresses shown
    records: int  # external addresses shown, counted per message
    named: int | None  # None once the addresses are purged
    internal_shown: int | None  # the organisation's own recipients shown with them
    personal: int  # personal (free-mail) addresses among the people
    sensitive_terms: list[str]
    function: str | None  # what makes the sender a sensitive function, if anything
    circumstances: list[Circumstance]
    people_types: list[str]
    consequences: list[str]
    found_by: str  # how sweeper found it: its sweep, or a lookup after a report
    unread_mailboxes: int  # mailboxes sweeper could not read at its last attempt
    clock: AwarenessClock
    standing: str  # where the incident stands against the clock when the sheet was made
    notified_at: str | None  # the first triage step to ``notified`` (Article 34)
    internal: tuple[str, ...] = ()  # the tenant's verified domains: addresses shown whole
    accesses: tuple[Access, ...] = ()  # who revealed, downloaded or triaged in the console

    @property
    def at_most(self) -> int | None:
        """The most people who may be affected: every address shown, the organisation's
        own included."""
        return None if self.internal_shown is None else self.people + self.internal_shown


def _first_step(history: list[dict[str, Any]], status: str) -> str | None:
    return next((h["at"] for h in history if h["to_status"] == status), None)


def _people_shown(db: Database, incident_id: int) -> tuple[int, int]:
    """The incident's external people whose address reveals a name, and the internal
    addresses its messages showed too (none once its addresses are purged)."""
    people = _messages_by_address(db, incident_id).values()
    named = sum(1 for p in people if reveals_name(p["address"], p["name"]))
    internal_shown = db.execute(
        "select count(distinct a.address) from finding_addresses a join findings f "
        "on f.id = a.finding_id where f.incident_id = ? and f.qualifies = 1 "
        "and a.external = 0",
        [incident_id],
    ).fetchone()[0]
    return named, int(internal_shown)


def worksheet(db: Database, incident_id: int, rule: SeverityRule, *, now: datetime) -> Worksheet:
    row = incident(db, incident_id)
    messages = list(
        db.query(
            "select id, mailbox, sender, sent_by, subject, sent_at, internet_message_id, "
            "to_count, cc_count, bcc_count, visible_external_count, source, found_at, "
            "sender_department, sender_job_title from findings "
            "where incident_id = ? and qualifies = 1 order by sent_at",
            [incident_id],
        )
    )
    for m in messages:  # every mailbox storing a copy (sent as a shared mailbox)
        m["mailboxes"] = copies_of(db, m["id"])
    named, internal_shown = _people_shown(db, incident_id) if not row["purged_at"] else (None, None)
    functions = (
        rule.sensitive_function(m["sender"], m["sender_department"], m["sender_job_title"])
        for m in messages
    )
    function = next((f for f in functions if f), None)
    subjects = sorted({m["subject"] or "" for m in messages})
    terms = rule.reveals(*subjects)
    categories = [h.term.category for s in subjects for h in rule.lexicon.hits(s)]
    own = [
        t
        for t in dict.fromkeys((*rule.sensitive_terms, *rule.sensitive_departments))
        if any(whole_words(t, s) for s in subjects)
    ]
    found = breach.circumstances(own, function, dict.fromkeys(categories))
    unique = row["unique_exposed"] or 0
    personal = round((row["personal_share"] or 0) * unique)
    steps = history(db, incident_id)
    clock = AwarenessClock(
        row["detected_at"], row["confirmed_at"], _first_step(steps, "reported_to_authority")
    )
    first = min(messages, key=lambda m: m["found_at"] or "", default=None)
    return Worksheet(
        incident=row,
        messages=messages,
        history=steps,
        people=unique,
        records=sum(m["visible_external_count"] for m in messages),
        named=named if named is not None else row["named_addresses"],
        internal_shown=internal_shown,
        personal=personal,
        sensitive_terms=terms,
        function=function,
        circumstances=found,
        people_types=breach.people_types(found, function),
        consequences=breach.consequences(
            people=unique,
            named=named if named is not None else row["named_addresses"],
            personal=personal,
            found=found,
            function=function,
            severity=row["severity"],
        ),
        found_by=(
            "a lookup of the reported message (sweeper lookup)"
            if first and first["source"] == "lookup"
            else "sweeper's scheduled sweep of the Sent Items"
        ),
        unread_mailboxes=db.execute(
            "select count(*) from mailboxes where last_status = 'failed'"
        ).fetchone()[0],
        clock=clock,
        standing=clock.standing(now, row["status"]),
        notified_at=_first_step(steps, "notified"),
        internal=tuple(verified_domains(db)),
        accesses=tuple(accesses(db, incident_id)),
    )


@dataclass(frozen=True)
class IncidentView:
    """What ``incident show`` prints: the incident, samples, messages, history."""

    incident: dict[str, Any]
    samples: list[str]  # up to three exposed addresses, in full: the caller masks them
    messages: list[dict[str, Any]]
    history: list[dict[str, Any]]
    internal: tuple[str, ...]  # the tenant's verified domains


def incident_view(db: Database, incident_id: int) -> IncidentView:
    row = incident(db, incident_id)
    samples = (
        []
        if row["purged_at"]
        else [
            r["address"]
            for r in db.query(
                "select distinct a.address from finding_addresses a join findings f "
                "on f.id = a.finding_id where f.incident_id = ? and a.external = 1 "
                "order by a.address limit 3",
                [incident_id],
            )
        ]
    )
    messages = list(
        db.query(
            "select id, sent_at, mailbox, sent_by, visible_external_count, source, "
            "internet_message_id from findings where incident_id = ? and qualifies = 1 "
            "order by sent_at",
            [incident_id],
        )
    )
    for m in messages:
        m["mailboxes"] = copies_of(db, m["id"])
    return IncidentView(
        row, samples, messages, history(db, incident_id), tuple(verified_domains(db))
    )
