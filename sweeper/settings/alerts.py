"""``[alerts]``: alerts at once, after any sweep. The webhook's signing secret comes from the
environment (``SWEEPER_WEBHOOK_SECRET``); the URLs are never logged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sweeper.errors import ConfigError
from sweeper.outbound.webhooks import check_webhook_url, webhook_secret
from sweeper.settings.channels import CHANNELS
from sweeper.settings.keys import default, key
from sweeper.when import parse_span


@dataclass(frozen=True)
class AlertSettings:
    """Alerts at once, after any sweep. The webhook's signing secret comes from the
    environment (``SWEEPER_WEBHOOK_SECRET``); the URLs are never logged."""

    sweep_every: timedelta | None = None  # frequent incremental sweeps by `schedule`; off
    min_severity: str = default("alerts.min_severity")  # a new incident this high is alerted
    grew_by: float = default("alerts.grew_by")  # ... and again when its people grew this much
    teams_url: str | None = default("alerts.teams_url")  # a Teams Workflows webhook
    webhook_url: str | None = default("alerts.webhook_url")  # a Standard Webhooks receiver
    mail: bool = default("alerts.mail")  # a short mail to the digest's recipients
    # The time one run gives all its alert deliveries (channels at once); what is not
    # delivered by then is left pending for the next run, so no channel holds a sweep.
    budget_seconds: float = float(default("alerts.budget_seconds"))

    @property
    def channels(self) -> tuple[str, ...]:
        """The configured channels, in the order they are tried."""
        return tuple(c.name for c in CHANNELS if getattr(self, c.key))


def alert_settings(raw: dict[str, Any], env: Mapping[str, str] | None) -> AlertSettings:
    """``[alerts]``: channels, thresholds and the frequent sweep. With ``env`` (commands
    that may send), the webhook's signing secret must be there when a webhook is set."""
    every = raw.get("sweep_every")
    span = None
    if every:
        try:
            span = parse_span(every)
        except ValueError as exc:
            raise ConfigError("alerts.sweep_every", str(exc)) from None
        if not timedelta(minutes=5) <= span <= timedelta(hours=12):
            raise ConfigError("alerts.sweep_every", f"{every!r} must be from 5m to 12h")
    webhook = _hook_url("alerts.webhook_url", raw.get("webhook_url"))
    if webhook and env is not None:
        webhook_secret(env)  # one line naming the variable, at start, when it is missing
    return AlertSettings(
        sweep_every=span,
        min_severity=key("alerts.min_severity").read(raw),
        grew_by=key("alerts.grew_by").read(raw),
        teams_url=_hook_url("alerts.teams_url", raw.get("teams_url")),
        webhook_url=webhook,
        mail=key("alerts.mail").read(raw),
        budget_seconds=key("alerts.budget_seconds").read(raw),
    )


def _hook_url(name: str, value: str | None) -> str | None:
    """An https URL; plain http only to this machine's loopback (a test receiver)."""
    return check_webhook_url(name, value) if value else None
