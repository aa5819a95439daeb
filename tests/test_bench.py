"""``make bench`` itself, run tiny so that it cannot rot. Its figures are not checked here:
speed is measured by the benchmark, not by timed tests."""

from __future__ import annotations

from pathlib import Path

from sweeper.bench import main


def test_the_benchmark_runs_end_to_end_and_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    main(
        [
            "--mailboxes", "12", "--messages", "40", "--sizes", "6", "--latency", "0.001",
            "--sdk-mailboxes", "2", "--out", str(out),
        ]
    )  # fmt: skip
    report = out.read_text()
    assert "| tenant | 12 mailboxes, 480 messages in the window |" in report
    quiet = "| quiet incremental night | 3 round trips for 12 mailboxes (0.25 per mailbox)"
    assert quiet in report  # users, domains, and one batch for up to 20 mailboxes
    assert "raw JSON vs SDK model objects, 2 mailboxes" in report
    assert "| decode + classify alone |" in report and "as before msgspec" in report
    assert "| 6 | 240 |" in report and "| 12 | 480 |" in report
