"""The judgement by kind of case: small lists, what a subject reveals, role mailboxes,
business lists with a few personal addresses, routine personal mail, mixed audiences and the
remedy that repeats the harm. Each test names the kind and the public record it stands for
(``../shared/docs/regulator-cases.md``); the labelled corpus behind ``make judgement`` holds
many more cases of each kind."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.runner import Sweeper

from sweeper.rules.classify import Policy, classify
from sweeper.rules.incidents import Group, Member, place
from sweeper.rules.severity import LEVELS, SeverityRule

POLICY = Policy.build(["northwick.example"], today=date(2026, 12, 1))
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def r(address: str, name: str = "") -> dict[str, Any]:
    return {"emailAddress": {"name": name, "address": address}}


def private(n: int, start: int = 0) -> list[dict[str, Any]]:
    domains = ("gmail.com", "web.de", "libero.it", "wp.pl", "hotmail.fr")
    return [r(f"parent{i}@{domains[i % 5]}") for i in range(start, start + n)]


def work(n: int, organisations: int, start: int = 0) -> list[dict[str, Any]]:
    return [r(f"a.lopez{i}@org{i % organisations}.example") for i in range(start, start + n)]


def newsrooms(n: int) -> list[dict[str, Any]]:
    words = ("news", "press", "redaktion", "info", "redazione", "redactie", "biuro", "contact")
    return [r(f"{words[i % len(words)]}@paper{i}.example") for i in range(n)]


def judged(to: list[Any], subject: str = "Update", policy: Policy = POLICY, **facts: Any) -> str:
    message = {
        "id": "m1",
        "subject": subject,
        "sentDateTime": "2026-11-02T09:00:00Z",
        "from": r("office@northwick.example"),
        "toRecipients": to,
    }
    finding = classify("office@northwick.example", message, policy, **facts)
    return "quiet" if finding is None else finding.severity


def reason(to: list[Any], subject: str = "Update", **facts: Any) -> str:
    message = {"id": "m1", "subject": subject, "toRecipients": to}
    finding = classify("office@northwick.example", message, POLICY, **facts)
    assert finding is not None
    return finding.severity_reason


# A small list of private people (AEPD 2020: 8 clients of a law firm in To).
def test_a_small_list_of_private_people_is_a_low_finding_under_the_threshold() -> None:
    assert judged(private(8)) == "low"
    assert judged(private(3)) == "low"
    assert "8 private people" in reason(private(8))
    assert judged(private(8), subject="Processo de insolvência pessoal") == "high"


def test_small_lists_of_work_addresses_and_pairs_stay_silent() -> None:
    assert judged(work(9, organisations=9)) == "quiet"
    assert judged(private(2)) == "quiet"
    assert judged(work(9, organisations=9), subject="HIV conference speakers") == "quiet"


def test_two_private_people_and_a_revealing_subject_are_a_finding() -> None:
    assert judged(private(2), subject="Your HIV clinic appointment") == "high"


def test_under_the_threshold_a_revealing_list_is_high_at_most_without_a_declared_function() -> None:
    assert judged(private(7), subject="Groupe de parole : anxiété") == "high"
    declared = Policy.build(
        ["northwick.example"], severity=SeverityRule(sensitive_departments=("sexual health",))
    )
    assert judged(private(7), "Group dates", declared, department="Sexual Health") == "critical"


# What the subject reveals, in the sender's language (Garante 2025, Roverbella).
@pytest.mark.parametrize(
    ("subject", "word"),
    [
        ("Promemoria: obblighi vaccinali", "vaccinali"),
        ("Einladung zur Selbsthilfegruppe für Gewaltopfer", "Gewaltopfer"),
        ("Rappel : groupe de parole pour les victimes", "victimes"),
        ("Reunión del grupo de apoyo a víctimas", "víctimas"),
        ("Survivors' network: next meeting", "Survivors"),
    ],
)
def test_a_revealing_subject_makes_private_people_critical_in_every_language(
    subject: str, word: str
) -> None:
    assert judged(private(37), subject) == "critical"
    assert repr(word) in reason(private(37), subject)


def test_the_senders_team_reveals_as_a_subject_does_declared_or_not() -> None:
    assert judged(private(20), department="Victim Care Unit") == "high"
    assert judged(private(25), department="Victim Care Unit") == "critical"
    assert "the sender's team" in reason(private(20), department="Victim Care Unit")
    assert judged(private(20), department="Finance") == "medium"


# What it reveals raises a list of private people to high, and to critical from a line that
# follows the category: 10 for HIV, sexual life and abuse survivors, 25 for the special
# categories and victims, 100 for the rest (Garante 2020: 16 parents, high; 2025: 37,
# critical).
@pytest.mark.parametrize(
    ("subject", "high_below"),
    [
        ("HIV testing day", 10),
        ("Groupe de parole pour les survivants d'abus", 10),
        ("Promemoria: obblighi vaccinali", 25),
        ("Einladung zur Selbsthilfegruppe für Gewaltopfer", 25),
        ("Trauercafé: Termine im Dezember", 100),
        ("Votre dossier RSA : pièces justificatives", 100),
    ],
)
def test_what_a_list_reveals_is_critical_from_the_line_of_its_category(
    subject: str, high_below: int
) -> None:
    assert judged(private(high_below - 1), subject) == "high"
    assert judged(private(high_below), subject) == "critical"
    assert f"critical from {high_below}" in reason(private(high_below), subject)


# Role mailboxes (press releases to newsrooms' news@, press@, redaktion@).
def test_a_list_of_role_mailboxes_only_is_low() -> None:
    assert judged(newsrooms(30), subject="Press release: annual report") == "low"
    assert "role mailboxes" in reason(newsrooms(30))


@given(st.integers(0, 40))
@settings(max_examples=25, deadline=None)
def test_role_mailboxes_never_change_a_lists_severity(roles: int) -> None:
    people = private(12) + work(40, organisations=20)
    assert judged(people + newsrooms(roles)) == judged(people)


# Routine personal mail (Austrian DSB 2025: ticket buyers in Cc; no fine).
@pytest.mark.parametrize(
    ("count", "expected"), [(16, "medium"), (49, "medium"), (60, "high"), (249, "high")]
)
def test_private_people_with_nothing_revealing_are_at_most_high(count: int, expected: str) -> None:
    assert judged(private(count), subject="Your tickets for Saturday") == expected


def test_scale_makes_private_people_critical_from_1000() -> None:
    assert judged(private(999), subject="December newsletter") == "high"
    assert judged(private(1000), subject="December newsletter") == "critical"
    assert "1000+ private people" in reason(private(1000))


# Business lists with a few personal addresses (service lists, farewells: 5-8%).
def test_a_business_list_with_a_few_personal_addresses_is_medium_at_most() -> None:
    farewell = work(180, organisations=120) + private(12)
    assert judged(farewell, subject="I'm leaving") == "medium"
    assert judged(farewell, subject="Mental health first aid training") == "medium"
    assert "a business list of 100+ people" in reason(farewell)
    assert judged(work(40, organisations=30) + private(2)) == "low"
    assert judged(work(40, organisations=30) + private(3)) == "medium"
    assert "3 private addresses among work contacts" in reason(work(40, 30) + private(3))


def test_a_material_share_of_personal_addresses_is_judged_as_the_public() -> None:
    members = work(60, organisations=40) + private(40)
    assert judged(members, subject="Support group for survivors") == "critical"


# Mixed audiences (ICO 2018, Gloucestershire: victims beside lawyers and journalists).
def test_private_people_beside_journalists_and_lawyers_rank_a_step_higher() -> None:
    people = private(30)
    press = [r(f"j.smith{i}@bbc.co.uk") for i in range(5)]
    lawyers = [r(f"k.jones{i}@smithlaw.co.uk") for i in range(3)]
    assert judged(people) == "medium"
    assert judged(people + press + lawyers) == "high"
    assert "beside" in reason(people + press + lawyers)
    assert judged(private(60) + press + lawyers) == "critical"


def test_one_friend_at_a_law_firm_is_no_mixed_audience() -> None:
    assert judged(private(12) + [r("k.jones@smithlaw.co.uk")]) == "medium"


@given(st.integers(0, 30), st.integers(0, 30), st.integers(0, 400))
@settings(max_examples=60, deadline=None)
def test_one_more_personal_address_never_lowers_the_severity(
    roles: int, workers: int, people: int
) -> None:
    base = private(people) + work(workers, organisations=max(1, workers // 2))
    before = judged(base + newsrooms(roles), subject="Notice")
    after = judged(base + newsrooms(roles) + private(1, start=people), subject="Notice")
    order = ("quiet", *LEVELS)
    assert order.index(after) >= order.index(before)


# The remedy repeats the harm (DFAT 2020, Central YMCA 2024).
def member(key: str, hours: float, people: range, subject: str) -> Member:
    return Member(
        key=key,
        sender="office@northwick.example",
        subject_key=subject,
        conversation_id=key,
        sent_at=T0 + timedelta(hours=hours),
        addresses=frozenset(f"p{i}@gmail.com" for i in people),
    )


@pytest.mark.parametrize(
    "subject",
    [
        "please delete my previous email",
        "proszę usunąć poprzednią wiadomość",
        "Bitte löschen Sie meine letzte E-Mail",
        "Retirar: aviso",
        "Apologies",
    ],
)
def test_a_follow_up_to_the_same_people_joins_the_first_incident(subject: str) -> None:
    first = Group(1, [member("batch", 0, range(100), "hardship loans")])
    assert place(member("again", 30, range(100), subject), [first], timedelta(hours=24)) is first
    assert place(member("again", 30, range(90, 100), subject), [first], timedelta(hours=24))


def test_a_later_mail_to_other_people_or_days_later_is_another_incident() -> None:
    first = Group(1, [member("batch", 0, range(100), "hardship loans")])
    others = member("other", 30, range(100, 200), "please delete")
    assert place(others, [first], timedelta(hours=24)) is None
    late = member("late", 24 * 10, range(100), "please delete")
    assert place(late, [first], timedelta(hours=24)) is None


CLINIC = "clinic.bookings@northwick.example"


def follow_up(sweeper: Sweeper, subject: str) -> None:
    """The clinic's newest mailing sent again to the same people 40 minutes later, as a new
    mail (another conversation, another subject): a "please delete" written afresh."""
    sender = sweeper.fake.tenant.user(CLINIC)
    assert sender is not None
    first = sender.sent[0]
    later = datetime.fromisoformat(first["sentDateTime"]) + timedelta(minutes=40)
    follow = dict(first)
    follow.update(
        id=f"AAMkAGfollow{len(subject)}",
        internetMessageId=f"<follow-{len(subject)}@northwick.example>",
        conversationId="another-conversation",
        subject=subject,
        sentDateTime=later.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    sender.sent.insert(0, follow)


def clinic_incidents(sweeper: Sweeper) -> list[dict[str, Any]]:
    return [i for i in sweeper.incidents() if i["sender"] == CLINIC]


def test_a_please_delete_follow_up_is_one_incident_that_says_so(sweeper: Sweeper) -> None:
    follow_up(sweeper, "Por favor, eliminen el correo anterior")

    assert sweeper.run("sweep").exit_code == 0

    clinic = clinic_incidents(sweeper)
    assert len(clinic) == 1 and clinic[0]["messages"] == 2
    assert clinic[0]["unique_exposed"] == clinic[0]["largest_batch"]
    assert "exposed again by 1 later message" in clinic[0]["reason"]


def test_reclassify_regroups_a_follow_up_placed_apart(sweeper: Sweeper) -> None:
    follow_up(sweeper, "Scusate: cancellate il messaggio precedente")
    config = sweeper.config.read_text() + "\n[incidents]\nreexposure_days = 0\n"
    sweeper.config.write_text(config)
    assert sweeper.run("sweep").exit_code == 0
    assert len(clinic_incidents(sweeper)) == 2

    sweeper.config.write_text(config.replace("reexposure_days = 0", "reexposure_days = 3"))
    result = sweeper.run("reclassify")

    assert result.exit_code == 0, result.output
    assert "1 merged into an earlier incident" in result.output
    clinic = clinic_incidents(sweeper)
    assert len(clinic) == 1 and clinic[0]["messages"] == 2
