"""A generated tenant: its people, their ordinary mail, meetings, and the planted cases.

:func:`generate_tenant` draws everything from one random stream seeded by ``seed``, in a
fixed order, so that a seed always makes the same tenant (ids, addresses, messages).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sweeper.fakegraph.planted import plant_incidents, plant_near_misses
from sweeper.fakegraph.tenant import (
    CONSOLE_DPO,
    CONSOLE_VIEWER,
    DIGEST_SENDER,
    DPO,
    DPO_ROLE,
    MIN_USERS,
    ORG_DOMAIN,
    PARTNERS,
    UNVERIFIED_DOMAIN,
    VIEWER_ROLE,
    Builder,
    FakeUser,
    Tenant,
    recipient,
)


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
    b = Builder(rng, now)
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
    plant_incidents(b, tenant, service, clinic, with_mail)
    plant_near_misses(b, with_mail)
    for user in tenant.users:
        user.sent.sort(key=lambda m: m["sentDateTime"], reverse=True)
    _meetings(with_mail)
    # Last, so that every id, address and message drawn before stays as it was.
    tenant.users += _console_users(b)
    return tenant


def _console_users(b: Builder) -> list[FakeUser]:
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


def _make_users(b: Builder, count: int) -> list[FakeUser]:
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


def _colleague(b: Builder, colleagues: list[FakeUser], sender: FakeUser) -> dict[str, Any]:
    other = b.rng.choice([c for c in colleagues if c is not sender])
    return recipient(other.upn, other.display_name)


def _ordinary_mail(
    b: Builder, user: FakeUser, colleagues: list[FakeUser], count: int
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
