"""The nightly job: sweep then digest, honest exit codes, never two at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support.runner import Sweeper
from support.tenant import DAY_FINDINGS

from sweeper import store
from sweeper.errors import AlreadyRunning
from sweeper.fakegraph.tenant import DPO
from sweeper.processes import single_run


@pytest.fixture
def nightly(sweeper: Sweeper, tmp_path: Path) -> Sweeper:
    return sweeper.with_digest(tmp_path / "reports")


def lock_of(sweeper: Sweeper) -> Path:
    return sweeper.db.with_name(sweeper.db.name + ".lock")


def test_a_good_night_sweeps_sends_the_digest_and_exits_0(nightly: Sweeper) -> None:
    result = nightly.run("nightly")

    assert result.exit_code == 0, result.output
    assert f"{DAY_FINDINGS} new findings" in result.output
    assert f"Sent by graph to {DPO}" in result.output
    assert len(nightly.fake.sent_mail) == 1


def test_a_partial_night_still_sends_the_digest_and_exits_1(nightly: Sweeper) -> None:
    nightly.fake.add_fault(mailbox="clinic.bookings@northwick.example", status=500, times=None)

    result = nightly.run("nightly")

    assert result.exit_code == 1
    [mail] = nightly.fake.sent_mail
    assert "sweep incomplete: 1 mailbox not read" in mail["message"]["subject"]


def test_a_failed_night_exits_3_and_the_digest_says_the_sweep_failed(
    nightly: Sweeper,
) -> None:
    nightly.fake.roles = ("Mail.Send",)  # cannot list users or domains

    result = nightly.run("nightly")

    assert result.exit_code == 3
    assert "The run failed: Graph refused access: 403" in result.output
    [mail] = nightly.fake.sent_mail
    assert mail["message"]["subject"] == "sweeper: A sweep failed"


def test_a_second_run_exits_at_once_while_the_first_holds_the_lock(nightly: Sweeper) -> None:
    lock_of(nightly).parent.mkdir(parents=True, exist_ok=True)
    with single_run(lock_of(nightly)):
        result = nightly.run("nightly")
        with pytest.raises(AlreadyRunning), single_run(lock_of(nightly)):
            pass

    assert result.exit_code == 3
    assert f"another nightly run holds {lock_of(nightly)} (pid {os.getpid()}" in result.output
    assert nightly.fake.log == []  # it did nothing at all
    assert nightly.run("nightly").exit_code == 0  # released


def test_a_crashed_run_neither_blocks_the_next_night_nor_hides(nightly: Sweeper) -> None:
    lock = lock_of(nightly)
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from sweeper.processes import single_run\n"
            "with single_run(Path(sys.argv[1])):\n"
            "    print('locked', flush=True); time.sleep(600)",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    assert nightly.run("nightly").exit_code == 3  # held by a live process
    nightly.fake.sent_mail.clear()
    # The crash: killed while a run was in the database as running, written before runs
    # recorded their process (no pid): under the lock it is taken for dead, as it always was.
    # (A run that recorded its process: tests/test_concurrency.py.)
    store.open_db(nightly.db).conn.close()
    conn = sqlite3.connect(nightly.db)
    conn.execute(
        "insert into runs (started_at, status, since, until) values "
        "('2026-11-20T05:30:00Z', 'running', '2026-11-19T05:15:00Z', '2026-11-20T05:30:00Z')"
    )
    conn.commit()
    conn.close()
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)

    result = nightly.run("nightly")

    assert result.exit_code == 0, result.output
    assert "1 earlier run(s) had been interrupted; marked failed." in result.output
    body = nightly.fake.sent_mail[0]["message"]["body"]["content"]
    assert "interrupted: the process ended before the run finished" in body


def test_jobs_nightly_runs_as_a_process(nightly: Sweeper) -> None:
    job = Path(__file__).parent.parent / "jobs" / "nightly.py"
    result = subprocess.run(
        [sys.executable, str(job)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **nightly.env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"{DAY_FINDINGS} new findings" in result.stdout
    assert len(nightly.fake.sent_mail) == 1


def test_the_digest_goes_before_the_sentinel_export_which_cannot_hold_it(nightly: Sweeper) -> None:
    from support.siem import with_siem

    with_siem(nightly)
    nightly.fake.add_fault(path="/dataCollectionRules/", status=429, times=None, retry_after=1)

    result = nightly.run("nightly")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    digest = next(i for i, line in enumerate(lines) if f"Sent by graph to {DPO}" in line)
    sentinel = next(i for i, line in enumerate(lines) if line.startswith("Sentinel:"))
    assert digest < sentinel and len(nightly.fake.sent_mail) == 1
    assert "429" in lines[sentinel] or "wait" in lines[sentinel]  # throttled, after the digest


def test_a_symbolic_link_at_the_lock_path_is_refused_and_its_target_kept(
    nightly: Sweeper, tmp_path: Path
) -> None:
    """Issue 24, item 18: the lock was opened through a link and its target truncated."""
    target = tmp_path / "precious.txt"
    target.write_text("the operator's notes\n")
    lock = lock_of(nightly)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.symlink_to(target)

    result = nightly.run("nightly")

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"sweeper: {lock} is a symbolic link: refusing to write through it"
    ]
    assert target.read_text() == "the operator's notes\n"
    assert lock.is_symlink()
    assert nightly.fake.log == []  # nothing was swept


def test_a_symbolic_link_beside_the_database_is_refused_and_its_target_kept(
    nightly: Sweeper, tmp_path: Path
) -> None:
    """SQLite would open a link at the write-ahead log's place and write over its target."""
    target = tmp_path / "precious.txt"
    target.write_text("the operator's notes\n")
    wal = nightly.db.with_name(nightly.db.name + "-wal")
    wal.parent.mkdir(parents=True, exist_ok=True)
    wal.symlink_to(target)

    result = nightly.run("sweep")

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"sweeper: {wal} is a symbolic link: refusing to write through it"
    ]
    assert target.read_text() == "the operator's notes\n"
