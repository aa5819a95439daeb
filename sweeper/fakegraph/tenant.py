"""A synthetic Microsoft 365 tenant, generated from a seed, with the answers written down.

Most mail is ordinary: one to three recipients, internal threads, sends to distribution lists,
Bcc newsletters, small external threads. Among it the generator plants mass-Cc incidents and
near misses, and records in :attr:`Tenant.planted` which messages a correct sweep must report
(and, by omission, which it must not). That list is written by hand here, never computed by
sweeper's own classifier, so a test comparing the two checks something.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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


class _Builder:
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


def generate_tenant(
    seed: int = 2012,
    now: datetime | None = None,
    users: int = 40,
    mail_per_user: tuple[int, int] = (2, 14),
) -> Tenant:
    """A tenant whose ordinary mail falls in the 23 hours before ``now``.

    Planted incidents sit in the last 24 hours except one five days back (found only by a
    wider window). ``users`` counts ordinary people; a few special accounts come on top.
    """
    if users < MIN_USERS:
        raise ValueError(f"the demo tenant needs at least {MIN_USERS} ordinary users")
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    b = _Builder(rng, now)
    tenant = Tenant(
        tenant_id=b.guid(),
        domains=[
            {"id": ORG_DOMAIN, "isVerified": True, "isDefault": True},
            {"id": UNVERIFIED_DOMAIN, "isVerified": False, "isDefault": False},
        ],
        users=[],
        now=now,
    )
    people = _make_users(b, users)
    service = FakeUser(
        b.guid(), f"victim.care@{ORG_DOMAIN}", "Victim Care Team", department="Victim Care"
    )
    # A shared mailbox: a disabled account with a mailbox, which its team sends from.
    clinic = FakeUser(
        b.guid(), f"clinic.bookings@{ORG_DOMAIN}", "Clinic Bookings",
        department="Sexual Health Service", enabled=False,
    )  # fmt: skip
    mailer = FakeUser(b.guid(), DIGEST_SENDER, "sweeper digest")
    dpo = FakeUser(b.guid(), DPO, "Data Protection Officer")
    tenant.users = [*people, service, clinic, mailer, dpo]
    tenant.users += [
        FakeUser(b.guid(), f"room.{i}@{ORG_DOMAIN}", f"Unlicensed {i}", has_mailbox=False)
        for i in range(1, 5)
    ]
    # Leavers: disabled accounts; the first kept its mailbox, the others' were removed.
    tenant.users += [
        FakeUser(
            b.guid(), f"leaver.{i}@{ORG_DOMAIN}", f"Leaver {i}", enabled=False, has_mailbox=i == 1
        )
        for i in range(1, 4)
    ]
    with_mail = [u for u in people if u.has_mailbox]
    for user in with_mail:
        for message in _ordinary_mail(b, user, with_mail, rng.randint(*mail_per_user)):
            user.sent.append(message)
    _plant_incidents(b, tenant, service, clinic, with_mail)
    _plant_near_misses(b, with_mail)
    for user in tenant.users:
        user.sent.sort(key=lambda m: m["sentDateTime"], reverse=True)
    _meetings(with_mail)
    # Last, so that every id, address and message drawn before stays as it was.
    tenant.users += _console_users(b)
    return tenant


def _console_users(b: _Builder) -> list[FakeUser]:
    """The people with a role in sweeper's console: ordinary accounts, nothing sent yet."""
    governance = "Information Governance"
    return [
        FakeUser(
            b.guid(), CONSOLE_DPO, "Margaret Osei", department=governance,
            job_title="Data Protection Officer", app_roles=(DPO_ROLE,),
        ),
        FakeUser(
            b.guid(), CONSOLE_VIEWER, "Tomasz Reid", department=governance,
            job_title="Information Governance Officer", app_roles=(VIEWER_ROLE,),
        ),
    ]  # fmt: skip


def _make_users(b: _Builder, count: int) -> list[FakeUser]:
    users: list[FakeUser] = []
    taken: set[str] = set()
    while len(users) < count:
        first, last = b.person()
        upn = f"{first}.{last}@{ORG_DOMAIN}"
        if upn in taken:
            continue
        taken.add(upn)
        users.append(FakeUser(b.guid(), upn, f"{first.title()} {last.title()}"))
    return users


