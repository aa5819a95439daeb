"""Pages judged from raw JSON: the quick path over To and Cc, and the cached verdicts.

Whatever a page holds, its findings and its malformed count are those of parsing it whole
and classifying each message as sweeper always did (``today`` below). The properties over
generated messages and pages are in ``test_fuzz.py``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest
from support.messages import message, r

from sweeper.rules.classify import Finding, Policy, classify
from sweeper.rules.pages import classify_page, may_find, value_of

POLICY = Policy.build(["northwick.example", "bücher.example"], min_visible_external=3)
MAILBOX = "officer@northwick.example"


def entries(values: list[Any]) -> list[msgspec.Raw]:
    """A page's values as the gateway hands them on: each one's raw JSON text."""
    return msgspec.json.decode(orjson.dumps(values), type=list[msgspec.Raw])


def today(values: list[Any], policy: Policy = POLICY) -> tuple[list[Finding], int]:
    """What the sweep made of a page parsed whole: findings, and values that were no object."""
    findings = [classify(MAILBOX, m, policy) for m in values if isinstance(m, dict)]
    return [f for f in findings if f is not None], sum(not isinstance(m, dict) for m in values)


def judged(page: list[msgspec.Raw] | list[bytes], policy: Policy = POLICY) -> tuple[list, int]:
    result = classify_page(MAILBOX, page, policy)
    return result.findings, result.malformed


OUTSIDE = [r(f"person{i}@gmail.com") for i in range(5)]


def test_a_page_of_messages_and_junk_is_judged_as_when_parsed_whole() -> None:
    values: list[Any] = [
        message(OUTSIDE[:3]),  # a finding
        message(OUTSIDE[:2]),  # one short
        None,
        "a string where a message belongs",
        42,
        [message(OUTSIDE)],
        {},
        message("not a list", OUTSIDE),  # typed decoding fails; parsed whole, still judged
        message([None, "x", 7, *OUTSIDE[:3]]),  # odd recipients beside real ones
        message([{"emailAddress": "no object"}, *OUTSIDE[2:]]),
        message(None, OUTSIDE[1:4], subject=None, id=12),  # fields of the wrong type
    ]

    findings, malformed = judged(entries(values))

    assert (findings, malformed) == today(values)
    assert malformed == 4
    assert [f.visible_external_count for f in findings] == [3, 5, 3, 3, 3]


def test_a_single_recipient_is_decided_without_reading_its_address() -> None:
    policy = Policy.build(["northwick.example"], min_visible_external=3)
    page = entries([message(OUTSIDE[:1]), message([], [r("b@gmail.com")])])

    assert judged(page, policy) == ([], 0)
    assert policy.verdict.cache_info().misses == 0  # type: ignore[attr-defined]


def test_under_the_threshold_two_personal_addresses_are_read_for_the_floor() -> None:
    policy = Policy.build(["northwick.example"], min_visible_external=10)
    pair = message([r("a@gmail.com")], [r("b@gmail.com")], subject="Your HIV clinic results")
    quiet = message([r("a@gmail.com")], [r("b@gmail.com")], subject="Lunch")

    findings, malformed = judged(entries([pair, quiet]), policy)

    assert (len(findings), malformed) == (1, 0)  # the pair with a revealing subject only


@pytest.mark.parametrize(
    ("to", "external"),
    [
        ([r("A@GMAIL.COM"), r("a@gmail.com"), r("SMTP:a@gmail.com"), r(" <a@gmail.com> ")], 1),
        ([r("x@bücher.example"), r("x@xn--bcher-kva.example"), r("x@mail.northwick.example")], 0),
        ([r("/o=ExchangeLabs/ou=Exchange Administrative Group/cn=Recipients/cn=ab")] * 4, 0),
        ([r(None), r(3.5), r({"a": 1}), r(""), r("user@localhost"), r("two words@x.example")], 0),
        ([r("jürgen@bücher.de"), r("JÜRGEN@BÜCHER.DE"), r("jürgen@xn--bcher-kva.de")], 1),
        ([r("a@gmail.com"), r("b@gmail.com"), {"emailAddress": {}}, {}, r("c@gmail.com.")], 3),
    ],
)
def test_the_quick_path_counts_addresses_in_their_canonical_form(to: Any, external: int) -> None:
    value = message(to)
    full = classify(MAILBOX, value, POLICY)

    assert may_find(orjson.dumps(value), POLICY) is (external >= 3)
    assert (full is not None) is (external >= 3)
    assert judged([orjson.dumps(value)]) == today([value])


@pytest.mark.parametrize(
    "text",
    [
        # the same key twice: the last one counts, as when parsed whole
        b'{"toRecipients":[{"emailAddress":{"address":"a@x.example"}}],"toRecipients":null}',
        b'{"toRecipients":null,"ccRecipients":[{"emailAddress":{"address":"a@x.example",'
        b'"address":"b@x.example"}},{"emailAddress":{"address":"c@x.example"}},'
        b'{"emailAddress":{"address":"d@x.example"}}]}',
        # keys written with escapes, and white space anywhere
        b' { "to\\u0052ecipients" : [ {"emailAddress":{"address":"a\\u0040x.example"}} ,'
        b'{"emailAddress":{"address":"b@x.example"}},{"emailAddress":{"address":"c@x.example"}}'
        b" ] } ",
    ],
)
def test_json_written_unusually_is_read_as_when_parsed_whole(text: bytes) -> None:
    assert judged([text]) == today([orjson.loads(text)])


def test_a_message_that_is_no_json_orjson_reads_is_malformed_when_judged_in_full() -> None:
    many = ",".join(f'{{"emailAddress":{{"address":"p{i}@gmail.com"}}}}' for i in range(3))
    finding_sized = f'{{"subject":"\xff","toRecipients":[{many}]}}'.encode("latin-1")
    address_unreadable = b'{"toRecipients":[{"emailAddress":{"address":"\xff@x.example"}}]}'

    assert judged([finding_sized, address_unreadable]) == ([], 2)
    assert value_of(finding_sized) is None


def test_a_message_the_quick_path_clears_is_never_decoded_whole() -> None:
    # Text orjson refuses, outside To and Cc, in a message to one person: no finding, and
    # nothing to count; a page parsed whole used to fail the mailbox for it.
    text = b'{"subject":"\xff","toRecipients":[{"emailAddress":{"address":"a@gmail.com"}}]}'

    assert judged([text]) == ([], 0)


def test_a_finding_is_the_same_finding_as_classify_makes_field_for_field() -> None:
    value = message(OUTSIDE, [r("sender@northwick.example")], subject="Rota")
    value["bccRecipients"] = [r("hidden@gmail.com")]

    (finding,), malformed = judged(entries([value]))

    assert finding == classify(MAILBOX, value, POLICY)
    assert (finding.facts.to_count, finding.facts.cc_count, finding.facts.bcc_count) == (5, 1, 1)
    assert finding.facts.message_key == "<1@example>"


def test_department_and_job_title_reach_the_judgement() -> None:
    value = message(OUTSIDE)
    page = classify_page(MAILBOX, entries([value]), POLICY, department="HR", job_title="Nurse")

    assert page.findings == [classify(MAILBOX, value, POLICY, department="HR", job_title="Nurse")]


# -- the verdict cache, seen from a page ----------------------------------------------------


def test_each_distinct_raw_address_is_placed_once_per_policy() -> None:
    policy = Policy.build(["northwick.example"], min_visible_external=2)
    page = entries([message([r("a@gmail.com"), r("A@gmail.com"), r("b@northwick.example")])] * 50)

    judged(page, policy)

    info = policy.verdict.cache_info()  # type: ignore[attr-defined]
    assert (info.misses, info.hits) == (3, 147)
