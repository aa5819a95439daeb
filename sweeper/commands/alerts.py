"""Alerts at once, after any sweep: which incidents, on which channels, each exactly once.

Glue: the rules (:mod:`sweeper.rules.alerts`) say which incidents need an alert and under
which key; the store says what was already sent. Each delivery is claimed in the store
before it is tried (:func:`sweeper.store.alerts.claim`), so two sweeps at once never both
try it; then the configured channel (Teams, a signed webhook, a short mail) delivers it, and
the outcome is settled. Channels are delivered at once, each its alerts in turn, and all of
them within one time budget per run (``alerts.budget_seconds``): an alert not delivered by
then is left *pending* for the next run, so a slow or throttling channel never holds the
sweep or the digest after it. The Sentinel export after the run gets what the alerts left of
that budget (:attr:`AlertsOutcome.left`; :func:`sweeper.commands.siem.export_after_run`).
A failing channel costs only its own alert: it is recorded failed, tried again by the next
sweeps (see :data:`sweeper.store.alerts.TRIES`) and shown in the digest's health; the
sweep's findings were stored before any of this ran.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from sqlite_utils import Database

from sweeper import store
from sweeper.addresses import mask_address
from sweeper.commands.deliver import email_message, graph_payload, send_smtp
from sweeper.errors import AlertDeliveryError, AlertStatus, SweeperError
from sweeper.graph.signin import gateway_for
from sweeper.outbound.posting import post_json
from sweeper.outbound.webhooks import signed_by, webhook_secret
from sweeper.present.escape import json_bytes, mask_addresses
from sweeper.present.render import render_alert_mail
from sweeper.present.teams import teams_payload
from sweeper.present.webhook import webhook_body, webhook_payload
from sweeper.rules.alerts import Alert, Alerted, Due, trial_alert, webhook_message_id
from sweeper.rules.clock import AwarenessClock
from sweeper.settings import Settings
from sweeper.settings.channels import BY_NAME
from sweeper.store import alerts as recorded
from sweeper.store.incidents import sample_addresses, top_domains
from sweeper.store.triage import incident
from sweeper.when import utc_now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """One delivery as a channel sends it: the alert, its webhook-id, the run's deadline."""

    alert: Alert
    message_id: str
    deadline: float  # time.monotonic(): nothing is sent or waited for past it

    @property
    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


Send = Callable[[Attempt], Awaitable[None]]  # raises SweeperError when not delivered


@dataclass
class AlertsOutcome:
    sent: int = 0
    failed: list[str] = field(default_factory=list)  # one line each, naming the channel
    pending: list[str] = field(default_factory=list)  # left for the next run: out of time
    budget: float = 0.0
    spent: float = 0.0  # seconds the alerts took of the budget

    @property
    def left(self) -> float:
        """What the alerts left of the run's time for delivery, for the Sentinel export."""
        return max(0.0, self.budget - self.spent)

    def summary(self) -> str | None:
        """A line for the run's output, or None when nothing was due."""
        if not self.sent and not self.failed and not self.pending:
            return None
        line = f"Alerts: {self.sent} sent"
        if self.failed:
            line += f", {len(self.failed)} failed (tried again by the next sweep):\n  "
            line += "\n  ".join(self.failed)
        if self.pending:
            line += f"{';' if self.failed else ','} {len(self.pending)} pending "
            line += f"(this run's {self.budget:g} s for delivery ran out; the next sweep "
            line += "sends them):\n  " + "\n  ".join(self.pending)
        return line + "."


def alerts_after_sweep(
    db: Database, settings: Settings, env: Mapping[str, str], run_id: int | None
) -> AlertsOutcome:
    """Send what the sweep made due; never raises for a channel's failure. The outcome
    says what the alerts left of ``alerts.budget_seconds`` (all of it with no channel)."""
    if not settings.alerts.channels:
        return AlertsOutcome(budget=settings.alerts.budget_seconds)
    started = time.monotonic()
    outcome = asyncio.run(send_alerts(db, settings, env, run_id=run_id))
    outcome.spent = time.monotonic() - started
    return outcome


