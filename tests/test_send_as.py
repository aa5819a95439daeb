"""One message, one finding, wherever it is stored; and both names when one sends for another.

Mail sent *as* a shared mailbox from Outlook desktop is saved in the sender's own Sent Items,
and in the shared mailbox's too when ``MessageCopyForSentAsEnabled`` is on: the same
``internetMessageId`` in two mailboxes. Mail sent *on behalf of* another address carries the
owner in ``from`` and the delegate in ``sender``.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.runner import Sweeper

from sweeper.fakegraph.tenant import recipient

CLINIC = "clinic.bookings@northwick.example"  # shared mailbox, department: sexual health
SERVICE = "victim.care@northwick.example"
SENT_AS_ID = "<send-as-copy.1@northwick.example>"


def mass_mail(
    sender: str, sent_by: str, subject: str, key: str, people: int = 14
) -> dict[str, Any]:
    """A Graph message with ``people`` outside addresses in Cc."""
    stamp = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": f"AAMkAG-{key}",
        "internetMessageId": key,
        "conversationId": f"AAQkAG-{key}",
        "subject": subject,
        "sentDateTime": stamp,
        "from": recipient(sender, "From"),
        "sender": recipient(sent_by, "Sender"),
        "toRecipients": [recipient(sender)],
        "ccRecipients": [recipient(f"patient.{i}@gmail.com") for i in range(people)],
        "bccRecipients": [],
    }


def store_in(sweeper: Sweeper, mailbox: str, message: dict[str, Any]) -> None:
    """A copy in ``mailbox``'s Sent Items, with that mailbox's own Graph id."""
    copy = dict(message, id=f"{message['id']}-{mailbox.split('@')[0]}")
    user = sweeper.fake.tenant.user(mailbox)
    assert user is not None
    user.sent.insert(0, copy)


@pytest.fixture
def nurse(sweeper: Sweeper) -> str:
    """A member of the clinic team, with a mailbox of her own and no sensitive department."""
    upn = sweeper.fake.tenant.users[10].upn
    assert sweeper.fake.tenant.user(upn).department is None  # type: ignore[union-attr]
    return upn


def sent_as_with_copies(sweeper: Sweeper, nurse: str) -> None:
    message = mass_mail(CLINIC, CLINIC, "Your test results appointment", SENT_AS_ID)
    store_in(sweeper, nurse, message)
    store_in(sweeper, CLINIC, message)


def test_a_message_sent_as_a_shared_mailbox_and_stored_twice_is_one_finding(
    sweeper: Sweeper, nurse: str
) -> None:
    sent_as_with_copies(sweeper, nurse)

    assert sweeper.run("sweep").exit_code == 0

    [finding] = [f for f in sweeper.findings() if f["internet_message_id"] == SENT_AS_ID]
    assert finding["sender"] == CLINIC  # whose mail it is: the From address
    assert finding["mailbox"] == CLINIC  # the From mailbox's copy speaks for it
    assert finding["mailboxes"] == [CLINIC, nurse]
    [incident] = [i for i in sweeper.incidents() if i["subject"] == finding["subject"]]
    assert incident["messages"] == 1 and incident["unique_exposed"] == 14
    assert incident["mailboxes"] == sorted([CLINIC, nurse])
    assert incident["severity"] == "critical"  # the clinic's sensitive function, however read


def test_the_copy_read_first_does_not_decide_the_judgement(sweeper: Sweeper, nurse: str) -> None:
    sent_as_with_copies(sweeper, nurse)
    assert sweeper.run("sweep", "--mailbox", nurse).exit_code == 0  # the nurse's copy alone
    [before] = [i for i in sweeper.incidents() if i["subject"].startswith("Your test results")]
    assert before["severity"] != "critical"  # nothing sensitive known of the nurse

    assert sweeper.run("sweep").exit_code == 0  # the nightly run reads the clinic's copy too

    findings = [f for f in sweeper.findings() if f["internet_message_id"] == SENT_AS_ID]
    assert len(findings) == 1  # never doubled
    assert findings[0]["mailboxes"] == [CLINIC, nurse]
    [after] = [i for i in sweeper.incidents() if i["id"] == before["id"]]
    assert after["severity"] == "critical"


def test_sweeping_both_copies_again_stores_nothing_new(sweeper: Sweeper, nurse: str) -> None:
    sent_as_with_copies(sweeper, nurse)
    assert sweeper.run("sweep").exit_code == 0

    assert sweeper.run("sweep", "--since", "1d").exit_code == 0

    rows = sweeper.rows(
        "select count(*) as n from findings where internet_message_id = ?", [SENT_AS_ID]
    )
    copies = sweeper.rows("select mailbox from finding_copies order by mailbox")
    assert rows[0]["n"] == 1
    assert len([c for c in copies if c["mailbox"] in (CLINIC, nurse)]) >= 2
    pairs = sweeper.rows(
        "select finding_id, mailbox, count(*) as n from finding_copies group by 1, 2"
    )
    assert all(p["n"] == 1 for p in pairs)


def test_mail_sent_on_behalf_names_both_everywhere(sweeper: Sweeper, nurse: str) -> None:
    key = "<on-behalf.1@northwick.example>"
    store_in(sweeper, nurse, mass_mail(SERVICE, nurse, "Court date for your case", key))
    configured = sweeper.with_digest(sweeper.db.parent / "reports")

    assert configured.run("sweep").exit_code == 0

    [finding] = [f for f in configured.findings() if f["internet_message_id"] == key]
    assert (finding["sender"], finding["sent_by"]) == (SERVICE, nurse)
    [incident] = [i for i in configured.incidents() if i["subject"] == "Court date for your case"]
    assert (incident["sender"], incident["sent_by"]) == (SERVICE, nurse)
    on_behalf = f"{SERVICE}, sent by {nurse} on its behalf"
    assert on_behalf in configured.run("digest", "--dry-run").output
    shown = configured.run("incident", "show", str(incident["id"]))
    assert on_behalf in shown.output and f"(sent by {nurse})" in shown.output
    for fmt in ("md", "html"):
        worksheet = configured.run("incident", "report", str(incident["id"]), "--format", fmt)
        assert f"sent by {nurse}" in worksheet.output.replace("`", "")  # Markdown: `code`
    listed = configured.run("incidents")
    assert f"{SERVICE} (sent by {nurse})" in listed.output


def test_a_database_from_before_keeps_one_copy_per_finding(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    conn = sqlite3.connect(sweeper.db)
    with conn:
        conn.execute("drop table finding_copies")
        conn.execute("drop index if exists idx_findings_message_key")
        conn.execute("alter table findings drop column sent_by")
        conn.execute("alter table incidents drop column sent_by")
        conn.execute("delete from migrations where name = '0014_one_finding_per_message'")
    conn.close()

    findings = sweeper.findings()  # opening the database migrates it

    assert findings and all(f["mailboxes"] == [f["mailbox"]] for f in findings)