def _colleague(b: _Builder, colleagues: list[FakeUser], sender: FakeUser) -> dict[str, Any]:
    other = b.rng.choice([c for c in colleagues if c is not sender])
    return recipient(other.upn, other.display_name)


def _ordinary_mail(
    b: _Builder, user: FakeUser, colleagues: list[FakeUser], count: int
) -> Iterator[dict[str, Any]]:
    """Mail nobody should be told about: never ten or more visible external addresses."""
    rng = b.rng
    for _ in range(count):
        sent = b.now - timedelta(minutes=rng.randint(20, 23 * 60))
        kind = rng.random()
        if kind < 0.5:
            to = [_colleague(b, colleagues, user) for _ in range(rng.randint(1, 3))]
            yield b.message(user, sent, rng.choice(("Rota", "Minutes", "Quick question")), to)
        elif kind < 0.65:
            to = [_colleague(b, colleagues, user)]
            cc = [_colleague(b, colleagues, user) for _ in range(rng.randint(0, 4))]
            yield b.message(user, sent, "RE: Case review", to, cc, conversation="AAQkAGcasereview=")
        elif kind < 0.8:  # one person: two, from a sensitive function, would be the floor's
            to = b.externals(1)
            yield b.message(user, sent, "Your appointment", to)
        elif kind < 0.88:
            to = [recipient(f"all-staff@{ORG_DOMAIN}", "All Staff")]
            yield b.message(user, sent, "Building closed on Friday", to)
        elif kind < 0.95:
            to = b.externals(rng.randint(1, 4), PARTNERS)
            cc = [_colleague(b, colleagues, user)] + b.externals(rng.randint(0, 4), PARTNERS)
            yield b.message(user, sent, "RE: Joint protocol draft", to, cc)
        else:
            me = recipient(user.upn, user.display_name)
            bcc = b.externals(rng.randint(20, 80))
            yield b.message(user, sent, "Community newsletter", [me], bcc=bcc)
    # Older mail, outside the default window.
    for _ in range(2):
        sent = b.now - timedelta(days=rng.randint(2, 9), minutes=rng.randint(0, 600))
        yield b.message(user, sent, "Last week's notes", [_colleague(b, colleagues, user)])


def _plant(
    tenant: Tenant,
    label: str,
    sender: FakeUser,
    message: dict[str, Any],
    visible: int,
    incident: str | None = None,
) -> None:
    sender.sent.append(message)
    tenant.planted.append(
        Planted(
            label=label,
            mailbox=sender.upn,
            internet_message_id=message["internetMessageId"],
            sent_at=datetime.fromisoformat(message["sentDateTime"]),
            visible_external=visible,
            incident=incident or label,
        )
    )