async def send_alerts(
    db: Database, settings: Settings, env: Mapping[str, str], *, run_id: int | None = None
) -> AlertsOutcome:
    """Every alert due now and every one still to try, on every configured channel."""
    config = settings.alerts
    delivery = _Delivery(db, settings, env, run_id)
    claimed = recorded.claim_due(
        db,
        config.channels,
        min_severity=config.min_severity,
        grew_by=config.grew_by,
        run_id=run_id,
    )
    internal = delivery.internal
    alerts = {
        (c.due.incident_id, c.due.key): build_alert(db, c.due, c.before, internal) for c in claimed
    }
    await delivery.each_channel(
        {
            channel: [
                (c.claim, alerts[(c.due.incident_id, c.due.key)])
                for c in claimed
                if c.channel == channel
            ]
            for channel in config.channels
        }
    )
    return delivery.outcome


async def send_test(db: Database, settings: Settings, env: Mapping[str, str]) -> AlertsOutcome:
    """A test alert to each configured channel; recorded like any alert (incident 0), each
    with a new webhook-id."""
    delivery = _Delivery(db, settings, env, None)
    alert = trial_alert(utc_now())
    work: dict[str, list[tuple[recorded.Claim, Alert]]] = {}
    for channel in settings.alerts.channels:
        held = recorded.claim(
            db,
            incident_id=0,
            key="test",
            kind="test",
            channel=channel,
            severity=alert.severity,
            unique_exposed=0,
            run_id=None,
            fresh=True,
        )
        if held is None:
            delivery.outcome.failed.append(
                f"{BY_NAME[channel].setting}: another process is sending a test alert to it now"
            )
        else:
            work[channel] = [(held, alert)]
    await delivery.each_channel(work)
    return delivery.outcome


class _Delivery:
    """One run's deliveries: claimed, sent within the run's time budget, settled."""

    def __init__(
        self, db: Database, settings: Settings, env: Mapping[str, str], run_id: int | None
    ) -> None:
        self.db, self.settings, self.run_id = db, settings, run_id
        self.internal = (*store.verified_domains(db), *settings.own_domains)
        self.budget = settings.alerts.budget_seconds
        self.outcome = AlertsOutcome(budget=self.budget)
        self.senders = _Senders(settings, env, self.internal).configured()
        self.installation = recorded.installation_token(db)  # in every webhook-id
        self.deadline = time.monotonic() + self.budget

    async def each_channel(self, work: Mapping[str, list[tuple[recorded.Claim, Alert]]]) -> None:
        """Every channel at once, each its own claimed alerts in turn, until the deadline."""
        await asyncio.gather(*(self._channel(c, todo) for c, todo in work.items() if todo))

    async def _channel(self, channel: str, work: list[tuple[recorded.Claim, Alert]]) -> None:
        for held, alert in work:
            await self._one(channel, held, alert)

    async def _one(self, channel: str, held: recorded.Claim, alert: Alert) -> None:
        message_id = webhook_message_id(
            self.installation, alert.incident_id, alert.key, held.delivery_id
        )
        attempt = Attempt(alert, message_id, self.deadline)
        if attempt.left <= 0:
            why = f"{BY_NAME[channel].setting}: not tried before the time ran out"
            self._settle(held, alert, channel, "pending", why, False)
            return
        outcome, error = await _try(self.senders[channel], attempt, channel)
        self._settle(held, alert, channel, outcome, error, True)

    def _settle(
        self,
        held: recorded.Claim,
        alert: Alert,
        channel: str,
        outcome: AlertStatus,
        error: str | None,
        tried: bool,
    ) -> None:
        status = recorded.settle(self.db, held, outcome, error, tried=tried)
        # error names the setting (alerts.webhook_url: ...); a test alert is about no incident
        line = (
            (error or "")
            if alert.kind == "test"
            else f"incident {alert.incident_id} ({alert.key}): {error}"
        )
        if status == "sent":
            self.outcome.sent += 1
        else:
            (self.outcome.pending if status == "pending" else self.outcome.failed).append(line)


