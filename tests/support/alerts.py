"""Alerts in a test's configuration: by mail, or to Teams and a signed webhook on loopback."""

from __future__ import annotations

import base64

from click.testing import Result

from support.receivers import Receiver
from support.runner import Sweeper, write_config

SECRET = "whsec_" + base64.b64encode(b"sweeper-alert-test-key-of-32-bytes!").decode()


def with_alerts(sweeper: Sweeper, text: str) -> Sweeper:
    sweeper.with_digest(sweeper.db.parent / "reports")
    write_config(sweeper.config, sweeper.config.read_text() + "\n[alerts]\n" + text)
    return sweeper


def on_receivers(sweeper: Sweeper, teams: Receiver, hook: Receiver, extra: str = "") -> Sweeper:
    return with_alerts(
        sweeper,
        f'teams_url = "{teams.url("/teams")}"\nwebhook_url = "{hook.url("/hook")}"\n' + extra,
    )


def run_with_secret(sweeper: Sweeper, *args: str) -> Result:
    return sweeper.run(*args, env=sweeper.env(SWEEPER_WEBHOOK_SECRET=SECRET))
