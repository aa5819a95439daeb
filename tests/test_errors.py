"""One place turns every failure into a line for the user and the documented exit code.

The entry points as administrators call them, databases sweeper must not touch, spans and
moments too large for any date, a full disk while writing a file: each gets one line.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support.runner import Sweeper
from support.tenant import DAY_FINDINGS

from sweeper import cli, errors, files, store
from sweeper.cli import main
from sweeper.cligroup import job_arguments
from sweeper.errors import describe_failure
from sweeper.fakegraph.tenant import MIN_USERS
from sweeper.logs import Guard
from sweeper.store import migrations
from sweeper.when import parse_span, parse_when

ROOT = Path(__file__).parent.parent


# -- the top-level handler -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (errors.ConfigError("graph.cloud", "bad"), 2, "configuration error: graph.cloud"),
        (errors.StorageError("no database at x"), 2, "no database at x"),
        (errors.DiskFull("no space left to write x"), 3, "no space"),
        (errors.AuthError("sign-in failed: refused"), 3, "sign-in failed"),
        (OSError(errno.ENOSPC, "No space left on device", "/data/x"), 3, "no space left"),
        (sqlite3.OperationalError("database or disk is full"), 3, "disk is full"),
        (sqlite3.OperationalError("database is locked"), 3, "busy"),
        (sqlite3.DatabaseError("file is not a database"), 2, "damaged or not sweeper's"),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), 2, "too large"),
        (KeyError("boom"), 3, "internal error: KeyError"),
        (RuntimeError("line one\nline two"), 3, "internal error: RuntimeError: line one"),
    ],
)
def test_every_exception_becomes_one_line_and_its_exit_code(
    exc: Exception, code: int, words: str
) -> None:
    line, exit_code = describe_failure(exc)

    assert exit_code == code
    assert words in line
    assert "\n" not in line


def test_an_unexpected_error_is_one_line_and_its_traceback_only_at_vv(
    sweeper: Sweeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sweeper.run("sweep").exit_code == 0

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in sweeper")

    monkeypatch.setattr(store, "list_findings", broken)
    quiet = sweeper.run("findings")
    loud = sweeper.run("-vv", "findings")

    assert quiet.exit_code == loud.exit_code == 3
    assert quiet.stderr.strip().splitlines()[-1] == (
        "sweeper: internal error: RuntimeError: a bug in sweeper (-vv shows more)"
    )
    assert "Traceback" not in quiet.output
    assert "Traceback" in loud.stderr and "a bug in sweeper" in loud.stderr


def test_the_exit_codes_are_part_of_each_error() -> None:
    assert errors.ConfigError.exit_code == errors.UsageError.exit_code == 2
    assert errors.StorageError.exit_code == errors.NewerDatabase.exit_code == 2
    assert errors.SweeperError.exit_code == errors.GraphError.exit_code == 3
    assert errors.DiskFull.exit_code == 3


# -- entry points -------------------------------------------------------------------------


def _python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


@pytest.mark.slow
def test_python_m_sweeper_cli_lists_every_command() -> None:
    result = _python("-m", "sweeper.cli", "--help")

    assert result.returncode == 0, result.stderr
    for name in main.commands:
        assert f"  {name} " in result.stdout, name


@pytest.mark.slow
def test_help_and_the_database_commands_load_neither_the_graph_sdk_nor_the_local_graph() -> None:
    code = (
        "import sys\n"
        "from sweeper.cli import main\n"
        "import sweeper.commands.reclassify, sweeper.present.response, sweeper.store.response\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in sys.modules if m.startswith(('msgraph', 'aiohttp', 'trustme',"
        " 'sweeper.fakegraph', 'sweeper.graph.gateway', 'sweeper.graph.signin'))]\n"
        "print('HEAVY', heavy)\n"
    )
    result = _python("-c", code)

    assert "HEAVY []" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["sweep"]),
        (["--config", "x.toml"], ["--config", "x.toml", "sweep"]),
        (["--config=x.toml", "--since", "7d"], ["--config=x.toml", "sweep", "--since", "7d"]),
        (["--since", "7d", "-vv", "--log-format", "json"], ["-vv", "--log-format", "json",
         "sweep", "--since", "7d"]),
        (["--mailbox", "a@x.example", "--verbose"], ["--verbose", "sweep", "--mailbox",
         "a@x.example"]),
    ],
)  # fmt: skip
def test_a_job_puts_global_options_before_its_command(argv: list[str], expected: list[str]) -> None:
    assert job_arguments("sweep", argv) == expected


def test_jobs_sweep_takes_a_config_file_as_cron_gives_it(sweeper: Sweeper) -> None:
    env = {**sweeper.env(), "SWEEPER_CONFIG": ""}

    result = _python("jobs/sweep.py", "--config", str(sweeper.config), "--since", "1d", env=env)

    assert result.returncode == 0, result.stderr
    assert f"{DAY_FINDINGS} new findings" in result.stdout


def test_the_demo_needs_as_many_users_as_the_demo_tenant() -> None:
    assert cli.MIN_DEMO_USERS == MIN_USERS


# -- databases sweeper must not use ---------------------------------------------------------


def test_a_database_from_a_newer_sweeper_is_refused_untouched(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    with sqlite3.connect(sweeper.db) as conn:
        conn.execute("insert into migrations values ('0099_from_the_future', '2027-01-01')")
    conn.close()
    before = sweeper.db.read_bytes()

    for args in (["findings"], ["sweep"], ["purge"]):
        result = sweeper.run(*args)
        assert result.exit_code == 2, result.output
        assert (
            result.stderr.strip()
            .splitlines()[-1]
            .startswith(
                "sweeper: the database was written by a newer version of sweeper "
                "(schema change '0099_from_the_future' is unknown"
            )
        )
    with pytest.raises(errors.NewerDatabase):
        store.open_db(sweeper.db)
    assert sweeper.db.read_bytes() == before


def test_a_database_missing_a_table_is_refused_by_every_command(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    with sqlite3.connect(sweeper.db) as conn:
        conn.execute("drop table incident_history")
    conn.close()

    for args in (["reclassify"], ["incidents"], ["incident", "show", "1"]):
        result = sweeper.run(*args)
        assert result.exit_code == 2, result.output
        assert "table 'incident_history' is missing" in result.stderr
        assert "Traceback" not in result.output


def test_every_table_a_migration_makes_is_checked(tmp_path: Path) -> None:
    db = store.open_db(tmp_path / "s.db")
    made = set(db.table_names()) - {"migrations"}
    assert made == set(migrations.TABLES)


# -- moments and spans ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["1000000d", "99999999999w", "9" * 30 + "m", "0001-01-01T00:00+01:00"]
)
def test_moments_beyond_the_calendar_are_one_clear_error(text: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_when(text)
    assert "too long" in str(error.value) or "out of the range" in str(error.value)


@pytest.mark.parametrize("text", ["99999999999d", "36601d", "9" * 25 + "w"])
def test_spans_beyond_a_century_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="too long: at most 36600 days"):
        parse_span(text)


def test_a_century_is_still_a_span() -> None:
    assert parse_span("36600d").days == 36600


# -- writing files ----------------------------------------------------------------------------


def test_a_full_disk_while_writing_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "people.csv"
    files.write_private(target, "the old list\n")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(errors.DiskFull, match="no space left to write"):
        files.write_private(target, "the new list\n")

    assert target.read_text() == "the old list\n"
    assert [p.name for p in tmp_path.iterdir()] == ["people.csv"]  # no temporary file left


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_out_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
    elif kind == "directory":
        target = tmp_path / "dir"
        target.mkdir()
    else:
        target = Path("/dev/null")

    with pytest.raises(errors.StorageError, match="not a regular file: refusing"):
        files.write_private(target, "x")


def test_out_refuses_the_database_and_the_configuration(tmp_path: Path) -> None:
    db, config = tmp_path / "s.db", tmp_path / "sweeper.toml"
    db.write_bytes(b"")
    config.write_text("")
    own = files.own_files(db, config)

    for target, role in ((db, "database"), (config, "configuration file")):
        with pytest.raises(errors.StorageError, match=f"is sweeper's {role}: refusing"):
            files.write_private(target, "x", protected=own)
    with pytest.raises(errors.StorageError, match="database"):
        files.write_private(tmp_path / "s.db-wal", "x", protected=own)
    link = tmp_path / "again.toml"
    os.link(config, link)  # the same file under another name
    with pytest.raises(errors.StorageError, match="configuration file"):
        files.write_private(link, "x", protected=own)


# -- log masking --------------------------------------------------------------------------


def test_the_log_masks_quoted_local_parts_and_short_secrets() -> None:
    guard = Guard(["s3cr", "a-much-longer-secret"])

    line = guard.clean(
        'to "john.doe"@gmail.com, "j d"@yahoo.co.uk; secret s3cr, not s3creen; a-much-longer-secret'
    )

    assert "john.doe" not in line and '"j d"' not in line
    assert "***@gmail.com" in line and "***@yahoo.co.uk" in line
    assert "secret [secret], not s3creen; [secret]" in line


def test_every_exception_sweeper_raises_is_declared_in_the_errors_module() -> None:
    import ast

    package = ROOT / "sweeper"
    elsewhere = []
    for path in package.rglob("*.py"):
        if path.name == "errors.py" or "fakegraph" in path.parts:
            continue  # the local Graph answers with Graph's own errors, not sweeper's
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and base.id.endswith(("Error", "Exception"))
                for base in node.bases
            ):
                elsewhere.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert elsewhere == []
    declared = [
        getattr(errors, name) for name in dir(errors) if isinstance(getattr(errors, name), type)
    ]
    for error in declared:
        if issubclass(error, errors.SweeperError):
            assert error.__name__ in (errors.__doc__ or ""), error  # drawn in the tree
            assert error.exit_code in (2, 3)


@pytest.mark.slow
def test_sweeper_without_a_command_prints_its_help() -> None:
    result = _python("-m", "sweeper")

    assert result.returncode == 2
    assert result.stderr.startswith("Usage: ")
    assert "\\x0a" not in result.stderr and "Commands:" in result.stderr


@pytest.mark.parametrize(
    ("statuses", "code"),
    [(("ok",), 0), (("partial",), 1), (("failed",), 3), (("partial", "sent"), 1),
     (("ok", "failed"), 3), (("partial", "failed"), 3), (("ok", "written"), 0)],
)  # fmt: skip
def test_a_finished_runs_exit_code_comes_from_its_statuses(
    statuses: tuple[str, ...], code: int
) -> None:
    assert errors.exit_code_for(*statuses) == code
