"""The cases planted in a generated tenant: the incidents a sweep must report, and near misses.

Each incident is modelled on a real mass-Cc case, its answer written down by hand in
:attr:`~sweeper.fakegraph.tenant.Tenant.planted` (never computed by sweeper's own
classifier); each near miss is mail a careless classifier would report and a correct one
must not. All are drawn from the tenant's one random stream, in a fixed order: a case added
or moved changes every id, address and message drawn after it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sweeper.fakegraph.tenant import (
    AFFILIATE_DOMAIN,
    LAW_FIRMS,
    ORG_DOMAIN,
    ORG_SUBDOMAIN,
    PARTNERS,
    REPLAY_BATCHES,
    VICTIMS_EMPLOYER,
    Builder,
    FakeUser,
    Planted,
    Tenant,
    recipient,
)


def plant_incidents(
    b: Builder, tenant: Tenant, service: FakeUser, clinic: FakeUser, people: list[FakeUser]
) -> None:
    """The incidents a correct sweep must report, in :attr:`Tenant.planted`."""
    _plant_replay(b, tenant, service)
    _plant_honeytrap(b, tenant, people)
    _plant_clinic(b, tenant, clinic, people)
    _plant_interpreters(b, tenant, people)
    _plant_threshold(b, tenant, people)
    _plant_partner_group(b, tenant, people)
    _plant(tenant, "odd-recipients-12", people[4], _odd_recipients(b, people[4]), 12)
    _plant_service_list(b, tenant, people)
    _plant_older(b, tenant, people)


def _plant_replay(b: Builder, tenant: Tenant, service: FakeUser) -> None:
    """The January 2012 survey: 1,136 victims in 7 batches, minutes apart, same subject."""
    rng, now = b.rng, b.now
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


def _plant_honeytrap(b: Builder, tenant: Tenant, people: list[FakeUser]) -> None:
    """The 2024 case's real shape: the victims were MPs and their staff, at work addresses
    of one outside organisation; only the sender's function says what the list reveals."""
    now = b.now
    officer = people[0]
    officer.department, officer.job_title = "Investigations", "Detective Constable"
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


def _plant_clinic(b: Builder, tenant: Tenant, clinic: FakeUser, people: list[FakeUser]) -> None:
    """A clinic's newsletter from its shared mailbox, 105 patients in To."""
    now = b.now
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


def _plant_interpreters(b: Builder, tenant: Tenant, people: list[FakeUser]) -> None:
    """September 2021: 245 interpreters in To, then two more emails; 265 people in all."""
    now = b.now
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


def _plant_threshold(b: Builder, tenant: Tenant, people: list[FakeUser]) -> None:
    """Exactly at the threshold: 10 people, two of them again in Cc in capitals."""
    now = b.now
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


def _plant_partner_group(b: Builder, tenant: Tenant, people: list[FakeUser]) -> None:
    """A partner working group: colleagues of other firms who know each other. Still a
    finding."""
    now = b.now
    chair = people[3]
    group = b.externals(14, PARTNERS[:2])
    _plant(
        tenant,
        "partner-group-14",
        chair,
        b.message(chair, now - timedelta(hours=3), "Working group agenda", group[:7], group[7:]),
        14,
    )


def _plant_service_list(b: Builder, tenant: Tenant, people: list[FakeUser]) -> None:
    """A regulatory service list: lawyers at many firms, work addresses only, nothing
    sensitive. A business audience: high at most, however many it reaches."""
    now = b.now
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


def _plant_older(b: Builder, tenant: Tenant, people: list[FakeUser]) -> None:
    """Five days ago, and again 25 hours later: two incidents, found only by a wider window."""
    now = b.now
    old = people[5]
    for label, hours in (("older-40", 5 * 24), ("older-40-next-day", 5 * 24 - 25)):
        message = b.message(
            old, now - timedelta(hours=hours), "Support group dates", b.externals(40)
        )
        _plant(tenant, label, old, message, 40)


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


def _odd_recipients(b: Builder, sender: FakeUser) -> dict[str, Any]:
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


def plant_near_misses(b: Builder, people: list[FakeUser]) -> None:
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
