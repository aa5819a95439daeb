"""The whole sweep through the real SDK, real azure-identity and real HTTP to the local Graph."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from support.runner import Sweeper
from support.tenant import DAY_FINDINGS

from sweeper.fakegraph.tenant import REPLAY_BATCHES, recipient


def planted_keys(sweeper: Sweeper, days: float = 1) -> set[tuple[str, str]]:
    now = sweeper.fake.tenant.now
    planted = sweeper.fake.tenant.planted_between(
        now - timedelta(days=days, minutes=15), now + timedelta(minutes=1)
    )
    return {(p.mailbox, p.internet_message_id) for p in planted}


def found_keys(sweeper: Sweeper) -> set[tuple[str, str]]:
    return {(f["mailbox"], f["internet_message_id"]) for f in sweeper.findings()}


def rows(sweeper: Sweeper, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(sweeper.db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_nightly_sweep_finds_exactly_the_planted_incidents(sweeper: Sweeper) -> None:
    result = sweeper.run("sweep")

    assert result.exit_code == 0, result.output
    expected = planted_keys(sweeper)
    assert len(expected) == DAY_FINDINGS  # the two older incidents are out of the window
    assert found_keys(sweeper) == expected
    run = rows(sweeper, "select * from runs")[0]
    tenant = sweeper.fake.tenant
    with_mailbox = [u for u in tenant.users if u.has_mailbox]  # shared mailboxes too
    without = [u for u in tenant.users if not u.has_mailbox]
    assert (run["status"], run["swept"], run["skipped"], run["failed"]) == (
        "ok",
        len(with_mailbox),
        len(without),
        0,
    )
    assert run["findings_new"] == DAY_FINDINGS
    assert f"{DAY_FINDINGS} new findings" in result.output


def test_findings_carry_the_counts_a_dpo_needs(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    findings = sweeper.findings()
    replay = [f for f in findings if f["subject"] == "Victim satisfaction survey - your views"]
    assert sorted(f["visible_external_count"] for f in replay) == sorted(REPLAY_BATCHES)
    assert sum(f["visible_external_count"] for f in replay) == 1136
    clinic = next(f for f in findings if f["subject"] == "Clinic newsletter")
    assert (clinic["to_count"], clinic["cc_count"], clinic["bcc_count"]) == (105, 0, 3)
    assert clinic["bcc_used"] is True
    assert clinic["severity"] == "critical"
    threshold = next(f for f in findings if f["subject"] == "Volunteer induction")
    assert (threshold["to_count"], threshold["cc_count"], threshold["visible_external_count"]) == (
        10,
        2,
        10,
    )
    odd = next(f for f in findings if f["subject"] == "Re: Tenants' meeting")
    assert odd["visible_external_count"] == 12
    assert "xn--bcher-kva.example" in odd["external_domains"]


def test_exposed_addresses_are_stored_once_per_finding(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    counts = rows(
        sweeper,
        "select f.visible_external_count as expected, count(a.address) as stored "
        "from findings f join finding_addresses a on a.finding_id = f.id "
        "where a.external = 1 group by f.id",
    )
    assert len(counts) == DAY_FINDINGS
    assert all(r["expected"] == r["stored"] for r in counts)
    total = rows(
        sweeper, "select count(distinct address) as n from finding_addresses where external = 1"
    )[0]["n"]
    assert total == 1136 + 18 + 105 + 265 + 10 + 12 + 14 + 12 + 120  # service list last


def test_a_second_sweep_of_the_same_window_adds_nothing(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep", "--since", "2d").exit_code == 0
    before = sweeper.findings()
    again = sweeper.run("sweep", "--since", "2d")

    assert again.exit_code == 0
    assert "0 new findings" in again.output
    assert sweeper.findings() == before
    stored = "select count(*) as n from finding_addresses where external = 1"
    assert rows(sweeper, stored)[0]["n"] == sum(f["visible_external_count"] for f in before)


def test_a_wider_window_reaches_older_mail(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep", "--since", "7d").exit_code == 0

    assert found_keys(sweeper) == planted_keys(sweeper, days=7)
    assert any(f["subject"] == "Support group dates" for f in sweeper.findings())


@pytest.mark.parametrize("status", [429, 503, 504])
def test_a_throttled_mailbox_is_waited_for_and_swept(sweeper: Sweeper, status: int) -> None:
    upn = "victim.care@northwick.example"
    sweeper.fake.add_fault(mailbox=upn, status=status, times=2, retry_after=1)

    started = time.monotonic()
    result = sweeper.run("sweep")

    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 2  # Retry-After: 1, twice
    assert found_keys(sweeper) == planted_keys(sweeper)
    outcome = rows(sweeper, f"select * from run_mailboxes where mailbox = '{upn}'")[0]
    assert (outcome["status"], outcome["throttled"], outcome["findings_new"]) == ("swept", 2, 7)
    assert [e.status for e in sweeper.fake.requests_for(upn)] == [status, status, 200]


def test_a_failing_mailbox_is_recorded_and_the_others_are_swept(sweeper: Sweeper) -> None:
    broken = "clinic.bookings@northwick.example"
    sweeper.fake.add_fault(
        mailbox=broken, status=500, times=None, code="UnknownError", message="Something broke."
    )

    result = sweeper.run("sweep")

    assert result.exit_code == 1
    assert f"{broken}  500 UnknownError: Something broke." in result.output
    [(_, newsletter)] = {k for k in planted_keys(sweeper) if k[0] == broken}
    # Its one planted message is still found: a nurse sent it as the shared mailbox, and
    # her own Sent Items hold a copy.
    [copy] = [f for f in sweeper.findings() if f["internet_message_id"] == newsletter]
    assert copy["mailboxes"] == [copy["mailbox"]] != [broken]
    assert {k[1] for k in found_keys(sweeper)} == {k[1] for k in planted_keys(sweeper)}
    run = rows(sweeper, "select * from runs")[0]
    assert (run["status"], run["failed"]) == ("partial", 1)
    mailbox = rows(sweeper, f"select * from mailboxes where mailbox = '{broken}'")[0]
    assert mailbox["last_status"] == "failed"
    assert mailbox["last_success_at"] is None
    assert "500 UnknownError" in mailbox["last_error"]


def test_a_mailbox_still_throttled_after_the_retries_fails_visibly(sweeper: Sweeper) -> None:
    busy = "victim.care@northwick.example"
    # Retry-After of 180 s or more: the SDK does not wait, and neither may a nightly run.
    sweeper.fake.add_fault(mailbox=busy, status=429, times=None, retry_after=300)

    result = sweeper.run("sweep")

    assert result.exit_code == 1
    assert "still throttled: Graph asked to wait 300 s" in result.output
    assert len(sweeper.fake.requests_for(busy)) == 1
    outcome = rows(sweeper, f"select * from run_mailboxes where mailbox = '{busy}'")[0]
    assert (outcome["status"], outcome["throttled"]) == ("failed", 1)


def test_a_truncated_page_fails_the_mailbox_without_a_traceback(sweeper: Sweeper) -> None:
    victim = "victim.care@northwick.example"
    sweeper.fake.add_fault(mailbox=victim, kind="truncate", times=None)

    result = sweeper.run("sweep")

    assert result.exit_code == 1
    assert "1 failed" in result.output  # its batch's other mailboxes were fetched again
    assert "Traceback" not in result.output
    assert "malformed answer from Graph: not JSON" in result.output


def test_entries_that_are_not_messages_are_counted_and_shown(sweeper: Sweeper) -> None:
    victim = "victim.care@northwick.example"
    sweeper.fake.add_fault(mailbox=victim, kind="junk", times=1)

    result = sweeper.run("sweep")

    assert result.exit_code == 0
    assert "3 entries in Graph's answers were not messages" in result.output
    assert found_keys(sweeper) == planted_keys(sweeper)
    outcome = rows(sweeper, f"select * from run_mailboxes where mailbox = '{victim}'")[0]
    assert (outcome["status"], outcome["malformed"], outcome["messages"]) == ("swept", 3, 10)
    assert rows(sweeper, "select malformed from runs")[0]["malformed"] == 3


def test_only_the_named_mailboxes_are_swept(sweeper: Sweeper) -> None:
    upn = "clinic.bookings@northwick.example"
    result = sweeper.run("sweep", "--mailbox", upn.upper(), "--mailbox", "nobody@northwick.example")

    assert result.exit_code == 1  # the unknown mailbox is a recorded failure
    assert {f["mailbox"] for f in sweeper.findings()} == {upn}
    outcomes = {r["mailbox"]: r["status"] for r in rows(sweeper, "select * from run_mailboxes")}
    assert outcomes == {upn: "swept", "nobody@northwick.example": "failed"}


def test_sweeper_asks_graph_for_no_message_body(sweeper: Sweeper) -> None:
    # Without batching, so that every request is a page of page_size 7 and some mailboxes page.
    sweeper.config.write_text(
        sweeper.config.read_text().replace("[sweep]\n", "[sweep]\nbatch = false\n")
    )
    assert sweeper.run("sweep").exit_code == 0
    selects = {
        e.query.get("$select")
        for e in sweeper.fake.log
        if e.path.endswith("/messages") and "$skip" not in e.query
    }
    assert len(selects) == 1
    fields = set(selects.pop().split(","))
    assert not fields & {"body", "bodyPreview", "uniqueBody", "attachments"}
    paged = [e for e in sweeper.fake.log if "$skip" in e.query]
    assert paged, "page_size 7 must make some mailboxes page"


def test_a_wrong_client_secret_fails_the_run_with_one_line(sweeper: Sweeper) -> None:
    result = sweeper.run("sweep", env=sweeper.env(AZURE_CLIENT_SECRET="not-the-secret"))

    assert result.exit_code == 3
    assert "sign-in failed" in result.output
    assert "Traceback" not in result.output
    assert rows(sweeper, "select status from runs")[0]["status"] == "failed"


def test_an_unwritable_database_path_is_one_line_and_exit_2(sweeper: Sweeper) -> None:
    blocker = sweeper.db.parent
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where a directory should be")

    result = sweeper.run("sweep")

    assert result.exit_code == 2
    assert result.output.startswith(f"sweeper: cannot create database {sweeper.db}")
    assert len(result.output.strip().splitlines()) == 1


def test_the_scheduled_job_runs_the_sweep_as_a_separate_process(sweeper: Sweeper) -> None:
    job = Path(__file__).parent.parent / "jobs" / "sweep.py"
    result = subprocess.run(
        [sys.executable, str(job)],
        env={"PATH": "/usr/bin:/bin", **sweeper.env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"{DAY_FINDINGS} new findings" in result.stdout
    assert " swept: " in result.stderr  # not a terminal: one log line per mailbox
    assert found_keys(sweeper) == planted_keys(sweeper)


def test_a_nightly_sweep_reads_each_mailbox_from_its_own_high_water_mark(
    sweeper: Sweeper,
) -> None:
    assert sweeper.run("sweep").exit_code == 0
    older = next(p for p in sweeper.fake.tenant.planted if p.label == "older-40")
    # That mailbox last succeeded eight days ago (it failed all week): it catches up.
    conn = sqlite3.connect(sweeper.db)
    eight_days = (sweeper.fake.tenant.now - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    conn.execute(
        "update mailboxes set last_window_until = ? where mailbox = ?",
        [eight_days, older.mailbox],
    )
    conn.commit()
    conn.close()

    result = sweeper.run("sweep")

    assert result.exit_code == 0
    assert "2 new findings" in result.output  # the two older batches, nothing else again
    found = {f["internet_message_id"] for f in sweeper.findings()}
    assert older.internet_message_id in found
    windows = rows(sweeper, "select mailbox, window_since from run_mailboxes where run_id = 2")
    since = {r["mailbox"]: r["window_since"] for r in windows}
    assert since[older.mailbox] < eight_days  # from its mark, less the overlap
    assert since["victim.care@northwick.example"] > eight_days  # from last night's mark


def test_an_explicit_window_is_not_incremental(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    assert sweeper.run("sweep", "--since", "2d").exit_code == 0
    windows = {
        r["window_since"]
        for r in rows(sweeper, "select * from run_mailboxes where run_id = 2 and status = 'swept'")
    }
    assert len(windows) == 1


def test_batching_cuts_round_trips_and_finds_the_same(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    batched = list(sweeper.fake.log)
    posts = [e for e in batched if e.path.endswith("/$batch")]
    enabled = len([u for u in sweeper.fake.tenant.users if u.enabled])
    disabled = len(sweeper.fake.tenant.users) - enabled  # batched apart, on every sweep
    assert len(posts) == -(-enabled // 20) + -(-disabled // 20)  # one batch per 20 mailboxes
    found = found_keys(sweeper)

    config = sweeper.config.read_text().replace("[sweep]\n", "[sweep]\nbatch = false\n")
    sweeper.config.write_text(config)
    sweeper.fake.log.clear()
    assert sweeper.run("sweep", "--since", "1d").exit_code == 0
    one_by_one = list(sweeper.fake.log)  # every entry was an HTTP round trip
    # With batching, first pages were items inside the batches, not round trips of their own.
    round_trips = [
        e for e in batched if not (e.path.endswith("/messages") and "$skip" not in e.query)
    ]
    assert not [e for e in one_by_one if e.path.endswith("/$batch")]
    assert len(round_trips) < len(one_by_one)
    assert found_keys(sweeper) == found == planted_keys(sweeper)


def test_a_busy_mailbox_goes_on_after_its_batch_item_without_rereading(
    sweeper: Sweeper,
) -> None:
    service = sweeper.fake.tenant.user("victim.care@northwick.example")
    assert service is not None
    template = service.sent[0]
    for n in range(130):
        extra = dict(template)
        extra.update(
            id=f"AAMkAGbusy{n}",
            internetMessageId=f"<busy{n}@northwick.example>",
            toRecipients=[recipient("colleague@northwick.example")],
            ccRecipients=[],
        )
        service.sent.append(extra)
    service.sent.sort(key=lambda m: m["sentDateTime"], reverse=True)

    assert sweeper.run("sweep").exit_code == 0

    outcome = rows(
        sweeper, "select * from run_mailboxes where mailbox = 'victim.care@northwick.example'"
    )
    assert outcome[0]["messages"] == 137  # every message once: 7 batches and 130 others
    pages = [e.query for e in sweeper.fake.requests_for(service.upn)]
    assert pages[0]["$top"] == "100" and "$skip" not in pages[0]  # the batch item
    assert pages[1]["$skip"] == "100" and pages[1]["$top"] == "7"  # on from there, full pages
    assert found_keys(sweeper) == planted_keys(sweeper)


def test_critical_is_reserved_for_lists_that_reveal_who_the_people_are(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    by_subject = {i["subject"]: i for i in sweeper.incidents()}

    critical = {s for s, i in by_subject.items() if i["severity"] == "critical"}
    service_list = by_subject["Settlement conference"]

    assert critical == {
        "Victim satisfaction survey - your views",  # crime victims, from victim care
        "Clinic newsletter",  # patients, from the sexual health service
        "Relocation support",  # interpreters' private addresses
    }
    assert service_list["unique_exposed"] == 120  # a large business list: reviewed, no more
    assert service_list["severity"] == "medium"
    assert "a business list of 100+ people" in service_list["reason"]
    assert by_subject["Update on your case"]["severity"] == "high"  # one employer, but victims


def test_a_mailbox_waiting_out_retry_after_gives_its_slot_to_another(sweeper: Sweeper) -> None:
    config = sweeper.config.read_text().replace("concurrency = 4", "concurrency = 1")
    sweeper.config.write_text(config)
    readable = [u for u in sweeper.fake.tenant.users if u.has_mailbox]
    for user in readable:
        sweeper.fake.add_fault(mailbox=user.upn, status=429, retry_after=3, times=1)

    result = sweeper.run("sweep", "--since", "1d")  # mailbox by mailbox, one at a time

    assert result.exit_code == 0, result.output
    reads = [e for e in sweeper.fake.log if e.path.endswith("/messages")]
    first_answer = next(i for i, e in enumerate(reads) if e.status == 200)
    # With one slot, every mailbox was asked (and throttled) before any was asked again:
    # a mailbox waiting out its Retry-After held no slot.
    assert {e.mailbox for e in reads[:first_answer]} >= {u.upn for u in readable}
    assert {e.status for e in reads[:first_answer]} == {429, 404}  # 404: no mailbox at all
    assert found_keys(sweeper) == planted_keys(sweeper)
