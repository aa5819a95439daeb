"""A test hook: kill or hold the process at a named point, as a power cut or a slow run would.

``SWEEPER_KILL_AT=NAME`` makes :func:`reached` send SIGKILL to its own process when it
reaches the point ``NAME``: no ``finally``, no handler, no flush runs, so a test can check
what the database and the far side hold after a crash at exactly that point.

``SWEEPER_PAUSE_AT=NAME`` with ``SWEEPER_PAUSE_FILE=PATH`` holds the process at ``NAME``
instead: it creates ``PATH.waiting``, then waits until ``PATH`` exists (at most
:data:`LONGEST_PAUSE` seconds) and goes on, so that a test can run a second process
while the first stands at exactly that point.

Unset (as in every real run), :func:`reached` does nothing.

The points:

- ``digest-built``: the digest is built (what it reports is read); nothing is recorded.
- ``digest-sending``: the digest is recorded ``sending``; its delivery has not begun.
- ``digest-accepted``: Graph answered 202, or the SMTP relay accepted the message; nothing
  is recorded yet.
- ``siem-claimed``: the Sentinel export is recorded as started; nothing is read or sent.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

VARIABLE = "SWEEPER_KILL_AT"
PAUSE = "SWEEPER_PAUSE_AT"
PAUSE_FILE = "SWEEPER_PAUSE_FILE"
LONGEST_PAUSE = 120.0  # seconds: a test that forgot to release the process does not hang


def reached(name: str) -> None:
    """Kill this process at once if ``SWEEPER_KILL_AT`` names this point; hold it if
    ``SWEEPER_PAUSE_AT`` does."""
    if os.environ.get(VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get(PAUSE) == name and os.environ.get(PAUSE_FILE):
        _hold(Path(os.environ[PAUSE_FILE]))


def _hold(release: Path) -> None:
    release.with_name(release.name + ".waiting").touch()
    deadline = time.monotonic() + LONGEST_PAUSE
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
