"""Turn mbox files of sent mail into a tenant file that sweeper's local Graph can serve.

Each mailbox owner becomes one user of the tenant, and every message of the owner's mbox
files becomes one message of its Sent Items, in the shape the local Graph answers with:
``id``, ``internetMessageId``, ``conversationId``, ``subject``, ``sentDateTime`` (UTC),
``from``, ``sender``, ``toRecipients``, ``ccRecipients`` and ``bccRecipients``. Only the
standard library reads the mail (``mailbox``, ``email``).

    python -m tools.mbox_tenant --out tenant.json SENT/*
    python -m tools.mbox_tenant --out tenant.json --domain example.org --owner '^([^.]+)\\.' *.mbox

(``SENT``: a folder of mbox files of sent mail, such as ``enron.allen-p.sent``.)

Owners: the first group of ``--owner`` (a regular expression over the file's name) names
the owner, so that the several sent folders of one person (``enron.allen-p._sent_mail``,
``enron.allen-p.sent``, ``enron.allen-p.sent_items``) make one mailbox; by default the
second dotted part of the name. The owner's address is the From address it sent from
most, when that is in ``--domain`` (or a subdomain of it) and no other owner has it; else
``OWNER@DOMAIN``.

Headers: encoded words (RFC 2047) are decoded; address lists are split by
``email.utils.getaddresses`` and odd entries are kept as they come (a Lotus Notes name
without ``@`` becomes an address without ``@``, which sweeper never counts as external).
A message without a From header is the owner's; one without a readable Date is left out.
Blind copies: a Bcc header naming exactly the Cc addresses is an export's copy of Cc, not a
blind copy (the Enron corpus has one on every message with a Cc), and is set aside; the
real blind copies are then read from ``X-bcc`` where the export kept them there.

Duplicates: within a mailbox a message is kept once per Message-ID, and once per content
(date, sender, subject, To, Cc, Bcc and body): folders that overlap may hold the same
message under different Message-IDs (the Enron corpus's ``_sent_mail`` and ``sent`` do).

Conversations: the first of ``References``, else ``In-Reply-To``, else the subject without
its reply and forward prefixes, else the message itself names the conversation; its
``conversationId`` is derived from that, so that a reply by a colleague shares it.

The tenant file is JSON: ``tenant_id``, ``domains`` (the one verified domain),
``conversion`` (what was read, kept and left out) and ``users``, each with ``id``,
``userPrincipalName``, ``displayName``, ``sources`` (file names) and ``sent`` (messages,
newest first). :func:`load_tenant` reads it back as a :class:`~sweeper.fakegraph.Tenant`.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import mailbox
import re
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any, cast

import orjson

from sweeper.fakegraph import Tenant
from sweeper.fakegraph.tenant import FakeUser
from sweeper.files import write_private

DEFAULT_DOMAIN = "enron.com"
DEFAULT_OWNER = r"^[^.]+\.([^.]+)\."
FORMAT = "sweeper-tenant/1"
# Reply and forward prefixes set aside when a subject names a conversation.
PREFIXES = frozenset({"re", "fw", "fwd", "aw", "wg", "sv", "vs", "tr", "rv", "antw", "odp"})
LONGEST_PREFIX = max(len(p) for p in PREFIXES)
# Newer Pythons' getaddresses drops a whole header with one odd entry unless told otherwise.
STRICT_MODE = "strict" in inspect.signature(getaddresses).parameters
Json = dict[str, Any]


@dataclass
class Counts:
    """What a conversion read, kept and left out."""

    files: int = 0
    read: int = 0
    kept: int = 0
    same_id: int = 0  # a Message-ID the mailbox holds already
    same_content: int = 0  # the same message under another Message-ID
    undated: int = 0  # no Date header that parses: Graph has no message without one
    bcc_repeated_cc: int = 0  # of the kept: a Bcc header that only repeated Cc, set aside


@dataclass
class Owner:
    """One mailbox being built: its messages and what it was read from."""

    key: str
    sources: list[str] = field(default_factory=list)
    messages: list[Json] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    contents: set[str] = field(default_factory=set)
    senders: Counter[str] = field(default_factory=Counter)
    names: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


# -- headers --------------------------------------------------------------------------------


def unfold(value: str) -> str:
    """A header's value on one line (RFC 5322 unfolding)."""
    return value.replace("\r\n", "").replace("\n", "").replace("\r", "")