def _plant_incidents(
    b: _Builder, tenant: Tenant, service: FakeUser, clinic: FakeUser, people: list[FakeUser]
) -> None:
    rng, now = b.rng, b.now
    # The January 2012 survey: 1,136 victims in 7 batches, minutes apart, same subject.
    start = now - timedelta(hours=14)
    for i, size in enumerate(REPLAY_BATCHES):
        visible = b.externals(size)
        message = b.message(
            service,
            start + timedelta(minutes=7 * i + rng.randint(0, 3)),
            "Victim satisfaction survey - your views",
            visible[:1],
            visible[1:],
        )
        _plant(tenant, f"replay-2012-batch-{i + 1}", service, message, size, "replay-2012")

    officer = people[0]
    officer.department, officer.job_title = "Investigations", "Detective Constable"
    # The 2024 case's real shape: the victims were MPs and their staff, at work addresses
    # of one outside organisation; only the sender's function says what the list reveals.
    victims = b.externals(18, (VICTIMS_EMPLOYER,))
    honeytrap = b.message(officer, now - timedelta(hours=9), "Update on your case", victims)
    _plant(tenant, "honeytrap-18", officer, honeytrap, 18)
    # A colleague replies all an hour later: the list goes round again, in Cc.
    colleague = people[7]
    reply = b.message(
        colleague,
        now - timedelta(hours=8),
        "RE: Update on your case",
        [recipient(officer.upn, officer.display_name)],
        victims,
        conversation=honeytrap["conversationId"],
    )
    _plant(tenant, "honeytrap-reply-all", colleague, reply, 18, "honeytrap-18")
    patients = b.externals(105)
    hidden = b.externals(3)
    newsletter = b.message(
        clinic, now - timedelta(hours=6), "Clinic newsletter", patients, bcc=hidden
    )
    _plant(tenant, "clinic-105", clinic, newsletter, 105)
    # A nurse sent it as the shared mailbox from Outlook desktop, which saves a copy in her
    # own Sent Items too (MessageCopyForSentAsEnabled): one message, one finding, two mailboxes.
    nurse = people[-1]
    nurse.sent.append(dict(newsletter, id=newsletter["id"].replace("AAA=", "NRS=")))
    # September 2021: 245 interpreters in To, then two more emails; 265 people in all.
    linguist = people[1]
    first = b.externals(245)
    extra = b.externals(20)
    for label, hours, to in (
        ("interpreters-245", 5, first),
        ("interpreters-2", 4, first[:10] + extra[:10]),
        ("interpreters-3", 3, first[10:15] + extra[10:]),
    ):
        subject = "Relocation support" if hours == 5 else "FW: Relocation support"
        message = b.message(linguist, now - timedelta(hours=hours), subject, to)
        _plant(tenant, label, linguist, message, len(to), "interpreters-265")
    # Exactly at the threshold: 10 people, two of them again in Cc in capitals.
    ten = b.externals(10)
    again = [
        recipient(r["emailAddress"]["address"].upper(), r["emailAddress"]["name"]) for r in ten[:2]
    ]
    author = people[2]
    _plant(
        tenant,
        "threshold-10",
        author,
        b.message(author, now - timedelta(hours=4), "Volunteer induction", ten, again),
        10,
    )
    # The same subject from someone else, to other people: a separate incident.
    other = people[6]
    _plant(
        tenant,
        "same-subject-other-sender",
        other,
        b.message(
            other, now - timedelta(hours=3, minutes=30), "Volunteer induction", b.externals(12)
        ),
        12,
    )
    # A partner working group: colleagues of other firms who know each other. Still a finding.
    chair = people[3]
    group = b.externals(14, PARTNERS[:2])
    _plant(
        tenant,
        "partner-group-14",
        chair,
        b.message(chair, now - timedelta(hours=3), "Working group agenda", group[:7], group[7:]),
        14,
    )
    _plant(tenant, "odd-recipients-12", people[4], _odd_recipients(b, people[4]), 12)
    # A regulatory service list: lawyers at many firms, work addresses only, nothing
    # sensitive. A business audience: high at most, however many it reaches.
    firms = tuple(f"{name}-law.example" for name in LAW_FIRMS)
    lawyers = b.externals(120, firms)
    clerk = people[min(8, len(people) - 1)]  # small tenants: the last person
    _plant(
        tenant,
        "service-list-120",
        clerk,
        b.message(clerk, now - timedelta(hours=2, minutes=30), "Settlement conference", lawyers),
        120,
    )
    # Five days ago, and again 25 hours later: two incidents, found only by a wider window.
    old = people[5]
    for label, hours in (("older-40", 5 * 24), ("older-40-next-day", 5 * 24 - 25)):
        message = b.message(
            old, now - timedelta(hours=hours), "Support group dates", b.externals(40)
        )
        _plant(tenant, label, old, message, 40)


def _odd_recipients(b: _Builder, sender: FakeUser) -> dict[str, Any]:
    """Twelve real external people among entries a careless parser would trip on."""
    people = b.externals(8)
    to = [
        *people[:5],
        recipient("jürgen.weiß@bücher.example", "Jürgen Weiß"),  # IDN domain
        recipient(None, "No Address"),  # emailAddress without address
        {"emailAddress": {"name": "Null Address", "address": None}},
        recipient("/o=ExchangeLabs/ou=Exchange Administrative Group/cn=Recipients/cn=abc123-j"),
        recipient(f"Support.Desk@{ORG_SUBDOMAIN.upper()}", "Support Desk"),  # internal
        recipient(f"members@{PARTNERS[2]}", "Meridian members list"),  # external list: one
    ]
    cc = [
        *people[5:],
        recipient("JÜRGEN.WEISS@xn--bcher-kva.example", "Jürgen W"),  # another person, punycode
        recipient("jürgen.weiß@xn--bcher-kva.example", "same as the first Jürgen"),
        {"emailAddress": None},  # Graph declares it nullable
        recipient("  Padded.Person@Gmail.COM  ", "Padded"),
    ]
    return b.message(sender, b.now - timedelta(hours=2), "Re: Tenants' meeting", to, cc)


