"""Grouping findings into incidents, and an incident's figures. Pure functions.

One mailing split into batches is one incident, and so is a reply-all that sends the list
round again. A finding joins an existing incident when, in this order:

1. **the same message** is already in it (one message found in two mailboxes, e.g. sent
   from a shared mailbox on someone's behalf);
2. **the same sender and subject**: same From address and the same subject once ``RE:``,
   ``FW:``, ``AW:``, ``SV:`` and similar prefixes, letter case and spacing are set aside,
   with the whole incident still within the window (default 24 hours) from its first to its
   last message;
3. **the same conversation, re-exposing the list**: a later message of a conversation the
   incident holds, showing at least one of the addresses the incident already exposed (an
   internal colleague's reply-all keeps the Cc);
4. **the same list again, from the same sender**: a later message whose visible external
   list is at least :data:`REPEAT_SHARE` (80%) people the incident already exposed, sent
   within ``incidents.reexposure_days`` (3) of the incident's latest message, whatever its
   subject or language: a "please delete" request, an apology, a correction, a resend, a
   recall from any mail client. The remedy repeats the harm; it is the same incident. An
   incident the DPO has closed or judged not a breach takes nothing by this rule: the same
   list sent again after that decision is a repeat of it (see :func:`repeat_of`).

Otherwise the finding starts a new incident. Placing is incremental and never moves a
finding that was already placed, so incident ids are stable: a re-run adds nothing, and a
late batch extends its incident.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sweeper.rules.severity import LEVELS, SeverityRule, exposure_of, grade, reveals_name

_PREFIXES = re.compile(
    # Replies and forwards in several languages, and Outlook's recall message ("Recall:"),
    # which goes to the same people and so exposes the same list a second time. White space
    # is taken whole (possessive: no word, bracket or colon starts with it), so that a long
    # run of it is not tried split in every way, in quadratic time.
    r"^(?:\s*+(?:re|fw|fwd|aw|wg|sv|vs|vb|tr|rv|ref|antw|odp|res|recall)\s*+"
    r"(?:\[\d++\]|\(\d++\))?\s*+[:：]\s*+)+",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
REEXPOSURE = timedelta(days=3)
"""Rule 4's default: within the 72 hours Article 33 gives, a follow-up to the same people is
part of the same exposure."""


def normalise_subject(subject: str) -> str:
    """``"RE: Fw:  Survey  results"`` → ``"survey results"``."""
    return _SPACE.sub(" ", _PREFIXES.sub("", subject or "")).strip().casefold()


@dataclass(frozen=True)
class Member:
    """What grouping needs to know of one finding."""

    key: str
    sender: str | None
    subject_key: str
    conversation_id: str | None
    sent_at: datetime | None
    addresses: frozenset[str]


@dataclass
class Group:
    """An incident as grouping sees it: its members, founder first."""

    id: int
    members: list[Member] = field(default_factory=list)
    decided: bool = False  # the DPO closed it or judged it not a breach: nothing joins by rule 4

    @property
    def founder(self) -> Member:
        return self.members[0]

    def span_with(self, moment: datetime) -> timedelta:
        times = [m.sent_at for m in self.members if m.sent_at is not None] + [moment]
        return max(times) - min(times)


def place(
    member: Member,
    groups: Sequence[Group],
    window: timedelta,
    reexposure: timedelta = REEXPOSURE,
) -> Group | None:
    """The incident this finding belongs to, or None for a new one. Earliest id wins."""
    ordered = sorted(groups, key=lambda g: g.id)
    for group in ordered:
        if any(m.key == member.key for m in group.members):
            return group
    for group in ordered:
        founder = group.founder
        if (
            member.sender is not None
            and founder.sender == member.sender
            and founder.subject_key == member.subject_key
            and member.sent_at is not None
            and group.span_with(member.sent_at) <= window
        ):
            return group
    if member.conversation_id:
        for group in ordered:
            if _re_exposes(member, group):
                return group
    for group in ordered:
        if not group.decided and repeats_list(member, group, reexposure):
            return group
    return None


def repeats_list(member: Member, group: Group, within: timedelta) -> bool:
    """Rule 4: the same sender shows mostly the same people again, soon after."""
    if member.sender is None or member.sent_at is None or not member.addresses:
        return False
    earlier = [
        m
        for m in group.members
        if m.sender == member.sender and m.sent_at is not None and m.sent_at <= member.sent_at
    ]
    if not earlier or member.sent_at - max(m.sent_at for m in earlier if m.sent_at) > within:
        return False
    exposed = frozenset().union(*(m.addresses for m in group.members))
    common = len(member.addresses & exposed)
    return common >= 2 and common >= REPEAT_SHARE * len(member.addresses)


def _re_exposes(member: Member, group: Group) -> bool:
    earlier = [
        m
        for m in group.members
        if m.conversation_id == member.conversation_id
        and (m.sent_at is None or member.sent_at is None or m.sent_at <= member.sent_at)
    ]
    if not earlier:
        return False
    exposed = frozenset().union(*(m.addresses for m in group.members))
    return bool(member.addresses & exposed)


@dataclass(frozen=True)
class MessageFigures:
    """One finding of an incident, as the incident's figures need it."""

    key: str
    sent_at: str | None
    visible_external: int
    bcc_used: bool
    suppressed: bool
    function: str | None = None  # what makes its sender a sensitive function, if anything
    addresses: frozenset[str] = frozenset()  # its visible external addresses
    subject: str = ""
    teams: tuple[str, ...] = ()  # its sender's Entra department and job title, where known


