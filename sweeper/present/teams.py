"""An alert as a Teams message: the body a Workflows webhook takes ("When a Teams webhook
request is received", then "Post card in a chat or channel"), holding one Adaptive Card.

Every value on the card is masked as in the digest (any address outside the organisation's
domains becomes ``j***@gmail.com``) and then escaped for Adaptive Card text
(:func:`sweeper.present.escape.adaptive_card`), so that a subject or a name can become
neither a link nor bold text, a list or a line of its own. Moments are shown in the
organisation's time zone, as the digest shows them (:func:`sweeper.when.shown_in`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sweeper.present.escape import adaptive_card, mask_addresses
from sweeper.rules.alerts import Alert
from sweeper.when import shown_in

CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
# 1.4: the newest version every Teams client shows when a Workflows flow posts the card. A
# card marked 1.5 posted by "Post card in a chat or channel" shows only "We're sorry, this
# card couldn't be displayed" (microsoft/AdaptiveCards#7676, MicrosoftDocs/msteams-docs#9801),
# and this card needs nothing newer than 1.2 (a monospace TextBlock).
VERSION = "1.4"
_COLOUR = {"critical": "Attention", "high": "Attention", "medium": "Warning"}


def teams_payload(alert: Alert, zone: str, *, internal: Iterable[str] = ()) -> dict[str, Any]:
    """The JSON body to post to a Teams Workflows webhook for ``alert``.

    ``zone`` is the IANA zone moments are shown in; ``internal`` the organisation's domains,
    whose addresses stay readable (without them every address is masked, as in the digest).
    """
    text = _Text(frozenset(internal))
    body = _test_card(alert, zone, text) if alert.kind == "test" else _card(alert, zone, text)
    card = {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": VERSION,
        "fallbackText": text(alert.headline),
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


class _Text:
    """A value as the card shows it: masked, then escaped for Adaptive Card text."""

    def __init__(self, internal: frozenset[str]) -> None:
        self.internal = internal

    def __call__(self, value: str) -> str:
        return adaptive_card(mask_addresses(value, self.internal))


def _card(alert: Alert, zone: str, text: _Text) -> list[dict[str, Any]]:
    facts = [
        ("Severity", _severity(alert)),
        ("People exposed", _exposed(alert)),
        ("Sender", _sender(alert)),
        ("Subject", alert.subject),
        ("Why", alert.reason),
        ("Messages", _messages(alert, zone)),
        ("Detected", shown_in(alert.detected_at, zone)),
        ("Article 33 deadline", shown_in(alert.deadline, zone)),
    ]
    return [
        _heading(alert, text),
        {
            "type": "FactSet",
            "facts": [{"title": title, "value": text(value)} for title, value in facts],
        },
        _small(
            "The deadline is 72 hours after detection: if this is a personal data breach, "
            "the supervisory authority must be told by then (GDPR Article 33)."
        ),
        {"type": "TextBlock", "text": "Details, on the machine that runs sweeper:", "wrap": True},
        {
            "type": "TextBlock",
            "text": text(alert.command),
            "fontType": "Monospace",
            "wrap": True,
            "spacing": "None",
        },
    ]


def _test_card(alert: Alert, zone: str, text: _Text) -> list[dict[str, Any]]:
    return [
        _heading(alert, text),
        {
            "type": "TextBlock",
            "text": "This card checks that sweeper can post to this channel. "
            "It is about no incident: there is nothing to do.",
            "wrap": True,
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": "Sent", "value": text(shown_in(alert.detected_at, zone))},
                {"title": "Why", "value": text(alert.reason)},
            ],
        },
    ]


def _heading(alert: Alert, text: _Text) -> dict[str, Any]:
    block = {
        "type": "TextBlock",
        "text": text(alert.headline),
        "weight": "Bolder",
        "size": "Medium",
        "wrap": True,
    }
    colour = _COLOUR.get(alert.severity) if alert.kind != "test" else None
    return {**block, "color": colour} if colour else block


def _small(words: str) -> dict[str, Any]:
    return {"type": "TextBlock", "text": words, "size": "Small", "isSubtle": True, "wrap": True}


def _severity(alert: Alert) -> str:
    if alert.kind == "rose" and alert.previous_severity:
        return f"{alert.severity} (was {alert.previous_severity} at the last alert)"
    return alert.severity


def _exposed(alert: Alert) -> str:
    if alert.kind == "grew" and alert.previous_exposed is not None:
        return f"{alert.unique_exposed} (was {alert.previous_exposed} at the last alert)"
    return str(alert.unique_exposed)


def _sender(alert: Alert) -> str:
    sender = alert.sender or "unknown"
    return f"{sender}, sent by {alert.sent_by} on its behalf" if alert.sent_by else sender


def _messages(alert: Alert, zone: str) -> str:
    first, last = shown_in(alert.first_sent_at, zone), shown_in(alert.last_sent_at, zone)
    if alert.messages <= 1 or first == last:
        return f"{alert.messages}, sent {last}"
    return f"{alert.messages}, sent from {first} to {last}"
