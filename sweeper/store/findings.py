"""Findings: one per message wherever it is stored, the mailboxes holding a copy, every
visible recipient (flagged external or not), and the tenant's domains they were judged
against, so that ``reclassify`` can judge them again without Graph.

A finding's facts and its row are one mapping (:data:`FACT_COLUMNS`), read both ways.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from sqlite_utils import Database

from sweeper.rules.classify import Facts, Finding, Recipient
from sweeper.rules.incidents import normalise_subject
from sweeper.store.db import insert_row, transaction, update_row
from sweeper.when import utc_now

# Each column of ``findings`` holding a fact of the message, and the fact's name in Facts.
FACT_COLUMNS = (
    ("mailbox", "mailbox"),
    ("message_key", "message_key"),
    ("graph_id", "graph_id"),
    ("internet_message_id", "internet_message_id"),
    ("conversation_id", "conversation_id"),
    ("sent_at", "sent_at"),
    ("subject", "subject"),
    ("sender", "sender"),
    ("sent_by", "sent_by"),
    ("to_count", "to_count"),
    ("cc_count", "cc_count"),
    ("bcc_count", "bcc_count"),
    ("sender_department", "department"),
    ("sender_job_title", "job_title"),
)

# The rows save_findings writes together, one statement for all of a mailbox's findings.
_COPY_COLUMNS = ("finding_id", "mailbox", "graph_id", "run_id", "found_at")
_ADDRESS_COLUMNS = ("finding_id", "address", "domain", "name", "field", "external")


def save_findings(db: Database, run_id: int, findings: Iterable[Finding]) -> int:
    """Store findings not seen before (key: the message key). Returns how many were new.

    Call inside a transaction. The same message swept twice is stored once, and so is one
    message stored in two mailboxes (sent as a shared mailbox, with a copy in each): one
    finding, each mailbox recorded as holding a copy (``finding_copies``). Every visible
    recipient is stored, flagged external or not, so the finding can be judged again.
    """
    findings = list(findings)
    if not findings:
        return 0
    found_at = utc_now()
    stored = _stored_keys(db, [f.facts.message_key for f in findings])
    new: list[int] = []
    copies: list[list[Any]] = []  # the new findings' own copies, written together
    addresses: list[list[Any]] = []
    for finding in findings:
        facts = finding.facts
        if facts.message_key in stored:
            finding_id, stored_in = stored[facts.message_key]
            if finding_id in new:  # another copy of a message new in this batch
                _insert_all(db, "finding_copies", _COPY_COLUMNS, copies, ignore=True)
                copies = []
            stored_in = _add_copy(db, finding_id, stored_in, finding, run_id, found_at)
            stored[facts.message_key] = (finding_id, stored_in)
            continue
        finding_id = insert_row(db, "findings", _finding_row(finding, run_id, found_at))
        stored[facts.message_key] = (finding_id, facts.mailbox)
        new.append(finding_id)
        copies.append([finding_id, facts.mailbox, facts.graph_id, run_id, found_at])
        addresses += _address_rows(finding_id, finding)
    _insert_all(db, "finding_copies", _COPY_COLUMNS, copies, ignore=True)
    _insert_all(db, "finding_addresses", _ADDRESS_COLUMNS, addresses)
    return len(new)


def _stored_keys(db: Database, keys: list[str]) -> dict[str, tuple[int, str]]:
    """Each of these message keys already stored: its finding's id and mailbox."""
    rows = db.execute(
        "select message_key, id, mailbox from findings "
        "where message_key in (select value from json_each(?)) order by id desc",
        [orjson.dumps(keys).decode()],
    )
    return {key: (finding_id, mailbox) for key, finding_id, mailbox in rows}  # the first id


def _address_rows(finding_id: int, finding: Finding) -> list[list[Any]]:
    exposed = {r.address for r in finding.exposed}
    return [
        [finding_id, r.address, r.domain, r.name, r.field, int(r.address in exposed)]
        for r in finding.facts.recipients
    ]


