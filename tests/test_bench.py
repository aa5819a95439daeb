"""``make bench`` itself, run tiny so that it cannot rot. Its figures are not checked here:
speed is measured by the benchmark, not by timed tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.bench import main

pytestmark = pytest.mark.slow  # the benchmark, end to end


def test_the_benchmark_runs_end_to_end_and_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    main(
        [
            "--mailboxes", "12", "--messages", "40", "--sizes", "6", "--latency", "0.001",
            "--sdk-mailboxes", "2", "--retry-after", "1", "--page-sizes", "10,40",
            "--page-mailboxes", "3", "--page-messages", "40", "--startup-runs", "1",
            "--out", str(out),
        ]
    )  # fmt: skip
    report = out.read_text()
    assert "| tenant | 12 mailboxes, 480 messages in the window (the full sweep" in report
    quiet = "| quiet incremental night | 3 round trips for 12 mailboxes (0.25 per mailbox)"
    assert quiet in report  # users, domains, and one batch for up to 20 mailboxes
    assert "| sweeper's CPU per message, start-up excluded |" in report
    assert "| sweeper's start-up, apart |" in report
    assert "80 messages of 2 mailboxes" in report  # the SDK's path, its own process
    assert "| **CPU ratio**" in report and "| **wall ratio**" in report
    throttled = "12 mailboxes: every mailbox's first read answered 429, Retry-After 1 s"
    assert throttled in report and "the 12 throttled answers" in report
    assert "throttled night, 6 mailboxes" in report and "the 6 throttled answers" in report
    assert "0 mailboxes failed" in report
    assert "| 10 | 14 |" in report  # page size 10: 3 mailboxes x 4 pages, users, domains
    assert "| 40 | 5 |" in report  # page size 40: one page each, and users and domains
    assert "| decode + classify alone |" in report and "as before msgspec" in report
    assert "| 6 | 240 |" in report and "| 12 | 480 |" in report


def test_the_report_carries_the_figures_issue_26_sets_targets_for(tmp_path: Path) -> None:
    """Start-up CPU of `sweep` and `nightly` to their first Graph request, the CPU ratio
    with start-up included, and SQL statements per mailbox."""
    out = tmp_path / "BENCHMARKS.md"
    main(
        [
            "--mailboxes", "6", "--messages", "20", "--sizes", "6", "--latency", "0.001",
            "--sdk-mailboxes", "2", "--retry-after", "1", "--page-sizes", "20",
            "--page-mailboxes", "2", "--page-messages", "20", "--startup-runs", "1",
            "--out", str(out),
        ]
    )  # fmt: skip
    report = out.read_text()
    assert "| start-up CPU of `sweeper sweep`, process start to its first Graph request |" in report
    assert "| start-up CPU of `sweeper nightly`, the same |" in report
    assert "| **CPU ratio**, start-up included:" in report and "| ≥ 400x |" in report
    assert "| SQLite statements per mailbox, full sweep (6 generated mailboxes," in report
    assert "| SQLite statements per mailbox, `sweeper` itself on the demo tenant" in report
