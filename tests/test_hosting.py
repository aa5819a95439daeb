"""The database in Blob Storage (against Azurite) and the Azure Functions entry point.

Azurite, the Azure Storage emulator, comes from the npm registry (package.json; `make test`
installs it). Without it these tests are skipped, saying how to install it.
"""

from __future__ import annotations

import importlib.util
import re
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient
from support.cutproxy import CuttingProxy
from support.forward_proxy import ForwardProxy
from support.runner import Sweeper, write_config
from support.tenant import DAY_FINDINGS

from sweeper.blobstate import BlobLocation, leased_database
from sweeper.errors import EXIT_FAILED, AlreadyRunning, StateError
from sweeper.store import open_db
from sweeper.store.integrity import checkpoint

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
        yield connection_string(port)
    finally:
        # It keeps nothing on disk: stopping it hard loses nothing. A client's connections
        # still open (a lease renewer's) keep it from ending on SIGTERM for many seconds.
        process.kill()
        process.wait(10)


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
    )


def port_of(connection: str) -> int:
    return int(connection.split("BlobEndpoint=http://127.0.0.1:")[1].split("/")[0])


def location(connection: str) -> BlobLocation:
    return BlobLocation.from_env({"SWEEPER_STATE_CONNECTION": connection})


def rows(path: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def write(path: Path, value: str) -> None:
    """A note in the sweeper database at ``path`` (created if new), left in its WAL."""
    open_db(path).conn.close()
    conn = sqlite3.connect(path)
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


def function_app(
    sweeper: Sweeper, azurite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The Functions app's timer functions, set up as in Azure (managed identity, Blob)."""
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
    return {
        name: (lambda past_due, run=run: run(TimerRequest(past_due=past_due)))
        for name, run in functions.items()
    }


def test_the_function_sweeps_with_managed_identity_and_keeps_state_in_blobs(
    sweeper: Sweeper, azurite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    functions = function_app(sweeper, azurite, tmp_path, monkeypatch)
    functions["nightly"](True)  # late: it runs all the same
    functions["frequent"](False)  # a sweep, no second digest

    assert len(sweeper.fake.sent_mail) == 1
    with leased_database(location(azurite), tmp_path / "check.db") as local:
        assert rows(local, "select count(*) from findings") == [(DAY_FINDINGS,)]
        assert rows(local, "select status from runs") == [("ok",), ("ok",)]


def test_a_night_whose_database_download_is_cut_fails_in_one_line_and_keeps_the_blob(
    sweeper: Sweeper,
    azurite: str,
    proxy: CuttingProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 24, item 1: the cut download used to be uploaded over the database (0 bytes)."""
    functions = function_app(sweeper, connection_string(proxy.port), tmp_path, monkeypatch)
    functions["nightly"](False)
    before = stored(azurite)
    proxy.armed = True
    with pytest.raises(RuntimeError, match="could not be read whole") as failed:
        functions["frequent"](False)
    assert proxy.cuts >= 3
    assert "\n" not in str(failed.value)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert errors[0].startswith("sweeper frequent sweep failed (exit 3): the database blob")
    assert stored(azurite) == before  # byte for byte
    proxy.armed = False
    with leased_database(location(azurite), tmp_path / "check.db") as local:
        assert rows(local, "select status from runs") == [("ok",)]  # the night before


def blob_client(connection: str) -> Any:
    service = BlobServiceClient.from_connection_string(connection)
    return service.get_container_client("sweeper").get_blob_client("sweeper.db")


def stored(connection: str) -> tuple[bytes, str]:
    """The blob's bytes and ETag, read from Azurite directly."""
    blob = blob_client(connection)
    return blob.download_blob().readall(), blob.get_blob_properties().etag


@pytest.fixture
def proxy(azurite: str) -> Iterator[CuttingProxy]:
    """Azurite behind a proxy that, once armed, cuts every answer after 4 KiB."""
    cutting = CuttingProxy(port_of(azurite), after_bytes=4096).start()
    try:
        yield cutting
    finally:
        cutting.stop()


def a_night_of_notes(azurite: str, tmp_path: Path) -> None:
    """A database of a few hundred KiB in the blob, as a night's run leaves it."""
    with leased_database(location(azurite), tmp_path / "first" / "s.db") as local:
        for night in range(300):
            write(local, f"night {night} " + "x" * 1000)


def test_a_download_cut_three_times_leaves_the_blob_as_it_was(
    azurite: str, proxy: CuttingProxy, tmp_path: Path
) -> None:
    a_night_of_notes(azurite, tmp_path)
    before = stored(azurite)
    assert len(before[0]) > 300_000
    proxy.armed = True
    local = tmp_path / "cut" / "s.db"
    ran = False
    with (
        pytest.raises(StateError) as failed,
        leased_database(location(connection_string(proxy.port)), local),
    ):
        ran = True
    assert not ran  # nothing ran on what did not arrive
    assert proxy.cuts >= 3  # the client tried again, and was cut each time
    assert failed.value.exit_code == EXIT_FAILED
    line = str(failed.value)
    assert "\n" not in line and "could not be read whole" in line
    assert not local.exists()
    assert list(local.parent.iterdir()) == []  # no partial copy left behind
    assert stored(azurite) == before  # byte for byte, not even rewritten
    proxy.armed = False
    with leased_database(location(azurite), tmp_path / "after" / "s.db") as kept:
        assert len(rows(kept, "select text from notes")) == 300  # and the lease was released


def newer(path: Path) -> None:
    write(path, "from a newer sweeper")
    conn = sqlite3.connect(path)
    conn.execute("insert into migrations values ('9999_from_the_future', '2099-01-01')")
    conn.commit()
    conn.close()
    checkpoint(path)  # the file alone holds it all, as an uploaded one does


def garbage(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)


def not_sweepers(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("create table notes (text)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (lambda path: path.write_bytes(b""), "it is empty (0 bytes)"),
        (garbage, "it cannot be read as a database"),
        (newer, "'9999_from_the_future' is unknown"),
        (not_sweepers, "not a sweeper database"),
    ],
    ids=["empty", "damaged", "newer", "not-sweepers"],
)
def test_a_blob_that_is_not_a_sound_database_is_refused_and_kept(
    azurite: str, tmp_path: Path, content: Any, said: str
) -> None:
    """Only a blob that does not exist is a new tenant; an emptied one is not started afresh."""
    made = tmp_path / "made.db"
    content(made)
    BlobServiceClient.from_connection_string(azurite).create_container("sweeper")
    blob_client(azurite).upload_blob(made.read_bytes())
    before = stored(azurite)
    local = tmp_path / "run" / "s.db"
    with (
        pytest.raises(StateError, match=re.escape(said)) as failed,
        leased_database(location(azurite), local),
    ):
        pass
    assert "\n" not in str(failed.value)
    assert not local.exists()
    assert stored(azurite) == before


def test_a_database_damaged_during_the_run_is_not_stored_back(azurite: str, tmp_path: Path) -> None:
    a_night_of_notes(azurite, tmp_path)
    before = stored(azurite)
    with (
        pytest.raises(StateError, match="not fit to store"),
        leased_database(location(azurite), tmp_path / "run" / "s.db") as local,
    ):
        local.write_bytes(b"")  # whatever emptied it, it is not uploaded
    assert stored(azurite) == before


def test_the_blob_state_goes_through_the_proxy_every_other_client_uses(
    azurite: str, tmp_path: Path
) -> None:
    """Issue 24, item 19: the Blob client takes HTTP(S)_PROXY and NO_PROXY as every other
    client does (one outbound configuration), not azure-core's own reading of them."""
    env = {"SWEEPER_STATE_CONNECTION": azurite, "NO_PROXY": ""}
    with ForwardProxy() as proxy:
        through = BlobLocation.from_env({**env, "HTTP_PROXY": proxy.url})
        with leased_database(through, tmp_path / "one" / "s.db") as local:
            write(local, "through the proxy")
        seen = [t for t in proxy.targets("PUT") if f"127.0.0.1:{port_of(azurite)}" in t]
        assert seen  # the lease and the upload, in absolute form: through the proxy

        exempt = BlobLocation.from_env({**env, "HTTP_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"})
        before = len(proxy.seen)
        with leased_database(exempt, tmp_path / "two" / "s.db") as local:
            assert rows(local, "select text from notes") == [("through the proxy",)]
        assert len(proxy.seen) == before  # NO_PROXY names the host: straight to it
