"""Processes at once on one database: real files, real processes, real kills.

A sweep, a nightly job and a lookup may run side by side (only nightly runs take the lock).
Writers wait for each other instead of failing with "database is locked"; a run is marked
failed only once its process is gone; what a killed process left behind is recovered by the
next command; and the files never give personal data away (permissions, freed pages).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.findings import finding
from support.processes import child, kill
from support.runner import Sweeper
from support.tenant import DAY_FINDINGS, DAY_INCIDENTS

from sweeper import processes, store
from sweeper.rules.severity import SeverityRule
from sweeper.store import db as store_db
from sweeper.store import digests as queries
from sweeper.store.recovery import DEAD_AFTER, INTERRUPTED, Recovery, interruption, recover

HOLD_A_RUN = """
import sys, time
from pathlib import Path
from sweeper import store
from support.findings import finding
db = store.open_db(Path(sys.argv[1]))
run_id = store.start_run(db, "2026-11-20T05:15:00Z", "2026-11-21T05:30:00Z", None)
with store.transaction(db):
    store.save_findings(db, run_id, [finding("<orphan@northwick.example>")])
print(run_id, flush=True)
time.sleep(600)
"""


@contextmanager
def running_sweep(path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A process that started a run, stored one finding and sleeps: a sweep mid-way."""
    process = child(HOLD_A_RUN, str(path))
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip().isdigit(), process.stderr.read() if process.stderr else line
        yield process, int(line)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def status_of(path: Path, run_id: int) -> str:
    with closing(sqlite3.connect(path)) as conn:
        row = conn.execute("select status from runs where id = ?", [run_id]).fetchone()
    return str(row[0])


# -- a live run is left alone; a dead one is reported -------------------------------------


@pytest.fixture
def nightly(sweeper: Sweeper, tmp_path: Path) -> Sweeper:
    return sweeper.with_digest(tmp_path / "reports")


def test_nightly_leaves_a_live_sweep_running_and_reports_it_once_killed(
    nightly: Sweeper,
) -> None:
    store.open_db(nightly.db).conn.close()
    with running_sweep(nightly.db) as (process, run_id):
        first = nightly.run("nightly")

        assert first.exit_code == 0, first.output
        assert "interrupted" not in first.output
        assert status_of(nightly.db, run_id) == "running"  # alive: not nightly's to judge
        [mail] = nightly.fake.sent_mail
        assert "failed" not in mail["message"]["subject"]

        kill(process)
        nightly.fake.sent_mail.clear()
        second = nightly.run("nightly")

    assert second.exit_code == 0, second.output
    assert "1 earlier run(s) had been interrupted; marked failed." in second.output
    assert status_of(nightly.db, run_id) == "failed"
    [mail] = nightly.fake.sent_mail
    assert mail["message"]["subject"] == "sweeper: A sweep failed"
    body = mail["message"]["body"]["content"]
    assert f"interrupted: the process ended before the run finished (pid {process.pid})" in body