def _meetings(people: list[FakeUser]) -> None:
    """Meeting invitations and answers in the Sent Items, as Outlook keeps them there: of
    Graph's type eventMessage (derived from message), named by ``@odata.type``. Made of one
    internal message of two people in three, drawing nothing from the random stream."""
    for n, user in enumerate(people):
        found = next((m for m in user.sent if m["subject"] in ("Rota", "Minutes")), None)
        if found is None or n % 3 == 2:
            continue
        start = datetime.fromisoformat(found["sentDateTime"]) + timedelta(days=1)
        found.update(
            isAllDay=False,
            isDelegated=False,
            isOutOfDate=False,
            type="singleInstance",
            startDateTime={"dateTime": f"{start:%Y-%m-%dT%H:%M:%S}.0000000", "timeZone": "UTC"},
            endDateTime={
                "dateTime": f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M:%S}.0000000",
                "timeZone": "UTC",
            },
            location={"displayName": "Meeting room 2", "locationType": "default"},
            recurrence=None,
        )
        if n % 3 == 0:
            found.update(
                {"@odata.type": "#microsoft.graph.eventMessageRequest"},
                meetingMessageType="meetingRequest",
                meetingRequestType="newMeetingRequest",
                responseRequested=True,
                allowNewTimeProposals=True,
            )
        else:
            found.update(
                {"@odata.type": "#microsoft.graph.eventMessageResponse"},
                subject=f"Accepted: {found['subject']}",
                meetingMessageType="meetingAccepted",
                responseType="accepted",
                proposedNewTime=None,
            )


def _plant_near_misses(b: _Builder, people: list[FakeUser]) -> None:
    """Messages a careless classifier would report; a correct one must not. The outsiders are
    work contacts at partner organisations: private people would be the floor's findings."""
    now = b.now
    sender = people[6]
    nine = b.externals(9, PARTNERS)
    dupes = [
        recipient(r["emailAddress"]["address"].upper(), None) for r in nine[:3]
    ]  # the same people again, in capitals
    internal = [recipient(people[7].upn, people[7].display_name)]
    x500 = [recipient("/o=ExchangeLabs/ou=Exchange Administrative Group/cn=Recipients/cn=x9")]
    sender.sent.append(
        b.message(sender, now - timedelta(hours=8), "Near miss", nine + internal, dupes + x500)
    )
    # 30 colleagues on a subdomain and 4 outsiders.
    sub = [recipient(f"staff{i}@{ORG_SUBDOMAIN}", f"Staff {i}") for i in range(30)]
    sender.sent.append(
        b.message(sender, now - timedelta(hours=7), "Team day", sub, b.externals(4, PARTNERS))
    )
    # 25 at the affiliate the configuration declares as the organisation's own, 3 outsiders.
    trust = [recipient(f"member{i}@{AFFILIATE_DOMAIN}", f"Trustee {i}") for i in range(25)]
    sender.sent.append(
        b.message(sender, now - timedelta(hours=6), "Trust board", trust, b.externals(3, PARTNERS))
    )
    # A distribution list inside, a list outside (one address) and eight people.
    lists = [
        recipient(f"all-staff@{ORG_DOMAIN}", "All Staff"),
        recipient(f"members@{PARTNERS[0]}", "Harbour members"),
    ]
    sender.sent.append(
        b.message(sender, now - timedelta(hours=5), "Open day", lists, b.externals(8, PARTNERS))
    )
    # A newsletter done right: everyone in Bcc.
    me = recipient(sender.upn, sender.display_name)
    sender.sent.append(
        b.message(sender, now - timedelta(hours=4), "Newsletter", [me], bcc=b.externals(300))
    )
