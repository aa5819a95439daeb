"""Deciding which sent messages exposed outside addresses. Pure functions over plain data.

A message's *visible* recipients are To ∪ Cc, one entry per address compared without regard
to case. An address is *external* unless its domain is one of the tenant's verified domains,
a subdomain of one, or a domain the organisation declares its own. An address without ``@``
(missing, or an X500 legacy Exchange DN) is never external: sweeper cannot say who it is,
and such entries are internal in practice. A distribution list is one address like any other:
its members never see each other.

A message is a finding when it has at least ``min_visible_external`` unique visible external
addresses.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Message = Mapping[str, Any]
"""One message as Graph sends it (raw JSON object), with the fields sweeper selects."""


@dataclass(frozen=True, slots=True)
class Policy:
    """What counts as inside the organisation, and how many outside addresses make a finding."""

    internal_domains: frozenset[str]
    min_visible_external: int = 10

    @classmethod
    def build(cls, domains: Iterable[str], min_visible_external: int = 10) -> Policy:
        clean = (normalise_domain(d) for d in domains)
        return cls(frozenset(d for d in clean if d), min_visible_external)

    def is_internal_domain(self, domain: str) -> bool:
        """True for an organisation domain or any subdomain of one (``mail.corp.example``)."""
        labels = domain.split(".")
        return any(".".join(labels[i:]) in self.internal_domains for i in range(len(labels)))


@dataclass(frozen=True, slots=True)
class Exposed:
    """One external address that other recipients could see."""

    address: str
    domain: str
    name: str | None
    field: str  # "to" or "cc": where it first appeared


@dataclass(frozen=True, slots=True)
class Finding:
    """A sent message whose visible recipients include many external addresses."""

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
    visible_external_count: int
    external_domains: tuple[str, ...]
    bcc_used: bool
    severity: str
    exposed: tuple[Exposed, ...]


SEVERITY_TIERS: tuple[tuple[int, str], ...] = ((100, "critical"), (50, "high"), (0, "medium"))
"""Severity by unique visible external addresses, highest tier first.

Every finding is at least ``medium``: it already exposed ``min_visible_external`` people.
``low`` is kept for the richer rule (personal mail share, domains, subject terms) to come.
"""


def severity_for(visible_external: int) -> str:
    for floor, name in SEVERITY_TIERS:
        if visible_external >= floor:
            return name
    return "medium"


def normalise_domain(domain: str) -> str:
    """Lower case, no surrounding dots or spaces; non-ASCII names in their ``xn--`` form."""
    clean = domain.strip().strip(".").lower()
    if not clean.isascii():
        # Not a valid IDN: keep the Unicode form, still compared case-insensitively.
        with contextlib.suppress(UnicodeError):
            clean = clean.encode("idna").decode("ascii")
    return clean


def parse_address(raw: object) -> tuple[str, str] | None:
    """``(address, domain)`` in canonical form, or None when it is no internet address.

    None for anything without ``local@domain.tld``: a missing or non-string value, an X500
    DN, ``user@host`` with no dot in the host.
    """
    if not isinstance(raw, str):
        return None
    text = raw.strip().strip("<>").strip()
    if text[:5].lower() == "smtp:":
        text = text[5:]
    local, at, host = text.rpartition("@")
    if not at or not local or not host or any(c.isspace() for c in text):
        return None
    domain = normalise_domain(host)
    if "." not in domain or "/" in domain:
        return None
    return f"{local.lower()}@{domain}", domain


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


def visible_external(message: Message, policy: Policy) -> list[Exposed]:
    """Unique external addresses in To and Cc, in the order they appear (To first)."""
    seen: dict[str, Exposed] = {}
    for field, key in (("to", "toRecipients"), ("cc", "ccRecipients")):
        for entry in _recipients(message, key):
            raw, name = _email(entry)
            parsed = parse_address(raw)
            if parsed is None:
                continue
            address, domain = parsed
            if address in seen or policy.is_internal_domain(domain):
                continue
            seen[address] = Exposed(address, domain, name, field)
    return list(seen.values())


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
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _sender(message: Message) -> str | None:
    for key in ("from", "sender"):
        parsed = parse_address(_email(message.get(key))[0])
        if parsed:
            return parsed[0]
    return None


def top_domains(exposed: Iterable[Exposed]) -> tuple[str, ...]:
    """External domains, the most addresses first, then by name."""
    counts = Counter(e.domain for e in exposed)
    return tuple(sorted(counts, key=lambda d: (-counts[d], d)))


def _content_key(sent_at: str | None, message: Message, exposed: list[Exposed]) -> str:
    """A stable key for a message that came without any id, so a re-run cannot double it."""
    parts = [sent_at or "", str(message.get("subject")), *sorted(e.address for e in exposed)]
    return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def classify(mailbox: str, message: Message, policy: Policy) -> Finding | None:
    """The finding this message makes, or None when it exposes fewer than the threshold."""
    exposed = visible_external(message, policy)
    if len(exposed) < policy.min_visible_external:
        return None
    graph_id = _text(message.get("id")) or ""
    internet_id = _text(message.get("internetMessageId"))
    bcc_count = len(_recipients(message, "bccRecipients"))
    sent_at = sent_at_utc(message.get("sentDateTime"))
    return Finding(
        mailbox=mailbox,
        message_key=internet_id or graph_id or _content_key(sent_at, message, exposed),
        graph_id=graph_id,
        internet_message_id=internet_id,
        conversation_id=_text(message.get("conversationId")),
        sent_at=sent_at,
        subject=_text(message.get("subject")) or "",
        sender=_sender(message),
        to_count=len(_recipients(message, "toRecipients")),
        cc_count=len(_recipients(message, "ccRecipients")),
        bcc_count=bcc_count,
        visible_external_count=len(exposed),
        external_domains=top_domains(exposed),
        bcc_used=bcc_count > 0,
        severity=severity_for(len(exposed)),
        exposed=tuple(exposed),
    )
