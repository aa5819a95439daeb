"""The labelled corpus of the severity yardstick: its cases, read and checked.

``tests/fixtures/judgement/cases.toml`` holds one ``[[case]]`` per labelled sent mailing:
what a careful DPO wants (``want``: ``quiet``, a severity, or a range such as
``"medium..high"``), how many incidents it is, and its messages as counts of recipients by
kind (personal, work, role, media, law, internal) in To, Cc and Bcc. The people themselves
are made up from the case's id (:mod:`tools.judgement_mail`), the same every time.

Every case belongs to one half, ``dev`` or ``held``, decided by a hash of its id
(:func:`half_of`): whoever tunes the rule looks at ``dev`` only, and ``held`` says whether
the tuning generalised.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "judgement" / "cases.toml"
ORDER = ("quiet", "low", "medium", "high", "critical")
KINDS = (
    "small-list",
    "language",
    "compound-word",
    "follow-up",
    "role-accounts",
    "routine-personal",
    "business-few-personal",
    "business",
    "colleagues",
    "mixed-audience",
    "sensitive-function",
    "batches",
    "scale",
)
LANGUAGES = ("en", "fr", "de", "es", "it", "nl", "pt", "pl")
HALVES = ("dev", "held")
PEOPLE = ("personal", "work", "role", "media", "law", "internal")
FIELDS = ("to", "cc", "bcc")
CONTROL = "control:"
ROLE_PLACES = ("work", "media")
_CASE_KEYS = {
    "id", "kind", "language", "source", "why", "want", "incidents", "half",
    "department", "job_title", "messages",
}  # fmt: skip
_MESSAGE_KEYS = {"subject", "hours_after", "named", "same_people_as", "same_thread_as", *FIELDS}
_DOMAIN_KEYS = {"work_domains", "law_domains", "media_domains"}
_RECIPIENT_KEYS = {*PEOPLE, *_DOMAIN_KEYS, "role_at"}


class CorpusError(Exception):
    """The corpus file has problems; ``problems`` lists each, naming its case."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Want:
    """What a careful DPO accepts: one level, or a range of neighbouring ones."""

    lowest: str
    highest: str

    def accepts(self, level: str) -> bool:
        return ORDER.index(self.lowest) <= ORDER.index(level) <= ORDER.index(self.highest)

    @property
    def rank(self) -> tuple[int, int]:
        return ORDER.index(self.lowest), ORDER.index(self.highest)

    def __str__(self) -> str:
        return self.lowest if self.lowest == self.highest else f"{self.lowest}..{self.highest}"


@dataclass(frozen=True)
class Recipients:
    """One of To, Cc, Bcc: how many new people of each kind, and where they work."""

    counts: Mapping[str, int] = field(default_factory=dict)
    work_domains: int | None = None  # organisations the work addresses are spread over
    law_domains: int | None = None  # law firms
    media_domains: int | None = None  # news organisations
    role_at: str = "work"  # role mailboxes at ordinary organisations, or at newsrooms

    def count(self, kind: str) -> int:
        return self.counts.get(kind, 0)


@dataclass(frozen=True)
class MessageSpec:
    """One sent message of a case."""

    subject: str
    hours_after: float
    to: Recipients
    cc: Recipients
    bcc: Recipients
    named: bool = True  # display names and first.last addresses show people's names
    same_people_as: int | None = None  # shows again the people of message N (1-based)
    same_thread_as: int | None = None  # continues the conversation of message N

    def field(self, name: str) -> Recipients:
        return {"to": self.to, "cc": self.cc, "bcc": self.bcc}[name]


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    language: str
    source: str
    why: str
    want: Want
    incidents: int
    half: str
    messages: tuple[MessageSpec, ...]
    department: str | None = None
    job_title: str | None = None

    @property
    def control(self) -> bool:
        """A case standing for everyday mail, not taken from a public record."""
        return self.source.startswith(CONTROL)


def half_of(case_id: str) -> str:
    """``dev`` or ``held``, from the first byte of the id's SHA-256: stable and about even."""
    return HALVES[hashlib.sha256(case_id.encode()).digest()[0] % 2]


def parse_want(text: object) -> Want:
    """``"high"`` or ``"medium..high"`` (lowest first) as a :class:`Want`."""
    if not isinstance(text, str):
        raise ValueError(f"want must be a string, not {text!r}")
    low, _, high = text.partition("..")
    high = high or low
    for level in (low, high):
        if level not in ORDER:
            raise ValueError(f"want {text!r}: {level!r} is none of {', '.join(ORDER)}")
    if ORDER.index(low) >= ORDER.index(high) and low != high:
        raise ValueError(f"want {text!r}: a range goes from the lower level to the higher")
    if ".." in text and low == high:
        raise ValueError(f"want {text!r}: a range of one level is written as that level")
    return Want(low, high)


