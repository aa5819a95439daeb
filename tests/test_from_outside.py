"""Every command, met with what the outside world does to it: one clean line, never a traceback.

Four conditions, each tried on every command: no reachable sign-in endpoint, a full disk, an
argument too large for any date or integer, and ``--out`` pointed at a FIFO, the database or
the configuration. What the user sees is one line (``sweeper: ...`` on stderr, or a
command's own report) and the documented exit code: 2 for what was asked wrongly, 3 for a run
that failed as a whole, 1 only for "some mailboxes (or checks) failed". Log lines are JSON
(``--log-format json``) so that they can be told from what is said to the user.

``sweeper schedule`` is not in the matrix: it stays running by design. What it does with each
night's failure is tested in test_scheduled_run_turns_any_failure_into_one_log_line.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from support.runner import Sweeper, write_config
from support.tenant import DAY_FINDINGS

from sweeper import store
from sweeper.fakegraph import FakeGraph, generate_tenant

pytestmark = pytest.mark.slow  # each command in a process of its own

HUGE = "99999999999999999999999"

# name -> arguments; {dir} is the test's own directory. Each reaches the command's real work.
COMMANDS: dict[str, list[str]] = {
    "sweep": ["sweep"],
    "findings": ["findings"],
    "incidents": ["incidents"],
    "reclassify": ["reclassify"],
    "digest": ["digest", "--out", "{dir}/digest.html"],
    "digest --send": ["digest", "--send", "--out", "{dir}/sent.html"],
    "nightly": ["nightly"],
    "doctor": ["doctor"],
    "lookup": ["lookup", "--internet-message-id", "<no-such-message@northwick.example>"],
    "incident show": ["incident", "show", "1"],
    "incident set": ["incident", "set", "1", "acknowledged", "--note", "seen", "--by", "DPO"],
    "incident export": ["incident", "export", "1", "--out", "{dir}/people.csv"],
    "incident report": ["incident", "report", "1"],
    "purge": ["purge"],
    "demo": ["demo", "--reports", "{dir}/demo-reports"],
}
SIGNS_IN = {"sweep", "digest --send", "nightly", "doctor", "lookup"}


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeGraph]:
    with FakeGraph(generate_tenant(seed=2012, users=24)) as server:
        yield server


@pytest.fixture(scope="module")
def swept_db(shared_fake: FakeGraph, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database after one good sweep of the day, copied into each test."""
    home = tmp_path_factory.mktemp("template")
    template = _sweeper(shared_fake, home, home / "sweeper.db")
    result = template.run("sweep")
    assert result.exit_code == 0, result.output
    assert len(template.findings()) == DAY_FINDINGS
    return template.db


