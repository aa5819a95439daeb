"""Write docs/settings.md, the reference of every key of the configuration file, from the
declarations in :mod:`sweeper.settings.keys`.

    python -m tools.settings_table > docs/settings.md

``tests/test_settings_keys.py`` fails when the committed page differs from what this writes.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import Any

from sweeper.settings.channels import CHANNELS
from sweeper.settings.declare import Key, Types
from sweeper.settings.keys import KEYS, SECTIONS

_WORDS = {str: "string", int: "integer", float: "number", bool: "boolean", list: "list"}
_WORDS |= {dict: "table", date: "date"}
_HEADER = "| key | type | default | allowed | what it does |\n|---|---|---|---|---|\n"
INTRO = """\
# Settings reference

Every key of the configuration file (`sweeper --config PATH`, or `SWEEPER_CONFIG`), with its
type, its default and what it does. Every key is optional (an `[[allow]]` rule needs its
reason); "—" means unset, and the key's line says what that means. Secrets never go in
the file: see [Configuration](configuration.md).

This page is generated from the declarations in `sweeper/settings/keys.py`
(`python -m tools.settings_table > docs/settings.md`); edit those, not this page.
"""


def toml_value(value: Any) -> str:
    """``value`` as TOML writes it: strings quoted, true/false, lists and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        pairs = ", ".join(f"{_bare(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    return repr(value)


def _bare(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else toml_value(name)


def _type(types: Types) -> str:
    listed = types if isinstance(types, tuple) else (types,)
    if float in listed:
        return _WORDS[float]  # an integer is a number too
    return " or ".join(_WORDS[t] for t in listed)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _help(key: Key) -> str:
    """The declared help; a channel's key also says which alert channel it turns on."""
    for channel in CHANNELS:
        if channel.setting == key.path:
            heading = channel.docs.lstrip("#").strip()
            return f'{key.help}: turns on the `{channel.name}` alert channel (see "{heading}")'
    return key.help


def _row(key: Key) -> str:
    default = "—" if key.default is None else f"`{toml_value(key.default)}`"
    allowed = key.check.words if key.check is not None else ""
    return (
        f"| `{key.path}` | {_type(key.types)} | {_cell(default)} | {_cell(allowed)} "
        f"| {_cell(_help(key))} |"
    )


def reference() -> str:
    """The whole page: one table per section, in the order of the file."""
    parts = [INTRO]
    for section in (*SECTIONS, "allow"):
        title = "`[[allow]]` (a list of rules)" if section == "allow" else f"`[{section}]`"
        rows = [_row(key) for key in KEYS if key.section == section]
        parts.append(f"## {title}\n\n{_HEADER}" + "\n".join(rows) + "\n")
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(reference())
