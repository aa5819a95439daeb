"""After a reported incident, as the DPO gets it: the people export, the worksheet, the
``incident show`` text.

The people export is the list to notify: full addresses, made inert for spreadsheets only.
The worksheet and ``incident show`` are shared with a DPO or an authority: in them every
address outside the organisation's domains (the tenant's verified domains, recorded by the
sweep, plus ``own_domains``) is masked, as in the digest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sweeper.addresses import mask_address
from sweeper.present.escape import internal_domains, mask_addresses, terminal
from sweeper.present.output import as_csv, as_json
from sweeper.store.response import IncidentView, Worksheet
from sweeper.when import shown_in

PEOPLE_COLUMNS = ("address", "name", "field", "messages", "message_ids", "first_sent_at")


def export_people(rows: list[dict[str, Any]], fmt: str) -> str:
    """The people to notify as JSON or CSV; not masked: it is the list to write to."""
    if fmt == "json":
        return as_json(rows)
    flat = [{**r, "message_ids": " ".join(r["message_ids"])} for r in rows]
    return as_csv(PEOPLE_COLUMNS, flat)


def render_worksheet(
    sheet: Worksheet, fmt: str, own_domains: Iterable[str] = (), zone: str = "UTC"
) -> str:
    """The worksheet as Markdown (``md``) or HTML; addresses outside the organisation masked,
    moments in the IANA ``zone``.

    The organisation is the sheet's verified domains plus ``own_domains`` (the setting).
    """
    from sweeper.present.render import render  # jinja2 and css-inline: only the worksheet

    return render(f"worksheet.{fmt}.j2", (*sheet.internal, *own_domains), zone, w=sheet)


def describe(view: IncidentView, own_domains: Iterable[str] = (), zone: str = "UTC") -> str:
    """``incident show``: figures, reason, messages and history, safe for a terminal, moments
    in the IANA ``zone``.

    Samples are masked; so is any address outside the organisation (the verified domains
    recorded by the sweep plus ``own_domains``) in a subject, a sender or a note. Message ids are
    shown whole, as ``sweeper lookup`` needs them.
    """
    internal = internal_domains((*view.internal, *own_domains))

    def when(value: str | None) -> str:
        return shown_in(value, zone)

    def shown(text: str) -> str:
        return terminal(mask_addresses(text, internal))

    row = view.incident
    header = [
        f"Incident {row['id']} [{row['severity']}] {row['status']}"
        + (f", merged into {row['merged_into']}" if row["merged_into"] else "")
        + (", allowlisted" if row["suppressed"] else ""),
        f"  Subject:  {row['subject']}",
        f"  Sender:   {row['sender']}"
        + (f", sent by {row['sent_by']} on its behalf" if row["sent_by"] else ""),
        f"  Sent:     {when(row['first_sent_at'])} to {when(row['last_sent_at'])}",
        f"  Detected: {when(row['detected_at'])}"
        + (f"; breach confirmed {when(row['confirmed_at'])}" if row["confirmed_at"] else ""),
        f"  Exposed:  {row['unique_exposed']} unique addresses in {row['messages']} messages "
        f"(largest batch {row['largest_batch']}); {round((row['personal_share'] or 0) * 100)}% "
        f"personal mail; {row['named_addresses']} reveal a name",
        f"  Why:      {row['reason']}",
    ]
    lines = [shown(line) for line in header]
    if row["purged_at"]:
        lines.append(f"  Addresses purged on {when(row['purged_at'])} (retention).")
    else:
        samples = ", ".join(mask_address(a) for a in view.samples)
        lines.append(shown(f"  Examples: {samples}"))
    lines.append("  Messages:")
    for m in view.messages:
        lines.append(
            shown(
                f"    {when(m['sent_at'])}  {', '.join(m['mailboxes']) or m['mailbox']}  "
                f"{m['visible_external_count']} external"
                + (f"  (sent by {m['sent_by']})" if m["sent_by"] else "")
                + ("  (lookup)" if m["source"] == "lookup" else "")
            )
            + f"  {terminal(str(m['internet_message_id']))}"
        )
    lines.append("  History:")
    steps = view.history
    for h in steps:
        note = f": {h['note']}" if h["note"] else ""
        if h.get("incident_id", row["id"]) != row["id"]:
            note += f" (incident {h['incident_id']}, since merged into this one)"
        lines.append(
            shown(f"    {when(h['at'])}  {h['by']}  {h['from_status']} → {h['to_status']}{note}")
        )
    if not steps:
        lines.append("    (none yet)")
    return "\n".join(lines)
