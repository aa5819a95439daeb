"""Reading the moments users type: ``2026-11-01``, ``2026-11-01T08:00+01:00``, ``36h``, ``7d``.

Everything becomes an aware datetime in UTC; a date or time without a zone is taken as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

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