def decode(value: object) -> str:
    """A header's text with its encoded words (RFC 2047) decoded; as it is when they fail."""
    if value is None:
        return ""
    raw = unfold(str(value))
    try:
        return str(make_header(decode_header(raw)))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return raw


def _pairs(values: list[str]) -> list[tuple[str, str]]:
    """``getaddresses`` as it parsed before its strict mode: odd entries kept, not dropped."""
    if STRICT_MODE:
        return cast(list[tuple[str, str]], cast(Any, getaddresses)(values, strict=False))
    return getaddresses(values)


def recipient(name: str, address: str) -> Json:
    """A Graph recipient; Graph names an address by itself when it has no display name."""
    return {"emailAddress": {"name": name or address, "address": address}}


def recipients(message: Message, header: str) -> list[Json]:
    """Every entry of the address headers ``header``, decoded, in order."""
    values = [unfold(str(v)) for v in message.get_all(header) or []]
    found: list[Json] = []
    for name, address in _pairs(values):
        name, address = decode(name).strip(), address.strip()
        if name or address:
            found.append(recipient(name, address))
    return found


def sent_at(message: Message) -> datetime | None:
    """The Date header in UTC (a date without a zone is taken as UTC), or None."""
    raw = message.get("Date")
    if raw is None:
        return None
    try:
        moment = parsedate_to_datetime(unfold(str(raw)))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


def message_id(message: Message, header: str = "Message-ID") -> str | None:
    value = unfold(str(message.get(header) or "")).strip()
    return value or None


def first_reference(message: Message) -> str | None:
    """The root of the thread: the first id of References, else In-Reply-To."""
    references = unfold(str(message.get("References") or "")).split()
    return references[0] if references else message_id(message, "In-Reply-To")


def thread_subject(subject: str) -> str:
    """``"RE: Fw:  Gas  prices"`` → ``"gas prices"``: the subject a conversation keeps.

    Scans once from the left; each prefix is a short word before a colon.
    """
    text = " ".join(subject.split()).casefold()
    start = 0
    while True:
        colon = text.find(":", start, start + LONGEST_PREFIX + 3)
        if colon == -1 or text[start:colon].strip() not in PREFIXES:
            return text[start:].strip()
        start = colon + 1


def split_message(raw: bytes) -> tuple[Message, bytes]:
    """The headers of a message, parsed, and its body as bytes.

    The header block is read as UTF-8, else as Latin-1 (raw 8-bit headers of old mail),
    so that every header is text and never a ``Header`` of unknown bytes.
    """
    ends = [(raw.find(sep), len(sep)) for sep in (b"\r\n\r\n", b"\n\n")]
    at, width = min(((i, w) for i, w in ends if i != -1), default=(len(raw), 0))
    head, body = raw[:at], raw[at + width :]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    return HeaderParser().parsestr(text + "\n\n"), body


def digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


# -- messages -------------------------------------------------------------------------------


def addresses_of(entries: Iterable[Json]) -> str:
    return ",".join(e["emailAddress"]["address"].lower() for e in entries)


def blind_copies(message: Message, cc: list[Json]) -> tuple[list[Json], bool]:
    """The Bcc recipients, and whether a Bcc header that only repeats Cc was set aside.

    Some exports write every Cc again as Bcc and keep the real blind copies in ``X-bcc``:
    a Bcc naming exactly the Cc is such a copy (a sender never needs to blind-copy those it
    copies openly), and ``X-bcc`` is read in its place.
    """
    bcc = recipients(message, "Bcc")
    repeated = bool(bcc) and addresses_of(bcc) == addresses_of(cc)
    if repeated or not bcc:
        return recipients(message, "X-bcc"), repeated
    return bcc, False


