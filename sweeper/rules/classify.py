"""Deciding which sent messages exposed outside addresses. Pure functions over plain data.

A message's *visible* recipients are To ∪ Cc, one entry per address compared without regard
to case. An address is *external* unless its domain is one of the tenant's verified domains,
a subdomain of one, or a domain the organisation declares its own. An address without ``@``
(missing, or an X500 legacy Exchange DN) is never external: sweeper cannot say who it is,
and such entries are internal in practice. A distribution list is one address like any other:
its members never see each other.

A message is a finding when it has at least ``min_visible_external`` unique visible external
addresses, or fewer that are still risky (the *floor*): ``detection.min_private_people`` (3)
private people (personal addresses that are not role mailboxes), or two private people and
a subject that reveals something about them or a sensitive function as the sender. Small
lists of work addresses stay silent. A finding then gets a severity with its reason
(:mod:`sweeper.rules.severity`) and, when an allowlist rule in force matches
(:mod:`sweeper.allow`), the name of that rule.

Reading a message (:func:`read_message`, no configuration involved) is kept apart from
judging it (:func:`judge`), so that ``sweeper reclassify`` can judge stored facts again
under new rules without asking Graph.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property, lru_cache, partial
from typing import Any, NamedTuple

from sweeper.addresses import normalise_domain, within
from sweeper.rules.allow import AllowRule, first_match
from sweeper.rules.audience import is_role
from sweeper.rules.severity import (
    DETECTION_THRESHOLD,
    PAIR,
    SeverityRule,
    exposure_of,
    grade,
    reveals_name,
)
from sweeper.when import iso

Message = Mapping[str, Any]
"""One message as Graph sends it (raw JSON object), with the fields sweeper selects."""

VERDICTS_KEPT = 16_384
"""Distinct raw addresses whose verdict a policy keeps (the most recently used): about
6 MiB at most, whatever the tenant's size (BENCHMARKS.md)."""
DOMAINS_KEPT = 4_096
"""Distinct hosts, and domains, whose canonical form and place (inside or out) are kept:
far fewer than addresses (every mail to one free-mail provider shares one)."""


class Verdict(NamedTuple):
    """What one raw address is under a policy, worked out once per distinct raw string."""

    address: str  # canonical, as parse_address gives it
    domain: str
    internal: bool


@dataclass(frozen=True)
class Policy:
    """Everything the judgement depends on: what is inside, the threshold, the rules."""

    internal_domains: frozenset[str]
    min_visible_external: int = DETECTION_THRESHOLD
    severity: SeverityRule = field(default_factory=SeverityRule)
    allow: tuple[AllowRule, ...] = ()
    today: date = field(default_factory=lambda: datetime.now(UTC).date())

    @classmethod
    def build(
        cls,
        domains: Iterable[str],
        min_visible_external: int = DETECTION_THRESHOLD,
        *,
        severity: SeverityRule | None = None,
        allow: Iterable[AllowRule] = (),
        today: date | None = None,
    ) -> Policy:
        clean = (normalise_domain(d) for d in domains)
        return cls(
            frozenset(d for d in clean if d),
            min_visible_external,
            severity or SeverityRule(),
            tuple(allow),
            today or datetime.now(UTC).date(),
        )

    def is_internal_domain(self, domain: str) -> bool:
        """True for an organisation domain or any subdomain of one (``mail.corp.example``)."""
        return within(domain, self.internal_domains)

    @cached_property
    def verdict(self) -> Callable[[str], Verdict | None]:
        """``raw address → Verdict``, or None when it is no internet address.

        Each distinct raw string is parsed and placed once for as long as this policy lives
        (one sweep run); the :data:`VERDICTS_KEPT` most recently used are kept, so memory
        stays flat on any tenant. The same canonical forms as :func:`parse_address`.
        """
        inside = lru_cache(maxsize=DOMAINS_KEPT)(partial(within, domains=self.internal_domains))
        return lru_cache(maxsize=VERDICTS_KEPT)(partial(_verdict, inside))


@dataclass(frozen=True, slots=True)
class Recipient:
    """One visible recipient with an internet address."""

    address: str
    domain: str
    name: str | None
    field: str  # "to" or "cc": where it first appeared


