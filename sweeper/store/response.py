"""What an incident response reads: the people to notify (Article 34), the facts of the
breach worksheet (Article 33) and of ``incident show``. Rendering them is
:mod:`sweeper.present.response`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from sweeper.errors import PurgedError
from sweeper.rules.digest import ARTICLE_33_HOURS
from sweeper.rules.severity import SeverityRule, reveals_name
from sweeper.store import db as store
from sweeper.store.triage import history, incident
from sweeper.when import iso


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
            "name": p["name"],
            "field": ",".join(sorted(p["fields"], key=("to", "cc").index)),
            "messages": len(p["ids"]),
            "message_ids": p["ids"],
            "first_sent_at": p["first"],
        }
        for p in sorted(_messages_by_address(db, incident_id).values(), key=lambda p: p["address"])
    ]


@dataclass(frozen=True)
class Worksheet:
    incident: dict[str, Any]
    messages: list[dict[str, Any]]
    history: list[dict[str, Any]]
    people: int
    records: int
    named: int | None
    sensitive_terms: list[str]
    deadline: str
    hours: int = ARTICLE_33_HOURS
    internal: tuple[str, ...] = ()  # the tenant's verified domains: addresses shown whole


def worksheet(db: Database, incident_id: int, rule: SeverityRule) -> Worksheet:
    row = incident(db, incident_id)
    messages = list(
        db.query(
            "select mailbox, sender, subject, sent_at, internet_message_id, to_count, cc_count, "
            "bcc_count, visible_external_count, source from findings "
            "where incident_id = ? and qualifies = 1 order by sent_at",
            [incident_id],
        )
    )
    named: int | None = None
    if not row["purged_at"]:
        people = _messages_by_address(db, incident_id).values()
        named = sum(1 for p in people if reveals_name(p["address"], p["name"]))
    detected = datetime.fromisoformat(row["created_at"])
    deadline = detected.timestamp() + ARTICLE_33_HOURS * 3600
    return Worksheet(
        incident=row,
        messages=messages,
        history=history(db, incident_id),
        people=row["unique_exposed"] or 0,
        records=sum(m["visible_external_count"] for m in messages),
        named=named if named is not None else row["named_addresses"],
        sensitive_terms=rule.sensitive_in(" ".join({m["subject"] or "" for m in messages})),
        deadline=iso(datetime.fromtimestamp(deadline, detected.tzinfo)),
        internal=tuple(store.verified_domains(db)),
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
            "select sent_at, mailbox, visible_external_count, source, internet_message_id "
            "from findings where incident_id = ? and qualifies = 1 order by sent_at",
            [incident_id],
        )
    )
    return IncidentView(
        row, samples, messages, history(db, incident_id), tuple(store.verified_domains(db))
    )
