"""Microsoft Sentinel: the real azure-monitor-ingestion client against the local Logs
Ingestion endpoint (HTTPS, gzip, 1 MB, the stream's declared columns), exactly once."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.identity.aio import ClientSecretCredential
from azure.monitor.ingestion import LogsUploadError
from azure.monitor.ingestion.aio import LogsIngestionClient
from hypothesis import given
from hypothesis import strategies as st
from support.backups import back_up, restore
from support.digest import incident_of, swept_with_subject, written_digest
from support.processes import finish, held_at
from support.runner import Sweeper, write_config
from support.siem import STREAM, received, with_siem
from support.tenant import DAY_FINDINGS, DAY_INCIDENTS

from sweeper import store
from sweeper.commands import siem as export
from sweeper.commands.digest import run_digest
from sweeper.errors import IngestionError
from sweeper.fakegraph import FakeGraph
from sweeper.fakegraph.monitor import MAX_BODY, SCHEMA_FILE
from sweeper.graph.signin import make_credential
from sweeper.outbound.ingestion import Target, calls, upload
from sweeper.present.siem import FIELD_LIMIT, cut_short, finding_record
from sweeper.processes import this_host
from sweeper.settings import load_settings

ROOT = Path(__file__).parent.parent
CLINIC = "clinic.bookings@northwick.example"
MASKED = re.compile(r"^.\*\*\*@[^@*]+$")


def send(sweeper: Sweeper) -> tuple[int, str]:
    result = sweeper.run("siem", "send")
    return result.exit_code, result.output.strip()


def swept(sweeper: Sweeper) -> Sweeper:
    """A sweep that leaves the export to the test: a sweep sends by itself when [siem] is
    set (see the next test), so the section is put aside while it runs."""
    text = sweeper.config.read_text()
    write_config(sweeper.config, text.partition("\n[siem]\n")[0])
    try:
        result = sweeper.run("sweep")
    finally:
        write_config(sweeper.config, text)
    assert result.exit_code in (0, 1), result.output
    return sweeper


def test_every_sweep_sends_its_run_to_sentinel_by_itself(sweeper: Sweeper) -> None:
    with_siem(sweeper)

    result = sweeper.run("sweep")

    assert result.exit_code == 0, result.output
    assert (
        f"Sentinel: sent 1 run, {DAY_FINDINGS} findings, {DAY_INCIDENTS} incidents" in result.output
    )
    assert Counter(r["Kind"] for r in received(sweeper.fake))["Run"] == 1
    assert send(sweeper) == (0, "Sentinel: nothing new to send.")


@pytest.fixture
def siem(sweeper: Sweeper) -> Sweeper:
    return swept(with_siem(sweeper))


# -- exactly once -------------------------------------------------------------------------


def test_no_event_id_repeats_across_databases_or_a_restored_copy(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    """Two installations sending to one workspace, and a database restored from a backup
    that numbers its runs again: `take_any(*) by EventId` must drop none of their records."""
    with_siem(sweeper)
    empty = tmp_path / "empty.db"
    assert sweeper.run("sweep", "--since", "2026-01-01", "--until", "2026-01-02").exit_code == 0
    with closing(sqlite3.connect(sweeper.db)) as src, closing(sqlite3.connect(empty)) as dst:
        src.backup(dst)  # a backup holding one run and no finding
    assert sweeper.run("sweep").exit_code == 0
    with closing(sqlite3.connect(empty)) as src, closing(sqlite3.connect(sweeper.db)) as dst:
        src.backup(dst)  # restored: the run and findings sent since are forgotten
    assert sweeper.run("sweep").exit_code == 0
    other = sweeper.env(SWEEPER_DB=str(tmp_path / "other.db"))
    assert sweeper.run("sweep", env=other).exit_code == 0

    records = received(sweeper.fake)
    runs = [r for r in records if r["Kind"] == "Run"]
    assert [r["RunId"] for r in runs] == [1, 2, 2, 1]  # numbers repeat; their EventIds do not
    assert len({r["EventId"] for r in runs}) == 4
    said: dict[str, set[str]] = {}
    for r in records:  # an EventId met twice is the same record sent again, never another
        content = {k: v for k, v in r.items() if k not in ("TimeGenerated", "UpdatedAt")}
        said.setdefault(r["EventId"], set()).add(
            orjson.dumps(content, option=orjson.OPT_SORT_KEYS).decode()
        )
    assert len(records) > DAY_FINDINGS * 3 and all(len(c) == 1 for c in said.values())


def test_a_sweep_arrives_once_and_a_second_export_sends_nothing(siem: Sweeper) -> None:
    code, line = send(siem)

    assert code == 0, line
    assert line == (
        f"Sentinel: sent 1 run, {DAY_FINDINGS} findings, {DAY_INCIDENTS} incidents (new or "
        "changed)."
    )
    kinds = Counter(r["Kind"] for r in received(siem.fake))
    assert kinds == {"Run": 1, "Finding": DAY_FINDINGS, "Incident": DAY_INCIDENTS}
    assert {r["FindingId"] for r in received(siem.fake, "Finding")} == {
        f["id"] for f in siem.findings()
    }
    upload = siem.fake.uploads[-1]
    assert (upload.status, upload.gzip, upload.records) == (204, True, len(received(siem.fake)))
    assert upload.sent_bytes < upload.body_bytes  # gzip

    assert send(siem) == (0, "Sentinel: nothing new to send.")
    assert len(siem.fake.uploads) == 1  # nothing was even posted
    exports = siem.rows("select sent, pending, error from siem_exports order by id")
    assert [tuple(e) for e in exports] == [(len(received(siem.fake)), 0, None), (0, 0, None)]


def test_a_run_record_says_how_the_run_went(siem: Sweeper) -> None:
    send(siem)

    (run,) = received(siem.fake, "Run")
    row = siem.rows("select * from runs")[0]
    token = siem.rows("select value from meta where key = 'installation'")[0]["value"]
    assert re.fullmatch(rf"Run:{token}:1:[0-9a-f]{{16}}", run["EventId"])
    assert run == {
        "TimeGenerated": row["finished_at"],
        "Kind": "Run",
        "EventId": run["EventId"],
        "RunId": 1,
        "LogRunId": row["log_run_id"],
        "RunStatus": "ok",
        "StartedAt": row["started_at"],
        "FinishedAt": row["finished_at"],
        "WindowSince": row["since"],
        "WindowUntil": row["until"],
        "Targeted": False,
        "MailboxesTotal": row["mailboxes_total"],
        "Swept": row["swept"],
        "SweptDisabled": row["swept_disabled"],
        "Skipped": row["skipped"],
        "Excluded": row["excluded"],
        "Failed": 0,
        "Throttled": row["throttled"],
        "MessagesRead": row["messages_read"],
        "Malformed": 0,
        "FindingsNew": DAY_FINDINGS,
        "IncidentsTouched": DAY_INCIDENTS,
        "Error": None,
    }


def test_a_changed_incident_is_sent_again_and_only_it(siem: Sweeper) -> None:
    send(siem)
    incident = siem.incidents()[0]["id"]
    result = siem.run(
        "incident", "set", str(incident), "acknowledged", "--by", "DPO", "--note", "x"
    )
    assert result.exit_code == 0, result.output

    assert send(siem) == (0, "Sentinel: sent 1 incident (new or changed).")

    versions = [r for r in received(siem.fake, "Incident") if r["IncidentId"] == incident]
    assert [v["Status"] for v in versions] == ["new", "acknowledged"]
    assert versions[0]["EventId"] != versions[1]["EventId"]
    assert len(received(siem.fake, "Incident")) == DAY_INCIDENTS + 1


def test_an_incident_back_to_what_it_said_before_is_a_new_event_not_a_repeat(
    siem: Sweeper,
) -> None:
    """Issue 24, item 3: each version sent is its own delivery, whatever it says; a version
    saying what an earlier one said must not be dropped as its repeat by ``EventId``."""
    send(siem)
    incident = str(siem.incidents()[0]["id"])
    for step in ("acknowledged", "notified", "reported_to_authority", "notified"):
        result = siem.run("incident", "set", incident, step, "--by", "DPO", "--note", step)
        assert result.exit_code == 0, result.output
        assert send(siem) == (0, "Sentinel: sent 1 incident (new or changed).")

    versions = [r for r in received(siem.fake, "Incident") if str(r["IncidentId"]) == incident]
    assert [v["Status"] for v in versions][-2:] == ["reported_to_authority", "notified"]
    assert len({v["EventId"] for v in versions}) == len(versions) == 5


def test_reclassify_changing_nothing_sends_nothing_again(siem: Sweeper) -> None:
    send(siem)
    assert siem.run("reclassify").exit_code == 0  # every incident recomputed, none changed

    assert send(siem) == (0, "Sentinel: nothing new to send.")


def test_a_second_run_sends_its_run_and_mailbox_failures_only(siem: Sweeper) -> None:
    send(siem)
    siem.fake.add_fault(mailbox=CLINIC, status=500, times=None)

    result = siem.run("sweep")  # the sweep sends its own run

    assert result.exit_code == 1
    assert "Sentinel: sent 1 run, 1 mailbox failure." in result.output
    run = received(siem.fake, "Run")[-1]
    (failure,) = received(siem.fake, "MailboxFailure")
    assert (run["RunId"], run["RunStatus"], run["Failed"]) == (2, "partial", 1)
    assert failure["RunId"] == 2 and failure["Mailbox"] == CLINIC
    assert failure["EventId"].startswith("MailboxFailure:")
    assert failure["EventId"].split(":")[2:4] == ["2", CLINIC]
    assert failure["Error"] and failure["TimeGenerated"] == run["FinishedAt"]


def test_records_of_a_restored_database_are_not_taken_for_repeats_of_those_before(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    with_siem(sweeper)
    backup = tmp_path / "backup.db"
    assert sweeper.run("sweep").exit_code == 0  # sends run 1 and what it found
    back_up(sweeper.db, backup)
    assert sweeper.run("sweep").exit_code == 0  # run 2, sent
    restore(backup, sweeper.db)

    assert sweeper.run("sweep").exit_code == 0  # run 2 again: another run, the same id

    runs = received(sweeper.fake, "Run")
    assert [r["RunId"] for r in runs] == [1, 2, 2]
    assert runs[1]["LogRunId"] != runs[2]["LogRunId"]  # each run its own
    assert len({r["EventId"] for r in runs}) == 3  # none dropped as a repeat by EventId


def test_a_run_still_going_waits_until_it_has_finished(siem: Sweeper) -> None:
    conn = sqlite3.connect(siem.db)
    with conn:
        conn.execute("update runs set status = 'running', finished_at = null")
    conn.close()

    send(siem)

    assert received(siem.fake, "Run") == [] and received(siem.fake, "Finding") == []
    assert len(received(siem.fake, "Incident")) == DAY_INCIDENTS


# -- addresses ------------------------------------------------------------------------------


def test_addresses_are_masked_by_default(siem: Sweeper) -> None:
    send(siem)

    findings = received(siem.fake, "Finding")
    addresses = [a for f in findings for a in f["Addresses"]]
    assert len(addresses) == sum(f["VisibleExternal"] for f in findings)
    assert all(MASKED.match(a) for a in addresses), addresses[:5]
    assert all(f["AddressesMasked"] for f in findings)
    stored = {r[0] for r in siem.rows("select address from finding_addresses where external = 1")}
    assert not stored & set(addresses)
    own = {f["Sender"] for f in findings} | {m for f in findings for m in f["Mailboxes"]}
    assert all(not MASKED.match(a) for a in own)  # the organisation's mailboxes stay readable


def test_full_addresses_sends_them_whole(sweeper: Sweeper) -> None:
    full = swept(with_siem(sweeper, "full_addresses = true"))

    send(full)

    for finding in received(full.fake, "Finding"):
        rows = full.rows(
            "select address from finding_addresses where finding_id = ? and external = 1 "
            "order by address",
            [finding["FindingId"]],
        )
        assert finding["Addresses"] == [r[0] for r in rows]
        assert finding["AddressesMasked"] is False


def test_an_outside_address_in_a_subject_is_masked_unless_full() -> None:
    row = {
        "id": 7, "run_id": 1, "incident_id": 3, "mailbox": "a@northwick.example",
        "mailboxes": ["a@northwick.example"], "sender": "a@northwick.example", "sent_by": None,
        "subject": "Fwd: from jane.doe@gmail.com to team@northwick.example", "sent_at": "x",
        "internet_message_id": "<m>", "to_count": 12, "cc_count": 0, "bcc_count": 0,
        "bcc_used": 0, "visible_external_count": 12, "severity": "medium",
        "severity_reason": "r", "suppressed_by": None, "source": "sweep",
        "external_domains": '["gmail.com"]', "found_at": "2027-01-01T00:00:00Z",
        "addresses": [f"p{n}@gmail.com" for n in range(1200)],
    }  # fmt: skip

    _, masked = finding_record(row, ["northwick.example"], full_addresses=False)
    _, whole = finding_record(row, ["northwick.example"], full_addresses=True)

    assert masked["Subject"] == "Fwd: from j***@gmail.com to team@northwick.example"
    assert whole["Subject"] == row["subject"]
    assert len(masked["Addresses"]) == 1000 and masked["AddressesOmitted"] == 200
    assert whole["Addresses"][:2] == ["p0@gmail.com", "p1@gmail.com"]


# -- failures -------------------------------------------------------------------------------


def test_a_503_once_then_accepted_is_sent_exactly_once(siem: Sweeper) -> None:
    siem.fake.add_fault(
        path="/dataCollectionRules/", status=503, code="ServiceUnavailable", message="Busy."
    )

    code, line = send(siem)

    assert code == 0, line
    assert [u.status for u in siem.fake.uploads] == [503, 204]
    ids = [r["EventId"] for r in received(siem.fake)]
    assert len(ids) == len(set(ids)) == 1 + DAY_FINDINGS + DAY_INCIDENTS
    assert send(siem) == (0, "Sentinel: nothing new to send.")


def test_a_429_is_waited_for_as_asked_but_not_for_minutes(siem: Sweeper) -> None:
    fake = siem.fake
    fake.add_fault(path="/dataCollectionRules/", status=429, code="TooManyRequests", retry_after=1)
    assert send(siem)[0] == 0
    assert [u.status for u in fake.uploads] == [429, 204]

    siem.fake.add_fault(mailbox=CLINIC, status=500, times=None)
    swept(siem)
    fake.add_fault(
        path="/dataCollectionRules/", status=429, code="TooManyRequests", retry_after=600
    )
    code, line = send(siem)

    assert code == 3
    assert line.startswith("Sentinel: Azure Monitor is busy and asked to wait 600 s (429")
    assert line.endswith("sent nothing, 2 records wait for the next export.")
    assert [u.status for u in fake.uploads] == [429, 204, 429]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_endpoint_is_one_line_and_nothing_is_marked(sweeper: Sweeper) -> None:
    down = swept(with_siem(sweeper, endpoint=f"https://127.0.0.1:{free_port()}"))

    code, line = send(down)

    assert code == 3
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "cannot be reached" in line and "(siem.endpoint)" in line
    assert line.endswith(f"{1 + DAY_FINDINGS + DAY_INCIDENTS} records wait for the next export.")
    assert down.rows("select * from siem_sent") == []
    assert len(down.findings()) == DAY_FINDINGS  # the sweep's findings are untouched

    up = down.config.read_text().replace(
        re.search(r'endpoint = "([^"]+)"', down.config.read_text())[1],  # type: ignore[index]
        down.fake.ingestion_url,
    )
    write_config(down.config, up)
    assert send(down)[0] == 0
    assert len(received(down.fake)) == 1 + DAY_FINDINGS + DAY_INCIDENTS


def test_export_after_run_never_raises(sweeper: Sweeper) -> None:
    down = swept(with_siem(sweeper, endpoint=f"https://127.0.0.1:{free_port()}"))
    settings = load_settings(down.config, down.env())
    db = store.open_db(down.db)

    outcome = export.export_after_run(db, settings, down.env())

    assert outcome.error is not None and outcome.exit_code == 3
    assert outcome.line.startswith("Sentinel: the Logs Ingestion endpoint https://127.0.0.1:")
    assert outcome.sent == {} and outcome.pending == 1 + DAY_FINDINGS + DAY_INCIDENTS
    assert len(down.findings()) == DAY_FINDINGS


def test_an_unexpected_error_in_the_export_is_one_line_too(
    siem: Sweeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(db: object) -> list[dict[str, Any]]:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(export.ledger, "pending_runs", broken)
    settings = load_settings(siem.config, siem.env())

    outcome = export.export_after_run(store.open_db(siem.db), settings, siem.env())

    assert outcome.line == (
        "Sentinel: internal error: RuntimeError: boom; sent nothing, 0 records wait for the "
        "next export."
    )
    assert outcome.exit_code == 3
    assert siem.rows("select error from siem_exports")[0][0] == "internal error: RuntimeError: boom"


def test_a_call_left_unanswered_is_sent_again_with_the_same_event_ids(siem: Sweeper) -> None:
    """At least once where it cannot be known: the client gave up waiting, and the call was
    ingested all the same. The repeat carries the same EventIds."""
    write_config(
        siem.config,
        siem.config.read_text().replace("[graph]\n", "[graph]\ntimeout_seconds = 1\n"),
    )
    fake = siem.fake
    fake.add_fault(path="/dataCollectionRules/", kind="stall", stall=2.5)

    code, line = send(siem)

    assert code == 3 and "no answer from" in line and "go again with the next export" in line
    assert siem.rows("select * from siem_sent") == []
    deadline = time.monotonic() + 10
    while not received(fake) and time.monotonic() < deadline:
        time.sleep(0.1)  # the stalled call is ingested after the client gave up on it
    first = [r["EventId"] for r in received(fake)]
    assert len(first) == 1 + DAY_FINDINGS + DAY_INCIDENTS

    assert send(siem)[0] == 0
    again = Counter(r["EventId"] for r in received(fake))
    assert set(again) == set(first) and set(again.values()) == {2}
    assert send(siem) == (0, "Sentinel: nothing new to send.")


def test_a_refused_sign_in_is_one_line_and_sends_nothing(siem: Sweeper) -> None:
    env = siem.env(AZURE_CLIENT_SECRET="not-the-secret")

    result = siem.run("siem", "send", env=env)

    assert result.exit_code == 3
    assert result.output.strip() == (
        "Sentinel: no token for Azure Monitor (https://monitor.azure.com/.default): Microsoft "
        "Entra ID error '(invalid_client) AADSTS7000215: Invalid client secret provided.'; "
        f"sent nothing, {1 + DAY_FINDINGS + DAY_INCIDENTS} records wait for the next export."
    )
    assert siem.fake.uploads == []


def test_without_the_role_on_the_rule_the_line_says_which(siem: Sweeper) -> None:
    siem.fake.ingestion_allowed = False

    code, line = send(siem)

    assert code == 3
    assert "Monitoring Metrics Publisher role on the data collection rule" in line
    assert "(403 OperationFailed)" in line


def test_an_unknown_rule_names_the_settings(sweeper: Sweeper) -> None:
    other = swept(with_siem(sweeper))
    write_config(
        other.config, other.config.read_text().replace(other.fake.rule_id, "dcr-" + "0" * 32)
    )

    code, line = send(other)

    assert code == 3
    assert "(siem.rule_id)" in line and "(siem.stream)" in line and "(404 NotFound)" in line


def test_two_exports_at_once_do_not_both_send(siem: Sweeper) -> None:
    db = store.open_db(siem.db)
    mine = export.ledger.start_export(db)  # this live process: another export under way

    code, line = send(siem)

    assert code == 3
    assert line == (
        f"Sentinel: another process (pid {os.getpid()} on {this_host()}) is "
        "sending to Microsoft Sentinel; this one sent nothing; sent nothing, 0 records wait "
        "for the next export."
    )
    assert received(siem.fake) == []
    export.ledger.finish_export(db, mine, sent=0, pending=0, error=None)
    assert send(siem)[0] == 0


def test_an_export_under_way_in_another_process_stops_a_second_one(
    siem: Sweeper, tmp_path: Path
) -> None:
    release = tmp_path / "go"
    first = held_at("siem-claimed", siem, release, "siem", "send")  # has claimed the export

    code, line = send(siem)
    assert code == 3
    assert f"another process (pid {first.pid} on {this_host()})" in line
    assert received(siem.fake) == []
    code, output = finish(first, release)

    assert code == 0, output
    ids = Counter(r["EventId"] for r in received(siem.fake))
    assert len(ids) == 1 + DAY_FINDINGS + DAY_INCIDENTS and max(ids.values()) == 1


def test_two_exports_started_together_send_each_record_once(siem: Sweeper) -> None:
    command = [sys.executable, "-m", "sweeper", "siem", "send"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **siem.env()}
    children = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [child.communicate(timeout=120)[0] for child in children]

    ids = Counter(r["EventId"] for r in received(siem.fake))
    assert len(ids) == 1 + DAY_FINDINGS + DAY_INCIDENTS, outputs
    assert max(ids.values()) == 1, outputs
    assert sorted(child.returncode for child in children)[0] == 0, outputs


def test_an_export_a_killed_process_left_is_marked_interrupted(siem: Sweeper) -> None:
    conn = sqlite3.connect(siem.db)
    with conn:
        conn.execute(
            "insert into siem_exports (started_at, pid, host) values (?, ?, ?)",
            ["2027-01-01T00:00:00Z", 2**22 + 1, this_host()],  # no such process
        )
    conn.close()

    assert send(siem)[0] == 0
    rows = siem.rows("select error from siem_exports order by id")
    assert [r[0] for r in rows] == [export.ledger.INTERRUPTED, None]


# -- size -----------------------------------------------------------------------------------


def many_findings(sweeper: Sweeper, copies: int) -> None:
    """``copies`` more findings like the largest one (addresses too), each its own message."""
    conn = sqlite3.connect(sweeper.db)
    columns = [r[1] for r in conn.execute("pragma table_info(findings)") if r[1] != "id"]
    picked = ", ".join(c if c != "message_key" else "message_key || ?" for c in columns)
    (largest,) = conn.execute(
        "select id from findings order by visible_external_count desc limit 1"
    ).fetchone()
    with conn:
        for n in range(copies):
            cursor = conn.execute(
                f"insert into findings ({', '.join(columns)}) select {picked} from findings "
                "where id = ?",
                [f"#copy{n}", largest],
            )
            conn.execute(
                "insert into finding_addresses (finding_id, address, domain, name, field, "
                "external) select ?, address, domain, name, field, external "
                "from finding_addresses where finding_id = ?",
                [cursor.lastrowid, largest],
            )
    conn.close()


def test_an_export_over_1_mb_goes_in_several_calls_all_accepted(sweeper: Sweeper) -> None:
    big = swept(with_siem(sweeper, "full_addresses = true"))
    many_findings(big, 250)

    code, line = send(big)

    assert code == 0, line
    uploads = big.fake.uploads
    assert len(uploads) >= 2 and all(u.status == 204 for u in uploads)
    assert sum(u.body_bytes for u in uploads) > MAX_BODY
    assert all(u.body_bytes <= MAX_BODY for u in uploads)
    assert len(received(big.fake, "Finding")) == DAY_FINDINGS + 250
    ids = [r["EventId"] for r in received(big.fake)]
    assert len(ids) == len(set(ids))


def test_a_partly_refused_export_marks_only_the_calls_accepted(sweeper: Sweeper) -> None:
    big = swept(with_siem(sweeper, "full_addresses = true"))
    many_findings(big, 250)
    big.fake.add_fault(
        path="/dataCollectionRules/", status=400, code="InvalidPayload", message="No.", after=1
    )

    code, line = send(big)

    assert code == 3
    assert "Azure Monitor refused the upload (400 InvalidPayload): No." in line
    first = big.fake.uploads[0]
    assert [u.status for u in big.fake.uploads] == [204, 400]
    assert len(big.rows("select * from siem_sent")) == first.records == len(received(big.fake))

    assert send(big)[0] == 0
    ids = Counter(r["EventId"] for r in received(big.fake))
    assert len(ids) == 1 + DAY_INCIDENTS + DAY_FINDINGS + 250
    assert max(ids.values()) == 1  # exactly once overall


def records_of_size(count: int, size: int) -> list[dict[str, Any]]:
    """Run records whose JSON is ``size`` bytes each."""
    records = []
    for n in range(count):
        record = {"TimeGenerated": "2027-01-01T00:00:00Z", "Kind": "Run", "RunId": n, "Error": ""}
        record["Error"] = "x" * (size - len(json.dumps(record)))
        records.append(record)
    return records


def test_the_client_alone_would_send_calls_over_the_limit(siem: Sweeper) -> None:
    """Why sweeper cuts records into calls itself: the client's own 1 MiB chunks leave out
    the separators between records, so a chunk of small records is over 1 MiB and refused."""
    fake = siem.fake
    records = records_of_size(1100, 1000)
    failures: list[LogsUploadError] = []

    async def on_error(failure: LogsUploadError) -> None:
        failures.append(failure)

    async def go() -> None:
        credential = ClientSecretCredential(
            fake.tenant.tenant_id, fake.client_id, fake.client_secret,
            authority=fake.authority, disable_instance_discovery=True,
            connection_verify=str(fake.ca_path),
        )  # fmt: skip
        async with (
            credential,
            LogsIngestionClient(
                fake.ingestion_url, credential, connection_verify=str(fake.ca_path)
            ) as client,
        ):
            await client.upload(fake.rule_id, STREAM, records, on_error=on_error)

    asyncio.run(go())

    assert [u.status for u in fake.uploads] == [413, 204]
    assert fake.uploads[0].body_bytes > MAX_BODY
    assert len(failures) == 1 and len(failures[0].failed_logs) == 1048

    sent = upload_directly(siem, records)
    assert sent == list(range(1100)) and all(u.status == 204 for u in fake.uploads[2:])


def upload_directly(sweeper: Sweeper, records: list[dict[str, Any]], **target: Any) -> list[int]:
    """Records through sweeper's own upload, signed in as sweeper is; the positions accepted."""
    settings = load_settings(sweeper.config, sweeper.env())
    accepted: list[int] = []

    async def go() -> None:
        credential = make_credential(settings.sign_in, sweeper.env())
        async with credential:
            chosen = export.target_for(settings)
            where = Target(**{**chosen.__dict__, **target})
            await upload(where, credential, records, accepted.extend)

    asyncio.run(go())
    return accepted