def copy_db(source: Path, target: Path) -> None:
    """A whole copy, what the WAL holds included (a plain file copy would leave that out)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    target.chmod(0o600)


def _sweeper(fake: FakeGraph, home: Path, db: Path) -> Sweeper:
    own = ", ".join(f'"{d}"' for d in fake.tenant.own_domains)
    config = write_config(
        home / "sweeper.toml",
        f'[graph]\ncloud = "custom"\n\n[organisation]\nown_domains = [{own}]\n\n'
        f'[sweep]\npage_size = 50\n\n[storage]\ndatabase = "{db}"\n',
    )
    return Sweeper(fake, config, db).with_digest(home / "reports")


@pytest.fixture
def outside(shared_fake: FakeGraph, swept_db: Path, tmp_path: Path) -> Sweeper:
    db = tmp_path / "data" / "sweeper.db"
    db.parent.mkdir(mode=0o700)
    copy_db(swept_db, db)
    return _sweeper(shared_fake, tmp_path, db)


def argv(name: str, where: Path) -> list[str]:
    return ["--log-format", "json", *(a.format(dir=where) for a in COMMANDS[name])]


def said(result: Result | subprocess.CompletedProcess[str]) -> list[str]:
    """What the command said to the user on stderr: every line that is not a JSON log line."""
    lines = []
    for line in result.stderr.splitlines():
        try:
            if isinstance(json.loads(line), dict):
                continue
        except ValueError:
            pass
        lines.append(line)
    return lines


def assert_one_clean_line(
    result: Result | subprocess.CompletedProcess[str], code: int | set[int], *words: str
) -> None:
    exit_code = result.exit_code if isinstance(result, Result) else result.returncode
    everything = (result.stdout or "") + (result.stderr or "")
    allowed = {code} if isinstance(code, int) else code
    assert exit_code in allowed, everything
    assert "Traceback" not in everything
    lines = said(result)
    assert len(lines) <= 1, lines
    if exit_code in (2, 3) and lines:
        assert lines[0].startswith(("sweeper: ", "Usage:", "Error:")), lines
    for word in words:
        assert word in everything, everything


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- no reachable sign-in endpoint ------------------------------------------------------------

UNREACHABLE_EXIT = {"sweep": 3, "nightly": 3, "lookup": 3, "digest --send": 3, "doctor": 1}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_no_reachable_authority(name: str, outside: Sweeper, tmp_path: Path) -> None:
    env = outside.env(AZURE_AUTHORITY_HOST=f"https://127.0.0.1:{closed_port()}")

    result = outside.run(*argv(name, tmp_path), env=env)

    assert_one_clean_line(result, UNREACHABLE_EXIT.get(name, 0))
    if name in SIGNS_IN:
        assert "sign-in" in result.output
        assert "sign-in endpoint could not be reached" in result.output


# -- an argument too large -------------------------------------------------------------------

OVERFLOWING: dict[str, list[str]] = {
    "sweep": ["sweep", "--since", "1000000d"],
    "findings": ["findings", "--since", "99999999999w"],
    "incidents": ["incidents", "--since", f"{HUGE}d"],
    "digest": ["digest", "--since", "1000000d"],
    "digest --send": ["digest", "--send", "--since", "1000000d"],
    "lookup": ["lookup", "--subject", "x", "--since", "1000000d"],
    "incident show": ["incident", "show", HUGE],
    "incident set": ["incident", "set", HUGE, "closed", "--note", "n", "--by", "b"],
    "incident export": ["incident", "export", "99999999999999999999"],
    "incident report": ["incident", "report", str(2**63)],
    "purge": ["purge", "--older-than", "99999999999d"],
    "demo": ["demo", "--users", HUGE],
}
# Commands without such an argument meet the overflow in their configuration instead.
CONFIG_OVERFLOW = {"reclassify", "nightly", "doctor"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_an_overflowing_argument(name: str, outside: Sweeper, tmp_path: Path) -> None:
    if name in CONFIG_OVERFLOW:
        text = outside.config.read_text().replace(
            "page_size = 50", f"page_size = 50\nwindow_hours = {HUGE}"
        )
        write_config(outside.config, text)
        args = argv(name, tmp_path)
    else:
        args = ["--log-format", "json", *OVERFLOWING[name]]
    before = _digest_of(outside.db)

    result = outside.run(*args)

    assert_one_clean_line(result, 2)
    assert _digest_of(outside.db) == before  # refused before anything was written


# -- --out at a FIFO, the database, the configuration ----------------------------------------

WITH_OUT = {
    "digest": ["digest"],
    "incident export": ["incident", "export", "1"],
    "incident report": ["incident", "report", "1"],
}


@pytest.mark.parametrize("target", ["fifo", "database", "wal", "config"])
@pytest.mark.parametrize("name", sorted(WITH_OUT))
def test_out_never_replaces_sweepers_files_nor_blocks_on_a_fifo(
    name: str, target: str, outside: Sweeper, tmp_path: Path
) -> None:
    if target == "fifo":
        out = tmp_path / "pipe"
        os.mkfifo(out)
    elif target == "database":
        out = outside.db
    elif target == "wal":
        out = outside.db.with_name(outside.db.name + "-wal")
    else:
        out = outside.config
    config_before = outside.config.read_bytes()
    db_before = _digest_of(outside.db)

    result = outside.run("--log-format", "json", *WITH_OUT[name], "--out", str(out))

    assert_one_clean_line(result, 2, "refusing")
    assert outside.config.read_bytes() == config_before
    assert _digest_of(outside.db) == db_before


# -- a full disk ----------------------------------------------------------------------------

FULL_DISK_EXIT: dict[str, int | set[int]] = {
    "sweep": 3,
    "reclassify": 3,
    "digest": 3,
    "digest --send": 3,
    "nightly": 3,
    "incident set": 3,
    "incident export": 3,
    "demo": 3,
    "lookup": {0, 3},  # nothing to store when no mailbox holds the message
    "doctor": 1,  # the database check fails; the rest of the report is still given
}


@pytest.fixture
def full_disk(outside: Sweeper, tmp_path: Path) -> Iterator[Path]:
    """The database on a small tmpfs with no byte left, its -wal and -shm already made."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        # Only a real full disk shows what SQLite does then, and only root may mount one;
        # test_errors.py's injected ENOSPC covers writing files on any machine.
        pytest.skip(f"a tmpfs cannot be mounted here ({done.stderr.strip()}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> None:
    """Write a filler file until not one more byte fits."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                continue
    finally:
        os.close(fd)


def _run_process(sweeper: Sweeper, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **sweeper.env()}
    return subprocess.run(
        [sys.executable, "-m", "sweeper", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_full_disk(name: str, outside: Sweeper, full_disk: Path) -> None:
    db = full_disk / "sweeper.db"
    copy_db(outside.db, db)
    reports = full_disk / "reports"
    reports.mkdir()
    text = outside.config.read_text().replace(str(outside.db), str(db))
    text = text.replace(str(outside.config.parent / "reports"), str(reports))
    write_config(outside.config, text)
    outside = Sweeper(outside.fake, outside.config, db)
    holder = sqlite3.connect(db)  # keeps -wal and -shm in place, as a live reader would
    holder.execute("select count(*) from findings").fetchone()
    _fill(full_disk)
    findings_before = holder.execute("select count(*) from finding_addresses").fetchone()[0]
    if name == "demo":
        outside = Sweeper(outside.fake, outside.config, full_disk / "demo.db")

    result = _run_process(outside, argv(name, full_disk))

    assert_one_clean_line(result, FULL_DISK_EXIT.get(name, 0))
    if FULL_DISK_EXIT.get(name) == 3 and result.returncode == 3:
        assert "full" in result.stderr or "space" in result.stderr or "full" in result.stdout
    (full_disk / "filler").unlink()
    assert holder.execute("pragma integrity_check").fetchone() == ("ok",)
    after = holder.execute("select count(*) from finding_addresses").fetchone()[0]
    assert after == findings_before  # nothing lost
    holder.close()


def test_a_sweep_after_the_disk_filled_up_finds_everything_once(
    outside: Sweeper, full_disk: Path, shared_fake: FakeGraph, tmp_path: Path
) -> None:
    (tmp_path / "fresh").mkdir()
    fresh = _sweeper(shared_fake, tmp_path / "fresh", full_disk / "fresh.db")
    holder = store.open_db(fresh.db).conn  # an empty database, its -wal and -shm in place
    _fill(full_disk)

    failed = _run_process(fresh, ["sweep"])
    assert_one_clean_line(failed, 3)

    (full_disk / "filler").unlink()
    holder.close()
    again = fresh.run("sweep")
    assert again.exit_code == 0, again.output
    keys = [(f["mailbox"], f["internet_message_id"]) for f in fresh.findings()]
    assert len(keys) == len(set(keys)) == DAY_FINDINGS


def _digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_scheduled_run_turns_any_failure_into_one_log_line(
    outside: Sweeper, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sweeper.commands.service import scheduled_run
    from sweeper.settings import load_settings

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    env = outside.env(SWEEPER_DB=str(blocker / "sweeper.db"))
    settings = load_settings(outside.config, env)

    with caplog.at_level("ERROR", logger="sweeper"):
        scheduled_run(settings)  # returns: the scheduler stays up for the next night

    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage().startswith("nightly run failed (exit code 3): ")
    assert str(blocker) in record.getMessage()
    assert "\n" not in record.getMessage()
