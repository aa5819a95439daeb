"""Allowlists: mail the organisation has decided is not a breach. Pure functions.

A rule matches when every condition it states holds:

- ``sender``: the From address (exact, any letter case);
- ``domains``: every external domain of the message is in this set (a working group of
  known partner firms);
- ``subject``: a regular expression found anywhere in the subject's first
  :data:`SUBJECT_SEARCHED` characters, ignoring case. The pattern is the operator's, the
  subject a stranger's: a pattern that backtracks (``.*a.*b``) takes time that grows with
  the square of the text or worse, so the text it is run over is bounded.

Each rule has a ``reason`` (required: the audit trail must say why) and may have an
``expires`` date, after which it no longer applies. A matched finding is still stored,
marked suppressed with the rule's name, so that what was ignored stays visible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

SUBJECT_SEARCHED = 1000  # characters of a subject an allowlist pattern is searched in


@dataclass(frozen=True)
class AllowRule:
    name: str
    reason: str
    sender: str | None = None
    domains: frozenset[str] | None = None
    subject: re.Pattern[str] | None = None
    expires: date | None = None

    def describe(self) -> str:
        return f"{self.name}: {self.reason}"

    def applies_on(self, today: date) -> bool:
        return self.expires is None or today <= self.expires

    def matches(self, sender: str | None, domains: Iterable[str], subject: str) -> bool:
        if self.sender is not None and (sender or "").lower() != self.sender:
            return False
        if self.domains is not None and not set(domains) <= self.domains:
            return False
        if self.subject is None:
            return True
        return self.subject.search(subject[:SUBJECT_SEARCHED]) is not None


def first_match(
    rules: Sequence[AllowRule],
    *,
    sender: str | None,
    domains: Iterable[str],
    subject: str,
    today: date,
) -> AllowRule | None:
    """The first rule in force on ``today`` that matches, in configuration order."""
    domain_set = set(domains)
    for rule in rules:
        if rule.applies_on(today) and rule.matches(sender, domain_set, subject):
            return rule
    return None
