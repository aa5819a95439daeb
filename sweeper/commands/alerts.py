"""Alerts at once, after any sweep: which incidents, on which channels, each exactly once.

Glue: the rules (:mod:`sweeper.rules.alerts`) say which incidents need an alert and under
which key; the store says what was already sent; each configured channel (Teams, a signed
webhook, a short mail) delivers it; the outcome is recorded after delivery was tried. A
failing channel costs only its own alert: it is recorded failed, tried again by the next
sweeps (see :data:`sweeper.store.alerts.TRIES`) and shown in the digest's health; the
sweep's findings were stored before any of this ran.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from sqlite_utils import Database

from sweeper import store
from sweeper.addresses import mask_address
from sweeper.commands.deliver import email_message, graph_payload, send_smtp
from sweeper.commands.settings import Settings
from sweeper.errors import SweeperError
from sweeper.graph.outbound import post_json
from sweeper.graph.signin import gateway_for
from sweeper.graph.webhooks import signed_by, webhook_secret
from sweeper.present.escape import json_bytes, mask_addresses
from sweeper.present.render import render_alert_mail
from sweeper.present.teams import teams_payload
from sweeper.present.webhook import webhook_body, webhook_payload
from sweeper.rules.alerts import Alert, Alerted, Due, due, trial_alert
from sweeper.rules.clock import AwarenessClock
from sweeper.store import alerts as recorded
from sweeper.store.incidents import sample_addresses, top_domains
from sweeper.when import utc_now

log = logging.getLogger(__name__)

Send = Callable[[Alert], Awaitable[None]]  # raises SweeperError when not delivered


@dataclass
class AlertsOutcome:
    sent: int = 0
    failed: list[str] = field(default_factory=list)  # one line each, naming the channel

    def summary(self) -> str | None:
        """A line for the run's output, or None when nothing was due."""
        if not self.sent and not self.failed:
            return None
        line = f"Alerts: {self.sent} sent"
        if self.failed:
            line += f", {len(self.failed)} failed (tried again by the next sweep):\n  "
            line += "\n  ".join(self.failed)
        return line + "."


def alerts_after_sweep(
    db: Database, settings: Settings, env: Mapping[str, str], run_id: int | None
) -> AlertsOutcome:
    """Send what the sweep made due; never raises for a channel's failure."""
    if not settings.alerts.channels:
        return AlertsOutcome()
    return asyncio.run(send_alerts(db, settings, env, run_id=run_id))


async def send_alerts(
    db: Database, settings: Settings, env: Mapping[str, str], *, run_id: int | None = None
) -> AlertsOutcome:
    """Every alert due now and every failed one still to try, on every configured channel."""
    outcome = AlertsOutcome()
    config = settings.alerts
    before = recorded.alerted(db)
    wanted = due(
        recorded.incidents_now(db),
        before,
        min_severity=config.min_severity,
        grew_by=config.grew_by,
    )
    work: list[tuple[Due, str]] = [(d, c) for d in wanted for c in config.channels]
    for row in recorded.to_retry(db):
        if row["channel"] in config.channels:
            retry = Due(row["incident_id"], row["kind"], row["key"])
            work.append((retry, row["channel"]))
    if not work:
        return outcome
    internal = (*store.verified_domains(db), *settings.own_domains)
    channels = _Senders(settings, env, internal).configured()
    for item, channel in work:
        if recorded.already_sent(db, item.incident_id, item.key, channel):
            continue
        alert = build_alert(db, item, before.get(item.incident_id), internal)
        error = await _try(channels[channel], alert, channel)
        recorded.record(
            db,
            incident_id=alert.incident_id,
            key=alert.key,
            kind=alert.kind,
            channel=channel,
            severity=alert.severity,
            unique_exposed=alert.unique_exposed,
            error=error,
            run_id=run_id,
        )
        if error is None:
            outcome.sent += 1
        else:
            outcome.failed.append(f"incident {alert.incident_id} ({alert.key}): {error}")
    return outcome


async def send_test(db: Database, settings: Settings, env: Mapping[str, str]) -> AlertsOutcome:
    """A test alert to each configured channel; recorded like any alert (incident 0)."""
    outcome = AlertsOutcome()
    internal = (*store.verified_domains(db), *settings.own_domains)
    alert = trial_alert(utc_now())
    channels = _Senders(settings, env, internal).configured()
    for channel, send in channels.items():
        error = await _try(send, alert, channel)
        recorded.record(
            db,
            incident_id=0,
            key="test",
            kind="test",
            channel=channel,
            severity=alert.severity,
            unique_exposed=0,
            error=error,
            run_id=None,
        )
        if error is None:
            outcome.sent += 1
        else:
            outcome.failed.append(error)
    return outcome


async def _try(send: Send, alert: Alert, channel: str) -> str | None:
    """Deliver; the one-line reason it failed, naming the setting, or None."""
    try:
        await send(alert)
    except SweeperError as exc:
        return f"{_SETTING[channel]}: {exc}"
    except Exception as exc:  # a bug in one channel must cost its alert, visibly, not the run
        log.exception("unexpected error sending an alert to %s", channel)
        return f"{_SETTING[channel]}: internal error: {type(exc).__name__}"
    return None


_SETTING = {"teams": "alerts.teams_url", "webhook": "alerts.webhook_url", "mail": "alerts.mail"}


def build_alert(
    db: Database, item: Due, before: Alerted | None, internal: tuple[str, ...]
) -> Alert:
    """What the channels say of one incident, every outside address masked."""
    row = dict(db.table("incidents").get(item.incident_id))
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
        config = self.settings.alerts
        senders: dict[str, Send] = {}
        if config.teams_url:
            senders["teams"] = self._teams
        if config.webhook_url:
            senders["webhook"] = self._webhook
        if config.mail:
            self.settings.digest.check_sendable(self.env)
            senders["mail"] = self._mail
        return senders

    async def _teams(self, alert: Alert) -> None:
        config = self.settings.alerts
        payload = teams_payload(alert, self.settings.timezone, internal=self.internal)
        await post_json(config.teams_url or "", json_bytes(payload), {})

    async def _webhook(self, alert: Alert) -> None:
        config = self.settings.alerts
        body = webhook_body(webhook_payload(alert, internal=self.internal))
        # The same id on every try of this alert, in this sweep or a later one: receivers
        # drop a webhook-id they have seen (the specification's idempotency key).
        msg_id = f"msg_sweeper_{alert.incident_id}_{alert.key.replace(':', '-')}"
        sign = signed_by(webhook_secret(self.env), msg_id, body)
        await post_json(config.webhook_url or "", body, {}, sign=sign)

    async def _mail(self, alert: Alert) -> None:
        config = self.settings.digest
        html, text = render_alert_mail(alert, self.internal, self.settings.timezone)
        sender = config.sender or ""
        if config.transport == "smtp":
            message = email_message(alert.headline, html, text, sender, config.recipients)
            await asyncio.to_thread(send_smtp, config, self.env, message, self.settings.ca_bundle)
            return
        payload = graph_payload(alert.headline, html, config.recipients, config.save_to_sent_items)
        async with gateway_for(self.settings.sign_in, self.env) as gateway:
            await gateway.send_mail(sender, payload)
