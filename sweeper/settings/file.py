"""The configuration file: read as TOML, refused when it holds a secret, and checked against
the declared keys (:mod:`sweeper.settings.keys`): no unknown section or key, every value of
its declared type."""

from __future__ import annotations

import re
import stat
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sweeper.errors import ConfigError
from sweeper.settings.declare import Types
from sweeper.settings.keys import SECTIONS, schema

_SECRET_WORDS = ("secret", "password", "certificate_password", "token", "key")
_SECRET_VALUE = re.compile(
    r"[\w~.-]{3}\dQ~[\w~.-]{31,}"  # an Entra ID client secret (the form issued since 2021)
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"  # a certificate's private key pasted in
)
_TYPE_WORDS = {
    str: "a string",
    int: "an integer",
    float: "a number",
    list: "a list",
    bool: "true or false",
    date: "a date (2027-01-31)",
}


def read_file(path: Path) -> dict[str, Any]:
    """The file as TOML; ConfigError (``--config``) when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("--config", f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None
    _refuse_secrets(path, raw)
    return raw


def _refuse_secrets(path: Path, raw: Any, where: str = "") -> None:
    """A secret in the file is refused; said louder when other users can read the file."""
    items = (
        raw.items() if isinstance(raw, dict) else enumerate(raw) if isinstance(raw, list) else ()
    )
    for key, value in items:
        name = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip(".")
        if isinstance(value, dict | list):
            _refuse_secrets(path, value, name)
            continue
        named = isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS)
        looks = isinstance(value, str) and _SECRET_VALUE.search(value) is not None
        if not (named or looks):
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        fix = (
            "set AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) in the environment "
            "or use a managed identity"
        )
        if mode & 0o077:
            raise ConfigError(
                name,
                f"{path} holds a secret and other users can read it (mode {mode:04o}): treat "
                f"the secret as exposed and rotate it, remove it from the file, {fix}",
            )
        raise ConfigError(name, f"secrets never go in the configuration file; {fix}")


def check_schema(raw: dict[str, Any]) -> None:
    """Every section and key declared, every value of its declared type."""
    for section, body in raw.items():
        if section == "allow":
            if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
                raise ConfigError("allow", "must be a list of [[allow]] tables")
            for index, rule in enumerate(body):
                _check_table(f"allow[{index}]", rule, schema("allow"))
            continue
        if section not in SECTIONS:
            known = ", ".join([*SECTIONS, "allow"])
            raise ConfigError(section, f"unknown section (known: {known})")
        if not isinstance(body, dict):
            raise ConfigError(section, "must be a [section] table")
        _check_table(section, body, schema(section))


def _check_table(section: str, body: dict[str, Any], declared: dict[str, Types]) -> None:
    for key, value in body.items():
        name = f"{section}.{key}"
        expected = declared.get(key)
        if expected is None:
            raise ConfigError(name, f"unknown setting (known in {section}: {', '.join(declared)})")
        if expected is bool:
            right = isinstance(value, bool)
        else:
            right = not isinstance(value, bool) and isinstance(value, expected)
        if right and expected is date:
            right = not isinstance(value, datetime)
        if not right:
            raise ConfigError(name, f"must be {type_words(expected)}, not {value!r}")


def type_words(expected: Types) -> str:
    """``an integer or a number``: a declared type in the words of an error message."""
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(_TYPE_WORDS.get(t, t.__name__) for t in types)
