"""Alert delivery as receivers see it: ids they can deduplicate on, a run's time budget,
and two runs at once.

- A ``webhook-id`` repeats only for a retry of the same alert: never across databases, a
  restored copy of one, or two test alerts (issue 24, item 3).
- A receiver that never answers, or asks to wait a minute, holds a sweep or the nightly job
  no longer than ``alerts.budget_seconds``: what is left is recorded pending and sent once by
  a later run (item 5).
- Two sweeps at once deliver each alert once: a delivery is claimed before it is tried, and
  the claim of a process that ended is taken over (item 9).

Everything runs through the real command line, real processes and real HTTP receivers on
loopback (tests/support/receivers.py) that verify each signature.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import orjson
import pytest
from support.alerts import SECRET, on_receivers, run_with_secret, with_alerts
from support.processes import child, kill
from support.receivers import Receiver
from support.runner import Sweeper

from sweeper import store
from sweeper.store import alerts as recorded

# The old delivery took 10 s per attempt, four attempts and 3.5 s of backoff per alert, one
# alert after another (43.5 s each); or slept out a Retry-After of 60 s three times. These
# bounds are far above a run within its budget and far below either.
WITHIN = 60.0


def serious(sweeper: Sweeper, levels: tuple[str, ...] = ("high", "critical")) -> list[int]:
    return [i["id"] for i in sweeper.incidents() if i["severity"] in levels]


def hook_ids(receiver: Receiver) -> list[str]:
    """The webhook-id of each delivery the receiver accepted."""
    return [r.headers["webhook-id"] for r in receiver.deliveries if r.path == "/hook"]


def incident_of(request_body: bytes) -> int | None:
    incident: int | None = orjson.loads(request_body)["data"]["incident_id"]
    return incident


def installation(path: Path) -> str:
    with closing(sqlite3.connect(path)) as conn:
        (token,) = conn.execute("select value from meta where key = 'installation'").fetchone()
    return str(token)


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy, as a backup tool makes it (SQLite's online backup)."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


# -- item 3: ids unique per installation and per delivery intent ----------------------------


def test_no_webhook_id_repeats_across_databases_or_a_restored_copy(
    sweeper: Sweeper, receiver: Receiver, tmp_path: Path
) -> None:
    assert sweeper.run("sweep").exit_code == 0  # incidents stored, no channel yet
    backup = tmp_path / "backup.db"
    copy_database(sweeper.db, backup)
    with_alerts(sweeper, f'webhook_url = "{receiver.url("/hook")}"\nmin_severity = "critical"\n')
    critical = serious(sweeper, ("critical",))

    assert run_with_secret(sweeper, "sweep", "--since", "1d").exit_code == 0
    first = hook_ids(receiver)
    copy_database(backup, sweeper.db)  # restored: the alerts sent since are forgotten
    again = run_with_secret(sweeper, "sweep", "--since", "1d")
    assert again.exit_code == 0, again.output
    restored = hook_ids(receiver)[len(first) :]
    other = sweeper.env(SWEEPER_DB=str(tmp_path / "other.db"), SWEEPER_WEBHOOK_SECRET=SECRET)
    assert sweeper.run("sweep", env=other).exit_code == 0  # a second installation
    second = hook_ids(receiver)[len(first) + len(restored) :]

    assert critical and len(first) == len(restored) == len(second) == len(critical)
    every = first + restored + second
    assert len(set(every)) == len(every)  # receivers that drop repeats drop none of these
    assert all(installation(sweeper.db) in i for i in first + restored)
    assert all(installation(tmp_path / "other.db") in i for i in second)
    ones = [r for r in receiver.deliveries if incident_of(r.body) == critical[0]]
    assert len({r.headers["webhook-id"] for r in ones}) == 3  # incident N: three ids


def test_each_alerts_test_has_a_new_webhook_id(sweeper: Sweeper, receiver: Receiver) -> None:
    with_alerts(sweeper, f'webhook_url = "{receiver.url("/hook")}"\n')

    for _ in range(2):
        result = run_with_secret(sweeper, "alerts", "test")
        assert result.exit_code == 0, result.output

    ids = hook_ids(receiver)
    assert len(ids) == 2 and ids[0] != ids[1]
    assert all(incident_of(r.body) is None for r in receiver.deliveries)  # about no incident


def test_a_retried_alert_keeps_its_webhook_id_in_the_next_run(
    sweeper: Sweeper, receiver: Receiver
) -> None:
    receiver.script["/hook"] = [(400, {}), (200, {})]  # the first alert refused, once
    with_alerts(sweeper, f'webhook_url = "{receiver.url("/hook")}"\nmin_severity = "critical"\n')

    assert run_with_secret(sweeper, "sweep").exit_code == 0
    refused = receiver.requests[0]
    assert refused.status == 400
    assert run_with_secret(sweeper, "sweep", "--since", "1d").exit_code == 0

    retried = receiver.requests[-1]
    assert retried.status == 200 and incident_of(retried.body) == incident_of(refused.body)
    assert retried.headers["webhook-id"] == refused.headers["webhook-id"]
    assert Counter(hook_ids(receiver))[refused.headers["webhook-id"]] == 1
    assert len(set(hook_ids(receiver))) == len(serious(sweeper, ("critical",)))


# -- item 5: one time budget for all delivery per run ---------------------------------------


def test_a_webhook_that_never_answers_holds_the_sweep_only_its_budget(
    sweeper: Sweeper, receiver: Receiver, teams: Receiver
) -> None:
    receiver.held.add("/hook")
    on_receivers(sweeper, teams, receiver, "budget_seconds = 3\n")

    started = time.monotonic()
    result = run_with_secret(sweeper, "sweep")
    took = time.monotonic() - started

    wanted = serious(sweeper)
    assert result.exit_code == 0, result.output
    assert len(wanted) >= 2 and took < WITHIN, took
    assert f"{len(wanted)} pending (this run's 3 s for delivery ran out" in result.output
    assert len(teams.deliveries) == len(wanted)  # the other channel was not held up
    listed = sweeper.listing("alerts")
    assert {a["status"] for a in listed if a["channel"] == "webhook"} == {"pending"}
    assert "Alert pending: incident" in run_with_secret(sweeper, "digest", "--dry-run").output

    receiver.release()
    assert run_with_secret(sweeper, "sweep", "--since", "1d").exit_code == 0

    assert sorted(incident_of(r.body) or 0 for r in receiver.deliveries) == sorted(wanted)
    assert len(set(hook_ids(receiver))) == len(wanted)  # once each
    assert len(teams.deliveries) == len(wanted)  # and Teams not again
    assert {a["status"] for a in sweeper.listing("alerts")} == {"sent"}


def test_a_retry_after_of_a_minute_is_left_for_the_next_run_not_slept_out(
    sweeper: Sweeper, receiver: Receiver
) -> None:
    receiver.script["/hook"] = [(429, {"Retry-After": "60"})]
    with_alerts(sweeper, f'webhook_url = "{receiver.url("/hook")}"\n')  # the 30 s default

    started = time.monotonic()
    result = run_with_secret(sweeper, "sweep")
    took = time.monotonic() - started

    wanted = serious(sweeper)
    assert result.exit_code == 0 and took < WITHIN, (took, result.output)
    assert len(receiver.requests) == len(wanted)  # one try each, no wait
    assert {a["status"] for a in sweeper.listing("alerts")} == {"pending"}
    assert f"{len(wanted)} pending" in result.output and "answered 429" in result.output

    receiver.script["/hook"] = [(200, {})]
    assert run_with_secret(sweeper, "sweep", "--since", "1d").exit_code == 0

    assert len(receiver.deliveries) == len(set(hook_ids(receiver))) == len(wanted)
    assert {a["status"] for a in sweeper.listing("alerts")} == {"sent"}


def test_the_nightly_digest_is_not_held_by_a_webhook_that_never_answers(
    sweeper: Sweeper, receiver: Receiver
) -> None:
    receiver.held.add("/hook")
    with_alerts(sweeper, f'webhook_url = "{receiver.url("/hook")}"\nbudget_seconds = 3\n')

    started = time.monotonic()
    result = run_with_secret(sweeper, "nightly")
    took = time.monotonic() - started

    assert result.exit_code == 0, result.output
    assert took < WITHIN, took
    [digest] = sweeper.fake.sent_mail  # sent, and after the alerts' time ran out
    body = str(digest["message"]["body"]["content"])
    assert re.search(r"Alert pending</td><td[^>]*>incident \d+ new:\w+ by webhook", body)


def test_alerts_test_to_a_webhook_that_never_answers_says_so_within_the_budget(
    sweeper: Sweeper, receiver: Receiver, teams: Receiver
) -> None:
    receiver.held.add("/hook")
    on_receivers(sweeper, teams, receiver, "budget_seconds = 2\n")

    started = time.monotonic()
    result = run_with_secret(sweeper, "alerts", "test")

    assert time.monotonic() - started < WITHIN
    assert result.exit_code == 3
    assert "✓ teams: sent" in result.output
    assert "✗ webhook: alerts.webhook_url: no answer before this run's time" in result.output
    assert "/hook" not in result.output  # never the URL's path


# -- item 9: a delivery is claimed before it is tried ---------------------------------------


def test_two_sweeps_at_once_deliver_each_alert_once(
    sweeper: Sweeper, receiver: Receiver, tmp_path: Path
) -> None:
    receiver.delay = 0.3  # a slow receiver: the two runs' deliveries overlap
    with_alerts(sweeper, f'webhook_url = "{receiver.url("/hook")}"\n')
    sweeper.fake.latency = 0.5  # each sweep lasts seconds: the two run at once
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(sys.path),  # this sweeper, as the tests import it
        **sweeper.env(SWEEPER_WEBHOOK_SECRET=SECRET),
    }
    command = [sys.executable, "-m", "sweeper", "sweep"]
    sweeps = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outcomes = [s.communicate(timeout=300) for s in sweeps]

    for process, (out, err) in zip(sweeps, outcomes, strict=True):
        assert process.returncode == 0, out + err
    wanted = serious(sweeper)
    delivered = Counter(incident_of(r.body) for r in receiver.deliveries)
    assert wanted and delivered == Counter(wanted)  # each alert once, none twice
    assert len(set(hook_ids(receiver))) == len(wanted)
    assert {a["status"] for a in sweeper.listing("alerts")} == {"sent"}


CLAIM = """
import sys, time
from pathlib import Path
from sweeper import store
from sweeper.store import alerts
db = store.open_db(Path(sys.argv[1]))
held = alerts.claim(db, incident_id=7, key="new:high", kind="new", channel="webhook",
                    severity="high", unique_exposed=40, run_id=None)
print(held.delivery_id, flush=True)
time.sleep(float(sys.argv[2]))
"""


def claim_here(path: Path) -> recorded.Claim | None:
    db = store.open_db(path)
    try:
        return recorded.claim(
            db,
            incident_id=7,
            key="new:high",
            kind="new",
            channel="webhook",
            severity="high",
            unique_exposed=40,
            run_id=None,
        )
    finally:
        db.conn.close()


@pytest.mark.slow
def test_a_claim_is_kept_while_its_process_lives_and_taken_over_once_it_ended(
    tmp_path: Path,
) -> None:
    path = tmp_path / "claims.db"
    store.open_db(path).conn.close()
    holder = child(CLAIM, str(path), "600")
    try:
        assert holder.stdout is not None
        delivery_id = holder.stdout.readline().strip()
        assert delivery_id, holder.stderr.read() if holder.stderr else ""

        assert claim_here(path) is None  # another process is delivering it
    finally:
        kill(holder)  # killed mid-delivery: nothing settled

    taken = claim_here(path)

    assert taken is not None and taken.delivery_id == delivery_id  # the same webhook-id
    assert claim_here(path) is None  # this process holds it now