@dataclass(frozen=True, slots=True)
class Facts:
    """What a message says, before any judgement: enough to judge it again later."""

    mailbox: str
    message_key: str
    graph_id: str
    internet_message_id: str | None
    conversation_id: str | None
    sent_at: str | None
    subject: str
    sender: str | None
    to_count: int
    cc_count: int
    bcc_count: int
    recipients: tuple[Recipient, ...]  # unique visible recipients with an internet address
    department: str | None = None  # the sending mailbox's Entra department, if known
    job_title: str | None = None  # and its job title
    sent_by: str | None = None  # Graph's sender, where it differs from From (on behalf of)

    @property
    def bcc_used(self) -> bool:
        return self.bcc_count > 0


@dataclass(frozen=True, slots=True)
class Finding:
    """A sent message whose visible recipients include many external addresses."""

    facts: Facts
    exposed: tuple[Recipient, ...]
    external_domains: tuple[str, ...]
    severity: str
    severity_reason: str
    suppressed_by: str | None = None

    @property
    def visible_external_count(self) -> int:
        return len(self.exposed)


_SPACE = re.compile(r"\s")
"""Any character ``str.isspace`` calls whitespace: the same set (tests/test_classify.py)."""


def parse_address(raw: object) -> tuple[str, str] | None:
    """``(address, domain)`` in canonical form, or None when it is no internet address.

    None for anything without ``local@domain.tld``: a missing or non-string value, an X500
    DN, ``user@host`` with no dot in the host, an address with whitespace inside.
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip().strip("<>").strip()
    if text[:5].lower() == "smtp:":
        text = text[5:]
    local, at, host = text.rpartition("@")
    if not at or not local or not host or _SPACE.search(text) is not None:
        return None
    domain = _domain_of(host)
    if domain is None:
        return None
    return f"{local.lower()}@{domain}", domain


@lru_cache(maxsize=DOMAINS_KEPT)
def _domain_of(host: str) -> str | None:
    """The canonical domain of an address's host, or None when it cannot be one. Hosts
    repeat far more than addresses (every mail to gmail.com), so each is normalised once."""
    domain = normalise_domain(host)
    if "." not in domain or "/" in domain:
        return None
    return domain


def _verdict(inside: Callable[[str], bool], raw: str) -> Verdict | None:
    parsed = parse_address(raw)
    if parsed is None:
        return None
    address, domain = parsed
    # An address already in canonical form is kept once, as the cache's key and its value.
    return Verdict(raw if address == raw else address, domain, inside(domain))


def _recipients(message: Message, key: str) -> list[Any]:
    value = message.get(key)
    return value if isinstance(value, list) else []


def _email(entry: object) -> tuple[object, str | None]:
    """The raw address and display name of one recipient entry, tolerating odd shapes."""
    if not isinstance(entry, dict):
        return None, None
    inner = entry.get("emailAddress")
    if not isinstance(inner, dict):
        return None, None
    name = inner.get("name")
    return inner.get("address"), name if isinstance(name, str) and name.strip() else None


def visible_recipients(message: Message) -> list[Recipient]:
    """Unique To and Cc recipients with an internet address, in order (To first)."""
    seen: dict[str, Recipient] = {}
    for field_name, key in (("to", "toRecipients"), ("cc", "ccRecipients")):
        for entry in _recipients(message, key):
            raw, name = _email(entry)
            parsed = parse_address(raw)
            if parsed is None or parsed[0] in seen:
                continue
            seen[parsed[0]] = Recipient(parsed[0], parsed[1], name, field_name)
    return list(seen.values())


def visible_external(message: Message, policy: Policy) -> list[Recipient]:
    """Unique external addresses in To and Cc, in the order they appear (To first)."""
    return [r for r in visible_recipients(message) if not policy.is_internal_domain(r.domain)]


def sent_at_utc(value: object) -> str | None:
    """Graph's ``sentDateTime`` as ``YYYY-MM-DDTHH:MM:SSZ``, or None when absent or invalid."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso(moment.astimezone(UTC))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _sender(message: Message) -> str | None:
    """The From address (whose mail it is), else Graph's sender."""
    for key in ("from", "sender"):
        parsed = parse_address(_email(message.get(key))[0])
        if parsed:
            return parsed[0]
    return None


def _sent_by(message: Message, sender: str | None) -> str | None:
    """Who sent it, where that differs from whose it is: mail sent on behalf of a shared
    mailbox or a manager has the delegate as Graph's ``sender`` and the owner as ``from``."""
    parsed = parse_address(_email(message.get("sender"))[0])
    return parsed[0] if parsed and sender and parsed[0] != sender else None


