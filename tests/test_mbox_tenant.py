"""tools/mbox_tenant.py and tools/corpus_sweep.py on a tiny hand-written corpus.

Two people's sent folders, as mbox files: Alice's two folders overlap (the same message
under one Message-ID, and another under two), one subject is an RFC 2047 encoded word, one
message names a Lotus Notes recipient without ``@`` and has a Bcc that only repeats its
Cc, and Bob's mail has no From header. One message shows 12 external addresses: the sweep
of the corpus finds it, and nothing else.
"""

from __future__ import annotations

import mailbox
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.graph_metadata import object_problems

from tools import corpus_sweep, mbox_tenant

DOMAIN = "corp.example"
OUTSIDERS = [f"person{i}@gmail.com" for i in range(7)] + [
    f"contact{i}@firm{i}.example" for i in range(5)
]
MASS_CC = f"""\
Message-ID: <m1@corp.example>
Date: Tue, 15 Aug 2000 05:37:00 -0700 (PDT)
From: Alice Smith <alice.smith@corp.example>
To: {", ".join(OUTSIDERS)}
Cc: bob@corp.example
Bcc: hidden@elsewhere.example
Subject: =?utf-8?q?Caf=C3=A9_rota?=
References: <root@corp.example> <m0@corp.example>

The rota.
"""
NOTES = """\
Message-ID: <m2@corp.example>
Date: Wed, 16 Aug 2000 09:00:00 +0000
From: alice.smith@corp.example
To: Jeff Dasovich/HOU/EES, partner@firm.example
Cc: bob@corp.example
Bcc: bob@corp.example
Subject: Re: Gas prices

Prices.
"""
REPLY = """\
Message-ID: <m3@corp.example>
Date: Thu, 17 Aug 2000 10:00:00 +0200
To: alice.smith@corp.example
Subject: RE:  gas  prices

Thanks.
"""


def write_mbox(path: Path, *messages: str) -> Path:
    box = mailbox.mbox(path)
    for text in messages:
        box.add(text.encode())
    box.close()
    return path


@pytest.fixture
def tenant_file(tmp_path: Path) -> Path:
    folder = tmp_path / "sent"
    folder.mkdir()
    write_mbox(folder / "corp.alice.sent", MASS_CC, NOTES)
    # The same message again, and the Notes one again under another Message-ID.
    copy = NOTES.replace("<m2@corp.example>", "<m2-copy@corp.example>")
    write_mbox(folder / "corp.alice._sent_mail", MASS_CC, copy)
    write_mbox(folder / "corp.bob.sent_items", REPLY)
    out = tmp_path / "tenant.json"
    files = [str(f) for f in folder.iterdir()]
    assert mbox_tenant.main(["--out", str(out), "--domain", DOMAIN, *files]) == 0
    return out


def addresses(entries: list[dict[str, Any]]) -> list[str]:
    return [e["emailAddress"]["address"] for e in entries]


def test_the_tenant_file_holds_each_persons_sent_mail_once(tenant_file: Path) -> None:
    assert tenant_file.stat().st_mode & 0o777 == 0o600  # people's addresses: owner only
    data = orjson.loads(tenant_file.read_bytes())
    assert data["domains"] == [{"id": DOMAIN, "isVerified": True, "isDefault": True}]
    assert data["conversion"] == {
        "files": 3, "read": 5, "kept": 3, "same_id": 1, "same_content": 1, "undated": 0,
        "bcc_repeated_cc": 1,
    }  # fmt: skip
    alice, bob = data["users"]
    assert (alice["userPrincipalName"], alice["displayName"]) == (
        "alice.smith@corp.example", "Alice Smith",
    )  # fmt: skip
    assert alice["sources"] == ["corp.alice._sent_mail", "corp.alice.sent"]
    assert bob["userPrincipalName"] == "bob@corp.example"  # no From: the owner's key
    notes, mass = alice["sent"]  # newest first
    assert mass["subject"] == "Café rota"
    assert mass["sentDateTime"] == "2000-08-15T12:37:00Z"
    assert addresses(mass["toRecipients"]) == OUTSIDERS
    assert addresses(mass["ccRecipients"]) == ["bob@corp.example"]
    assert addresses(mass["bccRecipients"]) == ["hidden@elsewhere.example"]
    assert (
        mass["from"]
        == mass["sender"]
        == {"emailAddress": {"name": "Alice Smith", "address": "alice.smith@corp.example"}}
    )
    odd = [a for a in addresses(notes["toRecipients"]) if "@" not in a]
    assert len(odd) == 1 and odd[0].startswith("Jeff")  # the Notes name, as it came
    assert "partner@firm.example" in addresses(notes["toRecipients"])
    assert notes["bccRecipients"] == []  # it only repeated Cc
    (reply,) = bob["sent"]
    assert reply["sentDateTime"] == "2000-08-17T08:00:00Z"
    assert addresses([reply["from"]]) == ["bob@corp.example"]
    # A reply shares the conversation of the subject it answers; a thread is named by its root.
    assert reply["conversationId"] == notes["conversationId"] != mass["conversationId"]


@pytest.mark.slow
def test_a_conversation_is_named_by_its_subject_read_in_linear_time() -> None:
    assert mbox_tenant.thread_subject("RE: Fw:  Gas  prices") == "gas prices"
    assert mbox_tenant.thread_subject("Re: re: " * 125_000 + "Gas") == "gas"  # a megabyte
    assert mbox_tenant.thread_subject("Agenda: Monday") == "agenda: monday"


def test_every_message_is_one_graph_could_send(tenant_file: Path) -> None:
    data = orjson.loads(tenant_file.read_bytes())
    for user in data["users"]:
        for message in user["sent"]:
            assert set(message) == {
                "id", "internetMessageId", "conversationId", "subject", "sentDateTime",
                "from", "sender", "toRecipients", "ccRecipients", "bccRecipients",
            }  # fmt: skip
            assert object_problems(message, "message", user["userPrincipalName"], whole=False) == []


@pytest.mark.slow
def test_the_sweep_of_the_corpus_finds_the_one_mass_cc(tenant_file: Path) -> None:
    report = corpus_sweep.measure(tenant_file)
    assert report["corpus"]["mailboxes"] == 2
    assert report["corpus"]["since"] == "2000-08-15T12:37:00Z"
    run = report["run"]
    assert (run["exit_code"], run["swept"], run["failed"], run["messages_read"]) == (0, 2, 0, 3)
    assert (report["findings"], report["incidents"]) == (1, 1)
    (top,) = report["top"]
    assert (top["subject"], top["unique_exposed"]) == ("Café rota", 12)
    # the five contact@ addresses are role mailboxes: the share is of people, 7 of 7
    assert top["personal_share"] == pytest.approx(1.0, abs=1e-3)
    assert sum(report["findings_under_10_external_by_severity"].values()) == 0
    assert "Café rota" in corpus_sweep.render(report)
