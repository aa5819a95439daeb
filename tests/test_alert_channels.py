"""The Teams and webhook alert channels: what each says, and how it is delivered.

The payloads are checked whole: the Teams card against the Adaptive Card 1.4 schema
(tests/fixtures), the webhook's JSON field by field. Delivery runs against real HTTP
receivers on loopback that verify Standard Webhooks signatures with the reference library
(``standardwebhooks``) and record what they were sent; the retry rules are also checked at
the transport, where any answer can be faked.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import cmarkgfm
import httpx
import jsonschema
import orjson
import pytest
from cmarkgfm.cmark import Options
from standardwebhooks import Webhook, WebhookVerificationError
from support.receivers import Receiver, closed_port

from sweeper.errors import AlertDeliveryError, ConfigError, describe_failure
from sweeper.outbound.posting import origin, post_json, retry_after
from sweeper.outbound.webhooks import (
    SECRET_VARIABLE,
    check_webhook_url,
    signed_by,
    standard_webhook_headers,
    webhook_secret,
)
from sweeper.present.escape import mark_bidi, one_line
from sweeper.present.teams import teams_payload
from sweeper.present.webhook import webhook_body, webhook_payload
from sweeper.rules.alerts import Alert, trial_alert

SCHEMA = Path(__file__).parent / "fixtures" / "adaptive-card-1.4.schema.json"
INTERNAL = ("northwick.example",)
KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(32)).decode()


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


# -- signing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"{}", webhook_body(webhook_payload(ALERTS["hostile"])), '{"s":"é ✓"}'.encode()],
)
def test_the_signature_is_the_one_the_reference_library_makes_and_verifies(body: bytes) -> None:
    now = int(datetime.now(UTC).timestamp())

    headers = standard_webhook_headers(SECRET, "msg_12_new-high", now, body)

    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    at = datetime.fromtimestamp(now, UTC)
    reference = Webhook(SECRET).sign("msg_12_new-high", at, body.decode())
    assert headers["webhook-signature"] == reference
    assert Webhook(SECRET).verify(body, headers) == json.loads(body)
    assert standard_webhook_headers(KEY, "msg_12_new-high", now, body) == headers  # key bytes


def test_a_signature_holds_only_for_its_secret_body_and_id() -> None:
    now = int(datetime.now(UTC).timestamp())
    headers = standard_webhook_headers(SECRET, "msg_1", now, b'{"a":1}')

    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(b'{"a":1}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"a":2}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"a":1}', {**headers, "webhook-id": "msg_2"})


@pytest.mark.parametrize("msg_id", ["", "msg.1", "msg 1", "msg_1\n"])
def test_a_webhook_id_with_a_dot_or_space_is_refused(msg_id: str) -> None:
    with pytest.raises(ValueError, match="webhook-id"):
        standard_webhook_headers(SECRET, msg_id, 1, b"{}")


def test_the_secret_is_read_from_its_variable_in_the_whsec_form() -> None:
    assert webhook_secret({SECRET_VARIABLE: f"  {SECRET}\n"}) == KEY
    unpadded = "whsec_" + base64.b64encode(bytes(25)).decode().rstrip("=")
    assert webhook_secret({SECRET_VARIABLE: unpadded}) == bytes(25)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "is not set"),
        ("   ", "is not set"),
        (base64.b64encode(KEY).decode(), "must start with whsec_"),
        ("whsec_not*base64!", "not whsec_ followed by base64"),
        ("whsec_" + base64.b64encode(bytes(16)).decode(), "16-byte key"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "65-byte key"),
    ],
)
def test_a_missing_or_malformed_secret_is_one_line_naming_the_variable(
    value: str | None, words: str
) -> None:
    env = {} if value is None else {SECRET_VARIABLE: value}

    with pytest.raises(ConfigError) as raised:
        webhook_secret(env)

    line, code = describe_failure(raised.value)
    assert code == 2 and "\n" not in line
    assert line.startswith(f"configuration error: {SECRET_VARIABLE}: ")
    assert words in line
    assert value is None or not value.strip() or value.strip() not in line


# -- the URL --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://prod-01.westeurope.logic.azure.com:443/workflows/a1/triggers/manual/paths/"
        "invoke?api-version=2016-06-01&sig=abc",
        "https://siem.example/hooks/sweeper",
        "http://127.0.0.1:8080/hook",
        "http://[::1]:8080/hook",
        "http://localhost/hook",
        "  https://siem.example/hook  ",
    ],
)
def test_an_https_or_loopback_url_is_taken(url: str) -> None:
    assert check_webhook_url("alerts.webhook.url", url) == url.strip()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://siem.example/hook?sig=s3cr3t", "must be https://"),
        ("http://127.0.0.2/hook?sig=s3cr3t", "must be https://"),
        ("ftp://siem.example/hook?sig=s3cr3t", "https:// URL naming a host"),
        ("siem.example/hook?sig=s3cr3t", "https:// URL naming a host"),
        ("https:///hook?sig=s3cr3t", "https:// URL naming a host"),
        ("https://siem.example:99999/hook?sig=s3cr3t", "not a valid URL"),
        ("https://siem.example/a hook?sig=s3cr3t", "spaces or control characters"),
        ("https://sweeper:s3cr3t@siem.example/hook", "user name or password"),
        ("", "is empty"),
    ],
)
def test_a_url_that_is_not_https_is_one_line_naming_the_setting(url: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        check_webhook_url("alerts.webhook.url", url)

    line, code = describe_failure(raised.value)
    assert code == 2 and "\n" not in line
    assert line.startswith("configuration error: alerts.webhook.url: ")
    assert words in line
    assert "s3cr3t" not in line and "/hook" not in line


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@Hooks.Example/path?sig=x", "https://hooks.example"),
        ("http://127.0.0.1:8080/p?q", "http://127.0.0.1:8080"),
        ("http://[::1]:9/p", "http://[::1]:9"),
        ("https://h.example:bad/p", "(a URL that is not valid)"),
        ("/relative?sig=x", "(a URL without a host)"),
    ],
)
def test_a_webhook_is_named_by_its_scheme_and_host_only(url: str, shown: str) -> None:
    assert origin(url) == shown


# -- delivery, at the transport -------------------------------------------------------------


class Slept(list[float]):
    """An injected sleep: records each wait and returns at once."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def answering(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[int]]:
    """A transport giving these answers in turn (the last one again after that)."""
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler), calls