@dataclass(frozen=True)
class Converted:
    graph: Json
    content: str  # the key of its content (see the module's docstring)
    bcc_repeated_cc: bool


def to_graph(owner: Owner, message: Message, body: bytes, moment: datetime) -> Converted:
    """The Graph message of one mail, and what deduplicating and counting need."""
    subject = decode(message.get("Subject"))
    senders = recipients(message, "From")
    sender = senders[0] if senders else None
    to, cc = recipients(message, "To"), recipients(message, "Cc")
    bcc, repeated = blind_copies(message, cc)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    sender_address = sender["emailAddress"]["address"] if sender else ""
    content = digest(
        stamp, sender_address.lower(), subject, *(addresses_of(x) for x in (to, cc, bcc)),
        hashlib.sha256(body).hexdigest(),
    )  # fmt: skip
    internet_id = message_id(message)
    root = first_reference(message) or thread_subject(subject) or internet_id or content
    graph = {
        "id": "AAMkAD" + digest(owner.key, internet_id or content)[:48],
        "internetMessageId": internet_id,
        "conversationId": "AAQkAD" + digest("conversation", root)[:40],
        "subject": subject,
        "sentDateTime": stamp,
        "from": sender,
        "sender": sender,
        "toRecipients": to,
        "ccRecipients": cc,
        "bccRecipients": bcc,
    }
    return Converted(graph, content, repeated)


def add_message(owner: Owner, raw: bytes, counts: Counts) -> None:
    """One message of the owner's mbox files, unless the mailbox holds it already."""
    counts.read += 1
    message, body = split_message(raw)
    moment = sent_at(message)
    if moment is None:
        counts.undated += 1
        return
    internet_id = message_id(message)
    if internet_id is not None and internet_id in owner.ids:
        counts.same_id += 1
        return
    converted = to_graph(owner, message, body, moment)
    graph = converted.graph
    if converted.content in owner.contents:
        counts.same_content += 1
        return
    if internet_id is not None:
        owner.ids.add(internet_id)
    owner.contents.add(converted.content)
    owner.messages.append(graph)
    counts.kept += 1
    counts.bcc_repeated_cc += converted.bcc_repeated_cc
    if graph["from"] is not None:
        address = graph["from"]["emailAddress"]["address"].lower()
        owner.senders[address] += 1
        owner.names[address][sender_name(graph["from"], message)] += 1


def sender_name(sender: Json, message: Message) -> str:
    """The sender's display name: From's, else the ``X-From`` some exports keep it in."""
    name, address = sender["emailAddress"]["name"], sender["emailAddress"]["address"]
    return name if name != address else decode(message.get("X-From")).strip()


def read_mbox(path: Path) -> Iterator[bytes]:
    """Each message of an mbox file, as bytes without its ``From`` line."""
    box = mailbox.mbox(path, create=False)
    try:
        for key in box.iterkeys():
            yield box.get_bytes(key)
    finally:
        box.close()


def owner_key(path: Path, pattern: re.Pattern[str]) -> str:
    """Whose mailbox a file is: ``--owner``'s first group over its name, else its name."""
    match = pattern.search(path.name)
    return match.group(1).lower() if match and match.group(1) else path.name.lower()


def read_owners(paths: Sequence[Path], pattern: re.Pattern[str]) -> tuple[list[Owner], Counts]:
    owners: dict[str, Owner] = {}
    counts = Counts()
    for path in sorted(paths):
        owner = owners.setdefault(owner_key(path, pattern), Owner(owner_key(path, pattern)))
        owner.sources.append(path.name)
        counts.files += 1
        for raw in read_mbox(path):
            add_message(owner, raw, counts)
    return [owners[k] for k in sorted(owners)], counts


