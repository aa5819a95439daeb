"""The set-up tried out: ``sweeper doctor``'s checks and ``sweeper alerts test``'s trial
alerts, each a line for the terminal, with the exit code they make."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from sqlite_utils import Database

from sweeper.commands.alerts import send_test
from sweeper.commands.doctor import Check, run_checks
from sweeper.errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL
from sweeper.settings import Settings


@dataclass
class Tried:
    """What a try says, a line each, and its exit code."""

    lines: list[str]
    exit_code: int


def check_set_up(settings: Settings, env: Mapping[str, str], *, send_test: bool) -> Tried:
    """Every check after the configuration's (which loaded), then how many passed: exit
    code 1 if any failed."""
    checks = [
        Check("configuration", True, "loaded"),
        *asyncio.run(run_checks(settings, env, send_test=send_test)),
    ]
    failed = [c for c in checks if not c.ok]
    warned = [c for c in checks if c.ok and c.warning]
    summary = (
        f"\n{len(checks) - len(failed)} checks passed ({len(warned)} with a warning), "
        f"{len(failed)} failed"
    )
    return Tried([*(c.line() for c in checks), summary], EXIT_PARTIAL if failed else EXIT_OK)


def try_alert_channels(db: Database, settings: Settings, env: Mapping[str, str]) -> Tried:
    """A trial alert to each configured channel, a line each (``✓`` sent, ``✗`` and why
    not): exit code 3 if any failed or is still pending. The lines are not yet escaped."""
    outcome = asyncio.run(send_test(db, settings, env))
    lines = []
    for channel in settings.alerts.channels:
        failed = [
            line
            for line in (*outcome.failed, *outcome.pending)
            if line.startswith(f"alerts.{channel}")
        ]
        lines.append(
            f"{'✗' if failed else '✓'} {channel}" + (f": {failed[0]}" if failed else ": sent")
        )
    return Tried(lines, EXIT_FAILED if outcome.failed or outcome.pending else EXIT_OK)
