"""Child processes: Python code with these helpers importable, or ``sweeper`` held at a point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.runner import Sweeper

TESTS = Path(__file__).parent.parent


def child(code: str, *args: str) -> subprocess.Popen[str]:
    """A Python process running ``code``, with these tests' helpers importable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL, as the OOM killer or a lost container would: no cleanup at all."""
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def held_at(point: str, sweeper: Sweeper, release: Path, *args: str) -> subprocess.Popen[str]:
    """``sweeper ARGS`` in a child process, held at ``point`` until ``release`` exists;
    returned once it stands there."""
    child = subprocess.Popen(
        [sys.executable, "-m", "sweeper", *args],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **sweeper.env(SWEEPER_PAUSE_AT=point, SWEEPER_PAUSE_FILE=str(release)),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    waiting = release.with_name(release.name + ".waiting")
    for _ in range(1200):
        if waiting.exists() or child.poll() is not None:
            break
        time.sleep(0.1)
    assert waiting.exists(), child.communicate()[0]
    return child


def finish(child: subprocess.Popen[str], release: Path) -> tuple[int, str]:
    release.touch()
    output, _ = child.communicate(timeout=120)
    return child.returncode, output
