"""Graph messages and recipients as sweeper selects them, for the classifier's tests."""

from __future__ import annotations

from typing import Any


def r(address: Any, name: str | None = None) -> dict[str, Any]:
    email: dict[str, Any] = {"name": name or ""}
    if address is not ...:
        email["address"] = address
    return {"emailAddress": email}


def message(to: Any, cc: Any = None, bcc: list[Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A Graph message as sweeper selects it; ``fields`` add to or replace its own."""
    return {
        "id": "AAMkAG1",
        "internetMessageId": "<1@example>",
        "subject": "Hello",
        "sentDateTime": "2026-11-21T10:00:00Z",
        "from": r("sender@northwick.example"),
        "toRecipients": to,
        "ccRecipients": [] if cc is None else cc,
        "bccRecipients": bcc or [],
        **fields,
    }
