"""Domains and addresses as plain strings: the comparisons and the masking everyone shares.

:func:`normalise_domain` and :func:`within` decide what is inside the organisation (for the
classifier, the log guard and the output layers alike); :func:`mask_address` is the one
masking of one address; :func:`sweeper.present.escape.mask_addresses`
applies it to every outside address in a text (the digest, the worksheet, ``incident show``)
and :class:`sweeper.logs.Guard` to every log line.

A display name of someone exposed is personal data like their address (beside a masked
free-mail address it names the person): the store hands it out as a :class:`DisplayName`,
which every template prints masked by :func:`mask_name` unless the addresses themselves are
revealed (the console's recorded reveal), and which exports carry whole only where the
addresses are whole too.
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


class DisplayName(str):
    """The display name of someone exposed, as the mail showed it: printed masked
    (:func:`mask_name`) wherever the addresses are masked."""

    __slots__ = ()

    @classmethod
    def of(cls, name: str | None) -> DisplayName | None:
        """``name`` marked as a person's display name; None when there is none."""
        return None if name is None else cls(name)


def mask_name(name: str | None) -> str:
    """``Amira Ahmed`` → ``A***``: its first letter or digit only, as :func:`mask_address`
    keeps the first of a local part; nothing for no name."""
    if not name or not name.strip():
        return ""
    first = next((c for c in name if c.isalnum()), "")
    return f"{first}***"


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
