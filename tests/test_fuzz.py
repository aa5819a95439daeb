"""Fuzzing the parser and the classifier with Graph-shaped JSON and hostile addresses.

Whatever Graph sends, reading and judging a message never raises, and the counts agree
with each other. ``make test`` runs a few hundred examples of each property; ``make fuzz``
runs the same properties with the "fuzz" profile (many thousands, no deadline).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from sweeper.rules.classify import Policy, classify, judge, parse_address, read_message
from sweeper.rules.severity import LEVELS

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