def _insert_all(
    db: Database,
    table: str,
    columns: tuple[str, ...],
    rows: list[list[Any]],
    *,
    ignore: bool = False,
) -> None:
    """Insert every row in one statement: the rows go in as one JSON array of arrays."""
    if not rows:
        return
    names = ", ".join(columns)
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
    verb = "insert or ignore" if ignore else "insert"
    # Table and column names are sweeper's own, never data: the rows are one parameter.
    db.execute(
        f"{verb} into {table} ({names}) select {values} from json_each(?)",  # noqa: S608
        [orjson.dumps(rows).decode()],
    )


def _copy(
    db: Database, finding_id: int, mailbox: str, graph_id: str, run_id: int, found_at: str
) -> bool:
    """Record that ``mailbox`` holds a copy of the finding's message; False if known."""
    cursor = db.execute(
        "insert or ignore into finding_copies (finding_id, mailbox, graph_id, run_id, found_at) "
        "values (?, ?, ?, ?, ?)",
        [finding_id, mailbox, graph_id, run_id, found_at],
    )
    return cursor.rowcount > 0


def _add_copy(
    db: Database, finding_id: int, stored_in: str, finding: Finding, run_id: int, found_at: str
) -> str:
    """Another mailbox's copy of a stored finding; returns the finding's mailbox now. The
    From mailbox's own copy speaks for the message: its Entra department is the one the
    severity rule reads, whichever copy was read first (the sender's own Sent Items, or the
    shared mailbox's)."""
    facts = finding.facts
    if not _copy(db, finding_id, facts.mailbox, facts.graph_id, run_id, found_at):
        return stored_in
    if facts.mailbox != facts.sender or stored_in == facts.sender:
        return stored_in
    update_row(
        db,
        "findings",
        finding_id,
        {
            "mailbox": facts.mailbox,
            "graph_id": facts.graph_id,
            "sender_department": facts.department,
            "sender_job_title": facts.job_title,
            **judgement_row(finding),
        },
    )
    return facts.mailbox


def save_lookup_findings(db: Database, run_id: int, findings: list[Finding]) -> list[int]:
    """Store what a lookup found, marked as the lookup's and qualifying whatever the
    threshold (it belongs to a reported breach); returns the findings' ids.

    One transaction: a process killed half-way leaves no findings stored but not marked.
    """
    with transaction(db):
        save_findings(db, run_id, findings)
        ids = [
            int(
                db.execute(
                    "select id from findings where message_key = ? order by id limit 1",
                    [f.facts.message_key],
                ).fetchone()[0]
            )
            for f in findings
        ]
        listed = orjson.dumps(ids).decode()  # one parameter: the ids as a JSON array
        db.execute(
            "update findings set source = 'lookup' "
            "where id in (select value from json_each(?)) and run_id = ?",
            [listed, run_id],
        )
        db.execute(
            "update findings set qualifies = 1 where id in (select value from json_each(?))",
            [listed],
        )
    return ids


def copies_of(db: Database, finding_id: int) -> list[str]:
    """The mailboxes holding a copy of the finding's message, its own mailbox first."""
    return [
        r["mailbox"]
        for r in db.query(
            "select c.mailbox from finding_copies c join findings f on f.id = c.finding_id "
            "where c.finding_id = ? order by c.mailbox != f.mailbox, c.found_at, c.mailbox",
            [finding_id],
        )
    ]


def _finding_row(finding: Finding, run_id: int, found_at: str) -> dict[str, Any]:
    facts = finding.facts
    return {
        **{column: getattr(facts, name) for column, name in FACT_COLUMNS},
        "subject_key": normalise_subject(facts.subject),
        "run_id": run_id,
        "found_at": found_at,
        **judgement_row(finding),
    }


def judgement_row(finding: Finding) -> dict[str, Any]:
    """The columns that depend on the rules, which ``reclassify`` rewrites."""
    return {
        "visible_external_count": finding.visible_external_count,
        "external_domains": orjson.dumps(list(finding.external_domains)).decode(),
        "bcc_used": int(finding.facts.bcc_used),
        "severity": finding.severity,
        "severity_reason": finding.severity_reason,
        "suppressed_by": finding.suppressed_by,
        "qualifies": 1,
    }


