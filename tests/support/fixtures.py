"""The fixtures every test module may ask for, registered by ``tests/conftest.py``.

Every test gets its own local Graph and database, so faults and data never leak between tests.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller

from support.alerts import SECRET
from support.receivers import Receiver
from support.runner import Sweeper, write_config
from support.smtp import Relay, free_port
from sweeper.fakegraph import FakeGraph, Tenant, generate_tenant
from sweeper.fakegraph.tenant import SENSITIVE_DEPARTMENTS

# Variables that would point a test at a real tenant or a real configuration.
_FOREIGN = ("SWEEPER_CONFIG", "SWEEPER_DB", "SWEEPER_GRAPH_URL", "SSL_CERT_FILE")


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("AZURE_", "IDENTITY_", "MSI_")) or name in _FOREIGN:
            monkeypatch.delenv(name)


@pytest.fixture
def tenant() -> Tenant:
    return generate_tenant(seed=2012, users=24)


@pytest.fixture
def fake(tenant: Tenant) -> Iterator[FakeGraph]:
    with FakeGraph(tenant) as server:
        yield server


@pytest.fixture
def sweeper(fake: FakeGraph, tmp_path: Path) -> Sweeper:
    own = ", ".join(f'"{d}"' for d in fake.tenant.own_domains)
    departments = ", ".join(f'"{d}"' for d in SENSITIVE_DEPARTMENTS)
    config = write_config(
        tmp_path / "sweeper.toml",
        f"""
[graph]
cloud = "custom"
auth = "client_secret"

[organisation]
own_domains = [{own}]

[severity]
sensitive_departments = [{departments}]

[sweep]
page_size = 7
concurrency = 4
""",
    )
    return Sweeper(fake, config, tmp_path / "data" / "sweeper.db")


# -- servers on loopback ------------------------------------------------------------------


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    """A :class:`Relay` on loopback, its certificate from a CA of its own (``relay.ca``)."""
    ca = trustme.CA()
    ca_path = tmp_path / "relay-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    handler = Relay("127.0.0.1", free_port(), ca_path)
    controller = Controller(
        handler,
        hostname=handler.host,
        port=handler.port,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=handler.authenticate,
        auth_required=True,
    )
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver that verifies every signature (401 to a bad one)."""
    with Receiver(secret=SECRET) as running:
        yield running


@pytest.fixture
def teams() -> Iterator[Receiver]:
    """A stand-in for a Teams Workflows trigger: it takes any card."""
    with Receiver() as running:
        yield running
