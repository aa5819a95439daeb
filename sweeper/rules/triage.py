"""Where an incident may go from where it stands: the triage workflow, as pure rules.

    new → acknowledged → false_positive | confirmed | notified | reported_to_authority → closed

``acknowledged``: the DPO is looking into it. ``confirmed``: it is a personal data breach,
which starts the Article 33 clock from confirmation (:mod:`sweeper.rules.clock`); a
confirmed breach unlikely to result in a risk is recorded and closed without a report.
``notified`` (the people, Article 34) and ``reported_to_authority`` (Article 33) confirm a
breach too, and may follow each other, since many incidents need both. Every step is kept
in ``incident_history``, which the database refuses to change or delete
(:mod:`sweeper.store.triage`).
"""

from __future__ import annotations

from typing import Literal, get_args

from sweeper.errors import TriageError

Status = Literal[
    "new",
    "acknowledged",
    "false_positive",
    "confirmed",
    "notified",
    "reported_to_authority",
    "closed",
]
STATUSES: tuple[Status, ...] = get_args(Status)
ALLOWED: dict[Status, tuple[Status, ...]] = {
    "new": ("acknowledged",),
    "acknowledged": ("false_positive", "confirmed", "notified", "reported_to_authority"),
    "confirmed": ("notified", "reported_to_authority", "closed"),
    "notified": ("reported_to_authority", "closed"),
    "reported_to_authority": ("notified", "closed"),
    "false_positive": ("closed",),
    "closed": (),
}
# The steps that say the incident is a personal data breach: the first one is confirmed_at.
BREACH_STEPS: tuple[Status, ...] = ("confirmed", "notified", "reported_to_authority")
# Incidents the digest does not report again.
NOT_REPORTED: tuple[Status, ...] = ("false_positive", "closed")


def check_step(current: str, target: str) -> None:
    """Raise TriageError unless an incident that is ``current`` may move to ``target``."""
    if target not in STATUSES:
        raise TriageError(f"unknown status {target!r} (one of {', '.join(STATUSES)})")
    allowed_steps = ALLOWED.get(current, ())  # type: ignore[call-overload]
    if target not in allowed_steps:
        allowed = ", ".join(allowed_steps) or "nothing: it is closed"
        raise TriageError(f"an incident that is {current} can move to {allowed}, not {target}")
