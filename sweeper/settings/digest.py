"""``[digest]``: where the DPO's digest goes and how. The SMTP password comes from the
environment (``SWEEPER_SMTP_PASSWORD``), never from the file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.errors import ConfigError
from sweeper.settings.keys import default, key
from sweeper.settings.values import address


@dataclass(frozen=True)
class DigestSettings:
    """Where the DPO's digest goes and how. The SMTP password comes from the environment."""

    transport: str = default("digest.transport")  # one of TRANSPORTS
    sender: str | None = default("digest.sender")  # Graph: the sending mailbox; SMTP: From
    recipients: tuple[str, ...] = tuple(default("digest.recipients"))
    # Graph keeps a copy, which is how an interrupted digest is found sent or not (exactly
    # once); false: no copy, and an interrupted digest is sent again (at least once).
    save_to_sent_items: bool = default("digest.save_to_sent_items")
    all_clear: bool = default("digest.all_clear")  # a short all clear when nothing is new
    reports_dir: Path = Path(default("digest.reports_dir"))
    smtp_host: str | None = default("digest.smtp_host")
    smtp_port: int = default("digest.smtp_port")
    smtp_starttls: bool = default("digest.smtp_starttls")
    smtp_username: str | None = default("digest.smtp_username")

    def check_sendable(self, env: Mapping[str, str]) -> None:
        """Raise ConfigError unless a digest can be delivered with these settings."""
        if not self.recipients:
            raise ConfigError("digest.recipients", "must list at least one address to send to")
        if not self.sender:
            raise ConfigError("digest.sender", "must be set to send the digest")
        if self.transport == "smtp":
            if not self.smtp_host:
                raise ConfigError("digest.smtp_host", "must be set for transport = 'smtp'")
            if self.smtp_username and not env.get("SWEEPER_SMTP_PASSWORD"):
                raise ConfigError(
                    "SWEEPER_SMTP_PASSWORD", "must be set when digest.smtp_username is"
                )


def digest_settings(raw: dict[str, Any], config_path: Path | None) -> DigestSettings:
    """``[digest]`` as read from the file; relative paths are relative to the file."""
    transport = key("digest.transport").read(raw)
    sender = raw.get("sender")
    reports = Path(key("digest.reports_dir").read(raw)).expanduser()
    if not reports.is_absolute() and config_path is not None and "reports_dir" in raw:
        reports = config_path.parent / reports
    return DigestSettings(
        transport=transport,
        sender=address("digest.sender", sender) if sender else None,
        recipients=tuple(
            address(f"digest.recipients[{i}]", str(r))
            for i, r in enumerate(key("digest.recipients").read(raw))
        ),
        save_to_sent_items=key("digest.save_to_sent_items").read(raw),
        all_clear=key("digest.all_clear").read(raw),
        reports_dir=reports,
        smtp_host=raw.get("smtp_host") or None,
        smtp_port=key("digest.smtp_port").read(raw),
        smtp_starttls=key("digest.smtp_starttls").read(raw),
        smtp_username=raw.get("smtp_username") or None,
    )
