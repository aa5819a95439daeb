"""``[[allow]]``: allowlist rules, mail that is not a breach. Each must say why."""

from __future__ import annotations

import re
from typing import Any

from sweeper.errors import ConfigError
from sweeper.rules.allow import AllowRule
from sweeper.settings.values import domains


def parse_allow_rules(raw: list[dict[str, Any]]) -> tuple[AllowRule, ...]:
    """Allowlist rules from their TOML form (a list of tables); ConfigError names a bad one."""
    rules = []
    for index, entry in enumerate(raw):
        where = f"allow[{index}]"
        if not str(entry.get("reason", "")).strip():
            raise ConfigError(f"{where}.reason", "every allowlist rule must say why")
        if not any(k in entry for k in ("sender", "domains", "subject")):
            raise ConfigError(where, "needs at least one of sender, domains, subject")
        sender = entry.get("sender")
        if sender is not None and "@" not in sender:
            raise ConfigError(f"{where}.sender", f"{sender!r} is not an email address")
        pattern = None
        if "subject" in entry:
            try:
                pattern = re.compile(entry["subject"], re.IGNORECASE)
            except re.error as exc:
                raise ConfigError(f"{where}.subject", f"not a valid pattern: {exc}") from None
        listed = entry.get("domains")
        rules.append(
            AllowRule(
                name=entry.get("name") or where,
                reason=entry["reason"].strip(),
                sender=sender.strip().lower() if sender else None,
                domains=frozenset(domains(f"{where}.domains", listed)) if listed else None,
                subject=pattern,
                expires=entry.get("expires"),
            )
        )
    return tuple(rules)
