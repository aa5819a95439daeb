"""Fuzzing the parser and the classifier with Graph-shaped JSON and hostile addresses.

Whatever Graph sends, reading and judging a message never raises, and the counts agree
with each other. A page judged from its raw JSON (the quick path over To and Cc, then the
full judgement) makes the findings and the malformed count that parsing it whole and
classifying each message made, however the JSON is written. ``make test`` runs a few
hundred examples of each property; ``make fuzz`` runs the same properties with the "fuzz"
profile (many thousands, no deadline).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from sweeper.rules.classify import (
    Finding,
    Policy,
    Verdict,
    classify,
    judge,
    parse_address,
    read_message,
)
from sweeper.rules.pages import classify_page, may_find
from sweeper.rules.severity import LEVELS

pytestmark = pytest.mark.slow  # the fuzz suite: properties over Graph's JSON and addresses

OWN = ("northwick.example", "ünïversity.example")
MAILBOX = "officer@northwick.example"

# -- strategies ------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),  # what JSON parsers hold
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
odd = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(max_size=8), scalars, max_size=3),
)
"""Any JSON value Graph should not send where an object or a string belongs."""

label = st.text(alphabet="abcxyz09-ßüé例пЖ", min_size=1, max_size=8)
domains = st.one_of(
    st.sampled_from(OWN),
    st.sampled_from([d.upper() for d in OWN]),
    st.builds(
        lambda labels, top: ".".join([*labels, top]),
        st.lists(label, min_size=1, max_size=3),
        st.sampled_from(["example", "com", "org", "CO.UK", "рф", "xn--p1ai", ""]),
    ),
)
local_parts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
addresses = st.one_of(
    st.builds("{}@{}".format, local_parts, domains),
    st.emails(),
    st.emails().map(str.upper),
    st.emails().map("SMTP:{}".format),
    st.emails().map(" <{}> ".format),
    st.just("/O=EXCHANGELABS/OU=EXCHANGE ADMINISTRATIVE GROUP/CN=RECIPIENTS/CN=3B2A"),
    st.text(max_size=30),
)
email_addresses = st.one_of(
    st.fixed_dictionaries({"address": addresses}, optional={"name": st.one_of(st.text(), odd)}),
    st.fixed_dictionaries({}, optional={"address": odd, "name": odd}),
    odd,
)
recipients = st.one_of(st.fixed_dictionaries({"emailAddress": email_addresses}), odd)
recipient_lists = st.one_of(st.lists(recipients, max_size=40), odd)
times = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat().replace("+00:00", "Z")),
    st.datetimes().map(lambda t: t.isoformat()),
    st.text(max_size=25),
    odd,
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=20), odd),
        "internetMessageId": st.one_of(st.text(max_size=30), odd),
        "conversationId": st.one_of(st.text(max_size=20), odd),
        "subject": st.one_of(st.text(max_size=80), odd),
        "sentDateTime": times,
        "from": st.one_of(st.fixed_dictionaries({"emailAddress": email_addresses}), odd),
        "sender": st.one_of(st.fixed_dictionaries({"emailAddress": email_addresses}), odd),
        "toRecipients": recipient_lists,
        "ccRecipients": recipient_lists,
        "bccRecipients": recipient_lists,
    },
)
any_json = st.recursive(scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner))
thresholds = st.integers(min_value=1, max_value=12)


def policy(threshold: int) -> Policy:
    return Policy.build(OWN, threshold)


def listed(message: dict[str, Any], key: str) -> list[Any]:
    value = message.get(key)
    return value if isinstance(value, list) else []


def parsed_whole(values: list[Any], rules: Policy) -> tuple[list[Finding], int]:
    """How the sweep judged a page parsed whole: its findings, and its values that were no
    message object (malformed)."""
    findings = [classify(MAILBOX, m, rules) for m in values if isinstance(m, dict)]
    return [f for f in findings if f is not None], sum(not isinstance(m, dict) for m in values)


def from_raw(entries: list[msgspec.Raw] | list[bytes], rules: Policy) -> tuple[list[Finding], int]:
    judged = classify_page(MAILBOX, entries, rules)
    return judged.findings, judged.malformed


def raw_values(page: bytes) -> list[msgspec.Raw]:
    """A page's values, each its own raw JSON text, as the gateway hands them on."""
    return msgspec.json.decode(page, type=list[msgspec.Raw])


def shaped_for_the_quick_path(message: dict[str, Any]) -> bool:
    """To and Cc missing, null, or lists of objects whose emailAddress is missing, null or
    an object: what the typed decoding must take, without falling back."""

    def fits(entry: object) -> bool:
        return isinstance(entry, dict) and isinstance(entry.get("emailAddress", {}), dict | None)

    lists = [message.get(key) for key in ("toRecipients", "ccRecipients")]
    return all(v is None or (isinstance(v, list) and all(map(fits, v))) for v in lists)


