"""A finding as the classifier makes one, to store without sweeping."""

from __future__ import annotations

from sweeper.rules.classify import Facts, Finding, Recipient


def finding(key: str = "<1@x>", mailbox: str = "a@northwick.example") -> Finding:
    recipients = tuple(
        Recipient(f"p{i}@gmail.com", "gmail.com", f"P {i}", "to" if i < 6 else "cc")
        for i in range(11)
    )
    facts = Facts(
        mailbox=mailbox,
        message_key=key,
        graph_id="AAMk1",
        internet_message_id=key,
        conversation_id="AAQk1",
        sent_at="2026-11-21T10:00:00Z",
        subject="Hello",
        sender=mailbox,
        to_count=6,
        cc_count=5,
        bcc_count=0,
        recipients=(*recipients, Recipient(mailbox, "northwick.example", None, "to")),
    )
    return Finding(facts, recipients, ("gmail.com",), "high", "11 external addresses")
