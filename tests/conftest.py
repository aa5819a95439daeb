"""The test suite's settings: the shared fixtures' plugin, hypothesis profiles, the slow
tests, the run's summary.

Helpers live in ``tests/support`` (``from support.x import ...``); the shared fixtures in
:mod:`support.fixtures`. No test module imports this file or another test module
(tests/test_test_layout.py checks it).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from support.ledger import LEDGER

pytest_plugins = ["support.fixtures"]

# Property tests: a few hundred examples each in `make test`, with no per-example deadline
# (a loaded CI machine must not fail them); `make check` runs a few, `make fuzz` runs them long.
settings.register_profile("test", max_examples=300, deadline=None)
settings.register_profile("check", max_examples=25, deadline=None)
settings.register_profile(
    "fuzz", max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("test")


# Fixtures that start a server on loopback: a test that asks for one, itself or through
# another fixture (``sweeper`` stands on ``fake``), is marked slow, and `make check` leaves it
# out. Tests that start child processes, browsers or Azurite are marked slow where they are.
SLOW_FIXTURES = frozenset({"fake", "relay", "receiver", "teams", "azurite"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LEDGER.cases:
        terminalreporter.write_sep("-", "fault matrix")
        terminalreporter.write_line(
            f"{LEDGER.cases} fault cases: {LEDGER.faults} faults injected, {LEDGER.runs} runs, "
            f"{LEDGER.lost} findings lost, {LEDGER.duplicates} duplicates"
        )
