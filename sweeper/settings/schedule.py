"""``[schedule]``: when ``sweeper schedule`` runs the nightly job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweeper.settings.keys import default, key
from sweeper.when import time_zone


@dataclass(frozen=True)
class ScheduleSettings:
    """When ``sweeper schedule`` runs the nightly job."""

    cron: str = default("schedule.cron")
    timezone: str = default("organisation.timezone")  # the organisation's unless named
    misfire_grace_minutes: int = default("schedule.misfire_grace_minutes")  # 6 hours late


def schedule_settings(
    raw: dict[str, Any], organisation_zone: str, *, compile_cron: bool
) -> ScheduleSettings:
    """``[schedule]``; its zone is the organisation's unless it names one. The cron
    expression is checked only with ``compile_cron`` (APScheduler, see load_settings)."""
    settings = ScheduleSettings(
        cron=key("schedule.cron").read(raw),
        timezone=raw.get("timezone", organisation_zone),
        misfire_grace_minutes=key("schedule.misfire_grace_minutes").read(raw),
    )
    time_zone(settings.timezone, "schedule.timezone")
    if compile_cron:
        from sweeper.settings.cron import cron_trigger  # checks the expression too

        cron_trigger(settings.cron, settings.timezone)
    return settings
