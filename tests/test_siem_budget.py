"""The Sentinel export after a run is outbound delivery, within the run's time budget
(issue 24, item 5's class): ``alerts.budget_seconds`` bounds the alerts and the export
together, so a Logs Ingestion endpoint that never answers, or asks to wait minutes, holds a
``sweep`` or the ``nightly`` job no longer than that budget. What was not sent stays
pending, and a later export sends it once.

Everything runs through the real command line, the real azure-monitor-ingestion client and
the local Logs Ingestion endpoint (HTTPS, as tests/test_siem.py starts it).
"""

from __future__ import annotations

import time
from collections import Counter

from support.alerts import run_with_secret, with_alerts
from support.receivers import Receiver
from support.runner import Sweeper, write_config
from support.siem import received, with_siem
from support.tenant import DAY_FINDINGS, DAY_INCIDENTS

from sweeper.fakegraph import FakeGraph
from sweeper.fakegraph.faults import Fault

EVERY = 1 + DAY_FINDINGS + DAY_INCIDENTS  # the sweep's run, its findings and incidents
RAN_OUT = "Sentinel: this run's 3 s for delivery (alerts.budget_seconds) ran out: "
# Before, azure-core slept out a Retry-After of 120 s three times (6 minutes), and a call
# with no answer waited graph.timeout_seconds (set to 120 s below). These bounds are far
# above a run within a 3 s budget and far below either.
WITHIN = 60.0


def budgeted(sweeper: Sweeper, alerts: str = "") -> Sweeper:
    """A 3 s budget for the run's delivery, reads that may wait 120 s, and [siem] set."""
    text = sweeper.config.read_text().replace("[graph]\n", "[graph]\ntimeout_seconds = 120\n")
    write_config(sweeper.config, text)
    with_alerts(sweeper, "budget_seconds = 3\n" + alerts)
    return with_siem(sweeper)


def busy(fake: FakeGraph) -> Fault:
    """The Logs Ingestion endpoint answers every call 429 with Retry-After: 120."""
    return fake.add_fault(
        path="/dataCollectionRules/",
        status=429,
        code="TooManyRequests",
        retry_after=120,
        times=None,
    )


def timed(sweeper: Sweeper, *args: str) -> tuple[int, str, float]:
    started = time.monotonic()
    result = run_with_secret(sweeper, *args)
    return result.exit_code, result.output, time.monotonic() - started


def sentinel_line(output: str) -> str:
    [line] = [s for s in output.splitlines() if s.startswith("Sentinel:")]
    return line


def sent_once_each(sweeper: Sweeper) -> None:
    """A later export sends every record, each once, and then nothing."""
    first = run_with_secret(sweeper, "siem", "send")
    assert first.exit_code == 0, first.output
    ids = Counter(r["EventId"] for r in received(sweeper.fake))
    assert len(ids) == EVERY and set(ids.values()) == {1}
    again = run_with_secret(sweeper, "siem", "send")
    assert (again.exit_code, again.output.strip()) == (0, "Sentinel: nothing new to send.")


def test_a_sentinel_asking_to_wait_two_minutes_holds_the_sweep_only_its_budget(
    sweeper: Sweeper,
) -> None:
    throttled = busy(budgeted(sweeper).fake)

    code, output, took = timed(sweeper, "sweep")

    assert code == 0, output  # as without [siem]: a failing SIEM is a line, not an exit code
    assert took < WITHIN, took
    line = sentinel_line(output)
    assert line.startswith(
        RAN_OUT + "Azure Monitor is busy and asked to wait 120 s, past the time for delivery "
        "(429 TooManyRequests)"
    ), line
    assert line.endswith(f"sent nothing, {EVERY} records wait for the next export.")
    assert [u.status for u in sweeper.fake.uploads] == [429]  # asked once, not slept out
    assert sweeper.rows("select * from siem_sent") == []
    [export] = sweeper.rows("select pending, error from siem_exports")
    assert export["pending"] == EVERY and "ran out" in export["error"]

    sweeper.fake.faults.remove(throttled)
    sent_once_each(sweeper)


def test_a_sentinel_that_never_answers_holds_the_sweep_only_its_budget(
    sweeper: Sweeper,
) -> None:
    budgeted(sweeper).fake.add_fault(path="/dataCollectionRules/", kind="hold")

    code, output, took = timed(sweeper, "sweep")

    assert code == 0, output
    assert took < WITHIN, took
    line = sentinel_line(output)
    assert line.startswith(RAN_OUT + "no answer in time from https://127.0.0.1:"), line
    assert "(siem.endpoint)" in line
    assert line.endswith(f"sent nothing, {EVERY} records wait for the next export.")
    assert sweeper.rows("select * from siem_sent") == []

    sweeper.fake.release_held()  # the held call is answered 503: nothing was ingested
    assert received(sweeper.fake) == []
    sent_once_each(sweeper)


def test_alerts_and_sentinel_share_one_budget(sweeper: Sweeper, receiver: Receiver) -> None:
    """A webhook that never answers takes the whole budget: the export after it starts
    with nothing left, and tries nothing, instead of adding its own time."""
    receiver.held.add("/hook")
    budgeted(sweeper, f'webhook_url = "{receiver.url("/hook")}"\n')

    code, output, took = timed(sweeper, "sweep")

    assert code == 0, output
    assert took < WITHIN, took
    assert "pending (this run's 3 s for delivery ran out" in output
    line = sentinel_line(output)
    assert line.startswith(RAN_OUT + "nothing could be sent to https://127.0.0.1:"), line
    assert sweeper.fake.uploads == []  # not a call made
    assert sweeper.rows("select * from siem_sent") == []

    receiver.release()
    sent_once_each(sweeper)


def test_nightly_sends_the_digest_and_leaves_sentinel_pending_within_the_budget(
    sweeper: Sweeper,
) -> None:
    throttled = busy(budgeted(sweeper).fake)

    code, output, took = timed(sweeper, "nightly")

    assert code == 0, output
    assert took < WITHIN, took
    assert len(sweeper.fake.sent_mail) == 1  # the digest went
    assert sentinel_line(output).startswith(RAN_OUT + "Azure Monitor is busy")
    assert sweeper.rows("select * from siem_sent") == []

    sweeper.fake.faults.remove(throttled)
    sent_once_each(sweeper)
