"""Reading the moments users type: ``2026-11-01``, ``2026-11-01T08:00+01:00``, ``36h``, ``7d``;
and the organisation's time zone, in which moments are shown to people.

Everything becomes an aware datetime in UTC; a date or time without a zone is taken as UTC.
sweeper stores UTC only: a zone is applied when a moment is shown.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sweeper.errors import ConfigError

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # how sweeper writes every moment: UTC, to the second


def iso(moment: datetime) -> str:
    """``2026-11-21T16:13:01Z``: a moment as sweeper stores and prints it (UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime(ISO_FORMAT)


def utc_now() -> str:
    """Now, in :func:`iso` form."""
    return iso(datetime.now(UTC))


_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
LONGEST = timedelta(days=100 * 366)  # no span or moment reaches further back than this


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """A moment in UTC. Relative values (``90m``, ``36h``, ``7d``, ``2w``) count back from now.

    Raises ValueError with a message fit for the user.
    """
    now = now or datetime.now(UTC)
    value = text.strip()
    if value == "now":
        return now
    relative = _RELATIVE.match(value.lower())
    if relative:
        return now - _span(text, int(relative.group(1)), relative.group(2))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date or time (use 2026-11-01, 2026-11-01T08:00Z, 36h or 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of the range of dates") from None


def parse_span(text: str) -> timedelta:
    """A length of time: ``90m``, ``36h``, ``180d``, ``26w``. Raises ValueError."""
    match = _RELATIVE.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a span of time (use 180d, 26w or 36h)")
    return _span(text, int(match.group(1)), match.group(2))


def _span(text: str, amount: int, unit: str) -> timedelta:
    """``amount`` units, refused past :data:`LONGEST` (beyond that, dates overflow)."""
    try:
        span = timedelta(**{_UNITS[unit]: amount})
    except OverflowError:
        span = None
    if span is None or span > LONGEST:
        raise ValueError(f"{text!r} is too long: at most {LONGEST.days} days")
    return span


def time_zone(name: str, setting: str) -> ZoneInfo:
    """The IANA zone ``name`` (``Europe/London``); ConfigError naming ``setting`` if unknown.

    Zones come from the system's database, else from the ``tzdata`` package.
    """
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, TypeError, AttributeError):
        raise ConfigError(
            setting, f"{name!r} is not an IANA time zone (for example Europe/London or UTC)"
        ) from None


def shown_in(value: str | None, zone: str = "UTC") -> str:
    """``2026-11-21T16:31:02Z`` → ``21 Nov 2026 16:31 UTC``, or in ``zone`` with its name
    and its offset from UTC beside it: ``21 Nov 2026 17:31 Europe/Paris (+01:00)``."""
    if not value:
        return "unknown"
    moment = datetime.fromisoformat(value)
    if zone == "UTC":
        return moment.astimezone(UTC).strftime("%d %b %Y %H:%M UTC").lstrip("0")
    local = moment.astimezone(ZoneInfo(zone))
    offset = local.strftime("%z")
    return f"{local:%d %b %Y %H:%M}".lstrip("0") + f" {zone} ({offset[:3]}:{offset[3:]})"
