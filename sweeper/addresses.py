"""Domains and addresses as plain strings: the comparisons and the masking everyone shares.

:func:`normalise_domain` and :func:`within` decide what is inside the organisation (for the
classifier, the log guard and the output layers alike); :func:`mask_address` is the one
masking of one address; :func:`sweeper.present.escape.mask_addresses`
applies it to every outside address in a text (the digest, the worksheet, ``incident show``)
and :class:`sweeper.logs.Guard` to every log line.
"""

from __future__ import annotations

import contextlib
import ipaddress


def mask_address(address: str) -> str:
    """``jane.doe@gmail.com`` → ``j***@gmail.com``: enough to recognise, not to write to."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def within(domain: str, domains: frozenset[str] | set[str]) -> bool:
    """True when ``domain`` is one of ``domains`` or a subdomain of one (both normalised)."""
    labels = domain.split(".")
    return any(".".join(labels[i:]) in domains for i in range(len(labels)))


def normalise_domain(domain: str) -> str:
    """Lower case, no surrounding dots or spaces; non-ASCII names in their ``xn--`` form."""
    clean = domain.strip().strip(".").lower()
    if not clean.isascii():
        # Not a valid IDN: keep the Unicode form, still compared case-insensitively.
        with contextlib.suppress(UnicodeError):
            clean = clean.encode("idna").decode("ascii")
    return clean


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP address: a host that no network sits between."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
