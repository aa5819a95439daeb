"""``sweeper lookup``: from one reported message to every copy and every batch of it.

Given an ``Internet-Message-ID``, sweeper finds the message in every mailbox that holds it,
then every message with the same subject (``RE:``/``FW:`` set aside) sent within the
incident window around it, by anyone: the other batches, and the colleagues who resent it.
Given a subject and a window, it starts from the second step. Every match that shows at
least one external address is stored as a finding, whatever the threshold (it is part of a
reported breach), and all of them become one incident.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
from sqlite_utils import Database

from . import store
from .classify import Finding, judge, read_message
from .config import Settings
from .errors import GraphError, MailboxNotEnabled, NotFound, UsageError
from .graph.gateway import GraphGateway, User
from .incident_store import assign_incidents, refresh_incident
from .incidents import normalise_subject
from .sweep import policy_for
from .triage import record


@dataclass
class LookupReport:
    incident_id: int | None = None
    copies: int = 0
    mailboxes: set[str] = field(default_factory=set)
    exposed: int = 0
    without_external: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    since: datetime | None = None
    until: datetime | None = None

    def summary(self) -> str:
        text = (
            f"Found {self.copies} message(s) in {len(self.mailboxes)} mailbox(es), "
            f"{self.since:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M} UTC; "
            f"incident {self.incident_id}: {self.exposed} unique external addresses."
        )
        if self.without_external:
            text += f" {self.without_external} copies showed no external address."
        for mailbox, reason in sorted(self.failed.items()):
            text += f"\nNot searched, {mailbox}: {reason}"
        return text


async def lookup(
    db: Database,
    gateway: GraphGateway,
    settings: Settings,
    *,
    internet_message_id: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> LookupReport:
    domains = await gateway.verified_domains()
    store.save_tenant_domains(db, domains)
    users = await gateway.enabled_users()
    report = LookupReport()
    limit = asyncio.Semaphore(settings.concurrency)

    async def search(user: User, **query: Any) -> list[tuple[User, dict[str, Any]]]:
        async with limit:
            found: list[tuple[User, dict[str, Any]]] = []
            try:
                async for page in gateway.sent_pages(user, page_size=settings.page_size, **query):
                    found += [(user, m) for m in page if isinstance(m, dict)]
            except MailboxNotEnabled:
                pass  # no mailbox, nothing to find
            except GraphError as exc:
                report.failed[user.upn] = str(exc)
            return found

    if internet_message_id:
        copies = await _everywhere(
            search, users, since=None, until=None, internet_message_id=internet_message_id
        )
        if not copies:
            raise NotFound(f"no mailbox holds a message with the id {internet_message_id}")
        anchor = copies[0][1]
        subject = str(anchor.get("subject") or "")
        sent = datetime.fromisoformat(str(anchor["sentDateTime"]))
        since, until = sent - settings.incident_window, sent + settings.incident_window
    if subject is None or since is None or until is None:
        raise UsageError("lookup needs --internet-message-id, or --subject with --since")
    report.since, report.until = since, until
    key = normalise_subject(subject)
    candidates = await _everywhere(search, users, since=since, until=until)
    matches = [
        (u, m) for u, m in candidates if normalise_subject(str(m.get("subject") or "")) == key
    ]
    policy = replace(policy_for(settings, domains), min_visible_external=1)
    findings: list[Finding] = []
    for user, message in matches:
        finding = judge(read_message(user.upn, message), policy)
        if finding is None:
            report.without_external += 1
        else:
            findings.append(finding)
            report.mailboxes.add(user.upn)
    report.copies = len(matches)
    report.incident_id = _one_incident(db, settings, findings, internet_message_id or subject)
    if report.incident_id is not None:
        row = db.table("incidents").get(report.incident_id)
        report.exposed = row["unique_exposed"] or 0
    return report


async def _everywhere(search: Any, users: list[User], **query: Any) -> list[Any]:
    results = await asyncio.gather(*(search(user, **query) for user in users))
    found = [pair for result in results for pair in result]
    found.sort(key=lambda pair: str(pair[1].get("sentDateTime") or ""))
    return found


def _one_incident(
    db: Database, settings: Settings, findings: list[Finding], asked: str
) -> int | None:
    """Store the findings and put all of them in one incident (the oldest that has any)."""
    if not findings:
        return None
    run_id = store.start_run(db, "", "", ["lookup", asked])
    # Stored and marked as the lookup's in one transaction: a process killed half-way
    # leaves no findings stored but not marked.
    with store.transaction(db):
        store.save_findings(db, run_id, findings)
        ids = [
            db.execute(
                "select id from findings where mailbox = ? and message_key = ?",
                [f.facts.mailbox, f.facts.message_key],
            ).fetchone()[0]
            for f in findings
        ]
        listed = orjson.dumps(ids).decode()  # one parameter: the ids as a JSON array
        db.execute(
            "update findings set source = 'lookup' "
            "where id in (select value from json_each(?)) and run_id = ?",
            [listed, run_id],
        )
        db.execute(
            "update findings set qualifies = 1 where id in (select value from json_each(?))",
            [listed],
        )
    assign_incidents(db, settings.incident_window, settings.severity)
    with store.transaction(db):  # the incidents read are the ones merged, whoever else writes
        incidents = sorted(
            {
                r[0]
                for r in db.execute(
                    "select incident_id from findings where id in (select value from json_each(?))",
                    [listed],
                ).fetchall()
            }
        )
        target, others = int(incidents[0]), incidents[1:]
        db.execute(
            "update findings set incident_id = ? where id in (select value from json_each(?))",
            [target, listed],
        )
        for other in others:
            refresh_incident(db, other, settings.severity)
            db.table("incidents").update(other, {"merged_into": target})
        refresh_incident(db, target, settings.severity)
        status = db.table("incidents").get(target)["status"]
        record(
            db,
            target,
            by="sweeper lookup",
            from_status=status,
            to_status=status,
            note=f"lookup of {asked}: {len(ids)} message(s) in this incident"
            + (f"; merged incidents {', '.join(map(str, others))}" if others else ""),
        )
    store.finish_run(db, run_id, "ok", store.RunTotals(findings_new=len(ids)))
    return target
