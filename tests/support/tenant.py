"""The generated tenant: what a correct sweep of its last day finds, and ways to add to it."""

from __future__ import annotations

import ssl
from datetime import datetime, timedelta
from typing import Any

import httpx

from sweeper.fakegraph import FakeGraph

# Messages of the generated tenant a correct sweep of the last 24 hours reports: 7 batches
# of the 2012 survey, the honeytrap mail and its reply-all, the clinic list, 3 interpreter
# emails, 2 "Volunteer induction" mails, the partner group, the odd recipients, the
# regulatory service list.
DAY_FINDINGS = 18
DAY_INCIDENTS = 9


def late_batch(
    fake: FakeGraph, upn: str, key: str, minutes: int, recipients: list[dict[str, Any]]
) -> None:
    """Another batch of the mailbox's newest mailing, ``minutes`` after its last message."""
    sender = fake.tenant.user(upn)
    assert sender is not None
    last = max(datetime.fromisoformat(m["sentDateTime"]) for m in sender.sent)
    late = dict(sender.sent[0])
    late.update(
        id=f"AAMkAG{key}",
        internetMessageId=f"<{key}@northwick.example>",
        sentDateTime=(last + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        toRecipients=recipients,
        ccRecipients=[],
    )
    sender.sent.insert(0, late)


def request_token(fake: FakeGraph) -> httpx.Response:
    """The local Graph's answer to a client-credentials sign-in with the tenant's own app."""
    return httpx.post(
        f"{fake.authority}/{fake.tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "scope": "http://127.0.0.1/.default",
        },
        verify=ssl.create_default_context(cafile=str(fake.ca_path)),
    )
