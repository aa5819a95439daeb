"""How many SQLite statements a sweep makes per mailbox: the figure issue 26 brought down.

Every statement the sweep's connection runs is counted (``set_trace_callback``), savepoints,
transactions and schema reads included, on the local tenant of the ``sweeper`` fixture.
A mailbox costs its transaction (begin, its run row, its nightly state, commit); a finding
its row, and its placing in an incident; the run a few statements of its own.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from support.runner import Sweeper

from sweeper import store

# Measured when this test was written: 9.3 a mailbox for the first sweep (was 30.7), 5.0 for
# a sweep finding nothing new (was 7.2). The bounds leave a little room, not a regression.
FIRST_SWEEP = 10
NOTHING_NEW = 6


def counted_sweep(sweeper: Sweeper, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Run ``sweeper sweep``; return the statements on its database and its mailboxes."""
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        if str(args[0]) == str(sweeper.db):
            conn.set_trace_callback(statements.append)
        return conn

    with monkeypatch.context() as patch:
        patch.setattr(sqlite3, "connect", traced)
        result = sweeper.run("sweep")
    assert result.exit_code == 0, result.output
    run = sweeper.rows("select * from runs order by id desc limit 1")[0]
    return len(statements), run["mailboxes_total"]


def test_a_sweep_makes_few_statements_per_mailbox(
    sweeper: Sweeper, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.open_db(sweeper.db).conn.close()  # the migrations are not the sweep's

    statements, mailboxes = counted_sweep(sweeper, monkeypatch)
    assert sweeper.rows("select count(*) from findings")[0][0] > 0
    assert statements <= FIRST_SWEEP * mailboxes, statements / mailboxes

    statements, mailboxes = counted_sweep(sweeper, monkeypatch)
    assert statements <= NOTHING_NEW * mailboxes, statements / mailboxes
