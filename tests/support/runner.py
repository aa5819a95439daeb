"""The real ``sweeper`` command line run against the local Graph, and its configuration file."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner, Result

from sweeper.cli import main
from sweeper.fakegraph import FakeGraph
from sweeper.fakegraph.tenant import DIGEST_SENDER, DPO


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


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path
