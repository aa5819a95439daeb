"""The digest's content as plain data, and the pure rules that shape it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from sweeper.rules.clock import AwarenessClock
from sweeper.rules.severity import LEVELS

NEEDS_CLOCK = ("high", "critical")  # severities whose clock the digest shows unconfirmed


@dataclass(frozen=True)
class IncidentItem:
    id: int
    severity: str
    reason: str
    sender: str | None
    subject: str
    first_sent_at: str | None
    last_sent_at: str | None
    messages: int
    unique_exposed: int
    largest_batch: int
    personal_share: float
    named_addresses: int
    top_domains: tuple[str, ...]
    samples: tuple[str, ...]  # masked
    detected_at: str
    clock: AwarenessClock | None  # for high and critical incidents, and confirmed breaches
    reported_before: int | None = None  # people exposed when it was last reported, if grown
    status: str = "new"  # its triage status
    sent_by: str | None = None  # delegates who sent on the sender's behalf (send on behalf)

    @property
    def grown_by(self) -> int:
        return self.unique_exposed - (self.reported_before or 0)


@dataclass(frozen=True)
class FailedRun:
    id: int
    started_at: str
    status: str
    error: str | None
    failed_mailboxes: tuple[tuple[str, str], ...]  # (mailbox, reason)


@dataclass(frozen=True)
class Health:
    runs: int
    last_run_at: str | None
    last_status: str | None
    swept: int
    skipped: int  # no mailbox
    failed: int
    throttled: int
    malformed: int
    failed_runs: tuple[FailedRun, ...]
    swept_shared: int = 0  # of the swept: disabled accounts' mailboxes (shared, leavers')
    excluded: int = 0  # passed over by sweep.exclude
    failed_alerts: tuple[str, ...] = ()  # alerts a channel did not take, one line each
    siem_records: tuple[str, ...] = ()  # Sentinel records cut short or set aside, one line each
    pending_alerts: tuple[str, ...] = ()  # alerts the next run tries again, one line each

    @property
    def coverage(self) -> float | None:
        """Share of mailboxes that could be read; accounts without a mailbox do not count."""
        readable = self.swept + self.failed
        return self.swept / readable if readable else None

    @property
    def broken(self) -> bool:
        return self.runs == 0 or bool(self.failed_runs) or self.failed > 0


@dataclass(frozen=True)
class TrendDay:
    day: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Rejudgement:
    """A ``reclassify`` since the last digest: how much of the judgement it changed."""

    at: str
    findings: int
    severity_changed: int
    incidents_changed: int


@dataclass(frozen=True)
class Digest:
    created_at: str
    period_since: str | None
    period_until: str
    new: tuple[IncidentItem, ...]
    grown: tuple[IncidentItem, ...]
    health: Health
    trend: tuple[TrendDay, ...]
    commands: tuple[str, ...] = field(default_factory=tuple)
    rejudgements: tuple[Rejudgement, ...] = ()  # reclassify runs since the last digest
    # When sending this digest was interrupted before the answer came, if it was: it is sent
    # again (with the same Message-ID) and may be a repeat.
    repeat_of: str | None = None

    @property
    def moment(self) -> datetime:
        """When the digest was made: what the clocks' hours left are counted from."""
        return datetime.fromisoformat(self.created_at)

    @property
    def verdict(self) -> str:
        return verdict(self.new, self.grown, self.health)

    @property
    def needs_action(self) -> bool:
        return bool(self.new or self.grown or self.health.broken)

    @property
    def nothing_new(self) -> bool:
        return not (self.new or self.grown or self.health.failed_runs)

    @property
    def subject_line(self) -> str:
        return f"sweeper: {self.verdict}"


@dataclass(frozen=True)
class PlannedIncident:
    id: int
    unique_exposed: int  # as the digest reports it
    reported_before: int | None  # set for an incident reported as grown


@dataclass(frozen=True)
class Plan:
    """What a digest is about to report, written down before it is sent: once it is known
    to have been delivered, these become its ``digest_items``."""

    incidents: tuple[PlannedIncident, ...]
    runs: tuple[int, ...]  # failed or partial runs

    @classmethod
    def of(cls, digest: Digest) -> Plan:
        return cls(
            tuple(
                PlannedIncident(i.id, i.unique_exposed, i.reported_before)
                for i in (*digest.new, *digest.grown)
            ),
            tuple(r.id for r in digest.health.failed_runs),
        )

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "incidents": [
                    {
                        "id": i.id,
                        "unique_exposed": i.unique_exposed,
                        "reported_before": i.reported_before,
                    }
                    for i in self.incidents
                ],
                "runs": list(self.runs),
            }  # fmt: skip
        ).decode()

    @classmethod
    def from_json(cls, text: str) -> Plan:
        raw: dict[str, Any] = orjson.loads(text)
        return cls(
            tuple(
                PlannedIncident(int(i["id"]), int(i["unique_exposed"]), i.get("reported_before"))
                for i in raw.get("incidents", [])
            ),
            tuple(int(r) for r in raw.get("runs", [])),
        )


def message_id(digest_id: int, installation: str, sender: str, nonce: str) -> str:
    """The digest's Internet Message-ID: the same every time this digest is sent, unique
    across databases (``installation`` is a random token each database makes once) and
    across the copies of one database (``nonce`` is a random token each digest row gets
    before it is sent: a database restored from a backup gives an id out again, never a
    nonce)."""
    domain = sender.rpartition("@")[2] or "sweeper.invalid"
    return f"<sweeper-digest.{digest_id}.{installation}.{nonce}@{domain.lower()}>"


def clock_for(
    severity: str, detected_at: str, confirmed_at: str | None, reported_at: str | None
) -> AwarenessClock | None:
    """The Article 33 clock the digest shows: for the incidents that may have to be
    reported (high, critical) and for every breach the DPO confirmed."""
    if severity not in NEEDS_CLOCK and not confirmed_at:
        return None
    return AwarenessClock(detected_at, confirmed_at, reported_at)


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def verdict(new: tuple[IncidentItem, ...], grown: tuple[IncidentItem, ...], health: Health) -> str:
    """One line that says in ten seconds whether something needs doing today."""
    parts: list[str] = []
    if new:
        worst = max(LEVELS.index(i.severity) for i in new)
        count_worst = sum(1 for i in new if LEVELS.index(i.severity) == worst)
        need = "needs" if len(new) == 1 else "need"
        parts.append(
            f"{_plural(len(new), 'new incident')} {need} review, {count_worst} {LEVELS[worst]}"
        )
    if grown:
        parts.append(f"{_plural(len(grown), 'incident')} grew since reported")
    if health.runs == 0:
        parts.append("no sweep ran since the last digest: nothing was checked")
    elif health.failed_runs or health.failed:
        failed = health.failed or sum(len(r.failed_mailboxes) for r in health.failed_runs)
        parts.append(
            f"sweep incomplete: {_plural(failed, 'mailbox', 'mailboxes')} not read"
            if failed
            else "a sweep failed"
        )
    if not parts:
        return f"All clear: no new incidents; {_plural(health.swept, 'mailbox', 'mailboxes')} swept"
    text = "; ".join(parts)
    return text[0].upper() + text[1:]
