"""Findings and run summaries as text: an aligned table, JSON, or CSV safe for spreadsheets.

What reaches a terminal goes through :func:`sweeper.present.escape.terminal` (every table cell and
every line of a summary), what reaches a CSV file through :func:`sweeper.present.escape.csv_cell`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

from sweeper.present.escape import CSV_QUOTING, csv_cell, json_safe, terminal

FINDING_COLUMNS = (
    "mailbox",
    "mailboxes",
    "internet_message_id",
    "sent_at",
    "subject",
    "sender",
    "sent_by",
    "to_count",
    "cc_count",
    "bcc_count",
    "visible_external_count",
    "external_domains",
    "severity",
)

INCIDENT_COLUMNS = (
    "id",
    "sender",
    "sent_by",
    "subject",
    "first_sent_at",
    "last_sent_at",
    "messages",
    "unique_exposed",
    "largest_batch",
    "personal_share",
    "named_addresses",
    "domains",
    "severity",
    "reason",
    "suppressed",
    "status",
    "active",
    "detected_at",
    "confirmed_at",
)


ALERT_COLUMNS = (
    "id",
    "incident_id",
    "key",
    "channel",
    "status",
    "tries",
    "severity",
    "unique_exposed",
    "error",
    "tried_at",
    "sent_at",
)


def as_json(rows: Sequence[dict[str, Any]]) -> str:
    """JSON for programs, safe to print: C1 controls and bidi overrides written as \\u escapes.

    orjson escapes C0 controls already; the rest can only stand inside strings, so writing
    them as escapes changes no value.
    """
    return json_safe(orjson.dumps(list(rows), option=orjson.OPT_INDENT_2).decode())


findings_json = incidents_json = as_json


def as_csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """One line per record, every field quoted; each cell made inert by ``csv_cell``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=CSV_QUOTING)
    writer.writerow([csv_cell(c) for c in columns])
    for row in rows:
        writer.writerow([csv_cell(row[c]) for c in columns])
    return buffer.getvalue()


def findings_csv(rows: Sequence[dict[str, Any]]) -> str:
    return as_csv(FINDING_COLUMNS, rows)


def incidents_csv(rows: Sequence[dict[str, Any]]) -> str:
    return as_csv(INCIDENT_COLUMNS, rows)


def alerts_csv(rows: Sequence[dict[str, Any]]) -> str:
    return as_csv(ALERT_COLUMNS, rows)


def alerts_table(rows: Sequence[dict[str, Any]]) -> str:
    """What was alerted, on which channel, and what failed and why; newest first."""
    if not rows:
        return "No alerts."
    body = [
        (
            (r["tried_at"] or "?")[:16].replace("T", " "),
            r["incident_id"] or "test",
            r["key"],
            r["channel"],
            r["status"] + (f" ({r['tries']} tries)" if r["tries"] > 1 else ""),
            _short(r["error"], 60),
        )
        for r in rows
    ]
    headers = ("tried (UTC)", "incident", "alert", "channel", "status", "reason")
    return table(headers, body)


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], right: set[int] | None = None
) -> str:
    """A plain aligned text table; columns listed in ``right`` are right-aligned.

    Every cell is shown through :func:`terminal`: a value cannot move the cursor, colour the
    screen or break the table's lines.
    """
    right = right or set()
    cells = [[_shown(h) for h in headers], *[[_shown(v) for v in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [
            row[i].rjust(widths[i]) if i in right else row[i].ljust(widths[i])
            for i in range(len(row))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _shown(value: Any) -> str:
    return "" if value is None else terminal(str(value))


def _short(text: str | None, width: int) -> str:
    """``text`` as a terminal shows it, cut to ``width`` characters."""
    text = terminal(text or "")
    return text if len(text) <= width else text[: width - 1] + "…"


def _with_copies(mailbox: str, mailboxes: Sequence[str]) -> str:
    """A finding's mailbox, and how many others hold a copy of the same message."""
    others = len([m for m in mailboxes if m != mailbox])
    return f"{mailbox} +{others}" if others else mailbox


def sender_shown(sender: str | None, sent_by: str | None) -> str:
    """The From address, and the delegate who sent on its behalf where there is one."""
    return f"{sender or '?'} (sent by {sent_by})" if sent_by else sender or "?"


def findings_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "No findings."
    body = [
        (
            r["sent_at"] or "?",
            r["incident_id"] or "",
            r["severity"] + (" (allowed)" if r["suppressed_by"] else ""),
            r["visible_external_count"],
            f"{r['to_count']}/{r['cc_count']}/{r['bcc_count']}",
            _short(_with_copies(r["mailbox"], r["mailboxes"]), 34),
            _short(r["subject"], 40),
            _short(", ".join(r["external_domains"][:3]), 40),
        )
        for r in rows
    ]
    headers = (
        "sent (UTC)",
        "incident",
        "severity",
        "external",
        "to/cc/bcc",
        "mailbox",
        "subject",
        "domains",
    )
    return table(headers, body, right={1, 3, 4})


def incidents_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "No incidents."
    body = [
        (
            r["id"],
            r["severity"] + (" (allowed)" if r["suppressed"] else ""),
            r["unique_exposed"],
            r["messages"],
            f"{round(r['personal_share'] * 100)}%",
            r["named_addresses"],
            (r["last_sent_at"] or "?")[:16].replace("T", " "),
            _short(sender_shown(r["sender"], r["sent_by"]), 80 if r["sent_by"] else 30),
            _short(r["subject"], 40),
            r["status"],
        )
        for r in rows
    ]
    headers = (
        "id",
        "severity",
        "exposed",
        "messages",
        "personal",
        "named",
        "last sent (UTC)",
        "sender",
        "subject",
        "status",
    )
    table_text = table(headers, body, right={0, 2, 3, 4, 5})
    reasons = "\n".join(f"  {r['id']}: {terminal(str(r['reason']))}" for r in rows)
    return f"{table_text}\n\nWhy:\n{reasons}"
