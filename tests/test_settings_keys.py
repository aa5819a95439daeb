"""Each key of the configuration file is declared once (sweeper.settings.keys), and the
reference page, the example file, the docs' tables of defaults, the settings objects and
the alert channels all agree with the declarations."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from support.runner import write_config

from sweeper.commands.alerts import _Senders
from sweeper.errors import ConfigError
from sweeper.settings import DEFAULTS, AlertSettings, Settings, load_settings
from sweeper.settings.channels import CHANNELS, Channel, channel_settings
from sweeper.settings.declare import Key
from sweeper.settings.keys import KEYS, SECTIONS, default, key
from tools.settings_table import reference, toml_value

ROOT = Path(__file__).parent.parent
SIGN_IN = {
    "AZURE_TENANT_ID": "11111111-1111-1111-1111-111111111111",
    "AZURE_CLIENT_ID": "22222222-2222-2222-2222-222222222222",
    "AZURE_CLIENT_SECRET": "test-only-secret",
}
HEADER = re.compile(r"^#?\s*\[\[?([a-z_]+)\]\]?\s*$")
LINE = re.compile(r"^#?\s*([a-z_]+)\s*=\s*(.+)$")


def test_each_key_is_declared_once() -> None:
    paths = [k.path for k in KEYS]
    assert len(paths) == len(set(paths))
    assert all(k.help.strip() and "\n" not in k.help for k in KEYS)


def test_the_reference_page_is_what_the_declarations_generate() -> None:
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert page == reference(), "run: python -m tools.settings_table > docs/settings.md"
    for declared in KEYS:
        assert f"| `{declared.path}` |" in page


def example_lines() -> dict[str, list[Any]]:
    """``section.key`` -> the values sweeper.example.toml shows, commented lines too."""
    shown: dict[str, list[Any]] = {}
    section = ""
    for line in (ROOT / "sweeper.example.toml").read_text(encoding="utf-8").splitlines():
        if header := HEADER.match(line):
            section = header[1]
        elif (found := LINE.match(line)) and section:
            shown.setdefault(f"{section}.{found[1]}", []).append(
                tomllib.loads(f"v = {found[2]}")["v"]
            )
    return shown


@pytest.mark.parametrize("declared", KEYS, ids=lambda k: k.path)
def test_every_key_is_in_the_example_with_its_default(declared: Key) -> None:
    shown = example_lines()
    assert declared.path in shown, f"{declared.path} is not in sweeper.example.toml"
    expected = declared.default if declared.example is None else declared.example
    if expected is not None:
        assert expected in shown[declared.path], declared.path


def test_the_example_shows_no_undeclared_key() -> None:
    assert set(example_lines()) - {k.path for k in KEYS} == set()


# "| `key` | `default` |" in prose tables; "| `key` | type | `default` |" in docs/settings.md
TABLE_ROW = re.compile(r"^\| `([a-z_]+\.[a-z_]+)` \|(?: [^|`]+ \|)? `([^`|]*)` \|", re.MULTILINE)


def test_the_defaults_the_docs_state_are_the_declared_ones() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    stated = [
        (page.name, path, text)
        for page in pages
        for path, text in TABLE_ROW.findall(page.read_text(encoding="utf-8"))
        if path in {k.path for k in KEYS}
    ]
    assert len(stated) > 20  # the pattern still finds the tables
    for page, path, text in stated:
        assert text in (toml_value(default(path)), str(default(path)).lower(), default(path)), (
            f"{page}: {path} says {text}, declared {toml_value(default(path))}"
        )


def test_the_settings_objects_take_their_defaults_from_the_declarations() -> None:
    loaded = load_settings(None, SIGN_IN)
    for settings in (DEFAULTS, loaded):
        assert settings.page_size == default("sweep.page_size")
        assert settings.window.total_seconds() == default("sweep.window_hours") * 3600
        assert settings.timeout == default("graph.timeout_seconds")
        assert settings.retention.days == default("retention.addresses_days")
        assert settings.alerts.grew_by == default("alerts.grew_by")
        assert settings.alerts.budget_seconds == default("alerts.budget_seconds")
        assert settings.digest.smtp_port == default("digest.smtp_port")
        assert settings.console.port == default("console.port")
        assert settings.siem.stream == default("siem.stream")
        assert settings.severity.high_at == default("severity.high_at")
        assert dict(settings.severity.reveals_critical_at) == default(
            "severity.reveals_critical_at"
        )
    assert loaded == Settings(
        graph_url=loaded.graph_url, authority_host=loaded.authority_host, **_ids(loaded)
    )


def _ids(settings: Settings) -> dict[str, Any]:
    return {"tenant_id": settings.tenant_id, "client_id": settings.client_id}


WRONG = {str: 1, int: "x", list: "x", bool: "x", dict: "x"}


@pytest.mark.parametrize(
    "declared", [k for k in KEYS if k.section != "allow"], ids=lambda k: k.path
)
def test_every_key_is_checked_for_its_type(tmp_path: Path, declared: Key) -> None:
    first = declared.types[0] if isinstance(declared.types, tuple) else declared.types
    text = f"[{declared.section}]\n{declared.name} = {toml_value(WRONG[first])}\n"
    config = write_config(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as error:
        load_settings(config, SIGN_IN)
    assert error.value.setting == declared.path
    assert error.value.problem.startswith("must be ")


def test_the_sections_are_the_declared_ones(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", "[nothing]\n")
    with pytest.raises(ConfigError) as error:
        load_settings(config, SIGN_IN)
    assert error.value.problem == f"unknown section (known: {', '.join([*SECTIONS, 'allow'])})"


def docs_text() -> str:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: c.name)
def test_every_alert_channel_is_declared_documented_and_tested(channel: Channel) -> None:
    declared = key(channel.setting)
    assert declared.section == "alerts" and declared.default in (None, False)
    assert f"\n{channel.docs}\n" in docs_text(), f"no heading {channel.docs!r} in the docs"
    assert channel.setting in docs_text()
    turned_on = re.compile(rf"{channel.key} = (\"\{{\w+\.url\(|true)")
    receivers = [
        test.name
        for test in [*(ROOT / "tests").glob("test_*.py"), *(ROOT / "tests/support").glob("*.py")]
        if turned_on.search(test.read_text(encoding="utf-8"))
    ]
    assert receivers, f"no test delivers to {channel.name} ({channel.key} set to a receiver)"


def test_the_alert_command_has_a_sender_for_every_channel() -> None:
    every = AlertSettings(
        teams_url="https://t.example/", webhook_url="https://w.example/", mail=True
    )
    settings = Settings(alerts=every)
    assert every.channels == tuple(c.name for c in CHANNELS)
    assert list(_Senders(settings, {}, ()).configured()) == [c.name for c in CHANNELS]


def test_the_channel_settings_in_words_are_the_ones_the_cli_names() -> None:
    assert channel_settings() == "teams_url, webhook_url or mail = true"
