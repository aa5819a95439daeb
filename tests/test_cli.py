"""The command line as users meet it: help, the docs, output formats, the demo."""

from __future__ import annotations

import csv
import io
import re
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from support.runner import Sweeper
from support.tenant import DAY_FINDINGS

from sweeper.cli import main
from sweeper.cligroup import progress_for_sweep
from sweeper.commands.sweep import MailboxResult
from sweeper.present.output import FINDING_COLUMNS, findings_csv

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS_PAGE = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
COMMANDS = sorted(main.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_and_a_docs_section(name: str) -> None:
    command = main.commands[name]
    assert command.help and len(command.help) > 20
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"{name} {param.opts} has no help text"
    assert f"## `sweeper {name}`" in COMMANDS_PAGE


def test_the_readme_leads_with_the_two_commands() -> None:
    first_block = README.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_the_public_json_fields_are_all_documented(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    finding = sweeper.findings()[0]
    required = {
        "mailbox",
        "internet_message_id",
        "sent_at",
        "subject",
        "sender",
        "to_count",
        "cc_count",
        "bcc_count",
        "visible_external_count",
        "external_domains",
        "severity",
    }
    assert required <= set(finding)
    documented = set(re.findall(r"^\| `(\w+)`", COMMANDS_PAGE, re.M)) | set(
        re.findall(r"`(\w+_count)`", COMMANDS_PAGE)
    )
    assert set(finding) <= documented
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", finding["sent_at"])
    assert isinstance(finding["external_domains"], list)


def test_findings_since_filters_by_sent_time(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep", "--since", "7d").exit_code == 0
    everything = sweeper.findings()
    recent = sweeper.findings("--since", "2d")
    assert len(everything) == len(recent) + 2  # the planted five- and four-day-old mail
    assert all(f["sent_at"] >= min(r["sent_at"] for r in recent) for f in recent)


def test_findings_as_a_table_and_as_csv(sweeper: Sweeper) -> None:
    assert sweeper.run("sweep").exit_code == 0
    table = sweeper.run("findings")
    assert table.exit_code == 0
    assert "Victim satisfaction survey" in table.output
    assert len(table.output.strip().splitlines()) == 2 + DAY_FINDINGS

    result = sweeper.run("findings", "--format", "csv")
    parsed = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(parsed) == DAY_FINDINGS
    assert tuple(parsed[0]) == FINDING_COLUMNS


def test_csv_cells_a_spreadsheet_would_run_are_neutralised() -> None:
    row = {c: "" for c in FINDING_COLUMNS} | {
        "subject": '=HYPERLINK("http://evil.example")',
        "sender": "+1-555",
        "mailbox": "@SUM(A1)",
        "internet_message_id": "-2+3",
        "external_domains": ["gmail.com"],
    }
    parsed = next(csv.DictReader(io.StringIO(findings_csv([row]))))
    assert parsed["subject"] == '\'=HYPERLINK("http://evil.example")'
    assert parsed["sender"] == "'+1-555"
    assert parsed["mailbox"] == "'@SUM(A1)"
    assert parsed["internet_message_id"] == "'-2+3"
    assert parsed["external_domains"] == "gmail.com"


@pytest.mark.slow
def test_the_demo_sweeps_the_demo_tenant_into_the_chosen_database(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(main, ["demo", "--users", "12"], env={"SWEEPER_DB": str(db)})

    assert result.exit_code == 0, result.output
    assert f"{DAY_FINDINGS} new findings" in result.output
    assert "2 throttled answers" in result.output
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    listed = CliRunner().invoke(main, ["findings", "--format", "json"], env={"SWEEPER_DB": str(db)})
    assert listed.stdout.count('"internet_message_id"') == DAY_FINDINGS


def test_version_and_help_need_no_settings() -> None:
    assert CliRunner().invoke(main, ["--version"]).exit_code == 0
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_sweep_draws_a_progress_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    with progress_for_sweep() as hook:
        for done in range(1, 5):
            hook(MailboxResult(f"u{done}@northwick.example", "swept"), done, 4)
    drawn = screen.getvalue()
    assert "Sweeping mailboxes" in drawn
    assert "100%" in drawn


def test_elsewhere_the_progress_hook_draws_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    with progress_for_sweep() as hook:
        hook(MailboxResult("u@northwick.example", "swept"), 1, 1)
    assert pipe.getvalue() == ""
