"""The alert channels, each named once: its name, the ``[alerts]`` key that turns it on, and
the heading of the documentation that explains it.

The name is what the ``alerts`` table records and what ``sweeper alerts`` shows; the order
is the order channels are tried. Settings, the alerts command, ``doctor`` and the docs all
read this list; tests/test_settings_keys.py checks that each channel is declared, documented
and delivered to a test receiver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Channel:
    """One alert channel."""

    name: str  # teams, webhook, mail: as recorded and shown
    key: str  # the [alerts] key that turns it on (a URL, or true)
    docs: str  # the heading, in README.md or docs/, that explains it
    via_digest: bool = False  # sent the digest's way ([digest]: Graph or SMTP, recipients)

    @property
    def setting(self) -> str:
        """The setting named in every line about this channel: ``alerts.teams_url``."""
        return f"alerts.{self.key}"


CHANNELS: tuple[Channel, ...] = (
    Channel("teams", "teams_url", "### Teams"),
    Channel("webhook", "webhook_url", "### Webhooks"),
    Channel("mail", "mail", "## `sweeper alerts`", via_digest=True),
)
BY_NAME: Mapping[str, Channel] = {channel.name: channel for channel in CHANNELS}


def channel_settings() -> str:
    """The keys that turn a channel on, in words: ``teams_url, webhook_url or mail = true``."""
    words = [c.key if c.key.endswith("_url") else f"{c.key} = true" for c in CHANNELS]
    return ", ".join(words[:-1]) + " or " + words[-1]
