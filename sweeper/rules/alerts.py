"""Which incidents are worth an alert now, and what an alert says. Pure: no I/O.

The digest comes once a day; an alert comes after the sweep that found something serious,
so that the people exposed can be contacted before reply-alls spread the list further. An
incident is alerted:

- **new**: when it first reaches ``alerts.min_severity`` (default :data:`MIN_SEVERITY`);
- **rose**: when its severity rises above the highest level already alerted;
- **grew**: when the people it exposed grew by ``alerts.grew_by`` (a share, :data:`GREW_BY`)
  over the count last alerted.

Each alert has a *key* (``new:high``, ``rose:critical``, ``grew:1136``): an incident is
alerted once per key and channel, so that a sweep run twice, or a frequent sweep and the
nightly one, never send the same alert twice.

An :class:`Alert` holds nothing that is not already masked: outside addresses appear only as
:func:`sweeper.addresses.mask_address` makes them. Every channel (Teams, a webhook, mail)
renders it through its own escaping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from sweeper.rules.severity import LEVELS

AlertKind = Literal["new", "rose", "grew", "test"]
MIN_SEVERITY = "high"  # alerts.min_severity's default
GREW_BY = 0.5  # alerts.grew_by's default


@dataclass(frozen=True)
class IncidentNow:
    """An incident's figures as the store has them after a sweep."""

    id: int
    severity: str
    unique_exposed: int
    active: bool = True
    suppressed: bool = False
    dismissed: bool = False  # triaged a false positive, or closed


@dataclass(frozen=True)
class Alerted:
    """What was already alerted of one incident (any channel): the highest severity and the
    people exposed at the last alert."""

    severity: str
    unique_exposed: int


@dataclass(frozen=True)
class Due:
    """An alert one incident needs now: its kind and key."""

    incident_id: int
    kind: AlertKind
    key: str


def due(
    incidents: Iterable[IncidentNow],
    alerted: Mapping[int, Alerted],
    *,
    min_severity: str = MIN_SEVERITY,
    grew_by: float = GREW_BY,
) -> list[Due]:
    """The alerts these incidents need, given what was alerted before; most severe first."""
    floor = LEVELS.index(min_severity)
    wanted: list[tuple[int, Due]] = []
    for incident in incidents:
        if not incident.active or incident.suppressed or incident.dismissed:
            continue
        level = LEVELS.index(incident.severity)
        if level < floor:
            continue
        before = alerted.get(incident.id)
        if before is None:
            wanted.append((level, Due(incident.id, "new", f"new:{incident.severity}")))
        elif level > LEVELS.index(before.severity):
            wanted.append((level, Due(incident.id, "rose", f"rose:{incident.severity}")))
        elif incident.unique_exposed >= max(
            before.unique_exposed + 1, before.unique_exposed * (1 + grew_by)
        ):
            wanted.append((level, Due(incident.id, "grew", f"grew:{incident.unique_exposed}")))
    wanted.sort(key=lambda pair: (-pair[0], pair[1].incident_id))
    return [d for _, d in wanted]


@dataclass(frozen=True)
class Alert:
    """What every channel says of one incident. Addresses are masked already."""

    incident_id: int
    kind: AlertKind
    key: str
    severity: str
    unique_exposed: int
    previous_exposed: int | None  # at the last alert, for "grew"
    previous_severity: str | None  # at the last alert, for "rose"
    sender: str | None  # the From address (internal, or masked if outside)
    sent_by: str | None  # a delegate who sent on its behalf
    subject: str
    reason: str
    first_sent_at: str | None
    last_sent_at: str | None
    messages: int
    detected_at: str
    deadline: str  # Article 33, conservative: 72 hours from detection (UTC, sweeper's form)
    top_domains: tuple[str, ...]
    samples: tuple[str, ...]  # masked addresses
    console_url: str | None = None  # reserved: the incident's page, once there is a console

    @property
    def command(self) -> str:
        return f"sweeper incident show {self.incident_id}"

    @property
    def headline(self) -> str:
        """One line: what happened, in plain words, for a title or a subject."""
        if self.kind == "test":
            return "sweeper test alert: this channel works (no incident)"
        what = {
            "new": f"{self.severity} incident",
            "rose": f"incident now {self.severity} (was {self.previous_severity})",
            "grew": f"{self.severity} incident grew to {self.unique_exposed} people",
        }[self.kind]
        return f"sweeper: {what}: {self.unique_exposed} people exposed"


def trial_alert(now: str) -> Alert:
    """The alert ``sweeper alerts test`` sends: about no incident, saying so."""
    return Alert(
        incident_id=0,
        kind="test",
        key="test",
        severity="low",
        unique_exposed=0,
        previous_exposed=None,
        previous_severity=None,
        sender=None,
        sent_by=None,
        subject="(test alert: no incident)",
        reason="sent by `sweeper alerts test` to check this channel",
        first_sent_at=now,
        last_sent_at=now,
        messages=0,
        detected_at=now,
        deadline=now,
        top_domains=(),
        samples=(),
    )


def webhook_message_id(installation: str, incident_id: int, key: str, delivery_id: str) -> str:
    """The ``webhook-id`` of one delivery: receivers drop an id they have seen.

    ``installation`` is the database's random token and ``delivery_id`` the random part
    made when this alert was first claimed (kept for its retries): so an id repeats only
    for a retry of the same alert, never across databases, a restored copy of one, or two
    test alerts. The incident and key are there for a person reading a receiver's log.
    """
    what = "test" if incident_id == 0 else f"{incident_id}_{key.replace(':', '-')}"
    return f"msg_sweeper_{installation}_{what}_{delivery_id}"
