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

from sqlite_utils import Database

from sweeper import store
from sweeper.errors import GraphError, MailboxNotEnabled, NotFound, UsageError
from sweeper.graph.answers import User
from sweeper.graph.gateway import GraphGateway
from sweeper.rules.classify import Finding, judge, read_message
from sweeper.rules.incidents import normalise_subject
from sweeper.rules.pages import value_of
from sweeper.settings import Settings
from sweeper.store.findings import save_lookup_findings
from sweeper.store.incidents import assign_incidents
from sweeper.store.merges import merge_into_one
from sweeper.store.triage import incident


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
    users = await gateway.users(include_disabled=settings.include_disabled)
    report = LookupReport()
    limit = asyncio.Semaphore(settings.concurrency)

    async def search(user: User, **query: Any) -> list[tuple[User, dict[str, Any]]]:
        async with limit:
            found: list[tuple[User, dict[str, Any]]] = []
            try:
                async for page in gateway.sent_pages(user, page_size=settings.page_size, **query):
                    messages = map(value_of, page)
                    found += [(user, m) for m in messages if isinstance(m, dict)]
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
    policy = replace(settings.policy(domains), min_visible_external=1)
    findings: list[Finding] = []
    for user, message in matches:
        facts = read_message(
            user.upn, message, department=user.department, job_title=user.job_title
        )
        finding = judge(facts, policy)
        if finding is None:
            report.without_external += 1
        else:
            findings.append(finding)
            report.mailboxes.add(user.upn)
    report.copies = len(matches)
    report.incident_id = _one_incident(db, settings, findings, internet_message_id or subject)
    if report.incident_id is not None:
        row = incident(db, report.incident_id)
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
    ids = save_lookup_findings(db, run_id, findings)
    assign_incidents(
        db, settings.incident_window, settings.severity, reexposure=settings.reexposure_window
    )
    target = merge_into_one(db, ids, settings.severity, f"lookup of {asked}")
    store.finish_run(db, run_id, "ok", store.RunTotals(findings_new=len(ids)))
    return target
