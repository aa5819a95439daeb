"""Logs fit for operations, and nothing private in anything sweeper writes."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

from support.runner import Sweeper

from sweeper.logs import Guard

CLINIC = "clinic.bookings@northwick.example"  # a shared mailbox: read in a JSON batch
SERVICE = "victim.care@northwick.example"  # a user's mailbox: read on its own


def run(sweeper: Sweeper, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command in a process of its own, as cron or a container runs it."""
    return subprocess.run(
        [sys.executable, "-m", "sweeper", *args],
        env={**sweeper.env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def exposed_addresses(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select a.address from finding_addresses a join findings f on f.id = a.finding_id "
            "where a.domain not like '%northwick.example'"
        )
        return [address for (address,) in rows]


def test_json_lines_carry_one_run_id_and_mask_outside_addresses(sweeper: Sweeper) -> None:
    sweeper.fake.add_fault(mailbox=SERVICE, status=500, code="UnknownError", message="Oops.")

    result = run(sweeper, "--log-format", "json", "-v", "sweep", "--since", "30h")

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(records) >= 28  # a line per mailbox at least
    assert {tuple(sorted(r)) for r in records} == {("level", "logger", "message", "run_id", "time")}
    assert len({r["run_id"] for r in records}) == 1
    assert len(records[0]["run_id"]) == 12
    [stored] = sweeper.rows("select log_run_id from runs")
    assert stored["log_run_id"] == records[0]["run_id"]  # a SIEM line joins its run's row
    messages = [r["message"] for r in records]
    assert any("asking again" in m and "500 UnknownError" in m for m in messages)
    assert any(m.startswith(f"{CLINIC} swept") for m in messages)  # own mailboxes readable
    addresses = exposed_addresses(sweeper.db)
    assert addresses
    assert not [a for a in addresses if a in result.stderr]


def test_human_lines_carry_the_run_id_too(sweeper: Sweeper) -> None:
    result = run(sweeper, "-v", "sweep", SWEEPER_LOG_FORMAT="human")

    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    run_ids = {line.split("[", 1)[1].split("]", 1)[0] for line in lines}
    assert len(lines) >= 28 and len(run_ids) == 1


def test_an_unknown_log_format_is_refused_in_one_line(sweeper: Sweeper) -> None:
    result = run(sweeper, "--log-format", "xml", "sweep")

    assert result.returncode == 2
    assert "'xml' is not one of 'human', 'json'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_secret_and_tokens_reach_no_log_file_database_or_report(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    sweeper.with_digest(reports)
    fake = sweeper.fake
    fake.add_fault(kind="expire", path="/messages", after=5)  # a token refused mid-run
    fake.add_fault(
        mailbox=CLINIC, status=403, code="ErrorAccessDenied", message="Denied.", times=None
    )
    outputs = [
        run(sweeper, "-vvv", "nightly"),  # debug output of every library included
        run(sweeper, "-vvv", "--log-format", "json", "sweep", "--since", "2d"),
        run(sweeper, "-vvv", "sweep", AZURE_CLIENT_SECRET="not-the-secret-at-all"),
    ]
    export = tmp_path / "people.csv"
    worksheet = tmp_path / "worksheet.html"
    outputs.append(run(sweeper, "incident", "export", "1", "--out", str(export)))
    outputs.append(
        run(sweeper, "incident", "report", "1", "--format", "html", "--out", str(worksheet))
    )
    assert [p.returncode for p in outputs] == [1, 1, 3, 0, 0]
    assert "401" in outputs[0].stderr or "renewing" in outputs[0].stderr

    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    said = "".join(p.stdout + p.stderr for p in outputs)
    secrets = [fake.client_secret, *fake.issued_tokens]
    assert len(fake.issued_tokens) >= 3
    for secret in secrets:
        assert secret not in said
        assert secret.encode() not in written


def test_the_guard_masks_outside_addresses_and_cuts_tokens_and_secrets() -> None:
    guard = Guard(["s3cret-value-0123"])
    guard.internal.add("northwick.example")
    record = logging.LogRecord(
        "sweeper",
        logging.INFO,
        __file__,
        1,
        "%s wrote to %s and %s; header Bearer %s; secret %s",
        (
            "Victim.Care@Mail.Northwick.example",
            "jane.doe@gmail.com",
            "bob@Bücher.example",
            "eyJ0eXAiOiJKV1Qi.eyJhdWQiOiJodHRw.sig",
            "s3cret-value-0123",
        ),
        None,
    )

    assert guard.filter(record)

    assert record.getMessage() == (
        "Victim.Care@Mail.Northwick.example wrote to j***@gmail.com and b***@Bücher.example; "
        "header [token]; secret [secret]"
    )
    assert record.run_id  # type: ignore[attr-defined]


def test_an_exception_logged_is_cleaned_as_well() -> None:
    guard = Guard()
    try:
        raise ValueError("refused for victim@gmail.com with eyJhbGciOi.eyJzdWIiOi.x")
    except ValueError:
        record = logging.LogRecord(
            "sweeper", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )

    guard.filter(record)

    assert record.exc_info is None and record.exc_text is not None
    assert "v***@gmail.com" in record.exc_text and "[token]" in record.exc_text
    assert "victim@gmail.com" not in record.exc_text
