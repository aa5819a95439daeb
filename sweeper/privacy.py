"""Keeping the addresses sweeper holds from leaking through what it writes.

:func:`mask_address` is the one masking of one address; :func:`sweeper.escape.mask_addresses`
applies it to every outside address in a text (the digest, the worksheet, ``incident show``)
and :class:`sweeper.logs.Guard` to every log line.
"""

from __future__ import annotations


def mask_address(address: str) -> str:
    """``jane.doe@gmail.com`` → ``j***@gmail.com``: enough to recognise, not to write to."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"
