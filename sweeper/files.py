"""Writing files that hold personal data: owner-only, whole or not at all, never elsewhere.

Every ``--out`` goes through :func:`write_private`. It refuses what a mistyped or hostile
path could turn into a write somewhere else or a hang: a symbolic link, anything that is not
a regular file (a FIFO would block for ever, a device would swallow the data), and the files
sweeper itself depends on (the database with its ``-wal``/``-shm``, the configuration),
named by the caller as ``protected``. The content goes to a temporary file beside the target
first and replaces it only when complete, so a full disk leaves the old file, not half a new
one.

Every file sweeper creates or opens to write is opened by :func:`open_private` (the nightly
lock, the database when it creates it, the temporary file of every report, export and
downloaded database): ``O_NOFOLLOW``, so that a symbolic link put in its place is refused
with one line instead of having its target truncated or written, and owner-only (0600).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
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
    except OSError as exc:
        raise _write_error(path, exc) from None
    fd, temporary = new_private_file(path, ".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise _write_error(path, exc) from None
    return path


OWNER_ONLY = 0o600


def open_private(path: Path, flags: int, *, doing: str = "write") -> int:
    """Open ``path`` (``flags`` as for :func:`os.open`) never through a symbolic link.

    A file created is readable by its owner only. A symbolic link, or anything that is not
    a regular file (a FIFO, a device), raises StorageError with one line, and nothing is
    read or written through it; other failures raise StorageError (DiskFull when full),
    saying "cannot ``doing`` ``path``".
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, OWNER_ONLY)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StorageError(f"{path} is a symbolic link: refusing to write through it") from None
        if exc.errno == errno.EEXIST:
            raise
        raise _write_error(path, exc, doing) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise StorageError(f"{path} is {_kind(mode)}, not a regular file: refusing to write to it")
    os.set_blocking(fd, True)
    return fd


def new_private_file(beside: Path, suffix: str) -> tuple[int, Path]:
    """A new owner-only file in ``beside``'s folder, named after it: its descriptor and path."""
    while True:
        candidate = beside.with_name(f".{beside.name}.{secrets.token_hex(6)}{suffix}")
        try:
            fd = open_private(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            continue
        os.fchmod(fd, OWNER_ONLY)  # whatever the umask
        return fd, candidate


def _write_error(path: Path, exc: OSError, doing: str = "write") -> StorageError:
    if exc.errno == errno.ENOSPC:
        return DiskFull(f"no space left to {doing} {path}; nothing was written")
    return StorageError(f"cannot {doing} {path}: {exc.strerror or exc}")


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
