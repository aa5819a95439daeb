"""A fast start (issue 17): a command loads only what it uses.

Each command runs in a fresh interpreter, as a user starts it, and what it imported is read
from ``sys.modules`` afterwards. ``--help`` and ``--version`` load neither the settings nor
SQLite; the commands that do not call Graph load neither the Graph SDK nor any HTTP
library; no command but ``demo`` loads the local Graph. How long a start takes is measured,
not tested here: a timed test fails on a busy machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from support.runner import write_config
from support.tenant import DAY_FINDINGS

from sweeper.fakegraph import FakeGraph, generate_tenant

pytestmark = pytest.mark.slow  # each command started in a process of its own

# Runs `sweeper ARGS...` in this interpreter, then writes its exit code and every module it
# imported to OUT.
RUN_AND_LIST = """
import sys

import orjson

from sweeper.cli import main

out, args = sys.argv[1], sys.argv[2:]
try:
    main(args, prog_name="sweeper")
    code = 0
except SystemExit as exit:
    code = exit.code
with open(out, "wb") as f:
    f.write(orjson.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

LOCAL_GRAPH = ("sweeper.fakegraph", "trustme", "aiohttp")
GRAPH_SDK = ("msgraph", "msgraph_core", "kiota_", "azure.identity", "azure.monitor", "httpx")
# Beyond the SDK, what no listing needs: the cron check's scheduler, an event loop, templates.
NOT_FOR_LISTINGS = (*LOCAL_GRAPH, *GRAPH_SDK, "apscheduler", "asyncio", "jinja2", "css_inline")


@dataclass
class Started:
    code: int
    modules: list[str]
    stdout: bytes

    def loaded(self, *names: str) -> list[str]:
        """The modules among these (packages with their submodules; ``kiota_``: a prefix)."""
        return [
            m
            for m in self.modules
            if any(
                m == n or m.startswith(f"{n}.") or (n.endswith("_") and m.startswith(n))
                for n in names
            )
        ]


def start(env: dict[str, str], out: Path, *args: str) -> Started:
    result = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST, str(out), *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    listed = orjson.loads(out.read_bytes())
    return Started(listed["code"], listed["modules"], result.stdout)


@dataclass
class Swept:
    """A small real database, filled by `sweeper sweep` from the local Graph."""

    env: dict[str, str]
    fake: FakeGraph
    tmp: Path
    sweep: Started


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swept]:
    tmp = tmp_path_factory.mktemp("start")
    tenant = generate_tenant(seed=2012, users=24)
    own = ", ".join(f'"{d}"' for d in tenant.own_domains)
    config = write_config(
        tmp / "sweeper.toml",
        f'[graph]\ncloud = "custom"\nauth = "client_secret"\n\n'
        f"[organisation]\nown_domains = [{own}]\n",
    )
    with FakeGraph(tenant) as fake:
        env = {"SWEEPER_CONFIG": str(config), "SWEEPER_DB": str(tmp / "sweeper.db")}
        sweep = start({**env, **fake.client_env()}, tmp / "sweep.json", "sweep")
        assert sweep.code == 0, sweep.stdout.decode()
        yield Swept(env, fake, tmp, sweep)


@pytest.mark.parametrize("args", [["--version"], ["--help"]], ids=" ".join)
def test_help_and_version_load_no_settings_database_or_graph(
    tmp_path: Path, args: list[str]
) -> None:
    started = start({}, tmp_path / "modules.json", *args)

    assert started.code == 0
    assert started.loaded("sweeper.commands", "sweeper.store", "sqlite_utils") == []
    assert started.loaded(*NOT_FOR_LISTINGS) == []


# The commands that do not call Graph, on the swept database (incident set, reclassify and
# purge change it, in no way the others mind).
OFFLINE = [
    ["findings", "--format", "json"],
    ["findings"],
    ["incidents", "--format", "json"],
    ["incidents", "--all"],
    ["incident", "show", "1"],
    ["incident", "export", "1", "--out", "-"],
    ["incident", "set", "1", "acknowledged", "--note", "seen", "--by", "dpo"],
    ["alerts"],
    ["alerts", "--format", "csv"],
    ["reclassify"],
    ["purge"],
]


@pytest.mark.parametrize("args", OFFLINE, ids=" ".join)
def test_commands_that_do_not_call_graph_load_no_sdk(swept: Swept, args: list[str]) -> None:
    started = start(swept.env, swept.tmp / "modules.json", *args)

    assert started.code == 0, started.stdout.decode()
    assert started.loaded(*NOT_FOR_LISTINGS) == []


def test_findings_from_a_fast_start_are_the_stored_ones(swept: Swept) -> None:
    started = start(swept.env, swept.tmp / "modules.json", "findings", "--format", "json")

    assert len(orjson.loads(started.stdout)) == DAY_FINDINGS
    assert started.loaded("sweeper.settings", "sqlite_utils") != []


def test_the_worksheet_loads_its_templates_but_no_sdk(swept: Swept) -> None:
    started = start(swept.env, swept.tmp / "modules.json", "incident", "report", "1")

    assert started.code == 0
    assert started.loaded("jinja2") != []
    assert started.loaded(*LOCAL_GRAPH, *GRAPH_SDK) == []


def test_commands_that_call_graph_do_not_load_the_local_graph(swept: Swept) -> None:
    doctor = start({**swept.env, **swept.fake.client_env()}, swept.tmp / "doctor.json", "doctor")

    for started in (swept.sweep, doctor):
        assert started.loaded("msgraph") != []  # they did call it
        assert started.loaded("sweeper.fakegraph", "trustme") == []
