"""``schedule.cron``: a five-field crontab expression as an APScheduler trigger.

The usual day-of-week numbers (0 and 7 are Sunday) are translated to names, since
APScheduler's ``from_crontab`` counts 0 as Monday. Imported only by what compiles the
expression (``sweeper schedule``, the commands that sweep, ``doctor``): loading
APScheduler would slow every listing.
"""

from __future__ import annotations

import re

from apscheduler.triggers.cron import CronTrigger

from sweeper.errors import ConfigError
from sweeper.when import time_zone

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _day(token: str) -> str:
    if token.isdigit():
        number = int(token)
        if number > 7:
            raise ValueError(token)
        return _DAYS[number]
    return token.lower()


def _days(field: str) -> str:
    """Crontab day-of-week (0/7 = Sunday) to APScheduler's names: ``1-5`` → ``mon-fri``."""
    parts = []
    for item in field.split(","):
        if item == "*" or item.startswith("*/"):
            parts.append(item)
            continue
        bounds = item.split("-")
        if len(bounds) > 2 or not all(re.fullmatch(r"[0-7]|[a-zA-Z]{3}", b) for b in bounds):
            raise ValueError(item)
        parts.append("-".join(_day(b) for b in bounds))
    return ",".join(parts)


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """A trigger for a five-field crontab expression in an explicit IANA time zone."""
    zone = time_zone(timezone, "schedule.timezone")
    fields = expression.split()
    if len(fields) != 5:
        raise ConfigError("schedule.cron", f"{expression!r} needs five fields: m h dom mon dow")
    minute, hour, day, month, day_of_week = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_days(day_of_week),
            timezone=zone,
        )
    except ValueError as exc:
        raise ConfigError("schedule.cron", f"{expression!r} is not valid: {exc}") from None
