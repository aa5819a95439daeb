"""Keeping the addresses sweeper holds from leaking through what it writes."""

from __future__ import annotations


def mask_address(address: str) -> str:
    """``jane.doe@gmail.com`` → ``j***@gmail.com``: enough to recognise, not to write to."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"
