"""The test suite's settings: the shared fixtures' plugin, hypothesis profiles, the run's summary.

Helpers live in ``tests/support`` (``from support.x import ...``); the shared fixtures in
:mod:`support.fixtures`. No test module imports this file or another test module
(tests/test_layout.py checks it).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from support.ledger import LEDGER

pytest_plugins = ["support.fixtures"]

# Property tests: a few hundred examples each in `make test`, with no per-example deadline
# (a loaded CI machine must not fail them); `make fuzz` runs them long.
settings.register_profile("test", max_examples=300, deadline=None)
settings.register_profile(
    "fuzz", max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("test")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LEDGER.cases:
        terminalreporter.write_sep("-", "fault matrix")
        terminalreporter.write_line(
            f"{LEDGER.cases} fault cases: {LEDGER.faults} faults injected, {LEDGER.runs} runs, "
            f"{LEDGER.lost} findings lost, {LEDGER.duplicates} duplicates"
        )
