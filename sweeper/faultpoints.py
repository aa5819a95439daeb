"""A test hook: kill the process at a named point, as a power cut or the OOM killer would.

``SWEEPER_KILL_AT=NAME`` makes :func:`reached` send SIGKILL to its own process when it
reaches the point ``NAME``: no ``finally``, no handler, no flush runs, so a test can check
what the database and the far side hold after a crash at exactly that point. Unset (as in
every real run), :func:`reached` does nothing.

The points:

- ``digest-sending``: the digest is recorded ``sending``; its delivery has not begun.
- ``digest-accepted``: Graph answered 202, or the SMTP relay accepted the message; nothing
  is recorded yet.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "SWEEPER_KILL_AT"


def reached(name: str) -> None:
    """Kill this process at once if ``SWEEPER_KILL_AT`` names this point."""
    if os.environ.get(VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