@st.composite
def written(draw: st.DrawFn, value: Any) -> str:
    """``value`` as JSON text written any valid way: white space, escapes, repeated keys."""
    space = st.sampled_from(["", " ", "\n", "\t ", "\r\n  "])
    if isinstance(value, dict):
        members = []
        for key, item in value.items():
            if draw(st.booleans()) and draw(st.booleans()):  # an earlier value the last replaces
                members.append(f"{draw(written(key))}:{draw(written(draw(odd)))}")
            members.append(f"{draw(space)}{draw(written(key))}{draw(space)}:{draw(written(item))}")
        return "{" + ",".join(members) + draw(space) + "}"
    if isinstance(value, list):
        return "[" + ",".join(draw(space) + draw(written(item)) for item in value) + "]"
    if isinstance(value, str):
        escape = draw(st.sets(st.integers(0, max(len(value) - 1, 0)), max_size=4))
        chars = [
            orjson.dumps(c).decode()[1:-1] if i not in escape else _escaped(c)
            for i, c in enumerate(value)
        ]
        return '"' + "".join(chars) + '"'
    return orjson.dumps(value).decode()


def _escaped(char: str) -> str:
    units = char.encode("utf-16-be")
    return "".join(f"\\u{int.from_bytes(units[i : i + 2]):04x}" for i in range(0, len(units), 2))


# -- properties ------------------------------------------------------------------------------


@given(messages, thresholds)
def test_reading_and_judging_never_raise_and_the_counts_agree(
    message: dict[str, Any], threshold: int
) -> None:
    rules = policy(threshold)
    facts = read_message(MAILBOX, message)
    finding = classify(MAILBOX, message, rules)

    assert facts.to_count == len(listed(message, "toRecipients"))
    assert facts.cc_count == len(listed(message, "ccRecipients"))
    assert facts.bcc_count == len(listed(message, "bccRecipients"))
    assert len(facts.recipients) <= facts.to_count + facts.cc_count
    assert len({r.address for r in facts.recipients}) == len(facts.recipients)
    for person in facts.recipients:  # stored in canonical form: reading it again changes nothing
        assert parse_address(person.address) == (person.address, person.domain)
    external = [r for r in facts.recipients if not rules.is_internal_domain(r.domain)]
    assert (finding is not None) == (len(external) >= threshold)
    assert finding == judge(facts, rules)  # the quick path and the full one agree
    if finding is not None:
        assert list(finding.exposed) == external
        assert finding.visible_external_count == len(external)
        assert sorted(finding.external_domains) == sorted({r.domain for r in external})
        assert finding.severity in LEVELS
        assert finding.facts.message_key


@given(any_json, thresholds)
def test_any_json_value_at_all_is_read_without_raising(value: Any, threshold: int) -> None:
    message = value if isinstance(value, dict) else {"toRecipients": value}
    read_message(MAILBOX, message)
    classify(MAILBOX, message, policy(threshold))


@given(addresses)
def test_an_address_parses_to_a_fixed_point_or_to_nothing(raw: str) -> None:
    parsed = parse_address(raw)
    if parsed is not None:
        address, domain = parsed
        assert address.endswith("@" + domain) and "." in domain
        assert address == address.lower() and not any(c.isspace() for c in address)
        assert parse_address(address) == parsed
        if raw.upper().lower() == raw.lower():  # not so for ß, which upper-cases to SS
            assert parse_address(raw.upper()) in (parsed, None)  # case makes no other person


@given(messages, thresholds)
def test_a_message_judged_the_same_after_a_trip_through_json(
    message: dict[str, Any], threshold: int
) -> None:
    again = orjson.loads(orjson.dumps(message))
    assert classify(MAILBOX, again, policy(threshold)) == classify(
        MAILBOX, message, policy(threshold)
    )


@given(messages, thresholds)
def test_the_quick_path_decides_as_the_full_judgement(
    message: dict[str, Any], threshold: int
) -> None:
    rules = policy(threshold)
    text = orjson.dumps(message)
    full = classify(MAILBOX, orjson.loads(text), rules)
    quick = may_find(text, rules)

    event("quick path" if quick is not None else "full path: not shaped for the quick one")
    assert quick in (None, full is not None)
    if shaped_for_the_quick_path(message):
        assert quick is not None
    assert from_raw([text], rules) == ([full] if full is not None else [], 0)


@given(st.lists(st.one_of(messages, any_json), max_size=8), thresholds)
def test_a_page_of_any_values_is_judged_from_raw_json_as_when_parsed_whole(
    values: list[Any], threshold: int
) -> None:
    rules = policy(threshold)
    page = orjson.dumps(values)

    assert from_raw(raw_values(page), rules) == parsed_whole(orjson.loads(page), rules)


@given(st.data(), st.lists(messages, min_size=1, max_size=3), thresholds)
def test_json_written_any_valid_way_is_judged_as_when_parsed_whole(
    data: st.DataObject, values: list[dict[str, Any]], threshold: int
) -> None:
    rules = policy(threshold)
    page = data.draw(written(values)).encode()

    assert orjson.loads(page) == orjson.loads(orjson.dumps(values))  # the writer is right
    assert from_raw(raw_values(page), rules) == parsed_whole(orjson.loads(page), rules)


@given(addresses, st.sampled_from([OWN, ("gmail.com",), ()]))
def test_a_cached_verdict_is_the_parsed_address_and_whether_it_is_inside(
    raw: str, own: tuple[str, ...]
) -> None:
    rules = Policy.build(own)
    parsed = parse_address(raw)
    expected = None if parsed is None else Verdict(*parsed, rules.is_internal_domain(parsed[1]))

    assert rules.verdict(raw) == expected
    assert rules.verdict(raw) == expected  # and from the cache