def deliver(transport: httpx.MockTransport, slept: Slept, **kwargs: Any) -> int:
    url = "https://hooks.example/p?sig=x"
    return asyncio.run(post_json(url, b"{}", {}, sleep=slept, transport=transport, **kwargs))


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (400, "answered 400"),
        (401, "answered 401"),
        (404, "answered 404"),
        (410, "answered 410 Gone: it wants no more alerts"),
        (301, "answered 301: a redirect, not followed"),
        (308, "answered 308: a redirect, not followed"),
    ],
)
def test_an_answer_that_cannot_change_fails_at_once(status: int, words: str) -> None:
    transport, calls = answering(httpx.Response(status, headers={"location": "https://x/"}))
    slept = Slept()

    with pytest.raises(AlertDeliveryError) as raised:
        deliver(transport, slept)

    assert str(raised.value).startswith(f"the webhook at https://hooks.example {words}")
    assert raised.value.status == status
    assert len(calls) == 1 and slept == []


@pytest.mark.parametrize(
    ("header", "wait"),
    [("7", 7.0), ("0", 0.0), ("2.5", 2.5), ("soon", 0.5), (None, 0.5)],
)
def test_retry_after_in_seconds_is_waited_out_else_the_backoff(
    header: str | None, wait: float
) -> None:
    headers = {"retry-after": header} if header else {}
    transport, calls = answering(httpx.Response(503, headers=headers), httpx.Response(202))
    slept = Slept()

    assert deliver(transport, slept) == 202
    assert slept == [wait] and len(calls) == 2