def domains_by_count(exposed: Iterable[Recipient]) -> tuple[str, ...]:
    """External domains, the most addresses first, then by name."""
    counts = Counter(e.domain for e in exposed)
    return tuple(sorted(counts, key=lambda d: (-counts[d], d)))


def _content_key(sent_at: str | None, subject: str, recipients: Iterable[Recipient]) -> str:
    """A stable key for a message that came without any id, so a re-run cannot double it."""
    parts = [sent_at or "", subject, *sorted(r.address for r in recipients)]
    return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def read_message(
    mailbox: str,
    message: Message,
    recipients: list[Recipient] | None = None,
    *,
    department: str | None = None,
    job_title: str | None = None,
) -> Facts:
    """The facts of one raw Graph message. No configuration is involved."""
    recipients = visible_recipients(message) if recipients is None else recipients
    graph_id = _text(message.get("id")) or ""
    internet_id = _text(message.get("internetMessageId"))
    sent_at = sent_at_utc(message.get("sentDateTime"))
    subject = _text(message.get("subject")) or ""
    sender = _sender(message)
    return Facts(
        mailbox=mailbox,
        message_key=internet_id or graph_id or _content_key(sent_at, subject, recipients),
        graph_id=graph_id,
        internet_message_id=internet_id,
        conversation_id=_text(message.get("conversationId")),
        sent_at=sent_at,
        subject=subject,
        sender=sender,
        to_count=len(_recipients(message, "toRecipients")),
        cc_count=len(_recipients(message, "ccRecipients")),
        bcc_count=len(_recipients(message, "bccRecipients")),
        recipients=tuple(recipients),
        department=department,
        job_title=job_title,
        sent_by=_sent_by(message, sender),
    )


def private_people(exposed: Iterable[Recipient], rule: SeverityRule) -> int:
    """Exposed people at a personal (free-mail) domain, role mailboxes left out."""
    return sum(1 for r in exposed if rule.is_personal(r.domain) and not is_role(r.address))


def _risky_below_threshold(
    exposed: tuple[Recipient, ...], facts: Facts, rule: SeverityRule, function: str | None
) -> bool:
    """The floor: a list under the threshold that shows private people worth a look."""
    private = private_people(exposed, rule)
    if private >= rule.min_private_people:
        return True
    teams = (t for t in (facts.department, facts.job_title) if t)
    return private >= PAIR and bool(function or rule.reveals(facts.subject, *teams))


def judge(facts: Facts, policy: Policy) -> Finding | None:
    """The finding these facts make under ``policy``, or None: under the threshold and not
    risky enough for the floor."""
    exposed = tuple(r for r in facts.recipients if not policy.is_internal_domain(r.domain))
    if len(exposed) < min(policy.min_visible_external, PAIR):
        return None
    rule = policy.severity
    function = rule.sensitive_function(facts.sender, facts.department, facts.job_title)
    if len(exposed) < policy.min_visible_external and not _risky_below_threshold(
        exposed, facts, rule, function
    ):
        return None
    domains = domains_by_count(exposed)
    names = {r.address: reveals_name(r.address, r.name) for r in exposed}
    exposure = exposure_of(
        (r.address for r in exposed),
        facts.subject,
        facts.bcc_used,
        rule,
        function,
        names=names,
        teams=[t for t in (facts.department, facts.job_title) if t],
    )
    severity, reason = grade(exposure, policy.severity)
    allowed = first_match(
        policy.allow,
        sender=facts.sender,
        domains=domains,
        subject=facts.subject,
        today=policy.today,
    )
    suppressed = allowed.describe() if allowed else None
    return Finding(facts, exposed, domains, severity, reason, suppressed)


def classify(
    mailbox: str,
    message: Message,
    policy: Policy,
    *,
    department: str | None = None,
    job_title: str | None = None,
) -> Finding | None:
    """The finding this message makes, or None when it exposes too few to be one.

    ``department`` and ``job_title``: the sending mailbox's, from Entra (see step 7 of the
    severity rule).
    """
    recipients = visible_recipients(message)
    external = [r for r in recipients if not policy.is_internal_domain(r.domain)]
    if len(external) < policy.min_visible_external and (
        private_people(external, policy.severity) < PAIR
    ):
        return None  # the common case: decided without building anything more
    facts = read_message(mailbox, message, recipients, department=department, job_title=job_title)
    return judge(facts, policy)
