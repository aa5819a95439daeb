"""The database in Blob Storage (against Azurite) and the Azure Functions entry point.

Azurite, the Azure Storage emulator, comes from the npm registry (package.json; `make test`
installs it). Without it these tests are skipped, saying how to install it.
"""

from __future__ import annotations

import importlib.util
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DAY_FINDINGS, Sweeper, write_config

from sweeper.blobstate import BlobLocation, leased_database
from sweeper.errors import AlreadyRunning

ROOT = Path(__file__).parent.parent
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account, the same in every installation.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

pytestmark = pytest.mark.skipif(
    not AZURITE.exists(), reason="Azurite is not installed: run `npm ci` (make test does)"
)


@pytest.fixture
def azurite(tmp_path: Path) -> Iterator[str]:
    """A fresh in-memory Azurite on a free loopback port; yields its connection string."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [
            str(AZURITE),
            "--silent",
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
        )
    finally:
        process.terminate()
        try:
            process.wait(10)
        except (
            subprocess.TimeoutExpired
        ):  # it keeps nothing on disk: stopping it hard loses nothing
            process.kill()
            process.wait(10)


def location(connection: str) -> BlobLocation:
    return BlobLocation.from_env({"SWEEPER_STATE_CONNECTION": connection})


def rows(path: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def write(path: Path, value: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("pragma journal_mode = wal")
    conn.execute("create table if not exists notes (text)")
    conn.execute("insert into notes values (?)", [value])
    conn.commit()
    conn.close()


def test_the_database_makes_the_round_trip(azurite: str, tmp_path: Path) -> None:
    with leased_database(location(azurite), tmp_path / "one" / "s.db") as local:
        assert not local.exists()  # a new blob: sweeper creates the database
        write(local, "first night")
    with leased_database(location(azurite), tmp_path / "two" / "s.db") as local:
        assert rows(local, "select text from notes") == [("first night",)]
        write(local, "second night")
    with leased_database(location(azurite), tmp_path / "three" / "s.db") as local:
        assert rows(local, "select text from notes") == [("first night",), ("second night",)]


def test_a_second_job_is_refused_while_the_lease_is_held(azurite: str, tmp_path: Path) -> None:
    refused = pytest.raises(AlreadyRunning, match="leased by another instance")
    with (
        leased_database(location(azurite), tmp_path / "a.db"),
        refused,
        leased_database(location(azurite), tmp_path / "b.db"),
    ):
        pass
    with leased_database(location(azurite), tmp_path / "c.db"):
        pass  # released at the end of the first job


def test_what_was_found_before_a_failure_is_uploaded(azurite: str, tmp_path: Path) -> None:
    failed = pytest.raises(RuntimeError)
    with failed, leased_database(location(azurite), tmp_path / "a.db") as local:
        write(local, "found before the crash")
        raise RuntimeError("the sweep failed half-way")
    with leased_database(location(azurite), tmp_path / "b.db") as local:
        assert rows(local, "select text from notes") == [("found before the crash",)]


def test_the_function_sweeps_with_managed_identity_and_keeps_state_in_blobs(
    sweeper: Sweeper, azurite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.functions.timer import TimerRequest

    write_config(
        sweeper.config,
        sweeper.config.read_text().replace('auth = "client_secret"', 'auth = "managed_identity"'),
    )
    sweeper.with_digest(tmp_path / "reports")
    env = sweeper.env(
        IDENTITY_ENDPOINT=f"http://127.0.0.1:{sweeper.fake.graph_port}/msi/token",
        IDENTITY_HEADER=sweeper.fake.identity_header,
        SWEEPER_STATE_CONNECTION=azurite,
    )
    for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "SWEEPER_DB"):
        env.pop(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location(
        "function_app", ROOT / "deploy" / "azure-functions" / "function_app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    functions = {f.get_function_name(): f.get_user_function() for f in module.app.get_functions()}
    assert set(functions) == {"nightly", "frequent"}
    nightly = functions["nightly"]

    nightly(TimerRequest(past_due=True))  # late: it runs all the same
    functions["frequent"](TimerRequest(past_due=False))  # a sweep, no second digest

    assert len(sweeper.fake.sent_mail) == 1
    with leased_database(location(azurite), tmp_path / "check.db") as local:
        assert rows(local, "select count(*) from findings") == [(DAY_FINDINGS,)]
        assert rows(local, "select status from runs") == [("ok",), ("ok",)]
