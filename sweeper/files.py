"""Writing files that hold personal data: owner-only, and never through a link."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import StorageError


def write_private(path: Path, content: str) -> Path:
    """Create or replace ``path`` readable by its owner only (0600).

    A path that is a symbolic link is refused rather than followed, so ``--out`` cannot be
    turned into a write somewhere else.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(content)
    except OSError as exc:
        if path.is_symlink():
            raise StorageError(f"{path} is a symbolic link: refusing to write through it") from None
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