def save_tenant_domains(db: Database, verified: Iterable[str]) -> None:
    """Remember the verified domains last seen, for judging again without Graph."""
    now = utc_now()
    with transaction(db):
        db.execute("update tenant_domains set verified = 0")
        db.execute(
            "insert into tenant_domains (domain, verified, seen_at) "
            "select value, 1, ? from json_each(?) where true "  # "where": see SQLite's upsert
            "on conflict (domain) do update set verified = 1, seen_at = excluded.seen_at",
            [now, orjson.dumps(list(verified)).decode()],
        )


def verified_domains(db: Database) -> list[str]:
    return [r["domain"] for r in db.query("select domain from tenant_domains where verified = 1")]


def list_findings(
    db: Database, since: str | None = None, *, include_suppressed: bool = True
) -> list[dict[str, Any]]:
    """Qualifying findings sent at or after ``since`` (ISO UTC), oldest first, public shape."""
    sql = "select * from findings where qualifies = 1"
    params: list[Any] = []
    if since:
        sql += " and sent_at >= ?"
        params.append(since)
    if not include_suppressed:
        sql += " and suppressed_by is null"
    sql += " order by sent_at, mailbox, id"
    return [_public(db, row) for row in db.query(sql, params)]


def _public(db: Database, row: dict[str, Any]) -> dict[str, Any]:
    """A stored finding as ``findings`` shows it."""
    return {
        "id": row["id"],
        "incident_id": row["incident_id"],
        "mailbox": row["mailbox"],
        "mailboxes": copies_of(db, row["id"]),
        "internet_message_id": row["internet_message_id"],
        "sent_at": row["sent_at"],
        "subject": row["subject"],
        "sender": row["sender"],
        "sent_by": row["sent_by"],
        "to_count": row["to_count"],
        "cc_count": row["cc_count"],
        "bcc_count": row["bcc_count"],
        "visible_external_count": row["visible_external_count"],
        "external_domains": orjson.loads(row["external_domains"]),
        "bcc_used": bool(row["bcc_used"]),
        "severity": row["severity"],
        "severity_reason": row["severity_reason"],
        "suppressed_by": row["suppressed_by"],
        "found_at": row["found_at"],
    }


def exposed_addresses(db: Database, finding_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "select address, domain, name, field from finding_addresses "
            "where finding_id = ? and external = 1 order by address",
            [finding_id],
        )
    )


def stored_facts(db: Database) -> Iterator[tuple[int, Facts, str]]:
    """Every stored finding's facts, with all its visible recipients, for judging again.

    Findings of incidents whose addresses were purged are left as they were judged.
    """
    for row in db.query(
        "select * from findings where incident_id is null or incident_id not in "
        "(select id from incidents where purged_at is not null) order by id"
    ):
        recipients = tuple(
            Recipient(r["address"], r["domain"], r["name"], r["field"])
            for r in db.query(
                "select * from finding_addresses where finding_id = ? order by rowid",
                [row["id"]],
            )
        )
        facts: dict[str, Any] = {name: row[column] for column, name in FACT_COLUMNS}
        facts.update(graph_id=row["graph_id"] or "", subject=row["subject"] or "")
        yield row["id"], Facts(**facts, recipients=recipients), row["source"]


def update_judgement(
    db: Database, finding_id: int, finding: Finding | None, external: Iterable[str]
) -> dict[str, Any]:
    """Write a new judgement of a stored finding; None marks it as no longer qualifying.

    ``external`` are the addresses now external, whether or not the finding qualifies.
    Returns the row as it was before, for the caller to count what changed.
    """
    before = dict(db.table("findings").get(finding_id))
    changes = judgement_row(finding) if finding is not None else {"qualifies": 0}
    db.table("findings").update(finding_id, changes)
    now_external = list(external)
    db.execute("update finding_addresses set external = 0 where finding_id = ?", [finding_id])
    db.execute(
        "update finding_addresses set external = 1 "
        "where finding_id = ? and address in (select value from json_each(?))",
        [finding_id, orjson.dumps(now_external).decode()],
    )
    return before
