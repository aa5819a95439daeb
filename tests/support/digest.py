"""The digest in a test's configuration, and a planted mail swept into an incident."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from support.runner import Sweeper, write_config
from sweeper import store
from sweeper.fakegraph.tenant import DIGEST_SENDER, DPO, recipient

GRAPH_DIGEST = f"""
[digest]
transport = "graph"
sender = "{DIGEST_SENDER}"
recipients = ["{DPO}"]
"""


def with_digest(sweeper: Sweeper, text: str = GRAPH_DIGEST) -> None:
    write_config(sweeper.config, sweeper.config.read_text() + text)


def swept_with_subject(
    sweeper: Sweeper,
    key: str,
    subject: str,
    reports: Path,
    *,
    names: Sequence[str] = (),
    sender: str | None = None,
) -> None:
    """A mail to 12 outside readers under ``subject`` (message id ``<key@...>``), swept.

    ``names``: display names of the first readers; ``sender``: the From address, if not
    the mailbox's own.
    """
    mailbox = sweeper.fake.tenant.user("victim.care@northwick.example")
    assert mailbox is not None
    message = dict(mailbox.sent[0])
    message.update(
        id=f"AAMkAG{key}",
        internetMessageId=f"<{key}@northwick.example>",
        subject=subject,
        conversationId=f"AAQkAG{key}",
        toRecipients=[
            recipient(f"reader{i}@gmail.com", names[i] if i < len(names) else None)
            for i in range(12)
        ],
        ccRecipients=[],
    )
    if sender is not None:
        message.update({"from": recipient(sender), "sender": recipient(sender)})
    mailbox.sent.insert(0, message)
    with_digest(sweeper, GRAPH_DIGEST + f'reports_dir = "{reports}"\n')
    assert sweeper.run("sweep").exit_code == 0


def incident_of(sweeper: Sweeper, key: str) -> int:
    """The incident of the message planted as ``key``."""
    db = store.open_db(sweeper.db)
    row = db.execute(
        "select incident_id from findings where message_key = ?", [f"<{key}@northwick.example>"]
    ).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


def written_digest(sweeper: Sweeper) -> str:
    """``sweeper digest`` run, and the HTML file it wrote."""
    result = sweeper.run("digest")
    assert result.exit_code == 0, result.output
    return Path(result.output.split("Written to ")[1].split(" (")[0]).read_text()
