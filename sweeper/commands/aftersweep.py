"""What follows every sweep: its alerts at once, then the run to Microsoft Sentinel.

``sweeper sweep``, ``sweeper lookup``, the nightly job and the frequent sweep all end with
:func:`after_sweep`. Both steps share the run's ``alerts.budget_seconds``: the export gets
what the alerts left of it. A failing channel or SIEM is a line, never an exception or an
exit code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlite_utils import Database

from sweeper.commands.alerts import alerts_after_sweep
from sweeper.commands.siem import export_after_run
from sweeper.settings import Settings

Step = Callable[[], list[str]]


def no_step() -> list[str]:
    """Nothing between the alerts and the export (every run but the nightly one)."""
    return []


def after_sweep(
    db: Database,
    settings: Settings,
    env: Mapping[str, str],
    run_id: int | None,
    *,
    before_export: Step = no_step,
) -> list[str]:
    """Send the alerts the sweep ``run_id`` made due (None: a lookup's), run
    ``before_export`` (the nightly digest, which a slow Sentinel never delays), then send
    the run to Sentinel within what the alerts left of the budget. Returns what each step
    says, a line each, in order; nothing for a step with nothing to say."""
    lines: list[str] = []
    alerted = alerts_after_sweep(db, settings, env, run_id)
    said = alerted.summary()
    if said:
        lines.append(said)
    lines += before_export()
    siem = export_after_run(db, settings, env, budget=alerted.left)
    if siem.enabled:
        lines.append(siem.line)
    return lines
