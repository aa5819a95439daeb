"""Every mailbox that can send is swept: enabled users, shared mailboxes, leavers' kept ones.

A shared mailbox is a disabled account with a mailbox; a leaver whose mailbox was removed
is a disabled account without one, probed once and then weekly, not every night.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from support.runner import Sweeper, write_config

from sweeper.rules.accounts import PROBE_AGAIN, excluded_by, probe_due, unmatched
from sweeper.when import iso

CLINIC = "clinic.bookings@northwick.example"  # shared: a disabled account with a mailbox
KEPT = "leaver.1@northwick.example"  # a leaver whose mailbox was kept
GONE = "leaver.2@northwick.example"  # a leaver whose mailbox was removed


@pytest.fixture
def nightly(sweeper: Sweeper) -> Sweeper:
    return sweeper.with_digest(sweeper.db.parent / "reports")


def with_sweep_setting(sweeper: Sweeper, line: str) -> None:
    text = sweeper.config.read_text().replace("[sweep]\n", f"[sweep]\n{line}\n")
    write_config(sweeper.config, text)


def probes_of(sweeper: Sweeper, mailbox: str) -> int:
    return len([e for e in sweeper.fake.requests_for(mailbox) if e.path.endswith("/messages")])


# -- the rules, one function at a time -------------------------------------------------------


def test_an_exclusion_matches_the_upn_or_the_mail_address_whatever_the_case() -> None:
    patterns = ("room*@northwick.example", "test.account@northwick.example")

    assert excluded_by(["Room.4@Northwick.example", None], patterns) == patterns[0]
    assert excluded_by(["x@northwick.example", "test.account@northwick.example"], patterns)
    assert excluded_by(["roomba.fan@northwick.example"], ()) is None
    assert excluded_by(["ann@northwick.example"], patterns) is None


def test_a_pattern_matching_no_account_is_named() -> None:
    accounts = [
        ("room.1@northwick.example", None),
        ("ann@northwick.example", "ann@northwick.example"),
    ]

    assert unmatched(["room*@northwick.example", "tset@northwick.example"], accounts) == [
        "tset@northwick.example"
    ]


def test_an_account_without_a_mailbox_is_probed_again_after_a_week() -> None:
    now = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)

    assert probe_due(None, now)
    assert not probe_due((now - timedelta(days=6, hours=23)).isoformat(), now)
    assert probe_due((now - PROBE_AGAIN).isoformat(), now)


# -- through the local Graph -----------------------------------------------------------------


def test_a_shared_mailbox_mass_mail_is_found_by_the_nightly_run(nightly: Sweeper) -> None:
    assert not nightly.fake.tenant.user(CLINIC).enabled  # as Entra shows a shared mailbox

    result = nightly.run("nightly")

    assert result.exit_code == 0, result.output
    [clinic] = [f for f in nightly.findings() if f["mailbox"] == CLINIC]
    assert (clinic["subject"], clinic["visible_external_count"]) == ("Clinic newsletter", 105)
    [run] = nightly.rows("select swept_disabled from runs")
    assert run["swept_disabled"] == 2  # the clinic's shared mailbox and a leaver's kept one
    [digest] = nightly.fake.sent_mail
    assert "2 of the swept belong to disabled accounts" in digest["message"]["body"]["content"]


def test_without_disabled_accounts_the_shared_mailbox_is_not_read(sweeper: Sweeper) -> None:
    with_sweep_setting(sweeper, "include_disabled = false")

    assert sweeper.run("sweep").exit_code == 0

    assert probes_of(sweeper, CLINIC) == 0
    assert not [f for f in sweeper.findings() if f["mailbox"] == CLINIC]


def test_a_leaver_without_a_mailbox_is_probed_once_then_weekly(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    assert probes_of(sweeper, GONE) == 1  # in a JSON batch with the other disabled accounts
    [first] = sweeper.rows(
        "select status, error from run_mailboxes where run_id = 1 and mailbox = ?", [GONE]
    )
    assert first["status"] == "skipped" and "MailboxNotEnabledForRESTAPI" in first["error"]

    assert sweeper.run("sweep").exit_code == 0
    assert probes_of(sweeper, GONE) == 1  # not asked again the next night
    assert probes_of(sweeper, KEPT) == 2  # a kept mailbox is read every night
    [second] = sweeper.rows(
        "select status, error, enabled from run_mailboxes where run_id = 2 and mailbox = ?", [GONE]
    )
    assert second["status"] == "skipped" and "probed again weekly" in second["error"]
    assert second["enabled"] == 0  # recorded with the run: a visible gap, not a silent one

    week_ago = iso(datetime.now(UTC) - PROBE_AGAIN - timedelta(minutes=1))
    with sqlite3.connect(sweeper.db) as conn:
        conn.execute("update mailboxes set last_attempt_at = ? where mailbox = ?", [week_ago, GONE])
    assert sweeper.run("sweep").exit_code == 0
    assert probes_of(sweeper, GONE) == 2  # a week on: asked again


def test_a_leaver_whose_mailbox_comes_back_is_read_at_the_next_probe(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    sweeper.fake.tenant.user(GONE).has_mailbox = True  # restored, or converted to shared

    assert sweeper.run("sweep", "--mailbox", GONE).exit_code == 0  # named: asked at once

    [row] = sweeper.rows("select status from run_mailboxes where run_id = 2")
    assert row["status"] == "swept"


def test_excluded_accounts_are_recorded_never_read(sweeper: Sweeper) -> None:
    with_sweep_setting(sweeper, 'exclude = ["room*@northwick.example", "' + CLINIC + '"]')

    result = sweeper.run("sweep")

    assert result.exit_code == 0, result.output
    assert probes_of(sweeper, CLINIC) == 0
    assert probes_of(sweeper, "room.1@northwick.example") == 0
    excluded = sweeper.rows(
        "select mailbox, error from run_mailboxes where error like 'excluded by sweep.exclude%'"
    )
    assert len(excluded) == 5  # four rooms and the clinic
    [run] = sweeper.rows("select excluded from runs")
    assert run["excluded"] == 5
    assert "5 excluded (sweep.exclude)" in result.output


def test_doctor_names_an_exclusion_that_matches_no_account_once(sweeper: Sweeper) -> None:
    configured = sweeper.with_digest(sweeper.db.parent / "reports")
    with_sweep_setting(
        configured, 'exclude = ["room*@northwick.example", "tset@northwick.example"]'
    )

    result = configured.run("doctor")

    assert result.output.count("'tset@northwick.example' matches no account") == 1
    assert "room*@northwick.example' matches no account" not in result.output
    assert "disabled accounts (swept if they have a mailbox" in result.output


def test_a_malformed_exclusion_is_one_line_naming_the_setting(sweeper: Sweeper) -> None:
    with_sweep_setting(sweeper, 'exclude = ["room*"]')

    result = sweeper.run("sweep")

    assert result.exit_code == 2
    assert "sweep.exclude[0]" in result.output
    assert "room*@northwick.example" in result.output  # the example of a good pattern
    assert "Traceback" not in result.output
