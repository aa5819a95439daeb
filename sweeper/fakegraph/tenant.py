"""A synthetic Microsoft 365 tenant: its people, their Sent Items, and the answers written down.

:class:`Tenant` is what the local Graph serves; :func:`~sweeper.fakegraph.generate.generate_tenant`
makes one from a seed, with :class:`Builder` drawing people, addresses and messages from one
random stream. Most mail is ordinary: one to three recipients, internal threads, sends to
distribution lists, Bcc newsletters, small external threads. Among it the generator plants
mass-Cc incidents and near misses (:mod:`~sweeper.fakegraph.planted`), and records in
:attr:`Tenant.planted` which messages a correct sweep must report (and, by omission, which
it must not). That list is written by hand, never computed by sweeper's own classifier,
so a test comparing the two checks something.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ORG_DOMAIN = "northwick.example"
ORG_SUBDOMAIN = "mail.northwick.example"  # internal by the subdomain rule
AFFILIATE_DOMAIN = "northwick-trust.example"  # declared as the organisation's own in config
UNVERIFIED_DOMAIN = "northwick-legacy.example"  # added to the tenant, never verified
FREE_MAIL = (
    "gmail.com",
    "outlook.com",
    "hotmail.co.uk",
    "yahoo.co.uk",
    "icloud.com",
    "btinternet.com",
    "protonmail.com",
)
PARTNERS = ("harbour-law.example", "eastgate-council.example", "meridian-health.example")
# The firms of the regulatory service list (a business audience), by name.
LAW_FIRMS = tuple(
    f"{a}-{b}"
    for a in ("ashford", "brook", "carlow", "denby", "ellis", "fenwick", "garside", "hale")
    for b in ("partners", "llp", "chambers", "solicitors", "legal", "advocates", "counsel")
)
DIGEST_SENDER = f"sweeper@{ORG_DOMAIN}"  # the mailbox the demo's digest is sent from
DPO = f"dpo@{ORG_DOMAIN}"
# The web console's app roles (declared in sweeper's app registration), and the two people
# of the demo tenant who hold one: the DPO in person (dpo@ is the office's shared address)
# and a colleague who may look but not act. Everyone else holds none.
DPO_ROLE = "Sweeper.DPO"
VIEWER_ROLE = "Sweeper.Viewer"
CONSOLE_DPO = f"margaret.osei@{ORG_DOMAIN}"
CONSOLE_VIEWER = f"tomasz.reid@{ORG_DOMAIN}"
# The functions whose mail reveals who its recipients are, as the demo organisation declares
# them (severity.sensitive_departments): matched against Entra's department and job title.
SENSITIVE_DEPARTMENTS = ("victim care", "investigations", "sexual health", "safeguarding")
VICTIMS_EMPLOYER = "parliament.example"  # one outside organisation (the honeytrap case)
MIN_USERS = 8  # the planted incidents and near misses need eight different senders
REPLAY_BATCHES = (119, 198, 160, 171, 152, 148, 188)  # 1,136 people, as in January 2012

FIRST = (
    "amira", "ben", "chloe", "daniel", "elif", "farah", "george", "hana", "isaac", "jade",
    "kwame", "lena", "mohammed", "nadia", "oliver", "priya", "quinn", "rosa", "samuel", "tariq",
    "una", "victor", "wen", "xavier", "yusuf", "zoe", "aled", "bronwen", "ciaran", "dara",
)  # fmt: skip
LAST = (
    "ahmed", "brown", "campbell", "davies", "evans", "fraser", "green", "hughes", "iqbal",
    "jones", "khan", "lewis", "morgan", "nowak", "obi", "patel", "quigley", "roberts", "singh",
    "taylor", "usman", "vaughan", "williams", "xu", "young", "zielinski", "murphy", "kelly",
)  # fmt: skip


@dataclass
class FakeUser:
    id: str
    upn: str
    display_name: str
    enabled: bool = True
    has_mailbox: bool = True
    sent: list[dict[str, Any]] = field(default_factory=list)
    department: str | None = None  # Graph answers null when Entra has none
    job_title: str | None = None
    # Roles assigned to the user in sweeper's own app registration: they reach the ID token
    # of a sign-in to sweeper's console, never Graph's /users.
    app_roles: tuple[str, ...] = ()

    def as_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "userPrincipalName": self.upn,
            "mail": self.upn if self.has_mailbox else None,
            "displayName": self.display_name,
            "accountEnabled": self.enabled,
            "department": self.department,
            "jobTitle": self.job_title,
        }


@dataclass(frozen=True)
class Planted:
    """A message a correct sweep must report, and the incident it belongs to."""

    label: str
    mailbox: str
    internet_message_id: str
    sent_at: datetime
    visible_external: int
    incident: str


@dataclass
class Tenant:
    tenant_id: str
    domains: list[dict[str, Any]]
    users: list[FakeUser]
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    own_domains: tuple[str, ...] = (AFFILIATE_DOMAIN,)
    planted: list[Planted] = field(default_factory=list)
    _index: dict[str, FakeUser] = field(default_factory=dict, repr=False)

    def user(self, key: str) -> FakeUser | None:
        """A user by object id or UPN, as Graph's ``/users/{id | userPrincipalName}``."""
        if not self._index:
            for user in self.users:
                self._index[user.id] = user
                self._index[user.upn.lower()] = user
        return self._index.get(key.lower()) or self._index.get(key)

    def messages_of(self, user: FakeUser) -> list[dict[str, Any]]:
        """A mailbox's Sent Items, newest first. A generated tenant may make them on demand."""
        return user.sent

    def planted_between(self, since: datetime, until: datetime) -> list[Planted]:
        return [p for p in self.planted if since <= p.sent_at < until]

    def message_count(self) -> int:
        return sum(len(u.sent) for u in self.users)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def recipient(address: str | None, name: str | None = None) -> dict[str, Any]:
    email: dict[str, Any] = {"name": name if name is not None else (address or "")}
    if address is not None:
        email["address"] = address
    return {"emailAddress": email}


