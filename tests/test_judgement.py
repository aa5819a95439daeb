"""The judgement calls a careful DPO makes, as a labelled table, plus properties of the rule.

Each case is one sent message: who was in To, Cc and Bcc, the subject and sender, and the
verdict a careful human gives it: ``quiet`` (not a finding), a severity, or ``allowed X``
(a finding of severity X that an allowlist rule suppresses, still stored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sweeper.rules.allow import AllowRule
from sweeper.rules.classify import Policy, classify
from sweeper.rules.severity import LEVELS, SeverityRule
from sweeper.settings import parse_allow_rules

TODAY = date(2026, 11, 22)
RULES = parse_allow_rules(
    [
        {
            "name": "newsletter",
            "reason": "one message per reader",
            "sender": "newsletter@northwick.example",
        },
        {
            "name": "protocol-group",
            "reason": "partners agreed to share",
            "domains": ["harbour-law.example", "eastgate-council.example"],
        },
        {"name": "board", "reason": "board members know each other", "subject": "^board pack"},
        {
            "name": "old-news",
            "reason": "retired tool",
            "subject": "^old newsletter",
            "expires": date(2026, 1, 31),
        },
    ]
)
POLICY = Policy.build(
    ["northwick.example", "northwick-trust.example"], 10, allow=RULES, today=TODAY
)


def r(address: Any, name: str | None = None) -> dict[str, Any]:
    return {"emailAddress": {"name": name or "", "address": address}}


def personal(n: int, start: int = 0, domain: str = "gmail.com") -> list[dict[str, Any]]:
    return [r(f"jo.bloggs{i}@{domain}", f"Jo Bloggs {i}") for i in range(start, start + n)]


def business(n: int, domains: int = 1, prefix: str = "firm") -> list[dict[str, Any]]:
    return [r(f"worker{i}@{prefix}{i % domains}.example") for i in range(n)]


def partners(n: int, domains: tuple[str, ...]) -> list[dict[str, Any]]:
    return [r(f"member{i}@{domains[i % len(domains)]}") for i in range(n)]


def internal(n: int, domain: str = "northwick.example") -> list[dict[str, Any]]:
    return [r(f"colleague{i}@{domain}") for i in range(n)]


X500 = r("/o=ExchangeLabs/ou=Exchange Administrative Group/cn=Recipients/cn=ab12")
PROTOCOL = ("harbour-law.example", "eastgate-council.example")


@dataclass
class Case:
    label: str
    expected: str
    to: list[Any]
    cc: list[Any] = field(default_factory=list)
    bcc: list[Any] = field(default_factory=list)
    subject: str = "Update"
    sender: str = "officer@northwick.example"
    department: str | None = None  # the sending mailbox's, from Entra
    job_title: str | None = None


CASES = [
    Case("one personal address", "quiet", personal(1)),
    Case("nine work addresses: one under the threshold", "quiet", business(9)),
    Case("nine private people: a finding under the threshold (the floor), low", "low", personal(9)),
    Case("ten personal addresses: at the threshold, members of the public", "medium", personal(10)),
    Case("ten colleagues at one business", "low", business(10)),
    Case("thirty people at one partner domain", "low", business(30)),
    Case("fourteen people of two partner firms", "low",
         partners(14, ("harbour-law.example", "x.example"))),
    Case("twelve people of three firms: work contacts", "low", business(12, domains=3)),
    Case("one partner firm and one private person", "low", business(11) + personal(1)),
    Case("work contacts and three private people", "medium", business(11) + personal(3)),
    Case("mixed-case duplicates across To and Cc count once", "medium", personal(10),
         [r(f"JO.BLOGGS{i}@GMAIL.COM") for i in range(10)]),
    Case("duplicates inflate only the raw count", "quiet", business(9), business(3)),
    Case("a subdomain of an internal domain is internal", "quiet",
         internal(30, "mail.northwick.example") + business(4)),
    Case("a deep subdomain is internal", "quiet", internal(20, "a.b.northwick.example")),
    Case("a look-alike domain is external", "low", internal(10, "notnorthwick.example")),
    Case("a suffix-appended domain is external", "low",
         internal(10, "northwick.example.evil.example")),
    Case("the declared affiliate is internal", "quiet",
         internal(25, "northwick-trust.example") + business(3)),
    Case("an unverified tenant domain is external", "low",
         internal(12, "northwick-legacy.example")),
    Case("an internal distribution list is internal", "quiet",
         [r("all-staff@northwick.example")] + business(9)),
    Case("an external list is one address", "quiet",
         [r("members@partner-list.example")] + business(8)),
    Case("an external list can be the tenth address", "low",
         [r("members@partner-list.example")] + personal(9)),
    Case("X500, missing and null addresses never count", "quiet",
         business(9) + [X500, {"emailAddress": {"name": "x"}}, r(None)]),
    Case("empty To with everyone in Cc", "medium", [], personal(12)),
    Case("everyone in Bcc, as it should be", "quiet", [r("officer@northwick.example")], [],
         personal(300)),
    Case("Bcc used as well, to work contacts: as it should be", "low", business(12, domains=5),
         [], personal(2, 50)),
    Case("Bcc used as well, to private people", "high", personal(12), [], personal(2, 50)),
    Case("clinic patients", "critical", personal(105), subject="Patient newsletter"),
    Case("a sensitive word in the subject: high under 25 people", "high", personal(12),
         subject="Victim support update"),
    Case("a sensitive word in the subject: critical from 25 people", "critical", personal(25),
         subject="Victim support update"),
    Case("a sensitive word inside another word does not count", "medium",
         personal(12), subject="Shivering in the cold: heating notice"),
    Case("a plural sensitive word counts", "high", personal(12),
         subject="Patients' forum dates"),
    Case("sensitive words ignore case", "critical", personal(12), subject="HIV TESTING DAY"),
    Case("a sensitive word to work contacts names their work and raises nothing", "low",
         business(12, domains=4), subject="HIV testing day: speakers"),
    Case("fifty private people, nothing revealing: at most high", "high", personal(50)),
    Case("999 private people, nothing revealing: high", "high", personal(999)),
    Case("1,000 private people: critical on their number", "critical", personal(1000)),
    Case("fifty business contacts in many firms", "low", business(50, domains=10)),
    Case("ninety-nine business contacts", "low", business(99, domains=10)),
    Case("a hundred business contacts in ten firms: a business audience", "medium",
         business(100, domains=10)),
    Case("a regulatory service list: 196 lawyers at 118 firms", "medium",
         business(196, domains=118), subject="Settlement conference"),
    Case("a press release to 150 journalists", "medium",
         business(150, domains=60, prefix="news"), subject="Embargoed: annual report"),
    Case("a farewell to 190 business contacts", "medium",
         business(190, domains=140), subject="Moving on"),
    Case("a business audience told of a victim: the topic of their work", "medium",
         business(120, domains=40), subject="Victim support update"),
    Case("a business audience with one private person is judged on its count", "medium",
         business(119, domains=40) + personal(1)),
    Case("two partner firms told of abuse: work contacts", "low",
         business(30, domains=2), subject="Abuse allegations"),
    Case("a hundred people of one partner firm: colleagues, one step lower", "low",
         business(100)),
    Case("a hundred people of three firms", "medium", business(100, domains=3)),
    Case("245 interpreters", "critical", personal(245), subject="Relocation support"),
    Case("a Unicode domain and its punycode are one domain", "medium",
         personal(9) + [r("jürgen@bücher.example"), r("JÜRGEN@xn--bcher-kva.example")]),
    Case("padded and bracketed addresses are the same person", "medium",
         personal(9) + [r("  <Anna@Gmail.com> "), r("anna@gmail.com")]),
    Case("internal recipients never change the verdict", "medium", personal(10) + internal(50)),
    Case("allowlisted sender", "allowed medium", personal(20),
         sender="newsletter@northwick.example"),
    Case("allowlisted sender in other letter case", "allowed medium", personal(20),
         sender="Newsletter@Northwick.Example"),
    Case("allowlisted partner domains", "allowed low", partners(14, PROTOCOL)),
    Case("a third domain leaves the domain rule", "low",
         partners(14, PROTOCOL) + [r("x@meridian-health.example")]),
    Case("allowlisted subject pattern", "allowed low", business(12, domains=4),
         subject="Board pack - March"),
    Case("an expired rule no longer applies", "medium", personal(12),
         subject="Old newsletter: spring"),
    Case("the allowlist needs a finding first", "quiet", business(5),
         sender="newsletter@northwick.example"),
]  # fmt: skip


def message(case: Case) -> dict[str, Any]:
    return {
        "id": "AAMk1",
        "internetMessageId": "<case@northwick.example>",
        "subject": case.subject,
        "sentDateTime": "2026-11-21T10:00:00Z",
        "from": r(case.sender),
        "toRecipients": case.to,
        "ccRecipients": case.cc,
        "bccRecipients": case.bcc,
    }


def verdict(
    msg: dict[str, Any],
    policy: Policy = POLICY,
    department: str | None = None,
    job_title: str | None = None,
) -> str:
    finding = classify(
        "officer@northwick.example", msg, policy, department=department, job_title=job_title
    )
    if finding is None:
        return "quiet"
    return f"allowed {finding.severity}" if finding.suppressed_by else finding.severity


def test_the_table_is_big_enough_and_labels_are_unique() -> None:
    assert len(CASES) >= 40
    assert len({c.label for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_the_verdict_a_careful_dpo_gives(case: Case) -> None:
    assert verdict(message(case), POLICY, case.department, case.job_title) == case.expected


# The organisation of the cases below declares its sensitive functions, as the demo does.
DECLARED = Policy.build(
    ["northwick.example", "northwick-trust.example"],
    10,
    severity=SeverityRule(
        sensitive_departments=("investigations", "victim care", "sexual health", "safeguarding"),
        sensitive_senders=("*@victimcare.northwick.example", "casework*@northwick.example"),
    ),
    today=TODAY,
)
MPS = "parliament.uk"
FUNCTION_CASES = [
    Case("honeytrap: 18 victims at one outside organisation, from investigations", "critical",
         business(18, prefix="parliament", domains=1),
         subject="Update on the ongoing investigation", department="Investigations"),
    Case("honeytrap shape, neutral subject: still at least high", "high",
         [r(f"member{i}@{MPS}") for i in range(18)], subject="Update on your case",
         department="Investigations"),
    Case("14 at parliament, 3 journalists, 1 personal, from investigations", "critical",
         [r(f"member{i}@{MPS}") for i in range(14)] + business(3, 3, "news") + personal(1),
         subject="Update on the ongoing investigation", department="Investigations"),
    Case("NHS Highland: 37 personal addresses from the sexual health service", "critical",
         personal(37), subject="Group session dates", department="Sexual Health Service"),
    Case("a declared job title counts as the department does", "critical",
         personal(12), subject="Next meeting", job_title="Safeguarding Lead"),
    Case("a declared sender pattern", "critical", personal(10),
         sender="bookings@victimcare.northwick.example"),
    Case("a casework sender to council officers: no business cap", "high",
         business(60, domains=20), subject="Meeting notes",
         sender="casework.team@northwick.example"),
    Case("victim care to one partner firm: no colleague downgrade", "high",
         business(12), subject="Rota", department="Victim Care Unit"),
    Case("an undeclared department changes nothing", "low",
         business(12, domains=3), subject="Rota", department="Finance"),
    Case("a function's mail under the threshold is a finding (the floor)", "critical", personal(9),
         department="Investigations"),
    Case("IICSA 2018: 90 abuse survivors in To, 52 showing full names", "critical",
         personal(52) + [r(f"s{i}@hotmail.co.uk") for i in range(38)],
         subject="Forthcoming hearings for survivors"),
    Case("IICSA shape, nothing revealing, no function: private people alone", "high",
         personal(52) + [r(f"s{i}@hotmail.co.uk") for i in range(38)],
         subject="Forthcoming hearings"),
    Case("Central YMCA 2024: 270 on an HIV support programme in Cc", "critical", [],
         personal(270), subject="HIV support programme: next sessions"),
    Case("Met 2012: one batch of the survey to crime victims", "critical", personal(119),
         subject="Victim satisfaction survey - your views", department="Victim Care"),
    Case("a Bcc newsletter from the sexual health service", "quiet",
         [r("newsletter@northwick.example")], [], personal(400),
         department="Sexual Health Service"),
]  # fmt: skip


@pytest.mark.parametrize("case", FUNCTION_CASES, ids=[c.label for c in FUNCTION_CASES])
def test_a_declared_sensitive_function_ranks_what_its_list_reveals(case: Case) -> None:
    assert verdict(message(case), DECLARED, case.department, case.job_title) == case.expected


def test_the_reason_names_the_sensitive_function() -> None:
    case = next(c for c in FUNCTION_CASES if c.label.startswith("NHS Highland"))
    msg = message(case)
    finding = classify("officer@northwick.example", msg, DECLARED, department=case.department)
    assert finding is not None
    assert (
        "critical: a sensitive function (department 'Sexual Health Service'), and 37 private people"
        in (finding.severity_reason)
    )


def test_the_clinic_list_outranks_the_partner_working_group() -> None:
    by_label = {c.label: c for c in CASES}
    clinic = verdict(message(by_label["clinic patients"]))
    group = verdict(message(by_label["fourteen people of two partner firms"]))
    assert LEVELS.index(clinic) > LEVELS.index(group)


def test_the_reason_states_the_facts_and_the_steps() -> None:
    msg = message(Case("", "", personal(81) + business(62, domains=20), [], personal(1, 900)))
    msg["subject"] = "Victim survey"
    finding = classify("officer@northwick.example", msg, POLICY)
    assert finding is not None
    assert finding.severity_reason == (
        "143 external addresses, 57% personal mail, 81 showing a name, 21 domains "
        "(high: 50+ people; members of the public: 81 private people (57%); "
        "at least high: the subject reveals 'Victim' (victims and witnesses, en/es); "
        "higher: Bcc also used; "
        "critical: what it reveals about 143 people (critical from 25))"
    )


def test_a_suppressed_finding_names_its_rule_and_reason() -> None:
    msg = message(Case("", "", personal(20), sender="newsletter@northwick.example"))
    finding = classify("officer@northwick.example", msg, POLICY)
    assert finding is not None
    assert finding.suppressed_by == "newsletter: one message per reader"


# -- properties -------------------------------------------------------------------------

DOMAINS = ["gmail.com", "outlook.com", "firm1.example", "firm2.example", "firm3.example"]
INSIDE = ["northwick.example", "mail.northwick.example", "northwick-trust.example"]
locals_ = st.from_regex(r"[a-z]{1,6}", fullmatch=True)
external_address = st.builds(lambda loc, d: f"{loc}@{d}", locals_, st.sampled_from(DOMAINS))
internal_address = st.builds(lambda loc, d: f"{loc}@{d}", locals_, st.sampled_from(INSIDE))
subjects = st.sampled_from(["Update", "Victim survey", "RE: minutes", "HIV clinic"])


def rank(value: str) -> int:
    """quiet < low < medium < high < critical, ignoring suppression."""
    return -1 if value == "quiet" else LEVELS.index(value.removeprefix("allowed "))


def msg_of(to: list[str], cc: list[str], subject: str, bcc: int = 0) -> dict[str, Any]:
    return {
        "id": "AAMk1",
        "subject": subject,
        "toRecipients": [r(a) for a in to],
        "ccRecipients": [r(a) for a in cc],
        "bccRecipients": personal(bcc),
    }


@given(st.lists(external_address, max_size=120), subjects, st.randoms())
def test_recipient_order_never_matters(addresses: list[str], subject: str, rnd: Any) -> None:
    shuffled = list(addresses)
    rnd.shuffle(shuffled)
    half = len(shuffled) // 2
    assert verdict(msg_of(addresses, [], subject)) == verdict(
        msg_of(shuffled[:half], shuffled[half:], subject)
    )


@given(st.lists(external_address, min_size=1, max_size=120), st.data(), subjects)
def test_a_duplicate_never_counts_twice(addresses: list[str], data: Any, subject: str) -> None:
    again = data.draw(st.sampled_from(addresses)).upper()
    assert verdict(msg_of(addresses, [again], subject)) == verdict(msg_of(addresses, [], subject))


def judged_as_the_public(msg: dict[str, Any]) -> bool:
    finding = classify("officer@northwick.example", msg, POLICY)
    return finding is not None and "members of the public" in finding.severity_reason


@given(st.lists(external_address, max_size=150), external_address, subjects, st.integers(0, 2))
def test_adding_an_external_recipient_never_lowers_severity_but_where_the_readme_says(
    addresses: list[str], extra: str, subject: str, bcc: int
) -> None:
    before = verdict(msg_of(addresses, [], subject, bcc))
    after = verdict(msg_of(addresses, [extra], subject, bcc))
    # The one exception (docs/severity.md, "Monotony"): a work address that turns members of the
    # public into a business audience.
    turned = judged_as_the_public(msg_of(addresses, [], subject, bcc)) and not (
        judged_as_the_public(msg_of(addresses, [extra], subject, bcc))
    )
    if extra.endswith(("@gmail.com", "@outlook.com")) or not turned:
        assert rank(after) >= rank(before)


@given(st.lists(external_address, max_size=150), subjects, st.integers(0, 2))
def test_adding_a_personal_address_never_lowers_severity(
    addresses: list[str], subject: str, bcc: int
) -> None:
    before = verdict(msg_of(addresses, [], subject, bcc))
    after = verdict(msg_of(addresses, ["newcomer@outlook.com"], subject, bcc))
    assert rank(after) >= rank(before)


@given(st.lists(external_address, max_size=150), internal_address, subjects)
def test_adding_an_internal_recipient_never_changes_anything(
    addresses: list[str], extra: str, subject: str
) -> None:
    assert verdict(msg_of(addresses, [extra], subject)) == verdict(msg_of(addresses, [], subject))


def test_an_allow_rule_describes_itself_for_the_audit_trail() -> None:
    rule = AllowRule(name="n", reason="because")
    assert rule.describe() == "n: because"
    assert rule.applies_on(TODAY)


@given(st.lists(external_address, max_size=150), external_address, subjects, st.integers(0, 2))
def test_a_sensitive_functions_severity_never_falls_with_one_more_recipient(
    addresses: list[str], extra: str, subject: str, bcc: int
) -> None:
    before = verdict(msg_of(addresses, [], subject, bcc), DECLARED, "Investigations")
    after = verdict(msg_of(addresses, [extra], subject, bcc), DECLARED, "Investigations")
    assert rank(after) >= rank(before)
