"""After a reported incident: the people to notify (Article 34) and the breach worksheet
the authority asks for (Article 33).

The people export is the list to notify: full addresses, made inert for spreadsheets only.
The worksheet and ``incident show`` are shared with a DPO or an authority: in them every
address outside the organisation's domains (the tenant's verified domains, recorded by the
sweep, plus ``own_domains``) is masked, as in the digest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from . import store
from .addresses import mask_address
from .digest.model import ARTICLE_33_HOURS
from .digest.render import render, when
from .errors import PurgedError
from .escape import internal_domains, mask_addresses, terminal
from .output import as_csv, as_json
from .severity import SeverityRule, reveals_name
from .triage import history, incident
from .when import iso

PEOPLE_COLUMNS = ("address", "name", "field", "messages", "message_ids", "first_sent_at")


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


def export_people(rows: list[dict[str, Any]], fmt: str) -> str:
    """The people to notify as JSON or CSV; not masked: it is the list to write to."""
    if fmt == "json":
        return as_json(rows)
    flat = [{**r, "message_ids": " ".join(r["message_ids"])} for r in rows]
    return as_csv(PEOPLE_COLUMNS, flat)


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


def render_worksheet(sheet: Worksheet, fmt: str, own_domains: Iterable[str] = ()) -> str:
    """The worksheet as Markdown (``md``) or HTML; addresses outside the organisation masked.

    The organisation is the sheet's verified domains plus ``own_domains`` (the setting).
    """
    return render(f"worksheet.{fmt}.j2", (*sheet.internal, *own_domains), w=sheet)


def describe(db: Database, incident_id: int, own_domains: Iterable[str] = ()) -> str:
    """``incident show``: figures, reason, messages and history, safe for a terminal.

    Samples are masked; so is any address outside the organisation (the verified domains
    in the database plus ``own_domains``) in a subject, a sender or a note. Message ids are
    shown whole, as ``sweeper lookup`` needs them.
    """
    internal = internal_domains((*store.verified_domains(db), *own_domains))

    def shown(text: str) -> str:
        return terminal(mask_addresses(text, internal))

    row = incident(db, incident_id)
    header = [
        f"Incident {row['id']} [{row['severity']}] {row['status']}"
        + (f", merged into {row['merged_into']}" if row["merged_into"] else "")
        + (", allowlisted" if row["suppressed"] else ""),
        f"  Subject:  {row['subject']}",
        f"  Sender:   {row['sender']}",
        f"  Sent:     {when(row['first_sent_at'])} to {when(row['last_sent_at'])}",
        f"  Detected: {when(row['created_at'])}",
        f"  Exposed:  {row['unique_exposed']} unique addresses in {row['messages']} messages "
        f"(largest batch {row['largest_batch']}); {round((row['personal_share'] or 0) * 100)}% "
        f"personal mail; {row['named_addresses']} reveal a name",
        f"  Why:      {row['reason']}",
    ]
    lines = [shown(line) for line in header]
    if row["purged_at"]:
        lines.append(f"  Addresses purged on {when(row['purged_at'])} (retention).")
    else:
        samples = [
            r["address"]
            for r in db.query(
                "select distinct a.address from finding_addresses a join findings f "
                "on f.id = a.finding_id where f.incident_id = ? and a.external = 1 "
                "order by a.address limit 3",
                [incident_id],
            )
        ]
        lines.append(shown(f"  Examples: {', '.join(mask_address(a) for a in samples)}"))
    lines.append("  Messages:")
    for m in db.query(
        "select sent_at, mailbox, visible_external_count, source, internet_message_id "
        "from findings where incident_id = ? and qualifies = 1 order by sent_at",
        [incident_id],
    ):
        lines.append(
            shown(
                f"    {when(m['sent_at'])}  {m['mailbox']}  {m['visible_external_count']} "
                "external" + ("  (lookup)" if m["source"] == "lookup" else "")
            )
            + f"  {terminal(str(m['internet_message_id']))}"
        )
    lines.append("  History:")
    steps = history(db, incident_id)
    for h in steps:
        note = f": {h['note']}" if h["note"] else ""
        lines.append(
            shown(f"    {when(h['at'])}  {h['by']}  {h['from_status']} → {h['to_status']}{note}")
        )
    if not steps:
        lines.append("    (none yet)")
    return "\n".join(lines)