@pytest.mark.slow
def test_recover_leaves_a_live_run_alone_and_puts_right_what_a_killed_one_left(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sweeper.db"
    db = store.open_db(path)
    window, rule = timedelta(hours=24), SeverityRule()
    with running_sweep(path) as (process, run_id):
        assert recover(db, window, rule) == Recovery()
        assert recover(db, window, rule, holding_lock=True) == Recovery()  # no proof of death
        assert store.get_run(db, run_id)["status"] == "running"
        [orphan] = store.list_findings(db)
        assert orphan["incident_id"] is None  # its run places it when it ends
        while_running = queries.build(db, datetime.now(UTC)).health
        assert (while_running.runs, while_running.last_status) == (0, None)  # not finished

        kill(process)
        recovered = recover(db, window, rule)

    run = store.get_run(db, run_id)
    assert (run["status"], run["error"]) == ("failed", f"{INTERRUPTED} (pid {process.pid})")
    assert run["finished_at"] is not None
    [placed] = store.list_findings(db)
    assert placed["incident_id"] is not None
    assert recovered.runs == (run_id,)
    assert (recovered.findings, recovered.incidents) == (1, (placed["incident_id"],))
    assert recovered.summary() == (
        "1 earlier run(s) had been interrupted; marked failed. "
        "1 finding(s) left without an incident were placed in 1 incident(s)."
    )
    digest = queries.build(db, datetime.now(UTC))
    assert [r.id for r in digest.health.failed_runs] == [run_id]
    assert (digest.health.runs, digest.health.last_status) == (1, "failed")
    assert not digest.verdict.startswith("All clear")
    assert digest.verdict.endswith("a sweep failed")
    assert [i.id for i in digest.new] == [placed["incident_id"]]
    assert recover(db, window, rule).summary() == ""  # nothing left to do


# -- when a run's process is gone ---------------------------------------------------------

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
HOST = socket.gethostname()


def run_row(**fields: object) -> dict[str, object]:
    """A runs row as start_run records it, in this process, now."""
    pid = os.getpid()
    return {
        "started_at": "2026-11-21T11:00:00Z",
        "pid": pid,
        "pid_started": processes.process_started(pid),
        "host": HOST,
        **fields,
    }


def judged(row: dict[str, object], *, holding_lock: bool = False) -> str | None:
    return interruption(row, host=HOST, now=NOW, holding_lock=holding_lock)


def test_a_run_whose_process_lives_is_alive() -> None:
    assert processes.process_started(os.getpid()) is not None
    assert judged(run_row()) is None
    assert judged(run_row(), holding_lock=True) is None  # the lock is no proof of death


def test_a_run_whose_pid_now_belongs_to_another_process_is_dead() -> None:
    reused = run_row(pid_started="an earlier process's start")
    assert judged(reused) == f"{INTERRUPTED} (pid {os.getpid()}, now another process's)"


@pytest.mark.slow
def test_a_run_whose_process_ended_is_dead_even_a_zombie() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    started = processes.process_started(process.pid)
    deadline = time.monotonic() + 30
    while processes.process_alive(process.pid):  # until it exits, not yet reaped: a zombie
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert judged(run_row(pid=process.pid, pid_started=started)) == (
        f"{INTERRUPTED} (pid {process.pid})"
    )
    process.wait()
    assert not processes.process_alive(process.pid)
    assert processes.process_started(process.pid) is None


def test_a_run_of_another_host_or_without_a_process_is_dead_only_when_overdue() -> None:
    long_ago = (NOW - DEAD_AFTER - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    elsewhere = run_row(host="func-instance-7", pid=1)
    assert judged(elsewhere) is None
    assert judged(elsewhere, holding_lock=True) is None
    assert judged({**elsewhere, "started_at": long_ago}) == (
        "interrupted: not finished 24 h after it started (pid 1 on func-instance-7)"
    )
    before_0006 = run_row(pid=None, pid_started=None, host=None)
    assert judged(before_0006) is None
    assert judged(before_0006, holding_lock=True) == INTERRUPTED  # as nightly always did
    assert judged({**before_0006, "started_at": long_ago}) == (
        "interrupted: not finished 24 h after it started (no process recorded)"
    )


def test_a_run_records_its_process(tmp_path: Path) -> None:
    db = store.open_db(tmp_path / "sweeper.db")
    run = store.get_run(db, store.start_run(db, "a", "b", None))
    assert (run["pid"], run["host"]) == (os.getpid(), HOST)
    assert run["pid_started"] == processes.process_started(os.getpid())


def test_without_proc_the_start_time_comes_from_ps() -> None:
    started = processes._ps_started(os.getpid())
    assert started is not None and started == processes._ps_started(os.getpid())
    assert processes._ps_started(2**22 + 1) is None  # above Linux's highest pid


# -- writers wait for each other -----------------------------------------------------------

WRITER = """
import sys, time
from datetime import timedelta
from pathlib import Path
from sweeper import store
from sweeper.store.incidents import assign_incidents
from sweeper.rules.severity import SeverityRule
from support.findings import finding
path, tag, hold_at, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
db = store.open_db(path)
run_id = store.start_run(db, "2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z", None)
print("ready", flush=True)
sys.stdin.readline()  # both start together
mine = f"{tag}@northwick.example"
for i in range(rounds):
    with store.transaction(db):
        store.save_findings(db, run_id, [
            finding(f"<{tag}-{i}@northwick.example>", mailbox=mine),
            finding(f"<shared-{i}@northwick.example>", mailbox="shared@northwick.example"),
        ])
        mark = f"2026-11-22T00:{i:02d}:00Z"
        store.record_mailbox(db, run_id, mine, tag, "swept", messages=i + 1, window_until=mark)
        if i == hold_at:
            time.sleep(1.5)  # a long write: the other process must wait, not fail
    assign_incidents(db, timedelta(hours=24), SeverityRule())
store.finish_run(db, run_id, "ok", store.RunTotals(findings_new=rounds))
print("done", flush=True)
"""


@pytest.mark.slow
def test_two_processes_writing_at_once_both_finish_and_nothing_is_lost_or_doubled(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sweeper.db"
    store.open_db(path).conn.close()
    rounds = 25
    # Each holds the write lock for 1.5 s once, at a different round.
    writers = [
        child(WRITER, str(path), tag, hold, str(rounds)) for tag, hold in (("a", "5"), ("b", "15"))
    ]
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    outcomes = [writer.communicate(timeout=90) for writer in writers]

    for writer, (out, err) in zip(writers, outcomes, strict=True):
        assert writer.returncode == 0, err
        assert "database is locked" not in err
        assert out.strip() == "done"
    db = store.open_db(path)
    assert db.table("findings").count == 3 * rounds  # each its own, the shared ones once
    assert db.table("finding_addresses").count == 3 * rounds * 12
    assert db.execute("select count(*) from findings where incident_id is null").fetchone()[0] == 0
    incidents = list(db.query("select id, messages from incidents"))
    assert sum(i["messages"] for i in incidents) == 3 * rounds  # no finding placed twice
    assert all(i["messages"] for i in incidents)  # no incident left empty by a second placement
    last = f"2026-11-22T00:{rounds - 1:02d}:00Z"
    marks = store.mailbox_marks(db)
    assert (marks["a@northwick.example"], marks["b@northwick.example"]) == (last, last)
    assert [r["status"] for r in db.query("select status from runs")] == ["ok", "ok"]


def most_running_at_once(path: Path, processes: list[subprocess.Popen[str]]) -> int:
    """The most runs seen running at one time while the processes lived (read-only look)."""
    most = 0
    while any(p.poll() is None for p in processes):
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                (running,) = conn.execute(
                    "select count(*) from runs where status = 'running'"
                ).fetchone()
            most = max(most, running)
        except sqlite3.DatabaseError:
            pass  # not created yet
        time.sleep(0.005)
    return int(most)


def test_two_real_sweeps_at_once_store_what_one_clean_sweep_stores(
    sweeper: Sweeper, tmp_path: Path
) -> None:
    clean = sweeper.env(SWEEPER_DB=str(tmp_path / "clean.db"))
    assert sweeper.run("sweep", env=clean).exit_code == 0
    sweeper.fake.latency = 1.0  # each sweep lasts seconds: the two overlap even on a busy machine
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(sys.path),  # this sweeper, as the tests import it
        **sweeper.env(),
    }
    command = [sys.executable, "-m", "sweeper", "sweep"]
    sweeps = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    most = most_running_at_once(sweeper.db, sweeps)
    outcomes = [s.communicate(timeout=120) for s in sweeps]

    for process, (out, err) in zip(sweeps, outcomes, strict=True):
        assert process.returncode == 0, out + err
        assert "database is locked" not in out + err
    first, second = store.open_db(sweeper.db).query(
        "select started_at, finished_at from runs order by id"
    )
    overlapped = second["started_at"] <= first["finished_at"]
    assert most == 2 or overlapped  # they did run at once (seen running, or by their times)

    def stored(env: dict[str, str]) -> list[tuple[object, ...]]:
        rows = sweeper.run("findings", "--format", "json", env=env)
        assert rows.exit_code == 0, rows.output
        return sorted(
            (r["mailbox"], r["internet_message_id"], r["visible_external_count"], r["severity"])
            for r in orjson.loads(rows.stdout)
        )

    assert len(stored(clean)) == DAY_FINDINGS
    assert stored(sweeper.env()) == stored(clean)
    db = store.open_db(sweeper.db)
    assert db.table("incidents").count == DAY_INCIDENTS
    assert db.execute("select count(*) from findings where incident_id is null").fetchone()[0] == 0
    assert [r["status"] for r in db.query("select status from runs")] == ["ok", "ok"]


# -- the files ----------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
def test_wal_and_shm_left_readable_by_a_crash_are_tightened_on_reopening(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sweeper.db"
    store.open_db(path).conn.close()
    with running_sweep(path) as (process, run_id):
        kill(process)  # its write-ahead log and shared memory stay behind
    wal, shm, journal = (path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))
    assert wal.exists() and shm.exists()
    journal.touch()  # left by a rollback-journal database of long ago
    for leftover in (wal, shm, journal):
        leftover.chmod(0o644)

    db = store.open_db(path)

    for leftover in (wal, shm, journal):
        assert mode(leftover) == 0o600, leftover
    assert store.get_run(db, run_id)["status"] == "running"  # the log was not lost either


def test_deleted_addresses_do_not_stay_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sweeper.db"
    db = store.open_db(path)
    canary = "unmistakable.canary.person"
    plain = finding()
    recipients = tuple(
        replace(r, address=f"{canary}{i}@gmail.com", name=f"Canary {i}")
        for i, r in enumerate(plain.exposed)
    )
    exposed = replace(plain, facts=replace(plain.facts, recipients=recipients), exposed=recipients)
    run_id = store.start_run(db, "a", "b", None)
    with store.transaction(db):
        store.save_findings(db, run_id, [exposed, finding("<other@x>")])
    db.execute("pragma wal_checkpoint(truncate)")
    assert canary.encode() in path.read_bytes()  # the test can see it while it is there

    with store.transaction(db):
        db.execute("delete from finding_addresses where address like ?", [f"{canary}%"])
    db.execute("pragma wal_checkpoint(truncate)")

    assert db.execute("pragma secure_delete").fetchone()[0] == 1
    assert canary.encode() not in path.read_bytes()
    assert db.table("finding_addresses").count == 12  # the other finding's are untouched


def test_secure_delete_is_on_even_where_sqlite_was_built_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian's SQLite has it on by default, python.org's macOS build has not: open_db says."""
    connect = sqlite3.connect

    def built_without(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete = OFF")
        return conn

    monkeypatch.setattr(store_db.sqlite3, "connect", built_without)
    db = store.open_db(tmp_path / "sweeper.db")
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1