@given(st.lists(st.integers(min_value=40, max_value=3000), max_size=80))
def test_calls_cover_every_record_in_order_and_each_fits(sizes: list[int]) -> None:
    records = [{"Error": "x" * n} for n in sizes]
    budget = 10_000

    slices = calls(records, budget)

    assert [i for start, end in slices for i in range(start, end)] == list(range(len(records)))
    assert all(len(json.dumps(records[start:end])) <= budget for start, end in slices)
    # as full as they can be: the next record would not have fitted
    assert all(len(json.dumps(records[start : end + 1])) > budget for start, end in slices[:-1])


def test_a_record_too_large_for_any_call_is_refused_before_sending() -> None:
    with pytest.raises(IngestionError, match="larger than one upload may carry"):
        calls([{"Kind": "Finding", "Error": "x" * 2_000_000}])


# -- a record over the limit (issue 24, item 17) ---------------------------------------------

HUGE_SUBJECT = "Quarterly figures for every clinic, " * 31_000  # 1.1 MB


def test_a_record_made_huge_by_its_subject_is_cut_short_and_holds_nothing_back(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    assert len(HUGE_SUBJECT) > 1_100_000
    swept_with_subject(sweeper, "huge", HUGE_SUBJECT, tmp_path)
    with_siem(sweeper)
    huge = incident_of(sweeper, "huge")

    code, line = send(sweeper)

    assert code == 0, line
    assert "Records: 2 sent with a text field cut short to fit" in line
    assert all(u.status == 204 and u.body_bytes <= MAX_BODY for u in sweeper.fake.uploads)
    assert {r["FindingId"] for r in received(sweeper.fake, "Finding")} == {
        f["id"] for f in sweeper.findings()
    }
    cut = [r for r in received(sweeper.fake) if r.get("Truncated")]
    assert {(r["Kind"], r["IncidentId"]) for r in cut} == {("Finding", huge), ("Incident", huge)}
    for record in cut:
        assert record["Truncated"] == ["Subject"]
        assert 8000 < len(record["Subject"]) <= 8192
        assert record["Subject"].endswith("…")
        assert HUGE_SUBJECT.startswith(record["Subject"][:-1] + " ")  # cut at a word's end
    [finding] = [r for r in cut if r["Kind"] == "Finding"]
    notes = sweeper.rows("select kind, item, note from siem_sent where note is not null")
    assert sorted(tuple(n) for n in notes) == [
        ("Finding", str(finding["FindingId"]), "sent with Subject cut short to 8,192 characters"),
        ("Incident", str(huge), "sent with Subject cut short to 8,192 characters"),
    ]

    later = sweeper.run("sweep")  # sends its own records by itself

    assert later.exit_code == 0, later.output
    assert "Sentinel: sent 1 run" in later.output
    assert [r["RunId"] for r in received(sweeper.fake, "Run")] == [1, 2]
    health = health_of(written_digest(sweeper))
    assert (
        f"Sentinel record Finding {finding['FindingId']}: sent with Subject cut short to "
        "8,192 characters" in health
    )
    assert f"Sentinel record Incident {huge}: sent with Subject cut short to 8,192" in health


def health_of(html: str) -> str:
    """The digest's health section, as its reader sees the words."""
    section = html.split("Sweep health")[1].split("Incidents by day")[0]
    return " ".join(re.sub(r"<[^>]+>", " ", section).split())


def test_a_record_too_large_even_cut_short_is_set_aside_and_the_digest_says_so(
    siem: Sweeper, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = export.finding_record
    first = min(f["id"] for f in siem.findings())

    def with_many_domains(
        row: dict[str, Any], internal: list[str], *, full_addresses: bool
    ) -> tuple[str, dict[str, Any]]:
        item, record = real(row, internal, full_addresses=full_addresses)
        if row["id"] == first:  # each short, and together over any upload
            record = {**record, "Domains": [f"d{n}.{'x' * 150}.example" for n in range(8000)]}
        return item, record

    monkeypatch.setattr(export, "finding_record", with_many_domains)

    code, line = send(siem)

    assert code == 0, line
    assert line.endswith(
        "Records: 1 set aside, too large to send even so (the digest's health lists them)."
    )
    assert {r["FindingId"] for r in received(siem.fake, "Finding")} == {
        f["id"] for f in siem.findings()
    } - {first}
    [note] = siem.rows("select note from siem_sent where kind = 'Finding' and item = ?", [first])
    assert re.fullmatch(
        r"set aside, not sent: [\d,]+ bytes even with its text fields cut short, over the "
        r"1,000,000 one upload may carry",
        note[0],
    )
    assert send(siem) == (0, "Sentinel: nothing new to send.")  # not tried again

    siem.with_digest(tmp_path)
    health = health_of(written_digest(siem))
    assert f"Sentinel record Finding {first}: set aside, not sent: " in health
    settings = load_settings(siem.config, siem.env())
    text = run_digest(store.open_db(siem.db), settings, siem.env(), dry_run=True).text or ""
    assert f"\n  Sentinel record: Finding {first}: set aside, not sent: " in text


def test_a_field_is_cut_at_a_word_s_end_and_in_linear_time() -> None:
    address = "someone.outside@gmail.com"
    text = "x " * 4090 + address + " and more"  # the limit falls inside the address

    short = cut_short(text)

    assert short == ("x " * 4090).rstrip() + "…"
    assert "@" not in short and len(short) <= FIELD_LIMIT
    assert cut_short("short") == "short"
    assert cut_short("y" * 2_000_000) == "…"  # one word longer than the field: nothing of it
    started = time.process_time()
    for text in ("y" * 20_000_000, "y " * 10_000_000, "a@b." * 5_000_000):
        assert len(cut_short(text)) <= FIELD_LIMIT
    assert time.process_time() - started < 5  # linear in the limit: milliseconds


# -- what the local endpoint checks ---------------------------------------------------------


def test_a_record_with_an_undeclared_column_or_a_wrong_type_is_refused(siem: Sweeper) -> None:
    good = {"TimeGenerated": "2027-01-01T00:00:00Z", "Kind": "Run", "RunId": 1}

    for bad, said in (
        ({**good, "Colour": "red"}, "column 'Colour' is not declared"),
        ({**good, "RunId": "one"}, "column 'RunId' is long, not str"),
        ({**good, "Targeted": 1}, "column 'Targeted' is boolean, not int"),
        ({**good, "StartedAt": "yesterday"}, "column 'StartedAt' is datetime"),
        ({"Kind": "Run"}, "TimeGenerated is missing"),
    ):
        with pytest.raises(IngestionError, match=re.escape(said)):
            upload_directly(siem, [good, bad])

    assert received(siem.fake) == []
    assert upload_directly(siem, [good]) == [0]


def test_a_column_sweeper_sends_and_the_table_lacks_fails_the_export(
    siem: Sweeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = export.run_record

    def with_extra(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        item, record = real(row)
        return item, {**record, "Host": "somewhere"}

    monkeypatch.setattr(export, "run_record", with_extra)

    code, line = send(siem)

    assert code == 3 and "(400 InvalidRecord)" in line and "column 'Host'" in line
    assert siem.rows("select * from siem_sent") == []


def token_audiences(fake: FakeGraph) -> list[str]:
    def claims(token: str) -> dict[str, Any]:
        part = token.split(".")[1]
        loaded: dict[str, Any] = orjson.loads(
            base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        )
        return loaded

    return [claims(t)["aud"] for t in fake.issued_tokens]


def test_the_token_must_be_for_azure_monitor(siem: Sweeper) -> None:
    send(siem)
    assert "https://monitor.azure.com" in token_audiences(siem.fake)

    graph_scope = load_settings(siem.config, siem.env()).graph_scope
    with pytest.raises(IngestionError) as refused:
        upload_directly(siem, records_of_size(1, 200), scope=graph_scope)

    assert str(refused.value) == (
        "Azure Monitor refused sweeper's token (401 InvalidTokenAudience): The token's audience "
        "'http://127.0.0.1' is not https://monitor.azure.com."
    )


def test_a_managed_identity_sends_too(siem: Sweeper) -> None:
    write_config(
        siem.config,
        siem.config.read_text().replace('auth = "client_secret"', 'auth = "managed_identity"'),
    )
    env = siem.env(
        IDENTITY_ENDPOINT=f"http://127.0.0.1:{siem.fake.graph_port}/msi/token",
        IDENTITY_HEADER=siem.fake.identity_header,
    )
    del env["AZURE_CLIENT_SECRET"]

    result = siem.run("siem", "send", env=env)

    assert result.exit_code == 0, result.output
    assert len(received(siem.fake)) == 1 + DAY_FINDINGS + DAY_INCIDENTS


def test_the_local_stream_is_the_deployed_table() -> None:
    assert SCHEMA_FILE == ROOT / "deploy" / "sentinel" / "SweeperEvents_CL.json"
    schema = json.loads(SCHEMA_FILE.read_text())
    types = {c["type"] for c in schema["columns"]}
    assert types <= {"string", "int", "long", "real", "boolean", "datetime", "dynamic"}
    assert schema["stream"] == load_settings(None, {}, need_graph=False).siem.stream
    assert all(c["description"] for c in schema["columns"])


def test_the_example_queries_use_only_declared_columns() -> None:
    columns = {c["name"] for c in json.loads(SCHEMA_FILE.read_text())["columns"]}
    queries = sorted((ROOT / "deploy" / "sentinel" / "queries").glob("*.kql"))
    assert [q.name for q in queries] == [
        "mailboxes-failed-three-nights.kql",
        "new-critical-incidents.kql",
    ]
    for query in queries:
        text = re.sub(r"//.*", "", query.read_text())
        text = re.sub(r'"[^"]*"', '""', text)
        defined = set(re.findall(r"\b([A-Za-z_]\w*)\s*=(?!=)", text))
        used = set(re.findall(r"\b[A-Z]\w*\b", text)) - defined - {"SweeperEvents_CL"}
        assert used <= columns, (query.name, used - columns)


# -- settings -------------------------------------------------------------------------------

GOOD = 'endpoint = "https://sweeper-dce.uksouth-1.ingest.monitor.azure.com"'
RULE = 'rule_id = "dcr-0123456789abcdef0123456789abcdef"'


@pytest.mark.parametrize(
    ("lines", "setting"),
    [
        (['endpoint = "http://sweeper-dce.example"', RULE], "siem.endpoint"),
        (['endpoint = "sweeper-dce.example"', RULE], "siem.endpoint"),
        (['endpoint = "https://sweeper-dce.example/streams"', RULE], "siem.endpoint"),
        ([GOOD], "siem.rule_id"),
        ([GOOD, 'rule_id = "dcr-123"'], "siem.rule_id"),
        ([GOOD, RULE, 'stream = "SweeperEvents"'], "siem.stream"),
        ([GOOD, RULE, 'full_addresses = "yes"'], "siem.full_addresses"),
        ([GOOD, RULE, 'colour = "red"'], "siem.colour"),
        ([RULE], "siem.endpoint"),
        (["endpoint = 443", RULE], "siem.endpoint"),
    ],
)
def test_a_bad_siem_setting_is_one_line_naming_it(
    sweeper: Sweeper, lines: list[str], setting: str
) -> None:
    write_config(sweeper.config, sweeper.config.read_text() + "\n[siem]\n" + "\n".join(lines))

    for command in (("siem", "send"), ("sweep",)):
        result = sweeper.run(*command)

        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"sweeper: configuration error: {setting}: ")
        assert len(result.output.strip().splitlines()) == 1


def test_siem_send_without_siem_says_what_to_set(sweeper: Sweeper) -> None:
    result = sweeper.run("siem", "send")

    assert result.exit_code == 2
    assert result.output.strip() == (
        "sweeper: configuration error: siem.endpoint: is not set: nothing to send to "
        "(see deploy/sentinel)"
    )


def test_the_cloud_chooses_azure_monitors_scope(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "s.toml", f'[graph]\ncloud = "usgov"\n[siem]\n{GOOD}\n{RULE}\n'
    )

    settings = load_settings(config, {}, need_graph=False)

    assert settings.siem.scope == "https://monitor.azure.us/.default"
    assert settings.siem.enabled
