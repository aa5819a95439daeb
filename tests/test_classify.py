"""The classifier: pure functions, so each judgement call is one small test."""

from __future__ import annotations

import sys
from dataclasses import replace
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.messages import message, r

from sweeper.addresses import normalise_domain
from sweeper.rules import classify as classify_module
from sweeper.rules.classify import (
    Policy,
    Verdict,
    classify,
    parse_address,
    visible_external,
)

POLICY = Policy.build(["northwick.example", "northwick-trust.example"], min_visible_external=10)


def people(count: int, domain: str = "gmail.com", start: int = 0) -> list[dict[str, Any]]:
    return [r(f"person{i}@{domain}", f"Person {i}") for i in range(start, start + count)]


def count(msg: dict[str, Any]) -> int:
    return len(visible_external(msg, POLICY))


def test_the_same_person_in_to_and_cc_in_another_case_counts_once() -> None:
    msg = message(people(3), [r("PERSON0@GMAIL.COM"), r("Person1@Gmail.com")])
    assert count(msg) == 3


def test_the_first_field_an_address_appears_in_is_kept() -> None:
    exposed = visible_external(message(people(1), people(1)), POLICY)
    assert [(e.address, e.field, e.name) for e in exposed] == [
        ("person0@gmail.com", "to", "Person 0")
    ]


@pytest.mark.parametrize(
    ("address", "external"),
    [
        ("a@northwick.example", False),
        ("a@NORTHWICK.EXAMPLE", False),
        ("a@mail.northwick.example", False),  # subdomain of a verified domain
        ("a@deep.mail.northwick.example", False),
        ("a@northwick-trust.example", False),  # declared as the organisation's own
        ("a@notnorthwick.example", True),  # a suffix of the text, not a subdomain
        ("a@northwick.example.evil.example", True),
        ("a@gmail.com", True),
    ],
)
def test_internal_means_an_organisation_domain_or_a_subdomain_of_one(
    address: str, external: bool
) -> None:
    assert count(message([r(address)])) == int(external)


@pytest.mark.parametrize(
    "entry",
    [
        r("/o=ExchangeLabs/ou=Exchange Administrative Group/cn=Recipients/cn=abc-j"),
        r(...),  # emailAddress without address
        r(None),
        r(42),
        r(""),
        r("no-at-sign"),
        r("user@localhost"),
        {"emailAddress": None},
        {"something": "else"},
        "a string where an object belongs",
        None,
    ],
)
def test_an_entry_without_an_internet_address_is_never_external(entry: Any) -> None:
    assert count(message([entry, *people(2)])) == 2


def test_an_empty_to_with_everyone_in_cc_is_still_visible() -> None:
    assert count(message([], people(12))) == 12


def test_recipient_lists_of_the_wrong_type_are_read_as_empty() -> None:
    msg = message(people(10))
    msg["ccRecipients"] = "not a list"
    msg["toRecipients"] = None
    assert count(msg) == 0
    assert classify("a@northwick.example", msg, POLICY) is None


def test_a_distribution_list_is_one_address() -> None:
    lists = [r("all-staff@northwick.example"), r("members@partner.example", "Members list")]
    work = partial(people, domain="firm.example")  # private people would make the floor's
    assert count(message(lists + work(8))) == 9
    assert classify("x@northwick.example", message(lists + work(8)), POLICY) is None
    assert classify("x@northwick.example", message(lists + work(9)), POLICY) is not None


def test_exactly_at_the_threshold_is_a_finding_and_one_below_is_not() -> None:
    work = partial(people, domain="firm.example")  # private people would make the floor's
    assert classify("x@northwick.example", message(work(10)), POLICY) is not None
    assert classify("x@northwick.example", message(work(9)), POLICY) is None


def test_bcc_recipients_never_count_as_exposed() -> None:
    msg = message([r("sender@northwick.example")], bcc=people(300))
    assert count(msg) == 0
    assert classify("x@northwick.example", msg, POLICY) is None


def test_a_finding_records_the_counts_domains_and_bcc() -> None:
    msg = message(people(6, "gmail.com") + [r("sender@northwick.example")], people(5, "b.example"))
    msg["bccRecipients"] = people(2, "c.example")
    finding = classify("Sender@northwick.example", msg, POLICY)

    assert finding is not None
    facts = finding.facts
    assert (facts.to_count, facts.cc_count, facts.bcc_count) == (7, 5, 2)
    assert finding.visible_external_count == 11
    assert len(facts.recipients) == 12  # the internal sender too, kept for re-judging
    assert finding.external_domains == ("gmail.com", "b.example")
    assert facts.bcc_used is True
    assert facts.message_key == "<1@example>"
    assert facts.sent_at == "2026-11-21T10:00:00Z"
    assert facts.sender == "sender@northwick.example"


