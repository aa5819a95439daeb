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
import re
from collections.abc import Callable, Iterator


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
    """True when ``domain`` is one of ``domains`` or a subdomain of one (both normalised).

    Only the suffixes no longer than the longest of ``domains`` are looked up, so that a
    stranger's domain of a million labels costs one pass, not a million joins.
    """
    if not domains:
        return False
    longest = max(len(d) for d in domains)
    if len(domain) <= longest and domain in domains:
        return True
    dot = domain.find(".", max(0, len(domain) - longest - 1))
    while dot != -1:
        if domain[dot + 1 :] in domains:
            return True
        dot = domain.find(".", dot + 1)
    return False


MAX_DOMAIN = 253  # characters of a domain name, at most (RFC 1035)


def normalise_domain(domain: str) -> str:
    """Lower case, no surrounding dots or spaces; non-ASCII names in their ``xn--`` form."""
    clean = domain.strip().strip(".").lower()
    if not clean.isascii() and len(clean) <= MAX_DOMAIN:
        # Not a valid IDN: keep the Unicode form, still compared case-insensitively. Nor is
        # a name longer than DNS allows: the codec takes time quadratic in a label's length
        # and seconds for a megabyte of labels, so a stranger's such name is not encoded.
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


# -- finding addresses in text --------------------------------------------------------------

# What a plain local part is made of (RFC 5322's atext and dots). The output layers leave
# the backtick out (it opens a Markdown code span); the log guard keeps it.
LOCAL_CHARS = r"\w.!#$%&'*+/=?^{|}~-"
LOCAL_CHARS_WITH_BACKTICK = r"\w.!#$%&'*+/=?^`{|}~-"
# Between the quotes of a quoted local part: any character but a quote, a backslash or a
# line break, or a backslash and the character it escapes.
_QUOTED_BODY = re.compile(r"(?:[^\"\\\r\n]|\\.)*+")
_DOMAIN = re.compile(r"[\w-]++(?:\.[\w-]++)+")
_HAS_DOMAIN = r"(?=[\w-]++\.[\w-])"


class AddressScanner:
    r"""Every address in a text, found in one pass however the text is made.

    Finds what ``(?:"(?:[^"\
]|\.)*"|[LOCAL]+)@([\w-]+(?:\.[\w-]+)+)`` finds with
    ``finditer`` (a quoted or plain local part, ``@``, a domain of two labels or more): the
    same matches at the same places, in linear time. That pattern, run by a backtracking
    engine, starts again at every character of a long run of local-part characters and so
    takes quadratic time (32,000 characters took seconds). Here a plain local part is tried
    only where its run starts (every later start in the run ends at the same place, so fails
    or succeeds alike) or right after the address before it; a quote is scanned from only
    where it cannot be an escaped quote inside an earlier scan, and the escaped quotes (a
    quote after a backslash) share the scan that covered them.
    """

    def __init__(self, local_chars: str = LOCAL_CHARS) -> None:
        local = f"[{local_chars}]"
        self._plain = re.compile(f"{local}++")
        self._start = re.compile(
            rf"(?P<quoted>(?<!\\)\"(?:[^\"\\\r\n]|\\.)*+\")@{_HAS_DOMAIN}"
            rf"|(?P<plain>(?<!{local}){local}++)@{_HAS_DOMAIN}"
            r"|(?P<escaped>(?<=\\)\")"
        )

    def spans(self, text: str) -> Iterator[tuple[int, int, int]]:
        """``(start, end, domain_start)`` of each address, left to right, not overlapping."""
        pos, after_match = 0, False
        scanned = (-1, -1)  # the quote last scanned from in Python, and where its scan stopped
        while pos < len(text):
            run = self._plain.match(text, pos) if after_match else None
            if run is not None:  # a run the address before cut may start right after it
                start, local_end = pos, run.end()
            else:
                found = self._start.search(text, pos)
                if found is None:
                    return
                start = found.start()
                if found["escaped"] is None:
                    local_end = found.end() - 1
                else:
                    if not scanned[0] < start < scanned[1]:
                        body = _QUOTED_BODY.match(text, start + 1)
                        scanned = (start, body.end() if body else start + 1)
                    closing = scanned[1]
                    quoted = closing < len(text) and text[closing] == '"'
                    local_end = closing + 1 if quoted else -1
            after_match = False
            domain = None
            if 0 <= local_end < len(text) and text[local_end] == "@":
                domain = _DOMAIN.match(text, local_end + 1)
            if domain is None:
                pos = start + 1
                continue
            yield start, domain.end(), local_end + 1
            pos, after_match = domain.end(), True

    def sub(self, text: str, replace: Callable[[str, str], str]) -> str:
        """``text`` with each address replaced by ``replace(address, its domain)``."""
        parts: list[str] = []
        last = 0
        for start, end, domain_start in self.spans(text):
            parts.append(text[last:start])
            parts.append(replace(text[start:end], text[domain_start:end]))
            last = end
        parts.append(text[last:])
        return "".join(parts)
