"""Pages of Sent Items judged from their raw JSON: a quick path over To and Cc, then the full one.

Graph's pages reach the sweep with each message still raw JSON
(:meth:`sweeper.graph.gateway.GraphGateway.sent_pages`). Most sent mail goes to a few
people, and telling that it is no finding needs To and Cc alone. So each message is first
decoded into typed structs of its To and Cc entries, every other field skipped unread, and
each address placed by the policy's cached :attr:`~sweeper.rules.classify.Policy.verdict`.
A message with a single To or Cc entry is decided without reading one address; one under
the threshold with fewer than two personal addresses is decided on the addresses alone.

Only a message that the quick path finds with enough external addresses is decoded whole
and judged by :func:`~sweeper.rules.classify.classify`, as every message was before: a
finding is the same finding either way. A value of another shape (null, a string, a
recipient that is no object, a recipient list that is no list) cannot take the quick path
and is judged in full as well; a value that is no JSON object there is *malformed*,
counted for the sweep to show, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import msgspec
import orjson

from sweeper.rules.classify import Finding, Policy, classify
from sweeper.rules.severity import PAIR

Entry = msgspec.Raw | bytes
"""One value of a page's ``value`` list, as the raw JSON text Graph sent."""


class _Address(msgspec.Struct, gc=False):
    address: Any = None  # anything at all: what is no string is no internet address


class _Recipient(msgspec.Struct, rename="camel", gc=False):
    email_address: _Address | None = None


class _Visible(msgspec.Struct, rename="camel", gc=False):
    """What the quick path reads of a message: To and Cc, nothing else."""

    to_recipients: list[_Recipient] | None = None
    cc_recipients: list[_Recipient] | None = None


_VISIBLE = msgspec.json.Decoder(_Visible)


@dataclass
class PageJudgement:
    findings: list[Finding] = field(default_factory=list)
    malformed: int = 0  # values that were no message object, or no JSON sweeper could read


def classify_page(
    mailbox: str,
    entries: Iterable[Entry],
    policy: Policy,
    *,
    department: str | None = None,
    job_title: str | None = None,
) -> PageJudgement:
    """The findings among one page's messages, and how many of its values were malformed.

    The same findings as :func:`~sweeper.rules.classify.classify` of each value parsed
    whole; ``department`` and ``job_title`` are the sending mailbox's, as there.
    """
    judged = PageJudgement()
    for entry in entries:
        if may_find(entry, policy) is False:
            continue
        message = value_of(entry)
        if not isinstance(message, dict):
            judged.malformed += 1
            continue
        finding = classify(mailbox, message, policy, department=department, job_title=job_title)
        if finding is not None:
            judged.findings.append(finding)
    return judged


def may_find(entry: Entry, policy: Policy) -> bool | None:
    """The quick path: whether this message has ``policy.min_visible_external`` unique
    visible external addresses, read from To and Cc alone. None when the value is not
    shaped for the quick path; the full path then decides."""
    try:
        visible = _VISIBLE.decode(entry)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    to = visible.to_recipients or ()
    cc = visible.cc_recipients or ()
    needed = policy.min_visible_external
    if len(to) + len(cc) < min(needed, PAIR):
        return False  # the common case: one person, not one address read
    verdict = policy.verdict
    is_personal = policy.severity.is_personal
    external: set[str] = set()
    personal: set[str] = set()
    for recipient in chain(to, cc):
        email = recipient.email_address
        raw = email.address if email is not None else None
        if isinstance(raw, str):
            placed = verdict(raw)
            if placed is not None and not placed.internal:
                external.add(placed.address)
                if is_personal(placed.domain):
                    personal.add(placed.address)
    # Under the threshold, two personal addresses may be a floor finding: judged in full.
    return len(external) >= needed or len(personal) >= PAIR


def value_of(entry: Entry) -> Any:
    """The value as Python data, as a whole page parsed with orjson would hold it; None when
    it is no JSON that orjson reads (text that is not UTF-8, a number too large)."""
    try:
        return orjson.loads(memoryview(entry))
    except orjson.JSONDecodeError:
        return None