def test_the_key_falls_back_to_the_graph_id_then_to_the_content() -> None:
    msg = message(people(10))
    del msg["internetMessageId"]
    assert classify("x@northwick.example", msg, POLICY).facts.message_key == "AAMkAG1"  # type: ignore[union-attr]
    del msg["id"]
    first = classify("x@northwick.example", msg, POLICY)
    second = classify("x@northwick.example", dict(msg), POLICY)
    assert first is not None and second is not None
    assert first.facts.message_key.startswith("sha256:")
    assert first.facts.message_key == second.facts.message_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane.Doe@Example.COM", ("jane.doe@example.com", "example.com")),
        ("  <jane@example.com> ", ("jane@example.com", "example.com")),
        ("SMTP:jane@example.com", ("jane@example.com", "example.com")),
        ("jürgen@bücher.example", ("jürgen@xn--bcher-kva.example", "xn--bcher-kva.example")),
        ("a@example.com.", ("a@example.com", "example.com")),
        ("two words@example.com", None),
        ("@example.com", None),
        ("a@", None),
    ],
)
def test_addresses_are_put_in_one_canonical_form(raw: str, expected: Any) -> None:
    assert parse_address(raw) == expected


@pytest.mark.slow
def test_whitespace_inside_an_address_is_any_character_str_isspace_calls_whitespace() -> None:
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    assert len(spaces) > 20  # not only ASCII: NBSP, the ideographic space, line separators...
    for space in spaces:
        assert parse_address(f"jane{space}doe@example.com") is None, hex(ord(space))
    others = (chr(c) for c in range(sys.maxunicode + 1) if chr(c) not in spaces and c != ord("@"))
    assert all(parse_address(f"jane{other}doe@example.com") is not None for other in others)


def test_a_unicode_domain_and_its_punycode_are_the_same_domain() -> None:
    assert normalise_domain("BÜCHER.example") == normalise_domain("xn--bcher-kva.example")
    msg = message([r("anna@bücher.example"), r("ANNA@xn--bcher-kva.example")])
    assert count(msg) == 1


addresses = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.from_regex(r"[a-z][a-z0-9.]{0,8}", fullmatch=True),
    st.sampled_from(["gmail.com", "northwick.example", "x.northwick.example", "partner.example"]),
)


@given(st.lists(addresses, max_size=30), st.lists(addresses, max_size=30), st.randoms())
def test_order_and_letter_case_never_change_the_count(
    to: list[str], cc: list[str], rnd: Any
) -> None:
    original = message([r(a) for a in to], [r(a) for a in cc])
    everyone = [a.upper() for a in to + cc]
    rnd.shuffle(everyone)
    shuffled = message([r(a) for a in everyone])
    assert count(original) == count(shuffled)


@given(st.lists(addresses, max_size=20), addresses)
def test_adding_a_recipient_never_lowers_the_count(to: list[str], extra: str) -> None:
    before = count(message([r(a) for a in to]))
    after = count(message([r(a) for a in [*to, extra]]))
    assert after in (before, before + 1)


# -- the verdict cache behind the quick path (sweeper.rules.pages) ---------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "Jane.Doe@Example.COM",
        "SMTP:jane@northwick.example",
        " <jane@Mail.Northwick.Example.> ",
        "jürgen@bücher.example",
        "/o=ExchangeLabs/ou=Exchange Administrative Group/cn=Recipients/cn=abc",
        "user@localhost",
        "",
    ],
)
def test_a_verdict_is_the_parsed_address_and_whether_it_is_inside(raw: str) -> None:
    parsed = parse_address(raw)
    expected = None if parsed is None else Verdict(*parsed, POLICY.is_internal_domain(parsed[1]))

    assert POLICY.verdict(raw) == expected
    assert POLICY.verdict(raw) == expected  # from the cache, the same


def test_the_cache_keeps_a_bounded_number_of_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classify_module, "VERDICTS_KEPT", 64)
    policy = Policy.build(["northwick.example"], min_visible_external=1)
    for i in range(1000):
        address = f"person{i}@gmail.com"
        assert policy.verdict(address) == (address, "gmail.com", False)

    assert policy.verdict.cache_info().currsize == 64  # type: ignore[attr-defined]


def test_a_policy_changed_with_replace_has_its_own_verdicts() -> None:
    policy = Policy.build(["northwick.example"])
    policy.verdict("a@gmail.com")
    other = replace(policy, internal_domains=frozenset({"gmail.com"}))

    assert other.verdict("a@gmail.com") == ("a@gmail.com", "gmail.com", True)
    assert policy.verdict("a@gmail.com") == ("a@gmail.com", "gmail.com", False)