def test_retry_after_as_an_http_date_is_waited_out() -> None:
    now = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)

    assert retry_after(later, now) == 30.0
    assert retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0.0
    assert retry_after("Wed, 99 Foo 2026 nonsense", now) is None


def test_a_retry_after_longer_than_sweeper_waits_fails_at_once() -> None:
    transport, calls = answering(httpx.Response(429, headers={"retry-after": "3600"}))
    slept = Slept()

    with pytest.raises(AlertDeliveryError, match=r"asked to wait 3600 s, longer than sweeper"):
        deliver(transport, slept)

    assert len(calls) == 1 and slept == []


def test_no_answer_in_time_is_tried_again_then_fails_with_the_attempts() -> None:
    transport, calls = answering(httpx.ReadTimeout("slow"))
    slept = Slept()

    with pytest.raises(AlertDeliveryError) as raised:
        deliver(transport, slept, attempts=3, timeout=5)

    assert str(raised.value) == (
        "the webhook at https://hooks.example gave no answer within 5 s, after 3 attempts"
    )
    assert raised.value.status is None
    assert len(calls) == 3 and slept == [0.5, 1.0]


def test_a_retry_after_past_the_runs_deadline_is_not_slept_out() -> None:
    transport, calls = answering(httpx.Response(429, headers={"retry-after": "60"}))
    slept = Slept()

    with pytest.raises(AlertDeliveryError) as raised:
        deliver(transport, slept, deadline=time.monotonic() + 30)

    assert raised.value.out_of_time and raised.value.status == 429
    assert "answered 429; left for the next run" in str(raised.value)
    assert len(calls) == 1 and slept == []


def test_an_attempt_cut_short_by_the_runs_deadline_leaves_the_alert_for_the_next_run() -> None:
    transport, calls = answering(httpx.ReadTimeout("slow"))
    slept = Slept()

    with pytest.raises(AlertDeliveryError) as raised:
        deliver(transport, slept, deadline=time.monotonic() + 2)  # less than the 10 s timeout

    assert raised.value.out_of_time and raised.value.status is None
    assert len(calls) == 1 and slept == []


def test_waits_within_the_runs_deadline_are_waited_out() -> None:
    transport, calls = answering(httpx.Response(503), httpx.Response(503), httpx.Response(202))
    slept = Slept()

    assert deliver(transport, slept, deadline=time.monotonic() + 300) == 202
    assert slept == [0.5, 1.0] and len(calls) == 3


# -- delivery over real HTTP ----------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(secret=SECRET) as running:
        yield running


def send_alert(url: str, alert: Alert, slept: Slept, msg_id: str = "msg_12_new-high") -> int:
    body = webhook_body(webhook_payload(alert, internal=INTERNAL))
    key = webhook_secret({SECRET_VARIABLE: SECRET})
    return asyncio.run(post_json(url, body, {}, sign=signed_by(key, msg_id, body), sleep=slept))


def test_a_signed_alert_reaches_a_receiver_that_verifies_it(receiver: Receiver) -> None:
    slept = Slept()

    assert send_alert(receiver.url("/hooks/sweeper"), ALERTS["hostile"], slept) == 200

    [delivery] = receiver.deliveries
    assert len(receiver.requests) == 1 and slept == []
    assert delivery.headers["webhook-id"] == "msg_12_new-high"
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["user-agent"].startswith("sweeper/")
    payload = Webhook(SECRET).verify(delivery.body, delivery.headers)
    sent = webhook_payload(ALERTS["hostile"], internal=INTERNAL, now=payload["timestamp"])
    assert payload == sent


def test_a_receiver_signed_with_another_secret_refuses_the_alert() -> None:
    with Receiver(secret=OTHER_SECRET) as other:
        with pytest.raises(AlertDeliveryError, match="answered 401$"):
            send_alert(other.url("/hooks/sweeper"), ALERTS["new"], Slept())

        assert other.deliveries == [] and len(other.requests) == 1


