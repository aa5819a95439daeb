"""The digest exactly once: a process killed mid-send, and the next ``digest --send``.

The kills are real: ``python -m sweeper digest --send`` in a child process with
``SWEEPER_KILL_AT`` set, which sends itself SIGKILL at the named point (sweeper.faultpoints),
against the local Graph over HTTP, or a real SMTP server on loopback.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path

import orjson
import pytest
from support.backups import back_up, restore
from support.digest import GRAPH_DIGEST, with_digest
from support.processes import finish, held_at
from support.runner import Sweeper, write_config
from support.smtp import Relay, smtp_digest
from support.tenant import DAY_INCIDENTS

from sweeper import store
from sweeper.commands.digest import SENT_ITEMS_LAG, run_digest
from sweeper.fakegraph.tenant import DIGEST_SENDER
from sweeper.processes import process_started
from sweeper.rules.digest import Plan, message_id
from sweeper.settings import load_settings
from sweeper.store import sending
from sweeper.when import iso

MESSAGE_ID = re.compile(
    r"^<sweeper-digest\.(\d+)\.([0-9a-f]{16})\.([0-9a-f]{16})@northwick\.example>$"
)


def killed_at(point: str, sweeper: Sweeper, **env: str) -> subprocess.CompletedProcess[str]:
    """``sweeper digest --send`` in a child process that kills itself at ``point``."""
    return subprocess.run(
        [sys.executable, "-m", "sweeper", "digest", "--send"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **sweeper.env(SWEEPER_KILL_AT=point, **env),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def digests(sweeper: Sweeper) -> list[dict[str, object]]:
    return [dict(r) for r in sweeper.rows("select * from digests order by id")]


def items(sweeper: Sweeper, digest_id: int) -> list[tuple[str, int, int | None]]:
    rows = sweeper.rows(
        "select kind, item_id, unique_exposed from digest_items where digest_id = ? "
        "order by kind, item_id",
        [digest_id],
    )
    return [(r["kind"], r["item_id"], r["unique_exposed"]) for r in rows]


def planned(row: dict[str, object]) -> list[tuple[str, int, int | None]]:
    plan = Plan.from_json(str(row["plan"]))
    incidents = [("incident", i.id, i.unique_exposed) for i in plan.incidents]
    return sorted(incidents + [("run", r, None) for r in plan.runs])


def age(sweeper: Sweeper, digest_id: int, by: timedelta) -> None:
    """Make the digest row as old as if it had been written ``by`` earlier."""
    conn = sqlite3.connect(sweeper.db)
    try:
        with conn:
            (created,) = conn.execute(
                "select created_at from digests where id = ?", [digest_id]
            ).fetchone()
            earlier = iso(datetime.fromisoformat(created) - by)
            conn.execute("update digests set created_at = ? where id = ?", [earlier, digest_id])
    finally:
        conn.close()


def sendmail_posts(sweeper: Sweeper) -> list[int]:
    return [e.status for e in sweeper.fake.log if e.path.lower().endswith("/sendmail")]


def sent_items_lookups(sweeper: Sweeper) -> list[dict[str, str]]:
    return [
        e.query
        for e in sweeper.fake.log
        if "internetMessageId" in e.query.get("$filter", "") and e.mailbox == DIGEST_SENDER
    ]


@pytest.fixture
def swept(sweeper: Sweeper, tmp_path: Path) -> Sweeper:
    with_digest(sweeper, GRAPH_DIGEST + f'reports_dir = "{tmp_path / "reports"}"\n')
    assert sweeper.run("sweep").exit_code == 0
    return sweeper


# -- Graph, a copy kept in Sent Items (the default) -----------------------------------------


def test_a_digest_killed_after_graph_accepted_it_is_recorded_sent_and_not_sent_again(
    swept: Sweeper,
) -> None:
    killed = killed_at("digest-accepted", swept)

    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert len(swept.fake.sent_mail) == 1
    [row] = digests(swept)
    assert row["status"] == "sending"
    assert row["sent_at"] is None and items(swept, 1) == []
    assert MESSAGE_ID.match(str(row["internet_message_id"]))
    assert swept.fake.sent_mail[0]["message"]["internetMessageId"] == row["internet_message_id"]
    assert len([i for i in planned(row) if i[0] == "incident"]) == DAY_INCIDENTS

    again = swept.run("digest", "--send")

    assert again.exit_code == 0, again.output
    assert "Digest 1 was interrupted after Graph accepted it" in again.output
    assert "recorded as sent and not sent again" in again.output
    assert "Nothing new since today's digest: nothing sent" in again.output
    assert len(swept.fake.sent_mail) == 1 and sendmail_posts(swept) == [202]
    [row] = digests(swept)
    assert row["status"] == "sent" and row["error"] is None
    assert items(swept, 1) == planned(row)
    [lookup] = sent_items_lookups(swept)
    assert lookup["$filter"] == f"internetMessageId eq '{row['internet_message_id']}'"
    assert lookup["$select"] == "id,internetMessageId,sentDateTime"

    settings = load_settings(swept.config, swept.env())
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    later = run_digest(store.open_db(swept.db), settings, swept.env(), dry_run=True, now=tomorrow)
    assert later.digest is not None
    assert later.digest.new == () and later.digest.grown == ()


def test_a_digest_killed_before_it_was_sent_is_sent_once_when_graph_cannot_still_be_busy(
    swept: Sweeper,
) -> None:
    killed = killed_at("digest-sending", swept)
    assert killed.returncode == -signal.SIGKILL
    assert swept.fake.sent_mail == []
    [interrupted] = digests(swept)
    assert interrupted["status"] == "sending"

    # Just interrupted, and not in Sent Items: Graph may still be delivering it.
    soon = swept.run("digest", "--send")
    assert soon.exit_code == 3
    assert "not in sweeper@northwick.example's Sent Items yet" in soon.output
    assert "nothing sent, so that it is not sent twice" in soon.output
    assert swept.fake.sent_mail == [] and digests(swept)[0]["status"] == "sending"

    age(swept, 1, SENT_ITEMS_LAG + timedelta(minutes=1))
    later = swept.run("digest", "--send")

    assert later.exit_code == 0, later.output
    assert "Digest 1 was interrupted before Graph accepted it" in later.output
    assert f"{DAY_INCIDENTS} new incidents need review" in later.output
    [mail] = swept.fake.sent_mail
    first, second = digests(swept)
    assert first["status"] == "failed"
    assert first["error"] == "interrupted before Graph accepted it; not in Sent Items"
    assert items(swept, 1) == []
    assert second["status"] == "sent" and items(swept, 2) == planned(first)
    assert mail["message"]["internetMessageId"] == second["internet_message_id"]
    assert second["internet_message_id"] != first["internet_message_id"]


def test_graph_unreachable_during_the_check_sends_nothing(swept: Sweeper) -> None:
    assert killed_at("digest-accepted", swept).returncode == -signal.SIGKILL
    swept.fake.add_fault(
        mailbox=DIGEST_SENDER, path="/mailFolders/sentitems", status=503, times=None
    )

    result = swept.run("digest", "--send")

    assert result.exit_code == 3
    [line] = result.stdout.strip().splitlines()
    assert line.startswith("Digest 1 was interrupted while being sent, and whether Graph")
    assert "503" in line and "nothing sent, so that it is not sent twice" in line
    assert "Traceback" not in result.output
    assert len(swept.fake.sent_mail) == 1
    assert digests(swept)[0]["status"] == "sending"

    swept.fake.faults.clear()
    assert swept.run("digest", "--send").exit_code == 0
    assert len(swept.fake.sent_mail) == 1
    assert digests(swept)[0]["status"] == "sent"


def test_a_digest_whose_process_is_still_running_is_left_alone(swept: Sweeper) -> None:
    assert killed_at("digest-accepted", swept).returncode == -signal.SIGKILL
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        conn = sqlite3.connect(swept.db)
        with conn:
            conn.execute(
                "update digests set pid = ?, pid_started = ? where id = 1",
                [alive.pid, process_started(alive.pid)],
            )
        conn.close()

        result = swept.run("digest", "--send")

        assert result.exit_code == 3
        assert f"Digest 1 is being sent right now (pid {alive.pid} on" in result.output
        assert len(swept.fake.sent_mail) == 1 and sent_items_lookups(swept) == []
        assert digests(swept)[0]["status"] == "sending"
    finally:
        alive.kill()
        alive.wait()
    assert swept.run("digest", "--send").exit_code == 0
    assert len(swept.fake.sent_mail) == 1


# -- no copy to look for: Graph without Sent Items, SMTP -------------------------------------


def test_without_sent_items_an_interrupted_digest_is_sent_again_as_a_possible_repeat(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    with_digest(sweeper, GRAPH_DIGEST + f'save_to_sent_items = false\nreports_dir = "{tmp_path}"\n')
    assert sweeper.run("sweep").exit_code == 0
    assert killed_at("digest-accepted", sweeper).returncode == -signal.SIGKILL

    again = sweeper.run("digest", "--send")

    assert again.exit_code == 0, again.output
    assert "Digest 1 was interrupted before Graph answered, which cannot be checked" in again.output
    assert "Nothing new since today's digest" in again.output
    first, second = sweeper.fake.sent_mail
    assert first["saveToSentItems"] is False and second["saveToSentItems"] is False
    assert first["message"]["internetMessageId"] == second["message"]["internetMessageId"]
    assert first["message"]["subject"] == second["message"]["subject"]
    assert "Possibly a repeat." not in first["message"]["body"]["content"]
    assert "Possibly a repeat." in second["message"]["body"]["content"]
    assert sent_items_lookups(sweeper) == []
    [row] = digests(sweeper)
    assert row["status"] == "sent" and items(sweeper, 1) == planned(row)
    assert len([i for i in items(sweeper, 1) if i[0] == "incident"]) == DAY_INCIDENTS


def test_smtp_with_a_lost_answer_sends_again_with_the_same_message_id(
    sweeper: Sweeper, relay: Relay, tmp_path: Path
) -> None:
    with_digest(sweeper, smtp_digest(relay, tmp_path))
    assert sweeper.run("sweep").exit_code == 0
    smtp_env = {"SWEEPER_SMTP_PASSWORD": "relay-test-password", "SSL_CERT_FILE": str(relay.ca)}

    killed = killed_at("digest-accepted", sweeper, **smtp_env)

    assert killed.returncode == -signal.SIGKILL
    [row] = digests(sweeper)
    assert row["status"] == "sending" and row["transport"] == "smtp"
    again = sweeper.run("digest", "--send", env=sweeper.env(**smtp_env))

    assert again.exit_code == 0, again.output
    assert "Digest 1 was interrupted before the relay answered" in again.output
    first, second = relay.received
    assert first["Message-ID"] == second["Message-ID"] == row["internet_message_id"]
    assert MESSAGE_ID.match(first["Message-ID"])
    assert first["Subject"] == second["Subject"]
    assert "POSSIBLY A REPEAT" not in text_part(first)
    assert "POSSIBLY A REPEAT: sending this digest at" in text_part(second)
    assert "Possibly a repeat." in html_part(second)
    [row] = digests(sweeper)
    assert row["status"] == "sent" and items(sweeper, 1) == planned(row)
    quiet = sweeper.run("digest", "--send", env=sweeper.env(**smtp_env))
    assert "Nothing new since today's digest" in quiet.output
    assert len(relay.received) == 2


def test_an_interrupted_smtp_digest_whose_resend_fails_stays_pending(
    sweeper: Sweeper, relay: Relay, tmp_path: Path
) -> None:
    with_digest(sweeper, smtp_digest(relay, tmp_path))
    assert sweeper.run("sweep").exit_code == 0
    good = {"SWEEPER_SMTP_PASSWORD": "relay-test-password", "SSL_CERT_FILE": str(relay.ca)}
    assert killed_at("digest-accepted", sweeper, **good).returncode == -signal.SIGKILL

    refused = sweeper.run(
        "digest", "--send", env=sweeper.env(**{**good, "SWEEPER_SMTP_PASSWORD": "x"})
    )

    assert refused.exit_code == 3
    assert "sending it again failed" in refused.output
    assert "the relay refused the login" in refused.output
    [row] = digests(sweeper)
    assert row["status"] == "failed" and items(sweeper, 1) == []
    assert sweeper.run("digest", "--send", env=sweeper.env(**good)).exit_code == 0
    assert len(relay.received) == 2
    assert digests(sweeper)[1]["status"] == "sent"
    assert relay.received[1]["Message-ID"] != relay.received[0]["Message-ID"]


def text_part(mail: Message) -> str:
    return part(mail, "text/plain")


def html_part(mail: Message) -> str:
    return part(mail, "text/html")


def part(mail: Message, kind: str) -> str:
    for piece in mail.walk():
        if piece.get_content_type() == kind:
            payload = piece.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError(f"no {kind} part")


# -- the Message-ID ---------------------------------------------------------------------------


def test_the_message_id_is_the_digest_id_and_the_database_s_own_token(
    tmp_path: Path,
) -> None:
    first, second = store.open_db(tmp_path / "a.db"), store.open_db(tmp_path / "b.db")
    tokens = sending.installation(first), sending.installation(second)

    assert tokens[0] != tokens[1]
    assert all(re.fullmatch(r"[0-9a-f]{16}", t) for t in tokens)
    assert sending.installation(store.open_db(tmp_path / "a.db")) == tokens[0]  # kept
    nonce = "0123456789abcdef"
    ids = [message_id(7, token, "Sweeper@Northwick.example", nonce) for token in tokens]
    assert ids[0] == f"<sweeper-digest.7.{tokens[0]}.{nonce}@northwick.example>"
    assert ids[0] != ids[1]
    assert message_id(7, tokens[0], "sweeper@northwick.example", nonce) == ids[0]
    assert all(MESSAGE_ID.match(i) for i in ids)


def test_each_digest_sent_has_its_own_message_id(swept: Sweeper) -> None:
    assert swept.run("digest", "--send").exit_code == 0
    assert swept.run("digest", "--send", "--resend").exit_code == 0

    sent = [m["message"]["internetMessageId"] for m in swept.fake.sent_mail]
    token = sending.installation(store.open_db(swept.db))
    rows = digests(swept)
    nonces = [r["nonce"] for r in rows]
    assert sent == [
        f"<sweeper-digest.1.{token}.{nonces[0]}@northwick.example>",
        f"<sweeper-digest.2.{token}.{nonces[1]}@northwick.example>",
    ]
    assert nonces[0] != nonces[1]
    assert [r["internet_message_id"] for r in rows] == sent


def test_a_database_from_before_gets_its_token_when_opened(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    conn = sqlite3.connect(sweeper.db)
    with conn:
        conn.execute("drop table meta")
    conn.close()
    sweeper.as_before(
        "0013_digest_exactly_once",
        "digests",
        ["internet_message_id", "sender", "save_to_sent_items", "plan", "pid", "pid_started",
         "host"],
    )  # fmt: skip

    assert sweeper.run("incidents").exit_code == 0

    [row] = sweeper.rows("select value from meta where key = 'installation'")
    assert re.fullmatch(r"[0-9a-f]{16}", row["value"])
    columns = {r["name"] for r in sweeper.rows("pragma table_info(digests)")}
    assert {"internet_message_id", "plan", "pid", "pid_started", "host"} <= columns


def test_the_plan_keeps_what_the_digest_reports(swept: Sweeper) -> None:
    settings = load_settings(swept.config, swept.env())
    outcome = run_digest(store.open_db(swept.db), settings, swept.env(), dry_run=True)
    assert outcome.digest is not None

    plan = Plan.of(outcome.digest)

    assert Plan.from_json(plan.to_json()) == plan
    assert [i.id for i in plan.incidents] == [i.id for i in outcome.digest.new]
    raw = orjson.loads(plan.to_json())
    assert raw["incidents"][0] == {
        "id": outcome.digest.new[0].id,
        "unique_exposed": outcome.digest.new[0].unique_exposed,
        "reported_before": None,
    }


def test_save_to_sent_items_is_true_unless_turned_off(sweeper: Sweeper) -> None:
    assert load_settings(sweeper.config, sweeper.env()).digest.save_to_sent_items is True
    write_config(
        sweeper.config, sweeper.config.read_text() + GRAPH_DIGEST + "save_to_sent_items = false\n"
    )
    assert load_settings(sweeper.config, sweeper.env()).digest.save_to_sent_items is False


# -- a database restored from a backup (issue 24, item 8) -------------------------------------


def test_a_digest_interrupted_after_a_restore_is_not_taken_for_the_one_sent_before_it(
    swept: Sweeper, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.db"
    back_up(swept.db, backup)
    assert swept.run("digest", "--send").exit_code == 0
    [before] = swept.fake.sent_mail
    restore(backup, swept.db)
    assert digests(swept) == []  # the backup was taken before digest 1
    assert swept.run("sweep").exit_code == 0

    killed = killed_at("digest-sending", swept)
    assert killed.returncode == -signal.SIGKILL
    [row] = digests(swept)
    assert row["id"] == 1 and row["status"] == "sending"  # the same id as the one sent
    assert row["internet_message_id"] != before["message"]["internetMessageId"]
    assert str(row["internet_message_id"]).endswith(f".{row['nonce']}@northwick.example>")
    age(swept, 1, SENT_ITEMS_LAG + timedelta(minutes=1))

    again = swept.run("digest", "--send")

    assert again.exit_code == 0, again.output
    assert "Digest 1 was interrupted before Graph accepted it" in again.output
    assert "recorded as sent" not in again.output
    assert f"{DAY_INCIDENTS} new incidents need review" in again.output
    [lookup] = sent_items_lookups(swept)
    assert lookup["$filter"] == f"internetMessageId eq '{row['internet_message_id']}'"
    assert len(swept.fake.sent_mail) == 2  # the one before the restore, and this one
    first, second = digests(swept)
    assert first["status"] == "failed" and items(swept, 1) == []
    assert second["status"] == "sent" and items(swept, 2) == planned(first)
    assert swept.fake.sent_mail[1]["message"]["internetMessageId"] == second["internet_message_id"]


def test_after_a_restore_an_smtp_digest_does_not_repeat_the_message_id_sent_before_it(
    sweeper: Sweeper, relay: Relay, tmp_path: Path
) -> None:
    with_digest(sweeper, smtp_digest(relay, tmp_path))
    assert sweeper.run("sweep").exit_code == 0
    smtp_env = sweeper.env(SWEEPER_SMTP_PASSWORD="relay-test-password", SSL_CERT_FILE=str(relay.ca))
    backup = tmp_path / "backup.db"
    back_up(sweeper.db, backup)
    assert sweeper.run("digest", "--send", env=smtp_env).exit_code == 0
    restore(backup, sweeper.db)

    assert sweeper.run("digest", "--send", env=smtp_env).exit_code == 0

    first, second = relay.received
    assert MESSAGE_ID.match(first["Message-ID"]) and MESSAGE_ID.match(second["Message-ID"])
    assert first["Message-ID"].split(".")[:3] == second["Message-ID"].split(".")[:3]  # id 1
    assert first["Message-ID"] != second["Message-ID"]  # not dropped as a repeat of the first


def test_a_row_left_sending_without_a_nonce_is_sent_again_not_matched_in_sent_items(
    swept: Sweeper,
) -> None:
    assert killed_at("digest-accepted", swept).returncode == -signal.SIGKILL
    conn = sqlite3.connect(swept.db)
    with conn:  # as a release before nonces left it
        conn.execute("update digests set nonce = null where id = 1")
    conn.close()

    again = swept.run("digest", "--send")

    assert again.exit_code == 0, again.output
    assert "sent again with the same Message-ID, marked as a possible repeat" in again.output
    assert sent_items_lookups(swept) == []
    assert len(swept.fake.sent_mail) == 2
    assert digests(swept)[0]["status"] == "sent"


# -- two at once (issue 24, item 9) -----------------------------------------------------------


def test_a_digest_built_while_another_is_sent_is_not_sent_again(
    swept: Sweeper, tmp_path: Path
) -> None:
    release = tmp_path / "go"
    first = held_at("digest-built", swept, release, "digest", "--send")  # has read the items

    second = swept.run("digest", "--send")
    assert second.exit_code == 0, second.output
    code, output = finish(first, release)

    assert code == 3, output
    assert "digest 1 was sent by another process while this one was being prepared" in output
    assert "this one sent nothing" in output
    assert len(swept.fake.sent_mail) == 1
    assert [r["status"] for r in digests(swept)] == ["sent"]


def test_a_digest_on_its_way_stops_a_second_one(swept: Sweeper, tmp_path: Path) -> None:
    release = tmp_path / "go"
    first = held_at("digest-sending", swept, release, "digest", "--send")  # claimed it

    second = swept.run("digest", "--send")
    assert second.exit_code == 3
    assert f"Digest 1 is being sent right now (pid {first.pid} on" in second.output
    assert swept.fake.sent_mail == []
    code, output = finish(first, release)

    assert code == 0, output
    assert len(swept.fake.sent_mail) == 1
    assert [r["status"] for r in digests(swept)] == ["sent"]


def test_two_digest_sends_started_together_deliver_one_digest(swept: Sweeper) -> None:
    command = [sys.executable, "-m", "sweeper", "digest", "--send"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **swept.env()}
    children = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [child.communicate(timeout=120)[0] for child in children]

    assert sendmail_posts(swept) == [202], outputs
    assert [r["status"] for r in digests(swept)] == ["sent"]
    assert sorted(child.returncode for child in children)[0] == 0, outputs