def load_corpus(path: Path = CORPUS) -> list[Case]:
    """Every case of the corpus file, checked; :class:`CorpusError` lists all problems."""
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    problems: list[str] = []
    cases: list[Case] = []
    for number, entry in enumerate(raw.get("case", []), start=1):
        name = entry.get("id", f"case #{number}") if isinstance(entry, dict) else f"#{number}"
        try:
            cases.append(_case(entry))
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    problems += _duplicates(cases)
    if not cases and not problems:
        problems.append(f"{path}: no [[case]] entries")
    if problems:
        raise CorpusError(problems)
    return cases


def _duplicates(cases: list[Case]) -> list[str]:
    counts = Counter(c.id for c in cases)
    return [f"{case_id}: the id is used {n} times" for case_id, n in counts.items() if n > 1]


def _case(entry: Any) -> Case:
    if not isinstance(entry, dict):
        raise ValueError("a case must be a table")
    _only(entry, _CASE_KEYS, "case")
    case_id = _text(entry, "id")
    if case_id != case_id.strip().lower() or " " in case_id:
        raise ValueError("the id is lower case, without spaces")
    want = parse_want(entry.get("want"))
    incidents = entry.get("incidents", 0 if str(want) == "quiet" else 1)
    if not isinstance(incidents, int) or isinstance(incidents, bool) or incidents < 0:
        raise ValueError(f"incidents must be a whole number, not {incidents!r}")
    if (incidents == 0) != (str(want) == "quiet"):
        raise ValueError("incidents is 0 exactly when want is quiet")
    half = _choice(entry, "half", HALVES)
    if half != half_of(case_id):
        raise ValueError(f"half is {half_of(case_id)!r} for this id (tools.judgement_corpus)")
    messages = entry.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("a case has one or more [[case.messages]]")
    return Case(
        id=case_id,
        kind=_choice(entry, "kind", KINDS),
        language=_choice(entry, "language", LANGUAGES),
        source=_text(entry, "source"),
        why=_text(entry, "why"),
        want=want,
        incidents=incidents,
        half=half,
        messages=tuple(_message(m, n) for n, m in enumerate(messages, start=1)),
        department=_optional_text(entry, "department"),
        job_title=_optional_text(entry, "job_title"),
    )


def _message(entry: Any, number: int) -> MessageSpec:
    where = f"message {number}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a table")
    _only(entry, _MESSAGE_KEYS, where)
    hours = entry.get("hours_after", 0)
    if not isinstance(hours, int | float) or isinstance(hours, bool) or hours < 0:
        raise ValueError(f"{where}: hours_after is a number of hours, 0 or more")
    if number == 1 and hours != 0:
        raise ValueError("message 1 is sent at hours_after = 0")
    named = entry.get("named", True)
    if not isinstance(named, bool):
        raise ValueError(f"{where}: named is true or false")
    spec = MessageSpec(
        subject=_text(entry, "subject", where),
        hours_after=float(hours),
        to=_recipients(entry.get("to", {}), f"{where} to"),
        cc=_recipients(entry.get("cc", {}), f"{where} cc"),
        bcc=_recipients(entry.get("bcc", {}), f"{where} bcc"),
        named=named,
        same_people_as=_earlier(entry, "same_people_as", number, where),
        same_thread_as=_earlier(entry, "same_thread_as", number, where),
    )
    if spec.same_people_as is None and not any(spec.field(f).counts for f in FIELDS):
        raise ValueError(f"{where} has no recipients")
    return spec


def _recipients(entry: Any, where: str) -> Recipients:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an inline table of counts")
    _only(entry, _RECIPIENT_KEYS, where)
    counts: dict[str, int] = {}
    for kind in PEOPLE:
        if kind in entry:
            counts[kind] = _count(entry[kind], f"{where} {kind}", low=1)
    domains = {
        key: _count(entry[key], f"{where} {key}", low=1) for key in _DOMAIN_KEYS & entry.keys()
    }
    for key, value in domains.items():
        kind = key.removesuffix("_domains")
        if value > counts.get(kind, 0):
            raise ValueError(
                f"{where}: {key} = {value} is more than its {counts.get(kind, 0)} {kind}"
            )
    role_at = entry.get("role_at", "work")
    if role_at not in ROLE_PLACES:
        raise ValueError(f"{where}: role_at is one of {', '.join(ROLE_PLACES)}")
    if "role_at" in entry and "role" not in counts:
        raise ValueError(f"{where}: role_at without role addresses")
    return Recipients(counts, role_at=role_at, **domains)


def _count(value: Any, where: str, *, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{where} must be a whole number of at least {low}, not {value!r}")
    return value


def _earlier(entry: dict[str, Any], key: str, number: int, where: str) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value < number:
        raise ValueError(f"{where}: {key} names an earlier message (1 to {number - 1})")
    return value


def _only(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")


def _text(entry: dict[str, Any], key: str, where: str = "case") -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key} is a non-empty string")
    return value


def _optional_text(entry: dict[str, Any], key: str) -> str | None:
    return _text(entry, key) if key in entry else None


def _choice(entry: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = entry.get(key)
    if value not in allowed:
        raise ValueError(f"{key} is one of {', '.join(allowed)}, not {value!r}")
    return str(value)