def test_a_receiver_answering_429_gets_the_alert_once_after_its_retry_after(
    receiver: Receiver,
) -> None:
    receiver.script["/busy"] = [(429, {"Retry-After": "1"}), (200, {})]
    slept = Slept()

    assert send_alert(receiver.url("/busy"), ALERTS["new"], slept) == 200

    assert [r.status for r in receiver.requests] == [429, 200]
    assert slept == [1.0]
    assert len(receiver.deliveries) == 1
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "msg_12_new-high"
    assert first.body == second.body


def test_a_receiver_failing_three_times_gets_the_alert_after_the_backoff(
    receiver: Receiver,
) -> None:
    receiver.script["/flaky"] = [(500, {}), (502, {}), (503, {}), (200, {})]
    slept = Slept()

    assert send_alert(receiver.url("/flaky"), ALERTS["new"], slept) == 200

    assert [r.status for r in receiver.requests] == [500, 502, 503, 200]
    assert slept == [0.5, 1.0, 2.0]
    assert len(receiver.deliveries) == 1
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


def test_a_receiver_that_is_down_fails_the_alert_after_the_attempts() -> None:
    slept = Slept()
    url = f"http://127.0.0.1:{closed_port()}/hooks/sweeper?sig=s3cr3t"

    with pytest.raises(AlertDeliveryError) as raised:
        send_alert(url, ALERTS["new"], slept)

    port = url.split(":")[2].split("/")[0]
    assert str(raised.value) == (
        f"the webhook at http://127.0.0.1:{port} could not be reached (no connection), "
        "after 4 attempts"
    )
    assert slept == [0.5, 1.0, 2.0]
    assert describe_failure(raised.value)[1] == 3


def test_the_teams_payload_posts_to_a_workflows_style_receiver() -> None:
    with Receiver(script={"/workflows/a1/triggers/manual/paths/invoke": [(202, {})]}) as teams:
        url = teams.url("/workflows/a1/triggers/manual/paths/invoke?api-version=1&sig=s3cr3t")
        payload = teams_payload(ALERTS["new"], "Europe/London", internal=INTERNAL)

        status = asyncio.run(post_json(url, orjson.dumps(payload), {}, sleep=Slept()))

        assert status == 202
        [delivery] = teams.deliveries
        assert orjson.loads(delivery.body) == payload
        assert "webhook-signature" not in delivery.headers  # Teams takes no signature


def test_the_url_and_the_secret_never_reach_a_message_or_a_log(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script["/workflows/a1"] = [(503, {}), (404, {})]
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "aiohttp", "sweeper"):
        caplog.set_level(logging.DEBUG, logger=name)
    query = "?api-version=2016-06-01&sig=s3cr3tSIG"
    urls = [
        receiver.url("/workflows/a1" + query),  # 503, then 404
        f"http://127.0.0.1:{closed_port()}/workflows/a1{query}",  # down
    ]
    lines = []
    for url in urls:
        with pytest.raises(AlertDeliveryError) as raised:
            send_alert(url, ALERTS["new"], Slept())
        lines.append(describe_failure(raised.value)[0])

    assert lines[0] == f"the webhook at http://127.0.0.1:{receiver.port} answered 404"
    logged = caplog.text + "\n".join(lines)
    assert "trying again in 0.5 s (attempt 2 of 4)" in logged  # the retries were logged
    for secret in ("s3cr3tSIG", "/workflows", "api-version", SECRET, SECRET[6:]):
        assert secret not in logged


def test_every_field_and_header_a_receiver_gets_is_in_the_docs(receiver: Receiver) -> None:
    page = (Path(__file__).parent.parent / "docs" / "alerts-and-siem.md").read_text(
        encoding="utf-8"
    )
    section = page.split("\n### Webhooks\n")[1].split("\n## ")[0]
    send_alert(receiver.url("/hooks/sweeper"), ALERTS["new"], Slept())
    [delivery] = receiver.deliveries
    payload = orjson.loads(delivery.body)

    for name in [*payload, *payload["data"]]:
        assert f"`{name}`" in section, name
    for header in ("content-type", "user-agent", "webhook-id", "webhook-timestamp"):
        assert f"| `{header}` |" in section and header in delivery.headers
    assert "| `webhook-signature` |" in section