# -- the tenant -----------------------------------------------------------------------------


def inside(address: str, domain: str) -> bool:
    host = address.rpartition("@")[2].lower()
    return host == domain or host.endswith("." + domain)


def choose_upn(owner: Owner, domain: str, taken: set[str]) -> str:
    """The address the owner sent from most, inside the domain and not another's."""
    for address, _ in owner.senders.most_common():
        if inside(address, domain) and address not in taken and " " not in address:
            return address
    return f"{owner.key}@{domain}"


def display_name(owner: Owner, upn: str) -> str:
    """The name the owner's mail gave its address most, else the owner's key."""
    for name, _ in owner.names.get(upn, Counter()).most_common():
        if name and name != upn:
            return name
    return owner.key


def as_user(owner: Owner, domain: str, taken: set[str]) -> Json:
    upn = choose_upn(owner, domain, taken)
    taken.add(upn)
    name = display_name(owner, upn)
    for message in owner.messages:  # no From header: the mailbox's owner sent it
        if message["from"] is None:
            message["from"] = message["sender"] = recipient(name, upn)
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailbox:{domain}/{owner.key}")),
        "userPrincipalName": upn,
        "displayName": name,
        "sources": owner.sources,
        "sent": sorted(owner.messages, key=lambda m: m["sentDateTime"], reverse=True),
    }


def build_tenant(owners: Sequence[Owner], counts: Counts, domain: str) -> Json:
    taken: set[str] = set()
    return {
        "format": FORMAT,
        "tenant_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, domain)),
        "domains": [{"id": domain, "isVerified": True, "isDefault": True}],
        "conversion": counts.__dict__,
        "users": [as_user(owner, domain, taken) for owner in owners],
    }


def convert(
    paths: Sequence[Path], domain: str = DEFAULT_DOMAIN, owner: str = DEFAULT_OWNER
) -> Json:
    """The tenant file's content for these mbox files."""
    owners, counts = read_owners(paths, re.compile(owner))
    return build_tenant(owners, counts, domain.lower())


def write_tenant(tenant: Json, out: Path) -> None:
    """The tenant file, readable by its owner only: it holds people's addresses."""
    write_private(out, orjson.dumps(tenant).decode())


def read_tenant_file(path: Path) -> Json:
    data: Json = orjson.loads(path.read_bytes())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a tenant file of format {FORMAT}")
    return data


def tenant_of(data: Json) -> Tenant:
    """A tenant file's content as the local Graph serves it."""
    users = [
        FakeUser(u["id"], u["userPrincipalName"], u["displayName"], sent=u["sent"])
        for u in data["users"]
    ]
    return Tenant(tenant_id=data["tenant_id"], domains=data["domains"], users=users, own_domains=())


def load_tenant(path: Path) -> Tenant:
    """A tenant file as the local Graph serves it."""
    return tenant_of(read_tenant_file(path))


# -- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mbox", nargs="+", type=Path, help="mbox files of sent mail")
    parser.add_argument("--out", required=True, type=Path, help="the tenant file to write")
    parser.add_argument("--domain", default=DEFAULT_DOMAIN, help="the verified domain")
    parser.add_argument(
        "--owner", default=DEFAULT_OWNER, help="regular expression: group 1 of a file's name"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    tenant = convert(args.mbox, args.domain, args.owner)
    write_tenant(tenant, args.out)
    c = tenant["conversion"]
    print(
        f"{c['files']} files, {len(tenant['users'])} mailboxes: {c['read']} messages read, "
        f"{c['kept']} kept; left out {c['same_id']} with a Message-ID already kept, "
        f"{c['same_content']} copies under another Message-ID, {c['undated']} without a date; "
        f"{c['bcc_repeated_cc']} kept had a Bcc repeating Cc, set aside; "
        f"{time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
