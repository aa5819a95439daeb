"""Fixtures: a generated tenant served by the real local Graph, and a CLI runner wired to it.

Every test gets its own server and database, so faults and data never leak between tests.
"""

from __future__ import annotations

import os
import sqlite3
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from sweeper.cli import main
from sweeper.fakegraph import FakeGraph, Tenant, generate_tenant
from sweeper.fakegraph.tenant import DIGEST_SENDER, DPO, SENSITIVE_DEPARTMENTS

# Property tests: a few hundred examples each in `make test`, with no per-example deadline
# (a loaded CI machine must not fail them); `make fuzz` runs them long.
settings.register_profile("test", max_examples=300, deadline=None)
settings.register_profile(
    "fuzz", max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("test")

# Messages of the generated tenant a correct sweep of the last 24 hours reports: 7 batches
# of the 2012 survey, the honeytrap mail and its reply-all, the clinic list, 3 interpreter
# emails, 2 "Volunteer induction" mails, the partner group, the odd recipients, the
# regulatory service list.
DAY_FINDINGS = 18
DAY_INCIDENTS = 9

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


@dataclass
class Sweeper:
    """Runs the real ``sweeper`` command line against the local Graph."""

    fake: FakeGraph
    config: Path
    db: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **self.fake.client_env(),
            "SWEEPER_CONFIG": str(self.config),
            "SWEEPER_DB": str(self.db),
            **extra,
        }

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(main, list(args), env=env or self.env(), catch_exceptions=False)

    def with_digest(self, reports: Path | None = None) -> Sweeper:
        """Add a [digest] section: sent through the local Graph to the DPO."""
        section = f'\n[digest]\nsender = "{DIGEST_SENDER}"\nrecipients = ["{DPO}"]\n'
        if reports is not None:
            section += f'reports_dir = "{reports}"\n'
        write_config(self.config, self.config.read_text() + section)
        return self

    def findings(self, *args: str) -> list[dict[str, Any]]:
        return self.listing("findings", *args)

    def incidents(self, *args: str) -> list[dict[str, Any]]:
        return self.listing("incidents", *args)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """What the database holds, read as the tests check it: rows by column name."""
        conn = sqlite3.connect(self.db)
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def as_before(self, migration: str, table: str, columns: Sequence[str]) -> None:
        """Leave the database as the release before ``migration`` did: its columns gone."""
        conn = sqlite3.connect(self.db)
        try:
            with conn:
                for column in columns:
                    conn.execute(f"alter table {table} drop column {column}")
                conn.execute("delete from migrations where name = ?", [migration])
        finally:
            conn.close()

    def listing(self, command: str, *args: str) -> list[dict[str, Any]]:
        result = self.run(command, "--format", "json", *args)
        assert result.exit_code == 0, result.output
        rows: list[dict[str, Any]] = orjson.loads(result.stdout)
        return rows


def late_batch(
    fake: FakeGraph, upn: str, key: str, minutes: int, recipients: list[dict[str, Any]]
) -> None:
    """Another batch of the mailbox's newest mailing, ``minutes`` after its last message."""
    sender = fake.tenant.user(upn)
    assert sender is not None
    last = max(datetime.fromisoformat(m["sentDateTime"]) for m in sender.sent)
    late = dict(sender.sent[0])
    late.update(
        id=f"AAMkAG{key}",
        internetMessageId=f"<{key}@northwick.example>",
        sentDateTime=(last + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        toRecipients=recipients,
        ccRecipients=[],
    )
    sender.sent.insert(0, late)


@dataclass
class FaultLedger:
    """Totals of the fault matrix (tests/test_faults.py), printed at the end of the run."""

    cases: int = 0
    faults: int = 0  # faults the local Graph actually injected
    runs: int = 0  # sweeps run with faults about, reruns included
    lost: int = 0  # findings of the fault-free run missing after the faulty one
    duplicates: int = 0  # findings, addresses or incident members stored twice


LEDGER = FaultLedger()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LEDGER.cases:
        terminalreporter.write_sep("-", "fault matrix")
        terminalreporter.write_line(
            f"{LEDGER.cases} fault cases: {LEDGER.faults} faults injected, {LEDGER.runs} runs, "
            f"{LEDGER.lost} findings lost, {LEDGER.duplicates} duplicates"
        )


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


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


def request_token(fake: FakeGraph) -> httpx.Response:
    """The local Graph's answer to a client-credentials sign-in with the tenant's own app."""
    return httpx.post(
        f"{fake.authority}/{fake.tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "scope": "http://127.0.0.1/.default",
        },
        verify=ssl.create_default_context(cafile=str(fake.ca_path)),
    )
