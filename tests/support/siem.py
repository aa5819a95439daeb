"""Microsoft Sentinel in a test's configuration, and what the local endpoint received."""

from __future__ import annotations

from typing import Any

from support.runner import Sweeper, write_config
from sweeper.fakegraph import FakeGraph

STREAM = "Custom-SweeperEvents"


def with_siem(sweeper: Sweeper, *lines: str, endpoint: str | None = None) -> Sweeper:
    """Add a [siem] section sending to the local Logs Ingestion endpoint."""
    fake = sweeper.fake
    section = [
        f'endpoint = "{endpoint or fake.ingestion_url}"',
        f'rule_id = "{fake.rule_id}"',
        *lines,
    ]
    write_config(sweeper.config, sweeper.config.read_text() + "\n[siem]\n" + "\n".join(section))
    return sweeper


def received(fake: FakeGraph, kind: str | None = None) -> list[dict[str, Any]]:
    records = fake.ingested.get(STREAM, [])
    return [r for r in records if kind is None or r["Kind"] == kind]