async def _try(send: Send, attempt: Attempt, channel: str) -> tuple[AlertStatus, str | None]:
    """Deliver within the attempt's time: ``sent``, ``failed`` or ``pending`` (out of
    time), with the one-line reason naming the setting."""
    setting = BY_NAME[channel].setting
    try:
        async with asyncio.timeout(attempt.left):
            await send(attempt)
    except TimeoutError:
        return "pending", f"{setting}: no answer before this run's time for delivery ran out"
    except AlertDeliveryError as exc:
        return ("pending" if exc.out_of_time else "failed"), f"{setting}: {exc}"
    except SweeperError as exc:
        return "failed", f"{setting}: {exc}"
    except Exception as exc:  # a bug in one channel must cost its alert, visibly, not the run
        log.exception("unexpected error sending an alert to %s", channel)
        return "failed", f"{setting}: internal error: {type(exc).__name__}"
    return "sent", None


def build_alert(
    db: Database, item: Due, before: Alerted | None, internal: tuple[str, ...]
) -> Alert:
    """What the channels say of one incident, every outside address masked."""
    row = incident(db, item.incident_id)
    samples = sample_addresses(db, item.incident_id)
    domains = frozenset(internal)

    def masked(text: str | None) -> str | None:
        return None if text is None else mask_addresses(text, domains)

    clock = AwarenessClock(row["detected_at"] or row["created_at"])
    return Alert(
        incident_id=item.incident_id,
        kind=item.kind,
        key=item.key,
        severity=row["severity"],
        unique_exposed=row["unique_exposed"] or 0,
        previous_exposed=before.unique_exposed if before else None,
        previous_severity=before.severity if before else None,
        sender=masked(row["sender"]),
        sent_by=masked(row["sent_by"]),
        subject=masked(row["subject"]) or "",
        reason=masked(row["reason"]) or "",
        first_sent_at=row["first_sent_at"],
        last_sent_at=row["last_sent_at"],
        messages=row["messages"] or 0,
        detected_at=clock.detected_at,
        deadline=clock.conservative_deadline,
        top_domains=tuple(top_domains(db, item.incident_id)),
        samples=tuple(mask_address(a) for a in samples),
    )


class _Senders:
    """The configured channels' senders."""

    def __init__(self, settings: Settings, env: Mapping[str, str], internal: tuple[str, ...]):
        self.settings, self.env, self.internal = settings, env, internal

    def configured(self) -> dict[str, Send]:
        """The sender of each configured channel (sweeper.settings.channels), by name."""
        senders: dict[str, Send] = {
            "teams": self._teams,
            "webhook": self._webhook,
            "mail": self._mail,
        }
        return {name: senders[name] for name in self.settings.alerts.channels}

    async def _teams(self, attempt: Attempt) -> None:
        config = self.settings.alerts
        payload = teams_payload(attempt.alert, self.settings.timezone, internal=self.internal)
        await post_json(config.teams_url or "", json_bytes(payload), {}, deadline=attempt.deadline)

    async def _webhook(self, attempt: Attempt) -> None:
        config = self.settings.alerts
        body = webhook_body(webhook_payload(attempt.alert, internal=self.internal))
        # The same id on every try of this alert, in this run or a later one, and no other
        # alert's (see webhook_message_id): receivers drop a webhook-id they have seen.
        sign = signed_by(webhook_secret(self.env), attempt.message_id, body)
        await post_json(config.webhook_url or "", body, {}, sign=sign, deadline=attempt.deadline)

    async def _mail(self, attempt: Attempt) -> None:
        config = self.settings.digest
        config.check_sendable(self.env)  # a ConfigError fails this channel's alert, named
        alert = attempt.alert
        html, text = render_alert_mail(alert, self.internal, self.settings.timezone)
        sender = config.sender or ""
        # The same Message-ID on every try of this alert, and no other alert's (as its
        # webhook-id): a relay or mailbox that took a try whose answer was lost drops the next.
        message_id = f"<{attempt.message_id}@{sender.rpartition('@')[2] or 'sweeper.invalid'}>"
        if config.transport == "smtp":
            message = email_message(
                alert.headline, html, text, sender, config.recipients, message_id
            )
            ca_bundle, timeout = self.settings.ca_bundle, max(1.0, attempt.left)
            await asyncio.to_thread(send_smtp, config, self.env, message, ca_bundle, timeout)
            return
        payload = graph_payload(
            alert.headline, html, config.recipients, config.save_to_sent_items, message_id
        )
        async with gateway_for(self.settings.sign_in, self.env) as gateway:
            await gateway.send_mail(sender, payload)
