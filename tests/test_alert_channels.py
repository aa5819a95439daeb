"""The Teams and webhook alert channels: what each says, and how it is delivered.

The payloads are checked whole: the Teams card against the Adaptive Card 1.4 schema
(tests/fixtures), the webhook's JSON field by field.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import cmarkgfm
import jsonschema
import orjson
import pytest
from cmarkgfm.cmark import Options

from sweeper.present.escape import mark_bidi, one_line
from sweeper.present.teams import teams_payload
from sweeper.present.webhook import webhook_body, webhook_payload
from sweeper.rules.alerts import Alert, trial_alert

SCHEMA = Path(__file__).parent / "fixtures" / "adaptive-card-1.4.schema.json"
INTERNAL = ("northwick.example",)


def an_alert(**changes: Any) -> Alert:
    alert = Alert(
        incident_id=12,
        kind="new",
        key="new:high",
        severity="high",
        unique_exposed=40,
        previous_exposed=None,
        previous_severity=None,
        sender="victimcare@northwick.example",
        sent_by=None,
        subject="Support group: next meeting",
        reason="40 outside addresses in To and Cc, 31 of them personal mail",
        first_sent_at="2026-12-02T09:00:00Z",
        last_sent_at="2026-12-02T09:00:00Z",
        messages=1,
        detected_at="2026-12-02T10:00:00Z",
        deadline="2026-12-05T10:00:00Z",
        top_domains=("gmail.com", "outlook.com"),
        samples=("j***@gmail.com", "a***@outlook.com"),
    )
    return dataclasses.replace(alert, **changes)


ALERTS = {
    "new": an_alert(),
    "rose": an_alert(
        kind="rose", key="rose:critical", severity="critical", previous_severity="high"
    ),
    "grew": an_alert(kind="grew", key="grew:1136", unique_exposed=1136, previous_exposed=700),
    "on behalf": an_alert(
        sent_by="nurse.ellis@northwick.example", messages=3, last_sent_at="2026-12-02T09:40:00Z"
    ),
    "hostile": an_alert(subject="[click](https://evil.example) **now**\n- forged <at>x</at>"),
    "test": trial_alert("2026-12-02T10:00:00Z"),
}

HOSTILE = (
    "[Verify your account](https://evil.example/login)",
    "**URGENT** _read_ ~~this~~",
    "Re: rota\nSeverity: low\r\n- forged line\u2028Deadline: none",
    "<at>Jane Doe</at> <b>bold</b>",
    "\u202e(https://evil.example) \u2066gnp.exe\u2069",
    "ctrl\x1b[31m\x07\x9b\x85 end",
    "{{DATE(2017-02-14T06:08:39Z, SHORT)}}",
    "1. first",
    "# heading",
    "write to jane.doe@gmail.com or www.evil.example",
)


def card_of(payload: dict[str, Any]) -> dict[str, Any]:
    [attachment] = payload["attachments"]
    card: dict[str, Any] = attachment["content"]
    return card


def facts_of(card: dict[str, Any]) -> dict[str, str]:
    return {
        fact["title"]: fact["value"]
        for block in card["body"]
        if block["type"] == "FactSet"
        for fact in block["facts"]
    }


def texts_of(card: dict[str, Any]) -> list[str]:
    """Every piece of text on the card a client reads as Markdown."""
    return [block["text"] for block in card["body"] if block["type"] == "TextBlock"] + [
        value for title_value in facts_of(card).items() for value in title_value
    ]


def rendered(text: str) -> tuple[set[str], str]:
    """A CommonMark renderer's tags and visible text for ``text`` (raw HTML let through).

    GitHub's renderer links a bare address: a mail link to the organisation's own address
    (the sender's) is no harm, and is left out of the tags."""
    html = cmarkgfm.github_flavored_markdown_to_html(text, options=Options.CMARK_OPT_UNSAFE)
    html = re.sub(r'<a href="mailto:[\w.]+@northwick\.example">', "", html)
    tags = set(re.findall(r"<([a-z0-9]+)", html))
    visible = re.sub(r"<[^>]+>", "", html)
    return tags, visible.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# -- the Teams card -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def card_schema() -> jsonschema.Draft6Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft6Validator.check_schema(schema)
    return jsonschema.Draft6Validator(schema)


@pytest.mark.parametrize("name", ALERTS)
def test_the_teams_card_is_valid_against_the_adaptive_card_1_4_schema(
    name: str, card_schema: jsonschema.Draft6Validator
) -> None:
    payload = teams_payload(ALERTS[name], "Europe/London", internal=INTERNAL)

    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert list(card_schema.iter_errors(card)) == []


def test_the_schema_check_would_catch_a_card_teams_cannot_read(
    card_schema: jsonschema.Draft6Validator,
) -> None:
    card = card_of(teams_payload(an_alert(), "UTC"))
    card["body"][0]["colour"] = "Attention"  # a misspelt property

    assert list(card_schema.iter_errors(card)) != []


def test_the_teams_card_says_what_happened_and_what_to_do() -> None:
    card = card_of(teams_payload(ALERTS["on behalf"], "Europe/Paris", internal=INTERNAL))

    heading = card["body"][0]
    assert heading["text"] == "sweeper: high incident: 40 people exposed"
    assert heading["color"] == "Attention"
    assert facts_of(card) == {
        "Severity": "high",
        "People exposed": "40",
        "Sender": "victimcare@northwick.example, sent by nurse.ellis@northwick.example on "
        "its behalf",
        "Subject": "Support group: next meeting",
        "Why": "40 outside addresses in To and Cc, 31 of them personal mail",
        "Messages": "3, sent from 2 Dec 2026 10:00 Europe/Paris (+01:00) to 2 Dec 2026 10:40 "
        "Europe/Paris (+01:00)",
        "Detected": "2 Dec 2026 11:00 Europe/Paris (+01:00)",
        "Article 33 deadline": "5 Dec 2026 11:00 Europe/Paris (+01:00)",
    }
    command = card["body"][-1]
    assert command == {
        "type": "TextBlock",
        "text": "sweeper incident show 12",
        "fontType": "Monospace",
        "wrap": True,
        "spacing": "None",
    }
    assert card["fallbackText"] == "sweeper: high incident: 40 people exposed"


@pytest.mark.parametrize(
    ("name", "title", "value"),
    [
        ("rose", "Severity", "critical (was high at the last alert)"),
        ("grew", "People exposed", "1136 (was 700 at the last alert)"),
        ("new", "Messages", "1, sent 2 Dec 2026 09:00 UTC"),
    ],
)
def test_the_teams_card_shows_what_changed_since_the_last_alert(
    name: str, title: str, value: str
) -> None:
    assert facts_of(card_of(teams_payload(ALERTS[name], "UTC")))[title] == value


def test_the_test_card_is_about_no_incident() -> None:
    card = card_of(teams_payload(ALERTS["test"], "UTC"))
    words = " ".join(texts_of(card))

    assert card["body"][0]["text"] == "sweeper test alert: this channel works (no incident)"
    assert "color" not in card["body"][0]
    assert "It is about no incident" in words
    assert "incident show" not in words and "Article 33" not in words
    assert facts_of(card)["Sent"] == "2 Dec 2026 10:00 UTC"


def test_addresses_on_the_teams_card_are_masked_as_in_the_digest() -> None:
    alert = an_alert(subject="for jane.doe@gmail.com and dpo@northwick.example")

    inside = facts_of(card_of(teams_payload(alert, "UTC", internal=INTERNAL)))
    alone = facts_of(card_of(teams_payload(alert, "UTC")))

    assert inside["Subject"] == "for j\\*\\*\\*@gmail.com and dpo@northwick.example"
    assert inside["Sender"] == "victimcare@northwick.example"
    assert alone["Subject"] == "for j\\*\\*\\*@gmail.com and d\\*\\*\\*@northwick.example"
    assert alone["Sender"] == "v\\*\\*\\*@northwick.example"  # no domains given: all masked


@pytest.mark.parametrize("subject", HOSTILE)
def test_a_hostile_subject_is_plain_text_on_the_teams_card(subject: str) -> None:
    alert = an_alert(subject=subject, sent_by=subject, reason=subject)
    card = card_of(teams_payload(alert, "UTC", internal=INTERNAL))
    shown = facts_of(card)["Subject"]

    for text in texts_of(card):
        tags, _ = rendered(text)
        assert tags <= {"p"}, text  # no link, emphasis, list, heading, code or HTML
        assert "](" not in text and "{{" not in text  # not even where escapes are ignored
    _, visible = rendered(shown)
    expected = mark_bidi(one_line(subject.replace("jane.doe@", "j***@"))).strip()
    defanged = expected.replace("https://", "https[:]//").replace("www.", "www[.]")
    assert visible.strip() == defanged
    body = orjson.dumps(teams_payload(alert, "UTC")).decode()
    assert not re.search(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", body)


# -- the webhook's JSON ---------------------------------------------------------------------


def test_the_webhook_payload_has_the_recommended_shape_and_every_figure() -> None:
    payload = webhook_payload(ALERTS["grew"], internal=INTERNAL, now="2026-12-02T10:05:00Z")

    assert payload == {
        "type": "incident.alert",
        "timestamp": "2026-12-02T10:05:00Z",
        "data": {
            "incident_id": 12,
            "kind": "grew",
            "key": "grew:1136",
            "headline": "sweeper: high incident grew to 1136 people: 1136 people exposed",
            "severity": "high",
            "previous_severity": None,
            "people_exposed": 1136,
            "previous_people_exposed": 700,
            "sender": "victimcare@northwick.example",
            "sent_by": None,
            "subject": "Support group: next meeting",
            "reason": "40 outside addresses in To and Cc, 31 of them personal mail",
            "messages": 1,
            "first_sent_at": "2026-12-02T09:00:00Z",
            "last_sent_at": "2026-12-02T09:00:00Z",
            "detected_at": "2026-12-02T10:00:00Z",
            "deadline": "2026-12-05T10:00:00Z",
            "top_domains": ["gmail.com", "outlook.com"],
            "samples": ["j***@gmail.com", "a***@outlook.com"],
            "command": "sweeper incident show 12",
        },
    }


def test_the_test_alert_has_its_own_event_type_and_no_incident() -> None:
    payload = webhook_payload(ALERTS["test"])

    assert payload["type"] == "incident.alert.test"
    assert payload["data"]["incident_id"] is None and payload["data"]["command"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", payload["timestamp"])


@pytest.mark.parametrize("subject", HOSTILE)
def test_a_hostile_subject_keeps_its_value_in_the_webhook_and_prints_harmlessly(
    subject: str,
) -> None:
    alert = an_alert(subject=subject, sent_by="jane.doe@gmail.com")
    body = webhook_body(webhook_payload(alert, internal=INTERNAL))

    text = body.decode("utf-8")
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", text)
    data = orjson.loads(body)["data"]
    assert data["subject"] == subject.replace("jane.doe@", "j***@")  # the value, masked
    assert data["sent_by"] == "j***@gmail.com"
