"""What the local Graph can be told to do wrong, and the odd data it can serve.

A :class:`Fault` matches requests by mailbox and path and goes off ``times`` times. Its
``kind`` says what happens:

``status``  an error answer: ``status`` with a Graph error body and ``Retry-After``
``truncate`` a 200 whose JSON body is cut in half
``junk``    a 200 page whose ``value`` also holds entries that are not objects
``odd``     a 200 page whose messages carry odd recipients that expose no one more, some
            of them malformed beyond Graph's metadata (:func:`odd_recipients`), plus one
            message of 10,000 recipients with mixed case and international domains
            (:func:`crowd_message`)
``reset``   the connection is closed half-way through a 200 answer
``stall``   the answer comes ``stall`` seconds late (a client with a shorter timeout gives up)
``hold``    no answer at all until :meth:`~sweeper.fakegraph.FakeGraph.release_held` (or the
            server stops), then a 503: a request held is never served (nothing ingested)
``expire``  every token issued so far expires now; the request gets the 401 Graph gives
``repeat``  a 200 page whose ``@odata.nextLink`` is the request's own URL: the same page again
``endless`` a 200 page that always has a next link, to a page further on, however far
``relink``  a 200 page whose ``@odata.nextLink`` is ``link`` (another port, another host)
``bomb``    a 200 gzip answer of a few hundred KiB that inflates to ``size`` bytes (a JSON
            page padded with spaces)
``trickle`` a 200 answer whose body comes a byte at a time, ``pace`` seconds apart
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sweeper.fakegraph.tenant import FakeUser

KINDS = (
    "status",
    "truncate",
    "junk",
    "odd",
    "reset",
    "stall",
    "hold",
    "expire",
    "repeat",
    "endless",
    "relink",
    "bomb",
    "trickle",
)

CROWD_SIZE = 10_000
CROWD_PEOPLE = 5_000  # each person appears twice: once as written, once in capitals
CROWD_DOMAINS = ("bücher.example", "müller.example", "café.example", "пример.example")
"""Unicode domains of the crowd message; the first is also written in its xn-- form."""
CROWD_ASCII = {"bücher.example": "xn--bcher-kva.example"}


@dataclass
class Fault:
    """Something to go wrong, ``times`` times (None: every time), on matching requests.

    ``mailbox`` matches a UPN or user id in the path; ``path`` a substring of the path;
    the first ``after`` matching requests are let through. ``each_mailbox``: ``times``
    counts for each mailbox apart (Graph's throttling is per mailbox: every mailbox's first
    read throttled is one fault, not one per mailbox).
    """

    status: int = 429
    times: int | None = 1
    retry_after: int | None = None
    code: str = "ApplicationThrottled"
    message: str = "Application is over its MailboxConcurrency limit."
    mailbox: str | None = None
    path: str | None = None
    kind: str = "status"
    stall: float = 30.0
    link: str | None = None  # relink: the next link served
    size: int = 200 * 1024 * 1024  # bomb: bytes once inflated
    pace: float = 0.5  # trickle: seconds between two bytes
    after: int = 0
    each_mailbox: bool = False
    hits: int = 0
    passed: int = 0
    hits_by_mailbox: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.kind == "bomb":
            gzip_bomb(self.size)  # made now: making it while a client waits would be a stall

    def matches(self, path: str, user: FakeUser | None) -> bool:
        if self.times is not None and self._hits(user) >= self.times:
            return False
        if self.path is not None and self.path.lower() not in path.lower():
            return False
        if self.mailbox is not None:
            wanted = self.mailbox.lower()
            if user is None or wanted not in (user.upn.lower(), user.id.lower()):
                return False
        if self.passed < self.after:
            self.passed += 1
            return False
        return True

    def hit(self, user: FakeUser | None) -> None:
        """This fault was served to a request (of ``user``'s mailbox)."""
        self.hits += 1
        if self.each_mailbox and user is not None:
            self.hits_by_mailbox[user.id] = self.hits_by_mailbox.get(user.id, 0) + 1

    def _hits(self, user: FakeUser | None) -> int:
        if not self.each_mailbox:
            return self.hits
        return self.hits_by_mailbox.get(user.id, 0) if user is not None else 0


_BOMBS: dict[int, bytes] = {}


def gzip_bomb(size: int) -> bytes:
    """A gzip stream of a JSON page (``{"value": []}``) padded with spaces to ``size`` bytes
    once inflated: about a thousandth of that compressed. Made once per size."""
    if size not in _BOMBS:
        pack = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        parts = [pack.compress(b'{"value": [')]
        spaces = b" " * (1024 * 1024)
        left = max(0, size - 13)
        while left > 0:
            parts.append(pack.compress(spaces[: min(left, len(spaces))]))
            left -= len(spaces)
        parts += [pack.compress(b"]}"), pack.flush()]
        _BOMBS[size] = b"".join(parts)
    return _BOMBS[size]


def odd_recipients(message: dict[str, Any]) -> list[Any]:
    """Recipient entries that name no one outside, for a sweep to count and store the
    message exactly as it would without them.

    The shapes Graph's metadata allows and Graph sends: no ``emailAddress``, a null one, a
    name without an address, a null address, an X500 distinguished name, and the message's
    first recipient again in capitals. Beyond them, malformed entries that the metadata does
    not allow (a number or a list for an address, a string or null for a recipient): a
    malformed answer, which sweeper must survive and count, not trust. The metadata tests
    (tests/test_graph_metadata.py) check the local Graph's answers without this fault.
    """
    entries: list[Any] = [
        {},
        {"emailAddress": None},
        {"emailAddress": {"name": "Only a name"}},
        {"emailAddress": {"name": "Null", "address": None}},
        {"emailAddress": {"address": 42}},
        {"emailAddress": {"address": ["someone@elsewhere.example"]}},
        {"emailAddress": {"address": "/O=EXCHANGELABS/OU=EXCHANGE ADMINISTRATIVE GROUP/CN=X"}},
        "not a recipient",
        None,
    ]
    first = (message.get("toRecipients") or [None])[0]
    address = first.get("emailAddress", {}).get("address") if isinstance(first, dict) else None
    if isinstance(address, str):
        entries.append({"emailAddress": {"name": "Again", "address": address.upper()}})
    return entries


def crowd_message(user: FakeUser) -> dict[str, Any]:
    """A message to 10,000 To entries: 5,000 people on international domains, twice each.

    Person ``n`` is written once as ``Person{n}@<unicode domain>`` and once in capitals
    (for bücher.example, in its ``xn--`` form), so exactly 5,000 distinct outside addresses
    are exposed, on the four domains' ``xn--`` forms.
    """
    entries = []
    for copy in range(2):
        for n in range(CROWD_PEOPLE):
            domain = CROWD_DOMAINS[n % len(CROWD_DOMAINS)]
            address = f"Person{n}@{domain}"
            if copy:
                address = f"PERSON{n}@{CROWD_ASCII.get(domain, domain).upper()}"
            entries.append({"emailAddress": {"name": f"Person {n}", "address": address}})
    sent = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sender = {"emailAddress": {"name": user.display_name, "address": user.upn}}
    return {
        "id": f"AAMkCrowd{user.id}",
        "internetMessageId": f"<crowd.{user.id}@{user.upn.partition('@')[2]}>",
        "conversationId": f"AAQkCrowd{user.id}",
        "subject": "Festival volunteers: programme",
        "sentDateTime": sent,
        "from": sender,
        "sender": sender,
        "toRecipients": entries,
        "ccRecipients": [],
        "bccRecipients": [],
    }


def make_odd(page: dict[str, Any], user: FakeUser) -> dict[str, Any]:
    """The page with odd recipients on each message and the crowd message at its end."""
    for message in page.get("value", []):
        if isinstance(message, dict) and isinstance(message.get("ccRecipients"), list):
            message["ccRecipients"] = message["ccRecipients"] + odd_recipients(message)
    page["value"] = [*page.get("value", []), crowd_message(user)]
    return page
