"""Writing files that hold personal data: owner-only, whole or not at all, never elsewhere.

Every ``--out`` goes through :func:`write_private`. It refuses what a mistyped or hostile
path could turn into a write somewhere else or a hang: a symbolic link, anything that is not
a regular file (a FIFO would block for ever, a device would swallow the data), and the files
sweeper itself depends on (the database with its ``-wal``/``-shm``, the configuration),
named by the caller as ``protected``. The content goes to a temporary file beside the target
first and replaces it only when complete, so a full disk leaves the old file, not half a new
one.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from sweeper.errors import DiskFull, StorageError

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def own_files(database: Path, config: Path | None) -> dict[Path, str]:
    """The files an ``--out`` must never replace: the database, its side files, the config."""
    files = {database: "database"}
    files.update({database.with_name(database.name + s): "database" for s in SQLITE_SIDE_FILES})
    if config is not None:
        files[config] = "configuration file"
    return files


Protected = Mapping[Path, str]  # a file sweeper must not overwrite -> what it is


def check_out_path(path: Path, protected: Protected | None = None) -> None:
    """Raise StorageError unless ``path`` may be created or replaced with a report."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise StorageError(f"{path} is a symbolic link: refusing to write through it")
        if not stat.S_ISREG(info.st_mode):
            kind = _kind(info.st_mode)
            raise StorageError(f"{path} is {kind}, not a regular file: refusing to write to it")
    for keep, role in (protected or {}).items():
        if _same(path, keep):
            raise StorageError(f"{path} is sweeper's {role}: refusing to overwrite it")


def write_private(path: Path, content: str, *, protected: Protected | None = None) -> Path:
    """Create or replace ``path`` readable by its owner only (0600), whole or not at all."""
    check_out_path(path, protected)
    data = content.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise _write_error(path, exc) from None
    return path


def _write_error(path: Path, exc: OSError) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return DiskFull(f"no space left to write {path}; nothing was written")
    return StorageError(f"cannot write {path}: {exc.strerror or exc}")


def _same(path: Path, other: Path) -> bool:
    try:
        if path.exists() and other.exists():
            return os.path.samefile(path, other)
    except OSError:
        return False
    return path.resolve() == other.resolve()


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"
