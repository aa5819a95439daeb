"""The Article 33 clock: 72 hours to tell the supervisory authority, from *awareness*.

The GDPR starts the clock when the controller becomes aware of the breach; the EDPB reads
that as a reasonable degree of certainty that personal data were compromised, and
regulators have read it as early as when the controller *should have known*. sweeper
therefore shows two deadlines and labels each:

- **conservative**: 72 hours from ``detected_at``, sweeper's first finding of the incident
  (what an authority may say the organisation should have known);
- **from confirmation**: 72 hours from ``confirmed_at``, the triage step in which the DPO
  confirmed a breach (``confirmed``, ``notified`` or ``reported_to_authority``), once there
  is one.

Pure: moments in and out are sweeper's UTC strings (:func:`sweeper.when.iso`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sweeper.when import iso

ARTICLE_33_HOURS = 72


def _after(moment: str, hours: int) -> str:
    return iso(datetime.fromisoformat(moment) + timedelta(hours=hours))


@dataclass(frozen=True)
class AwarenessClock:
    """When the incident was detected, confirmed and reported, and the deadlines that follow."""

    detected_at: str
    confirmed_at: str | None = None
    reported_at: str | None = None  # the first step to ``reported_to_authority``
    hours: int = ARTICLE_33_HOURS

    @property
    def conservative_deadline(self) -> str:
        """72 hours from detection: the earliest the authority may hold the organisation to."""
        return _after(self.detected_at, self.hours)

    @property
    def confirmed_deadline(self) -> str | None:
        """72 hours from the confirmation of a breach, once confirmed."""
        return _after(self.confirmed_at, self.hours) if self.confirmed_at else None

    def hours_left(self, now: datetime, deadline: str) -> int:
        """Whole hours from ``now`` to ``deadline``, rounded down; negative once it has passed
        (an hour late from the first second past it)."""
        seconds = (datetime.fromisoformat(deadline) - now).total_seconds()
        return math.floor(seconds / 3600)

    def standing(self, now: datetime, status: str = "new") -> str:
        """In words, where an incident that is ``status`` stands against the clock at ``now``."""
        if self.reported_at:
            late = self.hours_left(
                datetime.fromisoformat(self.reported_at), self.conservative_deadline
            )
            if late >= 0:
                return "reported to the authority within 72 hours of detection"
            return f"reported to the authority {_hours(-late)} after the conservative deadline"
        if status == "false_positive" or (status == "closed" and not self.confirmed_at):
            return "closed as not a breach: no report due"
        if status == "closed":
            return (
                "closed without a report to the authority (a breach unlikely to result in a risk)"
            )
        left = self.hours_left(now, self.conservative_deadline)
        if left >= 0:
            return f"{_hours(left)} left before the conservative deadline"
        confirmed = self.confirmed_deadline
        if confirmed and self.hours_left(now, confirmed) >= 0:
            return (
                f"the conservative deadline passed {_hours(-left)} ago; "
                f"{_hours(self.hours_left(now, confirmed))} left before the deadline from "
                "confirmation"
            )
        return (
            f"overdue by {_hours(-left)} from detection: "
            "the report must give the reasons for the delay"
        )


def _hours(count: int) -> str:
    return f"{count} hour{'s' if count != 1 else ''}"