@dataclass(frozen=True)
class Summary:
    messages: int
    unique_exposed: int
    largest_batch: int
    first_sent_at: str | None
    last_sent_at: str | None
    personal_share: float
    named_addresses: int
    domains: int
    severity: str
    reason: str
    suppressed: bool


REPEAT_SHARE = 0.8  # "substantially the same list": this share of both lists in common


@dataclass(frozen=True)
class EarlierList:
    """An earlier incident of the same sender that the DPO has closed, and its list."""

    incident_id: int
    closed_on: str  # a date
    breach: bool  # closed as a breach (notified or reported), or as not a breach
    addresses: frozenset[str]


def repeat_of(addresses: Iterable[str], earlier: Iterable[EarlierList]) -> str | None:
    """Why this list ranks one step lower, or None: it repeats a list closed as not a breach.

    Substantially the same list: at least :data:`REPEAT_SHARE` of each list is in the other.
    A list closed as a breach and sent again is never lowered, even if another earlier copy
    was judged not a breach.
    """
    mine = frozenset(a.lower() for a in addresses)
    same = [
        e
        for e in earlier
        if mine
        and e.addresses
        and len(mine & e.addresses) >= REPEAT_SHARE * max(len(mine), len(e.addresses))
    ]
    if not same or any(e.breach for e in same):
        return None
    last = max(same, key=lambda e: e.closed_on)
    return f"repeat of incident {last.incident_id}, closed as not a breach on {last.closed_on}"


def exposed_again(messages: Sequence[MessageFigures]) -> str | None:
    """When the list was shown again: each later message whose people are mostly people an
    earlier message of the incident showed (a reply-all, a recall, a "please delete")."""
    ordered = sorted(messages, key=lambda m: (m.sent_at is None, m.sent_at or ""))
    seen: set[str] = set()
    moments: list[str] = []
    for message in ordered:
        common = len(message.addresses & seen)
        if message.addresses and common >= 2 and common >= REPEAT_SHARE * len(message.addresses):
            moments.append((message.sent_at or "at an unknown time")[:16].replace("T", " "))
        seen |= message.addresses
    if not moments:
        return None
    times = ", ".join(moments[:3]) + (f" and {len(moments) - 3} more" if len(moments) > 3 else "")
    return f"the list was exposed again by {len(moments)} later message(s): {times}"


def summarise(
    messages: Sequence[MessageFigures],
    addresses: Iterable[tuple[str, str | None]],
    subject: str,
    rule: SeverityRule,
    earlier: Iterable[EarlierList] = (),
) -> Summary:
    """An incident's figures over all its messages; ``addresses`` may repeat an address.

    ``earlier``: the same sender's incidents the DPO closed, for the repeat step.
    """
    names: dict[str, bool] = {}
    for address, name in addresses:
        names[address] = names.get(address, False) or reveals_name(address, name)
    function = next((m.function for m in messages if m.function), None)
    exposure = exposure_of(
        names,
        subject,
        any(m.bcc_used for m in messages),
        rule,
        function,
        names=names,
        subjects=[m.subject for m in messages if m.subject],
        teams=sorted({t for m in messages for t in m.teams}),
    )
    severity, reason = grade(exposure, rule)
    repeat = repeat_of(names, earlier)
    if repeat and severity != LEVELS[0]:
        severity = LEVELS[LEVELS.index(severity) - 1]
        reason = f"{reason[:-1]}; lower: {repeat})"
    again = exposed_again(messages)
    if again:
        reason = f"{reason[:-1]}; {again})"
    times = sorted(m.sent_at for m in messages if m.sent_at)
    unique_messages = {m.key: m for m in messages}
    return Summary(
        messages=len(unique_messages),
        unique_exposed=exposure.external,
        largest_batch=max((m.visible_external for m in messages), default=0),
        first_sent_at=times[0] if times else None,
        last_sent_at=times[-1] if times else None,
        personal_share=round(exposure.personal_share, 4),
        named_addresses=sum(names.values()),
        domains=exposure.domains,
        severity=severity,
        reason=reason,
        suppressed=bool(messages) and all(m.suppressed for m in messages),
    )