class Builder:
    """Generates people, addresses and messages from one random stream."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self.serial = 0
        self.used_external: set[str] = set()

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def person(self) -> tuple[str, str]:
        first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
        return first, last

    def external(self, domains: tuple[str, ...] = FREE_MAIL) -> dict[str, Any]:
        """A fresh external person: mostly first.last (names revealed), some nicknames."""
        while True:
            first, last = self.person()
            domain = self.rng.choice(domains)
            style = self.rng.random()
            if style < 0.6:
                local = f"{first}.{last}{self.rng.randint(1, 999)}"
            elif style < 0.8:
                local = f"{first[0]}{last}{self.rng.randint(10, 99)}"
            else:
                nick = self.rng.choice(("sunny", "blue", "mighty", "quiet"))
                local = f"{nick}{first}{self.rng.randint(100, 9999)}"
            address = f"{local}@{domain}"
            if address not in self.used_external:
                self.used_external.add(address)
                named = self.rng.random() < 0.7
                return recipient(address, f"{first.title()} {last.title()}" if named else None)

    def externals(self, count: int, domains: tuple[str, ...] = FREE_MAIL) -> list[dict[str, Any]]:
        return [self.external(domains) for _ in range(count)]

    def message(
        self,
        sender: FakeUser,
        sent: datetime,
        subject: str,
        to: list[dict[str, Any]],
        cc: list[dict[str, Any]] | None = None,
        bcc: list[dict[str, Any]] | None = None,
        conversation: str | None = None,
    ) -> dict[str, Any]:
        self.serial += 1
        stamp = _iso(sent)
        me = recipient(sender.upn, sender.display_name)
        message_id = f"AAMkAG{self.rng.getrandbits(160):040x}{self.serial:06d}AAA="
        return {
            "@odata.etag": f'W/"CQAAABYAAAD{self.serial:08d}"',
            "id": message_id,
            "createdDateTime": stamp,
            "lastModifiedDateTime": stamp,
            "receivedDateTime": stamp,
            "sentDateTime": stamp,
            "hasAttachments": False,
            "internetMessageId": f"<{self.rng.getrandbits(64):016x}.{self.serial}@"
            f"LO2P265MB{self.serial % 9999:04d}.GBRP265.PROD.OUTLOOK.EXAMPLE>",
            "subject": subject,
            "bodyPreview": "(body text: sweeper never asks for it)",
            "importance": "normal",
            "parentFolderId": "AQMkAGSentItems",
            "conversationId": conversation or f"AAQkAG{self.rng.getrandbits(96):024x}=",
            "isDeliveryReceiptRequested": False,
            "isReadReceiptRequested": False,
            "isRead": True,
            "isDraft": False,
            "body": {"contentType": "html", "content": "<html><body>(not read)</body></html>"},
            "sender": me,
            "from": me,
            "toRecipients": to,
            "ccRecipients": cc or [],
            "bccRecipients": bcc or [],
            "replyTo": [],
            "flag": {"flagStatus": "notFlagged"},
        }
