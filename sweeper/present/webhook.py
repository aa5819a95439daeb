"""An alert as a webhook's JSON: the payload shape Standard Webhooks recommends.

    {"type": "incident.alert", "timestamp": "2026-12-02T10:00:00Z", "data": {...}}

``type`` is ``incident.alert``, or ``incident.alert.test`` for the alert ``sweeper alerts
test`` sends (about no incident); ``timestamp`` is when the alert was made; ``data`` holds
the figures (see :func:`webhook_payload`). Addresses are masked as in the digest; the
values are otherwise the stored ones, so that a SIEM can match on them. The body is written
by :func:`webhook_body`: compact JSON, with the characters a terminal or a log viewer could
act on (C1 controls, line separators, bidirectional controls) written as ``\\uXXXX`` inside
strings (:func:`sweeper.present.escape.json_safe`): the same values, printable.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sweeper.present.escape import json_bytes, mask_addresses
from sweeper.rules.alerts import Alert
from sweeper.when import utc_now

EVENT = "incident.alert"
TEST_EVENT = "incident.alert.test"


def webhook_payload(
    alert: Alert, *, internal: Iterable[str] = (), now: str | None = None
) -> dict[str, Any]:
    """The payload for ``alert``, made at ``now`` (sweeper's UTC form; default: now).

    ``internal`` is the organisation's domains, whose addresses stay readable; without them
    every address is masked, as in the digest.
    """
    domains = frozenset(internal)

    def masked(value: str | None) -> str | None:
        return None if value is None else mask_addresses(value, domains)

    test = alert.kind == "test"
    data = {
        "incident_id": None if test else alert.incident_id,
        "kind": alert.kind,
        "key": alert.key,
        "headline": alert.headline,
        "severity": alert.severity,
        "previous_severity": alert.previous_severity,
        "people_exposed": alert.unique_exposed,
        "previous_people_exposed": alert.previous_exposed,
        "sender": masked(alert.sender),
        "sent_by": masked(alert.sent_by),
        "subject": masked(alert.subject),
        "reason": masked(alert.reason),
        "messages": alert.messages,
        "first_sent_at": alert.first_sent_at,
        "last_sent_at": alert.last_sent_at,
        "detected_at": alert.detected_at,
        "deadline": alert.deadline,
        "top_domains": list(alert.top_domains),
        "samples": [masked(sample) for sample in alert.samples],
        "command": None if test else alert.command,
    }
    return {"type": TEST_EVENT if test else EVENT, "timestamp": now or utc_now(), "data": data}


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The bytes to sign and send: compact JSON, printable (see the module's docstring)."""
    return json_bytes(payload)
