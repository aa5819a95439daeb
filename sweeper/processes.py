"""Processes: whether one still runs, when it started, and one run at a time.

A run (a sweep, a digest being sent, a Sentinel export, an alert's delivery) records the
process doing it: its pid, when that process started (a pid is reused later by other
processes) and the host, where alone the pid means anything. :func:`process_alive` and
:func:`process_started` tell a run still going from one whose process died.

:func:`single_run` holds an ``flock`` on a file for a whole nightly run: the kernel drops it
when the process ends, however it ends, so a crashed run never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sweeper.errors import AlreadyRunning
from sweeper.files import open_private
from sweeper.when import iso


def this_host() -> str:
    """The name runs record as where they ran: a pid means something only on its own host."""
    return socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host and has not ended (a zombie has)."""
    if pid <= 0:
        return False  # not a process: 0 and below name process groups
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return _proc_stat(pid)[:1] not in (["Z"], ["X"])


def process_started(pid: int) -> str | None:
    """When process ``pid`` started, as text that differs for a later process given the
    same pid; None when this host cannot tell.

    On Linux: the boot's id (after a reboot the same pid and tick count can recur) and
    field 22 of ``/proc/<pid>/stat``, the clock ticks from boot to the process's start.
    Elsewhere: ``ps``'s start time, to the second.
    """
    fields = _proc_stat(pid)
    if len(fields) > 19:
        try:
            boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        except OSError:
            boot = "boot"
        return f"{boot}:{fields[19]}"
    if Path("/proc/self/stat").exists():
        return None  # Linux, and no such process
    return _ps_started(pid)


def _proc_stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` from the third (the state) on; [] if unreadable.

    The second field, the command name in parentheses, may itself hold spaces and
    parentheses: the fields start after its last ``)``.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text[text.rfind(")") + 1 :].split()


def _ps_started(pid: int) -> str | None:
    """The start time ``ps`` shows for the process (macOS, the BSDs), or None."""
    try:
        done = subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    started = " ".join(done.stdout.split())
    return started if done.returncode == 0 and started else None


@contextmanager
def single_run(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock for the whole run, or raise AlreadyRunning at once."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_private(lock_path, os.O_RDWR | os.O_CREAT)  # never through a symbolic link
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            raise AlreadyRunning(
                f"another nightly run holds {lock_path} ({holder}); this one did nothing"
            ) from None
        os.ftruncate(fd, 0)
        started = iso(datetime.now(UTC))
        os.pwrite(fd, f"pid {os.getpid()}, started {started}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
