"""Checks of values that are lists or addresses: domains, phrases, sender patterns.

Each raises :class:`~sweeper.errors.ConfigError` naming the setting (and the item's index
where the list has one) and returns the values as the settings hold them, normalised.
"""

from __future__ import annotations

import re
from typing import Any

from sweeper.addresses import normalise_domain
from sweeper.errors import ConfigError


def domains(name: str, values: list[Any]) -> tuple[str, ...]:
    """Domain names, lower-cased and without a trailing dot."""
    found = []
    for value in values:
        if not isinstance(value, str) or "." not in value or "@" in value or " " in value:
            raise ConfigError(name, f"{value!r} is not a domain name")
        found.append(normalise_domain(value))
    return tuple(found)


def phrases(name: str, values: list[Any]) -> tuple[str, ...]:
    """Words or phrases, matched as whole words in any letter case."""
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{name}[{index}]", f"{value!r} is not a word or phrase")
    return tuple(v.strip().lower() for v in values)


_SENDER_PATTERN = re.compile(r"^[^@\s*]*\*?[^@\s*]*@[^@\s*]+\.[^@\s*]+$")


def sender_patterns(name: str, values: list[Any], example: str) -> tuple[str, ...]:
    """Addresses, ``*@domain`` or ``local*@domain``: a ``*`` only in the local part."""
    patterns = []
    for index, value in enumerate(values):
        text = value.strip().lower() if isinstance(value, str) else ""
        if not _SENDER_PATTERN.match(text) or text.startswith("@"):
            raise ConfigError(
                f"{name}[{index}]",
                f"{value!r} is not an address or a pattern such as {example}",
            )
        patterns.append(text)
    return tuple(patterns)


def address(name: str, value: str) -> str:
    """An email address, lower-cased."""
    text = value.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in text):
        raise ConfigError(name, f"{value!r} is not an email address")
    return text
