"""What a declaration of one TOML key is, and the checks a declaration may name.

Each key of the configuration file is declared once (:mod:`sweeper.settings.keys`): its
section, name, TOML type(s), default, check and a line of help. The file's unknown-key and
type checks, the defaults of the settings objects and docs/settings.md all come from there.
A check here says its rule in words (for the reference) and raises
:class:`~sweeper.errors.ConfigError` naming the key when a value breaks it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sweeper.errors import ConfigError

Types = type | tuple[type, ...]


class Check(Protocol):
    """A rule a value must keep; applying it returns the value as the settings hold it."""

    def __call__(self, name: str, value: Any) -> Any: ...

    @property
    def words(self) -> str: ...


@dataclass(frozen=True)
class Key:
    """One TOML key: ``[section] name``.

    ``default`` is the value as TOML would write it (None: unset, and the help says what
    that means). ``example`` is what sweeper.example.toml shows instead of the default,
    only where it shows another value on purpose.
    """

    section: str
    name: str
    types: Types
    default: Any
    check: Check | None
    help: str
    example: Any = None

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"

    def read(self, table: Mapping[str, Any]) -> Any:
        """The value in ``table`` (the section read from the file), or the default; checked."""
        value = table.get(self.name, self.default)
        return self.check(self.path, value) if self.check is not None else value


@dataclass(frozen=True)
class IntBetween:
    """A whole number from ``low`` to ``high``."""

    low: int
    high: int

    def __call__(self, name: str, value: int) -> int:
        return int_between(name, value, self.low, self.high)

    @property
    def words(self) -> str:
        return f"{self.low} to {self.high}"


@dataclass(frozen=True)
class IntAtLeast:
    """A whole number of at least ``low``."""

    low: int

    def __call__(self, name: str, value: int) -> int:
        return int_at_least(name, value, self.low)

    @property
    def words(self) -> str:
        return f"at least {self.low}"


@dataclass(frozen=True)
class Between:
    """A finite number from ``low`` to ``high``, held as a float."""

    low: float
    high: float

    def __call__(self, name: str, value: float) -> float:
        return between(name, value, self.low, self.high)

    @property
    def words(self) -> str:
        return f"{self.low:g} to {self.high:g}"


@dataclass(frozen=True)
class Positive:
    """A finite number more than 0 and at most ``high``, held as a float."""

    high: float

    def __call__(self, name: str, value: float) -> float:
        if not math.isfinite(value):
            raise ConfigError(name, f"must be a finite number, not {value}")
        if value <= 0:
            raise ConfigError(name, f"must be more than 0, not {value}")
        if value > self.high:
            raise ConfigError(name, f"must be at most {self.high}, not {value}")
        return float(value)

    @property
    def words(self) -> str:
        return f"more than 0, at most {self.high:g}"


@dataclass(frozen=True)
class NotNegative:
    """A finite number from 0 to ``high``, held as a float."""

    high: float

    def __call__(self, name: str, value: float) -> float:
        if not math.isfinite(value):
            raise ConfigError(name, f"must be a finite number, not {value}")
        if value < 0:
            raise ConfigError(name, f"must not be negative, not {value}")
        if value > self.high:
            raise ConfigError(name, f"must be at most {self.high}, not {value}")
        return float(value)

    @property
    def words(self) -> str:
        return f"0 to {self.high:g}"


@dataclass(frozen=True)
class Share:
    """A share from 0 to 1, held as a float."""

    def __call__(self, name: str, value: float) -> float:
        if not 0 <= value <= 1:
            raise ConfigError(name, f"must be a share between 0 and 1, not {value}")
        return float(value)

    @property
    def words(self) -> str:
        return "0 to 1"


@dataclass(frozen=True)
class OneOf:
    """One of a few words."""

    choices: tuple[str, ...]

    def __call__(self, name: str, value: str) -> str:
        return choice(name, value, self.choices)

    @property
    def words(self) -> str:
        return "one of " + ", ".join(self.choices)


def choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(name, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def int_at_least(name: str, value: int, low: int) -> int:
    if value < low:
        raise ConfigError(name, f"must be at least {low}, not {value}")
    return value


def int_between(name: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low} and {high}, not {value}")
    return value


def between(name: str, value: float, low: float, high: float) -> float:
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(name, f"must be between {low} and {high}, not {value}")
    return float(value)
